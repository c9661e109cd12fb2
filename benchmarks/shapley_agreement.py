"""Agreement of the Shapley and surrogate methods with exact Shapley values and with Captum, on identical
inputs (the figures of docs/shapley.md; tests/test_shapley.py asserts bounds on the same quantities).

torchvision resnet18 (random init, no download) at 64 x 64 on one random image, CPU, float32; a 3 x 2
grid (M = 6 features, 64 coalitions: the brute-force Shapley values are exact) and SLIC superpixels.

    python benchmarks/shapley_agreement.py
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
import torchvision

import salience
from salience.attribution import feature_mask


def exact_shapley(net, x, x0, lab, target) -> np.ndarray:
    M = int(lab.max()) + 1
    bits = list(itertools.product((0, 1), repeat=M))
    keep = torch.tensor(bits, dtype=x.dtype)[:, lab]
    with torch.no_grad():
        vals = torch.cat([net(x0 + k[:, None] * (x - x0))[:, target] for k in keep.split(16)]).double().tolist()
    v = dict(zip(bits, vals))
    phi = np.zeros(M)
    for i in range(M):
        for z, val in v.items():
            if not z[i]:
                s = sum(z)
                phi[i] += (math.factorial(s) * math.factorial(M - s - 1) / math.factorial(M)
                           * (v[z[:i] + (1,) + z[i + 1:]] - val))
    return phi


def main() -> None:
    import captum.attr as ca
    from captum._utils.models.linear_model import SkLearnRidge

    torch.set_num_threads(2)
    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None).eval()
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    t = 7
    grid = feature_mask(x, "grid", n_segments=6)
    exact = exact_shapley(net, x, torch.zeros_like(x), grid[0], t)
    scale = np.abs(exact).max()
    print(f"resnet18 (random init) 64x64, target {t}; exact Shapley values over a 3x2 grid, max |phi| = {scale:.4g}")

    e = salience.explain(net, x, "kernel-shap", target=t, features=grid, n_samples=62)
    print(f"kernel-shap, all 62 coalitions vs brute-force Shapley: max abs diff "
          f"{np.abs(e.values[0].numpy() - exact).max():.3g}")
    gap = float(e.scores[0] - e.base_values[0])
    print(f"kernel-shap efficiency |sum phi - (f(x) - f(0))|: {abs(float(e.values[0].sum()) - gap):.3g}")
    for n in (32, 48):
        errs = [np.abs(salience.explain(net, x, "kernel-shap", target=t, features=grid, n_samples=n,
                                        seed=s).values[0].numpy() - exact).max() for s in range(3)]
        print(f"kernel-shap, {n} sampled coalitions (3 seeds) vs exact: max abs diff "
              f"{', '.join(f'{v:.3g}' for v in errs)}")
    for n in (500, 2000):
        torch.manual_seed(0)
        th = ca.KernelShap(net).attribute(x, baselines=0.0, target=t, feature_mask=grid[:, None], n_samples=n,
                                          perturbations_per_eval=50, return_input_shape=False)
        print(f"Captum KernelShap, {n} samples vs exact: max abs diff "
              f"{np.abs(th[0].double().numpy() - exact).max():.3g}")

    slic = feature_mask(x, "slic", n_segments=16)
    print(f"SLIC: {int(slic.max()) + 1} superpixels")
    e = salience.explain(net, x, "feature-ablation", target=t, features=slic, baseline=-0.5)
    th = ca.FeatureAblation(net).attribute(x, baselines=-0.5, target=t, feature_mask=slic[:, None],
                                           perturbations_per_eval=8)
    print(f"feature-ablation vs Captum FeatureAblation (per pixel): max abs diff "
          f"{float((e.maps - th[:, 0]).abs().max()):.3g} (max |value| {float(e.maps.abs().max()):.4g})")

    e = salience.explain(net, x, "lime", target=t, features=slic, n_samples=200, alpha=1.0)
    z = e.coalitions[0].long()
    M = z.shape[1]

    def perturb(original, **kw):
        for row in z:
            yield row[None]

    def similarity(original, perturbed, interp, **kw):
        k = float(interp.sum())
        d = 1.0 - k / math.sqrt(M * k) if k > 0 else 1.0
        return math.exp(-d * d / (2 * 0.25 ** 2))

    th = ca.Lime(net, interpretable_model=SkLearnRidge(alpha=1.0), similarity_func=similarity,
                 perturb_func=perturb).attribute(x, baselines=0.0, target=t, feature_mask=slic[:, None],
                                                 n_samples=200, perturbations_per_eval=32,
                                                 return_input_shape=False)
    print(f"lime vs Captum Lime (same coalitions, kernel, Ridge alpha=1): max abs diff "
          f"{np.abs(e.values[0].numpy() - th[0].double().numpy()).max():.3g} "
          f"(max |coef| {np.abs(e.values[0].numpy()).max():.4g})")

    refs = torch.rand(5, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    e = salience.explain(net, x, "gradient-shap", target=t, baselines=refs, n_samples=8)
    orig_choice, orig_uniform = np.random.choice, np.random.uniform
    try:
        np.random.choice = lambda r, k: e.baseline_indices.reshape(-1).numpy()[:k]  # type: ignore
        np.random.uniform = lambda lo, hi, k: e.alphas.reshape(-1).double().numpy()[:k]  # type: ignore
        th = ca.GradientShap(net).attribute(x, baselines=refs, target=t, n_samples=8, stdevs=0.0)
    finally:
        np.random.choice, np.random.uniform = orig_choice, orig_uniform
    print(f"gradient-shap vs Captum GradientShap (same draws): max abs diff "
          f"{float((e.attributions - th).abs().max()):.3g} (max |a| {float(th.abs().max()):.4g})")


if __name__ == "__main__":
    main()
