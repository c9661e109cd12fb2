"""Benchmark: all nine fixation metrics for one method over the OSIE images, against pysaliency.

What is timed
-------------
* ``salience``: ``salience.metrics.evaluate(map, binary_fixation_map, metrics="all", convention=...,
  other_fixations=..., baseline_map=centre_bias)`` per image: the continuous ground-truth map is computed
  *inside* the timing (MIT blur of the fixations), EMD included; a process pool over the cores.
* ``pysaliency`` 0.2.22: its counterparts of the eight metrics it has (AUC-Judd with jitter, AUC against
  uniform non-fixations, shuffled AUC against the other-map, NSS, CC, MIT_KLDiv, SIM, information gain),
  called at function level on the same arrays, in one process as the library runs; the continuous maps it
  needs are precomputed *outside* its timing (it has no blur of its own).  Function-level calls skip its
  model/stimulus machinery, so its figure is a lower bound and the ratio is conservative.

Maps (computed before any timing): per image, the luminance of the stimulus (decoded at 1/4 size),
Gaussian-blurred, upsampled to 600 x 800 and mixed with a centre bias; stored as uint8 ``.npy`` files that
both sides read.  Other-fixations for the shuffled AUC: the union of the next 10 images' fixated pixels.

Run: ``.venv/bin/python benchmarks/bench_metrics.py [--n-images 700] [--peer-images 700] [--workers 2]``
"""

from __future__ import annotations

import argparse
import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
import warnings  # noqa: E402
from multiprocessing import get_context  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SALIENCE_SHARED_DATA", ROOT / ".." / "shared" / "data")) / "osie"
H, W = 600, 800


def load_osie(n: int):
    from scipy.io import loadmat

    fx = loadmat(DATA / "fixations.mat", squeeze_me=True, struct_as_record=False)["fixations"]
    items = []
    for entry in list(fx)[:n]:
        xs, ys = [], []
        for subj in np.atleast_1d(entry.subjects):
            xs.append(np.atleast_1d(subj.fix_x).astype(float))
            ys.append(np.atleast_1d(subj.fix_y).astype(float))
        pts = np.stack([np.concatenate(xs) - 1.0, np.concatenate(ys) - 1.0], axis=1)  # 1-based -> 0-based
        items.append((str(entry.img), pts))
    return items


def make_maps(items, folder: Path):
    import cv2
    from PIL import Image
    from scipy.ndimage import gaussian_filter

    from salience.metrics import centre_bias_map

    centre = centre_bias_map((H, W))
    for name, _ in items:
        im = Image.open(DATA / "stimuli" / name)
        im.draft("L", (W // 4, H // 4))
        lum = np.asarray(im.convert("L"), dtype=np.float64)
        lum = gaussian_filter(lum, 5.0)
        big = cv2.resize(lum, (W, H), interpolation=cv2.INTER_LINEAR)
        big = (big - big.min()) / (np.ptp(big) + 1e-9)
        m = 0.5 * big + 0.5 * centre
        np.save(folder / (name + ".npy"), np.floor(255 * m / m.max() + 0.5).astype(np.uint8))


# ------------------------------------------------------------------------------------------ salience

_CTX: dict = {}


def _init(folder, convention):
    warnings.simplefilter("ignore")
    from salience.metrics import centre_bias_map

    _CTX.update(folder=Path(folder), convention=convention, base=centre_bias_map((H, W)))


def _ours_one(task):
    from salience.metrics import evaluate

    name, fmap_flat, other_flat = task
    smap = np.load(_CTX["folder"] / (name + ".npy")).astype(np.float64) / 255.0
    fmap = np.zeros(H * W, np.uint8)
    fmap[fmap_flat] = 1
    other = np.zeros(H * W, np.uint8)
    other[other_flat] = 1
    c0 = time.process_time()
    r = evaluate(
        smap,
        fmap.reshape(H, W),
        metrics="all",
        convention=_CTX["convention"],
        other_fixations=other.reshape(H, W),
        baseline_map=_CTX["base"],
        rng=0,
        nan_policy="propagate",
    )
    return name, r, time.process_time() - c0


def warm_ours():
    from salience.metrics._emd import HAVE_NUMBA

    if HAVE_NUMBA:  # compile (or load the cached) EMD solver before forking the workers
        from salience.metrics import emd

        emd(np.random.default_rng(0).random((64, 64)), np.random.default_rng(1).random((64, 64)))


def run_ours_block(pool, tasks):
    """Wall seconds, summed CPU seconds of evaluate() in the workers, results."""
    t0 = time.perf_counter()
    out = pool.map(_ours_one, tasks, chunksize=4)
    return time.perf_counter() - t0, sum(o[2] for o in out), out


# ---------------------------------------------------------------------------------------- pysaliency


def import_pysaliency():
    np.trapz = np.trapezoid  # removed in NumPy 2.4, pysaliency 0.2.22 still calls it
    try:
        import pkg_resources  # noqa: F401
    except ImportError:  # setuptools >= 81 has no pkg_resources; pysaliency only needs it for data files
        stub = types.ModuleType("pkg_resources")
        stub.resource_string = lambda *a, **k: b""
        stub.resource_listdir = lambda *a, **k: []
        sys.modules["pkg_resources"] = stub
    import pysaliency  # noqa: F401
    from pysaliency.metrics import CC, NSS, SIM, MIT_KLDiv, convert_saliency_map_to_density
    from pysaliency.roc import general_roc

    return general_roc, NSS, CC, SIM, MIT_KLDiv, convert_saliency_map_to_density


def run_pysaliency(tasks, folder, gts, base):
    """Wall seconds and CPU seconds of pysaliency's metric calls (map loading excluded), results."""
    general_roc, NSS, CC, SIM, MIT_KLDiv, density = import_pysaliency()
    log_base = np.log(density(base, minimum_value=0))
    total = 0.0
    cpu = 0.0
    out = {}
    for name, fmap_flat, other_flat in tasks:
        smap = np.load(folder / (name + ".npy")).astype(np.float64) / 255.0
        gt = gts[name]
        t0 = time.perf_counter()
        c0 = time.process_time()
        ys, xs = np.divmod(fmap_flat, W)
        flat = smap.ravel()
        # AUC_Judd(jitter=True): RandomNoiseSaliencyMapModel + nonfixations='unfixated' + thresholds='fixations'
        noisy = (smap + np.random.RandomState(42).randn(H, W) * 1e-7).ravel()
        mask = np.ones(H * W, bool)
        mask[fmap_flat] = False
        judd = general_roc(noisy[fmap_flat], noisy[mask], judd=1)[0]
        uniform = general_roc(flat[fmap_flat], flat, judd=0)[0]
        shuffled = general_roc(flat[fmap_flat], flat[other_flat], judd=0)[0]
        nss = NSS(smap, xs, ys).mean()
        cc = CC(smap, gt)
        kl = MIT_KLDiv(smap, gt)
        sim = SIM(smap, gt)
        ig = np.mean((np.log(density(smap, minimum_value=0))[ys, xs] - log_base[ys, xs]) / np.log(2))
        total += time.perf_counter() - t0
        cpu += time.process_time() - c0
        out[name] = dict(auc_judd=judd, auc_borji=uniform, sauc=shuffled, nss=nss, cc=cc, kld=kl, sim=sim, ig=ig)
    return total, cpu, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-images", type=int, default=700)
    ap.add_argument("--peer-images", type=int, default=None, help="images for pysaliency (default: all)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--block", type=int, default=50, help="images per interleaved block")
    args = ap.parse_args(argv)
    if not DATA.is_dir():
        print(f"OSIE data not found at {DATA}; set SALIENCE_SHARED_DATA")
        return 1
    from salience.metrics import centre_bias_map, fixation_density_map, fixation_map_from_points

    items = load_osie(args.n_images)
    tasks = []
    for k, (name, pts) in enumerate(items):
        fmap = fixation_map_from_points(pts, (H, W))
        other = np.zeros((H, W), np.uint8)
        for j in range(1, 11):
            other |= fixation_map_from_points(items[(k + j) % len(items)][1], (H, W))
        tasks.append((name, np.flatnonzero(fmap), np.flatnonzero(other)))
    print(f"{len(tasks)} OSIE images, {sum(t[1].size for t in tasks)} fixated pixels, {args.workers} worker(s)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        make_maps(items, folder)
        print(f"maps precomputed in {time.perf_counter() - t0:.1f} s (not timed)")
        warm_ours()
        peer = None
        if not args.no_peer:
            try:
                peer = import_pysaliency()
            except Exception as exc:  # pragma: no cover
                print(f"pysaliency unavailable ({exc!r}); timing salience only")
        base = centre_bias_map((H, W))
        n_peer = min(args.peer_images or len(tasks), len(tasks)) if peer else 0
        if peer:
            peer[0](np.random.rand(10), np.random.rand(100), judd=1)  # numba JIT outside the timing
            peer[0](np.random.rand(10), np.random.rand(100), judd=0)
        # The machine is shared: run the sides interleaved, block by block, so that load changes hit both.
        acc = {k: [0.0, 0.0] for k in ("mit", "tuebingen", "peer")}
        res_tue = {}
        res_peer = {}
        pools = {c: get_context("fork").Pool(args.workers, initializer=_init, initargs=(str(folder), c))
                 for c in ("mit", "tuebingen")}
        try:
            for pool in pools.values():
                pool.map(_ours_one, tasks[: args.workers], chunksize=1)  # warm imports in the workers
            for b0 in range(0, len(tasks), args.block):
                block = tasks[b0 : b0 + args.block]
                for conv in ("mit", "tuebingen"):
                    wall, cpu, out = run_ours_block(pools[conv], block)
                    acc[conv][0] += wall
                    acc[conv][1] += cpu
                    if conv == "tuebingen":
                        res_tue.update({o[0]: o[1] for o in out})
                sub = [t for t in block if tasks.index(t) < n_peer]
                if sub:
                    gts = {}
                    for name, fmap_flat, _ in sub:
                        f = np.zeros(H * W)
                        f[fmap_flat] = 1
                        gts[name] = fixation_density_map(f.reshape(H, W))
                    wall, cpu, out = run_pysaliency(sub, folder, gts, base)
                    acc["peer"][0] += wall
                    acc["peer"][1] += cpu
                    res_peer.update(out)
        finally:
            for pool in pools.values():
                pool.terminate()
        rows = [
            (f"salience, all 9 metrics, convention=mit ({args.workers} workers)", *acc["mit"], len(tasks)),
            (f"salience, all 9 metrics, convention=tuebingen ({args.workers} workers)", *acc["tuebingen"], len(tasks)),
        ]
        if res_peer:
            rows.append((f"pysaliency 0.2.22, its 8 metrics (1 process)", *acc["peer"], n_peer))
            keys = ("nss", "cc", "kld", "sim", "auc_borji", "sauc")
            dev = max(abs(res_tue[n][k] - res_peer[n][k]) for n in res_peer for k in keys)
            print(f"max |salience tuebingen - pysaliency| over {n_peer} images ({', '.join(keys)}): {dev:.2e}")
    print()
    print(f"{'run':62s} {'wall s':>8s} {'ms/img':>7s} {'CPU s':>8s} {'CPU ms/img':>10s}")
    for label, wall, cpu, n in rows:
        print(f"{label:62s} {wall:8.2f} {1000 * wall / n:7.1f} {cpu:8.2f} {1000 * cpu / n:10.1f}")
    if len(rows) == 3:
        pw, pc = rows[2][1] / rows[2][3], rows[2][2] / rows[2][3]
        for label, wall, cpu, n in rows[:2]:
            print(f"{label.split(',')[2].strip():40s} speed-up vs pysaliency: wall {pw / (wall / n):.1f}x, "
                  f"CPU {pc / (cpu / n):.1f}x (wall uses {args.workers} workers against 1 process)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
