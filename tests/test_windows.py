"""Window attention (Swin): attention rollout and attention relevance over shifted windows (issue 15).

A torchvision SwinTransformer with its queries and keys zeroed (and no relative position bias) attends
uniformly within each window, and within each region of a shifted window: the dense attention of every
block is then known by hand, so the rollout is checked against matrices written out here from the
windows' geometry (not from the code's window index).  The window-by-window algebra is also checked
against dense matrices for a real (random-weight) Swin, for relevance too.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

import salience  # noqa: E402
from salience.attribution._hooks import model_snapshot  # noqa: E402
from salience.attribution.windows import WindowCapture, window_attention_layers, window_rollout  # noqa: E402
from salience.errors import InputError  # noqa: E402


def _swin(depths=(2,), seed: int = 0, uniform: bool = False) -> torch.nn.Module:
    torch.manual_seed(seed)
    m = torchvision.models.SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=list(depths),
                                           num_heads=[2] * len(depths), window_size=[4, 4], num_classes=3,
                                           stochastic_depth_prob=0.0).eval()
    with torch.no_grad():
        torch.nn.init.normal_(m.head.weight)
        for _, a in window_attention_layers(m):
            torch.nn.init.normal_(a.relative_position_bias_table, std=0.5)
            if uniform:
                c = a.qkv.weight.shape[1]
                a.qkv.weight[:2 * c].zero_()
                a.qkv.bias[:2 * c].zero_()
                a.relative_position_bias_table.zero_()
    return m


def _x(b: int = 2, size: int = 32, seed: int = 1) -> torch.Tensor:
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _uniform_attention(n: int, window: int, shift: int) -> np.ndarray:
    """Dense (n*n, n*n) attention of a block attending uniformly within windows of ``window`` tokens,
    shifted by ``shift`` (Swin's cyclic shift: the windows of the shifted grid, and inside each window
    only the tokens of the same region of the unshifted grid)."""
    def group(r: int, c: int) -> tuple:
        if not shift:
            return (r // window, c // window)
        # the position in the rolled grid, its window, and its region (rows/columns in the last `shift`
        # of the rolled grid come from the other side of the image)
        rr, cc = (r - shift) % n, (c - shift) % n
        region = (0 if rr < n - window else 1 if rr < n - shift else 2,
                  0 if cc < n - window else 1 if cc < n - shift else 2)
        return (rr // window, cc // window, region)

    cells = list(itertools.product(range(n), range(n)))
    a = np.zeros((n * n, n * n))
    for i, p in enumerate(cells):
        mates = [j for j, q in enumerate(cells) if group(*q) == group(*p)]
        a[i, mates] = 1.0 / len(mates)
    return a


def test_window_geometry_matches_the_hand_made_matrices() -> None:
    """One stage on an 8 x 8 grid (window 4, shift 2), then a 2 x 2 merge into 4 x 4 (one window, so no
    shift): the dense attention scattered from each captured window equals the matrix written out from the
    windows' geometry, shifted regions included."""
    a0, a1 = _uniform_attention(8, 4, 0), _uniform_attention(8, 4, 2)
    # token (0, 0) of the shifted block attends to the 2 x 2 corner only, token (3, 3) to a 4 x 4 window
    assert set(np.nonzero(a1[0])[0]) == {0, 1, 8, 9} and len(np.nonzero(a1[3 * 8 + 3])[0]) == 16
    net = _swin(depths=(2, 2), uniform=True)
    with WindowCapture(window_attention_layers(net)) as cap, torch.no_grad():
        net(_x(1))
    recs = cap.attentions
    assert [r.grid for r in recs] == [(8, 8), (8, 8), (4, 4), (4, 4)]
    for rec, want in zip(recs, [a0, a1, np.full((16, 16), 1 / 16), np.full((16, 16), 1 / 16)]):
        assert np.abs(_dense(rec, "rollout") - want).max() < 1e-6
    # (uniform attention within windows is doubly stochastic, so its rollout's mean row is flat whatever the
    # geometry: the end-to-end algebra is checked on real attention below)
    e = salience.explain(net, _x(1), "attention-rollout")
    assert e.cam.shape == (1, 8, 8) and e.attentions == 4


def _dense(rec, kind: str, grad=None) -> np.ndarray:
    """A record's dense (N, N) matrix over its real tokens, scattered from its windows."""
    p = rec.probs.detach().double()
    h, w = rec.grid
    hp, wp = rec.padded
    if kind == "rollout":
        mat = p.mean(dim=2)[0]
    else:
        mat = torch.relu(grad.double().reshape(p.shape) * p).mean(dim=2)[0]
    full = np.zeros((hp * wp, hp * wp))
    for k, slots in enumerate(rec.index.numpy()):
        full[np.ix_(slots, slots)] = mat[k].numpy()
    real = [r * wp + c for r in range(h) for c in range(w)]
    return full[np.ix_(real, real)]


@pytest.mark.parametrize("size", [32, 36])  # 36: a 9 x 9 grid padded to 12 x 12, merged to 5 x 5
def test_window_algebra_equals_dense_matrices_for_rollout_and_relevance(size: int) -> None:
    net = _swin(depths=(2, 2), seed=3)
    x = _x(1, size, seed=4)
    with WindowCapture(window_attention_layers(net)) as cap, torch.enable_grad():
        out = net(x.requires_grad_(True))
        grads = torch.autograd.grad(out[0, 1], [r.raw for r in cap.attentions])
    recs = cap.attentions
    n1 = recs[0].grid
    got_roll = window_rollout(recs, method="t")[0].numpy()
    got_rel = window_rollout(recs, method="t", gradients=list(grads))[0].numpy()

    def merge(g: tuple[int, int]) -> np.ndarray:
        h, w = g
        hh, ww = (h + 1) // 2, (w + 1) // 2
        m = np.zeros((hh * ww, h * w))
        for i, j in itertools.product(range(hh), range(ww)):
            kids = [(2 * i + a) * w + 2 * j + b for a in range(2) for b in range(2) if 2 * i + a < h and 2 * j + b < w]
            m[i * ww + j, kids] = 1.0 / len(kids)
        return m

    r_roll = np.eye(n1[0] * n1[1])
    r_rel = np.eye(n1[0] * n1[1])
    grid = n1
    for rec, g in zip(recs, grads):
        if rec.grid != grid:
            m = merge(grid)
            r_roll, r_rel, grid = m @ r_roll, m @ r_rel, rec.grid
        a = _dense(rec, "rollout")
        ah = 0.5 * a + 0.5 * np.eye(a.shape[0])
        r_roll = (ah / ah.sum(axis=1, keepdims=True)) @ r_roll
        r_rel = r_rel + _dense(rec, "relevance", g) @ r_rel
    want_roll = r_roll.mean(axis=0).reshape(n1)
    want_rel = r_rel.mean(axis=0).reshape(n1)
    assert np.abs(got_roll - want_roll).max() < 1e-6 * np.abs(want_roll).max()
    assert np.abs(got_rel - want_rel).max() < 1e-5 * np.abs(want_rel).max()
    assert np.abs(want_rel - want_rel.mean()).max() > 1e-4  # not a flat map


@pytest.mark.parametrize("method", ["attention-rollout", "attention-relevance"])
def test_batches_model_state_and_parameters(method: str) -> None:
    net = _swin(depths=(2, 2), seed=5)
    before = model_snapshot(net)
    x = _x(3, 32, seed=6)
    whole = salience.explain(net, x, method, target=[0, 1, 2])
    assert model_snapshot(net) == before
    for i in range(3):
        one = salience.explain(net, x[i:i + 1], method, target=i)
        assert torch.allclose(one.maps[0], whole.maps[i], atol=1e-5)
    assert whole.maps.shape == (3, 32, 32) and float(whole.maps.max()) == pytest.approx(1.0)
    if method == "attention-rollout":
        with pytest.raises(InputError, match="head_fusion"):
            salience.explain(net, x, method, head_fusion="median")


def test_capture_is_closed_after_a_failing_forward_pass() -> None:
    """A model that raises inside a window-attention block leaves no hook and no open function mode."""
    net = _swin(seed=7)
    attn = window_attention_layers(net)[1][1]
    boom = attn.register_forward_hook(lambda *a: (_ for _ in ()).throw(RuntimeError("boom")), prepend=True)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            salience.explain(net, _x(1), "attention-rollout")
    finally:
        boom.remove()
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
    assert not torch.overrides._get_current_function_mode_stack()
    assert salience.explain(net, _x(1), "attention-rollout").maps.shape == (1, 32, 32)


def test_every_attention_row_fits_swin() -> None:
    from salience.attribution.transformer import attention_layers, fits_model_kind, has_attention
    from salience.registry import methods

    swin = _swin()
    assert has_attention(swin) and not attention_layers(swin)  # window attention only
    rows = [m for m in methods("explanation") if m.model_kind]
    assert len(rows) == 3 and all(fits_model_kind(m.model_kind, swin) for m in rows)
    for m in rows:
        e = salience.explain(swin, _x(2), m.name, target=[0, 1])
        assert e.cam.shape == (2, 8, 8) and float(e.maps.max()) == pytest.approx(1.0)


def test_transformer_attribution_on_a_global_window_matches_the_rules_by_hand() -> None:
    """A Swin stage of two blocks whose window covers its 4 x 4 grid (so no shift, no padding): the
    relevance reaching the last block's attention, propagated by hand from the head (z+), the average
    pooling (shares), the final norm and the block's residuals and MLP, equals the method's; the map is the
    gradient-weighted rollout of the method's relevances, mean row of (I + Abar_2)(I + Abar_1)."""
    from test_transformer_attribution import _split, _stab, _zplus

    torch.manual_seed(11)
    net = torchvision.models.SwinTransformer(patch_size=[4, 4], embed_dim=8, depths=[2], num_heads=[2],
                                             window_size=[4, 4], num_classes=3, stochastic_depth_prob=0.0).eval()
    with torch.no_grad():  # attention weights of a size that gives the attention branch a real share
        torch.nn.init.normal_(net.head.weight)
        for _, m in window_attention_layers(net):
            torch.nn.init.normal_(m.qkv.weight, std=0.5)
            torch.nn.init.normal_(m.proj.weight, std=0.5)
    x = _x(1, 16, seed=12)
    blk = net.features[1][1]
    attn = blk.attn
    with WindowCapture(window_attention_layers(net)) as cap, torch.enable_grad():
        t0 = net.features[1][0](net.features[0](x))  # (1, 4, 4, 8): the last block's input
        u = blk.norm1(t0)
        a_out = attn(u)
        e1 = t0 + a_out
        y = blk.norm2(e1)
        g = torch.nn.functional.gelu(blk.mlp[0](y))
        m2 = blk.mlp[3](g)
        f = net.norm(e1 + m2).permute(0, 3, 1, 2)
        pooled = f.mean(dim=(2, 3))
        logits = net.head(pooled)
        grads = torch.autograd.grad(logits[0, 2], [r.raw for r in cap.attentions])
    flat = lambda t: t.detach().reshape(1, 16, -1)  # noqa: E731
    with torch.no_grad():
        r_pool = _zplus(pooled, net.head.weight, torch.tensor([[0.0, 0.0, 1.0]]))
        r_f = f / _stab(f.sum(dim=(2, 3), keepdim=True)) * r_pool[:, :, None, None]  # the pooling's shares
        r_e2 = r_f.permute(0, 2, 3, 1).reshape(1, 16, 8)  # the final norm passes
        r_e1, r_m2 = _split(flat(e1), flat(m2), r_e2)
        r_g = _zplus(flat(g), blk.mlp[3].weight, r_m2)
        r_e1 = r_e1 + _zplus(flat(y), blk.mlp[0].weight, r_g)  # GELU and norm2 pass
        r_att, _ = _split(flat(a_out), flat(t0), r_e1)
        # inside the window attention: o = A v per head, merged, projected
        c, h = 8, 2
        qkv = torch.nn.functional.linear(flat(u), attn.qkv.weight, attn.qkv.bias).reshape(1, 16, 3, h, c // h)
        v = qkv[:, :, 2].transpose(1, 2)  # (1, heads, 16, 4)
        a = cap.attentions[-1].raw.detach()  # (1, heads, 16, 16): one window
        o = a @ v
        r_o = _zplus(o.transpose(1, 2).reshape(1, 16, c), attn.proj.weight, r_att).reshape(1, 16, h, c // h)
        want = a * ((r_o.transpose(1, 2) / _stab(o)) @ v.transpose(-2, -1))
    e = salience.explain(net, x, "transformer-attribution", target=2)
    rels = e.extras["attention_relevance"]
    assert float(want.sum()) > 0.01  # a share of the seed's 1 reaches the attention
    assert float((rels[1] - want).abs().max()) <= 1e-4 * float(want.abs().max())
    mats = [torch.eye(16) + torch.relu(gr.reshape(r.shape) * r).mean(dim=1)[0] for gr, r in zip(grads, rels)]
    roll = (mats[1] @ mats[0]).mean(dim=0).reshape(4, 4)
    assert float((e.cam[0] - roll).abs().max()) <= 1e-5 * float(roll.abs().max())


def test_swin_v2_rollout_and_relevance_run_and_its_cosine_attention_has_no_lrp_rule() -> None:
    """Swin V2 (cosine attention, a bias MLP): the softmax tap reads it; LRP has no rule for F.normalize."""
    from torchvision.models import swin_transformer as st

    from salience.errors import ModelError

    torch.manual_seed(13)
    net = torchvision.models.SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 2],
                                             window_size=[4, 4], num_classes=3, stochastic_depth_prob=0.0,
                                             block=st.SwinTransformerBlockV2,
                                             downsample_layer=st.PatchMergingV2).eval()
    with torch.no_grad():
        torch.nn.init.normal_(net.head.weight)
    for method in ("attention-rollout", "attention-relevance"):
        e = salience.explain(net, _x(2), method, target=1)
        assert e.cam.shape == (2, 8, 8) and e.attentions == 4 and bool(torch.isfinite(e.maps).all())
    with pytest.raises(ModelError, match="normalize"):
        salience.explain(net, _x(1), "transformer-attribution", target=1)
