"""The emitter: IR to readable Python source, one provenance comment per source line.

No decisions are made here beyond presentation: every statement becomes one line
via ``ast.unparse`` of its table entry's emit form; compiler temporaries (the lowering's and
the R-transform's three-address temporaries alike) that are read exactly once, in the same
block, are folded back into the expression that reads them, so the generated code
reads like the user's (``y1 = sigmoid(W1 @ X + b1[:, None])``) and like the paper
(``R_y1 = y1 * (1.0 - y1) * (R_W1 @ X + R_b1[:, None])``).
"""

from __future__ import annotations

import ast
import copy
from collections import Counter

from ..errors import RopInternalError
from ..ir.nodes import (Append, Assign, Break, Continue, Effect, For, If, Return, SetItem, Var, While,
                        defined_names, operand_ast, walk)
from ..ir.storage import Storage
from .gemm import matmul_to_gemm, rank_of_expr

INDENT = "    "


def _placeholder(t) -> ast.expr:
    """An element of the right rank for a list created as ``[None] * n``."""
    if t == 0:
        return ast.Constant(0.0)
    if isinstance(t, int):
        return ast.parse("np.empty(" + repr((0,) * t) + ")", mode="eval").body
    return None


def _trivial(expr) -> bool:
    """A name, a constant, or subscripts / ``.T`` of them: free to write out at each use."""
    if isinstance(expr, (ast.Name, ast.Constant)):
        return True
    if isinstance(expr, ast.Subscript):
        return _trivial(expr.value) and _trivial(expr.slice)
    if isinstance(expr, ast.Attribute):
        return expr.attr == "T" and _trivial(expr.value)
    if isinstance(expr, ast.Tuple):
        return all(_trivial(e) for e in expr.elts)
    if isinstance(expr, ast.Slice):
        return all(p is None or _trivial(p) for p in (expr.lower, expr.upper, expr.step))
    return False


_ARITH = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)


def _arith_reads(em, st, arith, other):
    """Sort the names ``st`` reads into ``arith`` (an operand of ``+ - * / **`` or negation
    in its right-hand side) and ``other`` (anything else: a call's argument, an index, a
    test)."""
    if not isinstance(st, (Assign, SetItem, Append)):
        other.update(st.reads())
        return
    try:
        rhs = em.rhs(st)
    except Exception:  # reported where the statement is emitted
        other.update(st.reads())
        return
    if isinstance(st, SetItem):
        other.update(n.id for n in ast.walk(operand_ast(st.index)) if isinstance(n, ast.Name))
    for node in ast.walk(ast.Expr(rhs)):
        kids = ([node.left, node.right] if isinstance(node, ast.BinOp)
                and isinstance(node.op, _ARITH) else [node.operand]
                if isinstance(node, ast.UnaryOp) else [])
        for k in kids:
            if isinstance(k, ast.Name):
                arith.add(k.id)
        for k in ast.iter_child_nodes(node):
            if isinstance(k, ast.Name) and not any(k is x for x in kids):
                other.add(k.id)


def _arithmetic(expr, budget: int):
    """The operations left of ``budget`` when ``expr`` is ``+ - *``, a square and negation
    of free operands (:func:`_trivial`) with at most ``budget`` operations, else None."""
    if _trivial(expr):
        return budget
    if budget <= 0:
        return None
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub):
        return _arithmetic(expr.operand, budget - 1)
    if isinstance(expr, ast.BinOp) and (
            isinstance(expr.op, (ast.Add, ast.Sub, ast.Mult))
            or isinstance(expr.op, ast.Pow) and isinstance(expr.right, ast.Constant)
            and expr.right.value == 2):
        left = _arithmetic(expr.left, budget - 1)
        return None if left is None else _arithmetic(expr.right, left)
    return None


class _Fold(ast.NodeTransformer):
    def __init__(self, pending):
        self.pending = pending
        self.used = []

    def visit_Name(self, node):
        if node.id in self.pending:
            self.used.append(node.id)
            return self.visit(copy.deepcopy(self.pending[node.id][0]))
        return node


class Emitter:
    fuse_gemm = True  # matrix products as rt.gemm (backend/gemm.py); off in tests

    def __init__(self, prims, types, temps: set):
        self.prims = prims
        self.types = types
        self.temps = temps
        self.rank = rank_of_expr(types)

    def value(self, *exprs, st=None) -> str:
        """The source of an assigned or returned value (several: comma-separated); its
        matrix products go to BLAS as ``rt.gemm(...)`` calls, with the expression as written
        kept in a trailing comment.  ``st``: the assignment the value is for (see
        :meth:`_accumulate`)."""
        code, comment = self.value_parts(*exprs, st=st)
        return code + comment

    def value_parts(self, *exprs, st=None) -> tuple[str, str]:
        """``value`` as (code, trailing comment), for a value inside a call: ``xs.append(...)``."""
        written = ", ".join(ast.unparse(e) for e in exprs)
        if not self.fuse_gemm:
            return written, ""
        fused = [matmul_to_gemm(e, self.rank) for e in exprs]
        if all(f is None for f in fused):
            return written, ""
        if st is not None and len(fused) == 1 and fused[0] is not None:
            self._accumulate(st, fused[0])
        return ", ".join(ast.unparse(e if f is None else f) for e, f in zip(exprs, fused)), \
            f"  # = {written}"

    def _accumulate(self, st, call):
        """``dW = dW + x.T @ d`` (``dW += x.T @ d`` as written, or its R) as
        ``rt.gemm(x.T, d, into=dW)``: BLAS adds the product into dW's array instead of a new
        one filled with a copy of dW, as NumPy's ``+=`` does, when nothing else can see that
        array (another name, a list, a tuple, the caller: ir/storage.py) and no operand reads
        it; its old value is not read again, since the statement rebinds the name."""
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and call.func.attr == "gemm" and isinstance(st, Assign)):
            return
        kw = next((k for k in call.keywords if k.arg == "c"), None)
        if kw is None or not (isinstance(kw.value, ast.Name) and kw.value.id == st.target):
            return
        if self.types.get(st.target) != 2 or any(
                isinstance(n, ast.Name) and n.id == st.target for a in call.args
                for n in ast.walk(a)):
            return
        seen = self.store.holders_at(st, st.target)
        if seen - self.store.at(st, st.target) or seen & self.store.params:
            return
        kw.arg = "into"

    # ------------------------------------------------------------------ per function
    def function(self, fn, name, r_mode: bool) -> list[str]:
        self.r_mode = r_mode
        self.store = Storage(fn, self.types)  # a write is a change to every alias it reaches
        self.uses = Counter()
        self.defs = Counter()
        self.left = Counter()  # uses of a pending temporary not yet folded
        self.rvalues = set(fn.rnames.values())
        self.arith_only = set()  # names read only as operands of elementwise arithmetic
        other = set()
        for st in walk(fn.body):
            for v in st.reads():
                self.uses[v] += 1
            if isinstance(st, Assign):
                self.defs[st.target] += 1
            _arith_reads(self, st, self.arith_only, other)
        self.arith_only -= other
        lines = [f"def {name}({', '.join(fn.params)}):"]
        lines += self.block(fn.body, 1)
        return lines

    def foldable(self, st, folded=None) -> bool:
        """A temporary defined once and read once, or a few times when writing it out at
        each reader costs nothing (``Ws[i]``, ``acts[i].T``)."""
        if not (isinstance(st, Assign) and st.target in self.temps and self.defs[st.target] == 1):
            return False
        n = self.uses[st.target]
        if n == 1:
            return True
        rhs = self.rhs(st)
        t = self.types.get(st.target)
        cheap = _trivial(rhs) or (t == 0 and isinstance(rhs, ast.BinOp)
                                  and isinstance(rhs.op, (ast.Add, ast.Sub))
                                  and _trivial(rhs.left) and _trivial(rhs.right))
        # an array computed by a short arithmetic chain (``1.0 - a ** 2``, the tanh slope
        # both d and R{d} multiply by) is recomputed in each reader's loop, not stored:
        # Numba fuses each reader into one loop, and a stored array is a write and two
        # reads of memory more, for the same values
        cheap = cheap or (isinstance(t, int) and t >= 1 and st.target in self.arith_only
                          and _arithmetic(rhs if folded is None else folded, 3) is not None)
        return 1 < n <= 3 and cheap

    def block(self, stmts, depth, tail_test=None, inherit=None, line=None):
        """Lines of a block; with ``tail_test``, also returns the test with folded temps.
        ``inherit``: temporaries of the enclosing block read only here; ``line``: the source
        line whose comment is already printed just above."""
        pad = INDENT * depth
        lines: list[str] = []
        pending: dict = dict(inherit or {})  # temp name -> (expr, names read, stmt)
        last_line = [line]

        def put(text, st):
            if st is not None and st.loc.lineno != last_line[0]:
                lines.append(f"{pad}# {st.loc.short()}: {st.loc.text}")
                last_line[0] = st.loc.lineno
            lines.append(pad + text)

        def flush(names=None):
            for k in list(pending):
                if names is None or k in names:
                    expr, _, st0 = pending.pop(k)
                    put(f"{k} = {self.value(expr, st=st0)}", st0)

        def fold(expr):
            f = _Fold(pending)
            out = f.visit(copy.deepcopy(expr))
            for k in f.used:
                self.left[k] -= 1
                if self.left[k] <= 0:
                    pending.pop(k, None)
            return out

        def guard(defined):
            """Flush pending expressions that read a name about to change."""
            flush([k for k, (_, reads, _) in pending.items() if reads & defined])

        for st in stmts:
            if isinstance(st, (Assign, SetItem, Append)):
                rhs = fold(self.rhs(st))
                if isinstance(st, Assign):
                    guard({st.target})
                    if self.foldable(st, rhs):
                        self.left[st.target] = self.uses[st.target]
                        pending[st.target] = (rhs, {n.id for n in ast.walk(rhs)
                                                    if isinstance(n, ast.Name)}, st)
                        continue
                    put(f"{st.target} = {self.value(rhs, st=st)}", st)
                elif isinstance(st, SetItem):
                    idx = fold(operand_ast(st.index))
                    guard(self.store.holders(st.obj))  # `b = a; a[:] = f(b)`: R reads old b
                    if self.is_mask(st.index):  # dx[x <= 0] = 0: Numba masks in 1-d only
                        put(f"rt.setitem_mask({st.obj}, {ast.unparse(idx)}, {self.value(rhs)})", st)
                    else:
                        put(f"{st.obj}[{_unparse_index(idx)}] = {self.value(rhs)}", st)
                else:
                    guard(self.store.holders(st.obj))
                    code, comment = self.value_parts(rhs)
                    put(f"{st.obj}.append({code}){comment}", st)
                continue
            if isinstance(st, Return):
                val = fold(operand_ast(st.value)) if st.value is not None else ast.Constant(None)
                rval = None
                if self.r_mode:  # the R-values on lines of their own, the operations of the
                    # R-formula (the builder's temporaries) folded into the return
                    flush([k for k, (_, _, s0) in pending.items()
                           if not s0.is_r or k in self.rvalues])
                    rval = fold(operand_ast(st.r_value))
                flush()
                if self.r_mode:
                    put(f"return {self.value(val, rval)}", st)
                else:
                    put(f"return {self.value(val)}", st)
                continue
            if isinstance(st, Effect):
                args = [fold(operand_ast(a)) for a in st.args]
                flush()
                call = f"{st.call}({', '.join(ast.unparse(a) for a in args)})"
                if st.note:  # a statement of rop's own: its comment, not a source line's
                    put(f"{call}  # {st.note}", None)
                else:
                    put(call, st)
                continue
            if isinstance(st, Break):
                flush(); put("break", st); continue
            if isinstance(st, Continue):
                flush(); put("continue", st); continue
            if isinstance(st, For):
                header = self.range_header(st, fold)
                flush()
                put(header, st)
                lines.extend(self.block(st.body, depth + 1) or [pad + INDENT + "pass"])
                last_line[0] = None
                continue
            if isinstance(st, If):
                test = fold(operand_ast(st.test))
                give, keep = self.split_pending(st, pending)
                flush()
                put(f"if {ast.unparse(test)}:", st)
                self.if_tail(st, test, depth, lines, give, last_line[0])
                pending.update(keep)
                last_line[0] = None
                continue
            if isinstance(st, While):
                flush()
                cond_lines, test = self.block(st.cond, depth + 2, tail_test=st.test)
                if not [ln for ln in cond_lines if not ln.strip().startswith("#")]:
                    put(f"while {ast.unparse(test)}:", st)
                    lines.extend(self.block(st.body, depth + 1) or [pad + INDENT + "pass"])
                else:
                    put("while True:", st)
                    lines.extend(ln[len(INDENT):] for ln in cond_lines)
                    lines.append(pad + INDENT + f"if not ({ast.unparse(test)}):")
                    lines.append(pad + INDENT * 2 + "break")
                    lines.extend(self.block(st.body, depth + 1))
                last_line[0] = None
                continue
            raise RopInternalError(f"emitter: unknown statement {type(st).__name__}")
        # a temporary written out in both branches of an if has no use left in this one
        shared = {k for k in pending if (inherit or {}).get(k) is pending[k] and self.left[k] > 0}
        if tail_test is not None:
            test = fold(operand_ast(tail_test))
            flush([k for k in pending if k not in shared])
            return lines, test
        flush([k for k in pending if k not in shared])
        return lines

    def split_pending(self, st, pending):
        """Take out of ``pending`` the temporaries read in one branch only (each goes into its
        branch) and those read after the ``if`` that it does not disturb (they stay pending);
        pure expressions, so only where they are evaluated changes, never how often."""
        plain_else = not (st.orelse and isinstance(st.orelse[-1], If))
        reads = [Counter(n for s in walk(b) for n in s.reads()) for b in (st.body, st.orelse)]
        changed = {n for s in walk(st.body + st.orelse) for n in defined_names(s)}
        give, keep = ({}, {}), {}
        for k, entry in list(pending.items()):
            in_body, in_else = (r[k] for r in reads)
            if (entry[1] | {k}) & changed:
                continue
            if in_body == self.left[k] and not in_else:
                give[0][k] = pending.pop(k)
            elif in_else == self.left[k] and not in_body and plain_else:
                give[1][k] = pending.pop(k)
            elif in_body and in_else and in_body + in_else == self.left[k] and plain_else \
                    and _trivial(entry[0]):
                give[0][k] = give[1][k] = pending.pop(k)
            elif not in_body and not in_else:
                keep[k] = pending.pop(k)
        return give, keep

    def if_tail(self, st, test, depth, lines, give=({}, {}), line=None):
        pad = INDENT * depth
        lines.extend(self.block(st.body, depth + 1, inherit=give[0], line=line)
                     or [pad + INDENT + "pass"])
        orelse = st.orelse
        while orelse and isinstance(orelse[-1], If):  # else: if ... reads as elif
            inner = orelse[-1]
            test = self.fold_prefix(orelse[:-1], operand_ast(inner.test))
            if test is None:
                break
            lines.append(f"{pad}elif {ast.unparse(test)}:")
            lines.extend(self.block(inner.body, depth + 1) or [pad + INDENT + "pass"])
            orelse = inner.orelse
        if orelse:
            lines.append(pad + "else:")
            lines.extend(self.block(orelse, depth + 1, inherit=give[1] if orelse is st.orelse else None,
                                    line=line) or [pad + INDENT + "pass"])

    def fold_prefix(self, prefix, test):
        """``test`` with the temporaries computed just for it folded in, or None when the
        prefix does anything else (then the else-branch is printed as it is)."""
        pending = {}
        for st in prefix:
            if not self.foldable(st) or self.uses[st.target] != 1:
                return None
            f = _Fold(pending)
            pending[st.target] = (f.visit(copy.deepcopy(self.rhs(st))), None, st)
            for k in f.used:
                pending.pop(k)
        f = _Fold(pending)
        out = f.visit(copy.deepcopy(test))
        for k in f.used:
            pending.pop(k)
        return None if pending else out

    def range_header(self, st, fold):
        start, stop, step = (fold(operand_ast(p)) for p in (st.start, st.stop, st.step))
        if isinstance(step, ast.Constant) and step.value == 1:
            if isinstance(start, ast.Constant) and start.value == 0:
                args = [stop]
            else:
                args = [start, stop]
        else:
            args = [start, stop, step]
        return f"for {st.var} in range({', '.join(ast.unparse(a) for a in args)}):"

    def is_mask(self, index) -> bool:
        """An index that is one array of rank >= 2: a boolean mask (or NumPy's fancy index),
        emitted through rt.setitem_mask / rt.getitem_mask (runtime/masks.py)."""
        if isinstance(index, ast.Name):
            t = self.types.get(index.id)
        elif isinstance(index, Var):
            t = self.types.get(index.name)
        else:
            return False
        return isinstance(t, int) and not isinstance(t, bool) and t >= 2

    def rhs(self, st) -> ast.expr:
        if isinstance(st, (SetItem, Append)):
            return operand_ast(st.value)
        if st.prim == "list":
            return ast.List(elts=[operand_ast(a) for a in st.args], ctx=ast.Load())
        if st.prim == "list_repeat":
            t = self.types.get(st.target)
            elem = _placeholder(t[1]) if isinstance(t, tuple) else None
            if elem is None:
                from ..errors import RopSyntaxError
                raise RopSyntaxError(
                    f"cannot tell what `{st.target}` holds: nothing of known rank is stored in it",
                    st.loc.filename, st.loc.lineno, st.loc.col, st.loc.text,
                    "store arrays of one rank in a list made with `[None] * n`")
            return ast.BinOp(left=ast.List(elts=[elem], ctx=ast.Load()), op=ast.Mult(),
                             right=operand_ast(st.args[1]))
        if st.prim == "shape" and isinstance(st.args[0], Var) and self.types.get(st.args[0].name) == 0:
            return ast.Tuple(elts=[], ctx=ast.Load())  # a number's shape (`cost.shape == ()`)
        if st.prim == "getitem" and self.is_mask(st.args[1]):  # R_x[mask] too, after the builder
            return ast.Call(func=ast.Attribute(value=ast.Name("rt", ast.Load()), attr="getitem_mask",
                                               ctx=ast.Load()),
                            args=[operand_ast(st.args[0]), operand_ast(st.args[1])], keywords=[])
        return emit_ast(self.prims[st.prim], st)


def emit_ast(prim, st) -> ast.expr:
    """The expression the table entry ``prim`` emits for the statement ``st``."""
    if st.prim == "call":  # f(args..., k=v...), f a constant operand
        return prim.emit({"f": st.args[0], "args": [operand_ast(a) for a in st.args[1:]],
                          "kwargs": [(k, operand_ast(a)) for k, a in st.kwargs]})
    return prim.emit({p: operand_ast(a) for p, a in zip(prim.params, st.args)})


def formula_source(st, fn, inline: dict) -> str:
    """An R-statement's value as the rule's formula reads (``y1 * (1.0 - y1) * R_t3``): the
    statements of ``inline`` (temporary -> statement) written into it, for the dataflow
    graph's labels."""
    from ..pipeline import prims_for
    prims = prims_for(fn)

    def rhs(s):
        if isinstance(s, (SetItem, Append)):
            return operand_ast(s.value)
        if s.prim == "list":
            return ast.List(elts=[operand_ast(a) for a in s.args], ctx=ast.Load())
        return emit_ast(prims[s.prim], s)

    class Inline(ast.NodeTransformer):
        def visit_Name(self, node):
            return self.visit(rhs(inline[node.id])) if node.id in inline else node
    return ast.unparse(Inline().visit(rhs(st)))


def _unparse_index(idx: ast.expr) -> str:
    if isinstance(idx, ast.Tuple) and idx.elts:
        return ", ".join(ast.unparse(e) for e in idx.elts)
    return ast.unparse(idx)
