"""Recognising elementwise helpers (``sigmoid``) so their derivative comes from sympy.

A helper whose body is straight-line arithmetic on its arguments and elementwise
functions is a *new primitive*: it is emitted as a function of its own in the
generated module and its R-rule is ∂f/∂aᵢ derived by sympy, in terms of the
helper's result where that is shorter — ``R{σ(x)} = y (1 - y) R{x}``, as in the
paper, instead of the chain rule spelled out through ``exp`` and a division.
"""

from __future__ import annotations

import ast
import types

from ..rules.memo import memo
from ..rules.table import Prim, nd_broadcast, RULES
from ..rules.templates import T, add, mul
from . import names as N

_UNARY = {name for name in RULES if RULES[name].kind == "unary"}
_BIN = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
        ast.Div: lambda a, b: a / b, ast.Pow: lambda a, b: a ** b}

_CACHE: dict = {}


class _NotElementwise(Exception):
    pass


def _to_sympy(node, env, globs):
    import sympy
    if isinstance(node, ast.Name):
        if node.id in env:
            return env[node.id]
        obj = globs.get(node.id)
        if isinstance(obj, (int, float)) and not isinstance(obj, bool):
            return sympy.Float(obj) if isinstance(obj, float) else sympy.Integer(obj)
        raise _NotElementwise
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
            and not isinstance(node.value, bool):
        return sympy.Integer(node.value) if isinstance(node.value, int) else sympy.Float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
        return _BIN[type(node.op)](_to_sympy(node.left, env, globs), _to_sympy(node.right, env, globs))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _to_sympy(node.operand, env, globs)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords:
        obj = _resolve(node.func, globs)
        prim = N.primitive_of(obj) if obj is not None else None
        if prim in _UNARY:
            return sympy.sympify(RULES[prim].sympy_fn, locals={"x": _to_sympy(node.args[0], env, globs)})
    raise _NotElementwise


def _resolve(node, globs):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in globs:
        return None
    obj = globs[node.id]
    for p in reversed(parts):
        if not isinstance(obj, types.ModuleType):
            return None
        obj = getattr(obj, p, None)
    return obj


def sympy_body(fn_ast: ast.FunctionDef, globs):
    """(symbols, expression) of an elementwise helper, or None."""
    import sympy
    params = [a.arg for a in fn_ast.args.args]
    if not params or fn_ast.args.defaults:
        return None
    syms = [sympy.Symbol(p, real=True) for p in params]
    env = dict(zip(params, syms))
    body = fn_ast.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    try:
        for st in body[:-1]:
            if not (isinstance(st, ast.Assign) and len(st.targets) == 1
                    and isinstance(st.targets[0], ast.Name)):
                return None
            env[st.targets[0].id] = _to_sympy(st.value, env, globs)
        if not body or not isinstance(body[-1], ast.Return) or body[-1].value is None:
            return None
        return syms, _to_sympy(body[-1].value, env, globs)
    except _NotElementwise:
        return None


def _derive(fn_ast, globs):
    """[param names, derivative sources in a0.. and y, formula] or None (not elementwise)."""
    import sympy
    from ..rules import elementwise as ew
    found = sympy_body(fn_ast, globs)
    if found is None:
        return None
    syms, expr = found
    if len(syms) == 1:
        d = ew.derivative(expr.subs(syms[0], ew.X))
        srcs = [ast.unparse(ew.to_ast(d.subs(ew.X, sympy.Symbol("a0", real=True))))]
        derivs = [d]
    else:
        derivs = [_prefer_y(sympy.simplify(sympy.diff(expr, s)), expr) for s in syms]
        ren = {s: sympy.Symbol(f"a{i}", real=True) for i, s in enumerate(syms)}
        srcs = [ast.unparse(ew.to_ast(d.subs(ren))) for d in derivs]
    formula = " + ".join(f"({d}) * R{{{s.name}}}" for d, s in zip(derivs, syms))
    return [[s.name for s in syms], srcs, formula]


def _memo_key(fn_ast, globs):
    consts = sorted((n.id, repr(globs[n.id])) for n in ast.walk(fn_ast)
                    if isinstance(n, ast.Name) and isinstance(globs.get(n.id), (int, float)))
    return "helper:" + ast.dump(fn_ast) + repr(consts)


def elementwise_helper(fn, fn_ast, globs):
    """A rule-table entry for ``fn`` if it is elementwise, else None (then it is inlined).
    Cached per function and the module-level numbers it reads (a changed one derives anew)."""
    if not _looks_elementwise(fn_ast):
        return None
    key = _memo_key(fn_ast, globs)
    if _CACHE.get(fn, (None,))[0] == key:
        return _CACHE[fn][1]
    found = memo(key, lambda: _derive(fn_ast, globs))
    prim = None
    if found is not None:
        names, srcs, formula = found
        params = tuple(f"a{i}" for i in range(len(names)))
        # a static method is emitted as Class_method: its bare name may be a local of the
        # caller's (`delta = Cost.delta(z, a, y)`)
        ename = fn.__qualname__.replace("<locals>.", "").replace(".", "_")
        call = T(f"{ename}({', '.join(params)})")
        # a parameter the formula does not depend on (`delta(z, a, y) = a - y` in z) has
        # derivative 0: no term at all, never `0.0 * R_z`
        d_tmpls = [None if _is_zero(src) else T(src) for src in srcs]

        def emit(env, call=call):
            return call(**env)

        def rule(env, renv, y, d_tmpls=d_tmpls, params=params):
            out = None
            for p, dt in zip(params, d_tmpls):
                if dt is not None and renv.get(p) is not None:
                    out = add(out, mul(dt(y=y, **env), renv[p]))
            return out
        prim = Prim("helper:" + ename, params, emit, rule, nd_broadcast, kind="helper",
                    formula=formula)
    _CACHE[fn] = (key, prim)
    return prim


def _is_zero(src: str) -> bool:
    try:
        return float(src) == 0.0
    except ValueError:
        return False


def _looks_elementwise(fn_ast) -> bool:
    """Cheap syntactic pre-check before sympy is asked (no subscripts, loops, reductions)."""
    for node in ast.walk(fn_ast):
        if isinstance(node, (ast.Subscript, ast.For, ast.While, ast.If, ast.IfExp, ast.Compare,
                             ast.List, ast.Tuple, ast.BoolOp)):
            return False
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            return False
        if isinstance(node, ast.Attribute) and node.attr in N.ATTRIBUTES:
            return False
    return True


def _prefer_y(d, expr):
    from ..rules import elementwise as ew
    dy = d.subs(expr, ew.Y)
    return dy if ew.cost(dy) < ew.cost(d) else d
