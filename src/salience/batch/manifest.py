"""The record of a batch run: an append-only journal while it runs, a manifest table when it ends.

Crash safety rests on one order of events per job: the outputs are written atomically (temporary file,
fsync, rename), *then* one line is appended to the journal ``OUT/.salience-batch/journal.jsonl``
(fsynced at most once a second: a killed process loses no written line).  So a journal line always points at complete files; a job killed before its line is simply done
again (its files are replaced atomically); a line cut short by a kill is dropped when the journal is
opened next.  Only the driver (one process) writes the journal, under an exclusive lock, so two runs into
one folder cannot interleave.  The manifest (``manifest.parquet``, or ``manifest.csv`` without pyarrow)
is rebuilt from the journal, one row per job (the latest record wins), and written atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import InputError, OutputError
from ..io import atomic_write_bytes, output_error

__all__ = ["COLUMNS", "Journal", "read_lines", "read_records", "write_manifest", "manifest_path", "JOURNAL"]

JOURNAL = Path(".salience-batch") / "journal.jsonl"

#: manifest columns, in order (one row per image and method)
COLUMNS = (
    "key", "input", "rel", "method", "params", "model", "status", "png", "npy", "seconds",
    "height", "width", "min", "max", "mean", "entropy", "com_x", "com_y",
    "top_class", "top_name", "top_prob", "error", "engine",
)
_FLOATS = ("seconds", "min", "max", "mean", "entropy", "com_x", "com_y", "top_prob")
_INTS = ("height", "width", "top_class")


def _have_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


def manifest_path(out: str | os.PathLike) -> Path:
    """``OUT/manifest.parquet`` where pyarrow is installed, else ``OUT/manifest.csv``.

    Examples
    --------
    >>> manifest_path("maps").name in ("manifest.parquet", "manifest.csv")
    True
    """
    return Path(out) / ("manifest.parquet" if _have_pyarrow() else "manifest.csv")


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


def read_records(out: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The latest record of every job key in the journal of ``out`` (empty when there is none)."""
    return {r["key"]: r for r in read_lines(Path(out) / JOURNAL) if isinstance(r.get("key"), str)}


class Journal:
    """The append-only journal of one output folder (``OUT/.salience-batch/journal.jsonl``, or the file
    ``path``), held under an exclusive lock while open.  Also the journal of a resumable mask evaluation."""

    def __init__(self, out: str | os.PathLike | None, *, path: str | os.PathLike | None = None) -> None:
        if (out is None) == (path is None):
            raise TypeError("give the output folder or the journal's path, not both")
        self.path = Path(path) if path is not None else Path(out) / JOURNAL  # type: ignore[arg-type]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
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
        if self.fd is not None:
            try:
                os.fsync(self.fd)
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


def to_table(records: Iterable[dict[str, Any]]):
    """The records as a table: a ``pyarrow.Table`` with :data:`COLUMNS` (a list of dicts without
    pyarrow), rows in the order given."""
    rows = [{c: r.get(c) for c in COLUMNS} for r in records]
    if not _have_pyarrow():
        return rows
    import pyarrow as pa

    types = {c: pa.float64() if c in _FLOATS else pa.int64() if c in _INTS else pa.string() for c in COLUMNS}
    schema = pa.schema([(c, types[c]) for c in COLUMNS])
    return pa.Table.from_pylist(rows, schema=schema)


def write_manifest(out: str | os.PathLike, records: Iterable[dict[str, Any]]) -> Path:
    """Write the manifest of ``out`` atomically (Parquet, or CSV without pyarrow); returns its path."""
    import io

    path = manifest_path(out)
    table = to_table(records)
    buf = io.BytesIO()
    if isinstance(table, list):
        import csv

        text = io.StringIO()
        w = csv.DictWriter(text, fieldnames=list(COLUMNS))
        w.writeheader()
        for r in table:
            w.writerow({k: "" if v is None else v for k, v in r.items()})
        buf.write(text.getvalue().encode("utf-8"))
    else:
        import pyarrow.parquet as pq

        pq.write_table(table, buf)
    try:
        return atomic_write_bytes(path, buf.getvalue(), overwrite=True)
    except OutputError:
        raise
