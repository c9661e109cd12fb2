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

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import OutputError
from ..io import atomic_write_bytes
from ..journal import read_lines

__all__ = ["COLUMNS", "read_records", "write_manifest", "manifest_path", "JOURNAL"]

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


def read_records(out: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The latest record of every job key in the journal of ``out`` (empty when there is none)."""
    return {r["key"]: r for r in read_lines(Path(out) / JOURNAL) if isinstance(r.get("key"), str)}


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
