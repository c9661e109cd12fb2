"""The public surface: what `import salience` offers, and that the core stays free of torch."""

from __future__ import annotations

import subprocess
import sys

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
