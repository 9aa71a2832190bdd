"""``x.dtype``, decided at compile time.

Code from courses asks for dtypes in two ways: ``out = out.astype(x.dtype, copy=False)``
(keep the input's precision) and ``assert db.dtype == float``.  rop computes in float64: every
floating-point argument is passed as float64 and nothing it compiles makes float32, so the
dtype of a value that is floating point is float64, a constant of the compilation.  This
module proves which values are floating point and folds ``x.dtype`` of those to
``"float64"``; the comparisons and ``if``/``assert`` built on them then fold as the rank tests
do (ir/fold.py).

A value is floating point when every statement binding it makes one: the ``wrt`` parameters
(rop refuses non-floating ones at the call), floating constants, true division and the
elementwise functions of the table (``unary``: exp, tanh, ...), ``np.zeros``/``np.ones``/
``np.eye``, and any arithmetic, linear, product or custom operation with a floating operand
(NumPy's promotion: an integer array times 0.5 is float64).  Data arguments other than the
``wrt`` parameters are not assumed floating (labels are integers): ``.dtype`` of a value the
analysis cannot prove floating is refused at the user's line, as is an ``astype`` to a dtype
that is not float64 after folding.
"""

from __future__ import annotations

import linecache

from ..errors import RopSyntaxError
from .nodes import Assign, Const, Var, walk

_ALWAYS = {"div", "zeros", "ones", "eye", "mean", "var", "std", "float"}
_KEEP_KIND = {"abs", "square", "reciprocal"}  # elementwise, but an integer stays an integer
_FROM_OPERANDS = {"linear", "additive", "bilinear", "custom"}
_NEVER = {"zero", "runtime"}


def _float_names(fn, wrt, prims) -> set:
    """Names whose every binding is floating point (a greatest fixed point: loop-carried
    names are floating when each of their bindings is, given the others are)."""
    defs: dict = {}
    for st in walk(fn.body):
        if isinstance(st, Assign):
            defs.setdefault(st.target, []).append(st)
    floats = {n for n in defs} | {w for w in wrt if w not in defs}

    def floating(op) -> bool:
        if isinstance(op, Var):
            return op.name in floats
        return isinstance(op, Const) and isinstance(op.value, float)

    def makes_float(st) -> bool:
        if st.prim in _ALWAYS:
            return True
        if st.prim == "copy" or st.prim == "getitem":
            return floating(st.args[0])
        prim = prims.get(st.prim)
        if prim is None or prim.kind in _NEVER:
            return False
        if prim.kind == "unary" and st.prim not in _KEEP_KIND:
            return True
        if prim.kind == "unary":
            return floating(st.args[0])
        return prim.kind in _FROM_OPERANDS and any(floating(a) for a in st.args)

    def none(st) -> bool:  # `dx = None` before the branches that bind it
        return st.prim == "copy" and st.args[0] == Const(None)

    while True:
        keep = {n for n in floats if n not in defs or (
            all(none(d) or makes_float(d) for d in defs[n]) and not all(none(d) for d in defs[n]))}
        keep |= {w for w in wrt}
        if keep == floats:
            return floats
        floats = keep


def _error(st, msg, hint):
    line = linecache.getline(st.loc.filename, st.loc.lineno) or st.loc.text
    return RopSyntaxError(msg, st.loc.filename, st.loc.lineno, st.loc.col, line, hint)


def fold_dtypes(fn, wrt, prims) -> None:
    """Fold ``x.dtype`` of floating values to ``"float64"`` in place; refuse what stays
    unknown, and an ``astype`` whose dtype, once folded, is not float64."""
    sites = [st for st in walk(fn.body) if isinstance(st, Assign) and st.prim == "dtype"]
    typed = [st for st in walk(fn.body) if isinstance(st, Assign) and st.prim in prims
             and "dtype" in prims[st.prim].params]
    no_copy = [st for st in walk(fn.body) if isinstance(st, Assign) and st.prim == "astype"
               and len(st.args) > 2 and st.args[2] != Const(True)]
    if not sites and not no_copy and not typed:
        return
    floats = _float_names(fn, set(wrt), prims)
    known = {}
    for st in sites:
        x = st.args[0]
        if not (isinstance(x, Var) and x.name in floats):
            name = x.name if isinstance(x, Var) else "this value"
            raise _error(st, f"rop cannot tell at compile time that `{name}` is a floating-point "
                             "array, so its `.dtype` is unknown",
                         "write `float` for the dtype: rop computes in float64")
        st.prim, st.args = "copy", (Const("float64"),)
        known[st.target] = Const("float64")

    def sub(op):
        return known.get(op.name, op) if isinstance(op, Var) else op

    for st in walk(fn.body):
        if not isinstance(st, Assign) or not any(isinstance(a, Var) and a.name in known
                                                 for a in st.args):
            continue
        st.args = tuple(sub(a) for a in st.args)
        prim = prims.get(st.prim)
        problem = prim.check(dict(zip(prim.params, st.args))) if prim and prim.check else None
        if problem:
            raise _error(st, *problem)
    for st in typed:
        dt = st.args[prims[st.prim].params.index("dtype")]
        if not isinstance(dt, Const):
            raise _error(st, f"the dtype `{dt.name}` must be known at compile time",
                         "write float (or np.float64): rop computes in float64")
    for st in no_copy:  # x.astype(float64, copy=False) is x itself when x is float64
        if st.args[2] != Const(False):
            raise _error(st, "astype's `copy` must be True or False written in the call",
                         "write copy=False or leave it out")
        x = st.args[0]
        if not (isinstance(x, Var) and x.name in floats):
            name = x.name if isinstance(x, Var) else "this value"
            raise _error(st, f"astype(..., copy=False) returns `{name}` itself when it is already "
                             "float64, and rop cannot tell at compile time whether it is",
                         "leave out copy=False: rop then makes the float64 copy")
        st.prim, st.args = "copy", (x,)
