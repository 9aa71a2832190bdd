"""Helpers of the batched tangent function (transforms/batch.py): k directions at once.

In ``<name>_tangent_k`` every R-value carries a leading axis of length k, one slice per
direction, while the primal values read from the tape have none.  Elementwise operations then
broadcast as they are (NumPy aligns trailing axes); what does not is here: matrix products with
one batched operand, made one BLAS call k times wider or taller instead of k calls; reductions
over every axis but the batch; a reshape that keeps the batch axis; zeros with it.

The transform picks each helper from the operands' ranks (known at compile time), so none
branches on a rank at run time.  Each is NumPy in Python mode; in Numba the products'
regrouping copies (the batch axis moved next to the columns) are explicit loops, because
Numba copies a non-contiguous array element by element through a generic iterator, 20–30×
slower than a loop nest.  Matrix products go through ``rt.matmul`` (any memory layout).
"""

import numpy as np
from numba.extending import overload, register_jitable

from . import matmul as _matmul


# ----------------------------------------------------------------------------- Python (NumPy)
def bmm_l2(A, b):
    """(k, m, n) @ (n, p) -> (k, m, p): one product k times taller."""
    k, m, n = A.shape
    return (A.reshape(k * m, n) @ b).reshape(k, m, -1)


def bmm_l1(A, b):
    """(k, m, n) @ (n,) -> (k, m)."""
    k, m, n = A.shape
    return (A.reshape(k * m, n) @ b).reshape(k, m)


def bmm_r2(a, B):
    """(m, n) @ (k, n, p) -> (k, m, p): one product k times wider, on (n, k·p)."""
    k, n, p = B.shape
    C = a @ B.transpose(1, 0, 2).reshape(n, k * p)
    return np.ascontiguousarray(C.reshape(-1, k, p).transpose(1, 0, 2))


def bmm_rv2(a, B):
    """(n,) @ (k, n, p) -> (k, p)."""
    k, n, p = B.shape
    return (a @ B.transpose(1, 0, 2).reshape(n, k * p)).reshape(k, p)


@register_jitable
def bmm_v(A, b):
    """(k, n) @ (n, p) -> (k, p) and (k, n) @ (n,) -> (k,): k row vectors are a matrix."""
    return _matmul(A, b)


@register_jitable
def bmm_r1(a, B):
    """(m, n) @ (k, n) -> (k, m): B aᵀ."""
    return _matmul(B, a.T)


@register_jitable
def bmm_rv1(a, B):
    """(n,) @ (k, n) -> (k,)."""
    return _matmul(B, a)


def bsum_all(x):
    """The sum over every axis but the batch axis: (k, ...) -> (k,)."""
    return x.reshape(x.shape[0], -1).sum(axis=1)


def bmean_all(x):
    """The mean over every axis but the batch axis: (k, ...) -> (k,)."""
    return x.reshape(x.shape[0], -1).mean(axis=1)


def breshape(x, k, shape):
    """``x`` (k, ...) reshaped to (k,) + ``shape`` (a tuple)."""
    return np.reshape(x, (k,) + tuple(shape))


@register_jitable
def bbroadcast_as(r, like):
    """``r`` (k, ...) as a writable array of shape (k,) + ``like``'s shape (``rt.broadcast_as``
    with the batch axis)."""
    shape = (r.shape[0],) + like.shape
    if r.shape == shape:
        return r
    return np.broadcast_to(r, shape).copy()


@register_jitable
def bzeros(x, k):
    """Zeros of shape (k,) + ``x``'s shape, float64 (an R-value is floating point)."""
    return np.zeros((k,) + x.shape)


@register_jitable
def bzeros_scalar(k):
    """Zeros for k directions of a scalar R-value."""
    return np.zeros(k)


@register_jitable
def bzeros_list(x, k):
    """A list of :func:`bzeros` for a list of arrays (built by appends: see ``zeros_of``)."""
    out = []
    for e in x:
        out.append(np.zeros((k,) + e.shape))
    return out


# ----------------------------------------------------------------------------- Numba
@register_jitable
def _c3(A):
    """``A`` (rank 3) C-contiguous: itself if it is, else a copy by a loop nest."""
    if A.flags.c_contiguous:
        return np.ascontiguousarray(A)
    k, m, n = A.shape
    out = np.empty((k, m, n))
    if A.strides[1] < A.strides[2]:  # a transposed view: read along its memory
        for i in range(k):
            for q in range(n):
                for j in range(m):
                    out[i, j, q] = A[i, j, q]
    else:
        for i in range(k):
            for j in range(m):
                for q in range(n):
                    out[i, j, q] = A[i, j, q]
    return out


@register_jitable
def _wide(B):
    """(k, n, p) -> (n, k·p): the directions side by side, column blocks of one matrix."""
    k, n, p = B.shape
    out = np.empty((n, k * p))
    if B.strides[1] < B.strides[2]:  # a transposed view: read along its memory
        for i in range(k):
            for q in range(p):
                for j in range(n):
                    out[j, i * p + q] = B[i, j, q]
    else:
        for i in range(k):
            for j in range(n):
                for q in range(p):
                    out[j, i * p + q] = B[i, j, q]
    return out


@register_jitable
def _unwide(C, k, p):
    """(m, k·p) -> (k, m, p): back to one slice per direction."""
    m = C.shape[0]
    out = np.empty((k, m, p))
    for i in range(k):
        for j in range(m):
            for q in range(p):
                out[i, j, q] = C[j, i * p + q]
    return out


@overload(bmm_l2)
def _ov_bmm_l2(A, b):
    def impl(A, b):
        k, m, n = A.shape
        C = _matmul(_c3(A).reshape((k * m, n)), b)
        return C.reshape((k, m, C.shape[1]))
    return impl


@overload(bmm_l1)
def _ov_bmm_l1(A, b):
    def impl(A, b):
        k, m, n = A.shape
        return _matmul(_c3(A).reshape((k * m, n)), b).reshape((k, m))
    return impl


@overload(bmm_r2)
def _ov_bmm_r2(a, B):
    def impl(a, B):
        k, n, p = B.shape
        return _unwide(_matmul(a, _wide(B)), k, p)
    return impl


@overload(bmm_rv2)
def _ov_bmm_rv2(a, B):
    def impl(a, B):
        k, n, p = B.shape
        return _matmul(a, _wide(B)).reshape((k, p))
    return impl


@overload(bsum_all)
def _ov_bsum_all(x):
    def impl(x):
        k = x.shape[0]
        y = np.ascontiguousarray(x).reshape((k, -1))
        out = np.zeros(k)
        for i in range(k):
            for j in range(y.shape[1]):
                out[i] += y[i, j]
        return out
    return impl


@overload(bmean_all)
def _ov_bmean_all(x):
    def impl(x):
        s = bsum_all(x)
        return s / (x.size // x.shape[0])
    return impl


@overload(breshape)
def _ov_breshape(x, k, shape):
    def impl(x, k, shape):
        return np.ascontiguousarray(x).reshape((k,) + shape)
    return impl


# ============================================================================= batching rules
# (transforms/batch_rules.py) Helpers of the primitives whose batched form is not an axis
# shift of their own: the tangents of selections and moments (a maximum, a clip, a variance),
# boolean masks of rank >= 2, and np.outer.  The tangents and masks run the single-direction
# helper once per direction slice (``rx[j]``), in both modes: the same code as the unbatched
# product, so the same values, bit for bit; only the k calls move inside one compiled call.
# Each result is fresh, of shape (k,) + the single direction's result.

from numba import types  # noqa: E402

def _each(rx, one):
    """``one(rx[j])`` for each direction j, stacked on a new leading axis (float64)."""
    return np.stack([np.asarray(one(rx[j]), dtype=np.float64) for j in range(rx.shape[0])])


def bmax_tangent(x, rx, axis, keepdims):
    """``rt.max_tangent`` per direction: x (...) unbatched, rx (k, ...) of x's rank or lower."""
    from . import max_tangent
    return _each(rx, lambda r: max_tangent(x, r, axis, keepdims))


def bmin_tangent(x, rx, axis, keepdims):
    """``rt.min_tangent`` per direction (see :func:`bmax_tangent`)."""
    from . import min_tangent
    return _each(rx, lambda r: min_tangent(x, r, axis, keepdims))


def bclip_tangent(x, rx, lo, hi):
    """``rt.clip_tangent`` per direction: x unbatched, rx (k, ...)."""
    from . import clip_tangent
    return _each(rx, lambda r: clip_tangent(x, r, lo, hi))


def bvar_tangent(x, rx, axis, ddof, keepdims):
    """``rt.var_tangent`` per direction."""
    from .moments import var_tangent
    return _each(rx, lambda r: var_tangent(x, r, axis, ddof, keepdims))


def bprod_tangent(x, rx, axis, keepdims):
    """``rt.prod_tangent`` per direction."""
    from .moments import prod_tangent
    return _each(rx, lambda r: prod_tangent(x, r, axis, keepdims))


def bcheck_index(index):
    """Refuse a boolean index array of rank >= 2 where rop's ranks take it for integers (the
    rank of ``x[index]`` is inferred as NumPy's integer indexing gives it; a mask gives a
    vector): a TypeError, and the caller runs one tangent call per direction instead."""
    if np.asarray(index).dtype == np.bool_:
        raise TypeError("rop.runtime.bcheck_index: a boolean mask of rank >= 2 where an "
                        "integer index array was assumed")


def bsetitem_mask(x, mask, value):
    """``x[:, mask] = value`` for a boolean ``mask`` of the rank of ``x``'s slices: ``value``
    a number, an unbatched (n,) or a batched (k, n) or (k, 1) (n the mask's true count).  An
    index array that is not boolean is refused (the batching rule lifted ``value`` for a mask)."""
    mask = np.asarray(mask)
    if mask.dtype != np.bool_ or mask.ndim != x.ndim - 1:
        raise TypeError("rop.runtime.bsetitem_mask: a boolean mask of the slices' rank")
    x[:, mask] = value


def bouter_l(A, b):
    """``np.outer`` of a batched left operand: (k, ...) and b -> (k, A[0].size, b.size)."""
    k = A.shape[0]
    return A.reshape(k, -1)[:, :, None] * np.ravel(b)[None, None, :]


def bouter_r(a, B):
    """``np.outer`` of a batched right operand: a and (k, ...) -> (k, a.size, B[0].size)."""
    k = B.shape[0]
    return np.ravel(a)[None, :, None] * B.reshape(k, -1)[:, None, :]


def bdiagflat(x):
    """``np.diagflat`` of each direction: (k, ...) -> (k, n, n), n = x[0].size."""
    k = x.shape[0]
    v = x.reshape(k, -1)
    n = v.shape[1]
    out = np.zeros((k, n, n))
    i = np.arange(n)
    out[:, i, i] = v
    return out


# ------------------------------------------------------------------ their Numba forms
def _first_of(first, k):
    """An array for k results shaped like ``first`` (a number or an array), ``first`` in
    slot 0."""
    out = np.empty((k,) + np.shape(first))
    out[0] = first
    return out


@overload(_first_of)
def _ov_first_of(first, k):
    if isinstance(first, types.Array):
        def impl(first, k):
            out = np.empty((k,) + first.shape)
            out[0] = first
            return out
    else:
        def impl(first, k):
            out = np.empty(k)
            out[0] = first
            return out
    return impl


def _per_direction(bfn, fn, params):
    """Register the Numba form of ``bfn(params)``: ``fn`` with ``rx[j]`` for ``rx``, once per
    direction, into one array (the literal arguments, ``axis`` and ``keepdims``, pass
    through as literals)."""
    call = ", ".join("rx[j]" if p == "rx" else p for p in params)
    src = (f"def impl({', '.join(params)}):\n"
           f"    k = rx.shape[0]\n"
           f"    j = 0\n"
           f"    out = _first_of(fn({call}), k)\n"
           f"    for j in range(1, k):\n"
           f"        out[j] = fn({call})\n"
           f"    return out\n")
    ns = {"np": np, "fn": fn, "_first_of": _first_of}
    exec(compile(src, f"<rop.runtime.batched {bfn.__name__}>", "exec"), ns)
    impl = ns["impl"]
    typer_src = f"def typer({', '.join(params)}):\n    return impl\n"
    tns = {"impl": impl}
    exec(compile(typer_src, f"<rop.runtime.batched {bfn.__name__} typer>", "exec"), tns)
    overload(bfn, prefer_literal=True)(tns["typer"])


def _install_per_direction():
    from . import max_tangent, min_tangent, clip_tangent
    from .moments import var_tangent, prod_tangent
    _per_direction(bmax_tangent, max_tangent, ("x", "rx", "axis", "keepdims"))
    _per_direction(bmin_tangent, min_tangent, ("x", "rx", "axis", "keepdims"))
    _per_direction(bclip_tangent, clip_tangent, ("x", "rx", "lo", "hi"))
    _per_direction(bvar_tangent, var_tangent, ("x", "rx", "axis", "ddof", "keepdims"))
    _per_direction(bprod_tangent, prod_tangent, ("x", "rx", "axis", "keepdims"))


@overload(bcheck_index)
def _ov_bcheck_index(index):
    from numba.core.errors import TypingError
    if isinstance(index, types.Array) and isinstance(index.dtype, types.Boolean):
        raise TypingError("rop.runtime.bcheck_index: a boolean mask of rank >= 2 where an "
                          "integer index array was assumed")
    return lambda index: None


@overload(bsetitem_mask)
def _ov_bsetitem_mask(x, mask, value):
    from numba.core.errors import TypingError
    from .masks import setitem_mask
    if not (isinstance(x, types.Array) and isinstance(mask, types.Array)
            and isinstance(mask.dtype, types.Boolean) and mask.ndim == x.ndim - 1):
        raise TypingError("rop.runtime.bsetitem_mask: a boolean mask of the slices' rank")
    if isinstance(value, types.Array) and value.ndim == 2:  # one row per direction
        def impl(x, mask, value):
            for j in range(x.shape[0]):
                setitem_mask(x[j], mask, value[j])
    elif isinstance(value, (types.Array, types.Number, types.Boolean)):
        def impl(x, mask, value):
            for j in range(x.shape[0]):
                setitem_mask(x[j], mask, value)
    else:
        raise TypingError(f"rop.runtime.bsetitem_mask: unsupported value {value}")
    return impl


@overload(bdiagflat)
def _ov_bdiagflat(x):
    def impl(x):
        k = x.shape[0]
        v = np.ascontiguousarray(x).reshape((k, -1))
        n = v.shape[1]
        out = np.zeros((k, n, n))
        for j in range(k):
            for i in range(n):
                out[j, i, i] = v[j, i]
        return out
    return impl


@register_jitable
def _outer3(A2, b1):
    k, m = A2.shape
    n = b1.shape[0]
    out = np.empty((k, m, n))
    for i in range(k):
        for p in range(m):
            for q in range(n):
                out[i, p, q] = A2[i, p] * b1[q]
    return out


@overload(bouter_l)
def _ov_bouter_l(A, b):
    def impl(A, b):
        k = A.shape[0]
        return _outer3(np.ascontiguousarray(A).reshape((k, -1)),
                       np.ascontiguousarray(b).reshape(-1))
    return impl


@overload(bouter_r)
def _ov_bouter_r(a, B):
    def impl(a, B):
        k = B.shape[0]
        B2 = np.ascontiguousarray(B).reshape((k, -1))
        a1 = np.ascontiguousarray(a).reshape(-1)
        out = np.empty((k, a1.shape[0], B2.shape[1]))
        for i in range(k):
            for p in range(a1.shape[0]):
                for q in range(B2.shape[1]):
                    out[i, p, q] = a1[p] * B2[i, q]
        return out
    return impl


_install_per_direction()
