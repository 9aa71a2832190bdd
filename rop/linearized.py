"""Linearise once, many directions: ``f.hvp.linearize(*args)`` (and ``f.gvp.linearize``).

Every product inside CG, Lanczos or a Hutchinson estimate is at the same arguments, yet
``f.hvp(*args, v=v)`` runs the whole primal forward and backward pass again with each
direction.  ``lin = f.hvp.linearize(*args)`` runs the primal part once (the generated
``<name>_hvp_linearize``, transforms/linearize.py): it returns the function's outputs and a
*tape*, the values the R-statements read, computed once, the coefficients of the linear map
(``y1 * (1 - y1)``) among them.  ``lin(v)`` then runs ``<name>_hvp_tangent``, the R-statements
alone, from the tape.  ``lin.many([v1, v2, ...])`` runs several.

The arguments are copied when the linearisation is made, so changing them afterwards does
not change it.  A function the split does not handle (a relaxation's ``while`` loop, a list
read per step by an R-statement) still linearises: ``lin.split`` is False, ``lin.reason`` says
why, and each product runs the whole R{f}, as ``f.hvp`` would.
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

import numpy as np

from .errors import RopError


# the directions' numbers one batched call takes at most (see Linearized.chunk)
BATCH_NUMBERS = 16384


def _stack(items: list):
    """One direction parameter's k values stacked on a new leading axis (a list parameter:
    a tuple of stacks, one per item)."""
    if isinstance(items[0], (list, tuple)):
        return tuple(np.stack([np.asarray(x, dtype=np.float64) for x in col])
                     for col in zip(*items))
    return np.stack([np.asarray(x, dtype=np.float64) for x in items])


def _unstack(r, j: int):
    """Direction ``j``'s slice of a batched result."""
    if isinstance(r, tuple):
        return tuple(_unstack(x, j) for x in r)
    if isinstance(r, list):
        return [_unstack(x, j) for x in r]
    return r[j]


class Linearized:
    """R{f} at fixed arguments, linear in the direction: ``lin(v)`` is R{outputs} along ``v``
    (``v`` as ``f.hvp`` takes it), ``lin.outputs`` the function's outputs.

    ``split``: whether the primal part runs once (True) or with every product (False, when
    the function has a part the split does not handle; ``reason`` says which).
    ``products``: the number of directions applied so far.
    """

    def __init__(self, hvp, args: tuple, kwargs: dict, structural=None):
        from .api import _as_arg, _runtime_error
        from .transforms.linearize import NotLinearizable
        self._hvp = hvp
        self._runtime_error = _runtime_error
        self.products = 0
        self._fast = False  # set once the tangent function is compiled (see _fast_call)
        self._k_ready, self._k_failed = False, ""
        self._nwrt = len(hvp.owner.wrt)
        self._mu = hvp._structural(structural)
        hvp._check_globals()
        bound = hvp._bind(args, kwargs)
        self._bound = copy.deepcopy(dict(bound))  # as the arguments are now
        flat = hvp._flat(bound)
        statics, sig, names, values = flat
        self._sig, self._names = sig, names
        name = hvp.owner.fn.__name__
        ir_wrt = hvp._ir_wrt(sig)
        # private copies: the tape holds references to the arguments' arrays
        self._args = [_as_arg(copy.deepcopy(x), p, name, is_param=p in ir_wrt)
                      for p, x in zip(names, values)]
        self.split, self.reason = True, ""
        try:
            self._c = hvp._get(bound, flat, linearized=True)
        except NotLinearizable as exc:
            self.split, self.reason = False, str(exc)
            self._c = hvp._get(bound, flat)
        c = self._c
        if self.split:
            from ._progress import first_call, notice
            try:
                if first_call(c.linearize):
                    with notice(f"{name}.{hvp.kind} (linearised, Numba)"):
                        out, self._tape = c.linearize(*self._args)
                else:
                    out, self._tape = c.linearize(*self._args)
            except RopError:
                raise
            except Exception as exc:
                raise _runtime_error(exc, name, c, hvp.owner.wrt, dict(zip(names, self._args)),
                                     tuple(self._args)) from None
            self.outputs = self._rebuild(out)
        else:
            self._tape = ()
            self.outputs = None  # computed with the first product

    def _rebuild(self, x):
        if self._c.out_struct is not None:
            from .frontend.statics import rebuild
            return rebuild(self._c.out_struct, x)
        return x

    def __call__(self, v: Any) -> Any:
        """R{outputs} along ``v``: H v when the outputs are the gradient."""
        if self._fast and (type(v) is tuple or type(v) is list) and len(v) == self._nwrt:
            r = self._fast_call(v)
            if r is not None:
                return r
        directions = self._hvp._directions(self._bound, self._sig, v)
        self.products += 1
        if not self.split:
            out, r = self._hvp(*self._bound.values(), v=v,
                               structural=self._mu[0] if self._mu else None)
            self.outputs = out
            return r
        call = (*self._args, *self._tape, *directions, *self._mu)
        d = self._c.tangent
        compiled = self._hvp._checks_compiled and hasattr(d, "disable_compile")
        try:
            if compiled:
                d.disable_compile(False)
            from ._progress import first_call, notice
            if first_call(d):
                with notice(f"{self._hvp.owner.fn.__name__}.{self._hvp.kind} (tangent, Numba)"):
                    r = d(*call)
            else:
                r = d(*call)
        except RopError:
            raise
        except Exception as exc:
            hvp = self._hvp
            raise self._runtime_error(exc, hvp.owner.fn.__name__, self._c, hvp.owner.wrt,
                                      dict(zip(self._names, self._args)), call) from None
        finally:
            if compiled and d.signatures:
                d.disable_compile(True)
        if compiled and self._sig is None:
            self._fast = True  # compiled for these types, compiling off: the fast path
        return self._rebuild(r)

    def _fast_call(self, v):
        """The common product without Python-level checks: float64 C-contiguous directions
        shaped like the parameters, which the tangent function's first lines check (as
        ``f.hvp``'s dispatch does); anything else returns None and takes the checked path."""
        from .api import _NO_MATCH
        from .errors import BadDirection, NonFinite
        call = (*self._args, *self._tape, *[tuple(x) if type(x) is list else x for x in v],
                *self._mu)
        try:
            r = self._c.tangent(*call)
        except (BadDirection, NonFinite):
            return None
        except TypeError as exc:
            if str(exc).startswith(_NO_MATCH):
                return None
            raise
        self.products += 1
        return self._rebuild(r)

    def many(self, vs: Sequence[Any]) -> list:
        """R{outputs} along each direction of ``vs``, in order (one primal pass for all).

        When the tangent part is batched (``batched``), the k directions go through one call
        of ``<name>_tangent_k``, whose R-values carry all k at once (a matrix product with a
        direction is one BLAS call k times wider); otherwise one tangent call per direction."""
        vs = list(vs)
        if len(vs) > 1 and self.batched:
            dirs = [self._hvp._directions(self._bound, self._sig, v) for v in vs]
            c = self.chunk(sum(np.size(x) for d in dirs[0]
                               for x in (d if isinstance(d, (list, tuple)) else (d,))))
            out = []
            for s in range(0, len(vs), c):
                part = dirs[s:s + c]
                r = self.stacked(tuple(_stack([d[i] for d in part]) for i in range(len(part[0]))),
                                 len(part)) if len(part) > 1 else None
                out += [self._rebuild(_unstack(r, j)) for j in range(len(part))] \
                    if r is not None else [self(v) for v in vs[s:s + c]]
            return out
        return [self(v) for v in vs]

    def chunk(self, n: int) -> int:
        """How many directions of ``n`` numbers each go into one batched call: as many as keep
        the call's R-values near the cache (``BATCH_NUMBERS`` numbers of directions in all);
        past that, k slices of large arrays cost more memory traffic than k calls cost
        dispatch, and one call per direction is faster (benchmarks/bench_matmat.py)."""
        return max(1, BATCH_NUMBERS // max(1, n))

    @property
    def batched(self) -> bool:
        """Whether k directions run in one compiled call (``many``, ``H @ V``); if not,
        ``batch_reason`` says why."""
        return self.split and self._c.tangent_k is not None and not self._k_failed

    @property
    def batch_reason(self) -> str:
        if self.batched:
            return ""
        if not self.split:
            return self.reason
        return self._k_failed or self._c.batch_reason

    def stacked(self, dirs: tuple, k: int, checked: bool = False):
        """The raw R{outputs} of ``k`` directions stacked on a leading axis, ``dirs`` one per
        generated direction parameter (an array (k, ...) for an array parameter, a tuple of
        them for a list), float64 and C-contiguous; None if the batched call is not available
        or a direction is not finite (the caller then takes the per-direction path, which
        names the bad one)."""
        if not self.batched:
            return None
        for d in () if checked else dirs:
            for a in (d if isinstance(d, tuple) else (d,)):
                if not np.isfinite(a).all():
                    return None
        f = self._c.tangent_k
        if not self._k_ready and hasattr(f, "disable_compile"):
            f.disable_compile(False)  # typed once, for these argument types
        try:
            from ._progress import first_call, notice
            if first_call(f):
                with notice(f"{self._hvp.owner.fn.__name__}.{self._hvp.kind} "
                            "(batched tangent, Numba)"):
                    r = f(*self._args, *self._tape, *dirs, *self._mu, k)
            else:
                r = f(*self._args, *self._tape, *dirs, *self._mu, k)
        except Exception as exc:  # a batching defect must not cost a result: per direction
            self._k_failed = f"the batched tangent failed ({type(exc).__name__}: {exc})"
            return None
        self._k_ready = True
        self.products += k
        return r

    @property
    def source(self) -> str:
        """The generated Python of the split (``<name>_linearize`` and ``<name>_tangent``)."""
        return self._c.source

    def __repr__(self) -> str:
        how = "primal once" if self.split else f"not split: {self.reason}"
        return f"<Linearized {self._hvp.owner.fn.__name__}.{self._hvp.kind} ({how})>"
