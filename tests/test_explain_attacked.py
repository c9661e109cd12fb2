"""Issue 17, items 18-24 and 27: what broke when the explanations were attacked, each reproduced first.

Small random-weight models throughout (torchvision detection/segmentation models with weights=None and
weights_backbone=None, small inputs), so the module stays quick.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
F = torch.nn.functional

import salience  # noqa: E402
from _models import TwoLayer  # noqa: E402
from salience.attribution import LoadedModel  # noqa: E402
from salience.errors import InputError, ModelError, ZeroGradientError  # noqa: E402
from salience.registry import get_method, methods  # noqa: E402

EXPLANATIONS = [m.name for m in methods("explanation")]
#: small settings for the slow methods; every method still runs its real code path
FAST = {
    "rise": {"n": 40, "batch_size": 16},
    "smoothgrad": {"n": 4, "batch_size": 3},
    "integrated-gradients": {"steps": 6, "batch_size": 4},
    "occlusion": {"window": 4, "stride": 4, "batch_size": 8},
    "scorecam": {"batch_size": 4},
    "gradient-shap": {"n_samples": 4, "batch_size": 3},
    "kernel-shap": {"n_samples": 20, "features": "grid", "n_segments": 9, "batch_size": 8},
    "lime": {"n_samples": 20, "n_segments": 6, "batch_size": 8},
    "feature-ablation": {"n_segments": 6, "batch_size": 4},
}


class Net(torch.nn.Module):
    """conv-ReLU-conv-ReLU-pool-linear with fixed, mostly positive weights (non-blank maps)."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.ReLU(),
                                            torch.nn.Conv2d(6, 8, 3, padding=1), torch.nn.ReLU())
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(8, classes)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.rand(p.shape, generator=g) * 0.6 - 0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def _x(b: int = 3, size: int = 12, seed: int = 1) -> torch.Tensor:
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _stochastic_rows() -> list[str]:
    """Registry rows whose function takes a noise seed: the stochastic methods."""
    return [m.name for m in methods("explanation") if "seed" in inspect.signature(m.load()).parameters]


# ---- 18: stochastic methods: batch mates and the model's dtype never change a result ------------------


def test_stochastic_rows_found() -> None:
    """The registry scan for stochastic methods finds SmoothGrad and RISE, so the seed tests below cover them."""
    rows = _stochastic_rows()
    assert {"smoothgrad", "rise"} <= set(rows), rows


@pytest.mark.parametrize("name", _stochastic_rows())
def test_stochastic_batch_equals_single(name: str) -> None:
    """Each image's map is the same alone and as the 2nd/3rd image of a batch, for every seeded method
    (and SmoothGrad with every base)."""
    net = Net()
    x = _x(3)
    variants = [{}]
    if name == "smoothgrad":
        variants = [{"base": b} for b in ("gradient", "input-x-gradient", "guided-backprop")]
    for extra in variants:
        kw = {**FAST.get(name, {}), **extra}
        batch = salience.explain(net, x, name, target=1, **kw).maps
        for i in range(3):
            single = salience.explain(net, x[i:i + 1], name, target=1, **kw).maps
            assert torch.allclose(batch[i:i + 1], single, atol=1e-5), (name, extra, i)


@pytest.mark.parametrize("name", _stochastic_rows())
def test_stochastic_independent_of_model_dtype(name: str) -> None:
    """float64 and float32 copies of a model give the same map up to float32 round-off (the noise and
    masks are drawn in float32 whatever the dtype)."""
    net = Net()
    x = _x(2)
    kw = FAST.get(name, {})
    a = salience.explain(net, x, name, target=0, **kw).maps
    b = salience.explain(Net().double(), x.double(), name, target=0, **kw).maps
    assert torch.allclose(a, b, atol=1e-4)


# ---- 19: Integrated Gradients agrees with the plain layout by default --------------------------------


def test_integrated_gradients_default_agrees_with_captum_on_a_trained_model() -> None:
    """By default IG's CPU path changes nothing but float32 round-off: on the trained MobileNetV2 it equals
    Captum to 1e-5 of the largest attribution (the channels-last layout, now opt-in, moved it by 0.2-1.5%)."""
    captum_attr = pytest.importorskip("captum.attr")
    net = salience.load_model().model
    x = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(3))
    ours = salience.explain(net, x, "ig", target=3, steps=4, batch_size=4).attributions
    ref = captum_attr.IntegratedGradients(net).attribute(x, target=3, n_steps=4, method="gausslegendre",
                                                         internal_batch_size=4)
    assert float((ours - ref).abs().max()) / float(ref.abs().max()) < 1e-5
    assert inspect.signature(get_method("ig").load()).parameters["channels_last"].default is False


# ---- 20: constant CAMs and scores that ignore the input ---------------------------------------------


@pytest.mark.parametrize("name", ["gradcam", "gradcam-pp", "hirescam", "layercam", "scorecam"])
def test_constant_cam_warns_and_is_zero(name: str) -> None:
    """A 1 x 1 layer output is constant: no stretched round-off pattern, a warning and zeros."""
    net = Net()
    with pytest.warns(UserWarning, match="constant"):
        e = salience.explain(net, _x(2), name, target=1, layer="pool", **FAST.get(name, {}))
    assert float(e.maps.abs().max()) == 0.0


class Deaf(torch.nn.Module):
    """A model whose output ignores the image (its head is zero)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = Net()
        with torch.no_grad():
            self.net.fc.weight.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.mark.parametrize("name", EXPLANATIONS)
def test_score_independent_of_input_is_one_clear_error(name: str) -> None:
    """Every method raises ZeroGradientError, with a message that names no unrelated model."""
    with pytest.raises(ZeroGradientError) as info:
        salience.explain(Deaf(), _x(2), name, target=1, **FAST.get(name, {}))
    assert "does not depend on the input" in str(info.value)
    assert "vit_b_16" not in str(info.value)


# ---- 21: guided backprop covers every rectifier form, and refuses the others -------------------------


class Fn(torch.nn.Module):
    def __init__(self, f) -> None:
        super().__init__()
        self.f = f

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.f(h)


RECTIFIERS = {
    "clamp(min=0)": (Fn(lambda h: h.clamp(min=0)), 0.0),
    "torch.clamp(x, 0)": (Fn(lambda h: torch.clamp(h, 0)), 0.0),
    "clamp_min": (Fn(lambda h: torch.clamp_min(h, 0)), 0.0),
    "where(x > 0, x, 0)": (Fn(lambda h: torch.where(h > 0, h, 0)), 0.0),
    "maximum(x, 0)": (Fn(lambda h: torch.maximum(h, torch.tensor(0.0))), 0.0),
    "max(x, zeros)": (Fn(lambda h: torch.max(h, torch.zeros_like(h))), 0.0),
    "nn.Threshold(0, 0)": (torch.nn.Threshold(0.0, 0.0), 0.0),
    "nn.Threshold(-0.5, -2)": (torch.nn.Threshold(-0.5, -2.0), -0.5),
}


@pytest.mark.parametrize("form", list(RECTIFIERS))
def test_guided_backprop_rectifier_forms(form: str) -> None:
    """Each ReLU spelling gets Springenberg's rule W1^T (relu(W2[t]) * 1[W1 x > threshold])."""
    act, th = RECTIFIERS[form]
    net = TwoLayer(act)
    x = torch.randn(1, 3, 2, 2, generator=torch.Generator().manual_seed(4))
    e = salience.explain(net, x, "guided-backprop", target=1)
    pre = net.l1(x.flatten(1))
    expected = ((torch.relu(net.l2.weight[1])[None] * (pre > th).float()) @ net.l1.weight).reshape(x.shape)
    assert torch.allclose(e.attributions, expected, atol=1e-6)
    plain = salience.explain(net, x, "gradient", target=1).attributions
    assert not torch.allclose(plain, expected, atol=1e-3), "the test must tell guided from plain"


NON_RECTIFIERS = {
    "prelu": torch.nn.PReLU(init=0.2),
    "rrelu": torch.nn.RReLU(),
    "silu (x * sigmoid(x))": Fn(lambda h: h * torch.sigmoid(h)),
    "silu (x * sigmoid(x)) reversed": Fn(lambda h: torch.sigmoid(h) * h),
}


@pytest.mark.parametrize("form", list(NON_RECTIFIERS))
def test_guided_backprop_non_rectifiers_not_silent(form: str) -> None:
    """PReLU, RReLU and a hand-written SiLU raise by default and get the generalised rule on request."""
    net = TwoLayer(NON_RECTIFIERS[form]).eval()
    x = torch.randn(1, 3, 2, 2, generator=torch.Generator().manual_seed(6))
    with pytest.raises(ModelError, match=form.split()[0]):
        salience.explain(net, x, "guided-backprop", target=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        guided = salience.explain(net, x, "guided-backprop", target=0, activations="guide")
    pre = net.l1(x.flatten(1)).detach().requires_grad_(True)
    (slope,) = torch.autograd.grad(net.act(pre).sum(), pre)
    expected = ((torch.relu(net.l2.weight[0])[None] * slope.clamp(min=0)) @ net.l1.weight).reshape(x.shape)
    assert torch.allclose(guided.attributions, expected, atol=1e-5)


def test_sigmoid_gates_and_max_over_a_dim_untouched() -> None:
    """An SE-style gate x * sigmoid(f(x)) and torch.max(x, 0) (a reduction) are not activations."""
    class Gate(torch.nn.Module):
        def forward(self, h):
            return torch.relu(h) * torch.sigmoid(h.mean(dim=1, keepdim=True)) + torch.max(h, 0).values

    net = TwoLayer(Gate())
    x = torch.randn(1, 3, 2, 2, generator=torch.Generator().manual_seed(6))
    salience.explain(net, x, "guided-backprop", target=0)  # no error: only the relu is a rectifier


# ---- 22: inference mode ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EXPLANATIONS)
def test_inference_mode_says_autograd(name: str) -> None:
    """Under torch.inference_mode() a method that needs gradients says so; the others just work."""
    net = Net()
    x = _x(1)
    kw = FAST.get(name, {})
    with torch.inference_mode():
        try:
            e = salience.explain(net, x, name, target=1, **kw)
        except ModelError as exc:
            assert "autograd" in str(exc) and "inference_mode" in str(exc)
        else:
            assert name in ("occlusion", "rise", "kernel-shap", "lime", "feature-ablation")
            ref = salience.explain(net, x, name, target=1, **kw)
            assert torch.allclose(e.maps, ref.maps, atol=1e-6)


def test_inference_tensors_as_input_and_as_model() -> None:
    """An inference-mode input is explained like a normal one; a model built in inference mode is a clear ModelError."""
    net = Net()
    with torch.inference_mode():
        x = _x(1)
    e = salience.explain(net, x, "gradcam", target=1)
    assert torch.allclose(e.maps, salience.explain(net, x.clone(), "gradcam", target=1).maps)
    with torch.inference_mode():
        frozen = Net()
    with pytest.raises(ModelError, match="inference tensors"):
        salience.explain(frozen, _x(1), "gradient", target=1)


# ---- 23: targets and arguments -----------------------------------------------------------------------


@pytest.mark.parametrize("target", [np.int64(2), 2.0, np.float32(2.0), torch.tensor(2), np.array(2),
                                    [2.0, 2.0], np.array([2, 2]), torch.tensor([2.0, 2.0])])
def test_integral_targets_accepted(target) -> None:
    """Whole-number targets of any type (numpy, float 2.0, tensors, lists) are accepted as class indices."""
    net = Net()
    x = _x(2)
    e = salience.explain(net, x, "gradient", target=target)
    assert e.targets.tolist() == [2, 2]


@pytest.mark.parametrize("target", [2.5, float("nan"), [1.5, 2.0], np.bool_(True)])
def test_non_integral_targets_refused(target) -> None:
    """Fractional, NaN and boolean targets are refused, not truncated to a class."""
    with pytest.raises(InputError):
        salience.explain(Net(), _x(2), "gradient", target=target)


def test_class_names_in_explain_of_a_loaded_model() -> None:
    """Class names work as targets (case-insensitive, unique whole words); an ambiguous name lists the candidates."""
    from salience.attribution.models import IMAGENET_MEAN, IMAGENET_STD, make_preprocess

    lm = LoadedModel(Net(), make_preprocess(IMAGENET_MEAN, IMAGENET_STD), ["tabby cat", "tiger cat", "dog",
                                                                             "catamaran"], None, "net")
    x = _x(2)
    assert salience.explain(lm, x, "gradcam", target="dog").targets.tolist() == [2, 2]
    assert salience.explain(lm, x, "gradcam", target=["dog", "Catamaran"]).targets.tolist() == [2, 3]
    with pytest.raises(ModelError, match="tabby cat"):  # 'cat' is ambiguous: candidates are listed
        salience.explain(lm, x, "gradcam", target="cat")
    assert lm.class_index("tiger") == 1  # a unique whole-word match


def test_occlusion_baseline_error_is_short() -> None:
    """A baseline of the wrong shape gives a short message with its shape; a numpy scalar equals the float baseline."""
    with pytest.raises(InputError) as info:
        salience.explain(Net(), _x(1), "occlusion", target=1, baseline=torch.rand(3, 12, 12), window=4)
    assert len(str(info.value)) < 200 and "shape (3, 12, 12)" in str(info.value)
    a = salience.explain(Net(), _x(1), "occlusion", target=1, baseline=np.float32(0.5), window=4, stride=4)
    b = salience.explain(Net(), _x(1), "occlusion", target=1, baseline=0.5, window=4, stride=4)
    assert torch.equal(a.maps, b.maps)


# ---- 24: detection and segmentation models -----------------------------------------------------------


def _frcnn():
    torch.manual_seed(0)
    return torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None, box_score_thresh=0.0, min_size=96, max_size=96,
        rpn_pre_nms_top_n_test=50, rpn_post_nms_top_n_test=20).eval()


def _best_box(out):
    return torch.stack([o["scores"][:1].sum() for o in out])


@pytest.mark.slow
def test_faster_rcnn_automatic_layer_uses_the_callable_target() -> None:
    """On Faster R-CNN the automatic CAM layer is in the backbone; a dict-output layer needs reshape=."""
    net = _frcnn()
    x = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    e = salience.explain(net, x, "gradcam", target=_best_box)
    assert e.layer.startswith("backbone") and e.maps.shape == (1, 96, 96)
    with pytest.raises(ModelError, match="reshape="):
        salience.explain(net, x, "gradcam", target=_best_box, layer="backbone")
    fpn = salience.explain(net, x, "gradcam", target=_best_box, layer="backbone", reshape=lambda d: d["0"])
    assert fpn.maps.shape == (1, 96, 96) and torch.isfinite(fpn.maps).all()


@pytest.mark.parametrize("builder", ["deeplabv3_mobilenet_v3_large",
                                     pytest.param("fcn_resnet50", marks=pytest.mark.slow)])
def test_segmentation_automatic_layer_is_a_feature_layer(builder: str) -> None:
    """On torchvision segmenters the automatic CAM layer is a feature layer, not the class-logit layer."""
    torch.manual_seed(0)
    net = getattr(torchvision.models.segmentation, builder)(weights=None, weights_backbone=None,
                                                             num_classes=5).eval()
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    e = salience.explain(net, x, "gradcam", target=lambda out: out["out"][:, 1].mean(dim=(1, 2)))
    module = dict(net.named_modules())[e.layer]
    seen = {}
    h = module.register_forward_hook(lambda m, i, o: seen.update(c=o.shape[1]))
    with torch.no_grad():
        net(x)
    h.remove()
    assert seen["c"] != 5, f"{e.layer} is the class-logit layer"


# ---- 27: progress inside one image -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rise", "scorecam", "occlusion"])
def test_progress_callback(name: str) -> None:
    """RISE, Score-CAM and occlusion report increasing progress ending at done == total."""
    calls: list[tuple[int, int]] = []
    salience.explain(Net(), _x(2), name, target=1, progress=lambda d, t: calls.append((d, t)),
                     **FAST.get(name, {}))
    done = [d for d, _ in calls]
    assert len(calls) > 1 and done == sorted(done) and calls[-1][0] == calls[-1][1]


def test_scorecam_max_channels() -> None:
    """Score-CAM's max_channels keeps the map when it covers every channel and uses at most that many otherwise."""
    net = Net()
    full = salience.explain(net, _x(2), "scorecam", target=1, layer="features.3")
    same = salience.explain(net, _x(2), "scorecam", target=1, layer="features.3", max_channels=8)
    few = salience.explain(net, _x(2), "scorecam", target=1, layer="features.3", max_channels=3)
    assert torch.allclose(full.maps, same.maps, atol=1e-6)
    assert few.channels == 3 and int((few.weights != 0).sum(dim=1).max()) <= 3
