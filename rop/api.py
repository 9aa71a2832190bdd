"""The ``@rop`` decorator: the user's function, unchanged, plus ``.hvp``.

Thin on purpose: argument checking and the per-signature cache live here; the
compiler is :func:`rop.pipeline.compile_hvp`.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
from typing import Any, Callable, Sequence

import numpy as np

from .errors import (BadDirection, NonFinite, RopCallError, RopConvergenceError,
                     RopConvergenceWarning, RopError, RopInternalError, RopSyntaxError)
from .ir.shapes import type_of_value

_NO_V = object()  # .hvp called without v

MODES = ("numba", "python")


def rop(fn: Callable | None = None, *, wrt: str | Sequence[str], mode: str = "numba",
        check_finite: bool = True, relaxation: str = "auto",
        on_divergence: str = "raise",
        output: str | None = None,
        hidden: dict | None = None) -> RopFunction | Callable[[Callable], RopFunction]:
    """Make ``fn`` differentiable by the R{·} operator with respect to the parameters ``wrt``.

    ``f.hvp(*args, v=(v1, ...))`` returns ``(outputs, R{outputs})``: the function's own
    results and their directional derivatives along ``v``, one direction per ``wrt``
    parameter shaped like it.  When ``fn`` returns the gradient of a loss, ``R{outputs}``
    is the Hessian-vector product Hv.

    ``mode="python"`` runs the same generated code without Numba, for debugging.
    ``check_finite`` refuses NaN/Inf in parameters and directions (one pass over them).

    ``relaxation="auto"`` recognises loops that run to a fixed point (``while change > tol
    and it < max_it:`` with ``change`` measured by the body between successive states).  The
    loop runs as written (its outputs are the function's), and when its change test ended it,
    the R-state keeps relaxing with the primal state fixed until its change, in the loop's own
    measure, is below ``tol`` relative to its size: R{·} of the limit.  A loop that stopped at
    its own cap is differentiated as the iterations it made; ``"off"`` does that for every
    ``while``.  ``on_divergence`` says what happens when the R-state does not converge although
    the primal did: ``"raise"`` a :class:`RopConvergenceError` or ``"warn"`` with a
    :class:`RopConvergenceWarning` and return the last iterate.

    ``output`` names the variable holding the network's output, where the loss begins (the
    logits, the linear or logistic output layer's value).  It adds ``f.gvp(*args, v=...)``:
    the same call as ``.hvp``, giving ``(outputs, G v)`` with G = Jᵀ H_L J the Gauss-Newton
    matrix (Schraudolph 2002; Martens 2010) when ``fn`` returns the gradient: R{·} of the
    backward pass taken through the output only, the parameters and the other forward values
    held fixed.  G is positive semi-definite when the loss is convex in the output.

    ``hidden`` adds Martens & Sutskever's structural damping to ``.gvp``: a dict from hidden
    values (``"h1"``, an RNN's states ``"hs[t]"``) to the variable the backward pass assigns the
    loss's gradient with respect to each (``"dh"``), on one line.  Then
    ``f.gvp(*args, v=..., structural=mu)`` returns G v + μ J_hᵀ J_h v, the curvature of
    μ/2 ‖h(θ+p) − h(θ)‖² added, from the same compiled code: rop adds ``R{dh} += μ R{h}`` on
    that line and the backward pass does the rest.  The hidden value is read as that line
    would read it (``t`` is the loop's current step).
    """
    if isinstance(wrt, str):
        wrt = (wrt,)
    wrt = tuple(wrt)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if relaxation not in ("auto", "off"):
        raise ValueError(f"relaxation must be 'auto' or 'off', not {relaxation!r}")
    if on_divergence not in ("raise", "warn"):
        raise ValueError(f"on_divergence must be 'raise' or 'warn', not {on_divergence!r}")

    if output is not None and not _output_spec(output):
        raise ValueError(f"output must name a variable of the function (\"y\") or a slot of a "
                         f"list (\"acts[L]\", \"acts[-1]\"), not {output!r}")
    hidden = _hidden_spec(hidden, output)

    def wrap(f):
        r = RopFunction(f, wrt, mode, check_finite, output, hidden)
        for h in (r.hvp, r._gvp):
            if h is not None:
                h.relaxation, h.on_divergence = relaxation, on_divergence
        return r
    return wrap(fn) if fn is not None else wrap


class RopFunction:
    """The decorated function: calling it calls the original; ``.hvp`` is R{fn}."""

    def __init__(self, fn, wrt, mode, check_finite, output=None, hidden=()):
        self.fn = fn
        self.wrt = wrt
        self.output = output
        self.hidden = hidden
        self.signature = inspect.signature(fn)
        if len(set(wrt)) != len(wrt):
            dup = sorted({w for w in wrt if wrt.count(w) > 1})
            raise RopCallError(f"wrt names {', '.join(f'`{d}`' for d in dup)} more than once: "
                               "give each parameter once")
        for w in wrt:  # a parameter, or an attribute of one: "self.weights"
            if w.split(".")[0] not in self.signature.parameters:
                raise RopCallError(f"wrt names `{w}`, which is not a parameter of {fn.__name__}"
                                   f"({', '.join(self.signature.parameters)})")
        self.hvp = HVP(self, mode, check_finite)
        self._gvp = HVP(self, mode, check_finite, output=output, hidden=hidden) if output \
            else None
        functools.update_wrapper(self, fn)
        from .frontend.lower import lower
        try:
            ir = lower(fn, fresh=True)  # parse, check and lower now: errors surface at
            # definition, and module-level numbers are read now (a later decoration reads them
            # again, and so does a call after one of them changed: see HVP.__call__)
            self.hvp._globals = ir.captured
            if output is not None and output.split("[")[0] not in ir.scope:
                raise RopSyntaxError(f"output `{output}` is not a variable of {fn.__name__}",
                                     ir.filename, ir.loc.lineno, ir.loc.col, ir.loc.text,
                                     "name the variable holding the network's output, where "
                                     "the loss begins")
            for key, grad in hidden:
                for n, what in ((key.split("[")[0], "hidden value"), (grad, "gradient")):
                    if n not in ir.scope:
                        raise RopSyntaxError(
                            f"hidden names `{n}` (the {what} in {key!r}: {grad!r}), which is not "
                            f"a variable of {fn.__name__}", ir.filename, ir.loc.lineno,
                            ir.loc.col, ir.loc.text,
                            "hidden maps a hidden value to the name its gradient is assigned to "
                            "in the backward pass")
        except RopSyntaxError as exc:
            # a function that may take dicts, None or strings is lowered for what its call
            # passes (frontend/statics.py): errors that depend on them surface at that call
            if not (getattr(exc, "needs_statics", False) or _may_take_statics(fn)):
                raise
            if getattr(exc, "needs_length", False):
                self.hvp._lengths = _len_params(fn)
                if self._gvp is not None:
                    self._gvp._lengths = self.hvp._lengths
        except RopError:
            raise
        except Exception as exc:
            raise RopInternalError(f"rop failed to read {fn.__name__}: {type(exc).__name__}: "
                                   f"{exc}. This is a bug in rop; please report it.") from None

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    @property
    def gvp(self) -> "HVP":
        """``f.gvp(*args, v=...)``: ``(outputs, G v)``, the Gauss-Newton product (see
        :func:`rop`'s ``output``)."""
        if self._gvp is None:
            raise RopCallError(f"{self.fn.__name__}.gvp needs the network's output: decorate with "
                               f"@rop(wrt={self.wrt!r}, output=\"<the variable where the loss "
                               "begins>\")")
        return self._gvp

    def __get__(self, obj, objtype=None):
        """``@rop`` on a method: ``net.backprop(x, y)`` and ``net.backprop.hvp(x, y, v=...)``
        pass ``net`` as ``self``."""
        if obj is None:
            return self
        return BoundRopFunction(self, obj)

    @property
    def source(self):
        return self.hvp.source

    @property
    def graph(self):
        return self.hvp.graph


class BoundRopFunction:
    """A decorated method, bound to its object."""

    def __init__(self, owner: RopFunction, obj):
        self.owner, self.obj = owner, obj
        self.hvp = _BoundHVP(owner.hvp, obj)
        self.gvp = _BoundHVP(owner.gvp, obj) if owner._gvp is not None else None
        self.__doc__ = owner.__doc__

    def __call__(self, *args, **kwargs):
        return self.owner.fn(self.obj, *args, **kwargs)


class _BoundHVP:
    def __init__(self, hvp, obj):
        self._hvp, self._obj = hvp, obj

    def __call__(self, *args, **kwargs):
        return self._hvp(self._obj, *args, **kwargs)

    def compile(self, *args, **kwargs):
        return self._hvp.compile(self._obj, *args, **kwargs)

    def operator(self, *args, **kwargs):
        return self._hvp.operator(self._obj, *args, **kwargs)

    def __getattr__(self, name):  # .source, .path, .graph, .inspect()
        return getattr(self._hvp, name)


class HVP:
    """``f.hvp(*args, v=...)``; ``.source``, ``.path`` and ``.graph`` show what was generated."""

    def __init__(self, owner: RopFunction, mode: str, check_finite: bool, output=None,
                 hidden=()):
        self.owner = owner
        self.output = output  # the Gauss-Newton product's cut (None: Hv)
        self.hidden = hidden  # structural damping's (hidden value, its gradient's name) pairs
        self.kind = "gvp" if output else "hvp"
        self.mode = mode
        self.check_finite = check_finite
        self._compiled: dict = {}
        self._last = None
        self.relaxation = "auto"
        self.on_divergence = "raise"
        self._checks_compiled = mode == "numba" and check_finite  # then _dispatch, not _fast_call
        self._ready = None  # what _dispatch calls
        self._unrolled = None  # _ready's dispatcher, lists passed as tuples (_unrolled_call)
        self._mu0 = (0.0,) if hidden else ()  # the structural damping argument when not given
        self._skip = self._backoff = 0  # _dispatch's back-off after type misses
        self._params = tuple(owner.signature.parameters)
        self._nparams = len(self._params)
        self._wrt_pos = tuple(self._params.index(w) for w in owner.wrt if w in self._params)
        self._nwrt = len(self._wrt_pos)
        # (globals dict, name, value) of each module-level number (or helper) the compiled
        # code has built in (Function.captured); every call checks them, see _globals_changed
        self._globals = ()
        self._lengths: tuple = ()  # list arguments whose length is compiled in (api._len_params)

    # ------------------------------------------------------------------ inspection
    @property
    def source(self) -> str:
        """The generated Python of the most recent specialization (compiled on first call)."""
        return self._need().source

    @property
    def path(self) -> str:
        return self._need().path

    @property
    def graph(self):
        """The dataflow graph (networkx.DiGraph) of the generated code: primal and R-nodes."""
        return self._need().graph_fn()

    @property
    def primal(self):
        """The original function as compiled by rop (same backend as ``hvp``)."""
        return self._need().primal

    def inspect(self):
        """The generated code for reading: side by side with the source, the dataflow graph,
        DOT/SVG pictures, and highlighted HTML in Jupyter."""
        from .inspection import Inspection
        return Inspection(self)

    def _need(self):
        if self._last is None:
            raise RopCallError(f"nothing compiled yet: call .{self.kind}(...) once (rop specializes on the "
                               "ranks of the arguments), or use .compile(*args)")
        return self._last

    # ------------------------------------------------------------------ calling
    def compile(self, *args: Any, **kwargs: Any):
        """Compile for these arguments without running (returns the compiled record)."""
        self._check_globals()
        bound = self._bind(args, kwargs)
        return self._get(bound)

    def operator(self, *args: Any, **kwargs: Any):
        """This product at these arguments as a flat symmetric ``scipy.sparse.linalg.LinearOperator``
        (float64; ``.layout`` converts flat vectors to and from the ``wrt`` parameters), for
        SciPy's solvers and :mod:`rop.curvature`'s estimators: see :func:`rop.operators.operator`."""
        from .operators import operator
        return operator(self, *args, **kwargs)

    def _bind(self, args, kwargs):
        if not kwargs and len(args) == len(self._params):  # the common call: all positional
            return dict(zip(self._params, args))
        try:
            ba = self.owner.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise RopCallError(f"{self.owner.fn.__name__}.{self.kind}: {exc}") from None
        ba.apply_defaults()
        return ba.arguments

    def _flat(self, bound):
        """The call for the generated function: (statics, IR signature, IR names, values).
        Static arguments (None, strings, bools, the keys of dicts) are compiled in, a dict's
        values passed one by one (frontend/statics.py)."""
        from .frontend.statics import StaticLength, flatten, statics_of
        statics = statics_of(bound)
        for p in self._lengths:  # the lengths its dict keys need (statics.StaticLength)
            if isinstance(bound.get(p), (list, tuple)):
                statics[p] = StaticLength(len(bound[p]))
        if not statics:
            return None, None, list(bound), list(bound.values())
        ir = self._current_ir(statics)
        names, values = flatten(ir.signature, bound)
        return statics, dict(ir.signature), names, values

    def _ir_wrt(self, sig):
        """The IR parameters the directions go to: a dict's values, key by key."""
        if sig is None:
            return self.owner.wrt
        from .frontend.statics import entry_at, leaves
        out = []
        for w in self.owner.wrt:
            e = entry_at(sig, w)
            if e is None:
                raise RopCallError(f"{self.owner.fn.__name__}.{self.kind}: wrt names `{w}`, which this "
                                   "call does not pass as an array, a number, a list or a dict")
            got = leaves(e)
            if not got:
                kind = e[0]
                raise RopCallError(
                    f"{self.owner.fn.__name__}.{self.kind}: wrt names `{w}`, which is "
                    + (f"{e[1]!r} in this call" if kind == "static" else
                       "a dict without array values") + "; rop differentiates with respect to "
                    "arrays and numbers")
            out += got
        return tuple(out)

    def _get(self, bound, flat=None, linearized=False):
        from .frontend.statics import statics_key
        statics, sig, names, values = flat or self._flat(bound)
        key = tuple((n, _rank(x)) for n, x in zip(names, values))
        if statics:
            key += (("#statics", statics_key(statics)),)
        if linearized:
            key += (("#linearized", self.relaxation),)
        c = self._compiled.get(key)
        if isinstance(c, Exception):  # known not to split: the caller falls back
            raise c
        if c is None:
            from ._progress import notice
            self._current_ir(statics)
            ranks = {n: r for n, r in key if not n.startswith("#")}
            try:
                with notice(f"{self.owner.fn.__name__}.{self.kind}"
                            f"{' (linearised)' if linearized else ''}: generating the R-code"):
                    c = self._generate(linearized, sig, ranks, statics)
            except Exception as exc:
                # (the transforms are imported only here: a cached module needs none of them)
                from .transforms.linearize import NotLinearizable
                if isinstance(exc, NotLinearizable):
                    self._compiled[key] = exc
                    raise
                if isinstance(exc, RopError):
                    raise
                # a bug in rop: say so, never a bare traceback
                raise RopInternalError(
                    f"rop failed to compile {self.owner.fn.__name__}: {type(exc).__name__}: {exc}. "
                    "This is a bug in rop; please report it with the function's source.") from None
            self._compiled[key] = c
        if not linearized:
            self._last = c
        return c

    def _generate(self, linearized, sig, ranks, statics):
        """The generated module for these argument ranks (the pipeline; Numba compiles its
        functions on their first call)."""
        from .pipeline import compile_hvp, compile_linearized
        if linearized:
            return compile_linearized(self.owner.fn, self._ir_wrt(sig), ranks, self.mode,
                                      self.check_finite, statics=statics, output=self.output,
                                      hidden=self.hidden)
        return compile_hvp(self.owner.fn, self._ir_wrt(sig), ranks, self.mode, self.relaxation,
                           self.check_finite, statics=statics, output=self.output,
                           hidden=self.hidden)

    def __call__(self, *args: Any, v: Any = _NO_V, structural: float | None = None,
                 **kwargs: Any) -> tuple:
        """``(outputs, R{outputs})`` at these arguments along ``v``: one direction per ``wrt``
        name, shaped like it (a list for a per-layer list, a dict with the same keys for a
        dict).  ``outputs`` equal the function's own; R{outputs} is Hv when they are the
        gradient.  ``structural=mu`` (``.gvp`` of a function decorated with ``hidden``) adds
        μ J_hᵀ J_h v, structural damping; it is 0 when not given."""
        if not kwargs and self._unrolled is not None:  # compiled for a call like this one
            fast = self._dispatch(args, v, self._mu0 if structural is None else
                                  self._structural(structural))
            if fast is not None:
                return fast
        mu = self._structural(structural)
        if v is _NO_V:
            wrt = self.owner.wrt
            raise RopCallError(
                f"{self.owner.fn.__name__}.{self.kind}: the direction is missing: call "
                f"{self.owner.fn.__name__}.{self.kind}(<the function's arguments>, v=...) with v holding "
                f"one direction per wrt parameter {wrt}, each shaped like its parameter"
                + (f" (here: one array shaped like `{wrt[0]}`)" if len(wrt) == 1 else ""))
        self._check_globals()  # module-level values compiled in: still the same?
        if not kwargs and len(args) == self._nparams and not self._checks_compiled:
            fast = self._fast_call(args, v, mu)
            if fast is not None:
                return fast
        bound = self._bind(args, kwargs)
        name = self.owner.fn.__name__
        wrt = self.owner.wrt
        flat = self._flat(bound)
        statics, sig, names, values = flat
        ir_wrt = self._ir_wrt(sig)
        call_args = [_as_arg(x, p, name, is_param=p in ir_wrt) for p, x in zip(names, values)]
        directions = self._directions(bound, sig, v)
        c = self._get(bound, flat)
        relax = getattr(c.module, "__rop_relaxations__", [])
        status = (np.zeros((len(relax), 4)),) if relax else ()
        try:
            out, r_out = self._call_compiled(c, (*call_args, *directions, *mu, *status))
        except RopError:
            raise
        except Exception as exc:
            raise _runtime_error(exc, name, c, wrt, dict(zip(names, call_args)),
                                 (*call_args, *directions, *mu, *status)) from None
        if relax and status[0][:, 0].any():
            self._report_divergence(status[0], relax)
        if self._skip and c is self._ready and _same(values, call_args) and \
                _same(list(v), directions):
            self._skip = self._backoff = 0  # nothing converted: common types again, go straight
        if c.out_struct is not None:
            from .frontend.statics import rebuild
            out, r_out = rebuild(c.out_struct, out), rebuild(c.out_struct, r_out)
        return out, r_out

    def _directions(self, bound, sig, v) -> list:
        """``v`` checked against the parameters and flattened as the generated function takes
        the directions (a dict's values one by one)."""
        name = self.owner.fn.__name__
        wrt = self.owner.wrt
        if not isinstance(v, (tuple, list)) or len(v) != len(wrt):
            if len(wrt) == 1 and not isinstance(v, (tuple, list)) or \
                    len(wrt) == 1 and wrt[0] in bound and isinstance(bound[wrt[0]], (list, tuple)) and \
                    isinstance(v, (tuple, list)) and len(v) == len(bound[wrt[0]]) and \
                    not isinstance(v[0], (tuple, list)) and len(v) != 1:
                v = (v,)
            else:
                got = len(v) if isinstance(v, (tuple, list)) else type(v).__name__
                raise RopCallError(f"{name}.{self.kind}: v must hold one direction per wrt parameter "
                                   f"{wrt}, in that order; got {got}")
        if sig is None:
            return [_check_direction(bound[w], d, w, name) for w, d in zip(wrt, v)]
        from .frontend.statics import entry_at, flat_direction, value_at
        return [_check_direction(p, dd, pname, name) for w, d in zip(wrt, v)
                for _, pname, p, dd in flat_direction(entry_at(sig, w), d, w, name,
                                                      value_at(bound, w))]

    def linearize(self, *args: Any, structural: float | None = None, **kwargs: Any):
        """Linearise once at these arguments (``jax.linearize``): the primal pass runs now and
        its tape is kept; ``lin(v)`` then runs only the R-statements, per direction, and
        ``lin.outputs`` are the function's outputs.  See :class:`rop.linearized.Linearized`."""
        from .linearized import Linearized
        return Linearized(self, args, kwargs, structural)

    def _structural(self, mu) -> tuple:
        """The structural damping weight as the generated function's last argument (none
        without ``hidden``)."""
        if not self.hidden:
            if mu is not None:
                raise RopCallError(
                    f"{self.owner.fn.__name__}.{self.kind}: structural damping needs the hidden "
                    f"values: decorate with @rop(..., output=..., hidden={{\"<hidden value>\": "
                    f"\"<the name of its gradient in the backward pass>\"}})"
                    if self.kind == "gvp" else
                    f"{self.owner.fn.__name__}.hvp: structural damping is a term of the "
                    "Gauss-Newton product: call .gvp (decorated with output and hidden)")
            return ()
        if mu is None:
            return (0.0,)
        try:
            mu = float(mu)
        except (TypeError, ValueError):
            raise RopCallError(f"{self.owner.fn.__name__}.gvp: structural must be a number "
                               f"(the damping weight μ), not {type(mu).__name__}") from None
        if not np.isfinite(mu) or mu < 0:
            raise RopCallError(f"{self.owner.fn.__name__}.gvp: structural must be finite and "
                               f"≥ 0 (the damping weight μ), not {mu}")
        return (mu,)

    def _check_globals(self):
        changed = _changed_global(self._globals)
        if changed is not None:
            self._globals_changed(*changed)

    def _globals_changed(self, d, n, old, new):
        """A module-level value compiled in as a constant (``LAM = 0.1`` read by the function
        or a helper, or a helper function itself) is not what it was: lower the function
        again with the new values and drop every specialisation, so that this call compiles
        anew (the pipeline's cache is keyed by the lowered code, so values seen before reload
        their compiled modules).  A value rop cannot compile in raises a RopCallError naming
        it, and so does every later call until it is changed back."""
        from .frontend.lower import lower
        fname = self.owner.fn.__name__
        try:
            ir = lower(self.owner.fn, fresh=True)
        except RopError as exc:
            where = f"{d.get('__name__', '?')}.{n}" if d is not self.owner.fn.__globals__ else n
            now = "no longer defined" if new is _NO_V else f"now {_short(new)}"
            raise RopCallError(
                f"{fname}.hvp: the module-level `{where}` that {fname} reads was {_short(old)} "
                f"when {fname} was compiled and is {now}; rop compiles module-level numbers "
                f"in as constants and cannot use this value (pass it as a parameter instead):\n"
                f"{exc}") from None
        self._globals = ir.captured
        self._compiled = {}
        self._ready = self._last = self._unrolled = None
        self._skip = self._backoff = 0

    def _current_ir(self, statics=None):
        """Before compiling: the lowered IR the pipeline will read (cached on the function,
        shared with other decorations of it) must hold the current module-level values."""
        from .frontend.lower import lower
        ir = lower(self.owner.fn, statics=statics)
        captured = ir.captured
        if captured is not self._globals and _changed_global(captured) is not None:
            ir = lower(self.owner.fn, fresh=True, statics=statics)
        self._globals = ir.captured
        return ir

    def _dispatch(self, args, v, mu=()):
        """The common call, checked without Python-level loops: Numba's dispatcher matches the
        argument types (float64, C-contiguous, ranks, a list's length) against what is
        compiled, with compiling switched off, and the generated code's first lines check the
        directions' shapes and finiteness (``rt.check_direction``).  Any mismatch returns None
        and the checked path converts the arguments or says what was expected."""
        if (type(v) is not tuple and type(v) is not list) or len(v) != self._nwrt or \
                len(args) != self._nparams:
            return None
        if self._skip:
            self._skip -= 1
            return None
        if self._globals:
            self._check_globals()  # module-level values compiled in: still the same?
        c = self._ready
        if c is None:  # they changed: the checked path compiles anew
            return None
        try:
            out = self._unrolled(*args, *v, *mu)
            if self._backoff:
                self._backoff = 0
            return out
        except (BadDirection, NonFinite):
            return None
        except RopError:
            raise
        except Exception as exc:
            if isinstance(exc, TypeError) and str(exc).startswith(_NO_MATCH):
                # types not compiled for: the checked path.  Numba's miss costs ~0.2 ms, so a
                # caller who always passes, say, float32 arrays skips this path for
                # exponentially longer stretches of calls
                self._backoff = min(2 * self._backoff or 1, 1024)
                self._skip = self._backoff
                return None
            raise _runtime_error(exc, self.owner.fn.__name__, c, self.owner.wrt, None,
                                 [tuple(x) if type(x) is list else x
                                  for x in (*args, *v, *mu)]) from None

    def _call_compiled(self, c, call_args):
        """The checked path's call: it may need a new specialisation (another list length), so
        compiling is switched on for it and off again for ``_dispatch``."""
        from ._progress import first_call, notice
        d = c.hvp
        if not self._checks_compiled or not hasattr(d, "disable_compile"):
            return d(*call_args)
        d.disable_compile(False)
        try:
            if first_call(d):
                with notice(f"{self.owner.fn.__name__}.{self.kind} (Numba)"):
                    out = d(*call_args)
            else:
                out = d(*call_args)
        finally:
            if d.signatures:
                d.disable_compile(True)
        if not getattr(c.module, "__rop_relaxations__", None) and c.plain and c.out_struct is None:
            # compiled, compiling off: _dispatch may call it directly (results holding dicts
            # are rebuilt on the checked path)
            self._ready = c
            self._unrolled = _unrolled_call(d, self._nparams + self._nwrt + len(self._mu0))
        return out

    def _fast_call(self, args, v, mu=()):
        """The common call in one pass: every argument already a float64 C-contiguous array, a
        float, or a list of such arrays of one rank; every direction the same shapes.  Anything
        else (or a first call) returns None and takes the checked path."""
        wrt_pos = self._wrt_pos
        if type(v) is not tuple and type(v) is not list or len(v) != len(wrt_pos):
            return None
        call, key = [], []
        for name, x in zip(self._params, args):
            a = _fast_arg(x)
            if a is None:
                return None
            call.append(a[0])
            key.append((name, a[1]))
        c = self._compiled.get(tuple(key))
        if c is None or getattr(c.module, "__rop_relaxations__", None) or c.out_struct is not None:
            return None
        for k, d in zip(wrt_pos, v):
            d = _fast_direction(args[k], d)
            if d is None:
                return None
            call.append(d)
        call.extend(mu)
        self._last = c
        try:
            return c.hvp(*call)
        except RopError:
            raise
        except Exception as exc:
            raise _runtime_error(exc, self.owner.fn.__name__, c, self.owner.wrt, None,
                                 call) from None

    def _report_divergence(self, status, relax):
        """A relaxation whose primal converged but whose R-state did not (a loop stopped at
        its own cap is a path and is never reported).  A row holds: flag, the R-iterations
        made with the primal state fixed, the last R-change and the R-state's size, both in
        the loop's own measure of change."""
        for (index, where, text), row in zip(relax, status):
            if row[0]:
                with np.errstate(divide="ignore", invalid="ignore"):
                    rel = np.float64(row[2]) / np.float64(row[3])
                msg = (f"{where}: the relaxation `{text.split('#', 1)[0].strip()}` converged, but "
                       f"its R-state did not: after {int(row[1])} iterations of the R-update with "
                       f"the primal state fixed, the R-change is {rel:.3g} of the R-state's size "
                       f"(last change {row[2]:.3g}, size {row[3]:.3g}), not below the loop's "
                       "tolerance. The iteration may not be a contraction at its fixed point, so "
                       "the limit may have no derivative there; loosen the tolerance, or pass "
                       "relaxation='off' for the derivative of the iterations as written.")
                if self.on_divergence == "raise":
                    raise RopConvergenceError(msg)
                import warnings
                warnings.warn(msg, RopConvergenceWarning, stacklevel=3)


def _output_spec(output) -> bool:
    """``output`` is a name or a list's slot: ``y``, ``acts[L]``, ``acts[-1]``, ``acts[3]``."""
    import ast
    if not isinstance(output, str):
        return False
    try:
        node = ast.parse(output, mode="eval").body
    except SyntaxError:
        return False
    if isinstance(node, ast.Name):
        return True
    if not (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)):
        return False
    i = node.slice
    return isinstance(i, ast.Name) or isinstance(i, ast.Constant) and type(i.value) is int or (
        isinstance(i, ast.UnaryOp) and isinstance(i.op, ast.USub)
        and isinstance(i.operand, ast.Constant) and type(i.operand.value) is int)


def _hidden_spec(hidden, output) -> tuple:
    """``hidden`` as sorted (hidden value, gradient name) pairs, checked: a dict from a name or a
    list's slot (``"h1"``, ``"hs[t]"``, ``"hs[t + 1]"``) to a variable name."""
    import ast
    if hidden is None:
        return ()
    if not isinstance(hidden, dict) or not hidden:
        raise ValueError("hidden must be a dict from hidden values to the names of their "
                         "gradients in the backward pass, e.g. hidden={\"hs[t]\": \"dh\"}, "
                         f"not {hidden!r}")
    if output is None:
        raise ValueError("hidden (structural damping) is a term of the Gauss-Newton product: "
                         "name the network's output too, output=\"...\"")

    def index_ok(i):
        if isinstance(i, ast.Name) or isinstance(i, ast.Constant) and type(i.value) is int:
            return True
        if isinstance(i, ast.UnaryOp) and isinstance(i.op, ast.USub):
            return index_ok(i.operand)
        return isinstance(i, ast.BinOp) and isinstance(i.op, (ast.Add, ast.Sub)) and \
            index_ok(i.left) and index_ok(i.right)
    for key, grad in hidden.items():
        try:
            node = ast.parse(key, mode="eval").body if isinstance(key, str) else None
        except SyntaxError:
            node = None
        if not (isinstance(node, ast.Name) or isinstance(node, ast.Subscript) and
                isinstance(node.value, ast.Name) and index_ok(node.slice)):
            raise ValueError(f"hidden: {key!r} must name a hidden value: a variable (\"h1\") or "
                             f"a slot of a list (\"hs[t]\", \"hs[t + 1]\", \"acts[1]\")")
        if not (isinstance(grad, str) and grad.isidentifier()):
            raise ValueError(f"hidden: the gradient of {key!r} must be a variable's name (the one "
                             f"the backward pass assigns dE/d{key} to), not {grad!r}")
    return tuple(sorted(hidden.items()))


def _len_params(fn) -> tuple:
    """The parameters whose ``len(...)`` the function takes (candidates for a loop bound that
    dict keys depend on)."""
    import ast
    from .frontend.parse import parse_function
    tree = parse_function(fn)[0]
    params = {a.arg for a in tree.args.args}
    return tuple(sorted({n.args[0].id for n in ast.walk(tree) if isinstance(n, ast.Call)
                         and isinstance(n.func, ast.Name) and n.func.id == "len"
                         and len(n.args) == 1 and isinstance(n.args[0], ast.Name)
                         and n.args[0].id in params}))


def _may_take_statics(fn) -> bool:
    """The function reads a parameter as a dict (``p['W1']``, ``p.items()``), compares one with
    None, or has a parameter whose default is None, a string or a bool."""
    import ast
    from .frontend.parse import parse_function
    try:
        tree = parse_function(fn)[0]
    except Exception:
        return False
    params = {a.arg for a in tree.args.args}
    if any(isinstance(d, ast.Constant) and isinstance(d.value, (str, bool, type(None)))
           for d in tree.args.defaults):
        return True
    from .frontend import names as N
    for n in ast.walk(tree):
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and \
                n.value.id in params and n.attr not in N.ATTRIBUTES and n.attr not in N.METHODS \
                and not hasattr(np.ndarray, n.attr) and not hasattr(list, n.attr):
            return True  # self.weights, dense1.forward(...), bn_param.get(...): an object
        if isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name) and \
                n.value.id in params and not isinstance(n.slice, (ast.Slice, ast.Tuple)):
            if isinstance(n.slice, (ast.JoinedStr, ast.BinOp)) or \
                    isinstance(n.slice, ast.Constant) and isinstance(n.slice.value, str):
                return True
        if isinstance(n, ast.Compare) and any(isinstance(o, (ast.Is, ast.IsNot)) for o in n.ops) \
                and any(isinstance(c, ast.Constant) and c.value is None for c in n.comparators):
            return True
    return False


def _rank(x):
    """The part of an argument's type that the generated code depends on (fast path first)."""
    t = type(x)
    if t is np.ndarray:
        return x.ndim
    if t is float or t is int:
        return 0
    if (t is list or t is tuple) and x and all(type(e) is np.ndarray for e in x):
        nd = {e.ndim for e in x}
        if len(nd) == 1:
            return ("list", nd.pop())
    return type_of_value(x)


_F64 = np.dtype(np.float64)


def _fast_arg(x):
    """(x as the compiled code takes it, its rank key) when no conversion is needed, else None."""
    t = type(x)
    if t is np.ndarray:
        return (x, x.ndim) if x.dtype is _F64 and x.flags.c_contiguous else None
    if t is list or t is tuple:
        nd = -1
        for e in x:
            if type(e) is not np.ndarray or e.dtype is not _F64 or not e.flags.c_contiguous \
                    or (nd != -1 and e.ndim != nd):
                return None
            nd = e.ndim
        if nd == -1:
            return None
        return (x if t is tuple else tuple(x)), ("list", nd)
    if t is float:
        return x, 0
    return None


def _fast_direction(p, d):
    """The direction when it is already shaped and typed like its parameter, else None."""
    tp = type(p)
    if tp is np.ndarray:
        return d if type(d) is np.ndarray and d.shape == p.shape and d.dtype is _F64 \
            and d.flags.c_contiguous else None
    if tp is list or tp is tuple:
        td = type(d)
        if (td is not list and td is not tuple) or len(d) != len(p):
            return None
        for pi, di in zip(p, d):
            if type(di) is not np.ndarray or di.shape != pi.shape or di.dtype is not _F64 \
                    or not di.flags.c_contiguous:
                return None
        return d if td is tuple else tuple(d)
    if tp is float and type(d) is float:
        return d
    return None


def _unrolled_call(target, n: int):
    """``target`` called with ``n`` positional values, each list passed on as a tuple of its
    items (Numba matches and unboxes a tuple of arrays; a list would be reflected), written
    out for these ``n`` rather than looped over: ``_dispatch`` is the whole Python cost of a
    call, and the loop (a comprehension's frame, a list, an unpacking) was half of it, about
    0.5 µs of an 18 µs Hv at the benchmark's smallest size."""
    names = [f"a{k}" for k in range(n)]
    passed = ", ".join(f"tuple({a}) if type({a}) is list else {a}" for a in names)
    namespace = {"target": target}
    exec(f"def call({', '.join(names)}):\n    return target({passed})\n", namespace)
    return namespace["call"]


def _changed_global(captured):
    """The first (globals dict, name, old value, new value) of ``captured`` whose module-level
    value is no longer the one compiled in, or None."""
    for d, n, old in captured:
        new = d.get(n, _NO_V)
        if new is not old and (type(new) is not type(old) or new != old):
            return d, n, old, new
    return None


def _short(x) -> str:
    """A value for a message: its repr, or what it is for arrays and long reprs."""
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape}"
    text = repr(x)
    return text if len(text) <= 60 else f"a {type(x).__name__}"


def _same(given, passed) -> bool:
    """Whether the checked path passed on the caller's own objects (a list as a tuple of
    them): then Numba would have matched the call, and ``_dispatch``'s back-off can end."""
    if given is passed:
        return True
    if isinstance(given, (list, tuple)) and isinstance(passed, (list, tuple)):
        return len(given) == len(passed) and all(_same(a, b) for a, b in zip(given, passed))
    return False


def _as_arg(x, pname, fname, is_param):
    if type(x) is np.ndarray and x.flags.c_contiguous and x.dtype == np.float64:
        return x
    if not isinstance(x, np.ndarray) and hasattr(x, "__array__") and not isinstance(x, (list, tuple)):
        try:  # an array of another library (JAX, PyTorch on the CPU, ...): as NumPy's
            x = np.asarray(x)
        except Exception:
            raise RopCallError(f"{fname}.hvp: `{pname}` is a {type(x).__module__}."
                               f"{type(x).__name__} that NumPy cannot read; pass "
                               f"np.asarray({pname}) (on the CPU)") from None
    if isinstance(x, np.ndarray) and x.ndim == 0 and x.dtype.kind in "fiub":
        x = x.item() if x.dtype.kind != "f" else float(x)  # a 0-d array is its number
    if isinstance(x, list):
        return tuple(_as_arg(e, pname, fname, is_param) for e in x)
    if isinstance(x, tuple):
        return tuple(_as_arg(e, pname, fname, is_param) for e in x)
    if isinstance(x, np.ndarray):
        if is_param and x.dtype.kind != "f":
            raise RopCallError(f"{fname}.hvp: parameter `{pname}` has dtype {x.dtype}; "
                               "parameters differentiated by rop must be floating point "
                               "(use .astype(np.float64))")
        if x.dtype.kind == "f":  # float64 throughout: one type per rank for Numba's lists
            return np.ascontiguousarray(x, dtype=np.float64)
        return np.ascontiguousarray(x)
    if is_param and isinstance(x, (complex, np.complexfloating)):
        raise RopCallError(f"{fname}.hvp: parameter `{pname}` is complex; parameters "
                           "differentiated by rop must be floating point")
    if is_param and isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return float(x)
    return x


def _check_direction(p, d, pname, fname):
    """The direction for a parameter, shaped like it (finiteness is checked in the compiled
    code, see ``rt.check_direction``)."""
    fast = _fast_direction(p, d)
    if fast is not None:
        return fast
    if not isinstance(d, (np.ndarray, list, tuple)) and hasattr(d, "__array__"):
        d = np.asarray(d)  # a direction from another library
    if not isinstance(p, (np.ndarray, list, tuple)) and hasattr(p, "__array__"):
        p = np.asarray(p)
    if isinstance(p, np.ndarray) and p.ndim == 0:
        p = float(p)
    if isinstance(p, (list, tuple)):
        if not isinstance(d, (list, tuple)) or len(d) != len(p):
            raise RopCallError(f"{fname}.hvp: the direction for `{pname}` must be a list of "
                               f"{len(p)} arrays shaped like its layers")
        return tuple(_check_direction(pi, di, f"{pname}[{i}]", fname)
                     for i, (pi, di) in enumerate(zip(p, d)))
    if isinstance(p, np.ndarray):
        d_arr = np.asarray(d)
        if d_arr.shape != p.shape:
            raise RopCallError(f"{fname}.hvp: the direction for `{pname}` has shape {d_arr.shape}, "
                               f"expected {p.shape} (the shape of `{pname}`)")
        if d_arr.dtype.kind not in "fi" or d_arr.dtype.kind == "c":
            raise RopCallError(f"{fname}.hvp: the direction for `{pname}` has dtype {d_arr.dtype}; "
                               "expected a real floating-point array")
        return np.ascontiguousarray(d_arr, dtype=np.float64)
    if isinstance(d, (np.ndarray, list, tuple)) and np.ndim(d) != 0:
        raise RopCallError(f"{fname}.hvp: `{pname}` is a scalar, so its direction must be a "
                           f"scalar, not shape {np.shape(d)}")
    if isinstance(d, (complex, np.complexfloating)) or not isinstance(d, (int, float, np.number)):
        raise RopCallError(f"{fname}.hvp: the direction for `{pname}` must be a real number, "
                           f"not {type(d).__name__}")
    return float(d)


_NO_MATCH = "No matching definition for argument type(s)"  # Numba's dispatcher, compiling off


def _source_line(exc, c):
    """`` at file.py:LINE (`source line`)`` for the generated line an exception came from,
    read off the provenance comment above it; '' if the traceback does not reach it."""
    gen = os.path.basename(c.path)
    tb, lineno = exc.__traceback__, None
    while tb is not None:
        if os.path.basename(tb.tb_frame.f_code.co_filename) == gen:
            lineno = tb.tb_lineno
        tb = tb.tb_next
    if lineno is None:
        return ""
    src = c.source.splitlines()
    for k in range(min(lineno, len(src)) - 1, -1, -1):
        m = re.match(r"\s*# (\S+:\d+): (.*)$", src[k])
        if m:
            return f" at {m.group(1)} (`{m.group(2)}`)"
    return ""


def _locate(exc, c, call):
    """(message, where) of a failure in the generated code, at the user's source line.  Numba
    reports neither the line nor NumPy's message: the same generated code runs again as
    Python (the dispatcher's ``py_func``) on the same arguments to find them."""
    where = _source_line(exc, c)
    if where or call is None:
        return None, where
    py = getattr(c.hvp, "py_func", None)
    if py is None:
        return None, ""
    try:
        py(*call)
    except Exception as again:  # the same failure, now with NumPy's words and a traceback
        text = str(again).strip().splitlines()
        return (text[0] if text else type(again).__name__), _source_line(again, c)
    return None, ""


def _runtime_error(exc, name, c, wrt=(), args=None, call=None):
    from .runtime.checks import UserCheck
    if isinstance(exc, (UserCheck, MemoryError)):  # the user's own assert / raise; and a
        return exc                                  # MemoryError stays one
    msg = str(exc).strip().splitlines()
    head = msg[0] if msg else type(exc).__name__
    if isinstance(exc, NonFinite):
        pname = wrt[exc.args[0]] if exc.args and exc.args[0] < len(wrt) else "a parameter"
        return RopCallError(f"{name}.hvp: `{pname}` or its direction contains NaN or Inf")
    try:
        import numba.core.errors as ne
        if isinstance(exc, ne.TypingError):
            return _typing_error(exc, name, c, args or {})
    except ImportError:  # pragma: no cover
        pass
    if isinstance(exc, ValueError) and ("shape" in str(exc) or "align" in str(exc)
                                         or "broadcast" in str(exc) or "dimension" in str(exc)):
        numpy_msg, where = _locate(exc, c, call)
        return RopCallError(f"{name}.hvp: incompatible shapes{where}: {numpy_msg or head}. "
                            f"Generated file: {c.path}")
    if isinstance(exc, (IndexError, ZeroDivisionError, KeyError, TypeError, ValueError)):
        numpy_msg, where = _locate(exc, c, call)
        if where:
            return RopCallError(f"{name}.hvp: {type(exc).__name__}{where}: {numpy_msg or head}. "
                                f"Generated file: {c.path}")
    return RopCallError(f"{name}.hvp failed inside the generated code ({type(exc).__name__}: "
                        f"{head}). Generated file: {c.path}")


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _numba_kind(t: str) -> str:
    """A Numba type as a phrase: 'array(float64, 2d, C)' -> 'a 2-d array'."""
    m = re.match(r"array\(\w+, (\d)d", t)
    if m:
        return f"a {m.group(1)}-d array"
    if re.match(r"u?int\d+|float\d+|bool", t):
        return "a number"
    return f"`{t}`"


def _typing_error(exc, name, c, args) -> RopCallError:
    """Numba's typing report, turned into what the user can act on: the reason Numba gives
    last (the innermost), the user's source line it happened on (from the provenance comment
    above the generated line), and the arguments that are not float64 arrays."""
    text = _ANSI.sub("", str(exc)).strip()
    reasons = re.findall(r"TypingError: (.+)", text)
    sigs = re.findall(r">>> (.+)", text)
    if reasons:
        reason = reasons[-1].strip()
    elif sigs:
        reason = f"Numba has no implementation of {sigs[-1].strip()}"
    else:
        reason = text.splitlines()[0] if text else "typing failed"
    explain = ""
    unify = re.search(r"Cannot unify (\S+(?: \S+)*?) and (.+?) for '(?:R_)?([A-Za-z_]\w*?)(?:\.\d+)?'",
                      text)
    if unify:  # Numba's reason is then the second-to-last line; say it in the user's terms
        a, b, var = unify.groups()
        reason = f"`{var}` is {_numba_kind(a)} on one path and {_numba_kind(b)} on another"
        if "array" in a + b and ("int" in a + b or "float64" in (a, b)):
            explain = (" A number that becomes an array, as in `s = 0` before a loop that adds "
                       "arrays to it (Python's sum(...) of arrays also starts from 0), runs in "
                       "NumPy but not in Numba, which gives a variable one type: start from an "
                       "array, e.g. `s = np.zeros_like(x)`.")
    where = ""
    gen = os.path.basename(c.path)
    lines = [int(n) for f, n in re.findall(r'File "([^"]+)", line (\d+)', text)
             if os.path.basename(f) == gen]
    if lines:
        src = c.source.splitlines()
        for k in range(min(lines[-1], len(src)) - 1, -1, -1):
            m = re.match(r"\s*# (\S+:\d+): (.*)$", src[k])
            if m:
                where = f" at {m.group(1)} (`{m.group(2)}`)"
                break
    odd = [f"`{p}` is an array of {x.dtype}" for p, x in args.items()
           if isinstance(x, np.ndarray) and x.dtype != np.float64]
    odd += [f"`{p}` is a sequence of {len(x)} numbers (passed on as a tuple)"
            for p, x in args.items()
            if isinstance(x, tuple) and x and not isinstance(x[0], np.ndarray)]
    hint = ""
    if odd:
        hint = (f" Note: {'; '.join(odd)}. rop passes floating-point arrays as float64, leaves "
                "integer arrays as they are (they may be indices) and lists as tuples (they may "
                "be per-layer lists): pass data as a float64 array, e.g. "
                "np.asarray(x, dtype=np.float64).")
    details = "\n".join(text.splitlines()[:30])
    return RopCallError(
        f"{name}.hvp: Numba could not compile the generated code for these arguments: "
        f"{reason}{where}.{explain}{hint} Generated file: {c.path}; mode='python' runs the same code "
        f"without Numba.\nNumba's report:\n{details}")
