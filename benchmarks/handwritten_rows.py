"""Hand-written R{backprop} for the benchmark tanh MLP in rows layout (examples in rows) — the
baseline for ``bench_layouts.py``'s ``backprop_rows``, as ``handwritten.py`` is for the columns
layout of ``examples/deep_mlp.py``.

The network: ``a_0 = X`` (B × n_0, one example per row), ``h_i = a_i W_i^T + b_i``,
``a_{i+1} = tanh(h_i)`` for hidden layers, linear output ``y = h_{L-1}``, loss
``E = 1/(2B) ||y - T||^2``.  ``W_i`` is (out × in), as in the columns layout, so the same
parameter arrays serve both layouts.

``grad_rows(Ws, bs, X, T)`` is ordinary backprop (``dW_i = d^T a_i``, ``db_i = sum_rows d``).
``rbackprop_rows(Ws, bs, X, T, Vs, cs)`` returns ``((dWs, dbs), (HvWs, Hvbs))``, the gradient
and the Hessian-vector product along ``v = (Vs, cs)``, by Pearlmutter's R{·} operator written
out by hand:

forward R-pass      R{h_i}     = a_i V_i^T + R{a_i} W_i^T + c_i      (R{a_0} = R{X} = 0,
                    R{a_{i+1}} = (1 - a_{i+1}^2) * R{h_i}             so layer 0 is X V_0^T + c_0)
output              R{d}       = R{y} / B
backward R-pass     R{dW_i}    = R{d}^T a_i + d^T R{a_i}            (layer 0: R{d}^T X only)
                    R{db_i}    = sum_rows R{d}
                    e = d W_i,   R{e} = d V_i + R{d} W_i
                    d' = e * s,  R{d'} = R{e} * s - 2 a_i R{a_i} * e     with s = 1 - a_i^2

No product with the zero R{a_0} is formed (no wasted GEMM at the input layer).

The same source is used twice: as plain NumPy (``rbackprop_rows``, ``grad_rows``) and compiled
with ``numba.njit`` (``rbackprop_rows_nb``, ``grad_rows_nb``, which take the per-layer lists as
tuples, like rop's raw dispatcher), exactly as ``handwritten.py`` does.
"""

from __future__ import annotations

import numpy as np


def grad_rows(Ws, bs, X, T):
    """Backprop, examples in rows: ``(dWs, dbs)`` of E = 1/(2B) ||net(X) - T||^2."""
    L = len(Ws)
    acts = [X] * (L + 1)
    for i in range(L):
        h = acts[i] @ Ws[i].T + bs[i]
        if i < L - 1:
            acts[i + 1] = np.tanh(h)
        else:
            acts[i + 1] = h
    d = (acts[L] - T) / X.shape[0]
    dWs = [X] * L
    dbs = [bs[0]] * L
    for i in range(L - 1, -1, -1):
        dWs[i] = d.T @ acts[i]
        dbs[i] = d.sum(axis=0)
        if i > 0:
            d = (d @ Ws[i]) * (1.0 - acts[i] * acts[i])
    return dWs, dbs


def rbackprop_rows(Ws, bs, X, T, Vs, cs):
    """``((dWs, dbs), (HvWs, Hvbs))``: the gradient and R{gradient} = Hv along (Vs, cs)."""
    L = len(Ws)
    B = X.shape[0]
    acts = [X] * (L + 1)
    Racts = [X] * (L + 1)          # Racts[0] is never read: R{X} = 0
    for i in range(L):
        a = acts[i]
        WT = Ws[i].T
        h = a @ WT + bs[i]
        if i == 0:
            Rh = a @ Vs[i].T + cs[i]
        else:
            Rh = a @ Vs[i].T + Racts[i] @ WT + cs[i]
        if i < L - 1:
            y = np.tanh(h)
            acts[i + 1] = y
            Racts[i + 1] = (1.0 - y * y) * Rh
        else:
            acts[i + 1] = h
            Racts[i + 1] = Rh
    d = (acts[L] - T) / B
    Rd = Racts[L] / B
    dWs = [X] * L
    dbs = [bs[0]] * L
    RdWs = [X] * L
    Rdbs = [bs[0]] * L
    for i in range(L - 1, -1, -1):
        a = acts[i]
        dT = d.T
        dWs[i] = dT @ a
        if i == 0:
            RdWs[i] = Rd.T @ a
        else:
            RdWs[i] = Rd.T @ a + dT @ Racts[i]
        dbs[i] = d.sum(axis=0)
        Rdbs[i] = Rd.sum(axis=0)
        if i > 0:
            W = Ws[i]
            e = d @ W
            Re = d @ Vs[i] + Rd @ W
            s = 1.0 - a * a
            d = e * s
            Rd = Re * s - 2.0 * a * Racts[i] * e
    return (dWs, dbs), (RdWs, Rdbs)


try:  # Numba is a hard dependency of rop, but keep the NumPy baseline importable without it
    from benchmarks.handwritten import _njit
    grad_rows_nb = _njit(grad_rows)
    rbackprop_rows_nb = _njit(rbackprop_rows)
except ImportError:  # pragma: no cover
    grad_rows_nb = rbackprop_rows_nb = None
