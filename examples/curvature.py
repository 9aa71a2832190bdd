"""Curvature as a matrix: the full Hessian, eigenvalues, the trace and the spectral density,
from the Hv that rop compiles out of a hand-written backprop.

(a) The seed's toy (seed 004, "Hessian Network Learning"): a 5×5 parameter matrix fitted to a
    5×5 target under the mean squared error, trained for 40 epochs by gradient descent and by
    Newton's method on the full 25×25 Hessian, both with the seed's fixed learning rate 0.1;
    then a 5×5 tanh network on a batch of 5, where the Hessian is no longer a multiple of I
    and may be indefinite, trained by damped Newton steps (Levenberg–Marquardt damping).
    The Hessian comes from ``backprop.hvp.operator(...)`` times the identity: 25 products.
(b) A 64-16-10 tanh/softmax MLP on scikit-learn's digits, briefly trained: its top Hessian
    and Gauss-Newton eigenvalues (ARPACK and Lanczos), the trace (Hutch++ with its standard
    error, against the exact trace), per-layer traces, and the spectral density by stochastic
    Lanczos quadrature, plotted.

Run:  python examples/curvature.py [--quick] [--plot density.png]
"""

import argparse
import time

import numpy as np

from rop import curvature, rop


# ------------------------------------------------------------------ (a) the seed's toy

def mse_grad(P, T):
    """The gradient of mean((P - T)²), as the seed's nn.MSELoss(reduction='mean')."""
    return 2.0 * (P - T) / (P.shape[0] * P.shape[1])


def tanh_net(W, X, T):
    """The gradient of mean((tanh(W X) - T)²) with respect to W."""
    Y = np.tanh(W @ X)
    dY = 2.0 * (Y - T) / (Y.shape[0] * Y.shape[1])
    return (dY * (1.0 - Y ** 2)) @ X.T


def seed_toy(mode):
    rng = np.random.default_rng(0)
    P0, T = rng.uniform(size=(5, 5)), rng.uniform(size=(5, 5))
    loss = lambda P: float(np.mean((P - T) ** 2))
    f = rop(mse_grad, wrt="P", mode=mode)
    curves = {}
    for name in ("gradient descent", "Newton (full Hessian)"):
        P, curve = P0.copy(), []
        for _ in range(40):
            curve.append(loss(P))
            g = mse_grad(P, T)
            if name == "gradient descent":
                P = P - 0.1 * g
            else:  # the seed's update: P - lr · H⁻¹ g, H the 25×25 Hessian
                H = curvature.full_matrix(f.hvp.operator(P, T), progress=False)
                P = P - 0.1 * np.linalg.solve(H, g.ravel()).reshape(5, 5)
        curves[name] = curve
    H = curvature.full_matrix(f.hvp.operator(P0, T), progress=False)
    print("(a) the seed's toy: 5x5 parameters, MSE to a 5x5 target, lr 0.1, 40 epochs")
    print(f"    the 25x25 Hessian is (2/25) I: max |H - 0.08 I| = {np.abs(H - 0.08 * np.eye(25)).max():.1e}")
    print(f"    {'method':<24}{'epoch 0':>10}{'epoch 39':>12}{'improvement':>13}")
    for name, c in curves.items():
        print(f"    {name:<24}{c[0]:>10.4f}{c[-1]:>12.6f}{1 - c[-1] / c[0]:>12.1%}")
    # Newton multiplies the error by 0.9 per epoch whatever the curvature; GD by 1 - 0.1·0.08
    assert np.isclose(curves["Newton (full Hessian)"][-1] / curves["Newton (full Hessian)"][0],
                      0.81 ** 39)
    assert np.allclose(H, 0.08 * np.eye(25), atol=1e-14)

    # a 5x5 tanh network: the Hessian varies and may be indefinite, so damp it
    W_true, X = 0.5 * rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    Tn = np.tanh(W_true @ X)  # reachable: a 5x5 tanh layer made it; start near it
    W = W_true + 0.3 * rng.normal(size=(5, 5))
    net_loss = lambda W: float(np.mean((np.tanh(W @ X) - Tn) ** 2))
    g_net = rop(tanh_net, wrt="W", mode=mode)
    lam, losses = 1e-3, [net_loss(W)]
    for _ in range(15):
        H = g_net.hvp.operator(W, X, Tn)
        lam_min = curvature.eigenvalues(H, k=1, which="bottom", method="lanczos", progress=False)[0]
        p = curvature.newton_step(H, tanh_net(W, X, Tn), damping=max(lam, 1e-3 - lam_min),
                                  progress=False)  # 25 products: the full Hessian, then LAPACK
        if net_loss(W + p) < losses[-1]:
            W, lam = W + p, lam * 2 / 3
        else:
            lam *= 4
        losses.append(net_loss(W))
    print(f"    5x5 tanh network, damped Newton on the full Hessian: loss {losses[0]:.3e} -> "
          f"{losses[-1]:.3e} in 15 steps")
    assert losses[-1] < 1e-3 * losses[0]


# ------------------------------------------------------------------ (b) an MLP on digits

def mlp(W1, b1, W2, b2, X, Y):
    """Gradient of the mean cross-entropy of softmax(W2 tanh(W1 X + b1) + b2); X is 64×B,
    Y one-hot 10×B."""
    H1 = np.tanh(W1 @ X + b1[:, None])
    Z = W2 @ H1 + b2[:, None]
    E = np.exp(Z - Z.max(axis=0))
    P = E / E.sum(axis=0)
    dZ = (P - Y) / X.shape[1]
    dH = (W2.T @ dZ) * (1.0 - H1 ** 2)
    return dH @ X.T, dH.sum(axis=1), dZ @ H1.T, dZ.sum(axis=1)


def digits_spectrum(mode, quick, plot):
    from sklearn.datasets import load_digits
    data = load_digits()
    n, hidden = (300, 8) if quick else (1797, 16)
    X = (data.data[:n] / 16.0).T
    Y = np.eye(10)[data.target[:n]].T
    rng = np.random.default_rng(0)
    params = [rng.normal(size=(hidden, 64)) / 8.0, np.zeros(hidden),
              rng.normal(size=(10, hidden)) / np.sqrt(hidden), np.zeros(10)]
    backprop = rop(mlp, wrt=("W1", "b1", "W2", "b2"), mode=mode, output="Z")
    for _ in range(100 if quick else 300):  # a little training, so the spectrum has structure
        params = [p - 0.5 * g for p, g in zip(params, mlp(*params, X, Y))]

    H = backprop.hvp.operator(*params, X, Y)
    G = backprop.gvp.operator(*params, X, Y)
    print(f"\n(b) a 64-{hidden}-10 MLP on {n} digits: {H.shape[0]} parameters")
    t = time.perf_counter()
    top = curvature.eigenvalues(H, k=5, progress=not quick)
    print(f"    top-5 Hessian eigenvalues (eigsh):   {np.array2string(top, precision=4)}"
          f"  [{time.perf_counter() - t:.1f} s]")
    top_l = curvature.eigenvalues(H, k=5, method="lanczos", iters=60, progress=not quick)
    print(f"    the same by Lanczos (60 steps):      {np.array2string(top_l, precision=4)}")
    print(f"    top-5 Gauss-Newton eigenvalues:      "
          f"{np.array2string(curvature.eigenvalues(G, k=5, progress=not quick), precision=4)}")
    bottom = curvature.eigenvalues(H, k=1, which="bottom", progress=not quick)[0]
    print(f"    smallest Hessian eigenvalue:         {bottom:.4g}")
    tr = curvature.trace(H, samples=60 if quick else 150, progress=not quick)
    exact = curvature.trace(H, method="exact", progress=not quick).value
    print(f"    trace: Hutch++ {tr.value:.4f} ± {tr.stderr:.4f} ({tr.products} products), "
          f"exact {exact:.4f} ({H.shape[0]} products)")
    per_layer = curvature.per_block(curvature.trace, H, method="exact", progress=False)
    print("    per-layer traces: " + ", ".join(f"{k} {v.value:.4f}" for k, v in per_layer.items()))
    density = curvature.spectral_density(H, runs=5 if quick else 20, iters=40 if quick else 90,
                                         progress=not quick)
    print(f"    spectral density (SLQ): mean eigenvalue {density.moment(1):.3e} "
          f"(exact trace/n {exact / H.shape[0]:.3e})")
    assert np.allclose(top, top_l, rtol=1e-6)
    assert abs(tr.value - exact) <= 5 * tr.stderr + 1e-9
    assert abs(sum(v.value for v in per_layer.values()) - exact) <= 1e-8 * abs(exact)
    if plot:
        import matplotlib
        matplotlib.use("Agg")
        ax = density.plot()
        ax.set_title(f"Hessian spectral density, 64-{hidden}-10 MLP on digits (SLQ)")
        ax.figure.savefig(plot, dpi=120, bbox_inches="tight")
        print(f"    plot: {plot}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, pure-Python mode (CI)")
    ap.add_argument("--plot", metavar="FILE", help="save the spectral density plot here")
    a = ap.parse_args(argv)
    mode = "python" if a.quick else "numba"
    seed_toy(mode)
    digits_spectrum(mode, a.quick, a.plot)


if __name__ == "__main__":
    main()
