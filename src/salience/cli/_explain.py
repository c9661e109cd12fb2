"""``salience explain``: where a classifier looked, for image files: top-5 classes, maps and overlays."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import OutputExistsError
from ..io import load_image
from ..registry import EXPLANATION, method_names
from ._common import (
    add_model_arguments,
    emit,
    explanation_methods,
    for_each_input,
    load_model_for,
    output_stem,
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
    return p


def _progress_factory(item: str):
    """A tqdm bar within one image for the slow methods, on an interactive stderr only."""
    import sys

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
    from ..attribution._base import Target
    from ..attribution._demo import (
        explain_image,
        method_params,
        parse_target,
        save_outputs,
        uses_layer,
    )

    # usage errors once, before the model loads
    params = method_params(methods, args.param, fast=args.fast)
    if isinstance(args.target, str) and args.target.strip().lower().startswith("top"):
        Target.parse(args.target, 1)
    ignored = [m for m in methods if not uses_layer(m)]
    if args.layer is not None and ignored:
        emit(f"salience: note: --layer applies to CAM methods and Score-CAM; ignored for {', '.join(ignored)}",
             file=sys.stderr)
    lm = load_model_for(args)
    target = parse_target(lm, args.target)  # a bad class name fails once, before any image is read
    if args.layer is not None and len(ignored) < len(methods):
        from ..attribution._hooks import resolve_layer

        resolve_layer(lm.model, args.layer)  # an unknown layer fails once, too
    out = Path(args.out)
    used: dict[str, int] = {}
    written: list[Path] = []

    def work(item: str) -> None:
        stem = output_stem(item, used)
        if not args.overwrite:
            suffixes = (".png", "_overlay.png") + ((".npy",) if args.npy else ())
            existing = [out / f"{stem}_{m}{suf}" for m in methods for suf in suffixes
                        if os.path.lexists(out / f"{stem}_{m}{suf}")]
            if existing:
                raise OutputExistsError(
                    f"{len(existing)} output file(s) exist already ({', '.join(p.name for p in existing)}); "
                    "pass --overwrite to replace them, or choose another --out"
                )
        img = load_image(item, max_pixels=args.max_pixels or None)
        top5, maps, info = explain_image(lm, img, methods, target=target, layer=args.layer, params=params,
                                         device=args.device, progress=_progress_factory(item))
        lines = [f"{item}: top-5 classes ({lm.name}):"]
        lines += [f"  {i + 1}. {name} (class {idx}): {p:.4f}" for i, (idx, name, p) in enumerate(top5)]
        tgt = next(iter(info.values()))["target"]
        if tgt is not None and 0 <= tgt < len(lm.class_names):
            lines.append(f"  explained: {lm.class_names[tgt]} (class {tgt})")
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
