"""salience: saliency maps.

Bottom-up saliency (the Itti-Koch-Niebur model and its peers), explanations of PyTorch image models
(Grad-CAM, Guided Backpropagation, gradients, CAM and perturbation families) and their evaluation
(eye-fixation metrics, faithfulness and sanity checks).

The core imports without torch; :func:`explain` and :func:`load_model` import it on first use.

>>> import numpy as np, salience
>>> img = np.random.default_rng(0).random((60, 80, 3)).astype(np.float32)
>>> salience.saliency_map(img, "itti").shape
(60, 80)
"""

from __future__ import annotations

from typing import Any

from .api import saliency_map
from .errors import (
    DataError,
    ImageReadError,
    ImageTooLargeError,
    InputError,
    MissingDependencyError,
    ModelError,
    OutputError,
    OutputExistsError,
    SalienceError,
    UnknownMethodError,
    ZeroGradientError,
)
from .io import load_image, save_map
from .registry import Method, get_method, methods


def _version() -> str:
    """The installed distribution's version (pyproject.toml is the one source); a source checkout that was
    never installed reports ``0+unknown``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("salience")
    except PackageNotFoundError:
        return "0+unknown"


__version__ = _version()

__all__ = [
    "__version__",
    "load_image",
    "save_map",
    "saliency_map",
    "methods",
    "get_method",
    "Method",
    "itti_koch",
    "IttiParams",
    "scanpath",
    "stream",
    "explain",
    "load_model",
    "segment",
    "crop",
    "SalienceError",
    "InputError",
    "ImageReadError",
    "ImageTooLargeError",
    "UnknownMethodError",
    "ModelError",
    "MissingDependencyError",
    "OutputExistsError",
    "OutputError",
    "DataError",
    "ZeroGradientError",
]

# Names served lazily: the bottom-up ones to keep `import salience` light, the torch ones so that the core
# works without the torch extra.
_LAZY = {
    "itti_koch": ("salience.bottomup.itti", "itti_koch"),
    "IttiParams": ("salience.bottomup.itti", "IttiParams"),
    "scanpath": ("salience.bottomup.attention", "scanpath"),
    "stream": ("salience.video.stream", "stream"),
    "explain": ("salience.attribution", "explain"),
    "load_model": ("salience.attribution", "load_model"),
    "segment": ("salience.tasks.segment", "segment"),
    "crop": ("salience.tasks.crop", "crop"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        value = getattr(importlib.import_module(module_name), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'salience' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

