"""Hv through loops that run to a fixed point (relaxations), recurrent backpropagation first.

The loop runs as written (outputs, counts and accumulators are the function's own); when its
change test ended it, the R-state relaxes on alone with the primal state fixed, to the loop's
tolerance relative to its size; a loop stopped at its own cap is the path it took.  Checked
against JAX (long unrolled relaxations for limits, the same count of steps for paths) and
central differences of the original functions, in both modes."""

import inspect
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import rel_err
from examples.recurrent_backprop import problem, rbp_gradient, rbp_gradient_fixed
from rop import RopConvergenceError, rop
from rop.errors import RopConvergenceWarning


def loss_jax(W, I, target, mask, steps=400):
    """The same loss at the fixed point, by a long unrolled relaxation (independent of rop)."""
    y = jnp.zeros(W.shape[0])
    for _ in range(steps):
        y = jax.nn.sigmoid(W @ y) + I
    return 0.5 * jnp.sum(mask * (y - target) ** 2)


def rbp_jax(W, I, target, mask, steps, adjoint_steps):
    """rbp_gradient's second output, as written, for fixed counts of steps."""
    n = W.shape[0]
    y = jnp.zeros(n)
    for _ in range(steps):
        y = jax.nn.sigmoid(W @ y) + I
    s = y - I
    ds = s * (1.0 - s)
    e = mask * (y - target)
    z = jnp.zeros(n)
    for _ in range(adjoint_steps):
        z = ds * (W.T @ z + e)
    return jnp.outer(z, y)


def central_differences_match(f, x, v, r, rtol=1e-6):
    """R against (f(x + eps v) - f(x - eps v)) / (2 eps) at two steps (the better one)."""
    errs = []
    for eps in (1e-4, 1e-6):
        fd = (np.asarray(f(x + eps * v), dtype=float) - np.asarray(f(x - eps * v), dtype=float)) \
            / (2 * eps)
        scale = max(np.max(np.abs(fd)), np.max(np.abs(r)), 1e-8)
        errs.append(float(np.max(np.abs(np.asarray(r, dtype=float) - fd))) / scale)
    return min(errs) <= rtol


def oracle(W, I, target, mask, V):
    g = jax.grad(loss_jax)
    grad, hv = jax.jvp(lambda w: g(w, I, target, mask), (W,), (V,))
    return np.asarray(grad), np.asarray(hv)


# ----------------------------------------------------------------------------- programs

def relax_count(W, b, tol=1e-12, max_it=1000):
    """A relaxation that returns its iteration count."""
    y = np.zeros(b.shape[0])
    change = 1.0
    it = 0
    while change > tol and it < max_it:
        y_new = np.tanh(W @ y) + b
        change = np.max(np.abs(y_new - y))
        y = y_new
        it = it + 1
    return y, it


def relax_accumulate(W, b, tol=1e-10, max_it=1000):
    """An accumulator of the path beside the relaxing state: (y, t * k)."""
    y = np.zeros(b.shape[0])
    change = 1.0
    k = 0
    t = 0.0
    while change > tol and k < max_it:
        y_new = np.tanh(W @ y) + b
        change = np.max(np.abs(y_new - y))
        t = t + np.sum(y_new)
        y = y_new
        k = k + 1
    return y, t * k


def relax_five_steps(W, b):
    """Stops at its own cap long before the tolerance: the user means these 5 steps."""
    y = np.zeros(b.shape[0])
    change = 1.0
    it = 0
    while change > 1e-12 and it < 5:
        y_new = np.tanh(W @ y) + b
        change = np.max(np.abs(y_new - y))
        y = y_new
        it = it + 1
    return y


def relax_unstable(a, max_it=100):
    """x = a x^2 from x = 1: at a = 1 the primal stops at once (x = 1 is a fixed point), but
    d(a x^2)/dx = 2 there: R{x} = 2 R{x} + R{a} has no fixed point (nor has the limit a
    derivative in a)."""
    x = 1.0
    change = 1.0
    it = 0
    while change > 1e-12 and it < max_it:
        x_new = a * x * x
        change = abs(x_new - x)
        x = x_new
        it = it + 1
    return x


def relax_maybe_no_iteration(W, b, change0):
    """With change0 = 0 the loop makes no iteration: nothing to relax."""
    y = np.tanh(W @ b)
    change = change0
    while change > 1e-12:
        y_new = np.tanh(W @ y) + b
        change = np.max(np.abs(y_new - y))
        y = y_new
    return y


def relax_gauss_seidel(W, b):
    """A sweep over the units inside the relaxation: the R-update needs each unit's primal
    value, so R follows the primal's iterations (the path)."""
    n = b.shape[0]
    y = np.zeros(n)
    change = 1.0
    it = 0
    while change > 1e-13 and it < 1000:
        y_old = y.copy()
        for i in range(n):
            y[i] = np.tanh(W[i] @ y) + b[i]
        change = np.max(np.abs(y - y_old))
        it = it + 1
    return y


def relax_reassigned(W, b):
    """The R-update reads `h` between its two assignments: no frozen value is the one it read,
    so R follows the primal's iterations (the path)."""
    y = np.zeros(b.shape[0])
    change = 1.0
    it = 0
    while change > 1e-13 and it < 1000:
        h = W @ y
        g = 0.5 * h * h
        h = np.tanh(h)
        y_new = h + 0.1 * np.tanh(g) + b
        change = np.max(np.abs(y_new - y))
        y = y_new
        it = it + 1
    return y


def relax_relative_measure(W, b, tol=1e-10):
    """The test written `tol <= change` and a relative measure, which reads the state
    `y_new` outside the difference too."""
    y = np.zeros(b.shape[0])
    change = 1.0
    it = 0
    while tol <= change and it < 500:
        y_new = np.tanh(W @ y) + b
        change = np.max(np.abs(y_new - y)) / np.max(np.abs(y_new))
        y = y_new
        it = it + 1
    return y


def relax_update_in_place(W, b, tol=1e-10):
    """y rebound to its update; the change measured against a saved reference."""
    y = np.zeros(b.shape[0])
    change = 1.0
    it = 0
    while change > tol and it < 500:
        y_old = y
        y = np.tanh(W @ y) + b
        change = np.sqrt(np.sum((y - y_old) ** 2))
        it = it + 1
    return 2.0 * y


def relax_coupled(W, b, tol=1e-10):
    """Two states, the change measured on one: the other relaxes with it; the count stays."""
    y = np.zeros(b.shape[0])
    z = np.zeros(b.shape[0])
    change = 1.0
    it = 0
    while change > tol and it < 500:
        z = 0.5 * np.tanh(W.T @ y) + 0.1 * z
        y_new = np.tanh(W @ y + 0.3 * z) + b
        change = np.max(np.abs(y_new - y))
        y = y_new
        it = it + 1
    return y, z, it


def relax_per_column(W, B, tol=1e-10):
    """A relaxation inside a for loop, one per column."""
    out = np.zeros(B.shape)
    for j in range(B.shape[1]):
        y = np.zeros(B.shape[0])
        change = 1.0
        it = 0
        while change > tol and it < 500:
            y_new = np.tanh(W @ y) + B[:, j]
            change = np.max(np.abs(y_new - y))
            y = y_new
            it = it + 1
        out[:, j] = y
    return out


def coupled_jax(W, b, steps=400):
    y, z = jnp.zeros(b.shape[0]), jnp.zeros(b.shape[0])
    for _ in range(steps):
        z = 0.5 * jnp.tanh(W.T @ y) + 0.1 * z
        y = jnp.tanh(W @ y + 0.3 * z) + b
    return y, z


SHAPES = {  # program -> (second argument, its limit under JAX as a function of W)
    "relax_relative_measure": (lambda b, B: b, lambda W, b, B: tanh_steps_jax(W, b, 400)),
    "relax_update_in_place": (lambda b, B: b, lambda W, b, B: 2.0 * tanh_steps_jax(W, b, 400)),
    "relax_coupled": (lambda b, B: b, lambda W, b, B: coupled_jax(W, b)),
    "relax_per_column": (lambda b, B: B, lambda W, b, B: jnp.stack(
        [tanh_steps_jax(W, B[:, j], 400) for j in range(B.shape[1])], axis=1)),
}


def small(seed=5, n=6):
    rng = np.random.default_rng(seed)
    W = 0.4 * rng.normal(size=(n, n)) / np.sqrt(n)
    b = rng.normal(size=n)
    return W, b, rng.normal(size=(n, n))


def tanh_steps_jax(W, b, steps):
    y = jnp.zeros(b.shape[0])
    for _ in range(steps):
        y = jnp.tanh(W @ y) + b
    return y


MODES = ["numba", "python"]


@pytest.fixture(scope="module")
def net():
    W, I, target, mask = problem(n=16, n_in=5, n_out=3, seed=3)
    V = np.random.default_rng(7).normal(size=W.shape)
    return W, I, target, mask, V


@pytest.mark.parametrize("fn", [rbp_gradient, rbp_gradient_fixed], ids=["while", "for"])
def test_relaxation_hvp_matches_jax(net, fn):
    W, I, target, mask, V = net
    (loss, g), (_, hv) = fn.hvp(W, I, target, mask, v=(V,))
    g_ref, hv_ref = oracle(W, I, target, mask, V)
    assert rel_err(g, g_ref) < 1e-10
    assert rel_err(hv, hv_ref) < 1e-8


def test_relaxation_python_mode_agrees(net):
    W, I, target, mask, V = net
    py = rop(rbp_gradient.fn, wrt=("W",), mode="python")
    _, (_, hv_py) = py.hvp(W, I, target, mask, v=(V,))
    _, (_, hv_nb) = rbp_gradient.hvp(W, I, target, mask, v=(V,))
    assert rel_err(hv_py, hv_nb) < 1e-12


def test_generated_code_relaxes_the_r_state_after_the_loop(net):
    W, I, target, mask, V = net
    rbp_gradient.hvp(W, I, target, mask, v=(V,))
    src = rbp_gradient.hvp.source.split("def rbp_gradient_hvp")[1]
    # the primal loop is the user's, its R-statements beside it (R follows the path)
    assert "\n    while change > tol and it < max_it:\n" in src
    primal_loop = src.split("\n    while change > tol and it < max_it:\n")[1].split("\n    if ")[0]
    assert "y = y_new" in primal_loop and "R_y = R_y_new" in primal_loop
    assert "change_R" not in primal_loop
    # after it, when the change test ended it, the R-update alone, to a relative tolerance
    assert "if n_primal > 0 and (not change > tol):" in src
    r_loop = src.split("while not converged_R and n_R < 10 * max_it:")[1]
    r_loop = r_loop.split("if not converged_R")[0]
    assert "change_R = np.max(np.abs(R_y_new - R_y))" in r_loop
    assert "size_R = np.max(np.abs(R_y_new))" in r_loop
    assert "converged_R = change_R <= tol * size_R < np.inf" in r_loop
    assert "R_y = R_y_new" in r_loop
    code = "\n".join(ln for ln in r_loop.splitlines() if not ln.strip().startswith("#"))
    for primal in ("    y = ", "    y_new = ", "    change = ", "    it = ", "sigmoid("):
        assert primal not in code, primal  # the primal state stays where the loop left it


def test_r_state_needs_more_iterations_than_primal(net):
    """With a tolerance the primal meets early, the R-update goes on alone: stopping with the
    primal would return a half-relaxed R{y}."""
    W, I, target, mask, V = net
    V = 1e3 * V  # a large direction: R{y} starts far from its limit
    for mode in ("numba", "python"):
        f = rop(rbp_gradient.fn, wrt=("W",), mode=mode)
        out, (_, hv) = f.hvp(W, I, target, mask, 1e-9, 5000, v=(V,))
        _, hv_ref = oracle(W, I, target, mask, V)
        assert rel_err(hv, hv_ref) < 1e-7
        # the primal is the function's own, bit for bit
        ref = rbp_gradient(W, I, target, mask, 1e-9, 5000)
        assert out[0] == ref[0] and np.array_equal(out[1], ref[1])


@pytest.mark.parametrize("mode", ["numba", "python"])
def test_r_of_a_relaxation_is_linear_in_v(net, mode):
    """The R-tolerance is relative to the R-state's size: R(10 v) = 10 R(v)."""
    W, I, target, mask, V = net
    f = rop(rbp_gradient.fn, wrt=("W",), mode=mode)
    for tol in (1e-9, 1e-13):
        _, (r1, hv1) = f.hvp(W, I, target, mask, tol, 5000, v=(V,))
        _, (r10, hv10) = f.hvp(W, I, target, mask, tol, 5000, v=(10.0 * V,))
        _, (r01, hv01) = f.hvp(W, I, target, mask, tol, 5000, v=(1e-3 * V,))
        assert rel_err(hv10 / 10.0, hv1) < 1e-10 and abs(r10 / 10.0 - r1) <= 1e-10 * abs(r1)
        assert rel_err(hv01 / 1e-3, hv1) < 1e-10
        _, (r0, hv0) = f.hvp(W, I, target, mask, tol, 5000, v=(np.zeros_like(V),))
        assert r0 == 0.0 and not hv0.any()


@pytest.mark.parametrize("mode", ["numba", "python"])
def test_relaxation_stopped_at_its_cap_is_the_path(net, mode):
    """`while change > 1e-13 and it < 3` stops at its cap: the user means these 3 steps; R is
    their derivative, and nothing is reported."""
    W, I, target, mask, V = net
    f = rop(rbp_gradient.fn, wrt=("W",), mode=mode)
    out, (_, hv) = f.hvp(W, I, target, mask, 1e-13, 3, v=(V,))
    ref = rbp_gradient(W, I, target, mask, 1e-13, 3)
    assert out[0] == ref[0] and np.array_equal(out[1], ref[1])
    assert central_differences_match(lambda w: rbp_gradient(w, I, target, mask, 1e-13, 3)[1],
                                     W, V, hv)
    _, hv_jax = jax.jvp(lambda w: rbp_jax(w, I, target, mask, 3, 3), (W,), (V,))
    assert rel_err(hv, hv_jax) < 1e-10


def test_relaxation_off_follows_the_primal_path(net):
    W, I, target, mask, V = net
    f = rop(rbp_gradient.fn, wrt=("W",), relaxation="off", mode="python")
    f.hvp(W, I, target, mask, v=(V,))
    assert "change_R" not in f.hvp.source


# ----------------------------------------------------------------------------- the primal stays

def same_primal(out, ref, mode):
    """Python mode runs the same NumPy calls: bit for bit.  Numba's tanh/exp/matmul may differ
    in the last bits; the iteration counts, integers, must still be equal."""
    def items(x):
        return x if isinstance(x, tuple) else (x,)
    for o, r in zip(items(out), items(ref)):
        if isinstance(r, (int, np.integer)):
            assert o == r, (o, r)
        elif mode == "python":
            assert np.array_equal(o, r), (o, r)
        else:
            assert rel_err(o, r) < 1e-13


@pytest.mark.parametrize("mode", MODES)
def test_relaxation_returning_its_count_keeps_it(mode):
    W, b, V = small()
    f = rop(relax_count, wrt=("W",), mode=mode)
    for tol in (1e-12, 1e-6, 1e-3):  # the looser, the more the R-update has left to do
        ref = relax_count(W, b, tol)
        out, (r_y, r_it) = f.hvp(W, b, tol, v=(V,))
        same_primal(out, ref, mode)
        assert r_it == 0
        _, r_lim = jax.jvp(lambda w: tanh_steps_jax(w, b, 400), (W,), (V,))
        assert rel_err(r_y, r_lim) < 10 * tol + 1e-11  # R{y} of the limit, to the tolerance


@pytest.mark.parametrize("mode", MODES)
def test_relaxation_keeps_its_accumulators(mode):
    W, b, V = small(seed=6)
    f = rop(relax_accumulate, wrt=("W",), mode=mode)
    for tol in (1e-10, 1e-4):
        ref = relax_accumulate(W, b, tol)
        out, (r_y, r_tk) = f.hvp(W, b, tol, v=(V,))
        same_primal(out, ref, mode)
        y_ref, tk_ref = ref
        k = int(round(tk_ref / relax_accumulate_t(W, b, tol)))
        # t * k is a sum over the iterations the loop made: its R is the path's (k steps)

        def tk_jax(w):
            y, t = jnp.zeros(b.shape[0]), 0.0
            for _ in range(k):
                y = jnp.tanh(w @ y) + b
                t = t + jnp.sum(y)
            return t * k
        _, r_tk_jax = jax.jvp(tk_jax, (W,), (V,))
        assert abs(r_tk - float(r_tk_jax)) <= 1e-10 * abs(float(r_tk_jax))
        # y is the limit's
        _, r_lim = jax.jvp(lambda w: tanh_steps_jax(w, b, 400), (W,), (V,))
        assert rel_err(r_y, r_lim) < 10 * tol + 1e-11
    # and against the function itself (the count does not move under these steps)
    _, (r_y, r_tk) = f.hvp(W, b, 1e-10, v=(V,))
    assert central_differences_match(lambda w: relax_accumulate(w, b, 1e-10)[1], W, V, r_tk)
    assert central_differences_match(lambda w: relax_accumulate(w, b, 1e-10)[0], W, V, r_y)


def relax_accumulate_t(W, b, tol):
    """t of relax_accumulate (to recover the count k from t * k)."""
    y, t, change, k = np.zeros(b.shape[0]), 0.0, 1.0, 0
    while change > tol and k < 1000:
        y_new = np.tanh(W @ y) + b
        change = np.max(np.abs(y_new - y))
        t = t + np.sum(y_new)
        y = y_new
        k += 1
    return t


@pytest.mark.parametrize("mode", MODES)
def test_loop_stopped_at_its_own_cap_is_differentiated_as_written(mode):
    W, b, V = small(seed=7)
    W = 3.0 * W  # slow: 5 steps are far from the fixed point
    f = rop(relax_five_steps, wrt=("W",), mode=mode)
    out, r = f.hvp(W, b, v=(V,))  # raises nothing
    same_primal(out, relax_five_steps(W, b), mode)
    assert central_differences_match(lambda w: relax_five_steps(w, b), W, V, r)
    _, r_jax = jax.jvp(lambda w: tanh_steps_jax(w, b, 5), (W,), (V,))
    assert rel_err(r, r_jax) < 1e-12


@pytest.mark.parametrize("mode", MODES)
def test_r_state_that_cannot_converge_raises(mode):
    line = inspect.getsourcelines(relax_unstable)[1] + 7  # the `while` line
    assert "while change" in inspect.getsourcelines(relax_unstable)[0][7]
    f = rop(relax_unstable, wrt=("a",), mode=mode)
    with pytest.raises(RopConvergenceError,
                       match=rf"test_relaxation.py:{line}: the relaxation `while change > 1e-12 "
                             r"and it < max_it:` converged, but its R-state did not: after 1000 "
                             r"iterations"):
        f.hvp(1.0, v=(1.0,))
    # where the iteration contracts (a = 0.5: x -> 0), nothing is reported
    out, r = f.hvp(0.5, v=(1.0,))
    assert out == relax_unstable(0.5)
    assert central_differences_match(lambda a: relax_unstable(a), 0.5, 1.0, r, rtol=1e-6)
    g = rop(relax_unstable, wrt=("a",), mode=mode, on_divergence="warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out, _ = g.hvp(1.0, v=(1.0,))
    assert out == 1.0
    assert any(issubclass(w.category, RopConvergenceWarning) and "R-state did not" in
               str(w.message) for w in caught)


@pytest.mark.parametrize("mode", MODES)
def test_relaxation_that_makes_no_iteration(mode):
    W, b, V = small(seed=8)
    f = rop(relax_maybe_no_iteration, wrt=("W",), mode=mode)
    for change0 in (0.0, 1.0):
        out, r = f.hvp(W, b, change0, v=(V,))
        same_primal(out, relax_maybe_no_iteration(W, b, change0), mode)
        assert central_differences_match(lambda w: relax_maybe_no_iteration(w, b, change0),
                                         W, V, r)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fn", [relax_gauss_seidel, relax_reassigned],
                         ids=["nested_sweep", "reassigned"])
def test_inseparable_relaxation_follows_the_path(fn, mode):
    W, b, V = small(seed=9)
    f = rop(fn, wrt=("W",), mode=mode)
    out, r = f.hvp(W, b, v=(V,))
    assert "n_R" not in f.hvp.source  # no R-loop: R follows the iterations made
    same_primal(out, fn(W, b), mode)
    assert central_differences_match(lambda w: fn(w, b), W, V, r)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(SHAPES))
def test_relaxation_forms(name, mode):
    """Other ways to write a relaxation: the outputs are the function's, R is the limit's to
    the tolerance (JAX, a long unrolled relaxation), and with a tight tolerance also the
    function's own central differences."""
    fn = globals()[name]
    W, b, V = small(seed=11)
    B = np.random.default_rng(12).normal(size=(b.shape[0], 3))
    second, limit = SHAPES[name]
    f = rop(fn, wrt=("W",), mode=mode)
    for tol in (1e-10, 1e-5):
        args = (W, second(b, B), tol)
        out, r = f.hvp(*args, v=(V,))
        same_primal(out, fn(*args), mode)
        _, r_lim = jax.jvp(lambda w: limit(w, b, B), (W,), (V,))
        got = r[:2] if name == "relax_coupled" else (r,)
        ref = r_lim if name == "relax_coupled" else (r_lim,)
        for x, y in zip(got, ref):
            assert rel_err(x, y) < 10 * tol + 1e-11, (tol, rel_err(x, y))
        if tol == 1e-10:
            for k, x in enumerate(got):
                def output(w, k=k):
                    y = fn(w, *args[1:])
                    return y[k] if name == "relax_coupled" else y
                assert central_differences_match(output, W, V, x)
