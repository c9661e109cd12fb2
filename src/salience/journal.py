"""An append-only journal of JSON lines: the record of work done, so an interrupted run can resume.

One writer at a time (an exclusive ``flock`` while the journal is open: a second run into the same place
is refused with a clear error); every ``append`` goes to the end of the file (``O_APPEND``) and the file
is fsynced at most once a second and at close, so a killed process loses no written line; a last line
cut short by a kill is cut off when the journal is opened next, and :func:`read_lines` skips lines that do
not parse.  Used by the batch runs (``OUT/.salience-batch/journal.jsonl``) and the resumable mask
evaluation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import InputError
from .io import output_error

__all__ = ["Journal", "read_lines"]


def read_lines(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The JSON objects of a journal file, in order (empty when there is none).  Lines that do not parse
    (the tail of a write cut short by a kill) are skipped.

    >>> read_lines("no-such-journal.jsonl")
    []
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise InputError(f"cannot read the journal {path}: {exc.strerror or exc}") from None
    out = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


class Journal:
    """The append-only JSON-lines file ``path``, held under an exclusive lock while open (its folder is
    created); a last line cut short by a kill is cut off on open.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "run" / "journal.jsonl"
    >>> with Journal(p) as j:
    ...     j.append([{"key": "a", "n": 1}, {"key": "b", "n": 2.5}])
    >>> read_lines(p)
    [{'key': 'a', 'n': 1}, {'key': 'b', 'n': 2.5}]
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fd: int = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
        except OSError as exc:
            raise output_error(exc, self.path, what="create") from None
        try:
            import fcntl

            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(self.fd)
                raise InputError(f"another run is writing into {self.path.parent}/ (its journal {self.path} "
                                 "is locked); wait for it to end or choose another --out") from None
            except OSError:
                pass  # a file system without locks
        except ImportError:  # pragma: no cover - Windows
            pass
        self.closed = False
        self._synced = 0.0
        self._drop_partial_tail()

    def _drop_partial_tail(self) -> None:
        """A kill during an append can leave a last line without its newline: cut it off, so the next
        record starts on a line of its own (the cut job is done again)."""
        size = os.fstat(self.fd).st_size
        if size == 0:
            return
        os.lseek(self.fd, max(0, size - 1), os.SEEK_SET)
        if os.read(self.fd, 1) == b"\n":
            return
        with open(self.path, "rb") as fh:
            data = fh.read()
        keep = data.rfind(b"\n") + 1
        os.ftruncate(self.fd, keep)
        os.fsync(self.fd)

    #: the journal is fsynced at most this often (and at close): a line written but not yet fsynced
    #: survives a killed process (it is in the kernel's cache); only a power cut can lose the last
    #: second's lines, and then those jobs are simply done again (their files were fsynced)
    SYNC_EVERY_S = 1.0

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        import time

        data = b"".join(json.dumps(r, sort_keys=True, default=_json_default).encode() + b"\n" for r in records)
        if not data:
            return
        if self.closed:
            raise ValueError(f"the journal {self.path} is closed")
        try:
            view = memoryview(data)
            while view:  # O_APPEND: every write goes to the end
                view = view[os.write(self.fd, view):]
            now = time.monotonic()
            if now - self._synced >= self.SYNC_EVERY_S:
                os.fsync(self.fd)
                self._synced = now
        except OSError as exc:
            raise output_error(exc, self.path) from None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                os.fsync(self.fd)
            except OSError:
                pass
            os.close(self.fd)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _json_default(obj: Any) -> Any:
    """JSON for what ``json`` cannot write: numpy scalars as Python numbers, anything else as ``str``."""
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)
