"""rop.distributed on a real LocalCluster (2 worker processes, one thread each): sharded
gradient, Hv and Gv against the single-process values, a sharded HF run step for step against
the single-process run, a worker killed mid-CG, bad shards reported by shard and case.

One cluster for the module (starting one takes seconds); tiny networks in python mode, where
Numba's compile time would dominate, and one Numba-mode check.  The reference values are
single-process rop (whose products are tested against JAX elsewhere) and, for one sharded
gradient, central differences of a loss written independently of rop."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rop import rop
from rop.distributed import ShardedData, ShardedLoss, ShardError, connect
from rop.hessian_free import hessian_free

ROOT = Path(__file__).resolve().parent.parent


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@rop(wrt=("W1", "b1", "W2", "b2"), output="y2", mode="python")
def backprop(W1, b1, W2, b2, X, T):
    """Gradient of E = 1/(2B) ||W2 sigmoid(W1 X + b1) + b2 - T||²."""
    y1 = sigmoid(W1 @ X + b1[:, None])
    y2 = W2 @ y1 + b2[:, None]
    d2 = (y2 - T) / X.shape[1]
    d1 = (W2.T @ d2) * y1 * (1.0 - y1)
    return d1 @ X.T, d1.sum(axis=1), d2 @ y1.T, d2.sum(axis=1)


@rop(wrt=("W1", "b1", "W2", "b2"), output="y2")  # the same, compiled by Numba
def backprop_nb(W1, b1, W2, b2, X, T):
    y1 = sigmoid(W1 @ X + b1[:, None])
    y2 = W2 @ y1 + b2[:, None]
    d2 = (y2 - T) / X.shape[1]
    d1 = (W2.T @ d2) * y1 * (1.0 - y1)
    return d1 @ X.T, d1.sum(axis=1), d2 @ y1.T, d2.sum(axis=1)


def loss(W1, b1, W2, b2, X, T):
    y2 = W2 @ sigmoid(W1 @ X + b1[:, None]) + b2[:, None]
    return 0.5 * float(np.sum((y2 - T) ** 2)) / X.shape[1]


def precond(W1, b1, W2, b2, X, T):
    """Mean over cases of the squared per-case gradient (by hand: δᵢ aᵢᵀ squared)."""
    y1 = sigmoid(W1 @ X + b1[:, None])
    d2 = W2 @ y1 + b2[:, None] - T
    d1 = (W2.T @ d2) * y1 * (1.0 - y1)
    B = X.shape[1]
    return ((d1 ** 2) @ (X ** 2).T / B, np.mean(d1 ** 2, axis=1),
            (d2 ** 2) @ (y1 ** 2).T / B, np.mean(d2 ** 2, axis=1))


def problem(seed=0, n=30):
    rng = np.random.default_rng(seed)
    X, T = rng.normal(size=(4, n)), rng.normal(size=(3, n))
    theta = (rng.normal(size=(5, 4)), 0.3 * rng.normal(size=5), rng.normal(size=(3, 5)),
             0.3 * rng.normal(size=3))
    v = tuple(rng.normal(size=a.shape) for a in theta)
    return theta, X, T, v


def rel(a, b):
    a = np.concatenate([np.ravel(x) for x in a])
    b = np.concatenate([np.ravel(x) for x in b])
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.fixture(scope="module")
def client():
    c = connect(n_workers=2, threads_per_worker=1, processes=True, quiet=True)
    yield c
    from rop.distributed import _close
    _close(c)


SHARDINGS = [1, 2, [7, 13, 10], [1, 2, 27], 5]


@pytest.mark.parametrize("shards", SHARDINGS, ids=["1", "2", "7-13-10", "1-2-27", "5"])
def test_sharded_products_equal_single_process(client, shards):
    theta, X, T, v = problem()
    data = ShardedData.split(client, (X, T), shards, axis=1, names=("X", "T"), progress=False)
    assert sum(data.sizes) == 30 and np.isclose(data.weights.sum(), 1.0)
    L = ShardedLoss(backprop, data, loss=loss, precond=precond)
    g_ref, Hv_ref = backprop.hvp(*theta, X, T, v=v)
    _, Gv_ref = backprop.gvp(*theta, X, T, v=v)
    assert rel(L.gradient(theta), g_ref) <= 1e-12
    assert rel(L.hvp(theta, v), Hv_ref) <= 1e-12
    assert rel(L.gvp(theta, v), Gv_ref) <= 1e-12
    assert L.loss(theta) == pytest.approx(loss(*theta, X, T), rel=1e-12)
    assert rel(L.precond_diag(theta), precond(*theta, X, T)) <= 1e-12
    # the operator on the driver: θ was broadcast once for all of the above
    G = L.operator(theta)
    assert rel([G @ G.layout.flatten(v)], [G.layout.flatten(Gv_ref)]) <= 1e-12
    assert L.stats["theta_sent"] == 1
    assert L.stats["v_sent"] == L.stats["products"] == 3


def test_sharded_gradient_against_central_differences(client):
    theta, X, T, _ = problem(seed=3)
    L = ShardedLoss(backprop, ShardedData.split(client, (X, T), [11, 19], axis=1,
                                                progress=False), loss=loss)
    g = L.gradient(theta)
    h = 1e-6
    for k, (a, ga) in enumerate(zip(theta, g)):
        for idx in [(0,) * a.ndim, tuple(s - 1 for s in a.shape)]:
            plus = [x.copy() for x in theta]
            minus = [x.copy() for x in theta]
            plus[k][idx] += h
            minus[k][idx] -= h
            fd = (loss(*plus, X, T) - loss(*minus, X, T)) / (2 * h)
            assert ga[idx] == pytest.approx(fd, rel=1e-6, abs=1e-9)


def single_process_hf(theta, X, T, steps, **opts):
    def curvature_at(p, b):
        lin = backprop.gvp.linearize(*p, X, T)
        return lambda v: lin(v)
    return hessian_free(objective=lambda p, b: loss(*p, X, T),
                        gradient=lambda p, b: (loss(*p, X, T), backprop(*p, X, T)),
                        curvature=None, curvature_at=curvature_at,
                        precond_diag=lambda p, b: precond(*p, X, T),
                        params=theta, steps=steps, progress=False, **opts)


HF_OPTS = dict(damping=1.0, weight_decay=1e-3, max_cg_iters=12)


def test_hf_follows_single_process(client):
    theta, X, T, _ = problem(seed=1, n=40)
    ref = single_process_hf(theta, X, T, 4, **HF_OPTS)
    L = ShardedLoss(backprop, ShardedData.split(client, (X, T), [9, 14, 17], axis=1,
                                                progress=False), loss=loss, precond=precond)
    got = L.hessian_free(theta, steps=4, progress=False, **HF_OPTS)
    for a, b in zip(got.history, ref.history):
        assert a.loss == pytest.approx(b.loss, rel=1e-10)
        assert (a.cg_iters, a.accepted, a.backtrack_iter) == (b.cg_iters, b.accepted, b.backtrack_iter)
        assert a.damping == pytest.approx(b.damping, rel=1e-10)
    assert got.history["loss"][-1] < got.history.initial_loss
    assert rel(got.params, ref.params) <= 1e-9
    # v once per CG product; θ once per point (steps' points and line-search trials), never
    # per product
    assert L.stats["v_sent"] == L.stats["products"] == sum(got.history["curvature_products"])
    assert L.stats["theta_sent"] < L.stats["v_sent"]


def test_killed_worker_does_not_change_the_result(client):
    theta, X, T, _ = problem(seed=2, n=40)
    data = ShardedData.split(client, (X, T), 4, axis=1, progress=False)
    clean = ShardedLoss(backprop, data, loss=loss).hessian_free(theta, steps=3, progress=False,
                                                               **HF_OPTS)
    faulty = ShardedLoss(backprop, data, loss=loss)
    killed = []

    def kill_one(L):
        if L.stats["v_sent"] == 5 and not killed:  # mid-way through the first CG run
            pids = client.run(os.getpid)
            # Dask's memory manager drops extra replicas (its ReduceReplicas policy, every 2 s
            # on its own); then the worker holding the functions sent to the cluster is
            # killed: without a lineage (a scattered broadcast) they were lost with it
            client.amm.run_once()
            holders = client.who_has(L._spec_future)[L._spec_future.key]
            victim = sorted(holders)[0] if holders else sorted(pids)[0]
            os.kill(pids[victim], signal.SIGKILL)
            killed.append(victim)
    faulty._after_submit = kill_one
    got = faulty.hessian_free(theta, steps=3, progress=False, **HF_OPTS)
    assert killed
    assert got.history["loss"].tolist() == clean.history["loss"].tolist()
    assert rel(got.params, clean.params) == 0.0
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it, for the tests after


def test_bad_shards_are_reported_by_shard_and_case(client):
    theta, X, T, _ = problem()
    Xb = X.copy()
    Xb[2, 17] = np.nan
    with pytest.raises(ShardError, match=r"shard 1: X column 7 \(case 17 of the dataset\) "
                                         r"holds nan at X\[2, 7\]") as e:
        ShardedData.split(client, (Xb, T), [10, 10, 10], axis=1, names=("X", "T"),
                          progress=False)
    assert "Traceback" not in str(e.value)
    # a loader on the workers returning a wrongly shaped shard
    with pytest.raises(ShardError, match=r"shard 1: T has shape \(2, 5\), shard 0's has "
                                         r"\(3, 5\)"):
        ShardedData.load(client, lambda k: (np.ones((4, 5)), np.ones((3 - k, 5))), [(0,), (1,)],
                         axis=1, names=("X", "T"), progress=False)
    with pytest.raises(ShardError, match=r"shard 0: T has 4 cases \(axis 1, shape \(3, 4\)\) "
                                         r"but X has 5"):
        ShardedData.load(client, lambda: (np.ones((4, 5)), np.ones((3, 4))), [()], axis=1,
                         names=("X", "T"), progress=False)
    with pytest.raises(ShardError, match=r"shard 0: making it failed: OSError: no such file"):
        ShardedData.load(client, _failing_loader, [("a.npy",)], axis=1, progress=False)
    # data that fit each other but not the parameters: named by shard, with rop's message
    data = ShardedData.split(client, (np.ones((6, 10)), np.ones((3, 10))), 2, axis=1,
                             progress=False)
    with pytest.raises(ShardError, match=r"the gradient: shard 0: linearising gvp at θ "
                                         r"failed: .*shard 1:"):
        ShardedLoss(backprop, data, loss=loss).gradient(theta)


def _failing_loader(name):
    raise OSError(f"no such file {name}")


def test_numba_path(client):
    """The compiled code on the workers: compiled once on the driver, loaded from rop's and
    Numba's disk caches by each worker process."""
    theta, X, T, v = problem(seed=4)
    _, Gv_ref = backprop_nb.gvp(*theta, X, T, v=v)
    backprop_nb.gvp.linearize(*theta, X, T)  # fills the cache the workers read
    g_ref = backprop_nb(*theta, X, T)
    L = ShardedLoss(backprop_nb, ShardedData.split(client, (X, T), [12, 18], axis=1,
                                                   progress=False), loss=loss)
    assert rel(L.gradient(theta), g_ref) <= 1e-12
    assert rel(L.gvp(theta, v), Gv_ref) <= 1e-12
    modes = client.run(lambda: sorted({f.hvp.mode for f in
                                       __import__("rop.distributed").distributed._REGISTRY.values()}))
    assert any("numba" in m for m in modes.values())


def test_example_quick(tmp_path):
    """examples/distributed_hf.py --quick: sharded HF on its own LocalCluster equals one
    process (the example asserts it)."""
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "distributed_hf.py"), "--quick"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "the same losses as one process" in proc.stdout  # (its time is not a test's business)
