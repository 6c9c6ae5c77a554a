"""How the process allocates memory: large temporary arrays reuse freed memory instead of fresh pages."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
KEEP_BELOW_BYTES = 2 ** 31 - 1  # the largest int mallopt takes: freed blocks under 2 GB stay for reuse


def reuse_freed_memory() -> bool:
    """Let the C allocator keep freed large blocks and serve the next large array from them (glibc only).

    glibc gives every block over its mmap threshold (at most 32 MB by its dynamic rule) fresh pages from the
    kernel and returns them when the block is freed, so each temporary map of a large section (a 4000 x 4000
    float64 map is 128 MB) is zeroed page by page anew: on a 2-core virtual machine the kernel's page faults were
    40 % of the quantify benchmark's time (55 of 137 CPU seconds; 5 s after this call, same results). Raising
    the mmap and trim thresholds (``mallopt``, as the environment variables ``MALLOC_MMAP_THRESHOLD_`` and
    ``MALLOC_TRIM_THRESHOLD_`` do at start-up) keeps freed blocks in the heap; the process returns them when it
    ends. The price is a higher peak where a freed block does not fit the next request: the cells step of a
    10,000² slide peaked at 2.03 instead of 1.70 GB (and ran in 110 instead of 140 s). Elsewhere (macOS, musl)
    nothing changes.

    Returns
    -------
    bool
        Whether the allocator accepted both settings.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, KEEP_BELOW_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_BELOW_BYTES))
