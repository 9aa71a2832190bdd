"""Every entry of the R-rule table against central differences of the primal.

The programs are in ``tests/rule_programs.py`` (rop reads source with ``inspect``): one small
function per primitive, written the way users write it.  Each is compiled once per mode
(``numba`` and ``python``; Numba compiles lazily, on the first call) and run on random shapes
with inputs drawn from the entry's ``domain``.  ``R{y}`` must match

    (f(x + eps v) - f(x - eps v)) / (2 eps)

at eps = 1e-4 and eps = 1e-6, each with its own tolerance (truncation error ~ eps^2 for the
first, round-off ~ 1e-16 / eps for the second).

The cases in ``JAX_CASES`` are also checked against ``jax.jvp`` of the same program run with
``np`` bound to ``jax.numpy`` (tests/jax_oracle.py), in both modes.

``COVERAGE`` maps every rule-table entry to the programs that exercise it; the completeness test
fails when an entry is added to ``RULES`` without a program, and checks that each mapped program
really lowers to a statement of that primitive.  Zero-rule entries must give an R that is exactly
zero, and no R-statement reading the R of their result.
"""

from __future__ import annotations

import ast
import functools
from typing import Callable, NamedTuple

import numpy as np
import pytest

import rule_programs as P
from rop import rop
from rop.frontend.lower import lower
from rop.rules.table import RULES

MODES = ("numba", "python")
# (eps, tolerance on max|R - fd| / max(1, max|fd|))
STEPS = ((1e-4, 1e-6), (1e-6, 1e-7))


# ----------------------------------------------------------------------------- inputs

class A(NamedTuple):
    """An array argument: ``dims`` names its axes ("nm": two random sizes), ``domain`` where it
    is drawn (None: the domain of the case's primitive in ``RULES``; ``apart:i``: well apart
    from argument i, entry by entry; ``offgrid``: away from the integers)."""
    dims: str
    domain: str | None = None


class S(NamedTuple):
    """A Python float argument."""
    domain: str | None = None


def _distinct(rng, shape):
    """Entries on a grid 0.25 apart (shuffled), offset so none is within 0.08 of 0 or of ±0.5."""
    size = int(np.prod(shape, dtype=int))
    grid = 0.1 + 0.25 * (np.arange(size) - size // 2)
    vals = rng.permutation(grid) + rng.uniform(-0.02, 0.02, size)
    return vals.reshape(shape)


def draw(rng, shape, domain, others):
    if domain == "real":
        return rng.normal(size=shape)
    if domain == "positive":
        return rng.uniform(0.5, 2.0, size=shape)
    if domain == "unit":
        return rng.uniform(-0.8, 0.8, size=shape)
    if domain == "nonzero":
        return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.3, 2.0, size=shape)
    if domain == "distinct":
        return _distinct(rng, shape)
    if domain == "offgrid":
        return rng.integers(-3, 3, size=shape) + rng.uniform(0.2, 0.8, size=shape)
    if domain == "withzeros":  # positive, with exact zeros (the first entry one of them)
        out = np.where(rng.uniform(size=shape) < 0.4, 0.0, rng.uniform(0.5, 2.0, size=shape))
        out.flat[0] = 0.0
        return out
    if domain == "onbounds":  # exactly on the bounds 0 and 1 of clip (both present), and apart
        out = rng.choice([-0.5, 0.0, 0.25, 0.75, 1.0, 1.5], size=shape)
        out.flat[0], out.flat[-1] = 0.0, 1.0
        return out
    if domain.startswith("apart:"):
        base = np.asarray(others[int(domain[6:])], dtype=float)
        while True:
            out = base + rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.2, 1.0, size=shape)
            if np.all(np.abs(out) > 0.05):
                return out
    raise ValueError(domain)


class Case(NamedTuple):
    name: str
    fn: Callable
    wrt: tuple
    args: tuple            # A / S specs, one per parameter, or plain values
    prim: str              # the entry whose domain the unspecified arguments use
    zero_outputs: tuple = ()  # indices of outputs whose R must be exactly zero


def make_args(case, rng):
    dims = {c: int(rng.integers(2, 6)) for c in "nmk"}
    out = []
    for spec in case.args:
        if isinstance(spec, A):
            dom = spec.domain or RULES[case.prim].domain
            out.append(draw(rng, tuple(dims[c] for c in spec.dims), dom, out))
        elif isinstance(spec, S):
            dom = spec.domain or RULES[case.prim].domain
            out.append(float(draw(rng, (), dom, out)))
        else:
            out.append(spec)
    return out


# ----------------------------------------------------------------------------- the cases

C = Case
CASES = [
    # arithmetic
    C("add", P.p_add, ("a", "b"), (A("nm"), A("nm")), "add"),
    C("add_bcast", P.p_add_bcast, ("a", "b"), (A("nm"), A("n")), "add"),
    C("sub", P.p_sub, ("a", "b"), (A("nm"), A("nm")), "sub"),
    C("mul", P.p_mul, ("a", "b"), (A("nm"), A("nm")), "mul"),
    C("mul_bcast", P.p_mul_bcast, ("a", "b"), (A("nm"), A("m")), "mul"),
    C("div", P.p_div, ("a", "b"), (A("nm", "real"), A("nm", "nonzero")), "div"),
    C("pow_const", P.p_pow_const, ("x",), (A("nm"),), "pow"),
    C("pow", P.p_pow, ("a", "b"), (A("nm"), A("nm", "real")), "pow"),
    C("pow_scalar_exp", P.p_pow_scalar_exp, ("a", "s"), (A("n"), S("real")), "pow"),
    C("neg", P.p_neg, ("x",), (A("nm"),), "neg"),
    C("pos", P.p_pos, ("x",), (A("n"),), "pos"),
    C("copy", P.p_copy, ("x",), (A("nm"),), "copy"),
    C("array_copy", P.p_array_copy, ("x",), (A("nm"),), "array_copy"),
    C("float", P.p_float, ("x",), (A("n"),), "float"),
    C("floordiv", P.p_floordiv, ("x", "y"), (A("n", "offgrid"), A("n", "real")), "floordiv", (1,)),
    C("mod_int", P.p_mod_int, ("x",), (A("nm"),), "mod"),
    C("mod_float", P.p_mod_float, ("a", "b"), (A("nm", "offgrid"), A("nm", "positive")), "mod"),
    C("int", P.p_int, ("x",), (A("n", "offgrid"),), "int", (1,)),
    # linear algebra
    C("matmul", P.p_matmul, ("a", "b"), (A("nm"), A("mk")), "matmul"),
    C("matmul_stack", P.p_matmul_stack, ("a", "b", "c"), (A("knm"), A("mn"), A("kmn")), "matmul"),
    C("matvec", P.p_matvec, ("a", "b"), (A("nm"), A("m")), "matmul"),
    C("vecmat", P.p_vecmat, ("a", "b"), (A("n"), A("nm")), "matmul"),
    C("vecvec", P.p_vecvec, ("a", "b"), (A("n"), A("n")), "matmul"),
    C("dot", P.p_dot, ("a", "b"), (A("nm"), A("mk")), "dot"),
    C("dot_vec", P.p_dot_vec, ("a", "b"), (A("n"), A("n")), "dot"),
    C("outer", P.p_outer, ("a", "b"), (A("n"), A("m")), "outer"),
    # elementwise, NumPy on arrays
    *[C(p, getattr(P, f"p_{p}"), ("x",), (A("nm"),), p)
      for p in ("exp", "log", "log1p", "expm1", "tanh", "sinh", "cosh", "sin", "cos", "tan",
                "arctan", "sqrt", "abs", "square", "reciprocal")],
    C("sign", P.p_sign, ("x", "y"), (A("nm", "nonzero"), A("nm", "real")), "sign", (1,)),
    C("floor", P.p_floor, ("x", "y"), (A("nm", "offgrid"), A("nm", "real")), "floor", (1,)),
    C("ceil", P.p_ceil, ("x", "y"), (A("nm", "offgrid"), A("nm", "real")), "ceil", (1,)),
    # elementwise, math on Python floats
    *[C(f"math_{m}", getattr(P, f"p_math_{m}"), ("s",), (S(),), p)
      for m, p in (("exp", "exp"), ("log", "log"), ("log1p", "log1p"), ("expm1", "expm1"),
                   ("tanh", "tanh"), ("sinh", "sinh"), ("cosh", "cosh"), ("sin", "sin"),
                   ("cos", "cos"), ("tan", "tan"), ("atan", "arctan"), ("sqrt", "sqrt"),
                   ("fabs", "abs"))],
    C("math_floor", P.p_math_floor, ("s", "t"), (S("offgrid"), S("real")), "floor"),
    C("math_ceil", P.p_math_ceil, ("s", "t"), (S("offgrid"), S("real")), "ceil"),
    # selections
    C("maximum", P.p_maximum, ("a", "b"), (A("nm"), A("nm", "apart:0")), "maximum"),
    C("minimum", P.p_minimum, ("a", "b"), (A("nm"), A("nm", "apart:0")), "minimum"),
    C("builtin_max_min", P.p_builtin_max_min, ("s", "t"), (S(), S("apart:0")), "maximum"),
    C("where", P.p_where, ("a", "b"), (A("nm", "distinct"), A("nm", "apart:0")), "where"),
    C("clip", P.p_clip, ("x",), (A("nm"),), "clip"),
    C("clip_active_bounds", P.p_clip_active_bounds, ("x", "lo", "hi"),
      (A("nm", "real"), A("nm", "apart:0"), A("nm", "apart:0")), "clip"),
    C("norm", P.p_norm, ("x", "v"), (A("nm"), A("n")), "norm"),
    C("reduce_axes", P.p_reduce_axes, ("x",), (A("nmk", "distinct"),), "sum"),
    # reductions and reshaping
    C("sum", P.p_sum, ("x",), (A("nm"),), "sum"),
    C("mean", P.p_mean, ("x",), (A("nm"),), "mean"),
    C("max", P.p_max, ("x",), (A("nm"),), "max"),
    C("min", P.p_min, ("x",), (A("nm"),), "min"),
    C("transpose", P.p_transpose, ("x",), (A("nm"),), "transpose"),
    C("reshape", P.p_reshape, ("x",), (A("nm"),), "reshape"),
    C("ravel", P.p_ravel, ("x",), (A("nm"),), "ravel"),
    C("flatten", P.p_flatten, ("x",), (A("nm"),), "flatten"),
    C("getitem", P.p_getitem, ("x",), (A("n"),), "getitem"),
    C("getitem2", P.p_getitem2, ("x",), (A("nm"),), "getitem"),
    # zero rules
    C("shape", P.p_shape, ("x",), (A("nm"),), "shape", (1,)),
    C("ndim", P.p_ndim, ("x",), (A("nm"),), "ndim", (1,)),
    C("size", P.p_size, ("x",), (A("nm"),), "size", (1,)),
    C("dtype", P.p_dtype, ("x",), (A("nm"),), "dtype", (1,)),
    C("len", P.p_len, ("x",), (A("nm"),), "len", (1,)),
    C("zeros", P.p_zeros, ("x",), (A("nm"),), "zeros", (1,)),
    C("ones", P.p_ones, ("x",), (A("nm"),), "ones", (1,)),
    C("empty", P.p_empty, ("x",), (A("nm"),), "empty"),
    C("full", P.p_full, ("x",), (A("nm"),), "full", (1,)),
    C("zeros_like", P.p_zeros_like, ("x",), (A("nm"),), "zeros_like", (1,)),
    C("ones_like", P.p_ones_like, ("x",), (A("nm"),), "ones_like", (1,)),
    C("eye", P.p_eye, ("x",), (A("nm"),), "eye", (1,)),
    C("arange", P.p_arange, ("x",), (A("n"),), "arange", (1,)),
    C("argmax", P.p_argmax, ("x",), (A("n", "distinct"),), "argmax", (1,)),
    C("argmin", P.p_argmin, ("x",), (A("n", "distinct"),), "argmin", (1,)),
    C("add_at", P.p_add_at, ("x",), (A("n"),), "add_at"),
    C("squeeze", P.p_squeeze, ("x",), (A("n"),), "squeeze"),
    C("nan_to_num", P.p_nan_to_num, ("x",), (A("nm", "positive"),), "nan_to_num"),
    C("as_int", P.p_as_int, ("x", "y"), (A("nm", "nonzero"), A("nm", "real")), "as_int", (1,)),
    C("compare", P.p_compare, ("a", "b"), (A("nm", "real"), A("nm", "apart:0")), "lt", (6,)),
    C("bool_ops", P.p_bool_ops, ("s", "t"), (S("nonzero"), S("nonzero")), "and"),
    C("list_repeat", P.p_list_repeat, ("x",), (A("nm"),), "list_repeat"),
    # more spellings: keepdims broadcasting, -1 in shapes, rank 3, axis=None, partial wrt
    C("softmax", P.p_softmax, ("x",), (A("nm"),), "max"),
    C("reshape_neg", P.p_reshape_neg, ("x",), (A("nm"),), "reshape"),
    C("transpose3", P.p_transpose3, ("x",), (A("nmk"),), "transpose"),
    C("reduce3", P.p_reduce3, ("x",), (A("nmk"),), "max"),
    C("reduce_none", P.p_reduce_none, ("x",), (A("nm"),), "max"),
    C("dot_matvec", P.p_dot_matvec, ("a", "b"), (A("nm"), A("m")), "dot"),
    C("transpose_1d", P.p_transpose_1d, ("x",), (A("n"),), "transpose"),
    C("scalar_array_mix", P.p_scalar_array_mix, ("s", "x"), (S("nonzero"), A("n", "distinct")),
      "mul"),
    C("div_wrt_b", P.p_div, ("b",), (A("nm", "real"), A("nm", "nonzero")), "div"),
    C("div_wrt_a", P.p_div, ("a",), (A("nm", "real"), A("nm", "nonzero")), "div"),
    C("pow_wrt_b", P.p_pow, ("b",), (A("nm"), A("nm", "real")), "pow"),
    C("pow_wrt_a", P.p_pow, ("a",), (A("nm"), A("nm", "real")), "pow"),
    C("matmul_wrt_a", P.p_matmul_partial, ("a",), (A("nm"), A("mn")), "matmul"),
    C("matmul_wrt_b", P.p_matmul_partial, ("b",), (A("nm"), A("mn")), "matmul"),
    C("maximum_wrt_b", P.p_maximum, ("b",), (A("nm"), A("nm", "apart:0")), "maximum"),
    C("where_wrt_a", P.p_where, ("a",), (A("nm", "distinct"), A("nm", "apart:0")), "where"),
    # active arguments of rules that were zero (issue 17)
    C("full_active", P.p_full_active, ("a", "W"), (S("real"), A("n")), "full"),
    C("full_active_wrt_W", P.p_full_active, ("W",), (S("real"), A("n")), "full", (2, 3)),
    C("arange_active", P.p_arange_active, ("s", "t"), (S("real"), S("positive")), "arange", (2,)),
    C("arange_active_wrt_t", P.p_arange_active, ("t",), (S("real"), S("positive")), "arange",
      (0, 2)),
    C("pow_zero_base", P.p_pow_zero_base, ("p",), (A("nm", "withzeros"), S("positive")), "pow"),
    C("bool_values", P.p_bool_values, ("s", "t"), (S("nonzero"), S("nonzero")), "and"),
    # clip exactly on its bounds: every spelling the mean of the two sides (as jnp.clip)
    C("clip_on_bounds", P.p_clip_on_bounds, ("x",), (A("nm", "onbounds"), 0.0, 1.0), "clip"),
    C("clip_on_bounds_active", P.p_clip_on_bounds, ("x", "lo", "hi"),
      (A("nm", "onbounds"), 0.0, 1.0), "clip"),
    C("clip_on_bounds_scalar", P.p_clip_on_bounds_scalar, ("s",), (0.0, 0.0, 1.0), "clip"),
    C("clip_on_bounds_scalar_hi", P.p_clip_on_bounds_scalar, ("s", "lo", "hi"), (1.0, 0.0, 1.0),
      "clip"),
    C("clip_wrt_hi", P.p_clip_active_bounds, ("hi",),
      (A("nm", "real"), A("nm", "apart:0"), A("nm", "apart:0")), "clip", (0,)),
    C("clip_wrt_lo", P.p_clip_active_bounds, ("lo",),
      (A("nm", "real"), A("nm", "apart:0"), A("nm", "apart:0")), "clip"),
    C("clip_on_bounds_wrt_hi", P.p_clip_on_bounds, ("hi",), (A("nm", "onbounds"), 0.0, 1.0),
      "clip", (0, 2)),
    # the NumPy of real backprop code (issue 18)
    C("concatenate", P.p_concatenate, ("a", "b"), (A("nm"), A("nm")), "concatenate"),
    C("concatenate_wrt_a", P.p_concatenate, ("a",), (A("nm"), A("nm")), "concatenate"),
    C("vstack_hstack", P.p_vstack_hstack, ("a", "b"), (A("nm"), A("nm")), "vstack"),
    C("stack", P.p_stack, ("a", "b"), (A("nm"), A("nm")), "stack"),
    C("stack_wrt_b", P.p_stack, ("b",), (A("nm"), A("nm")), "stack"),
    C("column_stack", P.p_column_stack, ("u", "v"), (A("n"), A("n")), "column_stack"),
    C("tile", P.p_tile, ("x",), (A("nm"),), "tile"),
    C("repeat", P.p_repeat, ("x",), (A("nm"),), "repeat"),
    C("array", P.p_array, ("a", "b", "w"), (A("nm"), A("nm"), S()), "array"),
    C("array_wrt_w", P.p_array, ("w",), (A("nm"), A("nm"), S()), "array", (0, 3)),
    C("array_dtype", P.p_array_dtype, ("x", "a", "w"), (A("nm"), A("n"), S()), "array"),
    C("asarray_astype", P.p_asarray_astype, ("x",), (A("nm"),), "asarray"),
    C("astype_float", P.p_astype_float, ("x",), (A("nm"),), "astype"),
    C("empty_like", P.p_empty_like, ("x",), (A("nm"),), "empty_like", (1,)),
    C("full_like", P.p_full_like, ("x", "c"), (A("nm"), S()), "full_like", (3,)),
    C("diag", P.p_diag, ("v", "M"), (A("n"), A("nn")), "diag"),
    C("var", P.p_var_std, ("x",), (A("nm"),), "var"),
    C("std", P.p_std, ("x",), (A("nm"),), "std"),
    C("cumsum", P.p_cumsum, ("x",), (A("nm"),), "cumsum"),
    C("prod", P.p_prod, ("x",), (A("nm"),), "prod"),
    C("prod_at_zeros", P.p_prod, ("x",), (A("nm", "withzeros"),), "prod"),
    C("logaddexp", P.p_logaddexp, ("a", "b"), (A("nm"), A("nm")), "logaddexp"),
    C("logaddexp_wrt_b", P.p_logaddexp, ("b",), (A("nm"), A("nm")), "logaddexp"),
    C("einsum", P.p_einsum, ("A", "B", "v"), (A("nn"), A("nn"), A("n")), "einsum"),
    C("einsum_wrt_B", P.p_einsum, ("B",), (A("nn"), A("nn"), A("n")), "einsum", (1, 2, 3, 5, 6)),
    C("stack_list", P.p_stack_list, ("x", "W"), (A("n"), A("nn")), "stack"),
    C("stack_list2", P.p_stack_list2, ("X", "W"), (A("nm"), A("nn")), "concatenate"),
    C("bool_masks", P.p_bool_masks, ("x", "W", "d"), (A("n"), A("nm"), A("n")), "dot"),
    C("bool_masks2", P.p_bool_masks2, ("X", "W", "D"), (A("nm"), A("nn"), A("nm")), "dot"),
    # CS231n's naive convolution and max pooling
    C("pad", P.p_pad, ("x", "c"), (A("nm"), S()), "pad"),
    C("pad_wrt_c", P.p_pad, ("c",), (A("nm"), S()), "pad", (0, 1, 2, 3)),
    C("pad4", P.p_pad4, ("x", "w"), (A("nmkn"), A("m")), "pad"),
    C("unravel_index", P.p_unravel_index, ("x",), (A("nm", "distinct"),), "unravel_index",
      (2, 3, 4)),
]
CASE = {c.name: c for c in CASES}

# rule-table entry -> the programs that exercise it (kept by hand: a new entry must be added here)
COVERAGE = {
    "add": ("add", "add_bcast"), "sub": ("sub",), "mul": ("mul", "mul_bcast"), "div": ("div",),
    "pow": ("pow_const", "pow", "pow_scalar_exp", "pow_zero_base"), "neg": ("neg",), "pos": ("pos",),
    "copy": ("copy",), "array_copy": ("array_copy",), "float": ("float",),
    "floordiv": ("floordiv",), "mod": ("mod_int", "mod_float"), "int": ("int",),
    "matmul": ("matmul", "matmul_stack", "matvec", "vecmat", "vecvec"), "dot": ("dot", "dot_vec"),
    "outer": ("outer",),
    "exp": ("exp", "math_exp"), "log": ("log", "math_log"), "log1p": ("log1p", "math_log1p"),
    "expm1": ("expm1", "math_expm1"), "tanh": ("tanh", "math_tanh"),
    "sinh": ("sinh", "math_sinh"), "cosh": ("cosh", "math_cosh"), "sin": ("sin", "math_sin"),
    "cos": ("cos", "math_cos"), "tan": ("tan", "math_tan"), "arctan": ("arctan", "math_atan"),
    "sqrt": ("sqrt", "math_sqrt"), "abs": ("abs", "math_fabs"), "square": ("square",),
    "reciprocal": ("reciprocal",), "sign": ("sign",), "floor": ("floor", "math_floor"),
    "ceil": ("ceil", "math_ceil"),
    "maximum": ("maximum", "builtin_max_min"), "minimum": ("minimum", "builtin_max_min"),
    "where": ("where",),
    "clip": ("clip", "clip_active_bounds", "clip_on_bounds", "clip_on_bounds_active",
             "clip_on_bounds_scalar", "clip_on_bounds_scalar_hi", "clip_wrt_hi", "clip_wrt_lo",
             "clip_on_bounds_wrt_hi"),
    "sum": ("sum",), "mean": ("mean",), "max": ("max",), "min": ("min",), "norm": ("norm",),
    "transpose": ("transpose",), "reshape": ("reshape",), "ravel": ("ravel",),
    "flatten": ("flatten",), "getitem": ("getitem", "getitem2"),
    "shape": ("shape", "reshape"), "ndim": ("ndim",), "size": ("size",), "dtype": ("dtype",), "len": ("len",),
    "zeros": ("zeros",), "ones": ("ones",), "empty": ("empty",),
    "full": ("full", "full_active", "full_active_wrt_W"),
    "zeros_like": ("zeros_like",), "ones_like": ("ones_like",), "eye": ("eye",),
    "arange": ("arange", "arange_active", "arange_active_wrt_t"), "argmax": ("argmax",),
    "argmin": ("argmin",),
    "lt": ("compare",), "le": ("compare",), "gt": ("compare",), "ge": ("compare",),
    "eq": ("compare",), "ne": ("compare",),
    "and": ("bool_ops", "bool_values"), "or": ("bool_ops", "bool_values"), "not": ("bool_ops",),
    "list_repeat": ("list_repeat",),
    "add_at": ("add_at",), "squeeze": ("squeeze",), "nan_to_num": ("nan_to_num",),
    "as_int": ("as_int",),
    "concatenate": ("concatenate", "concatenate_wrt_a", "stack_list", "stack_list2"),
    "vstack": ("vstack_hstack", "stack_list", "stack_list2"),
    "hstack": ("vstack_hstack", "stack_list", "stack_list2"),
    "stack": ("stack", "stack_wrt_b", "stack_list", "stack_list2"),
    "column_stack": ("column_stack", "stack_list", "stack_list2"), "tile": ("tile",), "repeat": ("repeat",),
    "array": ("array", "array_wrt_w", "array_dtype", "stack_list", "stack_list2"),
    "asarray": ("asarray_astype", "array_dtype"),
    "astype": ("asarray_astype", "astype_float"), "empty_like": ("empty_like",),
    "full_like": ("full_like",), "diag": ("diag",), "diagflat": ("diag",),
    "var": ("var",), "std": ("std",), "cumsum": ("cumsum",), "prod": ("prod", "prod_at_zeros"),
    "logaddexp": ("logaddexp", "logaddexp_wrt_b"), "einsum": ("einsum", "einsum_wrt_B"),
    "pad": ("pad", "pad_wrt_c", "pad4"), "unravel_index": ("unravel_index",),
}


# ----------------------------------------------------------------------------- compiling once

_COMPILED: dict = {}


def compiled(fn, wrt, mode):
    key = (fn.__name__, tuple(wrt), mode)
    if key not in _COMPILED:
        _COMPILED[key] = rop(fn, wrt=wrt, mode=mode)
    return _COMPILED[key]


# ----------------------------------------------------------------------------- checking

def leaves(x):
    if isinstance(x, (tuple, list)):
        return [leaf for e in x for leaf in leaves(e)]
    return [x]


def as_float(x):
    return np.asarray(x, dtype=float)


def central(fn, args, idx, v, eps):
    plus, minus = list(args), list(args)
    for i, d in zip(idx, v):
        plus[i] = args[i] + eps * d
        minus[i] = args[i] - eps * d
    return [(as_float(p) - as_float(m)) / (2 * eps)
            for p, m in zip(leaves(fn(*plus)), leaves(fn(*minus)))]


def directions(rng, args, idx):
    return tuple(rng.normal(size=np.shape(args[i])) if np.ndim(args[i]) else float(rng.normal())
                 for i in idx)


def check_against_fd(fn, wrt, args, v, out, r_out, label=""):
    """Primal outputs equal fn(*args); R-outputs have the outputs' shapes and match central
    differences at both step sizes."""
    import inspect
    names = list(inspect.signature(fn).parameters)
    idx = [names.index(w) for w in wrt]
    ref = leaves(fn(*args))
    outs, routs = leaves(out), leaves(r_out)
    assert len(outs) == len(ref) == len(routs), label
    for k, (o, e, r) in enumerate(zip(outs, ref, routs)):
        assert np.allclose(as_float(o), as_float(e), rtol=1e-12, atol=1e-12), (label, k)
        assert np.shape(r) == np.shape(e), (label, k, np.shape(r), np.shape(e))
    for eps, tol in STEPS:
        fd = central(fn, args, idx, v, eps)
        for k, (r, d) in enumerate(zip(routs, fd)):
            err = float(np.max(np.abs(as_float(r) - d), initial=0.0))
            scale = max(1.0, float(np.max(np.abs(d), initial=0.0)))
            assert err <= tol * scale, \
                f"{label} output {k}: eps={eps}: |R - fd| = {err:.3e} > {tol:g} * {scale:.3g}"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_rule_matches_central_differences(name, mode):
    case = CASE[name]
    rng = np.random.default_rng(1000 + CASES.index(case))
    f = compiled(case.fn, case.wrt, mode)
    for trial in range(2):  # two random shape draws, one compilation (same ranks)
        args = make_args(case, rng)
        names = list(f.signature.parameters)
        idx = [names.index(w) for w in case.wrt]
        v = directions(rng, args, idx)
        before = [np.copy(a) for a in (*args, *v)]
        out, r_out = f.hvp(*args, v=v)
        for k, (a, b) in enumerate(zip((*args, *v), before)):
            assert np.array_equal(a, b), f"{name}[{mode}]: argument {k} changed by .hvp"
        check_against_fd(case.fn, case.wrt, args, v, out, r_out, f"{name}[{mode}]")
        routs = leaves(r_out)
        for k in case.zero_outputs:
            assert np.all(as_float(routs[k]) == 0.0), (name, k, routs[k])


# ----------------------------------------------------------------------------- against JAX

# cases checked against jax.jvp of the same program re-executed with np bound to jax.numpy
# (tests/jax_oracle.py) besides central differences: the rules issue 17 found wrong, and their
# neighbours
JAX_CASES = ("full", "full_active", "full_active_wrt_W", "arange", "arange_active",
             "arange_active_wrt_t", "pow", "pow_scalar_exp", "pow_wrt_b", "pow_zero_base",
             "clip", "clip_active_bounds", "clip_on_bounds", "clip_on_bounds_active",
             "clip_on_bounds_scalar", "clip_on_bounds_scalar_hi", "clip_wrt_hi",
             "clip_on_bounds_wrt_hi", "bool_values", "norm",
             "maximum", "where",
             # issue 18
             "concatenate", "concatenate_wrt_a", "vstack_hstack", "stack", "stack_wrt_b",
             "column_stack", "tile", "repeat", "array", "array_wrt_w", "asarray_astype",
             "astype_float", "empty_like", "full_like", "diag", "var", "std", "cumsum", "prod",
             "prod_at_zeros", "logaddexp", "logaddexp_wrt_b", "einsum", "einsum_wrt_B",
             "stack_list", "stack_list2", "bool_masks", "bool_masks2", "array_dtype",
             "pad", "pad_wrt_c", "pad4")


def _jax_arange_active(s, t):
    """p_arange_active as JAX can differentiate it: jnp.arange takes its arguments as concrete
    numbers (jax.jvp gives R = 0 through it), so element k is written s + k t."""
    import jax.numpy as jnp
    k = jnp.arange(3.0)
    return s + k, (s + k * t) * s, jnp.arange(0.5, 2.5 * t, 1.0), k * t


def _jax_asarray_astype(x):
    """p_asarray_astype with its write into z as JAX's functional update."""
    import jax.numpy as jnp
    y = jnp.asarray(x)
    z = x.astype(jnp.float64)
    z = z.at[0].set(2.0 * z[0])
    return y * y, z, (x * x).astype(jnp.float64)


def _jax_astype_float(x):
    """p_astype_float: the oracle binds `float` to a cast function, not a dtype."""
    import jax.numpy as jnp
    return x.astype(jnp.float64) * x


def _jax_empty_like(x):
    """p_empty_like with `e[:] = 3.0` as JAX's functional update."""
    import jax.numpy as jnp
    e = jnp.empty_like(x).at[:].set(3.0)
    return e * x, e


def _jax_array_dtype(x, a, w):
    """p_array_dtype with jnp.float64 for `float` (bound to a cast function by the oracle)."""
    import jax.numpy as jnp
    y = jnp.asarray(x, dtype=jnp.float64)
    return jnp.array([1, 2, w], dtype=jnp.float64) * w, jnp.asarray([a, 2.0 * a]), y * x, \
        jnp.array(x) * x, jnp.asarray((w, 3), dtype=jnp.float64), \
        jnp.array([[a, a], [a, a]], jnp.float64)


JAX_SPELLING = {"arange_active": _jax_arange_active, "arange_active_wrt_t": _jax_arange_active,
                "asarray_astype": _jax_asarray_astype, "astype_float": _jax_astype_float,
                "empty_like": _jax_empty_like, "array_dtype": _jax_array_dtype}


@functools.lru_cache(maxsize=None)
def _jax_programs():
    import jax_oracle
    return jax_oracle.jax_namespace(P)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", JAX_CASES)
def test_rule_matches_jax(name, mode):
    import jax
    import jax.numpy as jnp
    import jax_oracle
    case = CASE[name]
    fj = JAX_SPELLING.get(name) or _jax_programs()[case.fn.__name__]
    rng = np.random.default_rng(2000 + CASES.index(case))
    f = compiled(case.fn, case.wrt, mode)
    args = make_args(case, rng)
    names = list(f.signature.parameters)
    idx = [names.index(w) for w in case.wrt]
    v = directions(rng, args, idx)
    out, r_out = f.hvp(*args, v=v)

    def f_wrt(*params):
        # data as jax arrays too: x.clip(lo, hi) of a NumPy x cannot take a traced bound
        full = [jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in args]
        for i, p in zip(idx, params):
            full[i] = p
        return fj(*full)
    out_j, r_j = jax.jvp(f_wrt, tuple(args[i] for i in idx), tuple(v))
    outs, routs = leaves(out), leaves(r_out)
    outs_j, routs_j = jax_oracle.leaves(out_j), jax_oracle.leaves(r_j)
    assert len(outs) == len(outs_j) == len(routs) == len(routs_j), name
    for k, (o, oj, r, rj) in enumerate(zip(outs, outs_j, routs, routs_j)):
        assert np.allclose(as_float(o), jax_oracle.as_float(oj), rtol=1e-12, atol=1e-12), \
            f"{name}[{mode}] output {k}: primal differs from JAX's"
        rj = jax_oracle.as_float(rj)
        assert np.shape(r) == rj.shape and np.allclose(as_float(r), rj, rtol=1e-10, atol=1e-12), \
            f"{name}[{mode}] output {k}: R = {r!r}, jax.jvp: {rj!r}"


# ----------------------------------------------------------------------------- kinks

@pytest.mark.parametrize("mode", MODES)
def test_clip_spellings_agree_on_the_bounds(mode):
    """np.clip(x, 0.0, 1.0) (constant bounds: rt.clip_tangent), the same bounds in variables
    (the np.where formula), x.clip(...) and mixed spellings give the same R bit for bit, with x
    exactly on a bound too: the mean of the two one-sided derivatives, R{x} / 2, as jax.jvp of
    jnp.clip gives (and a central difference)."""
    import jax
    import jax.numpy as jnp
    x = np.array([[-0.5, 0.0, 0.25], [0.75, 1.0, 1.5]])
    vx = np.array([[1.0, -3.0, 2.0], [0.5, 7.0, -1.0]])
    want = np.array([[0.0, -1.5, 2.0], [0.5, 3.5, 0.0]])
    _, rj = jax.jvp(lambda x: jnp.clip(x, 0.0, 1.0), (x,), (vx,))
    assert np.array_equal(np.asarray(rj), want)
    f = compiled(P.p_clip_on_bounds, ("x",), mode)
    _, r = f.hvp(x, 0.0, 1.0, v=(vx,))
    for k, rk in enumerate(r):
        assert np.array_equal(rk, want), (mode, k, rk)
    # scalars: rt.clip_tangent's scalar kernel and the formula on numbers
    g = compiled(P.p_clip_on_bounds_scalar, ("s",), mode)
    for s, vs in ((0.0, 3.0), (1.0, -3.0), (0.5, 3.0), (-1.0, 3.0), (2.0, 3.0)):
        _, r = g.hvp(s, 0.0, 1.0, v=(vs,))
        _, rj = jax.jvp(lambda s: jnp.clip(s, 0.0, 1.0), (s,), (vs,))
        assert all(float(rk) == float(rj) for rk in r), (mode, s, r, rj)
    # active bounds on the bound: (R{x} + R{lo}) / 2 and (R{x} + R{hi}) / 2, as JAX
    h = compiled(P.p_clip_on_bounds, ("x", "lo", "hi"), mode)
    _, r = h.hvp(x, 0.0, 1.0, v=(vx, 10.0, 100.0))
    _, rj = jax.jvp(lambda x, lo, hi: jnp.clip(x, lo, hi), (x, 0.0, 1.0), (vx, 10.0, 100.0))
    assert np.array_equal(r[1], np.asarray(rj)), (r[1], rj)
    assert np.array_equal(r[1], np.array([[10.0, 3.5, 2.0], [0.5, 53.5, 100.0]]))


# ----------------------------------------------------------------------------- completeness

def _prims_in(stmts):
    for st in stmts:
        p = getattr(st, "prim", None)
        if p is not None:
            yield p
        for attr in ("cond", "body", "orelse"):
            yield from _prims_in(getattr(st, attr, None) or ())


def test_every_rule_has_a_program():
    # rules registered with rop.register_rule are tested where they are registered
    # (tests/test_boltzmann.py); every built-in entry must have a program here
    # runtime entries (helpers only R-code calls) are not reachable from user code: see
    # test_runtime_entries_are_r_code_only
    builtin = {n for n, p in RULES.items() if p.kind not in ("registered", "runtime")}
    missing = sorted(builtin - set(COVERAGE))
    assert not missing, f"rule-table entries without a test program in COVERAGE: {missing}"
    stale = sorted(set(COVERAGE) - builtin)
    assert not stale, f"COVERAGE names entries not in RULES: {stale}"
    for prim, names in COVERAGE.items():
        assert names, prim
        for n in names:
            assert n in CASE, (prim, n)
        found = set()
        for n in names:
            found |= set(_prims_in(lower(CASE[n].fn).body))
        assert prim in found, f"no program mapped to `{prim}` lowers to a `{prim}` statement"


# zero-rule entries whose result is never an array of R-values of its own
NO_R_OF_ITS_OWN = {
    # `[None] * n` makes slots; the R-list is built from the values later stored in them
    # (checked against central differences by the list_repeat program)
    "list_repeat",
}


# Why each zero-rule entry is zero: its result is piecewise constant or integer valued in every
# argument that can be active.  A zero rule must follow from that, never from the function
# alone (issue 17: np.full(3, a), np.arange(a, a + 2.5) and `s or t` were zero entries although
# their results move with a); a new zero entry must say here why it is one.
ZERO_BECAUSE = {
    "floordiv": "integer valued", "int": "integer valued", "sign": "piecewise constant",
    "floor": "integer valued", "ceil": "integer valued",
    "shape": "a shape", "ndim": "a rank", "size": "a size", "len": "a length",
    "zeros": "built from a shape", "ones": "built from a shape",
    "empty": "built from a shape (its values are written later, with their own R)",
    "zeros_like": "only the shape of x is read", "ones_like": "only the shape of x is read",
    "eye": "built from a size", "argmax": "an index", "argmin": "an index",
    "lt": "a bool", "le": "a bool", "gt": "a bool", "ge": "a bool", "eq": "a bool",
    "ne": "a bool", "not": "a bool",
    "list_repeat": "slots `[None] * n`, filled later with values that carry their own R",
    "empty_like": "only the shape of x is read (its values are written later, with their own R)",
    "as_int": "integer valued", "unravel_index": "integer valued (coordinates of an index)",
    "dtype": "a dtype, float64 for the values rop proves floating (folded: ir/dtypes.py)",
}


def test_runtime_entries_are_r_code_only():
    """The entries of the helpers R-code calls (``rt.broadcast_as``, the generic ``call``, ...)
    have no R-rule and no spelling: no user program reaches them, so they need no program."""
    from rop.frontend.names import BUILTIN_FUNCS, MATH_FUNCS, METHODS, NUMPY_FUNCS
    runtime = {n for n, p in RULES.items() if p.kind == "runtime"}
    assert {"broadcast_as", "call", "zeros_of"} <= runtime
    reached = set(METHODS.values()) | {p for d in (NUMPY_FUNCS, MATH_FUNCS, BUILTIN_FUNCS)
                                       for p in d.values()}
    for n in runtime:
        assert RULES[n].rule is None and not RULES[n].spelled and n not in reached, n


def test_every_zero_rule_says_why():
    zero = {n for n, p in RULES.items() if p.rule is None and p.kind != "runtime"}
    assert zero == set(ZERO_BECAUSE), (sorted(zero - set(ZERO_BECAUSE)),
                                       sorted(set(ZERO_BECAUSE) - zero))


def test_every_zero_rule_is_checked_for_exact_zero():
    """Each zero-rule entry maps to a program that checks an exactly-zero R output, or (for
    values that only steer control flow or fill: and/or/not, mod on loop counters, empty)
    whose R-statements never read an R of its result."""
    for prim, p in RULES.items():
        if p.rule is not None or prim in NO_R_OF_ITS_OWN or p.kind == "runtime":
            continue
        assert any(CASE[n].zero_outputs or _no_r_of(prim, CASE[n]) for n in COVERAGE[prim]), prim


def _no_r_of(prim, case):
    """No R-statement of the generated code reads the R of a `prim` result."""
    f = compiled(case.fn, case.wrt, "python")
    ir = lower(case.fn)
    targets = {st.target for st in _walk(ir.body) if getattr(st, "prim", None) == prim}
    rng = np.random.default_rng(7)
    args = make_args(case, rng)
    names = list(f.signature.parameters)
    f.hvp(*args, v=directions(rng, args, [names.index(w) for w in case.wrt]))
    tree = ast.parse(f.hvp.source)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return targets and not any(f"R_{t}" in used for t in targets)


def _walk(stmts):
    for st in stmts:
        yield st
        for attr in ("cond", "body", "orelse"):
            yield from _walk(getattr(st, attr, None) or ())


# ----------------------------------------------------------------------------- structure

def _hvp_body(source, fname):
    tree = ast.parse(source)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == fname + "_hvp")
    return fn


@pytest.mark.parametrize("mode", MODES)
def test_zero_rule_times_active_is_structurally_absent(mode):
    """R{sign(x) * y} = sign(x) * R{y}: no term in R{x}, not even a multiplication by zero."""
    f = compiled(P.sign_times, ("x", "y"), mode)
    rng = np.random.default_rng(5)
    x = draw(rng, (3, 4), "nonzero", [])
    y = rng.normal(size=(3, 4))
    vx, vy = rng.normal(size=x.shape), rng.normal(size=y.shape)
    out, r = f.hvp(x, y, v=(vx, vy))
    assert np.array_equal(r, np.sign(x) * vy)
    fn = _hvp_body(f.hvp.source, "sign_times")
    # the argument check at the top reads every direction; the computation must not read R_x
    body = [st for st in fn.body if "rt.check_direction" not in ast.unparse(st)]
    reads = [n.id for st in body for n in ast.walk(st) if isinstance(n, ast.Name)]
    assert "R_x" not in reads, f.hvp.source
    assert "R_y" in reads
    check_against_fd(P.sign_times, ("x", "y"), [x, y], (vx, vy), out, r, "sign_times")


@pytest.mark.parametrize("mode", MODES)
def test_user_elementwise_helpers(mode):
    """sigmoid, softplus = log1p(exp(x)) and a two-argument helper sq_err(y, t), inlined and
    composed, against central differences; all differentiable arguments active."""
    f = compiled(P.helpers, ("x", "t"), mode)
    rng = np.random.default_rng(11)
    for shape in ((4, 3), (2, 5)):
        x, t = rng.normal(size=shape), rng.normal(size=shape)
        v = (rng.normal(size=shape), rng.normal(size=shape))
        out, r = f.hvp(x, t, v=v)
        check_against_fd(P.helpers, ("x", "t"), [x, t], v, out, r, f"helpers[{mode}]")
    # only x active: t is data
    g = compiled(P.helpers, ("x",), mode)
    x, t = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    v = (rng.normal(size=x.shape),)
    out, r = g.hvp(x, t, v=v)
    check_against_fd(P.helpers, ("x",), [x, t], v, out, r, f"helpers_x[{mode}]")


@pytest.mark.parametrize("mode", MODES)
def test_tanh_uses_the_y_form(mode):
    """R{tanh(x)} is written in the result y: (1.0 - y ** 2) * R{x}, no second tanh/cosh."""
    f = compiled(P.tanh_y, ("x",), mode)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 3))
    v = (rng.normal(size=x.shape),)
    out, r = f.hvp(x, v=v)
    src = f.hvp.source
    assert "1.0 - y ** 2" in src, src
    body = ast.unparse(_hvp_body(src, "tanh_y"))
    assert body.count("rt.tanh(") == 1 and "np.tanh" not in body and "cosh" not in body, body
    check_against_fd(P.tanh_y, ("x",), [x], v, out, r, f"tanh_y[{mode}]")


@pytest.mark.parametrize("mode", MODES)
def test_stacking_zero_operand_is_local(mode):
    """R{concatenate((a, b))} with only a active: the zero R of b is np.zeros_like(b) inside
    the R-call alone -- no R_b is made -- and einsum gets one term per active operand."""
    f = compiled(P.p_concatenate, ("a",), mode)
    rng = np.random.default_rng(18)
    a, b = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    f.hvp(a, b, v=(rng.normal(size=a.shape),))
    body = ast.unparse(_hvp_body(f.hvp.source, "p_concatenate"))
    assert "np.concatenate((R_a, np.zeros_like(b)), 0)" in body, body
    assert "R_b" not in body, body
    g = compiled(P.p_einsum, ("B",), mode)
    A, B, v = rng.normal(size=(3, 3)), rng.normal(size=(3, 3)), rng.normal(size=3)
    g.hvp(A, B, v, v=(rng.normal(size=B.shape),))
    body = ast.unparse(_hvp_body(g.hvp.source, "p_einsum"))
    assert "rt.einsum('ij,jk->ik', (A, R_B))" in body and "R_A" not in body, body


def test_shipped_unary_derivatives_are_sympys():
    """rules/unary_derivatives.json (read instead of importing sympy on a fresh cache) holds,
    for every unary entry and nothing else, exactly what sympy derives now; regenerate with
    ``rop.rules.table.write_shipped_derivatives()``."""
    from rop.rules.table import _shipped_derivatives, derive_unary
    shipped = _shipped_derivatives()
    unary = sorted(p.sympy_fn for p in RULES.values() if p.kind == "unary")
    assert sorted(shipped) == unary
    for fx in unary:
        assert shipped[fx] == derive_unary(fx), fx
