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

import contextlib
import errno
import io as _io
import os
import re
import stat
import struct
import sys
import tempfile
import threading
import warnings
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import ImageReadError, ImageTooLargeError, InputError, OutputError, OutputExistsError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_BACKGROUND",
    "load_image",
    "as_image_array",
    "method_input",
    "check_map",
    "as_2d_array",
    "map_to_uint8",
    "encode_png",
    "atomic_write_bytes",
    "output_error",
    "check_max_pixels",
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
    max_pixels = check_max_pixels(max_pixels)
    if isinstance(source, np.ndarray):
        return as_image_array(source, background=bg, name="array")
    if isinstance(source, Image.Image):
        _check_pixels(source.size, max_pixels, "PIL image")
        try:
            return _pil_to_array(source, bg)
        except (ImageReadError, ImageTooLargeError):
            raise
        except Exception as exc:
            raise ImageReadError(f"PIL image (mode {source.mode!r}) could not be converted: {_short(exc)}") from None
    if not isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)) and not hasattr(source, "read"):
        raise ImageReadError(
            f"cannot read an image from {type(source).__name__}; pass a file path, bytes, a binary file "
            "object, a PIL image or a numpy array"
        )
    desc = _describe(source)
    limit = _read_limit(max_pixels)
    if isinstance(source, (str, os.PathLike)):
        data = _read_file(os.fspath(source), desc, limit)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if limit is not None and len(data) > limit:
            raise _too_many_bytes(desc, len(data), limit, max_pixels)
    else:
        try:
            data = source.read() if limit is None else source.read(limit + 1)
        except Exception as exc:  # a closed file, a text-mode file, ...
            raise ImageReadError(f"cannot read from file object {desc}: {exc}") from None
        if isinstance(data, str):
            raise ImageReadError(f"file object {desc} is open in text mode; open it with mode 'rb'")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ImageReadError(f"file object {desc} returned {type(data).__name__} from read(), not bytes")
        data = bytes(data)
        if limit is not None and len(data) > limit:
            raise _too_many_bytes(desc, len(data), limit, max_pixels, at_least=True)
    if len(data) == 0:
        raise ImageReadError(f"{desc} is empty (0 bytes); it is not an image")
    return _decode(data, desc, bg, max_pixels)


#: Bytes an image file may hold per pixel of the pixel limit (an uncompressed float32 RGBA TIFF needs 16),
#: plus a fixed allowance for metadata, thumbnails and further frames.  Reading stops there, so a huge
#: file (or a stream without end) cannot exhaust the memory before the header check.
BYTES_PER_PIXEL_LIMIT = 16
BYTES_ALLOWANCE = 64 * 2**20


def check_max_pixels(max_pixels: Any) -> int | None:
    """``max_pixels`` as an int, or ``None`` (no limit); anything else is an :class:`InputError`.

    Examples
    --------
    >>> from salience.io import check_max_pixels
    >>> check_max_pixels(1e6), check_max_pixels(None)
    (1000000, None)
    >>> check_max_pixels("10")
    Traceback (most recent call last):
    salience.errors.InputError: max_pixels must be a positive whole number of pixels, or None for no limit; got '10' (a string: pass int(...))
    """
    if max_pixels is None:
        return None
    ok = isinstance(max_pixels, (int, np.integer)) and not isinstance(max_pixels, (bool, np.bool_))
    if not ok and isinstance(max_pixels, float) and max_pixels.is_integer():
        ok = True
    if not ok or int(max_pixels) < 1:
        raise InputError(
            f"max_pixels must be a positive whole number of pixels, or None for no limit; got {max_pixels!r}"
            + (" (a string: pass int(...))" if isinstance(max_pixels, str) else "")
        )
    return int(max_pixels)


def _read_limit(max_pixels: int | None) -> int | None:
    return None if max_pixels is None else BYTES_PER_PIXEL_LIMIT * max_pixels + BYTES_ALLOWANCE


def _too_many_bytes(desc: str, n: int, limit: int, max_pixels: int | None, *, at_least: bool = False):
    held = f"more than {limit:,}" if at_least else f"{n:,}"
    return ImageTooLargeError(
        f"{desc} holds {held} bytes, more than an image of at most {max_pixels:,} pixels needs "
        f"({limit:,} bytes); if it really is one image, pass a larger max_pixels (CLI: --max-pixels) "
        "or max_pixels=None"
    )


_KIND = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
         stat.S_IFSOCK: "a socket"}


def _not_regular(desc: str, mode: int) -> ImageReadError:
    if stat.S_ISDIR(mode):
        return ImageReadError(f"{desc} is a folder, not an image file; pass the image files inside it")
    kind = _KIND.get(stat.S_IFMT(mode), "not a regular file")
    return ImageReadError(
        f"{desc} is {kind}, not an image file; salience reads regular files only (reading it could block "
        "or never end): save the data to a file first"
    )


def _open_error(desc: str, path: str, exc: OSError) -> ImageReadError:
    code = exc.errno
    if code == errno.ENOENT:
        if os.path.islink(path):
            return ImageReadError(f"image file {desc} is a symbolic link to {os.readlink(path)!r}, which does "
                                  "not exist; fix the link or pass the image's own path")
        return ImageReadError(f"image file {desc} does not exist; check the path")
    if code == errno.ELOOP:
        return ImageReadError(f"image file {desc} is a symbolic link that loops back on itself (or a chain of "
                              "more than 40 links); fix the link or pass the image's own path")
    if code in (errno.EACCES, errno.EPERM):
        return ImageReadError(f"no permission to read {desc}; check the file's permissions")
    if code == errno.ENOTDIR:
        return ImageReadError(f"image file {desc} does not exist: part of the path is a file, not a folder")
    return ImageReadError(f"cannot read {desc}: {exc.strerror or exc}")


def _read_file(path: str, desc: str, limit: int | None) -> bytes:
    """The bytes of a regular file, at most ``limit`` of them; FIFOs, devices and sockets are refused
    before they are opened (and again on the open descriptor, in case the path changed in between)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise _open_error(desc, path, exc) from None
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(desc, st.st_mode)
    try:  # O_NONBLOCK: should the path have become a FIFO meanwhile, the open does not wait for a writer
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
                     | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise _open_error(desc, path, exc) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _not_regular(desc, st.st_mode)
        if limit is not None and st.st_size > limit:
            raise ImageTooLargeError(
                f"{desc} is {st.st_size:,} bytes, more than an image within the pixel limit needs "
                f"({limit:,} bytes); if it really is one image, pass a larger max_pixels (CLI: --max-pixels) "
                "or max_pixels=None"
            )
        chunks = []
        total = 0
        want = st.st_size + 1 if limit is None else min(st.st_size, limit) + 1
        while True:  # the file may grow while it is read: never past the limit
            block = os.read(fd, max(want - total, 1 << 16))
            if not block:
                break
            chunks.append(block)
            total += len(block)
            if limit is not None and total > limit:
                raise ImageTooLargeError(
                    f"{desc} grew past {limit:,} bytes while it was read, more than an image within the pixel "
                    "limit needs; pass a larger max_pixels (CLI: --max-pixels) or max_pixels=None"
                )
        return b"".join(chunks)
    except OSError as exc:
        if exc.errno == errno.EISDIR:
            raise _not_regular(desc, stat.S_IFDIR) from None
        raise ImageReadError(f"cannot read {desc}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


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
        except MemoryError:
            raise ImageTooLargeError(f"{desc}: not enough memory to read the image's header") from None
        except Exception as exc:  # decoders of hostile files raise anything (RuntimeError, TypeError, ...)
            raise ImageReadError(f"{desc} could not be opened as an image: {_short(exc)}") from None
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    _check_pixels(img.size, max_pixels, desc)
    from .limits import LOAD_BYTES_PER_PIXEL, check_memory

    w, h = img.size
    check_memory(LOAD_BYTES_PER_PIXEL * w * h, what=f"decoding {desc} ({w} x {h} pixels)",
                 advice="downscale the image with another tool, or free memory")
    said: list[str] = []
    try:
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        with _decoder_messages(said):
            img.load()
        if said:
            warnings.warn(f"{desc}: the decoder said: {'; '.join(said)[:300]}", RuntimeWarning, stacklevel=2)
        return _pil_to_array(img, bg)
    except (ImageReadError, ImageTooLargeError):
        raise
    except MemoryError:
        raise ImageTooLargeError(
            f"{desc} ({w} x {h} pixels) does not fit in the memory available; downscale it or free memory"
        ) from None
    except Exception as exc:
        detail = _short(exc) + (f"; the decoder said: {'; '.join(said)[:200]}" if said else "")
        raise ImageReadError(
            f"{desc} is truncated or corrupt ({detail}); re-export or re-download the file"
        ) from None


#: When True (the ``salience`` command sets it), what C decoders (libtiff, libjpeg) print on the process's
#: standard error while an image is decoded is captured and folded into the error message, or issued as
#: one warning, instead of landing between the command's own lines.  Off in the library, where
#: redirecting the process-wide file descriptor 2 could swallow another thread's output.
CAPTURE_DECODER_MESSAGES = False


@contextlib.contextmanager
def _decoder_messages(lines: list[str]):
    if not CAPTURE_DECODER_MESSAGES:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        with tempfile.TemporaryFile() as fh:
            os.dup2(fh.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                fh.seek(0)
                text = fh.read(4096).decode("utf-8", "replace")
                lines.extend(t.strip() for t in text.splitlines() if t.strip())
    finally:
        os.close(saved)


def _short(exc: BaseException) -> str:
    """One line of at most 200 characters naming the exception (decoder messages can be long)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if not isinstance(exc, (OSError, ValueError, SyntaxError, EOFError)):
        text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= 200 else text[:197] + "..."


def _pil_to_array(img: Image.Image, bg: np.ndarray) -> np.ndarray:
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a malformed EXIF block must not make a readable image unreadable
        pass
    if img.width == 0 or img.height == 0:
        raise ImageReadError("image has zero size; nothing to compute a map of")
    mode = img.mode
    if mode in ("P", "PA", "LA", "La"):  # palette and grey + alpha: composited like RGBA
        img = (img.convert("LA") if mode == "La" else img).convert("RGBA")
        mode = "RGBA"
    if mode in ("1", "L", "RGB", "RGBA", "RGBa"):
        if mode == "RGBa":
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


def as_2d_array(a: Any, name: str) -> np.ndarray:
    """``a`` as a 2-D real numeric or boolean array (an ``(H, W, 1)`` array loses its last axis), its dtype
    kept; an :class:`~salience.errors.InputError` naming ``name`` when it is not one (or is empty).

    >>> as_2d_array(np.ones((2, 3, 1), bool), "mask").shape
    (2, 3)
    """
    arr = np.asarray(a)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise InputError(f"{name} must be a 2-D (H, W) array, got shape {arr.shape}")
    if arr.size == 0:
        raise InputError(f"{name} is empty (shape {arr.shape})")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
        raise InputError(f"{name} must be a real numeric or boolean array, got dtype {arr.dtype}")
    return arr


def check_map(saliency: Any, name: str = "saliency map", *, allow_nan: bool = False) -> np.ndarray:
    """Validate a 2-D map; return it as a float64 array (a copy only where a conversion is needed)."""
    arr = as_2d_array(saliency, name).astype(np.float64, copy=False)
    if not allow_nan and not np.all(np.isfinite(arr)):
        raise InputError(f"{name} contains NaN or infinite values; replace them (numpy.nan_to_num) first")
    return arr


def map_to_uint8(saliency: Any, *, normalize: bool = True) -> np.ndarray:
    """Map to an 8-bit grayscale image: brightness is saliency.

    With ``normalize`` (default) the map is min-max stretched to 0..255 (a constant map gives all zeros);
    otherwise values are taken to lie in [0, 1] and clipped.  Each value is ``floor(255 v + 0.5)`` of the
    stretched ``v = (m - lo) / (hi - lo)``, computed in one working array.

    >>> map_to_uint8(np.array([[0.0, 0.5], [1.0, 0.25]])).tolist()
    [[0, 128], [255, 64]]
    """
    m = check_map(saliency)
    if normalize:
        lo, hi = float(m.min()), float(m.max())
        if not hi > lo:
            return np.zeros(m.shape, np.uint8)
        t = m - lo  # float64, as check_map returns
        t /= hi - lo
    else:
        t = np.array(m, dtype=np.float64)
    np.clip(t, 0.0, 1.0, out=t)
    t *= 255.0
    t += 0.5
    np.floor(t, out=t)
    return t.astype(np.uint8)


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(tag)))


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8 ``(H, W)`` or ``(H, W, 3|4)`` array (lossless; gray, RGB or RGBA, 8 bits).

    Written here rather than by Pillow: every row with the PNG "Up" filter (the difference to the row
    above, small on smooth maps) and deflate's run-length strategy at level 1.  On a 640 x 480 Itti map this
    takes about a third of the time of Pillow's level-3 encoder for a file of about the same size (the
    figures are in docs/performance.md); any PNG reader decodes it.

    >>> png = encode_png(np.arange(12, dtype=np.uint8).reshape(3, 4))
    >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n", Image.open(_io.BytesIO(png)).size
    (True, (4, 3))
    """
    arr = np.asarray(array)
    if arr.dtype != np.uint8:
        raise InputError(f"encode_png expects uint8 data, got {arr.dtype}")
    if arr.ndim == 2:
        colour, channels = 0, 1
    elif arr.ndim == 3 and arr.shape[2] in (3, 4):
        colour, channels = (2, 3) if arr.shape[2] == 3 else (6, 4)
    else:
        raise InputError(f"encode_png expects an (H, W), (H, W, 3) or (H, W, 4) array, got shape {arr.shape}")
    h, w = arr.shape[:2]
    if h == 0 or w == 0:
        raise InputError(f"encode_png: the image is empty ({w} x {h})")
    flat = arr.reshape(h, w * channels)
    rows = np.empty((h, w * channels + 1), np.uint8)
    rows[:, 0] = 2  # filter type Up: each byte minus the byte above it (the row above the first is zeros)
    rows[0, 1:] = flat[0]
    np.subtract(flat[1:], flat[:-1], out=rows[1:, 1:])
    z = zlib.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    idat = z.compress(rows.data) + z.flush()
    return b"".join((b"\x89PNG\r\n\x1a\n", _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)),
                     _png_chunk(b"IDAT", idat), _png_chunk(b"IEND", b"")))


#: Temporary files of :func:`atomic_write_bytes` are named ``.<target name>.<8 random>`` + this suffix.
TEMP_SUFFIX = ".salience.tmp"
_TEMP_RE = re.compile(r"^\..+\.[a-z0-9_]{8}" + re.escape(TEMP_SUFFIX) + r"$")
_OLD_TEMP_RE = re.compile(r"^\.(.+)\.[a-z0-9_]{8}\.tmp$")  # before 0.1.1: '.<target name>.<8 random>.tmp'
_SCANNED: dict[str, dict[str, list[str]]] = {}  # folder -> {target name: its old-style temporary files}
_SCAN_LOCK = threading.Lock()

try:
    import fcntl as _fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, stale files are left alone
    _fcntl = None  # type: ignore[assignment]

#: errno values that concern a whole folder or file system, so every later write fails the same way
_FATAL_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EEXIST,
                 getattr(errno, "EDQUOT", errno.ENOSPC), errno.EIO, errno.ENODEV, errno.ENXIO}


def output_error(exc: OSError, path: str | os.PathLike, *, what: str = "write") -> OutputError:
    """An :class:`~salience.errors.OutputError` with a one-line message for an ``OSError`` raised while
    writing ``path``; ``fatal`` when the cause affects every later output in the same place.

    Examples
    --------
    >>> import errno
    >>> from salience.io import output_error
    >>> e = output_error(OSError(errno.ENOSPC, "No space left on device"), "maps/a.png")
    >>> e.fatal, str(e)
    (True, 'cannot write maps/a.png: no space left on the device (or quota exceeded); free some space or choose another --out')
    """
    path = Path(path)
    code = exc.errno
    folder = path.parent if str(path.parent) else Path(".")
    reason = exc.strerror or str(exc)
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        msg = (f"cannot {what} {path}: no space left on the device (or quota exceeded); free some space or "
               "choose another --out")
    elif code == errno.EROFS:
        msg = f"cannot {what} {path}: the file system of {folder} is read-only; choose another --out"
    elif code in (errno.EACCES, errno.EPERM):
        msg = f"cannot {what} {path}: no permission to write in {folder}; choose another --out"
    elif code in (errno.ENOTDIR, errno.EEXIST):
        bad = next((p for p in [folder, *folder.parents] if p.exists() and not p.is_dir()), folder)
        msg = f"cannot {what} {path}: {bad} is a file, not a folder; choose another --out"
    elif code == errno.EISDIR:
        msg = f"cannot {what} {path}: a folder of that name is in the way; move it or choose another --out"
    elif code == errno.ENAMETOOLONG:
        msg = f"cannot {what} {path}: the name is too long for the file system; rename the input"
    else:
        msg = f"cannot {what} {path}: {reason}"
    return OutputError(msg, errno=code, fatal=code in _FATAL_ERRNOS or code not in (errno.EISDIR,
                                                                                    errno.ENAMETOOLONG))


def _is_stale(path: str) -> bool:
    """True when nobody holds the temporary file: its writer died (SIGKILL, power loss) before cleaning up.

    A writer holds an exclusive ``flock`` on its temporary file from creation to rename (the kernel drops
    it when the process dies); the file is stale when a non-blocking lock succeeds.
    """
    if _fcntl is None:  # pragma: no cover
        return False
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _remove_stale(folder: Path, name: str) -> None:
    """Remove temporary files of our own pattern that a killed run left in ``folder``: once per folder and
    process for the current pattern, and the pre-0.1.1 pattern ``.<name>.XXXXXXXX.tmp`` of the target
    ``name`` about to be written (a pattern other programs could use, so only for our own targets)."""
    key = os.path.abspath(folder)
    with _SCAN_LOCK:
        old = _SCANNED.get(key)
        if old is None:
            old = {}
            try:
                with os.scandir(folder) as it:
                    entries = [e.name for e in it]
            except OSError:
                entries = []
            for entry in entries:
                if _TEMP_RE.match(entry):
                    if _is_stale(os.path.join(folder, entry)):
                        _unlink_quietly(os.path.join(folder, entry))
                else:
                    m = _OLD_TEMP_RE.match(entry)
                    if m:
                        old.setdefault(m.group(1), []).append(entry)
            _SCANNED[key] = old
        for entry in old.pop(name, ()):
            if _is_stale(os.path.join(folder, entry)):
                _unlink_quietly(os.path.join(folder, entry))


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _ensure_folder(folder: Path, target: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(exc, target, what="create") from None
    if not folder.is_dir():  # mkdir(exist_ok=True) passes when a *file* of that name exists only on some OSes
        raise output_error(OSError(errno.ENOTDIR, "Not a directory"), target, what="create")


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, then a rename.

    The folder is created if needed.  An existing file raises :class:`OutputExistsError` unless
    ``overwrite``; without ``overwrite`` the file is created with a hard link, which fails if another
    process created it meanwhile (so nothing is replaced even then).  An interrupted write leaves the old
    file (or nothing) in place, never a partial file.  Temporary files are named
    ``.<name>.XXXXXXXX.salience.tmp`` and locked while they are written; those a killed run left behind
    are removed by the next write into the same folder.  An ``OSError`` (full disk, read-only or
    unwritable folder, a file where a folder should be) becomes an :class:`~salience.errors.OutputError`
    whose ``fatal`` flag says whether later writes to the same place would fail too.
    """
    target = Path(path)
    folder = target.parent
    if not overwrite and os.path.lexists(target):
        raise OutputExistsError(f"{target} exists already; pass --overwrite (overwrite=True) to replace it")
    _ensure_folder(folder, target)
    _remove_stale(folder, target.name)
    while True:
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=folder)
        except OSError as exc:
            raise output_error(exc, target) from None
        if _fcntl is not None:
            try:
                _fcntl.flock(fd, _fcntl.LOCK_EX)
            except OSError:  # a file system without locks: nobody can take it for stale either
                pass
            if os.fstat(fd).st_nlink == 0:  # another run's cleaner took it for stale before we locked it
                os.close(fd)
                continue
        break
    try:
        try:
            os.fchmod(fd, 0o666 & ~_umask()) if hasattr(os, "fchmod") else os.chmod(tmp, 0o666 & ~_umask())
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
            if overwrite:
                os.replace(tmp, target)
            else:
                _create_from(tmp, target)
        except OSError as exc:
            if isinstance(exc, OutputExistsError):
                raise
            raise output_error(exc, target) from None
    except BaseException:
        _unlink_quietly(tmp)
        raise
    finally:
        os.close(fd)
    return target


def _create_from(tmp: str, target: Path) -> None:
    """Give the temporary file the target's name unless a file of that name exists (atomically, by a
    hard link, where the file system has them)."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise OutputExistsError(f"{target} appeared while writing; pass overwrite=True to replace it") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK,
                             errno.ENOSYS, errno.EACCES):
            raise
        if os.path.lexists(target):  # no hard links here: check, then rename (a small window remains)
            raise OutputExistsError(f"{target} appeared while writing; pass overwrite=True to replace it") from None
        os.replace(tmp, target)
    else:
        _unlink_quietly(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_map(saliency: Any, path: str | os.PathLike, *, normalize: bool = True, overwrite: bool = False) -> Path:
    """Save a map as an 8-bit grayscale PNG (brightness = saliency), atomically.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from salience.io import load_image, save_map
    >>> path = save_map(np.outer(np.arange(4.0), np.ones(6)), os.path.join(tempfile.mkdtemp(), "ramp.png"))
    >>> g = load_image(path)
    >>> path.name, g.shape, float(g[0, 0, 0]), float(g[-1, 0, 0])
    ('ramp.png', (4, 6, 3), 0.0, 1.0)
    """
    return atomic_write_bytes(path, encode_png(map_to_uint8(saliency, normalize=normalize)), overwrite=overwrite)


def save_npy(array: Any, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Save an array losslessly as ``.npy``, atomically."""
    buf = _io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    return atomic_write_bytes(path, buf.getvalue(), overwrite=overwrite)
