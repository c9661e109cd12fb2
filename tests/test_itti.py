"""Tests of the Itti-Koch-Niebur (1998) model: hand-computed features and N(.), properties, parameters."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from PIL import Image

import salience
from salience.bottomup import itti as itti_mod
from salience.bottomup.itti import IttiParams, IttiResult, itti_koch, itti_koch_map, normalize_map
from salience.bottomup.pyramid import expand_bilinear, gaussian_pyramid, laplacian_level, level_offset
from salience.errors import ImageReadError, InputError


def _gray(h: int, w: int, value: float = 0.5) -> np.ndarray:
    return np.full((h, w, 3), value, np.float32)


def _smooth_random(shape: tuple[int, int], seed: int) -> np.ndarray:
    import cv2

    img = cv2.GaussianBlur(np.random.default_rng(seed).random((*shape, 3)).astype(np.float32), (0, 0), 2.0)
    return ((img - img.min()) / (img.max() - img.min())).astype(np.float32)


# ---- hand-computed pieces --------------------------------------------------------------------------------

def _paper_colours(rgb: np.ndarray, hue_threshold: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """R - G and B - Y written out literally from the paper's definitions (float64, per pixel)."""
    rgb = rgb.astype(np.float64)
    i = rgb.mean(axis=2)
    ok = i > hue_threshold * i.max()
    n = np.where(ok[..., None], rgb / np.where(ok, i, 1.0)[..., None], 0.0)
    r, g, b = n[..., 0], n[..., 1], n[..., 2]
    big_r = np.maximum(r - (g + b) / 2, 0)
    big_g = np.maximum(g - (r + b) / 2, 0)
    big_b = np.maximum(b - (r + g) / 2, 0)
    big_y = np.maximum((r + g) / 2 - np.abs(r - g) / 2 - b, 0)
    return big_r - big_g, big_b - big_y


def test_early_colour_features_match_the_paper_definitions():
    """I, R-G and B-Y equal the paper's formulas, including hue decoupling below max(I)/10."""
    img = np.array([[[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.05, 0.0, 0.0]],
                    [[0.2, 0.7, 0.4], [1.0, 1.0, 1.0], [0.3, 0.3, 0.9], [0.0, 0.0, 0.0]]], np.float32)
    i, rg, by = itti_mod._early_features(img, IttiParams())
    want_rg, want_by = _paper_colours(img)
    np.testing.assert_allclose(i, img.mean(axis=2), atol=1e-6)
    np.testing.assert_allclose(rg, want_rg, atol=1e-5)
    np.testing.assert_allclose(by, want_by, atol=1e-5)
    # pure red: R = 3 after normalisation by I = 1/3; yellow: Y = 1.5; the dark red pixel is below threshold
    assert rg[0, 0] == pytest.approx(3.0, abs=1e-5) and by[0, 1] == pytest.approx(-1.5, abs=1e-5)
    assert rg[0, 3] == 0.0 and by[0, 3] == 0.0


def test_early_colour_features_on_a_photo_match_the_paper(photos):
    """On a real photo the opponent signals equal a literal float64 implementation of the definitions."""
    img = photos["coffee"]
    _, rg, by = itti_mod._early_features(img, IttiParams())
    want_rg, want_by = _paper_colours(img)
    np.testing.assert_allclose(rg, want_rg, atol=2e-5)
    np.testing.assert_allclose(by, want_by, atol=2e-5)


def test_normalization_single_peak_keeps_height_two_equal_peaks_cancel():
    """N(.): one peak -> factor (1-0)^2 = 1; two equal peaks -> (1-1)^2 = 0; peaks 1 and 0.5 -> 0.25."""
    m = np.zeros((30, 30), np.float32)
    m[5, 5] = 1.0
    assert normalize_map(m).max() == pytest.approx(1.0)
    m2 = m.copy()
    m2[20, 20] = 1.0
    assert normalize_map(m2).max() == pytest.approx(0.0, abs=1e-7)
    m3 = m.copy()
    m3[20, 20] = 0.5
    np.testing.assert_allclose(normalize_map(m3), m3 * 0.25, atol=1e-7)


def test_normalization_counts_a_plateau_once_and_ignores_tiny_maxima():
    """A flat-topped peak is one maximum (not many), and maxima below 10 % of the range are not counted."""
    m = np.zeros((30, 30), np.float32)
    m[10:14, 10:14] = 1.0  # a 4 x 4 plateau: one maximum, so weight 1
    m[25, 25] = 0.05  # below local_max_threshold: ignored
    assert normalize_map(m).max() == pytest.approx(1.0)
    assert normalize_map(m, local_max_threshold=0.01).max() == pytest.approx((1 - 0.05) ** 2, rel=1e-5)


def test_normalization_of_a_flat_map_is_zero():
    """A flat map (no structure) normalises to zeros, not NaN."""
    for method in ("local-maxima", "iterative"):
        out = normalize_map(np.full((12, 9), 0.3, np.float32), method)
        assert out.dtype == np.float32 and np.all(out == 0)


def test_iterative_normalization_suppresses_the_weaker_of_two_peaks():
    """The 2001 rule makes a strong peak win over a weaker one, more than plain min-max scaling does."""
    m = np.zeros((64, 64), np.float32)
    m[20, 20] = 1.0
    m[44, 44] = 0.6
    out = normalize_map(m, "iterative", iterations=5)
    assert np.isfinite(out).all() and out.min() >= 0
    assert out[20, 20] > 0 and out[44, 44] / out[20, 20] < 0.6


# ---- pyramid geometry ------------------------------------------------------------------------------------

def test_pyramid_levels_and_bilinear_expansion_keep_sample_positions():
    """Level-k pixel i sits on image pixel 2^k i: expanding a coarse delta puts its peak back there."""
    assert [p.shape for p in gaussian_pyramid(np.zeros((480, 640), np.float32), 9)][-1] == (2, 3)
    assert level_offset((480, 640), (30, 40)) == 4
    coarse = np.zeros((30, 40), np.float32)
    coarse[10, 20] = 1.0
    fine = expand_bilinear(coarse, (480, 640))
    assert np.unravel_index(fine.argmax(), fine.shape) == (160, 320)
    with pytest.raises(InputError):
        level_offset((480, 640), (31, 40))


def test_laplacian_of_a_uniform_image_is_zero():
    """The band-pass level is exactly zero where the image is uniform (zero-mean orientation input)."""
    pyr = gaussian_pyramid(np.full((97, 131), 0.7, np.float32), 4)
    assert np.abs(laplacian_level(pyr[1], pyr[2])).max() < 1e-6


# ---- properties of the model -----------------------------------------------------------------------------

@pytest.mark.parametrize("where", [(0.5, 0.5), (0.3, 0.7), (0.75, 0.2)])
def test_single_bright_spot_on_uniform_field_is_most_salient(where):
    """A single bright spot on a uniform field is the most salient point of the map."""
    h, w = 240, 320
    img = _gray(h, w)
    y, x = int(where[0] * h), int(where[1] * w)
    img[y - 2:y + 2, x - 2:x + 2] = 1.0
    s = itti_koch(img)
    yy, xx = np.unravel_index(int(s.argmax()), s.shape)
    assert np.hypot(yy - y, xx - x) <= 4, ((yy, xx), (y, x))
    assert s.max() == 1.0


def test_single_dark_spot_on_bright_field_is_most_salient():
    """Intensity contrast is signless: a dark spot on a bright field is also the most salient point."""
    img = _gray(160, 200, 0.8)
    img[60:64, 120:124] = 0.1
    yy, xx = np.unravel_index(int(itti_koch(img).argmax()), (160, 200))
    assert abs(yy - 62) <= 4 and abs(xx - 122) <= 4


@pytest.mark.parametrize("value", [0.0, 0.5, 1.0, (0.8, 0.2, 0.1)])
@pytest.mark.parametrize("normalization", ["local-maxima", "iterative"])
def test_uniform_image_gives_zero_map_without_nan(value, normalization):
    """A uniform image (gray, black, white or coloured) gives an all-zero map, without NaN."""
    img = np.empty((90, 120, 3), np.float32)
    img[...] = value
    r = itti_koch(img, normalization=normalization, return_intermediates=True)
    assert r.saliency.dtype == np.float32 and r.saliency.shape == (90, 120)
    assert np.isfinite(r.saliency).all() and np.all(r.saliency == 0)
    assert all(np.isfinite(m).all() and m.max() < 1e-5 for m in r.feature_maps.values())
    assert np.all(itti_koch_map(img, combination="max") == 0)


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (1, 9), (17, 5), (97, 131), (480, 640)])
def test_map_shape_equals_input_shape(shape):
    """The map has the input's height and width, whatever the size (float32, finite, in [0, 1])."""
    img = _smooth_random(shape, 3) if min(shape) > 1 else np.random.default_rng(0).random((*shape, 3)).astype(
        np.float32)
    s = itti_koch(img)
    assert s.shape == shape and s.dtype == np.float32
    assert np.isfinite(s).all() and s.min() >= 0 and s.max() <= 1


def test_accepts_what_load_image_accepts_and_does_not_modify_input(photos):
    """Paths/bytes/uint8 arrays give the same map as the float array; the input array is unchanged."""
    img = photos["chelsea"]
    before = img.copy()
    ref = itti_koch(img)
    np.testing.assert_array_equal(img, before)
    u8 = np.round(img * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format="PNG")
    np.testing.assert_array_equal(itti_koch(buf.getvalue()), itti_koch(u8))
    assert np.corrcoef(itti_koch(u8).ravel(), ref.ravel())[0, 1] > 0.99
    with pytest.raises(ImageReadError):
        itti_koch(np.full((10, 10, 3), np.nan, np.float32))


def test_exactly_42_feature_maps_at_their_centre_scales():
    """The default model yields 42 feature maps (6 I, 6 RG, 6 BY, 24 O) and 3 conspicuity maps at scale 4."""
    r = itti_koch(_smooth_random((480, 640), 1), return_intermediates=True)
    assert isinstance(r, IttiResult) and isinstance(r.params, IttiParams)
    pairs = [(c, c + d) for c in (2, 3, 4) for d in (3, 4)]
    want = {f"{name} c{c}s{s}" for c, s in pairs
            for name in ["intensity", "rg", "by"] + [f"orientation {t}" for t in (0, 45, 90, 135)]}
    assert len(r.feature_maps) == 42 and set(r.feature_maps) == want
    sizes = {2: (120, 160), 3: (60, 80), 4: (30, 40)}
    for key, m in r.feature_maps.items():
        c = int(key.split()[-1][1])
        assert m.shape == sizes[c] and m.dtype == np.float32 and m.min() >= 0
    assert list(r.conspicuity) == ["intensity", "color", "orientation"]
    assert all(m.shape == (30, 40) and m.dtype == np.float32 for m in r.conspicuity.values())
    assert r.saliency.shape == (480, 640)


def test_rotating_the_image_by_90_degrees_swaps_the_0_and_90_degree_orientation_maps():
    """Rotating the image by 90 degrees swaps the 0/90 (and 45/135) orientation feature maps.

    Exact in exact arithmetic for sizes 2^k + 1 (every pyramid level then has a middle pixel, so
    subsampling commutes with the rotation; REDUCE, EXPAND and the Gabor filter mirror the borders on
    all sides).  The tolerance, 1e-4 of each map's maximum, allows float32 rounding from the different
    order of the sums after rotation (observed: about 1e-5 at most).  Intensity and colour maps rotate
    unchanged.
    """
    img = _smooth_random((257, 257), 7)
    a = itti_koch(img, return_intermediates=True)
    b = itti_koch(np.ascontiguousarray(np.rot90(img)), return_intermediates=True)
    swap = {"0": "90", "90": "0", "45": "135", "135": "45"}
    for key, m in a.feature_maps.items():
        parts = key.split()
        other = f"orientation {swap[parts[1]]} {parts[2]}" if parts[0] == "orientation" else key
        np.testing.assert_allclose(np.rot90(m), b.feature_maps[other], rtol=0, atol=1e-4 * float(m.max()),
                                   err_msg=f"{key} vs rotated {other}")
    # and the test can fail: without the swap the 0-degree maps do not match
    m0 = a.feature_maps["orientation 0 c2s5"]
    assert np.abs(np.rot90(m0) - b.feature_maps["orientation 0 c2s5"]).max() > 0.1 * m0.max()
    np.testing.assert_allclose(np.rot90(a.saliency), b.saliency, atol=1e-4)


def test_orientation_channels_prefer_their_bars():
    """Horizontal stripes excite the 0-degree maps, vertical stripes the 90-degree maps."""
    h, w = 256, 256
    yy, xx = np.mgrid[0:h, 0:w]
    img = _gray(h, w, 0.5)
    patch = (slice(96, 160), slice(96, 160))
    img[patch] = (0.5 + 0.4 * np.sin(2 * np.pi * yy[patch] / 16.0))[..., None]  # horizontal stripes
    r = itti_koch(img, return_intermediates=True, channels=("orientation",))
    f0, f90 = r.feature_maps["orientation 0 c2s5"], r.feature_maps["orientation 90 c2s5"]
    assert f0.max() > 3 * f90.max()
    rv = itti_koch(np.ascontiguousarray(img.transpose(1, 0, 2)), return_intermediates=True,
                   channels=("orientation",))
    assert rv.feature_maps["orientation 90 c2s5"].max() > 3 * rv.feature_maps["orientation 0 c2s5"].max()


def test_red_disc_on_green_is_found_by_the_colour_channel_alone():
    """An isoluminant red disc on green: the colour channel alone puts its maximum on the disc."""
    h, w = 240, 320
    img = np.zeros((h, w, 3), np.float32)
    img[...] = (0.0, 0.6, 0.0)  # green, I = 0.2
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx, rad = 150, 90, 14
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= rad ** 2
    img[disc] = (0.6, 0.0, 0.0)  # red, I = 0.2: no intensity contrast at all
    colour = itti_koch(img, channels=("color",), return_intermediates=True)
    assert len(colour.feature_maps) == 12 and list(colour.conspicuity) == ["color"]
    y, x = np.unravel_index(int(colour.saliency.argmax()), (h, w))
    assert (y - cy) ** 2 + (x - cx) ** 2 <= rad ** 2, (y, x)
    assert np.all(itti_koch(img, channels=("intensity",)) == 0)  # the intensity channel sees nothing


def test_channel_weights_change_the_combination():
    """Weighting one channel to zero removes its contribution (here: orientation only remains)."""
    img = _smooth_random((120, 160), 5)
    only_o = itti_koch(img, channels=("orientation",))
    weighted = itti_koch(img, weights={"intensity": 0, "color": 0, "orientation": 1})
    np.testing.assert_allclose(weighted, only_o, atol=1e-6)


@pytest.mark.parametrize("overrides", [{"combination": "max"}, {"normalization": "iterative"},
                                       {"normalization": "iterative", "combination": "max"}])
def test_max_combination_and_iterative_normalization_work(overrides, photos):
    """combination='max' and normalization='iterative' give valid maps that differ from the default."""
    img = photos["astronaut"]
    default = itti_koch(img)
    out = itti_koch(img, **overrides)
    assert out.shape == img.shape[:2] and out.dtype == np.float32 and np.isfinite(out).all()
    assert out.min() >= 0 and out.max() == 1.0
    assert np.abs(out - default).max() > 0.05
    spot = _gray(160, 200)
    spot[80:84, 50:54] = 1.0
    y, x = np.unravel_index(int(itti_koch(spot, **overrides).argmax()), (160, 200))
    assert abs(y - 82) <= 4 and abs(x - 52) <= 4


def test_deterministic_and_thread_safe(photos):
    """Repeated calls, and calls from several threads at once, give bit-identical maps."""
    imgs = [photos["astronaut"], photos["coffee"], photos["rocket"]]
    ref = [itti_koch_map(im) for im in imgs]
    assert all(np.array_equal(itti_koch_map(im), r) for im, r in zip(imgs, ref))
    results: dict[int, list[np.ndarray]] = {}

    def work(k: int) -> None:
        results[k] = [itti_koch_map(imgs[(k + j) % 3]) for j in range(6)]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, outs in results.items():
        for j, out in enumerate(outs):
            assert np.array_equal(out, ref[(k + j) % 3])


def test_registry_and_top_level_names():
    """The registry's 'itti' row and the lazy top-level names reach this implementation."""
    img = _smooth_random((60, 80), 2)
    np.testing.assert_array_equal(salience.saliency_map(img, "itti", combination="max"),
                                  itti_koch(img, combination="max"))
    assert salience.itti_koch is itti_koch and salience.IttiParams is IttiParams


# ---- parameters ------------------------------------------------------------------------------------------

def test_default_parameters_are_the_papers():
    """The defaults are the paper's: 9 scales, c in {2,3,4}, delta in {3,4}, 4 orientations, scale 4."""
    p = IttiParams()
    assert (p.n_scales, p.centre_scales, p.deltas, p.output_scale) == (9, (2, 3, 4), (3, 4), 4)
    assert p.orientations == (0.0, 45.0, 90.0, 135.0) and p.weights == (1.0, 1.0, 1.0)
    assert (p.normalization, p.combination, p.hue_threshold) == ("local-maxima", "mean", 0.1)
    assert p.channels == ("intensity", "color", "orientation")


@pytest.mark.parametrize("bad, word", [
    ({"n_scales": 1}, "n_scales"),
    ({"centre_scales": ()}, "centre_scales"),
    ({"centre_scales": (2, 6)}, "surround"),
    ({"deltas": (0,)}, "deltas"),
    ({"deltas": (3, 3)}, "repeated"),
    ({"orientations": (0, 180)}, "modulo 180"),
    ({"orientations": (0, float("nan"))}, "orientations"),
    ({"channels": ("hue",)}, "unknown channel"),
    ({"channels": ()}, "channels"),
    ({"weights": (0, 0, 0)}, "weight 0"),
    ({"weights": (1, 2)}, "3 entries"),
    ({"weights": (1, -1, 1)}, "weights"),
    ({"normalization": "l2"}, "local-maxima"),
    ({"combination": "sum"}, "'mean' or 'max'"),
    ({"output_scale": 9}, "output_scale"),
    ({"hue_threshold": 1.5}, "hue_threshold"),
    ({"gabor_wavelength": 1.0}, "gabor_wavelength"),
    ({"iterations": 0}, "iterations"),
    ({"n_scales": 9.0}, "n_scales"),
    ({"sigma": 3}, "unknown Itti-Koch parameter"),
])
def test_bad_parameters_raise_input_error_naming_the_parameter(bad, word):
    """Every bad parameter is an InputError whose message names it and the accepted values."""
    img = _gray(32, 32)
    with pytest.raises(InputError, match=word):
        itti_koch_map(img, **bad)
    with pytest.raises(InputError, match=word):
        salience.saliency_map(img, "itti", **bad)


def test_bad_params_object_and_flag():
    """params must be an IttiParams; return_intermediates must be a bool."""
    img = _gray(16, 16)
    with pytest.raises(InputError, match="IttiParams"):
        itti_koch(img, params={"combination": "max"})  # type: ignore[arg-type]
    with pytest.raises(InputError, match="return_intermediates"):
        itti_koch(img, return_intermediates="yes")  # type: ignore[arg-type]
    assert itti_koch(img, IttiParams(combination="max")).shape == (16, 16)


# ---- conspicuity_maps: the stages for models built on this one ------------------------------------------

def test_conspicuity_maps_are_the_models_and_added_channels_take_the_same_steps():
    """The static maps equal itti_koch's; an added channel that is the intensity pyramid itself comes out as
    the intensity conspicuity map and the sum of the intensity feature maps (up to the last bits: it runs
    in a one-channel OpenCV call, the static intensity in a three-channel one)."""
    img = _smooth_random((96, 128), 3)
    ref = itti_koch(img, return_intermediates=True)
    seen = {}

    def added(pyr, bands):
        seen["levels"] = sorted(bands)
        seen["band2"] = bands[2]
        return {"again": {lv: pyr[lv] for lv in bands}}

    r = itti_mod.conspicuity_maps(img, added=added)
    assert seen["levels"] == [2, 3, 4, 5, 6, 7, 8]
    pyr = gaussian_pyramid(img.mean(axis=2, dtype=np.float32), 4)
    np.testing.assert_allclose(seen["band2"], laplacian_level(pyr[2], pyr[3]), atol=1e-6)
    assert sorted(r.maps) == sorted(ref.conspicuity)
    for name in ref.conspicuity:
        np.testing.assert_array_equal(r.maps[name], ref.conspicuity[name])
    top = float(ref.conspicuity["intensity"].max())
    np.testing.assert_allclose(r.added["again"], ref.conspicuity["intensity"], atol=1e-6 * top)
    total = sum(float(v.sum(dtype=np.float64)) for k, v in ref.feature_maps.items() if k.startswith("intensity"))
    assert r.added_sums["again"] == pytest.approx(total, rel=1e-6)
    assert r.added["again"].flags.c_contiguous
    # without added channels: the static maps only
    plain = itti_mod.conspicuity_maps(img)
    assert plain.added == {} and plain.added_sums == {}
    for name in ref.conspicuity:
        np.testing.assert_array_equal(plain.maps[name], ref.conspicuity[name])


def test_conspicuity_maps_refuse_bad_added_channels():
    img = _smooth_random((64, 80), 4)
    with pytest.raises(InputError, match="must be a function"):
        itti_mod.conspicuity_maps(img, added=3)
    with pytest.raises(InputError, match="name of a static channel"):
        itti_mod.conspicuity_maps(img, added=lambda pyr, bands: {"rg": {lv: pyr[lv] for lv in bands}})
    with pytest.raises(InputError, match=r"at level 2"):
        itti_mod.conspicuity_maps(img, added=lambda pyr, bands: {"x": {lv: pyr[lv + 1] for lv in bands}})
    with pytest.raises(InputError, match=r"at level 3"):
        itti_mod.conspicuity_maps(img, added=lambda pyr, bands: {"x": {2: pyr[2]}})
