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
    halves away from zero; *not* ``numpy.round``); they must lie in ``[-0.5, W - 0.5) x [-0.5, H - 0.5)``.
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
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import InputError
from ..io import check_map
from ._emd import emd_hat_gd_metric, ground_distance
from ._resize import imresize_bicubic, resize_to, shrink_matrices

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
    "fixation_density_map",
    "fixation_map_from_points",
    "centre_bias_map",
    "degrees_to_pixels",
    "pixels_per_degree",
]

#: Metric names accepted by :func:`evaluate`, in its output order.
METRICS: tuple[str, ...] = ("auc_judd", "auc_borji", "sauc", "nss", "cc", "kld", "sim", "ig", "emd")

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
        self.flat = flat  # one entry per fixation (points) or per fixated pixel (map)
        self.unique = np.unique(flat)
        self.is_map = is_map

    def pixels(self, convention: str) -> np.ndarray:
        """MIT sees the set of fixated pixels; pysaliency every fixation."""
        return self.unique if convention == "mit" else self.flat


def _is_points(a: np.ndarray) -> bool:
    return a.ndim == 2 and a.shape[1] == 2 and not (a.dtype == bool)


def _points_to_flat(pts: np.ndarray, shape: tuple[int, int], name: str) -> np.ndarray:
    if pts.size and not np.all(np.isfinite(pts)):
        raise InputError(f"{name} contain NaN or infinite coordinates; drop those rows first")
    h, w = shape
    col = np.floor(pts[:, 0] + 0.5).astype(np.int64)
    row = np.floor(pts[:, 1] + 0.5).astype(np.int64)
    bad = (col < 0) | (col >= w) | (row < 0) | (row >= h)
    if np.any(bad):
        k = int(np.argmax(bad))
        raise InputError(
            f"{name}: {int(bad.sum())} point(s) lie outside the {h}x{w} image, e.g. (x, y) = "
            f"({pts[k, 0]:g}, {pts[k, 1]:g}); expected 0-based pixel positions with "
            f"-0.5 <= x < {w - 0.5:g} and -0.5 <= y < {h - 0.5:g} (convert 1-based MATLAB coordinates by "
            "subtracting 1)"
        )
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
        if a.dtype.kind in "iuf" and np.any(a < 0):
            raise InputError(f"{name} (a fixation map) has negative values; expected a binary 0/1 map")
        nz = np.flatnonzero(a)
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
    """Work shared between metrics for one (saliency map, fixations) pair."""

    def __init__(self, saliency_map: Any, shape: tuple[int, int], convention: str):
        self.raw = check_map(saliency_map, "saliency_map")
        self.convention = convention
        self.shape = tuple(shape)
        self._s: np.ndarray | None = None
        self._minmax: tuple[float, float] | None = None
        self._norm: np.ndarray | None = None
        self._norm_sum: float | None = None

    @property
    def s(self) -> np.ndarray:
        """The saliency map at the fixation data's size (resized by the convention's rule)."""
        if self._s is None:
            self._s = resize_to(self.raw, self.shape, self.convention) if self.raw.shape != self.shape else self.raw
        return self._s

    @property
    def minmax(self) -> tuple[float, float]:
        if self._minmax is None:
            self._minmax = (float(self.s.min()), float(self.s.max()))
        return self._minmax

    @property
    def constant(self) -> bool:
        lo, hi = self.minmax
        return not hi > lo

    @property
    def norm(self) -> np.ndarray:
        """MIT min-max normalisation ``(S - min) / (max - min)`` (flat); only for non-constant maps."""
        if self._norm is None:
            lo, hi = self.minmax
            norm = self.s - lo
            norm /= hi - lo
            self._norm = norm.ravel()
        return self._norm

    @property
    def norm_sum(self) -> float:
        if self._norm_sum is None:
            self._norm_sum = float(self.norm.sum())
        return self._norm_sum


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
# ROC helpers
# ---------------------------------------------------------------------------------------------------


def _count_ge(values: np.ndarray, thresholds_sorted: np.ndarray) -> np.ndarray:
    """For ascending ``thresholds_sorted`` t_k: #{values >= t_k}.

    Sorting the values and binary-searching the few thresholds is ~8x faster than binary-searching every
    value among the thresholds (numpy's searchsorted is slow on unsorted keys).
    """
    sv = np.sort(values)
    return values.size - np.searchsorted(sv, thresholds_sorted, side="left")


def _mit_judd_auc(s_flat: np.ndarray, fix_flat: np.ndarray) -> float:
    sth = s_flat[fix_flat]
    n_fix = sth.size
    n_pix = s_flat.size
    thr = np.sort(sth)  # ascending
    above = _count_ge(s_flat, thr)[::-1]  # for descending thresholds
    i = np.arange(1, n_fix + 1)
    tp = np.concatenate([[0.0], i / n_fix, [1.0]])
    fp = np.concatenate([[0.0], (above - i) / (n_pix - n_fix), [1.0]])
    return float(np.trapezoid(tp, fp))


def _exact_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Area under the full ROC of ``pos`` against ``neg`` (all thresholds; a tie counts one half)."""
    sn = np.sort(neg)
    less = np.searchsorted(sn, pos, side="left")  # #neg < p
    eq = np.searchsorted(sn, pos, side="right") - less  # #neg == p
    score = less.sum() + 0.5 * eq.sum()
    return float(score / (pos.size * neg.size))


def _judd_roc_tuebingen(pos: np.ndarray, neg: np.ndarray) -> float:
    """pysaliency ``general_roc(..., judd=1)``: thresholds at the positives only."""
    sp = np.sort(pos)
    sn = np.sort(neg)
    thr = sp[::-1]
    tp = pos.size - np.searchsorted(sp, thr, side="left")
    fp = neg.size - np.searchsorted(sn, thr, side="left")
    hit = np.concatenate([[0.0, 0.0], tp / pos.size, [1.0]])
    far = np.concatenate([[0.0, 0.0], fp / neg.size, [1.0]])
    return float(np.trapezoid(hit, far))


def _tfloor(x: float, ct: float) -> float:
    """Hagerty's tolerant floor, as Octave's range code uses it."""
    q = 1.0 if x >= 0 else 1.0 - ct
    rmax = q / (2.0 - ct)
    t1 = 1.0 + math.floor(x)
    t1 = (ct / q) * (-t1 if t1 < 0 else t1)
    t1 = rmax if rmax < t1 else t1
    t1 = ct if ct > t1 else t1
    t1 = math.floor(x + t1)
    if x <= 0 or (t1 - x) < rmax:
        return t1
    return t1 - 1


def _teq(u: float, v: float, ct: float) -> bool:
    tu, tv = abs(u), abs(v)
    return abs(u - v) < (tu if tu > tv else tv) * ct


def _octave_range(step: float, limit: float) -> np.ndarray:
    """The elements of Octave's ``0:step:limit`` (``k*step``, the last one clipped to ``limit``)."""
    ct = 3.0 * np.finfo(float).eps
    if limit < 0:
        return np.empty(0)
    n = int(_tfloor((limit + step) / step, ct))
    n = max(n, 0)
    if not _teq((n - 1) * step, limit, ct):
        if _teq((n - 2) * step, limit, ct):
            n -= 1
        elif _teq(n * step, limit, ct):
            n += 1
    if n <= 0:
        return np.empty(0)
    out = np.arange(n, dtype=np.float64) * step
    if n > 1:
        last = (n - 1) * step
        out[-1] = limit if last >= limit else last
    return out


def _split_aucs(sth: np.ndarray, randfix: np.ndarray, step: float) -> float:
    """Mean over splits of the MIT step-threshold AUC (AUC_Borji / AUC_shuffled inner loop).

    ``sth`` (n_fix,) saliency at fixations; ``randfix`` (n_rand, n_splits) at sampled locations.
    """
    n_fix = sth.size
    n_rand, n_splits = randfix.shape
    tops = np.maximum(sth.max(), randfix.max(axis=0))
    uniq, inv = np.unique(tops, return_inverse=True)
    ranges = [_octave_range(step, float(t))[::-1] for t in uniq]  # descending thresholds
    k = max((r.size for r in ranges), default=0)
    thr = np.full((uniq.size, k), np.inf)
    for a, r in enumerate(ranges):
        if r.size:
            thr[a, k - r.size :] = r
    thr_s = thr[inv]  # (n_splits, k), +inf padding first gives extra (0, 0) points
    tp = (sth[None, None, :] >= thr_s[:, :, None]).sum(axis=2) / n_fix
    fp = (randfix.T[:, None, :] >= thr_s[:, :, None]).sum(axis=2) / n_rand
    zeros = np.zeros((n_splits, 1))
    ones = np.ones((n_splits, 1))
    tp = np.hstack([zeros, tp, ones])
    fp = np.hstack([zeros, fp, ones])
    aucs = np.sum(np.diff(fp, axis=1) * (tp[:, 1:] + tp[:, :-1]) / 2.0, axis=1)
    return float(aucs.mean())


# ---------------------------------------------------------------------------------------------------
# metric kernels on prepared data
# ---------------------------------------------------------------------------------------------------


def _k_auc_judd(p: _Prepared, fix: _Fix, jitter: bool, rng: Any) -> float:
    if p.convention == "mit":
        pix = fix.unique
        if jitter:
            g = _rng(rng)
            s = g.random(p.shape)
            s /= 10000000.0
            s += p.s
            lo, hi = float(s.min()), float(s.max())
            if not hi > lo:
                _warn("auc_judd", "constant saliency map: the MIT code returns NaN")
                return math.nan
            s -= lo
            s /= hi - lo
            s = s.ravel()
        else:
            if p.constant:
                _warn("auc_judd", "constant saliency map: the MIT code returns NaN ('NaN saliencyMap')")
                return math.nan
            s = p.norm
        if pix.size >= s.size:
            raise InputError("auc_judd: every pixel is fixated, so there are no negatives to rank against")
        return _mit_judd_auc(s, pix)
    # tuebingen: pysaliency AUC_Judd = AUC(nonfixations='unfixated', thresholds='fixations')
    s = p.s
    if jitter:
        if rng is None or isinstance(rng, (int, np.integer)):
            seed = 42 if rng is None else int(rng)
            noise = np.random.RandomState(seed).randn(*p.shape)  # pysaliency's own noise stream
        else:
            noise = _rng(rng).standard_normal(p.shape)
        s = s + noise * 1e-7
    flat = s.ravel()
    pos = flat[fix.flat]
    mask = np.ones(flat.size, dtype=bool)
    mask[fix.unique] = False
    neg = flat[mask]
    if neg.size == 0:
        raise InputError("auc_judd: every pixel is fixated, so there are no negatives to rank against")
    return _judd_roc_tuebingen(pos, neg)


def _k_auc_borji(p: _Prepared, fix: _Fix, n_splits: int, step: float, rng: Any) -> float:
    if p.convention == "mit":
        if p.constant:
            _warn("auc_borji", "constant saliency map: the MIT code returns NaN ('NaN saliencyMap')")
            return math.nan
        s = p.norm
        sth = s[fix.unique]
        idx = _rng(rng).integers(0, s.size, size=(sth.size, n_splits))
        return _split_aucs(sth, s[idx], step)
    flat = p.s.ravel()
    return _exact_auc(flat[fix.flat], flat)


def _k_sauc(p: _Prepared, fix: _Fix, other: _Fix, n_splits: int, step: float, rng: Any) -> float:
    if p.convention == "mit":
        if p.constant:
            _warn("sauc", "constant saliency map: the MIT code returns NaN ('NaN saliencyMap')")
            return math.nan
        s = p.norm
        sth = s[fix.unique]
        ind = other.unique
        k = min(sth.size, ind.size)
        g = _rng(rng)
        picks = np.empty((k, n_splits), dtype=np.int64)
        for col in range(n_splits):
            picks[:, col] = ind[g.choice(ind.size, size=k, replace=False)]
        return _split_aucs(sth, s[picks], step)
    flat = p.s.ravel()
    return _exact_auc(flat[fix.flat], flat[other.flat])


def _k_nss(p: _Prepared, fix: _Fix) -> float:
    s = p.s
    if p.convention == "mit":
        if p.constant:
            _warn("nss", "constant saliency map: zero variance (the MIT code returns a round-off artefact)")
            return math.nan
        mu = s.mean()
        sd = s.std(ddof=1)
        return float(np.mean((s.ravel()[fix.unique] - mu) / sd))
    mu = s.mean()
    sd = s.std()
    vals = s.ravel()[fix.flat] - mu
    if sd:
        vals = vals / sd
    return float(vals.mean())


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a.ravel() - a.mean()
    b = b.ravel() - b.mean()
    return float(np.dot(a, b) / math.sqrt(np.dot(a, a) * np.dot(b, b)))


def _k_cc(p: _Prepared, g: np.ndarray) -> float:
    if p.constant:
        if p.convention == "tuebingen":
            return 0.0
        _warn("cc", "constant saliency map: zero variance (the MIT code returns round-off noise)")
        return math.nan
    if not g.max() > g.min():
        _warn("cc", "constant fixation_map: zero variance")
        return math.nan
    return _pearson(p.s, g)


def _k_kld(p: _Prepared, g: np.ndarray) -> float:
    s = p.s
    if p.convention == "mit":
        total = s.sum()
        t = s / total if np.any(s) else s.astype(np.float64, copy=True)
        gn = g / g.sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            # the real part of MATLAB's complex log: log(abs(.)) (negative values come from FFT round-off
            # in G and from bicubic undershoot in S); computed in place on one temporary
            t += EPS
            np.divide(gn, t, out=t)
            t += EPS
            np.abs(t, out=t)
            np.log(t, out=t)
            t *= gn
            val = t.sum()
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            val = np.sum(_density(g) * np.log(_PYSAL_KL_EPS + _density(g) / (_density(s) + _PYSAL_KL_EPS)))
    if not np.isfinite(val):
        _warn("kld", "not finite (a saliency value of exactly -eps)")
    return float(val)


def _k_sim(p: _Prepared, g: np.ndarray) -> float:
    if p.convention == "mit":
        if np.any(p.s):
            if p.constant:
                _warn("sim", "constant saliency map: the MIT code returns NaN (min-max normalisation 0/0)")
                return math.nan
            s1 = p.norm / p.norm_sum
        else:
            s1 = np.zeros(p.s.size)  # an all-zero map stays zero in the MIT code
        glo, ghi = float(g.min()), float(g.max())
        if not ghi > glo:
            _warn("sim", "constant fixation_map: the MIT code returns NaN")
            return math.nan
        g2 = g.ravel() - glo
        g2 /= ghi - glo
        g2 /= g2.sum()
        np.minimum(s1, g2, out=g2)
        return float(g2.sum())
    return float(np.minimum(_density(p.s), _density(g)).sum())


def _minmax_sum_normalised(m: np.ndarray, pix: np.ndarray) -> np.ndarray:
    """MIT's ``m = (m - min)/(max - min); m = m/sum(m)`` at the pixels ``pix`` only.

    The sum of the normalised map is taken as ``(sum(m) - N min)/(max - min)`` (one reduction instead of a
    normalised copy); it differs from MATLAB's by round-off (~1e-15 relative).
    """
    lo, hi = float(m.min()), float(m.max())
    total = (float(m.sum()) - m.size * lo) / (hi - lo)
    return ((m.ravel()[pix] - lo) / (hi - lo)) / total


def _k_ig(p: _Prepared, fix: _Fix, baseline: np.ndarray) -> float:
    b = baseline if baseline.shape == p.shape else resize_to(baseline, p.shape, p.convention)
    if p.convention == "mit":
        blo, bhi = float(b.min()), float(b.max())
        if p.constant or not bhi > blo:
            which = "saliency map" if p.constant else "baseline_map"
            _warn("information_gain", f"constant {which}: the MIT code returns NaN (min-max normalisation 0/0)")
            return math.nan
        pix = fix.unique
        m1 = _minmax_sum_normalised(p.s, pix)
        mb = _minmax_sum_normalised(b, pix)
        return float(np.mean(np.log2(EPS + m1) - np.log2(EPS + mb)))
    pix = fix.flat
    with np.errstate(divide="ignore"):
        own = np.log(_density(p.s).ravel()[pix])
        base = np.log(_density(b).ravel()[pix])
    val = float(np.mean((own - base) / np.log(2)))
    if not np.isfinite(val):
        _warn("information_gain", "a fixation falls on a pixel of density 0 (pysaliency returns -inf)")
    return val


_DIST_CACHE: dict[tuple[int, int], np.ndarray] = {}


def _k_emd(raw: np.ndarray, g: np.ndarray, downsize: int, factors: Any = None) -> float:
    mats = shrink_matrices(g.shape, 1.0 / downsize) if factors is not None else None
    if mats is not None:  # G = A @ B.T was built from fixations: shrink the thin factors instead of G
        im1 = (mats[0] @ factors[0]) @ (mats[1] @ factors[1]).T
    else:
        im1 = imresize_bicubic(g, 1.0 / downsize)
    im2 = imresize_bicubic(raw, im1.shape)
    s1 = im1.sum()
    s2 = im2.sum()
    if s2 == 0 or not np.isfinite(s2):
        raise InputError("emd: the saliency map sums to zero after downsizing; it has no mass to move")
    im1 = im1 / s1
    im2 = im2 / s2
    key = im1.shape
    dist = _DIST_CACHE.get(key)
    if dist is None:
        dist = ground_distance(*key)
        _DIST_CACHE[key] = dist
    return emd_hat_gd_metric(im1.ravel(order="F"), im2.ravel(order="F"), dist)


# ---------------------------------------------------------------------------------------------------
# public metric functions
# ---------------------------------------------------------------------------------------------------


def _prepare_points(saliency_map: Any, fixations: Any, convention: str) -> tuple[_Prepared, _Fix]:
    _check_convention(convention)
    raw = check_map(saliency_map, "saliency_map")
    shape = _target_shape(raw, fixations)
    fix = _resolve_fixations(fixations, shape)
    return _Prepared(raw, shape, convention), fix


def _prepare_gt(saliency_map: Any, fixation_map: Any, convention: str) -> tuple[_Prepared, np.ndarray]:
    _check_convention(convention)
    g = _check_gt(fixation_map)
    return _Prepared(saliency_map, g.shape, convention), g


def auc_judd(saliency_map: Any, fixations: Any, *, convention: str = "mit", jitter: bool = True, rng: Any = None) -> float:
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
    n_splits: int = 100,
    step: float = 0.1,
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
    n_splits: int = 100,
    step: float = 0.1,
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
    p, g = _prepare_gt(saliency_map, fixation_map, convention)
    return _k_cc(p, g)


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
    p, g = _prepare_gt(saliency_map, fixation_map, convention)
    return _k_kld(p, g)


def sim(saliency_map: Any, fixation_map: Any, *, convention: str = "mit") -> float:
    """Similarity (histogram intersection) of the two maps as distributions, in [0, 1].

    Swain and Ballard 1991; Judd, Durand, Torralba, "A benchmark of computational models of saliency to
    predict human fixations", MIT tech. report 2012.  ``mit`` min-max normalises both maps first
    (a constant map gives NaN, warned); ``tuebingen`` only divides by the sum.

    >>> import numpy as np
    >>> g = np.arange(1.0, 10.0).reshape(3, 3)
    >>> sim(g, g)
    1.0
    """
    p, g = _prepare_gt(saliency_map, fixation_map, convention)
    return _k_sim(p, g)


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


def emd(saliency_map: Any, fixation_map: Any, *, convention: str = "mit", downsize: int = 32) -> float:
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
    return _k_emd(raw, g, int(downsize))


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


def _parse_metrics(metrics: str | Iterable[str]) -> list[str]:
    if isinstance(metrics, str):
        names = list(METRICS) if metrics == "all" else [m.strip() for m in metrics.split(",") if m.strip()]
    else:
        names = list(metrics)
    out: list[str] = []
    for name in names:
        key = _ALIASES.get(str(name).lower(), str(name).lower())
        if key not in METRICS:
            raise InputError(f"unknown metric {name!r}; expected 'all' or some of {', '.join(METRICS)}")
        if key not in out:
            out.append(key)
    if not out:
        raise InputError("no metric requested; pass metrics='all' or a list such as ['nss', 'auc_judd']")
    return out


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

    The saliency map is validated and resized to the fixation data's size once, the MIT min-max
    normalisation is shared by the AUCs, SIM and IG, and the continuous map is computed once (from
    ``fixations`` with :func:`fixation_density_map` under the MIT blur when ``fixation_map`` is None; the
    pysaliency reference numbers were computed on that same map).

    Parameters
    ----------
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

    Returns ``{metric: float}`` in :data:`METRICS` order.

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
    names = _parse_metrics(metrics)
    if "sauc" in names and other_fixations is None:
        if explicit:
            raise InputError("metric 'sauc' needs other_fixations (fixations of other images); pass them or drop 'sauc'")
        names.remove("sauc")
    raw = check_map(saliency_map, "saliency_map")
    g = _check_gt(fixation_map) if fixation_map is not None else None
    shape = _target_shape(raw, fixations, g)
    fix = _resolve_fixations(fixations, shape)
    if fix.shape != tuple(shape):
        raise InputError(f"the fixation map has shape {fix.shape} but fixation_map has shape {tuple(shape)}")
    p = _Prepared(raw, shape, convention)
    needs_g = any(m in names for m in ("cc", "kld", "sim", "emd"))
    factors = None
    if needs_g and g is None:
        g, factors = _density_from_fix(fix)

    results: dict[str, float] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DegenerateInputWarning)
        for name in METRICS:
            if name not in names:
                continue
            if name == "auc_judd":
                results[name] = _k_auc_judd(p, fix, True, rng)
            elif name == "auc_borji":
                results[name] = _k_auc_borji(p, fix, 100, 0.1, rng)
            elif name == "sauc":
                other = _resolve_fixations(other_fixations, shape, "other_fixations")
                if other.shape != tuple(shape):
                    raise InputError(f"other_fixations map has shape {other.shape}, expected {tuple(shape)}")
                results[name] = _k_sauc(p, fix, other, 100, 0.1, rng)
            elif name == "nss":
                results[name] = _k_nss(p, fix)
            elif name == "cc":
                results[name] = _k_cc(p, g)
            elif name == "kld":
                results[name] = _k_kld(p, g)
            elif name == "sim":
                results[name] = _k_sim(p, g)
            elif name == "ig":
                b = centre_bias_map(shape) if baseline_map is None else check_map(baseline_map, "baseline_map")
                results[name] = _k_ig(p, fix, b)
            elif name == "emd":
                results[name] = _k_emd(raw, g, 32, factors)
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
