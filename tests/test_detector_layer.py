"""The automatic CAM layer of detectors whose output is a list of dicts (issue 15): the backbone's features,
never the RoI features (one row per box) nor the heads."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

import salience  # noqa: E402
from salience import targets  # noqa: E402
from salience.attribution._hooks import model_snapshot  # noqa: E402
from salience.errors import ModelError  # noqa: E402


class RoI(torch.nn.Module):
    """RoI-align of fixed boxes: ``(num_boxes, C, 4, 4)``, the kind of layer whose rows are boxes, not images."""

    def forward(self, feats: torch.Tensor, boxes: list[torch.Tensor]) -> torch.Tensor:
        return torchvision.ops.roi_align(feats, boxes, output_size=(4, 4), spatial_scale=1.0, aligned=True)


class BoxDetector(torch.nn.Module):
    """A tiny two-box detector in torchvision's output format: a conv backbone that detects red
    (``relu(2 R - G - B)``), RoI features of two fixed boxes, a score per box (the mean red inside it)."""

    def __init__(self, boxes: torch.Tensor) -> None:
        super().__init__()
        self.backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1), torch.nn.ReLU(),
                                            torch.nn.Conv2d(2, 2, 3, padding=1), torch.nn.ReLU())
        self.roi = RoI()
        self.head = torch.nn.Linear(2 * 16, 1)
        self.register_buffer("boxes", boxes.float())
        with torch.no_grad():
            self.backbone[0].weight.copy_(torch.tensor([[2.0, -1.0, -1.0], [0.0, 0.0, 0.0]])[:, :, None, None])
            self.backbone[0].bias.zero_()
            w = torch.zeros(2, 2, 3, 3)
            w[0, 0, 1, 1] = 1.0
            self.backbone[2].weight.copy_(w)
            self.backbone[2].bias.zero_()
            self.head.weight.fill_(1.0 / 16)
            self.head.bias.zero_()

    def forward(self, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        f = self.backbone(x)
        rois = self.roi(f, [self.boxes] * x.shape[0])  # (B * 2, 2, 4, 4)
        s = self.head(rois.flatten(1)).reshape(x.shape[0], 2)
        return [{"boxes": self.boxes, "scores": s[i], "labels": torch.tensor([1, 1])} for i in range(x.shape[0])]


def _scene(red_at: tuple[int, int]) -> torch.Tensor:
    x = torch.full((1, 3, 32, 32), 0.5)
    r, c = red_at
    x[0, :, r:r + 8, c:c + 8] = torch.tensor([0.9, 0.1, 0.1])[:, None, None]
    return x


def test_auto_layer_is_the_backbone_and_the_map_follows_the_box() -> None:
    boxes = torch.tensor([[2.0, 2.0, 12.0, 12.0], [18.0, 18.0, 30.0, 30.0]])  # x1, y1, x2, y2
    net = BoxDetector(boxes).eval()
    before = model_snapshot(net)
    for box, red_at in ((0, (3, 3)), (1, (20, 20))):
        x = _scene(red_at)
        f = targets.detection(boxes[box], label=1)
        e = salience.explain(net, x, "gradcam", target=f)
        assert e.layer == "backbone.3"  # the backbone's last layer, not the RoI features ("roi": 2 rows)
        assert e.cam.shape == (1, 32, 32)
        r, c = divmod(int(e.maps[0].argmax()), 32)
        assert red_at[0] <= r < red_at[0] + 8 and red_at[1] <= c < red_at[1] + 8
        assert f.matches[0] == (box, pytest.approx(1.0))
    assert model_snapshot(net) == before


def test_a_class_target_on_a_detector_says_to_use_the_detection_target() -> None:
    net = BoxDetector(torch.tensor([[0.0, 0.0, 8.0, 8.0], [8.0, 8.0, 16.0, 16.0]]))
    with pytest.raises(ModelError, match="targets.detection"):
        salience.explain(net, _scene((0, 0)), "gradcam")


@pytest.mark.slow  # a random-weight Faster R-CNN: ~15 s on the shared machine
def test_faster_rcnn_auto_layer_is_in_its_backbone() -> None:
    """Before: the automatic layer was roi_heads.box_roi_pool, whose rows are the proposals (a (num_boxes,
    7, 7) 'map'); now an FPN output of the backbone, one map per image."""
    import torchvision.models.detection as D

    torch.manual_seed(0)
    net = D.fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None, box_score_thresh=0.0,
                                                   min_size=128, max_size=128, num_classes=3).eval()
    x = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        det = net(x)[0]
    f = targets.detection(det["boxes"][0], label=int(det["labels"][0]))
    e = salience.explain(net, x, "gradcam", target=f)
    assert e.layer.startswith("backbone.") and e.cam.shape[0] == 1
    assert e.maps.shape == (1, 128, 128) and float(e.maps.max()) == pytest.approx(1.0)
