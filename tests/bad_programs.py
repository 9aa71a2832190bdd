"""Programs outside rop's accepted subset, for tests/test_bad_programs.py.

They are plain module-level functions (rop reads the source through ``inspect``, so they must
live in a real file) and are deliberately *not* decorated here: the test applies
``rop(wrt=...)`` to each one and checks the error.  Nothing in this module is ever called.

The comment after a line marks the place the diagnostic must point at (the test holds the
exact line offset and column).
"""
# flake8: noqa

import numpy as np

G_COUNTER = 0
A_GLOBAL = np.ones((3, 3))


# ----------------------------------------------------------------------------- grammar refusals

def gen_yield(W, x):
    for i in range(3):
        yield W * x                                  # <- yield


def class_inside(W, x):
    class Layer:                                     # <- class
        pass
    return W * x


def try_except(W, x):
    try:                                             # <- try
        y = W * x
    except ValueError:
        y = x
    return y


def uses_lambda(W, x):
    f = lambda t: t * 2                              # <- lambda
    return f(W) * x


def global_write(W, x):
    global G_COUNTER                                 # <- global
    G_COUNTER = G_COUNTER + 1
    return W * x


def make_nonlocal():
    count = 0

    def nonlocal_write(W, x):
        nonlocal count                               # <- nonlocal
        count = count + 1
        return W * x
    return nonlocal_write


nonlocal_write = make_nonlocal()


def comprehension(W, x):
    ys = np.sum(W[i] * x for i in range(3))         # <- (W[i]
    return ys


def with_statement(W, x):
    with np.errstate(all="ignore"):                  # <- with
        y = np.log(W) * x
    return y


def uses_del(W, x):
    y = W * x
    del y                                            # <- del
    return x


def uses_fstring(W, x):
    label = f"layer {x}"                             # <- f
    return W, label



def star_args(W, *args):                             # <- *
    return W


def star_kwargs(W, **kwargs):                        # <- **
    return W


def starred_call(W, x):
    shape = (3, 3)
    z = np.zeros(*shape)                             # <- *
    return W * x + z


def for_else(W, n):
    y = W
    for i in range(n):
        y = y * 2.0
    else:                                            # <- else
        y = y + 1.0
    return y


def while_else(W, n):
    y = W
    i = 0
    while i < n:
        y = y * 2.0
        i += 1
    else:                                            # <- else
        y = y + 1.0
    return y


def param_written_through_list(W, x):
    hs = [W]
    h = hs[0]
    h[0] = 0.0                                       # <- h
    return h * x


def list_view_then_write(W, x):
    A = W * 1.0
    hs = [A[:, 0]]
    A[0, 0] = 2.0                                    # <- A
    return hs[0] * x


def attribute_assign(W, x):
    y = W * x
    y.flags = 0                                      # <- y
    return y


# ----------------------------------------------------------------------------- semantic refusals

def unknown_eigh(W, x):
    A = W @ W.T
    vals = np.linalg.eigh(A)                         # <- np
    return vals


def unknown_fft(W, x):
    y = np.fft.fft(W * x)                            # <- np
    return y


def unknown_method(W, x):
    idx = x.argsort()                                # <- x
    return W[idx]


def setitem_param(W, x):
    W[0] = 0                                         # <- W
    return W * x


def augassign_param(W, x):
    W += 1                                           # <- W
    return W * x


def append_param(Ws, x):
    h = Ws[0] @ x
    Ws.append(h)                                     # <- Ws
    return h


def write_into_view(W, x):
    a = W.T
    a[0] = 1.0                                       # <- a
    return a @ x


def augassign_view(W, x):
    a = W
    a += 1.0                                         # <- a  (NumPy changes W in place here)
    return a * x + W


def nested_setitem_param(Ws, x):
    Ws[0][1] = 2.0                                   # <- Ws
    return Ws[0] @ x


def call_global_array(W, x):
    y = A_GLOBAL(W)                                  # <- A_GLOBAL
    return y * x


def print_statement(W, x):
    y = W @ x
    print("loss", y)                                 # <- print
    return y


def name_before_definition(W, x):
    y = z * W                                        # <- z
    z = x + 1.0
    return y


def for_over_list(Ws, x):
    hs = [x]
    for h in hs:                                     # <- hs
        hs.append(Ws[0] @ h)
    return hs


def global_array_value(W, x):
    y = W @ A_GLOBAL                                 # <- A_GLOBAL
    return y * x


def min_of_sequence(W, x):
    m = min([W[0, 0], W[1, 1], x])                   # <- min
    return m


# ----------------------------------------------------------------------------- helpers

def _recursive_helper(x, n):
    y = _recursive_helper(x * x, n - 1)              # <- _recursive_helper
    return y


def recursion_via_helper(W, x):
    y = _recursive_helper(W @ x, 3)
    return y


def calls_itself(W, x):
    y = calls_itself(W @ x, x)                       # <- calls_itself
    return y


def _early_return_helper(A, x):
    for i in range(3):
        if np.sum(A @ x) > i:
            return A @ x                             # <- return
    y = A.T @ x
    return y


def early_return_in_helper(W, x):
    y = _early_return_helper(W, x)
    return y * 2.0


# ----------------------------------------------------------------------------- call-time errors

def two_params(W, b, x):
    return W @ x + b


def list_params(Ws, b, x):
    h = x
    for i in range(len(Ws)):
        h = np.tanh(Ws[i] @ h)
    return h + b
