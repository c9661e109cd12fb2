"""Content-free baselines: the centre bias.

Human observers look at the centre of a photograph more than anywhere else, whatever it shows (Tatler
2007; Judd et al. 2009).  A map that is just a Gaussian centred on the image is therefore the baseline
that every content-based model must beat on eye-fixation metrics.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..check import check_real
from ..io import method_input

__all__ = ["centre_bias"]


def centre_bias(image: Any, *, sigma: float = 0.2) -> np.ndarray:
    """An isotropic Gaussian centred on the image; it ignores the image's content.

    ``M(x, y) = exp(-((x - cx)^2 + (y - cy)^2) / (2 s^2))`` with ``(cx, cy) = ((W - 1) / 2, (H - 1) / 2)``,
    the centre of the pixel grid, and ``s = sigma * sqrt(H^2 + W^2)``: ``sigma`` is a fraction of the
    image diagonal (0.2 by default, 200 pixels on an 800 x 600 photo, close to the spread of fixations in
    free-viewing data sets).  The map is divided by its maximum, so it peaks at exactly 1.

    Parameters
    ----------
    image:
        float32 ``(H, W, 3)`` RGB in ``[0, 1]`` (validated for its shape; the pixels are not used).
    sigma:
        Standard deviation as a fraction of the image diagonal, > 0.

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W)``, values in ``(0, 1]``, maximum 1 at the centre.

    References
    ----------
    B. Tatler. The central fixation bias in scene viewing. J. Vision 7(14), 2007.
    T. Judd, K. Ehinger, F. Durand, A. Torralba. Learning to predict where humans look. ICCV 2009.

    Examples
    --------
    >>> import numpy as np
    >>> from salience.bottomup.baselines import centre_bias
    >>> m = centre_bias(np.zeros((5, 7, 3), np.float32))
    >>> m.shape, float(m[2, 3]), bool(m[0, 0] < m[2, 3])
    ((5, 7), 1.0, True)
    """
    sigma = check_real("sigma", sigma, minimum=0, strict=True, convert=True)
    img = method_input(image)
    H, W = img.shape[:2]
    s = sigma * float(np.hypot(H, W))
    y = (np.arange(H, dtype=np.float64) - (H - 1) / 2.0) / s
    x = (np.arange(W, dtype=np.float64) - (W - 1) / 2.0) / s
    with np.errstate(over="ignore", under="ignore"):
        m = np.exp(-0.5 * y * y)[:, None] * np.exp(-0.5 * x * x)[None, :]
    peak = float(m.max())
    if not peak > 0:  # sigma so small that the Gaussian underflows everywhere: its limit, the centre pixel(s)
        dy, dx = np.abs(np.arange(H) - (H - 1) / 2.0), np.abs(np.arange(W) - (W - 1) / 2.0)
        return ((dy == dy.min())[:, None] & (dx == dx.min())[None, :]).astype(np.float32)
    m /= peak
    return m.astype(np.float32)
