"""KFRA and KFLR (Botev, Ritter & Barber 2017; seed 001) on the deep autoencoder of
``examples/hessian_free.py``, against Hessian-free, Adam and momentum SGD on the same budget.

The block-diagonal Gauss-Newton factors come from :mod:`rop.blocks` (``Network.kfra``,
``Network.kflr``: the activations' derivatives and the output Hessian by rop's R-operator) and
the optimiser from :func:`rop.kfac.kronecker_factored`: factors averaged over steps (0.95),
inverted every 5 steps with factored Tikhonov damping, the step size and momentum chosen by the
exact quadratic model with two Gauss-Newton products (``backprop.gvp``, the HF example's own
backprop under ``@rop``), λ adapted by Levenberg–Marquardt.  Adam and SGD use the learning rates
the HF example's grid chose on this problem (its ``benchmarks/results/hessian_free_digits.md``:
Adam 0.003, SGD 0.1); HF runs with its defaults.  Every method gets the same wall-clock budget
and minimises the same objective; the reconstruction error is measured off the clock.

Run:  python examples/kfac_autoencoder.py [--quick] [--budget S] [--batch B] [--seed N]
                                          [--plot out.png] [--results out.md]
"""

import argparse
import os
import sys
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")   # as examples/hessian_free.py: see there

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import examples.hessian_free as HF  # noqa: E402
from rop.blocks import Network  # noqa: E402
from rop.kfac import kronecker_factored  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TUNED = {"Adam": 3e-3, "SGD+momentum": 0.1}   # the HF example's grid's choice on digits


def network(layers):
    """The autoencoder as rop.blocks describes it: logistic hidden units, the code layer (after
    layer L/2) linear, logistic outputs with cross-entropy (the pixels are the targets)."""
    L = len(layers) - 1
    return Network(["identity" if 2 * (i + 1) == L else "sigmoid" for i in range(L - 1)],
                   "logistic")


class Counted(HF.Monitor):
    """The HF example's monitor, also counting parameter updates at each record."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.updates, self.counts = 0, []

    def record(self, params):
        self.counts.append(self.updates)
        return super().record(params)

    def close(self):
        trace, last = super().close()
        return np.column_stack([trace, self.counts]), last


def run_kfac(kind, params, X, budget, batch, seed, bar=True):
    net = network([params[0][0].shape[1]] + [W.shape[0] for W in params[0]])
    mon = Counted(kind, X, budget, bar)
    grad = HF.compiled_gradient()
    order = HF.minibatch_order(X.shape[1], batch, np.random.default_rng(seed))
    batches = {}

    def batch_at(k):  # one fresh mini-batch per step, the same object within the step
        if k not in batches:
            batches.clear()
            batches[k] = np.ascontiguousarray(X[:, next(order)])
        return batches[k]

    def gradient(p, b):
        mon.read(b)
        return HF.cross_entropy(p[0], p[1], b), grad(tuple(p[0]), tuple(p[1]), b)

    def objective(p, b):
        mon.read(b)
        return HF.cross_entropy(p[0], p[1], b)

    def curvature(p, b, v):
        mon.read(b)
        return HF.backprop.gvp(p[0], p[1], b, v=v)[1]

    def factors(p, b):
        mon.read(b)
        return (net.kfra if kind == "KFRA" else net.kflr)(p[0], p[1], b, b)

    every = max(1, X.shape[1] // batch)

    def callback(p, rec):
        mon.updates += 1
        if mon.updates % every == 0:
            return mon.record(p)
        return mon.elapsed() >= budget

    mon.record(params)
    params, history = kronecker_factored(gradient, factors, params, batches=batch_at,
                                         steps=10 ** 7, curvature=curvature, objective=objective,
                                         weight_decay=HF.WEIGHT_DECAY, callback=callback,
                                         progress=False)
    mon.record(params)
    return mon.close(), history


def run_hf(params, X, budget, curvature_batch, bar=True):
    mon = Counted("Hessian-free", X, budget, bar)
    mon.record(params)

    def callback(p, rec):
        mon.updates += 1
        return mon.record(p)
    params, _ = HF.hessian_free(params=params, batch=X, weight_decay=HF.WEIGHT_DECAY,
                                steps=10 ** 6, progress=False, callback=callback,
                                **HF.hf_functions(X, curvature_batch, mon.read))
    return mon.close()


def run_first_order(kind, params, X, budget, batch, seed, bar=True):
    (trace, last) = HF.run_first_order(kind, TUNED[kind], params, X, budget, batch, seed, bar)
    # a step reads one mini-batch and nothing else: updates = cases read / batch
    return np.column_stack([trace, np.round(trace[:, 1] * X.shape[1] / batch)]), last


def report(rows, budget, config, out):
    times = [budget / 20, budget / 5, budget / 2, budget]
    lines = [config, "",
             "Training reconstruction error (squared error per case) against wall-clock time "
             "(s, measurement excluded), and the parameter updates made in the budget:", "",
             "| method | settings | " + " | ".join(f"t={t:g}s" for t in times)
             + " | updates | s per update | test error |",
             "|---|---|" + "---|" * len(times) + "---|---|---|"]
    for name, settings, trace, test in rows:
        n = int(trace[-1, 4])
        lines.append(f"| {name} | {settings} | "
                     + " | ".join(HF.fmt(HF.value_at(trace, 0, t, 3)) for t in times)
                     + f" | {n} | {trace[-1, 0] / max(n, 1):.3g} | {HF.fmt(test)} |")
    marks = [10, 100, 1000, 10000]
    lines += ["", "Against updates:", "",
              "| method | " + " | ".join(f"{m} updates" for m in marks) + " |",
              "|---|" + "---|" * len(marks)]
    for name, _, trace, _ in rows:
        lines.append(f"| {name} | " + " | ".join(HF.fmt(HF.value_at(trace, 4, m, 3)) for m in marks)
                     + " |")
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
    for name, _, trace, _ in rows:
        axes[0].plot(np.maximum(trace[:, 0], 1e-3), trace[:, 3], label=name, drawstyle="steps-post")
        axes[1].plot(np.maximum(trace[:, 4], 1), trace[:, 3], label=name, drawstyle="steps-post")
    axes[0].set_xlabel("wall-clock time (s), measurement excluded")
    axes[1].set_xlabel("parameter updates")
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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes and budget (< 1 minute)")
    ap.add_argument("--budget", type=float, help="wall-clock seconds per method")
    ap.add_argument("--batch", type=int, default=250, help="KFRA/KFLR mini-batch (default 250)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot", metavar="FILE")
    ap.add_argument("--results", metavar="FILE")
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1):
        return experiment(args)


def experiment(args):
    setup, X, X_test, layers, params = HF.problem("digits", args.quick, args.seed)
    budget = args.budget if args.budget is not None else setup["budget"]
    batch = min(args.batch, X.shape[1])
    config = (f"digits: {X.shape[1]} training cases, {X_test.shape[1]} test; autoencoder "
              f"{'-'.join(map(str, layers))} (as examples/hessian_free.py); weight decay "
              f"{HF.WEIGHT_DECAY:g}; budget {budget:g} s per method; seed {args.seed}; "
              f"KFRA/KFLR mini-batch {batch}, factors EMA 0.95, inversion every 5 steps, "
              "initial λ 1, (α, μ) from the exact Gauss-Newton quadratic model")
    print(config)
    t0 = time.perf_counter()           # compile everything once, off every clock
    V = tuple([np.zeros_like(a) for a in part] for part in params)
    warm = np.ascontiguousarray(X[:, :2])
    HF.backprop.gvp(*params, warm, v=V)
    HF.backprop.gvp.linearize(*params, warm)(V)
    HF.compiled_gradient()(tuple(params[0]), tuple(params[1]), warm)
    net = network(layers)
    net.kfra(*params, warm, warm)
    net.kflr(*params, warm, warm)
    print(f"compiled the gradient, Gv and the factors' derivatives in {time.perf_counter() - t0:.1f} s")
    initial = HF.squared_error(*params, X)
    rows = []
    for kind in ("KFRA", "KFLR"):
        (trace, last), history = run_kfac(kind, HF.copy_params(params), X, budget, batch, args.seed)
        rows.append([kind, f"batch {batch}; final λ {history[-1].damping:.3g}" if len(history)
                     else f"batch {batch}", trace, HF.squared_error(*last, X_test)])
    trace, last = run_hf(HF.copy_params(params), X, budget, setup["curvature_batch"])
    rows.append(["Hessian-free (Gv)", f"defaults; curvature batch {setup['curvature_batch']}",
                 trace, HF.squared_error(*last, X_test)])
    for kind in TUNED:
        trace, last = run_first_order(kind, HF.copy_params(params), X, budget,
                                      setup["batch_size"], args.seed)
        rows.append([kind, f"lr {TUNED[kind]:g} (the HF example's grid), batch "
                     f"{setup['batch_size']}", trace, HF.squared_error(*last, X_test)])
    out = args.results
    if out is None and not args.quick:
        out = ROOT / "benchmarks" / "results" / "kfac_autoencoder.md"
    report(rows, budget, config, out)
    if args.plot:
        plot(rows, args.plot, f"Deep autoencoder on digits ({'-'.join(map(str, layers))}), "
             f"{budget:g} s per method")
    for name, _, trace, _ in rows[:2]:
        print(f"{name} lowered the training error from {initial:.4g} to {trace[-1, 3]:.4g}")
        assert trace[-1, 3] < initial, (name, initial, trace[-1, 3])
    return rows


if __name__ == "__main__":
    main()
