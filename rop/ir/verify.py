"""The IR verifier, run after every pass (pipeline.run_passes).

Generated code that fails with ``NameError`` or reads a value before it is computed is a
bug no user can work around (tangent shipped such code, its issue #69).  After each pass
this checks, on the structured IR, that every name a statement reads may be bound where it
reads it: a parameter, or assigned on some path before (loops: in an earlier iteration
too).  It names the pass that broke the IR, so the bug report points at the pass.
"""

from __future__ import annotations

from ..errors import RopInternalError
from .nodes import (Append, Assign, Effect, For, If, Return, SetItem, While, defined_names,
                    walk)


def _reads(st) -> set:
    return set(st.reads())


def verify(fn, after: str):
    """Raise RopInternalError if a statement of ``fn`` reads a name not bound on any path."""
    external = set(fn.helpers)
    bad = []

    def block(stmts, bound):
        for st in stmts:
            if isinstance(st, (Assign, SetItem, Append, Effect, Return)):
                missing = _reads(st) - bound - external
                if missing:
                    bad.append((st, sorted(missing)))
            elif isinstance(st, If):
                missing = set(st.reads()) - bound
                if missing:
                    bad.append((st, sorted(missing)))
                bound = block(st.body, set(bound)) | block(st.orelse, set(bound))
                continue
            elif isinstance(st, For):
                inner = bound | {st.var}
                bound = bound | block(st.body, inner | _defs(st.body)) | {st.var}
                continue
            elif isinstance(st, While):
                inner = bound | _defs(st.cond) | _defs(st.body)
                bound = bound | block(st.cond, inner) | block(st.body, inner)
                continue
            bound |= defined_names(st)
        return bound

    block(fn.body, set(fn.params))
    if bad:
        st, names = bad[0]
        raise RopInternalError(
            f"IR verifier after pass `{after}`: {', '.join(f'`{n}`' for n in names)} read before "
            f"any assignment at {st.loc.short()} (`{st.loc.text}`) in {fn.name}. This is a bug "
            "in rop; please report it with the function's source.")


def _defs(stmts) -> set:
    return {n for s in walk(stmts) for n in defined_names(s)}
