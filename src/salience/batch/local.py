"""The local engine: chunks run in this process (``workers=1``) or in a pool of worker processes, each
with its own :class:`~salience.batch.work.Worker` (so each loads the model once)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

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
    """forkserver where there is one: workers fork from a clean single-threaded server, since a plain fork
    of a process whose thread pools ran (OpenCV, OpenMP, torch) can leave a lock taken forever in the
    child (seen here: a 2-worker run after a 1-worker run in one process hung); spawn elsewhere."""
    import multiprocessing as mp

    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        try:
            ctx.set_forkserver_preload(["salience", "salience.batch.work", "numpy", "cv2"])
        except Exception:  # pragma: no cover
            pass
        return ctx
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
    except BrokenProcessPool:
        _stop(pool)
        from ..errors import SalienceError

        raise SalienceError("a worker process died (killed, or out of memory?); everything finished so far is "
                            "recorded: run the same command again to continue (fewer --workers if memory "
                            "is short)") from None
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown(wait=True)


def _stop(pool) -> None:
    pool.shutdown(wait=False, cancel_futures=True)
    for p in list((getattr(pool, "_processes", None) or {}).values()):  # stop the workers now, not after their chunk
        try:
            p.terminate()
        except Exception:
            pass
