"""Deletion / insertion AUCs of explanations of the default model on bundled photos, and the cost of a
curve against the bare forward passes it needs (ratio measured in the same run).

    .venv/bin/python benchmarks/bench_faithfulness.py [--steps 50] [--threads 2]

Prints a table of AUCs (MobileNetV2, whole image with the short side 224, target = top-1 class; deletion
fills with 0, insertion starts from a blur of sigma 5 px: Petsiuk et al.'s pairing), a random-map
baseline, ROAD on one photo, and timings.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import salience
from salience.audit import faithfulness as fa


def photos() -> dict[str, np.ndarray]:
    import skimage.data as sk

    return {n: getattr(sk, n)().astype(np.float32) / 255 for n in ("chelsea", "coffee", "astronaut")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lm = salience.load_model()
    methods = ["gradcam", "guided-backprop", "gradient", "random"]
    print(f"MobileNetV2, steps={args.steps}, deletion: constant 0, insertion: blur sigma 5 px")
    print(f"{'photo':10s} {'class':18s} " + " ".join(f"{m + ' del/ins':>24s}" for m in methods))
    for name, img in photos().items():
        x = lm.preprocess(img, crop=False)
        cls = lm.top_k(x, 1)[0][0]
        row = []
        for m in methods:
            if m == "random":
                sal = torch.rand(x.shape[0], *x.shape[2:], generator=torch.Generator().manual_seed(0))
            else:
                sal = salience.explain(lm, x, method=m).maps
            d = fa.deletion_curve(lm, x, sal, steps=args.steps, batch_size=args.batch_size)
            i = fa.insertion_curve(lm, x, sal, steps=args.steps, batch_size=args.batch_size)
            row.append(f"{d.auc[0]:.3f} / {i.auc[0]:.3f}")
        print(f"{name:10s} {cls[1][:18]:18s} " + " ".join(f"{r:>24s}" for r in row), flush=True)

    # cost: one deletion curve against the same number of bare forward passes in the same batches
    x = lm.preprocess(photos()["chelsea"], crop=False)
    sal = salience.explain(lm, x, method="gradcam").maps
    n = args.steps + 1
    for rnd in range(3):
        t0 = time.perf_counter()
        with torch.no_grad():
            for s in range(0, n, args.batch_size):
                lm.model(x.expand(min(n, s + args.batch_size) - s, -1, -1, -1).contiguous())
        t_fwd = time.perf_counter() - t0
        t0 = time.perf_counter()
        fa.deletion_curve(lm, x, sal, steps=args.steps, batch_size=args.batch_size)
        t_curve = time.perf_counter() - t0
        print(f"round {rnd}: {n} forwards {t_fwd:.2f} s, deletion curve {t_curve:.2f} s, ratio {t_curve / t_fwd:.2f}")
    # ROAD on one photo (one sparse solve per step on the CPU)
    steps = 20
    t0 = time.perf_counter()
    rd = fa.deletion_curve(lm, x, sal, steps=steps, perturbation="road")
    t_road = time.perf_counter() - t0
    t0 = time.perf_counter()
    cd = fa.deletion_curve(lm, x, sal, steps=steps, perturbation="constant")
    t_const = time.perf_counter() - t0
    ri = fa.insertion_curve(lm, x, sal, steps=steps, perturbation="road")
    print(f"chelsea gradcam, {steps} steps: ROAD deletion AUC {rd.auc[0]:.3f} ({t_road:.1f} s), insertion AUC "
          f"{ri.auc[0]:.3f}; constant deletion AUC {cd.auc[0]:.3f} ({t_const:.1f} s)")


if __name__ == "__main__":
    main()
