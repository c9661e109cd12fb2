"""The CLI's ``--fast`` preset against the default settings, measured in the same run.

For each slow method (RISE, Score-CAM, occlusion; SmoothGrad and Integrated Gradients too), on the
default model (MobileNetV2, bundled weights) and bundled photos preprocessed as the CLI does (whole
image, short side 224), with ``torch.set_num_threads(2)`` by default: the time of one image at the
default settings and with ``--fast``'s parameters, their ratio, and the agreement of the two maps
(Pearson correlation; overlap of their top-10% pixels, |A & B| / |A|).  Wall-clock seconds, and the
process's CPU seconds (all threads), which a loaded shared machine distorts less.

    python benchmarks/bench_fast_preset.py [--photos chelsea,coffee] [--threads 2] [--only rise,occlusion]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

import salience
from salience.cli._explain import FAST_PARAMS


def top_overlap(a: np.ndarray, b: np.ndarray, q: float = 0.9) -> float:
    ta, tb = a >= np.quantile(a, q), b >= np.quantile(b, q)
    return float((ta & tb).sum() / max(1, ta.sum()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", default="chelsea,coffee")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default=",".join(FAST_PARAMS))
    ap.add_argument("--size", type=int, default=224,
                    help="short side of the model input (the CLI's is 224; smaller for a quick run)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import skimage.data as sk

    lm = salience.load_model()
    load0 = " ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"MobileNetV2, {args.threads} threads, load average before {load0}")
    print(f"{'photo':<10} {'method':<22} {'default s':>9} {'fast s':>8} {'ratio':>6} {'pearson':>8} {'top10%':>7}  fast params")
    for photo in args.photos.split(","):
        img = getattr(sk, photo)().astype(np.float32) / 255.0
        x = lm.preprocess(img, crop=False)
        if args.size != 224:
            h, w = x.shape[2:]
            x = torch.nn.functional.interpolate(x, size=(round(h * args.size / min(h, w)),
                                                         round(w * args.size / min(h, w))),
                                                mode="bilinear", align_corners=False, antialias=True)
        target = int(lm.top_k(x, 1)[0][0][0])
        for method in args.only.split(","):
            t0, c0 = time.perf_counter(), time.process_time()
            full = salience.explain(lm, x, method, target=target).maps[0].numpy()
            t1, c1 = time.perf_counter(), time.process_time()
            fast = salience.explain(lm, x, method, target=target, **FAST_PARAMS[method]).maps[0].numpy()
            t2, c2 = time.perf_counter(), time.process_time()
            r = float(np.corrcoef(full.ravel(), fast.ravel())[0, 1])
            print(f"{photo:<10} {method:<22} {t1 - t0:9.1f} {t2 - t1:8.1f} {(t1 - t0) / (t2 - t1):6.1f} "
                  f"{r:8.3f} {top_overlap(full, fast):7.2f}  {FAST_PARAMS[method]}  ({tuple(x.shape[2:])}; "
                  f"CPU s default {c1 - c0:.1f}, fast {c2 - c1:.1f})", flush=True)
    print(f"load average after {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
