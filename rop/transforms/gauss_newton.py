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
"""

from __future__ import annotations

from ..ir.nodes import Append, Assign, Const, SetItem, TupleOp, Var, defined_names, operand_vars, walk
from ..ir.storage import ALIAS_PRIMS
from .slots import is_token, token


def cut_index(fn, z) -> int:
    """The top-level statement after which ``z`` holds the network's output: the last one
    binding it (a loop that builds it counts as a whole).  Refused at the user's line: an
    output that is a parameter or never bound, and a later read of another name that holds
    z's memory (a list slot or a tuple holding it): activity after the cut follows z alone,
    so the loss must read z itself."""
    def err(loc, msg, hint):
        from ..ir.storage import _error
        return _error(loc, msg, hint)
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
    bound_before = {n for s in walk(fn.body[:k + 1]) for n in defined_names(s)}
    for s in walk(fn.body[k + 1:]):
        for n in (s.reads() if hasattr(s, "reads") else ()):
            if n != z and n in bound_before and n in holders:
                raise err(s.loc, f"this reads `{n}`, which holds the output `{z}` (or shares its "
                                 "memory): the Gauss-Newton cut follows the output itself",
                          f"compute the loss from `{z}` directly, or name as output a variable "
                          "that only the loss and the backward pass read")
    return k


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
