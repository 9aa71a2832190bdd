"""Which OpenBLAS kernels the generated code's matrix products run on.

Numba compiles ``A @ B`` to a call into SciPy's OpenBLAS, which picks its kernels by
asking the CPU what it is.  Under virtualisation AMD's AVX-512 parts (Zen 4 and 5) often
answer with a generic model, and OpenBLAS falls back to its AVX2 ("Haswell") kernels:
DGEMM then runs at about 60% of the speed the CPU has (measured on this project's
machines: 118 against 196 GFLOP/s for a 1000x784 @ 784x256 product on 2 cores).  This
module runs at ``import rop``, before any BLAS is loaded by Numba, and when the CPU
reports every AVX-512 extension OpenBLAS's SkylakeX kernels use, it asks for those.

It never overrides a choice already made: ``OPENBLAS_CORETYPE`` set by the user wins,
``ROP_BLAS=keep`` turns this off, ``ROP_BLAS=<core>`` names a core type explicitly.
Intel AVX-512 CPUs are left to OpenBLAS, which recognises them.  A library already loaded
(NumPy's OpenBLAS when ``numpy`` was imported before ``rop``) keeps the kernels it chose.
"""

from __future__ import annotations

import os

_NEEDED = ("avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl")
chosen: str | None = None  # the core type rop asked for, or None
reason: str = "not configured"


def configure() -> str | None:
    """Set ``OPENBLAS_CORETYPE`` for BLAS libraries loaded from now on (see the module doc)."""
    global chosen, reason
    want = os.environ.get("ROP_BLAS", "auto").strip()
    if os.environ.get("OPENBLAS_CORETYPE"):
        reason = f"OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} set by the user"
        return None
    if want.lower() == "keep":
        reason = "ROP_BLAS=keep"
        return None
    if want.lower() != "auto":
        chosen, reason = want, f"ROP_BLAS={want}"
        os.environ["OPENBLAS_CORETYPE"] = want
        return chosen
    try:
        import llvmlite.binding as llb
        features = llb.get_host_cpu_features()
        cpu = llb.get_host_cpu_name()
    except Exception as exc:  # no llvmlite (python mode only): nothing to decide with
        reason = f"CPU features unavailable ({type(exc).__name__})"
        return None
    missing = [f for f in _NEEDED if not features.get(f, False)]
    if missing:
        reason = f"{cpu}: no {missing[0]}; OpenBLAS's own choice kept"
        return None
    if not cpu.startswith("znver"):
        reason = f"{cpu}: OpenBLAS's own choice kept"
        return None
    chosen, reason = "SkylakeX", f"{cpu} with AVX-512: SkylakeX kernels"
    os.environ["OPENBLAS_CORETYPE"] = chosen
    return chosen
