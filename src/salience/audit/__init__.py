"""Judging explanations on a model: deletion/insertion curves, ROAD imputation, sanity checks, the standard
explanation-quality scores; and over a data set, Spectral Relevance Analysis (SpRAy) of the explanation maps.

Unlike :mod:`salience.metrics` (pure functions on arrays, no torch), most of what is here runs a PyTorch
model, so it needs the torch extra.  The functions live in :mod:`salience.audit.faithfulness`
(deletion/insertion, ROAD, randomisation) and :mod:`salience.audit.quality` (faithfulness correlation,
monotonicity, sensitivity, sparseness, complexity, region perturbation).  SpRAy
(:mod:`salience.audit.spray`) is numpy/scipy on maps already computed.
"""

from __future__ import annotations

from . import faithfulness as _faithfulness
from . import quality as _quality
from . import spray as _spray
from .faithfulness import *  # noqa: F401,F403
from .quality import *  # noqa: F401,F403
from .spray import SprayResult, spray  # noqa: F401

__all__ = [*_faithfulness.__all__, *_quality.__all__, *_spray.__all__]
