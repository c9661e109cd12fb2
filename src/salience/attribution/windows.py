"""Attention rollout and attention relevance for window attention (Swin transformers).

Swin (Liu et al., ICCV 2021, "Swin Transformer: Hierarchical Vision Transformer using Shifted Windows")
attends within ``w x w`` windows of a token grid, shifted by ``w / 2`` every other block, and halves the
grid between stages by merging 2 x 2 tokens; there is no class token (the head averages the last grid).
Read as a whole, one block's attention over the grid is block-diagonal: token ``i`` attends to the tokens of
its (shifted) window only.  :func:`window_rollout` carries the methods of
:mod:`salience.attribution.transformer` (rollout, relevance, and transformer attribution, whose relevance
weights the gradient instead of the attention) over to that structure, without forming the ``N x N``
matrices:

* a block's matrix is ``Ahat = (1 - residual) fuse_h(A) + residual I`` for rollout (rows renormalised over
  the real, unpadded tokens) and ``I + Abar`` for relevance (``Abar = E_h[(dy/dA * A)^+]``), given window by
  window;
* a patch merging maps each merged token to the mean of its 2 x 2 children (each merged token is a
  function of its four children), so the product stays row-stochastic for rollout;
* the map is the mean row of the product ``R = P_L ... P_1`` (the head averages the tokens), a grid of the
  first stage's tokens (56 x 56 for a 224 x 224 input to ``swin_t``), computed as the row vector
  ``(1/N) 1^T P_L ... P_1`` from the last block down.

The attention probabilities are captured without editing the model: while a window-attention module runs
(torchvision's ``ShiftedWindowAttention`` and ``ShiftedWindowAttentionV2``), a torch function mode records
the output of its softmax, ``(B * windows, heads, w*w, w*w)``, a tensor in the graph that the gradient
reaches; which grid position each window slot holds follows from the module's window and shift sizes and
the input's size, as torchvision computes them (pad to a multiple of the window, no shift when the window
covers the padded grid, a cyclic shift by ``-shift``, windows row by row).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ..errors import ModelError

__all__ = ["WindowAttention", "WindowCapture", "fuse_heads", "is_window_attention", "window_attention_layers",
           "window_rollout"]

_SOFTMAX = {F.softmax, torch.softmax, torch.Tensor.softmax}


def fuse_heads(a: torch.Tensor, how: str) -> torch.Tensor:
    """``(B, heads, ...)`` -> ``(B, ...)``: the mean (``"mean"``), maximum or minimum over heads."""
    if how == "mean":
        return a.mean(dim=1)
    if how == "max":
        return a.amax(dim=1)
    return a.amin(dim=1)


def is_window_attention(m: nn.Module) -> bool:
    """A Swin-style window-attention module: torchvision's ``ShiftedWindowAttention`` (or V2), by class name and
    with its attributes (``window_size``, ``shift_size``, ``num_heads``, linear ``qkv`` and ``proj``).  Other
    Swin implementations (timm's) are not read as window attention."""
    return (type(m).__name__.startswith("ShiftedWindowAttention")
            and all(hasattr(m, k) for k in ("window_size", "shift_size", "num_heads"))
            and isinstance(getattr(m, "qkv", None), nn.Linear) and isinstance(getattr(m, "proj", None), nn.Linear))


def window_attention_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's window-attention modules, in order of definition.

    Examples
    --------
    >>> import torchvision
    >>> [n for n, _ in window_attention_layers(torchvision.models.swin_t())][:3]
    ['features.1.0.attn', 'features.1.1.attn', 'features.3.0.attn']
    """
    return [(n, m) for n, m in model.named_modules() if is_window_attention(m)]


@dataclass
class WindowAttention:
    """One call of a window-attention module.

    ``raw``: the softmax's output ``(B * windows, heads, T, T)`` (``T = w_h * w_w``), the tensor in the graph;
    ``index``: ``(windows, T)`` the padded grid's flat position of each window slot; ``grid``: the real
    ``(H, W)``; ``padded``: ``(Hp, Wp)``.
    """

    raw: torch.Tensor
    index: torch.Tensor
    grid: tuple[int, int]
    padded: tuple[int, int]

    @property
    def probs(self) -> torch.Tensor:
        """``(B, windows, heads, T, T)``."""
        nw = self.index.shape[0]
        return self.raw.reshape(self.raw.shape[0] // nw, nw, *self.raw.shape[1:])


def _window_index(h: int, w: int, window: list[int], shift: list[int]) -> tuple[torch.Tensor, tuple[int, int]]:
    """Flat padded-grid positions ``(windows, T)`` of the window slots, as torchvision partitions them."""
    wh, ww = int(window[0]), int(window[1])
    hp, wp = h + (wh - h % wh) % wh, w + (ww - w % ww) % ww
    sh, sw = int(shift[0]), int(shift[1])
    if wh >= hp:
        sh = 0
    if ww >= wp:
        sw = 0
    pos = torch.arange(hp * wp).reshape(hp, wp)
    if sh or sw:
        pos = torch.roll(pos, shifts=(-sh, -sw), dims=(0, 1))
    pos = pos.reshape(hp // wh, wh, wp // ww, ww).permute(0, 2, 1, 3).reshape(-1, wh * ww)
    return pos, (hp, wp)


class _SoftmaxTap(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.out: list[torch.Tensor] = []

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if func in _SOFTMAX and isinstance(out, torch.Tensor) and out.ndim == 4:
            self.out.append(out)
        return out


class WindowCapture:
    """Record the attention of window-attention modules during forward passes (hooks removed and the
    tap closed on exit, also after an exception).  ``attentions``: one :class:`WindowAttention` per call."""

    def __init__(self, layers: list[tuple[str, nn.Module]]):
        self.layers = list(layers)
        self.attentions: list[WindowAttention] = []
        self._handles: list[Any] = []
        self._open: list[tuple[_SoftmaxTap, nn.Module, tuple[int, int]]] = []

    def _pre(self, module: nn.Module, args: tuple) -> None:
        x = args[0]
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            raise ModelError(f"window attention {type(module).__name__} was called with "
                             f"{type(x).__name__}, not a (B, H, W, C) token grid")
        tap = _SoftmaxTap()
        tap.__enter__()
        self._open.append((tap, module, (int(x.shape[1]), int(x.shape[2]))))

    def _post(self, module: nn.Module, args: tuple, output: Any) -> None:
        tap, mod, (h, w) = self._open.pop()
        tap.__exit__(None, None, None)
        index, padded = _window_index(h, w, list(mod.window_size), list(mod.shift_size))  # type: ignore[arg-type]
        nw, t = index.shape
        found = [p for p in tap.out if p.shape[-1] == t and p.shape[-2] == t and p.shape[0] % nw == 0]
        if len(found) != 1:
            raise ModelError(f"window attention {type(mod).__name__}: expected one softmax over {t} x {t} window "
                             f"slots, found {len(found)}; this module does not compute attention as Swin does")
        self.attentions.append(WindowAttention(found[0], index.to(found[0].device), (h, w), padded))

    @property
    def tensors(self) -> list[torch.Tensor]:
        """The recorded probabilities as the autograd graph holds them, ``(B * windows, heads, T, T)``."""
        return [a.raw for a in self.attentions]

    def __enter__(self) -> WindowCapture:
        self.attentions = []
        try:
            for _, m in self.layers:
                self._handles.append(m.register_forward_pre_hook(self._pre))
                self._handles.append(m.register_forward_hook(self._post))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        while self._open:  # a forward pass that raised inside a module: close its tap
            self._open.pop()[0].__exit__(None, None, None)
        for h in self._handles:
            h.remove()
        self._handles = []


def _merge_t(v: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """``v M`` for the 2 x 2 patch merging ``M`` of ``grid`` (each merged token the mean of its real
    children; torchvision pads an odd grid with zeros, which carry nothing from the image): ``v`` ``(B, n')``
    over the merged grid -> ``(B, H*W)``, each child receiving its parent's value over the parent's count."""
    b = v.shape[0]
    h, w = grid
    hh, ww = (h + 1) // 2, (w + 1) // 2
    ones = F.pad(torch.ones(1, 1, h, w, dtype=v.dtype, device=v.device), (0, w % 2, 0, h % 2))
    count = F.avg_pool2d(ones, 2, divisor_override=1)  # (1, 1, hh, ww) real children per token
    per = (v.reshape(b, 1, hh, ww) / count).repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    return per[:, 0, :h, :w].reshape(b, h * w)


def _vec_windows(v: torch.Tensor, a: torch.Tensor, rec: WindowAttention) -> torch.Tensor:
    """``v A`` for a block-diagonal ``A`` given window by window (``a``: ``(B, windows, T, T)``; ``v``
    ``(B, H*W)`` over the real tokens)."""
    b = v.shape[0]
    h, w = rec.grid
    hp, wp = rec.padded
    vp = v
    if (hp, wp) != (h, w):
        vp = v.new_zeros(b, hp, wp)
        vp[:, :h, :w] = v.reshape(b, h, w)
        vp = vp.reshape(b, hp * wp)
    out = torch.empty_like(vp)
    out[:, rec.index.reshape(-1)] = (vp[:, rec.index][:, :, None, :] @ a).reshape(b, -1)
    if (hp, wp) != (h, w):
        out = out.reshape(b, hp, wp)[:, :h, :w].reshape(b, h * w)
    return out


def _real_slots(rec: WindowAttention) -> torch.Tensor:
    """``(windows, T)`` True where a window slot holds a real (unpadded) token."""
    h, w = rec.grid
    wp = rec.padded[1]
    return (rec.index // wp < h) & (rec.index % wp < w)


def _merges(before: tuple[int, int], after: tuple[int, int], method: str) -> list[tuple[int, int]]:
    """The grids that 2 x 2 patch mergings take from ``before`` to ``after`` (each merge's input grid)."""
    out = []
    g = before
    while g != after:
        half = ((g[0] + 1) // 2, (g[1] + 1) // 2)
        if g == (1, 1) or after[0] > half[0] or after[1] > half[1]:
            raise ModelError(f"{method}: the token grid goes from {before[0]} x {before[1]} to {after[0]} x "
                             f"{after[1]} between window-attention blocks; only 2 x 2 patch merging (Swin's) "
                             "is understood")
        out.append(g)
        g = half
    return out


def window_rollout(records: list[WindowAttention], *, method: str, head_fusion: str = "mean",
                   residual: float = 0.5, gradients: list[torch.Tensor] | None = None,
                   weights: list[torch.Tensor] | None = None) -> torch.Tensor:
    """The first stage's token grid ``(B, H0, W0)`` of rollout (``gradients=None``) or attention relevance
    (``gradients``: ``d score / d probs`` per record) over window-attention blocks (module docstring).
    ``weights``: what the gradient multiplies instead of the attention (transformer attribution: each
    attention map's LRP relevance), one per record, shaped like its ``raw``.

    The map is the mean row of ``R = P_L ... P_1`` (blocks and merges), so it is computed as the row vector
    ``(1/N) 1^T P_L ... P_1`` from the last block down: one vector-matrix product per block, instead of
    carrying the ``N x N0`` matrix ``R`` forward."""
    if not records:
        raise ModelError("no attention was recorded: the window-attention layers were not called")
    merges: list[list[tuple[int, int]]] = [[]] + [_merges(a.grid, b.grid, method)
                                                  for a, b in zip(records, records[1:])]
    last = records[-1]
    b = last.probs.shape[0]
    n = last.grid[0] * last.grid[1]
    v = torch.full((b, n), 1.0 / n, dtype=torch.float32, device=last.raw.device)
    for k in range(len(records) - 1, -1, -1):
        rec = records[k]
        p = rec.probs.detach().float()  # (B, windows, heads, T, T)
        real = _real_slots(rec).to(p.dtype)[None, :, None, :]  # columns of padded slots carry nothing
        if gradients is None:
            a = fuse_heads(p.flatten(0, 1), head_fusion).reshape(b, -1, p.shape[-2], p.shape[-1]) * real
            eye = torch.eye(p.shape[-1], dtype=p.dtype, device=p.device)
            ah = (1.0 - residual) * a + residual * eye * real
            ah = ah / ah.sum(dim=-1, keepdim=True).clamp(min=1e-12)
            v = _vec_windows(v, ah, rec)
        else:
            g = gradients[k].detach().float().reshape(p.shape)
            wk = p if weights is None else weights[k].detach().float().reshape(p.shape)
            abar = torch.relu(g * wk).mean(dim=2) * real
            v = v + _vec_windows(v, abar, rec)
        for grid in reversed(merges[k]):  # the mergings between block k-1 and block k, last first
            v = _merge_t(v, grid)
    return v.reshape(b, *records[0].grid)
