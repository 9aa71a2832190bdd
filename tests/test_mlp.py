"""The seed's sigmoid MLP: Hv against JAX's jvp(grad) and the full Hessian, column by column."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import flat_err
from examples.mlp import backprop


def loss_jax(W1, b1, W2, b2, X, T):
    y1 = jax.nn.sigmoid(W1 @ X + b1[:, None])
    y2 = W2 @ y1 + b2[:, None]
    return 0.5 * jnp.sum((y2 - T) ** 2) / X.shape[1]


def data(rng, n_in=4, n_hid=5, n_out=3, batch=7):
    params = (rng.normal(size=(n_hid, n_in)), rng.normal(size=n_hid),
              rng.normal(size=(n_out, n_hid)), rng.normal(size=n_out))
    X, T = rng.normal(size=(n_in, batch)), rng.normal(size=(n_out, batch))
    return params, X, T


def oracle_hvp(params, X, T, v):
    g = jax.grad(loss_jax, argnums=(0, 1, 2, 3))
    _, hv = jax.jvp(lambda *p: g(*p, X, T), params, v)
    return [np.asarray(h) for h in hv]


@pytest.mark.parametrize("mode", ["numba", "python"])
def test_mlp_hvp_matches_jax(rng, mode):
    params, X, T = data(rng)
    v = tuple(rng.normal(size=p.shape) for p in params)
    f = backprop if mode == "numba" else _python_mode()
    grads, hv = f.hvp(*params, X, T, v=v)
    g_jax = jax.grad(loss_jax, argnums=(0, 1, 2, 3))(*params, X, T)
    assert flat_err(grads, g_jax) < 1e-12
    assert flat_err(hv, oracle_hvp(params, X, T, v)) < 1e-10


def _python_mode():
    from rop import rop
    import examples.mlp as m
    return rop(m.backprop.fn, wrt=("W1", "b1", "W2", "b2"), mode="python")


def test_full_hessian_column_by_column(rng):
    params, X, T = data(rng, 2, 3, 2, 5)
    sizes = [p.size for p in params]
    n = sum(sizes)
    H = np.zeros((n, n))
    for j in range(n):
        e = np.zeros(n)
        e[j] = 1.0
        parts = np.split(e, np.cumsum(sizes)[:-1])
        v = tuple(pt.reshape(p.shape) for pt, p in zip(parts, params))
        _, hv = backprop.hvp(*params, X, T, v=v)
        H[:, j] = np.concatenate([np.ravel(h) for h in hv])
    flat = lambda w: loss_jax(*[w[a:b].reshape(p.shape) for a, b, p in
                                zip(np.r_[0, np.cumsum(sizes)[:-1]], np.cumsum(sizes), params)], X, T)
    w0 = np.concatenate([p.ravel() for p in params])
    H_jax = np.asarray(jax.hessian(flat)(w0))
    assert np.max(np.abs(H - H_jax)) <= 1e-10 * np.max(np.abs(H_jax))
    assert np.max(np.abs(H - H.T)) <= 1e-10 * np.max(np.abs(H))


def test_mlp_hvp_matches_central_differences(rng):
    params, X, T = data(rng)
    v = tuple(rng.normal(size=p.shape) for p in params)
    _, hv = backprop.hvp(*params, X, T, v=v)
    for eps in (1e-4, 1e-5):
        plus = backprop(*(p + eps * d for p, d in zip(params, v)), X, T)
        minus = backprop(*(p - eps * d for p, d in zip(params, v)), X, T)
        fd = [(a - b) / (2 * eps) for a, b in zip(plus, minus)]
        assert flat_err(hv, fd) < 1e-6
