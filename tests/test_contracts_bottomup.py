"""Contracts every bottom-up method keeps, driven by the registry (a new row is tested automatically).

Minimum size: none.  Every method returns a map of the input's size down to 1 x 1 pixels (tested below
for 1 x 1, 2 x 2, 1 x 7, 7 x 1 and 3 x 5); on such images the map carries little meaning but obeys the
same contract (float32, finite, in the documented range).
"""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest

import salience
from salience.errors import ImageReadError, InputError, SalienceError
from salience.registry import BOTTOM_UP, methods

METHODS = methods(BOTTOM_UP)
NAMES = [m.name for m in METHODS]


def _check(m, out, shape):
    assert isinstance(out, np.ndarray), type(out)
    assert out.dtype == np.float32, out.dtype
    assert out.shape == shape, (out.shape, shape)
    assert np.all(np.isfinite(out))
    lo, hi = m.value_range  # a bottom-up row always has a fixed (lo, hi)
    assert out.min() >= lo and out.max() <= hi, (float(out.min()), float(out.max()), m.value_range)


def test_registry_lists_the_bottom_up_methods():
    """The registry lists the five bottom-up methods, each with a paper and a description, none signed."""
    assert {"itti", "spectral-residual", "image-signature", "frequency-tuned", "centre-bias"} <= set(NAMES)
    for m in METHODS:
        assert m.paper and m.description and not m.signed


@pytest.mark.parametrize("m", METHODS, ids=NAMES)
def test_function_is_documented_with_shape_paper_and_example(m):
    """Each method's docstring has a runnable example, cites the paper's first author and says float32."""
    func = m.load()
    doc = inspect.getdoc(func) or ""
    assert ">>>" in doc, f"{m.target} has no runnable example"
    first_author = re.search(r"[A-Z]\.\s+([A-Z][a-z]+)", m.paper).group(1)
    assert first_author in doc, f"{m.target}'s docstring does not cite {first_author}"
    assert "float32" in doc or "float32" in (inspect.getdoc(inspect.getmodule(func)) or "")


@pytest.mark.parametrize("m", METHODS, ids=NAMES)
def test_output_contract_on_real_photos(m, photos):
    """float32, finite, the input's size, the documented range, on every test photo."""
    for img in photos.values():
        _check(m, m.load()(img), img.shape[:2])


@pytest.mark.parametrize("m", METHODS, ids=NAMES)
def test_input_is_not_mutated(m, photo):
    """A method never writes into its input, and accepts a read-only array."""
    img = np.array(photo)  # a writeable copy
    before = img.copy()
    m.load()(img)
    assert np.array_equal(img, before)
    m.load()(photo)  # a read-only array is accepted (nothing tries to write into it)


@pytest.mark.parametrize("m", METHODS, ids=NAMES)
def test_deterministic(m, photo):
    """Two calls on equal images give bit-identical maps."""
    a = m.load()(photo)
    b = m.load()(np.array(photo))
    assert np.array_equal(a, b)


@pytest.mark.parametrize("m", METHODS, ids=NAMES)
@pytest.mark.parametrize("value", [0.0, 0.5, 1.0])
def test_uniform_image_gives_a_finite_map(m, value):
    """A uniform image gives a finite map in range, without NaN (0/0 in a normalisation is the usual bug)."""
    out = m.load()(np.full((48, 64, 3), value, np.float32))
    _check(m, out, (48, 64))


@pytest.mark.parametrize("m", METHODS, ids=NAMES)
@pytest.mark.parametrize("hw", [(1, 1), (2, 2), (1, 7), (7, 1), (3, 5), (17, 5)])
def test_tiny_images_keep_the_contract(m, hw):
    """Images down to 1 x 1 pixel give maps that keep the output contract."""
    rng = np.random.default_rng(sum(hw))
    _check(m, m.load()(rng.random((*hw, 3), dtype=np.float32)), hw)


@pytest.mark.parametrize("m", METHODS, ids=NAMES)
def test_odd_and_large_aspect_ratios(m):
    """Odd sizes and aspect ratios up to 8:1 keep the output contract."""
    rng = np.random.default_rng(1)
    for hw in ((31, 257), (257, 31), (101, 99)):
        _check(m, m.load()(rng.random((*hw, 3), dtype=np.float32)), hw)


@pytest.mark.parametrize("m", METHODS, ids=NAMES)
def test_through_saliency_map_with_every_source(m, photo, photo_file):
    """saliency_map accepts a path, bytes, uint8 and float arrays and gives the same map for each."""
    u8 = np.floor(np.asarray(photo) * 255 + 0.5).astype(np.uint8)
    ref = salience.saliency_map(u8, m.name)
    _check(m, ref, photo.shape[:2])
    for src in (photo_file, str(photo_file), photo_file.read_bytes(), u8.astype(np.float32) / np.float32(255)):
        np.testing.assert_allclose(salience.saliency_map(src, m.name), ref, atol=1e-5)
    for alias in m.aliases:
        assert np.array_equal(salience.saliency_map(u8, alias), ref)


@pytest.mark.parametrize("m", METHODS, ids=NAMES)
def test_bad_images_raise_salience_errors(m):
    """NaN, wrong channels, empty, out-of-range, channels-first and non-arrays raise ImageReadError."""
    func = m.load()
    nan = np.full((16, 16, 3), 0.5, np.float32)
    nan[4, 4, 0] = np.nan
    for bad in (nan, np.zeros((16, 16, 2), np.float32), np.zeros((0, 5, 3), np.float32),
                np.full((8, 8, 3), 1.5, np.float32), np.zeros((3, 16, 16), np.float32), "not an array"):
        with pytest.raises(ImageReadError):
            func(bad)
        with pytest.raises(SalienceError):
            salience.saliency_map(bad, m.name)


@pytest.mark.parametrize("m", METHODS, ids=NAMES)
def test_model_arguments_are_refused_for_bottom_up(m, photo):
    """saliency_map refuses model arguments for a bottom-up method with an InputError."""
    with pytest.raises(InputError, match="bottom-up"):
        salience.saliency_map(photo, m.name, target=3)


def test_unknown_method_gets_a_hint(photo):
    """A misspelt method name raises UnknownMethodError suggesting the close match."""
    with pytest.raises(salience.UnknownMethodError, match="did you mean 'spectral-residual'"):
        salience.saliency_map(photo, "spectral-residul")
