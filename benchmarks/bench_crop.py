"""Smart crops on human data: the share of OSIE's fixations that fall inside each crop.

For every OSIE image (700, 800 x 600, 15 viewers) and the aspects 16:9, 1:1 and 9:16, the largest window of
the aspect is placed by

* the centre crop;
* the arg-max-centred crop (the window centred on the map's maximum, clamped to the image), per map;
* smartcrop.py (``smartcrop`` 0.5.0 from PyPI, benchmark-only; ``min_scale=1`` so that its window has the
  same size as everyone else's);
* salience's crop (:func:`salience.tasks.crop.crop`: the window holding the most saliency mass) over each
  bottom-up map, plain and with the blur + centre prior (blur 0.02 x width, centre-bias weight 0.3);
* an upper bound that is not a method: the window holding the most of the fixations' own density.

It prints, per aspect and crop, the mean share of fixations inside with its 95% t interval over images,
and the paired difference to the centre crop (mean and 95% interval).  The images are split by sorted name
into a *selection* half (the first 350) and a *test* half (the last 350): the default crop method is the
best salience crop on the selection half, and its numbers on the test half are reported separately.

It also times the window search on an 800 x 600 map (median of repeated runs) against a direct
evaluation of every window position in numpy, and prints the ratio.

Usage::

    python benchmarks/bench_crop.py [--data-dir DIR] [--limit N] [--stride N] [--jobs N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import salience
from salience.datasets import load_osie
from salience.evaluation import ci95
from salience.tasks.crop import best_windows, centre_window, window_size

ASPECTS = ("16:9", "1:1", "9:16")
METHODS = ["itti", "spectral-residual", "image-signature", "frequency-tuned"]
PRIOR = {"blur": 0.02, "centre_bias": 0.3}


def _share(points: np.ndarray, win) -> float:
    x, y = points[:, 0], points[:, 1]
    inside = (x >= win.x0 - 0.5) & (x < win.x1 - 0.5) & (y >= win.y0 - 0.5) & (y < win.y1 - 0.5)
    return float(inside.mean())


def _argmax_window(sal: np.ndarray, size: tuple[int, int]):
    h, w = sal.shape
    wh, ww = size
    iy, ix = np.unravel_index(int(np.argmax(sal)), sal.shape)
    x0 = int(min(max(ix - ww // 2, 0), w - ww))
    y0 = int(min(max(iy - wh // 2, 0), h - wh))
    return type(centre_window((h, w), size))(x0, y0, x0 + ww, y0 + wh, 0.0, 0.0)


def _norm(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    lo, hi = float(m.min()), float(m.max())
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)


def _set_methods(names):
    METHODS[:] = names


def _one(args):
    path, points, names_only = args
    img = salience.load_image(path)
    h, w = img.shape[:2]
    maps: dict[str, np.ndarray] = {}
    centre = salience.saliency_map(img, "centre-bias").astype(np.float64)
    for m in METHODS:
        maps[m] = _norm(salience.saliency_map(img, m))
        # the prior as salience.saliency_map(img, m, blur=0.02, centre_bias=0.3) applies it (min-max
        # normalisation commutes with the blur up to scale), without computing the map twice
        blurred = _norm(cv2.GaussianBlur(maps[m], (0, 0), sigmaX=PRIOR["blur"] * w, borderType=cv2.BORDER_REFLECT))
        maps[f"{m}+prior"] = np.clip((1 - PRIOR["centre_bias"]) * blurred + PRIOR["centre_bias"] * centre, 0, 1)
    binary = np.zeros((h, w))
    ix = np.clip(np.floor(points[:, 0] + 0.5).astype(int), 0, w - 1)
    iy = np.clip(np.floor(points[:, 1] + 0.5).astype(int), 0, h - 1)
    np.add.at(binary, (iy, ix), 1.0)
    oracle = cv2.GaussianBlur(binary, (0, 0), sigmaX=0.02 * w)
    out: dict[str, dict[str, float]] = {}
    try:
        from PIL import Image
        from smartcrop import SmartCrop

        pil = Image.open(path).convert("RGB")
        sc = SmartCrop()
    except ImportError:
        sc = None
    for aspect in ASPECTS:
        size = window_size((h, w), aspect)
        row: dict[str, float] = {"centre": _share(points, centre_window((h, w), size))}
        for label, sal in maps.items():
            row[f"salience: {label}"] = _share(points, best_windows(sal, size)[0])
            if "+prior" not in label:
                row[f"arg-max-centred: {label}"] = _share(points, _argmax_window(sal, size))
        row["upper bound: fixation density"] = _share(points, best_windows(oracle, size)[0])
        if sc is not None:
            r = sc.crop(pil, size[1], size[0], min_scale=1.0)["top_crop"]
            win = type(centre_window((h, w), size))(r["x"], r["y"], r["x"] + r["width"], r["y"] + r["height"], 0, 0)
            row["smartcrop.py 0.5.0"] = _share(points, win)
        out[aspect] = row
    return out


def _timing() -> list[str]:
    rng = np.random.default_rng(0)
    sal = cv2.GaussianBlur(rng.random((600, 800)), (0, 0), 8)
    lines = []
    for aspect in ASPECTS:
        size = window_size(sal.shape, aspect)
        best_windows(sal, size)
        runs = []
        for _ in range(200):
            t = time.perf_counter()
            best_windows(sal, size)
            runs.append(time.perf_counter() - t)
        fast = float(np.median(runs))
        # direct: sum the window at every position
        wh, ww = size
        t = time.perf_counter()
        scores = [sal[y:y + wh, x:x + ww].sum() for y in range(sal.shape[0] - wh + 1) for x in range(sal.shape[1] - ww + 1)]
        direct = time.perf_counter() - t
        del scores
        lines.append(f"| {aspect} | {ww} x {wh} | {fast * 1e3:.2f} ms | {direct * 1e3:.1f} ms | {direct / fast:.0f}x |")
    return lines


def _table(results: list[dict], names: list[str]) -> list[str]:
    lines = []
    for aspect in ASPECTS:
        labels = list(results[0][aspect])
        lines += [f"\n**{aspect}** ({len(results)} images; mean % of fixations inside, 95% CI; paired difference "
                  "to the centre crop)\n", "| crop | fixations inside | vs centre crop |", "|---|---|---|"]
        base = np.array([r[aspect]["centre"] for r in results])
        rows = []
        for lab in labels:
            v = np.array([r[aspect][lab] for r in results])
            m, lo, hi = ci95(v)
            dm, dlo, dhi = ci95(v - base)
            rows.append((m, f"| {lab} | {100 * m:.1f} ± {100 * (hi - lo) / 2:.1f} | "
                            f"{100 * dm:+.1f} ± {100 * (dhi - dlo) / 2:.1f} |"))
        lines += [r for _, r in sorted(rows, key=lambda t: -t[0])]
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--stride", type=int, default=1, help="every Nth image by name (default 1: all)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--json", default=None, help="write the per-image shares here")
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument("--methods", default=",".join(METHODS), help="bottom-up methods (default: %(default)s)")
    a = ap.parse_args()
    METHODS[:] = [m.strip() for m in a.methods.split(",") if m.strip()]
    ds = load_osie(a.data_dir)
    if a.stride > 1:
        ds = ds.subset(names=ds.names[::a.stride])
    if a.limit:
        ds = ds.subset(limit=a.limit)
    tasks = [(str(it.image_path), it.points(), None) for it in ds]
    t0 = time.perf_counter()
    results = []
    with ProcessPoolExecutor(max(1, a.jobs), initializer=_set_methods, initargs=(list(METHODS),)) as ex:
        for i, r in enumerate(ex.map(_one, tasks, chunksize=2)):
            results.append(r)
            if (i + 1) % 25 == 0:
                print(f"  {i + 1}/{len(tasks)} images, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    names = ds.names
    if a.json:
        Path(a.json).write_text(json.dumps({"names": names, "results": results}))
    print(f"# Smart crop on OSIE: {len(results)} images, {time.perf_counter() - t0:.0f} s")
    print("\n".join(_table(results, names)))
    half = len(results) // 2
    if half >= 10:
        sel, test = results[:half], results[half:]
        cands = [k for k in sel[0]["1:1"] if k.startswith("salience: ")]
        mean_sel = {k: np.mean([np.mean([r[a_][k] for r in sel]) for a_ in ASPECTS]) for k in cands}
        best = max(mean_sel, key=mean_sel.get)
        print(f"\nselection half ({half} images): best salience crop over the three aspects = {best} "
              f"({100 * mean_sel[best]:.1f}% mean)")
        print(f"test half ({len(test)} images):")
        print("\n".join(_table(test, names[half:])))
    if not a.no_timing:
        print("\n| aspect | window | salience window search (median of 200) | every position summed directly | ratio |")
        print("|---|---|---|---|---|")
        print("\n".join(_timing()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
