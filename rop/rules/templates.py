"""Expression templates: rules and emitters are written as Python expressions.

``T("R_a @ b + a @ R_b")(a=..., b=..., R_a=..., R_b=...)`` returns an ``ast.expr`` in
which each placeholder name is replaced by the given expression.  Names that are
not placeholders (``np``, ``rt``) stay as they are.  Writing rules as the formula
itself keeps the rule table reviewable line by line against the paper.
"""

from __future__ import annotations

import ast
import copy
from functools import lru_cache


class _Subst(ast.NodeTransformer):
    def __init__(self, env):
        self.env = env

    def visit_Name(self, node):
        if node.id in self.env:
            return copy.deepcopy(self.env[node.id])
        return node


@lru_cache(maxsize=None)
def _parse(src: str) -> ast.expr:
    return ast.parse(src, mode="eval").body


def T(src: str):
    """Compile a template once; call it with placeholder -> ast.expr bindings."""
    tree = _parse(src)

    def build(**env) -> ast.expr:
        return _Subst(env).visit(copy.deepcopy(tree))

    build.src = src
    return build


def name(n: str) -> ast.Name:
    return ast.Name(id=n, ctx=ast.Load())


def const(v) -> ast.expr:
    if isinstance(v, float) and v < 0 or isinstance(v, int) and not isinstance(v, bool) and v < 0:
        return ast.UnaryOp(op=ast.USub(), operand=ast.Constant(-v))
    return ast.Constant(v)


def is_const(node, value=None) -> bool:
    if isinstance(node, ast.Constant) and not isinstance(node.value, (bool, str)) and node.value is not None:
        return value is None or node.value == value
    return False


def add(a, b):
    """a + b, folding a missing (structurally zero) side."""
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(b, ast.UnaryOp) and isinstance(b.op, ast.USub):
        return ast.BinOp(left=a, op=ast.Sub(), right=b.operand)
    return ast.BinOp(left=a, op=ast.Add(), right=b)


def neg(a):
    if a is None:
        return None
    if isinstance(a, ast.UnaryOp) and isinstance(a.op, ast.USub):
        return a.operand
    return ast.UnaryOp(op=ast.USub(), operand=a)


def mul(a, b):
    """a * b, dropping a factor of exactly 1 (never a zero: zeros never reach here)."""
    if is_const(a, 1):
        return b
    if is_const(b, 1):
        return a
    if is_const(a, -1):
        return neg(b)
    return ast.BinOp(left=a, op=ast.Mult(), right=b)
