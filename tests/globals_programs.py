"""Programs reading module-level values, for tests/test_globals.py.

rop compiles a module-level number the function (or a helper) reads in as a constant; a call
after it changed must use the new value (rop lowers and compiles again).  The programs live in
a real file because rop reads source with ``inspect``.
"""
# flake8: noqa

import numpy as np

import globals_helpers as gh
from globals_helpers import penalty, soft

LAM = 0.1
N_STEPS = 2
USE_BIAS = True


def ridge_grad(W, X, y):
    r = X @ W - y
    return X.T @ r + LAM * W * W


def with_helpers(W):
    return soft(W) + penalty(W) * W + gh.SCALE * W * W


def steps(W):
    h = W
    for i in range(N_STEPS):
        h = np.tanh(h) * (1.0 + LAM)
    if USE_BIAS:
        h = h * h + 1.0
    return h
