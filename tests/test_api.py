"""The public surface: what `import salience` offers, and that the core stays free of torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import salience
from salience import errors
from salience.registry import BOTTOM_UP, EXPLANATION, get_method, methods


def test_all_names_resolve():
    """Every name in salience.__all__ is importable from the package."""
    for name in salience.__all__:
        assert getattr(salience, name) is not None, name


def test_core_import_does_not_import_torch():
    """`import salience` and a bottom-up map work without importing torch."""
    code = (
        "import sys, numpy as np, salience\n"
        "m = salience.saliency_map(np.zeros((32, 32, 3), np.float32), 'centre-bias')\n"
        "assert m.shape == (32, 32)\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_registry_names_unique_and_complete():
    """Names and aliases are unique; every row has a kind, description and paper."""
    seen = set()
    for m in methods():
        for key in (m.name, *m.aliases):
            assert key not in seen, key
            seen.add(key)
        assert m.kind in (BOTTOM_UP, EXPLANATION)
        assert m.description and m.paper
        assert get_method(m.name) is m


def test_unknown_method_suggests_close_names():
    """An unknown method name raises UnknownMethodError naming the close match."""
    with pytest.raises(errors.UnknownMethodError, match="spectral-residual"):
        get_method("spectral-residul")


def test_errors_are_builtin_kinds_too():
    """Each error class is also the builtin exception a caller would naturally catch."""
    assert issubclass(errors.InputError, ValueError)
    assert issubclass(errors.MissingDependencyError, ImportError)
    assert issubclass(errors.OutputExistsError, FileExistsError)
    assert issubclass(errors.UnknownMethodError, errors.SalienceError)


def test_bottom_up_rejects_model_arguments():
    """Passing a model to a bottom-up method is an error, not silently ignored."""
    import numpy as np

    with pytest.raises(errors.InputError, match="bottom-up"):
        salience.saliency_map(np.zeros((8, 8, 3), np.float32), "centre-bias", model=object())


def test_a_huge_prior_blur_is_computed_not_allocated():
    """blur (sigma as a fraction of the width) of 100 or 1e9 widths: OpenCV's padded copy would need tens of
    GB (the web service's hostile-parameter test was OOM-killed by it); the Fourier path gives the same
    blur as cv2.GaussianBlur where both run, and a flat (all-zero) map for a blur far wider than the image."""
    import cv2

    from salience.api import gaussian_blur_reflect

    rng = np.random.default_rng(3)
    m = rng.random((31, 47))
    for sigma in (5.0, 12.0, 40.0, 100.0):  # 5 takes OpenCV's own path; the others the folded FFT
        want = cv2.GaussianBlur(m, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
        assert np.abs(gaussian_blur_reflect(m, sigma) - want).max() < 1e-12
    img = np.zeros((48, 64, 3), np.float32)
    img[10:20, 30:40] = 1.0
    for blur in (100.0, 1e9):
        out = salience.saliency_map(img, "spectral-residual", blur=blur)
        assert out.shape == (48, 64) and np.isfinite(out).all() and 0 <= out.min() <= out.max() <= 1
    assert not salience.saliency_map(img, "spectral-residual", blur=1e9).any()  # flat: nothing stands out


def test_a_vanishing_centre_bias_sigma_gives_its_limit_not_nan():
    """centre-bias with sigma 1e-300 (hostile, or a user's typo) underflows everywhere; the map is its limit,
    1 at the pixel(s) nearest the centre and 0 elsewhere, never 0/0 = NaN."""
    img = np.zeros((48, 64, 3), np.float32)
    for sigma in (1e-300, 1e-5):
        m = salience.saliency_map(img, "centre-bias", sigma=sigma)
        assert np.isfinite(m).all() and m.max() == 1.0
        assert sorted(zip(*np.nonzero(m))) == [(23, 31), (23, 32), (24, 31), (24, 32)]
