"""FullGrad (Srinivas & Fleuret, NeurIPS 2019): the input-gradient term plus every bias-gradient term.

For a network with biases the *full-gradient* decomposition is ``f(x) = grad_x f . x + sum_b grad_b f . b``
(exact for piecewise-linear networks).  The saliency map aggregates the spatial terms:

``S(x) = up(psi(grad_x f * x)) + sum_l sum_c up(psi(grad_{b_l} f * b_l)_c)``

with ``psi`` the absolute value followed by a min-max rescaling, ``up`` bilinear upsampling to the input
size, and ``l`` every call of a 2-D convolution or batch-norm layer that has a bias.  The gradient with
respect to a layer's bias at each position is the gradient with respect to its output there; a batch
norm in eval mode has the effective bias ``beta - mu * gamma / sqrt(var + eps)``.  The sum is min-max
normalised to ``[0, 1]`` per image.

``scaling`` says what ``psi`` rescales: ``"tensor"`` (default, the authors' code) rescales each term over
all its channels at once; ``"channel"`` rescales every channel of every term separately
(pytorch-grad-cam's ``FullGrad``).

>>> import torch
>>> from salience.attribution.fullgrad import fullgrad
>>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4),
...                           torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
...                           torch.nn.Linear(4, 2))
>>> e = fullgrad(net, torch.rand(2, 3, 16, 16), target=1)
>>> tuple(e.maps.shape), e.extras["terms"]
((2, 16, 16), 2)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

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
    upsample,
)
from ._hooks import scoped_model

__all__ = ["bias_layers", "fullgrad"]

SCALINGS = ("tensor", "channel")


def _effective_bias(m: nn.Module) -> torch.Tensor | None:
    """The per-channel bias a conv / batch-norm adds (eval-mode batch norm folded), or ``None``."""
    if isinstance(m, nn.BatchNorm2d):
        if m.bias is None:
            return None
        if m.running_mean is None or m.running_var is None:
            return m.bias.detach()
        gamma = m.weight.detach() if m.weight is not None else torch.ones_like(m.running_mean)
        return m.bias.detach() - m.running_mean * gamma / torch.sqrt(m.running_var + m.eps)
    if isinstance(m, nn.Conv2d) and m.bias is not None:
        return m.bias.detach()
    return None


def bias_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every ``Conv2d`` / ``BatchNorm2d`` with a bias: the layers FullGrad reads."""
    return [(n, m) for n, m in model.named_modules() if _effective_bias(m) is not None]


def _rescale(t: torch.Tensor, per_channel: bool) -> torch.Tensor:
    """``|t|`` min-max rescaled to ``[0, 1]`` over each image's ``(C, h, w)`` or each channel's ``(h, w)``."""
    t = t.abs()
    b, c, h, w = t.shape
    if per_channel:
        return normalize_maps(t.reshape(b * c, h, w)).reshape(b, c, h, w).double()
    return normalize_maps(t.reshape(b, c * h, w)).reshape(b, c, h, w).double()


def fullgrad(model: Any, images: Any, target: Any = None, layer: Any = None, *,
             scaling: str = "tensor", **params: Any) -> Explanation:
    """FullGrad (Srinivas & Fleuret, NeurIPS 2019): rescaled |input x gradient| plus the rescaled
    |bias x bias-gradient| of every convolution and batch-norm layer, upsampled and summed.

    Parameters
    ----------
    model, images, target: as :func:`salience.attribution.gradcam`.
    layer: must be ``None``: FullGrad reads every conv / batch-norm layer with a bias.
    scaling: ``"tensor"`` (each term rescaled over all its channels, the authors' code) or
        ``"channel"`` (each channel rescaled separately, as pytorch-grad-cam).

    Returns
    -------
    Explanation: ``maps`` float32 ``(B, H, W)`` in ``[0, 1]``; ``extras["attributions"]`` the input
    gradient times input ``(B, C, H, W)``; ``extras["terms"]`` the number of bias terms summed.

    Raises
    ------
    InputError for a ``layer`` or an unknown ``scaling``; ModelError when the model has no conv or
    batch-norm bias (FullGrad would be input x gradient alone).

    Examples
    --------
    >>> import torch
    >>> from salience.attribution import fullgrad
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> e = fullgrad(net, torch.rand(2, 3, 16, 16), target=1)
    >>> tuple(e.maps.shape), e.targets.tolist()
    ((2, 16, 16), [1, 1])
    """
    check_unknown("fullgrad", params)
    if layer is not None:
        raise InputError("fullgrad reads every convolution and batch-norm bias; it takes no layer= "
                         "(leave it None)")
    if scaling not in SCALINGS:
        raise InputError(f"scaling must be one of {SCALINGS}, got {scaling!r}")
    net = unwrap_model(model)
    x = check_images(images, net)
    tgt = Target.parse(target, x.shape[0])
    hw = (x.shape[2], x.shape[3])
    with scoped_model(net):
        layers = bias_layers(net)
        if not layers:
            raise ModelError("fullgrad needs convolution or batch-norm layers with a bias; this model has "
                             "none (use input-x-gradient, which is FullGrad's input term)")
        outs: list[tuple[torch.Tensor, torch.Tensor]] = []
        handles = []

        def make_hook(m: nn.Module) -> Any:
            def hook(mod: nn.Module, inputs: Any, out: Any) -> None:
                if isinstance(out, torch.Tensor) and out.ndim == 4 and out.requires_grad:
                    bias = _effective_bias(mod)
                    assert bias is not None
                    outs.append((out, bias))
            return hook

        try:
            for _, m in layers:
                handles.append(m.register_forward_hook(make_hook(m)))
            xg = x.clone().requires_grad_(True)
            with torch.enable_grad():
                out = net(xg)
                scores, idx = select_scores(out, tgt, x.shape[0])
                grads = torch.autograd.grad(scores.sum(), [xg, *(o for o, _ in outs)], allow_unused=True)
        finally:
            for h in handles:
                h.remove()
    per_channel = scaling == "channel"
    gx = grads[0] if grads[0] is not None else torch.zeros_like(x)
    raise_if_insensitive(gx.reshape(gx.shape[0], -1), "fullgrad", "gradient with respect to the input")
    attr = (gx * x).detach()
    total = _rescale(attr, per_channel).sum(dim=1)
    terms = 0
    for (_, bias), g in zip(outs, grads[1:]):
        if g is None:
            continue
        term = _rescale(g.detach() * bias.to(g.dtype)[None, :, None, None], per_channel).sum(dim=1)
        total = total + upsample(term, hw)
        terms += 1
    maps = normalize_maps(total)
    return Explanation(finish(maps), idx, scores.detach().float(), "fullgrad", None,
                       {"attributions": attr, "terms": terms})
