"""Properties, hand-computed values, degenerate inputs and errors of salience.metrics (no data needed)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import salience.metrics as M
from salience.errors import InputError
from salience.metrics._emd import HAVE_NUMBA, _transport_highs, transport_cost

H, W = 48, 64


def _scene(seed: int = 0):
    """Fixations drawn from a two-blob density, that density as the 'perfect' map, and a random map."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    dens = np.exp(-((xx - 20) ** 2 + (yy - 15) ** 2) / 40.0) + 0.7 * np.exp(-((xx - 45) ** 2 + (yy - 32) ** 2) / 60.0)
    p = (dens / dens.sum()).ravel()
    idx = rng.choice(H * W, size=60, p=p)
    pts = np.stack([idx % W, idx // W], axis=1).astype(float) + rng.uniform(-0.4, 0.4, size=(60, 2))
    fmap = M.fixation_map_from_points(pts, (H, W))
    gt = M.fixation_density_map(fmap, sigma=3.0, convention="gaussian")
    other = np.zeros((H, W), np.uint8)
    other[rng.integers(0, H, 80), rng.integers(0, W, 80)] = 1
    return pts, fmap, gt, dens, rng.random((H, W)), other


@pytest.mark.parametrize("convention", ["mit", "tuebingen"])
def test_perfect_map_beats_random_map_on_every_metric(convention):
    """The generating density scores better than uniform noise on all nine metrics."""
    pts, fmap, gt, good, bad, other = _scene()
    kw = dict(convention=convention, fixation_map=gt, other_fixations=other, rng=1)
    a = M.evaluate(good, fmap, **kw)
    b = M.evaluate(bad, fmap, **kw)
    assert list(a) == list(M.METRICS)
    for k in M.METRICS:
        if k in ("kld", "emd"):
            assert a[k] < b[k], k
        else:
            assert a[k] > b[k], k


def test_evaluate_equals_the_single_metric_functions():
    """evaluate(rng=seed) returns exactly what each metric function returns with the same seed."""
    pts, fmap, gt, good, _, other = _scene(3)
    base = M.centre_bias_map((H, W))
    r = M.evaluate(good, pts, fixation_map=gt, other_fixations=other, baseline_map=base, rng=7)
    assert r["auc_judd"] == M.auc_judd(good, pts, rng=7)
    assert r["auc_borji"] == M.auc_borji(good, pts, rng=7)
    assert r["sauc"] == M.sauc(good, pts, other, rng=7)
    assert r["nss"] == M.nss(good, pts)
    assert r["cc"] == M.cc(good, gt)
    assert r["kld"] == M.kld(good, gt)
    assert r["sim"] == M.sim(good, gt)
    assert r["ig"] == M.information_gain(good, pts, base)
    assert r["emd"] == M.emd(good, gt)


def test_evaluate_builds_the_continuous_map_and_default_baseline():
    """Without fixation_map/baseline_map, evaluate uses the MIT blur of the fixations and the centre bias."""
    pts, fmap, _, good, _, _ = _scene(4)
    r = M.evaluate(good, fmap, metrics=["cc", "ig"])
    g = M.fixation_density_map(fmap)
    assert r["cc"] == M.cc(good, g)
    assert r["ig"] == M.information_gain(good, fmap, M.centre_bias_map((H, W)))


def test_random_metrics_are_deterministic_for_a_seed_and_vary_across_seeds():
    """Same seed or same Generator state gives the same value; other seeds give other values."""
    _, fmap, _, good, _, other = _scene(5)
    for fn in (lambda r: M.auc_judd(good, fmap, rng=r), lambda r: M.auc_borji(good, fmap, rng=r),
               lambda r: M.sauc(good, fmap, other, rng=r)):
        assert fn(11) == fn(11)
        assert fn(np.random.default_rng(5)) == fn(np.random.default_rng(5))
        assert len({fn(s) for s in range(6)}) > 1


def test_inputs_are_not_mutated():
    """No metric writes into the arrays it is given."""
    pts, fmap, gt, good, _, other = _scene(6)
    copies = [a.copy() for a in (pts, fmap, gt, good, other)]
    M.evaluate(good, pts, fixation_map=gt, other_fixations=other)
    M.evaluate(good, fmap, fixation_map=gt, other_fixations=other, convention="tuebingen")
    for a, c in zip((pts, fmap, gt, good, other), copies):
        np.testing.assert_array_equal(a, c)


def test_points_and_binary_map_agree_under_mit():
    """MIT sees the set of fixated pixels, so points and their binary map give the same scores."""
    pts, fmap, gt, good, _, other = _scene(7)
    a = M.evaluate(good, pts, fixation_map=gt, other_fixations=other, rng=0)
    b = M.evaluate(good, fmap, fixation_map=gt, other_fixations=other, rng=0)
    assert a == b


def test_half_pixel_points_round_away_from_zero():
    """x0 = 2.5 goes to column 3 (MATLAB round of the 1-based 3.5), not 2 as numpy.round would."""
    assert M.fixation_map_from_points([[2.5, 0.5]], (3, 4)).tolist() == [[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]]


# ----------------------------------------------------------------------------- hand-computed values


def test_auc_judd_by_hand():
    """4 pixels with values 4,3,2,1 and the fixation on 3: ROC (0,0),(1/3,1),(1,1) -> area 5/6."""
    s = np.array([[4.0, 3.0], [2.0, 1.0]])
    assert M.auc_judd(s, np.array([[1.0, 0.0]]), jitter=False) == pytest.approx(5 / 6)
    assert M.auc_judd(s, np.array([[1.0, 0.0]]), jitter=False, convention="tuebingen") == pytest.approx(5 / 6)


def test_nss_by_hand():
    """NSS of 0..8 at value 8: (8 - 4) / std; std with N-1 (mit) or N (tuebingen)."""
    s = np.arange(9.0).reshape(3, 3)
    assert M.nss(s, np.array([[2.0, 2.0]])) == pytest.approx(4 / np.std(np.arange(9.0), ddof=1))
    assert M.nss(s, np.array([[2.0, 2.0]]), convention="tuebingen") == pytest.approx(4 / np.std(np.arange(9.0)))


def test_sim_and_kld_of_identical_maps():
    """SIM of a map with itself is 1 and its KL divergence 0."""
    g = np.arange(1.0, 13.0).reshape(3, 4)
    for conv in ("mit", "tuebingen"):
        assert M.sim(g, g, convention=conv) == pytest.approx(1.0)
        assert M.kld(g, g, convention=conv) == pytest.approx(0.0, abs=1e-12)


def test_emd_moves_a_unit_mass_by_its_distance():
    """All mass at bin (0,0) against all mass at (0,2) of a 3x3 grid: EMD = 2 bins (downsize 1)."""
    a = np.zeros((3, 3))
    b = np.zeros((3, 3))
    a[0, 0] = 1.0
    b[0, 2] = 1.0
    assert M.emd(b, a, downsize=1) == pytest.approx(2.0)
    b[:] = 0
    b[2, 2] = 1.0
    assert M.emd(b, a, downsize=1) == pytest.approx(math.sqrt(8.0), rel=1e-6)


def test_information_gain_of_the_baseline_itself_is_zero():
    """A map scored against itself as baseline gains 0 bits."""
    _, fmap, _, good, _, _ = _scene(8)
    assert M.information_gain(good, fmap, good) == 0.0
    assert M.information_gain(good, fmap, good, convention="tuebingen") == 0.0


@pytest.mark.skipif(not HAVE_NUMBA, reason="the simplex path needs numba")
@pytest.mark.parametrize("seed", range(4))
def test_transport_simplex_equals_highs(seed):
    """Our transportation simplex and scipy's HiGHS find the same integer optimum."""
    rng = np.random.default_rng(seed)
    m, n = rng.integers(2, 30, size=2)
    supply = rng.integers(1, 1000, size=m)
    demand = rng.multinomial(int(supply.sum()), np.ones(n) / n)
    keep = demand > 0
    demand = demand[keep]
    cost = rng.integers(0, 10_000, size=(m, demand.size))
    assert transport_cost(supply, demand, cost) == _transport_highs(supply, demand, cost)


# -------------------------------------------------------------------------------------- properties


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.01, 100.0), shift=st.floats(-50.0, 50.0))
def test_scores_invariant_to_positive_affine_maps(seed, scale, shift):
    """NSS, CC, exact AUCs and MIT SIM/AUC-Judd do not change when the map is scaled and shifted."""
    rng = np.random.default_rng(seed)
    s = rng.random((12, 16))
    fix = np.stack([rng.integers(0, 16, 5), rng.integers(0, 12, 5)], axis=1).astype(float)
    g = M.fixation_density_map(fix, (12, 16), sigma=2.0, convention="gaussian")
    t = s * scale + shift
    assert M.nss(t, fix) == pytest.approx(M.nss(s, fix), rel=1e-7, abs=1e-9)
    assert M.cc(t, g) == pytest.approx(M.cc(s, g), rel=1e-7, abs=1e-9)
    assert M.auc_borji(t, fix, convention="tuebingen") == pytest.approx(M.auc_borji(s, fix, convention="tuebingen"))
    assert M.auc_judd(t, fix, jitter=False) == pytest.approx(M.auc_judd(s, fix, jitter=False), abs=1e-9)
    assert M.sim(t, g) == pytest.approx(M.sim(s, g), rel=1e-7)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_metric_ranges(seed):
    """AUCs and SIM lie in [0, 1], CC in [-1, 1], KLD and EMD are >= 0."""
    rng = np.random.default_rng(seed)
    s = rng.random((10, 14)) ** 3
    fmap = (rng.random((10, 14)) < 0.1).astype(np.uint8)
    fmap[0, 0] = 1
    other = (rng.random((10, 14)) < 0.2).astype(np.uint8)
    other[5, 5] = 1
    g = M.fixation_density_map(fmap, sigma=1.5, convention="gaussian")
    for conv in ("mit", "tuebingen"):
        r = M.evaluate(s, fmap, fixation_map=g, other_fixations=other, convention=conv, rng=seed)
        for k in ("auc_judd", "auc_borji", "sauc", "sim"):
            assert 0.0 <= r[k] <= 1.0, (conv, k)
        assert -1.0 <= r["cc"] <= 1.0
        assert r["kld"] >= -1e-12 and r["emd"] >= 0.0


# ----------------------------------------------------------------------------- degenerate and errors


def test_constant_map_is_flagged_by_evaluate():
    """A constant map gives NaN where the MIT code does, one DegenerateInputWarning, or an error on request."""
    _, fmap, gt, _, _, other = _scene(9)
    const = np.full((H, W), 0.5)
    with pytest.warns(M.DegenerateInputWarning, match="undefined"):
        r = M.evaluate(const, fmap, fixation_map=gt, other_fixations=other, metrics=["auc_borji", "sim", "kld", "emd"])
    assert math.isnan(r["auc_borji"]) and math.isnan(r["sim"])
    assert math.isfinite(r["kld"]) and math.isfinite(r["emd"])
    with pytest.raises(InputError, match="undefined"):
        M.evaluate(const, fmap, fixation_map=gt, metrics="nss", nan_policy="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = M.evaluate(const, fmap, fixation_map=gt, metrics="nss,cc,sim", convention="tuebingen")
    assert r["nss"] == 0.0 and r["cc"] == 0.0 and 0 < r["sim"] < 1


def test_constant_map_with_jitter_is_a_chance_auc():
    """With jitter (the MIT default) a constant map gets a random AUC near 0.5, as in Octave."""
    _, fmap, _, _, _, _ = _scene(10)
    assert abs(M.auc_judd(np.full((H, W), 0.3), fmap, rng=0) - 0.5) < 0.15


def test_all_zero_map_sim_is_zero_under_mit():
    """The MIT similarity leaves an all-zero map at zero, so SIM is 0 (not NaN)."""
    _, _, gt, _, _, _ = _scene(11)
    assert M.sim(np.zeros((H, W)), gt) == 0.0


def test_maps_of_another_size_are_resized():
    """A half-size map is resized to the fixation map's size (MIT bicubic, tuebingen bilinear)."""
    _, fmap, gt, good, _, _ = _scene(12)
    small = good[::2, ::2]
    for conv in ("mit", "tuebingen"):
        r = M.evaluate(small, fmap, fixation_map=gt, metrics="nss,cc,auc_judd", convention=conv)
        assert r["nss"] > 0.5 and r["cc"] > 0.3 and r["auc_judd"] > 0.7


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda s, f, g: M.nss(np.full((H, W), np.nan), f), "NaN"),
        (lambda s, f, g: M.nss(s, np.zeros((0, 2))), "empty"),
        (lambda s, f, g: M.nss(s, np.zeros((H, W))), "empty"),
        (lambda s, f, g: M.nss(s, np.array([[W + 3.0, 1.0]])), "outside"),
        (lambda s, f, g: M.nss(s, np.array([[np.nan, 1.0]])), "NaN"),
        (lambda s, f, g: M.cc(s, np.zeros((H, W))), "all zero"),
        (lambda s, f, g: M.nss(s, f, convention="matlab"), "convention"),
        (lambda s, f, g: M.evaluate(s, f, metrics=["nss", "auroc"]), "unknown metric"),
        (lambda s, f, g: M.evaluate(s, f, metrics="sauc"), "other_fixations"),
        (lambda s, f, g: M.auc_borji(s, f, n_splits=0), "n_splits"),
        (lambda s, f, g: M.auc_judd(s, f, rng="seed"), "rng"),
        (lambda s, f, g: M.nss(np.zeros((2, 3, 4)), f), "2-D"),
        (lambda s, f, g: M.evaluate(s, f, nan_policy="ignore"), "nan_policy"),
    ],
)
def test_bad_input_raises_input_error(call, match):
    """Bad input raises InputError with a message naming the problem."""
    _, fmap, gt, good, _, _ = _scene(13)
    with pytest.raises(InputError, match=match):
        call(good, fmap, gt)


def test_all_without_other_fixations_leaves_sauc_out():
    """metrics='all' without other_fixations computes the other eight metrics."""
    _, fmap, _, good, _, _ = _scene(14)
    r = M.evaluate(good, fmap)
    assert "sauc" not in r and len(r) == 8


def test_metrics_namespace():
    """The package exports the metric API and raises AttributeError for unknown names."""
    for name in ("auc_judd", "auc_borji", "sauc", "nss", "cc", "kld", "sim", "information_gain", "emd",
                 "evaluate", "METRICS", "fixation_density_map"):
        assert hasattr(M, name)
    with pytest.raises(AttributeError):
        M.no_such_metric  # noqa: B018


def test_degrees_to_pixels():
    """Visual-angle helpers: 1 degree at 35 px/deg is 35 px; a 1920-px 52-cm screen at 60 cm spans 2*atan(26/60)."""
    assert M.degrees_to_pixels(2.0, 35.0) == 70.0
    assert M.pixels_per_degree(60.0, 52.0, 1920) == pytest.approx(1920 / (2 * math.degrees(math.atan(26 / 60))))
