"""Smoke tests of the benchmark harnesses (benchmarks/bench_hvp.py, benchmarks/bench_hf_share.py).

Not timing tests: they check that each harness runs end to end at its smallest size and writes
its report, and that the hand-written R{backprop} (the baseline rop's speed is judged against)
computes the same gradient and Hv as rop.  Need neither torch nor autograd.
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
