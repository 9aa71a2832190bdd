"""The user's own checks in the generated code: ``assert`` and ``raise ValueError(...)``.

The generated code raises ``rt.ValueError('...')``: a subclass of Python's ``ValueError``
(so ``except ValueError`` catches it, and Numba raises it like any exception class) that also
derives from :class:`UserCheck`, so that rop's wrapper passes it on to the caller as it is,
instead of reporting a failure inside the generated code.
"""

import builtins


class UserCheck(Exception):
    """Raised by a check the user wrote (``assert``, ``raise``), not by rop."""


RAISABLE = ("AssertionError", "ValueError", "TypeError", "RuntimeError", "NotImplementedError",
            "KeyError", "IndexError", "LookupError", "ArithmeticError", "ZeroDivisionError",
            "FloatingPointError", "OverflowError", "Exception")


def _make(name):
    base = getattr(builtins, name)
    bases = (UserCheck,) if base is Exception else (base, UserCheck)
    return type(name, bases, {"__module__": "builtins", "__qualname__": name,
                                          "__doc__": f"{name} raised by the user's own check."})


for _n in RAISABLE:
    globals()[_n] = _make(_n)
del _n
