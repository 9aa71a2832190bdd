"""Backprop programs for the Gauss-Newton product (tests/test_gauss_newton.py).

Each returns the gradient of a loss that is convex in the named output, written by hand as
the seeds and the courses write it; the ``output`` each is compiled with is given in the
test.  Helpers are module-level functions, inlined by rop.
"""

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# Martens' slide: logistic hidden layer, linear output, squared error (mean over the batch)
def seed_mlp(W1, b1, W2, b2, X, T):
    y1 = sigmoid(W1 @ X + b1[:, None])
    y2 = W2 @ y1 + b2[:, None]
    d2 = (y2 - T) / X.shape[1]
    d1 = (W2.T @ d2) * y1 * (1.0 - y1)
    return d1 @ X.T, d1.sum(axis=1), d2 @ y1.T, d2.sum(axis=1)


# examples in rows, tanh hidden layers, squared error with the 1/2
def rows_tanh(W1, b1, W2, b2, W3, b3, X, Y):
    h1 = np.tanh(X @ W1.T + b1)
    h2 = np.tanh(h1 @ W2.T + b2)
    out = h2 @ W3.T + b3
    d3 = out - Y
    d2 = (d3 @ W3) * (1 - h2 ** 2)
    d1 = (d2 @ W2) * (1 - h1 ** 2)
    return d1.T @ X, d1.sum(0), d2.T @ h1, d2.sum(0), d3.T @ h2, d3.sum(0)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# ReLU hidden layer, softmax cross-entropy on the logits, integer labels (CS231n's style)
def relu_softmax(W1, b1, W2, b2, X, y):
    h = np.maximum(0, X @ W1 + b1)
    scores = h @ W2 + b2
    p = softmax(scores)
    n = X.shape[0]
    loss = -np.mean(np.log(p[np.arange(n), y]))
    dscores = p.copy()
    dscores[np.arange(n), y] -= 1
    dscores /= n
    dh = dscores @ W2.T
    dh[h <= 0] = 0
    return loss, X.T @ dh, dh.sum(axis=0), h.T @ dscores, dscores.sum(axis=0)


# per-layer lists: hidden layers in a loop (activations appended), the linear output after it
def layer_lists(Ws, bs, W_out, b_out, X, T):
    acts = [X]
    for W, b in zip(Ws, bs):
        acts.append(np.tanh(W @ acts[-1] + b[:, None]))
    y = W_out @ acts[-1] + b_out[:, None]
    delta = y - T
    dW_out = delta @ acts[-1].T
    db_out = delta.sum(axis=1)
    d = (W_out.T @ delta) * (1 - acts[-1] ** 2)
    dWs = [None] * len(Ws)
    dbs = [None] * len(Ws)
    for l in range(len(Ws) - 1, -1, -1):
        dWs[l] = d @ acts[l].T
        dbs[l] = d.sum(axis=1)
        if l > 0:
            d = (Ws[l].T @ d) * (1 - acts[l] ** 2)
    return dWs, dbs, dW_out, db_out


# a recurrent network over time; the outputs of every step (a list) are where the loss begins
def rnn_bptt(Wxh, Whh, Why, h0, xs, ts):
    hs = [h0]
    ys = []
    for t in range(len(xs)):
        hs.append(np.tanh(Wxh @ xs[t] + Whh @ hs[-1]))
        ys.append(Why @ hs[-1])
    dWxh = np.zeros_like(Wxh)
    dWhh = np.zeros_like(Whh)
    dWhy = np.zeros_like(Why)
    dh_next = np.zeros_like(h0)
    for t in range(len(xs) - 1, -1, -1):
        dy = ys[t] - ts[t]
        dWhy += np.outer(dy, hs[t + 1])
        dh = Why.T @ dy + dh_next
        draw = (1 - hs[t + 1] ** 2) * dh
        dWxh += np.outer(draw, xs[t])
        dWhh += np.outer(draw, hs[t])
        dh_next = Whh.T @ draw
    return dWxh, dWhh, dWhy


# linear in its parameters (softmax regression): G is the Hessian itself
def softmax_regression(W, b, X, y):
    logits = X @ W + b
    p = softmax(logits)
    n = X.shape[0]
    dlogits = p.copy()
    dlogits[np.arange(n), y] -= 1
    dlogits /= n
    return X.T @ dlogits, dlogits.sum(axis=0)


# logistic output with cross-entropy, the output named at the pre-activation (matching pair)
def logistic_ce(w1, W2, X, Y):
    h = np.tanh(W2 @ X)
    z = w1 @ h
    a = sigmoid(z)
    dz = (a - Y) / X.shape[1]
    dh = np.outer(w1, dz) * (1 - h ** 2)
    return dz @ h.T, dh @ X.T


def affine_forward(x, w, b):
    out = x.reshape(x.shape[0], -1).dot(w) + b
    cache = (x, w, b)
    return out, cache


def affine_backward(dout, cache):
    x, w, b = cache
    dx = dout.dot(w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T.dot(dout)
    db = np.sum(dout, axis=0)
    return dx, dw, db


def softmax_loss(x, y):
    shifted = x - np.max(x, axis=1, keepdims=True)
    Z = np.sum(np.exp(shifted), axis=1, keepdims=True)
    log_probs = shifted - np.log(Z)
    probs = np.exp(log_probs)
    N = x.shape[0]
    loss = -np.sum(log_probs[np.arange(N), y]) / N
    dx = probs.copy()
    dx[np.arange(N), y] -= 1
    dx /= N
    return loss, dx


# a dict of parameters, layer helpers with caches, grads in a dict (CS231n's two-layer net)
def dict_two_layer(params, X, y):
    h, cache1 = affine_forward(X, params['W1'], params['b1'])
    a = np.maximum(0, h)
    scores, cache2 = affine_forward(a, params['W2'], params['b2'])
    loss, dscores = softmax_loss(scores, y)
    grads = {}
    da, grads['W2'], grads['b2'] = affine_backward(dscores, cache2)
    dh = da * (h > 0)
    _, grads['W1'], grads['b1'] = affine_backward(dh, cache1)
    return loss, grads


# the output stored in the list of activations after it is computed: the list's slots carry
# it (the activations before it are held fixed)
def output_appended_after(W1, W2, X, T):
    acts = [X]
    acts.append(np.tanh(W1 @ X))
    y = W2 @ acts[-1]
    acts.append(y)
    d = acts[-1] - T
    dh = (W2.T @ d) * (1 - acts[1] ** 2)
    return dh @ acts[0].T, d @ acts[1].T


# refused: the output is computed and stored in the same loop, and the loss reads the list
def output_read_through_list(Ws, X, T):
    acts = [X]
    for W in Ws:
        acts.append(np.tanh(W @ acts[-1]))
    y = acts[-1]
    d = (acts[-1] - T) * (1 - y ** 2)
    return [d @ acts[-2].T]


# the per-layer list of activations whose last slot is the output (examples/deep_mlp.py)
def deep_mlp_slot(Ws, bs, X, T):
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


# ---------------------------------------------------------------- structural damping
# (tests/test_structural_damping.py): each names its hidden values and their gradients

# the seed MLP with the hidden layer's pre-activation named: hidden={"a1": "d1"}
def seed_mlp_named(W1, b1, W2, b2, X, T):
    a1 = W1 @ X + b1[:, None]
    y1 = sigmoid(a1)
    y2 = W2 @ y1 + b2[:, None]
    d2 = (y2 - T) / X.shape[1]
    d1 = (W2.T @ d2) * y1 * (1.0 - y1)
    return d1 @ X.T, d1.sum(axis=1), d2 @ y1.T, d2.sum(axis=1)


# a deep MLP whose backward pass names the gradient of each hidden layer's activities:
# hidden={"acts[i]": "dh"} with output="acts[L]"
def deep_mlp_named(Ws, bs, X, T):
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
            dh = Ws[i].T @ d
            d = dh * (1.0 - acts[i] ** 2)
    return dWs, dbs


# refused: the backward pass reuses the hidden value's name
def hidden_rebound(W1, W2, X, T):
    h = np.tanh(W1 @ X)
    y = W2 @ h
    d = y - T
    dh = W2.T @ d
    h = dh * (1 - np.tanh(W1 @ X) ** 2)
    return h @ X.T, d @ np.tanh(W1 @ X).T


def loss_in_the_output_loop(W, X, T):
    """The residual of each step computed in the loop that builds the outputs (helper-found:
    G v was silently zero); refused at the line: the loss must begin after the loop."""
    ys, ds = [], []
    for t in range(X.shape[0]):
        ys.append(X[t] @ W)
        ds.append(ys[-1] - T[t])
    dW = np.zeros_like(W)
    for t in range(X.shape[0]):
        dW += X[t].T @ ds[t]
    return dW


def loss_in_the_output_loop_local(W, X, T):
    """The same through the local name that is appended to the outputs."""
    ys, ds = [], []
    for t in range(X.shape[0]):
        y = X[t] @ W
        ys.append(y)
        ds.append(y - T[t])
    dW = np.zeros_like(W)
    for t in range(X.shape[0]):
        dW += X[t].T @ ds[t]
    return dW
