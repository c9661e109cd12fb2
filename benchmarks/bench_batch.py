"""Benchmark of `salience batch` (issue 14): ratios measured in one run.

1. Itti-Koch over N OSIE images (resized to 640 x 480): throughput of 2 local workers / 1 worker.
2. The framework's overhead per image (local engine, 1 worker) against a plain loop doing the same work
   (load the image, compute the Itti map, save the PNG atomically), as a share of that loop's time.
3. The Ray engine on the same machine (1 actor, Ray already started): overhead per image against local.
4. Grad-CAM on the default model (MobileNetV2): images per second at batch sizes 1, 8, 32 on the CPU,
   and on the GPU when torch sees one.

    python benchmarks/bench_batch.py [--n 200] [--gradcam-n 32] [--no-ray] [--no-gradcam]

Prints the machine (CPU count, load average) with the figures; the data are /work/shared/data/osie
(SALIENCE_SHARED_DATA, else ../shared/data next to the repository).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import salience  # noqa: E402
import salience.batch  # noqa: E402


def _data() -> Path:
    root = Path(os.environ.get("SALIENCE_SHARED_DATA") or REPO / ".." / "shared" / "data").resolve()
    d = root / "osie" / "stimuli"
    if not d.is_dir():
        sys.exit(f"no OSIE stimuli at {d}; set SALIENCE_SHARED_DATA")
    return d


def _prepare(n: int, folder: Path, size=(640, 480)) -> Path:
    import cv2
    from PIL import Image

    src = sorted(_data().glob("*.jpg"))[:n]
    folder.mkdir(parents=True, exist_ok=True)
    for f in src:
        img = salience.load_image(str(f))
        small = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        Image.fromarray(np.floor(small * 255 + 0.5).astype(np.uint8)).save(folder / f"{f.stem}.png")
    return folder


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200, help="OSIE images for the Itti runs (default 200)")
    ap.add_argument("--gradcam-n", type=int, default=32, help="images for the Grad-CAM runs (default 32)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of the Itti runs (default 3)")
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--no-gradcam", action="store_true")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        print(f"machine: {platform.machine()} {os.cpu_count()} CPU(s), {platform.python_version()}, "
              f"load average at start {os.getloadavg()[0]:.1f} / {os.getloadavg()[1]:.1f} / {os.getloadavg()[2]:.1f}")
        imgs = _prepare(a.n, tmp / "in")
        files = sorted(imgs.glob("*.png"))
        salience.saliency_map(salience.load_image(str(files[0])), "itti")  # warm caches, imports

        # plain loop: what every engine must do per image anyway
        from salience.io import save_map

        def plain():
            for f in files:
                save_map(salience.saliency_map(salience.load_image(str(f)), "itti"), tmp / "plain" / f"{f.stem}.png",
                         overwrite=True)
        # alternating rounds (the order rotated each round), medians, ratios per round: one sample of each
        # varied by 6-11% on an idle machine, more than the overhead being measured
        import statistics

        n = len(files)
        cases = {"plain": plain,
                 "w1": lambda: salience.batch.run([imgs], "itti", out=tmp / "w1", workers=1),
                 "w2": lambda: salience.batch.run([imgs], "itti", out=tmp / "w2", workers=2)}
        times: dict[str, list[float]] = {k: [] for k in cases}
        for r in range(a.rounds):
            order = list(cases)[r % 3:] + list(cases)[:r % 3]
            for k in order:
                shutil.rmtree(tmp / k, ignore_errors=True)
                times[k].append(_timed(cases[k])[0])
        med = {k: statistics.median(v) for k, v in times.items()}
        speed = sorted(w1 / w2 for w1, w2 in zip(times["w1"], times["w2"]))
        over = sorted((w1 - p) / p for w1, p in zip(times["w1"], times["plain"]))
        t1 = med["w1"]
        print(f"\nItti-Koch, {n} OSIE images at 640x480, {a.rounds} alternating rounds (medians; ratios per round)")
        print(f"  plain loop (load + map + save): {med['plain']:.2f} s ({1000 * med['plain'] / n:.1f} ms/image); "
              f"rounds {', '.join(f'{t:.2f}' for t in times['plain'])}")
        print(f"  batch, 1 worker : {t1:.2f} s  ({n / t1:.2f} images/s)")
        print(f"  batch, 2 workers: {med['w2']:.2f} s  ({n / med['w2']:.2f} images/s)")
        print(f"  ratio 2 workers / 1 worker throughput: {statistics.median(speed):.2f}x "
              f"(rounds {speed[0]:.2f}-{speed[-1]:.2f})  (target >= 1.8x)")
        print(f"  framework overhead per image (1 worker vs plain loop): "
              f"{1000 * statistics.median(over) * med['plain'] / n:.2f} ms = {100 * statistics.median(over):.1f}% "
              f"(rounds {100 * over[0]:.1f}% to {100 * over[-1]:.1f}%) of the plain loop's time (target < 5%)")

        if not a.no_ray:
            try:
                import ray
            except ImportError:
                print("\nRay: not installed (pip install 'salience[ray]'); skipped")
            else:
                t_init, _ = _timed(lambda: ray.init(num_cpus=os.cpu_count(), include_dashboard=False,
                                                    log_to_driver=False))
                try:
                    tr, _ = _timed(lambda: salience.batch.run([imgs], "itti", out=tmp / "ray1", engine="ray",
                                                              workers=1))
                finally:
                    ray.shutdown()
                print(f"\nRay engine, 1 actor, same {n} images (ray.init took {t_init:.1f} s, not counted)")
                print(f"  {tr:.2f} s ({n / tr:.2f} images/s); overhead vs local 1 worker: "
                      f"{1000 * (tr - t1) / n:.1f} ms/image = {100 * (tr - t1) / t1:.1f}% (ratio {tr / t1:.2f}x)")

        if a.no_gradcam:
            print(f"\nload average at end {os.getloadavg()[0]:.1f} / {os.getloadavg()[1]:.1f} / {os.getloadavg()[2]:.1f}")
            return
        import torch

        g = sorted(_data().glob("*.jpg"))[:a.gradcam_n]
        gin = tmp / "g"
        gin.mkdir()
        for f in g:
            shutil.copy(f, gin / f.name)
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        print(f"\nGrad-CAM, MobileNetV2, {len(g)} OSIE images (800x600; model input 224x298), 1 worker, "
              f"torch threads {torch.get_num_threads()}")
        t_load, _ = _timed(lambda: salience.load_model())
        for dev in devices:
            base = None
            for bs in (1, 8, 32):
                t, _ = _timed(lambda: salience.batch.run([gin], "gradcam", out=tmp / f"g-{dev}-{bs}", batch_size=bs,
                                                         device=dev))
                ips = len(g) / max(1e-9, t - t_load)
                base = base or ips
                print(f"  {dev} batch size {bs:2d}: {t:.2f} s, {ips:.2f} images/s without the model load "
                      f"({t_load:.1f} s)  ratio to batch 1: {ips / base:.2f}x")
        print(f"\nload average at end {os.getloadavg()[0]:.1f} / {os.getloadavg()[1]:.1f} / {os.getloadavg()[2]:.1f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
