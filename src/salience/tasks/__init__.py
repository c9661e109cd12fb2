"""Applications built on any map of the registry: salient-object masks and boxes (:mod:`.segment`),
localisation of explanations (:mod:`.localisation`), smart crops (:mod:`.crop`), medical and scientific
images (:mod:`.medical`) and the scoring of a folder of object masks (:mod:`.sod_eval`).

Each is an API function (``salience.segment``, ``salience.crop``, ...) and a CLI command.
"""

from __future__ import annotations

__all__ = ["segment", "crop", "evidence_box", "pointing_game", "energy_pointing_game", "to_u8"]


def __getattr__(name: str):
    import importlib

    where = {
        "segment": "segment", "evidence_box": "segment", "crop": "crop",
        "pointing_game": "localisation", "energy_pointing_game": "localisation",
        "to_u8": "_maps",  # shared with the CLI's crop and medical commands
    }
    if name in where:
        return getattr(importlib.import_module(f"{__name__}.{where[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
