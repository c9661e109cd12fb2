"""Property-based fuzzing of the two readers of untrusted files: :func:`salience.load_image` and the
fixation CSV reader (:func:`salience.datasets.load_csv`).

Property: whatever the bytes, the reader either returns a valid result or raises a ``SalienceError``
(never another exception, never a hang).  Inputs are random bytes and mutations (byte flips, cuts,
insertions) of valid files of every format Pillow writes here; hypothesis runs a fixed, derandomised
number of examples, so the time is bounded (about 10 s on the 2-core VM) and failures reproduce.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import salience
from salience.datasets import load_csv
from salience.errors import DataError, SalienceError

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _seeds() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8))
    out = {}
    for fmt, img, kw in [("PNG", rgb, {}), ("PNG", rgb.convert("LA"), {}), ("PNG", rgb.convert("P"), {}),
                         ("JPEG", rgb, {}), ("TIFF", rgb, {}), ("TIFF", rgb, {"compression": "tiff_lzw"}),
                         ("TIFF", rgb.convert("F"), {}), ("GIF", rgb, {}), ("BMP", rgb, {}), ("WEBP", rgb, {}),
                         ("PNG", rgb.convert("1"), {}), ("TIFF", rgb.convert("I;16"), {}), ("AVIF", rgb, {})]:
        try:
            buf = io.BytesIO()
            img.save(buf, fmt, **kw)
            out[f"{fmt}-{img.mode}-{kw}"] = buf.getvalue()
        except Exception:  # a format this Pillow was built without
            pass
    return out


SEEDS = _seeds()


def _check_image_result(data: bytes) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = salience.load_image(data, max_pixels=4_000_000)
    except SalienceError:
        return
    assert img.dtype == np.float32 and img.ndim == 3 and img.shape[2] == 3
    assert img.flags.c_contiguous and np.all(np.isfinite(img))
    assert float(img.min()) >= 0.0 and float(img.max()) <= 1.0


@st.composite
def mutated(draw):
    name = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[name])
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "truncate"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[pos:pos + draw(st.integers(1, 64))]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        else:
            data = data[:pos]
    return bytes(data)


def test_seeds_cover_the_formats():
    """The fuzz seeds cover PNG, JPEG, TIFF, GIF and BMP, and each unmutated seed loads."""
    assert {"PNG", "JPEG", "TIFF", "GIF", "BMP"} <= {k.split("-")[0] for k in SEEDS}
    for data in SEEDS.values():  # the unmutated files load
        assert salience.load_image(data).shape == (12, 16, 3)


@FUZZ
@given(st.binary(max_size=2048))
def test_load_image_random_bytes(data):
    """Random bytes give an image or an ImageReadError, never another exception."""
    _check_image_result(data)


@FUZZ
@given(mutated())
def test_load_image_mutated_files(data):
    """Mutated image files give an image or an ImageReadError, never another exception."""
    _check_image_result(data)


# ---- the fixation CSV reader -------------------------------------------------------------------------

FIELD = st.one_of(
    st.integers(-5, 40).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "cat", "cat.png", "dog", " 3 ", "1e3", "nan", "-0.5", "\"", "x,y", "\ufeff", "é"]),
    st.text(max_size=6),
)


@st.composite
def csv_bytes(draw):
    header = draw(st.one_of(st.just(["image", "subject", "x", "y"]),
                            st.just(["image", "subject", "x", "y", "onset", "duration"]),
                            st.lists(st.sampled_from(["image", "subject", "x", "y", "onset", "duration", "z"]),
                                     max_size=7)))
    rows = draw(st.lists(st.lists(FIELD, min_size=0, max_size=len(header) + 1), max_size=8))
    good = draw(st.lists(st.tuples(st.sampled_from(["cat", "cat.png"]), st.sampled_from(["s1", "s2"]),
                                   st.floats(0, 31), st.floats(0, 23)), max_size=4))
    lines = [",".join(header)] + [",".join(r) for r in rows]
    if header[:4] == ["image", "subject", "x", "y"]:
        lines += [",".join([i, s, f"{x:g}", f"{y:g}"] + ["0"] * (len(header) - 4)) for i, s, x, y in good]
    text = "\n".join(lines)
    enc = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]))
    data = text.encode(enc, errors="replace")
    if draw(st.booleans()) and data:  # and sometimes a damaged byte
        pos = draw(st.integers(0, len(data) - 1))
        data = data[:pos] + bytes([draw(st.integers(0, 255))]) + data[pos + 1:]
    return data


@pytest.fixture(scope="module")
def csv_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("csvfuzz")
    (folder / "images").mkdir()
    Image.new("RGB", (32, 24)).save(folder / "images" / "cat.png")
    return folder


@settings(FUZZ, max_examples=60)
@given(csv_bytes())
def test_load_csv_never_raises_anything_but_a_data_error(csv_folder, data):
    """Random CSV bytes give a DataError or a data set whose points are finite and inside the images."""
    path = csv_folder / "fixations.csv"
    path.write_bytes(data)
    try:
        ds = load_csv(path)
    except SalienceError as exc:
        assert isinstance(exc, DataError) or "line" in str(exc) or str(exc)
        return
    for item in ds:
        pts = item.points()
        assert np.all(np.isfinite(pts))
        assert np.all(pts[:, 0] >= -0.5) and np.all(pts[:, 0] < item.width)
        assert np.all(pts[:, 1] >= -0.5) and np.all(pts[:, 1] < item.height)
