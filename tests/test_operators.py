"""rop.operators: the flat layout, and the Hessian / Gauss-Newton operators checked against the
dense matrices JAX computes from the loss (an independent oracle, never rop's own products)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse.linalg as sla

from rop import rop
from rop.operators import Layout, check_deterministic, dataset_operator

jax.config.update("jax_enable_x64", True)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def mlp(W1, b1, W2, b2, X, T):
    y1 = sigmoid(W1 @ X + b1[:, None])
    y2 = W2 @ y1 + b2[:, None]
    d2 = (y2 - T) / X.shape[1]
    d1 = (W2.T @ d2) * y1 * (1.0 - y1)
    return d1 @ X.T, d1.sum(axis=1), d2 @ y1.T, d2.sum(axis=1)


def mlp_loss(params, X, T):  # the loss whose gradient mlp computes, in JAX
    W1, b1, W2, b2 = params
    y2 = W2 @ jax.nn.sigmoid(W1 @ X + b1[:, None]) + b2[:, None]
    return 0.5 * jnp.sum((y2 - T) ** 2) / X.shape[1]


def dense(fn, layout, params, *rest):
    """The dense Hessian of fn(params, *rest) in the layout's order, by jax.hessian on the flat
    vector."""
    def flat_loss(theta):
        return fn(_unflat(layout, theta), *rest)
    return np.asarray(jax.hessian(flat_loss)(jnp.asarray(layout.flatten(params))))


def _unflat(layout, theta):
    tree = layout._build(layout._skel, theta)  # slices of a JAX array: same layout, traced
    return tree


def seed_args(seed=0, B=7):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(4, 3)), 0.3 * rng.normal(size=4), rng.normal(size=(2, 4)),
            0.3 * rng.normal(size=2), rng.normal(size=(3, B)), rng.normal(size=(2, B)))


@pytest.fixture(scope="module", params=["python", "numba"])
def seed_mlp(request):
    return rop(mlp, wrt=("W1", "b1", "W2", "b2"), mode=request.param, output="y2")


def test_operator_is_the_jax_hessian(seed_mlp):
    args = seed_args()
    H = seed_mlp.hvp.operator(*args)
    assert isinstance(H, sla.LinearOperator) and H.shape == (26, 26) and H.dtype == np.float64
    Hd = H @ np.eye(26)
    J = dense(mlp_loss, H.layout, args[:4], *args[4:])
    assert np.max(np.abs(Hd - J)) <= 1e-10 * max(1.0, np.max(np.abs(J)))
    x = np.random.default_rng(1).normal(size=26)
    assert np.allclose(H.rmatvec(x), J @ x, atol=1e-10) and H.H is H
    assert np.allclose(H.matmat(np.eye(26)[:, :3]), J[:, :3], atol=1e-10)
    col = H @ x[:, None]                        # one column stays a column, as in SciPy
    assert col.shape == (26, 1) and np.allclose(col[:, 0], J @ x, atol=1e-10)
    assert (H @ x).shape == (26,)


def test_gauss_newton_operator_is_jt_hl_j(seed_mlp):
    args = seed_args(1)
    G = seed_mlp.gvp.operator(*args)
    X = args[4]
    layout = G.layout
    out = lambda theta: (lambda p: (p[2] @ jax.nn.sigmoid(p[0] @ X + p[1][:, None])
                                    + p[3][:, None]).ravel())(_unflat(layout, theta))
    Jac = np.asarray(jax.jacobian(out)(jnp.asarray(layout.flatten(args[:4]))))
    assert np.allclose(G @ np.eye(26), Jac.T @ Jac / X.shape[1], atol=1e-10)


def test_layout_order_blocks_and_round_trip():
    rng = np.random.default_rng(0)
    Ws = [rng.normal(size=(3, 2)), rng.normal(size=(1, 3))]
    d = {"W": rng.normal(size=(2, 2)), "b": rng.normal(size=2)}
    tree = (Ws, d, rng.normal(size=3))
    lay = Layout(tree, ("Ws", "p", "c"))
    assert [b.name for b in lay.blocks] == ["Ws[0]", "Ws[1]", "p['W']", "p['b']", "c"]
    assert lay.size == 6 + 3 + 4 + 2 + 3
    v = lay.flatten(tree)
    assert np.array_equal(v[:6], Ws[0].ravel()) and np.array_equal(v[13:15], d["b"])
    back = lay.unflatten(v)
    assert isinstance(back, tuple) and isinstance(back[0], list) and isinstance(back[1], dict)
    assert all(np.array_equal(a, b) for a, b in zip(Layout(back).flatten(back), v))
    # a dict read in the layout's key order, whatever its own
    assert np.array_equal(lay.flatten((Ws, {"b": d["b"], "W": d["W"]}, tree[2])), v)
    single = Layout((d,), ("params",))
    assert isinstance(single.unflatten(single.flatten(d)), dict)
    assert np.array_equal(single.flatten((d,)), single.flatten(d))
    with pytest.raises(ValueError, match=r"length 18 \(layout: Ws\[0\] \(3, 2\) \[0:6\]"):
        lay.unflatten(np.zeros(5))
    with pytest.raises(ValueError, match=r"p: got a dict with keys \['W'\].*'b'"):
        lay.flatten((Ws, {"W": d["W"]}, tree[2]))


def layers(Ws, bs, X, T):
    hs = [X]
    for W, b in zip(Ws, bs):
        hs.append(np.tanh(W @ hs[-1] + b[:, None]))
    d = (hs[-1] - T) / X.shape[1]
    dWs = [None] * len(Ws)
    dbs = [None] * len(Ws)
    for i in range(len(Ws) - 1, -1, -1):
        d = d * (1.0 - hs[i + 1] ** 2)
        dWs[i] = d @ hs[i].T
        dbs[i] = d.sum(axis=1)
        d = Ws[i].T @ d
    return dWs, dbs


def layers_loss(p, X, T):
    h = X
    for W, b in zip(*p):
        h = jnp.tanh(W @ h + b[:, None])
    return 0.5 * jnp.sum((h - T) ** 2) / X.shape[1]


def test_list_params_and_dataset_operator():
    f = rop(layers, wrt=("Ws", "bs"), mode="python")
    rng = np.random.default_rng(2)
    Ws = [rng.normal(size=(4, 3)), rng.normal(size=(2, 4))]
    bs = [rng.normal(size=4), rng.normal(size=2)]
    batches = [(rng.normal(size=(3, n)), rng.normal(size=(2, n))) for n in (5, 3, 8)]
    H0 = f.hvp.operator(Ws, bs, *batches[0])
    assert [b.name for b in H0.layout.blocks] == ["Ws[0]", "Ws[1]", "bs[0]", "bs[1]"]
    dense_b = [dense(layers_loss, H0.layout, (Ws, bs), X, T) for X, T in batches]
    assert np.allclose(H0 @ np.eye(H0.shape[0]), dense_b[0], atol=1e-10)
    H = dataset_operator(f.hvp, batches, args=lambda b: (Ws, bs, *b),
                         sizes=lambda Ws, bs, X, T: X.shape[1])
    want = sum(n * Hb for n, Hb in zip((5, 3, 8), dense_b)) / 16
    assert np.allclose(H @ np.eye(H.shape[0]), want, atol=1e-10)
    assert not np.allclose(want, sum(dense_b) / 3, atol=1e-3)  # the weights matter
    Hf = dataset_operator(f.hvp, lambda: iter(batches), args=lambda b: (Ws, bs, *b),
                          sizes=[5, 3, 8])
    assert np.allclose(Hf @ np.eye(H.shape[0]), want, atol=1e-10)
    with pytest.raises(ValueError, match="batches are empty"):
        dataset_operator(f.hvp, [], sizes=[])
    with pytest.raises(ValueError, match="one-shot iterator"):
        dataset_operator(f.hvp, iter(batches), sizes=[5, 3, 8], args=lambda b: (Ws, bs, *b))


def test_determinism_check_catches_a_random_and_an_asymmetric_operator():
    rng = np.random.default_rng(0)
    S = rng.normal(size=(6, 6))
    S = S + S.T
    assert check_deterministic(sla.aslinearoperator(S))["repeat"] == 0.0
    noisy = sla.LinearOperator((6, 6), matvec=lambda x: S @ x * rng.uniform(0.5, 1.5))
    with pytest.raises(RuntimeError, match="not deterministic"):
        check_deterministic(noisy)
    with pytest.raises(RuntimeError, match="not symmetric"):
        check_deterministic(sla.aslinearoperator(S + np.triu(S)))


def two_layer(params, X, y):
    h = np.maximum(0.0, X @ params["W1"] + params["b1"])
    s = h @ params["W2"] + params["b2"]
    e = np.exp(s - s.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    loss = -np.mean(np.log(p[np.arange(X.shape[0]), y]))
    ds = p.copy()
    ds[np.arange(X.shape[0]), y] -= 1.0
    ds /= X.shape[0]
    dh = ds @ params["W2"].T
    dh[h <= 0] = 0.0
    grads = {"W1": X.T @ dh, "b1": dh.sum(axis=0), "W2": h.T @ ds, "b2": ds.sum(axis=0)}
    return loss, grads


def two_layer_loss(params, X, y):
    s = jax.nn.relu(X @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"]
    return -jnp.mean(jax.nn.log_softmax(s)[jnp.arange(X.shape[0]), y])


def test_dict_params_and_a_gradient_inside_the_outputs():
    f = rop(two_layer, wrt="params", mode="python")
    rng = np.random.default_rng(3)
    params = {"W1": rng.normal(size=(3, 5)), "b1": rng.normal(size=5),
              "W2": rng.normal(size=(5, 3)), "b2": rng.normal(size=3)}
    X, y = rng.normal(size=(6, 3)), rng.integers(0, 3, size=6)
    H = f.hvp.operator(params, X, y)  # returns (loss, grads): grads found by structure
    assert [b.name for b in H.layout.blocks][:2] == ["params['W1']", "params['b1']"]
    J = dense(two_layer_loss, H.layout, params, X, y)
    assert np.allclose(H @ np.eye(H.shape[0]), J, atol=1e-10)
    Hv = H.apply(params)
    assert isinstance(Hv, dict) and np.allclose(H.layout.flatten(Hv), J @ H.layout.flatten(params))


@pytest.mark.parametrize("shape", [(7, 3), (40000, 3), (5, 1), (70000, 1)])
def test_columns_are_read_as_rows_in_any_memory_order(shape):
    """``H @ V`` reads V's columns as contiguous rows: a blocked compiled transpose for large
    C-ordered blocks, NumPy for small ones, none for Fortran order or one column."""
    from rop.operators import _rows
    X = np.random.default_rng(0).normal(size=shape)
    for Y in (X, np.asfortranarray(X)):
        R = _rows(Y)
        assert R.flags.c_contiguous and np.array_equal(R, X.T)
