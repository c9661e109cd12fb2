"""Scoped changes to a model: everything here lives for one call only.

* :func:`scoped_model` puts a model into the state an explanation needs (eval mode, no parameter
  gradients, no in-place activations) and restores every flag it touched in a ``finally``, also when
  the call raised.
* :class:`LayerCapture` records the output of one module at *every* call (a module used twice in one
  forward, like EfficientNet-Lite's shared ReLU6, fires its hook twice); the last call is the one
  explained.  Only the graph downstream of that activation is built, so the backward pass stops there.
* :class:`GuidedReLUMode` routes every rectifier (``nn.ReLU``, ``F.relu``, ``torch.relu``,
  ``Tensor.relu``, ``ReLU6``/``hardtanh``, ``leaky_relu``) through the guided-backpropagation rule
  with a :class:`torch.overrides.TorchFunctionMode`, however the model calls it; smooth activations
  (SiLU, GELU, ...) are reported (or given a documented generalised rule on request).

Nothing here is registered in ``__init__`` or cleaned in ``__del__``: hooks are removed by their
handles in ``finally`` blocks.
"""

from __future__ import annotations

import contextlib
import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ..errors import InputError, ModelError

__all__ = ["scoped_model", "model_snapshot", "LayerCapture", "GuidedReLUMode", "resolve_layer"]


def model_snapshot(model: nn.Module) -> dict[str, Any]:
    """Everything a call may touch and must restore: modes, grad flags, in-place flags, hook tables."""
    return {
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "inplace": [getattr(m, "inplace", None) for m in model.modules()],
        "hooks": [
            tuple(len(getattr(m, attr, {}) or {}) for attr in (
                "_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
                "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs", "_state_dict_hooks",
            ))
            for m in model.modules()
        ],
        "modules": [id(m) for m in model.modules()],
        "forward_overrides": ["forward" in vars(m) for m in model.modules()],
    }


@contextlib.contextmanager
def scoped_model(model: nn.Module, *, eval_mode: bool = True, no_inplace: Any = True) -> Iterator[nn.Module]:
    """Eval mode, ``requires_grad=False`` on parameters and ``inplace=False`` for one call; then restore.

    Parameters are frozen so that no backward pass ever computes a parameter gradient (explanations need
    gradients with respect to activations or inputs only).  In-place activations are switched off so an
    activation captured at a layer is not overwritten later in the forward pass (``no_inplace=False``
    keeps them for methods that capture nothing: in-place activations save allocations; ``'auto'``:
    off only when a module carries a backward hook, which forbids in-place ops on its output).
    """
    if not isinstance(model, nn.Module):
        raise ModelError(
            f"model must be a torch.nn.Module, got {type(model).__name__}; pass the network itself "
            "(or a salience LoadedModel from salience.load_model)"
        )
    modules = list(model.modules())
    if no_inplace == "auto":  # a user's full backward hook forbids in-place ops on its outputs
        no_inplace = any(m._backward_hooks or m._backward_pre_hooks for m in modules)
    training = [m.training for m in modules]
    params = list(model.parameters())
    grads = [p.requires_grad for p in params]
    inplace = [(m, m.inplace) for m in modules
               if no_inplace and isinstance(getattr(m, "inplace", None), bool)]
    try:
        if eval_mode:
            model.eval()
        for p in params:
            p.requires_grad_(False)
        for m, _ in inplace:
            m.inplace = False
        yield model
    finally:
        for m, flag in zip(modules, training):
            m.training = flag
        for p, flag in zip(params, grads):
            p.requires_grad_(flag)
        for m, flag in inplace:
            m.inplace = flag


def named_modules_map(model: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules()}


def resolve_layer(model: nn.Module, layer: Any) -> tuple[str, nn.Module]:
    """``(name, module)`` for a layer given by dotted name (``"features.18"``) or as a module.

    Examples
    --------
    >>> import torch
    >>> from salience.attribution import resolve_layer
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    >>> name, module = resolve_layer(net, "0")
    >>> name, type(module).__name__, resolve_layer(net, net[1])[0]
    ('0', 'Conv2d', '1')
    """
    if isinstance(layer, nn.Module):
        for name, m in model.named_modules():
            if m is layer:
                return name or "<model>", m
        raise ModelError(
            f"layer {type(layer).__name__} is not a sub-module of the model; pass one of its modules or "
            "its dotted name (e.g. 'features.18')"
        )
    if not isinstance(layer, str):
        raise ModelError(f"layer must be a module or a dotted name string, got {type(layer).__name__}")
    table = named_modules_map(model)
    if layer in table and layer != "":
        return layer, table[layer]
    import difflib

    names = [n for n in table if n]
    close = difflib.get_close_matches(layer, names, n=5, cutoff=0.5)
    tail = names[-8:]
    raise ModelError(
        f"the model has no layer named {layer!r}"
        + (f"; close names: {', '.join(close)}" if close else "")
        + f". Its last layers are: {', '.join(tail)} (list all with [n for n, _ in model.named_modules()])"
    )


class LayerCapture:
    """Capture a module's output at every call during one forward pass (forward hook, removed on exit).

    ``leaf=True`` makes the captured output a new graph leaf that requires grad when nothing upstream
    does (parameters frozen, input not requiring grad): the forward pass then builds a graph only
    downstream of the layer, and a backward pass to it costs only the layers after it.  The hook
    returns a clone so that later in-place operations cannot overwrite the captured tensor.  Gradients
    with respect to the *last* call are exact also for a module used several times (earlier calls are
    upstream of it).
    """

    def __init__(self, module: nn.Module, *, leaf: bool = True, keep: str = "last"):
        self.module = module
        self.leaf = leaf
        self.keep = keep
        self.outputs: list[torch.Tensor] = []
        self._handle: Any = None

    def _hook(self, module: nn.Module, inputs: Any, output: Any) -> Any:
        if isinstance(output, Mapping) and output and all(isinstance(v, torch.Tensor) for v in output.values()):
            # a dict of feature maps (an FPN's levels): each value becomes a leaf; reshape= reads the dict
            leaves = {k: (v.detach().requires_grad_(True) if self.leaf and not v.requires_grad
                          and v.is_floating_point() else v) for k, v in output.items()}
            if self.keep == "last":
                self.outputs[:] = [leaves]
            else:
                self.outputs.append(leaves)
            copies = {k: (v.clone() if v.requires_grad else v) for k, v in leaves.items()}
            return copies if type(output) is dict else type(output)(copies)
        if not isinstance(output, torch.Tensor):
            if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
                first = output[0]
                new_first = self._hook(module, inputs, first)
                return type(output)([new_first, *output[1:]]) if isinstance(output, list) else (
                    (new_first, *output[1:]))
            raise ModelError(
                f"layer {type(module).__name__} returns {type(output).__name__}, not a tensor (or a dict of "
                "tensors); choose a layer whose output is a feature map"
            )
        if self.leaf and not output.requires_grad:
            output = output.detach().requires_grad_(True)
        if self.keep == "last":
            self.outputs[:] = [output]
        else:
            self.outputs.append(output)
        return output.clone() if output.requires_grad else output

    def __enter__(self) -> LayerCapture:
        self.outputs = []
        self._handle = self.module.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    @property
    def last(self) -> torch.Tensor:
        if not self.outputs:
            raise ModelError(
                f"layer {type(self.module).__name__} was not called during the forward pass; choose a "
                "layer the model actually uses"
            )
        return self.outputs[-1]


# ------------------------------------------------------------------------------------------------------
# Guided backpropagation
# ------------------------------------------------------------------------------------------------------


class _GuidedClamp(torch.autograd.Function):
    """y = clamp(x, lo, hi) forward (in place when asked); guided backward: relu(grad) where lo < x < hi.

    ReLU is ``lo=0, hi=inf``, ReLU6 / hardtanh(0, 6) is ``lo=0, hi=6``.  For a plain ReLU this is the
    rule of Springenberg et al. (2015): keep only positive gradients, and only where the input was
    positive.  The mask is read from the output (lo < x < hi  <=>  lo < y < hi), so the input need not be
    kept and in-place rectifiers stay in place.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, lo: float, hi: float, inplace: bool = False) -> torch.Tensor:
        if inplace:
            ctx.mark_dirty(x)
            y = x.clamp_(min=lo, max=hi) if hi != float("inf") else x.clamp_(min=lo)
        else:
            y = x.clamp(min=lo, max=hi) if hi != float("inf") else x.clamp(min=lo)
        ctx.save_for_backward(y)
        ctx.lo, ctx.hi = lo, hi
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        (y,) = ctx.saved_tensors
        g = torch.ops.aten.threshold_backward(grad.clamp(min=0), y, ctx.lo)
        if ctx.hi != float("inf"):
            g = g.masked_fill(y >= ctx.hi, 0)
        return g, None, None, None


class _GuidedSmooth(torch.autograd.Function):
    """Generalised guided rule for a smooth activation f: grad_in = relu(grad_out) * relu(f'(x)).

    For ReLU (f' = 1[x > 0]) this is exactly Springenberg's rule; for SiLU/GELU it keeps only positive
    gradient signal through positive local slopes.  f' is computed by autograd on the original function.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.fn = fn
        with torch._C.DisableTorchFunction():
            return fn(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        (x,) = ctx.saved_tensors
        with torch.enable_grad():
            xx = x.detach().requires_grad_(True)
            (slope,) = torch.autograd.grad(ctx.fn(xx).sum(), xx)
        return grad.clamp(min=0) * slope.clamp(min=0), None


class _GuidedThreshold(torch.autograd.Function):
    """y = threshold(x, th, value) (x where x > th, else value); guided backward: relu(grad) where x > th.

    ``nn.Threshold(0, 0)`` is ReLU, and for any ``th``/``value`` the unit passes its input or a constant,
    so it is a rectifier and gets the rule of Springenberg et al. (2015) with its own gate."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, th: float, value: float) -> torch.Tensor:
        ctx.save_for_backward(x > th)
        with torch._C.DisableTorchFunction():
            return F.threshold(x, th, value)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        (gate,) = ctx.saved_tensors
        return grad.clamp(min=0) * gate, None, None


def _unwrap_input(args: tuple, kwargs: dict) -> torch.Tensor:
    if args:
        return args[0]
    return kwargs.get("input", kwargs.get("self"))


_RELU_FUNCS = {F.relu, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_, F.relu_}
_CLAMP6_FUNCS = {F.relu6}
_HARDTANH_FUNCS = {F.hardtanh, F.hardtanh_}
_SMOOTH_FUNCS: dict[Any, str] = {
    F.silu: "silu", F.gelu: "gelu", F.elu: "elu", F.selu: "selu", F.celu: "celu", F.mish: "mish",
    F.softplus: "softplus", F.hardswish: "hardswish", F.leaky_relu: "leaky_relu",
    F.logsigmoid: "logsigmoid", torch.nn.functional.tanhshrink: "tanhshrink",
}
_SMOOTH_FUNCS.update({torch.prelu: "prelu", F.rrelu: "rrelu", F.rrelu_: "rrelu"})
_SMOOTH_MODULE_WORDS = ("swish", "silu", "gelu", "mish", "elu", "softplus", "hardswish")
_THRESHOLD_FUNCS = {F.threshold, F.threshold_, torch.threshold, torch.threshold_}
#: clamp-like calls: a ReLU when the lower bound is 0 (``x.clamp(min=0)``, ``torch.clamp_min(x, 0)``)
_CLAMP_FUNCS = {torch.clamp, torch.clip, torch.Tensor.clamp, torch.Tensor.clip, torch.clamp_, torch.clip_,
                torch.Tensor.clamp_, torch.Tensor.clip_}
_CLAMP_MIN_FUNCS = {torch.clamp_min, torch.Tensor.clamp_min, torch.clamp_min_, torch.Tensor.clamp_min_}
_INPLACE_CLAMPS = {torch.clamp_, torch.clip_, torch.Tensor.clamp_, torch.Tensor.clip_, torch.clamp_min_,
                   torch.Tensor.clamp_min_}
_MAX_FUNCS = {torch.maximum, torch.Tensor.maximum, torch.max, torch.Tensor.max, torch.fmax, torch.Tensor.fmax}
_SIGMOID_FUNCS = {torch.sigmoid, torch.Tensor.sigmoid, F.sigmoid}
_MUL_FUNCS = {torch.mul, torch.Tensor.mul, torch.Tensor.__mul__, torch.Tensor.__rmul__, torch.multiply}
_POSITIVE_FUNCS = {torch.gt, torch.Tensor.gt, torch.Tensor.__gt__, torch.greater, torch.ge, torch.Tensor.ge,
                   torch.Tensor.__ge__}
_WHERE_FUNCS = {torch.where, torch.Tensor.where}


def _is_zero(v: Any) -> bool:
    """A scalar 0 or an all-zero tensor (a ReLU's other operand)."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v == 0
    if isinstance(v, torch.Tensor) and v.numel() and not v.requires_grad:
        with torch._C.DisableTorchFunction():
            return not bool(v.any())
    return False

GUIDED_POLICIES = ("raise", "warn", "guide")


class GuidedReLUMode(TorchFunctionMode):
    """Within this mode every rectifier call uses the guided backward rule.

    Catches nn.ReLU / nn.ReLU6 modules (they call ``F.relu`` / ``F.hardtanh``), functional ``F.relu``,
    ``torch.relu``, ``Tensor.relu`` and in-place variants, however they were imported.  Smooth
    activations are handled by ``policy``: ``"raise"`` (a ModelError naming them), ``"warn"`` (a
    warning, then the generalised rule of :class:`_GuidedSmooth`), ``"guide"`` (the generalised rule).
    """

    def __init__(self, policy: str = "raise"):
        super().__init__()
        if policy not in GUIDED_POLICIES:
            raise InputError(f"activations must be one of {GUIDED_POLICIES}, got {policy!r}")
        self.policy = policy
        self.smooth_seen: set[str] = set()
        self.rectifiers = 0
        # outputs of sigmoid(x) and of x > 0 seen in this call: id(output) -> (output, x), so that
        # x * sigmoid(x) (SiLU) and torch.where(x > 0, x, 0) (ReLU) are recognised when they are built
        self._sigmoid_of: dict[int, tuple[Any, Any]] = {}
        self._positive_of: dict[int, tuple[Any, Any]] = {}

    @staticmethod
    def _remember(table: dict, out: Any, x: Any) -> None:
        if isinstance(out, torch.Tensor) and isinstance(x, torch.Tensor):
            table[id(out)] = (weakref.ref(out), weakref.ref(x))

    @staticmethod
    def _source(table: dict, t: Any) -> Any:
        """The ``x`` that ``t`` was computed from (``t = sigmoid(x)`` / ``t = x > 0``), else ``None``."""
        if not isinstance(t, torch.Tensor) or id(t) not in table:
            return None
        out_ref, x_ref = table[id(t)]
        return x_ref() if out_ref() is t else None

    def _rectify(self, x: torch.Tensor, lo: float, hi: float, inplace: bool = False) -> torch.Tensor:
        self.rectifiers += 1
        return _GuidedClamp.apply(x, lo, hi, inplace)

    def _smooth(self, name: str, fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> Any:
        self.smooth_seen.add(name)
        if self.policy == "raise":
            raise ModelError(
                f"guided backpropagation is defined for rectifiers (ReLU), but the model uses {name}; "
                "pass activations='guide' to apply the generalised guided rule relu(grad) * relu(f'(x)) "
                "(documented in docs/explain.md), or activations='warn' to be told each time"
            )
        return _GuidedSmooth.apply(x, fn)

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func in _RELU_FUNCS:
            self.rectifiers += 1
            inplace = func in (torch.relu_, torch.Tensor.relu_, F.relu_) or bool(
                kwargs.get("inplace", args[1] if len(args) > 1 and isinstance(args[1], bool) else False))
            return _GuidedClamp.apply(_unwrap_input(args, kwargs), 0.0, float("inf"), inplace)
        if func in _CLAMP6_FUNCS:
            self.rectifiers += 1
            inplace = bool(kwargs.get("inplace", args[1] if len(args) > 1 else False))
            return _GuidedClamp.apply(_unwrap_input(args, kwargs), 0.0, 6.0, inplace)
        if func in _HARDTANH_FUNCS:
            x = _unwrap_input(args, kwargs)
            lo = args[1] if len(args) > 1 else kwargs.get("min_val", -1.0)
            hi = args[2] if len(args) > 2 else kwargs.get("max_val", 1.0)
            if float(lo) == 0.0:  # ReLU6 and relatives: a rectifier with a ceiling
                self.rectifiers += 1
                inplace = func is F.hardtanh_ or bool(kwargs.get("inplace", args[3] if len(args) > 3 else False))
                return _GuidedClamp.apply(x, float(lo), float(hi), inplace)
            return self._smooth("hardtanh", lambda t: F.hardtanh(t, lo, hi), x)
        if func in _THRESHOLD_FUNCS:
            x = _unwrap_input(args, kwargs)
            th = args[1] if len(args) > 1 else kwargs["threshold"]
            value = args[2] if len(args) > 2 else kwargs["value"]
            self.rectifiers += 1
            y = _GuidedThreshold.apply(x, float(th), float(value))
            inplace = func in (F.threshold_, torch.threshold_) or bool(
                kwargs.get("inplace", args[3] if len(args) > 3 else False))
            if inplace:
                with torch.no_grad():
                    x.copy_(y)  # an in-place caller may read x afterwards; the graph runs through y
            return y
        if func in _CLAMP_FUNCS or func in _CLAMP_MIN_FUNCS:
            x = _unwrap_input(args, kwargs)
            if func in _CLAMP_MIN_FUNCS:
                lo, hi = (args[1] if len(args) > 1 else kwargs.get("min")), None
            else:
                lo = args[1] if len(args) > 1 else kwargs.get("min")
                hi = args[2] if len(args) > 2 else kwargs.get("max")
            if (isinstance(x, torch.Tensor) and x.requires_grad and isinstance(lo, (int, float))
                    and not isinstance(lo, bool) and lo == 0 and (hi is None or isinstance(hi, (int, float)))):
                return self._rectify(x, 0.0, float("inf") if hi is None else float(hi), func in _INPLACE_CLAMPS)
            return func(*args, **kwargs)
        if func in _MAX_FUNCS and len(args) + len(kwargs) == 2:
            a = args[0] if args else kwargs.get("input")
            b = args[1] if len(args) > 1 else kwargs.get("other")
            for x, other in ((a, b), (b, a)):
                if (isinstance(x, torch.Tensor) and isinstance(other, torch.Tensor) and x.requires_grad
                        and x.is_floating_point() and _is_zero(other)):
                    y = self._rectify(x, 0.0, float("inf"))
                    shape = torch.broadcast_shapes(x.shape, other.shape)
                    return y if tuple(shape) == tuple(x.shape) else y.expand(shape)
            return func(*args, **kwargs)
        if func in _SIGMOID_FUNCS:
            out = func(*args, **kwargs)
            self._remember(self._sigmoid_of, out, _unwrap_input(args, kwargs))
            return out
        if func in _POSITIVE_FUNCS and len(args) == 2 and _is_zero(args[1]):
            out = func(*args, **kwargs)
            self._remember(self._positive_of, out, args[0])
            return out
        if func in _MUL_FUNCS and len(args) == 2:
            a, b = args
            for x, gate in ((a, b), (b, a)):
                if isinstance(x, torch.Tensor) and self._source(self._sigmoid_of, gate) is x:
                    return self._smooth("silu (x * sigmoid(x))", F.silu, x)
            return func(*args, **kwargs)
        if func in _WHERE_FUNCS and len(args) == 3:
            cond, a, b = args
            if isinstance(a, torch.Tensor) and self._source(self._positive_of, cond) is a and _is_zero(b):
                return self._rectify(a, 0.0, float("inf"))
            return func(*args, **kwargs)
        if func in _SMOOTH_FUNCS:
            x = _unwrap_input(args, kwargs)
            rest = dict(kwargs)
            rest.pop("input", None)
            rest.pop("inplace", None)
            extra = tuple(a for a in args[1:] if not isinstance(a, bool))
            return self._smooth(_SMOOTH_FUNCS[func], lambda t: func(t, *extra, **rest), x)
        return func(*args, **kwargs)


@contextlib.contextmanager
def guided_modules(model: nn.Module, mode: GuidedReLUMode) -> Iterator[None]:
    """Cover custom smooth-activation modules that bypass torch functions (e.g. a memory-efficient Swish
    written as an autograd.Function): by name, for one call, via forward hooks removed on exit."""
    handles = []
    try:
        for name, m in model.named_modules():
            cls = type(m)
            if cls.__module__.startswith("torch.nn"):
                continue  # built-in activations call torch functions, which the mode sees
            lname = cls.__name__.lower()
            if any(w in lname for w in _SMOOTH_MODULE_WORDS) and not list(m.children()):
                def hook(mod: nn.Module, inputs: Any, output: Any, _n: str = f"{cls.__name__} ({name})") -> Any:
                    x = inputs[0]
                    return mode._smooth(_n, lambda t: mod.forward(t), x)

                handles.append(m.register_forward_hook(hook))
        yield
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def guided(model: nn.Module, policy: str) -> Iterator[GuidedReLUMode]:
    mode = GuidedReLUMode(policy)
    with guided_modules(model, mode), mode:
        yield mode
    if mode.policy == "warn" and mode.smooth_seen:
        warnings.warn(
            "guided backpropagation: the model uses non-rectifier activations "
            f"({', '.join(sorted(mode.smooth_seen))}); the generalised guided rule relu(grad) * relu(f'(x)) "
            "was applied to them",
            stacklevel=4,
        )
