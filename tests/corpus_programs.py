"""A corpus of small programs written the way people write numeric Python, for tests/test_corpus.py.

rop reads source through ``inspect``, so the programs live, undecorated, in this real file; the
test applies ``rop(wrt=..., mode=...)`` to each one and checks R{outputs} against central
differences, against JAX's ``jvp`` (re-executing the same code with ``np`` bound to ``jax.numpy``)
and mode="numba" against mode="python".  The inputs for each program (chosen away from branch
boundaries and kinks) and its differentiable parameters are listed in the test.

Sections, by construct: scalars; NumPy aliases and methods; indexing and shapes; if/elif/else;
conditional expressions; while loops; for loops; tuple and list parameters; list literals;
helpers; realistic small models; combinations.  Names start with the section's prefix.
"""
# flake8: noqa

import math

import numpy as np


# ============================================================================ helpers
# elementwise helpers (rop turns these into one primitive each) and non-elementwise helpers
# (inlined), some of which call other helpers.

def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softplus(x):
    return np.log1p(np.exp(x))


def log_sigmoid(x):
    return -softplus(-x)


def relu(x):
    return np.maximum(x, 0.0)


def dense(W, b, x):
    return W @ x + b


def tanh_layer(W, b, x):
    return np.tanh(dense(W, b, x))


def sq_norm(x):
    return np.sum(x * x)


def normalize(x):
    return x / np.sqrt(sq_norm(x))


def logsumexp(z):
    m = np.max(z)
    return m + np.log(np.sum(np.exp(z - m)))


def softmax(z):
    e = np.exp(z - np.max(z))
    return e / np.sum(e)


def huber_scalar(r, delta):
    if abs(r) <= delta:
        loss = 0.5 * r * r
    else:
        loss = delta * (abs(r) - 0.5 * delta)
    return loss


def clamp_scalar(a, lo, hi):
    if a < lo:
        return lo
    elif a > hi:
        return hi
    return a


def smooth_abs(a):
    return math.sqrt(a * a + 1e-2)


def horner(c, t):
    acc = 0.0
    for k in reversed(range(len(c))):
        acc = acc * t + c[k]
    return acc


# ============================================================================ scalars

def s_poly(a, b):
    return a * a * b + 3.0 * a - b / (1.0 + a * a)


def s_math_funcs(a):
    return math.exp(a) * math.tanh(a) + math.sqrt(1.0 + a * a) + math.log(2.0 + a * a)


def s_math_trig(a, b):
    return math.sin(a) * math.cos(b) + math.atan(a * b) - math.log1p(b * b) + math.expm1(0.5 * a)


def s_pow_both(a, b):
    return a ** b, b ** 2.0, 2.0 ** a


def s_several_results(a, b):
    return a + b, a * b, a / b, -a


def s_float_of_sum(a, x):
    return float(np.sum(x * x)) * a + a * a


def s_abs_builtin(a, b):
    return abs(a) * b + abs(a - b)


def s_builtin_max_min(a, b):
    return max(a, b) - min(a, 0.5 * b) + max(a * a, 1.0)


def s_augassign(a, b):
    s = 0.0
    s += a
    s *= b
    s -= a * a
    s /= 2.0 + b * b
    s **= 2
    return s


def s_scalar_times_array(a, x):
    y = a * x + a ** 2
    return y, np.sum(y) * a


def s_zero_d_mix(x, a):
    m = x.mean()
    return (x - m) * a + m * m, m / a


def s_int_param(a, n):
    return a ** n + n * a - a / n


def s_math_on_elements(x):
    return math.exp(x[0]) * math.tanh(x[1]) + math.log(x[2] * x[2] + 1.0)


# ============================================================================ NumPy aliases and methods

def np_aliases_arith(x, y):
    return np.add(x, y), np.subtract(x, 2.0 * y), np.multiply(x, y), np.divide(x, 1.0 + y * y)


def np_aliases_unary(x):
    return np.square(x) + np.negative(x), np.power(x * x + 1.0, 1.5), np.absolute(x) * x


def np_power_both(x, y):
    return np.power(x, y) + x ** y


def np_dot_vectors(x, y):
    return np.dot(x, y) * np.dot(x, x)


def np_matmul_alias(A, B, x):
    return np.matmul(A, B), np.matmul(A, x)


def m_methods_sum_mean(X):
    return X.sum(), X.mean(axis=0), X.sum(axis=1) * X.mean()


def m_methods_max(X):
    return X.max() * X, X.max(axis=0), X.min(axis=1)


def m_methods_T_reshape(X):
    Y = X.T @ X
    return Y.reshape(-1), X.reshape(X.shape[1], X.shape[0]) * 2.0


def m_reshape_tuple(x):
    n = x.shape[0] // 2
    M = x.reshape((2, n))
    return M @ M.T


def m_method_dot(A, x):
    return A.dot(x), x.dot(x), A.T.dot(A)


def m_method_copy(x):
    y = x.copy()
    y *= 2.0
    return y + x * y


def m_transpose_operand(A, x):
    At = A.T
    return At @ (A @ x), A.T @ x


# ============================================================================ indexing and shapes

def idx_newaxis(x, y):
    return x[:, None] * y[None, :], x[:, np.newaxis] + y[np.newaxis, :]


def idx_negative(x):
    return x[-1] * x[0] + x[-2], x[1:-1] * 2.0


def idx_steps(x):
    return x[::2] * x[1::2], x[::-1] * x


def idx_matrix(X):
    return X[0, :] * X[-1, :], X[:, 1], X[1:, ::-1]


def idx_int_array(x, idx):
    return x[idx] * x[idx], np.sum(x[idx])


def idx_gather_rows(E, ids):
    return E[ids].sum(axis=0)


def idx_take_labels(logp, labels):
    n = logp.shape[0]
    return -np.mean(logp[np.arange(n), labels])


def shape_len_size(x, X):
    n = len(x)
    m, k = X.shape
    return x * n + X.size * x.sum() / X.ndim, X * (m + k)


def shape_ndim_branch(x):
    if x.ndim == 2:
        y = x.mean(axis=0)
    else:
        y = x * 2.0
    return y


def shape_unpack_loops(X):
    n, m = X.shape
    s = 0.0
    for i in range(n):
        for j in range(m):
            s += X[i, j] * (i + 1) * (j - 0.5)
    return s


# ============================================================================ if / elif / else

def if_scalar_sign(a, x):
    if a > 0:
        y = a * x
    else:
        y = -a * x * x
    return y


def if_elif_piecewise(a):
    if a < -1.0:
        y = -2.0 * a - 1.0
    elif a < 1.0:
        y = a * a
    else:
        y = 2.0 * a - 1.0 + math.log(a)
    return y


def if_nested(a, b):
    if a > 0:
        if b > 0:
            r = a * b
        else:
            r = a - b * b
    else:
        if b > a:
            r = math.exp(a) * b
        else:
            r = b / (1.0 + a * a)
    return r


def if_different_vars(a, x):
    u = x
    w = 1.0
    if a > 0.5:
        u = np.tanh(a * x)
    else:
        w = a * a + 1.0
    return u * w


def if_var_only_in_branch(a, x):
    if a > 0:
        p = a * x
    else:
        q = x * x * a
    if a > 0:
        return p.sum()
    return q.sum()


def if_early_return(a, x):
    if a < 0:
        return x * a
    y = np.exp(-a) * x
    return y * y


def if_early_return_nested(a, b):
    if a > 1.0:
        if b > 0.0:
            return a * b
        return a - b
    return a * a + b


def if_on_array_reduction(x):
    s = np.sum(x)
    if s > 0:
        return x * s
    return x / (1.0 + s * s)


def if_on_element(x):
    if x[0] > x[1]:
        y = x * x[0]
    else:
        y = x * x[1]
    return y


def if_and_or_not(a, b):
    if a > 0 and b > 0:
        r = a * b
    elif a > 0 or b > 0:
        r = a + b
    else:
        r = -a * b
    if not a > b:
        r = r * 2.0
    return r


def if_chained_cmp(a, x):
    if 0 < a < 1:
        return x * a * (1.0 - a)
    elif -1 < a <= 0:
        return x * a * a
    return x


def if_tuple_results(a, x):
    if a > 0:
        return a * x, a * a
    return x - a, -a


def if_elif_chain_array(x, a):
    m = np.max(x)
    if m > 2.0:
        y = x / m
    elif m > 1.0:
        y = x * a
    elif m > 0.0:
        y = np.exp(x) * a
    else:
        y = x * x
    return y


def if_no_else(a, x):
    y = x * a
    if a > 1.0:
        y = y * y
    return y


def if_both_params(a, b):
    if a * b > 1.0:
        return math.sqrt(a * b)
    return a * b


# ============================================================================ conditional expressions

def ifexp_scalar(a, b):
    c = a * b if a > b else a + b
    return c * c


def ifexp_array(a, x):
    y = np.exp(x) if a > 0 else np.tanh(x)
    return y * a


def ifexp_nested(a):
    return a * a if a > 1 else (math.sin(a) if a > -1 else -a)


def ifexp_in_loop(x):
    s = 0.0
    for i in range(len(x)):
        s += x[i] * x[i] if x[i] > 0 else -x[i]
    return s


def ifexp_bool_ops(a, b):
    return a * b if (a > 0 and not b < 0) or a < -2.0 else a - b


# ============================================================================ while loops

def while_halve(a0):
    a = a0
    while abs(a) > 0.1:
        a = a * 0.5
    return a


def while_state_threshold(a0):
    x = a0
    while x > 1.0:
        x = x * 0.5
    return x * x


def while_counter_and(a0, tol):
    a = a0
    it = 0
    while it < 20 and a * a > tol:
        a = 0.7 * a + 0.01 * a * a
        it += 1
    return a, it


def while_break(x):
    s = 0.0
    i = 0
    while i < len(x):
        s = s + x[i] * x[i]
        if s > 2.0:
            break
        i += 1
    return s


def while_continue(x):
    s = 0.0
    i = 0
    while i < len(x):
        i += 1
        if x[i - 1] < 0:
            continue
        s += math.exp(-x[i - 1]) * x[i - 1]
    return s


def while_true_break(a0):
    a = a0
    n = 0
    while True:
        a = math.cos(a)
        n += 1
        if n >= 5:
            break
    return a


def while_array_norm(x):
    y = x
    while np.sum(y * y) > 1.0:
        y = 0.5 * y
    return y


def while_newton_sqrt(c):
    y = c
    while abs(y * y - c) > 1e-10 * c:
        y = 0.5 * (y + c / y)
    return y


def while_fixed_point(a):
    x = 1.0
    diff = 1.0
    while diff > 1e-12:
        x_new = 0.5 * math.cos(x) + a
        diff = abs(x_new - x)
        x = x_new
    return x


def while_euler_ode(k, x0):
    t = 0.0
    x = x0
    h = 0.05
    while t < 1.0 - 1e-9:
        x = x + h * (-k * x + math.sin(t))
        t = t + h
    return x


def while_countdown_copy(W, x):
    """A counter copied from ``len`` and decremented in place: ``j -= 1`` on a number."""
    n = len(x)
    j = n
    s = 0.0
    while j > 0:
        j -= 1
        s = s + np.tanh(W[j] @ x)
    m = x.shape[0]
    k = m
    k += 1
    return s * k


def while_relax_norm(W, b):
    """A relaxation whose convergence test is np.linalg.norm of the change."""
    y = np.zeros(W.shape[0])
    change = 1.0
    it = 0
    while change > 1e-13 and it < 5000:
        y_new = np.tanh(W @ y) + b
        change = np.linalg.norm(y_new - y)
        y = y_new
        it = it + 1
    return np.linalg.norm(y) * y


def list_stores_views(W, X):
    """Views stored in lists: a column, a column of a product, a transpose (Numba stores
    them as copies: a list's elements share one C-contiguous type)."""
    hs = [None] * 3
    hs[0] = X[:, 0]
    hs[1] = (W @ X)[:, 1]
    hs[2] = np.tanh(W @ X[:, 2])
    ts = [X.T]
    ts.append(np.tanh(W @ X).T)
    s = 0.0
    for k in range(3):
        s = s + np.sum(hs[k] ** 2)
    return s + np.sum(ts[1] * ts[0])


def seq_zip_layers(Ws, bs, X, T):
    """Layers iterated as most NumPy code does: zip, a generator expression inside sum, a
    list comprehension of transposes (the guide's example)."""
    h = X
    for W, b in zip(Ws, bs):
        h = np.tanh(W @ h + b[:, None])
    decay = sum(np.sum(W ** 2) for W in Ws)
    return 0.5 * np.sum((h - T) ** 2) + 1e-2 * decay, [W.T for W in Ws]


def seq_enumerate_zip(Ws, bs, x):
    h = x
    total = 0.0
    for i, (W, b) in enumerate(zip(Ws, bs), 1):
        h = np.tanh(W @ h + b)
        total = total + i * np.sum(h)
    return total


def seq_reversed_rows(W, X):
    acc = np.zeros(W.shape[0])
    for row in reversed(X):
        acc = np.tanh(W @ row + acc)
    return acc


def seq_tuple_display(a, b):
    s = 0.0
    for z in (a, b * 2.0, a * b):
        s = s + np.sum(np.sin(z))
    return s


def seq_residual_grad(Ws, x, t):
    """A residual network's gradient: forward over the list, backward by index."""
    xs = [x]
    for W in Ws:
        x = x + np.tanh(W @ x)
        xs.append(x)
    g = x - t
    grads = [None] * len(Ws)
    for k in reversed(range(len(Ws))):
        a = np.tanh(Ws[k] @ xs[k])
        gz = g * (1.0 - a * a)
        grads[k] = np.outer(gz, xs[k])
        g = g + Ws[k].T @ gz
    return grads


def comp_filters_nested(Ws, x):
    hs = [np.tanh(W @ x) for W in Ws]
    hs = [h * 2.0 for h in hs]
    sq = [np.sum(h ** 2) for i, h in enumerate(hs) if i % 2 == 0]
    pairs = sum(np.sum(a * b) for a in hs for b in hs if a.ndim == b.ndim)
    scaled = [hs[i] * i for i in range(len(hs))]
    return sum(sq) + pairs + sum([np.sum(s) for s in scaled])


def comp_scoping(W, x):
    """A comprehension's loop variables are its own (Python 3): `h` and `k` keep their values."""
    h = np.tanh(W @ x)
    k = 2
    ys = [h * k for k in range(3)]
    zs = [h * 3.0 for h in ys]
    out = 0.0
    for j in range(2):
        out = out + np.sum(ys[j] * h) * k
    return out + np.sum(h), zs


def while_nested(a):
    s = 0.0
    i = 0
    while i < 3:
        b = a * (i + 1)
        while b > 0.5:
            b = b * 0.6
        s += b * b
        i += 1
    return s


def while_or_test(a, b):
    x = a
    y = b
    while x > 1.0 or y > 1.0:
        x = 0.8 * x + 0.05 * y
        y = 0.7 * y
    return x, y


def while_chained_cmp(a):
    x = a
    n = 0
    while 0.0 < x < 10.0 and n < 50:
        x = x * 1.3 + 0.1
        n += 1
    return x


# ============================================================================ for loops

def for_sum_squares(x):
    s = 0.0
    for i in range(len(x)):
        s += x[i] * x[i]
    return s


def for_break(x, thresh):
    s = 0.0
    for i in range(len(x)):
        if s > thresh:
            break
        s = s + math.exp(x[i])
    return s


def for_continue(x):
    s = 0.0
    for i in range(len(x)):
        if x[i] < 0:
            continue
        s += x[i] ** 3
    return s


def for_reversed(x):
    acc = 0.0
    for i in reversed(range(len(x))):
        acc = acc * 0.5 + x[i]
    return acc


def for_reversed_branch(x):
    acc = 1.0
    for i in reversed(range(len(x))):
        if x[i] > 0:
            acc = acc * x[i] + 1.0
        else:
            acc = acc - x[i] * x[i]
    return acc


def for_branch_elif_fill(x):
    out = np.zeros(len(x))
    for i in range(len(x)):
        if x[i] < -1.0:
            out[i] = -x[i]
        elif x[i] < 1.0:
            out[i] = x[i] ** 2
        else:
            out[i] = math.sqrt(x[i])
    return out


def for_nested_branch(A):
    n, m = A.shape
    s = 0.0
    for i in range(n):
        for j in range(m):
            if A[i, j] > 0:
                s += A[i, j] * A[i, j]
    return s


def for_fill_2d(x, y):
    out = np.zeros((len(x), len(y)))
    for i in range(len(x)):
        for j in range(len(y)):
            out[i, j] = x[i] * y[j] - 0.5 * x[i]
    return out


def for_fill_rows(X):
    out = np.zeros(X.shape)
    for i in range(X.shape[0]):
        out[i, :] = X[i, :] * X[i, 0]
    return out


def for_list_none(x, n):
    ys = [None] * n
    h = x
    for t in range(n):
        h = np.tanh(h) * 1.5
        ys[t] = h
    return ys


def for_list_append(x, n):
    hs = []
    h = x
    for t in range(n):
        h = h * 0.5 + np.sin(h)
        hs.append(h)
    return hs


def for_list_append_scalars(a, n):
    vals = []
    b = a
    for i in range(n):
        b = b * a + 1.0
        vals.append(b)
    total = 0.0
    for i in range(len(vals)):
        total += vals[i]
    return total


def for_cumsum_fill(x):
    out = np.zeros(len(x))
    s = 0.0
    for i in range(len(x)):
        s += x[i]
        out[i] = s
    return out


def for_running_max(x):
    m = x[0]
    for i in range(1, len(x)):
        if x[i] > m:
            m = x[i]
    return m * m


def for_step_range(x):
    s = 0.0
    for i in range(0, len(x) - 1, 2):
        s += x[i] * x[i + 1]
    return s


def for_augassign_array(x, A):
    y = np.zeros(A.shape[0])
    for j in range(A.shape[1]):
        y += A[:, j] * x[j]
    return y


def for_break_continue(x):
    s = 0.0
    for i in range(len(x)):
        if x[i] < -1.5:
            continue
        if s > 3.0:
            break
        s += math.tanh(x[i]) + x[i] ** 2
    return s


def for_subscript_augassign(x):
    out = np.zeros(len(x))
    for i in range(len(x)):
        out[i] += x[i] * 2.0
        if i > 0:
            out[i] -= out[i - 1] * x[i]
        out[i] *= x[i]
    return out


def for_early_return(x):
    s = 0.0
    for i in range(len(x)):
        s += x[i]
        if s > 1.5:
            return s * s
    return s


# ============================================================================ tuple and list parameters

def tup_unpack(p, x):
    a, b = p
    return a * x + b


def tup_array_scalar(p, x):
    W, c = p
    return np.tanh(W @ x + c), c * c


def tup_nested(p, x):
    (W, b), s = p
    return s * np.tanh(W @ x + b)


def tup_index(p):
    return p[0] * p[1], p[0] - p[1]


def tup_repack(p):
    a, b = p
    q = (b, a)
    c, d = q
    return c * d + c


def tup_two_params(p, q):
    a, b = p
    c, d = q
    return a * c - b * d, a * d + b * c


def list_layers(Ws, x):
    h = x
    for l in range(len(Ws)):
        h = np.tanh(Ws[l] @ h)
    return h


# ============================================================================ list literals

def listlit_scalars(a, b):
    vals = [a, b, a * b]
    s = 0.0
    for i in range(len(vals)):
        s += vals[i] * vals[i]
    return s, vals[2]


def listlit_arrays(x, y):
    xs = [x, y, x * y]
    out = xs[0] + xs[1] * xs[2]
    return out, xs


def listlit_return(a, x):
    return [a * x, x * x]


def listlit_coeffs(x, w):
    feats = [x, x * x, x ** 3]
    y = 0.0 * x
    for k in range(len(feats)):
        y = y + w[k] * feats[k]
    return y


# ============================================================================ helpers calling helpers

def helper_sigmoid_softplus(x):
    return sigmoid(x) * softplus(-x) + log_sigmoid(x)


def helper_chain(W1, b1, W2, b2, x):
    return tanh_layer(W2, b2, tanh_layer(W1, b1, x))


def helper_normalize(x):
    return normalize(x) * sq_norm(x)


def helper_clamp_early_return(a):
    return clamp_scalar(a, -1.0, 1.0) * a


def helper_with_loop(c, t):
    return horner(c, t)


def helper_scalar_math(a, b):
    return smooth_abs(a - b) + smooth_abs(a) * b


def helper_softmax_lse(z):
    return softmax(z), logsumexp(z)


def helper_relu_in_loop(Ws, x):
    h = x
    for l in range(len(Ws)):
        h = relu(Ws[l] @ h)
    return h


# ============================================================================ realistic small models

def model_logreg_grad(w, b, X, y):
    z = X @ w + b
    p = sigmoid(z)
    r = (p - y) / len(y)
    return X.T @ r, np.sum(r)


def model_logreg_loss(w, X, y):
    z = X @ w
    return np.mean(softplus(z) - y * z)


def model_softmax_ce_grad(W, X, Y):
    Z = X @ W
    Z = Z - Z.max(axis=1)[:, None]
    E = np.exp(Z)
    P = E / E.sum(axis=1)[:, None]
    return X.T @ (P - Y) / X.shape[0]


def model_softmax_ce_grad_labels(W, X, labels):
    Z = X @ W
    Z = Z - np.max(Z, axis=1, keepdims=True)
    P = np.exp(Z)
    P = P / np.sum(P, axis=1, keepdims=True)
    for i in range(len(labels)):
        P[i, labels[i]] -= 1.0
    return X.T @ P / len(labels)


def model_mlp2_relu_grad(W1, b1, W2, b2, X, T):
    H = W1 @ X + b1[:, None]
    A = np.maximum(H, 0.0)
    Y = W2 @ A + b2[:, None]
    D2 = (Y - T) / X.shape[1]
    D1 = (W2.T @ D2) * (H > 0)
    return D1 @ X.T, D1.sum(axis=1), D2 @ A.T, D2.sum(axis=1)


def model_rnn_forward(Wh, Wx, h0, X):
    h = h0
    hs = []
    for t in range(X.shape[1]):
        h = np.tanh(Wh @ h + Wx @ X[:, t])
        hs.append(h)
    return hs, np.sum(h * h)


def model_rnn_bptt_grad(Wh, Wx, X, target):
    T = X.shape[1]
    n = Wh.shape[0]
    hs = [None] * (T + 1)
    hs[0] = np.zeros(n)
    for t in range(T):
        hs[t + 1] = np.tanh(Wh @ hs[t] + Wx @ X[:, t])
    dh = hs[T] - target
    gWh = np.zeros(Wh.shape)
    gWx = np.zeros(Wx.shape)
    for t in reversed(range(T)):
        dz = dh * (1.0 - hs[t + 1] ** 2)
        gWh += np.outer(dz, hs[t])
        gWx += np.outer(dz, X[:, t])
        dh = Wh.T @ dz
    return gWh, gWx


def model_huber_loss_loop(r, delta):
    total = 0.0
    for i in range(len(r)):
        total += huber_scalar(r[i], delta)
    return total


def model_huber_grad_vec(w, X, y, delta):
    r = X @ w - y
    g = np.where(np.abs(r) <= delta, r, delta * np.sign(r))
    return X.T @ g / len(y)


def model_huber_branch_scalar(r, delta):
    if abs(r) <= delta:
        g = r
    elif r > 0:
        g = delta
    else:
        g = -delta
    return g * r


def model_quadform_grad(A, x, b):
    return 0.5 * (A + A.T) @ x - b


def model_quadform_branch(A, x):
    q = x @ A @ x
    if q > 0:
        return math.sqrt(q)
    return -q


def model_piecewise_elif_loop(x):
    out = []
    for i in range(len(x)):
        t = x[i]
        if t < -1.0:
            y = -t - 0.5
        elif t < 0.0:
            y = 0.5 * t * t
        elif t < 1.0:
            y = math.sin(t)
        else:
            y = math.log(t) + 0.8
        out.append(y)
    return out


def model_newton_sqrt_vec(c):
    y = c.copy()
    it = 0
    while np.max(np.abs(y * y - c)) > 1e-12 and it < 50:
        y = 0.5 * (y + c / y)
        it += 1
    return y


def model_gd_unrolled(A, b, steps):
    x = np.zeros(len(b))
    for k in range(steps):
        g = A @ x - b
        x = x - 0.1 * g
    return x


def model_gd_until_converged(A, b):
    x = np.zeros(len(b))
    g = A @ x - b
    while np.sqrt(g @ g) > 1e-8:
        x = x - 0.2 * g
        g = A @ x - b
    return x


def model_power_iteration(A, n_iter):
    v = np.ones(A.shape[0])
    for k in range(n_iter):
        w = A @ v
        v = w / np.sqrt(w @ w)
    return v @ A @ v


def model_ridge_grad(w, X, y, lam):
    r = X @ w - y
    return X.T @ r / len(y) + lam * w


def model_gaussian_nll(mu, log_sigma, x):
    s = np.exp(log_sigma)
    z = (x - mu) / s
    return np.sum(0.5 * z * z + log_sigma) + 0.5 * len(x) * math.log(2.0 * math.pi)


def model_rosenbrock_grad(x):
    g = np.zeros(len(x))
    for i in range(len(x) - 1):
        g[i] += -400.0 * x[i] * (x[i + 1] - x[i] ** 2) - 2.0 * (1.0 - x[i])
        g[i + 1] += 200.0 * (x[i + 1] - x[i] ** 2)
    return g


def model_leaky_relu_mlp(W1, W2, x):
    h = W1 @ x
    a = np.where(h > 0, h, 0.01 * h)
    return np.sum((W2 @ a) ** 2)


def model_adam_unrolled(w, X, y, steps):
    m = np.zeros(len(w))
    s = np.zeros(len(w))
    p = w
    for t in range(1, steps + 1):
        g = X.T @ (X @ p - y)
        m = 0.9 * m + 0.1 * g
        s = 0.999 * s + 0.001 * g * g
        mh = m / (1.0 - 0.9 ** t)
        sh = s / (1.0 - 0.999 ** t)
        p = p - 0.01 * mh / (np.sqrt(sh) + 1e-8)
    return p


def model_kalman_scalar(q, r, zs):
    x = 0.0
    P = 1.0
    for k in range(len(zs)):
        P = P + q
        K = P / (P + r)
        x = x + K * (zs[k] - x)
        P = (1.0 - K) * P
    return x, P


def model_backtracking(x, d):
    f0 = np.sum(x * x)
    t = 1.0
    while np.sum((x + t * d) ** 2) > f0 + 0.3 * t * 2.0 * np.dot(x, d):
        t = 0.5 * t
    x_new = x + t * d
    return x_new, np.sum(x_new * x_new)


def model_softmax_temperature(z, tau):
    return softmax(z / tau)


def model_attention(Q, K, V):
    S = Q @ K.T / math.sqrt(Q.shape[1])
    S = S - S.max(axis=1)[:, None]
    Wt = np.exp(S)
    Wt = Wt / Wt.sum(axis=1)[:, np.newaxis]
    return Wt @ V


def model_layernorm(x, g, b):
    mu = x.mean()
    xc = x - mu
    var = (xc * xc).mean()
    return g * xc / np.sqrt(var + 1e-5) + b


def model_batchnorm(X, gamma):
    mu = X.mean(axis=0)
    Xc = X - mu[None, :]
    var = np.mean(Xc ** 2, axis=0)
    return gamma * Xc / np.sqrt(var + 1e-5)


def model_conv1d_fill(x, k):
    n = len(x) - len(k) + 1
    out = np.zeros(n)
    for i in range(n):
        out[i] = np.dot(x[i:i + len(k)], k)
    return out


def model_conv1d_append(x, k):
    n = len(x) - len(k) + 1
    out = []
    for i in range(n):
        out.append(np.dot(x[i:i + len(k)], k))
    return out


def model_binary_ce_branch(p, t):
    s = 0.0
    for i in range(len(t)):
        if t[i] > 0.5:
            s -= math.log(p[i])
        else:
            s -= math.log(1.0 - p[i])
    return s / len(t)


def model_embedding(E, w, ids):
    h = E[ids].mean(axis=0)
    return sigmoid(h @ w)


def model_logsumexp_loss(W, x, k):
    z = W @ x
    return logsumexp(z) - z[k]


def model_polynomial_fit_grad(c, ts, ys):
    g = np.zeros(len(c))
    for i in range(len(ts)):
        r = horner(c, ts[i]) - ys[i]
        tk = 1.0
        for k in range(len(c)):
            g[k] += r * tk
            tk = tk * ts[i]
    return g


def model_linear_spline(knots_y, t):
    n = len(knots_y)
    h = 1.0 / (n - 1)
    i = int(t / h)
    if i > n - 2:
        i = n - 2
    u = (t - i * h) / h
    return (1.0 - u) * knots_y[i] + u * knots_y[i + 1]


def model_trapezoid_integral(a, b, n):
    h = (b - a) / n
    s = 0.5 * (math.exp(-a * a) + math.exp(-b * b))
    for i in range(1, n):
        t = a + i * h
        s += math.exp(-t * t)
    return s * h


def model_gmm_responsibilities(mus, x):
    d = x[:, None] - mus[None, :]
    logits = -0.5 * d * d
    logits = logits - logits.max(axis=1)[:, None]
    R = np.exp(logits)
    return R / R.sum(axis=1)[:, None]


# ============================================================================ combinations

def combo_while_in_for(x):
    out = []
    for i in range(len(x)):
        y = x[i]
        while abs(y) > 0.5:
            y = y * 0.5
        out.append(y * y)
    return out


def combo_for_in_while(x):
    s = 1.0
    n = 0
    while s < 50.0 and n < 10:
        for i in range(len(x)):
            s = s * (1.0 + 0.1 * x[i] * x[i]) + 0.2
        n += 1
    return s


def combo_tuple_loop_branch(p, x):
    a, b = p
    s = 0.0
    for i in range(len(x)):
        if x[i] * a > b:
            s += x[i] * a - b
        else:
            s += 0.1 * (x[i] * a - b)
    return s


def combo_list_params_branch(Ws, x):
    h = x
    L = len(Ws)
    for l in range(L):
        z = Ws[l] @ h
        if l < L - 1:
            h = np.maximum(z, 0.0)
        else:
            h = z
    return h


def combo_break_nested(A):
    s = 0.0
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            if A[i, j] < -1.0:
                break
            s += A[i, j] * A[i, j]
    return s


def combo_ifexp_append(x, a):
    ys = []
    for i in range(len(x)):
        ys.append(x[i] * a if x[i] > 0 else x[i] / a)
    return ys


def combo_chained_cmp_loop(x):
    s = 0.0
    for i in range(len(x)):
        if 0.0 < x[i] < 1.0:
            s += x[i] * (1.0 - x[i])
        elif not x[i] < 1.0:
            s += math.log(x[i])
    return s


def combo_newaxis_branch(x, y):
    if x.sum() > y.sum():
        M = x[:, None] * y[None, :]
    else:
        M = x[:, np.newaxis] - y[np.newaxis, :]
    return M.sum(axis=0)


def combo_scalar_array_while(a, x):
    c = a
    while c * np.sum(x * x) > 1.0:
        c = c * 0.5
    return c * x


def combo_reversed_fill_branch(x):
    out = np.zeros(len(x))
    acc = 0.0
    for i in reversed(range(len(x))):
        if x[i] > 0:
            acc += x[i]
        else:
            acc *= 0.5
        out[i] = acc * x[i]
    return out


def combo_tuple_while(p):
    a, b = p
    while a > b:
        a = a * 0.75
        b = b + 0.1
    return a * b


def combo_early_return_while(a):
    x = a
    i = 0
    while i < 10:
        x = x * x * 0.5 + 0.3
        if x > 2.0:
            return x
        i += 1
    return -x


def combo_helper_branch_loop(x, delta):
    out = np.zeros(len(x))
    for i in range(len(x)):
        out[i] = huber_scalar(x[i], delta) * x[i]
    return out


def combo_len_shape_ndim(x, X):
    if X.ndim == 2 and len(x) == X.shape[1]:
        y = X @ x
    else:
        y = X.sum(axis=0)
    return y * X.size


def combo_list_literal_loop_branch(a, b):
    cs = [a, b, a - b, a * b]
    s = 0.0
    for i in range(len(cs)):
        if cs[i] > 0:
            s += cs[i] ** 2
        else:
            s -= cs[i]
    return s


def combo_math_while_ifexp(a):
    x = a
    n = 0
    while x > 0.2 and n < 30:
        x = math.tanh(x) if x < 1.0 else math.sqrt(x) - 0.5
        n += 1
    return x


# ============================================================================ rebinding a parameter
# (ordinary Python: the loop variable is the parameter itself)

def rebind_param_while(a):
    while abs(a) > 0.1:
        a = a * 0.5
    return a


def rebind_param_gd(x, A, b, steps):
    for k in range(steps):
        x = x - 0.1 * (A @ x - b)
    return x


# ============================================================================ more everyday idioms

def idx_argmax_index(x, y):
    i = np.argmax(x)
    return x[i] * y, y[i] * y


def idx_slices_more(x, X):
    return x[3:0:-1] * x[-1:], X[:, -1] * X[-1], x[1:] - x[:-1]


def idx_int_array_rows_cols(X, idx):
    return X[idx, :] * 2.0, X[:, idx].sum(axis=1)


def idx_slice_augassign(x):
    out = x.copy()
    out[1:] += x[:-1] * x[1:]
    out[0] = out[0] * 3.0
    return out


def while_flag_not(a):
    x = a
    done = False
    n = 0
    while not done:
        x = x * 0.5 + 0.1 * math.sin(x)
        n += 1
        if abs(x) < 0.1 or n >= 40:
            done = True
    return x


def while_helper_in_test(x):
    y = x
    while sq_norm(y) > 1.0:
        y = 0.7 * y
    return y


def s_tuple_swap_loop(a, b):
    for i in range(5):
        a_new, b_new = b, a + 0.5 * b
        a = a_new
        b = b_new
    return a * b


def s_tuple_swap_locals(a0, b0, n):
    u, w = a0, b0
    for i in range(n):
        u, w = w, u * 0.5 + w * w * 0.1
    return u, w


def s_chained_annotated(a, b):
    s: float = 0.0
    p = q = a * b
    s += p + q * a
    return s


def s_helper_on_scalar(a):
    return sigmoid(a) * softplus(a) - relu(a - 0.5)


def for_negative_step_range(x):
    acc = 0.0
    for i in range(len(x) - 1, -1, -1):
        acc = 0.7 * acc + x[i] * x[i]
    return acc


def for_mod_index(x):
    s = 0.0
    for i in range(len(x)):
        if i % 2 == 0:
            s += x[i] * x[i]
        else:
            s -= math.exp(0.5 * x[i])
    return s


def for_zeros_like_fill(x, a):
    out = np.zeros_like(x)
    for i in range(len(x)):
        out[i] = a * x[i] + (i + 1) * a * a
    return out


def for_empty_fill(x):
    n = len(x)
    out = np.empty(n)
    for i in range(n):
        out[i] = x[(i + 1) % n] * x[i]
    return out


def for_list_none_scalars(a, n):
    vals = [None] * n
    for i in range(n):
        vals[i] = a * (i + 1) + a * a
    s = 0.0
    for i in range(n):
        s += vals[i] * vals[n - 1 - i]
    return s


def for_copy_then_write(x, a):
    y = x.copy()
    y[0] = a * y[0]
    for i in range(1, len(y)):
        y[i] = y[i] + a * y[i - 1]
    return y


def np_abs_pow_misc(x):
    return abs(x) * x ** 2 + 2.0 ** x, np.sqrt(x @ x), x.sum(axis=0, keepdims=True) * x


def for_float_of_int(x):
    n = len(x)
    return np.sum(x) / float(n) + x * float(n)
