"""Derivatives of elementwise functions, derived with sympy rather than written by hand.

For ``y = f(x)`` the R-rule is ``R{y} = f'(x) R{x}``.  ``f'`` is differentiated by
sympy and then, where that is shorter, rewritten in terms of the primal result
``y`` (which the generated code already holds): ``tanh' = 1 - y**2``,
``exp' = y``, ``sigmoid' = y*(1 - y)`` — the forms the papers use, and the
cheapest to evaluate.  User helpers such as ``sigmoid`` go through the same path.
"""

from __future__ import annotations

import ast
from functools import lru_cache

import sympy
from sympy.printing.numpy import NumPyPrinter

X, Y = sympy.symbols("x y", real=True)


class _Printer(NumPyPrinter):
    """Prints ``np.exp(x)`` rather than ``numpy.exp(x)``, and floats for rationals."""

    def __init__(self):
        super().__init__({"fully_qualified_modules": True, "inline": True})

    def _module_format(self, fqn, register=True):
        out = super()._module_format(fqn, register)
        return "np." + out[len("numpy."):] if out.startswith("numpy.") else out

    def _print_Rational(self, expr):
        return repr(float(expr.p) / float(expr.q)) if expr.q != 1 else repr(float(expr.p))

    def _print_Integer(self, expr):
        return repr(float(expr.p))

    def _print_Half(self, expr):
        return "0.5"

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.as_base_exp()
        if exp.is_Integer and exp < 0:  # x**-1 reads as 1.0 / x
            den = base if exp == -1 else base ** (-exp)
            return f"1.0 / {self.parenthesize(den, 100)}" if exp != -1 or not base.is_Atom else f"1.0 / {self._print(den)}"
        if exp.is_Integer:  # integer powers stay integers: numba turns them into products
            return f"{self.parenthesize(base, 60)} ** {int(exp)}"
        return super()._print_Pow(expr, rational=rational)


class _DropUnit(ast.NodeTransformer):
    def visit_BinOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, ast.Mult) and isinstance(node.left, ast.Constant) \
                and node.left.value == 1:
            return node.right
        return node


def to_ast(expr: sympy.Expr) -> ast.expr:
    """A sympy expression in ``x``/``y`` as a Python ``ast`` expression (names x, y)."""
    return _DropUnit().visit(ast.parse(_Printer().doprint(expr), mode="eval").body)


def cost(expr: sympy.Expr) -> int:
    """Evaluation cost: a transcendental function costs far more than an add."""
    funcs = sum(1 for node in sympy.preorder_traversal(expr) if isinstance(node, sympy.Function))
    return sympy.count_ops(expr) + 10 * funcs


def _tidy(expr: sympy.Expr) -> sympy.Expr:
    """``-y*(y - 1)`` reads better as ``y*(1 - y)``: push a leading minus into a sum factor."""
    if isinstance(expr, sympy.Mul) and expr.could_extract_minus_sign():
        factors = list(expr.args)
        for i, f in enumerate(factors):
            if isinstance(f, sympy.Add):
                rest = sympy.Mul(*(factors[:i] + factors[i + 1:]), evaluate=True)
                return sympy.Mul(-rest, sympy.Add(*[-a for a in f.args], evaluate=False), evaluate=False)
    return expr


def _in_terms_of_y(fx: sympy.Expr, dfx: sympy.Expr):
    """``dfx`` rewritten with ``y = fx`` where possible, else None."""
    direct = sympy.diff(fx, X).subs(fx, Y)
    if X not in direct.free_symbols:
        return direct
    try:
        sols = sympy.solve(sympy.Eq(Y, fx), X, dict=False)
    except Exception:  # sympy cannot invert f: keep the x-form
        return None
    for inv in sols:
        cand = sympy.factor(sympy.simplify(dfx.subs(X, inv)))
        if X not in cand.free_symbols and _same(cand.subs(Y, fx), dfx):
            return cand
    return None


_PROBES = (-2.7, -1.3, -0.6, 0.3, 0.8, 1.1, 2.2, 2.9)


def _same(a: sympy.Expr, b: sympy.Expr) -> bool:
    """Numerically equal wherever both are real: an inverse taken on the wrong branch
    (sin⁻¹ on [π/2, π]) is caught here, not shipped."""
    seen = 0
    for p in _PROBES:
        try:
            va, vb = complex(a.subs(X, p).evalf()), complex(b.subs(X, p).evalf())
        except (TypeError, ZeroDivisionError):
            continue
        if abs(va.imag) > 1e-12 or abs(vb.imag) > 1e-12 or va != va or vb != vb:
            continue
        if abs(va - vb) > 1e-9 * (1 + abs(vb)):
            return False
        seen += 1
    return seen >= 2


@lru_cache(maxsize=None)
def derivative(fx: sympy.Expr) -> sympy.Expr:
    """f'(x) for ``fx`` an expression in ``X``: in ``Y`` when that is no longer than in ``X``."""
    dfx = sympy.simplify(sympy.diff(fx, X))
    dfy = _in_terms_of_y(fx, dfx)
    if dfy is not None and cost(dfy) < cost(dfx):
        return _tidy(dfy)
    return dfx


def partials(fx: sympy.Expr, args: tuple) -> list:
    """∂f/∂a for each symbol of an n-ary elementwise expression (used for user helpers)."""
    out = []
    for a in args:
        d = sympy.simplify(sympy.diff(fx, a))
        dy = d.subs(fx, Y)
        out.append(dy if cost(dy) < cost(d) else d)
    return out
