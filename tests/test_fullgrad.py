"""FullGrad: hand-computed terms on a tiny fixed network, and agreement with pytorch-grad-cam 1.5.7's
FullGrad (its per-channel rescaling, ``scaling="channel"``) on the same model, input and target."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import salience
from salience.errors import InputError, ModelError

TOL = 1e-5


def _minmax(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    lo = a.reshape(a.shape[0], -1).min(axis=1)[:, None, None]
    hi = a.reshape(a.shape[0], -1).max(axis=1)[:, None, None]
    return (a - lo) / (hi - lo)


def _mm(t: torch.Tensor) -> torch.Tensor:
    return (t - t.min()) / (t.max() - t.min())


class Lin(torch.nn.Module):
    """1x1 conv (1 -> 2 channels, weights 1 and -1, biases 0.5 and 2) -> linear on the 8 values."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 1)
        self.fc = torch.nn.Linear(8, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
            self.conv.bias.copy_(torch.tensor([0.5, 2.0]))
            self.fc.weight.copy_(torch.tensor([[1.0, -1.0, 0.5, 2.0, 0.0, 1.0, -0.5, 1.0]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).flatten(1))


def test_fullgrad_hand_computed() -> None:
    """A linear network: grad_x = sum_c w_c G_c, bias term b_c G_c; every term |.| and min-max rescaled
    (per tensor, or per channel), summed, then the sum min-max normalised."""
    x = torch.tensor([[[[1.0, -2.0], [3.0, 0.5]]]])
    g0 = torch.tensor([[1.0, -1.0], [0.5, 2.0]])
    g1 = torch.tensor([[0.0, 1.0], [-0.5, 1.0]])
    inp = (1.0 * g0 - 1.0 * g1) * x[0, 0]
    b0, b1 = (0.5 * g0).abs(), (2.0 * g1).abs()
    both = torch.stack([b0, b1])
    per_tensor = _mm(inp.abs()) + ((both - both.min()) / (both.max() - both.min())).sum(dim=0)
    per_channel = _mm(inp.abs()) + _mm(b0) + _mm(b1)
    e = salience.explain(Lin(), x, "fullgrad", target=0)
    assert e.extras["terms"] == 1
    assert torch.allclose(e.maps[0], _mm(per_tensor), atol=1e-6)
    e = salience.explain(Lin(), x, "fullgrad", target=0, scaling="channel")
    assert torch.allclose(e.maps[0], _mm(per_channel), atol=1e-6)


def test_fullgrad_completeness_of_the_raw_terms() -> None:
    """The decomposition the map rests on: input x gradient plus bias x gradient sum to the score of a
    piecewise-linear network with no other bias (here the only bias is the conv's)."""
    net, x = Lin(), torch.rand(1, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    e = salience.explain(net, x, "fullgrad", target=0)
    g = net.fc.weight.detach().view(2, 2, 2)
    bias_part = float((net.conv.bias.detach()[:, None, None] * g).sum())
    assert float(e.attributions.sum()) + bias_part == pytest.approx(float(e.scores[0]), abs=1e-5)


def test_fullgrad_errors() -> None:
    """FullGrad refuses a layer, an unknown scaling and a model with no bias to use."""
    with pytest.raises(InputError, match="layer"):
        salience.explain(Lin(), torch.rand(1, 1, 2, 2), "fullgrad", layer="conv")
    with pytest.raises(InputError, match="scaling"):
        salience.explain(Lin(), torch.rand(1, 1, 2, 2), "fullgrad", scaling="pixel")
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    with pytest.raises(ModelError, match="bias"):
        salience.explain(net, torch.rand(1, 1, 2, 2), "fullgrad")


pgc = pytest.importorskip("pytorch_grad_cam")
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget


class Net(torch.nn.Module):
    """Conv-BN-ReLU x 2 with biases, global average pool, linear head (fixed weights)."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(21)
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.BatchNorm2d(6), torch.nn.ReLU(),
            torch.nn.MaxPool2d(2), torch.nn.Conv2d(6, 8, 3, padding=1), torch.nn.BatchNorm2d(8),
            torch.nn.ReLU(),
        )
        self.fc = torch.nn.Linear(8, 5)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_((torch.rand(p.shape, generator=g) - 0.4) * 0.8)
            for m in self.features:
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.2)
                    m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))


def _peer(net: torch.nn.Module, x: torch.Tensor, t: list[int]) -> np.ndarray:
    with pgc.FullGrad(model=net, target_layers=[]) as cam:
        return cam(input_tensor=x.clone(), targets=[ClassifierOutputTarget(i) for i in t])


def test_fullgrad_vs_pytorch_grad_cam_small() -> None:
    """pytorch-grad-cam rescales with (t - min) / (max + 1e-7); the head is scaled up so that the 1e-7 is
    negligible and both compute the same quantity."""
    net = Net().eval()
    with torch.no_grad():
        net.fc.weight.mul_(1e4)
    x = torch.rand(2, 3, 20, 20, generator=torch.Generator().manual_seed(22))
    e = salience.explain(net, x, "fullgrad", target=[1, 3], scaling="channel")
    ref = _peer(net, x, [1, 3])
    assert e.extras["terms"] == 4
    assert np.abs(_minmax(e.maps.numpy()) - _minmax(ref)).max() <= TOL


@pytest.mark.slow
def test_fullgrad_vs_pytorch_grad_cam_mobilenet_v2() -> None:
    """The default model (52 batch-norm biases), a real photo, its top class.  Scaling the head by 1e4
    leaves salience's normalised map unchanged and makes the peer's 1e-7 negligible (unscaled, the
    difference is 3.9e-4, all of it that epsilon)."""
    import copy

    from skimage import data

    lm = salience.load_model()
    x = lm.preprocess(data.astronaut().astype(np.float32) / 255)
    net = copy.deepcopy(lm.model).eval()
    with torch.no_grad():
        net.classifier[-1].weight.mul_(1e4)
    e = salience.explain(net, x, "fullgrad", scaling="channel")
    assert e.extras["terms"] == 52
    ref = _peer(net, x, e.targets.tolist())
    assert np.abs(_minmax(e.maps.numpy()) - _minmax(ref)).max() <= TOL
    plain = salience.explain(lm, x, "fullgrad", scaling="channel")
    assert float((plain.maps - e.maps).abs().max()) <= 1e-5
