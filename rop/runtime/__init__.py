"""Runtime helpers called by the generated Hessian-vector-product code.

The code emitted by :mod:`rop` must run unchanged in two modes:

* **python mode** (debugging): the generated module is executed as plain
  Python/NumPy, so every helper below is an ordinary NumPy function;
* **numba mode**: the same functions are called from inside ``@numba.njit``
  code.  Numba's nopython mode lacks (or only partially supports) several
  NumPy features the generated code needs -- ``keepdims``, ``axis`` for
  ``np.mean``/``np.max``/``np.min``, writable ``broadcast_to``, ``reshape`` of
  non-contiguous arrays, ... -- so each helper has a
  :func:`numba.extending.overload` registered in
  :mod:`rop.runtime._overloads` that implements it with explicit loops.

The generated module does ``from rop import runtime as rt`` and calls e.g.
``rt.sum(x, 1, False)``.  ``axis`` may be ``None`` or an int (negative allowed;
in numba mode it may be a runtime value, the array rank is taken from the
type); ``keepdims`` must be a compile-time constant in numba mode (the rank of
the result depends on it), which it is when the generated code passes a
literal ``True``/``False``.

Numba-specific notes (numba 0.68):

* reductions are accumulated left to right, not pairwise as NumPy does, so
  sums can differ from ``np.sum`` in the last bits;
* integer/bool inputs are summed in int64 (NumPy semantics on 64-bit Linux),
  their ``mean`` is float64; float32 stays float32.
"""

import math as _math

import numpy as np

__all__ = [
    "sum", "mean", "amax", "amin", "max_tangent", "min_tangent",
    "broadcast_as", "reshape", "transpose", "zeros_of", "clip_tangent",
    "norm", "note_not_converged", "release", "matmul", "check_direction", "check_length", "clip", "gemm",
    "pow_log", "add_at", "as_int", "getitem_mask", "setitem_mask", "squeeze", "UserCheck",
    "array", "tile", "repeat", "cumsum", "var", "std", "prod", "var_tangent",
    "prod_tangent", "einsum", "concatenate", "stack", "vstack", "hstack", "column_stack",
    "pad_constant", "unravel_index",
]


# ---------------------------------------------------------------------------
# Reductions
# ---------------------------------------------------------------------------

def sum(x, axis=None, keepdims=False):  # noqa: A001 - deliberate NumPy name
    """``np.sum(x, axis=axis, keepdims=keepdims)``.

    Exists because Numba's ``np.sum`` has no ``keepdims`` argument; the numba
    overload also handles negative / runtime ``axis`` with cache-friendly
    explicit loops.  Scalars are returned unchanged.
    """
    if np.ndim(x) == 0:
        return x
    return np.sum(x, axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    """``np.mean(x, axis=axis, keepdims=keepdims)``.

    Exists because Numba's ``np.mean`` supports neither ``axis`` nor
    ``keepdims``.  Scalars are returned as float.
    """
    if np.ndim(x) == 0:
        return float(x)
    return np.mean(x, axis=axis, keepdims=keepdims)


def amax(x, axis=None, keepdims=False):
    """``np.max(x, axis=axis, keepdims=keepdims)`` (NaN propagates).

    Exists because Numba's ``np.max``/``np.amax`` have no ``axis`` /
    ``keepdims`` arguments.  Scalars are returned unchanged.
    """
    if np.ndim(x) == 0:
        return x
    return np.max(x, axis=axis, keepdims=keepdims)


def amin(x, axis=None, keepdims=False):
    """``np.min(x, axis=axis, keepdims=keepdims)`` (NaN propagates).

    Exists because Numba's ``np.min``/``np.amin`` have no ``axis`` /
    ``keepdims`` arguments.  Scalars are returned unchanged.
    """
    if np.ndim(x) == 0:
        return x
    return np.min(x, axis=axis, keepdims=keepdims)


def _ext_tangent(argfn, x, rx, axis, keepdims):
    if np.ndim(x) == 0:
        return rx
    rx = np.broadcast_to(rx, np.shape(x))
    if axis is None:
        t = np.ravel(rx)[argfn(x)]
        if keepdims:
            return np.full((1,) * np.ndim(x), t)
        return t
    idx = np.expand_dims(argfn(x, axis=axis), axis)
    t = np.take_along_axis(rx, idx, axis=axis)
    if keepdims:
        return t
    t = np.squeeze(t, axis=axis)
    return t[()] if t.ndim == 0 else t


def max_tangent(x, rx, axis=None, keepdims=False):
    """Directional derivative of ``np.max(x, axis, keepdims)`` along ``rx``.

    Returns the value of ``rx`` at the position of the *first* maximum of
    ``x`` along ``axis`` (NumPy ``argmax`` tie-breaking; a NaN counts as the
    maximum, like in ``np.max``).  Same shape as :func:`amax`.  ``rx`` should
    have the shape of ``x`` (a scalar or lower-rank ``rx`` is broadcast).
    Exists because the R-operator of a max-reduction is a gather, which has
    no one-call NumPy/Numba spelling (``take_along_axis`` with ``axis`` is not
    supported by Numba).
    """
    return _ext_tangent(np.argmax, x, rx, axis, keepdims)


def min_tangent(x, rx, axis=None, keepdims=False):
    """Directional derivative of ``np.min(x, axis, keepdims)`` along ``rx``.

    Value of ``rx`` at the first minimum of ``x`` along ``axis``; see
    :func:`max_tangent`.
    """
    return _ext_tangent(np.argmin, x, rx, axis, keepdims)


# ---------------------------------------------------------------------------
# Shape helpers
# ---------------------------------------------------------------------------

def broadcast_as(r, like):
    """``r`` broadcast to the shape of ``like``, as a *writable* array.

    Returns ``r`` itself when the shapes already match, otherwise a fresh copy
    of ``np.broadcast_to(r, np.shape(like))``.  If ``like`` is a scalar, ``r``
    (a scalar or size-1 array) is returned as a float.  Exists because
    R-values must often be materialised with the primal's shape (e.g. an
    R-value that is a scalar or has a broadcast dimension, before in-place
    accumulation), and Numba's ``np.broadcast_to`` returns a read-only view.
    In numba mode ``np.ndim(r) <= np.ndim(like)`` is required.
    """
    if np.ndim(like) == 0:
        return float(np.asarray(r).item())
    shape = np.shape(like)
    if np.shape(r) == shape and isinstance(r, np.ndarray):
        return r
    return np.array(np.broadcast_to(r, shape))


def reshape(x, shape):
    """``x.reshape(shape)`` (C order) that also works for non-contiguous ``x``.

    Exists because Numba's ``reshape`` raises ``NotImplementedError`` on
    non-C-contiguous arrays (e.g. transposes or slices); the overload copies
    to a contiguous array first only when needed.  ``shape`` is an int or a
    tuple of ints and may contain one ``-1``.
    """
    return np.reshape(x, shape)


def transpose(x, axes=None):
    """``np.transpose(x, axes)``.

    Numba 0.68 supports ``np.transpose(x, axes)`` natively (including negative
    axes); the helper exists so that the generated code has one spelling that
    also accepts scalars (returned unchanged) and ``axes=None``.
    """
    if np.ndim(x) == 0:
        return x
    return np.transpose(x, axes)


def matmul(a, b):
    """``a @ b`` where an operand is a stack of matrices (rank 3, e.g. a batch of sequences).

    Exists because Numba's ``@`` takes vectors and matrices only; the overload loops over the
    stack (broadcasting a stack of one, as NumPy does) and multiplies matrix by matrix."""
    return a @ b


def release(lst, i, offset=0):
    """Drop list ``lst``'s reference to the array in slot ``i + offset``, which the program
    does not read again (see :mod:`rop.ir.release`): an empty array of the same dtype and
    rank takes its place, so the list keeps its length and, in Numba, its type.  A slot past
    the end (never read) is left alone."""
    k = i + offset
    if 0 <= k < len(lst) and isinstance(lst[k], np.ndarray):
        lst[k] = np.empty((0,) * lst[k].ndim, lst[k].dtype)


def zeros_of(x):
    """Zero with the shape of ``x``: ``np.zeros_like`` for arrays, ``0.0`` for
    scalars, a list of those for a list.

    Used to materialise an R-value that is structurally zero on one branch of
    an ``if`` so that both branches produce the same type (in Numba the two
    branches must unify).  Integer/bool inputs give float64 zeros, since
    R-values are always floating point.
    """
    if isinstance(x, (list, tuple)):
        # a list's R (of per-layer tuples too) is made here, not by a comprehension in the
        # generated code: Numba 0.68 mis-compiles a comprehension over a list whose array
        # elements are written in place later (reads through the list miss the write)
        return [zeros_of(e) for e in x]
    if np.ndim(x) == 0:
        return 0.0
    x = np.asarray(x)
    dt = x.dtype if np.issubdtype(x.dtype, np.inexact) else np.float64
    return np.zeros(x.shape, dt)


def clip_tangent(x, rx, lo, hi):
    """Directional derivative of ``np.clip(x, lo, hi)`` w.r.t. ``x`` along ``rx``.

    Returns ``rx`` where ``lo < x < hi`` and ``0`` where x is clipped.  Convention at the
    kinks, JAX's for ``jnp.clip`` (= ``minimum(maximum(x, lo), hi)`` with a tie in maximum
    or minimum taking the mean of both operands' derivatives): an element exactly on a
    bound (``x == lo`` or ``x == hi``) gets ``rx / 2``, the mean of the one-sided
    derivatives, which is also what a central difference gives there.  The variable-bound
    rule of ``clip`` in ``rop.rules.table`` follows the same convention.  ``lo``/``hi`` are
    scalars or ``None`` (no bound).  Exists because the R-rule of ``clip`` needs a masked
    select that the overload performs in one fused loop.
    """
    x = np.asarray(x)
    rx = np.asarray(rx, dtype=np.float64)
    r = rx if lo is None else np.where(x > lo, rx, np.where(x < lo, 0.0, 0.5 * rx))
    if hi is not None:
        m = x if lo is None else np.maximum(x, lo)
        r = np.where(m < hi, r, np.where(m > hi, 0.0, 0.5 * r))
    out = np.array(np.broadcast_to(r, np.broadcast_shapes(x.shape, rx.shape)), dtype=np.float64)
    if out.ndim == 0:
        return out[()]
    return out


def pow_log(a):
    """``log(a)``, with 0 where ``a == 0``: the factor of R{b} in R{a ** b} = ... + a ** b
    log(a) R{b}.  There ``a ** b`` is 0 (for b > 0) on both sides of b, so the term is 0 —
    JAX's convention (``log(_replace_zero(a))``) — where ``log(a)`` alone would give
    ``0 * -inf = NaN``.  Negative ``a`` gives NaN, as ``np.log`` does."""
    if np.ndim(a) == 0:
        a = float(a)
        return 0.0 if a == 0.0 else float(np.log(a))
    a = np.asarray(a, dtype=np.float64)
    return np.log(np.where(a == 0.0, 1.0, a))


def norm(x):
    """Euclidean norm ``sqrt(sum(x**2))`` of an array of any rank, or ``abs``
    of a scalar.

    Used by the convergence tests of relaxation (fixed-point) loops.  Exists
    because Numba's ``np.linalg.norm`` only accepts 1-D and 2-D arrays.
    """
    if np.ndim(x) == 0:
        return float(abs(x))
    x = np.asarray(x)
    return _math.sqrt(float(np.sum(x * x)))


# Register the nopython-mode implementations (no-op if numba is unavailable,
# python mode still works).
try:  # pragma: no cover - numba is a hard dependency in practice
    import numba as _numba  # noqa: F401
except ImportError:  # pragma: no cover
    pass
else:
    from . import _overloads  # noqa: F401,E402

from .blas import gemm  # noqa: E402  (sums of matrix products on BLAS; its own overload)
# NumPy functions Numba lacks (or lacks the arguments of), each with its own overload
from .arrays import (array, tile, repeat, cumsum, concatenate, stack, vstack, hstack,  # noqa: E402
                     column_stack, pad_constant, unravel_index)
from .moments import var, std, prod, var_tangent, prod_tangent  # noqa: E402
from .einsum import einsum  # noqa: E402
# the batched tangent's helpers (k directions at once: transforms/batch.py)
from .batched import (bmm_l2, bmm_l1, bmm_v, bmm_r2, bmm_r1, bmm_rv2, bmm_rv1,  # noqa: E402
                      bsum_all, bmean_all, breshape, bbroadcast_as, bzeros, bzeros_scalar,
                      bzeros_list)
from .batched import (bmax_tangent, bmin_tangent, bclip_tangent, bvar_tangent,  # noqa: E402
                      bprod_tangent, bcheck_index, bsetitem_mask, bouter_l, bouter_r,
                      bdiagflat)


# ---------------------------------------------------------------------------
# Relaxation diagnostics
# ---------------------------------------------------------------------------

from numba.extending import register_jitable as _register_jitable  # noqa: E402


@_register_jitable
def note_not_converged(status, index, iterations, change, change_r):
    """Record that relaxation loop ``index`` stopped at its cap: generated code cannot raise
    a formatted warning from inside Numba, so it writes here and the wrapper reports it."""
    status[index, 0] = 1.0
    status[index, 1] = iterations
    status[index, 2] = change
    status[index, 3] = change_r


# ---------------------------------------------------------------------------
# Argument checks inside the compiled code
# ---------------------------------------------------------------------------

from ..errors import BadDirection, NonFinite  # noqa: E402  (raised by the checks below)


def check_direction(x, rx, index):
    """Refuse a direction not shaped like its parameter, and NaN/Inf in either.  Generated
    code calls this first, so the common call is checked by one tight loop inside Numba
    instead of Python-level checks in the wrapper (which cost more than the whole Hv of a
    small network)."""
    if np.shape(x) != np.shape(rx):
        raise BadDirection(index)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(rx))):
        raise NonFinite(index)


def check_length(x, rx, index):
    """Refuse a list of directions whose length is not the parameter list's (generated code
    then indexes both in one loop)."""
    if len(x) != len(rx):
        raise BadDirection(index)


def _install_checks():
    from numba import types
    from numba.extending import overload

    # v - v == 0 is False exactly for NaN and +-Inf; counting the failures (instead of
    # stopping at the first) lets LLVM vectorise the loop
    @overload(check_direction)
    def _ov(x, rx, index):
        if isinstance(x, types.Array) and isinstance(rx, types.Array):
            def impl(x, rx, index):
                if x.shape != rx.shape:
                    raise BadDirection(index)
                bad = 0
                for v in x.flat:
                    bad += not v - v == 0.0
                for v in rx.flat:
                    bad += not v - v == 0.0
                if bad:
                    raise NonFinite(index)
            return impl

        def impl_scalar(x, rx, index):
            if not (x - x == 0.0 and rx - rx == 0.0):
                raise NonFinite(index)
        return impl_scalar

    @overload(check_length)
    def _ov_len(x, rx, index):
        def impl(x, rx, index):
            if len(x) != len(rx):
                raise BadDirection(index)
        return impl


_install_checks()


def clip(x, lo, hi):
    """``np.clip``, also for a scalar ``x`` in Numba (whose ``np.clip`` takes arrays only)."""
    return np.clip(x, lo, hi)


def _install_clip():
    from numba import types
    from numba.extending import overload

    @overload(clip)
    def _ov(x, lo, hi):
        if isinstance(x, (types.Float, types.Integer)):
            def impl_scalar(x, lo, hi):
                return min(max(x, lo), hi)
            return impl_scalar

        def impl(x, lo, hi):
            return np.clip(x, lo, hi)
        return impl


_install_clip()


def _install_pow_log():
    from numba import types
    from numba.extending import overload

    @overload(pow_log)
    def _ov(a):
        if isinstance(a, (types.Float, types.Integer)):
            def impl_scalar(a):
                return 0.0 if a == 0 else np.log(float(a))
            return impl_scalar
        if isinstance(a, types.Array):
            def impl(a):
                return np.log(np.where(a == 0, 1.0, a))
            return impl
        return None


_install_pow_log()


# ---------------------------------------------------------------------------
# Elementwise functions: NumPy's vectorised loops, also inside Numba
# ---------------------------------------------------------------------------
#
# Numba compiles np.tanh, np.exp, ... on arrays to a loop over the C library's scalar
# function: without Intel's SVML (not in the pip llvmlite) that is 5-20x slower than
# NumPy's SIMD loops (np.tanh on 1000x256: 3.8 ms in Numba, 0.20 ms in NumPy; at the large
# benchmark size tanh was a quarter of the gradient's time).  ``rt.tanh(x)`` is np.tanh(x)
# in Python; in Numba an array of 2048 elements or more is handed to NumPy's loop (one
# switch to the interpreter, a few microseconds), a smaller one or a scalar stays in
# compiled code (the C library's values there, within a few units in the last place of NumPy's).

VECTOR_UFUNCS = ("exp", "log", "log1p", "expm1", "tanh", "sinh", "cosh", "sin", "cos", "tan",
                 "arctan")
_VECTOR_MIN_SIZE = 2048


def _make_vector_ufunc(name):
    uf = getattr(np, name)

    def f(x):
        return uf(x)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = (f"``np.{name}(x)``; inside Numba, arrays of {_VECTOR_MIN_SIZE} elements or "
                 f"more run NumPy's vectorised loop.")
    return f


for _n in VECTOR_UFUNCS:
    globals()[_n] = _make_vector_ufunc(_n)


def _install_vector_ufuncs():
    from numba import types
    from numba.extending import overload
    from .numpy_loops import numpy_loop

    def install(name):
        uf = getattr(np, name)
        loop = numpy_loop(uf)  # uf(x, out) by NumPy, without an objmode block (numpy_loops.py)

        @overload(globals()[name])
        def _ov(x):
            if isinstance(x, types.Array) and isinstance(x.dtype, types.Float):
                dt = np.dtype(str(x.dtype))

                def impl(x):
                    if x.size >= _VECTOR_MIN_SIZE:  # NumPy's loop, as uf(x, order="C")
                        out = np.empty(x.shape, dt)
                        loop(x, out)
                        return out
                    return uf(x)
                return impl
            if isinstance(x, (types.Float, types.Integer, types.Array)):
                return lambda x: uf(x)
            return None
    for n in VECTOR_UFUNCS:
        install(n)


_install_vector_ufuncs()

from .masks import add_at, as_int, getitem_mask, setitem_mask, squeeze  # noqa: E402,F401  (runtime/masks.py)
from .checks import UserCheck, RAISABLE  # noqa: E402,F401  (the user's assert / raise)
from . import checks as _checks  # noqa: E402
for _n in RAISABLE:
    globals()[_n] = getattr(_checks, _n)  # rt.ValueError: raised by the user's own check
del _n
