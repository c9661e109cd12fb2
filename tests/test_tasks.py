"""Applications: salient-object segmentation and boxes, localisation of explanations, smart crops."""

from __future__ import annotations

import numpy as np
import pytest

import salience
from salience import metrics
from salience.errors import InputError
from salience.tasks import crop as crop_mod
from salience.tasks.crop import best_windows, centre_window, crop, window_size
from salience.tasks.localisation import energy_pointing_game, pointing_game, target_mask
from salience.tasks.segment import (
    box_iou,
    boxes_from_mask,
    evidence_box,
    mask_from_map,
    segment,
)


def _disc(shape, cy, cx, r):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


# ---- segment -----------------------------------------------------------------------------------------

def test_boxes_are_the_components_ranked_by_mass():
    """Boxes are the mask's components ranked by their share of the map's mass; tiny ones are dropped unless min_area=0.
    """
    sal = np.zeros((80, 100))
    sal[10:30, 10:40] = 0.5  # 600 px x 0.5 = 300
    sal[50:70, 60:95] = 1.0  # 700 px x 1.0 = 700
    sal[5:7, 90:92] = 1.0  # 4 px: below min_area 0.001 x 8000 = 8 px
    seg = segment(np.zeros((80, 100, 3)), saliency=sal, threshold=0.25)
    assert [b.as_tuple()[:4] for b in seg.boxes] == [(60, 50, 95, 70), (10, 10, 40, 30)]
    assert seg.boxes[0].score == pytest.approx(700 / 1004) and seg.boxes[1].score == pytest.approx(300 / 1004)
    assert seg.boxes[0].area == 700
    assert len(segment(np.zeros((80, 100, 3)), saliency=sal, threshold=0.25, min_area=0.0).boxes) == 3
    assert len(segment(np.zeros((80, 100, 3)), saliency=sal, threshold=0.25, max_boxes=1).boxes) == 1
    assert seg.mask.sum() == 600 + 700 + 4


def test_nms_drops_a_box_inside_a_better_one():
    """Non-maximum suppression drops a box lying inside a better one (nms=1 keeps both); box_iou is area over union."""
    m = np.zeros((60, 60), bool)
    m[5:55, 5:55] = True
    m[10:50, 10:50] = False  # a ring
    m[20:40, 20:40] = True  # a blob inside the ring's box
    sal = m * 1.0
    kept = boxes_from_mask(m, sal, nms=0.1)
    assert [b.as_tuple()[:4] for b in kept] == [(5, 5, 55, 55)]
    assert len(boxes_from_mask(m, sal, nms=1.0)) == 2
    assert box_iou((20, 20, 40, 40), (5, 5, 55, 55)) == pytest.approx(400 / 2500)


def test_thresholds_follow_their_definitions(photo):
    """The adaptive (min(2 mean, 1)), fixed and Otsu thresholds match their definitions (Otsu as scikit-image)."""
    sal = salience.saliency_map(photo, "spectral-residual").astype(np.float64)
    s = (sal - sal.min()) / (sal.max() - sal.min())
    m, t = mask_from_map(s, "adaptive")
    assert t == pytest.approx(min(2 * s.mean(), 1.0)) and np.array_equal(m, s >= t)
    m, t = mask_from_map(s, 0.4)
    assert t == 0.4 and np.array_equal(m, s >= 0.4)
    from skimage.filters import threshold_otsu

    q = np.floor(s * 255 + 0.5).astype(np.uint8)
    m, t = mask_from_map(s, "otsu")
    assert np.array_equal(m, q > threshold_otsu(q))
    with pytest.raises(InputError, match="otsu, adaptive"):
        mask_from_map(s, "mean")
    with pytest.raises(InputError, match=r"\[0.0, 1.0\]"):
        mask_from_map(s, 1.5)


def test_frequency_tuned_finds_a_coloured_object_on_a_plain_background():
    """The default segment finds a red disc on grey: box IoU and mask IoU above 0.8."""
    img = np.full((90, 120, 3), 0.5, np.float32)
    obj = _disc((90, 120), 40, 80, 15)
    img[obj] = (0.9, 0.1, 0.1)
    seg = segment(img)
    assert seg.method == "frequency-tuned" and len(seg.boxes) >= 1
    assert box_iou(seg.boxes[0], (65, 25, 96, 56)) > 0.8
    assert metrics.iou(seg.mask, obj, "binary") > 0.8


def test_grabcut_sharpens_a_coarse_map():
    """A blurry, offset map over a sharp object: GrabCut on the image recovers the object's outline."""
    rng = np.random.default_rng(1)
    img = np.clip(0.45 + 0.05 * rng.standard_normal((100, 120, 3)), 0, 1).astype(np.float32)
    obj = _disc((100, 120), 50, 60, 22)
    img[obj] = np.clip(np.array([0.1, 0.3, 0.9]) + 0.05 * rng.standard_normal((obj.sum(), 3)), 0, 1)
    import cv2

    coarse = cv2.GaussianBlur(_disc((100, 120), 46, 66, 20).astype(np.float64), (0, 0), 9)
    plain = segment(img, saliency=coarse, threshold=0.5)
    refined = segment(img, saliency=coarse, threshold=0.5, grabcut=True)
    assert refined.refined
    before, after = metrics.iou(plain.mask, obj, "binary"), metrics.iou(refined.mask, obj, "binary")
    assert after > before + 0.1 and after > 0.9


def test_grabcut_is_skipped_for_an_empty_mask():
    """GrabCut on an empty mask is skipped with a note, not an OpenCV error."""
    seg = segment(np.zeros((30, 30, 3)), saliency=np.zeros((30, 30)), grabcut=True)
    assert not seg.mask.any() and seg.boxes == [] and not seg.refined
    assert any("empty" in n for n in seg.notes)


def test_segment_with_any_bottom_up_method_on_real_photos(photos):
    """On a real photo every bottom-up method gives a [0, 1] map and in-image boxes ranked by score."""
    for name in ("itti", "image-signature", "spectral-residual"):
        seg = segment(photos["coffee"], name, threshold="otsu")
        h, w = photos["coffee"].shape[:2]
        assert seg.mask.shape == (h, w) and seg.saliency.min() >= 0 and seg.saliency.max() == pytest.approx(1)
        scores = [b.score for b in seg.boxes]
        assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1 + 1e-9
        for b in seg.boxes:
            assert 0 <= b.x0 < b.x1 <= w and 0 <= b.y0 < b.y1 <= h
            assert seg.mask[b.y0:b.y1, b.x0:b.x1].any()


def test_bad_arguments():
    """Bad min_area, max_boxes, a target for a bottom-up method, an unknown method and a blank evidence map are refused
    clearly."""
    img = np.zeros((20, 20, 3))
    with pytest.raises(InputError, match="min_area"):
        segment(img, saliency=np.ones((20, 20)), min_area=2)
    with pytest.raises(InputError, match="max_boxes"):
        segment(img, saliency=np.ones((20, 20)), max_boxes=0)
    with pytest.raises(InputError, match="bottom-up"):
        segment(img, "itti", target=3)
    with pytest.raises(salience.UnknownMethodError):
        segment(img, "no-such-method")
    with pytest.raises(InputError, match="blank"):
        evidence_box(img, saliency=np.zeros((20, 20)))


@pytest.mark.torch
@pytest.mark.slow
def test_evidence_box_finds_the_pasted_cat(photos):
    """Grad-CAM of the top class on a cat pasted into a grey canvas: the evidence box covers the cat."""
    pytest.importorskip("torch")
    import cv2

    cat = cv2.resize(photos["chelsea"], (110, 84))
    canvas = np.full((200, 260, 3), 0.5, np.float32)
    canvas[100:184, 140:250] = cat
    seg = segment(canvas, "gradcam")  # an explanation: the CAM paper's 20%-of-peak threshold
    assert seg.threshold == pytest.approx(0.2)
    box = evidence_box(canvas, saliency=seg.saliency)
    assert box == seg.boxes[0]
    assert box_iou(box, (140, 100, 250, 184)) > 0.3
    assert pointing_game(seg.saliency, (140, 100, 250, 184))
    assert energy_pointing_game(seg.saliency, (140, 100, 250, 184)) > 0.5


# ---- localisation ------------------------------------------------------------------------------------

def test_pointing_game_tolerance_is_a_euclidean_distance():
    """The pointing game's tolerance is a Euclidean distance to the nearest target pixel (default 15 px)."""
    sal = np.zeros((50, 50))
    sal[10, 10] = 1.0
    box = (20, 20, 30, 30)  # nearest box pixel (20, 20): distance sqrt(200) = 14.14
    assert not pointing_game(sal, box, tolerance=14)
    assert pointing_game(sal, box, tolerance=14.2)
    assert pointing_game(sal, box)  # the default 15 px of Zhang et al.
    assert pointing_game(sal, [box, (8, 8, 12, 12)], tolerance=0)
    mask = np.zeros((50, 50), bool)
    mask[10, 10] = True
    assert pointing_game(sal, mask, tolerance=0)


def test_pointing_game_constant_map_is_a_miss_with_a_warning():
    """A constant map has no peak: the pointing game counts a miss and warns."""
    with pytest.warns(metrics.DegenerateInputWarning):
        assert pointing_game(np.ones((20, 20)), (0, 0, 20, 20)) is False


def test_energy_pointing_game_is_the_share_inside():
    """The energy pointing game is the share of (positive) map mass inside the box; a blank map gives NaN with a
    warning."""
    rng = np.random.default_rng(0)
    sal = rng.random((40, 60))
    box = (10, 5, 30, 25)
    assert energy_pointing_game(sal, box) == pytest.approx(sal[5:25, 10:30].sum() / sal.sum())
    signed = sal - 0.5
    pos = np.maximum(signed, 0)
    assert energy_pointing_game(signed, box) == pytest.approx(pos[5:25, 10:30].sum() / pos.sum())
    with pytest.warns(metrics.DegenerateInputWarning):
        assert np.isnan(energy_pointing_game(np.zeros((40, 60)), box))


def test_target_mask_errors():
    """Empty boxes, boxes outside the image and masks of another size are refused."""
    with pytest.raises(InputError, match="x1 > x0"):
        target_mask((5, 5, 5, 9), (10, 10))
    with pytest.raises(InputError, match="outside"):
        target_mask((20, 20, 30, 30), (10, 10))
    with pytest.raises(InputError, match="size"):
        target_mask(np.zeros((5, 5), bool), (10, 10))


# ---- crop --------------------------------------------------------------------------------------------

def _brute(sal, wh, ww, margin, thirds):
    my, mx = int(round(margin * wh)), int(round(margin * ww))
    ih, iw = max(1, wh - 2 * my), max(1, ww - 2 * mx)
    k = np.outer(crop_mod._thirds_profile(wh), crop_mod._thirds_profile(ww))
    out = np.zeros((sal.shape[0] - wh + 1, sal.shape[1] - ww + 1))
    for y in range(out.shape[0]):
        for x in range(out.shape[1]):
            inner = sal[y + my:y + my + ih, x + mx:x + mx + iw].sum()
            out[y, x] = (1 - thirds) * inner + thirds * (sal[y:y + wh, x:x + ww] * k).sum()
    return out


@pytest.mark.parametrize("size", [(23, 12), (10, 31), (9, 14)])
@pytest.mark.parametrize("margin, thirds", [(0.0, 0.0), (0.2, 0.0), (0.0, 0.6), (0.15, 0.4)])
def test_best_window_maximises_the_objective_over_every_position(size, margin, thirds):
    """The summed-area search equals a direct evaluation of every window (full-height, full-width and
    free windows)."""
    rng = np.random.default_rng(sum(size))
    sal = rng.random((23, 31))
    ref = _brute(sal, *size, margin, thirds)
    w = best_windows(sal, size, margin=margin, thirds=thirds)[0]
    assert w.score * sal.sum() == pytest.approx(ref.max(), rel=1e-9)
    assert ref[w.y0, w.x0] == pytest.approx(ref.max(), rel=1e-9)
    assert w.share == pytest.approx(sal[w.y0:w.y1, w.x0:w.x1].sum() / sal.sum())


def test_candidates_are_ranked_and_overlap_at_most_the_limit():
    """Crop candidates are ranked, overlap at most max_overlap, and the greedy disjoint set is maximal."""
    rng = np.random.default_rng(5)
    sal = rng.random((60, 200)) ** 4
    wins = best_windows(sal, (60, 60), candidates=4, max_overlap=0.2)
    assert [w.rank for w in wins] == [1, 2, 3, 4]
    assert all(a.score >= b.score for a, b in zip(wins, wins[1:]))
    for i, a in enumerate(wins):
        for b in wins[i + 1:]:
            assert box_iou((a.x0, a.y0, a.x1, a.y1), (b.x0, b.y0, b.x1, b.y1)) <= 0.2 + 1e-12
    disjoint = best_windows(sal, (60, 60), candidates=10, max_overlap=0.0)
    assert 2 <= len(disjoint) <= 3  # at most three 60-px windows fit side by side in 200 px
    # greedy and maximal: every position left out overlaps a chosen window
    for x in range(200 - 60 + 1):
        assert any(box_iou((x, 0, x + 60, 60), (w.x0, 0, w.x1, 60)) > 0 for w in disjoint)


def test_crop_keeps_the_mass_not_the_peak():
    """A single bright dot on the left, a large salient region on the right: the crop keeps the region
    (centring on the arg-max would keep the dot)."""
    sal = np.zeros((100, 300))
    sal[50, 20] = 1.0
    sal[20:80, 200:280] = 0.5
    w = crop(np.zeros((100, 300, 3)), "1:1", saliency=sal)[0]
    assert w.x0 <= 200 and w.x1 >= 280 and w.share > 0.99
    c = centre_window((100, 300), (100, 100))
    assert (c.x0, c.x1) == (100, 200)


def test_blank_map_gives_the_centre_crop():
    """A blank map gives the centre crop (ties go to the centre)."""
    w = crop(np.zeros((90, 160, 3)), "1:1", saliency=np.zeros((90, 160)))[0]
    c = centre_window((90, 160), (90, 90))
    assert (w.x0, w.y0, w.x1, w.y1) == (c.x0, c.y0, c.x1, c.y1) == (35, 0, 125, 90)


def test_window_sizes():
    """window_size gives the largest window of a ratio, a scaled one or an exact size, and refuses bad aspects."""
    assert window_size((600, 800), "16:9") == (450, 800)
    assert window_size((600, 800), "1:1") == (600, 600)
    assert window_size((600, 800), "9:16") == (600, 338)
    assert window_size((600, 800), (4, 3)) == (600, 800)
    assert window_size((600, 800), "1:1", scale=0.5) == (300, 300)
    assert window_size((600, 800), "200x100") == (100, 200)
    for bad in ("900x100", "16-9", "0:1", -1.0):
        with pytest.raises(InputError):
            window_size((600, 800), bad)


def test_crop_on_a_real_photo_with_every_bottom_up_method(photos):
    """Every bottom-up method crops a real photo at the asked size; the centre-bias map gives the centre crop."""
    img = photos["astronaut"]
    for m in ("itti", "spectral-residual", "image-signature", "frequency-tuned", "centre-bias"):
        w = crop(img, "9:16", method=m, candidates=2)[0]
        assert (w.height, w.width) == window_size(img.shape[:2], "9:16")
        assert 0 < w.share <= 1 + 1e-9
    # the centre-bias map's best window is the centre crop
    w = crop(img, "9:16", method="centre-bias")[0]
    c = centre_window(img.shape[:2], window_size(img.shape[:2], "9:16"))
    assert abs(w.x0 - c.x0) <= 1 and w.y0 == c.y0


def test_window_search_rejects_bad_maps():
    """Negative maps, windows larger than the map and a margin over 0.49 are refused."""
    with pytest.raises(InputError, match="non-negative"):
        best_windows(-np.ones((10, 10)), (5, 5))
    with pytest.raises(InputError, match="fit"):
        best_windows(np.ones((10, 10)), (11, 5))
    with pytest.raises(InputError, match="margin"):
        best_windows(np.ones((10, 10)), (5, 5), margin=0.6)


def test_a_signed_map_keeps_its_positive_evidence():
    """A signed map keeps its positive part: negative evidence is not an object and does not stretch the scale."""
    sal = np.zeros((40, 40))
    sal[5:15, 5:15] = 1.0  # evidence for
    sal[25:35, 25:35] = -3.0  # evidence against: not an object, and it must not stretch the scale
    seg = segment(np.zeros((40, 40, 3)), saliency=sal, threshold=0.5)
    assert [b.as_tuple()[:4] for b in seg.boxes] == [(5, 5, 15, 15)]
    assert seg.saliency.min() == 0.0 and seg.saliency[10, 10] == 1.0


def test_default_crop_is_image_signature_with_the_prior(photos):
    """The default crop is image-signature with the documented blur and centre-bias prior."""
    img = photos["coffee"]
    assert crop(img, "9:16") == crop(img, "9:16", method="image-signature", blur=0.02, centre_bias=0.3)
    assert crop_mod.DEFAULT_CROP_PRIOR == {"blur": 0.02, "centre_bias": 0.3}
