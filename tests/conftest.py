"""Shared fixtures: one cache directory per test session, so Numba compiles each network once."""

import os
import tempfile

import numpy as np
import pytest

_CACHE = os.environ.get("ROP_CACHE_DIR") or tempfile.mkdtemp(prefix="rop-test-cache-")
os.environ.setdefault("ROP_CACHE_DIR", _CACHE)
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(_CACHE, "numba"))

import jax  # noqa: E402  (the oracle: a hard dependency of the tests, never skipped)

jax.config.update("jax_enable_x64", True)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def rel_err(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def flat_err(xs, ys):
    return max(rel_err(x, y) for x, y in zip(xs, ys))


def layer_args(layers=(3, 4, 5, 2), batch=6, seed=0):
    """Per-layer parameters, an input batch and a direction for the list-of-layers programs:
    (Ws, bs, X, V, c) with V, c shaped like Ws, bs."""
    rng = np.random.default_rng(seed)
    Ws = [rng.normal(size=(m, n)) / np.sqrt(n) for n, m in zip(layers[:-1], layers[1:])]
    bs = [0.3 * rng.normal(size=m) for m in layers[1:]]
    X = rng.normal(size=(layers[0], batch))
    V = [rng.normal(size=W.shape) for W in Ws]
    c = [rng.normal(size=b.shape) for b in bs]
    return Ws, bs, X, V, c
