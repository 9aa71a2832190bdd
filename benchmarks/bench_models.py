#!/usr/bin/env python
"""Hessian-vector products on three models written as courses write backprop (issue 22,
"speed on code as users write it"): a tanh classifier with softmax cross-entropy, a vanilla
tanh RNN and an LSTM, each by BPTT (benchmarks/models.py), at a small and a larger size.

    python benchmarks/bench_models.py [--models classifier,rnn,lstm] [--sizes small|large|all]
                                      [--repeats N] [--quick] [--methods rop,...] [--out FILE]

Columns: rop's ``.hvp`` (the public wrapper), ``.gvp`` (Gauss-Newton), the linearised product
(``f.hvp.linearize(...)``, time of ``lin(v)``), a hand-written R{backprop} under
``numba.njit`` (benchmarks/handwritten_models.py), JAX ``jit(jvp(grad))`` and
``jax.linearize`` (x64), PyTorch ``torch.func.jvp(grad)``, HIPS autograd ``make_hvp``, central
differences of rop's compiled gradient; each method's gradient time; at the larger size a DGEMM
floor (the Hv's matrix products, timed one shape at a time in the same run).  Same arrays for
every method, one process, medians of interleaved rounds (``time_interleaved`` of
bench_hvp.py).  Before timing, every method's Hv and gradient are checked against JAX's
(relative max-norm ≤ 1e-8, finite differences ≤ 1e-5; ``.gvp`` against JAX's Jᵀ H_L J v);
a disagreement stops the run with ``VERIFICATION FAILED``.  A harness, not a test: nothing
here asserts a time.  See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks.bench_hvp import (_loadavg, cores, fmt_t, machine_info, machine_lines, stats,  # noqa: E402
                                  time_interleaved)
from benchmarks import models as M  # noqa: E402

METHODS = ["rop", "rop_gvp", "rop_lin", "numba_hand", "jax", "jax_lin", "torch", "autograd", "fd"]
LABELS = {
    "rop": "rop `.hvp` (public wrapper)",
    "rop_gvp": "rop `.gvp` (Gauss-Newton G v)",
    "rop_lin": "rop linearised, `lin(v)`",
    "numba_hand": "hand-written R{backprop}, Numba",
    "jax": "JAX jit(jvp(grad))",
    "jax_lin": "JAX linearize, `f_lin(v)`",
    "torch": "PyTorch torch.func jvp(grad)",
    "autograd": "HIPS autograd make_hvp",
    "fd": "central differences (2 gradients)",
}
GRAD_FROM = {"rop_gvp": "rop", "rop_lin": "rop", "fd": "rop", "jax_lin": "jax"}
GRAD_LABELS = {"rop": "rop primal (compiled)", "numba_hand": "hand-written backprop, Numba",
               "jax": "jit(grad)", "torch": "torch.func.grad", "autograd": "autograd.grad"}
OPTIONAL = {"jax": "jax", "jax_lin": "jax", "torch": "torch", "autograd": "autograd"}
HV_TOL = 1e-8     # relative max-norm agreement with the reference, before timing
FD_TOL = 1e-5     # central differences: O(eps^2) truncation + O(u/eps) rounding
TORCH_THREADS = None
PYTHON = False    # --python: rop's generated code and the hand-written code without Numba


def rop_fn(model):
    return M.python_mode(model) if PYTHON else M.FUNCS[model]


# --------------------------------------------------------------------------- helpers
def flat(x):
    """Nested lists/tuples of arrays (NumPy, JAX, torch) -> one float64 vector, in order."""
    out = []

    def walk(a):
        if isinstance(a, (list, tuple)):
            for b in a:
                walk(b)
        else:
            if hasattr(a, "detach"):
                a = a.detach().numpy()
            out.append(np.asarray(a, dtype=np.float64).ravel())
    walk(x)
    return np.concatenate(out) if out else np.zeros(0)


def rel_err(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def tup(x):
    """Lists -> tuples, recursively (rop's raw functions and Numba take per-layer tuples)."""
    return tuple(tup(a) for a in x) if isinstance(x, (list, tuple)) else x


def axpy(p, v, eps):
    """p + eps * v on nested lists of arrays."""
    if isinstance(p, (list, tuple)):
        return [axpy(a, b, eps) for a, b in zip(p, v)]
    return p + eps * v


def norm(x):
    f = flat(x)
    return float(np.sqrt(f @ f))


def onehot(y, K):
    return np.eye(K)[y]


def n_classes(model, d):
    s = M.SIZES[model][d["size"]]
    return s["layers"][-1] if model == "classifier" else s["K"]


# --------------------------------------------------------------------------- the loss, any library
class Ops:
    """The few operations the three losses need, for NumPy-like modules (jax.numpy,
    autograd.numpy) and torch."""

    def __init__(self, lib):
        self.torch = lib.__name__ == "torch"
        self.lib = lib

    def tanh(self, x):
        return self.lib.tanh(x)

    def exp(self, x):
        return self.lib.exp(x)

    def log(self, x):
        return self.lib.log(x)

    def sigmoid(self, x):
        return 1.0 / (1.0 + self.lib.exp(-x))

    def rowmax(self, z):
        if self.torch:
            return self.lib.amax(z, dim=1, keepdim=True)
        return self.lib.max(z, axis=1, keepdims=True)

    def rowsum(self, z):
        if self.torch:
            return self.lib.sum(z, dim=1, keepdim=True)
        return self.lib.sum(z, axis=1, keepdims=True)

    def sum(self, z):
        return self.lib.sum(z)

    def zeros_like(self, z):
        return self.lib.zeros_like(z)


def head(o, z, Y):
    """Mean softmax cross-entropy of the logits z (N, K) with one-hot targets Y; for a list of
    per-step logits, the sum over steps."""
    if isinstance(z, (list, tuple)):
        total = 0.0
        for zt, Yt in zip(z, Y):
            total = total + head(o, zt, Yt)
        return total
    s = z - o.rowmax(z)
    logp = s - o.log(o.rowsum(o.exp(s)))
    return -o.sum(Y * logp) / z.shape[0]


def net(o, model, p, data):
    """The logits (the output rop's ``.gvp`` names) from parameters and data (without labels)."""
    if model == "classifier":
        Ws, bs = p
        (X,) = data
        h = X
        for W, b in zip(Ws[:-1], bs[:-1]):
            h = o.tanh(h @ W + b)
        return h @ Ws[-1] + bs[-1]
    if model == "rnn":
        Wxh, Whh, bh, Why, by = p
        h0, X = data
        h, zs = h0, []
        for t in range(X.shape[0]):
            h = o.tanh(X[t] @ Wxh + h @ Whh + bh)
            zs.append(h @ Why + by)
        return zs
    Wx, Wh, b, Wy, by = p
    h0, X = data
    H = h0.shape[1]
    h, c = h0, o.zeros_like(h0)
    for t in range(X.shape[0]):
        a = X[t] @ Wx + h @ Wh + b
        i, f = o.sigmoid(a[:, :H]), o.sigmoid(a[:, H:2 * H])
        g_o, g = o.sigmoid(a[:, 2 * H:3 * H]), o.tanh(a[:, 3 * H:])
        c = f * c + i * g
        h = g_o * o.tanh(c)
    return h @ Wy + by


def framework_data(model, d):
    """The data as the frameworks take it: (inputs without labels, one-hot targets)."""
    K = n_classes(model, d)
    if model == "classifier":
        X, y = d["data"]
        return (X,), onehot(y, K)
    h0, X, y = d["data"]
    return (h0, X), onehot(y, K)


# --------------------------------------------------------------------------- methods
# Each setup returns (hv, grad, hv_out, grad_out): zero-argument callables running one product
# (returning what the method returns) / one gradient, and converters of their results to
# (gradient flat or None, product flat) / gradient flat, ordered as the parameters.

def _rop_conv(out):
    prim, R = out
    return flat(prim[1:]), flat(R[1:])


def _rop_grad_conv(out):
    return flat(out[1:])


def setup_rop(model, d, kind="hvp"):
    f = rop_fn(model)
    p, data, v = d["params"], d["data"], tuple(d["v"])
    op = getattr(f, kind)
    op(*p, *data, v=v)               # compile, or load from the cache
    primal = f.hvp.primal
    pargs = tup(p) + tup(data)
    return (lambda: op(*p, *data, v=v)), (lambda: primal(*pargs)), _rop_conv, _rop_grad_conv


def setup_rop_gvp(model, d):
    return setup_rop(model, d, "gvp")


def setup_rop_lin(model, d):
    f = rop_fn(model)
    p, data, v = d["params"], d["data"], tuple(d["v"])
    f.hvp(*p, *data, v=v)
    f.hvp.linearize(*p, *data)(v)     # compile the linearisation and the tangent
    t0 = time.perf_counter()
    lin = f.hvp.linearize(*p, *data)
    d.setdefault("extra", {})["linearize_s"] = time.perf_counter() - t0
    d["extra"]["linearize_split"] = bool(lin.split)
    primal = f.hvp.primal
    pargs = tup(p) + tup(data)
    return (lambda: lin(v)), (lambda: primal(*pargs)), \
        (lambda out: (None, flat(out[1:]))), _rop_grad_conv


def setup_numba_hand(model, d):
    from benchmarks import handwritten_models as hw
    r, g = hw.RBACKPROP[model], hw.GRAD[model]
    if PYTHON:
        r, g = r.py_func, g.py_func
    args = tup(d["params"]) + tup(d["data"])
    rargs = args + tup(d["v"])
    return (lambda: r(*rargs)), (lambda: g(*args)), _rop_conv, _rop_grad_conv


def setup_fd(model, d):
    f = rop_fn(model)
    p, data, v = d["params"], d["data"], d["v"]
    f.hvp(*p, *data, v=tuple(v))
    primal = f.hvp.primal
    tdata = tup(data)
    eps = np.cbrt(np.finfo(float).eps) * max(1.0, norm(p)) / norm(v)  # O(eps^2) vs O(u/eps)

    def hv():
        gp = primal(*tup(axpy(p, v, eps)), *tdata)
        gm = primal(*tup(axpy(p, v, -eps)), *tdata)
        return (flat(gp[1:]) - flat(gm[1:])) * (0.5 / eps)

    pargs = tup(p) + tdata
    return hv, (lambda: primal(*pargs)), (lambda out: (None, out)), _rop_grad_conv


def _jax_setup(model, d):
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    o = Ops(jnp)
    inputs, Y = framework_data(model, d)

    def loss(p, inputs, Y):
        return head(o, net(o, model, p, inputs), Y)

    conv = jax.tree_util.tree_map
    P = conv(jnp.asarray, d["params"])
    V = conv(jnp.asarray, list(d["v"]))
    inputs = tuple(jnp.asarray(x) for x in inputs)
    Y = jnp.asarray(Y)
    assert all(x.dtype == jnp.float64 for x in jax.tree_util.tree_leaves(P))
    return jax, o, loss, P, V, inputs, Y


def setup_jax(model, d):
    jax, o, loss, P, V, inputs, Y = _jax_setup(model, d)
    g = jax.grad(loss)
    grad_jit = jax.jit(g)
    hvp_jit = jax.jit(lambda p, v, inputs, Y: jax.jvp(lambda q: g(q, inputs, Y), (p,), (v,)))
    return (lambda: jax.block_until_ready(hvp_jit(P, V, inputs, Y))), \
        (lambda: jax.block_until_ready(grad_jit(P, inputs, Y))), \
        (lambda out: (flat(out[0]), flat(out[1]))), flat


def setup_jax_lin(model, d):
    jax, o, loss, P, V, inputs, Y = _jax_setup(model, d)
    g = jax.grad(loss)
    grad_jit = jax.jit(g)
    _, f_lin = jax.linearize(lambda q: g(q, inputs, Y), P)
    f_lin = jax.jit(f_lin)
    return (lambda: jax.block_until_ready(f_lin(V))), \
        (lambda: jax.block_until_ready(grad_jit(P, inputs, Y))), \
        (lambda out: (None, flat(out))), flat


def jax_reference(model, d):
    """(gradient, Hv, Gv) of the model in JAX, flat: the oracle every method is checked against.
    G v = Jᵀ H_L J v with J the Jacobian of the logits (``net``) and H_L the Hessian of the
    cross-entropy ``head`` in the logits."""
    jax, o, loss, P, V, inputs, Y = _jax_setup(model, d)
    g = jax.grad(loss)
    grad, Hv = jax.jvp(lambda q: g(q, inputs, Y), (P,), (V,))
    fnet = lambda q: net(o, model, q, inputs)   # noqa: E731
    z, Jv = jax.jvp(fnet, (P,), (V,))
    HJv = jax.jvp(jax.grad(lambda zz: head(o, zz, Y)), (z,), (Jv,))[1]
    Gv = jax.vjp(fnet, P)[1](HJv)[0]
    return flat(grad), flat(Hv), flat(Gv)


def setup_torch(model, d):
    import torch
    torch.set_num_threads(TORCH_THREADS or cores())
    o = Ops(torch)
    inputs, Y = framework_data(model, d)

    def tt(x):
        if isinstance(x, (list, tuple)):
            return tuple(tt(a) for a in x)
        return torch.from_numpy(np.ascontiguousarray(x))

    P, V = tt(d["params"]), tt(list(d["v"]))
    inputs, Y = tt(inputs), tt(Y)

    def loss(p, inputs, Y):
        return head(o, net(o, model, p, inputs), Y)

    gfun = torch.func.grad(loss)

    def hv():
        return torch.func.jvp(lambda p: gfun(p, inputs, Y), (P,), (V,))

    return hv, (lambda: gfun(P, inputs, Y)), (lambda out: (flat(out[0]), flat(out[1]))), flat


def setup_autograd(model, d):
    import autograd.numpy as anp
    from autograd import grad as agrad
    from autograd import make_hvp
    o = Ops(anp)
    inputs, Y = framework_data(model, d)

    def loss(p, inputs, Y):
        return head(o, net(o, model, p, inputs), Y)

    P, V = d["params"], list(d["v"])
    gfun = agrad(loss)

    def hv():
        vjp, g = make_hvp(loss)(P, inputs, Y)   # reverse over reverse; H symmetric: vjp(v) = Hv
        return g, vjp(V)

    return hv, (lambda: gfun(P, inputs, Y)), (lambda out: (flat(out[0]), flat(out[1]))), flat


SETUPS = {"rop": setup_rop, "rop_gvp": setup_rop_gvp, "rop_lin": setup_rop_lin,
          "numba_hand": setup_numba_hand, "jax": setup_jax, "jax_lin": setup_jax_lin,
          "torch": setup_torch, "autograd": setup_autograd, "fd": setup_fd}


def available(method):
    mod = OPTIONAL.get(method)
    if mod is None:
        return True, ""
    try:
        __import__(mod)
        return True, ""
    except Exception as exc:
        return False, f"{mod} not importable ({type(exc).__name__}: {exc})"


# --------------------------------------------------------------------------- DGEMM floor
def hv_gemms(model, size):
    """The matrix products of one Hv as a careful hand-written R{backprop} forms them (the
    baseline of handwritten_models.py): ``[(m, k, n, count, what)]``, each an (m×k)·(k×n)
    product of 2·m·k·n flops.  Counted: the forward pass, its R-pass, the backward pass and its
    R-pass; not counted: products with a zero R-value (R{X} = R{h0} = 0) and products whose
    result is never used (the classifier's dX, the RNN's/LSTM's dh before the first step).

    classifier (N examples, layer sizes n_0…n_L, weight W_i n_i×n_{i+1}), per layer i:
      (N, n_i, n_{i+1})   h_i W_i, h_i V_i, and R{h_i} W_i when i > 0             2 + [i>0]
      (n_i, N, n_{i+1})   h_iᵀ d, h_iᵀ R{d}, and R{h_i}ᵀ d when i > 0             2 + [i>0]
      (N, n_{i+1}, n_i)   d W_iᵀ, R{d} W_iᵀ, d V_iᵀ, when i > 0                     3·[i>0]
      i.e. 4 products at the first layer, 9 at the others.
    RNN (T steps, N, D inputs, H hidden, K outputs), summed over t:
      (N, D, H)  X_t Wxh, X_t VWxh: 2T;            (D, N, H)  X_tᵀ draw, X_tᵀ R{draw}: 2T
      (N, H, H)  h_t Whh, h_t VWhh, R{h_t} Whh (t>0), and draw Whhᵀ, R{draw} Whhᵀ, draw VWhhᵀ
                 (t>0): 2T + 4(T−1)
      (H, N, H)  h_tᵀ draw, h_tᵀ R{draw}, R{h_t}ᵀ draw (t>0): 2T + (T−1)
      (N, H, K)  h Why, h VWhy, R{h} Why: 3T;      (H, N, K)  hᵀ dy, hᵀ R{dy}, R{h}ᵀ dy: 3T
      (N, K, H)  dy Whyᵀ, R{dy} Whyᵀ, dy VWhyᵀ: 3T
    LSTM (gates 4H wide), summed over t, plus the read-out once:
      (N, D, 4H) 2T;  (N, H, 4H) 2T + (T−1);  (D, N, 4H) 2T;  (H, N, 4H) 2T + (T−1);
      (N, 4H, H) da Whᵀ, R{da} Whᵀ, da VWhᵀ (t>0): 3(T−1);  read-out (N, H, K), (H, N, K),
      (N, K, H): 3 each.
    """
    s = M.SIZES[model][size]
    G = []
    if model == "classifier":
        N, L = s["N"], s["layers"]
        for i in range(len(L) - 1):
            a, b, r = L[i], L[i + 1], int(i > 0)
            G += [(N, a, b, 2 + r, f"layer {i}: h W, h V, R{{h}} W"),
                  (a, N, b, 2 + r, f"layer {i}: hᵀ d, hᵀ R{{d}}, R{{h}}ᵀ d")]
            if r:
                G.append((N, b, a, 3, f"layer {i}: d Wᵀ, R{{d}} Wᵀ, d Vᵀ"))
    elif model == "rnn":
        T, N, D, H, K = (s[k] for k in "TNDHK")
        G = [(N, D, H, 2 * T, "X_t Wxh, X_t VWxh"), (D, N, H, 2 * T, "X_tᵀ draw, X_tᵀ R{draw}"),
             (N, H, H, 2 * T + 4 * (T - 1), "h Whh, h VWhh, R{h} Whh; draw Whhᵀ, R{draw} Whhᵀ, "
              "draw VWhhᵀ"),
             (H, N, H, 2 * T + (T - 1), "hᵀ draw, hᵀ R{draw}, R{h}ᵀ draw"),
             (N, H, K, 3 * T, "h Why, h VWhy, R{h} Why"),
             (H, N, K, 3 * T, "hᵀ dy, hᵀ R{dy}, R{h}ᵀ dy"),
             (N, K, H, 3 * T, "dy Whyᵀ, R{dy} Whyᵀ, dy VWhyᵀ")]
    else:
        T, N, D, H, K = (s[k] for k in "TNDHK")
        G = [(N, D, 4 * H, 2 * T, "X_t Wx, X_t VWx"), (N, H, 4 * H, 2 * T + (T - 1),
                                                         "h Wh, h VWh, R{h} Wh"),
             (D, N, 4 * H, 2 * T, "X_tᵀ da, X_tᵀ R{da}"),
             (H, N, 4 * H, 2 * T + (T - 1), "hᵀ da, hᵀ R{da}, R{h}ᵀ da"),
             (N, 4 * H, H, 3 * (T - 1), "da Whᵀ, R{da} Whᵀ, da VWhᵀ"),
             (N, H, K, 3, "read-out h Wy, h VWy, R{h} Wy"),
             (H, N, K, 3, "hᵀ dz, hᵀ R{dz}, R{h}ᵀ dz"),
             (N, K, H, 3, "dz Wyᵀ, R{dz} Wyᵀ, dz VWyᵀ")]
    return G


def dgemm_floor(model, size, repeats, min_run, pause):
    """The DGEMM floor of one model's Hv (see :func:`gemm_floor`)."""
    return gemm_floor(hv_gemms(model, size), repeats, min_run, pause)


def _dgemm_call(m, k, n, rng):
    """One (m×k)·(k×n) product on SciPy's OpenBLAS -- the BLAS rop's ``rt.gemm`` and Numba's
    ``@`` call, with the kernels ``import rop`` chose (NumPy's own OpenBLAS, loaded before
    rop, may run other kernels) -- into a preallocated output: C-ordered A·B is the
    Fortran-ordered Bᵀ·Aᵀ, so no operand is copied."""
    from scipy.linalg.blas import dgemm
    A, B = rng.normal(size=(m, k)), rng.normal(size=(k, n))
    out = np.empty((n, m), order="F")
    return lambda: dgemm(1.0, B.T, A.T, beta=0.0, c=out, overwrite_c=True)


def gemm_floor(gemms, repeats, min_run, pause):
    """Σ over the products ``[(m, k, n, count, what)]`` of count × the time of one DGEMM at that
    shape (:func:`_dgemm_call`), measured now, interleaved like the methods: the fastest of the
    rounds (a floor is what the BLAS can do; the median is kept too)."""
    rng = np.random.default_rng(7)
    shapes = sorted({(m, k, n) for m, k, n, _, _ in gemms})
    fns = {sh: _dgemm_call(*sh, rng) for sh in shapes}
    times, _ = time_interleaved(fns, repeats, min_run, pause=pause)
    best = {sh: stats(ts)["min"] for sh, ts in times.items()}
    med = {sh: stats(ts)["median"] for sh, ts in times.items()}
    flops = sum(2.0 * m * k * n * c for m, k, n, c, _ in gemms)
    floor = sum(best[(m, k, n)] * c for m, k, n, c, _ in gemms)
    rows = [dict(m=m, k=k, n=n, count=c, what=w, t=best[(m, k, n)], t_median=med[(m, k, n)],
                 gflops=2.0 * m * k * n / best[(m, k, n)] / 1e9) for m, k, n, c, w in gemms]
    return dict(flops=flops, floor_s=floor, rate_gflops=flops / floor / 1e9, products=rows,
                floor_median_s=sum(med[(m, k, n)] * c for m, k, n, c, _ in gemms),
                n_products=sum(c for *_, c, _ in gemms))


# --------------------------------------------------------------------------- verification
def _fd_reference(model, d, log):
    """Without JAX: rop's gradient checked against central differences of its loss along v,
    rop's Hv against central differences of its gradient (two steps each, the better kept);
    then rop's Hv is the reference."""
    f = rop_fn(model)
    p, data, v = d["params"], d["data"], tuple(d["v"])
    prim, R = f.hvp(*p, *data, v=v)
    g, h = flat(prim[1:]), flat(R[1:])
    primal = f.hvp.primal
    tdata = tup(data)
    scale = max(1.0, norm(p)) / norm(v)
    e_g = e_h = np.inf
    gv = float(g @ flat(v))
    for step in (1e-4, 1e-5):
        eps = step * scale
        lp, lm = primal(*tup(axpy(p, v, eps)), *tdata), primal(*tup(axpy(p, v, -eps)), *tdata)
        dl = (lp[0] - lm[0]) / (2 * eps)
        e_g = min(e_g, abs(dl - gv) / max(abs(gv), 1e-300))
        e_h = min(e_h, rel_err(h, (flat(lp[1:]) - flat(lm[1:])) / (2 * eps)))
    log(f"    reference: rop's Hv vs central differences of its gradient {e_h:.1e}, g·v vs "
        f"differences of its loss {e_g:.1e} (steps 1e-4, 1e-5)")
    if not (e_h <= 1e-6 and e_g <= 1e-6):
        raise SystemExit(f"VERIFICATION FAILED: {model} {d['size']}: rop's Hv / gradient disagree "
                         f"with central differences: {e_h:.3e}, {e_g:.3e} (tolerance 1e-6)")
    return g, h, None, dict(hv_vs_fd=e_h, gv_vs_fd=e_g)


def verify(model, size, methods, log=print, reference="jax", d=None):
    """Set up every method, run it once (compiling) and compare its Hv and gradient with the
    reference; raise SystemExit('VERIFICATION FAILED ...') on a disagreement.  Returns
    ``(fns, errors, d)``: the timed callables ``{(method, 'hv'|'grad'): f}`` and the errors."""
    d = d or dict(M.make(model, size), size=size)
    if reference == "jax":
        g_ref, h_ref, gv_ref = jax_reference(model, d)
        ref_info = {}
    else:
        g_ref, h_ref, gv_ref, ref_info = _fd_reference(model, d, log)
    fns, errs = {}, {"reference": reference, **ref_info}
    for m in methods:
        if m == "rop_gvp" and gv_ref is None:
            log("    rop_gvp: not timed: G v needs the JAX reference to be verified")
            continue
        hv, gr, conv, gconv = SETUPS[m](model, d)
        g, h = conv(hv())        # first call compiles (Numba, JAX, torch): never timed
        target = gv_ref if m == "rop_gvp" else h_ref
        e_h = rel_err(h, target)
        e_g = rel_err(gconv(gr()), g_ref)
        e_g2 = rel_err(g, g_ref) if g is not None else None
        tol = FD_TOL if m == "fd" else HV_TOL
        what = "Gv vs reference G v" if m == "rop_gvp" else "Hv vs reference"
        log(f"    {m:10s} {what} {e_h:.1e}, gradient {e_g:.1e}"
            + (f" (returned with the product {e_g2:.1e})" if e_g2 is not None else ""))
        if not (e_h <= tol and e_g <= HV_TOL and (e_g2 is None or e_g2 <= HV_TOL)):
            raise SystemExit(f"VERIFICATION FAILED: {model} {size}: {m} disagrees with the "
                             f"{reference} reference: product relative error {e_h:.3e} (tolerance "
                             f"{tol:g}), gradient {e_g:.3e}, gradient returned with the product "
                             f"{e_g2} (tolerance {HV_TOL:g})")
        errs[m] = dict(hv_err=e_h, grad_err=e_g)
        fns[(m, "hv")] = hv
        src = GRAD_FROM.get(m)
        if src is None or src not in methods:
            fns[(m, "grad")] = gr
    return fns, errs, d


# --------------------------------------------------------------------------- one model/size
def bench(model, size, methods, repeats, min_run, pause, log, reference, floor):
    log(f"{model} {size} ({M.size_label(model, size)}): load {' '.join(_loadavg())}; verifying")
    fns, errs, d = verify(model, size, methods, log, reference)
    res = dict(model=model, size=size, label=M.size_label(model, size), loadavg=_loadavg(),
               errors=errs, methods={}, extra=d.get("extra", {}))
    log(f"  timing: {repeats} interleaved rounds")
    times, number = time_interleaved(fns, repeats, min_run, pause=pause)
    for (m, kind), ts in times.items():
        res["methods"].setdefault(m, {})[kind] = stats(ts)
        res["methods"][m][kind + "_number"] = number[(m, kind)]
        res["methods"][m][kind + "_rounds"] = ts
    for m, r in res["methods"].items():
        if "grad" not in r:
            src = GRAD_FROM[m]
            r["grad"] = dict(res["methods"][src]["grad"], shared_with=src)
        r["ratio"] = r["hv"]["median"] / r["grad"]["median"]
        r["hv_err"] = errs[m]["hv_err"]
    if floor:
        log("  DGEMM floor: timing the Hv's product shapes")
        res["floor"] = dgemm_floor(model, size, repeats, min_run, pause)
    for m, v in sorted(res["methods"].items(), key=lambda kv: kv[1]["hv"]["median"]):
        log(f"  {m:10s} product {fmt_t(v['hv']['median']):>10s}   gradient "
            f"{fmt_t(v['grad']['median']):>10s}   product/gradient {v['ratio']:.2f}")
    if floor:
        fl = res["floor"]
        log(f"  DGEMM floor {fmt_t(fl['floor_s'])} ({fl['flops'] / 1e9:.3g} GFLOP in "
            f"{fl['n_products']} products, {fl['rate_gflops']:.1f} GFLOP/s)")
    return res


def ratios(res):
    """The per-size ratios of the report: rop/JAX, rop/hand-written, GN/Hv, ..."""
    ms = res["methods"]

    def med(m):
        return ms[m]["hv"]["median"] if m in ms else None
    rop = med("rop")
    out = {}
    for key, a, b in (("rop/JAX", "rop", "jax"), ("rop/hand-written", "rop", "numba_hand"),
                      ("GN/Hv (rop)", "rop_gvp", "rop"),
                      ("linearised/.hvp (rop)", "rop_lin", "rop"),
                      ("rop linearised/JAX linearize", "rop_lin", "jax_lin"),
                      ("rop/PyTorch", "rop", "torch")):
        if med(a) and med(b):
            out[key] = med(a) / med(b)
    if rop and "floor" in res:
        out["rop/DGEMM floor"] = rop / res["floor"]["floor_s"]
        if med("numba_hand"):
            out["hand-written/DGEMM floor"] = med("numba_hand") / res["floor"]["floor_s"]
        if med("rop_lin"):
            out["rop linearised/DGEMM floor"] = med("rop_lin") / res["floor"]["floor_s"]
    return out


# --------------------------------------------------------------------------- report
def fmt_r(x):
    """A ratio: two decimals, or three significant digits below 0.1."""
    return f"{x:.2f}" if x >= 0.1 else f"{x:.2g}"


def write_markdown(path, info, results, notes, argv, repeats, min_run, pause):
    L = ["# Hessian-vector products on models written as courses write them", ""]
    L += machine_lines(info, argv, "one table")
    L += [
          "- models: `benchmarks/models.py` (examples in rows, `X @ W + b`, integer labels, "
          "CS231n-style `softmax_loss` helper, hidden states by `append`, LSTM caches as tuples); "
          "hand-written R{backprop}: `benchmarks/handwritten_models.py` (Numba). float64 "
          "throughout; every method gets the same arrays.",
          f"- verification before timing: every method's product and gradient against JAX's "
          f"(relative max-norm error ≤ {HV_TOL:g}; central differences ≤ {FD_TOL:g}); `.gvp` "
          "against "
          "JAX's Jᵀ H_L J v (J the Jacobian of the logits, H_L the Hessian of the cross-entropy).",
          f"- times: median over {repeats} interleaved rounds (round-robin over methods, order "
          "rotated each round, warm-up calls and the compiling first call excluded); one round of "
          "a method "
          f"= n back-to-back calls, n chosen so a round lasts ≥ {min_run:g} s, after an untimed "
          f"pause of {pause:g} s; the value is time per call; `[p25–p75]` the spread over rounds. "
          f"PyTorch runs with torch.set_num_threads({TORCH_THREADS or cores()}).",
          "- *product*: Hv (G v for `.gvp`). Every Hv call of rop, the hand-written code, JAX "
          "jvp(grad), PyTorch and autograd returns the gradient too; the linearised products "
          "(`lin(v)`, JAX's `f_lin(v)`) and central differences return only the product. "
          "*gradient*: the method's own gradient (rop's compiled primal for the rop rows and "
          "central differences; `jit(grad)` for both JAX rows).",
          "- *DGEMM floor* (larger size): the Hv's matrix products as a careful hand-written "
          "R{backprop} forms them (`hv_gemms` in bench_models.py documents the count), each timed "
          "alone as one SciPy `dgemm` (the OpenBLAS rop and Numba call) at its shape in the same run (interleaved rounds; the fastest "
          "round of each shape), summed. It counts the products of the gradient the Hv call "
          "returns too and ignores all elementwise work: no method can reach it.", ""]
    for n in notes:
        L.append(f"> {n}")
    if notes:
        L.append("")
    summary = []
    for r in results:
        ms = r["methods"]
        L += [f"## {r['model']}, {r['size']}: {r['label']}", "",
              f"Load average when this size started: {' '.join(r.get('loadavg', ['?']))}.", "",
              "| method | product median [p25–p75] | gradient median (what) | product/gradient | "
              "product / rop `.hvp` | rel. err vs reference | rounds × calls |",
              "|---|---|---|---|---|---|---|"]
        ref = ms.get("rop", {}).get("hv", {}).get("median")
        for m, v in sorted(ms.items(), key=lambda kv: kv[1]["hv"]["median"]):
            h, g = v["hv"], v["grad"]
            gwhat = GRAD_LABELS[g.get("shared_with", m)]
            if "shared_with" in g:
                gwhat += f", as `{g['shared_with']}`"
            rel = f"{h['median'] / ref:.2f}×" if ref else "—"
            L.append(f"| {LABELS[m]} | {fmt_t(h['median'])} [{fmt_t(h['p25'])}–{fmt_t(h['p75'])}] "
                     f"| {fmt_t(g['median'])} ({gwhat}) | {v['ratio']:.2f} | {rel} | "
                     f"{v['hv_err']:.1e} | {h['n']} × {v['hv_number']} |")
        if "floor" in r:
            fl = r["floor"]
            L.append(f"| DGEMM floor ({fl['n_products']} products, {fl['flops'] / 1e9:.3g} GFLOP "
                     f"at "
                     f"{fl['rate_gflops']:.1f} GFLOP/s) | {fmt_t(fl['floor_s'])} | | | "
                     f"{fl['floor_s'] / ref:.2f}× | | |" if ref else "")
        L.append("")
        rr = ratios(r)
        if rr:
            L.append("Ratios (medians): " + "; ".join(f"{k} **{fmt_r(v)}**" for k, v in rr.items())
                     + ".")
            L.append("")
        ex = r.get("extra", {})
        if "linearize_s" in ex:
            L.append(f"`f.hvp.linearize(...)` itself (once per point, not in the product's time): "
                     f"{fmt_t(ex['linearize_s'])}, split {ex['linearize_split']}.")
            L.append("")
        if "floor" in r:
            L += ["<details><summary>The Hv's matrix products (DGEMM floor)</summary>", "",
                  "| (m×k)·(k×n) | count | what | one product, fastest round (median) | GFLOP/s |",
                  "|---|---|---|---|---|"]
            for p in r["floor"]["products"]:
                L.append(f"| ({p['m']}×{p['k']})·({p['k']}×{p['n']}) | {p['count']} | "
                         f"{p['what']} | "
                         f"{fmt_t(p['t'])} ({fmt_t(p['t_median'])}) | {p['gflops']:.1f} |")
            L += ["", f"With the median round of each shape instead of the fastest: "
                  f"{fmt_t(r['floor']['floor_median_s'])}.", "", "</details>", ""]
        summary.append((r, rr))
    L += ["## Summary", "",
          "| model | size | rop `.hvp` | rop/JAX | rop/hand-written | GN/Hv | linearised/.hvp | "
          "rop lin./JAX lin. | rop/floor |", "|---|---|---|---|---|---|---|---|---|"]
    for r, rr in summary:
        def g(k):
            return fmt_r(rr[k]) if k in rr else "—"
        rop = r["methods"].get("rop", {}).get("hv", {}).get("median")
        L.append(f"| {r['model']} | {r['size']}: {r['label']} | {fmt_t(rop)} | {g('rop/JAX')} | "
                 f"{g('rop/hand-written')} | {g('GN/Hv (rop)')} | {g('linearised/.hvp (rop)')} | "
                 f"{g('rop linearised/JAX linearize')} | {g('rop/DGEMM floor')} |")
    L.append("")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(L))


# --------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="all", help="comma-separated subset of "
                    + ",".join(M.MODELS) + " (default all)")
    ap.add_argument("--sizes", choices=("small", "large", "all"), default=None,
                    help="default all (small with --quick)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="interleaved rounds per model and size (default 11; 3 with --quick)")
    ap.add_argument("--quick", action="store_true",
                    help="a quick look: small sizes (unless --sizes), 3 rounds (unless --repeats), "
                         "--min-run 0.01, --pause 0.02")
    ap.add_argument("--methods", default=",".join(METHODS),
                    help="comma-separated subset of " + ",".join(METHODS))
    ap.add_argument("--min-run", type=float, default=None,
                    help="minimum seconds per timed run (default 0.05)")
    ap.add_argument("--pause", type=float, default=None,
                    help="untimed sleep before each run (default 0.1 s)")
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="torch.set_num_threads (default: the usable cores)")
    ap.add_argument("--reference", choices=("jax", "fd"), default=None,
                    help="what every method is checked against: JAX (default when importable) or "
                         "rop's Hv after checking it against central differences")
    ap.add_argument("--verify-only", action="store_true",
                    help="set up and verify every method, time nothing, write no report")
    ap.add_argument("--no-floor", action="store_true", help="skip the DGEMM floor")
    ap.add_argument("--python", action="store_true",
                    help="with --verify-only: run rop's generated code (mode=\"python\") and the "
                         "hand-written code without Numba (no compile: the smoke test)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "models.md"),
                    help="the Markdown report (a .json with every round beside it)")
    a = ap.parse_args(argv)
    sizes = a.sizes or ("small" if a.quick else "all")
    sizes = ["small", "large"] if sizes == "all" else [sizes]
    repeats = a.repeats or (3 if a.quick else 11)
    min_run = a.min_run if a.min_run is not None else (0.01 if a.quick else 0.05)
    pause = a.pause if a.pause is not None else (0.02 if a.quick else 0.1)
    models = list(M.MODELS) if a.models == "all" else [m.strip() for m in a.models.split(",")]
    bad = [m for m in models if m not in M.MODELS]
    if bad:
        ap.error(f"unknown models {bad}; choose from {M.MODELS}")
    methods = [m.strip() for m in a.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in SETUPS]
    if bad:
        ap.error(f"unknown methods {bad}; choose from {METHODS}")
    global TORCH_THREADS, PYTHON
    TORCH_THREADS = a.torch_threads
    if a.python and not a.verify_only:
        ap.error("--python runs without Numba: only with --verify-only (its times mean nothing)")
    PYTHON = a.python
    notes = []
    for m in list(methods):
        ok, why = available(m)
        if not ok:
            methods.remove(m)
            notes.append(f"`{m}` skipped: {why}.")
    reference = a.reference or ("jax" if available("jax")[0] else "fd")
    if reference == "jax" and not available("jax")[0]:
        ap.error("--reference jax: " + available("jax")[1])
    if reference == "fd":
        notes.append("reference: rop's Hv, checked against central differences of its gradient "
                     "(JAX not used)")

    def log(msg):
        print(msg, flush=True)

    for n in notes:
        log("note: " + n)
    if a.verify_only:
        for model in models:
            for size in sizes:
                log(f"{model} {size} ({M.size_label(model, size)}): verifying")
                verify(model, size, methods, log, reference)
        log("verified")
        return 0
    raw_argv = ["python", "benchmarks/bench_models.py"] + list(sys.argv[1:] if argv is None
                                                                 else argv)
    info = machine_info()
    log(f"{info['cpu']}, {info['cores']} cores, load {' '.join(info['loadavg_start'])}; "
        f"methods {methods}")
    results = []
    for model in models:
        for size in sizes:
            results.append(bench(model, size, methods, repeats, min_run, pause, log, reference,
                                 floor=(size == "large" and not a.no_floor)))
    info["loadavg_end"] = _loadavg()
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    write_markdown(a.out, info, results, notes, raw_argv, repeats, min_run, pause)
    with open(os.path.splitext(a.out)[0] + ".json", "w") as fh:
        json.dump(dict(info=info, results=results, notes=notes), fh, indent=1)
    log(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
