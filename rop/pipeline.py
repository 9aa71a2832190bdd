"""The compiler, as one list of passes over a compilation unit.

    parse + validate (grammar/, frontend/parse.py) → lower to IR (frontend/lower.py)
    → PASSES: infer_ranks → fold_ranks → inplace → memory → rtransform → co_converge → dce
              → release → emit
    → write to the cache → jit (or plain Python)

Each pass is a function of a :class:`Unit`, listed in ``PASSES``; :func:`run_passes` runs
them in order and checks the IR after each (ir/verify.py).  Every pass reads and writes one
IR language: three-address statements on the rule table's entries, the R-statements too (the
R-transform flattens each rule's formula through ir/builder.py); only ``emit`` prints Python.  Set ``ROP_DUMP=pass1,pass2``
(or ``all``) to print the IR after the named passes (``lower`` is the lowered IR).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import __version__
from .errors import RopCallError
from .backend.loader import index_lookup, index_store, load_module, write_module
from .frontend.lower import lower
from .ir import shapes
from .ir.storage import Storage, check_writes
from .ir.nodes import Assign, Function
from .rules.table import RULES

# The passes' modules, imported on the first compile in a process (_load_compiler): a call
# whose generated module is in the cache needs only the lowering, the cache key and the
# loader, and importing the rest cost it ~0.1-0.2 s.  ``pipeline.r_transform`` and the others
# read as module attributes (tests replace some) and load them on first access.
_LAZY = {
    "Emitter": ("backend.emit", "Emitter"),
    "fold_dtypes": ("ir.dtypes", "fold_dtypes"),
    "fold": ("ir.fold", None),
    "passes": ("ir.passes", None),
    "inplace_updates": ("ir.inplace", "inplace_updates"),
    "release_dead_slots": ("ir.release", "release_dead_slots"),
    "lists_of_unlike_items_as_names": ("ir.unify", "lists_of_unlike_items_as_names"),
    "numbers_to_arrays": ("ir.unify", "numbers_to_arrays"),
    "sequences_as_index_arrays": ("ir.unify", "sequences_as_index_arrays"),
    "verify": ("ir.verify", "verify"),
    "co_converge_loops": ("transforms.relaxation", "co_converge_loops"),
    "damped_of": ("transforms.gauss_newton", "damped_of"),
    "NotBatchable": ("transforms.batch", "NotBatchable"),
    "batch": ("transforms.batch", "batch"),
    "linearize": ("transforms.linearize", "linearize"),
    "r_transform": ("transforms.rtransform", "r_transform"),
}


if TYPE_CHECKING:  # the names _LAZY provides, for readers and linters
    from .backend.emit import Emitter
    from .ir import fold, passes
    from .ir.dtypes import fold_dtypes
    from .ir.inplace import inplace_updates
    from .ir.release import release_dead_slots
    from .ir.unify import (lists_of_unlike_items_as_names, numbers_to_arrays,
                           sequences_as_index_arrays)
    from .ir.verify import verify
    from .transforms.batch import NotBatchable, batch
    from .transforms.gauss_newton import damped_of
    from .transforms.linearize import linearize
    from .transforms.relaxation import co_converge_loops
    from .transforms.rtransform import r_transform


def _load_compiler():
    """Import the passes' modules into this module's namespace (a name already set, e.g.
    replaced by a test, is kept)."""
    import importlib
    g = globals()
    for name, (module, attr) in _LAZY.items():
        if name not in g:
            m = importlib.import_module("." + module, __package__)
            g[name] = m if attr is None else getattr(m, attr)


def __getattr__(name):
    if name in _LAZY:
        _load_compiler()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class Compiled:
    source: str
    path: str
    module: object
    primal: object   # the original function, compiled
    hvp: object      # (args..., R_args...) -> (outputs, R{outputs})
    ir: object       # the R-transformed IR
    graph_fn: object  # builds the networkx dataflow graph on demand
    out_struct: object = None  # how the results hold dicts (frontend/statics.py)
    linearize: object = None  # (args...) -> (outputs, tape): the primal part, once
    tangent: object = None    # (args..., *tape, R_args...) -> R{outputs}: per direction
    tangent_k: object = None  # (args..., *tape, R_args stacked..., k) -> R{outputs}, k at once
    batch_reason: str = ""    # why there is no tangent_k (transforms/batch.py)
    plain: bool = True  # no static arguments: the generated function takes the user's


def _dump(name, what):
    """Print the IR (or, after ``emit``, the source) when ``ROP_DUMP`` names this pass."""
    want = [w for w in os.environ.get("ROP_DUMP", "").split(",") if w]
    if not want:
        return
    unknown = [w for w in want if w not in ("all", "lower") + PASS_NAMES]
    if unknown:
        raise RopCallError(f"ROP_DUMP: no pass named {unknown[0]!r}; the passes are: lower, "
                         + ", ".join(PASS_NAMES))
    if "all" in want or name in want:
        from .ir.printer import format_function
        print(f"--- IR after {name} ---")
        print(what if isinstance(what, str) else format_function(what))


def _registered_used(ir) -> set:
    from .ir.nodes import walk as _walk
    return {s.prim for s in _walk(ir.body) if isinstance(s, Assign)
            and getattr(RULES.get(s.prim), "kind", "") == "registered"}


def externs_for(ir) -> dict:
    """Functions the generated module calls but does not define (registered primitives and
    the helpers their rules name)."""
    out = {}
    for n in _registered_used(ir):
        out.update(RULES[n].extern)
    return out


def prims_for(ir) -> dict:
    return {**RULES, **{p.name: p for p, _ in ir.helpers.values()}}


def _index_key(ir, wrt, param_types) -> str:
    """What the generated code depends on: the lowered IR (helpers included), wrt, the ranks."""
    import hashlib
    from .ir.printer import format_function
    from .backend.loader import compiler_digest
    parts = [compiler_digest(), format_function(ir), repr(tuple(wrt)), repr(sorted(param_types.items()))]
    parts += [format_function(h) + repr(p.formula) for p, h in ir.helpers.values()]
    parts += [f"{n}={RULES[n].formula}" for n in sorted(_registered_used(ir))]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


def compile_hvp(fn, wrt, param_types: dict, mode: str = "numba", relaxation: str = "auto",
                check_finite: bool = True, statics=None, output=None, hidden=()) -> Compiled:
    """Compile R{fn} for these ranks (``param_types``, by IR parameter) and static arguments
    (frontend/statics.py); ``wrt`` names IR parameters (a dict's values, one by one).
    ``output`` names the network's output for the Gauss-Newton product (R cut after it,
    transforms/rtransform.py), None for Hv; ``hidden`` the (hidden value, its gradient's name)
    pairs of structural damping (transforms/gauss_newton.py)."""
    ir = lower(fn, statics=statics)
    _dump("lower", ir)
    key = _index_key(ir, wrt, param_types) + relaxation[0] + "fc"[check_finite] + \
        (f"|G:{output}" if output else "") + (f"|S:{hidden!r}" if hidden else "")
    hit = index_lookup(key)
    if hit is not None and not os.environ.get("ROP_DUMP"):
        path, source = hit
        mod = load_module(path, mode, externs_for(ir))
        c = Compiled(source, path, mod, getattr(mod, fn.__name__),
                     getattr(mod, fn.__name__ + ("_gvp" if output else "_hvp")), None,
                     lambda: _rebuild(fn, wrt, param_types, statics=statics,
                                      output=output, hidden=hidden).graph_fn())
    else:
        c = _compile(fn, ir, wrt, param_types, mode, relaxation, check_finite, output, hidden)
        index_store(key, c.path)
    c.out_struct, c.plain = ir.out_struct, not statics
    return c


def compile_linearized(fn, wrt, param_types, mode: str = "numba", check_finite: bool = True,
                       statics=None, output=None, hidden=()) -> Compiled:
    """R{fn} split into ``<name>_linearize`` (the primal part, run once at fixed arguments,
    returning the outputs and the tape) and ``<name>_tangent`` (the R-statements alone, run
    per direction from the tape): transforms/linearize.py.  Raises ``NotLinearizable`` when
    the function has a part the split does not handle."""
    ir = lower(fn, statics=statics)
    kind = "_gvp" if output else "_hvp"
    key = _index_key(ir, wrt, param_types) + "a" + "fc"[check_finite] + \
        (f"|G:{output}" if output else "") + (f"|S:{hidden!r}" if hidden else "") + "|L2"
    hit = index_lookup(key)
    if hit is not None and not os.environ.get("ROP_DUMP"):
        path, source = hit
        mod = load_module(path, mode, externs_for(ir))
        rfn = None
    else:
        _load_compiler()
        ir = copy.deepcopy(ir)
        u = Unit(fn, ir, tuple(wrt), param_types, "auto", check_finite, output, hidden,
                 namer=ir.namer)
        for p in PASSES[:-1]:
            p(u)
        lin, tan, _ = linearize(u.rfn, u.types, u.namer, fn.__name__ + kind)
        try:
            many = batch(tan, u.types, u.namer, tan.name + "_k", primal=u.rfn)
        except NotBatchable as exc:
            many = str(exc)
        u.linearized = (lin, tan, many)
        emit(u)
        source = u.source
        path = write_module(source, f"{fn.__name__}{kind}_lin")
        index_store(key, path)
        mod = load_module(path, mode, externs_for(ir))
        rfn = u.rfn
    c = Compiled(source, path, mod, getattr(mod, fn.__name__), None, rfn, None,
                 linearize=getattr(mod, fn.__name__ + kind + "_linearize"),
                 tangent=getattr(mod, fn.__name__ + kind + "_tangent"),
                 tangent_k=getattr(mod, fn.__name__ + kind + "_tangent_k", None),
                 batch_reason=getattr(mod, "__rop_not_batched__", ""))
    c.out_struct, c.plain = ir.out_struct, not statics
    return c


def _rebuild(fn, wrt, param_types, relaxation="auto", statics=None, output=None, hidden=()):
    return _compile(fn, lower(fn, statics=statics), wrt, param_types, "python", relaxation,
                    output=output, hidden=hidden)  # graph only


@dataclass
class Unit:
    """One compilation: what every pass reads and writes, in one place (no attributes
    attached to functions).  ``ir`` is the primal IR, rewritten by the passes before the
    R-transform; ``rfn`` the R-transformed function; ``primal`` the primal as emitted."""

    fn: object
    ir: Function
    wrt: tuple
    param_types: dict
    relaxation: str = "auto"
    check_finite: bool = True
    output: str = None  # for the Gauss-Newton product: where the loss begins
    hidden: tuple = ()  # structural damping: (hidden value, the name of its gradient) pairs
    linearized: tuple = None  # (primal part, tangent part) when split (transforms/linearize.py)
    prims: dict = None
    types: dict = None
    namer: object = None
    storage: Storage = None
    rfn: Function = None
    primal: Function = None
    source: str = None


# ----------------------------------------------------------------------------- the passes

def infer_ranks(u: Unit):
    """The rank of every value, for this call signature (ir/shapes.py)."""
    u.prims = prims_for(u.ir)
    u.types = shapes.infer(u.ir, u.param_types, u.prims)


def fold_ranks(u: Unit):
    """``x.ndim``, ``len(x.shape)`` and the tests made of them are constants of this
    specialisation: only the ``if`` branch they choose is kept (ir/fold.py); so is ``x.dtype``
    of a floating value, float64 (ir/dtypes.py), and ``+`` of two lists is concatenation.  A
    variable that is a number literal on one path and a rank-k array on another (``s = 0``
    then ``s = s * g + r[t]``) starts as an all-ones-shaped array instead, a list of integers
    indexing an array becomes an index array, and a list of unlike items filled and read in
    straight-line code one name per slot (ir/unify.py)."""
    fold_dtypes(u.ir, u.wrt, u.prims)
    if fold.concat_lists(u.ir, u.types):
        u.types = shapes.infer(u.ir, u.param_types, u.prims)
    changed = fold.fold_ranks(u.ir, u.types)
    changed = numbers_to_arrays(u.ir, u.types, u.prims) or changed
    changed = sequences_as_index_arrays(u.ir, u.types, u.namer) or changed
    changed = lists_of_unlike_items_as_names(u.ir, u.types, u.prims, u.namer) or changed
    if changed:
        u.types = shapes.infer(u.ir, u.param_types, u.prims)


def inplace(u: Unit):
    """``a op= x`` on an array another name (or the caller) may hold becomes a write into its
    storage (ir/inplace.py)."""
    inplace_updates(u.ir, u.types, Storage(u.ir, u.types), u.namer)
    u.ir.temps = set(u.ir.temps) | u.namer.temp_names


def memory(u: Unit):
    """NumPy's memory model (ir/storage.py): storage classes; writes into an argument's memory
    or into a view a list holds as a copy are refused at the user's line."""
    u.storage = Storage(u.ir, u.types)
    check_writes(u.ir, u.storage)


def _cut_of(output: str, ir) -> tuple:
    """``output`` (a variable, or a list's slot ``acts[L]`` / ``acts[-1]``) as IR names: (the
    variable or list, None or the slot's index operand)."""
    import ast as _ast
    from .ir.nodes import Const, Var
    node = _ast.parse(output, mode="eval").body
    if isinstance(node, _ast.Name):
        return ir.scope.get(node.id, node.id), None
    base = ir.scope.get(node.value.id, node.value.id)
    i = node.slice
    if isinstance(i, _ast.Constant):
        return base, Const(i.value)
    if isinstance(i, _ast.UnaryOp):  # acts[-1]
        return base, Const(-i.operand.value)
    return base, Var(ir.scope.get(i.id, i.id))


def rtransform(u: Unit):
    """R{·} statement by statement, list-slot activity inside it (transforms/); each rule's
    formula becomes three-address R-statements (ir/builder.py)."""
    cut = _cut_of(u.output, u.ir) if u.output else None
    hidden = damped_of(u.hidden, u.ir) if u.hidden else ()
    u.rfn = r_transform(copy.deepcopy(u.ir), u.wrt, u.types, u.prims, u.namer, u.relaxation,
                        storage=u.storage, cut=cut, hidden=hidden)
    for v, r in u.rfn.rnames.items():
        u.types.setdefault(r, u.types.get(v))


def co_converge(u: Unit):
    """Relaxations (``while change > tol ...``): after the loop, the R-update alone iterates
    with the primal state fixed until R{state} converges too (transforms/relaxation.py).
    ``relaxation="off"`` leaves every loop a path."""
    if u.relaxation == "auto":
        co_converge_loops(u.rfn, u.ir, u.types, u.prims, u.namer)


def dce(u: Unit):
    """Dead statements out of both functions; writes are live through any alias."""
    u.rfn = passes.dce(u.rfn, u.types)
    u.primal = passes.dce(copy.deepcopy(u.ir), u.types)


def release(u: Unit):
    """List slots no later statement reads are given back (ir/release.py)."""
    u.rfn = release_dead_slots(u.rfn, u.types)
    u.primal = release_dead_slots(u.primal, u.types)


def emit(u: Unit):
    """Readable Python: temporaries folded back into their readers, sums of products as
    rt.gemm (backend/gemm.py), the call checks, one provenance comment per source line
    (backend/emit.py)."""
    ir, rfn = u.ir, u.rfn
    temps = set(ir.temps) | {r for v, r in rfn.rnames.items() if v in ir.temps} | rfn.temps
    temps |= {n for n in u.namer.taken if n not in ir.user_names and n.endswith("_new")}
    u.source = emit_module(u.fn, ir, u.primal, rfn, u.prims, u.types, temps, u.wrt,
                           u.param_types if u.check_finite else None, u.output, u.linearized)


PASSES = (infer_ranks, fold_ranks, inplace, memory, rtransform, co_converge, dce, release, emit)
PASS_NAMES = tuple(p.__name__ for p in PASSES)


def run_passes(u: Unit) -> Unit:
    """Run every pass in order; ``ROP_DUMP`` prints the IR after the named ones and the
    verifier (ir/verify.py) checks the IR after each, naming the pass that broke it."""
    _load_compiler()
    for p in PASSES:
        p(u)
        _dump(p.__name__, u.source if p is emit else u.rfn if u.rfn is not None else u.ir)
        if p is not emit:
            verify(u.ir, p.__name__)
        if p in (dce, release):  # the R-transform leaves zeros for values first bound in a
            verify(u.rfn, p.__name__)  # loop before the loop, for DCE to remove
    return u


def _compile(fn, ir, wrt, param_types, mode, relaxation="auto", check_finite=True,
             output=None, hidden=()) -> Compiled:
    # the lowered IR is cached on the function: the passes work on a copy
    ir = copy.deepcopy(ir)
    u = run_passes(Unit(fn, ir, tuple(wrt), param_types, relaxation, check_finite, output,
                        hidden, namer=ir.namer))
    path = write_module(u.source, f"{fn.__name__}_{'gvp' if output else 'hvp'}")
    mod = load_module(path, mode, externs_for(ir))
    rfn = u.rfn
    return Compiled(u.source, path, mod, getattr(mod, fn.__name__),
                    getattr(mod, fn.__name__ + ("_gvp" if output else "_hvp")), rfn,
                    lambda: passes.dataflow_graph(rfn))


def call_checks(wrt, rnames, param_types, namer_taken) -> list[str]:
    """The hvp's first lines: each direction shaped like its parameter, both finite (one loop
    in Numba).  With them the wrapper's common call needs no Python-level checks."""
    lines = ["    # directions shaped like their parameters; parameters and directions finite"]

    def counter(depth):  # one loop variable per nesting level, clear of the user's names
        k = f"k{depth}" if depth else "k"
        while k in namer_taken:
            k += "_"
        return k

    def check(x, rx, t, i, pad, depth=0):
        if isinstance(t, tuple) and t[0] == "list":  # homogeneous: a loop
            k = counter(depth)
            lines.append(f"{pad}rt.check_length({x}, {rx}, {i})")
            lines.append(f"{pad}for {k} in range(len({x})):")
            check(f"{x}[{k}]", f"{rx}[{k}]", t[1], i, pad + "    ", depth + 1)
        elif isinstance(t, tuple) and t[0] == "tuple":  # fixed structure: one check per item
            for j, tj in enumerate(t[1]):
                check(f"{x}[{j}]", f"{rx}[{j}]", tj, i, pad, depth)
        else:
            lines.append(f"{pad}rt.check_direction({x}, {rx}, {i})")

    for i, w in enumerate(wrt):  # the index names the parameter in the wrapper's error
        check(w, rnames[w], param_types.get(w), i, "    ")
    return lines


def emit_module(fn, ir, primal, rfn, prims, types, temps, wrt, param_types=None,
                output=None, linearized=None) -> str:
    _load_compiler()
    em = Emitter(prims, types, temps)
    filename = os.path.basename(ir.filename)
    suffix = "_gvp" if output else "_hvp"
    what = (f"R{{.}} along v = ({', '.join('R_' + w for w in wrt)}) -- Hv when the outputs are the "
            "gradient." if not output else
            f"R{{.}} along v = ({', '.join('R_' + w for w in wrt)}) through the output `{output}` only "
            f"(the network's curvature cut away)\n-- the Gauss-Newton product G v = J^T H_L J v when "
            "the outputs are the gradient.")
    if linearized:
        what += (f"\nLinearised: {fn.__name__}{suffix}_linearize runs the primal part once and returns "
                 f"the outputs and its tape;\n{fn.__name__}{suffix}_tangent replays the R-statements "
                 "from the tape, once per direction.")
    out = [
        f'"""R{{{fn.__name__}}}: generated by rop {__version__} from {filename}:{ir.loc.lineno}.',
        "",
        f"{fn.__name__}{suffix} returns the outputs of {fn.__name__} and their directional derivatives",
        what,
        "Each block is preceded by the source line it comes from. Do not edit: rop regenerates it.",
        '"""',
        "import numpy as np",
        "",
        "from rop import runtime as rt",
        "",
    ]
    ext = externs_for(ir)
    if ext:
        out += ["# registered primitives and the functions their R-rules call, provided by rop",
                "# at load time from the modules that define them:"]
        out += [f"#   {n}  <- {getattr(f, '__module__', '?')}.{getattr(f, '__qualname__', n)}"
                for n, f in sorted(ext.items())]
        out.append("")
    names = []
    for hname, (prim, hfn) in ir.helpers.items():
        h_types = shapes.infer(hfn, {p: None for p in hfn.params}, prims)
        hem = Emitter(prims, h_types, hfn.temps)
        out += ["", *hem.function(passes.dce(hfn), hfn.name, r_mode=False), ""]
        names.append(hfn.name)
    out += ["", *em.function(primal, fn.__name__, r_mode=False), ""]
    not_batched = None
    if linearized:
        lin, tan, many = linearized
        out += ["", *em.function(lin, lin.name, r_mode=False), ""]
        tan_lines = em.function(tan, tan.name, r_mode=False)
        if param_types is not None:
            tan_lines[1:1] = call_checks(wrt, rfn.rnames, param_types, ir.user_names)
        out += ["", *tan_lines, ""]
        names += [fn.__name__, lin.name, tan.name]
        if isinstance(many, str):
            not_batched = many
        else:  # the directions arrive checked and stacked (rop/linearized.py)
            fk, types_k = many
            emk = Emitter(prims, types_k, temps | fk.temps)
            lines_k = emk.function(fk, fk.name, r_mode=False)
            lines_k[1:1] = [f"    # {len(fk.rparams)} directions' stacks, each (K, ...) with one "
                            "slice per direction"]
            out += ["", *lines_k, ""]
            names.append(fk.name)
    else:
        hvp_lines = em.function(rfn, fn.__name__ + suffix, r_mode=True)
        if param_types is not None:
            hvp_lines[1:1] = call_checks(wrt, rfn.rnames, param_types, ir.user_names)
        out += ["", *hvp_lines, ""]
        names += [fn.__name__, fn.__name__ + suffix]
    out.append("")
    out.append(f"__rop_functions__ = {tuple(names)!r}")
    if not_batched is not None:
        out.append(f"__rop_not_batched__ = {not_batched!r}")
    relax = [(r.index, f"{os.path.basename(r.loc.filename)}:{r.loc.lineno}", r.loc.text)
             for r in rfn.relax_loops]
    out.append(f"__rop_relaxations__ = {relax!r}")
    return "\n".join(out) + "\n"
