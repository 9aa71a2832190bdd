"""Lowering: a validated Python ``ast`` to rop's IR (three-address code in structured regions).

This is also where the *meaning* of names is checked (which NumPy function, which
helper, which parameter is written to): the grammar in ``grammar/rop.lark`` decides
what may be written, this module decides what it refers to.  Every refusal is a
:class:`RopSyntaxError` at the user's line and column.
"""

from __future__ import annotations

import ast
import inspect
import keyword
import textwrap
import types

import numpy as np

from ..errors import RopSyntaxError
from ..ir.nodes import (Append, Assign, Break, Const, Continue, For, Function, If, Loc, Return,
                        SetItem, SliceOp, TupleOp, Var, While)
from ..ir.storage import ALIAS_PRIMS, Storage, check_writes
from ..rules.table import RULES
from . import names as N

SUPPORTED_HINT = ("rop compiles a subset of Python/NumPy: see grammar/README.md and the rule "
                  "table in docs/rules.md")

# results of these primitives are new arrays that the function owns (safe to write into)
_FRESH = {"zeros", "ones", "empty", "full", "zeros_like", "ones_like", "eye", "array_copy",
          "list_repeat", "list", "arange"}


class Namer:
    """Deterministic fresh names that cannot collide with any user name or keyword."""

    def __init__(self, taken):
        self.taken = set(taken) | set(keyword.kwlist) | {"np", "rt", "math"}
        self.counts: dict[str, int] = {}
        self.temp_names: set[str] = set()

    def fresh(self, base: str) -> str:
        if base not in self.taken:
            self.taken.add(base)
            return base
        n = self.counts.get(base, 0)
        while True:
            n += 1
            cand = f"{base}_{n}"
            if cand not in self.taken:
                self.counts[base] = n
                self.taken.add(cand)
                return cand

    def temp(self) -> str:
        n = self.counts.get("#t", 0)
        while True:
            n += 1
            cand = f"t{n}"
            if cand not in self.taken:
                self.counts["#t"] = n
                self.taken.add(cand)
                self.temp_names.add(cand)
                return cand


def source_of(fn) -> tuple[str, str, int]:
    """(dedented source, filename, first line number) of a function (see ``indent_of``)."""
    try:
        lines, first = inspect.getsourcelines(fn)
    except (OSError, TypeError) as exc:
        raise RopSyntaxError(f"cannot read the source of {getattr(fn, '__name__', fn)!r}: {exc}",
                             getattr(getattr(fn, '__code__', None), 'co_filename', '<unknown>'), 0, 0,
                             hint="rop reads the function's source file; define it in a .py file") from None
    return textwrap.dedent("".join(lines)), inspect.getsourcefile(fn) or "<unknown>", first


def indent_of(fn) -> int:
    """Columns ``textwrap.dedent`` removed from a nested function's source."""
    try:
        lines, _ = inspect.getsourcelines(fn)
    except (OSError, TypeError):
        return 0
    first = next((ln for ln in lines if ln.strip()), "")
    return len(first) - len(first.lstrip())


class Lowerer:
    """Lowers one function body; helpers are inlined through a child Lowerer sharing the output."""

    def __init__(self, fn_ast: ast.FunctionDef, globs: dict, filename: str, first_line: int,
                 src_lines: list[str], namer: Namer, helpers: dict, scope=None, depth=0, col0=0):
        self.fn_ast = fn_ast
        self.globs = globs
        self.filename = filename
        self.line0 = first_line - 1
        self.col0 = col0  # indentation removed from a nested function's source
        self.src_lines = src_lines
        self.namer = namer
        self.helpers = helpers  # name -> Function (elementwise helpers emitted as functions)
        self.scope: dict[str, str] = scope if scope is not None else {}
        self.params: set[str] = set()
        self.views: set[str] = set()   # locals that may alias a parameter
        self.rebound: set[str] = set()  # helper parameters given a new value
        # names used only inside comprehensions keep their spelling in the generated code
        self.comprehension_only = _comprehension_only(fn_ast)
        self.lists: set[str] = set()    # IR names holding a list the function built
        self.strided: set[str] = set()  # IR names that may hold a non-C-contiguous view
        self.list_copies: dict = {}  # the copies `contiguous` made -> the view they copy
        self.result_var = None  # inlined helper with several returns: where they all go
        self.depth = depth
        self.out: list = []
        self.result = None  # for inlined helpers: the operand of the final return
        # module-level values compiled in as constants (helpers' included: one dict shared
        # with child Lowerers): (id(globals), name) -> (globals, name, value); see capture
        self.captured: dict = {}

    # ------------------------------------------------------------------ diagnostics
    def loc(self, node) -> Loc:
        ln = getattr(node, "lineno", 1)
        text = self.src_lines[ln - 1] if 0 < ln <= len(self.src_lines) else ""
        return Loc(self.filename, ln + self.line0, getattr(node, "col_offset", 0) + 1 + self.col0,
                   text.strip())

    def error(self, node, msg, hint=SUPPORTED_HINT):
        loc = self.loc(node)
        ln = getattr(node, "lineno", 1)
        line = self.src_lines[ln - 1] if 0 < ln <= len(self.src_lines) else ""
        line = " " * self.col0 + line if line.strip() else line
        raise RopSyntaxError(msg, self.filename, loc.lineno, loc.col, line, hint)

    # ------------------------------------------------------------------ emission helpers
    def emit(self, stmt):
        self.out.append(stmt)
        if isinstance(stmt, Assign):
            self._note_layout(stmt.target, stmt.prim, stmt.args)
        return stmt

    def _note_layout(self, name, prim, args):
        """Follow which names hold lists and which may hold strided views (``X[:, 0]``,
        ``X.T``): a list stores its elements with one Numba type, C-contiguous like the
        placeholders of ``[None] * n``, so a view is stored as a copy (see ``contiguous``)."""
        src = args[0].name if args and isinstance(args[0], Var) else None
        is_list = prim in ("list", "list_repeat") or (prim == "copy" and src in self.lists)
        (self.lists.add if is_list else self.lists.discard)(name)
        strided = prim == "transpose" or (prim == "copy" and src in self.strided) or \
            (prim == "getitem" and src is not None and src not in self.lists
             and _has_slice(args[1]))
        (self.strided.add if strided else self.strided.discard)(name)

    def contiguous(self, val, node):
        """``val``, or ``val.copy()`` where it may be a strided view: the value going into a
        list.  The copy has the same values (rop never writes into list elements in place);
        without it Numba refuses to store an 'A' or 'F' array into a list of C arrays."""
        if isinstance(val, Var) and val.name in self.strided:
            copy = self.assign("array_copy", (val,), node)
            self.list_copies[copy.name] = val.name  # ir/storage.py: NumPy would keep the view
            return copy
        return val

    def assign(self, prim, args, node, target=None):
        target = target or self.namer.temp()
        self.emit(Assign(target, prim, tuple(args), self.loc(node)))
        return Var(target)

    def local(self, name: str) -> str:
        """The IR name of a user variable (helpers' locals are renamed apart)."""
        if name not in self.scope:
            self.scope[name] = name if self.depth == 0 else self.namer.fresh(name)
        return self.scope[name]

    # ------------------------------------------------------------------ functions
    def lower_function(self) -> Function:
        fn = self.fn_ast
        a = fn.args
        if a.vararg or a.kwarg or a.kwonlyargs or a.posonlyargs:
            self.error(fn, "*args, **kwargs and keyword-only parameters are not supported",
                       "list every parameter by name")
        params = [p.arg for p in a.args]
        for p in params:
            self.scope[p] = p
        self.params = set(params)
        defaults = {}
        for p, d in zip(params[len(params) - len(a.defaults):], a.defaults):
            defaults[p] = self.static_value(d)
        self.block(fn.body)
        return Function(fn.name, params, self.out, self.loc(fn), self.filename,
                        helpers=self.helpers, defaults=defaults, list_copies=self.list_copies)

    def static_value(self, node):
        try:
            return ast.literal_eval(node)
        except ValueError:
            self.error(node, "a default value must be a constant")

    # ------------------------------------------------------------------ statements
    def block(self, body):
        for i, st in enumerate(body):
            if i == 0 and isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant) \
                    and isinstance(st.value.value, str):
                continue  # docstring
            self.stmt(st)

    def stmt(self, st):
        meth = getattr(self, "stmt_" + type(st).__name__, None)
        if meth is None:
            self.error(st, f"`{type(st).__name__}` statements are not supported")
        meth(st)

    def stmt_Pass(self, st):
        pass

    def stmt_Expr(self, st):
        v = st.value
        if isinstance(v, ast.Constant) and isinstance(v.value, str):
            return  # a string used as a comment
        if isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute) and v.func.attr == "append":
            obj = v.func.value
            if not isinstance(obj, ast.Name):
                self.error(obj, "append only to a list held in a local variable")
            if obj.id in self.params:
                self.error(obj, f"cannot append to parameter `{obj.id}`: rop does not change its "
                                "arguments", "build a new list inside the function, e.g. "
                                "`ys = [None] * n` or `ys = [first]`, and append to that")
            if len(v.args) != 1 or v.keywords:
                self.error(v, "append takes exactly one argument")
            val = self.contiguous(self.expr(v.args[0]), st)
            self.emit(Append(self.local(obj.id), val, self.loc(st)))
            return
        if isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute) and \
                v.func.attr in _LIST_METHODS:
            self.error(v.func, f"list method `.{v.func.attr}()` is not supported (lists grow only "
                               "by `append`)", _LIST_METHODS[v.func.attr].replace(
                               "xs", ast.unparse(v.func.value)))
        helper = self.resolve_static(v.func) if isinstance(v, ast.Call) else _MISSING
        if isinstance(helper, types.FunctionType) and N.primitive_of(helper) is None:
            self.capture(v.func, helper)
            self.call_helper(helper, v, None, statement=True)  # called for what it writes
            return
        if isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id == "print":
            self.error(st, "print(...) is not supported in compiled code",
                       "return the value and print it outside the function, or debug with "
                       "mode='python' and a breakpoint in the generated file")
        self.error(st, "an expression statement has no effect in compiled code",
                   "only `list.append(x)` and calls of your own helper functions may stand "
                   "alone; assign other results to a variable")

    def stmt_Assign(self, st):
        value_node = st.value
        if len(st.targets) > 1:  # a = b = expr: the first name holds it, the others copy it
            val = self.expr(value_node)
            for t in st.targets:
                self.bind(t, val, st)
                if isinstance(t, ast.Name):
                    val = Var(self.local(t.id))
            return
        target = st.targets[0]
        if isinstance(target, (ast.Tuple, ast.List)) and isinstance(value_node, (ast.Tuple, ast.List)) \
                and len(target.elts) == len(value_node.elts):
            vals = [self.expr(e) for e in value_node.elts]  # evaluate all before binding (swap)
            bound = {self.local(t.id) for t in target.elts if isinstance(t, ast.Name)}
            # `a, b = b, a`: a name read on the right and bound on the left is held in a
            # temporary first, or the second binding would read the first's new value
            vals = [self.assign("copy", (v,), st) if isinstance(v, Var) and v.name in bound
                    else v for v in vals]
            for t, v in zip(target.elts, vals):
                self.bind(t, v, st)
            return
        if isinstance(target, ast.Name):
            val = self.expr(value_node, target=self.local(target.id) if self._assignable(target) else None)
            self.bind(target, val, st)
            return
        self.bind(target, self.expr(value_node), st)

    def _assignable(self, target):
        """Rebinding a parameter is fine (``a = a * 0.5``): the caller's object is untouched.
        In an inlined helper the parameter is the caller's variable, so it gets a new local."""
        if target.id in self.params and self.depth > 0 and target.id not in self.rebound:
            self.scope[target.id] = self.namer.fresh(target.id)
            self.rebound.add(target.id)
        return True

    def stmt_AnnAssign(self, st):
        if st.value is None:
            return
        self.stmt_Assign(ast.Assign(targets=[st.target], value=st.value, lineno=st.lineno,
                                    col_offset=st.col_offset))

    def bind(self, target, val, st):
        """Bind an operand to an assignment target (name, tuple pattern or subscript)."""
        if isinstance(target, ast.Name):
            self._assignable(target)
            name = self.local(target.id)
            if isinstance(val, Var) and val.name == name:
                last = next((s for s in reversed(self.out) if isinstance(s, Assign)
                             and s.target == name), None)
                if last is not None:
                    self._track_view(name, last.prim, last.args)
                return
            if self.out and isinstance(val, Var) and isinstance(self.out[-1], Assign) \
                    and self.out[-1].target == val.name and val.name.startswith("t") \
                    and val.name not in self.scope.values():
                self.out[-1].target = name  # `t1 = a + b; x = t1` becomes `x = a + b`
                self._note_layout(name, self.out[-1].prim, self.out[-1].args)
                self._track_view(name, self.out[-1].prim, self.out[-1].args)
                return
            self.emit(Assign(name, "copy", (val,), self.loc(st)))
            self._track_view(name, "copy", (val,))
            return
        if isinstance(target, (ast.Tuple, ast.List)):
            if isinstance(val, TupleOp):
                if len(val.items) != len(target.elts):
                    self.error(target, f"cannot unpack {len(val.items)} values into "
                                       f"{len(target.elts)} names")
                for t, v in zip(target.elts, val.items):
                    self.bind(t, v, st)
                return
            for i, t in enumerate(target.elts):
                if isinstance(t, ast.Starred):
                    self.error(t, "starred unpacking is not supported")
                self.bind(t, self.assign("getitem", (val, Const(i)), st), st)
            return
        if isinstance(target, ast.Subscript):
            obj = target.value
            root = obj
            while isinstance(root, (ast.Subscript, ast.Attribute)):
                root = root.value
            if isinstance(root, ast.Name) and root.id in self.params:
                self.check_writable(root)
            if not isinstance(obj, ast.Name):
                self.error(obj, "assignment into an element of a list element (`xs[i][j] = v`) "
                                "is not supported",
                           "compute the new element and store it whole: `xs[i] = new_array`")
            self.check_writable(obj)
            idx = self.index(target.slice)
            if self.local(obj.id) in self.lists:
                val = self.contiguous(val, st)
            self.emit(SetItem(self.local(obj.id), idx, val, self.loc(st)))
            return
        if isinstance(target, ast.Attribute):
            self.error(target, "assigning to an attribute is not supported")
        self.error(target, "unsupported assignment target")

    def _track_view(self, name, prim, args):
        aliasing = prim in ALIAS_PRIMS and args \
            and isinstance(args[0], Var)
        if aliasing and (args[0].name in self.params or args[0].name in self.views):
            self.views.add(name)
        elif prim in _FRESH or not aliasing:
            self.views.discard(name)

    def check_writable(self, obj):
        # a helper's parameter is the caller's variable: the memory pass (ir/storage.py)
        # refuses the write if that is an argument of the function rop compiles
        if obj.id in self.params and self.depth == 0:
            self.error(obj, f"in-place change to parameter `{obj.id}` is not supported",
                       f"rop never changes its arguments: work on a copy, e.g. "
                       f"`{obj.id}2 = {obj.id}.copy()`")
        if self.local(obj.id) in self.views:
            self.error(obj, f"`{obj.id}` may be a view of a parameter; writing into it would "
                            "change the argument", f"use `{obj.id} = ... .copy()` first")

    def stmt_AugAssign(self, st):
        opname = _BINOPS.get(type(st.op))
        if opname is None:
            self.error(st, f"augmented operator {type(st.op).__name__} is not supported")
        t = st.target
        if isinstance(t, ast.Name):
            cur = self.name_operand(t)
            rhs = self.expr(st.value)
            # in place on an array another name (or the caller) can see: ir/inplace.py decides,
            # once ranks and storage are known; a rebinding otherwise, as on numbers
            self.emit(Assign(self.local(t.id), opname, (cur, rhs), self.loc(st), inplace=True))
            self.views.discard(self.local(t.id))
            return
        if isinstance(t, ast.Subscript):
            if not isinstance(t.value, ast.Name):
                self.error(t, "augmented assignment into a subscript of a local variable only")
            self.check_writable(t.value)
            obj = self.local(t.value.id)
            idx = self.index(t.slice)
            cur = self.assign("getitem", (Var(obj), idx), st)
            rhs = self.expr(st.value)
            if obj in self.lists:  # `hs[k] += x` updates the array in slot k, as NumPy does
                self.emit(Assign(cur.name, opname, (cur, rhs), self.loc(st), inplace=True))
                new = cur
            else:  # an array's elements: read, compute, write back
                new = self.assign(opname, (cur, rhs), st)
            self.emit(SetItem(obj, idx, new, self.loc(st)))
            return
        self.error(t, "unsupported augmented-assignment target")

    def stmt_Return(self, st):
        val = None if st.value is None else self.expr(st.value)
        if self.depth > 0:
            val = val if val is not None else Const(None)
            if self.result_var is None:
                self.result = val
            else:
                self.bind_temp(self.result_var, val, st)
                self.result = Var(self.result_var)
            return
        self.emit(Return(val, self.loc(st)))

    def stmt_If(self, st):
        test = self.expr(st.test)
        body = self.sub_block(st.body)
        orelse = self.sub_block(st.orelse)
        self.emit(If(test, body, orelse, self.loc(st)))

    def sub_block(self, stmts):
        return self.sub_lowered(lambda: self.block(stmts))

    def stmt_For(self, st, lower_body=None, before_bind=None):
        """A ``for`` statement, or one clause of a comprehension: then ``lower_body`` lowers
        what the clause encloses and ``before_bind`` gives its loop variables their own names
        (after the iterable is evaluated in the enclosing scope, as in Python 3)."""
        if st.orelse:
            self.error(st, "`for ... else` is not supported")
        it = st.iter
        backward = False
        if _is_call_to(it, "reversed", self.globs):
            if len(it.args) != 1 or it.keywords:
                self.error(it, "reversed takes one argument")
            backward, it = True, it.args[0]
        if not _is_call_to(it, "range", self.globs):
            return self.for_each(st, lower_body, before_bind)
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
        saved, self.out = self.out, []
        try:
            lower()
            return self.out
        finally:
            self.out = saved

    def for_each(self, st, lower_body=None, before_bind=None):
        """``for x in xs``, ``for i, x in enumerate(xs)``, ``for W, b in zip(Ws, bs)`` and
        ``for x in reversed(xs)``, over lists, tuples or arrays (rows), become a counted loop
        ``for k in range(len(xs)): x = xs[k]``.  That is the form the R-transform
        (R{xs[k]} = R_xs[k]), the slot analysis and the release pass read, so a loop written
        either way compiles to the same code."""
        it, backward = st.iter, False
        if _is_call_to(it, "reversed", self.globs):
            backward, it = True, it.args[0]
            if _is_call_to(it, "zip", self.globs) or _is_call_to(it, "enumerate", self.globs):
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
            if _is_call_to(node, name, self.globs):
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
        if _is_call_to(node, "range", self.globs):
            self.error(node, "`range(...)` inside zip or enumerate is not supported",
                       "loop over `range(...)` (or `reversed(range(...))`) and index the "
                       "sequences with the counter")
        if _is_call_to(node, "reversed", self.globs):  # zip(reversed(Ws), reversed(hs))
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

    # ------------------------------------------------------------------ expressions
    def expr(self, node, target=None):
        meth = getattr(self, "expr_" + type(node).__name__, None)
        if meth is None:
            self.error(node, f"`{type(node).__name__}` expressions are not supported")
        return meth(node, target) if target is not None and meth.__code__.co_argcount == 3 \
            else meth(node)

    def expr_Constant(self, node):
        if isinstance(node.value, (int, float, bool)) or node.value is None or node.value is Ellipsis:
            return Const(node.value)
        if isinstance(node.value, str):
            return Const(node.value)
        self.error(node, f"constant {node.value!r} is not supported")

    def capture(self, node, obj):
        """Note that the module-level ``LAM``, ``cfg.LAM`` or helper ``node`` was read as
        ``obj`` and compiled in: a call after it changes lowers and compiles again (api.py)."""
        if isinstance(node, ast.Name):
            globs, name = self.globs, node.id
        else:
            mod = self.resolve_static(node.value)
            if not isinstance(mod, types.ModuleType) or \
                    mod.__name__.partition(".")[0] in ("math", "numpy", "builtins"):
                return
            globs, name = vars(mod), node.attr
        if globs.get(name, _MISSING) is obj:  # not a builtin
            self.captured[(id(globs), name)] = (globs, name, obj)

    def name_operand(self, node):
        if node.id in self.scope:
            return Var(self.scope[node.id])
        if node.id in self.globs or hasattr(__builtins__ if isinstance(__builtins__, dict) else
                                            __builtins__, node.id):
            obj = self.globs.get(node.id, _builtin(node.id))
            if isinstance(obj, (bool, int, float, np.floating)) or obj is None:
                self.capture(node, obj)
                return Const(float(obj) if isinstance(obj, np.floating) else obj)
            self.error(node, f"`{node.id}` ({type(obj).__name__}) cannot be used as a value here",
                       "module-level arrays are not captured: pass them as parameters")
        self.error(node, f"name `{node.id}` is not defined before it is used",
                   "assign it earlier in the function or pass it as a parameter")

    def expr_Name(self, node):
        return self.name_operand(node)

    def expr_BinOp(self, node, target=None):
        if isinstance(node.op, ast.Mult) and isinstance(node.left, ast.List):
            return self.list_repeat(node.left, node.right, node, target)
        opname = _BINOPS.get(type(node.op))
        if opname is None:
            self.error(node, f"operator {type(node.op).__name__} is not supported")
        a, b = self.expr(node.left), self.expr(node.right)
        return self.assign(opname, (a, b), node, target)

    def list_repeat(self, lst, n, node, target):
        if len(lst.elts) != 1 or not (isinstance(lst.elts[0], ast.Constant) and lst.elts[0].value is None):
            self.error(lst, "lists are repeated only as `[None] * n` (a list of n slots to fill)")
        return self.assign("list_repeat", (Const(None), self.expr(n)), node, target)

    def expr_UnaryOp(self, node, target=None):
        op = {ast.USub: "neg", ast.UAdd: "pos", ast.Not: "not"}.get(type(node.op))
        if op is None:
            self.error(node, f"operator {type(node.op).__name__} is not supported")
        if op == "neg" and isinstance(node.operand, ast.Constant) and \
                isinstance(node.operand.value, (int, float)):
            return Const(-node.operand.value)
        return self.assign(op, (self.expr(node.operand),), node, target)

    def expr_BoolOp(self, node, target=None):
        op = "and" if isinstance(node.op, ast.And) else "or"
        vals = [self.expr(v) for v in node.values]
        acc = vals[0]
        for i, v in enumerate(vals[1:]):
            acc = self.assign(op, (acc, v), node, target if i == len(vals) - 2 else None)
        return acc

    def expr_Compare(self, node, target=None):
        parts = []
        left = self.expr(node.left)
        for op, comp in zip(node.ops, node.comparators):
            name = _CMPOPS.get(type(op))
            if name is None:
                self.error(node, f"comparison {type(op).__name__} is not supported",
                           "use <, <=, >, >=, ==, !=")
            right = self.expr(comp)
            parts.append((name, left, right))
            left = right
        if len(parts) == 1:
            name, a, b = parts[0]
            return self.assign(name, (a, b), node, target)
        acc = self.assign(parts[0][0], parts[0][1:], node)
        for i, (name, a, b) in enumerate(parts[1:]):
            c = self.assign(name, (a, b), node)
            acc = self.assign("and", (acc, c), node, target if i == len(parts) - 2 else None)
        return acc

    def expr_IfExp(self, node, target=None):
        test = self.expr(node.test)
        target = target or self.namer.temp()
        saved = self.out
        self.out = []
        self.bind_temp(target, self.expr(node.body), node)
        body = self.out
        self.out = []
        self.bind_temp(target, self.expr(node.orelse), node)
        orelse = self.out
        self.out = saved
        self.emit(If(test, body, orelse, self.loc(node)))
        return Var(target)

    def bind_temp(self, target, val, node):
        if self.out and isinstance(self.out[-1], Assign) and isinstance(val, Var) \
                and self.out[-1].target == val.name:
            self.out[-1].target = target
            self._note_layout(target, self.out[-1].prim, self.out[-1].args)
        else:
            self.emit(Assign(target, "copy", (val,), self.loc(node)))

    def expr_Tuple(self, node):
        return TupleOp(tuple(self.expr(e) for e in node.elts))

    def expr_List(self, node, target=None):
        items = tuple(self.contiguous(self.expr(e), node) for e in node.elts)
        return self.assign("list", items, node, target)  # [] takes its type from its appends

    def expr_ListComp(self, node, target=None):
        """``[e for x in xs if c]`` is the loop a user would write: an empty list, appends."""
        lst = self.assign("list", (), node, self.unless_read(target, node))
        self.comprehension(node, lambda: self.emit(
            Append(lst.name, self.contiguous(self.expr(node.elt), node), self.loc(node))))
        return lst

    def unless_read(self, target, node):
        """``target``, or None when ``node`` reads it (``ys = [2 * y for y in ys]`` must not
        empty ``ys`` before the loop has read it)."""
        return None if target in {self.scope.get(n) for n in _all_names(node)} else target

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
                        renamed[t.id] = self.scope.get(t.id, _MISSING)
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
                if old is _MISSING:
                    del self.scope[name]
                else:
                    self.scope[name] = old

    def expr_Attribute(self, node, target=None):
        obj = self.resolve_static(node)
        if obj is not _MISSING:
            if isinstance(obj, (int, float)) or obj is None:
                self.capture(node, obj)
                return Const(obj)
            self.error(node, f"`{ast.unparse(node)}` cannot be used as a value here")
        prim = N.ATTRIBUTES.get(node.attr)
        if prim is None:
            self.error(node, f"attribute `.{node.attr}` is not supported",
                       "supported attributes: " + ", ".join(f".{a}" for a in N.ATTRIBUTES))
        x = self.expr(node.value)
        return self.assign(prim, (x,) + ((Const(None),) if prim == "transpose" else ()), node, target)

    def expr_Subscript(self, node, target=None):
        x = self.expr(node.value)
        return self.assign("getitem", (x, self.index(node.slice)), node, target)

    def index(self, sl):
        if isinstance(sl, ast.Tuple):
            return TupleOp(tuple(self.index_item(e) for e in sl.elts))
        return self.index_item(sl)

    def index_item(self, e):
        if isinstance(e, ast.Slice):
            parts = [None if p is None else self.expr(p) for p in (e.lower, e.upper, e.step)]
            return SliceOp(*parts)
        return self.expr(e)

    def resolve_static(self, node):
        """The object a dotted name like ``np.linalg.norm`` denotes, or _MISSING."""
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name) or node.id in self.scope:
            return _MISSING
        if node.id in self.globs:
            obj = self.globs[node.id]
        else:
            obj = _builtin(node.id)
            if obj is _MISSING:
                return _MISSING
        if parts and not isinstance(obj, types.ModuleType) and not parts == []:
            if not isinstance(obj, types.ModuleType):
                return _MISSING
        for p in reversed(parts):
            obj = getattr(obj, p, _MISSING)
            if obj is _MISSING:
                return _MISSING
        return obj

    def expr_Call(self, node, target=None):
        f = node.func
        for a in node.args:
            if isinstance(a, ast.Starred):
                self.error(a, "*args in calls are not supported")
        for k in node.keywords:
            if k.arg is None:
                self.error(k, "**kwargs in calls are not supported")
        obj = self.resolve_static(f)
        if obj is sum and len(node.args) == 1 and not node.keywords:
            return self.sum_of(node, target)
        if obj is not _MISSING:
            prim = N.primitive_of(obj)
            if prim is not None:
                return self.call_prim(prim, node.args, node.keywords, node, target)
            if isinstance(obj, types.FunctionType):
                self.capture(f, obj)
                return self.call_helper(obj, node, target)
            if obj is range or obj is reversed:
                self.error(node, f"`{obj.__name__}` is only supported as the iterable of a for loop")
            if not callable(obj):
                self.error(f, f"`{ast.unparse(f)}` is a {type(obj).__name__}, not a function")
            self.error(f, f"no R-rule for `{ast.unparse(f)}`",
                       "supported functions: " + ", ".join(N.supported_functions()[:40]) + ", ... "
                       "(docs/rules.md has the full table); a helper function of your own module is "
                       "inlined")
        if isinstance(f, ast.Attribute) and f.attr in N.METHODS:
            prim = N.METHODS[f.attr]
            args = [f.value] + list(node.args)
            if prim == "reshape" and len(node.args) > 1:
                args = [f.value, ast.Tuple(elts=list(node.args), ctx=ast.Load())]
            if prim == "transpose" and len(node.args) > 1:
                args = [f.value, ast.Tuple(elts=list(node.args), ctx=ast.Load())]
            return self.call_prim(prim, args, node.keywords, node, target)
        if isinstance(f, ast.Attribute):
            self.error(f, f"method `.{f.attr}()` is not supported",
                       "supported methods: " + ", ".join(f".{m}()" for m in N.METHODS))
        self.error(f, f"cannot call `{ast.unparse(f)}`",
                   "call NumPy functions, math functions, or functions defined at module level")

    def call_prim(self, prim_name, arg_nodes, kw_nodes, node, target):
        prim = RULES[prim_name]
        params = prim.params
        if prim_name in ("maximum", "minimum") and len(arg_nodes) != 2:
            self.error(node, "max()/min() of a sequence is not supported", "use np.max(x) / np.min(x)")
        if len(arg_nodes) > len(params):
            self.error(node, f"too many arguments for {prim_name} (takes {', '.join(params)})")
        bound = {}
        if prim_name == "arange" and len(arg_nodes) == 1:
            arg_nodes = [ast.Constant(0)] + list(arg_nodes)
        for p, a in zip(params, arg_nodes):
            bound[p] = self.expr(a)
        for k in kw_nodes:
            if k.arg not in params or k.arg in bound:
                self.error(k.value, f"unsupported keyword argument `{k.arg}` for {prim_name}",
                           f"{prim_name} takes: {', '.join(params)}")
            bound[k.arg] = self.expr(k.value)
        args = []
        for p in params:
            if p in bound:
                args.append(bound[p])
            elif p in prim.defaults:
                args.append(Const(prim.defaults[p]))
            elif prim_name == "arange" and p in ("start", "step"):
                args.append(Const(0 if p == "start" else 1))
            else:
                self.error(node, f"missing argument `{p}` for {prim_name}")
        if prim_name in ("sum", "mean", "max", "min") and isinstance(args[1], TupleOp):
            return self.reduce_axes(prim_name, args, node, target)
        return self.assign(prim_name, args, node, target)

    def reduce_axes(self, prim_name, args, node, target):
        """A reduction over several axes is a chain of one-axis reductions (sum of sums, mean
        of means, max of maxima), taken in an order that keeps the remaining axes valid."""
        x, axes, keep = args
        vals = [a.value if isinstance(a, Const) else None for a in axes.items]
        if any(not isinstance(v, int) for v in vals) or (min(vals) < 0 <= max(vals)):
            self.error(node, "a tuple of axes must be constant integers, all >= 0 or all < 0",
                       "write axis=(0, 1) or axis=(-2, -1)")
        order = sorted(vals, reverse=min(vals) >= 0)
        for i, ax in enumerate(order):
            x = self.assign(prim_name, (x, Const(ax), keep), node,
                            target if i == len(order) - 1 else None)
        return x

    # ------------------------------------------------------------------ helpers
    def call_helper(self, fn, node, target, statement=False):
        """Inline a helper of the user's (or make it an elementwise primitive).  As a
        ``statement`` it is called for its writes into its arguments and may return nothing."""
        if node.keywords:
            self.error(node, "keyword arguments to helper functions are not supported")
        if self.depth > 8:
            self.error(node, f"helper `{fn.__name__}` calls itself (recursion is not supported)",
                       "write the recursion as a loop")
        from .parse import parse_function
        h_ast, h_file, h_first, h_lines = parse_function(fn)
        if len(node.args) != len(h_ast.args.args):
            self.error(node, f"{fn.__name__} takes {len(h_ast.args.args)} arguments, "
                             f"{len(node.args)} given")
        args = [self.expr(a) for a in node.args]
        from .elementwise import elementwise_helper
        prim = elementwise_helper(fn, h_ast, fn.__globals__)
        if prim is not None:
            if prim.name not in self.helpers:
                h_namer = Namer(_all_names(h_ast))
                child = Lowerer(h_ast, fn.__globals__, h_file, h_first, h_lines, h_namer, {}, depth=0,
                                col0=indent_of(fn))
                child.captured = self.captured
                h_ir = child.lower_function()
                h_ir.temps = set(h_namer.temp_names)
                self.helpers[prim.name] = (prim, h_ir)
            return self.assign(prim.name, args, node, target)
        scope = {}
        child = Lowerer(h_ast, fn.__globals__, h_file, h_first, h_lines, self.namer, self.helpers,
                        scope=scope, depth=self.depth + 1, col0=indent_of(fn))
        self.namer.taken |= _all_names(h_ast)
        child.out = self.out
        child.captured = self.captured
        child.lists, child.strided = self.lists, self.strided
        child.list_copies = self.list_copies
        child.params = set()
        for p, a in zip(h_ast.args.args, args):
            if isinstance(a, Var):
                scope[p.arg] = a.name
            else:
                scope[p.arg] = self.namer.fresh(p.arg)
                self.emit(Assign(scope[p.arg], "copy", (a,), self.loc(node)))
        child.params = {p.arg for p in h_ast.args.args}
        body = h_ast.body
        returns = sorted((s for s in ast.walk(ast.Module(body, [])) if isinstance(s, ast.Return)),
                         key=lambda s: (s.lineno, s.col_offset))
        if not returns and statement:
            child.block(body)
            return Const(None)
        if not returns:
            child.error(h_ast, f"helper `{fn.__name__}` returns nothing",
                        "a helper used in an expression must return its value")
        if len(returns) > 1:
            for loop in (n for n in ast.walk(ast.Module(body, [])) if isinstance(n, (ast.For, ast.While))):
                inner = [r for r in ast.walk(loop) if isinstance(r, ast.Return)]
                if inner:
                    child.error(inner[0], "a helper may not return from inside a loop",
                                "set a result variable, `break`, and return it after the loop")
            body = _returns_last(body)
            child.result_var = self.namer.fresh(fn.__name__ + "_result")
        elif not isinstance(body[-1], ast.Return):
            child.error(returns[0], "a helper function must end with its return statement",
                        "assign the result to a variable and return it at the end")
        child.block(body)
        return child.result


_MISSING = object()


class _Captured(tuple):
    """``Function.captured``: (globals dict, name, value) of each module-level value the
    lowering compiled in.  Deep copies of the IR share it (the dicts are namespaces)."""

    def __deepcopy__(self, memo):
        return self


def _ends_in_return(stmts) -> bool:
    if not stmts:
        return False
    last = stmts[-1]
    if isinstance(last, ast.Return):
        return True
    if isinstance(last, ast.If):
        return _ends_in_return(last.body) and _ends_in_return(last.orelse)
    return False


def _returns_last(stmts):
    """Move the code after an ``if`` that returns early into its other branch, so that every
    ``return`` ends a path and an inlined helper becomes an if-region assigning one result."""
    out = []
    for i, s in enumerate(stmts):
        if isinstance(s, ast.If) and any(isinstance(n, ast.Return) for n in ast.walk(s)):
            rest = stmts[i + 1:]
            body = _returns_last(s.body if _ends_in_return(s.body) else s.body + rest)
            orelse = _returns_last(s.orelse if _ends_in_return(s.orelse) else s.orelse + rest)
            out.append(ast.If(test=s.test, body=body or [ast.Pass()], orelse=orelse,
                              lineno=s.lineno, col_offset=s.col_offset))
            return out
        out.append(s)
        if isinstance(s, ast.Return):
            return out
    return out


def _comprehension_only(fn_ast) -> set:
    """Names that occur only inside comprehensions (``W`` in ``[W.T for W in Ws]``): the
    function never sees them, so a comprehension may bind them under their own name."""
    comps = (ast.ListComp, ast.GeneratorExp, ast.SetComp, ast.DictComp)
    inside = {n.id for c in ast.walk(fn_ast) if isinstance(c, comps)
              for n in ast.walk(c) if isinstance(n, ast.Name)}
    outside = set()

    def visit(node):
        if isinstance(node, comps):
            return
        if isinstance(node, ast.Name):
            outside.add(node.id)
        for child in ast.iter_child_nodes(node):
            visit(child)
    visit(fn_ast)
    return inside - outside - {a.arg for a in ast.walk(fn_ast) if isinstance(a, ast.arg)}


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


def _builtin(name):
    import builtins
    return getattr(builtins, name, _MISSING)


def _is_call_to(node, name, globs):
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name \
        and node.func.id not in globs


def _all_names(tree) -> set:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | \
           {a.arg for a in ast.walk(tree) if isinstance(a, ast.arg)}


_FILL = "preallocate `xs = [None] * n` and assign `xs[i] = ...` in a backward loop"
_LIST_METHODS = {
    "insert": _FILL, "extend": "append the elements one by one in a `for` loop",
    "reverse": _FILL, "pop": "read `xs[-1]` and keep a count of the elements in use",
    "remove": "build a new list with the elements to keep", "clear": "start a new list `xs = []`",
    "sort": "sorting is not differentiable code rop compiles: sort outside the function",
}

_BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow",
           ast.MatMult: "matmul", ast.FloorDiv: "floordiv", ast.Mod: "mod"}
_OPSYM = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**", "matmul": "@",
          "floordiv": "//", "mod": "%"}
_CMPOPS = {ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge", ast.Eq: "eq", ast.NotEq: "ne"}


def lower(fn, fresh: bool = False) -> Function:
    """Parse, check and lower a Python function to IR (cached per function object; ``fresh``
    lowers again, reading module-level numbers anew)."""
    cached = getattr(fn, "__rop_ir__", None)
    if cached is not None and not fresh:
        return cached
    from .parse import parse_function
    fn_ast, filename, first, lines = parse_function(fn)
    user = _all_names(fn_ast)
    namer = Namer(user | set(fn.__globals__))
    low = Lowerer(fn_ast, fn.__globals__, filename, first, lines, namer, {}, col0=indent_of(fn))
    ir = low.lower_function()
    ir.captured = _Captured(low.captured.values())
    check_writes(ir, Storage(ir, {}))  # at definition, before ranks are known (conservative)
    ir.user_names = set(namer.taken)
    ir.namer = namer
    ir.temps = set(namer.temp_names)
    try:
        fn.__rop_ir__ = ir
    except AttributeError:
        pass
    return ir


def _has_slice(index) -> bool:
    """An index that keeps a dimension (a slice, ``None``, ``...``): the result is a view."""
    if isinstance(index, SliceOp):
        return True
    if isinstance(index, Const):
        return index.value is None or index.value is Ellipsis
    if isinstance(index, TupleOp):
        return any(_has_slice(i) for i in index.items)
    return False
