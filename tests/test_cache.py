"""The generated-code cache (rop/backend/loader.py) — issue 7.

The cache holds generated modules ``<fn>_hvp_<sha(version + text)>.py`` and an index
``index/<key>`` -> (path, sha256 of the file), where the key hashes the compiler (version and
source), the lowered IR (helpers included), ``wrt``, the argument ranks and the relaxation
option.  Tested here:

* keyed by source, compiler and options: the same function twice -> the same file and an
  index hit; changed source -> another file; another compiler version or compiler source ->
  another index entry (and, for a version, another file); ``relaxation="off"`` vs ``"auto"``
  -> different code; ``mode="python"`` and ``mode="numba"`` share the generated text (the
  mode only decides how it is loaded) and give the same results;
* a corrupted cache is detected and rebuilt, never used: the generated file truncated, emptied,
  or *edited into different valid Python that computes something else*, the index entry
  garbled, pointing at a missing file, or carrying a wrong digest.  Each time a fresh process
  (a subprocess: in-process, modules are already imported) gets the right result and the cache
  is intact afterwards;
* two (and three) processes compiling the same functions at once, with the same fresh
  ``ROP_CACHE_DIR`` / ``NUMBA_CACHE_DIR``, all succeed with correct results and leave a valid
  cache that a later process hits.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent

PROGRAM = textwrap.dedent('''
    import numpy as np


    def loss_grad(W, x, t):
        """Gradient of 1/2 |tanh(W x) - t|^2 with respect to W."""
        h = np.tanh(W @ x)
        e = h - t
        return np.outer(e * (1.0 - h * h), x)


    def relax(W, x, tol=1e-12, max_it=500):
        y = np.zeros(x.shape[0])
        change = 1.0
        it = 0
        while change > tol and it < max_it:
            y_new = 0.5 * np.tanh(W @ y) + x
            change = np.max(np.abs(y_new - y))
            y = y_new
            it += 1
        return y
''')

# a subprocess: compile one function, check R{outputs} against central differences, report
RUNNER = textwrap.dedent('''
    import json, sys
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    import prog
    from rop import rop
    name, mode, relaxation = sys.argv[2], sys.argv[3], sys.argv[4]
    fn = getattr(prog, name)
    rng = np.random.default_rng(0)
    W = 0.4 * rng.normal(size=(3, 3)); x = rng.normal(size=3); t = rng.normal(size=3)
    V = rng.normal(size=(3, 3))
    args = (W, x, t) if name == "loss_grad" else (W, x)
    f = rop(fn, wrt="W", mode=mode, relaxation=relaxation)
    c = f.hvp.compile(*args)
    hit = c.ir is None
    out, r = f.hvp(*args, v=V)
    eps = 1e-5
    fd = (fn(W + eps * V, *args[1:]) - fn(W - eps * V, *args[1:])) / (2 * eps)
    err = float(np.max(np.abs(r - fd)) / np.max(np.abs(fd)))
    print(json.dumps({"path": c.path, "hit": hit, "err": err,
                      "primal_ok": bool(np.allclose(out, fn(*args), rtol=1e-12))}))
''')


def _env(cache):
    env = dict(os.environ)
    env["ROP_CACHE_DIR"] = str(cache)
    env["NUMBA_CACHE_DIR"] = str(cache / "numba")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture
def work(tmp_path):
    """A program directory and a fresh, empty cache directory."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "prog.py").write_text(PROGRAM)
    (tmp_path / "runner.py").write_text(RUNNER)
    cache = tmp_path / "cache"
    cache.mkdir()
    return tmp_path, src, cache


def start(work, name="loss_grad", mode="python", relaxation="auto"):
    tmp, src, cache = work
    return subprocess.Popen([sys.executable, str(tmp / "runner.py"), str(src), name, mode,
                             relaxation], env=_env(cache), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(p):
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-3000:]
    res = json.loads(out.strip().splitlines()[-1])
    assert res["err"] < 1e-7 and res["primal_ok"], res
    return res


def run(work, **kw):
    return finish(start(work, **kw))


def index_entries(cache):
    d = cache / "index"
    return sorted(p for p in d.iterdir() if not p.name.endswith(".tmp")) if d.exists() else []


def assert_cache_valid(cache):
    """Every index entry names an existing generated file whose sha256 it records."""
    entries = index_entries(cache)
    assert entries
    for e in entries:
        path, digest = e.read_text().split("\n")[:2]
        text = Path(path).read_text()
        assert hashlib.sha256(text.encode()).hexdigest() == digest, e
        compile(text, path, "exec")
    assert not list(cache.glob("*.tmp")), "temporary files left behind"


# ----------------------------------------------------------------------------- keys

def test_same_function_twice_same_file_and_index_hit(work):
    _, _, cache = work
    a = run(work)
    b = run(work)
    assert a["path"] == b["path"]
    assert not a["hit"] and b["hit"]
    assert len(index_entries(cache)) == 1
    assert len(list(cache.glob("loss_grad_hvp_*.py"))) == 1
    assert_cache_valid(cache)


def test_changed_source_gives_another_file(work):
    _, src, cache = work
    a = run(work)
    (src / "prog.py").write_text(PROGRAM.replace("e = h - t", "e = 2.0 * (h - t)"))
    b = run(work)
    assert a["path"] != b["path"] and not b["hit"]
    assert len(index_entries(cache)) == 2
    # and back: the first file and index entry are found again
    (src / "prog.py").write_text(PROGRAM)
    c = run(work)
    assert c["path"] == a["path"] and c["hit"]


def test_relaxation_option_is_part_of_the_key(work):
    _, _, cache = work
    a = run(work, name="relax", relaxation="auto")
    b = run(work, name="relax", relaxation="off")
    assert a["path"] != b["path"]
    assert "change_R" in Path(a["path"]).read_text()
    assert "change_R" not in Path(b["path"]).read_text()
    assert run(work, name="relax", relaxation="off")["hit"]
    assert len(index_entries(cache)) == 2


def test_modes_share_the_generated_text(work):
    """The generated code does not depend on the mode (only how it is loaded does)."""
    _, _, cache = work
    a = run(work, mode="python")
    b = run(work, mode="numba")
    assert a["path"] == b["path"] and b["hit"]
    assert list((cache / "numba").rglob("*.nbi")), "numba mode uses Numba's on-disk cache"


def test_compiler_version_and_source_are_part_of_the_key(monkeypatch, tmp_path):
    """In-process: another compiler digest -> another index entry and another file name
    (Numba caches a file's machine code by the file alone: the same text from another
    compiler must not load code compiled against another runtime); another version -> also
    another file name."""
    import importlib.util
    from rop import rop
    from rop.backend import loader
    monkeypatch.setenv("ROP_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "prog_key.py").write_text(PROGRAM)
    spec = importlib.util.spec_from_file_location("prog_key_mod", tmp_path / "prog_key.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    W, x, t = np.eye(3) * 0.3, np.ones(3), np.zeros(3)
    p1 = rop(mod.loss_grad, wrt="W", mode="python").hvp.compile(W, x, t).path
    monkeypatch.setattr(loader, "compiler_digest", lambda: "another-compiler")
    c2 = rop(mod.loss_grad, wrt="W", mode="python").hvp.compile(W, x, t)
    assert c2.ir is not None, "an index entry of another compiler was used"
    assert c2.path != p1   # same text from another compiler -> another file
    monkeypatch.setattr(loader, "__version__", "99.0-test")
    monkeypatch.setattr(loader, "compiler_digest", lambda: "a third compiler")
    c3 = rop(mod.loss_grad, wrt="W", mode="python").hvp.compile(W, x, t)
    assert c3.path != p1
    assert len(list((tmp_path / "cache" / "index").iterdir())) == 3


# ----------------------------------------------------------------------------- corruption

def _generated(cache, stem="loss_grad"):
    files = list(cache.glob(f"{stem}_hvp_*.py"))
    assert len(files) == 1, files
    return files[0]


def _wrong_but_valid(text):
    """Valid Python that computes a different R{outputs} (flip the first R-term's sign)."""
    lines = text.splitlines(keepends=True)
    for i, ln in enumerate(lines):
        if ln.lstrip().startswith("R_") and " = " in ln:
            name, rhs = ln.split(" = ", 1)
            lines[i] = f"{name} = -({rhs.rstrip()})\n"
            out = "".join(lines)
            compile(out, "x", "exec")
            return out
    raise AssertionError("no R-statement found")


CORRUPTIONS = {
    "file_truncated": lambda cache, f, idx: f.write_text(f.read_text()[: len(f.read_text()) // 2]),
    "file_emptied": lambda cache, f, idx: f.write_text(""),
    "file_edited_into_wrong_valid_code": lambda cache, f, idx: f.write_text(
        _wrong_but_valid(f.read_text())),
    "file_deleted": lambda cache, f, idx: f.unlink(),
    "file_garbled_bytes": lambda cache, f, idx: f.write_bytes(b"\xff\xfe\x00garbage\x00" * 10),
    "index_garbled": lambda cache, f, idx: idx.write_text("garbage"),
    "index_empty": lambda cache, f, idx: idx.write_text(""),
    "index_wrong_digest": lambda cache, f, idx: idx.write_text(f"{f}\n{'0' * 64}\n"),
    "index_points_nowhere": lambda cache, f, idx: idx.write_text(
        f"{cache / 'missing.py'}\n{'0' * 64}\n"),
}


# corruption -> a defect of rop it exposed, now fixed (kept empty: a new one goes here as a
# strict xfail, so that it fails the run once rop is fixed)
KNOWN_DEFECTS: dict = {}


@pytest.mark.parametrize("how", [
    pytest.param(h, marks=pytest.mark.xfail(strict=True, reason=KNOWN_DEFECTS[h]))
    if h in KNOWN_DEFECTS else h for h in CORRUPTIONS])
def test_corrupted_cache_is_rebuilt_never_used(work, how):
    _, _, cache = work
    a = run(work)
    f = _generated(cache)
    good = f.read_text()
    (idx,) = index_entries(cache)
    CORRUPTIONS[how](cache, f, idx)
    b = run(work)                      # asserts the result is right (err < 1e-7)
    assert not b["hit"], "a corrupted entry was used"
    assert b["path"] == a["path"]
    assert Path(b["path"]).read_text() == good, "the generated file was not rebuilt"
    assert_cache_valid(cache)
    assert run(work)["hit"]            # and the rebuilt entry is used again


# ----------------------------------------------------------------------------- concurrency

@pytest.mark.parametrize("n_procs,mode", [(2, "numba"), (3, "python")])
def test_concurrent_compiles(work, n_procs, mode):
    """Processes started together on the same fresh cache all succeed and leave it valid."""
    _, _, cache = work
    procs = [start(work, name=name, mode=mode)
             for _ in range(n_procs) for name in ("loss_grad", "relax")]
    results = [finish(p) for p in procs]
    paths = {r["path"] for r in results}
    assert len(paths) == 2, paths
    assert_cache_valid(cache)
    assert len(index_entries(cache)) == 2
    assert run(work, mode=mode)["hit"]
    assert run(work, name="relax", mode=mode)["hit"]
