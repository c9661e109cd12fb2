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
    quantised_levels,
)
from ._inputs import (
    CONVENTIONS,
    EPS,
    Fix,
    baseline_terms,
    check_convention,
    check_gt,
    minmax_sum_normalised,
    resolve_fixations,
    target_shape,
)
from ._resize import imresize_bicubic, resize_to
from ._roc import (
    exact_auc,
    exact_auc_all,
    judd_roc_tuebingen,
    mit_judd_auc,
    split_aucs,
)
from .groundtruth import (
    EMD_DOWNSIZE,
    GroundTruth,
    build_ground_truth,
    centre_bias_map,
    degrees_to_pixels,
    fixation_density_map,
    fixation_map_from_points,
    pixels_per_degree,
    prepare_ground_truth,
)

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
# EMD's downsizing factor (EMD_DOWNSIZE = 32) is named once, in groundtruth.py: GroundTruth precomputes the
# ground truth's shrunk histogram with it.

#: pysaliency's hard-coded regularisation in ``MIT_KLDiv`` (not quite ``eps``).
_PYSAL_KL_EPS = 2.2204e-16

_ALIASES = {"information_gain": "ig", "infogain": "ig", "kl": "kld", "kldiv": "kld", "shuffled_auc": "sauc",
            "similarity": "sim", "auc": "auc_judd"}


class DegenerateInputWarning(UserWarning):
    """A metric is undefined for this input (e.g. a constant map) and returned NaN (or an infinity).

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from salience.metrics import DegenerateInputWarning, nss
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     value = nss(np.ones((10, 10)), np.array([[2.0, 3.0]]))   # a constant map
    >>> value, caught[0].category is DegenerateInputWarning
    (nan, True)
    """


# ---------------------------------------------------------------------------------------------------
# one saliency map, prepared once for several metrics
# ---------------------------------------------------------------------------------------------------


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


def _k_auc_judd(p: _Prepared, fix: Fix, jitter: bool, rng: Any) -> float:
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


def _k_auc_borji(p: _Prepared, fix: Fix, n_splits: int, step: float, rng: Any) -> float:
    if p.convention == "mit":
        if p.constant:
            _warn("auc_borji", "constant saliency map: the MIT code returns NaN ('NaN saliencyMap')")
            return math.nan
        sth = p.norm_at(fix.unique)
        idx = _rng(rng).integers(0, p.flat.size, size=(sth.size, n_splits))
        return split_aucs(sth, p.norm_at(idx), step)
    return exact_auc_all(p.flat[fix.flat], p.flat, p.quant)


def _k_sauc(p: _Prepared, fix: Fix, other: Fix, n_splits: int, step: float, rng: Any) -> float:
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


def _k_nss(p: _Prepared, fix: Fix, gt: GroundTruth | None = None) -> float:
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


def _k_ig(p: _Prepared, fix: Fix, baseline: np.ndarray, gt: GroundTruth | None = None) -> float:
    if gt is not None:
        base = gt._ig_terms(baseline, p.convention)
    else:
        b = baseline if baseline.shape == p.shape else resize_to(baseline, p.shape, p.convention)
        base = baseline_terms(b, fix, p.convention)
    if p.convention == "mit":
        if p.constant or not isinstance(base, np.ndarray):
            which = "saliency map" if p.constant else "baseline_map"
            _warn("information_gain", f"constant {which}: the MIT code returns NaN (min-max normalisation 0/0)")
            return math.nan
        m1 = minmax_sum_normalised(p.flat, fix.unique, p.stats)
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


def _prepare_points(saliency_map: Any, fixations: Any, convention: str) -> tuple[_Prepared, Fix]:
    check_convention(convention)
    raw = check_map(saliency_map, "saliency_map")
    shape = target_shape(raw, fixations)
    fix = resolve_fixations(fixations, shape)
    return _Prepared(raw, shape, convention), fix


def _prepare_gt(saliency_map: Any, fixation_map: Any, convention: str, metric: str) -> tuple[_Prepared, GroundTruth]:
    check_convention(convention)
    g = check_gt(fixation_map)
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
    other = resolve_fixations(other_fixations, p.shape, "other_fixations")
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
    check_convention(convention)
    if int(downsize) < 1:
        raise InputError(f"downsize must be a positive integer, got {downsize}")
    raw = check_map(saliency_map, "saliency_map")
    g = check_gt(fixation_map)
    return _k_emd(raw, GroundTruth(None, g, None, None, g.shape), int(downsize))


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
_KERNELS: dict[str, Callable[[_Prepared, Fix, GroundTruth, np.ndarray, Any], float]] = {
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
    check_convention(convention)
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
        g = check_gt(fixation_map) if fixation_map is not None else None
        shape = target_shape(raw, fixations, g)
        gt = build_ground_truth(fixations, shape, g, other_fixations if "sauc" in names else None,
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


