"""The ``salience`` command.

Each sub-command lives in its own module with two functions, ``add_parser(subparsers)`` and
``run(args) -> int``; :data:`COMMANDS` lists them in the order ``--help`` shows.  Shared behaviour (one
line per error, a progress bar for several inputs, atomic writes, exit codes) is in
:mod:`salience.cli._common`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import SalienceError

__all__ = ["main", "build_parser", "COMMANDS"]

#: sub-command modules, in --help order
COMMANDS = ("map", "explain", "evaluate", "audit", "methods", "demo")

EPILOG = """\
examples:
  salience map photo.jpg --method itti --overlay --scanpath 5 --panel --out maps/
  salience map *.jpg --method spectral-residual --npy
  salience explain cat.jpg --method gradcam,guided-backprop --target top1
  salience evaluate --dataset osie --data-dir ../shared/data/osie --method itti --metrics all
  salience audit cat.jpg --method gradcam,guided-backprop,gradient --out audit/
  salience methods
  salience demo

exit status: 0 all inputs done, 1 some inputs failed (each reported on one line), 2 bad usage.
"""


def _module(name: str):
    return importlib.import_module(f"salience.cli._{name}")


def build_parser() -> argparse.ArgumentParser:
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
            if exc.name != f"salience.cli._{name}":
                raise
            continue
        p = mod.add_parser(sub)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except SalienceError as exc:
        print(f"salience: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, (ValueError, KeyError)) else 1
    except BrokenPipeError:  # `salience methods | head`
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("salience: interrupted; finished outputs are complete, nothing half-written was left",
              file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
