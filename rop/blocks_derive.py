"""The derivatives :mod:`rop.blocks` needs, from rop itself: f'(h), f''(h) ⊙ g and the output
Hessian, never written per activation or per loss by hand.

* **f'(h)** is R{f(h)} along the direction ones: ``@rop(wrt=("h",))`` of the activation.
* **f''(h) ⊙ g** is R{·} of the code rop generated for R{f}: that code,
  ``R_a = (1.0 - a ** 2) * R_h`` for tanh, is plain NumPy, so rop reads it back (its runtime's
  vector ufuncs ``rt.tanh`` spelled ``np.tanh`` again, the direction check dropped) and applies R
  with respect to h along ones, with R_h = g held as data: R{f'(h) g} = f''(h) g.  This is
  Pearlmutter's R applied twice, by the same compiler.
* **The output Hessian** of each sample, column k, is R{∂ℓ/∂z} along the unit direction e_k in
  every column at once (the loss is a sum over columns, so column n of the result is 𝓗_L^(n) e_k):
  K products for K outputs.

The generated files live in rop's cache (``$ROP_CACHE_DIR``), keyed by their content; everything
runs with ``mode="python"`` (NumPy, no Numba compilation: the arrays are per layer and the work is
elementwise or K products).
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import os
from typing import Callable

import numpy as np

from . import runtime as rt
from .api import rop
from .backend.loader import write_module


# ------------------------------------------------------------------ the named activations
def tanh(h):
    return np.tanh(h)


def sigmoid(h):
    return 1.0 / (1.0 + np.exp(-h))


def softplus(h):
    return np.logaddexp(0.0, h)


def relu(h):
    return np.maximum(h, 0.0)


def identity(h):
    return h


# ------------------------------------------------------------------ the named losses: ∂ℓ/∂z per column
def squared_gradient(Z, T):
    """ℓ = ½‖z − t‖²."""
    return Z - T


def logistic_gradient(Z, T):
    """ℓ = Σ_k softplus(z_k) − t_k z_k: binary cross-entropy of σ(z), summed over units."""
    return 1.0 / (1.0 + np.exp(-Z)) - T


def softmax_gradient(Z, T):
    """ℓ = −Σ_k t_k log softmax(z)_k, the columns of T summing to one."""
    E = np.exp(Z - np.max(Z, axis=0))
    return E / np.sum(E, axis=0) - T


NAMED_ACTIVATIONS = {"tanh": tanh, "sigmoid": sigmoid, "softplus": softplus, "relu": relu,
                     "identity": identity}
NAMED_LOSSES = {"squared": squared_gradient, "logistic": logistic_gradient,
                "softmax": softmax_gradient}
ELEMENTWISE_LOSSES = ("squared", "logistic")  # a sum over units: diagonal output Hessians


def _first_parameter(fn: Callable, what: str) -> str:
    try:
        params = list(inspect.signature(fn).parameters)
        inspect.getsource(fn)
    except (TypeError, ValueError, OSError):
        raise ValueError(f"{what}: {fn!r} is neither a name nor a function defined in a file "
                         "(rop reads its source); write it as a def") from None
    if not params:
        raise ValueError(f"{what}: {fn.__name__} takes no argument")
    return params[0]


class Activation:
    """An elementwise activation and its derivatives by rop: ``value_and_derivative(h)`` is
    (f(h), f'(h)), ``second_derivative_times(h, g)`` is f''(h) ⊙ g."""

    def __init__(self, fn: Callable):
        self.fn = fn
        self.name = getattr(fn, "__name__", repr(fn))
        self._param = _first_parameter(fn, "activation")
        self._first = rop(wrt=(self._param,), mode="python")(fn)
        self._second = None

    def __repr__(self):
        return f"Activation({self.name})"

    def value_and_derivative(self, h: np.ndarray):
        a, d = self._first.hvp(h, v=np.ones_like(h))
        return np.asarray(a, dtype=np.float64), np.asarray(d, dtype=np.float64)

    def second_derivative_times(self, h: np.ndarray, g: np.ndarray) -> np.ndarray:
        if self._second is None:
            self._second = self._derive_second(h)
        _, (_, r) = self._second.hvp(h, g, v=np.ones_like(h))
        return np.asarray(r, dtype=np.float64)

    def _derive_second(self, h):
        """rop over rop's own R-code of f: the module generated for ``f.hvp``, with the runtime's
        vector ufuncs spelled as NumPy's and the direction check dropped, compiled with respect
        to h."""
        record = self._first.hvp.compile(h)
        with open(record.path, encoding="utf-8") as fh:
            tree = _AsNumPy().visit(ast.parse(fh.read()))
        ast.fix_missing_locations(tree)
        source = ast.unparse(tree) + "\n"
        leftover = [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                    and isinstance(n.value, ast.Name) and n.value.id == "rt"]
        if leftover:
            raise ValueError(f"activation {self.name}: its generated R-code calls rop's runtime "
                             f"({', '.join('rt.' + a for a in sorted(set(leftover)))}), which "
                             "rop cannot differentiate again; write it with NumPy's elementwise "
                             "functions")
        path = write_module(source, f"blocks_{self.name}")
        stem = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(f"rop_{stem}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return rop(wrt=(self._param,), mode="python")(getattr(mod, f"{self.fn.__name__}_hvp"))


class _AsNumPy(ast.NodeTransformer):
    """``rt.tanh(x)`` -> ``np.tanh(x)`` for the runtime's vector ufuncs (NumPy's own, see
    rop/runtime); ``rt.check_direction(...)`` statements removed."""

    def visit_Expr(self, node):
        call = node.value
        if isinstance(call, ast.Call) and ast.unparse(call.func) == "rt.check_direction":
            return None
        return self.generic_visit(node)

    def visit_Attribute(self, node):
        if isinstance(node.value, ast.Name) and node.value.id == "rt" \
                and node.attr in rt.VECTOR_UFUNCS:
            return ast.copy_location(ast.Attribute(ast.Name("np", ast.Load()), node.attr,
                                                   ast.Load()), node)
        return self.generic_visit(node)


class Loss:
    """A loss given by its per-column gradient ``gradient(Z, T)`` = ∂ℓ/∂z; ``hessians(Z, T)`` is
    the stack of per-sample output Hessians (B, K, K), by R{gradient} along unit directions.

    ``elementwise``: ℓ is a sum over output units of a function of one unit (squared error,
    logistic), so each Hessian is diagonal and ``diagonals(Z, T)`` gives the diagonals (B, K)
    from one R-product along ones instead of K (784 for an MNIST autoencoder, whose (B, K, K)
    stack would not fit in memory at B = 1000)."""

    def __init__(self, gradient: Callable, elementwise: bool = False):
        self.fn = gradient
        self.elementwise = elementwise
        self.name = getattr(gradient, "__name__", repr(gradient))
        self._f = rop(wrt=(_first_parameter(gradient, "loss"),), mode="python")(gradient)

    def __repr__(self):
        return f"Loss({self.name})"

    def gradient(self, Z: np.ndarray, T: np.ndarray) -> np.ndarray:
        return np.asarray(self.fn(Z, T), dtype=np.float64)

    def hessians(self, Z: np.ndarray, T: np.ndarray) -> np.ndarray:
        K, B = Z.shape
        lin = self._f.hvp.linearize(Z, T)
        out = np.empty((B, K, K))
        for k in range(K):
            V = np.zeros((K, B))
            V[k] = 1.0
            out[:, :, k] = np.asarray(lin(V)).T
        return out

    def diagonals(self, Z: np.ndarray, T: np.ndarray) -> np.ndarray:
        """The diagonals of the per-sample Hessians, (B, K), for an ``elementwise`` loss."""
        if not self.elementwise:
            raise ValueError(f"{self.name}: the loss is not elementwise; use hessians(Z, T)")
        lin = self._f.hvp.linearize(Z, T)
        return np.asarray(lin(np.ones_like(np.asarray(Z, dtype=np.float64)))).T.copy()


def activation(a: str | Callable) -> Activation:
    """A name in ``NAMED_ACTIVATIONS`` or a function of one array (in rop's grammar)."""
    if isinstance(a, str):
        if a not in NAMED_ACTIVATIONS:
            raise ValueError(f"activation: unknown name {a!r}; the named ones are "
                             f"{', '.join(NAMED_ACTIVATIONS)} (or pass a function)")
        a = NAMED_ACTIVATIONS[a]
    if not callable(a):
        raise ValueError(f"activation: expected a name or a function, got {a!r}")
    return Activation(a)


def loss(l: str | Callable) -> Loss:
    """A name in ``NAMED_LOSSES`` or a function ``gradient(Z, T)`` returning ∂ℓ/∂Z per column."""
    if isinstance(l, str):
        if l not in NAMED_LOSSES:
            raise ValueError(f"loss: unknown name {l!r}; the named ones are "
                             f"{', '.join(NAMED_LOSSES)} (or pass gradient(Z, T))")
        return Loss(NAMED_LOSSES[l], elementwise=l in ELEMENTWISE_LOSSES)
    if not callable(l):
        raise ValueError(f"loss: expected a name or a function gradient(Z, T), got {l!r}")
    return Loss(l)
