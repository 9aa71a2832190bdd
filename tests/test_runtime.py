"""Tests of rop.runtime: every helper in python mode (plain call) and in numba
mode (called from a small @njit wrapper), against the NumPy reference."""

import warnings

import numba
import numpy as np
import pytest
from numba.core.errors import (
    NumbaDeprecationWarning, NumbaPendingDeprecationWarning,
    NumbaPerformanceWarning)

from rop import runtime as rt


@pytest.fixture(autouse=True)
def _numba_warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error", NumbaDeprecationWarning)
        warnings.simplefilter("error", NumbaPendingDeprecationWarning)
        warnings.simplefilter("error", NumbaPerformanceWarning)
        yield


SHAPES = {1: (5,), 2: (3, 11), 3: (2, 3, 19)}
RNG = np.random.default_rng(0)


def rand(shape):
    return RNG.standard_normal(shape)


def axes_of(ndim):
    return [None] + list(range(-ndim, ndim))


def views(ndim):
    """C-contiguous array, plus for rank 3 a non-contiguous ('A' layout) view
    (the kernels are layout-generic; one rank keeps the compile count low)."""
    x = rand(SHAPES[ndim])
    if ndim < 3:
        return [x]
    big = rand(tuple(2 * s for s in SHAPES[ndim]))
    nc = big[(slice(None, None, 2),) * ndim]
    return [x, nc]


# ---------------------------------------------------------------------------
# numba wrappers (module level: compiled once per type signature)
# ---------------------------------------------------------------------------

@numba.njit
def nb_sum_f(x, axis):
    return rt.sum(x, axis, False)


@numba.njit
def nb_sum_t(x, axis):
    return rt.sum(x, axis, True)


@numba.njit
def nb_mean_f(x, axis):
    return rt.mean(x, axis, False)


@numba.njit
def nb_mean_t(x, axis):
    return rt.mean(x, axis, True)


@numba.njit
def nb_amax_f(x, axis):
    return rt.amax(x, axis, False)


@numba.njit
def nb_amax_t(x, axis):
    return rt.amax(x, axis, True)


@numba.njit
def nb_amin_f(x, axis):
    return rt.amin(x, axis, False)


@numba.njit
def nb_amin_t(x, axis):
    return rt.amin(x, axis, True)


@numba.njit
def nb_maxt_f(x, rx, axis):
    return rt.max_tangent(x, rx, axis, False)


@numba.njit
def nb_maxt_t(x, rx, axis):
    return rt.max_tangent(x, rx, axis, True)


@numba.njit
def nb_mint_f(x, rx, axis):
    return rt.min_tangent(x, rx, axis, False)


@numba.njit
def nb_mint_t(x, rx, axis):
    return rt.min_tangent(x, rx, axis, True)


NB_RED = {
    ("sum", False): nb_sum_f, ("sum", True): nb_sum_t,
    ("mean", False): nb_mean_f, ("mean", True): nb_mean_t,
    ("amax", False): nb_amax_f, ("amax", True): nb_amax_t,
    ("amin", False): nb_amin_f, ("amin", True): nb_amin_t,
}
NP_RED = {"sum": np.sum, "mean": np.mean, "amax": np.max, "amin": np.min}
NB_TAN = {
    ("max", False): nb_maxt_f, ("max", True): nb_maxt_t,
    ("min", False): nb_mint_f, ("min", True): nb_mint_t,
}


def check_same(got, want):
    assert np.shape(got) == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------
# reductions
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["sum", "mean", "amax", "amin"])
@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions(op, ndim, keepdims):
    for x in views(ndim):
        for axis in axes_of(ndim):
            want = NP_RED[op](x, axis=axis, keepdims=keepdims)
            check_same(getattr(rt, op)(x, axis, keepdims), want)
            check_same(NB_RED[op, keepdims](x, axis), want)


@pytest.mark.parametrize("op", ["sum", "mean", "amax", "amin"])
def test_reductions_rank4(op):
    """Rank 4 (a convolution's N, C, H, W): every axis, as a runtime and a literal axis, and
    the chain a tuple of axes lowers to (np.sum(x, axis=(0, 2, 3)))."""
    x = rand((2, 3, 4, 5))
    for axis in axes_of(4):
        for keepdims in (False, True):
            check_same(NB_RED[op, keepdims](x, axis), NP_RED[op](x, axis=axis, keepdims=keepdims))
    f = _literal_wrapper(f"rt.{op}(rt.{op}(rt.{op}(x, 3, False), 2, False), 0, False)")
    check_same(f(x), NP_RED[op](x, axis=(0, 2, 3)))


def _literal_wrapper(src):
    ns = {"rt": rt}
    exec(f"def f(x):\n    return {src}\n", ns)
    return numba.njit(ns["f"])


@pytest.mark.parametrize("op", ["sum", "mean", "amax", "amin"])
@pytest.mark.parametrize("axis", [None, -3, -1, 1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions_literal_axis(op, axis, keepdims):
    x = rand(SHAPES[3])
    f = _literal_wrapper(f"rt.{op}(x, {axis}, {keepdims})")
    check_same(f(x), NP_RED[op](x, axis=axis, keepdims=keepdims))
    check_same(f(x.T), NP_RED[op](x.T, axis=axis, keepdims=keepdims))


def test_reductions_default_arguments():
    x = rand((3, 4))
    f = numba.njit(lambda x: (rt.sum(x), rt.mean(x, 1), rt.amax(x, axis=0),
                              rt.amin(x, keepdims=True)))
    s, m, mx, mn = f(x)
    check_same(s, x.sum())
    check_same(m, x.mean(1))
    check_same(mx, x.max(0))
    check_same(mn, x.min(keepdims=True))


def test_reductions_fortran_and_int():
    x = np.asfortranarray(rand((3, 4, 5)))
    for axis in axes_of(3):
        check_same(nb_sum_f(x, axis), x.sum(axis))
        check_same(nb_amax_t(x, axis), x.max(axis, keepdims=True))
    xi = RNG.integers(-5, 5, size=(3, 4))
    for axis in axes_of(2):
        got = nb_sum_f(xi, axis)
        assert np.asarray(got).dtype == np.int64
        check_same(got, xi.sum(axis))
        check_same(nb_mean_f(xi, axis), xi.mean(axis))
        check_same(nb_amin_f(xi, axis), xi.min(axis))


def test_reductions_scalar():
    for f in (rt.sum, rt.mean, rt.amax, rt.amin):
        assert f(2.5, None, False) == 2.5
    g = numba.njit(lambda s: (rt.sum(s, None, False), rt.mean(s, None, False),
                              rt.amax(s, None, False), rt.amin(s, None, False),
                              rt.max_tangent(s, 3.0, None, False)))
    assert g(2.5) == (2.5, 2.5, 2.5, 2.5, 3.0)


def test_axis_out_of_bounds():
    x = rand((3, 4))
    with pytest.raises(ValueError):
        nb_sum_f(x, 2)
    with pytest.raises(ValueError):
        nb_amax_f(x, -3)
    with pytest.raises(numba.core.errors.TypingError):
        _literal_wrapper("rt.sum(x, 2, False)")(x)


def test_max_nan_propagates():
    x = rand((3, 4))
    x[1, 2] = np.nan
    for axis in axes_of(2):
        np.testing.assert_array_equal(nb_amax_f(x, axis), np.max(x, axis))
        np.testing.assert_array_equal(nb_amin_f(x, axis), np.min(x, axis))


# ---------------------------------------------------------------------------
# max/min tangents
# ---------------------------------------------------------------------------

def tangent_reference(kind, x, rx, axis, keepdims):
    arg = np.argmax if kind == "max" else np.argmin
    if axis is None:
        t = rx.ravel()[arg(x)]
        return np.full((1,) * x.ndim, t) if keepdims else t
    idx = np.expand_dims(arg(x, axis=axis), axis)
    t = np.take_along_axis(rx, idx, axis=axis)
    return t if keepdims else np.squeeze(t, axis=axis)


@pytest.mark.parametrize("kind", ["max", "min"])
@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("keepdims", [False, True])
def test_ext_tangent(kind, ndim, keepdims):
    py = rt.max_tangent if kind == "max" else rt.min_tangent
    for x in views(ndim):
        rx = rand(x.shape)
        for axis in axes_of(ndim):
            want = tangent_reference(kind, x, rx, axis, keepdims)
            check_same(py(x, rx, axis, keepdims), want)
            check_same(NB_TAN[kind, keepdims](x, rx, axis), want)


@pytest.mark.parametrize("kind", ["max", "min"])
def test_ext_tangent_finite_differences(kind):
    red = np.max if kind == "max" else np.min
    x = rand((3, 4, 5))
    rx = rand(x.shape)
    h = 1e-7
    for axis in axes_of(3):
        fd = (red(x + h * rx, axis=axis) - red(x - h * rx, axis=axis)) / (2 * h)
        np.testing.assert_allclose(NB_TAN[kind, False](x, rx, axis), fd,
                                   rtol=1e-6, atol=1e-6)


def test_ext_tangent_ties_take_first():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])
    rx = np.array([[10.0, 20.0, 30.0], [40.0, 50.0, 60.0]])
    check_same(nb_maxt_f(x, rx, 1), [20.0, 40.0])
    check_same(rt.max_tangent(x, rx, 1, False), [20.0, 40.0])
    check_same(nb_maxt_f(x, rx, None), 20.0)
    check_same(nb_mint_f(x, rx, 0), [10.0, 50.0, 60.0])


def test_ext_tangent_broadcast_rx():
    x = rand((3, 4))
    for rx in (2.0, rand(4)):
        rxb = np.broadcast_to(rx, x.shape)
        for axis in axes_of(2):
            want = tangent_reference("max", x, rxb, axis, False)
            check_same(rt.max_tangent(x, rx, axis, False), want)
            check_same(nb_maxt_f(x, rx, axis), want)


# ---------------------------------------------------------------------------
# broadcast_as
# ---------------------------------------------------------------------------

@numba.njit
def nb_broadcast_as(r, like):
    return rt.broadcast_as(r, like)


@pytest.mark.parametrize("rshape,lshape", [
    ((3,), (4, 3)), ((3, 1), (3, 5)), ((), (2, 2)), ((1, 3), (2, 4, 3)),
    ((2, 1, 3), (2, 4, 3)), ((3,), (3,)), ((1,), (4,)), ((1, 1), (2, 3)),
    ((4, 1, 1), (4, 2, 3)), ((1,), (2, 3, 4)), ((3, 4), (2, 3, 4))])
def test_broadcast_as(rshape, lshape):
    r = rand(rshape) if rshape else 1.5
    like = rand(lshape)
    want = np.broadcast_to(r, lshape)
    for f in (rt.broadcast_as, nb_broadcast_as):
        got = f(r, like)
        assert isinstance(got, np.ndarray) and got.flags.writeable
        check_same(got, want)
        if rshape != lshape:
            got[...] = 0.0  # writable, and must not alias r
            assert np.all(np.broadcast_to(r, lshape) == want)


def test_broadcast_as_identity():
    r = rand((3, 4))
    like = rand((3, 4))
    assert rt.broadcast_as(r, like) is r
    # numba returns the same buffer
    out = nb_broadcast_as(r, like)
    out[0, 0] = 123.0
    assert r[0, 0] == 123.0


def test_broadcast_as_scalar_like():
    for f in (rt.broadcast_as, nb_broadcast_as):
        got = f(2.0, 3.0)
        assert got == 2.0 and isinstance(got, float)
        assert f(np.array([4.0]), 3.0) == 4.0


def test_broadcast_as_incompatible():
    with pytest.raises(ValueError):
        nb_broadcast_as(rand(3), rand((2, 4)))
    with pytest.raises(ValueError):
        nb_broadcast_as(rand((2, 3)), rand((3, 3)))


def test_broadcast_as_strided_source():
    r = rand((3, 1, 4))[:, :, ::2]  # a non-contiguous view
    want = np.broadcast_to(r, (3, 5, 2))
    check_same(nb_broadcast_as(r, rand((3, 5, 2))), want)


# ---------------------------------------------------------------------------
# reshape / transpose / zeros_of
# ---------------------------------------------------------------------------

@numba.njit
def nb_reshape(x, shape):
    return rt.reshape(x, shape)


def test_reshape():
    x = rand((3, 4))
    cases = [(x, (12,)), (x, (2, -1)), (x.T, (12,)), (x.T, (2, 6)),
             (x[:, ::2], (-1,)), (np.asfortranarray(x), (4, 3)),
             (rand((2, 3, 4)).transpose(2, 0, 1), (4, 6))]
    for a, shape in cases:
        want = np.reshape(a, shape)
        check_same(rt.reshape(a, shape), want)
        check_same(nb_reshape(a, shape), want)
    check_same(nb_reshape(x.T, 12), x.T.reshape(12))
    # contiguous input: a view, no copy
    v = nb_reshape(x, (12,))
    v[0] = 99.0
    assert x[0, 0] == 99.0


@numba.njit
def nb_transpose(x, axes):
    return rt.transpose(x, axes)


def test_transpose():
    x = rand((2, 3, 4))
    for axes in [(2, 0, 1), (0, 2, 1), (-1, 0, 1), (1, 0, 2)]:
        check_same(rt.transpose(x, axes), np.transpose(x, axes))
        check_same(nb_transpose(x, axes), np.transpose(x, axes))
    y = rand((3, 4))
    check_same(nb_transpose(y, (1, 0)), y.T)
    check_same(nb_transpose(y, None), y.T)
    check_same(rt.transpose(y, None), y.T)
    assert rt.transpose(2.0, None) == 2.0
    assert nb_transpose(2.0, None) == 2.0


@numba.njit
def nb_zeros_of(x):
    return rt.zeros_of(x)


def test_zeros_of():
    for x in (rand(3), rand((2, 3)).T, rand((2, 3, 4)),
              np.arange(4), np.ones(3, np.float32)):
        for f in (rt.zeros_of, nb_zeros_of):
            z = f(x)
            assert z.shape == x.shape and not z.any()
            want_dt = x.dtype if x.dtype.kind == "f" else np.float64
            assert z.dtype == want_dt
    for f in (rt.zeros_of, nb_zeros_of):
        z = f(2.5)
        assert z == 0.0 and isinstance(z, float)


def test_zeros_of_unifies_with_branch():
    @numba.njit
    def f(x, flag):
        if flag:
            r = 2.0 * x
        else:
            r = rt.zeros_of(x)
        return r
    x = rand((2, 3))
    check_same(f(x, True), 2 * x)
    check_same(f(x, False), np.zeros_like(x))
    check_same(f(1.5, False), 0.0)


# ---------------------------------------------------------------------------
# clip_tangent / norm
# ---------------------------------------------------------------------------

@numba.njit
def nb_clip_tangent(x, rx, lo, hi):
    return rt.clip_tangent(x, rx, lo, hi)


def clip_reference(x, rx, lo, hi):
    """rx inside, 0 outside, rx / 2 exactly on a bound (JAX's jnp.clip; a central difference)."""
    lo = -np.inf if lo is None else lo
    hi = np.inf if hi is None else hi
    rx = np.broadcast_to(rx, np.shape(x))
    on = (x == lo) | (x == hi)
    return np.where((x > lo) & (x < hi), rx, np.where(on, 0.5 * rx, 0.0))


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_clip_tangent(ndim):
    for x in views(ndim):
        x.flat[0] = 0.5  # exactly on a bound: the mean of the one-sided derivatives, rx / 2
        rx = rand(x.shape)
        for lo, hi in [(-0.5, 0.5), (None, 0.0), (0.0, None), (None, None)]:
            want = clip_reference(x, rx, lo, hi)
            check_same(rt.clip_tangent(x, rx, lo, hi), want)
            check_same(nb_clip_tangent(x, rx, lo, hi), want)
        # scalar rx, and rx of lower rank
        want = clip_reference(x, 2.0, -0.5, 0.5)
        check_same(rt.clip_tangent(x, 2.0, -0.5, 0.5), want)
        check_same(nb_clip_tangent(x, 2.0, -0.5, 0.5), want)
        if ndim > 1:
            r1 = rand(x.shape[-1])
            want = clip_reference(x, r1, -0.5, 0.5)
            check_same(rt.clip_tangent(x, r1, -0.5, 0.5), want)
            check_same(nb_clip_tangent(x, r1, -0.5, 0.5), want)


def test_clip_tangent_finite_differences():
    x = rand((4, 5))
    rx = rand(x.shape)
    h = 1e-7
    fd = (np.clip(x + h * rx, -0.5, 0.5) - np.clip(x - h * rx, -0.5, 0.5)) / (2 * h)
    np.testing.assert_allclose(nb_clip_tangent(x, rx, -0.5, 0.5), fd, atol=1e-6)


def test_clip_tangent_scalar():
    for f in (rt.clip_tangent, nb_clip_tangent):
        assert f(0.2, 3.0, 0.0, 1.0) == 3.0
        assert f(1.2, 3.0, 0.0, 1.0) == 0.0
        assert f(1.0, 3.0, 0.0, 1.0) == 1.5  # on a bound: the mean of 3 and 0 (as jnp.clip)
        assert f(0.0, 3.0, 0.0, 1.0) == 1.5


@numba.njit
def nb_pow_log(a):
    return rt.pow_log(a)


def test_pow_log():
    """log(a), with 0 where a == 0 (the factor of R{b} in R{a ** b}, as JAX's)."""
    a = np.array([[0.0, 0.5], [2.0, 0.0]])
    want = np.array([[0.0, np.log(0.5)], [np.log(2.0), 0.0]])
    for f in (rt.pow_log, nb_pow_log):
        check_same(f(a), want)
        check_same(f(a.T), want.T)  # non-contiguous
        assert f(0.0) == 0.0 and f(2.0) == np.log(2.0) and f(0) == 0.0
        with np.errstate(invalid="ignore"):
            assert np.isnan(f(-1.0))  # as np.log


@numba.njit
def nb_norm(x):
    return rt.norm(x)


def test_norm():
    for ndim in (1, 2, 3):
        for x in views(ndim):
            want = np.linalg.norm(x.ravel())
            assert rt.norm(x) == pytest.approx(want, rel=1e-13)
            assert nb_norm(x) == pytest.approx(want, rel=1e-13)
    for f in (rt.norm, nb_norm):
        assert f(-3.0) == 3.0
        assert f(np.arange(3)) == pytest.approx(np.sqrt(5.0))
