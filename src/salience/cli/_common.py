"""What every sub-command shares: input iteration with a progress bar and per-input error lines, the
mapping of every failure to one line and an exit status, and guarded standard streams.

Exit status of every command: 0 all inputs done; 1 some inputs failed (one line each, then a summary);
2 bad usage; 3 the run stopped because outputs cannot be written (full disk, read-only or unwritable
folder, ``--out`` is a file, standard output full); 130 interrupted (Ctrl-C); 143 terminated (SIGTERM).
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..errors import OutputError, OutputExistsError, SalienceError

T = TypeVar("T")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_OUTPUT = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143

#: environment variable that makes unexpected errors show their traceback (for bug reports)
DEBUG_ENV = "SALIENCE_DEBUG"


def progress(items: Sequence[T], desc: str, *, unit: str = "image") -> Generator[T, None, None]:
    """Iterate ``items`` with a tqdm progress bar on stderr when there is more than one and stderr is a
    terminal (in a log file or a pipe the bar's carriage returns would land in front of the error lines);
    the bar is closed (its line ended) however the loop ends, so no later line is printed behind it."""
    isatty = getattr(sys.stderr, "isatty", None)
    if len(items) <= 1 or not (callable(isatty) and isatty()):
        yield from items
        return
    from tqdm import tqdm

    bar = tqdm(items, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)
    try:
        yield from bar
    finally:
        bar.close()


def emit(line: str, *, file=None) -> None:
    """Print one line without breaking a progress bar (through ``tqdm.write`` while tqdm is in use)."""
    file = file if file is not None else sys.stdout
    tq = sys.modules.get("tqdm")
    if tq is not None and getattr(tq.tqdm, "_instances", None):
        tq.tqdm.write(line, file=file)
    else:
        print(line, file=file)
        if file is sys.stderr:
            file.flush()


def error_line(source: object, exc: BaseException | str) -> str:
    return f"salience: {source}: {exc}"


def describe_unexpected(exc: BaseException) -> tuple[str, bool]:
    """(one-line message, fatal) for an exception that is not a :class:`SalienceError`."""
    if isinstance(exc, MemoryError):
        return ("not enough memory for this input; downscale the image, lower --max-pixels, or free "
                "memory", False)
    if isinstance(exc, OSError):
        from ..io import output_error

        where = exc.filename if exc.filename is not None else "an output"
        err = output_error(exc, where) if exc.errno is not None else None
        if err is not None and exc.errno in (errno.ENOSPC, errno.EROFS, getattr(errno, "EDQUOT", -1)):
            return str(err), True
        if exc.errno in (errno.EEXIST, errno.ENOTDIR) and exc.filename is not None:
            return (f"{exc.filename}: {exc.strerror or exc}: a file stands where a folder is needed; "
                    "choose another path (--out)"), True
        text = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
        return text, False
    text = " ".join(str(exc).split())[:300]
    return (f"unexpected {type(exc).__name__}" + (f": {text}" if text else "")
            + f" (a bug in salience: please report it with this input; {DEBUG_ENV}=1 shows the traceback)",
            False)


def debug() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def for_each_input(
    inputs: Sequence[str], work: Callable[[str], None], *, desc: str
) -> int:
    """Run ``work`` on every input; report each failure on one stderr line and carry on.

    A :class:`~salience.errors.SalienceError` (and any other exception but a fatal one) fails that input
    only.  A fatal :class:`~salience.errors.OutputError` (a full disk, a read-only or unwritable folder,
    ``--out`` naming a file) stops the run with one message, since every later input would fail the same
    way.  Returns the exit code: 0 when all succeeded, 1 when any failed (a summary line names them), 3
    when the run was stopped.
    """
    items = list(inputs)
    failed: list[str] = []
    done = 0
    stop: str | None = None
    iterator = progress(items, desc)
    for item in iterator:
        try:
            work(item)
            done += 1
            continue
        except OutputError as exc:
            if exc.fatal:
                stop = str(exc)
                failed.append(item)
                break
            message = str(exc)
        except SalienceError as exc:
            message = str(exc)
        except Exception as exc:
            if debug():
                raise
            message, fatal = describe_unexpected(exc)
            if fatal:
                stop = message
                failed.append(item)
                break
        failed.append(item)
        emit(error_line(item, message), file=sys.stderr)
    iterator.close()  # ends the progress bar's line before the summary
    n = len(items)
    if stop is not None:
        print(f"salience: error: {stop}", file=sys.stderr)
        print(f"salience: stopped: {done} of {n} input(s) done, {n - done} not done "
              f"(from {failed[-1]} on)", file=sys.stderr)
        return EXIT_OUTPUT
    if failed:
        print(f"salience: {len(failed)} of {n} input(s) failed: {', '.join(failed)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def whole_number_arg(minimum: int, unit: str = "", note: str = "") -> Callable[[str], int]:
    """An argparse ``type``: an integer ``>= minimum``, refused before anything runs with a message that
    names the ``unit`` and a ``note`` (e.g. ``"0 = no limit"``).

    >>> whole_number_arg(1)("3")
    3
    """
    import argparse

    tail = f" ({note})" if note else ""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be a whole number{' of ' + unit if unit else ''}{tail}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}{tail}, got {value}")
        return value

    return parse


#: argparse type of ``--max-pixels``: an integer >= 0 (0 = no limit), checked before anything runs
max_pixels_arg = whole_number_arg(0, "pixels", "0 = no limit")


def output_stem(path: str, used: dict[str, int]) -> str:
    """A file stem for an input, unique within one run (``photo``, ``photo-2``, ...)."""
    stem = Path(path).stem or "image"
    n = used.get(stem, 0) + 1
    used[stem] = n
    return stem if n == 1 else f"{stem}-{n}"


# ---- what the model-based commands (explain, audit) share ------------------------------------------


def add_model_arguments(p, *, default_method: str) -> None:
    """Arguments of every command that explains a model: inputs, model, weights, methods, target, layer,
    output folder, overwrite, device and the pixel limit."""
    from ..io import DEFAULT_MAX_PIXELS

    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    p.add_argument("--model", default="mobilenet_v2",
                   help="mobilenet_v2 (default, bundled weights), efficientnet_lite0, a torchvision name "
                        "with --weights, or hf:PATH (a Hugging Face image classifier in a local folder)")
    p.add_argument("--weights", metavar="PATH", default=None,
                   help="checkpoint (state dict .pth/.pt, or .safetensors); never unpickles code")
    p.add_argument("--method", "-m", default=default_method,
                   help=f"method(s), comma-separated (default {default_method})")
    p.add_argument("--target", default="top1", help="top1 (default), topK, a class index or a class name")
    p.add_argument("--layer", default=None, help="target layer for CAM methods (default: the model's)")
    p.add_argument("--out", "-o", default="salience-out", metavar="DIR", help="output folder")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing output files (concurrent --overwrite runs into one folder take turns)")
    p.set_defaults(_out_is_folder=True)
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--max-pixels", type=max_pixels_arg, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help="refuse larger images (decompression-bomb guard; 0 = no limit)")


def explanation_methods(spec: str) -> list[str]:
    """Registry names of a comma-separated ``--method`` value; bottom-up names are pointed to ``map``."""
    from ..registry import EXPLANATION, method_list

    return method_list(spec, EXPLANATION,
                       wrong_kind_hint="; use `salience map IMAGE --method ...` for bottom-up methods")


def bottom_up_methods(spec: str) -> list:
    """Registry rows of a comma-separated ``--method`` value; explanation names are pointed to ``explain``."""
    from ..registry import BOTTOM_UP, get_method, method_list

    names = method_list(spec, BOTTOM_UP,
                        wrong_kind_hint="; use `salience explain IMAGE --method ...` for model explanations")
    return [get_method(n) for n in names]


def refuse_overwrite(paths: Sequence[Path], overwrite: bool) -> None:
    """The CLI's one "refuse to overwrite" rule: unless ``overwrite``, an :class:`OutputExistsError` naming
    every output that exists already, raised before anything is computed or written."""
    if overwrite:
        return
    existing = [Path(p) for p in paths if os.path.lexists(p)]  # a dangling link counts: it is the user's
    if existing:
        raise OutputExistsError(
            f"{len(existing)} output file(s) exist already ({', '.join(p.name for p in existing)}); "
            "pass --overwrite to replace them, or choose another --out"
        )


def load_model_for(args):
    """The model named by ``--model/--weights`` on ``--device``, with the device checked first."""
    from ..errors import InputError

    device = str(args.device)
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise InputError(f"--device must be cpu or cuda, got {args.device!r}")
    from ..attribution.models import load_model

    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise InputError("--device cuda asked for, but torch sees no CUDA device; use --device cpu")
    return load_model(args.model, weights=args.weights, device=args.device)


def parse_target(lm: Any, spec: Any) -> Any:
    """``--target``: ``top1``/``top-k`` (kept as text), a class index, or a class name of ``lm.class_names``
    (a :class:`~salience.errors.ModelError` with close matches when there is none); see
    :meth:`salience.attribution.models.LoadedModel.target_from_text`."""
    return lm.target_from_text(spec)
