"""Smoke tests of the benchmark harnesses (benchmarks/bench_hvp.py, benchmarks/bench_hf_share.py).

Not timing tests: they check that each harness runs end to end at its smallest size and writes
its report, and that the hand-written R{backprop} baselines (columns and rows layouts, what rop's
speed is judged against) compute the same gradient and Hv as rop and as central differences.
Need neither torch nor autograd.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import flat_err

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("layers,batch", [([8, 16, 16, 4], 8), ([64, 64, 64, 10], 32)])
def test_handwritten_rbackprop_equals_rop(layers, batch):
    from benchmarks import handwritten as hw
    from examples.deep_mlp import backprop, init

    Ws, bs, X, T, V, c = init(layers, batch, seed=3)
    (g, h) = backprop.hvp(Ws, bs, X, T, v=(V, c))
    (g2, h2) = hw.rbackprop(Ws, bs, X, T, V, c)
    assert flat_err(list(h2[0]) + list(h2[1]), list(h[0]) + list(h[1])) < 1e-10
    assert flat_err(list(g2[0]) + list(g2[1]), list(g[0]) + list(g[1])) < 1e-12
    g3 = hw.grad(Ws, bs, X, T)
    assert flat_err(list(g3[0]) + list(g3[1]), list(g[0]) + list(g[1])) < 1e-12
    # and Hv really is the Hessian along v: central differences of rop's gradient
    eps = 1e-5
    gp = backprop([W + eps * U for W, U in zip(Ws, V)], [b + eps * e for b, e in zip(bs, c)], X, T)
    gm = backprop([W - eps * U for W, U in zip(Ws, V)], [b - eps * e for b, e in zip(bs, c)], X, T)
    fd = [(p - m) / (2 * eps) for p, m in zip(gp[0] + gp[1], gm[0] + gm[1])]
    assert flat_err(list(h2[0]) + list(h2[1]), fd) < 1e-6


def test_handwritten_rows_central_differences():
    """benchmarks/handwritten_rows.py (the rows-layout baseline of bench_layouts.py) at the
    smallest size: its Hv is the derivative of its gradient along v — central differences at two
    steps, whose error falls as eps^2 (truncation, not a coincidence) — its gradient that of the
    loss, the Numba build computes what the NumPy source does, and the rows network on
    transposed data gives the columns baseline's numbers (which the test above holds to rop)."""
    from benchmarks import handwritten as hw
    from benchmarks import handwritten_rows as hwr
    from examples.deep_mlp import init

    Ws, bs, X, T, V, c = init([8, 16, 16, 4], 8, seed=3)
    Xr, Tr = np.ascontiguousarray(X.T), np.ascontiguousarray(T.T)
    (g, h) = hwr.rbackprop_rows(Ws, bs, Xr, Tr, V, c)
    g, h = list(g[0]) + list(g[1]), list(h[0]) + list(h[1])

    def grad_at(eps):
        gr = hwr.grad_rows([W + eps * U for W, U in zip(Ws, V)],
                           [b + eps * e for b, e in zip(bs, c)], Xr, Tr)
        return list(gr[0]) + list(gr[1])

    def loss_at(eps):
        a = Xr
        for i, (W, U, b, e) in enumerate(zip(Ws, V, bs, c)):
            a = a @ (W + eps * U).T + (b + eps * e)
            a = np.tanh(a) if i < len(Ws) - 1 else a
        return 0.5 * np.sum((a - Tr) ** 2) / Xr.shape[0]

    gv = sum(float(np.sum(x * u)) for x, u in zip(g, list(V) + list(c)))
    errs = []
    for eps in (1e-4, 1e-5):
        fd = [(p - m) / (2 * eps) for p, m in zip(grad_at(eps), grad_at(-eps))]
        errs.append(flat_err(h, fd))
        assert abs((loss_at(eps) - loss_at(-eps)) / (2 * eps) - gv) <= 1e-5 * abs(gv)
    assert errs[0] < 1e-5 and errs[1] < 1e-7, errs
    assert errs[0] / errs[1] > 30, errs   # O(eps^2): a tenth of the step, a hundredth of the error

    (g2, h2) = hwr.rbackprop_rows_nb(tuple(Ws), tuple(bs), Xr, Tr, tuple(V), tuple(c))
    assert flat_err(list(h2[0]) + list(h2[1]), h) < 1e-12
    assert flat_err(list(g2[0]) + list(g2[1]), g) < 1e-12
    g3 = hwr.grad_rows_nb(tuple(Ws), tuple(bs), Xr, Tr)
    assert flat_err(list(g3[0]) + list(g3[1]), g) < 1e-12
    (gc, hc) = hw.rbackprop(Ws, bs, X, T, V, c)
    assert flat_err(h, list(hc[0]) + list(hc[1])) < 1e-12
    assert flat_err(g, list(gc[0]) + list(gc[1])) < 1e-12


def test_harness_smallest_size(tmp_path):
    out = tmp_path / "results"
    env = dict(os.environ)
    p = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "bench_hvp.py"), "--sizes", "small",
         "--repeats", "1", "--methods", "rop,numpy_hand", "--min-run", "0.002",
         "--no-subprocess", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    md = (out / "results.md").read_text()
    assert "[8,16,16,4]×8" in md
    assert "hand-written R{backprop}, NumPy" in md and "rop (`.hvp` wrapper)" in md
    assert "VERIFICATION FAILED" not in p.stdout + p.stderr
    # the harness compared the hand-written Hv with rop's before timing
    line = next(l for l in p.stdout.splitlines() if l.strip().startswith("numpy_hand") and "err" in l)
    err = float(line.split("Hv rel. err vs rop")[1].split(",")[0])
    assert err < 1e-10
    assert np.isfinite(err)


def test_hf_share_smallest_size(tmp_path):
    """benchmarks/bench_hf_share.py at the example's --quick size: it runs, prints the table
    and writes it, and its accounting adds up (shares are fractions of the step time)."""
    out = tmp_path / "hf_share.md"
    p = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "bench_hf_share.py"), "--sizes", "tiny",
         "--steps", "2", "--warmup", "1", "--out", str(out)],
        cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    md = out.read_text()
    assert md in p.stdout
    assert "| size | step time (median) |" in md and "digits (quick) 64-32-16-4-16-32-64" in md
    shares = [float(line.split(": ")[-1].rstrip("%")) for line in md.splitlines()
              if line.startswith("    - ")]
    assert "compiled rop code" in md and "HF CG vector updates" in md
    assert all(s >= -1.0 for s in shares) and abs(sum(shares) - 100.0) < 0.5
