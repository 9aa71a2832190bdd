"""Programs NumPy runs that Numba's static typing needed help with: each is checked in both
modes against central differences of the original program (never against rop's own output),
and, where rop must leave a program to Numba's refusal, that the refusal says why.
"""

import numpy as np
import pytest

import parity_programs as P
from conftest import flat_err
from rop import rop
from rop.errors import RopCallError

MODES = ("numba", "python")
STEPS = (1e-4, 1e-6)


def fd(f, args, i, direction, eps):
    """Central difference of f's outputs along ``direction`` of argument ``i`` (an array or a
    list of arrays)."""
    def at(s):
        a = list(args)
        x = args[i]
        a[i] = ([w + s * d for w, d in zip(x, direction)] if isinstance(x, list)
                else x + s * direction)
        out = f(*a)
        return out if isinstance(out, list) else [out]
    return [(p - m) / (2 * eps) for p, m in zip(at(eps), at(-eps))]


def fd_err(f, args, i, direction, got):
    got = got if isinstance(got, list) else [got]
    return min(flat_err(got, fd(f, args, i, direction, eps)) for eps in STEPS)


# ------------------------------------------------------------------ a number that becomes an array

@pytest.mark.parametrize("mode", MODES)
def test_reward_sum_started_from_a_number(mode):
    """``running = 0`` then ``running = running * gamma + r[t]`` (r a column): the number is an
    all-ones-shaped array from the start, the same values as NumPy's."""
    rng = np.random.default_rng(0)
    w, X, r, v = rng.normal(size=(3, 1)), rng.normal(size=(6, 3)), rng.normal(size=(6, 1)), \
        rng.normal(size=(3, 1))
    r[2, 0] = -2.0  # an episode boundary: the reset runs
    f = rop(P.discounted_grad, wrt=("w",), mode=mode)
    g, hv = f.hvp(w, X, r, 0.9, v=(v,))
    assert flat_err([g], [P.discounted_grad(w, X, r, 0.9)]) < 1e-13
    assert fd_err(P.discounted_grad, (w, X, r, 0.9), 0, v, hv) < 1e-6
    assert "running = np.full((1,), 0.0)" in f.hvp.source


@pytest.mark.parametrize("mode", MODES)
def test_active_state_started_and_reset_from_a_number(mode):
    rng = np.random.default_rng(1)
    Ws = [rng.normal(size=(3, 3)) for _ in range(4)]
    V = [rng.normal(size=(3, 3)) for _ in range(4)]
    x = rng.normal(size=3)
    hs, R_hs = rop(P.leaky_states, wrt=("Ws",), mode=mode).hvp(Ws, x, v=(V,))
    assert flat_err(hs, P.leaky_states(Ws, x)) < 1e-13
    assert all(h.shape == (3,) for h in hs)
    assert fd_err(P.leaky_states, (Ws, x), 0, V, list(R_hs)) < 1e-6


def test_a_number_that_may_flow_out_is_left_to_numbas_refusal():
    """With no layers, ``s = 0`` reaches ``np.tanh(s)`` as a number: an array there would change
    the result's shape, so rop does not rewrite it and the refusal names the line and why."""
    rng = np.random.default_rng(2)
    Ws = [rng.normal(size=(3, 4)) for _ in range(2)]
    x, t = rng.normal(size=4), rng.normal(size=3)
    V = [rng.normal(size=(3, 4)) for _ in range(2)]
    _, hv = rop(P.summed_layers_grad, wrt=("Ws",), mode="python").hvp(Ws, x, t, v=(V,))
    assert fd_err(P.summed_layers_grad, (Ws, x, t), 0, V, list(hv)) < 1e-6
    with pytest.raises(RopCallError, match="A number that becomes an array"):
        rop(P.summed_layers_grad, wrt=("Ws",), mode="numba").hvp(Ws, x, t, v=(V,))


# ------------------------------------------------------------------ a list of integers as an index

@pytest.mark.parametrize("mode", MODES)
def test_a_list_of_labels_indexes_as_an_integer_array(mode):
    """``p[np.arange(len(y)), y] -= 1.0`` with ``y`` the caller's list of ints (a tuple in
    Numba): an index array, as NumPy reads the list; repeated labels included."""
    rng = np.random.default_rng(3)
    W, X, V = rng.normal(size=(4, 3)), rng.normal(size=(5, 4)), rng.normal(size=(4, 3))
    y = [0, 2, 2, 1, 0]
    g, hv = rop(P.labels_grad, wrt=("W",), mode=mode).hvp(W, X, y, v=(V,))
    assert flat_err([g], [P.labels_grad(W, X, y)]) < 1e-13
    assert fd_err(P.labels_grad, (W, X, y), 0, V, hv) < 1e-6


@pytest.mark.parametrize("mode", MODES)
def test_a_tuple_of_integers_is_still_a_multi_index(mode):
    rng = np.random.default_rng(4)
    W, V = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    g, hv = rop(P.entry_scaled, wrt=("W",), mode=mode).hvp(W, (1, 2), v=(V,))
    assert g.shape == (3, 4)
    assert flat_err([g], [P.entry_scaled(W, (1, 2))]) < 1e-13
    assert fd_err(P.entry_scaled, (W, (1, 2)), 0, V, hv) < 1e-6


# ------------------------------------------------------------------ a list of unlike caches

@pytest.mark.parametrize("mode", MODES)
def test_a_list_of_unlike_caches_is_one_name_per_slot(mode):
    """``caches.append((x, W1, h))`` then ``caches.append((h, W2))``: Numba types a list's
    items alike, so each slot is a name of its own, read by ``caches[-1]`` and
    ``caches[len(caches) - 2]``."""
    rng = np.random.default_rng(5)
    W1, W2, x, t = rng.normal(size=(4, 3)), rng.normal(size=(2, 4)), rng.normal(size=3), \
        rng.normal(size=2)
    V1, V2 = rng.normal(size=(4, 3)), rng.normal(size=(2, 4))
    f = rop(P.unlike_caches_grad, wrt=("W1", "W2"), mode=mode)
    g, hv = f.hvp(W1, W2, x, t, v=(V1, V2))
    assert flat_err(list(g), list(P.unlike_caches_grad(W1, W2, x, t))) < 1e-13
    for eps in STEPS:
        plus = P.unlike_caches_grad(W1 + eps * V1, W2 + eps * V2, x, t)
        minus = P.unlike_caches_grad(W1 - eps * V1, W2 - eps * V2, x, t)
        fd_ = [(p - m) / (2 * eps) for p, m in zip(plus, minus)]
        if flat_err(list(hv), fd_) < 1e-6:
            break
    else:
        raise AssertionError("R{gradient} differs from central differences")
    assert "caches_1 = (h, W2)" in f.hvp.source


# ------------------------------------------------------------------ strided views in cached tuples

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("program", [P.strided_cache_grads, P.strided_cache_named])
def test_a_cache_tuple_holding_a_strided_view_goes_into_a_list(program, mode):
    """``caches.append((x[:, t, :], h, h_new))``: the view is stored as a copy (the same
    values; rop never writes into list items), so the list's items, and R{caches}'s, have
    one Numba type; this crashed inside the generated code before."""
    rng = np.random.default_rng(6)
    x, h0 = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 3))
    Wx, Wh = 0.5 * rng.normal(size=(4, 3)), 0.5 * rng.normal(size=(3, 3))
    vs = [rng.normal(size=a.shape) for a in (x, h0, Wx, Wh)]
    g, hv = rop(program, wrt=("x", "h0", "Wx", "Wh"), mode=mode).hvp(x, h0, Wx, Wh, v=tuple(vs))
    assert flat_err(list(g), list(program(x, h0, Wx, Wh))) < 1e-13
    for eps in STEPS:
        plus = program(*(a + eps * d for a, d in zip((x, h0, Wx, Wh), vs)))
        minus = program(*(a - eps * d for a, d in zip((x, h0, Wx, Wh), vs)))
        if flat_err(list(hv), [(p - m) / (2 * eps) for p, m in zip(plus, minus)]) < 1e-6:
            break
    else:
        raise AssertionError("R{gradient} differs from central differences")
