"""Deconvnet: a hand-computed value, the scoped override (restored, functional ReLU covered, smooth
activations refused) and agreement with Captum 0.9's Deconvolution."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import salience
from salience.errors import ModelError


class Two(torch.nn.Module):
    """y = v . relu(W x) on a 1x1x1x2 'image': deconvnet = W^T relu(v), whatever relu's input sign."""

    def __init__(self, functional: bool | str = False) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(2, 3, bias=False)
        self.act = torch.nn.ReLU()
        self.fc2 = torch.nn.Linear(3, 1, bias=False)
        self.functional = functional
        with torch.no_grad():
            self.fc1.weight.copy_(torch.tensor([[1.0, -1.0], [2.0, 0.5], [-1.0, -1.0]]))
            self.fc2.weight.copy_(torch.tensor([[1.0, -2.0, 3.0]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x.flatten(1))
        if self.functional == "inplace":
            h.relu_()  # the return value is dropped: the call must act in place
        else:
            h = torch.relu(h) if self.functional else self.act(h)
        return self.fc2(h)


@pytest.mark.parametrize("functional", [False, True])
def test_deconvnet_hand_computed(functional: bool) -> None:
    """x = (1, 2): W x = (-1, 3, -3), so the plain gradient is (-4, -1); the deconvnet rule passes
    relu(v) = (1, 0, 3) through every unit: W^T (1, 0, 3) = (-2, -4)."""
    x = torch.tensor([[[[1.0, 2.0]]]])
    e = salience.explain(Two(functional), x, "deconvnet", target=0)
    assert torch.allclose(e.attributions.flatten(), torch.tensor([-2.0, -4.0]))
    assert torch.allclose(e.maps.flatten(), torch.tensor([0.5, 1.0]))
    g = salience.explain(Two(functional), x, "gradient", target=0)
    assert torch.allclose(g.extras["attributions"].flatten(), torch.tensor([-4.0, -1.0]))


def test_deconvnet_refuses_smooth_activations_and_models_without_rectifiers() -> None:
    """Deconvnet refuses SiLU (no rectifier rule) and models without any rectifier, naming the cause."""
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.SiLU(), torch.nn.Flatten(),
                              torch.nn.LazyLinear(2))
    x = torch.rand(1, 3, 6, 6)
    net(x)
    with pytest.raises(ModelError, match="silu"):
        salience.explain(net, x, "deconvnet")
    lin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(108, 2))
    with pytest.raises(ModelError, match="rectifier"):
        salience.explain(lin, x, "deconvnet")


captum_attr = pytest.importorskip("captum.attr")


class Net(torch.nn.Module):
    """A small CNN with nn.ReLU modules (Captum's Deconvolution hooks nn.ReLU modules) and max pooling."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(31)
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(8, 12, 3, padding=1), torch.nn.ReLU(),
        )
        self.fc = torch.nn.Linear(12, 5)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_((torch.rand(p.shape, generator=g) - 0.5) * 0.8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))


def test_deconvnet_vs_captum() -> None:
    """The (B, C, H, W) attributions equal Captum's Deconvolution, relative to their largest value."""
    net = Net().eval()
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(32))
    e = salience.explain(net, x, "deconvnet", target=[0, 3])
    ref = captum_attr.Deconvolution(net).attribute(x.clone(), target=[0, 3])
    scale = float(ref.abs().max())
    assert scale > 0
    assert float((e.attributions - ref).abs().max()) / scale <= 1e-5
    plain = salience.explain(net, x, "gradient", target=[0, 3]).extras["attributions"]
    assert float((plain - ref).abs().max()) / scale > 1e-2  # the rule matters on this net


# ---- DeepLIFT (rescale) --------------------------------------------------------------------------


def test_deeplift_hand_computed() -> None:
    """Two(): x = (1, 2), x0 = 0.  Hidden pre-activations W x = (-1, 3, -3), reference 0: the rescale
    multipliers are relu(z)/z = (0, 1, 0), so the attribution is x * (W^T diag(0, 1, 0) v) =
    (1, 2) * (-2 * (2, 0.5)) = (-4, -2), summing to f(x) - f(x0) = -6."""
    x = torch.tensor([[[[1.0, 2.0]]]])
    for functional in (False, True, "inplace"):
        e = salience.explain(Two(functional), x, "deeplift", target=0)
        assert torch.allclose(e.attributions.flatten(), torch.tensor([-4.0, -2.0]))
        assert float(e.scores[0]) == pytest.approx(-6.0)
        assert abs(float(e.delta[0])) < 1e-6
    # a reference where the unit changes sign: z0 = W x0 with x0 = (-1, -1): (0, -2.5, 2)
    e = salience.explain(Two(), x, "deeplift", target=0, baseline=torch.tensor([-1.0, -1.0]).view(1, 1, 1, 2))
    assert abs(float(e.delta[0])) < 1e-6


captum_attr = pytest.importorskip("captum.attr")


class AvgNet(torch.nn.Module):
    """Conv-ReLU-Conv-ReLU with average pooling (elementwise nonlinearities only), nn.ReLU modules."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(41)
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AvgPool2d(2),
            torch.nn.Conv2d(8, 12, 3, padding=1), torch.nn.BatchNorm2d(12), torch.nn.ReLU(),
        )
        self.fc = torch.nn.Linear(12, 5)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_((torch.rand(p.shape, generator=g) - 0.5) * 0.8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))


@pytest.mark.parametrize("baseline", ["zeros", "noise"])
def test_deeplift_vs_captum(baseline: str) -> None:
    """Attributions equal Captum's DeepLift (rescale rule) for the same reference, and sum to the delta."""
    net = AvgNet().eval()
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(42))
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(43))
    x0 = torch.zeros_like(x) if baseline == "zeros" else noise
    e = salience.explain(net, x, "deeplift", target=[0, 3], baseline=x0)
    ref = captum_attr.DeepLift(net).attribute(x.clone(), baselines=x0.clone(), target=[0, 3])
    scale = float(ref.abs().max())
    assert scale > 0
    assert float((e.attributions - ref).abs().max()) / scale <= 1e-5
    assert float(e.delta.abs().max()) <= 1e-4
