"""Integrated Gradients' completeness error on real photos: how far ``sum(attributions)`` is from
``f(x) - f(baseline)`` for each quadrature rule and step count, over many images.

    python benchmarks/ig_completeness.py                                  # the bundled photos, CPU
    python benchmarks/ig_completeness.py --images ../shared/data/osie/stimuli --limit 100 --device cuda
    python benchmarks/ig_completeness.py --rules gauss-legendre:64,tolerance:0.01 --csv ig.csv

A rule is ``NAME:STEPS`` (NAME one of salience's quadratures or ``adaptive``) or ``tolerance:T`` (the
default rule from 64 steps, doubled per image until ``|delta| <= T |f(x) - f(x')|``, up to 1024).  The
model is the default MobileNetV2 (or ``--model``), the target each image's top-1 class, the baseline
``--baseline`` (default ``zeros``: the mean colour).  Prints, per rule, the mean, median, 90th
percentile and largest relative error ``|delta| / |f(x) - f(x')|``, the share of images at or below
1%, the steps taken (for ``tolerance``) and the seconds spent.  docs/explain.md records the figures.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
import warnings
from pathlib import Path

import numpy as np

DEFAULT_RULES = "gauss-legendre:64,gauss-legendre:128,gauss-legendre:256,adaptive:64,tolerance:0.01"


def bundled_photos() -> list[tuple[str, np.ndarray]]:
    from matplotlib import cbook
    from skimage import data

    from salience import load_image

    out = []
    for name in ("coffee", "chelsea", "astronaut", "rocket", "immunohistochemistry", "hubble_deep_field"):
        out.append((name, load_image(getattr(data, name)())))
    out.append(("stereo_motorcycle", load_image(data.stereo_motorcycle()[0])))
    out.append(("grace_hopper", load_image(cbook.get_sample_data("grace_hopper.jpg"))))
    return out


def folder_images(folder: str, limit: int, every: int) -> list[tuple[str, np.ndarray]]:
    from salience import load_image

    exts = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in exts)[::every][:limit]
    if not files:
        raise SystemExit(f"no images in {folder}")
    return [(p.name, load_image(p)) for p in files]


def parse_rules(spec: str) -> list[tuple[str, str, float]]:
    rules = []
    for item in spec.split(","):
        name, _, val = item.strip().partition(":")
        if not val:
            raise SystemExit(f"rule {item!r}: write NAME:STEPS or tolerance:T")
        rules.append((item.strip(), name, float(val)))
    return rules


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default="photos", help="'photos' (bundled) or a folder of images")
    ap.add_argument("--limit", type=int, default=100, help="at most this many images from a folder")
    ap.add_argument("--every", type=int, default=1, help="take every K-th image of the sorted folder")
    ap.add_argument("--rules", default=DEFAULT_RULES)
    ap.add_argument("--baseline", default="zeros")
    ap.add_argument("--model", default="mobilenet_v2")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--images-per-call", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=32, help="path points per backward pass")
    ap.add_argument("--csv", help="write one row per image and rule here")
    args = ap.parse_args()

    import torch

    import salience

    if args.device.startswith("cuda"):  # full float32 arithmetic: TF32 would add its own error to delta
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    lm = salience.load_model(args.model)
    lm.model.to(args.device)
    imgs = bundled_photos() if args.images == "photos" else folder_images(args.images, args.limit, args.every)
    rules = parse_rules(args.rules)
    print(f"torch {torch.__version__}, device {args.device}"
          + (f" ({torch.cuda.get_device_name(0)})" if args.device.startswith("cuda") else "")
          + f", model {lm.name}, baseline {args.baseline}, {len(imgs)} images, top-1 class each")
    rows = []
    summary = []
    for label, name, val in rules:
        params = {"baseline": args.baseline, "batch_size": args.batch_size}
        if name == "tolerance":
            params.update(steps=64, tolerance=val)
        else:
            params.update(steps=int(val), quadrature=name)
        rel, steps = [], []
        t0 = time.perf_counter()
        for s in range(0, len(imgs), args.images_per_call):
            part = imgs[s:s + args.images_per_call]
            groups: dict[tuple, list[int]] = {}
            xs = [lm.preprocess(img) for _, img in part]
            for i, x in enumerate(xs):
                groups.setdefault(tuple(x.shape), []).append(i)
            for idxs in groups.values():
                x = torch.cat([xs[i] for i in idxs]).to(args.device)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    e = salience.explain(lm, x, "integrated-gradients", **params)
                r = (e.delta.abs() / (e.scores - e.baseline_scores).abs()).cpu().numpy()
                for j, i in enumerate(idxs):
                    rel.append(float(r[j]))
                    steps.append(int(e.steps[j]))
                    rows.append({"image": part[i][0], "rule": label, "relative_error": float(r[j]),
                                 "steps": int(e.steps[j]),
                                 "class": lm.class_names[int(e.targets[j])]})
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        secs = time.perf_counter() - t0
        a = np.asarray(rel) * 100
        summary.append((label, a.mean(), np.median(a), np.percentile(a, 90), a.max(), (a <= 1.0).mean() * 100,
                        np.mean(steps), max(steps), secs))
    print(f"\n{'rule':<22} {'mean %':>7} {'median %':>9} {'p90 %':>7} {'max %':>7} {'<= 1%':>7} "
          f"{'steps mean':>10} {'max':>5} {'seconds':>8}")
    for label, mean, med, p90, mx, ok, smean, smax, secs in summary:
        print(f"{label:<22} {mean:7.2f} {med:9.2f} {p90:7.2f} {mx:7.2f} {ok:6.0f}% {smean:10.0f} {smax:5d} "
              f"{secs:8.1f}")
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
