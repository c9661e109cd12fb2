"""EMD on large images: where the time goes, and our exact solver against POT's network simplex.

Issue 17, item 16: ``salience evaluate`` spent 29 s on EMD for one 3888 x 2592 image.  The MIT ``EMD.m``
shrinks both maps to 1/32 (122 x 81 = 9,882 bins for that image) and solves an exact transportation
problem between the two histograms.  This script times each stage of :func:`salience.metrics.emd` on a
synthetic pair of maps (a blurred fixation map from clustered fixations, and a centre-bias-plus-texture
saliency map) at several image sizes, and solves the *same* integer transportation problem (after
FastEMD's pre-flow, integer rounding and zero-cost dummy node) with POT's exact network simplex,
``ot.emd`` (Flamary et al., JMLR 2021; Bonneel et al. 2011), to check that both give the same optimum
and to compare their times in the same run.

    python benchmarks/bench_emd.py [--sizes 800x600,1920x1280,3888x2592] [--repeat 3]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np


def _maps(w: int, h: int, seed: int = 0):
    from salience.metrics import centre_bias_map, fixation_density_map

    rng = np.random.default_rng(seed)
    centres = rng.uniform([0.2 * w, 0.2 * h], [0.8 * w, 0.8 * h], size=(6, 2))
    pts = np.concatenate([c + rng.normal(0, 0.03 * w, size=(25, 2)) for c in centres])
    pts = np.clip(pts, 0, [w - 1, h - 1])
    gt = fixation_density_map(pts, (h, w))
    tex = rng.random((h // 16 + 1, w // 16 + 1))
    import cv2

    smap = 0.6 * centre_bias_map((h, w)) + 0.4 * cv2.resize(tex, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(smap, 0, None), gt


def _problem(smap: np.ndarray, gt: np.ndarray):
    """The stages of metrics.emd up to the integer problem, timed: returns (supply, demand, cost, scale, t)."""
    from salience.metrics._emd import _MULT, grid_distance_block, ground_distance
    from salience.metrics._resize import imresize_bicubic

    t = {}
    t0 = time.perf_counter()
    im1 = imresize_bicubic(gt, 1.0 / 32)  # EMD.m: imresize(G, 1/32), then imresize(S, size(im1))
    im1 = im1 / im1.sum()
    im2 = imresize_bicubic(smap, im1.shape)
    im2 = im2 / im2.sum()
    t["downsize"] = time.perf_counter() - t0
    p, q = im1.ravel(order="F"), im2.ravel(order="F")
    pp, qq = np.where(p < q, 0.0, p - q), np.where(p < q, q - p, 0.0)
    rows, cols = im1.shape
    pq_norm, c_norm = _MULT / max(p.sum(), q.sum()), _MULT / np.sqrt(float((rows - 1) ** 2 + (cols - 1) ** 2))
    ip, iq = np.floor(pp * pq_norm + 0.5).astype(np.int64), np.floor(qq * pq_norm + 0.5).astype(np.int64)
    src, snk = np.nonzero(ip > 0)[0], np.nonzero(iq > 0)[0]
    t0 = time.perf_counter()
    full = ground_distance(rows, cols)[np.ix_(src, snk)]
    t["distances: full matrix (former)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    block = grid_distance_block(rows, cols, src, snk)
    t["distances: block (now)"] = time.perf_counter() - t0
    assert np.array_equal(full, block)  # the same floats: one formula on the same doubles
    t0 = time.perf_counter()
    cost = np.floor(block * c_norm + 0.5).astype(np.int64)
    supply, demand = ip[src], iq[snk]
    diff = int(supply.sum() - demand.sum())
    if diff > 0:
        demand, cost = np.append(demand, diff), np.hstack([cost, np.zeros((cost.shape[0], 1), np.int64)])
    elif diff < 0:
        supply, cost = np.append(supply, -diff), np.vstack([cost, np.zeros((1, cost.shape[1]), np.int64)])
    t["integer problem"] = time.perf_counter() - t0
    return supply, demand, cost, pq_norm * c_norm, t, im1.shape


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="800x600,1920x1280,3888x2592")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-pot", action="store_true", help="skip POT (the stages and our solver only)")
    args = ap.parse_args(argv)
    import ot

    from salience.metrics import emd
    from salience.metrics._emd import transport_cost

    print(f"# {platform.machine()}, numpy {np.__version__}, POT {ot.__version__}; medians of {args.repeat}")
    for spec in args.sizes.split(","):
        w, h = map(int, spec.split("x"))
        smap, gt = _maps(w, h)
        supply, demand, cost, scale, stages, shape = _problem(smap, gt)
        transport_cost(supply, demand, cost)  # compile (or load) the numba solver outside the timing
        ours, theirs, t_ours, t_pot = None, None, [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            ours = transport_cost(supply, demand, cost)
            t_ours.append(time.perf_counter() - t0)
            if args.no_pot:
                continue
            t0 = time.perf_counter()
            plan = ot.emd(supply.astype(np.float64), demand.astype(np.float64), cost.astype(np.float64),
                          numItermax=100_000_000)
            theirs = float(np.sum(plan * cost))
            t_pot.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        full = emd(smap, gt)
        t_full = time.perf_counter() - t0
        so, sp = statistics.median(t_ours), (statistics.median(t_pot) if t_pot else float("nan"))
        print(f"\n{w} x {h}: {shape[0]} x {shape[1]} = {shape[0] * shape[1]} bins, problem "
              f"{cost.shape[0]} x {cost.shape[1]}")
        for k, v in stages.items():
            print(f"  {k:<32} {v * 1e3:10.1f} ms")
        print(f"  {'solve: salience':<32} {so * 1e3:10.1f} ms  optimum {ours:.0f}")
        print(f"  {'solve: POT ot.emd':<32} {sp * 1e3:10.1f} ms  optimum {theirs:.0f}  "
              f"(same optimum: {theirs is not None and abs(ours - theirs) <= 0.5}; POT / salience time: {sp / so:.2f}x)")
        print(f"  metrics.emd end to end: {t_full * 1e3:.0f} ms (EMD = {full:.6f}; {ours / scale:.6f} from the parts)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
