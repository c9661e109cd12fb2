"""Transformer attribution (Chefer, Gur & Wolf, CVPR 2021; issue 15) against a reference written out here.

The reference runs the forward pass of a torchvision VisionTransformer by hand (patch embedding, class
token, position embedding, per block layer norm, q/k/v, softmax attention, output projection, residuals,
MLP with GELU, final norm, head) and then the relevance pass layer by layer with explicit formulas: the z+
rule on every linear layer through its table of contributions ``x_i w_ji``, layer norm / GELU / softmax
passing relevance, the product rule on ``A @ V`` and ``Q K^T``, and residual sums split in proportion to
the operands and renormalised.  Only the plain gradient ``d score / d A`` comes from autograd.
"""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
F = torch.nn.functional

import salience  # noqa: E402
from _models import tiny_vit  # noqa: E402
from salience.attribution._hooks import model_snapshot  # noqa: E402
from salience.errors import InputError, ModelError  # noqa: E402

EPS = 1e-9


def _stab(z: torch.Tensor) -> torch.Tensor:
    return torch.where(z >= 0, z + EPS, z - EPS)


def _zplus(x: torch.Tensor, w: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """z+ through y = x w^T (bias left out): R_i = sum_j (x_i w_ji)^+ / sum_i' (x_i' w_ji')^+ R_j."""
    c = (x[..., None, :] * w).clamp(min=0)  # (..., out, in)
    z = c.sum(dim=-1, keepdim=True)
    return (c / (z + EPS) * r[..., None]).sum(dim=-2)


def _split(a: torch.Tensor, b: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Residual a + b: proportional split, then each part rescaled to its |total|'s share of r's total."""
    s = r / _stab(a + b)
    ra, rb = a * s, b * s
    out = []
    tot = r.flatten(1).sum(dim=1)
    sa, sb = ra.flatten(1).sum(dim=1), rb.flatten(1).sum(dim=1)
    for part, own in ((ra, sa), (rb, sb)):
        share = own.abs() / (sa.abs() + sb.abs()) * tot
        out.append(part * (share / own)[:, None, None])
    return out[0], out[1]


def _reference(vit: torch.nn.Module, x: torch.Tensor, target: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """(R_A per block, the class token's row of the rollout) for ``vit`` on ``x`` by the paper's rules."""
    tv = vit.eval()
    n = x.shape[0]
    with torch.enable_grad():
        t = tv.conv_proj(x).flatten(2).transpose(1, 2)
        e = torch.cat([tv.class_token.expand(n, -1, -1), t], dim=1) + tv.encoder.pos_embedding
        saved = []
        for layer in tv.encoder.layers:
            mha = layer.self_attention
            h, dm = mha.num_heads, mha.embed_dim // mha.num_heads
            u = layer.ln_1(e)
            wq, wk, wv = mha.in_proj_weight.chunk(3)
            bq, bk, bv = mha.in_proj_bias.chunk(3)
            q, k, v = (F.linear(u, w, b).reshape(n, -1, h, dm).transpose(1, 2)
                       for w, b in ((wq, bq), (wk, bk), (wv, bv)))
            qs = q / math.sqrt(dm)
            a = torch.softmax(qs @ k.transpose(-2, -1), dim=-1)
            a.retain_grad()
            o = a @ v
            om = o.transpose(1, 2).reshape(n, -1, mha.embed_dim)
            att_out = F.linear(om, mha.out_proj.weight, mha.out_proj.bias)
            e1 = att_out + e
            y = layer.ln_2(e1)
            m1 = layer.mlp[0](y)
            g = F.gelu(m1)
            m2 = layer.mlp[3](g)
            saved.append(dict(e=e, u=u, q=q, qs=qs, k=k, v=v, a=a, o=o, om=om, att_out=att_out, e1=e1, y=y,
                              g=g, m2=m2, wq=wq, wk=wk, wv=wv, mha=mha, layer=layer))
            e = e1 + m2
        c = tv.encoder.ln(e)[:, 0]
        logits = tv.heads(c)
        logits[:, target].sum().backward()
    grads = [s["a"].grad for s in saved]
    d = lambda t: t.detach()  # noqa: E731
    with torch.no_grad():
        r_out = torch.zeros_like(logits)
        r_out[:, target] = 1.0  # one-hot at the target
        r_c = _zplus(d(c), tv.heads.head.weight, r_out)
        r_e = torch.zeros_like(e)
        r_e[:, 0] = r_c  # the class token; the final layer norm passes relevance
        rel_a = []
        for s in reversed(saved):
            r_e1, r_m2 = _split(d(s["e1"]), d(s["m2"]), r_e)
            r_g = _zplus(d(s["g"]), s["layer"].mlp[3].weight, r_m2)
            r_y = _zplus(d(s["y"]), s["layer"].mlp[0].weight, r_g)  # GELU passes
            r_e1 = r_e1 + r_y  # ln_2 passes; e1 feeds both branches
            r_att, r_prev = _split(d(s["att_out"]), d(s["e"]), r_e1)
            r_om = _zplus(d(s["om"]), s["mha"].out_proj.weight, r_att)
            h, dm = s["a"].shape[1], s["q"].shape[-1]
            r_o = r_om.reshape(n, -1, h, dm).transpose(1, 2)
            a, v, o = d(s["a"]), d(s["v"]), d(s["o"])
            so = r_o / _stab(o)
            r_a = a * (so @ v.transpose(-2, -1))
            r_v = v * (a.transpose(-2, -1) @ so)
            rel_a.append(r_a)
            qs, k = d(s["qs"]), d(s["k"])
            sc = qs @ k.transpose(-2, -1)
            ss = r_a / _stab(sc)  # softmax passes
            r_q = qs * (ss @ k)
            r_k = k * (ss.transpose(-2, -1) @ qs)
            u = d(s["u"])
            r_u = sum(_zplus(u, s[w], rr.transpose(1, 2).reshape(n, -1, h * dm))
                      for w, rr in (("wq", r_q), ("wk", r_k), ("wv", r_v)))
            r_e = r_prev + r_u  # ln_1 passes
        rel_a.reverse()
        tokens = rel_a[0].shape[-1]
        roll = torch.eye(tokens).expand(n, tokens, tokens)
        for r_a, g in zip(rel_a, grads):
            roll = roll + (g * r_a).clamp(min=0).mean(dim=1) @ roll
    return rel_a, roll[:, 0, 1:]


def test_agrees_with_the_rules_written_out_by_hand() -> None:
    """Each block's attention relevance and the rolled-out class row equal the written-out reference."""
    vit = tiny_vit(image_size=16, patch_size=4, num_classes=5, seed=2).eval()
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(7))
    want_rel, want_row = _reference(vit, x, target=3)
    e = salience.explain(vit, x, "transformer-attribution", target=3)
    got = e.extras["attention_relevance"]
    assert len(got) == len(want_rel) == 2
    for g, w in zip(got, want_rel):
        scale = float(w.abs().max())
        assert scale > 1e-3  # a relevance that is not trivially zero
        assert float((g - w).abs().max()) <= 1e-4 * scale
    row = e.relevance[:, 0, 1:]
    assert float((row - want_row).abs().max()) <= 1e-5 * float(want_row.abs().max())
    assert torch.allclose(e.cam.reshape(2, -1), row.clamp(min=0), atol=0)
    assert float(e.maps.max()) == pytest.approx(1.0)


def test_last_blocks_attention_relevance_is_a_bounded_share_of_the_seed() -> None:
    """With z+ everywhere and renormalised residuals the one-hot seed (total 1) is not inflated on its way
    down: the last block's attention relevance R_A sums, per image, to a share of it in (1e-3, 1] (neither
    vanished nor grown).  The values themselves are checked against the hand reference above."""
    vit = tiny_vit(image_size=16, patch_size=4, num_classes=5, seed=2).eval()
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(8))
    e = salience.explain(vit, x, "transformer-attribution", target=[0, 1, 2])
    rel = e.extras["attention_relevance"]
    tot = rel[-1].flatten(1).sum(dim=1)
    assert bool((tot.abs() <= 1.0 + 1e-4).all()) and bool((tot.abs() > 1e-3).all())


def test_model_is_restored_and_start_layer_is_checked() -> None:
    vit = tiny_vit()
    before = model_snapshot(vit)
    x = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    full = salience.explain(vit, x, "transformer-attribution", target=1)
    late = salience.explain(vit, x, "transformer-attribution", target=1, start_layer=1)
    assert model_snapshot(vit) == before
    assert not torch.allclose(full.relevance, late.relevance)
    for bad in (-1, 2, 1.5, True):
        with pytest.raises(InputError, match="start_layer"):
            salience.explain(vit, x, "transformer-attribution", start_layer=bad)
    assert model_snapshot(vit) == before


def test_an_operation_without_a_rule_is_named() -> None:
    """A transformer with a SiLU MLP has no rule here: the error names the operation and the layer."""
    vit = tiny_vit()
    for layer in vit.encoder.layers:
        layer.mlp[1] = torch.nn.SiLU()
    x = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    with pytest.raises(ModelError, match="silu"):
        salience.explain(vit, x, "transformer-attribution", target=0)


def test_renormalised_residual_split_by_hand() -> None:
    """Parts totalling 2 and -1 of a relevance totalling 1: they become 2/3 and 1/3 (each |total|'s share)."""
    from salience.attribution.lrp import _renormalise

    r = torch.tensor([[0.25, 0.75]])
    a, b = torch.tensor([[1.5, 0.5]]), torch.tensor([[-1.0, 0.0]])
    ra, rb = _renormalise([a, b], r)
    assert torch.allclose(ra, a * (2 / 3) / 2) and torch.allclose(rb, b * (1 / 3) / -1)
    assert float(ra.sum() + rb.sum()) == pytest.approx(1.0)
    za, zb = _renormalise([torch.zeros(1, 2), torch.zeros(1, 2)], r)  # nothing to share: zeros, no NaN
    assert torch.equal(za, torch.zeros(1, 2)) and torch.equal(zb, torch.zeros(1, 2))
