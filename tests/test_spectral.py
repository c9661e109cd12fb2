"""Spectral residual, image signature, frequency-tuned and the centre bias: hand-computed cases, properties,
agreement with OpenCV's spectral residual, and parameter errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from salience.bottomup import spectral as sp
from salience.bottomup.baselines import centre_bias
from salience.bottomup.spectral import frequency_tuned, image_signature, spectral_residual
from salience.errors import ImageReadError, InputError

CONTENT_METHODS = [spectral_residual, image_signature, frequency_tuned]


def _spot(h=96, w=128, y=30, x=90, size=6, colour=(1.0, 1.0, 1.0), bg=0.4):
    img = np.full((h, w, 3), bg, np.float32)
    img[y - size // 2:y + size // 2, x - size // 2:x + size // 2] = colour
    return img


@pytest.mark.parametrize("method", CONTENT_METHODS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("where", [(30, 90), (70, 20), (48, 64), (85, 115)])
def test_single_bright_spot_is_the_most_salient_point(method, where):
    """A single bright spot on a uniform field holds the map's maximum."""
    y, x = where
    m = method(_spot(y=y, x=x))
    py, px = np.unravel_index(np.argmax(m), m.shape)
    assert abs(py - y) <= 6 and abs(px - x) <= 6, (method.__name__, (py, px), (y, x))


@pytest.mark.parametrize("method", CONTENT_METHODS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("value", [0.0, 0.37, 1.0])
def test_uniform_image_gives_an_all_zero_map(method, value):
    """A uniform image has nothing that stands out: the map is all zeros (no NaN)."""
    m = method(np.full((40, 50, 3), value, np.float32))
    assert m.shape == (40, 50) and m.dtype == np.float32 and not m.any()


def test_frequency_tuned_two_colours_hand_computed():
    """Without the blur, a minority colour is at distance (1-p)|A-B| and the majority at p|A-B| from the
    mean colour: min-max gives exactly 1 and 0."""
    img = np.zeros((10, 10, 3), np.float32)
    img[:] = (0.2, 0.6, 0.3)
    img[2:4, 5:8] = (0.9, 0.1, 0.1)  # 6 % of the pixels
    m = frequency_tuned(img, blur=False)
    assert np.all(m[2:4, 5:8] == 1.0)
    mask = np.ones((10, 10), bool)
    mask[2:4, 5:8] = False
    assert np.allclose(m[mask], 0.0, atol=1e-6)


def test_frequency_tuned_is_the_lab_distance_to_the_mean():
    """The unnormalised map equals ||mean Lab - blurred Lab|| computed independently with numpy."""
    rng = np.random.default_rng(3)
    img = rng.random((20, 30, 3), dtype=np.float32)
    lab = cv2.cvtColor(img, cv2.COLOR_RGB2Lab).astype(np.float64)
    k = np.array([1, 4, 6, 4, 1], float) / 16
    pad = np.pad(lab, ((2, 2), (2, 2), (0, 0)), mode="symmetric")
    blurred = sum(k[i] * k[j] * pad[i:i + 20, j:j + 30] for i in range(5) for j in range(5))
    d = np.sqrt(((blurred - lab.reshape(-1, 3).mean(0)) ** 2).sum(-1))
    ref = (d - d.min()) / (d.max() - d.min())
    np.testing.assert_allclose(frequency_tuned(img), ref, atol=2e-4)


def test_image_signature_reconstructs_a_sparse_spike_at_its_place():
    """Hou et al.'s key property: the signature's reconstruction concentrates on a sparse foreground."""
    img = np.zeros((32, 48, 3), np.float32)
    img[9, 30] = 1.0
    m = image_signature(img, sigma=0, colorspace="rgb", width=48)
    assert np.unravel_index(np.argmax(m), m.shape) == (9, 30)


def test_image_signature_lab_and_rgb_both_find_a_colour_pop_out():
    """A red square among green is found in both colour spaces."""
    img = np.zeros((64, 64, 3), np.float32)
    img[..., 1] = 0.6
    img[40:48, 10:18] = (0.8, 0.1, 0.1)
    for space in ("lab", "rgb", "LAB"):
        m = image_signature(img, colorspace=space)
        py, px = np.unravel_index(np.argmax(m), m.shape)
        assert 36 <= py <= 52 and 6 <= px <= 22


def test_spectral_residual_agrees_with_opencv_on_real_photos(photos):
    """With OpenCV's blur (sigma 2.5 px at 64 px) our map correlates with cv2.saliency's on real photos.
    Not identical by design: OpenCV squeezes every image to 64 x 64 and samples without anti-aliasing, we
    keep the aspect ratio and area-average, so the bar is a high correlation (r > 0.7), not equality."""
    sr = cv2.saliency.StaticSaliencySpectralResidual_create()
    rs = []
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        img = np.ascontiguousarray(photos[name])
        ok, ref = sr.computeSaliency(img)
        assert ok
        ours = spectral_residual(img, sigma=2.5)
        rs.append(np.corrcoef(ours.ravel(), ref.ravel())[0, 1])
    assert min(rs) > 0.7, rs


def test_spectral_residual_floor_leaves_natural_photos_unchanged(photos):
    """The amplitude floor (1 % of the mean non-DC amplitude) is far below a photo's spectrum: the map
    is the same as with a negligible floor."""
    import salience.bottomup.spectral as mod

    for name in ("astronaut", "coffee", "chelsea"):
        img = np.ascontiguousarray(photos[name])
        ours = spectral_residual(img)
        gray = sp._downsample(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), *sp._working_size(*img.shape[:2], 64))
        f = np.fft.fft2(gray.astype(np.float64))
        amp = np.abs(f)
        assert np.mean(amp < 0.01 * amp.ravel()[1:].mean()) < 0.01  # < 1 % of the frequencies touched
        log_amp = np.log(np.maximum(amp, 1e-12))
        a = sum(np.roll(log_amp, (dy, dx), (0, 1)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9
        back = np.fft.ifft2(np.exp(log_amp - a + 1j * np.angle(f)))
        s = (np.abs(back) ** 2).astype(np.float32)
        ref = mod._normalise_and_resize(mod._gaussian_blur(s, 8.0 * gray.shape[1] / 64), *img.shape[:2])
        assert np.corrcoef(ours.ravel(), ref.ravel())[0, 1] > 0.99


def test_spectral_residual_is_not_just_the_phase_spectrum(photo):
    """The residual matters: the 3 x 3 average changes the map (avg_size=1 leaves R = 0, the phase-only
    transform), so the two must differ on a real photo."""
    a = spectral_residual(photo)
    b = spectral_residual(photo, avg_size=1)
    assert np.abs(a - b).max() > 0.05


def test_wrapped_mean_matches_a_periodic_average():
    """_wrapped_mean equals the mean over a periodic (wrapped) window."""
    rng = np.random.default_rng(0)
    for shape, size in (((6, 9), 3), ((2, 2), 3), ((1, 5), 3), ((7, 8), 4), ((5, 5), 1)):
        x = rng.random(shape).astype(np.float32)
        a, b = size // 2, (size - 1) // 2
        ref = sum(np.roll(x, (-dy, -dx), axis=(0, 1)) for dy in range(-a, b + 1) for dx in range(-a, b + 1))
        np.testing.assert_allclose(sp._wrapped_mean(x, size), ref / size ** 2, atol=1e-6)


def test_downsample_is_the_area_average():
    """_downsample is the exact block mean for integer factors and close to OpenCV's area resize otherwise."""
    rng = np.random.default_rng(0)
    g = rng.random((480, 640), dtype=np.float32)
    np.testing.assert_allclose(sp._downsample(g, 48, 64), g.reshape(48, 10, 64, 10).mean((1, 3)), atol=1e-6)
    g = rng.random((451, 637), dtype=np.float32)  # no integer factor: close to OpenCV's one-step area resize
    ref = cv2.resize(g, (64, 45), interpolation=cv2.INTER_AREA)
    assert np.abs(sp._downsample(g, 45, 64) - ref).max() < 0.05


def test_gaussian_blur_matrix_equals_opencv_blur_with_zero_border():
    """The matrix form of the blur equals OpenCV's Gaussian blur with a zero border."""
    rng = np.random.default_rng(0)
    for shape, s in (((48, 64), 8.0), ((3, 5), 2.0), ((1, 1), 1.0), ((64, 7), 0.5)):
        x = rng.random(shape).astype(np.float32)
        k = 2 * int(np.ceil(3 * s)) + 1
        ref = cv2.GaussianBlur(x, (k, k), s, borderType=cv2.BORDER_CONSTANT)
        np.testing.assert_allclose(sp._gaussian_blur(x, s), ref, atol=1e-6)


def test_upsampled_maps_stay_in_unit_range_over_many_sizes():
    """Bilinear enlargement of a [0, 1] map never leaves [0, 1] (the code relies on it instead of clipping)."""
    rng = np.random.default_rng(5)
    for _ in range(200):
        h, w = rng.integers(1, 65, 2)
        H, W = rng.integers(1, 700, 2)
        m = rng.random((h, w)).astype(np.float32)
        out = sp._normalise_and_resize(m, int(H), int(W))
        assert out.shape == (H, W) and out.dtype == np.float32
        assert out.min() >= 0.0 and out.max() <= 1.0


def test_working_size_keeps_aspect_and_never_enlarges():
    """The working size keeps the aspect ratio and never enlarges the image."""
    assert sp._working_size(480, 640, 64) == (48, 64)
    assert sp._working_size(1000, 10, 64) == (1000, 10)
    assert sp._working_size(3, 6400, 64) == (1, 64)


# ---- centre bias ----------------------------------------------------------------------------------------

def test_centre_bias_hand_computed():
    """exp(-d^2 / (2 s^2)) with s = sigma * diagonal, peak 1 at the grid centre."""
    m = centre_bias(np.zeros((30, 40, 3), np.float32), sigma=0.2)  # diagonal 50 -> s = 10
    y, x = np.mgrid[0:30, 0:40]
    ref = np.exp(-((x - 19.5) ** 2 + (y - 14.5) ** 2) / (2 * 10.0 ** 2))
    np.testing.assert_allclose(m, ref / ref.max(), rtol=1e-5)
    assert m.max() == 1.0 and m.dtype == np.float32


def test_centre_bias_ignores_the_content_and_is_symmetric():
    """The centre-bias map ignores the pixels, is point-symmetric and peaks at the centre."""
    rng = np.random.default_rng(0)
    a = centre_bias(rng.random((21, 33, 3), dtype=np.float32))
    b = centre_bias(np.ones((21, 33, 3), np.float32))
    assert np.array_equal(a, b)
    np.testing.assert_allclose(a, a[::-1, ::-1], atol=1e-7)
    assert np.unravel_index(np.argmax(a), a.shape) == (10, 16)


# ---- parameter and input errors -------------------------------------------------------------------------

@pytest.mark.parametrize("call,match", [
    (lambda img: spectral_residual(img, width=0), "width"),
    (lambda img: spectral_residual(img, width=2.5), "width"),
    (lambda img: spectral_residual(img, sigma=-1), "sigma"),
    (lambda img: spectral_residual(img, sigma=float("nan")), "sigma"),
    (lambda img: spectral_residual(img, avg_size=0), "avg_size"),
    (lambda img: image_signature(img, colorspace="hsv"), "colorspace"),
    (lambda img: image_signature(img, sigma="big"), "sigma"),
    (lambda img: centre_bias(img, sigma=0), "sigma"),
])
def test_bad_parameters_raise_input_error(call, match):
    """Out-of-range parameters raise InputError naming the parameter."""
    with pytest.raises(InputError, match=match):
        call(np.zeros((8, 8, 3), np.float32))


@pytest.mark.parametrize("method", CONTENT_METHODS + [centre_bias], ids=lambda f: f.__name__)
def test_bad_images_raise_image_read_error(method):
    """NaN, wrong-channel and out-of-range images raise ImageReadError saying what is wrong."""
    bad = np.full((8, 8, 3), 0.5, np.float32)
    bad[3, 3, 1] = np.nan
    with pytest.raises(ImageReadError, match="NaN"):
        method(bad)
    with pytest.raises(ImageReadError, match="shape"):
        method(np.zeros((8, 8, 2), np.float32))
    with pytest.raises(ImageReadError, match=r"\[0, 1\]"):
        method(np.full((8, 8, 3), 2.0, np.float32))


@pytest.mark.parametrize("method", CONTENT_METHODS + [centre_bias], ids=lambda f: f.__name__)
def test_other_image_arrays_are_converted(method):
    """uint8, grayscale and non-contiguous arrays are accepted like load_image accepts them."""
    rng = np.random.default_rng(2)
    u8 = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    ref = method(u8.astype(np.float32) / np.float32(255))
    np.testing.assert_allclose(method(u8), ref, atol=1e-6)
    assert method(u8[:, :, 0]).shape == (24, 32)
    assert method(np.asfortranarray(u8.astype(np.float32) / 255)).shape == (24, 32)


def test_a_window_wider_than_the_spectrum_is_exact_and_cheap():
    """The spectral-residual mean filter on a spectrum narrower than its window (a tiny or elongated image,
    or a hostile avg_size) equals the sum over every wrapped offset, and costs O(n): no size^2 loop, no
    n x n matrix (a 2 x 100000 spectrum asked for 74.5 GiB with one)."""
    from salience.bottomup.spectral import _wrapped_mean

    rng = np.random.default_rng(5)
    for h, w, size in [(2, 3, 3), (3, 7, 9), (1, 50, 3), (3, 5, 11)]:
        arr = rng.random((h, w)).astype(np.float32)
        a, b = size // 2, (size - 1) // 2
        ref = sum(np.roll(arr.astype(np.float64), (dy, dx), axis=(0, 1))
                  for dy in range(-a, b + 1) for dx in range(-a, b + 1)) / size**2
        assert np.abs(_wrapped_mean(arr, size) - ref).max() < 1e-6
    assert _wrapped_mean(rng.random((2, 100_000)).astype(np.float32), 3).shape == (2, 100_000)
    big = rng.random((3, 5)).astype(np.float32)
    assert np.allclose(_wrapped_mean(big, 10**20 + 7), big.mean(), rtol=1e-6)  # covers it ~1e20 times


def test_spectral_residual_is_bit_identical_in_concurrent_threads():
    """The same photo gives the same map bytes in every call while other threads compute maps too.

    ``cv2.magnitude`` rounded a value another way depending on where its row sat in memory, and threads move
    the heap: before |z| was computed with numpy, 6-15 of 60 such calls gave a map 1 ulp off.
    """
    from concurrent.futures import ThreadPoolExecutor

    from skimage import data

    imgs = [data.astronaut(), data.chelsea(), data.coffee()]
    ref = [spectral_residual(i) for i in imgs]

    def work(k: int) -> bool:
        if k % 2:
            frequency_tuned(imgs[k % 3])  # another thread's allocations in between
            return True
        return bool(np.array_equal(spectral_residual(imgs[k % 3]), ref[k % 3]))

    with ThreadPoolExecutor(3) as ex:
        same = list(ex.map(work, range(120)))
    assert all(same), f"{same.count(False)} of 60 maps differed from the first call's"
