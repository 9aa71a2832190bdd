"""Martens' deep autoencoder trained by Hessian-free with rop's Gauss-Newton product, against
Adam, momentum SGD and L-BFGS on the same budget (Martens 2010 §5; seed 003's slides).

The network is Martens' (and Hinton & Salakhutdinov's) deep autoencoder, scaled down: logistic
hidden units, a linear code layer in the middle, logistic output units with cross-entropy.  Its
backprop is written by hand (per-layer lists, a forward loop, a backward loop) and decorated with
``@rop(wrt=("Ws", "bs"), output="z")``: ``z``, the pre-sigmoid output, is where the cross-entropy
begins, and the loss is convex in it, so ``backprop.gvp`` is the positive semi-definite G v =
Jᵀ H_L J v that HF's conjugate gradients need.

* HF: ``rop.hessian_free`` with ``.gvp`` on curvature mini-batches cycled one per step, the
  gradient, line search and CG-backtracking on the whole training set, the preconditioner from
  per-case squared gradients (no loop over cases), weight decay 2e-5 as Martens.
* Baselines: Adam and momentum SGD (mini-batches of 100, each with a grid of 5 learning rates,
  the best chosen on the training objective; the grid costs 5 runs and is reported so), and
  SciPy's L-BFGS-B on the flattened parameters, full batch.

Every method minimises the same objective (mean cross-entropy + 1e-5·‖θ‖²) and gets the same
wall-clock budget per run; time spent measuring the reconstruction error is excluded.  Reported:
the training reconstruction error (squared error per case, as Martens), against time and against
passes over the data.

Run:  python examples/hessian_free.py [--data digits|curves] [--quick] [--plot out.png]
                                      [--seed N] [--budget SECONDS] [--results FILE]
"""

import argparse
import math
import os
import sys
import time
from pathlib import Path

# One BLAS thread: the matrices are small and the machine's cores are shared; OpenBLAS threads
# spin-waiting for a busy core made every product here 30-100x slower.  Set before NumPy loads
# BLAS (when run as a script), and again by threadpoolctl in main() (when imported).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from rop import rop  # noqa: E402
from rop.hessian_free import hessian_free  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WEIGHT_DECAY = 2e-5          # Martens 2010 §5: an L2 penalty of 2e-5 (w/2·‖θ‖²)


# ----------------------------------------------------------------------------- the network
@rop(wrt=("Ws", "bs"), output="z")
def backprop(Ws, bs, X):
    """Gradient of E = 1/B Σ cross-entropy(σ(z), X) for the autoencoder X -> z: logistic layers,
    the middle one (after layer L/2) linear, the output z = W_L a + b_L logistic."""
    L = len(Ws)
    acts = [None] * L
    acts[0] = X
    for i in range(L - 1):
        h = Ws[i] @ acts[i] + bs[i][:, None]
        if 2 * (i + 1) == L:              # the code layer is linear
            acts[i + 1] = h
        else:
            acts[i + 1] = 1.0 / (1.0 + np.exp(-h))
    z = Ws[L - 1] @ acts[L - 1] + bs[L - 1][:, None]    # the output: the loss begins here
    Y = 1.0 / (1.0 + np.exp(-z))
    d = (Y - X) / X.shape[1]              # dE/dz for logistic outputs with cross-entropy
    dWs = [None] * L
    dbs = [None] * L
    for i in range(L - 1, -1, -1):
        dWs[i] = d @ acts[i].T
        dbs[i] = d.sum(axis=1)
        if i > 0:
            d = Ws[i].T @ d
            if 2 * i != L:
                d = d * acts[i] * (1.0 - acts[i])
    return dWs, dbs


def forward(Ws, bs, X):
    """The activations ``acts`` (the input first) and the pre-sigmoid output ``z``."""
    L = len(Ws)
    acts = [X]
    for i in range(L - 1):
        h = Ws[i] @ acts[i]
        h += bs[i][:, None]
        if 2 * (i + 1) != L:              # σ(h) = (1 + tanh(h/2))/2: no overflow; in place
            h *= 0.5
            np.tanh(h, out=h)
            h += 1.0
            h *= 0.5
        acts.append(h)
    z = Ws[L - 1] @ acts[L - 1]
    z += bs[L - 1][:, None]
    return acts, z


def cross_entropy(Ws, bs, X, pass_=None):
    """The training objective without weight decay: mean over cases of Σ_pixels CE(σ(z), X),
    with softplus(z) = max(z, 0) + log1p(e^−|z|) (stable, and twice as fast as
    ``np.logaddexp(0, z)``).  ``pass_`` is ``forward(Ws, bs, X)`` if already computed."""
    _, z = pass_ or forward(Ws, bs, X)
    softplus = np.log1p(np.exp(-np.abs(z))) + np.maximum(z, 0.0)
    return (float(np.sum(softplus)) - float(np.vdot(X, z))) / X.shape[1]


def squared_error(Ws, bs, X):
    """Martens' reported error: Σ_pixels (σ(z) − X)², averaged over cases."""
    _, z = forward(Ws, bs, X)
    return float(np.sum((0.5 * (1.0 + np.tanh(0.5 * z)) - X) ** 2)) / X.shape[1]


def grad_sq_mean(Ws, bs, X, pass_=None):
    """(1/B) Σᵢ ∇ℓᵢ ⊙ ∇ℓᵢ, shaped like (Ws, bs): the preconditioner's diagonal (Martens 2010
    §4.7) on the scale of the mean loss.  Case i's gradient of a layer's weights is the outer
    product δᵢ aᵢᵀ, so Σᵢ (δᵢ aᵢᵀ)² = (δ²)(a²)ᵀ: one matrix product per layer, no loop over
    cases.  ``pass_`` is ``forward(Ws, bs, X)`` if already computed."""
    acts, z = pass_ or forward(Ws, bs, X)
    L, B = len(Ws), X.shape[1]
    delta = 0.5 * (1.0 + np.tanh(0.5 * z)) - X            # per case, not divided by B
    dWs, dbs = [None] * L, [None] * L
    for i in range(L - 1, -1, -1):
        d2 = delta * delta
        dWs[i] = d2 @ (acts[i] * acts[i]).T
        dWs[i] /= B
        dbs[i] = np.sum(d2, axis=1) / B
        if i > 0:
            delta = Ws[i].T @ delta
            if 2 * i != L:
                delta *= acts[i] * (1.0 - acts[i])
    return dWs, dbs


def sparse_init(layers, rng, nonzero=15):
    """Martens' sparse initialisation (2010 §5): each unit gets ``nonzero`` incoming weights drawn
    from N(0, 1), the rest 0, and bias 0.  With fan-ins below 15 every weight is drawn: the
    point of the scheme is that a unit's total input does not shrink with the fan-in."""
    Ws = []
    for n, m in zip(layers[:-1], layers[1:]):
        W = np.zeros((m, n))
        k = min(nonzero, n)
        for j in range(m):
            W[j, rng.choice(n, size=k, replace=False)] = rng.normal(size=k)
        Ws.append(W)
    return Ws, [np.zeros(m) for m in layers[1:]]


# ----------------------------------------------------------------------------- data
def digits_data(rng, n_train):
    """scikit-learn's 8x8 digits (1797 images shipped in the wheel), scaled to [0, 1], shuffled;
    columns are cases."""
    from sklearn.datasets import load_digits
    X = load_digits().data / 16.0
    X = X[rng.permutation(len(X))].T.copy()
    return X[:, :n_train], X[:, n_train:]


def curves_data(rng, n, side=16, chunk=500):
    """A CURVES-like set (Hinton & Salakhutdinov 2006, Martens' CURVES): each image is a curve
    through three random points, drawn anti-aliased on a side×side grid, intensities in [0, 1].
    The curve is the quadratic through the points at t = 0, ½, 1 (Lagrange form)."""
    t = np.linspace(0.0, 1.0, 4 * side)
    basis = np.stack([2 * (t - 0.5) * (t - 1), -4 * t * (t - 1), 2 * t * (t - 0.5)])  # (3, T)
    grid = np.stack(np.meshgrid(np.arange(side), np.arange(side), indexing="ij"), -1)
    grid = grid.reshape(-1, 2).astype(float)                                          # (P, 2)
    out = np.empty((side * side, n))
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        pts = rng.uniform(0.15 * side, 0.85 * side, size=(m, 3, 2))
        curve = np.einsum("kt,mkd->mtd", basis, pts)                                   # (m, T, 2)
        d2 = ((grid[None, :, None, :] - curve[:, None, :, :]) ** 2).sum(-1).min(-1)    # (m, P)
        out[:, s:s + m] = np.exp(-d2 / (2 * 0.6 ** 2)).T
    return out


# ----------------------------------------------------------------------------- measuring
class Monitor:
    """A method's clock (paused while the reconstruction error is measured), its count of cases
    read (each evaluation of the loss, a gradient, a curvature product or the preconditioner on a
    batch reads its cases once; divided by N: passes over the data) and its trace."""

    def __init__(self, name, X, budget, bar=True):
        self.name, self.X, self.budget = name, X, budget
        self.cases = 0
        self.trace = []         # (time, passes, objective, squared error)
        self._paused = 0.0
        self._start = time.perf_counter()
        self._bar = None
        if bar:
            from tqdm.auto import tqdm
            self._bar = tqdm(total=int(round(budget)), desc=f"{name:>20}", unit="s", leave=False,
                             file=sys.stderr, mininterval=1.0)

    def elapsed(self):
        return time.perf_counter() - self._start - self._paused

    def read(self, X):
        self.cases += X.shape[1]

    def record(self, params):
        """Measure (off the clock) the training objective and reconstruction error at params."""
        t, t0 = self.elapsed(), time.perf_counter()
        Ws, bs = self.last = params
        obj = cross_entropy(Ws, bs, self.X) + 0.5 * WEIGHT_DECAY * sq_norm(params)
        err = squared_error(Ws, bs, self.X)
        self.trace.append((t, self.cases / self.X.shape[1], obj if np.isfinite(obj) else math.inf,
                           err if np.isfinite(err) else math.inf))
        if self._bar is not None:
            self._bar.set_postfix(err=f"{err:.4g}", refresh=False)
            self._bar.update(max(0, min(int(t), self._bar.total) - self._bar.n))
        self._paused += time.perf_counter() - t0
        return t >= self.budget or not np.isfinite(obj)

    def close(self):
        """(trace as an array: time, passes, objective, error; the last parameters recorded)"""
        if self._bar is not None:
            self._bar.close()
        return np.array(self.trace), self.last


def sq_norm(tree):
    Ws, bs = tree
    return sum(float(np.sum(a * a)) for a in list(Ws) + list(bs))


def copy_params(params):
    return [W.copy() for W in params[0]], [b.copy() for b in params[1]]


def compiled_gradient():
    """``backprop`` compiled by rop's backend (the same code the Gv runs), for the baselines and
    HF's gradient; the decorated function itself runs the plain Python.  It takes tuples and
    C-contiguous data, as Numba types them."""
    return backprop.gvp.primal


# ----------------------------------------------------------------------------- the methods
def hf_functions(X, curvature_batch, read=lambda batch: None, linearise=True):
    """HF's functions on the autoencoder (objective, gradient, curvature, precond_diag, as
    ``hessian_free`` takes them) and the curvature mini-batches: ``curvature_batch`` cases each,
    a fixed random partition of X's columns.  ``read(batch)`` is told of every batch read.

    ``linearise``: the curvature as ``curvature_at``, ``backprop.gvp.linearize`` once per outer
    step (the primal pass once, each CG product only the R-statements); False: a whole
    ``backprop.gvp`` per product (for the benchmark's comparison)."""
    grad = compiled_gradient()
    n = X.shape[1]
    order = np.random.default_rng(0).permutation(n)
    k = max(1, n // curvature_batch)
    minibatches = [np.ascontiguousarray(X[:, order[j::k]]) for j in range(k)]

    def objective(p, b):
        read(b)
        return cross_entropy(p[0], p[1], b)

    last = [None, None, None]          # (params, batch, forward pass) of the last gradient

    def gradient(p, b):
        read(b)
        last[:] = p, b, forward(p[0], p[1], b)
        return cross_entropy(p[0], p[1], b, last[2]), grad(tuple(p[0]), tuple(p[1]), b)

    def curvature(p, b, v):
        read(b)
        return backprop.gvp(p[0], p[1], b, v=v)[1]

    def curvature_at(p, b):
        lin = backprop.gvp.linearize(p[0], p[1], b)

        def G(v):
            read(b)
            return lin(v)
        return G

    def precond(p, b):
        """hessian_free asks for it at the point and batch of the step's gradient (the same
        objects, never written): the loss's forward pass there is reused."""
        read(b)
        return grad_sq_mean(p[0], p[1], b, last[2] if p is last[0] and b is last[1] else None)

    curv = dict(curvature=None, curvature_at=curvature_at) if linearise else dict(curvature=curvature)
    return dict(objective=objective, gradient=gradient, precond_diag=precond,
                curvature_batches=minibatches, **curv)


def run_hf(params, X, budget, curvature_batch, bar=True):
    mon = Monitor("Hessian-free", X, budget, bar)
    mon.record(params)
    params, history = hessian_free(
        params=params, batch=X, weight_decay=WEIGHT_DECAY, steps=10 ** 6, progress=False,
        callback=lambda p, rec: mon.record(p), **hf_functions(X, curvature_batch, mon.read))
    return mon.close(), history


def minibatch_order(n, size, rng):
    while True:
        perm = rng.permutation(n)
        for s in range(0, n - size + 1, size):
            yield perm[s:s + size]


def run_first_order(kind, lr, params, X, budget, batch_size, seed, bar=True):
    """Adam (β = 0.9, 0.999) or SGD with momentum 0.9 (Sutskever et al. 2013's classical
    momentum) on mini-batches, constant rate, the weight decay in the gradient."""
    mon = Monitor(f"{kind} lr={lr:g}", X, budget, bar)
    grad = compiled_gradient()
    theta = [a.copy() for a in params[0] + params[1]]
    L = len(params[0])
    m = [np.zeros_like(a) for a in theta]
    s = [np.zeros_like(a) for a in theta]
    batches = minibatch_order(X.shape[1], batch_size, np.random.default_rng(seed))
    every, last, step = max(1, X.shape[1] // batch_size), -math.inf, 0
    mon.record((theta[:L], theta[L:]))
    while True:
        Xb = np.ascontiguousarray(X[:, next(batches)])
        mon.read(Xb)
        gW, gb = grad(tuple(theta[:L]), tuple(theta[L:]), Xb)
        step += 1
        for j, g in enumerate(list(gW) + list(gb)):
            g = g + WEIGHT_DECAY * theta[j]
            if kind == "Adam":
                m[j] = 0.9 * m[j] + 0.1 * g
                s[j] = 0.999 * s[j] + 0.001 * g * g
                theta[j] = theta[j] - lr * (m[j] / (1 - 0.9 ** step)) / (
                    np.sqrt(s[j] / (1 - 0.999 ** step)) + 1e-8)
            else:
                m[j] = 0.9 * m[j] - lr * g
                theta[j] = theta[j] + m[j]
        # measure once per epoch, and no more often than 1/400 of the budget
        if step % every == 0 and (mon.elapsed() - last >= budget / 400 or mon.elapsed() >= budget):
            last = mon.elapsed()
            if mon.record((theta[:L], theta[L:])):
                break
    return mon.close()


def run_lbfgs(params, X, budget, bar=True):
    """SciPy's L-BFGS-B (memory 10) on the flattened parameters, full batch, stopped at the
    budget."""
    from scipy.optimize import minimize
    mon = Monitor("L-BFGS", X, budget, bar)
    grad = compiled_gradient()
    shapes = [a.shape for a in params[0] + params[1]]
    L = len(params[0])
    sizes = [int(np.prod(sh)) for sh in shapes]

    def unflatten(x):
        parts = np.split(x, np.cumsum(sizes)[:-1])
        arrs = [p.reshape(sh) for p, sh in zip(parts, shapes)]
        return arrs[:L], arrs[L:]

    def fun(x):
        Ws, bs = unflatten(x)
        mon.read(X)
        gW, gb = grad(tuple(Ws), tuple(bs), X)
        f = cross_entropy(Ws, bs, X) + 0.5 * WEIGHT_DECAY * float(x @ x)
        return f, np.concatenate([g.ravel() for g in list(gW) + list(gb)]) + WEIGHT_DECAY * x

    def callback(intermediate_result):
        if mon.record(unflatten(intermediate_result.x)):
            raise StopIteration

    x0 = np.concatenate([a.ravel() for a in params[0] + params[1]])
    mon.record(params)
    minimize(fun, x0, jac=True, method="L-BFGS-B", callback=callback,
             options=dict(maxiter=10 ** 7, maxfun=10 ** 8, ftol=0.0, gtol=0.0))
    return mon.close()


# ----------------------------------------------------------------------------- reporting
def value_at(trace, col, x, key):
    """The squared error of the last record with trace[:, col] ≤ x, or None if the run never
    got that far."""
    if trace[-1, col] < x * (1 - 1e-9):
        return None
    i = np.searchsorted(trace[:, col], x * (1 + 1e-9), side="right") - 1
    return trace[i, key]


def fmt(v):
    return "—" if v is None else ("diverged" if not np.isfinite(v) else f"{v:.4g}")


def report(rows, budget, grid_size, equal_total, config, out):
    """The two tables (error against time, against passes) as Markdown; printed and written."""
    times = [budget / 20, budget / 5, budget / 2, budget]
    passes = [1, 10, 100, 1000, 10000]
    lines = [config, "",
             "Training reconstruction error (squared error per case) against wall-clock time "
             "(s, measurement excluded):", "",
             "| method | settings | runs | total time | " + " | ".join(f"t={t:g}s" for t in times)
             + " | passes at end | test error |",
             "|---|---|---|---|" + "---|" * len(times) + "---|---|"]
    for name, settings, runs, trace, test in rows:
        lines.append(f"| {name} | {settings} | {runs} | {runs * budget:g} s | "
                     + " | ".join(fmt(value_at(trace, 0, t, 3)) for t in times)
                     + f" | {trace[-1, 1]:.0f} | {fmt(test)} |")
    lines += ["", "Against passes over the data (cases read by every loss, gradient, curvature "
              "and preconditioner evaluation, divided by N):", "",
              "| method | " + " | ".join(f"{p:g} pass{'es' * (p != 1)}" for p in passes) + " |",
              "|---|" + "---|" * len(passes)]
    for name, _, _, trace, _ in rows:
        lines.append(f"| {name} | " + " | ".join(fmt(value_at(trace, 1, p, 3)) for p in passes)
                     + " |")
    lines += ["", f"With the learning-rate grid inside the same total budget ({grid_size} rates, "
              f"each given {budget / grid_size:g} s, the best chosen on the training objective "
              "at that time): " + ", ".join(f"{k} {fmt(v[1])} (lr {v[0]:g})"
                                            for k, v in equal_total.items())
              + f"; Hessian-free at {budget:g} s: {fmt(value_at(rows[0][3], 0, budget, 3))}."]
    text = "\n".join(lines) + "\n"
    print(text)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)
    return text


def plot(rows, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, _, _, trace, _ in rows:
        for ax, col in ((axes[0], 0), (axes[1], 1)):
            ax.plot(np.maximum(trace[:, col], 1e-3 if col == 0 else 1e-2), trace[:, 3],
                    label=name, drawstyle="steps-post")
    axes[0].set_xlabel("wall-clock time (s), measurement excluded")
    axes[1].set_xlabel("passes over the training data")
    axes[1].set_xscale("log")
    for ax in axes:
        ax.set_ylabel("training squared error per case")
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- the experiment
SETUPS = {   # data -> (full, quick): encoder layers (the decoder mirrors them), N train, N test,
    #           curvature mini-batch, first-order mini-batch, budget per run (s)
    "digits": (dict(encoder=[64, 128, 64, 32, 8], n_train=1500, n_test=297, curvature_batch=500,
                    batch_size=100, budget=60),
               dict(encoder=[64, 32, 16, 4], n_train=400, n_test=100, curvature_batch=200,
                    batch_size=50, budget=3)),
    "curves": (dict(encoder=[256, 128, 64, 32, 16, 6], n_train=2000, n_test=500,
                    curvature_batch=500, batch_size=100, budget=60),
               dict(encoder=[64, 32, 16, 4], n_train=400, n_test=100, curvature_batch=200,
                    batch_size=50, budget=3)),
}
# 5 rates each, a factor √10 apart, centred where short probe runs found the best
RATES = {"Adam": [3e-4, 1e-3, 3e-3, 1e-2, 3e-2], "SGD+momentum": [3e-3, 1e-2, 3e-2, 1e-1, 3e-1]}


def problem(data, quick=False, seed=0):
    """(setup, X, X_test, layers, params): the experiment's data, network and initial
    parameters for ``data`` (``"digits"`` or ``"curves"``), full size or ``quick``."""
    setup = dict(SETUPS[data][quick])
    rng = np.random.default_rng(seed)
    if data == "digits":
        X, X_test = digits_data(rng, setup["n_train"])
        X_test = X_test[:, :setup["n_test"]]
    else:
        side = 8 if quick else 16
        X = curves_data(rng, setup["n_train"] + setup["n_test"], side)
        X, X_test = X[:, :setup["n_train"]], X[:, setup["n_train"]:]
        setup["encoder"] = [side * side] + setup["encoder"][1:]
    X, X_test = np.ascontiguousarray(X), np.ascontiguousarray(X_test)
    layers = setup["encoder"] + setup["encoder"][-2::-1]
    return setup, X, X_test, layers, sparse_init(layers, rng)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", choices=sorted(SETUPS), default="digits")
    ap.add_argument("--quick", action="store_true", help="tiny sizes and budget (< 2 minutes)")
    ap.add_argument("--plot", metavar="FILE", help="write the plot of error against time and passes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budget", type=float, help="wall-clock seconds per run (per grid point)")
    ap.add_argument("--results", metavar="FILE", help="write the tables (Markdown) here")
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits   # installed with scikit-learn
    with threadpool_limits(limits=1):
        return experiment(args)


def experiment(args):

    setup, X, X_test, layers, params = problem(args.data, args.quick, args.seed)
    budget = args.budget if args.budget is not None else setup["budget"]
    n_params = sum(W.size + b.size for W, b in zip(*params))
    config = (f"data {args.data}: {X.shape[1]} training cases, {X_test.shape[1]} test, "
              f"{X.shape[0]} pixels; autoencoder {'-'.join(map(str, layers))} "
              f"({n_params} parameters; logistic units, linear code layer, logistic outputs with "
              f"cross-entropy); sparse init (15 nonzero N(0,1) incoming weights per unit, capped "
              f"at the fan-in); weight decay {WEIGHT_DECAY:g}; budget {budget:g} s per run; "
              f"seed {args.seed}")
    print(config)

    t0 = time.perf_counter()       # compile once, off every method's clock
    V = tuple([np.zeros_like(a) for a in part] for part in params)
    warm = np.ascontiguousarray(X[:, :2])
    backprop.gvp(*params, warm, v=V)
    backprop.gvp.linearize(*params, warm)(V)      # HF's curvature_at: the split Gv
    compiled_gradient()(tuple(params[0]), tuple(params[1]), warm)
    print(f"compiled the gradient and Gv (whole and linearised) in {time.perf_counter() - t0:.1f} s")

    initial = squared_error(*params, X)
    rows = []
    (hf_trace, hf_params), history = run_hf(copy_params(params), X, budget,
                                            setup["curvature_batch"])
    rows.append(["Hessian-free (Gv)", f"defaults; curvature batch {setup['curvature_batch']}",
                 1, hf_trace, squared_error(*hf_params, X_test)])
    print(f"Hessian-free: {len(history)} steps, CG iterations {int(history['cg_iters'].sum())}, "
          f"final λ {history[-1].new_damping:.3g}" if len(history) else "Hessian-free: no step")

    equal_total = {}
    for kind, rates in RATES.items():
        runs = [(lr, run_first_order(kind, lr, copy_params(params), X, budget,
                                     setup["batch_size"], args.seed)) for lr in rates]
        best_lr, (best, best_params) = min(runs, key=lambda r: r[1][0][-1, 2])
        short = [(lr, value_at(tr, 0, budget / len(rates), 2), value_at(tr, 0, budget / len(rates), 3))
                 for lr, (tr, _) in runs]
        lr_s, _, err_s = min(short, key=lambda r: math.inf if r[1] is None else r[1])
        equal_total[kind] = (lr_s, err_s)
        for lr, (tr, _) in runs:
            print(f"  {kind} lr={lr:g}: objective {tr[-1, 2]:.5g}, error {tr[-1, 3]:.5g}")
        rows.append([kind, f"best lr {best_lr:g} of {rates}, batch {setup['batch_size']}",
                     len(rates), best, squared_error(*best_params, X_test)])
    lbfgs_trace, lbfgs_params = run_lbfgs(copy_params(params), X, budget)
    rows.append(["L-BFGS-B", "SciPy, memory 10, full batch", 1, lbfgs_trace,
                 squared_error(*lbfgs_params, X_test)])
    out = args.results
    if out is None and not args.quick:
        out = ROOT / "benchmarks" / "results" / f"hessian_free_{args.data}.md"
    report(rows, budget, len(RATES["Adam"]), equal_total, config, out)
    if args.plot:
        plot(rows, args.plot, f"Deep autoencoder on {args.data} "
             f"({'-'.join(map(str, layers))}), {budget:g} s per run")
    final = hf_trace[-1, 3]
    print(f"Hessian-free lowered the training error from {initial:.4g} to {final:.4g}")
    assert final < initial, (initial, final)
    return rows


if __name__ == "__main__":
    main()
