"""Dyadic Gaussian pyramids and the across-scale operators of Itti, Koch & Niebur (1998).

The model works on nine spatial scales: scale 0 is the image, scale ``k`` is the image low-pass filtered
and subsampled ``k`` times by two (reduction factors ``1:1`` to ``1:256``).  Two operators connect scales:

``⊖`` (across-scale difference)
    the coarser map is interpolated to the finer scale and subtracted point by point
    (:func:`across_scale_difference` returns ``|centre ⊖ surround|``);
``⊕`` (across-scale addition)
    every map is brought to one common scale and the maps are added point by point
    (:func:`across_scale_add`).

Geometry.  ``cv2.pyrDown`` keeps every second sample, so pixel ``i`` of level ``k`` sits on pixel
``2^k i`` of the image (not on the centre of a ``2^k``-pixel cell, which is what ``cv2.resize``
assumes).  Every operator here keeps that convention, so nothing is shifted when maps move between
scales: coarser to finer is bilinear interpolation at ``x / 2^m`` (:func:`expand_bilinear`) or the
pyramid's own EXPAND (:func:`expand_levels`); finer to coarser is the pyramid's REDUCE
(:func:`reduce_levels`, i.e. ``cv2.pyrDown``).  Mixing in ``cv2.resize`` would move a coarse map by
``(2^m - 1) / 2`` fine pixels: 7.5 image pixels for a scale-4 map.

All functions take and return float32 arrays, ``(H, W)`` or ``(H, W, C)`` (channels processed
independently), and never modify their inputs.

Reference: L. Itti, C. Koch, E. Niebur. A model of saliency-based visual attention for rapid scene
analysis. IEEE TPAMI 20(11):1254-1259, 1998 (Section 2); P. Burt, E. Adelson. The Laplacian pyramid as a
compact image code. IEEE Trans. Communications 31(4):532-540, 1983 (REDUCE / EXPAND).

>>> import numpy as np
>>> from salience.bottomup.pyramid import gaussian_pyramid, across_scale_difference
>>> pyr = gaussian_pyramid(np.ones((480, 640), np.float32), 9)
>>> [p.shape for p in pyr][:3], pyr[8].shape
([(480, 640), (240, 320), (120, 160)], (2, 3))
>>> float(across_scale_difference(pyr[2], pyr[5]).max())  # a uniform image has no contrast
0.0
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from ..errors import InputError

__all__ = [
    "gaussian_pyramid",
    "pyramid_sizes",
    "level_offset",
    "laplacian_level",
    "reduce_levels",
    "expand_levels",
    "expand_bilinear",
    "to_size",
    "resize_map",
    "across_scale_difference",
    "across_scale_add",
]


def _check_float_map(arr: np.ndarray, name: str) -> np.ndarray:
    if not isinstance(arr, np.ndarray) or arr.ndim not in (2, 3) or arr.size == 0:
        shape = getattr(arr, "shape", None)
        raise InputError(f"{name} must be a non-empty (H, W) or (H, W, C) numpy array, got shape {shape}")
    if arr.dtype != np.float32 or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    return arr


def _keep_channels(out: np.ndarray, like: np.ndarray) -> np.ndarray:
    """OpenCV drops a trailing channel axis of length 1; put it back so shapes stay predictable."""
    if like.ndim == 3 and out.ndim == 2:
        return out[:, :, None]
    return out


def _half(n: int) -> int:
    return (n + 1) // 2


def pyramid_sizes(height: int, width: int, levels: int) -> list[tuple[int, int]]:
    """The ``(H, W)`` of each of ``levels`` levels that :func:`gaussian_pyramid` makes of an image.

    >>> pyramid_sizes(480, 640, 5)[-1]
    (30, 40)
    """
    sizes = [(int(height), int(width))]
    for _ in range(int(levels) - 1):
        h, w = sizes[-1]
        sizes.append((_half(h), _half(w)))
    return sizes


def level_offset(fine: tuple[int, int], coarse: tuple[int, int]) -> int:
    """``m`` such that ``coarse`` is ``m`` pyramid levels above ``fine`` (sizes ``(H, W)``).

    Raises :class:`~salience.errors.InputError` when the two sizes are not levels of one pyramid.

    >>> level_offset((480, 640), (30, 40))
    4
    """
    h, w = int(fine[0]), int(fine[1])
    target = (int(coarse[0]), int(coarse[1]))
    for m in range(64):
        if (h, w) == target:
            return m
        if h == 1 and w == 1:
            break
        h, w = _half(h), _half(w)
    raise InputError(
        f"a map of size {tuple(coarse)} is not a pyramid level of size {tuple(fine)} (each level halves "
        "the size, rounding up); pass maps taken from one gaussian_pyramid()"
    )


def gaussian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """A dyadic Gaussian pyramid: ``levels`` arrays, level 0 being ``image`` itself.

    Level ``k + 1`` is ``cv2.pyrDown`` of level ``k`` (Burt & Adelson's REDUCE): the 5 x 5 binomial
    low-pass filter (``[1, 4, 6, 4, 1] / 16`` in each direction, borders mirrored without repeating the
    edge pixel) followed by keeping every second row and column from the first, so an ``(H, W)`` level
    becomes ``(ceil(H/2), ceil(W/2))``.  Sizes stop shrinking at one pixel.

    Parameters
    ----------
    image:
        float32 ``(H, W)`` or ``(H, W, C)`` (other dtypes are converted; the input is not modified).
    levels:
        Number of levels, >= 1 (Itti et al. 1998 use 9: scales 0 to 8).

    Returns
    -------
    list of numpy.ndarray
        float32 arrays, coarser with each index.  Level 0 is the (possibly converted) input array itself,
        not a copy: treat it as read-only.

    >>> [p.shape for p in gaussian_pyramid(np.zeros((5, 9), np.float32), 4)]
    [(5, 9), (3, 5), (2, 3), (1, 2)]
    """
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels < 1:
        raise InputError(f"levels must be an integer >= 1, got {levels!r}")
    arr = _check_float_map(image, "image")
    return [arr] + reduce_levels(arr, int(levels) - 1, keep_all=True)


def reduce_levels(arr: np.ndarray, m: int, *, keep_all: bool = False):
    """REDUCE ``m`` times (``cv2.pyrDown``): the map ``m`` pyramid levels up (or all of them).

    >>> reduce_levels(np.ones((120, 160), np.float32), 2).shape
    (30, 40)
    """
    arr = _check_float_map(arr, "map")
    out = []
    cur = arr
    for _ in range(int(m)):
        cur = _keep_channels(cv2.pyrDown(cur), arr)
        out.append(cur)
    if keep_all:
        return out
    return cur if out else arr


def _expand_once(coarse: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """EXPAND to ``size`` with mirrored borders on both sides.

    The coarse map is extended by one mirrored pixel, ``cv2.pyrUp`` interpolates and the result is cropped
    (``cv2.pyrUp`` alone treats its right/bottom border differently from its left/top one, which would make
    results depend on how the image is turned).  Fine pixel ``i`` is pixel ``i + 2`` of the padded result.
    """
    h, w = size
    padded = cv2.copyMakeBorder(coarse, 1, 1, 1, 1, cv2.BORDER_REFLECT_101)
    up = _keep_channels(cv2.pyrUp(padded), coarse)
    return np.ascontiguousarray(up[2:2 + h, 2:2 + w])


def expand_levels(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """EXPAND (``cv2.pyrUp``, mirrored borders) level by level until the map has ``size = (H, W)``.

    ``size`` must be a pyramid level below the map's (see :func:`level_offset`).  Sample positions are
    kept (coarse pixel ``i`` stays over fine pixel ``2^m i``); the values are smoothed slightly, as
    EXPAND does.  Always returns a new array.

    >>> expand_levels(np.ones((30, 40), np.float32), (480, 640)).shape
    (480, 640)
    """
    arr = _check_float_map(arr, "map")
    sizes = pyramid_sizes(size[0], size[1], level_offset(size, arr.shape[:2]) + 1)
    cur = arr
    for target in reversed(sizes[:-1]):
        cur = _expand_once(cur, target)
    return cur.copy() if cur is arr else cur


def expand_bilinear(arr: np.ndarray, size: tuple[int, int], *, dst: np.ndarray | None = None) -> np.ndarray:
    """Bilinear interpolation of a coarse pyramid level to the finer level of ``size = (H, W)``.

    Fine pixel ``x`` takes the value at coarse position ``x / 2^m`` (the pyramid's sample positions),
    clamped at the last coarse sample.  ``cv2.warpAffine`` does the work; its 1/32-pixel weight grid
    represents every ``x / 2^m`` exactly for ``m <= 5``.

    >>> c = np.array([[0.0, 1.0]], np.float32)
    >>> expand_bilinear(c, (1, 3))
    array([[0. , 0.5, 1. ]], dtype=float32)
    """
    arr = _check_float_map(arr, "map")
    h, w = int(size[0]), int(size[1])
    m = level_offset((h, w), arr.shape[:2])
    if m == 0:
        if dst is None:
            return arr.copy()
        dst[...] = arr.reshape(dst.shape)
        return dst
    f = 1.0 / (1 << m)
    mat = np.array([[f, 0.0, 0.0], [0.0, f, 0.0]])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    shape = (h, w) + arr.shape[2:]
    if arr.ndim == 3 and arr.shape[2] > 4:  # OpenCV's remap takes at most 4 channels at a time
        out = dst if dst is not None else np.empty(shape, np.float32)
        for k in range(0, arr.shape[2], 4):
            part = np.ascontiguousarray(arr[:, :, k:k + 4])
            r = cv2.warpAffine(part, mat, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE)
            out[:, :, k:k + 4] = r.reshape(h, w, -1)
        return out
    if dst is not None:
        cv2.warpAffine(arr, mat, (w, h), dst=dst, flags=flags, borderMode=cv2.BORDER_REPLICATE)
        return dst
    return _keep_channels(cv2.warpAffine(arr, mat, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE), arr)


def to_size(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bring a pyramid level to another level of the same pyramid: REDUCE to coarser, bilinear to finer.

    Returns ``arr`` itself when it has that size already.

    >>> to_size(np.ones((120, 160), np.float32), (30, 40)).shape
    (30, 40)
    """
    arr = _check_float_map(arr, "map")
    cur = arr.shape[:2]
    target = (int(size[0]), int(size[1]))
    if cur == target:
        return arr
    if target[0] <= cur[0] and target[1] <= cur[1]:
        return reduce_levels(arr, level_offset(cur, target))
    return expand_bilinear(arr, target)


def resize_map(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to any ``size = (H, W)`` (cell-centred geometry): area averaging when shrinking, bilinear
    interpolation otherwise.  For maps that are not pyramid levels of one another.

    Returns ``arr`` itself (not a copy) when it already has that size.

    >>> resize_map(np.ones((8, 8), np.float32), (2, 4)).shape
    (2, 4)
    """
    arr = _check_float_map(arr, "map")
    h, w = int(size[0]), int(size[1])
    if h < 1 or w < 1:
        raise InputError(f"size must be two positive integers (H, W), got {size!r}")
    if arr.shape[0] == h and arr.shape[1] == w:
        return arr
    shrink = h <= arr.shape[0] and w <= arr.shape[1]
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    if arr.ndim == 3 and arr.shape[2] > 4 and interp == cv2.INTER_AREA:
        try:  # integer factors have a fast path for any number of channels
            return cv2.resize(arr, (w, h), interpolation=interp)
        except cv2.error:
            pass
        # OpenCV's general area filter takes at most 4 channels: resize 4 at a time.
        chunks = [np.ascontiguousarray(arr[:, :, k:k + 4]) for k in range(0, arr.shape[2], 4)]
        return np.concatenate(
            [_keep_channels(cv2.resize(c, (w, h), interpolation=interp), c) for c in chunks], axis=2
        )
    return _keep_channels(cv2.resize(arr, (w, h), interpolation=interp), arr)


def laplacian_level(fine: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """One level of a Laplacian pyramid: ``fine - EXPAND(coarse)`` (a band-pass image).

    ``coarse`` must be the next Gaussian-pyramid level of ``fine``.  EXPAND uses the pyramid's binomial
    filter with mirrored borders on all four sides.  The result is zero wherever the image is uniform,
    which makes it the right input for orientation (Gabor) filters (Greenspan et al. 1994, the
    construction Itti et al. 1998 cite for their oriented pyramids).

    >>> lv = laplacian_level(np.ones((8, 8), np.float32), np.ones((4, 4), np.float32))
    >>> float(abs(lv).max())
    0.0
    """
    fine = _check_float_map(fine, "fine")
    coarse = _check_float_map(coarse, "coarse")
    m = level_offset(fine.shape[:2], coarse.shape[:2])
    if not (m == 1 or (m == 0 and fine.shape[:2] == (1, 1))):
        raise InputError(
            f"coarse level {coarse.shape[:2]} is not the next pyramid level of {fine.shape[:2]}; pass "
            "consecutive levels of gaussian_pyramid()"
        )
    up = _expand_once(coarse, fine.shape[:2])
    return _keep_channels(cv2.subtract(fine, up), fine)


def across_scale_difference(centre: np.ndarray, surround: np.ndarray) -> np.ndarray:
    """``|centre ⊖ surround|``: the surround level interpolated to the centre level, subtracted, rectified.

    The interpolation is bilinear at the pyramid's sample positions (:func:`expand_bilinear`): the
    "interpolation to the finer scale" of Itti et al. (1998, Section 2.1).  ``surround`` must be a coarser
    level of the same pyramid as ``centre``; shapes ``(h, w)`` or ``(h, w, C)``.  The result has the
    centre's shape, float32, >= 0.

    >>> c = np.zeros((9, 9), np.float32); c[4, 4] = 1.0
    >>> float(across_scale_difference(c, np.zeros((3, 3), np.float32))[4, 4])
    1.0
    """
    centre = _check_float_map(centre, "centre")
    surround = _check_float_map(surround, "surround")
    if centre.ndim != surround.ndim or (centre.ndim == 3 and centre.shape[2] != surround.shape[2]):
        raise InputError(
            f"centre {centre.shape} and surround {surround.shape} must have the same number of channels"
        )
    up = expand_bilinear(surround, centre.shape[:2])
    return _keep_channels(cv2.absdiff(centre, up), centre)


def across_scale_add(maps: Iterable[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """``⊕``: every map brought to the pyramid level of ``size = (H, W)`` (:func:`to_size`) and added.

    >>> across_scale_add([np.ones((8, 8), np.float32), np.ones((2, 2), np.float32)], (4, 4))[0, 0]
    np.float32(2.0)
    """
    total: np.ndarray | None = None
    for m in maps:
        r = to_size(m, size)
        total = r.copy() if total is None else total + r
    if total is None:
        raise InputError("across_scale_add needs at least one map")
    return total
