"""What the applications share: the map of an image by any registry method, normalised to [0, 1], and
the pixel rectangle that crop windows and object boxes both are."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ..io import check_map, load_image
from ..registry import EXPLANATION, get_method


def image_and_map(image: Any, method: str, saliency: Any = None, *, model: Any = None, target: Any = None,
                  layer: Any = None, **params: Any) -> tuple[np.ndarray, np.ndarray, str]:
    """``(image, map, method name)``: the image as :func:`salience.load_image` returns it and its map as
    float64 ``(H, W)`` in ``[0, 1]`` at the image's size.

    ``saliency`` (a precomputed map) is used instead of computing one; a map of another size is resized
    bilinearly.  A signed explanation (e.g. input x gradient) keeps its positive part (evidence *for* the
    class).  Then the map is min-max normalised; a constant map becomes all zeros.
    """
    img = load_image(image)
    h, w = img.shape[:2]
    if saliency is not None:
        m = check_map(saliency, "saliency")
        name = "given"
        signed = bool(m.min() < 0)
    else:
        meth = get_method(method)
        name = meth.name
        from ..api import saliency_map

        kw: dict[str, Any] = dict(params)
        if meth.kind == EXPLANATION:
            kw.update(model=model, target=target, layer=layer)
        elif model is not None or target is not None or layer is not None:
            raise InputError(f"method {name!r} is bottom-up; model, target and layer apply to explanation methods")
        m = np.asarray(saliency_map(img, name, **kw), dtype=np.float64)
        signed = meth.signed
    if m.shape != (h, w):
        import cv2

        m = cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
    if signed:
        m = np.maximum(m, 0.0)
    lo, hi = float(m.min()), float(m.max())
    m = (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)
    return img, m, name


def to_u8(img: np.ndarray) -> np.ndarray:
    """float RGB in [0, 1] -> uint8 RGB.

    Examples
    --------
    >>> import numpy as np
    >>> from salience.tasks import to_u8
    >>> to_u8(np.array([[[0.0, 0.5, 1.2]]])).tolist()
    [[[0, 128, 255]]]
    """
    return np.floor(np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


@dataclass(frozen=True)
class Rect:
    """A scored pixel rectangle: edges ``x0 <= x < x1``, ``y0 <= y < y1`` and a ``score``; the common part
    of :class:`salience.tasks.crop.Window` and :class:`salience.tasks.segment.Box`.

    >>> Rect(2, 1, 10, 5, 0.5).width, Rect(2, 1, 10, 5, 0.5).height
    (8, 4)
    """

    x0: int
    y0: int
    x1: int
    y1: int
    score: float

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0
