"""Batch runs: every method for every image of folders, globs or list files, resumable after a crash.

:func:`run` plans one job per image and method, skips the jobs an earlier run into the same folder
finished, runs the rest (locally across processes, or on Ray), and returns the manifest as a table.

Layout of the output folder ``OUT``::

    OUT/<path of the image below its input folder, without suffix>_<method>[@<settings hash>].png|.npy
    OUT/manifest.parquet          one row per image and method (manifest.csv without pyarrow)
    OUT/.salience-batch/journal.jsonl   the append-only record the manifest is rebuilt from

The ``@<hash>`` tag appears when a method runs with non-default parameters (or an explanation with
another model, weights, target or layer): a changed parameter is a different job with its own files.

>>> import numpy as np, tempfile, os
>>> from PIL import Image
>>> import salience.batch
>>> d = tempfile.mkdtemp()
>>> os.makedirs(f"{d}/in/sub")
>>> Image.fromarray((np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)).save(f"{d}/in/sub/a.png")
>>> t = salience.batch.run([f"{d}/in"], "spectral-residual", out=f"{d}/out")
>>> t.column("status").to_pylist(), t.column("png").to_pylist()
(['ok'], ['sub/a_spectral-residual.png'])
>>> salience.batch.run([f"{d}/in"], "spectral-residual", out=f"{d}/out").column("status").to_pylist()  # done: skipped
['ok']
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io import DEFAULT_MAX_PIXELS, check_max_pixels
from ..journal import Journal
from ..registry import BOTTOM_UP, get_method
from .jobs import Job, expand_inputs, make_jobs, make_specs, parse_params
from .manifest import COLUMNS, JOURNAL, manifest_path, read_records, to_table, write_manifest

__all__ = ["run", "plan", "RunSummary", "COLUMNS", "parse_params", "manifest_path"]

ENGINES = ("local", "ray")


class RunSummary:
    """What the last :func:`run` did (``run(..., summary=s)`` fills it): counts and the manifest's path.

    Examples
    --------
    >>> s = RunSummary()
    >>> (s.total, s.done, s.failed, s.manifest)
    (0, 0, 0, None)
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Every count back to zero and no manifest (what :func:`run` does first)."""
        self.total = self.skipped = self.done = self.failed = 0
        self.images = 0
        self.manifest: Path | None = None
        self.seconds = 0.0


def plan(inputs: Sequence[str | os.PathLike], methods: Any, *, params: dict[str, dict[str, Any]] | None = None,
         model: str = "mobilenet_v2", weights: str | None = None, target: str | None = "top1",
         layer: str | None = None, format: str = "png",
         out: str | os.PathLike | None = None) -> tuple[list[dict[str, Any]], list[Job]]:
    """The spec rows (as dicts) and every job of a run, without running anything (images inside ``out``,
    the run's output folder, are not inputs).

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from PIL import Image
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(d / "a.png")
    >>> specs, jobs = plan([d], "itti,spectral-residual")
    >>> [s["method"] for s in specs], len(jobs)
    (['itti', 'spectral-residual'], 2)
    """
    items = expand_inputs(inputs, exclude=() if out is None else (out,))
    specs = make_specs(methods, params, model=model, weights=weights, target=target, layer=layer)
    jobs = make_jobs(items, specs, format)
    return [{"method": s.method, "params": [list(p) for p in s.params], "model": s.model, "weights": s.weights,
             "target": s.target, "layer": s.layer} for s in specs], jobs


def _is_done(job: Job, rec: dict[str, Any] | None, out: Path) -> bool:
    if rec is None or rec.get("status") != "ok":
        return False
    if any(rec.get(f) != p for f, p in job.outputs.items()):  # another --format: more files to write
        return False
    return all(os.path.isfile(out / p) for p in job.outputs.values())


def _chunks(pending: list[Job], specs: list[dict[str, Any]], batch_size: int) -> list[dict[str, Any]]:
    """Bottom-up jobs: one chunk per image; explanation jobs: up to ``batch_size`` images per chunk."""
    by_image: dict[str, dict[str, list]] = {}
    order: list[str] = []
    names = [s["method"] for s in specs]
    for j in pending:
        key = j.item.rel
        if key not in by_image:
            by_image[key] = {"item": j.item, BOTTOM_UP: [], "explanation": []}
            order.append(key)
        kind = BOTTOM_UP if get_method(j.spec.method).kind == BOTTOM_UP else "explanation"
        by_image[key][kind].append({"key": j.key, "spec": names.index(j.spec.method), "outputs": j.outputs})
    chunks: list[dict[str, Any]] = []
    batch: list[dict[str, Any]] = []
    for key in order:
        e = by_image[key]
        im = {"path": e["item"].path, "rel": e["item"].rel}
        if e[BOTTOM_UP]:
            chunks.append({"kind": BOTTOM_UP, "images": [{**im, "jobs": e[BOTTOM_UP]}]})
        if e["explanation"]:
            batch.append({**im, "jobs": e["explanation"]})
            if len(batch) >= batch_size:
                chunks.append({"kind": "explanation", "images": batch})
                batch = []
    if batch:
        chunks.append({"kind": "explanation", "images": batch})
    return chunks


def run(inputs: Sequence[str | os.PathLike] | str, methods: Any = "itti", out: str | os.PathLike = "salience-batch",
        *, params: dict[str, dict[str, Any]] | None = None, model: str = "mobilenet_v2", weights: str | None = None,
        target: str | None = "top1", layer: str | None = None, format: str = "png", workers: int = 1,
        batch_size: int = 8, engine: str = "local", address: str | None = None, device: str = "auto",
        num_cpus: float | None = None, num_gpus: float | None = None,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        progress: Callable[[int, int], None] | None = None, summary: RunSummary | None = None):
    """Compute every method for every image and return the manifest rows of this job as a table.

    Parameters
    ----------
    inputs: folders (searched recursively), globs, list files (``.txt``, one path per line) or images.
    methods: registry names, comma-separated or a list (bottom-up and explanation methods may be mixed).
    out: the output folder; outputs keep the input folder structure below it.
    params: ``{method: {name: value}}`` method parameters; a change makes new jobs (``@hash`` names).
    model, weights, target, layer: the model explained by explanation methods (loaded once per worker).
    format: ``"png"`` (8-bit map), ``"npy"`` (float32, lossless) or ``"both"``.
    workers: local worker processes, or Ray actors (``concurrency``).
    batch_size: images per batch through the model (explanations).
    engine: ``"local"`` or ``"ray"`` (``pip install 'salience[ray]'``); ``address`` for Ray: ``None``
        (a local Ray), ``"auto"`` or ``"ray://HOST:PORT"``; ``num_cpus``/``num_gpus`` per Ray actor.
    device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    progress: ``progress(images_done, images_total)``, called as images finish.

    Returns
    -------
    pyarrow.Table
        One row per image and method with :data:`COLUMNS` (a list of dicts where pyarrow is absent), in
        input order.  Failed images have ``status == "failed"`` and their ``error``; one bad image never
        stops the run.  Jobs finished by an earlier run keep their row (they are not recomputed).

    Raises
    ------
    InputError: bad inputs/options (before anything runs); OutputError: outputs cannot be written
    (full disk, unwritable folder) — the run stops, everything journalled so far stays valid.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from PIL import Image
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> img = np.zeros((32, 32, 3), np.uint8); img[8:16, 8:16] = 255
    >>> Image.fromarray(img).save(d / "a.png")
    >>> s = RunSummary()
    >>> _ = run([d], "spectral-residual", out=d / "maps", summary=s)
    >>> (s.done, s.failed), (d / "maps" / "a_spectral-residual.png").exists()
    ((1, 0), True)
    >>> _ = run([d], "spectral-residual", out=d / "maps", summary=s)  # a second run recomputes nothing
    >>> (s.skipped, s.done)
    (1, 0)
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if engine not in ENGINES:
        raise InputError(f"engine must be local or ray, got {engine!r}")
    for label, v in (("workers", workers), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InputError(f"{label} must be a whole number >= 1, got {v!r}")
    max_pixels = check_max_pixels(max_pixels)
    specs, jobs = plan(inputs, methods, params=params, model=model, weights=weights, target=target,
                       layer=layer, format=format, out=out)
    if engine == "ray":
        from .ray_engine import require_ray

        require_ray()
    if device not in ("auto", "cpu") and not str(device).startswith("cuda"):
        raise InputError(f"device must be auto, cpu or cuda, got {device!r}")
    if weights is not None and not os.path.isfile(weights):
        raise InputError(f"--weights {weights}: no such file")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder")
    s = summary if summary is not None else RunSummary()
    s.reset()  # "what the last run did": a summary passed to a second run starts from zero
    t_start = time.perf_counter()
    with Journal(out / JOURNAL) as journal:
        records = read_records(out)
        pending = [j for j in jobs if not _is_done(j, records.get(j.key), out)]
        s.total, s.skipped = len(jobs), len(jobs) - len(pending)
        remaining: dict[str, int] = {}
        for j in pending:
            remaining[j.item.rel] = remaining.get(j.item.rel, 0) + 1
        n_images = len(remaining)
        s.images = n_images
        done_images = 0
        if progress is not None:
            progress(0, n_images)

        def on_records(chunk: dict[str, Any], recs: list[dict[str, Any]]) -> None:
            nonlocal done_images
            journal.append(recs)
            for r in recs:
                records[r["key"]] = r
                s.done += r["status"] == "ok"
                s.failed += r["status"] != "ok"
                remaining[r["rel"]] -= 1
                if remaining[r["rel"]] == 0:
                    done_images += 1
            if progress is not None:
                progress(done_images, n_images)

        chunks = _chunks(pending, specs, batch_size)
        wk = {"specs": specs, "out": str(out), "device": device, "max_pixels": max_pixels, "engine": engine}

        def manifest() -> None:
            keys = [j.key for j in jobs]
            mine = set(keys)
            rows = [records[k] for k in keys if k in records] + [r for k, r in records.items() if k not in mine]
            s.manifest = write_manifest(out, rows)
            s.seconds = time.perf_counter() - t_start

        try:
            if engine == "local":
                from .local import run_local

                run_local(chunks, wk, workers, on_records)
            else:
                from .ray_engine import run_ray

                run_ray(chunks, wk, workers, on_records, address=address, num_cpus=num_cpus, num_gpus=num_gpus)
        except BaseException:
            try:  # interrupted or stopped: the manifest still shows what was finished (the journal has it anyway)
                manifest()
            except Exception:
                pass
            raise
        manifest()
    return to_table([records[j.key] for j in jobs if j.key in records])
