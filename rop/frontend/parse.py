"""Reading a function's source: ``inspect`` + the grammar check + ``ast``."""

from __future__ import annotations

import ast
import inspect
import textwrap
from functools import lru_cache

from ..errors import RopSyntaxError


def source_of(fn) -> tuple[str, str, int]:
    """(dedented source, filename, first line number) of a function (see ``indent_of``)."""
    try:
        lines, first = inspect.getsourcelines(fn)
    except (OSError, TypeError) as exc:
        raise RopSyntaxError(f"cannot read the source of {getattr(fn, '__name__', fn)!r}: {exc}",
                             getattr(getattr(fn, '__code__', None), 'co_filename', '<unknown>'), 0, 0,
                             hint="rop reads the function's source file; define it in a .py file") from None
    return textwrap.dedent("".join(lines)), inspect.getsourcefile(fn) or "<unknown>", first


def indent_of(fn) -> int:
    """Columns ``textwrap.dedent`` removed from a nested function's source."""
    try:
        lines, _ = inspect.getsourcelines(fn)
    except (OSError, TypeError):
        return 0
    first = next((ln for ln in lines if ln.strip()), "")
    return len(first) - len(first.lstrip())


def parse_function(fn):
    """(FunctionDef ast, filename, first line, source lines) of ``fn``, checked against the grammar."""
    src, filename, first = source_of(fn)
    return _parse(src, filename, first, indent_of(fn))


@lru_cache(maxsize=256)
def _parse(src: str, filename: str, first: int, col0: int = 0):
    from .grammar import check_syntax
    check_syntax(src, filename, first, col_offset=col0)
    try:
        mod = ast.parse(src)
    except SyntaxError as exc:  # the grammar accepted something Python does not: report it anyway
        raise RopSyntaxError(exc.msg, filename, (exc.lineno or 1) + first - 1, exc.offset or 0,
                             exc.text or "") from None
    fdefs = [n for n in mod.body if isinstance(n, ast.FunctionDef)]
    if len(fdefs) != 1:
        raise RopSyntaxError("expected one function definition", filename, first, 1,
                             src.splitlines()[0] if src else "")
    return fdefs[0], filename, first, src.splitlines()
