"""Speed of the bottom-up models against OpenCV-contrib peers measured in the same run, on one core.

Targets (issue 2): the full Itti-Koch model (42 feature maps, 3 conspicuity maps, the saliency map) on a
640 x 480 photo in at most 8 ms (median), and at least 4x faster than
``cv2.saliency.StaticSaliencyFineGrained_create().computeSaliency`` on the same image.

Every case is one row of ``CASES``: a name, the reference it is compared with, and a factory that gets the
test image and returns the callable to time.  Other bottom-up methods add their rows there.  Rounds
alternate between all cases (each round times every case ``--repeat`` times), so that load from other jobs
on a shared machine hits them alike; the table shows the median over all calls, the spread of the
per-round medians, and ratios against the reference measured in the same rounds.

    python benchmarks/bench_bottomup.py [--repeat 40] [--rounds 7] [--images astronaut,chelsea,coffee]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core for everything (before numpy is imported)

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402


@dataclass(frozen=True)
class Case:
    """One benchmark row: ``make(image_float32_rgb) -> callable`` timed with no arguments."""

    name: str
    make: Callable[[np.ndarray], Callable[[], object]]
    reference: str | None = None  # name of the case this one is compared with (None: it is a reference)
    target: str = ""  # what issue 2 asks, printed next to the result


def _itti_float(img: np.ndarray):
    from salience.bottomup.itti import itti_koch_map

    return lambda: itti_koch_map(img)


def _itti_uint8(img: np.ndarray):
    from salience.bottomup.itti import itti_koch

    u8 = np.floor(img * 255 + 0.5).astype(np.uint8)
    return lambda: itti_koch(u8)


def _itti_intermediates(img: np.ndarray):
    from salience.bottomup.itti import itti_koch

    return lambda: itti_koch(img, return_intermediates=True)


def _opencv_fine_grained(img: np.ndarray):
    bgr = cv2.cvtColor(np.floor(img * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR)  # as cv2.imread gives
    model = cv2.saliency.StaticSaliencyFineGrained_create()
    return lambda: model.computeSaliency(bgr)


FINE = "OpenCV StaticSaliencyFineGrained (uint8 BGR)"

CASES: list[Case] = [
    Case(FINE, _opencv_fine_grained),
    Case("salience itti_koch (float32 RGB, registry path)", _itti_float, FINE,
         "median <= 8 ms and >= 4x faster than FineGrained"),
    Case("salience itti_koch (uint8 RGB, incl. conversion)", _itti_uint8, FINE),
    Case("salience itti_koch (+ 42 feature maps, 3 conspicuity)", _itti_intermediates, FINE),
]


def _photo(name: str, w: int = 640, h: int = 480) -> np.ndarray:
    try:
        from skimage import data

        rgb = getattr(data, name)()
    except (ImportError, AttributeError):  # no scikit-image: a deterministic textured image
        rng = np.random.default_rng(abs(hash(name)) % 2**32)
        rgb = (cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 3) * 255).astype(np.uint8)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    rgb = cv2.resize(rgb[:, :, :3], (w, h), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb, dtype=np.float32) / np.float32(255)


def run(images: list[str], repeat: int, rounds: int, cases: list[Case] = CASES) -> dict:
    """Time every case on every image: ``{image: {case: {"all", "rounds", "cpu"}}}`` in ms.

    ``all``: wall time of every call; ``rounds``: the median of each round; ``cpu``: process CPU time per
    call in each round (less sensitive to other jobs taking the core away, but not to their cache traffic).
    """
    cv2.setNumThreads(1)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    results: dict = {}
    for image in images:
        img = _photo(image)
        fns = {c.name: c.make(img) for c in cases}
        for fn in fns.values():  # warm-up: imports, caches, scratch buffers
            fn()
            fn()
        res = {name: {"all": [], "rounds": [], "cpu": []} for name in fns}
        for r in range(rounds):
            order = list(fns) if r % 2 == 0 else list(reversed(fns))
            for name in order:
                fn = fns[name]
                n = max(3, repeat // 8) if name == FINE else repeat  # the slow reference: fewer calls
                ts = []
                c0 = time.process_time()
                for _ in range(n):
                    t0 = time.perf_counter()
                    fn()
                    ts.append((time.perf_counter() - t0) * 1e3)
                res[name]["cpu"].append((time.process_time() - c0) * 1e3 / n)
                res[name]["all"] += ts
                res[name]["rounds"].append(statistics.median(ts))
        results[image] = res
    return results


def report(results: dict, cases: list[Case] = CASES) -> str:
    lines = []
    by_name = {c.name: c for c in cases}
    for image, res in results.items():
        lines.append(f"\n### {image} (640 x 480)\n")
        lines.append("| case | median ms | round medians (min-max) | CPU ms/call | speed-up vs reference | target |")
        lines.append("|---|---|---|---|---|---|")
        for name, r in res.items():
            med = statistics.median(r["all"])
            lo, hi = min(r["rounds"]), max(r["rounds"])
            case = by_name[name]
            ratio = ""
            if case.reference:
                ref_rounds = res[case.reference]["rounds"]
                per_round = [a / b for a, b in zip(ref_rounds, r["rounds"])]
                ratio = (f"{statistics.median(res[case.reference]['all']) / med:.1f}x "
                         f"(rounds {min(per_round):.1f}-{max(per_round):.1f}x)")
            verdict = ""
            if case.target:
                fast = statistics.median(res[case.reference]["all"]) / med >= 4.0
                verdict = (f"{case.target}: 8 ms {'met' if med <= 8.0 else 'NOT met'} (wall), "
                           f"4x {'met' if fast else 'NOT met'}")
            cpu = statistics.median(r["cpu"])
            lines.append(f"| {name} | {med:.2f} | {lo:.2f}-{hi:.2f} | {cpu:.2f} | {ratio} | {verdict} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=40, help="calls per case per round (default 40)")
    ap.add_argument("--rounds", type=int, default=7, help="alternating rounds (default 7)")
    ap.add_argument("--images", default="astronaut,chelsea,coffee",
                    help="comma-separated scikit-image photos (default astronaut,chelsea,coffee)")
    args = ap.parse_args(argv)
    images = [s.strip() for s in args.images.split(",") if s.strip()]
    results = run(images, args.repeat, args.rounds)
    print(f"# bench_bottomup: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
          f"Python {platform.python_version()}, numpy {np.__version__}, OpenCV {cv2.__version__}, "
          f"cv2 threads {cv2.getNumThreads()}, {args.rounds} rounds x {args.repeat} calls")
    print(report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
