"""Adversarial programs about NumPy's memory model (tests/adversarial_programs.py) through rop.

Every program is compiled once per mode ("numba" and "python") and, at each of its input
points (chosen away from kinks and branch boundaries; one point per side of a branch on a
parameter) with a random direction v, checked as follows.

Programs expected to be compiled ("ok"):

* the primal outputs of ``.hvp`` have the structure of the original function's (the same
  nesting of tuples and lists, the same shapes) and its values (rtol 1e-13, atol 1e-14 of
  the outputs' magnitude);
* every argument and every direction is bit-for-bit unchanged after ``.hvp`` and after the
  original function (NumPy lets a function write into its caller's arrays; neither may);
* R{outputs} matches central differences of the ORIGINAL function,
  (f(x + eps v) - f(x - eps v)) / (2 eps) at eps = 1e-4 and 1e-6, the better of the two
  within 1e-6 relative (the norm of tests/test_corpus.py);
* R{outputs} matches ``jax.jvp`` of the same source re-executed under ``jax.numpy``
  (tests/jax_oracle.py) within 1e-10, except for the programs in ``JAX_SKIP``: JAX arrays
  cannot be written in place, and ``a += x`` on a JAX array rebinds ``a`` instead of writing
  into the array other names, views or containers hold;
* mode="numba" and mode="python" agree (1e-12), and a second call returns the same values
  and leaves the first call's results intact;
* for programs that return the gradient of a loss (``grad=True``): <u, Hv> = <Hu, v> for
  random u, v (rtol 1e-9).

Programs expected to be refused ("refuse") are only those whose NumPy meaning rop's design
says it cannot follow: a list element that is a strided view (``hs = [A[:, 0]]``,
``hs.append(A.T)``) whose base array is written in place afterwards (compiled code stores a
copy in the list), and one construct outside the accepted subset (``[h] * 2``, refused as
such).  rop must raise ``RopSyntaxError`` naming this file, a line of the program and a hint.

Nothing here is skipped or marked xfail: a refusal of an "ok" program, a crash, a wrong value
or a modified input is a failure.
"""

from __future__ import annotations

import ast
import copy
import functools
import inspect
import re
import types
from typing import Callable, NamedTuple

import jax
import numpy as np
import pytest

import adversarial_programs as P
import jax_oracle
from jax_oracle import (as_float, wrt_index as positions, axpy, close, direction_like, identical, inner as dot, leaves,
                        same_structure)
from rop import rop
from rop.errors import RopSyntaxError

MODES = ("numba", "python")
STEPS = (1e-4, 1e-6)
FD_RTOL = 1e-6
JAX_RTOL = 1e-10
MODES_RTOL = 1e-12
PRIMAL_RTOL, PRIMAL_ATOL = 1e-13, 1e-14
SYM_RTOL = 1e-9
SECTIONS = ("alias_", "cont_", "rval_", "swap_", "aug_", "path_", "misc_")


# ----------------------------------------------------------------------------- input makers

def N(r, *shape):
    return r.normal(size=shape)


def NZ(r, *shape):
    """Entries kept at least 0.2 away from zero (for `x > 0` tests)."""
    return r.choice([-1.0, 1.0], size=shape) * r.uniform(0.2, 2.0, size=shape)


def A(*values):
    return np.array(values, dtype=float)


def IDX(*values):
    return np.array(values, dtype=np.int64)


class Prog(NamedTuple):
    name: str
    wrt: tuple
    points: Callable  # rng -> list of argument tuples
    expect: str       # "ok" or "refuse"
    grad: bool        # returns the gradient of a loss w.r.t. wrt (in wrt order)

    @property
    def fn(self):
        return getattr(P, self.name)


def C(name, wrt, *points, expect="ok", grad=False):
    """``points``: argument tuples, or callables rng -> argument tuple."""
    def make(r):
        return [p(r) if callable(p) else p for p in points]
    return Prog(name, tuple(wrt.split()), make, expect, grad)


def R(name, wrt, *points):
    return C(name, wrt, *points, expect="refuse")


def n3(r):
    return (N(r, 3),)


def layers(r):
    return [0.7 * N(r, 4, 3), 0.7 * N(r, 2, 4)]


PROGRAMS = [
    # ------------------------------------------------------------------ alias_
    C("alias_name_write_read", "W", n3),
    C("alias_name_write_other", "W", n3),
    C("alias_name_active_base", "W", n3),
    C("alias_chain_names", "W", n3),
    C("alias_slice_write_view", "W", lambda r: (N(r, 4),)),
    C("alias_slice_write_base", "W", lambda r: (N(r, 4),)),
    C("alias_step_view_write", "W", lambda r: (N(r, 6),)),
    C("alias_step_base_write", "W", lambda r: (N(r, 6),)),
    C("alias_col_view_write", "W", lambda r: (N(r, 3, 2),)),
    C("alias_col_base_write", "W", lambda r: (N(r, 3, 2),)),
    C("alias_T_write_view", "W", lambda r: (N(r, 2, 3),)),
    C("alias_T_write_base", "W", lambda r: (N(r, 2, 3),)),
    C("alias_np_transpose_write_base", "W", lambda r: (N(r, 2, 3),)),
    C("alias_np_transpose_write_view", "W", lambda r: (N(r, 2, 3),)),
    C("alias_reshape_write_view", "W", lambda r: (N(r, 2, 3),)),
    C("alias_reshape_write_base", "W", lambda r: (N(r, 6),)),
    C("alias_np_reshape_write_base", "W", lambda r: (N(r, 6),)),
    C("alias_reshape_flat_write_view", "W", lambda r: (N(r, 2, 3),)),
    C("alias_ravel_write_view", "W", lambda r: (N(r, 2, 3),)),
    C("alias_ravel_write_base", "W", lambda r: (N(r, 2, 3),)),
    C("alias_loop_write_view", "W", lambda r: (N(r, 5),)),
    C("alias_loop_reversed_view_read", "W", lambda r: (N(r, 4),)),
    C("alias_branch_write_view", "W", lambda r: (N(r, 3), 1.0), lambda r: (N(r, 3), -1.0)),
    C("alias_branch_alias_created_in_branch", "W",
      lambda r: (N(r, 3), 1.0), lambda r: (N(r, 3), -1.0)),
    C("alias_view_chain", "W", lambda r: (N(r, 6),)),
    C("alias_view_chain_T_row", "W", lambda r: (N(r, 3, 3),)),
    C("alias_view_chain_reshape_col", "W", lambda r: (N(r, 6),)),
    C("alias_view_of_view_write_base", "W", lambda r: (N(r, 5),)),
    C("alias_view_write_reduce_base", "W", lambda r: (N(r, 4),)),
    C("alias_col_aug_reduce_base", "W", lambda r: (N(r, 3, 2),)),
    C("alias_view_write_inactive", "W", lambda r: (N(r, 3, 2), N(r, 3, 2))),
    C("alias_zeros_alias_before_write", "W", n3),
    C("alias_zeros_T_before_fill", "W", lambda r: (N(r, 3, 3),)),
    C("alias_inactive_view_becomes_active", "W", lambda r: (N(r, 2), N(r, 4))),
    C("alias_full_slice_view", "W", n3),
    C("alias_newaxis_view", "W", n3),
    C("alias_ellipsis_view", "W", lambda r: (N(r, 2, 3),)),
    C("alias_block_view_write", "W", lambda r: (N(r, 3, 3),)),
    C("alias_negative_slice_view", "W", lambda r: (N(r, 4),)),
    C("alias_rebind_base_then_write", "W", n3),
    C("alias_prev_without_copy", "W", n3),
    C("alias_while_write_view", "W", lambda r: (N(r, 4),)),
    C("alias_grad_logcosh", "W", lambda r: (N(r, 2, 3), N(r, 3, 4), N(r, 2, 4)), grad=True),
    C("alias_col_view_fill_matmul", "W", lambda r: (N(r, 3, 2), N(r, 2, 4))),
    # ------------------------------------------------------------------ cont_
    C("cont_append_then_write", "W", n3),
    C("cont_append_active_then_write", "W", n3),
    C("cont_append_zeros_then_active_write", "W", n3),
    C("cont_list_literal_write", "W", n3),
    C("cont_tuple_literal_write", "W", n3),
    C("cont_take_out_write", "W", n3),
    C("cont_take_out_write_zeros", "W", n3),
    C("cont_take_out_write_loop", "W", n3),
    C("cont_nested_list_write", "W", n3),
    C("cont_nested_tuple_write", "W", n3),
    C("cont_negative_last", "W", lambda r: (N(r, 3), N(r, 3))),
    C("cont_negative_second_last", "W", lambda r: (N(r, 3), N(r, 3))),
    C("cont_negative_after_append_write", "W", n3),
    C("cont_mlp_acts_last", "Ws", lambda r: (layers(r), N(r, 3, 5))),
    C("cont_mlp_acts_range", "Ws", lambda r: (layers(r), N(r, 3, 5))),
    C("cont_mlp_grad_negative", "Ws", lambda r: (layers(r), N(r, 3, 5), 0.5 * N(r, 2, 5)),
      grad=True),
    C("cont_same_array_twice", "W", n3),
    R("cont_list_repeat_same_array", "W", n3),
    C("cont_slot_rebind_not_write", "W", n3),
    C("cont_append_same_buffer_loop", "W", n3),
    C("cont_append_copy_loop", "W", n3),
    C("cont_unpack_then_write", "W", n3),
    C("cont_tuple_unpack_write", "W", n3),
    C("cont_return_list_after_write", "W", n3),
    C("cont_slot_replace_then_write_old", "W", n3),
    C("cont_row_view_in_list_base_written", "W", lambda r: (N(r, 2, 3),)),
    C("cont_col_view_in_list_no_write", "W", lambda r: (N(r, 3, 2),)),
    C("cont_T_appended_no_write", "W", lambda r: (N(r, 2, 3),)),
    R("cont_view_col_in_list_base_written", "W", lambda r: (N(r, 3, 2),)),
    R("cont_view_T_appended_base_written", "W", lambda r: (N(r, 2, 3),)),
    R("cont_view_step_appended_base_written", "W", lambda r: (N(r, 4),)),
    R("cont_view_col_slot_base_written", "W", lambda r: (N(r, 3, 2),)),
    R("cont_view_col_in_list_base_aug", "W", lambda r: (N(r, 3, 2),)),
    # ------------------------------------------------------------------ rval_
    C("rval_sum_then_write", "W C", lambda r: (N(r, 3), N(r, 3))),
    C("rval_update_then_write_grad", "dW",
      lambda r: (N(r, 2, 3), N(r, 2, 3), N(r, 3, 4), 0.1), grad=True),
    C("rval_copy_expr_then_write_base", "W", n3),
    C("rval_times_one_then_write", "W", n3),
    C("rval_plus_zero_then_write", "W", n3),
    C("rval_one_times_then_write", "W", n3),
    C("rval_minus_zero_then_write", "W", n3),
    C("rval_div_one_then_write", "W", n3),
    C("rval_unary_plus_then_write", "W", n3),
    C("rval_double_neg_then_write", "W", n3),
    C("rval_pow_one_then_write", "W", n3),
    C("rval_np_funcs_identity_then_write", "W", n3),
    C("rval_scale_param_one", "W", lambda r: (N(r, 3), 1.0)),
    C("rval_add_param_zeros", "W", lambda r: (N(r, 3), np.zeros(3))),
    C("rval_local_plus_zero", "W", n3),
    C("rval_loop_times_one", "W", lambda r: (0.5 * N(r, 3),)),
    C("rval_T_times_one_then_write", "W", lambda r: (N(r, 3, 3),)),
    C("rval_matmul_identity_then_write", "W", lambda r: (N(r, 3, 3),)),
    C("rval_where_clip_then_write", "W", lambda r: (NZ(r, 3),)),
    C("rval_maximum_then_write", "W", n3),
    C("rval_sum_then_write_source", "W", n3),
    # ------------------------------------------------------------------ swap_
    C("swap_pair", "W", lambda r: (N(r, 3), N(r, 3))),
    C("swap_fib", "W", lambda r: (N(r, 3), 4)),
    C("swap_fib_nonlinear", "W", lambda r: (N(r, 3), 4)),
    C("swap_double_buffer_write", "W", lambda r: (N(r, 3), 3)),
    C("swap_double_buffer_rebind", "W", lambda r: (N(r, 3), 3)),
    C("swap_double_buffer_elementwise", "W", lambda r: (N(r, 4),)),
    C("swap_double_buffer_slices", "W", lambda r: (N(r, 4),)),
    C("swap_three_way", "W", n3),
    C("swap_then_write", "W", n3),
    C("swap_alias_then_swap", "W", n3),
    C("swap_names_list_holds", "W", n3),
    C("swap_scalar_recurrence", "a0 b0", (0.7, -0.4, 4)),
    C("swap_tuple_unpack_slices", "W", lambda r: (N(r, 4),)),
    C("swap_rows_pitfall", "W", lambda r: (N(r, 2, 3),)),
    C("swap_rows_copy", "W", lambda r: (N(r, 2, 3),)),
    C("swap_elements", "W", n3),
    C("swap_while", "W", n3),
    C("swap_write_read_same_statement", "W", n3),
    C("swap_grad_scalar", "a b", (0.6, -1.3), grad=True),
    # ------------------------------------------------------------------ aug_
    C("aug_add_fresh", "W", lambda r: (N(r, 3), N(r, 3))),
    C("aug_mul_fresh", "W", n3),
    C("aug_sub_fresh", "W", lambda r: (N(r, 3), N(r, 3))),
    C("aug_div_fresh", "W", n3),
    C("aug_pow_fresh", "W", n3),
    C("aug_scalar", "a b", (0.8, 1.7)),
    C("aug_scalar_loop", "a", (0.9, 3)),
    C("aug_scalar_from_element", "W", n3),
    C("aug_zero_d_sum", "W", n3),
    C("aug_list_holds", "W", n3),
    C("aug_tuple_holds", "W", n3),
    C("aug_name_alias", "W", n3),
    C("aug_name_alias_sub", "W", n3),
    C("aug_view_sees_base", "W", n3),
    C("aug_on_view_base_sees", "W", n3),
    C("aug_T_view", "W", lambda r: (N(r, 3, 3),)),
    C("aug_self", "W", n3),
    C("aug_self_other_name", "W", n3),
    C("aug_overlap_shift", "W", lambda r: (N(r, 4),)),
    C("aug_overlap_reversed", "W", lambda r: (N(r, 4),)),
    C("aug_list_element", "W", n3),
    C("aug_list_elements_loop", "W", n3),
    C("aug_broadcast_col", "W b", lambda r: (N(r, 3, 4), N(r, 3))),
    C("aug_broadcast_row", "W b", lambda r: (N(r, 3, 4), N(r, 4))),
    C("aug_slice_add", "W", lambda r: (N(r, 4),)),
    C("aug_fancy_mul", "W", lambda r: (N(r, 4), IDX(0, 2))),
    C("aug_fancy_repeated_index", "W", lambda r: (N(r, 3), IDX(0, 0, 2))),
    C("aug_index_scalar", "W", n3),
    C("aug_col_slice", "W", lambda r: (N(r, 3, 2),)),
    C("aug_2d_block", "W", lambda r: (N(r, 3, 3),)),
    C("aug_slice_in_loop", "W", lambda r: (N(r, 4),)),
    C("aug_accumulate_alias_loop", "W", n3),
    C("aug_branch_alias", "W", lambda r: (N(r, 3), 1.0), lambda r: (N(r, 3), -1.0)),
    C("aug_mul_by_own_element", "W", n3),
    C("aug_int_constant", "W", n3),
    C("aug_ridge_grad", "w", lambda r: (N(r, 3), N(r, 6, 3), N(r, 6), 0.1), grad=True),
    C("aug_logreg_grad", "w",
      lambda r: (N(r, 3), N(r, 6, 3), (r.uniform(0, 1, 6) > 0.5).astype(float)), grad=True),
    C("aug_grad_accumulate_buffer", "W", lambda r: (0.5 * N(r, 2, 3), N(r, 3)), grad=True),
    # ------------------------------------------------------------------ path_
    C("path_fill_loop", "W", lambda r: (N(r, 4),)),
    C("path_fill_cumulative", "W", lambda r: (N(r, 4),)),
    C("path_fill_2d", "W", n3),
    C("path_branch_write", "W", lambda r: (NZ(r, 4),)),
    C("path_while_counter_fill", "W", lambda r: (N(r, 4),)),
    C("path_if_write_then_read", "W", lambda r: (N(r, 3), 1.0), lambda r: (N(r, 3), -1.0)),
    C("path_break_on_value", "W", (A(0.5, 1.1, 0.3, -0.7, 0.9),), (A(0.4, 0.8, 1.2, 0.6, 0.2),)),
    C("path_continue_write", "W", lambda r: (NZ(r, 5),)),
    C("path_reversed_fill", "W", lambda r: (N(r, 4),)),
    C("path_fill_rows_matmul", "W", lambda r: (N(r, 3, 2), N(r, 2, 4))),
    C("path_overwrite_twice", "W", n3),
    C("path_early_return_after_write", "W",
      lambda r: (N(r, 3), 1.0), lambda r: (N(r, 3), -1.0)),
    C("path_rnn_fill", "Wh Wx", lambda r: (0.5 * N(r, 3, 3), N(r, 3, 2), N(r, 2, 4))),
    C("path_grad_rosenbrock_fill", "x", lambda r: (N(r, 4),), grad=True),
    C("path_while_halve_entries", "W", (A(1.7, -0.9, 2.6),), (A(0.1, 0.5, -0.2),)),
    C("path_while_break_write", "W", lambda r: (N(r, 5),)),
    C("path_nested_if_fill", "W", n3),
    C("path_while_countdown_fill", "W", lambda r: (N(r, 4),)),
    C("path_grad_smooth_fill", "x", lambda r: (N(r, 4),), grad=True),
    # ------------------------------------------------------------------ misc_
    C("misc_copy_vs_assign", "W", n3),
    C("misc_np_copy", "W", n3),
    C("misc_rebind_self", "W", n3),
    C("misc_ellipsis_assign", "W", lambda r: (N(r, 3), N(r, 3))),
    C("misc_ellipsis_assign_alias", "W", n3),
    C("misc_fullslice_assign_self_alias", "W", n3),
    C("misc_fullslice_assign_reversed", "W", lambda r: (N(r, 4),)),
    C("misc_shifted_assign", "W", lambda r: (N(r, 4),)),
    C("misc_return_twice", "W", n3),
    C("misc_return_alias_after_write", "W", n3),
    C("misc_return_param", "W", lambda r: (N(r, 3), N(r, 3))),
    C("misc_return_param_T", "W", lambda r: (N(r, 2, 3),)),
    C("misc_return_param_and_expr", "W", n3),
    C("misc_return_param_views", "W", lambda r: (N(r, 5),)),
    C("misc_return_param_reshape", "W", lambda r: (N(r, 2, 3),)),
    C("misc_list_return_same_twice", "W", n3),
    C("misc_param_alias_read_only", "W", lambda r: (N(r, 2, 3),)),
    C("misc_zeros_like_write", "W", n3),
    C("misc_empty_fill", "W", n3),
    C("misc_full_write", "W", n3),
    C("misc_ones_like_write", "W", n3),
    C("misc_write_scalar_broadcast", "W", n3),
    C("misc_view_of_param_copy_write", "W", lambda r: (N(r, 4),)),
    C("misc_copy_T_write", "W", lambda r: (N(r, 2, 3),)),
    C("misc_where_then_write", "W", lambda r: (NZ(r, 3),)),
    C("misc_chained_assign", "W", n3),
    C("misc_chained_assign_zeros", "W", n3),
    C("misc_annotated_alias", "W", n3),
    C("misc_write_reading_self", "W", n3),
    C("misc_negative_index_write", "W", n3),
    C("misc_int_index_param", "W", lambda r: (N(r, 3), 1)),
    C("misc_float_of_element", "W", lambda r: (N(r, 2),)),
    C("misc_scalar_element_copy", "W", n3),
    C("misc_sum_of_alias", "W", n3),
    C("misc_normalize_in_place", "W", n3),
    C("misc_prev_with_copy", "W", n3),
    C("misc_quad_grad_alias", "w", lambda r: (N(r, 3), N(r, 4, 3), N(r, 4)), grad=True),
    C("misc_view_of_copy_write", "W", n3),
    # ------------------------------------------------------------------ more alias_ / misc_ / cont_
    C("alias_reshape_of_T_is_copy", "W", lambda r: (N(r, 2, 3),)),
    C("alias_fancy_read_is_copy", "W", lambda r: (N(r, 3), IDX(2, 0))),
    C("alias_row_view_vs_element", "W", lambda r: (N(r, 2, 3),)),
    C("alias_aug_view_of_view", "W", lambda r: (N(r, 6),)),
    C("misc_self_referential_slice_assign", "W", n3),
    C("misc_mask_write", "W", lambda r: (NZ(r, 4),)),
    C("misc_ellipsis_aug_alias", "W", n3),
    C("misc_helper_writes_arg", "W", n3),
    C("misc_helper_aug_arg", "W", n3),
    C("cont_last_element_aug_loop", "W", n3),
    C("misc_return_array_and_view", "W", n3),
    C("misc_relaxation_in_place", "W", lambda r: (0.5 * N(r, 3),)),
    C("cont_view_of_element_aug_loop", "W", n3),
    C("alias_T_row_write_matmul_base", "W", n3),
    C("alias_branch_one_path_then_write", "W", n3),
    C("cont_same_object_appended_aug", "W", n3),
    C("cont_cache_with_dict_keeps_binding", "W", n3),
    C("cont_cache_list_with_dict", "W", n3),
    C("cont_list_concat", "W", n3),
]
HELPERS = {"set_first", "scale_in_place", "_cell"}
PROG = {p.name: p for p in PROGRAMS}
NAMES = [p.name for p in PROGRAMS]
OK = [p.name for p in PROGRAMS if p.expect == "ok"]
REFUSE = [p.name for p in PROGRAMS if p.expect == "refuse"]
GRAD = [p.name for p in PROGRAMS if p.grad]

# name -> why JAX cannot run the source with NumPy's meaning (checked against central
# differences only)
_INPLACE = "writes into an array in place (x[i] = ..., x[:] = ...); JAX arrays are immutable"
_AUG_ALIAS = ("`a op= x` on an array that another name, view or container also holds: NumPy "
              "writes into the shared array, JAX rebinds `a` to a new array")
JAX_SKIP: dict[str, str] = {n: _INPLACE for n in [
    "alias_name_write_read", "alias_name_write_other", "alias_name_active_base",
    "alias_chain_names", "alias_slice_write_view", "alias_slice_write_base",
    "alias_step_view_write", "alias_step_base_write", "alias_col_view_write",
    "alias_col_base_write", "alias_T_write_view", "alias_T_write_base",
    "alias_np_transpose_write_base", "alias_np_transpose_write_view",
    "alias_reshape_write_view", "alias_reshape_write_base", "alias_np_reshape_write_base",
    "alias_reshape_flat_write_view", "alias_ravel_write_view", "alias_ravel_write_base",
    "alias_loop_write_view", "alias_loop_reversed_view_read", "alias_branch_write_view",
    "alias_branch_alias_created_in_branch", "alias_view_chain", "alias_view_chain_T_row",
    "alias_view_chain_reshape_col", "alias_view_of_view_write_base",
    "alias_view_write_reduce_base", "alias_view_write_inactive",
    "alias_zeros_alias_before_write", "alias_zeros_T_before_fill",
    "alias_inactive_view_becomes_active", "alias_full_slice_view", "alias_newaxis_view",
    "alias_ellipsis_view", "alias_block_view_write", "alias_negative_slice_view",
    "alias_rebind_base_then_write", "alias_prev_without_copy", "alias_while_write_view",
    "alias_grad_logcosh", "alias_col_view_fill_matmul",
    "cont_append_then_write", "cont_append_active_then_write",
    "cont_append_zeros_then_active_write", "cont_list_literal_write",
    "cont_tuple_literal_write", "cont_take_out_write", "cont_take_out_write_zeros",
    "cont_take_out_write_loop", "cont_nested_list_write", "cont_nested_tuple_write",
    "cont_negative_after_append_write", "cont_same_array_twice",
    "cont_append_same_buffer_loop", "cont_append_copy_loop", "cont_unpack_then_write",
    "cont_tuple_unpack_write", "cont_return_list_after_write",
    "cont_slot_replace_then_write_old", "cont_row_view_in_list_base_written",
    "rval_sum_then_write", "rval_update_then_write_grad", "rval_copy_expr_then_write_base",
    "rval_times_one_then_write", "rval_plus_zero_then_write", "rval_one_times_then_write",
    "rval_minus_zero_then_write", "rval_div_one_then_write", "rval_unary_plus_then_write",
    "rval_double_neg_then_write", "rval_pow_one_then_write",
    "rval_np_funcs_identity_then_write", "rval_scale_param_one", "rval_add_param_zeros",
    "rval_local_plus_zero", "rval_loop_times_one", "rval_T_times_one_then_write",
    "rval_matmul_identity_then_write", "rval_where_clip_then_write", "rval_maximum_then_write",
    "rval_sum_then_write_source",
    "swap_double_buffer_write", "swap_double_buffer_elementwise", "swap_double_buffer_slices",
    "swap_three_way", "swap_then_write", "swap_alias_then_swap", "swap_names_list_holds",
    "swap_rows_pitfall", "swap_rows_copy", "swap_elements", "swap_write_read_same_statement",
    "aug_overlap_shift", "aug_slice_add", "aug_fancy_mul", "aug_fancy_repeated_index",
    "aug_index_scalar", "aug_col_slice", "aug_2d_block", "aug_slice_in_loop",
    "path_fill_loop", "path_fill_cumulative", "path_fill_2d", "path_branch_write",
    "path_while_counter_fill", "path_if_write_then_read", "path_break_on_value",
    "path_continue_write", "path_reversed_fill", "path_fill_rows_matmul",
    "path_overwrite_twice", "path_early_return_after_write", "path_rnn_fill",
    "path_grad_rosenbrock_fill", "path_while_halve_entries", "path_while_break_write",
    "path_nested_if_fill", "path_while_countdown_fill", "path_grad_smooth_fill",
    "misc_copy_vs_assign", "misc_np_copy", "misc_rebind_self", "misc_ellipsis_assign",
    "misc_ellipsis_assign_alias", "misc_fullslice_assign_self_alias",
    "misc_fullslice_assign_reversed", "misc_shifted_assign", "misc_return_alias_after_write",
    "misc_zeros_like_write", "misc_empty_fill", "misc_full_write", "misc_ones_like_write",
    "misc_write_scalar_broadcast", "misc_view_of_param_copy_write", "misc_copy_T_write",
    "misc_where_then_write", "misc_chained_assign", "misc_chained_assign_zeros",
    "misc_annotated_alias", "misc_write_reading_self", "misc_negative_index_write",
    "misc_int_index_param", "misc_float_of_element", "misc_scalar_element_copy",
    "misc_prev_with_copy", "misc_view_of_copy_write",
    "alias_reshape_of_T_is_copy", "alias_fancy_read_is_copy", "alias_row_view_vs_element",
    "misc_self_referential_slice_assign", "misc_mask_write", "misc_helper_writes_arg",
    "misc_return_array_and_view", "misc_relaxation_in_place", "alias_T_row_write_matmul_base",
    "alias_branch_one_path_then_write",
]}
JAX_SKIP.update({n: _AUG_ALIAS for n in [
    "alias_col_aug_reduce_base", "aug_list_holds", "aug_tuple_holds", "aug_name_alias",
    "aug_name_alias_sub", "aug_view_sees_base", "aug_on_view_base_sees", "aug_T_view",
    "aug_self_other_name", "aug_list_element", "aug_list_elements_loop",
    "aug_accumulate_alias_loop", "aug_branch_alias", "misc_quad_grad_alias",
    "alias_aug_view_of_view", "misc_ellipsis_aug_alias", "cont_last_element_aug_loop",
    "misc_helper_aug_arg", "cont_view_of_element_aug_loop", "cont_same_object_appended_aug",
    "cont_list_concat",
]})
JAX_NAMES = [n for n in OK if n not in JAX_SKIP]


# ----------------------------------------------------------------------------- trees of values

def structure(x):
    """The nesting of tuples and lists, with each leaf's shape."""
    if isinstance(x, (tuple, list)):
        return (type(x).__name__, tuple(structure(e) for e in x))
    return np.shape(x)


def one_line(exc):
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {' | '.join(lines[:4])}"[:400]


# ----------------------------------------------------------------------------- running, once

def wrt_index(prog):
    return positions(prog.fn, prog.wrt)


@functools.lru_cache(maxsize=None)
def points(name):
    """[(args, v)]: the pristine inputs of every point (never handed to rop or the program)."""
    prog = PROG[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    out = []
    for args in prog.points(rng):
        v = tuple(direction_like(rng, args[i]) for i in wrt_index(prog))
        out.append((tuple(args), v))
    return out


@functools.lru_cache(maxsize=None)
def compiled(name, mode):
    """(the rop function, None) or (None, the exception of the decoration)."""
    prog = PROG[name]
    try:
        return rop(prog.fn, wrt=prog.wrt, mode=mode), None
    except Exception as exc:  # noqa: BLE001 (reported by the tests)
        return None, exc


class Call(NamedTuple):
    out: object
    r: object
    snapshot: object       # a deep copy of (out, r) taken right after the call
    exc: Exception | None
    modified: list         # what the call changed among its arguments and directions


def call_hvp(f, args, v):
    a, d = copy.deepcopy(args), copy.deepcopy(v)
    try:
        out, r = f.hvp(*a, v=d)
    except Exception as exc:  # noqa: BLE001
        return Call(None, None, None, exc, [])
    modified = [f"argument {k}" for k, (x, y) in enumerate(zip(args, a)) if not identical(x, y)]
    modified += [f"direction {k}" for k, (x, y) in enumerate(zip(v, d)) if not identical(x, y)]
    return Call(out, r, copy.deepcopy((out, r)), None, modified)


@functools.lru_cache(maxsize=None)
def run(name, mode):
    """One Call per point, for a program compiled without error (else the test fails)."""
    f, exc = compiled(name, mode)
    if exc is not None:
        if isinstance(exc, RopSyntaxError):
            pytest.fail(f"UNEXPECTED REFUSAL [{mode}] at decoration: {one_line(exc)}")
        pytest.fail(f"CRASH at decoration [{mode}]: {one_line(exc)}")
    calls = [call_hvp(f, args, v) for args, v in points(name)]
    return f, calls


def need(name, mode):
    f, calls = run(name, mode)
    for p, c in enumerate(calls):
        if c.exc is not None:
            kind = "UNEXPECTED REFUSAL" if isinstance(c.exc, RopSyntaxError) else "CRASH in .hvp"
            pytest.fail(f"{kind} [{mode}] point {p}: {one_line(c.exc)}")
    return f, calls


@functools.lru_cache(maxsize=None)
def reference(name, p):
    args, _ = points(name)[p]
    return PROG[name].fn(*copy.deepcopy(args))


@functools.lru_cache(maxsize=None)
def finite_differences(name, p):
    prog = PROG[name]
    args, v = points(name)[p]
    idx = wrt_index(prog)
    fds = []
    for eps in STEPS:
        plus, minus = list(copy.deepcopy(args)), list(copy.deepcopy(args))
        for i, d in zip(idx, v):
            plus[i] = axpy(args[i], eps, d)
            minus[i] = axpy(args[i], -eps, d)
        fds.append([(as_float(a) - as_float(b)) / (2 * eps)
                    for a, b in zip(leaves(prog.fn(*plus)), leaves(prog.fn(*minus)))])
    return fds


@functools.lru_cache(maxsize=None)
def jax_namespace():
    return jax_oracle.jax_namespace(P)


@functools.lru_cache(maxsize=None)
def jax_jvp(name, p):
    prog = PROG[name]
    fj = jax_namespace()[name]
    idx = wrt_index(prog)
    args, v = points(name)[p]
    args = copy.deepcopy(args)

    def f_wrt(*params):
        full = list(args)
        for i, val in zip(idx, params):
            full[i] = val
        return fj(*full)
    primals = tuple(same_structure(args[i], args[i]) for i in idx)
    tangents = tuple(same_structure(args[i], d) for i, d in zip(idx, v))
    return jax.jvp(f_wrt, primals, tangents)


def modes_params(names):
    return [pytest.param(n, m, id=f"{n}-{m}") for n in names for m in MODES]


# ----------------------------------------------------------------------------- the corpus itself

def test_corpus_size_and_completeness():
    assert len(PROGRAMS) >= 160, len(PROGRAMS)
    assert len(PROG) == len(PROGRAMS), "duplicate program names"
    defined = {n for n, f in vars(P).items()
               if isinstance(f, types.FunctionType) and f.__module__ == P.__name__}
    assert HELPERS <= defined
    assert set(PROG) == defined - HELPERS, sorted(set(PROG) ^ (defined - HELPERS))
    assert all(n.startswith(SECTIONS) for n in NAMES)
    assert set(JAX_SKIP) <= set(OK), sorted(set(JAX_SKIP) - set(OK))
    for s in SECTIONS:
        assert sum(n.startswith(s) for n in NAMES) >= 15, s


def test_every_program_says_why():
    """A comment line right above every program says what NumPy does there."""
    lines = inspect.getsource(P).splitlines()
    for name in NAMES:
        _, start = inspect.getsourcelines(PROG[name].fn)
        assert lines[start - 2].startswith("#"), f"{name}: no reason comment above the def"


def test_programs_are_short_and_refusals_are_the_documented_kind():
    for name in NAMES:
        src, _ = inspect.getsourcelines(PROG[name].fn)
        body = [ln for ln in src[1:] if ln.strip()]
        assert 1 <= len(body) <= 12, (name, len(body))
    for name in REFUSE:
        src = inspect.getsource(PROG[name].fn)
        lines = inspect.getsource(P).splitlines()
        _, start = inspect.getsourcelines(PROG[name].fn)
        comment = "\n".join(ln for ln in lines[max(0, start - 4):start - 1] if ln.startswith("#"))
        assert "# REFUSE" in comment, name
        assert "A[:, " in src or ".T" in src or "::2]" in src or "accepted subset" in comment, name


def test_the_programs_leave_their_inputs_alone():
    """The programs themselves (run by NumPy) write into none of their arguments."""
    for name in NAMES:
        for args, _ in points(name):
            a = copy.deepcopy(args)
            PROG[name].fn(*a)
            assert identical(a, args), f"{name} writes into its arguments"


def test_jax_skip_is_honest():
    """JAX_SKIP is honest: every skipped program has a subscript write or an augmented
    assignment in its source."""
    for name, why in JAX_SKIP.items():
        src = inspect.getsource(PROG[name].fn)
        src += "".join(inspect.getsource(getattr(P, h)) for h in HELPERS if h + "(" in src)
        tree = ast.parse(src)
        writes = [n for n in ast.walk(tree)
                  if isinstance(n, ast.AugAssign)
                  or (isinstance(n, ast.Assign)
                      and any(isinstance(t, ast.Subscript)
                              or (isinstance(t, ast.Tuple)
                                  and any(isinstance(e, ast.Subscript) for e in t.elts))
                              for t in n.targets))]
        assert writes, f"{name} is in JAX_SKIP ({why}) but writes nothing in place"


# ----------------------------------------------------------------------------- "ok" programs

@pytest.mark.parametrize("name,mode", modes_params(OK))
def test_primal(name, mode):
    _, calls = need(name, mode)
    for p, c in enumerate(calls):
        ref = reference(name, p)
        assert structure(c.out) == structure(ref), \
            f"PRIMAL STRUCTURE [{mode}] point {p}: {structure(c.out)} != {structure(ref)}"
        for k, (g, r) in enumerate(zip(leaves(c.out), leaves(ref))):
            g, r = as_float(g), as_float(r)
            atol = PRIMAL_ATOL * max(1.0, float(np.max(np.abs(r), initial=0.0)))
            assert np.allclose(g, r, rtol=PRIMAL_RTOL, atol=atol), \
                (f"WRONG PRIMAL [{mode}] point {p} output {k}: max |diff| "
                 f"{float(np.max(np.abs(g - r))):.3e}")
        assert structure(c.r) == structure(c.out), \
            f"R STRUCTURE [{mode}] point {p}: {structure(c.r)} != outputs {structure(c.out)}"


@pytest.mark.parametrize("name,mode", modes_params(OK))
def test_inputs_unchanged(name, mode):
    _, calls = need(name, mode)
    for p, c in enumerate(calls):
        assert not c.modified, f"MODIFIED INPUT [{mode}] point {p}: .hvp changed {c.modified}"


@pytest.mark.parametrize("name,mode", modes_params(OK))
def test_central_differences(name, mode):
    _, calls = need(name, mode)
    for p, c in enumerate(calls):
        outs = leaves(reference(name, p))
        routs = leaves(c.r)
        assert len(outs) == len(routs), f"R STRUCTURE [{mode}]: {len(routs)} != {len(outs)}"
        fds = finite_differences(name, p)
        for k, (r, o) in enumerate(zip(routs, outs)):
            r = as_float(r)
            errs = []
            for fd in fds:
                d = fd[k]
                assert r.shape == d.shape, f"R SHAPE [{mode}] output {k}: {r.shape} != {d.shape}"
                scale = max(float(np.max(np.abs(d), initial=0.0)),
                            float(np.max(np.abs(r), initial=0.0)),
                            1e-2 * float(np.max(np.abs(as_float(o)), initial=0.0)), 1e-8)
                errs.append(float(np.max(np.abs(r - d), initial=0.0)) / scale)
            assert min(errs) <= FD_RTOL, \
                (f"WRONG R vs central differences [{mode}] point {p} output {k}: relative "
                 f"error {min(errs):.2e}")


@pytest.mark.parametrize("name,mode", modes_params(JAX_NAMES))
def test_jax_jvp(name, mode):
    _, calls = need(name, mode)
    for p, c in enumerate(calls):
        out_j, r_j = jax_jvp(name, p)
        ok, worst = close(c.out, out_j, JAX_RTOL)
        assert ok, f"WRONG PRIMAL vs JAX [{mode}] point {p}: {worst:.2e}"
        ok, worst = close(c.r, r_j, JAX_RTOL)
        assert ok, f"WRONG R vs jax.jvp [{mode}] point {p}: {worst:.2e}"


@pytest.mark.parametrize("name", OK)
def test_modes_agree(name):
    _, num = need(name, "numba")
    _, py = need(name, "python")
    for p, (a, b) in enumerate(zip(num, py)):
        ok, worst = close(a.out, b.out, MODES_RTOL)
        assert ok, f"MODES DIFFER (outputs) point {p}: {worst:.2e}"
        ok, worst = close(a.r, b.r, MODES_RTOL)
        assert ok, f"MODES DIFFER (R) point {p}: {worst:.2e}"


@pytest.mark.parametrize("name,mode", modes_params(OK))
def test_original_and_repeat(name, mode):
    """The original function leaves its inputs alone; a second .hvp call returns the same and
    does not touch the results of the first."""
    f, calls = need(name, mode)
    for p, ((args, v), c) in enumerate(zip(points(name), calls)):
        a = copy.deepcopy(args)
        f(*a)
        assert identical(a, args), f"MODIFIED INPUT by the decorated original [{mode}] point {p}"
        again = call_hvp(f, args, v)
        assert again.exc is None, f"CRASH on the second call [{mode}]: {one_line(again.exc)}"
        assert not again.modified, f"MODIFIED INPUT [{mode}] second call: {again.modified}"
        for k, (x, y) in enumerate(zip(leaves((c.out, c.r)), leaves(c.snapshot))):
            assert np.array_equal(np.asarray(x), np.asarray(y)), \
                f"RESULTS OVERWRITTEN [{mode}] point {p}: leaf {k} changed by a later call"
        ok, worst = close((again.out, again.r), (c.out, c.r), 0.0)
        assert ok, f"NOT REPEATABLE [{mode}] point {p}: {worst:.2e}"


@pytest.mark.parametrize("name,mode", modes_params(GRAD))
def test_hessian_symmetry(name, mode):
    f, _ = need(name, mode)
    prog = PROG[name]
    idx = wrt_index(prog)
    rng = np.random.default_rng(7 + sum(map(ord, name)))
    for p, (args, _) in enumerate(points(name)):
        u = tuple(direction_like(rng, args[i]) for i in idx)
        w = tuple(direction_like(rng, args[i]) for i in idx)
        cu, cw = call_hvp(f, args, u), call_hvp(f, args, w)
        for c in (cu, cw):
            assert c.exc is None, f"CRASH in .hvp [{mode}]: {one_line(c.exc)}"
        Hu, Hw = cu.r, cw.r
        if len(idx) == 1:
            Hu, Hw = (Hu,), (Hw,)
        a, b = dot(u, Hw), dot(Hu, w)
        scale = max(abs(a), abs(b), 1e-3 * np.sqrt(dot(u, u) * dot(Hw, Hw)))
        assert abs(a - b) <= SYM_RTOL * scale, \
            f"ASYMMETRIC H [{mode}] point {p}: <u, Hw> = {a!r}, <Hu, w> = {b!r}"


# ----------------------------------------------------------------------------- "refuse" programs

@pytest.mark.parametrize("name,mode", modes_params(REFUSE))
def test_refused(name, mode):
    prog = PROG[name]
    err = None
    try:
        f = rop(prog.fn, wrt=prog.wrt, mode=mode)
        for args, v in points(name):
            f.hvp(*copy.deepcopy(args), v=copy.deepcopy(v))
    except RopSyntaxError as exc:
        err = exc
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"CRASH instead of a refusal [{mode}]: {one_line(exc)}")
    if err is None:
        pytest.fail(f"NOT REFUSED [{mode}]: rop compiled a program it cannot follow "
                    f"(a strided view stored in a list, its base written afterwards)")
    text = str(err)
    src, start = inspect.getsourcelines(prog.fn)
    lines = range(start, start + len(src))
    assert "adversarial_programs.py" in text, f"REFUSAL WITHOUT FILE NAME: {text!r}"
    m = re.search(r"adversarial_programs\.py:(\d+):", text)
    assert m and int(m.group(1)) in lines, \
        f"REFUSAL LINE not in the program (lines {start}-{lines[-1]}): {text!r}"
    assert err.hint and "hint:" in text, f"REFUSAL WITHOUT HINT: {text!r}"
