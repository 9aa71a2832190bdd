"""One small program per rule-table primitive, for tests/test_rules.py.

rop reads source through ``inspect``, so the programs live, undecorated, in this real file;
the test applies ``rop(wrt=..., mode=...)`` to each one (once per mode).  Each program calls
its primitive the way users write it.  Programs for zero-rule primitives (shapes, comparisons,
integer-valued results) combine the zero-R value with an active one, so the test sees both
that R{·} of the zero-rule value is exactly zero and that the active part is still right.
"""
# flake8: noqa

import math

import numpy as np


# ----------------------------------------------------------------------------- user helpers

def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softplus(x):
    return np.log1p(np.exp(x))


def sq_err(y, t):
    return 0.5 * (y - t) ** 2


# ----------------------------------------------------------------------------- arithmetic

def p_add(a, b):
    return a + b, a + 2.0, 3.0 + b


def p_add_bcast(a, b):
    return a + b[:, None]


def p_sub(a, b):
    return a - b, 1.0 - a, b - 0.5


def p_mul(a, b):
    return a * b, 2.0 * a, b * b


def p_mul_bcast(a, b):
    return a * b[None, :]


def p_div(a, b):
    return a / b, a / 3.0, 1.0 / b


def p_pow_const(x):
    return x ** 3, x ** 2, x ** 0.5, x ** -1.5


def p_pow(a, b):
    return a ** b


def p_pow_scalar_exp(a, s):
    return a ** s


def p_neg(x):
    return -x, -(x * x)


def p_pos(x):
    return +x


def p_copy(x):
    y = x
    z = y * 2.0
    return z, y


def p_array_copy(x):
    y = x.copy()
    z = np.copy(x)
    return y * z


def p_float(x):
    s = float(np.sum(x))
    return s * x, s


def p_floordiv(x, y):
    k = x // 1.0
    return k * y, k


def p_mod_int(x):
    y = x * 1.0
    for i in range(4):
        if i % 2 == 0:
            y = y * x
    return y


def p_int(x):
    k = int(np.max(x))
    return k * x, k


# ----------------------------------------------------------------------------- linear algebra

def p_matmul(a, b):
    return a @ b


def p_matmul_stack(a, b, c):
    """Stacks of matrices (rank 3) on either side, and on both."""
    return a @ b, b.T @ a.transpose((0, 2, 1)), a @ c


def p_matvec(a, b):
    return a @ b


def p_vecmat(a, b):
    return a @ b


def p_vecvec(a, b):
    return a @ b


def p_dot(a, b):
    return np.dot(a, b), a.dot(b)


def p_dot_vec(a, b):
    return np.dot(a, b)


def p_outer(a, b):
    return np.outer(a, b)


# ----------------------------------------------------------------------------- elementwise

def p_exp(x):
    return np.exp(x)


def p_log(x):
    return np.log(x)


def p_log1p(x):
    return np.log1p(x)


def p_expm1(x):
    return np.expm1(x)


def p_tanh(x):
    return np.tanh(x)


def p_sinh(x):
    return np.sinh(x)


def p_cosh(x):
    return np.cosh(x)


def p_sin(x):
    return np.sin(x)


def p_cos(x):
    return np.cos(x)


def p_tan(x):
    return np.tan(x)


def p_arctan(x):
    return np.arctan(x)


def p_sqrt(x):
    return np.sqrt(x)


def p_abs(x):
    return np.abs(x), np.absolute(x), np.fabs(x)


def p_square(x):
    return np.square(x)


def p_reciprocal(x):
    return np.reciprocal(x)


def p_sign(x, y):
    s = np.sign(x)
    return s * y, s


def p_floor(x, y):
    f = np.floor(x)
    return f * y, f


def p_ceil(x, y):
    c = np.ceil(x)
    return c + y, c


# math.* on scalars (each a scalar program)
def p_math_exp(s):
    return math.exp(s)


def p_math_log(s):
    return math.log(s)


def p_math_log1p(s):
    return math.log1p(s)


def p_math_expm1(s):
    return math.expm1(s)


def p_math_tanh(s):
    return math.tanh(s)


def p_math_sinh(s):
    return math.sinh(s)


def p_math_cosh(s):
    return math.cosh(s)


def p_math_sin(s):
    return math.sin(s)


def p_math_cos(s):
    return math.cos(s)


def p_math_tan(s):
    return math.tan(s)


def p_math_atan(s):
    return math.atan(s)


def p_math_sqrt(s):
    return math.sqrt(s)


def p_math_fabs(s):
    return math.fabs(s), abs(s)


def p_math_floor(s, t):
    return math.floor(s) * t


def p_math_ceil(s, t):
    return math.ceil(s) * t


# ----------------------------------------------------------------------------- selections

def p_maximum(a, b):
    return np.maximum(a, b), np.maximum(a, 0.0)


def p_minimum(a, b):
    return np.minimum(a, b), np.minimum(0.0, b)


def p_builtin_max_min(s, t):
    return max(s, t), min(s, t)


def p_where(a, b):
    return np.where(a > 0, a, b), np.where(b < 0, 0.0, b)


def p_norm(x, v):
    return np.linalg.norm(x), np.linalg.norm(v) * x


def p_clip(x):
    return np.clip(x, -0.5, 0.5), x.clip(-0.5, 0.5)


# ----------------------------------------------------------------------------- reductions, reshaping

def p_sum(x):
    return x.sum(axis=1), np.sum(x, axis=0, keepdims=True), np.sum(x), x.sum(), np.sum(x, 1)


def p_mean(x):
    return x.mean(axis=1), np.mean(x, axis=0, keepdims=True), np.mean(x), x.mean(axis=-1)


def p_max(x):
    return np.max(x, axis=1), x.max(axis=0, keepdims=True), np.max(x), np.amax(x, axis=0)


def p_min(x):
    return np.min(x, axis=1), x.min(axis=0, keepdims=True), np.min(x), np.amin(x, axis=1)


def p_transpose(x):
    return x.T, np.transpose(x), np.transpose(x, (1, 0)) * 2.0


def p_reshape(x):
    n = x.shape[0]
    m = x.shape[1]
    return np.reshape(x, (m, n)), x.reshape((n * m,)), np.reshape(x.T, (n * m, 1))


def p_ravel(x):
    return np.ravel(x), x.ravel() * 2.0, x.T.ravel()


def p_flatten(x):
    return x.flatten(), x.T.flatten() * x.flatten()


def p_getitem(x):
    return x[:, None], x[1:], x[0], x[::-1], x[None, :] * x[:, None]


def p_getitem2(x):
    return x[0, 1], x[:, 0], x[1], x[1:, :2], x[-1, -1] * x


# ----------------------------------------------------------------------------- zero rules

def p_shape(x):
    return x / x.shape[0], x.shape[0]


def p_ndim(x):
    return x * x.ndim, x.ndim


def p_dtype(x):
    y = x.astype(x.dtype, copy=False)  # x itself: x is float64 (ir/dtypes.py)
    return y * 2.0, float(x.dtype == np.float64)


def p_size(x):
    return x / x.size, x.size


def p_len(x):
    return x / len(x), len(x)


def p_zeros(x):
    z = np.zeros(x.shape)
    return z + x, z


def p_ones(x):
    o = np.ones(x.shape)
    return o * x, o


def p_empty(x):
    e = np.empty(x.shape)
    for i in range(x.shape[0]):
        e[i] = 2.0
    return e * x


def p_full(x):
    f = np.full(x.shape, 2.5)
    return f * x, f


def p_zeros_like(x):
    z = np.zeros_like(x)
    return z - x, z


def p_ones_like(x):
    o = np.ones_like(x)
    return o * x, o


def p_eye(x):
    e = np.eye(x.shape[0])
    return e @ x, e


def p_arange(x):
    r = np.arange(0, x.shape[0], 1)
    return r * x, r


def p_argmax(x):
    i = np.argmax(x)
    j = x.argmax()
    return x[i] + x[j], i


def p_argmin(x):
    i = np.argmin(x)
    j = x.argmin()
    return x[i] * x[j], i


def p_compare(a, b):
    return (np.where(a < b, a, b), np.where(a <= b, b, a), np.where(a > b, a * b, b),
            np.where(a >= b, b, a), np.where(a == b, a, b), np.where(a != b, a, b), a < b)


def p_bool_ops(s, t):
    n = 3
    if s > 0.0 and t > 0.0:
        y = s * t
    else:
        y = s + t
    if s > 0.0 or t > 0.0:
        y = y * s
    if not n > 5:
        y = y * t
    return y


def p_list_repeat(x):
    ys = [None] * 3
    for i in range(3):
        ys[i] = x * (i + 1.0)
    return ys[0] * ys[2]


# ----------------------------------------------------------------------------- compositions

def sign_times(x, y):
    return np.sign(x) * y


def helpers(x, t):
    a = sigmoid(x)
    b = softplus(x)
    c = sq_err(x, t)
    return a, b, c, sigmoid(x * t) + sq_err(softplus(x), t)


def tanh_y(x):
    y = np.tanh(x)
    return y


# ----------------------------------------------------------------------------- more spellings

def p_softmax(x):
    m = x.max(axis=1, keepdims=True)
    e = np.exp(x - m)
    return e / e.sum(axis=1, keepdims=True)


def p_reshape_neg(x):
    return np.reshape(x, (-1,)), x.reshape((x.shape[0], -1))


def p_transpose3(x):
    return np.transpose(x, (2, 0, 1)), x.transpose((1, 0, 2))


def p_reduce3(x):
    return np.sum(x, axis=2), x.mean(axis=0), np.max(x, axis=1), x.min(axis=-1, keepdims=True)


def p_reduce_none(x):
    return np.max(x, axis=None), np.sum(x, axis=None, keepdims=True), np.min(x)


def p_dot_matvec(a, b):
    return np.dot(a, b), a.dot(b) * 2.0


def p_transpose_1d(x):
    return x.T * 2.0


def p_scalar_array_mix(s, x):
    return s * x, x / s, s - x, s ** 2 * np.sum(x), np.maximum(s, x), -s, abs(s)


def p_matmul_partial(a, b):
    return a @ b, a @ b @ a


# ----------------------------------------------------------------------------- found by these tests
def p_mod_float(a, b):
    return a % 1.0, a % b


def p_clip_active_bounds(x, lo, hi):
    return np.clip(x, lo, 10.0), np.clip(x, lo, hi)


def p_reduce_axes(x):
    return np.sum(x, axis=(0, 1)), x.mean(axis=(1, 2)), np.max(x, axis=(-2, -1)), \
        np.min(x, axis=(0, 2), keepdims=True)


# ----------------------------------------------------------------------------- active arguments
# (issue 17: a rule must not be zero because of the function alone; which arguments are active
# decides)

def p_full_active(a, W):
    f = np.full(3, a)
    g = np.full(W.shape, W[0])
    return f * W[1], g * W, f, np.full((2, 2), 2.0 * a)


def p_arange_active(s, t):
    r = np.arange(s, s + 2.5, 1.0)        # length 3 for every s: R = R{s}
    q = np.arange(s, s + 2.5 * t, t)      # element k is s + k t: R = R{s} + k R{t}
    # only the length depends on t in the third (R = 0); k R{t} in the fourth
    return r, q * s, np.arange(0.5, 2.5 * t, 1.0), np.arange(0.0, 2.5 * t, t)


def p_pow_zero_base(x, p):
    """x holds exact zeros and only p is active: R{x ** p} = x ** p log(x) R{p} is 0 there."""
    return np.power(x, p), x ** p, x ** (2.0 * p), 2.0 ** p * x


def p_clip_on_bounds(x, lo, hi):
    """Every spelling of clip, x exactly on the bounds (lo = 0.0, hi = 1.0 given as data)."""
    return np.clip(x, 0.0, 1.0), np.clip(x, lo, hi), x.clip(0.0, 1.0), np.clip(x, lo, 1.0), \
        x.clip(lo, hi)


def p_clip_on_bounds_scalar(s, lo, hi):
    return np.clip(s, 0.0, 1.0), np.clip(s, lo, hi), np.clip(s, 0.0, hi)


def p_bool_values(s, t):
    """`and` / `or` on numbers return an operand: its R."""
    z = s - s
    return s or t, s and t, z or t, z and t, (s * t) or 1.0


# ----------------------------------------------------------------------------- issue 18

def p_add_at(x):
    acc = x * 2.0
    idx = np.arange(x.shape[0]) // 2           # 0, 0, 1, 1, ...: repeated indices add up
    np.add.at(acc, idx, np.tanh(x))
    return acc


def p_squeeze(x):
    c = np.squeeze(np.sum(x ** 2))             # cost = np.squeeze(cost) after a sum
    return c * x


# ----------------------------------------------------------------------------- issue 18: the NumPy of real backprop code

def p_concatenate(a, b):
    return np.concatenate((a, b), axis=0), np.concatenate([a, 2.0 * b], axis=1), \
        np.concatenate((a, np.ones_like(b)), axis=-1)


def p_vstack_hstack(a, b):
    u = a[0]
    return np.vstack((a, b)), np.hstack([a, b]), np.vstack((u, b[1])), np.hstack((u, b[1]))


def p_stack(a, b):
    return np.stack((a, b)), np.stack([a, b * b], axis=1), np.stack((a, np.zeros_like(b)), axis=-1)


def p_column_stack(u, v):
    return np.column_stack((u, v)), np.column_stack([u, v * v, np.ones_like(u)])


def p_tile(x):
    return np.tile(x, (2, 3)), np.tile(x, 2), np.tile(x[0], (3, 1))


def p_repeat(x):
    return np.repeat(x, 2, axis=0), np.repeat(x, 3, axis=1), np.repeat(x, 2), x.repeat(2, axis=-1)


def p_array(a, b, w):
    return np.array([a, b]), np.array([[1.0, w], [w, 2.0]]) * w, np.array((w, 2.0 * w, 3)), \
        np.array([[a, b], [b, a]])


def p_asarray_astype(x):
    y = np.asarray(x)
    z = x.astype(np.float64)
    z[0] = 2.0 * z[0]
    return y * y, z, (x * x).astype(np.float64)


def p_astype_float(x):
    return x.astype(float) * x


def p_empty_like(x):
    e = np.empty_like(x)
    e[:] = 3.0
    return e * x, e


def p_full_like(x, c):
    f = np.full_like(x, c)
    g = np.full_like(x, 2.5)
    return f * x, g * x, f, g


def p_diag(v, M):
    return np.diag(v), np.diag(M @ M.T), np.diag(v) @ M, np.diagflat(v * v), np.diagflat(M)


def p_var_std(x):
    return np.var(x), np.var(x, axis=0), np.var(x, axis=1, ddof=1), \
        np.var(x, axis=-1, keepdims=True), x.var(axis=0, ddof=1, keepdims=True)


def p_std(x):
    return np.std(x), np.std(x, axis=0), np.std(x, axis=1, ddof=1), x.std(), \
        x.std(axis=-1, keepdims=True)


def p_cumsum(x):
    return np.cumsum(x, axis=0), np.cumsum(x, axis=1), np.cumsum(x), x.cumsum(axis=-1)


def p_prod(x):
    return np.prod(x), np.prod(x, axis=0), np.prod(x, axis=1, keepdims=True), x.prod(axis=-1)


def p_logaddexp(a, b):
    return np.logaddexp(a, b), np.logaddexp(a, 1.5), np.logaddexp(0.5, b), np.logaddexp(a, b[0])


def p_einsum(A, B, v):
    return np.einsum("ij,jk->ik", A, B), np.einsum("ij,j->i", A, v), np.einsum("ij,ij->", A, A), \
        np.einsum("ij->ji", A), np.einsum("ij,jk", A, B), np.einsum("i,j->ij", v, v), \
        np.einsum("ii->i", A @ A.T), np.einsum("ij,jk,kl->il", A, B, B.T, optimize=True)


def p_bool_masks(x, W, d):
    h = np.tanh(x)
    m = h > 0
    return np.dot((x > 0), W), (h > 0) * d, m @ W, np.dot(m, W) * W[0], np.dot(m, m * x)


def p_stack_list(x, W):
    """States of a recurrent net kept in a list built by append, then stacked (Numba's own
    stacking functions take tuples only: these run rt.stack, rt.concatenate, ...)."""
    hs = []
    h = x
    for k in range(3):
        h = np.tanh(W @ h)
        hs.append(h)
    return np.stack(hs), np.stack(hs, axis=1), np.concatenate(hs), np.array(hs), \
        np.vstack(hs), np.hstack(hs), np.column_stack(hs)


def p_stack_list2(X, W):
    Hs = [X]
    for k in range(2):
        Hs.append(np.tanh(W @ Hs[-1]))
    return np.concatenate(Hs, axis=1), np.stack(Hs, axis=-1), np.vstack(Hs), np.hstack(Hs), \
        np.column_stack(Hs), np.array(Hs)


def p_pad(x, c):
    """np.pad as convolution code writes it: a pair per axis (one a variable), an int, one
    pair for every axis, mode='constant' spelled out (by keyword and by position), a nonzero
    constant fill and an active one (R{c} in the border), a vector."""
    p = 1
    return np.pad(x, ((0, 0), (p, p))), np.pad(x, 1), np.pad(x, (1, 2), mode='constant'), \
        np.pad(x, ((2, 0), (1, 3)), 'constant', constant_values=1.5), \
        np.pad(x * x, 2, constant_values=c), np.pad(x[0], (3,)) * c


def p_pad4(x, w):
    """A batch of images (N, C, H, W) padded on its two spatial axes, then a window of it."""
    pad = 1
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode='constant')
    return x_pad, np.sum(x_pad[:, :, 0:2, 1:3] * w[:, None, None], axis=(1, 2, 3)), x_pad[:, :, pad:-pad, pad:-pad]


def p_unravel_index(x):
    """Max pooling's backward pass: the coordinates of the window's argmax (integers, R = 0)
    index the gradient; the maximum's R is that of the entry they name."""
    idx = np.unravel_index(np.argmax(x), x.shape)
    i, j = np.unravel_index(np.argmin(x), x.shape)
    k = np.unravel_index(np.argmax(x[0]), x[0].shape)
    y = np.zeros_like(x)
    y[idx[0], idx[1]] += x[idx[0], idx[1]] ** 2
    return y, x[i, j] * x[0, k[0]], idx[0], j, k[0]


def p_bool_masks2(X, W, D):
    """ReLU backprop with matrix masks: `@` of a boolean matrix goes through rt.gemm."""
    H = W @ X
    M = H > 0
    return (M * D) @ X.T, M @ X.T, np.dot(M, X.T) + W


def p_array_dtype(x, a, w):
    """np.array / np.asarray of sequences and with dtype=float (integer items cast)."""
    y = np.asarray(x, dtype=float)
    return np.array([1, 2, w], dtype=float) * w, np.asarray([a, 2.0 * a]), y * x, \
        np.array(x) * x, np.asarray((w, 3), dtype=np.float64), np.array([[a, a], [a, a]], float)


def p_nan_to_num(x):
    return np.nan_to_num(np.log(x))            # finite inputs: log's R


def p_as_int(x, y):
    m = np.int64(x > 0.0)                      # a 0/1 mask: R = 0
    return m * y, m
