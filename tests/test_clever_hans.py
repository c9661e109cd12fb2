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
