"""Keep freed memory for reuse: a PyTorch forward pass on the CPU frees and allocates the same large activation
buffers at every call, and glibc's malloc by default returns them to the system (mmap'd blocks, and the top of
the heap past its trim threshold), so the next call page-faults them in again. Measured on a 2-core AVX-512
machine (`benchmarks/eager_swing.py`, docs/benchmarks.md): MSCAN-B at 480x640 took 1.6 s per call so and about
0.8 s with the memory kept, which was also the run-to-run "swing" of fp32 eager timings.

The price is a process that keeps its peak memory instead of giving it back between calls; smmcl's own
commands (one process per command) take it, a Python program using smmcl decides for itself
(`keep_freed_memory()`, or glibc's MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ variables)."""

from __future__ import annotations

import ctypes
import sys

# mallopt's parameter numbers (glibc's malloc.h); values are C ints, so the largest is 2**31 - 1 bytes.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
KEEP = 2**31 - 1


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to serve large blocks from its heap and not to trim it, for the rest of the process;
    returns whether it took effect (False off Linux/glibc, e.g. with another C library or allocator)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, KEEP)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP))
