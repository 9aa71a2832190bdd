"""Programs for the slot-level activity tests (tests/test_slots.py), written as users write
per-layer code: lists of activations whose slot 0 holds the (inactive) input, and variants
where that slot is, or may be, overwritten by an active value, so that the products with
R{slot 0} must stay.

Each function takes (Ws, bs, X) with Ws, bs per-layer lists; the tests differentiate
with respect to (Ws, bs).
"""

import numpy as np


def forward_backward(Ws, bs, X):
    """The deep MLP's backprop: R{acts[0]} = 0 forward and backward (two versioned products)."""
    L = len(Ws)
    acts = [None] * (L + 1)
    acts[0] = X
    for i in range(L):
        h = Ws[i] @ acts[i] + bs[i][:, None]
        acts[i + 1] = np.tanh(h)
    d = acts[L] - 1.0
    dWs = [None] * L
    for i in range(L - 1, -1, -1):
        dWs[i] = d @ acts[i].T
        if i > 0:
            d = (Ws[i].T @ d) * (1.0 - acts[i] ** 2)
    return dWs


def reversed_range(Ws, bs, X):
    """``for i in reversed(range(L))``: the counter's lower bound is read from the stop."""
    L = len(Ws)
    acts = [None] * (L + 1)
    acts[0] = X
    for i in range(L):
        acts[i + 1] = np.sin(Ws[i] @ acts[i] + bs[i][:, None])
    out = np.zeros(X.shape)
    for i in reversed(range(L)):
        out = out + np.sum(acts[i + 1] * acts[i + 1]) * X
        if i == 0:
            out = out + Ws[0].T @ (Ws[0] @ acts[i])
    return out


def literal_list(Ws, bs, X):
    """A list literal whose first element is inactive."""
    h = np.tanh(Ws[0] @ X + bs[0][:, None])
    acts = [X, h]
    s = 0.0
    for i in range(2):
        s = s + np.sum(Ws[i] @ acts[i])
    return s


def overwritten_slot(Ws, bs, X):
    """Slot 0 gets an active value after the input: nothing may be dropped."""
    L = len(Ws)
    acts = [None] * (L + 1)
    acts[0] = X
    acts[0] = np.tanh(X * bs[0][0])
    for i in range(L):
        acts[i + 1] = np.tanh(Ws[i] @ acts[i] + bs[i][:, None])
    return acts[L]


def writes_at_counter(Ws, bs, X):
    """``acts[i] = ...`` for i from 0 writes slot 0: nothing may be dropped."""
    L = len(Ws)
    acts = [None] * (L + 1)
    acts[0] = X
    acts[L] = X
    for i in range(L):
        acts[i] = acts[i] * bs[i][0] if i == 0 else acts[i]
        acts[i + 1] = np.tanh(Ws[i] @ acts[i] + bs[i][:, None])
    return acts[L]


def negative_index_write(Ws, bs, X):
    """A write at a negative index may land on slot 0 (a one-slot list): kept."""
    acts = [None] * 1
    acts[0] = X
    acts[-1] = np.tanh(Ws[0] @ X + bs[0][:, None])
    return Ws[1] @ acts[0]


def shifted_write(Ws, bs, X):
    """Writes at ``i - 1`` for i from 1 land on slot 0: kept."""
    L = len(Ws)
    acts = [None] * (L + 1)
    for j in range(L + 1):
        acts[j] = X
    for i in range(1, L + 1):
        acts[i - 1] = np.tanh(bs[i - 1][0] * X + Ws[0][0, 0])
    return Ws[0] @ acts[0] + acts[L - 1][0, 0]


def appended(Ws, bs, X):
    """A list built with ``append``: slot 0 inactive, then active slots."""
    acts = []
    acts.append(X)
    for i in range(len(Ws)):
        acts.append(np.tanh(Ws[i] @ acts[i] + bs[i][:, None]))
    return acts[len(Ws)]


def branch_fact(Ws, bs, X):
    """Reads of acts[i] under ``if i >= 1`` / ``if 0 < i`` never see slot 0."""
    L = len(Ws)
    acts = [None] * (L + 1)
    acts[0] = X
    for i in range(L):
        acts[i + 1] = np.tanh(Ws[i] @ acts[i] + bs[i][:, None])
    s = 0.0
    for i in range(L + 1):
        if i >= 1:
            s = s + np.sum(acts[i] * acts[i])
        if 0 < i:
            s = s + np.sum(acts[i])
    return s


def while_layers(Ws, bs, X):
    """A while loop over the layers: the counter is a plain variable (no bound is taken)."""
    L = len(Ws)
    acts = [None] * (L + 1)
    acts[0] = X
    i = 0
    while i < L:
        acts[i + 1] = np.tanh(Ws[i] @ acts[i] + bs[i][:, None])
        i = i + 1
    return acts[L]


def inactive_weights(Ws, bs, X):
    """Only the biases are differentiated: ``Ws[i] @ R{acts[i]}`` alone is versioned to zero."""
    L = len(Ws)
    acts = [None] * (L + 1)
    acts[0] = X
    for i in range(L):
        acts[i + 1] = np.tanh(Ws[i] @ acts[i] + bs[i][:, None])
    return acts[L]


def zero_slot_rewritten_inactive(Ws, bs, X):
    """Slot 1 is made inactive again at a constant index after the loop: its reads drop out."""
    L = len(Ws)
    acts = [None] * (L + 1)
    acts[0] = X
    for i in range(L):
        acts[i + 1] = np.tanh(Ws[i] @ acts[i] + bs[i][:, None])
    acts[1] = X
    return Ws[0].T @ (Ws[0] @ acts[1]) + acts[L][0, 0]


def write_below_slot(Ws, bs, X):
    """Slot 1 starts inactive; writes at i for i from 0 may land on it: kept."""
    acts = [None] * 3
    acts[0] = X
    acts[1] = X
    acts[2] = X
    for i in range(2):
        acts[i] = acts[i] * bs[0][0]
    return Ws[0] @ acts[1]


def copies_slot(Ws, bs, X):
    """A value read from the zero slot is stored elsewhere: slot 0 must hold a real zero."""
    L = len(Ws)
    acts = [None] * (L + 1)
    acts[0] = X
    for i in range(L):
        acts[i + 1] = np.tanh(Ws[i] @ acts[i] + bs[i][:, None])
    outs = [None] * (L + 1)
    for i in range(L + 1):
        outs[i] = acts[i] * 2.0
    return outs


def returns_list(Ws, bs, X):
    """The list itself is returned: its R is returned with R{acts[0]} = 0."""
    L = len(Ws)
    acts = [None] * (L + 1)
    acts[0] = X
    for i in range(L):
        acts[i + 1] = np.tanh(Ws[i] @ acts[i] + bs[i][:, None])
    return acts


def read_at_length(Ws, bs, X):
    """``acts[L]`` after the loop: slot 0 when L == 0, so the read is guarded, not a zero."""
    L = len(Ws)
    acts = [None] * (L + 1)
    acts[0] = X
    for i in range(L):
        acts[i + 1] = np.tanh(Ws[i] @ acts[i] + bs[i][:, None])
    d = acts[L] - 1.0
    for i in range(L - 1, -1, -1):
        d = d * 0.5 + np.sum(acts[i] @ acts[i].T)
    return d


def reread_name(Ws, bs, X):
    """One name read from the list at two indices: ``acts[L]`` (guarded: slot 0 if L == 0),
    then ``acts[i]`` in a loop.  Each read keeps its own index in the R-code."""
    L = len(Ws)
    acts = [None] * (L + 1)
    acts[0] = X
    for i in range(L):
        acts[i + 1] = np.tanh(Ws[i] @ acts[i] + bs[i][:, None])
    last = acts[L]
    s = np.sum(last)
    for i in range(L, 0, -1):
        last = acts[i]
        s = s + np.sum(last * last)
    return s + np.sum(Ws[0].T @ last)


def appended_literal(Ws, bs, X):
    """``acts = [X]`` grown by appends and read at ``acts[-1]`` (the habit of code written
    with examples as rows): an append never lands on slot 0, and ``acts[-1]`` is slot 0
    exactly while the list holds X alone (``len(acts) == 1``)."""
    acts = [X]
    for i in range(len(Ws)):
        acts.append(np.tanh(Ws[i] @ acts[-1] + bs[i][:, None]))
    d = acts[-1]
    dWs = []
    for i in range(len(Ws) - 1, -1, -1):
        dWs.append(d @ acts[i].T)
        d = (Ws[i].T @ d) * (1.0 - acts[i] ** 2)
    return dWs


def appended_literal_active(Ws, bs, X):
    """The same, but the literal's second value is active: ``acts[-1]`` hits no zero slot
    once the list holds it, and slot 1 is never read as zero."""
    acts = [X, np.tanh(Ws[0] @ X + bs[0][:, None])]
    for i in range(1, len(Ws)):
        acts.append(np.tanh(Ws[i] @ acts[-1] + bs[i][:, None]))
    return acts[-1] + acts[1].sum()


def negative_counter_read(Ws, bs, X):
    """Nielsen's backward loop reads ``acts[-l - 1]``: an index that may be negative reaches
    slot 0 at ``-l - 1 == -len(acts)``, not at 0, so no product may be versioned on it."""
    acts = [X]
    for i in range(len(Ws)):
        acts.append(np.tanh(Ws[i] @ acts[-1] + bs[i][:, None]))
    d = acts[-1]
    for l in range(1, len(Ws) + 1):
        d = (Ws[-l].T @ d) * acts[-l - 1]
    return d


def _layer(W, b, x):
    return np.tanh(W @ x + b[:, None])


def carried_from_input(Ws, bs, X):
    """The input carried around the forward loop in a plain name (a helper per layer, as
    courses write it): R{x} is zero exactly in the first iteration, so the first layer's
    ``R{x} @ W.T`` is versioned on ``i == 0``, as a read of a zero slot is."""
    x = X
    acts = [X]
    for i in range(len(Ws) - 1):
        x = _layer(Ws[i], bs[i], x)
        acts.append(x)
    out = Ws[-1] @ x + bs[-1][:, None]
    d = out
    dWs = []
    for i in range(len(Ws) - 1, -1, -1):
        dWs.append(d @ acts[i].T)
        d = (Ws[i].T @ d) * (1.0 - acts[i] ** 2)
    return dWs


def carried_from_one(Ws, bs, X):
    """The same from a loop that starts at 1: the version is on ``i == 1``."""
    x = np.tanh(Ws[0] @ X + bs[0][:, None])
    y = np.ones((4, 1)) * X[0] * 0.5
    for i in range(1, len(Ws)):
        z = Ws[i] @ y
        x = np.tanh(Ws[i] @ x + bs[i][:, None]) + z[:, :1]
        y = x
    return x


def carried_conditional(Ws, bs, X):
    """Assigned only every other iteration: R{x} is zero in iteration 0 and 1 (versioned on
    ``i == 0`` only; iteration 1 takes the full rule, where the zero is multiplied)."""
    W = Ws[1][:4, :4]
    x = np.ones((4, 1)) * X[0]
    s = 0.0
    for i in range(4):
        h = W @ x
        s = s + h.sum()
        if i % 2 == 1:
            x = np.tanh(h + bs[1][:4, None])
    return s + x.sum()


def carried_nested(Ws, bs, X):
    """Reassigned in an inner loop: inside it, R{x} is zero only when both loops are in their
    first iteration, so the inner read is not versioned on the outer counter (nor on the
    inner one: in the outer loop's second pass x is active when the inner loop starts)."""
    W = Ws[1][:4, :4]
    x = np.ones((4, 1)) * X[0]
    for i in range(2):
        for j in range(2):
            x = np.tanh(W @ x + bs[1][:4, None])
    return x


def carried_appended(Ws, bs, X):
    """A list that starts empty is grown in the loop: appends change it with no assignment,
    so nothing is versioned on it."""
    hs = []
    W = Ws[1][:4, :4]
    x = np.ones((4, 1)) * X[0]
    for i in range(3):
        if i > 0:
            x = x + hs[-1]
        hs.append(np.tanh(W @ x + bs[1][:4, None]))
    return x + hs[-1]


# --- tuple positions (rop/transforms/slots.py: TuplePositions): per-step caches as tuples in
# a list, as courses write an RNN; the input's position has R = 0 where it is read back.

def _rnn_step(Wx, A, b, x, h_prev):
    """One step as courses write it: the next state and the cache the backward pass reads."""
    h = np.tanh(Wx @ x + A @ h_prev + b[:, None])
    cache = (x, h_prev, h)
    return h, cache


def tuple_cache_input(Ws, bs, X):
    """``caches.append((x, h_prev, h))``, read back ``x, h_prev, h = caches[t]``: no R{x}."""
    A = Ws[1][:4, :]
    h = np.zeros((4, 1))
    caches = []
    for t in range(X.shape[1]):
        x = X[:, t:t + 1]
        h_prev = h
        h = np.tanh(Ws[0] @ x + A @ h_prev + bs[0][:, None])
        caches.append((x, h_prev, h))
    dh = h - 0.5
    dW, dA = np.zeros_like(Ws[0]), np.zeros_like(A)
    for t in range(X.shape[1] - 1, -1, -1):
        x, h_prev, h = caches[t]
        da = dh * (1.0 - h ** 2)
        dW += da @ x.T
        dA += da @ h_prev.T
        dh = A.T @ da
    return dW, dA


def tuple_cache_var(Ws, bs, X):
    """The cache made by a step helper (``cache = (...)``; ``return h, cache``), appended."""
    A = Ws[1][:4, :]
    h = np.zeros((4, 1))
    caches = []
    for t in range(X.shape[1]):
        h, cache = _rnn_step(Ws[0], A, bs[0], X[:, t:t + 1], h)
        caches.append(cache)
    dh = h - 0.5
    dW = np.zeros_like(Ws[0])
    for t in reversed(range(X.shape[1])):
        x, h_prev, h = caches[t]
        da = dh * (1.0 - h ** 2)
        dW = dW + da @ x.T
        dh = A.T @ da
    return dW


def tuple_position_active_later(Ws, bs, X):
    """Position 0 holds the input in the first steps and an active value after: R kept."""
    caches = []
    h = np.zeros((4, 1))
    for t in range(X.shape[1]):
        x = X[:, t:t + 1]
        h = np.tanh(Ws[0] @ x + h + bs[0][:, None])
        if t < 2:
            caches.append((x, h))
        else:
            caches.append((Ws[0].T @ h, h))
    out = np.zeros_like(Ws[0])
    for t in range(X.shape[1]):
        x, h = caches[t]
        out = out + h @ x.T
    return out


def tuple_read_whole(Ws, bs, X):
    """The cached tuple used whole (``np.vstack(caches[t])``): its zeros are real values."""
    caches = []
    for t in range(X.shape[1]):
        x = X[:, t:t + 1]
        caches.append((x, np.tanh(Ws[0].T @ (Ws[0] @ x))))
    out = np.zeros((6, 1))
    for t in range(X.shape[1]):
        out = out + np.vstack(caches[t]) * (t + 1.0)
    return out


def tuple_list_literal(Ws, bs, X):
    """A list made with a tuple in it, then appended to; the input's position stays zero."""
    h = np.tanh(Ws[0] @ X[:, 0:1])
    caches = [(X[:, 0:1], h)]
    for t in range(1, X.shape[1]):
        h = np.tanh(Ws[0] @ X[:, t:t + 1] + h)
        caches.append((X[:, t:t + 1], h))
    g = np.zeros_like(Ws[0])
    for t in range(X.shape[1]):
        x, h = caches[t]
        g = g + (h * h) @ x.T
    return g
