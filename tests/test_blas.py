"""rop/_blas.py: the OpenBLAS kernel choice made at ``import rop``.

Run in fresh processes (the choice must precede any BLAS load).  The properties: a user's
OPENBLAS_CORETYPE is never overridden, ROP_BLAS=keep turns the choice off and ROP_BLAS=<core>
forces one, AVX-512 kernels are asked for only on a CPU that reports every extension they use,
and a matrix product compiled by Numba under the chosen kernels is right.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROBE = r"""
import json, os
import rop
import numpy as np, numba
import llvmlite.binding as llb
f = llb.get_host_cpu_features()

@numba.njit
def mm(a, b):
    return a @ b

rng = np.random.default_rng(0)
a, b = rng.normal(size=(67, 45)), rng.normal(size=(45, 33))
ref = np.einsum("ik,kj->ij", a, b, optimize=False)
err = float(np.max(np.abs(mm(a, b) - ref)) / np.max(np.abs(ref)))
print(json.dumps(dict(chosen=rop._blas.chosen, reason=rop._blas.reason,
                      env=os.environ.get("OPENBLAS_CORETYPE"), err=err,
                      avx512=all(f.get(x, False) for x in
                                 ("avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl")))))
"""


def probe(**env_changes):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "ROP_BLAS")}
    env.update({k: v for k, v in env_changes.items() if v is not None})
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    p = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                       timeout=300, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_users_setting_is_never_overridden():
    r = probe(OPENBLAS_CORETYPE="Haswell")
    assert r["chosen"] is None and r["env"] == "Haswell"
    assert "set by the user" in r["reason"]
    assert r["err"] < 1e-13


def test_keep_turns_the_choice_off():
    r = probe(ROP_BLAS="keep")
    assert r["chosen"] is None and r["env"] is None
    assert r["err"] < 1e-13


@pytest.mark.parametrize("core", ["Haswell", "Prescott"])
def test_an_explicit_core_is_passed_to_openblas(core):
    r = probe(ROP_BLAS=core)
    assert r["chosen"] == core and r["env"] == core
    assert r["err"] < 1e-13


def test_automatic_choice_is_safe_and_right():
    r = probe()
    if r["chosen"] is not None:  # AVX-512 kernels only where the CPU has what they use
        assert r["chosen"] == "SkylakeX" and r["avx512"], r
    assert r["err"] < 1e-13, r
