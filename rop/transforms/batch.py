"""Many directions per call: the tangent part batched over k directions (``jax.vmap`` of the
linearised product, made statement by statement on the IR).

``<name>_tangent`` (transforms/linearize.py) runs the R-statements for one direction.  In a
Lanczos run, a Hutchinson estimate or ``H @ V`` it runs k times, and at the small sizes where
curvature is cheap the k calls cost more than the arithmetic.  ``<name>_tangent_k`` takes the
k directions stacked on a leading axis (``R_W`` of shape (k,) + W.shape) and gives every
R-value that axis; the primal values read from the tape have none.  Then

* elementwise operations broadcast as written, once the batched operand of lower rank is lifted
  after its batch axis (``R_b[:, None]``);
* a matrix product with one batched operand is one BLAS call on a matrix k times wider or
  taller (``W @ R_a`` on (n, k·B)), instead of k calls (``rt.bmm_*``);
* reductions, transposes, indexing and reshapes shift their axes past the batch axis;
* R-containers (lists of R-values, ``rt.zeros_of``) hold batched arrays;
* stackings, cumulative sums, repeats, tiles, pads shift their axes too, and the tangents of
  selections and moments (``rt.max_tangent``, ``rt.clip_tangent``, ``rt.var_tangent``) run
  once per direction slice inside the call (transforms/batch_rules.py).

The rules are by primitive, from the operands' ranks (known at compile time).  A tangent
statement on a primitive without a batching rule (an einsum, a user's helper), or one whose
ranks the types table cannot vouch for (a name bound to values of two ranks, a read through a
boolean mask of rank >= 2), raises :class:`NotBatchable`, and the caller runs the
single-direction tangent per direction instead: correct, only slower.
"""

from __future__ import annotations

import copy
from dataclasses import replace as _with

from ..ir.nodes import (Append, Assign, Break, Const, Continue, Effect, For, Function, If,
                        Return, SetItem, SliceOp, TupleOp, Var, operand_vars, walk)

# R = f(R{x}) elementwise, or a linear combination that broadcasts: the batch axis rides along
_ELEMENTWISE = {"add", "sub", "mul", "div", "neg", "pos", "copy", "array_copy", "where",
                "ifexp"}
_ALLOC = {"zeros_of", "zeros_but", "zeros_like"}
_MATMUL = {"matmul", "dot"}


class NotBatchable(Exception):
    """The tangent part has a statement without a batching rule; the message says which."""


def _bump(t, name):
    """The type of a batched value: every array and number in it one rank higher."""
    if _rank(t) is not None:
        return t + 1
    if isinstance(t, tuple) and t[0] == "list":
        return ("list", _bump(t[1], name))
    if isinstance(t, tuple) and t[0] == "tuple":
        return ("tuple", tuple(_bump(i, name) for i in t[1]))
    raise NotBatchable(f"`{name}` holds {t!r}: only arrays, numbers, and lists and tuples of "
                       "them are batched")


def _rank(t):
    """A value's rank from the types table: an int, or None for lists and the unknown."""
    return t if isinstance(t, int) and not isinstance(t, bool) else None


class _Batch:
    def __init__(self, tan: Function, types: dict, namer, primal: Function = None):
        self.tan, self.types, self.namer = tan, types, namer
        self.k = namer.fresh("K")
        self.batched = set(tan.rparams)
        self.new_types = dict(types)
        self.bools = _bool_names(primal) if primal is not None else set()
        if primal is not None:
            _check_ranks(primal, types, tan)

    # ------------------------------------------------------------------ what carries k
    def classify(self):
        """The names whose values carry the batch axis: the directions, and whatever an
        R-statement computes from them, allocates for them, or stores them into."""
        changed = True
        while changed:
            changed = False
            for s in walk(self.tan.body):
                if isinstance(s, Assign) and s.prim == "len":
                    continue  # the length of an R-list is the list's: no batch axis
                if isinstance(s, Assign) and s.target not in self.batched and (
                        set(s.reads()) & self.batched or (s.is_r and s.prim in _ALLOC)):
                    self.batched.add(s.target)
                    changed = True
                elif isinstance(s, (SetItem, Append)) and s.obj not in self.batched and \
                        set(operand_vars(s.value)) & self.batched:
                    self.batched.add(s.obj)
                    changed = True
        for n in self.batched:
            self.new_types[n] = _bump(self.types.get(n), n)

    def is_b(self, op) -> bool:
        return isinstance(op, Var) and op.name in self.batched

    def rank(self, op):
        """The primal rank of an operand (without the batch axis)."""
        if isinstance(op, Const):
            return 0 if isinstance(op.value, (int, float, bool)) else None
        if isinstance(op, Var):
            return _rank(self.types.get(op.name))
        return None

    def is_list(self, op) -> bool:
        """A list or a tuple (indexing picks an item: no batch axis to skip)."""
        return isinstance(op, Var) and isinstance(self.types.get(op.name), tuple) and \
            self.types[op.name][0] in ("list", "tuple")

    # ------------------------------------------------------------------ rewriting
    def lift(self, op, to, out, loc):
        """``op`` (batched, of primal rank p) lifted to rank ``to`` after its batch axis."""
        p = self.rank(op)
        if p is None:
            raise NotBatchable(f"line {loc.lineno}: the rank of `{op.name}` is not known")
        if p >= to:
            return op
        tmp = self.namer.fresh(op.name + "_up")
        self.new_types[tmp] = to + 1
        out.append(Assign(tmp, "bexpand", (op, Const(to - p)), loc, is_r=True))
        return Var(tmp)

    def index(self, index, loc, read=None):
        """An index into a batched array, the batch axis kept whole in front.  ``read``: the
        statements of a read ``x[index]``, which get a check that no index array of rank >= 2
        is a boolean mask (the rank of its result is inferred for integers, ir/shapes.py)."""
        items = index.items if isinstance(index, TupleOp) else (index,)
        advanced, arrays = [], False
        for pos, it in enumerate(items):
            if isinstance(it, SliceOp) or (isinstance(it, Const) and (
                    it.value is None or it.value is Ellipsis)):
                continue
            if isinstance(it, Const) and isinstance(it.value, int) and \
                    not isinstance(it.value, bool):
                advanced.append(pos)
                continue
            r = self.rank(it) if isinstance(it, Var) else None
            if r is None or it.name in self.batched:
                raise NotBatchable(f"line {loc.lineno}: an index other than numbers, slices, "
                                   "None, ... and index arrays of known rank")
            advanced.append(pos)
            arrays = arrays or r >= 1
            if read is not None and r >= 2:
                if it.name in self.bools:
                    raise NotBatchable(f"line {loc.lineno}: a read through a boolean mask of "
                                       "rank >= 2 (its result's rank is not the one inferred)")
                read.append(Effect("rt.bcheck_index", (it,), loc))
        # NumPy broadcasts index arrays and the numbers beside them together, and puts the
        # result's dimensions first when a slice separates them: only adjacent ones keep
        # their place behind the batch axis
        if arrays and advanced != list(range(advanced[0], advanced[0] + len(advanced))):
            raise NotBatchable(f"line {loc.lineno}: index arrays and numbers separated by a "
                               "slice")
        return TupleOp((SliceOp(None, None, None),) + tuple(items))

    def region_rank(self, obj_rank, index):
        """The primal rank of ``obj[index]`` (the region a SetItem writes), or None when it
        depends on the dtype of an index array of rank >= 2 (a boolean mask or integers)."""
        items = index.items if isinstance(index, TupleOp) else (index,)
        consumed = added = 0
        arrays = []
        for it in items:
            if isinstance(it, SliceOp) or (isinstance(it, Const) and it.value is Ellipsis):
                continue
            if isinstance(it, Const) and it.value is None:
                added += 1
                continue
            consumed += 1
            r = self.rank(it)
            if r:
                arrays.append(r)
        if obj_rank is None or any(r >= 2 for r in arrays):
            return None
        return obj_rank - consumed + added + (1 if arrays else 0)

    def assign(self, s: Assign, out: list):
        a, loc = s.args, s.loc
        if s.target not in self.batched:
            out.append(s)
            return
        r = self.rank(Var(s.target))
        p = s.prim
        if p in ("zeros_of", "zeros_but"):
            x = a[0]
            if p == "zeros_but" or self.is_list(x):
                elem = self.types.get(x.name)[1] if isinstance(x, Var) else None
                if _rank(elem) is None:
                    raise NotBatchable(f"line {loc.lineno}: an R-list of {elem!r}")
                out.append(Assign(s.target, "bzeros_list", (x, Var(self.k)), loc, is_r=True))
            elif self.rank(x) == 0:
                out.append(Assign(s.target, "bzeros_scalar", (Var(self.k),), loc, is_r=True))
            else:
                out.append(Assign(s.target, "bzeros", (x, Var(self.k)), loc, is_r=True))
            return
        if p == "copy" and (isinstance(a[0], TupleOp) or self.is_list(a[0])):
            leaves = _leaves(a[0])
            if not all(self.is_b(x) for x in leaves):
                raise NotBatchable(f"line {loc.lineno}: a tuple of R-values and other values")
            out.append(s)
            return
        if p == "zeros_like":
            out.append(s if self.is_b(a[0]) else
                       Assign(s.target, "bzeros", (a[0], Var(self.k)), loc, is_r=True))
            return
        if p in _ELEMENTWISE and not any(self.is_b(x) for x in a):
            # a batched name bound to a value without the batch axis: an R-accumulator's
            # start (`R_loss = 0.0`), which needs one zero per direction
            if r == 0 and p == "copy" and isinstance(a[0], Const) and a[0].value == 0:
                out.append(Assign(s.target, "bzeros_scalar", (Var(self.k),), loc, is_r=True))
                return
            raise NotBatchable(f"line {loc.lineno}: `{s.target}` is bound to a value that is "
                               "the same for every direction")
        if p in _ELEMENTWISE:
            if r is None:
                raise NotBatchable(f"line {loc.lineno}: `{p}` of unknown rank")
            args = tuple(self.lift(x, r, out, loc) if self.is_b(x) else x for x in a)
            if p == "ifexp" and not (self.is_b(a[1]) and self.is_b(a[2])):
                raise NotBatchable(f"line {loc.lineno}: a conditional with one R-branch")
            out.append(_with(s, args=args))
            return
        if p == "float":
            out.append(_with(s, prim="copy", args=(a[0],)))
            return
        if p in _MATMUL:
            x, y = a[0], a[1]
            if self.is_b(x) and self.is_b(y):
                raise NotBatchable(f"line {loc.lineno}: a product of two R-values")
            px, py = self.rank(x), self.rank(y)
            if self.is_b(x):
                name = {(2, 2): "bmm_l2", (2, 1): "bmm_l1", (1, 2): "bmm_v",
                        (1, 1): "bmm_v"}.get((px, py))
            else:
                name = {(2, 2): "bmm_r2", (2, 1): "bmm_r1", (1, 2): "bmm_rv2",
                        (1, 1): "bmm_rv1"}.get((px, py))
            if name is None:
                raise NotBatchable(f"line {loc.lineno}: a product of ranks {px} and {py}")
            out.append(_with(s, prim=name, args=(x, y), kwargs=()))
            return
        if p in ("sum", "mean"):
            x = a[0]
            axis = a[1] if len(a) > 1 else Const(None)
            keep = a[2] if len(a) > 2 else Const(False)
            if not (isinstance(axis, Const) and isinstance(keep, Const)):
                raise NotBatchable(f"line {loc.lineno}: a {p} over an axis known only at run time")
            if axis.value is None:
                if keep.value:
                    raise NotBatchable(f"line {loc.lineno}: a {p} over all axes with keepdims")
                out.append(_with(s, prim="b" + p + "_all", args=(x,), kwargs=()))
                return
            if not isinstance(axis.value, int):
                raise NotBatchable(f"line {loc.lineno}: a {p} over several axes")
            ax = axis.value + 1 if axis.value >= 0 else axis.value
            out.append(_with(s, args=(x, Const(ax), keep), kwargs=()))
            return
        if p == "transpose":
            x = a[0]
            axes = a[1] if len(a) > 1 else Const(None)
            px = self.rank(x)
            if isinstance(axes, Const) and axes.value is None:
                if px is None:
                    raise NotBatchable(f"line {loc.lineno}: a transpose of unknown rank")
                if px <= 1:
                    out.append(_with(s, prim="copy", args=(x,)))
                    return
                perm = (0,) + tuple(range(px, 0, -1))
            elif isinstance(axes, TupleOp) and all(isinstance(i, Const) and isinstance(i.value, int)
                                                   for i in axes.items):
                perm = (0,) + tuple(i.value % px + 1 for i in axes.items)
            else:
                raise NotBatchable(f"line {loc.lineno}: a transpose with axes known only at run time")
            out.append(_with(s, args=(x, TupleOp(tuple(Const(i) for i in perm))), kwargs=()))
            return
        if p == "getitem":
            x, idx = a[0], a[1]
            if self.is_list(x):
                if not self.is_b(x):
                    raise NotBatchable(f"line {loc.lineno}: `{s.target}` is bound to an item "
                                       f"of `{x.name}`, which holds no direction")
                out.append(s)  # an item of an R-list: batched as the list's items are
                return
            if not self.is_b(x):
                raise NotBatchable(f"line {loc.lineno}: an index that is an R-value")
            out.append(_with(s, args=(x, self.index(idx, loc, out))))
            return
        if p in ("reshape", "ravel"):
            x = a[0]
            shape = TupleOp((Const(-1),)) if p == "ravel" else a[1]
            if (isinstance(shape, Const) and isinstance(shape.value, int)) or \
                    (isinstance(shape, Var) and self.rank(shape) == 0):
                shape = TupleOp((shape,))  # one length (a number, or a product of them)
            out.append(_with(s, prim="breshape", args=(x, Var(self.k), shape), kwargs=()))
            return
        if p == "broadcast_as":
            x, like = a[0], a[1]
            rl = self.rank(like)
            if rl is None:
                raise NotBatchable(f"line {loc.lineno}: a broadcast to a value of unknown rank")
            if rl == 0:
                out.append(_with(s, prim="copy", args=(x,)))
                return
            out.append(_with(s, prim="bbroadcast_as", args=(self.lift(x, rl, out, loc), like)))
            return
        if p == "list":
            if not all(self.is_b(x) for x in a):
                raise NotBatchable(f"line {loc.lineno}: a list of R-values and other values")
            out.append(s)
            return
        if p == "getitem_list" or p == "copy_list":
            out.append(s)
            return
        from .batch_rules import RULES
        if p in RULES:
            RULES[p](self, s, out)
            return
        raise NotBatchable(f"line {loc.lineno}: no batching rule for `{p}`")

    def block(self, stmts) -> list:
        out: list = []
        for s in stmts:
            if isinstance(s, Assign):
                self.assign(s, out)
            elif isinstance(s, SetItem):
                if s.obj in self.batched and not self.is_list(Var(s.obj)):
                    self.setitem(s, out)
                elif s.obj in self.batched:
                    if not self.is_b(s.value):
                        raise NotBatchable(f"line {s.loc.lineno}: a value without the directions "
                                           f"stored into `{s.obj}`")
                    out.append(s)
                elif not (set(operand_vars(s.value)) & self.batched):
                    out.append(s)
                else:
                    raise NotBatchable(f"line {s.loc.lineno}: an R-value stored into `{s.obj}`")
            elif isinstance(s, Append):
                if (s.obj in self.batched) != self.is_b(s.value):
                    raise NotBatchable(f"line {s.loc.lineno}: `{s.obj}` would hold values with "
                                       "and without the directions")
                out.append(s)
            elif isinstance(s, Effect):
                if s.call != "rt.release":
                    raise NotBatchable(f"line {s.loc.lineno}: `{s.call}`")
                out.append(s)
            elif isinstance(s, For):
                out.append(For(s.var, s.start, s.stop, s.step, self.block(s.body), s.loc))
            elif isinstance(s, If):
                out.append(If(s.test, self.block(s.body), self.block(s.orelse), s.loc))
            elif isinstance(s, Return):
                self.check_return(s.value, s.loc)
                out.append(copy.copy(s))
            elif isinstance(s, (Break, Continue)):
                out.append(copy.copy(s))
            else:
                raise NotBatchable(f"line {s.loc.lineno}: a {type(s).__name__}")
        return out

    def setitem(self, s: SetItem, out: list):
        """``R_x[index] = value`` on a batched array: the index behind the batch axis, a
        batched value lifted to the rank of the region it fills (so that its batch axis
        meets the array's)."""
        r = self.rank(Var(s.obj))
        value = s.value
        if isinstance(s.index, Var) and (self.rank(s.index) or 0) >= 2:
            # dx[x <= 0] = 0 with a mask of x's rank: rt.setitem_mask per slice (the helper
            # refuses an index array that is not boolean: the region is then not (n,))
            if self.is_b(s.index) or self.rank(s.index) != r:
                raise NotBatchable(f"line {s.loc.lineno}: a mask of another rank than the "
                                   "array's")
            if self.is_b(value):
                if self.rank(value) not in (0, 1):
                    raise NotBatchable(f"line {s.loc.lineno}: a masked store of rank "
                                       f"{self.rank(value)}")
                value = self.lift(value, 1, out, s.loc)
            out.append(Effect("rt.bsetitem_mask", (Var(s.obj), s.index, value), s.loc))
            return
        idx = self.index(s.index, s.loc)
        if self.is_b(value):
            region = self.region_rank(r, s.index)
            if region is None:
                raise NotBatchable(f"line {s.loc.lineno}: a store through an index array "
                                   "of rank >= 2 or into an array of unknown rank")
            value = self.lift(value, region, out, s.loc)
        out.append(SetItem(s.obj, idx, value, s.loc, s.is_r))

    def check_return(self, value, loc):
        """Every R-output carries the batch axis (the caller slices it per direction)."""
        if isinstance(value, TupleOp):
            for it in value.items:
                self.check_return(it, loc)
        elif not self.is_b(value):
            raise NotBatchable(f"line {loc.lineno}: an R-output that is not an R-value "
                               f"({value})")

    def run(self, name) -> Function:
        self.classify()
        body = self.block(self.tan.body)
        t = self.tan
        fn = Function(name, list(t.params) + [self.k], body, t.loc, t.filename,
                      helpers=t.helpers, user_names=t.user_names, temps=set(t.temps),
                      rparams=list(t.rparams), rnames=dict(t.rnames))
        self.new_types[self.k] = 0
        return fn


def _check_ranks(fn: Function, types: dict, tan: Function):
    """Refuse a tangent part that reads a name ``fn`` binds to values of different ranks
    (``x = x.reshape(-1, 1)`` of a vector): the types table keeps one rank per name
    (ir/shapes.py), and the batching rules lift and pick products by it."""
    from ..ir.shapes import _assign_type
    from ..rules.table import RULES
    prims = {**RULES, **{p.name: p for p, _ in fn.helpers.values()}}
    used = {n for s in walk(tan.body) for n in s.reads()} | \
        {s.target for s in walk(tan.body) if isinstance(s, Assign)}
    for s in walk(fn.body):
        if not isinstance(s, Assign) or s.target not in used:
            continue
        try:
            t = _assign_type(s, types, prims)
        except Exception:  # noqa: BLE001  (a rank rule that cannot tell: no conflict known)
            continue
        have = types.get(s.target)
        if _rank(t) is not None and _rank(have) is not None and t != have:
            raise NotBatchable(f"line {s.loc.lineno}: `{s.target}` is bound to values of "
                               f"ranks {have} and {t}")


_COMPARE = {"lt", "le", "gt", "ge", "eq", "ne", "not"}


def _bool_names(fn: Function) -> set:
    """Names every binding of which in ``fn`` is a comparison (or a copy of such a name):
    boolean masks, as ``hidden > 0`` makes them."""
    defs: dict = {}
    for s in walk(fn.body):
        if isinstance(s, Assign):
            defs.setdefault(s.target, []).append(s)
    out = {n for n, ss in defs.items() if all(d.prim in _COMPARE or d.prim == "copy" for d in ss)}
    changed = True
    while changed:  # a copy is boolean when what it copies is
        changed = False
        for n in list(out):
            if any(d.prim == "copy" and not (isinstance(d.args[0], Var) and d.args[0].name in out)
                   for d in defs[n]):
                out.discard(n)
                changed = True
    return out


def _leaves(op) -> list:
    return [x for it in op.items for x in _leaves(it)] if isinstance(op, TupleOp) else [op]


def batch(tan: Function, types: dict, namer, name: str,
          primal: Function = None) -> tuple[Function, dict]:
    """``(f_tangent_k, types)``: the tangent function ``tan`` batched over k directions (a
    last parameter ``K``), with the types of its names (batched ranks one higher).  Raises
    :class:`NotBatchable`.  ``primal``: the function the tangent part was split from (its
    comparisons tell which names are boolean masks)."""
    b = _Batch(tan, types, namer, primal)
    return b.run(name), b.new_types
