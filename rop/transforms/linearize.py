"""Linearise once: R{f} split into a primal part that runs once and a tangent part that runs
once per direction (``jax.linearize``'s split, made by hand from the R-transformed IR).

In a CG or Lanczos loop every product is at the same arguments, yet R{f} computes the primal
forward and backward pass again with each direction.  The R-function's statements fall into
three kinds, and the split follows them:

* **primal** statements (the user's program) and **coefficients**: R-statements that read no
  direction (``1 - y1 ** 2``, ``2.0 * a``, ``i != 0``): the factors of the linear map, the same
  for every direction.  They run once, in ``f_linearize``.
* **tangent** statements: those that read a direction or an R-value, and the R-containers
  (``R_acts = rt.zeros_of(acts)``, written slot by slot).  They run per direction, in
  ``f_tangent``.
* the **control flow** (``for``, ``if``, ``break``) runs in both, so each tangent statement
  executes exactly as often, and in the same order, as in R{f}.

What a tangent statement reads of the primal side is recorded where it reads it: the primal
part appends the value to that name's *tape* (a list, in program order), and the tangent part
reads the tape back in the same order, with a counter per tape.  A value read outside every
loop needs no list: it is passed as it is.  Arrays the program later writes in place are
copied onto the tape (the tape holds the value the statement read, not the storage).  Scalars
computed from loop counters and lengths (``i + 1``, ``L - 1``, ``i == 0``) are recomputed in
the tangent part instead of taped, so it reads like R{f} itself.

Not split (:class:`NotLinearizable`, and the caller falls back to the whole R{f} per
direction): a ``while`` loop (relaxations: the R-state iterates to its own fixed point), and a
list read by a tangent statement inside a loop (Numba has no lists of lists).
"""

from __future__ import annotations

import copy

from ..ir.nodes import (Append, Assign, Break, Const, Continue, Effect, For, Function, If,
                        Return, SetItem, TupleOp, Var, While, defined_names, operand_vars, walk)
from ..ir.passes import dce
from ..ir.storage import Storage

# R-statements that make storage of their own: per direction, even when they read no direction
_ALLOC = {"zeros_of", "zeros_but", "list", "list_repeat", "array_copy", "copy", "zeros",
          "zeros_like", "ones", "empty", "full"}
# scalar operations the tangent part recomputes from counters and lengths instead of taping
_REMAT = {"add", "sub", "mul", "floordiv", "mod", "neg", "eq", "ne", "lt", "le", "gt", "ge",
          "not_", "not", "and_", "or_", "len", "copy", "ifexp"}


class NotLinearizable(Exception):
    """R{f} has a part the split does not handle; the message says which."""


def _is_list(t) -> bool:
    return isinstance(t, tuple) and t[0] == "list"


class _Split:
    def __init__(self, rfn: Function, types: dict, namer):
        self.rfn, self.types, self.namer = rfn, types, namer
        body = rfn.body
        if any(isinstance(s, While) for s in walk(body)):
            raise NotLinearizable("a `while` loop (a relaxation) runs to its own fixed point")
        early = [s for s in walk(body) if isinstance(s, Return) and s is not body[-1]]
        if early:  # the tape returned there would hold values only the other paths compute
            raise NotLinearizable(f"line {early[0].loc.lineno}: a `return` before the end "
                                  "of the function")
        k = rfn.params.index(rfn.rparams[0]) if rfn.rparams else len(rfn.params)
        self.base = rfn.params[:k]  # the function's own parameters
        self.dirs = rfn.params[k:]  # the directions (and structural damping's weight)
        self.tan = self._tangent_names()
        defined = {n for s in walk(body) for n in defined_names(s)}
        self.free = {p for p in self.base if p not in defined}
        self.loopvars = {s.var for s in walk(body) if isinstance(s, For)}
        self.written = Storage(rfn, types).written_names()
        self.remat = self._remat_names()
        self.tapes: dict = {}  # name -> (tape name, counter name or None for a single value)
        self.order: list = []

    # ------------------------------------------------------------------ classification
    def _tangent_names(self) -> set:
        rf = self.rfn
        tan = set(self.dirs)
        rvalues = set(rf.rnames.values())
        changed = True
        while changed:
            changed = False
            for s in walk(rf.body):
                if isinstance(s, Assign) and s.is_r and s.target not in tan and (
                        set(s.reads()) & tan or s.prim in _ALLOC or s.target in rvalues):
                    tan.add(s.target)
                    changed = True
                elif isinstance(s, (SetItem, Append)) and s.is_r and s.obj not in tan:
                    tan.add(s.obj)
                    changed = True
        for s in walk(rf.body):  # the primal never reads a direction
            if not getattr(s, "is_r", False) and not isinstance(s, (For, If, Return)) \
                    and set(s.reads()) & tan:
                raise NotLinearizable(f"line {s.loc.lineno}: a primal statement reads an R-value")
        return tan

    def is_tangent(self, s) -> bool:
        if isinstance(s, Assign):
            return s.target in self.tan
        if isinstance(s, (SetItem, Append)):
            return s.obj in self.tan
        if isinstance(s, Effect):
            return bool(set(s.reads()) & self.tan)
        return False

    def _remat_names(self) -> set:
        defs: dict = {}
        for s in walk(self.rfn.body):
            for n in defined_names(s):
                defs.setdefault(n, []).append(s)
        cand = {n for n, ss in defs.items() if n not in self.tan and self.types.get(n) == 0 and
                all(isinstance(s, Assign) and s.prim in _REMAT for s in ss)}
        ok = self.free | self.loopvars
        while True:
            bad = {n for n in cand if any(set(s.reads()) - ok - cand for s in defs[n])}
            if not bad:
                return cand
            cand -= bad

    # ------------------------------------------------------------------ the walk
    def needs(self, names, depth):
        out = []
        for n in names:
            if n in self.tan or n in self.free or n in self.remat or n in self.loopvars \
                    or n in out:
                continue
            out.append(n)
        return out

    def fetch(self, n, avail, depth, in_branch, p_out, t_out, loc):
        """Record ``n`` in the primal part and read it back in the tangent part."""
        if n in avail:
            return
        avail.add(n)
        t = self.types.get(n)
        single = depth == 0 and not in_branch
        if _is_list(t) and not single:
            raise NotLinearizable(f"line {loc.lineno}: a tangent statement reads the list `{n}` "
                                  "inside a loop or a branch")
        if _is_list(t):  # copied item by item into a tape: Numba passes no empty lists
            tape, k, size, item = (self.namer.fresh(x) for x in ("tape_" + n, "k", "size", "item"))
            self.types.update({tape: t, k: 0, size: 0, item: t[1]})
            self.order.append(tape)
            p_out += [Assign(tape, "tape", (), loc), Assign(size, "len", (Var(n),), loc),
                      For(k, Const(0), Var(size), Const(1),
                          [Assign(item, "getitem", (Var(n), Var(k)), loc),
                           Append(tape, Var(item), loc)], loc)]
            t_out.append(Assign(n, "untape", (Var(tape),), loc))
            return
        value = Var(n)
        if n in self.written:  # the value read now, not the storage later
            tmp = self.namer.fresh(n + "_saved")
            self.types[tmp] = t
            p_out.append(Assign(tmp, "array_copy", (Var(n),), loc))
            value = Var(tmp)
        if single:
            tape = self.namer.fresh("tape_" + n)
            self.types[tape] = t
            self.order.append(tape)
            p_out.append(Assign(tape, "copy", (value,), loc))
            t_out.append(Assign(n, "copy", (Var(tape),), loc))
            return
        if n not in self.tapes:
            tape, counter = self.namer.fresh("tape_" + n), self.namer.fresh("k_" + n)
            self.types[tape], self.types[counter] = ("list", t), 0
            self.tapes[n] = (tape, counter)
            self.order.append(tape)
        tape, counter = self.tapes[n]
        p_out.append(Append(tape, value, loc))
        t_out.append(Assign(n, "getitem", (Var(tape), Var(counter)), loc))
        t_out.append(Assign(counter, "add", (Var(counter), Const(1)), loc))

    def block(self, stmts, avail, depth, in_branch, returns):
        p_out, t_out = [], []
        for s in stmts:
            if isinstance(s, (For, If)):
                reads = list(s.reads())
                for n in self.needs(reads, depth):
                    self.fetch(n, avail, depth, in_branch, p_out, t_out, s.loc)
                inner = {n for x in walk([s]) for n in defined_names(x)} | \
                    {x.obj for x in walk([s]) if isinstance(x, (SetItem, Append, Effect))
                     and hasattr(x, "obj")}
                if isinstance(s, For):
                    pb, tb = self.block(s.body, avail - inner, depth + 1, in_branch, returns)
                    if pb:
                        p_out.append(For(s.var, s.start, s.stop, s.step, pb, s.loc))
                    if tb:
                        t_out.append(For(s.var, s.start, s.stop, s.step, tb, s.loc))
                else:
                    pb, tb = self.block(s.body, set(avail - inner), depth, True, returns)
                    pe, te = self.block(s.orelse, set(avail - inner), depth, True, returns)
                    if pb or pe:
                        p_out.append(If(s.test, pb, pe, s.loc))
                    if tb or te:
                        t_out.append(If(s.test, tb, te, s.loc))
                avail -= inner
                continue
            if isinstance(s, (Break, Continue)):
                p_out.append(s)
                t_out.append(copy.copy(s))
                continue
            if isinstance(s, Return):
                rv = s.r_value
                for n in self.needs(list(operand_vars(rv)) if rv is not None else [], depth):
                    self.fetch(n, avail, depth, in_branch, p_out, t_out, s.loc)
                ret = Return(TupleOp((s.value if s.value is not None else Const(None),
                                      TupleOp(()))), s.loc)
                returns.append(ret)
                p_out.append(ret)
                t_out.append(Return(rv if rv is not None else Const(None), s.loc))
                continue
            if self.is_tangent(s):
                for n in self.needs(list(s.reads()), depth):
                    self.fetch(n, avail, depth, in_branch, p_out, t_out, s.loc)
                t_out.append(s)
                continue
            # primal, or a coefficient of the linear map: once
            p_out.append(s)
            changed = set(defined_names(s))
            if isinstance(s, (SetItem, Append)):
                changed |= {s.obj}
            if isinstance(s, Effect):
                changed |= {a.name for a in s.args if isinstance(a, Var)}
            avail -= changed
            if isinstance(s, Assign) and s.target in self.remat:
                t_out.append(copy.copy(s))
        return p_out, t_out

    def run(self, names):
        returns: list = []
        p_body, t_body = self.block(self.rfn.body, set(), 0, False, returns)
        tapes = tuple(Var(t) for t in self.order)
        for r in returns:  # (the outputs, the tape)
            r.value = TupleOp((r.value.items[0], TupleOp(tapes)))
        lists = [t for t, _ in self.tapes.values()]
        p_body = [Assign(t, "tape", (), self.rfn.loc) for t in lists] + p_body
        t_body = [Assign(c, "copy", (Const(0),), self.rfn.loc)
                  for _, c in self.tapes.values()] + t_body
        rf = self.rfn
        common = dict(helpers=rf.helpers, user_names=rf.user_names, temps=set(rf.temps))
        primal = Function(names[0], list(self.base), p_body, rf.loc, rf.filename, **common)
        tangent = Function(names[1], list(self.base) + list(self.order) + list(self.dirs),
                           t_body, rf.loc, rf.filename, rparams=list(rf.rparams),
                           rnames=dict(rf.rnames), **common)
        primal = dce(primal, self.types)
        tangent = dce(tangent, self.types)
        _check_defined(tangent)
        return primal, tangent


def _check_defined(fn):
    """Every name the tangent part reads is bound before (a recomputed scalar whose
    definition sat in a block the tangent part does not keep would not be)."""
    bound = set(fn.params)

    def block(stmts, bound):
        for s in stmts:
            missing = [n for n in s.reads() if n not in bound]
            if missing:
                raise NotLinearizable(f"line {s.loc.lineno}: `{missing[0]}` is not recomputed "
                                      "in the tangent part")
            if isinstance(s, For):
                block(s.body, bound | {s.var})
                bound |= {s.var} | {n for x in walk(s.body) for n in defined_names(x)}
            elif isinstance(s, If):
                block(s.body, set(bound))
                block(s.orelse, set(bound))
                bound |= {n for x in walk([s]) for n in defined_names(x)}
            else:
                bound |= set(defined_names(s))
    block(fn.body, bound)


def linearize(rfn: Function, types: dict, namer, name: str) -> tuple[Function, Function, tuple]:
    """``(f_linearize, f_tangent, tapes)`` from the R-function ``rfn`` (after DCE and the
    release of dead slots): ``f_linearize(args)`` returns ``(outputs, tapes)``;
    ``f_tangent(args, *tapes, *directions)`` returns R{outputs}.  Raises
    :class:`NotLinearizable`."""
    s = _Split(rfn, types, namer)
    p, t = s.run((name + "_linearize", name + "_tangent"))
    return p, t, tuple(s.order)
