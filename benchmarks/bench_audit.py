"""Benchmark of `salience audit-dataset` (issue 16): the audit's time as a multiple of the explanations alone.

Over the first N OSIE images (default 700, at their 800 x 600 size), Grad-CAM on the default model
(MobileNetV2), measured in one run, each stage into a fresh folder:

1. the explanations alone: ``salience.batch.run(images, "gradcam")`` (load, explain in batches, write the
   map and the manifest): what the audit runs first;
2. the audit: ``audit_dataset(images, "gradcam")`` into another fresh folder (the same batch run, then the
   analysis: the maps read back, per-class statistics, SpRAy per class, the tables, the HTML report);
3. the same audit again: the batch run finds everything done, so this is the analysis alone on top.

The target of issue 16: audit / explanations <= 1.2.  Also printed: the audit's analysis share (its own
stage times) and the explanations' images per second.

    python benchmarks/bench_audit.py [--n 700] [--device cpu|cuda|auto] [--batch-size 8] [--keep DIR]

Prints the machine (CPU count, load average, device) with the figures.  The data are /work/shared/data/osie
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import salience.batch  # noqa: E402
from salience.audit.dataset import audit_dataset  # noqa: E402


def _images(n: int) -> list[str]:
    root = Path(os.environ.get("SALIENCE_SHARED_DATA") or REPO / ".." / "shared" / "data").resolve()
    d = root / "osie" / "stimuli"
    if not d.is_dir():
        sys.exit(f"no OSIE stimuli at {d}; set SALIENCE_SHARED_DATA")
    files = sorted(str(p) for p in d.glob("*.jpg"))[:n]
    if len(files) < n:
        print(f"only {len(files)} OSIE images", file=sys.stderr)
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=700, help="OSIE images (default 700)")
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--keep", default=None, metavar="DIR", help="keep the outputs in DIR (default: a temporary folder)")
    args = ap.parse_args(argv)

    import torch

    files = _images(args.n)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-audit-"))
    work.mkdir(parents=True, exist_ok=True)
    for d in ("explain-only", "audit"):
        shutil.rmtree(work / d, ignore_errors=True)
    dev = args.device
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
          f"torch threads {torch.get_num_threads()}, device {dev}"
          + (f" ({torch.cuda.get_device_name(0)})" if dev.startswith("cuda") else ""))
    # warm-up (imports, weights read once from disk) so neither timed stage pays it alone
    salience.batch.run(files[:2], "gradcam", out=work / "warm", device=dev, batch_size=args.batch_size)
    shutil.rmtree(work / "warm", ignore_errors=True)

    t = time.perf_counter()
    s = salience.batch.RunSummary()
    salience.batch.run(files, "gradcam", out=work / "explain-only", device=dev, batch_size=args.batch_size, summary=s)
    t_explain = time.perf_counter() - t
    t = time.perf_counter()
    a = audit_dataset(files, "gradcam", work / "audit", device=dev, batch_size=args.batch_size)
    t_audit = time.perf_counter() - t
    t = time.perf_counter()
    b = audit_dataset(files, "gradcam", work / "audit", device=dev, batch_size=args.batch_size)
    t_again = time.perf_counter() - t
    assert b.batch["gradcam"]["done"] == 0, "the second audit recomputed maps"
    n_ok = sum(r["status"] == "ok" for r in a.tables["images"])
    n_cls = len(a.tables["classes"])
    n_spray = len(a.spray)
    print(f"images: {len(files)} ({n_ok} ok), predicted classes: {n_cls}, classes with SpRAy: {n_spray}")
    print(f"explanations alone (batch run): {t_explain:.1f} s ({len(files) / t_explain:.2f} images/s)")
    print(f"audit (batch run + analysis + report): {t_audit:.1f} s; its stages: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in a.seconds.items()))
    print(f"audit again (maps done; analysis + report only): {t_again:.1f} s")
    print(f"ratio audit / explanations alone: {t_audit / t_explain:.3f} (target <= 1.2)")
    print(f"ratio (explanations alone + analysis alone) / explanations alone: {(t_explain + t_again) / t_explain:.3f}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
