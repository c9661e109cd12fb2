"""The planted shortcut of docs/audit.md ("A shortcut found end to end"), for several seeds.

Runs :func:`salience.audit.shortcut.clever_hans_demo` on the first 90 OSIE stimuli and four scikit-image
photos (what tests/test_clever_hans.py uses, with seed 0) and prints one row per seed: held-out accuracy of
the stamped model with and without the stamp, of the control model, SpRAy's clusters and the corner shares.

    python benchmarks/clever_hans.py [--seeds 0 1 2] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import skimage.data as skdata

from salience.audit.shortcut import clever_hans_demo
from salience.datasets import shared_data_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--data", type=Path, default=None, help="the shared data folder (default: as the tests find it)")
    args = ap.parse_args()
    root = args.data or shared_data_dir()
    files = sorted((root / "osie" / "stimuli").glob("*.jpg"))[:90]
    photos = [cv2.imread(str(f), cv2.IMREAD_COLOR)[:, :, ::-1].copy() for f in files]
    photos += [getattr(skdata, n)() for n in ("astronaut", "coffee", "chelsea", "rocket")]
    print(f"{len(photos)} photos; 60 fitting, 30 held out; Grad-CAM; corner box 1/4 of the side (uniform 6.25%)")
    print("| seed | stamped model: acc. with stamp | without stamp | control: acc. | control with stamp | "
          "SpRAy clusters (sizes) | stamp cluster: size, stamped share, recall, corner share | "
          "other clusters' corner share | control clusters (sizes), max corner share | time |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*zero everywhere.*")
            r = clever_hans_demo(photos, n_fit=60, n_test=30, seed=seed)
        dt = time.perf_counter() - t0
        k = r.stamp_cluster
        others = np.delete(r.corner_shares, k)
        print(f"| {seed} | {r.accuracy_stamped:.1%} | {r.accuracy_unstamped:.1%} | {r.control_accuracy:.1%} | "
              f"{r.control_accuracy_stamped:.1%} | {r.spray.n_clusters} ({', '.join(map(str, r.spray.sizes))}) | "
              f"{r.spray.sizes[k]}, {r.stamp_cluster_purity:.0%}, {r.stamp_cluster_recall:.0%}, "
              f"{r.corner_shares[k]:.1%} | {', '.join(f'{s:.1%}' for s in others)} | "
              f"{r.control_spray.n_clusters} ({', '.join(map(str, r.control_spray.sizes))}), "
              f"{r.control_corner_shares.max():.1%} | {dt:.0f} s |")


if __name__ == "__main__":
    main()
