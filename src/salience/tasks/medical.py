"""Medical and scientific images: DICOM files and 16-bit / float grayscale PNG and TIFF.

A scan's stored values are not display intensities.  :func:`load_scan` turns them into images that the
saliency methods take (float32 ``(H, W, 3)`` in ``[0, 1]``, the grey channel replicated, so that an RGB
model explains a grayscale image too) in the documented steps of the DICOM standard (PS3.3 C.11):

1. **Modality rescale** (DICOM only): ``value * RescaleSlope + RescaleIntercept`` (e.g. CT Hounsfield units).
2. **Intensity window** to ``[0, 1]``, the first that applies of:

   * ``window=(C, W)`` given by the caller (``--window C,W``): DICOM's linear VOI function
     (``0`` below ``C - 0.5 - (W - 1) / 2``, ``1`` above ``C - 0.5 + (W - 1) / 2``, linear between);
   * ``percentiles=(lo, hi)`` given by the caller (``--percentiles 1,99``): linear between those
     percentiles of the frame's values, clipped;
   * DICOM: the file's VOI LUT Sequence (through ``pydicom``), else its first Window Center / Width;
   * otherwise the frame's full range (min-max).

3. **MONOCHROME1** (DICOM; black = high value) is inverted so that bright is high.

Multi-frame DICOM files give one image per frame.  The metadata (pixel spacing in mm, modality, the
rescale and the window used, the photometric interpretation, the frame count) is kept in
:attr:`Scan.metadata` and written next to the maps by ``salience medical``.

DICOM reading needs ``pydicom`` (``pip install 'salience[medical]'``).  A compressed transfer syntax whose
decoder is missing, a truncated or corrupt file and a DICOM object without pixel data (an RT plan, a
structured report) raise :class:`~salience.errors.ImageReadError` naming the cause and what to install or
do; nothing is written for them.

>>> import numpy as np
>>> apply_window(np.array([-100.0, 40.0, 200.0]), 40, 200).round(3).tolist()
[0.0, 0.503, 1.0]
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ImageReadError, InputError, MissingDependencyError

__all__ = ["Scan", "load_scan", "load_dicom", "load_grayscale", "apply_window", "percentile_window",
           "is_dicom", "scan_maps"]

# decoders pydicom needs for each compressed transfer-syntax family (pydicom 3 plugin names)
_DECODERS = {
    "JPEG-LS": "pylibjpeg pylibjpeg-libjpeg (or pyjpegls)",
    "JPEG 2000": "pylibjpeg pylibjpeg-openjpeg",
    "JPEG Extended": "pylibjpeg pylibjpeg-libjpeg",
    "JPEG Lossless": "pylibjpeg pylibjpeg-libjpeg",
    "JPEG": "pylibjpeg pylibjpeg-libjpeg",
    "RLE": "pylibjpeg pylibjpeg-rle",
    "Deflate": "(zlib, part of Python)",
    "High-Throughput JPEG 2000": "pylibjpeg pylibjpeg-openjpeg",
}


@dataclass
class Scan:
    """A loaded scan: ``images`` float32 ``(F, H, W)`` in ``[0, 1]`` (after rescale, window and
    MONOCHROME1 inversion), ``values`` float64 ``(F, H, W)`` the rescaled values, and ``metadata``."""

    images: np.ndarray
    values: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def rgb(self, frame: int = 0) -> np.ndarray:
        """Frame ``frame`` as float32 ``(H, W, 3)`` RGB in ``[0, 1]`` (the grey channel replicated)."""
        g = self.images[frame]
        return np.ascontiguousarray(np.repeat(g[:, :, None], 3, axis=2), dtype=np.float32)


def apply_window(values: np.ndarray, centre: float, width: float) -> np.ndarray:
    """DICOM's linear VOI window (PS3.3 C.11.2.1.2.1) mapped to ``[0, 1]`` (float64)."""
    c, w = float(centre), float(width)
    if not (math.isfinite(c) and math.isfinite(w)) or w < 1:
        raise InputError(f"a window is a centre and a width >= 1, got centre {centre!r}, width {width!r}")
    v = np.asarray(values, dtype=np.float64)
    if w == 1:
        return (v >= c - 0.5).astype(np.float64)
    return np.clip(((v - (c - 0.5)) / (w - 1.0)) + 0.5, 0.0, 1.0)


def percentile_window(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Linear between the ``lo`` and ``hi`` percentiles of ``values``, clipped to ``[0, 1]``."""
    if not (0 <= lo < hi <= 100):
        raise InputError(f"percentiles must satisfy 0 <= lo < hi <= 100, got {lo}, {hi}")
    v = np.asarray(values, dtype=np.float64)
    a, b = np.percentile(v, [lo, hi])
    if b <= a:
        return np.zeros_like(v)
    return np.clip((v - a) / (b - a), 0.0, 1.0)


def _minmax(v: np.ndarray) -> np.ndarray:
    lo, hi = float(v.min()), float(v.max())
    return (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)


def _first(v: Any) -> float:
    """The first of a multi-valued DICOM number (a file may list several windows)."""
    from collections.abc import Sequence as _Seq

    if isinstance(v, _Seq) and not isinstance(v, (str, bytes)):
        v = v[0]
    return float(v)


def _check_window_args(window: Any, percentiles: Any) -> None:
    if window is not None and percentiles is not None:
        raise InputError("give a window (centre, width) or percentiles (lo, hi), not both")
    for name, v in (("window", window), ("percentiles", percentiles)):
        if v is not None and (not isinstance(v, (tuple, list)) or len(v) != 2):
            raise InputError(f"{name} must be a pair of numbers, got {v!r}")


def is_dicom(path: str | os.PathLike) -> bool:
    """True when the file has the DICOM preamble (``DICM`` at byte 128) or a ``.dcm`` suffix."""
    p = Path(path)
    if p.suffix.lower() in (".dcm", ".dicom"):
        return True
    try:
        with open(p, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _pydicom():
    try:
        import pydicom
    except ImportError:
        raise MissingDependencyError(
            "reading DICOM files needs pydicom: pip install 'salience[medical]' (or pip install pydicom)"
        ) from None
    return pydicom


def load_dicom(path: str | os.PathLike, *, window: Sequence[float] | None = None,
               percentiles: Sequence[float] | None = None) -> Scan:
    """Read a DICOM file (see the module docstring for the steps).

    Raises
    ------
    MissingDependencyError: pydicom is not installed.
    ImageReadError: not a DICOM file, corrupt or truncated, no pixel data, colour data, or a compressed
        transfer syntax whose decoder is missing (the message names the packages to install).
    """
    _check_window_args(window, percentiles)
    pydicom = _pydicom()
    p = Path(path)
    try:
        ds = pydicom.dcmread(p)
    except FileNotFoundError:
        raise ImageReadError(f"'{p}' does not exist") from None
    except Exception as exc:  # noqa: BLE001 - InvalidDicomError, struct/EOF errors of corrupt headers, ...
        raise ImageReadError(f"'{p}' is not a readable DICOM file ({type(exc).__name__}: {exc})") from None
    has_pixels = any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))
    if not has_pixels:
        uid = ds.get("SOPClassUID")
        kind = getattr(uid, "name", str(uid)) if uid is not None else ""
        raise ImageReadError(f"'{p}' is a DICOM object without pixel data ({kind or 'no image'}); only image "
                             "objects have a saliency map")
    tsyntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    ts_name = getattr(tsyntax, "name", str(tsyntax) if tsyntax else "unknown transfer syntax")
    try:
        arr = ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - pydicom's decoders raise RuntimeError, ValueError, ...
        msg = str(exc)
        if tsyntax is not None and getattr(tsyntax, "is_compressed", False) and (
                "missing dependencies" in msg or "plugin" in msg or "Unable to decode" in msg
                or "Unable to decompress" in msg):
            need = next((v for k, v in sorted(_DECODERS.items(), key=lambda kv: -len(kv[0])) if k in ts_name), None)
            hint = f"pip install {need}" if need and not need.startswith("(") else "install a decoder pydicom supports"
            raise ImageReadError(
                f"'{p}' is compressed as {ts_name} and no installed decoder can read it; {hint} "
                f"(pydicom says: {msg.splitlines()[0]})") from None
        raise ImageReadError(f"'{p}': the pixel data cannot be read, the file may be truncated or corrupt "
                             f"({type(exc).__name__}: {msg.splitlines()[0] if msg else ''})") from None
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    spp = int(ds.get("SamplesPerPixel", 1) or 1)
    if spp != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ImageReadError(f"'{p}' holds {photometric} colour data; salience medical reads grayscale scans "
                             "(open colour images with salience map)")
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    frames = np.asarray(arr)
    if n_frames > 1 or frames.ndim == 3:
        frames = frames.reshape((-1,) + frames.shape[-2:])
    else:
        frames = frames[None]
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    values = frames.astype(np.float64) * slope + intercept
    meta: dict[str, Any] = {
        "source": str(p), "format": "dicom", "transfer_syntax": ts_name, "modality": str(ds.get("Modality", "")),
        "photometric": photometric, "frames": int(values.shape[0]), "rows": int(values.shape[1]),
        "columns": int(values.shape[2]), "rescale_slope": slope, "rescale_intercept": intercept,
        "rescale_type": str(ds.get("RescaleType", "")),
    }
    spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
    if spacing is not None:
        meta["pixel_spacing_mm"] = [float(v) for v in spacing]  # (row spacing, column spacing)
    if "SliceThickness" in ds and ds.SliceThickness not in (None, ""):
        meta["slice_thickness_mm"] = float(ds.SliceThickness)
    images = np.empty(values.shape, np.float32)
    if window is not None:
        c, w = (float(v) for v in window)
        meta["window"] = {"source": "given", "centre": c, "width": w}
        images[:] = apply_window(values, c, w)
    elif percentiles is not None:
        lo, hi = (float(v) for v in percentiles)
        meta["window"] = {"source": "percentiles", "low": lo, "high": hi}
        for i in range(len(values)):
            images[i] = percentile_window(values[i], lo, hi)
    elif "VOILUTSequence" in ds:
        from pydicom.pixels import apply_voi_lut  # pydicom >= 3

        meta["window"] = {"source": "file VOI LUT"}
        for i in range(len(values)):
            images[i] = _minmax(np.asarray(apply_voi_lut(frames[i], ds), dtype=np.float64))
    elif "WindowCenter" in ds and "WindowWidth" in ds:
        c, w = _first(ds.WindowCenter), _first(ds.WindowWidth)
        meta["window"] = {"source": "file", "centre": c, "width": w}
        images[:] = apply_window(values, c, w)
    else:
        meta["window"] = {"source": "min-max"}
        for i in range(len(values)):
            images[i] = _minmax(values[i])
    if photometric == "MONOCHROME1":
        images = 1.0 - images
        meta["inverted"] = True
    return Scan(images=np.ascontiguousarray(images, np.float32), values=values, metadata=meta)


def load_grayscale(path: str | os.PathLike, *, window: Sequence[float] | None = None,
                   percentiles: Sequence[float] | None = None) -> Scan:
    """Read a grayscale PNG / TIFF of any depth (8- or 16-bit integers, 32-bit float) as one frame.

    The stored values are windowed as the module docstring says (default: min-max of the frame).  A colour
    image is refused (use :func:`salience.load_image`).
    """
    _check_window_args(window, percentiles)
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    try:
        with Image.open(p) as im:
            im.load()
            mode = im.mode
            if mode not in ("L", "I", "I;16", "I;16B", "I;16L", "I;16N", "F", "1"):
                raise ImageReadError(f"'{p}' is a {mode} image; salience medical reads single-channel scans "
                                     "(use salience map for colour images)")
            arr = np.asarray(im)
    except FileNotFoundError:
        raise ImageReadError(f"'{p}' does not exist") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"'{p}' is not a readable image ({exc})") from None
    values = arr.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise ImageReadError(f"'{p}' contains NaN or infinite values")
    meta: dict[str, Any] = {"source": str(p), "format": p.suffix.lower().lstrip(".") or "image",
                            "mode": mode, "dtype": str(arr.dtype), "frames": 1, "rows": int(values.shape[0]),
                            "columns": int(values.shape[1])}
    if window is not None:
        c, w = (float(v) for v in window)
        meta["window"] = {"source": "given", "centre": c, "width": w}
        img = apply_window(values, c, w)
    elif percentiles is not None:
        lo, hi = (float(v) for v in percentiles)
        meta["window"] = {"source": "percentiles", "low": lo, "high": hi}
        img = percentile_window(values, lo, hi)
    else:
        meta["window"] = {"source": "min-max"}
        img = _minmax(values)
    return Scan(images=img[None].astype(np.float32), values=values[None], metadata=meta)


def load_scan(path: str | os.PathLike, *, window: Sequence[float] | None = None,
              percentiles: Sequence[float] | None = None) -> Scan:
    """A DICOM file (by its preamble or ``.dcm`` suffix) through :func:`load_dicom`, anything else through
    :func:`load_grayscale`."""
    if is_dicom(path):
        return load_dicom(path, window=window, percentiles=percentiles)
    return load_grayscale(path, window=window, percentiles=percentiles)


def scan_maps(scan: Scan, method: str = "spectral-residual", **kwargs: Any) -> list[np.ndarray]:
    """One saliency map per frame (float32 ``(H, W)``), by any registry method; explanations of the
    replicated-grey RGB image (``model`` / ``target`` / ``layer`` in ``kwargs``)."""
    from ..api import saliency_map

    return [np.asarray(saliency_map(scan.rgb(i), method, **kwargs), dtype=np.float32) for i in range(len(scan))]
