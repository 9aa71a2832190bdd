"""Sums of matrix products on BLAS: the runtime helper ``rt.gemm`` (rop/runtime/blas.py) and
the pass that emits it (rop/backend/gemm.py).

The helper is checked against NumPy's own ``a1 @ b1 + a2 @ b2 + c`` on every operand layout
Numba distinguishes (C, Fortran, and unknown: strided and reversed views), on products and
biases that broadcast, on empty dimensions and on the errors NumPy raises.  The pass is
checked on the expressions it rewrites and those it must leave alone, and end to end: Hv of
programs with sums of products agrees with the compiler with the pass off, with JAX, and with
central differences.
"""

import ast
import os
import subprocess
import sys
import textwrap

import jax
import numba
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gemm_programs as P
from conftest import flat_err
from jax_oracle import as_float, jax_namespace, leaves
from rop import pipeline
from rop import runtime as rt
from rop.backend.emit import Emitter
from rop.backend.gemm import matmul_to_gemm, rank_of_expr
from rop.frontend.lower import lower


# --------------------------------------------------------------------------- the helper
@numba.njit
def nb1(a1, b1):
    return rt.gemm(a1, b1)


@numba.njit
def nb1c(a1, b1, c):
    return rt.gemm(a1, b1, c=c)


@numba.njit
def nb2(a1, b1, a2, b2):
    return rt.gemm(a1, b1, a2, b2)


@numba.njit
def nb2c(a1, b1, a2, b2, c):
    return rt.gemm(a1, b1, a2, b2, c=c)


@numba.njit
def nb4c(a1, b1, a2, b2, a3, b3, a4, b4, c):
    return rt.gemm(a1, b1, a2, b2, a3, b3, a4, b4, c=c)


def operand(rng, rows, cols, how):
    """A (rows, cols) float64 matrix stored as ``how``: C order, Fortran order (a transpose),
    or a view of unknown layout (every other column; rows reversed)."""
    if how == "C":
        return rng.normal(size=(rows, cols))
    if how == "F":
        return np.asfortranarray(rng.normal(size=(rows, cols)))
    if how == "step":
        return rng.normal(size=(rows, 2 * cols))[:, ::2]
    if how == "rev":
        return rng.normal(size=(rows, cols))[::-1]
    raise ValueError(how)


def numpy_sum(*args, c=None):
    out = args[0] @ args[1]
    for a, b in zip(args[2::2], args[3::2]):
        out = out + a @ b
    return out if c is None else out + c


LAYOUTS = ["C", "F", "step", "rev"]


@settings(max_examples=60, deadline=None)
@given(m=st.integers(0, 7), k1=st.integers(0, 6), k2=st.integers(0, 6), n=st.integers(0, 7),
       la=st.sampled_from(LAYOUTS), lb=st.sampled_from(LAYOUTS), seed=st.integers(0, 2**16))
def test_two_products_any_layout(m, k1, k2, n, la, lb, seed):
    rng = np.random.default_rng(seed)
    a1, b1 = operand(rng, m, k1, la), operand(rng, k1, n, lb)
    a2, b2 = operand(rng, m, k2, lb), operand(rng, k2, n, la)
    got = nb2(a1, b1, a2, b2)
    want = numpy_sum(a1, b1, a2, b2)
    assert got.shape == want.shape and got.flags.c_contiguous
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)


@settings(max_examples=40, deadline=None)
@given(m=st.integers(0, 7), k=st.integers(0, 6), n=st.integers(0, 7),
       la=st.sampled_from(LAYOUTS), lb=st.sampled_from(LAYOUTS), bias=st.booleans(),
       seed=st.integers(0, 2**16))
def test_one_product_any_layout(m, k, n, la, lb, bias, seed):
    """A lone product (the user's ``W @ x`` and ``W @ x + b[:, None]``) goes to BLAS too."""
    rng = np.random.default_rng(seed)
    a, b = operand(rng, m, k, la), operand(rng, k, n, lb)
    if bias:
        c = rng.normal(size=(m, 1))
        got, want = nb1c(a, b, c), a @ b + c
    else:
        got, want = nb1(a, b), a @ b
    assert got.shape == want.shape and got.flags.c_contiguous
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("c_shape", [(), (5,), (1,), (4, 1), (1, 5), (4, 5), (1, 1)])
def test_bias_broadcast_into_the_output(c_shape):
    rng = np.random.default_rng(len(c_shape))
    a1, b1, a2, b2 = (operand(rng, *s, "C") for s in ((4, 3), (3, 5), (4, 2), (2, 5)))
    c = rng.normal(size=c_shape) if c_shape else 0.75
    np.testing.assert_allclose(nb2c(a1, b1, a2, b2, c), numpy_sum(a1, b1, a2, b2, c=c),
                               rtol=1e-13, atol=1e-13)


def test_bias_of_another_dtype_or_layout():
    rng = np.random.default_rng(3)
    a1, b1, a2, b2 = (operand(rng, *s, "C") for s in ((4, 3), (3, 5), (4, 2), (2, 5)))
    for c in (rng.normal(size=(5, 4)).T, rng.normal(size=(4, 10))[:, ::2],
              rng.integers(-3, 3, size=(4, 5)), rng.normal(size=5).astype(np.float32), 2):
        np.testing.assert_allclose(nb2c(a1, b1, a2, b2, c), numpy_sum(a1, b1, a2, b2, c=c),
                                   rtol=1e-6 if np.asarray(c).dtype == np.float32 else 1e-13)


def test_four_products_and_a_bias():
    rng = np.random.default_rng(4)
    ops = [operand(rng, r, c, lay) for (r, c), lay in zip(
        [(3, 2), (2, 6), (3, 4), (4, 6), (3, 1), (1, 6), (3, 5), (5, 6)],
        ["C", "F", "F", "C", "step", "rev", "C", "C"])]
    c = rng.normal(size=(3, 1))
    np.testing.assert_allclose(nb4c(*ops, c), numpy_sum(*ops, c=c), rtol=1e-13)


@pytest.mark.parametrize("shapes", [
    ((4, 3), (3, 1), (4, 2), (2, 5)),   # (4, 1) + (4, 5)
    ((1, 3), (3, 5), (4, 2), (2, 5)),   # (1, 5) + (4, 5)
    ((4, 3), (3, 5), (4, 2), (2, 1)),   # (4, 5) + (4, 1)
    ((1, 3), (3, 1), (4, 2), (2, 5)),   # (1, 1) + (4, 5)
])
def test_products_that_broadcast(shapes):
    rng = np.random.default_rng(5)
    args = [operand(rng, *s, "C") for s in shapes]
    np.testing.assert_allclose(nb2(*args), numpy_sum(*args), rtol=1e-13)
    c = rng.normal(size=(4, 5))
    np.testing.assert_allclose(nb2c(*args, c), numpy_sum(*args, c=c), rtol=1e-13)


def test_a_bias_that_widens_the_products():
    rng = np.random.default_rng(6)
    args = [operand(rng, *s, "C") for s in ((4, 3), (3, 1), (4, 2), (2, 1))]
    c = rng.normal(size=(4, 5))
    got = nb2c(*args, c)
    assert got.shape == (4, 5)
    np.testing.assert_allclose(got, numpy_sum(*args, c=c), rtol=1e-13)


def test_errors_are_numpys():
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(3, 5))
    with pytest.raises(ValueError, match="inner dimensions of product 2"):
        nb2(a, b, a, rng.normal(size=(2, 5)))
    with pytest.raises(ValueError, match="inner dimensions of product 1"):
        nb1(a, a)
    with pytest.raises(ValueError, match="broadcast"):
        nb2(a, b, rng.normal(size=(3, 2)), rng.normal(size=(2, 5)))
    with pytest.raises(ValueError, match="broadcast"):
        nb2c(a, b, a, b, rng.normal(size=(2, 5)))
    with pytest.raises(ValueError):
        numpy_sum(a, b, rng.normal(size=(3, 2)), rng.normal(size=(2, 5)))


def test_non_matrix_operands_are_the_plain_expression():
    """Vectors and float32: not a float64 matrix sum, so Numba evaluates the expression as
    written (same values as NumPy, no BLAS accumulation)."""
    rng = np.random.default_rng(8)
    W, U = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    x, h = rng.normal(size=3), rng.normal(size=2)
    np.testing.assert_allclose(nb2(W, x, U, h), W @ x + U @ h, rtol=1e-14)
    W32, x32 = W.astype(np.float32), rng.normal(size=(3, 5)).astype(np.float32)
    np.testing.assert_allclose(nb2(W32, x32, W32, x32), W32 @ x32 + W32 @ x32, rtol=1e-6)


def test_python_mode_is_the_expression_itself():
    rng = np.random.default_rng(9)
    a1, b1, a2, b2 = (rng.normal(size=s) for s in ((4, 3), (3, 5), (4, 2), (2, 5)))
    b = rng.normal(size=(4, 1))
    assert np.array_equal(rt.gemm(a1, b1, a2, b2, c=b), a1 @ b1 + a2 @ b2 + b)


def test_cached_code_finds_blas_in_a_fresh_process(tmp_path):
    """Numba's cache holds code that calls the kernel and dgemm by symbol name; a second
    process must load it (a cache hit) and bind the symbols again before running it (rop's
    loader does that for generated code; other code calls ``ensure_kernel`` itself)."""
    mod = tmp_path / "uses_gemm.py"
    mod.write_text(textwrap.dedent("""
        import numba, numpy as np
        from rop import runtime as rt
        from rop.runtime.blas import ensure_kernel

        ensure_kernel()

        @numba.njit(cache=True)
        def f(a, b, c, d):
            return rt.gemm(a, b, c, d, c=np.ones(1))

        rng = np.random.default_rng(0)
        a, b, c, d = (rng.normal(size=s) for s in ((3, 2), (2, 4), (3, 5), (5, 4)))
        assert np.allclose(f(a, b, c, d), a @ b + c @ d + 1.0)
        print(sum(f.stats.cache_hits.values()))
    """))
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "nbcache"), PYTHONPATH=str(tmp_path))
    runs = [subprocess.run([sys.executable, str(mod)], capture_output=True, text=True, env=env,
                           cwd=tmp_path, timeout=300) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
    assert [r.stdout.strip() for r in runs] == ["0", "1"]


KERNEL_PROBE = r"""
import itertools, json, sys
import numba, numpy as np
from rop import runtime as rt
from rop.runtime import blas

@numba.njit
def f2(a1, b1, a2, b2, c):
    return rt.gemm(a1, b1, a2, b2, c=c)

@numba.njit
def f1(a1, b1):
    return rt.gemm(a1, b1)

@numba.njit
def acc(a1, b1, c):
    return rt.gemm(a1, b1, into=c)

{operand}
rng = np.random.default_rng(3)
worst, cases = 0.0, 0
for la, lb, (m, k, n) in itertools.product("C F step rev".split(), "C F step rev".split(),
                                           [(4, 3, 5), (1, 3, 5), (4, 0, 5), (6, 7, 1)]):
    a1, b1 = operand(rng, m, k, la), operand(rng, k, n, lb)
    a2, b2 = operand(rng, 1, 2, lb), operand(rng, 2, n, la)  # a product that broadcasts
    for c in (rng.normal(size=n), rng.normal(size=(m, 1))):
        want = a1 @ b1 + a2 @ b2 + c
        worst = max(worst, float(np.max(np.abs(f2(a1, b1, a2, b2, c) - want), initial=0.0)))
        cases += 1
    worst = max(worst, float(np.max(np.abs(f1(a1, b1) - a1 @ b1), initial=0.0)))
    c = rng.normal(size=(m, n))
    want = a1 @ b1 + c
    out = acc(a1, b1, c)
    worst = max(worst, float(np.max(np.abs(out - want), initial=0.0)))
    assert np.shares_memory(out, c)
try:
    f1(np.ones((2, 3)), np.ones((4, 2)))
    raise SystemExit("no error")
except ValueError as e:
    assert "inner dimensions of product 1" in str(e), e
print(json.dumps(dict(impl=blas.kernel_impl, worst=worst, cases=cases)))
"""


@pytest.mark.parametrize("impl", ["C", "numba"])
def test_both_kernels_agree_with_numpy(impl, tmp_path):
    """The kernel built in C at install (rop/_gemm_kernel.c) and the same kernel compiled by
    Numba (``ROP_GEMM_KERNEL=numba``, where no C compiler was at hand) give NumPy's sums on
    every operand layout, broadcast products and biases, empty inner dimensions, ``into``,
    and NumPy's error -- each in a fresh process, since a process binds one of them."""
    env = dict(os.environ, ROP_GEMM_KERNEL="numba" if impl == "numba" else "auto",
               NUMBA_CACHE_DIR=str(tmp_path / impl))
    import inspect
    probe = KERNEL_PROBE.replace("{operand}", inspect.getsource(operand))  # the same layouts
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                       env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    import json
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["impl"] == impl and res["cases"] == 128 and res["worst"] < 1e-12, res


# --------------------------------------------------------------------------- the pass
TYPES = {"W": 2, "U": 2, "A": 2, "B": 2, "C": 2, "D": 2, "E": 2, "F": 2, "G": 2, "H": 2,
         "x": 1, "b": 1, "s": 0, "i": 0, "Ws": ("list", 2), "acts": ("list", 2)}


def fused(src, types=TYPES):
    out = matmul_to_gemm(ast.parse(src, mode="eval").body, rank_of_expr(types))
    return None if out is None else ast.unparse(out)


@pytest.mark.parametrize("src, want", [
    ("A @ B + C @ D", "rt.gemm(A, B, C, D)"),
    ("A @ B + C @ D + b[:, None]", "rt.gemm(A, B, C, D, c=b[:, None])"),
    ("b[:, None] + A @ B + C.T @ D", "rt.gemm(A, B, C.T, D, c=b[:, None])"),
    ("Ws[i] @ acts[i] + W @ acts[i + 1]", "rt.gemm(Ws[i], acts[i], W, acts[i + 1])"),
    ("A @ B", "rt.gemm(A, B)"),
    ("A @ B + b[:, None]", "rt.gemm(A, B, c=b[:, None])"),
    ("A @ B - C @ D + E @ F", "rt.gemm(A, B, E, F, c=-rt.gemm(C, D))"),
    ("A - C @ D - E @ F", "A - rt.gemm(C, D) - rt.gemm(E, F)"),  # subtracted: lone products
    ("A @ Q + C @ D", "rt.gemm(C, D, c=A @ Q)"),                  # Q of unknown rank
    ("np.tanh(W.T @ x) * (A @ B)", "np.tanh(W.T @ x) * rt.gemm(A, B)"),
    ("(A @ B + C @ D) * s", "rt.gemm(A, B, C, D) * s"),
    ("np.tanh(A @ B + C @ D)", "np.tanh(rt.gemm(A, B, C, D))"),
    ("(A @ B + C @ D) @ E + F @ G", "rt.gemm(rt.gemm(A, B, C, D), E, F, G)"),
    ("A @ B + C @ D + E @ F + G @ H + A @ H + s",
     "rt.gemm(A, B, C, D, E, F, G, H, c=rt.gemm(A, H, c=s))"),
    ("A @ B + C @ D + E @ F + G @ H + A @ H + B @ C",
     "rt.gemm(A, B, C, D, E, F, G, H, c=rt.gemm(A, H, B, C))"),
])
def test_matrix_products_go_to_gemm_a_sum_in_one_call(src, want):
    assert fused(src) == want


@pytest.mark.parametrize("src", [
    "A @ x + B @ x",             # matrix-vector products
    "x @ A",
    "A @ Q",                     # Q of unknown rank
    "A * B + C * D",
])
def test_other_expressions_are_left_alone(src):
    assert fused(src) is None


PROGRAMS = ["recurrent_step", "recurrent_gradient", "chain_and_difference",
            "broadcasting_products", "accumulating", "accumulating_kept",
            "accumulating_from_argument"]
SIZES = dict(m=4, p=3, q=5, n=6)


@pytest.fixture(scope="module")
def args():
    rng = np.random.default_rng(11)
    m, p, q, n = (SIZES[k] for k in "mpqn")
    W, U, b = rng.normal(size=(m, p)), rng.normal(size=(m, q)), rng.normal(size=m)
    X, H = rng.normal(size=(p, n)), rng.normal(size=(q, n))
    V = (rng.normal(size=W.shape), rng.normal(size=U.shape), rng.normal(size=b.shape))
    return (W, U, b, X, H), V


def compile_with(fn, types, fuse):
    Emitter.fuse_gemm = fuse
    try:
        return pipeline._compile(fn, lower(fn), ("W", "U", "b"), types, "numba")
    finally:
        Emitter.fuse_gemm = True


@pytest.mark.parametrize("name", PROGRAMS)
def test_hv_with_the_pass_matches_without_it_jax_and_differences(name, args):
    (W, U, b, X, H), V = args
    fn = getattr(P, name)
    types = {"W": 2, "U": 2, "b": 1, "X": 2, "H": 2}
    on = compile_with(fn, types, True)
    off = compile_with(fn, types, False)
    assert "rt.gemm(" in on.source and "rt.gemm(" not in off.source, on.source
    out_on, r_on = on.hvp(W, U, b, X, H, *V)
    out_off, r_off = off.hvp(W, U, b, X, H, *V)
    assert flat_err(leaves(out_on), leaves(out_off)) < 1e-13
    assert flat_err(leaves(r_on), leaves(r_off)) < 1e-12, "the pass changed Hv"

    jf = jax_namespace(P)[name]
    _, jt = jax.jvp(lambda w, u, c: jf(w, u, c, X, H), (W, U, b), V)
    assert flat_err(leaves(r_on), [as_float(t) for t in leaves(jt)]) < 1e-10

    for eps in (1e-4, 1e-6):
        plus = fn(W + eps * V[0], U + eps * V[1], b + eps * V[2], X, H)
        minus = fn(W - eps * V[0], U - eps * V[1], b - eps * V[2], X, H)
        fd = [(np.asarray(p) - np.asarray(q)) / (2 * eps) for p, q in zip(leaves(plus), leaves(minus))]
        assert flat_err(leaves(r_on), fd) < 1e-5


@pytest.mark.parametrize("name, into", [("accumulating", ["into=dW)", "into=R_dW)"]),
                                         ("accumulating_kept", []),
                                         ("accumulating_from_argument", [])])
def test_a_sum_is_accumulated_in_its_own_array_only_when_nothing_else_sees_it(name, into, args):
    """``dW += z @ x.T`` reuses dW's array (and R{dW}'s); where the old array is still held by
    another name it is not, and the primal equals the user's function run by NumPy."""
    (W, U, b, X, H), V = args
    fn = getattr(P, name)
    on = compile_with(fn, {"W": 2, "U": 2, "b": 1, "X": 2, "H": 2}, True)
    assert sorted(into) == sorted(set(__import__("re").findall(r"into=\w+\)", on.source)))
    keep = [a.copy() for a in (W, U, b, X, H, *V)]
    out, _ = on.hvp(W, U, b, X, H, *V)
    assert flat_err(leaves(out), leaves(fn(W, U, b, X, H))) < 1e-14
    assert all(np.array_equal(a, k) for a, k in zip((W, U, b, X, H, *V), keep))


def test_into_adds_into_the_array_when_it_fits():
    """``rt.gemm(..., into=c)`` is ``... + c``: added into c's own memory when c is a float64
    C matrix of the result's shape, else a new array with c untouched (Python and Numba)."""
    nb_into = numba.njit(lambda a, b, a2, b2, c: rt.gemm(a, b, a2, b2, into=c))
    rng = np.random.default_rng(5)
    a, b, a2, b2 = (rng.normal(size=s) for s in ((4, 3), (3, 5), (4, 2), (2, 5)))
    for f in (rt.gemm, nb_into):
        c = rng.normal(size=(4, 5))
        want = a @ b + a2 @ b2 + c  # NumPy, before c changes
        out = f(a, b, a2, b2, into=c) if f is rt.gemm else f(a, b, a2, b2, c)
        assert np.shares_memory(out, c) and np.allclose(out, want, rtol=1e-14, atol=1e-14)
        for c in (rng.normal(size=(1, 5)), rng.normal(size=(4, 5)).astype(np.float32),
                  np.asfortranarray(rng.normal(size=(4, 5)))):
            keep = c.copy()
            want = a @ b + a2 @ b2 + c
            out = f(a, b, a2, b2, into=c) if f is rt.gemm else f(a, b, a2, b2, c)
            assert np.allclose(out, want, rtol=1e-6 if c.dtype == np.float32 else 1e-14)
            if f is nb_into or c.shape != out.shape or c.dtype != out.dtype:
                assert not np.shares_memory(out, c) and np.array_equal(c, keep)


def test_the_deep_mlp_products_go_to_blas():
    """Every matrix product of the example, the user's own and the R-sums (forward R{h},
    R{dW}, the backward R{W^T d}), is an rt.gemm call with the expression as written beside
    it: no ``@`` is left outside the comments."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
    import deep_mlp
    src = pipeline._compile(deep_mlp.backprop.fn, lower(deep_mlp.backprop.fn), ("Ws", "bs"),
                            {"Ws": ("list", 2), "bs": ("list", 1), "X": 2, "T": 2},
                            "python").source
    primal, hvp = src.split("def backprop_hvp")
    assert primal.count("rt.gemm(") == 3 and hvp.count("rt.gemm(") == 8, src
    assert ("R_h = rt.gemm(R_Ws[i], acts[i], Ws[i], R_acts[i], c=R_bs[i][:, None])  "
            "# = R_Ws[i] @ acts[i] + Ws[i] @ R_acts[i] + R_bs[i][:, None]") in hvp
    assert "R_dWs[i] = rt.gemm(R_d, acts[i].T, d, R_acts[i].T)" in hvp
    assert ("h = rt.gemm(Ws[i], acts[i], c=bs[i][:, None])  "
            "# = Ws[i] @ acts[i] + bs[i][:, None]") in primal
    code = [line.split("#")[0] for line in src.splitlines()]
    assert not [c for c in code if "@" in c]
