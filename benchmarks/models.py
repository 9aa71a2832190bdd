"""Three models written the way courses and tutorials write backprop, for bench_models.py
(issue 22, "speed on code as users write it"): examples in rows (``X @ W + b``), integer class
labels, a CS231n-style ``softmax_loss`` helper returning ``(loss, dscores)``, hidden states in a
list built by ``append``, the LSTM's per-step caches as tuples appended in the forward loop and
unpacked in the backward loop.

* ``classifier(Ws, bs, X, y)``: tanh hidden layers, a linear output layer, mean softmax
  cross-entropy; ``Ws[i]`` is (in, out).  Output (for ``.gvp``): the logits ``scores``.
* ``rnn(Wxh, Whh, bh, Why, by, h0, X, y)``: vanilla tanh RNN over T steps,
  ``h_{t+1} = tanh(X[t] @ Wxh + h_t @ Whh + bh)``, logits ``h_{t+1} @ Why + by`` at every step,
  the loss the sum over steps of the batch-mean softmax cross-entropy; BPTT.  ``X`` is
  (T, N, D), ``y`` (T, N) integer labels.  Output: the per-step logits ``ys``.  The per-step
  loss is computed in the backward loop: computed in the forward loop, right after
  ``ys.append(...)`` (``softmax_loss(ys[-1], y[t])``, the dy's kept in a list), ``.gvp``
  returned G v = 0 before rop refused it (the loss must begin after the loop that finishes
  the output: benchmarks/README.md).
* ``lstm(Wx, Wh, b, Wy, by, h0, X, y)``: one LSTM layer (gates i, f, o, g stacked in the 4H
  columns of ``Wx`` (D, 4H), ``Wh`` (H, 4H), ``b`` (4H), as CS231n), c_0 = 0, a softmax
  classifier on the last hidden state; BPTT through the stored caches.  Output: ``scores``.

Each returns ``(loss, gradients...)``; ``.hvp`` returns those and their R{.}: R{loss} = g·v,
and the Hessian-vector product.  ``make(model, size)`` builds the arrays (float64; the same
for every method of the benchmark), ``SIZES`` the two sizes of each model.
"""

from __future__ import annotations

import numpy as np

from rop import rop


# --------------------------------------------------------------------------- helpers
def softmax_loss(scores, y):
    """Mean softmax cross-entropy of the rows of ``scores`` (N, C) with integer labels ``y``
    (N,), and its gradient with respect to ``scores`` (CS231n's ``softmax_loss``)."""
    shifted = scores - np.max(scores, axis=1, keepdims=True)
    Z = np.sum(np.exp(shifted), axis=1, keepdims=True)
    log_probs = shifted - np.log(Z)
    probs = np.exp(log_probs)
    N = scores.shape[0]
    loss = -np.sum(log_probs[np.arange(N), y]) / N
    dscores = probs.copy()
    dscores[np.arange(N), y] -= 1
    dscores /= N
    return loss, dscores


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# --------------------------------------------------------------------------- classifier
@rop(wrt=("Ws", "bs"), output="scores")
def classifier(Ws, bs, X, y):
    """Loss and gradient of a tanh network with a softmax output, examples in rows."""
    hs = [X]
    for W, b in zip(Ws[:-1], bs[:-1]):
        hs.append(np.tanh(hs[-1] @ W + b))
    scores = hs[-1] @ Ws[-1] + bs[-1]
    loss, dscores = softmax_loss(scores, y)
    dWs, dbs = [], []
    d = dscores
    for i in range(len(Ws) - 1, -1, -1):
        dWs.append(hs[i].T @ d)
        dbs.append(d.sum(axis=0))
        if i > 0:
            d = (d @ Ws[i].T) * (1 - hs[i] ** 2)
    return loss, dWs[::-1], dbs[::-1]


# --------------------------------------------------------------------------- RNN
@rop(wrt=("Wxh", "Whh", "bh", "Why", "by"), output="ys")
def rnn(Wxh, Whh, bh, Why, by, h0, X, y):
    """Loss and gradient (BPTT) of a vanilla tanh RNN with a softmax output at every step."""
    T = X.shape[0]
    hs = [h0]
    ys = []
    for t in range(T):
        hs.append(np.tanh(X[t] @ Wxh + hs[-1] @ Whh + bh))
        ys.append(hs[-1] @ Why + by)
    loss = 0.0
    dWxh, dWhh, dbh = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(bh)
    dWhy, dby = np.zeros_like(Why), np.zeros_like(by)
    dh_next = np.zeros_like(h0)
    for t in reversed(range(T)):
        loss_t, dy = softmax_loss(ys[t], y[t])
        loss += loss_t
        dWhy += hs[t + 1].T @ dy
        dby += dy.sum(axis=0)
        dh = dy @ Why.T + dh_next
        draw = (1 - hs[t + 1] ** 2) * dh
        dWxh += X[t].T @ draw
        dWhh += hs[t].T @ draw
        dbh += draw.sum(axis=0)
        dh_next = draw @ Whh.T
    return loss, dWxh, dWhh, dbh, dWhy, dby


# --------------------------------------------------------------------------- LSTM
@rop(wrt=("Wx", "Wh", "b", "Wy", "by"), output="scores")
def lstm(Wx, Wh, b, Wy, by, h0, X, y):
    """Loss and gradient (BPTT) of one LSTM layer over T steps and a softmax classifier on the
    last hidden state."""
    T = X.shape[0]
    H = h0.shape[1]
    h = h0
    c = np.zeros_like(h0)
    caches = []
    for t in range(T):
        a = X[t] @ Wx + h @ Wh + b
        i = sigmoid(a[:, :H])
        f = sigmoid(a[:, H:2 * H])
        o = sigmoid(a[:, 2 * H:3 * H])
        g = np.tanh(a[:, 3 * H:])
        h_prev, c_prev = h, c
        c = f * c_prev + i * g
        h = o * np.tanh(c)
        caches.append((X[t], h_prev, c_prev, i, f, o, g, c))
    scores = h @ Wy + by
    loss, dscores = softmax_loss(scores, y)
    dWy = h.T @ dscores
    dby = dscores.sum(axis=0)
    dh = dscores @ Wy.T
    dc = np.zeros_like(h0)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    for t in reversed(range(T)):
        x, h_prev, c_prev, i, f, o, g, c = caches[t]
        tanh_c = np.tanh(c)
        do = dh * tanh_c
        dc = dc + dh * o * (1 - tanh_c ** 2)
        df = dc * c_prev
        di = dc * g
        dg = dc * i
        dc = dc * f
        da = np.hstack((di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g ** 2)))
        dWx += x.T @ da
        dWh += h_prev.T @ da
        db += da.sum(axis=0)
        dh = da @ Wh.T
    return loss, dWx, dWh, db, dWy, dby


# --------------------------------------------------------------------------- sizes and data
MODELS = ("classifier", "rnn", "lstm")
FUNCS = {"classifier": classifier, "rnn": rnn, "lstm": lstm}

SIZES = {
    "classifier": {"small": dict(N=64, layers=[64, 32, 10]),
                   "large": dict(N=1024, layers=[784, 256, 10])},
    "rnn": {"small": dict(T=10, N=16, D=8, H=32, K=8),
            "large": dict(T=50, N=64, D=64, H=256, K=64)},
    "lstm": {"small": dict(T=5, N=8, D=8, H=16, K=4),
             "large": dict(T=20, N=64, D=64, H=256, K=10)},
}


_PYTHON = {}


def python_mode(model):
    """The model's rop function with ``mode="python"``: the same generated code, run without
    Numba (no Numba compile: for the smoke test)."""
    if model not in _PYTHON:
        f = FUNCS[model]
        _PYTHON[model] = rop(wrt=f.wrt, output=f.output, mode="python")(f.fn)
    return _PYTHON[model]


def size_label(model, size):
    s = SIZES[model][size]
    if model == "classifier":
        return "-".join(map(str, s["layers"])) + f", N={s['N']}"
    return f"T={s['T']}, N={s['N']}, D={s['D']}, H={s['H']}, K={s['K']}"


def make(model, size, seed=0):
    """The arrays of one model and size: ``dict(params=[...], data=[...], v=[...])``;
    ``params`` in ``wrt`` order (the classifier's two lists), ``data`` the
    remaining arguments, ``v`` a direction shaped like ``params``.  Weights are scaled so the
    units are not saturated (so the Hessian is not dominated by one term)."""
    rng = np.random.default_rng(seed)
    s = SIZES[model][size]

    def direction(ps):
        return [[rng.normal(size=p.shape) for p in q] if isinstance(q, list)
                else rng.normal(size=q.shape) for q in ps]

    if model == "classifier":
        L = s["layers"]
        Ws = [rng.normal(size=(m, k)) / np.sqrt(m) for m, k in zip(L[:-1], L[1:])]
        bs = [0.1 * rng.normal(size=k) for k in L[1:]]
        X = rng.normal(size=(s["N"], L[0]))
        y = rng.integers(0, L[-1], size=s["N"])
        params = [Ws, bs]
        data = [X, y]
    elif model == "rnn":
        T, N, D, H, K = (s[k] for k in "TNDHK")
        params = [rng.normal(size=(D, H)) / np.sqrt(D), 0.9 * rng.normal(size=(H, H)) / np.sqrt(H),
                  0.1 * rng.normal(size=H), rng.normal(size=(H, K)) / np.sqrt(H),
                  0.1 * rng.normal(size=K)]
        data = [0.5 * rng.normal(size=(N, H)), rng.normal(size=(T, N, D)),
                rng.integers(0, K, size=(T, N))]
    else:
        T, N, D, H, K = (s[k] for k in "TNDHK")
        b = 0.1 * rng.normal(size=4 * H)
        b[H:2 * H] += 1.0   # forget-gate bias 1, as usual
        params = [rng.normal(size=(D, 4 * H)) / np.sqrt(D),
                  rng.normal(size=(H, 4 * H)) / np.sqrt(H), b,
                  rng.normal(size=(H, K)) / np.sqrt(H), 0.1 * rng.normal(size=K)]
        data = [0.5 * rng.normal(size=(N, H)), rng.normal(size=(T, N, D)),
                rng.integers(0, K, size=N)]
    return dict(params=params, data=data, v=direction(params))
