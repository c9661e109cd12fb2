"""What every CAM method shares around its single-layer rule: several layers fused into one map, test-time
augmentation smoothing, and eigen smoothing.

Every CAM function (:mod:`salience.attribution.cam`, :mod:`salience.attribution.cam_variants`) hands its
single-layer computation to :func:`run_cam`, which

* runs it once per layer when ``layer`` is a list (or a comma-separated string, as the CLI passes it)
  of layer names / modules, min-max normalises each layer's rectified map at its own resolution,
  upsamples it (bilinear) to the input size, and fuses the maps by their per-pixel ``"mean"``
  (pytorch-grad-cam's aggregation) or ``"max"``, then min-max normalises the fused map again.  (The
  Layer-CAM paper, Jiang et al. 2021, which fuses shallow and deep layers, also rescales the shallow
  layers' maps with a tanh before fusing; that rescaling is not applied here.)  The first layer's run fixes the
  explained class, so ``"top-k"`` explains one class at every layer.  One forward and one backward pass
  per layer.
* with ``aug_smooth=True`` averages the maps of six views of the input, pytorch-grad-cam's test-time
  augmentation: ``{no flip, horizontal flip} x {x 1, x 0.9, x 1.1}`` (the preprocessed tensor's values
  multiplied; ttach's ``Multiply``), each view's map flipped back before the mean; the mean is not
  normalised again (a mean of ``[0, 1]`` maps).  The class is the one explained on the unaugmented input.

``eigen_smooth=True`` (pytorch-grad-cam's option of the same name) is applied by the rules themselves:
the map is the projection of the weighted activations (the terms the rule sums over channels) on their
first principal component (:func:`~salience.attribution.cam_variants.principal_projection`, centred,
sign fixed towards more activation) instead of their channel sum.

>>> import torch
>>> from salience.attribution import gradcam
>>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
...                           torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.ReLU(),
...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))
>>> e = gradcam(net, torch.rand(2, 3, 16, 16), target=1, layer=["1", "3"], fuse="max", aug_smooth=True)
>>> e.layer, tuple(e.maps.shape), float(e.maps.min()) >= 0
('1,3', (2, 16, 16), True)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..errors import InputError
from ._base import Explanation, Target, cam_maps, check_images, finish, normalize_maps, unwrap_model, upsample

__all__ = ["FUSIONS", "TTA_VIEWS", "run_cam", "check_cam_options", "layer_list"]

#: how the maps of several layers are combined
FUSIONS = ("mean", "max")
#: pytorch-grad-cam's default test-time augmentation: (horizontal flip, multiplier)
TTA_VIEWS: tuple[tuple[bool, float], ...] = tuple((f, m) for f in (False, True) for m in (1.0, 0.9, 1.1))

#: ``single(net, x, target, layer) -> (rectified low-resolution cam (B, h, w), layer name, scores, indices)``
Single = Callable[[torch.nn.Module, torch.Tensor, Target, Any], tuple[torch.Tensor, str, torch.Tensor, Any]]


def check_cam_options(fuse: Any, aug_smooth: Any, eigen_smooth: Any) -> None:
    if fuse not in FUSIONS:
        raise InputError(f"fuse must be one of {', '.join(FUSIONS)} (how several layers' maps combine), "
                         f"got {fuse!r}")
    for name, v in (("aug_smooth", aug_smooth), ("eigen_smooth", eigen_smooth)):
        if not isinstance(v, bool):
            raise InputError(f"{name} must be True or False, got {v!r}")


def layer_list(layer: Any) -> list[Any]:
    """``layer`` as a list: a list/tuple as given, a comma-separated string split, anything else alone."""
    if isinstance(layer, (list, tuple)):
        if not layer:
            raise InputError("layer is an empty list; give one or more layer names (e.g. ['features.14', "
                             "'features.18']) or None for the automatic layer")
        return list(layer)
    if isinstance(layer, str) and "," in layer:
        names = [s.strip() for s in layer.split(",") if s.strip()]
        if not names:
            raise InputError(f"layer {layer!r} names no layer")
        return names
    return [layer]


def _fused(single: Single, net: torch.nn.Module, x: torch.Tensor, tgt: Target, layers: list[Any],
           method: str, fuse: str) -> tuple[torch.Tensor, list[str], list[torch.Tensor], torch.Tensor, Any, Target]:
    hw = (x.shape[2], x.shape[3])
    maps, names, cams = [], [], []
    scores: Any = None
    idx: Any = None
    for layer in layers:
        cam, name, s, i = single(net, x, tgt, layer)
        if scores is None:
            scores, idx = s, i
            if i is not None:  # the class chosen at the first layer is explained at every other one
                tgt = Target("index", indices=i.detach().cpu())
        single_map = cam_maps(cam, hw, method, name)  # normalised at the input size; warns on a constant CAM
        if len(layers) > 1:
            # several layers: each CAM min-max normalised at its own resolution, then upsampled
            # (pytorch-grad-cam's order); a constant CAM (all-zero single_map) stays zero
            blank = single_map.reshape(single_map.shape[0], -1).amax(dim=1) == 0
            up = upsample(normalize_maps(cam), hw)
            single_map = torch.where(blank[:, None, None], torch.zeros_like(up), up)
        maps.append(single_map)
        names.append(name)
        cams.append(cam)
    if len(maps) == 1:
        out = maps[0]
    else:
        stack = torch.stack(maps)
        out = normalize_maps(stack.mean(dim=0) if fuse == "mean" else stack.amax(dim=0))
    return out, names, cams, scores, idx, tgt


def run_cam(method: str, model: Any, images: Any, target: Any, layer: Any, single: Single, *,
            fuse: str = "mean", aug_smooth: bool = False) -> Explanation:
    """The CAM pipeline around ``single``: input checks, layer list, fusion, test-time augmentation."""
    check_cam_options(fuse, aug_smooth, False)
    net = unwrap_model(model)
    x = check_images(images, net)
    tgt = Target.parse(target, x.shape[0])
    layers = layer_list(layer)
    maps, names, cams, scores, idx, fixed = _fused(single, net, x, tgt, layers, method, fuse)
    if aug_smooth:
        total = maps.clone()
        for flip, factor in TTA_VIEWS[1:]:
            xv = x.flip(-1) if flip else x
            if factor != 1.0:
                xv = xv * factor
            m = _fused(single, net, xv, fixed, layers, method, fuse)[0]
            total = total + (m.flip(-1) if flip else m)
        maps = total / len(TTA_VIEWS)
    extras: dict[str, Any] = {"cam": cams[0]} if len(cams) == 1 else {"cams": dict(zip(names, cams))}
    return Explanation(finish(maps), idx, scores.float(), method, ",".join(names), extras)
