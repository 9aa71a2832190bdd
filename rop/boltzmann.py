"""Boltzmann-machine statistics estimated from samples, with Pearlmutter's R-rule.

For a Boltzmann machine with energy E(s) = -1/2 s^T W s - b^T s at temperature T, the
correlations p_ij = <s_i s_j> and means m_i = <s_i> depend on (W, b) through the
distribution the samples are drawn from, not through the samples themselves, so the
ordinary rules would give R = 0.  Seed 000 ("Boltzmann Machines: Final Formula") gives
the exact directional derivative:

    R{p_ij} = (p_ij <D> - <s_i s_j D>) / T,     D = R{E(s)} = -1/2 s^T V s - c^T s,

a covariance under the same distribution, which this module estimates from the same
samples (with the N/(N-1) correction, so the estimate is unbiased).  Both primitives are
registered with :func:`rop.register_rule`, the mechanism users have for their own.
"""

from __future__ import annotations

import numpy as np

from .rules.custom import register_rule


def sampled_correlations(W, b, S, T):
    """<s_i s_j> under the Boltzmann distribution of (W, b, T), from samples S (N x n)."""
    return S.T @ S / S.shape[0]


def sampled_means(W, b, S, T):
    """<s_i> under the Boltzmann distribution of (W, b, T), from samples S (N x n)."""
    return np.sum(S, axis=0) / S.shape[0]


def energy_direction_W(S, R_W):
    """D_alpha = R{E(s_alpha)} for the weights: -1/2 s^T V s, per sample."""
    return -0.5 * np.sum((S @ R_W) * S, axis=1)


def energy_direction_b(S, R_b):
    """D_alpha = R{E(s_alpha)} for the biases: -c^T s, per sample."""
    return -(S @ R_b)


def correlation_covariance(S, D, T):
    """-(<s_i s_j D> - <s_i s_j><D>) / T, unbiased sample covariance: R{p_ij}."""
    N = S.shape[0]
    Dc = D - np.sum(D) / N
    return -((S * Dc[:, None]).T @ S) / ((N - 1) * T)


def mean_covariance(S, D, T):
    """-(<s_i D> - <s_i><D>) / T, unbiased sample covariance: R{m_i}."""
    N = S.shape[0]
    Dc = D - np.sum(D) / N
    return -(S.T @ Dc) / ((N - 1) * T)


register_rule(sampled_correlations, {
    "W": "correlation_covariance(S, energy_direction_W(S, R_W), T)",
    "b": "correlation_covariance(S, energy_direction_b(S, R_b), T)",
}, ndim=2)

register_rule(sampled_means, {
    "W": "mean_covariance(S, energy_direction_W(S, R_W), T)",
    "b": "mean_covariance(S, energy_direction_b(S, R_b), T)",
}, ndim=1)


def all_states(n):
    """The 2^n binary states of n units as rows of a float matrix (unit 0 varies slowest)."""
    idx = np.arange(2 ** n)
    return ((idx[:, None] >> np.arange(n - 1, -1, -1)[None, :]) & 1).astype(np.float64)
