"""A planted shortcut ("Clever Hans"), found end to end: stamp one class, fit a model, audit it.

A model that classifies by a watermark instead of the object (the "horse" class of PASCAL VOC recognised by
its copyright tag; Lapuschkin et al., "Unmasking Clever Hans predictors and assessing what machines really
learn", Nature Communications 10:1096, 2019) is the case a data-set audit must catch.  This module builds
such a model on purpose, so that the audit can be checked against a known answer:

1. the photos are split at random into two classes, balanced, and into fitting and held-out images (the
   held-out ones are never used for fitting).  The photos' content does not tell the classes apart, so
   the stamp is the *only* signal: the extreme shortcut;
2. every photo of class 1 gets a small stamp in a corner (:func:`add_stamp`: a red-and-white
   checkerboard, a fifth of the image's side);
3. the last layer of an ImageNet classifier (default: MobileNetV2, ``salience.load_model()``) is replaced
   by a two-class linear head fitted by L2-regularised logistic regression on the frozen penultimate
   features (computed once per image), and a control model is fitted the same way on the same photos
   *without* the stamp;
4. the audit: held-out accuracy with the stamp (as in fitting) and with the stamp removed; explanation
   maps (any registry method, default Grad-CAM) of the held-out images as they come (class 1 stamped) for
   the predicted class; :func:`~salience.audit.spray.spray` over them; and the share of each cluster's
   mean map that lies in the stamp's corner (:func:`corner_share`).

The stamped model's held-out accuracy falls when the stamp is removed, and SpRAy gives the stamped images a
cluster of their own whose mean map sits on the stamp; the control model shows neither.  The figures are
in docs/audit.md ("A shortcut found end to end").

>>> import numpy as np
>>> from salience.audit.shortcut import add_stamp, corner_share
>>> img = np.zeros((100, 100, 3), np.float32)
>>> s = add_stamp(img, size=0.2)
>>> s.shape, float(s[:20, :20].max()), float(img.max())   # the input is not changed
((100, 100, 3), 1.0, 0.0)
>>> m = np.zeros((32, 32)); m[:4, :4] = 1.0
>>> corner_share(m)   # all of the map's mass is in the top-left quarter-by-quarter box
1.0
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..check import check_choice, check_int, check_real
from ..errors import InputError, MissingDependencyError, ModelError
from .spray import SprayResult, spray

__all__ = ["CORNERS", "add_stamp", "corner_share", "ShortcutDemo", "clever_hans_demo", "ShortcutCase",
           "plant_shortcut", "IMAGENET_ANIMALS"]

#: The corners a stamp can go in (and :func:`corner_share` can measure).
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")

_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)  # ImageNet normalisation (torchvision's)
_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def _corner_slices(h: int, w: int, side_h: int, side_w: int, corner: str) -> tuple[slice, slice]:
    rows = slice(0, side_h) if corner.startswith("top") else slice(h - side_h, h)
    cols = slice(0, side_w) if corner.endswith("left") else slice(w - side_w, w)
    return rows, cols


def add_stamp(image: Any, *, corner: str = "top-left", size: float = 0.2, squares: int = 4) -> np.ndarray:
    """A copy of ``image`` with a red-and-white checkerboard stamp in a corner.

    Parameters
    ----------
    image: float ``(H, W, 3)`` RGB in ``[0, 1]``; not modified.
    corner: one of :data:`CORNERS`.
    size: the stamp's side as a fraction of the image's shorter side, ``0 < size <= 0.5``.
    squares: the checkerboard's squares along a side (``>= 1``; 1 is a plain red square).

    Returns
    -------
    float32 ``(H, W, 3)``: the stamped copy.
    """
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3 or a.shape[0] < 2 or a.shape[1] < 2:
        raise InputError(f"image must be an (H, W, 3) RGB array, got shape {a.shape}")
    check_choice("corner", corner, CORNERS)
    size = check_real("size", size, minimum=0.0, strict=True)
    if size > 0.5:
        raise InputError(f"size must be at most 0.5 of the image's side, got {size}")
    squares = check_int("squares", squares)
    out = a.astype(np.float32, copy=True)
    side = max(1, round(size * min(a.shape[:2])))
    yy, xx = np.mgrid[0:side, 0:side]
    cell = max(1, side // squares)
    red = ((yy // cell + xx // cell) % 2 == 0)[..., None]
    patch = np.where(red, np.array([1.0, 0.0, 0.0], np.float32), np.array([1.0, 1.0, 1.0], np.float32))
    rows, cols = _corner_slices(a.shape[0], a.shape[1], side, side, corner)
    out[rows, cols] = patch
    return out


def corner_share(maps: Any, *, corner: str = "top-left", fraction: float = 0.25) -> Any:
    """The share of a map's mass that lies in a corner box, ``fraction`` of the side in each direction.

    Parameters
    ----------
    maps: a non-negative 2-D map ``(h, w)`` or a stack ``(n, h, w)`` (e.g. SpRAy's ``mean_maps``).
    corner: one of :data:`CORNERS`.
    fraction: the box's side as a fraction of the map's side, ``0 < fraction <= 1``.  A uniform map puts
        ``fraction ** 2`` in the box (0.0625 for the default 0.25).

    Returns
    -------
    float for one map, float64 ``(n,)`` for a stack; 0 for a map that is zero everywhere.
    """
    a = np.asarray(maps, dtype=np.float64)
    if a.ndim not in (2, 3) or a.size == 0:
        raise InputError(f"maps must be a 2-D map or an (n, h, w) stack, got shape {a.shape}")
    if not np.isfinite(a).all() or (a < 0).any():
        raise InputError("maps must be finite and non-negative (take the magnitude of a signed map first)")
    check_choice("corner", corner, CORNERS)
    fraction = check_real("fraction", fraction, minimum=0.0, strict=True)
    if fraction > 1:
        raise InputError(f"fraction must be at most 1, got {fraction}")
    stack = a if a.ndim == 3 else a[None]
    h, w = stack.shape[1:]
    rows, cols = _corner_slices(h, w, max(1, round(fraction * h)), max(1, round(fraction * w)), corner)
    total = stack.sum(axis=(1, 2))
    inside = stack[:, rows, cols].sum(axis=(1, 2))
    share = np.divide(inside, total, out=np.zeros_like(total), where=total > 0)
    return float(share[0]) if a.ndim == 2 else share


@dataclass(frozen=True)
class ShortcutDemo:
    """What :func:`clever_hans_demo` measured.  Accuracies are on held-out images only.

    Attributes
    ----------
    accuracy_stamped: the stamped model on held-out images with the stamp on class 1, as in fitting.
    accuracy_unstamped: the stamped model on the same images with the stamp removed.
    control_accuracy: the control model (fitted without any stamp) on the held-out images, unstamped.
    control_accuracy_stamped: the control model on the held-out images with the stamp on class 1.
    spray: SpRAy of the stamped model's maps of the held-out images (class 1 stamped).
    control_spray: SpRAy of the control model's maps of the same images.
    stamped: bool ``(N,)``, which of the audited images carry the stamp (the order of the maps).
    corner_shares, control_corner_shares: float64 ``(n_clusters,)``, each cluster mean's share in the
        stamp's corner (:func:`corner_share`).
    stamp_cluster: the stamped model's cluster with the largest corner share.
    n_fit, n_test: the numbers of fitting and held-out images (both classes together).
    method: the explanation method; corner, fraction: where the corner share was measured.
    """

    accuracy_stamped: float
    accuracy_unstamped: float
    control_accuracy: float
    control_accuracy_stamped: float
    spray: SprayResult
    control_spray: SprayResult
    stamped: np.ndarray
    corner_shares: np.ndarray
    control_corner_shares: np.ndarray
    stamp_cluster: int
    n_fit: int
    n_test: int
    method: str
    corner: str
    fraction: float

    @property
    def stamp_cluster_purity(self) -> float:
        """The share of the stamp cluster's members that carry the stamp."""
        return float(self.stamped[self.spray.members(self.stamp_cluster)].mean())

    @property
    def stamp_cluster_recall(self) -> float:
        """The share of the stamped images that fall in the stamp cluster."""
        return float((self.spray.labels[self.stamped] == self.stamp_cluster).mean())

    def summary(self) -> str:
        """The finding in a sentence or two, with the figures."""
        k = self.stamp_cluster
        uniform = self.fraction ** 2
        return (
            f"Held-out accuracy {self.accuracy_stamped:.0%} with the stamp, {self.accuracy_unstamped:.0%} "
            f"without it (control model fitted without the stamp: {self.control_accuracy:.0%}).  SpRAy on "
            f"{self.method} maps finds {self.spray.n_clusters} cluster(s); cluster {k} "
            f"({int(self.spray.sizes[k])} images, {self.stamp_cluster_purity:.0%} of them stamped, "
            f"{self.stamp_cluster_recall:.0%} of the stamped images) has {self.corner_shares[k]:.0%} of its "
            f"mean map in the {self.corner} corner (uniform: {uniform:.0%}); the control model's clusters put "
            f"at most {self.control_corner_shares.max():.0%} there."
        )


def _square(image: Any, side: int) -> np.ndarray:
    """Centre-crop to a square and resize to ``side`` (area averaging): float32 (side, side, 3) in [0, 1]."""
    import cv2

    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3 or min(a.shape[:2]) < 8:
        raise InputError(f"every image must be an (H, W, 3) RGB array of at least 8x8, got shape {a.shape}")
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / np.float32(255.0)
    a = a.astype(np.float32, copy=False)
    if not np.isfinite(a).all():
        raise InputError("an image contains NaN or infinite values")
    h, w = a.shape[:2]
    s = min(h, w)
    a = a[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return np.clip(cv2.resize(a, (side, side), interpolation=cv2.INTER_AREA), 0.0, 1.0)


def _frozen_classifier(model: Any, who: str) -> tuple[Any, Any]:
    """``(loaded model, nn.Module)`` of ``model`` (default ``salience.load_model()``), checked to be a
    torchvision-style classifier with ``.features`` and a ``.classifier`` ending in a linear layer."""
    import torch

    from ..attribution import load_model

    lm = load_model() if model is None else model
    net: Any = getattr(lm, "model", lm)
    head = getattr(net, "classifier", None)
    if not (hasattr(net, "features") and isinstance(head, torch.nn.Sequential) and len(head)
            and isinstance(head[-1], torch.nn.Linear)):
        raise ModelError(
            f"{who} needs a torchvision-style classifier with .features and a .classifier ending in a "
            f"Linear layer (MobileNetV2, EfficientNet), got {type(net).__name__}")
    return lm, net


def _with_head(net: Any, w: Any, b: Any) -> Any:
    """A copy of ``net`` (in eval mode) whose ``classifier[-1]`` is the linear layer of weight ``w`` and bias
    ``b``; ``net`` is not changed."""
    import torch

    m = copy.deepcopy(net)
    last = torch.nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        last.weight.copy_(w)
        last.bias.copy_(b)
    m.classifier[-1] = last
    return m.eval()


def _fit_head(feats: Any, labels: np.ndarray, weight_decay: float, seed: int) -> tuple[Any, Any]:
    """L2-regularised two-class logistic regression (softmax, full-batch L-BFGS) on standardised features;
    returns the weight (2, D) and bias (2,) on the raw features (the standardisation folded in)."""
    import torch

    torch.manual_seed(seed)
    x = feats.double()
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    y = torch.as_tensor(labels, dtype=torch.long)
    w = torch.zeros(2, z.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, tolerance_grad=1e-9, line_search_fn="strong_wolfe")

    def closure() -> Any:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z @ w.T + b, y) + weight_decay * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        w_raw = w / sd
        b_raw = b - w_raw @ mu
    return w_raw.float(), b_raw.float()


def clever_hans_demo(images: Sequence[Any], *, n_fit: int = 60, n_test: int = 30, model: Any = None,
                     method: str = "gradcam", input_size: int = 160, stamp_size: float = 0.2,
                     corner: str = "top-left", fraction: float = 0.25, weight_decay: float = 1e-2,
                     seed: int = 0, batch_size: int = 32) -> ShortcutDemo:
    """Plant a shortcut (a stamp on one class), fit a linear head on a frozen classifier, and audit it.

    Parameters
    ----------
    images: at least ``n_fit + n_test`` real photos, float ``(H, W, 3)`` RGB in ``[0, 1]`` or uint8, any
        size (centre-cropped to a square, resized to ``input_size``); not modified.
    n_fit, n_test: fitting and held-out images, both classes together (even numbers, >= 4 each); the
        first ``n_fit + n_test`` images of a seeded shuffle are used.
    model: a :class:`~salience.attribution.LoadedModel` of a torchvision-style classifier whose
        ``model.features`` gives the spatial features and ``model.classifier[-1]`` is the last linear
        layer (MobileNetV2, EfficientNet); default ``salience.load_model()`` (MobileNetV2, offline
        ImageNet weights).  Not modified: the fitted heads go into copies.
    method: the explanation method (a registry name taking the model's ``target_layer`` if it has one).
    input_size: the side of the square model input.
    stamp_size: the stamp's side as a fraction of the image side (:func:`add_stamp`).
    corner: where the stamp goes and where the corner share is measured.
    fraction: the side of the measured corner box (:func:`corner_share`).
    weight_decay: the L2 penalty of the logistic regression on standardised features.
    seed: the seed of the split, of the fit and of SpRAy.
    batch_size: images a forward pass.

    Returns
    -------
    ShortcutDemo: the accuracies, both SpRAy results, the corner shares and :meth:`ShortcutDemo.summary`.

    Raises
    ------
    InputError: too few images, a bad image, bad numbers; ModelError: a model without ``features`` and a
    ``classifier`` ending in a linear layer; MissingDependencyError without torch.
    """
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("clever_hans_demo needs the torch extra: pip install 'salience[torch]'") from None
    from ..attribution import explain
    from ..registry import get_method

    n_fit, n_test = check_int("n_fit", n_fit, minimum=4), check_int("n_test", n_test, minimum=4)
    if n_fit % 2 or n_test % 2:
        raise InputError(f"n_fit and n_test must be even (two balanced classes), got {n_fit} and {n_test}")
    if not isinstance(images, Sequence) or len(images) < n_fit + n_test:
        got = len(images) if isinstance(images, Sequence) else type(images).__name__
        raise InputError(f"clever_hans_demo needs a sequence of at least n_fit + n_test = {n_fit + n_test} "
                         f"photos, got {got}")
    input_size = check_int("input_size", input_size, minimum=32)
    weight_decay = check_real("weight_decay", weight_decay, minimum=0.0)
    check_choice("corner", corner, CORNERS)
    batch_size = check_int("batch_size", batch_size)
    lm, net = _frozen_classifier(model, "clever_hans_demo")
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    order = rng.permutation(len(images))[: n_fit + n_test]
    plain = np.stack([_square(images[i], input_size) for i in order])
    # balanced classes at random, in the fitting and in the held-out part alike
    labels = np.concatenate([rng.permutation(np.arange(n_fit) % 2), rng.permutation(np.arange(n_test) % 2)])
    stamped_imgs = plain.copy()
    for i in np.flatnonzero(labels == 1):
        stamped_imgs[i] = add_stamp(plain[i], corner=corner, size=stamp_size)

    def to_tensor(a: np.ndarray) -> Any:
        return torch.from_numpy(((a - _MEAN) / _STD).transpose(0, 3, 1, 2).copy())

    def features(a: np.ndarray) -> Any:
        with torch.no_grad():
            return torch.cat([net.features(to_tensor(a[i:i + batch_size])).mean(dim=(2, 3))
                              for i in range(0, len(a), batch_size)])

    ones = np.flatnonzero(labels == 1)
    f_plain = features(plain)
    f_stamped = f_plain.clone()
    f_stamped[ones] = features(stamped_imgs[ones])  # only class 1 differs
    fit, test = np.arange(n_fit), np.arange(n_fit, n_fit + n_test)

    def accuracy(w: Any, b: Any, f: Any) -> float:
        return float(((f[test] @ w.T + b).argmax(1).numpy() == labels[test]).mean())

    w_s, b_s = _fit_head(f_stamped[fit], labels[fit], weight_decay, seed)
    w_c, b_c = _fit_head(f_plain[fit], labels[fit], weight_decay, seed)
    layer = getattr(lm, "target_layer", None) if get_method(method).takes_layer else None

    def maps_of(m: Any) -> np.ndarray:
        x = to_tensor(stamped_imgs[test])
        out = [explain(m, x[i:i + batch_size], method, layer=layer).maps.detach().cpu().numpy()
               for i in range(0, len(x), batch_size)]
        return np.concatenate(out)

    sp = spray(maps_of(_with_head(net, w_s, b_s)), seed=seed)
    sp_c = spray(maps_of(_with_head(net, w_c, b_c)), seed=seed)
    shares = corner_share(np.abs(sp.mean_maps), corner=corner, fraction=fraction)
    shares_c = corner_share(np.abs(sp_c.mean_maps), corner=corner, fraction=fraction)
    return ShortcutDemo(
        accuracy_stamped=accuracy(w_s, b_s, f_stamped), accuracy_unstamped=accuracy(w_s, b_s, f_plain),
        control_accuracy=accuracy(w_c, b_c, f_plain), control_accuracy_stamped=accuracy(w_c, b_c, f_stamped),
        spray=sp, control_spray=sp_c, stamped=labels[test] == 1, corner_shares=shares,
        control_corner_shares=shares_c, stamp_cluster=int(np.argmax(shares)), n_fit=n_fit, n_test=n_test,
        method=method, corner=corner, fraction=float(fraction))


#: the ImageNet classes that are animals (0 "tench" to 397 "puffer"; 398 is "abacus"): the default real class
IMAGENET_ANIMALS = range(398)


@dataclass(frozen=True)
class ShortcutCase:
    """The files :func:`plant_shortcut` wrote, and the held-out accuracies it measured.

    Attributes
    ----------
    out: the folder.  images: ``out/images/``, the held-out images as they come (the stamped source's
        photos carry the stamp), PNG, to audit with ``salience audit-dataset``.  checkpoint,
        control_checkpoint: ``out/stamped.pth`` and ``out/control.pth``, state dicts of the whole network
        with a two-class head, each with its ``.classes.txt`` beside it, for ``--weights``.  truth:
        ``out/truth.csv``, one row per held-out image: ``image,label,source,stamped`` (``source`` is
        ``content``, ``stamped`` or ``other``).
    accuracy: the stamped model on the held-out images as they come; accuracy_unstamped: on the same images
        with the stamp removed; stamped_accuracy, stamped_accuracy_unstamped: the same two on the stamped
        source's images alone (class 1 only because of where they came from).
    control_accuracy, control_stamped_accuracy: the control model (fitted without any stamp) on the held-out
        images as they come, and on the stamped source's images alone.
    n_fit, n_test: ``{"content": ..., "stamped": ..., "other": ...}``, the images of each source in the
        fitting and held-out parts.
    class_names: the two classes.
    """

    out: Path
    images: Path
    checkpoint: Path
    control_checkpoint: Path
    truth: Path
    accuracy: float
    accuracy_unstamped: float
    stamped_accuracy: float
    stamped_accuracy_unstamped: float
    control_accuracy: float
    control_stamped_accuracy: float
    n_fit: dict
    n_test: dict
    class_names: tuple

    def summary(self) -> str:
        """The planted case in a sentence, with the figures."""
        return (
            f"Held-out accuracy {self.accuracy:.0%} as the images come, {self.accuracy_unstamped:.0%} with the "
            f"stamp removed; on the stamped source's {self.n_test['stamped']} photos {self.stamped_accuracy:.0%} "
            f"with the stamp, {self.stamped_accuracy_unstamped:.0%} without (the control model, fitted without "
            f"the stamp: {self.control_accuracy:.0%} overall, {self.control_stamped_accuracy:.0%} on them).")


def plant_shortcut(photos: Sequence[Any], out: Any, *, names: Sequence[str] | None = None,
                   labels: Any = None, content_classes: Any = IMAGENET_ANIMALS,
                   class_names: tuple[str, str] = ("other", "animal"), n_stamped: int | None = None,
                   test_fraction: float = 0.4, model: Any = None, input_size: int = 224,
                   stamp_size: float = 0.2, corner: str = "top-left", weight_decay: float = 1e-2,
                   seed: int = 0, batch_size: int = 32) -> ShortcutCase:
    """Write a data set with a watermark shortcut and a model that learnt it, for ``salience audit-dataset``.

    The case of Lapuschkin et al. (2019), where a real class (PASCAL VOC's horses) came partly from a
    source that tagged its photos, and the model learnt the tag.  Here:

    - class 1 is a real class with content of its own: by default the photos that the unmodified ImageNet
      classifier calls an animal (top-1 among ``content_classes``, ImageNet's 398 animal classes), or the
      ``labels`` given;
    - a second source contributes ``n_stamped`` further photos to class 1 (drawn at random from the rest,
      whatever they show) and stamps every photo it contributes in a corner (:func:`add_stamp`): only the
      stamp tells them apart from class 0;
    - class 0 is the remaining photos.

    Each source is split at random into fitting and held-out photos (``test_fraction`` held out; held-out
    photos are never used for fitting).  A two-class head replaces the classifier's last layer, fitted by
    L2-regularised logistic regression on the frozen features (:func:`clever_hans_demo`'s fit), once with
    the stamps (``stamped.pth``) and once on the same photos without them (``control.pth``).  The held-out
    photos are written to ``out/images/`` as they come (the second source's stamped), centre-cropped to a
    square of ``input_size`` pixels, so that ``salience audit-dataset out/images --weights out/stamped.pth``
    audits the model on data it never saw.

    Parameters
    ----------
    photos: real photos, float ``(H, W, 3)`` RGB in ``[0, 1]`` or uint8, any size; not modified.
    out: a new or empty folder.
    names: a file name (without suffix) per photo, unique; default ``"0000"``, ``"0001"``, ...
    labels: the real class per photo (bool or 0/1); default: from the model's ImageNet prediction.
    content_classes: the ImageNet class indices that make a photo class 1 when ``labels`` is not given.
    class_names: the names of class 0 and class 1 (written beside the checkpoints).
    n_stamped: the stamped source's photos; default as many as class 1 has (at most half the others).
    test_fraction: the share of each source held out, in ``(0, 1)``.
    model: a :class:`~salience.attribution.LoadedModel` with ``model.features`` and a ``model.classifier``
        ending in a linear layer (MobileNetV2, the default ``salience.load_model()``); not modified.
    input_size, stamp_size, corner, weight_decay, seed, batch_size: as :func:`clever_hans_demo`.

    Returns
    -------
    ShortcutCase: the paths and the held-out accuracies (:meth:`ShortcutCase.summary`).

    Raises
    ------
    InputError: too few photos of either class, bad names or numbers; OutputError: ``out`` is not empty or
    cannot be written; ModelError, MissingDependencyError as :func:`clever_hans_demo`.
    """
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("plant_shortcut needs the torch extra: pip install 'salience[torch]'") from None
    import os

    from ..errors import OutputError

    names = _check_case(photos, names, test_fraction, class_names)
    n = len(photos)
    input_size = check_int("input_size", input_size, minimum=32)
    weight_decay = check_real("weight_decay", weight_decay, minimum=0.0)
    check_choice("corner", corner, CORNERS)
    batch_size = check_int("batch_size", batch_size)
    out = Path(os.fspath(out))
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputError(f"{out} exists and is not an empty folder; give a new folder for the case")
    lm, net = _frozen_classifier(model, "plant_shortcut")
    # the pixels exactly as the files will hold them (8-bit), so that the accuracies measured here are the
    # model's on the written images
    def quantised(a: np.ndarray) -> np.ndarray:
        return (np.round(a * 255.0) / 255.0).astype(np.float32)

    plain = quantised(np.stack([_square(p, input_size) for p in photos]))

    def to_tensor(a: np.ndarray) -> Any:
        return torch.cat([lm.preprocess(im, crop=False) for im in a]) if hasattr(lm, "preprocess") else \
            torch.from_numpy(((a - _MEAN) / _STD).transpose(0, 3, 1, 2).copy())

    def features(a: np.ndarray) -> Any:
        with torch.no_grad():
            return torch.cat([net.features(to_tensor(a[i:i + batch_size])).mean(dim=(2, 3))
                              for i in range(0, len(a), batch_size)])

    f_plain = features(plain)
    if labels is None:
        with torch.no_grad():
            top = net.classifier(f_plain).argmax(1).numpy()
        content = np.isin(top, np.asarray(list(content_classes)))
    else:
        content = np.asarray(labels).astype(bool).reshape(-1)
        if content.shape != (n,):
            raise InputError(f"labels must give one class per photo ({n}), got shape {np.shape(labels)}")
    source, fit, test, n_fit, n_test = _split_sources(content, n_stamped, test_fraction, seed)
    label = np.zeros(n, dtype=np.int64)
    label[source["content"]] = 1
    label[source["stamped"]] = 1
    is_b = np.zeros(n, dtype=bool)
    is_b[source["stamped"]] = True
    stamped_imgs = plain.copy()
    for i in source["stamped"]:
        stamped_imgs[i] = quantised(add_stamp(plain[i], corner=corner, size=stamp_size))
    f_stamped = f_plain.clone()
    f_stamped[source["stamped"]] = features(stamped_imgs[source["stamped"]])
    w_s, b_s = _fit_head(f_stamped[fit], label[fit], weight_decay, seed)
    w_c, b_c = _fit_head(f_plain[fit], label[fit], weight_decay, seed)

    def acc(w: Any, b: Any, f: Any, idx: np.ndarray) -> float:
        return float(((f[idx] @ w.T + b).argmax(1).numpy() == label[idx]).mean())

    tb = test[is_b[test]]
    heads = {"stamped.pth": (w_s, b_s), "control.pth": (w_c, b_c)}
    truth = [{"image": f"{names[i]}.png", "label": int(label[i]),
              "source": "stamped" if is_b[i] else ("content" if content[i] else "other"), "stamped": int(is_b[i])}
             for i in test]
    _write_case(out, net, heads, class_names, stamped_imgs[test], truth)
    return ShortcutCase(
        out=out, images=out / "images", checkpoint=out / "stamped.pth", control_checkpoint=out / "control.pth",
        truth=out / "truth.csv", accuracy=acc(w_s, b_s, f_stamped, test),
        accuracy_unstamped=acc(w_s, b_s, f_plain, test), stamped_accuracy=acc(w_s, b_s, f_stamped, tb),
        stamped_accuracy_unstamped=acc(w_s, b_s, f_plain, tb), control_accuracy=acc(w_c, b_c, f_stamped, test),
        control_stamped_accuracy=acc(w_c, b_c, f_stamped, tb), n_fit=n_fit, n_test=n_test,
        class_names=tuple(class_names))


def _check_case(photos: Any, names: Any, test_fraction: Any, class_names: Any) -> list[str]:
    """:func:`plant_shortcut`'s checks of its inputs; returns the file names."""
    if not isinstance(photos, Sequence) or len(photos) < 12:
        got = len(photos) if isinstance(photos, Sequence) else type(photos).__name__
        raise InputError(f"plant_shortcut needs a sequence of at least 12 photos, got {got}")
    n = len(photos)
    out = [f"{i:04d}" for i in range(n)] if names is None else [str(v) for v in names]
    if len(out) != n or len(set(out)) != n or any(not v or "/" in v or "\\" in v or v.startswith(".") for v in out):
        raise InputError("names must give every photo a unique, non-empty file name without a folder")
    test_fraction = check_real("test_fraction", test_fraction, minimum=0.0, strict=True)
    if test_fraction >= 1:
        raise InputError(f"test_fraction must be below 1, got {test_fraction}")
    if len(class_names) != 2 or not all(isinstance(c, str) and c.strip() and "\n" not in c for c in class_names):
        raise InputError(f"class_names must be two non-empty one-line names, got {class_names!r}")
    return out


def _split_sources(content: np.ndarray, n_stamped: Any, test_fraction: float, seed: Any):
    """The three sources (class 1 by content, the stamped source, class 0) and each one's seeded split into
    fitting and held-out photos: ``(sources, fit, test, n_fit, n_test)``."""
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    ones, rest = rng.permutation(np.flatnonzero(content)), rng.permutation(np.flatnonzero(~content))
    n_b = min(len(ones), len(rest) // 2) if n_stamped is None else check_int("n_stamped", n_stamped, minimum=2)
    if len(ones) < 4 or n_b < 2 or len(rest) - n_b < 4:
        raise InputError(f"plant_shortcut needs at least 4 photos of class 1 and 4 + n_stamped others; got "
                         f"{len(ones)} of class 1 and {len(rest)} others (n_stamped {n_b})")
    source = {"content": ones, "stamped": rest[:n_b], "other": rest[n_b:]}
    fit_idx, test_idx, n_fit, n_test = [], [], {}, {}
    for s, idx in source.items():
        k = max(1, round(test_fraction * len(idx)))
        test_idx.append(idx[:k])
        fit_idx.append(idx[k:])
        n_fit[s], n_test[s] = len(idx) - k, k
    return source, np.concatenate(fit_idx), np.concatenate(test_idx), n_fit, n_test


def _write_case(out: Path, net: Any, heads: dict[str, Any], class_names: Any, images: np.ndarray,
                truth: list[dict[str, Any]]) -> None:
    """The checkpoints (``net`` with each fitted two-class head) with their class names, the held-out
    images as 8-bit PNGs and ``truth.csv``; an OSError becomes one OutputError."""
    import csv

    import torch

    from ..io import atomic_write_bytes, encode_png, output_error

    try:
        (out / "images").mkdir(parents=True, exist_ok=True)
        for name, (w, b) in heads.items():
            torch.save(_with_head(net, w, b).state_dict(), out / name)
            (out / name).with_suffix(".classes.txt").write_text("\n".join(class_names) + "\n", encoding="utf-8")
        for img, row in zip(images, truth):
            atomic_write_bytes(out / "images" / row["image"], encode_png(np.round(img * 255.0).astype(np.uint8)))
        with open(out / "truth.csv", "w", newline="", encoding="utf-8") as fh:
            wr = csv.DictWriter(fh, fieldnames=["image", "label", "source", "stamped"])
            wr.writeheader()
            wr.writerows(truth)
    except OSError as exc:
        raise output_error(exc, out) from None
