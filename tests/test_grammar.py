"""Tests of the grammar of the accepted subset and of the syntax validator."""

from __future__ import annotations

import ast
import logging
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings, HealthCheck
from hypothesis import strategies as st

from rop.errors import RopSyntaxError
from rop.frontend import grammar as G
from rop.frontend.grammar import check_syntax

ROOT = Path(__file__).resolve().parent.parent
FIRST = 100  # the snippets pretend to start at line 100 of "model.py"


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


# ---------------------------------------------------------------------------
# Accepted programs
# ---------------------------------------------------------------------------

ACCEPTED = {
    "mlp_backprop": '''
        @rop(wrt=("W",))
        def mlp_loss_grad(W, b, x, y):
            """Loss and gradient of a tanh MLP (list of layers)."""
            L = len(W)
            hs = [None] * (L + 1)
            hs[0] = x
            for l in range(L):
                hs[l + 1] = np.tanh(W[l] @ hs[l] + b[l])
            r = hs[L] - y
            loss = 0.5 * np.sum(r ** 2)
            gW = [None] * L
            gb = [None] * L
            d = r
            for l in reversed(range(L)):
                d = d * (1.0 - hs[l + 1] ** 2)
                gW[l] = np.outer(d, hs[l])
                gb[l] = d
                d = W[l].T @ d
            return loss, gW, gb
    ''',
    "comprehensions_and_sequence_loops": '''
        def f(Ws, bs, x, hs):
            for W, b in zip(Ws, bs):
                x = np.tanh(W @ x + b)
            for i, (W, b) in enumerate(zip(Ws, bs)):
                x = x + i * b
            for h in reversed(hs):
                x = x * h
            sq = [np.sum(W ** 2) for W in Ws if W.ndim == 2]
            pairs = [a * b for a in hs for b in hs]
            ys = [(h if h.ndim else h * 2.0) for h in (x, -x)]
            return sum(np.sum(W) for W in Ws) + sum(sq), pairs, ys, sum(x for x in [1.0, 2.0])
    ''',
    "plain": '''
        def f(x):
            return x
    ''',
    "one_line_body": '''
        def f(x): return x * 2
    ''',
    "annotations_defaults": '''
        def f(x: np.ndarray, W: "np.ndarray", n: int = 3, eps=-1e-8, tag="a",
              flag=True, none=None, shape=(2, 3), neg=+1.5) -> float:
            return x
    ''',
    "decorator_plain_and_dotted": '''
        @rop
        @rop.compile(wrt=("W", "b"), mode="hvp")
        def f(W, b):
            return W
    ''',
    "appends": '''
        def f(x, n):
            ys = []
            for i in range(n):
                h = np.sin(x) * i
                ys.append(h)
            return ys
    ''',
    "indexing_forms": '''
        def f(x, i, j):
            a = x[i]
            b = x[i, j]
            c = x[:, None]
            d = x[1:5:2]
            e = x[::-1]
            g = x[..., 0]
            h = x[i][j] + x[:-1, 1:] + x[None, :, None]
            return a, b, c, d, e, g, h
    ''',
    "subscript_assignment": '''
        def f(x, i):
            x[i] = 0.0
            x[:, 0] = x[:, 1]
            x[i][i] = 1.0
            x[..., -1] = 2.0
            return x
    ''',
    "tuple_unpacking": '''
        def f(t):
            a, b = t
            (c, d) = t
            [e, g] = t
            h, (k, m) = t[0], (t[1], t[2])
            p, = t
            return a, b, c, d, e, g, h, k, m, p
    ''',
    "chained_assignment": '''
        def f(x):
            a = b = c = x * 2
            u, v = w = x
            return a + b + c
    ''',
    "augmented": '''
        def f(x, y, A):
            x += y
            x -= 1
            x *= 2.0
            x /= 3
            x //= 2
            x %= 7
            x **= 2
            y @= A
            A[0, :] += x
            return x
    ''',
    "annotated_assignment": '''
        def f(x):
            s: float = 0.0
            t: np.ndarray = np.zeros(3)
            return s
    ''',
    "while_and_or": '''
        def f(x, tol, maxit):
            it = 0
            while it < maxit and (np.abs(x) > tol or it == 0):
                x = x / 2
                it += 1
            return x
    ''',
    "if_elif_else": '''
        def f(x, mode):
            if mode == "relu":
                y = np.maximum(x, 0.0)
            elif mode == "tanh":
                y = np.tanh(x)
            elif mode is None or not mode:
                y = x
            else:
                y = -x
            return y
    ''',
    "conditional_expression": '''
        def f(x, a):
            y = x if a > 0 else -x
            z = 1.0 if a else 0.0 if x else 2.0
            return y * z
    ''',
    "docstrings_anywhere": '''
        def f(x):
            """Top docstring."""
            y = x
            "a note in the middle"
            for i in range(3):
                """Loop docstring."""
                y = y + 1
            return y
    ''',
    "comments_and_blank_lines": '''
        # leading comment
        def f(x):  # trailing
            # comment

            y = x  # after
                # oddly indented comment
            return y
        # trailing comment
    ''',
    "multiline_brackets": '''
        def f(x, W,
              b):
            y = np.dot(W,
                       x) + (b
                             * 2)
            z = [1,
                 2,  # comment inside
                 3]
            return f2(y,
                      z,
                      axis=0,)
    ''',
    "backslash_continuation": '''
        def f(x):
            y = x + \\
                1
            return y
    ''',
    "comparisons_chained": '''
        def f(x, a, b):
            c = a < x <= b
            d = a != b and a is not b and x not in b and x in a
            e = a >= b > x == 1
            return c, d, e
    ''',
    "bit_and_unary": '''
        def f(x, m, n):
            return (m | n) & ~m ^ n, -x, +x, -x ** 2
    ''',
    "literals": '''
        def f(x):
            a = None, True, False, ...
            b = (), (1,), [], [1, 2.5, 1e-3, .5, 1_000, 0x1F, 0o7, 0b1]
            c = "s" 'q' r"raw\\d" """long""" u"u"
            return a, b, c
    ''',
    "enumerate_zip_loops": '''
        def f(xs, ys):
            s = 0.0
            for i, (a, b) in enumerate(zip(xs, ys)):
                s += i * a * b
            for k in reversed(range(0, len(xs), 2)):
                if k > 3:
                    break
                else:
                    continue
            return s
    ''',
    "calls_with_keywords": '''
        def f(x):
            y = np.sum(x, axis=0, keepdims=True)
            print("loss", y, sep=" ")
            np.add.at(x, 0, 1.0)
            return np.linalg.norm(x, ord=2).item()
    ''',
    "semicolons_pass": '''
        def f(x):
            a = 1; b = 2;
            if a: pass
            return
    ''',
    "matmul_floordiv_mod": '''
        def f(A, B, n):
            return A @ B @ A.T, n // 2, n % 3, A.shape[0]
    ''',
    "unicode_and_soft_keywords": '''
        def f(λ, match, type, _):
            é = λ * 2
            return é + match + type + _
    ''',
    "return_tuple_and_nested_calls": '''
        def f(x):
            return g(h(x)[0], k=(1, 2))[1:], x
    ''',
}


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_accepted(name):
    text = src(ACCEPTED[name])
    check_syntax(text, "model.py", FIRST)
    # The ast walk that names refused constructs agrees with the grammar.
    tree = ast.parse(text)
    lines = (text if text.endswith("\n") else text + "\n").split("\n")
    assert G._Finder(text, lines, tree).collect() == []


def test_at_least_25_accepted():
    assert len(ACCEPTED) >= 25


def test_accepted_without_trailing_newline_and_crlf():
    check_syntax("def f(x):\n    return x", "m.py")
    check_syntax("def f(x):\r\n    y = x\r\n    return y\r\n", "m.py")


# ---------------------------------------------------------------------------
# Refused programs: (source, line within snippet, text at the caret, message)
# ---------------------------------------------------------------------------

REFUSED = {
    "lambda": ('''
        def f(x):
            g = lambda y: y * 2
            return g(x)
    ''', 2, "lambda", "`lambda` is not supported"),
    "class": ('''
        def f(x):
            class A:
                pass
            return x
    ''', 2, "class", "`class`"),
    "class_top": ('''
        class A:
            pass
    ''', 1, "class", "`class`"),
    "try": ('''
        def f(x):
            try:
                y = 1 / x
            except ZeroDivisionError:
                y = 0
            return y
    ''', 2, "try", "`try`/`except`"),
    "with": ('''
        def f(x):
            with np.errstate(all="ignore"):
                y = 1 / x
            return y
    ''', 2, "with", "`with`"),
    "yield": ('''
        def f(x):
            for i in range(3):
                yield x * i
    ''', 3, "yield", "generators"),
    "global": ('''
        def f(x):
            global counter
            return x
    ''', 2, "global", "`global`"),
    "nonlocal": ('''
        def f(x):
            nonlocal counter
            return x
    ''', 2, "nonlocal", "`nonlocal`"),
    "import": ('''
        def f(x):
            import numpy as np
            return np.sin(x)
    ''', 2, "import", "`import`"),
    "from_import": ('''
        def f(x):
            from numpy import sin
            return sin(x)
    ''', 2, "from", "`import`"),
    "dict_comprehension": ('''
        def f(xs):
            d = {i: x for i, x in enumerate(xs)}
            return d
    ''', 2, "{i:", "dict comprehensions"),
    "set_comprehension": ('''
        def f(xs):
            d = {x for x in xs}
            return d
    ''', 2, "{x for", "set comprehensions"),
    "nested_def": ('''
        def f(x):
            def g(y):
                return y + x
            return g(1)
    ''', 2, "def g", "nested function"),
    "nested_decorated_def": ('''
        def f(x):
            y = x

            @njit
            def g(y):
                return y
            return g(y)
    ''', 4, "@njit", "nested function"),
    "async_def": ('''
        async def f(x):
            return x
    ''', 1, "async", "`async`"),
    "await": ('''
        def f(x):
            y = await g(x)
            return y
    ''', 2, "await", "`await`"),
    "walrus": ('''
        def f(x):
            if (n := len(x)) > 3:
                return n
            return 0
    ''', 2, ":=", "`:=`"),
    "starred_call": ('''
        def f(x, args):
            return g(x, *args)
    ''', 2, "*args", "starred"),
    "starred_target": ('''
        def f(x):
            a, *rest = x
            return a
    ''', 2, "*rest", "starred"),
    "double_star_call": ('''
        def f(x, kw):
            return g(x, **kw)
    ''', 2, "**kw", "`**` argument unpacking"),
    "varargs_param": ('''
        def f(x, *args):
            return x
    ''', 1, "*args", "`*args`"),
    "kwargs_param": ('''
        def f(x, **kwargs):
            return x
    ''', 1, "**kwargs", "`**kwargs`"),
    "keyword_only_marker": ('''
        def f(x, *, eps=1e-8):
            return x
    ''', 1, "*, eps", "keyword-only"),
    "positional_only_marker": ('''
        def f(x, /, y):
            return x
    ''', 1, "/, y", "positional-only"),
    "non_constant_default": ('''
        def f(x, dtype=np.float64):
            return x
    ''', 1, "np.float64", "defaults must be constants"),
    "del": ('''
        def f(x):
            y = x
            del y
            return x
    ''', 3, "del", "`del`"),
    "set_literal": ('''
        def f(x):
            s = {1, 2}
            return x
    ''', 2, "{1", "set literals"),
    "bytes": ('''
        def f(x):
            tag = b"raw"
            return x
    ''', 2, 'b"raw"', "bytes"),
    "complex_literal": ('''
        def f(x):
            return x * 1j
    ''', 2, "1j", "complex"),
    "for_else": ('''
        def f(x):
            for i in range(3):
                x = x + i
            else:
                x = 0
            return x
    ''', 4, "else", "`else` on a loop"),
    "while_else": ('''
        def f(x):
            while x > 0:
                x = x - 1
            else:
                x = 1
            return x
    ''', 4, "else", "`else` on a loop"),
    "shift": ('''
        def f(n):
            return n << 2
    ''', 2, "<<", "bit shifts"),
    "bad_augop": ('''
        def f(m, n):
            m |= n
            return m
    ''', 2, "|=", "augmented assignment"),
    "chained_with_subscript": ('''
        def f(x):
            a = x[0] = 1.0
            return a
    ''', 2, "x[0] = 1", "chained assignment"),
    "annotation_without_value": ('''
        def f(x):
            y: float
            return x
    ''', 2, "y: float", "annotation without a value"),
    "expression_statement": ('''
        def f(x):
            x + 1
            return x
    ''', 2, "x + 1", "no effect"),
    "loop_target_subscript": ('''
        def f(x):
            for x[0] in range(3):
                pass
            return x
    ''', 2, "x[0]", "loop variables"),
    "match": ('''
        def f(x):
            match x:
                case 1:
                    return 0
            return x
    ''', 2, "match", "`match`"),
    "two_functions": ('''
        def f(x):
            return x

        def g(x):
            return x
    ''', 4, "def g", "only one function"),
    "not_a_function": ('''
        x = 1
    ''', 1, "x = 1", "expected a function definition"),
    "complex_decorator": ('''
        @registry[0]
        def f(x):
            return x
    ''', 1, "registry", "decorator"),
    "python_syntax_error": ('''
        def f(x):
            return x +
    ''', 2, "", "Python syntax error"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused(name):
    snippet, rel_line, at, message = REFUSED[name]
    text = src(snippet)
    lines = text.split("\n")
    line = lines[rel_line - 1]
    col = (line.index(at) + 1) if at else len(line.rstrip()) + 1
    with pytest.raises(RopSyntaxError) as info:
        check_syntax(text, "model.py", FIRST)
    err = info.value
    assert message in err.message, err.message
    assert err.lineno == FIRST + rel_line - 1, str(err)
    assert err.col == col, str(err)
    assert err.filename == "model.py"
    assert err.source_line == line
    assert err.hint
    shown = str(err)
    assert shown.startswith(f"model.py:{FIRST + rel_line - 1}:{col}: error: ")
    assert "    " + line.expandtabs() in shown.split("\n")
    assert "    " + " " * (col - 1) + "^" in shown.split("\n")
    assert "hint: " in shown
    # It is still a SyntaxError, as Python tools expect.
    assert isinstance(err, SyntaxError)
    # The grammar, not the ast walk, is what refused it.
    if "Python syntax error" not in message:
        assert G._parse_with_lark(text if text.endswith("\n") else text + "\n")


def test_at_least_20_refused():
    assert len(REFUSED) >= 20


def test_default_first_lineno_and_col_offset():
    text = "def f(x):\n    return lambda: x\n"
    with pytest.raises(RopSyntaxError) as info:
        check_syntax(text, "m.py")
    assert (info.value.lineno, info.value.col) == (2, 12)
    with pytest.raises(RopSyntaxError) as info:
        check_syntax(text, "m.py", 7, col_offset=4)
    err = info.value
    assert (err.lineno, err.col) == (8, 16)
    assert err.source_line == "        return lambda: x"
    assert str(err).split("\n")[2] == "    " + " " * 15 + "^"


def test_generic_grammar_error_when_no_construct_is_known():
    # Refused by the grammar, but no specific construct is known for it: the
    # grammar's own error is reported, with the tokens it expected.
    with pytest.raises(RopSyntaxError) as info:
        check_syntax("def f(x=-(1)):\n    pass\n", "m.py", 5)
    err = info.value
    assert (err.lineno, err.col) == (5, 10)
    assert "unexpected `(`" in err.message
    assert "a number" in err.hint


def test_parenthesised_statement():
    with pytest.raises(RopSyntaxError) as info:
        check_syntax("def f(x):\n    ('doc')\n", "m.py")
    assert (info.value.lineno, info.value.col) == (2, 5)
    assert "parenthesised" in info.value.message


def test_non_ascii_columns():
    text = "def f(λ):\n    é = {λ, 1}\n"  # a set literal, refused
    with pytest.raises(RopSyntaxError) as info:
        check_syntax(text, "m.py")
    assert (info.value.lineno, info.value.col) == (2, 9)


def test_non_string_source():
    with pytest.raises(RopSyntaxError):
        check_syntax(None, "m.py")  # type: ignore[arg-type]


def test_deeply_nested_source():
    text = "def f(x):\n    y = " + "+".join(["x"] * 20000) + " + {1}\n"
    with pytest.raises(RopSyntaxError):
        check_syntax(text, "m.py")


# ---------------------------------------------------------------------------
# The grammar files
# ---------------------------------------------------------------------------

def test_grammar_copies_identical():
    master = ROOT / "grammar" / "rop.lark"
    shipped = ROOT / "rop" / "grammar" / "rop.lark"
    assert master.read_bytes() == shipped.read_bytes()
    assert G.GRAMMAR_PATH.resolve() == shipped.resolve()


def test_grammar_is_lalr_without_conflicts(caplog):
    from lark import Lark, logger as lark_logger
    from lark.indenter import PythonIndenter

    old = lark_logger.level
    lark_logger.setLevel(logging.DEBUG)
    records = []

    class Grab(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Grab()
    lark_logger.addHandler(handler)
    try:
        Lark(G.GRAMMAR_PATH.read_text(encoding="utf-8"), parser="lalr",
             postlex=PythonIndenter(), debug=True)
    finally:
        lark_logger.removeHandler(handler)
        lark_logger.setLevel(old)
    assert not [r for r in records if "conflict" in r.lower()], records


def test_parser_is_cached():
    assert G.get_parser() is G.get_parser()


# ---------------------------------------------------------------------------
# Robustness: nothing but RopSyntaxError ever escapes
# ---------------------------------------------------------------------------

@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_garbage_only_raises_rop_syntax_error(text):
    try:
        check_syntax(text, "garbage.py", 3)
    except RopSyntaxError as err:
        assert str(err).startswith("garbage.py:")
        assert err.lineno >= 3 and err.col >= 1


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(ACCEPTED)), st.integers(0, 400), st.text(max_size=5))
def test_mutated_programs_only_raise_rop_syntax_error(name, where, junk):
    text = src(ACCEPTED[name])
    where %= len(text) + 1
    mutated = text[:where] + junk + text[where:]
    try:
        check_syntax(mutated, "mut.py")
    except RopSyntaxError as err:
        assert err.col >= 1 and err.lineno >= 1
