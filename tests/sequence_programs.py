"""Programs that loop over sequences (zip, enumerate, reversed, comprehensions) next to the same
computation written with counted loops; used by tests/test_sequences.py."""

import numpy as np


def mlp_for_each(Ws, bs, X, T):
    acts = [X]
    for W, b in zip(Ws, bs):
        acts.append(np.tanh(W @ acts[-1] + b[:, None]))
    d = (acts[-1] - T) * (1.0 - acts[-1] ** 2)
    dWs = []
    for W, a in zip(reversed(Ws), reversed(acts[:-1])):
        dWs.append(d @ a.T)
        d = (W.T @ d) * (1.0 - a ** 2)
    return [dWs[len(dWs) - 1 - i] for i in range(len(dWs))]


def mlp_counted(Ws, bs, X, T):
    L = len(Ws)
    acts = [X]
    for i in range(L):
        acts.append(np.tanh(Ws[i] @ acts[i] + bs[i][:, None]))
    d = (acts[L] - T) * (1.0 - acts[L] ** 2)
    dWs = [None] * L
    for i in range(L - 1, -1, -1):
        dWs[i] = d @ acts[i].T
        d = (Ws[i].T @ d) * (1.0 - acts[i] ** 2)
    return dWs


def mlp_zip(Ws, bs, X, T):
    h = X
    for W, b in zip(Ws, bs):
        h = np.tanh(W @ h + b[:, None])
    return 0.5 * np.sum((h - T) ** 2)


def mlp_range(Ws, bs, X, T):
    h = X
    for i in range(len(Ws)):
        h = np.tanh(Ws[i] @ h + bs[i][:, None])
    return 0.5 * np.sum((h - T) ** 2)


def backward_reversed(Ws, x):
    hs = []
    h = x
    for W in Ws:
        h = np.tanh(W @ h)
        hs.append(h)
    g = np.ones_like(h)
    s = 0.0
    for h in reversed(hs):
        s = s + np.sum(g * h)
    return s


def transposes(Ws, x):
    ts = [W.T for W in Ws]
    return [np.tanh(T @ x[:T.shape[1]]) for T in ts], enumerate_start(Ws)


def enumerate_start(Ws):
    s = 0.0
    for i, W in enumerate(Ws, start=2):
        s = s + i * np.sum(W ** 2)
    return s


def sum_of_arrays(Ws, x):
    return sum(np.tanh(W @ x) for W in Ws)
