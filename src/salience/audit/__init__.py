"""Judging explanations on a model: deletion/insertion curves, ROAD imputation, sanity checks, and the
standard explanation-quality scores.

Unlike :mod:`salience.metrics` (pure functions on arrays, no torch), most of what is here runs a PyTorch
model, so it needs the torch extra.  The functions live in :mod:`salience.audit.faithfulness`
(deletion/insertion, ROAD, randomisation) and :mod:`salience.audit.quality` (faithfulness correlation,
monotonicity, sensitivity, sparseness, complexity, region perturbation).
"""

from __future__ import annotations

from . import faithfulness as _faithfulness
from . import quality as _quality
from .faithfulness import *  # noqa: F401,F403
from .quality import *  # noqa: F401,F403

__all__ = list(_faithfulness.__all__) + list(_quality.__all__)
