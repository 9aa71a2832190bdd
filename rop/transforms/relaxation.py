"""Loops that run to a fixed point: the R-state relaxes beside the primal state.

A ``while`` loop is a *relaxation* when its test compares a ``change`` that the body
computes from the loop-carried state (``while change > tol and it < max_it:`` with
``change = np.max(np.abs(y_new - y))``).  The user means the limit, so R{·} must be
the limit too (Pearlmutter's relaxation of R{y} and R{z}): the transformed loop
measures the same change on the R-state (``change_R = np.max(np.abs(R_y_new - R_y))``)
and runs until *both* are below the tolerance or the cap is reached.  The extra
iterations leave a converged primal where it is.  A loop that stops at its cap
without converging is reported (see ``on_divergence`` in :func:`rop.rop`), never
returned silently.

Any other value-dependent ``while`` (``while abs(a) > 0.1: a = a * 0.5``) is a path:
R follows the primal's iterations exactly, and nothing here applies.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir.nodes import Assign, Const, Effect, If, SetItem, Var, operand_vars


@dataclass
class RelaxLoop:
    """What the wrapper needs to report a loop that did not converge."""

    index: int
    loc: object
    change: str
    counter: str


_CMP = {"gt": 0, "ge": 0, "lt": 1, "le": 1}


def find_change_tests(cond, body):
    """Statements in ``cond`` comparing a variable the body assigns against a threshold
    (``change > tol`` or ``tol < change``): (statement index, change variable)."""
    assigned = {s.target for s in body if isinstance(s, Assign)}
    found = []
    for i, s in enumerate(cond):
        if isinstance(s, Assign) and s.prim in _CMP:
            side = s.args[_CMP[s.prim]]
            other = s.args[1 - _CMP[s.prim]]
            if isinstance(side, Var) and side.name in assigned and \
                    not (isinstance(other, Var) and other.name in assigned):
                found.append((i, side.name))
    return found


# operations a measure of change is made of: the slice is copied through these only
MEASURE = {"abs", "max", "min", "sum", "mean", "sqrt", "square", "pow", "mul", "div", "sub",
           "add", "neg", "copy", "maximum", "float", "getitem"}


def slice_of(body, var, active):
    """The statements of ``body`` that compute ``var`` from the loop state, and the state
    variables (leaves) they read.  The slice stops at the operands of a difference of two
    active values (``y_new - y``) and at values the body computes otherwise (the update itself),
    so the copy applies the *measure* to the R-state, never the update."""
    last = max((i for i, s in enumerate(body) if isinstance(s, Assign) and s.target == var
                and not s.is_r), default=None)
    if last is None:
        return None, None
    need, leaves, picked = {var}, set(), []
    differences = 0
    for s in reversed(body[:last + 1]):
        if isinstance(s, Assign) and s.target in need and not s.is_r:
            need.discard(s.target)
            if s.target != var and s.prim not in MEASURE:
                leaves.add(s.target)
                continue
            picked.append(s)
            reads = set(operand_vars_of(s))
            if s.prim == "sub" and len(reads) == 2 and reads <= active:
                leaves |= reads
                differences += 1
            else:
                need |= reads
        elif isinstance(s, (If, SetItem)) and (_defs(s) & need):
            return None, None  # the change is computed through a branch: not a plain measure
    picked.reverse()
    if not differences:
        return None, None  # a test on the state itself (`while x > 1`) is a path, not a limit
    return picked, leaves | need


def operand_vars_of(s):
    for a in s.args:
        yield from operand_vars(a)


def _defs(s):
    from ..ir.nodes import walk
    out = set()
    for t in walk([s]):
        if isinstance(t, Assign):
            out.add(t.target)
        if isinstance(t, SetItem):
            out.add(t.obj)
    return out


def co_converge(tr, st, cond, body, loc, index):
    """Rewrite a relaxation's (already R-transformed) ``cond`` and ``body`` in place.

    Returns (statements to put before the loop, statements to put after it, RelaxLoop),
    or None when the loop is not a relaxation of an active state.
    """
    tests = find_change_tests(cond, body)
    for ci, change in tests:
        active = set(tr.rnames)
        picked, leaves = slice_of(body, change, active)
        if not picked:
            continue
        targets = {s.target for s in picked}
        active_reads = {v for v in leaves if v in active}
        if not active_reads:
            continue
        # the same measure of change, applied to the R-state
        ren = {t: tr.namer.fresh(t + "_R") for t in targets}
        ren.update({v: tr.rnames[v] for v in active_reads})
        from ..ir.nodes import rename_operand
        copies = [Assign(ren[s.target], s.prim,
                         tuple(rename_operand(a, {k: Var(v) for k, v in ren.items()}) for a in s.args),
                         s.loc) for s in picked]
        for t in targets:
            tr.types[ren[t]] = tr.types.get(t)
            if t in getattr(tr.fn, "temps", ()):
                tr.fn_temps.add(ren[t])
        # insert after the R-statements that follow the measure's last statement
        pos = body.index(picked[-1]) + 1
        while pos < len(body) and getattr(body[pos], "is_r", False):
            pos += 1
        body[pos:pos] = copies
        change_r = ren[change]
        # the test waits for both: (change > tol) or (change_R > tol)
        test_stmt = cond[ci]
        primal_test = tr.namer.temp()
        r_test = tr.namer.temp()
        side = _CMP[test_stmt.prim]
        r_args = list(test_stmt.args)
        r_args[side] = Var(change_r)
        orig_target = test_stmt.target
        cond[ci:ci + 1] = [
            Assign(primal_test, test_stmt.prim, test_stmt.args, test_stmt.loc),
            Assign(r_test, test_stmt.prim, tuple(r_args), test_stmt.loc),
            Assign(orig_target, "or", (Var(primal_test), Var(r_test)), test_stmt.loc),
        ]
        tr.fn_temps.update({primal_test, r_test})
        counter = tr.namer.fresh("relax_it")
        body.insert(0, Assign(counter, "add", (Var(counter), Const(1)), loc))
        before = [Assign(change_r, "copy", (Var(change),), loc),
                  Assign(counter, "copy", (Const(0),), loc)]
        # after the loop: still above the tolerance means the cap stopped it
        still_p, still_r, still = tr.namer.temp(), tr.namer.temp(), tr.namer.temp()
        tr.fn_temps.update({still_p, still_r, still})
        after = [Assign(still_p, test_stmt.prim, test_stmt.args, loc),
                 Assign(still_r, test_stmt.prim, tuple(r_args), loc),
                 Assign(still, "or", (Var(still_p), Var(still_r)), loc),
                 If(Var(still), [Effect("rt.note_not_converged",
                                        (Var(tr.status_name()), Const(index), Var(counter),
                                         Var(change), Var(change_r)), loc)], [], loc)]
        return before, after, RelaxLoop(index, loc, change, counter)
    return None
