"""Explanations of one image file with a loaded model: shared by ``salience explain`` and the demo gallery."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..io import atomic_write_bytes, encode_png, save_map
from ..registry import EXPLANATION, get_method
from ._base import upsample
from .models import LoadedModel, load_model

__all__ = ["explain_image", "parse_target", "demo_explanations"]

#: what the demo shows for each photo (the first three are the issue's must-haves)
DEMO_METHODS = ("gradcam", "guided-backprop", "guided-gradcam", "gradcam-pp", "smoothgrad",
                "integrated-gradients")
#: light settings so the demo stays quick on two CPU cores
DEMO_PARAMS: dict[str, dict[str, Any]] = {"smoothgrad": {"n": 16, "batch_size": 8},
                                          "integrated-gradients": {"steps": 32, "batch_size": 16,
                                                                   "quadrature": "adaptive"}}


def parse_target(lm: LoadedModel, spec: Any) -> Any:
    """CLI target: ``top1``/``top-k``, a class index, or a class name (of ``lm.class_names``)."""
    if spec is None:
        return None
    if not isinstance(spec, str):
        return spec
    s = spec.strip()
    low = s.lower().replace(" ", "")
    if low.startswith("top") or low == "argmax":
        return s
    if s.lstrip("-").isdigit():
        return int(s)
    return lm.class_index(s)


def explain_image(lm: LoadedModel, image: np.ndarray, methods: list[str], *, target: Any = None,
                  layer: Any = None, params: dict[str, dict[str, Any]] | None = None,
                  device: Any = None) -> tuple[list[tuple[int, str, float]], dict[str, np.ndarray], dict]:
    """Top-5 classes and one float32 ``(H, W)`` map per method at the image's size.

    The image is resized (short side 224, whole image kept), explained once per method for the same
    target (the top-1 class unless ``target`` says otherwise), and each map resized back bilinearly.
    """
    x = lm.preprocess(image, crop=False)
    if device is not None:
        x = x.to(device)
    top5 = lm.top_k(x, 5)[0]
    tgt = parse_target(lm, target)
    h, w = image.shape[:2]
    maps: dict[str, np.ndarray] = {}
    info: dict[str, Any] = {}
    for name in methods:
        m = get_method(name)
        if m.kind != EXPLANATION:
            raise InputError(f"method {m.name!r} is bottom-up; use `salience map IMAGE --method {m.name}`")
        e = m.load()(lm, x, target=tgt, layer=layer, **(params or {}).get(m.name, {}))
        maps[m.name] = upsample(e.maps.detach().float().cpu(), (h, w))[0].numpy().astype(np.float32)
        info[m.name] = {"target": int(e.targets[0]) if e.targets is not None else None,
                        "score": float(e.scores[0]), "layer": e.layer}
    return top5, maps, info


def demo_explanations(photos: dict[str, np.ndarray], out_dir: Path) -> list[dict]:
    """Gallery entries: the default model's top-1 class and several explanations of each photo.

    Writes ``explain/<photo>_<method>.png`` (overlays) under ``out_dir`` and returns entries
    ``{"section", "title", "path" (relative to out_dir), "caption"}``.
    """
    from ..viz import overlay

    out_dir = Path(out_dir)
    lm = load_model()
    entries: list[dict] = []
    torch.manual_seed(0)
    for name, img in photos.items():
        top5, maps, info = explain_image(lm, img, list(DEMO_METHODS), params=DEMO_PARAMS)
        idx, cls, prob = top5[0]
        section = f"Explanations: {name} (MobileNetV2 says {cls}, p = {prob:.2f})"
        for method, m in maps.items():
            rel = Path("explain") / f"{name}_{method}.png"
            img_out = overlay(img, m, cmap="jet", alpha=0.5)
            atomic_write_bytes(out_dir / rel, encode_png(img_out), overwrite=True)
            row = get_method(method)
            layer = info[method]["layer"]
            entries.append({
                "section": section,
                "title": method,
                "path": rel.as_posix(),
                "caption": f"{row.description}; class {cls!r} ({prob:.1%})"
                           + (f"; layer {layer}" if layer else "") + f". {row.paper}",
            })
    return entries


def save_outputs(out: Path, stem: str, image: np.ndarray, maps: dict[str, np.ndarray], *, overwrite: bool,
                 npy: bool = False, cmap: str = "jet", alpha: float = 0.5) -> list[Path]:
    """Write ``stem_M.png`` (grayscale) and ``stem_M_overlay.png`` per method (atomically)."""
    from ..io import save_npy
    from ..viz import overlay

    written = []
    for method, m in maps.items():
        written.append(save_map(m, out / f"{stem}_{method}.png", overwrite=overwrite))
        written.append(atomic_write_bytes(out / f"{stem}_{method}_overlay.png",
                                          encode_png(overlay(image, m, cmap=cmap, alpha=alpha)),
                                          overwrite=overwrite))
        if npy:
            written.append(save_npy(m, out / f"{stem}_{method}.npy", overwrite=overwrite))
    return written
