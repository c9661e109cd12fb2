"""Run every benchmark in this folder, one after the other, and print their tables.

Each script prints ratios against its peers measured in the same run; see docs/performance.md for the
latest recorded figures and the machine they ran on.  Arguments after ``--`` are not passed on: run a
script directly to change its settings.

    python benchmarks/run_all.py [--only bottomup,spectral,explain,metrics,video]
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ("bottomup", "spectral", "explain", "metrics", "video", "crop")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(ORDER), help="comma list of benchmarks to run")
    args = ap.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if not (HERE / f"bench_{n}.py").exists()]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(ORDER)}", file=sys.stderr)
        return 2
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"python {platform.python_version()}")
    failed = []
    for name in names:
        print(f"\n=== bench_{name}.py ===", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(HERE / f"bench_{name}.py")])
        print(f"--- bench_{name}.py: exit {rc}, {time.perf_counter() - t0:.0f} s", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
