"""The one-call entry point that serves both halves: :func:`saliency_map`."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InputError
from .io import load_image
from .registry import BOTTOM_UP, get_method

__all__ = ["saliency_map"]


def saliency_map(image: Any, method: str = "itti", *, model: Any = None, target: Any = None,
                 layer: Any = None, **params: Any) -> np.ndarray:
    """Saliency map of one image, by any registered method.

    Parameters
    ----------
    image:
        Anything :func:`salience.load_image` accepts (path, bytes, file object, PIL image, array).
    method:
        A name from :func:`salience.methods` (``"itti"``, ``"spectral-residual"``, ``"gradcam"``, ...).
    model, target, layer:
        Only for explanation methods: the model (default: :func:`salience.load_model` ``("mobilenet_v2")``),
        the target (default: the top-1 class) and the layer (default: the model's last spatial layer).
    **params:
        Method parameters (see each method's docstring).

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W)`` at the input's size, finite.  Bottom-up maps lie in ``[0, 1]``; explanation maps
        in the range the registry documents for the method.

    Examples
    --------
    >>> import numpy as np, salience
    >>> img = np.zeros((48, 64, 3), np.float32); img[20:28, 30:38] = 1.0
    >>> m = salience.saliency_map(img, "spectral-residual")
    >>> m.shape, m.dtype
    ((48, 64), dtype('float32'))
    """
    m = get_method(method)
    img = load_image(image)
    if m.kind == BOTTOM_UP:
        if model is not None or target is not None or layer is not None:
            raise InputError(
                f"method {m.name!r} is bottom-up (computed from the pixels alone); model, target and layer "
                "apply to explanation methods only"
            )
        out = m.load()(img, **params)
    else:
        from .explain import image_saliency_map  # needs torch; raises MissingDependencyError without it

        out = image_saliency_map(img, m.name, model=model, target=target, layer=layer, **params)
    return np.asarray(out, dtype=np.float32)
