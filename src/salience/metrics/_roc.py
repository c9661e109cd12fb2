"""ROC helpers of the fixation metrics: the AUC integrals and the threshold sets of the MIT and
Tuebingen conventions (private to :mod:`salience.metrics`; the public metrics are in :mod:`.fixation`).

Every count comes from one counting pass over the map (:mod:`._fast`), never a sort of the whole map.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._fast import count_levels, jitter_counts_below, jitter_counts_below_fused, split_counts

# ``p`` below is a prepared map and ``fix`` a fixation set of :mod:`.fixation` (its private classes, so typed
# ``Any`` here): ``p.flat``, ``p.minmax``, ``p.quant``; ``fix.flat``, ``fix.unique``.

__all__ = ["count_below", "mit_judd_auc", "exact_auc", "exact_auc_all", "judd_roc_tuebingen", "octave_range",
           "split_aucs", "noise_range"]

_RANGES: dict[int, tuple[np.ndarray, tuple[float, float]]] = {}


def noise_range(add: np.ndarray) -> tuple[float, float]:
    """``(min, max)`` of a jitter array, cached for the arrays of :func:`_noise` (kept alive by the key)."""
    hit = _RANGES.get(id(add))
    if hit is not None and hit[0] is add:
        return hit[1]
    r = (float(add.min()), float(add.max()))
    if not add.flags.writeable:  # a cached (read-only) jitter array
        if len(_RANGES) >= 4:
            _RANGES.clear()
        _RANGES[id(add)] = (add, r)
    return r






def count_below(cnt: np.ndarray) -> np.ndarray:
    """From :func:`count_levels`' histogram: ``#{v < thr[k]}`` for every k."""
    return np.cumsum(cnt[:-1])


def mit_judd_auc(p: Any, pix: np.ndarray, add: np.ndarray | None, lo: float, hi: float) -> float:
    """MIT AUC_Judd on ``((S (+ add)) - lo) / (hi - lo)``: thresholds are the sorted fixated values,
    ``#{S >= t}`` comes from one counting pass (the same comparisons as sorting the whole map)."""
    v = p.flat[pix] if add is None else p.flat[pix] + add[pix]
    v = v - lo
    v /= hi - lo
    thr = np.sort(v)  # ascending
    n_fix = thr.size
    n_pix = p.flat.size
    cnt, _ = count_levels(p.flat, thr, add=add, lo=lo, span=hi - lo, normalise=True)
    above = (n_pix - count_below(cnt))[::-1]  # for descending thresholds
    i = np.arange(1, n_fix + 1)
    tp = np.concatenate([[0.0], i / n_fix, [1.0]])
    fp = np.concatenate([[0.0], (above - i) / (n_pix - n_fix), [1.0]])
    return float(np.trapezoid(tp, fp))


def exact_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Area under the full ROC of ``pos`` against ``neg`` (all thresholds; a tie counts one half)."""
    sn = np.sort(neg)
    less = np.searchsorted(sn, pos, side="left")  # #neg < p
    eq = np.searchsorted(sn, pos, side="right") - less  # #neg == p
    score = less.sum() + 0.5 * eq.sum()
    return float(score / (pos.size * neg.size))


def exact_auc_all(pos: np.ndarray, flat: np.ndarray, quant: Any = None) -> float:
    """:func:`exact_auc` against every pixel of ``flat``, by one counting pass instead of a sort (or from
    the level histogram ``quant`` of a quantised map: the same integer counts)."""
    if quant is not None:
        _, lut, hist = quant
        present = hist > 0
        levels = lut[present]  # ascending, distinct
        cum = np.concatenate([[0], np.cumsum(hist[present])])
        left = np.searchsorted(levels, pos, side="left")
        less = cum[left]
        eq = cum[np.searchsorted(levels, pos, side="right")] - less
        score = less.sum() + 0.5 * eq.sum()
        return float(score / (pos.size * flat.size))
    u, inv = np.unique(pos, return_inverse=True)
    cnt, eq = count_levels(flat, u, want_eq=True)
    less = count_below(cnt)[inv]
    score = less.sum() + 0.5 * eq[inv].sum()
    return float(score / (pos.size * flat.size))


def judd_roc_tuebingen(p: Any, fix: Any, add: np.ndarray | None) -> float:
    """pysaliency ``general_roc(pos, neg, judd=1)`` with pos = the fixations, neg = the unfixated pixels of
    ``S (+ add)``: thresholds at the positives only; ``#{neg >= t}`` = all pixels minus fixated ones."""
    flat = p.flat
    vals = flat if add is None else None
    pos = (vals[fix.flat] if add is None else flat[fix.flat] + add[fix.flat])
    fixed = (vals[fix.unique] if add is None else flat[fix.unique] + add[fix.unique])
    sp = np.sort(pos)
    thr = sp[::-1]
    n_neg = flat.size - fixed.size
    below = None
    if add is not None and p._quant is False:  # the level histogram and the counts from one pass
        fused = jitter_counts_below_fused(flat, add, *p.minmax, noise_range(add), fix.flat, sp)
        if fused is not None:
            below, p._quant = fused
    if below is None and add is not None and p.quant is not None:  # None when the jitter could reorder levels
        below = jitter_counts_below(flat, add, p.quant, noise_range(add), fix.flat, sp)
    if below is None:
        cnt, _ = count_levels(flat, sp, add=add)
        below = count_below(cnt)
    all_ge = flat.size - below
    fix_ge = fixed.size - np.searchsorted(np.sort(fixed), sp, side="left")
    tp = pos.size - np.searchsorted(sp, thr, side="left")
    fp = (all_ge - fix_ge)[::-1]
    hit = np.concatenate([[0.0, 0.0], tp / pos.size, [1.0]])
    far = np.concatenate([[0.0, 0.0], fp / n_neg, [1.0]])
    return float(np.trapezoid(hit, far))


def tfloor(x: float, ct: float) -> float:
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


def teq(u: float, v: float, ct: float) -> bool:
    tu, tv = abs(u), abs(v)
    return abs(u - v) < (tu if tu > tv else tv) * ct


def octave_range(step: float, limit: float) -> np.ndarray:
    """The elements of Octave's ``0:step:limit`` (``k*step``, the last one clipped to ``limit``)."""
    ct = 3.0 * np.finfo(float).eps
    if limit < 0:
        return np.empty(0)
    n = int(tfloor((limit + step) / step, ct))
    n = max(n, 0)
    if not teq((n - 1) * step, limit, ct):
        if teq((n - 2) * step, limit, ct):
            n -= 1
        elif teq(n * step, limit, ct):
            n += 1
    if n <= 0:
        return np.empty(0)
    out = np.arange(n, dtype=np.float64) * step
    if n > 1:
        last = (n - 1) * step
        out[-1] = limit if last >= limit else last
    return out


def split_aucs(sth: np.ndarray, randfix: np.ndarray, step: float) -> float:
    """Mean over splits of the MIT step-threshold AUC (AUC_Borji / AUC_shuffled inner loop).

    ``sth`` (n_fix,) saliency at fixations; ``randfix`` (n_rand, n_splits) at sampled locations.
    """
    n_fix = sth.size
    n_rand, n_splits = randfix.shape
    tops = np.maximum(sth.max(), randfix.max(axis=0))
    uniq, inv = np.unique(tops, return_inverse=True)
    ranges = [octave_range(step, float(t))[::-1] for t in uniq]  # descending thresholds
    k = max((r.size for r in ranges), default=0)
    thr = np.full((uniq.size, k), np.inf)
    for a, r in enumerate(ranges):
        if r.size:
            thr[a, k - r.size :] = r
    thr_s = thr[inv]  # (n_splits, k), +inf padding first gives extra (0, 0) points
    tp = split_counts(np.repeat(sth[:, None], uniq.size, axis=1), thr)[inv] / n_fix  # exact integer counts
    fp = split_counts(randfix, thr_s) / n_rand
    zeros = np.zeros((n_splits, 1))
    ones = np.ones((n_splits, 1))
    tp = np.hstack([zeros, tp, ones])
    fp = np.hstack([zeros, fp, ones])
    aucs = np.sum(np.diff(fp, axis=1) * (tp[:, 1:] + tp[:, :-1]) / 2.0, axis=1)
    return float(aucs.mean())
