"""examples/hessian_free.py's deep autoencoder: its gradient against central differences, its
Gauss-Newton product against JAX's Jᵀ H_L J v, its preconditioner against a loop over cases.
(tests/test_examples.py runs the whole example with --quick.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import flat_err
from examples.hessian_free import (backprop, cross_entropy, curves_data, grad_sq_mean,
                                   sparse_init, squared_error)

LAYERS = [[7, 5, 3, 5, 7], [9, 6, 4, 2, 4, 6, 9], [20, 17, 8, 17, 20]]


def setup(layers, batch, seed):
    rng = np.random.default_rng(seed)
    Ws, bs = sparse_init(layers, rng)
    bs = [0.3 * rng.normal(size=b.shape) for b in bs]      # nonzero biases, to test their terms
    X = rng.uniform(size=(layers[0], batch))
    V = [rng.normal(size=W.shape) for W in Ws]
    c = [rng.normal(size=b.shape) for b in bs]
    return Ws, bs, X, V, c


def z_jax(Ws, bs, X):
    """The network's pre-sigmoid output, written again in JAX: logistic layers, the middle one
    linear."""
    L, a = len(Ws), X
    for i in range(L - 1):
        h = Ws[i] @ a + bs[i][:, None]
        a = h if 2 * (i + 1) == L else jax.nn.sigmoid(h)
    return Ws[L - 1] @ a + bs[L - 1][:, None]


def loss_of_z(z, X):
    return jnp.sum(jnp.logaddexp(0.0, z) - X * z) / X.shape[1]


def gauss_newton_jax(Ws, bs, X, V, c):
    """G v = Jᵀ H_L J v: J v by jax.jvp of the output, H_L (J v) by jax.jvp of the loss's
    gradient at the output, Jᵀ by jax.vjp."""
    def net(params):
        return z_jax(params[0], params[1], X)
    params = ([jnp.asarray(W) for W in Ws], [jnp.asarray(b) for b in bs])
    z, Jv = jax.jvp(net, (params,), ((list(map(jnp.asarray, V)), list(map(jnp.asarray, c))),))
    _, HJv = jax.jvp(lambda u: jax.grad(loss_of_z)(u, X), (z,), (Jv,))
    _, vjp = jax.vjp(net, params)
    (GW, Gb), = vjp(HJv)
    grad = jax.grad(lambda p: loss_of_z(net(p), X))(params)
    return [np.asarray(x) for x in grad[0] + grad[1]], [np.asarray(x) for x in GW + Gb]


@pytest.mark.parametrize("layers", LAYERS)
def test_gradient_matches_central_differences(layers):
    Ws, bs, X, V, c = setup(layers, 11, len(layers))
    gW, gb = backprop(Ws, bs, X)
    slope = sum(np.sum(g * v) for g, v in zip(gW + gb, V + c))
    eps = 1e-6
    f = [cross_entropy([W + s * eps * v for W, v in zip(Ws, V)],
                       [b + s * eps * e for b, e in zip(bs, c)], X) for s in (1, -1)]
    fd = (f[0] - f[1]) / (2 * eps)
    assert abs(slope - fd) <= 1e-7 * max(1.0, abs(fd)), (slope, fd)


@pytest.mark.parametrize("layers", LAYERS)
def test_gvp_matches_jax_gauss_newton(layers):
    Ws, bs, X, V, c = setup(layers, 13, 10 + len(layers))
    (gW, gb), (GW, Gb) = backprop.gvp(Ws, bs, X, v=(V, c))
    grad_ref, G_ref = gauss_newton_jax(Ws, bs, X, V, c)
    assert flat_err(list(gW) + list(gb), grad_ref) <= 1e-10
    assert flat_err(list(GW) + list(Gb), G_ref) <= 1e-10
    # G is positive semi-definite: the loss is convex in the named output z
    assert sum(np.sum(g * v) for g, v in zip(list(GW) + list(Gb), V + c)) > 0


def test_compiled_gradient_matches_the_python_one():
    Ws, bs, X, V, c = setup(LAYERS[1], 9, 3)
    backprop.gvp(Ws, bs, X, v=(V, c))
    gW, gb = backprop.gvp.primal(tuple(Ws), tuple(bs), X)
    pW, pb = backprop(Ws, bs, X)
    assert flat_err(list(gW) + list(gb), pW + pb) <= 1e-13


@pytest.mark.parametrize("layers", LAYERS)
def test_precond_diag_matches_a_loop_over_cases(layers):
    Ws, bs, X, _, _ = setup(layers, 8, 20 + len(layers))
    dW, db = grad_sq_mean(Ws, bs, X)
    per_case = [backprop(Ws, bs, X[:, i:i + 1]) for i in range(X.shape[1])]   # ∇ℓᵢ: B = 1
    refW = [np.mean([g[0][k] ** 2 for g in per_case], axis=0) for k in range(len(Ws))]
    refb = [np.mean([g[1][k] ** 2 for g in per_case], axis=0) for k in range(len(bs))]
    assert flat_err(dW + db, refW + refb) <= 1e-12


def test_sparse_init_is_martens():
    rng = np.random.default_rng(0)
    Ws, bs = sparse_init([40, 20, 10, 20, 40], rng)
    assert [np.count_nonzero(W, axis=1).tolist() for W in Ws] == \
        [[15] * 20, [15] * 10, [10] * 20, [15] * 40]
    assert all(not np.any(b) for b in bs)


def test_curves_are_images_in_unit_range():
    X = curves_data(np.random.default_rng(0), 30, side=10)
    assert X.shape == (100, 30)
    assert X.min() >= 0 and X.max() <= 1 and X.max() > 0.9
    assert np.all(X.sum(axis=0) > 3)          # every image has a curve in it


def test_squared_error_is_per_case():
    Ws, bs, X, _, _ = setup(LAYERS[0], 6, 0)
    err = squared_error(Ws, bs, X)
    err2 = squared_error(Ws, bs, np.concatenate([X, X], axis=1))
    assert np.isclose(err, err2)
