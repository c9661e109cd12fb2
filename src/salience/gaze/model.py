"""The learned fixation model: frozen MobileNetV2 features, a small trained readout, a fixation density.

Architecture (after DeepGaze II, Kummerer, Wallis, Gatys, Bethge, ICCV 2017, and DeepGaze IIE, Linardos,
Kummerer, Press, Bethge, ICCV 2021; the weights are trained here, they are not the authors')

1. The image is resized (bilinear, antialiased) so that its longer side is ``input_long_side`` pixels
   (384; 800 x 600 -> 384 x 288), normalised with the ImageNet mean and std, and passed through the
   frozen ``features`` of the default MobileNetV2 (:func:`salience.load_model`, its offline ImageNet
   weights).  The outputs of four blocks are kept (``config["layers"]``): ``features.6`` (stride 8,
   32 channels), ``features.13`` (stride 16, 96), ``features.16`` and ``features.17`` (stride 32, 160 and
   320).  (Adding ``features.18``, 1280 channels, fitted the training images better and the validation
   images worse: it is left out.)
2. Readout: each kept map is layer-normalised (over channels and positions, with a learned per-channel
   scale and shift), mapped by a 1 x 1 convolution to 8 channels, and bilinearly upsampled to the stride-8
   grid; the sum goes through softplus, a 1 x 1 convolution to 16 channels, softplus, and a 1 x 1
   convolution to one channel.  (Upsampling after the first 1 x 1 convolution equals upsampling the
   features first and convolving their concatenation, since both are linear; it is just cheaper.)
3. A Gaussian blur with a learned standard deviation (a fraction of the grid's longer side; zero padding,
   renormalised at the borders).
4. A learned centre-bias prior: a 12 x 16 grid of log-density values over the image (in relative
   coordinates), bilinearly upsampled and added.
5. The result is upsampled to the output size (bilinear) and normalised by a softmax over all pixels, so
   ``exp(log_density)`` sums to 1 over the image: a fixation density.  The log-density makes the
   information gain of a prediction, in bits per fixation, directly available.

The readout has about 6,500 trained numbers; its file ships in the package (``weights/``) and is
SHA-256 checked and read with ``torch.load(weights_only=True)`` before use.

>>> import numpy as np
>>> from salience.gaze import fixation_map
>>> img = np.random.default_rng(0).random((60, 80, 3)).astype(np.float32)
>>> m = fixation_map(img)                     # doctest: +SKIP
>>> m.shape, m.dtype, float(m.max())          # doctest: +SKIP
((60, 80), dtype('float32'), 1.0)
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError, ModelError

__all__ = [
    "DEFAULT_CONFIG",
    "WEIGHTS_FILE",
    "WEIGHTS_SHA256",
    "Readout",
    "FixationModel",
    "backbone_size",
    "load_fixation_model",
    "fixation_log_density",
    "fixation_map",
    "resolve_device",
]

#: the shipped readout (trained by ``salience train-fixations --dataset osie --seed 0``)
WEIGHTS_FILE = "deepgaze-mnv2-osie.pt"
#: its SHA-256, checked before the file is read
WEIGHTS_SHA256 = "42071af7320ab53ea95eb0321e7181f8bdc43eff77a6b1b7c88961e3a1b9122e"

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)

#: MobileNetV2 ``features`` blocks, their channels and strides
LAYER_CHANNELS = {6: 32, 10: 64, 13: 96, 16: 160, 17: 320, 18: 1280}

#: the architecture's settings (stored in every weights file, so a file always rebuilds its own model)
DEFAULT_CONFIG: dict[str, Any] = {
    "backbone": "mobilenet_v2",
    "layers": [6, 13, 16, 17],
    "input_long_side": 384,
    "hidden": [8, 16],
    "prior_grid": [12, 16],
}

_FORMAT = "salience-gaze-readout"


def backbone_size(height: int, width: int, long_side: int) -> tuple[int, int]:
    """The size ``(h, w)`` the backbone sees: the longer side scaled to ``long_side``, each side >= 32."""
    s = long_side / max(height, width)
    return max(32, int(round(height * s))), max(32, int(round(width * s)))


class Readout(nn.Module):
    """The trained part: layer norms, 1 x 1 convolutions with softplus, a learned blur and a learned prior.

    Parameters
    ----------
    channels: channels of each backbone map, finest (stride 8) first.
    hidden: widths of the two hidden 1 x 1 convolutions (8, 16).
    prior_grid: ``(rows, cols)`` of the learned log-density centre prior.
    init_sigma: initial blur standard deviation as a fraction of the grid's longer side.

    Examples
    --------
    >>> import torch
    >>> from salience.gaze import Readout
    >>> r = Readout(channels=[32, 96])
    >>> sum(p.numel() for p in r.parameters()) > 0, isinstance(r, torch.nn.Module)
    (True, True)
    """

    def __init__(self, channels: Sequence[int], hidden: Sequence[int] = (8, 16),
                 prior_grid: Sequence[int] = (12, 16), init_sigma: float = 0.03) -> None:
        super().__init__()
        self.norms = nn.ModuleList(nn.GroupNorm(1, int(c)) for c in channels)
        self.first = nn.ModuleList(nn.Conv2d(int(c), int(hidden[0]), 1, bias=False) for c in channels)
        self.bias = nn.Parameter(torch.zeros(int(hidden[0])))
        self.conv2 = nn.Conv2d(int(hidden[0]), int(hidden[1]), 1)
        self.conv3 = nn.Conv2d(int(hidden[1]), 1, 1)
        self.log_sigma = nn.Parameter(torch.tensor(math.log(init_sigma)))
        self.prior = nn.Parameter(torch.zeros(1, 1, int(prior_grid[0]), int(prior_grid[1])))

    def logits(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """Unnormalised log-density ``(B, gh, gw)`` on the grid of the first (finest) map."""
        grid = tuple(feats[0].shape[-2:])
        h = None
        for f, norm, conv in zip(feats, self.norms, self.first):
            z = conv(norm(f.float()))
            if tuple(z.shape[-2:]) != grid:
                z = F.interpolate(z, size=grid, mode="bilinear", align_corners=False)
            h = z if h is None else h + z
        h = F.softplus(h + self.bias.view(1, -1, 1, 1))
        h = F.softplus(self.conv2(h))
        h = self._blur(self.conv3(h))
        prior = F.interpolate(self.prior, size=grid, mode="bilinear", align_corners=False)
        return (h + prior)[:, 0]

    def sigma_cells(self, grid: tuple[int, int]) -> torch.Tensor:
        return torch.exp(self.log_sigma) * max(grid)

    def _blur(self, x: torch.Tensor) -> torch.Tensor:
        gh, gw = x.shape[-2:]
        sigma = self.sigma_cells((gh, gw))
        r = max(1, min(int(math.ceil(3.0 * float(sigma.detach()))), max(gh, gw)))
        t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
        k = torch.exp(-0.5 * (t / sigma) ** 2)
        k = k / k.sum()
        kh, kw = k.view(1, 1, -1, 1), k.view(1, 1, 1, -1)

        def sep(v: torch.Tensor) -> torch.Tensor:
            v = F.conv2d(F.pad(v, (0, 0, r, r)), kh)
            return F.conv2d(F.pad(v, (r, r, 0, 0)), kw)

        ones = torch.ones(1, 1, gh, gw, dtype=x.dtype, device=x.device)
        return sep(x) / sep(ones)

    def log_density(self, feats: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        """Log fixation density ``(B, H, W)`` (natural log; ``exp`` sums to 1 over each image) at ``size``."""
        z = self.logits(feats)[:, None]
        if tuple(z.shape[-2:]) != tuple(size):
            z = F.interpolate(z, size=tuple(size), mode="bilinear", align_corners=False)
        b = z.shape[0]
        return F.log_softmax(z.reshape(b, -1), dim=1).reshape(b, *size)


@contextmanager
def one_intra_op_thread() -> Iterator[None]:
    """Run the block's CPU kernels on one intra-op thread (the caller's count is restored after).

    oneDNN's 1 x 1 convolutions (MobileNetV2's projections in blocks 7-17 and the readout's) divide their
    sums between torch's intra-op threads, so the map moved by up to 1e-6 between one thread and two
    to four: a map would depend on the machine's core count and on ``torch.set_num_threads``.  With one
    thread every value is summed in one order.  torch keeps the count per OS thread, so two threads
    computing maps at once do not change each other's setting.  Costs: the 640 x 480 map takes longer on
    a machine with idle cores (figures in docs/fixation-model.md).  For CPU work only: other devices have no
    intra-op threads to set.
    """
    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


class FixationModel(nn.Module):
    """Backbone (frozen MobileNetV2 features) plus :class:`Readout`: images in, log fixation densities out.

    Parameters
    ----------
    backbone: MobileNetV2's ``features`` (an ``nn.Sequential``), e.g. ``salience.load_model().model.features``.
    readout: a :class:`Readout` whose ``channels`` match ``config["layers"]``.
    config: the architecture's settings (:data:`DEFAULT_CONFIG`).

    Examples
    --------
    >>> import torch
    >>> from salience.gaze import load_fixation_model
    >>> m = load_fixation_model()
    >>> with torch.no_grad():
    ...     out = m(torch.rand(1, 3, 64, 96))
    >>> tuple(out.shape), round(float(out.exp().sum()), 4)
    ((1, 64, 96), 1.0)
    """

    def __init__(self, backbone: nn.Module, readout: Readout, config: dict[str, Any]) -> None:
        super().__init__()
        self.backbone = backbone.eval()
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        self.readout = readout
        self.config = dict(config)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def device(self) -> torch.device:
        return self.mean.device

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` RGB in ``[0, 1]`` -> the backbone's normalised input at :func:`backbone_size`."""
        h, w = backbone_size(images.shape[2], images.shape[3], int(self.config["input_long_side"]))
        x = images.to(self.device, torch.float32)
        if (h, w) != tuple(images.shape[2:]):
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False,
                              antialias=(h < images.shape[2] or w < images.shape[3]))
        return (x - self.mean) / self.std

    def _features(self, images: torch.Tensor) -> list[torch.Tensor]:
        keep = [int(i) for i in self.config["layers"]]
        x = self.prepare(images)
        out = []
        for i, block in enumerate(self.backbone):
            x = block(x)
            if i in keep:
                out.append(x)
            if i >= keep[-1]:
                break
        return out

    def _each_image(self, fn: Callable[[torch.Tensor], Any], images: torch.Tensor) -> list[Any]:
        """``fn`` of each image alone on one intra-op thread (CPU; a batch is spread over torch's threads).

        Every image is computed alone, in the same order of sums whatever the thread count and the batch
        it came in: a CPU result is bit-identical at any ``torch.set_num_threads`` and equals the image's
        result alone.  Other devices get the whole batch at once.
        """
        if self.device.type != "cpu":
            with torch.no_grad():
                return [fn(images)]

        def one(k: int) -> Any:
            with torch.no_grad(), one_intra_op_thread():
                return fn(images[k:k + 1])

        b = int(images.shape[0])
        workers = min(b, torch.get_num_threads())
        if workers <= 1:
            return [one(k) for k in range(b)]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="salience-gaze") as pool:
            return list(pool.map(one, range(b)))

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The kept backbone maps of a batch ``(B, 3, H, W)`` in ``[0, 1]``, finest first."""
        parts = self._each_image(self._features, images)
        return [torch.cat(level) if len(level) > 1 else level[0] for level in zip(*parts, strict=True)]

    def forward(self, images: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """Log fixation density ``(B, H, W)`` float32 (``size``, default the input's), natural log."""
        out_size = tuple(images.shape[2:]) if size is None else tuple(size)
        parts = self._each_image(lambda x: self.readout.log_density(self._features(x), out_size), images)
        return torch.cat(parts) if len(parts) > 1 else parts[0]


# --------------------------------------------------------------------------------------------------------
# weights
# --------------------------------------------------------------------------------------------------------

def packaged_weights() -> Path:
    """Path of the shipped readout weights."""
    return Path(__file__).resolve().parent / "weights" / WEIGHTS_FILE


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_readout(readout: Readout, config: dict[str, Any], path: str | os.PathLike) -> str:
    """Write a readout and its config as a tensors-only file (readable with ``weights_only=True``);
    returns its SHA-256."""
    state = {k: v.detach().cpu().contiguous().clone() for k, v in readout.state_dict().items()}
    blob = {"format": _FORMAT, "version": 1, "config": _plain(config), "state_dict": state}
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    torch.save(blob, str(tmp))
    os.replace(tmp, p)
    return _sha256(p)


def _plain(config: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in config.items():
        out[str(k)] = [int(x) for x in v] if isinstance(v, (list, tuple)) else v
    return out


def load_readout(path: str | os.PathLike, *, sha256: str | None = None) -> tuple[Readout, dict[str, Any]]:
    """Read a readout file written by :func:`save_readout` (checksum first when ``sha256`` is given)."""
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"fixation-model weights {str(p)!r} do not exist")
    if sha256 is not None:
        got = _sha256(p)
        if got != sha256:
            raise ModelError(
                f"{p} has SHA-256 {got}, expected {sha256}: the shipped fixation-model weights are corrupt "
                "or were replaced; reinstall salience (pip install --force-reinstall salience)"
            )
    try:
        blob = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"{p} is not a readable tensors-only weights file: {str(exc).splitlines()[0][:300]}") from None
    if not (isinstance(blob, dict) and blob.get("format") == _FORMAT and isinstance(blob.get("state_dict"), dict)):
        raise ModelError(f"{p} is not a salience fixation-model file (written by salience train-fixations)")
    config = {**DEFAULT_CONFIG, **dict(blob.get("config") or {})}
    layers = [int(i) for i in config["layers"]]
    if any(i not in LAYER_CHANNELS for i in layers) or layers != sorted(layers):
        raise ModelError(f"{p}: unsupported backbone layers {layers}; expected increasing values of "
                         f"{sorted(LAYER_CHANNELS)}")
    readout = Readout([LAYER_CHANNELS[i] for i in layers], config["hidden"], config["prior_grid"])
    try:
        readout.load_state_dict(blob["state_dict"], strict=True)
    except RuntimeError as exc:
        raise ModelError(f"the weights in {p} do not fit the readout: {str(exc)[:300]}") from None
    return readout.eval(), config


_CACHE: dict[tuple[str, str], FixationModel] = {}
_LOCK = threading.Lock()


def resolve_device(device: Any) -> torch.device:
    """``torch.device`` of ``device`` (None = CPU); a clear error for a bad name or a missing CUDA device."""
    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"device must be 'cpu', 'cuda' or a torch.device, got {device!r} ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' asked for, but torch sees no CUDA device; use device='cpu'")
    return dev


def load_fixation_model(weights: str | os.PathLike | None = None, *, device: Any = None) -> FixationModel:
    """The fixation model: the default MobileNetV2 backbone plus a trained readout, in eval mode.

    Models are cached per (weights, device): the second call is free.

    Parameters
    ----------
    weights: ``None`` for the readout shipped in the package (SHA-256 checked against
        :data:`WEIGHTS_SHA256`), or the path of a file written by ``salience train-fixations``.
    device: ``"cpu"`` (default), ``"cuda"`` or a ``torch.device``.

    Examples
    --------
    >>> from salience.gaze import FixationModel, load_fixation_model
    >>> m = load_fixation_model()
    >>> isinstance(m, FixationModel), m.training, load_fixation_model() is m   # cached
    (True, False, True)
    """
    dev = resolve_device(device)
    path = packaged_weights() if weights is None else Path(os.fspath(weights)).expanduser()
    key = (str(path), str(dev))
    with _LOCK:
        if key not in _CACHE:
            readout, config = load_readout(path, sha256=WEIGHTS_SHA256 if weights is None else None)
            from .. import load_model

            backbone = load_model(str(config["backbone"])).model.features
            _CACHE[key] = FixationModel(backbone, readout, config).to(dev).eval()
        return _CACHE[key]


# --------------------------------------------------------------------------------------------------------
# inference on images
# --------------------------------------------------------------------------------------------------------

def _as_list(images: Any) -> tuple[list[np.ndarray], bool]:
    from ..io import method_input

    if isinstance(images, np.ndarray) and images.ndim == 4:
        return [method_input(im) for im in images], False
    if isinstance(images, (list, tuple)):
        if not images:
            raise InputError("no images given")
        return [method_input(im) for im in images], False
    return [method_input(images)], True


def fixation_log_density(images: Any, *, weights: str | os.PathLike | None = None, device: Any = None,
                         batch_size: int = 8) -> Any:
    """Log fixation density of one image or many (batched; images of one size share a batch).

    Parameters
    ----------
    images: one float32 ``(H, W, 3)`` image in ``[0, 1]`` (as :func:`salience.load_image` returns it), a
        list of them (sizes may differ), or a ``(B, H, W, 3)`` array.
    weights, device: see :func:`load_fixation_model`.
    batch_size: images per forward pass.

    Returns
    -------
    float32 ``(H, W)`` array of natural-log densities (``exp`` sums to 1 over the image) for one image; a
    list of them for a list or a ``(B, H, W, 3)`` array.  ``log2(p(x, y)) - log2(q(x, y))`` averaged over
    fixations is the information gain over a baseline density ``q`` in bits per fixation.

    Examples
    --------
    >>> import numpy as np
    >>> from salience.gaze import fixation_log_density
    >>> logp = fixation_log_density(np.full((48, 64, 3), 0.5, np.float32))
    >>> logp.shape, logp.dtype, round(float(np.exp(logp).sum()), 4)
    ((48, 64), dtype('float32'), 1.0)
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise InputError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    imgs, single = _as_list(images)
    model = load_fixation_model(weights, device=device)
    out: list[np.ndarray | None] = [None] * len(imgs)
    by_size: dict[tuple[int, int], list[int]] = {}
    for i, im in enumerate(imgs):
        by_size.setdefault(im.shape[:2], []).append(i)
    for size, idx in by_size.items():
        for s in range(0, len(idx), batch_size):
            chunk = idx[s:s + batch_size]
            batch = torch.from_numpy(np.stack([imgs[i] for i in chunk])).permute(0, 3, 1, 2)
            logd = model(batch, size).float().cpu().numpy()
            for j, i in enumerate(chunk):
                out[i] = np.ascontiguousarray(logd[j])
    return out[0] if single else out


def fixation_map(image: Any, *, weights: str | os.PathLike | None = None, device: Any = None) -> np.ndarray:
    """Where people look: the learned fixation density of an image, divided by its maximum.

    A DeepGaze II/IIE-style model (M. Kummerer, T. S. A. Wallis, L. A. Gatys, M. Bethge, "Understanding
    low- and high-level contributions to fixation prediction", ICCV 2017; A. Linardos, M. Kummerer,
    O. Press, M. Bethge, "DeepGaze IIE: calibrated prediction in and out-of-domain for state-of-the-art
    saliency modeling", ICCV 2021): frozen MobileNetV2 features, a small readout, a learned blur and a
    learned centre-bias prior, a softmax over pixels.  The readout shipped here was trained by salience on
    500 OSIE images (free viewing, 15 viewers); see docs/fixation-model.md for its held-out scores.

    Parameters
    ----------
    image: float32 ``(H, W, 3)`` RGB in ``[0, 1]`` (as :func:`salience.load_image` returns it).
    weights: ``None`` (the shipped readout) or a file from ``salience train-fixations``.
    device: ``"cpu"`` (default) or ``"cuda"``.

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W)``, values in ``[0, 1]``, maximum 1: the density ``p(x, y)`` divided by its peak,
        so that ratios between pixels are the model's (``map / map.sum()`` is the density itself;
        :func:`fixation_log_density` gives its logarithm directly).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(0).random((60, 80, 3)).astype(np.float32)
    >>> m = fixation_map(img)
    >>> m.shape, m.dtype, float(m.max()), bool(m.min() > 0)
    ((60, 80), dtype('float32'), 1.0, True)
    """
    logd = fixation_log_density(image, weights=weights, device=device)
    out = np.exp(logd.astype(np.float64) - float(logd.max()))
    return out.astype(np.float32)
