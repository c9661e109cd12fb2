"""Hand-computed values on tiny fixed-weight networks: each CAM weighting rule, guided backprop on
functional and non-ReLU activations, modules used twice, Integrated Gradients quadrature."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from _models import Quadratic, Shared, Step, TwoLayer  # noqa: E402

F = torch.nn.functional

import salience  # noqa: E402
from salience.attribution import gradients  # noqa: E402
from salience.attribution._hooks import model_snapshot  # noqa: E402
from salience.errors import ModelError  # noqa: E402

# A0 = [[1, 2], [3, 4]], A1 = [[1, 0], [0, -1]]; target 0 has channel weights (1, -1), so
# G0 = A0 = [[1, 2], [3, 4]] and G1 = -A1 = [[-1, 0], [0, 1]].
A = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[1.0, 0.0], [0.0, -1.0]]]])
NET = Quadratic([[1.0, -1.0], [0.5, 0.5]])

# Worked by hand (see each comment):
HAND = {
    # w = mean(G) = (2.5, 0): relu(2.5 * A0)
    "gradcam": [[2.5, 5.0], [7.5, 10.0]],
    # relu(G0 A0 + G1 A1) = [[1, 4], [9, 16]] + [[-1, 0], [0, -1]]
    "hirescam": [[0.0, 4.0], [9.0, 15.0]],
    # relu(relu(G0) A0 + relu(G1) A1) = [[1, 4], [9, 16]] + [[0, 0], [0, -1]]
    "layercam": [[1.0, 4.0], [9.0, 15.0]],
    # channel 0: sum(A0) = 10, alpha = G^2 / (2 G^2 + 10 G^3) = 1/12, 4/88, 9/288, 16/672,
    #   w0 = sum alpha relu(G) = 1/12 + 8/88 + 27/288 + 64/672 = 0.36323052;
    # channel 1: sum(A1) = 0, alpha = 1/2 where G != 0, w1 = 0.5 * relu(1) = 0.5;
    # relu(w0 A0 + w1 A1)
    "gradcam-pp": [[0.86323052, 0.72646104], [1.08969156, 0.95292208]],
}


@pytest.mark.parametrize("name", sorted(HAND))
def test_cam_rules_by_hand(name: str) -> None:
    """Each CAM variant's low-resolution map equals the value worked out by hand."""
    e = salience.explain(NET, A, name, target=0, layer="features")
    np.testing.assert_allclose(e.cam[0].numpy(), np.array(HAND[name]), rtol=1e-6, atol=1e-6)
    assert e.scores.tolist() == pytest.approx([(1 + 4 + 9 + 16) / 2 - (1 + 1) / 2])


def test_cam_normalised_and_upsampled() -> None:
    """Maps are the low-resolution CAM, bilinearly upsampled and min-max scaled to [0, 1]."""
    x = torch.nn.functional.interpolate(A, size=(8, 8), mode="nearest")
    e = salience.explain(NET, x, "gradcam", target=0, layer="features")
    assert float(e.maps.min()) == 0.0 and float(e.maps.max()) == pytest.approx(1.0)
    raw = e.cam
    up = torch.nn.functional.interpolate(raw[:, None], size=(8, 8), mode="bilinear", align_corners=False)[:, 0]
    up = (up - up.min()) / (up.max() - up.min())
    assert torch.allclose(e.maps, up, atol=1e-6)


# ---- guided backpropagation ---------------------------------------------------------------------------


def _guided_by_hand(net: TwoLayer, x: torch.Tensor, target: int, hi: float = float("inf")) -> torch.Tensor:
    """Springenberg's rule written out: W1^T (relu(W2[target]) * 1[0 < W1 x < hi])."""
    pre = net.l1(x.flatten(1))
    gate = ((pre > 0) & (pre < hi)).float()
    back = torch.relu(net.l2.weight[target])[None, :] * gate
    return (back @ net.l1.weight).reshape(x.shape)


@pytest.mark.parametrize("how", ["module", "functional", "torch", "method", "inplace"])
def test_guided_backprop_every_relu_form(how: str) -> None:
    """nn.ReLU, F.relu, torch.relu, Tensor.relu and in-place F.relu all get the guided rule."""
    net = TwoLayer(how)
    x = torch.randn(1, 3, 2, 2, generator=torch.Generator().manual_seed(4))
    e = salience.explain(net, x, "guided-backprop", target=1)
    expected = _guided_by_hand(net, x, 1)
    assert torch.allclose(e.attributions, expected, atol=1e-6)
    plain = salience.explain(net, x, "gradient", target=1).attributions
    assert not torch.allclose(plain, expected, atol=1e-3), "the test must tell guided from plain"


def test_guided_backprop_relu6() -> None:
    """ReLU6 passes guided gradients only where 0 < x < 6."""
    net = TwoLayer("relu6")
    with torch.no_grad():
        net.l1.weight.mul_(4)  # push some pre-activations above 6
    x = torch.randn(1, 3, 2, 2, generator=torch.Generator().manual_seed(5))
    pre = net.l1(x.flatten(1))
    assert bool((pre > 6).any())
    e = salience.explain(net, x, "guided-backprop", target=0)
    assert torch.allclose(e.attributions, _guided_by_hand(net, x, 0, hi=6.0), atol=1e-5)


@pytest.mark.parametrize("how", ["silu", "gelu"])
def test_guided_backprop_smooth_activations_not_silent(how: str) -> None:
    """SiLU/GELU raise by default, warn on request, and never return the plain gradient."""
    net = TwoLayer(how)
    x = torch.randn(1, 3, 2, 2, generator=torch.Generator().manual_seed(6))
    before = model_snapshot(net)
    with pytest.raises(ModelError, match=how):
        salience.explain(net, x, "guided-backprop", target=0)
    assert model_snapshot(net) == before
    with pytest.warns(UserWarning, match=how):
        warned = salience.explain(net, x, "guided-backprop", target=0, activations="warn")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        guided = salience.explain(net, x, "guided-backprop", target=0, activations="guide")
    assert torch.equal(warned.attributions, guided.attributions)
    # the generalised rule by hand: W1^T (relu(W2[t]) * relu(f'(pre)))
    pre = net.l1(x.flatten(1)).detach().requires_grad_(True)
    (slope,) = torch.autograd.grad(net.act(pre).sum(), pre)
    expected = ((torch.relu(net.l2.weight[0])[None] * slope.clamp(min=0)) @ net.l1.weight).reshape(x.shape)
    assert torch.allclose(guided.attributions, expected, atol=1e-5)
    plain = salience.explain(net, x, "gradient", target=0).attributions
    assert not torch.allclose(plain, guided.attributions, atol=1e-3)


def test_guided_mode_does_not_leak() -> None:
    """After a guided call, F.relu has its ordinary gradient again."""
    salience.explain(TwoLayer("functional"), torch.rand(1, 3, 2, 2), "guided-backprop")
    t = torch.tensor([-1.0, 2.0], requires_grad=True)
    (g,) = torch.autograd.grad((F.relu(t) * -1).sum(), t)
    assert g.tolist() == [0.0, -1.0]


# ---- a module called twice in one forward ---------------------------------------------------------------


def _gradcam_by_hand(feats: torch.Tensor, head, target: int) -> torch.Tensor:
    a = feats.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(head(a)[:, target].sum(), a)
    return torch.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(dim=1)).detach()


def test_module_used_twice() -> None:
    """Grad-CAM at a module called twice explains its last call, with exact gradients."""
    net = Shared()
    x = torch.rand(2, 3, 10, 10, generator=torch.Generator().manual_seed(8))
    e = salience.explain(net, x, "gradcam", target=[0, 2], layer="act")
    for i, t in enumerate([0, 2]):
        ref = _gradcam_by_hand(net.features(x[i:i + 1]), lambda a: net.fc(a.mean(dim=(2, 3))), t)
        assert torch.allclose(e.cam[i:i + 1], ref, atol=1e-6)


def test_efficientnet_lite_shared_relu6() -> None:
    """EfficientNet-Lite0's one ReLU6 module (stem, every block, head): Grad-CAM of its last call equals
    Grad-CAM computed by hand on extract_features; guided backprop runs through every call."""
    lm = salience.load_model("efficientnet_lite0")
    net = lm.model
    x = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(9))
    e = salience.explain(lm, x, "gradcam", target=281)
    assert e.layer == "_swish"
    with torch.no_grad():
        feats = net.extract_features(x)
    ref = _gradcam_by_hand(feats, lambda a: net._fc(a.mean(dim=(2, 3))), 281)
    assert torch.allclose(e.cam, ref, atol=1e-5, rtol=1e-4)
    gb = salience.explain(lm, x, "guided-backprop", target=281)
    assert float(gb.maps.max()) == pytest.approx(1.0)


# ---- Integrated Gradients --------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", ["riemann-left", "riemann-right", "riemann-middle", "riemann-trapezoid",
                                  "gauss-legendre"])
def test_quadrature_integrates_polynomials(rule: str) -> None:
    """Weights sum to 1 and integrate x^2 on [0, 1] to 1/3 within the rule's known error."""
    a, w = gradients.quadrature(rule, 64)
    assert w.sum() == pytest.approx(1.0)
    tol = {"riemann-left": 1 / 64, "riemann-right": 1 / 64}.get(rule, 1e-4)
    assert float((w * a**2).sum()) == pytest.approx(1 / 3, abs=tol)


def test_integrated_gradients_exact_on_quadratic() -> None:
    """On f = sum W A^2 / 2 the path integral is exact for Gauss-Legendre: completeness to float error."""
    x = torch.rand(2, 2, 3, 3, generator=torch.Generator().manual_seed(10))
    e = salience.explain(NET, x, "ig", target=[0, 1], steps=4, quadrature="gauss-legendre")
    assert e.delta.abs().max() < 1e-5
    # attribution by hand: (x - 0) * W_c * x / 2
    w = NET.w[[0, 1]][:, :, None, None]
    assert torch.allclose(e.attributions, x * w * x / 2, atol=1e-6)


def test_adaptive_quadrature_places_nodes_where_the_score_changes() -> None:
    """Adaptive nodes: weights sum to 1 per image, nodes inside [0, 1] and increasing, crowded where the
    score is rough (more than half of them in [0, 0.25] for a step at 0.1), and completeness beats the
    uniform midpoint rule with the same number of gradient steps."""
    net = Step()
    x = torch.ones(2, 3, 4, 4)
    x[1] *= 1.5  # the step sits at alpha = 0.1 / 1.5 for the second image
    from salience.attribution._base import Target

    tgt = Target.parse(0, 2)
    with torch.no_grad():
        f0, f1 = net(torch.zeros_like(x))[:, 0], net(x)[:, 0]
        nodes, w = gradients._adaptive_nodes(net, torch.zeros_like(x), x, tgt.indices, tgt, 16, 8, f0, f1)
    assert torch.allclose(w.sum(dim=1), torch.ones(2, dtype=w.dtype))
    assert bool(((nodes > 0) & (nodes < 1)).all()) and bool((nodes.diff(dim=1) > 0).all())
    assert int((nodes[0] < 0.25).sum()) > 8 and int((nodes[1] < 0.25).sum()) > 8
    ad = salience.explain(net, x, "ig", target=0, steps=16, quadrature="adaptive", baseline=0.0)
    mid = salience.explain(net, x, "ig", target=0, steps=16, quadrature="riemann-middle", baseline=0.0)
    assert bool((ad.delta.abs() < mid.delta.abs()).all()), (ad.delta, mid.delta)


def test_integrated_gradients_tolerance_doubles_steps_until_complete() -> None:
    """tolerance=: an image whose completeness error is above tolerance * |f(x) - f(x')| is integrated
    again with 2x, 4x, ... the steps until it is below; an image already below keeps its first result."""
    net = Step()
    x = torch.ones(2, 3, 4, 4)
    x[1] = 0.0  # x equals the baseline: f(x) - f(x') = 0 and delta = 0, so it passes at once
    plain = salience.explain(net, x, "ig", target=0, steps=4, baseline=0.0)
    rel0 = float(plain.delta[0].abs() / (plain.scores[0] - plain.baseline_scores[0]).abs())
    assert rel0 > 0.01  # four Gauss-Legendre nodes miss the sharp step at alpha = 0.1 (by 2.2%)
    e = salience.explain(net, x, "ig", target=0, steps=4, baseline=0.0, tolerance=1e-3, max_steps=256)
    rel = float(e.delta[0].abs() / (e.scores[0] - e.baseline_scores[0]).abs())
    assert rel <= 1e-3
    s0 = int(e.steps[0])
    assert s0 > 4 and s0 & (s0 - 1) == 0 and s0 <= 256
    assert int(e.steps[1]) == 4 and torch.equal(e.attributions[1], plain.attributions[1])
    # the same result as asking for that many steps directly
    direct = salience.explain(net, x[:1], "ig", target=0, steps=s0, baseline=0.0)
    assert torch.allclose(direct.attributions[0], e.attributions[0], atol=1e-7)


def test_integrated_gradients_tolerance_warns_when_max_steps_is_reached() -> None:
    """If max_steps is not enough, a warning gives the error left; delta stays the honest error."""
    net = Step()
    x = torch.ones(1, 3, 4, 4)
    with pytest.warns(UserWarning, match=r"tolerance=1e-09 after 8 steps .*image 0"):
        e = salience.explain(net, x, "ig", target=0, steps=4, baseline=0.0, tolerance=1e-9, max_steps=8)
    assert int(e.steps[0]) == 8
    direct = salience.explain(net, x, "ig", target=0, steps=8, baseline=0.0)
    assert torch.equal(direct.delta, e.delta)


@pytest.mark.parametrize("kw,match", [
    ({"tolerance": 0}, "tolerance must be a positive number"),
    ({"tolerance": -0.1}, "tolerance must be a positive number"),
    ({"tolerance": float("nan")}, "tolerance must be a positive number"),
    ({"tolerance": "1%"}, "tolerance must be a positive number"),
    ({"tolerance": 0.01, "max_steps": 8}, "max_steps must be an integer >= 16"),
    ({"quadrature": "simpson"}, "quadrature must be one of"),
])
def test_integrated_gradients_bad_tolerance(kw: dict, match: str) -> None:
    """Bad tolerance / max_steps / rule names are InputErrors that say what is expected."""
    from salience.errors import InputError

    with pytest.raises(InputError, match=match):
        salience.explain(Step(), torch.ones(1, 3, 4, 4), "ig", target=0, steps=16, **kw)
