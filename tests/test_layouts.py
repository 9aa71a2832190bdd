"""Speed independent of how the same network is written (issue 22): the Hv generated from
each way of writing the tanh MLP in ``layout_programs.py`` does exactly the matrix-product
work of a hand-written R{backprop} -- the same FLOPs, and no product with a structurally
zero operand (R{X} = 0 in the first layer, however the input reaches it: a list slot made
by index or by ``[X]`` and append, or a name carried around the forward loop).

The FLOPs are counted on the generated code run in ``mode="python"``, where every matrix
product goes through ``rt.gemm``; the Numba build of the same code is checked equal to it.
Hv itself is checked against JAX and central differences at two steps, the primal
against the user's function, and the caller's arrays for untouched.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import layout_programs as P
from conftest import flat_err
from jax_oracle import leaves
from rop import rop
import rop.runtime as rtm

LAYERS, BATCH = (6, 5, 4, 3), 7


def hand_flops():
    """A hand-written R{backprop}'s matrix-product FLOPs, per layer of F = 2 B n_in n_out:
    forward W a, R{W} a + W R{a}; backward d a^T, R{d} a^T + d R{a}^T, and for i > 0
    W^T d, R{W}^T d + W^T R{d} -- less the two products with R{a_0} = 0: 4F for the first
    layer, 9F for each other."""
    F = [2 * BATCH * n * m for n, m in zip(LAYERS[:-1], LAYERS[1:])]
    return 4 * F[0] + 9 * sum(F[1:])


def arguments(name, layout, stored):
    rng = np.random.default_rng(3)
    Ws = [rng.normal(size=(m, n)) / np.sqrt(n) for n, m in zip(LAYERS[:-1], LAYERS[1:])]
    bs = [0.3 * rng.normal(size=m) for m in LAYERS[1:]]
    Vs = [rng.normal(size=W.shape) for W in Ws]
    cs = [rng.normal(size=b.shape) for b in bs]
    X, T = rng.normal(size=(LAYERS[0], BATCH)), rng.normal(size=(LAYERS[-1], BATCH))
    if stored == "io":
        Ws, Vs = [W.T.copy() for W in Ws], [W.T.copy() for W in Vs]
    if layout == "rows":
        X, T = X.T.copy(), T.T.copy()
    if name == "dict3":
        p = {f"W{i + 1}": Ws[i] for i in range(3)} | {f"b{i + 1}": bs[i] for i in range(3)}
        v = {f"W{i + 1}": Vs[i] for i in range(3)} | {f"b{i + 1}": cs[i] for i in range(3)}
        return (p, X, T), (v,)
    return (Ws, bs, X, T), (Vs, cs)


def jax_loss(name, layout, stored):
    """E of the same network, for JAX's Hessian (an oracle independent of the source)."""
    def loss(params, X, T):
        Ws, bs = params
        a = X
        for i, (W, b) in enumerate(zip(Ws, bs)):
            W = W if stored == "oi" else W.T
            a = W @ a + b[:, None] if layout == "cols" else a @ W.T + b
            a = jnp.tanh(a) if i < len(Ws) - 1 else a
        return 0.5 * jnp.sum((a - T) ** 2) / X.shape[1 if layout == "cols" else 0]
    return loss


def as_lists(name, args, v):
    if name == "dict3":
        p, X, T = args
        return ([p[f"W{i}"] for i in (1, 2, 3)], [p[f"b{i}"] for i in (1, 2, 3)]), X, T, \
            ([v[0][f"W{i}"] for i in (1, 2, 3)], [v[0][f"b{i}"] for i in (1, 2, 3)])
    return (args[0], args[1]), args[2], args[3], v


def ordered(name, x):
    """A gradient (or its R) as a list of arrays; dict3's dict in the order W1..W3, b1..b3."""
    if name == "dict3":
        return [x[f"W{i}"] for i in (1, 2, 3)] + [x[f"b{i}"] for i in (1, 2, 3)]
    return leaves(x)


class Counter:
    """Wraps ``rt.gemm`` (the generated Python code looks it up at each call) and counts."""

    def __init__(self, monkeypatch):
        self.flops, self.zero = 0, 0
        orig = rtm.gemm

        def gemm(*a, c=None):
            for x, y in zip(a[::2], a[1::2]):
                if x is not None:
                    self.flops += 2 * x.shape[0] * x.shape[1] * y.shape[1]
                    self.zero += int(not np.any(x) or not np.any(y))
            return orig(*a, c=c)
        monkeypatch.setattr(rtm, "gemm", gemm)


@pytest.fixture(scope="module")
def compiled():
    return {}


@pytest.mark.parametrize("case", P.VARIANTS, ids=lambda c: c[0].__name__)
def test_same_products_as_a_hand_written_r_backprop(case, monkeypatch):
    fn, wrt, layout, stored = case
    f = rop(fn, wrt=wrt, mode="python")
    args, v = arguments(fn.__name__, layout, stored)
    f.hvp(*args, v=v)  # compile outside the count
    count = Counter(monkeypatch)
    f.hvp(*args, v=v)
    assert count.zero == 0, f.hvp.source
    assert count.flops == hand_flops(), f.hvp.source


@pytest.mark.parametrize("case", P.VARIANTS, ids=lambda c: c[0].__name__)
def test_hv_primal_and_inputs_in_both_modes(case):
    fn, wrt, layout, stored = case
    name = fn.__name__
    args, v = arguments(name, layout, stored)
    flat_args = lambda: leaves(args[1:]) + ordered(name, args[0]) + ordered(name, v[0]) + \
        leaves(v[1:])  # noqa: E731
    keep = [np.array(x, copy=True) for x in flat_args()]
    want = ordered(name, fn(*args))
    outs = {}
    for mode in ("python", "numba"):
        out, r = rop(fn, wrt=wrt, mode=mode).hvp(*args, v=v)
        assert flat_err(ordered(name, out), want) < 1e-13, (mode, "primal")
        outs[mode] = ordered(name, r)
        assert all(np.array_equal(a, b) for a, b in zip(flat_args(), keep)), \
            (mode, "an argument or direction was modified")
    assert flat_err(outs["numba"], outs["python"]) < 1e-12
    # JAX's Hessian of the same loss along v
    params, X, T, (Vs, cs) = as_lists(name, args, v)
    loss = jax_loss(name, layout, stored)
    g = jax.grad(loss)
    _, jt = jax.jvp(lambda p: g(p, X, T), (params,), ((list(Vs), list(cs)),))
    r = outs["python"]
    assert flat_err(r, [np.asarray(t) for t in leaves(jt)]) < 1e-10
    # central differences of the user's own gradient at two steps
    for eps in (1e-4, 1e-6):
        def at(s):
            if name == "dict3":
                p = {k: args[0][k] + s * v[0][k] for k in args[0]}
                g = fn(p, args[1], args[2])
                return ordered(name, g)
            Ws = [W + s * V for W, V in zip(args[0], v[0])]
            bs = [b + s * c for b, c in zip(args[1], v[1])]
            return leaves(fn(Ws, bs, args[2], args[3]))
        fd = [(a - b) / (2 * eps) for a, b in zip(at(eps), at(-eps))]
        assert flat_err(r, fd) < 1e-5
