"""Video speed on one core: the dynamic Itti model per frame, end to end, and the per-frame peers, in one run.

Targets (issue 12), 640 x 480 frames on one core: the dynamic Itti model alone (flicker, motion and the
static channels) at most 8 ms per frame; end to end (decode, dynamic Itti, attention, overlay, encode:
``salience video IN --out OUT.mp4``) at least 60 frames per second.  In the same run: OpenCV's
``MotionSaliencyBinWangApr2014`` (contrib), the static Itti model per frame, and every bottom-up method of
the registry per frame, with ratios against the dynamic model measured in the same rounds.

The clip is made here from a photo that ships with scikit-image (a pan and a zoom over the astronaut,
plus a bright patch moving across), 640 x 480, written once as MJPG .avi (nothing is downloaded).  Rounds
alternate the order of the cases, so load from other jobs on a shared machine hits them alike.

    python benchmarks/bench_video.py [--frames 90] [--rounds 5]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core for everything (before numpy is imported)

import argparse
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

W, H = 640, 480


def make_clip(n: int) -> list[np.ndarray]:
    """``n`` uint8 RGB frames: a pan then a zoom over the astronaut, with a bright patch moving right."""
    try:
        from skimage import data

        photo = data.astronaut()
    except ImportError:  # no scikit-image: a deterministic textured image
        rng = np.random.default_rng(0)
        photo = (cv2.GaussianBlur(rng.random((512, 512, 3)).astype(np.float32), (0, 0), 3) * 255).astype(np.uint8)
    big = cv2.resize(photo, (960, 720), interpolation=cv2.INTER_AREA)
    frames = []
    for k in range(n):
        t = k / max(1, n - 1)
        if t < 0.5:  # pan left to right
            x0, y0, s = int(round(2 * t * (960 - W))), 120, 1.0
        else:  # zoom in around the centre
            s = 1.0 - 0.4 * (2 * t - 1)
            x0, y0 = int(round((960 - W * s) / 2)), int(round((720 - H * s) / 2))
        crop = big[y0:y0 + int(round(H * s)), x0:x0 + int(round(W * s))]
        f = cv2.resize(crop, (W, H), interpolation=cv2.INTER_AREA)
        px = int(40 + t * (W - 120))
        cv2.rectangle(f, (px, 360), (px + 40, 400), (255, 255, 40), -1)
        frames.append(np.ascontiguousarray(f))
    return frames


def write_clip(frames: list[np.ndarray], path: Path, fps: float = 30.0) -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (W, H))
    for f in frames:
        w.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    w.release()
    return path


# ---- cases: each takes the clip and returns per-frame times in ms (first frame of a stateful model excluded)

def _per_frame(fn: Callable[[np.ndarray], object], frames: list, skip_first: bool = False) -> list[float]:
    ts = []
    for i, f in enumerate(frames):
        t0 = time.perf_counter()
        fn(f)
        dt = (time.perf_counter() - t0) * 1e3
        if not (skip_first and i == 0):
            ts.append(dt)
    return ts


def case_dynamic(floats, u8s, clip):
    from salience.video.dynamic import DynamicItti

    return _per_frame(DynamicItti(), floats, skip_first=True)


def case_dynamic_attention(floats, u8s, clip):
    from salience.video.attention import Attention
    from salience.video.dynamic import DynamicItti

    model, att = DynamicItti(), Attention()
    return _per_frame(lambda f: att.update(model(f)), floats, skip_first=True)


def case_static(floats, u8s, clip):
    from salience.bottomup.itti import itti_koch_map

    return _per_frame(itti_koch_map, floats)


def case_binwang(floats, u8s, clip):
    model = cv2.saliency.MotionSaliencyBinWangApr2014_create()
    model.setImagesize(W, H)
    model.init()
    grays = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in u8s]
    return _per_frame(lambda g: model.computeSaliency(g), grays, skip_first=True)


def method_case(name: str):
    def case(floats, u8s, clip):
        from salience.registry import get_method

        fn = get_method(name).load()
        return _per_frame(fn, floats)

    return case


def _end_to_end(method: str):
    def case(floats, u8s, clip):
        import contextlib
        import io

        from salience.cli import main

        with tempfile.TemporaryDirectory() as d, contextlib.redirect_stdout(io.StringIO()):
            t0 = time.perf_counter()
            rc = main(["video", str(clip), "--method", method, "--out", str(Path(d) / "out.mp4"), "-q"])
            dt = (time.perf_counter() - t0) * 1e3
        if rc != 0:
            raise SystemExit(f"salience video failed with exit status {rc}")
        return [dt / len(floats)] * len(floats)  # one figure per run: the mean time per frame

    return case


def case_io_only(floats, u8s, clip):
    """Decode the clip and encode it again (mp4v), nothing else: the floor of any end-to-end figure."""
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        cap = cv2.VideoCapture(str(clip))
        w = cv2.VideoWriter(str(Path(d) / "o.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (W, H))
        n = 0
        while True:
            ok, f = cap.read()
            if not ok:
                break
            w.write(f)
            n += 1
        w.release()
        cap.release()
        dt = (time.perf_counter() - t0) * 1e3
    return [dt / n] * n


DYN = "salience DynamicItti.step (dynamic Itti: I, C, O, flicker, motion)"


def cases() -> dict[str, Callable]:
    from salience.registry import BOTTOM_UP, methods

    out = {
        DYN: case_dynamic,
        "salience DynamicItti + Attention.update": case_dynamic_attention,
        "salience itti_koch_map (static Itti, per frame)": case_static,
        "OpenCV MotionSaliencyBinWangApr2014 (uint8 gray)": case_binwang,
    }
    for m in methods(BOTTOM_UP):
        if m.name != "itti":
            out[f"salience {m.name} (per frame)"] = method_case(m.name)
    out["end to end: salience video (decode, itti-dynamic, attention, overlay, encode mp4v)"] = \
        _end_to_end("itti-dynamic")
    out["end to end: salience video --method itti (static, per frame)"] = _end_to_end("itti")
    out["decode MJPG + encode mp4v only (OpenCV)"] = case_io_only
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=90, help="frames in the clip (default 90)")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    u8s = make_clip(args.frames)
    floats = [f.astype(np.float32) / np.float32(255) for f in u8s]
    table = cases()
    res: dict[str, dict[str, list]] = {k: {"all": [], "rounds": [], "cpu": []} for k in table}
    with tempfile.TemporaryDirectory() as d:
        clip = write_clip(u8s, Path(d) / "clip.avi")
        for fn in table.values():  # warm-up: imports, caches
            fn(floats[:3], u8s[:3], clip)
        for r in range(args.rounds):
            order = list(table) if r % 2 == 0 else list(reversed(table))
            for name in order:
                c0 = time.process_time()
                ts = table[name](floats, u8s, clip)
                res[name]["cpu"].append((time.process_time() - c0) * 1e3 / len(floats))
                res[name]["all"] += ts
                res[name]["rounds"].append(statistics.median(ts))
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    print(f"# bench_video: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
          f"load average {load:.2f}, Python {platform.python_version()}, numpy {np.__version__}, "
          f"OpenCV {cv2.__version__}, cv2 threads {cv2.getNumThreads()}; clip {args.frames} frames "
          f"{W} x {H}, {args.rounds} rounds")
    print("\n| case | median ms/frame | round medians | CPU ms/frame | frames/s | time vs dynamic Itti (same rounds) "
          "| target |")
    print("|---|---|---|---|---|---|---|")
    dyn_rounds = res[DYN]["rounds"]
    for name, r in res.items():
        med = statistics.median(r["all"])
        per = [a / b for a, b in zip(r["rounds"], dyn_rounds)]
        ratio = f"{statistics.median(per):.2f}x ({min(per):.2f}-{max(per):.2f})"
        target = ""
        if name == DYN:
            target = f"<= 8 ms: {'met' if med <= 8.0 else 'NOT met'}"
        elif name.startswith("end to end: salience video (decode"):
            target = f">= 60 frames/s: {'met' if 1e3 / med >= 60 else 'NOT met'}"
        cpu = statistics.median(r["cpu"])
        print(f"| {name} | {med:.2f} | {min(r['rounds']):.2f}-{max(r['rounds']):.2f} | {cpu:.2f} | "
              f"{1e3 / med:.0f} | {ratio} | {target} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
