"""What a name in user code refers to: a primitive, a constant, or a user helper.

Names are resolved by *object identity* in the function's globals, so ``np.exp``,
``numpy.exp`` and ``from numpy import exp`` all reach the same rule-table entry,
and a user's own ``exp`` does not.
"""

from __future__ import annotations

import ast
import builtins
import math

import numpy as np

def _spellings():
    """The name tables, read off the rule table's ``spelled`` entries: ``"np.exp"`` and
    ``"math.exp"`` resolve to the objects user code reaches them by, ``"abs"`` to a
    builtin, ``".sum"`` is a method.  A spelling this NumPy lacks (``np.amax`` once removed)
    is skipped."""
    from ..rules.table import RULES
    mods = {"np": np, "math": math}
    numpy_f, math_f, builtin_f, methods = {}, {}, {}, {}
    for name, prim in RULES.items():
        for sp in prim.spelled:
            if sp.startswith("."):
                methods[sp[1:]] = name
                continue
            head, _, rest = sp.partition(".")
            obj = mods.get(head, builtins) if rest else builtins
            for part in (rest or head).split("."):
                obj = getattr(obj, part, None)
            if obj is None:
                continue
            (numpy_f if head == "np" else math_f if head == "math" else builtin_f)[obj] = name
    return numpy_f, math_f, builtin_f, methods


# callable -> primitive, by module; x.method(...) -> primitive, with x as the first argument
NUMPY_FUNCS, MATH_FUNCS, BUILTIN_FUNCS, METHODS = _spellings()

ATTRIBUTES = {"T": "transpose", "shape": "shape", "ndim": "ndim", "size": "size",
              "dtype": "dtype"}


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


MISSING = object()  # "no such object" (None is a value user code may name)


def builtin(name):
    """The builtin called ``name``, or MISSING."""
    return getattr(builtins, name, MISSING)


def is_call_to(node, name, globs):
    """``node`` calls the builtin ``name`` (``range``, ``zip``), not a global of that name."""
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
        node.func.id == name and node.func.id not in globs
