"""More of the CAM family on the same pipeline as :mod:`salience.attribution.cam`: each variant is its
channel-weighting (or projection) rule and nothing else.

The pipeline is the one of :func:`salience.attribution.cam.gradcam`: forward with the target layer
captured (activations ``A``, ``(B, C, h, w)``), gradients ``G`` of the target scores at that layer only
when the rule needs them, the rule's low-resolution map, ReLU, bilinear upsampling to the input size and
per-image min-max normalisation to ``[0, 1]``.

Rules (sums over channels ``c`` and positions ``xy``):

* EigenCAM (Muhammad & Yeasin 2020), gradient-free: the projection of the activations, one row per
  position ``X = A.reshape(C, hw).T``, on their first principal direction ``v`` (first right singular
  vector): ``X v``.  ``center=True`` (the default, as pytorch-grad-cam) centres each channel over the
  positions before the SVD; ``center=False`` is the paper's plain SVD of ``X``.
* Eigen-Grad-CAM: the same projection of ``G * A`` (elementwise) instead of ``A``.
* XGrad-CAM (Fu et al. 2020): ``w_c = sum_xy (A_cxy / sum_xy A_c) G_cxy``, map ``sum_c w_c A_c``
  (a channel whose activations sum to exactly 0 gets weight 0).
* Ablation-CAM (Desai & Ramaswamy 2020), gradient-free: ``w_c = (y - y_c) / y`` with ``y`` the target
  score and ``y_c`` the score when channel ``c`` of the layer's output is set to 0 (one forward pass per
  channel, ``batch_size`` channels per pass; when ``y`` is exactly 0 the drop ``y - y_c`` is used).

SVD sign: a singular vector is defined up to its sign.  Salience orients ``v`` so that the projection is
positively correlated with the channel sum of the (centred) input, i.e. ``sum_c v_c >= 0``: the map
points towards "more activation".

>>> import torch
>>> from salience.attribution.cam_variants import eigencam
>>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))
>>> e = eigencam(net, torch.rand(2, 3, 16, 16), layer="1")
>>> tuple(e.maps.shape), float(e.maps.max())
((2, 16, 16), 1.0)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..errors import ZeroGradientError
from ._base import (
    Explanation,
    Target,
    check_images,
    check_positive_int,
    check_unknown,
    finish,
    layer_for,
    layer_forward,
    normalize_maps,
    select_scores,
    spatial_grid,
    to_grid,
    unwrap_model,
    upsample,
)
from ._hooks import scoped_model

__all__ = ["ablationcam", "eigen_gradcam", "eigencam", "principal_projection", "xgradcam"]


# ------------------------------------------------------------------------------------------------------
# Rules
# ------------------------------------------------------------------------------------------------------


def principal_projection(t: torch.Tensor, center: bool = True) -> torch.Tensor:
    """Projection of ``(B, C, h, w)`` maps on their first principal direction over channels: ``(B, h, w)``.

    Each image's positions are the rows of ``X`` (``h*w`` by ``C``), centred per channel when ``center``;
    the result is ``X v`` with ``v`` the first right singular vector of ``X``, signed so that
    ``sum_c v_c >= 0``.  Computed in float64.

    >>> import torch
    >>> u = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> a = torch.stack([u, 2 * u])[None]           # two channels, the same pattern
    >>> p = principal_projection(a)[0]
    >>> [round(v, 4) for v in (p / 5 ** 0.5).flatten().tolist()]
    [-1.5, -0.5, 0.5, 1.5]
    """
    b, c, h, w = t.shape
    x = t.detach().double().reshape(b, c, h * w).transpose(1, 2)
    if center:
        x = x - x.mean(dim=1, keepdim=True)
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    v = vh[:, 0, :]
    sign = torch.where(v.sum(dim=1) < 0, -1.0, 1.0).to(v.dtype)
    p = (x @ (v * sign[:, None])[:, :, None])[:, :, 0]
    return p.reshape(b, h, w)


def _xgradcam_rule(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    s = a.sum(dim=(2, 3), keepdim=True)
    safe = torch.where(s != 0, s, torch.ones_like(s))
    w = torch.where(s != 0, (a * g).sum(dim=(2, 3), keepdim=True) / safe, torch.zeros_like(s))
    return (w * a).sum(dim=1)


# ------------------------------------------------------------------------------------------------------
# Pipeline
# ------------------------------------------------------------------------------------------------------


def _variant(method: str, model: Any, images: Any, target: Any, layer: Any, reshape: Callable | None,
             rule: Callable[..., torch.Tensor], *, gradients: bool) -> Explanation:
    """The CAM pipeline with ``rule(a, g, ctx)`` giving the un-rectified low-resolution map."""
    net = unwrap_model(model)
    x = check_images(images, net)
    tgt = Target.parse(target, x.shape[0])
    hw = (x.shape[2], x.shape[3])
    with scoped_model(net):
        name, module = layer_for(net, x, layer, reshape)
        calls = [0]
        counter = module.register_forward_hook(lambda m, i, o: calls.__setitem__(0, calls[0] + 1))
        try:
            act, grad, scores, idx, _ = layer_forward(net, x, tgt, module, need_grad=gradients)
        finally:
            counter.remove()
        a = spatial_grid(act, hw, reshape, name)
        g = None
        if gradients:
            assert grad is not None
            g = spatial_grid(grad, hw, reshape, name).float()
            if not bool((g != 0).any()):
                raise ZeroGradientError(
                    f"all gradients at layer {name!r} are exactly zero for the chosen target(s), so the map "
                    "would be blank; load trained weights or choose another layer"
                )
        ctx = {"net": net, "x": x, "target": tgt, "idx": idx, "scores": scores, "module": module,
               "raw": act, "hw": hw, "reshape": reshape, "calls": calls[0]}
        low = rule(a.float(), g, ctx)
    cam = torch.relu(low.float())
    maps = normalize_maps(upsample(cam, hw))
    return Explanation(finish(maps), idx, scores.float(), method, name, {"cam": cam})


def _ablation_weights(a: torch.Tensor, ctx: dict, batch_size: int) -> torch.Tensor:
    """``(B, C)`` relative score drops ``(y - y_c) / y`` when channel ``c`` of the layer is zeroed."""
    net, x, raw, module = ctx["net"], ctx["x"], ctx["raw"], ctx["module"]
    reshape, hw, n_calls = ctx["reshape"], ctx["hw"], ctx["calls"]
    b, c = a.shape[:2]
    # where each grid element lives in the raw output (tokens, channels-last): the same reshape applied
    # to the raw positions' indices
    pos = torch.arange(raw[0].numel(), device=raw.device).reshape(1, *raw.shape[1:])
    where = reshape(pos) if reshape is not None else to_grid(pos, hw)
    assert where is not None  # the same reshape already gave the map's grid
    where = where.reshape(c, -1)
    y = ctx["scores"].double()
    out = torch.empty(b, c, dtype=torch.float64, device=y.device)
    for i in range(b):
        base = raw[i].reshape(-1)
        for start in range(0, c, batch_size):
            chans = range(start, min(c, start + batch_size))
            k = len(chans)
            ablated = base.repeat(k, 1)
            for j, ch in enumerate(chans):
                ablated[j, where[ch]] = 0
            ablated = ablated.reshape(k, *raw.shape[1:])
            seen = [0]

            def swap(mod: Any, inp: Any, output: Any, _abl: torch.Tensor = ablated, seen: list = seen) -> Any:
                seen[0] += 1
                if seen[0] != n_calls:
                    return None
                if isinstance(output, (tuple, list)):
                    return type(output)([_abl.to(output[0].dtype), *output[1:]])
                return _abl.to(output.dtype)

            handle = module.register_forward_hook(swap)
            try:
                with torch.no_grad():
                    o = net(x[i:i + 1].expand(k, *x.shape[1:]))
            finally:
                handle.remove()
            t = ctx["target"]
            if ctx["idx"] is not None:
                t = Target("index", indices=ctx["idx"][i:i + 1].expand(k).cpu())
            s, _ = select_scores(o, t, k)
            out[i, start:start + k] = s.double()
    denom = torch.where(y != 0, y, torch.ones_like(y))
    return ((y[:, None] - out) / denom[:, None]).float()


# ------------------------------------------------------------------------------------------------------
# Methods
# ------------------------------------------------------------------------------------------------------


def eigencam(model: Any, images: Any, target: Any = None, layer: Any = None, *,
             reshape: Callable | None = None, center: bool = True, **params: Any) -> Explanation:
    """EigenCAM (Muhammad & Yeasin, IJCNN 2020): the layer's activations projected on their first
    principal component; gradient-free, so the map does not depend on the target class.

    Parameters
    ----------
    model, images, target, layer, reshape: as :func:`salience.attribution.gradcam` (``target`` only picks
        the reported ``targets`` / ``scores``).
    center: centre each channel over the positions before the SVD (pytorch-grad-cam's choice, the
        default); ``False`` is the paper's uncentred SVD.

    Returns
    -------
    Explanation: ``maps`` float32 ``(B, H, W)`` in ``[0, 1]``; ``extras["cam"]`` the rectified
    low-resolution projection.

    Examples
    --------
    >>> import torch
    >>> from salience.attribution import eigencam
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> e = eigencam(net, torch.rand(2, 3, 16, 16), target=[0, 2])
    >>> tuple(e.maps.shape), e.layer, bool(e.maps.min() >= 0 and e.maps.max() <= 1)
    ((2, 16, 16), '1', True)
    """
    check_unknown("eigencam", params)
    return _variant("eigencam", model, images, target, layer, reshape,
                    lambda a, g, ctx: principal_projection(a, bool(center)), gradients=False)


def eigen_gradcam(model: Any, images: Any, target: Any = None, layer: Any = None, *,
                  reshape: Callable | None = None, center: bool = True, **params: Any) -> Explanation:
    """Eigen-Grad-CAM (pytorch-grad-cam's variant of Muhammad & Yeasin 2020): the first principal
    component projection of gradient x activation (elementwise), so it is class-specific.
    Same arguments and output as :func:`eigencam`.

    Examples
    --------
    >>> import torch
    >>> from salience.attribution import eigen_gradcam
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> e = eigen_gradcam(net, torch.rand(2, 3, 16, 16), target=[0, 2])
    >>> tuple(e.maps.shape), e.layer, bool(e.maps.min() >= 0 and e.maps.max() <= 1)
    ((2, 16, 16), '1', True)
    """
    check_unknown("eigen-gradcam", params)
    return _variant("eigen-gradcam", model, images, target, layer, reshape,
                    lambda a, g, ctx: principal_projection(g * a, bool(center)), gradients=True)


def xgradcam(model: Any, images: Any, target: Any = None, layer: Any = None, *,
             reshape: Callable | None = None, **params: Any) -> Explanation:
    """XGrad-CAM (Fu et al., BMVC 2020): channel weights ``sum_xy (A_cxy / sum_xy A_c) G_cxy``, the
    weights that satisfy the paper's sensitivity and conservation axioms.
    Same arguments and output as :func:`salience.attribution.gradcam`.

    Examples
    --------
    >>> import torch
    >>> from salience.attribution import xgradcam
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> e = xgradcam(net, torch.rand(2, 3, 16, 16), target=[0, 2])
    >>> tuple(e.maps.shape), e.layer, bool(e.maps.min() >= 0 and e.maps.max() <= 1)
    ((2, 16, 16), '1', True)
    """
    check_unknown("xgradcam", params)
    return _variant("xgradcam", model, images, target, layer, reshape,
                    lambda a, g, ctx: _xgradcam_rule(a, g), gradients=True)


def ablationcam(model: Any, images: Any, target: Any = None, layer: Any = None, *,
                reshape: Callable | None = None, batch_size: int = 32, **params: Any) -> Explanation:
    """Ablation-CAM (Desai & Ramaswamy, WACV 2020): channel weights ``(y - y_c) / y``, the relative drop
    of the target score when channel ``c`` of the layer is set to zero; gradient-free.

    Parameters
    ----------
    model, images, target, layer, reshape: as :func:`salience.attribution.gradcam`.
    batch_size: channels ablated per forward pass (``B * C`` extra forward passes in all).

    Returns
    -------
    Explanation: ``maps`` float32 ``(B, H, W)`` in ``[0, 1]``; ``extras["cam"]`` the rectified
    low-resolution map.

    Examples
    --------
    >>> import torch
    >>> from salience.attribution import ablationcam
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> e = ablationcam(net, torch.rand(2, 3, 16, 16), target=[0, 2])
    >>> tuple(e.maps.shape), e.layer, bool(e.maps.min() >= 0 and e.maps.max() <= 1)
    ((2, 16, 16), '1', True)
    """
    check_unknown("ablationcam", params)
    bs = check_positive_int("batch_size", batch_size)

    def rule(a: torch.Tensor, g: Any, ctx: dict) -> torch.Tensor:
        w = _ablation_weights(a, ctx, bs)
        return (w[:, :, None, None] * a).sum(dim=1)

    return _variant("ablationcam", model, images, target, layer, reshape, rule, gradients=False)
