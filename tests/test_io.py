"""salience.io: every accepted source, format and mode; every bad input; atomic writes."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

import salience
from salience.errors import ImageReadError, ImageTooLargeError, InputError, OutputExistsError, SalienceError
from salience.io import (
    as_image_array,
    atomic_write_bytes,
    check_map,
    encode_png,
    load_image,
    map_to_uint8,
    method_input,
    save_map,
    save_npy,
)


@pytest.fixture()
def rgb_u8():
    """A small deterministic RGB image with every channel different."""
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, size=(12, 17, 3), dtype=np.uint8)


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _check_rgb(arr, shape):
    assert arr.dtype == np.float32 and arr.shape == (*shape, 3) and arr.flags.c_contiguous
    assert np.all(np.isfinite(arr)) and arr.min() >= 0.0 and arr.max() <= 1.0


# ---- formats --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt,ext,kw", [
    ("PNG", "png", {}), ("TIFF", "tif", {}), ("BMP", "bmp", {}), ("WEBP", "webp", {"lossless": True}),
])
def test_lossless_formats_round_trip_exactly(tmp_path, rgb_u8, fmt, ext, kw):
    """Lossless files (PNG, TIFF, BMP, lossless WebP) load back to exactly the saved 8-bit pixels."""
    path = tmp_path / f"img.{ext}"
    Image.fromarray(rgb_u8).save(path, format=fmt, **kw)
    arr = load_image(path)
    _check_rgb(arr, rgb_u8.shape[:2])
    np.testing.assert_array_equal(np.round(arr * 255).astype(np.uint8), rgb_u8)


def test_jpeg_round_trips_approximately(tmp_path):
    """A quality-95 JPEG of a smooth image loads within 3 grey levels on average (lossy, not wrong)."""
    smooth = np.zeros((32, 48, 3), np.uint8)
    smooth[..., 0] = np.linspace(0, 255, 48)[None, :]
    smooth[..., 1] = 128
    smooth[..., 2] = np.linspace(255, 0, 32)[:, None]
    path = tmp_path / "img.jpg"
    Image.fromarray(smooth).save(path, quality=95)
    arr = load_image(path)
    _check_rgb(arr, (32, 48))
    assert np.abs(arr * 255 - smooth).mean() < 3.0


# ---- modes ----------------------------------------------------------------------------------------------

def test_grayscale_becomes_three_equal_channels():
    """A greyscale file becomes RGB with three identical channels of its values / 255."""
    g = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    arr = load_image(_save(Image.fromarray(g, "L"), "PNG"))
    _check_rgb(arr, (3, 4))
    np.testing.assert_allclose(arr[..., 0], g / 255.0, atol=1e-7)
    assert np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2])


def test_rgba_is_composited_on_white_by_default_and_on_a_given_background():
    """Alpha is composited on white by default, or on the background given, not dropped."""
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red
    rgba[0, 1] = (255, 0, 0, 0)  # fully transparent
    rgba[1, 0] = (0, 0, 0, 128)  # half-transparent black
    data = _save(Image.fromarray(rgba, "RGBA"), "PNG")
    arr = load_image(data)
    np.testing.assert_allclose(arr[0, 0], (1, 0, 0), atol=1e-6)
    np.testing.assert_allclose(arr[0, 1], (1, 1, 1), atol=1e-6)
    np.testing.assert_allclose(arr[1, 0], 1 - 128 / 255, atol=1e-6)
    black = load_image(data, background=(0, 0, 0))
    np.testing.assert_allclose(black[0, 1], (0, 0, 0), atol=1e-6)


def test_palette_image_gives_its_colours():
    """A palette ("P") image gives its palette colours, not its indices."""
    p = Image.new("P", (3, 2))
    p.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    p.putdata([0, 1, 2, 2, 1, 0])
    arr = load_image(_save(p, "PNG"))
    np.testing.assert_allclose(arr[0, 0], (1, 0, 0))
    np.testing.assert_allclose(arr[0, 1], (0, 1, 0))
    np.testing.assert_allclose(arr[0, 2], (0, 0, 1))


def test_palette_with_transparency_is_composited():
    """A palette image's transparent index is composited on the background."""
    p = Image.new("P", (2, 1))
    p.putpalette([255, 0, 0, 0, 0, 0] + [0] * (256 * 3 - 6))
    p.putdata([0, 1])
    p.info["transparency"] = 1
    arr = load_image(_save(p, "PNG", transparency=1), background=(0, 1, 0))
    np.testing.assert_allclose(arr[0, 0], (1, 0, 0))
    np.testing.assert_allclose(arr[0, 1], (0, 1, 0))


def test_16_bit_png_keeps_its_precision():
    """A 16-bit PNG keeps its 1/65535 steps instead of being cut to 8 bits."""
    g = np.array([[0, 1, 65534, 65535]], np.uint16)
    arr = load_image(_save(Image.fromarray(g), "PNG"))
    np.testing.assert_allclose(arr[0, :, 0], g[0] / 65535.0, atol=1e-7)
    assert arr[0, 1, 0] > 0  # 1/65535 is not rounded away as 8 bits would


def test_float_tiff_in_unit_range_is_kept_and_out_of_range_is_stretched(tmp_path):
    """A float TIFF in [0, 1] is kept as is; one outside [0, 1] is min-max stretched into it."""
    f = np.array([[0.0, 0.25], [0.5, 1.0]], np.float32)
    path = tmp_path / "f.tif"
    Image.fromarray(f, "F").save(path)
    np.testing.assert_allclose(load_image(path)[..., 0], f, atol=1e-7)
    Image.fromarray(f * 1000 - 10, "F").save(path)
    np.testing.assert_allclose(load_image(path)[..., 0], f, atol=1e-6)


def test_one_bit_image():
    """A 1-bit image loads as 0 and 1."""
    b = Image.fromarray(np.array([[0, 255]], np.uint8)).convert("1")
    np.testing.assert_allclose(load_image(_save(b, "PNG"))[0, :, 0], (0, 1))


@pytest.mark.parametrize("orientation,expected_shape,marked", [
    (1, (2, 3), (0, 0)),  # as stored
    (3, (2, 3), (1, 2)),  # rotated 180
    (6, (3, 2), (0, 1)),  # rotate 90 clockwise for display
    (8, (3, 2), (2, 0)),  # rotate 90 counter-clockwise for display
])
def test_exif_orientation_is_applied(orientation, expected_shape, marked):
    """The stored top-left pixel ends where a viewer that honours EXIF orientation shows it."""
    g = np.zeros((2, 3), np.uint8)
    g[0, 0] = 255
    img = Image.fromarray(g, "L")
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _save(img, "PNG", exif=exif.tobytes())
    arr = load_image(data)[..., 0]
    assert arr.shape == expected_shape
    assert np.unravel_index(np.argmax(arr), arr.shape) == marked


# ---- sources --------------------------------------------------------------------------------------------

def test_every_source_kind_gives_the_same_array(tmp_path, rgb_u8):
    """Path, str, bytes, bytearray, memoryview, file objects, PIL images and arrays all give the same image."""
    path = tmp_path / "x.png"
    Image.fromarray(rgb_u8).save(path)
    ref = load_image(path)
    data = path.read_bytes()
    with open(path, "rb") as fh:
        from_file = load_image(fh)
    for arr in (load_image(str(path)), load_image(data), load_image(bytearray(data)), load_image(memoryview(data)),
                from_file, load_image(io.BytesIO(data)), load_image(Image.open(path)), load_image(rgb_u8),
                salience.load_image(rgb_u8.astype(np.float64) / 255)):
        np.testing.assert_allclose(arr, ref, atol=1e-6)


@pytest.mark.parametrize("shape", [(5, 6), (5, 6, 1), (5, 6, 3), (5, 6, 4)])
def test_array_shapes_accepted(shape):
    """2-D, (H, W, 1), RGB and RGBA arrays are accepted and give (H, W, 3)."""
    arr = load_image(np.full(shape, 0.5, np.float32))
    _check_rgb(arr, (5, 6))


@pytest.mark.parametrize("dtype,value,expected", [
    (np.uint8, 255, 1.0), (np.uint16, 65535, 1.0), (np.bool_, True, 1.0), (np.int32, 51, 0.2),
    (np.float64, 0.25, 0.25), (np.float16, 0.5, 0.5),
])
def test_array_dtypes_scale_to_unit_range(dtype, value, expected):
    """Integer, bool and float arrays are scaled to [0, 1] by their dtype's range."""
    arr = load_image(np.full((2, 2), value, dtype))
    np.testing.assert_allclose(arr, expected, atol=1e-6)


def test_input_array_is_never_returned_or_modified():
    """load_image returns a copy: changing its result leaves the caller's array alone."""
    src = np.full((3, 3, 3), 0.5, np.float32)
    before = src.copy()
    out = load_image(src)
    out[:] = 0
    assert np.array_equal(src, before)


# ---- bad inputs -----------------------------------------------------------------------------------------

def test_missing_file(tmp_path):
    """A missing file is an ImageReadError that says it does not exist."""
    with pytest.raises(ImageReadError, match="does not exist"):
        load_image(tmp_path / "nope.png")


def test_folder_instead_of_file(tmp_path):
    """A folder given as the image is an ImageReadError that names it a folder."""
    with pytest.raises(ImageReadError, match="folder"):
        load_image(tmp_path)


def test_not_an_image(tmp_path):
    """A text file with an image suffix is refused as "not an image"."""
    p = tmp_path / "notes.png"
    p.write_text("this is text, not a picture")
    with pytest.raises(ImageReadError, match="not an image"):
        load_image(p)


def test_empty_file(tmp_path):
    """An empty file is refused with a message that says it is empty."""
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty"):
        load_image(p)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file(fmt):
    """A half-written PNG or JPEG is an ImageReadError (truncated/corrupt), never a partial image."""
    rng = np.random.default_rng(0)
    data = _save(Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)), fmt)
    with pytest.raises(ImageReadError, match="truncated|corrupt|could not be opened"):
        load_image(data[: len(data) // 2])


def test_too_large_is_refused_and_the_limit_can_be_raised():
    """An image over max_pixels is refused with its pixel count; a higher limit or None lets it through."""
    data = _save(Image.new("L", (100, 50)), "PNG")
    with pytest.raises(ImageTooLargeError, match="5,000 pixels.*max_pixels"):
        load_image(data, max_pixels=4999)
    assert load_image(data, max_pixels=5000).shape == (50, 100, 3)
    assert load_image(data, max_pixels=None).shape == (50, 100, 3)


def test_decompression_bomb_is_refused_from_the_header():
    """A small file that declares a huge image is refused before its pixels are decoded."""
    data = _save(Image.new("1", (6000, 5000)), "PNG")
    assert len(data) < 100_000
    with pytest.raises(ImageTooLargeError, match="30,000,000 pixels"):
        load_image(data, max_pixels=1_000_000)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_arrays(bad):
    """Arrays with NaN or infinite values are refused, not passed on to the methods."""
    a = np.full((4, 4, 3), 0.5, np.float32)
    a[1, 2, 0] = bad
    with pytest.raises(ImageReadError, match="NaN or infinite"):
        load_image(a)


@pytest.mark.parametrize("shape", [(4,), (2, 3, 4, 3), (4, 5, 2), (4, 5, 5), (0, 5, 3), (5, 0), (3, 8, 9)])
def test_wrong_array_shapes(shape):
    """Arrays of impossible shapes (1-D, 4-D, 2 or 5 channels, empty) are refused with a shape message."""
    with pytest.raises(ImageReadError, match="shape|zero size|channels-first"):
        load_image(np.zeros(shape, np.float32))


def test_channels_first_array_gets_a_transpose_hint():
    """A channels-first (3, H, W) array is refused with a hint to transpose it."""
    with pytest.raises(ImageReadError, match="transpose"):
        load_image(np.zeros((3, 20, 30), np.float32))


@pytest.mark.parametrize("arr,match", [
    (np.full((2, 2), 1.5), r"\[0, 1\]"), (np.full((2, 2), -0.5), r"\[0, 1\]"), (np.full((2, 2), 300), "0..255"),
    (np.array([["a", "b"]]), "numeric"), (np.ones((2, 2), complex), "real"),
])
def test_bad_array_values(arr, match):
    """Out-of-range, non-numeric and complex arrays are refused with a message naming the problem."""
    with pytest.raises(ImageReadError, match=match):
        load_image(arr)


def test_unsupported_source_types():
    """An int, a text-mode stream or an invalid background is refused with a clear message."""
    with pytest.raises(ImageReadError, match="cannot read an image from int"):
        load_image(42)
    with pytest.raises(ImageReadError, match="text mode"):
        load_image(io.StringIO("x"))
    with pytest.raises(InputError, match="background"):
        load_image(np.zeros((2, 2)), background=(2, 0, 0))


def test_every_error_is_a_salience_error_and_a_builtin_kind(tmp_path):
    """Read errors are SalienceErrors and also builtin kinds (ValueError), so existing handlers keep working."""
    with pytest.raises(SalienceError):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ValueError):
        load_image(b"garbage")


# ---- method_input ---------------------------------------------------------------------------------------

def test_method_input_passes_a_valid_float32_image_through_without_a_copy():
    """method_input returns a valid float32 image itself (no copy) and converts float64 to a new float32 array."""
    a = np.random.default_rng(1).random((5, 7, 3), dtype=np.float32)
    assert method_input(a) is a
    b = a.astype(np.float64)
    out = method_input(b)
    assert out is not b and out.dtype == np.float32


@pytest.mark.parametrize("bad", [np.nan, -np.nan, np.inf, -np.inf, -0.25, 1.5, 3e38])
def test_method_input_rejects_every_bad_value_on_the_fast_path(bad):
    """The one-pass bit test catches NaN (both signs), infinities and values outside [0, 1]."""
    a = np.full((4, 5, 3), 0.5, np.float32)
    a[2, 3, 1] = bad
    with pytest.raises(ImageReadError):
        method_input(a)


def test_method_input_accepts_negative_zero_and_exact_bounds():
    """-0.0, 0.0 and 1.0 are valid pixel values, not out of range."""
    a = np.full((2, 2, 3), 0.5, np.float32)
    a[0, 0, 0], a[0, 1, 0], a[1, 1, 2] = -0.0, 0.0, 1.0
    out = method_input(a)
    assert out[0, 0, 0] == 0 and out[1, 1, 2] == 1


# ---- maps and writes ------------------------------------------------------------------------------------

def test_check_map_and_map_to_uint8():
    """map_to_uint8 min-max scales to 0..255 (a constant map gives zeros); check_map refuses bad maps."""
    np.testing.assert_array_equal(map_to_uint8(np.array([[2.0, 4.0], [3.0, 4.0]])), [[0, 255], [128, 255]])
    assert not map_to_uint8(np.full((2, 2), 7.0)).any()  # a constant map is all zeros
    for bad, match in ((np.zeros((2, 2, 2)), "2-D"), (np.zeros((0, 3)), "empty"),
                       (np.array([[np.nan]]), "NaN"), (np.array([["x"]]), "numeric")):
        with pytest.raises(InputError, match=match):
            check_map(bad)


def test_atomic_write_keeps_existing_files_unless_overwrite(tmp_path):
    """atomic_write_bytes refuses to replace a file unless overwrite=True and leaves no temporary file."""
    p = tmp_path / "sub" / "out.bin"
    atomic_write_bytes(p, b"first")
    with pytest.raises(OutputExistsError, match="overwrite"):
        atomic_write_bytes(p, b"second")
    assert p.read_bytes() == b"first"
    atomic_write_bytes(p, b"third", overwrite=True)
    assert p.read_bytes() == b"third"
    assert sorted(os.listdir(p.parent)) == ["out.bin"]  # no temporary files left


def test_failed_write_leaves_no_partial_or_temporary_file(tmp_path):
    """A write that fails leaves neither a partial output nor a temporary file."""
    p = tmp_path / "out.bin"
    with pytest.raises(TypeError):
        atomic_write_bytes(p, "not bytes")  # type: ignore[arg-type]
    assert os.listdir(tmp_path) == []


def test_save_map_and_save_npy_round_trip(tmp_path):
    """save_map writes the uint8 PNG of map_to_uint8 and save_npy keeps the float32 map exactly."""
    m = np.array([[0.0, 0.5], [1.0, 0.25]], np.float32)
    png = save_map(m, tmp_path / "m.png")
    np.testing.assert_array_equal(np.asarray(Image.open(png)), map_to_uint8(m))
    npy = save_npy(m, tmp_path / "m.npy")
    back = np.load(npy)
    assert back.dtype == np.float32 and np.array_equal(back, m)
    assert encode_png(np.zeros((2, 2), np.uint8)).startswith(b"\x89PNG")
    with pytest.raises(InputError):
        encode_png(np.zeros((2, 2), np.float32))


def test_encode_png_is_lossless_for_every_layout_and_refuses_what_png_cannot_hold():
    """Gray, RGB and RGBA of odd sizes (one row, one column, random bytes, a smooth map) decode back
    exactly with Pillow and OpenCV; other dtypes, layouts and empty images get a clear InputError."""
    import cv2

    rng = np.random.default_rng(5)
    ramp = np.floor(np.linspace(0, 255, 97 * 61).reshape(61, 97)).astype(np.uint8)
    cases = [ramp, rng.integers(0, 256, (1, 33), dtype=np.uint8), rng.integers(0, 256, (29, 1), dtype=np.uint8),
             rng.integers(0, 256, (17, 23, 3), dtype=np.uint8), rng.integers(0, 256, (9, 40, 4), dtype=np.uint8),
             np.full((5, 6, 3), 255, np.uint8)]
    for a in cases:
        png = encode_png(a)
        with Image.open(io.BytesIO(png)) as im:
            im.verify()
        with Image.open(io.BytesIO(png)) as im:
            assert im.mode == {2: "L", 3: "RGB", 4: "RGBA"}[a.ndim if a.ndim == 2 else a.shape[2]]
            np.testing.assert_array_equal(np.asarray(im), a)
        back = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
        if a.ndim == 3:
            back = cv2.cvtColor(back, cv2.COLOR_BGR2RGB if a.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
        np.testing.assert_array_equal(back, a)
    assert len(encode_png(ramp)) < ramp.size / 4  # the Up filter and run-length deflate do compress
    for bad, words in ((np.zeros((4, 4), np.uint16), "uint8"), (np.zeros((4, 4, 2), np.uint8), "shape"),
                       (np.zeros((0, 4), np.uint8), "empty"), (np.zeros(4, np.uint8), "shape")):
        with pytest.raises(InputError, match=words):
            encode_png(bad)


def test_as_image_array_composites_alpha_on_background():
    """as_image_array composites an alpha channel on the background given."""
    a = np.zeros((1, 1, 4), np.float32)
    np.testing.assert_allclose(as_image_array(a, background=(0.2, 0.4, 0.6)), [[[0.2, 0.4, 0.6]]], atol=1e-7)


def test_atomic_write_gives_usual_permissions(tmp_path):
    """Files written atomically get the permissions the umask allows, not mkstemp's private 0600."""
    import os

    from salience.io import atomic_write_bytes

    old = os.umask(0o022)
    try:
        path = atomic_write_bytes(tmp_path / "out.bin", b"data")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
