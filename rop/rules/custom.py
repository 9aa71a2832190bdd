"""User-registered primitives: a function of your own, with an R-rule you give.

This is the mechanism every AD tool's users ask for (custom derivative rules), and the
one the library uses for its own domain primitives (``rop.boltzmann``): the entry goes
into the same rule table as ``np.tanh`` and ``@``, through the same ``register``.

    rop.register_rule(
        sample_correlations,                     # the function: y = f(W, b, samples)
        {"W": "corr_rop_W(samples, R_W, y)"},    # R{y} term per argument, in terms of the
        ndim=2)                                  # arguments, R_<arg> and the result y

A rule is either one expression for the whole R{y} (``"f_rop(x, R_x)"``: arguments whose
R is structurally zero are passed as zeros) or a dict of one *term* per differentiable
argument, summed over the active ones and skipped for the others (the efficient form:
no term is computed for a zero R).  Names in the rule that are not arguments (helper
functions such as ``corr_rop_W``) are looked up in ``namespace`` (default: the
function's module) and must be compilable by Numba in numba mode; they are made
available to the generated module.  :func:`check_rule` compares a rule with central
differences of the function.
"""

from __future__ import annotations

import ast
import inspect

import numpy as np

from ..errors import RopError
from .table import Prim, RULES, register
from .templates import T, add

CUSTOM: dict = {}  # function object -> rule-table name


class RopRuleError(RopError, AssertionError):
    """A registered R-rule disagrees with finite differences of its function."""


def _free_names(src: str) -> set:
    return {n.id for n in ast.walk(ast.parse(src, mode="eval")) if isinstance(n, ast.Name)}


def register_rule(fn, rule, *, diff=None, ndim=None, namespace=None, name=None) -> Prim:
    """Make ``fn`` a primitive of rop with the R-rule ``rule`` (see the module docstring).

    ``diff``: the arguments that carry R (default: the keys of a dict rule, else every
    argument without a default).  ``ndim``: the rank of the result, when a list made with
    ``[None] * n`` stores it.  Returns the rule-table entry.
    """
    if not callable(fn):
        raise TypeError(f"register_rule: {fn!r} is not a function")
    sig = inspect.signature(fn)
    params = tuple(sig.parameters)
    defaults = {p: v.default for p, v in sig.parameters.items() if v.default is not v.empty}
    if isinstance(rule, dict):
        bad = set(rule) - set(params)
        if bad:
            raise ValueError(f"register_rule: rule terms for {sorted(bad)}, which are not "
                             f"parameters of {fn.__name__}{sig}")
        diff = tuple(diff or rule)
        sources = dict(rule)
    elif isinstance(rule, str):
        diff = tuple(diff or (p for p in params if p not in defaults))
        sources = {None: rule}
    else:
        raise TypeError("register_rule: the rule is a Python expression (str) or a dict of "
                        "one expression per differentiable argument")
    ns = namespace if namespace is not None else getattr(fn, "__globals__", {})
    pname = name or f"user:{fn.__module__}.{fn.__qualname__}"
    known = set(params) | {f"R_{p}" for p in params} | {"y", "np", "rt", "math"}
    extern = {}
    for src in sources.values():
        try:
            names = _free_names(src)
        except SyntaxError as exc:
            raise ValueError(f"register_rule: the rule {src!r} is not a Python expression: "
                             f"{exc.msg}") from None
        for n in names - known:
            if n not in ns:
                raise ValueError(f"register_rule: the rule {src!r} uses `{n}`, which is neither "
                                 f"an argument of {fn.__name__}, R_<argument>, y, np, rt, nor "
                                 f"a name in {getattr(fn, '__module__', 'the namespace')}")
            extern[n] = ns[n]
    extern[fn.__name__] = fn
    templates = {k: T(v) for k, v in sources.items()}
    call = T(f"{fn.__name__}({', '.join(params)})")

    def emit(env):
        return call(**env)

    def rule_fn(env, renv, y):
        if None in templates:  # one expression: zero R-arguments are passed as zeros
            zs = {f"R_{p}": renv[p] if renv.get(p) is not None else T("rt.zeros_of(x)")(x=env[p])
                  for p in diff}
            return templates[None](**env, **zs, y=y)
        out = None
        for p in diff:
            if renv.get(p) is not None:
                out = add(out, templates[p](**env, **{f"R_{p}": renv[p]}, y=y))
        return out

    formula = " + ".join(sources.values()) if None not in sources else sources[None]
    prim = Prim(pname, params, emit, rule_fn, (lambda nd, ops=None: ndim), diff=diff,
                defaults=defaults, kind="registered", formula=formula)
    prim.extern = extern
    prim.function = fn
    register(prim)
    CUSTOM[fn] = pname
    return prim


def registered_name(obj):
    try:
        return CUSTOM.get(obj)
    except TypeError:
        return None


def check_rule(fn, *args, v, eps=(1e-4, 1e-6), rtol=1e-6, raise_on_error=True):
    """Compare ``fn``'s registered R-rule with central differences of ``fn`` itself.

    ``v`` holds one direction per differentiable argument (in the rule's ``diff`` order).
    Returns the smallest relative error over the step sizes; raises :class:`RopRuleError`
    when it exceeds ``rtol`` (unless ``raise_on_error=False``).  The rule is evaluated as
    plain Python/NumPy, exactly as the generated code in ``mode="python"`` would.
    """
    pname = registered_name(fn)
    if pname is None:
        raise ValueError(f"{getattr(fn, '__name__', fn)} has no registered R-rule")
    prim = RULES[pname]
    diff = prim.derivative_params()
    if not isinstance(v, (tuple, list)) or len(v) != len(diff):
        raise ValueError(f"check_rule: v must hold one direction per differentiable argument "
                         f"{diff}")
    sig = inspect.signature(fn)
    bound = sig.bind(*args)
    bound.apply_defaults()
    vals = dict(bound.arguments)
    y = fn(*bound.args)
    from .. import runtime as rt
    names = {p: ast.Name(id=p, ctx=ast.Load()) for p in prim.params}
    renv = {p: ast.Name(id=f"__R_{p}", ctx=ast.Load()) for p in diff}
    expr = prim.rule(names, renv, ast.Name(id="__y", ctx=ast.Load()))
    env = {**prim.extern, "np": np, "rt": rt, **vals, "__y": y,
           **{f"__R_{p}": np.asarray(d, dtype=float) if np.ndim(d) else float(d)
              for p, d in zip(diff, v)}}
    tree = ast.fix_missing_locations(ast.Expression(expr))
    r = eval(compile(tree, f"<R-rule of {fn.__name__}>", "eval"), env)
    errs = []
    for h in eps:
        plus = dict(vals)
        minus = dict(vals)
        for p, d in zip(diff, v):
            plus[p] = vals[p] + h * np.asarray(d)
            minus[p] = vals[p] - h * np.asarray(d)
        fd = (np.asarray(fn(**plus)) - np.asarray(fn(**minus))) / (2 * h)
        scale = max(float(np.max(np.abs(fd))), 1e-300)
        errs.append(float(np.max(np.abs(np.asarray(r) - fd))) / scale)
    err = min(errs)
    if err > rtol and raise_on_error:
        raise RopRuleError(f"the R-rule registered for {fn.__name__} disagrees with central "
                           f"differences: relative error {err:.3g} (steps {eps}); rule: "
                           f"{prim.formula}")
    return err
