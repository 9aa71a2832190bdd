#!/usr/bin/env python
"""The benchmark network written as most users write it — examples in rows (``a @ W.T + b``),
activations in a list built by ``ys = [X]`` and ``append`` — against the same network in the
project's columns layout (examples/deep_mlp.py), the hand-written R{backprop} of each layout
under Numba (handwritten.py's ``rbackprop_nb``, handwritten_rows.py's ``rbackprop_rows_nb``) and
JAX's ``jit(jvp(grad))`` of the rows loss, at the four sizes of bench_hvp.py; medians of
interleaved rounds, all in one process, so both layouts' rop / hand-written ratios come from
the same run.

    python benchmarks/bench_layouts.py [--sizes small|all|0,2,...] [--repeats N] [--out FILE]

Before timing, the rows Hv is checked against JAX's (relative 1e-10) and against the columns
Hv (the same numbers, transposed data), and each hand-written Hv and gradient against rop's of
its layout.  A harness, not a test (issue 22).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from benchmarks.bench_hvp import SIZES, make_data, size_label, stats, time_interleaved  # noqa: E402
from rop import rop  # noqa: E402


@rop(wrt=("Ws", "bs"))
def backprop_rows(Ws, bs, X, T):
    """Gradient of E = 1/(2B) ||net(X) - T||^2, examples in rows: tanh layers, linear output."""
    ys = [X]
    L = len(Ws)
    for i in range(L):
        h = ys[-1] @ Ws[i].T + bs[i]
        if i < L - 1:
            ys.append(np.tanh(h))
        else:
            ys.append(h)
    d = (ys[-1] - T) / X.shape[0]
    dWs, dbs = [], []
    for i in range(L - 1, -1, -1):
        dWs.append(d.T @ ys[i])
        dbs.append(d.sum(axis=0))
        if i > 0:
            d = (d @ Ws[i]) * (1.0 - ys[i] ** 2)
    return dWs[::-1], dbs[::-1]


def jax_rows(d):
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)

    def loss(p, X, T):
        Ws, bs = p
        a = X
        for i in range(len(Ws)):
            a = a @ Ws[i].T + bs[i]
            a = jnp.tanh(a) if i < len(Ws) - 1 else a
        r = a - T
        return 0.5 * jnp.sum(r * r) / X.shape[0]
    g = jax.grad(loss)
    f = jax.jit(lambda p, X, T, v: jax.jvp(lambda q: g(q, X, T), (p,), (v,))[1])
    P = ([jnp.asarray(W) for W in d["Ws"]], [jnp.asarray(b) for b in d["bs"]])
    V = ([jnp.asarray(W) for W in d["V"]], [jnp.asarray(b) for b in d["c"]])
    X, T = jnp.asarray(d["X"].T), jnp.asarray(d["T"].T)
    return (lambda: jax.block_until_ready(f(P, X, T, V))), f(P, X, T, V)


def rel(a, b):
    a = np.concatenate([np.ravel(x) for x in a])
    b = np.concatenate([np.ravel(x) for x in b])
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def mlp_gemms(layers, batch):
    """The matrix products of one Hv of the MLP as a hand-written R{backprop} forms them, rows
    layout (``[(m, k, n, count, what)]``, each (m×k)·(k×n)): per layer i with W_i
    (n_out × n_in), forward a W_iᵀ and its R (V_i, and R{a} W_iᵀ when i > 0), backward dᵀ a
    and its R (dᵀ R{a} when i > 0), and for i > 0 d W_i with R{d} W_i and d V_i -- 4 products
    at the first layer, 9 at the others (tests/test_layouts.py counts the same in the
    generated code)."""
    G = []
    for i, (n_in, n_out) in enumerate(zip(layers[:-1], layers[1:])):
        r = int(i > 0)
        G += [(batch, n_in, n_out, 2 + r, f"layer {i}: a Wᵀ, a Vᵀ, R{{a}} Wᵀ"),
              (n_out, batch, n_in, 2 + r, f"layer {i}: dᵀ a, R{{d}}ᵀ a, dᵀ R{{a}}")]
        if r:
            G.append((batch, n_out, n_in, 3, f"layer {i}: d W, R{{d}} W, d V"))
    return G


def main(argv=None):
    from benchmarks import handwritten as hw
    from benchmarks import handwritten_rows as hwr
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="all",
                    help="small (the two smallest sizes), all, or comma-separated indices 0-3")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", help="write the Markdown table here")
    ap.add_argument("--no-floor", action="store_true",
                    help="skip the DGEMM floor (the Hv's products timed alone)")
    a = ap.parse_args(argv)
    from benchmarks.bench_models import gemm_floor
    from examples.deep_mlp import backprop
    if a.sizes == "small":
        sizes = SIZES[:2]
    elif a.sizes == "all":
        sizes = SIZES
    else:
        sizes = [SIZES[int(k)] for k in a.sizes.split(",")]
    lines = ["| size | rop, columns (ms) | rop, rows `ys = [X]` (ms) | hand-written R{backprop}, "
             "Numba, columns (ms) | hand-written R{backprop}, Numba, rows (ms) | JAX "
             "jit(jvp(grad)), rows (ms) | rows / columns (rop) | rop / hand-written, columns "
             "| rop / hand-written, rows | rows / JAX | DGEMM floor (ms) | rows / floor |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    print(lines[0] + "\n" + lines[1], flush=True)
    for layers, batch in sizes:
        d = make_data(layers, batch)
        Ws, bs, V, c = d["Ws"], d["bs"], d["V"], d["c"]
        X, T = d["X"], d["T"]
        Xr, Tr = np.ascontiguousarray(X.T), np.ascontiguousarray(T.T)
        tW, tb, tV, tc = tuple(Ws), tuple(bs), tuple(V), tuple(c)   # Numba: lists as tuples
        g_cols, r_cols = backprop.hvp(Ws, bs, X, T, v=(V, c))
        g_rows, r_rows = backprop_rows.hvp(Ws, bs, Xr, Tr, v=(V, c))
        jx, r_jax = jax_rows(d)
        assert rel(r_rows[0] + r_rows[1], [np.asarray(x) for x in r_jax[0] + r_jax[1]]) < 1e-10
        assert rel(r_rows[0] + r_rows[1], list(r_cols[0]) + list(r_cols[1])) < 1e-10
        # the hand-written baselines compute the same gradient and Hv as rop, layout by layout
        for (gh, rh), g, r in ((hw.rbackprop_nb(tW, tb, X, T, tV, tc), g_cols, r_cols),
                               (hwr.rbackprop_rows_nb(tW, tb, Xr, Tr, tV, tc), g_rows, r_rows)):
            assert rel(list(rh[0]) + list(rh[1]), list(r[0]) + list(r[1])) < 1e-10
            assert rel(list(gh[0]) + list(gh[1]), list(g[0]) + list(g[1])) < 1e-10
        fns = {"cols": lambda: backprop.hvp(Ws, bs, X, T, v=(V, c)),
               "rows": lambda: backprop_rows.hvp(Ws, bs, Xr, Tr, v=(V, c)),
               "hw_cols": lambda: hw.rbackprop_nb(tW, tb, X, T, tV, tc),
               "hw_rows": lambda: hwr.rbackprop_rows_nb(tW, tb, Xr, Tr, tV, tc),
               "jax": jx}
        runs, _ = time_interleaved(fns, a.repeats, 0.05)
        m = {k: stats(v)["median"] * 1e3 for k, v in runs.items()}
        floor = "–", "–"
        if not a.no_floor:
            fl = gemm_floor(mlp_gemms(layers, batch), a.repeats, 0.05, 0.0)["floor_s"] * 1e3
            floor = f"{fl:.4g}", f"{m['rows'] / fl:.2f}"
        row = (f"| {size_label(layers, batch)} | {m['cols']:.4g} | {m['rows']:.4g} | "
               f"{m['hw_cols']:.4g} | {m['hw_rows']:.4g} | {m['jax']:.4g} | "
               f"{m['rows'] / m['cols']:.2f} | {m['cols'] / m['hw_cols']:.2f} | "
               f"{m['rows'] / m['hw_rows']:.2f} | {m['rows'] / m['jax']:.2f} | {floor[0]} | "
               f"{floor[1]} |")
        lines.append(row)
        print(row, flush=True)
    with open("/proc/loadavg") as fh:
        load = " ".join(fh.read().split()[:3])
    text = (f"`python benchmarks/bench_layouts.py --sizes {a.sizes} --repeats {a.repeats}`; "
            f"medians of {a.repeats} interleaved rounds; {time.strftime('%Y-%m-%d')}; load "
            f"average at end {load}\n\n" + "\n".join(lines) + "\n")
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
