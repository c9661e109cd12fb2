"""Evaluation metrics.

Eye-fixation metrics (:mod:`salience.metrics.fixation`): AUC-Judd, AUC-Borji, shuffled AUC, NSS, CC, KL
divergence, SIM, information gain and EMD as pure functions under the ``"mit"`` (official MIT Saliency
Benchmark code) and ``"tuebingen"`` (pysaliency) conventions, plus :func:`evaluate` for several at once.
The ground truth they score against (fixation and density maps, the centre bias, visual angle,
:func:`prepare_ground_truth`) is in :mod:`salience.metrics.groundtruth`.  Salient-object metrics
(:mod:`salience.metrics.objects`): MAE, F-measure, weighted F-measure, S-measure, E-measure, IoU and Dice
against object masks.

Other evaluation modules (e.g. ``salience.audit.faithfulness``) are imported lazily on first access of
one of their names, so ``import salience.metrics`` stays light.

>>> import numpy as np
>>> from salience import metrics
>>> round(metrics.nss(np.arange(9.0).reshape(3, 3), np.array([[2.0, 2.0]])), 4)
1.4606
"""

from __future__ import annotations

from . import objects as _objects  # salient-object metrics (MAE, F, weighted F, S, E, IoU, Dice)
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
    parse_metrics,
    pixels_per_degree,
    prepare_ground_truth,
    sauc,
    sim,
)
from .fixation import __all__ as _FIXATION_ALL  # one list of the public names, kept in fixation.py
from .objects import *  # noqa: E402,F401,F403

__all__ = list(_FIXATION_ALL) + list(_objects.__all__)
