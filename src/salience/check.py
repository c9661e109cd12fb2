"""Argument checks shared by every part of salience: one wording for each kind of bad value.

Each function returns the value in its canonical type or raises :class:`~salience.errors.InputError`
whose message names the argument, says what it must be and shows what it got, e.g.
``"batch_size must be an integer >= 1, got 0"``.  No numpy or torch traceback ever reaches the user.

>>> from salience.check import check_int, check_real, check_choice
>>> check_int("steps", 8), check_real("sigma", 0.5, minimum=0, strict=True), check_choice("mode", "a", ("a", "b"))
(8, 0.5, 'a')
>>> check_int("steps", 0)
Traceback (most recent call last):
...
salience.errors.InputError: steps must be an integer >= 1, got 0
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import InputError, MissingDependencyError

__all__ = ["check_int", "check_real", "check_choice", "alternatives", "require_torch"]


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """An integer (Python or numpy, not bool) ``>= minimum``.

    Parameters
    ----------
    name: the argument's name, for the message.
    value: what the caller passed.
    minimum: the smallest accepted value (default 1).

    Returns
    -------
    int

    Examples
    --------
    >>> check_int("n", 3), check_int("offset", 0, minimum=0)
    (3, 0)
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_real(name: str, value: Any, *, minimum: float | None = None, strict: bool = False,
               convert: bool = False) -> float:
    """A finite real number, ``> minimum`` (``strict``) or ``>= minimum``; no bound when ``minimum`` is None.

    Parameters
    ----------
    name: the argument's name, for the message.
    value: a Python or numpy number (not bool); with ``convert`` anything ``float()`` accepts (``"0.5"``).
    minimum: the lower bound, or ``None``.
    strict: exclude the bound itself.
    convert: accept values that ``float()`` converts (text, 0-d arrays).

    Returns
    -------
    float

    Examples
    --------
    >>> check_real("sigma", 2), check_real("gain", "1.5", convert=True)
    (2.0, 1.5)
    >>> check_real("sigma", 0, minimum=0, strict=True)
    Traceback (most recent call last):
    ...
    salience.errors.InputError: sigma must be a finite number > 0, got 0
    """
    if convert and not isinstance(value, bool):
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise InputError(f"{name} must be a number, got {value!r}") from None
        ok = True
    else:
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
        v = float(value) if ok else math.nan
    ok = ok and math.isfinite(v)
    if ok and minimum is not None:
        ok = v > minimum if strict else v >= minimum
    if not ok:
        bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum:g}"
        raise InputError(f"{name} must be a finite number{bound}, got {value!r}")
    return v


def alternatives(choices: Sequence[Any]) -> str:
    """``"'a', 'b' or 'c'"``: the choices for a message.

    >>> alternatives(["raise", "warn", "guide"])
    "'raise', 'warn' or 'guide'"
    """
    quoted = [repr(c) for c in choices]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """``value`` if it is one of ``choices``, else ``"NAME must be 'a', 'b' or 'c', got VALUE"``.

    Examples
    --------
    >>> check_choice("mode", "cascading", ("cascading", "independent"))
    'cascading'
    """
    try:
        known = value in choices
    except TypeError:  # an unhashable value against a set or dict
        known = False
    if not known:
        raise InputError(f"{name} must be {alternatives(list(choices))}, got {value!r}")
    return value


def require_torch(purpose: str) -> Any:
    """The ``torch`` module, or a :class:`~salience.errors.MissingDependencyError` saying that ``purpose``
    (e.g. ``"deletion/insertion curves"``) needs the torch extra and how to install it.

    >>> require_torch("this example").__name__
    'torch'
    """
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - exercised without torch
        raise MissingDependencyError(
            f"{purpose} need PyTorch (the torch extra); install it with: pip install 'salience[torch]'"
        ) from exc
    return torch


def require_offline_transformers(purpose: str, install: str = "pip install 'transformers'") -> Any:
    """The ``transformers`` module, with the Hugging Face hub switched offline first (``HF_HUB_OFFLINE`` and
    ``TRANSFORMERS_OFFLINE`` set to 1 unless the user set them): salience loads models from local folders
    only and never downloads.  A :class:`~salience.errors.MissingDependencyError` saying that ``purpose``
    needs the package, and the ``install`` command, when it is not installed.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import transformers
    except ImportError:
        raise MissingDependencyError(
            f"{purpose} needs the package 'transformers', which is not installed; install it with {install} "
            "(nothing is downloaded: the weights stay in your local folder)"
        ) from None
    return transformers
