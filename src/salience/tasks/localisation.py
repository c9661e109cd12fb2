"""Localisation of explanations against object boxes or masks: the pointing game and its energy variant.

A *target* is a boolean mask ``(H, W)`` of the map's size, one box ``(x0, y0, x1, y1)`` or a sequence of
boxes (pixel edges, ``x1``/``y1`` exclusive, as :class:`salience.tasks.segment.Box`); several boxes count as
their union.

>>> import numpy as np
>>> from salience.tasks.localisation import pointing_game, energy_pointing_game
>>> sal = np.zeros((50, 60)); sal[20, 30] = 1.0; sal[5, 5] = 0.5
>>> pointing_game(sal, (25, 15, 40, 30)), round(energy_pointing_game(sal, (25, 15, 40, 30)), 4)
(True, 0.6667)
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from ..errors import InputError
from ..io import check_map

__all__ = ["target_mask", "pointing_game", "energy_pointing_game", "peak"]


def target_mask(target: Any, shape: tuple[int, int]) -> np.ndarray:
    """bool ``(H, W)`` mask of a target (mask, box or boxes; see the module docstring).

    >>> target_mask([(0, 0, 2, 1), (3, 1, 4, 2)], (2, 4)).astype(int).tolist()
    [[1, 1, 0, 0], [0, 0, 0, 1]]
    """
    h, w = shape
    if isinstance(target, np.ndarray) and target.ndim == 2:
        if target.shape != (h, w):
            raise InputError(f"the target mask is {target.shape[1]} x {target.shape[0]} (W x H) but the map is "
                             f"{w} x {h}; give a mask of the map's size")
        return target.astype(bool) if target.dtype == bool else target > 0
    boxes: list[Any]
    if hasattr(target, "x0"):
        boxes = [target]
    else:
        arr = np.asarray(target, dtype=object)
        if arr.ndim == 1 and len(arr) in (4, 5) and all(isinstance(v, (int, float, np.number)) for v in arr):
            boxes = [tuple(target)]
        else:
            boxes = list(target)
    out = np.zeros((h, w), bool)
    if not boxes:
        raise InputError("the target has no boxes")
    for b in boxes:
        vals = (b.x0, b.y0, b.x1, b.y1) if hasattr(b, "x0") else tuple(b)[:4]
        if len(vals) != 4 or not all(isinstance(v, (int, float, np.number)) and math.isfinite(v) for v in vals):
            raise InputError(f"a box is (x0, y0, x1, y1) in pixels, got {b!r}")
        x0, y0, x1, y1 = (int(round(float(v))) for v in vals)
        if x1 <= x0 or y1 <= y0:
            raise InputError(f"a box needs x1 > x0 and y1 > y0, got {b!r}")
        out[max(0, y0):max(0, min(h, y1)), max(0, x0):max(0, min(w, x1))] = True
    if not out.any():
        raise InputError(f"the target boxes lie outside the {w} x {h} map")
    return out


def peak(saliency: Any) -> tuple[int, int] | None:
    """``(x, y)`` of the map's maximum (the first in raster order), or None for a constant map."""
    m = check_map(saliency)
    if float(m.max()) == float(m.min()):
        return None
    iy, ix = np.unravel_index(int(np.argmax(m)), m.shape)
    return int(ix), int(iy)


def pointing_game(saliency: Any, target: Any, *, tolerance: float = 15.0) -> bool:
    """Pointing game: does the map's maximum fall on the object (within ``tolerance`` pixels)?

    J. Zhang, S. A. Bargal, Z. Lin, J. Brandt, X. Shen, S. Sclaroff. Top-down neural attention by excitation
    backprop. ECCV 2016 (15-pixel tolerance).  The accuracy of a method is the share of hits over a data
    set.  A constant map points nowhere: it scores a miss, with a
    :class:`~salience.metrics.DegenerateInputWarning`.

    >>> import numpy as np
    >>> sal = np.zeros((40, 40)); sal[5, 5] = 1
    >>> pointing_game(sal, (10, 10, 20, 20), tolerance=0), pointing_game(sal, (10, 10, 20, 20), tolerance=8)
    (False, True)
    """
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not tolerance >= 0:
        raise InputError(f"tolerance must be a number of pixels >= 0, got {tolerance!r}")
    m = check_map(saliency)
    tm = target_mask(target, m.shape)
    p = peak(m)
    if p is None:
        from ..metrics import DegenerateInputWarning

        warnings.warn("the map is constant, so it has no maximum to point with; counted as a miss",
                      DegenerateInputWarning, stacklevel=2)
        return False
    x, y = p
    if tm[y, x]:
        return True
    if tolerance == 0:
        return False
    r = int(math.ceil(tolerance))
    y0, y1, x0, x1 = max(0, y - r), min(m.shape[0], y + r + 1), max(0, x - r), min(m.shape[1], x + r + 1)
    window = tm[y0:y1, x0:x1]
    if not window.any():
        return False
    yy, xx = np.nonzero(window)
    d2 = (yy + y0 - y) ** 2 + (xx + x0 - x) ** 2
    return bool(d2.min() <= tolerance * tolerance)


def energy_pointing_game(saliency: Any, target: Any) -> float:
    """Energy-based pointing game: the share of the map's (positive) energy inside the target, in ``[0, 1]``.

    H. Wang, Z. Wang, M. Du, F. Yang, Z. Zhang, S. Ding, P. Mardziel, X. Hu. Score-CAM: score-weighted visual
    explanations for convolutional neural networks. CVPR workshops 2020.  Negative values (of a signed
    explanation) count as 0.  An all-zero map returns NaN with a
    :class:`~salience.metrics.DegenerateInputWarning`.

    >>> import numpy as np
    >>> energy_pointing_game(np.ones((10, 10)), (0, 0, 5, 10))
    0.5
    """
    m = np.maximum(check_map(saliency), 0.0)
    tm = target_mask(target, m.shape)
    total = float(m.sum())
    if total <= 0:
        from ..metrics import DegenerateInputWarning

        warnings.warn("the map has no positive energy; the energy-based pointing game is undefined (NaN)",
                      DegenerateInputWarning, stacklevel=2)
        return float("nan")
    return float(m[tm].sum() / total)
