"""Dicts, None, strings, keyword arguments and runtime checks (tests/statics_programs.py).

Each program is compiled once per mode and checked at a point away from kinks:

* the primal outputs of ``.hvp`` equal calling the original function (dicts come back as
  dicts with the same keys, in the same order);
* the arguments and the directions are bit-for-bit unchanged;
* R{outputs} matches central differences of the ORIGINAL function (steps 1e-4 and 1e-6, the
  better within 1e-6) and an independent JAX oracle: for the gradient programs a loss written
  separately in ``jax.numpy``, whose ``jvp(grad)`` is the exact Hv; for the others ``jax.jvp``
  of the same source re-executed under ``jax.numpy`` (tests/jax_oracle.py);
* both modes agree.

The refusals say, at the user's line, the one thing to change.
"""

from __future__ import annotations

import copy
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax_oracle
import statics_programs as P
from rop import rop
from rop.errors import RopCallError, RopSyntaxError

MODES = ("numba", "python")


# ----------------------------------------------------------------------------- trees with dicts

def tleaves(x):
    if hasattr(x, "__dict__") and not hasattr(x, "__array__") and not isinstance(x, type) \
            and not callable(x):
        return tleaves(vars(x))  # an object: its attributes
    if isinstance(x, type):
        return []
    if isinstance(x, dict):
        return [leaf for v in x.values() for leaf in tleaves(v)]
    if isinstance(x, (tuple, list)):
        return [leaf for v in x for leaf in tleaves(v)]
    return [x]


def tmap(f, x, *ys):
    if isinstance(x, dict):
        return {k: tmap(f, v, *(y[k] for y in ys)) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(tmap(f, v, *(y[i] for y in ys)) for i, v in enumerate(x))
    return f(x, *ys)


def same_structure(a, b):
    if hasattr(a, "__dict__") and not hasattr(a, "__array__") and not isinstance(a, type):
        return type(a) is type(b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same_structure(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same_structure, a, b))
    return np.shape(a) == np.shape(b)


def align(got, ref):
    """``got`` with its dicts' keys in ``ref``'s order (the same keys are required)."""
    if isinstance(ref, dict):
        assert isinstance(got, dict) and set(got) == set(ref), (list(got), list(ref))
        return {k: align(got[k], ref[k]) for k in ref}
    if isinstance(ref, (tuple, list)):
        return type(got)(align(a, b) for a, b in zip(got, ref))
    return got


def rel(got, ref):
    got = align(got, ref)
    g = [np.asarray(x, dtype=float) for x in tleaves(got)]
    r = [np.asarray(x, dtype=float) for x in tleaves(ref)]
    assert len(g) == len(r)
    big = max(float(np.max(np.abs(x), initial=0.0)) for x in g + r)
    worst = 0.0
    for a, b in zip(g, r):
        assert a.shape == b.shape, (a.shape, b.shape)
        scale = max(float(np.max(np.abs(a), initial=0)), float(np.max(np.abs(b), initial=0)), 1e-6 * big)
        err = float(np.max(np.abs(a - b), initial=0.0))
        worst = max(worst, err / scale if err else 0.0)
    return worst


def snapshot(x):
    return copy.deepcopy(x)


def unchanged(a, b):
    ok = [np.array_equal(np.asarray(x), np.asarray(y)) and np.asarray(x).dtype == np.asarray(y).dtype
          for x, y in zip(tleaves(a), tleaves(b))]
    return all(ok) and same_structure(a, b)


# ----------------------------------------------------------------------------- the cases

def _rng(seed=0):
    return np.random.default_rng(seed)


def case_two_layer():
    rng = _rng(1)
    params = {"W1": 0.5 * rng.normal(size=(5, 7)), "b1": 0.1 * rng.normal(size=7),
              "W2": 0.5 * rng.normal(size=(7, 3)), "b2": 0.1 * rng.normal(size=3)}
    X = rng.normal(size=(6, 5))
    y = np.array([0, 2, 1, 1, 0, 2])

    def jloss(p):
        h = jnp.maximum(0, X @ p["W1"] + p["b1"])
        s = h @ p["W2"] + p["b2"]
        lp = s - jax.scipy.special.logsumexp(s, axis=1, keepdims=True)
        return -jnp.mean(lp[np.arange(6), y]) + 0.05 * (jnp.sum(p["W1"] ** 2) + jnp.sum(p["W2"] ** 2))
    return dict(fn=P.two_layer_loss, wrt=("params",), args=(params, X, y), kwargs={"reg": 0.1},
                loss=jloss, out=lambda o: o[1], primal_loss=lambda o: o[0])


def case_scores():  # y=None: the scores alone (a different specialisation of the same function)
    c = case_two_layer()
    params, X, _ = c["args"]
    return dict(fn=P.two_layer_loss, wrt=("params",), args=(params, X), kwargs={}, loss=None)


def case_L_layer():
    rng = _rng(2)
    dims = [4, 5, 3, 1]
    parameters = {}
    for l in range(1, len(dims)):
        parameters["W" + str(l)] = rng.normal(size=(dims[l], dims[l - 1])) / np.sqrt(dims[l - 1])
        parameters["b" + str(l)] = 0.1 * rng.normal(size=(dims[l], 1))
    X = rng.normal(size=(4, 8))
    Y = (rng.random(size=(1, 8)) > 0.5).astype(float)

    def jloss(p):
        A = X
        for l in (1, 2):
            A = jnp.maximum(0, p[f"W{l}"] @ A + p[f"b{l}"])
        AL = jax.nn.sigmoid(p["W3"] @ A + p["b3"])
        return -jnp.mean(Y * jnp.log(AL) + (1 - Y) * jnp.log(1 - AL))

    def grads_of(o):  # the dW, db of the returned grads, in the parameters' order
        g = o[1]
        return {k: g["d" + k] for k in parameters}
    return dict(fn=P.L_layer_gradients, wrt=("parameters",), args=(parameters, X, Y), kwargs={},
                loss=jloss, out=grads_of, primal_loss=lambda o: o[0])


def case_propagate():
    rng = _rng(3)
    w = 0.3 * rng.normal(size=(4, 1))
    b = 0.2
    X = rng.normal(size=(4, 9))
    Y = (rng.random(size=(1, 9)) > 0.5).astype(float)

    def jloss(p):
        A = jax.nn.sigmoid(p["w"].T @ X + p["b"])
        return -jnp.mean(Y * jnp.log(A) + (1 - Y) * jnp.log(1 - A))
    return dict(fn=P.propagate, wrt=("w", "b"), args=(w, b, X, Y), kwargs={},
                loss=jloss, out=lambda o: {"w": o[0]["dw"], "b": o[0]["db"]},
                params_of=lambda a: {"w": a[0], "b": a[1]}, primal_loss=lambda o: o[1])


def case_fstring():
    rng = _rng(4)
    params = {"W1": rng.normal(size=(5, 3)) / 2, "b1": 0.1 * rng.normal(size=5),
              "W2": rng.normal(size=(2, 5)) / 2, "b2": 0.1 * rng.normal(size=2)}
    X = rng.normal(size=(3, 7))
    T = rng.normal(size=(2, 7))

    def jloss(p):
        h = jnp.tanh(p["W1"] @ X + p["b1"][:, None])
        y = p["W2"] @ h + p["b2"][:, None]
        return 0.5 * jnp.sum((y - T) ** 2) / 7 + 0.5e-3 * sum(jnp.sum(v ** 2) for v in p.values())
    return dict(fn=P.fstring_layers, wrt=("params",), args=(params, X, T), kwargs={},
                loss=jloss, out=lambda o: o)


def case_checks():
    rng = _rng(5)
    W, x = rng.normal(size=(3, 4)) / 2, rng.normal(size=4)
    return dict(fn=P.with_checks, wrt=("W",), args=(W, x), kwargs={}, loss=None)


def case_checks_scaled():
    rng = _rng(5)
    W, x = rng.normal(size=(3, 4)) / 2, rng.normal(size=4)
    return dict(fn=P.with_checks, wrt=("W", "scale"), args=(W, x, 1.5), kwargs={"verbose": True},
                loss=None)


def case_batchnorm(mode):
    rng = _rng(6)
    x, g, b = rng.normal(size=(5, 3)), rng.normal(size=3), rng.normal(size=3)
    return dict(fn=P.batchnorm, wrt=("x", "gamma", "beta"), args=(x, g, b), kwargs={"mode": mode},
                loss=None)


def case_keywords():
    return dict(fn=P.calls_helper_with_keywords, wrt=("W",), args=(_rng(7).normal(size=(2, 3)),),
                kwargs={}, loss=None)


def case_network():
    net = P.Network([3, 5, 2], seed=1)
    rng = _rng(8)
    x = rng.normal(size=(3, 1))  # the book's backprop takes one example, a column
    y = np.array([[0.0], [1.0]])

    def jloss(p):
        a = x
        for b, w in zip(p["biases"], p["weights"]):
            a = jax.nn.sigmoid(w @ a + b)
        return jnp.sum(-y * jnp.log(a) - (1 - y) * jnp.log(1 - a))
    return dict(fn=P.Network.backprop, wrt=("self.biases", "self.weights"), args=(net, x, y),
                kwargs={}, loss=jloss, out=lambda o: {"biases": o[0], "weights": o[1]},
                params_of=lambda a: {"biases": a[0].biases, "weights": a[0].weights})


def case_layer_objects():
    rng = _rng(10)
    P_ = {"W1": rng.normal(size=(3, 5)), "b1": rng.normal(size=(1, 5)),
          "W2": rng.normal(size=(5, 2)), "b2": rng.normal(size=(1, 2))}
    X, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))

    def jloss(p):
        h = jnp.maximum(0, X @ p["W1"] + p["b1"])
        return jnp.mean((y - (h @ p["W2"] + p["b2"])) ** 2)
    return dict(fn=P.layer_objects, wrt=("W1", "b1", "W2", "b2"), args=(*P_.values(), X, y),
                kwargs={}, loss=jloss, out=lambda o: dict(zip(P_, o[1:])),
                params_of=lambda a: dict(zip(P_, a[:4])), primal_loss=lambda o: o[0])


def case_dtypes():
    rng = _rng(13)
    W, b, X = 0.5 * rng.normal(size=(3, 4)), 0.1 * rng.normal(size=3), rng.normal(size=(4, 5))
    def jax_fn(W, b, X):  # written separately: JAX has no in-place write
        h = jnp.tanh(W @ X + b[:, None])
        h = h.at[0].set(h[0] * 2.0)
        return jnp.sum(h) + jnp.sum(h * h), W.T @ (1.0 - h ** 2)
    return dict(fn=P.keeps_dtype, wrt=("W", "b"), args=(W, b, X), kwargs={}, loss=None,
                jax_fn=jax_fn)


CASES = {
    "two_layer_loss": case_two_layer, "two_layer_scores": case_scores, "L_layer": case_L_layer,
    "propagate": case_propagate, "fstring_layers": case_fstring, "with_checks": case_checks,
    "with_checks_scaled": case_checks_scaled,
    "batchnorm_train": lambda: case_batchnorm("train"), "batchnorm_test": lambda: case_batchnorm("test"),
    "helper_keywords": case_keywords, "network_method": case_network,
    "layer_objects": case_layer_objects, "dtypes": case_dtypes,
}


@functools.lru_cache(maxsize=None)
def compiled(name, mode):
    c = CASES[name]()
    return c, rop(wrt=c["wrt"], mode=mode)(c["fn"])


def get_path(bound, w):
    head, *rest = w.split(".")
    x = bound[head]
    for r in rest:
        x = getattr(x, r)
    return x


def set_path(bound, w, value):
    """``bound`` with ``w`` (a parameter or ``self.attr``) replaced; objects are copied."""
    head, *rest = w.split(".")
    if not rest:
        bound[head] = value
        return
    obj = copy.copy(bound[head])
    setattr(obj, rest[0], value)
    bound[head] = obj


def direction(c, rng):
    """A direction per wrt parameter, shaped like it (a dict for a dict parameter)."""
    import inspect
    names = list(inspect.signature(c["fn"]).parameters)
    bound = dict(zip(names, c["args"]))
    bound.update(c["kwargs"])
    return tuple(tmap(lambda x: rng.normal(size=np.shape(x)) if np.ndim(x) else float(rng.normal()),
                      get_path(bound, w)) for w in c["wrt"]), bound


def call_original(c, bound, shift=None):
    b = dict(bound)
    if shift is not None:
        for w, d, eps in shift:
            set_path(b, w, tmap(lambda x, dx: x + eps * dx, get_path(b, w), d))
    return c["fn"](**b)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(CASES))
def test_primal_and_hvp(name, mode):
    c, f = compiled(name, mode)
    rng = _rng(11)
    v, bound = direction(c, rng)
    before, v_before = snapshot(bound), snapshot(v)
    out, r_out = f.hvp(*c["args"], v=v, **c["kwargs"])
    assert unchanged(bound, before), "an argument was modified"
    for w in c["wrt"]:
        assert unchanged(get_path(bound, w), get_path(before, w)), f"{w} was modified"
    assert unchanged(v, v_before), "a direction was modified"
    ref = call_original(c, bound)
    assert same_structure(out, ref), (out, ref)
    assert rel(out, ref) <= 1e-13
    assert same_structure(r_out, ref)
    # central differences of the original function
    errs = []
    for eps in (1e-4, 1e-6):
        shift_p = [(w, d, eps) for w, d in zip(c["wrt"], v)]
        shift_m = [(w, d, -eps) for w, d in zip(c["wrt"], v)]
        fp, fm = call_original(c, bound, shift_p), call_original(c, bound, shift_m)
        fd = tmap(lambda a, b: (np.asarray(a, float) - np.asarray(b, float)) / (2 * eps), fp, fm)
        errs.append(rel(r_out, fd))
    assert min(errs) <= 1e-6, errs
    # the independent oracle
    if c.get("loss") is not None:
        params = c.get("params_of", lambda a: a[0])(c["args"])
        vp = dict(zip(params, v)) if "params_of" in c else v[0]
        if c["fn"] is P.Network.backprop:
            vp = {"biases": list(v[0]), "weights": list(v[1])}
        jp = tmap(jnp.asarray, params)
        jv = tmap(jnp.asarray, vp)
        g, hv = jax.jvp(jax.grad(c["loss"]), (jp,), (jv,))
        assert rel(c["out"](out), g) <= 1e-10, "the program's gradient differs from JAX's"
        assert rel(c["out"](r_out), hv) <= 1e-8, "Hv differs from JAX's jvp(grad)"
        assert abs(float(c["primal_loss"](out)) - float(c["loss"](jp))) <= 1e-10 * max(1.0, abs(float(c["loss"](jp)))) \
            if "primal_loss" in c else True
    else:
        jf = c.get("jax_fn") or jax_oracle.jax_namespace(P)[c["fn"].__name__]
        wrt = list(c["wrt"])

        def g(*ps):
            b = {k: tmap(lambda x: jnp.asarray(x) if isinstance(x, np.ndarray) else x, x)
                 for k, x in bound.items()}
            b.update(dict(zip(wrt, ps)))
            return jf(**b)
        prim = tuple(tmap(jnp.asarray, bound[w]) for w in wrt)
        tan = tuple(tmap(lambda d: jnp.asarray(d, dtype=jnp.float64), d) for d in v)
        _, jt = jax.jvp(g, prim, tan)
        assert rel(r_out, tmap(np.asarray, jt)) <= 1e-10


@pytest.mark.parametrize("name", ["two_layer_loss", "L_layer", "fstring_layers"])
def test_modes_agree_and_hvp_is_symmetric(name):
    cn, fn = compiled(name, "numba")
    cp, fp = compiled(name, "python")
    rng = _rng(12)
    u, _ = direction(cn, rng)
    v, _ = direction(cn, rng)
    on, rv = fn.hvp(*cn["args"], v=v, **cn["kwargs"])
    op, rp = fp.hvp(*cp["args"], v=v, **cp["kwargs"])
    assert rel(rv, rp) <= 1e-12 and rel(on, op) <= 1e-12
    _, ru = fn.hvp(*cn["args"], v=u, **cn["kwargs"])
    Hu, Hv = cn["out"](ru), cn["out"](rv)  # dicts keyed like the parameters

    def pdot(a, b):
        return sum(float(np.sum(np.asarray(a[k]) * np.asarray(b[k]))) for k in a)
    a, b = pdot(u[0], Hv), pdot(v[0], Hu)
    assert abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1e-12), (a, b)


@pytest.mark.parametrize("mode", MODES)
def test_runtime_checks_raise_with_the_message(mode):
    f = rop(wrt=("W",), mode=mode)(P.with_checks)
    W = np.ones((3, 4))
    with pytest.raises(AssertionError, match="W and x do not fit"):
        f.hvp(W, np.ones(5), v=W)
    with pytest.raises(ValueError, match="x must be a vector"):
        f.hvp(W, np.ones((4, 1)), v=W)
    g = rop(wrt=("x",), mode=mode)(P.batchnorm)
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match='Invalid forward batchnorm mode "eval"'):
        g.hvp(x, np.ones(3), np.ones(3), mode="eval", v=x)


def test_each_static_value_compiles_its_own_code():
    c, f = compiled("two_layer_loss", "python")
    params, X, y = c["args"]
    V = {k: np.ones_like(p) for k, p in params.items()}
    f.hvp(params, X, y, reg=0.1, v=V)
    src_loss = f.hvp.source
    f.hvp(params, X, v=V)
    src_scores = f.hvp.source
    assert "softmax" not in src_scores and "np.exp" not in src_scores  # y is None: scores only
    assert "np.exp" in src_loss
    assert "R_params_W1" in src_loss  # a dict's values are parameters of their own


@pytest.mark.parametrize("fn, wrt, call, line_text, message, hint", [
    (P.store_into_dict_argument, ("params",), lambda f, p, X: f.hvp(p, X, v=p),
     "params['W1'] = params['W1'] * 2.0", "it is a dict argument", "new dict"),
    (P.key_from_run_time_value, ("params",), lambda f, p, X: f.hvp(p, X, v=p),
     "out = out + params['W' + str(t)]", "must be known at compile time", "unrolled"),
    (P.key_on_one_path, ("params",), lambda f, p, X: f.hvp(p, X, v=p),
     "if X[0, 0] > 0:", "set on one side of this `if` only", "both sides"),
    (P.missing_key, ("params",), lambda f, p, X: f.hvp(p, X, v=p),
     "return params['W3'] @ X", "KeyError: 'W3'", "set the key"),
])
def test_dict_refusals_name_the_line(fn, wrt, call, line_text, message, hint):
    f = rop(wrt=wrt, mode="python")(fn)
    p = {"W1": np.ones((2, 2)), "W": np.ones((2, 2))}
    with pytest.raises(RopSyntaxError) as info:
        call(f, p, np.ones((2, 2)))
    e = info.value
    assert e.filename.endswith("statics_programs.py")
    assert line_text in e.source_line
    assert message in e.message, e.message
    assert hint in e.hint, e.hint


@pytest.mark.parametrize("mode", MODES)
def test_dict_keys_from_the_length_of_a_list_argument(mode):
    """``for t in range(len(inputs))`` building keys ``xs[t]``: the length of ``inputs`` is
    compiled in, one specialisation per length, each checked against the original function
    and central differences."""
    f = rop(wrt=("Wxh", "Whh", "Why"), mode=mode)(P.char_rnn_loss)
    rng = _rng(14)
    V, H = 4, 3
    Wxh, Whh, Why = (0.5 * rng.normal(size=s) for s in ((H, V), (H, H), (V, H)))
    hprev = 0.1 * rng.normal(size=(H, 1))
    v = tuple(rng.normal(size=w.shape) for w in (Wxh, Whh, Why))
    for inputs, targets in (([0, 2, 1], [2, 1, 3]), ([1, 3, 0, 0, 2], [3, 0, 0, 2, 1]), ([2], [0])):
        args = (inputs, targets, hprev, Wxh, Whh, Why)
        before = snapshot((args, v))
        out, r_out = f.hvp(*args, v=v)
        assert unchanged((args, v), before)
        ref = P.char_rnn_loss(*args)
        assert rel(out, ref) <= 1e-13
        errs = []
        for eps in (1e-4, 1e-6):
            plus = P.char_rnn_loss(inputs, targets, hprev, *(w + eps * d for w, d in zip(args[3:], v)))
            minus = P.char_rnn_loss(inputs, targets, hprev, *(w - eps * d for w, d in zip(args[3:], v)))
            errs.append(rel(r_out, tmap(lambda a, b: (np.asarray(a) - np.asarray(b)) / (2 * eps),
                                        plus, minus)))
        assert min(errs) <= 1e-6, (len(inputs), errs)
    assert len(f.hvp._compiled) == 3  # one specialisation per length


@pytest.mark.parametrize("fn, line_text, message, hint", [
    (P.dtype_of_data, "astype(labels.dtype)", "cannot tell at compile time that `labels` is a "
     "floating-point array", "write `float`"),
    (P.astype_no_copy_of_data, "X.astype(float, copy=False)", "returns `X` itself",
     "leave out copy=False"),
])
def test_dtype_refusals_name_the_line(fn, line_text, message, hint):
    """``.dtype`` is a compile-time constant only where rop proves the value floating (then it
    is float64); a data argument may hold integers, so its dtype is not guessed."""
    f = rop(wrt=("W",), mode="python")(fn)
    W = np.ones((2, 2))
    with pytest.raises(RopSyntaxError) as info:
        f.hvp(W, np.ones((2, 2)), v=W)
    e = info.value
    assert e.filename.endswith("statics_programs.py")
    assert line_text in e.source_line
    assert message in e.message, e.message
    assert hint in e.hint, e.hint


@pytest.mark.parametrize("fn, message, hint", [
    (P.calls_helper_without_argument, "missing the argument `x`", "parameters without a default"),
    (P.calls_helper_with_unknown_keyword, "unexpected keyword argument `slope`", "x, scale, shift"),
])
def test_helper_argument_errors(fn, message, hint):
    with pytest.raises(RopSyntaxError) as info:
        rop(wrt=("W",), mode="python")(fn)
    assert message in info.value.message and hint in info.value.hint


def test_direction_for_a_dict_must_have_its_keys():
    c, f = compiled("two_layer_loss", "python")
    params, X, y = c["args"]
    bad = {k: np.ones_like(p) for k, p in params.items() if k != "b2"}
    with pytest.raises(RopCallError, match="lacks 'b2'"):
        f.hvp(params, X, y, v=bad)
    with pytest.raises(RopCallError, match="must be a dict"):
        f.hvp(params, X, y, v=[np.ones(3)])


class TanhModel:
    """``@rop`` on a method: ``m.grad.hvp(x, v=...)`` passes ``m`` as ``self``."""

    scale = 0.5  # a class attribute: a constant

    def __init__(self, W):
        self.W = W

    @rop(wrt=("self.W",), mode="python")
    def grad(self, x):
        y = np.tanh(self.W @ x)
        return self.scale * np.outer((1.0 - y ** 2) * y, x)  # d/dW of scale/2 * |tanh(Wx)|^2


def test_decorated_method():
    rng = _rng(9)
    m = TanhModel(rng.normal(size=(3, 4)) / 2)
    x = rng.normal(size=4)
    V = rng.normal(size=(3, 4))
    W0 = m.W.copy()
    g, Hv = m.grad.hvp(x, v=V)
    assert np.array_equal(g, TanhModel.grad.fn(m, x)) and np.array_equal(m.grad(x), g)
    assert np.array_equal(m.W, W0)
    eps = 1e-5
    fd = (TanhModel.grad.fn(TanhModel(W0 + eps * V), x) -
          TanhModel.grad.fn(TanhModel(W0 - eps * V), x)) / (2 * eps)
    assert rel(Hv, fd) < 1e-7
    assert "R_self_W" in m.grad.hvp.source


@pytest.mark.parametrize("mode", MODES)
def test_returned_dicts_on_every_call(mode):
    """The second call takes the fast path: its results are dicts too (an array-only call
    signature whose results hold a dict)."""
    c, f = compiled("propagate", mode)
    w, b, X, Y = c["args"]
    v = (np.ones_like(w), 1.0)
    for _ in range(3):
        out, r = f.hvp(w, b, X, Y, v=v)
        assert isinstance(out[0], dict) and isinstance(r[0], dict) and set(r[0]) == {"dw", "db"}
