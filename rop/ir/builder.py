"""The builder: an R-rule's formula becomes three-address IR statements.

The rule table keeps its rules as formulas (``T("R_a @ b + a @ R_b")``, reviewable line by
line against the paper); the R-transform hands each formula it gets to :class:`Builder`,
which flattens it into statements, one per operation, as JAX's rules call ``mul(g, ans)``::

    R_h = R_W @ x + W @ R_x      ->    t1 = matmul(R_W, x)          [R]
                                       t2 = matmul(W, R_x)          [R]
                                       R_h = add(t1, t2)            [R]

Each operation is mapped to a table entry through the table's own data, so an entry added
later flattens with no change here: the entry whose emit form the operation *is* (``a @ b``
is ``matmul``, ``x.T`` is ``transpose`` with ``axes=None``, ``rt.sum(x, axis, keepdims)`` is
``sum``; for a call, found by the callee it spells or its emit form calls, when the arguments
bind to its parameters and the entry prints the call as it is written).  Any other call
(``np.cos(x)``, which the entry ``cos`` prints as ``rt.cos(x)``; ``np.arange(n)``; a
registered rule's helper) is the ``call`` entry, its callee a constant operand, its rank
that of the entry the callee names; so the generated code is the formula as written.  Operands are variables, constants and static tuples and
slices; every other subexpression gets a fresh temporary, recorded in the function's temps,
which the emitter folds back into its reader, so the generated code reads as the formula does.
"""

from __future__ import annotations

import ast

from ..errors import RopInternalError
from .nodes import Assign, Const, SliceOp, TupleOp, Var

_SKIP_FIELDS = ("ctx", "kind", "type_comment")


def _const_ast(v):
    return ast.Constant(v)


def _patterns(prims) -> list:
    """(specificity, pattern, placeholder -> param, filled defaults, prim name) of every entry's
    emit forms, the most specific first: with its defaults written out (``np.sum(x)``) and with
    every parameter a placeholder (``rt.sum(x, axis, keepdims)``)."""
    out = []
    for name, prim in prims.items():
        if name in ("call", "copy") or prim.emit is None:
            continue
        out += _prim_patterns(name, prim)
    out.sort(key=lambda e: -e[0])
    return out


_PATTERNS: dict = {}  # entry name -> (the entry, its patterns): each R-transform reads them


def _prim_patterns(name, prim) -> list:
    """The patterns of one entry (see :func:`_patterns`), made once per entry object; they are
    only read (by :func:`_match`)."""
    hit = _PATTERNS.get(name)
    if hit is not None and hit[0] is prim:
        return hit[1]
    out, seen = [], set()
    variants = [{}]
    if prim.defaults:
        variants.append(dict(prim.defaults))
    if "dtype" in prim.params:  # np.asarray(x, np.float64): the dtype rop computes in
        variants.append({**prim.defaults, "dtype": "float64"})
    for fixed in variants:
        ph = {f"__p_{p}": p for p in prim.params if p not in fixed}
        env = {p: ast.Name(f"__p_{p}", ast.Load()) for p in prim.params if p not in fixed}
        env.update({p: _const_ast(v) for p, v in fixed.items()})
        try:
            pat = prim.emit(env)
        except Exception:  # an emit form that needs more than names (none today)
            continue
        if isinstance(pat, ast.Name):
            continue
        key = ast.dump(pat)
        if key in seen:
            continue
        seen.add(key)
        spec = sum(1 for n in ast.walk(pat) if not (isinstance(n, ast.Name) and n.id in ph))
        out.append((spec, pat, ph, fixed, name))
    _PATTERNS[name] = (prim, out)
    return out


def _unprinted(prim, p):
    """The value of a parameter the entry's form does not print (np.array's ``dtype`` left
    out, astype's float64): its default, or float64 for a dtype (rop computes in float64)."""
    if p in prim.defaults:
        return Const(prim.defaults[p])
    return Const("float64" if p == "dtype" else None)


def _match(pat, node, ph, binds) -> bool:
    if isinstance(pat, ast.Name) and pat.id in ph:
        if pat.id in binds:
            return ast.dump(binds[pat.id]) == ast.dump(node)
        binds[pat.id] = node
        return True
    if type(pat) is not type(node):
        return False
    for f in pat._fields:
        if f in _SKIP_FIELDS:
            continue
        a, b = getattr(pat, f, None), getattr(node, f, None)
        if isinstance(a, list):
            if not isinstance(b, list) or len(a) != len(b):
                return False
            for x, y in zip(a, b):
                if isinstance(x, ast.AST):
                    if not (isinstance(y, ast.AST) and _match(x, y, ph, binds)):
                        return False
                elif x != y:
                    return False
        elif isinstance(a, ast.AST):
            if not (isinstance(b, ast.AST) and _match(a, b, ph, binds)):
                return False
        elif a != b or type(a) is not type(b):
            return False
    return True


def _dotted(node) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


_MODULES = ("np", "rt", "math")


def _same(prim, bound, node) -> bool:
    """Whether ``prim`` emits ``node`` itself for these arguments (asts, or Const defaults)."""
    env = {p: ast.Constant(b.value) if isinstance(b, Const) else b for p, b in bound.items()}
    try:
        return ast.dump(prim.emit(env)) == ast.dump(node)
    except Exception:
        return False


class Builder:
    """Flattens formulas into R-statements (see the module docstring).  ``temps`` collects the
    temporaries made (the function's temps); ``types`` gets their ranks where the table's rank
    rules tell them."""

    def __init__(self, prims, namer, temps: set, types: dict):
        self.prims = prims
        self.namer = namer
        self.temps = temps
        self.made: set = set()  # the temporaries this builder made (a subset of ``temps``)
        self.types = types
        self.by_root: dict = {}
        for e in _patterns(prims):
            self.by_root.setdefault(type(e[1]), []).append(e)

    # ------------------------------------------------------------------ entry points
    def assign(self, target, expr, loc) -> list:
        """``target = expr`` as R-statements, the last one defining ``target``."""
        out = []
        out.append(self._stmt(target, expr, loc, out))
        return out

    def operand(self, expr, loc, out):
        """``expr`` as an operand, its operations appended to ``out`` as statements."""
        if isinstance(expr, ast.Name):
            return Var(expr.id)
        if isinstance(expr, ast.Constant):
            return Const(expr.value)
        if isinstance(expr, ast.Tuple):
            return TupleOp(tuple(self.operand(e, loc, out) for e in expr.elts))
        if isinstance(expr, ast.Slice):
            return SliceOp(*(None if p is None else self.operand(p, loc, out)
                             for p in (expr.lower, expr.upper, expr.step)))
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and \
                expr.value.id == "np" and expr.attr in ("float64", "float32", "int64", "int32"):
            return Const(expr.attr)  # a dtype (x.astype(np.float64)): its name, as lowered
        t = self.namer.temp()
        self.temps.add(t)
        self.made.add(t)
        st = self._stmt(t, expr, loc, out)
        out.append(st)
        from .shapes import _assign_type
        self.types[t] = _assign_type(st, self.types, self.prims)
        return Var(t)

    # ------------------------------------------------------------------ one operation
    def _stmt(self, target, e, loc, out) -> Assign:
        def make(prim, args, kwargs=()):
            return Assign(target, prim, tuple(args), loc, kwargs=tuple(kwargs), is_r=True)

        if isinstance(e, (ast.Name, ast.Constant, ast.Tuple)):
            return make("copy", [self.operand(e, loc, out)])
        if isinstance(e, ast.List):
            return make("list", [self.operand(x, loc, out) for x in e.elts])
        for _, pat, ph, fixed, name in self.by_root.get(type(e), ()):
            binds = {}
            if _match(pat, e, ph, binds):
                prim = self.prims[name]
                bound = {ph_name: node for ph_name, node in binds.items()}
                args = [Const(fixed[p]) if p in fixed else
                        self.operand(bound[f"__p_{p}"], loc, out) if f"__p_{p}" in bound else
                        _unprinted(prim, p) for p in prim.params]
                return make(name, args)
        if isinstance(e, ast.Call):
            return self._call(make, e, loc, out)
        raise RopInternalError(f"the builder has no table entry for `{ast.unparse(e)}` "
                               "(an R-rule's formula); this is a bug in rop")

    def _call(self, make, e, loc, out):
        from ..rules.table import bind_call, entry_called
        args, kwargs = list(e.args), [(k.arg, k.value) for k in e.keywords]
        callee = _dotted(e.func)
        if isinstance(e.func, ast.Attribute) and (callee is None or
                                                  callee.split(".")[0] not in _MODULES):
            # a method: the entry spelling ``.name``, the receiver its first argument
            prim = entry_called("." + e.func.attr)
            args = [e.func.value] + args
            callee = None
        else:
            prim = entry_called(callee) if callee is not None else None
        bound = bind_call(prim, args, kwargs) if prim is not None else None
        if bound is not None and callee is not None and not _same(prim, bound, e):
            bound = None  # the entry prints the call otherwise (np.cos as rt.cos): keep it
        if bound is not None and prim.name in self.prims:
            return make(prim.name, [b if isinstance(b, Const) else self.operand(b, loc, out)
                                    for b in (bound[p] for p in prim.params)])
        if callee is None:
            raise RopInternalError(f"the builder cannot call `{ast.unparse(e.func)}` (in an "
                                   f"R-rule's formula `{ast.unparse(e)}`); this is a bug in rop")
        ops = [Const(callee)] + [self.operand(a, loc, out) for a in args]
        kw = [(k, self.operand(v, loc, out)) for k, v in kwargs]
        return make("call", ops, kw)


# functions a formula may call whose result can be (a view of) their first argument
_VIEW_CALLS = frozenset({"rt.broadcast_as", "rt.reshape", "np.reshape", "np.transpose",
                         "np.ravel", "np.asarray", "np.squeeze", "np.expand_dims",
                         "np.atleast_1d", "np.atleast_2d"})
_VIEW_METHODS = frozenset({"reshape", "ravel", "transpose", "squeeze", "view", "swapaxes"})


def expr_sources(expr) -> tuple[set, set]:
    """(names the value of a formula may *be* or view, names whose *elements* it may hold as
    elements), read off a rule's formula before it is built: the R-transform copies an R-value
    that may be another's when a write may reach either (rtransform ``_own_memory``).
    Arithmetic makes fresh arrays; a name, a subscript, ``.T``, a reshape or
    ``rt.broadcast_as`` may not."""
    direct, elems = set(), set()

    def visit(e, into):
        if isinstance(e, ast.Name):
            into.add(e.id)
        elif isinstance(e, ast.Subscript):
            visit(e.value, into)
        elif isinstance(e, ast.Attribute):
            if e.attr in ("T", "real", "flat") or not _dotted(e):
                visit(e.value, into)
        elif isinstance(e, ast.Call):
            fname = _dotted(e.func) or ""
            if fname in _VIEW_CALLS and e.args:
                visit(e.args[0], into)
            elif isinstance(e.func, ast.Attribute) and e.func.attr in _VIEW_METHODS \
                    and fname not in _VIEW_CALLS and not fname.startswith(("np.", "rt.", "math.")):
                visit(e.func.value, into)
        elif isinstance(e, ast.IfExp):
            visit(e.body, into)
            visit(e.orelse, into)
        elif isinstance(e, (ast.List, ast.Tuple)):
            for elt in e.elts:
                visit(elt, elems)
    visit(expr, direct)
    return direct, elems
