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


def gemm(a1, b1, a2=None, b2=None, a3=None, b3=None, a4=None, b4=None, c=None, into=None):
    """``a1 @ b1 + a2 @ b2 + ... + c`` (up to four products; ``c`` optional).  Inside Numba a
    float64 matrix sum is accumulated in one output by BLAS (see the module docstring).

    ``into`` is ``c`` whose memory the caller gives up (``dW = dW + x.T @ d``, where no other
    name holds dW's array: backend/emit.py proves it): when it already has the result's shape
    and dtype the products are added into it and it is returned, with no new array and no
    copy of ``c``; otherwise it is ``c``.  Numba code that calls this and is loaded from
    Numba's cache outside rop's loader must call :func:`ensure_kernel` first."""
    out = a1 @ b1
    for a, b in ((a2, b2), (a3, b3), (a4, b4)):
        if a is not None:
            out = out + a @ b
    if into is not None:
        if isinstance(into, np.ndarray) and into.shape == out.shape and \
                into.dtype == out.dtype and into.flags.writeable:
            into += out
            return into
        c = into
    return out if c is None else out + c


# ---------------------------------------------------------------------------
# Numba: one C-callable kernel, dgemm from SciPy's cython_blas, both called by symbol name
# ---------------------------------------------------------------------------
#
# Compile time shapes this part.  Every argument type of a Numba function is one more
# compilation, and the operands of one network's products come in several layouts (``a``,
# ``a.T``, ``W[i].T``); a jitted callee is even re-compiled to machine code inside each
# caller.  So the work is done by one kernel compiled once as a C function (``numba.cfunc``,
# kept in Numba's disk cache) and called by symbol name, as is ``dgemm``.  What remains per
# call site is a shim of a few lines (about 45 ms of compiling, against 150 ms for one that
# checks shapes itself): it describes its operands by address, byte strides and shape in a
# descriptor on its stack, asks the kernel for the output's shape (or an error), allocates
# the output, and has the kernel fill it.  The layout of each operand is read from its
# strides at run time, which BLAS needs anyway.

_DGEMM_SYMBOL = "rop_scipy_dgemm"
_KERNEL_SYMBOL = "rop_gemm_kernel"

# descriptor slots (int64): out, its shape, the number of products, c, the phase, the error,
# the scratch size, then each product's a and b as (address, byte strides 0 and 1, rows, cols)
_OUT, _M, _P, _N, _HAS_C, _C, _PHASE, _ERR, _NEED = 0, 1, 2, 3, 4, 5, 10, 11, 12
_PAIRS = 14
_DESC = _PAIRS + 10 * MAX_PAIRS
_BROADCAST = MAX_PAIRS + 1  # error codes: q = inner dimensions of product q; this = broadcast


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
def _ptr(typingctx, addr, dtype):
    """The typed pointer at an integer address: ``_ptr(a, np.float64)[i]`` is the i-th float64
    from address a, to read or write."""
    if not isinstance(addr, types.Integer) or not isinstance(dtype, types.NumberClass):
        return None
    sig = types.CPointer(dtype.instance_type)(addr, dtype)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))
    return sig, codegen


@intrinsic
def _stack(typingctx, nbytes):
    """The address of ``nbytes`` zeroed bytes on the calling function's stack (a literal size):
    the descriptor and dgemm's by-reference arguments, without a heap allocation."""
    if not isinstance(nbytes, types.IntegerLiteral):
        return None
    n = nbytes.literal_value
    sig = types.intp(nbytes)

    def codegen(context, builder, signature, args):
        from llvmlite import ir
        from numba.core import cgutils
        buf = cgutils.alloca_once(builder, ir.IntType(8), size=n)
        cgutils.memset(builder, buf, ir.Constant(ir.IntType(64), n), 0)
        return builder.ptrtoint(buf, context.get_value_type(types.intp))
    return sig, codegen


@intrinsic
def _describe(typingctx, desc, slot, x):
    """Write x's (address, byte stride 0, byte stride 1, rows, cols) to ``desc`` from ``slot``
    on; a vector is one row (1, n) with row stride 0, which broadcasts as NumPy's does."""
    if not (isinstance(x, types.Array) and x.ndim in (1, 2)):
        return None
    sig = types.void(desc, slot, x)

    def codegen(context, builder, signature, args):
        from llvmlite import ir
        from numba.core import cgutils
        d, s, v = args
        i64 = ir.IntType(64)
        ary = context.make_array(x)(context, builder, v)
        shape = cgutils.unpack_tuple(builder, ary.shape)
        strides = cgutils.unpack_tuple(builder, ary.strides)
        addr = builder.ptrtoint(ary.data, i64)
        if x.ndim == 2:
            vals = [addr, strides[0], strides[1], shape[0], shape[1]]
        else:
            vals = [addr, i64(0), strides[0], i64(1), shape[0]]
        s = builder.sext(s, i64) if s.type.width < 64 else s
        for k, val in enumerate(vals):
            builder.store(val, builder.gep(d, [builder.add(s, i64(k))]))
        return context.get_dummy_value()
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


@register_jitable
def _plan(d):
    """Phase 0: the output's shape into d[_M], d[_P] as NumPy's ``a1 @ b1 + ... + c`` would
    have it, or an error code into d[_ERR]; the scratch the run needs into d[_NEED] (copies of
    operands BLAS cannot read, products smaller than the output)."""
    n = d[_N]
    for q in range(n):
        a = _PAIRS + 10 * q
        if d[a + 4] != d[a + 8]:
            d[_ERR] = q + 1
            return
    m, p = d[_PAIRS + 3], d[_PAIRS + 9]
    for q in range(1, n + d[_HAS_C]):
        base = _PAIRS + 10 * q
        r0, r1 = (d[base + 3], d[base + 9]) if q < n else (d[_C + 3], d[_C + 4])
        if not ((r0 == m or r0 == 1 or m == 1) and (r1 == p or r1 == 1 or p == 1)):
            d[_ERR] = _BROADCAST
            return
        m, p = (r0 if m == 1 else m), (r1 if p == 1 else p)
    d[_M], d[_P] = m, p
    need = 0
    for q in range(n):
        a = _PAIRS + 10 * q
        for x in (a, a + 5):
            if _blas_op(d[x + 1], d[x + 2], d[x + 3], d[x + 4])[0] == 0:
                need += d[x + 3] * d[x + 4]
        if d[a + 3] != m or d[a + 9] != p:
            need += d[a + 3] * d[a + 9]
    d[_NEED] = need


@register_jitable
def _run(d, scratch):
    """Phase 1: out = c (broadcast) + each product, added into out by one dgemm call when it
    has out's shape, else computed in scratch and broadcast into out, as NumPy's ``+``."""
    m, p, n, has_c = d[_M], d[_P], d[_N], d[_HAS_C]
    out = carray(_ptr(d[_OUT], np.float64), (m, p))
    free = scratch
    for q in range(n):  # operands BLAS cannot read: a C-ordered copy, as np.dot makes
        for x in (_PAIRS + 10 * q, _PAIRS + 10 * q + 5):
            if _blas_op(d[x + 1], d[x + 2], d[x + 3], d[x + 4])[0] == 0:
                rows, cols = d[x + 3], d[x + 4]
                dst = carray(_ptr(free, np.float64), (rows, cols))
                for i in range(rows):
                    for j in range(cols):
                        dst[i, j] = _ptr(d[x] + i * d[x + 1] + j * d[x + 2], np.float64)[0]
                d[x], d[x + 1], d[x + 2] = free, 8 * cols, 8
                free += 8 * rows * cols
    if has_c and d[_C] != d[_OUT]:  # (c is out: the products are added into it)
        s0 = 0 if d[_C + 3] == 1 else d[_C + 1]
        s1 = 0 if d[_C + 4] == 1 else d[_C + 2]
        for i in range(m):
            for j in range(p):
                out[i, j] = _ptr(d[_C] + i * s0 + j * s1, np.float64)[0]
    w = _stack(48)  # dgemm's arguments by reference: 2 ops (char), 6 dims (int32), 2 scalars
    ops, dims, scal = _ptr(w, np.uint8), _ptr(w + 8, np.int32), _ptr(w + 32, np.float64)
    for q in range(n):
        x = _PAIRS + 10 * q
        a, a0, a1, rows, k = d[x], d[x + 1], d[x + 2], d[x + 3], d[x + 4]
        b, b0, b1, cols = d[x + 5], d[x + 6], d[x + 7], d[x + 9]
        first = not has_c and q == 0
        direct = rows == m and cols == p
        target = d[_OUT]
        if not direct:
            target = free
            free += 8 * rows * cols
        if rows == 0 or cols == 0 or k == 0:
            if direct and first:
                out[:, :] = 0.0
            elif not direct:
                carray(_ptr(target, np.float64), (rows, cols))[:, :] = 0.0
        else:
            # row-major target = a b is column-major target^T = b^T a^T: b goes first
            ops[0], dims[3] = _blas_op(b0, b1, k, cols)
            ops[1], dims[4] = _blas_op(a0, a1, rows, k)
            dims[0], dims[1], dims[2], dims[5] = cols, rows, k, cols
            scal[0] = 1.0
            scal[1] = 0.0 if first or not direct else 1.0
            _DGEMM(w, w + 1, w + 8, w + 12, w + 16, w + 32, b, w + 20, a, w + 24, w + 40,
                   target, w + 28)
        if not direct:
            tmp = carray(_ptr(target, np.float64), (rows, cols))
            r = 0 if rows == 1 else 1
            c = 0 if cols == 1 else 1
            for i in range(m):
                for j in range(p):
                    if first:
                        out[i, j] = tmp[i * r, j * c]
                    else:
                        out[i, j] += tmp[i * r, j * c]


def _kernel(d):
    """The C entry point: phase 0 plans, phase 1 runs; scratch is allocated only when some
    operand must be copied or some product broadcasts."""
    if d[_PHASE] == 0:
        _plan(d)
    elif d[_NEED]:
        buf = np.empty(d[_NEED])
        _run(d, np.intp(buf.ctypes.data))
    else:
        _run(d, np.intp(0))


kernel_impl = None  # "C" (rop/_gemm_kernel.c, built at install) or "numba" (compiled here)


@functools.lru_cache(maxsize=None)
def ensure_kernel():
    """Bind the kernel's symbol in this process: the C build of it installed with rop
    (``rop/_gemm_kernel.c``, the same function), else this module's ``_kernel`` compiled by
    Numba (or loaded from its cache; ~1 s to compile on a machine's first use).
    ``ROP_GEMM_KERNEL=numba`` asks for the latter.  Generated code that calls ``rt.gemm``
    needs it before it is compiled or loaded from the cache: the overload below and rop's
    loader call this first."""
    global kernel_impl
    import os
    sig = types.void(types.CPointer(types.int64))
    if os.environ.get("ROP_GEMM_KERNEL", "auto").strip().lower() != "numba":
        try:
            from .. import _gemm_kernel
        except ImportError:  # not built (no C compiler at install): Numba compiles it
            pass
        else:
            from numba.core.extending import get_cython_function_address
            _gemm_kernel.set_dgemm(get_cython_function_address("scipy.linalg.cython_blas",
                                                               "dgemm"))
            kernel_impl = "C"
            return _external(_KERNEL_SYMBOL, _gemm_kernel.kernel_address(), sig)
    import numba
    k = numba.cfunc(sig, cache=True)(_kernel)
    kernel_impl = "numba"
    return _external(_KERNEL_SYMBOL, k.address, sig)


def _install():
    from numba.extending import overload

    def is_matrix(t):
        return isinstance(t, types.Array) and t.ndim == 2 and t.dtype == types.float64

    def real(t):
        return isinstance(t, (types.Float, types.Integer)) or (
            isinstance(t, types.Array) and t.ndim in (1, 2)
            and isinstance(t.dtype, (types.Float, types.Integer)))

    @overload(gemm)
    def _ov_gemm(a1, b1, a2=None, b2=None, a3=None, b3=None, a4=None, b4=None, c=None,
                 into=None):
        from ._overloads import _is_none
        pairs = [(a1, b1), (a2, b2), (a3, b3), (a4, b4)]
        n = sum(1 for a, _ in pairs if not _is_none(a))
        if any(_is_none(a) != _is_none(b) for a, b in pairs) or \
                any(_is_none(pairs[i][0]) for i in range(n)) or \
                not (_is_none(c) or _is_none(into)):
            return None
        # into: c whose memory may hold the result (see gemm); only a float64 C matrix can
        acc = not _is_none(into) and is_matrix(into) and into.layout == "C"
        if not _is_none(into):
            c = into
        has_c = not _is_none(c)
        L = ["def impl(a1, b1, a2=None, b2=None, a3=None, b3=None, a4=None, b4=None, c=None, "
             "into=None):"]
        if not _is_none(into):
            L.append("    c = into")
        ns = {"np": np}
        if not (all(is_matrix(a) and is_matrix(b) for a, b in pairs[:n])
                and (not has_c or real(c))):  # not a float64 matrix sum: as written
            plain = " + ".join(f"a{i} @ b{i}" for i in range(1, n + 1))
            L.append(f"    return {plain}" + (" + c" if has_c else ""))
            exec("\n".join(L), ns)
            return ns["impl"]
        L += [f"    d = ptr(stack({8 * _DESC}), np.int64)", f"    d[{_N}] = {n}"]
        for i in range(1, n + 1):
            L += [f"    describe(d, {_PAIRS + 10 * (i - 1)}, a{i})",
                  f"    describe(d, {_PAIRS + 10 * (i - 1) + 5}, b{i})"]
        if has_c:
            if not isinstance(c, types.Array):
                L.append("    cc = np.full((1, 1), np.float64(c))")
            elif c.dtype != types.float64:
                L.append("    cc = c.astype(np.float64)")
            else:
                L.append("    cc = c")
            L += [f"    d[{_HAS_C}] = 1", f"    describe(d, {_C}, cc)"]
        L.append("    kernel(d)")
        L.append(f"    if d[{_ERR}]:")
        for i in range(1, n + 1):
            L += [f"        if d[{_ERR}] == {i}:",
                  "            raise ValueError('rop.runtime.gemm: matmul: inner dimensions "
                  f"of product {i} do not match')"]
        L.append("        raise ValueError('rop.runtime.gemm: operands could not be "
                 "broadcast together')")
        if acc:
            L += [f"    if c.shape[0] == d[{_M}] and c.shape[1] == d[{_P}]:",
                  "        out = c",
                  "    else:",
                  f"        out = np.empty((d[{_M}], d[{_P}]))"]
        else:
            L.append(f"    out = np.empty((d[{_M}], d[{_P}]))")
        L += [f"    d[{_OUT}] = out.ctypes.data", f"    d[{_PHASE}] = 1", "    kernel(d)"]
        if has_c and not (isinstance(c, types.Array) and c.dtype == types.float64):
            L.append("    keep_alive(cc)")  # a converted c, referenced only by address
        L.append("    return out")
        ns.update(kernel=ensure_kernel(), ptr=_ptr, stack=_stack, describe=_describe,
                  keep_alive=_keep_alive)
        exec("\n".join(L), ns)
        return ns["impl"]


@register_jitable
def _keep_alive(*args):
    """Nothing: its call keeps arrays referenced only by address alive until after the
    kernel (Numba may release an array after its last use)."""
    return None


_install()
