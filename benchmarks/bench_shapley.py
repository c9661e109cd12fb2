"""Shapley and surrogate methods against Captum and against their own model calls, in the same run.

torchvision resnet18 (random init, no download) at ``--size`` (default 224; ``--quick``: 112 and fewer
samples), torch.set_num_threads(2), CPU.  Every contender gets identical inputs: the same image, the
same SLIC feature mask (computed once, handed to both as labels), the same baseline, the same number
of samples and the same batch of model calls per forward pass.  Contenders are timed in alternating
rounds (the order rotated every round, as bench_explain.py) and the table gives medians and the median
of the per-round ratios:

* feature-ablation vs Captum's FeatureAblation, and vs the bound: its own forward passes (M ablated
  images in the same batches);
* kernel-shap and lime vs Captum's KernelShap and Lime (Ridge surrogate), and vs their forward passes;
* gradient-shap vs Captum's GradientShap (10 reference images; all samples in one batch, as Captum
  runs them), and vs its forward+backward passes.

    python benchmarks/bench_shapley.py [--rounds 3] [--quick] [--size 224]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchvision

import salience
from salience.attribution import feature_mask

try:  # run as a script from the repository root or from benchmarks/
    from bench_explain import alternate, loadavg, ratio
except ImportError:  # pragma: no cover
    from benchmarks.bench_explain import alternate, loadavg, ratio


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="112 x 112, 64 coalitions, 8 gradient draws")
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    size = args.size or (112 if args.quick else 224)
    n_coal, n_grad, segs, bs = (64, 8, 16, 16) if args.quick else (256, 16, 50, 32)
    net = torchvision.models.resnet18(weights=None).eval()
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    refs = torch.rand(10, 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1
    target = 7
    R = args.rounds
    load0 = loadavg()
    t0 = time.perf_counter()
    lab = feature_mask(x, "slic", n_segments=segs)
    t_slic = time.perf_counter() - t0
    M = int(lab.max()) + 1
    mask = lab[:, None]
    import captum.attr as ca
    from captum._utils.models.linear_model import SkLearnRidge

    def nosync() -> None:
        pass

    def forwards(n: int, batch: int) -> None:
        with torch.no_grad():
            for s in range(0, n, batch):
                net(x.expand(min(batch, n - s), -1, -1, -1).clone())[:, target].sum()

    def grads(n: int) -> None:
        pts = (refs[torch.arange(n) % 10] + 0.5 * (x - refs[torch.arange(n) % 10])).requires_grad_(True)
        torch.autograd.grad(net(pts)[:, target].sum(), pts)

    rows: list[tuple[str, float, str]] = []
    med = statistics.median

    t = alternate({
        "ours": lambda: salience.explain(net, x, "feature-ablation", target=target, features=lab, batch_size=bs),
        "captum": lambda: ca.FeatureAblation(net).attribute(x, baselines=0.0, target=target, feature_mask=mask,
                                                           perturbations_per_eval=bs),
        "bound": lambda: forwards(M, bs)}, R, nosync)
    rows.append((f"feature-ablation, M={M} (salience)", med(t["ours"]),
                 f"{ratio(t, 'ours', 'bound'):.2f}x its forward passes; {ratio(t, 'captum', 'ours'):.2f}x faster "
                 "than Captum"))
    rows.append(("FeatureAblation (Captum)", med(t["captum"]), ""))

    def captum_kshap() -> None:
        torch.manual_seed(0)
        ca.KernelShap(net).attribute(x, baselines=0.0, target=target, feature_mask=mask, n_samples=n_coal,
                                     perturbations_per_eval=bs)

    t = alternate({
        "ours": lambda: salience.explain(net, x, "kernel-shap", target=target, features=lab, n_samples=n_coal,
                                         batch_size=bs),
        "captum": captum_kshap, "bound": lambda: forwards(n_coal, bs)}, R, nosync)
    rows.append((f"kernel-shap, {n_coal} coalitions (salience)", med(t["ours"]),
                 f"{ratio(t, 'ours', 'bound'):.2f}x its forward passes; {ratio(t, 'captum', 'ours'):.2f}x faster "
                 "than Captum"))
    rows.append(("KernelShap (Captum)", med(t["captum"]), ""))

    def captum_lime() -> None:
        torch.manual_seed(0)
        ca.Lime(net, interpretable_model=SkLearnRidge(alpha=1.0)).attribute(
            x, baselines=0.0, target=target, feature_mask=mask, n_samples=n_coal, perturbations_per_eval=bs)

    t = alternate({
        "ours": lambda: salience.explain(net, x, "lime", target=target, features=lab, n_samples=n_coal,
                                         batch_size=bs),
        "captum": captum_lime, "bound": lambda: forwards(n_coal - 1, bs)}, R, nosync)
    rows.append((f"lime, {n_coal} coalitions (salience)", med(t["ours"]),
                 f"{ratio(t, 'ours', 'bound'):.2f}x its forward passes; {ratio(t, 'captum', 'ours'):.2f}x faster "
                 "than Captum"))
    rows.append(("Lime, Ridge surrogate (Captum)", med(t["captum"]), ""))

    def captum_gshap() -> None:
        torch.manual_seed(0)
        ca.GradientShap(net).attribute(x, baselines=refs, target=target, n_samples=n_grad, stdevs=0.0)

    t = alternate({
        "ours": lambda: salience.explain(net, x, "gradient-shap", target=target, baselines=refs,
                                         n_samples=n_grad, batch_size=n_grad),
        "captum": captum_gshap, "bound": lambda: grads(n_grad)}, R, nosync)
    rows.append((f"gradient-shap, {n_grad} draws (salience)", med(t["ours"]),
                 f"{ratio(t, 'ours', 'bound'):.2f}x its forward+backward passes; "
                 f"{ratio(t, 'captum', 'ours'):.2f}x faster than Captum"))
    rows.append(("GradientShap (Captum)", med(t["captum"]), ""))

    print(f"resnet18 (random init) at {size}x{size}, CPU, {args.threads} threads, {R} rounds; SLIC ({M} "
          f"superpixels) {t_slic * 1000:.0f} ms, outside the timings; load average before {load0}, after "
          f"{loadavg()}")
    print(f"{'what':48s} {'median s':>9s}  notes")
    for name, sec, note in rows:
        print(f"{name:48s} {sec:9.3f}  {note}")


if __name__ == "__main__":
    main()
