"""Rank inference: how many dimensions each value has, for one call signature.

The R-transform is independent of shapes except where Python's dynamic typing
meets Numba's static typing: a list made as ``[None] * n`` must be created with
placeholders of its elements' rank, and an R-value that is zero on one path must
be materialised as ``0.0``, an array, or a list.  Types are: an int (the rank; 0
for a scalar), ``("list", T)`` for lists and per-layer tuples, ``("tuple", (T,
...))`` for fixed tuples such as shapes, or ``None`` when unknown.
"""

from __future__ import annotations

from ..ir.nodes import (Append, Assign, Const, For, SetItem, SliceOp, TupleOp, Var, walk)


def type_of_value(x):
    """The rank-type of a runtime argument."""
    import numpy as np
    if isinstance(x, (list, tuple)):
        if not x:
            return ("list", None)
        ts = [type_of_value(e) for e in x]
        if isinstance(x, tuple) and all(t == 0 for t in ts):
            return ("tuple", tuple(ts))  # numbers in a tuple: a shape or a multi-index
        if isinstance(x, list) or all(t == ts[0] for t in ts):
            return ("list", ts[0]) if all(t == ts[0] for t in ts) else ("tuple", tuple(ts))
        return ("tuple", tuple(ts))
    if isinstance(x, np.ndarray):
        return x.ndim
    return 0


def _join(a, b):
    if a is None:
        return b
    if b is None or a == b:
        return a
    if isinstance(a, tuple) and isinstance(b, tuple) and a[0] == b[0] == "list":
        return ("list", _join(a[1], b[1]))
    return a  # conflicting ranks: keep the first; Numba will report the clash precisely


def operand_type(op, env):
    if isinstance(op, Var):
        return env.get(op.name)
    if isinstance(op, Const):
        if isinstance(op.value, (int, float, bool)):
            return 0
        return None
    if isinstance(op, TupleOp):
        return ("tuple", tuple(operand_type(i, env) for i in op.items))
    return None


def _getitem_type(xt, index, env):
    if isinstance(xt, tuple):
        if xt[0] == "list":
            return xt if isinstance(index, SliceOp) else xt[1]
        if xt[0] == "tuple":
            if isinstance(index, Const) and isinstance(index.value, int):
                try:
                    return xt[1][index.value]
                except IndexError:
                    return None
            if isinstance(index, SliceOp):
                return xt
            ts = set(xt[1])
            return ts.pop() if len(ts) == 1 else None
        return None
    if xt is None:
        return None
    items = index.items if isinstance(index, TupleOp) else (index,)
    consumed = produced = 0
    advanced = 0  # index arrays broadcast together: one block of their common rank
    ellipsis = False
    for it in items:
        if isinstance(it, SliceOp):
            consumed += 1
            produced += 1
        elif isinstance(it, Const) and it.value is None:
            produced += 1
        elif isinstance(it, Const) and it.value is Ellipsis:
            ellipsis = True
        else:
            t = operand_type(it, env)
            if t is None:
                return None
            if isinstance(t, tuple) and t[0] == "tuple" and all(e == 0 for e in t[1]):
                consumed += len(t[1])  # x[idx] with idx = (i, j): one integer per axis
                continue
            consumed += 1
            if isinstance(t, tuple) and t[0] == "list":
                t = 1  # a list of integers: an index array (NumPy's fancy index)
            advanced = max(advanced, t if isinstance(t, int) else 0)
    produced += advanced
    if ellipsis:
        produced += xt - consumed
        consumed = xt
    return xt - consumed + produced


def infer(fn, param_types: dict, prims) -> dict:
    """Rank-type of every variable of ``fn`` (flow-insensitive, to a fixed point)."""
    env = dict(param_types)
    for _ in range(20):
        before = dict(env)
        for st in walk(fn.body):
            if isinstance(st, Assign):
                env[st.target] = _join(env.get(st.target), _assign_type(st, env, prims))
            elif isinstance(st, SetItem):
                t = env.get(st.obj)
                if isinstance(t, tuple) and t[0] == "list":
                    env[st.obj] = ("list", _join(t[1], operand_type(st.value, env)))
            elif isinstance(st, Append):
                t = env.get(st.obj)
                if isinstance(t, tuple) and t[0] == "list":
                    env[st.obj] = ("list", _join(t[1], operand_type(st.value, env)))
            elif isinstance(st, For):
                env[st.var] = 0
        if env == before:
            break
    return env


def _assign_type(st, env, prims):
    p = st.prim
    args = st.args
    if p == "copy":
        return operand_type(args[0], env)
    if p == "list":
        return ("list", operand_type(args[0], env) if args else None)
    if p == "list_repeat":
        return ("list", None)
    if p == "getitem":
        return _getitem_type(operand_type(args[0], env), args[1], env)
    if p == "shape":
        xt = operand_type(args[0], env)
        return ("tuple", (0,) * xt) if isinstance(xt, int) else None
    prim = prims.get(p)
    if prim is None or prim.ndim is None:
        return None
    if p == "call":  # f(args..., k=v...): the rank rule of the entry that names f
        ops = {"f": args[0], "args": args[1:], "kwargs": st.kwargs}
        nd = {i: operand_type(a, env) for i, a in enumerate(args[1:])}
        nd.update({k: operand_type(a, env) for k, a in st.kwargs})
        return prim.ndim({k: v if isinstance(v, int) else None for k, v in nd.items()}, ops)
    nd, ops = {}, {}
    for name, a in zip(prim.params, args):
        t = operand_type(a, env)
        ops[name] = a
        if isinstance(t, tuple) and t[0] == "tuple":
            nd[name + "#len"] = len(t[1])
            nd[name + "#items"] = t[1]  # the items' types: stacking takes its rank from them
            continue
        if isinstance(t, tuple) and t[0] == "list":
            nd[name + "#item"] = t[1]   # a list's elements' type (np.stack of a list)
        nd[name] = t if isinstance(t, int) else None
    if prim.ndim is nd_broadcast_ref():
        nd = {k: v for k, v in nd.items() if k in prim.params}
    try:
        return prim.ndim(nd, ops)
    except TypeError:
        return prim.ndim(nd)


def nd_broadcast_ref():
    from ..rules.table import nd_broadcast
    return nd_broadcast
