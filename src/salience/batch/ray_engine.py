"""The Ray engine: the same chunks as the local engine, run by Ray Data ``map_batches`` with a callable
class, so each actor builds one :class:`~salience.batch.work.Worker` (and loads the model once).

Each row of the dataset is one chunk (serialised as JSON) and ``batch_size=1``, so the images batched
through the model are exactly those of the local engine, and the maps are the same bytes.  The actors
write the outputs (the output folder must be visible to every node: a shared file system); the driver
journals the records as rows come back, so a Ray run resumes a local one and the other way round.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..errors import MissingDependencyError

__all__ = ["require_ray", "run_ray", "ChunkRunner"]

INSTALL = "pip install 'salience[ray]'"


def require_ray():
    """The ``ray`` module with Ray Data, or :class:`MissingDependencyError` saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            f"--engine ray needs Ray with Ray Data, which is not installed ({exc.name or exc}); install it with: "
            f"{INSTALL} (or use --engine local)") from None
    return ray


class ChunkRunner:
    """The callable class of ``map_batches``: one per actor, holding one worker (and its model)."""

    def __init__(self, worker_kwargs: dict[str, Any]) -> None:
        from .work import Worker

        self.worker = Worker(**worker_kwargs)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        out = [json.dumps(self.worker.run_chunk(json.loads(str(c)))) for c in batch["chunk"]]
        return {"records": np.array(out, dtype=object)}


def run_ray(chunks: list[dict[str, Any]], worker_kwargs: dict[str, Any], workers: int,
            on_records: Callable[[dict[str, Any], list[dict[str, Any]]], None], *, address: str | None = None,
            num_cpus: float | None = None, num_gpus: float | None = None) -> None:
    """Run the chunks on Ray (a running instance, ``address``, or a local one started and stopped here)."""
    ray = require_ray()
    if not chunks:
        return
    started = False
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        if num_gpus is None:
            num_gpus = 0.0
        if num_gpus and worker_kwargs.get("device") == "auto":
            worker_kwargs = {**worker_kwargs, "device": "cuda"}
        kw = {**worker_kwargs, "engine": "ray"}
        kw["threads"] = max(1, int(num_cpus or 1))  # one thread per CPU given to the actor (Ray's own rule)
        ds = ray.data.from_items([{"chunk": json.dumps(c)} for c in chunks], override_num_blocks=len(chunks))
        pool: dict[str, Any] = {}
        if hasattr(ray.data, "ActorPoolStrategy"):  # `concurrency=` is deprecated since Ray 2.51
            pool["compute"] = ray.data.ActorPoolStrategy(size=workers)
        else:  # pragma: no cover - older Ray
            pool["concurrency"] = workers
        ds = ds.map_batches(ChunkRunner, fn_constructor_kwargs={"worker_kwargs": kw}, batch_size=1,
                            num_cpus=num_cpus or 1, num_gpus=num_gpus or None, **pool)
        for row in ds.iter_rows():
            on_records({}, json.loads(str(row["records"])))
    finally:
        if started:
            ray.shutdown()
