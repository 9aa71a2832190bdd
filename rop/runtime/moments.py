"""``rt.var``, ``rt.std``, ``rt.prod`` and their directional derivatives.

In Python each is NumPy's function (the tangents are written with NumPy).  Numba 0.68's
``np.var``, ``np.std`` and ``np.prod`` take neither ``axis``, ``ddof`` nor ``keepdims``, so
the overloads here view ``x`` as (before the axis, along it, after it) and loop, generated
per rank, constant axis and ``keepdims`` like the reductions of :mod:`._overloads`.

The tangents (the R-rules of rop's table call them):

* ``var_tangent``: R{var} = 2 sum((x - mean) R{x}) / (n - ddof) along the axis -- the mean's
  own R drops out, because sum(x - mean) = 0;
* ``prod_tangent``: R{prod} = sum_j (prod of the other x_k) R{x_j}, with the product of the
  others formed as (product before j) * (product after j), never as prod / x_j, so it is
  exact where x has zeros (where prod / x_j is 0 / 0).
"""

from __future__ import annotations

import functools

import numpy as np
from numba import literal_unroll, types
from numba.core.errors import TypingError
from numba.extending import overload

from .arrays import _axis, _compile, _const, split_lines


def var(x, axis=None, ddof=0, keepdims=False):
    """``np.var(x, axis=axis, ddof=ddof, keepdims=keepdims)``."""
    return np.var(x, axis=axis, ddof=ddof, keepdims=keepdims)


def std(x, axis=None, ddof=0, keepdims=False):
    """``np.std(x, axis=axis, ddof=ddof, keepdims=keepdims)``."""
    return np.std(x, axis=axis, ddof=ddof, keepdims=keepdims)


def prod(x, axis=None, keepdims=False):
    """``np.prod(x, axis=axis, keepdims=keepdims)``."""
    return np.prod(x, axis=axis, keepdims=keepdims)


def _n(x, axis):
    return np.size(x) if axis is None else np.shape(x)[axis]


def var_tangent(x, rx, axis=None, ddof=0, keepdims=False):
    """The derivative of ``var(x, axis, ddof, keepdims)`` along ``rx`` (module docstring)."""
    x = np.asarray(x, dtype=np.float64)
    rx = np.broadcast_to(rx, x.shape)
    d = x - np.mean(x, axis=axis, keepdims=True)
    return 2.0 * np.sum(d * rx, axis=axis, keepdims=keepdims) / (_n(x, axis) - ddof)


def prod_tangent(x, rx, axis=None, keepdims=False):
    """The derivative of ``prod(x, axis, keepdims)`` along ``rx``: sum over the axis of the
    product of the other elements times ``rx`` (exact at zeros; module docstring)."""
    x = np.asarray(x, dtype=np.float64)
    rx = np.broadcast_to(rx, x.shape)
    if axis is None:
        xm, rm = x.reshape(-1), rx.reshape(-1)
    else:
        xm, rm = np.moveaxis(x, axis, -1), np.moveaxis(rx, axis, -1)
    ones = np.ones(xm.shape[:-1] + (1,))
    before = np.concatenate([ones, np.cumprod(xm[..., :-1], axis=-1)], axis=-1)
    after = np.concatenate([np.flip(np.cumprod(np.flip(xm[..., 1:], -1), axis=-1), -1), ones],
                           axis=-1)
    t = np.sum(before * after * rm, axis=-1)
    if keepdims:
        return np.reshape(t, (1,) * x.ndim) if axis is None else np.expand_dims(t, axis)
    return t


# ---------------------------------------------------------------------------
# Numba
# ---------------------------------------------------------------------------

_BODY = {
    # per (i, k): the value of the reduction of x3[i, :, k] (and r3 for tangents)
    "var": ["m = 0.0", "for j in range(n_):", "    m += x3[i, j, k]", "m /= n_", "q = 0.0",
            "for j in range(n_):", "    d = x3[i, j, k] - m", "    q += d * d",
            "res[i, k] = q / (n_ - ddof)"],
    "var_tan": ["m = 0.0", "for j in range(n_):", "    m += x3[i, j, k]", "m /= n_", "q = 0.0",
                "for j in range(n_):", "    q += (x3[i, j, k] - m) * r3[i, j, k]",
                "res[i, k] = 2.0 * q / (n_ - ddof)"],
    "prod": ["p = RES(1)", "for j in range(n_):", "    p *= x3[i, j, k]", "res[i, k] = p"],
    "prod_tan": ["s = 1.0", "for j in range(n_ - 1, -1, -1):", "    after[j] = s",
                 "    s *= x3[i, j, k]", "p = 1.0", "t = 0.0", "for j in range(n_):",
                 "    t += p * after[j] * r3[i, j, k]", "    p *= x3[i, j, k]", "res[i, k] = t"],
}


@functools.lru_cache(maxsize=None)
def _impl(op, ndim, a, keepdims, res_dtype="float64"):
    tangent = op.endswith("_tan")
    args = ("x, rx, " if tangent else "x, ") + \
        ("axis=None, ddof=0, keepdims=False" if op.startswith("var") or op == "std"
         else "axis=None, keepdims=False")
    L = [f"def impl({args}):"]
    if a is None:
        L += ["    pre_ = 1", "    n_ = x.size", "    post_ = 1",
              "    x3 = np.ascontiguousarray(x).reshape((1, n_, 1))"]
    else:
        L += split_lines(ndim, a)
    if tangent:
        L.append("    r3 = np.ascontiguousarray(rx).reshape(x3.shape)")
    L.append("    res = np.empty((pre_, post_), RES)")
    if op == "prod_tan":
        L.append("    after = np.empty(n_)")
    L += ["    for i in range(pre_):", "        for k in range(post_):"]
    L += ["            " + line for line in _BODY["var" if op == "std" else op]]
    if op == "std":
        L.append("    res = np.sqrt(res)")
    if a is None:
        L.append(f"    return res.reshape({(1,) * ndim!r})" if keepdims else "    return res[0, 0]")
    else:
        shape = "".join("1, " if k == a else f"x.shape[{k}], " for k in range(ndim)
                        if keepdims or k != a)
        L.append(f"    return res.reshape(({shape}))")
    return _compile("\n".join(L) + "\n", "impl", {"RES": getattr(np, res_dtype)})


def _resolve(op, x, axis, keepdims, rx=None):
    if not isinstance(x, types.Array) or x.ndim == 0:
        raise TypingError(f"rop.runtime.{op}: an array of rank >= 1, got {x}")
    if rx is not None and not (isinstance(rx, types.Array) and rx.ndim == x.ndim):
        raise TypingError(f"rop.runtime.{op}: rx must be an array of the rank of x, got {rx}")
    kd = bool(_const(keepdims, "keepdims", op))
    # NumPy's product of integers (or booleans) is an int64; every other result is float64
    res = "int64" if op == "prod" and isinstance(x.dtype, (types.Integer, types.Boolean)) \
        else "float64"
    return _impl(op, x.ndim, _axis(axis, x.ndim, op), kd, res)


@overload(var, prefer_literal=True)
def _ov_var(x, axis=None, ddof=0, keepdims=False):
    return _resolve("var", x, axis, keepdims)


@overload(std, prefer_literal=True)
def _ov_std(x, axis=None, ddof=0, keepdims=False):
    return _resolve("std", x, axis, keepdims)


@overload(prod, prefer_literal=True)
def _ov_prod(x, axis=None, keepdims=False):
    if isinstance(x, types.BaseTuple):  # np.prod(x.shape[1:]): a product of sizes
        def prod_tuple(x, axis=None, keepdims=False):
            p = 1
            for v in literal_unroll(x):
                p *= v
            return p
        return prod_tuple
    return _resolve("prod", x, axis, keepdims)


@overload(var_tangent, prefer_literal=True)
def _ov_var_tangent(x, rx, axis=None, ddof=0, keepdims=False):
    return _resolve("var_tan", x, axis, keepdims, rx)


@overload(prod_tangent, prefer_literal=True)
def _ov_prod_tangent(x, rx, axis=None, keepdims=False):
    return _resolve("prod_tan", x, axis, keepdims, rx)
