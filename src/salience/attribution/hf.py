"""Hugging Face image classifiers from a local folder: ``load_model("hf:PATH")``, ``--model hf:PATH``.

The folder is what ``save_pretrained`` writes (``config.json``, the weights, and optionally
``preprocessor_config.json``); it is read with ``local_files_only=True`` and the hub's offline switches set,
so nothing is ever downloaded.  The model is loaded with the eager attention implementation, so its
attention modules return their probabilities and the attention methods (``attention-rollout``,
``attention-relevance``) find them by themselves; every gradient and perturbation method works as on any
classifier.

* ``model``: the classifier wrapped so that ``model(x)`` returns the logits ``(B, classes)``; the
  Hugging Face module is its ``hf`` attribute (layer names start with ``hf.``).
* ``preprocess``: the folder's image processor settings (``size``, ``image_mean``, ``image_std``; else the
  config's ``image_size`` and a mean and std of 0.5, the ViT defaults): the image is resized to the
  model's input size, as the Hugging Face processor does (``crop`` has no effect: the whole image is
  always kept, so maps cover the whole picture).
* ``class_names``: ``config.id2label`` in index order.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..check import require_offline_transformers
from ..errors import InputError, ModelError
from .models import LoadedModel, resize_preprocess

__all__ = ["HFLogits", "load_hf_classifier", "PREFIX"]

#: the model name prefix that selects this loader
PREFIX = "hf:"


class HFLogits(nn.Module):
    """``forward(x) = hf(pixel_values=x).logits``: a Hugging Face classifier as a plain logits model."""

    def __init__(self, hf: nn.Module) -> None:
        super().__init__()
        self.hf = hf

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hf(pixel_values=x).logits


def _input_size(proc: dict[str, Any], config: Any) -> tuple[int, int]:
    size = proc.get("size")
    if isinstance(size, dict):
        if "height" in size and "width" in size:
            return int(size["height"]), int(size["width"])
        if "shortest_edge" in size:
            s = int(size["shortest_edge"])
            return s, s
    if isinstance(size, (int, float)) and not isinstance(size, bool):
        return int(size), int(size)
    s = getattr(config, "image_size", 224)
    if isinstance(s, (list, tuple)):
        return int(s[0]), int(s[1])
    return int(s), int(s)


def load_hf_classifier(path: str | os.PathLike) -> LoadedModel:
    """A Hugging Face image classifier saved in the local folder ``path``, as a :class:`LoadedModel`.

    Raises
    ------
    InputError: the folder does not exist or has no ``config.json``.
    MissingDependencyError: ``transformers`` is not installed (the message gives the command).
    ModelError: the files are there but are not an image classifier that loads.

    Examples
    --------
    >>> import tempfile, numpy as np, transformers
    >>> cfg = transformers.ViTConfig(image_size=32, patch_size=8, num_hidden_layers=2, num_attention_heads=2,
    ...                              hidden_size=16, intermediate_size=32, num_labels=3)
    >>> folder = tempfile.mkdtemp()
    >>> transformers.ViTForImageClassification(cfg).save_pretrained(folder)
    >>> lm = load_hf_classifier(folder)
    >>> lm.name.startswith("hf:"), lm.class_names, tuple(lm.preprocess(np.zeros((40, 50, 3), np.float32)).shape)
    (True, ['LABEL_0', 'LABEL_1', 'LABEL_2'], (1, 3, 32, 32))
    """
    folder = Path(os.fspath(path)).expanduser()
    if not folder.is_dir():
        raise InputError(f"model folder {str(folder)!r} (from hf:PATH) does not exist; give a local folder "
                         "written by save_pretrained (salience never downloads models)")
    if not (folder / "config.json").is_file():
        raise InputError(f"{str(folder)!r} has no config.json: it is not a Hugging Face model folder (save the "
                         "model with save_pretrained, or point hf: at the snapshot folder of a filled cache)")
    transformers = require_offline_transformers("an hf:PATH model")
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bar on the CLI's stderr
    try:
        hf = transformers.AutoModelForImageClassification.from_pretrained(
            str(folder), local_files_only=True, attn_implementation="eager")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"cannot load an image classifier from {str(folder)!r}: {exc}") from None
    finally:
        if bars:
            transformers.utils.logging.enable_progress_bar()
    proc: dict[str, Any] = {}
    pfile = folder / "preprocessor_config.json"
    if pfile.is_file():
        try:
            proc = json.loads(pfile.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read {str(pfile)!r}: {exc}") from None
    size = _input_size(proc, hf.config)
    mean = proc.get("image_mean") or [0.5, 0.5, 0.5]
    std = proc.get("image_std") or [0.5, 0.5, 0.5]
    labels = getattr(hf.config, "id2label", None) or {}
    n = int(getattr(hf.config, "num_labels", len(labels)) or len(labels))
    names = [str(labels.get(i, labels.get(str(i), i))) for i in range(n)]
    net = HFLogits(hf).eval()
    return LoadedModel(net, preprocess=resize_preprocess(size, mean, std), class_names=names, target_layer=None,
                       name=PREFIX + str(folder), meta={"weights": str(folder), "source": "transformers",
                                                        "input_size": size})
