"""Arrays built from arrays: ``rt.array``, ``rt.tile``, ``rt.repeat``, ``rt.cumsum``,
``rt.pad_constant``; and ``rt.unravel_index``.

Each is the NumPy function of the same name in Python.  Numba 0.68 lacks the function or
the argument rop needs -- ``np.array`` of a tuple of arrays, ``np.tile``, ``np.repeat`` and
``np.cumsum`` with ``axis``, ``np.pad``, ``np.unravel_index`` -- so each has an overload
here, generated per rank and (constant) axis as explicit loops, like the reductions of
:mod:`._overloads`.

An ``axis`` is a constant in numba mode (the result's shape depends on it); the rule table
refuses any other at the user's line.  Also here: Numba's ``np.dot`` and ``@`` refuse a
boolean operand (``np.dot(x > 0, W)``, a mask in backprop code); the overloads at the end
take it as 0.0/1.0, as NumPy does.
"""

from __future__ import annotations

import functools
import operator

import numpy as np
from numba import types
from numba.core.errors import TypingError
from numba.extending import overload
from numba.np.numpy_support import as_dtype


def array(items):
    """``np.array(items)`` for a (nested) tuple of numbers or of arrays of one shape."""
    return np.array(items)


def tile(x, reps):
    """``np.tile(x, reps)``; ``reps`` an int or a tuple of ints."""
    return np.tile(x, reps)


def repeat(x, repeats, axis=None):
    """``np.repeat(x, repeats, axis)``; ``repeats`` an int."""
    return np.repeat(x, repeats, axis=axis)


def cumsum(x, axis=None):
    """``np.cumsum(x, axis)``: along ``axis``, or over the flattened array for ``None``."""
    return np.cumsum(x, axis=axis)


def pad_constant(x, pad_width, value=0):
    """``np.pad(x, pad_width, mode='constant', constant_values=value)``: ``pad_width`` an int,
    a pair ``(before, after)`` or one pair per axis, as NumPy takes it; ``value`` one number
    (the fill of the border, cast to x's dtype)."""
    if np.ndim(value) != 0:
        raise TypeError("rop.runtime.pad_constant: constant_values must be one number")
    return np.pad(x, pad_width, mode="constant", constant_values=value)


def unravel_index(indices, shape):
    """``np.unravel_index(indices, shape)``: the tuple of coordinates of a flat (C-order)
    index, or of an integer array of them (one array per axis)."""
    return np.unravel_index(indices, shape)


def concatenate(xs, axis=0):
    """``np.concatenate(xs, axis)``, also of a list of arrays in Numba (a list built by
    ``append``, as a recurrent network's states are; Numba's own takes tuples only)."""
    return np.concatenate(xs, axis=axis)


def stack(xs, axis=0):
    """``np.stack(xs, axis)``, also of a list of arrays in Numba."""
    return np.stack(xs, axis=axis)


def vstack(xs):
    """``np.vstack(xs)``, also of a list of arrays in Numba."""
    return np.vstack(xs)


def hstack(xs):
    """``np.hstack(xs)``, also of a list of arrays in Numba."""
    return np.hstack(xs)


def column_stack(xs):
    """``np.column_stack(xs)``, also of a list of arrays in Numba."""
    return np.column_stack(xs)


# ---------------------------------------------------------------------------
# Numba
# ---------------------------------------------------------------------------

def _compile(src, name, ns=None):
    g = {"np": np, **(ns or {})}
    exec(compile(src, f"<rop.runtime.arrays generated {name}>", "exec"), g)
    return g[name]


def _const(t, what, fname):
    """The compile-time value of an omitted or literal argument."""
    if t is None or isinstance(t, (int, bool)):
        return t
    if isinstance(t, (types.NoneType,)):
        return None
    if isinstance(t, types.Omitted):
        return t.value
    if isinstance(t, types.Literal):
        return t.literal_value
    raise TypingError(f"rop.runtime.{fname}: {what} must be a compile-time constant, got {t}")


def _axis(t, ndim, fname):
    a = _const(t, "axis", fname)
    if a is None:
        return None
    if not -ndim <= a < ndim:
        raise TypingError(f"rop.runtime.{fname}: axis {a} is out of bounds for an array of "
                          f"rank {ndim}")
    return a % ndim


def split_lines(ndim, a, name="x"):
    """Source lines viewing ``name`` (rank ``ndim``) as ``{name}3`` of shape (pre, n, post)
    around axis ``a`` (C order; a copy only when ``name`` is not C-contiguous)."""
    pre = " * ".join(f"{name}.shape[{k}]" for k in range(a)) or "1"
    post = " * ".join(f"{name}.shape[{k}]" for k in range(a + 1, ndim)) or "1"
    return [f"    pre_ = {pre}", f"    n_ = {name}.shape[{a}]", f"    post_ = {post}",
            f"    {name}3 = np.ascontiguousarray({name}).reshape((pre_, n_, post_))"]


def _leaves(t, path=()):
    """(index path, type) of each leaf of a nested tuple type, and the nesting's shape."""
    if isinstance(t, types.BaseTuple):
        subs = [_leaves(e, path + (k,)) for k, e in enumerate(t.types)]
        shapes = {s for _, s in subs}
        if len(shapes) != 1:
            raise TypingError("rop.runtime.array: the nested sequences are ragged")
        return [leaf for ls, _ in subs for leaf in ls], (len(t.types),) + shapes.pop()
    return [(path, t)], ()


@overload(array)
def _ov_array(items):
    if not isinstance(items, types.BaseTuple):
        if isinstance(items, types.Array):
            return lambda items: items.copy()
        if isinstance(items, (types.List, types.ListType)) and isinstance(items.dtype,
                                                                          types.Array):
            return lambda items: stack(items, 0)
        if isinstance(items, (types.List, types.ListType)):
            return lambda items: np.array(items)
        raise TypingError(f"rop.runtime.array: a tuple of numbers or arrays, got {items}")
    leaves, outer = _leaves(items)
    kinds = {isinstance(t, types.Array) for _, t in leaves}
    if len(kinds) != 1 or not all(isinstance(t, (types.Array, types.Number, types.Boolean))
                                  for _, t in leaves):
        raise TypingError("rop.runtime.array: items must be all numbers or all arrays")
    dtype = np.result_type(*[as_dtype(t.dtype if isinstance(t, types.Array) else t)
                             for _, t in leaves])
    get = ["items" + "".join(f"[{k}]" for k in path) for path, _ in leaves]
    idx = [", ".join(str(k) for k in path) for path, _ in leaves]
    L = ["def impl(items):"]
    if kinds == {True}:
        L.append(f"    first = {get[0]}")
        L.append(f"    out = np.empty({outer!r} + first.shape, DT)")
        for g, i in zip(get, idx):
            L += [f"    if {g}.shape != first.shape:",
                  "        raise ValueError('setting an array element with a sequence: the "
                  "arrays have different shapes')",
                  f"    out[{i}] = {g}"]
    else:
        L.append(f"    out = np.empty({outer!r}, DT)")
        L += [f"    out[{i}] = {g}" for g, i in zip(get, idx)]
    L.append("    return out")
    return _compile("\n".join(L) + "\n", "impl", {"DT": dtype})


@functools.lru_cache(maxsize=None)
def _tile_impl(ndim, d, reps_int):
    """np.tile for x of rank ``ndim`` and ``d`` repetitions: both padded with leading 1s to
    the larger rank, as NumPy does; each output element reads x at its index modulo x's
    shape."""
    n = max(ndim, d)
    L = ["def impl(x, reps):"]
    reps = ["reps" if reps_int else f"reps[{k}]" for k in range(d)]
    full = ["1"] * (n - d) + reps  # reps padded to the result's rank
    xs = ["1"] * (n - ndim) + [f"x.shape[{k}]" for k in range(ndim)]
    L.append("    out = np.empty((" + "".join(f"{s} * {r}, " for s, r in zip(xs, full))
             + "), x.dtype)")
    ind = "    "
    for k in range(n):
        L.append(f"{ind}for i{k} in range(out.shape[{k}]):")
        ind += "    "
    src = ", ".join(f"i{k} % x.shape[{k - (n - ndim)}]" for k in range(n - ndim, n))
    L.append(f"{ind}out[{', '.join(f'i{k}' for k in range(n))}] = x[{src}]")
    L.append("    return out")
    return _compile("\n".join(L) + "\n", "impl")


@overload(tile)
def _ov_tile(x, reps):
    if isinstance(x, (types.Number, types.Boolean)) and isinstance(reps, types.Integer):
        return lambda x, reps: np.full(reps, x)  # np.tile(rho, n): a vector of n rho's
    if not isinstance(x, types.Array) or x.ndim == 0:
        raise TypingError(f"rop.runtime.tile: an array of rank >= 1, got {x}")
    if isinstance(reps, types.Integer):
        return _tile_impl(x.ndim, 1, True)
    if isinstance(reps, types.BaseTuple) and all(isinstance(t, types.Integer) for t in reps):
        return _tile_impl(x.ndim, len(reps), False)
    raise TypingError(f"rop.runtime.tile: reps must be an int or a tuple of ints, got {reps}")


@functools.lru_cache(maxsize=None)
def _repeat_impl(ndim, a):
    """np.repeat along axis ``a``: x viewed as (before, along, after), each element written
    ``repeats`` times in a row."""
    if a is None:
        return lambda x, repeats, axis=None: np.repeat(x, repeats)
    shape = "".join(f"x.shape[{k}] * repeats, " if k == a else f"x.shape[{k}], "
                    for k in range(ndim))
    L = ["def impl(x, repeats, axis=None):", *split_lines(ndim, a),
         f"    out = np.empty(({shape}), x.dtype)",
         "    out3 = out.reshape((pre_, n_ * repeats, post_))",
         "    for i in range(pre_):",
         "        for j in range(n_):",
         "            for r in range(repeats):",
         "                for k in range(post_):",
         "                    out3[i, j * repeats + r, k] = x3[i, j, k]",
         "    return out"]
    return _compile("\n".join(L) + "\n", "impl")


@overload(repeat, prefer_literal=True)
def _ov_repeat(x, repeats, axis=None):
    if not isinstance(x, types.Array):
        raise TypingError(f"rop.runtime.repeat: an array, got {x}")
    if not isinstance(repeats, types.Integer):
        raise TypingError("rop.runtime.repeat: repeats must be an int (one count for every "
                          f"element), got {repeats}")
    return _repeat_impl(x.ndim, _axis(axis, x.ndim, "repeat"))


@functools.lru_cache(maxsize=None)
def _cumsum_impl(ndim, a, dt):
    """np.cumsum along axis ``a``, accumulated in ``dt`` (int64 for integers and booleans, as
    NumPy on 64-bit Linux)."""
    if a is None:
        return lambda x, axis=None: np.cumsum(x)
    L = ["def impl(x, axis=None):", *split_lines(ndim, a),
         "    out = np.empty(x.shape, DT)",
         "    out3 = out.reshape((pre_, n_, post_))",
         "    for i in range(pre_):",
         "        for k in range(post_):",
         "            acc = DT(0)",
         "            for j in range(n_):",
         "                acc += x3[i, j, k]",
         "                out3[i, j, k] = acc",
         "    return out"]
    return _compile("\n".join(L) + "\n", "impl", {"DT": getattr(np, dt)})


@overload(cumsum, prefer_literal=True)
def _ov_cumsum(x, axis=None):
    if not isinstance(x, types.Array):
        raise TypingError(f"rop.runtime.cumsum: an array, got {x}")
    dt = as_dtype(x.dtype).name if isinstance(x.dtype, types.Float) else "int64"
    return _cumsum_impl(x.ndim, _axis(axis, x.ndim, "cumsum"), dt)


def _ints(t):
    return isinstance(t, types.Integer)


def _pad_pairs(pw, ndim):
    """Source of (before, after) for each of ``ndim`` axes from the type of ``pad_width``:
    NumPy broadcasts it to shape (ndim, 2), so an int, ``(n,)``, ``(before, after)``, one pair
    (or one 1-tuple) per axis, or a single pair in a tuple ``((b, a),)`` are all accepted."""
    if _ints(pw):
        return [("pw", "pw")] * ndim
    if isinstance(pw, types.BaseTuple) and len(pw) in (1, 2) and all(_ints(t) for t in pw):
        return [("pw[0]", f"pw[{len(pw) - 1}]")] * ndim
    if isinstance(pw, types.BaseTuple) and len(pw) in (1, ndim) and all(
            isinstance(t, types.BaseTuple) and len(t) in (1, 2) and all(_ints(e) for e in t)
            for t in pw):
        out = []
        for k in range(ndim):
            j = k if len(pw) == ndim else 0
            out.append((f"pw[{j}][0]", f"pw[{j}][{len(pw[j]) - 1}]"))
        return out
    raise TypingError("rop.runtime.pad_constant: pad_width must be an int, a pair of ints or "
                      f"one pair of ints per axis (of {ndim}), got {pw}")


@functools.lru_cache(maxsize=None)
def _pad_impl(pairs):
    """The padded array: filled with ``value``, x copied into the middle."""
    n = len(pairs)
    L = ["def impl(x, pad_width, value=0):", "    pw = pad_width"]
    for k, (b, a) in enumerate(pairs):
        L += [f"    b{k} = {b}", f"    a{k} = {a}",
              f"    if b{k} < 0 or a{k} < 0:",
              "        raise ValueError(\"index can't contain negative values\")"]
    shape = "".join(f"x.shape[{k}] + b{k} + a{k}, " for k in range(n))
    mid = ", ".join(f"b{k}:b{k} + x.shape[{k}]" for k in range(n))
    L += [f"    out = np.empty(({shape}), x.dtype)",
          "    out[...] = value",
          f"    out[{mid}] = x",
          "    return out"]
    return _compile("\n".join(L) + "\n", "impl")


@overload(pad_constant)
def _ov_pad_constant(x, pad_width, value=0):
    if not isinstance(x, types.Array) or x.ndim == 0:
        raise TypingError(f"rop.runtime.pad_constant: an array of rank >= 1, got {x}")
    if not isinstance(value, (types.Number, types.Boolean, types.Omitted)):
        raise TypingError("rop.runtime.pad_constant: constant_values must be one number, got "
                          f"{value}")
    return _pad_impl(tuple(_pad_pairs(pad_width, x.ndim)))


@functools.lru_cache(maxsize=None)
def _unravel_impl(n, dims, array):
    """Coordinates of flat C-order indices into a shape of ``n`` dims (source ``dims``): the
    last coordinate varies fastest.  An index outside the shape's size is a ValueError, as in
    NumPy."""
    size = " * ".join(dims)
    L = ["def impl(indices, shape):", f"    size = {size}"]
    if array:
        L += ["    flat = indices.ravel()",
              *[f"    c{k} = np.empty(indices.shape, np.int64)" for k in range(n)],
              *[f"    f{k} = c{k}.reshape(-1)" for k in range(n)],
              "    for m in range(flat.size):",
              "        r = np.int64(flat[m])",
              "        if r < 0 or r >= size:",
              "            raise ValueError('index is out of bounds for array with this size')"]
        for k in range(n - 1, -1, -1):
            L += [f"        f{k}[m] = r % {dims[k]}", f"        r = r // {dims[k]}"]
    else:
        L += ["    r = np.int64(indices)",
              "    if r < 0 or r >= size:",
              "        raise ValueError('index is out of bounds for array with this size')"]
        for k in range(n - 1, -1, -1):
            L += [f"    c{k} = r % {dims[k]}", f"    r = r // {dims[k]}"]
    L.append("    return (" + "".join(f"c{k}, " for k in range(n)) + ")")
    return _compile("\n".join(L) + "\n", "impl")


@overload(unravel_index)
def _ov_unravel_index(indices, shape):
    if _ints(shape):
        dims = ("shape",)
    elif isinstance(shape, types.BaseTuple) and len(shape) and all(_ints(t) for t in shape):
        dims = tuple(f"shape[{k}]" for k in range(len(shape)))
    else:
        raise TypingError(f"rop.runtime.unravel_index: shape must be a tuple of ints, got {shape}")
    if _ints(indices):
        return _unravel_impl(len(dims), dims, False)
    if isinstance(indices, types.Array) and _ints(indices.dtype):
        return _unravel_impl(len(dims), dims, True)
    raise TypingError(f"rop.runtime.unravel_index: an int or an integer array, got {indices}")


# ---------------------------------------------------------------------------
# Boolean operands of np.dot and @ (NumPy takes them as 0/1; Numba refuses them)
# ---------------------------------------------------------------------------

def _bool_array(t):
    """A boolean array type (a mask such as ``x > 0``)."""
    return isinstance(t, types.Array) and isinstance(t.dtype, types.Boolean)


def _float_operands(a, b):
    """True where this module must serve the product: arrays, one of them boolean."""
    if not (isinstance(a, types.Array) and isinstance(b, types.Array)):
        return None
    if not (_bool_array(a) or _bool_array(b)):
        return None  # Numba's own implementation serves every other case
    return True


def _bool_product(a, b):
    """The product with booleans as 0.0/1.0 (BLAS takes floats); two booleans give NumPy's
    boolean result, whether any term is true."""
    if not _float_operands(a, b):
        return None
    if _bool_array(a) and _bool_array(b):  # NumPy: a boolean result (or of ands)
        return lambda a, b: np.dot(a.astype(np.float64), b.astype(np.float64)) > 0.0
    return lambda a, b: np.dot(a.astype(np.float64), b.astype(np.float64))


@overload(np.dot)
def _ov_dot_bool(a, b):
    return _bool_product(a, b)


@overload(operator.matmul)
def _ov_matmul_bool(a, b):
    return _bool_product(a, b)


# ---------------------------------------------------------------------------
# Stacking a list of arrays (a tuple goes to Numba's own function)
# ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _list_concat_impl(ndim, a, sig):
    """Items of rank ``ndim`` joined along axis ``a``; every item must have the first's shape
    off the axis, as NumPy requires."""
    others = [k for k in range(ndim) if k != a]
    same = " or ".join(f"e.shape[{k}] != first.shape[{k}]" for k in others) or "False"
    shape = "".join("total, " if k == a else f"first.shape[{k}], " for k in range(ndim))
    pre = "".join(":, " for _ in range(a))
    L = [f"def impl({sig}):",
         "    if len(xs) == 0:",
         "        raise ValueError('need at least one array to concatenate')",
         "    first = xs[0]",
         "    total = 0",
         "    for e in xs:",
         f"        if {same}:",
         "            raise ValueError('all the input array dimensions except for the "
         "concatenation axis must match exactly')",
         f"        total += e.shape[{a}]",
         f"    out = np.empty(({shape}), first.dtype)",
         "    at = 0",
         "    for e in xs:",
         f"        out[{pre}at:at + e.shape[{a}]] = e",
         f"        at += e.shape[{a}]",
         "    return out"]
    return _compile("\n".join(L) + "\n", "impl")


@functools.lru_cache(maxsize=None)
def _list_stack_impl(ndim, a, sig):
    """Items of one shape, rank ``ndim``, stacked along a new axis ``a``."""
    shape = "".join("len(xs), " if k == a else f"first.shape[{k - (k > a)}], "
                    for k in range(ndim + 1))
    pre = "".join(":, " for _ in range(a))
    L = [f"def impl({sig}):",
         "    if len(xs) == 0:",
         "        raise ValueError('need at least one array to stack')",
         "    first = xs[0]",
         f"    out = np.empty(({shape}), first.dtype)",
         "    for k in range(len(xs)):",
         "        if xs[k].shape != first.shape:",
         "            raise ValueError('all input arrays must have the same shape')",
         f"        out[{pre}k] = xs[k]",
         "    return out"]
    return _compile("\n".join(L) + "\n", "impl")


def _list_items(xs, fname):
    """The rank of the arrays in a list type, or a typing error naming the helper."""
    if isinstance(xs, (types.List, types.ListType)) and isinstance(xs.dtype, types.Array):
        return xs.dtype.ndim
    raise TypingError(f"rop.runtime.{fname}: a tuple or a list of arrays, got {xs}")


@overload(concatenate, prefer_literal=True)
def _ov_concatenate(xs, axis=0):
    if isinstance(xs, types.BaseTuple):
        return lambda xs, axis=0: np.concatenate(xs, axis)
    nd = _list_items(xs, "concatenate")
    return _list_concat_impl(nd, _axis(axis, nd, "concatenate"), "xs, axis=0")


@overload(stack, prefer_literal=True)
def _ov_stack(xs, axis=0):
    if isinstance(xs, types.BaseTuple):
        return lambda xs, axis=0: np.stack(xs, axis)
    nd = _list_items(xs, "stack")
    return _list_stack_impl(nd, _axis(axis, nd + 1, "stack"), "xs, axis=0")


@overload(vstack)
def _ov_vstack(xs):
    if isinstance(xs, types.BaseTuple):
        return lambda xs: np.vstack(xs)
    if isinstance(xs, types.List) and isinstance(xs.dtype, (types.Number, types.Boolean)):
        def column(xs):  # np.vstack of numbers (a list of per-step values): a column
            out = np.empty((len(xs), 1))
            for i in range(len(xs)):
                out[i, 0] = xs[i]
            return out
        return column
    nd = _list_items(xs, "vstack")
    return _list_stack_impl(1, 0, "xs") if nd == 1 else _list_concat_impl(nd, 0, "xs")


@overload(hstack)
def _ov_hstack(xs):
    if isinstance(xs, types.BaseTuple):
        return lambda xs: np.hstack(xs)
    nd = _list_items(xs, "hstack")
    return _list_concat_impl(nd, 0 if nd == 1 else 1, "xs")


@overload(column_stack)
def _ov_column_stack(xs):
    if isinstance(xs, types.BaseTuple):
        return lambda xs: np.column_stack(xs)
    nd = _list_items(xs, "column_stack")
    return _list_stack_impl(1, 1, "xs") if nd == 1 else _list_concat_impl(nd, 1, "xs")
