"""Two dummy registry rows (one bottom-up, one explanation), for the test that adding a method is one row.

Importing this module adds nothing; :func:`install` adds the rows to the registry (returns an undo
function).  Loaded as a pytest plugin (``pytest -p _dummy_method``) it installs them before collection,
so the registry-driven contract tests parametrize over the dummies as over any real method.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from salience import registry
from salience.io import method_input
from salience.registry import BOTTOM_UP, EXPLANATION, Method

BOTTOM_UP_NAME = "dummy-luminance"
EXPLANATION_NAME = "dummy-gradient"


def luminance(image: Any) -> np.ndarray:
    """Mean of the colour channels, min-max stretched (A. Dummy, a made-up method for the tests).

    Returns a float32 ``(H, W)`` map in ``[0, 1]``; a uniform image gives zeros.

    >>> luminance(np.ones((2, 3, 3), np.float32)).shape
    (2, 3)
    """
    img = method_input(image).astype(np.float64)
    m = img.mean(axis=2)
    lo, hi = float(m.min()), float(m.max())
    return ((m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)).astype(np.float32)


def dummy_gradient(model: Any, images: Any, target: Any = None, layer: Any = None, **params: Any):
    """The vanilla gradient under another name (an explanation row needs no more than a function)."""
    from salience.attribution import Explanation, gradient

    e = gradient(model, images, target=target, **params)
    return Explanation(e.maps, e.targets, e.scores, EXPLANATION_NAME, None, dict(e.extras))


ROWS = (
    Method(BOTTOM_UP_NAME, BOTTOM_UP, f"{__name__}:luminance", "Mean of the colour channels (a test dummy)",
           "A. Dummy. A made-up method. Tests 2026"),
    Method(EXPLANATION_NAME, EXPLANATION, f"{__name__}:dummy_gradient",
           "The vanilla gradient under another name (a test dummy)", "A. Dummy. A made-up method. Tests 2026",
           pixel_level=True),
)


def install() -> Callable[[], None]:
    """Add :data:`ROWS` to the registry; the returned function removes them again."""
    saved = registry._METHODS, registry._BY_NAME
    registry._METHODS = (*registry._METHODS, *ROWS)
    registry._BY_NAME = registry._index()

    def undo() -> None:
        registry._METHODS, registry._BY_NAME = saved

    return undo


def pytest_configure(config: Any) -> None:  # as a plugin: the rows exist before the tests are collected
    install()
