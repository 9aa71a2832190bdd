"""Keep the generated code's large arrays off fresh pages: glibc's malloc thresholds.

An R{backprop} allocates a few arrays per layer (its activations, their R-values, the
products), megabytes each at realistic sizes, and frees them by the end of the call.  With
glibc's defaults an array of 128 KiB or more is its own ``mmap`` (the threshold rises only
to the size of the largest array freed so far) and a freed top of the heap beyond twice that
goes back to the system, so each call asks the kernel for the same memory again and touches
every page of it for the first time: 9,234 page faults per Hv of the 784-1000-500-250-30
MLP at batch 256 (36 MiB zeroed by the kernel; the gradient 4,954), about a tenth of the
call's time.  XLA and PyTorch keep their own pools; Numba allocates with ``malloc``.

This module runs at ``import rop`` and, on Linux with glibc, sets ``M_MMAP_THRESHOLD`` to
32 MiB (glibc's largest) and ``M_TRIM_THRESHOLD`` to 256 MiB with ``mallopt``: memory an
array frees is reused by the next one, and a process keeps up to 256 MiB of freed heap
instead of returning it at once (its peak use is unchanged).  Then the same Hv takes no page
fault after its first call.

It never overrides a choice already made: any ``MALLOC_MMAP_THRESHOLD_``,
``MALLOC_TRIM_THRESHOLD_`` or ``MALLOC_TOP_PAD_`` in the environment (glibc's own settings;
benchmarks/bench_hvp.py's memory probe sets one) wins, and ``ROP_MALLOC=keep`` turns this
off.  ``rop._malloc.reason`` says what was decided.
"""

from __future__ import annotations

import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
MMAP_THRESHOLD = 32 * 2**20   # glibc's upper limit on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
TRIM_THRESHOLD = 256 * 2**20
_GLIBC_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")

applied = False
reason = "not configured"


def configure() -> bool:
    """Set glibc's malloc thresholds for this process (see the module doc); True if set."""
    global applied, reason
    if os.environ.get("ROP_MALLOC", "auto").strip().lower() == "keep":
        reason = "ROP_MALLOC=keep"
        return False
    user = [k for k in _GLIBC_SETTINGS if k in os.environ]
    if user:
        reason = f"{user[0]} set by the user"
        return False
    if not sys.platform.startswith("linux"):
        reason = f"{sys.platform}: not glibc"
        return False
    try:
        import ctypes
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018  (glibc only: musl has no mallopt thresholds)
    except (OSError, AttributeError) as exc:
        reason = f"no glibc mallopt ({type(exc).__name__})"
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and \
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    applied = ok
    reason = ("glibc: arrays below 32 MiB from the heap, up to 256 MiB of freed heap kept"
              if ok else "mallopt refused the thresholds")
    return ok
