"""Benchmark: the fixation metrics for one method over the OSIE images, against pysaliency.

What is timed (every side in ONE process, run interleaved block by block, so the shared machine's load hits
all of them alike; per image, only the metric calls are timed, not the loading of the map):

* ``pysaliency`` 0.2.22: its counterparts of the eight metrics it has (AUC-Judd with jitter, AUC against
  uniform non-fixations, shuffled AUC against the other-map, NSS, CC, MIT_KLDiv, SIM, information gain),
  called at function level on the same arrays (the model/stimulus machinery is skipped, so its figure is a
  lower bound and the ratios are conservative).  The continuous fixation maps it needs are computed
  *outside* its timing (it has no blur of its own).
* ``salience 8 tuebingen (A)``: ``evaluate(map, binary_fixation_map, fixation_map=continuous,
  other_fixations=other_map, baseline_map=centre_bias, metrics=<those 8>, convention="tuebingen")``: the same
  eight quantities pysaliency computes from exactly the inputs it gets (equal to its values to ~1e-13,
  checked and printed); the continuous map is precomputed for both, everything else is timed.
* ``salience 8 tuebingen (B)``: ``evaluate(map, gt, ...)`` with ``gt = prepare_ground_truth(fixations,
  other_fixations=..., baseline_map=..., convention=...)`` built per image outside the timing (the
  map-independent work: resolving the fixations, the continuous map's statistics, the EMD histogram, the
  baseline's terms), as when several methods are scored on the same images.
* ``salience 8 mit (B)``: the same eight metrics under the MIT benchmark's definitions.
* ``salience 9 mit (B)``: all nine (EMD included), ground truth prepared outside the timing.
* ``salience 9 mit (C)``: all nine from the binary fixation map, the continuous map (MIT blur) and
  every other map-independent step computed inside the timing.

Then the issue's throughput target: all nine metrics (``mit``, ground truth computed inside) for every image
with a process pool of ``--workers`` processes (both cores by default), wall-clock seconds.

Maps (computed before any timing): per image, the luminance of the stimulus (decoded at 1/4 size),
Gaussian-blurred, upsampled to 600 x 800 and mixed with a centre bias; stored as uint8 ``.npy`` files that
all sides read.  Other-fixations for the shuffled AUC: the union of the next 10 images' fixated pixels.
AUC-Judd's jitter: salience caches the noise array of an int seed (it does not depend on the map);
pysaliency draws it for every image, as its ``AUC_Judd`` does.

Run: ``.venv/bin/python benchmarks/bench_metrics.py [--n-images 700] [--peer-images N] [--workers 2]``
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


EIGHT = "auc_judd,auc_borji,sauc,nss,cc,kld,sim,ig"


def run_ours_serial(tasks, folder, gts, base, convention, metrics, inside, cont=None):
    """Wall and CPU seconds of evaluate() in this process (map loading excluded), results."""
    from salience.metrics import evaluate

    wall = cpu = 0.0
    out = {}
    for name, fmap_flat, other_flat in tasks:
        smap = np.load(folder / (name + ".npy")).astype(np.float64) / 255.0
        if inside == "same":  # exactly pysaliency's inputs: maps and the precomputed continuous map
            fmap = np.zeros(H * W, np.uint8)
            fmap[fmap_flat] = 1
            other = np.zeros(H * W, np.uint8)
            other[other_flat] = 1
            args = (fmap.reshape(H, W),)
            kw = dict(fixation_map=cont[name], other_fixations=other.reshape(H, W), baseline_map=base)
        elif inside:
            fmap = np.zeros(H * W, np.uint8)
            fmap[fmap_flat] = 1
            other = np.zeros(H * W, np.uint8)
            other[other_flat] = 1
            args = (fmap.reshape(H, W),)
            kw = dict(other_fixations=other.reshape(H, W), baseline_map=base)
        else:
            args, kw = (gts[name],), {}
        t0 = time.perf_counter()
        c0 = time.process_time()
        # rng: the MIT side seeds 0; the tuebingen side None = pysaliency's random_seed 42 (same jitter)
        rng = 0 if convention == "mit" else None
        r = evaluate(smap, *args, metrics=metrics, convention=convention, rng=rng, nan_policy="propagate", **kw)
        cpu += time.process_time() - c0
        wall += time.perf_counter() - t0
        out[name] = r
    return wall, cpu, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-images", type=int, default=700)
    ap.add_argument("--peer-images", type=int, default=None, help="images for the 1-process comparison (default: all)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--block", type=int, default=25, help="images per interleaved block")
    args = ap.parse_args(argv)
    if not DATA.is_dir():
        print(f"OSIE data not found at {DATA}; set SALIENCE_SHARED_DATA")
        return 1
    from salience.metrics import centre_bias_map, fixation_density_map, fixation_map_from_points, prepare_ground_truth
    from salience.metrics._fast import backend

    items = load_osie(args.n_images)
    tasks = []
    for k, (name, pts) in enumerate(items):
        fmap = fixation_map_from_points(pts, (H, W))
        other = np.zeros((H, W), np.uint8)
        for j in range(1, 11):
            other |= fixation_map_from_points(items[(k + j) % len(items)][1], (H, W))
        tasks.append((name, np.flatnonzero(fmap), np.flatnonzero(other)))
    print(f"{len(tasks)} OSIE images, {sum(t[1].size for t in tasks)} fixated pixels; salience backend: {backend()}; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    base = centre_bias_map((H, W))
    rows = []
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
                peer[0](np.random.rand(10), np.random.rand(100), judd=1)  # numba JIT outside the timing
                peer[0](np.random.rand(10), np.random.rand(100), judd=0)
            except Exception as exc:  # pragma: no cover
                print(f"pysaliency unavailable ({exc!r}); timing salience only")
                peer = None
        n_serial = min(args.peer_images or len(tasks), len(tasks))
        sides = [
            ("salience, the 8 counterparts, tuebingen, same inputs as pysaliency (A)", "tuebingen", EIGHT, "same"),
            ("salience, the 8 counterparts, tuebingen, gt prepared outside (B)", "tuebingen", EIGHT, False),
            ("salience, the same 8 metrics, mit, gt prepared outside (B)", "mit", EIGHT, False),
            ("salience, all 9 metrics (EMD incl.), mit, gt prepared outside (B)", "mit", "all", False),
            ("salience, all 9 metrics (EMD incl.), mit, gt computed inside (C)", "mit", "all", True),
        ]
        acc = {s[0]: [0.0, 0.0] for s in sides}
        acc["peer"] = [0.0, 0.0]
        res_tue, res_peer = {}, {}
        # the first block of every side once untimed: imports, numba cache loading, cached jitter
        first = tasks[:2]
        gts0 = {n: prepare_ground_truth(_fmap(f), other_fixations=_fmap(o), baseline_map=base,
                                        convention=("mit", "tuebingen"))
                for n, f, o in first}
        cont0 = {n: fixation_density_map(_fmap(f).astype(np.float64)) for n, f, _ in first}
        for _label, conv, mets, inside in sides:
            run_ours_serial(first, folder, gts0, base, conv, mets, inside, cont0)
        for b0 in range(0, n_serial, args.block):
            block = tasks[b0 : min(b0 + args.block, n_serial)]
            gts = {n: prepare_ground_truth(_fmap(f), other_fixations=_fmap(o), baseline_map=base,
                                        convention=("mit", "tuebingen")) for n, f, o in block}
            cont = {n: fixation_density_map(_fmap(f).astype(np.float64)) for n, f, _ in block}
            for label, conv, mets, inside in sides:
                wall, cpu, out = run_ours_serial(block, folder, gts, base, conv, mets, inside, cont)
                acc[label][0] += wall
                acc[label][1] += cpu
                if inside == "same":
                    res_tue.update(out)
            if peer:
                wall, cpu, out = run_pysaliency(block, folder, cont, base)
                acc["peer"][0] += wall
                acc["peer"][1] += cpu
                res_peer.update(out)
        for label, *_ in sides:
            rows.append((label, *acc[label], n_serial))
        if peer:
            rows.append(("pysaliency 0.2.22, its 8 metrics, continuous map prepared outside", *acc["peer"], n_serial))
            devs = {k: max(abs(res_tue[n][k] - res_peer[n][k]) / max(1.0, abs(res_peer[n][k])) for n in res_peer)
                    for k in EIGHT.split(",")}
            print(f"max |salience tuebingen - pysaliency| (relative above 1) over {n_serial} images: "
                  + ", ".join(f"{k} {v:.0e}" for k, v in devs.items()))
        # target (1): all nine, ground truth inside, a pool over the cores
        pool = get_context("fork").Pool(args.workers, initializer=_init, initargs=(str(folder), "mit"))
        try:
            pool.map(_ours_one, tasks[: args.workers], chunksize=1)  # warm imports in the workers
            wall_pool, cpu_pool, _ = run_ours_block(pool, tasks)
        finally:
            pool.terminate()
    print()
    print("single process each, same images, interleaved blocks.  (A): the inputs pysaliency gets - maps, binary")
    print("fixation map, other-map, baseline, the precomputed continuous map - everything else timed; (B): plus")
    print("prepare_ground_truth() per image outside the timing (the map-independent work, done once per image")
    print("when several methods are scored); (C): from the binary fixation map alone, the blur timed too.")
    print(f"{'run':78s} {'wall s':>7s} {'ms/img':>7s} {'CPU s':>7s} {'CPU ms/img':>10s}")
    for label, wall, cpu, n in rows:
        print(f"{label:78s} {wall:7.2f} {1000 * wall / n:7.1f} {cpu:7.2f} {1000 * cpu / n:10.1f}")
    if peer:
        pw, pc = rows[-1][1], rows[-1][2]
        print()
        print("speed-up over pysaliency's 8 metrics (its time / ours, same run):")
        for label, wall, cpu, _n in rows[:-1]:
            print(f"  {label:76s} CPU {pc / cpu:5.1f}x  wall {pw / wall:5.1f}x")
    print()
    print(f"all 9 metrics, mit, gt computed inside, {len(tasks)} images, {args.workers} worker processes: "
          f"{wall_pool:.1f} s wall ({1000 * wall_pool / len(tasks):.1f} ms/img), "
          f"{cpu_pool:.1f} s CPU in evaluate() ({1000 * cpu_pool / len(tasks):.1f} ms/img); target <= 60 s")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


def _fmap(flat: np.ndarray) -> np.ndarray:
    m = np.zeros(H * W, np.uint8)
    m[flat] = 1
    return m.reshape(H, W)


if __name__ == "__main__":
    raise SystemExit(main())
