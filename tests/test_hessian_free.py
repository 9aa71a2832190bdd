"""rop.hessian_free: each of Martens' heuristics on a problem where its effect is known in
advance, then end-to-end runs (logistic regression against scipy; a tanh MLP with rop's own
.hvp as the curvature).  Expected values come from closed forms, explicit loops or an
independent Krylov-subspace computation, never from the code under test."""

from __future__ import annotations

import builtins
import math

import numpy as np
import pytest
import scipy.optimize

from rop.hessian_free import HFHistory, HFStep, hessian_free, update_damping

QUIET = dict(progress=False)


def quadratic(A, b):
    """f(θ) = ½θᵀAθ − bᵀθ with its gradient and exact curvature, batch ignored."""
    obj = lambda t, _: 0.5 * t @ A @ t - b @ t
    grad = lambda t, _: (obj(t, _), A @ t - b)
    curv = lambda t, _, v: A @ v
    return obj, grad, curv


def scalar_quadratic(a, c):
    """f(x) = ½ a x² but the curvature product claims c: CG's step is −a x / (c + λ)."""
    obj = lambda x, _: 0.5 * a * float(x @ x)
    grad = lambda x, _: (obj(x, _), a * x)
    curv = lambda x, _, v: c * v
    return obj, grad, curv


# ---------------------------------------------------------------------------------------------
# 1. Levenberg–Marquardt damping
# ---------------------------------------------------------------------------------------------

# With B = c + λ and t = a / (c + λ): the step is p = −ax/(c+λ), q(p) = −(ax)²/(2(c+λ)),
# f(x+p) − f(x) = (ax)²/(c+λ)·(t/2 − 1), so ρ = 2 − t; the loss rises when t > 2.
@pytest.mark.parametrize("a, c, lam, factor", [
    (1.0, 1.0, 0.1, 2 / 3),   # t = 0.909, ρ = 1.09 > 3/4: trust the model more
    (2.0, 1.0, 0.1, 3 / 2),   # t = 1.818, ρ = 0.18 < 1/4, the loss still fell: trust it less
    (1.6, 1.0, 0.1, 1.0),     # t = 1.455, ρ = 0.545: λ stays
    (3.0, 1.0, 0.1, 3 / 2),   # t = 2.727: the loss rose, ρ = −∞
])
def test_damping_follows_levenberg_marquardt(a, c, lam, factor):
    obj, grad, curv = scalar_quadratic(a, c)
    _, h = hessian_free(obj, grad, curv, np.array([1.0]), steps=1, damping=lam, **QUIET)
    t = a / (c + lam)
    rho = 2 - t if t < 2 else -math.inf
    assert h[0].rho == pytest.approx(rho, rel=1e-12)
    assert h[0].damping == lam
    assert h[0].new_damping == pytest.approx(lam * factor, rel=1e-15)


def test_update_damping_rule_alone():
    assert update_damping(1.0, 0.1) == 1.5
    assert update_damping(1.0, -math.inf) == 1.5
    assert update_damping(1.0, math.nan) == 1.5
    assert update_damping(1.0, 0.5) == 1.0
    assert update_damping(1.0, 0.9) == pytest.approx(2 / 3)
    assert update_damping(2.0, 0.9, boost=3.0, drop=0.5) == 1.0


# ---------------------------------------------------------------------------------------------
# 2. Martens' CG stopping rule
# ---------------------------------------------------------------------------------------------

def krylov_phis(A, g, m):
    """φ_i = min of ½xᵀAx + gᵀx over the Krylov space K_i(A, g), i = 0..m: what CG's i-th
    iterate attains in exact arithmetic, from an orthonormal basis (Lanczos with full
    reorthogonalisation), not from CG."""
    Q = [g / np.linalg.norm(g)]
    phis = [0.0]
    for i in range(1, m + 1):
        B = np.array(Q).T
        y = -np.linalg.solve(B.T @ A @ B, B.T @ g)
        phis.append(0.5 * y @ (B.T @ A @ B) @ y + (B.T @ g) @ y)
        w = A @ Q[-1]
        for _ in range(2):
            w = w - B @ (B.T @ w)
        Q.append(w / np.linalg.norm(w))
    return phis


def test_cg_stops_where_martens_rule_fires():
    rng = np.random.default_rng(3)
    n = 120
    A = np.diag(np.logspace(0, 3, n))
    b = rng.normal(size=n)
    phis = krylov_phis(A, -b, 80)
    expected = None
    for i in range(1, 81):
        k = max(10, math.ceil(0.1 * i))
        if i > k and phis[i] < 0 and (phis[i] - phis[i - k]) / phis[i] < k * 5e-4:
            expected = i
            ratio = (phis[i] - phis[i - k]) / phis[i]
            break
    assert expected is not None and 15 < expected < 80
    # not a borderline case: the previous iteration was clearly above the threshold
    k_prev = max(10, math.ceil(0.1 * (expected - 1)))
    prev = (phis[expected - 1] - phis[expected - 1 - k_prev]) / phis[expected - 1]
    assert prev > 1.02 * k_prev * 5e-4 and ratio < 0.98 * k * 5e-4
    obj, grad, curv = quadratic(A, b)
    _, h = hessian_free(obj, grad, curv, np.zeros(n), steps=1, damping=0.0, backtrack=False, **QUIET)
    assert (h[0].cg_iters, h[0].cg_stop) == (expected, "martens")
    assert h[0].curvature_products == expected


def test_cg_stops_at_max_iters():
    A = np.diag(np.logspace(0, 3, 50))
    obj, grad, curv = quadratic(A, np.ones(50))
    _, h = hessian_free(obj, grad, curv, np.zeros(50), steps=1, damping=0.0, max_cg_iters=7, **QUIET)
    assert (h[0].cg_iters, h[0].cg_stop, h[0].curvature_products) == (7, "max_iters", 7)


# ---------------------------------------------------------------------------------------------
# 3. CG-backtracking
# ---------------------------------------------------------------------------------------------

def plain_cg(A, g, iters):
    """Textbook CG for Ax = −g from 0; the iterates x_1..x_iters."""
    x, r = np.zeros_like(g), g.copy()
    d, xs = -r, []
    for _ in range(iters):
        Ad = A @ d
        alpha = (r @ r) / (d @ Ad)
        x = x + alpha * d
        r_new = r + alpha * Ad
        d = -r_new + (r_new @ r_new) / (r @ r) * d
        r = r_new
        xs.append(x)
    return xs


def test_backtracking_walks_back_while_the_large_data_improves():
    rng = np.random.default_rng(4)
    n = 60
    A = np.diag(np.logspace(0, 2, n))
    b = rng.normal(size=n)
    xs = plain_cg(A, -b, 30)
    kept = [5, 7, 9, 11, 15, 19, 25, 30]          # ⌈5·1.3^j⌉ up to 30, and the last
    # on the "large" data: 30 -> 25 -> 19 -> 15 improves, 11 is worse: stop at 15 (9 would be
    # better still, but backtracking stops at the first worsening)
    table = {0: 100.0, 5: 0.0, 7: 0.0, 9: -1.0, 11: 2.5, 15: 2.0, 19: 3.0, 25: 4.0, 30: 5.0}
    points = {0: np.zeros(n), **{i: xs[i - 1] for i in kept}}

    def obj(t, batch):
        if batch == "small":
            return 0.5 * t @ A @ t - b @ t
        nearest = min(points, key=lambda i: np.linalg.norm(t - points[i]))
        return table[nearest]

    grad = lambda t, batch: (obj(t, batch), A @ t - b)
    curv = lambda t, batch, v: A @ v
    theta, h = hessian_free(obj, grad, curv, np.zeros(n), batch="large",
                            curvature_batches=["small"], steps=1, damping=0.0,
                            max_cg_iters=30, cg_tolerance=0.0, **QUIET)
    assert h[0].cg_iters == 30
    assert h[0].backtrack_iter == 15
    assert h[0].rate == 1.0 and h[0].loss == 2.0
    np.testing.assert_allclose(theta, xs[14], rtol=1e-8, atol=1e-12)

    theta, h = hessian_free(obj, grad, curv, np.zeros(n), batch="large",
                            curvature_batches=["small"], steps=1, damping=0.0,
                            max_cg_iters=30, cg_tolerance=0.0, backtrack=False, **QUIET)
    assert h[0].backtrack_iter == 30 and h[0].loss == 5.0


# ---------------------------------------------------------------------------------------------
# 4. Preconditioner
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("exponent", [0.75, 0.5])
def test_preconditioner_against_a_per_case_loop(exponent):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(8, 3)) * np.array([1.0, 10.0, 0.1])
    y = rng.normal(size=8)
    w0 = rng.normal(size=3)
    lam = 0.5
    obj = lambda w, _: 0.5 * np.sum((X @ w - y) ** 2)
    grad = lambda w, _: (obj(w, _), X.T @ (X @ w - y))
    curv = lambda w, _, v: X.T @ (X @ v)
    sq = lambda w, _: np.sum(((X @ w - y)[:, None] * X) ** 2, axis=0)   # vectorised, by the caller

    S = np.zeros(3)
    for i in range(len(y)):                       # explicit per-case loop
        gi = (X[i] @ w0 - y[i]) * X[i]
        S += gi * gi
    M = (S + lam) ** exponent
    g = X.T @ (X @ w0 - y)
    z = g / M                                     # one PCG iteration from 0: p = −α M⁻¹g
    alpha = (g @ z) / (z @ (X.T @ (X @ z)) + lam * z @ z)
    expected = w0 - alpha * z
    theta, h = hessian_free(obj, grad, curv, w0, precond_diag=sq, precond_exponent=exponent,
                            steps=1, damping=lam, max_cg_iters=1, **QUIET)
    assert h[0].rate == 1.0
    np.testing.assert_allclose(theta, expected, rtol=1e-12)


def test_preconditioner_checks_its_input():
    obj, grad, curv = quadratic(np.eye(2), np.ones(2))
    with pytest.raises(ValueError, match="negative"):
        hessian_free(obj, grad, curv, np.zeros(2), precond_diag=lambda t, _: -np.ones(2), **QUIET)
    with pytest.raises(ValueError, match="precond_diag returned"):
        hessian_free(obj, grad, curv, np.zeros(2), precond_diag=lambda t, _: np.ones(3), **QUIET)


# ---------------------------------------------------------------------------------------------
# 5. Warm start
# ---------------------------------------------------------------------------------------------

def recording(curv):
    calls = []

    def wrapped(t, batch, v):
        calls.append(np.array(v, copy=True))
        return curv(t, batch, v)
    return wrapped, calls


@pytest.mark.parametrize("decay", [0.95, 0.5])
def test_warm_start_is_the_decayed_previous_solution(decay):
    A = np.array([[4.0, 1.0, 0.0], [1.0, 3.0, 0.5], [0.0, 0.5, 2.0]])
    b = np.array([1.0, -2.0, 0.5])
    obj, grad, curv = quadratic(A, b)
    curv, calls = recording(curv)
    lam = 0.7
    theta0 = np.array([0.3, 0.1, -0.2])
    _, h = hessian_free(obj, grad, curv, theta0, steps=2, damping=lam,
                        warm_start_decay=decay, **QUIET)
    assert h[0].cg_stop == "converged" and h[0].cg_iters == 3
    solution = -np.linalg.solve(A + lam * np.eye(3), A @ theta0 - b)   # CG is exact in 3 steps
    first_of_step_2 = calls[h[0].curvature_products]
    np.testing.assert_allclose(first_of_step_2, decay * solution, rtol=1e-10)
    assert h[1].curvature_products == h[1].cg_iters + 1     # the product at the start point


def test_no_warm_start():
    obj, grad, curv = quadratic(np.diag([1.0, 2.0]), np.ones(2))
    _, h = hessian_free(obj, grad, curv, np.zeros(2), steps=2, warm_start_decay=0.0, **QUIET)
    assert h[1].curvature_products == h[1].cg_iters


# ---------------------------------------------------------------------------------------------
# 6. Line search
# ---------------------------------------------------------------------------------------------

def test_armijo_shrinks_a_step_that_lowers_the_loss_too_little():
    # t = 1.99: f(x+p) − f(x) = −0.005 (ax)²/B > c·gᵀp = −0.01 (ax)²/B, so rate 1 fails Armijo;
    # at rate 0.8: (−0.8 + ½·1.99·0.64)(ax)²/B = −0.1632 (ax)²/B, which passes.
    obj, grad, curv = scalar_quadratic(1.99, 1.0)
    theta, h = hessian_free(obj, grad, curv, np.array([1.0]), steps=1, damping=0.0, **QUIET)
    assert h[0].accepted and h[0].rate == 0.8
    np.testing.assert_allclose(theta, [1.0 - 0.8 * 1.99], rtol=1e-14)


def test_a_step_that_raises_the_loss_everywhere_is_rejected():
    theta0 = np.array([1.0, -2.0])
    calls = []

    def obj(t, _):
        calls.append(t)
        return 1.0 + float(np.sum((t - theta0) ** 2))   # minimal at θ0: every step raises it
    grad = lambda t, _: (obj(t, _), np.ones(2))          # a gradient that lies
    curv = lambda t, _, v: v
    theta, h = hessian_free(obj, grad, curv, theta0, steps=3, damping=1.0, backtrack=False, **QUIET)
    np.testing.assert_array_equal(theta, theta0)
    assert [s.accepted for s in h] == [False] * 3 and list(h["rate"]) == [0.0] * 3
    assert list(h["damping"]) == [1.0, 1.5, 2.25] and h[2].new_damping == 3.375
    assert all(r == -math.inf for r in h["rho"])
    # per step: the gradient's loss at θ0, then 60 tries (rate 1, 0.8, ..., 0.8^59)
    assert len(calls) == 3 * (1 + 60)
    np.testing.assert_allclose(calls[-1] - theta0, 0.8 ** 59 * (calls[2 * 61 + 1] - theta0), rtol=1e-8)


def test_line_search_backs_off_from_points_where_the_loss_is_not_finite():
    # f = ½x² for |x| < 0.5, NaN elsewhere; B = 0.25 makes the step from x = 1 land at −3.
    # Rates 0.8^k give x = 1 − 4·0.8^k: NaN for k ≤ 4, −0.31 at k = 5 (and Armijo holds there).
    obj = lambda x, _: 0.5 * float(x @ x) if abs(x[0]) < 0.5 else math.nan
    grad = lambda x, _: (0.5 * float(x @ x), x.copy())
    curv = lambda x, _, v: 0.25 * v
    theta, h = hessian_free(obj, grad, curv, np.array([1.0]), steps=1, damping=0.0, **QUIET)
    assert h[0].rate == pytest.approx(0.8 ** 5, rel=1e-14) and h[0].rho == -math.inf
    np.testing.assert_allclose(theta, [1 - 4 * 0.8 ** 5], rtol=1e-14)


# ---------------------------------------------------------------------------------------------
# 7. Negative curvature
# ---------------------------------------------------------------------------------------------

def test_negative_curvature_stops_cg_with_the_iterate_so_far():
    # B = diag(2, −1), g = (1, 1): d0 = −g has d0ᵀBd0 = 1 > 0, x1 = −2g; then r1 = (−3, 3),
    # d1 = (−6, −12) with d1ᵀBd1 = −72 < 0: stop with x1.
    A = np.diag([2.0, -1.0])
    obj, grad, curv = quadratic(A, -np.ones(2))
    theta, h = hessian_free(obj, grad, curv, np.zeros(2), steps=1, damping=0.0, **QUIET)
    assert (h[0].cg_iters, h[0].cg_stop) == (1, "negative curvature")
    np.testing.assert_allclose(theta, [-2.0, -2.0], rtol=1e-15)
    assert h[0].loss == pytest.approx(-2.0) and h[0].rho == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------
# 8. Weight decay
# ---------------------------------------------------------------------------------------------

def test_weight_decay_solves_ridge_regression():
    rng = np.random.default_rng(6)
    X, y = rng.normal(size=(30, 4)), rng.normal(size=30)
    wd = 2.5
    obj = lambda w, _: 0.5 * np.sum((X @ w - y) ** 2)
    grad = lambda w, _: (obj(w, _), X.T @ (X @ w - y))
    curv = lambda w, _, v: X.T @ (X @ v)
    w0 = np.ones(4)
    theta, h = hessian_free(obj, grad, curv, w0, weight_decay=wd, steps=8, **QUIET)
    ridge = np.linalg.solve(X.T @ X + wd * np.eye(4), X.T @ y)
    np.testing.assert_allclose(theta, ridge, rtol=1e-10)
    assert h.initial_loss == pytest.approx(0.5 * np.sum((X @ w0 - y) ** 2) + 0.5 * wd * 4)
    assert h[-1].loss == pytest.approx(0.5 * np.sum((X @ theta - y) ** 2) + 0.5 * wd * theta @ theta,
                                       rel=1e-13)


# ---------------------------------------------------------------------------------------------
# 9. Parameter structures
# ---------------------------------------------------------------------------------------------

def _linear_problem():
    rng = np.random.default_rng(7)
    X, Y = rng.normal(size=(3, 40)), rng.normal(size=(2, 40))
    Xa = np.vstack([X, np.ones(40)])
    best = np.linalg.lstsq(Xa.T, Y.T, rcond=None)[0].T           # [W | b]
    return X, Y, best[:, :3], best[:, 3]


@pytest.mark.parametrize("pack", [
    lambda W, b: {"W": W, "b": b},
    lambda W, b: [W, b],
    lambda W, b: (W, b),
    lambda W, b: {"layer": [{"W": W}, (b,)]},
])
def test_structures_round_trip(pack):
    X, Y, W_best, b_best = _linear_problem()
    W0, b0 = np.zeros((2, 3)), np.zeros(2)
    template = pack(W0, b0)

    def unpack(p):
        if isinstance(p, dict) and "layer" in p:
            return p["layer"][0]["W"], p["layer"][1][0]
        return (p["W"], p["b"]) if isinstance(p, dict) else p

    def obj(p, _):
        W, b = unpack(p)
        return 0.5 * np.sum((W @ X + b[:, None] - Y) ** 2)

    def grad(p, _):
        W, b = unpack(p)
        E = W @ X + b[:, None] - Y
        return obj(p, _), pack(E @ X.T, E.sum(axis=1))

    def curv(p, _, v):
        V, c = unpack(v)
        E = V @ X + c[:, None]
        return pack(E @ X.T, E.sum(axis=1))

    theta, h = hessian_free(obj, grad, curv, template, steps=10, damping=1e-3, **QUIET)
    assert type(theta) is type(template)
    if isinstance(template, dict):
        assert list(theta) == list(template)
    W, b = unpack(theta)
    # to the loss's rounding level: a step whose loss change is below it is rejected
    np.testing.assert_allclose(W, W_best, rtol=1e-7)
    np.testing.assert_allclose(b, b_best, rtol=1e-7)
    assert W0.sum() == 0 and b0.sum() == 0                        # the caller's arrays untouched


def test_float32_parameters_stay_float32_and_integers_become_float():
    A, b = np.diag([1.0, 3.0]).astype(np.float32), np.ones(2, dtype=np.float32)
    obj = lambda t, _: float(0.5 * t["w"] @ A @ t["w"] - b @ t["w"])
    grad = lambda t, _: (obj(t, _), {"w": A @ t["w"] - b})
    curv = lambda t, _, v: {"w": A @ v["w"]}
    theta, _ = hessian_free(obj, grad, curv, {"w": np.zeros(2, np.float32)}, steps=2, **QUIET)
    assert theta["w"].dtype == np.float32
    theta, _ = hessian_free(obj, grad, curv, {"w": np.array([0, 0])}, steps=1, **QUIET)
    assert theta["w"].dtype == np.float64


def test_bad_inputs_are_named():
    obj, grad, curv = quadratic(np.eye(2), np.ones(2))
    p = {"W": np.zeros(2), "b": np.zeros(1)}
    f = lambda q, _: float(q["W"] @ q["W"])
    with pytest.raises(ValueError, match=r"gradient returned a dict with keys \['W'\] at params"):
        hessian_free(f, lambda q, _: (0.0, {"W": q["W"]}), curv, p, **QUIET)
    with pytest.raises(ValueError, match=r"gradient returned an array of shape \(3,\) at params\['b'\]"):
        hessian_free(f, lambda q, _: (0.0, {"W": q["W"], "b": np.zeros(3)}), curv, p, **QUIET)
    with pytest.raises(ValueError, match=r"curvature returned a list of 1 at params"):
        hessian_free(obj, grad, lambda t, _, v: [v], np.zeros(2), **QUIET)
    with pytest.raises(ValueError, match="loss at the starting point is not finite"):
        hessian_free(obj, lambda t, _: (np.nan, t), curv, np.zeros(2), **QUIET)
    with pytest.raises(ValueError, match="gradient at the starting point"):
        hessian_free(obj, lambda t, _: (0.0, t + np.inf), curv, np.zeros(2), **QUIET)
    with pytest.raises(FloatingPointError, match="curvature"):
        hessian_free(obj, grad, lambda t, _, v: v * np.nan, np.zeros(2), **QUIET)
    with pytest.raises(ValueError, match="damping .* >= 0"):
        hessian_free(obj, grad, curv, np.zeros(2), damping=-1.0, **QUIET)
    with pytest.raises(ValueError, match="weight_decay"):
        hessian_free(obj, grad, curv, np.zeros(2), weight_decay=-0.1, **QUIET)
    with pytest.raises(TypeError, match="for one batch .* pass batch="):
        hessian_free(obj, grad, curv, np.zeros(2), batches=(np.ones(2), np.ones(2)), **QUIET)
    with pytest.raises(ValueError, match="not both"):
        hessian_free(obj, grad, curv, np.zeros(2), batch=1, batches=[1], **QUIET)
    with pytest.raises(TypeError, match="numeric"):
        hessian_free(obj, grad, curv, np.array(["a", "b"]), **QUIET)
    with pytest.raises(TypeError, match="objective must return a scalar"):
        hessian_free(lambda t, _: t, grad, curv, np.ones(2), steps=1, **QUIET)
    with pytest.raises(TypeError, match="curvature must be a function"):
        hessian_free(obj, grad, "Hv", np.zeros(2), **QUIET)
    with pytest.raises(TypeError, match="curvature=None and curvature_at"):
        hessian_free(obj, grad, None, np.zeros(2), **QUIET)


# ---------------------------------------------------------------------------------------------
# End to end
# ---------------------------------------------------------------------------------------------

def logistic(seed=8, n=200, d=5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (X @ rng.normal(size=d) + 0.5 * rng.normal(size=n) > 0).astype(float)

    def obj(w, b):
        z = X[b] @ w
        return float(np.sum(np.logaddexp(0.0, z) - y[b] * z)) / len(b)

    def grad(w, b):
        s = 1 / (1 + np.exp(-X[b] @ w))
        return obj(w, b), X[b].T @ (s - y[b]) / len(b)

    def curv(w, b, v):
        s = 1 / (1 + np.exp(-X[b] @ w))
        return X[b].T @ (s * (1 - s) * (X[b] @ v)) / len(b)

    def sq(w, b):                                 # mean of the squared per-case gradients
        s = 1 / (1 + np.exp(-X[b] @ w))
        return np.sum(((s - y[b])[:, None] * X[b]) ** 2, axis=0) / len(b)
    return obj, grad, curv, sq, np.arange(n), d


def test_logistic_regression_reaches_the_optimum():
    obj, grad, curv, sq, idx, d = logistic()
    wd = 1e-2
    theta, h = hessian_free(obj, grad, curv, np.zeros(d), batch=idx, precond_diag=sq,
                            weight_decay=wd, steps=10, damping=1e-2, **QUIET)
    ref = scipy.optimize.minimize(lambda w: obj(w, idx) + 0.5 * wd * w @ w,
                                  np.zeros(d), jac=lambda w: grad(w, idx)[1] + wd * w,
                                  method="BFGS", options={"gtol": 1e-12})
    # as close as comparisons of the loss can tell: the loss is within rounding of its minimum
    # here (a parameter error e changes it by about ½·eᵀHe ~ 1e-16), so Martens' rule that a
    # step must lower the loss stops the run at ~1e-8 in the parameters
    np.testing.assert_allclose(theta, ref.x, rtol=1e-7)
    assert np.linalg.norm(grad(theta, idx)[1] + wd * theta) < 1e-8
    assert h[-1].loss <= obj(ref.x, idx) + 0.5 * wd * ref.x @ ref.x + 1e-15
    assert np.all(np.diff(np.concatenate([[h.initial_loss], h["loss"]])) <= 0)


def test_curvature_batches_cycle_per_step():
    obj, grad, curv, sq, idx, d = logistic()
    seen = []

    def recording_curv(w, b, v):
        seen.append(b[0])
        return curv(w, b, v)
    chunks = [idx[k::4] for k in range(4)]
    theta, h = hessian_free(obj, grad, recording_curv, np.zeros(d), batch=idx,
                            curvature_batches=chunks, steps=6, **QUIET)
    starts = np.cumsum([0] + list(h["curvature_products"]))
    assert [seen[starts[s]] for s in range(6)] == [0, 1, 2, 3, 0, 1]
    assert all(len(set(seen[starts[s]:starts[s + 1]])) == 1 for s in range(6))
    assert h[-1].loss < 0.5 * h.initial_loss

    calls, grad_calls = [], []
    hessian_free(obj, grad, recording_curv, np.zeros(d),
                 batches=lambda n: grad_calls.append(n) or idx[n % 2::2],
                 curvature_batches=lambda n: calls.append(n) or chunks[0], steps=3, **QUIET)
    assert calls == [0, 1, 2] and grad_calls == [0, 1, 2]    # once per step: it may sample


def mlp_grads(W1, b1, W2, b2, X, T):
    """Gradient of E = 1/(2n)·‖W2 tanh(W1 X + b1) + b2 − T‖²."""
    H = np.tanh(W1 @ X + b1[:, None])
    E = (W2 @ H + b2[:, None] - T) / X.shape[1]
    D = (W2.T @ E) * (1.0 - H * H)
    return D @ X.T, D.sum(axis=1), E @ H.T, E.sum(axis=1)


def mlp_loss(p, batch):
    W1, b1, W2, b2 = p
    X, T = batch
    return 0.5 * float(np.sum((W2 @ np.tanh(W1 @ X + b1[:, None]) + b2[:, None] - T) ** 2)) / X.shape[1]


def test_tanh_mlp_with_rops_own_hvp_decreases_monotonically():
    from rop import rop
    f = rop(wrt=("W1", "b1", "W2", "b2"), mode="python")(mlp_grads)
    rng = np.random.default_rng(9)
    X, T = rng.normal(size=(3, 40)), rng.normal(size=(2, 40))
    params = (rng.normal(size=(6, 3)) / 2, np.zeros(6), rng.normal(size=(2, 6)) / 2, np.zeros(2))
    batch = (X, T)
    v = tuple(rng.normal(size=q.shape) for q in params)
    eps = 1e-6                                    # the curvature is Hv: central differences
    fd = [(a - b) / (2 * eps) for a, b in zip(f(*(q + eps * e for q, e in zip(params, v)), *batch),
                                              f(*(q - eps * e for q, e in zip(params, v)), *batch))]
    for hv, want in zip(f.hvp(*params, *batch, v=v)[1], fd):
        np.testing.assert_allclose(hv, want, rtol=1e-5, atol=1e-8)

    theta, h = hessian_free(mlp_loss, lambda p, b: (mlp_loss(p, b), f(*p, *b)),
                            lambda p, b, v: f.hvp(*p, *b, v=v)[1], params, batch=batch,
                            steps=6, **QUIET)
    losses = np.concatenate([[h.initial_loss], h["loss"]])
    assert np.all(np.diff(losses) <= 0) and losses[-1] < 0.8 * losses[0]
    assert sum(h["accepted"]) >= 4
    assert isinstance(theta, tuple) and [t.shape for t in theta] == [q.shape for q in params]
    assert mlp_loss(theta, batch) == pytest.approx(h[-1].loss, rel=1e-12)


def test_curvature_at_linearises_once_per_step_and_matches_per_product_curvature():
    """``curvature_at`` (rop's ``.hvp.linearize`` once per outer step) takes the same steps as
    ``curvature`` (a whole ``.hvp`` per CG product): the same CG iterations, losses and λ."""
    from rop import rop
    f = rop(wrt=("W1", "b1", "W2", "b2"), mode="python")(mlp_grads)
    rng = np.random.default_rng(9)
    params = (rng.normal(size=(6, 3)) / 2, np.zeros(6), rng.normal(size=(2, 6)) / 2, np.zeros(2))
    batch = (rng.normal(size=(3, 40)), rng.normal(size=(2, 40)))
    gradient = lambda p, b: (mlp_loss(p, b), f(*p, *b))
    calls = []

    def at(p, b):
        calls.append(1)
        lin = f.hvp.linearize(*p, *b)
        assert lin.split
        return lin

    _, h1 = hessian_free(mlp_loss, gradient, lambda p, b, v: f.hvp(*p, *b, v=v)[1], params,
                         batch=batch, steps=5, **QUIET)
    _, h2 = hessian_free(mlp_loss, gradient, None, params, curvature_at=at, batch=batch,
                         steps=5, **QUIET)
    assert len(calls) == 5 and sum(h2["cg_iters"]) > 5   # once per step, many products each
    assert list(h1["cg_iters"]) == list(h2["cg_iters"])
    np.testing.assert_allclose(h2["damping"], h1["damping"], rtol=1e-12)
    np.testing.assert_allclose(h2["loss"], h1["loss"], rtol=1e-10)
    with pytest.raises(TypeError, match="exactly one of them"):
        hessian_free(mlp_loss, gradient, None, params, batch=batch)
    with pytest.raises(TypeError, match="curvature_at must return a function"):
        hessian_free(mlp_loss, gradient, None, params, curvature_at=lambda p, b: 0.0,
                     batch=batch, steps=1, **QUIET)


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------

def test_history_callback_and_progress_bar(capsys):
    obj, grad, curv = quadratic(np.diag([1.0, 10.0]), np.ones(2))
    seen = []

    def callback(params, record):
        seen.append((params.copy(), record))
        return record.step == 2                  # stop after the third step

    theta, h = hessian_free(obj, grad, curv, np.zeros(2), steps=10, callback=callback)
    assert isinstance(h, HFHistory) and len(h) == 3 and len(seen) == 3
    assert all(isinstance(s, HFStep) for s in h) and h[2] is seen[2][1]
    np.testing.assert_array_equal(seen[-1][0], theta)
    assert list(h["step"]) == [0, 1, 2] and np.all(np.diff(h["time"]) >= 0)
    assert h.as_dicts()[0]["cg_iters"] == h[0].cg_iters
    with pytest.raises(KeyError, match="no field"):
        h["nope"]
    err = capsys.readouterr().err
    assert "HF" in err and "loss=" in err and "lam=" in err and "cg=" in err


def test_plot_and_the_error_without_matplotlib(monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    obj, grad, curv = quadratic(np.diag([1.0, 10.0]), np.ones(2))
    _, h = hessian_free(obj, grad, curv, np.zeros(2), steps=3, **QUIET)
    fig = h.plot()
    assert [ax.get_xlabel() for ax in fig.axes] == ["wall time (s)", "outer step"]
    assert len(fig.axes[1].lines[0].get_xdata()) == 4

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match=r'pip install "\.\[examples\]"'):
        h.plot()
