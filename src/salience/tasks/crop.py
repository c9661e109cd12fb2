"""Smart crops that keep what people look at.

:func:`crop` finds the window of a given aspect ratio (or size) that holds the most saliency mass.  Every
window position is scored at once: the mass inside a rectangle is four look-ups in the map's summed-area
table (F. C. Crow, "Summed-area tables for texture mapping", SIGGRAPH 1984), so the whole search is a few
array operations.  Options: a *margin* (only the mass inside the window shrunk by that fraction counts, so
the salient content keeps away from the edges), a *rule-of-thirds* weight (mass near the window's thirds
intersections counts more), and several ranked candidates that overlap by at most ``max_overlap`` (IoU).

It never just centres the window on the map's arg-max: a single peak says little about where the mass is
(the failure mode documented by the audit of Twitter's saliency crop: K. Yee, U. Tantipongpipat,
S. Mishra, "Image cropping on Twitter: fairness metrics, their limitations, and the importance of
representation, design, and agency", CSCW 2021).  ``benchmarks/bench_crop.py`` measures the share of human
fixations each crop keeps on OSIE; ``docs/results.md`` has the table.

Windows are integer pixel edges ``(x0, y0, x1, y1)``, ``x1``/``y1`` exclusive.

>>> import numpy as np
>>> from salience.tasks.crop import crop
>>> sal = np.zeros((60, 120)); sal[20:40, 90:110] = 1.0
>>> w = crop(np.zeros((60, 120, 3)), "1:1", saliency=sal)[0]
>>> (w.x0, w.y0, w.x1, w.y1), w.share
((50, 0, 110, 60), 1.0)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..errors import InputError
from ._maps import Rect, image_and_map

__all__ = ["Window", "crop", "window_size", "best_windows", "centre_window", "cut", "DEFAULT_CROP_METHOD",
           "DEFAULT_CROP_PRIOR"]

#: The map :func:`crop` uses by default, with :data:`DEFAULT_CROP_PRIOR`: the salience crop that kept the
#: most human fixations on the selection half of OSIE (docs/results.md, "Smart crop").
DEFAULT_CROP_METHOD = "image-signature"

#: The blur (x image width) and centre-bias weight of the default crop map (see salience.saliency_map).
DEFAULT_CROP_PRIOR = {"blur": 0.02, "centre_bias": 0.3}


@dataclass(frozen=True)
class Window(Rect):
    """A crop window: pixel edges ``x0 <= x < x1``, ``y0 <= y < y1``; ``score``: the objective (the share
    of the map's mass it counts, with margin and thirds weighting); ``share``: the plain share of the map's
    mass inside the window (0..1); ``rank``: 1 for the best.

    >>> w = Window(0, 0, 160, 90, score=0.8, share=0.8)
    >>> w.width, w.height, w.as_dict()["rank"]
    (160, 90, 1)
    """

    share: float
    rank: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "x0": self.x0, "y0": self.y0, "x1": self.x1, "y1": self.y1,
                "width": self.width, "height": self.height, "score": self.score, "share": self.share}


_RATIO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*[:/]\s*(\d+(?:\.\d+)?)\s*$")
_SIZE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def window_size(shape: tuple[int, int], aspect: Any = "1:1", *, scale: float = 1.0) -> tuple[int, int]:
    """``(height, width)`` of the crop window in an image of ``shape`` ``(H, W)``.

    ``aspect``: ``"W:H"`` (e.g. ``"16:9"``, ``"1:1"``, ``"9:16"``), a number (width / height) or a pair
    ``(W, H)`` of a ratio: the largest window of that ratio inside the image, times ``scale`` (0 < scale
    <= 1).  ``"WxH"`` (e.g. ``"400x300"``): exactly that many pixels (it must fit; ``scale`` must be 1).

    >>> window_size((600, 800), "16:9"), window_size((600, 800), "9:16"), window_size((600, 800), "400x300")
    ((450, 800), (600, 338), (300, 400))
    """
    h, w = int(shape[0]), int(shape[1])
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale <= 1:
        raise InputError(f"scale must be a number in (0, 1], got {scale!r}")
    ratio: float
    if isinstance(aspect, str):
        m = _SIZE.match(aspect)
        if m:
            ww, wh = int(m.group(1)), int(m.group(2))
            if ww < 1 or wh < 1 or ww > w or wh > h:
                raise InputError(f"a {ww}x{wh} crop does not fit in the {w}x{h} image; give a smaller size, "
                                 f"or the ratio {ww}:{wh} for the largest window of that shape")
            if scale != 1:
                raise InputError("scale applies to a ratio (W:H), not to a size in pixels (WxH)")
            return wh, ww
        m = _RATIO.match(aspect)
        if not m or float(m.group(2)) == 0 or float(m.group(1)) == 0:
            raise InputError(f"aspect must be W:H (e.g. 16:9, 1:1, 9:16) or WxH in pixels (e.g. 400x300), "
                             f"got {aspect!r}")
        ratio = float(m.group(1)) / float(m.group(2))
    elif isinstance(aspect, (tuple, list)) and len(aspect) == 2:
        a, b = aspect
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in (a, b)):
            raise InputError(f"an aspect pair is (W, H) with both > 0, got {aspect!r}")
        ratio = float(a) / float(b)
    elif isinstance(aspect, (int, float)) and not isinstance(aspect, bool) and math.isfinite(aspect) and aspect > 0:
        ratio = float(aspect)
    else:
        raise InputError(f"aspect must be W:H, WxH, a ratio > 0 or a pair (W, H), got {aspect!r}")
    if w / h > ratio:  # the image is wider than the ratio: full height
        wh, ww = h, h * ratio
    else:
        wh, ww = w / ratio, w
    wh, ww = wh * scale, ww * scale
    return max(1, min(h, int(round(wh)))), max(1, min(w, int(round(ww))))


def _rect_sums(sat: np.ndarray, wh: int, ww: int) -> np.ndarray:
    """Mass of the ``wh x ww`` window at every position, from the ``(H + 1, W + 1)`` summed-area table:
    ``(H - wh + 1, W - ww + 1)``."""
    return sat[wh:, ww:] - sat[:-wh, ww:] - sat[wh:, :-ww] + sat[:-wh, :-ww]


def _thirds_profile(n: int) -> np.ndarray:
    """Weights along one side of the window: bumps at 1/3 and 2/3 (sigma = n / 12), mean 1."""
    u = (np.arange(n) + 0.5) / n
    g = np.exp(-((u - 1 / 3) ** 2) / (2 * (1 / 12) ** 2)) + np.exp(-((u - 2 / 3) ** 2) / (2 * (1 / 12) ** 2))
    return g / g.mean()


def _window_sums_1d(profile: np.ndarray, n: int) -> np.ndarray:
    """Sums of every run of ``n`` consecutive entries of ``profile``."""
    c = np.concatenate(([0.0], np.cumsum(profile)))
    return c[n:] - c[:-n]


def _objective(sal: np.ndarray, wh: int, ww: int, margin: float,
               thirds: float) -> tuple[np.ndarray, np.ndarray, float]:
    """(objective, plain mass, total mass): the first two for every window position, ``(H - wh + 1,
    W - ww + 1)``.

    When the window spans the image's full height (or width), as the largest window of a ratio does,
    there is one row (column) of positions and the summed-area table reduces to a cumulative sum of the
    column (row) sums.
    """
    h, w = sal.shape
    ny, nx = h - wh + 1, w - ww + 1
    my, mx = int(round(margin * wh)), int(round(margin * ww))
    ih, iw = max(1, wh - 2 * my), max(1, ww - 2 * mx)
    gy = _thirds_profile(wh) if thirds > 0 else None
    gx = _thirds_profile(ww) if thirds > 0 else None
    if ny == 1 or nx == 1:
        axis = 0 if ny == 1 else 1  # the axis the window spans fully
        n, m_off, m_len = (ww, mx, iw) if axis == 0 else (wh, my, ih)
        full_off, full_len = (my, ih) if axis == 0 else (mx, iw)
        sl = [slice(None), slice(None)]
        sl[axis] = slice(full_off, full_off + full_len)
        profile = sal.sum(axis=axis)
        mass = _window_sums_1d(profile, n)
        obj = _window_sums_1d(sal[tuple(sl)].sum(axis=axis), m_len)[m_off:m_off + mass.size] if margin > 0 else mass
        if thirds > 0:
            across, along = (gy, gx) if axis == 0 else (gx, gy)
            weighted = across @ sal if axis == 0 else sal @ across
            obj = (1.0 - thirds) * obj + thirds * np.correlate(weighted, along, mode="valid")
        shape = (1, mass.size) if axis == 0 else (mass.size, 1)
        return obj.reshape(shape), mass.reshape(shape), float(profile.sum())
    sat = cv2.integral(sal.astype(np.float64), sdepth=cv2.CV_64F)
    mass = _rect_sums(sat, wh, ww)
    if margin > 0:
        obj = (sat[my + ih:my + ih + ny, mx + iw:mx + iw + nx] - sat[my:my + ny, mx + iw:mx + iw + nx]
               - sat[my + ih:my + ih + ny, mx:mx + nx] + sat[my:my + ny, mx:mx + nx])
    else:
        obj = mass
    if thirds > 0:
        from scipy.signal import fftconvolve

        both = fftconvolve(sal, np.outer(gy, gx)[::-1, ::-1], mode="valid")
        obj = (1.0 - thirds) * obj + thirds * both
    return obj, mass, float(sat[-1, -1])


def _overlap_iou(y: np.ndarray, x: np.ndarray, cy: int, cx: int, wh: int, ww: int) -> np.ndarray:
    inter = np.maximum(0, wh - np.abs(y - cy)) * np.maximum(0, ww - np.abs(x - cx))
    return inter / (2.0 * wh * ww - inter)


def best_windows(saliency: np.ndarray, size: tuple[int, int], *, candidates: int = 1, margin: float = 0.0,
                 thirds: float = 0.0, max_overlap: float = 0.3) -> list[Window]:
    """The ``candidates`` best windows of ``size`` ``(height, width)`` over a non-negative map.

    The best position maximises the objective; each next candidate is the best position whose window
    overlaps every earlier one by at most ``max_overlap`` (IoU; 0 = disjoint).  Fewer are returned when no
    position is left.  Ties (e.g. a blank map) go to the position nearest the image centre.

    Examples
    --------
    >>> sal = np.zeros((10, 30)); sal[:, 2] = 1; sal[:, 25] = 2
    >>> [(w.x0, w.share) for w in best_windows(sal, (10, 10), candidates=2, max_overlap=0)]
    [(16, 0.6666666666666666), (2, 0.3333333333333333)]
    """
    s = np.asarray(saliency, dtype=np.float64)
    if s.ndim != 2 or s.size == 0:
        raise InputError(f"the saliency map must be a non-empty 2-D array, got shape {s.shape}")
    wh, ww = int(size[0]), int(size[1])
    if not (1 <= wh <= s.shape[0] and 1 <= ww <= s.shape[1]):
        raise InputError(f"a {ww}x{wh} window does not fit in the {s.shape[1]}x{s.shape[0]} map")
    for name, v, hi in (("margin", margin, 0.49), ("thirds", thirds, 1.0), ("max_overlap", max_overlap, 1.0)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= hi:
            raise InputError(f"{name} must be a number in [0, {hi}], got {v!r}")
    if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
        raise InputError(f"candidates must be a whole number >= 1, got {candidates!r}")
    obj, mass, total = _objective(s, wh, ww, float(margin), float(thirds))
    if not math.isfinite(total) or float(s.min()) < 0:
        raise InputError("the saliency map must be finite and non-negative (crop normalises maps to [0, 1] first)")
    norm = total if total > 0 else 1.0
    ny, nx = obj.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    # distance of each position to the centred one, for tie-breaking
    centre_d = (yy - (ny - 1) / 2.0) ** 2 + (xx - (nx - 1) / 2.0) ** 2
    free = np.ones_like(obj, dtype=bool)
    out: list[Window] = []
    tol = 1e-9 * max(1.0, float(np.abs(obj).max()))
    while len(out) < candidates and free.any():
        masked = np.where(free, obj, -np.inf)
        best = float(masked.max())
        ties = free & (obj >= best - tol)
        k = int(np.argmin(np.where(ties, centre_d, np.inf)))
        y, x = divmod(k, nx)
        out.append(Window(int(x), int(y), int(x + ww), int(y + wh), float(obj[y, x] / norm),
                          float(mass[y, x] / norm), rank=len(out) + 1))
        free &= _overlap_iou(yy, xx, y, x, wh, ww) <= max_overlap
    return out


def centre_window(shape: tuple[int, int], size: tuple[int, int]) -> Window:
    """The centred window of ``size`` ``(height, width)`` (score and share 0: no map involved)."""
    h, w = shape
    wh, ww = size
    y0, x0 = (h - wh) // 2, (w - ww) // 2
    return Window(x0, y0, x0 + ww, y0 + wh, 0.0, 0.0)


def crop(image: Any, aspect: Any = "1:1", *, method: str | None = None, candidates: int = 1,
         scale: float = 1.0, margin: float = 0.0, thirds: float = 0.0, max_overlap: float = 0.3,
         saliency: Any = None, model: Any = None, target: Any = None, layer: Any = None,
         **params: Any) -> list[Window]:
    """Crop windows of an image that keep the most saliency mass, best first.

    Parameters
    ----------
    image:
        Anything :func:`salience.load_image` accepts.
    aspect:
        ``"16:9"``, ``"1:1"``, ``"9:16"``, any ``"W:H"``, a ratio, or ``"WxH"`` in pixels (see
        :func:`window_size`).
    method:
        Any registry method (bottom-up or explanation); ``blur`` / ``centre_bias`` and method parameters
        go in ``**params``.  Default (``None``): :data:`DEFAULT_CROP_METHOD` with the blur + centre prior
        :data:`DEFAULT_CROP_PRIOR` (unless ``blur`` or ``centre_bias`` is given).
    candidates, margin, thirds, max_overlap:
        See :func:`best_windows`; ``margin`` is a fraction of the window's side (0 .. 0.49), ``thirds`` the
        weight of the rule-of-thirds term (0 .. 1).
    scale:
        Window size as a fraction of the largest window of the ratio (0 < scale <= 1).
    saliency:
        A precomputed map instead of ``method`` (resized bilinearly to the image when needed).

    Returns
    -------
    list of Window
        Best first; ``cut(image, window)`` gives the pixels.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((60, 120, 3), np.float32); img[20:40, 10:30] = 1.0
    >>> w = crop(img, "1:1", method="frequency-tuned")[0]
    >>> w.x0 <= 10 and w.x1 >= 30, w.width == w.height == 60
    (True, True)
    """
    if method is None:
        method = DEFAULT_CROP_METHOD
        if saliency is None and "blur" not in params and "centre_bias" not in params:
            params = {**DEFAULT_CROP_PRIOR, **params}
    img, sal, _ = image_and_map(image, method, saliency, model=model, target=target, layer=layer, **params)
    size = window_size(sal.shape, aspect, scale=scale)
    return best_windows(sal, size, candidates=candidates, margin=margin, thirds=thirds, max_overlap=max_overlap)


def cut(image: np.ndarray, window: Window) -> np.ndarray:
    """The pixels of ``image`` inside ``window`` (a view)."""
    return image[window.y0:window.y1, window.x0:window.x1]
