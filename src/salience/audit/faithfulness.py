"""Faithfulness and sanity checks for explanations of image models.

Two questions about an explanation map, answered with numbers:

* **Does the map point at what the model uses?**  Deletion and insertion curves (Petsiuk, Das & Saenko,
  "RISE: randomized input sampling for explanation of black-box models", BMVC 2018): pixels are removed
  from (deletion) or added to (insertion) the image in order of decreasing saliency and the model's
  probability of the target class is recorded at every step.  A faithful map makes the deletion curve
  fall fast (low AUC) and the insertion curve rise fast (high AUC).  The removed pixels are filled in the
  model's input space by a constant, a Gaussian blur, or ROAD's noisy linear imputation (Rong, Leemann,
  Borisov, Kasneci & Kasneci, "A consistent and efficient evaluation strategy for attribution methods",
  ICML 2022).
* **Does the map depend on the model at all?**  Model-parameter randomisation (Adebayo, Gilmer, Muelly,
  Goodfellow, Hardt & Kim, "Sanity checks for saliency maps", NeurIPS 2018): the layers of a copy of the
  model are re-initialised from the top (logits) down, cumulatively ("cascading") or one at a time
  ("independent"), the explanation is recomputed for the same input and target, and its similarity to
  the original map is measured (Spearman rank correlation with and without absolute values, SSIM, HOG
  similarity).  A map that stays similar while the model is destroyed does not explain the model.

The similarity measures (:func:`spearman`, :func:`ssim`, :func:`hog`, :func:`hog_similarity`) are plain
numpy/scipy; the curves and the randomisation need the torch extra and import it on first use, so
``import salience.metrics`` never imports torch.

>>> import numpy as np
>>> from salience.audit.faithfulness import spearman, ssim
>>> a = np.arange(64.0).reshape(8, 8)
>>> round(spearman(a, a ** 3), 6), round(ssim(a, a), 6)
(1.0, 1.0)
"""

from __future__ import annotations

import contextlib
import copy
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..check import check_choice, check_int, check_real, require_torch
from ..errors import InputError, ModelError, ZeroGradientError

__all__ = [
    "CurveResult",
    "deletion_curve",
    "insertion_curve",
    "PERTURBATIONS",
    "perturb",
    "road_impute",
    "spearman",
    "ssim",
    "hog",
    "hog_similarity",
    "map_similarity",
    "SIMILARITY_METRICS",
    "SanityResult",
    "sanity_check",
    "randomization_layers",
    "curves_figure",
    "sanity_figure",
]

#: the fillings for removed pixels, in the model's input space
PERTURBATIONS = ("constant", "blur", "road")
#: the similarity measures of the sanity checks, in table order
SIMILARITY_METRICS = ("spearman", "spearman_abs", "ssim", "hog")

#: ROAD's neighbour weights (direct neighbours 1/6, diagonal ones 1/12; they sum to 1) and noise
ROAD_WEIGHTS = ((-1, 0, 1 / 6), (1, 0, 1 / 6), (0, -1, 1 / 6), (0, 1, 1 / 6),
                (-1, -1, 1 / 12), (-1, 1, 1 / 12), (1, -1, 1 / 12), (1, 1, 1 / 12))
ROAD_NOISE = 0.01


def _torch():
    return require_torch("deletion/insertion curves and sanity checks")


# ======================================================================================================
# Deletion and insertion
# ======================================================================================================


@dataclass
class CurveResult:
    """A deletion or insertion curve for each image of a batch.

    Attributes
    ----------
    kind: ``"deletion"`` or ``"insertion"``.
    fractions: float64 ``(steps + 1,)``, the fraction of pixels removed (deletion) or inserted
        (insertion) at each step, from 0 to 1.
    scores: float32 ``(B, steps + 1)``, the model's probability (or score) of the target at each step.
    auc: float64 ``(B,)``, the area under each curve by the trapezoid rule over ``fractions``.
    targets: int64 ``(B,)`` class indices (``None`` for a callable target).
    perturbation: the filling used; score: ``"probability"`` or ``"logit"`` (``"callable"`` for a
        callable target).

    Examples
    --------
    >>> import torch
    >>> from salience.audit import CurveResult, deletion_curve
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> x = torch.rand(2, 3, 16, 16)
    >>> r = deletion_curve(net, x, torch.rand(2, 16, 16), target=0, steps=8)
    >>> isinstance(r, CurveResult), r.kind, r.fractions.shape, r.scores.shape, r.auc.shape
    (True, 'deletion', (9,), (2, 9), (2,))
    """

    kind: str
    fractions: np.ndarray
    scores: np.ndarray
    auc: np.ndarray
    targets: np.ndarray | None
    perturbation: str
    score: str
    params: dict[str, Any] = field(default_factory=dict)


def _saliency_array(saliency_maps: Any, batch: int, hw: tuple[int, int]) -> np.ndarray:
    """(B, H, W) float64 numpy from an Explanation, a tensor or an array; checked."""
    maps = getattr(saliency_maps, "maps", saliency_maps)
    if hasattr(maps, "detach"):
        maps = maps.detach().float().cpu().numpy()
    try:
        arr = np.asarray(maps, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(
            f"saliency_maps must be a (B, H, W) array, tensor or Explanation, got {type(saliency_maps).__name__}"
        ) from None
    if arr.ndim == 2 and batch == 1:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[0] != batch or tuple(arr.shape[1:]) != tuple(hw):
        raise InputError(
            f"saliency_maps has shape {arr.shape}; expected (B, H, W) = ({batch}, {hw[0]}, {hw[1]}), one map "
            "per image at the input's size (Explanation.maps has it; resize other maps to the input first)"
        )
    if not np.isfinite(arr).all():
        raise InputError("saliency_maps contains NaN or infinite values; replace them (np.nan_to_num) first")
    return arr


def _ranks(sal: np.ndarray, patch: int) -> np.ndarray:
    """``rank[b, p]``: the position of pixel ``p`` (raster index) in the order of decreasing saliency.

    Ties keep raster order (a stable sort), so the order is deterministic.  With ``patch > 1`` the map is
    averaged over ``patch x patch`` cells (the last ones may be smaller) and whole cells are ranked; pixels
    of one cell are consecutive, in raster order.
    """
    B, H, W = sal.shape
    flat = sal.reshape(B, H * W)
    if patch > 1:
        rows = np.arange(H) // patch
        cols = np.arange(W) // patch
        nr, nc = rows[-1] + 1, cols[-1] + 1
        cell = (rows[:, None] * nc + cols[None, :]).ravel()
        counts = np.bincount(cell, minlength=nr * nc)
        means = np.stack([np.bincount(cell, weights=f, minlength=nr * nc) for f in flat]) / counts
        cell_rank = np.empty_like(means, dtype=np.int64)
        order = np.argsort(-means, axis=1, kind="stable")
        np.put_along_axis(cell_rank, order, np.arange(nr * nc)[None].repeat(B, 0), axis=1)
        key = cell_rank[:, cell].astype(np.float64)
    else:
        key = -flat
    order = np.argsort(key, axis=1, kind="stable")
    rank = np.empty((B, H * W), dtype=np.int64)
    np.put_along_axis(rank, order, np.arange(H * W)[None].repeat(B, 0), axis=1)
    return rank


def road_impute(image: np.ndarray, missing: np.ndarray, *, noise: float = ROAD_NOISE, seed: int = 0,
                fill: float = 0.0) -> np.ndarray:
    """ROAD's noisy linear imputation of the ``missing`` pixels of one image (Rong et al., ICML 2022).

    Every missing pixel is set to the weighted mean of its 8 neighbours (weights 1/6 for the four direct
    neighbours, 1/12 for the diagonal ones, renormalised at the border); known pixels stay fixed.  The
    conditions for all missing pixels together form one sparse linear system (a weighted graph Laplacian
    with the known pixels as boundary values), solved exactly with ``scipy.sparse.linalg.spsolve`` once
    for all channels.  Then Gaussian noise of standard deviation ``noise`` (in the image's units) is added
    to the imputed pixels only, so that the removal pattern cannot be read from a perfectly smooth fill.
    A connected region of missing pixels with no known neighbour at all (e.g. everything missing) has no
    unique solution; it is set to ``fill`` (plus the noise).

    Parameters
    ----------
    image: float ``(C, H, W)`` (the model's input space).
    missing: bool ``(H, W)``, True where a pixel is removed.
    noise, seed: the noise standard deviation and its seed (deterministic for a seed).
    fill: the value of regions without any known neighbour.

    Returns
    -------
    float32 ``(C, H, W)``: ``image`` where known, imputed (+ noise) where missing.  Inputs not modified.

    >>> import numpy as np
    >>> img = np.tile(np.arange(5.0), (1, 5, 1))          # a linear ramp along x
    >>> miss = np.zeros((5, 5), bool); miss[2, 2] = True
    >>> round(float(road_impute(img, miss, noise=0.0)[0, 2, 2]), 6)  # the mean of its neighbours
    2.0
    """
    import scipy.sparse as sp
    from scipy import ndimage
    from scipy.sparse.linalg import spsolve

    img = np.asarray(image, dtype=np.float64)
    miss = np.asarray(missing, dtype=bool)
    if img.ndim != 3 or miss.shape != img.shape[1:]:
        raise InputError(f"road_impute needs image (C, H, W) and missing (H, W), got {img.shape} and {miss.shape}")
    C, H, W = img.shape
    out = img.copy()
    rng = np.random.default_rng(seed)
    # 8-connected regions of missing pixels that touch no known pixel: no information, set to `fill`
    labels, n_lab = ndimage.label(miss, structure=np.ones((3, 3), bool))
    if n_lab:
        near_known = ndimage.binary_dilation(~miss, structure=np.ones((3, 3), bool))
        touching = np.bincount(labels[near_known & miss], minlength=n_lab + 1) > 0
        isolated = miss & ~touching[labels]
        if isolated.any():
            k = int(isolated.sum())
            vals = np.full((C, k), float(fill))
            if noise:
                vals = vals + rng.normal(0.0, noise, size=(k, C)).T
            out[:, isolated] = vals
            miss = miss & ~isolated
    u = np.flatnonzero(miss.ravel())
    n = u.size
    if n == 0:
        return out.astype(np.float32)
    var = np.full(H * W, -1, dtype=np.int64)
    var[u] = np.arange(n)
    uy, ux = np.divmod(u, W)
    diag = np.zeros(n)
    rhs = np.zeros((n, C))
    rows, cols, vals = [], [], []
    flat = img.reshape(C, H * W)
    for dy, dx, w in ROAD_WEIGHTS:
        ny, nx = uy + dy, ux + dx
        ok = (ny >= 0) & (ny < H) & (nx >= 0) & (nx < W)
        q = ny[ok] * W + nx[ok]
        p = np.flatnonzero(ok)
        diag[p] += w
        vq = var[q]
        unk = vq >= 0
        rows.append(p[unk])
        cols.append(vq[unk])
        vals.append(np.full(int(unk.sum()), -w))
        known = ~unk
        np.add.at(rhs, p[known], w * flat[:, q[known]].T)
    rows.append(np.arange(n))
    cols.append(np.arange(n))
    vals.append(diag)
    A = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    sol = spsolve(A, rhs)
    sol = np.asarray(sol).reshape(n, C)
    if noise:
        sol = sol + rng.normal(0.0, noise, size=sol.shape)
    out.reshape(C, H * W)[:, u] = sol.T
    return out.astype(np.float32)


def _fill_for(x, perturbation: str, value: Any, blur_sigma: float):
    """The fully perturbed image (B, C, H, W) for "constant" and "blur"."""
    torch = _torch()
    if perturbation == "constant":
        v = torch.as_tensor(value, dtype=x.dtype, device=x.device)
        if v.ndim == 0:
            return torch.full_like(x, float(v))
        if v.ndim == 1 and v.numel() == x.shape[1]:
            return v.view(1, -1, 1, 1).expand_as(x).clone()
        raise InputError(
            f"value must be one number or one per channel ({x.shape[1]}), got shape {tuple(v.shape)}"
        )
    from ..attribution import gaussian_blur

    return gaussian_blur(x, blur_sigma, border="reflect")


def perturb(images: Any, saliency_maps: Any, fraction: float, *, mode: str = "deletion",
            perturbation: str = "constant", value: Any = 0.0, blur_sigma: float = 5.0, patch: int = 1,
            road_noise: float = ROAD_NOISE, seed: int = 0):
    """The images with the top ``fraction`` of pixels (by saliency) removed (``mode="deletion"``) or
    with only those inserted into the perturbed image (``mode="insertion"``): what a curve step shows
    the model.  Same conventions as :func:`deletion_curve`; returns a new ``(B, C, H, W)`` tensor.

    >>> import torch
    >>> x = torch.ones(1, 1, 2, 2); s = torch.tensor([[[4.0, 3.0], [2.0, 1.0]]])
    >>> perturb(x, s, 0.5)[0, 0].tolist()
    [[0.0, 0.0], [1.0, 1.0]]
    """
    torch = _torch()
    x = _as_images(images)
    B, C, H, W = x.shape
    sal = _saliency_array(saliency_maps, B, (H, W))
    perturbation = _check_perturbation(perturbation)
    fraction = check_real("fraction", fraction, minimum=0)
    if fraction > 1:
        raise InputError(f"fraction must lie in [0, 1], got {fraction}")
    rank = torch.from_numpy(_ranks(sal, check_int("patch", patch))).to(x.device)
    n = int(round(fraction * H * W))
    mask = (rank < n).view(B, 1, H, W)
    xs = _perturbed(x, mask, mode, perturbation, value, blur_sigma, road_noise, seed, None)
    return xs


def _as_images(images: Any):
    torch = _torch()
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
        shape = tuple(images.shape) if hasattr(images, "shape") else type(images).__name__
        raise InputError(f"images must be a float (B, C, H, W) tensor in the model's preprocessing, got {shape}")
    if min(images.shape) == 0 or not bool(torch.isfinite(images).all()):
        raise InputError("images is empty or contains NaN/inf")
    return images.detach()


def _check_perturbation(perturbation: Any) -> str:
    key = str(perturbation).strip().lower()
    if key not in PERTURBATIONS:
        raise InputError(f"perturbation must be one of {', '.join(PERTURBATIONS)}, got {perturbation!r}")
    return key


def _perturbed(x, mask, mode: str, perturbation: str, value: Any, blur_sigma: float, road_noise: float,
               seed: int, fill):
    """``x`` with the masked pixels removed (deletion) or only the masked pixels kept (insertion)."""
    torch = _torch()
    if mode not in ("deletion", "insertion"):
        raise InputError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    keep_orig = ~mask if mode == "deletion" else mask
    if perturbation == "road":
        xs = x.detach().cpu().double().numpy()
        km = keep_orig[:, 0].cpu().numpy()
        out = np.stack([road_impute(xs[i], ~km[i], noise=road_noise, seed=seed + i,
                                    fill=float(value) if np.ndim(value) == 0 else 0.0)
                        for i in range(x.shape[0])])
        return torch.from_numpy(out).to(device=x.device, dtype=x.dtype)
    if fill is None:
        fill = _fill_for(x, perturbation, value, blur_sigma)
    return torch.where(keep_orig, x, fill)


@contextlib.contextmanager
def _eval_mode(net: Any) -> Iterator[None]:
    """Eval mode for one call, every module's training flag restored after (also on error).  Only
    forward passes without a graph run inside, so in-place activations stay as they are (switching them
    off, as explanations must, costs an allocation per activation; see docs/performance.md)."""
    modules = list(net.modules())
    flags = [m.training for m in modules]
    try:
        net.eval()
        yield
    finally:
        for m, f in zip(modules, flags):
            m.training = f


def _curve(kind: str, model: Any, images: Any, saliency_maps: Any, target: Any, steps: int | None,
           perturbation: str, batch_size: int, score: str, value: Any, blur_sigma: float, patch: int,
           road_noise: float, seed: int) -> CurveResult:
    torch = _torch()
    from ..attribution import Target, check_images, select_scores, target_scores, unwrap_model

    net = unwrap_model(model)
    x = check_images(images, net)
    B, C, H, W = x.shape
    sal = _saliency_array(saliency_maps, B, (H, W))
    steps = min(100, H * W) if steps is None else check_int("steps", steps)
    if steps > H * W:
        raise InputError(f"steps={steps} is more than the {H * W} pixels of the image; use at most {H * W}")
    batch_size = check_int("batch_size", batch_size)
    patch = check_int("patch", patch)
    perturbation = _check_perturbation(perturbation)
    if score not in ("probability", "logit"):
        raise InputError(f"score must be 'probability' (softmax) or 'logit', got {score!r}")
    blur_sigma = check_real("blur_sigma", blur_sigma, minimum=0)
    road_noise = check_real("road_noise", road_noise, minimum=0)
    counts = np.round(np.arange(steps + 1) * (H * W) / steps).astype(np.int64)
    fractions = counts / float(H * W)
    rank = torch.from_numpy(_ranks(sal, patch)).to(x.device)
    counts_t = torch.from_numpy(counts).to(x.device)
    tgt = Target.parse(target, B)
    n_total = B * (steps + 1)
    scores = np.empty(n_total, dtype=np.float64)
    fill = None if perturbation == "road" else _fill_for(x, perturbation, value, blur_sigma)
    with _eval_mode(net), torch.no_grad():
        out0 = net(x)
        _, idx = select_scores(out0, tgt, B)
        for s in range(0, n_total, batch_size):
            e = min(n_total, s + batch_size)
            pairs = torch.arange(s, e, device=x.device)
            bi, ki = pairs // (steps + 1), pairs % (steps + 1)
            mask = (rank[bi] < counts_t[ki][:, None]).view(-1, 1, H, W)
            if perturbation == "road":
                # one imputation and one noise seed per (image, step), independent of the batching
                xs = torch.stack([
                    _perturbed(x[b:b + 1], mask[j:j + 1], kind, perturbation, value, blur_sigma, road_noise,
                               seed * 1_000_003 + b * (steps + 1) + k, None)[0]
                    for j, (b, k) in enumerate(zip(bi.tolist(), ki.tolist()))
                ])
            else:
                xs = _perturbed(x[bi], mask, kind, perturbation, value, blur_sigma, road_noise, seed, fill[bi])
            out = net(xs)
            sc = target_scores(out, tgt, None if idx is None else idx[bi.to(idx.device)].cpu(), e - s,
                               probabilities=score == "probability")
            scores[s:e] = sc.detach().double().cpu().numpy()
    scores = scores.reshape(B, steps + 1)
    if not np.isfinite(scores).all():
        raise ModelError("the model produced non-finite scores on the perturbed images")
    auc = np.trapezoid(scores, fractions, axis=1) if hasattr(np, "trapezoid") else np.trapz(scores, fractions, axis=1)
    return CurveResult(
        kind=kind, fractions=fractions, scores=scores.astype(np.float32), auc=np.asarray(auc, np.float64),
        targets=None if idx is None else idx.detach().cpu().numpy().astype(np.int64),
        perturbation=perturbation, score="callable" if tgt.kind == "callable" else score,
        params={"steps": steps, "patch": patch, "value": value, "blur_sigma": blur_sigma,
                "road_noise": road_noise, "seed": seed, "batch_size": batch_size},
    )


_CURVE_DOC = """

    Parameters
    ----------
    model: an ``nn.Module`` or a :class:`~salience.explain.LoadedModel`; never modified (its mode and
        flags are restored).
    images: float ``(B, C, H, W)`` tensor in the model's preprocessing; never modified.
    saliency_maps: ``(B, H, W)`` (or ``(H, W)`` for one image) array or tensor at the input's size, or an
        :class:`~salience.explain.Explanation`.  Higher = more important; pixels are taken in order of
        decreasing value, ties in raster order.
    target: ``None`` (the top-1 class of the unperturbed image), a class index, one index per image,
        ``"top-k"``, or a callable on the model output returning ``(B,)`` scores (then its value is the
        curve, whatever ``score`` says) -- the same conventions as :func:`salience.explain`.  The class is
        fixed on the original image and kept for every step.
    steps: number of steps (default ``None``: 100, or ``H * W`` for smaller images); step ``k`` changes
        ``round(k * H * W / steps)`` pixels, so the curve has ``steps + 1`` points from fraction 0 to 1.
    perturbation: how a removed pixel is filled, in the model's input space:
        ``"constant"`` -- ``value`` (default 0, the data set mean after ImageNet normalisation; one number
        or one per channel);
        ``"blur"`` -- the same pixel of a Gaussian blur of the input (``blur_sigma`` pixels, default 5,
        truncated at 3 sigma, reflected borders; Petsiuk et al. use an 11-tap kernel of sigma 5);
        ``"road"`` -- ROAD's noisy linear imputation from the pixels still present
        (:func:`road_impute`, noise ``road_noise`` = 0.01 in input units); one sparse solve per step and
        image on the CPU, so much slower (seconds per curve at 224 x 224).
    batch_size: perturbed images per forward pass (bounds memory; results do not depend on it).
    score: ``"probability"`` (softmax of the output, the papers' choice) or ``"logit"``.
    patch: rank ``patch x patch`` cells by their mean saliency instead of single pixels.
    seed: the ROAD noise seed (deterministic for a seed).

    Returns
    -------
    CurveResult: ``fractions`` ``(steps + 1,)``, ``scores`` float32 ``(B, steps + 1)``, ``auc`` ``(B,)``
    by the trapezoid rule over ``fractions`` in ``[0, 1]``, ``targets``.
"""


def deletion_curve(model: Any, images: Any, saliency_maps: Any, target: Any = None, *, steps: int | None = None,
                   perturbation: str = "constant", batch_size: int = 32, score: str = "probability",
                   value: Any = 0.0, blur_sigma: float = 5.0, patch: int = 1, road_noise: float = ROAD_NOISE,
                   seed: int = 0) -> CurveResult:
    """Deletion curve and its AUC (Petsiuk et al., BMVC 2018): remove the most salient pixels first.

    Starting from the image, the most salient pixels are replaced by the perturbation, step by step,
    until none of the original is left; the model's probability of the target class is recorded at each
    step (including the untouched image at fraction 0).  Lower AUC = a more faithful map.  All
    ``B * (steps + 1)`` perturbed images go through the model in batches of ``batch_size``.

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 3))
    >>> x, s = torch.rand(2, 3, 4, 4), torch.rand(2, 4, 4)
    >>> r = deletion_curve(net, x, s, steps=8)
    >>> r.scores.shape, r.auc.shape, r.fractions[[0, -1]].tolist()
    ((2, 9), (2,), [0.0, 1.0])
    """
    return _curve("deletion", model, images, saliency_maps, target, steps, perturbation, batch_size, score,
                  value, blur_sigma, patch, road_noise, seed)


def insertion_curve(model: Any, images: Any, saliency_maps: Any, target: Any = None, *, steps: int | None = None,
                    perturbation: str = "blur", batch_size: int = 32, score: str = "probability",
                    value: Any = 0.0, blur_sigma: float = 5.0, patch: int = 1, road_noise: float = ROAD_NOISE,
                    seed: int = 0) -> CurveResult:
    """Insertion curve and its AUC (Petsiuk et al., BMVC 2018): add the most salient pixels first.

    Starting from the fully perturbed image (by default a blur, as in the paper), the most salient
    original pixels are put back step by step until the whole image is restored.  Higher AUC = a more
    faithful map.  Same batching as :func:`deletion_curve`.

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 3))
    >>> r = insertion_curve(net, torch.rand(1, 3, 4, 4), torch.rand(4, 4), steps=4, perturbation="constant")
    >>> r.scores.shape
    (1, 5)
    """
    return _curve("insertion", model, images, saliency_maps, target, steps, perturbation, batch_size, score,
                  value, blur_sigma, patch, road_noise, seed)


deletion_curve.__doc__ += _CURVE_DOC
insertion_curve.__doc__ += _CURVE_DOC


# ======================================================================================================
# Similarity of maps
# ======================================================================================================


def _pair(a: Any, b: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(getattr(a, "detach", lambda: a)().cpu().numpy() if hasattr(a, "detach") else a, np.float64)
    b = np.asarray(getattr(b, "detach", lambda: b)().cpu().numpy() if hasattr(b, "detach") else b, np.float64)
    if a.shape != b.shape or a.ndim != 2 or a.size == 0:
        raise InputError(f"{name} needs two 2-D maps of the same shape, got {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise InputError(f"{name}: the maps contain NaN or infinite values")
    return a, b


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; a constant vector has none: 1.0 if both are constant, else 0.0."""
    a = a - a.mean()
    b = b - b.mean()
    na, nb = float(np.sqrt((a * a).sum())), float(np.sqrt((b * b).sum()))
    sa, sb = na <= 1e-12 * max(1.0, a.size), nb <= 1e-12 * max(1.0, b.size)
    if sa or sb:
        return 1.0 if (sa and sb) else 0.0
    return float(np.clip((a * b).sum() / (na * nb), -1.0, 1.0))


def spearman(a: Any, b: Any, *, absolute: bool = False) -> float:
    """Spearman rank correlation of two maps (Pearson correlation of their ranks; ties share the mean
    rank), in ``[-1, 1]``.  ``absolute=True`` ranks ``|a|`` and ``|b|`` (Adebayo et al. 2018 report both).

    A constant map has no ranking: the result is 0.0 against a non-constant map and 1.0 against another
    constant map (documented, never NaN).

    >>> round(spearman([[1, 2], [3, 4]], [[10, 20], [30, 45]]), 6)
    1.0
    """
    a, b = _pair(a, b, "spearman")
    if absolute:
        a, b = np.abs(a), np.abs(b)
    return _pearson(_rankdata(a.ravel()), _rankdata(b.ravel()))


def _rankdata(v: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing the mean of their ranks (scipy.stats.rankdata's "average")."""
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + 1 + ends) / 2.0)[inverse.ravel()]


def ssim(a: Any, b: Any, *, window: str = "uniform", data_range: float | None = None, win_size: int = 7,
         sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> float:
    """Mean structural similarity (Wang, Bovik, Sheikh & Simoncelli, IEEE TIP 13(4), 2004) of two maps.

    ``SSIM = ((2 mu_a mu_b + C1)(2 s_ab + C2)) / ((mu_a^2 + mu_b^2 + C1)(s_a^2 + s_b^2 + C2))`` with
    local means, variances and covariance from a sliding window, ``C1 = (k1 L)^2``, ``C2 = (k2 L)^2`` and
    ``L = data_range`` (default: ``max - min`` over both maps; 1 for maps in ``[0, 1]``), averaged over
    the positions where the window lies inside the image.

    ``window="uniform"``: a ``win_size x win_size`` box (default 7) with unbiased (n - 1) local
    variances -- scikit-image's default.  ``window="gaussian"``: the paper's 11 x 11 Gaussian of
    ``sigma`` = 1.5 with plain (biased) moments -- scikit-image's ``gaussian_weights=True``.  Borders are
    reflected before filtering and the ``(win - 1) / 2`` outer rows and columns are left out of the mean.
    Result in ``[-1, 1]``; 1 for identical maps.

    >>> import numpy as np
    >>> a = np.random.default_rng(0).random((16, 16))
    >>> ssim(a, a), ssim(a, 1 - a, data_range=1.0) < 0
    (1.0, True)
    """
    from scipy import ndimage

    a, b = _pair(a, b, "ssim")
    if window == "uniform":
        win_size = check_int("win_size", win_size, 3)
        if win_size % 2 == 0:
            raise InputError(f"win_size must be odd, got {win_size}")

        def filt(t: np.ndarray) -> np.ndarray:
            return ndimage.uniform_filter(t, size=win_size, mode="reflect")

        n = win_size * win_size
        cov_norm = n / (n - 1.0)
        pad = (win_size - 1) // 2
    elif window == "gaussian":
        sigma = check_real("sigma", sigma, minimum=0, strict=True)
        truncate = 3.5
        pad = int(truncate * sigma + 0.5)

        def filt(t: np.ndarray) -> np.ndarray:
            return ndimage.gaussian_filter(t, sigma=sigma, truncate=truncate, mode="reflect")

        cov_norm = 1.0
    else:
        raise InputError(f"window must be 'uniform' or 'gaussian', got {window!r}")
    if min(a.shape) < 2 * pad + 1:
        raise InputError(f"ssim needs maps of at least {2 * pad + 1} x {2 * pad + 1} pixels, got {a.shape}")
    if data_range is None:
        data_range = float(max(a.max(), b.max()) - min(a.min(), b.min())) or 1.0
    L = check_real("data_range", data_range, minimum=0, strict=True)
    ma, mb = filt(a), filt(b)
    va = cov_norm * (filt(a * a) - ma * ma)
    vb = cov_norm * (filt(b * b) - mb * mb)
    vab = cov_norm * (filt(a * b) - ma * mb)
    c1, c2 = (k1 * L) ** 2, (k2 * L) ** 2
    s = ((2 * ma * mb + c1) * (2 * vab + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
    inner = s[pad:s.shape[0] - pad, pad:s.shape[1] - pad]
    return float(inner.mean())


def hog(image: Any, *, orientations: int = 9, pixels_per_cell: int = 8, cells_per_block: int = 3,
        eps: float = 1e-5) -> np.ndarray:
    """Histogram of oriented gradients of a 2-D map (Dalal & Triggs, CVPR 2005), as a flat vector.

    Centred differences ``[-1, 0, 1]`` (zero on the outer rows/columns); unsigned orientation in
    ``[0, 180)`` degrees, ``orientations`` equal bins, each pixel voting its gradient magnitude into its
    bin (hard assignment; Dalal & Triggs also interpolate between bins and cells); cell histograms of
    ``pixels_per_cell`` squared pixels divided by the cell's area (the leftover rows/columns are
    dropped); overlapping blocks of ``cells_per_block`` squared cells, stride one cell, normalised by
    L2-Hys (L2, clip at 0.2, L2 again, with ``eps``).  These are scikit-image's ``feature.hog``
    conventions, and the tests compare the two.

    >>> import numpy as np
    >>> hog(np.random.default_rng(0).random((32, 32))).shape   # 2 x 2 blocks of 3 x 3 cells x 9 bins
    (324,)
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise InputError(f"hog needs a 2-D map, got shape {img.shape}")
    orientations = check_int("orientations", orientations)
    c = check_int("pixels_per_cell", pixels_per_cell)
    bcell = check_int("cells_per_block", cells_per_block)
    H, W = img.shape
    nr, nc = H // c, W // c
    if nr < bcell or nc < bcell:
        raise InputError(
            f"a {H} x {W} map has {nr} x {nc} cells of {c} px, fewer than one block of {bcell} x {bcell} cells; "
            "use a smaller pixels_per_cell or cells_per_block"
        )
    gr = np.zeros_like(img)
    gc = np.zeros_like(img)
    gr[1:-1, :] = img[2:, :] - img[:-2, :]
    gc[:, 1:-1] = img[:, 2:] - img[:, :-2]
    mag = np.hypot(gr, gc)
    ang = np.rad2deg(np.arctan2(gr, gc)) % 180.0
    width = 180.0 / orientations
    bins = np.minimum((ang / width).astype(np.int64), orientations - 1)
    # exact bin edges: a value on an edge belongs to the upper bin
    edge_up = ang >= (bins + 1) * width
    bins = np.where(edge_up & (bins < orientations - 1), bins + 1, bins)
    mag_c = mag[:nr * c, :nc * c]
    bins_c = bins[:nr * c, :nc * c]
    cell_id = (np.arange(nr * c)[:, None] // c) * nc + (np.arange(nc * c)[None, :] // c)
    flat_index = (cell_id * orientations + bins_c).ravel()
    hist = np.bincount(flat_index, weights=mag_c.ravel(), minlength=nr * nc * orientations)
    hist = hist.reshape(nr, nc, orientations) / float(c * c)
    nbr, nbc = nr - bcell + 1, nc - bcell + 1
    blocks = np.empty((nbr, nbc, bcell, bcell, orientations))
    for i in range(bcell):
        for j in range(bcell):
            blocks[:, :, i, j, :] = hist[i:i + nbr, j:j + nbc, :]
    flat = blocks.reshape(nbr, nbc, -1)
    flat = flat / np.sqrt((flat ** 2).sum(axis=-1, keepdims=True) + eps ** 2)
    flat = np.minimum(flat, 0.2)
    flat = flat / np.sqrt((flat ** 2).sum(axis=-1, keepdims=True) + eps ** 2)
    return flat.ravel()


def hog_similarity(a: Any, b: Any, **hog_params: Any) -> float:
    """Pearson correlation of the :func:`hog` vectors of two maps (Adebayo et al. 2018), in ``[-1, 1]``.

    A constant HOG vector (a flat map) correlates 0.0 with a non-constant one, 1.0 with another constant.

    >>> import numpy as np
    >>> a = np.random.default_rng(0).random((32, 32))
    >>> round(hog_similarity(a, 2 * a + 1), 6)
    1.0
    """
    a, b = _pair(a, b, "hog_similarity")
    return _pearson(hog(a, **hog_params), hog(b, **hog_params))


def _unit(m: np.ndarray) -> np.ndarray:
    lo, hi = float(m.min()), float(m.max())
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)


def map_similarity(original: Any, other: Any, *, signed_original: Any = None, signed_other: Any = None,
                   metrics: Sequence[str] = SIMILARITY_METRICS, hog_cell: int | None = None) -> dict[str, float]:
    """The sanity-check similarities of two maps, as Adebayo et al. (2018) compute them.

    ``spearman``: rank correlation of the signed maps (``signed_*``; the maps themselves when not given);
    ``spearman_abs``: rank correlation of the absolute maps; ``ssim`` (uniform 7 x 7 window) and ``hog``
    (HOG Pearson correlation) on the absolute maps min-max scaled to ``[0, 1]`` (``data_range`` 1).
    ``hog_cell``: HOG cell size in pixels (default ``max(4, min(H, W) // 28)``, 8 px at 224).

    Examples
    --------
    >>> import numpy as np
    >>> from salience.audit import map_similarity
    >>> a = np.random.default_rng(0).random((32, 32))
    >>> s = map_similarity(a, a)
    >>> sorted(s), round(s["spearman"], 6), round(s["ssim"], 6)
    (['hog', 'spearman', 'spearman_abs', 'ssim'], 1.0, 1.0)
    """
    a, b = _pair(original, other, "map_similarity")
    sa = a if signed_original is None else _pair(signed_original, a, "map_similarity")[0]
    sb = b if signed_other is None else _pair(signed_other, b, "map_similarity")[0]
    ua, ub = _unit(np.abs(a)), _unit(np.abs(b))
    out: dict[str, float] = {}
    for m in metrics:
        if m == "spearman":
            out[m] = spearman(sa, sb)
        elif m == "spearman_abs":
            out[m] = spearman(a, b, absolute=True)
        elif m == "ssim":
            out[m] = ssim(ua, ub, data_range=1.0)
        elif m == "hog":
            cell = hog_cell or max(4, min(a.shape) // 28)
            bl = 3 if min(a.shape) // cell >= 3 else 1
            out[m] = hog_similarity(ua, ub, pixels_per_cell=cell, cells_per_block=bl)
        else:
            raise InputError(f"unknown similarity metric {m!r}; choose from {', '.join(SIMILARITY_METRICS)}")
    return out


# ======================================================================================================
# Model-parameter randomisation
# ======================================================================================================


def randomization_layers(model: Any) -> list[str]:
    """The layers a sanity check randomises, in forward (registration) order, input first.

    The model's top-level children that hold parameters; a child that is an ``nn.Sequential`` or
    ``nn.ModuleList`` (MobileNetV2's ``features``, a ResNet's ``layer1``) is replaced by its own children
    that hold parameters.  MobileNetV2 gives ``features.0`` ... ``features.18``, ``classifier.1``.
    Randomisation goes through them in reverse (from the logits down).

    Examples
    --------
    >>> import torch
    >>> from salience.audit import randomization_layers
    >>> randomization_layers(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1)))
    ['0', '2']
    """
    torch = _torch()
    from ..attribution import unwrap_model

    net = unwrap_model(model)
    nn = torch.nn
    out: list[str] = []

    def has_params(m: Any) -> bool:
        return any(True for _ in m.parameters())

    for name, child in net.named_children():
        if not has_params(child):
            continue
        if isinstance(child, (nn.Sequential, nn.ModuleList)):
            out += [f"{name}.{n}" for n, g in child.named_children() if has_params(g)]
        else:
            out.append(name)
    if not out and has_params(net):
        out = [n for n, m in net.named_modules() if n and any(True for _ in m.parameters(recurse=False))]
    return out


def _layer_seed(seed: int, name: str) -> int:
    return (int(seed) * 1_000_003 + zlib.crc32(name.encode())) % (2 ** 63)


def _reinitialize(net: Any, name: str, seed: int, init: str, std: float) -> None:
    """Re-initialise the parameters of ``net``'s layer ``name`` in place (``net`` is our copy)."""
    torch = _torch()
    module = dict(net.named_modules())[name]
    devices = sorted({p.device.index or 0 for p in module.parameters() if p.is_cuda})
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(_layer_seed(seed, name))
        if init == "default":
            for m in module.modules():
                if callable(getattr(m, "reset_parameters", None)):
                    m.reset_parameters()
                elif any(True for _ in m.parameters(recurse=False)):
                    for p in m.parameters(recurse=False):
                        torch.nn.init.trunc_normal_(p, 0.0, std, -2 * std, 2 * std)
        else:
            for p in module.parameters():
                torch.nn.init.trunc_normal_(p, 0.0, std, -2 * std, 2 * std)


@dataclass
class SanityResult:
    """The outcome of :func:`sanity_check`.

    Attributes
    ----------
    mode: ``"cascading"`` or ``"independent"``.
    stages: stage labels: ``"original"``, then the layer randomised at each stage (cascading: this layer
        and every one listed before it).
    methods: the method names.
    maps: ``method -> float32 (S + 1, B, H, W)``: the absolute maps (Adebayo's "absolute value" view,
        ``sum_c |attributions|`` for pixel methods, the map itself for CAMs), each scaled to ``[0, 1]``.
    similarity: ``method -> metric -> float64 (S + 1, B)``: the similarity of each stage's map to the
        original (stage 0 is the original against itself).
    targets: int64 ``(B,)`` (``None`` for a callable target).
    notes: what happened on the way (e.g. a stage whose map was blank).

    Examples
    --------
    >>> import torch
    >>> from salience.audit import SanityResult, sanity_check
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> r = sanity_check(net, torch.rand(1, 3, 16, 16), ["gradient"], target=0)
    >>> isinstance(r, SanityResult), r.stages, r.maps["gradient"].shape, sorted(r.similarity["gradient"])
    (True, ['original', '4', '0'], (3, 1, 16, 16), ['hog', 'spearman', 'spearman_abs', 'ssim'])
    """

    mode: str
    stages: list[str]
    methods: list[str]
    maps: dict[str, np.ndarray]
    similarity: dict[str, dict[str, np.ndarray]]
    targets: np.ndarray | None
    metrics: tuple[str, ...] = SIMILARITY_METRICS
    notes: list[str] = field(default_factory=list)

    def final(self) -> dict[str, dict[str, float]]:
        """``method -> metric -> value`` at the last stage, averaged over the images."""
        return {m: {k: float(v[-1].mean()) for k, v in sims.items()} for m, sims in self.similarity.items()}

    def table(self, metric: str | None = None, fmt: str = "{:.3f}") -> str:
        """A text table: one row per stage; columns ``method:metric`` (all metrics, or only ``metric``)."""
        metrics = [metric] if metric else list(self.metrics)
        cols = [(m, k) for m in self.methods for k in metrics]
        head = ["stage"] + [f"{m}:{k}" if len(metrics) > 1 else m for m, k in cols]
        rows = [[s] + [fmt.format(self.similarity[m][k][i].mean()) for m, k in cols]
                for i, s in enumerate(self.stages)]
        widths = [max(len(str(r[j])) for r in [head] + rows) for j in range(len(head))]
        lines = ["  ".join(str(c).ljust(widths[j]) if j == 0 else str(c).rjust(widths[j])
                           for j, c in enumerate(r)) for r in [head] + rows]
        return "\n".join(lines)


def _views(e: Any, B: int) -> tuple[np.ndarray, np.ndarray]:
    """(absolute map, signed map) float64 (B, H, W) of an Explanation, as Adebayo et al. view them."""
    attr = e.extras.get("attributions") if hasattr(e, "extras") else None
    if attr is not None and attr.ndim == 4:
        a = attr.detach().double().cpu()
        return a.abs().sum(dim=1).numpy(), a.sum(dim=1).numpy()
    m = e.maps.detach().double().cpu().numpy()
    return np.abs(m), m


def _original_explanations(model: Any, net: Any, x: Any, names: list[str], target: Any, layer: Any,
                           params: dict[str, dict[str, Any]]) -> tuple[dict, dict, Any, Any]:
    """The explanations of the intact model (on the caller's model: explain restores what it touches):
    per method its (absolute, signed) views and the layer it used; the class indices of the first method
    that has them, and the target to keep for every stage (those indices, unless ``target`` is a callable)."""
    torch = _torch()
    from ..attribution import explain, method_layer
    from ..registry import get_method

    B = x.shape[0]
    originals: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    layers_used: dict[str, Any] = {}
    targets = None
    fixed_target: Any = target
    for name in names:
        # the layer as explain() would choose it for the caller's model; pixel methods get none
        m_layer = method_layer(name, model, layer if get_method(name).takes_layer else None)
        e = explain(net, x, method=name, target=fixed_target, layer=m_layer, **params.get(name, {}))
        if targets is None and e.targets is not None:
            targets = e.targets.detach().cpu().long()
            if not callable(target) or isinstance(target, (str, torch.Tensor)):
                fixed_target = targets.clone()
        originals[name] = _views(e, B)
        layers_used[name] = e.layer
    return originals, layers_used, targets, fixed_target


def sanity_check(model: Any, images: Any, methods: Sequence[str] | str = ("gradient", "guided-backprop", "gradcam"),
                 target: Any = None, *, mode: str = "cascading", layers: Sequence[str] | None = None,
                 stages: int | None = None, seed: int = 0, init: str = "default", std: float = 0.01,
                 layer: Any = None, params: dict[str, dict[str, Any]] | None = None,
                 metrics: Sequence[str] = SIMILARITY_METRICS,
                 progress: Callable[[str], None] | None = None) -> SanityResult:
    """Model-parameter randomisation test (Adebayo et al., "Sanity checks for saliency maps", NeurIPS 2018).

    A deep copy of the model is made (the caller's model is never touched).  Its layers
    (:func:`randomization_layers`, or ``layers`` given input-first) are re-initialised from the top
    (logits) down: ``mode="cascading"`` keeps every earlier re-initialisation (stage ``k`` = the top ``k``
    layers random), ``"independent"`` re-initialises one layer at a time and restores it afterwards.
    After each stage every method is recomputed for the same images and the same target (the original
    model's top-1 class unless ``target`` says otherwise; CAMs at the layer the original used), and
    :func:`map_similarity` compares the new map with the original one.

    Parameters
    ----------
    model: ``nn.Module`` or :class:`~salience.explain.LoadedModel`.  images: ``(B, C, H, W)`` tensor in
        the model's preprocessing.  methods: explanation method names (registry), list or comma string.
    stages: randomise only the top ``stages`` layers (default: all).
    seed: each layer's new values come from ``torch.manual_seed`` of a number made from ``seed`` and the
        layer's name, so a layer gets the same values in both modes and in every run; the global RNG
        state is left as it was.
    init: ``"default"`` -- each sub-module's own ``reset_parameters()`` (PyTorch's initialiser for the
        layer type; BatchNorm becomes weight 1, bias 0, running mean 0, variance 1), a truncated normal
        ``N(0, std)`` for parameters of modules without one; ``"normal"`` -- every parameter from a normal of
        standard deviation ``std`` (default 0.01) truncated at 2 ``std``, as in Adebayo et al.
    layer, params: the CAM layer (default: what the original explanation chose) and per-method
        parameters ``{"smoothgrad": {"n": 16}}``.
    progress: called with a short text before each stage (the CLI's progress line).

    Returns
    -------
    SanityResult (``.table()``, ``.final()``, ``.maps``, ``.similarity``).

    A randomised model can kill every gradient at a CAM layer; that stage's map is then blank (all zeros,
    similarity 0 by the constant-map rule) and a note says so, instead of an error.

    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...                           torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.ReLU(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> r = sanity_check(net, torch.rand(1, 3, 16, 16), ["gradient"])
    >>> r.stages
    ['original', '6', '2', '0']
    >>> round(r.final()["gradient"]["spearman_abs"], 3) < 1.0
    True
    """
    _torch()  # MissingDependencyError (with the install command) without torch
    from ..attribution import check_images, explain, unwrap_model
    from ..registry import EXPLANATION, method_list

    names = method_list(methods, EXPLANATION, wrong_kind_hint="; sanity checks randomise a model's parameters")
    check_choice("mode", mode, ("cascading", "independent"))
    check_choice("init", init, ("default", "normal"))
    std = check_real("std", std, minimum=0, strict=True)
    for k in metrics:
        if k not in SIMILARITY_METRICS:
            raise InputError(f"unknown similarity metric {k!r}; choose from {', '.join(SIMILARITY_METRICS)}")
    params = dict(params or {})
    net = unwrap_model(model)
    x = check_images(images, net).clone()
    B = x.shape[0]
    all_layers = list(layers) if layers is not None else randomization_layers(net)
    known = dict(net.named_modules())
    for name in all_layers:
        if name not in known or not name:
            raise ModelError(f"the model has no layer named {name!r} to randomise")
    if not all_layers:
        raise ModelError("the model has no parameters to randomise")
    order = list(reversed(all_layers))
    if stages is not None:
        order = order[:check_int("stages", stages)]

    # the original explanations (on the caller's model: explain restores everything it touches)
    originals, layers_used, targets, fixed_target = _original_explanations(model, net, x, names, target, layer,
                                                                            params)
    work = copy.deepcopy(net)
    saved: dict[str, dict[str, Any]] = {}
    maps = {n: [np.stack([_unit(v) for v in originals[n][0]])] for n in names}
    sims: dict[str, dict[str, list[np.ndarray]]] = {n: {k: [np.ones(B)] for k in metrics} for n in names}
    notes: list[str] = []
    for i, lname in enumerate(order):
        if progress is not None:
            progress(f"{mode} {i + 1}/{len(order)}: {lname}")
        if mode == "independent":
            mod = dict(work.named_modules())[lname]
            saved = {k: v.detach().clone() for k, v in mod.state_dict().items()}
        _reinitialize(work, lname, seed, init, std)
        for name in names:
            try:
                e = explain(work, x, method=name, target=fixed_target, layer=layers_used[name] or None,
                            **params.get(name, {}))
                ab, sg = _views(e, B)
            except ZeroGradientError as exc:
                notes.append(f"{name} after randomising {lname}: blank map ({str(exc).split(';')[0]})")
                ab = np.zeros_like(originals[name][0])
                sg = np.zeros_like(originals[name][1])
            maps[name].append(np.stack([_unit(v) for v in ab]))
            vals = [map_similarity(originals[name][0][b], ab[b], signed_original=originals[name][1][b],
                                   signed_other=sg[b], metrics=metrics) for b in range(B)]
            for k in metrics:
                sims[name][k].append(np.array([v[k] for v in vals]))
        if mode == "independent":
            dict(work.named_modules())[lname].load_state_dict(saved)
    return SanityResult(
        mode=mode, stages=["original"] + order, methods=names,
        maps={n: np.stack(v).astype(np.float32) for n, v in maps.items()},
        similarity={n: {k: np.stack(v) for k, v in d.items()} for n, d in sims.items()},
        targets=None if targets is None else targets.numpy().astype(np.int64),
        metrics=tuple(metrics), notes=notes,
    )


# ======================================================================================================
# Figures
# ======================================================================================================


def _display(m: np.ndarray) -> np.ndarray:
    """A map for display: divided by its 99th percentile and clipped to [0, 1] (as Adebayo et al. show
    maps), so that sparse pixel maps stay visible; the numbers never use this."""
    hi = float(np.percentile(m, 99))
    return np.clip(m / hi, 0.0, 1.0) if hi > 0 else np.clip(m, 0.0, 1.0)


def _figure_to_array(fig: Any) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.ascontiguousarray(np.asarray(canvas.buffer_rgba())[:, :, :3])


def _have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def curves_figure(deletion: dict[str, CurveResult], insertion: dict[str, CurveResult], *, index: int = 0,
                  title: str = "") -> np.ndarray:
    """Deletion (left) and insertion (right) curves of several methods for image ``index`` of the batch,
    AUCs in the legend: uint8 RGB ``(h, w, 3)``.  matplotlib when installed, else drawn with OpenCV.

    Examples
    --------
    >>> import torch
    >>> from salience.audit import curves_figure, deletion_curve, insertion_curve
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> x, m = torch.rand(1, 3, 16, 16), torch.rand(1, 16, 16)
    >>> fig = curves_figure({"random": deletion_curve(net, x, m, target=0, steps=4)},
    ...                     {"random": insertion_curve(net, x, m, target=0, steps=4)})
    >>> fig.dtype, fig.ndim, fig.shape[2]
    (dtype('uint8'), 3, 3)
    """
    if _have_matplotlib():
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10, 4), dpi=100)
        for j, (label, curves) in enumerate((("deletion", deletion), ("insertion", insertion))):
            ax = fig.add_subplot(1, 2, j + 1)
            for name, r in curves.items():
                ax.plot(r.fractions, r.scores[index], label=f"{name} (AUC {r.auc[index]:.3f})")
            some = next(iter(curves.values()), None)
            ylabel = "probability" if some is None or some.score == "probability" else some.score
            ax.set_xlabel(f"fraction of pixels {'removed' if label == 'deletion' else 'inserted'}")
            ax.set_ylabel(f"target {ylabel}")
            pert = f" ({some.perturbation})" if some is not None else ""
            ax.set_title(f"{label}{pert}")
            ax.set_xlim(0, 1)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        return _figure_to_array(fig)
    return _cv2_curves([deletion, insertion], index, title)


def _cv2_curves(groups: list[dict[str, CurveResult]], index: int, title: str) -> np.ndarray:
    import cv2

    colours = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]
    panels = []
    for curves in groups:
        img = np.full((300, 420, 3), 255, np.uint8)
        cv2.rectangle(img, (40, 20), (400, 260), (0, 0, 0), 1)
        hi = max([float(r.scores[index].max()) for r in curves.values()] + [1e-9])
        for c, (name, r) in enumerate(curves.items()):
            pts = np.stack([40 + r.fractions * 360, 260 - r.scores[index] / hi * 240], 1).astype(np.int32)
            col = colours[c % len(colours)]
            cv2.polylines(img, [pts], False, col, 2)
            cv2.putText(img, f"{name} {r.auc[index]:.3f}", (50, 40 + 16 * c), cv2.FONT_HERSHEY_SIMPLEX, 0.4, col, 1)
        kind = next(iter(curves.values())).kind if curves else ""
        cv2.putText(img, f"{kind} {title}", (40, 285), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
        panels.append(img)
    return np.concatenate(panels, axis=1)


def sanity_figure(result: SanityResult, *, index: int = 0, image: Any = None, metric: str = "spearman_abs",
                  max_columns: int = 12) -> np.ndarray:
    """The sanity check as a figure, uint8 RGB ``(h, w, 3)``: a grid of maps (rows = methods, columns =
    randomisation stages, at most ``max_columns`` evenly spread, the last always shown; an optional first
    column with the input ``image``), and below it ``metric`` against the stage for every method.
    matplotlib when installed, else an OpenCV grid.

    Examples
    --------
    >>> import torch
    >>> from salience.audit import sanity_check, sanity_figure
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> fig = sanity_figure(sanity_check(net, torch.rand(1, 3, 16, 16), ["gradient"], target=0))
    >>> fig.dtype, fig.ndim, fig.shape[2]
    (dtype('uint8'), 3, 3)
    """
    S = len(result.stages)
    cols = sorted(set(np.linspace(0, S - 1, min(S, max_columns)).round().astype(int).tolist()))
    if _have_matplotlib():
        from matplotlib.figure import Figure

        ncol = len(cols) + (image is not None)
        nrow = len(result.methods)
        fig = Figure(figsize=(1.3 * ncol + 0.6, 1.35 * nrow + 3.0), dpi=100)
        gs = fig.add_gridspec(nrow + 1, ncol, height_ratios=[1] * nrow + [2.0])
        for r, name in enumerate(result.methods):
            off = 0
            if image is not None:
                ax = fig.add_subplot(gs[r, 0])
                ax.imshow(np.clip(np.asarray(image), 0, 1))
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_ylabel(name, fontsize=8)
                off = 1
            for c, s in enumerate(cols):
                ax = fig.add_subplot(gs[r, c + off])
                ax.imshow(_display(result.maps[name][s, index]), cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title(result.stages[s], fontsize=7, rotation=45 if len(result.stages[s]) > 8 else 0)
                if c + off == 0:
                    ax.set_ylabel(name, fontsize=8)
        ax = fig.add_subplot(gs[nrow, :])
        xs = np.arange(S)
        for name in result.methods:
            ax.plot(xs, result.similarity[name][metric][:, index], marker="o", ms=3, label=name)
        ax.set_xticks(xs)
        ax.set_xticklabels(result.stages, rotation=60, fontsize=7)
        ax.set_ylabel(metric)
        ax.set_ylim(min(-0.1, float(min(result.similarity[n][metric][:, index].min() for n in result.methods))), 1.05)
        ax.axhline(0, color="k", lw=0.5)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title(f"{result.mode} randomisation: {metric} to the original map")
        fig.tight_layout()
        return _figure_to_array(fig)
    import cv2

    tile = 96
    rows = []
    for name in result.methods:
        tiles = [cv2.resize((_display(result.maps[name][s, index]) * 255).astype(np.uint8), (tile, tile))
                 for s in cols]
        row = cv2.cvtColor(np.concatenate(tiles, axis=1), cv2.COLOR_GRAY2RGB)
        cv2.putText(row, name, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 0, 0), 1)
        rows.append(row)
    grid = np.concatenate(rows, axis=0)
    plot = np.full((200, grid.shape[1], 3), 255, np.uint8)
    w = grid.shape[1]
    for c, name in enumerate(result.methods):
        v = result.similarity[name][metric][:, index]
        pts = np.stack([10 + np.arange(S) / max(1, S - 1) * (w - 20), 190 - (v + 1) / 2 * 180], 1).astype(np.int32)
        col = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)][c % 4]
        cv2.polylines(plot, [pts], False, col, 2)
        cv2.putText(plot, name, (10, 14 + 14 * c), cv2.FONT_HERSHEY_SIMPLEX, 0.4, col, 1)
    return np.concatenate([grid, plot], axis=0)

