"""The learned fixation model (deepgaze-mnv2) against the classic models, on held-out OSIE test images.

Scores every method on the 100 OSIE test images of ``salience/gaze/osie_split.json`` (never used in
training or in choosing the epoch) with :func:`salience.evaluation.evaluate_dataset` (MIT conventions, the
same code as ``salience evaluate``), prints the table (mean and 95 % t interval over images), the paired
per-image differences between the learned model and each other method, and the inference time of the
learned model on an 800 x 600 image (one image, and batches of 8) measured in the same run.

    python benchmarks/bench_learned.py [--limit N] [--jobs 2] [--out rows.csv] [--threads 2] [--no-human]

Classic methods appear twice: plain, and with the blur and centre-bias mix of ``docs/results.md``
(``blur=0.02, centre_bias=0.5``; fixed values, not fitted on these images).  Shuffled-AUC negatives are
the fixations of the other test images.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np

CLASSIC = ("itti", "image-signature", "spectral-residual", "frequency-tuned")


def _timing(threads: int) -> list[str]:
    import torch

    torch.set_num_threads(threads)
    from salience.datasets import load_osie
    from salience.gaze import fixation_log_density, fixation_map, load_fixation_model

    ds = load_osie()
    imgs = [ds.load_image(n) for n in ds.names[:8]]
    load_fixation_model()
    fixation_map(imgs[0])  # warm-up
    single = []
    for _ in range(5):
        t0 = time.perf_counter()
        fixation_map(imgs[0])
        single.append(time.perf_counter() - t0)
    batch = []
    for _ in range(2):
        t0 = time.perf_counter()
        fixation_log_density(imgs, batch_size=8)
        batch.append((time.perf_counter() - t0) / len(imgs))
    lines = [f"inference, 800 x 600, CPU, {threads} torch thread(s): one image {1e3 * statistics.median(single):.0f} ms "
             f"(median of 5), batch of 8 {1e3 * statistics.median(batch):.0f} ms per image (median of 2)"]
    if torch.cuda.is_available():
        load_fixation_model(device="cuda")
        fixation_log_density(imgs, batch_size=8, device="cuda")
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(5):
            fixation_log_density(imgs, batch_size=8, device="cuda")
        torch.cuda.synchronize()
        lines.append(f"inference on {torch.cuda.get_device_name(0)}: "
                     f"{5 * len(imgs) / (time.perf_counter() - t0):.1f} images/s (batches of 8)")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="only the first N test images")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads for the timing")
    ap.add_argument("--out", default=None, help="per-image rows (CSV)")
    ap.add_argument("--no-human", action="store_true", help="leave out the inter-observer ceiling (slow)")
    ap.add_argument("--no-timing", action="store_true")
    args = ap.parse_args()

    from salience.datasets import load_osie
    from salience.evaluation import ci95, evaluate_dataset
    from salience.gaze.training import osie_split

    test = osie_split()["test"]
    if args.limit:
        test = test[: args.limit]
    ds = load_osie().subset(names=test)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU(s) (shared), Python {platform.python_version()}")
    t0 = time.perf_counter()
    plain = ["deepgaze-mnv2", *CLASSIC, "centre-bias", "chance"] + ([] if args.no_human else ["human"])
    r1 = evaluate_dataset(ds, plain, metrics="all", jobs=args.jobs, progress=True)
    r2 = evaluate_dataset(ds, list(CLASSIC[:3]), metrics="all", jobs=args.jobs, blur=0.02, centre_bias=0.5,
                          progress=True)
    print(f"OSIE test split: {len(test)} held-out images; mean ± half-width of the 95% t interval")
    print(r1.table(markdown=True))
    print(r2.table(markdown=True).split("\n", 2)[2])
    rows = r1.rows + r2.rows
    by = {}
    for r in rows:
        by.setdefault(r["method"], {})[r["image"]] = r
    metrics = [k for k in r1.metrics]
    print("\npaired per-image difference, deepgaze-mnv2 minus each method (mean [95% t interval]):")
    print("| method | " + " | ".join(metrics) + " |")
    print("|---|" + "---|" * len(metrics))
    for m in [*by]:
        if m in ("deepgaze-mnv2", "human", "chance"):
            continue
        cells = []
        for k in metrics:
            d = [by["deepgaze-mnv2"][i][k] - by[m][i][k] for i in test
                 if np.isfinite(by["deepgaze-mnv2"][i][k]) and np.isfinite(by[m][i][k])]
            mean, lo, hi = ci95(d)
            cells.append(f"{mean:+.3f} [{lo:+.3f}, {hi:+.3f}]")
        print(f"| {m} | " + " | ".join(cells) + " |")
    print(f"\nscoring: {time.perf_counter() - t0:.0f} s wall")
    if args.out:
        import csv

        with open(args.out, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    if not args.no_timing:
        for line in _timing(args.threads):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
