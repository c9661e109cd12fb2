"""Per-pixel kernels shared by the fixation metrics: one pass for the map statistics, one for the sums.

The metrics of :mod:`salience.metrics.fixation` need, per saliency map, a handful of whole-map quantities:
its minimum, maximum and sum; the centred sums of NSS and CC; the SIM intersection and the KL terms against a
precomputed ground-truth density; and, for the ROC areas, how many pixels lie at or above each of the (few
hundred) fixated values.  Computing each with its own numpy expression costs ~20 passes and as many 3.8 MB
temporaries for a 600 x 800 map.  Here they come from two fused passes (numba, when installed) or from the
equivalent numpy expressions (the fallback, and the reference the numba path is tested against).

Both backends evaluate the same per-pixel formulas in float64; they differ only in summation order (numba
sums in blocks of 1024 pixels, numpy pairwise), i.e. by round-off (~1e-15 relative).  Threshold counts are
integers and equal exactly.

Select the backend with :func:`use_backend` (a context manager) or the environment variable
``SALIENCE_METRICS_BACKEND=numpy``; :func:`backend` says which one is active.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

__all__ = ["HAVE_NUMBA", "backend", "use_backend", "map_stats", "count_levels", "fused_sums", "split_counts",
           "quantised_levels", "jitter_counts_below", "jitter_counts_below_fused", "nonzero_bytes"]

#: Whether numba is installed (kernels are compiled, or loaded from numba's cache, on first use).
HAVE_NUMBA = importlib.util.find_spec("numba") is not None

_STATE = {"backend": "numba" if HAVE_NUMBA and os.environ.get("SALIENCE_METRICS_BACKEND") != "numpy" else "numpy"}


def backend() -> str:
    """The active backend: ``"numba"`` or ``"numpy"``."""
    return _STATE["backend"]


@contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run the block with the given backend (``"numba"`` needs numba installed)."""
    if name not in ("numba", "numpy"):
        raise ValueError(f"backend must be 'numba' or 'numpy', got {name!r}")
    if name == "numba" and not HAVE_NUMBA:
        raise RuntimeError("the numba backend needs numba (pip install salience[fast])")
    old = _STATE["backend"]
    _STATE["backend"] = name
    try:
        yield
    finally:
        _STATE["backend"] = old


_BLOCK = 1024
_N_BUCKETS_PER_THRESHOLD = 4


# ---------------------------------------------------------------------------------------------------
# kernels (plain Python; compiled by numba on first use)
# ---------------------------------------------------------------------------------------------------


def _stats_py(s, add):  # pragma: no cover - compiled by numba
    """min and max of ``s + add`` without a temporary.  Finite input only."""
    alo = np.inf
    ahi = -np.inf
    for i in range(s.shape[0]):
        v = s[i] + add[i]
        alo = min(alo, v)
        ahi = max(ahi, v)
    return alo, ahi


def _tables_py(u, nb, per_thr):  # pragma: no cover - compiled by numba
    """Two-level bucket tables for the distinct ascending thresholds ``u``.

    Level 1: ``nb`` uniform buckets over ``[u[0], u[-1]]`` plus one below and one above.  Level 2: every
    level-1 bucket holding m >= 2 thresholds (a cluster, e.g. the jittered copies of one 8-bit level) gets
    ``per_thr * m`` uniform sub-buckets over its own span; the others get a single one.  Each sub-bucket
    stores the number of thresholds before it and its smallest threshold (+inf when empty).
    """
    n = u.shape[0]
    t0 = u[0]
    span = u[n - 1] - u[0]
    scale = nb / span if span > 0 else 0.0
    if not (scale < np.inf):
        scale = 0.0
    top = nb + 1.0
    c_of = np.empty(n, np.int64)
    per = np.zeros(nb + 2, np.int64)
    for k in range(n):
        x = (u[k] - t0) * scale + 1.0
        x = 0.0 if x < 0.0 else x
        x = top if x > top else x
        c_of[k] = int(x)
        per[c_of[k]] += 1
    start = np.zeros(nb + 2, np.int64)
    for c in range(1, nb + 2):
        start[c] = start[c - 1] + per[c - 1]
    sub_off = np.empty(nb + 2, np.int64)
    sub_t0 = np.zeros(nb + 2)
    sub_scale = np.zeros(nb + 2)
    sub_top = np.ones(nb + 2)
    total = 0
    for c in range(nb + 2):
        m = per[c]
        sub_off[c] = total
        if m >= 2:
            nb2 = per_thr * m
            w0 = u[start[c]]
            ws = u[start[c] + m - 1] - w0
            sc = nb2 / ws if ws > 0 else 0.0
            if not (sc < np.inf):
                sc = 0.0
            sub_t0[c] = w0
            sub_scale[c] = sc
            sub_top[c] = nb2 + 1.0
            total += nb2 + 2
        else:
            total += 2
    sub_start = np.empty(total, np.int64)
    sub_first = np.full(total, np.inf)
    for c in range(nb + 2):
        o = sub_off[c]
        size = int(sub_top[c]) + 1
        for d in range(size):
            sub_start[o + d] = start[c]
        for k in range(start[c], start[c] + per[c]):
            x = (u[k] - sub_t0[c]) * sub_scale[c] + 1.0
            x = 0.0 if x < 0.0 else x
            x = sub_top[c] if x > sub_top[c] else x
            d = int(x)
            if sub_first[o + d] == np.inf:
                sub_first[o + d] = u[k]
            for e in range(d + 1, size):
                sub_start[o + e] += 1
    return t0, scale, sub_off, sub_t0, sub_scale, sub_top, sub_start, sub_first


def _levels_py(s, add, use_add, lo, span, use_norm, up, t0, scale, nb, sub_off, sub_t0, sub_scale,  # pragma: no cover
               sub_top, sub_start, sub_first, want_eq, cnt, eq):
    """``cnt[j]`` += #values with exactly ``j`` of the distinct ascending thresholds ``u`` <= v;
    ``eq[j]`` += #values equal to ``u[j-1]`` (when ``want_eq``).  ``up`` is ``u`` padded with -inf and +inf.

    ``v = s[i] (+ add[i])``, then ``(v - lo) / span`` when ``use_norm``.  Two table look-ups (see
    :func:`_tables_py`) give ``j`` at once unless a sub-bucket holds several thresholds; two correcting
    scans then make ``up[j] <= v < up[j+1]`` hold exactly whatever the tables say (they almost never move), so
    the counts are those of exact float64 comparisons.
    """
    n = s.shape[0]
    top = nb + 1.0
    prev_v = np.nan
    prev_j = 0
    prev_eq = 0
    run = 0
    for i in range(n):
        v = s[i]
        if use_add:
            v = v + add[i]
        if use_norm:
            v = (v - lo) / span
        if v == prev_v:  # runs of equal values (smooth 8-bit maps): one look-up per run
            run += 1
            continue
        cnt[prev_j] += run
        if want_eq:
            eq[prev_j] += run * prev_eq
        x = (v - t0) * scale + 1.0
        x = 0.0 if x < 0.0 else x
        x = top if x > top else x
        c = int(x)
        x = (v - sub_t0[c]) * sub_scale[c] + 1.0
        x = 0.0 if x < 0.0 else x
        x = sub_top[c] if x > sub_top[c] else x
        d = sub_off[c] + int(x)
        j = sub_start[d] + np.int64(sub_first[d] <= v)
        while up[j + 1] <= v:  # up = [-inf, u..., +inf]: no bounds to test
            j += 1
        while up[j] > v:
            j -= 1
        prev_v = v
        prev_j = j
        prev_eq = np.int64(up[j] == v)
        run = 1
    cnt[prev_j] += run
    if want_eq:
        eq[prev_j] += run * prev_eq


def _levels1_py(s, add, use_add, lo, span, use_norm, up, t0, scale, nb, start1, first1, want_eq,  # pragma: no cover
                cnt, eq):
    """:func:`_levels_py` with the level-1 table only (no bucket holds two thresholds: ~2x fewer steps)."""
    n = s.shape[0]
    top = nb + 1.0
    prev_v = np.nan
    prev_j = 0
    prev_eq = 0
    run = 0
    for i in range(n):
        v = s[i]
        if use_add:
            v = v + add[i]
        if use_norm:
            v = (v - lo) / span
        if v == prev_v:  # runs of equal values (smooth 8-bit maps): one look-up per run
            run += 1
            continue
        cnt[prev_j] += run
        if want_eq:
            eq[prev_j] += run * prev_eq
        x = (v - t0) * scale + 1.0
        x = 0.0 if x < 0.0 else x
        x = top if x > top else x
        c = int(x)
        j = start1[c] + np.int64(first1[c] <= v)
        while up[j + 1] <= v:
            j += 1
        while up[j] > v:
            j -= 1
        prev_v = v
        prev_j = j
        prev_eq = np.int64(up[j] == v)
        run = 1
    cnt[prev_j] += run
    if want_eq:
        eq[prev_j] += run * prev_eq


def _sums_py(s, ms, g, mg, want_cc, s_off, s_d1, s_d2, g_off, g_d1, g_d2, want_sim,  # pragma: no cover
             k_off, k_d, kg_off, kg_d, k_eps, want_kl, kl_out):
    """Centred sums for NSS/CC, SIM's intersection and the KL ratio (written to ``kl_out``).

    With ``x = ((s - s_off)/s_d1)/s_d2``, ``y = ((g - g_off)/g_d1)/g_d2`` (the two SIM densities),
    ``xk = (s - k_off)/k_d``, ``yk = (g - kg_off)/kg_d`` (the two KL densities), returns
    ``(sum (s-ms)^2, sum (s-ms)(g-mg), sum (g-mg)^2, sum min(x, y))`` and writes
    ``|k_eps + yk / (xk + k_eps)|`` into ``kl_out`` (the caller takes its log, then :func:`_kl_dot_py`).
    Each quantity has a loop of its own, so its value does not depend on which others are requested.
    """
    n = s.shape[0]
    ss = 0.0
    for i in range(n):
        d = s[i] - ms
        ss += d * d
    sg = 0.0
    gg = 0.0
    if want_cc:
        for i in range(n):
            sg += (s[i] - ms) * (g[i] - mg)
        for i in range(n):
            e = g[i] - mg
            gg += e * e
    sm = 0.0
    if want_sim:
        for i in range(n):
            x = ((s[i] - s_off) / s_d1) / s_d2
            y = ((g[i] - g_off) / g_d1) / g_d2
            sm += x if x < y else y
    if want_kl:
        for i in range(n):
            r = k_eps + ((g[i] - kg_off) / kg_d) / ((s[i] - k_off) / k_d + k_eps)
            kl_out[i] = r if r >= 0 else -r
    return ss, sg, gg, sm


def _kl_dot_py(g, kg_off, kg_d, logr):  # pragma: no cover - compiled by numba
    """``sum ((g - kg_off)/kg_d) * logr``."""
    acc = 0.0
    for i in range(g.shape[0]):
        acc += ((g[i] - kg_off) / kg_d) * logr[i]
    return acc


def _split_counts_py(vals, thr, out):  # pragma: no cover - compiled by numba
    """``out[c, k] = #{r : vals[r, c] >= thr[c, k]}`` (the step-threshold ROC counts of AUC-Borji/sAUC)."""
    n_r, n_c = vals.shape
    n_k = thr.shape[1]
    for c in range(n_c):
        for k in range(n_k):
            t = thr[c, k]
            m = 0
            for r in range(n_r):
                if vals[r, c] >= t:
                    m += 1
            out[c, k] = m


def _quant_py(s, scale, hist, lut):  # pragma: no cover - compiled by numba
    """Histogram of the integer codes ``s * scale`` in ``[0, 255]``; ``lut[c]`` = the value of code ``c``.
    Returns False (the counts then mean nothing) as soon as a code is not an integer in range or two
    different values share a code.  Runs of one value are counted in a register."""
    prev = np.nan
    pc = 0
    run = 0
    for i in range(s.shape[0]):
        v = s[i]
        if v == prev:
            run += 1
            continue
        hist[pc] += run
        x = v * scale
        if not (x >= 0.0 and x <= 255.0):
            return False
        c = int(x)
        if c != x:
            return False
        if hist[c] == 0 and lut[c] != lut[c]:
            lut[c] = v
        elif lut[c] != v:
            return False
        prev = v
        pc = c
        run = 1
    hist[pc] += run
    return True


def _quant_ref_py(s, scale, ref, hist4):  # pragma: no cover - compiled by numba
    """Branch-free check that every value is ``ref[c]`` for its code ``c = int(s * scale)`` (the values of an
    8-bit image divided by 255 with numpy), with the code histogram split over four rows (``hist4[i & 3]``:
    consecutive increments do not wait on each other).  False: use :func:`_quant_py`."""
    ok = True
    for i in range(s.shape[0]):
        v = s[i]
        x = v * scale
        x = 0.0 if x < 0.0 else x
        x = 255.0 if x > 255.0 else x
        c = int(x)
        ok &= ref[c] == v
        hist4[i & 3, c] += 1
    return ok


def _qjudd_py(s, add, scale, lstart, lcount, u, bins):  # pragma: no cover - compiled by numba
    """For each pixel of a level (code ``c = s * scale``) holding thresholds ``u[lstart[c]:lstart[c] +
    lcount[c]]`` (ascending): ``j`` = how many of them are <= ``s + add``; ``bins[k, lstart[c] + c + j] += 1``
    (``k`` alternates between the two rows so that consecutive increments do not wait on each other; the
    slot ``j = lcount[c]`` is left unread).  Pixels of other levels are skipped.  No branch depends on
    the jitter."""
    for i in range(s.shape[0]):
        c = int(s[i] * scale)
        m = lcount[c]
        if m == 0:
            continue
        v = s[i] + add[i]
        st = lstart[c]
        j = 0
        for k in range(m):
            j += u[st + k] <= v
        bins[i & 1, st + c + j] += 1



def _qjudd_fused_py(s, add, scale, ref, base, tab, lstart, lcount, u, bins):  # pragma: no cover - compiled by numba
    """:func:`_quant_ref_py` and :func:`_qjudd_py` in one pass.  Code ``c`` owns the slots ``base[c] =
    lstart[c] + c .. base[c] + lcount[c]`` of ``bins`` (one per rank ``j`` of ``s + add`` among its
    thresholds; a single slot for a level without thresholds): the slots of a code sum to its histogram
    count.  ``j`` comes from four comparisons with ``tab[4c:4c+4]`` (a level's first 4 thresholds, padded with
    +inf, never <= a finite value: no inner loop, ~2x faster than one), plus a loop over the rest of
    ``u[lstart[c]:lstart[c] + lcount[c]]`` for the few levels with more than 4."""
    ok = True
    for i in range(s.shape[0]):
        v = s[i]
        x = v * scale
        x = 0.0 if x < 0.0 else x
        x = 255.0 if x > 255.0 else x
        c = int(x)
        ok &= ref[c] == v
        w = v + add[i]
        o = 4 * c
        j = np.int64(tab[o] <= w) + np.int64(tab[o + 1] <= w) + np.int64(tab[o + 2] <= w) + np.int64(tab[o + 3] <= w)
        m = lcount[c]
        if m > 4:
            st = lstart[c]
            for k in range(4, m):
                j += np.int64(u[st + k] <= w)
        bins[i & 1, base[c] + j] += 1
    return ok


def _qjudd4_py(s, add, scale, ref, base, tab, bins):  # pragma: no cover - compiled by numba
    """:func:`_qjudd_fused_py` when no level holds more than 4 thresholds (no ``lcount`` look-up, no
    branch: faster still)."""
    ok = True
    for i in range(s.shape[0]):
        v = s[i]
        x = v * scale
        x = 0.0 if x < 0.0 else x
        x = 255.0 if x > 255.0 else x
        c = int(x)
        ok &= ref[c] == v
        w = v + add[i]
        o = 4 * c
        j = np.int64(tab[o] <= w) + np.int64(tab[o + 1] <= w) + np.int64(tab[o + 2] <= w) + np.int64(tab[o + 3] <= w)
        bins[i & 1, base[c] + j] += 1
    return ok


def _nonzero_words_py(words, flat, out):  # pragma: no cover - compiled by numba
    """Indices of the non-zero bytes of ``flat`` (viewed as 64-bit ``words``) into ``out``; returns how
    many (ascending, as ``np.flatnonzero``).  With an empty ``out`` it only counts."""
    n = 0
    fill = out.shape[0] > 0
    for w in range(words.shape[0]):
        if words[w] != 0:
            for k in range(8):
                if flat[8 * w + k] != 0:
                    if fill:
                        out[n] = 8 * w + k
                    n += 1
    return n

_COMPILED: dict[str, object] = {}
_FASTMATH = {"reassoc", "contract", "arcp", "nsz"}  # not nnan/ninf: NaN and inf must propagate
_LOCK = threading.Lock()


def _kernel(name: str):
    fn = _COMPILED.get(name)
    if fn is None:
        with _LOCK:
            fn = _COMPILED.get(name)
            if fn is None:
                import numba

                # The sums may be reassociated (vectorised reductions, reciprocal multiplies: round-off only);
                # the threshold counts must compare exact values, so they get no fast-math flags.
                # The map statistics only see finite maps (check_map): min/max may assume no NaN.
                flags = {
                    "sums": {"fastmath": _FASTMATH},
                    "kl_dot": {"fastmath": _FASTMATH},
                    "stats": {"fastmath": _FASTMATH | {"nnan", "ninf"}},
                }.get(name, {})
                fn = numba.njit(cache=True, nogil=True, **flags)(globals()[f"_{name}_py"])
                _COMPILED[name] = fn
    return fn


_EMPTY = np.zeros(1)
_SCRATCH = threading.local()


def _scratch(n: int) -> np.ndarray:
    """A per-thread float64 work buffer of ``n`` values (reused: no page faults for a fresh 4 MB array)."""
    buf = getattr(_SCRATCH, "buf", None)
    if buf is None or buf.size < n:
        buf = np.empty(n)
        _SCRATCH.buf = buf
    return buf[:n]


# ---------------------------------------------------------------------------------------------------
# public (package-internal) entry points
# ---------------------------------------------------------------------------------------------------


def split_counts(vals: np.ndarray, thr: np.ndarray) -> np.ndarray:
    """``(n_splits, K)`` counts ``#{r : vals[r, c] >= thr[c, k]}`` for ``vals`` (n, n_splits), ``thr``
    (n_splits, K) (exact integers either way)."""
    if backend() == "numba":
        out = np.empty(thr.shape, np.int64)
        _kernel("split_counts")(np.ascontiguousarray(vals, dtype=np.float64),
                                np.ascontiguousarray(thr, dtype=np.float64), out)
        return out
    return (vals.T[:, None, :] >= thr[:, :, None]).sum(axis=2)


def map_stats(s: np.ndarray, add: np.ndarray | None = None) -> tuple[float, float, float, float, float]:
    """``(min s, max s, sum s, min(s + add), max(s + add))`` of flat float64 arrays (nan for the last two
    without ``add``).  numpy's own reductions are the fastest for the first three."""
    lo, hi, total = float(s.min()), float(s.max()), float(s.sum())
    if add is None:
        return lo, hi, total, float("nan"), float("nan")
    if backend() == "numba":
        alo, ahi = _kernel("stats")(s, add)
        return lo, hi, total, float(alo), float(ahi)
    t = s + add
    return lo, hi, total, float(t.min()), float(t.max())


def count_levels(
    s: np.ndarray,
    thr: np.ndarray,
    *,
    add: np.ndarray | None = None,
    lo: float = 0.0,
    span: float = 1.0,
    normalise: bool = False,
    want_eq: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of flat values against ascending thresholds (exact integer counts).

    Values ``v = s (+ add)``, then ``(v - lo) / span`` when ``normalise``.  Returns ``cnt`` (n + 1,) with
    ``cnt[j]`` = #values having exactly ``j`` thresholds <= v (so ``#{v < thr[k]} = cnt[:k+1].sum()``), and
    ``eq`` (n,) = #values equal to ``thr[k]`` (with ``want_eq``; meaningful for distinct thresholds).
    """
    thr = np.ascontiguousarray(thr, dtype=np.float64)
    n = thr.size
    if backend() == "numba":
        u = np.unique(thr)
        nb = max(16, _N_BUCKETS_PER_THRESHOLD * u.size)
        tables = _kernel("tables")(u, nb, _N_BUCKETS_PER_THRESHOLD)
        t0, scale = tables[0], tables[1]
        cu = np.zeros(u.size + 1, np.int64)
        equ = np.zeros(u.size + 1, np.int64)
        sub_off, sub_scale, sub_start, sub_first = tables[2], tables[4], tables[6], tables[7]
        up = np.concatenate([[-np.inf], u, [np.inf]])
        if not np.any(sub_scale):  # no cluster of thresholds: the level-1 table decides
            _kernel("levels1")(s, _EMPTY if add is None else add, add is not None, lo, span, normalise, up, t0, scale,
                               nb, sub_start[sub_off + 1], sub_first[sub_off + 1], want_eq, cu, equ)
        else:
            _kernel("levels")(s, _EMPTY if add is None else add, add is not None, lo, span, normalise, up, t0, scale,
                              nb, *tables[2:], want_eq, cu, equ)
        # back to the thresholds with duplicates: #{v < thr[k]} depends on the value only
        below_u = np.concatenate([[0], np.cumsum(cu[:-1])])  # #{v < u[m]} at index m + 1
        k_u = np.searchsorted(u, thr)  # index of thr[k] among u
        below = below_u[k_u + 1]
        cnt = np.diff(np.concatenate([[0], below, [s.size]]))
        eq = equ[k_u + 1] if want_eq else np.zeros(n, np.int64)
        return cnt.astype(np.int64), eq.astype(np.int64)
    v = s if add is None else s + add
    if normalise:
        v = v - lo
        v /= span
    sv = np.sort(v)
    less = np.searchsorted(sv, thr, side="left")
    cnt = np.diff(np.concatenate([[0], less, [sv.size]]))
    eq = np.searchsorted(sv, thr, side="right") - less if want_eq else np.zeros(n, np.int64)
    return cnt.astype(np.int64), eq.astype(np.int64)


def fused_sums(
    s: np.ndarray,
    ms: float,
    g: np.ndarray | None = None,
    *,
    mg: float = 0.0,
    want_cc: bool = False,
    sim: tuple[float, float, float, float, float, float] | None = None,
    kl: tuple[float, float, float, float, float] | None = None,
) -> tuple[float, float, float, float, float]:
    """``(sum (s-ms)^2, sum (s-ms)(g-mg), sum (g-mg)^2, SIM, KL)`` over flat float64 arrays in one go.

    ``sim = (s_off, s_d1, s_d2, g_off, g_d1, g_d2)``: SIM is ``sum min(((s - s_off)/s_d1)/s_d2,
    ((g - g_off)/g_d1)/g_d2)``.  ``kl = (k_off, k_d, kg_off, kg_d, k_eps)``: KL is ``sum yk log|k_eps + yk /
    (xk + k_eps)|`` with ``xk = (s - k_off)/k_d``, ``yk = (g - kg_off)/kg_d`` (the real part of MATLAB's
    complex log is ``log|.|``).  Terms not requested are returned as 0.
    """
    want_sim, want_kl = sim is not None, kl is not None
    gg_ = g if g is not None else _EMPTY
    sim_ = sim if want_sim else (0.0, 1.0, 1.0, 0.0, 1.0, 1.0)
    kl_ = kl if want_kl else (0.0, 1.0, 0.0, 1.0, 0.0)
    if backend() == "numba":
        out = _scratch(s.size) if want_kl else _EMPTY
        ss, sg, gsq, sm = _kernel("sums")(s, ms, gg_, mg, want_cc, *sim_, want_sim, *kl_, want_kl, out)
        kv = 0.0
        if want_kl:
            with np.errstate(divide="ignore", invalid="ignore"):
                np.log(out, out=out)
            kv = float(_kernel("kl_dot")(g, kl_[2], kl_[3], out))
        return float(ss), float(sg), float(gsq), float(sm), kv
    d = s - ms
    ss = float(np.dot(d, d))
    sg = gsq = 0.0
    if want_cc:
        e = g - mg
        sg = float(np.dot(d, e))
        gsq = float(np.dot(e, e))
    sm = 0.0
    if want_sim:
        s_off, s_d1, s_d2, g_off, g_d1, g_d2 = sim
        x = s - s_off
        x /= s_d1
        x /= s_d2
        y = g - g_off
        y /= g_d1
        y /= g_d2
        np.minimum(x, y, out=x)
        sm = float(x.sum())
    kv = 0.0
    if want_kl:
        k_off, k_d, kg_off, kg_d, k_eps = kl
        yk = g - kg_off
        yk /= kg_d
        with np.errstate(divide="ignore", invalid="ignore"):
            t = s - k_off
            t /= k_d
            t += k_eps
            np.divide(yk, t, out=t)
            t += k_eps
            np.abs(t, out=t)
            np.log(t, out=t)
            kv = float(np.dot(yk, t))
    return ss, sg, gsq, sm, kv


def quantised_levels(s: np.ndarray, lo: float, hi: float) -> tuple[float, np.ndarray, np.ndarray] | None:
    """``(scale, lut, hist)`` when every value of the flat float64 map ``s`` (min ``lo``, max ``hi``) is
    one of at most 256 levels with integer codes ``c = s * scale`` in ``[0, 255]`` (``scale`` 255 for maps
    in [0, 1], as 8-bit images divided by 255, else 1 for maps in [0, 255]) and no two different values
    share a code; else None.  ``hist[c]`` counts the pixels of code ``c``, ``lut[c]`` is their value (nan
    when absent).  Codes then order the values exactly: a histogram replaces sorting the map."""
    if not (lo >= 0.0 and hi <= 255.0):
        return None
    scale = 255.0 if hi <= 1.0 else 1.0
    if backend() == "numba":
        ref = np.arange(256.0) / scale
        hist4 = np.zeros((4, 256), np.int64)
        if _kernel("quant_ref")(s, scale, ref, hist4):
            hist = hist4.sum(axis=0)
            return scale, np.where(hist > 0, ref, np.nan), hist
        hist = np.zeros(256, np.int64)
        lut = np.full(256, np.nan)
        ok = _kernel("quant")(s, scale, hist, lut)
        return (scale, lut, hist) if ok else None
    x = s * scale
    c = x.astype(np.int64)
    if not np.array_equal(c, x):
        return None
    hist = np.bincount(c, minlength=256)
    lut = np.full(256, np.nan)
    lut[c] = s
    if not np.array_equal(lut[c], s):
        return None
    return scale, lut, hist.astype(np.int64)


def jitter_counts_below(
    s: np.ndarray,
    add: np.ndarray,
    quant: tuple[float, np.ndarray, np.ndarray],
    noise_range: tuple[float, float],
    pix: np.ndarray,
    thr: np.ndarray,
) -> np.ndarray | None:
    """``#{s + add < thr[k]}`` for the ascending thresholds ``thr = sort(s[pix] + add[pix])`` of a quantised
    map (:func:`quantised_levels`), or None when the jitter may reorder two levels.

    Exact when, for every two adjacent present levels ``a < b``, ``a + max(add) < b + min(add)`` in float64
    (checked here): jittered values of different levels then never tie or cross, so a threshold from level
    ``c`` has every pixel of the lower levels below it, every pixel of the higher levels above, and only the
    pixels of level ``c`` need comparing - one pass that skips the levels holding no threshold.
    """
    scale, lut, hist = quant
    nmin, nmax = noise_range
    present = lut[hist > 0]
    if present.size > 1 and not np.all(present[:-1] + nmax < present[1:] + nmin):
        return None
    pos = s[pix] + add[pix]
    u, first = np.unique(pos, return_index=True)  # ascending; grouped by level by the check above
    cu = (s[pix] * scale).astype(np.int64)[first]
    lcount = np.bincount(cu, minlength=256).astype(np.int64)
    lstart = np.zeros(256, np.int64)
    lstart[1:] = np.cumsum(lcount)[:-1]
    if backend() == "numba":
        bins2 = np.zeros((2, u.size + 256), np.int64)
        _kernel("qjudd")(s, add, scale, lstart, lcount, u, bins2)
        bins2 = bins2.sum(axis=0)
        bins = bins2[np.arange(u.size) + cu]  # slot of u[k]: lstart[c] + c + (k - lstart[c])
    else:
        c = (s * scale).astype(np.int64)
        sel = np.flatnonzero(lcount[c])
        cs = c[sel]
        j = np.searchsorted(u, s[sel] + add[sel], side="right") - lstart[cs]
        keep = j < lcount[cs]
        bins = np.bincount(lstart[cs][keep] + j[keep], minlength=u.size).astype(np.int64)
    below_level = np.concatenate([[0], np.cumsum(hist)])[cu]  # pixels of the lower levels
    cb = np.concatenate([[0], np.cumsum(bins)])
    below_u = below_level + cb[1:] - cb[lstart[cu]]
    return below_u[np.searchsorted(u, thr)]


def jitter_counts_below_fused(
    s: np.ndarray,
    add: np.ndarray,
    lo: float,
    hi: float,
    noise_range: tuple[float, float],
    pix: np.ndarray,
    thr: np.ndarray,
) -> tuple[np.ndarray | None, tuple[float, np.ndarray, np.ndarray] | None] | None:
    """:func:`quantised_levels` and :func:`jitter_counts_below` from one pass over the map (numba backend,
    maps whose values are exactly ``code / scale``): ``(below or None, quant)``; None when it does not
    apply (the caller then takes the two steps)."""
    if backend() != "numba" or not (lo >= 0.0 and hi <= 255.0):
        return None
    scale = 255.0 if hi <= 1.0 else 1.0
    ref = np.arange(256.0) / scale
    sp_ = s[pix]
    xf = sp_ * scale
    if not (np.all(xf >= 0.0) and np.all(xf <= 255.0)):
        return None
    cf = xf.astype(np.int64)
    if not np.array_equal(ref[cf], sp_):
        return None
    pos = sp_ + add[pix]
    u, first = np.unique(pos, return_index=True)
    cu = cf[first]
    lcount = np.bincount(cu, minlength=256).astype(np.int64)
    lstart = np.zeros(256, np.int64)
    lstart[1:] = np.cumsum(lcount)[:-1]
    if not np.all(np.diff(cu) >= 0):  # thresholds of different levels interleave: the check below fails
        return None
    bins2 = np.zeros((2, u.size + 256), np.int64)
    tab = np.full((256, 4), np.inf)
    rank = np.arange(u.size) - lstart[cu]  # of u[k] within its level
    first4 = rank < 4
    tab[cu[first4], rank[first4]] = u[first4]
    base = lstart + np.arange(256)
    if lcount.max() <= 4:
        ok = _kernel("qjudd4")(s, add, scale, ref, base, tab.ravel(), bins2)
    else:
        ok = _kernel("qjudd_fused")(s, add, scale, ref, base, tab.ravel(), lstart, lcount, u, bins2)
    if not ok:
        return None
    slots = bins2.sum(axis=0)
    hist = np.add.reduceat(slots, lstart + np.arange(256))
    quant = (scale, np.where(hist > 0, ref, np.nan), hist)
    nmin, nmax = noise_range
    present = ref[hist > 0]
    if present.size > 1 and not np.all(present[:-1] + nmax < present[1:] + nmin):
        return None, quant
    bins = slots[np.arange(u.size) + cu]
    below_level = np.concatenate([[0], np.cumsum(hist)])[cu]
    cb = np.concatenate([[0], np.cumsum(bins)])
    below_u = below_level + cb[1:] - cb[lstart[cu]]
    return below_u[np.searchsorted(u, thr)], quant


def nonzero_bytes(flat: np.ndarray) -> np.ndarray | None:
    """``np.flatnonzero`` of a flat C-contiguous 1-byte array whose size is a multiple of 8 (a binary
    fixation map), by two scans of 64-bit words with numba; None with the numpy backend."""
    if backend() != "numba":
        return None
    words = flat.view(np.uint64)
    k = _kernel("nonzero_words")
    n = k(words, flat, np.empty(0, np.int64))
    out = np.empty(n, np.int64)
    if n:
        k(words, flat, out)
    return out
