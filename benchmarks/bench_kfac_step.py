#!/usr/bin/env python
"""One KFRA / KFLR step against one gradient, at the deep autoencoder's size (Martens' and
Hinton & Salakhutdinov's MNIST autoencoder, 784-1000-500-250-30-250-500-1000-784; logistic
units, linear code layer, logistic outputs with cross-entropy; the network of
examples/hessian_free.py).

    python benchmarks/bench_kfac_step.py [--batch 1000] [--repeats 5] [--quick]

Timed, medians of interleaved rounds, all in one process: the gradient (rop's compiled
backprop, the network's own), the Kronecker factors (``Network.kfra``, ``Network.kflr``), the
damped inversion of every layer's two factors (done every 5 steps), the preconditioning of a
gradient, and one Gauss-Newton product (``backprop.gvp``, two per step when the step size and
momentum come from the quadratic model).  A step of :func:`rop.kfac.kronecker_factored` is then

    fixed α, μ:      gradient + factors + precondition + inversion / 5
    adaptive α, μ:   the above + 2 Gv + one loss every 5 steps (the Levenberg–Marquardt ρ)

reported in units of one gradient.  KFLR back-propagates K = 784 columns per sample, so its
cost is linear in the batch: it is timed once on ``--kflr-batch`` cases (default 50) and
scaled to the batch (stated in the table).  A harness, not a test.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from benchmarks.bench_hvp import stats, time_interleaved  # noqa: E402

LAYERS = [784, 1000, 500, 250, 30, 250, 500, 1000, 784]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="a small network, for a smoke test")
    ap.add_argument("--no-kflr", action="store_true")
    ap.add_argument("--kflr-batch", type=int, default=50,
                    help="cases KFLR is timed on (its time is scaled to --batch)")
    ap.add_argument("--out", help="append the Markdown table to this file")
    a = ap.parse_args(argv)
    import examples.hessian_free as HF
    from examples.kfac_autoencoder import network
    from rop.kfac import Preconditioner
    layers = [16, 12, 4, 12, 16] if a.quick else LAYERS
    B = 32 if a.quick else a.batch
    rng = np.random.default_rng(0)
    Ws, bs = HF.sparse_init(layers, rng)
    X = np.ascontiguousarray(rng.uniform(size=(layers[0], B)))
    net = network(layers)
    V = tuple([rng.normal(size=x.shape) for x in part] for part in (Ws, bs))
    HF.backprop.gvp(Ws, bs, X, v=V)
    grad = HF.compiled_gradient()
    pre = Preconditioner()
    pre.update(net.kfra(Ws, bs, X, X))
    pre.invert(1.0)
    gW, gb = grad(tuple(Ws), tuple(bs), X)
    fns = {
        "gradient": lambda: grad(tuple(Ws), tuple(bs), X),
        "KFRA factors": lambda: net.kfra(Ws, bs, X, X),
        "inversion": lambda: pre.invert(1.0),
        "precondition": lambda: pre.apply(gW, gb),
        "Gv": lambda: HF.backprop.gvp(Ws, bs, X, v=V),
        "loss": lambda: HF.cross_entropy(Ws, bs, X),
    }
    runs, _ = time_interleaved(fns, a.repeats, 0.05, warmup=1)
    med = {k: stats(v)["median"] for k, v in runs.items()}
    kb = min(B, a.kflr_batch)
    if not a.no_kflr:
        Xk = np.ascontiguousarray(X[:, :kb])
        t0 = time.perf_counter()
        net.kflr(Ws, bs, Xk, Xk)
        med["KFLR factors"] = (time.perf_counter() - t0) * B / kb
    g = med["gradient"]
    n_params = sum(W.size + b.size for W, b in zip(Ws, bs))
    lines = [f"Deep autoencoder {'-'.join(map(str, layers))} ({n_params} parameters), batch {B}; "
             f"medians of {a.repeats} interleaved rounds (KFLR: one call on {kb} cases, "
             f"scaled ×{B / kb:g}); "
             f"{time.strftime('%Y-%m-%d')}, BLAS threads default", "",
             "| part | ms | ÷ gradient |", "|---|---|---|"]
    for k, t in med.items():
        lines.append(f"| {k} | {1e3 * t:.1f} | {t / g:.2f} |")
    lines += ["", "| step | ms | ÷ gradient |", "|---|---|---|"]
    for kind in ("KFRA", "KFLR"):
        if f"{kind} factors" not in med:
            continue
        fixed = g + med[f"{kind} factors"] + med["precondition"] + med["inversion"] / 5
        adaptive = fixed + 2 * med["Gv"] + med["loss"] / 5
        lines.append(f"| {kind}, fixed α, μ | {1e3 * fixed:.1f} | {fixed / g:.2f} |")
        lines.append(f"| {kind}, (α, μ) from 2 Gv | {1e3 * adaptive:.1f} | {adaptive / g:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        with open(a.out, "a") as f:
            f.write(text + "\n")
    return 0 if math.isfinite(g) else 1


if __name__ == "__main__":
    sys.exit(main())
