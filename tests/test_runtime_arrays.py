"""The runtime helpers of issue 18 (rop/runtime/arrays.py, moments.py, einsum.py) against
NumPy: each called plainly (python mode) and from a small @njit function (numba mode), over
every axis, ``keepdims`` and non-contiguous views, for one rank per test by default and for
ranks 1-4 with ``ROP_TEST_FULL=1`` -- the rule tests draw matrices only."""

import os

import numba
import numpy as np
import pytest

from rop import runtime as rt
from rop.runtime.einsum import _as_matmul, parse

RNG = np.random.default_rng(18)
# every rank of the grid with ROP_TEST_FULL=1, one rank by default: each rank is a separate
# Numba compile of every helper (half a minute for the moments at rank 3)
FULL = os.environ.get("ROP_TEST_FULL") == "1"


def ranks(*all_ranks, default):
    return list(all_ranks) if FULL else [default]
SHAPES = {1: (5,), 2: (3, 4), 3: (2, 3, 4)}


def jit(src, **ns):
    """A @njit function from one expression in ``a``, ``b``, ``c`` (each call site compiles
    for its literal arguments, as in generated code)."""
    return numba.njit(eval(f"lambda a, b=None, c=None: {src}", {"rt": rt, "np": np, **ns}))


def both(src, *args):
    """The expression's value in python mode and in numba mode."""
    py = eval(f"lambda a, b=None, c=None: {src}", {"rt": rt, "np": np})(*args)
    return py, jit(src)(*args)


def same(got, want):
    assert np.shape(got) == np.shape(want), (np.shape(got), np.shape(want))
    assert np.allclose(got, want, rtol=1e-12, atol=1e-12), (got, want)


# ----------------------------------------------------------------------------- einsum

EINSUM_2 = ["ij,jk->ik", "ij,j->i", "ij,ij->", "ij,kj->ik", "ij,jk->ki", "bij,bjk->bik",
            "bij,bkj->bki", "i,j->ij", "ij,jk", "bij,jk->bik", "ij,jk->", "ii,ij->j", "ij,jj->i",
            "ijk,kj->ik"]
SIZES = {"i": 3, "j": 4, "k": 5, "b": 2}


@pytest.mark.parametrize("s", EINSUM_2)
def test_einsum_two_operands(s):
    ins, out = parse(s, 2)
    a = RNG.normal(size=[SIZES[c] for c in ins[0]])
    b = RNG.normal(size=[SIZES[c] for c in ins[1]])
    want = np.einsum(s, a, b)
    for got in both(f"rt.einsum({s!r}, (a, b))", a, b):
        same(got, want)


def test_einsum_paths_views_and_dtypes():
    a, b = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 5))
    assert _as_matmul(*parse("ij,jk->ik", 2)) is not None      # BLAS
    assert _as_matmul(*parse("ii,ij->j", 2)) is None            # a diagonal: loops
    for got in both("rt.einsum('ij,jk->ik', (a.T, b))", a, b):  # a strided view
        same(got, a.T @ b)
    n = np.arange(12).reshape(3, 4)                             # integers: loops
    for got in both("rt.einsum('ij,jk->ik', (a, b))", n, n.T.copy()):
        same(got, n @ n.T)
    c = RNG.normal(size=(5, 2))
    for got in both("rt.einsum('ij,jk,kl->il', (a.T, b, c))", a, b, c):
        same(got, a.T @ b @ c)
    for got in both("rt.einsum('ij->ji', (a,))", a):
        same(got, a.T)


def test_einsum_refuses_what_it_cannot_compile():
    for s, n, msg in (("...ij->ji", 1, "`...`"), ("ij,jk->ik", 1, "the call passes 1"),
                      ("ij->ii", 1, "repeats"), ("ij->k", 1, "in no operand"),
                      ("i1,j->ij", 2, "letters")):
        with pytest.raises(ValueError, match=msg):
            parse(s, n)
    with pytest.raises(Exception, match="rank"):
        jit("rt.einsum('ij,jk->ik', (a, b))")(np.ones(3), np.ones((3, 2)))
    with pytest.raises(ValueError, match="wrong size"):
        jit("rt.einsum('ij,jk->ik', (a, b))")(np.ones((2, 3)), np.ones((4, 2)))


# ----------------------------------------------------------------------------- moments, products

def _axes(ndim):
    return [None] + list(range(-ndim, ndim))


@pytest.mark.parametrize("ndim", ranks(1, 2, 3, default=2))
def test_var_std_prod_and_tangents(ndim):
    """One compiled function per (axis, keepdims) returns all five helpers' values; the
    tangents are checked against central differences of NumPy's function."""
    x = RNG.normal(size=SHAPES[ndim])
    rx = RNG.normal(size=x.shape)
    if ndim == 3:  # a non-contiguous view
        x, rx = x.transpose(2, 0, 1), rx.transpose(2, 0, 1)
    h = 1e-6
    for axis in _axes(ndim):
        for kd in (False, True):
            src = (f"(rt.var(a, {axis}, 1, {kd}), rt.std(a, {axis}, 1, {kd}), "
                   f"rt.prod(a, {axis}, {kd}), rt.var_tangent(a, b, {axis}, 1, {kd}), "
                   f"rt.prod_tangent(a, b, {axis}, {kd}))")
            py, nb = both(src, x, rx)
            want = [np.var(x, axis=axis, ddof=1, keepdims=kd),
                    np.std(x, axis=axis, ddof=1, keepdims=kd),
                    np.prod(x, axis=axis, keepdims=kd)]
            for prim, extra in ((np.var, dict(ddof=1)), (np.prod, {})):
                want.append((prim(x + h * rx, axis=axis, keepdims=kd, **extra)
                             - prim(x - h * rx, axis=axis, keepdims=kd, **extra)) / (2 * h))
            for k in range(3):
                same(py[k], want[k])
                same(nb[k], want[k])
            for k in (3, 4):
                assert np.shape(py[k]) == np.shape(want[k])
                assert np.allclose(py[k], want[k], rtol=1e-7, atol=1e-7), (k, axis, kd)
                same(nb[k], py[k])


def test_prod_tangent_is_exact_at_zeros():
    """With one zero in a row, R{prod} is the product of the others times R{x} at the zero;
    with two, it is 0 -- where prod / x would give 0 / 0."""
    x = np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 5.0], [1.0, 2.0, 4.0]])
    rx = np.array([[1.0, 7.0, 1.0], [1.0, 1.0, 1.0], [1.0, 0.5, 0.25]])
    want = np.array([6.0 * 7.0, 0.0, 8.0 + 4.0 * 0.5 + 2.0 * 0.25])
    for got in both("rt.prod_tangent(a, b, 1, False)", x, rx):
        same(got, want)


# ----------------------------------------------------------------------------- shaping

@pytest.mark.parametrize("ndim", ranks(1, 2, 3, default=3))
def test_tile_repeat_cumsum(ndim):
    x = RNG.normal(size=SHAPES[ndim])
    py, nb = both("(rt.tile(a, 2), rt.tile(a, (2, 3)), rt.tile(a, (1, 2, 1, 2)))", x)
    for got_py, got_nb, reps in zip(py, nb, (2, (2, 3), (1, 2, 1, 2))):
        same(got_py, np.tile(x, reps))
        same(got_nb, np.tile(x, reps))
    for axis in _axes(ndim):
        py, nb = both(f"(rt.repeat(a, 3, {axis}), rt.cumsum(a, {axis}))", x)
        for got in (py, nb):
            same(got[0], np.repeat(x, 3, axis=axis))
            same(got[1], np.cumsum(x, axis=axis))
    if ndim == 2:
        b = x > 0
        py, nb = both("(rt.cumsum(a.T, 0), rt.cumsum(b, 1))", x, b)
        for got in (py, nb):
            same(got[0], np.cumsum(x.T, axis=0))
            same(got[1], np.cumsum(b, axis=1))


@pytest.mark.parametrize("ndim", ranks(1, 2, 3, 4, default=4))
def test_pad_constant(ndim):
    """Every spelling of pad_width NumPy broadcasts to (ndim, 2), a fill value, a strided view
    and a pair given as variables (pad widths a program computes)."""
    x = RNG.normal(size=(2, 3, 4, 3)[:ndim])
    widths = ["1", "(2,)", "(1, 2)", "((2, 1),)", "(" + "(1,), " * ndim + ")",
              "(" + "".join(f"({k % 2}, {k + 1}), " for k in range(ndim)) + ")"]
    for w in widths:
        want = np.pad(x, eval(w), mode="constant")
        for got in both(f"rt.pad_constant(a, {w}, 0)", x):
            same(got, want)
    want = np.pad(x[..., ::2], 1, constant_values=-1.5)
    for got in both("rt.pad_constant(a[..., ::2], 1, -1.5)", x):
        same(got, want)
    for got in both("rt.pad_constant(a, (" + "(b, b), " * ndim + "), 0.0)", x, 2):
        same(got, np.pad(x, 2))


def test_pad_constant_refuses_negative_widths_and_fill_pairs():
    x = RNG.normal(size=(2, 3))
    for f in (rt.pad_constant, jit("rt.pad_constant(a, (b, 1), 0.0)")):
        with pytest.raises(ValueError):
            f(x, -1, 0.0) if f is rt.pad_constant else f(x, -1)
    with pytest.raises(TypeError):
        rt.pad_constant(x, 1, (0.0, 1.0))
    with pytest.raises(numba.core.errors.TypingError):
        jit("rt.pad_constant(a, 1, (0.0, 1.0))")(x)


def test_unravel_index():
    """A flat index (an argmax) and an integer array of them, into shapes of 1-3 axes; the
    coordinates as NumPy gives them, and an index past the size refused."""
    for shape in ((7,), (3, 4), (2, 3, 4)):
        size = int(np.prod(shape))
        for i in (0, 1, size - 1, size // 2):
            want = np.unravel_index(i, shape)
            for got in both(f"rt.unravel_index(a, {shape})", i):
                assert tuple(int(g) for g in got) == tuple(int(w) for w in want), (got, want)
        idx = RNG.integers(0, size, size=(2, 3))
        want = np.unravel_index(idx, shape)
        for got in both(f"rt.unravel_index(a, {shape})", idx):
            assert len(got) == len(want)
            for g, w in zip(got, want):
                assert np.array_equal(g, w) and g.shape == w.shape
    x = RNG.normal(size=(3, 4))
    for got in both("rt.unravel_index(np.argmax(a), a.shape)", x):
        assert x[got] == x.max()
    for f in (lambda: rt.unravel_index(12, (3, 4)), lambda: jit("rt.unravel_index(a, (3, 4))")(12)):
        with pytest.raises(ValueError):
            f()


def test_array_of_numbers_arrays_and_lists():
    a, b = RNG.normal(size=(2, 3)), RNG.normal(size=(2, 3))
    for got in both("rt.array(((1.0, a[0, 0]), (2, 3.5)))", a):
        same(got, np.array([[1.0, a[0, 0]], [2, 3.5]]))
    for got in both("rt.array(((a, b), (b, a)))", a, b):
        same(got, np.array([[a, b], [b, a]]))
    for got in both("rt.array([a, b, a.T.T])", a, b):
        same(got, np.array([a, b, a]))
    with pytest.raises(ValueError):
        jit("rt.array((a, b))")(a, b.T.copy())


@pytest.mark.parametrize("ndim", [1, 2])
def test_stacking_lists(ndim):
    a, b = RNG.normal(size=SHAPES[ndim]), RNG.normal(size=SHAPES[ndim])
    calls = [f"rt.{fn}([a, b, a])" for fn in ("vstack", "hstack", "column_stack")]
    calls += [f"rt.{fn}((a, b, a))" for fn in ("vstack", "hstack", "column_stack")]
    calls += [f"rt.concatenate([a, b], {ax})" for ax in range(-ndim, ndim)]
    calls += [f"rt.stack([a, b], {ax})" for ax in range(-ndim - 1, ndim + 1)]
    want = [getattr(np, fn)([a, b, a]) for fn in ("vstack", "hstack", "column_stack")] * 2
    want += [np.concatenate([a, b], axis=ax) for ax in range(-ndim, ndim)]
    want += [np.stack([a, b], axis=ax) for ax in range(-ndim - 1, ndim + 1)]
    for got in both("(" + ", ".join(calls) + ")", a, b):
        for g, w in zip(got, want):
            same(g, w)
    with pytest.raises(ValueError):
        jit("rt.stack([a, b], 0)")(a, np.ones(a.shape[:-1] + (7,)))


def test_boolean_operands_of_dot_and_matmul():
    x, W = RNG.normal(size=4), RNG.normal(size=(4, 3))
    m = x > 0
    got = jit("(np.dot(a, b), a @ b, np.dot(b.T, a), np.dot(a, a), a @ (b > 0))")(m, W)
    want = (np.dot(m, W), m @ W, np.dot(W.T, m), np.dot(m, m), m @ (W > 0))
    for g, w in zip(got, want):
        assert np.asarray(g).dtype == np.asarray(w).dtype, (g, w)
        same(g, w)
