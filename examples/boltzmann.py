"""Boltzmann machines: exact Hv by the ordinary R-rules, a sampled Hv by a registered rule,
and weight perturbation as a baseline (seed 000, "Boltzmann Machines" to the last sections).

Energy E(s) = -1/2 s^T W s - b^T s over binary units s in {0, 1}, P(s) = exp(-E/T) / Z.

1. Exact: a 9-unit machine (6 visible, 3 hidden) whose statistics are computed by enumerating
   all 512 states.  The gradient of G = KL(q || p_visible) comes from clamped and free
   statistics; rop's ordinary rules give its Hv, and R{p_free} equals the seed's closed form
   (p_ij <D> - <s_i s_j D>) / T.  Damped Newton-CG on the exact Hv learns q.
2. Sampled: a 40-unit machine learns the moments of data from a teacher machine; the model's
   statistics come from Gibbs samples through `rop.boltzmann.sampled_correlations`, whose
   registered R-rule is the covariance form estimated from the same samples.
3. Estimators: on a 6-unit machine, the error of the sampled Hv and of the weight-perturbation
   Hv against the exact Hv as the number of samples / perturbations grows (a PNG plot).

Run:  python examples/boltzmann.py [--quick] [--plot PATH]
"""

import argparse
import os
import time

import numba
import numpy as np

from rop import rop
from rop.boltzmann import all_states, sampled_correlations, sampled_means
from rop.curvature import newton_cg


# ----------------------------------------------------------------------------- exact
@rop(wrt=("W", "b"))
def bm_exact_gradient(W, b, S, q, n_hidden_states, T):
    """(G, dG/dW, dG/db, p_free) for G = KL(q || p_visible), by enumerating the states S.

    S lists all states with the visible units varying slowest, so that reshaping the
    2^n state vector to (visible configurations, hidden configurations) groups each
    visible configuration's hidden states in one row.
    """
    E = -0.5 * np.sum((S @ W) * S, axis=1) - S @ b       # energy of every state
    a = -E / T
    P = np.exp(a - np.max(a))
    P = P / np.sum(P)                                     # free: P(s)
    A = a.reshape(q.shape[0], n_hidden_states)
    Ph = np.exp(A - np.max(A, axis=1, keepdims=True))
    Ph = Ph / np.sum(Ph, axis=1, keepdims=True)           # P(h | v)
    Pc = (q[:, None] * Ph).reshape(S.shape[0])           # clamped: q(v) P(h | v)
    p_free = S.T @ (P[:, None] * S)                       # <s_i s_j> free
    p_clamped = S.T @ (Pc[:, None] * S)                   # <s_i s_j> clamped
    mask = 1.0 - np.eye(W.shape[0])
    gW = -0.5 * (p_clamped - p_free) / T * mask
    gb = -(S.T @ Pc - S.T @ P) / T
    Pv = np.sum(P.reshape(q.shape[0], n_hidden_states), axis=1)
    G = np.sum(q * (np.log(q + 1e-300) - np.log(Pv)))
    return G, gW, gb, p_free


def random_machine(n, rng, scale=1.0):
    W = scale * rng.normal(size=(n, n))
    W = 0.5 * (W + W.T)
    np.fill_diagonal(W, 0.0)
    return W, scale * rng.normal(size=n)


def symmetric_direction(n, rng):
    V, c = random_machine(n, rng)
    return V, c


def target_distribution(n_vis, rng):
    """A distribution over visible patterns: three prototypes with bit-flip noise."""
    V = all_states(n_vis)
    protos = (rng.random((3, n_vis)) < 0.5).astype(float)
    d = np.abs(V[:, None, :] - protos[None]).sum(axis=2)
    q = np.exp(-1.5 * d).sum(axis=1)
    return q / q.sum()


def closed_form_r_p(S, W, b, V, c, T):
    """The seed's R{p_ij} = (p_ij <D> - <s_i s_j D>) / T with D = R{E}, by enumeration."""
    E = -0.5 * np.sum((S @ W) * S, axis=1) - S @ b
    P = np.exp(-(E - E.min()) / T)
    P /= P.sum()
    D = -0.5 * np.sum((S @ V) * S, axis=1) - S @ c
    p = S.T @ (P[:, None] * S)
    return (p * np.sum(P * D) - S.T @ ((P * D)[:, None] * S)) / T


def exact_demo(steps):
    n_vis, n_hid, T = 6, 3, 1.0
    rng = np.random.default_rng(0)
    S = all_states(n_vis + n_hid)
    q = target_distribution(n_vis, rng)
    W0, b0 = random_machine(n_vis + n_hid, rng, scale=0.1)
    V, c = symmetric_direction(n_vis + n_hid, rng)
    args = (S, q, 2 ** n_hid, T)
    (G, gW, gb, p), (_, HvW, Hvb, Rp) = bm_exact_gradient.hvp(W0, b0, *args, v=(V, c))
    err = np.max(np.abs(Rp - closed_form_r_p(S, W0, b0, V, c, T))) / np.max(np.abs(Rp))
    print(f"[exact] {n_vis}+{n_hid} units, {S.shape[0]} states: G = {G:.6f}")
    print(f"[exact] R{{p_free}} vs the seed's closed form (p<D> - <ssD>)/T: rel. error {err:.1e}")

    def loss_and_grad(wb):
        G, gW, gb, _ = bm_exact_gradient(wb[0], wb[1], *args)
        return G, (gW, gb)

    def hvp_at(wb):
        def hvp(d):
            Vd = 0.5 * (d[0] + d[0].T) * (1.0 - np.eye(d[0].shape[0]))  # stay symmetric
            _, (_, HW, Hb, _) = bm_exact_gradient.hvp(wb[0], wb[1], *args, v=(Vd, d[1]))
            return HW, Hb
        return hvp
    _, newton = newton_cg(loss_and_grad, hvp_at, (W0, b0), steps=steps, damping=1.0)
    best = None
    for lr in (0.5, 1.0, 2.0, 4.0):
        W, b, curve = W0.copy(), b0.copy(), []
        for _ in range(steps):
            G, gW, gb, _ = bm_exact_gradient(W, b, *args)
            curve.append(G)
            W, b = W - lr * gW, b - lr * gb
        if np.isfinite(curve[-1]) and (best is None or curve[-1] < best[1][-1]):
            best = (lr, curve)
    print(f"[exact] step   Newton-CG  KL(q||p)   gradient descent (lr={best[0]})")
    for k, (a, g) in enumerate(zip(newton, best[1])):
        print(f"[exact] {k:4d}   {a:.6e}      {g:.6e}")
    return err, newton, best[1]


# ----------------------------------------------------------------------------- sampled
@rop(wrt=("W", "b"))
def bm_sampled_gradient(W, b, S, p_data, m_data, T):
    """Moment-matching gradient of a fully visible machine, model statistics from samples S."""
    mask = 1.0 - np.eye(W.shape[0])
    p = sampled_correlations(W, b, S, T)
    m = sampled_means(W, b, S, T)
    return -0.5 * (p_data - p) / T * mask, -(m_data - m) / T


@numba.njit(cache=True)
def gibbs(W, b, T, n_samples, burn_in, thin, seed):
    """Samples of a Boltzmann machine by sequential Gibbs sweeps."""
    np.random.seed(seed)
    n = W.shape[0]
    s = (np.random.random(n) < 0.5).astype(np.float64)
    out = np.empty((n_samples, n))
    k = 0
    for sweep in range(burn_in + n_samples * thin):
        for i in range(n):
            x = (W[i] @ s + b[i]) / T
            s[i] = 1.0 if np.random.random() < 1.0 / (1.0 + np.exp(-x)) else 0.0
        if sweep >= burn_in and (sweep - burn_in) % thin == 0 and k < n_samples:
            out[k] = s
            k += 1
    return out


def sampled_demo(steps, n_samples):
    n, T = 40, 1.0
    rng = np.random.default_rng(1)
    Wt, bt = random_machine(n, rng, scale=0.15)
    data = gibbs(Wt, bt, T, n_samples, 200, 2, 11)
    p_data, m_data = data.T @ data / len(data), data.mean(axis=0)
    W0, b0 = np.zeros((n, n)), np.zeros(n)
    seeds = iter(range(1000, 100000))

    def moments_error(W, b):
        S = gibbs(W, b, T, n_samples, 100, 2, 7)
        return np.max(np.abs(S.T @ S / len(S) - p_data))

    def loss_and_grad(wb):
        S = gibbs(wb[0], wb[1], T, n_samples, 100, 2, next(seeds))
        gW, gb = bm_sampled_gradient(wb[0], wb[1], S, p_data, m_data, T)
        # a surrogate objective: the size of the moment mismatch the gradient measures
        return float(np.sum(gW ** 2) + np.sum(gb ** 2)), (gW, gb)

    def hvp_at(wb):
        S = gibbs(wb[0], wb[1], T, n_samples, 100, 2, next(seeds))  # one sample set per step

        def hvp(d):
            Vd = 0.5 * (d[0] + d[0].T) * (1.0 - np.eye(n))
            _, (HW, Hb) = bm_sampled_gradient.hvp(wb[0], wb[1], S, p_data, m_data, T, v=(Vd, d[1]))
            return HW, Hb
        return hvp
    t0 = time.perf_counter()
    (W, b), _ = newton_cg(loss_and_grad, hvp_at, (W0, b0), steps=steps, damping=1.0, cg_iters=20)
    print(f"[sampled] {n} units, {n_samples} Gibbs samples per statistic, {steps} Newton-CG "
          f"steps on the sampled Hv ({time.perf_counter() - t0:.1f} s)")
    e0, e1 = moments_error(W0, b0), moments_error(W, b)
    print(f"[sampled] max |<s_i s_j>_data - <s_i s_j>_model|: {e0:.4f} before, {e1:.4f} after")
    return e0, e1


# ----------------------------------------------------------------------------- estimators
def weight_perturbation_hvp(G, W, b, V, c, n_pert, rng, sigma=1e-2, r=1e-3):
    """Hv by weight perturbation: the gradient estimated from objective differences along
    random perturbations (antithetic), differenced along v with common perturbations."""
    n = W.shape[0]
    hW, hb = np.zeros_like(W), np.zeros_like(b)
    for _ in range(n_pert):
        dW, db = random_machine(n, rng)
        dW *= sigma
        db *= sigma

        def gdot(Wx, bx):
            return (G(Wx + dW, bx + db) - G(Wx - dW, bx - db)) / (2 * sigma)  # ~ grad . z
        k = (gdot(W + r * V, b + r * c) - gdot(W - r * V, b - r * c)) / (2 * r)
        hW += k * dW / sigma
        hb += k * db / sigma
    return hW / n_pert, hb / n_pert


def estimator_errors(ns, repeats=20, seed=2):
    """Relative errors of the sampled Hv and of weight perturbation against the exact Hv."""
    n, T = 6, 1.0
    rng = np.random.default_rng(seed)
    S = all_states(n)
    W, b = random_machine(n, rng, scale=0.5)
    V, c = symmetric_direction(n, rng)
    q = np.full(2 ** n, 1.0 / 2 ** n)  # fully visible: hidden states = 1
    _, (_, HW, Hb, _) = bm_exact_gradient.hvp(W, b, S, q, 1, T, v=(V, c))
    exact = np.concatenate([HW.ravel(), Hb])
    E = -0.5 * np.sum((S @ W) * S, axis=1) - S @ b
    P = np.exp(-(E - E.min()) / T)
    P /= P.sum()
    p_data = np.zeros((n, n))

    def G(Wx, bx):
        return bm_exact_gradient(Wx, bx, S, q, 1, T)[0]
    sampled, perturbed = [], []
    for N in ns:
        errs_s, errs_p = [], []
        for _ in range(repeats):
            X = S[rng.choice(len(S), size=N, p=P)]
            _, (hW, hb) = bm_sampled_gradient.hvp(W, b, X, p_data, np.zeros(n), T, v=(V, c))
            est = np.concatenate([hW.ravel(), hb])
            errs_s.append(np.linalg.norm(est - exact) / np.linalg.norm(exact))
            pW, pb = weight_perturbation_hvp(G, W, b, V, c, N // 10 or 1, rng)
            pW = 0.5 * (pW + pW.T) * (1 - np.eye(n))
            est = np.concatenate([pW.ravel(), pb])
            errs_p.append(np.linalg.norm(est - exact) / np.linalg.norm(exact))
        sampled.append(float(np.sqrt(np.mean(np.square(errs_s)))))
        perturbed.append(float(np.sqrt(np.mean(np.square(errs_p)))))
    return sampled, perturbed


def plot(ns, sampled, perturbed, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.loglog(ns, sampled, "o-", label="sampled Hv (registered covariance rule), N samples")
    ax.loglog([n // 10 or 1 for n in ns], perturbed, "s-",
              label="weight perturbation, N/10 perturbations (2 x 4 objective calls each)")
    ax.loglog(ns, sampled[0] * np.sqrt(ns[0] / np.asarray(ns)), "k:", label="1/sqrt(N)")
    ax.set_xlabel("samples / perturbations")
    ax.set_ylabel("relative error of Hv (RMS over repeats)")
    ax.set_title("6-unit Boltzmann machine: estimators of Hv vs the exact R{.}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps and samples (CI)")
    ap.add_argument("--plot", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                   "boltzmann_estimators.png"))
    a = ap.parse_args(argv)
    err, newton, gd = exact_demo(steps=8 if a.quick else 15)
    e0, e1 = sampled_demo(steps=3 if a.quick else 6, n_samples=1000 if a.quick else 4000)
    ns = [100, 400, 1600] if a.quick else [100, 400, 1600, 6400]
    sampled, perturbed = estimator_errors(ns, repeats=8 if a.quick else 20)
    print("[estimators]     N   sampled-Hv error   weight-perturbation error (N/10 perturbations)")
    for n, s, p in zip(ns, sampled, perturbed):
        print(f"[estimators] {n:5d}   {s:.3e}          {p:.3e}")
    plot(ns, sampled, perturbed, a.plot)
    print(f"[estimators] plot written to {a.plot}")
    assert err < 1e-10, err
    assert newton[-1] < gd[-1] and e1 < e0


if __name__ == "__main__":
    main()
