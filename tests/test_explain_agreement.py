"""Agreement with Captum and pytorch-grad-cam where both define the same quantity: same model, input,
target and layer; max abs difference <= 1e-5 after the same normalisation."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")
pgc = pytest.importorskip("pytorch_grad_cam")
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

import salience  # noqa: E402
from _models import Net  # noqa: E402

TOL = 1e-5


@pytest.fixture()
def setup():
    net = Net().eval()
    x = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(12))
    return net, x, [1, 4]


def _minmax(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    out = np.empty_like(a)
    for i in range(a.shape[0]):
        lo, hi = a[i].min(), a[i].max()
        out[i] = (a[i] - lo) / (hi - lo) if hi > lo else 0 * a[i]
    return out


def _scaled(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    """Max abs difference after dividing both by the largest magnitude of ours (per image)."""
    o, t = ours.detach().double(), theirs.detach().double()
    s = o.reshape(o.shape[0], -1).abs().max(dim=1).values.clamp(min=1e-30).view(-1, *([1] * (o.ndim - 1)))
    return float(((o - t) / s).abs().max())


@pytest.mark.parametrize("ours,theirs", [("gradcam", "GradCAM"), ("gradcam-pp", "GradCAMPlusPlus"),
                                         ("hirescam", "HiResCAM"), ("layercam", "LayerCAM")])
def test_cam_family_vs_pytorch_grad_cam(setup, ours: str, theirs: str) -> None:
    """Full-resolution maps agree with pytorch-grad-cam after min-max normalisation.

    pytorch-grad-cam adds eps = 1e-6 to Grad-CAM++'s alpha denominator 2 G^2 + sum(A) G^3, which is not
    negligible when gradients are ~1e-3; the head is scaled up so that both compute the paper's formula."""
    net, x, t = setup
    with torch.no_grad():
        net.fc.weight.mul_(1e4)
    e = salience.explain(net, x, ours, target=t, layer="features.6")
    with getattr(pgc, theirs)(model=net, target_layers=[net.features[6]]) as cam:
        ref = cam(input_tensor=x.clone(), targets=[ClassifierOutputTarget(i) for i in t])
    assert float(e.maps.max()) > 0
    assert np.abs(_minmax(e.maps.numpy()) - _minmax(ref)).max() <= TOL


def test_gradcam_vs_captum_layer_gradcam(setup) -> None:
    """The low-resolution Grad-CAM equals Captum's LayerGradCam with ReLU."""
    net, x, t = setup
    e = salience.explain(net, x, "gradcam", target=t, layer="features.6")
    ref = captum_attr.LayerGradCam(net, net.features[6]).attribute(x, target=t, relu_attributions=True)
    assert _scaled(e.cam, ref[:, 0]) <= TOL


def test_gradient_vs_captum(setup) -> None:
    """The raw input gradient equals Captum's Saliency (abs=False); the map is its channel abs-max."""
    net, x, t = setup
    e = salience.explain(net, x, "gradient", target=t)
    ref = captum_attr.Saliency(net).attribute(x, target=t, abs=False)
    assert _scaled(e.attributions, ref) <= TOL
    ref_map = ref.abs().amax(dim=1)
    assert _scaled(e.maps, ref_map / ref_map.reshape(2, -1).max(dim=1).values.view(-1, 1, 1)) <= TOL


def test_input_x_gradient_vs_captum(setup) -> None:
    """Input x gradient equals Captum's InputXGradient."""
    net, x, t = setup
    e = salience.explain(net, x, "input-x-gradient", target=t)
    ref = captum_attr.InputXGradient(net).attribute(x, target=t)
    assert _scaled(e.attributions, ref) <= TOL
    assert _scaled(e.maps, ref.sum(dim=1)) <= TOL


def test_guided_backprop_vs_captum(setup) -> None:
    """Guided backprop equals Captum's GuidedBackprop on an nn.ReLU network."""
    net, x, t = setup
    e = salience.explain(net, x, "guided-backprop", target=t)
    ref = captum_attr.GuidedBackprop(net).attribute(x, target=t)
    assert float(ref.abs().max()) > 0
    assert _scaled(e.attributions, ref) <= TOL


@pytest.mark.parametrize("ours,theirs", [("riemann-left", "riemann_left"), ("riemann-right", "riemann_right"),
                                         ("riemann-middle", "riemann_middle"),
                                         ("gauss-legendre", "gausslegendre")])
def test_integrated_gradients_vs_captum(setup, ours: str, theirs: str) -> None:
    """Same steps and quadrature: attributions and completeness delta agree with Captum's."""
    net, x, t = setup
    e = salience.explain(net, x, "ig", target=t, steps=20, quadrature=ours, batch_size=7)
    ref, delta = captum_attr.IntegratedGradients(net).attribute(
        x, target=t, n_steps=20, method=theirs, internal_batch_size=7, return_convergence_delta=True)
    assert _scaled(e.attributions, ref) <= TOL
    assert torch.allclose(e.delta, delta.float(), atol=1e-4)


def test_trapezoid_differs_from_captum_by_design(setup) -> None:
    """Captum's 'riemann_trapezoid' weights sum to 1 - 1/n; ours are the composite trapezoid rule (sum 1),
    so on a linear model ours is complete and Captum's is short by 1/n."""
    lin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 24 * 24, 6))
    _, x, t = setup
    e = salience.explain(lin, x, "ig", target=t, steps=10, quadrature="riemann-trapezoid")
    ref = captum_attr.IntegratedGradients(lin).attribute(x, target=t, n_steps=10, method="riemann_trapezoid")
    assert e.delta.abs().max() < 1e-4
    assert torch.allclose(ref, e.attributions * (1 - 1 / 10), atol=1e-6)


@pytest.mark.parametrize("window,stride", [(4, 4), (5, 3)])
def test_occlusion_vs_captum(setup, window: int, stride: int) -> None:
    """Occlusion maps equal Captum's Occlusion with a window over all channels."""
    net, x, t = setup
    e = salience.explain(net, x, "occlusion", target=t, window=window, stride=stride, baseline=0.0)
    ref = captum_attr.Occlusion(net).attribute(x, target=t, sliding_window_shapes=(3, window, window),
                                               strides=(3, stride, stride), baselines=0.0)
    assert torch.allclose(ref[:, 0], ref[:, 2])
    assert _scaled(e.maps, ref[:, 0]) <= TOL
