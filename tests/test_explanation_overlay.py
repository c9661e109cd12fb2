"""Explanation.overlay(): a thin method over salience.viz.overlay."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from salience.attribution import Explanation  # noqa: E402
from salience.errors import InputError  # noqa: E402
from salience.viz import overlay  # noqa: E402


def _expl() -> Explanation:
    maps = torch.zeros(2, 4, 6)
    maps[1, 2, 3] = 1.0
    maps[0, 0, 0] = 1.0
    return Explanation(maps, torch.tensor([0, 1]), torch.zeros(2), "gradcam")


def test_overlay_is_viz_overlay_of_the_chosen_map() -> None:
    e, img = _expl(), np.full((4, 6, 3), 0.5, np.float32)
    got = e.overlay(img, index=1, cmap="viridis", alpha=0.3)
    assert got.dtype == np.uint8 and got.shape == (4, 6, 3)
    assert np.array_equal(got, overlay(img, e.maps[1].numpy(), "viridis", 0.3))
    assert not np.array_equal(got, e.overlay(img, index=0, cmap="viridis", alpha=0.3))


def test_overlay_resizes_to_the_photo_unless_told_not_to() -> None:
    e, big = _expl(), np.zeros((8, 12, 3), np.uint8)
    assert e.overlay(big).shape == (8, 12, 3)
    assert np.array_equal(e.overlay(big), overlay(big, e.maps[0].numpy(), resize=True))
    with pytest.raises(InputError):
        e.overlay(big, resize=False)


@pytest.mark.parametrize("bad", [2, -3, 1.0, True, "0"])
def test_overlay_bad_index(bad: object) -> None:
    with pytest.raises(InputError, match="index"):
        _expl().overlay(np.zeros((4, 6, 3), np.float32), index=bad)  # type: ignore[arg-type]


def _tiny_loaded_model():
    from salience.attribution import LoadedModel
    from salience.attribution.models import IMAGENET_MEAN, IMAGENET_STD, make_preprocess

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
    return LoadedModel(net, make_preprocess(IMAGENET_MEAN, IMAGENET_STD, crop_size=56, resize_size=64),
                       ["a", "b", "c"], "0", "tiny")


def test_overlay_undoes_the_preprocessing_crop_on_the_original_photo() -> None:
    """A map of a centre-cropped input is drawn where the crop came from: a 120 x 200 photo resized to 64 x 107
    and centre-cropped to 56 x 56 (rows 4-60, columns 26-82 of the resized image) covers rows 7.5-112.5 and
    columns 48.6-153.3 of the photo; outside that box, the photo shows unchanged."""
    from salience.attribution import View, explain
    from salience.viz import image_to_uint8

    lm = _tiny_loaded_model()
    rng = np.random.default_rng(0)
    photo = rng.random((120, 200, 3)).astype(np.float32)
    x = lm.preprocess(photo)  # crop=True
    e = explain(lm, x, "gradcam")
    v = e.view
    assert isinstance(v, View) and (v.height, v.width) == (120, 200)
    assert (v.top, v.left, v.box_height, v.box_width) == pytest.approx(
        (4 * 120 / 64, 26 * 200 / 107, 56 * 120 / 64, 56 * 200 / 107), rel=1e-12)
    t, left, h, w = e.view.pixels()
    assert (t, left, t + h, left + w) == (8, 49, 112, 153)
    got = e.overlay(photo, alpha=0.6)
    plain = image_to_uint8(photo)
    inside = np.zeros(photo.shape[:2], bool)
    inside[t:t + h, left:left + w] = True
    assert np.array_equal(got[~inside], plain[~inside])  # cut off by the crop: no heat there
    assert np.array_equal(got[inside].reshape(h, w, 3),
                          overlay(plain[t:t + h, left:left + w], e.maps[0].numpy(), alpha=0.6, resize=True))
    # a hot spot at the map's top-left corner lands at the crop box's top-left corner of the photo
    hot = Explanation(torch.zeros(1, 56, 56), None, torch.zeros(1), "gradcam", extras={"view": e.view})
    hot.maps[0, :4, :4] = 1.0
    heat = hot.overlay(np.zeros((120, 200, 3), np.float32), cmap="gray", alpha=1.0)[..., 0].astype(float)
    ys, xs = np.nonzero(heat > 128)
    assert t <= ys.min() and ys.max() < t + h * 6 / 56 and left <= xs.min() and xs.max() < left + w * 6 / 56
    # the old behaviour on request, and the model input's own pixels as they are
    assert np.array_equal(e.overlay(photo, view=False), overlay(photo, e.maps[0].numpy(), resize=True))
    own = np.full((56, 56, 3), 0.5, np.float32)
    assert np.array_equal(e.overlay(own), overlay(own, e.maps[0].numpy()))
    with pytest.raises(InputError, match=r"made from a photo of 120 x 200 pixels .* view=False"):
        e.overlay(np.zeros((90, 90, 3), np.float32))
    with pytest.raises(InputError, match="view must be"):
        e.overlay(photo, view=(0, 0, 1, 1))


def test_without_a_crop_the_view_is_the_whole_photo_and_show_uses_it() -> None:
    pytest.importorskip("matplotlib")
    from salience.attribution import View, explain

    lm = _tiny_loaded_model()
    photo = np.random.default_rng(1).random((120, 200, 3)).astype(np.float32)
    e = explain(lm, lm.preprocess(photo, crop=False), "gradcam")
    assert e.view == View(120, 200, 0.0, 0.0, 120.0, 200.0)
    assert np.array_equal(e.overlay(photo), overlay(photo, e.maps[0].numpy(), resize=True))
    cropped = explain(lm, lm.preprocess(photo), "gradcam")
    fig = cropped.show(photo)
    shown = fig.axes[0].images[0].get_array()
    assert np.array_equal(np.asarray(shown), cropped.overlay(photo))
    # a batch made by hand carries no view: the map is stretched over the image, as before
    assert "view" not in explain(lm, torch.cat([lm.preprocess(photo)] * 2), "gradcam").extras
