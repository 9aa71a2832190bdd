"""Programs for the dead-slot release tests (tests/test_release.py), written as users write
per-layer code: a forward loop fills a list of activations, a backward loop reads it in
reverse.  Some read a slot again later, through another name or another index, or write it:
there the list must keep its arrays.

Each function takes (Ws, bs, X) with Ws, bs per-layer lists; the tests differentiate with
respect to (Ws, bs).
"""

import numpy as np


def backprop(Ws, bs, X):
    """The deep MLP's gradient: acts[i] is last read in backward iteration i (released)."""
    L = len(Ws)
    acts = [None] * (L + 1)
    acts[0] = X
    for i in range(L):
        acts[i + 1] = np.tanh(Ws[i] @ acts[i] + bs[i][:, None])
    d = acts[L] - 1.0
    dWs = [None] * L
    dbs = [None] * L
    for i in range(L - 1, -1, -1):
        dWs[i] = d @ acts[i].T
        dbs[i] = d.sum(axis=1)
        if i > 0:
            d = (Ws[i].T @ d) * (1.0 - acts[i] ** 2)
    return dWs, dbs


def reversed_loop(Ws, bs, X):
    """``for i in reversed(range(L))`` visits each slot once too (released)."""
    L = len(Ws)
    hs = []
    a = X
    for i in range(L):
        a = np.sin(Ws[i] @ a + bs[i][:, None])
        hs.append(a)
    s = 0.0
    for i in reversed(range(L)):
        s = s + np.sum(hs[i] * hs[i]) * (i + 1.0)
    return s


def kept_reference(Ws, bs, X):
    """A slot's array is taken out (``last = acts[i]``) and used after the loop: the release
    drops the list's reference only, ``last`` keeps the array alive."""
    L = len(Ws)
    acts = [None] * (L + 1)
    acts[0] = X
    for i in range(L):
        acts[i + 1] = np.tanh(Ws[i] @ acts[i] + bs[i][:, None])
    last = acts[L]
    for i in range(L, 0, -1):
        last = acts[i]
    return np.sum(last * last) + np.sum(Ws[0].T @ last)


def read_after_loop(Ws, bs, X):
    """acts[1] is read again after the backward loop: nothing is released."""
    L = len(Ws)
    acts = [None] * (L + 1)
    acts[0] = X
    for i in range(L):
        acts[i + 1] = np.tanh(Ws[i] @ acts[i] + bs[i][:, None])
    s = 0.0
    for i in range(L, 0, -1):
        s = s + np.sum(acts[i] ** 2)
    return s * np.sum(acts[1])


def shifted_read(Ws, bs, X):
    """Iteration i reads acts[i + 1] and acts[i], counting down: slot i + 1 is read for the
    last time in iteration i (released as ``rt.release(acts, i, 1)``)."""
    L = len(Ws)
    acts = [None] * (L + 1)
    acts[0] = X
    for i in range(L):
        acts[i + 1] = np.tanh(Ws[i] @ acts[i] + bs[i][:, None])
    s = 0.0
    for i in range(L - 1, -1, -1):
        s = s + np.sum(acts[i + 1] * 2.0) + np.sum(acts[i])
    return s


def aliased(Ws, bs, X):
    """The list has a second name read after the loop: nothing is released."""
    L = len(Ws)
    acts = [None] * (L + 1)
    acts[0] = X
    for i in range(L):
        acts[i + 1] = np.tanh(Ws[i] @ acts[i] + bs[i][:, None])
    saved = acts
    s = 0.0
    for i in range(L, 0, -1):
        s = s + np.sum(acts[i])
    return s + np.sum(saved[L])


def written_in_loop(Ws, bs, X):
    """The backward loop rewrites the slot it reads: nothing is released."""
    L = len(Ws)
    acts = [None] * (L + 1)
    acts[0] = X
    for i in range(L):
        acts[i + 1] = np.tanh(Ws[i] @ acts[i] + bs[i][:, None])
    s = 0.0
    for i in range(L, 0, -1):
        acts[i] = acts[i] * 3.0
        s = s + np.sum(acts[i])
    return s


def returns_list(Ws, bs, X):
    """The list is returned: it keeps every array."""
    L = len(Ws)
    acts = [None] * (L + 1)
    acts[0] = X
    for i in range(L):
        acts[i + 1] = np.tanh(Ws[i] @ acts[i] + bs[i][:, None])
    s = 0.0
    for i in range(L, -1, -1):
        s = s + np.sum(acts[i])
    return s, acts


def scalars(Ws, bs, X):
    """A list of floats holds no arrays: nothing to give back."""
    L = len(Ws)
    norms = [None] * L
    a = X
    for i in range(L):
        a = np.tanh(Ws[i] @ a + bs[i][:, None])
        norms[i] = np.sum(a * a)
    s = 0.0
    for i in range(L - 1, -1, -1):
        s = s + norms[i] * (i + 1.0)
    return s


def nested(Ws, bs, X):
    """The backward loop runs inside an outer loop, which reads the list again on its next
    trip: nothing is released (only top-level loops are considered)."""
    L = len(Ws)
    acts = [None] * (L + 1)
    acts[0] = X
    for i in range(L):
        acts[i + 1] = np.tanh(Ws[i] @ acts[i] + bs[i][:, None])
    s = 0.0
    for k in range(2):
        for i in range(L, 0, -1):
            s = s + np.sum(acts[i]) * (k + 1.0)
    return s


def bptt(Ws, bs, X):
    """Back-propagation through time: hs[t + 1] and hs[t] read counting down; slot t + 1 is
    read for the last time in iteration t (released)."""
    W = Ws[1][:Ws[1].shape[1], :]
    T = 4
    hs = [np.tanh(Ws[0] @ X + bs[0][:, None])]
    for t in range(T):
        hs.append(np.tanh(W @ hs[t]))
    dh = hs[T]
    s = 0.0
    for t in range(T - 1, -1, -1):
        da = dh * (1.0 - hs[t + 1] ** 2)
        s = s + np.sum(da * hs[t])
        dh = W.T @ da
    return s


def wraps_around(Ws, bs, X):
    """acts[i - 1] at i = 0 is the last slot (Python's negative index): nothing is released."""
    L = len(Ws)
    acts = [None] * (L + 1)
    acts[0] = X
    for i in range(L):
        acts[i + 1] = np.tanh(Ws[i] @ acts[i] + bs[i][:, None])
    s = 0.0
    for i in range(L + 1):
        s = s + np.sum(acts[i - 1]) * (i + 1.0)
    return s


def increasing_pairs(Ws, bs, X):
    """Counting up, acts[i] and acts[i + 1]: slot i is read for the last time in iteration i
    (released as ``rt.release(acts, i)``)."""
    L = len(Ws)
    acts = [None] * (L + 1)
    acts[0] = X
    for i in range(L):
        acts[i + 1] = np.tanh(Ws[i] @ acts[i] + bs[i][:, None])
    s = 0.0
    for i in range(1, L):
        s = s + np.sum(acts[i + 1]) * np.sum(acts[i] ** 2)
    return s


def layers_forward(Ws, bs, X):
    """A helper that returns the list of activations (inlined by rop)."""
    acts = [X]
    for i in range(len(Ws)):
        acts.append(np.tanh(Ws[i] @ acts[i] + bs[i][:, None]))
    return acts


def helper_returns_list(Ws, bs, X):
    """The list comes back from a helper under a new name: it is the same private list, and
    the backward loop releases it."""
    acts = layers_forward(Ws, bs, X)
    L = len(Ws)
    d = acts[L] - 1.0
    s = 0.0
    for i in range(L - 1, -1, -1):
        s = s + np.sum(d * 0.5) * np.sum(acts[i])
        if i > 0:
            d = (Ws[i].T @ d) * (1.0 - acts[i] ** 2)
    return s


def rebound_to_parameter(Ws, bs, X):
    """The name is bound to a list it built, then to the parameter list: releasing its slots
    would write into the caller's list, so nothing is released."""
    acts = [None] * 2
    acts[0] = X
    acts[1] = X * 2.0
    s = np.sum(acts[1])
    acts = Ws
    for i in range(len(Ws) - 1, -1, -1):
        s = s + np.sum(acts[i] ** 2)
    return s


def old_name_read_after_move(Ws, bs, X):
    """``b = a`` where ``a`` is read again later: ``b`` is an alias, nothing is released."""
    L = len(Ws)
    a = [None] * (L + 1)
    a[0] = X
    for i in range(L):
        a[i + 1] = np.tanh(Ws[i] @ a[i] + bs[i][:, None])
    b = a
    s = 0.0
    for i in range(L, -1, -1):
        s = s + np.sum(b[i])
    return s + np.sum(a[L])


def transposed_elements(Ws, bs, X):
    """A list of transposes (F-ordered views, stored as copies): released like any other."""
    hs = [X.T]
    a = X
    for i in range(len(Ws)):
        a = np.tanh(Ws[i] @ a + bs[i][:, None])
        hs.append(a.T)
    s = 0.0
    for i in range(len(Ws), -1, -1):
        s = s + np.sum(hs[i] ** 2)
    return s
