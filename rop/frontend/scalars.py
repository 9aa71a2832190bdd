"""Names that hold a Python number wherever the function assigns them.

The lowering refuses ``b = a; b -= 1`` when ``a`` may be an array, because NumPy would change
both names' array in place.  A counter is not an array: ``j = L; while j >= 0: ...; j -= 1``
is ordinary code, and an int cannot be changed in place.  This module tells the two apart from
the source alone (ranks are inferred only after lowering): a name is a scalar when every
assignment to it, anywhere in the function, is a number built from numbers (constants,
``len``, ``.shape[k]``, ``.ndim``, ``.size``, ``int``/``float``/``round``, range counters and
other such names, combined by arithmetic, comparisons and conditional expressions).  A
parameter is never assumed to be a scalar.
"""

from __future__ import annotations

import ast

_NUMBER_CALLS = {"len", "int", "float", "round", "bool"}


def surely_scalars(fn: ast.FunctionDef) -> set[str]:
    """The local names of ``fn`` that are Python numbers at every assignment."""
    defs: dict[str, list] = {}
    unknown: set[str] = {a.arg for a in fn.args.args + fn.args.kwonlyargs}

    def add(target, value):
        if isinstance(target, ast.Name):
            defs.setdefault(target.id, []).append(value)
        elif isinstance(target, (ast.Tuple, ast.List)):  # unpacking: not followed
            for t in ast.walk(target):
                if isinstance(t, ast.Name):
                    unknown.add(t.id)

    for node in ast.walk(fn):
        if isinstance(node, ast.Assign):
            for t in node.targets:
                add(t, node.value)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None:
            add(node.target, node.value if isinstance(node, ast.AnnAssign)
                else ast.BinOp(node.target, node.op, node.value))
        elif isinstance(node, ast.For):
            add(node.target, ast.Constant(0) if _is_range(node.iter) else node.iter)
        elif isinstance(node, (ast.NamedExpr,)):
            add(node.target, node.value)

    scalars = set(defs) - unknown
    changed = True
    while changed:  # greatest fixed point: drop a name as soon as one definition may be an array
        changed = False
        for name in list(scalars):
            if not all(_number(v, scalars) for v in defs[name]):
                scalars.discard(name)
                changed = True
    return scalars


def _is_range(it) -> bool:
    if isinstance(it, ast.Call) and isinstance(it.func, ast.Name):
        if it.func.id == "range":
            return True
        if it.func.id == "reversed" and it.args:
            return _is_range(it.args[0])
    return False


def _number(e, scalars) -> bool:
    if isinstance(e, ast.Constant):
        return isinstance(e.value, (int, float, bool)) and not isinstance(e.value, complex)
    if isinstance(e, ast.Name):
        return e.id in scalars
    if isinstance(e, ast.BinOp):
        return _number(e.left, scalars) and _number(e.right, scalars)
    if isinstance(e, ast.UnaryOp):
        return _number(e.operand, scalars)
    if isinstance(e, (ast.Compare, ast.BoolOp)):
        parts = [e.left, *e.comparators] if isinstance(e, ast.Compare) else e.values
        return all(_number(p, scalars) for p in parts)
    if isinstance(e, ast.IfExp):
        return _number(e.body, scalars) and _number(e.orelse, scalars)
    if isinstance(e, ast.Attribute):
        return e.attr in ("ndim", "size")
    if isinstance(e, ast.Subscript):  # x.shape[k]
        return isinstance(e.value, ast.Attribute) and e.value.attr == "shape" \
            and not isinstance(e.slice, ast.Slice)
    if isinstance(e, ast.Call) and isinstance(e.func, ast.Name):
        return e.func.id in _NUMBER_CALLS and e.func.id not in scalars
    return False
