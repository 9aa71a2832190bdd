"""Loops and comprehensions, lowered as users mean them (a mixin of the Lowerer).

``for`` over ``range``/``reversed(range)`` stays a counted loop; ``for`` over lists, tuples,
array rows, ``zip``, ``enumerate`` and ``reversed`` becomes the counted loop over an index
(``W = Ws[k]``), so R{W} is ``R_Ws[k]`` and the generated code is the one a counted loop
gives; a list comprehension is an empty list and appends; ``sum(...)`` a loop from 0.
``while``, ``break`` and ``continue`` stay as they are.
"""

from __future__ import annotations

import ast

from ..ir.nodes import Append, Assign, Break, Const, Continue, For, If, TupleOp, Var, While
from .names import MISSING, is_call_to
from .namer import all_names


class LoopLowering:
    """The loop and comprehension methods of :class:`rop.frontend.lower.Lowerer`."""

    def stmt_For(self, st, lower_body=None, before_bind=None):
        """A ``for`` statement, or one clause of a comprehension: then ``lower_body`` lowers
        what the clause encloses and ``before_bind`` gives its loop variables their own names
        (after the iterable is evaluated in the enclosing scope, as in Python 3)."""
        if st.orelse:
            self.error(st, "`for ... else` is not supported")
        if lower_body is None and self.unrolled_dict_loop(st):
            return
        if lower_body is None and isinstance(st.iter, (ast.List, ast.Tuple)) and \
                isinstance(st.target, ast.Name) and st.iter.elts and \
                not any(isinstance(e, ast.Starred) for e in st.iter.elts):
            # `for dparam in [dW, db]:` over a literal: one body per item (the items may be
            # arrays of different ranks, which no Numba list holds)
            items = [self.expr(e) for e in st.iter.elts]
            self.unroll(st, [[(st.target.id, it)] for it in items])
            return
        it = st.iter
        backward = False
        if isinstance(it, ast.Subscript) and is_call_to(it.value, "list", self.globs) and \
                len(it.value.args) == 1 and isinstance(it.slice, ast.Slice) and \
                it.slice.lower is None and it.slice.upper is None and \
                isinstance(it.slice.step, ast.UnaryOp) and isinstance(it.slice.step.op, ast.USub) \
                and isinstance(it.slice.step.operand, ast.Constant) and it.slice.step.operand.value == 1:
            # `for t in list(range(T))[::-1]`: reversed(range(T))
            it = ast.copy_location(ast.Call(func=ast.Name("reversed", ast.Load()),
                                            args=[it.value.args[0]], keywords=[]), it)
        elif is_call_to(it, "list", self.globs) and len(it.args) == 1 and not it.keywords:
            it = it.args[0]  # `for t in list(range(T))`, `list(reversed(range(T)))`
        if is_call_to(it, "reversed", self.globs):
            if len(it.args) != 1 or it.keywords:
                self.error(it, "reversed takes one argument")
            backward, it = True, it.args[0]
        if not is_call_to(it, "range", self.globs):
            return self.for_each(st, lower_body, before_bind)
        if lower_body is None and self.unrolled_range(st, it, backward):
            return
        if it.keywords or not 1 <= len(it.args) <= 3:
            self.error(it, "range takes one to three positional arguments")
        if not isinstance(st.target, ast.Name):
            self.error(st.target, "the loop variable of a range loop must be a single name",
                       "write `for i in range(n):` and index arrays with i")
        args = [self.expr(a) for a in it.args]
        if len(args) == 1:
            start, stop, step = Const(0), args[0], Const(1)
        elif len(args) == 2:
            (start, stop), step = args, Const(1)
        else:
            start, stop, step = args
        if backward:
            if not (isinstance(step, Const) and step.value == 1):
                self.error(it, "reversed(range(...)) is supported with step 1",
                           "write range(hi - 1, lo - 1, -1)")
            start, stop, step = (self.assign("sub", (stop, Const(1)), st),
                                 self.assign("sub", (start, Const(1)), st), Const(-1))
        if before_bind:
            before_bind()
        var = self.local(st.target.id)
        body = self.sub_lowered(lower_body or (lambda: self.block(st.body)))
        self.emit(For(var, start, stop, step, body, self.loc(st)))

    def sub_lowered(self, lower):
        """Lower into a new statement list: the body of a run-time loop or branch."""
        saved, self.out = self.out, []
        self.dynamic += 1
        try:
            lower()
            return self.out
        finally:
            self.out = saved
            self.dynamic -= 1

    def for_each(self, st, lower_body=None, before_bind=None):
        """``for x in xs``, ``for i, x in enumerate(xs)``, ``for W, b in zip(Ws, bs)`` and
        ``for x in reversed(xs)``, over lists, tuples or arrays (rows), become a counted loop
        ``for k in range(len(xs)): x = xs[k]``.  That is the form the R-transform
        (R{xs[k]} = R_xs[k]), the slot analysis and the release pass read, so a loop written
        either way compiles to the same code."""
        it, backward = st.iter, False
        if is_call_to(it, "reversed", self.globs):
            backward, it = True, it.args[0]
            if is_call_to(it, "zip", self.globs) or is_call_to(it, "enumerate", self.globs):
                self.error(it, f"reversed({it.func.id}(...)) is a TypeError in Python: "
                               f"{it.func.id} objects cannot be reversed",
                           "loop over `reversed(range(len(xs)))` and index the lists with it")
        assigned = _rebound_in(st.body)
        seqs: list = []
        pattern = self.iteration(it, seqs, assigned)
        n = self.assign("len", (seqs[0],), st)
        for s in seqs[1:]:  # zip stops at the shortest sequence
            n = self.assign("minimum", (n, self.assign("len", (s,), st)), st)
        k = self.namer.fresh("k")
        if backward:
            start, stop, step = self.assign("sub", (n, Const(1)), st), Const(-1), Const(-1)
        else:
            start, stop, step = Const(0), n, Const(1)
        if before_bind:
            before_bind()

        def lower():
            self.bind_element(st.target, pattern, seqs, Var(k), st)
            (lower_body or (lambda: self.block(st.body)))()
        self.emit(For(k, start, stop, step, self.sub_lowered(lower), self.loc(st)))

    def iteration(self, node, seqs, assigned):
        """What one step of ``for ... in node`` yields, as a pattern over the sequences it
        indexes (appended to ``seqs``): ("seq", j), ("reversed", j, len(seqs[j]) - 1),
        ("enumerate", start, p), ("zip", [p, ...])."""
        for name in ("enumerate", "zip"):
            if is_call_to(node, name, self.globs):
                if node.keywords and name == "zip":
                    self.error(node.keywords[0].value, "zip takes no keyword arguments here")
                break
        else:
            name = None
        if name == "enumerate":
            if not 1 <= len(node.args) + len(node.keywords) <= 2 or \
                    any(k.arg != "start" for k in node.keywords):
                self.error(node, "enumerate takes a sequence and an optional start")
            start = self.expr(node.args[1] if len(node.args) > 1 else
                              node.keywords[0].value if node.keywords else ast.Constant(0))
            return ("enumerate", start, self.iteration(node.args[0], seqs, assigned))
        if name == "zip":
            if not node.args:
                self.error(node, "zip() of nothing has no elements to loop over")
            return ("zip", [self.iteration(a, seqs, assigned) for a in node.args])
        if is_call_to(node, "range", self.globs):
            self.error(node, "`range(...)` inside zip or enumerate is not supported",
                       "loop over `range(...)` (or `reversed(range(...))`) and index the "
                       "sequences with the counter")
        if is_call_to(node, "reversed", self.globs):  # zip(reversed(Ws), reversed(hs))
            if len(node.args) != 1 or node.keywords:
                self.error(node, "reversed takes one argument")
            inner = self.iteration(node.args[0], seqs, assigned)
            if inner[0] != "seq":
                self.error(node, "reversed(...) is supported around a list, a tuple or an "
                                 "array here, not around zip, enumerate or reversed",
                           "loop over `reversed(range(len(xs)))` and index the lists with it")
            last = self.assign("sub", (self.assign("len", (seqs[inner[1]],), node), Const(1)),
                               node)
            return ("reversed", inner[1], last)
        if isinstance(node, ast.Name) and node.id in assigned:
            self.error(node, f"the loop changes `{node.id}` (rebinds it or appends to it) while "
                             "iterating over it",
                       "iterate over a copy, or loop over `range(n)` with n fixed before the loop")
        seq = self.expr(node)
        if isinstance(seq, (Const, TupleOp)):
            if isinstance(seq, TupleOp):  # `for x in (a, b):` a tuple display
                seq = self.assign("list", tuple(self.contiguous(v, node) for v in seq.items), node)
            else:
                self.error(node, f"cannot loop over the constant {ast.unparse(node)}",
                           "loop over a list, a tuple, an array or `range(...)`")
        seqs.append(seq)
        return ("seq", len(seqs) - 1)

    def bind_element(self, target, pattern, seqs, k, st):
        kind = pattern[0]
        if kind == "seq":
            self.bind(target, self.assign("getitem", (seqs[pattern[1]], k), st), st)
            return
        if kind == "reversed":  # element k of reversed(xs) is xs[len(xs) - 1 - k]
            j = self.assign("sub", (pattern[2], k), st)
            self.bind(target, self.assign("getitem", (seqs[pattern[1]], j), st), st)
            return
        parts = ([pattern[1], pattern[2]] if kind == "enumerate" else pattern[1])
        if not isinstance(target, (ast.Tuple, ast.List)) or len(target.elts) != len(parts):
            self.error(target, f"{kind} yields tuples of {len(parts)}: unpack them into as many "
                               "names", "e.g. `for i, x in enumerate(xs):` or "
                               "`for W, b in zip(Ws, bs):`")
        if kind == "enumerate":
            start = pattern[1]
            count = k if isinstance(start, Const) and start.value == 0 else \
                self.assign("add", (k, start), st)
            self.bind(target.elts[0], count, st)
            self.bind_element(target.elts[1], pattern[2], seqs, k, st)
            return
        for t, p in zip(target.elts, parts):
            self.bind_element(t, p, seqs, k, st)

    def stmt_While(self, st):
        if st.orelse:
            self.error(st, "`while ... else` is not supported")
        saved, self.out = self.out, []
        test = self.expr(st.test)
        cond, self.out = self.out, saved
        body = self.sub_block(st.body)
        self.emit(While(cond, test, body, self.loc(st)))

    def stmt_Break(self, st):
        self.emit(Break(self.loc(st)))

    def stmt_Continue(self, st):
        self.emit(Continue(self.loc(st)))

    def expr_ListComp(self, node, target=None):
        """``[e for x in xs if c]`` is the loop a user would write: an empty list, appends."""
        lst = self.assign("list", (), node, self.unless_read(target, node))
        self.comprehension(node, lambda: self.emit(
            Append(lst.name, self.contiguous(self.expr(node.elt), node), self.loc(node))))
        return lst

    def unless_read(self, target, node):
        """``target``, or None when ``node`` reads it (``ys = [2 * y for y in ys]`` must not
        empty ``ys`` before the loop has read it)."""
        return None if target in {self.scope.get(n) for n in all_names(node)} else target

    def expr_GeneratorExp(self, node):
        self.error(node, "a generator expression is supported only as the argument of `sum`",
                   "write a list comprehension `[... for x in xs]` or a `for` loop")

    def sum_of(self, node, target):
        """``sum(e for x in xs)`` or ``sum(xs)``: Python's sum, ``0 + e_0 + e_1 + ...``, as a
        loop (a list or tuple ``xs`` is summed as ``sum(element for element in xs)``)."""
        gen = node.args[0]
        if not isinstance(gen, (ast.GeneratorExp, ast.ListComp)):
            pos = dict(lineno=gen.lineno, col_offset=gen.col_offset)
            gen = ast.GeneratorExp(elt=ast.Name("element", ast.Load(), **pos), generators=[
                ast.comprehension(ast.Name("element", ast.Store(), **pos), gen, [], 0)], **pos)
        acc = self.unless_read(target, gen) or self.namer.temp()
        self.emit(Assign(acc, "copy", (Const(0),), self.loc(node)))

        def add():
            self.assign("add", (Var(acc), self.expr(gen.elt)), node, target=acc)
        self.comprehension(gen, add)
        return Var(acc)

    def comprehension(self, node, inner):
        """The ``for`` and ``if`` clauses of a comprehension as nested loops and ``if``s around
        ``inner``.  Its loop variables get names of their own, so they neither see nor change
        the function's variables of the same name (Python 3 scoping)."""
        gens = node.generators
        renamed = {}

        def level(j):
            if j == len(gens):
                return inner()
            g = gens[j]
            if g.is_async:
                self.error(node, "async comprehensions are not supported")

            def own_names():
                for t in ast.walk(g.target):
                    if isinstance(t, ast.Name) and t.id not in renamed:
                        renamed[t.id] = self.scope.get(t.id, MISSING)
                        keep = self.depth == 0 and t.id in self.comprehension_only
                        self.scope[t.id] = t.id if keep else self.namer.fresh(t.id)

            def body():
                if not g.ifs:
                    return level(j + 1)
                test = self.expr(g.ifs[0]) if len(g.ifs) == 1 else \
                    self.expr(ast.BoolOp(op=ast.And(), values=g.ifs, lineno=g.ifs[0].lineno,
                                         col_offset=g.ifs[0].col_offset))
                self.emit(If(test, self.sub_lowered(lambda: level(j + 1)), [], self.loc(g.ifs[0])))
            st = ast.For(target=g.target, iter=g.iter, body=[], orelse=[],
                         lineno=node.lineno, col_offset=node.col_offset)
            self.stmt_For(st, lower_body=body, before_bind=own_names)
        try:
            level(0)
        finally:
            for name, old in renamed.items():
                if old is MISSING:
                    del self.scope[name]
                else:
                    self.scope[name] = old


def _rebound_in(body) -> set:
    """Names a loop body rebinds (assignment, augmented assignment, for target) or appends to."""
    out = set()
    for node in ast.walk(ast.Module(list(body), [])):
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For)):
            targets = [node.target]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr == "append" and isinstance(node.func.value, ast.Name):
            out.add(node.func.value.id)
        for t in targets:
            out |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)
                    and isinstance(n.ctx, ast.Store)}
    return out
