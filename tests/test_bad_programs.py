"""A corpus of programs outside rop's accepted subset, and of calls that do not fit.

The programs live, undecorated, in ``tests/bad_programs.py`` (rop reads source with
``inspect``, so they must be in a real file).  Each case applies ``rop(wrt=...)`` and expects a
:class:`RopSyntaxError` at decoration time, at an exact line (relative to the ``def`` line of
the function the error is *in*, which for helper functions is the helper) and 1-based column,
with a message fragment, and formatted as a compiler diagnostic::

    file:line:col: error: message
        the source line
        ^
    hint: ...

Call-time problems (the direction ``v``, parameter dtypes, non-finite values) are
:class:`RopCallError` and are checked with message fragments.

``KNOWN_FAILING`` holds cases whose expectation is what rop *should* do but currently does not
(wrong position or an unhelpful message).  They are deliberately not run; the lead fixes rop
and moves them into ``SYNTAX_CASES``.
"""

from __future__ import annotations

import inspect
import linecache
from typing import Callable, NamedTuple, Optional

import numpy as np
import pytest

import bad_prims_programs as BP
import bad_programs as B
from rop import rop
from rop.errors import RopCallError, RopSyntaxError


class Bad(NamedTuple):
    fn: Callable            # the undecorated function given to rop
    wrt: tuple
    line: int               # expected line, relative to the def line of `anchor`
    col: int                # expected 1-based column
    fragment: str           # must occur in the message
    at: str                 # the file's text at (line, col) starts with this (checks the table)
    anchor: Optional[Callable] = None   # the function the error is in (default: fn)
    error: type = RopSyntaxError
    args: Optional[tuple] = None  # refused when compiled for these (it takes the ranks)


SYNTAX_CASES = {
    # -- refused by the grammar ----------------------------------------------------------
    "generator_yield": Bad(B.gen_yield, ("W",), 2, 9, "yield", "yield"),
    "class_inside": Bad(B.class_inside, ("W",), 1, 5, "class", "class"),
    "try_except": Bad(B.try_except, ("W",), 1, 5, "try", "try"),
    "lambda": Bad(B.uses_lambda, ("W",), 1, 9, "lambda", "lambda"),
    "global_write": Bad(B.global_write, ("W",), 1, 5, "global", "global"),
    "generator_outside_sum": Bad(B.comprehension, ("W",), 1, 16, "only as the argument of `sum`",
                                 "(W[i]"),
    "with_statement": Bad(B.with_statement, ("W",), 1, 5, "with", "with"),
    "del": Bad(B.uses_del, ("W",), 2, 5, "del", "del"),
    "fstring": Bad(B.uses_fstring, ("W",), 1, 13, "f-string", 'f"layer'),
    "star_args": Bad(B.star_args, ("W",), 0, 18, "*args", "*args"),
    "star_kwargs": Bad(B.star_kwargs, ("W",), 0, 20, "**kwargs", "**kwargs"),
    "starred_call": Bad(B.starred_call, ("W",), 2, 18, "starred", "*shape"),
    "for_else": Bad(B.for_else, ("W",), 4, 5, "else", "else"),
    "while_else": Bad(B.while_else, ("W",), 6, 5, "else", "else"),
    "attribute_assign": Bad(B.attribute_assign, ("W",), 2, 5, "attribute", "y.flags"),
    # -- refused by the memory model (rop/ir/storage.py), once ranks are known ------------
    "param_written_through_list": Bad(B.param_written_through_list, ("W",), 3, 5,
                                      "memory of parameter `W`", "h"),
    "list_view_then_write": Bad(B.list_view_then_write, ("W",), 3, 5, "a list holds a view",
                                "A"),
    # -- refused when names are resolved (rop/frontend/lower.py) -------------------------
    "np_linalg_eigh": Bad(B.unknown_eigh, ("W",), 2, 12, "no R-rule for `np.linalg.eigh`",
                          "np.linalg.eigh"),
    "np_fft_fft": Bad(B.unknown_fft, ("W",), 1, 9, "no R-rule for `np.fft.fft`", "np.fft.fft"),
    "unknown_method": Bad(B.unknown_method, ("W",), 1, 11, "`.argsort()`", "x.argsort"),
    "setitem_param": Bad(B.setitem_param, ("W",), 1, 5, "parameter `W`", "W[0]"),
    "augassign_param": Bad(B.augassign_param, ("W",), 1, 5, "parameter `W`", "W +=",
                           args=(np.ones(2), np.ones(2))),
    "append_to_list_param": Bad(B.append_param, ("Ws",), 2, 5, "parameter `Ws`", "Ws.append"),
    "write_into_view_of_param": Bad(B.write_into_view, ("W",), 2, 5, "view of a parameter",
                                    "a[0]"),
    "name_before_definition": Bad(B.name_before_definition, ("W",), 1, 9, "`z` is not defined",
                                  "z * W"),
    "for_over_list_it_appends_to": Bad(B.for_over_list, ("Ws",), 2, 14,
                                       "changes `hs` (rebinds it or appends to it)", "hs:"),
    "global_array_as_value": Bad(B.global_array_value, ("W",), 1, 13, "`A_GLOBAL` (ndarray)",
                                 "A_GLOBAL"),
    "min_of_sequence": Bad(B.min_of_sequence, ("W",), 1, 9, "min() of a sequence", "min(["),
    # -- helpers (inlined): the error is in the helper, at the helper's line ----------------
    "recursive_helper": Bad(B.recursion_via_helper, ("W",), 1, 9, "recursion",
                            "_recursive_helper(x * x", anchor=B._recursive_helper),
    "function_calls_itself": Bad(B.calls_itself, ("W",), 1, 9, "recursion", "calls_itself(W"),
    # -- found by this corpus and fixed: nested functions, early helper returns, print, views
    "nonlocal_in_nested_function": Bad(B.nonlocal_write, ("W",), 1, 9, "nonlocal", "nonlocal"),
    "helper_returning_from_a_loop": Bad(B.early_return_in_helper, ("W",), 3, 13, "inside a loop",
                                        "return A @ x", anchor=B._early_return_helper),
    "print_statement": Bad(B.print_statement, ("W",), 2, 5, "print", "print"),
    "augassign_into_view_of_param": Bad(B.augassign_view, ("W",), 2, 5,
                                        "memory of parameter `W`", "a +=",
                                        args=(np.ones((2, 2)), np.ones(2))),
    "nested_setitem_param": Bad(B.nested_setitem_param, ("Ws",), 1, 5, "parameter `Ws`",
                                "Ws[0][1]"),
    "call_global_array": Bad(B.call_global_array, ("W",), 1, 9, "ndarray", "A_GLOBAL("),
}

# -- argument values an entry of the rule table cannot emit (rules/arrays.py: checks) --------
SYNTAX_CASES.update({
    "einsum_ellipsis": Bad(BP.einsum_ellipsis, ("A",), 1, 12, "`...`", "np.einsum"),
    "einsum_variable_subscripts": Bad(BP.einsum_variable_subscripts, ("A",), 1, 18,
                                      "string constant", "np.einsum"),
    "einsum_operand_count": Bad(BP.einsum_operand_count, ("A",), 2, 12, "the call passes 1",
                                "np.einsum"),
    "var_dtype": Bad(BP.var_dtype, ("x",), 1, 12, "`dtype=` of np.var", "np.var"),
    "concatenate_variable_axis": Bad(BP.concatenate_variable_axis, ("x",), 1, 12,
                                     "`axis` of np.concatenate must be a constant",
                                     "np.concatenate"),
    "astype_int": Bad(BP.astype_int, ("x",), 1, 12, "astype to int64", "x.astype"),
    "std_tuple_axes": Bad(BP.std_tuple_axes, ("x",), 1, 12, "`axis` of np.std", "x.std"),
    "cumsum_variable_axis": Bad(BP.cumsum_variable_axis, ("x",), 1, 12, "`axis` of np.cumsum",
                                "np.cumsum"),
    "pad_edge": Bad(BP.pad_edge, ("x",), 1, 13, "np.pad with mode='edge' is not supported",
                    "np.pad"),
    "pad_fill_pairs": Bad(BP.pad_fill_pairs, ("x",), 1, 12, "constant_values of np.pad must be "
                          "one number", "np.pad"),
})

# What rop *should* report but does not yet: NOT run (empty: every case found so far is fixed).
KNOWN_FAILING: dict = {
}


def _file_line(path, lineno):
    return linecache.getline(path, lineno).rstrip("\n")


def check_bad(case: Bad):
    anchor = case.anchor or case.fn
    path = inspect.getsourcefile(anchor)
    lineno = inspect.getsourcelines(anchor)[1] + case.line
    text = _file_line(path, lineno)
    # the table itself: the expected place is where the construct is
    assert text[case.col - 1:].startswith(case.at), (text, case.col, case.at)

    with pytest.raises(case.error) as info:
        f = rop(case.fn, wrt=case.wrt, mode="python")
        if case.args is not None:
            f.hvp.compile(*case.args)
    err = info.value
    shown = str(err)
    assert case.fragment in err.message, shown
    assert (err.filename, err.lineno, err.col) == (path, lineno, case.col), shown
    lines = shown.splitlines()
    assert lines[0].startswith(f"{path}:{lineno}:{case.col}: error: "), shown
    assert lines[1] == "    " + text.expandtabs(), shown            # the source line
    assert lines[2] == "    " + " " * (case.col - 1) + "^", shown   # the caret under it
    assert lines[3].startswith("hint: ") and len(lines[3]) > len("hint: ") + 10, shown
    assert err.hint and err.hint in shown


@pytest.mark.parametrize("case", list(SYNTAX_CASES.values()), ids=list(SYNTAX_CASES))
def test_bad_program_is_refused_at_its_place(case):
    check_bad(case)


def test_error_is_a_syntax_error_with_python_fields():
    with pytest.raises(SyntaxError) as info:  # RopSyntaxError is a SyntaxError
        rop(B.uses_lambda, wrt="W")
    err = info.value
    assert err.lineno == inspect.getsourcelines(B.uses_lambda)[1] + 1
    assert err.offset == 9 and "lambda" in err.text


def test_corpus_is_large_enough():
    assert len(SYNTAX_CASES) + len(KNOWN_FAILING) >= 30
    assert not set(SYNTAX_CASES) & set(KNOWN_FAILING)


# ----------------------------------------------------------------------------- decoration time

def test_wrt_name_that_is_not_a_parameter():
    with pytest.raises(RopCallError, match=r"wrt names `V`, which is not a parameter of "
                                           r"two_params\(W, b, x\)"):
        rop(B.two_params, wrt=("W", "V"))


# ----------------------------------------------------------------------------- call time

def _two():
    rng = np.random.default_rng(0)
    W, b, x = rng.standard_normal((3, 3)), rng.standard_normal(3), rng.standard_normal(3)
    V, c = rng.standard_normal((3, 3)), rng.standard_normal(3)
    return W, b, x, V, c


def _lists():
    rng = np.random.default_rng(1)
    Ws = [rng.standard_normal((3, 3)), rng.standard_normal((3, 3))]
    Vs = [rng.standard_normal((3, 3)), rng.standard_normal((3, 3))]
    b, c, x = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal(3)
    return Ws, b, x, Vs, c


def _call_two(W=None, b=None, x=None, v=None):
    W0, b0, x0, V, c = _two()
    f = rop(B.two_params, wrt=("W", "b"), mode="python")
    return f.hvp(W0 if W is None else W, b0 if b is None else b, x0 if x is None else x,
                 v=(V, c) if v is None else v)


def _call_lists(v):
    Ws, b, x, _, _ = _lists()
    f = rop(B.list_params, wrt=("Ws", "b"), mode="python")
    return f.hvp(Ws, b, x, v=v)


W_, b_, x_, V_, c_ = _two()
Ws_, _, _, Vs_, cl_ = _lists()

CALL_CASES = {
    "too_few_directions": (lambda: _call_two(v=(V_,)),
                           "v must hold one direction per wrt parameter ('W', 'b'), in that order; "
                           "got 1"),
    "too_many_directions": (lambda: _call_two(v=(V_, c_, c_)), "one direction per wrt parameter"),
    "v_not_a_sequence": (lambda: _call_two(v=V_), "one direction per wrt parameter"),
    "direction_wrong_shape": (lambda: _call_two(v=(np.ones((2, 3)), c_)),
                              "the direction for `W` has shape (2, 3), expected (3, 3)"),
    "direction_wrong_rank": (lambda: _call_two(v=(V_, np.ones((3, 1)))),
                             "the direction for `b` has shape (3, 1), expected (3,)"),
    "integer_parameter": (lambda: _call_two(W=np.ones((3, 3), dtype=np.int64)),
                          "parameter `W` has dtype int64; parameters differentiated by rop must "
                          "be floating point"),
    "nan_in_parameter": (lambda: _call_two(W=np.where(np.eye(3) > 0, np.nan, W_)),
                         "`W` or its direction contains NaN or Inf"),
    "inf_in_direction": (lambda: _call_two(v=(V_, np.array([1.0, np.inf, 0.0]))),
                         "`b` or its direction contains NaN or Inf"),
    "complex_direction": (lambda: _call_two(v=(V_ + 1j, c_)),
                          "the direction for `W` has dtype complex128; expected a real "
                          "floating-point array"),
    "bool_direction": (lambda: _call_two(v=(V_ > 0, c_)), "expected a real floating-point array"),
    "list_param_direction_too_short": (lambda: _call_lists(v=([Vs_[0]], cl_)),
                                       "the direction for `Ws` must be a list of 2 arrays"),
    "list_param_direction_not_a_list": (lambda: _call_lists(v=(Vs_[0], cl_)),
                                        "the direction for `Ws` must be a list of 2 arrays"),
    "list_param_layer_wrong_shape": (lambda: _call_lists(v=([Vs_[0], np.ones((3, 2))], cl_)),
                                     "the direction for `Ws[1]` has shape (3, 2), expected (3, 3)"),
    "missing_argument": (lambda: rop(B.two_params, wrt="W", mode="python").hvp(W_, b_, v=V_),
                         "two_params.hvp: missing a required argument: 'x'"),
    "hvp_source_before_compiling": (lambda: rop(B.two_params, wrt="W").hvp.source,
                                    "nothing compiled yet"),
}


@pytest.mark.parametrize("call,fragment", list(CALL_CASES.values()), ids=list(CALL_CASES))
def test_bad_call_is_refused(call, fragment):
    with pytest.raises(RopCallError) as info:
        call()
    assert fragment in str(info.value)
