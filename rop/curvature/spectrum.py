"""Eigenvalues and the spectral density of a symmetric operator.

Lanczos builds an orthonormal basis Q of the Krylov space of a start vector and the tridiagonal
T = QᵀAQ; T's eigenvalues (Ritz values) converge first at the ends of A's spectrum.  In floating
point the basis loses orthogonality and copies of converged eigenvalues appear ("ghosts"), so
each new vector is orthogonalised against all earlier ones, twice (full reorthogonalisation):
O(n·m) memory, affordable for the tens to hundreds of steps these estimates use.

The spectral density by stochastic Lanczos quadrature (Lin, Saad & Yang 2016; Ghorbani, Krishnan
& Xiao 2019; PyHessian, Yao et al. 2020): for a unit random vector v, the Ritz values θᵢ and the
squared first components wᵢ of T's eigenvectors are the Gauss quadrature of v's spectral
measure Σⱼ (vᵀuⱼ)² δ(λ − λⱼ), whose average over v is the density (1/n) Σⱼ δ(λ − λⱼ).  Each node
is smoothed by a Gaussian, with PyHessian's conventions: variance ``sigma_squared`` · max(1,
λmax − λmin), a grid of ``num_bins`` points from the runs' mean smallest node − ``overhead`` to
their mean largest + ``overhead``, the runs averaged, then normalised to integrate to 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
from scipy.integrate import trapezoid
from scipy.sparse.linalg import eigsh

from ._common import as_operator, bar

_WHICH = {"top": "LA", "bottom": "SA", "LA": "LA", "SA": "SA", "LM": "LM", "SM": "SM"}


@dataclass
class Lanczos:
    """``alpha`` (m,) and ``beta`` (m−1,): the tridiagonal T; ``Q`` (m, n): the basis, by rows.
    m is less than asked when the Krylov space is invariant (then T's eigenvalues are exact)."""
    alpha: np.ndarray
    beta: np.ndarray
    Q: np.ndarray

    def ritz(self):
        """T's eigenvalues (ascending) and eigenvectors."""
        return scipy.linalg.eigh_tridiagonal(self.alpha, self.beta)


def lanczos(A, iters: int, *, v0=None, seed: int | None = 0, progress: bool = False) -> Lanczos:
    """``iters`` (at most n) Lanczos steps on A from ``v0`` (random if None), fully
    reorthogonalised."""
    A = as_operator(A)
    n = A.shape[0]
    m = min(int(iters), n)
    if m < 1:
        raise ValueError(f"lanczos: iters must be at least 1, not {iters}")
    q = np.random.default_rng(seed).normal(size=n) if v0 is None else np.array(v0, dtype=float)
    norm = np.linalg.norm(q)
    if q.shape != (n,) or not norm > 0:
        raise ValueError(f"lanczos: v0 must be a nonzero vector of length {n}")
    Q = np.zeros((m, n))
    Q[0] = q / norm
    alpha, beta = np.zeros(m), np.zeros(max(m - 1, 0))
    scale = 0.0
    with bar(m, "Lanczos", progress) as pbar:
        for j in range(m):
            w = np.asarray(A.matvec(Q[j]), dtype=float).ravel()
            alpha[j] = Q[j] @ w
            for _ in range(2):  # twice is enough (Parlett's "twice is enough")
                w -= Q[:j + 1].T @ (Q[:j + 1] @ w)
            pbar.update(1)
            if j == m - 1:
                break
            b = np.linalg.norm(w)
            scale = max(scale, abs(alpha[j]), b)
            if b <= 1e-12 * scale:  # invariant subspace: T holds exact eigenvalues
                return Lanczos(alpha[:j + 1], beta[:j], Q[:j + 1])
            beta[j] = b
            Q[j + 1] = w / b
    return Lanczos(alpha, beta, Q)


def eigenvalues(A, k: int = 1, *, which: str = "top", method: str = "eigsh", iters: int | None = None,
                tol: float = 0.0, seed: int | None = 0, vectors: bool = False,
                progress: bool = True):
    """The ``k`` largest (``which="top"``) or smallest (``"bottom"``) eigenvalues of A, largest
    first for "top" and smallest first for "bottom"; with ``vectors=True`` also the
    eigenvectors (columns, on the flat layout).

    ``method="eigsh"``: SciPy's ARPACK (implicitly restarted Lanczos), converged to ``tol``
    (0: machine precision), k < n.  ``"lanczos"``: ``iters`` steps of fully reorthogonalised
    Lanczos (default max(2k + 20, 40), at most n; exact at n), the Ritz values — one pass, no
    restarts, and the ends of the spectrum converge first.
    """
    A = as_operator(A)
    n = A.shape[0]
    if which not in _WHICH:
        raise ValueError(f"eigenvalues: which must be 'top' or 'bottom', not {which!r}")
    if not 1 <= k <= n:
        raise ValueError(f"eigenvalues: k must be between 1 and n = {n}, not {k}")
    if method == "eigsh":
        if k >= n:
            raise ValueError(f"eigenvalues: eigsh needs k < n = {n}; use method='lanczos' "
                             "or rop.curvature.full_matrix for all of them")
        v0 = np.random.default_rng(seed).normal(size=n)  # ARPACK's own start is not seeded
        counter = _Counting(A, bar(None, "eigsh", progress))
        try:
            vals, vecs = eigsh(counter, k=k, which=_WHICH[which], tol=tol, v0=v0)
        finally:
            counter.pbar.close()
    elif method == "lanczos":
        lz = lanczos(A, iters or max(2 * k + 20, 40), seed=seed, progress=progress)
        theta, S = lz.ritz()
        if k > len(theta):
            raise ValueError(f"eigenvalues: the Krylov space has dimension {len(theta)} < k = {k}")
        pick = np.argsort(theta)[-k:] if _WHICH[which] in ("LA", "LM") else np.argsort(theta)[:k]
        if _WHICH[which] in ("LM", "SM"):
            order = np.argsort(np.abs(theta))
            pick = order[-k:] if which == "LM" else order[:k]
        vals, vecs = theta[pick], lz.Q.T @ S[:, pick]
    else:
        raise ValueError(f"eigenvalues: method must be 'eigsh' or 'lanczos', not {method!r}")
    order = np.argsort(vals)
    if _WHICH[which] in ("LA", "LM"):
        order = order[::-1]
    vals, vecs = vals[order], vecs[:, order]
    return (vals, vecs) if vectors else vals


class _Counting:
    """An operator that moves a progress bar at each product (ARPACK's iteration count is not
    known in advance)."""

    def __init__(self, A, pbar):
        self.A, self.pbar, self.shape, self.dtype = A, pbar, A.shape, np.dtype(np.float64)

    def matvec(self, x):
        self.pbar.update(1)
        return self.A.matvec(x)


@dataclass
class SpectralDensity:
    """``grid`` and ``density`` (integrating to 1), and the quadrature behind them: ``nodes`` and
    ``weights`` (runs × iters; each run's weights sum to 1)."""
    grid: np.ndarray
    density: np.ndarray
    nodes: np.ndarray
    weights: np.ndarray
    sigma_squared: float

    def moment(self, p: int) -> float:
        """∫ λᵖ ρ(λ) dλ by the quadrature (exact for polynomials of degree < 2·iters per run):
        an unbiased estimate of (1/n) tr(Aᵖ)."""
        return float(np.mean(np.sum(self.weights * self.nodes ** p, axis=1)))

    def plot(self, path=None, ax=None, log: bool = True, **kwargs):
        return plot_density(self, path=path, ax=ax, log=log, **kwargs)


def spectral_density(A, *, runs: int = 10, iters: int = 80, sigma_squared: float = 1e-5,
                     num_bins: int = 10000, overhead: float = 0.01, seed: int | None = 0,
                     progress: bool = True) -> SpectralDensity:
    """The spectral density of A by stochastic Lanczos quadrature: ``runs`` random unit
    (Rademacher) start vectors, ``iters`` Lanczos steps each (at most n), smoothed with
    PyHessian's Gaussian kernel conventions (see the module docstring)."""
    A = as_operator(A)
    n = A.shape[0]
    if runs < 1:
        raise ValueError(f"spectral_density: runs must be at least 1, not {runs}")
    rng = np.random.default_rng(seed)
    m = min(iters, n)
    nodes, weights = np.zeros((runs, m)), np.zeros((runs, m))
    with bar(runs, "spectral density", progress) as pbar:
        for r in range(runs):
            lz = lanczos(A, m, v0=rng.choice([-1.0, 1.0], size=n))
            theta, S = lz.ritz()
            k = len(theta)  # an invariant subspace ends early: the nodes are exact, pad weight 0
            nodes[r, :k], weights[r, :k] = theta, S[0] ** 2
            nodes[r, k:] = theta[-1]
            pbar.update(1)
    lo = np.mean(nodes.min(axis=1)) - overhead
    hi = np.mean(nodes.max(axis=1)) + overhead
    grid = np.linspace(lo, hi, num_bins)
    var = sigma_squared * max(1.0, hi - lo)
    density = np.zeros(num_bins)
    for th, w in zip(nodes, weights):
        density += np.exp(-(grid[:, None] - th) ** 2 / (2 * var)) @ w
    density /= runs * np.sqrt(2 * np.pi * var)
    density /= trapezoid(density, grid)
    return SpectralDensity(grid, density, nodes, weights, var)


def plot_density(d: SpectralDensity, path=None, ax=None, log: bool = True, **kwargs):
    """Plot a :class:`SpectralDensity` with matplotlib (log density axis, as PyHessian and
    Ghorbani et al. draw it: the outliers are orders of magnitude rarer than the bulk); saved to
    ``path`` when given.  Returns the axes."""
    import matplotlib.pyplot as plt
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(d.grid, d.density, **kwargs)
    if log:
        ax.set_yscale("log")
        ax.set_ylim(max(d.density.max() * 1e-8, 1e-12), d.density.max() * 2)
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density")
    if path is not None:
        (fig or ax.figure).savefig(path, dpi=120, bbox_inches="tight")
        if fig is not None:
            plt.close(fig)
    return ax
