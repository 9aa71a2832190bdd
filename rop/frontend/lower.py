"""Lowering: a validated Python ``ast`` to rop's IR (three-address code in structured regions).

This is also where the *meaning* of names is checked (which NumPy function, which
helper, which parameter is written to): the grammar in ``grammar/rop.lark`` decides
what may be written, this module decides what it refers to.  Every refusal is a
:class:`RopSyntaxError` at the user's line and column.
"""

from __future__ import annotations

import ast
import types

import numpy as np

from ..errors import RopSyntaxError
from ..ir.nodes import (Append, Assign, Const, Function, If, Loc, Return, SetItem, SliceOp,
                        TupleOp, Var)
from ..ir.storage import ALIAS_PRIMS, Storage, check_writes
from ..rules.table import RULES
from . import names as N
from .compiletime import CompileTime, DictVal, ObjVal, Operand, assignment_sites, contains_dict
from .inline import Captured, HelperInlining
from .loops import LoopLowering
from .namer import Namer, all_names
from .parse import indent_of

MISSING_VALUE = N.MISSING

SUPPORTED_HINT = ("rop compiles a subset of Python/NumPy: see grammar/README.md and the rule "
                  "table in docs/rules.md")

# results of these primitives are new arrays that the function owns (safe to write into)
_FRESH = {"zeros", "ones", "empty", "full", "zeros_like", "ones_like", "eye", "array_copy",
          "list_repeat", "list", "arange"}


class Lowerer(CompileTime, LoopLowering, HelperInlining):
    """Lowers one function body; helpers are inlined through a child Lowerer sharing the output."""

    def __init__(self, fn_ast: ast.FunctionDef, globs: dict, filename: str, first_line: int,
                 src_lines: list[str], namer: Namer, helpers: dict, scope=None, depth=0, col0=0,
                 statics=None):
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
        # IR names holding a tuple with such views among its items (a cache (x[:, t, :], h)):
        # name -> per item: True (a view), a nested tuple of the same form, or False
        self.strided_items: dict = {}
        self.list_copies: dict = {}  # the copies `contiguous` made -> the view they copy
        self.result_var = None  # inlined helper with several returns: where they all go
        self.depth = depth
        self.out: list = []
        self.result = None  # for inlined helpers: the operand of the final return
        # module-level values compiled in as constants (helpers' included: one dict shared
        # with child Lowerers): (id(globals), name) -> (globals, name, value); see capture
        self.captured: dict = {}
        # what is known at compile time (frontend/compiletime.py); child Lowerers share these
        self.statics = statics or {}  # the call's static arguments (frontend/statics.py)
        self.sites = assignment_sites(fn_ast)
        self.consts: dict = {}       # IR name -> Const: None, strings, bools known now
        self.static_ints: dict = {}  # IR name -> int known now (range bounds, keys)
        self.dictvals: dict = {}     # IR name -> DictVal
        self.tuples: dict = {}       # IR name -> a tuple holding a dict (a cache)
        self.held: dict = {}         # IR name -> {path: DictVal}: dicts a run-time container
        #                              holds (a list of caches (a, a_prev, x, parameters)),
        #                              by item path ("*" for any slot of a list)
        self.maybe_none: set = set()  # IR names bound to None at one of several places
        self.list_lens: dict = {}    # IR name of a list -> its length, while known
        self.dynamic = 0             # > 0 inside a run-time loop or branch
        self.out_struct = None       # how results hold dicts (statics.rebuild)
        self.returned = False

    # ------------------------------------------------------------------ diagnostics
    def loc(self, node) -> Loc:
        ln = getattr(node, "lineno", 1)
        text = self.src_lines[ln - 1] if 0 < ln <= len(self.src_lines) else ""
        return Loc(self.filename, ln + self.line0, getattr(node, "col_offset", 0) + 1 + self.col0,
                   text.strip())

    def error(self, node, msg, hint=SUPPORTED_HINT, needs_statics=False, needs_length=False):
        """Refuse at ``node``.  ``needs_statics``: the refusal depends on values a call fixes
        (a dict's keys, None-ness), so when the function is lowered at decoration, before any
        call, it waits for the first call (api.py).  ``needs_length``: a key depends on a loop
        whose bound may be the length of a list argument (``range(len(inputs))``), which the
        call then compiles in (statics.StaticLength)."""
        loc = self.loc(node)
        ln = getattr(node, "lineno", 1)
        line = self.src_lines[ln - 1] if 0 < ln <= len(self.src_lines) else ""
        line = " " * self.col0 + line if line.strip() else line
        err = RopSyntaxError(msg, self.filename, loc.lineno, loc.col, line, hint)
        err.needs_statics = needs_statics
        err.needs_length = needs_length
        raise err

    # ------------------------------------------------------------------ emission helpers
    def emit(self, stmt):
        self.out.append(stmt)
        if isinstance(stmt, Assign):
            self._note_held(stmt)
            self._note_layout(stmt.target, stmt.prim, stmt.args)
            self._note_length(stmt)
        elif isinstance(stmt, Append):
            n = self.list_lens.pop(stmt.obj, None)
            if n is not None and not self.dynamic:
                self.list_lens[stmt.obj] = n + 1
        return stmt

    def _held_in(self, op, prefix=()) -> dict:
        """{path: DictVal} for the dicts an operand holds (see ``self.held``)."""
        if isinstance(op, DictVal):
            return {prefix: op}
        if isinstance(op, TupleOp):
            out = {}
            for i, it in enumerate(op.items):
                out.update(self._held_in(it, prefix + (i,)))
            return out
        if isinstance(op, Var) and op.name in self.held:
            return {prefix + p: d for p, d in self.held[op.name].items()}
        return {}

    def _held_at(self, name, index) -> dict:
        """The dicts ``name[index]`` holds: a constant index picks a tuple item, any other
        index a list slot."""
        key = index.value if isinstance(index, Const) and isinstance(index.value, int) else "*"
        if isinstance(index, (SliceOp, TupleOp)):
            return {}
        return {p[1:]: d for p, d in self.held.get(name, {}).items() if p and p[0] in (key, "*")}

    def _note_held(self, st):
        self.held.pop(st.target, None)
        if st.prim == "copy":
            found = self._held_in(st.args[0])
        elif st.prim == "getitem" and isinstance(st.args[0], Var):
            found = self._held_at(st.args[0].name, st.args[1])
        else:
            return
        if found:
            self.held[st.target] = found

    def _strip_dicts(self, val, lst, node):
        """An appended tuple holding dicts: the dicts are known now, so the list holds None in
        their place and ``self.held`` remembers them (the same dict at each append)."""
        found = self._held_in(val)
        if not found:
            return val
        merged = dict(self.held.get(lst, {}))
        for p, d in found.items():
            old = merged.setdefault(("*",) + p, d)
            if old is not d:
                self.error(node, "the tuples appended to this list hold different dicts at the "
                                 "same place", "keep one dict in the cache, or store its arrays")
        self.held[lst] = merged

        def strip(op):
            if isinstance(op, DictVal):
                return Const(None)
            if isinstance(op, TupleOp):
                return TupleOp(tuple(strip(i) for i in op.items))
            return op
        return strip(val)

    def _note_length(self, st):
        """Follow the lengths of lists known now (``caches = []`` and appends outside run-time
        loops and branches): ``len(caches)`` then bounds an unrolled loop."""
        self.list_lens.pop(st.target, None)
        if st.prim == "list":
            self.list_lens[st.target] = len(st.args)
        elif st.prim == "list_repeat" and isinstance(st.args[1], Const) and \
                isinstance(st.args[1].value, int):
            self.list_lens[st.target] = st.args[1].value
        elif st.prim == "copy" and isinstance(st.args[0], Var) and st.args[0].name in self.list_lens:
            self.list_lens[st.target] = self.list_lens[st.args[0].name]

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
        items = None
        if prim == "copy" and args and isinstance(args[0], TupleOp):
            items = self._strided_items(args[0])
        elif prim == "copy" and src in self.strided_items:
            items = self.strided_items[src]
        if items is not None:
            self.strided_items[name] = items
        else:
            self.strided_items.pop(name, None)

    def _strided_items(self, tup):
        """The form ``strided_items`` records for a tuple display, or None when it holds no
        view that may be strided."""
        def item(op):
            if isinstance(op, Var):
                return True if op.name in self.strided else self.strided_items.get(op.name, False)
            if isinstance(op, TupleOp):
                return self._strided_items(op) or False
            return False
        items = tuple(item(op) for op in tup.items)
        return items if any(items) else None

    def contiguous(self, val, node):
        """``val``, or ``val.copy()`` where it may be a strided view: the value going into a
        list.  The copy has the same values (rop never writes into list elements in place);
        without it Numba refuses to store an 'A' or 'F' array into a list of C arrays."""
        if isinstance(val, Var) and val.name in self.strided:
            copy = self.assign("array_copy", (val,), node)
            self.list_copies[copy.name] = val.name  # ir/storage.py: NumPy would keep the view
            return copy
        # a tuple holding such views (a layer's cache (x[:, t, :], prev_h, ...)): the same
        # tuple with those items copied, so that the list's items have one Numba type
        if isinstance(val, TupleOp):
            form = self._strided_items(val)
            if form is None:
                return val
            return TupleOp(tuple(self._contiguous_item(op, f, node)
                                 for op, f in zip(val.items, form)))
        if isinstance(val, Var) and val.name in self.strided_items:
            form = self.strided_items[val.name]
            items = []
            for k, f in enumerate(form):
                items.append(self._contiguous_item(self.assign("getitem", (val, Const(k)), node),
                                                   f, node))
            return self.assign("copy", (TupleOp(tuple(items)),), node)
        return val

    def _contiguous_item(self, op, form, node):
        if form is True:
            if isinstance(op, Var) and op.name not in self.strided:
                self.strided.add(op.name)  # an item read back from a tuple: its form says
            return self.contiguous(op, node)
        if isinstance(form, tuple):
            if isinstance(op, Var):
                self.strided_items[op.name] = form
            return self.contiguous(op, node)
        return op

    def assign(self, prim, args, node, target=None):
        if prim == "getitem" and isinstance(args[0], Var) and args[0].name in self.held:
            d = self._held_at(args[0].name, args[1]).get(())
            if d is not None:
                return d  # the dict a cache holds (known now; the list holds None there)
        if any(contains_dict(a) for a in args):
            self.error(node, "a dict cannot be used as a value here",
                       "read its values by key: `d['W1']`")
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
        from .statics import StaticDict, StaticLength, StaticObject
        params = [p.arg for p in a.args]
        for p in params:
            self.scope[p] = p
        self.params = set(params)
        defaults = {}
        for p, d in zip(params[len(params) - len(a.defaults):], a.defaults):
            defaults[p] = self.static_value(d)
        ir_params, signature = [], []
        for p in params:  # static arguments are constants; a dict's values are parameters
            s = self.statics.get(p)
            if isinstance(s, StaticDict):
                items: list = []
                self.dictvals[p] = self.param_dict(p, s, ir_params, items)
                signature.append((p, ("dict", tuple(items))))
            elif isinstance(s, StaticObject):
                items = []
                self.dictvals[p] = self.param_dict(p, s, ir_params, items, obj=s.cls)
                signature.append((p, ("object", s.cls, tuple(items))))
            elif isinstance(s, StaticLength):  # passed as it is; its length known now
                self.list_lens[p] = s.n
                ir_params.append(p)
                signature.append((p, ("arg", p)))
            elif s is not None:
                self.consts[p] = Const(s.value)
                signature.append((p, ("static", s.value)))
            else:
                ir_params.append(p)
                signature.append((p, ("arg", p)))
        self.block(fn.body)
        f = Function(fn.name, ir_params, self.out, self.loc(fn), self.filename,
                     helpers=self.helpers, defaults=defaults, list_copies=self.list_copies)
        f.signature = tuple(signature)
        f.out_struct = self.out_struct
        f.scope = dict(self.scope)  # the user's names -> IR names at the end (output=)
        return f

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
            if self.terminated():
                break  # after a return or a raise: dead code, never lowered

    def block_nodoc(self, body):
        for st in body:
            self.stmt(st)
            if self.terminated():
                break

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
            val = self._strip_dicts(val, self.local(obj.id), st)
            self.emit(Append(self.local(obj.id), val, self.loc(st)))
            return
        if isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute) and \
                v.func.attr in _LIST_METHODS:
            self.error(v.func, f"list method `.{v.func.attr}()` is not supported (lists grow only "
                               "by `append`)", _LIST_METHODS[v.func.attr].replace(
                               "xs", ast.unparse(v.func.value)))
        if isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute) and v.func.attr == "at" \
                and self.resolve_static(v.func.value) is np.add:
            return self.add_at(v, st)
        if isinstance(v, ast.Call) and any(k.arg == "out" for k in v.keywords):
            self.expr(v)  # np.clip(dparam, -5, 5, out=dparam): called for what it writes
            return
        if isinstance(v, ast.Call):
            method, this = self.callee(v.func)
            if method is not None:  # layer.forward(x): called for what it stores
                call = v if this is None else ast.copy_location(ast.Call(
                    func=v.func, args=[Operand(this, v)] + list(v.args), keywords=v.keywords), v)
                self.call_helper(method, call, None, statement=True)
                return
        helper = self.resolve_static(v.func) if isinstance(v, ast.Call) else N.MISSING
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

    def add_at(self, call, st):
        """``np.add.at(a, i, b)``: the scatter-add as a value (rt.add_at), written back into
        ``a``'s memory, so that every alias of ``a`` sees it as in NumPy."""
        if len(call.args) != 3 or call.keywords:
            self.error(call, "np.add.at takes three arguments: np.add.at(a, indices, b)")
        target = call.args[0]
        if not isinstance(target, ast.Name):
            self.error(target, "np.add.at writes into an array held in a local variable",
                       "name the array first: `dW = np.zeros(...)`, then `np.add.at(dW, ...)`")
        self.check_writable(target)
        a = self.name_operand(target)
        new = self.assign("add_at", (a, self.index(call.args[1]), self.expr(call.args[2])), call)
        self.emit(SetItem(a.name, Const(Ellipsis), new, self.loc(st)))

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
            names = {t.id for t in target.elts if isinstance(t, ast.Name)}
            if all(isinstance(t, ast.Name) for t in target.elts) and len(names) == len(target.elts) \
                    and not any(isinstance(n, ast.Name) and n.id in names
                                for e in value_node.elts for n in ast.walk(e)):
                # `dWs, dbs = [None] * L, [None] * L`: no value reads a name bound here, so
                # each is computed into its name directly
                for t, e in zip(target.elts, value_node.elts):
                    self._assignable(t)
                    self.bind(t, self.expr(e, target=self.local(t.id)), st)
                    self.note_static_binding(t.id, self.local(t.id), e)
                return
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
            # a helper rebinding its parameter (`Y = Y.reshape(AL.shape)`) reads the caller's
            # value on the right and binds a new local on the left: evaluate first
            fresh = target.id in self.params and self.depth > 0 and target.id not in self.rebound
            # a list name rebound in straight-line code (`caches = (caches, x)`) is a new
            # variable: one IR name keeps one type (Numba's), and the list's storage is not
            # confused with what the new value holds
            retype = not fresh and self._holds_container(target.id) and not (
                isinstance(value_node, (ast.List, ast.ListComp)) or isinstance(value_node, ast.Name)
                and self.scope.get(value_node.id) in self.lists)  # a list stays a list
            val = self.expr(value_node, target=None if fresh or retype else self.local(target.id))
            if retype:
                self.scope[target.id] = self.namer.fresh(target.id)
            self.bind(target, val, st)
            self.note_static_binding(target.id, self.local(target.id), value_node)
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

    def _assignable_name(self, user_name):
        return self._assignable(ast.Name(id=user_name, ctx=ast.Store()))

    def bind(self, target, val, st):
        """Bind an operand to an assignment target (name, tuple pattern or subscript)."""
        if isinstance(target, ast.Name):
            self._assignable(target)
            if self._holds_container(target.id) and not (
                    isinstance(val, Var) and (val.name == self.scope[target.id]
                                              or val.name in self.lists)):
                self.scope[target.id] = self.namer.fresh(target.id)
            name = self.local(target.id)
            self.bind_ir(name, val, st)
            if isinstance(val, Const) and val.value is None and name not in self.consts:
                self.maybe_none.add(name)
            return
        self._bind_pattern(target, val, st)

    def snapshot(self, val, st):
        """A tuple held at compile time, its variables bound now: the tuple must keep the
        values they have here (``cache = (a_next, a_prev, x, parameters)`` before the caller
        rebinds ``a_prev``), as Python's tuple keeps the objects."""
        if isinstance(val, TupleOp):
            return TupleOp(tuple(self.snapshot(i, st) for i in val.items))
        if isinstance(val, Var) and val.name not in self.namer.temp_names:
            keep = self.namer.fresh(self.user_name_of(val.name))
            self.emit(Assign(keep, "copy", (val,), self.loc(st)))
            self._track_view(keep, "copy", (val,))
            return Var(keep)
        return val

    def _holds_container(self, user_name) -> bool:
        """The variable now holds a list or a tuple, and is rebound in straight-line code
        (``caches = (caches, x)``, ``(caches, x) = caches``): the new binding is a new IR
        variable.  One IR name then keeps one type (Numba's), and what the old list holds is
        not confused with what the new value holds (ir/storage.py is flow-insensitive per
        name).  Inside run-time loops and branches a name keeps its IR name (the paths meet)."""
        name = self.scope.get(user_name)
        if name is None or self.dynamic or name in self.params:
            return False
        if name in self.lists or name in self.tuples:
            return True
        for _ in range(8):  # through copies: `caches = caches_2` of a tuple
            last = next((s for s in reversed(self.out) if isinstance(s, Assign)
                         and s.target == name), None)
            if last is None or last.prim != "copy":
                return False
            if isinstance(last.args[0], TupleOp):
                return True
            if not isinstance(last.args[0], Var):
                return False
            name = last.args[0].name
            if name in self.lists or name in self.tuples:
                return True
        return False

    def bind_ir(self, name, val, st):
        """Bind an operand (or a dict held at compile time) to the IR name ``name``."""
        self.consts.pop(name, None)
        self.static_ints.pop(name, None)
        self.dictvals.pop(name, None)
        self.tuples.pop(name, None)
        self.maybe_none.discard(name)
        if isinstance(val, DictVal):
            self.dictvals[name] = val
            if val.name is None:
                val.name = self.user_name_of(name)
            return
        if isinstance(val, TupleOp) and contains_dict(val):
            self.tuples[name] = self.snapshot(val, st)  # cache = (x, mask, dropout_param): held
            return                                      # at compile time
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
            self.held.pop(name, None)
            if val.name in self.held:
                self.held[name] = self.held.pop(val.name)
            self._note_layout(name, self.out[-1].prim, self.out[-1].args)
            self._track_view(name, self.out[-1].prim, self.out[-1].args)
            if val.name in self.list_lens:
                self.list_lens[name] = self.list_lens.pop(val.name)
            return
        self.emit(Assign(name, "copy", (val,), self.loc(st)))
        self._track_view(name, "copy", (val,))
        return

    def _bind_pattern(self, target, val, st):
        if isinstance(target, (ast.Tuple, ast.List)):
            if isinstance(val, TupleOp):
                if len(val.items) != len(target.elts):
                    self.error(target, f"cannot unpack {len(val.items)} values into "
                                       f"{len(target.elts)} names")
                for t, v in zip(target.elts, val.items):
                    self.bind(t, v, st)
                return
            for t in target.elts:
                if isinstance(t, ast.Starred):
                    self.error(t, "starred unpacking is not supported")
            rebinds = isinstance(val, Var) and any(
                isinstance(t, ast.Name) and self.scope.get(t.id) == val.name for t in target.elts)
            if rebinds:  # `(caches, x) = caches`: every item is read before any name is bound
                items = [self.assign("getitem", (val, Const(i)), st) for i in range(len(target.elts))]
                for t, v in zip(target.elts, items):
                    self.bind(t, v, st)
                return
            for i, t in enumerate(target.elts):
                self.bind(t, self.assign("getitem", (val, Const(i)), st), st)
            return
        if isinstance(target, ast.Subscript):
            obj = target.value
            d = self.dict_of(obj)
            if d is not None:  # grads['W1'] = ...: the key's variable
                self.dict_set(d, target.slice, val, st)
                return
            if isinstance(obj, ast.Attribute) and isinstance(self.dict_of(obj.value), ObjVal):
                holder = self.dict_of(obj.value)  # self.dinputs[self.inputs <= 0] = 0
                entry = self.object_attribute(holder, obj)
                # an attribute the function set holds its own array; one it did not is the
                # caller's, and the memory pass (ir/storage.py) refuses the write at this line
                if not isinstance(entry, Var):
                    self.error(obj, "this attribute cannot be written into")
                self.emit(SetItem(entry.name, self.index(target.slice), val, self.loc(st)))
                return
            if isinstance(obj, ast.Subscript) and self.dict_of(obj.value) is not None:
                entry = self.dict_get(self.dict_of(obj.value), obj.slice, obj)  # d['W'][0] = x
                if self.dict_of(obj.value).param:
                    self.error(obj, "in-place change to a value of a dict argument is not supported",
                               "rop never changes its arguments: work on a copy")
                if not isinstance(entry, Var):
                    self.error(obj, "this dict value cannot be written into")
                self.emit(SetItem(entry.name, self.index(target.slice), val, self.loc(st)))
                return
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
            obj = self.dict_of(target.value)
            if isinstance(obj, ObjVal):  # self.inputs = x: the attribute's variable
                key = ast.copy_location(ast.Constant(target.attr), target)
                self.dict_set(obj, key, val, st)
                return
            self.error(target, "assigning to an attribute is not supported here",
                       "attributes are set only on objects of your own classes that the function "
                       "creates (`layer = Dense(W, b)`, then `layer.inputs = x` in its methods)")
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
        if isinstance(t, ast.Attribute) and isinstance(self.dict_of(t.value), ObjVal):
            t = ast.copy_location(ast.Subscript(value=t.value, slice=ast.Constant(t.attr),
                                                ctx=ast.Store()), t)  # self.dW += x
        if isinstance(t, ast.Subscript) and self.dict_of(t.value) is not None:
            d = self.dict_of(t.value)  # grads['W1'] += x: in place on the key's array
            entry = self.dict_get(d, t.slice, t)
            if d.param and not isinstance(d, ObjVal):
                self.error(t, f"cannot change `{d.name}`: it is a dict argument and rop never "
                              "changes its arguments", "compute the new value into a new name")
            # an object argument's attribute: the memory pass refuses an in-place change of
            # the caller's array, an attribute the function set is its own (layer.dweights)
            if not isinstance(entry, Var):
                self.error(t, "augmented assignment to a dict value that is not an array")
            rhs = self.expr(st.value)
            self.emit(Assign(entry.name, opname, (entry, rhs), self.loc(st), inplace=True))
            return
        if isinstance(t, ast.Subscript) and isinstance(t.value, ast.Attribute) and \
                isinstance(self.dict_of(t.value.value), ObjVal):
            # self.dinputs[range(n), y] -= 1: into the array the attribute holds
            entry = self.object_attribute(self.dict_of(t.value.value), t.value)
            if not isinstance(entry, Var):
                self.error(t.value, "this attribute cannot be written into")
            t = ast.copy_location(ast.Subscript(value=ast.Name(id="\0" + entry.name, ctx=ast.Load()),
                                                slice=t.slice, ctx=ast.Store()), t)
            self.scope["\0" + entry.name] = entry.name  # a name no user code can spell
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
        if self.depth == 0 and val is not None:
            val, struct = self.flatten_result(val, st)
            if self.returned and struct != self.out_struct:
                self.error(st, "the function returns dicts in a different structure here than "
                               "at its other return", "return the same structure everywhere")
            self.out_struct, self.returned = struct, True
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
        if self.static_if(st, test):
            return
        body, orelse = self.checked_branches(st, lambda: self.sub_block(st.body),
                                             lambda: self.sub_block(st.orelse))
        self.emit(If(test, body, orelse, self.loc(st)))

    def sub_block(self, stmts):
        return self.sub_lowered(lambda: self.block(stmts))

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

    def name_operand(self, node):
        if node.id in self.scope:
            n = self.scope[node.id]
            if n in self.consts:
                return self.consts[n]
            if n in self.dictvals:
                return self.dictvals[n]
            if n in self.tuples:
                return self.tuples[n]
            return Var(n)
        if node.id in self.globs or hasattr(__builtins__ if isinstance(__builtins__, dict) else
                                            __builtins__, node.id):
            obj = self.globs.get(node.id, N.builtin(node.id))
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
        x = self.expr(node.operand)
        if op == "not" and isinstance(x, Const):
            return Const(not x.value)
        return self.assign(op, (x,), node, target)

    def expr_BoolOp(self, node, target=None):
        op = "and" if isinstance(node.op, ast.And) else "or"
        vals = []
        for v in node.values:  # a constant operand decides, or drops out, now
            x = self.expr(v)
            if isinstance(x, Const) and isinstance(x.value, (bool, type(None), str)):
                if bool(x.value) == (op == "or"):
                    if not vals:
                        return x
                    vals.append(x)
                    break
                continue
            vals.append(x)
        if not vals:
            return Const(op == "and")
        acc = vals[0]
        for i, v in enumerate(vals[1:]):
            acc = self.assign(op, (acc, v), node, target if i == len(vals) - 2 else None)
        return acc

    def expr_Compare(self, node, target=None):
        parts = []
        left = self.expr(node.left)
        if len(node.ops) == 1 and isinstance(node.ops[0], (ast.Is, ast.IsNot)):
            return self.fold_is(node, left, self.expr(node.comparators[0]),
                                isinstance(node.ops[0], ast.IsNot))
        if len(node.ops) == 1 and isinstance(node.ops[0], (ast.In, ast.NotIn)):
            v = self.static_eval(node)
            if v is MISSING_VALUE:
                self.error(node, "`in` tests whether a key is in a dict only here",
                           "write `'W1' in params` with a dict `params`")
            return Const(v)
        if len(node.ops) == 1 and isinstance(node.ops[0], (ast.Eq, ast.NotEq)) and any(
                isinstance(e, ast.Attribute) and e.attr == "dtype"
                for e in (node.left, node.comparators[0])):  # x.dtype == float (ir/dtypes.py)
            a, b = (self.dtype_operand(e) for e in (node.left, node.comparators[0]))
            return self.assign(_CMPOPS[type(node.ops[0])], (a, b), node, target)
        if len(node.ops) == 1 and isinstance(left, Const) and type(node.ops[0]) in _CMPOPS:
            right = self.expr(node.comparators[0])
            if isinstance(right, Const):  # 'relu' == 'relu', None == None: known now
                v = self.static_eval(ast.Compare(left=ast.Constant(left.value), ops=node.ops,
                                                 comparators=[ast.Constant(right.value)]))
                if v is not MISSING_VALUE:
                    return Const(v)
            return self.assign(_CMPOPS[type(node.ops[0])], (left, right), node, target)
        for op, comp in zip(node.ops, node.comparators):
            name = _CMPOPS.get(type(op))
            if name is None:
                self.error(node, f"comparison {type(op).__name__} is not supported in a chain",
                           "write each comparison on its own, joined by `and`")
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
        if isinstance(val, DictVal) or isinstance(val, Const) and \
                isinstance(val.value, (str, bool, type(None))):
            if isinstance(val, DictVal):
                self.bind_ir(target, val, node)
            else:
                self.consts[target] = val
            return
        if self.out and isinstance(self.out[-1], Assign) and isinstance(val, Var) \
                and self.out[-1].target == val.name:
            self.out[-1].target = target
            self._note_layout(target, self.out[-1].prim, self.out[-1].args)
        else:
            self.emit(Assign(target, "copy", (val,), self.loc(node)))

    def expr_Tuple(self, node):
        return TupleOp(tuple(self.expr(e) for e in node.elts))

    def expr_JoinedStr(self, node):
        v = self.static_eval(node)
        if v is MISSING_VALUE:
            self.error(node, "an f-string is compiled only where its value is known at compile "
                             "time (a dict key, a message)",
                       "build keys from constants and the variable of a `for` loop over `range` "
                       "with constant bounds; format other values outside the function")
        return Const(v)

    def expr_List(self, node, target=None):
        items = tuple(self.contiguous(self.expr(e), node) for e in node.elts)
        return self.assign("list", items, node, target)  # [] takes its type from its appends

    def expr_Operand(self, node):
        return node.value

    def expr_Attribute(self, node, target=None):
        base = self.dict_of(node.value) if isinstance(node.value, (ast.Name, ast.Subscript)) \
            else None
        if base is None and isinstance(node.value, ast.Attribute):
            b = self.expr(node.value)
            base = b if isinstance(b, DictVal) else None
        if isinstance(base, ObjVal):
            return self.object_attribute(base, node)
        if isinstance(node.value, ast.Name) and node.value.id in self.params and \
                self.depth == 0 and node.attr not in N.ATTRIBUTES:
            self.error(node, f"`{node.value.id}.{node.attr}`: `{node.value.id}` is read as an object",
                       "pass an object whose attributes are arrays, numbers, lists, dicts, None, "
                       "strings or bools", needs_statics=True)
        obj = self.resolve_static(node)
        if obj is not N.MISSING:
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
        if isinstance(x, TupleOp) and contains_dict(x):  # cache[1] of a cache held here
            k = self.static_eval(node.slice)
            if not isinstance(k, int) or not -len(x.items) <= k < len(x.items):
                self.error(node.slice, "a tuple holding a dict is indexed by a constant here")
            return x.items[k]
        if isinstance(x, DictVal):
            return self.dict_get(x, node.slice, node)
        return self.assign("getitem", (x, self.index(node.slice)), node, target)

    def index(self, sl):
        if isinstance(sl, ast.Tuple):
            return TupleOp(tuple(self.index_item(e) for e in sl.elts))
        return self.index_item(sl)

    def index_item(self, e):
        if isinstance(e, ast.List) and e.elts and all(
                isinstance(x, ast.Constant) and isinstance(x.value, int) for x in e.elts):
            # W[[0, 2, 2]]: NumPy's fancy index by a list, an index array here (Numba indexes
            # with arrays, not lists)
            return self.call_prim("array", [ast.copy_location(ast.Tuple(elts=e.elts, ctx=ast.Load()), e)],
                                  [], e, None)
        if isinstance(e, ast.Slice):
            parts = [None if p is None else self.expr(p) for p in (e.lower, e.upper, e.step)]
            return SliceOp(*parts)
        return self.expr(e)

    def resolve_static(self, node):
        """The object a dotted name like ``np.linalg.norm`` denotes, or N.MISSING."""
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name) or node.id in self.scope:
            return N.MISSING
        if node.id in self.globs:
            obj = self.globs[node.id]
        else:
            obj = N.builtin(node.id)
            if obj is N.MISSING:
                return N.MISSING
        if parts and not isinstance(obj, types.ModuleType) and not parts == []:
            if not isinstance(obj, types.ModuleType):
                return N.MISSING
        for p in reversed(parts):
            obj = getattr(obj, p, N.MISSING)
            if obj is N.MISSING:
                return N.MISSING
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
        if obj is str or obj is repr:
            v = self.static_eval(node)
            if v is MISSING_VALUE:
                self.error(node, f"`{obj.__name__}(...)` is compiled only where its value is known "
                                 "at compile time (to build a dict key)",
                           "use it on constants and on the variable of a `for` loop over `range` "
                           "with constant bounds (that loop is unrolled)", needs_statics=True)
            return Const(v)
        method, this = self.callee(f)
        if method is not None:  # self.feedforward(a), self.cost.delta(...), Cost.delta(...)
            call = node if this is None else ast.Call(
                func=f, args=[Operand(this, node)] + list(node.args), keywords=node.keywords)
            if this is not None:
                ast.copy_location(call, node)
            return self.call_helper(method, call, target)
        if isinstance(f, ast.Attribute) and isinstance(self.dict_of(f.value), ObjVal):
            self.error(f, f"`{ast.unparse(f)}` is not a method of "
                          f"{self.dict_of(f.value).cls.__qualname__} rop can call")
        if isinstance(f, ast.Attribute) and self.dict_of(f.value) is not None:
            return self.dict_method(self.dict_of(f.value), f.attr, node)
        if obj is not N.MISSING and self.user_class(obj):
            return self.construct(obj, node)  # an object of the user's class, made here
        if obj is not N.MISSING:
            prim = N.primitive_of(obj)
            if prim is not None:
                return self.call_prim(prim, node.args, node.keywords, node, target)
            lib = (getattr(obj, "__module__", "") or "").partition(".")[0]
            if isinstance(obj, types.FunctionType) and lib not in _LIBRARIES:
                self.capture(f, obj)
                return self.call_helper(obj, node, target)
            if obj is range and 1 <= len(node.args) <= 3 and not node.keywords:
                # `scores[range(N), y]`: range as an index array is np.arange
                return self.call_prim("arange", node.args, [], node, target)
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
            # `bn_param.get(...)`, `layer.forward(...)`: a dict or an object when a call passes
            # one, so at decoration (no call yet) the refusal waits for the first call
            maybe_object = isinstance(f.value, ast.Name) and not hasattr(np.ndarray, f.attr) \
                and not hasattr(list, f.attr)
            self.error(f, f"method `.{f.attr}()` is not supported",
                       "supported methods: " + ", ".join(f".{m}()" for m in N.METHODS),
                       needs_statics=maybe_object)
        self.error(f, f"cannot call `{ast.unparse(f)}`",
                   "call NumPy functions, math functions, or functions defined at module level")

    def dict_method(self, d, meth, node):
        if meth == "get" and 1 <= len(node.args) <= 2 and not node.keywords:
            key = self.static_key(node.args[0], d, node)
            if key in d.entries:
                return d.entries[key]
            return self.expr(node.args[1]) if len(node.args) == 2 else Const(None)
        if meth == "copy" and not node.args:
            new = DictVal()  # a new dict: its keys are new variables bound to the same values
            for k, e in d.entries.items():
                self.dict_set(new, ast.Constant(k), e, node)
            return new
        self.error(node.func, f"dict method `.{meth}()` is not supported here",
                   "read values by key (`d['W1']`, `d.get('W1', default)`), loop over `d.items()`, "
                   "or copy with `d.copy()`")

    def call_prim(self, prim_name, arg_nodes, kw_nodes, node, target):
        if prim_name == "len" and len(arg_nodes) == 1 and self.dict_of(arg_nodes[0]) is not None:
            return Const(len(self.dict_of(arg_nodes[0]).entries))
        if prim_name == "array" and any(k.arg == "copy" for k in kw_nodes):
            copy_kw = next(k for k in kw_nodes if k.arg == "copy")
            if not (isinstance(copy_kw.value, ast.Constant) and copy_kw.value.value is True):
                self.error(copy_kw.value, "np.array(..., copy=...) is compiled with copy=True only",
                           "drop `copy=`: np.array copies, as `copy=True` says")
            kw_nodes = [k for k in kw_nodes if k.arg != "copy"]  # np.array(dA, copy=True)
        out = [k for k in kw_nodes if k.arg == "out"]
        if out:  # np.clip(g, -5, 5, out=g): the result written into `out`, which is returned
            dest = out[0].value
            if not isinstance(dest, ast.Name):
                self.error(dest, "`out=` must name an array held in a local variable")
            self.check_writable(dest)
            val = self.call_prim(prim_name, arg_nodes, [k for k in kw_nodes if k.arg != "out"],
                                 node, None)
            holder = self.name_operand(dest)
            self.emit(SetItem(holder.name, Const(Ellipsis), val, self.loc(node)))
            return holder
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
            if p == "shape" and isinstance(a, ast.List):  # np.zeros([N, T, H]): a shape
                a = ast.copy_location(ast.Tuple(elts=a.elts, ctx=ast.Load()), a)
            bound[p] = self.prim_arg(prim, p, a)
        for k in kw_nodes:
            if k.arg not in params or k.arg in bound:
                self.error(k.value, f"unsupported keyword argument `{k.arg}` for {prim_name}",
                           f"{prim_name} takes: {', '.join(params)}")
            bound[k.arg] = self.prim_arg(prim, k.arg, k.value)
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
        problem = prim.check(dict(zip(params, args))) if prim.check else None
        if problem:  # a value the entry cannot emit (rules/table.py says why, and what instead)
            self.error(node, *problem)
        if prim_name in ("sum", "mean", "max", "min") and isinstance(args[1], TupleOp):
            return self.reduce_axes(prim_name, args, node, target)
        return self.assign(prim_name, args, node, target)

    def prim_arg(self, prim, p, a):
        """An argument of a primitive call.  Two spellings are lowered here and nowhere else:
        a list literal given to a sequence parameter (``np.concatenate([a, b])``,
        ``np.array([[1.0, w], [w, 2.0]])``) is a tuple of operands, as the tuple spelling
        is, so each item keeps its own R (a list value would be one object); and a
        ``dtype`` (``float``, ``np.float64``) is the constant naming it (``"float64"``)."""
        if p in prim.sequence and isinstance(a, (ast.List, ast.Tuple)):
            return TupleOp(tuple(self.prim_arg(prim, p, e) for e in a.elts))
        if p == "dtype" and not isinstance(a, ast.Constant):
            obj = self.resolve_static(a)
            if obj is not N.MISSING:
                try:
                    return Const(np.dtype(obj).name)
                except TypeError:
                    self.error(a, f"`{ast.unparse(a)}` is not a dtype")
        return self.expr(a)

    def dtype_operand(self, node):
        """A side of ``x.dtype == float``: ``x.dtype`` itself, or the dtype named (``float``,
        ``np.float64``, ``'float64'``) as the constant of its name."""
        if isinstance(node, ast.Attribute) and node.attr == "dtype":
            return self.expr(node)
        obj = node.value if isinstance(node, ast.Constant) else self.resolve_static(node)
        try:
            if obj is None or obj is N.MISSING:
                raise TypeError
            return Const(np.dtype(obj).name)
        except TypeError:
            self.error(node, f"`{ast.unparse(node)}` is not a dtype",
                       "compare x.dtype with float, np.float64 or another dtype")

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


_FILL = "preallocate `xs = [None] * n` and assign `xs[i] = ...` in a backward loop"
_LIST_METHODS = {
    "insert": _FILL, "extend": "append the elements one by one in a `for` loop",
    "reverse": _FILL, "pop": "read `xs[-1]` and keep a count of the elements in use",
    "remove": "build a new list with the elements to keep", "clear": "start a new list `xs = []`",
    "sort": "sorting is not differentiable code rop compiles: sort outside the function",
}

# functions of these are library functions (np.row_stack is Python code inside NumPy): rop
# needs their R-rule in the table, never inlines their source
_LIBRARIES = {"numpy", "scipy", "math", "builtins", "jax", "torch", "numba"}

_BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow",
           ast.MatMult: "matmul", ast.FloorDiv: "floordiv", ast.Mod: "mod"}
_OPSYM = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**", "matmul": "@",
          "floordiv": "//", "mod": "%"}
_CMPOPS = {ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge", ast.Eq: "eq", ast.NotEq: "ne"}


def lower(fn, fresh: bool = False, statics=None) -> Function:
    """Parse, check and lower a Python function to IR for a call's static arguments
    (frontend/statics.py; cached per function object and statics; ``fresh`` lowers again,
    reading module-level numbers anew)."""
    from .statics import statics_key
    key = statics_key(statics or {})
    cache = getattr(fn, "__rop_ir__", None)
    if not isinstance(cache, dict) or fresh:
        cache = {}
    if key in cache:
        return cache[key]
    from .parse import parse_function
    fn_ast, filename, first, lines = parse_function(fn)
    user = all_names(fn_ast)
    namer = Namer(user | set(fn.__globals__))
    low = Lowerer(fn_ast, fn.__globals__, filename, first, lines, namer, {}, col0=indent_of(fn),
                  statics=statics)
    ir = low.lower_function()
    ir.captured = Captured(low.captured.values())
    check_writes(ir, Storage(ir, {}))  # at definition, before ranks are known (conservative)
    ir.user_names = set(namer.taken)
    ir.namer = namer
    ir.temps = set(namer.temp_names)
    cache[key] = ir
    try:
        fn.__rop_ir__ = cache
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
