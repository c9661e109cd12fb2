"""The work behind each endpoint, as plain functions of decoded inputs (no HTTP here).

Everything goes through the public API (:func:`salience.saliency_map`, :func:`salience.scanpath`,
:func:`salience.itti_koch`, :func:`salience.metrics.evaluate`, :mod:`salience.viz`); the methods and
their parameters come from the registry.  Errors are :class:`FieldError` (which request field was wrong)
or the library's own :class:`~salience.errors.SalienceError`; the HTTP layer turns them into JSON.
"""

from __future__ import annotations

import base64
import inspect
import io
import json
import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import (
    ImageReadError,
    ImageTooLargeError,
    InputError,
    MissingDependencyError,
    ModelError,
    SalienceError,
    UnknownMethodError,
)
from ..registry import BOTTOM_UP, Method, get_method, methods

__all__ = [
    "FieldError",
    "ModelHolder",
    "UnsupportedMediaError",
    "compute_map",
    "decode_image",
    "float32_payload",
    "method_rows",
    "parse_method",
    "parse_params",
    "png_bytes",
    "sniff_image",
]

#: first bytes of the image formats the service decodes (the file name and declared type are ignored)
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"BM", "image/bmp"),
)

#: arguments every explanation gets from the request itself, never from ``params``
_RESERVED = {"image", "model", "images", "target"}


class FieldError(InputError):
    """A request field is wrong: ``field`` names it, the message says what was wrong and what to send."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class UnsupportedMediaError(FieldError):
    """An upload whose bytes are not an image format the service reads (-> 415)."""


# ---- the registry, as the API lists it --------------------------------------------------------------------

def _json_type(value: Any) -> str | None:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (tuple, list)) and all(isinstance(v, (int, float, str)) for v in value):
        return "array"
    return None  # a callable or an object: not settable over HTTP


@dataclass(frozen=True)
class _Signature:
    parameters: tuple[dict[str, Any], ...]
    open: bool  # the implementation takes **params and validates further names itself


_SIGNATURES: dict[str, _Signature] = {}
_SIG_LOCK = threading.Lock()


def _signature(m: Method) -> _Signature:
    """The JSON-settable keyword parameters of a method's implementation (read from its signature)."""
    with _SIG_LOCK:
        if m.name not in _SIGNATURES:
            params: list[dict[str, Any]] = []
            open_ = False
            try:
                sig = inspect.signature(m.load())
            except (ImportError, SalienceError):  # an extra that is not installed (torch): listed, not usable
                sig = None
            if sig is not None:
                for p in sig.parameters.values():
                    if p.kind is p.VAR_KEYWORD:
                        open_ = True
                        continue
                    if p.name in _RESERVED or p.default is p.empty:
                        continue
                    kind = _json_type(p.default)
                    if kind is None:
                        continue
                    default = list(p.default) if isinstance(p.default, tuple) else p.default
                    params.append({"name": p.name, "type": kind, "default": default})
            _SIGNATURES[m.name] = _Signature(tuple(params), open_)
        return _SIGNATURES[m.name]


def method_rows(kind: str | None = None) -> list[dict[str, Any]]:
    """Every registry row as JSON (``Method.as_dict()``), with ``parameters`` and ``needs_model``."""
    rows = []
    for m in methods(kind):
        d = m.as_dict()
        sig = _signature(m)
        d.setdefault("parameters", [dict(p) for p in sig.parameters])
        d["accepts_other_parameters"] = sig.open
        d["needs_model"] = m.needs_model
        rows.append(d)
    return rows


def parse_method(name: str, field: str = "method", kind: str | None = None) -> Method:
    try:
        m = get_method(name)
    except UnknownMethodError as exc:
        raise FieldError(field, str(exc)) from None
    if kind is not None and m.kind != kind:
        raise FieldError(field, f"method {m.name!r} is {m.kind}; this endpoint takes a {kind} method")
    return m


def parse_params(text: str | None, m: Method, field: str = "params") -> dict[str, Any]:
    """The ``params`` field: a JSON object of the method's parameters (numbers, strings, booleans, lists)."""
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise FieldError(field, f"{field} must be a JSON object such as {{\"sigma\": 4}}: {exc}") from None
    if not isinstance(value, dict):
        raise FieldError(field, f"{field} must be a JSON object of parameter names and values, "
                                f"got {type(value).__name__}")
    sig = _signature(m)
    known = {p["name"] for p in sig.parameters}
    if m.needs_model:
        known.add("layer")
    for key, v in value.items():
        if key in _RESERVED:
            raise FieldError(field, f"{key!r} is not a method parameter; send it as its own form field" if key
                             == "target" else f"{key!r} cannot be set by a client")
        if key not in known and not sig.open:
            hint = ", ".join(sorted(known)) or "none"
            raise FieldError(field, f"method {m.name!r} has no parameter {key!r}; its parameters: {hint}")
        ok = v is None or isinstance(v, (bool, int, float, str)) or (
            isinstance(v, list) and len(v) <= 64 and all(isinstance(x, (bool, int, float, str)) for x in v))
        if not ok:
            raise FieldError(field, f"parameter {key!r} must be a number, string, boolean or a short list of "
                                    "them")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid number here")


# ---- images ------------------------------------------------------------------------------------------------

def sniff_image(data: bytes, field: str = "image") -> str:
    """The image type from the first bytes (PNG, JPEG, TIFF, BMP, WebP); 415 for anything else."""
    if not data:
        raise FieldError(field, f"{field} is empty (0 bytes); upload a PNG or JPEG file")
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise UnsupportedMediaError(
        field, f"{field} is not an image this service reads (the bytes are neither PNG, JPEG, TIFF, BMP nor "
               "WebP, whatever the file name says)")


def decode_image(data: bytes, max_pixels: int, field: str = "image") -> np.ndarray:
    """float32 ``(H, W, 3)`` in ``[0, 1]`` via :func:`salience.load_image`; size refused before decoding."""
    from ..io import load_image

    sniff_image(data, field)
    try:
        return load_image(data, max_pixels=max_pixels)
    except ImageReadError as exc:
        if isinstance(exc, ImageTooLargeError):
            raise
        raise FieldError(field, f"{field}: {exc}") from None


def decode_map(data: bytes, max_pixels: int, field: str = "map") -> np.ndarray:
    """A saliency map upload: ``.npy`` (read with ``allow_pickle=False``) or a grayscale image."""
    if data.startswith(b"\x93NUMPY"):
        fmt = np.lib.format
        try:  # the header first: a declared shape larger than the limit is refused before any allocation
            fh = io.BytesIO(data)
            version = fmt.read_magic(fh)
            reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _, dtype = reader(fh)
        except Exception as exc:  # noqa: BLE001 - any malformed header is the client's error
            raise FieldError(field, f"{field} is not a readable .npy array: {exc}") from None
        if dtype.hasobject:
            raise FieldError(field, f"{field} holds Python objects; only numeric arrays are read (never pickles)")
        if math.prod(shape) > max_pixels:
            raise FieldError(field, f"{field} declares shape {shape}, more than this server's {max_pixels} values")
        try:
            arr = np.load(io.BytesIO(data), allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - truncated data, unsupported dtype
            raise FieldError(field, f"{field} is not a readable .npy array: {exc}") from None
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        if arr.ndim != 2 or arr.size == 0 or arr.size > max_pixels:
            raise FieldError(field, f"{field} must be a non-empty 2-D array of at most {max_pixels} values, got "
                                    f"shape {arr.shape}")
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
            raise FieldError(field, f"{field} must hold real numbers, got dtype {arr.dtype}")
        arr = arr.astype(np.float64)
        if not np.all(np.isfinite(arr)):
            raise FieldError(field, f"{field} contains NaN or infinite values")
        return arr
    rgb = decode_image(data, max_pixels, field)
    return rgb.mean(axis=2, dtype=np.float64)


def decode_fixations(data: bytes, shape: tuple[int, int], max_pixels: int, field: str = "fixations") -> Any:
    """Fixations: JSON ``[[x, y], ...]``, CSV/whitespace text of ``x,y`` rows, or a binary map image."""
    if not data:
        raise FieldError(field, f"{field} is empty; send [[x, y], ...] as JSON, x,y rows as CSV, or a map image")
    head = data.lstrip()[:1]
    if head in (b"[", b"{"):
        try:
            pts = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise FieldError(field, f"{field} is not valid JSON: {exc}") from None
        if isinstance(pts, dict):
            pts = pts.get("fixations", pts.get("points"))
        return _points(pts, field)
    if any(data.startswith(m) for m, _ in _MAGIC):
        rgb = decode_image(data, max_pixels, field)
        fmap = rgb.max(axis=2) > 0.5
        if fmap.shape != shape:
            raise FieldError(field, f"the fixation map is {fmap.shape[1]} x {fmap.shape[0]} but the saliency map "
                                    f"is {shape[1]} x {shape[0]}; send maps of the same size, or points")
        return fmap
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsupportedMediaError(field, f"{field} is neither JSON, CSV text nor an image") from None
    rows = []
    for i, line in enumerate(text.splitlines()):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.replace(",", " ").replace(";", " ").split()
        try:
            rows.append([float(parts[0]), float(parts[1])])
        except (ValueError, IndexError):
            if not rows and i == 0:  # a header row (x,y)
                continue
            raise FieldError(field, f"{field} line {i + 1} is {line[:60]!r}; expected 'x,y'") from None
    return _points(rows, field)


def _points(pts: Any, field: str) -> np.ndarray:
    if not isinstance(pts, list) or not pts or not all(
            isinstance(p, list) and len(p) >= 2 and all(isinstance(c, (int, float)) and not isinstance(c, bool)
                                                        for c in p[:2]) for p in pts):
        raise FieldError(field, f"{field} must be a non-empty list of [x, y] pairs of numbers")
    arr = np.asarray([p[:2] for p in pts], dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise FieldError(field, f"{field} has non-finite coordinates")
    return arr


# ---- the model, loaded once ----------------------------------------------------------------------------------

class ModelHolder:
    """The one model of the process: loaded on first use (or :meth:`preload`), then shared.

    Every use of the model runs on one thread of its own (:meth:`run`), one call at a time: an
    explanation puts hooks on the model and sets flags for the duration of a call, and torch's CPU
    kernels keep a team of OpenMP threads for each OS thread that calls them.  With the calls spread
    over the request workers, two teams took turns on two cores and every explanation ran about twice as
    slow as the same call from one thread (measured: Grad-CAM 24-26 ms from one thread, 46-58 ms once a
    second thread had used torch, for every call after that).  Bottom-up methods never come here.
    """

    def __init__(self, name: str, model: Any = None) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.name = name if model is None else getattr(model, "name", name)
        self._model = model
        self._thread: threading.Thread | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="salience-model",
                                            initializer=self._mark)

    def _mark(self) -> None:
        self._thread = threading.current_thread()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def run(self, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` on the model's thread (directly when called there); its result or its exception."""
        if threading.current_thread() is self._thread:
            return fn(*args)
        return self._executor.submit(fn, *args).result()

    def get(self) -> Any:
        """The model, loaded (on the model's thread) the first time."""
        if self._model is None:
            self.run(self._load)
        return self._model

    def _load(self) -> None:
        if self._model is None:
            import salience

            self._model = salience.load_model(self.name)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def parse_target(text: str | None, lm: Any, field: str = "target") -> int:
    """``top1`` (default) / ``topK`` / a class index / a class name -> a class index of ``lm``, or ``-K`` for
    the K-th most likely class of the image (resolved by :func:`compute_map`)."""
    import re

    raw = (text or "top1").strip()
    n = len(lm.class_names)
    if re.fullmatch(r"[+-]?\d+", raw):
        idx = int(raw)
        if not 0 <= idx < n:
            raise FieldError(field, f"target class {idx} is out of range; {lm.name} has classes 0..{n - 1}")
        return idx
    key = re.sub(r"[\s_:-]", "", raw.lower())
    if key in ("top", "argmax"):
        key = "top1"
    rank = re.fullmatch(r"top(\d+)", key)
    if rank:
        k = int(rank.group(1))
        if not 1 <= k <= n:
            raise FieldError(field, f"target {raw!r}: the rank must be 1..{n} ({lm.name} has {n} classes)")
        return -k
    try:
        return lm.class_index(raw)
    except SalienceError as exc:
        raise FieldError(field, f"{exc}; or send top1, top2, ... or a class index") from None


def top_classes(img: np.ndarray, holder: ModelHolder, k: int = 5) -> list[dict[str, Any]]:
    import torch

    lm = holder.get()

    def rank() -> list:
        with torch.no_grad():
            return lm.top_k(lm.preprocess(img, crop=False), k)[0]

    rows = holder.run(rank)
    return [{"index": i, "name": name, "probability": p} for i, name, p in rows]


@dataclass
class MapResult:
    saliency: np.ndarray
    method: str
    target: dict[str, Any] | None


def compute_map(img: np.ndarray, m: Method, params: dict[str, Any], target: str | None,
                holder: ModelHolder) -> MapResult:
    """One map with :func:`salience.saliency_map`; an explanation's class is resolved first and reported."""
    import salience

    params = dict(params)
    if m.kind == BOTTOM_UP:
        if target not in (None, "", "top1"):
            raise FieldError("target", f"method {m.name!r} is bottom-up (from the pixels alone); it has no target")
        return MapResult(_call(salience.saliency_map, img, m.name, params=params), m.name, None)
    from ..attribution import image_saliency_map

    lm = holder.get()
    idx = parse_target(target, lm)
    if idx < -1:  # topK, K >= 2: rank the classes first
        k = -idx
        idx = top_classes(img, holder, k)[k - 1]["index"]
    layer = params.pop("layer", None)
    # top1: the explanation's own forward pass picks the class (no second forward)
    out, e = holder.run(lambda: _call(image_saliency_map, img, m.name, params=params, model=lm,
                                      target=None if idx == -1 else idx, layer=layer, return_explanation=True))
    if idx == -1:
        idx = int(e.targets[0])
    return MapResult(np.asarray(out, dtype=np.float32), m.name, {"index": idx, "name": lm.class_names[idx]})


def _call(fn: Any, *args: Any, params: dict[str, Any], **kw: Any) -> Any:
    try:
        return fn(*args, **kw, **params)
    except SalienceError as exc:
        if isinstance(exc, (ImageTooLargeError, MissingDependencyError)):
            raise
        field = "target" if isinstance(exc, ModelError) and "target" in str(exc).lower() else "params"
        raise FieldError(field, str(exc)) from None
    except TypeError as exc:
        if params and "argument" in str(exc):
            raise FieldError("params", f"bad parameter: {exc}") from None
        raise
    except (ValueError, OverflowError) as exc:
        if params:  # a value the implementation could not use (a huge size, a wrong type inside a list)
            raise FieldError("params", f"bad parameter value: {exc}") from None
        raise


def itti_maps(img: np.ndarray, params: dict[str, Any]) -> dict[str, Any]:
    import salience

    r = _call(salience.itti_koch, img, params=params, return_intermediates=True)

    def entry(name: str, a: np.ndarray) -> dict[str, Any]:
        return {"name": name, "width": int(a.shape[1]), "height": int(a.shape[0]),
                "png": base64.b64encode(png_bytes(gray(a))).decode("ascii")}

    return {
        "width": int(img.shape[1]), "height": int(img.shape[0]),
        "saliency": entry("saliency", r.saliency),
        "conspicuity": [entry(k, v) for k, v in r.conspicuity.items()],
        "features": [entry(k, v) for k, v in r.feature_maps.items()],
    }


def scanpath_points(saliency: np.ndarray, n: int, radius: float | None) -> list[dict[str, Any]]:
    import salience

    try:
        pts = salience.scanpath(saliency, n=n, radius=radius)
    except InputError as exc:
        raise FieldError("radius" if "radius" in str(exc) else "n", str(exc)) from None
    return [{"x": int(p.x), "y": int(p.y), "value": float(p.value), "rank": int(p.rank)} for p in pts]


def evaluate_map(smap: np.ndarray, fixations: Any, metrics: str, convention: str) -> dict[str, Any]:
    from ..metrics import evaluate

    try:
        scores = evaluate(smap, fixations, metrics=metrics or "all", convention=convention, nan_policy="propagate")
    except InputError as exc:
        msg = str(exc)
        field = "convention" if "convention" in msg else "metrics" if "metric" in msg else "fixations"
        raise FieldError(field, msg) from None
    out: dict[str, float | None] = {}
    undefined = []
    for k, v in scores.items():
        v = float(v)
        if math.isfinite(v):
            out[k] = v
        else:
            out[k] = None
            undefined.append(k)
    return {"convention": convention, "metrics": out, "undefined": undefined}


# ---- encodings ----------------------------------------------------------------------------------------------

def gray(saliency: np.ndarray) -> np.ndarray:
    from ..viz import to_gray

    return to_gray(saliency)


def png_bytes(array: np.ndarray) -> bytes:
    from ..io import encode_png

    return encode_png(np.ascontiguousarray(array))


def overlay_png(img: np.ndarray, saliency: np.ndarray, alpha: float) -> bytes:
    from ..viz import overlay

    return png_bytes(overlay(img, saliency, alpha=alpha))


def float32_payload(saliency: np.ndarray) -> dict[str, Any]:
    a = np.ascontiguousarray(saliency, dtype="<f4")
    return {"shape": [int(a.shape[0]), int(a.shape[1])], "dtype": "float32", "byteorder": "little",
            "data": base64.b64encode(a.tobytes()).decode("ascii")}
