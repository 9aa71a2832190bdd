"""rop.blocks: Botev's layer-wise recursion, the exact H and G blocks, KFLR and KFRA.

Every expected value comes from elsewhere: the dense Hessian and Gauss-Newton matrices are the
columns of ``.hvp.operator`` / ``.gvp.operator`` of the *user's* backprop below (written as
examples/deep_mlp.py writes one), itself checked against ``jax.hessian`` once."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rop import rop
from rop.blocks import Network

LAYERS = [4, 5, 3, 2]
BATCH = 6
ACTS = ["tanh", "sigmoid", "softplus", "relu"]
LOSSES = ["squared", "logistic", "softmax"]


@rop(wrt=("Ws", "bs"), output="z", mode="python")
def backprop(Ws, bs, X, T, act, loss):
    """Gradient of E = (1/B) Σ_n ℓ(z_n, t_n): `act` hidden units, a linear output z, and
    ℓ = ½‖z − t‖², the logistic cross-entropy or the softmax cross-entropy on z."""
    L = len(Ws)
    hs = [None] * L
    acts = [None] * L
    acts[0] = X
    for i in range(L - 1):
        hs[i] = Ws[i] @ acts[i] + bs[i][:, None]
        if act == "tanh":
            acts[i + 1] = np.tanh(hs[i])
        elif act == "sigmoid":
            acts[i + 1] = 1.0 / (1.0 + np.exp(-hs[i]))
        elif act == "softplus":
            acts[i + 1] = np.log1p(np.exp(hs[i]))
        elif act == "relu":
            acts[i + 1] = np.maximum(hs[i], 0.0)
        else:
            acts[i + 1] = hs[i]
    z = Ws[L - 1] @ acts[L - 1] + bs[L - 1][:, None]
    if loss == "squared":
        d = z - T
    elif loss == "logistic":
        d = 1.0 / (1.0 + np.exp(-z)) - T
    else:
        e = np.exp(z - np.max(z, axis=0))
        d = e / np.sum(e, axis=0) - T
    d = d / X.shape[1]
    dWs = [None] * L
    dbs = [None] * L
    for i in range(L - 1, -1, -1):
        dWs[i] = d @ acts[i].T
        dbs[i] = d.sum(axis=1)
        if i > 0:
            d = Ws[i].T @ d
            if act == "tanh":
                d = d * (1.0 - acts[i] ** 2)
            elif act == "sigmoid":
                d = d * acts[i] * (1.0 - acts[i])
            elif act == "softplus":
                d = d / (1.0 + np.exp(-hs[i - 1]))
            elif act == "relu":
                d = d * (hs[i - 1] > 0.0)
    return dWs, dbs


def problem(loss, batch=BATCH, layers=LAYERS, seed=0):
    rng = np.random.default_rng(seed)
    Ws = [rng.normal(size=(m, n)) / np.sqrt(n) for n, m in zip(layers[:-1], layers[1:])]
    bs = [0.3 * rng.normal(size=m) for m in layers[1:]]
    X = rng.normal(size=(layers[0], batch))
    K = layers[-1]
    if loss == "squared":
        T = rng.normal(size=(K, batch))
    elif loss == "logistic":
        T = rng.uniform(size=(K, batch))
    else:
        T = np.eye(K)[:, rng.integers(K, size=batch)]
    return Ws, bs, X, T


def dense(kind, act, loss, batch=BATCH, seed=0):
    """The dense H (kind "hvp") or G ("gvp") of the user's backprop, and its layout."""
    args = (*problem(loss, batch, seed=seed), act, loss)
    op = getattr(backprop, kind).operator(*args)
    return op @ np.eye(op.shape[0]), op.layout


def block(M, layout, a, b):
    sa = next(x.slice for x in layout.blocks if x.name == a)
    sb = next(x.slice for x in layout.blocks if x.name == b)
    return M[sa, sb]


def rel(a, b):
    assert np.max(np.abs(b)) > 0, "a zero block tests nothing"
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def assert_blocks(blocks, M, layout, tol=1e-12):
    for l, blk in enumerate(blocks):
        W, b = f"Ws[{l}]", f"bs[{l}]"
        assert rel(blk.W, block(M, layout, W, W)) <= tol, (l, "W")
        assert rel(blk.Wb, block(M, layout, W, b)) <= tol, (l, "Wb")
        assert rel(blk.b, block(M, layout, b, b)) <= tol, (l, "b")


@pytest.fixture(scope="module")
def cache():
    return {}


def dense_cached(cache, *key, **kw):
    k = key + tuple(sorted(kw.items()))
    if k not in cache:
        cache[k] = dense(*key, **kw)
    return cache[k]


# --------------------------------------------------------------------------- the oracle's oracle
def test_dense_hessian_matches_jax(cache):
    def loss_jax(Ws, bs, X, T):
        a = X
        for W, b in zip(Ws[:-1], bs[:-1]):
            a = jnp.tanh(W @ a + b[:, None])
        z = Ws[-1] @ a + bs[-1][:, None]
        return -jnp.sum(T * jax.nn.log_softmax(z, axis=0)) / X.shape[1]

    Ws, bs, X, T = problem("softmax")
    H, layout = dense_cached(cache, "hvp", "tanh", "softmax")
    n = H.shape[0]

    def flat_loss(theta):
        parts = [theta[b.slice].reshape(b.shape) for b in layout.blocks]
        L = len(Ws)
        return loss_jax(parts[:L], parts[L:], X, T)

    Hj = np.asarray(jax.hessian(flat_loss)(jnp.asarray(layout.flatten((Ws, bs)))))
    assert Hj.shape == (n, n)
    assert rel(H, Hj) <= 1e-12


# --------------------------------------------------------------------------- the recursion
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("act", ACTS)
def test_hessian_blocks_equal_dense_blocks(cache, act, loss):
    H, layout = dense_cached(cache, "hvp", act, loss)
    blocks = Network(act, loss).hessian_blocks(*problem(loss))
    assert_blocks(blocks, H, layout)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("act", ACTS)
def test_gauss_newton_blocks_equal_dense_blocks(cache, act, loss):
    G, layout = dense_cached(cache, "gvp", act, loss)
    blocks = Network(act, loss).gauss_newton_blocks(*problem(loss))
    assert_blocks(blocks, G, layout)


@pytest.mark.parametrize("loss", LOSSES)
def test_description_gives_the_users_gradient(loss):
    Ws, bs, X, T = problem(loss)
    dWs, dbs = Network("softplus", loss).gradient(Ws, bs, X, T)
    uW, ub = backprop(Ws, bs, X, T, "softplus", loss)
    for mine, theirs in zip(dWs + dbs, list(uW) + list(ub)):
        assert rel(mine, theirs) <= 1e-13


def test_hessian_and_gauss_newton_differ_by_D():
    """The two recursions differ, on a nonlinear net, exactly in the hidden layers."""
    args = problem("logistic")
    net = Network("tanh", "logistic")
    H, G = net.preactivation_hessians(*args), net.preactivation_hessians(*args, gauss_newton=True)
    assert np.array_equal(H[-1], G[-1])
    assert all(rel(h, g) > 1e-3 for h, g in zip(H[:-1], G[:-1]))


# --------------------------------------------------------------------------- KFLR and KFRA
def assert_factors(factors, M, layout, tol=1e-12):
    for l, f in enumerate(factors):
        W, b = f"Ws[{l}]", f"bs[{l}]"
        assert rel(f.weight_block(), block(M, layout, W, W)) <= tol, (l, "W")
        assert rel(np.kron(f.G, f.q[:, None]), block(M, layout, W, b)) <= tol, (l, "Wb")
        assert rel(f.bias_block(), block(M, layout, b, b)) <= tol, (l, "b")


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("act", ["tanh", "sigmoid", "relu"])
def test_kflr_and_kfra_are_exact_at_batch_one(cache, act, loss):
    G, layout = dense_cached(cache, "gvp", act, loss, batch=1)
    args = problem(loss, batch=1)     # seed 0: no ReLU layer is dead at this sample
    net = Network(act, loss)
    assert_factors(net.kflr(*args), G, layout)
    assert_factors(net.kfra(*args), G, layout)


def test_kflr_and_kfra_are_exact_for_deep_linear_networks(cache):
    """B_l = I: the pre-activation GN matrices are the same for every sample (squared error),
    so E[Q ⊗ 𝒢] = E[Q] ⊗ 𝒢 at any batch size."""
    G, layout = dense_cached(cache, "gvp", "identity", "squared")
    args = problem("squared")
    net = Network("identity", "squared")
    assert_factors(net.kflr(*args), G, layout)
    assert_factors(net.kfra(*args), G, layout)


@pytest.mark.parametrize("loss", ["logistic", "softmax"])
def test_kflr_equals_kfra_for_deep_linear_networks(loss):
    """With a sample-dependent output Hessian the Kronecker product is an approximation, but
    KFRA's E[bbᵀ] ⊙ (Wᵀ𝒢̄W) is KFLR's mean of products when b = 1."""
    args = problem(loss)
    net = Network("identity", loss)
    for a, b in zip(net.kflr(*args), net.kfra(*args)):
        assert rel(a.G, b.G) <= 1e-12
        assert np.array_equal(a.Q, b.Q)


def test_kflr_is_the_mean_gauss_newton_preactivation_matrix(cache):
    """KFLR's 𝒢_l is the exact batch mean: its bias block is G's bias block at any batch."""
    G, layout = dense_cached(cache, "gvp", "tanh", "softmax")
    factors = Network("tanh", "softmax").kflr(*problem("softmax"))
    for l, f in enumerate(factors):
        assert rel(f.G, block(G, layout, f"bs[{l}]", f"bs[{l}]")) <= 1e-12


def test_homogeneous_factor():
    f = Network("tanh", "squared").kfra(*problem("squared"))[0]
    X = problem("squared")[2]
    Xa = np.vstack([X, np.ones(X.shape[1])])
    assert np.allclose(f.homogeneous, Xa @ Xa.T / X.shape[1], rtol=0, atol=1e-14)


# --------------------------------------------------------------------------- errors
def test_errors_name_the_argument_and_shapes():
    Ws, bs, X, T = problem("squared")
    net = Network("tanh", "squared")
    with pytest.raises(ValueError, match=r"Ws\[1\] has shape \(3, 4\)"):
        net.kfra([Ws[0], Ws[1][:, :4], Ws[2]], bs, X, T)
    with pytest.raises(ValueError, match=r"bs\[0\] has shape \(4,\)"):
        net.kfra(Ws, [bs[0][:4], bs[1], bs[2]], X, T)
    with pytest.raises(ValueError, match=r"T has shape \(3, 6\); expected \(2, 6\)"):
        net.kfra(Ws, bs, X, np.zeros((3, 6)))
    with pytest.raises(ValueError, match="examples as columns"):
        net.kfra(Ws, bs, X[:, 0], T)
    with pytest.raises(ValueError, match="unknown name 'gelu'"):
        Network("gelu", "squared").kfra(Ws, bs, X, T)
    with pytest.raises(ValueError, match="unknown name 'hinge'"):
        Network("tanh", "hinge")
    with pytest.raises(ValueError, match="3 activations given for a network of 3 layers") as e:
        Network(["tanh", "relu", "tanh"], "squared").kfra(Ws, bs, X, T)
    assert "last is linear" in str(e.value)


# --------------------------------------------------------------------------- your own functions
def tanh_by_exp(h):
    return 2.0 / (1.0 + np.exp(-2.0 * h)) - 1.0


def swish(h):
    return h / (1.0 + np.exp(-h))


def half_squared_gradient(Z, T):
    return 0.5 * (Z - T) + 0.5 * Z - 0.5 * T


def test_functions_of_your_own(cache):
    """An activation and a loss gradient passed as functions go through the same derivation:
    tanh written with exp, per layer, and squared error written another way, give the blocks of
    the dense Hessian of the tanh network; swish's f' and f'' match central differences."""
    H, layout = dense_cached(cache, "hvp", "tanh", "squared")
    net = Network([tanh_by_exp, "tanh"], half_squared_gradient)
    assert_blocks(net.hessian_blocks(*problem("squared")), H, layout)
    act = Network(swish).activations(2)[0]
    h = np.linspace(-2.0, 2.0, 7)[:, None]
    g = np.linspace(0.5, 1.5, 7)[:, None]
    eps = 1e-4
    fd1 = (swish(h + eps) - swish(h - eps)) / (2 * eps)
    fd2 = (swish(h + eps) - 2 * swish(h) + swish(h - eps)) / eps ** 2
    assert rel(act.value_and_derivative(h)[1], fd1) < 1e-7
    assert rel(act.second_derivative_times(h, g), fd2 * g) < 1e-6


def test_kflr_in_sample_chunks_equals_the_whole_batch(monkeypatch):
    """KFLR back-propagates K columns per sample in chunks of samples (memory bound
    ``KFLR_NUMBERS``); chunking changes only the order of a sum."""
    import rop.blocks as B
    r = np.random.default_rng(7)
    sizes = [5, 7, 6, 4]
    Ws = [r.normal(size=(m, n)) for n, m in zip(sizes[:-1], sizes[1:])]
    bs = [r.normal(size=m) for m in sizes[1:]]
    X, T = r.normal(size=(5, 9)), np.abs(r.normal(size=(4, 9)))
    T /= T.sum(axis=0)
    whole = Network("tanh", "softmax").kflr(Ws, bs, X, T)
    monkeypatch.setattr(B, "KFLR_NUMBERS", 4 * 7 * 2)  # two samples per chunk
    chunked = Network("tanh", "softmax").kflr(Ws, bs, X, T)
    for a, b in zip(whole, chunked):
        assert np.allclose(a.G, b.G, rtol=1e-13, atol=1e-15)
