"""The batching rules of transforms/batch_rules.py (and the mask and index rules of
transforms/batch.py): k directions in one call of ``<name>_tangent_k`` equal k products.

* On every course program these rules made batch (tests/course_programs.py), in
  mode="python": ``lin.many`` of three directions is one batched call (``lin.batched`` holds
  after it: the batched code ran), equal to three ``f.hvp`` calls, the unbatched R{f} that
  tests/test_courses.py checks against JAX and central differences; the arguments and the
  directions are left as they were.  On a few, also against central differences of the
  original program at two steps, directly.
* In mode="numba" on a small subset (each program compiled once), against mode="python"'s
  ``f.hvp``.
* Small programs of this file put each rule through the operand ranks it takes (a vector, a
  matrix, a number; axis None, negative, positive), against ``f.hvp`` per direction and
  central differences; and the cases a rule refuses fall back, with their reason.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import test_courses as TC  # noqa: E402
from rop import rop  # noqa: E402

# batched before these rules: test_linearize.BATCHED (17 programs)
BEFORE = {"Network.backprop", "Network2.backprop", "affine_forward", "affine_relu_forward",
          "compute_gradient_linear_reg", "cost_function_reg", "gru_step_grads",
          "hidden_activation_mlp", "logistic_cost_and_gradient", "logistic_loss_logaddexp",
          "mlp_activation_variants", "output_layer_grads", "rbm_cd1_update", "ridge_gradient",
          "skipgram", "svm_loss", "svm_loss_naive"}
# batched with them, and the rule that made each one batch
NEW = {
    "FullyConnectedNet.loss": "max_tangent", "RNNNumpy.bptt": "max_tangent",
    "TwoLayerNet.loss": "mask store", "affine_relu_net_loss": "max_tangent",
    "avgpool_regression_grads": "repeat", "cbow_window_grads": "max_tangent",
    "conv_grads": "pad",
    "dropout_net_loss": "max_tangent", "gradient_univariate": "array",
    "layernorm_grads": "var_tangent", "linear_classifier_loss": "max_tangent",
    "lossFun": "clip_tangent", "max_pool_grads": "max_tangent",
    "model_dropout_grads": "squeeze", "model_l2_grads": "squeeze",
    "monotone_fit_grads": "cumsum", "naive_softmax_loss_and_gradient": "max_tangent",

    "nnfs_train_step": "max_tangent", "planar_nn_grads": "squeeze",
    "policy_gradient_episode": "vstack of a list of numbers", "propagate": "squeeze",
    "softmax_loss": "max_tangent", "softmax_loss_naive": "max_tangent",
    "softmax_loss_vectorized": "max_tangent", "softmax_regression_grads": "max_tangent",
    "sparse_autoencoder_cost": "tile, reshape to a product", "svm_loss_vectorized": "mask store",
    "two_layer_net_loss": "max_tangent", "vanilla_rnn_bptt": "outer",
    "word_embedding_grads": "integer index array of rank 2",
}
BATCHED = BEFORE | set(NEW)
FD_CHECKED = ("TwoLayerNet.loss", "lossFun", "conv_grads", "monotone_fit_grads",
              "vanilla_rnn_bptt", "layernorm_grads", "policy_gradient_episode")
NUMBA = ("softmax_loss_vectorized",)  # (and the small program below; all by hand)
RTOL = 1e-10  # the batched products sum in another order than k single ones


def _directions(name, k=3):
    """The entry's direction and k - 1 more, drawn like it."""
    args, _, v = TC.point(name)
    rng = np.random.default_rng(7)
    return [v] + [tuple(TC.random_like(rng, x) for x in v) for _ in range(k - 1)]


_REF: dict = {}


def _reference(name):
    """``f.hvp`` (mode="python") along each direction: R{outputs}, one call each."""
    if name not in _REF:
        f, exc = TC.compiled(name, "python")
        assert exc is None, exc
        args, kwargs, _ = TC.point(name)
        _REF[name] = [f.hvp(*copy.deepcopy(args), v=copy.deepcopy(d), **copy.deepcopy(kwargs))[1]
                      for d in _directions(name)]
    return _REF[name]


def check_batched(name, mode):
    f, exc = TC.compiled(name, mode)
    assert exc is None, exc
    args, kwargs, _ = TC.point(name)
    a, kw = copy.deepcopy(args), copy.deepcopy(kwargs)
    vs = _directions(name)
    keep = copy.deepcopy(vs)
    lin = f.hvp.linearize(*a, **kw)
    assert lin.batched, lin.batch_reason
    rs = lin.many(vs)
    assert lin.batched, lin.batch_reason  # the batched call ran (a failure falls back)
    assert all(TC.identical(x, y) for x, y in zip(args, a)), "an argument was modified"
    assert all(TC.identical(x, y) for x, y in zip(vs, keep)), "a direction was modified"
    for j, (r, ref) in enumerate(zip(rs, _reference(name))):
        ok, _, msg = TC.rel_close(r, ref, RTOL)
        assert ok, f"direction {j}: batched vs f.hvp: {msg}"
    return rs


def test_the_tally():
    """The programs listed batch and the others do not (their reasons: see the report)."""
    assert len(BATCHED) == 47 and not BEFORE & set(NEW)
    assert set(NEW) <= set(TC.ENTRY)


@pytest.mark.parametrize("name", sorted(NEW))
def test_course_program_batched_python(name):
    check_batched(name, "python")


@pytest.mark.parametrize("name", FD_CHECKED)
def test_course_program_batched_central_differences(name):
    """The first direction's batched result against central differences of the original
    program (steps 1e-4 and 1e-6, the better within 1e-6 relative, as test_courses)."""
    r = check_batched(name, "python")[0]
    routs, outs = TC.num_leaves(r), TC.num_leaves(TC.reference(name))
    assert len(routs) == len(outs)
    for k, (x, o) in enumerate(zip(routs, outs)):
        errs = []
        for fd in TC.finite_differences(name):
            d = fd[k]
            scale = max(np.max(np.abs(d), initial=0.0), np.max(np.abs(x), initial=0.0),
                        1e-2 * np.max(np.abs(o), initial=0.0), 1e-8)
            errs.append(np.inf if x.shape != d.shape else np.max(np.abs(x - d), initial=0.0) / scale)
        assert min(errs) <= TC.FD_RTOL, f"output leaf {k}: {min(errs):.2e}"


@pytest.mark.parametrize("name", NUMBA)
def test_course_program_batched_numba(name):
    check_batched(name, "numba")


# ------------------------------------------------------------------ each rule, by rank
# small programs (their outputs' R is the directional derivative): each rule with the
# operand ranks it takes

def p_extremes(a, B, C):
    return (np.max(B, axis=1, keepdims=True), np.min(B, axis=-2), np.max(B),
            np.max(C, axis=None, keepdims=True), np.max(a * B), np.min(a), B.max(axis=0))


def p_clip_var_prod(a, B, C):
    return (np.clip(B, -0.5, 0.5), np.clip(a, -0.1, 0.1), np.var(B, axis=0),
            np.var(C, axis=1, keepdims=True), np.prod(B, axis=1), np.prod(C, axis=-1))


def p_stacking(a, B, C):
    u, v = B[0], B[1]
    return (np.concatenate([B, B * 2.0], axis=1), np.concatenate([B, C[0]], axis=-2),
            np.concatenate([u, v], axis=-1), np.stack([u, v], axis=-1),
            np.stack([B, 2.0 * B], axis=0), np.vstack([u, v]), np.vstack([B, B]), np.vstack([a, a * 2.0]),
            np.hstack([u, v]), np.hstack([B, B]), np.hstack([a, a]),
            np.column_stack([B[:, 0], B[:, 1]]), np.column_stack([B, B]), np.array([a, 2.0 * a]), np.array([u, v]))


def p_shifts(a, B, C):
    return (np.cumsum(B, axis=1), np.cumsum(C), np.cumsum(B[0], axis=-1),
            np.repeat(B, 2, axis=0), np.repeat(C, 2), np.tile(B[0], (2, 1)),
            np.tile(B, 2), np.tile(C, (2, 1, 1, 2)), np.tile(a, 3),
            np.pad(B, 1, mode='constant'), np.pad(C, ((0, 1), (1, 0), (2, 2))),
            np.pad(B[0], (1, 2)), np.outer(B, B[0]), np.outer(a, B), np.outer(B[0], a),
            np.squeeze(np.sum(B * B)), np.diagflat(B), np.diagflat(B[0]), np.diag(a * B[1]))


def p_masks(a, B, C, idx, cols):
    D = B * 1.0
    D[B < 0] = 0
    E = C * 1.0
    E[C > 0.3] = a
    F = C.copy()
    F[0, idx[0]] = a * C[1, idx[1]]
    G = B.copy()
    G[idx[0]] = a
    G[1:, 2] = B[0, 2:]
    return D, E, F, G, B[idx, :], B[:, cols], C[1, idx[0], :], C[:, 0, cols]


def p_lists(a, B, C):
    hs, rows = [], []
    for i in range(3):
        hs.append(a * B[i, 0])
        rows.append(B[i] * a)
    return (np.vstack(hs), np.hstack(hs), np.vstack(rows), np.hstack(rows),
            np.stack(rows, axis=1), np.concatenate(rows, axis=0))


PROGRAMS = [p_extremes, p_clip_var_prod, p_stacking, p_shifts, p_masks, p_lists]


def _point(rng, fn):
    a = float(rng.normal())
    B, C = rng.normal(size=(3, 4)), rng.normal(size=(2, 3, 4))
    args = (a, B, C)
    if fn is p_masks:
        args += (np.array([[0, 2], [1, 1]]), np.array([3, 0, 1]))
    return args


@pytest.mark.parametrize("fn", PROGRAMS, ids=lambda f: f.__name__)
def test_rules_by_rank(fn):
    f = rop(fn, wrt=("a", "B", "C"), mode="python")
    rng = np.random.default_rng(3)
    args = _point(rng, fn)
    vs = [tuple(TC.random_like(rng, x) for x in args[:3]) for _ in range(3)]
    keep_a, keep_v = copy.deepcopy(args), copy.deepcopy(vs)
    lin = f.hvp.linearize(*args)
    assert lin.batched, lin.batch_reason
    rs = lin.many(vs)
    assert lin.batched, lin.batch_reason
    assert TC.identical(args, keep_a) and TC.identical(vs, keep_v)
    for v, r in zip(vs, rs):
        _, ref = f.hvp(*args, v=v)
        ok, _, msg = TC.rel_close(r, ref, RTOL)
        assert ok, msg
        for eps_ok in ([_fd(fn, args, v, eps) for eps in (1e-4, 1e-6)],):
            for k, x in enumerate(TC.num_leaves(r)):
                err = min(np.max(np.abs(x - fd[k]), initial=0.0) /
                          max(np.max(np.abs(fd[k]), initial=0.0), 1e-8) for fd in eps_ok)
                assert err < 1e-6, f"output {k}: {err:.1e} from central differences"


def _fd(fn, args, v, eps):
    plus = [x + eps * d for x, d in zip(args[:3], v)] + list(args[3:])
    minus = [x - eps * d for x, d in zip(args[:3], v)] + list(args[3:])
    return [(p - m) / (2 * eps) for p, m in zip(TC.num_leaves(fn(*plus)),
                                                   TC.num_leaves(fn(*minus)))]


def test_rules_by_rank_numba():
    """The Numba forms of the per-direction helpers, the mask store and the outer product:
    one program, compiled once, against mode="python"."""
    def p(a, B, C):
        D = B * 1.0
        D[B < 0] = 0
        return (np.max(B, axis=1, keepdims=True), np.min(C), np.clip(B, -0.5, 0.5),
                np.var(B, axis=0), D, np.outer(B, a * B[0]), np.cumsum(C),
                np.concatenate([B, B * 2.0], axis=1), np.tile(B[0], (2, 1)))
    rng = np.random.default_rng(4)
    args = _point(rng, p_extremes)
    vs = [tuple(TC.random_like(rng, x) for x in args) for _ in range(3)]
    g = rop(p, wrt=("a", "B", "C"), mode="python")
    lin = rop(p, wrt=("a", "B", "C"), mode="numba").hvp.linearize(*args)
    rs = lin.many(vs)
    assert lin.batched, lin.batch_reason
    for v, r in zip(vs, rs):
        ok, _, msg = TC.rel_close(r, g.hvp(*args, v=v)[1], RTOL)
        assert ok, msg


# ------------------------------------------------------------------ refused: the fallback
def p_bool_read(B, C):
    m = C > 0
    return C[m] * 2.0 + 0 * B[0, 0]  # a boolean mask of rank 3: the result is a vector


def p_rebound(B, C):
    x = B[0] * C[0, 0]
    x = x.reshape(-1, 1)  # `x` a vector, then a matrix: one rank per name in rop's types
    return np.dot(x, x.T)


def p_separated(B, C):
    return C[1, :, np.array([0, 2])] * 2.0 + 0 * B[0, 0]  # NumPy puts the index's axis first


def p_store_rank2_index(B, C):
    D = C * 1.0
    D[0, np.array([[0, 1], [2, 2]])] = B[0, 0] * C[1, 0, 0]
    return D


@pytest.mark.parametrize("fn, reason", [(p_bool_read, "boolean mask"),
                                        (p_separated, "separated by a slice"),
                                        (p_rebound, "bound to values of ranks"),
                                        (p_store_rank2_index, "index array of rank >= 2")],
                         ids=["bool_read", "separated", "rebound", "store_rank2"])
def test_refused_falls_back(fn, reason):
    """A rule refuses what it cannot prove (a read through a boolean mask of rank >= 2, whose
    result's rank rop infers for integers): one tangent call per direction, the same values."""
    rng = np.random.default_rng(5)
    B, C = rng.normal(size=(3, 4)), rng.normal(size=(2, 3, 4))
    args = (B, C)[:fn.__code__.co_argcount]
    f = rop(fn, wrt=fn.__code__.co_varnames[:len(args)], mode="python")
    lin = f.hvp.linearize(*args)
    vs = [tuple(TC.random_like(rng, x) for x in args) for _ in range(2)]
    rs = lin.many(vs)
    assert not lin.batched and reason in lin.batch_reason
    for v, r in zip(vs, rs):
        assert TC.rel_close(r, f.hvp(*args, v=v)[1], 0.0)[0]
