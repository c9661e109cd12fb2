"""The demo: every bottom-up method on bundled photos, written as maps, overlays and one HTML gallery.

:func:`run_demo` takes the real photographs that ship with scikit-image (astronaut, coffee, chelsea,
rocket) and matplotlib (grace_hopper), reduces them to at most 512 pixels on a side, runs every bottom-up
method of the registry on each, and writes grayscale maps, heatmap overlays, an Itti-Koch feature panel
and scanpath, and ``index.html`` (relative links, one section per method with its paper).  Nothing is
downloaded.  When the torch extra is installed, :func:`demo_explanations` adds explanations of the
default model to the same page.
"""

from __future__ import annotations

import html
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import MissingDependencyError
from .io import as_image_array, atomic_write_bytes, encode_png, map_to_uint8
from .registry import BOTTOM_UP, get_method, methods

__all__ = ["demo_photos", "run_demo", "demo_explanations", "MAX_SIDE", "DEMO_METHODS"]

#: Longest side of the demo photos, in pixels.
MAX_SIDE = 512

_SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")

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


def _shrink(rgb: np.ndarray, max_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return rgb
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.ascontiguousarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), dtype=np.float32)


def demo_photos(max_side: int = MAX_SIDE) -> dict[str, np.ndarray]:
    """The bundled photos as float32 ``(H, W, 3)`` RGB in ``[0, 1]``, longest side at most ``max_side``.

    Needs scikit-image (the ``demo`` extra); matplotlib's ``grace_hopper`` is added when matplotlib is
    installed.  Raises :class:`~salience.errors.MissingDependencyError` without scikit-image.

    Examples
    --------
    >>> from salience.demo import demo_photos
    >>> photos = demo_photos(64)
    >>> sorted(photos)[:2], photos["coffee"].dtype, max(photos["coffee"].shape[:2])
    (['astronaut', 'chelsea'], dtype('float32'), 64)
    """
    try:
        import skimage.data as skdata
    except ImportError:
        raise MissingDependencyError(
            "the demo photos come with scikit-image; install it with: pip install 'salience[demo]' "
            "(or pip install scikit-image)"
        ) from None
    photos: dict[str, np.ndarray] = {}
    for name in _SKIMAGE_PHOTOS:
        photos[name] = _shrink(as_image_array(getattr(skdata, name)(), name=name), max_side)
    try:
        from matplotlib import cbook

        with cbook.get_sample_data("grace_hopper.jpg") as fh:
            from .io import load_image

            photos["grace_hopper"] = _shrink(load_image(fh), max_side)
    except Exception:  # matplotlib missing, or built without its sample data: four photos are enough
        pass
    return photos


def _rel(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


def run_demo(out_dir: str | os.PathLike = "salience-demo", *, max_side: int = MAX_SIDE, scanpath_n: int = 5,
             log: Callable[[str], Any] | None = print) -> Path:
    """Run every bottom-up method on the bundled photos; write maps, overlays and ``index.html``.

    Parameters
    ----------
    out_dir:
        Folder for the outputs (created; files of an earlier demo run are replaced).
    max_side:
        Longest side of the photos in pixels.
    scanpath_n:
        Number of attended locations in the Itti-Koch scanpaths.
    log:
        Called with one line of progress at a time (default :func:`print`); ``None`` for silence.

    Returns
    -------
    pathlib.Path
        The gallery page, ``out_dir/index.html``.
    """
    from . import viz
    from .api import saliency_map

    say = log or (lambda s: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    photos = demo_photos(max_side)

    def write(name: str, rgb_or_gray: np.ndarray) -> str:
        path = atomic_write_bytes(out / name, encode_png(rgb_or_gray), overwrite=True)
        return _rel(path, out)

    inputs = {p: write(f"{p}.png", viz.image_to_uint8(img)) for p, img in photos.items()}
    sections: list[dict[str, Any]] = []
    maps: dict[tuple[str, str], np.ndarray] = {}
    for m in methods(BOTTOM_UP):
        figures = []
        t = time.perf_counter()
        for p, img in photos.items():
            sal = saliency_map(img, m.name)
            maps[(m.name, p)] = sal
            figures.append({
                "title": p,
                "images": [write(f"{p}_{m.name}.png", map_to_uint8(sal)),
                           write(f"{p}_{m.name}_overlay.png", viz.overlay(img, sal))],
                "caption": f"{p}: map and overlay",
            })
        sections.append({"title": m.name, "subtitle": m.description, "paper": m.paper, "figures": figures})
        say(f"  {m.name:<18} {len(photos)} photos in {time.perf_counter() - t:.2f} s")

    # Itti-Koch in detail: the feature/conspicuity panel and the first attended locations.
    itti_figs = []
    try:
        from .bottomup.attention import scanpath
        from .bottomup.itti import itti_koch
    except ImportError as exc:  # pragma: no cover - only while the model is being built
        say(f"  Itti-Koch panel and scanpaths skipped: {exc}")
    else:
        for p, img in photos.items():
            res = itti_koch(img, return_intermediates=True)
            points = scanpath(res.saliency, n=scanpath_n)
            itti_figs.append({
                "title": p,
                "images": [write(f"{p}_itti_scanpath.png", viz.draw_scanpath(img, points))],
                "caption": f"{p}: first {len(points)} attended locations (winner-take-all with inhibition "
                           "of return), numbered in order",
            })
            if p == next(iter(photos)):
                itti_figs.append({
                    "title": f"{p}: every step",
                    "images": [write(f"{p}_itti_panel.png", viz.feature_panel(res, image=img))],
                    "caption": "saliency map, the 3 conspicuity maps, and the 42 feature maps "
                               "(centre c, surround s), each at its own scale",
                    "wide": True,
                })
        sections.append({
            "title": "itti: attention shifts and feature maps",
            "subtitle": "Scanpaths on every photo; all intermediate maps of one photo.",
            "paper": get_method("itti").paper,
            "figures": itti_figs,
        })
    say(f"bottom-up part: {len(photos)} photos x {len(methods(BOTTOM_UP))} methods in "
        f"{time.perf_counter() - t0:.1f} s")

    sections += _video_section(photos, out, say)
    extra = _explanations(photos, out, say)
    from .tasks.demo import demo_applications  # segmented objects, smart crops, a DICOM scan

    extra += demo_applications(photos, out, say)
    page = _page(photos, inputs, sections, extra)
    index = atomic_write_bytes(out / "index.html", page.encode("utf-8"), overwrite=True)
    say(f"wrote the gallery to {index}")
    return index


def _video_section(photos: dict[str, np.ndarray], out: Path, say: Callable[[str], Any]) -> list[dict]:
    """The video part (``salience.video.demo``): a clip made from the first photo, processed; or none."""
    try:
        from .video.demo import demo_video
    except ImportError as exc:
        say(f"video skipped: {exc}")
        return []
    photo = next(iter(photos.values()))
    w = max(32, min(320, max(photo.shape[:2]) // 8 * 8))  # 320 x 240 for the gallery; small for small demos
    return [demo_video(photo, out, n=48 if w >= 320 else 12, size=(w, w * 3 // 4 // 2 * 2), log=say)]


def _explanations(photos: dict[str, np.ndarray], out: Path, say: Callable[[str], Any]) -> list[dict]:
    """Gallery entries from the explanation part, or none (with one line saying why)."""
    try:
        entries = list(demo_explanations(photos, out))
    except (ImportError, MissingDependencyError) as exc:
        say(f"explanations skipped: {exc}")
        return []
    good = []
    for e in entries:
        if isinstance(e, dict) and {"section", "title", "path"} <= set(e):
            good.append(e)
        else:  # a malformed entry is a bug in the explanation part; report it, keep the page
            print(f"salience demo: ignored a malformed gallery entry: {e!r}", file=sys.stderr)
    return good


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1400px; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
.paper { color: #555; font-size: 0.9em; margin-top: -0.5em; }
.grid { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; } figure img { height: 180px; display: inline-block; margin-right: 2px; }
figure.wide img { height: auto; max-width: 100%; }
figcaption { font-size: 0.85em; color: #444; max-width: 380px; }
"""


def _page(photos: dict, inputs: dict[str, str], sections: list[dict], extra: list[dict]) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
        "<title>salience demo</title>", f"<style>{_CSS}</style></head><body>",
        "<h1>salience demo</h1>",
        "<p>Bottom-up saliency maps of bundled photographs (scikit-image, matplotlib), one section per "
        "method of the registry. Grayscale maps: brightness is saliency; overlays: jet heatmap at 50% "
        "opacity.</p>",
        "<h2>Inputs</h2><div class='grid'>",
    ]
    for p, src in inputs.items():
        h, w = photos[p].shape[:2]
        parts.append(f"<figure><a href='{e(src)}'><img src='{e(src)}' alt='{e(p)}'></a>"
                     f"<figcaption>{e(p)} ({w} x {h})</figcaption></figure>")
    parts.append("</div>")
    for s in sections:
        parts.append(f"<h2>{e(s['title'])}</h2>")
        if s.get("subtitle"):
            parts.append(f"<p>{e(s['subtitle'])}</p>")
        parts.append(f"<p class='paper'>{e(s['paper'])}</p><div class='grid'>")
        for f in s["figures"]:
            cls = " class='wide'" if f.get("wide") else ""
            imgs = "".join(f"<a href='{e(i)}'><img src='{e(i)}' alt='{e(f['title'])}'></a>" for i in f["images"])
            parts.append(f"<figure{cls}>{imgs}<figcaption>{e(f['caption'])}</figcaption></figure>")
        parts.append("</div>")
    by_section: dict[str, list[dict]] = {}
    for entry in extra:
        by_section.setdefault(str(entry["section"]), []).append(entry)
    for name, entries in by_section.items():
        parts.append(f"<h2>{e(name)}</h2><div class='grid'>")
        for entry in entries:
            src = e(str(entry["path"]))
            parts.append(f"<figure><a href='{src}'><img src='{src}' alt='{e(str(entry['title']))}'></a>"
                         f"<figcaption><b>{e(str(entry['title']))}</b> {e(str(entry.get('caption', '')))}"
                         "</figcaption></figure>")
        parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


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
    import torch
    import torch.nn.functional as F

    from .attribution import explain, load_model, upsample  # needs torch: MissingDependencyError without it
    from .viz import colorize, overlay

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
    for names in groups.values():
        x = torch.cat([inputs[n] for n in names])
        for n, ranked in zip(names, lm.top_k(x, 1)):
            top1[n] = ranked[0]
        target = [top1[n][0] for n in names]
        for method in methods:
            row = get_method(method)
            e = explain(lm, x, row.name, target=target, **DEMO_PARAMS.get(row.name, {}))
            for i, n in enumerate(names):
                results[(n, row.name)] = (e, i)
    entries: list[dict] = []
    for name, img in photos.items():
        idx, cls, prob = top1[name]
        model_hw = tuple(inputs[name].shape[2:])
        section = f"Explanations: {name} (MobileNetV2 says {cls}, p = {prob:.2f})"
        for method in methods:
            row = get_method(method)
            e, i = results[(name, row.name)]
            m = upsample(e.maps[i:i + 1].detach().float().cpu(), img.shape[:2])[0].numpy().astype(np.float32)
            note = f"; layer {e.layer}" if e.layer else ""
            if row.signed:  # the evidence for the class: the positive part
                m = np.maximum(m, 0)
                note += "; positive part"
            if row.pixel_level:
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
                           f"photo at {model_hw[1]} x {model_hw[0]}. {row.paper}",
            })
    return entries
