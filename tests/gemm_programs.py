"""Programs with sums of matrix products, written as users write them, for the rt.gemm pass
(tests/test_gemm.py).  Each takes W (m, p), U (m, q), b (m,), X (p, n), H (q, n) and is
differentiated with respect to (W, U, b)."""

import numpy as np


def recurrent_step(W, U, b, X, H):
    """One step of an Elman network: two products and a bias in the user's own code, so the
    primal sum is fused too, and its R-sum has four products."""
    h = np.tanh(W @ X + U @ H + b[:, None])
    return np.sum(h ** 2)


def recurrent_gradient(W, U, b, X, H):
    """The hand-written gradient of ``recurrent_step``: Hv through R{backprop}, where the
    R-rules produce sums of products in the forward and the backward pass."""
    h = np.tanh(W @ X + U @ H + b[:, None])
    d = 2.0 * h * (1.0 - h ** 2)
    return d @ X.T, d @ H.T, d.sum(axis=1)


def chain_and_difference(W, U, b, X, H):
    """A product of three matrices, a subtracted product (never fused), a bias that
    broadcasts along the rows."""
    A = W @ (X @ X.T) @ W.T
    B = A - U @ U.T + b
    return B * B


def broadcasting_products(W, U, b, X, H):
    """Products of different shapes that broadcast, (m, 1) + (m, n), and a bias wider than
    both: rt.gemm must give NumPy's broadcast, not a BLAS accumulation."""
    col = W @ X[:, :1] + U @ H
    wide = W @ X[:, :1] + U @ H[:, :1] + b[:, None] * np.ones((1, X.shape[1]))
    return np.tanh(col) + wide


def accumulating(W, U, b, X, H):
    """A gradient summed over examples with ``+=``, as courses write it: the sum and its R
    are accumulated in their own arrays (``rt.gemm(..., into=dW)``)."""
    dW = np.zeros((W.shape[0], X.shape[0]))
    for j in range(X.shape[1]):
        x = X[:, j:j + 1]
        z = np.tanh(W @ x + U @ H[:, j:j + 1] + b[:, None])
        dW += z @ x.T
    return dW * dW


def accumulating_kept(W, U, b, X, H):
    """The old value is kept under another name before the sum is rebound: ``first`` must
    keep W @ X, so the sum gets an array of its own (no ``into``)."""
    acc = W @ X
    first = acc
    acc = acc + U @ H
    return first * acc, acc


def accumulating_from_argument(W, U, b, X, H):
    """The sum starts as the caller's own array (``acc = U``, and R{acc} = the caller's
    direction): neither may be written, so no ``into``."""
    acc = U
    for j in range(2):
        acc = acc + W @ X[:, :U.shape[1]]
    return acc * acc
