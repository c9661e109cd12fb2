"""The local engine: chunks run in this process (``workers=1``) or in a pool of worker processes, each
with its own :class:`~salience.batch.work.Worker` (so each loads the model once)."""

from __future__ import annotations

import os
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterable

from .work import Worker

__all__ = ["run_local"]

_WORKER: Worker | None = None


def _init(kwargs: dict[str, Any]) -> None:
    global _WORKER
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _WORKER = Worker(**kwargs)


def _run(chunk: dict[str, Any]) -> list[dict[str, Any]]:
    assert _WORKER is not None
    return _WORKER.run_chunk(chunk)


def _context():
    import multiprocessing as mp

    # fork is fast and safe while torch is not loaded in this process (its thread pools do not survive a fork)
    if sys.platform.startswith("linux") and "torch" not in sys.modules:
        return mp.get_context("fork")
    return mp.get_context("spawn")


def run_local(chunks: Iterable[dict[str, Any]], worker_kwargs: dict[str, Any], workers: int,
              on_records: Callable[[dict[str, Any], list[dict[str, Any]]], None]) -> None:
    """Run every chunk; ``on_records(chunk, records)`` is called in this process as each one finishes."""
    chunks = list(chunks)
    if not chunks:
        return
    if workers <= 1:
        w = Worker(**worker_kwargs)
        for c in chunks:
            on_records(c, w.run_chunk(c))
        return
    kwargs = dict(worker_kwargs)
    kwargs["threads"] = max(1, (os.cpu_count() or 1) // workers)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_context(), initializer=_init, initargs=(kwargs,))
    try:
        pending: dict[Any, dict[str, Any]] = {}
        it = iter(chunks)
        limit = 2 * workers  # a few chunks queued per worker: all busy, little lost to a crash
        for c in it:
            pending[pool.submit(_run, c)] = c
            if len(pending) >= limit:
                break
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                c = pending.pop(f)
                on_records(c, f.result())
                nxt = next(it, None)
                if nxt is not None:
                    pending[pool.submit(_run, nxt)] = nxt
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        for p in list(getattr(pool, "_processes", {}).values()):  # stop the workers now, not after their chunk
            try:
                p.terminate()
            except Exception:
                pass
        raise
    pool.shutdown(wait=True)
