"""CAMs over several layers, test-time augmentation smoothing and eigen smoothing: the shared CAM
pipeline's options, checked by hand and against pytorch-grad-cam 1.5.7 on identical model/layers/input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import salience  # noqa: E402
from _models import Net  # noqa: E402
from salience.attribution.cam_multi import TTA_VIEWS  # noqa: E402
from salience.errors import InputError  # noqa: E402

X = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(12))
T = [1, 4]
#: float32 rounding: both sides compute the same quantity
TOL = 1e-5


def _peer(name: str, net: torch.nn.Module, layers: list[str], **kw: bool) -> np.ndarray:
    pgc = pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    mods = [net.get_submodule(n) for n in layers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with getattr(pgc, name)(model=net, target_layers=mods) as cam:
            return cam(input_tensor=X.clone(), targets=[ClassifierOutputTarget(i) for i in T], **kw)


def _numpy_sign_is_ours(terms: np.ndarray) -> bool:
    """Whether numpy's SVD (pytorch-grad-cam's) picks salience's sign (sum of v >= 0) for every image."""
    for img in terms.astype(np.float64):
        x = img.reshape(img.shape[0], -1).T
        v = np.linalg.svd(x - x.mean(axis=0), full_matrices=True)[2][0]
        if v.sum() < 0:
            return False
    return True


CASES = [
    ("gradcam", "GradCAM", ["features.4", "features.6"], {}),
    ("layercam", "LayerCAM", ["features.1", "features.4", "features.6"], {}),
    ("hirescam", "HiResCAM", ["features.4", "features.6"], {"aug_smooth": True}),
    ("gradcam", "GradCAM", ["features.6"], {"aug_smooth": True}),
    ("gradcam", "GradCAM", ["features.6"], {"eigen_smooth": True}),
    ("xgradcam", "XGradCAM", ["features.4", "features.6"], {"eigen_smooth": True}),
]


@pytest.mark.parametrize("ours,theirs,layers,kw", CASES, ids=[f"{c[0]}-{len(c[2])}-{'-'.join(c[3])}" for c in CASES])
def test_agrees_with_pytorch_grad_cam(ours: str, theirs: str, layers: list[str], kw: dict) -> None:
    """Mean fusion of per-layer maps (each normalised at its resolution, upsampled), the six-view TTA mean
    and the eigen projection: the maps themselves agree, no renormalisation."""
    net = Net().eval()
    e = salience.explain(net, X, ours, target=T, layer=layers if len(layers) > 1 else layers[0], **kw)
    ref = _peer(theirs, net, layers, **kw)
    assert float(e.maps.max()) > 0.5
    assert np.abs(e.maps.numpy() - ref).max() <= TOL


def test_eigen_smooth_case_used_numpy_sign() -> None:
    """The eigen_smooth comparison above is meaningful only because numpy happened to pick salience's sign
    for Grad-CAM's weighted activations at features.6 on this input: checked here."""
    net = Net().eval()
    acts = {}
    h = net.features[6].register_forward_hook(lambda m, i, o: acts.__setitem__("a", o))
    out = net(X)
    h.remove()
    (g,) = torch.autograd.grad(out[torch.arange(2), torch.tensor(T)].sum(), acts["a"])
    terms = (g.mean(dim=(2, 3), keepdim=True) * acts["a"]).detach().numpy()
    assert _numpy_sign_is_ours(terms)


def test_max_fusion_by_hand() -> None:
    """fuse='max': the per-pixel maximum of the single-layer maps (normalised at their own resolution,
    upsampled), normalised again."""
    from salience.attribution import upsample
    from salience.attribution._base import normalize_maps

    net = Net().eval()
    e = salience.explain(net, X, "gradcam", target=T, layer=["features.1", "features.6"], fuse="max")
    parts = [upsample(normalize_maps(salience.explain(net, X, "gradcam", target=T, layer=n).cam), (24, 24))
             for n in ("features.1", "features.6")]
    want = normalize_maps(torch.maximum(*parts))
    assert float((e.maps - want).abs().max()) < 1e-6
    assert set(e.cams) == {"features.1", "features.6"} and e.layer == "features.1,features.6"


def test_a_comma_string_is_a_layer_list_and_top_k_is_one_class() -> None:
    net = Net().eval()
    a = salience.explain(net, X, "layercam", target="top-2", layer="features.4, features.6")
    b = salience.explain(net, X, "layercam", target=a.targets.tolist(), layer=[net.features[4], "features.6"])
    assert torch.allclose(a.maps, b.maps, atol=1e-6)


def test_aug_smooth_is_the_mean_of_the_six_views() -> None:
    net = Net().eval()
    e = salience.explain(net, X, "eigencam", layer="features.6", aug_smooth=True)
    views = []
    for flip, factor in TTA_VIEWS:
        xv = (X.flip(-1) if flip else X) * factor
        m = salience.explain(net, xv, "eigencam", layer="features.6").maps
        views.append(m.flip(-1) if flip else m)
    assert float((e.maps - torch.stack(views).mean(dim=0)).abs().max()) < 1e-6
    plain = salience.explain(net, X, "eigencam", layer="features.6").maps
    assert float((e.maps - plain).abs().max()) > 1e-3  # the option does something


def test_bad_options() -> None:
    net = Net().eval()
    with pytest.raises(InputError, match="fuse"):
        salience.explain(net, X, "gradcam", layer=["features.4", "features.6"], fuse="sum")
    with pytest.raises(InputError, match="empty list"):
        salience.explain(net, X, "gradcam", layer=[])
    with pytest.raises(InputError, match="aug_smooth"):
        salience.explain(net, X, "xgradcam", aug_smooth="yes")
    with pytest.raises(InputError, match="already a principal"):
        salience.explain(net, X, "eigencam", eigen_smooth=True)
    from salience.errors import ModelError

    with pytest.raises(ModelError, match="no layer named"):
        salience.explain(net, X, "gradcam", layer=["features.4", "features.66"])
