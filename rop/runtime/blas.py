"""``rt.gemm``: a sum of matrix products accumulated in one output by BLAS.

The product rule turns every matrix product of a network into a sum of two:
R{W @ a} = R{W} @ a + W @ R{a}, and R{d @ a.T} = R{d} @ a.T + d @ R{a}.T.  Written with
``@`` and ``+``, each product gets its own output array and the sum a third, plus a pass
over memory to add them.  BLAS's ``dgemm`` computes C <- A @ B + beta C, so the second
product can be added into the first one's output as it is computed: one array, no
elementwise pass (benchmarks/profile_rop.py, ablation "sums of products as written").

``gemm(a1, b1, a2, b2, ..., c=c)`` is ``a1 @ b1 + a2 @ b2 + ... + c``:

* in Python it is exactly that expression;
* in Numba, for float64 matrices, the output is filled with ``c`` (broadcast) and each
  product is added into it by SciPy's ``dgemm``, the BLAS that Numba's own ``np.dot``
  calls; a product smaller than the output (a dimension of 1) is computed apart and
  broadcast, and shapes that do not fit raise NumPy's ``ValueError``.  Anything that is not
  a float64 matrix sum (vectors, float32) is the plain expression.  So the helper never
  changes what the expression means, only how a float64 matrix sum is computed.

Operands in C or Fortran order (``x.T`` of a C array), rows or columns possibly strided, are
passed to BLAS as they are with a transpose flag; any other layout is copied first, as
``np.dot`` does.  The summation order differs from left-to-right ``+`` (``c`` first, then
each product), so results agree with the expression to rounding, not bit for bit.
"""

from __future__ import annotations

import functools

import numpy as np
from numba import carray, types
from numba.extending import intrinsic, register_jitable

MAX_PAIRS = 4


def gemm(a1, b1, a2=None, b2=None, a3=None, b3=None, a4=None, b4=None, c=None):
    """``a1 @ b1 + a2 @ b2 + ... + c`` (up to four products; ``c`` optional).  Inside Numba a
    float64 matrix sum is accumulated in one output by BLAS (see the module docstring).
    Numba code that calls it and is loaded from Numba's cache outside rop's loader must call
    :func:`ensure_kernel` first."""
    out = a1 @ b1
    for a, b in ((a2, b2), (a3, b3), (a4, b4)):
        if a is not None:
            out = out + a @ b
    return out if c is None else out + c


# ---------------------------------------------------------------------------
# Numba: one C-callable kernel, dgemm from SciPy's cython_blas, both called by symbol name
# ---------------------------------------------------------------------------
#
# Compile time shapes this part.  Every argument type of a Numba function is one more
# compilation, and the operands of one network's sums come in several layouts (``a``,
# ``a.T``, ``W[i].T``); a jitted callee is even re-compiled to machine code inside each
# caller.  So ``rt.gemm`` is a thin shim per call site (shapes, NumPy's errors, the output)
# that describes its operands by address, strides and shape in a small int64 array and calls
# one kernel compiled once as a C function (``numba.cfunc``, kept in Numba's disk cache):
# the operands' layout is read from the strides at run time, which BLAS needs anyway.

_DGEMM_SYMBOL = "rop_scipy_dgemm"
_KERNEL_SYMBOL = "rop_gemm_kernel"
_DESC = 48  # out, m, p, n, has_c, c (addr, rows, cols), then 4 x (a, b) x (addr, s0, s1, rows, cols)


def _external(symbol, address, sig):
    """A Numba function called by symbol name, bound to this process's address: code that calls
    it stays cacheable (an address baked into the code would not be)."""
    import llvmlite.binding as llvm
    from numba.core import types
    llvm.add_symbol(symbol, address)
    return types.ExternalFunction(symbol, sig)


def _dgemm():
    """dgemm with every pointer passed as an integer (one machine word either way)."""
    from numba.core import types
    from numba.core.extending import get_cython_function_address
    return _external(_DGEMM_SYMBOL, get_cython_function_address("scipy.linalg.cython_blas",
                                                                 "dgemm"),
                     types.void(*([types.intp] * 13)))


_DGEMM = _dgemm()


@intrinsic
def _f64_ptr(typingctx, addr):
    """The float64 pointer at an integer address (for ``numba.carray``)."""
    sig = types.CPointer(types.float64)(types.intp)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))
    return sig, codegen


@register_jitable
def _blas_op(s0, s1, rows, cols):
    """(op, ld) of a row-major (rows, cols) operand with byte strides (s0, s1) for the
    column-major call: 78 'N' = as stored, 84 'T' = transposed; (0, 0) = not a BLAS layout."""
    if s0 % 8 or s1 % 8:
        return 0, 0
    s0 //= 8
    s1 //= 8
    if (s1 == 1 or cols <= 1) and (rows <= 1 or s0 >= max(1, cols)):
        return 78, max(1, cols if rows <= 1 else s0)
    if (s0 == 1 or rows <= 1) and (cols <= 1 or s1 >= max(1, rows)):
        return 84, max(1, rows if cols <= 1 else s1)
    return 0, 0


def _kernel(desc_ptr):
    """out = c (broadcast) + the sum of the products, for operands described in ``desc``
    (see ``_describe``); each product is added into out by one dgemm call when it has out's
    shape, else computed apart and broadcast into it (a dimension of 1), as NumPy's ``+``."""
    desc = carray(desc_ptr, _DESC)
    m, p, n, has_c = desc[1], desc[2], desc[3], desc[4]
    out = carray(_f64_ptr(desc[0]), (m, p))
    if has_c:
        c = carray(_f64_ptr(desc[5]), (desc[6], desc[7]))
        s0 = 0 if desc[6] == 1 else 1
        s1 = 0 if desc[7] == 1 else 1
        for i in range(m):
            for j in range(p):
                out[i, j] = c[i * s0, j * s1]
    ops = np.empty(2, np.uint8)
    dims = np.empty(6, np.int32)
    scal = np.empty(2, np.float64)
    for q in range(n):
        d = 8 + 10 * q
        a, a0, a1, rows, k = desc[d], desc[d + 1], desc[d + 2], desc[d + 3], desc[d + 4]
        b, b0, b1, cols = desc[d + 5], desc[d + 6], desc[d + 7], desc[d + 9]
        first = not has_c and q == 0
        direct = rows == m and cols == p
        tmp = np.zeros((0, 0) if direct else (rows, cols))  # only for a broadcast product
        target = desc[0] if direct else tmp.ctypes.data
        if rows == 0 or cols == 0 or k == 0:
            if first and direct:
                out[:, :] = 0.0
        else:
            # row-major target = a b is column-major target^T = b^T a^T: b goes first
            ops[0], dims[3] = _blas_op(b0, b1, k, cols)
            ops[1], dims[4] = _blas_op(a0, a1, rows, k)
            dims[0], dims[1], dims[2], dims[5] = cols, rows, k, cols
            scal[0] = 1.0
            scal[1] = 0.0 if first or not direct else 1.0
            o, dd, sc = ops.ctypes.data, dims.ctypes.data, scal.ctypes.data
            _DGEMM(o, o + 1, dd, dd + 4, dd + 8, sc, b, dd + 12, a, dd + 16, sc + 8, target,
                   dd + 20)
        if not direct:
            s0 = 0 if rows == 1 else 1
            s1 = 0 if cols == 1 else 1
            for i in range(m):
                for j in range(p):
                    if first:
                        out[i, j] = tmp[i * s0, j * s1]
                    else:
                        out[i, j] += tmp[i * s0, j * s1]


@functools.lru_cache(maxsize=None)
def ensure_kernel():
    """Compile (or load from Numba's cache) the C kernel and bind its symbol in this process.
    Generated code that calls ``rt.gemm`` needs it before it is compiled or loaded from the
    cache: the overload below and rop's loader call this first."""
    import numba
    k = numba.cfunc(types.void(types.CPointer(types.int64)), cache=True)(_kernel)
    return _external(_KERNEL_SYMBOL, k.address, types.void(types.CPointer(types.int64)))


@register_jitable
def _blas_ready(x):
    """x itself when BLAS can read it, else a C-ordered copy (for arrays of unknown layout)."""
    op, _ = _blas_op(x.strides[0], x.strides[1], x.shape[0], x.shape[1])
    return x if op else np.ascontiguousarray(x)


def _install():
    from numba.extending import overload

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
            ns = {}
        else:
            for i in range(1, n + 1):
                L += [f"    if a{i}.shape[1] != b{i}.shape[0]:",
                      "        raise ValueError('rop.runtime.gemm: matmul: inner dimensions "
                      f"of product {i} do not match')"]
            L.append("    m, p = a1.shape[0], b1.shape[1]")
            shapes = [(f"a{i}.shape[0]", f"b{i}.shape[1]") for i in range(2, n + 1)]
            if has_c:
                if not isinstance(c, types.Array):
                    L.append("    cc = np.full((1, 1), np.float64(c))")
                else:
                    c2 = "c" if c.ndim == 2 else "c.reshape((1, c.shape[0]))" \
                        if c.layout == "C" else "np.ascontiguousarray(c).reshape((1, c.shape[0]))"
                    conv = "" if c.dtype == types.float64 else ".astype(np.float64)"
                    L.append(f"    cc = np.ascontiguousarray({c2}){conv}")
                shapes.append(("cc.shape[0]", "cc.shape[1]"))
            for r0, r1 in shapes:  # NumPy's broadcast of the terms' shapes
                L += [f"    if not (({r0} == m or {r0} == 1 or m == 1) and "
                      f"({r1} == p or {r1} == 1 or p == 1)):",
                      "        raise ValueError('rop.runtime.gemm: operands could not be "
                      "broadcast together')",
                      f"    m, p = ({r0} if m == 1 else m), ({r1} if p == 1 else p)"]
            L += ["    out = np.empty((m, p))", f"    desc = np.zeros({_DESC}, np.int64)",
                  f"    desc[0], desc[1], desc[2], desc[3] = out.ctypes.data, m, p, {n}"]
            if has_c:
                L += ["    desc[4], desc[5], desc[6], desc[7] = 1, cc.ctypes.data, "
                      "cc.shape[0], cc.shape[1]"]
            keep = ["cc"] if has_c else []
            for i in range(1, n + 1):
                for j, (x, t) in enumerate(((f"a{i}", pairs[i - 1][0]),
                                            (f"b{i}", pairs[i - 1][1]))):
                    d = 8 + 10 * (i - 1) + 5 * j
                    if t.layout not in "CF":  # unknown layout: maybe a copy, kept alive below
                        L.append(f"    {x} = blas_ready({x})")
                        keep.append(x)
                    L += [f"    desc[{d}], desc[{d + 1}], desc[{d + 2}] = {x}.ctypes.data, "
                          f"{x}.strides[0], {x}.strides[1]",
                          f"    desc[{d + 3}], desc[{d + 4}] = {x}.shape[0], {x}.shape[1]"]
            L.append("    kernel(desc.ctypes)")
            if keep:
                L.append(f"    keep_alive({', '.join(keep)})")
            L.append("    return out")
            ns = {"kernel": ensure_kernel(), "blas_ready": _blas_ready, "keep_alive": _keep_alive}
        ns["np"] = np
        exec("\n".join(L), ns)
        return ns["impl"]


@register_jitable
def _keep_alive(*args):
    """Nothing: its call keeps copies referenced only by address alive until after the
    kernel (Numba may release an array after its last use)."""
    return None


_install()
