"""Structural damping (Martens & Sutskever 2011) on the Gauss-Newton product, against JAX.

``@rop(..., output=z, hidden={h: dh})`` and ``f.gvp(..., v=v, structural=mu)`` must give
G v + μ J_hᵀ J_h v: the curvature of μ/2 ‖h(θ+p) − h(θ)‖² added to Jᵀ H_L J v.  The reference
is built in JAX independently of rop: G v as in tests/test_gauss_newton.py, and J_hᵀ J_h v
from ``jax.jvp`` and ``jax.vjp`` of a function returning the hidden values.  Checked in both
modes, with the primal, the untouched inputs and μ = 0 giving plain G v; then the refusals.
"""

from __future__ import annotations

import copy
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gauss_newton_programs as P
from rop import rop
from rop.errors import RopCallError, RopSyntaxError
from test_gauss_newton import _deep, _rnn, _seed, jax_gvp, leaves, rel, tmap

jax.config.update("jax_enable_x64", True)

MODES = ("numba", "python")
MU = 0.7


def _hidden_seed(p, a):
    return [p[0] @ a[4] + p[1][:, None]]


def _hidden_rnn(p, a):
    Wxh, Whh, _ = p
    h, hs = a[3], []
    for x in a[4]:
        h = jnp.tanh(Wxh @ x + Whh @ h)
        hs.append(h)
    return hs


def _hidden_deep(p, a):
    Ws, bs = p
    h, out = a[2], []
    for W, b in zip(Ws[:-1], bs[:-1]):
        h = jnp.tanh(W @ h + b[:, None])
        out.append(h)
    return out


# name -> (function, wrt, output, hidden, make(rng) -> args, hidden values in JAX, the
#          Gauss-Newton case of tests/test_gauss_newton.py with the same network and loss)
CASES = {
    "seed_mlp_named": (P.seed_mlp_named, "W1 b1 W2 b2", "y2", {"a1": "d1"}, _seed, _hidden_seed,
                       "seed_mlp"),
    "rnn_states": (P.rnn_bptt, "Wxh Whh Why", "ys", {"hs[t + 1]": "dh"}, _rnn, _hidden_rnn,
                   "rnn_bptt"),
    "deep_mlp_named": (P.deep_mlp_named, "Ws bs", "acts[L]", {"acts[i]": "dh"}, _deep,
                       _hidden_deep, "deep_mlp_slot"),
}


@functools.lru_cache(maxsize=None)
def compiled(name, mode):
    fn, wrt, output, hidden = CASES[name][:4]
    return rop(wrt=tuple(wrt.split()), output=output, hidden=hidden, mode=mode)(fn)


def point(name):
    fn, wrt = CASES[name][0], CASES[name][1].split()
    r = np.random.default_rng(sum(map(ord, name)))
    args = CASES[name][4](r)
    import inspect
    names = list(inspect.signature(fn).parameters)
    params = tuple(args[names.index(w)] for w in wrt)
    return args, params, tmap(lambda x: r.normal(size=np.shape(x)), params)


def jax_damping(name, args, params, v):
    """J_hᵀ J_h v, from the hidden values as a function of the parameters."""
    hid = CASES[name][5]
    jargs = tmap(lambda x: jnp.asarray(x) if isinstance(x, np.ndarray) and x.dtype.kind == "f"
                 else x, args)
    f = functools.partial(hid, a=jargs)
    p, jv = tmap(jnp.asarray, params), tmap(jnp.asarray, v)
    _, Jv = jax.jvp(f, (p,), (jv,))
    return jax.vjp(f, p)[1](Jv)[0]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(CASES))
def test_damped_gvp_against_jax(name, mode):
    f = compiled(name, mode)
    args, params, v = point(name)
    before = copy.deepcopy((args, v))
    out, Gv_damped = f.gvp(*args, v=v, structural=MU)
    assert rel(before, (args, v)) == 0.0, "an argument or a direction was modified"
    assert rel(out, CASES[name][0](*copy.deepcopy(args))) <= 1e-13, "primal outputs differ"
    Gv_ref, _ = jax_gvp(CASES[name][6], args, v)
    S = jax_damping(name, args, params, v)
    ref = tmap(np.asarray, Gv_ref)
    ref = [a + MU * np.asarray(b) for a, b in zip(leaves(ref), leaves(S))]
    err = rel(Gv_damped, ref)
    assert err <= 1e-10, f"G v + μ J_hᵀ J_h v differs from JAX: {err:.2e}"
    # without structural (or with 0), the plain Gauss-Newton product
    assert rel(f.gvp(*args, v=v)[1], Gv_ref) <= 1e-10
    assert rel(f.gvp(*args, v=v, structural=0.0)[1], Gv_ref) <= 1e-10
    # the damping term is positive semi-definite and not zero here
    extra = sum(float(np.sum(a * b)) for a, b in zip(leaves(v), leaves(S)))
    assert extra > 1e-8


def test_generated_code_adds_mu_r_h_on_the_gradients_line():
    f = compiled("rnn_states", "python")
    args, _, v = point("rnn_states")
    f.gvp(*args, v=v, structural=MU)
    src = f.gvp.source
    assert "def rnn_bptt_gvp(" in src and ", mu):" in src
    body = src[src.index("def rnn_bptt_gvp"):]
    line = body[body.index("# gauss_newton_programs.py:89"):body.index("# gauss_newton_programs.py:90")]
    assert line.splitlines()[1:] == ["        dh = Why.T @ dy + dh_next",
                                     "        R_dh = Why.T @ R_dy + R_dh_next",
                                     "        R_dh = R_dh + mu * R_hs[t + 1]", "        "], line


def test_hidden_needs_an_output_and_a_dict():
    with pytest.raises(ValueError, match="name the network's output"):
        rop(wrt=("W1",), hidden={"a1": "d1"})
    with pytest.raises(ValueError, match="must be a dict"):
        rop(wrt=("W1",), output="y2", hidden=["a1"])
    with pytest.raises(ValueError, match="must name a hidden value"):
        rop(wrt=("W1",), output="y2", hidden={"f(a1)": "d1"})
    with pytest.raises(ValueError, match="variable's name"):
        rop(wrt=("W1",), output="y2", hidden={"a1": "d1 + 1"})


def test_hidden_names_are_checked_at_decoration():
    with pytest.raises(RopSyntaxError, match="not a variable"):
        rop(wrt=("W1", "b1", "W2", "b2"), output="y2", hidden={"a1": "nope"})(P.seed_mlp_named)


def test_structural_without_hidden_is_refused():
    f = rop(wrt=("W1", "b1", "W2", "b2"), output="y2", mode="python")(P.seed_mlp)
    args, _, v = point("seed_mlp_named")
    with pytest.raises(RopCallError, match="needs the hidden"):
        f.gvp(*args, v=v, structural=1.0)
    with pytest.raises(RopCallError, match="structural damping is a term"):
        f.hvp(*args, v=v, structural=1.0)
    g = compiled("seed_mlp_named", "python")
    with pytest.raises(RopCallError, match="≥ 0"):
        g.gvp(*args, v=v, structural=-1.0)


def test_a_gradient_assigned_on_two_lines_is_refused_at_the_second():
    f = rop(wrt=("Ws", "bs", "W_out", "b_out"), output="y", hidden={"acts[l]": "d"},
            mode="python")(P.layer_lists)
    r = np.random.default_rng(0)
    from test_gauss_newton import _lists
    args = _lists(r)
    v = tmap(lambda x: r.normal(size=np.shape(x)), args[:4])
    with pytest.raises(RopSyntaxError) as info:
        f.gvp(*args, v=v)
    assert "assigned on lines" in info.value.message
    assert "d = (Ws[l].T @ d)" in info.value.source_line
    assert "a name of its own" in info.value.hint


def test_a_hidden_value_rebound_after_the_output_is_refused():
    f = rop(wrt=("W1", "W2"), output="y", hidden={"h": "dh"}, mode="python")(P.hidden_rebound)
    r = np.random.default_rng(0)
    W1, W2, X, T = r.normal(size=(3, 2)), r.normal(size=(2, 3)), r.normal(size=(2, 4)), r.normal(size=(2, 4))
    with pytest.raises(RopSyntaxError) as info:
        f.gvp(W1, W2, X, T, v=(W1, W2))
    assert "h = dh * (1" in info.value.source_line
    assert "no longer the forward pass's" in info.value.message


def test_a_hidden_value_that_is_data_is_refused():
    f = rop(wrt=("W1", "b1", "W2", "b2"), output="y2", hidden={"X": "d1"},
            mode="python")(P.seed_mlp_named)
    args, _, v = point("seed_mlp_named")
    with pytest.raises(RopSyntaxError, match="does not depend on the parameters"):
        f.gvp(*args, v=v)


def test_hessian_free_passes_lambda_mu_to_the_curvature():
    """``hessian_free(..., structural_damping=μ)`` calls the curvature with the weight λμ of
    each step (Martens & Sutskever: the prior scales with the Tikhonov λ), and trains the RNN
    with the damped product: the loss falls, and every solve ends without negative curvature."""
    from rop.hessian_free import hessian_free
    f = compiled("rnn_states", "python")
    args, params, _ = point("rnn_states")
    data = args[3:]

    def loss(p, b):
        h, out = b[0], 0.0
        for x, t in zip(b[1], b[2]):
            h = np.tanh(p[0] @ x + p[1] @ h)
            out += 0.5 * float(np.sum((p[2] @ h - t) ** 2))
        return out
    seen = []

    def curvature(p, b, v, weight):
        seen.append(weight)
        return f.gvp(*p, *b, v=v, structural=weight)[1]
    out, history = hessian_free(loss, lambda p, b: (loss(p, b), f(*p, *b)), curvature, params,
                                batch=data, steps=5, damping=2.0, structural_damping=0.3,
                                progress=False)
    weights = {round(w, 12) for w in seen}
    assert weights == {round(0.3 * s.damping, 12) for s in history}, (weights, history)
    losses = [history.initial_loss] + [s.loss for s in history]
    assert losses[-1] < losses[0] and all(b <= a for a, b in zip(losses, losses[1:]))
    assert all(s.cg_stop != "negative curvature" for s in history)
    with pytest.raises(ValueError, match="structural_damping"):
        hessian_free(loss, lambda p, b: (loss(p, b), f(*p, *b)), curvature, params,
                     batch=data, steps=1, structural_damping=-1.0, progress=False)
