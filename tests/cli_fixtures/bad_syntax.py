"""Fixture for tests/test_cli.py: a construct outside rop's grammar (a lambda)."""

import numpy as np


def grad(W, x):
    f = lambda y: y * 2.0
    return f(W @ x)
