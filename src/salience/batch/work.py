"""The computation of a batch run, the same for every engine: a *chunk* of images in, manifest records out.

A chunk is one image (bottom-up methods) or up to ``batch_size`` images (explanations, batched through
the model).  A :class:`Worker` is built once per process (a local worker process or a Ray actor) and loads
the model once, on first use.  It writes each job's outputs atomically and returns one record per job;
the driver journals the records (see :mod:`salience.batch.manifest`).  Because both engines build the
same chunks and run them through this class, they write the same bytes.
"""

from __future__ import annotations

import math
import os
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OutputError, SalienceError
from ..registry import BOTTOM_UP, get_method

__all__ = ["Worker", "map_stats"]


def _level_counts(levels: np.ndarray) -> np.ndarray:
    """How many pixels have each of the 256 grey levels (float64 ``(256,)``, exact integers): OpenCV's
    histogram of a uint8 image, about 4x faster than ``np.bincount`` (which widens every byte to int64).
    Its counts are float32, exact below 2**24 pixels; larger maps are counted by numpy."""
    import cv2

    lv = np.ascontiguousarray(levels, dtype=np.uint8)
    if lv.ndim != 2 or lv.size >= 2**24:
        return np.bincount(lv.ravel(), minlength=256).astype(np.float64)
    return cv2.calcHist([lv], [0], None, [256], [0, 256]).ravel().astype(np.float64)


def map_stats(sal: np.ndarray, levels: np.ndarray | None = None) -> dict[str, float]:
    """Summary statistics of one map (float ``(H, W)``).

    ``min``, ``max``, ``mean`` of the raw values; ``entropy``: Shannon entropy in bits of the histogram
    of the map's 256 grey levels (``levels``, the uint8 image of the PNG, :func:`salience.io.map_to_uint8`;
    0 for a constant map, at most 8); ``com_x``, ``com_y``: the centre of mass of ``map - min`` in [0, 1]
    fractions of the width and height (pixel centres; 0.5 for a constant map).

    >>> m = np.zeros((4, 4), np.float32); m[0, 3] = 1
    >>> s = map_stats(m); round(s["com_x"], 3), round(s["com_y"], 3), round(s["entropy"], 3)
    (0.875, 0.125, 0.337)
    """
    from ..io import map_to_uint8

    m = np.asarray(sal)
    lo, hi = float(m.min()), float(m.max())
    out = {"min": lo, "max": hi, "mean": float(m.mean(dtype=np.float64))}
    h_, w_ = m.shape
    if levels is None:
        levels = map_to_uint8(m)
    if hi > lo:
        counts = _level_counts(levels)
        p = counts[counts > 0] / counts.sum()
        out["entropy"] = float(-(p * np.log2(p)).sum())
    else:
        out["entropy"] = 0.0
    cols = m.sum(axis=0, dtype=np.float64) - lo * h_  # sums of (map - min) per column / row
    rows = m.sum(axis=1, dtype=np.float64) - lo * w_
    total = float(cols.sum())
    if hi > lo and total > 0 and math.isfinite(total):
        out["com_x"] = float((cols * ((np.arange(w_) + 0.5) / w_)).sum() / total)
        out["com_y"] = float((rows * ((np.arange(h_) + 0.5) / h_)).sum() / total)
    else:
        out["com_x"] = out["com_y"] = 0.5
    return out


def _message(exc: BaseException) -> str:
    if isinstance(exc, SalienceError):
        return " ".join(str(exc).split())
    if isinstance(exc, MemoryError):
        return "not enough memory for this image; downscale it, lower --max-pixels, or free memory"
    text = " ".join(str(exc).split())[:300]
    return f"unexpected {type(exc).__name__}" + (f": {text}" if text else "")


class Worker:
    """Runs chunks.  ``specs``: the :class:`~salience.batch.jobs.Spec` rows as dicts; ``out``: the output
    folder; ``device``: ``"auto"`` (CUDA when torch sees one), ``"cpu"`` or ``"cuda[:N]"``."""

    def __init__(self, specs: list[dict[str, Any]], out: str, *, device: str = "auto",
                 max_pixels: int | None = None, engine: str = "local", threads: int | None = None) -> None:
        self.specs = specs
        self.out = Path(out)
        self.device = device
        self.max_pixels = max_pixels
        self.engine = engine
        self.threads = threads
        self._model = None
        if threads:
            try:
                import cv2

                cv2.setNumThreads(int(threads))
            except Exception:  # pragma: no cover - cv2 is a dependency
                pass

    # ---- the model, loaded once per worker ------------------------------------------------------------
    def model(self):
        if self._model is None:
            import torch

            from .. import load_model

            if self.threads:
                torch.set_num_threads(int(self.threads))
            dev = self.device
            if dev == "auto":
                dev = "cuda" if torch.cuda.is_available() else "cpu"
            self.device = dev
            s = next(s for s in self.specs if get_method(s["method"]).kind != BOTTOM_UP)
            self._model = load_model(s["model"], weights=s["weights"], device=dev)
        return self._model

    # ---- one chunk ---------------------------------------------------------------------------------------
    def run_chunk(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """``chunk``: ``{"kind": "bottom-up"|"explanation", "images": [{"path", "rel", "jobs": [{"key",
        "spec", "outputs"}]}]}`` -> one record per job."""
        records: list[dict[str, Any]] = []
        loaded = []
        for im in chunk["images"]:
            t0 = time.perf_counter()
            try:
                from ..io import load_image

                img = load_image(im["path"], max_pixels=self.max_pixels)
            except OutputError:
                raise
            except Exception as exc:
                msg = _message(exc)
                records += [self._record(im, j, status="failed", error=msg, seconds=time.perf_counter() - t0)
                            for j in im["jobs"]]
                continue
            loaded.append((im, img, time.perf_counter() - t0))
        if chunk["kind"] == BOTTOM_UP:
            for im, img, t_load in loaded:
                for j in im["jobs"]:
                    records.append(self._bottom_up(im, img, j, t_load / max(1, len(im["jobs"]))))
        elif loaded:
            records += self._explain(loaded)
        return records

    def _record(self, im, job, *, status: str, error: str | None = None, seconds: float = 0.0,
                sal: np.ndarray | None = None, top: tuple | None = None,
                levels: np.ndarray | None = None) -> dict[str, Any]:
        import json

        spec = self.specs[job["spec"]]
        rec: dict[str, Any] = {
            "key": job["key"], "input": im["path"], "rel": im["rel"], "method": spec["method"],
            "params": json.dumps(dict(spec["params"]), sort_keys=True),
            "model": spec["model"] if get_method(spec["method"]).kind != BOTTOM_UP else None,
            "status": status, "png": job["outputs"].get("png"), "npy": job["outputs"].get("npy"),
            "seconds": float(seconds), "error": error, "engine": self.engine,
        }
        if sal is not None:
            rec["height"], rec["width"] = int(sal.shape[0]), int(sal.shape[1])
            rec.update(map_stats(sal, levels))
        if top is not None:
            rec["top_class"], rec["top_name"], rec["top_prob"] = int(top[0]), str(top[1]), float(top[2])
        return rec

    def _save(self, sal: np.ndarray, job) -> np.ndarray:
        """Write the job's files; returns the map's 8-bit levels (the PNG's pixels)."""
        from ..io import atomic_write_bytes, encode_png, map_to_uint8, save_npy

        outs = job["outputs"]
        levels = map_to_uint8(sal)
        if "png" in outs:
            atomic_write_bytes(self.out / outs["png"], encode_png(levels), overwrite=True)
        if "npy" in outs:
            save_npy(np.asarray(sal, dtype=np.float32), self.out / outs["npy"], overwrite=True)
        return levels

    def _bottom_up(self, im, img, job, t_load: float) -> dict[str, Any]:
        from .. import saliency_map

        spec = self.specs[job["spec"]]
        t0 = time.perf_counter()
        try:
            sal = saliency_map(img, spec["method"], **dict(spec["params"]))
            levels = self._save(sal, job)
        except OutputError as exc:
            if exc.fatal:
                raise
            return self._record(im, job, status="failed", error=_message(exc), seconds=time.perf_counter() - t0)
        except Exception as exc:
            if os.environ.get("SALIENCE_DEBUG", "") not in ("", "0"):
                traceback.print_exc()
            return self._record(im, job, status="failed", error=_message(exc), seconds=time.perf_counter() - t0)
        return self._record(im, job, status="ok", seconds=t_load + time.perf_counter() - t0, sal=sal, levels=levels)

    def _target(self, lm, spec):
        t = spec.get("target")
        return None if t is None else lm.target_from_text(str(t))

    def _explain(self, loaded) -> list[dict[str, Any]]:
        """Explanations of the loaded images: grouped by their model input size, each group in one batch
        through the model; a group that fails is retried image by image, so one bad image fails alone."""
        records: list[dict[str, Any]] = []
        try:
            lm = self.model()
        except Exception as exc:
            msg = _message(exc)
            return [self._record(im, j, status="failed", error=msg) for im, _, _ in loaded for j in im["jobs"]]
        prepared = []
        for im, img, t_load in loaded:
            try:
                prepared.append((im, img, lm.preprocess(img, crop=False), t_load))
            except Exception as exc:
                records += [self._record(im, j, status="failed", error=_message(exc)) for j in im["jobs"]]
        groups: dict[tuple, list] = {}
        for p in prepared:
            groups.setdefault(tuple(p[2].shape), []).append(p)
        for group in groups.values():
            try:
                records += self._explain_group(lm, group)
            except OutputError as exc:
                if exc.fatal:
                    raise
                records += self._split(lm, group)
            except Exception:
                records += self._split(lm, group)
        return records

    def _split(self, lm, group) -> list[dict[str, Any]]:
        out = []
        for p in group:
            try:
                out += self._explain_group(lm, [p], per_method_errors=True)
            except OutputError as exc:
                if exc.fatal:
                    raise
                out += [self._record(p[0], j, status="failed", error=_message(exc)) for j in p[0]["jobs"]]
            except Exception as exc:
                out += [self._record(p[0], j, status="failed", error=_message(exc)) for j in p[0]["jobs"]]
        return out

    def _explain_group(self, lm, group, *, per_method_errors: bool = False) -> list[dict[str, Any]]:
        import torch
        import torch.nn.functional as F

        from .. import explain

        t0 = time.perf_counter()
        x = torch.cat([p[2] for p in group]).to(self.device)
        tops = lm.top_k(x, 1)
        t_top = (time.perf_counter() - t0) / len(group)
        # the methods each image still needs (an image may have some of them done already)
        wanted: dict[int, list] = {}
        for i, p in enumerate(group):
            for j in p[0]["jobs"]:
                wanted.setdefault(j["spec"], []).append((i, j))
        records = []
        for si, todo in wanted.items():
            spec = self.specs[si]
            idx = [i for i, _ in todo]
            t1 = time.perf_counter()
            try:
                e = explain(lm, x[idx], spec["method"], target=self._target(lm, spec), layer=spec["layer"],
                            **dict(spec["params"]))
                maps = e.maps.detach().float().cpu()
            except Exception as exc:
                if not per_method_errors:
                    raise
                records += [self._record(group[i][0], j, status="failed", error=_message(exc)) for i, j in todo]
                continue
            per = (time.perf_counter() - t1) / len(idx)
            for k, (i, j) in enumerate(todo):
                im, img, _, t_load = group[i]
                h, w = img.shape[:2]
                m = maps[k:k + 1]
                if tuple(m.shape[-2:]) != (h, w):
                    m = F.interpolate(m[:, None], size=(h, w), mode="bilinear", align_corners=False)[:, 0]
                sal = m[0].numpy().astype(np.float32)
                try:
                    levels = self._save(sal, j)
                except OutputError as exc:
                    if exc.fatal:
                        raise
                    records.append(self._record(im, j, status="failed", error=_message(exc)))
                    continue
                n_jobs = max(1, len(im["jobs"]))
                top = tops[i][0]
                records.append(self._record(im, j, status="ok", seconds=per + (t_load + t_top) / n_jobs, sal=sal,
                                            top=top, levels=levels))
        return records
