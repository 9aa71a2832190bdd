"""Recurrent backpropagation by relaxation (Almeida 1987, Pineda 1987) and its exact Hv.

The activations relax to the fixed point of  y = sigma(W y) + I  (inputs I clamped), the
adjoint relaxes to  z = sigma'(x) * (W^T z + e(y))  with e the error on the output units, and
the gradient is  dE/dW = z y^T  at t -> infinity.  rop applies R{.} to both relaxations: each
runs as written, then R{y} (R{z}) relaxes on with the primal state fixed until it has converged
too, so Hv is that of the fixed point (seed 000, "Adjoint Equations and the R{.} Operator").

Run:  python examples/recurrent_backprop.py
It checks Hv against central differences, then trains the network by damped Newton-CG steps
built on Hv, beside gradient descent with a tuned step, and prints both loss curves.
"""

import sys
import time

import numpy as np

from rop import rop
from rop.curvature import newton_cg


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@rop(wrt=("W",))
def rbp_gradient(W, I, target, mask, tol=1e-13, max_it=5000):
    """(loss, dE/dW) of E = 1/2 sum(mask * (y - target)^2) at the fixed point y = sigma(W y) + I."""
    n = W.shape[0]
    y = np.zeros(n)
    change = 1.0
    it = 0
    while change > tol and it < max_it:       # relax the activations
        y_new = sigmoid(W @ y) + I
        change = np.max(np.abs(y_new - y))
        y = y_new
        it += 1
    s = y - I                                  # sigma(x) at the fixed point
    ds = s * (1.0 - s)                         # sigma'(x)
    e = mask * (y - target)
    z = np.zeros(n)
    change = 1.0
    it = 0
    while change > tol and it < max_it:       # relax the adjoint
        z_new = ds * (W.T @ z + e)
        change = np.max(np.abs(z_new - z))
        z = z_new
        it += 1
    loss = 0.5 * np.sum(mask * (y - target) ** 2)
    return loss, np.outer(z, y)


@rop(wrt=("W",))
def rbp_gradient_fixed(W, I, target, mask, n_steps=200):
    """The same network with fixed-count relaxations (for t in range(n_steps))."""
    n = W.shape[0]
    y = np.zeros(n)
    for t in range(n_steps):
        y = sigmoid(W @ y) + I
    s = y - I
    ds = s * (1.0 - s)
    e = mask * (y - target)
    z = np.zeros(n)
    for t in range(n_steps):
        z = ds * (W.T @ z + e)
    loss = 0.5 * np.sum(mask * (y - target) ** 2)
    return loss, np.outer(z, y)


def problem(n=20, n_in=6, n_out=4, seed=0, scale=0.6):
    """An Almeida-Pineda network: n units, the first n_in clamped, the last n_out with targets."""
    rng = np.random.default_rng(seed)
    W = scale * rng.normal(size=(n, n)) / np.sqrt(n)
    np.fill_diagonal(W, 0.0)
    I = np.zeros(n)
    I[:n_in] = rng.normal(size=n_in)
    mask = np.zeros(n)
    mask[-n_out:] = 1.0
    target = np.zeros(n)
    target[-n_out:] = rng.uniform(0.1, 0.9, size=n_out)
    return W, I, target, mask


def newton(W0, I, target, mask, steps=10):
    """Damped Newton-CG (rop.curvature) with Hv from the compiled R-relaxation."""
    def loss_and_grad(W):
        return rbp_gradient(W, I, target, mask)

    def hvp_at(W):
        return lambda V: rbp_gradient.hvp(W, I, target, mask, v=(V,))[1][1]
    return newton_cg(loss_and_grad, hvp_at, W0.copy(), steps=steps, damping=1.0)[1]


def gradient_descent(W0, I, target, mask, steps=10, rates=(0.3, 1.0, 3.0, 10.0, 30.0)):
    """Gradient descent with the best of a few step sizes (tuned on the same run)."""
    best = None
    for lr in rates:
        W, curve = W0.copy(), []
        for _ in range(steps):
            loss, g = rbp_gradient(W, I, target, mask)
            curve.append(loss)
            W = W - lr * g
        if np.isfinite(curve[-1]) and (best is None or curve[-1] < best[1][-1]):
            best = (lr, curve)
    return best


def main():
    W, I, target, mask = problem()
    rng = np.random.default_rng(1)
    V = rng.normal(size=W.shape)
    (loss, g), (_, Hv) = rbp_gradient.hvp(W, I, target, mask, v=(V,))
    eps = 1e-5
    fd = (rbp_gradient(W + eps * V, I, target, mask)[1]
          - rbp_gradient(W - eps * V, I, target, mask)[1]) / (2 * eps)
    err = np.max(np.abs(Hv - fd)) / np.max(np.abs(fd))
    (_, g2), (_, Hv2) = rbp_gradient_fixed.hvp(W, I, target, mask, v=(V,))
    print(f"network: {W.shape[0]} units; loss {loss:.6f}; |g| {np.linalg.norm(g):.4e}")
    print(f"Hv (relaxed to tolerance) vs central differences: rel. error {err:.2e}")
    print(f"Hv (while-to-tolerance) vs Hv (200 fixed steps): rel. difference "
          f"{np.max(np.abs(Hv - Hv2)) / np.max(np.abs(Hv)):.2e}")

    grad = rbp_gradient.hvp.primal
    args = (W, I, target, mask, 1e-13, 5000)

    def med(f, k=9):
        ts = []
        for _ in range(k):
            t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
        return float(np.median(ts))
    t_g = med(lambda: grad(*args))
    t_h = med(lambda: rbp_gradient.hvp(W, I, target, mask, v=(V,)))
    print(f"gradient {t_g * 1e6:.1f} us, Hv {t_h * 1e6:.1f} us, Hv/gradient {t_h / t_g:.2f}")

    newton_curve = newton(W, I, target, mask)
    lr, gd = gradient_descent(W, I, target, mask)
    print(f"\nstep  Newton-CG loss   gradient descent (lr={lr}) loss")
    for k, (a, b) in enumerate(zip(newton_curve, gd)):
        print(f"{k:4d}  {a:14.6e}   {b:14.6e}")
    print()
    print(rbp_gradient.hvp.source.split("def rbp_gradient_hvp")[1][:2400])
    assert err < 1e-6, err
    assert newton_curve[-1] < gd[-1]


if __name__ == "__main__":
    sys.exit(main())
