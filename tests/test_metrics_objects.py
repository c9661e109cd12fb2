"""Salient-object metrics: equal to PySODMetrics 1.6.2 on identical inputs (1e-6), and their properties."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from salience import metrics
from salience.errors import InputError
from salience.metrics import objects

psm = pytest.importorskip("py_sod_metrics", reason="PySODMetrics is the reference (test extra: pysodmetrics)")

TOL = 1e-6


def _blob(shape, cy, cx, ry, rx):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def _cases():
    """(pred uint8, gt uint8) pairs: good, poor, noisy, shifted, thin, multi-object predictions."""
    rng = np.random.default_rng(11)
    out = []
    for k in range(10):
        h, w = int(rng.integers(30, 90)), int(rng.integers(30, 90))
        gt = _blob((h, w), rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w, rng.uniform(4, h / 3), rng.uniform(4, w / 3))
        if k % 3 == 0:
            gt |= _blob((h, w), 0.2 * h, 0.8 * w, 3, 5)
        yy, xx = np.mgrid[0:h, 0:w]
        cy, cx = np.argwhere(gt).mean(axis=0) + rng.normal(0, 4, 2)
        smooth = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rng.uniform(20, 200)))
        pred = (1 - k / 12) * smooth + (k / 12) * rng.random((h, w))
        pred_u8 = np.floor(pred / pred.max() * 255 * rng.uniform(0.5, 1.0)).astype(np.uint8)
        out.append((pred_u8, (gt * 255).astype(np.uint8)))
    # a binary prediction, a prediction with few levels, an inverted one
    gt = _blob((40, 50), 20, 25, 10, 14)
    out.append(((gt * 255).astype(np.uint8), (gt * 255).astype(np.uint8)))
    out.append(((rng.integers(0, 4, (40, 50)) * 60).astype(np.uint8), (gt * 255).astype(np.uint8)))
    out.append((((~gt) * 200 + 20).astype(np.uint8), (gt * 255).astype(np.uint8)))
    # a soft ground truth (values around the 128 cut)
    soft = np.clip(np.round(128 + 40 * rng.normal(size=(40, 50)) + 60 * (gt - 0.5)), 0, 255).astype(np.uint8)
    out.append(((rng.random((40, 50)) * 255).astype(np.uint8), soft))
    return out


CASES = _cases()


def _reference(pred, gt):
    """Every score for one image from PySODMetrics."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Fmeasure warns that it is deprecated in favour of FmeasureV2
        fm = psm.Fmeasure()
    em, sm, wfm, m = psm.Emeasure(), psm.Smeasure(), psm.WeightedFmeasure(), psm.MAE()
    v2 = psm.FmeasureV2({"iou": psm.IOUHandler(True, True, with_binary=True),
                         "dice": psm.DICEHandler(True, True, with_binary=True)})
    for obj in (fm, em, sm, wfm, m, v2):
        obj.step(pred, gt)
    r_fm, r_em, r2 = fm.get_results()["fm"], em.get_results()["em"], v2.get_results()
    return {
        "mae": m.get_results()["mae"], "sm": sm.get_results()["sm"], "wf": wfm.get_results()["wfm"],
        "f_curve": r_fm["curve"][::-1], "adp_f": r_fm["adp"],
        "e_curve": r_em["curve"][::-1], "adp_e": r_em["adp"],
        "iou_curve": r2["iou"]["dynamic"][::-1], "adp_iou": r2["iou"]["adaptive"], "bin_iou": r2["iou"]["binary"],
        "dice_curve": r2["dice"]["dynamic"][::-1], "adp_dice": r2["dice"]["adaptive"],
        "bin_dice": r2["dice"]["binary"],
    }


@pytest.mark.parametrize("idx", range(len(CASES)))
def test_every_metric_equals_pysodmetrics(idx):
    """Every salient-object metric and curve equals PySODMetrics 1.6.2 on each test case."""
    pred, gt = CASES[idx]
    ref = _reference(pred, gt)
    assert metrics.mae(pred, gt) == pytest.approx(ref["mae"], abs=TOL)
    assert metrics.s_measure(pred, gt) == pytest.approx(ref["sm"], abs=TOL)
    assert metrics.weighted_f_measure(pred, gt) == pytest.approx(ref["wf"], abs=TOL)
    np.testing.assert_allclose(metrics.f_measure_curve(pred, gt), ref["f_curve"], atol=TOL, rtol=0)
    np.testing.assert_allclose(metrics.e_measure_curve(pred, gt), ref["e_curve"], atol=TOL, rtol=0)
    assert metrics.f_measure(pred, gt) == pytest.approx(ref["adp_f"], abs=TOL)
    assert metrics.f_measure(pred, gt, "max") == pytest.approx(ref["f_curve"].max(), abs=TOL)
    assert metrics.f_measure(pred, gt, "mean") == pytest.approx(ref["f_curve"].mean(), abs=TOL)
    assert metrics.e_measure(pred, gt) == pytest.approx(ref["adp_e"], abs=TOL)
    assert metrics.e_measure(pred, gt, "max") == pytest.approx(ref["e_curve"].max(), abs=TOL)
    for name in ("iou", "dice"):
        fn = getattr(metrics, name)
        assert fn(pred, gt) == pytest.approx(ref[f"adp_{name}"], abs=TOL)
        assert fn(pred, gt, "binary") == pytest.approx(ref[f"bin_{name}"], abs=TOL)
        assert fn(pred, gt, "max") == pytest.approx(ref[f"{name}_curve"].max(), abs=TOL)
        assert fn(pred, gt, "mean") == pytest.approx(ref[f"{name}_curve"].mean(), abs=TOL)


def test_data_set_scores_equal_pysodmetrics_accumulated():
    """Over a data set the sweeps' max / mean are those of the mean curve (PySODMetrics' get_results)."""
    pairs = CASES[:8]
    res = metrics.object_scores(pairs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fm = psm.Fmeasure()
    em, sm, wfm, m = psm.Emeasure(), psm.Smeasure(), psm.WeightedFmeasure(), psm.MAE()
    for p, g in pairs:
        for obj in (fm, em, sm, wfm, m):
            obj.step(p, g)
    f, e = fm.get_results()["fm"], em.get_results()["em"]
    expected = {"mae": m.get_results()["mae"], "sm": sm.get_results()["sm"], "wf": wfm.get_results()["wfm"],
                "max_f": f["curve"].max(), "mean_f": f["curve"].mean(), "adp_f": f["adp"],
                "max_e": e["curve"].max(), "mean_e": e["curve"].mean(), "adp_e": e["adp"]}
    for k, v in expected.items():
        assert res.scores[k] == pytest.approx(v, abs=TOL), k
    assert len(res.per_image) == 8 and set(res.per_image[0]) == set(metrics.SOD_METRICS)
    # the data-set max F is not the mean of the per-image maxima (one threshold for all images)
    assert res.scores["max_f"] <= np.mean([r["max_f"] for r in res.per_image]) + 1e-12


def test_real_photo_maps_equal_pysodmetrics(photos):
    """Maps of real photos by two registry methods against a mask of the photo's own bright object."""
    import salience

    img = photos["coffee"]
    gray = img.mean(axis=2)
    gt = (gray > np.quantile(gray, 0.7)).astype(np.uint8) * 255
    for method in ("spectral-residual", "frequency-tuned"):
        sal = salience.saliency_map(img, method)
        pred = np.floor(sal / sal.max() * 255).astype(np.uint8)
        ref = _reference(pred, gt)
        assert metrics.s_measure(pred, gt) == pytest.approx(ref["sm"], abs=TOL)
        assert metrics.weighted_f_measure(pred, gt) == pytest.approx(ref["wf"], abs=TOL)
        assert metrics.e_measure(pred, gt, "mean") == pytest.approx(ref["e_curve"].mean(), abs=TOL)


def test_degenerate_masks_match_reference():
    """Empty and full masks and constant predictions score as PySODMetrics does."""
    rng = np.random.default_rng(3)
    pred = (rng.random((20, 30)) * 255).astype(np.uint8)
    for gt in (np.zeros((20, 30), np.uint8), np.full((20, 30), 255, np.uint8)):
        ref = _reference(pred, gt)
        assert metrics.s_measure(pred, gt) == pytest.approx(ref["sm"], abs=TOL)
        assert metrics.weighted_f_measure(pred, gt) == pytest.approx(ref["wf"], abs=TOL)
        np.testing.assert_allclose(metrics.e_measure_curve(pred, gt), ref["e_curve"], atol=TOL)
        assert metrics.e_measure(pred, gt) == pytest.approx(ref["adp_e"], abs=TOL)
        assert metrics.f_measure(pred, gt) == pytest.approx(ref["adp_f"], abs=TOL)
    # a constant prediction is not stretched
    const = np.full((20, 30), 100, np.uint8)
    gt = (_blob((20, 30), 10, 15, 5, 7) * 255).astype(np.uint8)
    ref = _reference(const, gt)
    assert metrics.mae(const, gt) == pytest.approx(ref["mae"], abs=TOL)
    assert metrics.s_measure(const, gt) == pytest.approx(ref["sm"], abs=TOL)


def test_perfect_and_inverted_predictions():
    """A perfect prediction scores the best values and an inverted one the worst."""
    gt = _blob((50, 60), 25, 30, 12, 15)
    assert metrics.mae(gt, gt) == 0.0
    assert metrics.s_measure(gt, gt) == pytest.approx(1.0)
    assert metrics.weighted_f_measure(gt, gt) == pytest.approx(1.0)
    assert metrics.f_measure(gt, gt, "max") == pytest.approx(1.0)
    assert metrics.iou(gt, gt, "binary") == 1.0 and metrics.dice(gt, gt, "binary") == 1.0
    assert metrics.e_measure(gt, gt) > 0.99
    inv = ~gt
    assert metrics.mae(inv, gt) == 1.0
    assert metrics.iou(inv, gt, "binary") == 0.0
    assert metrics.s_measure(inv, gt) < 0.05
    assert metrics.e_measure(inv, gt) < 0.05


def test_scores_improve_as_prediction_approaches_mask():
    """Blending a poor map towards the mask raises every score and lowers MAE (monotone on this path)."""
    rng = np.random.default_rng(0)
    gt = _blob((60, 70), 30, 35, 14, 18)
    noise = rng.random(gt.shape)
    prev = None
    for t in (0.0, 0.3, 0.6, 0.9):
        pred = t * gt + (1 - t) * noise
        cur = (metrics.mae(pred, gt), metrics.s_measure(pred, gt), metrics.weighted_f_measure(pred, gt),
               metrics.f_measure(pred, gt, "mean"), metrics.e_measure(pred, gt, "mean"))
        if prev is not None:
            assert cur[0] < prev[0]
            assert all(c > p for c, p in zip(cur[1:], prev[1:]))
        prev = cur


def test_input_conventions():
    """Masks are read as 8-bit, [0, 1] or 0/1 integer; predictions are min-max scaled; the adaptive threshold caps at 1.
    """
    gt_u8 = np.array([[0, 128, 129, 255]], np.uint8)
    _, g = objects.prepare_object_inputs(np.zeros((1, 4)), gt_u8)
    assert g.tolist() == [[False, False, True, True]]
    _, g = objects.prepare_object_inputs(np.zeros((1, 4)), gt_u8 / 255.0)
    assert g.tolist() == [[False, False, True, True]]
    _, g = objects.prepare_object_inputs(np.zeros((1, 4)), np.array([[0, 1, 1, 0]]))  # a 0/1 integer mask
    assert g.tolist() == [[False, True, True, False]]
    p, _ = objects.prepare_object_inputs(np.array([[2.0, 4.0, 6.0, 10.0]]), gt_u8)
    np.testing.assert_allclose(p, [[0.0, 0.25, 0.5, 1.0]])
    # the F-measure threshold is min(2 * mean, 1)
    assert objects.adaptive_threshold(np.full((3, 3), 0.7)) == 1.0


@pytest.mark.parametrize("bad, msg", [
    ((np.zeros((4, 4)), np.zeros((4, 5))), "resize"),
    ((np.zeros((4,)), np.zeros((4,))), "2-D"),
    ((np.full((4, 4), np.nan), np.zeros((4, 4))), "NaN"),
    ((np.full((4, 4), 3.0), np.zeros((4, 4))), "constant"),
    ((np.zeros((0, 4)), np.zeros((0, 4))), "empty"),
])
def test_bad_input_is_a_clear_error(bad, msg):
    """Mismatched, non-2-D, NaN, constant-mask and empty inputs are InputErrors that say which."""
    with pytest.raises(InputError, match=msg):
        metrics.mae(*bad)


def test_bad_modes():
    """Unknown modes, thresholds outside [0, 1], beta2 <= 0 and no pairs are refused."""
    gt = np.zeros((4, 4), bool)
    with pytest.raises(InputError, match="mode"):
        metrics.f_measure(gt, gt, "best")
    with pytest.raises(InputError, match="threshold"):
        metrics.iou(gt, gt, 1.5)
    with pytest.raises(InputError, match="beta2"):
        metrics.f_measure(gt, gt, beta2=0)
    with pytest.raises(InputError, match="pairs"):
        metrics.object_scores([])


def test_names_exported():
    """Every name of metrics.objects is exported by salience.metrics."""
    for name in objects.__all__:
        assert name in metrics.__all__ and hasattr(metrics, name)
