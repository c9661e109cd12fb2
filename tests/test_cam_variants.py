"""EigenCAM, Eigen-Grad-CAM, XGrad-CAM and Ablation-CAM: hand-computed values on tiny fixed networks and
agreement with pytorch-grad-cam 1.5.7 on the same model, input, target and layer (max abs difference
<= 1e-5 after min-max normalisation of both)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import salience
from _models import Net  # noqa: E402
from salience.attribution.cam_variants import principal_projection
from salience.errors import InputError

TOL = 1e-5


def _minmax(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    out = np.empty_like(a)
    for i in range(a.shape[0]):
        lo, hi = a[i].min(), a[i].max()
        out[i] = (a[i] - lo) / (hi - lo) if hi > lo else 0 * a[i]
    return out


class Spatial(torch.nn.Module):
    """x (1 channel, 2x2) -> 1x1 conv to two channels (weights 1 and 2, no bias) -> ReLU -> linear on all
    8 values: the gradient at the layer is the linear layer's weight, so every rule is hand-computable."""

    def __init__(self, w: list[float]) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 1, bias=False)
        self.act = torch.nn.ReLU()
        self.fc = torch.nn.Linear(8, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, 2.0]).view(2, 1, 1, 1))
            self.fc.weight.copy_(torch.tensor([w]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.act(self.conv(x)).flatten(1))


U = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])  # the input, (1, 1, 2, 2)
W = [1.0, -1.0, 0.5, 2.0, 0.0, 1.0, -0.5, 1.0]  # fc weights: channel 0 then channel 1, row-major


def test_eigencam_hand_computed() -> None:
    """Activations u and 2u (rank one): centred projection is (u - mean u) * |(1, 2)|, sign towards more
    activation; after ReLU only the two positions above the mean remain."""
    e = salience.explain(Spatial(W), U, "eigencam", target=0, layer="act")
    expected = torch.tensor([[0.0, 0.0], [0.5, 1.5]]) * 5 ** 0.5
    assert torch.allclose(e.extras["cam"][0], expected, atol=1e-6)
    # uncentred (the paper's SVD): v = (1, 2)/sqrt(5), projection u * sqrt(5), all positive
    e = salience.explain(Spatial(W), U, "eigencam", target=0, layer="act", center=False)
    assert torch.allclose(e.extras["cam"][0], U[0, 0] * 5 ** 0.5, atol=1e-5)


def test_principal_projection_sign_is_fixed() -> None:
    """Negating nothing but the SVD's arbitrary sign cannot change the result: the projection correlates
    positively with the channel-summed activation, for random maps too."""
    a = torch.rand(3, 5, 4, 6, generator=torch.Generator().manual_seed(0))
    p = principal_projection(a)
    total = a.double().sum(dim=1)
    total = total - total.mean(dim=(1, 2), keepdim=True)
    assert bool(((p * total).sum(dim=(1, 2)) > 0).all())


def test_xgradcam_hand_computed() -> None:
    """w_c = sum(A_c * G_c) / sum(A_c) with G the fc weights; map sum_c w_c A_c, then ReLU."""
    a0, a1 = U[0, 0], 2 * U[0, 0]
    g0, g1 = torch.tensor(W[:4]).view(2, 2), torch.tensor(W[4:]).view(2, 2)
    w0 = float((a0 * g0).sum() / a0.sum())  # (1 - 2 + 1.5 + 8) / 10 = 0.85
    w1 = float((a1 * g1).sum() / a1.sum())  # (0 + 4 - 3 + 8) / 20 = 0.45
    assert w0 == pytest.approx(0.85) and w1 == pytest.approx(0.45)
    e = salience.explain(Spatial(W), U, "xgradcam", target=0, layer="act")
    assert torch.allclose(e.extras["cam"][0], torch.relu(w0 * a0 + w1 * a1), atol=1e-6)


def test_ablationcam_hand_computed() -> None:
    """Zeroing channel c removes its linear contribution y_c' = sum(G_c A_c): w_c = that / y."""
    a0, a1 = U[0, 0], 2 * U[0, 0]
    g0, g1 = torch.tensor(W[:4]).view(2, 2), torch.tensor(W[4:]).view(2, 2)
    c0, c1 = float((g0 * a0).sum()), float((g1 * a1).sum())  # 8.5 and 9.0
    y = c0 + c1
    e = salience.explain(Spatial(W), U, "ablationcam", target=0, layer="act", batch_size=1)
    assert float(e.scores[0]) == pytest.approx(y)
    assert torch.allclose(e.extras["cam"][0], torch.relu(c0 / y * a0 + c1 / y * a1), atol=1e-6)


def test_ablationcam_batch_size_does_not_change_the_map() -> None:
    """Ablation-CAM's batch_size changes only speed, not the map (within 1e-6); zero is refused."""
    net, x = Net().eval(), torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    a = salience.explain(net, x, "ablationcam", target=[1, 2], layer="features.6", batch_size=16)
    b = salience.explain(net, x, "ablationcam", target=[1, 2], layer="features.6", batch_size=5)
    assert float((a.maps - b.maps).abs().max()) <= 1e-6
    with pytest.raises(InputError, match="batch_size"):
        salience.explain(net, x, "ablationcam", batch_size=0)


pgc = pytest.importorskip("pytorch_grad_cam")
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

#: (ours, theirs, layer).  Ablation-CAM uses the first ReLU: pytorch-grad-cam zeroes a channel (the
#: paper's ablation) only when the layer's output contains an exact 0, and otherwise sets it to
#: min - 1e7, a deliberate deviation from the paper (its ablation_layer.py); features.6 has no zero.
PEERS = [("eigencam", "EigenCAM", "features.6"), ("eigen-gradcam", "EigenGradCAM", "features.6"),
         ("xgradcam", "XGradCAM", "features.6"), ("ablationcam", "AblationCAM", "features.1")]


def _peer(name: str, net: torch.nn.Module, layer: torch.nn.Module, x: torch.Tensor, t: list[int]) -> np.ndarray:
    cls = getattr(pgc, name)
    with cls(model=net, target_layers=[layer]) as cam:
        return cam(input_tensor=x.clone(), targets=[ClassifierOutputTarget(i) for i in t])


def _sign_agrees(a: torch.Tensor) -> bool:
    """Whether numpy's SVD (pytorch-grad-cam's) happens to pick salience's sign for every image."""
    for img in a.detach().double().numpy():
        x = img.reshape(img.shape[0], -1).T
        x = x - x.mean(axis=0)
        v = np.linalg.svd(x, full_matrices=True)[2][0]
        if v.sum() < 0:
            return False
    return True


@pytest.mark.parametrize("ours,theirs,layer", PEERS)
def test_vs_pytorch_grad_cam_small(ours: str, theirs: str, layer: str) -> None:
    """Full-resolution maps equal pytorch-grad-cam's after min-max normalisation (small CNN, 2 images).

    The eigen methods project on a singular vector, whose sign numpy chooses arbitrarily (salience fixes
    it); the test checks that numpy's choice happens to be salience's on this input, so that both
    compute the same map."""
    net = Net().eval()
    x = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(12))
    t = [1, 4]
    e = salience.explain(net, x, ours, target=t, layer=layer)
    ref = _peer(theirs, net, net.features[int(layer.split(".")[1])], x, t)
    if ours == "eigencam":
        with torch.no_grad():
            a = net.features(x)
        assert _sign_agrees(a), "numpy chose the other sign on this input"
    assert float(e.maps.max()) > 0
    assert np.abs(_minmax(e.maps.numpy()) - _minmax(ref)).max() <= TOL


@pytest.mark.slow
@pytest.mark.parametrize("ours,theirs", [p[:2] for p in PEERS[:3]])
def test_vs_pytorch_grad_cam_mobilenet_v2(ours: str, theirs: str) -> None:
    """The same agreement on the default model (MobileNetV2, offline ImageNet weights), a real photo,
    its top class, layer features.18.  (Ablation-CAM there needs 1280 forward passes: not run here.)"""
    from skimage import data

    lm = salience.load_model()
    x = lm.preprocess(data.astronaut().astype(np.float32) / 255)
    e = salience.explain(lm, x, ours, layer="features.18")
    ref = _peer(theirs, lm.model, lm.model.features[18], x, e.targets.tolist())
    assert np.abs(_minmax(e.maps.numpy()) - _minmax(ref)).max() <= TOL


class Tokens(torch.nn.Module):
    """A ViT-shaped toy: 4x4 patches -> tokens (B, 1 + 9, 5) with a class token -> per-token linear
    (the explained layer) -> mean of the patch tokens -> linear head."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(5)
        self.embed = torch.nn.Conv2d(3, 5, 4, stride=4)
        self.cls = torch.nn.Parameter(torch.rand(1, 1, 5, generator=g))
        self.block = torch.nn.Linear(5, 5)
        self.head = torch.nn.Linear(5, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.rand(p.shape, generator=g) - 0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.embed(x).flatten(2).transpose(1, 2)
        t = self.block(torch.cat([self.cls.expand(x.shape[0], -1, -1), t], dim=1))
        return self.head(t[:, 1:].mean(dim=1))


def test_ablationcam_on_tokens_zeroes_the_channel_in_every_patch_token() -> None:
    """Token layers are ablated through the same token-to-grid reshape: zeroing channel c of the patch
    tokens removes w_c * mean(T_c) from the score (the class token is not part of the grid)."""
    net, x = Tokens(), torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(6))
    e = salience.explain(net, x, "ablationcam", target=2, layer="block", batch_size=2)
    with torch.no_grad():
        t = net.embed(x).flatten(2).transpose(1, 2)
        t = net.block(torch.cat([net.cls.expand(1, -1, -1), t], dim=1))[0, 1:]  # (9, 5)
        y = net(x)[0, 2]
        w = net.head.weight[2] * t.mean(dim=0) / y
        expected = torch.relu((t * w).sum(dim=1)).reshape(3, 3)
    assert torch.allclose(e.extras["cam"][0], expected, atol=1e-5)
