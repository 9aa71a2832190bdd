"""Hand-written gradients and R{backprop} (Hessian-vector products) of the classifier, the RNN
and the LSTM of ``benchmarks/models.py``, compiled with ``numba.njit`` — the baselines
bench_models.py measures rop's generated code against.

Each ``r_<model>(params..., data..., v...)`` returns ``((loss, grads...), (R{loss}, Hv...))``
in the layout rop's ``.hvp`` returns (R{loss} = g·v), and ``grad_<model>(params..., data...)``
returns ``(loss, grads...)``.  The classifier's per-layer lists are passed as tuples.

Written by hand with Pearlmutter's rules, on the same algorithm as the user's program (the
same products, time step by time step; nothing batched over time that the program does not
batch), the way a careful person would:

* R{X} = R{h0} = R{c0} = 0: no product with a zero R-value is formed (the first layer's
  ``R{h_0} @ W``, the first time step's ``R{h_0} @ Whh`` and ``R{h_0}ᵀ @ draw``).
* Products whose result is not used are skipped: the classifier's ``d @ W_0ᵀ`` (dX), the
  RNN's ``dh_next`` and the LSTM's ``dh`` after the first time step.
* Softmax cross-entropy: p = softmax(z), d = (p − onehot(y)) / N, R{p} = p ∘ (R{z} − Σ_k p R{z}),
  R{d} = R{p} / N, R{loss} = Σ d ∘ R{z}; one loop over the rows.
* tanh: R{tanh(a)} = (1 − t²) R{a}; in the backward pass
  R{(1 − t²) ∘ e} = (1 − t²) R{e} − 2 t R{t} e.
* sigmoid s: R{s} = s(1 − s) R{a}; R{s(1 − s) e} = s(1 − s) R{e} + (1 − 2s) R{s} e.

Elementwise chains are left as NumPy expressions, which Numba fuses into single loops.
"""

from __future__ import annotations

import numpy as np

try:
    import numba
    njit = numba.njit(cache=True, fastmath=False)
except ImportError:  # pragma: no cover (numba is a dependency of rop)
    def njit(f):
        return f


# --------------------------------------------------------------------------- softmax CE
@njit
def softmax_ce(z, y):
    """(loss, p): mean cross-entropy of softmax(z) rows with integer labels y, and softmax(z)."""
    N, C = z.shape
    p = np.empty_like(z)
    loss = 0.0
    for n in range(N):
        m = z[n, 0]
        for k in range(1, C):
            if z[n, k] > m:
                m = z[n, k]
        s = 0.0
        for k in range(C):
            e = np.exp(z[n, k] - m)
            p[n, k] = e
            s += e
        for k in range(C):
            p[n, k] /= s
        loss -= z[n, y[n]] - m - np.log(s)
    return loss / N, p


@njit
def ce_delta(p, y):
    """dloss/dz = (p - onehot(y)) / N."""
    N = p.shape[0]
    d = p / N
    for n in range(N):
        d[n, y[n]] -= 1.0 / N
    return d


@njit
def r_ce(p, d, Rz):
    """(R{d}, R{loss}) for d = (p - onehot)/N, p = softmax(z), given R{z}."""
    N, C = p.shape
    Rd = np.empty_like(p)
    Rl = 0.0
    for n in range(N):
        s = 0.0
        for k in range(C):
            s += p[n, k] * Rz[n, k]
        for k in range(C):
            Rd[n, k] = p[n, k] * (Rz[n, k] - s) / N
            Rl += d[n, k] * Rz[n, k]
    return Rd, Rl


# --------------------------------------------------------------------------- classifier
@njit
def grad_classifier(Ws, bs, X, y):
    L = len(Ws)
    hs = [X]
    for i in range(L - 1):
        hs.append(np.tanh(hs[i] @ Ws[i] + bs[i]))
    z = hs[L - 1] @ Ws[L - 1] + bs[L - 1]
    loss, p = softmax_ce(z, y)
    d = ce_delta(p, y)
    dWs = [X] * L
    dbs = [bs[0]] * L
    for i in range(L - 1, -1, -1):
        dWs[i] = hs[i].T @ d
        dbs[i] = d.sum(axis=0)
        if i > 0:
            d = (d @ Ws[i].T) * (1.0 - hs[i] * hs[i])
    return loss, dWs, dbs


@njit
def r_classifier(Ws, bs, X, y, Vs, cs):
    L = len(Ws)
    hs = [X]
    Rhs = [X]                       # Rhs[0] = R{X} = 0 is never read
    for i in range(L - 1):
        h = np.tanh(hs[i] @ Ws[i] + bs[i])
        if i == 0:
            Ra = hs[i] @ Vs[i] + cs[i]
        else:
            Ra = hs[i] @ Vs[i] + Rhs[i] @ Ws[i] + cs[i]
        hs.append(h)
        Rhs.append((1.0 - h * h) * Ra)
    z = hs[L - 1] @ Ws[L - 1] + bs[L - 1]
    if L == 1:
        Rz = hs[L - 1] @ Vs[L - 1] + cs[L - 1]
    else:
        Rz = hs[L - 1] @ Vs[L - 1] + Rhs[L - 1] @ Ws[L - 1] + cs[L - 1]
    loss, p = softmax_ce(z, y)
    d = ce_delta(p, y)
    Rd, Rloss = r_ce(p, d, Rz)
    dWs = [X] * L
    dbs = [bs[0]] * L
    RdWs = [X] * L
    Rdbs = [bs[0]] * L
    for i in range(L - 1, -1, -1):
        hT = hs[i].T
        dWs[i] = hT @ d
        if i == 0:
            RdWs[i] = hT @ Rd
        else:
            RdWs[i] = hT @ Rd + Rhs[i].T @ d
        dbs[i] = d.sum(axis=0)
        Rdbs[i] = Rd.sum(axis=0)
        if i > 0:
            WT = Ws[i].T
            e = d @ WT
            Re = Rd @ WT + d @ Vs[i].T
            h = hs[i]
            s = 1.0 - h * h
            d = e * s
            Rd = Re * s - 2.0 * h * Rhs[i] * e
    return (loss, dWs, dbs), (Rloss, RdWs, Rdbs)


# --------------------------------------------------------------------------- RNN
@njit
def grad_rnn(Wxh, Whh, bh, Why, by, h0, X, y):
    T = X.shape[0]
    hs = [h0]
    ps = []
    loss = 0.0
    for t in range(T):
        h = np.tanh(X[t] @ Wxh + hs[t] @ Whh + bh)
        hs.append(h)
        lt, p = softmax_ce(h @ Why + by, y[t])
        loss += lt
        ps.append(p)
    dWxh, dWhh, dbh = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(bh)
    dWhy, dby = np.zeros_like(Why), np.zeros_like(by)
    dh_next = np.zeros_like(h0)
    for t in range(T - 1, -1, -1):
        dy = ce_delta(ps[t], y[t])
        h = hs[t + 1]
        dWhy += h.T @ dy
        dby += dy.sum(axis=0)
        dh = dy @ Why.T + dh_next
        draw = (1.0 - h * h) * dh
        dWxh += X[t].T @ draw
        dWhh += hs[t].T @ draw
        dbh += draw.sum(axis=0)
        if t > 0:
            dh_next = draw @ Whh.T
    return loss, dWxh, dWhh, dbh, dWhy, dby


@njit
def r_rnn(Wxh, Whh, bh, Why, by, h0, X, y, VWxh, VWhh, cbh, VWhy, cby):
    T = X.shape[0]
    hs = [h0]
    Rhs = [h0]                      # Rhs[0] = R{h0} = 0 is never read
    dys = []
    Rdys = []
    loss = 0.0
    Rloss = 0.0
    for t in range(T):
        xt = X[t]
        h = np.tanh(xt @ Wxh + hs[t] @ Whh + bh)
        if t == 0:
            Ra = xt @ VWxh + hs[t] @ VWhh + cbh
        else:
            Ra = xt @ VWxh + hs[t] @ VWhh + Rhs[t] @ Whh + cbh
        Rh = (1.0 - h * h) * Ra
        hs.append(h)
        Rhs.append(Rh)
        Rz = h @ VWhy + Rh @ Why + cby
        lt, p = softmax_ce(h @ Why + by, y[t])
        loss += lt
        dy = ce_delta(p, y[t])
        Rdy, Rlt = r_ce(p, dy, Rz)
        Rloss += Rlt
        dys.append(dy)
        Rdys.append(Rdy)
    dWxh, dWhh, dbh = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(bh)
    dWhy, dby = np.zeros_like(Why), np.zeros_like(by)
    RdWxh, RdWhh, Rdbh = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(bh)
    RdWhy, Rdby = np.zeros_like(Why), np.zeros_like(by)
    dh_next = np.zeros_like(h0)
    Rdh_next = np.zeros_like(h0)
    WhyT = Why.T
    VWhyT = VWhy.T
    for t in range(T - 1, -1, -1):
        dy, Rdy = dys[t], Rdys[t]
        h, Rh = hs[t + 1], Rhs[t + 1]
        hT = h.T
        dWhy += hT @ dy
        RdWhy += Rh.T @ dy + hT @ Rdy
        dby += dy.sum(axis=0)
        Rdby += Rdy.sum(axis=0)
        dh = dy @ WhyT + dh_next
        Rdh = Rdy @ WhyT + dy @ VWhyT + Rdh_next
        s = 1.0 - h * h
        draw = s * dh
        Rdraw = s * Rdh - 2.0 * h * Rh * dh
        xT = X[t].T
        dWxh += xT @ draw
        RdWxh += xT @ Rdraw
        dWhh += hs[t].T @ draw
        if t == 0:
            RdWhh += hs[t].T @ Rdraw
        else:
            RdWhh += hs[t].T @ Rdraw + Rhs[t].T @ draw
        dbh += draw.sum(axis=0)
        Rdbh += Rdraw.sum(axis=0)
        if t > 0:
            dh_next = draw @ Whh.T
            Rdh_next = Rdraw @ Whh.T + draw @ VWhh.T
    return (loss, dWxh, dWhh, dbh, dWhy, dby), (Rloss, RdWxh, RdWhh, Rdbh, RdWhy, Rdby)


# --------------------------------------------------------------------------- LSTM
@njit
def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@njit
def grad_lstm(Wx, Wh, b, Wy, by, h0, X, y):
    T = X.shape[0]
    N, H = h0.shape
    hs = [h0]
    cs = [np.zeros_like(h0)]
    gates = []                      # (N, 4H): i, f, o, g after their nonlinearities
    for t in range(T):
        a = X[t] @ Wx + hs[t] @ Wh + b
        G = np.empty_like(a)
        G[:, :3 * H] = _sigmoid(a[:, :3 * H])
        G[:, 3 * H:] = np.tanh(a[:, 3 * H:])
        c = G[:, H:2 * H] * cs[t] + G[:, :H] * G[:, 3 * H:]
        hs.append(G[:, 2 * H:3 * H] * np.tanh(c))
        cs.append(c)
        gates.append(G)
    h = hs[T]
    loss, p = softmax_ce(h @ Wy + by, y)
    dz = ce_delta(p, y)
    dWy = h.T @ dz
    dby = dz.sum(axis=0)
    dh = dz @ Wy.T
    dc = np.zeros_like(h0)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    da = np.empty((N, 4 * H))
    for t in range(T - 1, -1, -1):
        G = gates[t]
        i, f, o, g = G[:, :H], G[:, H:2 * H], G[:, 2 * H:3 * H], G[:, 3 * H:]
        tc = np.tanh(cs[t + 1])
        dc = dc + dh * o * (1.0 - tc * tc)
        da[:, :H] = dc * g * i * (1.0 - i)
        da[:, H:2 * H] = dc * cs[t] * f * (1.0 - f)
        da[:, 2 * H:3 * H] = dh * tc * o * (1.0 - o)
        da[:, 3 * H:] = dc * i * (1.0 - g * g)
        dc = dc * f
        dWx += X[t].T @ da
        dWh += hs[t].T @ da
        db += da.sum(axis=0)
        if t > 0:
            dh = da @ Wh.T
    return loss, dWx, dWh, db, dWy, dby


@njit
def r_lstm(Wx, Wh, b, Wy, by, h0, X, y, VWx, VWh, cb, VWy, cby):
    T = X.shape[0]
    N, H = h0.shape
    hs = [h0]
    Rhs = [h0]                      # R{h0} = 0, never read
    cs = [np.zeros_like(h0)]
    Rcs = [np.zeros_like(h0)]       # R{c0} = 0
    gates = []
    Rgates = []
    for t in range(T):
        xt = X[t]
        a = xt @ Wx + hs[t] @ Wh + b
        if t == 0:
            Ra = xt @ VWx + hs[t] @ VWh + cb
        else:
            Ra = xt @ VWx + hs[t] @ VWh + Rhs[t] @ Wh + cb
        G = np.empty_like(a)
        RG = np.empty_like(a)
        s = _sigmoid(a[:, :3 * H])
        G[:, :3 * H] = s
        RG[:, :3 * H] = s * (1.0 - s) * Ra[:, :3 * H]
        g = np.tanh(a[:, 3 * H:])
        G[:, 3 * H:] = g
        RG[:, 3 * H:] = (1.0 - g * g) * Ra[:, 3 * H:]
        i, f, o = G[:, :H], G[:, H:2 * H], G[:, 2 * H:3 * H]
        Ri, Rf, Ro, Rg = RG[:, :H], RG[:, H:2 * H], RG[:, 2 * H:3 * H], RG[:, 3 * H:]
        c = f * cs[t] + i * g
        if t == 0:
            Rc = Rf * cs[t] + Ri * g + i * Rg
        else:
            Rc = Rf * cs[t] + f * Rcs[t] + Ri * g + i * Rg
        tc = np.tanh(c)
        hs.append(o * tc)
        Rhs.append(Ro * tc + o * (1.0 - tc * tc) * Rc)
        cs.append(c)
        Rcs.append(Rc)
        gates.append(G)
        Rgates.append(RG)
    h, Rh = hs[T], Rhs[T]
    Rz = h @ VWy + Rh @ Wy + cby
    loss, p = softmax_ce(h @ Wy + by, y)
    dz = ce_delta(p, y)
    Rdz, Rloss = r_ce(p, dz, Rz)
    dWy = h.T @ dz
    RdWy = Rh.T @ dz + h.T @ Rdz
    dby = dz.sum(axis=0)
    Rdby = Rdz.sum(axis=0)
    dh = dz @ Wy.T
    Rdh = Rdz @ Wy.T + dz @ VWy.T
    dc = np.zeros_like(h0)
    Rdc = np.zeros_like(h0)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    RdWx, RdWh, Rdb = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    da = np.empty((N, 4 * H))
    Rda = np.empty((N, 4 * H))
    for t in range(T - 1, -1, -1):
        G, RG = gates[t], Rgates[t]
        i, f, o, g = G[:, :H], G[:, H:2 * H], G[:, 2 * H:3 * H], G[:, 3 * H:]
        Ri, Rf, Ro, Rg = RG[:, :H], RG[:, H:2 * H], RG[:, 2 * H:3 * H], RG[:, 3 * H:]
        c, Rc, cp = cs[t + 1], Rcs[t + 1], cs[t]
        tc = np.tanh(c)
        st = 1.0 - tc * tc
        Rtc = st * Rc
        # dc += dh * o * (1 - tc^2)
        Rdc = Rdc + Rdh * o * st + dh * Ro * st - 2.0 * dh * o * tc * Rtc
        dc = dc + dh * o * st
        # gate pre-activations: sigmoid' = s(1 - s), R{s(1 - s)} = (1 - 2s) R{s}
        si, sf, so, sg = i * (1.0 - i), f * (1.0 - f), o * (1.0 - o), 1.0 - g * g
        da[:, :H] = dc * g * si
        Rda[:, :H] = (Rdc * g + dc * Rg) * si + dc * g * (1.0 - 2.0 * i) * Ri
        if t == 0:
            da[:, H:2 * H] = dc * cp * sf
            Rda[:, H:2 * H] = Rdc * cp * sf + dc * cp * (1.0 - 2.0 * f) * Rf
        else:
            Rcp = Rcs[t]
            da[:, H:2 * H] = dc * cp * sf
            Rda[:, H:2 * H] = (Rdc * cp + dc * Rcp) * sf + dc * cp * (1.0 - 2.0 * f) * Rf
        da[:, 2 * H:3 * H] = dh * tc * so
        Rda[:, 2 * H:3 * H] = (Rdh * tc + dh * Rtc) * so + dh * tc * (1.0 - 2.0 * o) * Ro
        da[:, 3 * H:] = dc * i * sg
        Rda[:, 3 * H:] = (Rdc * i + dc * Ri) * sg - 2.0 * dc * i * g * Rg
        Rdc = Rdc * f + dc * Rf
        dc = dc * f
        xT = X[t].T
        dWx += xT @ da
        RdWx += xT @ Rda
        dWh += hs[t].T @ da
        if t == 0:
            RdWh += hs[t].T @ Rda
        else:
            RdWh += hs[t].T @ Rda + Rhs[t].T @ da
        db += da.sum(axis=0)
        Rdb += Rda.sum(axis=0)
        if t > 0:
            Rdh = Rda @ Wh.T + da @ VWh.T
            dh = da @ Wh.T
    return (loss, dWx, dWh, db, dWy, dby), (Rloss, RdWx, RdWh, Rdb, RdWy, Rdby)


GRAD = {"classifier": grad_classifier, "rnn": grad_rnn, "lstm": grad_lstm}
RBACKPROP = {"classifier": r_classifier, "rnn": r_rnn, "lstm": r_lstm}
