"""Hand-written R{backprop} for the deep tanh MLP of ``examples/deep_mlp.py`` — the baseline
rop's generated code is measured against.

The network: ``a_0 = X``, ``h_i = W_i a_i + b_i``, ``a_{i+1} = tanh(h_i)`` for hidden layers,
linear output ``y = h_{L-1}``, loss ``E = 1/(2B) ||y - T||^2`` (B = batch = columns of X).

``grad(Ws, bs, X, T)`` is ordinary backprop.  ``rbackprop(Ws, bs, X, T, Vs, cs)`` returns
``((dWs, dbs), (HvWs, Hvbs))``: the gradient and the Hessian-vector product along
``v = (Vs, cs)``, by Pearlmutter's R{·} operator written out by hand the way Martens
(2010, "Deep learning via Hessian-free optimization", R-backprop for the Gauss-Newton /
Hessian product) does it:

forward R-pass      R{h_i}     = V_i a_i + W_i R{a_i} + c_i          (R{a_0} = R{X} = 0,
                    R{a_{i+1}} = (1 - a_{i+1}^2) * R{h_i}             so layer 0 is V_0 X + c_0)
output              R{d}       = R{y} / B
backward R-pass     R{dW_i}    = R{d} a_i^T + d R{a_i}^T            (layer 0: R{d} X^T only)
                    R{db_i}    = sum_columns R{d}
                    e = W_i^T d,   R{e} = V_i^T d + W_i^T R{d}
                    d' = e * s,    R{d'} = R{e} * s - 2 a_i R{a_i} * e   with s = 1 - a_i^2

No product with the zero R{a_0} is formed (no wasted GEMM at the input layer).

The same source is used twice: as plain NumPy (``rbackprop``, ``grad``) and compiled with
``numba.njit`` (``rbackprop_nb``, ``grad_nb``, which take the per-layer lists as tuples, like
rop's raw dispatcher).  Elementwise chains are left as NumPy expressions; Numba fuses them into
single loops by its array-expression rewrite.
"""

from __future__ import annotations

import numpy as np


def grad(Ws, bs, X, T):
    """Backprop: ``(dWs, dbs)`` of E = 1/(2B) ||net(X) - T||^2."""
    L = len(Ws)
    acts = [X] * (L + 1)
    for i in range(L):
        h = Ws[i] @ acts[i] + bs[i][:, None]
        if i < L - 1:
            acts[i + 1] = np.tanh(h)
        else:
            acts[i + 1] = h
    d = (acts[L] - T) / X.shape[1]
    dWs = [X] * L
    dbs = [bs[0]] * L
    for i in range(L - 1, -1, -1):
        dWs[i] = d @ acts[i].T
        dbs[i] = d.sum(axis=1)
        if i > 0:
            d = (Ws[i].T @ d) * (1.0 - acts[i] * acts[i])
    return dWs, dbs


def rbackprop(Ws, bs, X, T, Vs, cs):
    """``((dWs, dbs), (HvWs, Hvbs))``: the gradient and R{gradient} = Hv along (Vs, cs)."""
    L = len(Ws)
    B = X.shape[1]
    acts = [X] * (L + 1)
    Racts = [X] * (L + 1)          # Racts[0] is never read: R{X} = 0
    for i in range(L):
        a = acts[i]
        h = Ws[i] @ a + bs[i][:, None]
        if i == 0:
            Rh = Vs[i] @ a + cs[i][:, None]
        else:
            Rh = Vs[i] @ a + Ws[i] @ Racts[i] + cs[i][:, None]
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
        aT = acts[i].T
        dWs[i] = d @ aT
        if i == 0:
            RdWs[i] = Rd @ aT
        else:
            RdWs[i] = Rd @ aT + d @ Racts[i].T
        dbs[i] = d.sum(axis=1)
        Rdbs[i] = Rd.sum(axis=1)
        if i > 0:
            WT = Ws[i].T
            e = WT @ d
            Re = Vs[i].T @ d + WT @ Rd
            a = acts[i]
            s = 1.0 - a * a
            d = e * s
            Rd = Re * s - 2.0 * a * Racts[i] * e
    return (dWs, dbs), (RdWs, Rdbs)


def _njit(fn):
    import numba
    return numba.njit(cache=True, fastmath=False)(fn)


try:  # Numba is a hard dependency of rop, but keep the NumPy baseline importable without it
    grad_nb = _njit(grad)
    rbackprop_nb = _njit(rbackprop)
except ImportError:  # pragma: no cover
    grad_nb = rbackprop_nb = None
