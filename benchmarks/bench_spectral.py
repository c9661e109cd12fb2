"""Speed of the spectral peers of Itti-Koch, against OpenCV-contrib's spectral residual in the same run.

Target (issue 2): salience's spectral residual within 1.5x of
``cv2.saliency.StaticSaliencySpectralResidual_create().computeSaliency`` on the same 640 x 480 photo, one
core.  Both get the same float32 RGB image in [0, 1] (what ``salience.load_image`` returns; OpenCV also
accepts it) and both return a float32 map at the input's size; OpenCV given the same image as uint8 (what
cv2.imread gives it) is shown too.  Rounds alternate between the
contenders so that a noisy, shared machine slows both alike; the table shows medians.

    python benchmarks/bench_spectral.py [--repeat 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import cv2
import numpy as np


def _photo(w: int = 640, h: int = 480) -> np.ndarray:
    try:
        from skimage.data import astronaut

        rgb = astronaut()
    except ImportError:  # no scikit-image: a deterministic textured image of the same size
        rng = np.random.default_rng(0)
        rgb = (cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 3) * 255).astype(np.uint8)
    return np.ascontiguousarray(cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA), dtype=np.float32) / 255


def _median_us(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=300, help="calls per round (default 300)")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    args = ap.parse_args(argv)

    cv2.setNumThreads(1)
    from salience.bottomup.baselines import centre_bias
    from salience.bottomup.spectral import frequency_tuned, image_signature, spectral_residual

    img = _photo()
    img_u8 = np.floor(img * 255 + 0.5).astype(np.uint8)  # OpenCV's usual input (cv2.imread)
    sr = cv2.saliency.StaticSaliencySpectralResidual_create()
    contenders = {
        "salience spectral_residual": lambda: spectral_residual(img),
        "OpenCV StaticSaliencySpectralResidual": lambda: sr.computeSaliency(img),
        "OpenCV StaticSaliencySpectralResidual u8": lambda: sr.computeSaliency(img_u8),
        "salience image_signature": lambda: image_signature(img),
        "salience frequency_tuned": lambda: frequency_tuned(img),
        "salience centre_bias": lambda: centre_bias(img),
    }
    results: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(args.rounds):
        for name, fn in contenders.items():
            reps = args.repeat if "frequency" not in name else max(20, args.repeat // 10)
            results[name].append(_median_us(fn, reps))

    print(f"# {img.shape[1]} x {img.shape[0]} float32 RGB, 1 thread (cv2.setNumThreads(1)), "
          f"numpy {np.__version__}, OpenCV {cv2.__version__}, {platform.processor() or platform.machine()}")
    print(f"{'method':<40} {'median (us)':>12}  rounds (us)")
    for name, vals in results.items():
        print(f"{name:<40} {statistics.median(vals):>12.0f}  {' '.join(f'{v:.0f}' for v in vals)}")
    ours = statistics.median(results["salience spectral_residual"])
    ref = statistics.median(results["OpenCV StaticSaliencySpectralResidual"])
    ratio = ours / ref
    per_round = [a / b for a, b in zip(results["salience spectral_residual"],
                                       results["OpenCV StaticSaliencySpectralResidual"])]
    print(f"spectral residual / OpenCV: {ratio:.2f}x (per round: {' '.join(f'{r:.2f}' for r in per_round)}); "
          f"target <= 1.5x: {'met' if ratio <= 1.5 else 'NOT met'}")
    u8 = statistics.median(results["OpenCV StaticSaliencySpectralResidual u8"])
    print(f"spectral residual / OpenCV given the uint8 image (its usual input): {ours / u8:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
