"""A recurrent network trained by Hessian-free with structural damping (Martens & Sutskever
2011), on the addition problem, with rop's Gauss-Newton product of a hand-written BPTT.

The addition problem (Hochreiter & Schmidhuber 1997; Martens & Sutskever 2011 §5): each input
sequence has T steps of two numbers, a value in [0, 1] and a marker that is 1 at two steps (one
in the first half, one in the second) and 0 elsewhere; the target, read at the last step, is
the sum of the two marked values.  A case counts as solved when the output is within 0.04 of
the target.  Predicting the mean (1.0) gives a squared error of 1/6, the baseline to beat.

The backprop below is written by hand (a forward loop storing the states ``hs``, a backward
loop through time) and decorated with

    @rop(wrt=..., output="y", hidden={"hs[t + 1]": "dh"})

``y`` is where the squared error begins (the loss is convex in it, so G is positive
semi-definite), and ``dh`` is the variable the backward loop assigns dE/dhs[t + 1] to.  Then
``backprop.gvp(..., v=v, structural=w)`` is G v + w J_hᵀ J_h v: the curvature of Martens &
Sutskever's "do-not-change prior on the hidden unit activities", from the same compiled code.
``rop.hessian_free(..., structural_damping=mu)`` passes w = λμ, so the prior follows the
Levenberg–Marquardt damping λ.  The curvature is linearised once per HF step
(``backprop.gvp.linearize(..., structural=w)``, passed as ``curvature_at``).

The run compares μ = 0 (plain Gauss-Newton HF) with μ > 0, the same steps, data and seeds, and
prints the training loss and the fraction of test cases solved.

Run:  python examples/hessian_free_rnn.py [--quick] [--steps N] [--length T] [--seeds K]
                                          [--mu MU] [--results FILE]
"""

import argparse
import os
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")   # small matrices on shared cores: one BLAS thread

import numpy as np  # noqa: E402

from rop import rop  # noqa: E402
from rop.hessian_free import hessian_free  # noqa: E402


@rop(wrt=("Wxh", "Whh", "bh", "Why", "by"), output="y", hidden={"hs[t + 1]": "dh"})
def backprop(Wxh, Whh, bh, Why, by, h0, xs, target):
    """Gradient of E = 1/(2B) Σ (y − target)² for the tanh RNN h_{t+1} = tanh(Wxh x_t + Whh h_t
    + bh), y = Why h_T + by; examples in columns."""
    T = len(xs)
    B = target.shape[1]
    hs = [h0]
    for t in range(T):
        hs.append(np.tanh(Wxh @ xs[t] + Whh @ hs[t] + bh[:, None]))
    y = Why @ hs[T] + by[:, None]
    dy = (y - target) / B
    dWhy = dy @ hs[T].T
    dby = dy.sum(axis=1)
    dWxh = np.zeros_like(Wxh)
    dWhh = np.zeros_like(Whh)
    dbh = np.zeros_like(bh)
    dh_next = Why.T @ dy
    for t in range(T - 1, -1, -1):
        dh = dh_next                                  # dE/dhs[t + 1]
        draw = (1.0 - hs[t + 1] ** 2) * dh
        dWxh += draw @ xs[t].T
        dWhh += draw @ hs[t].T
        dbh += draw.sum(axis=1)
        dh_next = Whh.T @ draw
    return dWxh, dWhh, dbh, dWhy, dby


def predict(params, xs):
    Wxh, Whh, bh, Why, by = params
    h = np.zeros((Whh.shape[0], xs[0].shape[1]))
    for x in xs:
        h = np.tanh(Wxh @ x + Whh @ h + bh[:, None])
    return Why @ h + by[:, None]


def loss(params, batch):
    _, xs, target = batch
    return 0.5 * float(np.mean((predict(params, xs) - target) ** 2))


def addition_data(rng, n, T):
    """(h0, xs, target): xs a list of T arrays (2, n), target (1, n)."""
    values = rng.uniform(0.0, 1.0, size=(T, n))
    marks = np.zeros((T, n))
    first = rng.integers(0, T // 2, size=n)
    second = rng.integers(T // 2, T, size=n)
    marks[first, np.arange(n)] = 1.0
    marks[second, np.arange(n)] = 1.0
    xs = [np.ascontiguousarray(np.stack([values[t], marks[t]])) for t in range(T)]
    target = (values * marks).sum(axis=0)[None, :]
    return xs, target


def init(rng, n_in, n_hidden, radius=1.1, nonzero=15):
    """Martens & Sutskever's initialisation: sparse, 15 nonzero N(0, 1) incoming weights per
    unit, the recurrent matrix scaled to spectral radius 1.1; zero biases."""
    def sparse(m, n):
        W = np.zeros((m, n))
        k = min(nonzero, n)
        for j in range(m):
            W[j, rng.choice(n, size=k, replace=False)] = rng.normal(size=k)
        return W
    Whh = sparse(n_hidden, n_hidden)
    Whh *= radius / np.max(np.abs(np.linalg.eigvals(Whh)))
    return (0.1 * sparse(n_hidden, n_in), Whh, np.zeros(n_hidden),
            0.1 * rng.normal(size=(1, n_hidden)), np.zeros(1))


def train(params, data, steps, mu):
    primal = backprop.gvp.primal     # the gradient: rop's compiled primal (takes a tuple)

    def gradient(p, b):
        return loss(p, b), primal(*p, b[0], tuple(b[1]), b[2])

    def curvature_at(p, b, weight=0.0):
        """Linearised once per HF step (the forward and backward pass through time once; each
        CG product only the R-statements): v -> G v + weight · J_hᵀ J_h v."""
        return backprop.gvp.linearize(*p, *b, structural=weight)

    return hessian_free(loss, gradient, None, params, curvature_at=curvature_at, batch=data,
                        steps=steps, damping=1.0, structural_damping=mu, progress=False)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short sequences, few steps (CI)")
    ap.add_argument("--steps", type=int, help="HF outer steps per run")
    ap.add_argument("--length", type=int, help="sequence length T")
    ap.add_argument("--seeds", type=int, help="runs per setting")
    ap.add_argument("--mu", type=float, default=0.3, help="structural damping μ (vs 0)")
    ap.add_argument("--results", metavar="FILE", help="write the table (Markdown) here")
    args = ap.parse_args(argv)
    T = args.length or (8 if args.quick else 20)
    steps = args.steps or (4 if args.quick else 40)
    seeds = args.seeds or (1 if args.quick else 3)
    n_train, n_test, n_hidden = (200, 200, 16) if args.quick else (1000, 1000, 32)
    config = (f"addition problem, T = {T}: {n_train} training and {n_test} test sequences; tanh "
              f"RNN with {n_hidden} units; HF with Gv, {steps} steps, initial λ = 1; "
              f"seeds 0..{seeds - 1}")
    print(config)

    rows = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        xs, target = addition_data(rng, n_train, T)
        txs, ttarget = addition_data(rng, n_test, T)
        h0 = np.zeros((n_hidden, n_train))
        p0 = init(rng, 2, n_hidden)
        backprop.gvp(*p0, h0, xs, target, v=p0, structural=0.0)  # compile, off the clock:
        backprop.gvp.linearize(*p0, h0, xs, target, structural=0.0)(p0)  # gradient, linearised
        for mu in (0.0, args.mu):
            start = time.perf_counter()
            params, history = train(p0, (h0, xs, target), steps, mu)
            seconds = time.perf_counter() - start
            err = np.abs(predict(params, txs) - ttarget)
            rows.append((seed, mu, history[-1].loss if len(history) else history.initial_loss,
                         float(np.mean(err < 0.04)), int(history["cg_iters"].sum()), seconds))
            assert rows[-1][2] < history.initial_loss, "HF did not lower the training loss"
            print(f"  seed {seed}, μ = {mu:g}: training loss {rows[-1][2]:.4g}, test solved "
                  f"{100 * rows[-1][3]:.1f}%, {rows[-1][4]} CG iterations, {seconds:.1f} s")

    lines = ["| μ | training loss (median) | test cases solved (median, min–max) | "
             "CG iterations (median) | seconds (median) |", "|---|---|---|---|---|"]
    for mu in (0.0, args.mu):
        sel = [r for r in rows if r[1] == mu]
        solved = [100 * r[3] for r in sel]
        lines.append(f"| {mu:g} | {np.median([r[2] for r in sel]):.4g} | "
                     f"{np.median(solved):.1f}% ({min(solved):.1f}–{max(solved):.1f}%) | "
                     f"{np.median([r[4] for r in sel]):.0f} | {np.median([r[5] for r in sel]):.1f} |")
    lines.append(f"\n(the mean predictor's training loss: {1 / 12:.4g})")
    print("\n" + "\n".join(lines))
    if args.results:
        with open(args.results, "w", encoding="utf-8") as fh:
            fh.write(config + "\n\n" + "\n".join(lines) + "\n")
    return rows


if __name__ == "__main__":
    main()
