"""Loops that run to a fixed point: R{·} of the limit, with the primal left as written.

A ``while`` loop is a *relaxation* when its test compares a ``change`` that the body
computes from the loop-carried state (``while change > tol and it < max_it:`` with
``change = np.max(np.abs(y_new - y))``).  The user means the limit, so R{·} must be the
limit too (Pearlmutter's relaxation of R{y} and R{z}), and the primal must not move:

1. The loop runs exactly as written, its R-statements beside it (R follows the path).
2. After it, *if the change test is what ended it* (``not change > tol``: the primal
   converged, not the cap), a second loop iterates only the R-update, with the primal state
   frozen at its converged values: for ``y_new = f(y)`` that is ``R{y_new} = f'(y) R{y} + ...``
   with ``y`` fixed, a linear fixed-point iteration.  It stops when the user's measure of
   change, applied to the R-state, is below ``tol`` *relative to the same measure of the
   R-state itself* (``change_R <= tol * size_R``), so R{·} stays linear in v; its cap is ten
   times the user's cap (``10 * max_it``), or ``10 * n_primal + 10000`` without one.  Primal
   statements are not re-run, so counters, accumulators and everything else the loop computes
   keep their values; the R of an accumulator (a loop-carried R-value the R-state does not
   depend on, ``R_t = R_t + ...``) keeps its path value too.
3. If the R-state does not converge although the primal did, the generated code records it
   in the status array and the wrapper reports it (see ``on_divergence`` in :func:`rop.rop`).

A relaxation that stops at its own cap before converging (``while change > 1e-12 and it < 5``)
is a path: R is the derivative of the iterations made, and nothing is reported.  So is any
other value-dependent ``while`` (``while abs(a) > 0.1: a = a * 0.5``), and so is a relaxation
whose R-update cannot be separated from the primal update: it leaves the loop by
``break``/``return``/``continue``, updates R inside a nested loop, or reads a primal value the
body reassigns around the read (a frozen copy would not be the value the update saw).  For
those, R follows the primal's iterations exactly.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

from ..ir.nodes import (Append, Assign, Break, Const, Continue, Effect, For, If, Return, SetItem,
                        Var, While, blocks_of, defined_names, operand_ast, operand_vars,
                        rename_operand, rename_stmt, walk)
from ..rules.table import MEASURE  # operations a measure of change is made of


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



def slice_of(body, var, active, states=frozenset()):
    """The statements of ``body`` that compute ``var`` from the loop state, and the state
    variables (leaves) they read.  The slice stops at the operands of a difference of two
    active values (``y_new - y``) and at values the body computes otherwise (the update itself),
    so the copy applies the *measure* to the R-state, never the update.  The operands of the
    differences are states wherever the measure reads them (``... / np.max(np.abs(y_new))``)."""
    last = max((i for i, s in enumerate(body) if isinstance(s, Assign) and s.target == var
                and not s.is_r), default=None)
    if last is None:
        return None, None
    need, leaves, picked = {var}, set(), []
    differences = set()
    for s in reversed(body[:last + 1]):
        if isinstance(s, Assign) and s.target in need and not s.is_r:
            need.discard(s.target)
            if s.target != var and (s.prim not in MEASURE or s.target in states):
                leaves.add(s.target)
                continue
            picked.append(s)
            reads = set(operand_vars_of(s))
            if s.prim == "sub" and len(reads) == 2 and reads <= active:
                leaves |= reads
                differences |= reads
            else:
                need |= reads
        elif isinstance(s, (If, SetItem)) and (_defs(s) & need):
            return None, None  # the change is computed through a branch: not a plain measure
    picked.reverse()
    if not differences:
        return None, None  # a test on the state itself (`while x > 1`) is a path, not a limit
    if differences & {s.target for s in picked} - states:
        return slice_of(body, var, active, states | differences)
    return picked, leaves | need


def operand_vars_of(s):
    for a in s.args:
        yield from operand_vars(a)


def _defs(s):
    out = set()
    for t in walk([s]):
        if isinstance(t, Assign):
            out.add(t.target)
        if isinstance(t, SetItem):
            out.add(t.obj)
    return out


class _Compilation:
    """What co-convergence reads and extends of the compilation: the R-names, the types, the
    namer, the primal's temporaries (``fn.temps``) and the R-function's (``fn_temps``), and
    the status array reported to the wrapper (a parameter of the R-function, made on first
    use)."""

    def __init__(self, rfn, primal, types, prims, namer):
        self.rnames, self.types, self.prims, self.namer = rfn.rnames, types, prims, namer
        self.fn, self.fn_temps = primal, rfn.temps
        self.status = None

    def status_name(self) -> str:
        if self.status is None:
            self.status = self.namer.fresh("rop_status")
        return self.status


def co_converge_loops(rfn, primal, types, prims, namer):
    """The ``co_converge`` pass: every relaxation of the R-transformed ``rfn`` (inner loops
    first, so that each loop's index in the status array is that of its position among
    them) gets the R-loop that follows it (see the module docstring); ``rfn.relax_loops``
    lists them for the wrapper, and the status array becomes the last parameter."""
    comp = _Compilation(rfn, primal, types, prims, namer)
    found = []

    def block(stmts):
        out = []
        for st in stmts:
            for b in blocks_of(st):
                b[:] = block(b)
            relax = co_converge(comp, st, st.cond, st.body, st.loc, len(found)) \
                if isinstance(st, While) else None
            if relax is None:
                out.append(st)
                continue
            before, after, info = relax
            found.append(info)
            out += [*before, st, *after]
        return out

    rfn.body = block(rfn.body)
    rfn.relax_loops = found
    if comp.status is not None:
        rfn.params.append(comp.status)
    return rfn


def may_relax(fn) -> bool:
    """Whether ``fn`` has a ``while`` whose test compares a change its body computes: a
    relaxation the ``co_converge`` pass may rewrite (the R-transform's slot placeholders
    then keep real zeros, which the R-loop may read)."""
    return any(isinstance(s, While) and find_change_tests(s.cond, s.body) for s in walk(fn.body))


class _NotSeparable(Exception):
    """The R-update cannot run without the primal update (it sits in a nested loop)."""


def co_converge(tr, st, cond, body, loc, index):
    """Co-convergence of a relaxation's (already R-transformed) loop ``cond``/``body``.

    Returns (statements before the loop, statements after it, RelaxLoop), or None when the loop
    is not a relaxation of an active state, or its R-update cannot be iterated on its own
    (then R follows the primal's iterations, as for any path).  The loop itself is left as it
    is but for a count of its iterations (``n_primal``), inserted first in its body.
    """
    if _leaves_early(body):
        return None
    for ci, change in find_change_tests(cond, body):
        active = set(tr.rnames)
        picked, leaves = slice_of(body, change, active)
        if not picked:
            continue
        if not any(v in active for v in leaves):
            continue
        return _relax_r_state(tr, cond, ci, body, picked, change, active, loc, index)
    return None


def _relax_r_state(tr, cond, ci, body, picked, change, active, loc, index):
    test = cond[ci]
    tol = test.args[1 - _CMP[test.prim]]
    n_primal, n_r, converged = (tr.namer.fresh(n) for n in ("n_primal", "n_R", "converged_R"))
    for n in (n_primal, n_r, converged):
        tr.types[n] = 0

    # the user's measure of change, applied to the R-state's change and to the R-state itself
    copies, change_r, size_r = _measure_copies(tr, picked, change, active)
    where = replace(loc, text=f"{_code(loc.text)}  (converged: the R-update alone, "
                              "primal state fixed)")
    # the test's operands again after the loop (a cond's temporaries stay the cond's own)
    pre, ren = _recompute(tr, cond[:ci], set(operand_vars_of(test)))
    # converged_R = change_R <= tol * size_R < np.inf
    bound = _temp(tr)
    conv = [Assign(bound, "mul", (rename_operand(tol, ren), Var(size_r)), where, is_r=True),
            Assign(converged, "below_finite", (Var(change_r), Var(bound)), where, is_r=True)]
    count = Assign(n_r, "add", (Var(n_r), Const(1)), where)

    # the R-loop's body: the loop's R-statements, in order, each with the position of the
    # statement of ``body`` it comes from; the measure where the user measures the change
    pos = body.index(picked[-1]) + 1
    while pos < len(body) and getattr(body[pos], "is_r", False):
        pos += 1
    entries = [(0, count)]
    try:
        for i, s in enumerate(body):
            if i == pos:
                entries += [(pos, c) for c in copies + conv]
            r = _r_part(s)
            if r is not None:
                entries.append((i, r))
    except _NotSeparable:
        return None
    if pos == len(body):
        entries += [(pos, c) for c in copies + conv]
    mine = {n_r, converged} | {c.target for c in copies}

    # the R-state is what the measured R-values depend on through the loop; any other R-value
    # the loop carries (R_t = R_t + ..., the R of an accumulator) keeps its path value
    stmts = [s for _, s in entries]
    defs = {n for s in walk(stmts) for n in defined_names(s)}
    carried = (_upward_exposed(stmts) & defs) - mine
    wcond, go, cap_pre = _r_loop_test(tr, cond, ci, body, n_r, converged, n_primal, loc)
    state = _needed(stmts, mine | _reads_of(wcond))
    entries = [(p, s) for p, s in ((p, _without_defs(s, carried - state)) for p, s in entries)
               if s is not None]

    # frozen values: a value the R-update reads and the body reassigns both before and after
    # the read was, when the update read it, not what it is at the end: not separable
    defs_at = {}
    for i, s in enumerate(body):
        for t in walk([s]):
            for n in defined_names(t):
                defs_at.setdefault(n, set()).add(i)
    own = {n for _, s in entries for t in walk([s]) for n in defined_names(t)}
    for p, s in entries:
        for t in walk([s]):
            for n in set(t.reads()) - own:
                at = defs_at.get(n, ())
                if any(i < p for i in at) and any(i >= p for i in at):
                    return None
    r_body = _fresh_temps(tr, [s for _, s in entries])
    r_body[1:1] = _views_again(tr, body, r_body)

    # the loop as written, counting its iterations
    body.insert(0, Assign(n_primal, "add", (Var(n_primal), Const(1)), loc))
    before = [Assign(n_primal, "copy", (Const(0),), loc)]

    # after it: did the change test end it (not the cap)?
    still, conv_p, ran, both = (_temp(tr) for _ in range(4))
    pre += [Assign(still, test.prim, tuple(rename_operand(a, ren) for a in test.args), test.loc),
            Assign(conv_p, "not", (Var(still),), loc),
            Assign(ran, "gt", (Var(n_primal), Const(0)), loc),
            Assign(both, "and", (Var(ran), Var(conv_p)), loc)]
    failed = _temp(tr)
    note = Effect("rt.note_not_converged", (Var(tr.status_name()), Const(index), Var(n_r),
                                            Var(change_r), Var(size_r)), loc,
                  note="the R-state did not converge: reported by the wrapper")
    relax = cap_pre + [
        Assign(n_r, "copy", (Const(0),), where),
        Assign(converged, "copy", (Const(False),), where),
        While(wcond, Var(go), r_body, where),
        Assign(failed, "not", (Var(converged),), where),
        If(Var(failed), [note], [], where),
    ]
    after = pre + [If(Var(both), relax, [], where)]
    return before, after, RelaxLoop(index, loc, change, n_r)


def _code(text):
    """A source line without its trailing comment."""
    return text.split("#", 1)[0].rstrip()


def _temp(tr, like=None):
    t = tr.namer.temp()
    tr.fn_temps.add(t)
    tr.types[t] = 0 if like is None else tr.types.get(like)
    return t


def _leaves_early(stmts) -> bool:
    """A ``break``/``continue``/``return`` of this loop (a nested loop's own do not count)."""
    for s in stmts:
        if isinstance(s, (Break, Continue, Return)):
            return True
        if isinstance(s, If) and (_leaves_early(s.body) or _leaves_early(s.orelse)):
            return True
        if isinstance(s, (For, While)) and any(isinstance(t, Return) for t in walk(s.body)):
            return True
    return False


def _r_part(s):
    """The R-statements of ``s`` (a copy, branches kept), or None."""
    if isinstance(s, (Assign, SetItem, Append)):
        return copy.deepcopy(s) if s.is_r else None
    if isinstance(s, If):
        body = [r for r in map(_r_part, s.body) if r is not None]
        orelse = [r for r in map(_r_part, s.orelse) if r is not None]
        return If(s.test, body, orelse, s.loc) if body or orelse else None
    if isinstance(s, (For, While)):
        if any(getattr(t, "is_r", False) for t in walk([s]) if not isinstance(t, (For, While, If))):
            raise _NotSeparable  # per-iteration primal values: none of them is "the" frozen one
    return None


def _without_defs(s, names):
    """``s`` without the statements defining ``names`` (None when nothing is left)."""
    if isinstance(s, If):
        body = [r for r in (_without_defs(t, names) for t in s.body) if r is not None]
        orelse = [r for r in (_without_defs(t, names) for t in s.orelse) if r is not None]
        return If(s.test, body, orelse, s.loc) if body or orelse else None
    return None if defined_names(s) & names else s


def _reads_of(stmts) -> set:
    return {n for s in walk(stmts) for n in s.reads()}


def _needed(stmts, live_out) -> set:
    """The names the loop body ``stmts`` defines on the way to ``live_out``, iteration after
    iteration (liveness around the loop to a fixed point)."""
    def back(block, live, defs):
        for s in reversed(block):
            if isinstance(s, If):
                l1, l2 = back(s.body, set(live), defs), back(s.orelse, set(live), defs)
                live = l1 | l2 | set(s.reads())
            elif defined_names(s) & live:
                defs |= defined_names(s)
                live = (live - defined_names(s) if isinstance(s, Assign) else live) | set(s.reads())
        return live

    head, defs = set(live_out), set()
    while True:
        new = head | back(stmts, head, defs)
        if new == head:
            return defs
        head = new


def _upward_exposed(stmts) -> set:
    """Names read before the statements define them: what the loop carries."""
    defined, exposed = set(), set()
    for s in walk(stmts):
        exposed |= set(s.reads()) - defined
        defined |= defined_names(s)
    return exposed


def _recompute(tr, stmts, names):
    """Copies under fresh names of the primal statements of ``stmts`` that compute ``names``
    (a test's operands, after the loop), and the renaming."""
    need, picked = set(names), []
    for s in reversed(stmts):
        if isinstance(s, Assign) and not s.is_r and s.target in need:
            need.discard(s.target)
            picked.append(s)
            need |= set(s.reads())
    ren, out = {}, []
    for s in reversed(picked):
        new = _temp(tr, like=s.target)
        out.append(Assign(new, s.prim, tuple(rename_operand(a, ren) for a in s.args), s.loc,
                          kwargs=tuple((k, rename_operand(a, ren)) for k, a in s.kwargs)))
        ren[s.target] = new
    return out, ren


def _user_cap(cond, ci, assigned):
    """The bound of the loop's iteration cap (``max_it`` in ``it < max_it``), or None."""
    for i, s in enumerate(cond):
        if i == ci or not isinstance(s, Assign) or s.is_r or s.prim not in _CMP:
            continue
        counter, bound = s.args if s.prim in ("lt", "le") else s.args[::-1]
        if isinstance(counter, Var) and counter.name in assigned and \
                not set(operand_vars(bound)) & assigned:
            return bound
    return None


def _r_loop_test(tr, cond, ci, body, n_r, converged, n_primal, loc):
    """``not converged_R and n_R < 10 * max_it`` (``10 * n_primal + 10000`` without a cap):
    the R-loop's cond statements, its test variable, and statements to run once before it."""
    assigned = {n for s in walk(body) for n in defined_names(s)}
    bound = _user_cap(cond, ci, assigned)
    cap_pre, stmts = [], []
    if bound is not None:
        cap_pre, ren = _recompute(tr, cond, set(operand_vars(bound)))
        cap = _temp(tr)
        stmts.append(Assign(cap, "mul", (Const(10), rename_operand(bound, ren)), loc))
    else:
        ten, cap = _temp(tr), _temp(tr)
        stmts += [Assign(ten, "mul", (Const(10), Var(n_primal)), loc),
                  Assign(cap, "add", (Var(ten), Const(10000)), loc)]
    go_on, below, go = _temp(tr), _temp(tr), _temp(tr)
    stmts = [Assign(go_on, "not", (Var(converged),), loc)] + stmts + [
        Assign(below, "lt", (Var(n_r), Var(cap)), loc),
        Assign(go, "and", (Var(go_on), Var(below)), loc)]
    return stmts, go, cap_pre


def _measure_copies(tr, picked, change, active):
    """The measure's statements twice over R-values: ``change_R`` (on the R-state's change:
    ``np.max(np.abs(R_y_new - R_y))``) and ``size_R`` (on the R-state itself, each difference
    of two states replaced by the first: ``np.max(np.abs(R_y_new))``)."""
    R = tr.rnames
    targets = {s.target for s in picked}
    leaves = {v for s in picked for v in operand_vars_of(s)} - targets
    to_r = {v: Var(R[v]) for v in leaves if v in active and v in R}
    ren_c, ren_s = dict(to_r), dict(to_r)
    temps = tr.fn.temps
    changes, sizes = [], []
    for s in picked:
        reads = set(operand_vars_of(s))
        if s.target == change:
            new_c, new_s = tr.namer.fresh(change + "_R"), tr.namer.fresh("size_R")
        elif s.target in temps:
            new_c, new_s = tr.namer.temp(), tr.namer.temp()
        else:
            new_c, new_s = tr.namer.fresh(s.target + "_R"), tr.namer.fresh(s.target + "_size_R")
        for new in (new_c, new_s):
            tr.types[new] = tr.types.get(s.target)
            if s.target in temps:
                tr.fn_temps.add(new)
        changes.append(_renamed(s, new_c, ren_c))
        ren_c[s.target] = Var(new_c)
        if s.prim == "sub" and len(reads) == 2 and reads <= active:
            first = rename_operand(s.args[0], to_r)  # the size of the (new) state
            if s.target != change:
                ren_s[s.target] = first
                continue
            sizes.append(Assign(new_s, "copy", (first,), s.loc))
        else:
            sizes.append(_renamed(s, new_s, ren_s))
        ren_s[s.target] = Var(new_s)
    # the changes first, then the sizes: each reads as one line of the measure
    copies = changes + sizes
    return copies, ren_c[change].name, ren_s[change].name


def _renamed(s, target, ren):
    return Assign(target, s.prim, tuple(rename_operand(a, ren) for a in s.args), s.loc,
                  kwargs=tuple((k, rename_operand(a, ren)) for k, a in s.kwargs))


def _fresh_temps(tr, stmts):
    """Fresh names for the R-values of temporaries in the R-loop, so that each is defined once
    in the function and the emitter writes it into its reader, as in the loop it comes from."""
    temps = {r for v, r in tr.rnames.items() if v in tr.fn.temps} | tr.fn_temps
    back = {r: v for v, r in tr.rnames.items()}
    ren = {}
    for s in walk(stmts):
        if isinstance(s, Assign) and s.is_r and s.target in temps and s.target not in ren:
            new = tr.namer.fresh(s.target)
            tr.fn_temps.add(new)
            tr.types[new] = tr.types.get(s.target, tr.types.get(back.get(s.target)))
            ren[s.target] = new
    return [rename_stmt(s, ren) for s in stmts] if ren else stmts


def _views_again(tr, body, r_body):
    """The R-loop reads some temporaries of the loop; those that are only views of values it
    does not change (``W.T``, ``Ws[k]``) are written again, under fresh names, so the emitter
    folds them into their readers in both loops (instead of one line ``t = W.T`` each)."""
    from ..backend.emit import _trivial
    temps = set(tr.fn.temps) - set(tr.rnames.values())
    defs = {}
    for s in walk(body):
        for n in defined_names(s):
            defs.setdefault(n, []).append(s)
    read = _reads_of(r_body) & temps
    ren, out = {}, []
    for s in body:  # top-level definitions only: they ran in the last iteration for sure
        if not (isinstance(s, Assign) and not s.is_r and s.target in read and
                len(defs[s.target]) == 1 and s.prim in tr.prims and
                s.prim not in ("list", "list_repeat")):
            continue
        prim = tr.prims[s.prim]
        env = {p: operand_ast(a) for p, a in zip(prim.params, s.args)}
        try:
            trivial = _trivial(prim.emit(env))
        except Exception:  # an emitter that needs more than its operands: leave it
            trivial = False
        if trivial and not (set(s.reads()) & (set(defs) - set(ren))):
            new = _temp(tr, like=s.target)
            out.append(_renamed(s, new, {k: Var(v) for k, v in ren.items()}))
            ren[s.target] = new
    if ren:
        r_body[:] = [rename_stmt(s, ren) for s in r_body]
    return out
