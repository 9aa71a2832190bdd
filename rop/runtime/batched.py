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
