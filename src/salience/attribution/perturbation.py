"""Perturbation methods: occlusion, RISE, Score-CAM.

Each evaluates the model on many masked copies of the input.  The copies are built by broadcasting, a
``batch_size`` of them per forward pass (memory is bounded by it), and their scores are accumulated on
the tensor side: no Python round trip per mask.

>>> import torch, salience.attribution as ex
>>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))
>>> e = ex.occlusion(net, torch.rand(1, 3, 16, 16), target=0, window=4, stride=4)
>>> tuple(e.maps.shape)
(1, 16, 16)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import InputError
from ._base import (
    Explanation,
    Target,
    check_images,
    check_positive_int,
    check_unknown,
    chunks,
    finish,
    layer_for,
    layer_forward,
    normalize_maps,
    pick_scores,
    select_scores,
    spatial_grid,
    target_scores,
    unwrap_model,
    upsample,
)
from ._hooks import scoped_model

__all__ = ["occlusion", "rise", "scorecam"]


def _pair(name: str, v: Any) -> tuple[int, int]:
    if isinstance(v, int) and not isinstance(v, bool):
        v = (v, v)
    if (not isinstance(v, (tuple, list)) or len(v) != 2
            or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 1 for i in v)):
        raise InputError(f"{name} must be a positive integer or a pair (h, w) of them, got {v!r}")
    return int(v[0]), int(v[1])


def occlusion(model: Any, images: Any, target: Any = None, layer: Any = None, *,
              window: Any = 16, stride: Any = 8, baseline: float = 0.0, batch_size: int = 32,
              **params: Any) -> Explanation:
    """Occlusion (Zeiler & Fergus, ECCV 2014): the drop in the target score when a window is replaced by
    ``baseline``, averaged over the windows that cover each pixel.

    Windows start at ``0, stride, 2 stride, ...`` up to ``ceil((H - window) / stride) * stride`` (the last
    ones clipped at the border) and cover all channels.  ``maps``: signed float32 ``(B, H, W)`` in score
    units (positive: occluding it lowers the score).  ``batch_size`` occluded images per forward pass.
    """
    check_unknown("occlusion", params)
    wh, ww = _pair("window", window)
    sh, sw = _pair("stride", stride)
    batch_size = check_positive_int("batch_size", batch_size)
    if not isinstance(baseline, (int, float)) or isinstance(baseline, bool) or not math.isfinite(baseline):
        raise InputError(f"baseline must be a finite number (the occluding value), got {baseline!r}")
    net = unwrap_model(model)
    x = check_images(images, net)
    B, C, H, W = x.shape
    if wh > H or ww > W:
        raise InputError(f"window {(wh, ww)} is larger than the images ({H} x {W})")
    ys = [i * sh for i in range(math.ceil((H - wh) / sh) + 1)]
    xs = [j * sw for j in range(math.ceil((W - ww) / sw) + 1)]
    masks = torch.zeros(len(ys) * len(xs), H, W, dtype=x.dtype, device=x.device)
    k = 0
    for y0 in ys:
        for x0 in xs:
            masks[k, y0:y0 + wh, x0:x0 + ww] = 1
            k += 1
    count = masks.sum(dim=0)
    P = masks.shape[0]
    maps = torch.zeros(B, H, W, dtype=x.dtype, device=x.device)
    with scoped_model(net, no_inplace="auto"), torch.no_grad():
        tgt = Target.parse(target, B)
        scores, idx = select_scores(net(x), tgt, B)
        for b in range(B):
            xb = x[b:b + 1]
            ib = idx[b:b + 1] if idx is not None else None
            acc = torch.zeros(H, W, dtype=x.dtype, device=x.device)
            for s, e in chunks(P, batch_size):
                m = masks[s:e, None]
                xm = xb * (1 - m) + float(baseline) * m
                sc = pick_scores(net(xm), ib.expand(e - s) if ib is not None else None, tgt, e - s)
                acc += torch.einsum("p,phw->hw", scores[b] - sc.to(x.dtype), masks[s:e])
            maps[b] = acc / count.clamp(min=1)
    return Explanation(finish(maps), idx, scores.float(), "occlusion", None,
                       {"window": (wh, ww), "stride": (sh, sw)})


def rise(model: Any, images: Any, target: Any = None, layer: Any = None, *,
         n: int = 2000, cells: int = 7, p: float = 0.5, seed: int = 0, batch_size: int = 32,
         probabilities: bool = True, **params: Any) -> Explanation:
    """RISE (Petsiuk, Das & Saenko, BMVC 2018): the mean of random masks weighted by the model's score on
    the masked image.

    ``n`` masks: a ``cells x cells`` grid of Bernoulli(``p``) values, upsampled bilinearly to
    ``(cells + 1)`` times the cell size and cropped at a random shift (the paper's construction);
    ``map = sum_i s_i M_i / (n p)``.  Scores are softmax probabilities of the target class
    (``probabilities=True``, as the paper) or raw scores; for callable targets always the callable's
    value.  ``maps`` are min-max normalised per image to ``[0, 1]``; ``extras["raw"]`` keeps the
    unnormalised map.  Deterministic for a ``seed``; ``batch_size`` masked images per forward pass.
    """
    check_unknown("rise", params)
    n = check_positive_int("n", n)
    cells = check_positive_int("cells", cells)
    batch_size = check_positive_int("batch_size", batch_size)
    if not (isinstance(p, (int, float)) and 0 < p <= 1):
        raise InputError(f"p (the probability of keeping a cell) must lie in (0, 1], got {p!r}")
    net = unwrap_model(model)
    x = check_images(images, net)
    B, C, H, W = x.shape
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    ch, cw = math.ceil(H / cells), math.ceil(W / cells)
    maps = torch.zeros(B, H, W, dtype=torch.float32, device=x.device)
    with scoped_model(net, no_inplace="auto"), torch.no_grad():
        tgt = Target.parse(target, B)
        out = net(x)
        scores, idx = select_scores(out, tgt, B)
        for s, e in chunks(n, batch_size):
            k = e - s
            grid = (torch.rand((k, 1, cells, cells), generator=gen) < p).float().to(x.device)
            up = F.interpolate(grid, size=((cells + 1) * ch, (cells + 1) * cw), mode="bilinear",
                               align_corners=False)
            dy = torch.randint(0, ch, (k,), generator=gen)
            dx = torch.randint(0, cw, (k,), generator=gen)
            dev = x.device
            rows = (dy[:, None] + torch.arange(H)[None, :]).to(dev)  # (k, H)
            cols = (dx[:, None] + torch.arange(W)[None, :]).to(dev)  # (k, W)
            m = up[torch.arange(k, device=dev)[:, None, None], 0, rows[:, :, None], cols[:, None, :]]
            m = m.to(device=x.device, dtype=x.dtype)  # (k, H, W)
            for b in range(B):
                xm = x[b:b + 1] * m[:, None]
                o = net(xm)
                sc = target_scores(o, tgt, None if idx is None else idx[b].expand(k), k,
                                   probabilities=probabilities)
                maps[b] += torch.einsum("k,khw->hw", sc.float(), m.float())
    raw = maps / (n * p)
    return Explanation(finish(normalize_maps(raw)), idx, scores.float(), "rise", None,
                       {"raw": raw, "n": n})


def scorecam(model: Any, images: Any, target: Any = None, layer: Any = None, *,
             batch_size: int = 32, reshape: Callable | None = None, probabilities: bool = True,
             **params: Any) -> Explanation:
    """Score-CAM (Wang et al., CVPR workshops 2020): each activation channel, upsampled and min-max
    normalised to [0, 1], masks the input; the channel's weight is the model's softmax probability for the
    target on that masked input (``probabilities=False``: the raw score; callable targets: its value).

    ``map = relu(sum_k w_k A_k)``, upsampled, min-max normalised to ``[0, 1]``.  One forward pass per
    channel, ``batch_size`` channels per pass (memory bounded); scores stay on the tensor side.
    """
    check_unknown("scorecam", params)
    batch_size = check_positive_int("batch_size", batch_size)
    net = unwrap_model(model)
    x = check_images(images, net)
    B, C, H, W = x.shape
    tgt = Target.parse(target, B)
    with scoped_model(net):
        name, module = layer_for(net, x, layer, reshape)
        with torch.no_grad():
            act, _, scores, idx, _ = layer_forward(net, x, tgt, module, need_grad=False)
            a = spatial_grid(act, (H, W), reshape, name).float()
            K = a.shape[1]
            cams = []
            for b in range(B):
                w = torch.empty(K, dtype=torch.float32, device=x.device)
                for s, e in chunks(K, batch_size):
                    # masks are made per chunk: memory is batch_size x H x W, not K x H x W
                    flat = upsample(a[b, s:e], (H, W)).reshape(e - s, -1)
                    lo, hi = flat.min(dim=1).values, flat.max(dim=1).values
                    span = hi - lo
                    masks = torch.where(span[:, None] > 0,
                                        (flat - lo[:, None]) / span.clamp(min=1e-12)[:, None],
                                        torch.zeros_like(flat)).reshape(e - s, 1, H, W).to(x.dtype)
                    o = net(x[b:b + 1] * masks)
                    w[s:e] = target_scores(o, tgt, None if idx is None else idx[b].expand(e - s), e - s,
                                           probabilities=probabilities).float()
                cams.append(torch.relu(torch.einsum("k,khw->hw", w, a[b])))
            cam = torch.stack(cams)
    maps = normalize_maps(upsample(cam, (H, W)))
    if not bool((cam > 0).any()):
        warnings.warn(f"Score-CAM at layer {name!r} is zero everywhere for some image(s): no channel mask "
                      "raised the target's score; try another layer", stacklevel=2)
    return Explanation(finish(maps), idx, scores.float(), "scorecam", name, {"cam": cam})
