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
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError, ZeroGradientError
from ._base import (
    ZERO_GRADIENT_HINT,
    Explanation,
    Target,
    cam_maps,
    check_images,
    check_positive_int,
    check_unknown,
    chunks,
    finish,
    layer_for,
    layer_forward,
    normalize_maps,
    pick_scores,
    raise_if_insensitive,
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
              progress: Callable[[int, int], None] | None = None, **params: Any) -> Explanation:
    """Occlusion (Zeiler & Fergus, ECCV 2014): the drop in the target score when a window is replaced by
    ``baseline``, averaged over the windows that cover each pixel.

    Windows start at ``0, stride, 2 stride, ...`` up to ``ceil((H - window) / stride) * stride`` (the last
    ones clipped at the border) and cover all channels.  ``maps``: signed float32 ``(B, H, W)`` in score
    units (positive: occluding it lowers the score).  ``batch_size`` occluded images per forward pass.
    ``progress``: called as ``progress(done, total)`` (forward passes of masked images, over the whole
    batch) after each pass, e.g. to drive a progress bar; the library itself never prints.

    Raises :class:`~salience.errors.ZeroGradientError` when no window changes an image's score (the
    score does not depend on the input).

    Examples
    --------
    >>> import torch
    >>> from salience.attribution import occlusion
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> e = occlusion(net, torch.rand(1, 3, 16, 16), target=0, window=8, stride=8)
    >>> tuple(e.maps.shape), e.maps.dtype
    ((1, 16, 16), torch.float32)
    """
    check_unknown("occlusion", params)
    wh, ww = _pair("window", window)
    sh, sw = _pair("stride", stride)
    batch_size = check_positive_int("batch_size", batch_size)
    baseline = _number("baseline", baseline, "the occluding value, in the model's input space")
    net = unwrap_model(model)
    x = check_images(images, net, needs_grad=False)
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
        done, total = 0, B * P
        changed = torch.zeros(B, dtype=torch.bool)
        for b in range(B):
            xb = x[b:b + 1]
            ib = idx[b:b + 1] if idx is not None else None
            acc = torch.zeros(H, W, dtype=x.dtype, device=x.device)
            for s, e in chunks(P, batch_size):
                m = masks[s:e, None]
                xm = xb * (1 - m) + float(baseline) * m
                sc = pick_scores(net(xm), ib.expand(e - s) if ib is not None else None, tgt, e - s)
                drop = scores[b] - sc.to(x.dtype)
                changed[b] |= bool((drop != 0).any())
                acc += torch.einsum("p,phw->hw", drop, masks[s:e])
                done += e - s
                if progress is not None:
                    progress(done, total)
            maps[b] = acc / count.clamp(min=1)
    raise_if_insensitive(changed[:, None], "occlusion", "change of the target score under every occluding "
                         "window")
    return Explanation(finish(maps), idx, scores.float(), "occlusion", None,
                       {"window": (wh, ww), "stride": (sh, sw)})


def _number(name: str, v: Any, what: str) -> float:
    """A finite real number (Python, numpy or a one-element tensor); a short error otherwise."""
    if isinstance(v, (torch.Tensor, np.ndarray)) and int(np.prod(v.shape)) == 1 and not isinstance(v, bool):
        v = v.reshape(()).item()
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)):
        desc = (f"a {type(v).__name__} of shape {tuple(v.shape)}" if isinstance(v, (torch.Tensor, np.ndarray))
                else repr(v)[:60])
        raise InputError(f"{name} must be one finite number ({what}), got {desc}")
    return float(v)


def rise(model: Any, images: Any, target: Any = None, layer: Any = None, *,
         n: int = 2000, cells: int = 7, p: float = 0.5, seed: int = 0, batch_size: int = 32,
         probabilities: bool = True, progress: Callable[[int, int], None] | None = None,
         **params: Any) -> Explanation:
    """RISE (Petsiuk, Das & Saenko, BMVC 2018): the mean of random masks weighted by the model's score on
    the masked image.

    ``n`` masks: a ``cells x cells`` grid of Bernoulli(``p``) values, upsampled bilinearly to
    ``(cells + 1)`` times the cell size and cropped at a random shift (the paper's construction);
    ``map = sum_i s_i M_i / (n p)``.  Scores are softmax probabilities of the target class
    (``probabilities=True``, as the paper) or raw scores; for callable targets always the callable's
    value.  ``maps`` are min-max normalised per image to ``[0, 1]``; ``extras["raw"]`` keeps the
    unnormalised map.  ``batch_size`` masked images per forward pass.  The masks are drawn in float32
    from one generator seeded with ``seed``, the same masks for every image of the batch: an image's map
    does not depend on its batch mates, on ``batch_size`` or on the model's dtype.  ``progress``: called
    as ``progress(done, total)`` (masked forward passes) after each pass.

    Raises :class:`~salience.errors.ZeroGradientError` when no mask changes an image's score (the map
    would be mask noise).

    Examples
    --------
    >>> import torch
    >>> from salience.attribution import rise
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> e = rise(net, torch.rand(1, 3, 16, 16), target=0, n=64, cells=4, seed=0)
    >>> tuple(e.maps.shape), bool(e.maps.min() >= 0)
    ((1, 16, 16), True)
    """
    check_unknown("rise", params)
    n = check_positive_int("n", n)
    cells = check_positive_int("cells", cells)
    batch_size = check_positive_int("batch_size", batch_size)
    if not (isinstance(p, (int, float)) and 0 < p <= 1):
        raise InputError(f"p (the probability of keeping a cell) must lie in (0, 1], got {p!r}")
    net = unwrap_model(model)
    x = check_images(images, net, needs_grad=False)
    B, C, H, W = x.shape
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    ch, cw = math.ceil(H / cells), math.ceil(W / cells)
    maps = torch.zeros(B, H, W, dtype=torch.float32, device=x.device)
    with scoped_model(net, no_inplace="auto"), torch.no_grad():
        tgt = Target.parse(target, B)
        out = net(x)
        scores, idx = select_scores(out, tgt, B)
        lo = torch.full((B,), math.inf)
        hi = torch.full((B,), -math.inf)
        for s, e in chunks(n, batch_size):
            k = e - s
            grid = (torch.rand((k, 1, cells, cells), generator=gen, dtype=torch.float32) < p).float().to(x.device)
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
                lo[b] = min(float(lo[b]), float(sc.min()))
                hi[b] = max(float(hi[b]), float(sc.max()))
                if progress is not None:
                    progress(s * B + (b + 1) * k, n * B)
    raise_if_insensitive((hi > lo)[:, None], "rise", "change of the target score under every random mask")
    raw = maps / (n * p)
    return Explanation(finish(normalize_maps(raw)), idx, scores.float(), "rise", None,
                       {"raw": raw, "n": n})


def scorecam(model: Any, images: Any, target: Any = None, layer: Any = None, *,
             batch_size: int = 32, reshape: Callable | None = None, probabilities: bool = True,
             max_channels: int | None = None, progress: Callable[[int, int], None] | None = None,
             **params: Any) -> Explanation:
    """Score-CAM (Wang et al., CVPR workshops 2020): each activation channel, upsampled and min-max
    normalised to [0, 1], masks the input; the channel's weight is the model's softmax probability for the
    target on that masked input (``probabilities=False``: the raw score; callable targets: its value).

    ``map = relu(sum_k w_k A_k)``, upsampled, min-max normalised to ``[0, 1]``.  One forward pass per
    channel, ``batch_size`` channels per pass (memory bounded); scores stay on the tensor side.

    ``max_channels``: if given, only the ``max_channels`` channels of each image with the largest
    spatial variance of their activation are used (the others get weight 0): a faster approximation
    (``--fast`` in the CLI; its agreement with the full map is measured in docs/explain.md).
    ``progress``: called as ``progress(done, total)`` (masked forward passes) after each pass.

    Raises :class:`~salience.errors.ZeroGradientError` when no channel mask changes an image's score.

    Examples
    --------
    >>> import torch
    >>> from salience.attribution import scorecam
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> e = scorecam(net, torch.rand(2, 3, 16, 16), target=[0, 2])
    >>> tuple(e.maps.shape), e.layer, bool(e.maps.min() >= 0 and e.maps.max() <= 1)
    ((2, 16, 16), '1', True)
    """
    check_unknown("scorecam", params)
    if max_channels is not None:
        max_channels = check_positive_int("max_channels", max_channels)
    return score_weighted_cam("scorecam", model, images, target, layer, batch_size=batch_size, reshape=reshape,
                              probabilities=probabilities, channels=max_channels, rank="variance",
                              progress=progress)


#: how :func:`score_weighted_cam` ranks an image's channels when it keeps only some of them
CHANNEL_RANKS = ("variance", "gradient")


def score_weighted_cam(method: str, model: Any, images: Any, target: Any, layer: Any, *, batch_size: int,
                       reshape: Callable | None, probabilities: bool, channels: int | None, rank: str,
                       progress: Callable[[int, int], None] | None) -> Explanation:
    """The Score-CAM mechanism shared by Score-CAM and gScoreCAM.

    ``channels``: how many channels of each image get a masked forward pass (``None`` or at least the
    layer's channel count: all of them); the others get weight 0.  ``rank`` says which are kept:
    ``"variance"`` (the spatial variance of the activation, Score-CAM's ``max_channels``) or
    ``"gradient"`` (the spatially averaged gradient of the target score, largest first: gScoreCAM, Chen et
    al. 2022; this needs one backward pass to the layer).  ``extras``: ``cam`` (the low-resolution map),
    ``weights`` ``(B, K)``, ``channels`` (the count used) and ``channel_index`` ``(B, used)`` (which).
    """
    if rank not in CHANNEL_RANKS:
        raise InputError(f"rank must be one of {CHANNEL_RANKS}, got {rank!r}")
    batch_size = check_positive_int("batch_size", batch_size)
    by_grad = rank == "gradient"
    net = unwrap_model(model)
    # autograd is needed for the automatic layer choice and for a gradient ranking
    x = check_images(images, net, needs_grad=layer is None or by_grad)
    B, C, H, W = x.shape
    tgt = Target.parse(target, B)
    with scoped_model(net):
        name, module = layer_for(net, x, layer, reshape, tgt)
        if by_grad:
            act, grad, scores, idx, _ = layer_forward(net, x, tgt, module, need_grad=True)
            g = spatial_grid(grad, (H, W), reshape, name).float().mean(dim=(2, 3))  # (B, K)
        with torch.no_grad():
            if not by_grad:
                act, _, scores, idx, _ = layer_forward(net, x, tgt, module, need_grad=False)
            a = spatial_grid(act, (H, W), reshape, name).float()
            K = a.shape[1]
            used = K if channels is None else min(K, channels)
            cams, weights, picked = [], [], []
            done = 0
            for b in range(B):
                w = torch.zeros(K, dtype=torch.float32, device=x.device)
                if used == K:
                    chans = torch.arange(K, device=a.device)
                elif by_grad:
                    if not bool((g[b] != 0).any()):
                        raise ZeroGradientError(ZERO_GRADIENT_HINT.format(where=f"at layer {name!r} (image {b})"))
                    chans = g[b].topk(used).indices.sort().values
                else:
                    chans = a[b].reshape(K, -1).var(dim=1).topk(used).indices.sort().values
                for s, e in chunks(used, batch_size):
                    # masks are made per chunk: memory is batch_size x H x W, not K x H x W
                    cs = chans[s:e]
                    flat = upsample(a[b, cs], (H, W)).reshape(e - s, -1)
                    lo, hi = flat.min(dim=1).values, flat.max(dim=1).values
                    span = hi - lo
                    masks = torch.where(span[:, None] > 0,
                                        (flat - lo[:, None]) / span.clamp(min=1e-12)[:, None],
                                        torch.zeros_like(flat)).reshape(e - s, 1, H, W).to(x.dtype)
                    o = net(x[b:b + 1] * masks)
                    w[cs] = target_scores(o, tgt, None if idx is None else idx[b].expand(e - s), e - s,
                                          probabilities=probabilities).float()
                    done += e - s
                    if progress is not None:
                        progress(done, B * used)
                ws = w[chans]
                if not bool((ws != ws[0]).any()) and used > 1:
                    raise_if_insensitive(torch.zeros(1, 1), f"{method} (image {b})",
                                         "change of the target score between the channel masks")
                weights.append(w)
                picked.append(chans)
                cams.append(torch.relu(torch.einsum("k,khw->hw", w, a[b])))
            cam = torch.stack(cams)
    maps = cam_maps(cam, (H, W), method, name)
    return Explanation(finish(maps), idx, scores.float(), method, name,
                       {"cam": cam, "weights": torch.stack(weights), "channels": used,
                        "channel_index": torch.stack(picked)})
