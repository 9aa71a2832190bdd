"""Module-level values a function reads are compiled in as constants; a call after one of them
changed must use the new value, never the one seen at decoration (issue 17, kind 7).

rop records, while lowering, every module-level number (and helper function) it compiles in —
the function's own globals, a helper's own module's globals, ``module.NAME`` — and each
``.hvp`` call compares them with their current values (a few tens of nanoseconds each).  On a
change it lowers the function again and drops its compiled specialisations, so the call
compiles with the new value (the pipeline's cache is keyed by the lowered code: a value seen
before reloads its module).  A new value rop cannot compile in is a RopCallError naming it.

Checked in both modes and through each call path: ``_dispatch`` (numba, check_finite),
``_fast_call`` (numba without checks, and python mode) and the checked path.  The programs are
in tests/globals_programs.py and tests/globals_helpers.py (rop reads source with inspect).
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import globals_helpers as H
import globals_programs as G
from rop import RopCallError, rop

CONFIGS = {
    "numba-dispatch": dict(mode="numba", check_finite=True),    # HVP._dispatch
    "numba-fast-call": dict(mode="numba", check_finite=False),  # HVP._fast_call
    "python": dict(mode="python"),                               # HVP._fast_call
}


def _leaves(x):
    if isinstance(x, (tuple, list)):
        return [leaf for e in x for leaf in _leaves(e)]
    return [np.asarray(x, dtype=float)]


def check(f, args, v, label=""):
    """f.hvp's primal equals the original function's now, and R equals central differences of
    the original function now (it reads the module's current values)."""
    fn = f.fn
    names = list(inspect.signature(fn).parameters)
    idx = [names.index(w) for w in f.wrt]
    out, r = f.hvp(*args, v=v)
    for o, e in zip(_leaves(out), _leaves(fn(*args))):
        np.testing.assert_allclose(o, e, rtol=1e-12, atol=1e-12, err_msg=f"{label}: primal")
    eps = 1e-6
    plus, minus = list(args), list(args)
    for i, d in zip(idx, v):
        plus[i] = args[i] + eps * d
        minus[i] = args[i] - eps * d
    fd = [(p - m) / (2 * eps) for p, m in zip(_leaves(fn(*plus)), _leaves(fn(*minus)))]
    for rk, dk in zip(_leaves(r), fd):
        np.testing.assert_allclose(rk, dk, rtol=1e-6, atol=1e-7, err_msg=f"{label}: R")
    return out, r


def ridge_args(rng, W_shape=(3,)):
    W = rng.normal(size=W_shape)
    X = rng.normal(size=(5, W_shape[0]))
    y = rng.normal(size=(5,) + W_shape[1:])
    return [W, X, y], (rng.normal(size=W.shape),)


@pytest.mark.parametrize("config", CONFIGS)
def test_changed_global_is_used(config, monkeypatch):
    rng = np.random.default_rng(0)
    args, v = ridge_args(rng)
    f = rop(G.ridge_grad, wrt="W", **CONFIGS[config])
    old = check(f, args, v, "LAM = 0.1")
    check(f, args, v, "LAM = 0.1, second call")  # the fast path is armed now
    if config == "numba-dispatch":
        assert f.hvp._ready is not None
    monkeypatch.setattr(G, "LAM", 0.7)
    new = check(f, args, v, "LAM = 0.7")
    assert not np.allclose(new[1], old[1])  # the value matters: the old R is wrong now
    check(f, args, v, "LAM = 0.7, second call")
    if config == "numba-dispatch":
        assert f.hvp._ready is not None  # the fast path serves the new code
    monkeypatch.setattr(G, "LAM", 0.1)
    back = check(f, args, v, "LAM = 0.1 again")
    np.testing.assert_array_equal(back[1], old[1])


@pytest.mark.parametrize("config", CONFIGS)
def test_helpers_read_their_own_module(config, monkeypatch):
    """An elementwise helper (rule derived by sympy with BETA in it), an inlined helper
    (GAMMA) and a module attribute (gh.SCALE), all in globals_helpers."""
    rng = np.random.default_rng(1)
    W = rng.normal(size=(4,))
    v = (rng.normal(size=W.shape),)
    f = rop(G.with_helpers, wrt="W", **CONFIGS[config])
    check(f, [W], v, "initial")
    check(f, [W], v, "initial, second call")
    for name, value in (("BETA", 0.5), ("GAMMA", -1.5), ("SCALE", 0.25)):
        before = f.hvp(W, v=v)[1]
        monkeypatch.setattr(H, name, value)
        after = check(f, [W], v, f"{name} = {value}")[1]
        assert not np.allclose(after, before), name
        check(f, [W], v, f"{name} = {value}, second call")


@pytest.mark.parametrize("config", CONFIGS)
def test_int_and_bool_globals(config, monkeypatch):
    """A loop count and a branch condition from module-level numbers."""
    rng = np.random.default_rng(2)
    W = rng.normal(size=(2, 3))
    v = (rng.normal(size=W.shape),)
    f = rop(G.steps, wrt="W", **CONFIGS[config])
    check(f, [W], v, "N_STEPS = 2")
    check(f, [W], v, "N_STEPS = 2, second call")
    monkeypatch.setattr(G, "N_STEPS", 5)
    check(f, [W], v, "N_STEPS = 5")
    monkeypatch.setattr(G, "USE_BIAS", False)
    check(f, [W], v, "USE_BIAS = False")
    check(f, [W], v, "USE_BIAS = False, second call")


@pytest.mark.parametrize("config", CONFIGS)
def test_a_value_rop_cannot_compile_in_is_named(config, monkeypatch):
    rng = np.random.default_rng(3)
    args, v = ridge_args(rng)
    f = rop(G.ridge_grad, wrt="W", **CONFIGS[config])
    check(f, args, v)
    monkeypatch.setattr(G, "LAM", np.ones(3))
    for _ in range(2):  # every call, never the stale value
        with pytest.raises(RopCallError, match=r"module-level `LAM`.*0\.1.*array of shape \(3,\)"):
            f.hvp(*args, v=v)
    monkeypatch.delattr(G, "LAM")
    with pytest.raises(RopCallError, match="`LAM`.*no longer defined"):
        f.hvp(*args, v=v)
    monkeypatch.setattr(G, "LAM", 0.3, raising=False)
    check(f, args, v, "LAM = 0.3 after the errors")


def test_two_decorations_of_one_function(monkeypatch):
    """Decorations share the function's lowered IR: each still compiles what the module holds
    when it compiles (here f1 needs a new specialisation after f2 lowered with another value)."""
    rng = np.random.default_rng(4)
    args, v = ridge_args(rng)
    f1 = rop(G.ridge_grad, wrt="W", mode="python")
    f2 = rop(G.ridge_grad, wrt="W", mode="numba")
    check(f1, args, v, "f1")
    monkeypatch.setattr(G, "LAM", 0.9)
    check(f2, args, v, "f2, LAM = 0.9")
    monkeypatch.setattr(G, "LAM", 0.1)
    args2, v2 = ridge_args(rng, (3, 2))  # new ranks: f1 compiles again
    check(f1, args2, v2, "f1, LAM = 0.1, new ranks")
    check(f2, args2, v2, "f2, LAM = 0.1, new ranks")
    check(f1, args, v, "f1, LAM = 0.1")


def test_compile_and_source_follow_the_change(monkeypatch):
    rng = np.random.default_rng(5)
    args, v = ridge_args(rng)
    f = rop(G.ridge_grad, wrt="W", mode="python")
    c_old = f.hvp.compile(*args)
    assert "0.1" in c_old.source
    monkeypatch.setattr(G, "LAM", 0.625)
    c_new = f.hvp.compile(*args)
    assert "0.625" in c_new.source and "0.1 " not in c_new.source
    assert f.hvp.source == c_new.source
    monkeypatch.setattr(G, "LAM", 0.1)
    assert f.hvp.compile(*args).path == c_old.path  # the value seen before: the same module


def test_what_is_recorded():
    """The lowering records what it compiled in: the function's own numbers, its helpers'
    (in their module) and the helpers themselves; NumPy's constants are not checked."""
    f = rop(G.with_helpers, wrt="W")
    recorded = {(d["__name__"], n) for d, n, _ in f.hvp._globals}
    assert {("globals_helpers", "BETA"), ("globals_helpers", "GAMMA"),
            ("globals_helpers", "SCALE"), ("globals_programs", "soft"),
            ("globals_programs", "penalty")} <= recorded, recorded
    assert all(mod in ("globals_helpers", "globals_programs") for mod, _ in recorded), recorded
