"""Peak working memory per pixel: decoding a PNG, and decoding it then running each bottom-up method.

Each measurement runs in a fresh process: the high-water mark of the resident set (``ru_maxrss``) after the
step, minus the mark before it, divided by the image's pixels (a warm-up on a 64 x 96 image happens before
the first mark, so imports and JIT compilation are not counted).  These figures back the constants that
:mod:`salience.limits` checks against the available memory before any allocation.

    PYTHONPATH=src python benchmarks/memory_per_pixel.py [--megapixels 4]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import io, json, resource, sys
import numpy as np
from PIL import Image
import salience
from salience.registry import BOTTOM_UP, get_method
from salience.io import load_image
kind, mode, mp = sys.argv[1], sys.argv[2], float(sys.argv[3])
import skimage.data
w = int((mp * 1e6 * 1.5) ** 0.5); h = int(mp * 1e6 / w)
photo = Image.fromarray(skimage.data.coffee()).resize((w, h), Image.BILINEAR)
buf = io.BytesIO(); (photo.convert("1") if mode == "1" else photo).save(buf, "PNG"); data = buf.getvalue()
del photo
def rss(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
if kind == "load":
    before = rss(); img = load_image(data); after = rss()
else:
    fn = get_method(kind).load(); fn(np.random.default_rng(0).random((64, 96, 3), np.float32))  # warm-up
    before = rss(); fn(load_image(data)); after = rss()
print(json.dumps({"step": kind, "mode": mode, "pixels": w * h, "bytes_per_pixel": (after - before) / (w * h)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--megapixels", type=float, default=4.0)
    args = ap.parse_args()
    sys.path.insert(0, "src")
    from salience.registry import BOTTOM_UP, method_names

    steps = [("load", "RGB"), ("load", "1")] + [(m, "RGB") for m in method_names(BOTTOM_UP)]
    for kind, mode in steps:
        out = subprocess.run([sys.executable, "-c", CHILD, kind, mode, str(args.megapixels)],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{r['step']:<20s} {r['mode']:<4s} {r['pixels']:>10,d} px  {r['bytes_per_pixel']:7.1f} bytes/pixel")


if __name__ == "__main__":
    main()
