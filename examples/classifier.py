"""A softmax classifier with weight decay, written the way NumPy code is usually written:
layers iterated with ``zip``, activations kept with ``append``, the backward pass over
``zip(reversed(Ws), reversed(hs))``, the decay as ``sum(...)`` of a generator and its gradient
as a list comprehension.  rop turns each of these loops into a counted loop and applies R{.}
to it; Hv is checked against central differences, then used by damped Newton-CG
(Martens' Hessian-free outer loop, ``rop.curvature.newton_cg``) to train the classifier.

Run:  python examples/classifier.py [steps]
"""

import sys

import numpy as np

from rop import rop
from rop.curvature import newton_cg

DECAY = 1e-3


@rop(wrt=("Ws", "bs"))
def loss_grad(Ws, bs, X, Y):
    """Mean cross-entropy of a tanh network with a softmax output, plus DECAY/2 sum ||W||^2:
    the loss and its gradient with respect to every W and b."""
    n = X.shape[1]
    hs = [X]
    for W, b in zip(Ws[:-1], bs[:-1]):
        hs.append(np.tanh(W @ hs[-1] + b[:, None]))
    Z = Ws[-1] @ hs[-1] + bs[-1][:, None]
    Z = Z - Z.max(axis=0, keepdims=True)
    P = np.exp(Z)
    P = P / P.sum(axis=0, keepdims=True)
    loss = -np.sum(Y * np.log(P)) / n + 0.5 * DECAY * sum(np.sum(W ** 2) for W in Ws)
    d = (P - Y) / n
    dWs = []
    dbs = []
    for W, h in zip(reversed(Ws), reversed(hs)):
        dWs.append(d @ h.T)
        dbs.append(d.sum(axis=1))
        d = (W.T @ d) * (1.0 - h ** 2)
    dWs = [dWs[len(dWs) - 1 - i] + DECAY * Ws[i] for i in range(len(Ws))]
    dbs = [dbs[len(dbs) - 1 - i] for i in range(len(bs))]
    return loss, dWs, dbs


def data(n=400, classes=3, dim=2, seed=0):
    """Three interleaved spirals (a standard toy problem no linear model separates)."""
    rng = np.random.default_rng(seed)
    X = np.empty((dim, n))
    labels = np.arange(n) % classes
    r = np.linspace(0.1, 1.0, n)
    t = labels * 2 * np.pi / classes + 4.0 * r + 0.2 * rng.normal(size=n)
    X[0], X[1] = r * np.sin(t), r * np.cos(t)
    return X, np.eye(classes)[:, labels]


def main(steps=15):
    X, Y = data()
    layers = [2, 32, 32, 3]
    rng = np.random.default_rng(1)
    Ws = [rng.normal(size=(m, k)) / np.sqrt(k) for k, m in zip(layers[:-1], layers[1:])]
    bs = [np.zeros(m) for m in layers[1:]]
    V = [rng.normal(size=W.shape) for W in Ws]
    c = [rng.normal(size=b.shape) for b in bs]

    (loss, gW, gb), (_, HvW, Hvb) = loss_grad.hvp(Ws, bs, X, Y, v=(V, c))
    errs = []
    for eps in (1e-4, 1e-5):
        plus = loss_grad([W + eps * v for W, v in zip(Ws, V)], [b + eps * e for b, e in zip(bs, c)], X, Y)
        minus = loss_grad([W - eps * v for W, v in zip(Ws, V)], [b - eps * e for b, e in zip(bs, c)], X, Y)
        fd = [(p - m) / (2 * eps) for p, m in zip(plus[1] + plus[2], minus[1] + minus[2])]
        errs.append(max(np.max(np.abs(h - f)) / np.max(np.abs(f)) for h, f in zip(HvW + Hvb, fd)))
    err = min(errs)
    print(f"layers {layers}, {X.shape[1]} points: loss {loss:.4f}, Hv vs central differences: "
          f"max rel. error {err:.1e}")
    if not err < 1e-6:
        sys.exit("Hv does not match central differences")

    L = len(Ws)

    def loss_and_grad(p):
        loss, dW, db = loss_grad(list(p[:L]), list(p[L:]), X, Y)
        return loss, tuple(dW) + tuple(db)

    def hvp_at(p):
        def hvp(d):
            _, (_, HW, Hb) = loss_grad.hvp(list(p[:L]), list(p[L:]), X, Y,
                                           v=(list(d[:L]), list(d[L:])))
            return tuple(HW) + tuple(Hb)
        return hvp

    params, curve = newton_cg(loss_and_grad, hvp_at, tuple(Ws) + tuple(bs), steps=steps,
                              damping=1.0, cg_iters=30)
    scores = params[L - 1] @ np.tanh(params[1] @ np.tanh(params[0] @ X + params[L][:, None])
                                     + params[L + 1][:, None]) + params[2 * L - 1][:, None]
    accuracy = float(np.mean(scores.argmax(axis=0) == Y.argmax(axis=0)))
    print(f"Newton-CG, {steps} steps: loss {curve[0]:.4f} -> {loss_and_grad(params)[0]:.4f}, "
          f"training accuracy {accuracy:.1%}")
    if not loss_and_grad(params)[0] < curve[0]:
        sys.exit("Newton-CG did not decrease the loss")
    print("\nThe generated backward loop (zip(reversed(Ws), reversed(hs)) as a counted loop):\n")
    lines = loss_grad.hvp.source.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("def loss_grad_hvp"))
    loop = next(i for i in range(start, len(lines)) if "zip(reversed(Ws), reversed(hs))" in lines[i])
    print("\n".join(lines[loop:loop + 18]))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
