"""Checks of the memory a piece of work will need, made before anything is allocated.

An image within the pixel limit can still ask for more memory than the machine has: a 110-megapixel
1-bit PNG is 13 KB on disk and about 4 GB once decoded and processed.  Rather than ending in a
``MemoryError`` (or in the kernel's out-of-memory killer), :func:`check_memory` compares the estimate of the
work with the memory available now and raises :class:`~salience.errors.ImageTooLargeError` that says how
much is needed and what to do.  The per-pixel figures below come from ``benchmarks/memory_per_pixel.py``
(peak resident set of a fresh process; see docs/reliability.md).

The available memory is the smallest of: the kernel's ``MemAvailable``, the room left under the control
group's memory limit (containers), and ``SALIENCE_MEMORY_LIMIT`` (bytes, or with a K/M/G/T suffix) when
that environment variable is set.  Where none of these is known, nothing is refused.
"""

from __future__ import annotations

import os
import re

from .errors import ImageTooLargeError, InputError

__all__ = ["available_memory", "check_memory", "check_image_work", "LOAD_BYTES_PER_PIXEL", "METHOD_BYTES_PER_PIXEL",
           "format_bytes"]

#: Peak bytes per pixel of decoding an image file into the float32 RGB array (measured: 33 for an RGB PNG,
#: 18 for a 1-bit PNG, 4 megapixels), with a margin.
LOAD_BYTES_PER_PIXEL = 40
#: Peak bytes per pixel a bottom-up method needs on top of the decoded image (measured: decoding plus the
#: method peaks at 38-53 bytes per pixel, the decoded image holding 12 of them), with a margin.
METHOD_BYTES_PER_PIXEL = 48

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def format_bytes(n: float) -> str:
    """``1.5 GiB``-style text."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def _env_limit() -> int | None:
    text = os.environ.get("SALIENCE_MEMORY_LIMIT", "").strip()
    if not text:
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?", text, flags=re.IGNORECASE)
    if not m:
        raise InputError(f"SALIENCE_MEMORY_LIMIT must be a number of bytes, optionally with K, M, G or T "
                         f"(e.g. 4G), got {text!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def _read_int(path: str) -> int | None:
    try:
        with open(path, "rb") as fh:
            text = fh.read(64).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", "rb") as fh:
            for line in fh.read(8192).decode("ascii", "replace").splitlines():
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room() -> int | None:
    limit = _read_int("/sys/fs/cgroup/memory.max")  # cgroup v2 ('max' reads as None)
    used = _read_int("/sys/fs/cgroup/memory.current")
    if limit is None:  # cgroup v1
        limit = _read_int("/sys/fs/cgroup/memory/memory.limit_in_bytes")
        used = _read_int("/sys/fs/cgroup/memory/memory.usage_in_bytes")
    if limit is None or used is None or limit >= 2**60:
        return None
    return max(0, limit - used)


def available_memory() -> int | None:
    """Bytes of memory this process can still allocate, as far as it can be known; ``None`` if unknown."""
    found = [v for v in (_meminfo_available(), _cgroup_room(), _env_limit()) if v is not None]
    return min(found) if found else None


def check_memory(nbytes: float, *, what: str, advice: str) -> None:
    """Raise :class:`ImageTooLargeError` when ``nbytes`` exceed the memory available now.

    ``what`` names the work ("decoding 'x.png' (10000 x 11000 pixels)"), ``advice`` says what to do.

    Examples
    --------
    >>> from salience.limits import check_memory
    >>> check_memory(1024, what="a tiny job", advice="nothing")  # fits: returns None
    """
    avail = available_memory()
    if avail is not None and nbytes > avail:
        raise ImageTooLargeError(
            f"{what} needs about {format_bytes(nbytes)} of memory, but only {format_bytes(avail)} are "
            f"available; {advice}"
        )


def check_image_work(shape: tuple[int, ...], what: str, bytes_per_pixel: float = METHOD_BYTES_PER_PIXEL) -> None:
    """:func:`check_memory` for a bottom-up method on an image of ``shape`` (H, W, ...)."""
    h, w = int(shape[0]), int(shape[1])
    check_memory(bytes_per_pixel * h * w, what=f"{what} on a {w} x {h} image",
                 advice="downscale the image (half the width and height needs a quarter of the memory), "
                        "crop it into tiles, or free memory")
