"""D-RISE overhead: its time per image over the time of the detector forward passes it makes, in one run.

Target (issue 15): D-RISE at most 1.1x the time of its own forward passes.  The detector is torchvision's
Faster R-CNN MobileNetV3-320-FPN with random weights (``weights=None``; nothing is downloaded; the timing
does not depend on the weights beyond the number of detections), on a 160 x 160 input; D-RISE with
``n`` masks in batches of ``batch_size``; the reference is the same number of batched detector calls on
the same masked images, without anything else.  Rounds alternate the order of the two cases.

    python benchmarks/bench_drise.py [--n 64] [--batch-size 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torchvision.models.detection as D

from salience.drise import drise, random_masks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--size", type=int, default=160)
    a = ap.parse_args()
    torch.manual_seed(0)
    net = D.fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None, box_score_thresh=0.0,
                                                   min_size=a.size, max_size=a.size, num_classes=3).eval()
    x = torch.rand(1, 3, a.size, a.size)
    with torch.no_grad():
        det = net(x)[0]
    box, label = det["boxes"][0], int(det["labels"][0])

    def forwards_only() -> None:
        masks = random_masks(a.n, (a.size, a.size), 16, 0.5, torch.Generator().manual_seed(0))
        with torch.no_grad():
            net(x)
            for s in range(0, a.n, a.batch_size):
                net(x * masks[s:s + a.batch_size, None])

    def run_drise() -> None:
        drise(net, x, box, label, n=a.n, cells=16, batch_size=a.batch_size)

    times: dict[str, list[float]] = {"forwards": [], "drise": []}
    cases = [("forwards", forwards_only), ("drise", run_drise)]
    for r in range(a.rounds):
        for name, fn in (cases if r % 2 == 0 else cases[::-1]):
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    f, d = statistics.median(times["forwards"]), statistics.median(times["drise"])
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    print(f"D-RISE n={a.n} batch={a.batch_size} on {a.size}x{a.size}: {d:.3f} s per image; its forward passes "
          f"alone {f:.3f} s; ratio {d / f:.3f} (median of {a.rounds} rounds)")


if __name__ == "__main__":
    main()
