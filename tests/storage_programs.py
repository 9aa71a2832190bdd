"""Programs for tests/test_storage.py: each shows one effect of NumPy's memory model on a
pass (rop reads source through ``inspect``, so they live in a real file)."""
# flake8: noqa

import numpy as np


def write_seen_through_alias(W):
    a = np.zeros(3)
    b = a                      # b is a: the write below must be kept, and R{b} be R{a}
    a[0] = 2.0 * W[0]
    return b * W


def augassign_seen_through_list(W):
    a = W * 2.0
    xs = [a]
    a += W                     # xs[0] is a: in place
    return xs[0] * W


def augassign_alone(W):
    a = W * 2.0
    a += W                     # nothing else holds a: a rebinding reads best
    return a * W


def rvalue_written(W, C):
    z = W + C                  # R{z} = R{W} would be the caller's direction...
    z[0] = 0.0                 # ...and this would write into it
    return z, 3.0 * W


def rvalue_not_written(W, C):
    z = W + C
    return z * W


def rebound_then_written(W, X):
    b = X
    b = b * 2.0                # a new array: writing into it leaves X alone
    b[0] = W[0]
    return b * W


def param_element_written(W, X):
    hs = [X]
    h = hs[0]
    h[0] = W[0]                # X itself
    return h * W


def swap(W):
    a = W * 2.0
    b = W * W
    a, b = b, a
    return a - 3.0 * b


def last_slot(W, X):
    hs = [X, W * 2.0]
    return hs[-1] * 3.0
