"""The deep MLP with per-layer lists and loops: Hv against JAX, at the example's real sizes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import flat_err
from rop import RopCallError
from examples.deep_mlp import backprop, init


def loss_jax(Ws, bs, X, T):
    a = X
    for i, (W, b) in enumerate(zip(Ws, bs)):
        h = W @ a + b[:, None]
        a = jnp.tanh(h) if i < len(Ws) - 1 else h
    return 0.5 * jnp.sum((a - T) ** 2) / X.shape[1]


def oracle(Ws, bs, X, T, V, c):
    g = jax.grad(loss_jax, argnums=(0, 1))
    (gW, gb), (hW, hb) = jax.jvp(lambda W, b: g(W, b, X, T), (Ws, bs), (V, c))
    return [np.asarray(x) for x in gW + gb], [np.asarray(x) for x in hW + hb]


@pytest.mark.parametrize("layers,batch", [([5, 4, 3], 3), ([6, 7, 5, 2], 4),
                                          ([784, 1000, 500, 250, 30], 8)])
def test_deep_mlp_hvp_matches_jax(layers, batch):
    Ws, bs, X, T, V, c = init(layers, batch, seed=len(layers))
    (gW, gb), (hW, hb) = backprop.hvp(Ws, bs, X, T, v=(V, c))
    g_ref, h_ref = oracle(Ws, bs, X, T, V, c)
    assert flat_err(list(gW) + list(gb), g_ref) < 1e-12
    assert flat_err(list(hW) + list(hb), h_ref) < 1e-10


def test_deep_mlp_hessian_is_symmetric():
    """<u, Hv> = <Hu, v> for random u, v (independent of any oracle)."""
    Ws, bs, X, T, V, c = init([6, 7, 5, 2], 4, seed=11)
    U, d = init([6, 7, 5, 2], 4, seed=12)[4:]
    _, (hW, hb) = backprop.hvp(Ws, bs, X, T, v=(V, c))
    _, (uW, ub) = backprop.hvp(Ws, bs, X, T, v=(U, d))
    dot = lambda xs, ys: sum(float(np.sum(x * y)) for x, y in zip(xs, ys))
    a, b = dot(U + d, list(hW) + list(hb)), dot(list(uW) + list(ub), V + c)
    assert abs(a - b) <= 1e-10 * max(abs(a), abs(b))


def test_deep_mlp_python_mode_agrees_with_numba():
    from rop import rop
    py = rop(backprop.fn, wrt=("Ws", "bs"), mode="python")
    Ws, bs, X, T, V, c = init([6, 7, 5, 2], 4, seed=3)
    (_, _), (hW, hb) = py.hvp(Ws, bs, X, T, v=(V, c))
    (_, _), (nW, nb) = backprop.hvp(Ws, bs, X, T, v=(V, c))
    assert flat_err(list(hW) + list(hb), list(nW) + list(nb)) < 1e-13


def test_generated_code_is_nopython_and_readable():
    Ws, bs, X, T, V, c = init([5, 4, 3], 3)
    backprop.hvp(Ws, bs, X, T, v=(V, c))
    compiled = backprop.hvp._last.hvp
    # njit never falls back to object mode: a compiled signature is a nopython one, and
    # pyproject's filterwarnings turns Numba's (pending) deprecation warnings into errors
    assert compiled.targetoptions.get("nopython", True)
    assert compiled.nopython_signatures, "generated code did not compile in nopython mode"
    src = backprop.hvp.source
    # R{a_0} = R{X} = 0: the first layer's products with it are not formed, as in a
    # hand-written R{backprop} (the slot-level activity of rop/transforms/slots.py)
    assert ("if i == 0:\n            R_h = rt.gemm(R_Ws[i], acts[i], c=R_bs[i][:, None])  "
            "# = R_Ws[i] @ acts[i] + R_bs[i][:, None]\n") in src
    # products go to BLAS, a sum of them as one accumulation (rop/backend/gemm.py), the
    # expression as written beside them
    assert ("else:\n            R_h = rt.gemm(R_Ws[i], acts[i], Ws[i], R_acts[i], "
            "c=R_bs[i][:, None])  # = R_Ws[i] @ acts[i] + Ws[i] @ R_acts[i] + R_bs[i][:, None]"
            in src)
    assert "R_dWs[i] = rt.gemm(R_d, acts[i].T)  # = R_d @ acts[i].T\n" in src
    assert ("R_dWs[i] = rt.gemm(R_d, acts[i].T, d, R_acts[i].T)  "
            "# = R_d @ acts[i].T + d @ R_acts[i].T\n") in src
    assert "# deep_mlp.py:" in src


def test_unrolled_call_passes_lists_as_tuples_and_nothing_else():
    """The fast path's call (``rop.api._unrolled_call``): a list argument reaches the compiled
    function as a tuple of the same objects, anything else (a tuple, an array, a number) as
    itself, and the caller's list is left as it was."""
    from rop.api import _unrolled_call
    got = []
    call = _unrolled_call(lambda *a: got.append(a) or "out", 4)
    W, t, x = [np.ones(2), np.zeros(3)], (np.ones(1),), np.arange(3.0)
    assert call(W, t, x, 0.5) == "out"
    (a, b, c, d), = got
    assert type(a) is tuple and len(a) == 2 and a[0] is W[0] and a[1] is W[1]
    assert b is t and c is x and d == 0.5
    assert type(W) is list and len(W) == 2
    with pytest.raises(TypeError):
        call(W, t, x)  # the count is part of the call: _dispatch passes exactly it

def test_common_call_is_checked_in_compiled_code_and_agrees(monkeypatch):
    """After the first call, ``.hvp`` with float64 C-contiguous arrays and lists of them goes
    straight to the compiled code (``_dispatch``: Numba matches the types, the generated code
    checks the directions); anything else takes the checked path, which converts or says what
    was expected, and both give the same numbers."""
    Ws, bs, X, T, V, c = init([5, 4, 3], 3)
    h = backprop.hvp
    Ws32, VF = [W.astype(np.float32) for W in Ws], [np.asfortranarray(x) for x in V]
    for _ in range(8):  # calls Numba's types miss leave a back-off (earlier tests may, too) ...
        h(Ws32, bs, X, T, v=(VF, c))
    checked = h(Ws, bs, X, T, v=(V, c))  # ... which the first call it needs no conversion ends
    assert "rt.check_length(Ws, R_Ws, 0)" in h.source
    assert "rt.check_direction(Ws[k], R_Ws[k], 0)" in h.source
    monkeypatch.setattr(type(h), "_bind", lambda *a: (_ for _ in ()).throw(AssertionError("slow")))
    fast = h(Ws, bs, X, T, v=(V, c))
    fast_tuples = h(tuple(Ws), tuple(bs), X, T, v=[tuple(V), tuple(c)])
    for got in (fast, fast_tuples):
        for a, b in zip(checked[1][0] + checked[1][1], got[1][0] + got[1][1]):
            assert np.array_equal(a, b)
    monkeypatch.undo()
    # what the compiled checks refuse, the checked path explains
    with pytest.raises(RopCallError, match=r"direction for `Ws\[1\]` has shape \(4, 3\), "
                                           r"expected \(3, 4\)"):
        h(Ws, bs, X, T, v=([V[0], V[1].T], c))
    with pytest.raises(RopCallError, match="must be a list of 2 arrays"):
        h(Ws, bs, X, T, v=(V[:1], c))
    bad = [V[0], V[1].copy()]
    bad[1][0, 0] = np.inf
    with pytest.raises(RopCallError, match="`Ws` or its direction contains NaN or Inf"):
        h(Ws, bs, X, T, v=(bad, c))
    # a float32 input or a Fortran-ordered direction is converted by the checked path, call
    # after call (Numba's type miss backs off), and float64 calls go straight again after it
    for _ in range(8):
        odd = h(Ws32, bs, X, T, v=(VF, c))
        for a, b in zip(checked[1][0], odd[1][0]):
            assert np.allclose(a, b, rtol=1e-5, atol=1e-6)
    h(Ws, bs, X, T, v=(V, c))  # float64 again: the checked path ends the back-off at once
    monkeypatch.setattr(type(h), "_bind", lambda *a: (_ for _ in ()).throw(AssertionError("slow")))
    again = h(Ws, bs, X, T, v=(V, c))
    assert all(np.array_equal(a, b) for a, b in zip(checked[1][0], again[1][0]))
