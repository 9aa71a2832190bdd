"""rop/_malloc.py: at ``import rop`` glibc's malloc thresholds are set so that the generated
code's large arrays reuse freed heap instead of fresh pages (each a page fault), unless the
user chose glibc's settings or ``ROP_MALLOC=keep``.  Each case runs in a fresh process
(the thresholds are per process)."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FAULTS = """
import resource, sys
sys.path.insert(0, {root!r})
import rop
from examples.deep_mlp import backprop, init
Ws, bs, X, T, V, c = init([784, 500, 250, 10], 256)   # arrays of 0.5-3 MiB
for _ in range(3):
    backprop.hvp(Ws, bs, X, T, v=(V, c))
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    backprop.hvp(Ws, bs, X, T, v=(V, c))
print(rop._malloc.applied, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 5)
"""


def run(code, **env):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "ROP_MALLOC"))}
    e.update(env)
    out = subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True,
                         timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")


@linux
def test_hv_calls_take_no_page_faults_after_the_first():
    applied, faults = run(FAULTS.format(root=ROOT))
    assert applied == "True"
    assert float(faults) < 16, f"{faults} page faults per Hv"
    # the same with glibc's defaults: the arrays come from fresh pages on every call
    applied, faults = run(FAULTS.format(root=ROOT), ROP_MALLOC="keep")
    assert applied == "False"
    assert float(faults) > 500, f"{faults} page faults per Hv with glibc's defaults"


@linux
@pytest.mark.parametrize("env, why", [({"ROP_MALLOC": "keep"}, "ROP_MALLOC=keep"),
                                      ({"MALLOC_MMAP_THRESHOLD_": "65536"},
                                       "MALLOC_MMAP_THRESHOLD_ set by the user"),
                                      ({"MALLOC_TRIM_THRESHOLD_": "0"},
                                       "MALLOC_TRIM_THRESHOLD_ set by the user")])
def test_a_choice_already_made_is_kept(env, why):
    out = run("import rop; print(rop._malloc.applied); print(rop._malloc.reason)", **env)
    assert out[0] == "False"
    assert " ".join(out[1:]) == why
