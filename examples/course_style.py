"""Backprop as the courses write it, compiled as written: a dict of parameters, layer helpers
that return ``(out, cache)``, ``loss(params, X, y=None, reg=0.0)`` that returns the scores when
``y is None``, the ReLU backward ``dx[x <= 0] = 0`` and an ``assert``.

rop specialises on what decides the code (``y`` is None or not, the dict's keys), takes the
dict's arrays one by one, and gives the Hessian-vector product back as a dict with the
gradient's keys.  Hv is checked against central differences of the function itself; then
the largest eigenvalue of the Hessian comes from a few power iterations on dicts.

Run:  python examples/course_style.py
"""

import numpy as np

from rop import rop


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


def relu_forward(x):
    out = np.maximum(0, x)
    cache = x
    return out, cache


def relu_backward(dout, cache):
    dx, x = None, cache
    dx = dout.copy()
    dx[x <= 0] = 0
    return dx


def softmax_loss(x, y):
    shifted_logits = x - np.max(x, axis=1, keepdims=True)
    Z = np.sum(np.exp(shifted_logits), axis=1, keepdims=True)
    log_probs = shifted_logits - np.log(Z)
    probs = np.exp(log_probs)
    N = x.shape[0]
    loss = -np.sum(log_probs[np.arange(N), y]) / N
    dx = probs.copy()
    dx[np.arange(N), y] -= 1
    dx /= N
    return loss, dx


@rop(wrt=("params",))
def loss(params, X, y=None, reg=0.0):
    """Two-layer net: affine - relu - affine - softmax.  Scores if y is None, else
    (loss, grads) with grads[k] the gradient with respect to params[k]."""
    W1, b1 = params['W1'], params['b1']
    W2, b2 = params['W2'], params['b2']
    assert X.shape[1] == W1.shape[0], "X and W1 do not fit"
    h, cache1 = affine_forward(X, W1, b1)
    a, cache2 = relu_forward(h)
    scores, cache3 = affine_forward(a, W2, b2)
    if y is None:
        return scores
    loss, grads = 0, {}
    loss, dscores = softmax_loss(scores, y)
    loss += 0.5 * reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
    da, grads['W2'], grads['b2'] = affine_backward(dscores, cache3)
    dh = relu_backward(da, cache2)
    dx, grads['W1'], grads['b1'] = affine_backward(dh, cache1)
    grads['W2'] += reg * W2
    grads['W1'] += reg * W1
    return loss, grads


def dot(a, b):
    return sum(float(np.sum(a[k] * b[k])) for k in a)


def main():
    rng = np.random.default_rng(0)
    D, H, C, N, reg = 20, 30, 5, 64, 1e-3
    params = {"W1": rng.normal(size=(D, H)) / np.sqrt(D), "b1": np.zeros(H),
              "W2": rng.normal(size=(H, C)) / np.sqrt(H), "b2": np.zeros(C)}
    X = rng.normal(size=(N, D))
    y = rng.integers(0, C, size=N)
    v = {k: rng.normal(size=p.shape) for k, p in params.items()}

    (L, grads), (_, Hv) = loss.hvp(params, X, y, reg=reg, v=v)
    print(f"loss {L:.6f}; Hv has the keys of the gradient: {list(Hv)}")

    # central differences of the very function rop compiled (the original, undecorated)
    worst = []
    for eps in (1e-4, 1e-6):
        gp = loss.fn({k: params[k] + eps * v[k] for k in params}, X, y, reg=reg)[1]
        gm = loss.fn({k: params[k] - eps * v[k] for k in params}, X, y, reg=reg)[1]
        worst.append(max(np.max(np.abs(Hv[k] - (gp[k] - gm[k]) / (2 * eps))) /
                         np.max(np.abs(Hv[k])) for k in Hv))
    print(f"Hv vs central differences (steps 1e-4, 1e-6): relative error {min(worst):.1e}")
    assert min(worst) < 1e-6

    scores, _ = loss.hvp(params, X, v=v)  # y is None: another specialisation, scores only
    assert np.allclose(scores, loss(params, X))
    print(f"scores for y=None: shape {scores.shape}")

    # the largest eigenvalue of the Hessian, by power iteration on dicts
    u = {k: rng.normal(size=p.shape) for k, p in params.items()}
    lam = 0.0
    for it in range(60):
        nrm = np.sqrt(dot(u, u))
        u = {k: x / nrm for k, x in u.items()}
        _, (_, Hu) = loss.hvp(params, X, y, reg=reg, v=u)
        lam_new = dot(u, Hu)
        if abs(lam_new - lam) < 1e-10 * abs(lam_new):
            break
        lam, u = lam_new, {k: Hu[k] for k in params}
    print(f"largest Hessian eigenvalue by power iteration: {lam_new:.6f} ({it + 1} products)")


if __name__ == "__main__":
    main()
