"""Rule helpers of the entries for arrays built from arrays, moments and einsum (issue 18),
and of np.pad and np.unravel_index (CS231n's naive convolution and max pooling).

The entries themselves are lines of :mod:`.table`; here are the pieces they are made of:
rank rules that read a tuple's items (``np.concatenate((a, b))`` has the items' rank), the
emitters that pick NumPy's function for a tuple display and the runtime's for a variable
(a list built by ``append``), the R-rules written as formulas, and the *checks*: argument
values an entry cannot emit (a variable axis: Numba compiles one result rank per call site;
``dtype=``; einsum subscripts with ``...``), refused by the lowering at the user's line with
the message and hint returned here.
"""

from __future__ import annotations

import ast

from .templates import T, add


def _item_rank(nd, param="xs"):
    """The rank shared by the items of a tuple argument (``np.concatenate((a, b))``), or None."""
    items = nd.get(param + "#items")
    if items is None:  # a list: its elements' type
        item = nd.get(param + "#item")
        return item if isinstance(item, int) else None
    ranks = {t for t in items if isinstance(t, int)}
    return ranks.pop() if len(ranks) == 1 and len(items) else None


def stacking(np_call):
    """``np.<f>(xs, ...)`` for a tuple display (Numba's own function), ``rt.<f>(xs, ...)`` for
    a variable, which may hold a list built by ``append`` (Numba's takes tuples only)."""
    tmpl, rt_tmpl = T(np_call), T("rt." + np_call[3:])

    def emit(env):
        return (tmpl if isinstance(env["xs"], ast.Tuple) else rt_tmpl)(**env)
    return emit


def nd_of_items(shift=0, at_least=0):
    """Rank of a stacking: the items' rank, plus ``shift`` new axes (np.stack), at least
    ``at_least`` (np.vstack of vectors is a matrix)."""
    def f(nd, ops=None):
        r = _item_rank(nd)
        return None if r is None else max(r + shift, at_least)
    return f


def nd_array(nd, ops, param="xs"):
    """np.array of (nested) sequences: one axis per level of nesting, then the items' rank."""
    from ..ir.nodes import TupleOp

    def depth(t):
        if isinstance(t, tuple) and t and t[0] == "tuple":
            inner = {depth(e) for e in t[1]}
            return None if len(inner) != 1 or None in inner else 1 + inner.pop()
        return t if isinstance(t, int) else None
    if isinstance(ops.get(param), TupleOp):
        return depth(("tuple", nd.get(param + "#items", ())))
    item = nd.get(param + "#item")
    return 1 + item if isinstance(item, int) else nd.get(param)


def array_emit(param, plain, plain_float):
    """``np.array(xs)`` / ``np.asarray(x)``: a sequence display is ``rt.array`` (Numba's
    np.array takes numbers only), with ``dtype=float`` cast after (its items may be integers);
    anything else is ``plain``, or ``plain_float`` with ``dtype=float`` (np.asarray(x,
    np.float64) is x itself when x is float64, in Numba too: the memory NumPy has)."""
    tmpl, tmpl_float, seq = T(plain), T(plain_float), T(f"rt.array({param})")

    def emit(env):
        dt = env.get("dtype")
        to_float = isinstance(dt, ast.Constant) and dt.value == "float64"
        if isinstance(env[param], ast.Tuple):
            out = seq(**env)
            return T("e.astype(np.float64)")(e=out) if to_float else out
        return (tmpl_float if to_float else tmpl)(**env)
    return emit


def float_dtype_check(what):
    """A check: ``dtype`` left out or float64 (float, np.float64)."""
    def check(args):
        from ..ir.nodes import Const
        dt = args.get("dtype")
        if isinstance(dt, Const) and dt.value in (None, "float64") or not isinstance(dt, Const):
            return None  # a variable: `x.dtype`, folded (or refused) by ir/dtypes.py
        got = dt.value if isinstance(dt, Const) else "a variable"
        return (f"{what} with dtype {got} is not supported (only float64)",
                f"write {what}(..., dtype=float) or leave dtype out; an integer array has no "
                "derivative: make it outside the function")
    return check


def nd_axis_or_flat(nd, ops):
    """cumsum / repeat: the rank of x along an axis, 1 (flattened) for axis=None."""
    from ..ir.nodes import Const
    axis = ops.get("axis")
    return 1 if isinstance(axis, Const) and axis.value is None else nd.get("x")


def nd_tile(nd, ops):
    """np.tile(x, reps): the larger of x's rank and the number of repetitions given."""
    from ..ir.nodes import TupleOp
    x, reps = nd.get("x"), ops.get("reps")
    d = len(reps.items) if isinstance(reps, TupleOp) else nd.get("reps#len", 1)
    return None if x is None or d is None else max(x, d)


def constant(what, *params, allow_none=True, kind=int):
    """A check: each of ``params`` is a constant ``kind`` (or None) at the user's line --
    the result's shape depends on it, and Numba compiles one shape per call site."""
    def check(args):
        from ..ir.nodes import Const
        for p in params:
            a = args.get(p)
            ok = isinstance(a, Const) and (a.value is None and allow_none or
                                           isinstance(a.value, kind))
            if not ok:
                hint = (f"write True or False in the call: {what}(..., {p}=True)" if kind is bool
                        else f"write it as a number in the call, e.g. {what}(..., {p}=0); a "
                        "tuple of axes is not supported for this function")
                return (f"`{p}` of {what} must be a constant {kind.__name__}"
                        f"{' or None' if allow_none else ''} here", hint)
        return None
    return check


def checks(*checks):
    """A check made of several: the first problem found."""
    def check(args):
        for c in checks:
            problem = c(args)
            if problem:
                return problem
        return None
    return check


def _none_only(what, *params):
    """A check: ``params`` are left out (``dtype=``, ``out=``: rop's values are new float64
    arrays, and a write into ``out`` would be an effect the rule does not mirror)."""
    def check(args):
        from ..ir.nodes import Const
        for p in params:
            a = args.get(p)
            if not (isinstance(a, Const) and a.value is None):
                return (f"`{p}=` of {what} is not supported",
                        f"leave `{p}` out: rop computes in float64, into a new array")
        return None
    return check


def astype_check(args):
    """x.astype(float) is x as a float copy; a cast to an integer is piecewise constant and
    to float32 rounds: neither is the identity R{x} the entry gives."""
    from ..ir.nodes import Const
    dt = args.get("dtype")
    if isinstance(dt, Const) and dt.value == "float64" or not isinstance(dt, Const):
        return None  # a variable: `x.dtype`, folded (or refused) by ir/dtypes.py
    got = dt.value
    return (f"astype to {got} is not supported (only to float64)",
            "write x.astype(float) or x.astype(np.float64); an integer cast has no derivative: "
            "compute it outside the function")


def full_like_rule(env, renv, y):
    """R{np.full_like(x, c)} = full(x.shape, R{c}): only the fill value moves (x gives the
    shape; for x of an integer dtype the primal truncates c and this R is not its derivative:
    rop's parameters are float)."""
    return T("np.full(x.shape, rc)")(x=env["x"], rc=renv["fill_value"])


def var_rule(std):
    """R{var(x)} = 2 sum((x - mean(x)) R{x}) / (n - ddof) along the axis (the R of the mean
    drops out: the deviations sum to zero); R{std} = R{var} / (2 std), undefined (NaN) where
    std = 0, where std has no derivative."""
    def rule(env, renv, y):
        r = T("rt.var_tangent(x, rx, axis, ddof, keepdims)")(
            x=env["x"], rx=renv["x"], axis=env["axis"], ddof=env["ddof"], keepdims=env["keepdims"])
        return T("r / (2.0 * y)")(r=r, y=y) if std else r
    return rule


def prod_rule(env, renv, y):
    """Sum over the axis of (the product of the other elements) R{x}, the others' product as
    (product before) * (product after): exact at zeros, where prod / x would be 0 / 0."""
    return T("rt.prod_tangent(x, rx, axis, keepdims)")(x=env["x"], rx=renv["x"],
                                                       axis=env["axis"], keepdims=env["keepdims"])


EINSUM_OPS = ("a", "b", "c", "d")


def einsum_emit(env):
    """``rt.einsum(s, (A, B, ...))``: the operands given (unused parameters are None).
    ``optimize=`` only orders the contraction (the same value up to rounding): the runtime
    picks BLAS or loops itself."""
    ops = [env[p] for p in EINSUM_OPS
           if not (isinstance(env[p], ast.Constant) and env[p].value is None)]
    return T("rt.einsum(s, ops)")(s=env["subscripts"], ops=ast.Tuple(elts=ops, ctx=ast.Load()))


def einsum_rule(env, renv, y):
    """Multilinear: R{einsum(s, A, B)} = einsum(s, R{A}, B) + einsum(s, A, R{B})."""
    out = None
    for p in EINSUM_OPS:
        if renv.get(p) is not None:
            out = add(out, einsum_emit({**env, p: renv[p]}))
    return out


def _einsum_parts(args):
    """(input letters, output letters) of the call's constant subscripts."""
    from ..ir.nodes import Const
    from ..runtime.einsum import parse
    s = args.get("subscripts")
    n = sum(1 for p in EINSUM_OPS if not (isinstance(args.get(p), Const) and
                                            args[p].value is None))
    return parse(s.value, n)


def einsum_check(args):
    """Constant subscripts that the runtime can generate loops for (runtime/einsum.py: parse),
    naming as many operands as the call passes."""
    from ..ir.nodes import Const
    s = args.get("subscripts")
    if not (isinstance(s, Const) and isinstance(s.value, str)):
        return ("the subscripts of np.einsum must be a string constant in the call",
                "write them in the call, e.g. np.einsum('ij,jk->ik', A, B): the compiled loops "
                "are generated from them")
    try:
        _einsum_parts(args)
    except ValueError as exc:
        return (str(exc), "write each axis as a letter, e.g. np.einsum('bij,bjk->bik', A, B); "
                          "up to four operands")
    return None


def nd_einsum(nd, ops):
    """One axis per output letter."""
    try:
        return len(_einsum_parts(ops)[1])
    except (ValueError, AttributeError):
        return None


def moment_check(what):
    """np.var / np.std: a constant axis and keepdims; no dtype= or out=."""
    return checks(constant(what, "axis"), constant(what, "keepdims", allow_none=False, kind=bool),
                  _none_only(what, "dtype", "out"))


def pad_rule(env, renv, y):
    """np.pad(x, w, mode='constant', constant_values=c) is linear in x and c together (x in
    the middle, c in the border): R = pad(R{x}, w, constant_values=R{c}), a zero border for a
    constant fill, and a zero middle when x is not active."""
    rx, rc = renv.get("x"), renv.get("constant_values")
    if rx is None:
        rx = T("np.zeros(x.shape)")(x=env["x"])  # float64: R{c} is not cast to x's dtype
    return T("rt.pad_constant(rx, w, rc)")(rx=rx, w=env["pad_width"],
                                           rc=rc if rc is not None else ast.Constant(0.0))


def pad_check(args):
    """np.pad: mode 'constant' (the default) only, and one number as constant_values.  The
    other modes (edge, reflect, wrap, mean, maximum, ...) are not in the runtime; a pair of
    fill values per axis is not either."""
    from ..ir.nodes import Const, TupleOp
    mode = args.get("mode")
    if not (isinstance(mode, Const) and mode.value == "constant"):
        got = repr(mode.value) if isinstance(mode, Const) else "a variable"
        return (f"np.pad with mode={got} is not supported (only mode='constant')",
                "pad with a constant, as np.pad(x, pad_width) or np.pad(x, pad_width, "
                "mode='constant', constant_values=c) does; for another border write it with "
                "slices and np.concatenate")
    c = args.get("constant_values")
    if isinstance(c, TupleOp) or isinstance(c, Const) and not isinstance(c.value, (int, float)):
        return ("constant_values of np.pad must be one number here",
                "pad with one value, np.pad(x, w, constant_values=0.0), and write other values "
                "into the border with slices")
    return None


def nd_unravel(nd, ops):
    """np.unravel_index(i, shape): a tuple of one coordinate per axis of the shape, each of
    i's rank (a number for a single index)."""
    from ..ir.nodes import Const, TupleOp
    shp = ops.get("shape")
    n = len(shp.items) if isinstance(shp, TupleOp) else \
        1 if isinstance(shp, Const) or nd.get("shape") == 0 else nd.get("shape#len")
    i = nd.get("indices")
    return None if n is None or i is None else ("tuple", (i,) * n)
