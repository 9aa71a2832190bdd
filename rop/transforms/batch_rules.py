"""Batching rules of transforms/batch.py beyond elementwise operations, products, reductions
and indexing: each takes one tangent statement ``s`` whose target carries the batch axis and
appends its batched form to ``out``, or raises :class:`NotBatchable` (one tangent call per
direction instead).  Ranks are the primal ranks (``b.rank``), the batch axis not counted.

Two kinds:

* **Axis shifts.** A stacking, a cumulative sum, a repeat, a tile, a pad is the same NumPy
  call on the batched operands with the axes it names moved one place right, past the batch
  axis (a negative axis counts from the end and stays as it is); where the primal call
  flattens (``axis=None``) each direction is flattened first (``breshape`` to (k, -1)).
  The shifted call needs every operand batched and their ranks known; otherwise refused.
* **Per direction.** The tangents of selections and moments (``rt.max_tangent``,
  ``rt.clip_tangent``, ``rt.var_tangent``, ...) read the primal at the selected positions:
  their batched helpers (runtime/batched.py) run the single-direction helper on each slice
  ``rx[j]``, so only the direction may be batched, every other operand must be a primal.
"""

from __future__ import annotations

from dataclasses import replace as _with

from ..ir.nodes import Assign, Const, SliceOp, TupleOp, Var
from .batch import NotBatchable


_ALL = SliceOp(None, None, None)  # `:`


def _no(s, msg):
    raise NotBatchable(f"line {s.loc.lineno}: {msg}")


def _int(op) -> bool:
    return isinstance(op, Const) and isinstance(op.value, int) and not isinstance(op.value, bool)


def _fresh(b, base: str, rank: int) -> str:
    """A new batched temporary of primal rank ``rank``."""
    name = b.namer.fresh(base)
    b.new_types[name] = rank + 1
    return name


def _flat(b, x, s, out) -> Var:
    """Each direction of ``x`` flattened: (k, -1)."""
    t = _fresh(b, x.name + "_flat", 1)
    out.append(Assign(t, "breshape", (x, Var(b.k), TupleOp((Const(-1),))), s.loc, is_r=True))
    return Var(t)


def _shift(axis: Const) -> Const:
    """An axis of the primal as an axis of the batched value."""
    return Const(axis.value + 1 if axis.value >= 0 else axis.value)


def _only_rx_batched(b, s, ops, rx):
    """A per-direction rule: the direction ``rx`` batched, the other operands primal."""
    if not b.is_b(rx):
        _no(s, f"`{s.prim}` of a direction-free operand bound to a batched name")
    for op in ops:
        if b.is_b(op):
            _no(s, f"`{s.prim}` of a value that depends on the direction (its R-operand "
                   "aside): no per-direction rule")


# ------------------------------------------------------------------ per direction
def per_direction(b, s, out):
    """``rt.max_tangent(x, rx, axis, keepdims)``, ``rt.min_tangent``, ``rt.clip_tangent(x,
    rx, lo, hi)``: the helper once per direction slice."""
    if s.kwargs or len(s.args) != 4:
        _no(s, f"`{s.prim}` with other arguments than the rule's four")
    x, rx, *rest = s.args
    _only_rx_batched(b, s, (x, *rest), rx)
    out.append(_with(s, prim="b" + s.prim))


_CALLS = {"rt.var_tangent": ("bvar_tangent", 5), "rt.prod_tangent": ("bprod_tangent", 4)}


def call(b, s, out):
    """A call of a rule's runtime helper by name: ``rt.var_tangent(x, rx, axis, ddof,
    keepdims)`` and ``rt.prod_tangent(x, rx, axis, keepdims)`` per direction; any other
    function is refused (a user's helper is not known to be linear in its arguments)."""
    f = s.args[0].value if isinstance(s.args[0], Const) else None
    if f not in _CALLS:
        _no(s, f"no batching rule for a call of `{f}`")
    name, n = _CALLS[f]
    if s.kwargs or len(s.args) != n + 1:
        _no(s, f"`{f}` with other arguments than the rule's {n}")
    x, rx, *rest = s.args[1:]
    _only_rx_batched(b, s, (x, *rest), rx)
    out.append(_with(s, prim=name, args=s.args[1:]))


def outer(b, s, out):
    """``np.outer(a, b)`` with one batched operand: each direction flattened, (k, m, n)."""
    x, y = s.args
    if b.is_b(x) == b.is_b(y):
        _no(s, "an outer product of two R-values" if b.is_b(x) else "`outer` of primals "
               "bound to a batched name")
    out.append(_with(s, prim="bouter_l" if b.is_b(x) else "bouter_r"))


def diagflat(b, s, out):
    """``np.diagflat(x)`` (and ``np.diag`` of a vector): one diagonal matrix per direction.
    ``np.diag`` of a matrix is a view of its diagonal: refused."""
    x = s.args[0]
    if s.kwargs or len(s.args) != 1 or not b.is_b(x):
        _no(s, f"`{s.prim}` of other than one batched operand")
    if s.prim == "diag" and b.rank(x) != 1:
        _no(s, "`diag` of other than a vector")
    out.append(_with(s, prim="bdiagflat", args=(x,)))


def squeeze(b, s, out):
    """``rt.squeeze`` of a number (rop's rank inference takes squeeze only there): a copy.
    Of an array the result's rank depends on its shape, and a batch of one direction would
    lose its batch axis: refused."""
    x = s.args[0]
    if b.rank(x) != 0 or not b.is_b(x):
        _no(s, "`squeeze` of an array (its rank depends on the shape)")
    out.append(_with(s, prim="array_copy", args=(x,)))


# ------------------------------------------------------------------ axis shifts
def _batched_items(b, s, xs):
    """The items of a stacking's tuple display, each batched, with their primal ranks."""
    items = xs.items
    if not items or not all(b.is_b(x) for x in items):
        _no(s, f"`{s.prim}` of R-values and values without the directions")
    ranks = [b.rank(x) for x in items]
    if any(r is None for r in ranks):
        _no(s, f"`{s.prim}` of an operand of unknown rank")
    return list(items), ranks


def _list_rank(b, s, xs):
    """The items' primal rank of a batched R-list (``rt.concatenate(R_hs, ...)``)."""
    t = b.types.get(xs.name)
    if not b.is_b(xs) or not (isinstance(t, tuple) and t[0] == "list") or \
            not (isinstance(t[1], int) and not isinstance(t[1], bool)):
        _no(s, f"`{s.prim}` of a list that is not a batched list of arrays")
    return t[1]


def stacking(b, s, out):
    """``np.concatenate``, ``np.stack``, ``np.vstack``, ``np.hstack``, ``np.column_stack``:
    the same stacking of the batched items along the shifted axis; the vstack and hstack of
    low-rank items lift them first (``atleast_2d`` and ``atleast_1d`` add leading axes, as
    ``b.lift`` does after the batch axis)."""
    p, xs = s.prim, s.args[0]
    if s.kwargs:
        _no(s, f"`{p}` with keyword arguments")
    axis = s.args[1] if len(s.args) > 1 else None
    if p in ("concatenate", "stack") and not _int(axis):  # (rop takes no other axis)
        _no(s, f"`{p}` along an axis known only at run time")
    if isinstance(xs, Var):  # an R-list built by appends
        r = _list_rank(b, s, xs)
        if p == "concatenate" and r >= 1:
            out.append(_with(s, args=(xs, _shift(axis))))
        elif p == "stack":
            out.append(_with(s, args=(xs, _shift(axis))))
        elif p == "vstack" and r >= 1:
            out.append(_with(s, prim="concatenate" if r >= 2 else "stack", args=(xs, Const(1))))
        elif p == "hstack" and r >= 1:
            out.append(_with(s, prim="concatenate", args=(xs, Const(1 if r == 1 else 2))))
        elif p in ("vstack", "hstack") and r == 0:  # numbers: a vector, or a column of them
            t = _fresh(b, xs.name + "_stacked", 1) if p == "vstack" else s.target
            out.append(Assign(t, "stack", (xs, Const(1)), s.loc, is_r=True))
            if p == "vstack":
                out.append(Assign(s.target, "getitem", (Var(t), TupleOp((_ALL, _ALL, Const(None)))),
                                  s.loc, is_r=True))
        else:
            _no(s, f"`{p}` of a list of rank-{r} items")
        return
    if not isinstance(xs, TupleOp) or any(isinstance(x, TupleOp) for x in xs.items):
        _no(s, f"`{p}` of a nested or unknown sequence")
    items, ranks = _batched_items(b, s, xs)
    if p == "concatenate":
        if len(set(ranks)) != 1 or ranks[0] < 1 or not -ranks[0] <= axis.value < ranks[0]:
            _no(s, f"`concatenate` of items of ranks {ranks} along axis {axis.value}")
        out.append(_with(s, args=(TupleOp(tuple(items)), _shift(axis))))
        return
    if p == "stack":
        if len(set(ranks)) != 1 or not -ranks[0] - 1 <= axis.value <= ranks[0]:
            _no(s, f"`stack` of items of ranks {ranks} along axis {axis.value}")
        out.append(_with(s, args=(TupleOp(tuple(items)), _shift(axis))))
        return
    if p == "vstack":
        items = [b.lift(x, 2, out, s.loc) for x in items]
        ax = 1
    elif p == "hstack":
        items = [b.lift(x, 1, out, s.loc) for x in items]
        ax = 1 if max(ranks[0], 1) == 1 else 2
    else:  # column_stack: a vector is a column (n, 1), a matrix stays
        if any(r not in (1, 2) for r in ranks):
            _no(s, f"`column_stack` of items of ranks {ranks}")
        cols = []
        for x, r in zip(items, ranks):
            if r == 1:
                t = _fresh(b, x.name + "_col", 2)
                out.append(Assign(t, "getitem", (x, TupleOp((_ALL, _ALL, Const(None)))), s.loc,
                                  is_r=True))
                x = Var(t)
            cols.append(x)
        items, ax = cols, 2
    out.append(Assign(s.target, "concatenate", (TupleOp(tuple(items)), Const(ax)), s.loc,
                      is_r=True))


def array(b, s, out):
    """``np.array((R_a, R_b, ...))`` of a flat tuple of batched items of one rank: the items
    stacked after the batch axis, (k, n, ...)."""
    xs = s.args[0]
    dtype = s.args[1] if len(s.args) > 1 else Const(None)
    if s.kwargs or not isinstance(xs, TupleOp) or any(isinstance(x, TupleOp) for x in xs.items):
        _no(s, "`array` of a nested or unknown sequence")
    if not (isinstance(dtype, Const) and dtype.value is None):
        _no(s, "`array` with a dtype")
    items, ranks = _batched_items(b, s, xs)
    if len(set(ranks)) != 1:
        _no(s, f"`array` of items of ranks {ranks}")
    out.append(Assign(s.target, "stack", (TupleOp(tuple(items)), Const(1)), s.loc, is_r=True))


def along_axis(b, s, out):
    """``rt.cumsum(x, axis)`` and ``rt.repeat(x, repeats, axis)``: the shifted axis; with no
    axis (over the flattened array) each direction flattened first."""
    if len(s.args) != {"cumsum": 2, "repeat": 3}[s.prim]:
        _no(s, f"`{s.prim}` with other arguments than x, (repeats,) axis")
    x = s.args[0]
    axis = s.args[-1]
    if s.kwargs or not b.is_b(x) or any(b.is_b(a) for a in s.args[1:]):
        _no(s, f"`{s.prim}` of other than one batched array")
    if isinstance(axis, Const) and axis.value is None:
        out.append(_with(s, args=(_flat(b, x, s, out),) + s.args[1:-1] + (Const(1),)))
    elif _int(axis):
        out.append(_with(s, args=s.args[:-1] + (_shift(axis),)))
    else:
        _no(s, f"`{s.prim}` along an axis known only at run time")


def tile(b, s, out):
    """``rt.tile(x, reps)``: NumPy pads ``reps`` and x's shape with leading ones to one
    rank; batched, x is first lifted to the rank of ``reps`` and ``reps`` padded with ones
    to x's batched rank (the batch axis repeated once)."""
    x, reps = s.args
    if s.kwargs or not b.is_b(x) or b.is_b(reps):
        _no(s, "`tile` of other than one batched array")
    px = b.rank(x)
    if isinstance(reps, TupleOp) and not any(isinstance(r, TupleOp) for r in reps.items):
        rs = list(reps.items)
    elif _int(reps) or (isinstance(reps, Var) and b.rank(reps) == 0):
        rs = [reps]
    else:
        _no(s, "`tile` with repetitions not written as a number or a tuple")
    if px is None:
        _no(s, "`tile` of an operand of unknown rank")
    x = b.lift(x, len(rs), out, s.loc)
    n = max(px, len(rs))
    out.append(_with(s, args=(x, TupleOp((Const(1),) * (n + 1 - len(rs)) + tuple(rs)))))


def _pair(s, p):
    """(before, after) of one axis: a number, or a 1- or 2-tuple of numbers."""
    items = p.items if isinstance(p, TupleOp) else (p,)
    if not 1 <= len(items) <= 2 or any(isinstance(i, TupleOp) for i in items):
        _no(s, "`pad` with a pad width other than numbers and pairs")
    return TupleOp((items[0], items[-1]))


def pad(b, s, out):
    """``rt.pad_constant(x, pad_width, 0)``: a (0, 0) pair for the batch axis before x's
    pairs, written out per axis (NumPy's broadcasting of ``pad_width`` made explicit)."""
    x, width, mode, fill = s.args
    r = b.rank(x)
    if s.kwargs or not b.is_b(x) or any(b.is_b(a) for a in (width, mode, fill)) or r is None:
        _no(s, "`pad` of other than one batched array of known rank")
    if not (isinstance(mode, Const) and mode.value == "constant"):
        _no(s, "`pad` in a mode other than 'constant'")
    if isinstance(width, TupleOp) and all(isinstance(p, TupleOp) for p in width.items) and \
            len(width.items) in (1, r):
        pairs = [_pair(s, p) for p in width.items] * (r if len(width.items) == 1 else 1)
    elif isinstance(width, TupleOp) and not any(isinstance(p, TupleOp) for p in width.items):
        pairs = [_pair(s, width)] * r
    elif _int(width) or (isinstance(width, Var) and b.rank(width) == 0):
        pairs = [_pair(s, width)] * r
    else:
        _no(s, "`pad` with a pad width not written out in the call")
    zero = TupleOp((Const(0), Const(0)))
    out.append(_with(s, args=(x, TupleOp((zero,) + tuple(pairs)), mode, fill)))


RULES = {
    "max_tangent": per_direction, "min_tangent": per_direction, "clip_tangent": per_direction,
    "call": call, "outer": outer, "squeeze": squeeze, "diagflat": diagflat, "diag": diagflat,
    "concatenate": stacking, "stack": stacking, "vstack": stacking, "hstack": stacking,
    "column_stack": stacking, "array": array, "cumsum": along_axis, "repeat": along_axis,
    "tile": tile, "pad": pad,
}
