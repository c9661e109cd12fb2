"""Judging explanations on a model: deletion/insertion curves, ROAD imputation, sanity checks; and over a
data set, Spectral Relevance Analysis (SpRAy) of the explanation maps.

Unlike :mod:`salience.metrics` (pure functions on arrays, no torch), the faithfulness checks run a PyTorch
model, so they need the torch extra; they live in :mod:`salience.audit.faithfulness`.  SpRAy
(:mod:`salience.audit.spray`) is numpy/scipy on maps already computed.
"""

from __future__ import annotations

from . import faithfulness as _faithfulness
from . import spray as _spray
from .faithfulness import *  # noqa: F401,F403
from .spray import SprayResult, spray  # noqa: F401

__all__ = [*_faithfulness.__all__, *_spray.__all__]
