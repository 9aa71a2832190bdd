"""More bad inputs (issue 7): programs and calls that tests/test_bad_programs.py does not cover.

Programs live, undecorated, in ``tests/bad_inputs_more.py``.  Each syntax-level case expects a
:class:`RopSyntaxError` at the line marked ``# <-`` in that file (the column is where the text
``at`` starts on that line), with a message fragment, formatted as a compiler diagnostic (the
same check as tests/test_bad_programs.py).

Call-time cases expect a :class:`RopCallError` (or :class:`RopConvergenceError`, ``ValueError``
for bad decorator options) with a fragment, or, where the input is legitimate (aliased
parameters, integer directions, Fortran-ordered arrays), a correct result checked against JAX.

Documented behaviours tested here:

* **numeric globals are compiled in, and followed**: a function reading a module-level number
  (``SCALE``) is compiled with its value; a call after the global changed compiles again with
  the new value (issue 17; tests/test_globals.py has the full story);
* **aliased parameters**: passing the same array for two ``wrt`` parameters is allowed; rop
  never writes into its inputs, so R{outputs} is the derivative of the function of two
  independent parameters evaluated at equal values, with independent directions;
* ``check_finite`` covers the differentiated parameters and the directions, not the other
  arguments (NaN in data gives NaN results, no error).

``KNOWN_DEFECTS``: what rop *should* do but does not yet; each runs as a strict xfail (it fails
the run when rop is fixed, so that the entry moves into the cases) and prints its reason.
"""

from __future__ import annotations

import inspect
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bad_inputs_more as B
from rop import rop
from rop.errors import (RopCallError, RopConvergenceError, RopConvergenceWarning,
                        RopSyntaxError)
from test_bad_programs import Bad, check_bad

MODES = ("python", "numba")


def marked(fn, at, fragment, wrt=("W",), anchor=None):
    """A Bad case pointing at the line of ``anchor`` (default ``fn``) marked ``# <-`` (or its
    only line), at the column where ``at`` starts."""
    a = anchor or fn
    lines, first = inspect.getsourcelines(a)
    rel = next((i for i, ln in enumerate(lines) if "# <-" in ln), 0)
    col = lines[rel].index(at) + 1
    return Bad(fn, wrt, rel, col, fragment, at, anchor)


SYNTAX_CASES = {
    # -- recursion -----------------------------------------------------------------------
    "mutual_recursion": marked(B.mutual_recursion, "_pong(x", "recursion", anchor=B._ping),
    "recursion_in_a_branch": marked(B.recursion_in_branch, "recursion_in_branch(W, -x)",
                                    "recursion"),
    # -- generators ----------------------------------------------------------------------
    "generator_expression": marked(B.generator_expression, "(w * x",
                                   "a generator expression is supported only as the argument of `sum`"),
    "yield_from": marked(B.yield_from, "yield", "generators (`yield`)"),
    "helper_is_a_generator": marked(B.calls_generator_helper, "yield", "generators (`yield`)",
                                    anchor=B._gen_helper),
    # -- closures and globals ------------------------------------------------------------
    "closure_over_enclosing_local": marked(B.closure_over_local, "a * (W", "`a` is not defined"),
    "nested_def": marked(B.nested_def, "def inner", "nested function definitions"),
    "lambda_helper_at_module_level": marked(B.calls_lambda, "square_lambda",
                                            "expected a function definition",
                                            anchor=B.square_lambda),
    "list_global_as_value": marked(B.list_global, "LAYERS", "`LAYERS` (list)"),
    "string_global_as_value": marked(B.string_global, "NAME", "`NAME` (str)"),
    # -- unknown functions and names -----------------------------------------------------
    "np_sort": marked(B.unknown_sort, "np.sort", "no R-rule for `np.sort`"),
    "np_median": marked(B.unknown_median, "np.median", "no R-rule for `np.median`"),
    "math_gamma": marked(B.unknown_math_gamma, "math.gamma", "no R-rule for `math.gamma`"),
    "builtin_sorted": marked(B.unknown_builtin_sorted, "sorted", "no R-rule for `sorted`"),
    "np_linalg_inv": marked(B.unknown_linalg_inv, "np.linalg.inv", "no R-rule for `np.linalg.inv`"),
    "undefined_global_name": marked(B.undefined_name, "not_defined_anywhere",
                                    "`not_defined_anywhere` is not defined"),
    # -- syntax outside the grammar ------------------------------------------------------
    "imaginary_literal": marked(B.imaginary_literal, "1j", "imaginary"),
    "walrus": marked(B.walrus, ":=", "`:=`"),
    "match_statement": marked(B.match_statement, "match", "`match`"),
    "set_literal": marked(B.set_literal, "{", "set literals"),
    "shift_operator": marked(B.shift_operator, "<<", "shifts"),
}


@pytest.mark.parametrize("case", list(SYNTAX_CASES.values()), ids=list(SYNTAX_CASES))
def test_bad_program_is_refused_at_its_place(case):
    check_bad(case)


# ----------------------------------------------------------------------------- call time

R = np.random.default_rng(11)
W_, b_, x_ = R.normal(size=(3, 3)), R.normal(size=3), R.normal(size=3)
V_, c_ = R.normal(size=(3, 3)), R.normal(size=3)


def _mv(mode):
    return rop(B.matvec, wrt=("W", "b"), mode=mode)


def _sc(mode):
    return rop(B.scalar_param, wrt=("a",), mode=mode)


def _nan_data(mode):
    out, r = _mv(mode).hvp(W_, b_, np.array([np.nan, 1.0, 2.0]), v=(V_, c_))
    assert np.isnan(out).all() and np.isnan(r).all()   # documented: data is not checked
    return "no error"


def _unchecked(mode):
    f = rop(B.matvec, wrt=("W",), check_finite=False, mode=mode)
    out, r = f.hvp(np.full((3, 3), np.nan), b_, x_, v=V_)
    assert np.isnan(out).all()
    return "no error"


# name -> (call(mode), expected exception type or None for "returns", message fragment)
CALL_CASES = {
    "data_wrong_length": (lambda m: _mv(m).hvp(W_, b_, np.ones(4), v=(V_, c_)),
                          RopCallError, "Generated file:"),
    "param_shapes_inconsistent": (lambda m: _mv(m).hvp(W_, np.ones(4), x_, v=(V_, np.ones(4))),
                                  RopCallError, "(`return np.tanh(W @ x + b)`): operands could not be broadcast"),
    "data_wrong_rank": (lambda m: _mv(m).hvp(W_, b_, np.ones((3, 2)), v=(V_, c_)),
                        RopCallError, "(`return np.tanh(W @ x + b)`): operands could not be broadcast"),
    "v_is_a_dict": (lambda m: _mv(m).hvp(W_, b_, x_, v={"W": V_, "b": c_}),
                    RopCallError, "one direction per wrt parameter ('W', 'b'), in that order; "
                                  "got dict"),
    "v_is_none": (lambda m: _mv(m).hvp(W_, b_, x_, v=None), RopCallError, "got NoneType"),
    "v_entry_is_a_string": (lambda m: _mv(m).hvp(W_, b_, x_, v=(V_, "abc")),
                            RopCallError, "the direction for `b` has shape (), expected (3,)"),
    "v_wrong_shape_transposed": (lambda m: _mv(m).hvp(W_, b_, x_, v=(np.ones((3, 1)), c_)),
                                 RopCallError, "the direction for `W` has shape (3, 1)"),
    "v_object_dtype": (lambda m: _mv(m).hvp(W_, b_, x_, v=(V_.astype(object), c_)),
                       RopCallError, "expected a real floating-point array"),
    "complex_parameter": (lambda m: _mv(m).hvp(W_ + 0j, b_, x_, v=(V_, c_)),
                          RopCallError, "parameter `W` has dtype complex128"),
    "bool_parameter": (lambda m: _mv(m).hvp(W_ > 0, b_, x_, v=(V_, c_)),
                       RopCallError, "parameter `W` has dtype bool"),
    "int32_parameter": (lambda m: _mv(m).hvp(W_, np.ones(3, dtype=np.int32), x_, v=(V_, c_)),
                        RopCallError, "parameter `b` has dtype int32"),
    "inf_in_parameter": (lambda m: _mv(m).hvp(np.full((3, 3), np.inf), b_, x_, v=(V_, c_)),
                         RopCallError, "`W` or its direction contains NaN or Inf"),
    "nan_in_direction": (lambda m: _mv(m).hvp(W_, b_, x_, v=(V_, np.array([np.nan, 0, 0]))),
                         RopCallError, "`b` or its direction contains NaN or Inf"),
    # (found by this file, fixed in rop while it was written)
    "nan_scalar_parameter": (lambda m: _sc(m).hvp(float("nan"), x_, v=1.0), RopCallError,
                             "`a` or its direction contains NaN or Inf"),
    "inf_scalar_direction": (lambda m: _sc(m).hvp(1.0, x_, v=float("inf")), RopCallError,
                             "`a` or its direction contains NaN or Inf"),
    "scalar_direction_is_an_array": (lambda m: _sc(m).hvp(1.0, x_, v=np.ones(3)),
                                     RopCallError, "`a` is a scalar, so its direction must be a "
                                                   "scalar, not shape (3,)"),
    "unknown_keyword": (lambda m: _mv(m).hvp(W_, b_, x_, v=(V_, c_), z=1),
                        RopCallError, "unexpected keyword argument 'z'"),
    "missing_v": (lambda m: _mv(m).hvp(W_, b_, x_), RopCallError,
                  "the direction is missing: call matvec.hvp(<the function's arguments>, v=...) "
                  "with v holding one direction per wrt parameter ('W', 'b')"),
    "nan_in_data_is_not_checked": (_nan_data, None, ""),
    "check_finite_off": (_unchecked, None, ""),
    # a relaxation stopped at its own cap is differentiated as the iterations it made
    "relaxation_diverges_to_its_cap": (lambda m: rop(B.diverging_relaxation, wrt="W", mode=m)
                                       .hvp(0.5 * W_, x_, v=V_), None, ""),
    "relaxation_oscillates_to_its_cap": (lambda m: rop(B.oscillating_relaxation, wrt="a", mode=m)
                                         .hvp(0.3, x_, v=1.0), None, ""),
    # the primal converged, its R-state cannot
    "relaxation_r_state_diverges": (lambda m: rop(B.unstable_fixed_point, wrt="a", mode=m)
                                    .hvp(1.0, x_, v=1.0), RopConvergenceError,
                                    "converged, but its R-state did not: after 500 iterations"),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(CALL_CASES))
def test_bad_call(name, mode):
    call, error, fragment = CALL_CASES[name]
    if error is None:
        call(mode)
        return
    with pytest.raises(error) as info:
        call(mode)
    assert fragment in str(info.value), str(info.value)


def test_integer_data_in_a_product_names_the_argument_and_the_source_line():
    """Numba's `@` needs one dtype; rop keeps integer arrays as they are (they may be
    indices), so integer data in a product fails to type in numba mode.  The error says
    where (the user's line) and what to pass; python mode computes what NumPy computes."""
    xi = np.arange(3)
    with pytest.raises(RopCallError) as info:
        _mv("numba").hvp(W_, b_, xi, v=(V_, c_))
    msg = str(info.value)
    line = inspect.getsourcelines(B.matvec)[1] + 1
    assert f"bad_inputs_more.py:{line} (`return np.tanh(W @ x + b)`)" in msg, msg
    assert "`x` is an array of int64" in msg and "np.asarray(x, dtype=np.float64)" in msg, msg
    assert "\x1b[" not in msg  # Numba's terminal colours are stripped
    out, r = _mv("python").hvp(W_, b_, xi, v=(V_, c_))
    ref = _mv("python").hvp(W_, b_, xi.astype(float), v=(V_, c_))
    np.testing.assert_allclose(r, ref[1], rtol=1e-14)


@pytest.mark.parametrize("option,value,fragment", [
    ("mode", "jit", "mode must be one of ('numba', 'python'), not 'jit'"),
    ("relaxation", "on", "relaxation must be 'auto' or 'off', not 'on'"),
    ("on_divergence", "ignore", "on_divergence must be 'raise' or 'warn', not 'ignore'"),
])
def test_bad_decorator_option(option, value, fragment):
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        rop(B.matvec, wrt="W", **{option: value})


@pytest.mark.parametrize("mode", MODES)
def test_relaxation_divergence_can_warn(mode):
    f = rop(B.unstable_fixed_point, wrt="a", mode=mode, on_divergence="warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out, _ = f.hvp(1.0, x_, v=1.0)
    assert np.array_equal(out, B.unstable_fixed_point(1.0, x_))
    assert any(issubclass(w.category, RopConvergenceWarning) and "after 500 iterations"
               in str(w.message) for w in caught)


# ----------------------------------------------------------------------------- legitimate inputs

def _jax_grad_fn():
    def g(W1, W2, x):
        a = W1 @ x
        h = jnp.tanh(a)
        y = W2 @ h
        dh = W2.T @ y
        da = dh * (1.0 - h * h)
        return jnp.outer(da, x), jnp.outer(y, h)
    return g


@pytest.mark.parametrize("mode", MODES)
def test_aliased_parameters_give_the_right_hv(mode):
    """The same array passed for W1 and W2 (both in wrt) with independent directions."""
    W = R.normal(size=(3, 3))
    x = R.normal(size=3)
    V1, V2 = R.normal(size=(3, 3)), R.normal(size=(3, 3))
    keep = W.copy()
    f = rop(B.two_weights_grad, wrt=("W1", "W2"), mode=mode)
    (g1, g2), (h1, h2) = f.hvp(W, W, x, v=(V1, V2))
    np.testing.assert_array_equal(W, keep)            # rop never writes into its inputs
    _, (j1, j2) = jax.jvp(lambda a, b: _jax_grad_fn()(a, b, x), (W, W.copy()), (V1, V2))
    np.testing.assert_allclose(h1, j1, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h2, j2, rtol=1e-10, atol=1e-12)
    # same as passing two equal but distinct arrays
    _, (k1, k2) = f.hvp(W, W.copy(), x, v=(V1, V2))
    np.testing.assert_allclose(h1, k1, rtol=1e-13)
    np.testing.assert_allclose(h2, k2, rtol=1e-13)


@pytest.mark.parametrize("mode", MODES)
def test_parameter_aliased_with_data(mode):
    """W2 = W1 passed as data (not in wrt): only W1 carries a direction."""
    W = R.normal(size=(3, 3))
    x = R.normal(size=3)
    V = R.normal(size=(3, 3))
    f = rop(B.two_weights_grad, wrt=("W1",), mode=mode)
    _, (h1, h2) = f.hvp(W, W, x, v=V)
    _, (j1, j2) = jax.jvp(lambda a: _jax_grad_fn()(a, W, x), (W,), (V,))
    np.testing.assert_allclose(h1, j1, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h2, j2, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_integer_direction_and_list_direction_are_converted(mode):
    f = _mv(mode)
    Vi = np.arange(9).reshape(3, 3) - 4
    _, r_int = f.hvp(W_, b_, x_, v=(Vi, c_))
    _, r_flt = f.hvp(W_, b_, x_, v=(Vi.astype(float), c_))
    _, r_lst = f.hvp(W_, b_, x_, v=(Vi.tolist(), list(c_)))
    np.testing.assert_array_equal(r_int, r_flt)
    np.testing.assert_array_equal(r_lst, r_flt)


@pytest.mark.parametrize("mode", MODES)
def test_integer_scalar_parameter_is_a_float(mode):
    f = _sc(mode)
    out_i, r_i = f.hvp(3, x_, v=0.5)
    out_f, r_f = f.hvp(3.0, x_, v=0.5)
    np.testing.assert_array_equal(out_i, out_f)
    np.testing.assert_array_equal(r_i, r_f)
    np.testing.assert_allclose(r_f, 2 * 3.0 * 0.5 * x_)


@pytest.mark.parametrize("mode", MODES)
def test_fortran_ordered_and_strided_inputs(mode):
    f = _mv(mode)
    ref = f.hvp(W_, b_, x_, v=(V_, c_))
    got = f.hvp(np.asfortranarray(W_), b_, np.repeat(x_, 2)[::2], v=(np.asfortranarray(V_), c_))
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-13)


def test_numeric_global_change_is_followed():
    """A module-level number is compiled in as a constant; after the global changes, .hvp of
    the decorated function uses the new value, as the plain function does (issue 17: it
    used to keep the value seen at decoration)."""
    f = rop(B.scaled, wrt="W", mode="python")
    old = B.SCALE
    try:
        out0, r0 = f.hvp(W_, x_, v=V_)
        np.testing.assert_allclose(out0, old * (W_ @ x_))
        B.SCALE = old + 1.0
        out1, r1 = f.hvp(W_, x_, v=V_)
        np.testing.assert_allclose(out1, (old + 1.0) * (W_ @ x_))
        np.testing.assert_allclose(r1, (old + 1.0) * (V_ @ x_))
        np.testing.assert_allclose(f(W_, x_), (old + 1.0) * (W_ @ x_))
    finally:
        B.SCALE = old


# ----------------------------------------------------------------------------- known defects

def _redecorate_after_global_change():
    old = B.SCALE
    try:
        rop(B.scaled, wrt="W", mode="python").hvp(W_, x_, v=V_)
        B.SCALE = old + 1.0
        out, r = rop(B.scaled, wrt="W", mode="python").hvp(W_, x_, v=V_)
        # a new decoration should compile the function as it is now
        np.testing.assert_allclose(out, (old + 1.0) * (W_ @ x_))
    finally:
        B.SCALE = old


def _expect(call, error, fragment):
    def run():
        with pytest.raises(error) as info:
            call()
        assert fragment in str(info.value)
    return run


def _float32_numba():
    out, r = _mv("numba").hvp(W_.astype(np.float32), b_, x_, v=(V_, c_))
    ref = _mv("python").hvp(W_, b_, x_, v=(V_, c_))
    np.testing.assert_allclose(r, ref[1], rtol=1e-5)


KNOWN_DEFECTS: dict = {}  # what rop should do but does not yet (strict xfail); none open

# defects this corpus found, fixed in rop: each must now behave as its expectation says
FIXED_DEFECTS = {
    "complex_scalar_parameter": (
        _expect(lambda: _sc("python").hvp(1 + 2j, x_, v=1.0), RopCallError, "floating point"),
        "a complex *scalar* wrt parameter is accepted and gives complex results (complex arrays "
        "are refused with RopCallError)"),
    "complex_scalar_direction": (
        _expect(lambda: _sc("python").hvp(1.0, x_, v=1j), RopCallError, "direction for `a`"),
        "a complex scalar direction escapes as a bare TypeError from float() (not RopCallError)"),
    "duplicate_wrt_name": (
        _expect(lambda: rop(B.matvec, wrt=("W", "W"), mode="python").hvp(W_, b_, x_, v=(V_, V_)),
                RopCallError, "`W`"),
        "wrt=('W', 'W') is accepted at decoration; the call fails with RopInternalError "
        "(SyntaxError: duplicate argument 'R_W' in the generated function)"),
    "float32_parameter_in_numba_mode": (
        _float32_numba,
        "a float32 wrt parameter (dtype kind 'f', accepted by the check) runs in python mode "
        "but fails in numba mode with 'Numba could not compile the generated code'"),
    "redecorating_after_a_global_changed": (
        _redecorate_after_global_change,
        "rop caches the lowered IR on the function object (fn.__rop_ir__), so decorating the "
        "same function again after a numeric global changed still uses the old value"),
}


@pytest.mark.parametrize("name", list(FIXED_DEFECTS))
def test_fixed_defect_stays_fixed(name):
    run, why = FIXED_DEFECTS[name]
    run()


@pytest.mark.parametrize("name", list(KNOWN_DEFECTS) or ["(none)"])
def test_known_defect(name):
    if name == "(none)":
        return
    run, why = KNOWN_DEFECTS[name]
    print(f"known rop defect {name}: {why}")
    try:
        run()
    except (Exception, pytest.fail.Exception) as exc:  # Failed: "DID NOT RAISE"
        pytest.xfail(f"{why} [{type(exc).__name__}: {str(exc)[:200]}]")
    pytest.fail(f"known defect {name} is fixed: move it into the cases")


def test_corpus_size():
    """tests/test_bad_programs.py and this file hold >= 50 distinct bad inputs together."""
    import test_bad_programs as T
    total = (len(T.SYNTAX_CASES) + len(T.CALL_CASES) + len(SYNTAX_CASES) + len(CALL_CASES)
             + 3 + len(KNOWN_DEFECTS) + len(FIXED_DEFECTS))
    assert len(SYNTAX_CASES) + len(CALL_CASES) >= 40
    assert total >= 90, total


# ----------------------------------------------------------------------------- issue 18
# messages that misled a user trying course code, each now saying what to change, at the line

ISSUE18_SYNTAX = {
    "is_compared_to_an_array": marked(B.is_compared_to_an_array, "x is W", "compares with None"),
    # np.polyval is Python code inside NumPy: refused at the user's line, never inside NumPy
    "library_python_function": marked(B.library_python_function, "np.polyval", "no R-rule"),
    "helper_without_its_argument": marked(B.helper_without_its_argument, "helper_with_default(",
                                          "missing the argument `x`"),
}


@pytest.mark.parametrize("case", list(ISSUE18_SYNTAX.values()), ids=list(ISSUE18_SYNTAX))
def test_issue18_message_at_the_line(case):
    check_bad(case)


@pytest.mark.parametrize("mode", MODES)
def test_shape_mismatch_names_the_line_and_the_shapes(mode):
    f = rop(B.shape_mismatch, wrt=("W",), mode=mode)
    with pytest.raises(RopCallError) as info:
        f.hvp(np.ones((3, 4)), np.ones(5), v=np.ones((3, 4)))
    msg = str(info.value)
    assert "bad_inputs_more.py:" in msg and "h = np.tanh(W @ x)" in msg, msg
    assert "5" in msg and "4" in msg, msg  # NumPy's own words name the sizes


@pytest.mark.parametrize("mode", MODES)
def test_memory_error_stays_a_memory_error(mode):
    f = rop(B.allocates_too_much, wrt=("W",), mode=mode)
    with pytest.raises(MemoryError):
        f.hvp(np.ones(3), 10 ** 15, v=np.ones(3))


@pytest.mark.parametrize("mode", MODES)
def test_arrays_of_other_libraries_are_read_as_numpy(mode):
    f = rop(B.shape_mismatch, wrt=("W",), mode=mode)
    W, x = np.ones((3, 4)) / 4, np.ones(4)
    ref = f.hvp(W, x, v=W)
    got = f.hvp(jnp.asarray(W), jnp.asarray(x), v=jnp.asarray(W))
    assert np.allclose(got[0], ref[0]) and np.allclose(got[1], ref[1])
    zero_d = f.hvp(W, x, v=W)  # and a 0-d array passed for a number is that number
    assert np.allclose(zero_d[1], ref[1])
