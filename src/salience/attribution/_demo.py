"""Explanations of one image file with a loaded model: shared by ``salience explain`` and the demo gallery."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..io import atomic_write_bytes, encode_png, save_map
from ..registry import EXPLANATION, get_method
from ._base import upsample
from .models import LoadedModel, load_model

__all__ = ["explain_image", "parse_target", "demo_explanations", "method_params", "uses_layer", "display_map",
           "FAST_PARAMS"]

#: what the demo shows for each photo (the first three are the issue's must-haves)
DEMO_METHODS = ("gradcam", "guided-backprop", "guided-gradcam", "gradcam-pp", "smoothgrad",
                "integrated-gradients")
#: light settings so the demo stays quick on two CPU cores (all photos go through one call per method)
DEMO_PARAMS: dict[str, dict[str, Any]] = {"smoothgrad": {"n": 10, "batch_size": 8},
                                          "integrated-gradients": {"steps": 16, "batch_size": 8}}
#: the demo's model input: short side DEMO_SIZE, long side rounded to a multiple of 32 (MobileNetV2's stride),
#: so photos of about the same aspect share one batch
DEMO_SIZE = 224
#: pixel-level maps are shown as a heatmap of their own (no blend), clipped at this percentile
DEMO_CLIP_PERCENTILE = 99.5
_PIXEL_METHODS = {"guided-backprop", "guided-gradcam", "smoothgrad", "integrated-gradients", "gradient",
                  "input-x-gradient"}


#: ``--fast``: settings that finish in seconds per image on a laptop CPU (MobileNetV2, 224 px); the
#: trade-off (time, agreement with the defaults) is measured in docs/explain.md
FAST_PARAMS: dict[str, dict[str, Any]] = {
    "rise": {"n": 500},
    "scorecam": {"max_channels": 128},
    "occlusion": {"window": 32, "stride": 16},
    "smoothgrad": {"n": 10},
    "integrated-gradients": {"steps": 16},
}


def method_parameters(name: str) -> set[str]:
    """The keyword parameters a registered explanation method accepts (from its signature)."""
    import inspect

    sig = inspect.signature(get_method(name).load())
    return {p.name for p in sig.parameters.values()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)} - {"model", "images", "target", "layer"}


def uses_layer(name: str) -> bool:
    """True for the methods that explain a layer (the CAM family and Score-CAM): they take ``reshape=``,
    which only a layer's output needs; pixel and perturbation methods take no layer."""
    return "reshape" in method_parameters(name)


def _value(text: str) -> Any:
    """A ``--param`` value: int, float, true/false/none, a comma-separated tuple of numbers, or text."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    if "," in text:
        parts = [_value(t) for t in text.split(",")]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in parts):
            return tuple(parts)
        return text
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def method_params(methods: list[str], specs: list[str] | None, *, fast: bool = False) -> dict[str, dict]:
    """Per-method parameters from ``--param [METHOD.]KEY=VALUE`` items (and the ``--fast`` preset under
    them).  An unscoped key goes to every chosen method that accepts it; a key that none accepts, or a
    scoped key its method does not accept, is an InputError listing what is accepted."""
    out: dict[str, dict[str, Any]] = {m: dict(FAST_PARAMS.get(m, {})) if fast else {} for m in methods}
    for spec in specs or []:
        key, sep, raw = spec.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"--param {spec!r} is not KEY=VALUE (e.g. --param activations=guide or "
                             "--param smoothgrad.n=10)")
        scope = None
        if "." in key:
            scope_raw, key = key.split(".", 1)
            scope = get_method(scope_raw).name
            if scope not in methods:
                raise InputError(f"--param {spec!r} names method {scope!r}, which is not in --method")
        targets = [scope] if scope else methods
        takers = [m for m in targets if key in method_parameters(m)]
        if not takers:
            accepted = "; ".join(f"{m}: {', '.join(sorted(method_parameters(m))) or '(none)'}" for m in targets)
            raise InputError(f"--param {key!r} is not a parameter of {', '.join(targets)} (accepted: {accepted})")
        for m in takers:
            out[m][key] = _value(raw)
    return out


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
                  device: Any = None, progress: Any = None,
                  ) -> tuple[list[tuple[int, str, float]], dict[str, np.ndarray], dict]:
    """Top-5 classes and one float32 ``(H, W)`` map per method at the image's size.

    The image is resized (short side 224, whole image kept), explained once per method for the same
    target (the top-1 class unless ``target`` says otherwise), and each map resized back bilinearly.
    ``layer`` goes only to the methods that explain a layer (:func:`uses_layer`).  ``progress``: ``None``
    or ``progress(method) -> callback or None``, the callback given to methods that report progress.
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
        kw = dict((params or {}).get(m.name, {}))
        if progress is not None and "progress" in method_parameters(m.name) and "progress" not in kw:
            kw["progress"] = progress(m.name)
        e = m.load()(lm, x, target=tgt, layer=layer if uses_layer(m.name) else None, **kw)
        maps[m.name] = upsample(e.maps.detach().float().cpu(), (h, w))[0].numpy().astype(np.float32)
        info[m.name] = {"target": int(e.targets[0]) if e.targets is not None else None,
                        "score": float(e.scores[0]), "layer": e.layer}
        if "delta" in e.extras:  # Integrated Gradients: its completeness error, relative to the gap
            gap = abs(float(e.scores[0]) - float(e.extras["baseline_scores"][0]))
            info[m.name]["completeness"] = abs(float(e.extras["delta"][0])) / gap if gap > 0 else 0.0
            info[m.name]["steps"] = int(e.extras["steps"][0])
    return top5, maps, info


def _demo_shape(h: int, w: int, size: int) -> tuple[int, int]:
    """Short side ``size``; the long side scaled with the aspect and rounded to a multiple of 32."""
    def snap(v: float) -> int:
        return max(32, int(math.floor(v / 32 + 0.5)) * 32)

    return (size, snap(size * w / h)) if h <= w else (snap(size * h / w), size)


def demo_explanations(photos: dict[str, np.ndarray], out_dir: Path, *, size: int = DEMO_SIZE,
                      methods: tuple[str, ...] = DEMO_METHODS) -> list[dict]:
    """Gallery entries: the default model's top-1 class and several explanations of each photo.

    Each photo is resized whole (short side ``size``, long side to a multiple of 32, aspect kept within
    a few percent); photos of the same model-input shape are explained together, one call per method
    and shape (the bundled photos make 3 shapes), each photo's own top-1 class as its target.  Maps are
    resized back to the photo.  CAM maps are blended over the photo; pixel-level maps (guided backprop,
    SmoothGrad, Integrated Gradients' positive part) are shown as heatmaps clipped at the
    ``DEMO_CLIP_PERCENTILE``-th percentile, since a few pixels hold most of their mass.  Writes
    ``explain/<photo>_<method>.png`` under ``out_dir``; returns entries ``{"section", "title", "path"
    (relative to out_dir), "caption"}``.
    """
    import torch.nn.functional as F

    from ..viz import colorize, overlay

    out_dir = Path(out_dir)
    if not photos:
        return []
    lm = load_model()
    groups: dict[tuple[int, int], list[str]] = {}
    inputs: dict[str, torch.Tensor] = {}
    for name, img in photos.items():
        shape = _demo_shape(img.shape[0], img.shape[1], size)
        t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1)[None]
        t = F.interpolate(t, size=shape, mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
        inputs[name] = lm.preprocess(t[0].permute(1, 2, 0).numpy(), crop=False)
        groups.setdefault(shape, []).append(name)
    torch.manual_seed(0)
    top1: dict[str, tuple[int, str, float]] = {}
    results: dict[tuple[str, str], tuple[Any, int]] = {}
    for shape, names in groups.items():
        x = torch.cat([inputs[n] for n in names])
        for n, row in zip(names, lm.top_k(x, 1)):
            top1[n] = row[0]
        target = [top1[n][0] for n in names]
        for method in methods:
            row = get_method(method)
            e = row.load()(lm, x, target=target, **DEMO_PARAMS.get(row.name, {}))
            for i, n in enumerate(names):
                results[(n, row.name)] = (e, i)
    entries: list[dict] = []
    for name, img in photos.items():
        idx, cls, prob = top1[name]
        shape = tuple(inputs[name].shape[2:])
        section = f"Explanations: {name} (MobileNetV2 says {cls}, p = {prob:.2f})"
        for method in methods:
            row = get_method(method)
            e, i = results[(name, row.name)]
            m = upsample(e.maps[i:i + 1].detach().float().cpu(), img.shape[:2])[0].numpy().astype(np.float32)
            note = f"; layer {e.layer}" if e.layer else ""
            if row.signed:  # the evidence for the class: the positive part
                m = np.maximum(m, 0)
                note += "; positive part"
            if row.name in _PIXEL_METHODS:
                hi = float(np.percentile(m, DEMO_CLIP_PERCENTILE))
                m = np.clip(m / hi, 0, 1) if hi > 0 else np.zeros_like(m)
                picture = colorize(m, "inferno")
                note += f"; shown clipped at its {DEMO_CLIP_PERCENTILE:g}th percentile"
            else:
                picture = overlay(img, m, cmap="jet", alpha=0.5)
            if row.name == "integrated-gradients":
                gap = float(e.scores[i] - e.baseline_scores[i])
                note += (f"; {DEMO_PARAMS[row.name]['steps']} steps, completeness error "
                         f"{abs(float(e.delta[i])) / max(abs(gap), 1e-12):.1%} of f(x) - f(x')")
            elif row.name == "smoothgrad":
                note += f"; {DEMO_PARAMS[row.name]['n']} noisy samples"
            rel = Path("explain") / f"{name}_{row.name}.png"
            atomic_write_bytes(out_dir / rel, encode_png(picture), overwrite=True)
            entries.append({
                "section": section,
                "title": row.name,
                "path": rel.as_posix(),
                "caption": f"{row.description}; class {cls!r} ({prob:.1%}){note}. Model input: the whole "
                           f"photo at {shape[1]} x {shape[0]}. {row.paper}",
            })
    return entries


def display_map(method: str, m: np.ndarray) -> np.ndarray:
    """What a PNG shows of a map: pixel-level methods (a few pixels hold most of their mass) clipped at
    their ``DEMO_CLIP_PERCENTILE``-th percentile, as in the gallery (else they come out nearly black);
    signed ones by their positive part (the evidence for the target).  Other maps unchanged."""
    row = get_method(method)
    if row.name not in _PIXEL_METHODS:
        return m
    v = np.maximum(m, 0) if row.signed else m
    hi = float(np.percentile(v, DEMO_CLIP_PERCENTILE))
    return np.clip(v / hi, 0, 1).astype(np.float32) if hi > 0 else np.zeros_like(v, dtype=np.float32)


def save_outputs(out: Path, stem: str, image: np.ndarray, maps: dict[str, np.ndarray], *, overwrite: bool,
                 npy: bool = False, cmap: str = "jet", alpha: float = 0.5) -> list[Path]:
    """Write ``stem_M.png`` (grayscale) and ``stem_M_overlay.png`` per method (atomically)."""
    from ..io import save_npy
    from ..viz import overlay

    written = []
    for method, m in maps.items():
        shown = display_map(method, m)
        written.append(save_map(shown, out / f"{stem}_{method}.png", overwrite=overwrite))
        written.append(atomic_write_bytes(out / f"{stem}_{method}_overlay.png",
                                          encode_png(overlay(image, shown, cmap=cmap, alpha=alpha)),
                                          overwrite=overwrite))
        if npy:  # the map itself, not the display
            written.append(save_npy(m, out / f"{stem}_{method}.npy", overwrite=overwrite))
    return written
