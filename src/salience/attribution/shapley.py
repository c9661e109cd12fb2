"""Shapley and surrogate explanations: GradientSHAP (expected gradients), KernelSHAP, LIME, feature
ablation.

Three of them explain *features*, groups of pixels, rather than pixels: superpixels (SLIC) or a
regular grid, made by the one helper :func:`feature_mask`.  A coalition ``z`` in ``{0, 1}^M`` keeps the
features with ``z_i = 1`` and replaces the others by a baseline; the model is evaluated on
``batch_size`` such composites per forward pass (:func:`_coalition_scores`, the one place that builds
them).  Each feature's value is then spread over its pixels: ``maps[b, y, x] = phi[features[b, y, x]]``.

* :func:`feature_ablation`: ``phi_i = f(x) - f(x with feature i replaced)`` (one feature off at a time);
* :func:`kernel_shap`: Shapley values by the Shapley-kernel weighted least squares of Lundberg & Lee
  (2017), with the efficiency constraint ``sum(phi) = f(x) - f(baseline)`` imposed exactly; all
  ``2^M - 2`` coalitions when ``n_samples`` allows (then the values are the exact Shapley values),
  else kernel-distributed coalitions in complementary pairs;
* :func:`lime`: a weighted ridge surrogate on random coalitions (Ribeiro et al. 2016);
* :func:`gradient_shap`: gradients at random points between the input and baselines drawn from a
  distribution (noise, or a set of reference images), times the input-baseline difference (Lundberg &
  Lee 2017; Erion et al. 2021's expected gradients).  Pixel-level, no features.

All four are signed, in the model's score units (raw scores, e.g. logits: positive = evidence for the
target).  Random draws come from generators seeded with ``seed``, one per image, so an image's result
never depends on its batch mates or on ``batch_size``.

>>> import torch, salience
>>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 2))
>>> e = salience.explain(net, torch.rand(1, 3, 8, 8), "kernel-shap", target=1, features="grid",
...                      n_segments=4, n_samples=14)
>>> bool(e.exact[0]), abs(float(e.values[0].sum() - (e.scores[0] - e.base_values[0]))) < 1e-6
(True, True)
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ._base import (
    Explanation,
    Target,
    check_images,
    check_positive_int,
    check_unknown,
    chunks,
    finish,
    gaussian_blur,
    pick_scores,
    raise_if_insensitive,
    select_scores,
    unwrap_model,
)
from ._hooks import scoped_model

__all__ = ["feature_mask", "feature_ablation", "kernel_shap", "lime", "gradient_shap", "FEATURES"]

#: the feature segmentations :func:`feature_mask` knows (a label tensor is accepted too)
FEATURES = ("slic", "grid")


# ------------------------------------------------------------------------------------------------------
# features: the one segmentation helper
# ------------------------------------------------------------------------------------------------------


def feature_mask(images: Any, features: Any = "slic", *, n_segments: int = 50,
                 compactness: float = 30.0) -> torch.Tensor:
    """Integer feature labels ``(B, H, W)`` for a batch of images: superpixels, a grid, or given labels.

    Parameters
    ----------
    images : torch.Tensor
        Float ``(B, C, H, W)``, in any value range (each image is min-max scaled to ``[0, 1]`` for SLIC).
    features : str or array-like
        ``"slic"``: SLIC superpixels (Achanta et al., IEEE TPAMI 34(11), 2012; scikit-image's
        ``slic``, colour in Lab for 3 channels, ``start_label=0``); ``"grid"``: a regular grid of about
        ``n_segments`` rectangular cells (rows and columns in the image's aspect ratio); or integer
        labels ``(H, W)`` (shared by the batch) or ``(B, H, W)``.
    n_segments : int
        The wanted number of features (SLIC treats it as approximate).
    compactness : float
        SLIC's balance of colour against space (higher: squarer superpixels).  SLIC runs on the image
        smoothed by a Gaussian of 1 pixel; with these defaults it returns close to ``n_segments``
        superpixels on photos and still several on noise (scikit-image's own default, 10 without
        smoothing, merges a noise image into one segment).

    Returns
    -------
    torch.Tensor
        int64 ``(B, H, W)`` on the images' device; each image's labels are ``0 .. M_b - 1``, all used
        (given labels are renumbered in increasing order).

    Examples
    --------
    >>> import torch
    >>> from salience.attribution.shapley import feature_mask
    >>> m = feature_mask(torch.rand(1, 3, 8, 12), "grid", n_segments=6)
    >>> m.shape, int(m.max()) + 1
    (torch.Size([1, 8, 12]), 6)
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise InputError("feature_mask needs images as a (B, C, H, W) tensor")
    B, C, H, W = images.shape
    if isinstance(features, str):
        key = features.strip().lower()
        n_segments = check_positive_int("n_segments", n_segments)
        if key == "grid":
            rows = min(H, max(1, round(math.sqrt(n_segments * H / W))))
            cols = min(W, max(1, round(n_segments / rows)))
            ry = torch.div(torch.arange(H) * rows, H, rounding_mode="floor")
            cx = torch.div(torch.arange(W) * cols, W, rounding_mode="floor")
            lab = (ry[:, None] * cols + cx[None, :]).expand(B, H, W).clone()
            return lab.to(images.device)
        if key == "slic":
            if not (isinstance(compactness, numbers.Real) and not isinstance(compactness, bool)
                    and math.isfinite(float(compactness)) and compactness > 0):
                raise InputError(f"compactness must be a positive number, got {compactness!r}")
            from skimage.segmentation import slic

            arr = images.detach().double().cpu().numpy()
            out = np.empty((B, H, W), dtype=np.int64)
            for b in range(B):
                img = arr[b].transpose(1, 2, 0)
                lo, hi = img.min(), img.max()
                img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
                seg = slic(img, n_segments=n_segments, compactness=float(compactness), sigma=1.0,
                           start_label=0, channel_axis=-1, convert2lab=C == 3)
                out[b] = np.unique(seg, return_inverse=True)[1].reshape(H, W)
            return torch.from_numpy(out).to(images.device)
        raise InputError(f"features must be one of {', '.join(FEATURES)} or an integer label map (H, W) / "
                         f"(B, H, W), got {features!r}")
    try:
        lab = torch.as_tensor(features if isinstance(features, torch.Tensor) else np.asarray(features))
    except (TypeError, ValueError, RuntimeError):
        raise InputError(f"features of type {type(features).__name__} is neither a segmentation name "
                         f"({', '.join(FEATURES)}) nor an integer label map") from None
    if lab.is_floating_point() or lab.is_complex() or lab.dtype == torch.bool:
        raise InputError(f"a feature label map must hold integers, got dtype {lab.dtype}")
    if lab.ndim == 2:
        lab = lab.expand(B, *lab.shape)
    if tuple(lab.shape) != (B, H, W):
        raise InputError(f"a feature label map must have shape (H, W) = {(H, W)} or (B, H, W) = {(B, H, W)}, "
                         f"got {tuple(lab.shape)}")
    out_t = torch.empty((B, H, W), dtype=torch.long)
    for b in range(B):
        out_t[b] = torch.unique(lab[b].cpu(), return_inverse=True)[1].reshape(H, W)
    return out_t.to(images.device)


def _feature_baseline(x: torch.Tensor, baseline: Any, blur_sigma: float | None) -> torch.Tensor:
    """The replacement of a switched-off feature: a number, ``"blur"``, or a tensor broadcast to ``x``."""
    if isinstance(baseline, str):
        key = baseline.strip().lower()
        if key in ("zeros", "zero"):
            return torch.zeros_like(x)
        if key == "blur":
            sigma = blur_sigma if blur_sigma is not None else 0.1 * min(x.shape[2], x.shape[3])
            if isinstance(sigma, bool) or not (isinstance(sigma, (int, float)) and sigma > 0):
                raise InputError(f"blur_sigma must be a positive number of pixels, got {blur_sigma!r}")
            return gaussian_blur(x, float(sigma), border="replicate")
        raise InputError(f"baseline must be a number, 'zeros', 'blur' or a tensor, got {baseline!r}")
    if isinstance(baseline, numbers.Real) and not isinstance(baseline, bool):
        if not math.isfinite(float(baseline)):
            raise InputError(f"baseline must be finite, got {baseline!r}")
        return torch.full_like(x, float(baseline))
    if isinstance(baseline, torch.Tensor):
        b = baseline.detach().to(device=x.device, dtype=x.dtype)
        try:
            return torch.broadcast_to(b, x.shape).clone()
        except RuntimeError:
            raise InputError(f"baseline of shape {tuple(b.shape)} does not broadcast to the images' shape "
                             f"{tuple(x.shape)}") from None
    raise InputError(f"baseline must be a number, 'zeros', 'blur' or a tensor, got {type(baseline).__name__}")


def _coalition_scores(net: torch.nn.Module, xb: torch.Tensor, x0b: torch.Tensor, lab: torch.Tensor,
                      z: torch.Tensor, ib: torch.Tensor | None, tgt: Target, batch_size: int) -> torch.Tensor:
    """Target scores ``(n,)`` (float64, CPU) of one image's composites: row ``k`` of ``z`` ``(n, M)`` keeps
    the features it marks 1 from ``xb`` ``(1, C, H, W)`` and takes the rest from ``x0b``; ``lab``
    ``(H, W)`` labels the features.  ``batch_size`` composites per forward pass."""
    out = torch.empty(z.shape[0], dtype=torch.float64)
    diff = xb - x0b
    for s, e in chunks(z.shape[0], batch_size):
        keep = z[s:e].to(device=xb.device, dtype=xb.dtype)[:, lab]  # (k, H, W)
        xm = x0b + keep[:, None] * diff
        sc = pick_scores(net(xm), ib.expand(e - s) if ib is not None else None, tgt, e - s)
        out[s:e] = sc.detach().double().cpu()
    return out


def _prepare(method: str, model: Any, images: Any, features: Any, n_segments: int, compactness: float,
             baseline: Any, blur_sigma: float | None, batch_size: int):
    batch_size = check_positive_int("batch_size", batch_size)
    net = unwrap_model(model)
    x = check_images(images, net, needs_grad=False)
    lab = feature_mask(x, features, n_segments=n_segments, compactness=compactness)
    x0 = _feature_baseline(x, baseline, blur_sigma)
    return net, x, lab, x0, batch_size


def _clean_and_base(net: torch.nn.Module, x: torch.Tensor, x0: torch.Tensor,
                    target: Any) -> tuple[Target, torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Target, f(x) (the class chosen on x) and f(baseline) for that class, from ONE forward pass of
    ``cat([x, x0])`` without a graph (two batch-1 passes cost nearly twice one of batch 2 on a CPU)."""
    B = x.shape[0]
    tgt = Target.parse(target, B)
    out = net(torch.cat([x, x0]))
    probe = tgt if tgt.indices is None else Target("index", indices=tgt.indices.repeat(2))
    both, idx2 = select_scores(out, probe, 2 * B)
    idx = None if idx2 is None else idx2[:B]
    if tgt.kind == "rank":  # the class is chosen on x; the baseline is scored for that class
        assert idx is not None
        both = pick_scores(out, idx.repeat(2), tgt, 2 * B)
    return tgt, both[:B].detach().float(), idx, both[B:].detach().float()


def _spread(values: list[torch.Tensor], lab: torch.Tensor) -> torch.Tensor:
    """Maps ``(B, H, W)``: each pixel gets its feature's value."""
    return torch.stack([v.to(device=lab.device, dtype=torch.float32)[lab[b]] for b, v in enumerate(values)])


def _check_dead(method: str, changed: list[bool]) -> None:
    raise_if_insensitive(torch.tensor(changed)[:, None], method,
                         "change of the target score when features are switched off")


# ------------------------------------------------------------------------------------------------------
# feature ablation
# ------------------------------------------------------------------------------------------------------


def feature_ablation(model: Any, images: Any, target: Any = None, layer: Any = None, *,
                     features: Any = "slic", n_segments: int = 50, compactness: float = 30.0,
                     baseline: Any = 0.0, blur_sigma: float | None = None, batch_size: int = 32,
                     **params: Any) -> Explanation:
    """Feature ablation: the drop of the target score when one feature at a time is replaced.

    ``phi_i = f(x) - f(x with feature i set to the baseline)``, one forward pass per feature
    (``batch_size`` per pass).  The grid variant is occlusion with non-overlapping windows (Zeiler &
    Fergus, ECCV 2014); on superpixels it is the "leave one out" of Robnik-Sikonja & Kononenko
    (IEEE TKDE 20(5), 2008) and Captum's ``FeatureAblation``.

    Parameters
    ----------
    features, n_segments, compactness
        The features (see :func:`feature_mask`): ``"slic"`` superpixels (default), ``"grid"``, or labels.
    baseline
        What a removed feature becomes: a number in the model's input space (``0.0``: the mean colour
        for ImageNet-normalised input), ``"blur"`` (the image blurred with ``blur_sigma`` pixels, default
        10% of the smaller side) or a tensor broadcastable to the images.
    batch_size
        Composite images per forward pass.

    Returns
    -------
    Explanation
        ``maps`` float32 ``(B, H, W)``, signed, score units; ``extras``: ``"values"`` (list of ``(M_b,)``
        float64 tensors), ``"features"`` int64 ``(B, H, W)``, ``"base_values"`` ``(B,)`` f(baseline).

    Examples
    --------
    >>> import torch, salience
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))
    >>> e = salience.explain(net, torch.rand(1, 3, 4, 4), "feature-ablation", features="grid", n_segments=4)
    >>> len(e.values[0]), tuple(e.maps.shape)
    (4, (1, 4, 4))
    """
    check_unknown("feature-ablation", params)
    net, x, lab, x0, batch_size = _prepare("feature-ablation", model, images, features, n_segments,
                                           compactness, baseline, blur_sigma, batch_size)
    B = x.shape[0]
    values, changed = [], []
    with scoped_model(net, no_inplace="auto"), torch.no_grad():
        tgt, scores, idx, base = _clean_and_base(net, x, x0, target)
        for b in range(B):
            M = int(lab[b].max()) + 1
            z = 1 - torch.eye(M, dtype=torch.uint8)
            sc = _coalition_scores(net, x[b:b + 1], x0[b:b + 1], lab[b], z,
                                   None if idx is None else idx[b:b + 1], tgt, batch_size)
            phi = float(scores[b]) - sc
            values.append(phi)
            changed.append(bool((phi != 0).any()))
    _check_dead("feature-ablation", changed)
    return Explanation(finish(_spread(values, lab)), idx, scores, "feature-ablation", None,
                       {"values": values, "features": lab, "base_values": base})


# ------------------------------------------------------------------------------------------------------
# KernelSHAP
# ------------------------------------------------------------------------------------------------------


def shapley_kernel(M: int, sizes: np.ndarray) -> np.ndarray:
    """The Shapley kernel ``pi(z) = (M - 1) / (C(M, |z|) |z| (M - |z|))`` for coalition sizes ``0 < |z| < M``."""
    s = np.asarray(sizes, dtype=np.int64)
    comb = np.array([math.comb(M, int(k)) for k in s.ravel()], dtype=np.float64).reshape(s.shape)
    return (M - 1) / (comb * s * (M - s))


def _all_coalitions(M: int) -> torch.Tensor:
    codes = torch.arange(1, 2 ** M - 1, dtype=torch.long)
    return ((codes[:, None] >> torch.arange(M)) & 1).to(torch.uint8)


def _kernel_coalitions(M: int, n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` coalitions: sizes drawn with probability ``(M - 1) / (k (M - k))``, members uniformly, each
    draw followed by its complement (paired sampling; the kernel is symmetric in ``k <-> M - k``)."""
    k = torch.arange(1, M, dtype=torch.float64)
    p = 1.0 / (k * (M - k))
    z = torch.zeros(n, M, dtype=torch.uint8)
    sizes = torch.multinomial(p, (n + 1) // 2, replacement=True, generator=gen) + 1
    for j, size in enumerate(sizes.tolist()):
        members = torch.randperm(M, generator=gen)[:size]
        z[2 * j, members] = 1
        if 2 * j + 1 < n:
            z[2 * j + 1] = 1 - z[2 * j]
    return z


def _constrained_wls(z: np.ndarray, y: np.ndarray, w: np.ndarray, total: float) -> np.ndarray:
    """``argmin_phi sum_k w_k (y_k - z_k . phi)^2`` subject to ``sum(phi) = total`` (the KKT system, solved
    by least squares so that a rank-deficient design still gives the minimum-norm solution)."""
    M = z.shape[1]
    zw = z * w[:, None]
    kkt = np.zeros((M + 1, M + 1))
    kkt[:M, :M] = zw.T @ z
    kkt[:M, M] = kkt[M, :M] = 1.0
    rhs = np.concatenate([zw.T @ y, [total]])
    return np.linalg.lstsq(kkt, rhs, rcond=None)[0][:M]


def kernel_shap(model: Any, images: Any, target: Any = None, layer: Any = None, *, n_samples: int = 512,
                features: Any = "slic", n_segments: int = 50, compactness: float = 30.0, baseline: Any = 0.0,
                blur_sigma: float | None = None, seed: int = 0, batch_size: int = 32,
                **params: Any) -> Explanation:
    """KernelSHAP (Lundberg & Lee, NeurIPS 2017) over superpixels or grid cells.

    The Shapley values ``phi`` of the game ``v(S) = f(x with the features outside S replaced by the
    baseline)`` are the solution of ``min sum_z pi(z) (v(z) - v(0) - z . phi)^2`` subject to
    ``sum(phi) = v(1) - v(0)`` over the coalitions ``0 < |z| < M``, ``pi`` the Shapley kernel
    (:func:`shapley_kernel`); the ends ``v(0), v(1)`` (infinite weight in the paper) are imposed exactly.
    When ``n_samples >= 2^M - 2`` every coalition is evaluated and the result *is* the exact Shapley
    values (``extras["exact"]``); otherwise ``n_samples`` coalitions are drawn with the kernel's size
    distribution (weight 1 each), in complementary pairs.  Efficiency holds exactly either way.

    Parameters
    ----------
    n_samples
        Coalitions evaluated per image (forward passes, besides ``f(x)`` and ``f(baseline)``).
    features, n_segments, compactness
        The features (see :func:`feature_mask`).
    baseline, blur_sigma
        What a removed feature becomes (see :func:`feature_ablation`).
    seed
        The coalition sampling seed (one generator per image, seeded alike).
    batch_size
        Composite images per forward pass.

    Returns
    -------
    Explanation
        ``maps`` float32 ``(B, H, W)`` signed (score units); ``extras``: ``"values"`` (list of ``(M_b,)``
        float64 Shapley values), ``"features"`` int64 ``(B, H, W)``, ``"base_values"`` ``(B,)``
        f(baseline), ``"exact"`` (list of bool), ``"coalitions"`` (list of the ``(n, M_b)`` uint8 designs)
        and ``"weights"`` (their regression weights).

    Examples
    --------
    >>> import torch, salience
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))
    >>> x = torch.rand(1, 3, 4, 4)
    >>> e = salience.explain(net, x, "kernel-shap", target=0, features="grid", n_segments=4)
    >>> # a linear model: the Shapley value of a cell is its weights times its pixels
    >>> w = net[1].weight[0].detach().reshape(3, 4, 4)
    >>> exact = [float((w * x[0])[:, r:r + 2, c:c + 2].sum()) for r in (0, 2) for c in (0, 2)]
    >>> bool(torch.allclose(e.values[0], torch.tensor(exact, dtype=torch.float64), atol=1e-5))
    True
    """
    check_unknown("kernel-shap", params)
    n_samples = check_positive_int("n_samples", n_samples)
    net, x, lab, x0, batch_size = _prepare("kernel-shap", model, images, features, n_segments, compactness,
                                           baseline, blur_sigma, batch_size)
    B = x.shape[0]
    values, exact, designs, weights, changed = [], [], [], [], []
    with scoped_model(net, no_inplace="auto"), torch.no_grad():
        tgt, scores, idx, base = _clean_and_base(net, x, x0, target)
        for b in range(B):
            M = int(lab[b].max()) + 1
            total = float(scores[b]) - float(base[b])
            if M == 1:
                values.append(torch.tensor([total], dtype=torch.float64))
                exact.append(True)
                designs.append(torch.ones(1, 1, dtype=torch.uint8))
                weights.append(torch.ones(1, dtype=torch.float64))
                changed.append(total != 0)
                continue
            full = M < 63 and 2 ** M - 2 <= n_samples
            if full:
                z = _all_coalitions(M)
                w = shapley_kernel(M, z.sum(dim=1).numpy())
            else:
                gen = torch.Generator().manual_seed(int(seed))
                z = _kernel_coalitions(M, n_samples, gen)
                w = np.ones(z.shape[0])
            sc = _coalition_scores(net, x[b:b + 1], x0[b:b + 1], lab[b], z,
                                   None if idx is None else idx[b:b + 1], tgt, batch_size)
            y = sc.numpy() - float(base[b])
            phi = _constrained_wls(z.numpy().astype(np.float64), y, w, total)
            values.append(torch.from_numpy(phi))
            exact.append(full)
            designs.append(z)
            weights.append(torch.from_numpy(w))
            changed.append(bool((sc != float(scores[b])).any()) or total != 0)
    _check_dead("kernel-shap", changed)
    return Explanation(finish(_spread(values, lab)), idx, scores, "kernel-shap", None,
                       {"values": values, "features": lab, "base_values": base, "exact": exact,
                        "coalitions": designs, "weights": weights})


# ------------------------------------------------------------------------------------------------------
# LIME
# ------------------------------------------------------------------------------------------------------

DISTANCES = ("cosine", "hamming")


def lime_weights(z: torch.Tensor, distance: str, kernel_width: float) -> np.ndarray:
    """LIME's proximity ``exp(-d^2 / (2 w^2))`` of each coalition ``(n, M)`` to the all-ones one.

    ``d``: ``"cosine"`` ``1 - |z| / sqrt(M |z|)`` (1 for the empty coalition) or ``"hamming"``
    ``1 - |z| / M`` (the fraction of features switched off).  ``exp(-d^2 / (2 w^2))`` is lime's image
    kernel ``sqrt(exp(-d^2 / w^2))``."""
    zf = z.double().numpy()
    M = zf.shape[1]
    k = zf.sum(axis=1)
    if distance == "cosine":
        d = np.where(k > 0, 1.0 - k / np.sqrt(M * np.maximum(k, 1)), 1.0)
    else:
        d = 1.0 - k / M
    return np.exp(-(d ** 2) / (2.0 * kernel_width ** 2))


def _weighted_ridge(z: np.ndarray, y: np.ndarray, w: np.ndarray, alpha: float) -> tuple[np.ndarray, float, float]:
    """Coefficients, intercept and weighted R^2 of ``min sum_k w_k (y_k - c - z_k . phi)^2 + alpha |phi|^2``
    (the intercept unpenalised: the data are centred on their weighted means, as scikit-learn's Ridge)."""
    sw = w / w.sum()
    zm, ym = sw @ z, float(sw @ y)
    zc, yc = z - zm, y - ym
    a = (zc * w[:, None]).T @ zc + alpha * np.eye(z.shape[1])
    phi = np.linalg.lstsq(a, (zc * w[:, None]).T @ yc, rcond=None)[0]
    c = ym - float(zm @ phi)
    res = yc - zc @ phi
    ss = float(w @ (yc * yc))
    r2 = 1.0 - float(w @ (res * res)) / ss if ss > 0 else 1.0
    return phi, c, r2


def lime(model: Any, images: Any, target: Any = None, layer: Any = None, *, n_samples: int = 512,
         features: Any = "slic", n_segments: int = 50, compactness: float = 30.0, baseline: Any = 0.0,
         blur_sigma: float | None = None, kernel_width: float = 0.25, distance: str = "cosine",
         alpha: float = 1.0, seed: int = 0, batch_size: int = 32, **params: Any) -> Explanation:
    """LIME (Ribeiro, Singh & Guestrin, KDD 2016) over superpixels or grid cells.

    ``n_samples`` coalitions (the first keeps every feature, the others switch each feature on with
    probability 1/2, as lime's image explainer) are scored by the model; a ridge regression weighted by
    the proximity ``exp(-d^2 / (2 kernel_width^2))`` (:func:`lime_weights`) is fitted to the scores, and
    its coefficients are the features' values.  Unlike KernelSHAP the values need not sum to
    ``f(x) - f(baseline)``.

    Parameters
    ----------
    n_samples
        Coalitions per image, the all-ones one included (forward passes: ``n_samples - 1``); at least 2.
    features, n_segments, compactness
        The features (see :func:`feature_mask`).
    baseline, blur_sigma
        What a removed feature becomes (see :func:`feature_ablation`).
    kernel_width
        The proximity kernel's width (lime's image default 0.25).
    distance
        ``"cosine"`` (lime's image default) or ``"hamming"``.
    alpha
        The ridge penalty (lime's default 1.0), on the kernel-weighted squared error.
    seed, batch_size
        The sampling seed (one generator per image); composites per forward pass.

    Returns
    -------
    Explanation
        ``maps`` float32 ``(B, H, W)`` signed (score units); ``extras``: ``"values"`` (list of ``(M_b,)``
        float64 coefficients), ``"intercepts"``, ``"r2"`` (the surrogate's weighted R^2 per image),
        ``"features"``, ``"base_values"``, ``"coalitions"`` and ``"weights"``.

    Examples
    --------
    >>> import torch, salience
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))
    >>> e = salience.explain(net, torch.rand(1, 3, 4, 4), "lime", features="grid", n_segments=4,
    ...                      n_samples=64, alpha=1e-6)
    >>> bool(e.r2[0] > 0.999)   # a linear model is its own linear surrogate
    True
    """
    check_unknown("lime", params)
    n_samples = check_positive_int("n_samples", n_samples, minimum=2)  # the all-ones row alone fits nothing
    key = str(distance).strip().lower()
    if key not in DISTANCES:
        raise InputError(f"distance must be one of {', '.join(DISTANCES)}, got {distance!r}")
    for name, v, ok in (("kernel_width", kernel_width, lambda t: t > 0), ("alpha", alpha, lambda t: t >= 0)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)) or not ok(v):
            raise InputError(f"{name} must be a finite number {'> 0' if name == 'kernel_width' else '>= 0'}, "
                             f"got {v!r}")
    net, x, lab, x0, batch_size = _prepare("lime", model, images, features, n_segments, compactness,
                                           baseline, blur_sigma, batch_size)
    B = x.shape[0]
    values, intercepts, r2s, designs, weights, changed = [], [], [], [], [], []
    with scoped_model(net, no_inplace="auto"), torch.no_grad():
        tgt, scores, idx, base = _clean_and_base(net, x, x0, target)
        for b in range(B):
            M = int(lab[b].max()) + 1
            gen = torch.Generator().manual_seed(int(seed))
            z = (torch.rand(n_samples, M, generator=gen, dtype=torch.float64) < 0.5).to(torch.uint8)
            z[0] = 1
            sc = torch.empty(n_samples, dtype=torch.float64)
            sc[0] = float(scores[b])
            if n_samples > 1:
                sc[1:] = _coalition_scores(net, x[b:b + 1], x0[b:b + 1], lab[b], z[1:],
                                           None if idx is None else idx[b:b + 1], tgt, batch_size)
            w = lime_weights(z, key, float(kernel_width))
            phi, c, r2 = _weighted_ridge(z.numpy().astype(np.float64), sc.numpy(), w, float(alpha))
            values.append(torch.from_numpy(phi))
            intercepts.append(c)
            r2s.append(r2)
            designs.append(z)
            weights.append(torch.from_numpy(w))
            changed.append(bool((sc != sc[0]).any()))
    _check_dead("lime", changed)
    return Explanation(finish(_spread(values, lab)), idx, scores, "lime", None,
                       {"values": values, "intercepts": intercepts, "r2": r2s, "features": lab,
                        "base_values": base, "coalitions": designs, "weights": weights})


# ------------------------------------------------------------------------------------------------------
# GradientSHAP / expected gradients
# ------------------------------------------------------------------------------------------------------


def _references(x: torch.Tensor, baselines: Any) -> torch.Tensor | None:
    """The reference set ``(R, C, H, W)`` to draw baselines from, or ``None`` for ``"noise"``."""
    if isinstance(baselines, str):
        key = baselines.strip().lower()
        if key == "noise":
            return None
        if key in ("zeros", "zero"):
            return torch.zeros_like(x[:1])
        raise InputError(f"baselines must be 'noise', 'zeros', a number or a tensor of reference images "
                         f"(R, C, H, W), got {baselines!r}")
    if isinstance(baselines, numbers.Real) and not isinstance(baselines, bool):
        if not math.isfinite(float(baselines)):
            raise InputError(f"baselines must be finite, got {baselines!r}")
        return torch.full_like(x[:1], float(baselines))
    if isinstance(baselines, np.ndarray):
        baselines = torch.from_numpy(np.ascontiguousarray(baselines))
    if isinstance(baselines, torch.Tensor):
        r = baselines.detach()
        if r.ndim == 3:
            r = r[None]
        if r.ndim != 4 or tuple(r.shape[1:]) != tuple(x.shape[1:]) or r.shape[0] == 0:
            raise InputError(f"reference images must have shape (R, C, H, W) with (C, H, W) = "
                             f"{tuple(x.shape[1:])}, got {tuple(baselines.shape)}")
        if not r.is_floating_point() or not bool(torch.isfinite(r).all()):
            raise InputError("reference images must be finite floating-point values")
        return r.to(device=x.device, dtype=x.dtype)
    raise InputError(f"baselines must be 'noise', 'zeros', a number or a tensor of reference images, got "
                     f"{type(baselines).__name__}")


def _nonneg(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)) or v < 0:
        raise InputError(f"{name} must be a finite number >= 0, got {v!r}")
    return float(v)


def gradient_shap(model: Any, images: Any, target: Any = None, layer: Any = None, *,
                  baselines: Any = "noise", n_samples: int = 32, stdev: float = 0.0, noise_std: float = 1.0,
                  seed: int = 0, batch_size: int = 16, **params: Any) -> Explanation:
    """GradientSHAP (Lundberg & Lee, NeurIPS 2017) / expected gradients (Erion, Janizek, Sturmfels,
    Lundberg & Lee, Nature Machine Intelligence 3, 2021).

    ``a = mean_j (x_j - b_j) * grad f(b_j + alpha_j (x_j - b_j))`` over ``n_samples`` draws of a baseline
    ``b_j`` from the baseline distribution, ``alpha_j ~ U(0, 1)`` and ``x_j = x + N(0, stdev^2)``: a
    Monte-Carlo estimate of Integrated Gradients averaged over baselines, whose expectation (for
    ``stdev = 0``) sums to ``f(x) - E_b[f(b)]``.

    Parameters
    ----------
    baselines
        ``"noise"`` (default: each sample draws a fresh baseline of i.i.d. ``N(0, noise_std^2)`` values
        in the model's input space; for ImageNet-normalised input, pixels around the mean colour),
        ``"zeros"`` or a number (one fixed baseline: Monte-Carlo Integrated Gradients), or reference
        images ``(R, C, H, W)`` (or one ``(C, H, W)``) drawn uniformly with replacement: expected
        gradients with a background data set.
    n_samples
        Draws per image (one gradient each).
    stdev
        Standard deviation of the Gaussian noise added to the input (Captum's ``stdevs``; 0: none).
    noise_std
        Standard deviation of the ``"noise"`` baselines.
    seed
        Every image draws from its own generator seeded with ``seed``, in the order alphas, reference
        indices, then per sample its input noise and noise baseline: an image's result does not depend on
        its batch mates or on ``batch_size``.
    batch_size
        Gradients per forward/backward pass.

    Returns
    -------
    Explanation
        ``maps`` = ``sum_c a_c``: float32 ``(B, H, W)``, signed, score units; ``extras``:
        ``"attributions"`` ``(B, C, H, W)``, ``"alphas"`` ``(B, n_samples)``, ``"baseline_indices"``
        ``(B, n_samples)`` (into the reference images; ``None`` for noise baselines).

    Examples
    --------
    >>> import torch, salience
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 2))
    >>> x = torch.rand(1, 3, 8, 8)
    >>> e = salience.explain(net, x, "gradient-shap", target=1, baselines=torch.zeros(1, 3, 8, 8), n_samples=4)
    >>> # a linear model: every draw gives input x weight, whatever alpha
    >>> bool(torch.allclose(e.attributions[0], x[0] * net[1].weight[1].reshape(3, 8, 8), atol=1e-6))
    True
    """
    check_unknown("gradient-shap", params)
    n_samples = check_positive_int("n_samples", n_samples)
    batch_size = check_positive_int("batch_size", batch_size)
    stdev = _nonneg("stdev", stdev)
    noise_std = _nonneg("noise_std", noise_std)
    net = unwrap_model(model)
    x = check_images(images, net)
    refs = _references(x, baselines)
    B, n = x.shape[0], n_samples
    gens = [torch.Generator(device="cpu").manual_seed(int(seed)) for _ in range(B)]
    alphas = torch.stack([torch.rand(n, generator=g, dtype=torch.float32) for g in gens])
    ridx = (None if refs is None else
            torch.stack([torch.randint(refs.shape[0], (n,), generator=g) for g in gens]))
    shape = tuple(x.shape[1:])
    with scoped_model(net, no_inplace="auto"):
        tgt = Target.parse(target, B)
        with torch.no_grad():
            scores, idx = select_scores(net(x), tgt, B)
        scores = scores.float()
        total = torch.zeros_like(x)
        for s, e in chunks(B * n, batch_size):
            rows = torch.arange(s, e) // n
            js = torch.arange(s, e) % n
            xs = x[rows]
            # each sample draws its input noise, then its noise baseline, from its image's generator
            eps, nb = [], []
            for i in rows.tolist():
                if stdev > 0:
                    eps.append(torch.randn(shape, generator=gens[i], dtype=torch.float32))
                if refs is None:
                    nb.append(torch.randn(shape, generator=gens[i], dtype=torch.float32))
            if stdev > 0:
                xs = xs + stdev * torch.stack(eps).to(device=x.device, dtype=x.dtype)
            if refs is None:
                bs = (noise_std * torch.stack(nb)).to(device=x.device, dtype=x.dtype)
            else:
                assert ridx is not None
                bs = refs[ridx[rows, js].to(refs.device)]
            a = alphas[rows, js].to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)
            pts = (bs + a * (xs - bs)).requires_grad_(True)
            with torch.enable_grad():
                out = net(pts)
                sc = pick_scores(out, None if idx is None else idx[rows.to(idx.device)], tgt, e - s)
                (g,) = torch.autograd.grad(sc.sum(), pts)
            total.index_add_(0, rows.to(x.device), (xs - bs) * g)
    raise_if_insensitive(total.reshape(B, -1), "gradient-shap", "gradient with respect to the input at every "
                         "sampled point")
    attr = total / n
    return Explanation(finish(attr.sum(dim=1)), idx, scores, "gradient-shap", None,
                       {"attributions": attr.detach(), "alphas": alphas, "baseline_indices": ridx})
