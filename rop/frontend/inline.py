"""Helper functions of the user's, inlined (a mixin of the Lowerer).

A helper whose body is one elementwise formula becomes a primitive of its own, its
derivative by sympy (frontend/elementwise.py); any other helper is lowered in place, by a
child Lowerer writing into the same statement list, its parameters bound to the caller's
operands (so a write into a parameter is a write into the caller's array, as in Python).
Module-level numbers and helpers read along the way are recorded (``capture``): a call
after one of them changed lowers and compiles again (api.py).
"""

from __future__ import annotations

import ast
import types

from ..ir.nodes import Assign, Const, TupleOp, Var
from .compiletime import DictVal, contains_dict
from .names import MISSING
from .namer import Namer, all_names
from .parse import indent_of


class HelperArguments:
    """Binding a helper call's arguments to its parameters, as Python does."""

    def helper_arguments(self, fn, h_ast, node):
        """The operands for a helper's parameters, in order: positional arguments, then
        keyword arguments by name, then the parameters' defaults."""
        a = h_ast.args
        if a.vararg or a.kwarg or a.kwonlyargs or a.posonlyargs:
            self.error(node, f"helper `{fn.__name__}` has *args, **kwargs or keyword-only "
                             "parameters, which rop does not inline",
                       f"declare every parameter of `{fn.__name__}` by name")
        names = [p.arg for p in a.args]
        if len(node.args) > len(names):
            self.error(node, f"{fn.__name__}() takes {len(names)} positional arguments but "
                             f"{len(node.args)} were given")
        given = dict(zip(names, node.args))
        for k in node.keywords:
            if k.arg not in names:
                self.error(k.value, f"{fn.__name__}() got an unexpected keyword argument `{k.arg}`",
                           f"its parameters are: {', '.join(names)}")
            if k.arg in given:
                self.error(k.value, f"{fn.__name__}() got multiple values for argument `{k.arg}`")
            given[k.arg] = k.value
        defaults = dict(zip(names[len(names) - len(a.defaults):], a.defaults))
        missing = [p for p in names if p not in given and p not in defaults]
        if missing:
            self.error(node, f"{fn.__name__}() is missing the argument"
                             f"{'s' if len(missing) > 1 else ''} "
                             f"{', '.join(f'`{m}`' for m in missing)}",
                       f"pass {', '.join(missing)} (the parameters without a default value)")
        out = []
        for p in names:
            if p in given:
                out.append(self.expr(given[p]))
            else:
                out.append(_const_operand(ast.literal_eval(defaults[p])))
        return out


def _const_operand(v):
    if isinstance(v, tuple):
        return TupleOp(tuple(_const_operand(x) for x in v))
    return Const(v)


class HelperInlining(HelperArguments):
    """The helper-call methods of :class:`rop.frontend.lower.Lowerer`."""

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
        if globs.get(name, MISSING) is obj:  # not a builtin
            self.captured[(id(globs), name)] = (globs, name, obj)

    def call_helper(self, fn, node, target, statement=False):
        """Inline a helper of the user's (or make it an elementwise primitive).  As a
        ``statement`` it is called for its writes into its arguments and may return nothing."""
        if self.depth > 8:
            self.error(node, f"helper `{fn.__name__}` calls itself (recursion is not supported)",
                       "write the recursion as a loop")
        from .parse import parse_function
        h_ast, h_file, h_first, h_lines = parse_function(fn)
        args = self.helper_arguments(fn, h_ast, node)
        from .elementwise import elementwise_helper
        plain = all(isinstance(a, Var) or (isinstance(a, Const) and isinstance(a.value, (int, float))
                                           and not isinstance(a.value, bool)) for a in args)
        prim = elementwise_helper(fn, h_ast, fn.__globals__) if plain else None
        if prim is not None:
            if prim.name not in self.helpers:
                h_namer = Namer(all_names(h_ast))
                child = type(self)(h_ast, fn.__globals__, h_file, h_first, h_lines, h_namer, {}, depth=0,
                                col0=indent_of(fn))
                child.captured = self.captured
                h_ir = child.lower_function()
                h_ir.name = prim.name.split(":", 1)[1]  # Class_method for a static method
                h_ir.temps = set(h_namer.temp_names)
                self.helpers[prim.name] = (prim, h_ir)
            return self.assign(prim.name, args, node, target)
        scope = {}
        child = type(self)(h_ast, fn.__globals__, h_file, h_first, h_lines, self.namer, self.helpers,
                        scope=scope, depth=self.depth + 1, col0=indent_of(fn))
        self.namer.taken |= all_names(h_ast)
        child.out = self.out
        child.captured = self.captured
        child.lists, child.strided = self.lists, self.strided
        child.strided_items = self.strided_items
        child.list_copies = self.list_copies
        for shared in ("consts", "static_ints", "dictvals", "tuples", "held", "maybe_none",
                       "list_lens"):
            setattr(child, shared, getattr(self, shared))  # keyed by IR names: one namespace
        child.dynamic = self.dynamic
        child.params = set()
        for p, a in zip(h_ast.args.args, args):
            if isinstance(a, Var):
                scope[p.arg] = a.name
            elif isinstance(a, DictVal):  # the caller's dict itself, as in Python
                scope[p.arg] = self.namer.fresh(p.arg)
                self.dictvals[scope[p.arg]] = a
            elif isinstance(a, Const) and isinstance(a.value, (str, bool, type(None))):
                scope[p.arg] = self.namer.fresh(p.arg)  # activation="relu": known now
                self.consts[scope[p.arg]] = a
            elif isinstance(a, TupleOp) and contains_dict(a):  # a cache holding a dict
                scope[p.arg] = self.namer.fresh(p.arg)
                self.tuples[scope[p.arg]] = self.snapshot(a, node)
            else:
                scope[p.arg] = self.namer.fresh(p.arg)
                self.emit(Assign(scope[p.arg], "copy", (a,), self.loc(node)))
        child.params = {p.arg for p in h_ast.args.args}
        # a parameter the helper binds anew (`x = x - x.max()`, perhaps on one side of an `if`
        # only) is a local of the helper from its first line, holding the caller's value: the
        # caller's variable keeps its own, on every path
        stores = {n.id for n in ast.walk(ast.Module(h_ast.body, [])) if isinstance(n, ast.Name)
                  and isinstance(n.ctx, ast.Store)}
        for p, a in zip(h_ast.args.args, args):
            if p.arg in stores and isinstance(a, Var) and scope.get(p.arg) == a.name:
                caller = a.name
                scope[p.arg] = self.namer.fresh(p.arg)
                self.emit(Assign(scope[p.arg], "copy", (Var(caller),), self.loc(node)))
                child.rebound.add(p.arg)
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


class Captured(tuple):
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
