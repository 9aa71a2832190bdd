#!/usr/bin/env python
"""Products at fixed arguments: rop's linearised H v (``f.hvp.linearize``: the primal pass once,
each product only the R-statements) against ``f.hvp`` (the whole R{backprop} per product), JAX's
``jax.linearize`` of the gradient, and JAX's ``jvp(grad)`` per product, on the network of
bench_hvp.py (examples/deep_mlp.py) at its four sizes; same arrays, medians of interleaved
rounds, the ratios from the same run.

    python benchmarks/bench_linearize.py [--sizes small|all] [--repeats N] [--min-run S]

Before timing, the linearised product is checked against ``f.hvp`` and JAX's.  The time to
linearise (the primal pass and its tape) is reported on its own: it is paid once per point,
the products many times (a CG solve, a Lanczos run).  A harness, not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from benchmarks.bench_hvp import (SIZES, jax_loss, make_data, size_label, stats,  # noqa: E402
                                  time_interleaved)


def jax_products(d):
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
    g = jax.grad(jax_loss)
    P = ([jnp.asarray(W) for W in d["Ws"]], [jnp.asarray(b) for b in d["bs"]])
    V = ([jnp.asarray(W) for W in d["V"]], [jnp.asarray(b) for b in d["c"]])
    X, T = jnp.asarray(d["X"]), jnp.asarray(d["T"])
    jvp = jax.jit(lambda p, v: jax.jvp(lambda q: g(q, X, T), (p,), (v,))[1])
    _, f_lin = jax.linearize(lambda q: g(q, X, T), P)
    f_lin = jax.jit(f_lin)
    return (lambda: jax.block_until_ready(jvp(P, V))), (lambda: jax.block_until_ready(f_lin(V))), \
        f_lin(V)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="all", choices=("small", "all"))
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--min-run", type=float, default=0.05)
    ap.add_argument("--no-jax", action="store_true")
    a = ap.parse_args(argv)
    from examples.deep_mlp import backprop
    sizes = SIZES[:2] if a.sizes == "small" else SIZES
    cols = ["size", "linearise (ms, once)", "H v per product, .hvp (ms)",
            "linearised (ms)", "linearised / .hvp"]
    if not a.no_jax:
        cols += ["JAX jvp(grad) (ms)", "JAX linearize (ms)", "linearised / JAX linearize"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for layers, batch in sizes:
        d = make_data(layers, batch)
        Ws, bs, X, T, V, c = (d[k] for k in ("Ws", "bs", "X", "T", "V", "c"))
        _, Hv = backprop.hvp(Ws, bs, X, T, v=(V, c))
        lin = backprop.hvp.linearize(Ws, bs, X, T)
        t0 = time.perf_counter()
        lin = backprop.hvp.linearize(Ws, bs, X, T)
        t_lin = time.perf_counter() - t0
        got = lin((V, c))
        flat = lambda t: np.concatenate([np.ravel(x) for part in t for x in part])  # noqa: E731
        err = float(np.max(np.abs(flat(got) - flat(Hv))) / np.max(np.abs(flat(Hv))))
        assert lin.split and err < 1e-12, (lin, err)
        fns = {"hvp": lambda: backprop.hvp(Ws, bs, X, T, v=(V, c)), "lin": lambda: lin((V, c))}
        if not a.no_jax:
            jvp, jlin, ref = jax_products(d)
            jerr = float(np.max(np.abs(flat(got) - flat(ref))) / np.max(np.abs(flat(ref))))
            assert jerr < 1e-10, jerr
            fns.update(jvp=jvp, jlin=jlin)
        ts, _ = time_interleaved(fns, a.repeats, a.min_run)
        m = {k: stats(v)["median"] * 1e3 for k, v in ts.items()}
        row = [size_label(layers, batch), f"{t_lin * 1e3:.4g}", f"{m['hvp']:.4g}",
               f"{m['lin']:.4g}", f"{m['lin'] / m['hvp']:.2f}"]
        if not a.no_jax:
            row += [f"{m['jvp']:.4g}", f"{m['jlin']:.4g}", f"{m['lin'] / m['jlin']:.2f}"]
        print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
