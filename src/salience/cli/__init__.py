"""The ``salience`` command.

Each sub-command lives in its own module with two functions, ``add_parser(subparsers)`` and
``run(args) -> int``; :data:`COMMANDS` lists them in the order ``--help`` shows.  Shared behaviour (one
line per error, a progress bar for several inputs, atomic writes, exit codes) is in
:mod:`salience.cli._common`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from .. import __version__
from ..errors import OutputError, SalienceError

__all__ = ["main", "build_parser", "COMMANDS"]

#: sub-command modules, in --help order
COMMANDS = ("map", "explain", "evaluate", "audit", "audit-dataset", "batch", "segment", "crop", "medical", "video",
            "methods", "demo", "serve", "train-fixations")

EPILOG = """\
examples:
  salience map photo.jpg --method itti --overlay --scanpath 5 --panel --out maps/
  salience map *.jpg --method spectral-residual --npy
  salience explain cat.jpg --method gradcam,guided-backprop --target top1
  salience evaluate --dataset osie --data-dir ../shared/data/osie --method itti --metrics all
  salience audit cat.jpg --method gradcam,guided-backprop,gradient --out audit/
  salience audit-dataset photos/ --method gradcam --groups groups.csv --boxes boxes.csv --out report/
  salience batch photos/ --method itti,gradcam --workers 2 --out maps/
  salience video clip.mp4 --out clip_attention.mp4 --points points.csv
  salience segment photo.jpg --method spectral-residual --grabcut --out objects/
  salience crop photo.jpg --aspect 16:9 --candidates 3 --out crops/
  salience medical scan.dcm --window 40,400 --overlay
  salience methods
  salience demo
  salience serve --port 8000

exit status: 0 all inputs done, 1 some inputs failed (each reported on one line), 2 bad usage,
  3 stopped: outputs cannot be written (full disk, read-only or unwritable folder, --out is a file,
  standard output full), 130 interrupted, 143 terminated (SIGTERM).
"""


def _module(name: str):
    return importlib.import_module(f"salience.cli._{name.replace('-', '_')}")


def build_parser() -> argparse.ArgumentParser:
    """The ``salience`` argument parser: one sub-command per module of :data:`COMMANDS`.

    Examples
    --------
    >>> from salience.cli import build_parser
    >>> args = build_parser().parse_args(["methods"])
    >>> args.command
    'methods'
    """
    parser = argparse.ArgumentParser(
        prog="salience",
        description="Saliency maps: bottom-up models, explanations of image classifiers, evaluation.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"salience {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            mod = _module(name)
        except ModuleNotFoundError as exc:  # a sub-command not built yet must not break the others
            if exc.name != f"salience.cli._{name.replace('-', '_')}":
                raise
            continue
        p = mod.add_parser(sub)
        p.set_defaults(_run=mod.run)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so it ends like Ctrl-C: temporary files removed, one line."""


class _GuardedStdout:
    """Standard output that a closed pipe or a full device cannot turn into a traceback.

    ``salience map *.jpg | head -1``: after the reader has gone, writes are dropped (the maps are still
    written, the run goes on).  ``> /dev/full`` or an I/O error: one line on stderr, writes are dropped,
    and the command ends with exit status 3 (the report it was asked for is lost).
    """

    def __init__(self, stream) -> None:
        self._stream = stream
        self.broken_pipe = False
        self.error: OSError | None = None

    def _fail(self, exc: OSError) -> None:
        if isinstance(exc, BrokenPipeError):
            self.broken_pipe = True
        elif self.error is None:
            self.error = exc
            print(f"salience: error: cannot write to standard output ({exc.strerror or exc}); the report "
                  "lines are lost, output files are still written", file=sys.stderr)
        try:  # later flushes (also the interpreter's at exit) go nowhere instead of failing again
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            pass

    @property
    def failed(self) -> bool:
        return self.broken_pipe or self.error is not None

    def write(self, text: str) -> int:
        if self.failed:
            return len(text)
        try:
            n = self._stream.write(text)
            if "\n" in text:
                self._stream.flush()
            return n
        except OSError as exc:
            self._fail(exc)
            return len(text)

    def flush(self) -> None:
        if self.failed:
            return
        try:
            self._stream.flush()
        except OSError as exc:
            self._fail(exc)

    def __getattr__(self, name):
        return getattr(self._stream, name)


@contextlib.contextmanager
def _overwrite_lock(args):
    """Runs with ``--overwrite`` into the same output folder take turns (an exclusive ``flock`` on the
    folder itself, so no lock file is created); otherwise two of them could leave one run's map next to
    the other's overlay.  Runs without ``--overwrite`` never replace files, so they need no turn."""
    if not (getattr(args, "overwrite", False) and getattr(args, "_out_is_folder", False) and args.out):
        yield
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    from ..io import output_error

    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        raise output_error(exc, out / "...", what="create") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"salience: waiting for another `--overwrite` run writing into {out}/ to finish "
                  "(Ctrl-C to stop)", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a file system without locks
            pass
        yield
    finally:
        os.close(fd)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Python warnings (Pillow, torch, ...) as one line each, printed past the progress bar."""
    from ._common import emit

    text = " ".join(str(message).split())
    emit(f"salience: warning: {text} ({category.__name__})", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (see :mod:`salience.cli._common`).

    Examples
    --------
    >>> import contextlib, io, os, tempfile
    >>> import numpy as np
    >>> from PIL import Image
    >>> from salience.cli import main
    >>> d = tempfile.mkdtemp()
    >>> Image.fromarray(np.zeros((32, 48, 3), np.uint8)).save(os.path.join(d, "a.png"))
    >>> with contextlib.redirect_stdout(io.StringIO()):   # it prints one line per file written
    ...     status = main(["map", os.path.join(d, "a.png"), "-m", "spectral-residual", "--out", f"{d}/maps"])
    >>> status
    0
    >>> sorted(os.listdir(os.path.join(d, "maps")))
    ['a_spectral-residual.png']
    """
    import signal
    import warnings

    from ._common import EXIT_INTERRUPTED, EXIT_OUTPUT, EXIT_TERMINATED, EXIT_USAGE, debug, describe_unexpected

    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return EXIT_USAGE

    pid = os.getpid()

    def on_term(signum, frame):
        if os.getpid() != pid:  # a forked worker (evaluate --jobs): die as it would without us
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise Terminated()

    old_term = None
    if threading.current_thread() is threading.main_thread():
        old_term = signal.signal(signal.SIGTERM, on_term)
    from .. import io as sio

    old_stdout, old_show, old_capture = sys.stdout, warnings.showwarning, sio.CAPTURE_DECODER_MESSAGES
    guard = _GuardedStdout(sys.stdout)
    sys.stdout = guard
    warnings.showwarning = _show_warning
    sio.CAPTURE_DECODER_MESSAGES = True
    try:
        try:
            with _overwrite_lock(args):
                code = int(args._run(args) or 0)
        except Terminated:
            print("salience: terminated (SIGTERM); finished outputs are complete, nothing half-written was "
                  "left", file=sys.stderr)
            return EXIT_TERMINATED
        except KeyboardInterrupt:
            print("salience: interrupted; finished outputs are complete, nothing half-written was left",
                  file=sys.stderr)
            return EXIT_INTERRUPTED
        except OutputError as exc:
            print(f"salience: error: {exc}", file=sys.stderr)
            return EXIT_OUTPUT
        except SalienceError as exc:
            print(f"salience: error: {exc}", file=sys.stderr)
            return EXIT_USAGE if isinstance(exc, (ValueError, KeyError)) else 1
        except Exception as exc:
            if debug():
                raise
            message, fatal = describe_unexpected(exc)
            print(f"salience: error: {message}", file=sys.stderr)
            return EXIT_OUTPUT if fatal or isinstance(exc, OSError) else 1
        guard.flush()
        if guard.error is not None:
            return max(code, EXIT_OUTPUT)
        if guard.broken_pipe and getattr(args, "images", None) and len(args.images) > 1:
            print("salience: note: standard output was closed early (broken pipe); the rest of the report "
                  "was dropped, every input was still processed", file=sys.stderr)
        return code
    finally:
        sys.stdout = old_stdout
        warnings.showwarning = old_show
        sio.CAPTURE_DECODER_MESSAGES = old_capture
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
