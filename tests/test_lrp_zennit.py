"""LRP: agreement with Zennit 0.5.1 (Anders et al. 2021; a test-only peer) for every composite and every
single rule Zennit also has, on identical small CNNs, inputs and targets.

Both sides start from the same output relevance, the target logit (one-hot times the output), and return
the relevance at the input: Zennit's hooks turn the gradient that reaches the input into the relevance
itself (each rule's reducer multiplies by the input, or for ``Flat`` / ``WSquare`` returns the
redistributed relevance), so its attribution is ``torch.autograd.grad(out, x, out * onehot)``, not
``grad * x``.  Both relevances are divided by the same number, the largest ``|R|`` of ours, and the largest
difference of the two must be at most ``1e-5``.  Run with ``-s`` to see the figures.

Zennit is given ``stabilizer=1e-9``, the stabiliser our non-epsilon rules use (Zennit's default is
``1e-6``); the epsilon rule's ``epsilon=1e-6`` is the default of both.  The networks: conv, ReLU, max-pool,
conv, ReLU, average pool, flatten, linear, ReLU, linear (``nn.Sequential``, so Zennit's first-layer
composites and ``SequentialMergeBatchNorm`` find the layers in order), with and without biases, and with a
batch norm after the first convolution (folded by us, merged by Zennit's canonizer).

Where the definitions differ (documented in docs/lrp.md, "Agreement with Zennit"):

* z+ (``lrp-zplus`` and the conv rule of ``epsilon-plus`` / ``epsilon-plus-flat``): Zennit's ``ZPlus``
  puts the positive part of the bias, ``b^+``, into ``z^+`` (it is ``AlphaBeta(1, 0)``); ours leaves the
  bias out (deep Taylor's z+, conservative).  With a bias (also a folded batch norm's shift) the two
  differ; they agree with Zennit's ``ZPlus(zero_params=["bias"])``, and the tests check both facts.
* w^2 first layer: Zennit's ``WSquare`` squares the bias too and keeps it in the denominator; ours leaves
  biases out of all three pixel rules (as Zennit's ``Flat`` does).  They agree with
  ``WSquare(zero_params=["bias"])``.
* batch norm: Zennit's canonizer turns the merged batch norm into ``running_var = 1``, ``running_mean = 0``
  but keeps its ``eps``, so the canonized model's output is the original's divided by ``sqrt(1 + eps)``
  (``eps = 1e-5``: a relative ``5e-6``); ours folds exactly.  Within the tolerance, and it is the figure
  the batch-norm cases show.
* gamma: Zennit's generalised gamma rule treats negative inputs and negative outputs with ``w + gamma w^-``;
  ours is Montavon et al.'s rule, ``w + gamma w^+`` throughout.  They agree where the rule was defined for,
  non-negative inputs (pixels in ``[0, 1]`` here, ReLU outputs inside) and outputs whose relevance is
  non-zero (after a ReLU a negative pre-activation gets no relevance; the target logits are checked to be
  positive).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import zennit.composites as zc  # noqa: E402
import zennit.rules as zr  # noqa: E402
import zennit.types as zt  # noqa: E402
from zennit.torchvision import SequentialMergeBatchNorm  # noqa: E402

from salience.attribution.lrp import lrp, lrp_alphabeta, lrp_epsilon, lrp_gamma, lrp_zplus  # noqa: E402

STAB = 1e-9  # our non-epsilon rules' stabiliser, given to Zennit
TOL = 1e-5
NETS = [(False, False), (True, False), (False, True), (True, True)]  # (bias, batch norm)
NET_IDS = ["nobias", "bias", "bn-nobias", "bn-bias"]


def make_net(bias: bool, bn: bool) -> nn.Sequential:
    g = torch.Generator().manual_seed(0)
    layers = ([nn.Conv2d(3, 6, 3, padding=1, bias=bias)] + ([nn.BatchNorm2d(6)] if bn else [])
              + [nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 8, 3, padding=1, bias=bias), nn.ReLU(),
                 nn.AvgPool2d(2), nn.Flatten(), nn.Linear(32, 10, bias=bias), nn.ReLU(),
                 nn.Linear(10, 5, bias=bias)])
    m = nn.Sequential(*layers)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.rand(p.shape, generator=g) - 0.4)
        if bn:
            m[1].running_mean.copy_(torch.rand(6, generator=g) - 0.5)
            m[1].running_var.copy_(torch.rand(6, generator=g) + 0.5)
    return m.eval()


def inputs() -> Any:
    return torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))


def zennit_relevance(model: nn.Module, x: Any, target: Any, composite: Any) -> Any:
    xx = x.clone().requires_grad_(True)
    with composite.context(model) as modified:
        out = modified(xx)
        onehot = torch.zeros_like(out)
        onehot[torch.arange(len(target)), target] = 1.0
        (rel,) = torch.autograd.grad(out, xx, out.detach() * onehot)
    return rel


def base_map() -> list:
    """Zennit's ``layer_map_base`` with our stabiliser (ReLU pass, average pool normalised, BN pass)."""
    return [(zt.Activation, zr.Pass()), (zt.AvgPool, zr.Norm(stabilizer=STAB)), (zt.BatchNorm, zr.Pass())]


def single(rule: Any, first: Any = None) -> Callable[[list | None], Any]:
    """A Zennit composite with ``rule`` on every conv / linear layer (``first`` on the first one)."""
    def build(can: list | None) -> Any:
        if first is None:
            return zc.LayerMapComposite(base_map() + [(zt.Linear, rule)], canonizers=can)
        return zc.SpecialFirstLayerMapComposite(base_map() + [(zt.Linear, rule)], [(zt.Linear, first)],
                                                canonizers=can)
    return build


def plus_nobias(first: Any = None) -> Callable[[list | None], Any]:
    """``epsilon-plus(-flat)`` with Zennit's ZPlus told to leave biases out (our z+)."""
    def build(can: list | None) -> Any:
        layer_map = base_map() + [(zt.Convolution, zr.ZPlus(stabilizer=STAB, zero_params=["bias"])),
                                  (nn.Linear, zr.Epsilon(1e-6))]
        if first is None:
            return zc.LayerMapComposite(layer_map, canonizers=can)
        return zc.SpecialFirstLayerMapComposite(layer_map, [(zt.Linear, first)], canonizers=can)
    return build


def any_bias(bias: bool, bn: bool) -> bool:
    return bias or bn


def later_bias(bias: bool, bn: bool) -> bool:  # the batch norm sits on the first layer, a pixel rule's
    return bias


#: name -> (ours(model, x, target), Zennit's own composite, None or (Zennit's composite with our bias
#: treatment, whether the net has a bias where the treatments differ))
CASES: dict[str, tuple[Callable, Callable, tuple[Callable, Callable] | None]] = {
    "epsilon-gamma-box": (
        lambda m, x, t: lrp(m, x, t, composite="epsilon-gamma-box", low=0.0, high=1.0),
        lambda can: zc.EpsilonGammaBox(low=0.0, high=1.0, stabilizer=STAB, canonizers=can), None),
    "epsilon-plus": (
        lambda m, x, t: lrp(m, x, t, composite="epsilon-plus"),
        lambda can: zc.EpsilonPlus(stabilizer=STAB, canonizers=can), (plus_nobias(), any_bias)),
    "epsilon-plus-flat": (
        lambda m, x, t: lrp(m, x, t, composite="epsilon-plus-flat"),
        lambda can: zc.EpsilonPlusFlat(stabilizer=STAB, canonizers=can),
        (plus_nobias(zr.Flat(stabilizer=STAB)), later_bias)),
    "epsilon-alpha2-beta1": (
        lambda m, x, t: lrp(m, x, t, composite="epsilon-alpha2-beta1"),
        lambda can: zc.EpsilonAlpha2Beta1(stabilizer=STAB, canonizers=can), None),
    "epsilon-alpha2-beta1-flat": (
        lambda m, x, t: lrp(m, x, t, composite="epsilon-alpha2-beta1-flat"),
        lambda can: zc.EpsilonAlpha2Beta1Flat(stabilizer=STAB, canonizers=can), None),
    "Epsilon": (lambda m, x, t: lrp_epsilon(m, x, t), single(zr.Epsilon(1e-6)), None),
    "Gamma": (lambda m, x, t: lrp_gamma(m, x, t), single(zr.Gamma(0.25, stabilizer=STAB)), None),
    "AlphaBeta(2,1)": (lambda m, x, t: lrp_alphabeta(m, x, t, alpha=2.0, beta=1.0),
                       single(zr.AlphaBeta(2.0, 1.0, stabilizer=STAB)), None),
    "AlphaBeta(1,0)": (lambda m, x, t: lrp_alphabeta(m, x, t, alpha=1.0, beta=0.0),
                       single(zr.AlphaBeta(1.0, 0.0, stabilizer=STAB)), None),
    "ZPlus": (lambda m, x, t: lrp_zplus(m, x, t), single(zr.ZPlus(stabilizer=STAB)),
              (single(zr.ZPlus(stabilizer=STAB, zero_params=["bias"])), any_bias)),
    "Flat (first)": (lambda m, x, t: lrp_epsilon(m, x, t, first_rule="flat"),
                     single(zr.Epsilon(1e-6), zr.Flat(stabilizer=STAB)), None),
    "WSquare (first)": (lambda m, x, t: lrp_epsilon(m, x, t, first_rule="w2"),
                        single(zr.Epsilon(1e-6), zr.WSquare(stabilizer=STAB)),
                        (single(zr.Epsilon(1e-6), zr.WSquare(stabilizer=STAB, zero_params=["bias"])),
                         any_bias)),
    "ZBox (first)": (lambda m, x, t: lrp_epsilon(m, x, t, first_rule="zb", low=0.0, high=1.0),
                     single(zr.Epsilon(1e-6), zr.ZBox(0.0, 1.0, stabilizer=STAB)), None),
}


@pytest.mark.parametrize(("bias", "bn"), NETS, ids=NET_IDS)
@pytest.mark.parametrize("name", list(CASES))
def test_agrees_with_zennit(name: str, bias: bool, bn: bool) -> None:
    ours_fn, zennit_own, variant = CASES[name]
    model = make_net(bias, bn)
    x = inputs()
    with torch.no_grad():
        out = model(x)
    target = out.argmax(dim=1)
    # the gamma rules agree only where the relevance enters through positive outputs (docstring)
    assert bool((out[torch.arange(len(target)), target] > 0).all())
    can = (lambda: [SequentialMergeBatchNorm()]) if bn else (lambda: None)
    ours = ours_fn(model, x, target.tolist()).extras["attributions"]
    scale = ours.abs().max()
    assert scale > 0
    own = (ours - zennit_relevance(model, x, target, zennit_own(can()))).abs().max() / scale
    # the model is unchanged by both (Zennit's canonizer restores the batch norm on exit)
    with torch.no_grad():
        torch.testing.assert_close(model(x), out, rtol=0, atol=0)
    # the bias treatments differ only where a bias (or a folded batch norm's shift) is there
    if variant is not None and variant[1](bias, bn):
        zennit_same = variant[0]
        same = (ours - zennit_relevance(model, x, target, zennit_same(can()))).abs().max() / scale
        print(f"\n[zennit] {name:26s} {NET_IDS[NETS.index((bias, bn))]:9s} max|diff|/max|R| = {own:.2e} "
              f"(Zennit's own bias treatment, expected to differ); {same:.2e} with zero_params=['bias']")
        assert own > 1e-3  # the documented difference is real: if Zennit changes, this says so
        assert same <= TOL
    else:
        print(f"\n[zennit] {name:26s} {NET_IDS[NETS.index((bias, bn))]:9s} max|diff|/max|R| = {own:.2e}")
        assert own <= TOL


def test_conservation_shared_by_both() -> None:
    """On a bias-free network both sides' epsilon-plus relevance sums to the target logit (a property the
    comparison cannot show by itself: two implementations could agree on a wrong rule)."""
    model = make_net(False, False)
    x = inputs()
    with torch.no_grad():
        out = model(x)
    target = out.argmax(dim=1)
    score = out[torch.arange(2), target]
    ours = lrp(model, x, target.tolist(), composite="epsilon-plus").extras["attributions"]
    theirs = zennit_relevance(model, x, target, zc.EpsilonPlus(stabilizer=STAB))
    torch.testing.assert_close(ours.sum(dim=(1, 2, 3)), score, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(theirs.sum(dim=(1, 2, 3)), score, rtol=1e-4, atol=1e-5)
