"""Functions with user-registered R-rules (module-level: rop reads sources with inspect)."""

import numpy as np

import rop


def log1p_sq(x):
    return np.log(1.0 + x * x)


def log1p_sq_tangent(x, R_x):
    return 2.0 * x / (1.0 + x * x) * R_x


def scaled_sum(a, b, k):
    return k * (a + 2.0 * b)


rop.register_rule(log1p_sq, "log1p_sq_tangent(x, R_x)")
rop.register_rule(scaled_sum, {"a": "k * R_a", "b": "2.0 * k * R_b"})


@rop.rop(wrt=("x", "w"))
def uses_registered(x, w):
    h = log1p_sq(x * w)
    return np.sum(scaled_sum(h, x, 3.0))


def wrong(x):
    return np.sin(x) * x


def wrong_tangent(x, R_x):  # misses the product rule's second term
    return np.cos(x) * x * R_x
