"""Fixture for tests/test_cli.py: a module whose import fails."""

import numpy as np

SCALE = undefined_name * 2


def grad(W, x):
    return W @ x
