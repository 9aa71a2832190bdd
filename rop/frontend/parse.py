"""Reading a function's source: ``inspect`` + the grammar check + ``ast``."""

from __future__ import annotations

import ast
from functools import lru_cache

from ..errors import RopSyntaxError
from .lower import indent_of, source_of


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
