"""Augmented assignment as NumPy means it: ``a += x`` updates the array ``a`` in place.

The lowering marks ``a op= x`` (``Assign(a, op, (a, x), inplace=True)``).  On a number, or
on an array no other name can see, updating in place and rebinding are indistinguishable,
and the rebinding ``a = a + x`` is kept (it is what the R-rules read best).  When another
name, a list slot, a tuple or the caller (``a`` is, or views, a parameter) may hold the
same array (:mod:`.storage`), the write must reach them: the statement becomes
``t = a + x; a[...] = t``, a write into ``a``'s storage that DCE, activity and the
R-transform follow like any other, and that the ``memory`` pass refuses when it would
change an argument.
"""

from __future__ import annotations

import linecache

from ..errors import RopSyntaxError
from .nodes import Assign, Const, SetItem, Var, blocks_of

_SYM = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**", "floordiv": "//",
        "mod": "%", "matmul": "@"}


def inplace_updates(fn, types: dict, store, namer):
    """Rewrite the marked statements whose target may be seen through another name (or is,
    or views, an argument); the storage facts must be computed again after this."""

    def block(stmts):
        out = []
        for st in stmts:
            for b in blocks_of(st):
                b[:] = block(b)
            if not (isinstance(st, Assign) and st.inplace):
                out.append(st)
                continue
            seen = store.holders_at(st, st.target)
            # another name, a container, or the caller (a parameter) sees this array
            if not (seen - store.at(st, st.target) or seen & store.params) \
                    or types.get(st.target) == 0:
                out.append(st)
                continue
            rank = types.get(st.target)
            if not isinstance(rank, int):
                line = linecache.getline(st.loc.filename, st.loc.lineno) or st.loc.text
                sym = _SYM.get(st.prim, "op")
                raise RopSyntaxError(
                    f"`{st.target} {sym}= ...` may update an array that another name also holds, "
                    "and rop cannot tell whether it is an array here", st.loc.filename,
                    st.loc.lineno, st.loc.col, line,
                    f"write `{st.target}[...] = {st.target} {sym} ...` to update it in place, or "
                    f"`{st.target} = {st.target} {sym} ...` for a new array")
            tmp = namer.temp()
            types[tmp] = rank
            out.append(Assign(tmp, st.prim, st.args, st.loc, kwargs=st.kwargs))
            out.append(SetItem(st.target, Const(Ellipsis), Var(tmp), st.loc))
        return out

    fn.body = block(fn.body)
