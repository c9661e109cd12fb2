"""The exceptions salience raises.

Every error that a user can cause (a bad file, a wrong shape, an unknown method name, a missing
optional extra) is a :class:`SalienceError`.  Most are also ``ValueError`` / ``TypeError`` /
``ImportError`` / ``FileNotFoundError`` subclasses, so code that already catches the builtin kinds keeps
working.  Messages say what was received, what was expected and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "SalienceError",
    "InputError",
    "ImageReadError",
    "ImageTooLargeError",
    "UnknownMethodError",
    "ModelError",
    "ZeroGradientError",
    "MissingDependencyError",
    "OutputExistsError",
    "OutputError",
    "DataError",
    "VideoReadError",
]


class SalienceError(Exception):
    """Base class of every error salience raises on purpose."""


class InputError(SalienceError, ValueError):
    """An argument has the wrong shape, dtype, range or value (NaN, empty, mismatched lengths, ...)."""


class ImageReadError(InputError):
    """An image could not be read: missing file, not an image, truncated or corrupt data."""


class ImageTooLargeError(InputError):
    """An image has more pixels than the configured limit (a decompression-bomb guard)."""


class UnknownMethodError(InputError, KeyError):
    """A method name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelError(InputError):
    """A model-related problem: unknown layer, target out of range, missing or corrupt weights."""


class ZeroGradientError(ModelError):
    """Every gradient at the explained layer is exactly zero, so the map would be blank (not a user typo:
    a zero-initialised head, a layer that does not reach the score, or a randomised model)."""


class MissingDependencyError(SalienceError, ImportError):
    """An optional extra (torch, ...) is needed but not installed; the message gives the install command."""


class OutputExistsError(SalienceError, FileExistsError):
    """An output file exists already and overwriting was not asked for."""


class OutputError(SalienceError, OSError):
    """An output cannot be written: the disk is full, the folder is read-only or not writable, the output
    path runs through a file, standard output is full.

    ``fatal`` is True when the cause applies to every later output too (a full disk, a read-only or
    unwritable folder, ``--out`` naming a file): the CLI then stops the run with this one message instead
    of failing every remaining input the same way.  ``errno`` is the operating system's error number.
    """

    def __init__(self, message: str, *, errno: int | None = None, fatal: bool = True) -> None:
        super().__init__(message)
        self.errno = errno
        self.fatal = fatal

    def __str__(self) -> str:  # OSError would format (errno, strerror)
        return str(self.args[0]) if self.args else ""


class DataError(InputError):
    """A data set (fixations, maps, CSV) is missing, malformed or inconsistent."""


class VideoReadError(InputError):
    """A video or camera could not be read: missing file, unknown codec, corrupt or empty data."""
