"""One network, written the ways courses, books and tutorials write it (tests/test_layouts.py).

A tanh MLP with a linear output and squared error E = 1/(2B) ||y - T||^2, examples in rows
or in columns, weights stored (out, in) or (in, out), activations in a list made by
``[None] * n`` or grown from ``[X]`` by append, layers inline or in a helper, parameters
in lists or a dict.  The generated Hv of each must do the same matrix products as a
hand-written R{backprop}: none with R{X} = 0.
"""

import numpy as np

def cols_index(Ws, bs, X, T):
    L = len(Ws)
    acts = [None] * (L + 1)
    acts[0] = X
    for i in range(L):
        h = Ws[i] @ acts[i] + bs[i][:, None]
        if i < L - 1:
            acts[i + 1] = np.tanh(h)
        else:
            acts[i + 1] = h
    d = (acts[L] - T) / X.shape[1]
    dWs = [None] * L
    dbs = [None] * L
    for i in range(L - 1, -1, -1):
        dWs[i] = d @ acts[i].T
        dbs[i] = d.sum(axis=1)
        if i > 0:
            d = (Ws[i].T @ d) * (1.0 - acts[i] ** 2)
    return dWs, dbs

def cols_append(Ws, bs, X, T):
    acts = [X]
    L = len(Ws)
    for i in range(L):
        h = Ws[i] @ acts[-1] + bs[i][:, None]
        acts.append(np.tanh(h) if i < L - 1 else h)
    d = (acts[-1] - T) / X.shape[1]
    dWs = []
    dbs = []
    for i in reversed(range(L)):
        dWs.append(d @ acts[i].T)
        dbs.append(d.sum(axis=1))
        if i > 0:
            d = (Ws[i].T @ d) * (1.0 - acts[i] ** 2)
    return dWs[::-1], dbs[::-1]

def rows_append(Ws, bs, X, T):
    ys = [X]
    L = len(Ws)
    for i in range(L):
        h = ys[-1] @ Ws[i].T + bs[i]
        if i < L - 1:
            ys.append(np.tanh(h))
        else:
            ys.append(h)
    d = (ys[-1] - T) / X.shape[0]
    dWs, dbs = [], []
    for i in range(L - 1, -1, -1):
        dWs.append(d.T @ ys[i])
        dbs.append(d.sum(axis=0))
        if i > 0:
            d = (d @ Ws[i]) * (1.0 - ys[i] ** 2)
    return dWs[::-1], dbs[::-1]

def rows_index(Ws, bs, X, T):
    L = len(Ws)
    a = [None] * (L + 1)
    a[0] = X
    for i in range(L):
        z = np.dot(a[i], Ws[i].T) + bs[i]
        a[i + 1] = np.tanh(z) if i < L - 1 else z
    delta = (a[L] - T) / len(X)
    gW = [None] * L
    gb = [None] * L
    for i in range(L - 1, -1, -1):
        gW[i] = np.dot(delta.T, a[i])
        gb[i] = np.sum(delta, axis=0)
        if i > 0:
            delta = np.dot(delta, Ws[i]) * (1 - a[i] * a[i])
    return gW, gb

def _layer(W, b, x):
    return np.tanh(x @ W.T + b)

def rows_helper(Ws, bs, X, T):
    L = len(Ws)
    acts = [X]
    x = X
    for i in range(L - 1):
        x = _layer(Ws[i], bs[i], x)
        acts.append(x)
    out = x @ Ws[L - 1].T + bs[L - 1]
    d = (out - T) / X.shape[0]
    dWs = [None] * L
    dbs = [None] * L
    for i in range(L - 1, -1, -1):
        dWs[i] = d.T @ acts[i]
        dbs[i] = d.sum(axis=0)
        if i > 0:
            d = (d @ Ws[i]) * (1.0 - acts[i] ** 2)
    return dWs, dbs

def rows_wT(Ws, bs, X, T):
    """weights stored (in, out): X @ W + b (the course convention)"""
    L = len(Ws)
    acts = [X]
    for i in range(L):
        z = acts[i] @ Ws[i] + bs[i]
        acts.append(np.tanh(z) if i < L - 1 else z)
    d = (acts[L] - T) / X.shape[0]
    dWs = [None] * L
    dbs = [None] * L
    for i in range(L - 1, -1, -1):
        dWs[i] = acts[i].T @ d
        dbs[i] = d.sum(axis=0)
        if i > 0:
            d = (d @ Ws[i].T) * (1.0 - acts[i] ** 2)
    return dWs, dbs

def cols_wT(Ws, bs, X, T):
    """weights stored (in, out), examples in columns: W.T on the left"""
    L = len(Ws)
    acts = [X]
    for i in range(L):
        z = Ws[i].T @ acts[i] + bs[i][:, None]
        acts.append(np.tanh(z) if i < L - 1 else z)
    d = (acts[L] - T) / X.shape[1]
    dWs = [None] * L
    dbs = [None] * L
    for i in range(L - 1, -1, -1):
        dWs[i] = acts[i] @ d.T
        dbs[i] = d.sum(axis=1)
        if i > 0:
            d = (Ws[i] @ d) * (1.0 - acts[i] ** 2)
    return dWs, dbs

def dict3(p, X, T):
    """three layers, dict of parameters, inline"""
    z1 = X @ p["W1"] + p["b1"]
    a1 = np.tanh(z1)
    z2 = a1 @ p["W2"] + p["b2"]
    a2 = np.tanh(z2)
    out = a2 @ p["W3"] + p["b3"]
    d3 = (out - T) / X.shape[0]
    g = {}
    g["W3"] = a2.T @ d3
    g["b3"] = d3.sum(axis=0)
    d2 = (d3 @ p["W3"].T) * (1 - a2 ** 2)
    g["W2"] = a1.T @ d2
    g["b2"] = d2.sum(axis=0)
    d1 = (d2 @ p["W2"].T) * (1 - a1 ** 2)
    g["W1"] = X.T @ d1
    g["b1"] = d1.sum(axis=0)
    return g

# (function, wrt, examples as "rows" or "cols", weights stored "oi" (out, in) or "io")
VARIANTS = [
    (cols_index, ("Ws", "bs"), "cols", "oi"),
    (cols_append, ("Ws", "bs"), "cols", "oi"),
    (rows_append, ("Ws", "bs"), "rows", "oi"),
    (rows_index, ("Ws", "bs"), "rows", "oi"),
    (rows_helper, ("Ws", "bs"), "rows", "oi"),
    (rows_wT, ("Ws", "bs"), "rows", "io"),
    (cols_wT, ("Ws", "bs"), "cols", "io"),
    (dict3, ("p",), "rows", "io"),
]
