"""Numba's function identities made unique across processes, so that its disk cache can
never make one compiled function call another's body.

Numba names the machine code of every function it compiles after the function's module,
its qualified name, the argument types and a *uid* from a per-process counter, and gives
every callee ``linkonce_odr`` linkage: two definitions of one name are assumed to be the
same code, and the process keeps the first it loads.  Inside one process the counter makes
the names unique.  Across processes it does not: rop's runtime makes its overloads in
factories (``rt.exp``, ``rt.tanh``, ``rt.log`` ... share one ``impl`` closure), so two
processes that compile the same shape of program, one with ``rt.exp`` and one with
``rt.tanh``, both name their closure ``..._ov.<locals>.impl`` with the same uid, and a third
process that loads both from the cache runs tanh where the first said exp: a silently wrong
Hv, depending only on which cached functions a process happened to load before (seen: the
suite's MLP test, garbage in one pytest worker).  Numba's issue #10486 tracks it.

This module, run at ``import rop`` before anything is compiled, draws each uid at random
(96 bits from the operating system, so a forked child does not repeat its parent's
sequence): names stay unique within a process, as before, and two processes sharing a cache
do not produce the same name for different code.  Functions compiled before ``import rop``
keep Numba's counter.
"""

from __future__ import annotations

import secrets

BITS = 96
installed = False


class RandomIds:
    """An endless iterator of random uids: what ``FunctionIdentity._unique_ids`` draws from."""

    def __iter__(self):
        return self

    def __next__(self) -> int:
        return secrets.randbits(BITS)


def install() -> bool:
    """Replace Numba's uid counter by :class:`RandomIds` (once); False if Numba is missing or
    has no such counter (a Numba that names functions differently)."""
    global installed
    if installed:
        return True
    try:
        from numba.core.bytecode import FunctionIdentity
    except ImportError:
        return False
    if not hasattr(FunctionIdentity, "_unique_ids"):
        return False
    FunctionIdentity._unique_ids = RandomIds()
    installed = True
    return True
