"""The Hessian-free autoencoder of examples/hessian_free.py trained over data shards on a Dask
cluster, with the same result as on one process.

The network, data, initialisation, loss, preconditioner and curvature mini-batches are those
of examples/hessian_free.py (imported from it).  The training set is cut into shards of unequal
size that live on the workers of a ``LocalCluster`` (2 worker processes by default, or
``--address scheduler:8786`` for a real cluster); so is each curvature mini-batch.  Every
gradient, loss, preconditioner diagonal and Gauss-Newton product is computed shard by shard on
the workers, in the Numba code rop generated, and summed on the driver with weights n_s/N;
damping and weight decay are added once on the driver.  The same HF run on one process (the
example's own ``hf_functions``) is the reference: the losses agree step for step.

Run:  python examples/distributed_hf.py [--quick] [--steps N] [--workers K] [--address ADDR]
"""

import argparse
import os
import sys
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the workers import examples.hessian_free's helpers too
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from examples.hessian_free import (WEIGHT_DECAY, backprop, cross_entropy, digits_data,  # noqa: E402
                                   grad_sq_mean, hf_functions, sparse_init)
from rop.distributed import ShardedData, ShardedLoss, connect, _close  # noqa: E402
from rop.hessian_free import hessian_free  # noqa: E402
from rop.operators import Layout  # noqa: E402


def loss(Ws, bs, X):
    """A shard's mean cross-entropy (the example's loss; ``Ws``, ``bs`` arrive as lists)."""
    return cross_entropy(Ws, bs, X)


def precond(Ws, bs, X):
    """A shard's mean squared per-case gradient: the preconditioner's diagonal."""
    return grad_sq_mean(Ws, bs, X)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a small network, 4 steps (CI)")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--address", default=None, help="a scheduler address (a real cluster)")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(0)
    n_train = 600 if args.quick else 1500
    X = np.ascontiguousarray(digits_data(rng, n_train)[0])
    layers = [64, 32, 8, 32, 64] if args.quick else [64, 128, 64, 32, 8, 32, 64, 128, 64]
    Ws, bs = sparse_init(layers, rng)
    steps = args.steps or (4 if args.quick else 15)
    curvature_batch = 200 if args.quick else 500
    opts = dict(weight_decay=WEIGHT_DECAY, steps=steps, max_cg_iters=50 if args.quick else 250)

    n = X.shape[1]
    sizes = [n // 6, n // 3, n - n // 6 - n // 3]          # unequal shards, on purpose
    backprop.gvp(Ws, bs, X[:, :2].copy(), v=(Ws, bs))     # compile once, on the driver
    full = hf_functions(X, curvature_batch)                # the example's, on one process
    minibatches = full["curvature_batches"]

    # --- one process, the same shards: single-process rop per shard, summed with n_s/N
    t = time.perf_counter()
    ref = hessian_free(params=copy(Ws, bs), **in_process(Ws, bs, X, sizes, minibatches), **opts)
    print(f"one process, the same shards: {steps} HF steps in {time.perf_counter() - t:.1f} s")
    # --- one process, whole batches (examples/hessian_free.py), and with the cases reordered
    whole = hessian_free(params=copy(Ws, bs), batch=X, progress=False, **full, **opts)
    perm = np.random.default_rng(1).permutation(n)
    Xp = np.ascontiguousarray(X[:, perm])
    shuffled = hf_functions(Xp, curvature_batch)
    shuffled["curvature_batches"] = [np.ascontiguousarray(mb[:, ::-1]) for mb in minibatches]
    reordered = hessian_free(params=copy(Ws, bs), batch=Xp, progress=False, **shuffled, **opts)

    # --- over shards on the cluster
    client = connect(args.address, n_workers=args.workers)
    try:
        data = ShardedData.split(client, (X,), sizes, axis=1, names=("X",))
        curvature = [ShardedData.split(client, (mb,), 2, axis=1, names=("X",), progress=False)
                     for mb in minibatches]
        problem = ShardedLoss(backprop, data, loss=loss, precond=precond)
        t = time.perf_counter()
        got = problem.hessian_free(copy(Ws, bs), curvature_data=curvature, progress=True, **opts)
        t_sharded = time.perf_counter() - t
        print(f"over {len(data)} shards {data.sizes} (curvature: {len(curvature)} mini-batches"
              f" of 2 shards) on {len(client.scheduler_info()['workers'])} workers: {steps} HF "
              f"steps in {t_sharded:.1f} s")
        print(f"network: θ sent {problem.stats['theta_sent']} times "
              f"({problem.stats['theta_bytes'] / 1e6:.2f} MB), v sent "
              f"{problem.stats['v_sent']} times ({problem.stats['v_bytes'] / 1e6:.2f} MB) for "
              f"{problem.stats['products']} Gv products")
    finally:
        _close(client) if args.address is None else client.close()

    print("\n| step | one process, same shards | sharded on the cluster | relative difference "
          "| one process, whole batches | the same, cases reordered |")
    print("|---|---|---|---|---|---|")
    worst = drift = order = 0.0
    for a, b, c, d in zip(ref.history, got.history, whole.history, reordered.history):
        worst = max(worst, abs(a.loss - b.loss) / abs(a.loss))
        drift = max(drift, abs(c.loss - b.loss) / abs(c.loss))
        order = max(order, abs(c.loss - d.loss) / abs(c.loss))
        print(f"| {a.step} | {a.loss:.12g} | {b.loss:.12g} | {abs(a.loss - b.loss) / abs(a.loss):.1e} "
              f"| {c.loss:.12g} | {d.loss:.12g} |")
    assert len(got.history) == len(ref.history) == steps
    assert worst <= 1e-10, f"the sharded run drifted from one process: {worst:.2e}"
    assert got.history["loss"][-1] < got.history.initial_loss
    print(f"\nthe same losses as one process (largest relative difference {worst:.1e}); "
          f"training loss {got.history.initial_loss:.4g} -> {got.history['loss'][-1]:.4g}")
    print(f"against the whole-batch run: {drift:.1e}, as large as reordering the cases on one "
          f"process changes it ({order:.1e}): CG amplifies the rounding of a different "
          "summation order, which sharding is")
    assert drift <= max(100 * order, 1e-10), (drift, order)


def copy(Ws, bs):
    return [W.copy() for W in Ws], [b.copy() for b in bs]


def in_process(Ws, bs, X, sizes, minibatches):
    """HF's functions on one process over the same shards as the cluster's: single-process rop
    (``backprop.gvp.linearize`` per shard; its outputs are the gradient) and the example's
    loss and preconditioner per shard, summed with weights n_s/N in shard order."""
    layout = Layout((Ws, bs), ("Ws", "bs"))

    def cut(A, parts):
        edges = np.cumsum([0] + parts)
        return [np.ascontiguousarray(A[:, a:b]) for a, b in zip(edges[:-1], edges[1:])], \
            np.array(parts, dtype=float) / sum(parts)
    data = cut(X, sizes)
    curv = [cut(mb, [mb.shape[1] // 2, mb.shape[1] - mb.shape[1] // 2]) for mb in minibatches]

    def wsum(parts, w):
        out = w[0] * np.asarray(parts[0], dtype=float)
        for wi, p in zip(w[1:], parts[1:]):
            out += wi * np.asarray(p, dtype=float)
        return out

    def objective(p, b):
        shards, w = b or data
        return float(wsum(np.array([[loss(p[0], p[1], s)] for s in shards]), w)[0])

    def gradient(p, b):
        shards, w = b or data
        g = wsum([layout.flatten(backprop.gvp.linearize(p[0], p[1], s).outputs) for s in shards], w)
        return objective(p, b), layout.unflatten(g)

    def curvature_at(p, b):
        shards, w = b
        lins = [backprop.gvp.linearize(p[0], p[1], s) for s in shards]
        return lambda v: layout.unflatten(wsum([layout.flatten(lin(v)) for lin in lins], w))

    def precond_diag(p, b):
        shards, w = b or data
        return layout.unflatten(wsum([layout.flatten(precond(p[0], p[1], s)) for s in shards], w))
    return dict(objective=objective, gradient=gradient, curvature=None,
                curvature_at=curvature_at, precond_diag=precond_diag, curvature_batches=curv,
                progress=False)

if __name__ == "__main__":
    main()
