"""Salient-object metrics: how well a map (or a mask) matches a ground-truth object mask.

The standard measures of the salient-object-detection literature as pure functions of one prediction and
one ground-truth mask (numpy / scipy only), and :func:`object_scores` for a data set.

Inputs and their conventions
----------------------------
``pred``
    A 2-D map ``(H, W)``: ``uint8`` (0..255, divided by 255 first), ``bool``, or any real dtype.  It is
    min-max normalised to ``[0, 1]`` (MATLAB's ``mapminmax(im2double(.))`` of the reference code); a
    constant map is kept as it is (after the division by 255 for ``uint8``) and must then lie in ``[0, 1]``.
``gt``
    The ground-truth mask, same shape: ``bool`` as it is; ``uint8`` / integers ``> 128`` is foreground
    (an integer mask holding only 0 and 1 is read as 0/1); floats are read as an 8-bit mask scaled to
    ``[0, 1]``, i.e. ``> 128 / 255`` is foreground.

These are the conventions of PySODMetrics (``py_sod_metrics``; Pang et al., the reference Python code of the
field, itself a port of the authors' MATLAB code), and every function here equals its counterpart there to
1e-6 on identical inputs (``tests/test_metrics_objects.py``).  The threshold sweeps (max / mean F-measure,
E-measure, IoU, Dice) binarise ``floor(255 * pred) >= t`` for the 256 levels ``t = 0..255``; the adaptive
threshold is ``min(2 * mean(pred), 1)`` (Achanta et al., CVPR 2009) with ``pred >= threshold``.

Deliberate differences from PySODMetrics (documented in ``docs/applications.md``):

* S-measure: when the ground truth's centroid falls on the last row or column, one quadrant of the region
  term is empty; PySODMetrics returns NaN there, here the empty quadrant has weight 0 and contributes 0.
* Curves are returned in increasing threshold order (``curve[t]`` is the score at threshold ``t``);
  PySODMetrics stores them from 255 down to 0.  Max and mean do not depend on the order.
* An integer mask holding only the values 0 and 1 is read as a 0/1 mask; PySODMetrics would read it as an
  8-bit image and find no foreground (``> 128``).
* Where a ratio is 0 / 0 (e.g. IoU of an empty prediction of an empty mask) the score is 0, as in
  PySODMetrics; some other libraries give 1 there.

>>> import numpy as np
>>> from salience import metrics
>>> gt = np.zeros((40, 40), bool); gt[10:30, 10:30] = True
>>> pred = gt.astype(float) * 0.8 + 0.1
>>> float(metrics.mae(pred, gt)), round(metrics.s_measure(pred, gt), 4)
(0.0, 1.0)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ..io import as_2d_array

__all__ = [
    "SOD_METRICS",
    "prepare_object_inputs",
    "adaptive_threshold",
    "mae",
    "f_measure",
    "f_measure_curve",
    "weighted_f_measure",
    "s_measure",
    "e_measure",
    "e_measure_curve",
    "iou",
    "dice",
    "confusion_curve",
    "object_scores",
    "ObjectScores",
    "ObjectScoreAccumulator",
]

#: Names of the per-data-set scores :func:`object_scores` reports, in table order.
SOD_METRICS: tuple[str, ...] = (
    "mae", "max_f", "mean_f", "adp_f", "wf", "sm", "max_e", "mean_e", "adp_e",
    "max_iou", "mean_iou", "adp_iou", "max_dice", "mean_dice", "adp_dice",
)

#: MATLAB's ``eps`` (2**-52); the reference code adds it to denominators.
EPS = float(np.spacing(1))

_MODES = ("adaptive", "max", "mean")


# ---------------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------------


def prepare_object_inputs(pred: Any, gt: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate and normalise a prediction and its ground-truth mask (see the module docstring).

    Returns
    -------
    (pred, gt):
        float64 ``(H, W)`` in ``[0, 1]`` and bool ``(H, W)``.

    Examples
    --------
    >>> import numpy as np
    >>> p, g = prepare_object_inputs(np.array([[0, 128, 255]], np.uint8), np.array([[0, 129, 255]], np.uint8))
    >>> p.tolist(), g.tolist()
    ([[0.0, 0.5019607843137255, 1.0]], [[False, True, True]])
    """
    p = as_2d_array(pred, "prediction")
    g = as_2d_array(gt, "ground-truth mask")
    if p.shape != g.shape:
        raise InputError(
            f"the prediction is {p.shape[1]} x {p.shape[0]} (W x H) but the mask is {g.shape[1]} x {g.shape[0]}; "
            "resize the prediction to the mask first (salience evaluate does this, bilinear)"
        )
    if g.dtype == bool:
        gb = g
    elif np.issubdtype(g.dtype, np.integer):
        # a 0/1 integer mask is a mask, not an almost-black 8-bit image (PySODMetrics would read it as empty)
        gb = g > 0 if int(g.max()) <= 1 and int(g.min()) >= 0 else g > 128
    else:
        if not np.all(np.isfinite(g)):
            raise InputError("the ground-truth mask contains NaN or infinite values")
        gb = g * 255.0 > 128.0
    if p.dtype == np.uint8:
        pf = p.astype(np.float64) / 255.0
    else:
        pf = p.astype(np.float64)
        if not np.all(np.isfinite(pf)):
            raise InputError("the prediction contains NaN or infinite values; replace them (numpy.nan_to_num) first")
    lo, hi = float(pf.min()), float(pf.max())
    if hi > lo:
        pf = (pf - lo) / (hi - lo)
    elif not 0.0 <= lo <= 1.0:
        raise InputError(
            f"the prediction is constant ({lo}) outside [0, 1], so it cannot be normalised; give a map in [0, 1]"
        )
    return pf, gb


def adaptive_threshold(pred: np.ndarray) -> float:
    """``min(2 * mean(pred), 1)``: the adaptive threshold of Achanta et al., "Frequency-tuned salient
    region detection", CVPR 2009, for a map in ``[0, 1]``.

    >>> adaptive_threshold(np.array([[0.0, 0.2], [0.2, 0.0]]))
    0.2
    """
    return float(min(2.0 * float(np.mean(pred)), 1.0))


def _quantised(pred: np.ndarray) -> np.ndarray:
    """The 8-bit levels the threshold sweep uses: ``floor(255 * pred)`` (pred in [0, 1])."""
    return np.floor(pred * 255.0).astype(np.int64)


def confusion_curve(pred: Any, gt: Any) -> dict[str, np.ndarray]:
    """True/false positives and negatives at the 256 thresholds ``floor(255 * pred) >= t``, ``t = 0..255``.

    Returns
    -------
    dict
        ``tp``, ``fp``, ``tn``, ``fn``: int64 ``(256,)``, index ``t`` = threshold ``t``.

    >>> c = confusion_curve(np.array([[0.0, 0.5, 1.0]]), np.array([[False, True, True]]))
    >>> c["tp"][[0, 128, 255]].tolist(), c["fp"][[0, 1]].tolist()
    ([2, 1, 1], [1, 0])
    """
    p, g = prepare_object_inputs(pred, gt)
    return _confusion(p, g)


def _confusion(p: np.ndarray, g: np.ndarray) -> dict[str, np.ndarray]:
    q = _quantised(p)
    # counts of each level inside / outside the mask, then "at least t" = reversed cumulative sum
    fg = np.bincount(q[g], minlength=256)[:256]
    bg = np.bincount(q[~g], minlength=256)[:256]
    tp = np.cumsum(fg[::-1])[::-1]
    fp = np.cumsum(bg[::-1])[::-1]
    n_fg = int(g.sum())
    n_bg = g.size - n_fg
    return {"tp": tp, "fp": fp, "fn": n_fg - tp, "tn": n_bg - fp}


def _counts_at(p: np.ndarray, g: np.ndarray, threshold: float, strict: bool = False) -> dict[str, int]:
    b = p > threshold if strict else p >= threshold
    tp = int(np.count_nonzero(b & g))
    fp = int(np.count_nonzero(b & ~g))
    n_fg = int(g.sum())
    return {"tp": tp, "fp": fp, "fn": n_fg - tp, "tn": g.size - n_fg - fp}


def _ratio(num: Any, den: Any) -> np.ndarray:
    """num / den, 0 where den == 0."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _mode(mode: Any) -> str | float:
    if isinstance(mode, str):
        m = mode.strip().lower()
        if m in _MODES or m == "binary":
            return m
        raise InputError(f"mode must be one of adaptive, max, mean, binary or a threshold in [0, 1], got {mode!r}")
    if isinstance(mode, bool) or not isinstance(mode, (int, float)) or not 0.0 <= float(mode) <= 1.0:
        raise InputError(f"a fixed threshold must be a number in [0, 1], got {mode!r}")
    return float(mode)


# ---------------------------------------------------------------------------------------------------
# MAE, F-measure, IoU, Dice
# ---------------------------------------------------------------------------------------------------

def mae(pred: Any, gt: Any) -> float:
    """Mean absolute error between the normalised map and the binary mask, in ``[0, 1]`` (lower is better).

    F. Perazzi, P. Krähenbühl, Y. Pritch, A. Hornung. Saliency filters: contrast based filtering for salient
    region detection. CVPR 2012.

    >>> gt = np.array([[True, False]]); float(mae(np.array([[1.0, 0.0]]), gt))
    0.0
    """
    p, g = prepare_object_inputs(pred, gt)
    return float(np.mean(np.abs(p - g)))


def _f_from_counts(tp, fp, fn, beta2: float) -> np.ndarray:
    precision = _ratio(tp, np.asarray(tp) + fp)
    recall = _ratio(tp, np.asarray(tp) + fn)
    return _ratio((1.0 + beta2) * precision * recall, beta2 * precision + recall)


def _check_beta2(beta2: Any) -> float:
    if isinstance(beta2, bool) or not isinstance(beta2, (int, float)) or not float(beta2) > 0:
        raise InputError(f"beta2 (beta squared) must be a number > 0, got {beta2!r}")
    return float(beta2)


def f_measure_curve(pred: Any, gt: Any, *, beta2: float = 0.3) -> np.ndarray:
    """F-measure at each of the 256 thresholds ``floor(255 * pred) >= t`` (float64 ``(256,)``, index = t).

    ``F = (1 + beta2) P R / (beta2 P + R)`` with ``beta2 = 0.3`` (Achanta et al., CVPR 2009), 0 where P and
    R are both 0.

    >>> gt = np.zeros((4, 4), bool); gt[:2] = True
    >>> f_measure_curve(gt.astype(float), gt)[[0, 1, 255]].round(4).tolist()
    [0.5652, 1.0, 1.0]
    """
    b2 = _check_beta2(beta2)
    p, g = prepare_object_inputs(pred, gt)
    c = _confusion(p, g)
    return _f_from_counts(c["tp"], c["fp"], c["fn"], b2)


def f_measure(pred: Any, gt: Any, mode: str | float = "adaptive", *, beta2: float = 0.3) -> float:
    """F-measure of a map against a mask, in ``[0, 1]`` (higher is better).

    Parameters
    ----------
    pred, gt:
        See the module docstring.
    mode:
        ``"adaptive"`` (default): binarise at ``min(2 mean, 1)``; ``"max"`` / ``"mean"``: the maximum / mean
        over the 256-threshold curve (:func:`f_measure_curve`); ``"binary"``: ``pred > 0.5``; a number in
        ``[0, 1]``: ``pred >= threshold``.
    beta2:
        beta squared, 0.3 (weighs precision more than recall; Achanta et al., "Frequency-tuned salient
        region detection", CVPR 2009).

    Examples
    --------
    >>> gt = np.zeros((4, 4), bool); gt[:2] = True
    >>> f_measure(gt * 0.9, gt), f_measure(gt * 0.9, gt, "max")
    (1.0, 1.0)
    """
    m = _mode(mode)
    if m in ("max", "mean"):
        curve = f_measure_curve(pred, gt, beta2=beta2)
        return float(curve.max() if m == "max" else curve.mean())
    b2 = _check_beta2(beta2)
    p, g = prepare_object_inputs(pred, gt)
    c = _point_counts(p, g, m)
    return float(_f_from_counts(c["tp"], c["fp"], c["fn"], b2))


def _point_counts(p: np.ndarray, g: np.ndarray, m: str | float) -> dict[str, int]:
    if m == "adaptive":
        return _counts_at(p, g, adaptive_threshold(p))
    if m == "binary":
        return _counts_at(p, g, 0.5, strict=True)
    return _counts_at(p, g, float(m))


def _overlap(kind: str, pred: Any, gt: Any, mode: str | float) -> float:
    m = _mode(mode)
    p, g = prepare_object_inputs(pred, gt)
    c = _confusion(p, g) if m in ("max", "mean") else _point_counts(p, g, m)
    tp = np.asarray(c["tp"], dtype=np.float64)
    if kind == "iou":
        v = _ratio(tp, tp + c["fp"] + c["fn"])
    else:
        v = _ratio(2.0 * tp, 2.0 * tp + c["fp"] + c["fn"])
    if m == "max":
        return float(v.max())
    if m == "mean":
        return float(v.mean())
    return float(v)


def iou(pred: Any, gt: Any, mode: str | float = "adaptive") -> float:
    """Intersection over union (Jaccard index) ``TP / (TP + FP + FN)`` of the binarised map and the mask.

    ``mode`` as in :func:`f_measure` (``"adaptive"``, ``"max"``, ``"mean"``, ``"binary"`` or a threshold).
    A boolean ``pred`` is a mask: pass ``mode="binary"`` (or any threshold in ``(0, 1]``) to score it as it is.

    P. Jaccard. The distribution of the flora in the alpine zone. New Phytologist 11(2), 1912.

    >>> gt = np.zeros((4, 4), bool); gt[:2] = True; pr = np.zeros((4, 4), bool); pr[:1] = True
    >>> iou(pr, gt, "binary"), dice(pr, gt, "binary")
    (0.5, 0.6666666666666666)
    """
    return _overlap("iou", pred, gt, mode)


def dice(pred: Any, gt: Any, mode: str | float = "adaptive") -> float:
    """Dice coefficient ``2 TP / (2 TP + FP + FN)`` (F1 score) of the binarised map and the mask.

    ``mode`` as in :func:`iou`.  L. R. Dice. Measures of the amount of ecologic association between
    species. Ecology 26(3), 1945.

    >>> gt = np.zeros((4, 4), bool); gt[:2] = True
    >>> dice(gt, gt, "binary")
    1.0
    """
    return _overlap("dice", pred, gt, mode)


# ---------------------------------------------------------------------------------------------------
# weighted F-measure (Margolin, Zelnik-Manor, Tal, CVPR 2014)
# ---------------------------------------------------------------------------------------------------

def _fspecial_gaussian(size: int, sigma: float) -> np.ndarray:
    """MATLAB's ``fspecial('gaussian', size, sigma)``: a normalised Gaussian, tiny values zeroed."""
    r = (size - 1) / 2.0
    ax = np.arange(size, dtype=np.float64) - r
    h = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2.0 * sigma * sigma))
    h[h < np.finfo(np.float64).eps * h.max()] = 0.0
    return h / h.sum()


def weighted_f_measure(pred: Any, gt: Any, *, beta2: float = 1.0) -> float:
    """Weighted F-measure, in ``[0, 1]`` (higher is better).

    R. Margolin, L. Zelnik-Manor, A. Tal. How to evaluate foreground maps? CVPR 2014.  Errors are weighted
    for *dependency* (an error next to a correct-error neighbourhood inside the object counts as the
    Gaussian-smoothed error, ``fspecial('gaussian', 7, 5)``; a background pixel takes the error of its
    nearest object pixel first) and *importance* (background errors grow with the distance ``d`` from the
    object: ``2 - exp(log(0.5) / 5 * d)``); then ``F = (1 + beta2) R P / (R + beta2 P)`` with weighted
    recall ``R = 1 - mean(Ew on the object)`` and precision ``P = TPw / (TPw + FPw)``.  ``beta2 = 1`` as in
    the paper.  An empty mask scores 0.

    >>> gt = np.zeros((20, 20), bool); gt[5:15, 5:15] = True
    >>> round(weighted_f_measure(gt.astype(float), gt), 6)
    1.0
    """
    from scipy import ndimage

    b2 = _check_beta2(beta2)
    p, g = prepare_object_inputs(pred, gt)
    if not g.any():
        return 0.0
    # distance of every background pixel to the nearest object pixel, and that pixel's index
    dist, (iy, ix) = ndimage.distance_transform_edt(~g, return_indices=True)
    err = np.abs(p - g)
    et = err[iy, ix]  # on the object the nearest object pixel is the pixel itself
    ea = ndimage.correlate(et, _fspecial_gaussian(7, 5.0), mode="constant", cval=0.0)
    min_e = np.where(g & (ea < err), ea, err)
    weight = np.where(g, 1.0, 2.0 - np.exp(np.log(0.5) / 5.0 * dist))
    ew = min_e * weight
    on = ew[g]
    tpw = float(g.sum()) - float(on.sum())
    fpw = float(ew[~g].sum())
    recall = 1.0 - float(on.mean())
    precision = tpw / (tpw + fpw + EPS)
    return float((1.0 + b2) * recall * precision / (recall + b2 * precision + EPS))


# ---------------------------------------------------------------------------------------------------
# S-measure (Fan, Cheng, Liu, Li, Borji, ICCV 2017)
# ---------------------------------------------------------------------------------------------------

def _object_similarity(x: np.ndarray) -> float:
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if x.size > 1 else 0.0
    return 2.0 * mean / (mean * mean + 1.0 + std + EPS)


def _ssim(p: np.ndarray, g: np.ndarray) -> float:
    """The S-measure's region similarity (SSIM of one block, as Fan et al.'s code computes it)."""
    n = p.size
    gf = g.astype(np.float64)
    mx, my = float(p.mean()), float(gf.mean())
    dx, dy = p - mx, gf - my
    sx = float((dx * dx).sum()) / (n - 1 + EPS)
    sy = float((dy * dy).sum()) / (n - 1 + EPS)
    sxy = float((dx * dy).sum()) / (n - 1 + EPS)
    a = 4.0 * mx * my * sxy
    b = (mx * mx + my * my) * (sx + sy)
    if a != 0:
        return a / (b + EPS)
    return 1.0 if b == 0 else 0.0


def s_measure(pred: Any, gt: Any, *, alpha: float = 0.5) -> float:
    """Structure measure, in ``[0, 1]`` (higher is better).

    D.-P. Fan, M.-M. Cheng, Y. Liu, T. Li, A. Borji. Structure-measure: a new way to evaluate foreground
    maps. ICCV 2017.  ``S = alpha * S_object + (1 - alpha) * S_region``: the object term compares the map's
    mean and spread on the object and on the background with the ideal; the region term splits both images
    at the object's centroid into four blocks and averages their SSIM weighted by area.  An empty mask
    scores ``1 - mean(pred)``, a full one ``mean(pred)``.

    >>> gt = np.zeros((20, 20), bool); gt[5:15, 5:15] = True
    >>> round(s_measure(gt, gt), 6), round(s_measure(~gt, gt), 6)
    (1.0, 0.0)
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= float(alpha) <= 1.0:
        raise InputError(f"alpha must be a number in [0, 1], got {alpha!r}")
    p, g = prepare_object_inputs(pred, gt)
    share = float(g.mean())
    if share == 0.0:
        return float(1.0 - p.mean())
    if share == 1.0:
        return float(p.mean())
    s_obj = share * _object_similarity(p[g]) + (1.0 - share) * _object_similarity(1.0 - p[~g])
    # centroid of the object (row, column), rounded half to even, then the 1-based split of the MATLAB code
    rows, cols = np.nonzero(g)
    cy = int(np.round(rows.mean())) + 1
    cx = int(np.round(cols.mean())) + 1
    h, w = g.shape
    s_reg = 0.0
    for ys, xs in ((slice(0, cy), slice(0, cx)), (slice(0, cy), slice(cx, w)),
                   (slice(cy, h), slice(0, cx)), (slice(cy, h), slice(cx, w))):
        block = p[ys, xs]
        if block.size:
            s_reg += block.size / (h * w) * _ssim(block, g[ys, xs])
    return float(max(0.0, alpha * s_obj + (1.0 - alpha) * s_reg))


# ---------------------------------------------------------------------------------------------------
# E-measure (Fan, Gong, Cao, Ren, Cheng, Borji, IJCAI 2018)
# ---------------------------------------------------------------------------------------------------

def _e_from_counts(tp, fp, n_fg: int, size: int) -> np.ndarray:
    """Enhanced alignment of a binary map with the mask from its counts (vectorised over thresholds).

    Every pixel of the binary map falls in one of four classes (map fg/bg x mask fg/bg); within a class
    the bias-corrected values ``map - mean(map)`` and ``mask - mean(mask)`` are constant, so the sum of the
    enhanced alignment matrix ``((2 a b / (a^2 + b^2) + 1)^2 / 4)`` is a weighted sum of four terms.
    """
    tp = np.asarray(tp, dtype=np.float64)
    fp = np.asarray(fp, dtype=np.float64)
    pred_fg = tp + fp
    if n_fg == 0:
        total = size - pred_fg
    elif n_fg == size:
        total = pred_fg
    else:
        fn = n_fg - tp
        tn = size - pred_fg - fn
        mp = pred_fg / size
        mg = n_fg / size
        total = np.zeros_like(tp)
        for count, a, b in ((tp, 1.0 - mp, 1.0 - mg), (fp, 1.0 - mp, -mg),
                            (fn, -mp, 1.0 - mg), (tn, -mp, -mg)):
            align = 2.0 * a * b / (a * a + b * b + EPS)
            total = total + count * (align + 1.0) ** 2 / 4.0
    return np.asarray(total / (size - 1 + EPS), dtype=np.float64)


def e_measure_curve(pred: Any, gt: Any) -> np.ndarray:
    """E-measure at each of the 256 thresholds ``floor(255 * pred) >= t`` (float64 ``(256,)``, index = t).

    >>> gt = np.zeros((8, 8), bool); gt[:4] = True
    >>> round(float(e_measure_curve(gt * 1.0, gt)[200]), 4)
    1.0159
    """
    p, g = prepare_object_inputs(pred, gt)
    c = _confusion(p, g)
    return _e_from_counts(c["tp"], c["fp"], int(g.sum()), g.size)


def e_measure(pred: Any, gt: Any, mode: str | float = "adaptive") -> float:
    """Enhanced-alignment measure, about ``[0, 1]`` (higher is better; the ``N - 1`` of the reference code's
    denominator lets a perfect map score slightly above 1 on small images).

    D.-P. Fan, C. Gong, Y. Cao, B. Ren, M.-M. Cheng, A. Borji. Enhanced-alignment measure for binary
    foreground map evaluation. IJCAI 2018.  ``mode`` as in :func:`f_measure`.

    >>> gt = np.zeros((8, 8), bool); gt[:4] = True
    >>> round(e_measure(gt * 1.0, gt), 4), round(e_measure(~gt * 1.0, gt), 4)
    (1.0159, 0.0)
    """
    m = _mode(mode)
    if m in ("max", "mean"):
        curve = e_measure_curve(pred, gt)
        return float(curve.max() if m == "max" else curve.mean())
    p, g = prepare_object_inputs(pred, gt)
    c = _point_counts(p, g, m)
    return float(_e_from_counts(c["tp"], c["fp"], int(g.sum()), g.size))


# ---------------------------------------------------------------------------------------------------
# a data set
# ---------------------------------------------------------------------------------------------------

@dataclass
class ObjectScores:
    """The scores of a data set (see :func:`object_scores`).

    Attributes
    ----------
    scores: name (:data:`SOD_METRICS`) -> value over the data set.
    per_image: one dict per image with the same names (max / mean of that image's own curve).
    curves: ``"f"``, ``"e"``, ``"iou"``, ``"dice"`` -> float64 ``(256,)`` mean curve over the images.

    Examples
    --------
    >>> import numpy as np
    >>> from salience.metrics import object_scores
    >>> gt = np.zeros((8, 8), bool); gt[2:6, 2:6] = True
    >>> pred = gt * 0.8; pred[0, 0] = 0.4   # one false alarm
    >>> r = object_scores([(pred, gt)])
    >>> round(r.scores["mae"], 4), len(r.per_image), r.curves["f"].shape
    (0.0078, 1, (256,))
    """

    scores: dict[str, float]
    per_image: list[dict[str, float]]
    curves: dict[str, np.ndarray]


def _image_scores(pred: Any, gt: Any, beta2: float) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    p, g = prepare_object_inputs(pred, gt)
    c = _confusion(p, g)
    a = _counts_at(p, g, adaptive_threshold(p))
    n_fg = int(g.sum())
    tp = c["tp"].astype(np.float64)
    curves = {
        "f": _f_from_counts(c["tp"], c["fp"], c["fn"], beta2),
        "e": _e_from_counts(c["tp"], c["fp"], n_fg, g.size),
        "iou": _ratio(tp, tp + c["fp"] + c["fn"]),
        "dice": _ratio(2 * tp, 2 * tp + c["fp"] + c["fn"]),
    }
    atp = float(a["tp"])
    row = {
        "mae": float(np.mean(np.abs(p - g))),
        "adp_f": float(_f_from_counts(a["tp"], a["fp"], a["fn"], beta2)),
        "wf": weighted_f_measure(p, g),
        "sm": s_measure(p, g),
        "adp_e": float(_e_from_counts(a["tp"], a["fp"], n_fg, g.size)),
        "adp_iou": float(_ratio(atp, atp + a["fp"] + a["fn"])),
        "adp_dice": float(_ratio(2 * atp, 2 * atp + a["fp"] + a["fn"])),
    }
    for k, name in (("f", "f"), ("e", "e"), ("iou", "iou"), ("dice", "dice")):
        row[f"max_{name}"] = float(curves[k].max())
        row[f"mean_{name}"] = float(curves[k].mean())
    return {k: row[k] for k in SOD_METRICS}, curves


class ObjectScoreAccumulator:
    """Adds one ``(pred, gt)`` pair at a time (keeping only its scores and curves, not the maps) and gives
    the data set's :class:`ObjectScores`; :func:`object_scores` in streaming form.

    >>> acc = ObjectScoreAccumulator()
    >>> gt = np.zeros((10, 10), bool); gt[2:6, 2:6] = True
    >>> row = acc.add(gt * 1.0, gt); row = acc.add(np.zeros((10, 10)), gt)
    >>> acc.result().scores["max_f"]
    0.5
    """

    def __init__(self, *, beta2: float = 0.3) -> None:
        self.beta2 = _check_beta2(beta2)
        self.rows: list[dict[str, float]] = []
        self._sums: dict[str, np.ndarray] = {}

    def add(self, pred: Any, gt: Any) -> dict[str, float]:
        """Score one pair; returns its per-image row."""
        row, curves = self.score(pred, gt)
        return self.add_scored(row, curves)

    def score(self, pred: Any, gt: Any) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """One pair's per-image row and threshold curves (float64 ``(256,)`` each), without adding them:
        what :meth:`add_scored` takes (e.g. from worker threads, or from the journal of a resumed run)."""
        return _image_scores(pred, gt, self.beta2)

    def add_scored(self, row: dict[str, float], curves: dict[str, np.ndarray]) -> dict[str, float]:
        """Add a pair scored by :meth:`score`.  Pairs added in the same order give the same sums, and so
        the same data-set scores, as :meth:`add` on the maps."""
        self.rows.append(row)
        for k, v in curves.items():
            v = np.asarray(v, dtype=np.float64)
            self._sums[k] = self._sums[k] + v if k in self._sums else v.copy()
        return row

    def __len__(self) -> int:
        return len(self.rows)

    def result(self) -> ObjectScores:
        if not self.rows:
            raise InputError("no (prediction, mask) pairs to score")
        n = len(self.rows)
        mean_curves = {k: v / n for k, v in self._sums.items()}
        scores = {k: float(np.mean([r[k] for r in self.rows])) for k in SOD_METRICS}
        for k in ("f", "e", "iou", "dice"):
            scores[f"max_{k}"] = float(mean_curves[k].max())
            scores[f"mean_{k}"] = float(mean_curves[k].mean())
        return ObjectScores(scores=scores, per_image=list(self.rows), curves=mean_curves)


def object_scores(pairs: Iterable[tuple[Any, Any]], *, beta2: float = 0.3) -> ObjectScores:
    """Every salient-object score of a data set of ``(pred, gt)`` pairs.

    Per-image scores are averaged over the images, except the max and mean of the threshold sweeps, which
    are taken on the *mean curve* over the images (one threshold for the whole data set), as the field's
    benchmarks and PySODMetrics report them.

    >>> gt = np.zeros((10, 10), bool); gt[2:6, 2:6] = True
    >>> r = object_scores([(gt * 1.0, gt), (np.zeros((10, 10)), gt)])
    >>> r.scores["mae"], r.scores["max_f"]
    (0.08, 0.5)
    """
    acc = ObjectScoreAccumulator(beta2=beta2)
    for pred, gt in pairs:
        acc.add(pred, gt)
    return acc.result()
