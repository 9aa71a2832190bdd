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


# ----------------------------------------------------------------------------- trees of values
# (arguments, directions and outputs are arrays and numbers nested in tuples and lists)

def direction_like(rng, x):
    """A random direction shaped like ``x`` (tuples and lists keep their type)."""
    if isinstance(x, (tuple, list)):
        return type(x)(direction_like(rng, e) for e in x)
    if isinstance(x, np.ndarray):
        return rng.normal(size=x.shape)
    return float(rng.normal())


def axpy(x, eps, d):
    """x + eps * d over a tree (tuples and lists keep their type)."""
    if isinstance(x, (tuple, list)):
        return type(x)(axpy(e, eps, di) for e, di in zip(x, d))
    return x + eps * d


def same_structure(template, d):
    """``d`` as JAX arrays nested like ``template``."""
    if isinstance(template, (tuple, list)):
        return type(template)(same_structure(t, di) for t, di in zip(template, d))
    return jnp.asarray(d) if isinstance(template, np.ndarray) else d


def close(got, ref, rtol):
    """max |got - ref| <= rtol * scale per leaf; scale: the leaf's magnitude, at least 1e-6 of
    the largest leaf (for leaves that are ~0 by cancellation).  Returns (ok, worst)."""
    g, r = [as_float(x) for x in leaves(got)], [as_float(x) for x in leaves(ref)]
    assert len(g) == len(r), (len(g), len(r))
    big = max([float(np.max(np.abs(x), initial=0.0)) for x in g + r] + [0.0])
    worst = 0.0
    for k, (a, b) in enumerate(zip(g, r)):
        assert a.shape == b.shape, f"output {k}: shape {a.shape} != {b.shape}"
        err = float(np.max(np.abs(a - b), initial=0.0))
        scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)),
                    1e-6 * big)
        if err > 0:
            worst = max(worst, err / scale)
    return worst <= rtol, worst


def inner(a, b) -> float:
    """<a, b> over the leaves of two trees of the same structure."""
    return sum(float(np.sum(as_float(x) * as_float(y))) for x, y in zip(leaves(a), leaves(b)))


def identical(a, b):
    """Bit-for-bit the same tree (types, shapes, dtypes, values)."""
    if isinstance(a, (tuple, list)) or isinstance(b, (tuple, list)):
        return (type(a) is type(b) and len(a) == len(b)
                and all(identical(x, y) for x, y in zip(a, b)))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
                and a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b))
    return type(a) is type(b) and a == b


def wrt_index(fn, wrt) -> list:
    """Positions of the ``wrt`` parameters among ``fn``'s parameters."""
    import inspect
    names = list(inspect.signature(fn).parameters)
    return [names.index(w) for w in wrt]

