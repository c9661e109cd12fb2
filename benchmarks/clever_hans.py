"""The planted shortcut of docs/audit.md ("A shortcut found end to end"), for several seeds.

Runs :func:`salience.audit.shortcut.clever_hans_demo` on the first 90 OSIE stimuli and four scikit-image
photos (what tests/test_clever_hans.py uses, with seed 0) and prints one row per seed: held-out accuracy of
the stamped model with and without the stamp, of the control model, SpRAy's clusters and the corner shares.

With ``--case``: the end-to-end case instead (:func:`salience.audit.shortcut.plant_shortcut` on all 700 OSIE
photos, then ``salience audit-dataset`` on the held-out photos with the stamped and the control model, what
tests/test_clever_hans.py runs with seed 0): one row per seed with the accuracies, the predicted "animal"
class's SpRAy clusters, the flagged cluster's share of stamped photos, its spot and the report's finding.

    python benchmarks/clever_hans.py [--seeds 0 1 2] [--data ../shared/data] [--case]
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
    ap.add_argument("--case", action="store_true", help="the end-to-end case through audit-dataset")
    args = ap.parse_args()
    root = args.data or shared_data_dir()
    if args.case:
        return end_to_end(root, args.seeds)
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


def end_to_end(root: Path, seeds: list[int]) -> None:
    import csv
    import tempfile

    from salience.audit.shortcut import plant_shortcut
    from salience.cli import main as cli

    files = sorted((root / "osie" / "stimuli").glob("*.jpg"))
    photos = [cv2.imread(str(f), cv2.IMREAD_COLOR)[:, :, ::-1].copy() for f in files]
    print(f"{len(photos)} OSIE photos; 60% of each source for fitting, 40% held out and audited; Grad-CAM")
    print("| seed | held out (content / stamped / other) | accuracy, without stamp | stamped source: with, without "
          "| control: overall, stamped source | model | 'animal' clusters (sizes) | flagged: size, stamped share, "
          "spot (x, y), spot share vs rest | plant + 2 audits |")
    print("|---|---|---|---|---|---|---|---|---|")
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            c = plant_shortcut(photos, Path(tmp) / "case", names=[f.stem for f in files], seed=seed)
            with open(c.truth, newline="", encoding="utf-8") as fh:
                truth = {r["image"].rsplit(".", 1)[0]: r for r in csv.DictReader(fh)}
            for which, ckpt in (("stamped", c.checkpoint), ("control", c.control_checkpoint)):
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=".*zero everywhere.*")
                    assert cli(["audit-dataset", str(c.images), "--method", "gradcam", "--weights", str(ckpt),
                                "--out", str(Path(tmp) / which)]) == 0
            dt = time.perf_counter() - t0
            for which in ("stamped", "control"):
                with open(Path(tmp) / which / "clusters.csv", newline="", encoding="utf-8") as fh:
                    rows = [r for r in csv.DictReader(fh) if r["pred_class"] == "1"]
                with open(Path(tmp) / which / "images.csv", newline="", encoding="utf-8") as fh:
                    images = list(csv.DictReader(fh))
                flagged = []
                for r in rows:
                    if r["candidate_shortcut"] != "True":
                        continue
                    members = [i["image"] for i in images if i["pred_class"] == "1" and i.get("cluster") == r["cluster"]]
                    share = np.mean([int(truth[m]["stamped"]) for m in members])
                    flagged.append(f"{r['size']}, {share:.0%}, ({float(r['spot_x']):.2f}, {float(r['spot_y']):.2f}), "
                                   f"{float(r['spot_share']):.1%} vs {float(r['rest_spot_share']):.1%}")
                print(f"| {seed} | {c.n_test['content']} / {c.n_test['stamped']} / {c.n_test['other']} | "
                      f"{c.accuracy:.1%}, {c.accuracy_unstamped:.1%} | {c.stamped_accuracy:.1%}, "
                      f"{c.stamped_accuracy_unstamped:.1%} | {c.control_accuracy:.1%}, {c.control_stamped_accuracy:.1%} "
                      f"| {which} | {len(rows)} ({', '.join(r['size'] for r in rows)}) | {'; '.join(flagged) or 'none'} "
                      f"| {dt:.0f} s |")


if __name__ == "__main__":
    main()
