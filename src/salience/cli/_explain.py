"""``salience explain``: where a classifier looked, for image files: top-5 classes, maps and overlays."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError, OutputExistsError
from ..io import DEFAULT_MAX_PIXELS, load_image
from ..registry import EXPLANATION, get_method, method_names
from ._common import for_each_input, output_stem

EXAMPLES = """\
examples:
  salience explain cat.jpg                                   # Grad-CAM of the top-1 class, MobileNetV2
  salience explain cat.jpg --method gradcam,guided-backprop,guided-gradcam --out maps/
  salience explain cat.jpg --target "tiger cat" --layer features.14
  salience explain *.jpg --model efficientnet_lite0 --method gradcam-pp,ig
  salience explain x.png --model resnet50 --weights my_resnet50.pth --device cuda

outputs (in --out, default salience-out/), for an input cat.jpg and method M:
  cat_M.png           grayscale map, brightness = importance
  cat_M_overlay.png   heatmap over the photo
  cat_M.npy           the float32 map (--npy)

--target: top1 (default), top2, ..., a class index, or a class name ("Egyptian cat", a unique prefix).
Existing files are kept unless --overwrite; writes are atomic (temporary file, then rename).
exit status: 0 all inputs done, 1 some inputs failed (one line each), 2 bad usage.
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
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    p.add_argument("--model", default="mobilenet_v2",
                   help="mobilenet_v2 (default, bundled weights), efficientnet_lite0, or a torchvision name "
                        "with --weights")
    p.add_argument("--weights", metavar="PATH", default=None,
                   help="checkpoint (state dict .pth/.pt, or .safetensors); never unpickles code")
    p.add_argument("--method", "-m", default="gradcam", help="method(s), comma-separated (default gradcam)")
    p.add_argument("--target", default="top1", help="top1 (default), topK, a class index or a class name")
    p.add_argument("--layer", default=None, help="target layer for CAM methods (default: the model's)")
    p.add_argument("--out", "-o", default="salience-out", metavar="DIR", help="output folder")
    p.add_argument("--npy", action="store_true", help="also write float32 maps as .npy")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help="refuse larger images (decompression-bomb guard; 0 = no limit)")
    return p


def _methods(spec: str) -> list[str]:
    names: list[str] = []
    for raw in (s.strip() for s in str(spec).split(",")):
        if not raw:
            continue
        m = get_method(raw)
        if m.kind != EXPLANATION:
            raise InputError(f"method {m.name!r} is bottom-up; use `salience map IMAGE --method {m.name}`")
        if m.name not in names:
            names.append(m.name)
    if not names:
        raise InputError(f"--method is empty; give one of {', '.join(method_names(EXPLANATION))}")
    return names


def run(args) -> int:
    methods = _methods(args.method)
    if args.device not in ("cpu", "cuda") and not str(args.device).startswith("cuda:"):
        raise InputError(f"--device must be cpu or cuda, got {args.device!r}")
    from ..explain._demo import explain_image, parse_target, save_outputs
    from ..explain.models import load_model

    if str(args.device).startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise InputError("--device cuda asked for, but torch sees no CUDA device; use --device cpu")
    lm = load_model(args.model, weights=args.weights, device=args.device)
    parse_target(lm, args.target)  # a bad class name fails once, before any image is read
    out = Path(args.out)
    used: dict[str, int] = {}
    written: list[Path] = []

    def work(item: str) -> None:
        stem = output_stem(item, used)
        if not args.overwrite:
            existing = [out / f"{stem}_{m}{suf}" for m in methods for suf in (".png", "_overlay.png")
                        if (out / f"{stem}_{m}{suf}").exists()]
            if existing:
                raise OutputExistsError(
                    f"{len(existing)} output file(s) exist already ({', '.join(p.name for p in existing)}); "
                    "pass --overwrite to replace them, or choose another --out"
                )
        img = load_image(item, max_pixels=args.max_pixels or None)
        top5, maps, info = explain_image(lm, img, methods, target=args.target, layer=args.layer,
                                         device=args.device)
        lines = [f"{item}: top-5 classes ({lm.name}):"]
        lines += [f"  {i + 1}. {name} (class {idx}): {p:.4f}" for i, (idx, name, p) in enumerate(top5)]
        tgt = next(iter(info.values()))["target"]
        if tgt is not None and 0 <= tgt < len(lm.class_names):
            lines.append(f"  explained: {lm.class_names[tgt]} (class {tgt})")
        print("\n".join(lines))
        mine = save_outputs(out, stem, img, maps, overwrite=args.overwrite, npy=args.npy)
        written.extend(mine)
        print(f"{item}: wrote {', '.join(str(p) for p in mine)}")

    code = for_each_input(args.images, work, desc="salience explain")
    print(f"salience: wrote {len(written)} file(s) to {out}/")
    return code
