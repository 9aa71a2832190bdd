"""The memory model's passes (rop/ir/storage.py, rop/ir/inplace.py) and the pass list.

Each pass is tested the Numba way: for the exact change it makes to the IR or the generated
code, and for an unchanged result (Hv against central differences of the original function,
the primal against the function itself, the arguments and directions untouched).  The
adversarial corpus (tests/test_adversarial.py) covers the same ground wide; this file pins
what each pass does."""

import numpy as np
import pytest

import storage_programs as P
from rop import pipeline, rop
from rop.errors import RopCallError, RopInternalError, RopSyntaxError
from rop.ir.nodes import Assign, Function, Loc, Return, Var
from rop.ir.verify import verify


def check(fn, args, wrt=("W",)):
    """Compile in python mode, check the primal, Hv against central differences and that no
    argument or direction changed; returns the generated source."""
    rng = np.random.default_rng(7)
    v = tuple(rng.standard_normal(np.shape(args[0])) for _ in wrt)
    before = [np.copy(a) for a in args], [np.copy(d) for d in v]
    f = rop(fn, wrt=wrt, mode="python")
    out, r = f.hvp(*args, v=v)
    flat = lambda t: np.concatenate([np.ravel(x) for x in (t if isinstance(t, tuple) else (t,))])
    assert np.allclose(flat(out), flat(fn(*[np.copy(a) for a in args])), rtol=1e-14, atol=0)
    best = np.inf
    for eps in (1e-4, 1e-6):
        hi = fn(args[0] + eps * v[0], *[np.copy(a) for a in args[1:]])
        lo = fn(args[0] - eps * v[0], *[np.copy(a) for a in args[1:]])
        fd = (flat(hi) - flat(lo)) / (2 * eps)
        best = min(best, np.max(np.abs(fd - flat(r))) / max(np.max(np.abs(fd)), 1e-12))
    assert best < 1e-6, f.hvp.source
    assert all(np.array_equal(a, b) for a, b in zip(args, before[0]))
    assert all(np.array_equal(a, b) for a, b in zip(v, before[1]))
    return f.hvp.source


@pytest.fixture
def W():
    return np.array([0.3, -0.7, 1.1])


def body(src):
    return src.split("_hvp(")[1]


def test_a_write_seen_through_an_alias_is_kept_and_activates_the_alias(W):
    src = body(check(P.write_seen_through_alias, (W,)))
    assert "a[0] = 2.0 * W[0]" in src
    # R{a} exists before b = a, so that R{b} is the same array (the class is forced active)
    assert src.index("R_a = np.zeros_like(a)") < src.index("R_b = R_a")


def test_augassign_is_in_place_only_where_another_name_sees_it(W):
    assert "a[...] = " in body(check(P.augassign_seen_through_list, (W,)))
    alone = body(check(P.augassign_alone, (W,)))
    assert "a[...]" not in alone and "a = a + W" in alone


def test_an_r_value_is_copied_exactly_when_a_write_may_reach_it(W):
    C = np.array([1.0, 2.0, 3.0])
    assert "R_z = rt.broadcast_as(R_W, z).copy()" in body(check(P.rvalue_written, (W, C)))
    assert ".copy()" not in body(check(P.rvalue_not_written, (W, C)))


def test_writes_into_a_parameter_are_refused_flow_sensitively(W):
    X = np.array([1.0, 2.0, 3.0])
    check(P.rebound_then_written, (W, X))  # b was rebound: X is not written
    with pytest.raises(RopSyntaxError) as info:
        rop(P.param_element_written, wrt=("W",))
    assert "memory of parameter `X`" in info.value.message
    assert info.value.lineno == P.param_element_written.__code__.co_firstlineno + 3


def test_tuple_assignment_reads_every_value_first(W):
    check(P.swap, (W,))


def test_a_negative_index_is_not_taken_for_slot_zero(W):
    src = body(check(P.last_slot, (W, np.ones(3)), wrt=("W",)))
    assert "R_hs[-1]" in src


def test_the_pass_list_and_rop_dump(W, monkeypatch, capsys):
    assert pipeline.PASS_NAMES == ("infer_ranks", "fold_ranks", "inplace", "memory", "rtransform",
                                   "co_converge", "dce", "release", "emit")
    monkeypatch.setenv("ROP_DUMP", "inplace,dce")
    rop(P.augassign_seen_through_list, wrt=("W",), mode="python").hvp(W, v=(W,))
    out = capsys.readouterr().out
    assert "--- IR after inplace ---" in out and "--- IR after dce ---" in out
    assert "a[...] = t" in out  # the in-place write, as the pass left it
    monkeypatch.setenv("ROP_DUMP", "inplcae")
    with pytest.raises(RopCallError, match="no pass named 'inplcae'.*inplace"):
        rop(P.augassign_alone, wrt=("W",), mode="python").hvp(W, v=(W,))


def test_the_verifier_names_the_pass_that_broke_the_ir():
    loc = Loc("f.py", 3, 5, "y = x * q")
    fn = Function("f", ["x"], [Assign("y", "mul", (Var("x"), Var("q")), loc),
                               Return(Var("y"), loc)], loc, "f.py")
    with pytest.raises(RopInternalError, match="after pass `dce`: `q` read before"):
        verify(fn, "dce")
