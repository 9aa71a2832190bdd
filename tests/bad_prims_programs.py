"""Calls of issue 18's primitives with argument values rop cannot compile, for
tests/test_bad_programs.py (rop reads source with ``inspect``: the programs live in a real
file, undecorated).  Each is refused at its call with a hint."""
# flake8: noqa

import numpy as np


def einsum_ellipsis(A):
    return np.einsum("...ij->...ji", A)


def einsum_variable_subscripts(A, s):
    return 2.0 * np.einsum(s, A)


def einsum_operand_count(A, B):
    y = A + B
    return np.einsum("ij,jk->ik", y)


def var_dtype(x):
    return np.var(x, dtype=np.float32)


def concatenate_variable_axis(x, k):
    return np.concatenate((x, x), axis=k)


def astype_int(x):
    return x.astype(int) * x


def std_tuple_axes(x):
    return x.std(axis=(0, 1))


def cumsum_variable_axis(x, k):
    return np.cumsum(x, axis=k)


def pad_edge(x):
    x_pad = np.pad(x, ((0, 0), (1, 1)), mode='edge')
    return x_pad * x_pad


def pad_fill_pairs(x):
    return np.pad(x, 1, constant_values=(0.0, 1.0)) * 2.0
