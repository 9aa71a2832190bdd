"""Running a NumPy program under JAX (the independent oracle) and comparing value trees.

A module's functions are re-executed with ``np`` bound to ``jax.numpy``, ``math`` to the
elementwise functions of ``jax.numpy`` and ``float`` to a float64 cast, so that ``jax.jvp``
differentiates the very source rop compiled (Python control flow on values works under jvp
without jit).
"""

import math
import types

import jax
import jax.numpy as jnp
import numpy as np


class JaxMath:
    """``math`` under JAX."""
    exp, log, log1p, expm1, sqrt = jnp.exp, jnp.log, jnp.log1p, jnp.expm1, jnp.sqrt
    tanh, sinh, cosh, sin, cos, tan = jnp.tanh, jnp.sinh, jnp.cosh, jnp.sin, jnp.cos, jnp.tan
    atan, fabs, floor, ceil = jnp.arctan, jnp.abs, jnp.floor, jnp.ceil
    pi, e, inf = math.pi, math.e, math.inf


def jax_float(x):
    return jnp.asarray(x, dtype=jnp.float64)


def jax_namespace(mod) -> dict:
    """``mod``'s globals with np -> jax.numpy, math -> JaxMath, float -> a jnp cast, and every
    function of ``mod`` (helpers included) re-bound to these globals."""
    g = dict(vars(mod))
    g.update(np=jnp, math=JaxMath, float=jax_float)
    for n, f in vars(mod).items():
        if isinstance(f, types.FunctionType) and f.__module__ == mod.__name__:
            g[n] = types.FunctionType(f.__code__, g, n, f.__defaults__)
    return g


def leaves(x):
    if isinstance(x, (tuple, list)):
        return [leaf for e in x for leaf in leaves(e)]
    return [x]


def as_float(x):
    x = np.asarray(x)
    if x.dtype == jax.dtypes.float0:
        return np.zeros(x.shape)
    return x.astype(float)
