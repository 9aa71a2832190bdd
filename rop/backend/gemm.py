"""Pass: matrix products go to BLAS as ``rt.gemm`` calls, a sum of them as one call.

The R-transform's product rule writes R{W @ a} as ``R_W @ a + W @ R_a``; in Numba each ``@``
allocates its own output and ``+`` a third array.  ``rt.gemm(R_W, a, W, R_a)`` has BLAS add
the second product into the first one's output (see :mod:`rop.runtime.blas`).  A lone
product (``W @ x``, ``W @ x + b[:, None]``) becomes ``rt.gemm(W, x)`` too: Numba compiles its
own ``@`` once per combination of operand layouts, 0.15 s each, against 40 ms for an
``rt.gemm`` call site, and the call is faster at small sizes (docs/performance.md).

A product with a stack of matrices (rank 3) becomes ``rt.matmul(a, b)``, which Numba can
compile (its own ``@`` takes vectors and matrices only).

Only terms added with ``+`` are fused into one call; the other terms of the sum (a bias, a
subtracted product, anything else) are summed as written and passed as ``c``.  Products are
recognised by rank: both operands must be known matrices (rank 2); the runtime helper still
checks the types and falls back to the plain expression, so a wrong guess here costs speed,
never correctness.
"""

from __future__ import annotations

import ast
import copy

from ..rules.table import SAME_RANK_CALLS, matmul_rank
from ..runtime.blas import MAX_PAIRS


def matmul_to_gemm(expr: ast.expr, rank_of) -> ast.expr | None:
    """``expr`` with its matrix products as ``rt.gemm`` calls, or None if it has none.
    ``rank_of(e)`` is the rank of a subexpression, or None when unknown."""
    f = _Fuse(rank_of)
    out = f.visit(_DotAsMatmul(rank_of).visit(copy.deepcopy(expr)))
    return out if f.changed else None


class _DotAsMatmul(ast.NodeTransformer):
    """``np.dot(a, b)`` and ``a.dot(b)`` of two matrices are ``a @ b`` (NumPy's definition for
    2-D operands), so the products of code written with ``dot`` (Nielsen, CS231n) are fused
    as those written with ``@`` are."""

    def __init__(self, rank_of):
        self.rank_of = rank_of

    def visit_Call(self, node):
        node = self.generic_visit(node)
        f = node.func
        if not (isinstance(f, ast.Attribute) and f.attr == "dot" and not node.keywords):
            return node
        if isinstance(f.value, ast.Name) and f.value.id == "np" and len(node.args) == 2:
            a, b = node.args
        elif len(node.args) == 1 and not (isinstance(f.value, ast.Name) and f.value.id == "np"):
            a, b = f.value, node.args[0]
        else:
            return node
        if self.rank_of(a) == 2 and self.rank_of(b) == 2:
            return ast.BinOp(left=a, op=ast.MatMult(), right=b)
        return node


class _Fuse(ast.NodeTransformer):
    def __init__(self, rank_of):
        self.rank_of = rank_of
        self.changed = False

    def visit_BinOp(self, node):
        if self.is_stacked_product(node):  # Numba's `@` takes no stacks of matrices
            node = self.generic_visit(node)
            self.changed = True
            return ast.Call(func=ast.Attribute(value=ast.Name("rt", ast.Load()), attr="matmul",
                                               ctx=ast.Load()), args=[node.left, node.right],
                            keywords=[])
        if self.is_matrix_product(node):  # a product that is not a term of a sum
            node = self.generic_visit(node)
            return self.gemm([node.left, node.right], [])
        if not isinstance(node.op, (ast.Add, ast.Sub)):
            return self.generic_visit(node)
        flat = _flatten(node, 1)
        is_product = [sign > 0 and self.is_matrix_product(t) for sign, t in flat]  # as written
        terms = [(sign, self.generic_visit(t) if p else self.visit(t))
                 for (sign, t), p in zip(flat, is_product)]
        products = [t for (_, t), p in zip(terms, is_product) if p]
        if not products:
            return _rebuild(terms)
        fused, rest = products[:MAX_PAIRS], products[MAX_PAIRS:]
        others = [(s, t) for s, t in terms if not any(t is p for p in fused)]
        keywords = []
        if others:
            c = _rebuild(others)
            if rest:
                c = self.visit(c)  # more than MAX_PAIRS products: the rest fuse into c
            keywords.append(ast.keyword(arg="c", value=c))
        return self.gemm([x for p in fused for x in (p.left, p.right)], keywords)

    def gemm(self, args, keywords):
        self.changed = True
        return ast.Call(func=ast.Attribute(value=ast.Name("rt", ast.Load()), attr="gemm",
                                           ctx=ast.Load()), args=args, keywords=keywords)

    def is_stacked_product(self, t):
        if not (isinstance(t, ast.BinOp) and isinstance(t.op, ast.MatMult)):
            return False
        ranks = (self.rank_of(t.left), self.rank_of(t.right))
        return any(r is not None and r > 2 for r in ranks)

    def is_matrix_product(self, t):
        return isinstance(t, ast.BinOp) and isinstance(t.op, ast.MatMult) and \
            self.rank_of(t.left) == 2 and self.rank_of(t.right) == 2


def _flatten(node, sign):
    """[(+1 | -1, term)] of a chain of ``+`` and ``-``, in source order."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        right = sign if isinstance(node.op, ast.Add) else -sign
        return _flatten(node.left, sign) + _flatten(node.right, right)
    return [(sign, node)]


def _rebuild(terms):
    """The sum of signed terms, in order (a leading negative term as ``-t``)."""
    sign, out = terms[0]
    if sign < 0:
        out = ast.UnaryOp(op=ast.USub(), operand=out)
    for sign, t in terms[1:]:
        out = ast.BinOp(left=out, op=ast.Add() if sign > 0 else ast.Sub(), right=t)
    return out


def rank_of_expr(types: dict):
    """A ``rank_of`` for :func:`matmul_to_gemm` from the rank-types of variables (see
    :mod:`rop.ir.shapes`): names, list items, ``.T``, ``@``, elementwise arithmetic and
    constants; None for anything else."""
    def rank(e):
        if isinstance(e, ast.Name):
            t = types.get(e.id)
            return t if isinstance(t, int) else None
        if isinstance(e, ast.Constant):
            return 0 if isinstance(e.value, (int, float)) else None
        if isinstance(e, ast.Attribute) and e.attr == "T":
            return rank(e.value)
        if isinstance(e, ast.UnaryOp):
            return rank(e.operand)
        if isinstance(e, ast.Subscript):
            return _subscript_rank(e, types, rank)
        if isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute) and e.args and \
                isinstance(e.func.value, ast.Name) and e.func.value.id in ("np", "rt") and \
                e.func.attr in SAME_RANK_CALLS:  # np.transpose(x, axes), rt.tanh(x), ...
            return rank(e.args[0])
        if isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute) and \
                isinstance(e.func.value, ast.Name) and e.func.value.id in ("np", "rt") and \
                e.func.attr == "reshape" and len(e.args) == 2 and isinstance(e.args[1], ast.Tuple):
            return len(e.args[1].elts)  # rt.reshape(x, (B, -1)): the rank of the new shape
        if isinstance(e, ast.BinOp):
            a, b = rank(e.left), rank(e.right)
            if a is None or b is None:
                return None
            if isinstance(e.op, ast.MatMult):
                return matmul_rank(a, b)
            return max(a, b)
        return None
    return rank



def _subscript_rank(e, types, rank):
    if isinstance(e.value, ast.Name):
        t = types.get(e.value.id)
        if isinstance(t, tuple) and t[0] == "list" and not isinstance(e.slice, ast.Slice):
            return t[1] if isinstance(t[1], int) else None
    base = rank(e.value)
    if base is None:
        return None
    items = e.slice.elts if isinstance(e.slice, ast.Tuple) else [e.slice]
    out = base
    for it in items:
        if isinstance(it, ast.Slice):
            continue
        if isinstance(it, ast.Constant) and it.value is None:
            out += 1
        elif rank(it) == 0:
            out -= 1
        else:
            return None  # fancy indexing, Ellipsis: not worth guessing
    return out if out >= 0 else None
