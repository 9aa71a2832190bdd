"""A deep tanh MLP written with per-layer lists and loops: the encoder of Martens' deep
autoencoder (784-1000-500-250-30), squared error, exact Hv by R{backprop}.

Run:  python examples/deep_mlp.py [batch]
Prints the gradient norm, the Hv norm, a central-difference check of Hv, the timings of the
compiled gradient and Hv, and the generated code.
"""

import sys
import time

import numpy as np

from rop import rop


@rop(wrt=("Ws", "bs"), output="acts[L]")  # output: where the loss begins (for .gvp)
def backprop(Ws, bs, X, T):
    """Gradient of E = 1/(2B) ||net(X) - T||^2 for a tanh MLP with a linear output layer."""
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


def init(layers, batch, seed=0):
    rng = np.random.default_rng(seed)
    Ws = [rng.normal(size=(m, n)) / np.sqrt(n) for n, m in zip(layers[:-1], layers[1:])]
    bs = [0.1 * rng.normal(size=m) for m in layers[1:]]
    X = rng.normal(size=(layers[0], batch))
    T = rng.normal(size=(layers[-1], batch))
    V = [rng.normal(size=W.shape) for W in Ws]
    c = [rng.normal(size=b.shape) for b in bs]
    return Ws, bs, X, T, V, c


def median_time(f, repeats=7):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(batch=256):
    layers = [784, 1000, 500, 250, 30]
    Ws, bs, X, T, V, c = init(layers, batch)

    t0 = time.perf_counter()
    (gW, gb), (HvW, Hvb) = backprop.hvp(Ws, bs, X, T, v=(V, c))
    first = time.perf_counter() - t0
    grad = backprop.hvp.primal  # the original function, compiled by the same backend
    args = (tuple(Ws), tuple(bs), X, T)
    grad(*args)

    g_norm = np.sqrt(sum(np.sum(g ** 2) for g in gW + gb))
    h_norm = np.sqrt(sum(np.sum(h ** 2) for h in HvW + Hvb))
    eps = 1e-5
    plus = backprop([W + eps * v for W, v in zip(Ws, V)], [b + eps * e for b, e in zip(bs, c)], X, T)
    minus = backprop([W - eps * v for W, v in zip(Ws, V)], [b - eps * e for b, e in zip(bs, c)], X, T)
    fd = [(p - m) / (2 * eps) for p, m in zip(plus[0] + plus[1], minus[0] + minus[1])]
    err = max(np.max(np.abs(h - f)) / np.max(np.abs(f)) for h, f in zip(HvW + Hvb, fd))

    t_grad = median_time(lambda: grad(*args))
    t_hvp = median_time(lambda: backprop.hvp(Ws, bs, X, T, v=(V, c)))
    print(f"layers {layers}, batch {batch}, float64")
    print(f"gradient norm {g_norm:.6g}   Hv norm {h_norm:.6g}")
    print(f"Hv vs central differences (eps=1e-5): max relative error {err:.2e}")
    print(f"first call (compile + run) {first:.2f} s")
    print(f"gradient {t_grad * 1e3:.1f} ms   Hv {t_hvp * 1e3:.1f} ms   Hv/gradient {t_hvp / t_grad:.2f}")
    print()
    print(backprop.hvp.source)
    assert err < 1e-6, err


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 256)
