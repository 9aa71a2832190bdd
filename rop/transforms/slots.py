"""Slot-level activity of lists: which slots of R{lst} are structurally zero.

Per-layer code keeps the input in a list beside the activations (``acts[0] = X``,
``acts[i + 1] = tanh(...)``).  Activity by whole variables says ``acts`` is active,
so the R-pass multiplies by R{acts[0]} = R{X} = 0 in the first layer: ``W @ R{a_0}``
forward and ``d @ R{a_0}^T`` backward, 15% of an MLP's GEMM work spent on zeros.
Pearlmutter's R{backprop} (and every hand-written one) drops those products.

This module keeps, per list the function builds itself, the slots whose R may be
non-zero, as entries ``"lst#k"`` of the R-transform's active set (so joins and loop
fixed points take their union, as for any other activity), for the slots ``k`` the
program can name: 0 and the constant indices it writes.  A read ``lst[i]`` that can
hit a zero slot ``k`` gives a value whose R is zero *when* ``i == k``; a product that
consumes it is versioned, ``if i == k: <rule without that term> else: <full rule>``,
exactly the ``if i == 0`` of a hand-written R{backprop}.  To prove that a write
``acts[i + 1]`` never lands on slot 0 it uses lower bounds of integers: loop counters
of ``range`` loops, temporaries ``i + c``, and branch conditions ``i > c``.

Everything here is conservative: a list that is passed anywhere but ``len``, a
subscript, ``append`` or ``return`` (so could be changed through another name), is
not tracked, and any index not provably different from ``k`` may hit it.
"""

from __future__ import annotations

from ..ir.nodes import (Append, Assign, Const, Return, SetItem, SliceOp, TupleOp, Var,
                        defined_names, operand_vars, walk)

_MAX_SLOT = 16  # constant slots followed per list
_LIST_MAKERS = {"list", "list_repeat"}


def token(lst: str, k: int) -> str:
    return f"{lst}#{k}"


def is_token(name: str) -> bool:
    return "#" in name


def tracked_lists(fn, storage=None) -> dict:
    """{list name: the constant slots to follow} for lists built in ``fn`` that never escape
    and whose elements nothing writes in place (``h = hs[0]; h[1] = ...`` changes a slot's
    value without a store into the list)."""
    made, other_defs, escaped, slots = set(), set(), set(), {}
    for st in walk(fn.body):
        if isinstance(st, Assign):
            (made if st.prim in _LIST_MAKERS else other_defs).add(st.target)
            args = st.args if st.prim not in ("getitem", "len") else st.args[1:]
            for a in args:
                escaped.update(operand_vars(a))
            for _k, a in st.kwargs:
                escaped.update(operand_vars(a))
        elif isinstance(st, SetItem):
            escaped.update(operand_vars(st.value))
            escaped.update(operand_vars(st.index))
            if isinstance(st.index, Const) and type(st.index.value) is int \
                    and 0 <= st.index.value < _MAX_SLOT:
                slots.setdefault(st.obj, set()).add(st.index.value)
        elif isinstance(st, Append):
            escaped.update(operand_vars(st.value))
        elif not isinstance(st, Return):
            escaped.update(st.reads() if hasattr(st, "reads") else ())
    ok = made - other_defs - escaped - set(fn.params)
    if storage is not None:
        ok -= storage.written_names()
    return {lst: frozenset({0} | slots.get(lst, set())) for lst in ok}


def initial_lengths(fn, universe) -> dict:
    """{tracked list: its length when made}, for lists every definition of which is a literal
    (``ys = [X]``: 1).  A tracked list only grows, by ``append`` (anything else that could
    shrink it, ``pop`` or a slice assignment, passes it on and untracks it), so an append
    never lands on a slot below that length."""
    out: dict = {}
    for st in walk(fn.body):
        if isinstance(st, Assign) and st.target in universe:
            n = len(st.args) if st.prim == "list" else 0
            out[st.target] = min(out.get(st.target, n), n)
    return out


def _never_negative(fn) -> set:
    """Names every assignment of which is a ``len(...)`` or a non-negative integer constant
    (``L = len(Ws)``): never negative wherever they are read."""
    ok, bad = set(), set(fn.params)
    for st in walk(fn.body):
        for n in defined_names(st):
            if isinstance(st, Assign) and st.target == n and (
                    st.prim == "len" or st.prim == "copy" and isinstance(st.args[0], Const)
                    and type(st.args[0].value) is int and st.args[0].value >= 0):
                ok.add(n)
            else:
                bad.add(n)
    return ok - bad


class SlotFacts:
    """The facts the R-transform consults; owned by one :class:`RTransform`."""

    def __init__(self, fn, storage=None):
        self.universe = tracked_lists(fn, storage)
        self.min_len = initial_lengths(fn, self.universe)
        self.nonneg = _never_negative(fn)
        self.temps = set(fn.temps)
        self.lb: dict[str, int] = {}       # integer lower bounds
        self.defs: dict[str, Assign] = {}  # temporaries' definitions, for branch tests
        self.czero: dict[str, tuple] = {}  # temp -> (index name, k): R{temp} = 0 when index == k
        self.counters: set[str] = set()    # counters of the enclosing loops not assigned in them
        self.taint: dict[str, tuple] = {}  # temp -> ((index name, k), list, slot): read from a zero slot
        self.raw: set[tuple] = set()       # (list, k): R{list[k]} may be read where it is zero

    # ------------------------------------------------------------------ integers
    def lower_bound(self, op):
        if isinstance(op, Const) and type(op.value) is int:
            return op.value
        if isinstance(op, Var):
            lb = self.lb.get(op.name)
            return 0 if lb is None and op.name in self.nonneg else lb
        return None

    def may_equal(self, idx, k: int) -> bool:
        if isinstance(idx, Const):
            v = idx.value
            return not (type(v) is int and v >= 0 and v != k)
        lo = self.lower_bound(idx)
        return lo is None or lo <= k

    def loop_bound(self, st):
        """Lower bound of a ``range`` loop's counter, or None."""
        step = st.step.value if isinstance(st.step, Const) else None
        if type(step) is not int:
            return None
        if step > 0:
            return self.lower_bound(st.start)  # i >= start
        stop = self.lower_bound(st.stop)       # i > stop >= its lower bound
        return None if stop is None else stop + 1

    def branch_bounds(self, test):
        """(bounds in the body, bounds in the else branch) implied by an ``if`` test."""
        if not isinstance(test, Var) or test.name not in self.defs:
            return {}, {}
        d = self.defs[test.name]
        if d.prim not in ("gt", "ge", "lt", "le") or len(d.args) != 2:
            return {}, {}
        a, b = d.args
        prim = d.prim
        if isinstance(a, Const) and isinstance(b, Var):  # c < x  is  x > c
            a, b, prim = b, a, {"gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}[prim]
        if not (isinstance(a, Var) and isinstance(b, Const) and type(b.value) is int):
            return {}, {}
        c = b.value
        then = {"gt": c + 1, "ge": c}.get(prim)    # x > c, x >= c
        other = {"lt": c, "le": c + 1}.get(prim)   # not x < c, not x <= c
        return ({a.name: then} if then is not None else {},
                {a.name: other} if other is not None else {})

    # ------------------------------------------------------------------ bookkeeping
    def assigned(self, name: str):
        """``name`` gets a new value: forget what was known of its old one."""
        self.lb.pop(name, None)
        self.defs.pop(name, None)
        self.czero.pop(name, None)
        for t, (idx, _k) in list(self.czero.items()):
            if idx == name:
                del self.czero[t]

    def note_def(self, st: Assign):
        if st.target not in self.temps:
            return
        self.defs[st.target] = st
        if st.prim in ("add", "sub") and len(st.args) == 2:
            a, b = (self.lower_bound(x) for x in st.args)
            if isinstance(st.args[1], Const) and a is not None and b is not None:
                self.lb[st.target] = a + b if st.prim == "add" else a - b
            elif st.prim == "add" and isinstance(st.args[0], Const) and a is not None \
                    and b is not None:
                self.lb[st.target] = a + b
        elif st.prim == "copy" and isinstance(st.args[0], Const) and type(st.args[0].value) is int:
            self.lb[st.target] = st.args[0].value

    def forget_compound(self, stmts):
        """After a branch or loop: facts about temporaries defined in it no longer hold."""
        for s in walk(stmts):
            if isinstance(s, Assign):
                self.czero.pop(s.target, None)

    # ------------------------------------------------------------------ slots
    def all_tokens(self, lst) -> set:
        return {token(lst, k) for k in self.universe.get(lst, ())}

    def tokens_appended(self, lst) -> set:
        """Slots an active value appended to ``lst`` may land on: those at or past the length
        the list was made with."""
        n = self.min_len.get(lst, 0)
        return {token(lst, k) for k in self.universe.get(lst, ()) if k >= n}

    def tokens_written(self, lst, idx) -> set:
        """Slots an active value stored at ``lst[idx]`` may land on."""
        return {token(lst, k) for k in self.universe.get(lst, ()) if self.may_equal(idx, k)}

    def read(self, lst, idx, active):
        """For ``x = lst[idx]`` with ``lst`` active: "zero" when R{x} is zero, a predicate
        ``(index name, k)`` when it is zero exactly when ``idx == k`` (and the index keeps its
        value until R{x} is used), ``("guard", index name, slots)`` when it is zero at those
        slots (the read is then guarded), ``("len", c, k)`` for ``lst[c]`` with c < 0 that
        hits the one zero slot k exactly when ``len(lst) + c == k`` (``ys[-1]`` while ``ys``
        holds only its first value: the R-transform versions on that position), else None."""
        if lst not in self.universe:
            return None
        reach = [k for k in sorted(self.universe[lst]) if self.may_equal(idx, k)]
        if isinstance(idx, Const) and type(idx.value) is int and idx.value < 0:
            # lst[c] is slot len(lst) + c, and the list never holds fewer than it was made with
            reach = [k for k in reach if k - idx.value >= self.min_len.get(lst, 0)]
        hits = [k for k in reach if token(lst, k) not in active]
        # a slot read where it may be non-zero is read as it is: it must hold a real zero
        self.raw.update((lst, k) for k in reach if k not in hits)
        if not hits:
            return None
        if isinstance(idx, Const) and type(idx.value) is int and idx.value >= 0:
            return "zero"
        if isinstance(idx, Const):  # lst[-1]: the slot depends on the list's length
            if type(idx.value) is int and len(hits) == 1:
                return ("len", idx.value, hits[0])
            self.raw.update((lst, k) for k in hits)
            return None
        lo = self.lower_bound(idx) if isinstance(idx, Var) else None
        if isinstance(idx, Var) and (lo is None or lo < 0):
            # an index that may be negative reaches slot k also at k - len(lst): `lst[-l - 1]`
            self.raw.update((lst, k) for k in hits)
            return None
        if isinstance(idx, Var) and len(hits) == 1 and \
                (idx.name in self.counters or idx.name in self.temps):
            return (idx.name, hits[0])  # names that keep their value from the read to its use
        if isinstance(idx, Var):
            return ("guard", idx.name, tuple(hits))  # read as `R[idx] if idx != k else 0`
        self.raw.update((lst, k) for k in hits)
        return None


# --------------------------------------------------------------------------- tuple positions
#
# Code written by courses keeps per-step caches as tuples in a list (``caches.append((x,
# h_prev, c_prev, i, f, o, g, c))`` and, going back, ``x, h_prev, ... = caches[t]``).  The
# input ``x`` has no R, so R{x} read back is zero and ``dWx += x.T @ da`` needs no
# ``R{x}.T @ da``, as a hand-written R{backprop} knows.  By whole values the tuple is active
# and R{x} = R{caches[t]}[0] is read as it is: a product of zeros per step.  The facts below
# follow, per tuple position, whether its R may be non-zero, as tokens ``"name#@j"`` of the
# active set (``"name#@*"``: any position) for the tuples and tracked lists of tuples the
# function builds; joins and loop heads take their union as for any activity.  A read
# ``x = tup[j]`` of a position no active value reached has R{x} = 0.  The zeros stored at
# such positions stay real arrays, so every other read of the tuple stays exact.

def pos_token(name: str, j) -> str:
    return f"{name}#@{j}"


class TuplePositions:
    """Which tuple variables and tracked lists carry position facts (see the comment above)."""

    def __init__(self, fn, types, universe, written):
        bad = set(fn.params) | set(written)
        for st in walk(fn.body):
            if not isinstance(st, Assign):
                bad.update(defined_names(st) - {getattr(st, "obj", None)})
        self.tuples = {n for n, t in types.items()
                       if isinstance(t, tuple) and t and t[0] == "tuple" and n not in bad}
        self.lists = set(universe)
        self.written = set(written)

    def clear(self, name, active):
        """``name`` is rebound: its old position facts are gone."""
        prefix = name + "#@"
        active -= {a for a in active if a.startswith(prefix)}

    def of_value(self, op, r_of, active) -> set:
        """Positions (ints, or ``"*"``) of a tuple operand whose R may be non-zero."""
        if isinstance(op, TupleOp):
            return {j for j, it in enumerate(op.items) if r_of(it, active) is not None}
        if isinstance(op, Var) and op.name in self.tuples:
            prefix = op.name + "#@"
            return {_pos(a[len(prefix):]) for a in active if a.startswith(prefix)}
        return {"*"}

    def defined(self, st, r_of, before, active):
        """After ``st`` (an Assign) with the active set ``before`` it: set the target's facts."""
        n = st.target
        if n in self.tuples:
            self.clear(n, active)
            if n not in active:
                return
            if st.prim == "getitem" and isinstance(st.args[0], Var) and \
                    st.args[0].name in self.lists and not isinstance(st.args[1], SliceOp):
                pos = self.of_list(st.args[0].name, before)
            elif st.prim == "copy" and isinstance(st.args[0], (TupleOp, Var)):
                pos = self.of_value(st.args[0], r_of, before)  # a literal, or another name
            else:
                pos = {"*"}
            active |= {pos_token(n, j) for j in pos}
        elif n in self.lists:
            self.clear(n, active)
            if st.prim == "list":
                for a in st.args:
                    active |= {pos_token(n, j) for j in self.of_value(a, r_of, before)}
            else:
                active.add(pos_token(n, "*"))

    def stored(self, lst, index, value, r_of, active):
        """``lst.append(value)`` (index None) or ``lst[index] = value``."""
        if lst not in self.lists:
            return
        pos = self.of_value(value, r_of, active)
        if index is not None and isinstance(index, SliceOp):
            pos = {"*"}
        active |= {pos_token(lst, j) for j in pos}

    def of_list(self, lst, active) -> set:
        prefix = lst + "#@"
        return {_pos(a[len(prefix):]) for a in active if a.startswith(prefix)}

    def zero_read(self, st, active) -> bool:
        """``x = tup[j]``: True when R{x} is structurally zero by the facts."""
        if st.prim != "getitem" or not isinstance(st.args[0], Var):
            return False
        tup, idx = st.args[0].name, st.args[1]
        if tup not in self.tuples or tup not in active or st.target in self.written:
            return False
        if not (isinstance(idx, Const) and type(idx.value) is int and idx.value >= 0):
            return False
        return not ({pos_token(tup, idx.value), pos_token(tup, "*")} & active)


def _pos(s: str):
    return "*" if s == "*" else int(s)
