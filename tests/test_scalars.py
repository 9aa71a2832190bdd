"""Which names the lowering may treat as plain numbers (rop/frontend/scalars.py): only those
that are numbers at every assignment, so that `j -= 1` on a counter is accepted while an
in-place update of an array with two names stays refused."""

import ast
import textwrap

from rop.frontend.scalars import surely_scalars


def names(src):
    return surely_scalars(ast.parse(textwrap.dedent(src)).body[0])


def test_counters_sizes_and_their_arithmetic_are_numbers():
    got = names("""
        def f(W, x, n):
            L = len(W)
            j = L
            b = x.shape[1]
            s = 0.0
            for i in range(L):
                s = s + i
            k = (L - 1) // 2 if L > 2 else 0
            j -= 1
            c = float(x.sum()) + x.ndim
            return s
        """)
    assert got == {"L", "j", "b", "s", "i", "k", "c"}


def test_one_array_assignment_anywhere_makes_a_name_unknown():
    got = names("""
        def f(W, x, n):
            a = 0.0
            if n > 1:
                a = x * 2.0
            b = a
            m = n
            u, v = 1, 2
            t = x.shape
            for r in reversed(range(3)):
                pass
            return a
        """)
    # a: an array on one path; b: a copy of it; m: a parameter (may be an array);
    # u, v: unpacked (not followed); t: a tuple; r: a range counter
    assert got == {"r"}


def test_a_chain_through_an_unknown_name_is_unknown():
    got = names("""
        def f(x):
            a = 1
            b = a + c
            c = x
            d = b
            return d
        """)
    assert got == {"a"}
