"""Fixture for tests/test_cli.py: a function whose returned value is not what it claims.

``grad`` claims to return the gradient of E(W) = 1/2 ||W x - t||^2, but it returns that
gradient *quantized* to a grid of 1e-6 (as a fixed-point accelerator would).  rop
differentiates exactly what is written: ``np.floor`` is piecewise constant, so R{grad} = 0.
Central differences with step 1e-5 move W x by ~1e-5, i.e. across ~10 grid cells, and see the
slope of the staircase, ~ x x^T v.  The two disagree by ~100% whatever the seed, so
``rop-compile --check`` must fail (deterministically) on this function.
"""

import numpy as np


def grad(W, x, t):
    g = np.outer(W @ x - t, x)
    return np.floor(g * 1e6) / 1e6


def honest_grad(W, x, t):
    return np.outer(W @ x - t, x)
