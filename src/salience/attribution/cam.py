"""The Grad-CAM family: one shared pipeline, one channel-weighting rule per method.

The pipeline (:func:`_cam`) runs the forward pass with the target layer captured, back-propagates the
target scores *to that layer only* (parameters frozen, the graph starts at the layer), turns the layer's
activations ``A`` and gradients ``G`` (both ``(B, C, h, w)``) into a map with the method's rule, applies
ReLU, upsamples bilinearly to the input size and min-max normalises each map to ``[0, 1]``.

Rules (``w_c`` a channel weight, sums over channels ``c``):

* Grad-CAM (Selvaraju et al. 2017): ``relu(sum_c mean_xy(G_c) A_c)``
* Grad-CAM++ (Chattopadhay et al. 2018): ``w_c = sum_xy alpha_cxy relu(G_cxy)`` with
  ``alpha = G^2 / (2 G^2 + sum_xy(A_c) G^3)`` (the exponential-score form of the paper's eq. 19)
* HiRes-CAM (Draelos & Carin 2020): ``relu(sum_c G_c * A_c)`` (elementwise)
* Layer-CAM (Jiang et al. 2021): ``relu(sum_c relu(G_c) * A_c)``
* Guided Grad-CAM (Selvaraju et al. 2017): guided backpropagation times the upsampled Grad-CAM.

>>> import torch, salience.attribution as ex
>>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))
>>> e = ex.gradcam(net, torch.rand(2, 3, 16, 16), target=1)
>>> tuple(e.maps.shape), e.maps.dtype
((2, 16, 16), torch.float32)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..errors import ZeroGradientError
from ._base import (
    ZERO_GRADIENT_HINT,
    Explanation,
    Target,
    cam_maps,
    check_images,
    check_unknown,
    finish,
    layer_for,
    layer_forward,
    normalize_maps,
    spatial_grid,
    unwrap_model,
)
from ._hooks import scoped_model

__all__ = ["gradcam", "gradcam_pp", "hirescam", "layercam", "guided_gradcam", "CAM_RULES"]


def _gradcam_rule(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    w = g.mean(dim=(2, 3), keepdim=True)
    return (w * a).sum(dim=1)


def _gradcampp_rule(a: torch.Tensor, g: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    g2 = g * g
    g3 = g2 * g
    sum_a = a.sum(dim=(2, 3), keepdim=True)
    denom = 2 * g2 + sum_a * g3 + eps
    safe = torch.where(denom != 0, denom, torch.ones_like(denom))
    alpha = torch.where((denom != 0) & (g != 0), g2 / safe, torch.zeros_like(g2))
    w = (alpha * torch.relu(g)).sum(dim=(2, 3), keepdim=True)
    return (w * a).sum(dim=1)


def _hirescam_rule(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return (g * a).sum(dim=1)


def _layercam_rule(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return (torch.relu(g) * a).sum(dim=1)


#: method name -> rule (A, G) -> un-rectified low-resolution map (B, h, w)
CAM_RULES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "gradcam": _gradcam_rule,
    "gradcam-pp": _gradcampp_rule,
    "hirescam": _hirescam_rule,
    "layercam": _layercam_rule,
}


def _cam(method: str, model: Any, images: Any, target: Any, layer: Any, reshape: Callable | None,
         params: dict, rule_kw: dict | None = None) -> Explanation:
    check_unknown(method, params)
    net = unwrap_model(model)
    x = check_images(images, net)
    tgt = Target.parse(target, x.shape[0])
    hw = (x.shape[2], x.shape[3])
    with scoped_model(net):
        name, module = layer_for(net, x, layer, reshape, tgt)
        act, grad, scores, idx, _ = layer_forward(net, x, tgt, module)
    assert grad is not None
    a = spatial_grid(act, hw, reshape, name)
    g = spatial_grid(grad, hw, reshape, name)
    if not bool((g != 0).any()):
        raise ZeroGradientError(ZERO_GRADIENT_HINT.format(where=f"at layer {name!r}"))
    cam = torch.relu(CAM_RULES[method](a.float(), g.float(), **(rule_kw or {})))
    maps = cam_maps(cam, hw, method, name)
    return Explanation(finish(maps), idx, scores.float(), method, name, {"cam": cam})


def gradcam(model: Any, images: Any, target: Any = None, layer: Any = None, *,
            reshape: Callable | None = None, **params: Any) -> Explanation:
    """Grad-CAM (Selvaraju et al., ICCV 2017): ReLU of the activations weighted by their mean gradient.

    Parameters
    ----------
    model: an ``nn.Module`` or a :class:`~salience.attribution.models.LoadedModel`.
    images: float tensor ``(B, C, H, W)`` in the model's preprocessing (not modified).
    target: ``None`` (top-1), a class index, one index per image, ``"top-k"``, or a callable on the
        model output returning ``(B,)`` scores.
    layer: dotted module name or module; ``None`` picks the last spatial layer automatically
        (:func:`salience.explain` passes a :class:`LoadedModel`'s ``target_layer`` instead).
    reshape: callable turning the layer's raw output into ``(B, C, h, w)`` (overrides the automatic
        token-to-grid reshape used for ViT / Swin).

    Returns
    -------
    Explanation: ``maps`` float32 ``(B, H, W)`` in ``[0, 1]`` (per image min-max); ``extras["cam"]`` the
    low-resolution map before upsampling and normalisation.

    Examples
    --------
    >>> import torch
    >>> from salience.attribution import gradcam
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> e = gradcam(net, torch.rand(2, 3, 16, 16), target=[0, 2])
    >>> tuple(e.maps.shape), e.layer, bool(e.maps.min() >= 0 and e.maps.max() <= 1)
    ((2, 16, 16), '1', True)
    """
    return _cam("gradcam", model, images, target, layer, reshape, params)


def gradcam_pp(model: Any, images: Any, target: Any = None, layer: Any = None, *,
               reshape: Callable | None = None, eps: float = 0.0, **params: Any) -> Explanation:
    """Grad-CAM++ (Chattopadhay et al., WACV 2018): channel weights from positive gradients weighted by
    ``alpha = G^2 / (2 G^2 + sum(A) G^3 + eps)``.  Same arguments and output as :func:`gradcam`.

    ``eps=0`` (default) is the paper's formula (``alpha = 0`` where the denominator is 0).  pytorch-grad-cam
    adds ``eps = 1e-6``, which is not negligible when gradients are ~1e-3 (real classifiers' logits):
    ``eps=1e-6`` reproduces its maps (docs/explain.md, "Differences from peers").

    Examples
    --------
    >>> import torch
    >>> from salience.attribution import gradcam_pp
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> e = gradcam_pp(net, torch.rand(2, 3, 16, 16), target=[0, 2])
    >>> tuple(e.maps.shape), e.layer, bool(e.maps.min() >= 0 and e.maps.max() <= 1)
    ((2, 16, 16), '1', True)
    """
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
        from ..errors import InputError

        raise InputError(f"eps must be a number >= 0 added to alpha's denominator, got {eps!r}")
    return _cam("gradcam-pp", model, images, target, layer, reshape, params, {"eps": float(eps)})


def hirescam(model: Any, images: Any, target: Any = None, layer: Any = None, *,
             reshape: Callable | None = None, **params: Any) -> Explanation:
    """HiRes-CAM (Draelos & Carin 2020): ReLU of the channel sum of gradient x activation, elementwise.
    Same arguments and output as :func:`gradcam`.

    Examples
    --------
    >>> import torch
    >>> from salience.attribution import hirescam
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> e = hirescam(net, torch.rand(2, 3, 16, 16), target=[0, 2])
    >>> tuple(e.maps.shape), e.layer, bool(e.maps.min() >= 0 and e.maps.max() <= 1)
    ((2, 16, 16), '1', True)
    """
    return _cam("hirescam", model, images, target, layer, reshape, params)


def layercam(model: Any, images: Any, target: Any = None, layer: Any = None, *,
             reshape: Callable | None = None, **params: Any) -> Explanation:
    """Layer-CAM (Jiang et al., IEEE TIP 2021): ReLU of the channel sum of relu(gradient) x activation.
    Same arguments and output as :func:`gradcam`.

    Examples
    --------
    >>> import torch
    >>> from salience.attribution import layercam
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> e = layercam(net, torch.rand(2, 3, 16, 16), target=[0, 2])
    >>> tuple(e.maps.shape), e.layer, bool(e.maps.min() >= 0 and e.maps.max() <= 1)
    ((2, 16, 16), '1', True)
    """
    return _cam("layercam", model, images, target, layer, reshape, params)


def guided_gradcam(model: Any, images: Any, target: Any = None, layer: Any = None, *,
                   reshape: Callable | None = None, activations: str = "raise",
                   **params: Any) -> Explanation:
    """Guided Grad-CAM (Selvaraju et al. 2017): guided backpropagation times the upsampled Grad-CAM.

    The guided part is reduced over channels by the maximum absolute value; the product is normalised to
    ``[0, 1]`` by its maximum.  ``activations`` as in :func:`salience.attribution.gradients.guided_backprop`.
    The Grad-CAM target is the class the guided pass explained (so ``top-k`` picks one class for both).

    Examples
    --------
    >>> import torch
    >>> from salience.attribution import guided_gradcam
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> e = guided_gradcam(net, torch.rand(2, 3, 16, 16), target=[0, 2])
    >>> tuple(e.maps.shape), e.layer
    ((2, 16, 16), '1')
    """
    from .gradients import guided_backprop

    check_unknown("guided-gradcam", params)
    gb = guided_backprop(model, images, target=target, activations=activations)
    tgt = gb.targets if gb.targets is not None else target
    cam = _cam("gradcam", model, images, tgt, layer, reshape, {})
    attr = gb.extras["attributions"]
    maps = attr.abs().amax(dim=1) * cam.maps.to(attr.device)
    maps = normalize_maps(maps, "max")
    return Explanation(finish(maps), gb.targets, gb.scores, "guided-gradcam", cam.layer,
                       {"attributions": attr, "cam": cam.extras["cam"], "gradcam": cam.maps})
