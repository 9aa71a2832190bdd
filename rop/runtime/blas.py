"""``rt.gemm``: a sum of matrix products accumulated in one output by BLAS.

The product rule turns every matrix product of a network into a sum of two:
R{W @ a} = R{W} @ a + W @ R{a}, and R{d @ a.T} = R{d} @ a.T + d @ R{a}.T.  Written with
``@`` and ``+``, each product gets its own output array and the sum a third, plus a pass
over memory to add them.  BLAS's ``dgemm`` computes C <- A @ B + beta C, so the second
product can be added into the first one's output as it is computed: one array, no
elementwise pass.  Measured on the deep MLP's Hv, 3-6 % of the time at every benchmark
size (benchmarks/profile_rop.py, "sums of products on BLAS").

``gemm(a1, b1, a2, b2, ..., c=c)`` is ``a1 @ b1 + a2 @ b2 + ... + c``:

* in Python it is exactly that expression;
* in Numba, when every operand is a float64 matrix and every product (and ``c``, broadcast)
  has the first product's shape, the output is filled with ``c`` (or left to the first
  product) and each product is added into it by SciPy's ``dgemm``, the BLAS that Numba's
  own ``np.dot`` calls.  Anything else (vectors, integers, products whose shapes differ and
  broadcast, a ``c`` that widens the result) evaluates the plain expression, so the helper
  never changes what the expression means, only how a float64 matrix sum is computed.

Operands in C or Fortran order (``x.T`` of a C array) are passed to BLAS as they are, with a
transpose flag; any other layout is copied first, as ``np.dot`` does.  The summation order
differs from left-to-right ``+`` (``c`` first, then each product), so results agree with
the expression to rounding, not bit for bit.
"""

from __future__ import annotations

import functools

import numpy as np

MAX_PAIRS = 4


def gemm(a1, b1, a2=None, b2=None, a3=None, b3=None, a4=None, b4=None, c=None):
    """``a1 @ b1 + a2 @ b2 + ... + c`` (up to four products; ``c`` optional).  Inside Numba a
    float64 matrix sum is accumulated in one output by BLAS (see the module docstring)."""
    out = a1 @ b1
    for a, b in ((a2, b2), (a3, b3), (a4, b4)):
        if a is not None:
            out = out + a @ b
    return out if c is None else out + c


# ---------------------------------------------------------------------------
# Numba: dgemm from SciPy's cython_blas, linked by name so that cached code stays valid
# ---------------------------------------------------------------------------

_SYMBOL = "rop_scipy_dgemm"


@functools.lru_cache(maxsize=None)
def _dgemm():
    """The BLAS routine as a Numba external function.  The generated code refers to it by
    symbol name; the symbol is bound to this process's address before any code using it is
    compiled or loaded from Numba's cache (a raw address baked into the code would make it
    uncacheable)."""
    import llvmlite.binding as llvm
    from numba.core import types
    from numba.core.extending import get_cython_function_address
    llvm.add_symbol(_SYMBOL, get_cython_function_address("scipy.linalg.cython_blas", "dgemm"))
    return types.ExternalFunction(_SYMBOL, types.void(*([types.intp] * 13)))


def _install():
    from numba import types
    from numba.extending import overload, register_jitable

    dgemm = _dgemm()

    # Every helper below but the c-fills takes addresses, strides and sizes, never typed
    # arrays, so one compiled copy serves every call site and operand layout: each compiled
    # variant of a Numba function costs ~0.1-0.3 s of a cold start, and the deep MLP alone
    # has three layout combinations.

    @register_jitable
    def add_product(out, first, a, a0, a1, m, k, b, b0, b1, n):
        """out (+)= a @ b for a (m, k) and b (k, n) given by address and byte strides, both
        in a BLAS layout (C or Fortran order); ``first``: out holds nothing yet.  A product
        smaller than out (a dimension of 1) is broadcast, as NumPy's ``+`` does.  One flat
        function: helpers it called would each be re-optimised inside every caller."""
        M, N = out.shape
        direct = m == M and n == N
        target = out if direct else np.zeros((m, n))
        if m == 0 or n == 0 or k == 0:
            if first and direct:
                out[:, :] = 0.0
        else:
            # row-major target = a b is column-major target^T = b^T a^T: b goes first
            ops = np.empty(2, np.uint8)
            dims = np.empty(6, np.int32)
            scal = np.empty(2, np.float64)
            for j in range(2):
                s0, s1, rows, cols = (b0, b1, k, n) if j == 0 else (a0, a1, m, k)
                s0 //= 8
                s1 //= 8
                if (s1 == 1 or cols <= 1) and (rows <= 1 or s0 >= max(1, cols)):
                    ops[j], dims[3 + j] = 78, max(1, cols if rows <= 1 else s0)  # 'N'
                else:
                    ops[j], dims[3 + j] = 84, max(1, rows if cols <= 1 else s1)  # 'T'
            dims[0], dims[1], dims[2], dims[5] = n, m, k, n
            scal[0] = 1.0
            scal[1] = 0.0 if first or not direct else 1.0
            o, d, s = ops.ctypes.data, dims.ctypes.data, scal.ctypes.data
            dgemm(o, o + 1, d, d + 4, d + 8, s, b, d + 12, a, d + 16, s + 8,
                  target.ctypes.data, d + 20)
        if not direct:
            s0 = 0 if m == 1 else 1
            s1 = 0 if n == 1 else 1
            for i in range(M):
                for j in range(N):
                    if first:
                        out[i, j] = target[i * s0, j * s1]
                    else:
                        out[i, j] += target[i * s0, j * s1]

    @register_jitable
    def fill2(out, c):
        """out[...] = c broadcast (c a matrix; its shape was grown into out's)."""
        m, n = out.shape
        s0 = 0 if c.shape[0] == 1 else 1
        s1 = 0 if c.shape[1] == 1 else 1
        for i in range(m):
            for j in range(n):
                out[i, j] = c[i * s0, j * s1]

    @register_jitable
    def fill1(out, c):
        m, n = out.shape
        s = 0 if c.shape[0] == 1 else 1
        for i in range(m):
            for j in range(n):
                out[i, j] = c[j * s]

    @register_jitable
    def fill0(out, c):
        out[:, :] = c

    @register_jitable
    def blas_ready(x):
        """x itself when BLAS can read it (C or Fortran order, possibly with a row or column
        stride), else a C-ordered copy: for arrays whose layout Numba does not know."""
        (s0, s1), (rows, cols) = x.strides, x.shape
        if s0 % 8 == 0 and s1 % 8 == 0:
            s0 //= 8
            s1 //= 8
            if (s1 == 1 or cols <= 1) and (rows <= 1 or s0 >= max(1, cols)) or \
                    (s0 == 1 or rows <= 1) and (cols <= 1 or s1 >= max(1, rows)):
                return x
        return np.ascontiguousarray(x)

    def is_matrix(t):
        return isinstance(t, types.Array) and t.ndim == 2 and t.dtype == types.float64

    def real(t):
        return isinstance(t, (types.Float, types.Integer)) or (
            isinstance(t, types.Array) and t.ndim in (1, 2)
            and isinstance(t.dtype, (types.Float, types.Integer)))

    @overload(gemm)
    def _ov_gemm(a1, b1, a2=None, b2=None, a3=None, b3=None, a4=None, b4=None, c=None):
        from ._overloads import _is_none
        pairs = [(a1, b1), (a2, b2), (a3, b3), (a4, b4)]
        n = sum(1 for a, _ in pairs if not _is_none(a))
        if any(_is_none(a) != _is_none(b) for a, b in pairs) or \
                any(_is_none(pairs[i][0]) for i in range(n)):
            return None
        has_c = not _is_none(c)
        L = ["def impl(a1, b1, a2=None, b2=None, a3=None, b3=None, a4=None, b4=None, c=None):"]
        if not (all(is_matrix(a) and is_matrix(b) for a, b in pairs[:n])
                and (not has_c or real(c))):  # not a float64 matrix sum: as written
            plain = " + ".join(f"a{i} @ b{i}" for i in range(1, n + 1))
            L.append(f"    return {plain}" + (" + c" if has_c else ""))
        else:
            for i in range(1, n + 1):
                for x, t in ((f"a{i}", pairs[i - 1][0]), (f"b{i}", pairs[i - 1][1])):
                    if t.layout not in "CF":
                        L.append(f"    {x} = blas_ready({x})")
                L += [f"    if a{i}.shape[1] != b{i}.shape[0]:",
                      "        raise ValueError('rop.runtime.gemm: matmul: inner dimensions of "
                      f"product {i} do not match')"]
            L.append("    m, n = a1.shape[0], b1.shape[1]")
            grown = [(f"a{i}.shape[0]", f"b{i}.shape[1]") for i in range(2, n + 1)]
            if has_c and isinstance(c, types.Array):
                grown.append(("1", "c.shape[0]") if c.ndim == 1 else ("c.shape[0]", "c.shape[1]"))
            for r0, r1 in grown:  # NumPy's broadcast of the terms' shapes
                L += [f"    if not (({r0} == m or {r0} == 1 or m == 1) and "
                      f"({r1} == n or {r1} == 1 or n == 1)):",
                      "        raise ValueError('rop.runtime.gemm: operands could not be "
                      "broadcast together')",
                      f"    m, n = ({r0} if m == 1 else m), ({r1} if n == 1 else n)"]
            L.append("    out = np.empty((m, n))")
            if has_c:
                L.append(f"    fill{c.ndim if isinstance(c, types.Array) else 0}(out, c)")
            for i in range(1, n + 1):
                first = "False" if has_c or i > 1 else "True"
                L.append(f"    add_product(out, {first}, a{i}.ctypes.data, a{i}.strides[0], "
                         f"a{i}.strides[1], a{i}.shape[0], a{i}.shape[1], b{i}.ctypes.data, "
                         f"b{i}.strides[0], b{i}.strides[1], b{i}.shape[1])")
            L.append("    return out")
        ns = {"np": np, "blas_ready": blas_ready, "add_product": add_product,
              "fill0": fill0, "fill1": fill1, "fill2": fill2}
        exec("\n".join(L), ns)
        return ns["impl"]


_install()
