"""Recurrent backpropagation by relaxation: Hv through loops that run to a fixed point."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import rel_err
from examples.recurrent_backprop import problem, rbp_gradient, rbp_gradient_fixed
from rop import RopConvergenceError, rop
from rop.errors import RopConvergenceWarning


def loss_jax(W, I, target, mask, steps=400):
    """The same loss at the fixed point, by a long unrolled relaxation (independent of rop)."""
    y = jnp.zeros(W.shape[0])
    for _ in range(steps):
        y = jax.nn.sigmoid(W @ y) + I
    return 0.5 * jnp.sum(mask * (y - target) ** 2)


def oracle(W, I, target, mask, V):
    g = jax.grad(loss_jax)
    grad, hv = jax.jvp(lambda w: g(w, I, target, mask), (W,), (V,))
    return np.asarray(grad), np.asarray(hv)


@pytest.fixture(scope="module")
def net():
    W, I, target, mask = problem(n=16, n_in=5, n_out=3, seed=3)
    V = np.random.default_rng(7).normal(size=W.shape)
    return W, I, target, mask, V


@pytest.mark.parametrize("fn", [rbp_gradient, rbp_gradient_fixed], ids=["while", "for"])
def test_relaxation_hvp_matches_jax(net, fn):
    W, I, target, mask, V = net
    (loss, g), (_, hv) = fn.hvp(W, I, target, mask, v=(V,))
    g_ref, hv_ref = oracle(W, I, target, mask, V)
    assert rel_err(g, g_ref) < 1e-10
    assert rel_err(hv, hv_ref) < 1e-8


def test_relaxation_python_mode_agrees(net):
    W, I, target, mask, V = net
    py = rop(rbp_gradient.fn, wrt=("W",), mode="python")
    _, (_, hv_py) = py.hvp(W, I, target, mask, v=(V,))
    _, (_, hv_nb) = rbp_gradient.hvp(W, I, target, mask, v=(V,))
    assert rel_err(hv_py, hv_nb) < 1e-12


def test_generated_loop_co_iterates_r_state(net):
    W, I, target, mask, V = net
    rbp_gradient.hvp(W, I, target, mask, v=(V,))
    src = rbp_gradient.hvp.source
    # the transformed test waits for the primal and the R-state
    assert "while (change > tol or change_R > tol) and it < max_it:" in src
    assert "change_R = np.max(np.abs(R_y_new - R_y))" in src
    # R-updates sit beside the primal updates, inside the loop
    body = src.split("while (change > tol or change_R > tol)")[1].split("if change > tol")[0]
    assert "y = y_new" in body and "R_y = R_y_new" in body


def test_r_state_needs_more_iterations_than_primal(net):
    """With a tolerance the primal meets early, the R-state decides when the loop stops:
    stopping with the primal would return a half-relaxed R{y}."""
    W, I, target, mask, V = net
    V = 1e3 * V  # a large direction: R{y} starts far from its limit
    _, (_, hv) = rbp_gradient.hvp(W, I, target, mask, 1e-9, 5000, v=(V,))
    _, hv_ref = oracle(W, I, target, mask, V)
    assert rel_err(hv, hv_ref) < 1e-7


def test_unconverged_relaxation_raises(net):
    W, I, target, mask, V = net
    with pytest.raises(RopConvergenceError, match=r"recurrent_backprop.py:\d+: the relaxation "
                                                  r"`while change > tol.*stopped at its iteration "
                                                  r"cap after 3 iterations"):
        rbp_gradient.hvp(W, I, target, mask, 1e-13, 3, v=(V,))


def test_unconverged_relaxation_warns_when_asked(net):
    W, I, target, mask, V = net
    f = rop(rbp_gradient.fn, wrt=("W",), on_divergence="warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out, r_out = f.hvp(W, I, target, mask, 1e-13, 3, v=(V,))
    assert any(issubclass(w.category, RopConvergenceWarning) and "after 3 iterations" in
               str(w.message) for w in caught)
    assert np.all(np.isfinite(r_out[1]))


def test_relaxation_off_follows_the_primal_path(net):
    W, I, target, mask, V = net
    f = rop(rbp_gradient.fn, wrt=("W",), relaxation="off", mode="python")
    f.hvp(W, I, target, mask, v=(V,))
    assert "change_R" not in f.hvp.source
