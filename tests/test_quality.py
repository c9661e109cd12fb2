"""The explanation-quality metrics of salience.audit.quality: hand-worked values, properties on models
whose evidence is known, agreement with Quantus 0.6.0 on identical inputs, determinism, errors, the CLI.

Agreement with Quantus (test-only peer, installed by the Makefile with --no-deps).  Every comparison
gives both sides the same model, the same attribution array, the same baseline (0.0) and the same
random choices; where the definitions differ, the test sets Quantus' options to the definition used
here and says so:

* sparseness, complexity: Quantus' defaults (``abs=True``, ``normalise=True``); Quantus adds 1e-7 to
  every value before the Gini index and 1e-12 inside the logarithm, in float32, so they agree to ~5e-6.
* faithfulness correlation: Quantus draws its subsets over the C*H*W input elements, salience over
  pixels (all channels at once); on single-channel inputs with the subsets Quantus drew (its global
  ``np.random`` seeded and replayed) the correlations agree.
* monotonicity: Quantus 0.6.0's default ``perturb_func`` (baseline replacement) sets the pixels it
  "adds" to the baseline again, so its curve stays flat and every map comes out monotonic; the test gives
  it a ``perturb_func`` that puts the original pixels back, which is what the metric means.
* monotonicity, monotonicity correlation: Quantus takes ``|map|`` by default; here ``abs=False`` and
  ``normalise=False`` there, ``features_in_step = C * H * W / steps`` (each group = the same pixels),
  ``nr_samples=1`` with a constant baseline (Quantus' default is uniform noise).  The scores Quantus
  saw are recorded with a forward hook and compared curve point by curve point.
* region perturbation: Quantus returns the drops after k = 1..L regions; salience adds the k = 0 point
  and the AOPC.  Same centred grid (regions not tiling the image: 10 x 10 with 4 x 4 patches), ``abs=False``,
  ``normalise=False``.
* max-/avg-sensitivity: the noise salience draws is handed to Quantus as its ``perturb_func``, and the
  explanation is salience's gradient through ``salience.explain`` on both sides.

The figures (max abs and rel difference over the test inputs) are printed with ``-s`` and listed in
docs/audit.md.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salience.audit import quality as q
from salience.errors import InputError, ModelError, SalienceError

torch = pytest.importorskip("torch")

from _models import Tiny  # noqa: E402


def linear_model(weights: np.ndarray, n_classes: int = 2) -> torch.nn.Module:
    """logit_0 = sum_p w_p x_p (one channel), the other logits 0: the evidence of pixel p is w_p x_p."""
    w = torch.as_tensor(np.asarray(weights), dtype=torch.float32).reshape(-1)
    lin = torch.nn.Linear(w.numel(), n_classes, bias=False)
    with torch.no_grad():
        lin.weight.zero_()
        lin.weight[0] = w
    return torch.nn.Sequential(torch.nn.Flatten(), lin)


def one_channel_net(seed: int = 5) -> torch.nn.Module:
    """A small non-linear single-channel CNN with fixed weights (3 classes, 8 x 8 inputs)."""
    g = torch.Generator().manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Tanh(), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 8 * 8, 3))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return net.eval()


def gaps(mine, theirs) -> str:
    """'max abs A, max rel R' of two arrays, for the agreement figures printed with -s."""
    d = np.abs(np.asarray(mine, np.float64) - np.asarray(theirs, np.float64))
    rel = d / np.maximum(np.abs(np.asarray(theirs, np.float64)), 1e-12)
    return f"max abs {d.max():.2e}, max rel {rel.max():.2e}"


def top1(net, x) -> np.ndarray:
    with torch.no_grad():
        return net(x).argmax(1).numpy()


# ------------------------------------------------------------------------------------------------------
# sparseness and complexity
# ------------------------------------------------------------------------------------------------------


def test_gini_and_entropy_extremes() -> None:
    """One-hot: Gini (n-1)/n, entropy 0; constant: Gini 0, entropy ln n; all-zero: the constant values."""
    n = 16 * 16
    one = np.zeros((1, 16, 16))
    one[0, 5, 7] = 3.0
    const = np.full((1, 16, 16), 0.4)
    assert q.sparseness(one)[0] == pytest.approx((n - 1) / n) and q.sparseness(one)[0] > 0.99
    assert q.sparseness(const)[0] == pytest.approx(0.0, abs=1e-12)
    assert q.complexity(one)[0] == pytest.approx(0.0, abs=1e-12)
    assert q.complexity(const)[0] == pytest.approx(math.log(n))
    zero = np.zeros((16, 16))
    assert q.sparseness(zero).tolist() == [0.0] and q.complexity(zero)[0] == pytest.approx(math.log(n))
    # k equal pixels out of n: Gini 1 - k/n, entropy ln k
    k = np.zeros((1, 16, 16))
    k[0, :4, :4] = 1.0
    assert q.sparseness(k)[0] == pytest.approx(1 - 16 / n) and q.complexity(k)[0] == pytest.approx(math.log(16))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.just(0.0), st.floats(1e-6, 1e3), st.floats(-1e3, -1e-6)), min_size=4, max_size=36),
       st.floats(0.01, 100))
def test_gini_entropy_ranges_sign_and_scale_invariance(values, scale) -> None:
    """Gini in [0, 1), entropy in [0, ln n], both unchanged by a positive scale and by the sign."""
    m = np.asarray(values, dtype=np.float64)[None, None, :]
    n = m.size
    g, h = q.sparseness(m)[0], q.complexity(m)[0]
    assert -1e-12 <= g < 1 and -1e-12 <= h <= math.log(n) + 1e-9
    assert q.sparseness(-scale * m)[0] == pytest.approx(g, abs=1e-9)
    assert q.complexity(scale * m)[0] == pytest.approx(h, abs=1e-9)


def test_sparser_map_scores_sparser() -> None:
    """A Gaussian blob narrower than another is sparser (Gini up) and simpler (entropy down)."""
    yy, xx = np.mgrid[:32, :32]
    blob = [np.exp(-((yy - 16) ** 2 + (xx - 16) ** 2) / (2 * s * s)) for s in (2.0, 6.0)]
    g, h = q.sparseness(np.stack(blob)), q.complexity(np.stack(blob))
    assert g[0] > g[1] and h[0] < h[1]


def test_sparseness_complexity_agree_with_quantus(quantus) -> None:
    """Identical maps (signed and unsigned) with Quantus' defaults (abs, max-normalised): Gini to 5e-6,
    entropy to 1e-5 (Quantus' 1e-7 / 1e-12 offsets and its float32 arithmetic are the only differences;
    the largest gaps are on the very peaked maps, where 1e-7 is not small against most values)."""
    rng = np.random.default_rng(3)
    maps = np.concatenate([rng.random((3, 1, 12, 12)), rng.normal(size=(3, 1, 12, 12)),
                           rng.random((2, 1, 12, 12)) ** 8]).astype(np.float32)
    x = rng.random((8, 1, 12, 12)).astype(np.float32)
    y = np.zeros(8, dtype=np.int64)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(144, 2))
    kw = {"model": net, "x_batch": x, "y_batch": y, "channel_first": True}
    g_q = np.asarray(quantus.Sparseness(disable_warnings=True)(a_batch=maps.copy(), **kw), np.float64)
    h_q = np.asarray(quantus.Complexity(disable_warnings=True)(a_batch=maps.copy(), **kw), np.float64)
    g, h = q.sparseness(maps[:, 0]), q.complexity(maps[:, 0])
    print(f"\nquantus sparseness: {gaps(g, g_q)}; complexity: {gaps(h, h_q)}")
    np.testing.assert_allclose(g, g_q, atol=5e-6)
    np.testing.assert_allclose(h, h_q, atol=1e-5)


# ------------------------------------------------------------------------------------------------------
# faithfulness correlation
# ------------------------------------------------------------------------------------------------------


def test_faithfulness_correlation_true_evidence_beats_random() -> None:
    """On a linear model the drop of the logit is exactly the evidence summed over the subset: the true
    evidence correlates 1.0; a random map near 0; the negated evidence -1."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 6))
    net = linear_model(w)
    x = torch.from_numpy(rng.random((2, 1, 6, 6)).astype(np.float32))
    evidence = w[None] * x[:, 0].numpy()
    r = q.faithfulness_correlation(net, x, evidence, 0, runs=40, subset_size=6, score="logit")
    np.testing.assert_allclose(r.values, 1.0, atol=1e-5)
    neg = q.faithfulness_correlation(net, x, -evidence, 0, runs=40, subset_size=6, score="logit")
    np.testing.assert_allclose(neg.values, -1.0, atol=1e-5)
    rand = q.faithfulness_correlation(net, x, rng.random((2, 6, 6)), 0, runs=40, subset_size=6, score="logit")
    assert (np.abs(rand.values) < 0.6).all() and (rand.values < r.values - 0.4).all()
    assert r.targets.tolist() == [0, 0] and r.params["subset_size"] == 6


def test_faithfulness_correlation_deterministic_and_batch_independent() -> None:
    """The same seed gives the same value; another seed other subsets; an image's value does not depend on
    batch_size or on the other images of the batch (subsets are seeded per image)."""
    net = Tiny().eval()
    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    m = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(2))
    a = q.faithfulness_correlation(net, x, m, runs=10, seed=4)
    b = q.faithfulness_correlation(net, x, m, runs=10, seed=4, batch_size=7)
    c = q.faithfulness_correlation(net, x, m, runs=10, seed=5)
    np.testing.assert_allclose(a.values, b.values, rtol=0, atol=1e-12)
    assert not np.allclose(a.values, c.values)
    alone = q.faithfulness_correlation(net, x[:1], m[:1], runs=10, seed=4)
    assert alone.values[0] == pytest.approx(a.values[0], abs=1e-6)


def test_faithfulness_correlation_agrees_with_quantus(quantus) -> None:
    """Single-channel inputs (Quantus' features = pixels), Quantus' own random subsets replayed: the
    correlations agree to 1e-5 (float32 model outputs on both sides)."""
    net = one_channel_net()
    rng = np.random.default_rng(7)
    x = rng.random((4, 1, 8, 8)).astype(np.float32)
    maps = rng.normal(size=(4, 1, 8, 8)).astype(np.float32)
    maps[:2] = np.abs(maps[:2])
    y = top1(net, torch.from_numpy(x))
    runs, k = 12, 6
    np.random.seed(123)
    fc = quantus.FaithfulnessCorrelation(nr_runs=runs, subset_size=k, perturb_baseline=0.0, return_aggregate=False,
                                         disable_warnings=True)
    v_q = np.asarray(fc(model=net, x_batch=x, y_batch=y, a_batch=maps.copy(), channel_first=True), np.float64)
    np.random.seed(123)  # replay Quantus' draws: per run, one subset per image
    subsets = np.empty((4, runs, k), dtype=np.int64)
    for r in range(runs):
        for b in range(4):
            subsets[b, r] = np.random.choice(64, k, replace=False)
    v = q.faithfulness_correlation(net, torch.from_numpy(x), maps[:, 0], y, subsets=subsets, score="logit").values
    print(f"\nquantus faithfulness correlation: {np.round(v_q, 4).tolist()}, {gaps(v, v_q)}")
    np.testing.assert_allclose(v, v_q, atol=1e-5)


# ------------------------------------------------------------------------------------------------------
# monotonicity and monotonicity correlation
# ------------------------------------------------------------------------------------------------------


def test_monotonicity_hand_computed() -> None:
    """Pixels enter in increasing attribution; the logit after each group is the cumulative evidence."""
    w = np.array([[1.0, -2.0], [3.0, 0.5]])
    net = linear_model(w)
    x = torch.ones(1, 1, 2, 2)
    r = q.monotonicity(net, x, w, 0, score="logit")  # order -2, 0.5, 1, 3
    np.testing.assert_allclose(r.curves[0], [-2.0, -1.5, -0.5, 2.5], atol=1e-6)
    assert r.values.tolist() == [1.0]
    # a map that puts the strongest pixel first: the logit falls on the way
    bad = q.monotonicity(net, x, -w, 0, score="logit")
    np.testing.assert_allclose(bad.curves[0], [3.0, 4.0, 4.5, 2.5], atol=1e-6)
    assert bad.values.tolist() == [0.0]
    assert q.monotonicity(net, x, w, 0, steps=2, score="logit").curves.shape == (1, 2)


def test_monotonicity_correlation_true_evidence_beats_random() -> None:
    """Linear model: the squared logit change of a group is (its evidence)^2, so |evidence| ranks the
    groups exactly (1.0); a random map does much worse."""
    rng = np.random.default_rng(1)
    w = rng.normal(size=(8, 8))
    net = linear_model(w)
    x = torch.from_numpy(rng.random((2, 1, 8, 8)).astype(np.float32) + 0.1)
    evidence = np.abs(w[None] * x[:, 0].numpy())
    r = q.monotonicity_correlation(net, x, evidence, 0, steps=64, score="logit")
    np.testing.assert_allclose(r.values, 1.0, atol=1e-9)
    rand = q.monotonicity_correlation(net, x, rng.random((2, 8, 8)), 0, steps=64, score="logit")
    assert (rand.values < 0.5).all()


def _recorder(net):
    outs: list[np.ndarray] = []
    handle = net.register_forward_hook(lambda m, i, o: outs.append(torch.softmax(o.detach().double(), 1).numpy()))
    return outs, handle


def test_monotonicity_and_correlation_agree_with_quantus(quantus) -> None:
    """Same model, maps, baseline 0 and groups (features_in_step = 4 pixels, 16 steps), softmax scores
    (Quantus' default for these two): the probability after every group that Quantus fed its model
    equals salience's curve (1e-6), the verdicts and the monotonicity correlations are equal (1e-9)."""
    net = one_channel_net(9)
    rng = np.random.default_rng(11)
    x = rng.random((4, 1, 8, 8)).astype(np.float32)
    maps = rng.random((4, 1, 8, 8)).astype(np.float32)
    y = top1(net, torch.from_numpy(x))
    xt = torch.from_numpy(x)
    opts = {"features_in_step": 4, "perturb_baseline": 0.0, "abs": False, "normalise": False,
            "disable_warnings": True}
    kw = {"model": net, "x_batch": x, "y_batch": y, "channel_first": True}
    x_flat = x.reshape(4, -1)

    def put_back(arr, indices, **_):
        """Quantus 0.6.0's default perturb_func sets the 'added' elements to the baseline again (its curve
        stays flat, so every map is monotonic); this puts the original pixels back, as the metric means."""
        out = arr.copy()
        rows = np.arange(len(arr))[:, None]
        out[rows, indices] = x_flat[rows, indices]
        return out

    outs, h = _recorder(net)
    try:
        mono_q = quantus.Monotonicity(perturb_func=put_back, **opts)(a_batch=maps.copy(), **kw)
    finally:
        h.remove()
    seen = np.stack([o[np.arange(4), y] for o in outs[-16:]], axis=1)
    mine = q.monotonicity(net, xt, maps[:, 0], y, steps=16)
    print(f"\nquantus monotonicity: curve {gaps(mine.curves, seen)}; "
          f"verdicts {list(map(bool, mono_q))}")
    np.testing.assert_allclose(mine.curves, seen, atol=1e-6)
    assert mine.values.astype(bool).tolist() == [bool(v) for v in mono_q]
    mc_q = np.asarray(quantus.MonotonicityCorrelation(nr_samples=1, **opts)(a_batch=maps.copy(), **kw), np.float64)
    mc = q.monotonicity_correlation(net, xt, maps[:, 0], y, steps=16).values
    print(f"quantus monotonicity correlation: {np.round(mc_q, 4).tolist()}, {gaps(mc, mc_q)}")
    np.testing.assert_allclose(mc, mc_q, atol=1e-9)


# ------------------------------------------------------------------------------------------------------
# region perturbation
# ------------------------------------------------------------------------------------------------------


def test_region_perturbation_true_evidence_beats_random_and_lerf() -> None:
    """Known evidence (a linear model that looks at one corner): MoRF of the true map > the random order
    > LeRF, and AOPC = the mean of the drops including k = 0."""
    w = np.zeros((12, 12))
    w[:4, :4] = 1.0
    net = linear_model(w)
    x = torch.ones(2, 1, 12, 12)
    ev = np.broadcast_to(w, (2, 12, 12))
    kw = {"patch": 4, "score": "logit"}
    morf = q.region_perturbation(net, x, ev, 0, **kw)
    rand = q.region_perturbation(net, x, ev, 0, order="random", seed=3, **kw)
    lerf = q.region_perturbation(net, x, ev, 0, order="lerf", **kw)
    np.testing.assert_allclose(morf.curves[0], [0] + [16] * 9, atol=1e-5)
    assert morf.values[0] == pytest.approx(16 * 9 / 10, rel=1e-6)
    assert (morf.values > rand.values).all() and (rand.values >= lerf.values).all()
    assert lerf.values[0] == pytest.approx(16 / 10, rel=1e-6)  # the corner region comes last
    assert q.region_perturbation(net, x, ev, 0, regions=3, **kw).curves.shape == (2, 4)


def test_region_perturbation_equals_the_deletion_curve() -> None:
    """Regions that tile the image: the drops are f(x) minus the deletion curve with patch ranking and one
    step per region (faithfulness.py), so the two code paths agree."""
    from salience.audit import faithfulness as fa

    net = Tiny().eval()
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    m = torch.rand(2, 8, 8, generator=torch.Generator().manual_seed(4))
    r = q.region_perturbation(net, x, m, patch=2)
    d = fa.deletion_curve(net, x, m, steps=16, patch=2)
    np.testing.assert_allclose(r.curves, d.scores[:, :1] - d.scores, atol=1e-6)


def test_region_perturbation_agrees_with_quantus(quantus) -> None:
    """10 x 10 images with 4 x 4 regions (a centred grid: the outer regions 3 pixels wide), 3 channels,
    baseline 0, 6 regions, softmax scores (Quantus' default here): Quantus' drops after k = 1..6 equal
    salience's curve[:, 1:] (1e-6)."""
    net = Tiny().eval()
    rng = np.random.default_rng(5)
    x = rng.random((3, 3, 10, 10)).astype(np.float32)
    maps = rng.random((3, 1, 10, 10)).astype(np.float32)
    y = top1(net, torch.from_numpy(x))
    rp = quantus.RegionPerturbation(patch_size=4, regions_evaluation=6, perturb_baseline=0.0, order="morf",
                                    abs=False, normalise=False, disable_warnings=True)
    d_q = np.stack(rp(model=net, x_batch=x, y_batch=y, a_batch=maps.copy(), channel_first=True)).astype(np.float64)
    r = q.region_perturbation(net, torch.from_numpy(x), maps[:, 0], y, patch=4, regions=6)
    aopc_q = np.concatenate([np.zeros((3, 1)), d_q], 1).mean(1)
    print(f"\nquantus region perturbation: drops {gaps(r.curves[:, 1:], d_q)}, AOPC {gaps(r.values, aopc_q)}")
    np.testing.assert_allclose(r.curves[:, 1:], d_q, atol=1e-6)
    np.testing.assert_allclose(r.values, aopc_q, atol=1e-6)


# ------------------------------------------------------------------------------------------------------
# sensitivity
# ------------------------------------------------------------------------------------------------------


def test_sensitivity_properties() -> None:
    """A linear model's gradient does not change (0); a non-linear one changes more under larger noise
    (the same draws scaled); max >= mean; seeded."""
    lin = linear_model(np.random.default_rng(0).normal(size=(6, 6)))
    x1 = torch.rand(2, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    mx, avg = q.sensitivity(lin, x1, "gradient", 0, samples=3)
    np.testing.assert_allclose(mx.values, 0.0, atol=1e-6)
    net = Tiny().eval()
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    small = q.sensitivity(net, x, "gradient", samples=3, radius=0.01)
    big = q.sensitivity(net, x, "gradient", samples=3, radius=0.5)
    assert (big[1].values > small[1].values).all()
    assert (big[0].values >= big[1].values).all() and big[0].curves.shape == (2, 3)
    again = q.max_sensitivity(net, x, "gradient", samples=3, radius=0.5)
    np.testing.assert_allclose(again.values, big[0].values, rtol=0, atol=0)
    assert q.avg_sensitivity(net, x, "gradient", samples=3, radius=0.5).values == pytest.approx(big[1].values)


def test_sensitivity_agrees_with_quantus(quantus) -> None:
    """The same noise draws (salience's, handed to Quantus as perturb_func) and salience's gradient as
    Quantus' explain_func: max and average sensitivity agree to 1e-5."""
    import salience

    net = Tiny().eval()
    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    y = top1(net, x)
    samples, radius, seed = 3, 0.2, 0
    noise = [np.random.default_rng((seed, s)).uniform(-radius, radius, size=tuple(x.shape)) for s in range(samples)]

    def explain_func(model, inputs, targets, **kw):
        t = torch.as_tensor(np.asarray(inputs), dtype=torch.float32)
        return salience.explain(model, t, "gradient", target=torch.as_tensor(targets)).maps.numpy()

    def make_perturb():
        calls = iter(range(samples))

        def perturb(arr, indices, **kw):
            n = noise[next(calls)].reshape(arr.shape).astype(np.float32)
            return (arr.astype(np.float32) + n)
        return perturb

    a0 = explain_func(net, x.numpy(), y)
    res = {}
    for name, cls in (("max", quantus.MaxSensitivity), ("avg", quantus.AvgSensitivity)):
        metric = cls(nr_samples=samples, perturb_func=make_perturb(), lower_bound=radius, abs=False,
                     normalise=False, disable_warnings=True)
        res[name] = np.asarray(metric(model=net, x_batch=x.numpy(), y_batch=y, a_batch=a0[:, None].copy(),
                                      explain_func=explain_func, channel_first=True), np.float64)
    mx, avg = q.sensitivity(net, x, "gradient", y, samples=samples, radius=radius, seed=seed)
    print(f"\nquantus max-sensitivity {np.round(res['max'], 4).tolist()} {gaps(mx.values, res['max'])}; "
          f"avg-sensitivity {gaps(avg.values, res['avg'])}")
    np.testing.assert_allclose(mx.values, res["max"], atol=1e-5)
    np.testing.assert_allclose(avg.values, res["avg"], atol=1e-5)


# ------------------------------------------------------------------------------------------------------
# errors, the model left alone, the report and the CLI
# ------------------------------------------------------------------------------------------------------


def test_bad_inputs_raise_salience_errors() -> None:
    net = Tiny()
    x = torch.rand(1, 3, 8, 8)
    m = torch.rand(1, 8, 8)
    bad = [
        lambda: q.faithfulness_correlation(net, x, torch.rand(1, 7, 8)),
        lambda: q.faithfulness_correlation(net, x, m, baseline="black"),
        lambda: q.faithfulness_correlation(net, x, m, baseline=[0.0, 1.0]),
        lambda: q.faithfulness_correlation(net, x, m, subset_size=64),
        lambda: q.faithfulness_correlation(net, x, m, runs=1),
        lambda: q.faithfulness_correlation(net, x, m, subsets=np.full((3, 4), 99)),
        lambda: q.faithfulness_correlation(net, x, m, score="prob"),
        lambda: q.monotonicity(net, x, m, steps=65),
        lambda: q.monotonicity_correlation(net, x, m, steps=1),
        lambda: q.region_perturbation(net, x, m, patch=4, regions=5),
        lambda: q.region_perturbation(net, x, m, order="best"),
        lambda: q.region_perturbation(net, x[0], m),
        lambda: q.sensitivity(net, x, "gradient", radius=0),
        lambda: q.sensitivity(net, x, "gradient", reference=torch.rand(1, 4, 4)),
        lambda: q.sparseness(np.full((2, 2), np.nan)),
        lambda: q.complexity("map"),
        lambda: q.quality_report(net, x, "gradient", "faithfulness"),
        lambda: q.quality_report(net, x, "itti", "sparseness"),
        lambda: q.quality_report(net, x, "gradient", "sparseness", options={"nope": {}}),
        lambda: q.quality_report(net, x, "gradient", "sparseness", options={"monotonicity": {"stpes": 4}}),
        lambda: q.quality_report(net, x, "gradient", "sparseness", options={"sparseness": {"steps": 4}}),
    ]
    for call in bad:
        with pytest.raises(SalienceError):
            call()
    with pytest.raises(InputError, match="baseline"):
        q.region_perturbation(net, x, m, baseline=float("nan"))
    zero = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 2))
    with pytest.raises(ModelError, match="all zeros"):
        q.sensitivity(zero, x, "gradient", reference=torch.zeros(1, 8, 8))


def test_model_and_inputs_left_alone() -> None:
    """The model's mode and weights and the caller's tensors are unchanged after every metric."""
    net = Tiny().train()
    x = torch.rand(2, 3, 8, 8)
    m = torch.rand(2, 8, 8)
    x0, m0 = x.clone(), m.clone()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    q.quality_report(net, x, "gradient", "all", options={"faithfulness-correlation": {"runs": 4},
                                                          "max-sensitivity": {"samples": 2}})
    q.region_perturbation(net, x, m)
    assert net.training and all(mod.training for mod in net.modules())
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    assert torch.equal(x, x0) and torch.equal(m, m0)


def test_quality_report_runs_every_metric() -> None:
    """Every metric for two methods, one value per image, the same target for both methods."""
    net = Tiny().eval()
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(8))
    rep = q.quality_report(net, x, "gradcam,gradient", "all", seed=1,
                           options={"faithfulness-correlation": {"runs": 5}, "max-sensitivity": {"samples": 2},
                                    "region-perturbation": {"patch": 4}, "monotonicity": {"steps": 8},
                                    "monotonicity-correlation": {"steps": 8}})
    assert list(rep) == ["gradcam", "gradient"]
    for res in rep.values():
        assert list(res) == list(q.QUALITY_METRICS)
        for r in res.values():
            assert r.values.shape == (2,) and np.isfinite(r.values).all()
    assert rep["gradcam"]["region-perturbation"].targets.tolist() == rep["gradient"]["sparseness"].targets.tolist()


@pytest.mark.slow
def test_cli_audit_metrics(tmp_path, capsys) -> None:
    """`salience audit --metrics ...` prints the scores and writes them into the JSON and a CSV; an
    unknown metric is bad usage (exit 2) before any image is read."""
    skdata = pytest.importorskip("skimage.data")
    from PIL import Image

    from salience.cli import main

    src = tmp_path / "cat.png"
    Image.fromarray(skdata.chelsea()[::6, ::6]).save(src)
    out = tmp_path / "out"
    code = main(["audit", str(src), "--method", "gradient", "--steps", "2", "--randomize", "none",
                 "--metrics", "sparseness,complexity,faithfulness-correlation,region-perturbation,monotonicity",
                 "--runs", "3", "--regions", "2", "--patch", "32", "--out", str(out)])
    text = capsys.readouterr()
    assert code == 0, text.err
    assert "quality gradient" in text.out and "sparseness" in text.out
    report = json.loads((out / "cat_audit.json").read_text())
    assert set(report["quality"]["gradient"]) == {"sparseness", "complexity", "faithfulness-correlation",
                                                  "region-perturbation", "monotonicity"}
    assert report["quality_params"]["region-perturbation"]["regions"] == 2
    assert report["quality_params"]["monotonicity"]["steps"] == 2
    rows = (out / "cat_quality.csv").read_text().splitlines()
    assert rows[0] == "image,method,metric,value" and len(rows) == 6
    assert main(["audit", str(src), "--out", str(tmp_path / "o2"), "--metrics", "gini"]) == 2
    assert "unknown --metrics name 'gini'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def quantus():
    qt = pytest.importorskip("quantus")
    warnings.filterwarnings("ignore", module="quantus")
    return qt
