"""The histogram fast paths of the ROC areas for quantised maps (8-bit levels) equal the general counts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import salience.metrics as M
from salience.metrics import _fast, _roc
from salience.metrics import fixation as F

BACKENDS = ["numpy"] + (["numba"] if _fast.HAVE_NUMBA else [])


def _below_by_sorting(v: np.ndarray, thr: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.sort(v), thr, side="left")


def _quant_map(rng: np.random.Generator, n: int, n_levels: int) -> np.ndarray:
    codes = rng.choice(256, size=n_levels, replace=False)
    return np.sort(codes[rng.integers(0, n_levels, n)]).astype(np.float64) / 255.0  # runs, as smooth maps have


@pytest.mark.parametrize("name", BACKENDS)
def test_quantised_levels_detects_only_exact_codes(name):
    """A k/255 map gives its exact histogram; one value off by an ulp, out of range or sharing a code: None."""
    rng = np.random.default_rng(0)
    s = rng.integers(0, 256, 3000).astype(np.float64) / 255.0
    with _fast.use_backend(name):
        scale, lut, hist = _fast.quantised_levels(s, s.min(), s.max())
        assert scale == 255.0
        assert np.array_equal(hist, np.bincount(np.rint(s * 255).astype(int), minlength=256))
        assert np.array_equal(lut[hist > 0], np.unique(s))
        nxt = np.nextafter(s, 2.0)  # codes with another value than k/255 (whole levels moved by an ulp)
        moved = (nxt * 255.0 == np.rint(s * 255.0)) & (np.rint(s * 255.0) % 2 == 1)
        other = np.where(moved, nxt, s)
        assert moved.any()
        q = _fast.quantised_levels(other, other.min(), other.max())
        assert q is not None and np.array_equal(q[2], hist) and np.array_equal(q[1][hist > 0], np.unique(other))
        ints = s * 255.0
        assert _fast.quantised_levels(ints, ints.min(), ints.max())[0] == 1.0
        bad = s.copy()
        bad[17] = np.nextafter(bad[17], 2.0)  # a second value with the same code (or a fractional code)
        assert _fast.quantised_levels(bad, bad.min(), bad.max()) is None
        half = s.copy()
        half[5] = 0.5  # 127.5 / 255
        assert _fast.quantised_levels(half, half.min(), half.max()) is None
        neg = s - 1.0
        assert _fast.quantised_levels(neg, neg.min(), neg.max()) is None
        big = s * 1000.0
        assert _fast.quantised_levels(big, big.min(), big.max()) is None


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n_levels=st.sampled_from([1, 2, 5, 40, 256]), n_fix=st.integers(1, 300),
       ties=st.booleans())
def test_jitter_counts_equal_sorting(seed, n_levels, n_fix, ties):
    """#{S + noise < t} from the per-level pass equals sorting the jittered map, ties included."""
    rng = np.random.default_rng(seed)
    n = 4000
    s = _quant_map(rng, n, n_levels)
    add = rng.standard_normal(n) * 1e-7
    pix = rng.integers(0, n, n_fix)  # repeated pixels: duplicate thresholds
    if ties:  # jittered values that tie exactly with a threshold, or round onto it
        others = rng.integers(0, n, 50)
        src = pix[rng.integers(0, pix.size, 50)]
        same_level = s[others] == s[src]
        add[others[same_level]] = add[src[same_level]] * (1.0 + rng.choice([0.0, 1e-12], same_level.sum()))
    thr = np.sort(s[pix] + add[pix])
    want = _below_by_sorting(s + add, thr)
    for name in BACKENDS:
        with _fast.use_backend(name):
            q = _fast.quantised_levels(s, s.min(), s.max())
            got = _fast.jitter_counts_below(s, add, q, (add.min(), add.max()), pix, thr)
        assert np.array_equal(got, want), name
    if _fast.HAVE_NUMBA:  # the one-pass variant: same counts, same histogram
        with _fast.use_backend("numba"):
            below, q = _fast.jitter_counts_below_fused(s, add, s.min(), s.max(), (add.min(), add.max()), pix, thr)
            ref = _fast.quantised_levels(s, s.min(), s.max())
        assert np.array_equal(below, want)
        assert q[0] == ref[0] and np.array_equal(q[2], ref[2]) and np.array_equal(q[1], ref[1], equal_nan=True)


@pytest.mark.parametrize("name", BACKENDS)
def test_jitter_counts_refuse_noise_that_can_reorder_levels(name):
    """Noise wider than half the gap between two levels: None (the general path counts instead)."""
    rng = np.random.default_rng(1)
    s = _quant_map(rng, 2000, 30)
    add = rng.standard_normal(2000) * 1e-2
    pix = rng.integers(0, 2000, 50)
    thr = np.sort(s[pix] + add[pix])
    with _fast.use_backend(name):
        q = _fast.quantised_levels(s, s.min(), s.max())
        assert _fast.jitter_counts_below(s, add, q, (add.min(), add.max()), pix, thr) is None
    if name == "numba":  # the one-pass variant: no counts, but the histogram for the all-pixel AUC
        with _fast.use_backend("numba"):
            assert _fast.jitter_counts_below_fused(s, add, s.min(), s.max(), (add.min(), add.max()), pix, thr) is None
            # thresholds still in level order, but some unfixated jittered pixel of level 0 crosses level 1/255
            lv = (np.arange(2000) % 2) / 255.0
            jit = np.where(lv == 0, 0.01, 0.0) * rng.random(2000)
            fx = np.array([0, 2, 1, 3])
            jit[fx[:2]] = 1e-4
            th = np.sort(lv[fx] + jit[fx])
            below, q1 = _fast.jitter_counts_below_fused(lv, jit, 0.0, lv.max(), (jit.min(), jit.max()), fx, th)
            assert below is None and np.array_equal(q1[2][:2], [1000, 1000])
            off = np.nextafter(s, 2.0)  # not code / 255: the one-pass variant does not apply
            assert _fast.jitter_counts_below_fused(off, add, off.min(), off.max(), (add.min(), add.max()), pix,
                                                   thr) is None
    # integer levels 0 and 1 with a jitter of +-0.6: refused as well
    s2 = (rng.random(2000) < 0.5).astype(np.float64)
    wide = rng.uniform(-0.6, 0.6, 2000)
    with _fast.use_backend(name):
        q2 = _fast.quantised_levels(s2, 0.0, 1.0)
        assert q2 is not None
        assert _fast.jitter_counts_below(s2, wide, q2, (wide.min(), wide.max()), pix,
                                         np.sort(s2[pix] + wide[pix])) is None


def _scores(smap, fmap, conv, fast: bool, monkeypatch):
    if not fast:
        monkeypatch.setattr(F, "quantised_levels", lambda *a: None)
        monkeypatch.setattr(_roc, "jitter_counts_below_fused", lambda *a: None)  # the ROC helpers use it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return M.evaluate(smap, fmap, metrics=["auc_judd", "auc_borji"], convention=conv, rng=None)
    finally:
        monkeypatch.undo()


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("kind", ["8bit", "ints", "few_levels", "float"])
def test_evaluate_fast_path_gives_identical_aucs(name, kind, monkeypatch):
    """AUC-Judd (jittered) and the all-pixel AUC under tuebingen are bit-identical with and without the fast
    path (8-bit maps, integer maps, two levels with ties, and an unquantised map that never takes it)."""
    rng = np.random.default_rng(3)
    h, w = 60, 80
    codes = np.rint(np.clip(np.add.outer(np.arange(h), np.arange(w)) * 1.1 + rng.normal(0, 9, (h, w)), 0, 255))
    smap = {"8bit": codes / 255.0, "ints": codes, "few_levels": (codes > 120).astype(np.float64),
            "float": codes / 255.0 + rng.random((h, w)) * 1e-3}[kind]
    fmap = np.zeros((h, w), np.uint8)
    fmap[rng.integers(0, h, 40), rng.integers(0, w, 40)] = 1
    with _fast.use_backend(name):
        p = F._Prepared(smap, (h, w), "tuebingen")
        assert (p.quant is None) == (kind == "float")
        fast = _scores(smap, fmap, "tuebingen", True, monkeypatch)
        slow = _scores(smap, fmap, "tuebingen", False, monkeypatch)
    assert fast == slow


@pytest.mark.skipif(not _fast.HAVE_NUMBA, reason="the one-pass variant needs numba (salience[fast])")
@pytest.mark.parametrize("n_levels,n_fix", [(256, 12), (60, 200), (3, 200)])
def test_one_pass_variant_with_few_and_many_thresholds_per_level(n_levels, n_fix):
    """Both branches of the one-pass variant (<= 4 thresholds in a level, more, and both) equal sorting."""
    rng = np.random.default_rng(n_fix)
    s = _quant_map(rng, 6000, n_levels)
    add = rng.standard_normal(6000) * 1e-7
    pix = rng.choice(6000, n_fix, replace=False)
    per_level = np.bincount(np.rint(s[pix] * 255).astype(int)).max()
    assert (per_level <= 4) == (n_levels == 256)
    thr = np.sort(s[pix] + add[pix])
    with _fast.use_backend("numba"):
        below, _ = _fast.jitter_counts_below_fused(s, add, s.min(), s.max(), (add.min(), add.max()), pix, thr)
    assert np.array_equal(below, _below_by_sorting(s + add, thr))


@pytest.mark.skipif(not _fast.HAVE_NUMBA, reason="the word scan needs numba (salience[fast])")
@pytest.mark.parametrize("density", [0.0, 0.003, 0.5, 1.0])
def test_nonzero_bytes_equals_flatnonzero(density):
    """The numba word scan of a binary map gives np.flatnonzero's indices (empty, sparse, dense, full)."""
    rng = np.random.default_rng(7)
    m = (rng.random(4096 + 8 * 13) < density).astype(np.uint8) * rng.integers(1, 255, 4096 + 8 * 13).astype(np.uint8)
    with _fast.use_backend("numba"):
        got = _fast.nonzero_bytes(m)
    assert got.dtype == np.int64 and np.array_equal(got, np.flatnonzero(m))
