"""gScoreCAM (issue 15): Score-CAM on each image's k highest-gradient channels.  Checked against Score-CAM
itself (k = every channel gives its map; a smaller k keeps exactly the top-k channels by mean gradient with
Score-CAM's own weights for them), by counting the masked forward passes with a forward hook, on hand-set
models whose evidence sits in one known region (a classifier and a CLIP-like image tower scored with
``salience.targets.text_image_similarity``), and for bad ``k``."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import salience  # noqa: E402
from _models import Tiny, bag_of_words, peaks_inside, two_square_scene  # noqa: E402
from salience import targets  # noqa: E402
from salience.attribution import gscorecam, scorecam  # noqa: E402
from salience.attribution.vlm import ImageTower  # noqa: E402
from salience.errors import InputError  # noqa: E402

LAYER = "features.5"  # Tiny's last ReLU: 8 channels


def _x(b: int = 2, size: int = 12) -> torch.Tensor:
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(3))


def test_k_at_least_the_channel_count_is_scorecam() -> None:
    """k = 8 (every channel of the layer) and k = 1000 (more than there are) give Score-CAM's maps and weights."""
    net, x = Tiny().eval(), _x()
    ref = scorecam(net, x, target=[1, 3], layer=LAYER, batch_size=3)
    for k in (8, 1000):
        e = gscorecam(net, x, target=[1, 3], layer=LAYER, k=k, batch_size=3)
        assert e.extras["channels"] == 8
        assert float((e.maps - ref.maps).abs().max()) <= 1e-6
        assert float((e.extras["weights"] - ref.extras["weights"]).abs().max()) <= 1e-6
        assert torch.equal(e.targets, ref.targets)


def _mean_gradients(net: torch.nn.Module, x: torch.Tensor, cls: list[int]) -> torch.Tensor:
    """(B, K) spatially averaged gradient of the class logits at LAYER, computed here with a plain hook."""
    got = {}
    h = net.features[5].register_forward_hook(lambda m, i, o: got.setdefault("a", o))
    try:
        out = net(x)
    finally:
        h.remove()
    (g,) = torch.autograd.grad(out[torch.arange(len(cls)), cls].sum(), got["a"])
    return g.mean(dim=(2, 3))


def test_small_k_keeps_the_top_gradient_channels_with_scorecam_weights() -> None:
    """k = 3: the kept channels are the 3 largest mean gradients (computed independently); their weights are
    Score-CAM's weights of those channels, the others 0, and the low-resolution map is relu(sum w_k A_k)."""
    net, x = Tiny().eval(), _x()
    cls = [1, 3]
    ref = scorecam(net, x, target=cls, layer=LAYER)
    e = gscorecam(net, x, target=cls, layer=LAYER, k=3)
    g = _mean_gradients(net, x, cls)
    for b in range(2):
        want = g[b].topk(3).indices.sort().values
        assert torch.equal(e.extras["channel_index"][b], want)
        w = e.extras["weights"][b]
        assert torch.allclose(w[want], ref.extras["weights"][b, want], atol=1e-6)
        rest = torch.ones(8, dtype=torch.bool)
        rest[want] = False
        assert bool((w[rest] == 0).all())
    with torch.no_grad():
        a = net.features(x)
    cam = torch.relu(torch.einsum("bk,bkhw->bhw", e.extras["weights"], a))
    assert torch.allclose(e.extras["cam"], cam, atol=1e-5)
    assert float((e.maps - ref.maps).abs().max()) > 1e-3  # 3 of 8 channels: not Score-CAM's map


@pytest.mark.parametrize("k,batch_size,b", [(3, 2, 1), (5, 2, 2), (2, 32, 2)])
def test_small_k_costs_k_masked_forward_passes(k: int, batch_size: int, b: int) -> None:
    """A forward hook on the model counts its calls and the images they carry: one gradient pass over the
    batch, then k masked images per image in ceil(k / batch_size) calls each (Score-CAM: 8 per image)."""
    net, x = Tiny().eval(), _x(b)
    calls: list[int] = []
    h = net.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        gscorecam(net, x, target=0, layer=LAYER, k=k, batch_size=batch_size)
        ours = list(calls)
        calls.clear()
        scorecam(net, x, target=0, layer=LAYER, batch_size=batch_size)
        full = list(calls)
    finally:
        h.remove()
    assert ours[0] == b  # the forward pass whose gradient ranks the channels
    assert sum(ours[1:]) == b * k
    assert len(ours) == 1 + b * math.ceil(k / batch_size)
    assert sum(full[1:]) == b * 8


class ColourNet(torch.nn.Module):
    """A hand-set classifier: 12 per-pixel 1x1 detectors (0: red ``relu(2r - g - b)``, 1: green, the others
    random mixes, 0 on grey for none of them), mean-pooled; logit 0 = red + 0.1 x the mixes, logit 1 = green +
    0.1 x the mixes."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(5)
        self.conv = torch.nn.Conv2d(3, 12, 1, bias=False)
        self.act = torch.nn.ReLU()
        self.fc = torch.nn.Linear(12, 2, bias=False)
        with torch.no_grad():
            w = torch.rand(12, 3, generator=g) - 0.5
            w[:2] = (3 * torch.eye(3) - torch.ones(3, 3))[:2]
            self.conv.weight.copy_(w[:, :, None, None])
            fc = torch.full((2, 12), 0.1)
            fc[:, :2] = torch.eye(2)
            self.fc.weight.copy_(fc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.act(self.conv(x)).mean(dim=(2, 3)))


def test_map_peaks_on_the_evidence_of_a_hand_set_model() -> None:
    """Class 0's evidence is the red square, class 1's the green one: with k = 2 of 12 channels the map of
    each class peaks inside its square wherever it is, and the class's own detector is among the kept."""
    net = ColourNet().eval()
    x, where = two_square_scene(5, seed=11)
    for cls, colour in ((0, "red"), (1, "green")):
        e = salience.explain(net, x, "gscorecam", target=cls, layer="act", k=2, probabilities=False)
        assert all(peaks_inside(e.maps, where, colour)), colour
        assert all(cls in row.tolist() for row in e.extras["channel_index"])


class ToyCLIP(torch.nn.Module):
    """A CLIP-like image tower: ColourNet's 12 detectors, mean-pooled and projected into the text encoder's
    space (detector 0 -> the word "red", 1 -> "green", the rest -> small random directions)."""

    def __init__(self, encoder) -> None:
        super().__init__()
        self.concepts = ColourNet()
        words = torch.as_tensor(np.asarray(encoder(["red", "green"]), dtype=np.float32))  # (2, 16)
        g = torch.Generator().manual_seed(9)
        cols = torch.cat([words, 0.05 * torch.randn(10, words.shape[1], generator=g)])  # (12, 16)
        self.proj = torch.nn.Linear(12, words.shape[1], bias=False)
        with torch.no_grad():
            self.proj.weight.copy_(cols.T)

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        c = self.concepts
        return self.proj(c.act(c.conv(x)).mean(dim=(2, 3)))


def test_clip_like_tower_with_a_text_image_similarity_target() -> None:
    """A callable target (salience.targets.text_image_similarity): the map for "a red square" peaks inside the
    red square, for "a green square" inside the green one; the scores are the embeddings' cosines; k = 3 of
    12 channels cost 3 masked passes per image."""
    tower = ImageTower(ToyCLIP(bag_of_words)).eval()
    x, where = two_square_scene(4, seed=21)
    for colour in ("red", "green"):
        f = targets.text_image_similarity(f"a {colour} square", encoder=bag_of_words)
        e = salience.explain(tower, x, "gscorecam", target=f, layer="model.concepts.act", k=3)
        assert e.method == "gscorecam" and e.extras["channels"] == 3
        assert all(peaks_inside(e.maps, where, colour)), colour
        with torch.no_grad():
            img = tower(x)
        txt = bag_of_words([f"a {colour} square"])
        want = torch.nn.functional.cosine_similarity(img, txt.expand_as(img), dim=1)
        assert torch.allclose(e.scores, want, atol=1e-5)


@pytest.mark.parametrize("k", [0, -3, 2.5, True, "10", None])
def test_bad_k_is_refused_with_a_clear_message(k) -> None:
    net, x = Tiny().eval(), _x(1)
    with pytest.raises(InputError, match=r"k must be an integer >= 1"):
        salience.explain(net, x, "gscorecam", target=0, layer=LAYER, k=k)


def test_unknown_parameter_and_bad_batch_size_are_refused() -> None:
    net, x = Tiny().eval(), _x(1)
    with pytest.raises(InputError, match="batch_size"):
        gscorecam(net, x, target=0, layer=LAYER, k=2, batch_size=0)
    with pytest.raises(InputError):
        gscorecam(net, x, target=0, layer=LAYER, topk=2)
