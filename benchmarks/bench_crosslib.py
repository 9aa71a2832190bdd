"""Cross-library check: rop's Hessian and Gauss-Newton against curvlinops and PyHessian.

A harness, not a test: on small MLPs in float64 it builds the same network twice — as the
user's hand-written NumPy backprop under ``@rop(wrt=..., output=...)``, and as a PyTorch
``nn.Sequential`` with identical weights — and compares

1. the dense Hessian ``f.hvp.operator(*args) @ I`` with curvlinops' ``HessianLinearOperator @ I``
   and with PyHessian's Hessian-vector product (its ``hessian_vector_product`` on the unit
   vectors: deterministic);
2. the dense Gauss-Newton matrix ``f.gvp.operator(*args) @ I`` with curvlinops'
   ``GGNLinearOperator @ I`` (PyHessian has none);
3. the trace: exact (the dense matrices' diagonals), rop's Hutch++ with its standard error,
   curvlinops' ``hutchinson_trace``/``hutchpp_trace`` (their spread over seeds), PyHessian's
   ``trace()`` (Hutchinson with its own stopping rule; random);
4. the top-3 eigenvalues: ``rop.curvature.eigenvalues`` (ARPACK on rop's operator), SciPy's
   ``eigsh`` on curvlinops' ``to_scipy()``, and PyHessian's ``eigenvalues(top_n=3)`` (power
   iteration with deflation: random and approximate, compared to a stated tolerance).

Convention (one for every number): the loss is the mean over the batch of the per-example
loss, L = (1/B) Σ_n ℓ_n, with ℓ_n = ½‖f(x_n) − t_n‖² for squared error (the ½ included, summed
over the C outputs) and ℓ_n = −log softmax(f(x_n))_{t_n} for cross-entropy.  The NumPy code is
written in it.  PyTorch's ``CrossEntropyLoss()`` (reduction="mean") is the same loss;
``MSELoss()`` (reduction="mean") averages over all B·C entries and has no ½, so it is (2/C)·L:
every curvlinops and PyHessian quantity of a squared-error network (matrices, traces,
eigenvalues) is multiplied by C/2 before it is compared.

Flat layouts differ: rop's flat vector holds the ``wrt`` parameters in ``wrt`` order, each
raveled in C order; torch's holds ``model.parameters()`` (W1, b1, W2, b2, ...) with Linear's
weight shaped (out, in).  Each network has an explicit ``to_torch`` that maps rop's structure
to torch's parameter list; applied to the indices 0..n−1 it gives the permutation P with
torch_flat = rop_flat[P], and rop's matrices are compared as H[P][:, P].

Run:  python benchmarks/bench_crosslib.py [--quick] [--out benchmarks/results/crosslib.md]
Needs: torch==2.13.0, curvlinops-for-pytorch, pyhessian (see benchmarks/README.md).
"""

import argparse
import copy
import importlib.metadata
import os
import platform
import sys
import time

import warnings

import numpy as np
import scipy.sparse.linalg

from rop import curvature, rop

try:
    import torch
    from torch import nn
    from curvlinops import GGNLinearOperator, HessianLinearOperator
    from curvlinops import hutchinson_trace, hutchpp_trace
    from pyhessian import hessian as pyhessian_hessian
except ImportError as exc:  # pragma: no cover - the harness needs the peers
    sys.exit(f"bench_crosslib needs torch==2.13.0, curvlinops-for-pytorch and pyhessian "
             f"({exc}); see benchmarks/README.md")

B = 16            # batch size
DENSE_TOL = 1e-10  # dense matrices: max |difference| / max |H|; a failure beyond it stops the run


# ------------------------------------------------------------------ the user's NumPy code

def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@rop(wrt=("W1", "b1", "W2", "b2"), output="Y")
def mse_tanh(W1, b1, W2, b2, X, T):
    """10-8-3, tanh, linear output; columns layout (X is 10×B); E = 1/(2B) ||Y - T||²."""
    A1 = np.tanh(W1 @ X + b1[:, None])
    Y = W2 @ A1 + b2[:, None]
    dY = (Y - T) / X.shape[1]
    dA1 = (W2.T @ dY) * (1.0 - A1 ** 2)
    return dA1 @ X.T, dA1.sum(axis=1), dY @ A1.T, dY.sum(axis=1)


@rop(wrt=("W1", "b1", "W2", "b2", "W3", "b3"), output="S")
def ce_sigmoid_relu(W1, b1, W2, b2, W3, b3, X, Y):
    """10-8-8-4, sigmoid then ReLU, softmax cross-entropy on the logits S; rows layout (X is
    B×10, W is in×out, the course style); Y one-hot B×4; E = mean over rows of -log p."""
    A1 = sigmoid(X @ W1 + b1)
    H2 = A1 @ W2 + b2
    A2 = np.maximum(H2, 0.0)
    S = A2 @ W3 + b3
    E = np.exp(S - S.max(axis=1, keepdims=True))
    P = E / E.sum(axis=1, keepdims=True)
    dS = (P - Y) / X.shape[0]
    dA2 = dS @ W3.T
    dH2 = dA2 * (H2 > 0.0)
    dA1 = dH2 @ W2.T
    dH1 = dA1 * A1 * (1.0 - A1)
    return X.T @ dH1, dH1.sum(axis=0), A1.T @ dH2, dH2.sum(axis=0), A2.T @ dS, dS.sum(axis=0)


@rop(wrt=("Ws", "bs"), output="acts[L]")
def mse_deep_lists(Ws, bs, X, T):
    """10-8-8-3, tanh, per-layer lists (examples/deep_mlp.py's style); E = 1/(2B) ||net - T||²."""
    L = len(Ws)
    acts = [None] * (L + 1)
    acts[0] = X
    for i in range(L):
        h = Ws[i] @ acts[i] + bs[i][:, None]
        if i < L - 1:
            acts[i + 1] = np.tanh(h)
        else:
            acts[i + 1] = h
    d = (acts[L] - T) / X.shape[1]
    dWs = [None] * L
    dbs = [None] * L
    for i in range(L - 1, -1, -1):
        dWs[i] = d @ acts[i].T
        dbs[i] = d.sum(axis=1)
        if i > 0:
            d = (Ws[i].T @ d) * (1.0 - acts[i] ** 2)
    return dWs, dbs


# ------------------------------------------------------------------ the networks, both ways

class Net:
    """One network: rop's function and arguments, the torch model and data, the mapping."""

    def __init__(self, name, fn, params, data, model, to_torch, torch_xy, loss, scale):
        self.name, self.fn, self.params, self.data = name, fn, params, data
        self.model, self.to_torch, self.loss, self.scale = model, to_torch, loss, scale
        self.x, self.y = torch_xy
        with torch.no_grad():
            for p, a in zip(self.model.parameters(), to_torch(params)):
                assert tuple(p.shape) == a.shape, (p.shape, a.shape)
                p.copy_(torch.from_numpy(np.ascontiguousarray(a)))

    @property
    def args(self):
        return (*self.params, *self.data)

    def permutation(self, layout):
        """P with torch_flat = rop_flat[P], from the same to_torch applied to indices."""
        idx = layout.unflatten(np.arange(layout.size, dtype=float))
        idx = idx if isinstance(idx, tuple) else (idx,)
        P = np.concatenate([np.ravel(a) for a in self.to_torch(idx)]).astype(np.int64)
        assert np.array_equal(np.sort(P), np.arange(P.size)), "to_torch is not a permutation"
        return P


def net_mse_tanh(rng):
    n_in, n_h, n_out = 10, 8, 3
    params = (rng.normal(size=(n_h, n_in)) / np.sqrt(n_in), 0.1 * rng.normal(size=n_h),
              rng.normal(size=(n_out, n_h)) / np.sqrt(n_h), 0.1 * rng.normal(size=n_out))
    X, T = rng.normal(size=(n_in, B)), rng.normal(size=(n_out, B))
    model = nn.Sequential(nn.Linear(n_in, n_h), nn.Tanh(), nn.Linear(n_h, n_out)).double()
    # columns layout, W (out, in): the same shapes as torch's; the order W1, b1, W2, b2 too
    to_torch = lambda p: [p[0], p[1], p[2], p[3]]
    xy = (torch.from_numpy(X.T.copy()), torch.from_numpy(T.T.copy()))
    return Net("10-8-3 tanh, MSE (columns)", mse_tanh, params, (X, T), model, to_torch, xy,
               nn.MSELoss(), n_out / 2.0)


def net_ce_sigmoid_relu(rng):
    sizes = [10, 8, 8, 4]
    params = []
    for n, m in zip(sizes[:-1], sizes[1:]):
        params += [rng.normal(size=(n, m)) / np.sqrt(n), 0.1 * rng.normal(size=m)]
    X = rng.normal(size=(B, sizes[0]))
    labels = rng.integers(0, sizes[-1], size=B)
    Y = np.eye(sizes[-1])[labels]
    model = nn.Sequential(nn.Linear(10, 8), nn.Sigmoid(), nn.Linear(8, 8), nn.ReLU(),
                          nn.Linear(8, 4)).double()
    # rows layout, W (in, out): torch's weight is its transpose
    to_torch = lambda p: [p[0].T, p[1], p[2].T, p[3], p[4].T, p[5]]
    xy = (torch.from_numpy(X.copy()), torch.from_numpy(labels))
    return Net("10-8-8-4 sigmoid/ReLU, softmax CE (rows, W in×out)", ce_sigmoid_relu,
               tuple(params), (X, Y), model, to_torch, xy, nn.CrossEntropyLoss(), 1.0)


def net_mse_deep_lists(rng):
    sizes = [10, 8, 8, 3]
    Ws = [rng.normal(size=(m, n)) / np.sqrt(n) for n, m in zip(sizes[:-1], sizes[1:])]
    bs = [0.1 * rng.normal(size=m) for m in sizes[1:]]
    X, T = rng.normal(size=(sizes[0], B)), rng.normal(size=(sizes[-1], B))
    model = nn.Sequential(nn.Linear(10, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(),
                          nn.Linear(8, 3)).double()
    # rop's flat order is Ws[0], Ws[1], Ws[2], bs[0], ...; torch's is W1, b1, W2, b2, ...
    to_torch = lambda p: [a for W, b in zip(p[0], p[1]) for a in (W, b)]
    xy = (torch.from_numpy(X.T.copy()), torch.from_numpy(T.T.copy()))
    return Net("10-8-8-3 tanh, MSE (per-layer lists)", mse_deep_lists, (Ws, bs), (X, T),
               model, to_torch, xy, nn.MSELoss(), sizes[-1] / 2.0)


NETWORKS = {"mse_tanh": net_mse_tanh, "ce_sigmoid_relu": net_ce_sigmoid_relu,
            "mse_deep_lists": net_mse_deep_lists}


# ------------------------------------------------------------------ the comparison

def torch_dense(op, n):
    return (op @ torch.eye(n, dtype=torch.float64)).detach().numpy()


def pyhessian_dense(ph, n):
    """PyHessian's own Hv (autograd.grad of its stored gradient) on the unit vectors."""
    cols = []
    shapes = [p.shape for p in ph.params]
    for j in range(n):
        e = torch.zeros(n, dtype=torch.float64)
        e[j] = 1.0
        v = list(torch.split(e, [int(np.prod(s)) for s in shapes]))
        v = [vi.reshape(s) for vi, s in zip(v, shapes)]
        Hv = torch.autograd.grad(ph.gradsH, ph.params, grad_outputs=v, retain_graph=True)
        cols.append(torch.cat([h.reshape(-1) for h in Hv]).numpy())
    return np.stack(cols, axis=1)


def diff(a, b):
    """(max |a - b|, max |a - b| / max |a|)."""
    d = float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
    return d, d / float(np.max(np.abs(a)))


def top_by_magnitude(evals, k):
    return evals[np.argsort(-np.abs(evals))[:k]]


def compare(net, quick, log):
    r = {"name": net.name}
    s = net.scale
    # ---- rop
    H = net.fn.hvp.operator(*net.args)
    G = net.fn.gvp.operator(*net.args)
    n = H.shape[0]
    P = net.permutation(H.layout)
    r["n"] = n
    Hr = (H @ np.eye(n))[np.ix_(P, P)]
    Gr = (G @ np.eye(n))[np.ix_(P, P)]
    grads, _ = net.fn.hvp(*net.args, v=H.layout.unflatten(np.ones(n)))  # compiled gradient
    g_rop = H.layout.flatten(grads)[P]
    # ---- torch: the gradient first (weights and convention), then the operators
    model = copy.deepcopy(net.model)
    params = [p for p in model.parameters()]
    loss = net.loss(model(net.x), net.y)
    g_t = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)]).numpy()
    r["grad"] = diff(g_rop, s * g_t)
    data = [(net.x, net.y)]
    Hc_op = HessianLinearOperator(model, net.loss, params, data)
    Gc_op = GGNLinearOperator(model, net.loss, params, data)
    Hc = s * torch_dense(Hc_op, n)
    Gc = s * torch_dense(Gc_op, n)
    torch.manual_seed(0)
    ph = pyhessian_hessian(copy.deepcopy(net.model), net.loss, data=(net.x, net.y), cuda=False)
    Hp = s * pyhessian_dense(ph, n)

    r["H_max"] = float(np.abs(Hr).max())
    r["G_max"] = float(np.abs(Gr).max())
    r["H_sym"] = float(np.abs(Hr - Hr.T).max())
    r["G_sym"] = float(np.abs(Gr - Gr.T).max())
    r["H_cl"], r["H_ph"], r["G_cl"] = diff(Hr, Hc), diff(Hr, Hp), diff(Gr, Gc)
    r["G_psd"] = float(np.linalg.eigvalsh(Gr).min())
    log(f"  n = {n}; gradient vs torch: max abs {r['grad'][0]:.1e}")
    log(f"  dense H: rop vs curvlinops {r['H_cl'][0]:.1e} (rel {r['H_cl'][1]:.1e}), "
        f"vs PyHessian {r['H_ph'][0]:.1e} (rel {r['H_ph'][1]:.1e}); symmetry {r['H_sym']:.1e}")
    log(f"  dense G: rop vs curvlinops {r['G_cl'][0]:.1e} (rel {r['G_cl'][1]:.1e}); "
        f"symmetry {r['G_sym']:.1e}; smallest eigenvalue {r['G_psd']:.1e}")

    # ---- traces
    samples = 99
    reps = 5 if quick else 20  # seeds for the spread of curvlinops' estimators
    for key, M_r, M_c, op_r, op_c in (("H", Hr, Hc, H, Hc_op), ("G", Gr, Gc, G, Gc_op)):
        t = {"exact_rop": float(np.trace(M_r)), "exact_cl": float(np.trace(M_c))}
        est = curvature.trace(op_r, samples=samples, seed=0, progress=False)
        t["rop_hpp"] = (est.value, est.stderr)
        for nm, fn_tr in (("cl_hutch", hutchinson_trace), ("cl_hpp", hutchpp_trace)):
            vals = []
            for seed in range(reps):
                torch.manual_seed(seed)
                vals.append(s * float(fn_tr(op_c, samples)))
            t[nm] = (vals[0], float(np.std(vals, ddof=1)))
        r["tr_" + key] = t
    # PyHessian's trace: Hutchinson with its own stopping rule (default), and 200 samples
    torch.manual_seed(0)
    tv = np.array(ph.trace()) * s
    torch.manual_seed(0)
    # tol=-inf: its test abs(mean - old) / (old + 1e-6) < tol divides by the signed running
    # mean, so with any tol >= 0 a negative first sample ends the run after two samples
    tv200 = np.array(ph.trace(maxIter=200, tol=-np.inf)) * s
    r["tr_H"]["ph_default"] = (float(tv.mean()), float(tv.std(ddof=1) / np.sqrt(tv.size)), tv.size)
    r["tr_H"]["ph_200"] = (float(tv200.mean()), float(tv200.std(ddof=1) / np.sqrt(tv200.size)),
                           tv200.size)
    th = r["tr_H"]
    log(f"  trace H: exact {th['exact_rop']:.10g} (curvlinops dense {th['exact_cl']:.10g}); "
        f"rop Hutch++ {th['rop_hpp'][0]:.6g} ± {th['rop_hpp'][1]:.2g}; "
        f"PyHessian {th['ph_default'][0]:.6g} ± {th['ph_default'][1]:.2g} "
        f"({th['ph_default'][2]} samples)")

    # ---- eigenvalues
    k = 3
    ev = {}
    for key, M_r, op_r, op_c in (("H", Hr, H, Hc_op), ("G", Gr, G, Gc_op)):
        dense = np.linalg.eigvalsh(M_r)[::-1]
        e_rop = curvature.eigenvalues(op_r, k=k, progress=False)
        v0 = np.random.default_rng(0).standard_normal(n)
        e_cl = s * np.sort(scipy.sparse.linalg.eigsh(op_c.to_scipy(), k=k, which="LA", v0=v0,
                                                     tol=0.0)[0])[::-1]
        ev[key] = {"dense": dense[:k], "all": dense, "rop": e_rop, "cl": e_cl}
    ph_runs = {"default": {}, "tight": {"maxIter": 3000, "tol": 1e-12}}
    for nm, kw in ph_runs.items():
        torch.manual_seed(0)
        t0 = time.perf_counter()
        vals, _ = ph.eigenvalues(top_n=k, **kw)
        ev["H"]["ph_" + nm] = s * np.array(vals)
        ev["H"]["ph_" + nm + "_time"] = time.perf_counter() - t0
    ev["H"]["dense_mag"] = top_by_magnitude(ev["H"]["all"], k)
    r["ev"] = ev
    log(f"  top-{k} H: dense {np.array2string(ev['H']['dense'], precision=8)}, "
        f"rop {np.array2string(ev['H']['rop'], precision=8)}, "
        f"curvlinops {np.array2string(ev['H']['cl'], precision=8)}")
    log(f"           PyHessian default {np.array2string(ev['H']['ph_default'], precision=6)}, "
        f"tight {np.array2string(ev['H']['ph_tight'], precision=8)}; "
        f"dense by |λ| {np.array2string(ev['H']['dense_mag'], precision=8)}")

    bad = [nm for nm, (a, rel) in (("H vs curvlinops", r["H_cl"]), ("H vs PyHessian", r["H_ph"]),
                                   ("G vs curvlinops", r["G_cl"])) if rel > DENSE_TOL]
    r["bad"] = bad
    return r


# ------------------------------------------------------------------ the report

def fmt(x, p=10):
    return f"{x:.{p}g}"


def versions():
    out = {}
    for pkg in ("torch", "curvlinops-for-pytorch", "pyhessian", "numpy", "scipy", "numba"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "—"
    return out


def report(results, cmd, elapsed, reps):
    v = versions()
    L = ["# Cross-library check: rop against curvlinops and PyHessian", "",
         f"`{cmd}` ({elapsed:.0f} s; {platform.python_version()}, "
         + ", ".join(f"{k} {x}" for k, x in v.items())
         + f"; commit {os.popen('git rev-parse --short HEAD 2>/dev/null').read().strip() or '?'})",
         "",
         "**Convention.** Every number is for L(θ) = (1/B) Σ_n ℓ_n, the mean over the batch "
         "(B = 16) of the per-example loss: ℓ_n = ½‖f(x_n) − t_n‖² (squared error, the ½ "
         "included, summed over the C outputs) or ℓ_n = −log softmax(f(x_n))_{t_n} "
         "(cross-entropy on the logits). The NumPy backprop is written in it. PyTorch's "
         "`CrossEntropyLoss()` is the same loss; `MSELoss()` (reduction=\"mean\") averages over "
         "all B·C entries without the ½, i.e. (2/C)·L, so every curvlinops and PyHessian "
         "quantity of the squared-error networks (matrices, traces, eigenvalues) is multiplied "
         "by C/2 = 1.5 before it is compared. Matrices are compared in torch's flat order "
         "(W1, b1, W2, b2, …, Linear's weight (out, in), C order): rop's are permuted by P from "
         "each network's explicit `to_torch` map. \"rel\" = max |difference| / max |H|.", "",
         "Networks (float64, batch 16, weights 1/√fan-in normal, biases 0.1·normal, inputs and "
         "targets standard normal, seed 0):", ""]
    for r in results:
        L.append(f"- **{r['name']}**: {r['n']} parameters; gradient against torch autograd's "
                 f"(× C/2): max |difference| {r['grad'][0]:.1e}")
    L += ["", "## 1. Dense Hessian (`f.hvp.operator(*args) @ I`)", "",
          "PyHessian column: its `hessian_vector_product` (autograd.grad of the gradient it "
          "stores) on the unit vectors — deterministic.", "",
          "| network | n | max \\|H\\| (rop) | rop: max \\|H − Hᵀ\\| | curvlinops `HessianLinearOperator @ I`: "
          "max \\|diff\\| (rel) | PyHessian Hv @ I: max \\|diff\\| (rel) |",
          "|---|---|---|---|---|---|"]
    for r in results:
        L.append(f"| {r['name']} | {r['n']} | {r['H_max']:.4g} | {r['H_sym']:.1e} | "
                 f"{r['H_cl'][0]:.1e} ({r['H_cl'][1]:.1e}) | {r['H_ph'][0]:.1e} ({r['H_ph'][1]:.1e}) |")
    L += ["", "## 2. Dense Gauss-Newton matrix (`f.gvp.operator(*args) @ I`)", "",
          "| network | max \\|G\\| (rop) | rop: max \\|G − Gᵀ\\| | rop: λ_min(G) | curvlinops "
          "`GGNLinearOperator @ I`: max \\|diff\\| (rel) | PyHessian |",
          "|---|---|---|---|---|---|"]
    for r in results:
        L.append(f"| {r['name']} | {r['G_max']:.4g} | {r['G_sym']:.1e} | {r['G_psd']:.1e} | "
                 f"{r['G_cl'][0]:.1e} ({r['G_cl'][1]:.1e}) | — (no GGN) |")
    L += ["", "## 3. Trace", "",
          "Exact: the dense matrices' diagonals. Estimates with 99 products each: rop "
          "`curvature.trace` (Hutch++, seed 0) ± its standard error; curvlinops "
          "`hutchinson_trace`/`hutchpp_trace` (torch seed 0) ± the standard deviation of one "
          f"run over torch seeds 0…{reps - 1}; PyHessian `trace()` with its defaults "
          "(Hutchinson, `maxIter=100`, stops when the running mean changes by < `tol` = 0.1 %) "
          "and with `maxIter=200, tol=-inf` (all 200 samples), as mean ± standard error of its "
          "samples. z = (estimate − exact) / its spread. PyHessian's stopping test, "
          "`abs(mean − old) / (old + 1e-6) < tol`, divides by the signed running mean: when the "
          "first sample vᵀHv is negative it stops after the second sample whatever `tol` ≥ 0 "
          "(the 2-sample entries below), hence `tol=-inf` for the fixed-length run.", ""]
    for key, title in (("H", "Hessian"), ("G", "Gauss-Newton")):
        L += [f"**{title}**", "",
              "| network | exact, rop | exact, curvlinops | max diff | rop Hutch++ (z) | "
              "curvlinops Hutchinson (z) | curvlinops Hutch++ (z) | PyHessian (z, samples) |",
              "|---|---|---|---|---|---|---|---|"]
        for r in results:
            t = r["tr_" + key]
            ex = t["exact_rop"]
            z = lambda e: f"{e[0]:.5g} ± {e[1]:.2g} ({(e[0] - ex) / e[1]:+.1f})" if e[1] > 0 \
                else f"{e[0]:.5g}"
            ph = "— (no GGN)"
            if key == "H":
                ph = "; ".join(f"{z(t[k])}, {t[k][2]}" for k in ("ph_default", "ph_200"))
            L.append(f"| {r['name']} | {fmt(ex, 12)} | {fmt(t['exact_cl'], 12)} | "
                     f"{abs(ex - t['exact_cl']):.1e} | {z(t['rop_hpp'])} | {z(t['cl_hutch'])} | "
                     f"{z(t['cl_hpp'])} | {ph} |")
        L.append("")
    L += ["## 4. Top-3 eigenvalues", "",
          "rop: `curvature.eigenvalues(op, k=3)` (ARPACK, tol 0); curvlinops: "
          "`scipy.sparse.linalg.eigsh(op.to_scipy(), k=3, which=\"LA\", tol=0)`; "
          "reference: `numpy.linalg.eigvalsh` of rop's dense matrix. PyHessian's "
          "`eigenvalues(top_n=3)` is power iteration with deflation from `torch.randn` start "
          "vectors: it finds the eigenvalues largest in *magnitude* (compared with the dense "
          "matrix's top 3 by |λ|), stops when successive estimates change by < `tol` "
          "(default 1e-3, `maxIter` 100), and normalises v as v / (‖v‖ + 1e-6) just before "
          "it forms vᵀHv with ‖v‖ ≈ 1, which biases every estimate by a factor (1 + 10⁻⁶)⁻² "
          "≈ 1 − 2·10⁻⁶. Run with the defaults and with `maxIter=3000, tol=1e-12` (tight); "
          "the last column also gives the tight run's error with that factor divided out.", ""]
    for key, title in (("H", "Hessian"), ("G", "Gauss-Newton")):
        L += [f"**{title}**", "",
              "| network | dense (eigvalsh) | rop (eigsh) | curvlinops (eigsh) | max \\|rop − dense\\| "
              "| max \\|curvlinops − dense\\| | PyHessian default / tight (rel. error vs dense by \\|λ\\|) |",
              "|---|---|---|---|---|---|---|"]
        for r in results:
            e = r["ev"][key]
            arr = lambda a: ", ".join(f"{x:.10g}" for x in a)
            ph = "— (no GGN)"
            if key == "H":
                ref = e["dense_mag"]
                rel = lambda a: float(np.max(np.abs(a - ref) / np.abs(ref)))
                ph = (f"{', '.join(f'{x:.6g}' for x in e['ph_default'])} ({rel(e['ph_default']):.1e}) / "
                      f"{', '.join(f'{x:.10g}' for x in e['ph_tight'])} ({rel(e['ph_tight']):.1e}; "
                      f"bias divided out: {rel(e['ph_tight'] * (1 + 1e-6) ** 2):.1e})")
            L.append(f"| {r['name']} | {arr(e['dense'])} | {arr(e['rop'])} | {arr(e['cl'])} | "
                     f"{np.abs(e['rop'] - e['dense']).max():.1e} | "
                     f"{np.abs(e['cl'] - e['dense']).max():.1e} | {ph} |")
        L.append("")
    bad = [f"{r['name']}: {', '.join(r['bad'])}" for r in results if r["bad"]]
    L += ["## Verdict", "",
          (f"Dense matrices agree to ≤ {DENSE_TOL:g} relative on every network."
           if not bad else "MISMATCH beyond 1e-10: " + "; ".join(bad)), ""]
    return "\n".join(L)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="the first network only, 5 seeds for the estimators' spread")
    ap.add_argument("--nets", default=",".join(NETWORKS), help="subset of " + ",".join(NETWORKS))
    ap.add_argument("--out", default=None,
                    help="write the Markdown report here (full run default: "
                         "benchmarks/results/crosslib.md; --quick: none)")
    a = ap.parse_args(argv)
    torch.set_default_dtype(torch.float64)  # PyHessian draws its vectors in the default dtype
    torch.set_num_threads(1)
    # PyHessian's loss.backward(create_graph=True): torch warns of a reference cycle
    warnings.filterwarnings("ignore", message="Using backward\\(\\) with create_graph=True")
    names = ["mse_tanh"] if a.quick else a.nets.split(",")
    t0 = time.perf_counter()
    results = []
    for nm in names:
        net = NETWORKS[nm](np.random.default_rng(0))
        print(f"{net.name}")
        results.append(compare(net, a.quick, print))
    cmd = "python benchmarks/bench_crosslib.py" + (" --quick" if a.quick else "") \
        + (f" --nets {a.nets}" if a.nets != ",".join(NETWORKS) and not a.quick else "")
    text = report(results, cmd, time.perf_counter() - t0, 5 if a.quick else 20)
    out = a.out or (None if a.quick else os.path.join(os.path.dirname(__file__), "results",
                                                      "crosslib.md"))
    if out:
        with open(out, "w") as fh:
            fh.write(text + "\n")
        print(f"wrote {out}")
    bad = [r for r in results if r["bad"]]
    if bad:
        print("MISMATCH beyond 1e-10:", [(r["name"], r["bad"]) for r in bad])
        return 1
    print("dense matrices agree to <= 1e-10 relative")
    return 0


if __name__ == "__main__":
    sys.exit(main())
