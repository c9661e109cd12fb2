"""Explanation speed against lower bounds and peers, measured in the same run.

torchvision resnet50 (random init, no download) at 224 x 224, torch.set_num_threads(2), CPU by default.
Prints per-method medians and ratios:

* Grad-CAM vs the lower bound (one forward pass + the gradient down to layer4 only) and vs
  pytorch-grad-cam's GradCAM;
* Guided Backpropagation vs Captum's GuidedBackprop;
* SmoothGrad (25 samples) and Integrated Gradients (50 steps, Gauss-Legendre) vs Captum's NoiseTunnel /
  IntegratedGradients with the same settings and internal batch size;
* Score-CAM and RISE vs the time of their own forward passes (the same number of masked images).

    python benchmarks/bench_explain.py [--repeats 5] [--quick] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchvision

import salience
from salience.explain import gradients, perturbation


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="skip the slow peers (Score-CAM / RISE full size)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    net = torchvision.models.resnet50(weights=None).eval().to(dev)
    x = torch.rand(1, 3, 224, 224, device=dev)
    layer = net.layer4
    target = 7
    rows: list[tuple[str, float, str]] = []
    R = args.repeats

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    # ---- lower bound: forward + gradient to layer4 only ------------------------------------------------
    def lower_bound():
        flags = [p.requires_grad for p in net.parameters()]
        for p in net.parameters():
            p.requires_grad_(False)
        try:
            with torch.no_grad():
                h = net.layer3(net.layer2(net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(x)))))))
            a = net.layer4(h).detach().requires_grad_(True)
            s = net.fc(torch.flatten(net.avgpool(a), 1))[:, target].sum()
            torch.autograd.grad(s, a)
        finally:
            for p, f in zip(net.parameters(), flags):
                p.requires_grad_(f)
        sync()

    def forward_only():
        with torch.no_grad():
            net(x)
        sync()

    t_lb = median_time(lower_bound, R)
    t_fw = median_time(forward_only, R)
    rows.append(("forward pass", t_fw, ""))
    rows.append(("lower bound (forward + grad to layer4)", t_lb, ""))

    # ---- Grad-CAM ------------------------------------------------------------------------------------
    def ours_gradcam():
        salience.explain(net, x, "gradcam", target=target, layer="layer4")
        sync()

    t_gc = median_time(ours_gradcam, R)
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    def pgc_gradcam():
        with GradCAM(model=net, target_layers=[net.layer4]) as cam:
            cam(input_tensor=x, targets=[ClassifierOutputTarget(target)])
        sync()

    t_pgc = median_time(pgc_gradcam, R)
    rows.append(("gradcam (salience)", t_gc, f"{t_gc / t_lb:.2f}x lower bound; {t_pgc / t_gc:.2f}x faster than pytorch-grad-cam"))
    rows.append(("GradCAM (pytorch-grad-cam)", t_pgc, f"{t_pgc / t_fw:.2f}x a forward pass"))

    # ---- Guided backprop --------------------------------------------------------------------------------
    import captum.attr as ca

    def ours_gbp():
        salience.explain(net, x, "guided-backprop", target=target)
        sync()

    def captum_gbp():
        ca.GuidedBackprop(net).attribute(x, target=target)
        sync()

    t_g, t_cg = median_time(ours_gbp, R), median_time(captum_gbp, R)
    rows.append(("guided-backprop (salience)", t_g, f"{t_g / t_cg:.2f}x Captum"))
    rows.append(("GuidedBackprop (Captum)", t_cg, ""))

    # ---- SmoothGrad 25, IG 50 ---------------------------------------------------------------------------
    bs = 8
    R2 = max(1, R // 2)

    def ours_sg():
        gradients.smoothgrad(net, x, target=target, n=25, stdev=0.15, batch_size=bs)
        sync()

    def captum_sg():
        ca.NoiseTunnel(ca.Saliency(net)).attribute(x, target=target, nt_type="smoothgrad", nt_samples=25,
                                                    nt_samples_batch_size=bs, stdevs=0.15, abs=False)
        sync()

    t_s, t_cs = median_time(ours_sg, R2), median_time(captum_sg, R2)
    rows.append(("smoothgrad n=25 (salience)", t_s, f"{t_s / t_cs:.2f}x Captum"))
    rows.append(("NoiseTunnel(Saliency) n=25 (Captum)", t_cs, ""))

    def ours_ig():
        gradients.integrated_gradients(net, x, target=target, steps=50, batch_size=bs,
                                       quadrature="gauss-legendre")
        sync()

    def captum_ig():
        ca.IntegratedGradients(net).attribute(x, target=target, n_steps=50, method="gausslegendre",
                                              internal_batch_size=bs)
        sync()

    t_i, t_ci = median_time(ours_ig, R2), median_time(captum_ig, R2)
    rows.append(("integrated-gradients steps=50 (salience)", t_i, f"{t_i / t_ci:.2f}x Captum"))
    rows.append(("IntegratedGradients n_steps=50 (Captum)", t_ci, ""))

    # ---- Score-CAM and RISE vs their own forward passes ------------------------------------------------
    n_rise = 128 if args.quick else 1000
    bsz = 32

    def fwd_batches(n: int):
        xb = x.expand(bsz, -1, -1, -1).contiguous()
        with torch.no_grad():
            for s in range(0, n, bsz):
                net(xb[: min(bsz, n - s)])
        sync()

    def ours_rise():
        perturbation.rise(net, x, target=target, n=n_rise, batch_size=bsz)
        sync()

    t_r = median_time(ours_rise, 1)
    t_rf = median_time(lambda: fwd_batches(n_rise + 1), 1)
    rows.append((f"rise n={n_rise} (salience)", t_r, f"{t_r / t_rf:.2f}x its {n_rise + 1} forward passes"))
    if not args.quick:
        def ours_scorecam():
            salience.explain(net, x, "scorecam", target=target, layer="layer4", batch_size=bsz)
            sync()

        t_sc = median_time(ours_scorecam, 1)
        t_scf = median_time(lambda: fwd_batches(2048 + 1), 1)
        rows.append(("scorecam 2048 channels (salience)", t_sc, f"{t_sc / t_scf:.2f}x its 2049 forward passes"))

    width = max(len(r[0]) for r in rows)
    print(f"resnet50 random init, 1 x 3 x 224 x 224, device {args.device}, {args.threads} threads, "
          f"median of {R} (SmoothGrad/IG {R2}; Score-CAM/RISE 1)")
    for name, t, note in rows:
        print(f"{name:<{width}}  {t * 1000:9.1f} ms  {note}")


if __name__ == "__main__":
    main()
