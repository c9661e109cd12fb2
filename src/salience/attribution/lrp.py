"""Layer-wise Relevance Propagation (Bach et al. 2015; Montavon et al. 2019) on the scoped override
mechanism of :mod:`salience.attribution.propagation`.

A :class:`torch.overrides.TorchFunctionMode` is active for one forward pass only; it replaces each
supported torch call by an autograd function whose backward pass maps *relevance* to relevance (the
"gradient" that flows back is the relevance itself, as in Zennit).  The seed at the output is the target
score's share of the output, ``out * d score / d out`` (for a class target: the logit, one-hot).  Nothing is
changed on the model: no weight is rewritten (the modified weights are computed in the backward pass),
and the mode, the module hooks used for error messages and every flag are gone after the call, also when
it raised.

Rules for a layer ``z_j = sum_i x_i w_ij + b_j`` (``R_j`` the relevance arriving at output ``j``;
``stab(z) = z + eps * sign(z)``, ``sign(0) = 1``):

* ``epsilon`` (LRP-eps): ``R_i = x_i sum_j w_ij R_j / stab(z_j)``; ``eps -> 0`` is LRP-0.
* ``gamma`` (LRP-gamma): the same with ``w + gamma w^+`` and ``b + gamma b^+`` (Montavon et al. 2019,
  eq. 4 with the bias as the weight of a constant input).
* ``alpha-beta``: ``R_i = sum_j (alpha (x_i w_ij)^+ / z_j^+ - beta (x_i w_ij)^- / z_j^-) R_j`` with
  ``z_j^+ = sum_i (x_i w_ij)^+ + b_j^+`` (and ``z_j^-`` alike); ``alpha - beta = 1``.
* ``zplus``: alpha-beta with ``alpha = 1, beta = 0`` and the biases left out (conservative).
* first-layer rules for pixels: ``zb`` (z^B, Montavon et al. 2017: ``x w - l w^+ - h w^-`` with the
  lowest / highest pixel values ``l``, ``h``), ``w2`` (``w^2``, input-independent) and ``flat``
  (``w = 1``).  Biases are left out of all three.

Other operations:

* ReLU, ReLU6 (``hardtanh(x, 0, hi)``), dropout: relevance passes unchanged (identity backward).
* max-pooling, flatten, reshape, view, permute, concatenation, padding, indexing: their ordinary
  gradient, which moves each relevance value with its element (winner-take-all for max-pooling).
* average / adaptive-average pooling, ``mean``, ``sum``: the epsilon rule with a tiny stabiliser
  (``1e-9``, Captum's), i.e. relevance in proportion to each input's share of the output.
* residual additions ``a + b``: relevance splits in proportion to the operands, ``R_a = a / stab(a + b) R``
  and ``R_b = b / stab(a + b) R`` (the same epsilon rule on the sum; Zennit's treatment of ``Sum``); a
  constant (non-input) operand absorbs its share like a bias.  Multiplication or division by a constant
  passes relevance unchanged.
* batch normalisation: with ``batchnorm="fold"`` (default) a BN applied to a convolution's or linear
  layer's output is folded into it (``W s``, ``(b - mean) s + beta``, ``s = gamma / sqrt(var + eps)``),
  and the layer's rule uses the folded parameters; a BN after anything else, or every BN with
  ``batchnorm="rule"`` (Captum's treatment), is an elementwise affine layer under the epsilon rule with
  the tiny stabiliser (its shift absorbs relevance).
* anything else that carries the input's signal (sigmoid, SiLU, GELU, softmax, products of two signals,
  layer norm, attention, transposed convolutions, interpolation, ...): a :class:`ModelError` naming the
  operation and the module that called it.

With ``transformer=True`` (the rules of Chefer, Gur & Wolf, CVPR 2021, for vision transformers; used by
:func:`salience.attribution.transformer.transformer_attribution`) the mode also covers the transformer's
operations: layer norm, GELU and softmax pass relevance unchanged; a matrix product of two signals
(``A @ V``, ``Q @ K^T``; ``matmul``, ``bmm``, ``einsum``) gives each operand ``t * J_t^T (R / stab(z))``
(so each operand receives the whole of ``R``, as in the paper); a residual addition of two signals splits
``R`` as above and then rescales the two parts so that each image's relevance is conserved, with each
branch's share in proportion to ``|sum R_branch|``.

:func:`lrp_epsilon` (the epsilon rule on every weighted layer) runs the same rules as a modified gradient
instead (:class:`EpsilonFlowMode`: ``R = x * g``, the gradient multiplied by ``z / stab(z)`` at each layer's
output), which is the gradient's cost plus one elementwise pass per layer; the relevance flow above serves
every other rule.

Conservation: with no biases (or the conservative ``zplus``/``zb``/``w2``/``flat`` rules) and
``eps -> 0``, every rule keeps ``sum_i R_i = sum_j R_j``, so the input relevances sum to the target score;
``extras["delta"]`` is that sum minus the score.

>>> import torch
>>> from salience.attribution.lrp import lrp_epsilon
>>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1, bias=False), torch.nn.ReLU(),
...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
...                           torch.nn.Linear(4, 2, bias=False))
>>> e = lrp_epsilon(net, torch.rand(2, 3, 8, 8), target=0, epsilon=1e-9)
>>> tuple(e.maps.shape), bool(e.delta.abs().max() < 1e-4 * e.scores.abs().max())
((2, 8, 8), True)
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.grad import conv2d_input
from torch.overrides import TorchFunctionMode

from ..errors import InputError, ModelError
from ._base import (
    Explanation,
    Target,
    check_images,
    check_unknown,
    finish,
    raise_if_insensitive,
    select_scores,
    unwrap_model,
)
from ._hooks import CLAMP6_FUNCS, HARDTANH_FUNCS, RELU_FUNCS, SMOOTH_FUNCS, scoped_model

__all__ = ["Rule", "COMPOSITES", "FIRST_RULES", "LRPMode", "EpsilonFlowMode", "lrp", "lrp_epsilon", "lrp_gamma",
           "lrp_alphabeta", "lrp_zplus"]

#: the stabiliser of the rules that only need to avoid a division by zero (Captum's default)
STAB = 1e-9
#: first-layer rules for pixel inputs
FIRST_RULES = ("zb", "w2", "flat")


@dataclass(frozen=True)
class Rule:
    """One propagation rule for weighted layers: ``name`` in ``epsilon``, ``gamma``, ``alphabeta``,
    ``zplus``, ``zb``, ``w2``, ``flat``, with its parameters."""

    name: str
    epsilon: float = 1e-6
    gamma: float = 0.25
    alpha: float = 1.0
    beta: float = 0.0


def _stab(z: torch.Tensor, eps: float) -> torch.Tensor:
    """``z + eps`` where ``z >= 0``, else ``z - eps``.  Built in one buffer (the sign as +1/-1, times
    ``eps``, plus ``z``: every step exact but the last, which is the same addition as ``z +/- eps``), so the
    values are those of ``torch.where(z >= 0, z + eps, z - eps)`` bit for bit, in less than half of its time
    (one temporary instead of three)."""
    return (z >= 0).to(z.dtype).mul_(2).sub_(1).mul_(eps).add_(z)


def _vjp(op: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``J_op^T s`` for a linear ``op`` (bias-free), at ``x``'s shape."""
    with torch.enable_grad():
        xx = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(op(xx), xx, s)
    return g


# the op of a weighted layer: (input, weight, bias) -> output
LinearOp = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]


def _relevance(rule: Rule, op: LinearOp, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None,
               r: torch.Tensor, low: Any, high: Any, t: Callable | None = None) -> torch.Tensor:
    """Input relevance of a weighted layer under ``rule`` for output relevance ``r``; ``t(s, w, x)`` is the
    layer's transpose ``J^T s`` when known (else a vector-Jacobian product through autograd)."""

    def vjp(w_a: torch.Tensor, at: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        if t is not None:
            return t(s, w_a, at)
        return _vjp(lambda u: op(u, w_a, None), at, s)

    name = rule.name
    if name in ("epsilon", "gamma"):
        if name == "gamma":
            w = w + rule.gamma * w.clamp(min=0)
            b = None if b is None else b + rule.gamma * b.clamp(min=0)
        eps = rule.epsilon if name == "epsilon" else STAB
        with torch.enable_grad():
            xx = x.detach().requires_grad_(True)
            z = op(xx, w, b)
            (c,) = torch.autograd.grad(z, xx, r / _stab(z.detach(), eps))
        return x * c
    if name in ("alphabeta", "zplus"):
        use_bias = name == "alphabeta"
        alpha, beta = (rule.alpha, rule.beta) if name == "alphabeta" else (1.0, 0.0)
        xp, xn = x.clamp(min=0), x.clamp(max=0)
        wp, wn = w.clamp(min=0), w.clamp(max=0)
        signed = bool((xn != 0).any())

        def share(w_a: torch.Tensor, w_b: torch.Tensor, bias: torch.Tensor | None, sign: float) -> torch.Tensor:
            # the part of z made of (x_i w_ij) of one sign: x^+ w_a + x^- w_b (+ that sign's bias)
            z = op(xp, w_a, bias)
            if signed:
                z = z + op(xn, w_b, None)
            s = r / (z + sign * STAB)
            out = xp * vjp(w_a, xp, s)
            if signed:
                out = out + xn * vjp(w_b, xn, s)
            return out

        bp = None if (b is None or not use_bias) else b.clamp(min=0)
        out = alpha * share(wp, wn, bp, 1.0)
        if beta != 0:
            bn = None if (b is None or not use_bias) else b.clamp(max=0)
            out = out - beta * share(wn, wp, bn, -1.0)
        return out
    if name in ("w2", "flat"):
        wq = w * w if name == "w2" else torch.ones_like(w)
        ones = torch.ones_like(x)
        z = op(ones, wq, None)
        return _vjp(lambda t: op(t, wq, None), ones, r / (z + STAB))
    if name == "zb":
        lo = _bound(low, x, "min")
        hi = _bound(high, x, "max")
        wp, wn = w.clamp(min=0), w.clamp(max=0)
        with torch.enable_grad():
            xs = [t.detach().requires_grad_(True) for t in (x, lo, hi)]
            z = op(xs[0], w, None) - op(xs[1], wp, None) - op(xs[2], wn, None)
            gx, gl, gh = torch.autograd.grad(z, xs, r / (z.detach() + STAB))
        return x * gx + lo * gl + hi * gh
    raise AssertionError(name)  # pragma: no cover - rules are checked when the call starts


def _bound(v: Any, x: torch.Tensor, how: str) -> torch.Tensor:
    """The z^B box bound as a tensor of ``x``'s shape: the given value, or each image's per-channel
    minimum / maximum."""
    if v is None:
        red = x.amin(dim=(2, 3), keepdim=True) if how == "min" else x.amax(dim=(2, 3), keepdim=True)
        return red.expand_as(x).contiguous() if x.ndim == 4 else red
    return torch.broadcast_to(torch.as_tensor(v, dtype=x.dtype, device=x.device), x.shape).contiguous()


class _Weighted(torch.autograd.Function):
    """A convolution / linear layer: forward as the model's (or the given ``value``, a folded batch norm's
    output), backward its rule's relevance.  The epsilon rule reuses the forward output as ``z`` and the
    layer's transpose (``spec["t"]``, when known) instead of a second forward pass."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, spec: dict) -> torch.Tensor:
        ctx.spec = spec
        value = spec.pop("value", None)
        y = spec["op"](x, spec["w"], spec["b"]) if value is None else value
        ctx.fast = spec["rule"].name == "epsilon" and spec.get("t") is not None
        ctx.save_for_backward(x)
        if ctx.fast:
            # z is the output itself, shared (no copy); LRPMode swaps in a copy before any in-place change
            spec["holder"]["z"] = y.detach()
        return y

    @staticmethod
    def backward(ctx: Any, r: torch.Tensor) -> Any:
        x = ctx.saved_tensors[0]
        s = ctx.spec
        if ctx.fast:
            c = s["t"](r / _stab(s["holder"]["z"], s["rule"].epsilon), s["w"], x)
            return x * c, None
        return _relevance(s["rule"], s["op"], x, s["w"], s["b"], r, s["low"], s["high"], s.get("t")), None


def _pair(v: Any) -> list[int]:
    return [int(v), int(v)] if isinstance(v, int) else [int(u) for u in v]


def _conv2d_transpose(stride: Any, padding: Any, dilation: Any, groups: Any) -> Callable:
    """``J^T s`` of a 2-D convolution: the input half of its backward, given the real input (so no
    stand-in input is materialised)."""
    st, pd, dl = _pair(stride), _pair(padding), _pair(dilation)

    def t(s: torch.Tensor, w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:  # an unbatched (C, H, W) call
            return conv2d_input(x.shape, w, s, st, pd, dl, int(groups))
        return torch.ops.aten.convolution_backward(s, x, w, None, st, pd, dl, False, [0, 0], int(groups),
                                                   [True, False, False])[0]

    return t


def _linear_transpose(s: torch.Tensor, w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return s @ w


class _Norm(torch.autograd.Function):
    """A linear weight-free op (pooling, mean, sum, BN as an affine map): relevance in proportion to each
    input's contribution, ``R_in = x * J^T (R / stab(z))``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, fn: Callable, lin: Callable) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.lin = lin
        return fn(x)

    @staticmethod
    def backward(ctx: Any, r: torch.Tensor) -> Any:
        (x,) = ctx.saved_tensors
        with torch.enable_grad():
            xx = x.detach().requires_grad_(True)
            z = ctx.lin(xx)
            (c,) = torch.autograd.grad(z, xx, r / _stab(z.detach(), STAB))
        return x * c, None, None


class _Sum(torch.autograd.Function):
    """``z = sum_k c_k t_k (+ constants)``: ``R_k = c_k t_k / stab(z) R`` (summed over broadcast axes)."""

    @staticmethod
    def forward(ctx: Any, holder: dict, coefs: tuple, *ts: torch.Tensor) -> torch.Tensor:
        z = holder.pop("z")  # computed by the caller; handed over in a dict so it is not an input
        if holder.pop("inplace", False):  # ``a += b``: ``a`` is overwritten after this call
            ctx.vals = [z.clone(), *[t.detach().clone() for t in ts]]
        else:
            ctx.vals = None
            ctx.save_for_backward(z, *ts)
        ctx.coefs = coefs
        ctx.renorm = holder.pop("renorm", False)
        return z

    @staticmethod
    def backward(ctx: Any, r: torch.Tensor) -> Any:
        z, *ts = ctx.vals if ctx.vals is not None else ctx.saved_tensors
        s = r / _stab(z, STAB)
        parts = [(c * t * s).sum_to_size(t.shape) for c, t in zip(ctx.coefs, ts)]
        if ctx.renorm and len(parts) == 2 and all(p.shape == r.shape for p in parts):
            parts = _renormalise(parts, r)
        return (None, None, *parts)


class _Product(torch.autograd.Function):
    """``z = fn(t_1, t_2, ...)``, bilinear in the signals (a matrix product): ``R_k = t_k * J_k^T (R / stab(z))``
    for every operand that carries the signal (Chefer et al. 2021's rule for ``einsum``)."""

    @staticmethod
    def forward(ctx: Any, fn: Callable, *ts: torch.Tensor) -> torch.Tensor:
        ctx.fn = fn
        ctx.save_for_backward(*ts)
        return fn(*ts)

    @staticmethod
    def backward(ctx: Any, r: torch.Tensor) -> Any:
        ts = ctx.saved_tensors
        need = ctx.needs_input_grad[1:]
        with torch.enable_grad():
            xs = [t.detach().requires_grad_(bool(n)) for t, n in zip(ts, need)]
            z = ctx.fn(*xs)
            live = [x for x, n in zip(xs, need) if n]
            gs = iter(torch.autograd.grad(z, live, r / _stab(z.detach(), STAB)))
        return (None, *[t * next(gs) if n else None for t, n in zip(ts, need)])


def _renormalise(parts: list[torch.Tensor], r: torch.Tensor) -> list[torch.Tensor]:
    """Rescale the relevance ``parts`` of a sum (each of ``r``'s shape) so that per image they add up to
    ``r``'s total, each in proportion to the absolute value of its own total (Chefer et al. 2021)."""
    b = r.shape[0]
    total = r.reshape(b, -1).sum(dim=1)
    sums = [p.reshape(b, -1).sum(dim=1) for p in parts]
    mag = torch.stack([s.abs() for s in sums]).sum(dim=0)
    out = []
    for p, s in zip(parts, sums):
        f = torch.where(mag != 0, s.abs() / torch.where(mag != 0, mag, 1) * total, 0)
        f = torch.where(s != 0, f / torch.where(s != 0, s, 1), 0)
        out.append(p * f.reshape((b,) + (1,) * (p.ndim - 1)))
    return out


class _Pass(torch.autograd.Function):
    """An elementwise op that passes relevance unchanged (ReLU, ReLU6, dropout, scaling by a constant);
    ``inplace`` keeps an in-place call in place."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, fn: Callable, inplace: bool) -> torch.Tensor:
        ctx.shape = x.shape
        if inplace:
            ctx.mark_dirty(x)
            return x.copy_(fn(x))
        return fn(x)

    @staticmethod
    def backward(ctx: Any, r: torch.Tensor) -> Any:
        return r.sum_to_size(ctx.shape), None, None


_CONV = {F.conv1d: "conv", F.conv2d: "conv", F.conv3d: "conv"}
_LINEAR = {F.linear}
_POOL = {F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d,
         F.adaptive_avg_pool3d, torch.mean, torch.Tensor.mean, torch.sum, torch.Tensor.sum}
_DROPOUT = {F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout, F.feature_alpha_dropout,
            torch.dropout}
_ADD = {torch.add, torch.Tensor.add, torch.Tensor.__add__, torch.Tensor.__radd__, torch.Tensor.add_,
        torch.Tensor.__iadd__}
_SUB = {torch.sub, torch.Tensor.sub, torch.Tensor.__sub__, torch.Tensor.sub_, torch.Tensor.__isub__,
        torch.subtract}
_RSUB = {torch.Tensor.__rsub__}
_SCALE = {torch.mul, torch.Tensor.mul, torch.Tensor.__mul__, torch.Tensor.__rmul__, torch.multiply,
          torch.div, torch.Tensor.div, torch.Tensor.__truediv__, torch.true_divide, torch.divide,
          torch.Tensor.mul_, torch.Tensor.__imul__, torch.Tensor.div_, torch.Tensor.__itruediv__,
          torch.neg, torch.Tensor.neg, torch.Tensor.__neg__}
#: in-place forms (``a += b`` reaches the mode as ``Tensor.add_``): they stay in place
_INPLACE = {torch.Tensor.add_, torch.Tensor.__iadd__, torch.Tensor.sub_, torch.Tensor.__isub__,
            torch.Tensor.mul_, torch.Tensor.__imul__, torch.Tensor.div_, torch.Tensor.__itruediv__}
#: ops whose ordinary gradient moves each relevance value with its element
_TRANSPARENT_NAMES = {
    "view", "reshape", "flatten", "permute", "transpose", "contiguous", "clone", "squeeze", "unsqueeze",
    "__getitem__", "cat", "concat", "concatenate", "stack", "hstack", "vstack", "pad", "narrow", "select",
    "split", "chunk", "unbind",
    "to", "float", "double", "half", "type", "type_as", "max_pool1d", "max_pool2d", "max_pool3d",
    "_max_pool1d", "_max_pool2d", "_max_pool3d", "max_pool1d_with_indices", "max_pool2d_with_indices",
    "max_pool3d_with_indices", "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
    "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices", "adaptive_max_pool3d_with_indices",
    "_adaptive_max_pool1d", "_adaptive_max_pool2d", "_adaptive_max_pool3d", "requires_grad_", "retain_grad",
    "register_hook", "detach", "detach_", "cpu", "cuda", "identity", "view_as", "reshape_as", "expand_as",
    "movedim", "moveaxis", "swapaxes", "swapdims", "unflatten", "t", "T", "mT", "__get__", "__set__",
    "flip", "roll", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "native_channel_shuffle",
}


#: transformer mode: elementwise / normalising ops that pass relevance unchanged (Chefer et al. 2021)
_TRANSFORMER_PASS = {F.layer_norm, F.gelu, F.softmax, torch.softmax, torch.Tensor.softmax, torch._softmax}
#: transformer mode: matrix products (of two signals: attention and values, queries and keys)
_PRODUCT = {torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.Tensor.__rmatmul__, torch.bmm,
            torch.Tensor.bmm, torch.einsum}

_DIV = {torch.div, torch.Tensor.div, torch.Tensor.__truediv__, torch.true_divide, torch.divide, torch.Tensor.div_,
        torch.Tensor.__itruediv__}


def _identity(t: torch.Tensor) -> torch.Tensor:
    return t


def _apply2(op: Any, other: Any, t: torch.Tensor) -> torch.Tensor:
    return op(t, other)


def _call_with(func: Any, args: tuple, kwargs: dict, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return func(*[t if a is x else a for a in args], **kwargs)


def _first(args: tuple, kwargs: dict) -> Any:
    return args[0] if args else kwargs.get("input", kwargs.get("self"))


def _carries(v: Any) -> bool:
    if isinstance(v, torch.Tensor):
        return v.requires_grad
    if isinstance(v, (tuple, list)):
        return any(_carries(t) for t in v)
    return False


class LRPMode(TorchFunctionMode):
    """Within this mode each supported op propagates relevance (see the module docstring).

    ``rules``: ``{"conv": Rule, "linear": Rule}``; ``first``: the rule of the first weighted layer called
    (``None``: its kind's rule); ``low``/``high``: the z^B bounds; ``fold``: fold batch norms into the
    preceding weighted layer; ``where``: a callable giving the module being run (for error messages).
    """

    def __init__(self, rules: dict[str, Rule], first: Rule | None, low: Any, high: Any, fold: bool,
                 where: Callable[[], str], *, transformer: bool = False) -> None:
        super().__init__()
        self.rules, self.first, self.low, self.high, self.fold, self.where = rules, first, low, high, fold, where
        self.transformer = transformer
        #: > 0 while a module whose output is replaced afterwards runs (its own ops need no rule)
        self.skip = 0
        self.weighted = 0
        self._last: tuple[torch.Tensor, dict] | None = None
        #: id(output) -> (output, holder) of the layers whose backward reads their output as z
        self._shared: dict[int, tuple[torch.Tensor, dict]] = {}

    def _protect(self, t: Any) -> None:
        """Before ``t`` is changed in place: a layer that reads ``t`` as its z gets a copy."""
        entry = self._shared.pop(id(t), None) if isinstance(t, torch.Tensor) else None
        if entry is not None and entry[0] is t and "z" in entry[1]:
            entry[1]["z"] = entry[1]["z"].clone()

    def _refuse(self, what: str, hint: str) -> ModelError:
        extra = ", and for transformers layer norm, GELU, softmax and matrix products" if self.transformer else ""
        return ModelError(
            f"LRP has no rule for {what} (in {self.where()}); {hint}. LRP here supports convolutions, linear "
            "layers, ReLU/ReLU6, batch norm, dropout, max/average/adaptive pooling, flatten/reshape and "
            f"additions{extra}; use a gradient method (integrated-gradients, input-x-gradient) for this model"
        )

    def _weighted(self, kind: str, op: LinearOp, x: torch.Tensor, w: torch.Tensor, b: Any,
                  t: Callable | None) -> torch.Tensor:
        rule = self.rules[kind]
        if self.weighted == 0 and self.first is not None:
            rule = self.first
        self.weighted += 1
        spec = {"op": op, "w": w.detach(), "b": None if b is None else b.detach(), "rule": rule,
                "low": self.low, "high": self.high, "t": t, "holder": {}}
        y = _Weighted.apply(x, spec)
        self._shared[id(y)] = (y, spec["holder"])
        self._last = (y, {**spec, "x": x, "kind": kind})
        return y

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if self.skip:
            return func(*args, **kwargs)
        if self.transformer and (func in _TRANSFORMER_PASS or func in _PRODUCT):
            return self._transformer_op(func, args, kwargs)
        if func in _CONV or func in _LINEAR:
            return self._conv_linear(func, args, kwargs)
        if func is F.batch_norm:
            return self._batch_norm(args, kwargs)
        if func in RELU_FUNCS or func in CLAMP6_FUNCS or func in HARDTANH_FUNCS:
            return self._rectifier(func, args, kwargs)
        if func in _DROPOUT:
            return self._dropout(func, args, kwargs)
        if func in _POOL:
            return self._pool(func, args, kwargs)
        if func in _ADD or func in _SUB or func in _RSUB:
            return self._sum(func, args, kwargs)
        if func in _SCALE:
            return self._scale(func, args, kwargs)
        out = func(*args, **kwargs)
        if _carries(out) and (_carries(args) or _carries(list(kwargs.values()))):
            name = getattr(func, "__name__", repr(func))
            if name not in _TRANSPARENT_NAMES:
                if func in SMOOTH_FUNCS:
                    raise self._refuse(f"the smooth activation {SMOOTH_FUNCS[func]}",
                                       "LRP's rules are defined for rectifier networks")
                raise self._refuse(f"the operation {name}", "no rule is defined for it")
        return out

    def _conv_linear(self, func: Any, args: tuple, kwargs: dict) -> Any:
        x = _first(args, kwargs)
        w = args[1] if len(args) > 1 else kwargs["weight"]
        if not (isinstance(x, torch.Tensor) and x.requires_grad):
            if _carries(w):
                raise self._refuse(f"a {func.__name__} whose weight depends on the input",
                                   "dynamic weights have no LRP rule")
            return func(*args, **kwargs)
        if _carries(w) or _carries(args[2:3]) or _carries(kwargs.get("bias")):
            raise self._refuse(f"a {func.__name__} whose weight depends on the input",
                               "dynamic weights have no LRP rule")
        b = args[2] if len(args) > 2 else kwargs.get("bias")
        rest = args[3:]
        extra = {k: v for k, v in kwargs.items() if k not in ("input", "weight", "bias")}

        def op(t: torch.Tensor, ww: torch.Tensor, bb: Any, _f: Any = func, _r: tuple = rest,
               _k: dict = extra) -> torch.Tensor:
            return _f(t, ww, bb, *_r, **_k)

        t: Callable | None = None
        if func in _LINEAR:
            t = _linear_transpose
        elif func is F.conv2d:
            conf = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1}
            conf.update(zip(("stride", "padding", "dilation", "groups"), rest))
            conf.update({k: v for k, v in extra.items() if k in conf})
            if not isinstance(conf["padding"], str):
                t = _conv2d_transpose(conf["stride"], conf["padding"], conf["dilation"], conf["groups"])
        return self._weighted("linear" if func in _LINEAR else "conv", op, x, w, b, t)

    def _rectifier_call(self, func: Any, args: tuple, kwargs: dict) -> tuple[Callable, bool]:
        """A rectifier call as ``(fn, inplace)``: ``fn(t)`` the out-of-place op with the call's arguments;
        a hardtanh whose lower bound is not 0 is refused."""
        if func in HARDTANH_FUNCS:
            lo = args[1] if len(args) > 1 else kwargs.get("min_val", -1.0)
            if float(lo) != 0.0:
                raise self._refuse(f"hardtanh with lower bound {lo}", "only rectifiers (lower bound 0) have one")
        inplace = func in (torch.relu_, torch.Tensor.relu_, F.relu_, F.hardtanh_) or kwargs.get("inplace") is True \
            or (len(args) > 1 and args[-1] is True)
        rest = {k: v for k, v in kwargs.items() if k not in ("input", "inplace")}
        extra = tuple(a for a in args[1:] if not isinstance(a, bool))
        plain = {torch.relu_: torch.relu, torch.Tensor.relu_: torch.relu, F.relu_: torch.relu,
                 F.hardtanh_: F.hardtanh}.get(func, func)
        return functools.partial(_call_plain, plain, extra, rest), bool(inplace)

    def _rectifier(self, func: Any, args: tuple, kwargs: dict) -> Any:
        x = _first(args, kwargs)
        if not _carries(x):
            return func(*args, **kwargs)
        fn, inplace = self._rectifier_call(func, args, kwargs)
        if inplace:
            self._protect(x)
        return _Pass.apply(x, fn, inplace)

    def _dropout_carries(self, args: tuple, kwargs: dict) -> bool:
        """Whether a dropout call's input carries the signal (refused in training mode, where it does)."""
        if not _carries(_first(args, kwargs)):
            return False
        if args[2] if len(args) > 2 else kwargs.get("training", True):
            raise self._refuse("dropout in training mode", "call the model in eval mode")
        return True

    def _dropout(self, func: Any, args: tuple, kwargs: dict) -> Any:
        out = func(*args, **kwargs)
        x = _first(args, kwargs)
        if not self._dropout_carries(args, kwargs):
            return out
        return out if out is x else _Pass.apply(x, _identity, False)

    def _pool(self, func: Any, args: tuple, kwargs: dict) -> Any:
        x = _first(args, kwargs)
        if not _carries(x):
            return func(*args, **kwargs)
        rest, extra = args[1:], {k: v for k, v in kwargs.items() if k not in ("input", "self")}

        def lin(t: torch.Tensor, _f: Any = func, _a: tuple = rest, _k: dict = extra) -> torch.Tensor:
            return _f(t, *_a, **_k)

        return _Norm.apply(x, lin, lin)

    def _scaled(self, func: Any, args: tuple) -> torch.Tensor | None:
        """The signal a multiplication / division by a constant scales (None: no signal); a product of two
        signals and a division by a signal are refused."""
        tensors = [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
        if len(tensors) == 2:
            raise self._refuse(f"the product of two signals ({func.__name__})",
                               "gating / attention products have no rule here")
        if tensors and func in _DIV and args[0] is not tensors[0]:
            raise self._refuse("division by a signal", "it is not linear in the signal")
        return tensors[0] if tensors else None

    def _scale(self, func: Any, args: tuple, kwargs: dict) -> Any:
        x = self._scaled(func, args)
        if x is None:
            return func(*args, **kwargs)
        if func in _INPLACE:
            other = args[1] if len(args) > 1 else kwargs.get("other")
            op = torch.mul if func in (torch.Tensor.mul_, torch.Tensor.__imul__) else torch.div
            self._protect(x)
            return _Pass.apply(x, functools.partial(_apply2, op, other), True)
        return _Pass.apply(x, functools.partial(_call_with, func, args, kwargs, x), False)

    def _transformer_op(self, func: Any, args: tuple, kwargs: dict) -> Any:
        if func in _TRANSFORMER_PASS:
            x = _first(args, kwargs)
            if not _carries(x):
                return func(*args, **kwargs)
            return _Pass.apply(x, functools.partial(_call_with, func, args, kwargs, x), False)
        return self._product(func, args, kwargs)

    def _product(self, func: Any, args: tuple, kwargs: dict) -> Any:
        if func is torch.einsum:
            listed = len(args) == 2 and isinstance(args[1], (list, tuple))
            eq, ops = args[0], list(args[1]) if listed else list(args[1:])
            fn: Callable = functools.partial(_einsum, eq)
        else:
            if func is torch.Tensor.__rmatmul__:  # b @ a reaches the mode as a.__rmatmul__(b)
                ops, fn = [args[1], args[0]], torch.matmul
            else:
                ops, fn = list(args[:2]), torch.matmul if func in (torch.matmul, torch.Tensor.matmul,
                                                                  torch.Tensor.__matmul__) else torch.bmm
        if kwargs or not all(isinstance(t, torch.Tensor) for t in ops):
            return func(*args, **kwargs)
        if not any(t.requires_grad for t in ops):
            return func(*args, **kwargs)
        return _Product.apply(fn, *ops)

    def _sum(self, func: Any, args: tuple, kwargs: dict) -> Any:
        a: Any = args[0] if args else kwargs.get("input")
        b: Any = args[1] if len(args) > 1 else kwargs.get("other")
        alpha = kwargs.get("alpha", args[2] if len(args) > 2 else 1)
        if not (_carries(a) or _carries(b)):
            return func(*args, **kwargs)
        sub = func in _SUB
        if func in _RSUB:  # b - a
            a, b, sub = b, a, True
        ca, cb = 1.0, (-1.0 if sub else 1.0) * float(alpha)
        with torch._C.DisableTorchFunction():
            z: Any = a + cb * b
        coefs, ts = [], []
        for c, t in ((ca, a), (cb, b)):
            if isinstance(t, torch.Tensor) and t.requires_grad:
                coefs.append(c)
                ts.append(t)
        inplace = func in _INPLACE
        out = _Sum.apply({"z": z.detach(), "inplace": inplace, "renorm": self.transformer}, tuple(coefs), *ts)
        if inplace:
            self._protect(a)
            with torch._C.DisableTorchFunction():
                return a.copy_(out)
        return out

    def _bn_args(self, args: tuple, kwargs: dict) -> dict | None:
        """``F.batch_norm``'s arguments by name; None when the input carries no signal; refused in training."""
        names = ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps")
        p = dict(zip(names, args))
        p.update(kwargs)
        if not _carries(p["input"]):
            return None
        if p.get("training") or p.get("running_mean") is None:
            raise self._refuse("batch norm with batch statistics (training mode or track_running_stats=False)",
                               "call the model in eval mode with running statistics")
        return p

    def _batch_norm(self, args: tuple, kwargs: dict) -> Any:
        p = self._bn_args(args, kwargs)
        if p is None:
            return F.batch_norm(*args, **kwargs)
        x = p["input"]
        eps = float(p.get("eps", 1e-5))
        scale = torch.rsqrt(p["running_var"] + eps)
        if p.get("weight") is not None:
            scale = scale * p["weight"]
        shift = -p["running_mean"] * scale
        if p.get("bias") is not None:
            shift = shift + p["bias"]
        scale, shift = scale.detach(), shift.detach()
        last = self._last
        if self.fold and last is not None and last[0] is x:
            spec = last[1]
            w = spec["w"]
            shape = (-1,) + (1,) * (w.ndim - 1)
            w_f = w * scale.reshape(shape)
            b_f = shift if spec["b"] is None else spec["b"] * scale + shift
            fused = {**spec, "w": w_f, "b": b_f}
            fused.pop("x")
            fused.pop("kind")
            with torch._C.DisableTorchFunction():  # the folded layer's output, from the layer's (no 2nd conv)
                value = F.batch_norm(x.detach(), p["running_mean"], p["running_var"], p.get("weight"),
                                     p.get("bias"), False, 0.0, eps)
            fused["holder"] = {}
            y = _Weighted.apply(spec["x"], {**fused, "value": value})
            self._shared[id(y)] = (y, fused["holder"])
            self._last = None
            return y
        view = (1, -1) + (1,) * (x.ndim - 2)

        def fn(t: torch.Tensor, _s: torch.Tensor = scale, _b: torch.Tensor = shift) -> torch.Tensor:
            return t * _s.reshape(view) + _b.reshape(view)

        def lin(t: torch.Tensor, _s: torch.Tensor = scale) -> torch.Tensor:
            return t * _s.reshape(view)

        # the epsilon rule on y = s x + t: R_in = s x / stab(y) R (the shift absorbs its share)
        return _NormAffine.apply(x, fn, lin)


class _NormAffine(torch.autograd.Function):
    """``y = s x + t``: ``R_in = s x / stab(y) R``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, fn: Callable, lin: Callable) -> torch.Tensor:
        y = fn(x)
        ctx.save_for_backward(x, y)
        ctx.lin = lin
        return y

    @staticmethod
    def backward(ctx: Any, r: torch.Tensor) -> Any:
        x, y = ctx.saved_tensors
        return ctx.lin(x) * r / _stab(y, STAB), None, None


def _share(z: torch.Tensor, eps: float, *, nonneg: bool = False, out: torch.Tensor | None = None) -> torch.Tensor:
    """What the epsilon rule's factor ``z / stab(z) = |z| / (|z| + eps)`` needs: ``|z| + eps`` (in ``out`` when
    given, else a fresh tensor), or for ``eps = 0`` the factor itself (1, and 0 where ``z = 0``).
    ``nonneg``: ``z >= 0`` already (a ReLU's output).  :func:`_times` applies it."""
    a = z.detach()
    if eps == 0:  # LRP-0: z / z, and 0 where z = 0 (where no relevance arrives)
        return (a != 0).to(a.dtype)
    if out is None:
        return (a if nonneg else a.abs()) + eps
    if nonneg:
        return torch.add(a, eps, out=out)
    return torch.abs(a, out=out).add_(eps)


class _Buffers:
    """Per-thread tensors for the factors' ``|z| + eps``, kept from call to call for the shapes last seen.

    Each call of a CPU model needs one tensor per layer, most of them the size of an activation; fresh ones
    are mapped by the kernel page by page on first touch, which on a ResNet-50 cost about as much as all
    the factors' arithmetic (lrp-epsilon 1.28x the gradient with fresh tensors, 1.10x with these, same
    run; docs/performance.md).  At most ``_BUFFER_CAP`` bytes are kept after a call; a call that needs
    more gets fresh tensors for the rest.  Nothing from here is returned to a caller.
    """

    def __init__(self) -> None:
        self.free: dict[tuple, list[torch.Tensor]] = {}
        self.bytes = 0
        self.cursor: dict[tuple, int] = {}

    def take(self, like: torch.Tensor) -> torch.Tensor | None:
        if like.device.type != "cpu":
            return None  # device allocators pool their memory already
        if not (like.is_contiguous() or like.is_contiguous(memory_format=torch.channels_last)):
            return None  # (a view with gaps or repeats: a fresh tensor)
        key = (tuple(like.shape), like.stride(), like.dtype)
        i = self.cursor.get(key, 0)
        self.cursor[key] = i + 1
        kept = self.free.setdefault(key, [])
        if i < len(kept):
            return kept[i]
        size = like.numel() * like.element_size()
        if self.bytes + size > _BUFFER_CAP:
            return None
        buf = torch.empty_like(like, memory_format=torch.preserve_format, requires_grad=False)
        kept.append(buf)
        self.bytes += size
        return buf

    def release(self) -> None:
        self.cursor.clear()


#: bytes of factor tensors kept per thread between calls (a ResNet-50 at 224 x 224 needs 63 MiB per image)
_BUFFER_CAP = 256 * 2**20
_BUFFER_TLS = threading.local()


def _buffers() -> _Buffers:
    b = getattr(_BUFFER_TLS, "buffers", None)
    if b is None:
        b = _BUFFER_TLS.buffers = _Buffers()
    return b


def _times(eps: float, d: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``g |z| / (|z| + eps)`` from ``d = |z| + eps``, as ``g - eps g / d`` (one fused pass)."""
    if eps == 0:
        return g * d
    return torch.addcdiv(g, g, d, value=-eps)


class _Ratio(torch.autograd.Function):
    """A rectifier ``y = fn(x)`` in the gradient flow: ``g_x = g_y * y / x`` (0 where ``x = 0``), so that
    ``x g_x = y g_y``: relevance passes unchanged, also where ReLU6 saturates (its own gradient is 0 there)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, fn: Callable, inplace: bool) -> torch.Tensor:
        y = fn(x)
        ratio = torch.where(x != 0, y / torch.where(x != 0, x, 1), 0)
        ctx.save_for_backward(ratio)
        if inplace:
            ctx.mark_dirty(x)
            return x.copy_(y)
        return y

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> Any:
        return g * ctx.saved_tensors[0], None, None


class EpsilonFlowMode(LRPMode):
    """LRP with the epsilon rule everywhere, carried as a modified gradient instead of the relevance.

    With ``R = x * g`` at every layer's input, the epsilon rule ``R_i = x_i sum_j w_ij R_j / stab(z_j)``
    becomes ``g_i = sum_j w_ij g_j z_j / stab(z_j)``: the ordinary gradient, multiplied at the layer's output
    by ``z / stab(z) = |z| / (|z| + eps)``.  The same holds for the rules with the tiny stabiliser (pooling,
    batch norm as an affine layer, residual sums: ``eps = 1e-9``), for ReLU (relevance passes unchanged,
    which is the ReLU's own gradient: ``x g_x = y g_y``), max-pooling and the shape ops (their gradient);
    ReLU6 needs ``g_x = g_y y / x`` where it saturates.  So the backward pass is torch's own, with one
    elementwise product per layer, and the input relevance is ``x * g`` (the seed at the output is
    ``d score / d out``, not ``out * d score / d out``).

    A factor waits until its tensor is used: a batch norm folded into the preceding layer moves the layer's
    factor to its own output (the folded layer's ``z``), and a ReLU applied to it takes the factor into its
    own gradient (``g * a / (a + eps)`` with ``a = relu(z)``: one product instead of the gate and the factor).
    Used by :func:`lrp_epsilon` when every weighted layer has the epsilon rule (no first-layer rule); it
    refuses the same operations as :class:`LRPMode`.
    """

    #: calls that read a tensor's metadata, not its values (a batch norm module calls ``input.dim()``)
    _METADATA = frozenset({"dim", "size", "numel", "stride", "is_contiguous", "__get__", "ndimension", "nelement",
                           "element_size", "is_floating_point", "is_complex", "storage_offset", "get_device",
                           "__len__", "data_ptr", "has_names", "is_sparse"})

    def __init__(self, rules: dict[str, Rule], first: Rule | None, low: Any, high: Any, fold: bool,
                 where: Callable[[], str]) -> None:
        if first is not None or any(r.name != "epsilon" for r in rules.values()):
            raise ValueError("EpsilonFlowMode carries the epsilon rule only, with no first-layer rule")
        super().__init__(rules, None, low, high, fold, where)
        #: the tensor whose factor waits for its first use, and the factor's epsilon
        self._pending: tuple[torch.Tensor, float] | None = None
        self._buffers = _buffers()

    def release(self) -> None:
        """After the backward pass: the factor tensors may serve the next call on this thread."""
        self._buffers.release()

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        pending = self._pending
        if pending is not None and not self.skip and getattr(func, "__name__", "") not in self._METADATA \
                and _mentions(pending[0], args, kwargs):
            y = pending[0]
            takes = _first(args, kwargs or {}) is y and ((func is F.batch_norm and self._folds(y))
                                                         or func in RELU_FUNCS)
            if not takes:  # any other use: the factor now, before an in-place op can change the values
                self._flush()
        return super().__torch_function__(func, types, args, kwargs)

    def __exit__(self, *exc: Any) -> Any:
        out = super().__exit__(*exc)  # first: the factor's own ops must not pass through the mode
        self._flush()  # the model's output layer
        return out

    def _flush(self) -> None:
        if self._pending is not None:
            y, eps = self._pending
            self._pending = None
            y.register_hook(functools.partial(_times, eps, _share(y, eps, out=self._buffers.take(y))))

    def _wait(self, y: torch.Tensor, eps: float) -> None:
        self._flush()  # (a factor nobody used: a branch whose output was dropped)
        self._pending = (y, eps)

    def _folds(self, x: torch.Tensor) -> bool:
        """Whether a batch norm on ``x`` folds into the weighted layer that made ``x``."""
        return self.fold and self._last is not None and self._last[0] is x

    def _protect(self, t: Any) -> None:
        pass  # the factors are computed in the forward pass: nothing reads a saved output later

    def _weighted(self, kind: str, op: LinearOp, x: torch.Tensor, w: torch.Tensor, b: Any,
                  t: Callable | None) -> torch.Tensor:
        self.weighted += 1
        eps = self.rules[kind].epsilon
        y = op(x, w, b)
        self._last = (y, {"eps": eps})
        self._wait(y, eps)
        return y

    def _batch_norm(self, args: tuple, kwargs: dict) -> Any:
        p = self._bn_args(args, kwargs)
        if p is None:
            return F.batch_norm(*args, **kwargs)
        eps = STAB  # the epsilon rule with the tiny stabiliser on y = s x + t ...
        if self._folds(p["input"]):  # ... or the layer's: its z is this output, its factor moves here
            eps = self._last[1]["eps"]  # type: ignore[index]
            self._pending = None
            self._last = None
        y = F.batch_norm(*args, **kwargs)
        self._wait(y, eps)
        return y

    def _rectifier(self, func: Any, args: tuple, kwargs: dict) -> Any:
        x = _first(args, kwargs)
        if not _carries(x):
            return func(*args, **kwargs)
        fn, inplace = self._rectifier_call(func, args, kwargs)
        if func in RELU_FUNCS:  # ReLU's gradient is the rule; with a waiting factor, the two in one product
            pending = self._pending
            if pending is not None and pending[0] is x:
                self._pending = None
                return _GatedShare.apply(x, pending[1], inplace, self._buffers.take(x))
            return func(*args, **kwargs)
        return _Ratio.apply(x, fn, inplace)

    def _dropout(self, func: Any, args: tuple, kwargs: dict) -> Any:
        self._dropout_carries(args, kwargs)  # (refused in training mode)
        return func(*args, **kwargs)  # the identity in eval mode

    def _pool(self, func: Any, args: tuple, kwargs: dict) -> Any:
        y = func(*args, **kwargs)
        if _carries(_first(args, kwargs)):
            self._wait(y, STAB)
        return y

    def _scale(self, func: Any, args: tuple, kwargs: dict) -> Any:
        self._scaled(func, args)  # (refuses products and quotients of signals)
        return func(*args, **kwargs)  # a constant factor: its gradient passes relevance unchanged

    def _sum(self, func: Any, args: tuple, kwargs: dict) -> Any:
        a: Any = args[0] if args else kwargs.get("input")
        b: Any = args[1] if len(args) > 1 else kwargs.get("other")
        out = func(*args, **kwargs)
        if _carries(a) or _carries(b):
            self._wait(out, STAB)  # each operand's share c_k t_k / stab(z): the gradient times z / stab(z)
        return out


class _GatedShare(torch.autograd.Function):
    """``a = relu(z)`` whose gradient also carries the epsilon factor of ``z``: ``g_z = g_a a / (a + eps)``
    (the ReLU's gate times ``z / stab(z)``, which are equal where ``z > 0`` and both 0 elsewhere)."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, eps: float, inplace: bool, out: torch.Tensor | None) -> torch.Tensor:
        if inplace:
            ctx.mark_dirty(z)
            a = z.relu_()
        else:
            a = torch.relu(z)
        ctx.save_for_backward(_share(a, eps, nonneg=True, out=out))
        ctx.eps = eps
        return a

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> Any:
        return _times(ctx.eps, ctx.saved_tensors[0], g), None, None, None


def _mentions(t: torch.Tensor, args: tuple, kwargs: Any) -> bool:
    """Whether ``t`` is one of the arguments (or in a list / tuple argument)."""
    for v in (*args, *(kwargs or {}).values()):
        if v is t or (isinstance(v, (list, tuple)) and any(u is t for u in v)):
            return True
    return False


def _call_plain(fn: Any, extra: tuple, rest: dict, t: torch.Tensor) -> torch.Tensor:
    return fn(t, *extra, **rest)


def _einsum(eq: str, *ts: torch.Tensor) -> torch.Tensor:
    return torch.einsum(eq, *ts)


@contextlib.contextmanager
def module_stack(net: nn.Module) -> Iterator[Callable[[], str]]:
    """Track the module being run, for error messages: a global forward pre-hook and hook for the call's
    duration (two registrations, where one hook per module cost ~6 ms per call on a ResNet-50), counting
    only ``net``'s own modules run by this thread."""
    labels = {id(m): f"layer {name!r} ({type(m).__name__})" if name else f"the model's forward ({type(m).__name__})"
              for name, m in net.named_modules()}
    stack: list[str] = []
    me = threading.get_ident()

    def pre(mod: Any, inputs: Any) -> None:
        label = labels.get(id(mod))
        if label is not None and threading.get_ident() == me:
            stack.append(label)

    def post(mod: Any, inputs: Any, output: Any) -> None:
        if id(mod) in labels and threading.get_ident() == me and stack:
            stack.pop()

    handles = [nn.modules.module.register_module_forward_pre_hook(pre),
               nn.modules.module.register_module_forward_hook(post)]
    try:
        yield lambda: stack[-1] if stack else "the model's forward"
    finally:
        for h in handles:
            h.remove()


def _check_rule_params(epsilon: Any, gamma: Any, alpha: Any, beta: Any) -> None:
    for n, v in (("epsilon", epsilon), ("gamma", gamma), ("alpha", alpha), ("beta", beta)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0 or v == float("inf"):
            raise InputError(f"{n} must be a finite number >= 0, got {v!r}")
    if abs(float(alpha) - float(beta) - 1.0) > 1e-9:
        raise InputError(f"alpha - beta must be 1 (the alpha-beta rule's conservation), got alpha={alpha}, "
                         f"beta={beta}; e.g. alpha=1, beta=0 or alpha=2, beta=1")


#: composite name -> (rule for convolutions, rule for linear layers, default first-layer rule)
COMPOSITES: dict[str, tuple[str, str, str | None]] = {
    "epsilon-gamma-box": ("gamma", "epsilon", "zb"),
    "epsilon-plus": ("zplus", "epsilon", None),
    "epsilon-plus-flat": ("zplus", "epsilon", "flat"),
    "epsilon-alpha2-beta1": ("alphabeta", "epsilon", None),
    "epsilon-alpha2-beta1-flat": ("alphabeta", "epsilon", "flat"),
}


def _gradient_flow(rules: dict[str, Rule], first: Rule | None) -> bool:
    """Whether the rules can run as :class:`EpsilonFlowMode`: the epsilon rule on every weighted layer."""
    return first is None and all(r.name == "epsilon" for r in rules.values())


def _run(method: str, model: Any, images: Any, target: Any, layer: Any, conv: str, linear: str,
         first_rule: Any, *, epsilon: Any, gamma: Any, alpha: Any, beta: Any, low: Any, high: Any,
         batchnorm: Any, params: dict) -> Explanation:
    check_unknown(method, params)
    if layer is not None:
        raise InputError(f"method {method!r} explains input pixels and takes no layer; pass layer=None")
    _check_rule_params(epsilon, gamma, alpha, beta)
    if first_rule is not None and first_rule not in FIRST_RULES:
        raise InputError(f"first_rule must be one of {', '.join(FIRST_RULES)} or None (the layer's own rule), "
                         f"got {first_rule!r}")
    if batchnorm not in ("fold", "rule"):
        raise InputError(f"batchnorm must be 'fold' (into the preceding layer) or 'rule' (epsilon rule on "
                         f"the affine map), got {batchnorm!r}")
    for n, v in (("low", low), ("high", high)):
        if v is not None and not isinstance(v, (int, float, torch.Tensor)) or isinstance(v, bool):
            raise InputError(f"{n} must be None (each image's per-channel extreme), a number or a tensor, "
                             f"got {type(v).__name__}")
    kw = {"epsilon": float(epsilon), "gamma": float(gamma), "alpha": float(alpha), "beta": float(beta)}
    rules = {"conv": Rule(conv, **kw), "linear": Rule(linear, **kw)}
    first = Rule(first_rule, **kw) if first_rule is not None else None
    net = unwrap_model(model)
    x = check_images(images, net)
    tgt = Target.parse(target, x.shape[0])
    b = x.shape[0]
    flow = _gradient_flow(rules, first)
    # the gradient flow keeps a model's in-place activations (its factors are taken before they run)
    with scoped_model(net, no_inplace="auto" if flow else True), module_stack(net) as where:
        xs = x.detach().requires_grad_(True)
        mode = (EpsilonFlowMode if flow else LRPMode)(rules, first, low, high, batchnorm == "fold", where)
        with torch.enable_grad(), contextlib.ExitStack() as done:
            if isinstance(mode, EpsilonFlowMode):
                done.callback(mode.release)  # after the backward pass (or an error): the buffers are free
            with mode:
                out = net(xs)
            if not isinstance(out, torch.Tensor) or out.shape[0] != b:
                raise ModelError(f"{method} propagates relevance from the model's output and needs a model "
                                 "that returns one tensor with a row per image")
            # d score / d out on a detached copy: a hook on ``out`` (EpsilonFlowMode's factor) must act once,
            # in the pass below, not here as well
            top = out.detach().requires_grad_(True)
            scores, idx = select_scores(top, tgt, b)
            (ds,) = torch.autograd.grad(scores.sum(), top)
            if mode.weighted == 0:
                raise ModelError(f"{method}: the model has no convolution or linear layer on the input's path; "
                                 "LRP has nothing to propagate through")
            try:
                if flow:  # the gradient, times x at the end (EpsilonFlowMode)
                    (g,) = torch.autograd.grad(out, xs, ds)
                    rel = xs.detach() * g
                else:  # the relevance itself flows back, seeded with out * d score / d out
                    (rel,) = torch.autograd.grad(out, xs, out.detach() * ds)
            except RuntimeError as exc:
                if "inplace operation" not in str(exc):
                    raise
                raise ModelError(f"{method}: the model modifies a layer's output in place with an explicit "
                                 "method (x.add_, x.mul_, ...) after LRP saved it; write it out of place "
                                 "(x = x + y)") from None
    raise_if_insensitive(rel.reshape(b, -1), method, "relevance at the input")
    rel = rel.detach()
    delta = rel.reshape(b, -1).double().sum(dim=1) - scores.detach().double()
    return Explanation(finish(rel.sum(dim=1)), idx, scores.detach().float(), method, None,
                       {"attributions": rel, "delta": delta.float()})


_DOC_COMMON = """
    Parameters
    ----------
    model, images, target: as :func:`salience.attribution.gradient`; ``layer`` must be ``None``.
    first_rule: the rule of the first convolution / linear layer (the one reading the pixels): ``"zb"``
        (z^B with bounds ``low``/``high``), ``"w2"``, ``"flat"``, or ``None`` (the layer's own rule).
    low, high: z^B's lowest / highest input values: numbers or tensors broadcastable to the images;
        ``None`` (default): each image's per-channel minimum / maximum.
    batchnorm: ``"fold"`` (default): a batch norm after a convolution / linear layer is folded into it;
        ``"rule"``: every batch norm is an affine layer under the epsilon rule (Captum's treatment).

    Returns
    -------
    Explanation: ``maps`` the channel sum of the input relevance, float32 ``(B, H, W)``, signed, score
    units; ``extras["attributions"]`` the relevance ``(B, C, H, W)``; ``extras["delta"]`` ``(B,)``
    ``sum(relevance) - score`` (0 for conservative rules on bias-free networks).

    Raises
    ------
    ModelError naming the operation and the layer when the model uses one LRP has no rule for.
"""


def lrp_epsilon(model: Any, images: Any, target: Any = None, layer: Any = None, *, epsilon: float = 1e-6,
                first_rule: str | None = None, low: Any = None, high: Any = None, batchnorm: str = "fold",
                **params: Any) -> Explanation:
    """LRP-epsilon (Bach et al. 2015): every convolution and linear layer uses the epsilon rule
    ``R_i = x_i sum_j w_ij R_j / (z_j + epsilon sign(z_j))``; ``epsilon -> 0`` is LRP-0 (gradient x input
    on ReLU networks)."""
    return _run("lrp-epsilon", model, images, target, layer, "epsilon", "epsilon", first_rule,
                epsilon=epsilon, gamma=0.25, alpha=1.0, beta=0.0, low=low, high=high, batchnorm=batchnorm,
                params=params)


def lrp_gamma(model: Any, images: Any, target: Any = None, layer: Any = None, *, gamma: float = 0.25,
              first_rule: str | None = None, low: Any = None, high: Any = None, batchnorm: str = "fold",
              **params: Any) -> Explanation:
    """LRP-gamma (Montavon et al. 2019): every convolution and linear layer uses ``w + gamma w^+`` (and
    ``b + gamma b^+``), favouring positive contributions."""
    return _run("lrp-gamma", model, images, target, layer, "gamma", "gamma", first_rule, epsilon=1e-6,
                gamma=gamma, alpha=1.0, beta=0.0, low=low, high=high, batchnorm=batchnorm, params=params)


def lrp_alphabeta(model: Any, images: Any, target: Any = None, layer: Any = None, *, alpha: float = 1.0,
                  beta: float = 0.0, first_rule: str | None = None, low: Any = None, high: Any = None,
                  batchnorm: str = "fold", **params: Any) -> Explanation:
    """LRP-alpha-beta (Bach et al. 2015): positive and negative contributions propagated separately,
    weighted ``alpha`` and ``-beta`` (``alpha - beta = 1``; ``alpha=1, beta=0`` and ``alpha=2, beta=1`` are
    the usual choices), biases included in ``z^+`` / ``z^-``."""
    return _run("lrp-alphabeta", model, images, target, layer, "alphabeta", "alphabeta", first_rule,
                epsilon=1e-6, gamma=0.25, alpha=alpha, beta=beta, low=low, high=high, batchnorm=batchnorm,
                params=params)


def lrp_zplus(model: Any, images: Any, target: Any = None, layer: Any = None, *, first_rule: str | None = None,
              low: Any = None, high: Any = None, batchnorm: str = "fold", **params: Any) -> Explanation:
    """LRP-z+ (Montavon et al. 2017, deep Taylor decomposition): only positive contributions
    ``(x_i w_ij)^+``, biases left out, so relevance is conserved and non-negative on ReLU networks."""
    return _run("lrp-zplus", model, images, target, layer, "zplus", "zplus", first_rule, epsilon=1e-6,
                gamma=0.25, alpha=1.0, beta=0.0, low=low, high=high, batchnorm=batchnorm, params=params)


def lrp(model: Any, images: Any, target: Any = None, layer: Any = None, *,
        composite: str = "epsilon-gamma-box", epsilon: float = 1e-6, gamma: float = 0.25,
        first_rule: Any = "default", low: Any = None, high: Any = None, batchnorm: str = "fold",
        **params: Any) -> Explanation:
    """LRP with a composite of rules (Montavon et al. 2019, sec. 10.3; Zennit's composites): linear
    (dense) layers use epsilon, convolutions ``gamma`` / ``zplus`` / ``alpha=2, beta=1``, and the first
    layer a pixel rule.

    ``composite``: ``"epsilon-gamma-box"`` (default: conv gamma, first layer z^B),
    ``"epsilon-plus"``, ``"epsilon-plus-flat"``, ``"epsilon-alpha2-beta1"``, ``"epsilon-alpha2-beta1-flat"``;
    ``first_rule="default"`` takes the composite's own first-layer rule.
    """
    if composite not in COMPOSITES:
        raise InputError(f"unknown LRP composite {composite!r}; choose one of {', '.join(COMPOSITES)}")
    conv, linear, first = COMPOSITES[composite]
    alpha, beta = (2.0, 1.0) if conv == "alphabeta" else (1.0, 0.0)
    return _run("lrp", model, images, target, layer, conv, linear, first if first_rule == "default" else first_rule,
                epsilon=epsilon, gamma=gamma, alpha=alpha, beta=beta, low=low, high=high, batchnorm=batchnorm,
                params=params)


for _f in (lrp_epsilon, lrp_gamma, lrp_alphabeta, lrp_zplus, lrp):
    _f.__doc__ = (_f.__doc__ or "") + _DOC_COMMON
