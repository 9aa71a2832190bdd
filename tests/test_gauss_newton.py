"""The Gauss-Newton product ``f.gvp`` (tests/gauss_newton_programs.py) against JAX.

For each program, written by hand as returning the gradient of a loss convex in the named
output z = net(θ), G v = Jᵀ H_L J v is built independently in JAX: ``jax.jvp`` of the network
gives J v, the loss's Hessian at z (``jvp`` of ``grad`` of the loss as a function of z) gives
H_L J v, ``jax.vjp`` of the network gives Jᵀ(·).  Checked in both modes: the primal outputs
equal the original function's, arguments and directions are unchanged, the gradient equals
``jax.grad`` of the loss (the program is right), G v equals the JAX construction to 1e-10, and
⟨v, G v⟩ ≥ 0 (G is positive semi-definite for these convex losses).  For the model linear in
its parameters, G v also equals rop's own H v (J is constant there).
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

jax.config.update("jax_enable_x64", True)

MODES = ("numba", "python")


def leaves(x):
    if isinstance(x, dict):
        return [l for k in sorted(x) for l in leaves(x[k])]
    if isinstance(x, (tuple, list)):
        return [l for e in x for l in leaves(e)]
    return [np.asarray(x, dtype=float)]


def tmap(f, x):
    if isinstance(x, dict):
        return {k: tmap(f, v) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(tmap(f, e) for e in x)
    return f(x)


def rel(a, b):
    a, b = leaves(a), leaves(b)
    assert len(a) == len(b)
    scale = max(max(float(np.max(np.abs(x), initial=0)) for x in b), 1e-300)
    return max(float(np.max(np.abs(x - y), initial=0)) for x, y in zip(a, b)) / scale


def jsig(z):
    return 1.0 / (1.0 + jnp.exp(-z))


def _ce(z, y):
    logp = jax.nn.log_softmax(z, axis=1)
    return -jnp.mean(logp[jnp.arange(len(y)), y])


# ----------------------------------------------------------------------------- the cases
# name -> (function, wrt, output, make(rng) -> args, net(params, args) -> z,
#          loss(z, args) -> float, pick(outputs) -> the gradient in wrt order)

def _seed(r):
    return (r.normal(size=(4, 3)), 0.3 * r.normal(size=4), r.normal(size=(2, 4)),
            0.3 * r.normal(size=2), r.normal(size=(3, 6)), r.normal(size=(2, 6)))


def _rows(r):
    return (0.6 * r.normal(size=(5, 3)), 0.2 * r.normal(size=5), 0.6 * r.normal(size=(4, 5)),
            0.2 * r.normal(size=4), 0.6 * r.normal(size=(2, 4)), 0.2 * r.normal(size=2),
            r.normal(size=(7, 3)), r.normal(size=(7, 2)))


def _relu(r):
    X = r.normal(size=(8, 4))
    W1 = r.normal(size=(4, 6))
    b1 = 0.3 * r.normal(size=6)
    pre = X @ W1 + b1
    b1 = b1 + np.where(np.abs(pre) < 0.05, 0.2, 0.0).mean(axis=0)  # away from the kink
    return (W1, b1, r.normal(size=(6, 3)), 0.3 * r.normal(size=3), X, r.integers(0, 3, size=8))


def _lists(r):
    Ws = [0.6 * r.normal(size=(5, 3)), 0.6 * r.normal(size=(4, 5))]
    bs = [0.2 * r.normal(size=5), 0.2 * r.normal(size=4)]
    return (Ws, bs, 0.6 * r.normal(size=(2, 4)), 0.2 * r.normal(size=2), r.normal(size=(3, 6)),
            r.normal(size=(2, 6)))


def _rnn(r):
    T = 4
    return (0.5 * r.normal(size=(5, 3)), 0.4 * r.normal(size=(5, 5)), 0.5 * r.normal(size=(2, 5)),
            0.1 * r.normal(size=5), [r.normal(size=3) for _ in range(T)],
            [r.normal(size=2) for _ in range(T)])


def _softreg(r):
    return (r.normal(size=(4, 3)), 0.3 * r.normal(size=3), r.normal(size=(9, 4)),
            r.integers(0, 3, size=9))


def _logistic(r):
    return (r.normal(size=4), 0.7 * r.normal(size=(4, 3)), r.normal(size=(3, 8)),
            (r.uniform(size=8) > 0.5).astype(float))


def _dict(r):
    params = {"W1": 0.7 * r.normal(size=(4, 5)), "b1": 0.3 * r.normal(size=5),
              "W2": 0.7 * r.normal(size=(5, 3)), "b2": 0.3 * r.normal(size=3)}
    X = r.normal(size=(6, 4))
    pre = X @ params["W1"] + params["b1"]
    params["b1"] = params["b1"] + np.where(np.abs(pre) < 0.05, 0.2, 0.0).mean(axis=0)
    return (params, X, r.integers(0, 3, size=6))


def _net_rnn(p, a):
    Wxh, Whh, Why = p
    h, ys = a[3], []
    for x in a[4]:
        h = jnp.tanh(Wxh @ x + Whh @ h)
        ys.append(Why @ h)
    return jnp.stack(ys)


def _net_lists(p, a):
    Ws, bs, W_out, b_out = p
    h = a[4]
    for W, b in zip(Ws, bs):
        h = jnp.tanh(W @ h + b[:, None])
    return W_out @ h + b_out[:, None]


def _net_deep(p, a):
    Ws, bs = p
    h = a[2]
    for i, (W, b) in enumerate(zip(Ws, bs)):
        h = W @ h + b[:, None]
        if i < len(Ws) - 1:
            h = jnp.tanh(h)
    return h


def _deep(r):
    sizes = [3, 5, 4, 2]
    Ws = [r.normal(size=(m, n)) / np.sqrt(n) for n, m in zip(sizes[:-1], sizes[1:])]
    bs = [0.1 * r.normal(size=m) for m in sizes[1:]]
    return (Ws, bs, r.normal(size=(3, 6)), r.normal(size=(2, 6)))


CASES = {
    "seed_mlp": (P.seed_mlp, "W1 b1 W2 b2", "y2", _seed,
                 lambda p, a: p[2] @ jsig(p[0] @ a[4] + p[1][:, None]) + p[3][:, None],
                 lambda z, a: 0.5 * jnp.sum((z - a[5]) ** 2) / a[4].shape[1], lambda o: o),
    "rows_tanh": (P.rows_tanh, "W1 b1 W2 b2 W3 b3", "out", _rows,
                  lambda p, a: jnp.tanh(jnp.tanh(a[6] @ p[0].T + p[1]) @ p[2].T + p[3]) @ p[4].T + p[5],
                  lambda z, a: 0.5 * jnp.sum((z - a[7]) ** 2), lambda o: o),
    "relu_softmax": (P.relu_softmax, "W1 b1 W2 b2", "scores", _relu,
                     lambda p, a: jnp.maximum(0, a[4] @ p[0] + p[1]) @ p[2] + p[3],
                     lambda z, a: _ce(z, a[5]), lambda o: o[1:]),
    "layer_lists": (P.layer_lists, "Ws bs W_out b_out", "y", _lists, _net_lists,
                    lambda z, a: 0.5 * jnp.sum((z - a[5]) ** 2), lambda o: o),
    "rnn_bptt": (P.rnn_bptt, "Wxh Whh Why", "ys", _rnn, _net_rnn,
                 lambda z, a: 0.5 * jnp.sum((z - jnp.stack(a[5])) ** 2), lambda o: o),
    "softmax_regression": (P.softmax_regression, "W b", "logits", _softreg,
                           lambda p, a: a[2] @ p[0] + p[1], lambda z, a: _ce(z, a[3]), lambda o: o),
    "logistic_ce": (P.logistic_ce, "w1 W2", "z", _logistic,
                    lambda p, a: p[0] @ jnp.tanh(p[1] @ a[2]),
                    lambda z, a: -jnp.sum(a[3] * jax.nn.log_sigmoid(z)
                                          + (1 - a[3]) * jax.nn.log_sigmoid(-z)) / a[2].shape[1],
                    lambda o: o),
    "deep_mlp_slot": (P.deep_mlp_slot, "Ws bs", "acts[L]", _deep, _net_deep,
                      lambda z, a: 0.5 * jnp.sum((z - a[3]) ** 2) / a[2].shape[1], lambda o: o),
    "dict_two_layer": (P.dict_two_layer, "params", "scores", _dict,
                       lambda p, a: jnp.maximum(0, a[1] @ p[0]["W1"] + p[0]["b1"]) @ p[0]["W2"]
                       + p[0]["b2"], lambda z, a: _ce(z, a[2]), lambda o: (o[1],)),
}


def _params(name, args):
    fn, wrt = CASES[name][0], CASES[name][1].split()
    import inspect
    names = list(inspect.signature(fn).parameters)
    return tuple(args[names.index(w)] for w in wrt)


def _with(name, args, params):
    import inspect
    fn, wrt = CASES[name][0], CASES[name][1].split()
    names = list(inspect.signature(fn).parameters)
    out = list(args)
    for w, p in zip(wrt, params):
        out[names.index(w)] = p
    return out


def jax_gvp(name, args, v):
    """Jᵀ H_L J v, built in JAX from the network and the loss as a function of z."""
    _, _, _, _, net, loss, _ = CASES[name]
    jargs = tmap(lambda x: jnp.asarray(x) if isinstance(x, np.ndarray) and x.dtype.kind == "f"
                 else x, args)
    p = tmap(jnp.asarray, _params(name, args))
    jv = tmap(jnp.asarray, v)
    f = functools.partial(lambda p, a: net(p, a), a=jargs)
    z, Jv = jax.jvp(f, (p,), (jv,))
    _, HJv = jax.jvp(jax.grad(lambda z: loss(z, jargs)), (z,), (Jv,))
    _, vjp = jax.vjp(f, p)
    grad = jax.grad(lambda p: loss(f(p), jargs))(p)
    return vjp(HJv)[0], grad


@functools.lru_cache(maxsize=None)
def compiled(name, mode):
    fn, wrt, output = CASES[name][:3]
    return rop(wrt=tuple(wrt.split()), output=output, mode=mode)(fn)


def point(name):
    r = np.random.default_rng(sum(map(ord, name)))
    args = CASES[name][3](r)
    v = tmap(lambda x: r.normal(size=np.shape(x)), _params(name, args))
    return args, v


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(CASES))
def test_gvp_against_jax(name, mode):
    f = compiled(name, mode)
    args, v = point(name)
    before = copy.deepcopy((args, v))
    out, Gv = f.gvp(*args, v=v)
    assert rel(before, (args, v)) == 0.0, "an argument or a direction was modified"
    assert rel(out, CASES[name][0](*copy.deepcopy(args))) <= 1e-13, "primal outputs differ"
    ref, grad = jax_gvp(name, args, v)
    pick = CASES[name][6]
    assert rel(pick(out), grad) <= 1e-10, "the program's gradient differs from JAX's"
    err = rel(pick(Gv), ref)
    assert err <= 1e-10, f"G v differs from Jᵀ H_L J v: {err:.2e}"
    vGv = sum(float(np.sum(a * b)) for a, b in zip(leaves(v), leaves(pick(Gv))))
    assert vGv >= -1e-12 * max(1.0, abs(vGv)), f"<v, G v> = {vGv} < 0"


@pytest.mark.parametrize("mode", MODES)
def test_gvp_is_hvp_for_a_model_linear_in_its_parameters(mode):
    f = compiled("softmax_regression", mode)
    args, v = point("softmax_regression")
    _, Gv = f.gvp(*args, v=v)
    _, Hv = f.hvp(*args, v=v)
    assert rel(Gv, Hv) <= 1e-13


def test_gvp_differs_from_hvp_where_the_network_is_curved():
    """The cut is real: on the seed MLP, G v and H v differ (H has the σ'' and Vᵀδ terms)."""
    f = compiled("seed_mlp", "python")
    args, v = point("seed_mlp")
    _, Gv = f.gvp(*args, v=v)
    _, Hv = f.hvp(*args, v=v)
    assert rel(Gv, Hv) > 1e-3


def test_generated_gvp_reads_like_the_slide():
    """R{d2} = R{y2}/B, R{d1} = (W2ᵀ R{d2}) y1 (1 − y1): no R_W2 in the backward pass, no σ''."""
    f = compiled("seed_mlp", "python")
    args, v = point("seed_mlp")
    f.gvp(*args, v=v)
    src = f.gvp.source
    body = src[src.index("def seed_mlp_gvp"):]
    backward = body[body.index("d2 = (y2 - T)"):]
    assert "R_W2" not in backward and "R_y1" not in backward, backward
    assert "Gauss-Newton" in src


def test_gvp_needs_an_output():
    f = rop(wrt=("W1", "b1", "W2", "b2"), mode="python")(P.seed_mlp)
    with pytest.raises(RopCallError, match="output="):
        f.gvp


@pytest.mark.parametrize("output, message", [
    ("X", "is a parameter"), ("nope", "is not a variable"),
])
def test_bad_outputs_are_refused(output, message):
    f = rop(wrt=("W1", "b1", "W2", "b2"), output=output, mode="python")(P.seed_mlp) \
        if output != "nope" else None
    if f is None:
        with pytest.raises(RopSyntaxError, match=message):
            rop(wrt=("W1", "b1", "W2", "b2"), output=output, mode="python")(P.seed_mlp)
        return
    args, v = point("seed_mlp")
    with pytest.raises(RopSyntaxError, match=message):
        f.gvp(*args, v=v)


@pytest.mark.parametrize("mode", MODES)
def test_output_stored_in_a_list_after_it_is_computed(mode):
    """``acts.append(y)`` after ``y``: the slot holding y carries R{y}, the others are held
    fixed; G v against JAX (the network's output y = W2 tanh(W1 X), squared error)."""
    f = rop(wrt=("W1", "W2"), output="y", mode=mode)(P.output_appended_after)
    r = np.random.default_rng(3)
    W1, W2, X, T = r.normal(size=(3, 2)), r.normal(size=(2, 3)), r.normal(size=(2, 4)), r.normal(size=(2, 4))
    v = (r.normal(size=W1.shape), r.normal(size=W2.shape))
    out, Gv = f.gvp(W1, W2, X, T, v=v)
    assert rel(out, P.output_appended_after(W1, W2, X, T)) <= 1e-13

    def net(p):
        return p[1] @ jnp.tanh(p[0] @ X)
    p = (jnp.asarray(W1), jnp.asarray(W2))
    z, Jv = jax.jvp(net, (p,), (tuple(map(jnp.asarray, v)),))
    ref = jax.vjp(net, p)[1](Jv)[0]  # H_L = I for 0.5 |y - T|^2
    assert rel(Gv, ref) <= 1e-10


def test_output_read_through_a_list_is_refused_at_the_line():
    f = rop(wrt=("Ws",), output="y", mode="python")(P.output_read_through_list)
    r = np.random.default_rng(0)
    Ws, X, T = [r.normal(size=(3, 2)), r.normal(size=(2, 3))], r.normal(size=(2, 4)), r.normal(size=(2, 4))
    with pytest.raises(RopSyntaxError) as info:
        f.gvp(Ws, X, T, v=(Ws,))
    e = info.value
    assert "acts[-1] - T" in e.source_line
    assert "holds the output `y`" in e.message
    assert "compute the loss from `y`" in e.hint


def test_hessian_free_trains_with_gvp():
    """Martens' optimiser with G v from .gvp as its curvature: the loss of the seed MLP on a
    regression task falls at every accepted step and by a large factor in a few steps, and
    every CG solve ends without meeting negative curvature (G + λI is positive definite)."""
    from rop.hessian_free import hessian_free
    f = compiled("seed_mlp", "python")
    r = np.random.default_rng(5)
    X = r.normal(size=(3, 64))
    T = np.stack([np.sin(X[0]) + 0.5 * X[1], np.tanh(X[2] - X[0])])
    params = (0.5 * r.normal(size=(4, 3)), np.zeros(4), 0.5 * r.normal(size=(2, 4)), np.zeros(2))

    def loss(p, b):
        W1, b1, W2, b2 = p
        y = W2 @ (1 / (1 + np.exp(-(W1 @ b[0] + b1[:, None])))) + b2[:, None]
        return 0.5 * float(np.sum((y - b[1]) ** 2)) / b[0].shape[1]

    out, history = hessian_free(loss, lambda p, b: (loss(p, b), f(*p, *b)),
                                lambda p, b, v: f.gvp(*p, *b, v=v)[1], params,
                                batch=(X, T), steps=8, progress=False)
    losses = [history.initial_loss] + [s.loss for s in history]
    assert all(b <= a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.3 * losses[0], losses
    assert all(s.cg_stop != "negative curvature" for s in history), [s.cg_stop for s in history]


def test_slot_output_spellings_agree():
    """output="acts[L]" and output="acts[-1]" name the same slot: the same G v."""
    args, v = point("deep_mlp_slot")
    a = compiled("deep_mlp_slot", "python").gvp(*args, v=v)[1]
    b = rop(wrt=("Ws", "bs"), output="acts[-1]", mode="python")(P.deep_mlp_slot).gvp(*args, v=v)[1]
    assert rel(a, b) <= 1e-14


@pytest.mark.parametrize("bad", ["acts[i + 1]", "f(x)", "3", ""])
def test_output_spec_is_checked(bad):
    with pytest.raises(ValueError, match="output must name"):
        rop(wrt=("Ws", "bs"), output=bad)


def test_slot_output_computes_no_zero_products():
    """With output="acts[L]", the backward loop over range(L - 1, -1, -1) never reads the
    output's slot: no product with the hidden slots' (zero) R is computed."""
    f = compiled("deep_mlp_slot", "python")
    args, v = point("deep_mlp_slot")
    f.gvp(*args, v=v)
    src = f.gvp.source
    backward = src[src.index("def deep_mlp_slot_gvp"):]
    backward = backward[backward.index("for i in range(L - 1, -1, -1)"):]
    assert "R_acts" not in backward, backward


@pytest.mark.parametrize("name, line", [("loss_in_the_output_loop", "ds.append(ys[-1] - T[t])"),
                                        ("loss_in_the_output_loop_local", "ds.append(y - T[t])")])
def test_loss_begun_inside_the_output_loop_is_refused_at_the_line(name, line):
    """Computed from the outputs inside the loop that builds them, a residual would lose its R
    at the cut after that loop (G v = 0, silently, before): refused where it is computed."""
    f = rop(wrt=("W",), output="ys", mode="python")(getattr(P, name))
    r = np.random.default_rng(0)
    W, X, T = r.normal(size=(3, 2)), r.normal(size=(4, 5, 3)), r.normal(size=(4, 5, 2))
    assert np.linalg.norm(f.hvp(W, X, T, v=(W,))[1]) > 0  # H v is unaffected
    with pytest.raises(RopSyntaxError) as info:
        f.gvp(W, X, T, v=(W,))
    e = info.value
    assert line in e.source_line
    assert "inside the statement that finishes `ys`" in e.message
    assert "after the loop" in e.hint
