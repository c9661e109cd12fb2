"""Vision-language models as explainable image models: CLIP-like image towers and teacher-forced captioners.

An explanation method explains ``model(images) -> output`` through a target ``f(output) -> (B,)``
(:mod:`salience.targets`).  A vision-language model takes text too, so the text side is fixed here and the
image side is what is explained:

* :class:`ImageTower` turns a CLIP-like dual encoder into ``images -> (B, D)`` image embeddings; the target
  :class:`salience.targets.text_image_similarity` scores them against a text's embedding.
* :class:`TeacherForced` turns a captioning / VQA model into ``images -> (B, T, V)`` next-token logits for a
  fixed token sequence; the target :class:`salience.targets.sequence_log_prob` scores the caption's or
  answer's log-probability.
* :func:`load_clip` loads a CLIP model from a local folder (Hugging Face ``transformers`` or ``open_clip``),
  never from a hub: nothing is downloaded.

>>> import torch, salience
>>> from salience import targets
>>> from salience.attribution.vlm import ImageTower
>>> image_net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(),
...                                 torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
>>> tower = ImageTower(image_net, encode=lambda m, x: m(x))
>>> f = targets.text_image_similarity("red", encoder=lambda texts: torch.ones(len(texts), 4))
>>> salience.explain(tower, torch.rand(1, 3, 16, 16), "gradient", target=f).maps.shape
torch.Size([1, 16, 16])
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..check import require_offline_transformers
from ..errors import InputError, MissingDependencyError, ModelError
from .models import resize_preprocess

__all__ = ["ImageTower", "TeacherForced", "CLIPPair", "load_clip"]


def _embedding_of(out: Any) -> torch.Tensor:
    """The embedding tensor of an encoder's return value (a tensor, or a ``ModelOutput`` with
    ``image_embeds`` / ``pooler_output`` / ``text_embeds``)."""
    if isinstance(out, torch.Tensor):
        return out
    for key in ("image_embeds", "text_embeds", "pooler_output"):
        v = getattr(out, key, None)
        if isinstance(v, torch.Tensor):
            return v
    raise ModelError(f"the encoder returned {type(out).__name__}, not an embedding tensor (B, D)")


def _default_encode_image(model: nn.Module, x: torch.Tensor) -> Any:
    hf = getattr(model, "get_image_features", None)
    if callable(hf):  # Hugging Face CLIP / SigLIP
        return hf(pixel_values=x)
    oc = getattr(model, "encode_image", None)
    if callable(oc):  # open_clip
        return oc(x)
    raise ModelError(
        f"{type(model).__name__} has neither get_image_features (Hugging Face) nor encode_image (open_clip); "
        "pass encode=lambda model, images: ... returning the image embeddings (B, D)"
    )


class ImageTower(nn.Module):
    """The image side of a CLIP-like model as an image model: ``forward(images) -> (B, D)`` embeddings.

    Parameters
    ----------
    model: the whole dual encoder (its parameters stay in this module, so hooks, layers and modes work).
    encode: ``encode(model, images) -> embeddings`` (a tensor or a ``ModelOutput``); default
        ``model.get_image_features(pixel_values=images)`` (Hugging Face) or ``model.encode_image(images)``
        (open_clip).

    Notes
    -----
    Layers are named ``model.<name>`` (e.g. ``model.vision_model.encoder.layers.1``).
    """

    def __init__(self, model: nn.Module, encode: Callable[[nn.Module, torch.Tensor], Any] | None = None):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise ModelError(f"ImageTower needs an nn.Module, got {type(model).__name__}")
        self.model = model
        self.encode = encode or _default_encode_image

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return _embedding_of(self.encode(self.model, images)).float()


class TeacherForced(nn.Module):
    """A captioning / VQA model fed a fixed token sequence: ``forward(images) -> (B, T, V)`` logits.

    Parameters
    ----------
    model: the vision-language model.
    token_ids: ``(T,)`` (the same sequence for every image) or ``(B, T)`` int64: the decoder input, e.g.
        ``[bos, caption tokens...]`` (encoder-decoder) or ``[prompt tokens, answer tokens...]`` (decoder-only).
    call: ``call(model, images, ids) -> logits`` (a tensor ``(B, T, V)`` or an output with ``.logits``);
        default ``model(images, ids)``.  For Hugging Face models pass, e.g.,
        ``lambda m, x, ids: m(pixel_values=x, decoder_input_ids=ids)`` (VisionEncoderDecoder) or
        ``lambda m, x, ids: m(pixel_values=x, input_ids=ids)`` (BLIP-style).

    Examples
    --------
    >>> import torch
    >>> vlm = lambda x, ids: torch.zeros(x.shape[0], ids.shape[1], 7)
    >>> class Wrap(torch.nn.Module):
    ...     def forward(self, x, ids): return vlm(x, ids)
    >>> TeacherForced(Wrap(), torch.tensor([0, 3, 4]))(torch.rand(2, 3, 8, 8)).shape
    torch.Size([2, 3, 7])
    """

    def __init__(self, model: nn.Module, token_ids: Any,
                 call: Callable[[nn.Module, torch.Tensor, torch.Tensor], Any] | None = None):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise ModelError(f"TeacherForced needs an nn.Module, got {type(model).__name__}")
        ids = torch.as_tensor(token_ids)
        if ids.ndim not in (1, 2) or ids.numel() == 0 or ids.is_floating_point() or ids.dtype == torch.bool:
            raise InputError(f"token_ids must be integer ids (T,) or (B, T), got shape {tuple(ids.shape)} "
                             f"and dtype {ids.dtype}")
        self.model = model
        self.register_buffer("token_ids", ids.long(), persistent=False)
        self.call = call or (lambda m, x, t: m(x, t))

    def forward(self, images: torch.Tensor) -> Any:
        ids: torch.Tensor = self.token_ids  # type: ignore[assignment]
        if ids.ndim == 1:
            ids = ids[None].expand(images.shape[0], -1)
        elif ids.shape[0] != images.shape[0]:
            raise InputError(f"{ids.shape[0]} token sequences for {images.shape[0]} images; give one sequence "
                             "(T,) for all images or exactly one per image (B, T)")
        return self.call(self.model, images, ids)


@dataclass
class CLIPPair:
    """A loaded CLIP-like model: ``image_model`` (an :class:`ImageTower`, eval mode), ``encode_text``
    (``texts -> (N, D)`` float32, no gradient), ``preprocess`` (``(H, W, 3)`` float image in ``[0, 1]`` ->
    ``(1, 3, S, S)``), ``source`` (the folder) and ``kind`` (``"transformers"`` or ``"open_clip"``)."""

    image_model: ImageTower
    encode_text: Callable[[list[str]], torch.Tensor]
    preprocess: Callable[..., torch.Tensor]
    source: str
    kind: str


def _need(package: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError:
        raise MissingDependencyError(
            f"loading this CLIP model needs the package {package!r}, which is not installed; install it with "
            f"pip install {extra} (the weights must be in a local folder: nothing is downloaded)"
        ) from None


def load_clip(path: str | os.PathLike, *, device: Any = None) -> CLIPPair:
    """Load a CLIP-like dual encoder from a local folder, offline.

    * a Hugging Face folder (``config.json`` + weights + tokenizer files, as written by
      ``save_pretrained``): ``transformers.AutoModel`` / ``AutoTokenizer`` with ``local_files_only=True``;
    * an open_clip folder: ``open_clip_config.json`` and one ``*.bin`` / ``*.pt`` / ``*.safetensors`` checkpoint,
      read with ``open_clip.create_model_and_transforms(..., pretrained=<file>)``.

    Raises
    ------
    InputError: the folder does not exist or holds neither layout.
    MissingDependencyError: the package the folder needs is not installed (the message gives the command).
    ModelError: the files are there but do not load.
    """
    folder = Path(os.fspath(path)).expanduser()
    if not folder.is_dir():
        raise InputError(f"CLIP model folder {str(folder)!r} does not exist; give a local folder with the model "
                         "files (salience never downloads models)")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if (folder / "config.json").is_file():
        tr = require_offline_transformers("loading this CLIP model")
        try:
            model = tr.AutoModel.from_pretrained(str(folder), local_files_only=True).to(dev).eval()
            tok = tr.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"cannot load the Hugging Face model in {str(folder)!r}: {exc}") from None
        if not hasattr(model, "get_image_features") or not hasattr(model, "get_text_features"):
            raise ModelError(f"the model in {str(folder)!r} ({type(model).__name__}) is not a dual image-text "
                             "encoder (no get_image_features / get_text_features)")
        size = int(getattr(getattr(model.config, "vision_config", None), "image_size", 224))
        mean, std = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)  # CLIP's
        try:
            proc = tr.AutoImageProcessor.from_pretrained(str(folder), local_files_only=True)
            mean, std = tuple(proc.image_mean), tuple(proc.image_std)
        except (OSError, ValueError, AttributeError, TypeError, KeyError):
            pass  # no processor file saved: CLIP's published normalisation

        def encode_text(texts: list[str]) -> torch.Tensor:
            batch = tok(list(texts), padding=True, return_tensors="pt")
            batch = {k: v.to(dev) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
            with torch.no_grad():
                return _embedding_of(model.get_text_features(**batch)).float().cpu()

        return CLIPPair(ImageTower(model), encode_text, resize_preprocess((size, size), mean, std), str(folder),
                        "transformers")
    if (folder / "open_clip_config.json").is_file():
        oc = _need("open_clip", "open_clip_torch")
        import json

        cfg = json.loads((folder / "open_clip_config.json").read_text())
        ckpts = sorted(p for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".safetensors"))
        if not ckpts:
            raise InputError(f"no checkpoint (*.bin, *.pt, *.safetensors) in {str(folder)!r}")
        name = cfg.get("model_name") or cfg.get("model_cfg", {}).get("name")
        if not name:
            raise ModelError(f"open_clip_config.json in {str(folder)!r} names no model ('model_name')")
        try:
            model, _, _ = oc.create_model_and_transforms(name, pretrained=str(ckpts[0]), device=dev)
            tokenizer = oc.get_tokenizer(name)
        except (OSError, RuntimeError, ValueError, KeyError) as exc:
            raise ModelError(f"cannot load the open_clip model in {str(folder)!r}: {exc}") from None
        model.eval()
        size = int(cfg.get("model_cfg", {}).get("vision_cfg", {}).get("image_size", 224))
        pc = cfg.get("preprocess_cfg", {})
        mean = tuple(pc.get("mean", (0.48145466, 0.4578275, 0.40821073)))
        std = tuple(pc.get("std", (0.26862954, 0.26130258, 0.27577711)))

        def encode_text_oc(texts: list[str]) -> torch.Tensor:
            with torch.no_grad():
                return model.encode_text(tokenizer(list(texts)).to(dev)).float().cpu()

        return CLIPPair(ImageTower(model), encode_text_oc, resize_preprocess((size, size), mean, std), str(folder),
                        "open_clip")
    raise InputError(f"{str(folder)!r} holds neither a Hugging Face model (config.json) nor an open_clip model "
                     "(open_clip_config.json)")
