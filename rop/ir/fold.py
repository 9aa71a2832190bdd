"""Tests decided by ranks, folded for each specialisation.

rop compiles a function for the ranks of its arguments, so ``x.ndim``, ``len(x.shape)`` and
what is computed from them by comparisons and integer arithmetic are constants of the
specialisation.  Code written for several ranks (``if len(x.shape) > 1: ... else: ...`` in a
softmax that takes vectors and matrices) then keeps only the branch taken.  Besides making the
code shorter, this is what lets Numba compile it: Numba types both branches of an ``if``, and
the branch for the other rank may not type (``np.max(x, axis=1, keepdims=True)`` of a vector).
"""

from __future__ import annotations

from collections import Counter

from .nodes import (Append, Assign, Const, For, If, TupleOp, Var, While, blocks_of, defined_names,
                    walk)

_CMP = {"lt": lambda a, b: a < b, "le": lambda a, b: a <= b, "gt": lambda a, b: a > b,
        "ge": lambda a, b: a >= b, "eq": lambda a, b: a == b, "ne": lambda a, b: a != b,
        "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b}


def fold_ranks(fn, types: dict) -> bool:
    """Fold rank-decided values and prune the ``if`` branches they decide, in place.  Returns
    True if a branch was pruned (the ranks must then be inferred again)."""
    defs = Counter(n for st in walk(fn.body) for n in defined_names(st))
    known: dict = {}      # name -> Const
    shape_rank: dict = {}  # name of an `x.shape` value -> len of it
    changed = [False]

    def val(op):
        if isinstance(op, Var) and op.name in known:
            return known[op.name]
        return op

    def fold(st):
        a = [val(x) for x in st.args]
        if st.prim == "ndim" and isinstance(a[0], Var) and _rank(types.get(a[0].name)) is not None:
            return Const(_rank(types[a[0].name]))
        if st.prim == "shape" and isinstance(a[0], Var) and _rank(types.get(a[0].name)) is not None:
            shape_rank[st.target] = _rank(types[a[0].name])
            return None
        if st.prim == "len" and isinstance(a[0], Var) and a[0].name in shape_rank:
            return Const(shape_rank[a[0].name])
        if st.prim in _CMP and len(a) == 2 and all(isinstance(x, Const) and _int(x.value) for x in a):
            return Const(_CMP[st.prim](a[0].value, a[1].value))
        if st.prim in ("eq", "ne") and all(isinstance(x, Const) and isinstance(x.value, str) for x in a):
            return Const(_CMP[st.prim](a[0].value, a[1].value))  # dtypes (ir/dtypes.py)
        if st.prim == "not" and isinstance(a[0], Const):
            return Const(not a[0].value)
        if st.prim in ("and", "or") and all(isinstance(x, Const) for x in a):
            return Const((a[0].value and a[1].value) if st.prim == "and" else (a[0].value or a[1].value))
        if st.prim == "copy" and isinstance(a[0], Const) and _int(a[0].value):
            return a[0]
        if st.prim == "float" and isinstance(a[0], Const) and _int(a[0].value):
            return Const(float(a[0].value))  # float(x.dtype == float): Numba has no float(bool)
        return None

    def block(stmts):
        out = []
        for st in stmts:
            if isinstance(st, Assign) and defs[st.target] == 1 and not st.inplace:
                c = fold(st)
                if c is not None:
                    known[st.target] = c
                    if st.prim == "float" or st.prim in ("eq", "ne") and isinstance(
                            c.value, bool) and any(isinstance(x, Const) and isinstance(x.value, str)
                                                   for x in st.args):
                        st.prim, st.args = "copy", (c,)  # a dtype test, float() of it: constants
            if isinstance(st, If):
                t = val(st.test)
                if isinstance(t, Const):
                    changed[0] = True
                    out.extend(block(st.body if t.value else st.orelse))
                    continue
                st.body, st.orelse = block(st.body), block(st.orelse)
            elif isinstance(st, For):
                st.body = block(st.body)
            elif isinstance(st, While):
                st.cond, st.body = block(st.cond), block(st.body)
            out.append(st)
        return out

    fn.body = block(fn.body)
    return changed[0]


def _rank(t):
    return t if isinstance(t, int) and not isinstance(t, bool) else None


def _int(v) -> bool:
    return isinstance(v, (int, bool)) and not isinstance(v, TupleOp)


def concat_lists(fn, types: dict) -> bool:
    """``[outsideWordIdx] + negSampleWordIndices``: ``+`` of two lists (a list argument is a
    tuple in the generated code) is concatenation, written as a new list filled by appends, so
    the lists' own machinery (element types, storage, R of the slots) applies, and Numba
    compiles it (it has no ``list + tuple``).  Only where both operands are lists or tuples
    for this specialisation: a list plus an array is NumPy's elementwise sum.  Returns True
    if a statement was rewritten (the ranks must then be inferred again)."""
    namer = fn.namer
    changed = [False]

    def is_seq(op):
        t = types.get(op.name) if isinstance(op, Var) else None
        return isinstance(t, tuple) and t[0] == "list"

    def rewrite(st):
        out = [Assign(st.target, "list", (), st.loc)]
        for seq in st.args:
            n, i, x = namer.temp(), namer.fresh("i"), namer.temp()
            out.append(Assign(n, "len", (seq,), st.loc))
            out.append(For(i, Const(0), Var(n), Const(1),
                           [Assign(x, "getitem", (seq, Var(i)), st.loc), Append(st.target, Var(x), st.loc)],
                           st.loc))
        changed[0] = True
        return out

    def block(stmts):
        out = []
        for st in stmts:
            if isinstance(st, Assign) and st.prim == "add" and len(st.args) == 2 and \
                    all(is_seq(a) for a in st.args) and not st.inplace:
                out.extend(rewrite(st))
                continue
            for b in blocks_of(st):  # the nested statement lists, rewritten in place
                b[:] = block(b)
            out.append(st)
        return out

    fn.body = block(fn.body)
    return changed[0]
