"""How far each method's map moves between torch thread counts (1 against 2), on one image.

    python benchmarks/thread_dependence.py                       # every bottom-up and explanation method
    python benchmarks/thread_dependence.py --only gradcam,lrp-epsilon

Bottom-up maps are promised bit-identical at any thread count (tests/test_threads_determinism.py);
explanation maps only at a fixed count.  Prints, per method, the largest difference as a share of the
map's largest value (0 = bit-identical).  The model is the default MobileNetV2, the image a seeded random
224 x 224 one, the target class 3.  docs/reliability.md records the figures.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=None, help="comma-separated method names")
    args = ap.parse_args()

    import torch

    import salience
    from salience.registry import BOTTOM_UP, get_method, method_names

    names = args.only.split(",") if args.only else method_names()
    model = salience.load_model()
    image = np.random.default_rng(0).random((224, 224, 3), dtype=np.float32)
    x = model.preprocess(image)
    for name in names:
        maps = []
        try:
            for n in (1, 2):
                torch.set_num_threads(n)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if get_method(name).kind == BOTTOM_UP:
                        maps.append(np.asarray(salience.saliency_map(image, name), np.float64))
                    else:
                        e = salience.explain(model, x, name, target=3)
                        maps.append(e.maps.detach().double().numpy())
        except Exception as exc:  # a method this model cannot run (a transformer's): say so, go on
            print(f"{name:22s} not run: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}")
            continue
        scale = float(np.abs(maps[0]).max()) or 1.0
        print(f"{name:22s} {float(np.abs(maps[0] - maps[1]).max()) / scale:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
