"""Bottom-up maps are bit-identical at any thread count (OpenCV, BLAS, torch), also with two threads at once.

Each setting runs in a fresh interpreter (BLAS reads its thread count at start-up): one thread everywhere,
against two OpenCV threads, two BLAS threads and two Python threads computing maps at the same time.  The
sizes include a tall image whose working copy (64 x 744) made OpenBLAS split the blur's matrix products
differently with two threads (maps 1-3 float32 ulps apart).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import hashlib, sys, threading
import cv2, numpy as np
import salience
from salience.registry import BOTTOM_UP, method_names
cv2.setNumThreads(int(sys.argv[1]))
rng = np.random.default_rng(0)
base = cv2.GaussianBlur(rng.random((300, 400, 3)).astype(np.float32), (0, 0), 2)
images = [cv2.resize(base, s, interpolation=cv2.INTER_LINEAR) for s in [(129, 1500), (640, 480), (1001, 667)]]
jobs = [(m, i, kw) for m in ("spectral-residual", "image-signature") for i in range(len(images))
        for kw in ({}, {"width": 256})]
# every other bottom-up method, the learned fixation model included (its torch kernels run on one
# intra-op thread, since oneDNN split their sums by the thread count)
jobs += [(m, i, {}) for m in method_names(BOTTOM_UP)
         if m not in ("spectral-residual", "image-signature") for i in (1,)]
out = {}
def work(part):
    for k in part:
        m, i, kw = jobs[k]
        out[k] = hashlib.sha256(np.ascontiguousarray(salience.saliency_map(images[i], m, **kw)).tobytes()).hexdigest()
n_threads = int(sys.argv[2])
parts = [list(range(len(jobs)))[t::n_threads] for t in range(n_threads)]
ths = [threading.Thread(target=work, args=(p,)) for p in parts]
[t.start() for t in ths]
[t.join() for t in ths]
print("\n".join(f"{jobs[k][0]} {jobs[k][1]} {jobs[k][2]} {out[k]}" for k in sorted(out)))
"""


def _hashes(cv_threads: int, blas_threads: int, py_threads: int) -> list[str]:
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(blas_threads), OMP_NUM_THREADS=str(blas_threads),
               MKL_NUM_THREADS=str(blas_threads))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    res = subprocess.run([sys.executable, "-c", SCRIPT, str(cv_threads), str(py_threads)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout.splitlines()


@pytest.mark.slow
def test_bottom_up_maps_do_not_depend_on_threads():
    """One thread everywhere and two OpenCV / BLAS / Python threads at once give byte-identical maps."""
    single = _hashes(1, 1, 1)
    loaded = _hashes(2, 2, 2)
    assert len(single) == len(loaded) > 12
    diff = [a.rsplit(" ", 1)[0] for a, b in zip(single, loaded, strict=True) if a != b]
    assert not diff, f"maps that depend on the thread count: {diff}"
