"""Keep freed memory mapped in the serving process, so that a request does not pay for page faults.

Every request decodes its image into fresh arrays (a 640 x 480 photo is a 3.7 MB float32 array, and the
model's preprocessing and the maps add more).  glibc's allocator serves blocks of that size with ``mmap``
and gives them back to the kernel when they are freed, or trims the heap they came from; the next request
then touches new pages, and each first touch is a page fault.  Measured on the 2-core VM with
``salience serve`` and a 640 x 480 JPEG: 2,700 minor faults per centre-bias request and 4,800 per Grad-CAM
request; with freed memory kept mapped, none (docs/performance.md has the latencies).

:func:`keep_freed_memory` sets glibc's ``M_MMAP_THRESHOLD`` to its largest value (32 MiB on 64-bit
systems: blocks up to that size come from the heap) and ``M_TRIM_THRESHOLD`` high, so the process keeps
the memory of its largest request instead of mapping it again for each one: its resident size stays at
that level rather than rising and falling.  It changes the whole process, so ``salience serve`` calls it
(the process is the server's own), and :func:`salience.web.create_app` does not: an application that
mounts the app in a process of its own decides for itself.  Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: the largest M_MMAP_THRESHOLD glibc accepts on 64-bit systems (half its 64 MiB heap size)
_MMAP_MAX = 32 * 2**20


def keep_freed_memory(trim_threshold: int = 2**30) -> bool:
    """glibc: serve blocks up to 32 MiB from the heap and return freed memory to the kernel only above
    ``trim_threshold`` bytes of free space (default 1 GiB).  True when glibc took both settings.

    >>> isinstance(keep_freed_memory(), bool)
    True
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    largest = _MMAP_MAX if ctypes.sizeof(ctypes.c_void_p) == 8 else 512 * 2**10  # 32-bit: a 1 MiB heap
    ok_mmap = mallopt(_M_MMAP_THRESHOLD, largest) == 1
    ok_trim = mallopt(_M_TRIM_THRESHOLD, int(min(trim_threshold, 2**31 - 1))) == 1
    return ok_mmap and ok_trim
