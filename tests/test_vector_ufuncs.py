"""``rt.tanh``, ``rt.exp``, ...: NumPy's vectorised loops inside Numba (rop/runtime/__init__.py).

The generated code calls them for the elementwise functions.  In Python they are NumPy's
functions; in Numba an array at or above the hand-over size gets NumPy's values bit for bit
(NumPy's own loop runs), a smaller array or a scalar the C library's, within a few units in the
last place.  Checked for every rank, non-contiguous views, and scalars.
"""

import numba
import numpy as np
import pytest

from rop import runtime as rt

DOMAIN = {"log": "positive", "log1p": "positive", "tan": "unit"}


def sample(name, shape, rng):
    x = rng.normal(size=shape)
    if DOMAIN.get(name) == "positive":
        x = np.abs(x) + 0.1
    if DOMAIN.get(name) == "unit":
        x = np.clip(x, -1.2, 1.2)
    return x


@pytest.fixture(scope="module")
def kernels():
    """One jitted caller per function (compiled once for the module)."""
    out = {}
    for name in rt.VECTOR_UFUNCS:
        f = getattr(rt, name)
        out[name] = numba.njit(lambda x, f=f: f(x))
    return out


@pytest.mark.parametrize("name", rt.VECTOR_UFUNCS)
def test_bitwise_numpy_in_both_modes(name, kernels, rng):
    ref = getattr(np, name)
    cases = [sample(name, s, rng) for s in [(7,), (3000,), (5, 6), (80, 70), (4, 3, 2), (20, 20, 20)]]
    big = sample(name, (90, 60), rng)
    cases += [big.T, big[::2, 1::3]]  # non-contiguous, above and below the threshold
    handed_over = 0
    for x in cases:
        want = ref(x)
        assert np.array_equal(getattr(rt, name)(x), want)
        got = kernels[name](x)
        assert got.shape == want.shape
        if x.size >= rt._VECTOR_MIN_SIZE:
            handed_over += 1
            assert np.array_equal(got, want), (name, x.shape, x.strides)
        else:
            assert np.all(np.abs(got - want) <= 4 * np.spacing(np.abs(want))), (name, x.shape)
    assert handed_over >= 4
    s = float(sample(name, (1,), rng)[0])
    assert abs(kernels[name](s) - ref(s)) <= 4 * np.spacing(abs(ref(s)))


def test_generated_code_uses_them():
    import os
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
    import deep_mlp
    Ws, bs, X, T, V, c = deep_mlp.init([5, 4, 3, 2], 3)
    deep_mlp.backprop.hvp(Ws, bs, X, T, v=(V, c))
    assert "rt.tanh(h)" in deep_mlp.backprop.hvp.source
