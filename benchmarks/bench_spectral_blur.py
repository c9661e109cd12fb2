"""The cost of the thread-independent blur of spectral residual / image signature (issue 17, item 15).

The final Gaussian blur of the two spectral methods was two matrix products with the blur operators,
``By @ arr @ Bx.T`` (OpenBLAS; its result depends on the number of BLAS threads); it is now a separable
OpenCV filter (``cv2.sepFilter2D``, zero border; the same sums at any thread count).  Both are timed here
in the same run, alternating, on the working sizes the methods use (64 wide by default, 256 wide, and a
tall image whose working copy is 64 x 744), and the whole of ``spectral_residual`` on a 640 x 480 photo.

    python benchmarks/bench_spectral_blur.py [--repeat 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time

import cv2
import numpy as np


def _matmul_blur(arr: np.ndarray, sigma: float) -> np.ndarray:
    """The former route: the zero-border blur as two matrix products (the operators built once)."""
    ksize = 2 * int(math.ceil(3.0 * sigma)) + 1
    ops = []
    for n in arr.shape:
        eye = np.eye(n, dtype=np.float32)
        ops.append(cv2.GaussianBlur(eye, (1, ksize), sigmaX=1e-3, sigmaY=sigma, borderType=cv2.BORDER_CONSTANT))
    by, bx = ops
    return lambda: (by @ arr @ bx.T).astype(np.float32, copy=False)


def _time(fn, repeat: int) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t) / repeat * 1e6


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    from salience.bottomup.spectral import (  # a benchmark of the private helper
        _gaussian_blur,
        spectral_residual,
    )

    rng = np.random.default_rng(0)
    print(f"# {platform.processor() or platform.machine()}, {cv2.getNumThreads()} OpenCV threads; "
          f"median of {args.rounds} alternating rounds of {args.repeat} calls")
    print(f"{'map (h x w), sigma':<26} {'matmul (us)':>12} {'sepFilter2D (us)':>17} {'ratio new/old':>14}")
    for h, w, sigma in [(48, 64, 8.0), (48, 64, 2.88), (192, 256, 32.0), (744, 64, 8.0)]:
        arr = rng.random((h, w)).astype(np.float32)
        old, new = _matmul_blur(arr, sigma), (lambda a=arr, s=sigma: _gaussian_blur(a, s))
        olds, news = [], []
        for _ in range(args.rounds):
            olds.append(_time(old, args.repeat))
            news.append(_time(new, args.repeat))
        o, n = statistics.median(olds), statistics.median(news)
        print(f"{f'{h} x {w}, {sigma:g}':<26} {o:>12.1f} {n:>17.1f} {n / o:>14.2f}")
    img = cv2.resize(rng.random((60, 80, 3)).astype(np.float32), (640, 480))
    full = [_time(lambda: spectral_residual(img), args.repeat) for _ in range(args.rounds)]
    print(f"spectral_residual, 640 x 480: {statistics.median(full):.0f} us per map (new blur)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
