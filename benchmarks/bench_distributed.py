#!/usr/bin/env python
"""Distributed Hv (rop.distributed on a Dask LocalCluster) against single-process Hv, and a
cost model fitted from the figures that predicts the time per Hessian-free step of Martens'
MNIST autoencoder on 8, 64 and 512 workers.

    python benchmarks/bench_distributed.py [--repeats N] [--out benchmarks/results/distributed.md]

Network and sizes: those of benchmarks/bench_hvp.py (the tanh MLP of examples/deep_mlp.py,
SIZES).  Measured per size, as CG uses them (linearised once, then one product per direction):

* single process: ``backprop.hvp.operator(...)`` matvec (the R-statements alone);
* distributed, 1 worker / 1 shard and 2 workers / 2 shards: ``ShardedLoss.operator(θ)`` matvec
  (v broadcast, one task per shard, the shards' flat products gathered and summed);
* the round trip alone: the same broadcast, tasks and gather around a task that only returns
  a zero vector of the parameters' size (per-call overhead and bandwidth, no compute), also
  with 8 and 32 shards on 2 workers (the scheduler's cost per task).

A harness, not a test: nothing here asserts a time.  2 shared cores: figures are noisy.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from benchmarks.bench_hvp import SIZES, make_data  # noqa: E402


def _zero_task(lin_or_shard, v, n):
    return np.zeros(n)


def median_time(fn, repeats, min_run=0.02):
    ts = []
    for _ in range(repeats):
        k, t0 = 0, time.perf_counter()
        while True:
            fn()
            k += 1
            if time.perf_counter() - t0 >= min_run:
                break
        ts.append((time.perf_counter() - t0) / k)
    return float(np.median(ts))


def n_params(layers):
    return sum(m * n + m for n, m in zip(layers[:-1], layers[1:]))


def round_trip(problem, data, n):
    """v broadcast, one no-op task per shard, n-vectors gathered and summed: the distributed
    product without its compute."""
    client = problem.client
    v = np.zeros(n)

    def once():
        vf = client.scatter(v, broadcast=True, hash=False)
        futs = [client.submit(_zero_task, s, vf, n, pure=False) for s in data.futures]
        parts = client.gather(futs)
        out = parts[0].copy()
        for p in parts[1:]:
            out += p
        return out
    return once


def measure(repeats):
    from examples.deep_mlp import backprop
    from rop.distributed import ShardedData, ShardedLoss, _close, connect
    rows, trips = [], []
    singles = {}
    for layers, batch in SIZES:
        d = make_data(layers, batch)
        H = backprop.hvp.operator(d["Ws"], d["bs"], d["X"], d["T"])
        x = np.random.default_rng(0).normal(size=H.shape[0])
        H @ x
        singles[(tuple(layers), batch)] = median_time(lambda: H @ x, repeats)
    for workers in (1, 2):
        client = connect(n_workers=workers, quiet=True)
        try:
            for layers, batch in SIZES:
                d = make_data(layers, batch)
                n = n_params(layers)
                theta = (d["Ws"], d["bs"])
                data = ShardedData.split(client, (d["X"], d["T"]), workers, axis=1,
                                         progress=False)
                L = ShardedLoss(backprop, data, curvature="hvp")
                Hd = L.operator(theta)
                x = np.random.default_rng(0).normal(size=n)
                ref = backprop.hvp.operator(d["Ws"], d["bs"], d["X"], d["T"]) @ x
                got = Hd @ x  # compiles / loads on the workers; checked once
                assert np.max(np.abs(got - ref)) <= 1e-12 * np.max(np.abs(ref)), "wrong Hv"
                t_dist = median_time(lambda: Hd @ x, repeats)
                t_trip = median_time(round_trip(L, data, n), repeats)
                rows.append(dict(layers=layers, batch=batch, n=n, workers=workers,
                                 single=singles[(tuple(layers), batch)], dist=t_dist,
                                 trip=t_trip))
                print(rows[-1], flush=True)
                L.release()
            if workers == 2:  # the scheduler's cost per task: more shards, no compute
                layers, batch = SIZES[0]
                d = make_data(layers, batch * 4)
                n = n_params(layers)
                for shards in (2, 8, 32):
                    data = ShardedData.split(client, (d["X"], d["T"]), shards, axis=1,
                                             progress=False)
                    L = ShardedLoss(backprop, data, curvature="hvp")
                    trips.append(dict(shards=shards, n=n,
                                      trip=median_time(round_trip(L, data, n), repeats)))
                    print(trips[-1], flush=True)
        finally:
            _close(client)
    return rows, trips


# ------------------------------------------------------------------------------ the cost model
def fit(rows, trips):
    """t_product(P shards, n params, B cases) = a0 + a1·P + b·(2·P·8n) + c·n·B/P:
    a0 the fixed latency of one broadcast-submit-gather, a1 the scheduler's cost per task,
    b seconds per byte through the driver (v to each of P workers, P products back),
    c the compute per parameter and case (from the single-process products)."""
    c = float(np.median([r["single"] / (r["n"] * r["batch"]) for r in rows
                         if r["n"] * r["batch"] >= 1e6]))
    # the round trips: no compute
    A, y = [], []
    for r in rows:
        A.append([1.0, r["workers"], 2 * r["workers"] * 8 * r["n"]])
        y.append(r["trip"])
    for t in trips:
        A.append([1.0, t["shards"], 2 * t["shards"] * 8 * t["n"]])
        y.append(t["trip"])
    coef, *_ = np.linalg.lstsq(np.array(A), np.array(y), rcond=None)
    a0, a1, b = (max(float(v), 0.0) for v in coef)
    return dict(a0=a0, a1=a1, b=b, c=c)


MNIST = dict(layers=[784, 1000, 500, 250, 30, 250, 500, 1000, 784], N=60000, B_curv=7500,
             cg_iters=100, loss_evals=4)


def predict(model, P, bandwidth=None, tree=False):
    """Seconds per HF step on P workers (one shard each) for Martens' MNIST setup."""
    n = n_params(MNIST["layers"])
    b = model["b"] if bandwidth is None else 1.0 / bandwidth
    hops = 2 * math.ceil(math.log2(max(P, 2))) if tree else 2 * P   # v out, products back
    latency = model["a0"] + model["a1"] * P

    def call(cases, compute_ratio, vectors=1.0):
        return latency + b * vectors * hops * 8 * n / 2 + model["c"] * compute_ratio * n * cases / P
    product = call(MNIST["B_curv"], 1.0)
    # per step: a linearisation (≈ 1 gradient) on the curvature batch, a gradient on all N,
    # the preconditioner on all N (≈ 1 gradient), a few loss evaluations (≈ ⅓ gradient, θ out
    # and a number back); a gradient costs ≈ ½ an Hv per case (c covers the R-statements only,
    # so this is a rough ratio)
    lin = call(MNIST["B_curv"], 0.5, 0.5)
    grad = call(MNIST["N"], 0.5)
    pre = call(MNIST["N"], 0.5)
    losses = MNIST["loss_evals"] * call(MNIST["N"], 0.2, 0.5)
    total = MNIST["cg_iters"] * product + lin + grad + pre + losses
    return dict(P=P, product=product, step=total,
                compute=MNIST["cg_iters"] * model["c"] * n * MNIST["B_curv"] / P)


def report(rows, trips, model, out):
    lines = ["# Distributed Hv (rop.distributed on a Dask LocalCluster)", "",
             "`python benchmarks/bench_distributed.py` — the tanh MLP of bench_hvp.py at its four "
             "sizes; time per Hv as CG uses it (linearised once per point, then per direction); "
             "one shard per worker, each worker a process with one thread; 2 shared cores "
             "(with 2 workers the driver, scheduler and both workers share them).", "",
             "| network, batch | params | workers | single-process Hv | distributed Hv | "
             "round trip alone | overhead (distributed − single/workers) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {'-'.join(map(str, r['layers']))}, {r['batch']} | {r['n']:,} | "
                     f"{r['workers']} | {r['single'] * 1e3:.3f} ms | {r['dist'] * 1e3:.2f} ms | "
                     f"{r['trip'] * 1e3:.2f} ms | {(r['dist'] - r['single'] / r['workers']) * 1e3:.2f} ms |")
    lines += ["", "Round trip alone with more shards on 2 workers (smallest network):", "",
              "| shards | round trip |", "|---|---|"]
    for t in trips:
        lines.append(f"| {t['shards']} | {t['trip'] * 1e3:.2f} ms |")
    lines += ["", "Fitted cost model, t = a0 + a1·P + b·(2·P·8n) + c·n·B/P:", "",
              f"- a0 (fixed latency per product) = {model['a0'] * 1e3:.2f} ms",
              f"- a1 (scheduler, per shard task) = {model['a1'] * 1e3:.3f} ms",
              f"- b (driver link, localhost) = {model['b'] * 1e9:.3f} s/GB "
              f"({1 / model['b'] / 1e9 if model['b'] else float('inf'):.2f} GB/s)",
              f"- c (compute, per parameter·case) = {model['c'] * 1e9:.3f} ns", "",
              f"Predicted time per HF step, Martens' MNIST autoencoder "
              f"({'-'.join(map(str, MNIST['layers']))}, {n_params(MNIST['layers']):,} parameters, "
              f"N = {MNIST['N']:,}, Gv batch {MNIST['B_curv']:,}, {MNIST['cg_iters']} CG "
              "iterations per step), one shard per worker; the driver's link at 1.25 GB/s "
              "(10 Gb/s Ethernet):", "",
              "| workers | Gv product, star (as implemented) | HF step, star | HF step, tree "
              "broadcast/reduce | compute alone |", "|---|---|---|---|---|"]
    for P in (1, 8, 64, 512):
        s = predict(model, P, bandwidth=1.25e9)
        t = predict(model, P, bandwidth=1.25e9, tree=True)
        lines.append(f"| {P} | {s['product']:.3f} s | {s['step']:.1f} s | {t['step']:.1f} s | "
                     f"{s['compute']:.2f} s |")
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "w") as fh:
            fh.write(text)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "distributed.md"))
    args = ap.parse_args(argv)
    rows, trips = measure(args.repeats)
    model = fit(rows, trips)
    report(rows, trips, model, args.out)


if __name__ == "__main__":
    main()
