"""The fused kernels of salience.metrics (numba and numpy backends) and prepare_ground_truth."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import salience.metrics as M
from salience.datasets import shared_data_dir
from salience.errors import InputError
from salience.metrics import _fast

needs_numba = pytest.mark.skipif(not _fast.HAVE_NUMBA, reason="the numba backend needs numba (salience[fast])")

_ROOT = shared_data_dir()  # $SALIENCE_SHARED_DATA, else <repo>/../shared/data
REF = _ROOT / "reference" / "mit-metrics"
EIGHT = "auc_judd,auc_borji,sauc,nss,cc,kld,sim,ig"  # the metrics that use the kernels (EMD does not)


def _ref_counts(v: np.ndarray, thr: np.ndarray):
    sv = np.sort(v)
    less = np.searchsorted(sv, thr, side="left")
    return np.diff(np.concatenate([[0], less, [v.size]])), np.searchsorted(sv, thr, side="right") - less


@needs_numba
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), levels=st.sampled_from([3, 17, 256, 0]), n_thr=st.integers(1, 400),
       jitter=st.booleans(), normalise=st.booleans())
def test_count_levels_equals_sorting(seed, levels, n_thr, jitter, normalise):
    """Counting against thresholds equals the sort-and-search counts exactly (ties, clusters, duplicates)."""
    rng = np.random.default_rng(seed)
    s = rng.random(5000)
    if levels:
        s = np.floor(s * levels) / levels  # quantised: many exact ties
        s = np.sort(s) if seed % 2 else s  # long runs of equal values, as in smooth 8-bit maps
    add = rng.random(5000) / 1e7 if jitter else None
    v = s if add is None else s + add
    lo, span = (float(v.min()), float(v.max() - v.min())) if normalise else (0.0, 1.0)
    vv = (v - lo) / span if normalise else v
    thr = np.sort(np.concatenate([vv[rng.integers(0, 5000, n_thr)], [vv.min(), vv.max()]]))
    want = _ref_counts(vv, thr)
    with _fast.use_backend("numba"):
        got = _fast.count_levels(s, thr, add=add, lo=lo, span=span, normalise=normalise, want_eq=True)
    with _fast.use_backend("numpy"):
        fallback = _fast.count_levels(s, thr, add=add, lo=lo, span=span, normalise=normalise, want_eq=True)
    with _fast.use_backend("numba"):
        no_eq = _fast.count_levels(s, thr, add=add, lo=lo, span=span, normalise=normalise)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(no_eq[0], want[0])  # the run-skipping path (AUC-Judd's)
    np.testing.assert_array_equal(fallback[0], want[0])
    u = np.unique(thr)
    k = np.searchsorted(u, thr)
    np.testing.assert_array_equal(got[1], _ref_counts(vv, u)[1][k])  # eq: per distinct value


@needs_numba
def test_count_levels_single_threshold_and_out_of_range_values():
    """One threshold, values far below and above it, and an infinite span factor are counted exactly."""
    s = np.array([-1e300, -1.0, 0.0, 0.5, 0.5, 1.0, 1e300])
    for thr in (np.array([0.5]), np.array([0.5, 0.5 + 1e-300]), np.array([-1e300, 1e300])):
        with _fast.use_backend("numba"):
            got = _fast.count_levels(s, thr, want_eq=True)
        want = _ref_counts(s, thr)
        np.testing.assert_array_equal(got[0], want[0])


@needs_numba
def test_split_counts_backends_agree():
    """The AUC-Borji step-threshold counts are the same integers with both backends."""
    rng = np.random.default_rng(0)
    vals = np.floor(rng.random((300, 100)) * 10) / 10
    thr = np.sort(rng.random((100, 12)), axis=1)[:, ::-1]
    thr[:, 0] = np.inf
    with _fast.use_backend("numba"):
        a = _fast.split_counts(vals, thr)
    with _fast.use_backend("numpy"):
        b = _fast.split_counts(vals, thr)
    np.testing.assert_array_equal(a, b)


def _scene(seed: int = 0, h: int = 60, w: int = 80):
    rng = np.random.default_rng(seed)
    pts = np.stack([rng.uniform(0, w - 1, 40), rng.uniform(0, h - 1, 40)], axis=1)
    other = np.stack([rng.uniform(0, w - 1, 90), rng.uniform(0, h - 1, 90)], axis=1)
    yy, xx = np.mgrid[0:h, 0:w]
    smap = np.exp(-((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / 400.0) + 0.3 * rng.random((h, w))
    return pts, other, smap


@pytest.mark.parametrize("convention", [pytest.param("mit", marks=pytest.mark.slow), "tuebingen"])
def test_prepared_ground_truth_gives_exactly_the_same_scores(convention):
    """evaluate(map, prepare_ground_truth(...)) equals evaluate(map, fixations, ...) bit for bit for several maps.

    Exact on purpose: both routes hold the same fixation index array (raster order) and run the same
    arithmetic in the same order, so no CPU's vector width can make them differ (the fourth map passes the
    fixations as a binary map instead of points)."""
    pts, other, smap = _scene(1)
    base = M.centre_bias_map(smap.shape)
    gt = M.prepare_ground_truth(pts, smap.shape, other_fixations=other, baseline_map=base)
    for m in (smap, smap ** 2, np.random.default_rng(2).random(smap.shape), smap[::2, ::2]):
        a = M.evaluate(m, gt, convention=convention, rng=3)
        b = M.evaluate(m, pts if m.shape == smap.shape else M.fixation_map_from_points(pts, smap.shape),
                       other_fixations=other, baseline_map=base, convention=convention, rng=3)
        assert a == b
        assert len(a) == 9


def test_prepared_ground_truth_copies_its_inputs_and_checks_arguments():
    """Changing the arrays after prepare_ground_truth does not change the scores; bad calls raise InputError."""
    pts, other, smap = _scene(4)
    g = M.fixation_density_map(pts, smap.shape)
    gt = M.prepare_ground_truth(pts, fixation_map=g, other_fixations=other)
    before = M.evaluate(smap, gt, rng=0)
    g *= 0.0
    pts += 1.0
    assert M.evaluate(smap, gt, rng=0) == before
    assert gt.shape == smap.shape and gt.n_fixations == 40 and "GroundTruth" in repr(gt)
    with pytest.raises(InputError, match="prepare_ground_truth"):
        M.evaluate(smap, gt, fixation_map=g)
    with pytest.raises(InputError, match="shape"):
        M.prepare_ground_truth(pts)
    with pytest.raises(InputError, match="sauc"):
        M.evaluate(smap, M.prepare_ground_truth(pts, smap.shape), metrics="sauc")


@needs_numba
@pytest.mark.parametrize("convention", ["mit", "tuebingen"])
def test_backends_agree_on_synthetic_maps(convention):
    """numba and numpy backends: the same AUCs exactly, the other metrics to 1e-12 (relative above 1)."""
    pts, other, smap = _scene(5)
    maps = [smap, smap - 0.7, np.full(smap.shape, 0.25), np.zeros(smap.shape), np.round(smap * 8) / 8]
    for m in maps:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", M.DegenerateInputWarning)
            with _fast.use_backend("numba"):
                a = M.evaluate(m, pts, other_fixations=other, convention=convention, rng=1, metrics=EIGHT)
            with _fast.use_backend("numpy"):
                b = M.evaluate(m, pts, other_fixations=other, convention=convention, rng=1, metrics=EIGHT)
        _assert_close(a, b)


def _assert_close(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for k in a:
        x, y = a[k], b[k]
        if math.isnan(y):
            assert math.isnan(x), k
        elif k.startswith("auc") or k == "sauc" or math.isinf(y):
            assert x == y, k
        else:
            assert abs(x - y) <= 1e-12 * max(1.0, abs(y)), (k, x, y)  # sums of O(1) terms: absolute round-off


@needs_numba
@pytest.mark.skipif(not REF.is_dir(), reason=f"reference fixture folder {REF} is absent")
def test_backends_agree_on_the_osie_fixture():
    """On real 600 x 800 OSIE maps (5 kinds) both backends agree (AUCs exactly, the rest to 1e-12)."""
    from PIL import Image

    stem = "1003"
    fix = np.asarray(Image.open(REF / "fixations" / f"{stem}.png")).astype(np.float64)
    other = np.asarray(Image.open(REF / "shuffled_other" / f"{stem}.png")).astype(np.float64)
    gt = M.prepare_ground_truth(fix, other_fixations=other)
    for kind in ("gauss", "lumblur", "random", "constant", "lumblur_small"):
        s = np.asarray(Image.open(REF / "maps" / kind / f"{stem}.png")).astype(np.float64) / 255.0
        for conv in ("mit", "tuebingen"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", M.DegenerateInputWarning)
                with _fast.use_backend("numba"):
                    a = M.evaluate(s, gt, convention=conv, metrics=EIGHT)
                with _fast.use_backend("numpy"):
                    b = M.evaluate(s, gt, convention=conv, metrics=EIGHT)
            _assert_close(a, b)


def test_use_backend_rejects_unknown_names():
    """Only 'numba' and 'numpy' are backends."""
    with pytest.raises(ValueError):
        with _fast.use_backend("cuda"):
            pass


@pytest.mark.parametrize("dtype", [np.uint8, bool, np.int8, np.int32, np.float64])
def test_flatnonzero_of_fixation_maps(dtype):
    """The word-wise scan of 1-byte maps finds exactly np.flatnonzero's pixels, at any density."""
    from salience.metrics._inputs import flatnonzero

    rng = np.random.default_rng(1)
    for p in (0.0, 0.0005, 0.03, 0.7, 1.0):
        a = (rng.random((64, 96)) < p).astype(dtype)
        np.testing.assert_array_equal(flatnonzero(a), np.flatnonzero(a))
    a = np.zeros((61, 67), dtype)  # size not a multiple of 8: the plain path
    a[5, 7] = 1
    np.testing.assert_array_equal(flatnonzero(a), [5 * 67 + 7])
