"""Registry-driven contract tests for every explanation method (architecture.md, contracts)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import salience  # noqa: E402
from _models import Tiny, tiny_vit  # noqa: E402
from salience.attribution._hooks import model_snapshot  # noqa: E402
from salience.errors import InputError, ModelError, SalienceError  # noqa: E402
from salience.registry import get_method, methods  # noqa: E402

EXPLANATIONS = [m.name for m in methods("explanation")]

#: small settings so the whole contract suite stays fast; every method still runs its real code path
FAST = {
    "rise": {"n": 48, "batch_size": 16},
    "smoothgrad": {"n": 3, "batch_size": 2},
    "integrated-gradients": {"steps": 6, "batch_size": 4},
    "occlusion": {"window": 4, "stride": 3, "batch_size": 5},
    "scorecam": {"batch_size": 3},
    "gscorecam": {"k": 5, "batch_size": 3},
    "gradient-shap": {"n_samples": 4, "batch_size": 3},
    "kernel-shap": {"n_samples": 24, "features": "grid", "n_segments": 9, "batch_size": 7},
    "lime": {"n_samples": 24, "n_segments": 6, "batch_size": 7},
    "feature-ablation": {"n_segments": 6, "batch_size": 4},
}


def _images(b: int = 2, size: int = 12) -> torch.Tensor:
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(1))


def _net(name: str) -> torch.nn.Module:
    """The small model a row is checked on: a CNN, or a tiny ViT for the rows that need self-attention."""
    return tiny_vit() if get_method(name).model_kind == "transformer" else Tiny()


def _user_state(net: torch.nn.Module) -> None:
    """A model as a user might hand it over: training mode, a frozen layer, a hook of their own."""
    net.train()
    if isinstance(net, Tiny):
        net.features[0].weight.requires_grad_(False)
        net.fc.register_forward_hook(lambda m, i, o: None)
        net.features[4].register_full_backward_hook(lambda m, gi, go: None)
    else:  # the ViT: a frozen patch embedding, a hook on the head and one on an attention block
        net.conv_proj.weight.requires_grad_(False)
        net.heads.register_forward_hook(lambda m, i, o: None)
        net.encoder.layers[0].self_attention.register_forward_hook(lambda m, i, o: None)


@pytest.mark.parametrize("name", EXPLANATIONS)
def test_output_contract(name: str) -> None:
    """Maps are float32 (B, H, W), finite, in the documented range; targets and scores have B rows."""
    net, x = _net(name), _images()
    e = salience.explain(net, x, name, **FAST.get(name, {}))
    assert e.maps.shape == (2, 12, 12)
    assert e.maps.dtype == torch.float32
    assert bool(torch.isfinite(e.maps).all())
    assert e.scores.shape == (2,) and e.targets.shape == (2,)
    assert e.method == get_method(name).name
    if get_method(name).value_range is not None:
        lo, hi = get_method(name).value_range
        assert float(e.maps.min()) >= lo and float(e.maps.max()) <= hi + 1e-6
    assert float(e.maps.abs().max()) > 0, "a blank map would hide a failure"


@pytest.mark.parametrize("name", EXPLANATIONS)
def test_model_and_input_restored(name: str) -> None:
    """Modes, requires_grad and inplace flags, hooks and modules are as before; the input is unchanged."""
    net, x = _net(name), _images()
    _user_state(net)
    before, x0 = model_snapshot(net), x.clone()
    salience.explain(net, x, name, **FAST.get(name, {}))
    assert model_snapshot(net) == before
    assert torch.equal(x, x0)
    assert net.training and (not isinstance(net, Tiny) or net.features[2].inplace)


@pytest.mark.parametrize("name", EXPLANATIONS)
def test_restored_after_exception(name: str) -> None:
    """A call that raises inside the forward pass leaves no hook, override or changed flag behind."""
    net, x = _net(name), _images()
    _user_state(net)
    before = model_snapshot(net)

    def boom(out: torch.Tensor) -> torch.Tensor:
        raise ModelError("boom")

    with pytest.raises(ModelError, match="boom"):
        salience.explain(net, x, name, target=boom, **FAST.get(name, {}))
    assert model_snapshot(net) == before
    # the model still works normally (no guided override left active)
    y = torch.nn.functional.relu(torch.tensor([-1.0, 2.0], requires_grad=True))
    (g,) = torch.autograd.grad(y.sum() * -1, [y])
    assert g.tolist() == [-1.0, -1.0]


@pytest.mark.parametrize("name", EXPLANATIONS)
def test_deterministic(name: str) -> None:
    """Two calls with the same seed give identical maps."""
    net, x = _net(name), _images()
    a = salience.explain(net, x, name, **FAST.get(name, {})).maps
    b = salience.explain(net, x, name, **FAST.get(name, {})).maps
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", EXPLANATIONS)
def test_target_forms(name: str) -> None:
    """An int, a per-image list, 'top-2' and a callable all explain the class they name."""
    net, x = _net(name), _images()
    kw = FAST.get(name, {})
    with torch.no_grad():
        logits = net.eval()(x)
    second = logits.topk(2, dim=1).indices[:, 1]
    e = salience.explain(net, x, name, target="top-2", **kw)
    assert e.targets.tolist() == second.tolist()
    assert torch.allclose(e.scores, logits.gather(1, second[:, None])[:, 0], atol=1e-5)
    e = salience.explain(net, x, name, target=[1, 3], **kw)
    assert e.targets.tolist() == [1, 3]
    e = salience.explain(net, x, name, target=lambda out: out[:, 2] - out[:, 0], **kw)
    assert e.targets is None
    assert torch.allclose(e.scores, logits[:, 2] - logits[:, 0], atol=1e-5)


@pytest.mark.parametrize("name", EXPLANATIONS)
def test_bad_targets(name: str) -> None:
    """Mismatched target lists are InputErrors, out-of-range classes ModelErrors: never a blank map."""
    net, x = _net(name), _images(b=3)
    with pytest.raises(InputError, match="3 image"):
        salience.explain(net, x, name, target=[0, 1], **FAST.get(name, {}))
    with pytest.raises(ModelError, match="out of range"):
        salience.explain(net, x, name, target=4, **FAST.get(name, {}))
    with pytest.raises(ModelError, match="one score per image"):
        salience.explain(net, x, name, target=lambda out: out, **FAST.get(name, {}))


@pytest.mark.parametrize("bad", [torch.rand(3, 12, 12), torch.zeros(0, 3, 12, 12),
                                 torch.full((1, 3, 12, 12), float("nan")),
                                 torch.zeros(1, 3, 12, 12, dtype=torch.int64), "image.png"])
def test_bad_images(bad: object) -> None:
    """Wrong shape, empty, NaN, integer or non-tensor images raise InputError."""
    with pytest.raises(InputError):
        salience.explain(Tiny(), bad, "gradcam")


def test_unknown_layer_lists_candidates() -> None:
    """An unknown layer name is a ModelError that names real layers."""
    with pytest.raises(ModelError, match="features.4"):
        salience.explain(Tiny(), _images(), "gradcam", layer="features.40")


def test_unknown_method_and_params() -> None:
    """Unknown method names and parameters are errors that say what is known."""
    with pytest.raises(SalienceError, match="gradcam"):
        salience.explain(Tiny(), _images(), "grad-kam")
    with pytest.raises(InputError, match="unknown parameter"):
        salience.explain(Tiny(), _images(), "gradcam", stepz=3)
    with pytest.raises(InputError, match="bottom-up"):
        salience.explain(Tiny(), _images(), "itti")


def test_named_layer_and_module_agree() -> None:
    """A layer given by name or as the module object gives the same map."""
    net, x = Tiny(), _images()
    a = salience.explain(net, x, "gradcam", layer="features.2")
    b = salience.explain(net, x, "gradcam", layer=net.features[2])
    assert a.layer == b.layer == "features.2"
    assert torch.equal(a.maps, b.maps)


def test_auto_layer_is_last_spatial() -> None:
    """The automatic layer is the last module with a spatial output (the features container here)."""
    e = salience.explain(Tiny(), _images(), "gradcam")
    assert e.layer == "features"


def test_public_names() -> None:
    """salience.explain is a plain function; importing the subpackage salience.attribution never shadows it."""
    import importlib

    import salience.attribution  # noqa: F401

    assert callable(salience.explain) and salience.explain.__name__ == "explain"
    sub = importlib.import_module("salience.attribution")
    assert sub.explain is salience.explain
    from salience.attribution import Explanation, gradcam, load_model  # noqa: F401

    assert salience.load_model is load_model
    assert type(salience).__name__ == "module"  # no module-class trick


def test_without_torch_the_error_gives_the_install_command() -> None:
    """Importing salience.attribution without torch raises MissingDependencyError naming the extra."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None\n"
            "import salience\n"
            "try:\n    import salience.attribution\nexcept salience.MissingDependencyError as e:\n    print('OK', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("OK") and "pip install 'salience[torch]'" in out.stdout, out.stderr
