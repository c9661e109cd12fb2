"""GPU check of the explanations: every registered explanation method on CUDA against the same call on
the CPU, the model's state after the calls, and GPU throughput for the main methods.

Run on a machine with a CUDA GPU (it exits 2 without one):

    python benchmarks/gpu_check.py [--batch 32] [--model mobilenet_v2|resnet50]

Prints, per method, the max absolute difference between the CPU and the GPU maps (maps are normalised
to [0, 1] by the methods, so the figure is in map units), whether the model came back unchanged, and
images per second on the GPU at the given batch size.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings

import numpy as np
import torch


def photos(n: int) -> np.ndarray:
    from skimage import data
    from skimage.transform import resize

    names = ["chelsea", "coffee", "astronaut", "rocket"]
    imgs = [resize(getattr(data, k)(), (224, 224), anti_aliasing=True).astype(np.float32) for k in names]
    return np.stack([imgs[i % len(imgs)] for i in range(n)])


def state(model: torch.nn.Module) -> tuple:
    return (
        model.training,
        tuple(p.requires_grad for p in model.parameters()),
        tuple(len(m._forward_hooks) + len(m._backward_hooks) + len(m._forward_pre_hooks)
              for m in model.modules()),
        tuple(getattr(m, "inplace", None) for m in model.modules()),
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--model", default="mobilenet_v2")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cuda", help="cuda (default); cpu only to dry-run this script")
    args = ap.parse_args()
    if args.device == "cpu":  # dry run: the "GPU" side is a second CPU copy
        torch.cuda.synchronize = lambda: None
        torch.cuda.get_device_name = lambda i: "cpu (dry run)"
    elif not torch.cuda.is_available():
        print("no CUDA device: nothing to check", file=sys.stderr)
        return 2
    import salience
    from salience.registry import methods

    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}")
    if args.model == "mobilenet_v2":
        lm = salience.load_model("mobilenet_v2")
        model_cpu = lm.model
        x_cpu = torch.cat([lm.preprocess(p) for p in photos(2)])
    else:
        import torchvision

        torch.manual_seed(0)
        model_cpu = getattr(torchvision.models, args.model)().eval()
        x_cpu = torch.from_numpy(photos(2)).permute(0, 3, 1, 2).contiguous()
    import copy

    model_gpu = copy.deepcopy(model_cpu).to(args.device)
    x_gpu = x_cpu.to(args.device)
    failures = 0
    print(f"\n{'method':<22} {'max |cpu - gpu|':>16} {'state kept':>11}")
    light = {"smoothgrad": {"n": 8}, "integrated-gradients": {"steps": 16}, "rise": {"n": 256},
             "occlusion": {"window": 32, "stride": 32}}
    from salience.attribution.transformer import fits_model_kind

    for m in methods("explanation"):
        if not fits_model_kind(m.model_kind, model_cpu):
            continue  # attention rows need self-attention blocks (e.g. --model vit_b_16)
        params = dict(light.get(m.name, {}))
        if m.name in ("smoothgrad", "rise"):
            params["seed"] = 0
        before = state(model_gpu)
        try:
            e_cpu = salience.explain(model_cpu, x_cpu, m.name, target=[281, 967], **params)
            e_gpu = salience.explain(model_gpu, x_gpu, m.name, target=[281, 967], **params)
        except Exception as exc:  # report and carry on: this is a check script
            failures += 1
            print(f"{m.name:<22} ERROR {type(exc).__name__}: {exc}")
            continue
        kept = state(model_gpu) == before
        diff = float((e_cpu.maps - e_gpu.maps.cpu()).abs().max())
        on_gpu = e_gpu.maps.device.type == args.device
        ok = kept and on_gpu and np.isfinite(diff)
        failures += not ok
        print(f"{m.name:<22} {diff:>16.2e} {str(kept):>11}{'' if on_gpu else '  (maps not on the GPU!)'}")

    # Integrated Gradients' tolerance loop: per-image step doubling with indices on the GPU
    before = state(model_gpu)
    tol, top = 0.02, 64
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an image still above tolerance at max_steps is allowed
            e_cpu = salience.explain(model_cpu, x_cpu, "ig", target=[281, 967], steps=8, tolerance=tol,
                                     max_steps=top)
            e_gpu = salience.explain(model_gpu, x_gpu, "ig", target=[281, 967], steps=8, tolerance=tol,
                                     max_steps=top)
        rel = (e_gpu.delta.abs() / (e_gpu.scores - e_gpu.baseline_scores).abs()).cpu()
        steps_gpu = e_gpu.steps.cpu()
        ok = (bool(((rel <= tol) | (steps_gpu == top)).all()) and state(model_gpu) == before
              and e_gpu.maps.device.type == args.device)
        print(f"{'ig tolerance=' + str(tol):<22} steps cpu {e_cpu.steps.tolist()} gpu {steps_gpu.tolist()}, "
              f"|delta|/gap gpu {[round(float(r), 4) for r in rel]} {'ok' if ok else 'FAILED'}")
        failures += not ok
    except Exception as exc:  # report and carry on: this is a check script
        failures += 1
        print(f"{'ig tolerance':<22} ERROR {type(exc).__name__}: {exc}")

    print(f"\nthroughput on the GPU, batch {args.batch} ({args.model}):")
    xb = torch.cat([x_gpu] * (args.batch // 2 + 1))[: args.batch]
    with torch.no_grad():
        for _ in range(3):
            model_gpu(xb)
    torch.cuda.synchronize()

    def timed(fn):
        ts = []
        for _ in range(args.repeats):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts)

    def fwd():
        with torch.no_grad():
            model_gpu(xb)

    t_fwd = timed(fwd)
    print(f"  {'forward only':<18} {args.batch / t_fwd:9.0f} images/s")
    for name in ("gradcam", "guided-backprop", "gradient", "scorecam"):
        salience.explain(model_gpu, xb, name)  # warm-up (layer search is cached)
        t = timed(lambda name=name: salience.explain(model_gpu, xb, name))
        print(f"  {name:<18} {args.batch / t:9.0f} images/s  ({t / t_fwd:5.2f}x a forward pass)")
    print(f"\n{'all checks passed' if failures == 0 else f'{failures} check(s) failed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
