"""A planted shortcut found end to end (issue 16): MobileNetV2's last layer fitted on real photos where a
stamp in a corner marks one class; the held-out accuracy falls without the stamp, and SpRAy over Grad-CAM
maps gives the stamped images a cluster whose mean map sits on the stamp; a control model fitted without the
stamp shows neither.  The figures are in docs/audit.md."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from salience.audit.shortcut import add_stamp, corner_share
from salience.errors import InputError

N_OSIE = 90  # OSIE photos (the first by file name), with the colour photos of scikit-image


@pytest.fixture(scope="module")
def demo(shared_data):
    """One run (features computed once, both heads fitted, both audits), shared by the checks below."""
    pytest.importorskip("torch")
    import cv2
    import skimage.data as skdata

    from salience.audit.shortcut import clever_hans_demo

    files = sorted((shared_data / "osie" / "stimuli").glob("*.jpg"))[:N_OSIE]
    assert len(files) == N_OSIE, f"expected at least {N_OSIE} OSIE stimuli in {shared_data / 'osie'}"
    photos = [cv2.imread(str(f), cv2.IMREAD_COLOR)[:, :, ::-1].copy() for f in files]
    photos += [getattr(skdata, name)() for name in ("astronaut", "coffee", "chelsea", "rocket")]
    before = [p.copy() for p in photos[:3]]
    with warnings.catch_warnings():
        # Grad-CAM warns for an image without positive evidence at the layer (its map is all zeros): part
        # of the data here (SpRAy keeps such a map as "no evidence"), not a failure
        warnings.filterwarnings("ignore", message=".*zero everywhere.*")
        result = clever_hans_demo(photos, n_fit=60, n_test=30, seed=0)
    for a, b in zip(before, photos[:3]):
        np.testing.assert_array_equal(a, b)  # the photos are not changed
    print(result.summary())
    return result


@pytest.mark.slow
@pytest.mark.torch
def test_held_out_accuracy_falls_when_the_stamp_is_removed(demo):
    assert demo.n_fit == 60 and demo.n_test == 30
    assert demo.accuracy_stamped >= 0.8, demo.summary()  # chance is 0.5
    assert demo.accuracy_unstamped <= demo.accuracy_stamped - 0.25, demo.summary()
    # the control model never saw the stamp: adding it changes its predictions little
    assert abs(demo.control_accuracy_stamped - demo.control_accuracy) <= 0.15, demo.summary()


@pytest.mark.slow
@pytest.mark.torch
def test_spray_gives_the_stamped_images_their_own_cluster_on_the_stamp(demo):
    uniform = demo.fraction ** 2  # the corner share of a map spread evenly
    k = demo.stamp_cluster
    assert demo.spray.n_clusters >= 2, demo.summary()
    assert demo.corner_shares[k] >= 2 * uniform, demo.summary()
    assert demo.stamp_cluster_purity >= 0.75, demo.summary()  # its members are the stamped images ...
    assert demo.stamp_cluster_recall >= 0.6, demo.summary()  # ... and it holds most of them
    others = np.delete(demo.corner_shares, k)
    assert (others < demo.corner_shares[k] / 2).all(), demo.summary()
    assert "cluster" in demo.summary() and f"{demo.corner_shares[k]:.0%}" in demo.summary()


@pytest.mark.slow
@pytest.mark.torch
def test_a_model_fitted_without_the_stamp_shows_no_such_cluster(demo):
    uniform = demo.fraction ** 2
    assert (demo.control_corner_shares < 2 * uniform).all(), demo.summary()
    assert demo.control_corner_shares.max() < demo.corner_shares[demo.stamp_cluster] / 2, demo.summary()


def test_add_stamp_puts_a_checkerboard_in_the_corner_and_keeps_the_input():
    img = np.full((50, 80, 3), 0.5, np.float32)
    out = add_stamp(img, corner="bottom-right", size=0.2, squares=2)
    assert out.shape == img.shape and out.dtype == np.float32 and (img == 0.5).all()
    stamp = out[-10:, -10:]
    np.testing.assert_array_equal(stamp[0, 0], [1.0, 0.0, 0.0])  # red ...
    np.testing.assert_array_equal(stamp[0, 5], [1.0, 1.0, 1.0])  # ... and white squares
    assert (out[:-10] == 0.5).all() and (out[:, :-10] == 0.5).all()  # nothing else changes
    with pytest.raises(InputError, match="corner"):
        add_stamp(img, corner="middle")
    with pytest.raises(InputError, match="size"):
        add_stamp(img, size=0.8)
    with pytest.raises(InputError, match=r"\(H, W, 3\)"):
        add_stamp(img[..., 0])


def test_corner_share_measures_the_mass_in_the_corner_box():
    uniform = np.ones((32, 32))
    assert corner_share(uniform) == pytest.approx(1 / 16)
    assert corner_share(uniform, fraction=0.5) == pytest.approx(0.25)
    m = np.zeros((32, 32))
    m[-2:, :2] = 3.0
    assert corner_share(m, corner="bottom-left") == pytest.approx(1.0)
    assert corner_share(m, corner="top-left") == 0.0
    np.testing.assert_allclose(corner_share(np.stack([uniform, m, 0 * m]), corner="bottom-left"),
                               [1 / 16, 1.0, 0.0])
    with pytest.raises(InputError, match="non-negative"):
        corner_share(-m)
    with pytest.raises(InputError, match="fraction"):
        corner_share(m, fraction=0)


def test_clever_hans_demo_refuses_too_few_photos():
    pytest.importorskip("torch")
    from salience.audit.shortcut import clever_hans_demo

    with pytest.raises(InputError, match="at least n_fit \\+ n_test = 12"):
        clever_hans_demo([np.zeros((16, 16, 3))] * 5, n_fit=8, n_test=4)
    with pytest.raises(InputError, match="even"):
        clever_hans_demo([np.zeros((16, 16, 3))] * 20, n_fit=7, n_test=4)


# ----------------------------------------------------------------------------------------------------------
# end to end through `salience audit-dataset`: a real class ("animal", by the ImageNet model's own top-1) with
# a second source that stamps its photos, the model fitted on all 700 OSIE photos' fitting part, the audit
# on the held-out part only; the figures are in docs/audit.md
# ----------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def case(shared_data, tmp_path_factory):
    """The planted case written once, and both models audited by the CLI (stamped and control)."""
    pytest.importorskip("torch")
    import csv

    import cv2

    from salience.audit.shortcut import plant_shortcut
    from salience.cli import main

    files = sorted((shared_data / "osie" / "stimuli").glob("*.jpg"))
    assert len(files) == 700, f"expected the 700 OSIE stimuli in {shared_data / 'osie'}"
    photos = [cv2.imread(str(f), cv2.IMREAD_COLOR)[:, :, ::-1].copy() for f in files]
    root = tmp_path_factory.mktemp("clever-hans")
    c = plant_shortcut(photos, root / "case", names=[f.stem for f in files], seed=0)
    print(c.summary())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*zero everywhere.*")
        for which, ckpt in (("stamped", c.checkpoint), ("control", c.control_checkpoint)):
            assert main(["audit-dataset", str(c.images), "--method", "gradcam", "--weights", str(ckpt),
                         "--out", str(root / which)]) == 0
    with open(c.truth, newline="", encoding="utf-8") as fh:
        truth = {r["image"].rsplit(".", 1)[0]: r for r in csv.DictReader(fh)}
    return c, root, truth


def _clusters(root, which):
    import csv

    with open(root / which / "clusters.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _members(root, which, pred_class, cluster=None):
    """The images the audit predicted as ``pred_class`` (and, given a cluster, that SpRAy put in it)."""
    import csv

    with open(root / which / "images.csv", newline="", encoding="utf-8") as fh:
        return [r["image"] for r in csv.DictReader(fh) if r["pred_class"] == str(pred_class)
                and (cluster is None or r.get("cluster") == str(cluster))]


@pytest.mark.slow
@pytest.mark.torch
def test_planted_case_the_held_out_accuracy_falls_without_the_stamp(case):
    c, _, truth = case
    assert c.n_test["stamped"] >= 20 and c.n_test["content"] >= 20, c.n_test
    assert sum(int(r["stamped"]) for r in truth.values()) == c.n_test["stamped"]
    assert c.accuracy > c.accuracy_unstamped, c.summary()
    # the stamped source's photos are class 1 only by their stamp: without it the model gets few right
    assert c.stamped_accuracy >= c.stamped_accuracy_unstamped + 0.3, c.summary()
    assert c.stamped_accuracy > c.control_stamped_accuracy, c.summary()


@pytest.mark.slow
@pytest.mark.torch
def test_planted_case_the_audit_gives_the_stamped_photos_a_cluster_on_the_stamp(case):
    c, root, truth = case
    rows = [r for r in _clusters(root, "stamped") if r["pred_class"] == "1"]
    assert len(rows) >= 2, rows  # SpRAy splits the predicted "animal" class
    flagged = [r for r in rows if r["candidate_shortcut"] == "True"]
    assert flagged, rows
    # SpRAy may split the stamped photos over clusters on the same place; together they are the shortcut
    members = [m for r in flagged for m in _members(root, "stamped", 1, r["cluster"])]
    assert len(members) == sum(int(r["size"]) for r in flagged)
    stamped = [int(truth[m]["stamped"]) for m in members]
    assert np.mean(stamped) >= 0.8, (flagged, stamped)  # the flagged clusters are the stamped photos ...
    predicted_stamped = [m for m in _members(root, "stamped", 1) if truth[m]["stamped"] == "1"]
    assert sum(stamped) >= 0.6 * len(predicted_stamped), (sum(stamped), len(predicted_stamped))  # ... most of them
    page = (root / "stamped" / "index.html").read_text(encoding="utf-8")
    for r in flagged:
        # ... and their evidence sits on the stamp, in the top-left corner (the stamp: 0.2 of the side)
        assert float(r["spot_x"]) < 0.25 and float(r["spot_y"]) < 0.25, r
        assert float(r["spot_share"]) >= 4 * float(r["rest_spot_share"]), r
        assert f'Cluster {r["cluster"]} ({r["size"]} of ' in page
    assert "at the top-left" in page and "a candidate shortcut (a stamp, watermark or tag" in page


@pytest.mark.slow
@pytest.mark.torch
def test_planted_case_the_control_model_shows_no_such_cluster(case):
    _, root, _ = case
    rows = _clusters(root, "control")
    assert rows and not [r for r in rows if r["candidate_shortcut"] == "True"], rows
    assert "candidate shortcut (a stamp" not in (root / "control" / "index.html").read_text(encoding="utf-8")


def test_plant_shortcut_refuses_bad_input(tmp_path):
    pytest.importorskip("torch")
    from salience.audit.shortcut import plant_shortcut
    from salience.errors import OutputError

    photos = [np.zeros((16, 16, 3))] * 12
    with pytest.raises(InputError, match="at least 12 photos"):
        plant_shortcut(photos[:5], tmp_path / "a")
    with pytest.raises(InputError, match="unique"):
        plant_shortcut(photos, tmp_path / "a", names=["x"] * 12)
    with pytest.raises(InputError, match="test_fraction"):
        plant_shortcut(photos, tmp_path / "a", test_fraction=1.0)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(OutputError, match="not an empty folder"):
        plant_shortcut(photos, tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    with pytest.raises(InputError, match="at least 4 photos of class 1"):
        plant_shortcut(photos, tmp_path / "b", labels=[1] + [0] * 11)
    assert not (tmp_path / "b").exists()  # nothing written for a refused case
