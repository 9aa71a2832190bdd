"""The Kronecker-factored optimiser (rop/kfac.py): its preconditioner against the dense damped
Kronecker matrix, its factor averaging, one step on least squares (where KFLR's factors are the
exact Gauss-Newton matrix) against NumPy's least-squares solution, the Levenberg–Marquardt
rule, and its errors.  Expected values come from dense NumPy linear algebra written here."""

import math

import numpy as np
import pytest

from rop.blocks import KroneckerFactors, Network
from rop.kfac import Preconditioner, kronecker_factored


def spd(rng, n):
    A = rng.normal(size=(n, n))
    return A @ A.T / n + 0.1 * np.eye(n)


def test_preconditioner_is_the_damped_kronecker_inverse():
    rng = np.random.default_rng(0)
    m, n = 3, 4
    G, Qh = spd(rng, m), spd(rng, n + 1)
    Qh[n, n] = 1.0
    f = KroneckerFactors(G, Qh[:n, :n], Qh[:n, n])
    pre = Preconditioner()
    pre.update([f])
    gamma = 0.3
    pre.invert(gamma)
    dW, db = rng.normal(size=(m, n)), rng.normal(size=m)
    (DW,), (Db,) = pre.apply([dW], [db])
    pi = math.sqrt((np.trace(Qh) / (n + 1)) / (np.trace(G) / m))
    K = np.kron(G + gamma / pi * np.eye(m), Qh + gamma * pi * np.eye(n + 1))  # C-order vec
    want = -np.linalg.solve(K, np.concatenate([dW, db[:, None]], axis=1).ravel()).reshape(m, n + 1)
    assert np.allclose(DW, want[:, :n], rtol=1e-12, atol=1e-14)
    assert np.allclose(Db, want[:, n], rtol=1e-12, atol=1e-14)
    (MW,), (Mb,) = pre.model([dW], [db])
    full = np.kron(G, Qh) @ np.concatenate([dW, db[:, None]], axis=1).ravel()
    assert np.allclose(np.concatenate([MW, Mb[:, None]], axis=1).ravel(), full, rtol=1e-12)


def test_factors_are_averaged_over_steps():
    rng = np.random.default_rng(1)
    f1 = KroneckerFactors(spd(rng, 2), spd(rng, 3), rng.normal(size=3))
    f2 = KroneckerFactors(spd(rng, 2), spd(rng, 3), rng.normal(size=3))
    pre = Preconditioner(ema=0.95)
    pre.update([f1])
    pre.update([f2])
    assert np.allclose(pre.G[0], 0.95 * f1.G + 0.05 * f2.G, rtol=1e-15)
    assert np.allclose(pre.Q[0], 0.95 * f1.homogeneous + 0.05 * f2.homogeneous, rtol=1e-15)
    with pytest.raises(ValueError, match="ema"):
        Preconditioner(ema=1.0)


def least_squares_problem(seed=2, n=4, m=3, B=20):
    rng = np.random.default_rng(seed)
    X, T = rng.normal(size=(n, B)), rng.normal(size=(m, B))
    W0, b0 = rng.normal(size=(m, n)), rng.normal(size=m)

    def gradient(p, batch):  # E = (1/B) Σ ½‖W x + b − t‖², by hand
        (W,), (b,) = p
        R = W @ X + b[:, None] - T
        return 0.5 * np.sum(R * R) / B, ([R @ X.T / B], [R.mean(axis=1)])

    def curvature(p, batch, v):  # G v = H v for a linear model, by hand
        (V,), (c,) = v
        S = V @ X + c[:, None]
        return [S @ X.T / B], [S.mean(axis=1)]

    def objective(p, batch):
        return gradient(p, batch)[0]

    net = Network("tanh", "squared")  # one layer: no hidden activation, KFLR G = I exactly
    factors = lambda p, batch: net.kflr(p[0], p[1], X, T)  # noqa: E731
    return X, T, ([W0], [b0]), gradient, curvature, objective, factors


def test_one_step_solves_least_squares():
    """A linear model's Gauss-Newton matrix is I ⊗ Q̄ exactly, so with λ → 0 the step chosen by
    the exact quadratic model (α = 1) lands on the least-squares solution (γ = √λ = 1e-12)."""
    X, T, p0, gradient, curvature, objective, factors = least_squares_problem()
    (W, b), hist = kronecker_factored(gradient, factors, p0, batches=[None], steps=1,
                                      curvature=curvature, damping=1e-24, progress=False)
    A = np.vstack([X, np.ones(X.shape[1])]).T
    sol = np.linalg.lstsq(A, T.T, rcond=None)[0].T
    assert np.allclose(W[0], sol[:, :-1], rtol=1e-8, atol=1e-9)
    assert np.allclose(b[0], sol[:, -1], rtol=1e-8, atol=1e-9)
    assert hist[0].alpha == pytest.approx(1.0, rel=1e-8)
    assert hist[0].predicted == pytest.approx(objective((W, b), None) - hist[0].loss, rel=1e-8)


def test_levenberg_marquardt_lowers_damping_when_the_model_is_good():
    """On a quadratic whose Kronecker model is exact, ρ ≥ 1 at every adaptation, so λ falls by
    ω = (19/20)⁵ every 5 steps; the caller's arrays are not written."""
    X, T, p0, gradient, _, objective, factors = least_squares_problem(seed=3)
    before = [a.copy() for part in p0 for a in part]
    _, hist = kronecker_factored(gradient, factors, p0, batches=[None], steps=20,
                                 objective=objective, learning_rate=0.5, damping=1.0,
                                 progress=False)
    omega = (19 / 20) ** 5
    rho = hist["rho"]
    assert np.all(rho[4::5] >= 1.0) and np.all(np.isnan(np.delete(rho, np.s_[4::5])))
    want = [omega ** ((k + 1) // 5) for k in range(20)]
    assert np.allclose(hist["damping"], want, rtol=1e-12)
    assert np.all(np.diff(hist["loss"]) < 0)
    assert all(np.array_equal(a, b) for a, b in zip(before, [a for part in p0 for a in part]))


def test_momentum_from_the_quadratic_model_lowers_the_loss():
    """With (α, μ) chosen from exact Gauss-Newton products (written by hand above) and a
    damping that keeps the first step short, the later steps use momentum and every step lowers
    the loss (the quadratic model is exact here)."""
    X, T, p0, gradient, curvature, objective, factors = least_squares_problem(seed=4)
    _, hist = kronecker_factored(gradient, factors, p0, batches=[None], steps=6,
                                 curvature=curvature, objective=objective, damping=1.0,
                                 progress=False)
    assert np.all(np.diff(hist["loss"]) <= 1e-12)
    assert hist[0].mu == 0.0 and np.any(np.abs(hist["mu"][1:]) > 1e-6)


def test_errors_name_the_argument():
    X, T, p0, gradient, curvature, objective, factors = least_squares_problem()
    with pytest.raises(ValueError, match=r"params must be \(Ws, bs\)"):
        kronecker_factored(gradient, factors, p0[0], batches=[None], progress=False)
    with pytest.raises(ValueError, match="batches must be"):
        kronecker_factored(gradient, factors, p0, batches=[], progress=False)
    with pytest.raises(ValueError, match="damping"):
        kronecker_factored(gradient, factors, p0, batches=[None], damping=0.0, progress=False)
    with pytest.raises(ValueError, match="layer 0 has W of shape"):
        kronecker_factored(gradient, factors, ([np.zeros((3, 4))], [np.zeros(2)]),
                           batches=[None], progress=False)
