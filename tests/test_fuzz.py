"""Grammar-driven fuzzing: every generated program gets a correct R{outputs} (issue 7).

``tests/fuzz_programs.py`` generates random well-shaped differentiable programs from the
grammar in ``grammar/rop.lark`` (a hypothesis strategy).  Each program is written to a real
temporary ``.py`` file (rop reads source with ``inspect``), imported, and checked:

* the grammar check accepts it (it is generated from the grammar);
* ``rop(fn, wrt=<its float parameters>, mode="python")`` compiles it, and its primal outputs
  equal the original function's (relative 1e-12);
* R{outputs} equals ``jax.jvp`` of the same source re-executed with ``np`` bound to
  ``jax.numpy`` (relative ``JAX_RTOL``);
* R{outputs} equals central differences (two steps, 1e-4 and 1e-6; the better one within
  ``FD_RTOL``).  Programs branch on values (``if``, conditional expressions, ``while`` tests,
  ``max``/``abs``/``clip`` kinks); rop returns the path derivative, which is the derivative
  wherever the inputs are not on a boundary.  When the two FD steps disagree with each other
  the point is next to a boundary (the difference quotient straddles it) and the FD check is
  *inconclusive* for that point; the JAX check still applies (it follows the same path).
  Inconclusive points are counted and must stay rare;
* for a fixed subset of the programs (``ROP_FUZZ_NUMBA``, default 30, spread evenly over the
  run) the same program compiled with ``mode="numba"`` gives the same outputs and R{outputs}
  as ``mode="python"`` (relative 1e-10).  Numba compiles cost about a second per program, so
  Numba mode is checked on a subset and python mode + JAX + FD on all programs.

``ROP_FUZZ_EXAMPLES=N`` runs N programs (default 500), ``ROP_FUZZ_NUMBA=N`` checks N of them
in Numba mode, ``ROP_FUZZ_SEED`` picks another reproducible sequence.

Failures are collected (not raised one by one) and reported together with each program's
source.  ``KNOWN_DEFECTS`` lists defects of rop found by this fuzzer: a program that fails
and matches a listed defect's pattern is reported (printed) as a hit of that defect instead of
failing the run; ``test_known_defects_reproduce`` runs each reproducer and fails (strict
xfail) once rop is fixed, so that the entry gets removed.
"""

from __future__ import annotations

import os
import re
import tempfile
import traceback
from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np

import jax_oracle
from jax_oracle import as_float, leaves
import pytest
from hypothesis import HealthCheck, given, seed, settings

import fuzz_programs as F
from rop import rop
from rop.errors import RopError

N_EXAMPLES = int(os.environ.get("ROP_FUZZ_EXAMPLES", "500"))
N_NUMBA = int(os.environ.get("ROP_FUZZ_NUMBA", "30"))
SEED = int(os.environ.get("ROP_FUZZ_SEED", "20240607"))
STEPS = (1e-4, 1e-6)
FD_RTOL = 1e-5
JAX_RTOL = 1e-8
MODES_RTOL = 1e-10
# absolute floors of the error scales: inputs and directions are O(1), so an output that is 0 by
# cancellation (`(X - X.mean(axis=0, keepdims=True)).mean()`) holds round-off ~1e-16, and its
# difference quotient ~1e-16 / eps
ABS_FLOOR = 1e-6
FD_ABS_FLOOR = 1e-6

# Defects of rop found by this fuzzer: id -> (regex a failing program's module text matches,
# minimal reproducer: module text, wrt, what goes wrong).  Empty this as rop is fixed.
KNOWN_DEFECTS: dict[str, dict] = {}

# Defects this fuzzer found, fixed in rop; each reproducer must now behave as stated.
FIXED_DEFECTS: dict[str, dict] = {
    "augassign-through-local-alias": dict(
        what="`c1 = c2 = x * 2.0; c2 -= t` changes the array both names hold, as in NumPy (was "
             "refused; now an in-place write, rop/ir/inplace.py)",
        name="f", params=[("x", "N"), ("t", "S")], wrt=("x", "t"), n=2, m=3, numba=True,
        source=("def f(x, t):\n"
                "    c1 = c2 = x * 2.0\n"
                "    c2 -= t\n"
                "    return c1\n")),
    "np-clip-of-a-scalar-in-numba": dict(
        what="np.clip of a scalar compiles in numba mode (rt.clip)",
        name="f", params=[("t", "S"), ("x", "N")], wrt=("t", "x"), n=2, m=3, numba=True,
        source=("def f(t, x):\n"
                "    c = np.clip(t, -1.0, 1.0)\n"
                "    return c * x\n")),
}


# ----------------------------------------------------------------------------- oracles

def jax_version(mod, name):
    return jax_oracle.jax_namespace(mod)[name]


def close(got, ref, rtol):
    g, r = [as_float(x) for x in leaves(got)], [as_float(x) for x in leaves(ref)]
    if len(g) != len(r):
        return False, f"{len(g)} outputs != {len(r)}"
    big = max([float(np.max(np.abs(x), initial=0.0)) for x in g + r] + [0.0])
    worst = 0.0
    for a, b in zip(g, r):
        if a.shape != b.shape:
            return False, f"shape {a.shape} != {b.shape}"
        err = float(np.max(np.abs(a - b), initial=0.0))
        scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)),
                    1e-6 * big, ABS_FLOOR)
        worst = max(worst, err / scale)
    return worst <= rtol, worst


def fd_check(f, args, idx, v, r_out, outs):
    """'ok', 'inconclusive' (a boundary within the steps) or an error message."""
    fds = []
    for eps in STEPS:
        plus, minus = list(args), list(args)
        for i, d in zip(idx, v):
            plus[i] = args[i] + eps * d
            minus[i] = args[i] - eps * d
        fds.append([(as_float(a) - as_float(b)) / (2 * eps)
                    for a, b in zip(leaves(f(*plus)), leaves(f(*minus)))])
    routs = leaves(r_out)
    bad = []
    for k, (r, o) in enumerate(zip(routs, leaves(outs))):
        r = as_float(r)
        errs = []
        for fd in fds:
            d = fd[k]
            if d.shape != r.shape:
                return f"output {k}: R shape {r.shape} != fd shape {d.shape}"
            scale = max(float(np.max(np.abs(d), initial=0.0)), float(np.max(np.abs(r), initial=0.0)),
                        1e-2 * float(np.max(np.abs(as_float(o)), initial=0.0)), FD_ABS_FLOOR)
            errs.append(float(np.max(np.abs(r - d), initial=0.0)) / scale)
        if min(errs) > FD_RTOL:
            d1, d2 = fds[0][k], fds[1][k]
            sc = max(float(np.max(np.abs(d1), initial=0.0)), 1e-8)
            if float(np.max(np.abs(d1 - d2), initial=0.0)) / sc > 1e-3:
                return "inconclusive"
            bad.append(f"output {k}: relative |R - fd| = {errs}")
    return "; ".join(bad) if bad else "ok"


# ----------------------------------------------------------------------------- one program

class Stats:
    def __init__(self):
        self.tried = 0
        self.checked = 0
        self.rejected = Counter()     # inputs outside the safe range (overflow, huge values)
        self.constructs = Counter()
        self.numba_checked = 0
        self.fd_inconclusive = 0
        self.failures = []            # (program, stage, message)
        self.known = []               # (defect id, program, message)
        self.invalid = []             # programs the generator got wrong (not tests of rop)
        self.numba_typing = []        # clear refusals by Numba's static typing (see below)
        self.jax_unavailable = []     # programs the JAX oracle cannot run


STATS = Stats()
_TMP = tempfile.mkdtemp(prefix="rop-fuzz-")


def matches_known(prog, message):
    text = prog.module_text() + "\n#" + message
    for did, d in KNOWN_DEFECTS.items():
        if re.search(d["pattern"], text, re.S):
            return did
    return None


# Numba types every variable once: a program whose variable changes rank between branches
# (`b = B` in one, `b = np.sum(...)` in another) or becomes a strided view in a loop
# (`acc = C.T; ... acc = np.tanh(acc)`) is valid Python that Numba cannot compile.  rop then
# raises a RopCallError naming the generated file and suggesting mode="python": a clear
# refusal, not a wrong result.  The summary lists them; they must stay rare.
NUMBA_TYPING = ("Numba could not compile the generated code",
                "Don't know how to allocate array with layout 'A'")


def fail(prog, stage, message):
    if stage == "generator" or "may be the same array as another variable" in message:
        # the original function cannot run it, or it updates one of two names for one array
        # in place (which rop refuses, correctly): the generator's mistake, not a test of rop
        STATS.invalid.append((prog, message))
        return
    if stage == "jax" and message.startswith("jax could not run the program"):
        # the oracle's limit (the program converts a traced value to NumPy, for example): the
        # finite-difference check of the same program still stands
        STATS.jax_unavailable.append((prog, message))
        return
    if stage.startswith("rop[numba]") and any(m in message for m in NUMBA_TYPING):
        STATS.numba_typing.append((prog, message))
        return
    did = matches_known(prog, f"{stage}: {message}")
    if did:
        STATS.known.append((did, prog, f"{stage}: {message}"))
    else:
        STATS.failures.append((prog, stage, message))


def check_program(prog: F.Program, with_numba: bool):
    STATS.tried += 1
    try:
        F.check_parses(prog)
    except Exception as exc:  # the generator left the grammar: a bug in the generator
        fail(prog, "grammar", f"{type(exc).__name__}: {exc}")
        return
    mod, _ = F.write_and_import(prog, _TMP)
    f = getattr(mod, prog.name)
    names = [p for p, _ in prog.params]
    idx = [names.index(w) for w in prog.wrt]
    rng = np.random.default_rng(int(prog.digest, 16) % 2**32)
    for attempt in range(4):
        args = F.make_inputs(prog, rng)
        saved = [np.copy(a) for a in args]
        try:
            with np.errstate(all="raise"):
                ref = f(*args)
            if not all(np.array_equal(a, b) for a, b in zip(args, saved)):
                fail(prog, "generator", "the program changes its own inputs (a generator bug)")
                return
            vals = [as_float(x) for x in leaves(ref)]
            if all(np.all(np.isfinite(x)) and np.max(np.abs(x), initial=0) < 1e6 for x in vals):
                break
            STATS.rejected["large outputs"] += 1
        except FloatingPointError as exc:
            STATS.rejected[f"floating point: {exc}"] += 1
        except Exception as exc:  # the program is not well-shaped: a bug in the generator
            fail(prog, "generator", f"the original function fails: {type(exc).__name__}: {exc}")
            return
    else:
        return
    STATS.checked += 1
    STATS.constructs.update(prog.constructs)
    v = [rng.normal(size=np.shape(args[i])) if isinstance(args[i], np.ndarray)
         else float(rng.normal()) for i in idx]

    results = {}
    for mode in ("python", "numba") if with_numba else ("python",):
        try:
            rf = rop(f, wrt=prog.wrt, mode=mode)
            results[mode] = rf.hvp(*args, v=tuple(v))
        except Exception as exc:
            tb = "" if isinstance(exc, RopError) else traceback.format_exc(limit=-3)
            fail(prog, f"rop[{mode}]", f"{type(exc).__name__}: {exc}\n{tb}")
            return
        ok, worst = close(results[mode][0], ref, 1e-12)
        if not ok:
            fail(prog, f"primal[{mode}]", f"outputs differ from the original function ({worst})")
            return
    if with_numba:
        STATS.numba_checked += 1
        ok, worst = close(results["numba"][1], results["python"][1], MODES_RTOL)
        if not ok:
            fail(prog, "modes", f"R{{outputs}} of numba and python differ ({worst})")
            return
    out, r_out = results["python"]

    fj = jax_version(mod, prog.name) if _jax_follows_numpy(prog.source) else None

    def f_wrt(*params):
        full = list(args)
        for i, val in zip(idx, params):
            full[i] = val
        return fj(*full)
    primals = tuple(jnp.asarray(args[i]) if isinstance(args[i], np.ndarray) else args[i]
                    for i in idx)
    tangents = tuple(jnp.asarray(d) if isinstance(d, np.ndarray) else d for d in v)
    r_j = None
    try:
        if fj is not None:
            _, r_j = jax.jvp(f_wrt, primals, tangents)
    except Exception as exc:  # the oracle itself could not run the program: FD only
        fail(prog, "jax", f"jax could not run the program: {type(exc).__name__}: {exc}")
    jax_msg = None
    if r_j is not None:
        ok, worst = close(r_out, r_j, JAX_RTOL)
        jax_msg = None if ok else f"R{{outputs}} differs from jax.jvp ({worst})"

    fd = fd_check(f, args, idx, v, r_out, out)
    if fd == "inconclusive":
        STATS.fd_inconclusive += 1
        if jax_msg:   # a point at a boundary: JAX and rop may pick different sides of a tie
            STATS.rejected["at a boundary (FD and JAX inconclusive)"] += 1
        return
    if fd != "ok":
        fail(prog, "finite differences", fd + ("; " + jax_msg if jax_msg else ""))
        return
    if jax_msg:
        fail(prog, "jax", jax_msg + " (finite differences agree with rop)")


def _jax_follows_numpy(source: str) -> bool:
    """False when the program updates in place (``c2 -= t``) an array another name also holds
    (``c1 = c2 = ...``, ``c1 = c2``): NumPy changes both, jax.numpy rebinds one, so JAX is no
    oracle there and finite differences of the original function decide alone."""
    import ast as _ast
    tree = _ast.parse(source)
    shared = set()
    for node in _ast.walk(tree):
        if isinstance(node, _ast.Assign):
            names = {t.id for t in node.targets if isinstance(t, _ast.Name)}
            if len(node.targets) > 1 or isinstance(node.value, _ast.Name):
                shared |= names | ({node.value.id} if isinstance(node.value, _ast.Name) else set())
    return not any(isinstance(n, _ast.AugAssign) and isinstance(n.target, _ast.Name)
                   and n.target.id in shared for n in _ast.walk(tree))


# ----------------------------------------------------------------------------- the run

def test_generator_covers_the_grammar():
    """Every operator and statement kind of grammar/rop.lark has a production or a reason."""
    assert F.grammar_check() == []
    g = F.load_grammar()
    assert "@" in g.mul_ops and "if_stmt" in g.compound_stmts


def test_fuzz_programs():
    stride = max(N_EXAMPLES // max(N_NUMBA, 1), 1)
    counter = [0]

    @seed(SEED)
    @settings(max_examples=N_EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), phases=("generate",))
    @given(F.programs(name="f"))
    def run(prog):
        i = counter[0]
        counter[0] += 1
        prog.name = f"f{i}"
        prog.source = re.sub(r"^def f\(", f"def f{i}(", prog.source)
        prog.helpers = [h.replace("f_h", f"f{i}_h") for h in prog.helpers]
        prog.source = prog.source.replace("f_h", f"f{i}_h")
        check_program(prog, with_numba=N_NUMBA > 0 and i % stride == 0
                      and STATS.numba_checked < N_NUMBA)

    run()
    report = summary()
    print(report)
    assert STATS.checked >= 0.9 * N_EXAMPLES, report
    assert not STATS.failures, report
    assert len(STATS.invalid) <= 0.02 * N_EXAMPLES, report        # a generator bug, not rop's
    assert len(STATS.numba_typing) <= max(2, 0.1 * STATS.numba_checked), report
    assert len(STATS.jax_unavailable) <= 0.05 * N_EXAMPLES, report
    assert STATS.fd_inconclusive <= 0.1 * STATS.checked, report
    assert STATS.numba_checked >= min(N_NUMBA, STATS.checked // 2), report
    for name in ("assign", "aug_assign:+=", "ann_assign", "docstring", "if_stmt", "elif", "else",
                 "for_stmt", "for reversed(range)", "while_stmt", "while value-dependent",
                 "pass_stmt", "call_stmt:append", "conditional",
                 "@ matvec", "@ matmat", ".T", "index:[:, None]", "index:X[:, j]",
                 "index:slices", "keepdims", "helper:elementwise", "helper:inlined",
                 "early return", "binop:*", "binop:/", "binop:**", "binop:-", "unary:-",
                 "fn:np.log", "fn:np.sqrt", "fn:np.exp", "fn:np.tanh", "compare:<", "and",
                 "or", "not", "fn:maximum", "fn:clip", "fn:np.where", "reduce:sum(axis)",
                 "list [None] * n", "non-wrt parameter"):
        assert STATS.constructs[name] > 0, (name, report)
    # rarer constructs: the stream varies with hypothesis's adaptive generation, so these are
    # required as a group (at N=500 each group has been seen tens of times)
    for group in (("break_stmt", "continue_stmt"),):
        assert sum(STATS.constructs[n] for n in group) > 0, (group, report)


def summary():
    out = [f"\n=== rop fuzz: {STATS.tried} programs generated, {STATS.checked} checked "
           f"(python mode + JAX + finite differences), {STATS.numba_checked} also in numba mode; "
           f"{len(STATS.failures)} failures, {len(STATS.known)} known-defect hits, "
           f"{STATS.fd_inconclusive} points with inconclusive finite differences"]
    out.append(f"{len(STATS.invalid)} programs invalid (generator), "
               f"{len(STATS.numba_typing)} refused by Numba's typing with a RopCallError, "
               f"{len(STATS.jax_unavailable)} not runnable by the JAX oracle (checked by "
               "finite differences only)")
    for prog, msg in (STATS.invalid + STATS.numba_typing)[:6]:
        out.append(f"--- not counted: {msg.splitlines()[0][:200]}")
    if STATS.rejected:
        out.append("inputs rejected: " + ", ".join(f"{k}: {v}" for k, v in STATS.rejected.items()))
    out.append(f"constructs covered ({len(STATS.constructs)}):")
    out.append("  " + ", ".join(f"{k}={v}" for k, v in sorted(STATS.constructs.items())))
    for did, prog, msg in STATS.known[:10]:
        out.append(f"--- known defect {did}: {KNOWN_DEFECTS[did]['what']}\n{prog.module_text()}"
                   f"wrt={prog.wrt}\n{msg}")
    for prog, stage, msg in STATS.failures[:15]:
        out.append(f"--- FAILURE ({stage}) wrt={prog.wrt} n={prog.n} m={prog.m}\n"
                   f"{prog.module_text()}\n{msg}")
    return "\n".join(out)


# ----------------------------------------------------------------------------- known defects

@pytest.mark.parametrize("did", sorted(KNOWN_DEFECTS) or ["(none)"])
def test_known_defects_reproduce(did):
    if did == "(none)":
        return
    d = KNOWN_DEFECTS[did]
    print(f"known rop defect {did}: {d['what']}\n{d['source']}")
    pytest.xfail(f"known rop defect {did}: {d['what']}") if not _reproducer_passes(d) else None
    pytest.fail(f"known defect {did} no longer reproduces: remove it from KNOWN_DEFECTS")


@pytest.mark.parametrize("did", sorted(FIXED_DEFECTS))
def test_fixed_defects_stay_fixed(did):
    d = FIXED_DEFECTS[did]
    assert _reproducer_passes(d), d["what"]


def _reproducer_passes(d) -> bool:
    prog = F.Program(d["name"], [], d["source"].split("\n\n\n")[-1], d["params"], d["wrt"],
                     d["n"], d["m"])
    prog.helpers = d["source"].split("\n\n\n")[:-1]
    before = len(STATS.failures), len(STATS.known)
    saved = dict(KNOWN_DEFECTS)
    KNOWN_DEFECTS.clear()
    try:
        check_program(prog, with_numba=d.get("numba", False))
    finally:
        KNOWN_DEFECTS.update(saved)
    failed = len(STATS.failures) > before[0]
    del STATS.failures[before[0]:]
    return not failed
