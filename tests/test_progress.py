"""The compile notice (rop/_progress.py): one line on stderr while a compile runs long, its
time when it ends, nothing for a quick one, nothing at all when silenced."""

import time

import numpy as np

import rop._progress as progress
from rop import rop


def test_a_long_block_is_announced_and_timed(monkeypatch, capsys):
    monkeypatch.setattr(progress, "AFTER", 0.05)
    with progress.notice("f.hvp (Numba)"):
        time.sleep(0.3)
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "rop: compiling f.hvp (Numba) ..."
    assert err[1].startswith("rop: compiled f.hvp (Numba) in ") and err[1].endswith(" s")


def test_a_quick_block_prints_nothing(monkeypatch, capsys):
    monkeypatch.setattr(progress, "AFTER", 5.0)
    with progress.notice("f.hvp"):
        pass
    assert capsys.readouterr().err == ""


def test_silenced(monkeypatch, capsys):
    monkeypatch.setattr(progress, "AFTER", 0.0)
    monkeypatch.setattr(progress, "enabled", False)
    with progress.notice("f.hvp"):
        time.sleep(0.05)
    assert capsys.readouterr().err == ""


def seed_mlp(W, X):
    return (np.tanh(W @ X) @ X.T)


def test_first_compile_of_a_function_is_announced(monkeypatch, capsys):
    """Through the API: generating the R-code and Numba's first call each announce
    themselves (here at once); a second call compiles nothing and prints nothing."""
    monkeypatch.setattr(progress, "AFTER", 0.0)
    f = rop(seed_mlp, wrt=("W",))
    r = np.random.default_rng(0)
    W, X = r.normal(size=(3, 4)), r.normal(size=(4, 5))
    f.hvp(W, X, v=W)
    err = capsys.readouterr().err
    assert "rop: compiling seed_mlp.hvp: generating the R-code ..." in err
    assert "rop: compiling seed_mlp.hvp (Numba) ..." in err
    assert "rop: compiled seed_mlp.hvp (Numba) in " in err
    f.hvp(W, X, v=W)
    assert capsys.readouterr().err == ""
