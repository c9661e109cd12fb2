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
    """Base class of every error salience raises on purpose.

    Examples
    --------
    >>> import salience
    >>> try:
    ...     salience.get_method("no-such-method")
    ... except salience.SalienceError as e:
    ...     print(type(e).__name__)
    UnknownMethodError
    """


class InputError(SalienceError, ValueError):
    """An argument has the wrong shape, dtype, range or value (NaN, empty, mismatched lengths, ...).

    Examples
    --------
    >>> import numpy as np
    >>> from salience import metrics
    >>> from salience.errors import InputError
    >>> try:
    ...     metrics.nss(np.ones((4, 4)), np.empty((0, 2)))
    ... except InputError as e:
    ...     print(isinstance(e, ValueError), str(e)[:18])
    True fixations is empty
    """


class ImageReadError(InputError):
    """An image could not be read: missing file, not an image, truncated or corrupt data.

    Examples
    --------
    >>> import salience
    >>> try:
    ...     salience.load_image("no-such-file.png")
    ... except salience.ImageReadError as e:
    ...     print(isinstance(e, salience.InputError))
    True
    """


class ImageTooLargeError(InputError):
    """An image has more pixels than the configured limit (a decompression-bomb guard).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np, salience
    >>> path = os.path.join(tempfile.mkdtemp(), "big.png")
    >>> _ = salience.save_map(np.eye(100), path)
    >>> try:
    ...     salience.load_image(path, max_pixels=5000)
    ... except salience.ImageTooLargeError as e:
    ...     print(type(e).__name__)
    ImageTooLargeError
    """


class UnknownMethodError(InputError, KeyError):
    """A method name that is not in the registry.

    Examples
    --------
    >>> import salience
    >>> try:
    ...     salience.get_method("itty")
    ... except salience.UnknownMethodError as e:
    ...     print(isinstance(e, KeyError), "itti" in str(e))
    True True
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelError(InputError):
    """A model-related problem: unknown layer, target out of range, missing or corrupt weights.

    Examples
    --------
    >>> import torch
    >>> from salience.attribution import resolve_layer
    >>> from salience.errors import ModelError
    >>> try:
    ...     resolve_layer(torch.nn.Sequential(torch.nn.ReLU()), "features.99")
    ... except ModelError as e:
    ...     print(type(e).__name__)
    ModelError
    """


class ZeroGradientError(ModelError):
    """Every gradient at the explained layer is exactly zero, so the map would be blank (not a user typo:
    a zero-initialised head, a layer that does not reach the score, or a randomised model).

    Examples
    --------
    >>> import torch
    >>> from salience.attribution import gradient
    >>> from salience.errors import ModelError, ZeroGradientError
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 2))
    >>> _ = torch.nn.init.zeros_(net[1].weight)
    >>> try:
    ...     gradient(net, torch.rand(1, 3, 8, 8), target=0)
    ... except ZeroGradientError as e:
    ...     print(isinstance(e, ModelError))
    True
    """


class MissingDependencyError(SalienceError, ImportError):
    """An optional extra (torch, ...) is needed but not installed; the message gives the install command.

    Examples
    --------
    >>> from salience.errors import MissingDependencyError
    >>> e = MissingDependencyError("salience serve needs FastAPI; install it with: pip install 'salience[web]'")
    >>> isinstance(e, ImportError), str(e).split(": ")[-1]
    (True, "pip install 'salience[web]'")
    """


class OutputExistsError(SalienceError, FileExistsError):
    """An output file exists already and overwriting was not asked for.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np, salience
    >>> path = os.path.join(tempfile.mkdtemp(), "map.png")
    >>> _ = salience.save_map(np.eye(8), path)
    >>> try:
    ...     salience.save_map(np.eye(8), path)
    ... except salience.OutputExistsError as e:
    ...     print(isinstance(e, FileExistsError))
    True
    """


class OutputError(SalienceError, OSError):
    """An output cannot be written: the disk is full, the folder is read-only or not writable, the output
    path runs through a file, standard output is full.

    ``fatal`` is True when the cause applies to every later output too (a full disk, a read-only or
    unwritable folder, ``--out`` naming a file): the CLI then stops the run with this one message instead
    of failing every remaining input the same way.  ``errno`` is the operating system's error number.

    Examples
    --------
    >>> from salience.errors import OutputError
    >>> e = OutputError("cannot write out/a.png: no space left on device", errno=28)
    >>> isinstance(e, OSError), e.errno, e.fatal, str(e)
    (True, 28, True, 'cannot write out/a.png: no space left on device')
    """

    def __init__(self, message: str, *, errno: int | None = None, fatal: bool = True) -> None:
        super().__init__(message)
        self.errno = errno
        self.fatal = fatal

    def __str__(self) -> str:  # OSError would format (errno, strerror)
        return str(self.args[0]) if self.args else ""


class DataError(InputError):
    """A data set (fixations, maps, CSV) is missing, malformed or inconsistent.

    Examples
    --------
    >>> from salience.datasets import blur_sigma
    >>> from salience.errors import DataError
    >>> try:
    ...     blur_sigma(25.0, sigma_deg=1.0, pixels_per_degree=30.0)
    ... except DataError as e:
    ...     print(isinstance(e, ValueError))
    True
    """


class VideoReadError(InputError):
    """A video or camera could not be read: missing file, unknown codec, corrupt or empty data.

    Examples
    --------
    >>> import salience
    >>> from salience.errors import VideoReadError
    >>> try:
    ...     salience.stream("no-such-video.mp4")
    ... except VideoReadError as e:
    ...     print(isinstance(e, salience.InputError))
    True
    """
