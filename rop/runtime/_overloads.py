"""Numba nopython-mode implementations of the :mod:`rop.runtime` helpers.

Every helper of :mod:`rop.runtime` gets a :func:`numba.extending.overload`
here, so that ``rt.sum(x, 1, False)`` works both in plain Python and inside
``@njit`` code.  Dispatch happens at typing time on the Numba types:

* the array rank comes from ``x.ndim``;
* ``axis`` is ``None`` or an integer.  An integer literal selects the kernel at
  compile time; a runtime integer is normalised (negative values allowed) and
  dispatched with an ``if`` chain -- all kernels for one rank return the same
  type, so this costs one compare;
* ``keepdims`` must be a compile-time boolean (the rank of the result depends
  on it): the overloads use ``prefer_literal=True`` so that a literal
  ``True``/``False`` in the source is seen as such.

Reduction kernels are generated from source templates (one per operation,
rank and axis) with explicit loops: a reduction over a non-innermost axis
walks the input in C order and accumulates into the output row, a reduction
over the innermost axis accumulates in a register.  fastmath is off.
"""

import functools

import numpy as np
from numba import types
from numba.core.errors import TypingError
from numba.extending import overload, register_jitable
from numba.np.numpy_support import as_dtype

from . import (
    sum as _sum, mean as _mean, amax as _amax, amin as _amin,
    max_tangent as _max_tangent, min_tangent as _min_tangent,
    broadcast_as as _broadcast_as, reshape as _reshape,
    transpose as _transpose, zeros_of as _zeros_of, release as _release, matmul as _matmul,
    clip_tangent as _clip_tangent, norm as _norm,
)

# the kernels are generated per rank, for any rank; the cap only bounds the loop nests
# (a convolution's batches are rank 4, a pooling reshape rank 6)
_MAX_NDIM = 8
_SCALAR = (types.Number, types.Boolean)


# ---------------------------------------------------------------------------
# Type-level helpers
# ---------------------------------------------------------------------------

def _is_none(t):
    return t is None or isinstance(t, types.NoneType) or (
        isinstance(t, types.Omitted) and t.value is None)


def _static_value(t, what):
    """Compile-time value of a literal/omitted argument, or raise."""
    if t is None or isinstance(t, (bool, int)):  # omitted: the default value
        return t
    if isinstance(t, types.Omitted):
        return t.value
    if isinstance(t, types.Literal):
        return t.literal_value
    raise TypingError(f"rop.runtime: {what} must be a compile-time constant")


def _is_literal_bool(t):
    return isinstance(t, (bool, types.Omitted, types.Literal))


def _check_array(x, fname):
    if not isinstance(x, types.Array):
        raise TypingError(f"rop.runtime.{fname}: unsupported argument type {x}")
    if not 1 <= x.ndim <= _MAX_NDIM:
        raise TypingError(
            f"rop.runtime.{fname}: arrays of rank 1..{_MAX_NDIM} supported, "
            f"got rank {x.ndim}")


def _static_axis(axis, ndim):
    """Normalised axis if it is a compile-time constant, ``'runtime'`` for a
    runtime integer, ``None`` for no axis."""
    if _is_none(axis):
        return None
    if isinstance(axis, (int, types.IntegerLiteral, types.Omitted)):
        a = _static_value(axis, "axis")
        if a is None:
            return None
        if not -ndim <= a < ndim:
            raise TypingError(
                f"rop.runtime: axis {a} is out of bounds for array of "
                f"dimension {ndim}")
        return a % ndim
    if isinstance(axis, types.Integer):
        return "runtime"
    raise TypingError(f"rop.runtime: axis must be None or an int, got {axis}")


def _np_scalar_type(dt):
    return as_dtype(dt).type


# ---------------------------------------------------------------------------
# Kernel generation
# ---------------------------------------------------------------------------

def _compile(src, name, namespace):
    ns = dict(namespace)
    ns["np"] = np
    exec(compile(src, f"<rop.runtime generated {name}>", "exec"), ns)
    return ns[name]


def _ix(names):
    return ", ".join(names)


def _oshape(ndim, a):
    return "(" + "".join(f"x.shape[{k}], " for k in range(ndim) if k != a) + ")"


_UNROLL = 8  # independent partial sums in innermost-axis sums (no fastmath)


def _inner_sum_lines(ind, ndim, square):
    """Lines adding ``x[i0, .., i{ndim-2}, :]`` (squared if ``square``) into the
    partial sums ``acc0..acc{U-1}``.  Several accumulators break the serial
    dependency chain so the loop pipelines/vectorises without fastmath."""
    last = ndim - 1
    pre = "".join(f"i{k}, " for k in range(last))
    U = _UNROLL

    def term(j):
        e = f"x[{pre}{j}]"
        return f"{e} * {e}" if square else e

    L = [f"{ind}n_ = x.shape[{last}]",
         f"{ind}m_ = n_ - n_ % {U}",
         f"{ind}for j_ in range(0, m_, {U}):"]
    L += [f"{ind}    acc{u} += {term(f'j_ + {u}' if u else 'j_')}"
          for u in range(U)]
    L += [f"{ind}for j_ in range(m_, n_):",
          f"{ind}    acc0 += {term('j_')}"]
    return L


def _acc_init(ind):
    return [f"{ind}acc{u} = RT(0)" for u in range(_UNROLL)]


def _acc_total():
    # pairwise combination of the partial sums
    terms = [f"acc{u}" for u in range(_UNROLL)]
    while len(terms) > 1:
        terms = [f"({terms[i]} + {terms[i + 1]})"
                 for i in range(0, len(terms), 2)]
    return terms[0]


@functools.lru_cache(maxsize=None)
def _sum_kernel(ndim, a, rt_name, square=False):
    """``k(x)``: sum (of squares if ``square``) of ``x`` over axis ``a``
    (``None``: all axes), accumulated in the NumPy scalar type ``rt_name``.

    Full and innermost-axis sums use ``_UNROLL`` partial sums (so the result
    may differ from a left-to-right sum in the last bits, like NumPy's
    pairwise sum); other axes accumulate into the output row in C order."""
    idx = [f"i{k}" for k in range(ndim)]
    name = f"_k_sum{'sq' if square else ''}_{ndim}_{a}_{rt_name}"
    L = [f"def {name}(x):"]
    if a is None or ndim == 1:
        L += _acc_init("    ")
        ind = "    "
        for k in range(ndim - 1):
            L.append(f"{ind}for i{k} in range(x.shape[{k}]):")
            ind += "    "
        L += _inner_sum_lines(ind, ndim, square)
        L.append(f"    return {_acc_total()}")
    elif a == ndim - 1:
        oidx = _ix(idx[:-1])
        L.append(f"    out = np.empty({_oshape(ndim, a)}, RT)")
        ind = "    "
        for k in range(ndim - 1):
            L.append(f"{ind}for i{k} in range(x.shape[{k}]):")
            ind += "    "
        L += _acc_init(ind)
        L += _inner_sum_lines(ind, ndim, square)
        L.append(f"{ind}out[{oidx}] = {_acc_total()}")
        L.append("    return out")
    else:
        oidx = _ix(i for k, i in enumerate(idx) if k != a)
        L.append(f"    out = np.zeros({_oshape(ndim, a)}, RT)")
        ind = "    "
        for k in range(ndim):
            L.append(f"{ind}for i{k} in range(x.shape[{k}]):")
            ind += "    "
        e = f"x[{_ix(idx)}]"
        L.append(f"{ind}out[{oidx}] += {f'{e} * {e}' if square else e}")
        L.append("    return out")
    fn = _compile("\n".join(L) + "\n", name, {"RT": getattr(np, rt_name)})
    return register_jitable(fn)


@functools.lru_cache(maxsize=None)
def _ext_kernel(ndim, a, is_max, tangent):
    """``k(x, rx)``: max (``is_max``) or min of ``x`` over axis ``a``
    (``None``: all axes); if ``tangent``, returns ``rx`` at the first extremum
    instead of the extremum.  NaN propagates like in ``np.max``."""
    op = ">" if is_max else "<"
    better = f"v {op} b or (v != v and b == b)"
    idx = [f"i{k}" for k in range(ndim)]
    X = f"x[{_ix(idx)}]"
    R = f"rx[{_ix(idx)}]"
    name = f"_k_{'max' if is_max else 'min'}{'_tan' if tangent else ''}_{ndim}_{a}"
    L = [f"def {name}(x, rx):"]
    err = ('raise ValueError("zero-size array to reduction operation '
           f'{"maximum" if is_max else "minimum"} which has no identity")')
    if a is None or ndim == 1:
        L += ["    if x.size == 0:", f"        {err}"]
        zero = _ix(["0"] * ndim)
        L.append(f"    b = x[{zero}]")
        if tangent:
            L.append(f"    t = rx[{zero}]")
        ind = "    "
        for k in range(ndim):
            L.append(f"{ind}for i{k} in range(x.shape[{k}]):")
            ind += "    "
        L += [f"{ind}v = {X}", f"{ind}if {better}:", f"{ind}    b = v"]
        if tangent:
            L.append(f"{ind}    t = {R}")
        L.append(f"    return {'t' if tangent else 'b'}")
    else:
        oidx = _ix(i for k, i in enumerate(idx) if k != a)
        idx0 = _ix("0" if k == a else i for k, i in enumerate(idx))
        L += [f"    n = x.shape[{a}]", "    if n == 0:", f"        {err}"]
        res = "tout" if tangent else "out"
        if a == ndim - 1:
            L.append(f"    {res} = np.empty({_oshape(ndim, a)}, "
                     f"{'rx' if tangent else 'x'}.dtype)")
            ind = "    "
            for k in range(ndim - 1):
                L.append(f"{ind}for i{k} in range(x.shape[{k}]):")
                ind += "    "
            L.append(f"{ind}b = x[{idx0}]")
            if tangent:
                L.append(f"{ind}t = rx[{idx0}]")
            L.append(f"{ind}for i{a} in range(1, n):")
            L += [f"{ind}    v = {X}", f"{ind}    if {better}:",
                  f"{ind}        b = v"]
            if tangent:
                L.append(f"{ind}        t = {R}")
            L.append(f"{ind}{res}[{oidx}] = {'t' if tangent else 'b'}")
        else:
            L.append(f"    out = np.empty({_oshape(ndim, a)}, x.dtype)")
            if tangent:
                L.append(f"    tout = np.empty({_oshape(ndim, a)}, rx.dtype)")
            ind = "    "
            for k in range(ndim):
                if k != a:
                    L.append(f"{ind}for i{k} in range(x.shape[{k}]):")
                    ind += "    "
            L.append(f"{ind}out[{oidx}] = x[{idx0}]")
            if tangent:
                L.append(f"{ind}tout[{oidx}] = rx[{idx0}]")
            ind = "    "
            for k in range(ndim):
                lo = "1, " if k == a else ""
                L.append(f"{ind}for i{k} in range({lo}x.shape[{k}]):")
                ind += "    "
            L += [f"{ind}v = {X}", f"{ind}b = out[{oidx}]",
                  f"{ind}if {better}:", f"{ind}    out[{oidx}] = v"]
            if tangent:
                L.append(f"{ind}    tout[{oidx}] = {R}")
        L.append(f"    return {res}")
    fn = _compile("\n".join(L) + "\n", name, {})
    return register_jitable(fn)


@functools.lru_cache(maxsize=None)
def _reduction_impl(op, ndim, axis, keepdims, rt_name, bcast_rx):
    """Generate the overload implementation.

    ``op`` is 'sum', 'mean', 'max', 'min', 'max_tan' or 'min_tan'; ``axis``
    is None, a normalised int or 'runtime'.
    """
    tangent = op.endswith("_tan")
    ns = {}

    def kernel(a):
        if op in ("sum", "mean"):
            return _sum_kernel(ndim, a, rt_name)
        return _ext_kernel(ndim, a, op.startswith("max"), tangent)

    def call(a):
        k = f"K{a}"
        ns[k] = kernel(a)
        if op in ("sum", "mean"):
            return f"{k}(x)"
        return f"{k}(x, rxb)" if tangent else f"{k}(x, x)"

    args = "x, rx, axis=None, keepdims=False" if tangent else \
        "x, axis=None, keepdims=False"
    L = [f"def impl({args}):"]
    if tangent:
        if bcast_rx:
            ns["broadcast_as"] = _broadcast_as
            L.append("    rxb = broadcast_as(rx, x)")
        else:
            L += ["    if rx.shape != x.shape:",
                  "        raise ValueError('rop.runtime: rx must have the shape of x')",
                  "    rxb = rx"]

    ones = "(" + "1, " * ndim + ")"
    if axis is None:
        L.append(f"    r = {call(None)}")
        if op == "mean":
            L.append("    r = r / x.size")
        L.append(f"    return np.full({ones}, r)" if keepdims else "    return r")
    else:
        if axis == "runtime":
            L += ["    a = axis", f"    if a < 0:", f"        a += {ndim}"]
            for k in range(ndim):
                L.append(f"    {'if' if k == 0 else 'elif'} a == {k}:")
                L.append(f"        r = {call(k)}")
            L += ["    else:",
                  "        raise ValueError('rop.runtime: axis out of bounds')"]
            n_expr = "x.shape[a]"
            kd_shape = "(" + "".join(
                f"1 if a == {k} else x.shape[{k}], " for k in range(ndim)) + ")"
        else:
            L.append(f"    r = {call(axis)}")
            n_expr = f"x.shape[{axis}]"
            kd_shape = "(" + "".join(
                "1, " if k == axis else f"x.shape[{k}], "
                for k in range(ndim)) + ")"
        if op == "mean":
            L.append(f"    r = r / {n_expr}" if ndim == 1 else
                     f"    r /= {n_expr}")
        if not keepdims:
            L.append("    return r")
        elif ndim == 1:
            L.append("    return np.full((1,), r)")
        else:
            L.append(f"    return r.reshape({kd_shape})")
    return _compile("\n".join(L) + "\n", "impl", ns)


def _result_rt(op, dtype):
    """NumPy scalar type name used for sum/mean accumulation."""
    if isinstance(dtype, types.Float):
        return as_dtype(dtype).name
    if isinstance(dtype, (types.Integer, types.Boolean)):
        return "float64" if op == "mean" else "int64"
    raise TypingError(f"rop.runtime.{op}: unsupported dtype {dtype}")


def _reduction_overload(op, x, axis, keepdims, rx=None):
    tangent = op.endswith("_tan")
    if not isinstance(x, _SCALAR):
        # before the keepdims test: a non-literal attempt's error is the one the user sees
        _check_array(x, op)
    if not _is_literal_bool(keepdims):
        # Not ``numba.literally``: with ``prefer_literal`` the literal attempt
        # has already failed if we get here, and a literally() retry would
        # hide its error message behind "Cannot request literal type".
        raise TypingError(f"rop.runtime.{op}: keepdims must be a literal "
                          f"True/False, got {keepdims}")
    kd = bool(_static_value(keepdims, "keepdims"))

    if isinstance(x, _SCALAR):
        if tangent:
            if not isinstance(rx, _SCALAR):
                raise TypingError(f"rop.runtime.{op}: scalar x needs scalar rx")
            return lambda x, rx, axis=None, keepdims=False: rx
        if op == "mean":
            return lambda x, axis=None, keepdims=False: float(x)
        return lambda x, axis=None, keepdims=False: x

    _check_array(x, op)
    a = _static_axis(axis, x.ndim)
    rt_name = _result_rt(op, x.dtype) if op in ("sum", "mean") else None
    bcast_rx = False
    if tangent:
        if isinstance(rx, _SCALAR):
            bcast_rx = True
        elif isinstance(rx, types.Array):
            if rx.ndim > x.ndim:
                raise TypingError(f"rop.runtime.{op}: rx has higher rank than x")
            bcast_rx = rx.ndim < x.ndim
        else:
            raise TypingError(f"rop.runtime.{op}: unsupported rx type {rx}")
    return _reduction_impl(op, x.ndim, a, kd, rt_name, bcast_rx)


@overload(_sum, prefer_literal=True)
def _ov_sum(x, axis=None, keepdims=False):
    return _reduction_overload("sum", x, axis, keepdims)


@overload(_mean, prefer_literal=True)
def _ov_mean(x, axis=None, keepdims=False):
    return _reduction_overload("mean", x, axis, keepdims)


@overload(_amax, prefer_literal=True)
def _ov_amax(x, axis=None, keepdims=False):
    return _reduction_overload("max", x, axis, keepdims)


@overload(_amin, prefer_literal=True)
def _ov_amin(x, axis=None, keepdims=False):
    return _reduction_overload("min", x, axis, keepdims)


@overload(_max_tangent, prefer_literal=True)
def _ov_max_tangent(x, rx, axis=None, keepdims=False):
    return _reduction_overload("max_tan", x, axis, keepdims, rx)


@overload(_min_tangent, prefer_literal=True)
def _ov_min_tangent(x, rx, axis=None, keepdims=False):
    return _reduction_overload("min_tan", x, axis, keepdims, rx)


# ---------------------------------------------------------------------------
# Shape helpers
# ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _broadcast_kernel(rnd, lnd):
    """``broadcast_as`` for rank ``rnd`` into rank ``lnd`` as explicit loops: Numba compiles
    the generic ``out[...] = r`` broadcasting assignment slowly (2.3 s of a 6 s compile of the
    deep MLP's Hv), these loops in milliseconds."""
    L = ["def kernel(r, like):"]
    if rnd == lnd:
        L += ["    if r.shape == like.shape:", "        return r"]
    L.append("    out = np.empty(like.shape, r.dtype)")
    for k in range(rnd):
        lk = lnd - rnd + k
        L += [f"    m{k} = r.shape[{k}]",
              f"    if m{k} != 1 and m{k} != like.shape[{lk}]:",
              "        raise ValueError('rop.runtime.broadcast_as: shapes do not broadcast')",
              f"    s{k} = 0 if m{k} == 1 else 1"]
    for d in range(lnd):
        L.append("    " * (d + 1) + f"for i{d} in range(like.shape[{d}]):")
    out_idx = ", ".join(f"i{d}" for d in range(lnd))
    r_idx = ", ".join(f"i{lnd - rnd + k} * s{k}" for k in range(rnd))
    L.append("    " * (lnd + 1) + f"out[{out_idx}] = r[{r_idx}]")
    L.append("    return out")
    ns = {"np": np}
    exec("\n".join(L), ns)
    return ns["kernel"]


@overload(_broadcast_as)
def _ov_broadcast_as(r, like):
    if isinstance(like, _SCALAR):
        if isinstance(r, _SCALAR):
            return lambda r, like: float(r)
        if isinstance(r, types.Array):
            return lambda r, like: float(r.item())
        raise TypingError(f"rop.runtime.broadcast_as: unsupported r type {r}")
    if not isinstance(like, types.Array):
        raise TypingError(f"rop.runtime.broadcast_as: unsupported like {like}")
    if isinstance(r, _SCALAR):
        return lambda r, like: np.full(like.shape, r)
    if not isinstance(r, types.Array):
        raise TypingError(f"rop.runtime.broadcast_as: unsupported r type {r}")
    if r.ndim > like.ndim:
        raise TypingError("rop.runtime.broadcast_as: rank of r exceeds rank "
                          "of like")
    if 1 <= r.ndim and like.ndim <= _MAX_NDIM:
        return _broadcast_kernel(r.ndim, like.ndim)
    if r.ndim == like.ndim:
        def impl(r, like):
            if r.shape == like.shape:
                return r
            out = np.empty(like.shape, r.dtype)
            out[...] = r
            return out
        return impl

    def impl(r, like):
        out = np.empty(like.shape, r.dtype)
        out[...] = r
        return out
    return impl


@overload(_reshape)
def _ov_reshape(x, shape):
    if isinstance(shape, types.Integer):
        def impl(x, shape):
            return _reshape(x, (shape,))
        return impl
    if not isinstance(shape, types.BaseTuple):
        raise TypingError(f"rop.runtime.reshape: shape must be a tuple, "
                          f"got {shape}")
    if isinstance(x, _SCALAR):
        if len(shape) == 0:
            return lambda x, shape: x
        return lambda x, shape: np.full(1, x).reshape(shape)
    if not isinstance(x, types.Array):
        raise TypingError(f"rop.runtime.reshape: unsupported type {x}")
    if x.layout == "C":
        return lambda x, shape: x.reshape(shape)

    # Numba rejects reshape of 'A' arrays at typing time and of 'F' arrays at
    # run time; np.ascontiguousarray copies only if x is not C-contiguous at
    # run time.
    return lambda x, shape: np.ascontiguousarray(x).reshape(shape)


@overload(_transpose)
def _ov_transpose(x, axes=None):
    if isinstance(x, _SCALAR):
        return lambda x, axes=None: x
    if not isinstance(x, types.Array):
        raise TypingError(f"rop.runtime.transpose: unsupported type {x}")
    if _is_none(axes):
        return lambda x, axes=None: x.T
    return lambda x, axes=None: np.transpose(x, axes)


def _zeros_elem(x):
    """The zero of a list's element or a tuple's item: a tuple stays a tuple (a cache
    ``((A, W, b), Z)``), an array or a number as in zeros_of."""
    if isinstance(x, tuple):
        return tuple(_zeros_elem(e) for e in x)
    return _zeros_of(x)


@overload(_zeros_elem)
def _ov_zeros_elem(x):
    if isinstance(x, types.BaseTuple):
        n = len(x)
        ns = {"f": _zeros_elem}
        exec("def impl(x):\n    return (" + "".join(f"f(x[{i}]), " for i in range(n)) + ")\n", ns)
        return ns["impl"]
    return lambda x: _zeros_of(x)


@overload(_zeros_of)
def _ov_zeros_of(x):
    if isinstance(x, _SCALAR):
        return lambda x: 0.0
    if isinstance(x, types.Tuple):  # items of several types: a tuple of their zeros
        return lambda x: _zeros_elem(x)
    if isinstance(x, (types.List, types.UniTuple)) and isinstance(x.dtype, types.Array):
        enpdt = _zero_dtype(x.dtype)

        def zeros_arrays(x):  # the common case written out: two compilations fewer
            out = []
            for e in x:
                out.append(np.zeros(e.shape, enpdt))
            return out
        return zeros_arrays
    if isinstance(x, (types.List, types.UniTuple)):
        def zeros_list(x):
            out = []
            for e in x:
                out.append(_zeros_elem(e))
            return out
        return zeros_list
    if not isinstance(x, types.Array):
        raise TypingError(f"rop.runtime.zeros_of: unsupported type {x}")
    npdt = _zero_dtype(x)
    return lambda x: np.zeros(x.shape, npdt)


def _zero_dtype(arr):
    """The NumPy dtype of an R-value of an array of this Numba type: its own if inexact,
    float64 for integers and booleans (R-values are floating point)."""
    dt = arr.dtype if isinstance(arr.dtype, (types.Float, types.Complex)) else types.float64
    return as_dtype(dt)


@overload(_matmul)
def _ov_matmul(a, b):
    if not (isinstance(a, types.Array) and isinstance(b, types.Array)):
        raise TypingError(f"rop.runtime.matmul: arrays expected, got {a} and {b}")
    if a.ndim <= 2 and b.ndim <= 2:
        return lambda a, b: a @ b
    if a.ndim > 3 or b.ndim > 3:
        raise TypingError("rop.runtime.matmul: in numba mode `@` takes stacks of matrices of "
                          f"rank 3 at most (got ranks {a.ndim} and {b.ndim}); reshape, or use "
                          "mode='python'")
    if a.ndim == 3 and b.ndim == 3:
        def impl(a, b):
            n = max(a.shape[0], b.shape[0])
            if a.shape[0] != n and a.shape[0] != 1 or b.shape[0] != n and b.shape[0] != 1:
                raise ValueError("matmul: the stacks of matrices do not broadcast")
            first = np.ascontiguousarray(a[0]) @ np.ascontiguousarray(b[0])
            out = np.empty((n,) + first.shape, first.dtype)
            for k in range(n):
                ak = a[k if a.shape[0] != 1 else 0]
                bk = b[k if b.shape[0] != 1 else 0]
                out[k] = np.ascontiguousarray(ak) @ np.ascontiguousarray(bk)
            return out
        return impl
    if a.ndim == 3:  # stack @ matrix (or vector)
        def impl(a, b):
            bc = np.ascontiguousarray(b)
            first = np.ascontiguousarray(a[0]) @ bc
            out = np.empty((a.shape[0],) + first.shape, first.dtype)
            for k in range(a.shape[0]):
                out[k] = np.ascontiguousarray(a[k]) @ bc
            return out
        return impl

    def impl(a, b):  # matrix (or vector) @ stack
        ac = np.ascontiguousarray(a)
        first = ac @ np.ascontiguousarray(b[0])
        out = np.empty((b.shape[0],) + first.shape, first.dtype)
        for k in range(b.shape[0]):
            out[k] = ac @ np.ascontiguousarray(b[k])
        return out
    return impl


@overload(_release)
def _ov_release(lst, i, offset=0):
    if not (isinstance(lst, (types.List, types.ListType)) and isinstance(lst.dtype, types.Array)):
        return lambda lst, i, offset=0: None  # nothing held by reference to give back
    empty = (0,) * lst.dtype.ndim
    npdt = as_dtype(lst.dtype.dtype)
    if lst.dtype.layout == "F":  # the list's element type: an F array is a C array's .T
        def impl(lst, i, offset=0):
            k = i + offset
            if 0 <= k < len(lst):
                lst[k] = np.empty(empty, npdt).T
        return impl

    def impl(lst, i, offset=0):  # a C array, also stored into lists of 'A' arrays
        k = i + offset
        if 0 <= k < len(lst):
            lst[k] = np.empty(empty, npdt)
    return impl


# ---------------------------------------------------------------------------
# Elementwise helpers
# ---------------------------------------------------------------------------

@register_jitable
def _clip_tan_elem(x, rx, lo, hi):
    # minimum(maximum(x, lo), hi), a tie taking the mean of both sides (see rt.clip_tangent)
    if x > lo:
        r = rx * 1.0
    elif x < lo:
        r = rx * 0.0
    else:
        r = 0.5 * rx
    m = max(x, lo)
    if m < hi:
        return r
    if m > hi:
        return rx * 0.0
    return 0.5 * r


def _bound(t, default):
    if _is_none(t):
        return default
    if isinstance(t, (types.Number, types.Boolean)):
        return None
    raise TypingError("rop.runtime.clip_tangent: lo/hi must be scalars or "
                      "None")


@functools.lru_cache(maxsize=None)
def _clip_tangent_impl(ndim, x_arr, rx_arr, lo_none, hi_none, same_shape):
    lo = "-np.inf" if lo_none else "lo"
    hi = "np.inf" if hi_none else "hi"
    L = ["def impl(x, rx, lo, hi):",
         f"    lo_ = {lo}", f"    hi_ = {hi}"]
    if ndim == 0:
        L.append("    return float(_e(x, rx, lo_, hi_))")
    else:
        idx = _ix(f"i{k}" for k in range(ndim))
        src = "x" if x_arr else "rx"
        if x_arr and rx_arr:
            L += ["    if x.shape != rx.shape:",
                  "        raise ValueError('rop.runtime.clip_tangent: x and "
                  "rx must have the same shape')"]
        L.append(f"    out = np.empty({src}.shape, np.float64)")
        ind = "    "
        for k in range(ndim):
            L.append(f"{ind}for i{k} in range({src}.shape[{k}]):")
            ind += "    "
        xe = f"x[{idx}]" if x_arr else "x"
        re = f"rx[{idx}]" if rx_arr else "rx"
        L.append(f"{ind}out[{idx}] = _e({xe}, {re}, lo_, hi_)")
        L.append("    return out")
    return _compile("\n".join(L) + "\n", "impl", {"_e": _clip_tan_elem})


@overload(_clip_tangent)
def _ov_clip_tangent(x, rx, lo, hi):
    _bound(lo, None)
    _bound(hi, None)
    x_arr = isinstance(x, types.Array)
    rx_arr = isinstance(rx, types.Array)
    for t, nm in ((x, "x"), (rx, "rx")):
        if not isinstance(t, (types.Array,) + _SCALAR):
            raise TypingError(f"rop.runtime.clip_tangent: unsupported {nm} {t}")
    if x_arr and rx_arr and x.ndim != rx.ndim:
        # rare: differing ranks -> materialise the lower-rank operand first
        if x.ndim < rx.ndim:
            def impl(x, rx, lo, hi):
                return _clip_tangent(_broadcast_as(x, rx), rx, lo, hi)
        else:
            def impl(x, rx, lo, hi):
                return _clip_tangent(x, _broadcast_as(rx, x), lo, hi)
        return impl
    ndim = x.ndim if x_arr else (rx.ndim if rx_arr else 0)
    return _clip_tangent_impl(ndim, x_arr, rx_arr, _is_none(lo), _is_none(hi),
                              x_arr and rx_arr)


@overload(_norm)
def _ov_norm(x):
    if isinstance(x, _SCALAR):
        return lambda x: float(abs(x))
    _check_array(x, "norm")
    rt_name = "float64" if not isinstance(x.dtype, types.Float) \
        else as_dtype(x.dtype).name
    k = _sum_kernel(x.ndim, None, rt_name, True)

    def impl(x):
        return np.sqrt(k(x))
    return impl
