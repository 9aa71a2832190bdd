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

from .errors import RopError


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
            try:
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
        """R{outputs} along each direction of ``vs``, in order (one primal pass for all)."""
        return [self(v) for v in vs]

    @property
    def source(self) -> str:
        """The generated Python of the split (``<name>_linearize`` and ``<name>_tangent``)."""
        return self._c.source

    def __repr__(self) -> str:
        how = "primal once" if self.split else f"not split: {self.reason}"
        return f"<Linearized {self._hvp.owner.fn.__name__}.{self._hvp.kind} ({how})>"
