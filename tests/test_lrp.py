"""LRP: agreement with Captum where both define the same rule, conservation, hand-computed values,
residual splits, batch-norm folding and the errors for unsupported operations."""

from __future__ import annotations

import copy
import warnings

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from salience.attribution.lrp import (  # noqa: E402
    lrp,
    lrp_alphabeta,
    lrp_epsilon,
    lrp_gamma,
    lrp_zplus,
)
from salience.errors import InputError, ModelError  # noqa: E402


class Small(nn.Module):
    """Conv-(BN)-ReLU-MaxPool-Conv-ReLU-AdaptiveAvgPool-Flatten-Linear, nn modules used once (Captum's LRP
    needs that), fixed weights."""

    def __init__(self, bias: bool, bn: bool = False) -> None:
        super().__init__()
        self.features = nn.Sequential(*(
            [nn.Conv2d(3, 6, 3, padding=1, bias=bias)] + ([nn.BatchNorm2d(6)] if bn else [])
            + [nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 8, 3, padding=1, bias=bias), nn.ReLU()]))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5, bias=bias)
        g = torch.Generator().manual_seed(3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.rand(p.shape, generator=g) - 0.4)
            if bn:
                self.features[1].running_mean.copy_(torch.rand(6, generator=g) - 0.5)
                self.features[1].running_var.copy_(torch.rand(6, generator=g) + 0.5)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class Residual(nn.Module):
    """An inverted-residual block as MobileNetV2's (expand 1x1, ReLU6, depthwise 3x3, ReLU6, project 1x1,
    ``x + block(x)``), bias-free, then pool and linear."""

    def __init__(self, bias: bool = False) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1, bias=bias)
        self.block = nn.Sequential(nn.Conv2d(4, 8, 1, bias=bias), nn.ReLU6(), nn.Conv2d(8, 8, 3, padding=1, groups=8,
                                   bias=bias), nn.ReLU6(), nn.Conv2d(8, 4, 1, bias=bias))
        self.fc = nn.Linear(4, 3, bias=bias)
        g = torch.Generator().manual_seed(7)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.rand(p.shape, generator=g) - 0.3)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.stem(x))
        h = h + self.block(h)
        return self.fc(h.mean(dim=(2, 3)))


X = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(5))
T = [0, 1, 2]


def _captum(net: nn.Module, rule: object) -> torch.Tensor:
    from captum.attr import LRP

    net = copy.deepcopy(net)
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.rule = rule() if callable(rule) else rule  # type: ignore[operator]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LRP(net).attribute(X.clone(), target=torch.tensor(T)).detach()


#: Captum and salience agree to float32 rounding where the rule is the same
TOL = 1e-6


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("eps", [1e-9, 0.1])
def test_epsilon_matches_captum(bias: bool, eps: float) -> None:
    from captum.attr._utils.lrp_rules import EpsilonRule

    net = Small(bias)
    ours = lrp_epsilon(net, X, target=T, epsilon=eps).attributions
    theirs = _captum(net, lambda: EpsilonRule(epsilon=eps))
    assert float(theirs.abs().max()) > 1e-2
    assert float((ours - theirs).abs().max()) < TOL


def test_gamma_and_alpha1_beta0_match_captum_without_biases() -> None:
    """Captum's GammaRule leaves the bias unchanged and its Alpha1_Beta0 keeps the raw bias in z+, where
    Montavon et al. boost / split the bias as a weight; on bias-free layers with non-negative inputs the
    definitions coincide."""
    from captum.attr._utils.lrp_rules import Alpha1_Beta0_Rule, GammaRule

    net = Small(False)
    d = lrp_gamma(net, X, target=T, gamma=0.25).attributions - _captum(net, lambda: GammaRule(gamma=0.25))
    assert float(d.abs().max()) < TOL
    d = lrp_alphabeta(net, X, target=T).attributions - _captum(net, Alpha1_Beta0_Rule)
    assert float(d.abs().max()) < TOL


def test_batchnorm_rule_matches_captum_and_fold_is_the_folded_network() -> None:
    from captum.attr._utils.lrp_rules import EpsilonRule

    net = Small(True, bn=True)
    ours = lrp_epsilon(net, X, target=T, epsilon=1e-9, batchnorm="rule").attributions
    assert float((ours - _captum(net, lambda: EpsilonRule(epsilon=1e-9))).abs().max()) < TOL
    # folding: the same as LRP on the network with the BN merged into the convolution by hand
    folded = Small(True)
    conv, bn = net.features[0], net.features[1]
    s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    with torch.no_grad():
        folded.load_state_dict({k.replace("features.2", "features.1").replace("features.3", "features.2")
                                .replace("features.4", "features.3").replace("features.5", "features.4"): v
                                for k, v in net.state_dict().items() if not k.startswith("features.1.")
                                and not k.startswith("features.0.")}, strict=False)
        folded.features[0].weight.copy_(conv.weight * s[:, None, None, None])
        folded.features[0].bias.copy_((conv.bias - bn.running_mean) * s + bn.bias)
    for f in (lrp_epsilon, lrp_gamma, lrp_zplus):
        a = f(net, X, target=T).attributions
        b = f(folded, X, target=T).attributions
        assert float((a - b).abs().max()) < 1e-5


CONSERVATIVE = {
    "epsilon": lambda n, x: lrp_epsilon(n, x, target=T, epsilon=1e-12),
    "gamma": lambda n, x: lrp_gamma(n, x, target=T, gamma=0.5),
    "alpha2beta1": lambda n, x: lrp_alphabeta(n, x, target=T, alpha=2.0, beta=1.0),
    "zplus": lambda n, x: lrp_zplus(n, x, target=T),
    "eps-gamma-box": lambda n, x: lrp(n, x, target=T),  # z^B at the first layer
    "eps-plus-flat": lambda n, x: lrp(n, x, target=T, composite="epsilon-plus-flat"),
    "eps-a2b1-w2": lambda n, x: lrp(n, x, target=T, composite="epsilon-alpha2-beta1", first_rule="w2"),
}
#: alpha-beta conserves only where every neuron has contributions of both signs (z^- = 0 drops the beta
#: term and leaves alpha R); the depthwise 3x3 layer of the residual model has such neurons
CASES = [(rule, model) for rule in CONSERVATIVE for model in ("small", "residual")
         if not (model == "residual" and rule in ("alpha2beta1", "eps-a2b1-w2"))]


@pytest.mark.parametrize("rule,model", CASES)
def test_conservation_without_biases(rule: str, model: str) -> None:
    """Relevance at the pixels sums to the target logit (no bias absorbs any, eps -> 0), also through a
    residual addition, ReLU6, depthwise convolution, max and average pooling."""
    net = Small(False) if model == "small" else Residual()
    e = CONSERVATIVE[rule](net, X)
    assert float(e.scores.abs().min()) > 0.05
    rel = e.attributions.reshape(3, -1).sum(dim=1)
    assert torch.allclose(rel, e.scores, rtol=1e-4, atol=1e-6)
    assert float(e.delta.abs().max()) < 1e-4 * float(e.scores.abs().max()) + 1e-6


def test_alpha_beta_over_attributes_where_a_neuron_has_no_negative_part() -> None:
    """The documented limit of alpha-beta's conservation, measured: on the residual model alpha=2, beta=1
    gives more relevance than the score (the excess is alpha - 1 times what reaches such neurons)."""
    e = lrp_alphabeta(Residual(), X, target=T, alpha=2.0, beta=1.0)
    assert bool((e.attributions.reshape(3, -1).sum(dim=1) > e.scores + 1e-3).any())


def test_biases_absorb_relevance() -> None:
    """With biases the sum differs from the logit by exactly what the biases absorb (a real effect the
    conservation test would miss if the rule ignored biases)."""
    e = lrp_epsilon(Small(True), X, target=T, epsilon=1e-9)
    assert float(e.delta.abs().max()) > 1e-3


def test_hand_computed_values() -> None:
    """y = w . x on two inputs, x = (1, 2), w = (3, -1), y = 1: every rule by hand."""
    net = nn.Sequential(nn.Flatten(), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([[3.0, -1.0]]))
    x = torch.tensor([1.0, 2.0]).reshape(1, 2, 1, 1)

    def rel(e):
        return [round(v, 5) for v in e.attributions.flatten().tolist()]

    assert rel(lrp_epsilon(net, x, target=0, epsilon=1e-9)) == [3.0, -2.0]       # z_i / z * y
    assert rel(lrp_epsilon(net, x, target=0, epsilon=1.0)) == [1.5, -1.0]        # z_i / (z + 1) * y
    assert rel(lrp_gamma(net, x, target=0, gamma=1.0)) == [1.5, -0.5]            # w' = (6, -1): 6, -2 over 4
    assert rel(lrp_alphabeta(net, x, target=0, alpha=2.0, beta=1.0)) == [2.0, -1.0]  # 2*3/3, -1*(-2)/(-2)
    assert rel(lrp_zplus(net, x, target=0)) == [1.0, 0.0]
    assert rel(lrp_epsilon(net, x, target=0, first_rule="w2")) == [0.9, 0.1]     # 9 / 10, 1 / 10
    assert rel(lrp_epsilon(net, x, target=0, first_rule="flat")) == [0.5, 0.5]
    # z^B with l = 0, h = 4: (x w - l w+ - h w-) = (3, -2 + 4) = (3, 2), shares of y = 1
    assert rel(lrp_epsilon(net, x, target=0, first_rule="zb", low=0.0, high=4.0)) == [0.6, 0.4]


def test_residual_split_is_proportional() -> None:
    """At ``a + b`` relevance splits as a / (a + b) and b / (a + b): y = x1 + 3 x1 with x1 = 2 gives 1/4, 3/4."""

    class Add(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(1, 1, bias=False)
            self.b = nn.Linear(1, 1, bias=False)
            with torch.no_grad():
                self.a.weight.fill_(1.0)
                self.b.weight.fill_(3.0)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            f = x.flatten(1)
            return self.a(f) + self.b(f)  # both from the same input: sums 2 + 6 = 8

    e = lrp_epsilon(Add(), torch.full((1, 1, 1, 1), 2.0), target=0, epsilon=1e-12)
    assert abs(float(e.attributions.sum()) - 8.0) < 1e-5


@pytest.mark.slow
def test_torchvision_mobilenet_v2_runs_and_restores() -> None:
    """MobileNetV2 (folded BN, ReLU6, inverted residual additions, dropout, adaptive pooling, flatten):
    finite relevance, the model unchanged afterwards."""
    torchvision = pytest.importorskip("torchvision")
    net = torchvision.models.mobilenet_v2(weights=None, num_classes=4).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_((torch.rand(p.shape, generator=g) - 0.45) * 0.5)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.rand(1, 3, 32, 32, generator=g)
    with torch.no_grad():
        logits = net(x)
    e = lrp(net, x, target=1)
    assert torch.allclose(e.scores, logits[:, 1], rtol=1e-4, atol=1e-5)
    assert bool(torch.isfinite(e.attributions).all()) and float(e.attributions.abs().max()) > 0
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_unsupported_layers_are_named() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.SiLU(), nn.Flatten(), nn.Linear(4 * 14 * 14, 2))
    with pytest.raises(ModelError, match=r"silu .*layer '1' \(SiLU\).*gradient method"):
        lrp_epsilon(net, X)

    class Gate(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.fc = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.conv(x)
            return self.fc((h * torch.sigmoid(h)).mean(dim=(2, 3)))

    with pytest.raises(ModelError, match="sigmoid"):
        lrp_epsilon(Gate(), X)
    with pytest.raises(ModelError, match="LayerNorm|layer_norm"):
        lrp_epsilon(nn.Sequential(nn.Conv2d(3, 4, 3), nn.LayerNorm([4, 14, 14]), nn.Flatten(),
                                  nn.Linear(4 * 14 * 14, 2)), X)


def test_bad_parameters() -> None:
    net = Small(False)
    with pytest.raises(InputError, match="alpha - beta must be 1"):
        lrp_alphabeta(net, X, alpha=2.0, beta=0.0)
    with pytest.raises(InputError, match="first_rule"):
        lrp_epsilon(net, X, first_rule="box")
    with pytest.raises(InputError, match="composite"):
        lrp(net, X, composite="epsilon")
    with pytest.raises(InputError, match="epsilon"):
        lrp_epsilon(net, X, epsilon=-1)
    with pytest.raises(InputError, match="takes no layer"):
        lrp_epsilon(net, X, layer="features.0")
    with pytest.raises(InputError, match="batchnorm"):
        lrp_epsilon(net, X, batchnorm="skip")


def test_a_constant_operand_absorbs_its_share() -> None:
    """``f + 3`` with f = 1: the input keeps 1/4 of the score 4; ``10 - f``: -1/9 of 9 (the sign of its
    coefficient)."""

    class Shift(nn.Module):
        def __init__(self, rsub: bool) -> None:
            super().__init__()
            self.fc = nn.Linear(1, 1, bias=False)
            self.rsub = rsub
            with torch.no_grad():
                self.fc.weight.fill_(1.0)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            f = self.fc(x.flatten(1))
            return 10.0 - f if self.rsub else f + 3.0

    x = torch.ones(1, 1, 1, 1)
    e = lrp_epsilon(Shift(False), x, target=0, epsilon=1e-12)
    assert abs(float(e.scores[0]) - 4.0) < 1e-6 and abs(float(e.attributions.sum()) - 1.0) < 1e-5
    e = lrp_epsilon(Shift(True), x, target=0, epsilon=1e-12)
    assert abs(float(e.scores[0]) - 9.0) < 1e-6 and abs(float(e.attributions.sum()) + 1.0) < 1e-5


def test_in_place_residual_equals_out_of_place() -> None:
    """ResNet's ``out += identity`` (reaching the mode as ``Tensor.add_``) on a folded conv + BN output, and
    an in-place ReLU, give the relevance of the out-of-place network: the layer that read that output as
    its z keeps the value from before the change."""

    class Block(nn.Module):
        def __init__(self, inplace: bool) -> None:
            super().__init__()
            self.inplace = inplace
            self.stem = nn.Conv2d(3, 4, 3, padding=1)
            self.conv = nn.Conv2d(4, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.fc = nn.Linear(4, 3)
            g = torch.Generator().manual_seed(2)
            with torch.no_grad():
                for p in self.parameters():
                    p.copy_(torch.rand(p.shape, generator=g) - 0.3)
                self.bn.running_var.fill_(0.7)
            self.eval()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = torch.relu(self.stem(x))
            out = self.bn(self.conv(h))
            if self.inplace:
                out += h
                out = torch.nn.functional.relu(out, inplace=True)
            else:
                out = torch.relu(out + h)
            return self.fc(out.mean(dim=(2, 3)))

    a = lrp_epsilon(Block(True), X, target=T).attributions
    b = lrp_epsilon(Block(False), X, target=T).attributions
    assert float(b.abs().max()) > 1e-3
    assert float((a - b).abs().max()) < 1e-6


# ---- the epsilon rule as a modified gradient (EpsilonFlowMode) ----------------------------------------------

def _relevance_flow(monkeypatch, fn, *args, **kw):
    """The same call with the relevance itself flowing back (LRPMode), as every other rule runs."""
    import importlib

    lrp_mod = importlib.import_module("salience.attribution.lrp")
    with monkeypatch.context() as m:
        m.setattr(lrp_mod, "_gradient_flow", lambda *_: False)
        return fn(*args, **kw)


def _seeded(make):
    torch.manual_seed(0)
    net = make().eval()
    with torch.no_grad():  # running statistics that are not the identity, so folding matters
        for mod in net.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.3, 0.3)
                mod.running_var.uniform_(0.5, 2.0)
    return net


@pytest.mark.parametrize("arch, kw", [(a, k) for a in ("resnet18", "mobilenet_v2", "vgg11")
                                      for k in ({}, {"epsilon": 0.25}, {"epsilon": 0.0}, {"batchnorm": "rule"})
                                      if not (a == "resnet18" and k)  # (the relevance flow refuses resnet's
                                      ] + [("resnet18", {"epsilon": 0.25})])  # in-place sums under "rule")
def test_epsilon_as_a_modified_gradient_equals_the_relevance_flow(monkeypatch, arch, kw):
    """lrp-epsilon runs as the gradient times z / stab(z) per layer (x * g at the end); in float64 every
    relevance equals the relevance flow's (LRPMode, the mechanism of the other rules) to 1e-9 of the largest,
    on ResNet (folded batch norms, residual sums, in-place ReLUs), MobileNetV2 (ReLU6, depthwise
    convolutions) and VGG (dropout, max-pooling).  (In float32 the two orders of arithmetic differ by
    rounding: up to 2e-5 of the largest on the random MobileNetV2 under batchnorm="rule", measured.)"""
    import torchvision

    net = _seeded(getattr(torchvision.models, arch)).double()
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    fast = lrp_epsilon(net, x, target=[3, 7], **kw)
    slow = _relevance_flow(monkeypatch, lrp_epsilon, net, x, target=[3, 7], **kw)
    a, b = fast.extras["attributions"], slow.extras["attributions"]
    assert float(b.abs().max()) > 0
    assert float((a - b).abs().max()) <= 1e-9 * float(b.abs().max())
    torch.testing.assert_close(fast.scores, slow.scores)


def test_epsilon_flow_in_float32_agrees_with_the_relevance_flow(monkeypatch):
    import torchvision

    net = _seeded(torchvision.models.resnet18)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    a = lrp_epsilon(net, x, target=[3, 7]).extras["attributions"]
    b = _relevance_flow(monkeypatch, lrp_epsilon, net, x, target=[3, 7]).extras["attributions"]
    assert float((a - b).abs().max()) <= 1e-5 * float(b.abs().max())


def test_epsilon_flow_runs_where_the_relevance_flow_refused_an_in_place_op(monkeypatch):
    """ResNet-18 with its batch norms under the rule (not folded): the relevance flow cannot keep the norms'
    outputs, which the in-place ReLUs and ``+=`` overwrite, and refuses; the gradient flow needs no saved
    output, and its relevance equals the relevance flow's on the same network written out of place (float64,
    1e-9 of the largest)."""
    import types

    import torchvision

    net = _seeded(torchvision.models.resnet18).double()
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with pytest.raises(ModelError, match="in place"):
        _relevance_flow(monkeypatch, lrp_epsilon, net, x, target=1, batchnorm="rule")
    fast = lrp_epsilon(net, x, target=1, batchnorm="rule").extras["attributions"]

    def out_of_place(self, t):  # torchvision's BasicBlock.forward without in-place operations
        out = torch.nn.functional.relu(self.bn1(self.conv1(t)))
        out = self.bn2(self.conv2(out))
        return torch.nn.functional.relu(out + (t if self.downsample is None else self.downsample(t)))

    for mod in net.modules():
        if isinstance(mod, torchvision.models.resnet.BasicBlock):
            mod.forward = types.MethodType(out_of_place, mod)
        if isinstance(mod, nn.ReLU):
            mod.inplace = False
    slow = _relevance_flow(monkeypatch, lrp_epsilon, net, x, target=1, batchnorm="rule").extras["attributions"]
    assert float(slow.abs().max()) > 0
    assert float((fast - slow).abs().max()) <= 1e-9 * float(slow.abs().max())


def test_epsilon_flow_leaves_no_hook_and_refuses_what_the_relevance_flow_refuses():
    """After a call (also one that raised) no module hook, global hook or torch function mode is left; an
    operation without a rule is refused with the layer's name, as by the relevance flow."""
    net = Small(True)
    before = (dict(nn.modules.module._global_forward_pre_hooks), dict(nn.modules.module._global_forward_hooks))
    lrp_epsilon(net, X, target=T)

    class Gate(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.act = nn.SiLU()

        def forward(self, x):
            return self.act(self.conv(x)).mean(dim=(2, 3))

    with pytest.raises(ModelError, match=r"silu.*'act'"):
        lrp_epsilon(Gate(), X, target=0)
    after = (dict(nn.modules.module._global_forward_pre_hooks), dict(nn.modules.module._global_forward_hooks))
    assert after == before
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
    assert torch.overrides._get_current_function_mode_stack() == []


def test_epsilon_flow_buffers_are_reused_safely(monkeypatch):
    """The factors' tensors kept between calls (per thread) change nothing: repeated and interleaved calls,
    a call after one that raised mid-forward, two threads at once (each with its own copies of the models)
    and no kept buffers at all give the same relevance bit for bit."""
    import importlib
    import threading

    import torchvision

    lrp_mod = importlib.import_module("salience.attribution.lrp")
    small = Small(True)
    res = _seeded(torchvision.models.resnet18)
    xr = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(4))

    def both():
        return (lrp_epsilon(small, X, target=T).extras["attributions"],
                lrp_epsilon(res, xr, target=2).extras["attributions"])

    first = both()
    kept = lrp_mod._buffers().bytes
    assert kept > 0
    assert all(torch.equal(a, b) for a, b in zip(both(), first))
    assert lrp_mod._buffers().bytes == kept  # the same tensors again, not new ones

    class Breaks(nn.Module):  # a convolution (whose factor takes a buffer), then an op without a rule
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 6, 3, padding=1)

        def forward(self, x):
            return torch.sigmoid(torch.relu(self.conv(x))).mean(dim=(2, 3))

    with pytest.raises(ModelError, match="sigmoid"):
        lrp_epsilon(Breaks(), X, target=0)
    assert all(torch.equal(a, b) for a, b in zip(both(), first))

    results: list = []

    def worker():  # its own copies: a call scopes flags onto its model, so one model serves one call at a time
        nets = (copy.deepcopy(small), copy.deepcopy(res))
        results.extend((lrp_epsilon(nets[0], X, target=T).extras["attributions"],
                        lrp_epsilon(nets[1], xr, target=2).extras["attributions"]) for _ in range(3))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6 and all(torch.equal(a, b) for r in results for a, b in zip(r, first))
    monkeypatch.setattr(lrp_mod, "_BUFFER_CAP", 0)  # every factor in a fresh tensor
    lrp_mod._BUFFER_TLS.__dict__.clear()
    assert all(torch.equal(a, b) for a, b in zip(both(), first))
