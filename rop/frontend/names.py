"""What a name in user code refers to: a primitive, a constant, or a user helper.

Names are resolved by *object identity* in the function's globals, so ``np.exp``,
``numpy.exp`` and ``from numpy import exp`` all reach the same rule-table entry,
and a user's own ``exp`` does not.
"""

from __future__ import annotations

import builtins
import math

import numpy as np

NUMPY_FUNCS = {
    np.exp: "exp", np.log: "log", np.log1p: "log1p", np.expm1: "expm1", np.tanh: "tanh",
    np.sinh: "sinh", np.cosh: "cosh", np.sin: "sin", np.cos: "cos", np.tan: "tan",
    np.arctan: "arctan", np.sqrt: "sqrt", np.abs: "abs", np.absolute: "abs", np.fabs: "abs",
    np.square: "square", np.reciprocal: "reciprocal", np.sign: "sign", np.floor: "floor",
    np.ceil: "ceil",
    np.add: "add", np.subtract: "sub", np.multiply: "mul", np.divide: "div",
    np.true_divide: "div", np.power: "pow", np.negative: "neg", np.positive: "pos",
    np.matmul: "matmul", np.dot: "dot", np.outer: "outer",
    np.maximum: "maximum", np.minimum: "minimum", np.where: "where", np.clip: "clip",
    np.sum: "sum", np.mean: "mean", np.max: "max", np.amax: "max", np.min: "min",
    np.amin: "min", np.transpose: "transpose", np.reshape: "reshape", np.ravel: "ravel",
    np.copy: "array_copy",
    np.zeros: "zeros", np.ones: "ones", np.empty: "empty", np.full: "full",
    np.zeros_like: "zeros_like", np.ones_like: "ones_like", np.eye: "eye", np.arange: "arange",
    np.argmax: "argmax", np.argmin: "argmin", np.linalg.norm: "norm",
}

MATH_FUNCS = {
    math.exp: "exp", math.log: "log", math.log1p: "log1p", math.expm1: "expm1",
    math.tanh: "tanh", math.sinh: "sinh", math.cosh: "cosh", math.sin: "sin", math.cos: "cos",
    math.tan: "tan", math.atan: "arctan", math.sqrt: "sqrt", math.fabs: "abs",
    math.floor: "floor", math.ceil: "ceil",
}

BUILTIN_FUNCS = {builtins.len: "len", builtins.abs: "abs", builtins.float: "float",
                 builtins.int: "int", builtins.max: "maximum", builtins.min: "minimum"}

# x.method(...) -> primitive, with x as the first argument
METHODS = {"sum": "sum", "mean": "mean", "max": "max", "min": "min", "reshape": "reshape",
           "transpose": "transpose", "dot": "dot", "copy": "array_copy", "clip": "clip",
           "argmax": "argmax", "argmin": "argmin", "ravel": "ravel", "flatten": "flatten"}

ATTRIBUTES = {"T": "transpose", "shape": "shape", "ndim": "ndim", "size": "size"}


def primitive_of(obj) -> str | None:
    """The rule-table name of a callable object, or None."""
    from ..rules.custom import registered_name
    user = registered_name(obj)
    if user is not None:
        return user
    for table in (NUMPY_FUNCS, MATH_FUNCS, BUILTIN_FUNCS):
        try:
            if obj in table:
                return table[obj]
        except TypeError:  # unhashable
            return None
    return None


def numpy_spelling(f, default: str) -> str:
    """How user code names a NumPy function: ``np.exp``, ``np.linalg.norm``."""
    mod = getattr(f, "__module__", "") or ""
    sub = mod.split(".")[1] + "." if mod.startswith("numpy.") and mod.split(".")[1] in (
        "linalg", "fft", "random") else ""
    return f"np.{sub}{getattr(f, '__name__', default)}"


def supported_functions() -> list[str]:
    out = sorted({numpy_spelling(f, n) for f, n in NUMPY_FUNCS.items()})
    out += sorted({f"math.{f.__name__}" for f in MATH_FUNCS})
    return out
