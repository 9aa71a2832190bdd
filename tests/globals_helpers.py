"""Helpers for tests/globals_programs.py, each reading module-level numbers of *this* module
(rop lowers a helper with its own module's globals)."""
# flake8: noqa

import numpy as np

BETA = 2.0
GAMMA = 0.5
SCALE = 3.0


def soft(x):
    """Elementwise: rop derives its R-rule with sympy, BETA compiled into the derivative."""
    return np.log1p(np.exp(BETA * x)) / BETA


def penalty(W):
    """Not elementwise (a reduction): inlined, GAMMA compiled in."""
    return GAMMA * np.sum(W * W)
