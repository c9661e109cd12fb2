"""Modified backward rules at the rectifiers, on the same scoped override mechanism as guided
backpropagation (a :class:`torch.overrides.TorchFunctionMode` active for one call only, so ``nn.ReLU``
modules and functional ``F.relu`` / ``torch.relu`` / ``Tensor.relu`` calls are all covered and nothing
stays changed after the call, also when it raised).

* Deconvnet (Zeiler & Fergus, ECCV 2014): every rectifier passes back ``relu(grad_out)``, whatever the
  sign of its forward input (the deconvnet "unpooling and rectification" reconstruction; max-pooling
  switches are the ordinary max-pool gradient).  ReLU6 / ``hardtanh(0, hi)`` get the same rule (their
  ceiling is ignored, as the lower threshold is).  Smooth activations (SiLU, GELU, ...) have no
  deconvnet rule: a :class:`~salience.errors.ModelError` names them.

>>> import torch
>>> from salience.attribution.propagation import deconvnet
>>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))
>>> e = deconvnet(net, torch.rand(2, 3, 8, 8), target=0)
>>> tuple(e.maps.shape), tuple(e.attributions.shape)
((2, 8, 8), (2, 3, 8, 8))
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from ..errors import InputError, ModelError
from ._base import (
    Explanation,
    Target,
    check_images,
    check_unknown,
    finish,
    normalize_maps,
    raise_if_insensitive,
    select_scores,
    unwrap_model,
)
from ._hooks import CLAMP6_FUNCS, HARDTANH_FUNCS, RELU_FUNCS, SMOOTH_FUNCS, scoped_model

__all__ = ["DeconvMode", "RescaleMode", "deconvnet", "deeplift"]

class _DeconvClamp(torch.autograd.Function):
    """y = clamp(x, lo, hi) forward (in place when asked); backward relu(grad_out), no mask."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, lo: float, hi: float, inplace: bool = False) -> torch.Tensor:
        if inplace:
            ctx.mark_dirty(x)
            return x.clamp_(min=lo, max=hi) if hi != float("inf") else x.clamp_(min=lo)
        return x.clamp(min=lo, max=hi) if hi != float("inf") else x.clamp(min=lo)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        return grad.clamp(min=0), None, None, None


def _first(args: tuple, kwargs: dict) -> Any:
    return args[0] if args else kwargs.get("input", kwargs.get("self"))


class DeconvMode(TorchFunctionMode):
    """Within this mode every rectifier uses the deconvnet backward rule ``relu(grad_out)``."""

    def __init__(self) -> None:
        super().__init__()
        self.rectifiers = 0

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func in RELU_FUNCS:
            self.rectifiers += 1
            inplace = func in (torch.relu_, torch.Tensor.relu_, F.relu_) or bool(
                kwargs.get("inplace", args[1] if len(args) > 1 and isinstance(args[1], bool) else False))
            return _DeconvClamp.apply(_first(args, kwargs), 0.0, float("inf"), inplace)
        if func in CLAMP6_FUNCS:
            self.rectifiers += 1
            inplace = bool(kwargs.get("inplace", args[1] if len(args) > 1 else False))
            return _DeconvClamp.apply(_first(args, kwargs), 0.0, 6.0, inplace)
        if func in HARDTANH_FUNCS:
            lo = args[1] if len(args) > 1 else kwargs.get("min_val", -1.0)
            hi = args[2] if len(args) > 2 else kwargs.get("max_val", 1.0)
            if float(lo) == 0.0:
                self.rectifiers += 1
                inplace = func is F.hardtanh_ or bool(kwargs.get("inplace", args[3] if len(args) > 3 else False))
                return _DeconvClamp.apply(_first(args, kwargs), 0.0, float(hi), inplace)
            raise ModelError("deconvnet is defined for rectifiers (ReLU); the model uses hardtanh")
        if func in SMOOTH_FUNCS:
            raise ModelError(
                f"deconvnet is defined for rectifiers (ReLU), but the model uses {SMOOTH_FUNCS[func]}; "
                "use guided-backprop with activations='guide', or a gradient method"
            )
        return func(*args, **kwargs)


def deconvnet(model: Any, images: Any, target: Any = None, layer: Any = None, **params: Any) -> Explanation:
    """Deconvnet (Zeiler & Fergus, ECCV 2014): the gradient with every rectifier's backward replaced by
    ``relu(grad_out)``.

    Parameters
    ----------
    model, images, target: as :func:`salience.attribution.gradient`; ``layer`` must be ``None``.

    Returns
    -------
    Explanation: ``maps`` ``max_c |a_c|`` divided by its maximum, float32 ``(B, H, W)`` in ``[0, 1]``;
    ``extras["attributions"]`` the signed ``(B, C, H, W)`` reconstruction.

    Raises
    ------
    ModelError when the model uses a smooth activation (no deconvnet rule) or has no rectifier.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
    ...                           torch.nn.Linear(4 * 8 * 8, 3))
    >>> e = deconvnet(net, torch.rand(1, 3, 8, 8), target=1)
    >>> tuple(e.maps.shape), bool(e.maps.max() == 1)
    ((1, 8, 8), True)
    """
    check_unknown("deconvnet", params)
    if layer is not None:
        raise InputError("method 'deconvnet' explains input pixels and takes no layer; pass layer=None")
    net = unwrap_model(model)
    x = check_images(images, net)
    tgt = Target.parse(target, x.shape[0])
    with scoped_model(net, no_inplace="auto"):
        xs = x.detach().requires_grad_(True)
        mode = DeconvMode()
        with torch.enable_grad():
            with mode:
                out = net(xs)
            scores, idx = select_scores(out, tgt, x.shape[0])
            (g,) = torch.autograd.grad(scores.sum(), xs)
    if mode.rectifiers == 0:
        raise ModelError("deconvnet changes the backward pass of rectifiers (ReLU), and this model has "
                         "none: the result would be the plain gradient; use method 'gradient'")
    raise_if_insensitive(g.reshape(g.shape[0], -1), "deconvnet", "deconvnet signal at the input")
    maps = normalize_maps(g.abs().amax(dim=1), "max")
    return Explanation(finish(maps), idx, scores.detach().float(), "deconvnet", None,
                       {"attributions": g.detach()})


# ------------------------------------------------------------------------------------------------------
# DeepLIFT, rescale rule
# ------------------------------------------------------------------------------------------------------


class _Rescale(torch.autograd.Function):
    """An elementwise nonlinearity on ``cat([x, x0])``; backward: the rescale multiplier
    ``(f(x) - f(x0)) / (x - x0)`` for the first half (the ordinary gradient where ``|x - x0| < 1e-10``),
    zero for the reference half (only the first half's scores are explained)."""

    @staticmethod
    def forward(ctx: Any, t: torch.Tensor, fn: Any, window: tuple[float, float] | None) -> torch.Tensor:
        with torch._C.DisableTorchFunction():
            y = fn(t)
        ctx.save_for_backward(t, y)
        ctx.fn = fn
        ctx.window = window
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        t, y = ctx.saved_tensors
        b = t.shape[0] // 2
        x = t[:b]
        dx, dy = x - t[b:], y[:b] - y[b:]
        if ctx.window is not None:  # a rectifier: its slope is 1 strictly inside (lo, hi), 0 elsewhere (torch's)
            lo, hi = ctx.window
            inside = x > lo
            if hi != math.inf:
                inside &= x < hi
            slope = inside.to(x.dtype)
        else:
            with torch.enable_grad():
                tt = x.detach().requires_grad_(True)
                (slope,) = torch.autograd.grad(ctx.fn(tt).sum(), tt)
        small = dx.abs() < 1e-10
        m = torch.where(small, slope, dy / torch.where(small, 1.0, dx))
        out = torch.zeros_like(grad)
        torch.mul(grad[:b], m, out=out[:b])
        return out, None, None


def _call_rest(func: Any, extra: tuple, rest: dict, t: torch.Tensor) -> torch.Tensor:
    return func(t, *extra, **rest)


class RescaleMode(TorchFunctionMode):
    """Within this mode rectifiers and smooth elementwise activations use the rescale rule on a batch
    that is ``cat([inputs, references])``."""

    def __init__(self) -> None:
        super().__init__()
        self.nonlinear = 0

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        fn: Any = None
        window: tuple[float, float] | None = None  # a rectifier's linear range, where its slope is 1
        if func in RELU_FUNCS:
            fn, window = torch.relu, (0.0, math.inf)
        elif func in CLAMP6_FUNCS:
            fn, window = F.relu6, (0.0, 6.0)
        elif func in HARDTANH_FUNCS:
            lo = args[1] if len(args) > 1 else kwargs.get("min_val", -1.0)
            hi = args[2] if len(args) > 2 else kwargs.get("max_val", 1.0)
            fn = functools.partial(F.hardtanh, min_val=float(lo), max_val=float(hi))
            window = (float(lo), float(hi))
        elif func in SMOOTH_FUNCS:
            rest = {k: v for k, v in kwargs.items() if k not in ("input", "inplace")}
            extra = tuple(a for a in args[1:] if not isinstance(a, bool))
            fn = functools.partial(_call_rest, func, extra, rest)
        if fn is None:
            return func(*args, **kwargs)
        self.nonlinear += 1
        x = _first(args, kwargs)
        inplace = func in (torch.relu_, torch.Tensor.relu_, F.relu_, F.hardtanh_) or kwargs.get("inplace") is True \
            or (len(args) > 1 and args[-1] is True)
        if inplace:  # keep the call's in-place meaning: the result is written back into its input
            with torch._C.DisableTorchFunction():
                return x.copy_(_Rescale.apply(x.clone(), fn, window))
        return _Rescale.apply(x, fn, window)


def _reference(x: torch.Tensor, baseline: Any) -> torch.Tensor:
    if baseline is None or (isinstance(baseline, str) and baseline == "zeros"):
        return torch.zeros_like(x)
    if isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
        return torch.full_like(x, float(baseline))
    if isinstance(baseline, torch.Tensor):
        try:
            ref = torch.broadcast_to(baseline.to(x.device, x.dtype), x.shape)
        except RuntimeError:
            raise InputError(f"baseline of shape {tuple(baseline.shape)} does not broadcast to the images' "
                             f"shape {tuple(x.shape)}") from None
        if not bool(torch.isfinite(ref).all()):
            raise InputError("baseline contains NaN or infinite values")
        return ref.detach()
    raise InputError(f"baseline must be 'zeros', a number or a tensor broadcastable to the images, got "
                     f"{baseline!r}")


def deeplift(model: Any, images: Any, target: Any = None, layer: Any = None, *, baseline: Any = "zeros",
             **params: Any) -> Explanation:
    """DeepLIFT with the rescale rule (Shrikumar, Greenside & Kundaje, ICML 2017).

    One forward pass on ``cat([x, x0])`` (``x0`` the reference); every rectifier and smooth elementwise
    activation back-propagates the multiplier ``(f(x) - f(x0)) / (x - x0)`` (the gradient where the two
    are within 1e-10), linear layers their ordinary gradient; the attribution is ``(x - x0)`` times the
    resulting multipliers.  For networks of linear layers and such activations it sums exactly to
    ``s(x) - s(x0)`` (summation-to-delta; ``extras["delta"]`` is the error).  Max-pooling, attention and
    other non-elementwise operations use their ordinary gradient.

    Parameters
    ----------
    model, images, target: as :func:`salience.attribution.gradient`; ``layer`` must be ``None``.
    baseline: the reference ``x0``: ``"zeros"`` (default), a number, or a tensor broadcastable to the
        images.

    Returns
    -------
    Explanation: ``maps`` the channel sum of the attributions, float32 ``(B, H, W)``, signed, score
    units; ``extras["attributions"]`` ``(B, C, H, W)``; ``extras["delta"]`` ``(B,)``
    ``sum(attributions) - (s(x) - s(x0))``.

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
    ...                           torch.nn.Linear(4 * 6 * 6, 2))
    >>> e = deeplift(net, torch.rand(2, 3, 8, 8), target=1)
    >>> bool(e.delta.abs().max() < 1e-4)
    True
    """
    check_unknown("deeplift", params)
    if layer is not None:
        raise InputError("method 'deeplift' explains input pixels and takes no layer; pass layer=None")
    net = unwrap_model(model)
    x = check_images(images, net)
    x0 = _reference(x, baseline)
    tgt = Target.parse(target, x.shape[0])
    b = x.shape[0]
    with scoped_model(net):
        xs = torch.cat([x, x0]).detach().requires_grad_(True)
        mode = RescaleMode()
        with torch.enable_grad():
            with mode:
                out = net(xs)
            if not isinstance(out, torch.Tensor) or out.shape[0] != 2 * b:
                raise ModelError("deeplift runs the images and their references as one batch and needs a "
                                 "model that returns one tensor row per image")
            scores, idx = select_scores(out[:b], tgt, b)
            ref_tgt = tgt if idx is None else Target("index", indices=idx.cpu())
            ref_scores, _ = select_scores(out[b:], ref_tgt, b)
            (g,) = torch.autograd.grad(scores.sum(), xs)
    raise_if_insensitive(g[:b].reshape(b, -1), "deeplift", "multiplier of the input")
    attr = ((x - x0) * g[:b]).detach()
    delta = attr.reshape(b, -1).sum(dim=1).double() - (scores.detach().double() - ref_scores.detach().double())
    return Explanation(finish(attr.sum(dim=1)), idx, scores.detach().float(), "deeplift", None,
                       {"attributions": attr, "delta": delta.float()})
