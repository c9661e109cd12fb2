"""Where salience and pytorch-grad-cam differ on purpose, pinned on a real model (the trained MobileNetV2
of ``salience.load_model()``), so that nobody takes the differences for bugs either way (issue 17, item 25;
docs/explain.md, "Differences from peers").
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pgc = pytest.importorskip("pytorch_grad_cam")
skdata = pytest.importorskip("skimage.data")
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

import salience  # noqa: E402

F = torch.nn.functional


@pytest.fixture(scope="module")
def lm():
    return salience.load_model()


@pytest.fixture(scope="module")
def cat(lm):
    return lm.preprocess(skdata.chelsea().astype(np.float32) / 255.0)  # (1, 3, 224, 224)


def _minmax(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return np.stack([(b - b.min()) / (b.max() - b.min()) if b.max() > b.min() else 0 * b for b in a])


@pytest.mark.slow
def test_gradcam_pp_differs_from_pytorch_grad_cam_only_by_its_eps(lm, cat) -> None:
    """pytorch-grad-cam adds eps = 1e-6 to alpha's denominator 2 G^2 + sum(A) G^3; on MobileNetV2 the
    gradients at features.18 are ~1e-3, so G^2 ~ 1e-6 and the eps moves the map by ~0.04. With the same
    eps (``eps=1e-6``) the two agree to float round-off; the default is the paper's formula (eps = 0)."""
    net = lm.model
    ours = salience.explain(lm, cat, "gradcam-pp")
    t = int(ours.targets[0])
    with pgc.GradCAMPlusPlus(model=net, target_layers=[net.features[18]]) as cam:
        ref = cam(input_tensor=cat.clone(), targets=[ClassifierOutputTarget(t)])
    gap = np.abs(_minmax(ours.maps.numpy()) - _minmax(ref)).max()
    assert 0.01 < gap < 0.1, gap  # measured 0.040 (2026-12-01)
    same_eps = salience.explain(lm, cat, "gradcam-pp", eps=1e-6)
    assert np.abs(_minmax(same_eps.maps.numpy()) - _minmax(ref)).max() < 1e-5


@pytest.mark.slow
def test_scorecam_formulas_of_both_pinned(lm, cat) -> None:
    """Score-CAM: salience weights channel k by the target's softmax probability (over the classes) on
    x * norm(up(A_k)) (the authors' reference code); pytorch-grad-cam takes the target's raw logit on
    each masked input and applies a softmax across the channels, with masks upsampled align_corners=True.
    Each library matches its own formula, written out here, and the two maps are different maps."""
    net = lm.model
    x = F.interpolate(cat, size=(48, 48), mode="bilinear", align_corners=False)
    layer = "features.3"  # 24 channels: 24 masked forward passes per library
    ours = salience.explain(lm, x, "scorecam", layer=layer, target=281)
    with pgc.ScoreCAM(model=net, target_layers=[net.features[3]]) as cam:
        ref = cam(input_tensor=x.clone(), targets=[ClassifierOutputTarget(281)])

    store = {}
    h = net.features[3].register_forward_hook(lambda m, i, o: store.update(a=o.detach()))
    with torch.no_grad():
        net(x)
    h.remove()
    a = store["a"]  # (1, 24, 12, 12)

    def masked_scores(align: bool, eps: float) -> torch.Tensor:
        up = F.interpolate(a, size=x.shape[2:], mode="bilinear", align_corners=align)[0]
        flat = up.reshape(up.shape[0], -1)
        lo, hi = flat.min(dim=1).values[:, None, None], flat.max(dim=1).values[:, None, None]
        masks = (up - lo) / (hi - lo + eps)
        with torch.no_grad():
            return net(x * masks[:, None])  # (24, 1000) logits

    # salience: softmax over the classes, the target's probability per channel
    w_ours = torch.softmax(masked_scores(False, 0.0), dim=1)[:, 281]
    assert torch.allclose(ours.weights[0], w_ours, atol=1e-6)
    cam_ours = torch.relu((w_ours[:, None, None] * a[0]).sum(0))
    assert torch.allclose(ours.cam[0], cam_ours, atol=1e-6)
    # pytorch-grad-cam: the target's logit per channel, softmax across the channels
    w_pgc = torch.softmax(masked_scores(True, 1e-8)[:, 281], dim=0)
    cam_pgc = torch.relu((w_pgc[:, None, None] * a[0]).sum(0)).numpy()
    import cv2

    cam_pgc = cv2.resize((cam_pgc - cam_pgc.min()) / (1e-7 + cam_pgc.max() - cam_pgc.min()), (48, 48))
    assert np.abs(_minmax(cam_pgc[None]) - _minmax(ref)).max() < 1e-4
    r = np.corrcoef(ours.maps.numpy().ravel(), ref.ravel())[0, 1]
    assert r < 0.9, r  # different maps, not a rounding difference
