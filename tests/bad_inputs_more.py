"""More bad inputs for tests/test_bad_inputs_more.py (issue 7): programs outside the subset
that tests/bad_programs.py does not cover, and well-formed programs used for bad *calls*.

Plain module-level functions, undecorated (rop reads the source with ``inspect``); the test
applies ``rop`` to each.  The comment ``# <-`` marks the place a diagnostic points at.
"""
# flake8: noqa

import math

import numpy as np

SCALE = 2.0                 # a numeric global read by `scaled` (and changed by the test)
LAYERS = [1, 2]             # a list global (not a number: refused as a value)
NAME = "tanh"               # a string global


# ----------------------------------------------------------------------------- recursion

def _ping(x, n):
    return _pong(x * 0.5, n)                         # <- _pong  (mutual recursion)


def _pong(x, n):
    return _ping(x + 1.0, n)


def mutual_recursion(W, x):
    y = _ping(W @ x, 3)
    return y


def recursion_in_branch(W, x):
    if np.sum(x) > 0.0:
        return recursion_in_branch(W, -x)            # <- recursion_in_branch
    return W @ x


# ----------------------------------------------------------------------------- generators

def generator_expression(W, x):
    s = np.max(w * x for w in W)                     # <- np.max of a generator
    return s


def yield_from(W, x):
    yield from (W, x)                                # <- yield


def _gen_helper(x):
    yield x * 2.0                                    # <- yield


def calls_generator_helper(W, x):
    y = _gen_helper(W @ x)
    return y


# ----------------------------------------------------------------------------- closures, globals

def make_closure(a):
    def closure(W, x):
        return a * (W @ x)                           # <- a
    return closure


closure_over_local = make_closure(3.0)


def nested_def(W, x):
    def inner(t):                                    # <- def
        return t * 2.0
    return inner(W @ x)


square_lambda = lambda t: t * t                      # a lambda at module level


def calls_lambda(W, x):
    y = square_lambda(W @ x)
    return y


def scaled(W, x):
    return SCALE * (W @ x)


def list_global(W, x):
    y = W @ x * LAYERS                               # <- LAYERS
    return y


def string_global(W, x):
    y = NAME * 2                                     # <- NAME
    return W @ x


# ----------------------------------------------------------------------------- unknown functions

def unknown_sort(W, x):
    y = np.sort(W @ x)                               # <- np.sort
    return y


def unknown_median(W, x):
    y = np.median(W @ x)                             # <- np.median
    return y


def unknown_math_gamma(W, x):
    g = math.gamma(W[0, 0])                          # <- math.gamma
    return g * x


def unknown_builtin_sorted(W, x):
    y = sorted(x)                                    # <- sorted
    return W @ x


def unknown_linalg_inv(W, x):
    y = np.linalg.inv(W) @ x                         # <- np.linalg.inv
    return y


def undefined_name(W, x):
    y = W @ x + not_defined_anywhere                 # <- not_defined_anywhere
    return y


def imaginary_literal(W, x):
    y = W @ x * 1j                                   # <- 1j
    return y


def walrus(W, x):
    if (n := np.sum(x)) > 0:                         # <- (n
        return W @ x * n
    return W @ x


def match_statement(W, x):
    match x.ndim:                                    # <- match
        case 1:
            return W @ x
    return W


def set_literal(W, x):
    s = {1.0, 2.0}                                   # <- {
    return W @ x


def shift_operator(W, x):
    n = 1 << 2                                       # <- <<
    return W @ x * n


# ----------------------------------------------------------------------------- for bad calls

def matvec(W, b, x):
    return np.tanh(W @ x + b)


def two_weights(W1, W2, x):
    """A product of two parameters: aliasing W1 and W2 (the same array) is allowed."""
    h = np.tanh(W1 @ x)
    y = W2 @ h
    return 0.5 * np.sum(y * y)


def two_weights_grad(W1, W2, x):
    """The gradient of two_weights: R{gradient} = Hv."""
    a = W1 @ x
    h = np.tanh(a)
    y = W2 @ h
    gW2 = np.outer(y, h)
    dh = W2.T @ y
    da = dh * (1.0 - h * h)
    gW1 = np.outer(da, x)
    return gW1, gW2


def scalar_param(a, x):
    return a * a * x


def data_in_loss(W, X):
    return np.sum(np.tanh(W @ X))


def diverging_relaxation(W, x, tol=1e-12, max_it=50):
    """A relaxation that is not a contraction (y grows by 1.5x per step): it never converges."""
    y = np.zeros(x.shape[0])
    change = 1.0
    it = 0
    while change > tol and it < max_it:
        y_new = 1.5 * y + np.tanh(W @ y) + x
        change = np.max(np.abs(y_new - y))
        y = y_new
        it += 1
    return y


def unstable_fixed_point(a, x, tol=1e-12, max_it=50):
    """y -> a y^2 from y = 1: at a = 1 the primal stops at once (1 is a fixed point), but the
    fixed point repels (d(a y^2)/dy = 2): R{y} = 2 R{y} + R{a} never converges."""
    y = np.ones(x.shape[0])
    change = 1.0
    it = 0
    while change > tol and it < max_it:
        y_new = a * y * y
        change = np.max(np.abs(y_new - y))
        y = y_new
        it += 1
    return y


def oscillating_relaxation(a, x, tol=1e-10, max_it=40):
    """y -> -y + x oscillates between two values forever: not converging, bounded."""
    y = x
    change = 1.0
    it = 0
    while change > tol and it < max_it:
        y_new = a - y
        change = np.max(np.abs(y_new - y))
        y = y_new
        it += 1
    return y


# ----------------------------------------------------------------------------- issue 18: messages

def is_compared_to_an_array(W, x):
    if x is W:                                       # <- x is W
        return W
    return W * x


def library_python_function(W, x):
    return np.polyval(W, x)                          # <- np.polyval


def helper_with_default(x, slope=0.5):
    return slope * x


def helper_without_its_argument(W, x):
    return helper_with_default(slope=2.0) * W        # <- helper_with_default(


def shape_mismatch(W, x):
    h = np.tanh(W @ x)
    return W.T @ h


def allocates_too_much(W, n):
    big = np.zeros(n)
    return W * big[0]
