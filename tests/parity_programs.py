"""Small programs that run in NumPy but needed care to type in Numba (tests/test_numba_parity.py)."""

import numpy as np


def discounted_grad(w, X, r, gamma):
    """Gradient of sum(d * tanh(X @ w)) with d the discounted rewards of the column r (n, 1),
    accumulated from a number: ``running = 0`` becomes a 1-element row in the loop."""
    d = np.zeros_like(r)
    running = 0
    for t in reversed(range(r.shape[0])):
        if r[t, 0] < -1.0:
            running = 0  # an episode boundary
        running = running * gamma + r[t]
        d[t] = running
    z = np.tanh(X @ w)
    return X.T @ (d * (1.0 - z * z))


def summed_layers_grad(Ws, x, t):
    """Gradient (with respect to every W) of 0.5 * |tanh(sum_k W_k @ x) - t|^2, the sum started
    from the number 0 as Python's sum does: an active value that is a number on entry."""
    s = 0
    for W in Ws:
        s = s + W @ x
    y = np.tanh(s)
    e = (y - t) * (1.0 - y * y)
    return [np.outer(e, x) for W in Ws]


def leaky_states(Ws, x):
    """States of a leaky chain, the state started from the number 0 and reset to 0 at the
    third layer: an active value that is a number on some paths, read only where an array
    absorbs it."""
    hs = []
    s = 0
    for k in range(len(Ws)):
        if k == 2:
            s = 0
        s = 0.5 * s + np.tanh(Ws[k] @ x)
        hs.append(s)
    return hs


def labels_grad(W, X, y):
    """Gradient of the mean cross-entropy of softmax(X @ W) at the labels ``y``, a list of
    integers, used as an index as courses write it."""
    scores = X @ W
    scores = scores - np.max(scores, axis=1, keepdims=True)
    p = np.exp(scores)
    p = p / np.sum(p, axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0
    return X.T @ p / len(y)


def entry_scaled(W, idx):
    """``W[idx]`` with ``idx`` a tuple of integers: one entry (a multi-index), not rows."""
    return np.tanh(W * W[idx])


def unlike_caches_grad(W1, W2, x, t):
    """Gradient of 0.5 |W2 tanh(W1 x) - t|^2, each layer's cache a tuple of its own structure
    kept in one list, read back by constant indices as course code does."""
    caches = []
    h = np.tanh(W1 @ x)
    caches.append((x, W1, h))
    y = W2 @ h
    caches.append((h, W2))
    e = y - t
    h_in, W = caches[-1]
    dW2 = np.outer(e, h_in)
    dh = W.T @ e
    layer = len(caches) - 2
    x_in, W, a = caches[layer]
    dW1 = np.outer(dh * (1.0 - a * a), x_in)
    return dW1, dW2


def strided_cache_grads(x, h0, Wx, Wh):
    """Gradients of sum(h_T) of h_t = tanh(h_{t-1} Wh + x[:, t, :] Wx), each step's cache
    ``(x[:, t, :], h_{t-1}, h_t)`` (a strided view among contiguous arrays) kept in a list."""
    N, T, D = x.shape
    caches = []
    h = h0
    for t in range(T):
        h_new = np.tanh(h @ Wh + x[:, t, :] @ Wx)
        caches.append((x[:, t, :], h, h_new))
        h = h_new
    dh = np.ones_like(h)
    dWx = np.zeros_like(Wx)
    dWh = np.zeros_like(Wh)
    for t in reversed(range(T)):
        xt, h_prev, h_t = caches[t]
        da = dh * (1.0 - h_t * h_t)
        dWx += xt.T @ da
        dWh += h_prev.T @ da
        dh = da @ Wh.T
    return dWx, dWh


def strided_cache_named(x, h0, Wx, Wh):
    """The same, the cache bound to a name first and nested: ``cache = ((x[:, t, :], h),
    h_new)``."""
    N, T, D = x.shape
    caches = []
    h = h0
    for t in range(T):
        h_new = np.tanh(h @ Wh + x[:, t, :] @ Wx)
        cache = ((x[:, t, :], h), h_new)
        caches.append(cache)
        h = h_new
    dh = np.ones_like(h)
    dWx = np.zeros_like(Wx)
    dWh = np.zeros_like(Wh)
    for t in reversed(range(T)):
        inputs, h_t = caches[t]
        xt, h_prev = inputs
        da = dh * (1.0 - h_t * h_t)
        dWx += xt.T @ da
        dWh += h_prev.T @ da
        dh = da @ Wh.T
    return dWx, dWh
