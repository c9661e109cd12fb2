"""Explanations of vision transformers from their attention: attention rollout, gradient-weighted
attention relevance and transformer attribution, plus the token-to-grid reshape that the CAM family uses
on ViT tokens.

The methods read the attention probabilities ``A_l`` ``(B, heads, N, N)`` of every self-attention
block ``l = 1..L`` (``N = 1 + h*w`` tokens: the class token first, then the patches row by row):

* **Attention rollout** (Abnar & Zuidema, ACL 2020, "Quantifying Attention Flow in Transformers"):
  the residual connection is modelled by ``Ahat_l = 0.5 A_l + 0.5 I`` (rows renormalised), heads fused
  by their mean, and the attention is rolled out through the layers,
  ``R = Ahat_L Ahat_{L-1} ... Ahat_1``.  The map is the class token's row over the patches, ``R[0, 1:]``.
  It does not depend on the target class (the target only picks the reported ``targets``/``scores``).
* **Attention relevance** (Chefer, Gur & Wolf, ICCV 2021, "Generic Attention-model Explainability for
  Interpreting Bi-Modal and Encoder-Decoder Transformers", eqs. 5-6; the gradient-weighted attention of
  their CVPR 2021 "Transformer Interpretability Beyond Attention Visualization"):
  ``Abar_l = E_h[(dy/dA_l * A_l)^+]`` (``y`` the target score, ``^+`` the positive part, ``E_h`` the
  mean over heads) and ``R <- R + Abar_l R`` from ``R = I``, layer by layer.  The map is ``R[0, 1:]``.
* **Transformer attribution** (Chefer, Gur & Wolf, CVPR 2021, "Transformer Interpretability Beyond
  Attention Visualization"): the same rollout with ``Abar_l = E_h[(dy/dA_l * R_{A_l})^+]``, ``R_{A_l}`` the
  LRP relevance that reaches the attention probabilities under the paper's rules
  (:class:`salience.attribution.lrp.LRPMode` with ``transformer=True``).

The attention probabilities are captured with hooks, without editing the model:

* ``torch.nn.MultiheadAttention`` (torchvision's ``VisionTransformer``, which calls it with
  ``need_weights=False``): a forward hook recomputes the module's output from its own weights as
  ``softmax(q k^T / sqrt(d)) v`` followed by the output projection, so the probabilities are a tensor in
  the graph that the gradient reaches.  The recomputation is the same formula as PyTorch's (equal to it
  up to float rounding, about 1e-6); masks, ``bias_k``/``bias_v`` and ``add_zero_attn`` are refused.
* timm-style blocks (``Attention`` with ``attn = softmax(q k^T * scale); attn = self.attn_drop(attn)``;
  timm needs ``fused_attn=False`` for this): the output of every module named ``attn_drop`` is the
  attention itself and is recorded as it is.
* any other model: ``attention_layers=`` names the modules whose outputs are the attention
  probabilities ``(B, heads, N, N)`` (or ``(B, N, N)``).
* Swin's window attention (no global attention, no class token): the three methods run window by window
  through the patch mergings, :mod:`salience.attribution.windows`.

Maps are divided by their maximum (they are non-negative), so they lie in ``[0, 1]`` and a uniform
relevance is an all-ones map rather than a blank one.

>>> import torch, torchvision, salience
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> vit = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
...                                            hidden_dim=32, mlp_dim=64, num_classes=3)
>>> _ = torch.nn.init.normal_(vit.heads.head.weight)
>>> e = salience.explain(vit, torch.rand(1, 3, 32, 32), "attention-rollout")
>>> tuple(e.maps.shape), tuple(e.cam.shape), float(e.maps.max())
((1, 32, 32), (1, 4, 4), 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError, ModelError, ZeroGradientError
from ._base import (
    Explanation,
    Target,
    check_images,
    check_unknown,
    finish,
    normalize_maps,
    select_scores,
    unwrap_model,
    upsample,
)
from ._hooks import resolve_layer, scoped_model
from .windows import WindowCapture, fuse_heads, is_window_attention, window_attention_layers, window_rollout

__all__ = [
    "AttentionCapture",
    "attention_layers",
    "attention_relevance",
    "attention_rollout",
    "fits_model_kind",
    "has_attention",
    "relevance_matrix",
    "rollout_matrix",
    "transformer_attribution",
    "vit_reshape",
]

_HEAD_FUSIONS = ("mean", "max", "min")


# ------------------------------------------------------------------------------------------------------
# Finding and capturing the attention
# ------------------------------------------------------------------------------------------------------


def attention_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's self-attention modules, in forward order of definition: every
    ``nn.MultiheadAttention``, else every module named ``attn_drop`` (timm-style blocks), else every Hugging
    Face attention module that returns its probabilities (``ViTAttention`` run with the eager
    implementation).

    Examples
    --------
    >>> import torchvision
    >>> vit = torchvision.models.VisionTransformer(32, 8, 2, 2, 16, 32)
    >>> [n for n, _ in attention_layers(vit)]
    ['encoder.layers.encoder_layer_0.self_attention', 'encoder.layers.encoder_layer_1.self_attention']
    """
    mha: list[tuple[str, nn.Module]] = [(n, m) for n, m in model.named_modules()
                                        if isinstance(m, nn.MultiheadAttention)]
    if mha:
        return mha
    timm = [(n, m) for n, m in model.named_modules() if n.split(".")[-1] == "attn_drop"]
    if timm:
        return timm
    return [(n, m) for n, m in model.named_modules() if _is_hf_attention(m)]


def _is_hf_attention(m: nn.Module) -> bool:
    """A Hugging Face self-attention module that returns ``(output, probabilities)`` (``q_proj``, ``k_proj``,
    ``v_proj`` children and the model config's attention implementation; ``ViTAttention`` and kin)."""
    cfg = getattr(m, "config", None)
    return (type(m).__name__.endswith("Attention") and hasattr(cfg, "_attn_implementation")
            and all(isinstance(getattr(m, k, None), nn.Linear) for k in ("q_proj", "k_proj", "v_proj")))


def has_attention(model: Any) -> bool:
    """Whether ``model`` (a module or a LoadedModel) has self-attention the attention methods read: global
    self-attention (:func:`attention_layers`) or Swin-style window attention."""
    try:
        net = unwrap_model(model)
    except ModelError:
        return False
    return bool(attention_layers(net)) or bool(window_attention_layers(net))


def fits_model_kind(kind: str | None, model: Any) -> bool:
    """Whether a registry row's ``model_kind`` fits ``model``: ``None`` any model, ``"transformer"`` one with
    global or window self-attention."""
    return kind is None or has_attention(model)


def _mha_recompute(module: nn.MultiheadAttention, args: tuple, kwargs: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """``(output, probabilities (B, heads, L, S))`` of ``module`` for the call ``module(*args, **kwargs)``,
    computed from the module's weights (the formula of ``F.multi_head_attention_forward``, no dropout)."""
    names = ("query", "key", "value", "key_padding_mask", "need_weights", "attn_mask", "average_attn_weights",
             "is_causal")
    call = dict(zip(names, args))
    call.update(kwargs)
    if call.get("key_padding_mask") is not None or call.get("attn_mask") is not None or call.get("is_causal"):
        raise ModelError("attention with a mask (attn_mask, key_padding_mask or is_causal) is not supported by "
                         "the attention methods; they explain unmasked self-attention (ViT)")
    if module.bias_k is not None or module.add_zero_attn:
        raise ModelError("nn.MultiheadAttention with bias_k/bias_v or add_zero_attn is not supported by the "
                         "attention methods")
    q, k, v = call["query"], call["key"], call["value"]
    if not module.batch_first:
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
    E, h = module.embed_dim, module.num_heads
    d = E // h
    if module.in_proj_weight is not None:
        wq, wk, wv = module.in_proj_weight.chunk(3)
    else:
        wq, wk, wv = module.q_proj_weight, module.k_proj_weight, module.v_proj_weight
    bq = bk = bv = None
    if module.in_proj_bias is not None:
        bq, bk, bv = module.in_proj_bias.chunk(3)
    B, L, S = q.shape[0], q.shape[1], k.shape[1]
    qh = F.linear(q, wq, bq).reshape(B, L, h, d).transpose(1, 2)
    kh = F.linear(k, wk, bk).reshape(B, S, h, d).transpose(1, 2)
    vh = F.linear(v, wv, bv).reshape(B, S, h, d).transpose(1, 2)
    probs = torch.softmax((qh / math.sqrt(d)) @ kh.transpose(-2, -1), dim=-1)  # (B, h, L, S)
    out = (probs @ vh).transpose(1, 2).reshape(B, L, E)
    out = F.linear(out, module.out_proj.weight, module.out_proj.bias)
    if not module.batch_first:
        out = out.transpose(0, 1)
    return out, probs


class AttentionCapture:
    """Record the attention probabilities of the given modules during forward passes (hooks removed on
    exit, also after an exception).

    ``layers``: ``(name, module)`` pairs; an ``nn.MultiheadAttention`` has its output recomputed so that its
    probabilities are in the graph (module docstring), any other module's output is recorded as the
    attention.  After a forward pass ``attentions`` holds one ``(B, heads, N, N)`` tensor per call, in call
    order.
    """

    def __init__(self, layers: Sequence[tuple[str, nn.Module]]):
        self.layers = list(layers)
        self.attentions: list[torch.Tensor] = []
        self._handles: list[Any] = []

    def _mha_hook(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
        out, probs = _mha_recompute(module, args, kwargs)  # type: ignore[arg-type]
        self.attentions.append(probs)
        if isinstance(output, tuple):
            return (out, *output[1:])
        return out

    def _plain_hook(self, module: nn.Module, args: Any, output: Any) -> None:
        if _is_hf_attention(module) and isinstance(output, tuple) and len(output) > 1:
            if output[1] is None:
                impl = getattr(getattr(module, "config", None), "_attn_implementation", None)
                raise ModelError(
                    f"attention layer {type(module).__name__} returned no attention probabilities: the model runs "
                    f"the {impl!r} attention; load it with attn_implementation="
                    "'eager' (salience.load_model('hf:PATH') does)")
            output = output[1]
        if not isinstance(output, torch.Tensor) or output.ndim not in (3, 4):
            raise ModelError(
                f"attention layer {type(module).__name__} returned {type(output).__name__}"
                + (f" of shape {tuple(output.shape)}" if isinstance(output, torch.Tensor) else "")
                + ", not attention probabilities (B, heads, N, N); name the module that outputs them in "
                "attention_layers="
            )
        self.attentions.append(output if output.ndim == 4 else output[:, None])

    @property
    def tensors(self) -> list[torch.Tensor]:
        """The recorded probabilities (as :class:`~salience.attribution.windows.WindowCapture.tensors`)."""
        return self.attentions

    def __enter__(self) -> AttentionCapture:
        self.attentions = []
        try:
            for _, m in self.layers:
                if isinstance(m, nn.MultiheadAttention):
                    self._handles.append(m.register_forward_hook(self._mha_hook, with_kwargs=True))
                else:
                    self._handles.append(m.register_forward_hook(self._plain_hook))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


def _resolve_attention(net: nn.Module, layers: Any, method: str) -> list[tuple[str, nn.Module]]:
    if layers is None:
        found = attention_layers(net)
        if not found:
            raise ModelError(
                f"{method} explains a vision transformer from its attention, but the model "
                f"({type(net).__name__}) has no nn.MultiheadAttention, timm-style attn_drop module, Swin window "
                "attention nor Hugging Face attention returning its probabilities; pass "
                "attention_layers= the modules that output the attention probabilities (B, heads, N, N), "
                "or use a gradient or CAM method for a convolutional network"
            )
        return found
    if isinstance(layers, (str, nn.Module)):
        layers = [layers]
    if not isinstance(layers, Sequence) or not layers:
        raise InputError("attention_layers must be a non-empty list of module names or modules")
    return [resolve_layer(net, item) for item in layers]


# ------------------------------------------------------------------------------------------------------
# The two rules (pure functions of the attention, testable by hand)
# ------------------------------------------------------------------------------------------------------


def _check_rollout(head_fusion: Any, residual: Any) -> None:
    if head_fusion not in _HEAD_FUSIONS:
        raise InputError(f"head_fusion must be one of {', '.join(_HEAD_FUSIONS)}, got {head_fusion!r}")
    if isinstance(residual, bool) or not isinstance(residual, (int, float)) or not 0.0 <= residual <= 1.0:
        raise InputError(f"residual must be a number in [0, 1] (the paper's 0.5), got {residual!r}")


def rollout_matrix(attentions: Sequence[torch.Tensor], *, head_fusion: str = "mean",
                   residual: float = 0.5) -> torch.Tensor:
    """Attention rollout ``R = Ahat_L ... Ahat_1`` ``(B, N, N)`` (Abnar & Zuidema 2020).

    ``attentions``: per layer, in forward order, ``(B, heads, N, N)`` (or ``(B, N, N)``) probabilities.
    ``Ahat_l = (1 - residual) fuse_h(A_l) + residual I``, rows renormalised to sum 1 (the paper's
    ``0.5 A + 0.5 I``); ``head_fusion``: ``"mean"`` (the paper), ``"max"`` or ``"min"``.

    Examples
    --------
    >>> import torch
    >>> eye = torch.eye(3)[None, None]
    >>> bool(torch.equal(rollout_matrix([eye, eye]), torch.eye(3)[None]))
    True
    >>> uniform = torch.full((1, 1, 3, 3), 1 / 3)
    >>> [round(v, 6) for v in rollout_matrix([uniform])[0, 0].tolist()]  # 0.5 * 1/3 + 0.5 * [1, 0, 0]
    [0.666667, 0.166667, 0.166667]
    """
    _check_rollout(head_fusion, residual)
    if not attentions:
        raise ModelError("no attention was recorded: the attention layers were not called in the forward pass")
    r: torch.Tensor | None = None
    for a in attentions:
        a = a.detach().float()
        a = fuse_heads(a if a.ndim == 4 else a[:, None], head_fusion)
        eye = torch.eye(a.shape[-1], device=a.device, dtype=a.dtype)
        ah = (1.0 - residual) * a + residual * eye
        ah = ah / ah.sum(dim=-1, keepdim=True).clamp(min=1e-12)
        r = ah if r is None else ah @ r
    assert r is not None
    return r


def relevance_matrix(attentions: Sequence[torch.Tensor], gradients: Sequence[torch.Tensor]) -> torch.Tensor:
    """Chefer et al. (ICCV 2021) relevance ``R`` ``(B, N, N)``: ``R = I``, then per layer
    ``R <- R + E_h[(G_l * A_l)^+] R``.

    Examples
    --------
    >>> import torch
    >>> a = torch.tensor([[[[0.5, 0.5], [0.0, 1.0]]]]); g = torch.tensor([[[[2.0, -1.0], [1.0, 1.0]]]])
    >>> relevance_matrix([a], [g])[0].tolist()  # I + [[1, 0], [0, 1]] @ I
    [[2.0, 0.0], [0.0, 2.0]]
    """
    if not attentions:
        raise ModelError("no attention was recorded: the attention layers were not called in the forward pass")
    n = attentions[0].shape[-1]
    r = torch.eye(n, dtype=torch.float32, device=attentions[0].device)[None].repeat(attentions[0].shape[0], 1, 1)
    for a, g in zip(attentions, gradients):
        a, g = a.detach().float(), g.detach().float()
        if a.ndim == 3:
            a, g = a[:, None], g[:, None]
        abar = torch.relu(g * a).mean(dim=1)
        r = r + abar @ r
    return r


def _token_map(r: torch.Tensor, method: str) -> tuple[torch.Tensor, int, int]:
    """The patch relevance grid ``(B, s, s)`` from ``R`` ``(B, N, N)``: the class token's row when ``N - 1``
    is a square, else (no class token) the mean of all rows; and the number of leading tokens dropped."""
    n = r.shape[-1]
    for drop in (1, 0):
        s = math.isqrt(n - drop) if n - drop > 0 else 0
        if s >= 1 and s * s == n - drop:
            row = r[:, 0, drop:] if drop else r.mean(dim=1)
            return row.reshape(r.shape[0], s, s), drop, s
    raise ModelError(
        f"{method}: the attention has {n} tokens, which is neither 1 + a square (class token + patch grid) "
        "nor a square; this model's tokens do not form a square patch grid"
    )


# ------------------------------------------------------------------------------------------------------
# The registered methods
# ------------------------------------------------------------------------------------------------------


def _finish_map(method: str, r: torch.Tensor, hw: tuple[int, int], scores: torch.Tensor,
                idx: torch.Tensor | None, extras: dict) -> Explanation:
    grid, _, _ = _token_map(r, method)
    extras["relevance"] = r
    return _finish_grid(method, grid, hw, scores, idx, extras)


def _finish_grid(method: str, grid: torch.Tensor, hw: tuple[int, int], scores: torch.Tensor,
                 idx: torch.Tensor | None, extras: dict) -> Explanation:
    maps = normalize_maps(upsample(grid.clamp(min=0), hw), "max")
    extras["cam"] = grid
    return Explanation(finish(maps), idx, scores.detach().float(), method, None, extras)


def _window_layers(net: nn.Module, layers: Any) -> list[tuple[str, nn.Module]]:
    """The window-attention (Swin) modules to read: found automatically when the model has no global
    self-attention, or the given ``attention_layers`` when they are all window attention; else ``[]``."""
    if layers is None:
        return [] if attention_layers(net) else window_attention_layers(net)
    if isinstance(layers, (str, nn.Module)):
        layers = [layers]
    if not isinstance(layers, Sequence) or not layers:
        return []
    found = [resolve_layer(net, item) for item in layers]
    return found if all(is_window_attention(m) for _, m in found) else []


def _prepare(method: str, model: Any, images: Any, target: Any, layer: Any, params: dict, *,
             needs_grad: bool = True) -> tuple[nn.Module, torch.Tensor, Target, tuple[int, int]]:
    """The checks every attention method starts with: ``(net, images, target, (H, W))``."""
    check_unknown(method, params)
    if layer is not None:
        raise InputError(f"{method} reads every attention layer and takes no layer; pass "
                         "attention_layers= to choose the attention modules")
    net = unwrap_model(model)
    x = check_images(images, net, needs_grad=needs_grad)
    return net, x, Target.parse(target, x.shape[0]), (x.shape[2], x.shape[3])


def attention_rollout(model: Any, images: Any, target: Any = None, layer: Any = None, *,
                      head_fusion: str = "mean", residual: float = 0.5, attention_layers: Any = None,
                      **params: Any) -> Explanation:
    """Attention rollout (Abnar & Zuidema, ACL 2020) of a vision transformer: class-agnostic.

    Parameters
    ----------
    model: an ``nn.Module`` with self-attention (torchvision ``VisionTransformer``, timm-style blocks) or a
        :class:`~salience.attribution.models.LoadedModel`.
    images: float tensor ``(B, C, H, W)`` in the model's preprocessing (not modified).
    target: as :func:`salience.explain`; it only picks the reported ``targets`` and ``scores`` (rollout
        does not depend on the class).
    layer: must be ``None`` (the method reads every attention layer; see ``attention_layers``).
    head_fusion: ``"mean"`` (the paper), ``"max"`` or ``"min"`` over heads.
    residual: the weight of the identity for the residual connection (the paper's 0.5).
    attention_layers: ``None`` (found automatically) or the names/modules that output the attention.

    Returns
    -------
    Explanation: ``maps`` float32 ``(B, H, W)`` in ``[0, 1]`` (divided by the maximum);
    ``extras["cam"]`` the patch grid ``(B, s, s)`` of rollout values (the class token's row),
    ``extras["relevance"]`` the whole rollout matrix ``(B, N, N)``, ``extras["attentions"]`` the number of
    attention layers rolled out.  On Swin (window attention; :mod:`salience.attribution.windows`) ``cam`` is
    the first stage's token grid, the mean row of the rollout, and no ``N x N`` matrix is formed.
    """
    net, x, tgt, hw = _prepare("attention-rollout", model, images, target, layer, params, needs_grad=False)
    _check_rollout(head_fusion, residual)
    with scoped_model(net):
        windows = _window_layers(net, attention_layers)
        if windows:
            with WindowCapture(windows) as wcap, torch.no_grad():
                out = net(x)
            scores, idx = select_scores(out, tgt, x.shape[0])
            grid = window_rollout(wcap.attentions, method="attention-rollout", head_fusion=head_fusion,
                                  residual=float(residual))
            return _finish_grid("attention-rollout", grid, hw, scores, idx, {"attentions": len(wcap.attentions)})
        found = _resolve_attention(net, attention_layers, "attention-rollout")
        with AttentionCapture(found) as cap, torch.no_grad():
            out = net(x)
        scores, idx = select_scores(out, tgt, x.shape[0])
        r = rollout_matrix(cap.attentions, head_fusion=head_fusion, residual=float(residual))
    return _finish_map("attention-rollout", r, hw, scores, idx, {"attentions": len(cap.attentions)})


def _capture(found: list[tuple[str, nn.Module]], windows: bool) -> Any:
    """A fresh (unentered) capture of the attention layers ``found``: window or global attention."""
    return WindowCapture(found) if windows else AttentionCapture(found)


def _attention_gradients(net: nn.Module, x: torch.Tensor, tgt: Target, capture: Any,
                         method: str) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor, torch.Tensor,
                                               torch.Tensor | None]:
    """One forward and backward pass under ``capture`` (an unentered :class:`AttentionCapture` or
    :class:`~salience.attribution.windows.WindowCapture`, whose records stay readable after): the
    attentions, ``d score / d A`` for each (zeros where unused), the score's gradient with respect to the
    output, the scores and the target indices.  Raises :class:`ZeroGradientError` when an image's score
    depends on no attention."""
    xg = x.clone().requires_grad_(True)
    with capture as cap, torch.enable_grad():
        out = net(xg)
        scores, idx = select_scores(out, tgt, x.shape[0])
        atts = cap.tensors
        if not atts:
            raise ModelError("no attention was recorded: the attention layers were not called")
        if not scores.requires_grad:
            raise ZeroGradientError(
                f"{method}: the target score does not depend on the input (it carries no gradient); check "
                "the target")
        grads = torch.autograd.grad(scores.sum(), [out, *atts], allow_unused=True)
    grads_t = [torch.zeros_like(a) if g is None else g for a, g in zip(atts, grads[1:])]
    alive = torch.stack([(g != 0).reshape(x.shape[0], -1).any(dim=1) for g in grads_t]).any(dim=0)
    if not bool(alive.all()):
        ids = ", ".join(str(int(i)) for i in torch.nonzero(~alive).flatten()[:10])
        raise ZeroGradientError(
            f"{method}: the gradient of the target score with respect to every attention "
            f"probability is exactly zero for image(s) {ids}: the target score does not depend on the input "
            "through the attention. Common causes: an untrained model whose head is initialised to zero "
            "(torchvision's VisionTransformer without weights), or a target that ignores the image"
        )
    d_out = torch.zeros_like(out) if grads[0] is None else grads[0]
    return [a.detach() for a in atts], grads_t, d_out.detach(), scores, idx


def attention_relevance(model: Any, images: Any, target: Any = None, layer: Any = None, *,
                        attention_layers: Any = None, **params: Any) -> Explanation:
    """Gradient-weighted attention relevance (Chefer, Gur & Wolf, ICCV 2021; CVPR 2021) of a transformer.

    ``R = I``; for every attention layer in forward order ``R <- R + E_h[(dy/dA * A)^+] R`` with ``y`` the
    target score; the map is the class token's row over the patches.  Class-specific.

    Parameters
    ----------
    model, images, layer, attention_layers: as :func:`attention_rollout`.
    target: as :func:`salience.explain` (class index, per-image list, ``"top-k"``, a callable).

    Returns
    -------
    Explanation: ``maps`` float32 ``(B, H, W)`` in ``[0, 1]`` (divided by the maximum);
    ``extras["cam"]`` the patch grid ``(B, s, s)``, ``extras["relevance"]`` ``R`` ``(B, N, N)``.

    Raises
    ------
    ZeroGradientError: when the target score does not depend on any attention (every gradient is zero).
    """
    net, x, tgt, hw = _prepare("attention-relevance", model, images, target, layer, params)
    with scoped_model(net):
        windows = _window_layers(net, attention_layers)
        cap = _capture(windows or _resolve_attention(net, attention_layers, "attention-relevance"), bool(windows))
        atts, grads_t, _, scores, idx = _attention_gradients(net, x, tgt, cap, "attention-relevance")
        if windows:
            grid = window_rollout(cap.attentions, method="attention-relevance", gradients=grads_t)
            return _finish_grid("attention-relevance", grid, hw, scores, idx, {"attentions": len(atts)})
    r = relevance_matrix(atts, grads_t)
    return _finish_map("attention-relevance", r, hw, scores, idx, {"attentions": len(atts)})


def _attention_lrp(net: nn.Module, x: torch.Tensor, capture: Any, d_out: torch.Tensor) -> list[torch.Tensor]:
    """The LRP relevance that reaches each attention map ``(B, heads, N, N)`` under Chefer et al.'s rules
    (:class:`salience.attribution.lrp.LRPMode` with ``transformer=True``: z+ for linear layers and the
    patch embedding, layer norm / GELU / softmax passing relevance, the product rule for ``A @ V`` and
    ``Q @ K^T``, renormalised residual sums), seeded with ``d_out`` at the output (one-hot for a class);
    ``capture`` (unentered, as for :func:`_attention_gradients`) records the attention maps."""
    from .lrp import LRPMode, Rule, module_stack

    rules = {"conv": Rule("zplus"), "linear": Rule("zplus")}
    handles: list[Any] = []
    with module_stack(net) as where:
        mode = LRPMode(rules, None, None, None, False, where, transformer=True)

        def enter(*_: Any) -> None:
            mode.skip += 1

        def leave(*_: Any) -> None:
            mode.skip -= 1

        try:
            # nn.MultiheadAttention's own forward is replaced by AttentionCapture's recomputation (whose ops
            # the rules cover); its fused kernels run unobserved, and the counter is down again before the
            # capture's hook recomputes (these hooks are put first)
            for _, m in capture.layers:
                if isinstance(m, nn.MultiheadAttention):
                    handles.append(m.register_forward_pre_hook(enter, prepend=True))
                    handles.append(m.register_forward_hook(leave, prepend=True))
            xs = x.detach().requires_grad_(True)
            with capture as cap, torch.enable_grad():
                with mode:
                    out = net(xs)
                if not isinstance(out, torch.Tensor) or out.shape != d_out.shape:
                    raise ModelError("transformer-attribution propagates relevance from the model's output and "
                                     "needs a model that returns one tensor with a row per image")
                atts = cap.tensors
                rel = torch.autograd.grad(out, atts, d_out, allow_unused=True)
        finally:
            for h in handles:
                h.remove()
    return [torch.zeros_like(a) if r is None else r.detach() for a, r in zip(atts, rel)]


def transformer_attribution(model: Any, images: Any, target: Any = None, layer: Any = None, *,
                            attention_layers: Any = None, start_layer: int = 0, **params: Any) -> Explanation:
    """Transformer attribution (Chefer, Gur & Wolf, CVPR 2021, "Transformer Interpretability Beyond
    Attention Visualization"): LRP relevance of every attention map, weighted by its gradient.

    For every attention layer ``l``, ``Abar_l = E_h[(dy/dA_l * R_{A_l})^+]`` with ``R_{A_l}`` the LRP relevance
    that reaches the attention probabilities (propagated from the output under the paper's rules:
    z+ for linear layers, layer norm / GELU / softmax passing relevance, the product rule for the two
    attention products, residual sums renormalised to conserve relevance; seeded with the one-hot target),
    ``y`` the target score; then ``R = I`` and ``R <- R + Abar_l R`` from ``start_layer`` on.  The map is the
    class token's row over the patches.  Class-specific.  Two forward and backward passes (one for the
    gradients, one for the relevance).

    Parameters
    ----------
    model, images, layer, attention_layers: as :func:`attention_rollout`.
    target: as :func:`salience.explain` (class index, per-image list, ``"top-k"``, a callable).
    start_layer: the first attention layer rolled in (0, the paper's default, is all of them).

    Returns
    -------
    Explanation: ``maps`` float32 ``(B, H, W)`` in ``[0, 1]`` (divided by the maximum);
    ``extras["cam"]`` the patch grid ``(B, s, s)``, ``extras["relevance"]`` ``R`` ``(B, N, N)``,
    ``extras["attention_relevance"]`` the LRP relevance of each attention map (a list of ``(B, heads, N, N)``).
    On Swin (window attention) ``cam`` is the first stage's token grid, the relevances are per window
    ``(B * windows, heads, T, T)``, and no ``N x N`` ``relevance`` is formed (:mod:`.windows`).

    Raises
    ------
    ZeroGradientError: when the target score does not depend on any attention.
    ModelError: naming the operation and layer when the model uses one the rules do not cover.
    """
    method = "transformer-attribution"
    net, x, tgt, hw = _prepare(method, model, images, target, layer, params)
    if isinstance(start_layer, bool) or not isinstance(start_layer, int) or start_layer < 0:
        raise InputError(f"start_layer must be an integer >= 0 (the first attention layer rolled in), got "
                         f"{start_layer!r}")
    with scoped_model(net):
        windows = _window_layers(net, attention_layers)
        found = windows or _resolve_attention(net, attention_layers, method)
        first = _capture(found, bool(windows))
        atts, grads, d_out, scores, idx = _attention_gradients(net, x, tgt, first, method)
        if start_layer >= len(atts):
            raise InputError(f"start_layer={start_layer} but the model has {len(atts)} attention layers; pass "
                             f"0 to {len(atts) - 1}")
        rels = _attention_lrp(net, x, _capture(found, bool(windows)), d_out)
    if len(rels) != len(atts) or any(r.shape != a.shape for r, a in zip(rels, atts)):
        raise ModelError(f"{method}: the attention layers were called differently in the two passes "
                         f"({len(atts)} and {len(rels)} calls); the model's forward must not depend on "
                         "gradients being recorded")
    extras = {"attentions": len(atts), "attention_relevance": rels}
    if windows:  # Swin: the gradient-weighted relevances rolled out window by window
        grid = window_rollout(first.attentions[start_layer:], method=method, gradients=grads[start_layer:],
                              weights=rels[start_layer:])
        return _finish_grid(method, grid, hw, scores, idx, extras)
    r = relevance_matrix(rels[start_layer:], grads[start_layer:])
    return _finish_map(method, r, hw, scores, idx, extras)


# ------------------------------------------------------------------------------------------------------
# Grad-CAM & co. on ViT tokens
# ------------------------------------------------------------------------------------------------------


def vit_reshape(tokens: torch.Tensor, grid: tuple[int, int] | None = None, *, prefix: int = 1) -> torch.Tensor:
    """ViT tokens ``(B, prefix + h*w, C)`` as a ``(B, C, h, w)`` grid: drop the ``prefix`` leading tokens
    (the class token; 2 for DeiT's class + distillation tokens), patches row by row.

    ``grid``: ``(h, w)``; ``None``: square.  Pass it as ``reshape=`` to any CAM method
    (``salience.explain(vit, x, "gradcam", layer=..., reshape=vit_reshape)``), the same transform as
    pytorch-grad-cam's ViT example.

    Examples
    --------
    >>> import torch
    >>> vit_reshape(torch.zeros(2, 1 + 12, 5), grid=(3, 4)).shape
    torch.Size([2, 5, 3, 4])
    """
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 3:
        raise ModelError(f"vit_reshape needs tokens (B, N, C), got "
                         f"{tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__}")
    b, n, c = tokens.shape
    m = n - prefix
    if grid is None:
        s = math.isqrt(max(m, 0))
        if s * s != m or s == 0:
            raise ModelError(f"vit_reshape: {n} tokens minus {prefix} prefix token(s) is not a square grid; "
                             "pass grid=(h, w)")
        grid = (s, s)
    h, w = grid
    if h * w != m:
        raise ModelError(f"vit_reshape: grid {h} x {w} does not hold the {m} patch tokens")
    return tokens[:, prefix:, :].reshape(b, h, w, c).permute(0, 3, 1, 2)
