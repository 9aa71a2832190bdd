"""The R-rule table: one entry per primitive.

Each entry says, side by side, how the primitive is emitted for Numba, what its
R{·} is, how many dimensions its result has, and on which inputs its test draws —
so the emitter, the R-transform, the docs page and the rule tests all read the
same line.  Rules come in the algebraic shapes Pearlmutter's rules name:

* ``zero``      — piecewise-constant or integer-valued results (shapes, comparisons): R = 0;
* ``linear``    — R{f(x)} = f(R{x}) (transpose, sum, indexing, reshape);
* ``additive``  — R{a ± b} = R{a} ± R{b};
* ``bilinear``  — the product rule, R{f(a, b)} = f(R{a}, b) + f(a, R{b}) (``*``, ``@``, dot, outer);
* ``unary``     — the chain rule for elementwise functions, with f' derived by sympy;
* ``custom``    — anything else (division, maxima, where, clip), written as the formula;
* ``runtime``   — no R-rule and no spelling: a helper only R-code calls (``rt.broadcast_as``,
  ``rt.max_tangent``, ``a if c else b``, and ``call``, any other function called by name).

A rule returns its formula as an expression; the R-transform flattens it into three-address
statements on these entries (``rop/ir/builder.py``), finding each operation's entry by its
emit form or its spelling, so a new entry needs nothing more to appear in R-code.

Summing terms and skipping structurally zero ones lives once, in :func:`apply_rule`.
An entry also carries how user code spells it (``spelled``: ``"np.exp"``, ``"math.exp"``,
``".sum"``), whether it is a product worth versioning on a zero slot (``costly``) and whether
a relaxation's measure of change may be made of it (``measure``); the name tables of
``frontend/names.py``, ``COSTLY``, ``MEASURE`` and ``SAME_RANK_CALLS`` below are read off the
entries, and so is ``docs/rules.md``.  Adding a primitive is one call in the list at the
bottom of this file and one rule-test program.
"""

from __future__ import annotations

import ast
import functools
import json
import os
from dataclasses import dataclass, field
from typing import Callable, Optional

from .memo import memo
from .templates import T, add, mul, neg, is_const
from .arrays import (  # rule helpers of the entries of issue 18
    EINSUM_OPS, array_emit, astype_check, checks, constant, einsum_check, einsum_emit,
    einsum_rule, float_dtype_check, full_like_rule, moment_check, nd_array, nd_axis_or_flat,
    nd_einsum, nd_of_items, nd_tile, nd_unravel, pad_check, pad_rule, prod_rule, stacking,
    var_rule)

Expr = ast.expr


@dataclass
class Prim:
    name: str
    params: tuple                      # canonical parameter names, in order
    emit: Callable                     # (env: dict[str, Expr]) -> Expr
    rule: Optional[Callable]           # (env, renv, y) -> Expr | None; None: R = 0
    ndim: Callable                     # (nd: dict[str, int|None], ops) -> int | None
    diff: tuple = ()                   # params that carry R (default: all without a default)
    defaults: dict = field(default_factory=dict)
    kind: str = "custom"
    formula: str = ""                  # R{y} as the docs show it
    domain: str = "real"               # where the rule test draws inputs: real, positive, unit
    sympy_fn: object = None            # for unary elementwise entries
    test_shapes: tuple = ()            # example shapes for the rule tests
    spelled: tuple = ()                # how user code names it: "np.exp", "math.exp", "abs",
    #                                    ".sum" (a method); frontend/names.py reads these
    costly: bool = False               # a product: versioned on a zero slot even alone (slots)
    measure: bool = False              # a measure of change may be made of it (relaxation)
    sequence: tuple = ()               # params whose list literal is a tuple of operands
    #                                    (np.concatenate([a, b])): each item keeps its own R
    check: Optional[Callable] = None   # (args: dict[str, Operand]) -> (message, hint) | None:
    #                                    argument values the entry refuses at the user's line
    views: tuple = ()                  # params whose storage the result may be or view
    holds: tuple = ()                  # params whose elements the result (a list) holds

    def derivative_params(self):
        return self.diff if self.diff else tuple(p for p in self.params if p not in self.defaults)


RULES: dict[str, Prim] = {}


def register(prim: Prim, **facets) -> Prim:
    """Enter ``prim`` in the table, with its other facets (``spelled``, ``costly``, ...)."""
    for k, v in facets.items():
        if not hasattr(prim, k):
            raise TypeError(f"no facet {k!r} of a primitive")
        setattr(prim, k, v)
    RULES[prim.name] = prim
    return prim


# ----------------------------------------------------------------------------- ndim helpers

def nd_broadcast(nd, ops=None):
    nd = {k: v for k, v in nd.items() if "#" not in k}  # facts of tuples and lists (#len, #items)
    vals = [v for v in nd.values() if v is not None] if nd else []
    if any(v is None for v in nd.values()):
        return None
    return max(vals, default=0)


def nd_same(param="x"):
    """The rank of the argument ``param`` (marked, so that the emitter's rank inference knows
    which emitted calls keep their first argument's rank: see SAME_RANK_CALLS)."""
    def f(nd, ops=None):
        return nd.get(param)
    f.same = param == "x"
    return f


def nd_scalar(nd, ops=None):
    return 0


def matmul_rank(a, b):
    """The rank of ``a @ b`` for operand ranks a, b (stacks of matrices broadcast)."""
    if a is None or b is None or a == 0 or b == 0:
        return None
    if a == 1 and b == 1:
        return 0
    if a == 1:
        return b - 1
    if b == 1:
        return a - 1
    return max(a, b)


def nd_matmul(nd, ops=None):
    a, b = nd.get("a"), nd.get("b")
    if a is None or b is None:
        return None
    return matmul_rank(a, b)


def nd_reduce(nd, ops):
    x = nd.get("x")
    axis, keep = ops.get("axis"), ops.get("keepdims")
    from ..ir.nodes import Const, TupleOp
    keepdims = isinstance(keep, Const) and bool(keep.value)
    if x is None:
        return None
    if isinstance(axis, Const) and axis.value is None:
        return x if keepdims else 0
    if keepdims:
        return x
    n = len(axis.items) if isinstance(axis, TupleOp) else 1
    return x - n


def nd_shape_arg(param):
    """Rank of an array made from a shape: a tuple's length, or 1 for a single size."""
    def f(nd, ops):
        from ..ir.nodes import TupleOp, Const
        shp = ops.get(param)
        if isinstance(shp, TupleOp):
            return len(shp.items)
        if isinstance(shp, Const) or nd.get(param) == 0:
            return 1
        return nd.get(param + "#len")  # a variable holding a shape tuple
    return f


# ----------------------------------------------------------------------------- rule shapes

def _emitter(emit):
    if isinstance(emit, str):
        tmpl = T(emit)
        return lambda env: tmpl(**env)
    return emit


def zero(pname, params, emit, ndim, defaults=None, formula="0", **facets):
    return register(Prim(pname, params, _emitter(emit), None, ndim, defaults=defaults or {},
                         kind="zero", formula=formula), **facets)


def linear(pname, params, emit, ndim, defaults=None, diff=("x",), formula=None, domain="real",
           test_shapes=(), **facets):
    """R{f(x, static...)} = f(R{x}, static...)."""
    em = _emitter(emit)
    first = diff[0]

    def rule(env, renv, y):
        return em({**env, first: renv[first]})
    return register(Prim(pname, params, em, rule, ndim, diff=diff, defaults=defaults or {},
                         kind="linear", formula=formula or f"f(R{{{first}}})", domain=domain,
                         test_shapes=test_shapes), **facets)


def bilinear(pname, emit, ndim, formula=None, params=("a", "b"), test_shapes=(), **facets):
    """The product rule: R{f(a, b)} = f(R{a}, b) + f(a, R{b})."""
    em = _emitter(emit)

    def rule(env, renv, y):
        a, b = params
        left = em({**env, a: renv[a]}) if renv.get(a) is not None else None
        right = em({**env, b: renv[b]}) if renv.get(b) is not None else None
        return add(left, right)
    return register(Prim(pname, params, em, rule, ndim, kind="bilinear",
                         formula=formula or "f(R{a}, b) + f(a, R{b})", test_shapes=test_shapes),
                    **facets)


_BCAST = T("rt.broadcast_as(r, y)")


def _lone(r, other, y):
    """A lone R-term of a broadcasting op must take the result's shape, unless the other
    operand is a Python number (then the shapes already agree)."""
    if is_const(other) or isinstance(other, ast.Constant):
        return r
    return _BCAST(r=r, y=y)


def additive(pname, emit, sign, **facets):
    em = _emitter(emit)

    def rule(env, renv, y):
        ra, rb = renv.get("a"), renv.get("b")
        if ra is not None and rb is not None:
            return em({"a": ra, "b": rb})
        if ra is not None:
            return _lone(ra, env["b"], y)
        return _lone(rb if sign > 0 else neg(rb), env["a"], y)
    return register(Prim(pname, ("a", "b"), em, rule, nd_broadcast, kind="additive",
                         formula="R{a} + R{b}" if sign > 0 else "R{a} - R{b}"), **facets)


class _Lazy:
    """Text computed on first use (sympy is imported only when a derivative is needed)."""

    def __init__(self, fn):
        self.fn = fn

    def __str__(self):
        return self.fn()

    __format__ = lambda self, spec: format(str(self), spec)  # noqa: E731

    def __eq__(self, other):
        return str(self) == other

    def __hash__(self):
        return hash(str(self))


def derive_unary(fx: str) -> list:
    """[Python source of f' in x and y, its pretty form] for ``fx``, derived by sympy."""
    import sympy
    from . import elementwise as ew
    d = ew.derivative(sympy.sympify(fx, locals={"x": ew.X}))
    return [ast.unparse(ew.to_ast(d)), str(d)]


def unary_derivative(fx: str) -> tuple:
    """(Python source of f' in x and y, its pretty form) for ``fx``, an expression in x.
    The table's own functions read what sympy derived for them when rop was built
    (``rules/unary_derivatives.json``; importing sympy and deriving costs a fresh cache about
    a second); any other is derived once and kept in the on-disk memo."""
    shipped = _shipped_derivatives().get(fx)
    if shipped is not None:
        return tuple(shipped)
    return tuple(memo("unary:" + fx, lambda: derive_unary(fx)))


SHIPPED_DERIVATIVES = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                   "unary_derivatives.json")


@functools.lru_cache(maxsize=1)
def _shipped_derivatives() -> dict:
    """{fx: [source, pretty]} of the table's unary functions, derived by :func:`derive_unary`
    (:func:`write_shipped_derivatives` writes the file; tests/test_rules.py checks it against
    sympy)."""
    try:
        with open(SHIPPED_DERIVATIVES, encoding="utf-8") as fh:
            table = json.load(fh)
    except (OSError, ValueError):  # missing or unreadable: derive, as for any function
        return {}
    return table if isinstance(table, dict) else {}


def unary(pname, np_name, fx, domain="real", spelled=(), **facets):
    """Elementwise y = f(x): R{y} = f'(x) R{x}, f' derived by sympy in terms of x or y.
    Functions NumPy vectorises better than Numba's scalar loop run as ``rt.<name>``."""
    from ..runtime import VECTOR_UFUNCS
    short = np_name.split(".")[-1]
    em = _emitter(f"rt.{short}(x)" if np_name.startswith("np.") and short in VECTOR_UFUNCS
                  else f"{np_name}(x)")

    def rule(env, renv, y):
        d = T(unary_derivative(fx)[0])(x=env["x"], y=y)
        return mul(d, renv["x"])
    return register(Prim(pname, ("x",), em, rule, nd_same("x"), kind="unary",
                         formula=_Lazy(lambda: f"({unary_derivative(fx)[1]}) * R{{x}}"),
                         domain=domain, sympy_fn=fx), spelled=(np_name, *spelled), **facets)


def custom(pname, params, emit, rule, ndim, formula, defaults=None, diff=(), domain="real",
           **facets):
    return register(Prim(pname, params, _emitter(emit), rule, ndim, diff=diff,
                         defaults=defaults or {}, kind="custom", formula=formula, domain=domain),
                    **facets)


# ----------------------------------------------------------------------------- custom rules

def _div_rule(env, renv, y):
    ra, rb = renv.get("a"), renv.get("b")
    b = env["b"]
    if rb is None:
        return T("ra / b")(ra=ra, b=b)
    if ra is None:
        return T("-(y * rb) / b")(y=y, rb=rb, b=b)
    return T("(ra - y * rb) / b")(ra=ra, y=y, rb=rb, b=b)


def _pow_rule(env, renv, y):
    ra, rb = renv.get("a"), renv.get("b")
    a, b = env["a"], env["b"]
    terms = None
    if ra is not None:
        if is_const(b, 2):
            terms = T("2.0 * a * ra")(a=a, ra=ra)
        elif is_const(b):
            terms = T("b * a ** (b - 1) * ra")(a=a, b=ast.Constant(b.value), ra=ra)
            terms.left.left = ast.Constant(float(b.value))
            terms.left.right.right = ast.Constant(b.value - 1)
        else:
            terms = T("b * a ** (b - 1) * ra")(a=a, b=b, ra=ra)
    if rb is not None:
        # d(a^b)/db = a^b log(a); at a == 0 the term is 0 (a^b is 0 on both sides for b > 0),
        # as in JAX, where log(a) alone would make it 0 * -inf = NaN
        log_a = T("np.log(a)")(a=a) if is_const(a) and a.value > 0 else T("rt.pow_log(a)")(a=a)
        terms = add(terms, T("y * log_a * rb")(y=y, log_a=log_a, rb=rb))
    return terms


def _select_rule(test_tmpl):
    """maximum/minimum: the R of whichever operand is selected."""
    def rule(env, renv, y):
        ra = renv.get("a") if renv.get("a") is not None else ast.Constant(0.0)
        rb = renv.get("b") if renv.get("b") is not None else ast.Constant(0.0)
        return T(f"np.where({test_tmpl}, ra, rb)")(a=env["a"], b=env["b"], ra=ra, rb=rb)
    return rule


def _where_rule(env, renv, y):
    ra = renv.get("a") if renv.get("a") is not None else ast.Constant(0.0)
    rb = renv.get("b") if renv.get("b") is not None else ast.Constant(0.0)
    return _BCAST(r=T("np.where(c, ra, rb)")(c=env["c"], ra=ra, rb=rb), y=y)


def _norm_rule(env, renv, y):
    """R{||x||} = <x, R{x}> / ||x||: the 2-norm (Frobenius for matrices); undefined (NaN) at
    x = 0, where the norm has no derivative."""
    return T("rt.sum(x * rx) / y")(x=env["x"], rx=renv["x"], y=y)


def _clip_rule(env, renv, y):
    """np.clip(x, lo, hi) is minimum(maximum(x, lo), hi), and at a tie each of maximum and
    minimum takes the mean of its operands' R: on a bound x == lo, R = (R{x} + R{lo}) / 2, on
    x == hi, (R{x} + R{hi}) / 2 — JAX's convention for jnp.clip, and what a central difference
    sees on the kink.  Constant bounds run the one-loop kernel rt.clip_tangent, variable or
    active ones the np.where formula below; both give the same bits on a bound."""
    rx, rlo, rhi = renv.get("x"), renv.get("lo"), renv.get("hi")
    x, lo, hi = env["x"], env["lo"], env["hi"]
    if rlo is None and rhi is None and isinstance(lo, (ast.Constant, ast.UnaryOp)) \
            and isinstance(hi, (ast.Constant, ast.UnaryOp)):
        return T("rt.clip_tangent(x, rx, lo, hi)")(x=x, rx=rx, lo=lo, hi=hi)
    zero = ast.Constant(0.0)
    # the weight of R{maximum(x, lo)} in minimum(maximum(x, lo), hi): 1 below hi, 0 above,
    # 1/2 on it; R{hi} has the rest
    w = T("np.where(np.maximum(x, lo) < hi, 1.0, np.where(np.maximum(x, lo) > hi, 0.0, 0.5))")(
        x=x, lo=lo, hi=hi)
    r = None
    if rx is not None or rlo is not None:
        # R{maximum(x, lo)}: R{x} above lo, R{lo} below, the mean on it
        inner = T("np.where(x > lo, rx, np.where(x < lo, rlo, 0.5 * tie))")(
            x=x, lo=lo, rx=rx or zero, rlo=rlo or zero, tie=add(rx, rlo))
        r = T("w * inner")(w=w, inner=inner)
    if rhi is not None:
        r = add(r, T("(1.0 - w) * rhi")(w=w, rhi=rhi))
    return _BCAST(r=r, y=y)


def _mod_rule(env, renv, y):
    """a % b = a - floor(a / b) * b, and floor is piecewise constant."""
    ra, rb = renv.get("a"), renv.get("b")
    if rb is None:
        return _lone(ra, env["b"], y)
    term = T("np.floor(a / b) * rb")(a=env["a"], b=env["b"], rb=rb)
    return T("ra - t")(ra=ra, t=term) if ra is not None else neg(term)


def _full_rule(env, renv, y):
    """R{np.full(shape, c)} = np.full(shape, R{c}): the shape is an integer."""
    return T("np.full(shape, rc)")(shape=env["shape"], rc=renv["fill_value"])


def _add_at_rule(env, renv, y):
    """``np.add.at(a, i, b)`` is linear in a and b: R = add.at(R{a}, i, R{b}); with R{b} = 0
    it is R{a} itself, with R{a} = 0 the scatter of R{b} into zeros."""
    ra, rb = renv.get("a"), renv.get("b")
    if rb is None:
        return ra
    return T("rt.add_at(ra, i, rb)")(ra=ra if ra is not None else T("np.zeros_like(a)")(a=env["a"]),
                                     i=env["indices"], rb=rb)


def _nan_to_num_rule(env, renv, y):
    """nan_to_num(x) is x where x is finite, constants elsewhere: R = R{x} where finite."""
    return T("np.where(np.isfinite(x), rx, 0.0)")(x=env["x"], rx=renv["x"])


def _arange_rule(env, renv, y):
    """Element k of np.arange(start, stop, step) is start + k step, and its length
    ceil((stop - start) / step) is piecewise constant: R = R{start} + k R{step}, no R{stop}."""
    rs, rst = renv.get("start"), renv.get("step")
    k = T("np.arange(len(y))")(y=y)
    if rst is None:
        return T("np.full(len(y), rs)")(y=y, rs=rs)
    term = T("rst * k")(rst=rst, k=k)
    return T("rs + t")(rs=rs, t=term) if rs is not None else term


def _boolop_rule(tmpl):
    """``a and b`` is b when a is true, else a; ``a or b`` is a when a is true, else b (numbers
    as values, not only as tests): R is the R of the operand returned."""
    def rule(env, renv, y):
        zero = ast.Constant(0.0)
        return T(tmpl)(a=env["a"], ra=renv.get("a") or zero, rb=renv.get("b") or zero)
    return rule


def _reduce_emit(np_name, rt_name):
    def emit(env):
        axis, keep = env["axis"], env["keepdims"]
        if isinstance(axis, ast.Constant) and axis.value is None and \
                isinstance(keep, ast.Constant) and not keep.value:
            return T(f"{np_name}(x)")(x=env["x"])
        return T(f"{rt_name}(x, axis, keepdims)")(**env)
    return emit


def _extreme_rule(rt_name):
    def rule(env, renv, y):
        axis, keep = env["axis"], env["keepdims"]
        return T(f"{rt_name}(x, rx, axis, keepdims)")(x=env["x"], rx=renv["x"], axis=axis, keepdims=keep)
    return rule


def _getitem_emit(env):
    index = env["index"]
    if isinstance(index, ast.Constant) and index.value is Ellipsis:
        index = ast.Slice()  # x[...] is x[:] (Numba indexes with a slice, not with an Ellipsis)
    return ast.Subscript(value=env["x"], slice=index, ctx=ast.Load())


def _transpose_emit(env):
    axes = env["axes"]
    if isinstance(axes, ast.Constant) and axes.value is None:
        return T("x.T")(x=env["x"])
    return T("np.transpose(x, axes)")(**env)


def _logaddexp_rule(env, renv, y):
    """y = log(e^a + e^b): dy/da = e^(a - y), dy/db = e^(b - y) (each in (0, 1): no overflow)."""
    ra, rb = renv.get("a"), renv.get("b")
    if rb is None:
        return _lone(T("np.exp(a - y) * ra")(a=env["a"], y=y, ra=ra), env["b"], y)
    if ra is None:
        return _lone(T("np.exp(b - y) * rb")(b=env["b"], y=y, rb=rb), env["a"], y)
    return T("np.exp(a - y) * ra + np.exp(b - y) * rb")(a=env["a"], b=env["b"], y=y, ra=ra, rb=rb)


# ----------------------------------------------------------------------------- the table
RED = dict(defaults={"axis": None, "keepdims": False})

# arithmetic
additive("add", "a + b", +1, spelled=("np.add",), measure=True)
additive("sub", "a - b", -1, spelled=("np.subtract",), measure=True)
bilinear("mul", "a * b", nd_broadcast, formula="R{a} b + a R{b}", spelled=("np.multiply",),
         measure=True)
custom("div", ("a", "b"), "a / b", _div_rule, nd_broadcast, "(R{a} - y R{b}) / b",
       spelled=("np.divide", "np.true_divide"), measure=True)
custom("pow", ("a", "b"), "a ** b", _pow_rule, nd_broadcast,
       "b a^(b-1) R{a} + y log(a) R{b}, the last term 0 where a == 0 (as JAX)", domain="positive",
       spelled=("np.power",), measure=True)
linear("neg", ("x",), "-x", nd_same("x"), formula="-R{x}", spelled=("np.negative",), measure=True)
linear("pos", ("x",), "+x", nd_same("x"), formula="R{x}", spelled=("np.positive",))
linear("copy", ("x",), "x", nd_same("x"), formula="R{x}", measure=True)
linear("array_copy", ("x",), "x.copy()", nd_same("x"), formula="R{x}.copy()",
       spelled=("np.copy", ".copy"))
linear("float", ("x",), "float(x)", nd_scalar, formula="R{x}", spelled=("float",), measure=True)
zero("floordiv", ("a", "b"), "a // b", nd_broadcast)
custom("mod", ("a", "b"), "a % b", _mod_rule, nd_broadcast, "R{a} - floor(a / b) R{b}",
       domain="offgrid")
zero("int", ("x",), "int(x)", nd_scalar, spelled=("int",))

# linear algebra: the product rule
bilinear("matmul", "a @ b", nd_matmul, formula="R{a} @ b + a @ R{b}", test_shapes=((3, 4), (4, 2)),
         spelled=("np.matmul",), costly=True)
bilinear("dot", "np.dot(a, b)", nd_matmul, formula="dot(R{a}, b) + dot(a, R{b})",
         spelled=("np.dot", ".dot"), costly=True)
bilinear("outer", "np.outer(a, b)", lambda nd, ops=None: 2, formula="outer(R{a}, b) + outer(a, R{b})",
         spelled=("np.outer",), costly=True)

# elementwise functions: f' by sympy
unary("exp", "np.exp", "exp(x)", spelled=("math.exp",))
unary("log", "np.log", "log(x)", domain="positive", spelled=("math.log",))
unary("log1p", "np.log1p", "log(1 + x)", domain="positive", spelled=("math.log1p",))
unary("expm1", "np.expm1", "exp(x) - 1", spelled=("math.expm1",))
unary("tanh", "np.tanh", "tanh(x)", spelled=("math.tanh",))
unary("sinh", "np.sinh", "sinh(x)", spelled=("math.sinh",))
unary("cosh", "np.cosh", "cosh(x)", spelled=("math.cosh",))
unary("sin", "np.sin", "sin(x)", spelled=("math.sin",))
unary("cos", "np.cos", "cos(x)", spelled=("math.cos",))
unary("tan", "np.tan", "tan(x)", domain="unit", spelled=("math.tan",))
unary("arctan", "np.arctan", "atan(x)", spelled=("math.atan",))
unary("sqrt", "np.sqrt", "sqrt(x)", domain="positive", spelled=("math.sqrt",), measure=True)
unary("abs", "np.abs", "Abs(x)", domain="nonzero",
      spelled=("np.absolute", "np.fabs", "math.fabs", "abs"), measure=True)
unary("square", "np.square", "x**2", measure=True)
unary("reciprocal", "np.reciprocal", "1/x", domain="positive")
zero("sign", ("x",), "np.sign(x)", nd_same("x"), spelled=("np.sign",))
zero("floor", ("x",), "np.floor(x)", nd_same("x"), spelled=("np.floor", "math.floor"))
zero("ceil", ("x",), "np.ceil(x)", nd_same("x"), spelled=("np.ceil", "math.ceil"))

# selections: the R of the operand selected
custom("maximum", ("a", "b"), "np.maximum(a, b)", _select_rule("a >= b"), nd_broadcast,
       "where(a >= b, R{a}, R{b})", domain="distinct", spelled=("np.maximum", "max"), measure=True)
custom("minimum", ("a", "b"), "np.minimum(a, b)", _select_rule("a <= b"), nd_broadcast,
       "where(a <= b, R{a}, R{b})", domain="distinct", spelled=("np.minimum", "min"))
custom("where", ("c", "a", "b"), "np.where(c, a, b)", _where_rule,
       lambda nd, ops=None: nd_broadcast(nd), "where(c, R{a}, R{b})", diff=("a", "b"),
       spelled=("np.where",))
custom("clip", ("x", "lo", "hi"), "rt.clip(x, lo, hi)", _clip_rule, nd_same("x"),
       "where(max(x, lo) > hi, R{hi}, where(x < lo, R{lo}, R{x})); on a bound the mean of the "
       "two sides' R: (R{x} + R{lo}) / 2 at x == lo, (R{x} + R{hi}) / 2 at x == hi (as jnp.clip)",
       diff=("x", "lo", "hi"), domain="distinct", spelled=("np.clip", ".clip"))

# arrays made from values: R of the values that can be active (shapes and lengths are not)
custom("full", ("shape", "fill_value"), "np.full(shape, fill_value)", _full_rule,
       nd_shape_arg("shape"), "full(shape, R{fill_value})", diff=("fill_value",),
       spelled=("np.full",))
custom("arange", ("start", "stop", "step"), "np.arange(start, stop, step)", _arange_rule,
       lambda nd, ops=None: 1, "R{start} + k R{step} for element k (the length is piecewise "
       "constant: no R{stop})", diff=("start", "step"), spelled=("np.arange",))
# np.add.at(a, i, b) (a statement: frontend/lower.py writes the result back into a)
custom("add_at", ("a", "indices", "b"), "rt.add_at(a, indices, b)", _add_at_rule, nd_same("a"),
       "add.at(R{a}, indices, R{b}): repeated indices add up", diff=("a", "b"),
       test_shapes=((5,), (), (4,)))
custom("nan_to_num", ("x",), "np.nan_to_num(x)", _nan_to_num_rule, nd_same("x"),
       "where(isfinite(x), R{x}, 0)", diff=("x",), spelled=("np.nan_to_num",))
# Python's `a and b` / `a or b` are one of their operands: R of the operand they return
custom("and", ("a", "b"), "a and b", _boolop_rule("rb if a else ra"), nd_scalar,
       "R{b} if a else R{a}")
custom("or", ("a", "b"), "a or b", _boolop_rule("ra if a else rb"), nd_scalar,
       "R{a} if a else R{b}")

# reductions and reshaping: linear
linear("sum", ("x", "axis", "keepdims"), _reduce_emit("np.sum", "rt.sum"), nd_reduce,
       formula="sum(R{x})", spelled=("np.sum", ".sum"), measure=True, **RED)
linear("mean", ("x", "axis", "keepdims"), _reduce_emit("np.mean", "rt.mean"), nd_reduce,
       formula="mean(R{x})", spelled=("np.mean", ".mean"), measure=True, **RED)
custom("max", ("x", "axis", "keepdims"), _reduce_emit("np.max", "rt.amax"), _extreme_rule("rt.max_tangent"),
       nd_reduce, "R{x} at the argmax", diff=("x",), domain="distinct",
       spelled=("np.max", "np.amax", ".max"), measure=True, **RED)
custom("min", ("x", "axis", "keepdims"), _reduce_emit("np.min", "rt.amin"), _extreme_rule("rt.min_tangent"),
       nd_reduce, "R{x} at the argmin", diff=("x",), domain="distinct",
       spelled=("np.min", "np.amin", ".min"), measure=True, **RED)
custom("norm", ("x",), "rt.norm(x)", _norm_rule, nd_scalar, "sum(x R{x}) / y",
       spelled=("np.linalg.norm",))
linear("transpose", ("x", "axes"), _transpose_emit, nd_same("x"), defaults={"axes": None},
       formula="transpose(R{x})", spelled=("np.transpose", ".transpose"))
linear("reshape", ("x", "shape"), "rt.reshape(x, shape)", nd_shape_arg("shape"), formula="reshape(R{x})",
       spelled=("np.reshape", ".reshape"))
linear("ravel", ("x",), "rt.reshape(x, -1)", lambda nd, ops=None: 1, formula="ravel(R{x})",
       spelled=("np.ravel", ".ravel"))
linear("flatten", ("x",), "rt.reshape(x, -1).copy()", lambda nd, ops=None: 1,
       formula="flatten(R{x})", spelled=(".flatten",))
linear("getitem", ("x", "index"), _getitem_emit, None, formula="R{x}[index]", measure=True)
linear("squeeze", ("x",), "rt.squeeze(x)", lambda nd, ops=None: 0 if nd.get("x") == 0 else None,
       formula="squeeze(R{x})", spelled=("np.squeeze", ".squeeze"), test_shapes=((),))

# values that do not depend on the parameters: R = 0
zero("shape", ("x",), "x.shape", lambda nd, ops=None: None)
zero("ndim", ("x",), "x.ndim", nd_scalar)
zero("size", ("x",), "x.size", nd_scalar)
zero("dtype", ("x",), "x.dtype", lambda nd, ops=None: None)  # folded at compile time: ir/dtypes.py
zero("len", ("x",), "len(x)", nd_scalar, spelled=("len",))
zero("zeros", ("shape",), "np.zeros(shape)", nd_shape_arg("shape"), spelled=("np.zeros",))
zero("ones", ("shape",), "np.ones(shape)", nd_shape_arg("shape"), spelled=("np.ones",))
zero("empty", ("shape",), "np.empty(shape)", nd_shape_arg("shape"), spelled=("np.empty",))
zero("zeros_like", ("x",), "np.zeros_like(x)", nd_same("x"), spelled=("np.zeros_like",))
zero("ones_like", ("x",), "np.ones_like(x)", nd_same("x"), spelled=("np.ones_like",))
zero("eye", ("n",), "np.eye(n)", lambda nd, ops=None: 2, spelled=("np.eye",))
def _arg_emit(name):
    def emit(env):
        axis = env["axis"]
        if isinstance(axis, ast.Constant) and axis.value is None:
            return T(f"np.{name}(x)")(x=env["x"])
        return T(f"np.{name}(x, axis=axis)")(x=env["x"], axis=axis)  # Numba: a keyword
    return emit


zero("argmax", ("x", "axis"), _arg_emit("argmax"), nd_reduce, defaults={"axis": None},
     spelled=("np.argmax", ".argmax"))
zero("argmin", ("x", "axis"), _arg_emit("argmin"), nd_reduce, defaults={"axis": None},
     spelled=("np.argmin", ".argmin"))
# casts to integers (`np.int64(A > 0)`, a ReLU mask as 0/1): piecewise constant
zero("as_int", ("x",), "rt.as_int(x)", nd_same("x"), spelled=("np.int64", "np.int32"))
for _cmp, _sym in (("lt", "<"), ("le", "<="), ("gt", ">"), ("ge", ">="), ("eq", "=="), ("ne", "!=")):
    zero(_cmp, ("a", "b"), f"a {_sym} b", nd_broadcast)
zero("not", ("x",), "not x", nd_scalar)
zero("list_repeat", ("x", "n"), "[x] * n", lambda nd, ops=None: None)

# arrays made from arrays (issue 18): linear in each array; a structurally zero R of one
# operand is np.zeros_like of it only inside the R-call (RTransform.r_of)
AXIS0 = dict(defaults={"axis": 0}, check=constant("np.concatenate", "axis", allow_none=False))
linear("concatenate", ("xs", "axis"), stacking("np.concatenate(xs, axis)"), nd_of_items(),
       diff=("xs",), formula="concatenate((R{a}, R{b}, ...), axis)", spelled=("np.concatenate",),
       sequence=("xs",), **AXIS0)
linear("vstack", ("xs",), stacking("np.vstack(xs)"), nd_of_items(at_least=2), diff=("xs",),
       formula="vstack((R{a}, R{b}, ...))", spelled=("np.vstack",), sequence=("xs",))
linear("hstack", ("xs",), stacking("np.hstack(xs)"), nd_of_items(at_least=1), diff=("xs",),
       formula="hstack((R{a}, R{b}, ...))", spelled=("np.hstack",), sequence=("xs",))
linear("column_stack", ("xs",), stacking("np.column_stack(xs)"), nd_of_items(at_least=2),
       diff=("xs",), formula="column_stack((R{a}, R{b}, ...))", spelled=("np.column_stack",),
       sequence=("xs",))
linear("stack", ("xs", "axis"), stacking("np.stack(xs, axis)"), nd_of_items(shift=1),
       diff=("xs",), formula="stack((R{a}, R{b}, ...), axis)", spelled=("np.stack",),
       sequence=("xs",), defaults={"axis": 0}, check=constant("np.stack", "axis", allow_none=False))
linear("array", ("xs", "dtype"),
       array_emit("xs", "rt.array(xs)", "rt.array(xs).astype(np.float64)"), nd_array, diff=("xs",),
       formula="array([R{a}, R{b}, ...]) (nested alike; numbers' R is 0.0)",
       spelled=("np.array",), sequence=("xs",), defaults={"dtype": None},
       check=float_dtype_check("np.array"))
linear("tile", ("x", "reps"), "rt.tile(x, reps)", nd_tile, formula="tile(R{x}, reps)",
       spelled=("np.tile",))
linear("repeat", ("x", "repeats", "axis"), "rt.repeat(x, repeats, axis)", nd_axis_or_flat,
       defaults={"axis": None}, formula="repeat(R{x}, repeats, axis)",
       spelled=("np.repeat", ".repeat"), check=constant("np.repeat", "axis"))
linear("asarray", ("x", "dtype"), array_emit("x", "np.asarray(x)", "np.asarray(x, np.float64)"),
       lambda nd, ops: nd_array(nd, ops, "x"), formula="R{x} (the same object, as x; a "
       "sequence display as np.array)", spelled=("np.asarray",), sequence=("x",),
       defaults={"dtype": None}, check=float_dtype_check("np.asarray"))
linear("astype", ("x", "dtype", "copy"), "x.astype(np.float64)", nd_same("x"),
       defaults={"copy": True}, formula="R{x}.astype(float64): a copy, as the primal is", spelled=(".astype",),
       check=astype_check)
zero("empty_like", ("x",), "np.empty_like(x)", nd_same("x"), spelled=("np.empty_like",))
custom("full_like", ("x", "fill_value"), "np.full_like(x, fill_value)", full_like_rule,
       nd_same("x"), "full(x.shape, R{fill_value})", diff=("fill_value",),
       spelled=("np.full_like",))
linear("diag", ("x",), "np.diag(x)", lambda nd, ops=None: None if nd.get("x") not in (1, 2)
       else 3 - nd["x"], formula="diag(R{x})", spelled=("np.diag",))
linear("diagflat", ("x",), "np.diagflat(x)", lambda nd, ops=None: 2, formula="diagflat(R{x})",
       spelled=("np.diagflat",))
linear("cumsum", ("x", "axis"), "rt.cumsum(x, axis)", nd_axis_or_flat, defaults={"axis": None},
       formula="cumsum(R{x}, axis)", spelled=("np.cumsum", ".cumsum"),
       check=constant("np.cumsum", "axis"))
custom("pad", ("x", "pad_width", "mode", "constant_values"),
       "rt.pad_constant(x, pad_width, constant_values)", pad_rule, nd_same("x"),
       "pad(R{x}, pad_width, constant_values=R{c}): R{c} = 0 for a constant fill (mode "
       "'constant' only)", defaults={"mode": "constant", "constant_values": 0},
       diff=("x", "constant_values"), spelled=("np.pad",), check=pad_check)
# coordinates of a flat index (np.unravel_index(np.argmax(w), w.shape)): integers
zero("unravel_index", ("indices", "shape"), "rt.unravel_index(indices, shape)", nd_unravel,
     spelled=("np.unravel_index",))

# moments and products along an axis
MOMENT = dict(defaults={"axis": None, "dtype": None, "out": None, "ddof": 0, "keepdims": False},
              diff=("x",))

custom("var", ("x", "axis", "dtype", "out", "ddof", "keepdims"), "rt.var(x, axis, ddof, keepdims)",
       var_rule(False), nd_reduce, "2 sum((x - mean(x)) R{x}) / (n - ddof) along the axis",
       spelled=("np.var", ".var"), check=moment_check("np.var"), **MOMENT)
custom("std", ("x", "axis", "dtype", "out", "ddof", "keepdims"), "rt.std(x, axis, ddof, keepdims)",
       var_rule(True), nd_reduce, "R{var(x)} / (2 y); NaN where y = 0 (no derivative there)",
       spelled=("np.std", ".std"), check=moment_check("np.std"), **MOMENT)
custom("prod", ("x", "axis", "keepdims"), "rt.prod(x, axis, keepdims)", prod_rule, nd_reduce,
       "sum over the axis of (product of the other elements) R{x}, the others' product as "
       "(product before) (product after): exact at zeros", diff=("x",),
       spelled=("np.prod", ".prod"), check=checks(
           constant("np.prod", "axis"),
           constant("np.prod", "keepdims", allow_none=False, kind=bool)), **RED)
custom("logaddexp", ("a", "b"), "np.logaddexp(a, b)", _logaddexp_rule, nd_broadcast,
       "exp(a - y) R{a} + exp(b - y) R{b}", spelled=("np.logaddexp",))
custom("einsum", ("subscripts",) + EINSUM_OPS + ("optimize",), einsum_emit, einsum_rule, nd_einsum,
       "einsum(s, R{A}, B, ...) + einsum(s, A, R{B}, ...) + ... (one term per active operand)",
       defaults={"b": None, "c": None, "d": None, "optimize": False}, diff=EINSUM_OPS,
       spelled=("np.einsum",),
       check=einsum_check, costly=True)


# ----------------------------------------------------------------------------- runtime helpers
# Operations only R-code performs (the rules above call them): no R-rule of their own, so no
# spelling for user code, but an emit form and a rank rule like every entry.  The R-rules'
# formulas are flattened into statements on these entries and the ones above (ir/builder.py).

def runtime(pname, params, emit, ndim, defaults=None, formula="", **facets):
    return register(Prim(pname, params, _emitter(emit), None, ndim, defaults=defaults or {},
                         kind="runtime", formula=formula or "(R-code only)"), **facets)


def _zeros_but_emit(env):
    """``[e if k == 0 else rt.zeros_of(e) for k, e in enumerate(lst)]``: the zeros of a list
    but for the slots ``keep`` (a number, or a tuple of them), which hold placeholders."""
    keep = env["keep"]
    cond = T("k in keep") if isinstance(keep, ast.Tuple) else T("k == keep")
    return T("[e if cond else rt.zeros_of(e) for k, e in enumerate(lst)]")(
        cond=cond(keep=keep), lst=env["lst"])


def _nd_of(param):
    return lambda nd, ops=None: nd.get(param)


runtime("broadcast_as", ("r", "y"), "rt.broadcast_as(r, y)", _nd_of("y"), views=("r",))
runtime("max_tangent", ("x", "rx", "axis", "keepdims"), "rt.max_tangent(x, rx, axis, keepdims)",
        nd_reduce, **RED)
runtime("min_tangent", ("x", "rx", "axis", "keepdims"), "rt.min_tangent(x, rx, axis, keepdims)",
        nd_reduce, **RED)
runtime("clip_tangent", ("x", "rx", "lo", "hi"), "rt.clip_tangent(x, rx, lo, hi)", nd_same("x"))
runtime("pow_log", ("x",), "rt.pow_log(x)", nd_same("x"))
runtime("zeros_of", ("x",), "rt.zeros_of(x)", nd_same("x"))
runtime("zeros_but", ("lst", "keep"), _zeros_but_emit, lambda nd, ops=None: None, holds=("lst",))
runtime("ifexp", ("c", "a", "b"), "a if c else b",
        lambda nd, ops=None: nd_broadcast({k: nd.get(k) for k in ("a", "b")}), views=("a", "b"))
runtime("below_finite", ("a", "b"), "a <= b < np.inf", nd_scalar)
# the linearised primal part's record of what the tangent part reads (transforms/linearize.py):
# a list in Python, Numba's typed List in compiled code (it crosses calls empty or not)
runtime("tape", (), "Tape()", lambda nd, ops=None: None)
runtime("untape", ("x",), "list(x)", lambda nd, ops=None: None)  # a list, read back from it


# the batched tangent (transforms/batch.py): R-values with a leading axis of k directions;
# rop/runtime/batched.py.  Ranks here are of the stored arrays, the batch axis included.
def _bexpand_emit(env):
    """``x[:, None, ...]``: a batched value lifted to a higher rank after its batch axis, so
    that it broadcasts against the unbatched operands of an elementwise operation."""
    n = env["n"].value
    index = ast.Tuple(elts=[ast.Slice()] + [ast.Constant(None)] * n, ctx=ast.Load())
    return ast.Subscript(value=env["x"], slice=index, ctx=ast.Load())


for _name, _rank in (("bmm_l2", 3), ("bmm_l1", 2), ("bmm_v", None), ("bmm_r2", 3),
                     ("bmm_r1", 2), ("bmm_rv2", 2), ("bmm_rv1", 1)):
    runtime(_name, ("a", "b"), f"rt.{_name}(a, b)", lambda nd, ops=None, r=_rank: r)
runtime("bexpand", ("x", "n"), _bexpand_emit, lambda nd, ops=None: None)
runtime("bsum_all", ("x",), "rt.bsum_all(x)", lambda nd, ops=None: 1)
runtime("bmean_all", ("x",), "rt.bmean_all(x)", lambda nd, ops=None: 1)
runtime("breshape", ("x", "k", "shape"), "rt.breshape(x, k, shape)", lambda nd, ops=None: None)
runtime("bbroadcast_as", ("r", "y"), "rt.bbroadcast_as(r, y)", lambda nd, ops=None: None)
runtime("bzeros", ("x", "k"), "rt.bzeros(x, k)", lambda nd, ops=None: None)
runtime("bzeros_scalar", ("k",), "rt.bzeros_scalar(k)", lambda nd, ops=None: 1)
runtime("bzeros_list", ("x", "k"), "rt.bzeros_list(x, k)", lambda nd, ops=None: None)
# the batching rules of transforms/batch_rules.py: tangents of selections and moments once per
# direction, np.outer (``rt.bsetitem_mask`` and ``rt.bcheck_index`` are Effects)
for _name, _params in (("bmax_tangent", ("x", "rx", "axis", "keepdims")),
                       ("bmin_tangent", ("x", "rx", "axis", "keepdims")),
                       ("bclip_tangent", ("x", "rx", "lo", "hi")),
                       ("bvar_tangent", ("x", "rx", "axis", "ddof", "keepdims")),
                       ("bprod_tangent", ("x", "rx", "axis", "keepdims")),
                       ("bouter_l", ("a", "b")),
                       ("bouter_r", ("a", "b")), ("bdiagflat", ("x",))):
    runtime(_name, _params, f"rt.{_name}({', '.join(_params)})", lambda nd, ops=None: None)


# ----------------------------------------------------------------------------- derived lists
# what other modules need to know of the primitives, read off the entries above

def _call_emit(env):
    """``f(args..., k=v...)``: ``env["f"]`` names the function (dotted), ``env["args"]`` and
    ``env["kwargs"]`` hold the arguments."""
    f = ast.parse(env["f"].value, mode="eval").body
    return ast.Call(func=f, args=list(env["args"]),
                    keywords=[ast.keyword(arg=k, value=v) for k, v in env["kwargs"]])


def _nd_call(nd, ops):
    """The rank of a call the table knows by the callee's name (its emit form or a spelling),
    when its arguments bind to the entry's parameters; None otherwise."""
    prim = entry_called(ops["f"].value)
    bound = bind_call(prim, ops["args"], ops["kwargs"]) if prim is not None else None
    if bound is None or prim.ndim is None:
        return None
    names = dict(zip(prim.params, range(len(ops["args"]))), **{k: k for k, _ in ops["kwargs"]})
    try:
        return prim.ndim({p: nd.get(names[p]) for p in names}, bound)
    except Exception:
        return None


def bind_call(prim, args, kwargs):
    """{param: argument} of a call of ``prim`` (defaults filled in as ``Const``), or None when
    the arguments do not bind to its parameters."""
    from ..ir.nodes import Const
    kw = dict(kwargs)
    if len(args) > len(prim.params) or set(kw) - set(prim.params[len(args):]):
        return None
    bound = dict(zip(prim.params, args), **kw)
    if any(p not in bound and p not in prim.defaults for p in prim.params):
        return None
    return {p: bound[p] if p in bound else Const(prim.defaults[p]) for p in prim.params}


# A call no entry's emit form matches (``np.arange(len(y))``, ``rt.sum(x * rx)``, a helper of
# a registered rule): the callee is a constant operand, its rank the entry's that names it.
runtime("call", (), _call_emit, _nd_call, formula="(a call of R-code, by name)")


def entry_called(callee: str):
    """The entry a call of ``callee`` reaches (``"np.cos"``, ``"rt.sum"``, ``".copy"`` for a
    method): the entry spelling it, else the entry whose emit form calls it; None if none."""
    if _CALLEES.get("#size") != len(RULES):  # an entry registered since: read the table again
        _CALLEES.clear()
        for p in RULES.values():
            if p.name == "call":
                continue
            try:
                e = p.emit({q: ast.Name(q, ast.Load()) for q in p.params})
            except Exception:
                continue
            if isinstance(e, ast.Call):
                _CALLEES.setdefault(ast.unparse(e.func), p)
        for p in RULES.values():
            for sp in p.spelled:
                _CALLEES[sp] = p
        _CALLEES["#size"] = len(RULES)
    return _CALLEES.get(callee)


_CALLEES: dict = {}


COSTLY = frozenset(n for n, p in RULES.items() if p.costly)      # transforms/slots.py
MEASURE = frozenset(n for n, p in RULES.items() if p.measure)    # transforms/relaxation.py


def _same_rank_calls() -> frozenset:
    """Names of the emitted ``np.f(x, ...)`` / ``rt.f(x, ...)`` calls whose result has the
    rank of ``x`` (backend/gemm.py infers ranks of emitted expressions with it)."""
    out = set()
    for p in RULES.values():
        if not getattr(p.ndim, "same", False):
            continue
        e = p.emit({q: ast.Name(q, ast.Load()) for q in p.params})
        if isinstance(e, ast.Call) and e.args and isinstance(e.func, ast.Attribute) and \
                isinstance(e.func.value, ast.Name) and e.func.value.id in ("np", "rt"):
            out.add(e.func.attr)
    return frozenset(out)


SAME_RANK_CALLS = _same_rank_calls()


def apply_rule(prim: Prim, env: dict, renv: dict, y: Expr) -> Optional[Expr]:
    """R{y} for ``y = prim(env)``, with ``renv[p]`` the R of each argument or None for zero.

    Returns None when R{y} is structurally zero (a zero rule, or no active argument),
    so that no R-statement is emitted at all.
    """
    if prim.rule is None:
        return None
    if all(renv.get(p) is None for p in prim.derivative_params()):
        return None
    return prim.rule(env, renv, y)


def write_shipped_derivatives(path: str = SHIPPED_DERIVATIVES) -> dict:
    """Derive every unary entry's f' with sympy and write them to ``path``."""
    table = {RULES[n].sympy_fn: derive_unary(RULES[n].sympy_fn)
             for n in sorted(RULES) if RULES[n].kind == "unary"}
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(table, fh, indent=1, sort_keys=True)
        fh.write("\n")
    return table

