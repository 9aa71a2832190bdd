"""The Gauss-Newton product: R{backprop} with the network's own curvature cut away.

Schraudolph's G v = Jᵀ H_L J v (Martens' Hessian-free curvature) is what R{·} of a
hand-written backprop gives when, once the network's output z is computed (R{z} = J v), every
later value takes its R only *through z*: the loss derivative's R is H_L J v, and the backward
pass carries it back with the parameters and every other forward value held fixed.  No new
rules and no second pass: the R-transform (transforms/rtransform.py) runs as for H v, and at
the top-level statement that finishes z its active set is cut down to z alone (a list output
keeps its slots; a slot output ``acts[L]`` gets an R-list that is zero except that slot).
Activity then does the rest, through loops, branches, lists, helpers and dicts: terms made of
the forward values' R (the σ'' terms, Vᵀδ) are structurally zero and never computed.

Refused at the user's line, because activity after the cut follows z alone: an output that is
a parameter or never bound, and a loss that reads z through another name that held it before
the cut (a list slot it was stored in, an array it is a view of).

Structural damping (Martens & Sutskever 2011; Martens' slide "put a do-not-change prior on the
hidden unit activities") adds μ/2 ‖h(θ+p) − h(θ)‖² to the quadratic model, so the product
becomes G v + μ J_hᵀ J_h v.  Both halves are already in the compiled code: J_h v is R{h} of
the forward pass (computed before the cut), and J_hᵀ is what the user's backward pass does to
the gradient of the loss with respect to h.  So the user names h and the variable holding its
gradient (``hidden={"hs[t]": "dh"}``), and on the line that assigns that gradient the
transform adds ``R{dh} += μ R{hs[t]}``: the backward pass then carries μ J_h v back to the
parameters with the loss's own term.  One line, no second pass.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from ..ir.nodes import Append, Assign, Const, SetItem, TupleOp, Var, defined_names, operand_vars, walk
from ..ir.storage import ALIAS_PRIMS
from .slots import is_token, token


def _error(loc, msg, hint):
    from ..ir.storage import _error as err
    return err(loc, msg, hint)


@dataclass(frozen=True)
class Damped:
    """One hidden value of structural damping, in IR names: ``base`` or ``base[index]``
    (``index`` an ast expression), and ``grad``, the variable the backward pass assigns the
    loss's gradient with respect to it; ``key``/``grad_text`` as the user wrote them."""

    base: str
    index: object  # ast.expr or None
    grad: str
    key: str
    grad_text: str


def damped_of(hidden, ir) -> tuple:
    """The user's ``hidden={"hs[t]": "dh"}`` pairs as IR names (``Function.scope``)."""
    out = []
    for key, grad in hidden:
        node = ast.parse(key, mode="eval").body
        ren = _Rename(ir.scope)
        if isinstance(node, ast.Name):
            base, index = ir.scope.get(node.id, node.id), None
        else:
            base = ir.scope.get(node.value.id, node.value.id)
            index = ren.visit(node.slice)
        out.append(Damped(base, index, ir.scope.get(grad, grad), key, grad))
    return tuple(out)


class _Rename(ast.NodeTransformer):
    def __init__(self, scope):
        self.scope = scope

    def visit_Name(self, node):
        return ast.Name(id=self.scope.get(node.id, node.id), ctx=ast.Load())


def damping_sites(tr, k, state) -> dict:
    """Where structural damping adds μ R{h}: for each hidden value, the one line after the cut
    that assigns its gradient's name (the id of its last IR statement there -> the R-expression
    of h, read from the forward pass's R, which the cut leaves as it was).  Refused at the
    user's line: a gradient name assigned on no line or on several (which one is the gradient
    of h?), a hidden value that does not depend on the parameters, or one rebound or written
    after the output (then R{h} of the forward pass is not what the line would read)."""
    fn = tr.fn
    after = list(walk(fn.body[k + 1:]))
    sites = {}
    for d in tr.hidden:
        assigns = [s for s in after if isinstance(s, Assign) and s.target == d.grad]
        if not assigns:
            raise _error(fn.loc, f"structural damping: `{d.grad_text}`, named as the gradient of "
                                 f"`{d.key}`, is not assigned after the output `{tr.cut[0]}`",
                         f"name the variable the backward pass assigns dE/d{d.key} to")
        lines = sorted({s.loc.lineno for s in assigns})
        if len(lines) > 1:
            second = next(s for s in assigns if s.loc.lineno == lines[1])
            raise _error(second.loc, f"structural damping: `{d.grad_text}` is assigned on lines "
                                     f"{', '.join(map(str, lines))}; rop adds μ R{{{d.key}}} on the "
                                     "line that assigns the gradient of the hidden value",
                         f"give the gradient of `{d.key}` a name of its own, assigned on one line")
        for s in after:
            if d.base in defined_names(s) or isinstance(s, (SetItem, Append)) and s.obj == d.base:
                raise _error(s.loc, f"structural damping: this changes `{d.key.split('[')[0]}` after "
                                    f"the output `{tr.cut[0]}`, so the hidden value `{d.key}` "
                                    "is no longer the forward pass's",
                             f"keep the forward pass's `{d.key.split('[')[0]}` unchanged in the "
                             "backward pass (use another name there)")
        if d.base not in state:
            raise _error(assigns[-1].loc, f"structural damping: the hidden value `{d.key}` does "
                                          "not depend on the parameters in wrt",
                         "name a hidden layer's activities or an RNN's states")
        base = ast.Name(id=tr.rname(d.base), ctx=ast.Load())
        rh = base if d.index is None else ast.Subscript(value=base, slice=d.index,
                                                       ctx=ast.Load())
        sites[id(assigns[-1])] = (rh, d)
    return sites


def damp(tr, st, active, out):
    """On the line assigning the gradient of a hidden value h: R{grad} += μ R{h} (see the
    module's docstring); from here the backward pass carries it to the parameters."""
    rh, d = tr.sites[id(st)]
    index = () if d.index is None else ast.walk(d.index)
    for n in (x.id for x in index if isinstance(x, ast.Name)):
        if n not in tr.defined:
            raise _error(st.loc, f"structural damping: `{d.key}` is read on this line, where "
                                 f"`{n}` is not bound", "name a hidden value this line can read")
    term = ast.BinOp(left=ast.Name(id=tr.mu, ctx=ast.Load()), op=ast.Mult(), right=rh)
    if st.target in active:
        term = ast.BinOp(left=ast.Name(id=tr.rname(st.target), ctx=ast.Load()), op=ast.Add(),
                         right=term)
    out.extend(tr.build(tr.rname(st.target), term, st.loc))
    active.add(st.target)
    return active


def cut_index(fn, z) -> int:
    """The top-level statement after which ``z`` holds the network's output: the last one
    binding it (a loop that builds it counts as a whole).  Refused at the user's line: an
    output that is a parameter or never bound, and a later read of another name that holds
    z's memory (a list slot or a tuple holding it): activity after the cut follows z alone,
    so the loss must read z itself."""
    err = _error
    if z in fn.params:
        raise err(fn.loc, f"output `{z}` is a parameter of {fn.name}: name the value the network "
                          "computes, where the loss begins", "e.g. output=\"y\" for `y = W2 @ h + b2`")
    k = None
    for i, st in enumerate(fn.body):
        if any(z in defined_names(s) for s in walk([st])):
            k = i
    if k is None:
        raise err(fn.loc, f"output `{z}` is not assigned in {fn.name}",
                  "name a variable of the function: the network's output, where the loss begins")
    # the names that hold z's memory before the cut: z's views and what z is a view of (a
    # list slot, an array it reshapes), and the lists and tuples z or those are stored into
    # (found from z itself: the storage classes merge a list's items)
    holders = {z}
    before = list(walk(fn.body[:k + 1]))
    while True:
        more = set()
        for s in before:
            if isinstance(s, Assign) and s.prim in ALIAS_PRIMS and s.args and \
                    isinstance(s.args[0], Var):
                if s.args[0].name in holders:
                    more.add(s.target)
                if s.target in holders:
                    more.add(s.args[0].name)
            if isinstance(s, (Append, SetItem)) and set(operand_vars(s.value)) & holders:
                more.add(s.obj)
            if isinstance(s, Assign) and (s.prim == "list" or s.prim == "copy" and isinstance(
                    s.args[0], TupleOp)) and {n for a in s.args for n in operand_vars(a)} & holders:
                more.add(s.target)
        if more <= holders:
            break
        holders |= more
    _loss_inside(fn, k, z, holders)
    bound_before = {n for s in walk(fn.body[:k + 1]) for n in defined_names(s)}
    for s in walk(fn.body[k + 1:]):
        for n in (s.reads() if hasattr(s, "reads") else ()):
            if n != z and n in bound_before and n in holders:
                raise err(s.loc, f"this reads `{n}`, which holds the output `{z}` (or shares its "
                                 "memory): the Gauss-Newton cut follows the output itself",
                          f"compute the loss from `{z}` directly, or name as output a variable "
                          "that only the loss and the backward pass read")
    return k


def _loss_inside(fn, k, z, holders):
    """Refuse a loss that begins inside the statement that finishes the output: a loop that
    builds ``ys`` and also computes from it (``ds.append(ys[-1] - T[t])``) a value read after
    the loop.  The cut is placed after that whole statement, so such a value would lose its R
    (G v silently zero); the loss must be computed after the loop, from the output itself."""
    stmts = list(walk([fn.body[k]]))
    derived = set(holders)  # and the values stored into the output: its items
    derived |= {n for s in stmts if isinstance(s, (Append, SetItem)) and s.obj in holders
                for n in operand_vars(s.value)}
    while True:
        more = {n for s in stmts if set(s.reads() if hasattr(s, "reads") else ()) & derived
                for n in defined_names(s)} - derived
        if isinstance(fn.body[k], Assign):
            more = set()
        if not more:
            break
        derived |= more
    later = {n for s in walk(fn.body[k + 1:]) for n in (s.reads() if hasattr(s, "reads") else ())}
    for s in stmts:
        names = defined_names(s) - holders
        if names & derived & later and set(s.reads() if hasattr(s, "reads") else ()) & derived:
            n = sorted(names & derived & later)[0]
            raise _error(s.loc, f"`{n}` is computed from the output `{z}` inside the statement "
                                f"that finishes `{z}`: the Gauss-Newton cut comes after that "
                                "whole statement, so the loss must begin after it",
                         f"compute `{n}` from `{z}` after the loop that builds `{z}` (e.g. in "
                         "the backward loop), or name as output a value finished before it")


def cut_at(tr, active, out):
    """Schraudolph's Gauss-Newton product G v = Jᵀ H_L J v is R{backprop} with the
    network's own curvature cut away: once the output z is computed (R{z} = J v), every
    later value gets its R only through z, the parameters and every forward value held
    fixed.  In activity terms: after the statement that finishes z, only z (and, for a
    list of outputs, its slots) is active; the R-transform then builds R{loss'} = H_L R{z}
    and the backward pass's R through it alone, so no term of the forward values' R (the
    σ'' terms, Vᵀδ) is computed.

    An output that is one slot of a list (``output="acts[L]"``: the per-layer list of
    activations whose last slot is the output) keeps that slot's R and zeros in the
    others: ``R_acts_z = zeros_of(acts); R_acts_z[L] = R_acts[L]``, read from here on."""
    z, slot = tr.cut
    if slot is None or z not in active:
        return {a for a in active if a == z or (is_token(a) and a.split("#")[0] == z)}
    loc = tr.fn.body[0].loc if not out else out[-1].loc
    old = tr.rname(z)
    new = tr.namer.fresh(old + "_z")
    tr.types[new] = tr.types.get(z)
    out.extend(tr.build(new, tr.zeros_expr(Var(z)), loc))
    item = tr.namer.temp()
    tr.fn_temps.add(item)
    out.append(Assign(item, "getitem", (Var(old), slot), loc, is_r=True))
    out.append(SetItem(new, slot, Var(item), loc, is_r=True))
    tr.rnames[z] = new
    keep = {z}
    if isinstance(slot, Const):
        keep.add(token(z, slot.value))
    return keep


def counts_below_slot(tr, st) -> bool:
    """For an output slot ``acts[L]``: the loop's counter stays below L (``range(L - 1,
    -1, -1)``, ``range(0, L)``) and the body does not rebind it, so ``acts[i]`` never
    reads the output's slot and its R after the cut is zero (no product with it)."""
    if not tr.after_cut or not isinstance(tr.cut[1], Var):
        return False
    L = tr.cut[1].name
    if any(st.var in defined_names(s) for s in walk(st.body)):
        return False

    def offset(op):  # op = L - c: c, else None
        if isinstance(op, Var) and op.name == L:
            return 0
        d = tr.slots.defs.get(op.name) if isinstance(op, Var) else None
        if d is not None and d.prim == "sub" and d.args[0] == Var(L) and \
                isinstance(d.args[1], Const) and type(d.args[1].value) is int:
            return d.args[1].value
        return None
    step = st.step.value if isinstance(st.step, Const) else None
    if step == -1:
        c = offset(st.start)
        return c is not None and c >= 1
    if type(step) is int and step > 0:
        c = offset(st.stop)
        return c is not None and c >= 0
    return False
