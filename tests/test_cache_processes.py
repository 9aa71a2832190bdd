"""Numba's disk cache shared by processes: one process's compiled function never runs another's
body (rop/_numba_ids.py).

Two processes compile the same shape of program, one with ``np.exp`` and one with
``np.tanh``; rop's runtime makes both of these from one factory, so with Numba's counter
for function identities the two cached libraries name their closures identically, and a
third process that loads both ran tanh for exp (a silently wrong primal and Hv).  Each check
here is against the user's own function run by NumPy and central differences of it."""

import os
import subprocess
import sys
import textwrap

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROGRAM = '''
import numpy as np
from rop import rop


@rop(wrt=("W",))
def net(W, X):
    a = np.{fn}(W @ X)
    return a @ X.T
'''

CHECK = '''
import sys
import numpy as np
import {first}, {second}

rng = np.random.default_rng(0)
W, X, V = rng.normal(size=(3, 4)) * 0.3, rng.normal(size=(4, 5)), rng.normal(size=(3, 4))
for m in ({first}, {second}):
    out, r_out = m.net.hvp(W, X, v=(V,))
    ref = m.net.fn(W, X)                                 # the user's function, run by NumPy
    err = np.max(np.abs(out - ref)) / np.max(np.abs(ref))  # Numba's exp and BLAS: ulps apart
    assert err < 1e-13, (m.__name__, "primal", err)
    for eps in (1e-4, 1e-5):
        fd = (m.net.fn(W + eps * V, X) - m.net.fn(W - eps * V, X)) / (2 * eps)
        err = np.max(np.abs(r_out - fd)) / np.max(np.abs(fd))
        assert err < 1e-6, (m.__name__, "R-output", eps, err)
print("ok")
'''


def _run(code, env, cwd):
    p = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def test_functions_cached_by_two_processes_keep_their_own_bodies_in_a_third(tmp_path):
    for fn in ("sin", "exp", "tanh"):
        (tmp_path / f"net_{fn}.py").write_text(textwrap.dedent(PROGRAM.format(fn=fn)))
    env = dict(os.environ, ROP_CACHE_DIR=str(tmp_path / "cache"),
               NUMBA_CACHE_DIR=str(tmp_path / "cache" / "numba"),
               PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT]))
    # one process compiles what every program shares (the matrix-product kernel) ...
    _run(CHECK.format(first="net_sin", second="net_sin"), env, tmp_path)
    # ... two more each compile one program from there (the same sequence of compilations:
    # with Numba's counter their exp and tanh closures got the same identities) ...
    _run(CHECK.format(first="net_exp", second="net_exp"), env, tmp_path)
    _run(CHECK.format(first="net_tanh", second="net_tanh"), env, tmp_path)
    # ... and a third that loads both from the cache, in either order
    assert _run(CHECK.format(first="net_tanh", second="net_exp"), env, tmp_path).strip() == "ok"
    assert _run(CHECK.format(first="net_exp", second="net_tanh"), env, tmp_path).strip() == "ok"
