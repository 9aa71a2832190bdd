#!/usr/bin/env python
"""Gauss-Newton product timing: rop's G v (``.gvp``) against its H v (``.hvp``) and the
gradient (the compiled primal), on the network of bench_hvp.py (examples/deep_mlp.py, output
``acts[L]``), at its four sizes, same arrays, medians of interleaved rounds.

    python benchmarks/bench_gvp.py [--sizes small|all] [--repeats N] [--min-run S]

Before timing, G v is checked against Jᵀ H_L J v built in JAX (jvp of the network, vjp back;
H_L = I/B for the squared error).  "G v linearised" is one product of ``backprop.gvp.linearize``
(the primal pass done once, as in a CG solve or Hessian-free's inner loop; the time to
linearise is not in it).  A harness, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from benchmarks.bench_hvp import SIZES, make_data, size_label, stats, time_interleaved  # noqa: E402


def jax_gvp(d):
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
    X = jnp.asarray(d["X"])

    def net(p):
        Ws, bs = p
        h = X
        for i, (W, b) in enumerate(zip(Ws, bs)):
            h = W @ h + b[:, None]
            if i < len(Ws) - 1:
                h = jnp.tanh(h)
        return h
    p = ([jnp.asarray(W) for W in d["Ws"]], [jnp.asarray(b) for b in d["bs"]])
    v = ([jnp.asarray(V) for V in d["V"]], [jnp.asarray(c) for c in d["c"]])
    _, Jv = jax.jvp(net, (p,), (v,))
    return jax.vjp(net, p)[1](Jv / X.shape[1])[0]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="all", choices=("small", "all"))
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--min-run", type=float, default=0.05)
    a = ap.parse_args(argv)
    from examples.deep_mlp import backprop
    sizes = SIZES[:2] if a.sizes == "small" else SIZES
    print("| size | gradient (ms) | H v (ms) | G v (ms) | G v / H v | G v / gradient | "
          "G v linearised (ms) | linearised / gradient | G v vs JAX |")
    print("|---|---|---|---|---|---|---|---|---|")
    for layers, batch in sizes:
        d = make_data(layers, batch)
        Ws, bs, X, T, V, c = (d[k] for k in ("Ws", "bs", "X", "T", "V", "c"))
        backprop.hvp(Ws, bs, X, T, v=(V, c))
        _, Gv = backprop.gvp(Ws, bs, X, T, v=(V, c))
        ref = jax_gvp(d)
        flat = lambda t: np.concatenate([np.ravel(x) for part in t for x in part])  # noqa: E731
        err = float(np.max(np.abs(flat(Gv) - flat(ref))) / np.max(np.abs(flat(ref))))
        primal = backprop.hvp.primal
        lin = backprop.gvp.linearize(Ws, bs, X, T)
        assert lin.split and np.allclose(flat(lin((V, c))), flat(Gv), rtol=1e-12, atol=0)
        args = (tuple(Ws), tuple(bs), X, T)
        ts, _ = time_interleaved({
            "grad": lambda: primal(*args),
            "hvp": lambda: backprop.hvp(Ws, bs, X, T, v=(V, c)),
            "gvp": lambda: backprop.gvp(Ws, bs, X, T, v=(V, c)),
            "lin": lambda: lin((V, c)),
        }, a.repeats, a.min_run)
        m = {k: stats(v)["median"] * 1e3 for k, v in ts.items()}
        print(f"| {size_label(layers, batch)} | {m['grad']:.4g} | {m['hvp']:.4g} | {m['gvp']:.4g} | "
              f"{m['gvp'] / m['hvp']:.2f} | {m['gvp'] / m['grad']:.2f} | {m['lin']:.4g} | "
              f"{m['lin'] / m['grad']:.2f} | {err:.1e} |", flush=True)


if __name__ == "__main__":
    main()
