#!/usr/bin/env python
"""k directions at fixed arguments: rop's operator ``H @ V`` (V an n×k matrix, one column per
direction) against k separate ``f.hvp`` calls and against JAX (``jax.linearize`` of the
gradient, ``vmap`` over the k directions, jitted), on the network of bench_hvp.py
(examples/deep_mlp.py) at its four sizes; time per direction, medians of interleaved rounds,
ratios from the same run.

    python benchmarks/bench_matmat.py [--sizes small|all] [--k 1,4,16,64] [--repeats N]

``H = backprop.hvp.operator(...)`` is linearised once (the primal pass, not timed: it is paid
once per point); ``H @ V`` then runs the tangent function once per column.  Before timing, the
k products are checked against JAX's.  A harness, not a test.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from benchmarks.bench_hvp import (SIZES, jax_loss, make_data, size_label, stats,  # noqa: E402
                                  time_interleaved)


def jax_matmat(d, k_dirs):
    """JAX's k products: ``vmap`` of the linearised gradient over k direction pytrees."""
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
    loss = jax_loss
    X, T = jnp.asarray(d["X"]), jnp.asarray(d["T"])
    P = ([jnp.asarray(W) for W in d["Ws"]], [jnp.asarray(b) for b in d["bs"]])
    _, f_lin = jax.linearize(lambda q: jax.grad(loss)(q, X, T), P)
    many = jax.jit(jax.vmap(f_lin))
    V = jax.tree_util.tree_map(jnp.asarray, k_dirs)
    return (lambda: jax.block_until_ready(many(V))), many(V)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="all", choices=("small", "all"))
    ap.add_argument("--k", default="1,4,16,64")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--min-run", type=float, default=0.05)
    ap.add_argument("--no-jax", action="store_true")
    a = ap.parse_args(argv)
    from examples.deep_mlp import backprop
    sizes = SIZES[:2] if a.sizes == "small" else SIZES
    ks = [int(x) for x in a.k.split(",")]
    cols = ["size", "k", "k × .hvp (ms/direction)", "H @ V (ms/direction)",
            ".hvp / (H @ V)"]
    if not a.no_jax:
        cols += ["JAX vmap(linearize) (ms/direction)", "(H @ V) / JAX"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols), flush=True)
    for layers, batch in sizes:
        d = make_data(layers, batch)
        Ws, bs, X, T = (d[k] for k in ("Ws", "bs", "X", "T"))
        H = backprop.hvp.operator(Ws, bs, X, T)
        n = H.shape[0]
        rng = np.random.default_rng(1)
        for k in ks:
            Vm = rng.normal(size=(n, k))
            dirs = [H.layout.unflatten(Vm[:, j]) for j in range(k)]
            HV = H @ Vm
            one = backprop.hvp(Ws, bs, X, T, v=dirs[-1])[1]
            assert np.allclose(H.layout.flatten(one), HV[:, -1], rtol=1e-12, atol=1e-12)

            def separate(dirs=dirs):
                for v in dirs:
                    backprop.hvp(Ws, bs, X, T, v=v)
            fns = {"hvp": separate, "mm": lambda Vm=Vm: H @ Vm}
            if not a.no_jax:
                stacked = ([np.stack([v[0][i] for v in dirs]) for i in range(len(Ws))],
                           [np.stack([v[1][i] for v in dirs]) for i in range(len(bs))])
                jfn, jref = jax_matmat(d, stacked)
                jflat = np.stack([np.concatenate([np.ravel(np.asarray(x)[j]) for part in jref
                                                  for x in part]) for j in range(k)], axis=1)
                assert np.allclose(jflat, HV, rtol=1e-10, atol=1e-10 * np.abs(HV).max())
                fns["jax"] = jfn
            ts, _ = time_interleaved(fns, a.repeats, a.min_run)
            m = {key: stats(v)["median"] * 1e3 / k for key, v in ts.items()}
            row = [size_label(layers, batch), str(k), f"{m['hvp']:.4g}", f"{m['mm']:.4g}",
                   f"{m['hvp'] / m['mm']:.2f}"]
            if not a.no_jax:
                row += [f"{m['jax']:.4g}", f"{m['mm'] / m['jax']:.2f}"]
            print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
