"""Fixation inputs of the metrics, resolved once (internal to :mod:`salience.metrics`).

The validation and resolution shared by the metric functions (:mod:`salience.metrics.fixation`) and the
ground-truth preparation (:mod:`salience.metrics.groundtruth`): the named conventions, fixations as flat
pixel indices (:class:`Fix`), the checks of a continuous ground truth, pysaliency's density and the
baseline side of information gain.  The names here are public to those modules only; the package's public
names are in :mod:`salience.metrics`.
"""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np

from ..errors import InputError
from ..io import check_map
from ._fast import nonzero_bytes
from .points import clip_to_image

#: The two named conventions.
CONVENTIONS: tuple[str, ...] = ("mit", "tuebingen")

#: MATLAB's ``eps`` (2**-52), used by the MIT code in KLdiv and InfoGain.
EPS = 2.220446049250313e-16


def check_convention(convention: str) -> str:
    if convention not in CONVENTIONS:
        raise InputError(
            f"unknown convention {convention!r}; expected one of {', '.join(map(repr, CONVENTIONS))} "
            "('mit' reproduces the MIT Saliency Benchmark code, 'tuebingen' pysaliency)"
        )
    return convention


class Fix:
    """Fixations resolved to flat pixel indices of an (H, W) image."""

    __slots__ = ("shape", "flat", "unique", "is_map")

    def __init__(self, shape: tuple[int, int], flat: np.ndarray, is_map: bool):
        self.shape = shape
        # One entry per fixation (points) or per fixated pixel (map), in raster order whatever the source:
        # the same fixations given as points or as a (count) map then give the same index array, so every
        # sum over them runs in the same order and the two routes agree bit for bit on any CPU.
        self.flat = np.sort(flat, kind="stable")
        self.unique = np.unique(flat)
        self.is_map = is_map

    def pixels(self, convention: str) -> np.ndarray:
        """MIT sees the set of fixated pixels; pysaliency every fixation."""
        return self.unique if convention == "mit" else self.flat


def is_points(a: np.ndarray) -> bool:
    return a.ndim == 2 and a.shape[1] == 2 and not (a.dtype == bool)


def points_to_flat(pts: np.ndarray, shape: tuple[int, int], name: str) -> np.ndarray:
    pts, _ = clip_to_image(pts, shape, name=name)  # the one border rule (metrics/points.py)
    h, w = shape
    col = np.floor(pts[:, 0] + 0.5).astype(np.int64)
    row = np.floor(pts[:, 1] + 0.5).astype(np.int64)
    return row * w + col


def resolve_fixations(
    fixations: Any, default_shape: tuple[int, int], name: str = "fixations", *, allow_empty: bool = False
) -> Fix:
    a = np.asarray(fixations)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise InputError(f"{name} must be an (N, 2) array of (x, y) points or a 2-D binary map, got dtype {a.dtype}")
    if a.size == 0 and a.ndim <= 2:
        fix = Fix(cast("tuple[int, int]", tuple(default_shape)), np.empty(0, np.int64), False)
    elif is_points(a) and a.shape != tuple(default_shape):
        flat = points_to_flat(a.astype(np.float64, copy=False), default_shape, name)
        fix = Fix(cast("tuple[int, int]", tuple(default_shape)), flat, False)
    elif a.ndim == 2:
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise InputError(f"{name} (a fixation map) contains NaN or infinite values")
        if a.dtype.kind in "if" and np.any(a < 0):
            raise InputError(f"{name} (a fixation map) has negative values; expected a binary 0/1 map")
        nz = flatnonzero(a)
        vals = a.ravel()[nz]
        if vals.size and a.dtype != bool and np.any(vals != 1) and np.all(vals == np.round(vals)):
            flat = np.repeat(nz, vals.astype(np.int64))  # a count map: n fixations on that pixel
        else:
            flat = nz
        fix = Fix((int(a.shape[0]), int(a.shape[1])), flat, True)
    else:
        raise InputError(
            f"{name} must be an (N, 2) array of (x, y) points or a 2-D binary map of the image's size, "
            f"got shape {a.shape}"
        )
    if fix.flat.size == 0 and not allow_empty:
        raise InputError(
            f"{name} is empty: no fixation to score against; skip this image or pass at least one fixation"
        )
    return fix


def flatnonzero(a: np.ndarray) -> np.ndarray:
    """``np.flatnonzero(a)``; for a sparse 1-byte map (binary fixation maps) it scans 8 pixels per 64-bit
    word first (~5x faster; the same indices)."""
    if a.itemsize == 1 and a.flags.c_contiguous and a.size % 8 == 0 and a.size >= 4096:
        flat = a.reshape(-1)
        fast = nonzero_bytes(flat.view(np.uint8))
        if fast is not None:
            return fast
        words = np.flatnonzero(flat.view(np.uint64))
        cand = (words[:, None] * 8 + np.arange(8)).ravel()
        return cand[flat[cand] != 0]
    return np.flatnonzero(a)


def shape_of_fixations(fixations: Any) -> tuple[int, int] | None:
    """The image size a fixation *map* implies (None for points)."""
    a = np.asarray(fixations)
    if a.ndim == 2 and a.size and not is_points(a):
        return (int(a.shape[0]), int(a.shape[1]))
    return None


def target_shape(saliency: np.ndarray, fixations: Any, fixation_map: Any = None) -> tuple[int, int]:
    if fixation_map is not None:
        return tuple(np.shape(fixation_map))[:2]  # type: ignore[return-value]
    s = shape_of_fixations(fixations)
    return s if s is not None else saliency.shape  # type: ignore[return-value]


def check_gt(fixation_map: Any, name: str = "fixation_map") -> np.ndarray:
    g = check_map(fixation_map, name)
    if not np.any(g):
        raise InputError(f"{name} is all zero: there is no fixation density to compare against")
    return g


def density(m: np.ndarray) -> np.ndarray:
    """pysaliency's ``convert_saliency_map_to_density(m, minimum_value=0)``."""
    lo = m.min()
    if lo < 0:
        m = m - lo
    total = m.sum()
    if total:
        return m / total
    return np.full(m.shape, 1.0 / m.size)


def minmax_sum_normalised(m: np.ndarray, pix: np.ndarray, stats: tuple[float, float, float]) -> np.ndarray:
    """MIT's ``m = (m - min)/(max - min); m = m/sum(m)`` at the pixels ``pix`` only.

    The sum of the normalised map is taken as ``(sum(m) - N min)/(max - min)`` (one reduction instead of a
    normalised copy); it differs from MATLAB's by round-off (~1e-15 relative).
    """
    lo, hi, s = stats
    total = (s - m.size * lo) / (hi - lo)
    return ((m.ravel()[pix] - lo) / (hi - lo)) / total


def baseline_terms(b: np.ndarray, fix: Fix, convention: str) -> float | np.ndarray:
    """IG's baseline side at the fixations: MIT ``log2(eps + B)``, pysaliency ``log(B)`` (NaN: constant)."""
    if convention == "mit":
        blo, bhi = float(b.min()), float(b.max())
        if not bhi > blo:
            return math.nan
        mb = minmax_sum_normalised(b, fix.unique, (blo, bhi, float(b.sum())))
        return np.log2(EPS + mb)
    blo, total = float(b.min()), float(b.sum())
    off = blo if blo < 0 else 0.0
    total -= b.size * off  # the shifted sum (up to round-off)
    with np.errstate(divide="ignore"):
        if total == 0 or not float(b.max()) > blo:  # pysaliency: a map of sum 0 becomes uniform
            return np.log(density(b).ravel()[fix.flat])
        return np.log((b.ravel()[fix.flat] - off) / total)


