"""Every example runs as a user runs it (a subprocess), and its own checks pass."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

EXAMPLES = {
    "mlp.py": [],
    "classifier.py": ["8"],
    "deep_mlp.py": ["32"],
    "recurrent_backprop.py": [],
    "boltzmann.py": ["--quick"],
    "course_style.py": [],
    # --quick's sizes with 1 s of training per method instead of 3 (all twelve runs still go
    # through HF, both learning-rate grids, L-BFGS, the tables and the plot)
    "hessian_free.py": ["--quick", "--budget", "1"],
    "newton_toy.py": ["--quick"],
    "spectrum.py": ["--quick"],
    "hessian_free_rnn.py": ["--quick"],
    "kfac_autoencoder.py": ["--quick"],
}
# examples whose --quick run is a test in their own module (run once, not twice)
RUN_ELSEWHERE = {"local_hessian.py": "tests/test_local_hessian.py::test_example_quick",
                 "distributed_hf.py": "tests/test_distributed.py::test_example_quick"}


def test_every_example_is_listed():
    assert {p.name for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_")} \
        == set(EXAMPLES) | set(RUN_ELSEWHERE)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_runs(name, tmp_path):
    args = list(EXAMPLES[name])
    if name == "boltzmann.py":
        args += ["--plot", str(tmp_path / "estimators.png")]
    if name in ("newton_toy.py", "spectrum.py"):
        args += ["--plot", str(tmp_path / "plot.png")]
    if name == "hessian_free.py":
        args += ["--plot", str(tmp_path / "hf.png"), "--results", str(tmp_path / "hf.md")]
    if name == "kfac_autoencoder.py":
        args += ["--plot", str(tmp_path / "kfac.png"), "--results", str(tmp_path / "kfac.md")]
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / name), *args],
                          capture_output=True, text=True, timeout=900, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    if name == "boltzmann.py":
        assert (tmp_path / "estimators.png").stat().st_size > 1000
    if name == "newton_toy.py":  # the seed's two curves: Newton converges, GD barely moves
        assert (tmp_path / "plot.png").stat().st_size > 1000
        rows = {int(r.split()[0]): r.split() for r in proc.stdout.splitlines()
                if r.split() and r.split()[0].isdigit() and len(r.split()) == 3}
        assert sorted(rows) == list(range(40))
        gd0, nt0 = float(rows[0][1]), float(rows[0][2])
        gd39, nt39 = float(rows[39][1]), float(rows[39][2])
        assert gd0 == pytest.approx(nt0, rel=1e-3)  # the same starting point
        assert nt39 < 1e-3 and gd39 > 0.01
        # H = 0.08 I: Newton scales the loss by 0.81 per epoch, GD by 0.992² (by hand, not rop)
        assert nt39 == pytest.approx(nt0 * 0.81 ** 39, rel=2e-3)
        assert gd39 == pytest.approx(gd0 * 0.992 ** 78, rel=2e-3)
        assert "damped Newton" in proc.stdout
    if name == "spectrum.py":
        assert (tmp_path / "plot.png").stat().st_size > 1000
        lines = proc.stdout.splitlines()
        for op in ("H", "G"):  # ARPACK's and Lanczos's top-5 printed alike
            a = next(ln for ln in lines if ln.startswith(f"  {op}: top-5")).split("]")[0]
            b = next(ln for ln in lines if ln.startswith(f"  {op}: the same by Lanczos"))
            assert a.split("[")[1] == b.split("[")[1].rstrip("]"), (a, b)
        table = [ln.split(" | ") for ln in lines if ln.startswith("| ")][1:]  # after the header
        assert [r[0].strip("| ") for r in table] == ["whole", "W1", "b1", "W2", "b2"]
        # the output layer's blocks: H = G, so their printed top eigenvalues and traces agree
        for r in table[3:]:
            assert r[2] == r[6] and r[5] == r[8], r
    if name == "hessian_free_rnn.py":  # both runs lowered the loss (the example asserts it)
        assert "| 0.3 |" in proc.stdout and "| 0 |" in proc.stdout
    if name == "hessian_free.py":  # HF lowered the training error (the example asserts it too)
        assert "Hessian-free lowered the training error" in proc.stdout
        assert (tmp_path / "hf.png").stat().st_size > 1000
        assert "| Hessian-free (Gv) |" in (tmp_path / "hf.md").read_text()
    if name == "kfac_autoencoder.py":  # both optimisers lowered the error; table and plot written
        assert "KFRA lowered the training error" in proc.stdout
        assert "KFLR lowered the training error" in proc.stdout
        assert (tmp_path / "kfac.png").stat().st_size > 1000
        assert "| KFRA |" in (tmp_path / "kfac.md").read_text()
