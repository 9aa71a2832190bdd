"""Syntactic validation of a user function against ``grammar/rop.lark``.

The Lark grammar is the authority: a function is accepted iff the grammar
parses its source.  When it does not, the source is also walked with Python's
:mod:`ast` to find the refused construct at (or just before) the place where
the grammar stopped, so that the diagnostic names the construct (``lambda``,
a dict comprehension, ``try`` ...) and says what to write instead.  If the walk
finds nothing, the grammar's own error ("unexpected ...") is reported.

Every failure, including a real Python syntax error or a bug in this module,
is raised as :class:`rop.errors.RopSyntaxError`; nothing else escapes
:func:`check_syntax`.

Usage, from the function object ``fn``::

    lines, first_lineno = inspect.getsourcelines(fn)
    source = textwrap.dedent("".join(lines))
    check_syntax(source, inspect.getsourcefile(fn) or "<unknown>", first_lineno)

Line numbers in the error are then line numbers of the user's file.
"""

from __future__ import annotations

import ast
import functools
import io
import keyword
import re
import threading
import tokenize
import warnings
from pathlib import Path
from typing import NamedTuple

from rop.errors import RopSyntaxError

__all__ = ["check_syntax", "GRAMMAR_PATH", "get_parser", "REFUSED"]

#: The grammar shipped inside the package (an identical copy of the master
#: ``grammar/rop.lark`` at the repository root).
GRAMMAR_PATH = Path(__file__).resolve().parent.parent / "grammar" / "rop.lark"

_SEE_README = "see grammar/README.md for the accepted subset of Python"

# kind -> (message, hint).  The same table is rendered in grammar/README.md.
REFUSED: dict[str, tuple[str, str]] = {
    "lambda": ("`lambda` is not supported",
               "write the expression inline; rop compiles one plain function "
               "without closures"),
    "class": ("`class` definitions are not supported",
              "keep classes outside the compiled function and pass arrays as "
              "arguments"),
    "try": ("`try`/`except` is not supported",
            "compiled functions cannot raise or catch exceptions; test the "
            "condition with `if` instead"),
    "with": ("`with` statements are not supported",
             "move the context manager outside the compiled function"),
    "yield": ("generators (`yield`) are not supported",
              "collect the values in a list (`ys.append(y)`) and return it"),
    "global": ("`global` is not supported",
               "pass the value as a parameter and return the new value"),
    "nonlocal": ("`nonlocal` is not supported",
                 "pass the value as a parameter and return the new value"),
    "import": ("`import` inside the function is not supported",
               "import at module level (e.g. `import numpy as np`)"),
    "dictcomp": ("dict comprehensions are not supported",
                 "use separate variables or lists, filled in a `for` loop"),
    "setcomp": ("set comprehensions are not supported",
                "use a `for` loop that appends to a list"),
    "nested_def": ("nested function definitions (closures) are not supported",
                   "define the helper at module level or write its body inline"),
    "async": ("`async` is not supported",
              "write a plain synchronous `def` function"),
    "await": ("`await` is not supported",
              "write a plain synchronous `def` function"),
    "walrus": ("assignment expressions (`:=`) are not supported",
               "assign the value in a separate statement first"),
    "starred": ("starred expressions (`*x`) are not supported",
                "write the elements or arguments out explicitly"),
    "kwargs_unpack": ("`**` argument unpacking is not supported",
                      "pass keyword arguments explicitly: `f(a, k=v)`"),
    "vararg": ("`*args` parameters are not supported",
               "declare every parameter by name"),
    "kwarg": ("`**kwargs` parameters are not supported",
              "declare every parameter by name"),
    "kwonly": ("keyword-only parameters (`*` marker) are not supported",
               "declare plain parameters: `def f(x, W, eps=1e-8):`"),
    "posonly": ("positional-only parameters (`/` marker) are not supported",
                "declare plain parameters: `def f(x, W, eps=1e-8):`"),
    "default": ("parameter defaults must be constants",
                "use a number, a string, True/False/None or a tuple of them"),
    "decorator": ("unsupported decorator form",
                  "decorators must be `@name`, `@module.name` or `@name(args)`"),
    "del": ("`del` is not supported",
            "just stop using the name, or rebind it"),
    "match": ("`match` statements are not supported",
              "use `if`/`elif`/`else`"),
    "set": ("set literals are not supported",
            "use a tuple or a list"),
    "bytes": ("bytes literals are not supported",
              "use a plain string"),
    "complex": ("complex (imaginary) literals are not supported",
                "rop works on real-valued arrays"),
    "shift": ("bit shifts (`<<`, `>>`) are not supported",
              "use multiplication or floor division by a power of two"),
    "augop": ("this augmented assignment operator is not supported",
              "supported: += -= *= /= @= //= %= **=; otherwise write "
              "`x = x | y` in full"),
    "loop_else": ("`else` on a loop is not supported",
                  "set a flag before `break` and test it after the loop"),
    "loop_target": ("loop variables must be names or tuples of names",
                    "e.g. `for i in range(n):` or `for i in reversed(range(n)):`"),
    "attr_target": ("assignment to an attribute is not supported",
                    "assign to a local name or to an array element "
                    "`x[i] = ...`"),
    "subscript_target": ("a subscript assignment must start with a name",
                         "write `x[i] = ...` where `x` is a name"),
    "empty_target": ("assignment to an empty tuple or list is not supported",
                     "assign to names"),
    "chained": ("in a chained assignment only the first target may be a "
                "tuple or a subscript",
                "split it into separate assignments"),
    "ann_target": ("an annotated assignment must assign to a plain name",
                   "write `x: float = 0.0`"),
    "ann_no_value": ("an annotation without a value is not supported",
                     "give an initial value: `x: float = 0.0`"),
    "no_effect": ("this expression statement has no effect",
                  "only calls (e.g. `ys.append(h)`) and docstrings can stand "
                  "alone; assign the value to a name, or use `pass`"),
    "call_stmt": ("a call statement must start with a name",
                  "write `name(...)` or `obj.method(...)`"),
    "paren_stmt": ("a statement cannot start with a parenthesised expression",
                   "drop the outer parentheses"),
    "no_def": ("expected a function definition",
               "pass the source of a single `def` function"),
    "extra_stmt": ("only one function definition can be compiled at a time",
                   "compile each function separately"),
}

# Keywords the grammar never accepts, for the fallback message when the walk
# over the ast found nothing (kept in sync with REFUSED).
_KEYWORD_KIND = {
    "lambda": "lambda", "class": "class", "try": "try", "except": "try",
    "finally": "try", "with": "with", "yield": "yield", "global": "global",
    "nonlocal": "nonlocal", "import": "import", "from": "import",
    "del": "del", "async": "async",
    "await": "await", "def": "nested_def",
}

_AUG_OK = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.MatMult, ast.FloorDiv,
           ast.Mod, ast.Pow)
_AUG_TEXT = {ast.BitOr: "|=", ast.BitAnd: "&=", ast.BitXor: "^=",
             ast.LShift: "<<=", ast.RShift: ">>="}

_SIMPLE = {
    ast.Lambda: "lambda", ast.DictComp: "dictcomp",
    ast.SetComp: "setcomp", ast.Await: "await",
    ast.Yield: "yield", ast.YieldFrom: "yield", ast.Starred: "starred",
    ast.Set: "set", ast.Try: "try", ast.With: "with",
    ast.AsyncWith: "async", ast.AsyncFor: "async", ast.Global: "global",
    ast.Nonlocal: "nonlocal", ast.Import: "import", ast.ImportFrom: "import",
    ast.Delete: "del",
}
if hasattr(ast, "TryStar"):
    _SIMPLE[ast.TryStar] = "try"
if hasattr(ast, "Match"):
    _SIMPLE[ast.Match] = "match"

_LOCK = threading.Lock()


# --------------------------------------------------------------------------
# The parser
# --------------------------------------------------------------------------

def _lark_cache_path():
    """Lark caches its LALR tables keyed by the grammar's hash: a fresh process loads them in
    milliseconds instead of building them (about a second)."""
    import os
    try:
        from ..backend.loader import cache_dir
        return os.path.join(cache_dir(), "grammar.lark.cache")
    except OSError:
        return False


@functools.lru_cache(maxsize=1)
def get_parser():
    """The LALR parser of ``rop.lark``, built once."""
    from lark import Lark
    from lark.indenter import PythonIndenter

    return Lark(GRAMMAR_PATH.read_text(encoding="utf-8"), parser="lalr", cache=_lark_cache_path(),
                postlex=PythonIndenter(), start="start",
                maybe_placeholders=False)


class _Failure(NamedTuple):
    line: int | None      # 1-based; None when the parser gave no position
    col: int | None       # 1-based
    message: str
    hint: str


def _describe_terminal(name: str) -> str:
    special = {
        "NAME": "a name", "STRING": "a string", "LONG_STRING": "a string",
        "DEC_NUMBER": "a number", "HEX_NUMBER": "a number",
        "OCT_NUMBER": "a number", "BIN_NUMBER": "a number",
        "FLOAT_NUMBER": "a number", "_NEWLINE": "end of line",
        "_INDENT": "an indented block", "_DEDENT": "end of block",
        "$END": "end of input",
    }
    if name in special:
        return special[name]
    try:
        pattern = get_parser().get_terminal(name).pattern
        if pattern.type == "str":
            return f"`{pattern.value}`"
    except Exception:
        pass
    return name


def _expected_hint(expected) -> str:
    names = sorted({_describe_terminal(n) for n in (expected or ())})
    if not names:
        return _SEE_README
    if len(names) > 12:
        names = names[:12] + ["..."]
    return "expected " + ", ".join(names) + "; " + _SEE_README


def _parse_with_lark(text: str) -> _Failure | None:
    """None if the grammar accepts ``text``, else where and why it failed."""
    from lark.exceptions import (LarkError, UnexpectedCharacters,
                                 UnexpectedEOF, UnexpectedToken)

    parser = get_parser()
    with _LOCK:
        try:
            parser.parse(text)
            return None
        except UnexpectedToken as e:
            tok = e.token
            kind = tok.type
            if kind == "$END":
                msg = "unexpected end of the function"
            elif kind == "_NEWLINE":
                msg = "unexpected end of line"
            elif kind == "_INDENT":
                msg = "unexpected indentation"
            elif kind == "_DEDENT":
                msg = "unexpected end of block"
            elif str(tok.value) in _KEYWORD_KIND:
                return _Failure(e.line, e.column,
                                *REFUSED[_KEYWORD_KIND[str(tok.value)]])
            else:
                msg = f"unexpected `{tok.value}`"
            line = e.line if isinstance(e.line, int) and e.line > 0 else None
            col = e.column if isinstance(e.column, int) and e.column > 0 else None
            return _Failure(line, col, msg, _expected_hint(e.expected))
        except UnexpectedCharacters as e:
            rest = text[e.pos_in_stream:]
            word = re.match(r"\w+", rest)
            if word and word.group(0) in _KEYWORD_KIND:
                return _Failure(e.line, e.column,
                                *REFUSED[_KEYWORD_KIND[word.group(0)]])
            if word and keyword.iskeyword(word.group(0)):
                msg = f"`{word.group(0)}` is not allowed here"
            else:
                msg = f"unexpected character `{rest[:1]}`"
            return _Failure(e.line, e.column, msg, _expected_hint(e.allowed))
        except UnexpectedEOF as e:
            return _Failure(None, None, "unexpected end of the function",
                            _expected_hint(e.expected))
        except (LarkError, AssertionError) as e:  # e.g. the indenter's checks
            return _Failure(None, None, f"cannot parse this function ({e})",
                            _SEE_README)


# --------------------------------------------------------------------------
# Locating refused constructs on the ast
# --------------------------------------------------------------------------

class _Refusal(NamedTuple):
    line: int   # 1-based
    col: int    # 1-based, in characters
    kind: str


class _Finder:
    """Collects every refused construct of the source, in pre-order."""

    def __init__(self, text: str, lines: list[str], tree: ast.Module):
        self.text = text
        self.lines = lines
        self.tree = tree
        self.found: list[_Refusal] = []
        self._tokens = None

    # -- positions ---------------------------------------------------------

    def _char_col(self, lineno: int, byte_col: int) -> int:
        if 1 <= lineno <= len(self.lines):
            raw = self.lines[lineno - 1].encode("utf-8")[:byte_col]
            return len(raw.decode("utf-8", errors="ignore"))
        return byte_col

    def pos(self, node) -> tuple[int, int]:
        return (node.lineno, self._char_col(node.lineno, node.col_offset) + 1)

    def end(self, node) -> tuple[int, int]:
        line = getattr(node, "end_lineno", None) or node.lineno
        col = getattr(node, "end_col_offset", None)
        if col is None:
            return self.pos(node)
        return (line, self._char_col(line, col) + 1)

    def tokens(self):
        if self._tokens is None:
            try:
                self._tokens = [
                    (t.string, (t.start[0], t.start[1] + 1))
                    for t in tokenize.generate_tokens(io.StringIO(self.text).readline)
                ]
            except Exception:
                self._tokens = []
        return self._tokens

    def find(self, strings, after, before=None, last=False, default=None):
        """Position of the first (or last) token in ``strings`` in
        ``[after, before)``; ``default`` if there is none."""
        hit = None
        for s, p in self.tokens():
            if p < after or (before is not None and p >= before):
                continue
            if s in strings:
                hit = p
                if not last:
                    break
        return hit if hit is not None else default

    def add(self, where: tuple[int, int], kind: str) -> None:
        self.found.append(_Refusal(where[0], where[1], kind))

    def start_with_decorators(self, node) -> tuple[int, int]:
        if getattr(node, "decorator_list", None):
            first = self.pos(node.decorator_list[0])
            return self.find({"@"}, (first[0], 1), first, last=True, default=first)
        return self.pos(node)

    # -- structure ---------------------------------------------------------

    def collect(self) -> list[_Refusal]:
        body = self.tree.body
        if not body:
            self.add((1, 1), "no_def")
            return self.found
        first = body[0]
        if isinstance(first, ast.FunctionDef):
            self.outer_def(first)
        else:
            if isinstance(first, ast.AsyncFunctionDef):
                self.add(self.pos(first), "async")
            elif isinstance(first, ast.ClassDef):
                self.add(self.start_with_decorators(first), "class")
            else:
                self.add(self.pos(first), "no_def")
                self.visit(first)
        for extra in body[1:]:
            self.add(self.start_with_decorators(extra), "extra_stmt")
        return self.found

    def outer_def(self, fn: ast.FunctionDef) -> None:
        for dec in fn.decorator_list:
            if not (_dotted(dec) or (isinstance(dec, ast.Call) and _dotted(dec.func))):
                self.add(self.pos(dec), "decorator")
            self.visit(dec)
        a = fn.args
        header_end = self.pos(fn.body[0])
        if a.posonlyargs:
            where = self.end(a.posonlyargs[-1])
            self.add(self.find({"/"}, where, header_end, default=where), "posonly")
        if a.vararg is not None:
            where = self.pos(a.vararg)
            self.add(self.find({"*"}, self.pos(fn), where, last=True, default=where),
                     "vararg")
        elif a.kwonlyargs:
            where = self.pos(a.kwonlyargs[0])
            self.add(self.find({"*"}, self.pos(fn), where, last=True, default=where),
                     "kwonly")
        if a.kwarg is not None:
            where = self.pos(a.kwarg)
            self.add(self.find({"**"}, self.pos(fn), where, last=True, default=where),
                     "kwarg")
        params = a.posonlyargs + a.args + ([a.vararg] if a.vararg else []) \
            + a.kwonlyargs + ([a.kwarg] if a.kwarg else [])
        for p in params:
            if p.annotation is not None:
                self.visit(p.annotation)
        for d in list(a.defaults) + [d for d in a.kw_defaults if d is not None]:
            if not _is_constant(d):
                self.add(self.pos(d), "default")
            self.visit(d)
        if fn.returns is not None:
            self.visit(fn.returns)
        for stmt in fn.body:
            self.visit(stmt)

    def visit(self, root) -> None:
        """Pre-order walk (iterative: deep expressions must not recurse)."""
        stack = [root]
        while stack:
            node = stack.pop()
            if self.check(node) is False:
                continue
            children = list(ast.iter_child_nodes(node))
            stack.extend(reversed(children))

    # -- the checks; returning False stops the walk below the node ----------

    def check(self, node):
        n = node
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self.add(self.start_with_decorators(n),
                     "async" if isinstance(n, ast.AsyncFunctionDef) else "nested_def")
            return False
        if isinstance(n, ast.ClassDef):
            self.add(self.start_with_decorators(n), "class")
            return False
        kind = _SIMPLE.get(type(n))
        if kind is not None:
            self.add(self.pos(n), kind)
            return None
        if isinstance(n, ast.Constant):
            if isinstance(n.value, bytes):
                self.add(self.pos(n), "bytes")
            elif isinstance(n.value, complex):
                self.add(self.pos(n), "complex")
            return None
        if isinstance(n, ast.NamedExpr):
            where = self.end(n.target)
            self.add(self.find({":="}, where, self.pos(n.value), default=self.pos(n)),
                     "walrus")
            return None
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.LShift, ast.RShift)):
            self.add(self.find({"<<", ">>"}, self.end(n.left), self.pos(n.right),
                               default=self.pos(n)), "shift")
            return None
        if isinstance(n, ast.Call):
            for kw in n.keywords:
                if kw.arg is None:
                    self.add(self.pos(kw), "kwargs_unpack")
            return None
        if isinstance(n, (ast.For, ast.While)):
            if isinstance(n, ast.For):
                self.loop_target(n.target)
            if n.orelse:
                where = self.pos(n.orelse[0])
                self.add(self.find({"else"}, self.end(n.body[-1]), where, last=True,
                                   default=where), "loop_else")
            return None
        if isinstance(n, ast.Assign):
            self.target(n.targets[0])
            for t in n.targets[1:]:
                if not isinstance(t, ast.Name):
                    self.add(self.pos(t), "chained")
            return None
        if isinstance(n, ast.AugAssign):
            if not isinstance(n.op, _AUG_OK):
                text = _AUG_TEXT.get(type(n.op), "")
                self.add(self.find({text}, self.end(n.target), self.pos(n.value),
                                   default=self.pos(n)), "augop")
            self.target(n.target)
            return None
        if isinstance(n, ast.AnnAssign):
            if not (n.simple and isinstance(n.target, ast.Name)):
                self.add(self.pos(n), "ann_target")
            if n.value is None:
                self.add(self.pos(n), "ann_no_value")
            return None
        if isinstance(n, ast.Expr):
            v = n.value
            if self.pos(n) != self.pos(v):
                self.add(self.pos(n), "paren_stmt")
            elif isinstance(v, ast.Constant) and isinstance(v.value, str):
                pass
            elif isinstance(v, ast.Call):
                if not self.name_chain(v.func):
                    self.add(self.pos(n), "call_stmt")
            else:
                self.add(self.pos(n), "no_effect")
            return None
        return None

    def name_chain(self, e) -> bool:
        """``a``, ``a.b``, ``a[i].c(x)``, ... without parentheses around parts."""
        while True:
            if isinstance(e, ast.Name):
                return True
            if isinstance(e, (ast.Attribute, ast.Subscript)):
                inner = e.value
            elif isinstance(e, ast.Call):
                inner = e.func
            else:
                return False
            if self.pos(inner) != self.pos(e):
                return False  # parenthesised part: `(a).b`
            e = inner

    def target(self, t) -> None:
        if isinstance(t, ast.Name) or isinstance(t, ast.Starred):
            return  # starred targets are reported by the generic walk
        if isinstance(t, ast.Subscript):
            if not self.name_chain(t.value):
                self.add(self.pos(t), "subscript_target")
        elif isinstance(t, ast.Attribute):
            self.add(self.pos(t), "attr_target")
        elif isinstance(t, (ast.Tuple, ast.List)):
            if not t.elts:
                self.add(self.pos(t), "empty_target")
            for e in t.elts:
                self.target(e)
        else:
            self.add(self.pos(t), "attr_target")

    def loop_target(self, t) -> None:
        if isinstance(t, ast.Name) or isinstance(t, ast.Starred):
            return
        if isinstance(t, (ast.Tuple, ast.List)) and t.elts:
            for e in t.elts:
                self.loop_target(e)
        else:
            self.add(self.pos(t), "loop_target")


def _dotted(e) -> bool:
    while isinstance(e, ast.Attribute):
        e = e.value
    return isinstance(e, ast.Name)


def _is_constant(e) -> bool:
    if isinstance(e, ast.Constant):
        return e.value is None or isinstance(e.value, (bool, int, float, str))
    if isinstance(e, ast.UnaryOp) and isinstance(e.op, (ast.UAdd, ast.USub)):
        v = e.operand
        return (isinstance(v, ast.Constant) and isinstance(v.value, (int, float))
                and not isinstance(v.value, bool))
    if isinstance(e, ast.Tuple):
        return all(_is_constant(x) for x in e.elts)
    return False


# --------------------------------------------------------------------------
# The entry point
# --------------------------------------------------------------------------

def check_syntax(source: str, filename: str, first_lineno: int = 1, *,
                 col_offset: int = 0) -> None:
    """Check that ``source`` is in the accepted subset of Python.

    ``source`` is the dedented source of ONE function definition (decorators
    allowed), as returned by ``textwrap.dedent(inspect.getsource(fn))``.
    ``first_lineno`` is the line of the user's file where ``source`` starts
    (``inspect.getsourcelines(fn)[1]``); reported line numbers are shifted by
    ``first_lineno - 1``.  ``col_offset`` is the indentation removed by the
    dedent (0 for a module-level function); it is added to reported columns.

    Returns None if the source is accepted; otherwise raises
    :class:`RopSyntaxError` pointing at the offending construct.
    """
    try:
        first_lineno = int(first_lineno) if first_lineno is not None else 1
    except Exception:
        first_lineno = 1
    try:
        col_offset = max(int(col_offset or 0), 0)
    except Exception:
        col_offset = 0
    filename = str(filename) if filename is not None else "<unknown>"
    try:
        _check(source, filename, first_lineno, col_offset)
    except RopSyntaxError:
        raise
    except Exception as exc:  # a bug here must still surface as a diagnostic
        raise RopSyntaxError(
            f"rop could not check the syntax of this function "
            f"({type(exc).__name__}: {exc})", filename, first_lineno,
            1 + col_offset, "", "this is a bug in rop; please report it") from exc


def _check(source: str, filename: str, first_lineno: int, col_offset: int) -> None:
    if not isinstance(source, str):
        raise RopSyntaxError(f"expected the source text of a function, got "
                             f"{type(source).__name__}", filename, first_lineno,
                             1 + col_offset, "", REFUSED["no_def"][1])
    text = source.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    lines = text.split("\n")

    def error(message: str, line: int | None, col: int | None, hint: str):
        if line is None or line < 1:
            line = max(len(lines) - 1, 1)
        line = min(line, max(len(lines) - 1, 1))
        src = lines[line - 1] if line - 1 < len(lines) else ""
        if col is None or col < 1:
            col = 1
        col = min(col, len(src) + 1)
        shown = (" " * col_offset + src) if src else ""
        return RopSyntaxError(message, filename, line + first_lineno - 1,
                              col + col_offset, shown, hint)

    # 1. Real Python syntax errors, reported where Python sees them.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning, DeprecationWarning
            tree = ast.parse(text, filename=filename)
    except SyntaxError as e:
        kind = "indentation error" if isinstance(e, IndentationError) else "syntax error"
        raise error(f"Python {kind}: {e.msg}", e.lineno, e.offset,
                    "this is not valid Python; fix it first") from None
    except (RecursionError, MemoryError):
        raise error("this function is nested too deeply for Python's parser", 1, 1,
                    "split long or deeply nested expressions into several "
                    "statements") from None
    except Exception as e:  # ValueError (null bytes), ...
        raise error(f"invalid Python source: {e}", 1, 1,
                    "this is not valid Python; fix it first") from None

    # 2. The grammar of the subset decides.
    failure = _parse_with_lark(text)
    if failure is None:
        return

    # 3. Name the refused construct the grammar stopped at, if the ast shows
    #    one starting at or before that point (the innermost / latest one).
    limit = ((failure.line, failure.col) if failure.line is not None
             and failure.col is not None else None)
    best = None
    for r in _Finder(text, lines, tree).collect():
        if limit is not None and (r.line, r.col) > limit:
            continue
        if best is None or (r.line, r.col) >= (best.line, best.col):
            best = r
    if best is not None:
        message, hint = REFUSED[best.kind]
        raise error(message, best.line, best.col, hint)
    raise error(failure.message, failure.line, failure.col, failure.hint)
