"""Eye-fixation metrics: how well a saliency map predicts where people looked.

Nine metrics as pure functions, each under two named conventions:

``convention="mit"``
    Reproduces the official MIT Saliency Benchmark code (``code_forMetrics`` of cvzoya/saliency: Judd et
    al. 2012; Bylinskii et al., "What do different evaluation metrics tell us about saliency models?",
    TPAMI 2019): its min-max normalisations, ``std`` with N-1, ``eps = 2**-52``, its thresholds, its jitter,
    its bicubic ``imresize`` and its ``run_antonioGaussian`` blur.  Fixations are the *set of fixated
    pixels* (a binary map), as the MIT code sees them.
``convention="tuebingen"``
    Reproduces pysaliency 0.2.22 (Kümmerer et al., "Saliency benchmarking made easy", ECCV 2018), the
    MIT/Tübingen benchmark's code: exact ROC areas over all thresholds (ties count one half), per-fixation
    averaging (a pixel fixated twice counts twice when fixations are given as points), ``std`` with N,
    densities by division by the sum, bilinear ``scipy.ndimage.zoom`` resizing.

Inputs
------
``saliency_map``
    2-D array ``(h, w)``, any real dtype, finite.  A map of another size than the fixation data is resized
    the way the convention does it.
``fixations``
    Either an ``(N, 2)`` array of ``(x, y)`` positions in pixels, 0-based, pixel centres at integers
    (``x`` = column), or a binary/boolean map ``(H, W)`` of the image's size (non-zero = fixated; an
    integer count map, see :func:`fixation_map_from_points`, counts each pixel that many times under
    ``tuebingen``).  Points
    go to the pixel ``(floor(y + 0.5), floor(x + 0.5))`` (MATLAB's ``round`` of the 1-based coordinate,
    halves away from zero; *not* ``numpy.round``); they must lie in ``[-0.5, W - 0.5) x [-0.5, H - 0.5)``
    (up to one pixel beyond it they are clipped onto the border: :mod:`salience.metrics.points`).
    Points are in the saliency map's pixel grid unless a fixation map fixes the image size (for a map of
    another size than the image, pass a (count) map made by :func:`fixation_map_from_points`).
``fixation_map``
    Continuous ground truth ``(H, W)`` for CC, KLD, SIM and EMD (non-negative values, any scale), e.g.
    :func:`fixation_density_map`.

Degenerate input (see ``docs/metrics.md``): a NaN or infinite value, an empty fixation set, points outside
the image or an all-zero ground truth raise :class:`~salience.errors.InputError`.  A constant saliency map
returns ``nan`` exactly where the official MIT code does (AUC, SIM, InfoGain) and also for NSS and CC
(where the official code returns a round-off artefact), always with a :class:`DegenerateInputWarning`.

>>> import numpy as np
>>> from salience.metrics import evaluate
>>> yy, xx = np.mgrid[0:60, 0:80]
>>> smap = np.exp(-((xx - 40) ** 2 + (yy - 30) ** 2) / 200.0)
>>> fix = np.array([[40.0, 30.0], [42.0, 28.0], [10.0, 50.0]])
>>> scores = evaluate(smap, fix, metrics=["nss", "auc_judd"], rng=0)
>>> round(scores["auc_judd"], 3)
0.868
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from ..errors import InputError
from ..io import check_map
from ._emd import emd_hat_gd_metric
from ._fast import (
    fused_sums,
    map_stats,
    nonzero_bytes,
    quantised_levels,
)
from ._resize import imresize_bicubic, resize_to, shrink_matrices
from ._roc import (
    exact_auc,
    exact_auc_all,
    judd_roc_tuebingen,
    mit_judd_auc,
    split_aucs,
)
from .points import clip_to_image

__all__ = [
    "METRICS",
    "CONVENTIONS",
    "EPS",
    "DegenerateInputWarning",
    "auc_judd",
    "auc_borji",
    "sauc",
    "nss",
    "cc",
    "kld",
    "sim",
    "information_gain",
    "emd",
    "evaluate",
    "parse_metrics",
    "GroundTruth",
    "prepare_ground_truth",
    "fixation_density_map",
    "fixation_map_from_points",
    "centre_bias_map",
    "degrees_to_pixels",
    "pixels_per_degree",
]

#: Metric names accepted by :func:`evaluate`, in its output order.
METRICS: tuple[str, ...] = ("auc_judd", "auc_borji", "sauc", "nss", "cc", "kld", "sim", "ig", "emd")

#: AUC-Borji / sAUC: random splits of non-fixations, and the threshold step (MIT benchmark code)
N_SPLITS = 100
STEP = 0.1
#: EMD: the maps are shrunk by this factor before the transport problem (MIT benchmark code)
EMD_DOWNSIZE = 32

#: The two named conventions.
CONVENTIONS: tuple[str, ...] = ("mit", "tuebingen")

#: MATLAB's ``eps`` (2**-52), used by the MIT code in KLdiv and InfoGain.
EPS = 2.220446049250313e-16

#: pysaliency's hard-coded regularisation in ``MIT_KLDiv`` (not quite ``eps``).
_PYSAL_KL_EPS = 2.2204e-16

#: Default ``sigma`` of :func:`fixation_density_map` under ``mit`` (``run_antonioGaussian(F, 25)``).
MIT_SIGMA = 25.0

_ALIASES = {"information_gain": "ig", "infogain": "ig", "kl": "kld", "kldiv": "kld", "shuffled_auc": "sauc",
            "similarity": "sim", "auc": "auc_judd"}


class DegenerateInputWarning(UserWarning):
    """A metric is undefined for this input (e.g. a constant map) and returned NaN (or an infinity)."""


# ---------------------------------------------------------------------------------------------------
# input handling
# ---------------------------------------------------------------------------------------------------


def _check_convention(convention: str) -> str:
    if convention not in CONVENTIONS:
        raise InputError(
            f"unknown convention {convention!r}; expected one of {', '.join(map(repr, CONVENTIONS))} "
            "('mit' reproduces the MIT Saliency Benchmark code, 'tuebingen' pysaliency)"
        )
    return convention


def _rng(rng: Any) -> np.random.Generator:
    if rng is None:
        return np.random.default_rng(0)
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise InputError(f"rng must be None, an int seed or a numpy.random.Generator, got {type(rng).__name__}")


def _warn(metric: str, why: str) -> None:
    warnings.warn(f"{metric}: {why}", DegenerateInputWarning, stacklevel=3)


class _Fix:
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


def _is_points(a: np.ndarray) -> bool:
    return a.ndim == 2 and a.shape[1] == 2 and not (a.dtype == bool)


def _points_to_flat(pts: np.ndarray, shape: tuple[int, int], name: str) -> np.ndarray:
    pts, _ = clip_to_image(pts, shape, name=name)  # the one border rule (metrics/points.py)
    h, w = shape
    col = np.floor(pts[:, 0] + 0.5).astype(np.int64)
    row = np.floor(pts[:, 1] + 0.5).astype(np.int64)
    return row * w + col


def _resolve_fixations(
    fixations: Any, default_shape: tuple[int, int], name: str = "fixations", *, allow_empty: bool = False
) -> _Fix:
    a = np.asarray(fixations)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise InputError(f"{name} must be an (N, 2) array of (x, y) points or a 2-D binary map, got dtype {a.dtype}")
    if a.size == 0 and a.ndim <= 2:
        fix = _Fix(tuple(default_shape), np.empty(0, np.int64), False)
    elif _is_points(a) and a.shape != tuple(default_shape):
        flat = _points_to_flat(a.astype(np.float64, copy=False), default_shape, name)
        fix = _Fix(tuple(default_shape), flat, False)
    elif a.ndim == 2:
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise InputError(f"{name} (a fixation map) contains NaN or infinite values")
        if a.dtype.kind in "if" and np.any(a < 0):
            raise InputError(f"{name} (a fixation map) has negative values; expected a binary 0/1 map")
        nz = _flatnonzero(a)
        vals = a.ravel()[nz]
        if vals.size and a.dtype != bool and np.any(vals != 1) and np.all(vals == np.round(vals)):
            flat = np.repeat(nz, vals.astype(np.int64))  # a count map: n fixations on that pixel
        else:
            flat = nz
        fix = _Fix((int(a.shape[0]), int(a.shape[1])), flat, True)
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


def _flatnonzero(a: np.ndarray) -> np.ndarray:
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


def _shape_of_fixations(fixations: Any) -> tuple[int, int] | None:
    """The image size a fixation *map* implies (None for points)."""
    a = np.asarray(fixations)
    if a.ndim == 2 and a.size and not _is_points(a):
        return (int(a.shape[0]), int(a.shape[1]))
    return None


def _target_shape(saliency: np.ndarray, fixations: Any, fixation_map: Any = None) -> tuple[int, int]:
    if fixation_map is not None:
        return tuple(np.shape(fixation_map))[:2]  # type: ignore[return-value]
    s = _shape_of_fixations(fixations)
    return s if s is not None else saliency.shape  # type: ignore[return-value]


def _check_gt(fixation_map: Any, name: str = "fixation_map") -> np.ndarray:
    g = check_map(fixation_map, name)
    if not np.any(g):
        raise InputError(f"{name} is all zero: there is no fixation density to compare against")
    return g


class _Prepared:
    """Work shared between metrics for one saliency map at the fixation data's size."""

    def __init__(self, saliency_map: Any, shape: tuple[int, int], convention: str, want: Iterable[str] = ()):
        self.raw = check_map(saliency_map, "saliency_map")
        self.convention = convention
        self.shape = tuple(shape)
        self.want = frozenset(want)  # metrics whose whole-map sums are computed together in one pass
        self._s: np.ndarray | None = None
        self._flat: np.ndarray | None = None
        self._stats: tuple[float, float, float] | None = None
        self._sums: dict[int, tuple[float, float, float, float]] = {}
        self._quant: Any = False  # False: not computed yet

    @property
    def s(self) -> np.ndarray:
        """The saliency map at the fixation data's size (resized by the convention's rule)."""
        if self._s is None:
            self._s = resize_to(self.raw, self.shape, self.convention) if self.raw.shape != self.shape else self.raw
        return self._s

    @property
    def flat(self) -> np.ndarray:
        if self._flat is None:
            self._flat = np.ascontiguousarray(self.s).ravel()
        return self._flat

    def stats_with(self, add: np.ndarray | None) -> tuple[float, float]:
        """Fills the map's (min, max, sum) and returns (min, max) of ``flat + add`` in the same pass."""
        lo, hi, total, alo, ahi = map_stats(self.flat, add)
        self._stats = (lo, hi, total)
        return alo, ahi

    @property
    def stats(self) -> tuple[float, float, float]:
        """(min, max, sum) of the map."""
        if self._stats is None:
            self.stats_with(None)
        return self._stats  # type: ignore[return-value]

    @property
    def quant(self) -> tuple[float, np.ndarray, np.ndarray] | None:
        """:func:`quantised_levels` of the map (e.g. an 8-bit image / 255), or None: lets the ROC counts
        come from a 256-level histogram instead of comparing every pixel with every threshold."""
        if self._quant is False:
            lo, hi = self.minmax
            self._quant = quantised_levels(self.flat, lo, hi)
        return self._quant

    @property
    def minmax(self) -> tuple[float, float]:
        return self.stats[0], self.stats[1]

    @property
    def constant(self) -> bool:
        lo, hi = self.minmax
        return not hi > lo

    @property
    def nonzero(self) -> bool:
        lo, hi = self.minmax
        return lo != 0.0 or hi != 0.0

    @property
    def mean(self) -> float:
        return self.stats[2] / self.flat.size

    def norm_at(self, idx: np.ndarray) -> np.ndarray:
        """MIT min-max normalisation ``(S - min) / (max - min)`` at flat indices (elementwise as numpy)."""
        lo, hi = self.minmax
        v = self.flat[idx] - lo
        v /= hi - lo
        return v

    def density_params(self) -> tuple[float, float]:
        """``(offset, total)`` with pysaliency's density ``(S - offset) / total`` (the map shifted to a
        minimum of 0 when negative); ``total`` is ``sum(S) - N offset`` (equal to the shifted sum up to
        round-off).  Only for non-constant maps."""
        lo, _, total = self.stats
        if lo < 0:
            return lo, total - self.flat.size * lo
        return 0.0, total

    def sums(self, gt: GroundTruth | None) -> tuple[float, float, float, float, float]:
        """``(sum (S-mean)^2, sum (S-mean)(G-mean G), sum (G-mean G)^2, SIM intersection, KL divergence)``
        from one fused pass.  Only the terms of the metrics in ``want`` (and defined for this map) are
        computed; the others are 0."""
        key = id(gt)
        hit = self._sums.get(key)
        if hit is not None:
            return hit
        n = self.flat.size
        want = self.want & {"cc", "sim", "kld"} if gt is not None else frozenset()
        g = None
        kw: dict[str, Any] = {}
        if want:
            g = gt.g_flat
            glo, ghi, gsum = gt.cached("g_stats")
        if "cc" in want and not self.constant and not gt.g_constant:
            kw.update(mg=gsum / n, want_cc=True)
        if self.convention == "mit":
            lo, hi, total = self.stats
            if "sim" in want and self.nonzero and not self.constant and not gt.g_constant:
                kw["sim"] = (lo, hi - lo, (total - n * lo) / (hi - lo), glo, ghi - glo, (gsum - n * glo) / (ghi - glo))
            if "kld" in want:
                kw["kl"] = (0.0, total if self.nonzero else 1.0, 0.0, gsum, EPS)
        elif want & {"sim", "kld"} and not self.constant:
            off, tot = self.density_params()
            if gt.g_constant:  # pysaliency's density of a constant map is uniform
                g, goff, gtot = np.ones(n), 0.0, float(n)
                kw.pop("want_cc", None)
            else:
                goff = glo if glo < 0 else 0.0
                gtot = gsum - n * goff
            if "sim" in want:
                kw["sim"] = (off, tot, 1.0, goff, gtot, 1.0)
            if "kld" in want:
                kw["kl"] = (off, tot, goff, gtot, _PYSAL_KL_EPS)
        out = fused_sums(self.flat, self.mean, g, **kw)
        if self.convention == "tuebingen" and self.constant and want & {"sim", "kld"}:
            out = (*out[:3], *_uniform_terms(gt))  # type: ignore[arg-type]
        self._sums[key] = out
        return out


def _uniform_terms(gt: GroundTruth) -> tuple[float, float]:
    """SIM and KL of pysaliency's density of a constant map (uniform) against the ground truth."""
    dg = gt.cached("dens_tue")
    u = 1.0 / dg.size
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.minimum(u, dg).sum()), float(np.sum(dg * np.log(_PYSAL_KL_EPS + dg / (u + _PYSAL_KL_EPS))))


def _density(m: np.ndarray) -> np.ndarray:
    """pysaliency's ``convert_saliency_map_to_density(m, minimum_value=0)``."""
    lo = m.min()
    if lo < 0:
        m = m - lo
    total = m.sum()
    if total:
        return m / total
    return np.full(m.shape, 1.0 / m.size)


# ---------------------------------------------------------------------------------------------------
# metric kernels on prepared data
# ---------------------------------------------------------------------------------------------------

_NOISE: dict[tuple, np.ndarray] = {}
def _noise(kind: str, seed: int, shape: tuple[int, int]) -> np.ndarray:
    """The jitter of AUC-Judd for an int seed, flat and read-only, cached: it does not depend on the map.

    ``mit``: ``default_rng(seed).random(shape) / 1e7``; ``tuebingen``: ``RandomState(seed).randn(*shape) *
    1e-7`` (pysaliency's stream).  Exactly the arrays the uncached code adds to the map.
    """
    key = (kind, seed, tuple(shape))
    hit = _NOISE.get(key)
    if hit is None:
        if kind == "mit":
            hit = np.random.default_rng(seed).random(shape)
            hit /= 10000000.0
        else:
            hit = np.random.RandomState(seed).randn(*shape) * 1e-7
        hit = hit.ravel()
        hit.flags.writeable = False
        if len(_NOISE) >= 4:
            _NOISE.clear()
        _NOISE[key] = hit
    return hit


def _k_auc_judd(p: _Prepared, fix: _Fix, jitter: bool, rng: Any) -> float:
    if p.convention == "mit":
        pix = fix.unique
        if pix.size >= p.flat.size:
            raise InputError("auc_judd: every pixel is fixated, so there are no negatives to rank against")
        if jitter:
            if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
                add = _noise("mit", 0 if rng is None else int(rng), p.shape)
            else:
                add = _rng(rng).random(p.shape).ravel()
                add /= 10000000.0
            lo, hi = p.stats_with(add)
            if not hi > lo:
                _warn("auc_judd", "constant saliency map: the MIT code returns NaN")
                return math.nan
            return mit_judd_auc(p, pix, add, lo, hi)
        if p.constant:
            _warn("auc_judd", "constant saliency map: the MIT code returns NaN ('NaN saliencyMap')")
            return math.nan
        lo, hi = p.minmax
        return mit_judd_auc(p, pix, None, lo, hi)
    # tuebingen: pysaliency AUC_Judd = AUC(nonfixations='unfixated', thresholds='fixations')
    if fix.unique.size >= p.flat.size:
        raise InputError("auc_judd: every pixel is fixated, so there are no negatives to rank against")
    add = None
    if jitter:
        if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
            add = _noise("tuebingen", 42 if rng is None else int(rng), p.shape)  # pysaliency's own stream
        else:
            add = _rng(rng).standard_normal(p.shape).ravel() * 1e-7
    return judd_roc_tuebingen(p, fix, add)


def _k_auc_borji(p: _Prepared, fix: _Fix, n_splits: int, step: float, rng: Any) -> float:
    if p.convention == "mit":
        if p.constant:
            _warn("auc_borji", "constant saliency map: the MIT code returns NaN ('NaN saliencyMap')")
            return math.nan
        sth = p.norm_at(fix.unique)
        idx = _rng(rng).integers(0, p.flat.size, size=(sth.size, n_splits))
        return split_aucs(sth, p.norm_at(idx), step)
    return exact_auc_all(p.flat[fix.flat], p.flat, p.quant)


def _k_sauc(p: _Prepared, fix: _Fix, other: _Fix, n_splits: int, step: float, rng: Any) -> float:
    if p.convention == "mit":
        if p.constant:
            _warn("sauc", "constant saliency map: the MIT code returns NaN ('NaN saliencyMap')")
            return math.nan
        sth = p.norm_at(fix.unique)
        ind = other.unique
        k = min(sth.size, ind.size)
        g = _rng(rng)
        picks = np.empty((k, n_splits), dtype=np.int64)
        for col in range(n_splits):
            picks[:, col] = ind[g.choice(ind.size, size=k, replace=False)]
        return split_aucs(sth, p.norm_at(picks), step)
    flat = p.flat
    return exact_auc(flat[fix.flat], flat[other.flat])


def _k_nss(p: _Prepared, fix: _Fix, gt: GroundTruth | None = None) -> float:
    n = p.flat.size
    if p.convention == "mit":
        if p.constant:
            _warn("nss", "constant saliency map: zero variance (the MIT code returns a round-off artefact)")
            return math.nan
        ss = p.sums(gt)[0]
        sd = math.sqrt(ss / (n - 1))
        return float(np.mean((p.flat[fix.unique] - p.mean) / sd))
    if p.constant:
        return 0.0  # pysaliency: std 0, so the mean of S - mean(S) = 0
    sd = math.sqrt(p.sums(gt)[0] / n)
    vals = p.flat[fix.flat] - p.mean
    if sd:
        vals = vals / sd
    return float(vals.mean())


def _k_cc(p: _Prepared, gt: GroundTruth) -> float:
    if p.constant:
        if p.convention == "tuebingen":
            return 0.0
        _warn("cc", "constant saliency map: zero variance (the MIT code returns round-off noise)")
        return math.nan
    if gt.g_constant:
        _warn("cc", "constant fixation_map: zero variance")
        return math.nan
    ss, sg, gg, _, _ = p.sums(gt)
    return float(sg / math.sqrt(ss * gg))


def _k_kld(p: _Prepared, gt: GroundTruth) -> float:
    val = p.sums(gt)[4]
    if not np.isfinite(val):
        _warn("kld", "not finite (a saliency value of exactly -eps)")
    return float(val)


def _k_sim(p: _Prepared, gt: GroundTruth) -> float:
    if p.convention == "mit":
        if p.nonzero and p.constant:
            _warn("sim", "constant saliency map: the MIT code returns NaN (min-max normalisation 0/0)")
            return math.nan
        if gt.g_constant:
            _warn("sim", "constant fixation_map: the MIT code returns NaN")
            return math.nan
        if not p.nonzero:
            return 0.0  # an all-zero map stays zero in the MIT code: min(0, G) sums to 0
    return float(p.sums(gt)[3])


def _minmax_sum_normalised(m: np.ndarray, pix: np.ndarray, stats: tuple[float, float, float]) -> np.ndarray:
    """MIT's ``m = (m - min)/(max - min); m = m/sum(m)`` at the pixels ``pix`` only.

    The sum of the normalised map is taken as ``(sum(m) - N min)/(max - min)`` (one reduction instead of a
    normalised copy); it differs from MATLAB's by round-off (~1e-15 relative).
    """
    lo, hi, s = stats
    total = (s - m.size * lo) / (hi - lo)
    return ((m.ravel()[pix] - lo) / (hi - lo)) / total


def _baseline_terms(b: np.ndarray, fix: _Fix, convention: str) -> float | np.ndarray:
    """IG's baseline side at the fixations: MIT ``log2(eps + B)``, pysaliency ``log(B)`` (NaN: constant)."""
    if convention == "mit":
        blo, bhi = float(b.min()), float(b.max())
        if not bhi > blo:
            return math.nan
        mb = _minmax_sum_normalised(b, fix.unique, (blo, bhi, float(b.sum())))
        return np.log2(EPS + mb)
    blo, total = float(b.min()), float(b.sum())
    off = blo if blo < 0 else 0.0
    total -= b.size * off  # the shifted sum (up to round-off)
    with np.errstate(divide="ignore"):
        if total == 0 or not float(b.max()) > blo:  # pysaliency: a map of sum 0 becomes uniform
            return np.log(_density(b).ravel()[fix.flat])
        return np.log((b.ravel()[fix.flat] - off) / total)


def _k_ig(p: _Prepared, fix: _Fix, baseline: np.ndarray, gt: GroundTruth | None = None) -> float:
    if gt is not None:
        base = gt._ig_terms(baseline, p.convention)
    else:
        b = baseline if baseline.shape == p.shape else resize_to(baseline, p.shape, p.convention)
        base = _baseline_terms(b, fix, p.convention)
    if p.convention == "mit":
        if p.constant or not isinstance(base, np.ndarray):
            which = "saliency map" if p.constant else "baseline_map"
            _warn("information_gain", f"constant {which}: the MIT code returns NaN (min-max normalisation 0/0)")
            return math.nan
        m1 = _minmax_sum_normalised(p.flat, fix.unique, p.stats)
        return float(np.mean(np.log2(EPS + m1) - base))
    if p.constant:
        own_d = np.full(fix.flat.size, 1.0 / p.flat.size)
    else:
        off, tot = p.density_params()
        own_d = (p.flat[fix.flat] - off) / tot
    with np.errstate(divide="ignore", invalid="ignore"):
        own = np.log(own_d)
        val = float(np.mean((own - base) / np.log(2)))
    if not np.isfinite(val):
        _warn("information_gain", "a fixation falls on a pixel of density 0 (pysaliency returns -inf)")
    return val


def _k_emd(raw: np.ndarray, gt: GroundTruth, downsize: int) -> float:
    im1 = gt.cached(("emd", downsize))
    im2 = imresize_bicubic(raw, im1.shape)
    s2 = im2.sum()
    if s2 == 0 or not np.isfinite(s2):
        raise InputError("emd: the saliency map sums to zero after downsizing; it has no mass to move")
    im2 = im2 / s2
    return emd_hat_gd_metric(im1.ravel(order="F"), im2.ravel(order="F"), im1.shape)  # distances: only the block needed


# ---------------------------------------------------------------------------------------------------
# public metric functions
# ---------------------------------------------------------------------------------------------------


def _prepare_points(saliency_map: Any, fixations: Any, convention: str) -> tuple[_Prepared, _Fix]:
    _check_convention(convention)
    raw = check_map(saliency_map, "saliency_map")
    shape = _target_shape(raw, fixations)
    fix = _resolve_fixations(fixations, shape)
    return _Prepared(raw, shape, convention), fix


def _prepare_gt(saliency_map: Any, fixation_map: Any, convention: str, metric: str) -> tuple[_Prepared, GroundTruth]:
    _check_convention(convention)
    g = _check_gt(fixation_map)
    return _Prepared(saliency_map, g.shape, convention, want=(metric,)), GroundTruth(None, g, None, None, g.shape)


def auc_judd(saliency_map: Any, fixations: Any, *, convention: str = "mit", jitter: bool = True,
             rng: Any = None) -> float:
    """AUC-Judd: area under the ROC curve with thresholds at the fixated saliency values.

    Judd, Ehinger, Durand, Torralba, "Learning to predict where humans look", ICCV 2009.

    ``mit``: the map is min-max normalised (after ``rand/1e7`` jitter when ``jitter``) and the ROC is stepped
    one sorted fixated pixel at a time (``tp = i/Nfix``, ``fp = (#{S >= t} - i)/(Npix - Nfix)``).
    ``tuebingen``: pysaliency's ``AUC_Judd``: fixations against unfixated pixels, thresholds at the fixated
    values, jitter ``1e-7 * randn`` (an int ``rng`` seeds ``numpy.random.RandomState`` as pysaliency's
    ``random_seed`` does; ``None`` means its default 42).

    ``rng``: ``None`` (seed 0 under ``mit``), an int seed or a ``numpy.random.Generator``.
    Returns a float in [0, 1] (0.5 = chance); NaN with a :class:`DegenerateInputWarning` for a constant
    map under ``mit`` without jitter.

    >>> import numpy as np
    >>> smap = np.zeros((10, 10)); smap[2, 3] = 1.0
    >>> auc_judd(smap, np.array([[3.0, 2.0]]), jitter=False)
    1.0
    """
    p, fix = _prepare_points(saliency_map, fixations, convention)
    return _k_auc_judd(p, fix, jitter, rng)


def auc_borji(
    saliency_map: Any,
    fixations: Any,
    *,
    convention: str = "mit",
    n_splits: int = N_SPLITS,
    step: float = STEP,
    rng: Any = None,
) -> float:
    """AUC-Borji: fixations against uniformly sampled pixels.

    Borji, Tavakoli, Sihite, Itti, "Analysis of scores, datasets, and models in visual saliency prediction",
    ICCV 2013.

    ``mit``: ``n_splits`` draws of Nfix pixels (with replacement) anywhere in the min-max normalised map,
    thresholds ``0:step:max`` (Octave's range arithmetic), mean AUC over the splits (random: pass ``rng``).
    ``tuebingen``: the exact AUC against all pixels (pysaliency ``AUC(nonfixations='uniform')``;
    deterministic; ``n_splits``, ``step`` and ``rng`` are not used).

    >>> import numpy as np
    >>> yy, xx = np.mgrid[0:40, 0:40]
    >>> smap = -((xx - 20.0) ** 2 + (yy - 20.0) ** 2)
    >>> auc_borji(smap, np.array([[20.0, 20.0], [21.0, 19.0]]), rng=0) > 0.9
    True
    """
    if int(n_splits) < 1 or not float(step) > 0:
        raise InputError(f"n_splits must be >= 1 and step > 0, got n_splits={n_splits}, step={step}")
    p, fix = _prepare_points(saliency_map, fixations, convention)
    return _k_auc_borji(p, fix, int(n_splits), float(step), rng)


def sauc(
    saliency_map: Any,
    fixations: Any,
    other_fixations: Any,
    *,
    convention: str = "mit",
    n_splits: int = N_SPLITS,
    step: float = STEP,
    rng: Any = None,
) -> float:
    """Shuffled AUC: fixations against fixations of *other* images (discounts the centre bias).

    Zhang, Tong, Marks, Shan, Cottrell, "SUN: a Bayesian framework for saliency using natural statistics",
    JoV 2008; MIT ``AUC_shuffled``.

    ``other_fixations``: (M, 2) points or a binary map of the same image size (the union of other images'
    fixations, MIT's ``otherMap``).  ``mit``: ``n_splits`` draws of ``min(Nfix, #other)`` other-fixated
    pixels without replacement, thresholds ``0:step:max``.  ``tuebingen``: exact AUC against every other
    fixation (pysaliency ``AUC_per_image(nonfixations=...)``; deterministic).

    >>> import numpy as np
    >>> smap = np.zeros((20, 20)); smap[5, 5] = 1.0
    >>> sauc(smap, np.array([[5.0, 5.0]]), np.array([[10.0, 10.0], [12.0, 3.0]]), convention="tuebingen")
    1.0
    """
    if int(n_splits) < 1 or not float(step) > 0:
        raise InputError(f"n_splits must be >= 1 and step > 0, got n_splits={n_splits}, step={step}")
    p, fix = _prepare_points(saliency_map, fixations, convention)
    other = _resolve_fixations(other_fixations, p.shape, "other_fixations")
    if other.shape != p.shape:
        raise InputError(f"other_fixations map has shape {other.shape}, expected the image's {p.shape}")
    return _k_sauc(p, fix, other, int(n_splits), float(step), rng)


def nss(saliency_map: Any, fixations: Any, *, convention: str = "mit") -> float:
    """Normalized Scanpath Saliency: mean of the standardised map at the fixations.

    Peters, Iyer, Itti, Koch, "Components of bottom-up gaze allocation in natural images", Vision Research
    2005.  ``mit``: ``std`` with N-1, mean over fixated pixels; ``tuebingen``: ``std`` with N, mean over
    fixations.  Unbounded, 0 = chance.

    >>> import numpy as np
    >>> nss(np.arange(9.0).reshape(3, 3), np.array([[2.0, 2.0]]))
    1.4605934866804429
    """
    p, fix = _prepare_points(saliency_map, fixations, convention)
    p.want = frozenset(("nss",))
    return _k_nss(p, fix)


def cc(saliency_map: Any, fixation_map: Any, *, convention: str = "mit") -> float:
    """Pearson's linear correlation coefficient between the map and a continuous fixation map.

    Le Meur, Le Callet, Barba, "Predicting visual fixations on video based on low-level visual features",
    Vision Research 2007.  In [-1, 1].  A constant map gives NaN (``mit``, warned) or 0 (``tuebingen``).

    >>> import numpy as np
    >>> g = np.arange(12.0).reshape(3, 4)
    >>> cc(2 * g + 1, g)
    1.0
    """
    p, gt = _prepare_gt(saliency_map, fixation_map, convention, "cc")
    return _k_cc(p, gt)


def kld(saliency_map: Any, fixation_map: Any, *, convention: str = "mit") -> float:
    """KL divergence of the fixation density from the map read as a density (lower is better).

    ``mit``: ``sum(G * log(eps + G / (S + eps)))`` of the sum-normalised maps, real part of MATLAB's complex
    log (``log|.|``).  ``tuebingen``: pysaliency ``MIT_KLDiv`` (its constant 2.2204e-16, maps shifted to a
    minimum of 0 when negative).

    >>> import numpy as np
    >>> g = np.ones((4, 4))
    >>> abs(kld(g, g)) < 1e-12
    True
    """
    p, gt = _prepare_gt(saliency_map, fixation_map, convention, "kld")
    return _k_kld(p, gt)


def sim(saliency_map: Any, fixation_map: Any, *, convention: str = "mit") -> float:
    """Similarity (histogram intersection) of the two maps as distributions, in [0, 1].

    Swain and Ballard 1991; Judd, Durand, Torralba, "A benchmark of computational models of saliency to
    predict human fixations", MIT tech. report 2012.  ``mit`` min-max normalises both maps first
    (a constant map gives NaN, warned); ``tuebingen`` only divides by the sum.

    >>> import numpy as np
    >>> g = np.arange(1.0, 10.0).reshape(3, 3)
    >>> round(sim(g, g), 12)
    1.0
    """
    p, gt = _prepare_gt(saliency_map, fixation_map, convention, "sim")
    return _k_sim(p, gt)


def information_gain(saliency_map: Any, fixations: Any, baseline_map: Any, *, convention: str = "mit") -> float:
    """Information gain over a baseline map, in bits per fixation (higher is better, 0 = baseline).

    Kümmerer, Wallis, Bethge, "Information-theoretic model comparison unifies saliency metrics", PNAS 2015.
    ``mit``: both maps min-max normalised then sum-normalised, ``mean(log2(eps + S) - log2(eps + B))`` at
    the fixated pixels.  ``tuebingen``: densities by division by the sum (no eps: a fixation on a pixel of
    density 0 gives ``-inf``, warned), mean over fixations.

    >>> import numpy as np
    >>> b = np.ones((5, 5)); b[0, 0] = 2.0
    >>> information_gain(b, np.array([[0.0, 0.0]]), b)
    0.0
    """
    p, fix = _prepare_points(saliency_map, fixations, convention)
    b = check_map(baseline_map, "baseline_map")
    return _k_ig(p, fix, b)


def emd(saliency_map: Any, fixation_map: Any, *, convention: str = "mit",
        downsize: int = EMD_DOWNSIZE) -> float:
    """Earth Mover's Distance between the map and the fixation map (lower is better), MIT ``EMD.m``.

    Both maps are shrunk (``imresize(G, 1/downsize)``, the map to the same size), normalised to sum 1, and
    compared with FastEMD's ``emd_hat`` under the Euclidean ground distance between bins (in units of
    downsized bins).  Rubner, Tomasi, Guibas, IJCV 2000; Pele and Werman, ICCV 2009.  pysaliency has no EMD,
    so both conventions compute the MIT quantity (solved exactly; see ``salience.metrics._emd``).

    >>> import numpy as np
    >>> g = np.zeros((64, 64)); g[:32, :32] = 1.0
    >>> emd(g, g)
    0.0
    """
    _check_convention(convention)
    if int(downsize) < 1:
        raise InputError(f"downsize must be a positive integer, got {downsize}")
    raw = check_map(saliency_map, "saliency_map")
    g = _check_gt(fixation_map)
    return _k_emd(raw, GroundTruth(None, g, None, None, g.shape), int(downsize))


# ---------------------------------------------------------------------------------------------------
# ground truth helpers
# ---------------------------------------------------------------------------------------------------


def fixation_map_from_points(points: Any, shape: tuple[int, int], *, counts: bool = False) -> np.ndarray:
    """Binary ``(H, W)`` uint8 map with 1 at every fixated pixel (the MIT rounding rule, see module doc).

    With ``counts=True`` the map holds the number of fixations per pixel (int32): the metrics read such a
    count map as that many fixations under ``tuebingen`` (``mit`` only sees the set of fixated pixels).

    >>> fixation_map_from_points([[0.5, 0.0], [2.0, 1.4]], (2, 3)).tolist()
    [[0, 1, 0], [0, 0, 1]]
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    shape = (int(shape[0]), int(shape[1]))
    flat = _points_to_flat(pts, shape, "points")
    if counts:
        return np.bincount(flat, minlength=shape[0] * shape[1]).astype(np.int32).reshape(shape)
    out = np.zeros(shape, dtype=np.uint8)
    out.ravel()[flat] = 1
    return out


def _antonio_kernel(n_fft: int, s: float) -> np.ndarray:
    f = np.fft.fftfreq(n_fft, d=1.0 / n_fft)  # 0, 1, ..., N/2-1, -N/2, ..., -1 (fftshift of -N/2..N/2-1)
    return np.fft.ifft(np.exp(-(f * f) / (s * s))).real


def _antonio_factors(k, n_fft, rows, cols, weights, h, w):
    """``A (H, n)``, ``B (W, n)`` with ``G = A @ B.T``: one periodic kernel column per fixated pixel."""
    a_r = k[(np.arange(h)[:, None] - rows[None, :]) % n_fft] * weights[None, :]
    b_c = k[(np.arange(w)[:, None] - cols[None, :]) % n_fft]
    return a_r, b_c


def _mit_kernel(h: int, w: int, sigma: float) -> tuple[np.ndarray, int]:
    n = max(h, w)
    n_fft = int(2 ** math.ceil(math.log2(n + n % 2)))
    fc = n * math.sqrt(math.log(2) / (2 * math.pi**2 * sigma**2))
    return _antonio_kernel(n_fft, fc / math.sqrt(math.log(2))), n_fft


def fixation_density_map(
    fixations: Any,
    shape: tuple[int, int] | None = None,
    *,
    sigma: float | None = None,
    convention: str = "mit",
) -> np.ndarray:
    """Continuous fixation map (float64, ``shape``) from points or a binary/count map.

    ``convention="mit"`` reproduces ``run_antonioGaussian(F, sigma)`` of the MIT benchmark (default
    ``sigma=25``): a Gaussian transfer function applied on an FFT grid zero-padded to the next power of two
    ``N >= max(H, W)``, so the spatial Gaussian's standard deviation is ``sigma * N / max(H, W)`` pixels
    (32 px for an 800-pixel-wide image), with circular boundaries on the padded grid (mass near the
    bottom/right edges leaks away) and no normalisation.  It is computed as a separable sum of the same
    periodic kernel over the fixated pixels (exact up to round-off: agrees with Octave to ~1e-18).

    ``convention="gaussian"``: a plain Gaussian blur with standard deviation ``sigma`` pixels (default 25;
    ``scipy.ndimage.gaussian_filter``, zero padding outside the image, truncated at 4 sigma).  Use
    :func:`degrees_to_pixels` to express sigma in degrees of visual angle.

    ``fixations``: (N, 2) points (``shape`` required) or a 2-D map (its values are the weights).

    >>> g = fixation_density_map([[10.0, 10.0]], (40, 50))
    >>> g.shape, int(g.argmax())
    ((40, 50), 510)
    """
    if convention not in ("mit", "gaussian"):
        raise InputError(f"unknown convention {convention!r} for fixation_density_map; expected 'mit' or 'gaussian'")
    a = np.asarray(fixations)
    if a.ndim == 2 and not _is_points(a) or (shape is not None and a.shape == tuple(shape) and a.ndim == 2):
        f = check_map(a, "fixations")
        if np.any(f < 0):
            raise InputError("fixations (a fixation map) has negative values")
        shape = f.shape
        flat = np.flatnonzero(f)
        weights = f.ravel()[flat]
    else:
        if shape is None:
            raise InputError("fixation_density_map needs shape=(H, W) when fixations are points")
        shape = (int(shape[0]), int(shape[1]))
        flat_all = _points_to_flat(np.asarray(a, dtype=np.float64).reshape(-1, 2), shape, "fixations")
        flat, counts = np.unique(flat_all, return_counts=True)
        weights = np.ones(flat.size) if convention == "mit" else counts.astype(np.float64)
    h, w = shape
    sig = MIT_SIGMA if sigma is None else float(sigma)
    if not sig > 0:
        raise InputError(f"sigma must be > 0, got {sigma}")
    if convention == "gaussian":
        from scipy.ndimage import gaussian_filter

        f = np.zeros(shape)
        f.ravel()[flat] = weights
        return gaussian_filter(f, sig, mode="constant", truncate=4.0)
    k, n_fft = _mit_kernel(h, w, sig)
    rows, cols = np.divmod(flat, w)
    if flat.size <= 1500:
        a_r, b_c = _antonio_factors(k, n_fft, rows, cols, weights, h, w)
        return a_r @ b_c.T
    f = np.zeros((n_fft, n_fft))
    f[rows, cols] = weights
    kf = np.fft.rfft(k).real
    spec = np.fft.rfft2(f) * (np.fft.fft(k).real[:, None] * kf[None, :])
    return np.fft.irfft2(spec, s=(n_fft, n_fft))[:h, :w]


def centre_bias_map(shape: tuple[int, int], *, sigma_fraction: float = 0.25) -> np.ndarray:
    """Isotropic centred Gaussian ``exp(-d^2 / (2 sigma^2))``, ``sigma = sigma_fraction * H``, max 1.

    The default baseline of :func:`evaluate`'s information gain (sigma = H/4: 150 px for 600 x 800).

    >>> float(centre_bias_map((3, 3))[1, 1])
    1.0
    """
    h, w = int(shape[0]), int(shape[1])
    sig = sigma_fraction * h
    r = np.arange(h) - (h - 1) / 2.0
    c = np.arange(w) - (w - 1) / 2.0
    return np.exp(-(r[:, None] ** 2) / (2 * sig * sig)) * np.exp(-(c[None, :] ** 2) / (2 * sig * sig))


def pixels_per_degree(distance: float, screen_size: float, screen_pixels: int) -> float:
    """Pixels per degree of visual angle at the screen centre.

    ``distance`` (viewer to screen) and ``screen_size`` (the extent spanned by ``screen_pixels``) in the same
    unit.  ``screen_pixels / (2 * degrees(atan(screen_size / (2 * distance))))``.

    >>> round(pixels_per_degree(60.0, 52.0, 1920), 1)
    41.0
    """
    if not (distance > 0 and screen_size > 0 and screen_pixels > 0):
        raise InputError("distance, screen_size and screen_pixels must all be positive")
    return float(screen_pixels / (2.0 * math.degrees(math.atan(screen_size / (2.0 * distance)))))


def degrees_to_pixels(deg: float, pixels_per_degree: float) -> float:
    """Convert degrees of visual angle to pixels: ``deg * pixels_per_degree``.

    >>> degrees_to_pixels(1.0, 35.0)
    35.0
    """
    if not pixels_per_degree > 0:
        raise InputError(f"pixels_per_degree must be > 0, got {pixels_per_degree}")
    return float(deg) * float(pixels_per_degree)


# ---------------------------------------------------------------------------------------------------
# evaluate
# ---------------------------------------------------------------------------------------------------


def parse_metrics(metrics: str | Iterable[str]) -> list[str]:
    """Metric names from ``"all"``, ``"kl,auc"`` or a list: aliases resolved, case and ``-``/``_`` free.

    The one parser of metric names (:func:`evaluate`, ``salience evaluate --metrics``).  Returns the
    canonical names of :data:`METRICS` in the order given, each once; ``"all"`` anywhere means all.

    >>> parse_metrics("KL, auc-judd, nss")
    ['kld', 'auc_judd', 'nss']
    """
    names = [m.strip() for m in metrics.split(",")] if isinstance(metrics, str) else list(metrics)
    names = [n for n in names if str(n).strip()]
    if any(str(n).strip().lower() == "all" for n in names):
        names = list(METRICS)
    out: list[str] = []
    for name in names:
        low = str(name).strip().lower().replace("-", "_")
        key = _ALIASES.get(low, low)
        if key not in METRICS:
            raise InputError(f"unknown metric {name!r}; expected 'all' or some of {', '.join(METRICS)}")
        if key not in out:
            out.append(key)
    if not out:
        raise InputError("no metric requested; pass metrics='all' or a list such as ['nss', 'auc_judd']")
    return out


#: metric -> its kernel on the shared work ``(prepared map, fixations, ground truth, raw map, rng)``, with
#: the defaults of the single-metric functions; :func:`evaluate` runs them in :data:`METRICS` order
_KERNELS: dict[str, Callable[[_Prepared, _Fix, GroundTruth, np.ndarray, Any], float]] = {
    "auc_judd": lambda p, fix, gt, raw, rng: _k_auc_judd(p, fix, True, rng),
    "auc_borji": lambda p, fix, gt, raw, rng: _k_auc_borji(p, fix, N_SPLITS, STEP, rng),
    "sauc": lambda p, fix, gt, raw, rng: _k_sauc(p, fix, gt.other, N_SPLITS, STEP, rng),
    "nss": lambda p, fix, gt, raw, rng: _k_nss(p, fix, gt),
    "cc": lambda p, fix, gt, raw, rng: _k_cc(p, gt),
    "kld": lambda p, fix, gt, raw, rng: _k_kld(p, gt),
    "sim": lambda p, fix, gt, raw, rng: _k_sim(p, gt),
    "ig": lambda p, fix, gt, raw, rng: _k_ig(p, fix, gt.baseline(), gt),
    "emd": lambda p, fix, gt, raw, rng: _k_emd(raw, gt, EMD_DOWNSIZE),
}


def evaluate(
    saliency_map: Any,
    fixations: Any,
    *,
    metrics: str | Sequence[str] = "all",
    convention: str = "mit",
    fixation_map: Any = None,
    other_fixations: Any = None,
    baseline_map: Any = None,
    rng: Any = None,
    nan_policy: str = "warn",
) -> dict[str, float]:
    """Compute several fixation metrics at once, sharing the work between them.

    The saliency map is validated and resized to the fixation data's size once; its statistics and the
    whole-map sums of NSS, CC, SIM and KLD come from one fused pass, the ROC counts of the AUCs from one
    counting pass each (no sort of the map); the continuous map is computed once (from ``fixations`` with
    :func:`fixation_density_map` under the MIT blur when ``fixation_map`` is None; the pysaliency
    reference numbers were computed on that same map).

    Parameters
    ----------
    fixations:
        Points, a binary/count map, or a :class:`GroundTruth` from :func:`prepare_ground_truth` (then
        ``fixation_map``, ``other_fixations`` and ``baseline_map`` come from it and must not be passed
        again): the map-independent work is then done once per image, not once per map.
    metrics:
        ``"all"`` (:data:`METRICS`), a comma-separated string or a list of names.
    other_fixations:
        Needed for ``sauc``.  With ``metrics="all"`` and no ``other_fixations``, ``sauc`` is left out of
        the result; requesting it explicitly without them raises :class:`InputError`.
    baseline_map:
        Baseline of ``ig``; default :func:`centre_bias_map` of the image size (sigma = H/4).
    rng:
        ``None``, an int seed or a Generator.  An int (or None = 0) seeds each random metric afresh, so the
        results equal the single-metric functions called with the same seed.
    nan_policy:
        What to do when a metric is undefined for this input (NaN, or an infinity) - e.g. a constant map
        under ``mit``: ``"warn"`` (default) keeps the value and issues one :class:`DegenerateInputWarning`
        naming the metrics, ``"raise"`` raises :class:`InputError`, ``"propagate"`` keeps it silently.

    Returns
    -------
    dict
        ``{metric: float}`` in :data:`METRICS` order.

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[0:60, 0:80]
    >>> smap = np.exp(-((xx - 40) ** 2 + (yy - 30) ** 2) / 200.0)
    >>> r = evaluate(smap, np.array([[40.0, 30.0], [45.0, 33.0]]), metrics="nss,cc,sim")
    >>> sorted(r)
    ['cc', 'nss', 'sim']
    """
    _check_convention(convention)
    if nan_policy not in ("warn", "raise", "propagate"):
        raise InputError(f"nan_policy must be 'warn', 'raise' or 'propagate', got {nan_policy!r}")
    explicit = not (isinstance(metrics, str) and metrics == "all")
    names = parse_metrics(metrics)
    given = isinstance(fixations, GroundTruth)
    if given:
        passed = [k for k, v in (("fixation_map", fixation_map), ("other_fixations", other_fixations),
                                 ("baseline_map", baseline_map)) if v is not None]
        if passed:
            raise InputError(f"{', '.join(passed)} given together with a GroundTruth; pass them to "
                             "prepare_ground_truth() instead")
    has_other = (fixations.other is not None) if given else other_fixations is not None
    if "sauc" in names and not has_other:
        if explicit:
            raise InputError("metric 'sauc' needs other_fixations (fixations of other images); pass them or "
                             "drop 'sauc'")
        names.remove("sauc")
    raw = check_map(saliency_map, "saliency_map")
    if given:
        gt = fixations
    else:
        g = _check_gt(fixation_map) if fixation_map is not None else None
        shape = _target_shape(raw, fixations, g)
        gt = _ground_truth(fixations, shape, g, other_fixations if "sauc" in names else None,
                           baseline_map if "ig" in names else None, copy=False)
    fix = gt.fix
    p = _Prepared(raw, gt.shape, convention, want=names)

    results: dict[str, float] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DegenerateInputWarning)
        for name in METRICS:
            if name in names:
                results[name] = _KERNELS[name](p, fix, gt, raw, rng)
    bad = [k for k, v in results.items() if not math.isfinite(v)]
    if bad:
        reasons = "; ".join(str(w.message) for w in caught if issubclass(w.category, DegenerateInputWarning))
        if nan_policy == "raise":
            raise InputError(f"undefined metric value(s) for {', '.join(bad)}: {reasons}")
        if nan_policy == "warn":
            warnings.warn(
                f"metric(s) {', '.join(bad)} undefined for this input ({reasons}); see docs/metrics.md",
                DegenerateInputWarning,
                stacklevel=2,
            )
    return results


def _density_from_fix(fix: _Fix) -> tuple[np.ndarray, Any]:
    """The MIT continuous map of the fixated pixels (both conventions; see :func:`evaluate`), and its
    factors ``(A, B)`` (``G = A @ B.T``) when it was built as a separable sum (None otherwise)."""
    if fix.unique.size > 1500:
        f = np.zeros(fix.shape)
        f.ravel()[fix.unique] = 1.0
        return fixation_density_map(f, convention="mit"), None
    h, w = fix.shape
    k, n_fft = _mit_kernel(h, w, MIT_SIGMA)
    rows, cols = np.divmod(fix.unique, w)
    a_r, b_c = _antonio_factors(k, n_fft, rows, cols, np.ones(fix.unique.size), h, w)
    return a_r @ b_c.T, (a_r, b_c)


class GroundTruth:
    """The per-image work of the metrics that does not depend on the saliency map, done once.

    Made by :func:`prepare_ground_truth`; :func:`evaluate` accepts it in place of ``fixations`` and then
    reuses, for every map scored against it, the resolved fixated pixels, the continuous fixation map and
    its statistics (mean, centred sum of squares, the MIT and pysaliency densities), its 1/32 EMD
    histogram, the other images' fixations (sAUC) and the baseline map's terms (IG).  Worth it when several
    methods are scored on the same images.  The arrays it holds are private read-only copies.

    Attributes: ``shape`` ``(H, W)``; ``n_fixations`` (fixations as given) and ``n_fixated_pixels``.
    """

    def __init__(self, fix: _Fix | None, g: np.ndarray | None, other: _Fix | None, baseline: np.ndarray | None,
                 shape: tuple[int, int] | None = None):
        self.fix = fix
        self.shape = fix.shape if fix is not None else tuple(shape)  # type: ignore[arg-type]
        self.other = other
        self._g = g
        self._factors: Any = None
        self._baseline = baseline
        self._cache: dict[Any, Any] = {}

    def __repr__(self) -> str:
        return (f"GroundTruth(shape={self.shape}, n_fixations={self.n_fixations}, "
                f"n_fixated_pixels={self.n_fixated_pixels}, other_fixations={self.other is not None})")

    @property
    def n_fixations(self) -> int:
        return int(self.fix.flat.size)

    @property
    def n_fixated_pixels(self) -> int:
        return int(self.fix.unique.size)

    @property
    def g(self) -> np.ndarray:
        """The continuous fixation map ``(H, W)`` (given, or the MIT blur of the fixated pixels)."""
        if self._g is None:
            g, self._factors = _density_from_fix(self.fix)
            g.flags.writeable = False
            self._g = g
        return self._g

    @property
    def g_flat(self) -> np.ndarray:
        return self.cached("g_flat")

    @property
    def g_constant(self) -> bool:
        lo, hi, _ = self.cached("g_stats")
        return not hi > lo

    def precompute(self, convention: str | Sequence[str] = CONVENTIONS) -> GroundTruth:
        """Compute now (instead of on first use) everything map-independent that :func:`evaluate` needs
        under ``convention`` (one name or several): the continuous map, its statistics and densities, the
        EMD histogram and the baseline terms of IG.  Returns ``self``."""
        convs = (convention,) if isinstance(convention, str) else tuple(convention)
        for conv in convs:
            _check_convention(conv)
            for key in ("g_flat", "g_stats", ("emd", EMD_DOWNSIZE)):
                self.cached(key)
            if self.fix is not None:
                b = self.baseline()
                self._ig_terms(b, conv)
        return self

    def _ig_terms(self, baseline: np.ndarray, convention: str) -> float | np.ndarray:
        key = ("ig", convention, id(baseline))
        base = self._cache.get(key)
        if base is None:
            b = baseline if baseline.shape == self.shape else resize_to(baseline, self.shape, convention)
            base = self._cache[key] = _baseline_terms(b, self.fix, convention)  # type: ignore[arg-type]
        return base

    def baseline(self) -> np.ndarray:
        if self._baseline is None:
            self._baseline = _centre_bias_cached(self.shape)
        return self._baseline

    def cached(self, key: Any) -> Any:
        hit = self._cache.get(key)
        if hit is None:
            hit = self._compute(key)
            self._cache[key] = hit
        return hit

    def _compute(self, key: Any) -> Any:
        if key == "g_flat":
            return np.ascontiguousarray(self.g).ravel()
        if key == "g_stats":
            g = self.g_flat
            return float(g.min()), float(g.max()), float(g.sum())
        if key == "dens_tue":
            return np.ascontiguousarray(_density(self.g)).ravel()
        if isinstance(key, tuple) and key[0] == "emd":
            return _emd_histogram(self.g, key[1], self._factors)
        raise KeyError(key)  # pragma: no cover


def _emd_histogram(g: np.ndarray, downsize: int, factors: Any) -> np.ndarray:
    """EMD.m's ``imresize(G, 1/downsize)`` normalised to sum 1 (a G built as ``A @ B.T`` shrinks its
    thin factors instead of the full map: same values up to round-off)."""
    mats = shrink_matrices(g.shape, 1.0 / downsize) if factors is not None else None
    if mats is not None:
        im1 = (mats[0] @ factors[0]) @ (mats[1] @ factors[1]).T
    else:
        im1 = imresize_bicubic(g, 1.0 / downsize)
    return im1 / im1.sum()


_CENTRE: dict[tuple[int, int], np.ndarray] = {}


def _centre_bias_cached(shape: tuple[int, int]) -> np.ndarray:
    key = (int(shape[0]), int(shape[1]))
    b = _CENTRE.get(key)
    if b is None:
        if len(_CENTRE) > 8:
            _CENTRE.clear()
        b = centre_bias_map(key)
        b.flags.writeable = False
        _CENTRE[key] = b
    return b


def prepare_ground_truth(
    fixations: Any,
    shape: tuple[int, int] | None = None,
    *,
    fixation_map: Any = None,
    other_fixations: Any = None,
    baseline_map: Any = None,
    convention: str | Sequence[str] | None = None,
) -> GroundTruth:
    """Resolve one image's fixation data once, for scoring several saliency maps with :func:`evaluate`.

    ``fixations``: ``(N, 2)`` points (then ``shape`` = ``(H, W)`` or ``fixation_map`` gives the image size)
    or a binary/count map.  ``fixation_map``: the continuous ground truth; default: the MIT blur of the
    fixated pixels (:func:`fixation_density_map`), computed on first use.  ``other_fixations``: for sAUC.
    ``baseline_map``: for IG (default :func:`centre_bias_map`).  Validation is the same as in
    :func:`evaluate`; the inputs are copied, so later changes to them do not affect the object.
    ``convention``: ``None`` computes the rest lazily, on first use; ``"mit"``, ``"tuebingen"`` or both
    compute now what those conventions need (:meth:`GroundTruth.precompute`).

    ``evaluate(smap, prepare_ground_truth(fix, ...), ...)`` returns exactly what
    ``evaluate(smap, fix, ...)`` with the same arguments returns.

    >>> import numpy as np
    >>> gt = prepare_ground_truth(np.array([[40.0, 30.0], [10.0, 50.0]]), (60, 80))
    >>> smap = np.random.default_rng(0).random((60, 80))
    >>> evaluate(smap, gt, metrics="nss,cc") == evaluate(smap, np.array([[40.0, 30.0], [10.0, 50.0]]),
    ...                                                   metrics="nss,cc")
    True
    """
    if isinstance(fixations, GroundTruth):
        raise InputError("fixations is already a GroundTruth; pass it to evaluate() directly")
    g = _check_gt(fixation_map) if fixation_map is not None else None
    if g is not None:
        target = g.shape
    elif _shape_of_fixations(fixations) is not None:
        target = _shape_of_fixations(fixations)
    elif shape is not None:
        target = (int(shape[0]), int(shape[1]))
    else:
        raise InputError("prepare_ground_truth needs shape=(H, W) when fixations are points and no "
                         "fixation_map gives the image size")
    if shape is not None and tuple(int(v) for v in shape) != tuple(target):
        raise InputError(f"shape={tuple(shape)} does not match the fixation data's size {tuple(target)}")
    gt = _ground_truth(fixations, target, g, other_fixations, baseline_map, copy=True)
    return gt if convention is None else gt.precompute(convention)


def _ground_truth(fixations: Any, shape: tuple[int, int], g: np.ndarray | None, other_fixations: Any,
                  baseline_map: Any, *, copy: bool) -> GroundTruth:
    fix = _resolve_fixations(fixations, shape)
    if fix.shape != tuple(shape):
        raise InputError(f"the fixation map has shape {fix.shape} but fixation_map has shape {tuple(shape)}")
    other = None
    if other_fixations is not None:
        other = _resolve_fixations(other_fixations, shape, "other_fixations")
        if other.shape != tuple(shape):
            raise InputError(f"other_fixations map has shape {other.shape}, expected {tuple(shape)}")
    b = check_map(baseline_map, "baseline_map") if baseline_map is not None else None
    if copy:
        if g is not None:
            g = np.array(g, dtype=np.float64)
            g.flags.writeable = False
        if b is not None:
            b = np.array(b, dtype=np.float64)
            b.flags.writeable = False
    return GroundTruth(fix, g, other, b)
