"""Smoke test of benchmarks/bench_models.py (the classifier, RNN and LSTM written as courses
write them): its verification step, not its timing, at the small sizes, for rop's ``.hvp``, the
hand-written R{backprop} (benchmarks/handwritten_models.py) and central differences only.

Fast (no Numba compile): as ``bench_models.py --verify-only --python`` does, rop's generated
code runs with ``mode="python"`` and the hand-written functions as ``.py_func`` (their small
helpers are still Numba functions); the benchmark itself runs the same code compiled.

Needs neither JAX nor torch nor autograd: the reference is rop's Hv after the harness has
checked it against central differences of rop's gradient (and g·v against central differences
of the loss) at two steps; the hand-written Hv and gradient must then agree with it to 1e-8 and
the harness's own finite differences to 1e-5.  The test re-checks the hand-written Hv against
central differences itself, so a wrong baseline cannot pass by agreeing with a wrong rop.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def _fd_hv(model, d, eps_rel):
    """Central differences of rop's compiled gradient along v."""
    from benchmarks import bench_models as B
    f = B.rop_fn(model)
    primal = f.hvp.primal
    p, data, v = d["params"], d["data"], d["v"]
    eps = eps_rel * max(1.0, B.norm(p)) / B.norm(v)
    gp = primal(*B.tup(B.axpy(p, v, eps)), *B.tup(data))
    gm = primal(*B.tup(B.axpy(p, v, -eps)), *B.tup(data))
    return (B.flat(gp[1:]) - B.flat(gm[1:])) / (2 * eps)


@pytest.mark.parametrize("model", ["classifier", "rnn", "lstm"])
def test_verification_small(model, monkeypatch):
    from benchmarks import bench_models as B
    from benchmarks import handwritten_models as hw

    monkeypatch.setattr(B, "PYTHON", True)
    r_hand = hw.RBACKPROP[model].py_func
    log = []
    fns, errs, d = B.verify(model, "small", ["rop", "numba_hand", "fd"], log.append,
                            reference="fd")
    assert errs["reference"] == "fd"
    assert errs["hv_vs_fd"] < 1e-6 and errs["gv_vs_fd"] < 1e-6
    assert errs["rop"]["hv_err"] < 1e-8 and errs["rop"]["grad_err"] < 1e-8
    assert errs["numba_hand"]["hv_err"] < 1e-8 and errs["numba_hand"]["grad_err"] < 1e-8
    assert errs["fd"]["hv_err"] < 1e-5
    # what would be timed: a product and a gradient per method (fd's gradient is rop's)
    assert set(fns) == {("rop", "hv"), ("rop", "grad"), ("numba_hand", "hv"),
                        ("numba_hand", "grad"), ("fd", "hv")}
    for f in fns.values():
        f()
    # the baseline against central differences directly, at two steps
    _, (_, *Hv) = r_hand(*B.tup(d["params"]), *B.tup(d["data"]), *B.tup(d["v"]))
    h = B.flat(Hv)
    err = min(B.rel_err(h, _fd_hv(model, d, s)) for s in (1e-4, 1e-5))
    assert err < 1e-6, err
    assert np.all(np.isfinite(h)) and np.max(np.abs(h)) > 0
    # R{loss} = g·v, for the hand-written code and rop
    (loss, *g), (Rloss, *_) = r_hand(*B.tup(d["params"]), *B.tup(d["data"]), *B.tup(d["v"]))
    gv = float(B.flat(g) @ B.flat(d["v"]))
    assert abs(Rloss - gv) <= 1e-10 * max(1.0, abs(gv))
    prim, R = B.rop_fn(model).hvp(*d["params"], *d["data"], v=tuple(d["v"]))
    assert abs(prim[0] - loss) <= 1e-12 * max(1.0, abs(loss))
    assert abs(R[0] - gv) <= 1e-10 * max(1.0, abs(gv))


def test_floor_counts():
    """The documented product counts of the DGEMM floor (4 and 9 products per layer, ...)."""
    from benchmarks import bench_models as B
    c = B.hv_gemms("classifier", "large")
    assert sum(n for *_, n, _ in c) == 4 + 9
    T = 50
    r = B.hv_gemms("rnn", "large")
    assert sum(n for *_, n, _ in r) == 2 * T + 2 * T + 2 * T + 4 * (T - 1) + 3 * T - 1 + 9 * T
    T = 20
    s = B.hv_gemms("lstm", "large")
    assert sum(n for *_, n, _ in s) == 2 * T + 3 * T - 1 + 2 * T + 3 * T - 1 + 3 * (T - 1) + 9


def test_cli_verify_only_without_jax():
    """The command line, checking against central differences (no JAX), verification only."""
    p = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "bench_models.py"), "--verify-only",
         "--models", "classifier", "--sizes", "small", "--methods", "rop,numba_hand,fd",
         "--reference", "fd", "--python"],
        cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "VERIFICATION FAILED" not in p.stdout + p.stderr
    assert "verified" in p.stdout and "numba_hand Hv vs reference" in p.stdout
