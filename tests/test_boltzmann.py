"""Boltzmann machines (issue 4): exact Hv by the ordinary rules, the sampled estimator's
registered rule, and user-registered rules with their check helper."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rop
from conftest import rel_err
from custom_rule_programs import (log1p_sq, scaled_sum, uses_registered, wrong, wrong_tangent)
from examples.boltzmann import (bm_exact_gradient, bm_sampled_gradient, closed_form_r_p,
                                random_machine, target_distribution, weight_perturbation_hvp)
from rop.boltzmann import all_states


@pytest.fixture(scope="module")
def machine():
    rng = np.random.default_rng(5)
    n_vis, n_hid, T = 5, 3, 1.3
    S = all_states(n_vis + n_hid)
    q = target_distribution(n_vis, rng)
    W, b = random_machine(n_vis + n_hid, rng, scale=0.4)
    V, c = random_machine(n_vis + n_hid, rng)
    return S, q, 2 ** n_hid, T, W, b, V, c


def kl_jax(W, b, S, q, n_h, T):
    E = -0.5 * jnp.sum((S @ W) * S, axis=1) - S @ b
    logp = -E / T - jax.scipy.special.logsumexp(-E / T)
    logpv = jax.scipy.special.logsumexp(logp.reshape(q.shape[0], n_h), axis=1)
    return jnp.sum(q * (jnp.log(q) - logpv))


def test_exact_hvp_matches_jax(machine):
    S, q, n_h, T, W, b, V, c = machine
    (G, gW, gb, _), (_, HW, Hb, _) = bm_exact_gradient.hvp(W, b, S, q, n_h, T, v=(V, c))
    g = jax.grad(kl_jax, argnums=(0, 1))
    (jW, jb), (jHW, jHb) = jax.jvp(lambda w, bb: g(w, bb, S, q, n_h, T), (W, b), (V, c))
    mask = 1.0 - np.eye(W.shape[0])
    assert abs(G - kl_jax(W, b, S, q, n_h, T)) < 1e-12
    assert rel_err(gW, mask * np.asarray(jW)) < 1e-11 and rel_err(gb, jb) < 1e-11
    assert rel_err(HW, mask * np.asarray(jHW)) < 1e-10
    assert rel_err(Hb, jHb) < 1e-10


def test_r_p_equals_the_seeds_closed_form(machine):
    S, q, n_h, T, W, b, V, c = machine
    _, (_, _, _, Rp) = bm_exact_gradient.hvp(W, b, S, q, n_h, T, v=(V, c))
    assert rel_err(Rp, closed_form_r_p(S, W, b, V, c, T)) < 1e-12


def test_exact_needs_nothing_boltzmann_specific(machine):
    S, q, n_h, T, W, b, V, c = machine
    bm_exact_gradient.hvp(W, b, S, q, n_h, T, v=(V, c))
    src = bm_exact_gradient.hvp.source
    assert "correlation_covariance" not in src and "R_P = " in src


def _exact_sampled_setup(seed=9, n=5, T=1.0):
    rng = np.random.default_rng(seed)
    S = all_states(n)
    W, b = random_machine(n, rng, scale=0.5)
    V, c = random_machine(n, rng)
    E = -0.5 * np.sum((S @ W) * S, axis=1) - S @ b
    P = np.exp(-(E - E.min()) / T)
    P /= P.sum()
    exact_Rp = closed_form_r_p(S, W, b, V, c, T)
    exact_W = 0.5 * exact_Rp * (1 - np.eye(n)) / T   # R{-0.5 (p_data - p) / T * mask}
    return rng, S, W, b, V, c, P, T, exact_W


def test_sampled_estimator_is_unbiased_and_error_falls_like_one_over_sqrt_n():
    rng, S, W, b, V, c, P, T, exact = _exact_sampled_setup()
    n = W.shape[0]
    rms, K = {}, 150
    for N in (64, 1024):
        ests = []
        for _ in range(K):
            X = S[rng.choice(len(S), size=N, p=P)]   # exact samples: the estimator, not MCMC
            _, (hW, _) = bm_sampled_gradient.hvp(W, b, X, np.zeros((n, n)), np.zeros(n), T,
                                                 v=(V, c))
            ests.append(hW)
        ests = np.array(ests)
        se = ests.std(axis=0, ddof=1) / np.sqrt(K) + 1e-15
        # unbiased: the mean over K runs is within 4.5 standard errors of the exact value
        assert np.all(np.abs(ests.mean(axis=0) - exact) <= 4.5 * se + 1e-12)
        rms[N] = np.sqrt(np.mean(np.sum((ests - exact) ** 2, axis=(1, 2))))
    ratio = rms[64] / rms[1024]          # 1/sqrt(N): 16x the samples, 4x less error
    assert 3.0 < ratio < 5.3, ratio


def test_registered_rule_is_used_in_generated_code():
    rng, S, W, b, V, c, P, T, _ = _exact_sampled_setup()
    X = S[rng.choice(len(S), size=50, p=P)]
    bm_sampled_gradient.hvp(W, b, X, np.zeros((5, 5)), np.zeros(5), T, v=(V, c))
    src = bm_sampled_gradient.hvp.source
    assert "R_p = correlation_covariance(S, energy_direction_W(S, R_W), T)" in src
    assert "mean_covariance(S, energy_direction_b(S, R_b), T)" in src


@pytest.mark.parametrize("mode", ["numba", "python"])
def test_user_registered_rules_in_compiled_code(mode):
    f = rop.rop(uses_registered.fn, wrt=("x", "w"), mode=mode)
    rng = np.random.default_rng(0)
    x, w, vx, vw = rng.normal(size=(4, 6))
    _, r = f.hvp(x, w, v=(vx, vw))
    for eps in (1e-4, 1e-6):
        fd = (f(x + eps * vx, w + eps * vw) - f(x - eps * vx, w - eps * vw)) / (2 * eps)
        assert abs(r - fd) <= 1e-6 * max(1.0, abs(fd))
    assert "log1p_sq_tangent(" in f.hvp.source and "3.0 * R_h" in f.hvp.source


def test_check_rule_passes_a_right_rule_and_catches_a_wrong_one():
    rng = np.random.default_rng(1)
    x, v = rng.normal(size=(2, 5))
    assert rop.check_rule(log1p_sq, x, v=(v,)) < 1e-7
    a, b, va, vb = rng.normal(size=(4, 3))
    assert rop.check_rule(scaled_sum, a, b, 2.5, v=(va, vb)) < 1e-7
    rop.register_rule(wrong, "wrong_tangent(x, R_x)")
    with pytest.raises(rop.RopRuleError, match="disagrees with central differences"):
        rop.check_rule(wrong, x, v=(v,))


def test_register_rule_refuses_unknown_names():
    with pytest.raises(ValueError, match="uses `no_such_helper`"):
        rop.register_rule(wrong, "no_such_helper(x, R_x)")
    with pytest.raises(ValueError, match="not parameters"):
        rop.register_rule(wrong, {"z": "R_z"})


def test_weight_perturbation_error_falls_with_perturbations():
    rng, S, W, b, V, c, P, T, _ = _exact_sampled_setup(n=4)
    q = np.full(16, 1 / 16)
    _, (_, HW, Hb, _) = bm_exact_gradient.hvp(W, b, S, q, 1, T, v=(V, c))

    def G(Wx, bx):
        return bm_exact_gradient(Wx, bx, S, q, 1, T)[0]
    errs = []
    for M in (20, 1280):
        e = []
        for _ in range(6):
            pW, pb = weight_perturbation_hvp(G, W, b, V, c, M, rng)
            pW = 0.5 * (pW + pW.T) * (1 - np.eye(4))
            e.append(np.linalg.norm(np.r_[pW.ravel() - HW.ravel(), pb - Hb]) /
                     np.linalg.norm(np.r_[HW.ravel(), Hb]))
        errs.append(np.sqrt(np.mean(np.square(e))))
    assert errs[1] < errs[0] / 4  # 64x the perturbations: about 8x less error
