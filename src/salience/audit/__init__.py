"""Judging explanations on a model: deletion/insertion curves, ROAD imputation, sanity checks.

Unlike :mod:`salience.metrics` (pure functions on arrays, no torch), everything here runs a PyTorch
model, so it needs the torch extra.  The functions live in :mod:`salience.audit.faithfulness`.
"""

from __future__ import annotations

from .faithfulness import *  # noqa: F401,F403
from .faithfulness import __all__  # noqa: F401
