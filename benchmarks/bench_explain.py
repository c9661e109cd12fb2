"""Explanation speed against lower bounds and peers, measured in the same run.

torchvision resnet50 (random init, no download) at 224 x 224, torch.set_num_threads(2), CPU by default.
Contenders are timed in alternating rounds (A B A B ..., the order rotated every round) so that load from
other jobs on a shared machine hits both alike; the table gives medians and the median of the
per-round ratios, and the load average before and after.

* Grad-CAM vs the lower bound (one forward pass + the gradient down to layer4 only) and vs
  pytorch-grad-cam's GradCAM;
* Guided Backpropagation vs Captum's GuidedBackprop;
* SmoothGrad (25 samples) and Integrated Gradients (50 steps, Gauss-Legendre) vs Captum's NoiseTunnel /
  IntegratedGradients with the same settings and internal batch size (8), and the opt-in channels-last
  layout (``channels_last=True``) vs the default;
* LRP-epsilon vs the plain input gradient on resnet50, and vs Captum's LRP (EpsilonRule) on
  torchvision vgg11 (random init, 224 x 224; Captum's LRP refuses ResNets: their ReLU modules are
  called more than once);
* Score-CAM and RISE vs the time of their own forward passes (the same number of masked images, in the
  same batches).  Score-CAM uses ``--scorecam-layer`` (layer4: 2048 channels = 2049 forward passes;
  ``--quick`` uses layer2, 512 channels).

    python benchmarks/bench_explain.py [--rounds 5] [--quick] [--device cpu] [--only ig,scorecam]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torchvision

import salience
from salience.attribution import gradients, perturbation

SECTIONS = ("gradcam", "gbp", "smoothgrad", "ig", "rise", "scorecam", "lrp", "propagation")


def alternate(fns: dict, rounds: int, sync) -> dict[str, list[float]]:
    """Time each callable once per round, rotating the order every round; one untimed warm-up each."""
    for f in fns.values():
        f()
        sync()
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            t0 = time.perf_counter()
            fns[n]()
            sync()
            times[n].append(time.perf_counter() - t0)
    return times


def ratio(times: dict[str, list[float]], a: str, b: str) -> float:
    """Median over rounds of time(a) / time(b) in the same round."""
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


def loadavg() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", "--repeats", type=int, default=5, dest="rounds")
    ap.add_argument("--quick", action="store_true",
                    help="RISE with 128 masks, Score-CAM at layer2 (512 channels), fewer rounds for them")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    ap.add_argument("--scorecam-layer", default=None, help="layer for Score-CAM (default layer4; --quick: layer2)")
    args = ap.parse_args()
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    net = torchvision.models.resnet50(weights=None).eval().to(dev)
    x = torch.rand(1, 3, 224, 224, device=dev)
    layer = net.layer4
    target = 7
    rows: list[tuple[str, float, str]] = []
    R = args.rounds
    load0 = loadavg()

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
            a = layer(h).detach().requires_grad_(True)
            s = net.fc(torch.flatten(net.avgpool(a), 1))[:, target].sum()
            torch.autograd.grad(s, a)
        finally:
            for p, f in zip(net.parameters(), flags):
                p.requires_grad_(f)

    def forward_only():
        with torch.no_grad():
            net(x)

    def med(t: list[float]) -> float:
        return statistics.median(t)

    if "gradcam" in only:
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        def pgc_gradcam():
            with GradCAM(model=net, target_layers=[layer]) as cam:
                cam(input_tensor=x, targets=[ClassifierOutputTarget(target)])

        t = alternate({"fw": forward_only, "lb": lower_bound,
                       "ours": lambda: salience.explain(net, x, "gradcam", target=target, layer="layer4"),
                       "pgc": pgc_gradcam}, R, sync)
        rows.append(("forward pass", med(t["fw"]), ""))
        rows.append(("lower bound (forward + grad to layer4)", med(t["lb"]), ""))
        rows.append(("gradcam (salience)", med(t["ours"]),
                     f"{ratio(t, 'ours', 'lb'):.2f}x lower bound; {ratio(t, 'pgc', 'ours'):.2f}x faster than "
                     "pytorch-grad-cam"))
        rows.append(("GradCAM (pytorch-grad-cam)", med(t["pgc"]), f"{ratio(t, 'pgc', 'fw'):.2f}x a forward pass"))

    import captum.attr as ca

    if "gbp" in only:
        t = alternate({"ours": lambda: salience.explain(net, x, "guided-backprop", target=target),
                       "captum": lambda: ca.GuidedBackprop(net).attribute(x, target=target)}, R, sync)
        rows.append(("guided-backprop (salience)", med(t["ours"]), f"{ratio(t, 'ours', 'captum'):.2f}x Captum"))
        rows.append(("GuidedBackprop (Captum)", med(t["captum"]), ""))

    bs = 8
    if "smoothgrad" in only:
        t = alternate({
            "ours": lambda: gradients.smoothgrad(net, x, target=target, n=25, stdev=0.15, batch_size=bs),
            "ours-cl": lambda: gradients.smoothgrad(net, x, target=target, n=25, stdev=0.15, batch_size=bs,
                                                    channels_last=True),
            "captum": lambda: ca.NoiseTunnel(ca.Saliency(net)).attribute(
                x, target=target, nt_type="smoothgrad", nt_samples=25, nt_samples_batch_size=bs, stdevs=0.15,
                abs=False),
        }, R, sync)
        rows.append(("smoothgrad n=25 (salience)", med(t["ours"]), f"{ratio(t, 'ours', 'captum'):.2f}x Captum"))
        rows.append(("smoothgrad n=25, channels_last=True", med(t["ours-cl"]),
                     f"{ratio(t, 'ours-cl', 'ours'):.2f}x the default layout"))
        rows.append(("NoiseTunnel(Saliency) n=25 (Captum)", med(t["captum"]), ""))

    if "ig" in only:
        t = alternate({
            "ours": lambda: gradients.integrated_gradients(net, x, target=target, steps=50, batch_size=bs,
                                                           quadrature="gauss-legendre"),
            "ours-cl": lambda: gradients.integrated_gradients(net, x, target=target, steps=50, batch_size=bs,
                                                              quadrature="gauss-legendre", channels_last=True),
            "captum": lambda: ca.IntegratedGradients(net).attribute(x, target=target, n_steps=50,
                                                                    method="gausslegendre",
                                                                    internal_batch_size=bs),
        }, R, sync)
        rows.append(("integrated-gradients steps=50 (salience)", med(t["ours"]),
                     f"{ratio(t, 'ours', 'captum'):.3f}x Captum (per-round ratios "
                     + ", ".join(f"{a / b:.3f}" for a, b in zip(t["ours"], t["captum"])) + ")"))
        rows.append(("integrated-gradients steps=50, channels_last=True", med(t["ours-cl"]),
                     f"{ratio(t, 'ours-cl', 'ours'):.3f}x the default layout; {ratio(t, 'ours-cl', 'captum'):.3f}x "
                     "Captum"))
        rows.append(("IntegratedGradients n_steps=50 (Captum)", med(t["captum"]), ""))

    # ---- Score-CAM and RISE vs their own forward passes ------------------------------------------------
    bsz = 32
    R3 = max(1, R // 2) if args.quick else max(1, R // 3)

    def fwd_batches(n: int):
        # the same number of images in the same batches as the method: masked copies of x
        xb = x.expand(bsz, -1, -1, -1).contiguous()
        with torch.no_grad():
            net(x)
            for s in range(0, n, bsz):
                net(xb[: min(bsz, n - s)])

    if "rise" in only:
        n_rise = 128 if args.quick else 1000
        t = alternate({"ours": lambda: perturbation.rise(net, x, target=target, n=n_rise, batch_size=bsz),
                       "fw": lambda: fwd_batches(n_rise)}, R3, sync)
        rows.append((f"rise n={n_rise} (salience)", med(t["ours"]),
                     f"{ratio(t, 'ours', 'fw'):.2f}x its {n_rise + 1} forward passes ({med(t['fw']) * 1000:.0f} ms)"))
    if "scorecam" in only:
        lname = args.scorecam_layer or ("layer2" if args.quick else "layer4")
        seen: dict[str, int] = {}
        hook = dict(net.named_modules())[lname].register_forward_hook(
            lambda m, i, o: seen.update(channels=o.shape[1]))  # returns None: output kept
        forward_only()
        hook.remove()
        K = seen["channels"]
        t = alternate({"ours": lambda: salience.explain(net, x, "scorecam", target=target, layer=lname,
                                                        batch_size=bsz),
                       "fw": lambda: fwd_batches(K)}, R3, sync)
        rows.append((f"scorecam {lname}, {K} channels (salience)", med(t["ours"]),
                     f"{ratio(t, 'ours', 'fw'):.2f}x its {K + 1} forward passes ({med(t['fw']) * 1000:.0f} ms)"))

    if "lrp" in only:
        t = alternate({"grad": lambda: salience.explain(net, x, "gradient", target=target),
                       "ours": lambda: salience.explain(net, x, "lrp-epsilon", target=target)}, R, sync)
        rows.append(("gradient (salience)", med(t["grad"]), ""))
        rows.append(("lrp-epsilon (salience)", med(t["ours"]), f"{ratio(t, 'ours', 'grad'):.2f}x the gradient"))
        vgg = torchvision.models.vgg11(weights=None).eval().to(dev)

        def captum_lrp():
            from captum.attr._utils.lrp_rules import EpsilonRule

            for m in vgg.modules():
                if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                    m.rule = EpsilonRule(epsilon=1e-6)
            ca.LRP(vgg).attribute(x.clone(), target=target)

        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = alternate({"ours": lambda: salience.explain(vgg, x, "lrp-epsilon", target=target),
                           "captum": captum_lrp,
                           "grad": lambda: salience.explain(vgg, x, "gradient", target=target)}, R, sync)
        rows.append(("vgg11 gradient (salience)", med(t["grad"]), ""))
        rows.append(("vgg11 lrp-epsilon (salience)", med(t["ours"]),
                     f"{ratio(t, 'ours', 'grad'):.2f}x the gradient; {ratio(t, 'captum', 'ours'):.2f}x faster than "
                     "Captum"))
        rows.append(("vgg11 LRP EpsilonRule (Captum)", med(t["captum"]), ""))

    if "propagation" in only:  # the other propagation rules (issue 18: at most 1.2x the gradient)
        # DeepLIFT's own passes are one batch of two, the image and its baseline (timed here on a second image:
        # the gradient of a black image is exactly zero on this random network, which salience refuses)
        x2 = torch.cat([x, x.flip(-1)])
        fns = {"grad": lambda: salience.explain(net, x, "gradient", target=target),
               "grad2": lambda: salience.explain(net, x2, "gradient", target=target)}
        rules = ("deconvnet", "deeplift", "lrp-zplus", "lrp-gamma", "lrp-alphabeta", "lrp")
        for name in rules:
            fns[name] = lambda name=name: salience.explain(net, x, name, target=target)
        t = alternate(fns, R, sync)
        rows.append(("gradient (salience)", med(t["grad"]), ""))
        rows.append(("gradient of a batch of 2 (salience)", med(t["grad2"]), "DeepLIFT's own passes"))
        for name in rules:
            base = "grad2" if name == "deeplift" else "grad"
            what = "the batch-of-2 gradient" if name == "deeplift" else "the gradient"
            rows.append((f"{name} (salience)", med(t[name]), f"{ratio(t, name, base):.2f}x {what}"))
        vgg = torchvision.models.vgg11(weights=None).eval().to(dev)  # Captum refuses ResNet's reused ReLUs
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = alternate({"deeplift": lambda: salience.explain(vgg, x, "deeplift", target=target),
                           "captum deeplift": lambda: ca.DeepLift(vgg).attribute(
                               x.clone(), baselines=torch.zeros_like(x), target=target),
                           "deconvnet": lambda: salience.explain(vgg, x, "deconvnet", target=target),
                           "captum deconvnet": lambda: ca.Deconvolution(vgg).attribute(x.clone(), target=target)},
                          R, sync)
        for name in ("deeplift", "deconvnet"):
            rows.append((f"vgg11 {name} (salience)", med(t[name]),
                         f"{ratio(t, 'captum ' + name, name):.2f}x faster than Captum"))
            rows.append((f"vgg11 {name} (Captum)", med(t["captum " + name]), ""))

    width = max(len(r[0]) for r in rows)
    print(f"resnet50 random init, 1 x 3 x 224 x 224, device {args.device}, {args.threads} threads, "
          f"medians of {R} alternating rounds (RISE/Score-CAM {R3}); load average before {load0}, "
          f"after {loadavg()}")
    for name, tm, note in rows:
        print(f"{name:<{width}}  {tm * 1000:9.1f} ms  {note}")


if __name__ == "__main__":
    main()
