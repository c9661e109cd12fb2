"""D-RISE: black-box saliency for object detectors (Petsiuk et al., CVPR 2021).

"Black-box Explanation of Object Detectors via Saliency Maps": random masks as in RISE (a coarse random
binary grid, bilinearly upsampled and randomly shifted); each masked image goes through the detector,
and the mask's weight is the best similarity between the explained detection ``d_t`` and the masked
image's detections ``d_j``:

    s(d_t, d_j) = IoU(L_t, L_j) * cos(P_t, P_j) * O_j,        map = sum_i w_i M_i,  w_i = max_j s(d_t, d_j)

torchvision detectors report a label and a score per detection rather than a class-probability vector
and an objectness, so here ``P_j`` is the one-hot vector of ``labels[j]`` and ``O_j`` is ``scores[j]``:
``cos(P_t, P_j)`` is 1 for the target's label and 0 otherwise (1 for every detection when no label is
given).  Masked images are sent through the detector ``batch_size`` at a time (as RISE batches them).
Only the model's forward is used: any callable returning torchvision's list-of-dicts format works.

>>> import torch
>>> from salience.drise import drise
>>> class Toy(torch.nn.Module):  # one fixed box; its score is the mean brightness inside
...     def forward(self, x):
...         s = x[:, :, 4:12, 4:12].mean(dim=(1, 2, 3))
...         return [{"boxes": torch.tensor([[4.0, 4.0, 12.0, 12.0]]), "scores": v[None],
...                  "labels": torch.tensor([1])} for v in s]
>>> e = drise(Toy(), torch.ones(1, 3, 24, 24), (4, 4, 12, 12), n=64, cells=4)
>>> e.maps.shape
torch.Size([1, 24, 24])
>>> bool(e.maps[0, 4:12, 4:12].mean() > e.maps[0, 16:, 16:].mean())
True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .attribution import Explanation
from .errors import InputError, ModelError
from .targets import box_iou, describe_output

__all__ = ["drise", "random_masks"]


def random_masks(n: int, size: tuple[int, int], cells: int, p: float, generator: torch.Generator) -> torch.Tensor:
    """``n`` RISE masks ``(n, H, W)`` in ``[0, 1]``: a ``cells x cells`` grid kept with probability ``p``,
    bilinearly upsampled to ``(cells + 1)`` cell sizes and shifted by a random offset below one cell."""
    H, W = size
    ch, cw = math.ceil(H / cells), math.ceil(W / cells)
    grid = (torch.rand((n, 1, cells, cells), generator=generator) < p).float()
    up = F.interpolate(grid, size=((cells + 1) * ch, (cells + 1) * cw), mode="bilinear", align_corners=False)
    dy = torch.randint(0, ch, (n,), generator=generator)
    dx = torch.randint(0, cw, (n,), generator=generator)
    rows = dy[:, None] + torch.arange(H)[None, :]
    cols = dx[:, None] + torch.arange(W)[None, :]
    return up[torch.arange(n)[:, None, None], 0, rows[:, :, None], cols[:, None, :]]


def _check_int(name: str, v: Any, lo: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise InputError(f"{name} must be an integer >= {lo}, got {v!r}")
    return v


def _check_boxes(box: Any, batch: int) -> torch.Tensor:
    """``(B, 4)`` float boxes from one box or one per image, validated."""
    B = batch
    b = torch.as_tensor(np.asarray(box, dtype=np.float32) if not isinstance(box, torch.Tensor) else box).float()
    b = b[None] if b.ndim == 1 else b
    if b.ndim != 2 or b.shape[1] != 4 or b.shape[0] not in (1, B) or not bool(torch.isfinite(b).all()):
        raise InputError(f"box must be (x1, y1, x2, y2) or one per image ({B}, 4), got shape {tuple(b.shape)}")
    if bool(((b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1])).any()):
        raise InputError("a box must have x2 > x1 and y2 > y1 (format x1, y1, x2, y2 in pixels)")
    b = b.expand(B, 4)
    return b


def _similarity(out: Any, target_box: torch.Tensor, count: int, lab: int | None) -> torch.Tensor:
    """``max_j IoU(L_t, L_j) * [labels_j == label] * scores_j`` for each of ``count`` detector outputs."""
    ok = isinstance(out, (list, tuple)) and len(out) == count and all(
        isinstance(o, dict) and "boxes" in o and "scores" in o for o in out)
    if not ok:
        raise ModelError(
            "D-RISE needs torchvision's detector output, a list of dicts with 'boxes', 'scores' and "
            f"'labels', one per image; the model returned {describe_output(out)}"
        )
    sims = torch.zeros(count)
    for k, det in enumerate(out):
        if det["boxes"].shape[0] == 0:
            continue
        s = box_iou(det["boxes"].float().cpu(), target_box[None].cpu())[:, 0] * det["scores"].float().cpu()
        if lab is not None:
            s = s * (det["labels"].cpu() == lab).float()
        sims[k] = s.max()
    return sims


def drise(model: Any, images: Any, box: Any, label: Any = None, *, n: int = 2000, cells: int = 16,
          p: float = 0.5, seed: int = 0, batch_size: int = 16) -> Explanation:
    """D-RISE saliency of one detection per image.

    Parameters
    ----------
    model: a detector in eval mode returning torchvision's format (list of dicts with ``boxes``
        ``(N, 4)`` x1 y1 x2 y2 in input pixels, ``scores`` ``(N,)``, ``labels`` ``(N,)``), or any callable.
    images: float tensor ``(B, C, H, W)`` (the detector's input; never modified).
    box: the explained detection's box ``(x1, y1, x2, y2)``, or one per image ``(B, 4)``.
    label: the explained detection's class (``None``: any class).
    n, cells, p: number of masks, grid size and keep probability (the paper: 5000, 16, 0.5).
    seed: the masks' random seed (same masks for every image of the batch).
    batch_size: masked images per detector call.

    Returns
    -------
    Explanation: ``maps`` ``(B, H, W)`` min-max normalised to ``[0, 1]``; ``scores`` the best similarity on
    the unmasked image; ``extras["raw"]`` ``sum_i w_i M_i / n``; ``extras["weights"]`` ``(B, n)``.
    """
    n, cells, batch_size = _check_int("n", n), _check_int("cells", cells), _check_int("batch_size", batch_size)
    if not 0.0 < float(p) < 1.0:
        raise InputError(f"p must lie in (0, 1), got {p!r}")
    if not callable(model):
        raise ModelError(f"model must be a detector (a callable module), got {type(model).__name__}")
    x = torch.as_tensor(images)
    if x.ndim != 4 or not x.is_floating_point() or min(x.shape) == 0:
        raise InputError(f"images must be a float tensor (B, C, H, W), got shape {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise InputError("images contains NaN or infinite values")
    net = model if isinstance(model, torch.nn.Module) else getattr(model, "model", model)
    if isinstance(net, torch.nn.Module):
        par = next(net.parameters(), None)
        if par is not None:
            x = x.to(par.device)
    B, _, H, W = x.shape
    b = _check_boxes(box, B)
    lab = None if label is None else int(label)

    modes = [(m, m.training) for m in net.modules()] if isinstance(net, torch.nn.Module) else []
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    masks = random_masks(n, (H, W), cells, float(p), gen)  # (n, H, W) on the CPU
    maps = torch.zeros(B, H, W)
    weights = torch.zeros(B, n)
    try:
        if isinstance(net, torch.nn.Module):
            net.eval()
        with torch.no_grad():
            base = torch.stack([_similarity(model(x[i:i + 1]), b[i], 1, lab)[0] for i in range(B)])
            for i in range(B):
                for s in range(0, n, batch_size):
                    m = masks[s:s + batch_size]
                    xm = x[i:i + 1] * m[:, None].to(device=x.device, dtype=x.dtype)
                    weights[i, s:s + len(m)] = _similarity(model(xm), b[i], len(m), lab)
                maps[i] = torch.einsum("k,khw->hw", weights[i], masks)
    finally:
        for mod, t in modes:
            mod.training = t
    raw = maps / n
    flat = raw.reshape(B, -1)
    lo, hi = flat.min(dim=1).values, flat.max(dim=1).values
    span = (hi - lo).clamp(min=1e-12)
    norm = torch.where((hi - lo)[:, None] > 0, (flat - lo[:, None]) / span[:, None], torch.zeros_like(flat))
    return Explanation(norm.reshape(B, H, W).float().to(x.device), None, base.float(), "d-rise", None,
                       {"raw": raw, "weights": weights, "n": n})
