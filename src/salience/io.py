"""Reading images and writing maps.

:func:`load_image` turns anything image-like (a path, bytes, a binary file object, a PIL image or an
array) into one representation: a float32 ``(H, W, 3)`` RGB array with values in ``[0, 1]``.  Every
failure is an :class:`~salience.errors.ImageReadError` (or :class:`~salience.errors.ImageTooLargeError`)
that names the source and says what to do.

Writes go through :func:`atomic_write_bytes`: the data goes to a temporary file in the target folder and
is then renamed over the target, so an interrupted run never leaves a half-written file, and an existing
file is kept unless ``overwrite=True``.
"""

from __future__ import annotations

import io as _io
import os
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import ImageReadError, ImageTooLargeError, InputError, OutputExistsError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_BACKGROUND",
    "load_image",
    "as_image_array",
    "method_input",
    "check_map",
    "map_to_uint8",
    "encode_png",
    "atomic_write_bytes",
    "save_map",
    "save_npy",
]

#: Largest image (width x height) that :func:`load_image` decodes unless ``max_pixels`` says otherwise.
#: 120 megapixels is a 12000 x 10000 photo, about 1.4 GB as float32 RGB.  A decompression bomb (a tiny
#: file declaring a huge image) is refused from its header, before any pixel is decoded.
DEFAULT_MAX_PIXELS = 120_000_000

#: Colour that transparent pixels are composited onto (white, as a browser shows a PNG on a white page).
DEFAULT_BACKGROUND = (1.0, 1.0, 1.0)

ImageSource = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO | np.ndarray | Image.Image

_PIL_LIMIT_LOCK = threading.Lock()


def _describe(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return f"'{os.fspath(source)}'"
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    name = getattr(source, "name", None)
    if isinstance(name, str):
        return f"'{name}'"
    return f"<{type(source).__name__}>"


def load_image(
    source: ImageSource,
    *,
    background: tuple[float, float, float] = DEFAULT_BACKGROUND,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Load an image as a float32 RGB array of shape ``(H, W, 3)`` with values in ``[0, 1]``.

    Parameters
    ----------
    source:
        A file path, the file's bytes, a binary file object, a PIL image, or an array.  Files may be JPEG,
        PNG, TIFF, BMP or WebP (anything Pillow decodes): grayscale, RGB, RGBA, palette, 1-bit, 16-bit
        integer or 32-bit float.  The EXIF orientation tag is applied.  Arrays may be ``(H, W)``,
        ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)``; ``uint8`` is divided by 255, ``uint16`` by 65535,
        ``bool`` maps to {0, 1}, floats must already lie in ``[0, 1]``.
    background:
        RGB colour in ``[0, 1]`` that transparent pixels are composited onto (default white).
    max_pixels:
        Refuse images with more than this many pixels (decompression-bomb guard); ``None`` disables it.

    Returns
    -------
    numpy.ndarray
        float32, ``(H, W, 3)``, C-contiguous, values in ``[0, 1]``.  A new array: an input array is never
        modified or returned as is.

    Raises
    ------
    ImageReadError
        Missing file, not an image, truncated or corrupt data, empty image, NaN/inf or out-of-range values,
        or an unsupported array shape.
    ImageTooLargeError
        More than ``max_pixels`` pixels.

    Examples
    --------
    >>> import numpy as np, salience
    >>> img = salience.load_image(np.zeros((4, 6), dtype=np.uint8))
    >>> img.shape, img.dtype
    ((4, 6, 3), dtype('float32'))
    """
    bg = _check_background(background)
    if isinstance(source, np.ndarray):
        return as_image_array(source, background=bg, name="array")
    if isinstance(source, Image.Image):
        _check_pixels(source.size, max_pixels, "PIL image")
        return _pil_to_array(source, bg)
    if not isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)) and not hasattr(source, "read"):
        raise ImageReadError(
            f"cannot read an image from {type(source).__name__}; pass a file path, bytes, a binary file "
            "object, a PIL image or a numpy array"
        )
    desc = _describe(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(os.fspath(source))
        if not path.exists():
            raise ImageReadError(f"image file {desc} does not exist; check the path")
        if path.is_dir():
            raise ImageReadError(f"{desc} is a folder, not an image file; pass the image files inside it")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ImageReadError(f"cannot read {desc}: {exc.strerror or exc}") from None
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        try:
            data = source.read()
        except Exception as exc:  # a closed file, a text-mode file, ...
            raise ImageReadError(f"cannot read from file object {desc}: {exc}") from None
        if isinstance(data, str):
            raise ImageReadError(f"file object {desc} is open in text mode; open it with mode 'rb'")
    if len(data) == 0:
        raise ImageReadError(f"{desc} is empty (0 bytes); it is not an image")
    return _decode(data, desc, bg, max_pixels)


def _check_background(background: Any) -> np.ndarray:
    try:
        bg = np.asarray(background, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        bg = np.zeros(0)
    if bg.shape != (3,) or not np.all(np.isfinite(bg)) or bg.min() < 0 or bg.max() > 1:
        raise InputError(f"background must be three numbers in [0, 1] (an RGB colour), got {background!r}")
    return bg


def _check_pixels(size: tuple[int, int], max_pixels: int | None, desc: str) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise ImageReadError(f"{desc} has zero size ({w} x {h} pixels); nothing to compute a map of")
    if max_pixels is not None and w * h > max_pixels:
        raise ImageTooLargeError(
            f"{desc} is {w} x {h} = {w * h:,} pixels, more than the limit of {max_pixels:,} "
            "(a guard against decompression bombs); if you trust the file, pass a larger max_pixels "
            "(CLI: --max-pixels) or max_pixels=None"
        )


def _decode(data: bytes, desc: str, bg: np.ndarray, max_pixels: int | None) -> np.ndarray:
    # Pillow has its own, process-wide bomb guard; we replace it by our own check on the header, so it is
    # lifted for the duration of the open (under a lock, and restored afterwards).
    with _PIL_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img = Image.open(_io.BytesIO(data))
        except UnidentifiedImageError:
            raise ImageReadError(
                f"{desc} is not an image Pillow can read (JPEG, PNG, TIFF, BMP, WebP, ...); "
                "check that the file is an image and not truncated"
            ) from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageReadError(f"{desc} could not be opened as an image: {exc}") from None
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    _check_pixels(img.size, max_pixels, desc)
    try:
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        img.load()
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageReadError(
            f"{desc} is truncated or corrupt ({exc}); re-export or re-download the file"
        ) from None
    return _pil_to_array(img, bg)


def _pil_to_array(img: Image.Image, bg: np.ndarray) -> np.ndarray:
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a malformed EXIF block must not make a readable image unreadable
        pass
    if img.width == 0 or img.height == 0:
        raise ImageReadError("image has zero size; nothing to compute a map of")
    mode = img.mode
    if mode == "P" or mode == "PA":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("1", "L", "RGB", "RGBA", "LA", "La", "RGBa"):
        if mode == "La":
            img = img.convert("LA")
        elif mode == "RGBa":
            img = img.convert("RGBA")
        arr = np.asarray(img, dtype=np.float32)
        if img.mode != "1":
            arr = arr / np.float32(255.0)
        return as_image_array(arr, background=bg, name="image")
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(img)
        if mode == "I":
            arr = arr.astype(np.int64)
            top = 65535.0 if arr.max(initial=0) <= 65535 else float(arr.max())
            arr = np.clip(arr, 0, None) / top
        else:
            arr = arr.astype(np.float64) / 65535.0
        return as_image_array(arr.astype(np.float32), background=bg, name="image")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        if not np.all(np.isfinite(arr)):
            raise ImageReadError("float image contains NaN or infinite values")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0 or hi > 1:  # float TIFFs come in arbitrary units: stretch to [0, 1]
            arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
        return as_image_array(arr.astype(np.float32), background=bg, name="image")
    # CMYK, YCbCr, LAB, HSV, I;16B variants Pillow could not hand us directly: let Pillow convert.
    try:
        converted = img.convert("RGBA" if "A" in mode else "RGB")
    except Exception as exc:
        raise ImageReadError(f"image mode {mode!r} cannot be converted to RGB: {exc}") from None
    return _pil_to_array(converted, bg)


def _unit_float(arr: np.ndarray, name: str) -> np.ndarray:
    """A new float32 array in ``[0, 1]`` from a validated numeric array (bool, uint8, uint16, 0..255
    integers, or floats in ``[0, 1]`` up to a 1e-6 tolerance, clipped)."""
    if arr.dtype == bool:
        out = arr.astype(np.float32)
    elif arr.dtype == np.uint8:
        out = arr.astype(np.float32) / np.float32(255.0)
    elif arr.dtype == np.uint16:
        out = (arr.astype(np.float64) / 65535.0).astype(np.float32)
    elif np.issubdtype(arr.dtype, np.integer):
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise ImageReadError(
                f"{name} is an integer array ({arr.dtype}) with values in [{lo}, {hi}]; expected 0..255 "
                "(or pass uint16 for 16-bit data, or floats in [0, 1])"
            )
        out = arr.astype(np.float32) / np.float32(255.0)
    else:
        out = arr.astype(np.float32, copy=True)
        if not np.all(np.isfinite(out)):
            bad = int(np.count_nonzero(~np.isfinite(out)))
            raise ImageReadError(
                f"{name} contains {bad} NaN or infinite value(s); replace them (e.g. numpy.nan_to_num) first"
            )
        lo, hi = float(out.min()), float(out.max())
        tol = 1e-6
        if lo < -tol or hi > 1 + tol:
            raise ImageReadError(
                f"{name} is a float array with values in [{lo:g}, {hi:g}]; expected [0, 1]: divide 8-bit "
                "data by 255 (or pass it as uint8)"
            )
        np.clip(out, 0.0, 1.0, out=out)
    return out


def as_image_array(
    array: Any,
    *,
    background: Any = DEFAULT_BACKGROUND,
    name: str = "image",
) -> np.ndarray:
    """Validate an image array and return a new float32 ``(H, W, 3)`` array in ``[0, 1]``.

    Accepted: ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)``, ``(H, W, 4)`` (alpha composited on ``background``);
    dtypes bool, uint8, uint16, other integers in [0, 255], and floats in ``[0, 1]``.
    """
    bg = _check_background(background)
    arr = np.asarray(array)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ImageReadError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise ImageReadError(f"{name} must be real-valued, got dtype {arr.dtype}")
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[2] not in (1, 3, 4):
        raise ImageReadError(
            f"{name} has shape {arr.shape}, which looks channels-first; expected (H, W) or (H, W, C) "
            "with C in {1, 3, 4}: transpose it with array.transpose(1, 2, 0)"
        )
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise ImageReadError(
            f"{name} has shape {arr.shape}; expected (H, W) grayscale or (H, W, C) with C = 1, 3 or 4"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageReadError(f"{name} has zero size (shape {arr.shape}); nothing to compute a map of")
    out = _unit_float(arr, name)
    if out.ndim == 2:
        out = out[:, :, None]
    c = out.shape[2]
    if c == 1:
        out = np.repeat(out, 3, axis=2)
    elif c == 4:
        alpha = out[:, :, 3:4]
        out = out[:, :, :3] * alpha + bg.astype(np.float32)[None, None, :] * (1.0 - alpha)
    return np.ascontiguousarray(out, dtype=np.float32)


def method_input(image: Any, name: str = "image") -> np.ndarray:
    """Validate the image argument of a bottom-up method without copying it when it is already valid.

    A C-contiguous float32 ``(H, W, 3)`` array with finite values in ``[0, 1]`` (what :func:`load_image`
    returns) is returned as it is: the caller must treat it as read-only.  Anything else goes through
    :func:`as_image_array` (a validated, converted copy), so a bad array raises ``ImageReadError``.
    """
    if (isinstance(image, np.ndarray) and image.dtype == np.float32 and image.ndim == 3
            and image.shape[2] == 3 and image.size > 0 and image.flags.c_contiguous):
        # One pass over the bit patterns: a float32 lies in [+0, 1] exactly when its bits, read as an
        # unsigned 32-bit integer, are at most 0x3F800000 (the bits of 1.0); NaN, infinities and every
        # negative number (sign bit set) lie above.  -0.0 takes the slow path below, which accepts it.
        if int(image.view(np.uint32).max()) <= 0x3F800000:
            return image
    return as_image_array(image, name=name)


def check_map(saliency: Any, name: str = "saliency map", *, allow_nan: bool = False) -> np.ndarray:
    """Validate a 2-D map; return it as a float64 array (a copy only where a conversion is needed)."""
    arr = np.asarray(saliency)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise InputError(f"{name} must be a 2-D (H, W) array, got shape {arr.shape}")
    if arr.size == 0:
        raise InputError(f"{name} is empty (shape {arr.shape})")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
        raise InputError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if not allow_nan and not np.all(np.isfinite(arr)):
        raise InputError(f"{name} contains NaN or infinite values; replace them (numpy.nan_to_num) first")
    return arr


def map_to_uint8(saliency: Any, *, normalize: bool = True) -> np.ndarray:
    """Map to an 8-bit grayscale image: brightness is saliency.

    With ``normalize`` (default) the map is min-max stretched to 0..255 (a constant map gives all zeros);
    otherwise values are taken to lie in [0, 1] and clipped.
    """
    m = check_map(saliency)
    if normalize:
        lo, hi = float(m.min()), float(m.max())
        m = (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)
    return np.floor(np.clip(m, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8 ``(H, W)`` or ``(H, W, 3|4)`` array (lossless)."""
    arr = np.asarray(array)
    if arr.dtype != np.uint8:
        raise InputError(f"encode_png expects uint8 data, got {arr.dtype}")
    buf = _io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, then a rename.

    The folder is created if needed.  An existing file raises :class:`OutputExistsError` unless
    ``overwrite``; an interrupted write leaves the old file (or nothing) in place, never a partial file.
    """
    target = Path(path)
    if target.exists() and not overwrite:
        raise OutputExistsError(f"{target} exists already; pass --overwrite (overwrite=True) to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if not overwrite and target.exists():
            raise OutputExistsError(f"{target} appeared while writing; pass overwrite=True to replace it")
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_map(saliency: Any, path: str | os.PathLike, *, normalize: bool = True, overwrite: bool = False) -> Path:
    """Save a map as an 8-bit grayscale PNG (brightness = saliency), atomically."""
    return atomic_write_bytes(path, encode_png(map_to_uint8(saliency, normalize=normalize)), overwrite=overwrite)


def save_npy(array: Any, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Save an array losslessly as ``.npy``, atomically."""
    buf = _io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    return atomic_write_bytes(path, buf.getvalue(), overwrite=overwrite)
