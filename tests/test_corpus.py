"""The corpus of everyday numeric Python (tests/corpus_programs.py) through rop, end to end.

For every program: rop compiles it (once per mode: "numba" and "python"); for each of its input
points (chosen away from branch boundaries, loop-exit thresholds and kinks, and several per
program with branches so that every branch is taken) and a random direction v:

* the primal outputs equal the original function's;
* R{outputs} of mode="numba" equals mode="python" (relative 1e-12);
* R{outputs} matches central differences of the original function,
  (f(x + eps v) - f(x - eps v)) / (2 eps), at eps = 1e-4 and eps = 1e-6: the better of the two
  within 1e-6 relative (truncation error ~eps^2 for the first, round-off ~1e-16/eps for the
  second);
* R{outputs} matches JAX's ``jax.jvp`` of the same source re-executed with ``np`` bound to
  ``jax.numpy`` and ``math`` to a shim (Python control flow on values works under ``jvp``
  without ``jit``), except for the programs in ``JAX_SKIP`` (in-place writes into arrays,
  ``int()`` of a traced value), which rely on the finite differences.

``KNOWN_ISSUES`` lists programs that expose a bug in rop (crash, refusal of an accepted
construct, Numba typing failure, wrong derivative); they stay in the corpus and are skipped
only while listed there.
"""

from __future__ import annotations

import ast
import collections
import copy
import functools
import inspect
import types
from typing import Callable, NamedTuple

import jax
import numpy as np

import jax_oracle
from jax_oracle import (as_float, wrt_index as positions, axpy, close, direction_like, identical, inner, leaves,
                        same_structure)
import pytest

import corpus_programs as P
from rop import rop

MODES = ("numba", "python")
STEPS = (1e-4, 1e-6)
FD_RTOL = 1e-6
MODES_RTOL = 1e-12
JAX_RTOL = 1e-10

# name -> why rop gets it wrong today.  Skipped while listed; empty this as rop is fixed.
_EMPTY_LIST = ("`xs = []` then `xs.append(...)` is refused (RopSyntaxError: an empty list has no "
               "element type)")
_LIST_LITERAL = ("a list literal of active values ([a, b, a * b]) crashes the R-transform "
                 "(RopInternalError: KeyError: 'list' in rtransform.s_Assign)")
_RELAX = ("a path `while` whose test compares loop state with a constant is taken for a "
          "relaxation: wrong R (R_x = x; the R-update emitted twice; extra iterations)")
KNOWN_ISSUES: dict[str, str] = {}

# name -> why JAX cannot run the source as written (checked against finite differences only)
_INPLACE = "writes into a NumPy array in place (x[i] = ...), which jax.numpy arrays do not allow"
JAX_SKIP: dict[str, str] = {
    "for_branch_elif_fill": _INPLACE,
    "for_fill_2d": _INPLACE,
    "for_fill_rows": _INPLACE,
    "for_cumsum_fill": _INPLACE,
    "for_subscript_augassign": _INPLACE,
    "model_softmax_ce_grad_labels": _INPLACE,
    "model_rosenbrock_grad": _INPLACE,
    "model_conv1d_fill": _INPLACE,
    "model_polynomial_fit_grad": _INPLACE,
    "combo_reversed_fill_branch": _INPLACE,
    "combo_helper_branch_loop": _INPLACE,
    "idx_slice_augassign": _INPLACE,
    "for_zeros_like_fill": _INPLACE,
    "for_empty_fill": _INPLACE,
    "for_copy_then_write": _INPLACE,
    "model_linear_spline": "int() of a value that depends on the parameters (a traced value)",
}


# ----------------------------------------------------------------------------- input makers

def N(r, *shape):
    return r.normal(size=shape)


def U(r, lo, hi, *shape):
    return r.uniform(lo, hi, size=shape)


def NZ(r, *shape):
    """Normal-ish entries kept at least 0.2 away from zero (for abs, sign and `x > 0` tests)."""
    return r.choice([-1.0, 1.0], size=shape) * r.uniform(0.2, 2.0, size=shape)


def DISTINCT(r, *shape):
    """Entries 0.25 apart (shuffled): no ties for max/argmax, none near zero."""
    size = int(np.prod(shape))
    grid = 0.1 + 0.25 * (np.arange(size) - size // 2)
    return (r.permutation(grid) + r.uniform(-0.02, 0.02, size)).reshape(shape)


def SPD(r, n, lo=1.0, hi=3.0):
    """Symmetric positive definite with eigenvalues in [lo, hi]."""
    Q, _ = np.linalg.qr(r.normal(size=(n, n)))
    return Q @ np.diag(np.linspace(lo, hi, n)) @ Q.T


def A(*values):
    return np.array(values, dtype=float)


class Case(NamedTuple):
    name: str
    wrt: tuple
    points: Callable  # rng -> list of argument tuples

    @property
    def fn(self):
        return getattr(P, self.name)


def C(name, wrt, *points):
    """``points``: argument tuples, or callables rng -> argument tuple."""
    wrt = tuple(wrt.split())

    def make(r):
        return [p(r) if callable(p) else p for p in points]
    return Case(name, wrt, make)


CASES = [
    # ------------------------------------------------------------------ scalars
    C("s_poly", "a b", (0.7, -1.3), (-1.4, 0.6)),
    C("s_math_funcs", "a", (0.4,), (-1.1,)),
    C("s_math_trig", "a b", (0.3, 1.2), (-0.8, -0.5)),
    C("s_pow_both", "a b", (1.7, 0.6), (0.4, -1.3)),
    C("s_several_results", "a b", (0.8, 1.9)),
    C("s_float_of_sum", "a x", lambda r: (0.5, N(r, 4))),
    C("s_abs_builtin", "a b", (-0.7, 1.1), (1.3, 0.4)),
    C("s_builtin_max_min", "a b", (0.3, 1.4), (1.6, -0.5)),
    C("s_augassign", "a b", (0.6, -1.4)),
    C("s_scalar_times_array", "a x", lambda r: (1.3, N(r, 5))),
    C("s_zero_d_mix", "x a", lambda r: (N(r, 5), 0.8)),
    C("s_int_param", "a", (1.4, 3)),
    C("s_math_on_elements", "x", lambda r: (N(r, 3),)),
    # ------------------------------------------------------------------ NumPy aliases and methods
    C("np_aliases_arith", "x y", lambda r: (N(r, 4), N(r, 4))),
    C("np_aliases_unary", "x", lambda r: (NZ(r, 5),)),
    C("np_power_both", "x y", lambda r: (U(r, 0.5, 2.0, 4), N(r, 4))),
    C("np_dot_vectors", "x y", lambda r: (N(r, 4), N(r, 4))),
    C("np_matmul_alias", "A B x", lambda r: (N(r, 3, 4), N(r, 4, 2), N(r, 4))),
    C("m_methods_sum_mean", "X", lambda r: (N(r, 3, 4),)),
    C("m_methods_max", "X", lambda r: (DISTINCT(r, 3, 4),)),
    C("m_methods_T_reshape", "X", lambda r: (N(r, 3, 4),)),
    C("m_reshape_tuple", "x", lambda r: (N(r, 6),)),
    C("m_method_dot", "A x", lambda r: (N(r, 3, 4), N(r, 4))),
    C("m_method_copy", "x", lambda r: (N(r, 4),)),
    C("m_transpose_operand", "A x", lambda r: (N(r, 3, 3), N(r, 3))),
    # ------------------------------------------------------------------ indexing and shapes
    C("idx_newaxis", "x y", lambda r: (N(r, 3), N(r, 4))),
    C("idx_negative", "x", lambda r: (N(r, 5),)),
    C("idx_steps", "x", lambda r: (N(r, 6),)),
    C("idx_matrix", "X", lambda r: (N(r, 3, 4),)),
    C("idx_int_array", "x", lambda r: (N(r, 6), np.array([0, 2, 2, 5, 1]))),
    C("idx_gather_rows", "E", lambda r: (N(r, 5, 3), np.array([4, 0, 2, 2]))),
    C("idx_take_labels", "logp", lambda r: (N(r, 4, 3), np.array([0, 2, 1, 2]))),
    C("shape_len_size", "x X", lambda r: (N(r, 4), N(r, 2, 3))),
    C("shape_ndim_branch", "x", lambda r: (N(r, 3, 4),)),
    C("shape_unpack_loops", "X", lambda r: (N(r, 3, 4),)),
    # ------------------------------------------------------------------ if / elif / else
    C("if_scalar_sign", "a x", lambda r: (0.6, N(r, 3)), lambda r: (-0.9, N(r, 3))),
    C("if_elif_piecewise", "a", (-1.7,), (0.4,), (2.3,)),
    C("if_nested", "a b", (0.5, 0.8), (0.5, -0.7), (-0.6, 0.9), (-0.6, -1.3)),
    C("if_different_vars", "a x", lambda r: (0.9, N(r, 3)), lambda r: (0.2, N(r, 3))),
    C("if_var_only_in_branch", "a x", lambda r: (0.7, N(r, 3)), lambda r: (-0.4, N(r, 3))),
    C("if_early_return", "a x", lambda r: (-0.5, N(r, 3)), lambda r: (0.8, N(r, 3))),
    C("if_early_return_nested", "a b", (1.5, 0.7), (1.5, -0.6), (0.3, 0.9)),
    C("if_on_array_reduction", "x", lambda r: (U(r, 0.2, 1.0, 4),),
      lambda r: (-U(r, 0.2, 1.0, 4),)),
    C("if_on_element", "x", (A(1.2, -0.3, 0.5),), (A(-0.4, 0.9, 1.1),)),
    C("if_and_or_not", "a b", (0.5, 0.9), (1.2, -0.4), (-0.8, -0.3), (-0.5, 0.7)),
    C("if_chained_cmp", "a x", lambda r: (0.3, N(r, 3)), lambda r: (-0.6, N(r, 3)),
      lambda r: (1.7, N(r, 3))),
    C("if_tuple_results", "a x", lambda r: (0.4, N(r, 3)), lambda r: (-1.1, N(r, 3))),
    C("if_elif_chain_array", "x a", (A(2.5, 0.3, -1.0), 0.7), (A(1.5, 0.2, -0.3), 0.7),
      (A(0.5, -0.2, 0.1), 0.7), (A(-0.5, -1.2, -0.3), 0.7)),
    C("if_no_else", "a x", lambda r: (1.4, N(r, 3)), lambda r: (0.6, N(r, 3))),
    C("if_both_params", "a b", (1.5, 1.2), (0.5, 0.9)),
    # ------------------------------------------------------------------ conditional expressions
    C("ifexp_scalar", "a b", (1.2, 0.3), (-0.4, 0.8)),
    C("ifexp_array", "a x", lambda r: (0.7, N(r, 3)), lambda r: (-0.7, N(r, 3))),
    C("ifexp_nested", "a", (1.6,), (0.3,), (-1.8,)),
    C("ifexp_in_loop", "x", lambda r: (NZ(r, 6),)),
    C("ifexp_bool_ops", "a b", (0.5, 0.6), (0.5, -0.6), (-2.5, 0.3), (-1.0, 0.3)),
    # ------------------------------------------------------------------ while loops
    C("while_halve", "a0", (3.0,), (-0.77,)),
    C("while_state_threshold", "a0", (5.3,), (0.7,)),
    C("while_counter_and", "a0 tol", (0.9, 0.01)),
    C("while_break", "x", (A(0.8, -0.9, 0.6, 1.1, 0.3),)),
    C("while_continue", "x", lambda r: (NZ(r, 5),)),
    C("while_true_break", "a0", (0.3,)),
    C("while_array_norm", "x", (A(1.5, -2.0, 0.7, 1.1),)),
    C("while_newton_sqrt", "c", (2.7,), (0.35,)),
    C("while_fixed_point", "a", (0.3,)),
    C("while_euler_ode", "k x0", (0.8, 1.5)),
    C("while_countdown_copy", "W x", lambda r: (N(r, 3, 3), N(r, 3))),
    C("while_relax_norm", "W b", lambda r: (0.3 * N(r, 4, 4), N(r, 4))),
    C("list_stores_views", "W", lambda r: (N(r, 3, 3), N(r, 3, 4))),
    C("seq_zip_layers", "Ws bs",
      lambda r: ([N(r, 4, 3), N(r, 2, 4)], [N(r, 4), N(r, 2)], N(r, 3, 5), N(r, 2, 5))),
    C("seq_enumerate_zip", "Ws bs", lambda r: ([0.5 * N(r, 3, 3), N(r, 2, 3)], [N(r, 3), N(r, 2)],
                                               N(r, 3))),
    C("seq_reversed_rows", "W X", lambda r: (0.5 * N(r, 3, 4), N(r, 5, 4))),
    C("seq_tuple_display", "a b", lambda r: (N(r, 3), N(r, 3))),
    C("seq_residual_grad", "Ws", lambda r: ([0.5 * N(r, 3, 3) for _ in range(3)], N(r, 3), N(r, 3))),
    C("comp_filters_nested", "Ws", lambda r: ([0.5 * N(r, 3, 3) for _ in range(3)], N(r, 3))),
    C("comp_scoping", "W", lambda r: (0.5 * N(r, 3, 3), N(r, 3))),
    C("while_nested", "a", (0.9,)),
    C("while_or_test", "a b", (3.0, 2.0)),
    C("while_chained_cmp", "a", (0.5,), (-0.5,)),
    # ------------------------------------------------------------------ for loops
    C("for_sum_squares", "x", lambda r: (N(r, 5),)),
    C("for_break", "x thresh", (A(0.1, -0.4, 0.3, 0.2, -0.2, 0.5), 2.5)),
    C("for_continue", "x", lambda r: (NZ(r, 6),)),
    C("for_reversed", "x", lambda r: (N(r, 5),)),
    C("for_reversed_branch", "x", lambda r: (NZ(r, 5),)),
    C("for_branch_elif_fill", "x", (A(-1.6, -0.4, 0.5, 1.8, 3.0),)),
    C("for_nested_branch", "A", lambda r: (NZ(r, 3, 4),)),
    C("for_fill_2d", "x y", lambda r: (N(r, 3), N(r, 4))),
    C("for_fill_rows", "X", lambda r: (N(r, 3, 4),)),
    C("for_list_none", "x", lambda r: (N(r, 3), 4)),
    C("for_list_append", "x", lambda r: (N(r, 3), 4)),
    C("for_list_append_scalars", "a", (0.7, 4)),
    C("for_cumsum_fill", "x", lambda r: (N(r, 5),)),
    C("for_running_max", "x", lambda r: (DISTINCT(r, 6),)),
    C("for_step_range", "x", lambda r: (N(r, 7),)),
    C("for_augassign_array", "x A", lambda r: (N(r, 4), N(r, 3, 4))),
    C("for_break_continue", "x", (A(0.5, -2.0, 0.9, 1.2, -0.3, 1.5, 0.7),)),
    C("for_subscript_augassign", "x", lambda r: (N(r, 5),)),
    C("for_early_return", "x", (A(0.4, 0.6, 0.9, -0.2),), (A(0.2, -0.3, 0.4, 0.1),)),
    # ------------------------------------------------------------------ tuple and list parameters
    C("tup_unpack", "p x", lambda r: ((0.7, -0.3), N(r, 3))),
    C("tup_array_scalar", "p x", lambda r: ((N(r, 3, 4), 0.5), N(r, 4))),
    C("tup_nested", "p x", lambda r: (((N(r, 3, 4), N(r, 3)), 1.3), N(r, 4))),
    C("tup_index", "p", ((1.2, -0.4),)),
    C("tup_repack", "p", ((0.8, 1.5),)),
    C("tup_two_params", "p q", ((0.3, 1.2), (-0.7, 0.4))),
    C("list_layers", "Ws x", lambda r: ([N(r, 4, 3), N(r, 4, 4), N(r, 2, 4)], N(r, 3))),
    # ------------------------------------------------------------------ list literals
    C("listlit_scalars", "a b", (0.6, -1.1)),
    C("listlit_arrays", "x y", lambda r: (N(r, 3), N(r, 3))),
    C("listlit_return", "a x", lambda r: (0.9, N(r, 3))),
    C("listlit_coeffs", "x w", lambda r: (N(r, 4), N(r, 3))),
    # ------------------------------------------------------------------ helpers
    C("helper_sigmoid_softplus", "x", lambda r: (N(r, 5),)),
    C("helper_chain", "W1 b1 W2 b2 x",
      lambda r: (N(r, 4, 3), N(r, 4), N(r, 2, 4), N(r, 2), N(r, 3))),
    C("helper_normalize", "x", lambda r: (N(r, 4),)),
    C("helper_clamp_early_return", "a", (-1.6,), (0.4,), (1.3,)),
    C("helper_with_loop", "c t", lambda r: (N(r, 4), 0.7)),
    C("helper_scalar_math", "a b", (0.4, -0.9)),
    C("helper_softmax_lse", "z", lambda r: (N(r, 5),)),
    C("helper_relu_in_loop", "Ws x", lambda r: ([N(r, 4, 3), N(r, 3, 4)], N(r, 3))),
    # ------------------------------------------------------------------ realistic small models
    C("model_logreg_grad", "w b",
      lambda r: (N(r, 3), 0.2, N(r, 6, 3), (U(r, 0, 1, 6) > 0.5).astype(float))),
    C("model_logreg_loss", "w",
      lambda r: (N(r, 3), N(r, 6, 3), (U(r, 0, 1, 6) > 0.5).astype(float))),
    C("model_softmax_ce_grad", "W",
      lambda r: (N(r, 3, 4), N(r, 5, 3), np.eye(4)[r.integers(0, 4, 5)])),
    C("model_softmax_ce_grad_labels", "W",
      lambda r: (N(r, 3, 4), N(r, 5, 3), r.integers(0, 4, 5))),
    C("model_mlp2_relu_grad", "W1 b1 W2 b2",
      lambda r: (N(r, 4, 3), N(r, 4), N(r, 2, 4), N(r, 2), N(r, 3, 5), N(r, 2, 5))),
    C("model_rnn_forward", "Wh Wx h0",
      lambda r: (0.5 * N(r, 3, 3), N(r, 3, 2), N(r, 3), N(r, 2, 4))),
    C("model_rnn_bptt_grad", "Wh Wx",
      lambda r: (0.5 * N(r, 3, 3), N(r, 3, 2), N(r, 2, 4), N(r, 3))),
    C("model_huber_loss_loop", "r delta", (A(0.3, -1.8, 0.9, 2.5, -0.2), 1.0)),
    C("model_huber_grad_vec", "w delta",
      lambda r: (N(r, 3), N(r, 8, 3), N(r, 8), 0.8)),
    C("model_huber_branch_scalar", "r delta", (0.4, 1.0), (1.7, 1.0), (-2.2, 1.0)),
    C("model_quadform_grad", "A x b", lambda r: (N(r, 3, 3), N(r, 3), N(r, 3))),
    C("model_quadform_branch", "A x", lambda r: (SPD(r, 3), N(r, 3)),
      lambda r: (-SPD(r, 3), N(r, 3))),
    C("model_piecewise_elif_loop", "x", (A(-1.7, -0.4, 0.3, 0.8, 1.9),)),
    C("model_newton_sqrt_vec", "c", lambda r: (U(r, 0.5, 3.0, 4),)),
    C("model_gd_unrolled", "A b", lambda r: (SPD(r, 3), N(r, 3), 5)),
    C("model_gd_until_converged", "A b", lambda r: (SPD(r, 3), N(r, 3))),
    C("model_power_iteration", "A", lambda r: (SPD(r, 3), 6)),
    C("model_ridge_grad", "w lam", lambda r: (N(r, 3), N(r, 6, 3), N(r, 6), 0.1)),
    C("model_gaussian_nll", "mu log_sigma", lambda r: (0.3, -0.2, N(r, 6))),
    C("model_rosenbrock_grad", "x", lambda r: (N(r, 4),)),
    C("model_leaky_relu_mlp", "W1 W2", lambda r: (N(r, 4, 3), N(r, 2, 4), N(r, 3))),
    C("model_adam_unrolled", "w", lambda r: (N(r, 3), N(r, 5, 3), N(r, 5), 3)),
    C("model_kalman_scalar", "q r", lambda r: (0.1, 0.5, N(r, 6))),
    C("model_backtracking", "x d", (A(1.0, -0.5, 0.8), A(-2.9, 1.2, -2.6))),
    C("model_softmax_temperature", "z tau", lambda r: (N(r, 5), 0.7)),
    C("model_attention", "Q K V", lambda r: (N(r, 3, 2), N(r, 4, 2), N(r, 4, 3))),
    C("model_layernorm", "x g b", lambda r: (N(r, 5), N(r, 5), N(r, 5))),
    C("model_batchnorm", "X gamma", lambda r: (N(r, 6, 3), N(r, 3))),
    C("model_conv1d_fill", "x k", lambda r: (N(r, 7), N(r, 3))),
    C("model_conv1d_append", "x k", lambda r: (N(r, 7), N(r, 3))),
    C("model_binary_ce_branch", "p",
      lambda r: (U(r, 0.1, 0.9, 6), A(1, 0, 0, 1, 1, 0))),
    C("model_embedding", "E w", lambda r: (N(r, 5, 3), N(r, 3), np.array([4, 0, 2, 2]))),
    C("model_logsumexp_loss", "W x", lambda r: (N(r, 4, 3), N(r, 3), 2)),
    C("model_polynomial_fit_grad", "c", lambda r: (N(r, 3), U(r, -1, 1, 5), N(r, 5))),
    C("model_linear_spline", "knots_y t", lambda r: (N(r, 5), 0.63), lambda r: (N(r, 5), 0.97)),
    C("model_trapezoid_integral", "a b", (0.2, 1.3, 8)),
    C("model_gmm_responsibilities", "mus x", lambda r: (N(r, 3), N(r, 6))),
    # ------------------------------------------------------------------ combinations
    C("combo_while_in_for", "x", (A(1.7, -0.3, 2.9, -1.1, 0.45),)),
    C("combo_for_in_while", "x", (A(0.8, -1.2, 0.5, 1.1),)),
    C("combo_tuple_loop_branch", "p x", ((1.2, 0.3), A(0.9, -0.4, 0.1, 1.5, -1.2, 0.6))),
    C("combo_list_params_branch", "Ws x",
      lambda r: ([N(r, 4, 3), N(r, 4, 4), N(r, 2, 4)], N(r, 3))),
    C("combo_break_nested", "A", (np.array([[0.5, -1.6, 0.8], [1.1, 0.3, -0.7],
                                              [-1.4, 0.9, 0.2]]),)),
    C("combo_ifexp_append", "x a", lambda r: (NZ(r, 5), 1.3)),
    C("combo_chained_cmp_loop", "x", (A(0.3, 0.8, 1.5, -0.4, 2.2),)),
    C("combo_newaxis_branch", "x y", (A(1.0, 0.5, 0.8), A(0.2, -0.3, 0.4, 0.1)),
      (A(-1.0, 0.5, -0.8), A(0.2, -0.3, 0.4, 0.1))),
    C("combo_scalar_array_while", "a x", (2.0, A(0.5, -0.3, 0.8))),
    C("combo_reversed_fill_branch", "x", lambda r: (NZ(r, 5),)),
    C("combo_tuple_while", "p", ((3.0, 0.5),)),
    C("combo_early_return_while", "a", (1.1,), (1.9,)),
    C("combo_helper_branch_loop", "x delta", (A(0.3, -1.8, 0.9, 2.5, -0.2), 1.0)),
    C("combo_len_shape_ndim", "x X", lambda r: (N(r, 3), N(r, 2, 3))),
    C("combo_list_literal_loop_branch", "a b", (0.7, 1.6), (-0.5, 0.8)),
    C("combo_math_while_ifexp", "a", (2.5,), (0.7,)),
    # ------------------------------------------------------------------ more everyday idioms
    C("idx_argmax_index", "x y", lambda r: (DISTINCT(r, 5), N(r, 5))),
    C("idx_slices_more", "x X", lambda r: (N(r, 5), N(r, 3, 3))),
    C("idx_int_array_rows_cols", "X", lambda r: (N(r, 4, 4), np.array([3, 0, 0, 2]))),
    C("idx_slice_augassign", "x", lambda r: (N(r, 5),)),
    C("while_flag_not", "a", (1.7,), (-0.9,)),
    C("while_helper_in_test", "x", (A(1.5, -2.0, 0.7, 1.1),)),
    C("s_tuple_swap_loop", "a b", (0.3, 0.6)),
    C("s_tuple_swap_locals", "a0 b0", (0.4, 0.9, 4)),
    C("s_chained_annotated", "a b", (0.7, -1.2)),
    C("s_helper_on_scalar", "a", (0.2,), (1.3,)),
    C("for_negative_step_range", "x", lambda r: (N(r, 5),)),
    C("for_mod_index", "x", lambda r: (N(r, 6),)),
    C("for_zeros_like_fill", "x a", lambda r: (N(r, 4), 0.6)),
    C("for_empty_fill", "x", lambda r: (N(r, 5),)),
    C("for_list_none_scalars", "a", (0.8, 4)),
    C("for_copy_then_write", "x a", lambda r: (N(r, 5), 0.6)),
    C("np_abs_pow_misc", "x", lambda r: (NZ(r, 4),)),
    C("for_float_of_int", "x", lambda r: (N(r, 4),)),
    # ------------------------------------------------------------------ rebinding a parameter
    C("rebind_param_while", "a", (3.0,), (-0.77,)),
    C("rebind_param_gd", "x A b", lambda r: (N(r, 3), SPD(r, 3), N(r, 3), 4)),
]
CASE = {c.name: c for c in CASES}
HELPERS = {"sigmoid", "softplus", "log_sigmoid", "relu", "dense", "tanh_layer", "sq_norm",
           "normalize", "logsumexp", "softmax", "huber_scalar", "clamp_scalar", "smooth_abs",
           "horner"}


# ----------------------------------------------------------------------------- trees of values

# ----------------------------------------------------------------------------- running, once

_COMPILED: dict = {}


def compiled(case, mode):
    key = (case.name, mode)
    if key not in _COMPILED:
        _COMPILED[key] = rop(case.fn, wrt=case.wrt, mode=mode)
    return _COMPILED[key]


def wrt_index(case):
    return positions(case.fn, case.wrt)


@functools.lru_cache(maxsize=None)
def run(name):
    """Points, directions and (outputs, R{outputs}) per mode, computed once per program."""
    case = CASE[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    idx = wrt_index(case)
    points = case.points(rng)
    results = []
    for args in points:
        v = tuple(direction_like(rng, args[i]) for i in idx)
        per_mode = {}
        for mode in MODES:
            before = copy.deepcopy((args, v))
            per_mode[mode] = compiled(case, mode).hvp(*args, v=v)
            if not identical(before, (args, v)):
                CHANGED[name].append(f"{mode}: an argument or a direction")
        results.append((args, v, per_mode))
    return results


CHANGED: dict = collections.defaultdict(list)  # program -> arguments or directions .hvp changed


def skip_known(name):
    if name in KNOWN_ISSUES:
        pytest.skip(f"known rop issue: {KNOWN_ISSUES[name]}")


NAMES = [c.name for c in CASES]


# ----------------------------------------------------------------------------- the corpus itself

def test_corpus_size_and_completeness():
    assert len(CASES) >= 110, len(CASES)
    assert len(CASE) == len(CASES), "duplicate case names"
    defined = {n for n, f in vars(P).items()
               if isinstance(f, types.FunctionType) and f.__module__ == P.__name__}
    assert HELPERS <= defined
    assert set(CASE) == defined - HELPERS, (sorted(set(CASE) ^ (defined - HELPERS)))
    assert set(KNOWN_ISSUES) <= set(CASE)
    assert set(JAX_SKIP) <= set(CASE)


def test_most_of_the_corpus_is_checked_against_jax():
    assert (len(CASES) - len(JAX_SKIP)) / len(CASES) >= 0.7


# ----------------------------------------------------------------------------- per program

@pytest.mark.parametrize("name", NAMES)
def test_primal_and_modes_agree(name):
    skip_known(name)
    case = CASE[name]
    for args, v, per_mode in run(name):
        ref = case.fn(*args)
        for mode in MODES:
            out, _ = per_mode[mode]
            ok, worst = close(out, ref, 1e-12)
            assert ok, f"{name}[{mode}]: outputs differ from the original function ({worst:.2e})"
        ok, worst = close(per_mode["numba"][1], per_mode["python"][1], MODES_RTOL)
        assert ok, f"{name}: R{{outputs}} of numba and python modes differ ({worst:.2e})"


def _returns_early(fn) -> bool:
    tree = ast.parse(inspect.getsource(fn)).body[0]
    return any(isinstance(x, ast.Return) and x is not tree.body[-1] for x in ast.walk(tree))


# every program with a `return` before its end, and every 10th of the others (the default
# suite's time budget: all 189 take 6 minutes; tests/test_linearize.py linearises every
# program of the course corpus)
LINEARISED = sorted({n for n in NAMES if _returns_early(CASE[n].fn)} | set(NAMES[::10]))


@pytest.mark.parametrize("name", LINEARISED)
def test_linearised_products_equal_hvp(name):
    """``f.hvp.linearize(*args)`` (the primal part once, the R-statements per product) gives
    the outputs and R{outputs} of ``f.hvp``, or falls back with its reason (mode="python")."""
    skip_known(name)
    case = CASE[name]
    f = compiled(case, "python")
    for args, v, per_mode in run(name):
        out, r = per_mode["python"]
        lin = f.hvp.linearize(*copy.deepcopy(args))
        assert lin.split or lin.reason
        ok, worst = close(lin(copy.deepcopy(v)), r, 1e-12)
        assert ok, f"{name}: the linearised product differs from .hvp ({worst:.2e}); {lin!r}"
        ok, worst = close(lin.outputs, out, 1e-12)
        assert ok, f"{name}: the linearisation's outputs differ ({worst:.2e})"


@pytest.mark.parametrize("name", NAMES)
def test_arguments_and_directions_unchanged(name):
    """rop never writes into what the caller passed: (arguments, v) bit for bit as before."""
    skip_known(name)
    run(name)
    assert not CHANGED[name], CHANGED[name]


@pytest.mark.parametrize("name", NAMES)
def test_central_differences(name):
    skip_known(name)
    case = CASE[name]
    idx = wrt_index(case)
    for p, (args, v, per_mode) in enumerate(run(name)):
        r_out = per_mode["numba"][1]
        outs = leaves(case.fn(*args))
        routs = leaves(r_out)
        assert len(outs) == len(routs)
        fds = []
        for eps in STEPS:
            plus, minus = list(args), list(args)
            for i, d in zip(idx, v):
                plus[i] = axpy(args[i], eps, d)
                minus[i] = axpy(args[i], -eps, d)
            fds.append([(as_float(a) - as_float(b)) / (2 * eps)
                        for a, b in zip(leaves(case.fn(*plus)), leaves(case.fn(*minus)))])
        for k, (r, o) in enumerate(zip(routs, outs)):
            r = as_float(r)
            errs = []
            for fd in fds:
                d = fd[k]
                assert r.shape == d.shape, (name, k, r.shape, d.shape)
                scale = max(float(np.max(np.abs(d), initial=0.0)),
                            float(np.max(np.abs(r), initial=0.0)),
                            1e-2 * float(np.max(np.abs(as_float(o)), initial=0.0)), 1e-8)
                errs.append(float(np.max(np.abs(r - d), initial=0.0)) / scale)
            assert min(errs) <= FD_RTOL, \
                f"{name} point {p} output {k}: relative |R - fd| = {errs} at eps = {STEPS}"


@functools.lru_cache(maxsize=None)
def jax_namespace():
    """The corpus module under JAX (tests/jax_oracle.py)."""
    return jax_oracle.jax_namespace(P)


@pytest.mark.parametrize("name", [n for n in NAMES if n not in JAX_SKIP])
def test_jax_jvp(name):
    skip_known(name)
    case = CASE[name]
    fj = jax_namespace()[name]
    idx = wrt_index(case)
    for p, (args, v, per_mode) in enumerate(run(name)):
        def f_wrt(*params):
            full = list(args)
            for i, val in zip(idx, params):
                full[i] = val
            return fj(*full)
        primals = tuple(same_structure(args[i], args[i]) for i in idx)
        tangents = tuple(same_structure(args[i], d) for i, d in zip(idx, v))
        out_j, r_j = jax.jvp(f_wrt, primals, tangents)
        out, r_out = per_mode["numba"]
        ok, worst = close(out, out_j, 1e-10)
        assert ok, f"{name} point {p}: outputs differ from JAX's ({worst:.2e})"
        ok, worst = close(r_out, r_j, JAX_RTOL)
        assert ok, f"{name} point {p}: R{{outputs}} differs from jax.jvp ({worst:.2e})"


# ----------------------------------------------------------------------------- structure

# programs that return the gradient of a scalar loss with respect to their wrt parameters, in
# wrt order: R{outputs} is Hv, and H is symmetric
GRADIENTS = ["seq_residual_grad", "model_logreg_grad", "model_softmax_ce_grad",
             "model_softmax_ce_grad_labels", "model_mlp2_relu_grad", "model_rnn_bptt_grad",
             "model_rosenbrock_grad", "model_polynomial_fit_grad"]


@pytest.mark.parametrize("name", GRADIENTS)
def test_hessian_is_symmetric(name):
    """<u, Hv> = <Hu, v> for random u, v: a property of every Hessian, independent of how Hv
    was computed (a wrong cross term breaks it)."""
    case = CASE[name]
    args, v, _ = run(name)[0]
    u = tuple(direction_like(np.random.default_rng(5), args[i]) for i in wrt_index(case))
    f = compiled(case, "numba")
    hv, hu = f.hvp(*args, v=v)[1], f.hvp(*args, v=u)[1]
    a, b = inner(u, hv), inner(hu, v)
    assert abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1e-12), (a, b)


def test_r_statements_stay_in_their_branch():
    """For a value-dependent `if`, the generated R-statements sit in the same branches as their
    primal statements (not flattened to masks, not hoisted)."""
    skip_known("if_scalar_sign")
    run("if_scalar_sign")
    src = compiled(CASE["if_scalar_sign"], "python").hvp.source
    tree = ast.parse(src)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef)
              and n.name == "if_scalar_sign_hvp")
    ifs = [n for n in ast.walk(fn) if isinstance(n, ast.If)]
    assert ifs, src
    node = ifs[0]

    def assigned(stmts):
        return {t.id for s in stmts for n in ast.walk(s) if isinstance(n, ast.Assign)
                for t in n.targets if isinstance(t, ast.Name)}
    body, orelse = assigned(node.body), assigned(node.orelse)
    assert "y" in body and "R_y" in body, src
    assert "y" in orelse and "R_y" in orelse, src
