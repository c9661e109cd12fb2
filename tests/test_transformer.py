"""Transformer explanations (issue 15): attention rollout, attention relevance (Chefer et al.), Grad-CAM on
ViT tokens; hand-computed values, a hand-set model whose class evidence sits in one patch, two capture paths
(torchvision's nn.MultiheadAttention, timm-style attn_drop) that must agree, and pytorch-grad-cam's ViT
Grad-CAM on identical inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
F = torch.nn.functional

import salience  # noqa: E402
from _models import Tiny, tiny_vit  # noqa: E402
from salience.attribution._hooks import model_snapshot  # noqa: E402
from salience.attribution.transformer import (  # noqa: E402
    AttentionCapture,
    attention_layers,
    has_attention,
    relevance_matrix,
    rollout_matrix,
    vit_reshape,
)
from salience.errors import InputError, ModelError, ZeroGradientError  # noqa: E402


def _x(b: int = 2, size: int = 12, seed: int = 1) -> torch.Tensor:
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(seed))


# ---- the rules, by hand ----------------------------------------------------------------------------


def test_rollout_by_hand() -> None:
    """Two layers of 3 tokens, two heads: the rollout is the product of the residual-mixed, head-averaged
    attentions, computed here with numpy."""
    g = np.random.default_rng(0)
    atts = []
    for _ in range(2):
        a = g.random((1, 2, 3, 3))
        atts.append(a / a.sum(axis=-1, keepdims=True))
    hats = []
    for a in atts:
        m = 0.5 * a.mean(axis=1)[0] + 0.5 * np.eye(3)
        hats.append(m / m.sum(axis=1, keepdims=True))
    want = hats[1] @ hats[0]
    got = rollout_matrix([torch.tensor(a, dtype=torch.float32) for a in atts])[0].numpy()
    assert np.abs(got - want).max() < 1e-6
    assert np.allclose(got.sum(axis=1), 1.0, atol=1e-6)  # rollout stays row-stochastic
    # head fusion "max": the element-wise max over heads, then the same mixing
    m = 0.5 * atts[0].max(axis=1)[0] + 0.5 * np.eye(3)
    got_max = rollout_matrix([torch.tensor(atts[0], dtype=torch.float32)], head_fusion="max")[0].numpy()
    assert np.abs(got_max - m / m.sum(axis=1, keepdims=True)).max() < 1e-6


def test_rollout_of_identity_is_identity_and_of_uniform_is_uniform_over_patches() -> None:
    eye = torch.eye(5)[None, None].repeat(2, 3, 1, 1)
    assert torch.equal(rollout_matrix([eye, eye, eye]), torch.eye(5)[None].repeat(2, 1, 1))
    uni = torch.full((1, 2, 5, 5), 0.2)
    r = rollout_matrix([uni, uni])[0]
    assert torch.allclose(r[0, 1:], torch.full((4,), float(r[0, 1])), atol=1e-7)


def test_relevance_by_hand() -> None:
    """R = I; R <- R + mean_h(relu(G * A)) R, layer after layer."""
    g = np.random.default_rng(1)
    atts = [g.random((1, 2, 3, 3)) for _ in range(2)]
    grads = [g.normal(size=(1, 2, 3, 3)) for _ in range(2)]
    r = np.eye(3)
    for a, gr in zip(atts, grads):
        r = r + np.maximum(gr * a, 0).mean(axis=1)[0] @ r
    got = relevance_matrix([torch.tensor(a, dtype=torch.float32) for a in atts],
                           [torch.tensor(x, dtype=torch.float32) for x in grads])[0].numpy()
    assert np.abs(got - r).max() < 1e-5


# ---- torchvision's ViT: capture without changing the model ----------------------------------------------


def test_capture_leaves_the_output_and_the_model_unchanged() -> None:
    """With the hooks on, the model's output is unchanged (the recomputed attention is torch's formula);
    every attention block is recorded once, with rows that sum to 1; no hook is left afterwards."""
    vit = tiny_vit(image_size=32, patch_size=8).eval()
    x = _x(3, 32)
    before = model_snapshot(vit)
    with torch.no_grad():
        ref = vit(x)
        with AttentionCapture(attention_layers(vit)) as cap:
            out = vit(x)
    assert torch.allclose(out, ref, atol=1e-5, rtol=1e-5)
    assert len(cap.attentions) == 2 and cap.attentions[0].shape == (3, 2, 17, 17)
    assert torch.allclose(cap.attentions[1].sum(dim=-1), torch.ones(3, 2, 17), atol=1e-5)
    assert model_snapshot(vit) == before


def test_uniform_attention_gives_a_uniform_map() -> None:
    """q = k = 0 in every block: every token attends uniformly, so rollout is the same at every patch."""
    vit = tiny_vit(image_size=32, patch_size=8).eval()
    with torch.no_grad():
        for _, m in attention_layers(vit):
            m.in_proj_weight[:32].zero_()  # q and k weights (hidden 16: rows 0..15 q, 16..31 k)
            m.in_proj_bias[:32].zero_()
    e = salience.explain(vit, _x(2, 32), "attention-rollout")
    assert e.cam.shape == (2, 4, 4)
    assert torch.allclose(e.cam, e.cam[:, :1, :1].expand_as(e.cam), atol=1e-7)
    assert torch.allclose(e.maps, torch.ones_like(e.maps))  # divided by the max: all ones, not blank


# ---- a hand-set transformer whose class evidence sits in one patch -----------------------------------------


class EvidenceViT(torch.nn.Module):
    """Patches of 8 x 8 on a 32 x 32 image; token features [redness (mean R - G), 1, query, out].

    Block 1's single head lets the class token attend to patches by redness (q from the class token's
    query channel, k from the redness), and writes the attended redness into the class token's "out"
    channel; block 2 attends uniformly (q = k = 0) and adds nothing (v = 0).  The class-1 score is the class
    token's "out" channel, i.e. the redness of the reddest patch: a white or blue distractor patch carries
    no evidence.
    """

    def __init__(self, sharpness: float = 40.0) -> None:
        super().__init__()
        d = 4
        self.patch = torch.nn.Conv2d(3, d, 8, stride=8)
        self.blocks = torch.nn.ModuleList([torch.nn.MultiheadAttention(d, 1, batch_first=True) for _ in range(2)])
        self.cls = torch.nn.Parameter(torch.tensor([0.0, 0.0, 1.0, 0.0]))
        with torch.no_grad():
            self.patch.weight.zero_()
            self.patch.bias.copy_(torch.tensor([0.0, 1.0, 0.0, 0.0]))
            self.patch.weight[0, 0] = 1.0 / 64
            self.patch.weight[0, 1] = -1.0 / 64
            for blk in self.blocks:
                blk.in_proj_weight.zero_()
                blk.in_proj_bias.zero_()
                blk.out_proj.weight.zero_()
                blk.out_proj.bias.zero_()
            w = self.blocks[0].in_proj_weight  # rows: q 0..3, k 4..7, v 8..11
            w[0, 2] = sharpness * math.sqrt(d)  # q0 = query channel (only the class token has it)
            w[4, 0] = 1.0  # k0 = redness
            w[8, 0] = 1.0  # v0 = redness
            self.blocks[0].out_proj.weight[3, 0] = 1.0  # -> the "out" channel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.patch(x).flatten(2).transpose(1, 2)  # (B, 16, 4)
        t = torch.cat([self.cls.expand(x.shape[0], 1, 4), t], dim=1)
        for blk in self.blocks:
            t = t + blk(t, t, t, need_weights=False)[0]
        out = t[:, 0, 3]
        return torch.stack([-out, out], dim=1)


def _scenes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Grey images with a red patch (the evidence) and a white or blue patch (a distractor) at random cells."""
    g = torch.Generator().manual_seed(seed)
    x = torch.full((n, 3, 32, 32), 0.5)
    red, other = torch.empty(n, dtype=torch.long), torch.empty(n, dtype=torch.long)
    for i in range(n):
        p, q = torch.randperm(16, generator=g)[:2].tolist()
        red[i], other[i] = p, q
        r, c = divmod(p, 4)
        x[i, :, r * 8:(r + 1) * 8, c * 8:(c + 1) * 8] = torch.tensor([0.9, 0.2, 0.2])[:, None, None]
        r, c = divmod(q, 4)
        colour = [1.0, 1.0, 1.0] if i % 2 else [0.1, 0.1, 0.9]
        x[i, :, r * 8:(r + 1) * 8, c * 8:(c + 1) * 8] = torch.tensor(colour)[:, None, None]
    return x, red, other


@pytest.mark.parametrize("method", ["attention-relevance", "transformer-attribution", "attention-rollout", "gradcam"])
def test_the_map_peaks_on_the_evidence_patch_and_moves_with_it(method: str) -> None:
    """In every scene the map's largest patch is the red one, not the distractor, wherever it is."""
    net = EvidenceViT()
    x, red, other = _scenes(12, seed=5)
    e = salience.explain(net, x, method, target=1)
    top = e.cam.reshape(12, -1).argmax(dim=1)
    assert top.tolist() == red.tolist()
    assert len(set(red.tolist())) > 5  # the evidence moved around, and the map followed


def test_relevance_is_class_specific_and_rollout_is_not() -> None:
    """Class 0 (the negated redness) has no positive gradient-weighted attention at the red patch."""
    net = EvidenceViT()
    x, red, _ = _scenes(4, seed=6)
    r1 = salience.explain(net, x, "attention-relevance", target=1).cam.reshape(4, -1)
    r0 = salience.explain(net, x, "attention-relevance", target=0).cam.reshape(4, -1)
    at = torch.arange(4)
    assert bool((r1[at, red] > 10 * r0[at, red]).all())
    a1 = salience.explain(net, x, "attention-rollout", target=1).maps
    a0 = salience.explain(net, x, "attention-rollout", target=0).maps
    assert torch.equal(a1, a0)


# ---- timm-style blocks: the attn_drop path agrees with the MultiheadAttention path ---------------------


class TimmStyleViT(torch.nn.Module):
    """timm's ViT layout (Block: norm1, Attention(qkv, attn_drop, proj), norm2, Mlp), with the weights of a
    torchvision VisionTransformer copied in, so both compute the same function."""

    def __init__(self, tv: torch.nn.Module) -> None:
        super().__init__()
        self.tv = tv
        self.blocks = torch.nn.ModuleList()
        for _ in tv.encoder.layers:
            blk = torch.nn.Module()
            blk.attn_drop = torch.nn.Dropout(0.0)
            self.blocks.append(blk)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tv = self.tv
        n = x.shape[0]
        t = tv.conv_proj(x).flatten(2).transpose(1, 2)
        t = torch.cat([tv.class_token.expand(n, -1, -1), t], dim=1) + tv.encoder.pos_embedding
        for layer, blk in zip(tv.encoder.layers, self.blocks):
            mha = layer.self_attention
            h = layer.ln_1(t)
            qkv = F.linear(h, mha.in_proj_weight, mha.in_proj_bias)
            b, m, _ = qkv.shape
            qkv = qkv.reshape(b, m, 3, mha.num_heads, -1).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            attn = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
            attn = blk.attn_drop(attn.softmax(dim=-1))
            a = (attn @ v).transpose(1, 2).reshape(b, m, -1)
            t = t + F.linear(a, mha.out_proj.weight, mha.out_proj.bias)
            t = t + layer.mlp(layer.ln_2(t))
        return tv.heads(tv.encoder.ln(t)[:, 0])


@pytest.mark.parametrize("method", ["attention-rollout", "attention-relevance", "transformer-attribution"])
def test_timm_style_blocks_agree_with_torchvision_blocks(method: str) -> None:
    vit = tiny_vit(image_size=32, patch_size=8).eval()
    timm_like = TimmStyleViT(vit).eval()
    x = _x(2, 32, seed=3)
    with torch.no_grad():
        assert torch.allclose(timm_like(x), vit(x), atol=1e-5)
    layers = [f"blocks.{i}.attn_drop" for i in range(2)]
    a = salience.explain(vit, x, method, target=[1, 3])
    b = salience.explain(timm_like, x, method, target=[1, 3], attention_layers=layers)
    assert a.attentions == b.attentions == 2
    assert torch.allclose(a.relevance, b.relevance, atol=1e-5)
    assert torch.allclose(a.maps, b.maps, atol=1e-5)


# ---- Grad-CAM on ViT tokens: the shared CAM pipeline with reshape=, against pytorch-grad-cam ----------------


@pytest.mark.slow  # importing pytorch-grad-cam takes ~20 s on the shared 2-core machine
def test_vit_gradcam_agrees_with_pytorch_grad_cam() -> None:
    """pytorch-grad-cam's ViT recipe (target layer: the last block's ln_1; reshape_transform: drop the class
    token, tokens -> grid) and salience's Grad-CAM with reshape=vit_reshape, on the same inputs."""
    pgc = pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    vit = tiny_vit(image_size=32, patch_size=8, seed=1).eval()  # a random ViT whose CAMs are not blank here
    x = _x(2, 32, seed=4)
    layer = vit.encoder.layers[-1].ln_1
    auto = salience.explain(vit, x, "gradcam", target=[0, 1])
    for ours_name, theirs_name in (("gradcam", "GradCAM"), ("hirescam", "HiResCAM")):
        e = salience.explain(vit, x, ours_name, target=[0, 1], layer=layer, reshape=vit_reshape)
        if ours_name == "gradcam":  # the automatic layer and token reshape are the same
            assert auto.layer == e.layer and torch.equal(auto.maps, e.maps)
        with getattr(pgc, theirs_name)(model=vit, target_layers=[layer],
                                       reshape_transform=lambda t: vit_reshape(t)) as cam:
            ref = cam(input_tensor=x.clone(), targets=[ClassifierOutputTarget(0), ClassifierOutputTarget(1)])
        ours = e.maps.numpy().astype(np.float64)
        theirs = np.asarray(ref, dtype=np.float64)
        for i in range(2):
            assert float(ours[i].max()) == pytest.approx(1.0)
            lo, hi = theirs[i].min(), theirs[i].max()
            assert np.abs(ours[i] - (theirs[i] - lo) / (hi - lo)).max() < 1e-5, ours_name


def test_vit_reshape_checks_its_input() -> None:
    t = torch.arange(2 * 13 * 3, dtype=torch.float32).reshape(2, 13, 3)
    g = vit_reshape(t, grid=(3, 4))
    assert g.shape == (2, 3, 3, 4) and torch.equal(g[:, :, 0, 1], t[:, 2, :])
    with pytest.raises(ModelError, match="square"):
        vit_reshape(t)
    with pytest.raises(ModelError, match="does not hold"):
        vit_reshape(t, grid=(2, 2))


# ---- errors, determinism, batches ----------------------------------------------------------------------


def test_a_cnn_is_refused_with_a_pointer() -> None:
    assert not has_attention(Tiny()) and has_attention(tiny_vit())
    for method in ("attention-rollout", "attention-relevance", "transformer-attribution"):
        with pytest.raises(ModelError, match="attention_layers="):
            salience.explain(Tiny(), _x(), method)


def test_bad_parameters_are_input_errors() -> None:
    vit = tiny_vit()
    with pytest.raises(InputError, match="head_fusion"):
        salience.explain(vit, _x(), "attention-rollout", head_fusion="median")
    with pytest.raises(InputError, match="residual"):
        salience.explain(vit, _x(), "attention-rollout", residual=2.0)
    with pytest.raises(InputError, match="takes no layer"):
        salience.explain(vit, _x(), "attention-relevance", layer="encoder")
    with pytest.raises(ModelError, match="no layer named"):
        salience.explain(vit, _x(), "attention-rollout", attention_layers=["encoder.nope"])


def test_zero_head_is_a_zero_gradient_error_for_relevance_only() -> None:
    """torchvision's untrained ViT has a zero head: relevance has no gradient to weight; rollout, which
    reads the attention alone, still gives its (class-agnostic) map."""
    torch.manual_seed(0)
    vit = torchvision.models.VisionTransformer(12, 4, 2, 2, 16, 32, num_classes=4)
    for method in ("attention-relevance", "transformer-attribution"):
        with pytest.raises(ZeroGradientError, match="zero"):
            salience.explain(vit, _x(), method)
    assert float(salience.explain(vit, _x(), "attention-rollout").maps.max()) == pytest.approx(1.0)


def test_masked_attention_is_refused() -> None:
    class Masked(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Conv2d(3, 4, 4, stride=4)
            self.attn = torch.nn.MultiheadAttention(4, 1, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            t = self.embed(x).flatten(2).transpose(1, 2)
            mask = torch.zeros(t.shape[1], t.shape[1], dtype=torch.bool)
            return self.attn(t, t, t, attn_mask=mask)[0].mean(dim=1)

    with pytest.raises(ModelError, match="mask"):
        salience.explain(Masked(), _x(), "attention-rollout", target=0)


@pytest.mark.parametrize("method", ["attention-rollout", "attention-relevance", "transformer-attribution"])
def test_batch_equals_single_and_is_deterministic(method: str) -> None:
    vit = tiny_vit()
    x = _x(3)
    whole = salience.explain(vit, x, method, target=[0, 1, 2])
    again = salience.explain(vit, x, method, target=[0, 1, 2])
    assert torch.equal(whole.maps, again.maps)
    for i in range(3):
        one = salience.explain(vit, x[i:i + 1], method, target=i)
        assert torch.allclose(one.maps[0], whole.maps[i], atol=1e-5)


def test_registry_rows_say_they_need_a_transformer() -> None:
    """model_kind is the typed fact `explain --method all` and the contract tests read."""
    from salience.registry import EXPLANATION, Method, get_method, methods

    assert {m.name for m in methods() if m.model_kind} == {"attention-rollout", "attention-relevance",
                                                           "transformer-attribution"}
    assert get_method("chefer").name == "attention-relevance" and get_method("rollout").model_kind == "transformer"
    assert get_method("attention-rollout").as_dict()["model_kind"] == "transformer"
    assert not get_method("attention-rollout").takes_layer
    with pytest.raises(ValueError, match="model_kind"):
        Method("x", EXPLANATION, "m:f", "d", "p", model_kind="cnn")
