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

import sympy

from ..rules import elementwise as ew
from ..rules.table import Prim, nd_broadcast, RULES
from ..rules.templates import T, add, mul
from . import names as N

_SYMPY_UNARY = {name: RULES[name].sympy_fn for name in RULES if RULES[name].kind == "unary"}
_BIN = {ast.Add: sympy.Add, ast.Sub: lambda a, b: a - b, ast.Mult: sympy.Mul,
        ast.Div: lambda a, b: a / b, ast.Pow: sympy.Pow}

_CACHE: dict = {}


class _NotElementwise(Exception):
    pass


def _to_sympy(node, env, globs):
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
        if prim in _SYMPY_UNARY:
            return _SYMPY_UNARY[prim](_to_sympy(node.args[0], env, globs))
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


def elementwise_helper(fn, fn_ast, globs):
    """A rule-table entry for ``fn`` if it is elementwise, else None (then it is inlined)."""
    key = fn
    if key in _CACHE:
        return _CACHE[key]
    found = sympy_body(fn_ast, globs)
    prim = None
    if found is not None:
        syms, expr = found
        if len(syms) == 1:
            d = ew.derivative(expr.subs(syms[0], ew.X))
            derivs = [d]
            subs = {"x": 0}
        else:
            derivs = [sympy.simplify(sympy.diff(expr, s)) for s in syms]
            derivs = [_prefer_y(d, expr) for d in derivs]
        params = tuple(f"a{i}" for i in range(len(syms)))
        sym_names = [s.name for s in syms]
        name = fn.__name__
        call = T(f"{name}({', '.join(params)})")
        d_tmpls = []
        for d in derivs:
            if len(syms) == 1:
                d_tmpls.append(T(ast.unparse(ew.to_ast(d))))
            else:
                d_tmpls.append(T(ast.unparse(ew.to_ast(d.subs(
                    {s: sympy.Symbol(f"a{i}", real=True) for i, s in enumerate(syms)})))))

        def emit(env, call=call):
            return call(**env)

        def rule(env, renv, y, d_tmpls=d_tmpls, params=params):
            out = None
            for i, (p, dt) in enumerate(zip(params, d_tmpls)):
                if renv.get(p) is None:
                    continue
                binding = {"y": y}
                if len(params) == 1:
                    binding["x"] = env[p]
                else:
                    binding.update(env)
                out = add(out, mul(dt(**binding), renv[p]))
            return out
        formula = " + ".join(f"({d}) * R{{{s}}}" for d, s in zip(derivs, sym_names))
        prim = Prim("helper:" + name, params, emit, rule, nd_broadcast, kind="helper", formula=formula)
    _CACHE[key] = prim
    return prim


def _prefer_y(d, expr):
    dy = d.subs(expr, ew.Y)
    return dy if ew.cost(dy) < ew.cost(d) else d
