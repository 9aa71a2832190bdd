"""Trace, diagonal, full matrix and per-block versions of any estimator.

Hutchinson (1989): tr(A) = E[zᵀAz] for probes with E[zzᵀ] = I (random signs); its standard
error is the sample's.  Hutch++ (Meyer, Musco, Musco & Woodruff 2021) spends a third of the
products on a sketch Q of A's top range, takes tr(QᵀAQ) exactly and Hutchinson's estimate only
on the deflated rest (I−QQᵀ)A(I−QQᵀ): for the fast-decaying spectra of networks the error falls
as 1/m instead of 1/√m.  The diagonal by Bekas, Kokiopoulou & Saad (2007): E[z ⊙ Az].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from scipy.sparse.linalg import LinearOperator

from ._common import as_operator, bar, products, rademacher


@dataclass
class Estimate:
    """A stochastic estimate: ``value``, its standard error ``stderr`` (same shape) and the
    number of matrix-vector products ``products`` it used.  ``float(e)`` is the value."""
    value: Any
    stderr: Any
    products: int

    def __float__(self):
        return float(self.value)


def full_matrix(A, *, chunk: int = 64, progress: bool = True) -> np.ndarray:
    """The dense n×n matrix A @ I, by blocks of ``chunk`` columns: the full Hessian of a small
    model (n products)."""
    A = as_operator(A)
    n = A.shape[0]
    out = np.empty((n, n))
    with bar(n, "columns", progress) as pbar:
        for j in range(0, n, chunk):
            E = np.zeros((n, min(chunk, n - j)))
            E[np.arange(j, j + E.shape[1]), np.arange(E.shape[1])] = 1.0
            out[:, j:j + E.shape[1]] = products(A, E, chunk, pbar)
    return out


def diagonal(A, *, method: str = "exact", samples: int = 100, seed: int | None = 0,
             chunk: int = 16, progress: bool = True):
    """The diagonal of A.  ``method="exact"``: from its columns (n products, for small models),
    returns an array.  ``"hutchinson"``: mean of z ⊙ Az over ``samples`` sign probes, returns an
    :class:`Estimate` with a per-entry standard error."""
    A = as_operator(A)
    n = A.shape[0]
    if method == "exact":
        d = np.empty(n)
        with bar(n, "diagonal", progress) as pbar:
            for j in range(0, n, chunk):
                k = min(chunk, n - j)
                E = np.zeros((n, k))
                E[np.arange(j, j + k), np.arange(k)] = 1.0
                d[j:j + k] = products(A, E, chunk, pbar)[np.arange(j, j + k), np.arange(k)]
        return d
    if method != "hutchinson":
        raise ValueError(f"diagonal: method must be 'exact' or 'hutchinson', not {method!r}")
    _need_samples(samples, 2)
    Z = rademacher(np.random.default_rng(seed), n, samples)
    with bar(samples, "diagonal", progress) as pbar:
        S = Z * products(A, Z, chunk, pbar)
    return Estimate(S.mean(axis=1), S.std(axis=1, ddof=1) / np.sqrt(samples), samples)


def trace(A, *, method: str = "hutch++", samples: int = 99, seed: int | None = 0,
          chunk: int = 16, progress: bool = True) -> Estimate:
    """tr(A) from ``samples`` products: ``"hutchinson"``, ``"hutch++"`` (a third of the products
    for the sketch, a third for its exact trace, a third for Hutchinson on the rest; the
    standard error is that last part's) or ``"exact"`` (the diagonal's sum, n products,
    standard error 0)."""
    A = as_operator(A)
    n = A.shape[0]
    rng = np.random.default_rng(seed)
    if method == "exact":
        return Estimate(float(diagonal(A, progress=progress, chunk=chunk).sum()), 0.0, n)
    if method == "hutchinson":
        _need_samples(samples, 2)
        Z = rademacher(rng, n, samples)
        with bar(samples, "trace", progress) as pbar:
            s = np.einsum("ij,ij->j", Z, products(A, Z, chunk, pbar))
        return Estimate(float(s.mean()), float(s.std(ddof=1) / np.sqrt(samples)), samples)
    if method != "hutch++":
        raise ValueError(f"trace: method must be 'hutch++', 'hutchinson' or 'exact', not {method!r}")
    _need_samples(samples, 6)
    k = min(samples // 3, n)
    m = samples - 2 * k
    with bar(samples, "trace (Hutch++)", progress) as pbar:
        Q = np.linalg.qr(products(A, rademacher(rng, n, k), chunk, pbar))[0]
        top = float(np.einsum("ij,ij->", Q, products(A, Q, chunk, pbar)))
        G = rademacher(rng, n, m)
        G -= Q @ (Q.T @ G)
        s = np.einsum("ij,ij->j", G, products(A, G, chunk, pbar))
    return Estimate(top + float(s.mean()), float(s.std(ddof=1) / np.sqrt(m)), 2 * k + m)


def _need_samples(samples, least):
    if samples < least:
        raise ValueError(f"samples must be at least {least} (for a standard error), not {samples}")


def block_operator(A, block) -> LinearOperator:
    """The diagonal block PᵀAP of A for one parameter block (a :class:`rop.operators.Block` or a
    slice): the curvature of that layer's parameters with the others held fixed."""
    A = as_operator(A)
    sl = block.slice if hasattr(block, "slice") else block
    start, stop, _ = sl.indices(A.shape[0])
    k, n = stop - start, A.shape[0]

    def mm(X):
        X = np.asarray(X, dtype=np.float64).reshape(k, -1)
        E = np.zeros((n, X.shape[1]))
        E[start:stop] = X
        return np.asarray(A @ E).reshape(n, -1)[start:stop]
    return LinearOperator((k, k), matvec=lambda x: mm(x)[:, 0], matmat=mm,
                          rmatvec=lambda x: mm(x)[:, 0], dtype=np.float64)


def per_block(estimator: Callable, A, *, blocks=None, **kwargs) -> dict:
    """``{block name: estimator(block_operator(A, block), **kwargs)}`` for each parameter block
    (``A.layout.blocks`` for rop's operators, or a dict name → slice): per-layer traces,
    eigenvalues, densities, diagonals, …"""
    if blocks is None:
        layout = getattr(A, "layout", None)
        if layout is None:
            raise ValueError("per_block: this operator has no .layout: pass blocks={name: slice}")
        blocks = {b.name: b.slice for b in layout.blocks}
    elif not isinstance(blocks, dict):
        blocks = {b.name: b.slice for b in blocks}
    return {name: estimator(block_operator(A, sl), **kwargs) for name, sl in blocks.items()}
