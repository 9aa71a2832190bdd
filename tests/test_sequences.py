"""Loops over sequences, as most NumPy code writes them: ``for W, b in zip(Ws, bs)``,
``enumerate``, ``reversed``, list comprehensions and ``sum(...)`` of a generator.

The lowering turns each into a counted loop (``for k in range(len(Ws)): W = Ws[k]``), so the
checks here are: the derivative is right (central differences at two steps, and JAX for the
programs of the corpus, tests/test_corpus.py ``seq_*``/``comp_*``), the same computation
written with counted loops gives the same Hv, the generated code is the counted loop, and the
limits (a sum of arrays in Numba) say what to write instead.
"""

import numpy as np
import pytest

import sequence_programs as S
from conftest import flat_err, layer_args
from rop import rop
from rop.errors import RopCallError

MODES = ("numba", "python")


def central(f, args, wrt_index, direction, eps):
    def at(s):
        a = list(args)
        a[wrt_index] = [x + s * d for x, d in zip(args[wrt_index], direction)]
        return f(*a)
    plus, minus = at(eps), at(-eps)
    if isinstance(plus, list):
        return [(p - m) / (2 * eps) for p, m in zip(plus, minus)]
    return (plus - minus) / (2 * eps)


def fd_err(f, args, wrt_index, direction, got):
    errs = []
    for eps in (1e-4, 1e-6):
        fd = central(f, args, wrt_index, direction, eps)
        errs.append(flat_err(got, fd) if isinstance(fd, list) else flat_err([got], [fd]))
    return min(errs)


@pytest.fixture(scope="module")
def net():
    Ws, bs, X, V, c = layer_args()
    T = np.random.default_rng(7).normal(size=(2, X.shape[1]))
    return Ws, bs, X, T, V


@pytest.mark.parametrize("mode", MODES)
def test_backprop_over_zip_and_reversed_matches_counted_loops(net, mode):
    """The gradient written with zip, reversed(...) inside zip and a comprehension gives the
    Hv of the one written with indices, and both match central differences."""
    Ws, bs, X, T, V = net
    a = rop(S.mlp_for_each, wrt=("Ws",), mode=mode).hvp(Ws, bs, X, T, v=(V,))
    b = rop(S.mlp_counted, wrt=("Ws",), mode=mode).hvp(Ws, bs, X, T, v=(V,))
    assert flat_err(a[0], b[0]) < 1e-13
    assert flat_err(a[1], b[1]) < 1e-12
    assert fd_err(S.mlp_for_each, (Ws, bs, X, T), 0, V, a[1]) < 1e-6


@pytest.mark.parametrize("mode", MODES)
def test_zip_loop_is_the_counted_loop(net, mode):
    Ws, bs, X, T, V = net
    f = rop(S.mlp_zip, wrt=("Ws",), mode=mode)
    g = rop(S.mlp_range, wrt=("Ws",), mode=mode)
    hv_f = f.hvp(Ws, bs, X, T, v=(V,))
    hv_g = g.hvp(Ws, bs, X, T, v=(V,))
    assert hv_f[1] == hv_g[1]  # the same operations in the same order
    assert fd_err(S.mlp_zip, (Ws, bs, X, T), 0, V, hv_f[1]) < 1e-6
    src = f.hvp.source
    assert "for k in range(np.minimum(len(Ws), len(bs))):" in src
    assert "W = Ws[k]" in src and "R_W = R_Ws[k]" in src and "b = bs[k]" in src


def test_reversed_list_is_a_backward_loop_that_releases(net):
    """`for h in reversed(hs)` is `for k in range(len(hs) - 1, -1, -1)`, the form the release
    pass reads: each slot of hs is given back once read."""
    rng = np.random.default_rng(3)
    Ws = [0.5 * rng.normal(size=(3, 3)) for _ in range(3)]
    V = [rng.normal(size=(3, 3)) for _ in range(3)]
    x = rng.normal(size=3)
    f = rop(S.backward_reversed, wrt=("Ws",))
    _, r = f.hvp(Ws, x, v=(V,))
    assert fd_err(S.backward_reversed, (Ws, x), 0, V, r) < 1e-6
    src = f.hvp.source
    assert "rt.release(hs, k_1)" in src and "rt.release(R_hs, k_1)" in src


@pytest.mark.parametrize("mode", MODES)
def test_comprehension_of_views_and_enumerate_start(mode):
    rng = np.random.default_rng(4)
    Ws = [rng.normal(size=(3, 4)), rng.normal(size=(2, 4))]
    V = [rng.normal(size=W.shape) for W in Ws]
    x = rng.normal(size=4)
    (ys, s), (r_ys, r_s) = rop(S.transposes, wrt=("Ws",), mode=mode).hvp(Ws, x, v=(V,))
    ys_ref, s_ref = S.transposes(Ws, x)
    assert flat_err(ys, ys_ref) < 1e-14 and abs(s - s_ref) < 1e-12 * abs(s_ref)
    assert s_ref == pytest.approx(sum(i * np.sum(W ** 2) for i, W in enumerate(Ws, 2)))
    fd = [central(lambda W: S.transposes(W, x)[0], (Ws,), 0, V, 1e-5),
          central(lambda W: S.transposes(W, x)[1], (Ws,), 0, V, 1e-5)]
    assert flat_err(r_ys, fd[0]) < 1e-6
    assert abs(r_s - fd[1]) < 1e-6 * abs(fd[1])


def test_sum_of_arrays_runs_in_python_and_says_what_to_write_in_numba():
    rng = np.random.default_rng(5)
    Ws = [rng.normal(size=(3, 3)) for _ in range(2)]
    V = [rng.normal(size=(3, 3)) for _ in range(2)]
    x = rng.normal(size=3)
    _, r = rop(S.sum_of_arrays, wrt=("Ws",), mode="python").hvp(Ws, x, v=(V,))
    assert fd_err(S.sum_of_arrays, (Ws, x), 0, V, r) < 1e-6
    with pytest.raises(RopCallError) as info:
        rop(S.sum_of_arrays, wrt=("Ws",)).hvp(Ws, x, v=(V,))
    msg = str(info.value)
    assert "is a number on one path and a 1-d array on another" in msg
    assert "sequence_programs.py:" in msg and "np.zeros_like" in msg
