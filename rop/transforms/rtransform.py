"""The R-transform: Pearlmutter's R{·} applied statement by statement.

R{w} = v for the ``wrt`` parameters; every statement ``y = f(a, b)`` with an
active argument gets, right after it, ``R_y = <rule of f>`` from the rule table.  The
rule returns its formula (``R_a * b + a * R_b``), which :class:`~rop.ir.builder.Builder`
flattens into three-address R-statements on the table's entries (``t1 = mul(R_a, b)``,
``t2 = mul(a, R_b)``, ``R_y = add(t1, t2)``), their temporaries recorded in the function's
temps for the emitter to fold back: after this pass no statement holds Python ``ast``.
Statements whose arguments are all inactive get nothing (activity analysis: an
R-value that is structurally zero is never computed).  Control flow is kept: an
R-statement runs in the branch and the iteration its primal runs in, so the
derivative is that of the path taken.  Where paths join (after an ``if``, at a loop
head) and a value is active on one path only, its R is materialised as zeros on
the other path — that zero is a real value there, not a dropped term.
"""

from __future__ import annotations

import ast
import copy
from dataclasses import dataclass, field, replace

from ..errors import RopSyntaxError
from ..ir.builder import Builder, expr_sources
from ..ir.nodes import (Append, Assign, Break, Const, Continue, For, Function, If, Return,
                        SetItem, TupleOp, Var, While, blocks_of, defined_names, operand_ast,
                        rename_stmt, walk)
from ..ir.storage import ALIAS_PRIMS, Storage
from ..rules.table import COSTLY, apply_rule
from ..rules.templates import T, name as aname
from .gauss_newton import counts_below_slot, cut_at, cut_index, damp, damping_sites
from .relaxation import may_relax
from .slots import SlotFacts, TuplePositions, is_token, token

_TERMINATORS = (Return, Break, Continue)


@dataclass
class _Loop:
    edges: list = field(default_factory=list)  # (stmt list, index, state) of break/continue


class RTransform:
    def __init__(self, fn: Function, wrt, types: dict, prims: dict, namer, slot_activity=True,
                 storage=None, forced=frozenset(), cut=None, hidden=()):
        self.fn = fn
        self.cut = cut  # the output for the Gauss-Newton product (transforms/gauss_newton.py)
        self.hidden = hidden  # structural damping's hidden values (gauss_newton.Damped)
        self.sites: dict = {}  # id of a line's statement -> the μ R{h} it gets (damping_sites)
        self.mu = None  # the structural damping weight's parameter
        self.below: set = set()  # counters provably below an output slot's index
        self.loop_depth = 0  # `for` loops around the statement being transformed
        self.after_cut = False
        self.storage = storage if storage is not None else Storage(fn, types)
        self.written = self.storage.written_names()  # names an in-place write may change
        self.forced = forced  # names active from their first definition (see _late_active)
        self.late: set = set()  # names that must be forced on the next run
        self.wrt = list(wrt)
        self.types = types
        self.prims = prims
        self.namer = namer
        self.rnames: dict[str, str] = {}
        self.loops: list[_Loop] = []
        self.relax_mode = "auto"
        self.fn_temps: set = set()
        self.defined: set = set(fn.params)  # names that may be bound at this point
        self.slots = SlotFacts(fn, self.storage)
        self.positions = TuplePositions(fn, types, self.slots.universe if slot_activity else {},
                                        self.written)
        self.versions: dict = {}  # id of each ``if i == k`` made by _versioned -> (i, k)
        self.slot_zeros: dict = {}  # tracked list -> the statements materialising its R as zeros
        self.guarded_reads: dict = {}  # tracked list -> [(x = lst[i] statement, guard)]
        self.slot_activity = slot_activity
        if not slot_activity:
            self.slots.universe = {}
        self.builder = Builder(prims, namer, self.fn_temps, types)

    def rname(self, v: str) -> str:
        if v not in self.rnames:
            self.rnames[v] = self.namer.fresh("R_" + v)
            self.types.setdefault(self.rnames[v], self.types.get(v))
        return self.rnames[v]

    def build(self, target, expr, loc) -> list:
        """``target = expr`` (a rule's formula) as three-address R-statements (ir/builder.py)."""
        return self.builder.assign(target, expr, loc)

    def build_operand(self, expr, loc, out):
        """``expr`` as an operand, the statements computing it appended to ``out``."""
        return self.builder.operand(expr, loc, out)

    # ------------------------------------------------------------------ values
    def r_of(self, op, active):
        """R of an operand as an ast expression, or None when structurally zero."""
        if isinstance(op, Var):
            return aname(self.rname(op.name)) if op.name in active else None
        if isinstance(op, TupleOp):
            rs = [self.r_of(i, active) for i in op.items]
            if all(r is None for r in rs):
                return None
            return ast.Tuple(elts=[r if r is not None else self.zeros_expr(i)
                                   for r, i in zip(rs, op.items)], ctx=ast.Load())
        return None

    def type_of(self, op):
        if isinstance(op, Var):
            return self.types.get(op.name)
        if isinstance(op, Const):
            return 0
        if isinstance(op, TupleOp):
            return ("tuple", tuple(self.type_of(i) for i in op.items))
        return None

    def zeros_expr(self, op) -> ast.expr:
        """The zero R-value of an operand's type (a scalar, an array, a list, a tuple)."""
        t = self.type_of(op)
        x = operand_ast(op)
        return _zeros_for(t, x)

    # ------------------------------------------------------------------ driver
    def run(self) -> Function:
        active = set()
        params = list(self.fn.params)
        for w in self.wrt:
            active.add(w)
        if self.cut is None:
            body, _ = self.block(self.fn.body, active)
        else:
            z, slot = self.cut
            k = cut_index(self.fn, z)
            body, state = self.block(self.fn.body[:k + 1], active)
            if state is not None and self.hidden:
                self.sites = damping_sites(self, k, state)
                self.mu = self.namer.fresh("mu")
                self.types[self.mu] = 0
            if state is not None:
                state = cut_at(self, state, body)
                self.after_cut = True
                rest, _ = self.block(self.fn.body[k + 1:], state)
                body += rest
        self._unread_zero_slots(body)
        rparams = [self.rname(w) for w in self.wrt]
        mu = [self.mu] if self.mu is not None else []  # structural damping's weight
        return Function(self.fn.name, params + rparams + mu, body, self.fn.loc,
                        self.fn.filename, helpers=self.fn.helpers, user_names=self.fn.user_names,
                        temps=set(self.fn_temps), rparams=rparams, rnames=dict(self.rnames))

    def block(self, stmts, active):
        """Transform a statement list; returns (new list, active set at its end or None if it
        always leaves through return/break/continue)."""
        out = []
        state = set(active)
        for st in stmts:
            if state is None:
                break  # unreachable code after a terminator
            state = self.stmt(st, state, out)
        if self.versions:
            self._sink_versions(out)
        return out, state

    def _sink_versions(self, out):
        """Let a versioned R-statement's ``if`` take in the rest of its source line, so each
        branch reads as one formula (``if i == 0: R_h = V a + c  else: R_h = V a + W R{a} + c``):
        the line's R-statements go into both branches, its primal statements before the ``if``
        when no value moves past its readers."""
        i = 0
        while i < len(out):
            node = out[i]
            i += 1
            if not (isinstance(node, If) and id(node) in self.versions):
                continue
            reads = {n for s in walk([node]) for n in s.reads()}
            defs = {n for s in walk([node]) for n in defined_names(s)}
            while i < len(out) and isinstance(out[i], (Assign, SetItem, Append)) \
                    and out[i].loc.lineno == node.loc.lineno:
                s = out[i]
                if s.is_r:
                    node.body.append(copy.deepcopy(s))
                    node.orelse.append(s)
                    reads |= set(s.reads())
                    defs |= defined_names(s)
                    del out[i]
                elif defined_names(s) & reads or set(s.reads()) & defs:
                    break
                else:
                    out.insert(i - 1, out.pop(i))
                    i += 1
            later = {n for s in walk(out[i:]) for n in s.reads()}
            self._split_temps(node.body, later)

    def _unread_zero_slots(self, body):
        """Do not allocate the zeros of a list slot that is never read while zero.

        ``R_acts = [rt.zeros_of(e) for e in acts]`` allocates R{X} = 0 in slot 0; when every
        read of ``R_acts[i]`` that can hit slot 0 is followed only by views of it and by the
        ``else`` of an ``if i == 0:`` (so nothing computed from it is used there), the slot
        keeps ``acts[0]`` itself instead: a placeholder of the right type, never read while it
        stands for zero.  Checked on the finished code by following every value derived from
        such a read; any other use (stored, returned, passed on, or read unguarded) keeps the
        real zero."""
        sl = self.slots
        for _, d in self.sites.values():  # structural damping reads the forward R-list
            self.slot_zeros.pop(d.base, None)
        if not self.slot_zeros or (self.relax_mode == "auto" and may_relax(self.fn)):
            return
        tainted = {self.rnames[t]: info for t, info in sl.taint.items() if t in self.rnames}
        rlists = {self.rnames[v]: v for v in self.slot_zeros if v in self.rnames}
        raw = set(sl.raw)
        via = {}  # a temporary of a formula -> the tainted values it is computed from

        def check(s, guard):
            reads = set(s.reads())
            target = getattr(s, "target", None)
            taints = [t for n in reads for t in ([tainted[n]] if n in tainted else via.get(n, ()))]
            if isinstance(s, Assign) and target in self.builder.made:
                # an operation inside a formula: the R-statement it is part of reads the value
                via[target], taints = taints, ()
            for (pred, lst, slot) in taints:
                if not (isinstance(s, Assign) and target in tainted) and pred not in guard:
                    raw.add((lst, slot))
            for n in reads & set(rlists):
                # the whole R-value is the slot (a slot read inside a larger formula is one of
                # the builder's temporaries: not followed, so the slot keeps its zero)
                is_read = isinstance(s, Assign) and s.prim == "getitem" and \
                    s.args[0] == Var(n) and s.target not in self.builder.made
                is_write = isinstance(s, (SetItem, Append)) and s.obj == n
                if not (is_read or is_write):
                    raw.update((rlists[n], k) for k in sl.universe[rlists[n]])

        def scan(stmts, guard):
            for s in stmts:
                check(s, guard)
                if isinstance(s, If):
                    pred = self.versions.get(id(s))
                    scan(s.body, guard)
                    scan(s.orelse, guard | {pred} if pred else guard)
                elif isinstance(s, While):
                    scan(s.cond, guard)
                    scan(s.body, guard)
                elif isinstance(s, For):
                    scan(s.body, guard)
        scan(body, frozenset())
        for lst, stmts in self.slot_zeros.items():
            keep = sorted(k for k in sl.universe[lst] if (lst, k) not in raw)
            if not keep:
                continue
            self._guard_reads(lst, keep, body)
            slots = Const(keep[0]) if len(keep) == 1 else TupleOp(tuple(map(Const, keep)))
            for st in stmts:  # R_lst = zeros_of(lst) -> zeros_but(lst, slots)
                st.prim, st.args = "zeros_but", (st.args[0], slots)

    def _guard_reads(self, lst, slots, body):
        """``R_x = R_lst[i]`` -> ``R_x = R_lst[i] if i != k else rt.zeros_of(x)`` for the reads
        that may hit a slot holding a placeholder (an index the analysis cannot pin down, e.g.
        ``acts[L]`` after the loop, slot 0 only if L == 0)."""
        rlist = self.rnames.get(lst)
        for st, g in self.guarded_reads.get(lst, ()):
            idx = g[1]
            ks = [k for k in g[2] if k in slots]
            rt_name = self.rnames.get(st.target)
            if not ks or rt_name is None:
                continue
            if len(g) > 3:  # lst[c], c < 0, is slot k exactly when len(lst) == k - c
                test = " and ".join(f"len({lst}) != {k - idx}" for k in ks)
                key = Const(idx)
            else:
                test = " and ".join(f"{idx} != {k}" for k in ks)
                key = Var(idx)
            new = ast.parse(f"{rlist}[{idx}] if {test} else rt.zeros_of({st.target})",
                            mode="eval").body

            def guarded(s, key=key, new=new, rt_name=rt_name):  # the R-read of this index
                # (the target may be reassigned elsewhere from another index, which keeps
                # its own read)
                if isinstance(s, Assign) and s.is_r and s.target == rt_name and \
                        s.prim == "getitem" and s.args == (Var(rlist), key):
                    return self.build(rt_name, new, s.loc)
                return None
            _replace_stmts(body, guarded)

    def _split_temps(self, branch, later):
        """Fresh names for the temporaries a branch defines (and nothing after it reads), so
        that each is defined once in the function and the emitter folds it into its reader."""
        temps = {r for v, r in self.rnames.items() if v in self.fn.temps} | self.builder.made
        for k, s in enumerate(branch):
            inside = {n for t in branch[k + 1:] for n in t.reads()}
            if isinstance(s, Assign) and s.target in temps and s.target in inside \
                    and s.target not in later:
                new = self.namer.fresh(s.target)
                self.fn_temps.add(new)
                if s.target in self.builder.made:
                    self.builder.made.add(new)
                self.types[new] = self.types.get(s.target)
                branch[k] = replace(s, target=new)
                for j in range(k + 1, len(branch)):
                    if branch[j].is_r:
                        branch[j] = rename_stmt(branch[j], {s.target: new})

    def stmt(self, st, active, out):
        return getattr(self, "s_" + type(st).__name__)(st, active, out)

    # ------------------------------------------------------------------ straight-line code
    def s_Assign(self, st, active, out):
        self.defined.add(st.target)
        self.below.discard(st.target)
        sl = self.slots
        sl.assigned(st.target)
        active -= sl.all_tokens(st.target)  # a list rebound: its old slots are gone
        before = set(active)
        try:
            active = self._assign(st, active, out)
        finally:
            sl.note_def(st)
        self.positions.defined(st, self.r_of, before, active)
        if self.sites and id(st) in self.sites:
            active = damp(self, st, active, out)
        return active

    def _assign(self, st, active, out):
        sl = self.slots
        if self.positions.zero_read(st, active) and st.target not in self.forced:
            out.append(st)  # a tuple position no active value reached (slots.TuplePositions)
            active.discard(st.target)
            return active
        if st.prim == "list":
            rs = [self.r_of(a, active) for a in st.args]
            out.append(st)
            if all(r is None for r in rs) and st.target not in self.forced:
                active.discard(st.target)
                return active
            expr = ast.List(elts=[r if r is not None else self.zeros_expr(a)
                                  for r, a in zip(rs, st.args)], ctx=ast.Load())
            out.extend(self.build(self.rname(st.target), expr, st.loc))
            active.add(st.target)
            active |= {token(st.target, k) for k in sl.universe.get(st.target, ())
                       if k < len(rs) and rs[k] is not None}
            return active
        if self.cut is not None and self.cut[1] is not None and st.prim == "getitem" and \
                st.args[0] == Var(self.cut[0]) and isinstance(st.args[1], Var) and \
                st.args[1].name in self.below:
            out.append(st)  # a hidden slot after the cut: held fixed
            active.discard(st.target)
            return active
        hit, slot = None, None
        if st.prim == "getitem" and isinstance(st.args[0], Var) and st.args[0].name in active:
            hit = sl.read(st.args[0].name, st.args[1], active)
            if hit == "zero":  # a slot whose R is structurally zero
                out.append(st)
                active.discard(st.target)
                return active
            slot = hit[1] if isinstance(hit, tuple) and hit[0] != "guard" else None
            if isinstance(hit, tuple) and hit[0] == "len":
                slot = hit[2]
                if self.loop_depth:
                    hit = self._position(st, hit[1], hit[2], out)
                else:  # read once: a version would save one product only for a one-layer
                    # network, and a branch around an R-write keeps linearize from splitting;
                    # the read is guarded instead (`R_ys[-1] if len(ys) != 1 else 0`), so
                    # the slot's zeros need not exist
                    hit = ("guard", hit[1], (slot,), "len")
        prim = self.prims[st.prim]
        env = {p: operand_ast(a) for p, a in zip(prim.params, st.args)}
        renv = {p: self.r_of(a, active) for p, a in zip(prim.params, st.args)
                if p in prim.derivative_params()}
        y_ph = "__y__"
        r = apply_rule(prim, env, renv, aname(y_ph))
        if r is None and st.target in self.forced:
            # another name shares this array and an active value is written into it later:
            # its R must exist from here on, as the same object under every name
            out.append(st)
            out.extend(self.build(self.rname(st.target),
                                  _zeros_for(self.types.get(st.target), aname(st.target)), st.loc))
            active.add(st.target)
            return active
        if r is None:
            out.append(st)
            active.discard(st.target)
            return active
        r = self._own_memory(st, r)
        if isinstance(hit, tuple) and hit[0] == "guard":
            self.guarded_reads.setdefault(st.args[0].name, []).append((st, hit))
            hit = None
        if hit is not None:
            sl.czero[st.target] = hit
            sl.taint[st.target] = (hit, st.args[0].name, slot)
        names = {n.id for n in ast.walk(r) if isinstance(n, ast.Name)}
        rt = self.rname(st.target)
        if st.target in names and y_ph in names:
            # y = f(y, ...) whose rule needs both the old and the new y: keep the new one apart
            tmp = self.namer.fresh(st.target + "_new")
            out.append(Assign(tmp, st.prim, st.args, st.loc, kwargs=st.kwargs))
            out.extend(self.build(rt, _subst(r, y_ph, tmp), st.loc))
            out.append(Assign(st.target, "copy", (Var(tmp),), st.loc))
            self.types[tmp] = self.types.get(st.target)
        elif st.target in names:
            out.extend(self.build(rt, r, st.loc))  # R first: reads the old y
            out.append(st)
        elif self._versioned(st, prim, env, renv, out):
            pass
        else:
            out.append(st)
            out.extend(self.build(rt, _subst(r, y_ph, st.target), st.loc))
        active.add(st.target)
        return active

    def _position(self, st, c, k, out):
        """``x = lst[c]``, c < 0, reads the zero slot k exactly when ``len(lst) == k - c``: the
        length, named beside the read, and the predicate ``(its name, k - c)``, so R{x}'s uses
        are versioned ``if len(lst) == k - c`` (``ys[-1]`` of ``ys = [X]``: ``len(ys) == 1``),
        as for a counter."""
        n = self.namer.temp()
        self.fn_temps.add(n)
        self.slots.temps.add(n)
        self.types[n] = 0
        out.append(Assign(n, "len", (Var(st.args[0].name),), st.loc))
        return (n, k - c)

    def _own_memory(self, st, r):
        """R mirrors the primal's memory: ``y = f(...)`` makes a fresh array, so R{y} must not
        be another value's R (``R{W + c} = R{W}``, the caller's direction) when an in-place
        write may reach either of them; then the R-value is copied.  Views (``copy``,
        indexing, ``.T``, reshape) are views on both sides and stay so."""
        t = self.types.get(st.target)
        if st.prim in ALIAS_PRIMS or not isinstance(t, int) or t == 0:
            return r
        direct, _ = expr_sources(r)
        primal = {v for v, rv in self.rnames.items() if rv in direct}
        if direct and (st.target in self.written or primal & self.written):
            return T("r.copy()")(r=r)
        return r

    def _versioned(self, st, prim, env, renv, out) -> bool:
        """``if i == k: R_y = <rule without the terms zero there> else: R_y = <rule>`` when
        some active arguments are read from a list slot whose R is zero at ``i == k``
        (see :mod:`.slots`); False when no argument is."""
        sl = self.slots
        by_pred = {}
        for p, a in zip(prim.params, st.args):
            if renv.get(p) is not None and isinstance(a, Var) and a.name in sl.czero:
                by_pred.setdefault(sl.czero[a.name], []).append(p)
        if not by_pred:
            return False
        pred = max(sorted(by_pred), key=lambda q: len(by_pred[q]))
        cond = by_pred[pred]
        others = any(r is not None for p, r in renv.items() if p not in cond)
        rt = self.rname(st.target)
        full = _subst(apply_rule(prim, env, renv, aname("__y__")), "__y__", st.target)
        out.append(st)
        if not others and st.prim not in COSTLY:
            # cheap on a zero: computed as it is, and the fact passes on to its readers (every
            # R-value stays defined on every path, so no definition is left to a branch)
            out.extend(self.build(rt, full, st.loc))
            sl.czero[st.target] = pred
            src = next((sl.taint[a.name] for p, a in zip(prim.params, st.args)
                        if p in cond and a.name in sl.taint), None)
            if src is not None:
                sl.taint[st.target] = src
            return True
        part = apply_rule(prim, env, {p: (None if p in cond else r) for p, r in renv.items()},
                          aname("__y__"))
        part = (_subst(part, "__y__", st.target) if part is not None
                else _zeros_for(self.types.get(st.target), aname(st.target)))
        test = self.namer.temp()
        self.fn_temps.add(test)
        self.types[test] = 0
        out.append(Assign(test, "eq", (Var(pred[0]), Const(pred[1])), st.loc))
        node = If(Var(test), self.build(rt, part, st.loc), self.build(rt, full, st.loc), st.loc)
        self.versions[id(node)] = pred
        out.append(node)
        return True

    def s_For(self, st, active, out):
        self.defined.add(st.var)
        self.below.discard(st.var)
        if counts_below_slot(self, st):
            self.below.add(st.var)
        return self._s_For(st, active, out)

    def s_SetItem(self, st, active, out):
        rv = self.r_of(st.value, active)
        if rv is None and st.obj not in active:
            out.append(st)
            return active
        self._late_active(st.obj, active)
        if st.obj not in active:
            out.extend(self.materialize([st.obj], st.loc))
            active.add(st.obj)
        out.append(st)
        if rv is None:
            rv = self.zeros_expr(st.value) if self._is_list(st.obj) else ast.Constant(0.0)
            if isinstance(st.index, Const):
                active.discard(token(st.obj, st.index.value))
        else:
            active |= self.slots.tokens_written(st.obj, st.index)
        self.positions.stored(st.obj, st.index, st.value, self.r_of, active)
        value = self.build_operand(rv, st.loc, out)
        out.append(SetItem(self.rname(st.obj), st.index, value, st.loc, is_r=True))
        return active

    def s_Append(self, st, active, out):
        rv = self.r_of(st.value, active)
        if rv is None and st.obj not in active:
            out.append(st)
            return active
        self._late_active(st.obj, active)
        if st.obj not in active:
            out.extend(self.materialize([st.obj], st.loc))
            active.add(st.obj)
        out.append(st)
        if rv is None:
            rv = self.zeros_expr(st.value)
        else:
            active |= self.slots.tokens_appended(st.obj)
        self.positions.stored(st.obj, None, st.value, self.r_of, active)
        value = self.build_operand(rv, st.loc, out)
        out.append(Append(self.rname(st.obj), value, st.loc, is_r=True))
        return active

    def _late_active(self, obj, active):
        """A write that makes ``obj``'s storage active is seen through every name holding it;
        those defined before it without an R (``b = a`` while ``a`` was still constant) would
        miss it.  They are noted, and :func:`r_transform` runs again with the whole class
        active from its first definition."""
        holders = self.storage.holders(obj)
        others = {n for n in holders if n in self.defined and n != obj}
        # an R{obj} made now would be a new array: holders bound before it cannot hold it
        missing = others if obj not in active else {n for n in others if n not in active}
        if missing and not holders <= self.forced:
            self.late |= holders

    def _is_list(self, v):
        t = self.types.get(v)
        return isinstance(t, tuple) and t[0] == "list"

    def materialize(self, names, loc):
        """``R_x = 0`` of the right type, for values active on another path into a join."""
        stmts = []
        for v in sorted(n for n in names if not is_token(n)):
            stmts.extend(self.build(self.rname(v), _zeros_for(self.types.get(v), aname(v)), loc))
            if v in self.slots.universe:  # R_lst = zeros_of(lst), one statement
                self.slot_zeros.setdefault(v, []).append(stmts[-1])
        return stmts

    def s_Return(self, st, active, out):
        if st.value is None:
            out.append(Return(None, st.loc, r_value=Const(None)))
            return None
        r = self.r_of(st.value, active)
        if r is None:
            r = self.zeros_expr(st.value)
        r_value = self.build_operand(r, st.loc, out)
        out.append(Return(st.value, st.loc, r_value=r_value))
        return None

    # ------------------------------------------------------------------ control flow
    def s_If(self, st, active, out):
        before = set(self.defined)
        sl = self.slots
        lb = dict(sl.lb)
        then_lb, else_lb = sl.branch_bounds(st.test)
        sl.lb = _tighter(lb, then_lb)
        body, a1 = self.block(st.body, active)
        in_body, self.defined = self.defined, set(before)
        sl.lb = _tighter(lb, else_lb)
        orelse, a2 = self.block(st.orelse, active)
        in_orelse = self.defined
        changed = {n for s in walk(st.body + st.orelse) for n in defined_names(s)}
        sl.lb = {n: b for n, b in lb.items() if n not in changed}
        sl.forget_compound(st.body + st.orelse)
        self.defined = in_body | in_orelse
        live = [a for a in (a1, a2) if a is not None]
        if not live:
            out.append(If(st.test, body, orelse, st.loc))
            return None
        joined = set().union(*live)
        for branch, a, bound in ((body, a1, in_body), (orelse, a2, in_orelse)):
            # a value bound only on the other path needs no zero here: it is unbound here
            missing = (joined - a) & bound if a is not None else set()
            if missing:
                branch.extend(self.materialize(missing, st.loc))
        out.append(If(st.test, body, orelse, st.loc))
        return joined

    def s_Break(self, st, active, out):
        out.append(st)
        self.loops[-1].edges.append(("break", out, len(out) - 1, set(active)))
        return None

    def s_Continue(self, st, active, out):
        out.append(st)
        self.loops[-1].edges.append(("continue", out, len(out) - 1, set(active)))
        return None

    def _loop(self, st, active, out, run_body):
        """Fixed point of the activity at the loop head, then zeros on every edge that lacks one."""
        head = set(active)
        bound_before = set(self.defined)
        for _ in range(50):
            self.loops.append(_Loop())
            body, end = run_body(set(head))
            loop = self.loops.pop()
            new_head = set(head)
            if end is not None:
                new_head |= end
            for _kind, _lst, _i, a in loop.edges:
                new_head |= a
            if new_head == head:
                break
            head = new_head
        # zeros on the edges into the head that lack them; not before the loop for a value
        # first bound inside it (an `if`/`elif` without `else` may leave it unbound in the first
        # iteration: its R is then unbound too, as the value is in Python)
        out.extend(self.materialize((head - active) & bound_before, st.loc))
        for kind, lst, i, a in sorted(loop.edges, key=lambda e: -e[2]):
            missing = head - a
            if missing:
                lst[i:i] = self.materialize(missing, st.loc)
        if end is not None and head - end:
            body.extend(self.materialize(head - end, st.loc))
        return body, head

    def _s_For(self, st, active, out):
        sl = self.slots
        lo = sl.loop_bound(st)
        in_body = {n for s in walk(st.body) for n in defined_names(s)}
        counter = st.var not in in_body
        entry = self._zero_on_entry(st, active, in_body) if counter and self.slot_activity else None

        def run(head):
            head.discard(st.var)
            sl.assigned(st.var)
            for n in in_body:  # a later iteration may have changed it
                sl.czero.pop(n, None)
            if counter:
                sl.counters.add(st.var)
                if lo is not None:
                    sl.lb[st.var] = lo
            if entry is not None:
                for x in entry(head):
                    sl.czero[x] = (st.var, st.start.value)
            return self.block(st.body, head)
        self.loop_depth += 1
        try:
            body, head = self._loop(st, active, out, run)
        finally:
            self.loop_depth -= 1
        sl.counters.discard(st.var)
        sl.assigned(st.var)
        sl.forget_compound(st.body)
        out.append(For(st.var, st.start, st.stop, st.step, body, st.loc))
        return head

    def _zero_on_entry(self, st, active, in_body):
        """The values carried around a ``range`` loop whose R is zero when it starts: ``x = X``
        before ``for i in range(L): x = layer(W[i], x)``.  Until the body assigns it again,
        R{x} is zero exactly in the first iteration, ``i == start``, so a product that reads it
        there is versioned ``if i == start`` as a read of a zero list slot is (the first
        layer's ``R{x} @ W.T`` of a hand-written R{backprop}, skipped).  Only whole arrays and
        numbers that nothing in the loop writes in place or grows (a list's ``append``
        changes it with no assignment) qualify; returns ``head -> names`` or None."""
        step = st.step.value if isinstance(st.step, Const) else None
        if not (isinstance(st.start, Const) and type(st.start.value) is int
                and type(step) is int and step != 0):
            return None
        mutated = {s.obj for s in walk(st.body) if isinstance(s, (SetItem, Append))}
        bound = set(self.defined)

        def names(head):
            return [x for x in sorted(head - active) if x in bound and x in in_body
                    and x not in mutated and x not in self.written and not is_token(x)
                    and isinstance(self.types.get(x), int)]
        return names

    def s_While(self, st, active, out):
        cond_holder = {}

        def run(head):
            cond, after = self.block(st.cond, head)
            cond_holder["cond"] = cond
            return self.block(st.body, after)
        body, head = self._loop(st, active, out, run)
        self.slots.forget_compound(st.cond + st.body)
        out.append(While(cond_holder["cond"], st.test, body, st.loc))
        return head

    def s_Effect(self, st, active, out):
        out.append(st)
        return active


def _zeros_for(t, x):
    if t == 0:
        return ast.Constant(0.0)
    if isinstance(t, int):
        return T("np.zeros_like(x)")(x=x)
    if isinstance(t, tuple) and t[0] == "list":
        return T("rt.zeros_of(x)")(x=x)
    if isinstance(t, tuple) and t[0] == "tuple":
        return ast.Tuple(elts=[_zeros_for(s, ast.Subscript(value=x, slice=ast.Constant(i), ctx=ast.Load()))
                               for i, s in enumerate(t[1])], ctx=ast.Load())
    return T("rt.zeros_of(x)")(x=x)


def _replace_stmts(stmts, fn):
    """Replace, in ``stmts`` and the blocks nested in them, each statement for which ``fn``
    returns a list of statements by that list."""
    i = 0
    while i < len(stmts):
        new = fn(stmts[i])
        if new is not None:
            stmts[i:i + 1] = new
            i += len(new)
            continue
        for b in blocks_of(stmts[i]):
            _replace_stmts(b, fn)
        i += 1


def _tighter(bounds: dict, extra: dict) -> dict:
    out = dict(bounds)
    for n, b in extra.items():
        out[n] = b if out.get(n) is None else max(out[n], b)
    return out


def _subst(expr, old, new):
    class S(ast.NodeTransformer):
        def visit_Name(self, node):
            return aname(new) if node.id == old else node
    return S().visit(expr)


def r_transform(fn, wrt, types, prims, namer, relaxation="auto", slot_activity=True,
                storage=None, cut=None, hidden=()) -> Function:
    for w in wrt:
        if w not in fn.params:
            raise RopSyntaxError(f"`{w}` in wrt is not a parameter of {fn.name}", fn.filename,
                                 fn.loc.lineno, fn.loc.col, fn.loc.text,
                                 f"parameters are: {', '.join(fn.params)}")
    forced = frozenset()
    while True:  # at most once more per class that becomes active late
        tr = RTransform(copy.deepcopy(fn), wrt, types, prims, copy.deepcopy(namer), slot_activity,
                        storage, forced, cut, hidden)
        tr.relax_mode = relaxation
        out = tr.run()
        if not tr.late - forced:
            namer.__dict__.update(tr.namer.__dict__)
            return out
        forced = forced | tr.late
