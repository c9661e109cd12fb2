"""salience.viz: grayscale, colormaps, overlays, feature panels, scanpath drawings."""

from __future__ import annotations

import numpy as np
import pytest

from salience import viz
from salience.errors import InputError


def test_to_gray_brightness_is_saliency():
    """to_gray maps low saliency to dark and high to bright uint8, keeping the order (min-max)."""
    m = np.array([[0.0, 0.2], [0.6, 1.0]])
    g = viz.to_gray(m)
    assert g.dtype == np.uint8 and g.shape == (2, 2)
    assert g[0, 0] == 0 and g[1, 1] == 255 and g[0, 0] < g[0, 1] < g[1, 0] < g[1, 1]
    np.testing.assert_array_equal(viz.to_gray(m * 7 + 3), g)  # min-max: only the order matters
    np.testing.assert_array_equal(viz.to_gray(np.array([[0.5]]), normalize=False), [[128]])


@pytest.mark.parametrize("cmap", list(viz.COLORMAPS))
def test_every_colormap_is_a_256_entry_rgb_table(cmap):
    """Every named colormap gives uint8 RGB with a real ramp of colours."""
    ramp = np.linspace(0, 1, 256).reshape(16, 16)
    rgb = viz.colorize(ramp, cmap)
    assert rgb.shape == (16, 16, 3) and rgb.dtype == np.uint8
    assert len({tuple(c) for c in rgb.reshape(-1, 3)}) > 64  # a real ramp, not a constant


@pytest.mark.parametrize("cmap", ["viridis", "inferno", "magma", "plasma"])
def test_colormaps_match_matplotlib(cmap):
    """OpenCV's perceptual tables are matplotlib's: the same colours within 8-bit rounding."""
    mpl = pytest.importorskip("matplotlib")
    ours = viz.colorize(np.linspace(0, 1, 256)[None, :], cmap)[0].astype(int)
    ref = np.round(mpl.colormaps[cmap](np.arange(256))[:, :3] * 255).astype(int)
    assert np.abs(ours - ref).max() <= 3


def test_jet_runs_from_blue_to_red():
    """jet shows low values blue, middle green and high red."""
    rgb = viz.colorize(np.array([[0.0, 0.5, 1.0]]), "jet")[0].astype(int)
    assert rgb[0, 2] > 100 and rgb[0, 0] < 10  # low: blue
    assert rgb[2, 0] > 100 and rgb[2, 2] < 10  # high: red
    assert rgb[1, 1] > 200  # middle: green-ish


def test_gray_colormap_equals_to_gray():
    """The gray colormap is to_gray repeated on the three channels."""
    m = np.random.default_rng(0).random((5, 6))
    rgb = viz.colorize(m, "gray")
    for c in range(3):
        np.testing.assert_array_equal(rgb[..., c], viz.to_gray(m))


def test_unknown_colormap():
    """An unknown colormap is an InputError that lists the known ones."""
    with pytest.raises(InputError, match="unknown colormap 'rainbowz'.*jet"):
        viz.colorize(np.zeros((2, 2)), "rainbowz")


def test_overlay_blends_with_alpha(photo):
    """overlay is the image at alpha 0, the heatmap at alpha 1, and their mean at 0.5."""
    m = np.zeros(photo.shape[:2], np.float32)
    m[10:20, 30:40] = 1.0
    img_u8 = np.floor(np.asarray(photo) * 255 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(viz.overlay(photo, m, alpha=0.0), img_u8)
    np.testing.assert_array_equal(viz.overlay(photo, m, alpha=1.0), viz.colorize(m, "jet"))
    half = viz.overlay(img_u8, m, alpha=0.5).astype(int)
    expect = (img_u8.astype(int) + viz.colorize(m).astype(int)) / 2
    assert np.abs(half - expect).max() <= 1


def test_overlay_size_mismatch_is_an_error_unless_resize(photo):
    """A map of another size is refused unless resize=True, which resizes it."""
    small = np.zeros((8, 8))
    small[2, 2] = 1
    with pytest.raises(InputError, match="8 x 8.*128 x 128.*resize=True"):
        viz.overlay(photo, small)
    out = viz.overlay(photo, small, resize=True)
    assert out.shape == photo.shape and out.dtype == np.uint8


@pytest.mark.parametrize("alpha", [-0.1, 1.5, "half", float("nan")])
def test_overlay_bad_alpha(photo, alpha):
    """alpha outside [0, 1] is an InputError."""
    with pytest.raises(InputError, match="alpha"):
        viz.overlay(photo, np.zeros(photo.shape[:2]), alpha=alpha)


def test_overlay_bad_inputs():
    """A NaN map or a two-channel image is an InputError."""
    with pytest.raises(InputError):
        viz.overlay(np.zeros((4, 4, 3)), np.full((4, 4), np.nan))
    with pytest.raises(InputError):
        viz.overlay(np.zeros((4, 4, 2)), np.zeros((4, 4)))


def test_feature_panel_of_a_dict_places_labelled_tiles():
    """A dict of maps becomes labelled tiles in a grid, unused cells blank."""
    maps = {"left": np.tile(np.linspace(0, 1, 10), (10, 1)), "flat": np.zeros((3, 3)), "dot": np.eye(4)}
    p = viz.feature_panel(maps, cols=2, tile_width=64)
    assert p.shape == (2 * (64 + 20), 128, 3) and p.dtype == np.uint8
    tile = p[20:84, 0:64, 0].astype(int)
    assert tile[:, 5:15].mean() < tile[:, -15:-5].mean()  # the ramp shows left dark, right bright
    assert p[0:20, 0:64].min() < 100 and p[0:20, 0:64].max() > 200  # dark label strip with white text
    assert (p[104:, 64:] == 255).all()  # the unused fourth cell stays blank


def test_feature_panel_bad_inputs():
    """An empty dict, a bare array, a tiny tile width or bad cols are InputErrors."""
    with pytest.raises(InputError, match="empty"):
        viz.feature_panel({})
    with pytest.raises(InputError, match="IttiResult"):
        viz.feature_panel(np.zeros((4, 4)))
    with pytest.raises(InputError, match="tile_width"):
        viz.feature_panel({"a": np.zeros((2, 2))}, tile_width=4)
    with pytest.raises(InputError, match="cols"):
        viz.feature_panel({"a": np.zeros((2, 2))}, cols=0)
    with pytest.raises(InputError, match="2-D"):
        viz.feature_panel({"a": np.zeros((2, 2, 2))})


def test_feature_panel_of_an_itti_result_shows_all_45_maps_and_the_image(photo):
    """An Itti-Koch result's panel holds the image, the saliency map, 3 conspicuity and 42 feature maps."""
    import salience

    res = salience.itti_koch(photo, return_intermediates=True)
    assert len(res.feature_maps) == 42 and len(res.conspicuity) == 3
    p = viz.feature_panel(res, image=photo, tile_width=64)
    rows = 1 + 42 // 6  # image, saliency, 3 conspicuity on the first row; then one feature group per row
    assert p.shape == (rows * (64 + 20), 6 * 64, 3)
    assert (p[20:84, 5 * 64 + 1:] == 255).all()  # the sixth cell of the first row is left blank
    assert p[84 + 20:2 * 84, 0:64].std() > 0  # the second row starts with a feature map


def test_draw_scanpath_marks_the_points_and_joins_them():
    """draw_scanpath draws a circle at each point and a line between consecutive points."""
    img = np.zeros((100, 120, 3), np.float32)
    pts = [(30, 40), (90, 70)]
    out = viz.draw_scanpath(img, pts, radius=10, color=(255, 0, 0))
    assert out.shape == (100, 120, 3) and out.dtype == np.uint8
    red = out[..., 0] > 128
    assert red[40, 20] or red[40, 40]  # on the first circle (x +- radius)
    assert red[55, 60]  # on the line between the two points, halfway
    assert not red[5, 110]  # far from everything
    assert not img.any()  # input untouched


def test_draw_scanpath_accepts_attended_points():
    """draw_scanpath takes the points scanpath() returns (objects with x and y)."""
    from types import SimpleNamespace

    pts = [SimpleNamespace(x=10, y=10, value=1.0, rank=1), SimpleNamespace(x=50, y=20, value=0.5, rank=2)]
    out = viz.draw_scanpath(np.zeros((40, 60, 3), np.uint8), pts)
    assert out.any()


@pytest.mark.parametrize("pts,radius,match", [
    ([(200, 10)], None, "outside"), ([(-3, 10)], None, "outside"), ([(1, float("nan"))], None, "non-finite"),
    ([("a", 1)], None, "non-numeric"), ([5], None, r"\(x, y\)"), ([(1, 1)], 0, "radius"), ([(1, 1)], "r", "radius"),
])
def test_draw_scanpath_bad_inputs(pts, radius, match):
    """Points outside the image, non-finite, non-numeric or malformed points and a bad radius are InputErrors."""
    with pytest.raises(InputError, match=match):
        viz.draw_scanpath(np.zeros((20, 30, 3)), pts, radius=radius)


def test_draw_scanpath_with_no_points_returns_the_image():
    """No points gives the image itself as uint8."""
    img = np.full((5, 6, 3), 0.5, np.float32)
    np.testing.assert_array_equal(viz.draw_scanpath(img, []), np.full((5, 6, 3), 128, np.uint8))
