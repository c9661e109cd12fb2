"""The pipeline every explanation shares: input checks, targets, forward, layer choice, backward,
upsampling and normalisation.  A method adds only what is its own (a CAM variant: its channel weights).
"""

from __future__ import annotations

import math
import numbers
import re
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..check import check_int as check_positive_int  # noqa: F401  (the methods' name for it)
from ..errors import InputError, ModelError, ZeroGradientError
from ._hooks import LayerCapture, resolve_layer, scoped_model

__all__ = [
    "Explanation",
    "View",
    "check_images",
    "unwrap_model",
    "select_scores",
    "Target",
    "auto_layer",
    "to_grid",
    "upsample",
    "normalize_maps",
]


@dataclass(frozen=True)
class View:
    """Where a model input lies on the photo it was made from: the box of the photo (in the photo's pixels)
    that the preprocessing resized into the model's input.

    ``LoadedModel.preprocess`` attaches one to the tensor it returns (``tensor.salience_view``) and
    :func:`salience.explain` copies it into the explanation (``explanation.view``), so that
    :meth:`Explanation.overlay` and :meth:`Explanation.show` draw the map on the photo's own geometry:
    with ``crop=True`` (resize the short side to 256, centre-crop 224) the map covers the central box
    only, with ``crop=False`` the whole photo.

    Attributes
    ----------
    height, width: the photo's size in pixels.
    top, left, box_height, box_width: the box, in the photo's pixels (floats: a crop need not fall on whole
        pixels of the photo).

    >>> View(300, 400, 0.0, 50.0, 300.0, 300.0).pixels()
    (0, 50, 300, 300)
    """

    height: int
    width: int
    top: float
    left: float
    box_height: float
    box_width: float

    def pixels(self) -> tuple[int, int, int, int]:
        """The box rounded to whole pixels and clipped to the photo: ``(top, left, height, width)``."""
        t = min(max(0, int(round(self.top))), self.height - 1)
        left = min(max(0, int(round(self.left))), self.width - 1)
        b = min(self.height, max(t + 1, int(round(self.top + self.box_height))))
        r = min(self.width, max(left + 1, int(round(self.left + self.box_width))))
        return t, left, b - t, r - left


@dataclass
class Explanation:
    """What an explanation returns.

    Attributes
    ----------
    maps: float32 tensor ``(B, H, W)`` at the input's size (on the input's device).  Unsigned methods
        lie in ``[0, 1]`` (per-image normalised); signed methods (input x gradient, Integrated Gradients,
        occlusion) keep their units (positive = evidence for the target).
    targets: int64 tensor ``(B,)`` of the explained class indices, or ``None`` for a callable target.
    scores: float32 tensor ``(B,)``: the model's score (logit, or the callable's value) for each target.
    method: the registry name of the method.
    layer: the dotted name of the layer used (CAM and Score-CAM), else ``None``.
    extras: per-method results: ``"attributions"`` ``(B, C, H, W)`` for pixel methods, ``"cam"`` (the
        low-resolution map before upsampling), ``"delta"`` (Integrated Gradients' completeness error),
        ... also reachable as attributes (``explanation.delta``).

    Examples
    --------
    >>> import torch
    >>> from salience.attribution import explain
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> e = explain(net, torch.rand(2, 3, 16, 16), "gradcam", target=[0, 1])
    >>> tuple(e.maps.shape), e.targets.tolist(), e.layer, e.numpy().dtype
    ((2, 16, 16), [0, 1], '1', dtype('float32'))
    """

    maps: torch.Tensor
    targets: torch.Tensor | None
    scores: torch.Tensor
    method: str
    layer: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        extras = self.__dict__.get("extras", {})
        if name in extras:
            return extras[name]
        raise AttributeError(f"Explanation has no attribute {name!r} (extras: {sorted(extras)})")

    def numpy(self):
        """The maps as a float32 numpy array ``(B, H, W)``."""
        return self.maps.detach().cpu().numpy()

    def overlay(self, image: Any, index: int = 0, cmap: str = "jet", alpha: float = 0.5, *,
                resize: bool = True, view: Any = None) -> np.ndarray:
        """Map ``index`` as a heatmap blended over ``image``: :func:`salience.viz.overlay` on this map, on the
        photo's own geometry.

        Parameters
        ----------
        image: the picture to draw on, as :func:`salience.load_image` returns it (float ``(H, W, 3)`` in
            ``[0, 1]``) or uint8 / grayscale: the original photo, or the model input's own pixels.
        index: which image of the batch.
        cmap, alpha: colormap name and heatmap opacity, as :func:`salience.viz.overlay`.
        resize: when the map's size differs from the image's, resize the map (bilinear) to the image
            (default); ``False`` raises :class:`~salience.errors.InputError` instead.
        view: where the model input lay on the photo (a :class:`View`); default the explanation's own
            (``self.view``, set when the input came from ``LoadedModel.preprocess``).  With a view and a
            photo of the view's size, the preprocessing's resize *and crop* are undone: the map is resized
            into the view's box and drawn there, and the photo outside the box (cut off by a centre crop)
            shows without heat.  ``False``: ignore the view and resize the map to the whole image.

        Returns
        -------
        numpy.ndarray: uint8 ``(H, W, 3)`` RGB.  The map is min-max normalised for display (a signed map's
        most negative value is the colormap's low end).

        Raises
        ------
        InputError: a bad index; a map whose size differs from the image's with ``resize=False``; an image
        of neither the map's nor the view's size while a view is known (pass the photo the input was made
        from, or ``view=False``).

        Examples
        --------
        >>> import numpy as np, torch
        >>> e = Explanation(torch.rand(2, 8, 8), None, torch.zeros(2), "gradcam")
        >>> img = np.zeros((16, 16, 3), np.float32)
        >>> rgb = e.overlay(img, index=1)
        >>> rgb.shape, rgb.dtype
        ((16, 16, 3), dtype('uint8'))
        """
        from ..viz import image_to_uint8, overlay

        n = self.maps.shape[0]
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not -n <= int(index) < n:
            raise InputError(f"index must be an image of the batch, an integer in [0, {n}), got {index!r}")
        m = self.maps[int(index)].detach().float().cpu().numpy()
        v = self.extras.get("view") if view is None else (None if view is False else view)
        if v is not None and not isinstance(v, View):
            raise InputError(f"view must be a salience View, None or False, got {type(v).__name__}")
        if v is None:
            return overlay(image, m, cmap, alpha, resize=resize)
        rgb = image_to_uint8(image)
        if rgb.shape[:2] == m.shape:
            return overlay(rgb, m, cmap, alpha)  # the model input's own pixels: nothing to undo
        if rgb.shape[:2] != (v.height, v.width):
            raise InputError(
                f"this explanation's input was made from a photo of {v.height} x {v.width} pixels (height x "
                f"width), but the image to draw on is {rgb.shape[0]} x {rgb.shape[1]}; pass that photo, or "
                "view=False to stretch the map over this image")
        t, left, h, w = v.pixels()
        out = rgb.copy()
        out[t:t + h, left:left + w] = overlay(rgb[t:t + h, left:left + w], m, cmap, alpha, resize=True)
        return out

    def show(self, image: Any, index: int = 0, cmap: str = "jet", alpha: float = 0.5, *, resize: bool = True,
             ax: Any = None, view: Any = None) -> Any:
        """Draw :meth:`overlay` in a matplotlib figure, titled with the method, target class and score.

        Parameters
        ----------
        image, index, cmap, alpha, resize, view: as :meth:`overlay` (the map on the photo's own geometry).
        ax: a matplotlib ``Axes`` to draw into; ``None`` (default): a new ``matplotlib.figure.Figure``
            (not registered with ``pyplot``, so nothing is displayed or kept open by itself; a notebook
            shows the returned figure, ``fig.savefig(path)`` writes it).

        Returns
        -------
        matplotlib.figure.Figure: the figure drawn into (``ax``'s when given).

        Raises
        ------
        MissingDependencyError when matplotlib is not installed; InputError as :meth:`overlay`.

        Examples
        --------
        >>> import numpy as np, torch
        >>> e = Explanation(torch.rand(1, 8, 8), torch.tensor([3]), torch.tensor([1.5]), "gradcam")
        >>> fig = e.show(np.zeros((16, 16, 3), np.float32))
        >>> fig.axes[0].get_title()
        'gradcam, class 3 (score 1.5)'
        """
        rgb = self.overlay(image, index, cmap, alpha, resize=resize, view=view)
        try:
            from matplotlib.figure import Figure
        except ImportError:
            from ..errors import MissingDependencyError

            raise MissingDependencyError("Explanation.show needs matplotlib; install it with: pip install "
                                         "matplotlib (or use Explanation.overlay, an RGB array)") from None
        if ax is None:
            ax = Figure(figsize=(4, 4 * rgb.shape[0] / rgb.shape[1]), layout="tight").add_subplot()
        ax.imshow(rgb)
        ax.set_axis_off()
        i = int(index)
        title = self.method
        if self.targets is not None:
            title += f", class {int(self.targets[i])}"
        title += f" (score {float(self.scores[i]):.4g})"
        ax.set_title(title)
        return ax.figure


def unwrap_model(model: Any) -> nn.Module:
    """An ``nn.Module`` from a module or a :class:`~salience.attribution.models.LoadedModel`.

    Examples
    --------
    >>> import torch
    >>> from salience.attribution import unwrap_model
    >>> net = torch.nn.Linear(3, 2)
    >>> unwrap_model(net) is net
    True
    """
    inner = getattr(model, "model", None)
    if not isinstance(model, nn.Module) and isinstance(inner, nn.Module):
        return inner
    if not isinstance(model, nn.Module):
        raise ModelError(
            f"model must be a torch.nn.Module or a salience LoadedModel, got {type(model).__name__}"
        )
    return model


def check_autograd(model: nn.Module) -> None:
    """Raise a clear :class:`ModelError` when autograd cannot run: under ``torch.inference_mode()``, or
    when the model's parameters or buffers are inference tensors (made under that mode)."""
    if torch.is_inference_mode_enabled():
        raise ModelError(
            "this explanation needs autograd (gradients), but it was called inside torch.inference_mode(), "
            "which switches autograd off for good; call it outside that block (torch.no_grad() is fine: "
            "explanations switch gradients on where they need them)"
        )
    for kind, tensors in (("parameters", model.parameters()), ("buffers", model.buffers())):
        if any(t.is_inference() for t in tensors):
            raise ModelError(
                f"the model's {kind} are inference tensors (the model was built or loaded inside "
                "torch.inference_mode()), which autograd cannot use; explanations need autograd: build or "
                "load the model outside inference_mode()"
            )


def check_images(images: Any, model: nn.Module, *, needs_grad: bool = True) -> torch.Tensor:
    """Validate a ``(B, C, H, W)`` floating tensor; returns it detached on the model's device.

    ``needs_grad``: the method back-propagates, so inference mode is refused (:func:`check_autograd`).
    An inference tensor as input is copied into an ordinary one (the caller's tensor is not touched).

    Examples
    --------
    >>> import torch
    >>> from salience.attribution import check_images
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> x = check_images(torch.rand(2, 3, 16, 16), net)
    >>> tuple(x.shape), x.dtype, x.requires_grad
    ((2, 3, 16, 16), torch.float32, False)
    """
    if needs_grad:
        check_autograd(model)
    if not isinstance(images, torch.Tensor):
        try:
            import numpy as np

            if isinstance(images, np.ndarray):
                images = torch.from_numpy(np.ascontiguousarray(images))
            else:
                raise TypeError
        except TypeError:
            raise InputError(
                f"images must be a torch tensor (B, C, H, W) in the model's preprocessing, got "
                f"{type(images).__name__}; use LoadedModel.preprocess(image) for one image"
            ) from None
    if images.ndim == 3:
        raise InputError(
            f"images has shape {tuple(images.shape)}; expected a batch (B, C, H, W): add the batch "
            "dimension with images.unsqueeze(0)"
        )
    if images.ndim != 4:
        raise InputError(f"images must be 4-D (B, C, H, W), got shape {tuple(images.shape)}")
    if min(images.shape) == 0:
        raise InputError(f"images is empty (shape {tuple(images.shape)})")
    if not images.is_floating_point():
        raise InputError(
            f"images must be a floating-point tensor, got dtype {images.dtype}; preprocess the images "
            "(LoadedModel.preprocess) or convert with .float()"
        )
    if not bool(torch.isfinite(images).all()):
        raise InputError("images contains NaN or infinite values; replace them (torch.nan_to_num) first")
    device = _model_device(model)
    x = images.detach()
    if x.is_inference() and not torch.is_inference_mode_enabled():
        x = x.clone()  # an ordinary tensor: autograd may use it
    if device is not None and x.device != device:
        x = x.to(device)
    param = next(model.parameters(), None)
    if param is not None and param.is_floating_point() and x.dtype != param.dtype:
        x = x.to(param.dtype)
    return x


def _model_device(model: nn.Module) -> torch.device | None:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return None


# ------------------------------------------------------------------------------------------------------
# Targets
# ------------------------------------------------------------------------------------------------------

_TOPK = re.compile(r"^top[-_:]?(\d+)$")


@dataclass
class Target:
    """A parsed target: ``kind`` is ``"index"`` (``indices`` known after the forward), ``"rank"``
    (the k-th most likely class) or ``"callable"``.

    Examples
    --------
    >>> from salience.attribution import Target
    >>> Target.parse(2, batch=3).indices.tolist(), Target.parse("top-2", batch=3).rank, Target.parse(None, 3).kind
    ([2, 2, 2], 2, 'rank')
    """

    kind: str
    indices: torch.Tensor | None = None
    rank: int = 1
    fn: Callable[[Any], torch.Tensor] | None = None

    @classmethod
    def parse(cls, target: Any, batch: int) -> Target:
        if target is None:
            return cls("rank", rank=1)
        if callable(target) and not isinstance(target, (torch.Tensor, str)):
            return cls("callable", fn=target)
        if isinstance(target, str):
            key = target.strip().lower().replace(" ", "")
            if key in ("top", "top1", "top-1", "argmax"):
                return cls("rank", rank=1)
            m = _TOPK.match(key.replace("topk:", "top"))
            if m and int(m.group(1)) >= 1:
                return cls("rank", rank=int(m.group(1)))
            raise InputError(
                f"target {target!r} is not understood; expected None/'top1' (the top class), 'top-k' or "
                "'topk:k' (the k-th most likely class), a class index, one index per image, or a callable "
                "on the model output returning one score per image"
            )
        if isinstance(target, (bool, np.bool_)) or (
                isinstance(target, (torch.Tensor, np.ndarray)) and target.dtype in (torch.bool, np.bool_)):
            raise InputError("target must be a class index, not a bool")
        if isinstance(target, (torch.Tensor, np.ndarray)) and target.ndim == 0:
            target = target.item()
        if isinstance(target, (numbers.Integral, numbers.Real)):
            return cls("index", indices=torch.full((batch,), _class_index(target), dtype=torch.long))
        if isinstance(target, (Sequence, torch.Tensor, np.ndarray)) or hasattr(target, "__len__"):
            try:
                t = torch.as_tensor(np.asarray(target) if not isinstance(target, torch.Tensor) else target)
            except (TypeError, ValueError, RuntimeError):
                raise InputError(f"target {_short(target)} is not a list of class indices") from None
            if t.ndim != 1 or (t.numel() and t.dtype == torch.bool) or t.is_complex():
                raise InputError(
                    f"a target list must be one integer class index per image, got shape {tuple(t.shape)} "
                    f"and dtype {t.dtype}"
                )
            if t.is_floating_point():
                if not bool(torch.isfinite(t).all()) or bool((t != t.round()).any()):
                    raise InputError(
                        "a target list must hold whole-number class indices, got "
                        f"{_short(target)}; round them or pass integers"
                    )
            if t.numel() != batch:
                raise InputError(
                    f"{t.numel()} target(s) given for a batch of {batch} image(s); pass exactly one class "
                    "index per image, or a single index for all of them"
                )
            return cls("index", indices=t.long().cpu())
        raise InputError(f"target of type {type(target).__name__} is not understood")


def _class_index(v: Any) -> int:
    """A whole number (``3``, ``np.int64(3)``, ``3.0``) as an int; anything else is an InputError."""
    if isinstance(v, numbers.Integral):
        return int(v)
    f = float(v)
    if not math.isfinite(f) or f != round(f):
        raise InputError(f"target {v!r} is not a whole number; a class index is an integer such as 3")
    return int(f)


def _short(v: Any) -> str:
    """A short description of a value for an error message (never a whole tensor)."""
    if isinstance(v, (torch.Tensor, np.ndarray)):
        return f"{type(v).__name__} of shape {tuple(v.shape)} and dtype {v.dtype}"
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def select_scores(output: Any, target: Target, batch: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(scores (B,), class indices (B,) or None)`` selected from a model output.

    Examples
    --------
    >>> import torch
    >>> from salience.attribution import Target, select_scores
    >>> out = torch.tensor([[0.1, 2.0, 0.3], [1.5, 0.2, 0.4]])
    >>> scores, idx = select_scores(out, Target.parse(None, 2), 2)
    >>> scores.tolist(), idx.tolist()
    ([2.0, 1.5], [1, 0])
    """
    if target.kind == "callable":
        assert target.fn is not None
        scores = target.fn(output)
        if not isinstance(scores, torch.Tensor):
            raise ModelError(
                f"the target callable must return a tensor of shape ({batch},), got {type(scores).__name__}"
            )
        if scores.ndim == 2 and scores.shape[1] == 1:
            scores = scores[:, 0]
        if scores.shape != (batch,):
            raise ModelError(
                f"the target callable must return one score per image, shape ({batch},); it returned shape "
                f"{tuple(scores.shape)} (reduce each image's output to one number, e.g. out.sum(dim=1))"
            )
        return scores, None
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        output = output[0]
    elif isinstance(output, dict) and "out" in output:
        output = output["out"]
    if not isinstance(output, torch.Tensor) or output.ndim != 2 or output.shape[0] != batch:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ModelError(
            f"class targets need a model output of shape (B, num_classes), got {shape}; for embeddings, "
            "segmentation or detection pass target= a callable returning one score per image"
        )
    n_classes = output.shape[1]
    if target.kind == "rank":
        if target.rank > n_classes:
            raise ModelError(f"target top-{target.rank} asked for, but the model has {n_classes} classes")
        if target.rank == 1:
            idx = output.detach().argmax(dim=1)
        else:
            idx = output.detach().topk(target.rank, dim=1).indices[:, -1]
    else:
        assert target.indices is not None
        idx = target.indices.to(output.device)
        bad = (idx < 0) | (idx >= n_classes)
        if bool(bad.any()):
            raise ModelError(
                f"target class index {int(idx[bad][0])} is out of range; the model has {n_classes} classes "
                f"(valid indices 0..{n_classes - 1})"
            )
    scores = output.gather(1, idx[:, None])[:, 0]
    return scores, idx


# ------------------------------------------------------------------------------------------------------
# Layers: automatic choice, token-to-grid reshape
# ------------------------------------------------------------------------------------------------------


def to_grid(t: torch.Tensor, input_hw: tuple[int, int]) -> torch.Tensor | None:
    """A layer output as a ``(B, C, h, w)`` grid, or ``None`` when it has no spatial layout.

    * 4-D: channels-first ``(B, C, h, w)``, or channels-last ``(B, h, w, C)`` (Swin) when that reading's
      aspect ratio matches the input's better;
    * 3-D tokens ``(B, N, C)``: ``N`` a perfect square (no class token) or ``1 + square`` (ViT's class
      token first, dropped), reshaped to ``(B, C, s, s)``.
    """
    H, W = input_hw
    if t.ndim == 4:
        _, a, b, c = t.shape
        target = math.log(H / W)
        first = abs(math.log(b / c) - target) if b > 0 and c > 0 else math.inf
        last = abs(math.log(a / b) - target) if a > 0 and b > 0 else math.inf
        if last < first - 1e-9 and c > max(a, b):
            return t.permute(0, 3, 1, 2)
        return t
    if t.ndim == 3:
        _, n, c = t.shape
        for drop in (1, 0):
            s = math.isqrt(n - drop) if n - drop > 0 else 0
            if s > 1 and s * s == n - drop:
                g = t[:, drop:, :]
                return g.reshape(t.shape[0], s, s, c).permute(0, 3, 1, 2)
    return None


_AUTO_CACHE: weakref.WeakKeyDictionary[nn.Module, dict[tuple, str]] = weakref.WeakKeyDictionary()


def auto_layer(model: nn.Module, x: torch.Tensor, reshape: Callable | None = None,
               target: Target | None = None) -> str:
    """The name of the last layer with a spatial output whose gradient is not confined to one position.

    Found with one dry forward + backward on the first image under hooks (cached per model and input
    size for class targets).  The probe explains what the call will explain: ``target`` (the top class
    when ``None``; a callable target is called on the probe's output, so detection models work).  The
    gradient condition skips layers after the point where a vision transformer reads only its class
    token (their gradient is zero at every patch), which lands on the last block's first norm.  When the
    model's output is itself a spatial map ``(B, K, H', W')`` (segmentation), layers with ``K`` channels
    are its class logits, not features, and are skipped.  Layers whose first dimension is not the batch
    (a detector's RoI features, one row per box) are skipped; for a detector (a list of dicts with
    ``boxes``, torchvision's Faster R-CNN / RetinaNet / FCOS / SSD) only the layers under ``backbone`` are
    candidates, so the choice is the backbone's last feature layer whose gradient is spread.
    """
    tgt = target if target is not None else Target("rank", rank=1)
    key = (tuple(x.shape[1:]), reshape is not None, tgt.kind, tgt.rank,
           None if tgt.indices is None else int(tgt.indices[0]))
    cache = _AUTO_CACHE.setdefault(model, {})
    if tgt.kind != "callable" and key in cache and cache[key] in dict(model.named_modules()):
        return cache[key]
    hw = (x.shape[2], x.shape[3])
    records: list[tuple[str, torch.Tensor]] = []
    handles = []

    def make_hook(name: str) -> Callable:
        def hook(mod: nn.Module, inputs: Any, out: Any) -> None:
            if isinstance(out, torch.Tensor) and out.requires_grad and out.is_floating_point():
                g = reshape(out) if reshape is not None else to_grid(out, hw)
                if g is not None and g.ndim == 4 and g.shape[2] * g.shape[3] > 1:
                    records.append((name, out))
        return hook

    with scoped_model(model):
        try:
            for name, m in model.named_modules():
                if name:
                    handles.append(m.register_forward_hook(make_hook(name)))
            out, scores, batch = _probe(model, x, tgt, records)
        finally:
            for h in handles:
                h.remove()
        # a layer whose rows are not the images (a detector's RoI features: one row per box) has no map
        records = [(n, t) for n, t in records if t.shape[0] == batch]
        if _is_detections(out):  # a torchvision-style detector: its backbone's features, not the heads'
            records = [(n, t) for n, t in records if n.startswith("backbone.")] or records
        if not records:
            raise ModelError(
                "found no layer with a spatial output (B, C, h, w) or a square token grid (B, 1+N, C); "
                "pass layer= the name of a feature layer, or reshape= a callable that makes one "
                "(B, C, h, w)"
            )
        seg = _spatial_output(out)
        if seg is not None:  # segmentation: drop the class-logit layers
            kept = [(n, t) for n, t in records
                    if (_g := reshape(t) if reshape is not None else to_grid(t, hw)) is None or _g.shape[1] != seg]
            records = kept or records
        if not scores.requires_grad:
            raise ZeroGradientError(
                "the target score does not depend on the input (it carries no gradient), so no layer can be "
                "explained; check the target (a callable target must compute its score from the model "
                "output, e.g. a detection's score, not a constant)"
            )
        tensors = [t for _, t in records]
        grads = torch.autograd.grad(scores.sum(), tensors, allow_unused=True, retain_graph=False)
    chosen = _last_spread_layer(records, grads, reshape, hw)
    if tgt.kind != "callable":
        cache[key] = chosen
    return chosen


def _is_detections(out: Any) -> bool:
    """A torchvision-style detector output: a list (or tuple) of dicts with ``boxes``, one per image."""
    return (isinstance(out, (list, tuple)) and len(out) > 0
            and all(isinstance(o, dict) and "boxes" in o for o in out))


def _probe(model: nn.Module, x: torch.Tensor, tgt: Target, records: list) -> tuple[Any, torch.Tensor, int]:
    """The auto-layer probe's forward on the first image: ``(output, score of that image, images run)``."""
    with torch.enable_grad():
        out = model(x[:1].detach().clone().requires_grad_(True))
        if tgt.kind != "callable" and _is_detections(out):
            raise ModelError(
                "the model is a detector (it returned a list of dicts with boxes, one per image), which has no "
                "class scores to explain; pass target=salience.targets.detection(box, label) (the detection "
                "matching a box) or another callable on its output"
            )
        if not (tgt.kind == "callable" or _is_logits(out)):
            return out, _generic_score(out), 1
        probe = tgt
        if tgt.kind == "index" and tgt.indices is not None:
            probe = Target("index", indices=tgt.indices[:1])
        try:
            return out, select_scores(out, probe, 1)[0], 1
        except ModelError:
            if tgt.kind != "callable" or x.shape[0] == 1:
                raise
            # a per-image callable target (one box or text per image) fits only the whole batch
            records.clear()
            out = model(x.detach().clone().requires_grad_(True))
            return out, select_scores(out, probe, x.shape[0])[0][:1], x.shape[0]


def _last_spread_layer(records: list[tuple[str, torch.Tensor]], grads: Sequence[torch.Tensor | None],
                       reshape: Callable | None, hw: tuple[int, int]) -> str:
    """The last recorded layer whose gradient is non-zero at more than one position (else the last layer
    with any gradient); a ModelError when every gradient is zero."""
    any_nonzero = False
    for (name, _), g in zip(reversed(records), reversed(grads)):
        if g is None:
            continue
        grid = reshape(g) if reshape is not None else to_grid(g, hw)
        if grid is None:
            continue
        nz = int((grid.detach().abs().sum(dim=1)[0] > 0).sum())
        any_nonzero = any_nonzero or nz > 0
        if nz > 1:
            return name
    if not any_nonzero:
        raise ZeroGradientError(ZERO_GRADIENT_HINT.format(where="inside the model"))
    return records[-1][0]


#: the one explanation of an all-zero gradient, shared by every method
ZERO_GRADIENT_HINT = (
    "every gradient {where} is exactly zero for the chosen target(s), so the map would be blank: the "
    "target score does not depend on the input there. Common causes: an untrained model whose output "
    "layer is initialised to zero, a layer that does not reach the score, or a target that ignores the "
    "image; load trained weights, choose another layer or another target"
)


def _spatial_output(out: Any) -> int | None:
    """The channel count ``K`` of a segmentation output ``(B, K, H', W')`` (a tensor or ``out["out"]``)."""
    if isinstance(out, dict):
        out = out.get("out")
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        out = out[0]
    if isinstance(out, torch.Tensor) and out.ndim == 4:
        return int(out.shape[1])
    return None


def raise_if_insensitive(flat_signal: torch.Tensor, method: str, what: str, cause: str = "") -> None:
    """:class:`ZeroGradientError` when an image's signal (gradients, score changes) is exactly zero.

    ``flat_signal``: ``(B, N)``; ``what`` says what was zero ("gradient with respect to the input");
    ``cause`` is appended to "the target score does not depend on the input" (e.g. guided rules).
    """
    dead = ~(flat_signal != 0).any(dim=1)
    if bool(dead.any()):
        ids = ", ".join(str(int(i)) for i in torch.nonzero(dead).flatten()[:10])
        raise ZeroGradientError(
            f"{method}: the {what} is exactly zero for image(s) {ids}, so the map would be blank or noise: "
            f"the target score does not depend on the input{cause}. Common causes: an untrained model whose "
            "output layer is initialised to zero, or a target that ignores the image; load trained weights "
            "or choose another target"
        )


def cam_maps(cam: torch.Tensor, hw: tuple[int, int], method: str, layer: str) -> torch.Tensor:
    """Upsample rectified ``(B, h, w)`` CAMs to ``hw`` and min-max normalise them, refusing to stretch a
    constant map: an image whose CAM is constant (a 1 x 1 layer output, or equal values everywhere) gets
    an all-zero map and a warning (stretching it would turn float round-off into a pattern)."""
    flat = cam.reshape(cam.shape[0], -1)
    hi, lo = flat.max(dim=1).values, flat.min(dim=1).values
    const = (hi - lo) <= 1e-6 * hi.abs()
    maps = normalize_maps(upsample(cam, hw))
    if bool(const.any()):
        ids = ", ".join(str(int(i)) for i in torch.nonzero(const).flatten()[:10])
        zero = bool((hi[const] == 0).all())
        why = ("zero everywhere (no positive evidence for the target at this layer)" if zero else
               f"constant (the layer's output is {cam.shape[1]} x {cam.shape[2]} for this input, or equal "
               "everywhere)")
        todo = ("Try another layer or target" if zero else
                "Use a larger input or an earlier layer with a finer grid")
        import warnings

        warnings.warn(
            f"{method}: the CAM at layer {layer!r} is {why} for image(s) {ids}, so it carries no spatial "
            f"information; those maps are all zeros. {todo}", stacklevel=3)
        maps = torch.where(const.to(maps.device)[:, None, None], torch.zeros_like(maps), maps)
    return maps


def _is_logits(out: Any) -> bool:
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        out = out[0]
    return isinstance(out, torch.Tensor) and out.ndim == 2


def _generic_score(out: Any) -> torch.Tensor:
    if isinstance(out, dict):
        out = next(v for v in out.values() if isinstance(v, torch.Tensor))
    if isinstance(out, (tuple, list)):
        out = out[0]
    return out.reshape(out.shape[0], -1).sum(dim=1)


def layer_for(model: nn.Module, x: torch.Tensor, layer: Any, reshape: Callable | None,
              target: Target | None = None) -> tuple[str, nn.Module]:
    if layer is None:
        layer = auto_layer(model, x, reshape, target)
    return resolve_layer(model, layer)


def layer_forward(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    module: nn.Module,
    *,
    need_grad: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor | None, Any]:
    """Forward with the layer captured; backward from the target scores to the layer only.

    Returns ``(activation, gradient, scores, indices, output)`` (activation/gradient are the raw layer
    output of its last call and its gradient).
    """
    with LayerCapture(module) as cap, torch.enable_grad():
        out = model(x)
    act = cap.last
    with torch.enable_grad():
        scores, idx = select_scores(out, target, x.shape[0])
        grad: Any = None
        if need_grad:
            if not scores.requires_grad:
                raise ModelError(
                    "the target score does not depend on the chosen layer; choose a layer that the model "
                    "output depends on"
                )
            if isinstance(act, dict):  # a dict of feature maps: one gradient per value (zeros if unused)
                keys = [k for k, v in act.items() if v.requires_grad]
                gs = torch.autograd.grad(scores.sum(), [act[k] for k in keys], allow_unused=True) if keys else []
                if all(g is None for g in gs):
                    raise ModelError(
                        "the target score does not depend on the chosen layer's outputs; choose a layer "
                        "that the model output depends on"
                    )
                got = dict(zip(keys, gs))
                grad = {k: (got[k] if got.get(k) is not None else torch.zeros_like(v)) for k, v in act.items()}
                return {k: v.detach() for k, v in act.items()}, grad, scores.detach(), idx, out
            (grad,) = torch.autograd.grad(scores.sum(), act, allow_unused=True)
            if grad is None:
                raise ModelError(
                    "the target score does not depend on the chosen layer's last call; choose a layer that "
                    "the model output depends on"
                )
    if isinstance(act, dict):
        return {k: v.detach() for k, v in act.items()}, grad, scores.detach(), idx, out
    return act.detach(), grad, scores.detach(), idx, out


# ------------------------------------------------------------------------------------------------------
# Maps
# ------------------------------------------------------------------------------------------------------


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear (half-pixel centres, ``align_corners=False``) resize of ``(B, h, w)`` maps to ``size``.

    ``maps``: float tensor ``(B, h, w)``; ``size``: ``(H, W)``.  Returns ``(B, H, W)`` (``maps`` itself
    when it already has that size).

    >>> import torch
    >>> from salience.attribution import upsample
    >>> tuple(upsample(torch.ones(2, 3, 4), (6, 8)).shape)
    (2, 6, 8)
    """
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def normalize_maps(maps: torch.Tensor, how: str = "minmax") -> torch.Tensor:
    """Per-image normalisation of ``(B, H, W)`` maps to ``[0, 1]``.

    ``"minmax"``: (m - min) / (max - min); ``"max"``: m / max (for maps already >= 0, keeps 0 at 0).
    A constant map becomes all zeros (never NaN).
    """
    flat = maps.reshape(maps.shape[0], -1)
    hi = flat.max(dim=1).values
    if how == "minmax":
        lo = flat.min(dim=1).values
    elif how == "max":
        lo = torch.zeros_like(hi)
    else:
        raise InputError(f"normalisation must be 'minmax' or 'max', got {how!r}")
    span = hi - lo
    safe = torch.where(span > 0, span, torch.ones_like(span))
    out = (flat - lo[:, None]) / safe[:, None]
    out = torch.where(span[:, None] > 0, out, torch.zeros_like(out))
    return out.reshape(maps.shape).float()


def finish(maps: torch.Tensor) -> torch.Tensor:
    """float32, contiguous, finite (a guard: any non-finite value is an internal error)."""
    maps = maps.detach().float().contiguous()
    if not bool(torch.isfinite(maps).all()):
        raise ModelError(
            "the explanation contains NaN or infinite values; the model produced non-finite scores or "
            "gradients for this input"
        )
    return maps


def check_unknown(method: str, params: dict) -> None:
    if params:
        raise InputError(
            f"method {method!r} got unknown parameter(s) {', '.join(sorted(params))}; see "
            f"help(salience.explain) and docs/explain.md for the parameters it takes"
        )


def pick_scores(out: Any, idx: torch.Tensor | None, tgt: Target, n: int) -> torch.Tensor:
    """Scores of a (sub-)batch ``out`` of ``n`` rows for fixed class indices ``idx`` (or ``tgt``'s callable)."""
    if tgt.kind == "callable":
        scores, _ = select_scores(out, tgt, n)
        return scores
    assert idx is not None
    return select_scores(out, Target("index", indices=idx), n)[0]


def chunks(total: int, size: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of consecutive slices of ``range(total)``, ``size`` long (the last may be shorter)."""
    for s in range(0, total, size):
        yield s, min(total, s + size)


def spatial_grid(t: Any, hw: tuple[int, int], reshape: Callable | None, layer: str) -> torch.Tensor:
    """A layer's output ``t`` as ``(B, C, h, w)`` (``reshape`` if given, else a token grid); ModelError otherwise.

    A layer returning a dict of tensors (an FPN) needs ``reshape=`` to choose or combine its entries."""
    if isinstance(t, dict) and reshape is None:
        raise ModelError(
            f"layer {layer!r} returns a dict of tensors (keys {', '.join(map(str, list(t)[:8]))}); pass "
            "reshape= a callable turning that dict into one (B, C, h, w) map, e.g. reshape=lambda d: d['0'] "
            "for one FPN level, or choose a layer that returns a tensor"
        )
    g = reshape(t) if reshape is not None else to_grid(t, hw)
    if not isinstance(g, torch.Tensor) or g.ndim != 4:
        shape = tuple(t.shape) if isinstance(t, torch.Tensor) else f"dict -> {type(g).__name__}"
        raise ModelError(
            f"layer {layer!r} has output shape {shape}, which is not a spatial map (B, C, h, w) "
            "nor a square token grid (B, 1+N, C); choose a convolutional layer, or pass reshape= a callable "
            "turning the output into (B, C, h, w)"
        )
    return g


def target_scores(out: Any, tgt: Target, idx: torch.Tensor | None, n: int, *, probabilities: bool) -> torch.Tensor:
    """The one score selection of the perturbation methods (RISE, Score-CAM) and the faithfulness curves.

    ``out``: a model output for ``n`` rows (a tensor, or a tuple/list/dict with ``"out"`` holding it).
    For a callable target, its value; otherwise the softmax probability (``probabilities=True``) or the
    raw score (logit) of class ``idx[i]`` in row ``i`` (``idx``: ``(n,)`` indices).  Returns ``(n,)``.

    Examples
    --------
    >>> import torch
    >>> from salience.attribution import Target, target_scores
    >>> out = torch.tensor([[0.0, 0.0], [0.0, 2.0]])
    >>> p = target_scores(out, Target.parse(1, 2), torch.tensor([1, 1]), 2, probabilities=True)
    >>> [round(v, 4) for v in p.tolist()]
    [0.5, 0.8808]
    """
    if tgt.kind == "callable":
        return select_scores(out, tgt, n)[0]
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        out = out[0]
    elif isinstance(out, dict) and "out" in out:
        out = out["out"]
    if probabilities and isinstance(out, torch.Tensor):
        out = torch.softmax(out.float(), dim=1)
    assert idx is not None
    return select_scores(out, Target("index", indices=idx), n)[0]


def gaussian_blur(x: torch.Tensor, sigma: float, *, border: str = "reflect") -> torch.Tensor:
    """The one tensor Gaussian blur: separable, truncated at 3 sigma, per channel.

    ``x``: float ``(B, C, H, W)``; ``sigma`` in pixels (``<= 0``: an unchanged copy).  The kernel has radius
    ``max(1, ceil(3 sigma))``, is computed in float64, normalised to sum 1 and cast to ``x``'s dtype.
    ``border``: ``"reflect"`` (mirror without repeating the edge; falls back to ``"replicate"`` when the
    radius reaches the image's size, where a reflection is undefined) or ``"replicate"`` (repeat the edge
    pixel).  Integrated Gradients' blurred baseline uses ``"replicate"``, the faithfulness curves'
    blur fill ``"reflect"``.

    >>> import torch
    >>> from salience.attribution import gaussian_blur
    >>> y = gaussian_blur(torch.ones(1, 3, 8, 8), 1.5)
    >>> tuple(y.shape), bool(torch.allclose(y, torch.ones_like(y)))
    ((1, 3, 8, 8), True)
    """
    if border not in ("reflect", "replicate"):
        raise InputError(f"border must be 'reflect' or 'replicate', got {border!r}")
    if sigma <= 0:
        return x.clone()
    H, W = x.shape[-2:]
    radius = max(1, int(math.ceil(3.0 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-(t * t) / (2.0 * sigma * sigma))
    k = (k / k.sum()).to(dtype=x.dtype, device=x.device)
    C = x.shape[1]
    mode = "reflect" if border == "reflect" and radius < min(H, W) else "replicate"
    y = F.pad(x, (radius, radius, 0, 0), mode=mode)
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(C, 1, 1, -1), groups=C)
    y = F.pad(y, (0, 0, radius, radius), mode=mode)
    return F.conv2d(y, k.view(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C)

