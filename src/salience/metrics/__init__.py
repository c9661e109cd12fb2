"""Evaluation metrics.

Eye-fixation metrics (:mod:`salience.metrics.fixation`): AUC-Judd, AUC-Borji, shuffled AUC, NSS, CC, KL
divergence, SIM, information gain and EMD as pure functions under the ``"mit"`` (official MIT Saliency
Benchmark code) and ``"tuebingen"`` (pysaliency) conventions, plus :func:`evaluate` for several at once.

Other evaluation modules (e.g. ``salience.metrics.faithfulness``) are imported lazily on first access of
one of their names, so ``import salience.metrics`` stays light.

>>> import numpy as np
>>> from salience import metrics
>>> round(metrics.nss(np.arange(9.0).reshape(3, 3), np.array([[2.0, 2.0]])), 4)
1.4606
"""

from __future__ import annotations

import importlib
from typing import Any

from .fixation import (
    CONVENTIONS,
    EPS,
    METRICS,
    DegenerateInputWarning,
    GroundTruth,
    auc_borji,
    auc_judd,
    cc,
    centre_bias_map,
    degrees_to_pixels,
    emd,
    evaluate,
    fixation_density_map,
    fixation_map_from_points,
    information_gain,
    kld,
    nss,
    pixels_per_degree,
    prepare_ground_truth,
    sauc,
    sim,
)

from .fixation import __all__ as _FIXATION_ALL  # one list of the public names, kept in fixation.py

__all__ = list(_FIXATION_ALL)

# Sibling modules whose public names are served lazily from this package (added by their owners).
_LAZY_MODULES: tuple[str, ...] = ("faithfulness",)


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    for mod in _LAZY_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{mod}":
                continue
            raise
        if name == mod:
            return module
        exported = getattr(module, "__all__", None)
        if hasattr(module, name) and (exported is None or name in exported):
            value = getattr(module, name)
            globals()[name] = value
            return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
