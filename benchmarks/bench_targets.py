"""Issue 15's methods, each timed as a multiple of one forward pass of the model it explains, in one run.

* torchvision ``vit_b_16`` (random weights: nothing is downloaded; the time does not depend on the weights)
  at 224 x 224: a forward pass, ``attention-rollout``, ``attention-relevance``, ``transformer-attribution`` and
  Grad-CAM on the tokens;
* torchvision ``swin_t`` (random weights) at 224 x 224: a forward pass, ``attention-rollout``,
  ``attention-relevance`` and ``transformer-attribution`` over its shifted windows, and Grad-CAM;
* the default MobileNetV2 (bundled weights) at 224 x 224: a forward pass, Grad-CAM, ``gscorecam`` (its
  default top-k channels) and Grad-CAM of a ConSE text prompt's score when the MiniLM encoder is installed.

Rounds alternate the order of the cases (rotated each round); times are medians, ratios per round to the
model's forward pass, their median and range.  D-RISE has its own benchmark (``bench_drise.py``).

    python benchmarks/bench_targets.py [--rounds 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch


def _rounds(cases: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    for fn in cases.values():
        fn()  # warm-up: first calls build caches and lazy imports
    times: dict[str, list[float]] = {k: [] for k in cases}
    names = list(cases)
    for r in range(rounds):
        for k in names[r % len(names):] + names[:r % len(names)]:
            t = time.perf_counter()
            cases[k]()
            times[k].append(time.perf_counter() - t)
    return times


def _report(title: str, times: dict[str, list[float]], base: str) -> None:
    print(f"\n{title}")
    print("| case | median ms | x forward pass (median of rounds, range) |\n|---|---|---|")
    for k, v in times.items():
        r = sorted(a / b for a, b in zip(v, times[base]))
        print(f"| {k} | {1e3 * statistics.median(v):.1f} | {statistics.median(r):.2f}x ({r[0]:.2f}-{r[-1]:.2f}) |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    import torchvision

    import salience

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; {a.rounds} alternating rounds")
    torch.manual_seed(0)
    vit = torchvision.models.vit_b_16().eval()
    torch.nn.init.normal_(vit.heads.head.weight, std=0.02)  # torchvision zeroes the head: no gradient at all
    x = torch.rand(1, 3, 224, 224)

    def cases(net: torch.nn.Module, suffix: str, cam: str) -> dict[str, Callable[[], object]]:
        def forward() -> None:
            with torch.no_grad():
                net(x)

        out: dict[str, Callable[[], object]] = {"forward (no grad)": forward}
        for m in ("attention-rollout", "attention-relevance", "transformer-attribution"):
            out[m + suffix] = lambda m=m: salience.explain(net, x, m)
        out[cam] = lambda: salience.explain(net, x, "gradcam")
        return out

    t = _rounds(cases(vit, "", "gradcam (tokens)"), a.rounds)
    _report("torchvision vit_b_16, random weights, 1 x 3 x 224 x 224, CPU", t, "forward (no grad)")

    torch.manual_seed(0)
    swin = torchvision.models.swin_t().eval()
    t = _rounds(cases(swin, " (windows)", "gradcam"), a.rounds)
    _report("torchvision swin_t, random weights, 1 x 3 x 224 x 224, CPU", t, "forward (no grad)")

    lm = salience.load_model()
    xm = torch.rand(1, 3, 224, 224)

    def mnv2_forward() -> None:
        with torch.no_grad():
            lm.model(xm)

    cases: dict[str, Callable[[], object]] = {
        "forward (no grad)": mnv2_forward,
        "gradcam": lambda: salience.explain(lm, xm, "gradcam"),
        "gscorecam": lambda: salience.explain(lm, xm, "gscorecam"),
    }
    try:
        from salience.targets import prompt

        tgt = prompt("a cup of coffee", class_names=lm.class_names)
        cases["gradcam of a text prompt (ConSE, MiniLM)"] = lambda: salience.explain(lm, xm, "gradcam", target=tgt)
    except Exception as exc:  # the sentence encoder is optional
        print(f"(text prompt left out: {exc})")
    t = _rounds(cases, a.rounds)
    _report("MobileNetV2 (bundled weights), 1 x 3 x 224 x 224, CPU", t, "forward (no grad)")
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
