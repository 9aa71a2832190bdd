"""Shared by the estimators: operators from what the user has, progress bars, random probes."""

from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator, aslinearoperator


def as_operator(A) -> LinearOperator:
    """``A`` as a square float64 LinearOperator (a dense array or a sparse matrix is wrapped)."""
    if not isinstance(A, LinearOperator):
        A = aslinearoperator(np.asarray(A, dtype=np.float64) if isinstance(A, (list, np.ndarray))
                             else A)
    if len(A.shape) != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"expected a square operator, got shape {A.shape}")
    return A


def bar(total: int, desc: str, progress: bool):
    """A tqdm bar that appears only when the work lasts more than half a second."""
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, disable=not progress, delay=0.5, leave=False)


def rademacher(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """n×k random signs: the probe with the least variance for Hutchinson's trace."""
    return rng.choice(np.array([-1.0, 1.0]), size=(n, k))


def products(A, Z: np.ndarray, chunk: int, pbar) -> np.ndarray:
    """A @ Z, ``chunk`` columns at a time so the progress bar moves and a batched product sees
    blocks of directions."""
    out = np.empty((A.shape[0], Z.shape[1]))
    for j in range(0, Z.shape[1], chunk):
        out[:, j:j + chunk] = np.asarray(A @ Z[:, j:j + chunk]).reshape(A.shape[0], -1)
        pbar.update(min(chunk, Z.shape[1] - j))
    return out
