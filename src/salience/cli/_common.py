"""What every sub-command shares: input iteration with a progress bar and per-input error lines."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

from ..errors import SalienceError

T = TypeVar("T")


def progress(items: Sequence[T], desc: str, *, unit: str = "image") -> Iterator[T]:
    """Iterate ``items`` with a tqdm progress bar on stderr when there is more than one."""
    if len(items) <= 1:
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(items, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)


def emit(line: str, *, file=None) -> None:
    """Print one line without breaking a progress bar (through ``tqdm.write`` while tqdm is in use)."""
    file = file if file is not None else sys.stdout
    tq = sys.modules.get("tqdm")
    if tq is not None and getattr(tq.tqdm, "_instances", None):
        tq.tqdm.write(line, file=file)
    else:
        print(line, file=file)


def error_line(source: object, exc: BaseException) -> str:
    return f"salience: {source}: {exc}"


def for_each_input(
    inputs: Sequence[str], work: Callable[[str], None], *, desc: str
) -> int:
    """Run ``work`` on every input; report each failure on one stderr line and carry on.

    Returns the exit code: 0 when all succeeded, 1 when any failed (a summary line names them).
    """
    failed: list[str] = []
    for item in progress(list(inputs), desc):
        try:
            work(item)
        except SalienceError as exc:
            failed.append(item)
            emit(error_line(item, exc), file=sys.stderr)
    if failed:
        n = len(inputs)
        print(f"salience: {len(failed)} of {n} input(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def output_stem(path: str, used: dict[str, int]) -> str:
    """A file stem for an input, unique within one run (``photo``, ``photo-2``, ...)."""
    stem = Path(path).stem or "image"
    n = used.get(stem, 0) + 1
    used[stem] = n
    return stem if n == 1 else f"{stem}-{n}"
