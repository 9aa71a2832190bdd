"""The errors a user of rop can see.

Every failure the compiler reports about *user code* is a :class:`RopSyntaxError`
pointing at the offending line and column, showing that line with a caret and
saying what is supported instead.  Every failure about a *call* (shapes, the
direction ``v``, non-finite inputs) is a :class:`RopCallError`.  Anything else
escaping the compiler is a bug in rop, reported as :class:`RopInternalError`
with a request to file it, never as a bare traceback.
"""

from __future__ import annotations


class RopError(Exception):
    """Base class of every error rop raises on purpose."""


class RopSyntaxError(RopError, SyntaxError):
    """User code outside the accepted subset (see ``grammar/README.md``).

    Formatted like a compiler diagnostic::

        mlp.py:12:9: error: no R-rule for numpy.linalg.eigh
            y = np.linalg.eigh(A)
                ^
        hint: supported NumPy functions are listed in docs/rules.md
    """

    def __init__(self, message: str, filename: str = "<unknown>", lineno: int = 0,
                 col: int = 0, source_line: str = "", hint: str = ""):
        self.message = message
        self.filename = filename
        self.lineno = lineno
        self.col = col  # 1-based column, as compilers print it
        self.source_line = source_line.rstrip("\n")
        self.hint = hint
        SyntaxError.__init__(self, message, (filename, lineno, col, self.source_line))
        # SyntaxError.__init__ overwrites these through its args; restore ours.
        self.msg = message
        self.offset = col
        self.text = self.source_line

    def __str__(self) -> str:
        out = [f"{self.filename}:{self.lineno}:{self.col}: error: {self.message}"]
        if self.source_line:
            stripped = self.source_line.expandtabs()
            out.append("    " + stripped)
            out.append("    " + " " * max(self.col - 1, 0) + "^")
        if self.hint:
            out.append(f"hint: {self.hint}")
        return "\n".join(out)


class RopCallError(RopError, ValueError):
    """A call to a compiled function with arguments that do not fit it."""


class RopConvergenceError(RopError, RuntimeError):
    """A relaxation loop hit its iteration cap without converging."""


class RopConvergenceWarning(RuntimeWarning):
    """A relaxation loop hit its iteration cap; the last iterate was returned."""


class RopInternalError(RopError, RuntimeError):
    """A bug in rop itself; the message says where and asks for a report."""


# Signals raised by the generated code's first lines (rt.check_direction, rt.check_length) and
# turned by the wrapper into a RopCallError naming the parameter.  Here rather than in
# rop.runtime so that the wrapper can catch them without importing Numba.

class NonFinite(FloatingPointError):
    """NaN/Inf in parameter number ``args[0]`` of ``wrt`` or in its direction."""


class BadDirection(ValueError):
    """The direction for parameter number ``args[0]`` of ``wrt`` is not shaped like it (another
    shape, or a list of another length); the wrapper's checked path says what was expected."""
