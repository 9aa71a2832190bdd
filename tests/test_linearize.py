"""Linearise once (rop/linearized.py, transforms/linearize.py): ``f.hvp.linearize(*args)``.

The split R{f} must compute what R{f} computes: on every program of the course corpus
(tests/course_programs.py, written as courses write backprop), ``lin.outputs`` equal the
function's own outputs and ``lin(v)`` equals the oracle's ``jax.jvp`` (the exact H v, written
separately in JAX) to the corpus's tolerance, in mode="python"; in mode="numba" on a subset
of them (each a Numba compile).  Then: what the split keeps out of the tangent part (no
primal work per direction), what it refuses to split and falls back from, and that the
linearisation holds its own copy of the arguments.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import test_courses as TC  # noqa: E402
import gauss_newton_programs as P  # noqa: E402
from rop import rop  # noqa: E402
from rop.errors import RopCallError  # noqa: E402

# the programs whose R-statements read a list per step (Nielsen's mini-batch loops): not split
NOT_SPLIT = {"Network.mini_batch_gradient", "Network2.total_cost_and_gradient"}
NUMBA_SUBSET = ("FullyConnectedNet.loss", "Network.mini_batch_gradient")  # (all 62 by hand)


def check(name, mode):
    f, exc = TC.compiled(name, mode)
    assert exc is None, exc
    args, kwargs, v = TC.point(name)
    a, kw, d = copy.deepcopy(args), copy.deepcopy(kwargs), copy.deepcopy(v)
    lin = f.hvp.linearize(*a, **kw)
    r = lin(d)
    r2 = lin(d)  # the tape is read again from its start
    assert all(TC.identical(x, y) for x, y in zip(args, a)), "an argument was modified"
    assert all(TC.identical(x, y) for x, y in zip(v, d)), "a direction was modified"
    assert lin.split == (name not in NOT_SPLIT), lin.reason
    if lin.split:
        ok, _, msg = TC.rel_close(lin.outputs, TC.reference(name), TC.PRIMAL_RTOL)
        assert ok, f"outputs differ from the function's: {msg}"
    entry = TC.ENTRY[name]
    _, o_jvp = TC.oracle(name)
    ok, _, msg = TC.rel_close(entry.pick(r), o_jvp, TC.ORACLE_RTOL)
    assert ok, f"lin(v) differs from the oracle's jax.jvp: {msg}"
    assert TC.rel_close(r2, r, 0.0)[0], "a second product along v differs from the first"
    return lin


@pytest.mark.parametrize("name", sorted(TC.ENTRY))
def test_course_program_linearised_python(name):
    check(name, "python")


@pytest.mark.parametrize("name", NUMBA_SUBSET)
def test_course_program_linearised_numba(name):
    check(name, "numba")


def test_the_tangent_part_does_no_primal_work():
    """The seed MLP's tangent function computes no sigmoid and no primal matrix product: the
    coefficient y1 (1 - y1) comes from the tape, computed once."""
    f = rop(wrt=("W1", "b1", "W2", "b2"), mode="python")(P.seed_mlp)
    r = np.random.default_rng(0)
    args = (r.normal(size=(4, 3)), r.normal(size=4), r.normal(size=(2, 4)), r.normal(size=2),
            r.normal(size=(3, 6)), r.normal(size=(2, 6)))
    lin = f.hvp.linearize(*args)
    src = "\n".join(line.split("#")[0] for line in lin.source.splitlines())  # code, no comments
    tangent = src[src.index("def seed_mlp_hvp_tangent"):src.index("__rop_functions__")]
    linearize = src[src.index("def seed_mlp_hvp_linearize"):src.index("def seed_mlp_hvp_tangent")]
    assert "sigmoid(" not in tangent and "W1, X" not in tangent.replace("R_W1, X", "")
    assert "R_" not in linearize, "the primal part reads a direction"
    assert "y1 * (1.0 - y1)" in linearize  # the coefficient, once


def test_a_relaxation_is_not_split_and_falls_back():
    from examples.recurrent_backprop import rbp_gradient
    f = rop(wrt=("W",), mode="python")(rbp_gradient.fn)
    r = np.random.default_rng(1)
    W, I, target, mask = 0.3 * r.normal(size=(5, 5)), r.normal(size=5), r.normal(size=5), \
        (r.uniform(size=5) > 0.5).astype(float)
    V = r.normal(size=(5, 5))
    lin = f.hvp.linearize(W, I, target, mask)
    assert not lin.split and "while" in lin.reason
    _, Hv = f.hvp(W, I, target, mask, v=V)
    assert TC.rel_close(lin(V), Hv, 0.0)[0]


def test_the_linearisation_keeps_its_own_arguments():
    f = rop(wrt=("W1", "b1", "W2", "b2"), mode="python")(P.seed_mlp)
    r = np.random.default_rng(2)
    args = [r.normal(size=(4, 3)), r.normal(size=4), r.normal(size=(2, 4)), r.normal(size=2),
            r.normal(size=(3, 6)), r.normal(size=(2, 6))]
    v = tuple(r.normal(size=a.shape) for a in args[:4])
    _, Hv = f.hvp(*args, v=v)
    lin = f.hvp.linearize(*args)
    for a in args:
        a *= 3.0  # the caller changes its arrays afterwards
    assert TC.rel_close(lin(v), Hv, 0.0)[0]


def test_the_operator_runs_the_primal_once():
    """``f.hvp.operator`` is linearised: its products count, the primal part ran once."""
    f = rop(wrt=("W1", "b1", "W2", "b2"), mode="python")(P.seed_mlp)
    r = np.random.default_rng(3)
    args = (r.normal(size=(4, 3)), r.normal(size=4), r.normal(size=(2, 4)), r.normal(size=2),
            r.normal(size=(3, 6)), r.normal(size=(2, 6)))
    H = f.hvp.operator(*args)
    assert H.linearized.split
    M = H @ np.eye(H.shape[0])
    assert H.linearized.products == H.shape[0]
    e = np.zeros(H.shape[0])
    e[5] = 1.0
    _, col = f.hvp(*args, v=H.layout.directions(e))
    assert np.allclose(M[:, 5], H.layout.flatten(col), rtol=0, atol=1e-14)


# ------------------------------------------------------------------------ many directions
# the course programs whose tangent part batches (transforms/batch.py); the others fall back to
# one tangent call per direction, each with its reason
BATCHED = {"Network.backprop", "Network2.backprop", "affine_forward", "affine_relu_forward",
           "compute_gradient_linear_reg", "cost_function_reg", "gru_step_grads",
           "hidden_activation_mlp", "logistic_cost_and_gradient", "logistic_loss_logaddexp",
           "mlp_activation_variants", "output_layer_grads", "rbm_cd1_update", "ridge_gradient",
           "skipgram", "svm_loss", "svm_loss_naive"}
BATCHED |= {  # with the rules of transforms/batch_rules.py (tests/test_batch_rules.py)
    "FullyConnectedNet.loss", "RNNNumpy.bptt", "TwoLayerNet.loss", "affine_relu_net_loss",
    "avgpool_regression_grads", "cbow_window_grads", "conv_grads", "dropout_net_loss",
    "gradient_univariate", "layernorm_grads", "linear_classifier_loss", "lossFun",
    "max_pool_grads", "model_dropout_grads", "model_l2_grads", "monotone_fit_grads",
    "naive_softmax_loss_and_gradient", "nnfs_train_step", "planar_nn_grads",
    "policy_gradient_episode", "propagate", "softmax_loss", "softmax_loss_naive",
    "softmax_loss_vectorized", "softmax_regression_grads", "sparse_autoencoder_cost",
    "svm_loss_vectorized", "two_layer_net_loss", "vanilla_rnn_bptt", "word_embedding_grads"}
NUMBA_BATCHED = ("svm_loss_naive",)  # and the deep MLP below; all 47 checked by hand
SCALES = (1.0, -2.0, 0.5)


def _scale(x, a):
    if isinstance(x, (list, tuple)):
        return type(x)(_scale(e, a) for e in x)
    if isinstance(x, dict):
        return {k: _scale(e, a) for k, e in x.items()}
    return float(x) * a if np.ndim(x) == 0 else np.asarray(x) * a


def check_many(name, mode):
    """``lin.many`` of three directions (v, -2v, v/2) against the oracle's jax.jvp along v,
    scaled: R{f} is linear in the direction."""
    f, exc = TC.compiled(name, mode)
    assert exc is None, exc
    args, kwargs, v = TC.point(name)
    lin = f.hvp.linearize(*copy.deepcopy(args), **copy.deepcopy(kwargs))
    vs = [_scale(v, a) for a in SCALES]
    keep = copy.deepcopy(vs)
    rs = lin.many(vs)
    assert all(TC.identical(x, y) for x, y in zip(vs, keep)), "a direction was modified"
    assert lin.batched == (name in BATCHED), lin.batch_reason
    assert lin.batched or lin.batch_reason
    _, o_jvp = TC.oracle(name)
    entry = TC.ENTRY[name]
    for a, r in zip(SCALES, rs):
        ok, _, msg = TC.rel_close(entry.pick(r), _scale(o_jvp, a), TC.ORACLE_RTOL)
        assert ok, f"direction {a}·v: {msg}"
    return lin


@pytest.mark.parametrize("name", sorted(TC.ENTRY))
def test_course_program_many_directions_python(name):
    check_many(name, "python")


@pytest.mark.parametrize("name", NUMBA_BATCHED)
def test_course_program_many_directions_numba(name):
    lin = check_many(name, "numba")
    assert lin.batched, lin.batch_reason  # compiled and ran (a failure would have fallen back)


@pytest.mark.parametrize("mode", ["python", "numba"])
def test_matmat_is_one_batched_call_equal_to_the_jax_hessian(mode, monkeypatch):
    """``H @ V`` of the deep MLP (lists of layers): k columns in batched calls of the tangent
    part, in chunks (``BATCH_NUMBERS``), equal to JAX's dense Hessian; a non-finite column is
    refused by name, as a single product would be."""
    import jax
    import jax.numpy as jnp
    import rop.linearized as L
    from examples import deep_mlp
    jax.config.update("jax_enable_x64", True)
    f = rop(deep_mlp.backprop.fn, wrt=("Ws", "bs"), mode=mode)
    Ws, bs, X, T, _, _ = deep_mlp.init([3, 5, 4, 2], 6)
    H = f.hvp.operator(Ws, bs, X, T)
    n = H.shape[0]

    def loss(theta):
        blocks = [theta[b.slice].reshape(b.shape) for b in H.layout.blocks]
        L_ = len(Ws)
        a = X
        for i, (W, b) in enumerate(zip(blocks[:L_], blocks[L_:])):
            a = W @ a + b[:, None]
            a = jnp.tanh(a) if i < len(Ws) - 1 else a
        return 0.5 * jnp.sum((a - T) ** 2) / X.shape[1]
    theta = H.layout.flatten((Ws, bs))
    J = np.asarray(jax.hessian(lambda t: loss(t))(jnp.asarray(theta)))
    V = np.random.default_rng(0).normal(size=(n, 9))
    calls = []
    real = L.Linearized.stacked

    def counting(self, dirs, k, checked=False):
        calls.append(k)
        return real(self, dirs, k, checked)
    monkeypatch.setattr(L.Linearized, "stacked", counting)
    assert np.allclose(H @ V, J @ V, rtol=1e-10, atol=1e-12)
    assert H.linearized.batched and calls == [8]  # the first column alone, then one call
    monkeypatch.setattr(L, "BATCH_NUMBERS", 3 * n)
    calls.clear()
    assert np.allclose(H @ V, J @ V, rtol=1e-10, atol=1e-12)
    assert calls == [3, 3, 3]
    assert np.allclose(H @ np.asfortranarray(V), J @ V, rtol=1e-10, atol=1e-12)
    monkeypatch.setattr(L, "BATCH_NUMBERS", 1)  # one tangent call per column
    assert np.allclose(H @ V, J @ V, rtol=1e-10, atol=1e-12)
    V[4, 5] = np.nan
    with pytest.raises(RopCallError, match="`Ws` or its direction contains NaN or Inf"):
        H @ V
