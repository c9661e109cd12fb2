"""Deletion / insertion curves (Petsiuk et al. 2018), ROAD imputation (Rong et al. 2022), the map
similarity measures of the sanity checks, and the `salience audit` command."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salience.audit import faithfulness as fa
from salience.errors import InputError, ModelError

torch = pytest.importorskip("torch")


# ------------------------------------------------------------------------------------------------------
# a tiny fixed model: logit_0 = sum_p w_p x_p, logit_1 = 0, so every curve value is known by hand
# ------------------------------------------------------------------------------------------------------


def linear_model(weights, n_classes: int = 2) -> torch.nn.Module:
    w = torch.as_tensor(weights, dtype=torch.float32).reshape(-1)
    lin = torch.nn.Linear(w.numel(), n_classes, bias=False)
    with torch.no_grad():
        lin.weight.zero_()
        lin.weight[0] = w
    return torch.nn.Sequential(torch.nn.Flatten(), lin)


W4 = [[4.0, 3.0], [2.0, 1.0]]
FRACS = [0.0, 0.25, 0.5, 0.75, 1.0]


def test_deletion_hand_computed_logits() -> None:
    """Removing pixels in the order 4, 3, 2, 1 leaves logits 10, 6, 3, 1, 0; AUC = 0.25 * 15."""
    net = linear_model(W4)
    x = torch.ones(1, 1, 2, 2)
    r = fa.deletion_curve(net, x, torch.tensor(W4), steps=4, score="logit")
    np.testing.assert_allclose(r.fractions, FRACS)
    np.testing.assert_allclose(r.scores[0], [10, 6, 3, 1, 0], atol=1e-6)
    assert r.auc[0] == pytest.approx(0.25 * (10 / 2 + 6 + 3 + 1 + 0 / 2))
    assert r.targets.tolist() == [0] and r.kind == "deletion" and r.scores.dtype == np.float32
    # the reversed ranking removes the least important pixel first
    rev = fa.deletion_curve(net, x, -torch.tensor(W4), steps=4, score="logit")
    np.testing.assert_allclose(rev.scores[0], [10, 9, 7, 4, 0], atol=1e-6)
    assert rev.auc[0] == pytest.approx(6.25) and r.auc[0] < rev.auc[0]


def test_insertion_hand_computed_probability() -> None:
    """Insertion into zeros: logits 0, 4, 7, 9, 10 against a constant 0 logit -> probability sigmoid(l)."""
    net = linear_model(W4)
    r = fa.insertion_curve(net, torch.ones(1, 1, 2, 2), np.array(W4), steps=4, perturbation="constant")
    expected = [1 / (1 + math.exp(-v)) for v in (0, 4, 7, 9, 10)]
    np.testing.assert_allclose(r.scores[0], expected, rtol=1e-6)
    assert r.auc[0] == pytest.approx(np.trapezoid(expected, FRACS), rel=1e-6)
    # the target is fixed on the unperturbed image (class 0) and kept at every step
    assert r.targets.tolist() == [0]


def test_steps_counts_exact() -> None:
    """Step k removes round(k * H * W / steps) pixels (4 pixels, 3 steps -> 0, 1, 3, 4)."""
    net = linear_model(W4)
    r = fa.deletion_curve(net, torch.ones(1, 1, 2, 2), np.array(W4), steps=3, score="logit", value=0.5)
    np.testing.assert_allclose(r.fractions, [0.0, 0.25, 0.75, 1.0])
    # removed 4 -> 10 - 4*0.5; removed 4,3,2 -> 10 - 9*0.5; all -> 5
    np.testing.assert_allclose(r.scores[0], [10, 8, 5.5, 5], atol=1e-6)


def test_patch_ranking() -> None:
    """patch=2 ranks 2x2 cells by their mean; the pixels of the best cell go first (raster order inside)."""
    w = np.arange(16, dtype=np.float32).reshape(4, 4)
    net = linear_model(w)
    sal = np.zeros((4, 4))
    sal[2:, 2:] = 1.0  # bottom-right cell is the most salient
    sal[0, 0] = 0.9  # a single bright pixel does not make its cell win
    r = fa.deletion_curve(net, torch.ones(1, 1, 4, 4), sal, steps=4, score="logit", patch=2)
    total = w.sum()
    assert r.scores[0, 1] == pytest.approx(total - w[2:, 2:].sum())
    r1 = fa.deletion_curve(net, torch.ones(1, 1, 4, 4), sal, steps=16, score="logit")
    assert r1.scores[0, 5] == pytest.approx(total - w[2:, 2:].sum() - w[0, 0])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0.01, 10.0), min_size=9, max_size=9), st.integers(1, 9))
def test_true_ranking_beats_reversed(weights, steps) -> None:
    """For a linear model on a ones image, ranking by the true weights gives a deletion AUC <= and an
    insertion AUC >= those of the reversed ranking (both with the constant-0 fill)."""
    w = np.array(weights, dtype=np.float32).reshape(3, 3)
    net = linear_model(w)
    x = torch.ones(1, 1, 3, 3)
    kw = dict(steps=steps, score="logit", perturbation="constant")
    d_true, d_rev = fa.deletion_curve(net, x, w, **kw).auc[0], fa.deletion_curve(net, x, -w, **kw).auc[0]
    i_true, i_rev = fa.insertion_curve(net, x, w, **kw).auc[0], fa.insertion_curve(net, x, -w, **kw).auc[0]
    assert d_true <= d_rev + 1e-5 and i_true >= i_rev - 1e-5


# ------------------------------------------------------------------------------------------------------
# a small conv net: batching, targets, no mutation
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def convnet() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.Conv2d(6, 6, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(24, 5))


@pytest.mark.parametrize("perturbation", ["constant", "blur", "road"])
def test_batch_size_does_not_change_results(convnet, perturbation) -> None:
    """Scores and AUCs are the same for batch sizes 1, 5 and 100 (every perturbation)."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 12, 12, generator=g)
    sal = torch.rand(2, 12, 12, generator=g)
    runs = [fa.deletion_curve(convnet, x, sal, steps=6, perturbation=perturbation, batch_size=b)
            for b in (1, 5, 100)]
    for r in runs[1:]:
        np.testing.assert_allclose(r.scores, runs[0].scores, atol=1e-6)
        np.testing.assert_allclose(r.auc, runs[0].auc, atol=1e-6)
    ins = [fa.insertion_curve(convnet, x, sal, steps=6, perturbation=perturbation, batch_size=b) for b in (1, 7)]
    np.testing.assert_allclose(ins[0].scores, ins[1].scores, atol=1e-6)


def test_curve_endpoints(convnet) -> None:
    """Deletion starts at the model's probability on the image and ends at the fill's; insertion the reverse."""
    x = torch.rand(1, 3, 10, 10)
    sal = torch.rand(10, 10)
    d = fa.deletion_curve(convnet, x, sal, steps=5, perturbation="constant", value=0.0)
    i = fa.insertion_curve(convnet, x, sal, steps=5, perturbation="constant", value=0.0)
    with torch.no_grad():
        p = torch.softmax(convnet(x), 1)[0]
        p0 = torch.softmax(convnet(torch.zeros_like(x)), 1)[0]
    t = int(p.argmax())
    assert d.targets[0] == t and i.targets[0] == t
    assert d.scores[0, 0] == pytest.approx(float(p[t]), abs=1e-6)
    assert d.scores[0, -1] == pytest.approx(float(p0[t]), abs=1e-6)
    np.testing.assert_allclose(i.scores[0, [0, -1]], d.scores[0, [-1, 0]], atol=1e-6)
    assert np.all((d.scores >= 0) & (d.scores <= 1))


def test_targets_like_explain(convnet) -> None:
    """int, one per image, 'top2' and a callable are accepted; wrong lengths and out-of-range are errors."""
    x = torch.rand(2, 3, 8, 8)
    sal = torch.rand(2, 8, 8)
    assert fa.deletion_curve(convnet, x, sal, 3, steps=4).targets.tolist() == [3, 3]
    assert fa.deletion_curve(convnet, x, sal, [1, 4], steps=4).targets.tolist() == [1, 4]
    with torch.no_grad():
        second = convnet(x).topk(2, dim=1).indices[:, 1].tolist()
    assert fa.deletion_curve(convnet, x, sal, "top2", steps=4).targets.tolist() == second
    r = fa.deletion_curve(convnet, x, sal, lambda out: out[:, 2] - out[:, 0], steps=4)
    with torch.no_grad():
        out = convnet(x)
    np.testing.assert_allclose(r.scores[:, 0], (out[:, 2] - out[:, 0]).numpy(), atol=1e-5)
    assert r.targets is None and r.score == "callable"
    with pytest.raises(InputError, match="3 target"):
        fa.deletion_curve(convnet, x, sal, [1, 2, 3], steps=4)
    with pytest.raises(ModelError, match="out of range"):
        fa.deletion_curve(convnet, x, sal, 9, steps=4)


def test_inputs_and_model_not_mutated(convnet) -> None:
    """Images, maps, parameters, training flags and requires_grad flags are as before the call."""
    x = torch.rand(1, 3, 8, 8)
    sal = np.random.default_rng(0).random((1, 8, 8))
    x0, sal0 = x.clone(), sal.copy()
    state = {k: v.clone() for k, v in convnet.state_dict().items()}
    convnet.train()
    try:
        for pert in fa.PERTURBATIONS:
            fa.deletion_curve(convnet, x, sal, steps=4, perturbation=pert)
            fa.insertion_curve(convnet, x, sal, steps=4, perturbation=pert)
        assert all(m.training for m in convnet.modules())
        assert all(p.requires_grad for p in convnet.parameters())
    finally:
        convnet.eval()
    assert torch.equal(x, x0) and np.array_equal(sal, sal0)
    assert all(torch.equal(v, convnet.state_dict()[k]) for k, v in state.items())


def test_bad_input_errors(convnet) -> None:
    """Wrong shapes, NaN, too many steps, unknown perturbation or score: InputError naming the problem."""
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(InputError, match="saliency_maps has shape"):
        fa.deletion_curve(convnet, x, np.zeros((7, 8)))
    with pytest.raises(InputError, match="NaN"):
        fa.deletion_curve(convnet, x, np.full((8, 8), np.nan))
    with pytest.raises(InputError, match="steps=65"):
        fa.deletion_curve(convnet, x, np.zeros((8, 8)), steps=65)
    with pytest.raises(InputError, match="perturbation"):
        fa.deletion_curve(convnet, x, np.zeros((8, 8)), perturbation="noise")
    with pytest.raises(InputError, match="score"):
        fa.insertion_curve(convnet, x, np.zeros((8, 8)), score="prob")
    with pytest.raises(InputError, match="batch_size"):
        fa.insertion_curve(convnet, x, np.zeros((8, 8)), batch_size=0)
    with pytest.raises(InputError, match=r"\(B, C, H, W\)"):
        fa.deletion_curve(convnet, x[0], np.zeros((8, 8)))


# ------------------------------------------------------------------------------------------------------
# perturbations
# ------------------------------------------------------------------------------------------------------


def test_blur_matches_scipy() -> None:
    """The blur fill is a Gaussian of sigma px truncated at 3 sigma with mirrored borders (scipy 'mirror')."""
    from scipy import ndimage

    x = torch.rand(1, 2, 20, 23, dtype=torch.float64)
    full = fa.perturb(x, torch.rand(20, 23), 1.0, perturbation="blur", blur_sigma=2.0)
    ref = np.stack([ndimage.gaussian_filter(c, 2.0, truncate=3.0, mode="mirror") for c in x[0].numpy()])
    np.testing.assert_allclose(full[0].numpy(), ref, atol=1e-10)
    part = fa.perturb(x, torch.arange(460.0).reshape(20, 23), 0.5, mode="insertion", perturbation="blur",
                      blur_sigma=2.0)
    # insertion keeps the top half (the bottom rows, highest values) of the original, blur elsewhere
    np.testing.assert_array_equal(part[0, :, -5:].numpy(), x[0, :, -5:].numpy())
    np.testing.assert_allclose(part[0, :, :5].numpy(), ref[:, :5], atol=1e-10)


def test_road_reproduces_linear_images_and_adds_noise() -> None:
    """A linear ramp is its own 8-neighbour weighted mean (inside the image): imputation without noise
    restores an interior hole exactly;
    noise of std s appears on imputed pixels only; a fully missing image becomes the fill."""
    yy, xx = np.mgrid[0:16, 0:16].astype(np.float64)
    img = np.stack([0.3 * xx - 0.2 * yy + 1, 0.1 * yy])
    miss = np.zeros((16, 16), bool)
    miss[4:12, 3:9] = True
    out = fa.road_impute(img, miss, noise=0.0)
    np.testing.assert_allclose(out, img, atol=1e-5)
    noisy = fa.road_impute(img, miss, noise=0.05, seed=3)
    diff = (noisy - img)[:, miss]
    assert np.array_equal(noisy[:, ~miss], img[:, ~miss].astype(np.float32))
    assert 0.035 < diff.std() < 0.065
    np.testing.assert_array_equal(noisy, fa.road_impute(img, miss, noise=0.05, seed=3))
    everything = fa.road_impute(img, np.ones((16, 16), bool), noise=0.0, fill=0.25)
    np.testing.assert_allclose(everything, 0.25)


def test_road_is_weighted_mean_of_neighbours() -> None:
    """Each imputed pixel equals the 1/6 (direct) 1/12 (diagonal) weighted mean of its neighbours."""
    rng = np.random.default_rng(0)
    img = rng.random((1, 9, 9))
    miss = rng.random((9, 9)) < 0.4
    out = fa.road_impute(img, miss, noise=0.0).astype(np.float64)[0]
    for y, x in zip(*np.nonzero(miss)):
        num = den = 0.0
        for dy, dx, w in fa.ROAD_WEIGHTS:
            if 0 <= y + dy < 9 and 0 <= x + dx < 9:
                num += w * out[y + dy, x + dx]
                den += w
        assert out[y, x] == pytest.approx(num / den, abs=1e-5)


# ------------------------------------------------------------------------------------------------------
# similarity measures (torch-free)
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(16, 16), (31, 24), (64, 50)])
def test_ssim_matches_skimage(shape) -> None:
    """Uniform 7x7 and Gaussian (sigma 1.5) SSIM equal scikit-image's structural_similarity."""
    sk = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(sum(shape))
    a = rng.random(shape)
    b = 0.6 * a + 0.4 * rng.random(shape)
    assert fa.ssim(a, b, data_range=1.0) == pytest.approx(sk.structural_similarity(a, b, data_range=1.0), abs=1e-10)
    ref = sk.structural_similarity(a, b, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                   use_sample_covariance=False)
    assert fa.ssim(a, b, data_range=1.0, window="gaussian") == pytest.approx(ref, abs=1e-10)
    assert fa.ssim(a, a) == pytest.approx(1.0)


@pytest.mark.parametrize("shape,ppc,cpb", [((32, 32), 8, 3), ((50, 37), 4, 2), ((64, 48), 8, 1)])
def test_hog_matches_skimage(shape, ppc, cpb) -> None:
    """Our HOG vector equals skimage.feature.hog (9 bins, L2-Hys) on random maps."""
    skf = pytest.importorskip("skimage.feature")
    a = np.random.default_rng(7).random(shape)
    ours = fa.hog(a, pixels_per_cell=ppc, cells_per_block=cpb)
    ref = skf.hog(a, orientations=9, pixels_per_cell=(ppc, ppc), cells_per_block=(cpb, cpb), block_norm="L2-Hys")
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    b = np.random.default_rng(8).random(shape)
    refsim = np.corrcoef(ref, skf.hog(b, pixels_per_cell=(ppc, ppc), cells_per_block=(cpb, cpb)))[0, 1]
    assert fa.hog_similarity(a, b, pixels_per_cell=ppc, cells_per_block=cpb) == pytest.approx(refsim, abs=1e-5)


def test_spearman_matches_scipy_and_constant_rule() -> None:
    """Spearman equals scipy.stats.spearmanr (with ties); a constant map gives 0 (1 against a constant)."""
    from scipy.stats import spearmanr

    rng = np.random.default_rng(2)
    a = rng.integers(-3, 4, (12, 12)).astype(float)
    b = a + rng.normal(0, 2, (12, 12))
    assert fa.spearman(a, b) == pytest.approx(spearmanr(a.ravel(), b.ravel())[0], abs=1e-12)
    assert fa.spearman(a, b, absolute=True) == pytest.approx(
        spearmanr(np.abs(a).ravel(), np.abs(b).ravel())[0], abs=1e-12)
    assert fa.spearman(a, -a) == pytest.approx(-1.0) and fa.spearman(a, -a, absolute=True) == pytest.approx(1.0)
    assert fa.spearman(np.zeros((4, 4)), a[:4, :4]) == 0.0
    assert fa.spearman(np.zeros((4, 4)), np.ones((4, 4))) == 1.0
    with pytest.raises(InputError, match="same shape"):
        fa.spearman(a, a[:3])


def test_map_similarity_identical_is_one() -> None:
    """Every measure is 1 for a map against itself and below 1 against an unrelated map."""
    a = np.random.default_rng(3).random((56, 56))
    assert all(v == pytest.approx(1.0) for v in fa.map_similarity(a, a).values())
    other = fa.map_similarity(a, np.random.default_rng(4).random((56, 56)))
    assert set(other) == set(fa.SIMILARITY_METRICS) and all(v < 0.5 for v in other.values())


def test_metrics_import_stays_torch_free() -> None:
    """`import salience.metrics`, `import salience.audit` and the similarity functions do not import torch."""
    import subprocess
    import sys

    code = ("import sys, numpy as np; import salience.metrics; import salience.audit as f; "
            "f.spearman(np.eye(8), np.eye(8)); f.ssim(np.eye(8), np.eye(8)); f.hog_similarity(np.eye(32), np.eye(32)); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------------------------------------------
# figures and the CLI
# ------------------------------------------------------------------------------------------------------


def test_curves_figure_both_backends(convnet, monkeypatch) -> None:
    """curves_figure returns an RGB uint8 image with matplotlib and with the OpenCV fallback."""
    x = torch.rand(1, 3, 8, 8)
    d = {"a": fa.deletion_curve(convnet, x, torch.rand(8, 8), steps=4)}
    i = {"a": fa.insertion_curve(convnet, x, torch.rand(8, 8), steps=4)}
    fig = fa.curves_figure(d, i, title="t")
    assert fig.dtype == np.uint8 and fig.ndim == 3 and fig.shape[2] == 3 and fig.std() > 0
    monkeypatch.setattr(fa, "_have_matplotlib", lambda: False)
    fig2 = fa.curves_figure(d, i)
    assert fig2.dtype == np.uint8 and fig2.shape[2] == 3


@pytest.mark.slow
def test_cli_audit(tmp_path, capsys) -> None:
    """`salience audit` prints AUCs and sanity numbers, writes the PNGs and JSON, exits 1 on a missing
    input, keeps files without --overwrite, exits 2 on bad usage."""
    skdata = pytest.importorskip("skimage.data")
    from PIL import Image

    from salience.cli import main

    src = tmp_path / "cat.png"
    Image.fromarray(skdata.chelsea()[::3, ::3]).save(src)
    out = tmp_path / "out"
    args = ["audit", str(src), str(tmp_path / "missing.png"), "--method", "gradcam,gradient",
            "--steps", "4", "--stages", "1", "--out", str(out)]
    code = main(args)
    text = capsys.readouterr()
    assert code == 1 and "missing.png" in text.err and "1 of 2" in text.err
    assert "deletion AUC" in text.out and "insertion AUC" in text.out and "spearman" in text.out
    assert "classifier.1" in text.out
    for name in ("cat_curves.png", "cat_sanity_cascading.png"):
        png = np.asarray(Image.open(out / name))
        assert png.ndim == 3 and png.shape[2] in (3, 4)
    report = json.loads((out / "cat_audit.json").read_text())
    assert set(report["curves"]["deletion"]) == {"gradcam", "gradient"}
    assert len(report["curves"]["insertion"]["gradcam"]["scores"]) == 5
    assert report["sanity"]["cascading"]["stages"] == ["original", "classifier.1"]
    assert main(["audit", str(src), "--out", str(out), "--steps", "4", "--stages", "1"]) == 1
    assert "exist already" in capsys.readouterr().err
    assert main(["audit", str(src), "--out", str(out), "--method", "itti"]) == 2
    assert main(["audit", str(src), "--out", str(out), "--method", "nope"]) == 2
    assert main(["audit", str(src), "--out", str(out), "--steps", "0"]) == 2
