"""Explanation quality: the standard set of scores beside deletion/insertion, ROAD and randomisation.

Each function scores the explanation maps of a batch of images, one number per image:

=================================  ==========================================================  ===========
function                           what it measures                                            better
=================================  ==========================================================  ===========
:func:`faithfulness_correlation`   Pearson correlation between the attribution summed over     higher
                                   random pixel subsets and the score drop when those subsets
                                   are replaced by a baseline (Bhatt, Weller & Moura, IJCAI
                                   2020)
:func:`monotonicity`               the score never falls as pixels are added to the baseline   True
                                   in order of increasing attribution (Arya et al. 2019)
:func:`monotonicity_correlation`   Spearman correlation between each pixel group's attribution higher
                                   and the squared score change when that group alone is
                                   replaced (Nguyen & Martinez 2020)
:func:`max_sensitivity`,           how much the explanation changes under uniform noise of     lower
:func:`avg_sensitivity`            radius ``r`` on the input, relative to its norm; maximum and
                                   mean over samples (Yeh et al., NeurIPS 2019)
:func:`sparseness`                 Gini index of ``|map|`` (Chalasani et al., ICML 2020)       higher
:func:`complexity`                 entropy of ``|map| / sum |map|`` (Bhatt et al. 2020)        lower
:func:`region_perturbation`        area over the most-relevant-first perturbation curve        higher
                                   (AOPC) of square regions (Samek et al., IEEE TNNLS 2017)
=================================  ==========================================================  ===========

A *feature* is a pixel (all its channels at once) of the model's input; the map is the ``(B, H, W)``
map that :func:`salience.explain` returns (or any array of that shape).  Removed pixels are set to a
``baseline`` in the model's input space: one number (default 0, the data set mean after ImageNet
normalisation) or one per channel.  The target class is fixed on the unperturbed image (top-1 unless
``target`` says otherwise, the conventions of :func:`salience.explain`) and kept for every perturbed
copy; ``score`` is the softmax probability (default, as the papers use) or the logit.  All perturbed
images go through the model in batches of ``batch_size``; the results do not depend on it.  Random
choices (subsets, noise, random region orders) come from ``numpy.random.default_rng`` seeded with
``(seed, image index)`` or ``(seed, sample)``, so a call is deterministic and every method sees the
same subsets and the same noise.  :func:`quality_report` runs any set of them for several registry
methods (the ``salience audit --metrics`` option).

Where the definitions differ from Quantus 0.6.0 (the reference implementation most papers use), the
function's notes say how; ``tests/test_quality.py`` checks the agreement on identical inputs.

>>> import numpy as np
>>> from salience.audit.quality import sparseness, complexity
>>> one_hot = np.zeros((1, 8, 8)); one_hot[0, 3, 4] = 1.0
>>> sparseness(one_hot).round(4).tolist(), complexity(np.ones((1, 8, 8))).round(4).tolist()
([0.9844], [4.1589])
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..check import check_choice, check_int, check_real, require_torch
from ..errors import InputError, ModelError

__all__ = [
    "QUALITY_METRICS",
    "QualityResult",
    "faithfulness_correlation",
    "monotonicity",
    "monotonicity_correlation",
    "max_sensitivity",
    "avg_sensitivity",
    "sensitivity",
    "sparseness",
    "complexity",
    "region_perturbation",
    "quality_report",
]

#: the metric names of :func:`quality_report` and ``salience audit --metrics``, in table order
QUALITY_METRICS = ("faithfulness-correlation", "monotonicity", "monotonicity-correlation", "max-sensitivity",
                   "avg-sensitivity", "sparseness", "complexity", "region-perturbation")


def _torch():
    return require_torch("the model-based quality metrics")


@dataclass
class QualityResult:
    """One quality metric for each image of a batch.

    Attributes
    ----------
    metric: the metric's name (one of :data:`QUALITY_METRICS`).
    values: float64 ``(B,)``, the score of each image (monotonicity: 1.0 monotonic, 0.0 not).
    targets: int64 ``(B,)`` class indices (``None`` for a callable target).
    curves: float64 ``(B, K)`` per-step numbers where the metric has steps (monotonicity: the score
        after each added group; region perturbation: the score drop after ``k = 0..L`` regions;
        sensitivity: the relative change of each noise sample), else ``None``.
    params: the settings used.

    Examples
    --------
    >>> import torch
    >>> from salience.audit import QualityResult, region_perturbation
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    >>> r = region_perturbation(net, torch.rand(2, 1, 4, 4), torch.rand(2, 4, 4), patch=2)
    >>> isinstance(r, QualityResult), r.metric, r.values.shape, r.curves.shape
    (True, 'region-perturbation', (2,), (2, 5))
    """

    metric: str
    values: np.ndarray
    targets: np.ndarray | None
    curves: np.ndarray | None = None
    params: dict[str, Any] = field(default_factory=dict)


# ======================================================================================================
# Shared checks and the batched scoring of perturbed images
# ======================================================================================================


def _maps_array(saliency_maps: Any, name: str = "saliency_maps") -> np.ndarray:
    """(B, H, W) float64 from an Explanation, tensor or array ((H, W) is one map); checked."""
    maps = getattr(saliency_maps, "maps", saliency_maps)
    if hasattr(maps, "detach"):
        maps = maps.detach().double().cpu().numpy()
    try:
        arr = np.asarray(maps, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a (B, H, W) array, tensor or Explanation, got "
                         f"{type(saliency_maps).__name__}") from None
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.size == 0:
        raise InputError(f"{name} must have shape (B, H, W) (or (H, W) for one map), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError(f"{name} contains NaN or infinite values; replace them (np.nan_to_num) first")
    return arr


def _check_score(score: str) -> bool:
    check_choice("score", score, ("probability", "logit"))
    return score == "probability"


@contextlib.contextmanager
def _eval_mode(net: Any) -> Iterator[None]:
    """Eval mode for one call; every module's training flag restored after (also on error)."""
    modules = list(net.modules())
    flags = [m.training for m in modules]
    try:
        net.eval()
        yield
    finally:
        for m, f in zip(modules, flags):
            m.training = f


class _Scorer:
    """The model, the checked images, the fixed target and the batched scoring of masked copies."""

    def __init__(self, model: Any, images: Any, saliency_maps: Any, target: Any, score: str, baseline: Any,
                 batch_size: int) -> None:
        torch = _torch()
        from ..attribution import Target, check_images, select_scores, target_scores, unwrap_model

        self.torch = torch
        self.net = unwrap_model(model)
        self.x = check_images(images, self.net, needs_grad=False)
        B, C, H, W = self.x.shape
        self.shape = (B, C, H, W)
        self.sal = None if saliency_maps is None else _maps_array(saliency_maps)
        if self.sal is not None and self.sal.shape != (B, H, W):
            raise InputError(
                f"saliency_maps has shape {self.sal.shape}; expected (B, H, W) = ({B}, {H}, {W}), one map per "
                "image at the input's size (Explanation.maps has it; resize other maps to the input first)")
        self.probabilities = _check_score(score)
        self.batch_size = check_int("batch_size", batch_size)
        self.fill = self._baseline(baseline)
        self.tgt = Target.parse(target, B)
        self._target_scores = target_scores
        with _eval_mode(self.net), torch.no_grad():
            out = self.net(self.x)
            _, self.idx = select_scores(out, self.tgt, B)
            self.s0 = self._select(out, np.arange(B))

    def _baseline(self, baseline: Any):
        torch = self.torch
        B, C, H, W = self.shape
        try:
            v = np.asarray(baseline, dtype=np.float64)
        except (TypeError, ValueError):
            v = np.array([np.nan])
        if v.ndim > 1 or (v.ndim == 1 and v.size != C) or not np.isfinite(v).all():
            raise InputError(f"baseline must be one finite number or one per channel ({C}), got {baseline!r}")
        t = torch.as_tensor(v, dtype=self.x.dtype, device=self.x.device)
        return t.view(1, -1, 1, 1).expand(1, C, H, W) if t.ndim == 1 else t.view(1, 1, 1, 1).expand(1, C, H, W)

    def _select(self, out: Any, rows: np.ndarray) -> np.ndarray:
        idx = None if self.idx is None else self.idx[self.torch.as_tensor(rows, device=self.idx.device)].cpu()
        s = self._target_scores(out, self.tgt, idx, len(rows), probabilities=self.probabilities)
        return s.detach().double().cpu().numpy()

    @property
    def maps(self) -> np.ndarray:
        """The checked ``(B, H, W)`` float64 maps."""
        assert self.sal is not None
        return self.sal

    @property
    def targets(self) -> np.ndarray | None:
        return None if self.idx is None else self.idx.detach().cpu().numpy().astype(np.int64)

    def masked_scores(self, rows: np.ndarray, masks: Callable[[int, int], np.ndarray]) -> np.ndarray:
        """Scores of ``len(rows)`` copies: copy ``j`` is image ``rows[j]`` with the pixels of
        ``masks(s, e)[j - s]`` (bool ``(e - s, H, W)``) set to the baseline."""
        torch = self.torch
        n = len(rows)
        out = np.empty(n, dtype=np.float64)
        H, W = self.shape[2:]
        with _eval_mode(self.net), torch.no_grad():
            for s in range(0, n, self.batch_size):
                e = min(n, s + self.batch_size)
                r = rows[s:e]
                m = torch.from_numpy(np.ascontiguousarray(masks(s, e))).to(self.x.device).view(e - s, 1, H, W)
                xs = torch.where(m, self.fill, self.x[torch.as_tensor(r, device=self.x.device)])
                out[s:e] = self._select(self.net(xs), r)
        if not np.isfinite(out).all():
            raise ModelError("the model produced non-finite scores on the perturbed images")
        return out


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation; a constant row has none: 0.0 (1.0 if both rows are constant)."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    na, nb = np.sqrt((a * a).sum(1)), np.sqrt((b * b).sum(1))
    n = a.shape[1]
    sa = na <= 1e-12 * max(1.0, n) * np.maximum(1.0, np.abs(a).max(1))
    sb = nb <= 1e-12 * max(1.0, n) * np.maximum(1.0, np.abs(b).max(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.clip((a * b).sum(1) / (na * nb), -1.0, 1.0)
    return np.where(sa | sb, np.where(sa & sb, 1.0, 0.0), r)


def _rank_rows(v: np.ndarray) -> np.ndarray:
    """1-based ranks per row, ties sharing their mean rank (as scipy.stats.rankdata's "average")."""
    out = np.empty(v.shape, dtype=np.float64)
    for i, row in enumerate(v):
        _, inverse, counts = np.unique(row, return_inverse=True, return_counts=True)
        ends = np.cumsum(counts)
        out[i] = ((ends - counts + 1 + ends) / 2.0)[inverse.ravel()]
    return out


def _ascending_groups(sal: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``group[b, p]``: the step (0-based) at which pixel ``p`` enters when pixels are taken in order
    of increasing attribution (ties in raster order), ``steps`` groups of ``round(k * HW / steps)``."""
    B, HW = sal.shape
    order = np.argsort(sal, axis=1, kind="stable")
    rank = np.empty((B, HW), dtype=np.int64)
    np.put_along_axis(rank, order, np.arange(HW)[None].repeat(B, 0), axis=1)
    counts = np.round(np.arange(steps + 1) * HW / steps).astype(np.int64)
    group = np.searchsorted(counts, rank, side="right") - 1
    return group, counts


def _steps(steps: int | None, hw: int) -> int:
    steps = min(100, hw) if steps is None else check_int("steps", steps)
    if steps > hw:
        raise InputError(f"steps={steps} is more than the {hw} pixels of the image; use at most {hw}")
    return steps


# ======================================================================================================
# Faithfulness correlation, monotonicity, monotonicity correlation
# ======================================================================================================


def faithfulness_correlation(model: Any, images: Any, saliency_maps: Any, target: Any = None, *,
                             runs: int = 100, subset_size: int | None = None, baseline: Any = 0.0,
                             score: str = "probability", subsets: Any = None, seed: int = 0,
                             batch_size: int = 64) -> QualityResult:
    """Faithfulness correlation (Bhatt, Weller & Moura, "Evaluating and aggregating feature-based model
    explanations", IJCAI 2020).

    For ``runs`` random subsets ``S`` of ``subset_size`` pixels, the pixels of ``S`` (all channels) are
    set to ``baseline`` and the drop of the target score ``f(x) - f(x_S)`` is recorded next to the sum of
    the attribution over ``S``; the value is the Pearson correlation of the two over the runs.  A map
    whose mass sits where the model's evidence is correlates highly (near 1); a random map near 0.

    Parameters
    ----------
    model: ``nn.Module`` or :class:`~salience.attribution.LoadedModel` (never modified).
    images: float ``(B, C, H, W)`` tensor in the model's preprocessing (never modified).
    saliency_maps: ``(B, H, W)`` array, tensor or :class:`~salience.attribution.Explanation` at the
        input's size; signed values are used as they are.
    target: as in :func:`salience.explain`; fixed on the unperturbed image.
    runs: number of random subsets (default 100, as Quantus).
    subset_size: pixels per subset (default ``max(1, round(0.1 * H * W))``).
    baseline: the value of replaced pixels: one number or one per channel (model input space).
    score: ``"probability"`` (softmax) or ``"logit"``.
    subsets: optional int ``(B, runs, subset_size)`` or ``(runs, subset_size)`` raster pixel indices
        (``y * W + x``) to use instead of random ones (to compare with another implementation).
    seed: subset ``r`` of image ``b`` is ``default_rng((seed, b)).choice(H * W, subset_size,
        replace=False)``, the ``r``-th draw: the same for every method and every batching.
    batch_size: perturbed images per forward pass.

    Returns
    -------
    QualityResult: ``values`` float64 ``(B,)`` in ``[-1, 1]`` (0.0 when the sums or the drops are constant
    over the runs), ``curves`` ``None``.

    Notes
    -----
    Quantus 0.6.0 (``FaithfulnessCorrelation``) draws its subsets over the ``C * H * W`` input elements
    (one channel of a pixel at a time) and by default normalises the map by its maximum absolute value
    (which does not change a correlation); here a feature is a whole pixel.  On single-channel inputs
    with the same subsets the two agree to float precision.

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    >>> x = torch.rand(1, 1, 4, 4)
    >>> evidence = (net[1].weight[0] * x.flatten()).detach().view(1, 4, 4)   # exact for a linear model
    >>> r = faithfulness_correlation(net, x, evidence, 0, runs=20, subset_size=4, score="logit")
    >>> round(float(r.values[0]), 6)
    1.0
    """
    sc = _Scorer(model, images, saliency_maps, target, score, baseline, batch_size)
    B, C, H, W = sc.shape
    HW = H * W
    runs = check_int("runs", runs, 2)
    k = max(1, int(round(0.1 * HW))) if subset_size is None else check_int("subset_size", subset_size)
    if k >= HW:
        raise InputError(f"subset_size must be smaller than the {HW} pixels of the image, got {k}")
    seed = check_int("seed", seed, 0)
    if subsets is None:
        idx = np.empty((B, runs, k), dtype=np.int64)
        for b in range(B):
            rng = np.random.default_rng((seed, b))
            for r in range(runs):
                idx[b, r] = rng.choice(HW, k, replace=False)
    else:
        idx = np.asarray(subsets)
        if idx.ndim == 2:
            idx = np.broadcast_to(idx, (B,) + idx.shape)
        if (idx.ndim != 3 or idx.shape[0] != B or idx.shape[1] < 2 or not np.issubdtype(idx.dtype, np.integer)
                or idx.min() < 0 or idx.max() >= HW):
            raise InputError(f"subsets must be integer pixel indices in [0, {HW}) of shape (B, runs, k) or "
                             f"(runs, k) with runs >= 2, got shape {idx.shape} and dtype {idx.dtype}")
        runs, k = idx.shape[1], idx.shape[2]
    sal = sc.maps.reshape(B, HW)
    sums = np.take_along_axis(sal, idx.reshape(B, -1), axis=1).reshape(B, runs, k).sum(axis=2)
    rows = np.repeat(np.arange(B), runs)
    flat_idx = idx.reshape(B * runs, k)

    def masks(s: int, e: int) -> np.ndarray:
        m = np.zeros((e - s, HW), dtype=bool)
        np.put_along_axis(m, flat_idx[s:e], True, axis=1)
        return m.reshape(e - s, H, W)

    drops = sc.s0[rows] - sc.masked_scores(rows, masks)
    values = _pearson_rows(sums, drops.reshape(B, runs))
    return QualityResult("faithfulness-correlation", values, sc.targets, None,
                         {"runs": runs, "subset_size": k, "baseline": _jsonable(baseline), "score": score,
                          "seed": seed})


def monotonicity(model: Any, images: Any, saliency_maps: Any, target: Any = None, *, steps: int | None = None,
                 baseline: Any = 0.0, score: str = "probability", batch_size: int = 64) -> QualityResult:
    """Monotonicity (Arya et al., "One explanation does not fit all: a toolkit and taxonomy of AI
    explainability techniques", arXiv:1909.03012, 2019; cumulative form as in Quantus).

    Starting from the all-``baseline`` image, the original pixels are put back in ``steps`` groups in
    order of *increasing* attribution (ties in raster order); the explanation is monotonic when the
    target score never falls from one group to the next, i.e. each added group, being more important
    than the ones before, adds at least as much evidence.  This is the insertion curve of
    :func:`~salience.audit.faithfulness.insertion_curve` for the reversed ranking, and it is computed
    by it.

    Parameters
    ----------
    model, images, saliency_maps, target, baseline, score, batch_size: as in
        :func:`faithfulness_correlation`.
    steps: number of groups (default ``None``: 100, or ``H * W`` for smaller images); group ``k`` holds
        the pixels of ranks ``round((k - 1) H W / steps)`` to ``round(k H W / steps)``.

    Returns
    -------
    QualityResult: ``values`` float64 ``(B,)``, 1.0 when monotonic and 0.0 when not; ``curves``
    ``(B, steps)``, the score after each added group (the first entry after the first group).

    Notes
    -----
    As in Quantus 0.6.0 (``Monotonicity``), the all-baseline image itself is not part of the check (the
    curve starts after the first group).  Quantus by default takes ``|map|`` and normalises it (``abs=True``,
    ``normalise=True``) and counts the ``C * H * W`` input elements as features; here the map is used
    as given (pass ``np.abs(map)`` for Quantus' default) and a feature is a pixel.  Quantus 0.6.0's
    default ``perturb_func`` (baseline replacement) sets the elements it "adds" to the baseline again, so
    its curve stays flat and every map comes out monotonic; given a ``perturb_func`` that puts the
    original values back, ``abs=False`` and ``features_in_step = C * H * W / steps``, its curve equals
    this one (both with softmax scores, Quantus' default).

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2, bias=False))
    >>> with torch.no_grad():
    ...     _ = net[1].weight.copy_(torch.tensor([[1.0, -2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]]))
    >>> x, evidence = torch.ones(1, 1, 2, 2), torch.tensor([[[1.0, -2.0], [3.0, 4.0]]])
    >>> r = monotonicity(net, x, evidence, score="logit")      # adds -2, 1, 3, 4: the logit -2, -1, 2, 6
    >>> r.values.tolist(), r.curves.round(3).tolist()
    ([1.0], [[-2.0, -1.0, 2.0, 6.0]])
    >>> monotonicity(net, x, -evidence, score="logit").values.tolist()   # 4, 3, 1, -2: falls at the end
    [0.0]
    """
    from .faithfulness import insertion_curve

    sc = _Scorer(model, images, saliency_maps, target, score, baseline, batch_size)
    B, C, H, W = sc.shape
    steps = _steps(steps, H * W)
    value = np.asarray(baseline, dtype=np.float64)
    r = insertion_curve(model, images, -sc.maps, target=target if sc.idx is None else sc.idx.cpu(), steps=steps,
                        perturbation="constant", value=float(value) if value.ndim == 0 else value.tolist(),
                        score=score, batch_size=batch_size)
    curve = r.scores[:, 1:].astype(np.float64)
    values = np.all(np.diff(curve, axis=1) >= 0, axis=1).astype(np.float64)
    return QualityResult("monotonicity", values, sc.targets, curve,
                         {"steps": steps, "baseline": _jsonable(baseline), "score": score})


def monotonicity_correlation(model: Any, images: Any, saliency_maps: Any, target: Any = None, *,
                             steps: int | None = None, baseline: Any = 0.0, score: str = "probability",
                             batch_size: int = 64) -> QualityResult:
    """Monotonicity correlation (Nguyen & Martinez, "On quantitative aspects of model interpretability",
    arXiv:2007.07584, 2020).

    The pixels are split into ``steps`` groups by increasing attribution (as :func:`monotonicity`);
    each group alone is set to ``baseline`` and the squared change of the target score
    ``(f(x) - f(x_g))^2`` is recorded.  The value is the Spearman rank correlation, over the groups,
    between each group's summed attribution and that change: near 1 when the more important groups
    change the prediction more.

    Parameters
    ----------
    model, images, saliency_maps, target, baseline, score, batch_size: as in
        :func:`faithfulness_correlation`.
    steps: number of groups (default 100, or ``H * W`` for smaller images); at least 2.

    Returns
    -------
    QualityResult: ``values`` float64 ``(B,)`` in ``[-1, 1]`` (0.0 when either side is constant);
    ``curves`` ``(B, steps)``, the squared score change of each group (in the order of increasing
    attribution).

    Notes
    -----
    Nguyen & Martinez perturb each feature with samples from a distribution and use the variance of the
    prediction; with the deterministic ``baseline`` used here that variance is ``(f(x) - f(x_g))^2``.
    Quantus 0.6.0 (``MonotonicityCorrelation``) does the same with ``nr_samples`` draws of its
    ``perturb_baseline`` (default ``"uniform"`` noise), multiplies by ``1 / f(x)^2`` (which no rank
    correlation sees), and by default takes ``|map|`` and the softmax output; with a constant
    ``perturb_baseline``, ``nr_samples=1``, ``abs=False``, the same groups and ``score="probability"``
    here, the two agree.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1, bias=False))
    >>> with torch.no_grad():
    ...     _ = net[1].weight.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    >>> r = monotonicity_correlation(net, torch.ones(1, 1, 2, 2), torch.tensor([[1.0, 2.0], [3.0, 4.0]]),
    ...                              score="logit")
    >>> r.values.round(6).tolist()
    [1.0]
    """
    sc = _Scorer(model, images, saliency_maps, target, score, baseline, batch_size)
    B, C, H, W = sc.shape
    HW = H * W
    steps = _steps(steps, HW)
    if steps < 2:
        raise InputError("monotonicity_correlation needs steps >= 2 (a correlation over groups)")
    sal = sc.maps.reshape(B, HW)
    group, _ = _ascending_groups(sal, steps)
    att = np.stack([np.bincount(g, weights=s, minlength=steps) for g, s in zip(group, sal)])
    rows = np.repeat(np.arange(B), steps)
    gi = np.tile(np.arange(steps), B)

    def masks(s: int, e: int) -> np.ndarray:
        return (group[rows[s:e]] == gi[s:e, None]).reshape(e - s, H, W)

    change = ((sc.s0[rows] - sc.masked_scores(rows, masks)) ** 2).reshape(B, steps)
    values = _pearson_rows(_rank_rows(att), _rank_rows(change))
    return QualityResult("monotonicity-correlation", values, sc.targets, change,
                         {"steps": steps, "baseline": _jsonable(baseline), "score": score})


# ======================================================================================================
# Region perturbation (AOPC)
# ======================================================================================================


def region_perturbation(model: Any, images: Any, saliency_maps: Any, target: Any = None, *, patch: int = 8,
                        regions: int | None = None, order: str = "morf", baseline: Any = 0.0,
                        score: str = "probability", seed: int = 0, batch_size: int = 64) -> QualityResult:
    """Region perturbation and its AOPC (Samek, Binder, Montavon, Lapuschkin & Müller, "Evaluating the
    visualization of what a deep neural network has learned", IEEE TNNLS 28(11), 2017).

    The image is cut into ``patch x patch`` regions ranked by their summed attribution.  The grid is
    centred: when ``patch`` does not divide the image's side, the regions of the first and last rows
    (columns) are cut by the border, the missing ``ceil(H / patch) * patch - H`` pixels split evenly
    between the two sides (the smaller share at the top and left).  Regions are replaced by
    ``baseline`` one after another, cumulatively, most relevant first (``order="morf"``), and the drop
    ``f(x) - f(x_k)`` is recorded after ``k = 0..L`` regions; the area over the perturbation curve is
    ``AOPC = 1 / (L + 1) * sum_k (f(x) - f(x_k))``.  Higher = the map finds the regions the model needs
    sooner.  ``order="lerf"`` (least relevant first; lower is better) and ``"random"`` (a seeded random
    order, the reference a map should beat) give the usual controls.

    Parameters
    ----------
    model, images, saliency_maps, target, baseline, score, batch_size: as in
        :func:`faithfulness_correlation`.
    patch: side of the square regions in pixels (default 8; Samek et al. use 9 x 9 at 224 x 224).
    regions: ``L``, the number of regions perturbed (default: all of them).
    order: ``"morf"``, ``"lerf"`` or ``"random"``.
    seed: the random order of image ``b`` comes from ``default_rng((seed, b))``.

    Returns
    -------
    QualityResult: ``values`` float64 ``(B,)``, the AOPC; ``curves`` ``(B, L + 1)``, the drops, the
    first one (nothing perturbed) 0.

    Notes
    -----
    Quantus 0.6.0 (``RegionPerturbation``) returns the drops after ``k = 1..L`` regions (not the AOPC),
    with the same region grid (it pads the image on both sides to whole regions and sums the
    attribution over the real pixels); its defaults are the softmax output, ``perturb_baseline="uniform"``
    noise, ``|map|`` and a max-normalised map.  With a constant baseline, ``abs=False``,
    ``normalise=False`` and ``score="probability"`` here, the drops agree exactly.  For regions that
    tile the image exactly, the drops are those of
    :func:`~salience.audit.faithfulness.deletion_curve` with ``patch`` (which ranks by the regions' mean)
    and one step per region.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2, bias=False))
    >>> with torch.no_grad():
    ...     _ = net[1].weight.zero_(); _ = net[1].weight[0, :2].fill_(1.0)   # class 0 looks at 2 pixels
    >>> evidence = torch.zeros(1, 4, 4); evidence[0, 0, :2] = 1.0
    >>> r = region_perturbation(net, torch.ones(1, 1, 4, 4), evidence, patch=2, score="logit")
    >>> r.curves.round(3).tolist(), round(float(r.values[0]), 3)
    ([[0.0, 2.0, 2.0, 2.0, 2.0]], 1.6)
    """
    sc = _Scorer(model, images, saliency_maps, target, score, baseline, batch_size)
    B, C, H, W = sc.shape
    patch = check_int("patch", patch)
    check_choice("order", order, ("morf", "lerf", "random"))
    seed = check_int("seed", seed, 0)
    nr, nc = -(-H // patch), -(-W // patch)
    n_cells = nr * nc
    L = n_cells if regions is None else check_int("regions", regions)
    if L > n_cells:
        raise InputError(f"regions={L} is more than the {n_cells} regions of {patch} x {patch} pixels; use at most "
                         f"{n_cells}")
    # a centred grid: the regions the border cuts are split between both sides (as Quantus pads)
    oh, ow = (nr * patch - H) // 2, (nc * patch - W) // 2
    cell = (((np.arange(H) + oh) // patch)[:, None] * nc + ((np.arange(W) + ow) // patch)[None, :]).ravel()
    sal = sc.maps.reshape(B, H * W)
    sums = np.stack([np.bincount(cell, weights=s, minlength=n_cells) for s in sal])
    if order == "morf":
        ordering = np.argsort(-sums, axis=1, kind="stable")
    elif order == "lerf":
        ordering = np.argsort(sums, axis=1, kind="stable")
    else:
        ordering = np.stack([np.random.default_rng((seed, b)).permutation(n_cells) for b in range(B)])
    cell_rank = np.empty_like(ordering)
    np.put_along_axis(cell_rank, ordering, np.arange(n_cells)[None].repeat(B, 0), axis=1)
    pix_rank = np.take_along_axis(cell_rank, np.broadcast_to(cell, (B, H * W)), axis=1)
    rows = np.repeat(np.arange(B), L)
    ks = np.tile(np.arange(1, L + 1), B)

    def masks(s: int, e: int) -> np.ndarray:
        return (pix_rank[rows[s:e]] < ks[s:e, None]).reshape(e - s, H, W)

    drops = (sc.s0[rows] - sc.masked_scores(rows, masks)).reshape(B, L)
    curves = np.concatenate([np.zeros((B, 1)), drops], axis=1)
    values = curves.mean(axis=1)
    return QualityResult("region-perturbation", values, sc.targets, curves,
                         {"patch": patch, "regions": L, "order": order, "baseline": _jsonable(baseline),
                          "score": score, "seed": seed})


# ======================================================================================================
# Sensitivity (robustness of the explanation)
# ======================================================================================================


def sensitivity(model: Any, images: Any, method: str = "gradient", target: Any = None, *, layer: Any = None,
                radius: float = 0.2, samples: int = 10, seed: int = 0, params: dict[str, Any] | None = None,
                reference: Any = None) -> tuple[QualityResult, QualityResult]:
    """Max- and average-sensitivity together (Yeh, Hsieh, Suggala, Inouye & Ravikumar, "On the
    (in)fidelity and sensitivity of explanations", NeurIPS 2019); see :func:`max_sensitivity`.

    Returns
    -------
    ``(max_result, avg_result)``: the two :class:`QualityResult`, sharing the explanations computed.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    >>> mx, avg = sensitivity(net, torch.rand(2, 1, 4, 4), "gradient", samples=3)
    >>> mx.values.round(6).tolist(), avg.curves.shape        # a linear model's gradient never changes
    ([0.0, 0.0], (2, 3))
    """
    torch = _torch()
    from ..attribution import check_images, explain, unwrap_model

    net = unwrap_model(model)
    x = check_images(images, net)
    B = x.shape[0]
    radius = check_real("radius", radius, minimum=0, strict=True)
    samples = check_int("samples", samples)
    seed = check_int("seed", seed, 0)
    params = dict(params or {})
    if reference is None:
        e0 = explain(model, x, method=method, target=target, layer=layer, **params)
        a0 = e0.maps.detach().double().cpu().numpy().reshape(B, -1)
        idx = e0.targets
    else:
        ref = _maps_array(reference, "reference")
        if ref.shape != (B,) + tuple(x.shape[2:]):
            raise InputError(f"reference must be one map per image at the input's size, shape "
                             f"{(B,) + tuple(x.shape[2:])}, got {ref.shape}")
        a0 = ref.reshape(B, -1)
        idx = _Scorer(model, x, None, target, "logit", 0.0, 1).idx
    fixed = target
    if idx is not None and (target is None or not callable(target) or isinstance(target, (str, torch.Tensor))):
        fixed = idx.detach().cpu().long()
    norm0 = np.linalg.norm(a0, axis=1)
    if (norm0 <= 0).any():
        b = int(np.flatnonzero(norm0 <= 0)[0])
        raise ModelError(f"the explanation of image {b} is all zeros; its sensitivity relative to its norm is "
                         "undefined (a blank map: check the target and the layer)")
    rel = np.empty((B, samples), dtype=np.float64)
    for s in range(samples):
        noise = np.random.default_rng((seed, s)).uniform(-radius, radius, size=tuple(x.shape))
        xs = x + torch.from_numpy(noise).to(device=x.device, dtype=x.dtype)
        e = explain(model, xs, method=method, target=fixed, layer=layer, **params)
        a = e.maps.detach().double().cpu().numpy().reshape(B, -1)
        rel[:, s] = np.linalg.norm(a - a0, axis=1) / norm0
    targets = None if idx is None else idx.detach().cpu().numpy().astype(np.int64)
    p = {"method": method, "radius": radius, "samples": samples, "seed": seed}
    return (QualityResult("max-sensitivity", rel.max(axis=1), targets, rel, dict(p)),
            QualityResult("avg-sensitivity", rel.mean(axis=1), targets, rel, dict(p)))


_SENS_DOC = """

    For ``samples`` draws of uniform noise ``delta`` in ``[-radius, radius]`` on every input element
    (the model's input space: with ImageNet normalisation 0.2 is about 0.05 of the 0..1 pixel range),
    the explanation of ``x + delta`` is computed with the same method, layer, parameters and target
    class (the one explained on ``x``), and ``||e(x + delta) - e(x)||_2 / ||e(x)||_2`` (Frobenius norms
    of the maps) is recorded.  Max-sensitivity is the largest of these, average-sensitivity their mean.
    Lower = a more stable explanation.  Sample ``s`` is ``default_rng((seed, s)).uniform(-radius,
    radius, (B, C, H, W))``, the same for every method.

    Parameters
    ----------
    model: ``nn.Module`` or :class:`~salience.attribution.LoadedModel`.
    images: float ``(B, C, H, W)`` in the model's preprocessing.
    method: a registry explanation method (``"gradient"``, ``"gradcam"``, ...), run through
        :func:`salience.explain`.
    target, layer, params: as in :func:`salience.explain` (``params``: the method's parameters).
    radius: the noise bound (default 0.2, Quantus' ``lower_bound``).
    samples: number of noise draws (default 10; Yeh et al. and Quantus use 50 and 200 on small inputs).
    seed: the noise seed.
    reference: the maps of the unperturbed images to compare with (default: computed here).

    Returns
    -------
    QualityResult: ``values`` float64 ``(B,)`` >= 0; ``curves`` ``(B, samples)``, the relative change of
    each sample.

    Notes
    -----
    Yeh et al. define the sensitivity without the division by ``||e(x)||``; Quantus 0.6.0
    (``MaxSensitivity``, ``AvgSensitivity``) divides by it, as here, so that maps of different scale can
    be compared.  With the same noise draws and maps, the two agree to float precision (Quantus' default
    ``return_nan_when_prediction_changes=False`` keeps samples whose prediction changed; so does this).
    Salience's unsigned maps are normalised per image to ``[0, 1]``, which is part of the method here.
"""


def max_sensitivity(model: Any, images: Any, method: str = "gradient", target: Any = None, *, layer: Any = None,
                    radius: float = 0.2, samples: int = 10, seed: int = 0, params: dict[str, Any] | None = None,
                    reference: Any = None) -> QualityResult:
    """Max-sensitivity (Yeh et al., "On the (in)fidelity and sensitivity of explanations", NeurIPS 2019).

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 4), torch.nn.Tanh(),
    ...                           torch.nn.Linear(4, 2))
    >>> r = max_sensitivity(net, torch.rand(1, 1, 4, 4), "gradient", samples=4)
    >>> r.values.shape, bool(r.values[0] >= r.curves[0].mean())
    ((1,), True)
    """
    return sensitivity(model, images, method, target, layer=layer, radius=radius, samples=samples, seed=seed,
                       params=params, reference=reference)[0]


def avg_sensitivity(model: Any, images: Any, method: str = "gradient", target: Any = None, *, layer: Any = None,
                    radius: float = 0.2, samples: int = 10, seed: int = 0, params: dict[str, Any] | None = None,
                    reference: Any = None) -> QualityResult:
    """Average-sensitivity (Yeh et al., "On the (in)fidelity and sensitivity of explanations", NeurIPS 2019).

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    >>> avg_sensitivity(net, torch.rand(1, 1, 4, 4), "gradient", samples=2).values.round(6).tolist()
    [0.0]
    """
    return sensitivity(model, images, method, target, layer=layer, radius=radius, samples=samples, seed=seed,
                       params=params, reference=reference)[1]


max_sensitivity.__doc__ = (max_sensitivity.__doc__ or "").replace("\n    Examples", _SENS_DOC + "\n    Examples", 1)
avg_sensitivity.__doc__ = (avg_sensitivity.__doc__ or "").replace("\n    Examples", _SENS_DOC + "\n    Examples", 1)


# ======================================================================================================
# Sparseness and complexity (no model)
# ======================================================================================================


def sparseness(saliency_maps: Any) -> np.ndarray:
    """Sparseness: the Gini index of ``|map|`` (Chalasani, Chen, Chowdhury, Wu & Jha, "Concise explanations
    of neural networks using adversarial training", ICML 2020).

    With the ``n`` values ``|a|`` sorted ascending, ``G = sum_i (2 i - n - 1) a_(i) / (n sum_i a_(i))``.
    0 for a constant map (and for an all-zero one, the same constant), ``(n - 1) / n`` (about 1) for a
    map with one non-zero pixel.  Higher = a sparser, more concise explanation.  Scale-invariant.

    Parameters
    ----------
    saliency_maps: ``(B, H, W)`` or ``(H, W)`` array, tensor or Explanation (any finite values).

    Returns
    -------
    float64 ``(B,)`` in ``[0, 1)``.

    Notes
    -----
    Quantus 0.6.0 (``Sparseness``) adds ``1e-7`` to every value of the max-normalised ``|map|`` before the
    Gini index (so an all-zero map gives 0 instead of 0/0); the two agree to about ``1e-6``.

    Examples
    --------
    >>> import numpy as np
    >>> sparseness(np.ones((2, 4, 4))).tolist()
    [0.0, 0.0]
    >>> m = np.zeros((4, 4)); m[1, 2] = 5.0
    >>> sparseness(m).tolist()      # one pixel of 16: 15 / 16
    [0.9375]
    """
    a = np.abs(_maps_array(saliency_maps))
    B = a.shape[0]
    a = np.sort(a.reshape(B, -1), axis=1)
    n = a.shape[1]
    total = a.sum(axis=1)
    weights = 2.0 * np.arange(1, n + 1) - n - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        g = (a * weights).sum(axis=1) / (n * total)
    return np.where(total > 0, g, 0.0)


def complexity(saliency_maps: Any) -> np.ndarray:
    """Complexity: the entropy of the map's normalised magnitude (Bhatt, Weller & Moura, "Evaluating and
    aggregating feature-based model explanations", IJCAI 2020).

    ``p = |a| / sum |a|`` over the ``n`` pixels, ``H = -sum_i p_i ln p_i`` (nats, ``0 ln 0 = 0``).  0 for a map
    with one non-zero pixel, ``ln n`` (the largest) for a constant one (and for an all-zero map, the
    same constant).  Lower = a simpler explanation.  Scale-invariant.

    Parameters
    ----------
    saliency_maps: ``(B, H, W)`` or ``(H, W)`` array, tensor or Explanation (any finite values).

    Returns
    -------
    float64 ``(B,)`` in ``[0, ln(H W)]``.

    Notes
    -----
    Quantus 0.6.0 (``Complexity``) computes ``-sum p ln(p + 1e-12)`` on the max-normalised ``|map|`` (an
    all-zero map gives NaN there); the two agree to about ``1e-9`` per pixel of the map.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((4, 4)); m[0, :2] = 1.0
    >>> complexity(m).round(6).tolist()     # two equal pixels: ln 2
    [0.693147]
    """
    a = np.abs(_maps_array(saliency_maps))
    B = a.shape[0]
    a = a.reshape(B, -1)
    n = a.shape[1]
    total = a.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = a / total
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return np.where(total[:, 0] > 0, terms.sum(axis=1), math.log(n))


# ======================================================================================================
# Several methods and metrics at once
# ======================================================================================================


def _jsonable(v: Any) -> Any:
    a = np.asarray(v)
    return float(a) if a.ndim == 0 else a.astype(float).tolist()


def quality_report(model: Any, images: Any, methods: Sequence[str] | str = ("gradcam", "gradient"),
                   metrics: Sequence[str] | str = QUALITY_METRICS, target: Any = None, *, layer: Any = None,
                   params: dict[str, dict[str, Any]] | None = None, seed: int = 0, batch_size: int = 64,
                   score: str = "probability", baseline: Any = 0.0, options: dict[str, dict[str, Any]] | None = None,
                   progress: Callable[[str], None] | None = None) -> dict[str, dict[str, QualityResult]]:
    """Every metric of ``metrics`` for the explanations of every method of ``methods``.

    Each method's maps come from :func:`salience.explain` (registry names, a list or a comma string);
    the target class is fixed by the first method's explanation (top-1 unless ``target`` says otherwise)
    and used for every method and metric.

    Parameters
    ----------
    model, images, target, layer: as in :func:`salience.explain`.
    methods: explanation methods of the registry.
    metrics: names from :data:`QUALITY_METRICS` (a list or a comma string; ``"all"`` for every one).
    params: per-method parameters, ``{"smoothgrad": {"n": 16}}``.
    seed, batch_size, score, baseline: passed to every metric that takes them.
    options: per-metric keyword arguments, ``{"region-perturbation": {"patch": 16}, "max-sensitivity":
        {"samples": 20}}`` (the sensitivities share one computation, so give them the same options).
    progress: called with a short text before each method and metric.

    Returns
    -------
    ``{method: {metric: QualityResult}}``.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
    ...                           torch.nn.Linear(32, 2))
    >>> rep = quality_report(net, torch.rand(1, 1, 4, 4), "gradient", "sparseness,complexity")
    >>> sorted(rep["gradient"])
    ['complexity', 'sparseness']
    """
    torch = _torch()
    from ..attribution import check_images, explain, unwrap_model
    from ..registry import EXPLANATION, method_list

    names = method_list(methods, EXPLANATION, wrong_kind_hint="; quality metrics judge model explanations")
    wanted = _metric_list(metrics)
    params = dict(params or {})
    options = {k: dict(v) for k, v in (options or {}).items()}
    for k, opt in options.items():
        if k not in QUALITY_METRICS:
            raise InputError(f"options names an unknown metric {k!r}; choose from {', '.join(QUALITY_METRICS)}")
        fn = _PERTURBATION_METRICS[k][0] if k in _PERTURBATION_METRICS else \
            sensitivity if k.endswith("sensitivity") else None
        allowed = set() if fn is None else set(inspect.signature(fn).parameters) - {
            "model", "images", "saliency_maps", "method", "target", "layer", "params", "reference", "seed"}
        unknown = sorted(set(opt) - allowed)
        if unknown:
            raise InputError(f"options[{k!r}] has unknown settings {', '.join(unknown)}; {k} takes "
                             f"{', '.join(sorted(allowed)) or 'none'}")
    x = check_images(images, unwrap_model(model))
    fixed: Any = target
    out: dict[str, dict[str, QualityResult]] = {}
    for name in names:
        if progress is not None:
            progress(f"{name}: explaining")
        e = explain(model, x, method=name, target=fixed, layer=layer, **params.get(name, {}))
        keep = target is None or not callable(target) or isinstance(target, (str, torch.Tensor))
        if e.targets is not None and keep:
            fixed = e.targets.detach().cpu().long()
        res: dict[str, QualityResult] = {}
        for metric in wanted:
            if progress is not None:
                progress(f"{name}: {metric}")
            if metric in res:
                continue
            if metric in _PERTURBATION_METRICS:
                fn, seeded = _PERTURBATION_METRICS[metric]
                kw = {"score": score, "baseline": baseline, "batch_size": batch_size}
                if seeded:
                    kw["seed"] = seed
                res[metric] = fn(model, x, e.maps, fixed, **{**kw, **options.get(metric, {})})
            elif metric in ("max-sensitivity", "avg-sensitivity"):
                opt = {**options.get("max-sensitivity", {}), **options.get("avg-sensitivity", {})}
                mx, avg = sensitivity(model, x, name, fixed, layer=layer, seed=seed, params=params.get(name, {}),
                                      reference=e.maps, **opt)
                res.update({"max-sensitivity": mx, "avg-sensitivity": avg})
            else:
                fn_map = sparseness if metric == "sparseness" else complexity
                res[metric] = QualityResult(metric, fn_map(e.maps), _targets(e))
        out[name] = {m: res[m] for m in wanted}
    return out


#: the metrics that perturb the input with a baseline: (function, takes a seed)
_PERTURBATION_METRICS: dict[str, tuple[Callable[..., QualityResult], bool]] = {
    "faithfulness-correlation": (faithfulness_correlation, True),
    "monotonicity": (monotonicity, False),
    "monotonicity-correlation": (monotonicity_correlation, False),
    "region-perturbation": (region_perturbation, True),
}


def _targets(e: Any) -> np.ndarray | None:
    return None if e.targets is None else e.targets.detach().cpu().numpy().astype(np.int64)


def _metric_list(metrics: Sequence[str] | str) -> list[str]:
    if isinstance(metrics, str):
        metrics = [m for m in metrics.split(",") if m.strip()]
    names = [str(m).strip().lower().replace("_", "-") for m in metrics]
    if names == ["all"]:
        return list(QUALITY_METRICS)
    if not names:
        raise InputError(f"no quality metric given; choose from {', '.join(QUALITY_METRICS)} (or 'all')")
    for m in names:
        if m not in QUALITY_METRICS:
            raise InputError(f"unknown quality metric {m!r}; choose from {', '.join(QUALITY_METRICS)} (or 'all')")
    return list(dict.fromkeys(names))
