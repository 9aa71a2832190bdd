"""NumPy's own ufunc loop on a Numba array, called from compiled code without ``objmode``.

``rt.tanh(x)`` and its siblings hand arrays of 2048 elements or more to NumPy's vectorised
loop (see ``rop/runtime/__init__.py``).  A ``with numba.objmode(...)`` block did that, but
Numba does not keep an object-mode block in its disk cache: every process compiled it again
on its first call (about 0.1 s, most of what a cached first call of the deep MLP's Hv spent
beyond loading the cache).  The intrinsic :func:`numpy_loop` makes the same call without a
block: with the GIL taken, the input and an output array allocated C-contiguous in compiled
code are boxed as NumPy arrays (Numba's own boxing: the same memory, the same strides) and
the ufunc runs as ``ufunc(x, out)``, so the values are NumPy's, bit for bit, as the block's
``ufunc(x, order="C")`` gave.  An exception raised by the call (a warning the caller turned
into an error, a floating-point error under ``np.errstate``) propagates from the compiled
code as it did from the block.  The ufunc is referred to by its import path (pickled into the
code and unpickled once per process), so the code stays cacheable.
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import intrinsic


def numpy_loop(uf):
    """An intrinsic ``loop(x, out)``: ``uf(x, out)`` by NumPy, from compiled code; ``x`` a
    floating-point array, ``out`` a C-contiguous array of its shape and dtype."""

    @intrinsic
    def loop(typingctx, x, out):
        if not (isinstance(x, types.Array) and isinstance(out, types.Array)
                and isinstance(x.dtype, types.Float) and out.layout == "C"
                and out.ndim == x.ndim and x.dtype == out.dtype):
            return None
        sig = types.void(x, out)

        def codegen(context, builder, signature, args):
            from numba.core import cgutils
            xv, ov = args
            pyapi = context.get_python_api(builder)
            gil = pyapi.gil_ensure()
            fn = _constant(pyapi, builder, uf, "rop_numpy_ufunc")
            dtype = _constant(pyapi, builder, np.dtype(str(x.dtype)), "rop_numpy_dtype")
            ndarray = _constant(pyapi, builder, np.ndarray, "rop_numpy_ndarray")
            for obj in (fn, dtype, ndarray):
                with builder.if_then(cgutils.is_null(builder, obj), likely=False):
                    pyapi.gil_release(gil)  # unpickling failed: its exception is set
                    context.call_conv.return_exc(builder)
            xobj = _box(pyapi, builder, x, xv, ndarray, dtype)
            oobj = _box(pyapi, builder, out, ov, ndarray, dtype)
            res = pyapi.call_function_objargs(fn, [xobj, oobj])
            pyapi.decref(xobj)
            pyapi.decref(oobj)
            with builder.if_else(cgutils.is_null(builder, res), likely=False) as (failed, ok):
                with failed:  # the exception stays set: the compiled caller propagates it
                    pyapi.gil_release(gil)
                    context.call_conv.return_exc(builder)
                with ok:
                    pyapi.decref(res)
                    pyapi.gil_release(gil)
            return context.get_dummy_value()
        return sig, codegen
    return loop


def _constant(pyapi, builder, obj, name):
    """``obj`` as a Python object in compiled code: unpickled on first use in a process and
    kept in a module-level slot (NULL, with the exception set, if unpickling failed)."""
    from llvmlite import ir
    from numba.core import cgutils
    m = builder.module
    slot = ir.GlobalVariable(m, pyapi.pyobj, name=m.get_unique_name(name))
    slot.initializer = slot.type.pointee(None)
    slot.linkage = "internal"
    with builder.if_then(cgutils.is_null(builder, builder.load(slot)), likely=False):
        builder.store(pyapi.unserialize(pyapi.serialize_object(obj)), slot)
    return builder.load(slot)


def _box(pyapi, builder, aryty, ary, ndarray, dtype):
    """The array as a NumPy array (a new reference) holding its own reference to the memory:
    Numba's boxing (``nrt_adapt_ndarray_to_python``) with the array type and dtype objects
    from slots, where Numba's unpickles the type anew at every call."""
    from llvmlite import ir
    from numba.core import cgutils
    i32 = ir.IntType(32)
    fnty = ir.FunctionType(pyapi.pyobj, [pyapi.voidptr, pyapi.pyobj, i32, i32, pyapi.pyobj])
    fn = cgutils.get_or_insert_function(builder.module, fnty,
                                        "NRT_adapt_ndarray_to_python_acqref")
    ptr = cgutils.alloca_once_value(builder, ary)
    return builder.call(fn, [builder.bitcast(ptr, pyapi.voidptr), ndarray,
                             i32(aryty.ndim), i32(int(aryty.mutable)), dtype])
