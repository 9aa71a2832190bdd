"""The builder (rop/ir/builder.py): R-rules' formulas become three-address IR statements.

After the R-transform every statement, R-statements included, is ``target = prim(operands)``
on an entry of the rule table; no statement holds a Python ``ast`` node, and the emitter
folds the builder's temporaries back, so the generated code reads as the formula does."""

import ast
import dataclasses
import os
import sys

import pytest

from rop import pipeline
from rop.backend.emit import Emitter
from rop.frontend.lower import lower
from rop.frontend.namer import Namer
from rop.ir.builder import Builder
from rop.ir.nodes import Assign, Const, Loc, Var, walk
from rop.rules.table import RULES, Prim, nd_same

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "docs"))

LOC = Loc("f.py", 1, 0, "")


def _asts(value):
    """The ``ast`` nodes held anywhere in a statement's fields."""
    if isinstance(value, ast.AST):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _asts(v)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            if f.name not in ("body", "orelse", "cond", "loc"):
                yield from _asts(getattr(value, f.name))


def _compile(fn, wrt, types):
    return pipeline._compile(fn, lower(fn), wrt, types, "python")


def _examples():
    import deep_mlp
    import layout_example
    import mlp
    import recurrent_backprop as rbp
    return [
        (mlp.backprop.fn, ("W1", "b1", "W2", "b2"),
         {"W1": 2, "b1": 1, "W2": 2, "b2": 1, "X": 2, "T": 2}),
        (deep_mlp.backprop.fn, ("Ws", "bs"), {"Ws": ("list", 2), "bs": ("list", 1), "X": 2, "T": 2}),
        (rbp.rbp_gradient.fn, ("W",), {"W": 2, "I": 1, "target": 1, "mask": 1, "tol": 0,
                                        "max_it": 0}),
        (getattr(layout_example.grad, "fn", layout_example.grad), ("W",), {"W": 2, "x": 1, "t": 1}),
    ]


@pytest.mark.parametrize("case", range(4))
def test_no_statement_holds_an_ast_after_the_r_transform(case, monkeypatch):
    fn, wrt, types = _examples()[case]
    seen = {}
    real = pipeline.rtransform

    def spy(u):
        real(u)
        seen["rtransform"] = [s for s in walk(u.rfn.body)]
    monkeypatch.setattr(pipeline, "rtransform", spy)
    monkeypatch.setattr(pipeline, "PASSES", tuple(spy if p is real else p for p in pipeline.PASSES))
    c = _compile(fn, wrt, types)
    prims = pipeline.prims_for(c.ir)  # the table and the elementwise helpers made from it
    r_stmts = [s for s in seen["rtransform"] if getattr(s, "is_r", False)]
    assert r_stmts, "the R-transform made no R-statement"
    for stmts in (seen["rtransform"], list(walk(c.ir.body))):  # after rtransform, and at the end
        for s in stmts:
            bad = list(_asts(s))
            assert not bad, f"{s} holds {ast.dump(bad[0])}"
            if isinstance(s, Assign):
                assert s.prim in prims or s.prim == "list", s
    for name in ("expr",):  # the fields that held formulas are gone
        assert name not in {f.name for f in dataclasses.fields(Assign)}


def test_a_formula_becomes_one_statement_per_operation_and_prints_back_as_written():
    temps, types = set(), {"W": 2, "x": 1, "R_W": 2, "R_x": 1, "b": 1, "R_b": 1}
    b = Builder(RULES, Namer(types), temps, types)
    src = "R_W @ x + W @ R_x + R_b"
    stmts = b.assign("R_h", ast.parse(src, mode="eval").body, LOC)
    assert [s.prim for s in stmts] == ["matmul", "matmul", "add", "add"]
    assert all(s.is_r for s in stmts) and stmts[-1].target == "R_h"
    assert {s.target for s in stmts[:-1]} | {stmts[2].target} <= temps
    assert types[stmts[0].target] == 1  # ranks of the temporaries, from the table's rank rules
    em = Emitter(RULES, types, temps)
    em.fuse_gemm = False
    from rop.ir.nodes import Function
    fn = Function("f", ["W", "x", "R_W", "R_x", "b", "R_b"], stmts, LOC, "f.py")
    lines = em.function(fn, "f", r_mode=True)
    assert lines[-1].strip() == f"R_h = {src}"


def test_calls_map_to_entries_through_the_table():
    temps, types = set(), {"x": 1, "y": 1, "R_x": 1}
    b = Builder(RULES, Namer(types), temps, types)

    def flat(src):
        return b.assign("r", ast.parse(src, mode="eval").body, LOC)
    # the emit form: x.T is transpose with its default axes, np.sum(x) a sum over all axes
    assert [(s.prim, s.args) for s in flat("x.T")] == [("transpose", (Var("x"), Const(None)))]
    assert flat("np.sum(x)")[-1].args == (Var("x"), Const(None), Const(False))
    # a spelling: np.sign is the entry sign; a helper only R-code calls has an entry of its own
    assert flat("np.sign(x)")[-1].prim == "sign"
    assert flat("rt.broadcast_as(R_x, y)")[-1].prim == "broadcast_as"
    # np.cos is spelled by cos, which prints rt.cos: the call stays as written, ranked as cos
    last = flat("np.cos(x)")[-1]
    assert last.prim == "call" and last.args == (Const("np.cos"), Var("x"))
    assert types[flat("np.cos(x) * 2.0")[0].target] == 1
    # a call whose arguments bind to no entry: the generic call, the callee a constant
    last = flat("np.arange(len(y))")[-1]
    assert last.prim == "call" and last.args[0] == Const("np.arange")


def test_an_entry_added_later_flattens_with_no_change_to_the_builder(monkeypatch):
    from rop.rules import table
    prim = Prim("cumsum_test", ("x",), table._emitter("np.cumsum(x)"), None, nd_same("x"),
                kind="zero")
    monkeypatch.setitem(RULES, "cumsum_test", prim)
    temps, types = set(), {"x": 1}
    b = Builder(RULES, Namer(types), temps, types)
    stmts = b.assign("r", ast.parse("np.cumsum(x) * 2.0", mode="eval").body, LOC)
    assert [s.prim for s in stmts] == ["cumsum_test", "mul"]
