"""The seed's sigmoid MLP: R{backprop} gives the exact Hessian-vector product.

Run:  python examples/mlp.py
It prints the gradient norm, the Hv norm, a check of Hv against central finite
differences of the gradient, and the generated R{backprop}.
"""

import numpy as np

from rop import rop


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@rop(wrt=("W1", "b1", "W2", "b2"))
def backprop(W1, b1, W2, b2, X, T):
    """Gradient of E = 1/(2B) * ||W2 sigmoid(W1 X + b1) + b2 - T||^2."""
    y1 = sigmoid(W1 @ X + b1[:, None])
    y2 = W2 @ y1 + b2[:, None]
    d2 = (y2 - T) / X.shape[1]
    d1 = (W2.T @ d2) * y1 * (1.0 - y1)
    return d1 @ X.T, d1.sum(axis=1), d2 @ y1.T, d2.sum(axis=1)


def main():
    rng = np.random.default_rng(0)
    n_in, n_hid, n_out, batch = 4, 8, 3, 16
    W1, b1 = rng.normal(size=(n_hid, n_in)), rng.normal(size=n_hid)
    W2, b2 = rng.normal(size=(n_out, n_hid)), rng.normal(size=n_out)
    X, T = rng.normal(size=(n_in, batch)), rng.normal(size=(n_out, batch))
    params = (W1, b1, W2, b2)
    v = tuple(rng.normal(size=p.shape) for p in params)

    grads = backprop(*params, X, T)                        # the original function
    grads2, Hv = backprop.hvp(*params, X, T, v=v)           # outputs and R{outputs}

    # independent check: central differences of the gradient along v
    eps = 1e-5
    plus = backprop(*(p + eps * d for p, d in zip(params, v)), X, T)
    minus = backprop(*(p - eps * d for p, d in zip(params, v)), X, T)
    fd = [(a - b) / (2 * eps) for a, b in zip(plus, minus)]
    err = max(np.max(np.abs(h - f)) / np.max(np.abs(f)) for h, f in zip(Hv, fd))

    print("gradient norm:", np.sqrt(sum(np.sum(g ** 2) for g in grads)))
    print("Hv norm:      ", np.sqrt(sum(np.sum(h ** 2) for h in Hv)))
    print(f"Hv vs central differences: max relative error {err:.2e}")
    print()
    print(backprop.hvp.source)
    assert all(np.allclose(a, b) for a, b in zip(grads, grads2))
    assert err < 1e-6, err


if __name__ == "__main__":
    main()
