"""Backprop code as courses, books and tutorials write it (tests/course_programs.py) through rop.

Every entry of ``ENTRIES`` names a program (a module-level function, or a method taken from
its class: ``rop(wrt=("self.weights", "self.biases"))(Network.backprop)`` called as
``f.hvp(net, x, y, v=(Vw, Vb))``), how to build its arguments (small sizes, a seed from the
name, points away from kinks), its ``wrt`` (a parameter, ``"params"`` for a dict of arrays
whose direction is a dict with the same keys, or an attribute path ``"self.weights"``), its
keyword arguments (passed through ``.hvp(..., reg=0.1, v=...)``) and an ORACLE: a short JAX
function written separately from the program (``jax.numpy``, float64), usually the forward
loss, so that the program's gradient is compared with ``jax.grad`` and R{gradient} with
``jax.jvp(jax.grad(loss))``, the exact Hv.  ``pick`` takes from the program's outputs the part
the oracle computes.

Each program has a status, compiled once per mode ("numba", "python"):

* ``"ok"``: ``.hvp`` returns the original function's outputs (rtol 1e-12), leaves every
  argument and direction bit-for-bit unchanged, its R-outputs match the oracle's ``jax.jvp``
  (rtol 1e-8) and central differences of the ORIGINAL program at steps 1e-4 and 1e-6 (the
  better within 1e-6 relative), and the two modes agree;
* ``("refused", substring)``: rop raises ``RopSyntaxError``/``RopCallError`` whose message
  contains ``substring`` and names course_programs.py and a line of it;
* broken (``BROKEN``, with a diagnosis): a crash inside rop or the generated code, a wrong
  value, a modified input, a mode mismatch, or a refusal that does not say where.  Broken
  programs are left out of the per-mode tests (nothing false is asserted), but they are
  checked against their oracle like every program (test_program_matches_oracle) and stay in
  the report.

``EXPECTED`` records today's status, so that this file fails when a status changes: promote a
program when rop is fixed.  ``python tests/test_courses.py --report [PROGRAM ...]``
recompiles everything (or the programs named) and prints program x mode -> ok /
refused(reason) / broken(reason), with counts.

Status (rop after issue 18), 62 programs: all 62 correct in both modes (the primal, the
R-outputs against JAX and central differences, inputs unchanged, the modes agreeing); nothing
refused, nothing in ``BROKEN``.  ``python tests/test_courses.py --report`` prints the table.
"""

from __future__ import annotations

import collections
import copy
import functools
import inspect
import os
import re
import sys
from typing import Callable, NamedTuple

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

jax.config.update("jax_enable_x64", True)

import course_programs as P  # noqa: E402
from jax_oracle import close  # noqa: E402
from rop import rop  # noqa: E402
from rop.errors import RopCallError, RopSyntaxError  # noqa: E402

MODES = ("numba", "python")
STEPS = (1e-4, 1e-6)
FD_RTOL = 1e-6
ORACLE_RTOL = 1e-8
MODES_RTOL = 1e-12
PRIMAL_RTOL = 1e-12
FILE = "course_programs.py"


# ============================================================================== trees of values
# (arguments, directions and outputs: arrays and numbers nested in tuples, lists and dicts;
# arguments may also be objects whose attributes hold such trees)

def flat(x):
    """The leaves of a tree: tuples and lists in order, dicts by sorted key, None dropped."""
    if isinstance(x, (tuple, list)):
        return [leaf for e in x for leaf in flat(e)]
    if isinstance(x, dict):
        return [leaf for k in sorted(x, key=str) for leaf in flat(x[k])]
    if x is None:
        return []
    return [x]


def numeric(x):
    return isinstance(x, (np.ndarray, float, int, np.number, jax.Array)) and not isinstance(x, bool)


def num_leaves(x):
    return [np.asarray(e, dtype=float) for e in flat(x) if numeric(e)]


def tree_map(f, *xs):
    x = xs[0]
    if isinstance(x, (tuple, list)):
        return type(x)(tree_map(f, *es) for es in zip(*xs))
    if isinstance(x, dict):
        return {k: tree_map(f, *(e[k] for e in xs)) for k in x}
    return f(*xs)


def random_like(rng, x):
    """A random direction shaped like ``x`` (dicts, lists and tuples keep their type)."""
    if isinstance(x, np.ndarray):
        return rng.normal(size=x.shape)
    if isinstance(x, (tuple, list, dict)):
        return tree_map(lambda e: random_like(rng, e), x)
    return float(rng.normal())


def axpy(x, eps, d):
    return tree_map(lambda a, b: a + eps * b, x, d)


def identical(a, b):
    """Bit-for-bit the same tree; objects compare their attributes."""
    if isinstance(a, (tuple, list)) or isinstance(b, (tuple, list)):
        return (type(a) is type(b) and len(a) == len(b)
                and all(identical(x, y) for x, y in zip(a, b)))
    if isinstance(a, dict) or isinstance(b, dict):
        return (type(a) is type(b) and list(a) == list(b)
                and all(identical(a[k], b[k]) for k in a))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
                and a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b))
    if hasattr(a, "__dict__") and not isinstance(a, type) and not callable(a):
        return type(a) is type(b) and identical(vars(a), vars(b))
    return type(a) is type(b) and (a is b or a == b)


def rel_close(got, ref, rtol):
    """Leafwise, numeric leaves only: (ok, worst relative error, message)."""
    g, r = num_leaves(got), num_leaves(ref)
    if len(g) != len(r):
        return False, np.inf, f"{len(g)} numeric leaves, expected {len(r)}"
    try:
        ok, worst = close(g, r, rtol)
    except AssertionError as exc:
        return False, np.inf, str(exc)
    return ok, worst, f"relative error {worst:.2e}"


# ============================================================================== entries

class Entry(NamedTuple):
    name: str
    fn: Callable                 # the program (a function, or a method taken from its class)
    wrt: tuple                   # parameter names or attribute paths ("self.weights")
    make: Callable               # rng -> (args tuple, kwargs dict)
    oracle: Callable             # (wrt values, args, kwargs) -> tree (JAX)
    pick: Callable               # the program's outputs -> the tree the oracle computes


def N(r, *shape):
    return r.normal(size=shape)


def labels(r, n, k):
    return r.integers(0, k, size=n)


def binary(r, *shape):
    return (r.uniform(size=shape) > 0.5).astype(float)


def loss_and_grad(L):
    """The oracle of a program returning (loss, gradient): (L(p), dL/dp) over the wrt tuple p."""
    def oracle(p, a, kw):
        f = functools.partial(L, a=a, kw=kw)
        return f(p), jax.grad(f)(p)
    oracle.gradient = lambda picked: picked[1]  # the gradient, in wrt order, of a pick
    return oracle


def grad_only(L):
    """The oracle of a program returning the gradient only."""
    def oracle(p, a, kw):
        return jax.grad(functools.partial(L, a=a, kw=kw))(p)
    oracle.gradient = lambda picked: picked
    return oracle


def jsig(z):
    return 1.0 / (1.0 + jnp.exp(-z))


def jrelu(z):
    return jnp.where(z > 0, z, 0.0)


def mean_ce(scores, y):
    """Mean cross-entropy of integer labels y (rows of scores are classes)."""
    logp = jax.nn.log_softmax(scores, axis=1)
    return -jnp.mean(logp[jnp.arange(len(y)), y])


def bce(A, Y):
    """Summed binary cross-entropy."""
    return -jnp.sum(Y * jnp.log(A) + (1 - Y) * jnp.log(1 - A))


def hinge(scores, y):
    n = len(y)
    correct = scores[jnp.arange(n), y][:, None]
    m = jnp.maximum(0.0, scores - correct + 1.0)
    m = m.at[jnp.arange(n), y].set(0.0)
    return jnp.sum(m) / n


def away(make, ok, tries=50):
    """Redraw the point until ``ok(args, kwargs)`` (away from kinks and branch boundaries)."""
    def made(r):
        for _ in range(tries):
            args, kw = make(r)
            if ok(args, kw):
                return args, kw
        raise AssertionError("no point away from the kinks")
    return made


def margins_away(scores, y, gap=0.05):
    n = len(y)
    m = scores - scores[np.arange(n), y][:, None] + 1.0
    m[np.arange(n), y] = 1.0
    return np.min(np.abs(m)) > gap


ENTRIES: list[Entry] = []


def E(name, fn, wrt, make, oracle, pick):
    ENTRIES.append(Entry(name, fn, tuple(wrt.split()), make, oracle, pick))


# ------------------------------------------------------------------------------ CS231n

def _two_layer_params(r, D=4, H=5, C=3):
    return {"W1": 0.7 * N(r, D, H), "b1": 0.3 * N(r, H), "W2": 0.7 * N(r, H, C), "b2": 0.3 * N(r, C)}


def _L_two_layer(reg_scale):
    def L(p, a, kw):
        prm, X, y = p[0], a[-2], a[-1]
        h = jrelu(X @ prm["W1"] + prm["b1"])
        s = h @ prm["W2"] + prm["b2"]
        return mean_ce(s, y) + reg_scale * kw["reg"] * (jnp.sum(prm["W1"] ** 2) + jnp.sum(prm["W2"] ** 2))
    return L


E("two_layer_net_loss", P.two_layer_net_loss, "params",
  lambda r: ((_two_layer_params(r), N(r, 6, 4), labels(r, 6, 3)), {"reg": 0.1}),
  loss_and_grad(_L_two_layer(1.0)), lambda o: (o[0], (o[1],)))


def _make_twolayer(r):
    net = P.TwoLayerNet(4, 5, 3, std=0.5)
    net.params = _two_layer_params(r)
    return (net, N(r, 6, 4), labels(r, 6, 3)), {"reg": 0.1}


E("TwoLayerNet.loss", P.TwoLayerNet.loss, "self.params", _make_twolayer,
  loss_and_grad(_L_two_layer(0.5)), lambda o: (o[0], (o[1],)))


def _make_fcnet(r):
    net = P.FullyConnectedNet([5, 4], 3, 3, reg=0.1, weight_scale=0.7)
    for i in (1, 2, 3):
        net.params["b%d" % i] = 0.3 * N(r, net.params["b%d" % i].size)
    return (net, N(r, 6, 3), labels(r, 6, 3)), {}


def _L_fcnet(p, a, kw):
    prm, X, y = p[0], a[1], a[2]
    h = X
    for i in (1, 2):
        h = jrelu(h @ prm["W%d" % i] + prm["b%d" % i])
    s = h @ prm["W3"] + prm["b3"]
    return mean_ce(s, y) + 0.05 * sum(jnp.sum(prm["W%d" % i] ** 2) for i in (1, 2, 3))


E("FullyConnectedNet.loss", P.FullyConnectedNet.loss, "self.params", _make_fcnet,
  loss_and_grad(_L_fcnet), lambda o: (o[0], (o[1],)))

E("affine_forward", P.affine_forward, "x w b",
  lambda r: ((N(r, 2, 3, 2), N(r, 6, 4), N(r, 4)), {}),
  lambda p, a, kw: p[0].reshape(2, -1) @ p[1] + p[2], lambda o: o[0])

E("affine_relu_forward", P.affine_relu_forward, "x w b",
  lambda r: ((N(r, 3, 2, 2), N(r, 4, 5), N(r, 5)), {}),
  lambda p, a, kw: jrelu(p[0].reshape(3, -1) @ p[1] + p[2]), lambda o: o[0])

E("softmax_loss", P.softmax_loss, "x",
  lambda r: ((2.0 * N(r, 5, 4), labels(r, 5, 4)), {}),
  loss_and_grad(lambda p, a, kw: mean_ce(p[0], a[1])), lambda o: (o[0], (o[1],)))

E("svm_loss", P.svm_loss, "x",
  away(lambda r: ((2.0 * N(r, 5, 4), labels(r, 5, 4)), {}),
       lambda a, kw: margins_away(a[0], a[1])),
  loss_and_grad(lambda p, a, kw: hinge(p[0], a[1])), lambda o: (o[0], (o[1],)))


def _L_affine_relu_net(p, a, kw):
    W1, b1, W2, b2 = p
    s = jrelu(a[0] @ W1 + b1) @ W2 + b2
    return mean_ce(s, a[1]) + 0.5 * kw["reg"] * (jnp.sum(W1 ** 2) + jnp.sum(W2 ** 2))


E("affine_relu_net_loss", P.affine_relu_net_loss, "W1 b1 W2 b2",
  lambda r: ((N(r, 6, 4), labels(r, 6, 3), 0.7 * N(r, 4, 5), 0.3 * N(r, 5), 0.7 * N(r, 5, 3),
              0.3 * N(r, 3)), {"reg": 0.1}),
  loss_and_grad(_L_affine_relu_net), lambda o: (o[0], o[1]))


def _svm_point(r):
    return (N(r, 4, 3), N(r, 5, 4), labels(r, 5, 3), 0.1), {}


def _L_svm_W(p, a, kw):
    return hinge(a[1] @ p[0], a[2]) + a[3] * jnp.sum(p[0] ** 2)


def _L_softmax_W(p, a, kw):
    return mean_ce(a[1] @ p[0], a[2]) + 0.5 * a[3] * jnp.sum(p[0] ** 2)


for _name in ("svm_loss_naive", "svm_loss_vectorized"):
    E(_name, getattr(P, _name), "W",
      away(_svm_point, lambda a, kw: margins_away(a[1] @ a[0], a[2])),
      loss_and_grad(_L_svm_W), lambda o: (o[0], (o[1],)))
for _name in ("softmax_loss_naive", "softmax_loss_vectorized"):
    E(_name, getattr(P, _name), "W", _svm_point,
      loss_and_grad(_L_softmax_W), lambda o: (o[0], (o[1],)))


def _bn(x, gamma, beta, eps=1e-5):
    mu = jnp.mean(x, axis=0)
    var = jnp.mean((x - mu) ** 2, axis=0)
    return gamma * (x - mu) / jnp.sqrt(var + eps) + beta


def _oracle_bn(p, a, kw):
    f = lambda p: jnp.sum(a[3] * _bn(*p))  # noqa: E731
    return _bn(*p), jax.grad(f)(p)


E("batchnorm_grads", P.batchnorm_grads, "x gamma beta",
  lambda r: ((N(r, 5, 3) + 1.0, 1.0 + 0.3 * N(r, 3), 0.3 * N(r, 3), N(r, 5, 3),
              {"mode": "train", "eps": 1e-5}), {}),
  _oracle_bn, lambda o: (o[0], o[1:]))


def _make_dropout(r):
    rand = r.uniform(size=(6, 5))
    rand = np.where(np.abs(rand - 0.6) < 0.05, 0.3, rand)
    return (_two_layer_params(r), N(r, 6, 4), labels(r, 6, 3), {"p": 0.6, "mode": "train"},
            rand), {}


def _L_dropout(p, a, kw):
    prm, X, y, rand = p[0], a[1], a[2], a[4]
    h = jrelu(X @ prm["W1"] + prm["b1"]) * ((rand < 0.6) / 0.6)
    return mean_ce(h @ prm["W2"] + prm["b2"], y)


E("dropout_net_loss", P.dropout_net_loss, "params", _make_dropout,
  loss_and_grad(_L_dropout), lambda o: (o[0], (o[1],)))


def _rnn_h(x, h0, Wx, Wh, b):
    hs, h = [], h0
    for t in range(x.shape[1]):
        h = jnp.tanh(x[:, t, :] @ Wx + h @ Wh + b)
        hs.append(h)
    return jnp.stack(hs, axis=1)


def _oracle_rnn(p, a, kw):
    dh = a[5]
    return _rnn_h(*p), jax.grad(lambda p: jnp.sum(dh * _rnn_h(*p)))(p)


E("rnn_grads", P.rnn_grads, "x h0 Wx Wh b",
  lambda r: ((N(r, 2, 3, 4), N(r, 2, 5), 0.5 * N(r, 4, 5), 0.5 * N(r, 5, 5), 0.3 * N(r, 5),
              N(r, 2, 3, 5)), {}),
  _oracle_rnn, lambda o: (o[0], o[1:]))


def _lstm(x, h, c, Wx, Wh, b):
    H = h.shape[1]
    a = x @ Wx + h @ Wh + b
    i, f, o = jsig(a[:, :H]), jsig(a[:, H:2 * H]), jsig(a[:, 2 * H:3 * H])
    c2 = f * c + i * jnp.tanh(a[:, 3 * H:])
    return o * jnp.tanh(c2), c2


def _oracle_lstm(p, a, kw):
    dh, dc = a[6], a[7]

    def L(p):
        h, c = _lstm(*p)
        return jnp.sum(dh * h) + jnp.sum(dc * c)
    return _lstm(*p), jax.grad(L)(p)


E("lstm_step_grads", P.lstm_step_grads, "x prev_h prev_c Wx Wh b",
  lambda r: ((N(r, 2, 3), N(r, 2, 4), N(r, 2, 4), 0.5 * N(r, 3, 16), 0.5 * N(r, 4, 16),
              0.3 * N(r, 16), N(r, 2, 4), N(r, 2, 4)), {}),
  _oracle_lstm, lambda o: ((o[0], o[1]), o[2]))


def _L_caption(p, a, kw):
    We, Wv, bv = p
    cap = a[3]
    cin, cout = cap[:, :-1], cap[:, 1:]
    scores = We[cin] @ Wv + bv
    logp = jax.nn.log_softmax(scores, axis=-1)
    picked = jnp.take_along_axis(logp, cout[..., None], axis=-1)[..., 0]
    return -jnp.sum((cout != 0) * picked) / cap.shape[0]


E("caption_embedding_loss", P.caption_embedding_loss, "W_embed W_vocab b_vocab",
  lambda r: ((N(r, 6, 4), 0.7 * N(r, 4, 6), 0.3 * N(r, 6),
              np.array([[1, 4, 2, 5, 0], [1, 3, 3, 0, 0]])), {}),
  loss_and_grad(_L_caption),
  lambda o: (o[0], (o[1]["W_embed"], o[1]["W_vocab"], o[1]["b_vocab"])))

# ------------------------------------------------------------------------------ deeplearning.ai

E("propagate", P.propagate, "w b",
  lambda r: ((N(r, 3, 1), 0.2, N(r, 3, 5), binary(r, 1, 5)), {}),
  loss_and_grad(lambda p, a, kw: bce(jsig(p[0].T @ a[2] + p[1]), a[3]) / a[3].shape[1]),
  lambda o: (o[1], (o[0]["dw"], o[0]["db"])))


def _deep_params(r, dims):
    prm = {}
    for l in range(1, len(dims)):
        prm["W" + str(l)] = N(r, dims[l], dims[l - 1]) / np.sqrt(dims[l - 1])
        prm["b" + str(l)] = 0.3 * N(r, dims[l], 1)
    return prm


def _deep_forward(prm, X):
    L = len(prm) // 2
    A = X
    for l in range(1, L):
        A = jrelu(prm["W%d" % l] @ A + prm["b%d" % l])
    return jsig(prm["W%d" % L] @ A + prm["b%d" % L])


def _dl_grads(g, L):
    return {k: g["d" + k] for k in ["W%d" % l for l in range(1, L + 1)] + ["b%d" % l for l in range(1, L + 1)]}


E("L_layer_grads", P.L_layer_grads, "parameters",
  lambda r: ((N(r, 3, 6), binary(r, 1, 6), _deep_params(r, [3, 4, 3, 1])), {}),
  loss_and_grad(lambda p, a, kw: bce(_deep_forward(p[0], a[0]), a[1]) / a[1].shape[1]),
  lambda o: (o[0], (_dl_grads(o[1], 3),)))

E("L_model_forward", P.L_model_forward, "parameters",
  lambda r: ((N(r, 3, 6), _deep_params(r, [3, 4, 3, 1])), {}),
  lambda p, a, kw: _deep_forward(p[0], a[0]), lambda o: o[0])


def _L_planar(p, a, kw):
    prm, X, Y = p[0], a[1], a[2]
    A2 = jsig(prm["W2"] @ jnp.tanh(prm["W1"] @ X + prm["b1"]) + prm["b2"])
    return bce(A2, Y) / Y.shape[1]


E("planar_nn_grads", P.planar_nn_grads, "parameters",
  lambda r: ((_deep_params(r, [2, 4, 1]), N(r, 2, 6), binary(r, 1, 6)), {}),
  loss_and_grad(_L_planar), lambda o: (o[0], (_dl_grads(o[1], 2),)))


def _L_l2(p, a, kw):
    prm, X, Y = p[0], a[0], a[1]
    m = Y.shape[1]
    reg = kw["lambd"] / (2 * m) * sum(jnp.sum(prm["W%d" % l] ** 2) for l in (1, 2, 3))
    return bce(_deep_forward(prm, X), Y) / m + reg


E("model_l2_grads", P.model_l2_grads, "parameters",
  lambda r: ((N(r, 3, 6), binary(r, 1, 6), _deep_params(r, [3, 5, 3, 1])), {"lambd": 0.7}),
  loss_and_grad(_L_l2), lambda o: (o[0], (_dl_grads(o[1], 3),)))


def _L_dl_dropout(p, a, kw):
    prm, X, Y, D1, D2 = p[0], a[0], a[1], a[3], a[4]
    kp = kw["keep_prob"]
    A1 = jrelu(prm["W1"] @ X + prm["b1"]) * (D1 < kp) / kp
    A2 = jrelu(prm["W2"] @ A1 + prm["b2"]) * (D2 < kp) / kp
    return bce(jsig(prm["W3"] @ A2 + prm["b3"]), Y) / Y.shape[1]


def _make_dl_dropout(r):
    D1, D2 = r.uniform(size=(5, 6)), r.uniform(size=(3, 6))
    D1, D2 = (np.where(np.abs(D - 0.8) < 0.05, 0.5, D) for D in (D1, D2))
    return (N(r, 3, 6), binary(r, 1, 6), _deep_params(r, [3, 5, 3, 1]), D1, D2), {"keep_prob": 0.8}


E("model_dropout_grads", P.model_dropout_grads, "parameters", _make_dl_dropout,
  loss_and_grad(_L_dl_dropout), lambda o: (o[0], (_dl_grads(o[1], 3),)))


def _dl_rnn_a(prm, a0, x):
    a, out = a0, []
    for t in range(x.shape[2]):
        a = jnp.tanh(prm["Waa"] @ a + prm["Wax"] @ x[:, :, t] + prm["ba"])
        out.append(a)
    return jnp.stack(out, axis=2)


def _oracle_dl_rnn(p, a, kw):
    x, da = a[0], a[3]
    g = jax.grad(lambda p: jnp.sum(da * _dl_rnn_a(p[0], p[1], x)))(p)
    return _dl_rnn_a(p[0], p[1], x), {k: g[0][k] for k in ("Wax", "Waa", "ba")}, g[1]


def _make_dl_rnn(r):
    prm = {"Wax": 0.6 * N(r, 5, 3), "Waa": 0.4 * N(r, 5, 5), "Wya": 0.6 * N(r, 2, 5),
           "ba": 0.3 * N(r, 5, 1), "by": 0.3 * N(r, 2, 1)}
    return (N(r, 3, 2, 4), N(r, 5, 2), prm, N(r, 5, 2, 4)), {}


E("dlai_rnn_grads", P.dlai_rnn_grads, "parameters a0", _make_dl_rnn, _oracle_dl_rnn,
  lambda o: (o[0], {"Wax": o[1]["dWax"], "Waa": o[1]["dWaa"], "ba": o[1]["dba"]}, o[1]["da0"]))

# ------------------------------------------------------------------------------ GRU, RNNs


def _gru(X, H, q):
    Z = jsig(X @ q["W_xz"] + H @ q["W_hz"] + q["b_z"])
    R = jsig(X @ q["W_xr"] + H @ q["W_hr"] + q["b_r"])
    Ht = jnp.tanh(X @ q["W_xh"] + (R * H) @ q["W_hh"] + q["b_h"])
    return Z * H + (1 - Z) * Ht


def _oracle_gru(p, a, kw):
    X, dH = a[0], a[3]
    g = jax.grad(lambda p: jnp.sum(dH * _gru(X, p[0], p[1])))(p)
    return _gru(X, p[0], p[1]), g[1], g[0]


def _make_gru(r):
    prm = {}
    for gate in "zrh":
        prm["W_x" + gate], prm["W_h" + gate] = 0.6 * N(r, 3, 4), 0.5 * N(r, 4, 4)
        prm["b_" + gate] = 0.3 * N(r, 4)
    return (N(r, 2, 3), N(r, 2, 4), prm, N(r, 2, 4)), {}


E("gru_step_grads", P.gru_step_grads, "H params", _make_gru, _oracle_gru,
  lambda o: (o[0], o[1], o[2]))


def _char_rnn(p, inputs, targets, hprev):
    Wxh, Whh, Why, bh, by = p
    h, loss = hprev, 0.0
    for i, t in zip(inputs, targets):
        h = jnp.tanh(Wxh[:, i:i + 1] + Whh @ h + bh)
        loss = loss - jax.nn.log_softmax(Why @ h + by, axis=0)[t, 0]
    return loss, h


def _oracle_char_rnn(p, a, kw):
    inputs, targets, hprev = a[0], a[1], a[2]
    loss, h = _char_rnn(p, inputs, targets, hprev)
    return loss, jax.grad(lambda p: _char_rnn(p, inputs, targets, hprev)[0])(p), h


E("lossFun", P.lossFun, "Wxh Whh Why bh by",
  lambda r: (([0, 3, 1, 4], [3, 1, 4, 2], 0.5 * N(r, 4, 1), 0.5 * N(r, 4, 5), 0.4 * N(r, 4, 4),
              0.5 * N(r, 5, 4), 0.2 * N(r, 4, 1), 0.2 * N(r, 5, 1)), {}),
  _oracle_char_rnn, lambda o: (o[0], o[1:6], o[6]))


def _make_wildml(r):
    model = P.RNNNumpy(4, hidden_dim=3, bptt_truncate=4)
    model.U, model.V, model.W = 0.7 * N(r, 3, 4), 0.7 * N(r, 4, 3), 0.5 * N(r, 3, 3)
    return (model, [0, 2, 1], [2, 1, 3]), {}


def _L_wildml(p, a, kw):
    U, V, W = p
    s, loss = jnp.zeros(3), 0.0
    for i, t in zip(a[1], a[2]):
        s = jnp.tanh(U[:, i] + W @ s)
        loss = loss - jax.nn.log_softmax(V @ s)[t]
    return loss


E("RNNNumpy.bptt", P.RNNNumpy.bptt, "self.U self.V self.W", _make_wildml,
  grad_only(_L_wildml), lambda o: (o[0], o[1], o[2]))

# ------------------------------------------------------------------------------ Nielsen


def _nielsen_a(ws, bs, x):
    a = x
    for w, b in zip(ws, bs):
        a = jsig(w @ a + b)
    return a


def _make_network(cls, **kw):
    def make(r):
        net = cls([3, 4, 2], **kw)
        net.weights = [N(r, 4, 3), N(r, 2, 4)]
        net.biases = [0.5 * N(r, 4, 1), 0.5 * N(r, 2, 1)]
        return (net, N(r, 3, 1), np.array([[1.0], [0.0]])), {}
    return make


def _xent(a, y):
    return jnp.sum(-y * jnp.log(a) - (1 - y) * jnp.log(1 - a))


E("Network.backprop", P.Network.backprop, "self.weights self.biases", _make_network(P.Network),
  grad_only(lambda p, a, kw: 0.5 * jnp.sum((_nielsen_a(p[0], p[1], a[1]) - a[2]) ** 2)),
  lambda o: (o[1], o[0]))


def _make_minibatch(r):
    (net, _, _), _ = _make_network(P.Network)(r)
    batch = [(N(r, 3, 1), np.array([[1.0], [0.0]])), (N(r, 3, 1), np.array([[0.0], [1.0]])),
             (N(r, 3, 1), np.array([[1.0], [0.0]]))]
    return (net, batch), {}


E("Network.mini_batch_gradient", P.Network.mini_batch_gradient, "self.weights self.biases",
  _make_minibatch,
  grad_only(lambda p, a, kw: sum(0.5 * jnp.sum((_nielsen_a(p[0], p[1], x) - y) ** 2)
                                 for x, y in a[1]) / len(a[1])),
  lambda o: (o[0], o[1]))

E("Network2.backprop", P.Network2.backprop, "self.weights self.biases",
  _make_network(P.Network2),
  grad_only(lambda p, a, kw: _xent(_nielsen_a(p[0], p[1], a[1]), a[2])),
  lambda o: (o[1], o[0]))


def _make_network2_data(r):
    (net, _, _), _ = _make_network(P.Network2)(r)
    data = [(N(r, 3, 1), np.array([[1.0], [0.0]])), (N(r, 3, 1), np.array([[0.0], [1.0]]))]
    return (net, data, 0.1), {}


def _L_network2_total(p, a, kw):
    data, lmbda = a[1], a[2]
    n = len(data)
    cost = sum(_xent(_nielsen_a(p[0], p[1], x), y) for x, y in data) / n
    return cost + 0.5 * (lmbda / n) * sum(jnp.sum(w ** 2) for w in p[0])


E("Network2.total_cost_and_gradient", P.Network2.total_cost_and_gradient,
  "self.weights self.biases", _make_network2_data,
  loss_and_grad(_L_network2_total), lambda o: (o[0], (o[1], o[2])))

# ------------------------------------------------------------------------------ nnfs


def _make_nnfs(r):
    d1, d2 = P.Layer_Dense(2, 4), P.Layer_Dense(4, 3)
    d1.weights, d1.biases = N(r, 2, 4), 0.3 * N(r, 1, 4)
    d2.weights, d2.biases = N(r, 4, 3), 0.3 * N(r, 1, 3)
    return (d1, P.Activation_ReLU(), d2, P.Activation_Softmax_Loss_CategoricalCrossentropy(),
            N(r, 6, 2), labels(r, 6, 3)), {}


def _L_nnfs(p, a, kw):
    W1, b1, W2, b2 = p
    return mean_ce(jrelu(a[4] @ W1 + b1) @ W2 + b2, a[5])


E("nnfs_train_step", P.nnfs_train_step,
  "dense1.weights dense1.biases dense2.weights dense2.biases", _make_nnfs,
  loss_and_grad(_L_nnfs), lambda o: (o[0], o[1:]))


def _make_nnfs_softmax(r):
    d1 = P.Layer_Dense(3, 4)
    d1.weights, d1.biases = N(r, 3, 4), 0.3 * N(r, 1, 4)
    return (d1, P.Activation_Softmax(), P.Loss_CategoricalCrossentropy(), N(r, 5, 3),
            labels(r, 5, 4)), {}


E("nnfs_softmax_then_loss", P.nnfs_softmax_then_loss, "dense1.weights dense1.biases",
  _make_nnfs_softmax,
  loss_and_grad(lambda p, a, kw: mean_ce(a[3] @ p[0] + p[1], a[4])), lambda o: (o[0], o[1:]))


def _make_nnfs_binary(r):
    d1, d2 = P.Layer_Dense(2, 4, weight_regularizer_l2=0.01), P.Layer_Dense(4, 1)
    d1.weights, d1.biases = N(r, 2, 4), 0.3 * N(r, 1, 4)
    d2.weights, d2.biases = N(r, 4, 1), 0.3 * N(r, 1, 1)
    return (d1, P.Activation_ReLU(), d2, P.Activation_Sigmoid(), P.Loss_BinaryCrossentropy(),
            N(r, 6, 2), binary(r, 6, 1)), {}


def _L_nnfs_binary(p, a, kw):
    W1, b1, W2, b2 = p
    A = jsig(jrelu(a[5] @ W1 + b1) @ W2 + b2)
    return bce(A, a[6]) / a[6].shape[0] + 0.01 * jnp.sum(W1 ** 2)


E("nnfs_binary_l2_step", P.nnfs_binary_l2_step,
  "dense1.weights dense1.biases dense2.weights dense2.biases", _make_nnfs_binary,
  loss_and_grad(_L_nnfs_binary), lambda o: (o[0], tuple(o[1])))

# ------------------------------------------------------------------------------ RBM, UFLDL


def _npsig(z):
    return 1.0 / (1.0 + np.exp(-z))


def _between(r, p):
    """Uniform numbers well away from the probabilities p (so that sampling is not at a kink)."""
    return np.where(r.uniform(size=p.shape) < 0.5, 0.5 * p, p + 0.5 * (1 - p))


def _make_rbm(r):
    W, vb, hb = 0.8 * N(r, 5, 3), 0.3 * N(r, 5), 0.3 * N(r, 3)
    v0 = binary(r, 4, 5)
    ph0 = _npsig(v0 @ W + hb)
    rand_h0 = _between(r, ph0)
    pv1 = _npsig((ph0 > rand_h0).astype(float) @ W.T + vb)
    return (W, vb, hb, v0, rand_h0, _between(r, pv1)), {}


def _oracle_rbm(p, a, kw):
    W, vb, hb = p
    v0, rh, rv = a[3], a[4], a[5]
    ph0 = jsig(v0 @ W + hb)
    h0 = (ph0 > rh).astype(jnp.float64)
    pv1 = jsig(h0 @ W.T + vb)
    v1 = (pv1 > rv).astype(jnp.float64)
    ph1 = jsig(v1 @ W + hb)
    n = v0.shape[0]
    return ((v0.T @ ph0 - v1.T @ ph1) / n, jnp.mean(v0 - v1, axis=0), jnp.mean(ph0 - ph1, axis=0),
            jnp.sum((v0 - pv1) ** 2) / n)


E("rbm_cd1_update", P.rbm_cd1_update, "W vbias hbias", _make_rbm, _oracle_rbm, lambda o: o)


def _L_sparse_ae(p, a, kw):
    theta, (v, h, lam, rho, beta, data) = p[0], a[1:]
    W1 = theta[:h * v].reshape(h, v)
    W2 = theta[h * v:2 * h * v].reshape(v, h)
    b1, b2 = theta[2 * h * v:2 * h * v + h], theta[2 * h * v + h:]
    m = data.shape[1]
    a2 = jsig(W1 @ data + b1[:, None])
    out = jsig(W2 @ a2 + b2[:, None])
    rho_hat = jnp.mean(a2, axis=1)
    kl = jnp.sum(rho * jnp.log(rho / rho_hat) + (1 - rho) * jnp.log((1 - rho) / (1 - rho_hat)))
    return (jnp.sum((out - data) ** 2) / (2 * m) + lam / 2 * (jnp.sum(W1 ** 2) + jnp.sum(W2 ** 2))
            + beta * kl)


E("sparse_autoencoder_cost", P.sparse_autoencoder_cost, "theta",
  lambda r: ((0.5 * N(r, 2 * 3 * 4 + 3 + 4), 4, 3, 1e-3, 0.1, 3.0, r.uniform(0.1, 0.9, (4, 6))), {}),
  loss_and_grad(_L_sparse_ae), lambda o: (o[0], (o[1],)))

# ------------------------------------------------------------------------------ Ng's courses

E("gradient_univariate", P.gradient_univariate, "theta",
  lambda r: ((N(r, 2), N(r, 6), N(r, 6)), {}),
  loss_and_grad(lambda p, a, kw: jnp.sum((p[0][0] + p[0][1] * a[1] - a[2]) ** 2) / (2 * len(a[2]))),
  lambda o: (o[0], (o[1],)))


def _L_cost_reg(p, a, kw):
    theta, X, y, lam = p[0], a[1], a[2], a[3]
    m = y.size
    h = jsig(theta[0] + X @ theta[1:])
    return bce(h, y) / m + lam / (2 * m) * jnp.sum(theta[1:] ** 2)


E("cost_function_reg", P.cost_function_reg, "theta",
  lambda r: ((N(r, 3), N(r, 6, 2), binary(r, 6), 1.0), {}),
  loss_and_grad(_L_cost_reg), lambda o: (o[0], (o[1],)))


def _L_nn_cost(p, a, kw):
    prm, (n_in, n_h, n_lab, X, y) = p[0], a[1:]
    T1 = prm[:n_h * (n_in + 1)].reshape(n_h, n_in + 1)
    T2 = prm[n_h * (n_in + 1):].reshape(n_lab, n_h + 1)
    m = y.size
    h = jsig(T1[:, 0] + X @ T1[:, 1:].T)
    out = jsig(T2[:, 0] + h @ T2[:, 1:].T)
    Y = jax.nn.one_hot(y, n_lab, dtype=jnp.float64)
    reg = kw["lambda_"] / (2 * m) * (jnp.sum(T1[:, 1:] ** 2) + jnp.sum(T2[:, 1:] ** 2))
    return -jnp.sum(Y * jnp.log(out) + (1 - Y) * jnp.log(1 - out)) / m + reg


E("nn_cost_function", P.nn_cost_function, "nn_params",
  lambda r: ((0.7 * N(r, 4 * 4 + 3 * 5), 3, 4, 3, N(r, 5, 3), labels(r, 5, 3)), {"lambda_": 1.0}),
  loss_and_grad(_L_nn_cost), lambda o: (o[0], (o[1],)))


def _L_linreg(p, a, kw):
    w, b = p
    X, y = a[0], a[1]
    m = len(y)
    return jnp.sum((X @ w + b - y) ** 2) / (2 * m) + kw["lambda_"] / (2 * m) * jnp.sum(w ** 2)


E("compute_gradient_linear_reg", P.compute_gradient_linear_reg, "w b",
  lambda r: ((N(r, 5, 3), N(r, 5), N(r, 3), 0.3), {"lambda_": 0.7}),
  grad_only(_L_linreg), lambda o: (o[1], o[0]))


def _L_logreg(p, a, kw):
    w, b = p
    X, y = a[0], a[1]
    m = len(y)
    return bce(jsig(X @ w + b), y) / m + kw["lambda_"] / (2 * m) * jnp.sum(w ** 2)


E("logistic_cost_and_gradient", P.logistic_cost_and_gradient, "w b",
  lambda r: ((N(r, 5, 3), binary(r, 5), N(r, 3), 0.3), {"lambda_": 0.7}),
  loss_and_grad(_L_logreg), lambda o: (o[0], (o[2], o[1])))


def _L_ridge(p, a, kw):
    w, b = p
    X, y = a[2], a[3]
    Xn = (X - X.mean(axis=0)) / jnp.sqrt(jnp.sum((X - X.mean(axis=0)) ** 2, axis=0) / (len(y) - 1))
    return jnp.sum((Xn @ w + b - y) ** 2) / (2 * len(y)) + kw["alpha"] / 2 * jnp.sum(w ** 2)


E("ridge_gradient", P.ridge_gradient, "w b",
  lambda r: ((N(r, 3), 0.2, 2.0 + N(r, 6, 3), N(r, 6)), {"alpha": 0.1}),
  loss_and_grad(_L_ridge), lambda o: (o[0], (o[1], o[2])))

# ------------------------------------------------------------------------------ Pong


def _make_pong(r):
    model = {"W1": N(r, 4, 3) / np.sqrt(3), "W2": N(r, 4) / 2}
    obs = [N(r, 3) for _ in range(5)]
    return (model, obs, [2, 3, 2, 2, 3], [0.0, 0.0, 1.0, 0.0, -1.0], 0.9), {}


def _L_pong(p, a, kw):
    model, (obs, actions, rewards, gamma) = p[0], a[1:]
    adv, run = [], 0.0
    for rw in reversed(rewards):
        run = 0.0 if rw != 0 else run
        run = run * gamma + rw
        adv.insert(0, run)
    adv = np.array(adv)
    adv = (adv - adv.mean()) / adv.std()
    total = 0.0
    for x, act, A in zip(obs, actions, adv):
        prob = jsig(model["W2"] @ jrelu(model["W1"] @ x))
        y = 1.0 if act == 2 else 0.0
        total = total + A * (y * jnp.log(prob) + (1 - y) * jnp.log(1 - prob))
    return total


E("policy_gradient_episode", P.policy_gradient_episode, "model", _make_pong,
  grad_only(_L_pong), lambda o: (o,))

# ------------------------------------------------------------------------------ word2vec


def _L_naive_w2v(p, a, kw):
    c, U = p
    return -jax.nn.log_softmax(U @ c)[a[1]]


E("naive_softmax_loss_and_gradient", P.naive_softmax_loss_and_gradient, "centerWordVec outsideVectors",
  lambda r: ((N(r, 4), 2, N(r, 6, 4)), {}),
  loss_and_grad(_L_naive_w2v), lambda o: (o[0], (o[1], o[2])))


def _L_skipgram(p, a, kw):
    C, U = p
    center, outside, negs = a[0], a[1], a[4]
    c = C[center]
    loss = 0.0
    for o, ks in zip(outside, negs):
        loss = loss - jnp.log(jsig(U[o] @ c)) - sum(jnp.log(jsig(-U[k] @ c)) for k in ks)
    return loss


E("skipgram", P.skipgram, "centerWordVectors outsideVectors",
  lambda r: ((1, [0, 3], N(r, 5, 4), N(r, 5, 4), [[2, 4, 4], [1, 2, 0]]), {}),
  loss_and_grad(_L_skipgram), lambda o: (o[0], (o[1], o[2])))


def _L_cbow(p, a, kw):
    W_in, W_out = p
    h = (W_in[0] + 2 * W_in[2]) / 3
    return -jax.nn.log_softmax(W_out @ h)[1]


E("cbow_window_grads", P.cbow_window_grads, "W_in W_out",
  lambda r: ((N(r, 4, 3), N(r, 5, 3)), {}),
  loss_and_grad(_L_cbow), lambda o: (o[0], (o[1], o[2])))

# ------------------------------------------------------------------------------ assorted


def _L_softmax_reg(p, a, kw):
    W, b = p
    return mean_ce(a[2] @ W + b, a[3]) + 0.5 * kw["reg"] * jnp.sum(W ** 2)


E("softmax_regression_grads", P.softmax_regression_grads, "W b",
  lambda r: ((N(r, 3, 4), 0.3 * N(r, 4), N(r, 6, 3), labels(r, 6, 4)), {"reg": 0.01}),
  loss_and_grad(_L_softmax_reg), lambda o: (o[0], (o[1], o[2])))

_ACTS = ["tanh", "leaky_relu", "softplus", "sigmoid", "linear"]
_JACTS = {"tanh": jnp.tanh, "sigmoid": jsig, "leaky_relu": lambda z: jnp.where(z > 0, z, 0.01 * z),
          "softplus": lambda z: jnp.logaddexp(0.0, z), "linear": lambda z: z}


def _L_variants(p, a, kw):
    Ws, bs = p
    A = a[2]
    for W, b, act in zip(Ws, bs, a[4]):
        A = _JACTS[act](A @ W + b)
    return 0.5 * jnp.sum((A - a[3]) ** 2) / a[2].shape[0]


def _make_variants(r):
    dims = [3, 4, 4, 3, 3, 2]
    Ws = [N(r, dims[i], dims[i + 1]) for i in range(5)]
    bs = [0.3 * N(r, dims[i + 1]) for i in range(5)]
    return (Ws, bs, N(r, 5, 3), N(r, 5, 2), list(_ACTS)), {}


E("mlp_activation_variants", P.mlp_activation_variants, "Ws bs", _make_variants,
  loss_and_grad(_L_variants), lambda o: (o[0], (o[1], o[2])))


def _attention(Wq, Wk, Wv, X):
    Q, K, V = X @ Wq, X @ Wk, X @ Wv
    A = jax.nn.softmax(Q @ jnp.swapaxes(K, 1, 2) / jnp.sqrt(Q.shape[-1]), axis=-1)
    return A @ V


def _oracle_attention(p, a, kw):
    X, dout = a[3], a[4]
    return _attention(*p, X), jax.grad(lambda p: jnp.sum(dout * _attention(*p, X)))(p)


E("attention_forward_backward", P.attention_forward_backward, "Wq Wk Wv",
  lambda r: ((0.6 * N(r, 4, 3), 0.6 * N(r, 4, 3), 0.6 * N(r, 4, 3), N(r, 2, 3, 4), N(r, 2, 3, 3)), {}),
  _oracle_attention, lambda o: (o[0], o[1:]))


def _L_pool(p, a, kw):
    h = a[1] @ p[0]
    pooled = (h[:, 0::2] + h[:, 1::2]) / 2
    return 0.5 * jnp.sum((pooled - a[2]) ** 2) / a[1].shape[0]


E("avgpool_regression_grads", P.avgpool_regression_grads, "W",
  lambda r: ((N(r, 3, 6), N(r, 5, 3), N(r, 5, 3)), {}),
  loss_and_grad(_L_pool), lambda o: (o[0], (o[1],)))


def _L_monotone(p, a, kw):
    logs, start = p
    mu = start + jnp.cumsum(jnp.exp(logs))
    return 0.5 * jnp.sum((mu - a[2]) ** 2)


E("monotone_fit_grads", P.monotone_fit_grads, "log_increments start",
  lambda r: ((0.5 * N(r, 5), 0.3, np.cumsum(r.uniform(0.5, 1.5, 5))), {}),
  loss_and_grad(_L_monotone), lambda o: (o[0], (o[1], o[2])))

# ------------------------------------------------------------------------------ smaller pieces


def _ln(x, gamma, beta, eps=1e-5):
    mu = jnp.mean(x, axis=1, keepdims=True)
    var = jnp.mean((x - mu) ** 2, axis=1, keepdims=True)
    return gamma * (x - mu) / jnp.sqrt(var + eps) + beta


def _oracle_ln(p, a, kw):
    return _ln(*p), jax.grad(lambda p: jnp.sum(a[3] * _ln(*p)))(p)


E("layernorm_grads", P.layernorm_grads, "x gamma beta",
  lambda r: ((N(r, 4, 5), 1.0 + 0.3 * N(r, 5), 0.3 * N(r, 5), N(r, 4, 5)), {}),
  _oracle_ln, lambda o: (o[0], o[1:]))


def _oracle_embed(p, a, kw):
    x, dout = a[1], a[2]
    return p[0][x], jax.grad(lambda W: jnp.sum(dout * W[x]))(p[0])


E("word_embedding_grads", P.word_embedding_grads, "W",
  lambda r: ((N(r, 5, 3), np.array([[0, 3, 3], [4, 0, 1]]), N(r, 2, 3, 3)), {}),
  _oracle_embed, lambda o: o)


def _oracle_softmax_bwd(p, a, kw):
    dv = a[1]
    return (jax.nn.softmax(p[0], axis=1),
            jax.grad(lambda z: jnp.sum(dv * jax.nn.softmax(z, axis=1)))(p[0]))


E("softmax_backward_jacobian", P.softmax_backward_jacobian, "inputs",
  lambda r: ((N(r, 3, 4), N(r, 3, 4)), {}), _oracle_softmax_bwd, lambda o: o)

E("logistic_loss_logaddexp", P.logistic_loss_logaddexp, "w b",
  lambda r: ((N(r, 3), 0.2, N(r, 6, 3), 2.0 * binary(r, 6) - 1.0), {}),
  loss_and_grad(lambda p, a, kw: jnp.mean(jnp.logaddexp(0.0, -a[3] * (a[2] @ p[0] + p[1])))),
  lambda o: (o[0], (o[1], o[2])))

E("linear_classifier_loss", P.linear_classifier_loss, "W",
  lambda r: ((N(r, 3, 4), N(r, 6, 3), labels(r, 6, 4)), {"reg": 0.1}),
  loss_and_grad(lambda p, a, kw: mean_ce(a[1] @ p[0], a[2]) + 0.5 * kw["reg"] * jnp.sum(p[0] ** 2)),
  lambda o: (o[0], (o[1],)))


def _L_vanilla_rnn(p, a, kw):
    Wxh, Whh, Why = p
    h, loss = jnp.zeros(Whh.shape[0]), 0.0
    for x, y in zip(a[3], a[4]):
        h = jnp.tanh(Wxh @ x + Whh @ h)
        loss = loss + 0.5 * jnp.sum((Why @ h - y) ** 2)
    return loss


E("vanilla_rnn_bptt", P.vanilla_rnn_bptt, "Wxh Whh Why",
  lambda r: ((0.6 * N(r, 5, 3), 0.4 * N(r, 5, 5), 0.6 * N(r, 2, 5), N(r, 4, 3), N(r, 4, 2)), {}),
  loss_and_grad(_L_vanilla_rnn), lambda o: (o[0], o[1:]))

E("output_layer_grads", P.output_layer_grads, "w b",
  lambda r: ((N(r, 2, 3), 0.5 * N(r, 2, 1), N(r, 3, 1), np.array([[0.0], [1.0]])), {}),
  grad_only(lambda p, a, kw: _xent(jsig(p[0] @ a[2] + p[1]), a[3])), lambda o: o)


def _L_hidden_act(p, a, kw):
    Ws, bs = p
    A = a[2]
    for l, (W, b) in enumerate(zip(Ws, bs)):
        A = A @ W + b
        if l < len(Ws) - 1:
            A = jnp.tanh(A)
    return 0.5 * jnp.sum((A - a[3]) ** 2) / a[2].shape[0]


E("hidden_activation_mlp", P.hidden_activation_mlp, "Ws bs",
  lambda r: (([N(r, 3, 4), N(r, 4, 4), N(r, 4, 2)], [0.3 * N(r, 4), 0.3 * N(r, 4), 0.3 * N(r, 2)],
              N(r, 5, 3), N(r, 5, 2)), {"hidden": "tanh"}),
  loss_and_grad(_L_hidden_act), lambda o: (o[0], (o[1], o[2])))

E("clipped_linear_grads", P.clipped_linear_grads, "W b",
  lambda r: ((N(r, 3, 2), 0.3 * N(r, 2), N(r, 6, 3), N(r, 6, 2)), {}),
  loss_and_grad(lambda p, a, kw: 0.5 * jnp.sum((a[2] @ p[0] + p[1] - a[3]) ** 2) / a[2].shape[0]),
  lambda o: (o[0], (o[1], o[2])))

# ------------------------------------------------------------------------------ CS231n conv


def _conv(x, w, b):
    out = jax.lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)),
                                       precision=jax.lax.Precision.HIGHEST)
    return out + b[None, :, None, None]


def _oracle_conv(p, a, kw):
    dout = a[3]
    return _conv(*p), jax.grad(lambda p: jnp.sum(dout * _conv(*p)))(p)


E("conv_grads", P.conv_grads, "x w b",
  lambda r: ((N(r, 2, 2, 4, 4), 0.5 * N(r, 3, 2, 3, 3), 0.3 * N(r, 3), N(r, 2, 3, 4, 4),
              {"stride": 1, "pad": 1}), {}),
  _oracle_conv, lambda o: (o[0], o[1:]))


def _pool(x):
    N_, C, H, W = x.shape
    return jnp.max(x.reshape(N_, C, H // 2, 2, W // 2, 2), axis=(3, 5))


def _oracle_pool(p, a, kw):
    dout = a[1]
    return _pool(p[0]), jax.grad(lambda x: jnp.sum(dout * _pool(x)))(p[0])


E("max_pool_grads", P.max_pool_grads, "x",
  lambda r: ((N(r, 2, 2, 4, 4), N(r, 2, 2, 2, 2), {"pool_height": 2, "pool_width": 2, "stride": 2}), {}),
  _oracle_pool, lambda o: o)

ENTRY = {e.name: e for e in ENTRIES}


# ============================================================================== today's status
# (rop at the commit this file was written against; a change of status fails the tests:
# promote programs here as rop is fixed)

EXPECTED: dict = {
    "cbow_window_grads": "ok",
    "skipgram": "ok",
    "two_layer_net_loss": "ok",
    "TwoLayerNet.loss": "ok",
    "affine_forward": "ok",
    "affine_relu_forward": "ok",
    "softmax_loss": "ok",
    "svm_loss": "ok",
    "affine_relu_net_loss": "ok",
    "svm_loss_naive": "ok",
    "svm_loss_vectorized": "ok",
    "softmax_loss_naive": "ok",
    "softmax_loss_vectorized": "ok",
    "batchnorm_grads": "ok",
    "dropout_net_loss": "ok",
    "lstm_step_grads": "ok",
    "caption_embedding_loss": "ok",
    "propagate": "ok",
    "L_layer_grads": "ok",
    "L_model_forward": "ok",
    "planar_nn_grads": "ok",
    "model_l2_grads": "ok",
    "model_dropout_grads": "ok",
    "dlai_rnn_grads": "ok",
    "gru_step_grads": "ok",
    "lossFun": "ok",
    "Network.backprop": "ok",
    "Network.mini_batch_gradient": "ok",
    "Network2.backprop": "ok",
    "Network2.total_cost_and_gradient": "ok",
    "nnfs_train_step": "ok",
    "nnfs_softmax_then_loss": "ok",
    "nnfs_binary_l2_step": "ok",
    "rbm_cd1_update": "ok",
    "sparse_autoencoder_cost": "ok",
    "gradient_univariate": "ok",
    "cost_function_reg": "ok",
    "nn_cost_function": "ok",
    "compute_gradient_linear_reg": "ok",
    "logistic_cost_and_gradient": "ok",
    "ridge_gradient": "ok",
    "naive_softmax_loss_and_gradient": "ok",
    "softmax_regression_grads": "ok",
    "mlp_activation_variants": "ok",
    "attention_forward_backward": "ok",
    "avgpool_regression_grads": "ok",
    "monotone_fit_grads": "ok",
    "layernorm_grads": "ok",
    "word_embedding_grads": "ok",
    "softmax_backward_jacobian": "ok",
    "logistic_loss_logaddexp": "ok",
    "linear_classifier_loss": "ok",
    "vanilla_rnn_bptt": "ok",
    "output_layer_grads": "ok",
    "hidden_activation_mlp": "ok",
    "clipped_linear_grads": "ok",
    "conv_grads": "ok",
    "max_pool_grads": "ok",
    "policy_gradient_episode": "ok",
    "RNNNumpy.bptt": "ok",
    "FullyConnectedNet.loss": "ok",
    "rnn_grads": "ok",
}

BROKEN: dict[str, str] = {
}

OK = [n for n, s in EXPECTED.items() if s == "ok"]
REFUSED = [n for n, s in EXPECTED.items() if s != "ok"]


# ============================================================================== running, once

def wrt_values(entry, args):
    """The values of the wrt parameters (attribute paths followed) in ``args``."""
    names = list(inspect.signature(entry.fn).parameters)
    out = []
    for w in entry.wrt:
        head, *attrs = w.split(".")
        x = args[names.index(head)]
        for at in attrs:
            x = getattr(x, at)
        out.append(x)
    return tuple(out)


def with_wrt(entry, args, values):
    """A deep copy of ``args`` with the wrt parameters replaced by ``values``."""
    names = list(inspect.signature(entry.fn).parameters)
    args = list(copy.deepcopy(args))
    for w, val in zip(entry.wrt, values):
        head, *attrs = w.split(".")
        i = names.index(head)
        if not attrs:
            args[i] = val
        else:
            obj = args[i]
            for at in attrs[:-1]:
                obj = getattr(obj, at)
            setattr(obj, attrs[-1], val)
    return tuple(args)


@functools.lru_cache(maxsize=None)
def point(name):
    """(args, kwargs, v): the pristine inputs (never handed to rop or the program)."""
    entry = ENTRY[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    args, kwargs = entry.make(rng)
    v = tuple(random_like(rng, x) for x in wrt_values(entry, args))
    return tuple(args), dict(kwargs), v


@functools.lru_cache(maxsize=None)
def reference(name):
    args, kwargs, _ = point(name)
    return ENTRY[name].fn(*copy.deepcopy(args), **copy.deepcopy(kwargs))


@functools.lru_cache(maxsize=None)
def finite_differences(name):
    entry = ENTRY[name]
    args, kwargs, v = point(name)
    p = wrt_values(entry, args)
    fds = []
    for eps in STEPS:
        plus = with_wrt(entry, args, [axpy(x, eps, d) for x, d in zip(p, v)])
        minus = with_wrt(entry, args, [axpy(x, -eps, d) for x, d in zip(p, v)])
        fp = num_leaves(entry.fn(*plus, **copy.deepcopy(kwargs)))
        fm = num_leaves(entry.fn(*minus, **copy.deepcopy(kwargs)))
        fds.append([(a - b) / (2 * eps) for a, b in zip(fp, fm)])
    return fds


def jnp_tree(x):
    return tree_map(lambda e: jnp.asarray(e, dtype=jnp.float64), x)


@functools.lru_cache(maxsize=None)
def oracle(name):
    """(the oracle's values, their jvp along v), at the entry's point."""
    entry = ENTRY[name]
    args, kwargs, v = point(name)
    p = jnp_tree(wrt_values(entry, args))
    jvp = jax.jit(lambda p, v: jax.jvp(lambda *q: entry.oracle(q, args, kwargs), p, v))
    return jvp(p, jnp_tree(v))


@functools.lru_cache(maxsize=None)
def compiled(name, mode):
    """(the rop function, None) or (None, the exception of the decoration)."""
    entry = ENTRY[name]
    try:
        return rop(entry.fn, wrt=entry.wrt, mode=mode), None
    except Exception as exc:  # noqa: BLE001 (classified by outcome)
        return None, exc


class Call(NamedTuple):
    out: object
    r: object
    exc: Exception | None
    modified: list


def call_hvp(f, name):
    args, kwargs, v = point(name)
    a, kw, d = copy.deepcopy(args), copy.deepcopy(kwargs), copy.deepcopy(v)
    try:
        out, r = f.hvp(*a, v=d, **kw)
    except Exception as exc:  # noqa: BLE001
        return Call(None, None, exc, [])
    modified = [f"argument {k}" for k, (x, y) in enumerate(zip(args, a)) if not identical(x, y)]
    modified += [f"keyword {k}" for k in kwargs if not identical(kwargs[k], kw[k])]
    modified += [f"direction {k}" for k, (x, y) in enumerate(zip(v, d)) if not identical(x, y)]
    return Call(out, r, None, modified)


@functools.lru_cache(maxsize=None)
def run(name, mode):
    """(exception or None, Call or None)."""
    f, exc = compiled(name, mode)
    if exc is not None:
        return exc, None
    c = call_hvp(f, name)
    return c.exc, c


def first_line(exc):
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def reason(exc):
    """The user-facing message of a refusal, without its file:line:col prefix."""
    text = first_line(exc)
    m = re.search(r"error: (.*)", text)
    return m.group(1) if m else text


def short(exc):
    """``reason`` with the function's name, generated paths and long notes left out."""
    text = reason(exc)
    text = re.split(r"\. Generated file|\. Note: | Generated file", text)[0]
    text = re.sub(r"^\w+\.hvp(: | failed)", lambda m: "<fn>.hvp" + m.group(1), text)
    text = re.sub(r"which is not a parameter of .*", "which is not a parameter", text)
    return text[:240]


def where(exc):
    """The course_programs.py line a refusal names, or None."""
    m = re.search(re.escape(FILE) + r":(\d+)", str(exc))
    return int(m.group(1)) if m else None


def program_lines(entry):
    src, start = inspect.getsourcelines(entry.fn)
    return range(start, start + len(src))


@functools.lru_cache(maxsize=None)
def helper_spans():
    """The line spans of every function and class of course_programs.py."""
    spans = []
    for obj in vars(P).values():
        if inspect.isfunction(obj) or inspect.isclass(obj):
            if getattr(obj, "__module__", None) == P.__name__:
                src, start = inspect.getsourcelines(obj)
                spans.append(range(start, start + len(src)))
    return tuple(spans)


def problems(name, mode):
    """What is wrong with an entry that compiled and ran in ``mode`` (empty: correct)."""
    _, c = run(name, mode)
    out = []
    ref = reference(name)
    ok, _, msg = rel_close(c.out, ref, PRIMAL_RTOL)
    if not ok:
        out.append(f"primal outputs differ from the original's ({msg})")
    if c.modified:
        out.append(f"modified input: {', '.join(c.modified)}")
    entry = ENTRY[name]
    o_val, o_jvp = oracle(name)
    try:
        got_val, got_r = entry.pick(c.out), entry.pick(c.r)
    except Exception as exc:  # noqa: BLE001
        out.append(f"R-outputs not shaped like the outputs: {type(exc).__name__}: {exc}")
        return out
    ok, _, msg = rel_close(got_val, o_val, ORACLE_RTOL)
    if not ok:
        out.append(f"outputs vs oracle: {msg}")
    ok, _, msg = rel_close(got_r, o_jvp, ORACLE_RTOL)
    if not ok:
        out.append(f"wrong R vs the oracle's jax.jvp: {msg}")
    routs, outs = num_leaves(c.r), num_leaves(ref)
    if len(routs) != len(outs):
        out.append(f"R-outputs have {len(routs)} numeric leaves, outputs {len(outs)}")
        return out
    for k, (r, o) in enumerate(zip(routs, outs)):
        errs = []
        for fd in finite_differences(name):
            d = fd[k]
            if r.shape != d.shape:
                errs.append(np.inf)
                continue
            scale = max(float(np.max(np.abs(d), initial=0.0)), float(np.max(np.abs(r), initial=0.0)),
                        1e-2 * float(np.max(np.abs(o), initial=0.0)), 1e-8)
            errs.append(float(np.max(np.abs(r - d), initial=0.0)) / scale)
        if min(errs) > FD_RTOL:
            out.append(f"wrong R vs central differences, output leaf {k}: {min(errs):.2e}")
            break
    return out


@functools.lru_cache(maxsize=None)
def outcome(name, mode):
    """("ok", "") | ("refused", reason) | ("broken", diagnosis)."""
    exc, c = run(name, mode)
    if exc is not None:
        if isinstance(exc, (RopSyntaxError, RopCallError)):
            if "failed inside the generated code" in str(exc):
                return "broken", f"crash inside the generated code: {short(exc)}"
            if where(exc) is None:
                return "broken", f"refused without naming {FILE} and a line: {short(exc)}"
            return "refused", short(exc)
        return "broken", f"crash: {type(exc).__name__}: {first_line(exc)}"[:300]
    found = problems(name, mode)
    if found:
        return "broken", "; ".join(found)[:300]
    return "ok", ""


def modes_agree(name):
    (_, a), (_, b) = run(name, "numba"), run(name, "python")
    ok1, w1, _ = rel_close(a.out, b.out, MODES_RTOL)
    ok2, w2, _ = rel_close(a.r, b.r, MODES_RTOL)
    return ok1 and ok2, max(w1, w2)


def modes_params(names):
    import pytest
    return [pytest.param(n, m, id=f"{n}-{m}") for n in names for m in MODES]


# ============================================================================== the tests

def test_corpus_is_complete():
    assert len(ENTRIES) >= 45, len(ENTRIES)
    assert len(ENTRY) == len(ENTRIES), "duplicate names"
    assert not set(EXPECTED) & set(BROKEN), sorted(set(EXPECTED) & set(BROKEN))
    assert set(EXPECTED) | set(BROKEN) == set(ENTRY), sorted(set(ENTRY) ^ (set(EXPECTED) | set(BROKEN)))
    for n, s in EXPECTED.items():
        assert s == "ok" or (isinstance(s, tuple) and s[0] == "refused" and s[1]), (n, s)


def test_program_matches_oracle():
    """Every program (run by NumPy) computes what its separately written oracle computes: the
    hand-written backward passes are right; and the oracle's jvp agrees with central
    differences of the program (the point is away from kinks)."""
    bad = []
    for name, entry in ENTRY.items():
        args, kwargs, v = point(name)
        a = copy.deepcopy(args)
        out = entry.fn(*a, **copy.deepcopy(kwargs))
        o_val, o_jvp = oracle(name)
        ok, _, msg = rel_close(entry.pick(out), o_val, 1e-10)
        if not ok:
            bad.append(f"{name}: program vs oracle: {msg}")
        # the oracle's tangent against central differences of the program, on the picked part
        p = wrt_values(entry, args)
        fd = []
        for eps in STEPS:
            plus = with_wrt(entry, args, [axpy(x, eps, d) for x, d in zip(p, v)])
            minus = with_wrt(entry, args, [axpy(x, -eps, d) for x, d in zip(p, v)])
            fp = num_leaves(entry.pick(entry.fn(*plus, **copy.deepcopy(kwargs))))
            fm = num_leaves(entry.pick(entry.fn(*minus, **copy.deepcopy(kwargs))))
            fd.append([(x - y) / (2 * eps) for x, y in zip(fp, fm)])
        best = min(close(f, num_leaves(o_jvp), 1.0)[1] for f in fd)
        if best > FD_RTOL:
            bad.append(f"{name}: oracle jvp vs central differences: {best:.2e}")
    assert not bad, "\n".join(bad)


def _need(name, mode):
    exc, c = run(name, mode)
    assert exc is None, f"[{mode}] {type(exc).__name__}: {first_line(exc)}"
    return c


try:
    import pytest as _pytest
except ImportError:  # the --report run needs no pytest
    _pytest = None

if _pytest is not None:
    @_pytest.mark.parametrize("name,mode", modes_params(OK))
    def test_ok(name, mode):
        _need(name, mode)
        found = problems(name, mode)
        assert not found, f"[{mode}] " + "; ".join(found)

    @_pytest.mark.parametrize("name", OK)
    def test_modes_agree(name):
        _need(name, "numba")
        _need(name, "python")
        ok, worst = modes_agree(name)
        assert ok, f"mode='numba' and mode='python' differ: {worst:.2e}"

    @_pytest.mark.parametrize("name,mode", modes_params(
        [n for n in OK if hasattr(ENTRY[n].oracle, "gradient")]))
    def test_hessian_symmetry(name, mode):
        """For a program returning a gradient: <u, H w> = <H u, w> for random u, w."""
        f, _ = compiled(name, mode)
        entry = ENTRY[name]
        args, kwargs, _ = point(name)
        rng = np.random.default_rng(7 + sum(map(ord, name)))
        p = wrt_values(entry, args)
        u = tuple(random_like(rng, x) for x in p)
        w = tuple(random_like(rng, x) for x in p)
        Hu, Hw = (entry.oracle.gradient(entry.pick(f.hvp(*copy.deepcopy(args), v=d,
                                                           **copy.deepcopy(kwargs))[1]))
                  for d in (u, w))

        def dot(a, b):
            return sum(float(np.sum(x * y)) for x, y in zip(num_leaves(a), num_leaves(b)))
        a, b = dot(u, Hw), dot(Hu, w)
        scale = max(abs(a), abs(b), 1e-3 * np.sqrt(dot(u, u) * dot(Hw, Hw)))
        assert abs(a - b) <= 1e-9 * scale, f"[{mode}] <u, Hw> = {a!r}, <Hu, w> = {b!r}"

if _pytest is not None and REFUSED:  # (none today: an empty parametrization would be a skip)
    @_pytest.mark.parametrize("name,mode", modes_params(REFUSED))
    def test_refused(name, mode):
        want = EXPECTED[name][1]
        exc, _ = run(name, mode)
        assert exc is not None, f"[{mode}] not refused any more: promote {name} (expected {want!r})"
        assert isinstance(exc, (RopSyntaxError, RopCallError)), \
            f"[{mode}] {type(exc).__name__} instead of a refusal: {first_line(exc)}"
        assert want in str(exc), f"[{mode}] refused for another reason: {first_line(exc)}"
        line = where(exc)
        assert line is not None, f"[{mode}] the refusal does not name {FILE}:<line>: {first_line(exc)}"
        spans = [program_lines(ENTRY[name]), *helper_spans()]
        assert any(line in s for s in spans), f"[{mode}] line {line} is in no program or helper"


# ============================================================================== the report

def example(name, mode):
    """The program line a refusal or crash names (``file:line: text``), or the rop call."""
    exc, _ = run(name, mode)
    line = where(exc) if exc is not None else None
    if line is None:
        return f"rop(wrt={ENTRY[name].wrt!r})({ENTRY[name].fn.__qualname__})"
    text = inspect.getsource(P).splitlines()[line - 1].strip()
    return f"{FILE}:{line}: {text}"


def program_status(name):
    """The status of a program over both modes: "ok", "refused" or "broken"."""
    st = [outcome(name, m)[0] for m in MODES]
    if st == ["ok", "ok"]:
        return "ok" if modes_agree(name)[0] else "broken"
    if st == ["refused", "refused"] and outcome(name, MODES[0])[1] == outcome(name, MODES[1])[1]:
        return "refused"
    return "broken"


def report(out=sys.stdout, only=None):
    """Recompile everything (or the programs named in ``only``); print program x mode ->
    status, counts and grouped causes."""
    names = list(only) if only else list(ENTRY)
    unknown = [n for n in names if n not in ENTRY]
    if unknown:
        raise SystemExit(f"no program named {', '.join(unknown)}; see ENTRIES")
    compiled.cache_clear()
    run.cache_clear()
    outcome.cache_clear()
    counts = {m: collections.Counter() for m in MODES}
    causes = collections.defaultdict(list)
    w = max(len(n) for n in names)
    print(f"{'program':<{w}}  " + "  |  ".join(MODES), file=out)
    for name in names:
        cells = []
        for mode in MODES:
            status, why = outcome(name, mode)
            counts[mode][status] += 1
            cells.append(status if status == "ok" else f"{status}({why})")
            if status != "ok" and name not in causes[(status, why)]:
                causes[(status, why)].append(name)
        if cells == ["ok", "ok"] and not modes_agree(name)[0]:
            cells = [f"broken(modes differ: {modes_agree(name)[1]:.2e})"] * 2
        text = cells[0] if cells[0] == cells[1] else "  |  ".join(cells)
        print(f"{name:<{w}}  {text}", file=out)
    print(file=out)
    for mode in MODES:
        c = counts[mode]
        print(f"{mode}: {len(names)} programs: ok {c['ok']}, refused {c['refused']}, "
              f"broken {c['broken']}", file=out)
    overall = collections.Counter(program_status(n) for n in names)
    print(f"programs (both modes): ok {overall['ok']}, refused {overall['refused']}, "
          f"broken {overall['broken']}", file=out)
    print("\ncauses (number of programs; [mode] when in one mode only), most frequent first:",
          file=out)
    for (status, why), names in sorted(causes.items(), key=lambda kv: -len(kv[1])):
        shown = [n if all(outcome(n, m) == (status, why) for m in MODES)
                 else f"{n} [{', '.join(m for m in MODES if outcome(n, m) == (status, why))}]"
                 for n in names]
        print(f"  {len(names):3d}  {status}: {why}\n       {', '.join(shown)}", file=out)
        print(f"       e.g. {example(names[0], next(m for m in MODES if outcome(names[0], m) == (status, why)))}",
              file=out)
    changed = []
    for name in names:
        now = program_status(name)
        was = "broken" if name in BROKEN else ("ok" if EXPECTED[name] == "ok" else "refused")
        if now != was:
            changed.append(f"{name}: {was} -> {now}")
    print("\nstatus changed since EXPECTED/BROKEN were written: " + ("; ".join(changed) or "none"),
          file=out)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--report"]:
        report(only=sys.argv[2:])
    else:
        print("usage: python tests/test_courses.py --report [PROGRAM ...]")
