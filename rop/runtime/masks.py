"""Boolean masks of any rank, in both modes: ``dx[x <= 0] = 0`` (the ReLU backward of most
NumPy backprop code) and ``x[mask]``.

Numba indexes with a boolean array of one dimension only; the emitter (backend/emit.py)
writes an index that is an array of rank >= 2 as ``rt.setitem_mask(x, mask, value)`` /
``rt.getitem_mask(x, mask)``, which do what NumPy does: visit the elements in C order and
write (or collect) those where the mask is true.  An integer index array of rank >= 2 is
NumPy's fancy indexing and is passed through unchanged.
"""

import numpy as np


def setitem_mask(x, mask, value):
    """``x[mask] = value``."""
    x[mask] = value


def getitem_mask(x, mask):
    """``x[mask]``."""
    return x[mask]


def squeeze(x):
    """``np.squeeze(x)`` of a number (``cost = np.squeeze(cost)`` after a sum): the number.
    Of an array, the rank of the result depends on its shape, which rop's rank inference does
    not know: ``x.reshape(...)`` says it."""
    return np.squeeze(x) if np.ndim(x) else x


def add_at(a, indices, b):
    """``np.add.at`` as a value: a copy of ``a`` with ``b`` added at ``indices``, repeated
    indices adding up (the generated code writes it back into ``a``)."""
    out = np.array(a, dtype=np.result_type(a, b), copy=True)
    np.add.at(out, indices, b)
    return out


def as_int(x):
    """``np.int64(x)``: of an array (a mask ``A > 0``), the array of integers."""
    return np.asarray(x).astype(np.int64) if np.ndim(x) else np.int64(x)


def _install():
    try:
        from numba import types
        from numba.extending import overload
    except ImportError:  # pragma: no cover - python mode needs no overloads
        return

    def is_mask(m, x):
        return isinstance(m, types.Array) and isinstance(m.dtype, types.Boolean) and \
            isinstance(x, types.Array) and m.ndim == x.ndim and m.ndim >= 2

    @overload(setitem_mask)
    def _set(x, mask, value):
        if is_mask(mask, x):
            if isinstance(value, (types.Number, types.Boolean)):
                def impl(x, mask, value):
                    for idx in np.ndindex(mask.shape):
                        if mask[idx]:
                            x[idx] = value
                return impl
            if isinstance(value, types.Array) and value.ndim == 1:
                def impl(x, mask, value):
                    k = 0
                    n = value.size
                    for idx in np.ndindex(mask.shape):
                        if mask[idx]:
                            x[idx] = value[k if n > 1 else 0]
                            k += 1
                return impl
            return None

        def impl(x, mask, value):
            x[mask] = value
        return impl

    @overload(as_int)
    def _as_int(x):
        if isinstance(x, types.Array):
            return lambda x: x.astype(np.int64)
        return lambda x: np.int64(x)

    @overload(squeeze)
    def _squeeze(x):
        if isinstance(x, (types.Number, types.Boolean)):
            return lambda x: x
        if isinstance(x, types.Array) and x.ndim == 0:
            return lambda x: x[()]
        return None

    @overload(add_at)
    def _add_at(a, indices, b):
        if not isinstance(a, types.Array):
            return None
        scalar_b = isinstance(b, (types.Number, types.Boolean))
        if isinstance(indices, types.Array) and isinstance(indices.dtype, types.Integer):
            # rows of `a` picked by an index array of any shape (a batch of word ids), `b`
            # shaped indices.shape + a.shape[1:] (or a number): visited as flat rows
            def impl(a, indices, b):
                out = a.copy()
                ii = indices.ravel()
                n = ii.shape[0]
                inner = out.size // out.shape[0]
                rows = out.reshape(out.shape[0], inner)
                if scalar_b:
                    for k in range(n):
                        rows[ii[k], :] += b
                else:
                    bb = np.ascontiguousarray(b).reshape(n, inner)
                    for k in range(n):
                        rows[ii[k], :] += bb[k]
                return out
            return impl
        if isinstance(indices, types.BaseTuple) and len(indices) == 2 and a.ndim == 2:
            def impl2(a, indices, b):
                out = a.copy()
                i0, i1 = indices
                for k in range(len(i0)):
                    if scalar_b:
                        out[i0[k], i1[k]] += b
                    else:
                        out[i0[k], i1[k]] += b[k]
                return out
            return impl2
        return None

    @overload(getitem_mask)
    def _get(x, mask):
        if is_mask(mask, x):
            def impl(x, mask):
                n = 0
                for idx in np.ndindex(mask.shape):
                    if mask[idx]:
                        n += 1
                out = np.empty(n, dtype=x.dtype)
                k = 0
                for idx in np.ndindex(mask.shape):
                    if mask[idx]:
                        out[k] = x[idx]
                        k += 1
                return out
            return impl
        return lambda x, mask: x[mask]


_install()
