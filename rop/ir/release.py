"""Give a list slot's array back as soon as no later statement can read it.

A per-layer backward pass reads the activations in reverse, ``acts[i]`` in iteration ``i``
only, and never again after the loop; the list still holds every layer's array until the
function returns, so the peak memory is the whole forward state *plus* the gradient.  In
the Hv that state is doubled (``acts`` and ``R_acts``) and so is the gradient (``dWs`` and
``R_dWs``).  Python would free nothing earlier either (the list keeps the references), and
Numba frees a local variable after its last use but never a list element.

This pass finds, for each top-level ``for`` over a ``range``, the lists that the loop reads
only as ``lst[i]`` with ``i`` the loop variable, that the loop does not write, and that
nothing reads after the loop; it appends ``rt.release(lst, i)`` to the loop body, which
puts an empty array of the same type in slot ``i`` (the list keeps its length and type).
A range visits each index once, so slot ``i`` is never read again.

Conservative by construction: a list the function did not build, a list that is passed to
anything but ``len`` and subscripts (it could be read through another name), a loop that
reassigns its variable, and any read of another form disable the release for that list.
References taken out of the slot (``a = acts[i]``) keep their array alive as usual: the
release drops the list's reference, never an array someone can still read.
"""

from __future__ import annotations

import ast

from .nodes import Append, Assign, Effect, For, Function, SetItem, Var, walk

_LIST_MAKERS = {"list", "list_repeat"}


def release_dead_slots(fn: Function, types: dict) -> Function:
    """Append ``rt.release(lst, i)`` to top-level range loops where slot ``i`` of ``lst`` is
    dead after the iteration (see the module doc).  ``types``: the rank-types of
    :mod:`rop.ir.shapes`; only lists of arrays are released."""
    private = _private_lists(fn, types)
    for pos, loop in enumerate(fn.body):
        if not isinstance(loop, For) or _assigns(loop.body, loop.var):
            continue
        later = {v for st in fn.body[pos + 1:] for s in walk([st]) for v in s.reads()}
        rnames = set(getattr(fn, "rnames", {}).values())
        for name in sorted(private - later, key=lambda n: (n in rnames, n)):  # primal first
            if _read_by_index_only(loop.body, name, loop.var):
                loop.body.append(Effect("rt.release", (Var(name), Var(loop.var)), loop.loc,
                                        is_r=name in rnames, note=f"{name}[{loop.var}] is not read again"))
    return fn


def _private_lists(fn, types) -> set:
    """Lists of arrays built in ``fn`` whose only readers are subscripts and ``len``
    (the R-list built from its primal list by the R-transform counts as a subscript)."""
    made = set()
    for st in walk(fn.body):
        if isinstance(st, Assign) and (st.prim in _LIST_MAKERS or _is_r_list(st)):
            made.add(st.target)
    made = {n for n in made if _array_list(types.get(n))}
    rlist_of = {st.target: st for st in walk(fn.body) if isinstance(st, Assign) and _is_r_list(st)}
    bad = set()
    for st in walk(fn.body):
        for name in made & set(st.reads()):
            if isinstance(st, Assign) and st.expr is None and st.prim in ("getitem", "len") \
                    and st.args[0] == Var(name) and name not in _names(st.args[1:]):
                continue
            if isinstance(st, (SetItem, Append)) and st.obj == name \
                    and name not in _names_of_value(st):
                continue
            if isinstance(st, Assign) and st.expr is not None and \
                    (_subscripts_only(st.expr, name) or rlist_of.get(st.target) is st):
                continue
            bad.add(name)
    return made - bad


def _read_by_index_only(body, name, var) -> bool:
    """Every read of ``name`` in ``body`` is ``name[var]``; there is at least one; no writes."""
    seen = False
    for st in walk(body):
        if name not in set(st.reads()):
            continue
        if isinstance(st, Assign) and st.expr is None and st.prim == "getitem" \
                and st.args[0] == Var(name) and st.args[1] == Var(var) and len(st.args) == 2:
            seen = True
        elif isinstance(st, Assign) and st.expr is not None and _subscripts_only(st.expr, name, var):
            seen = True
        else:
            return False
    return seen


def _assigns(body, var) -> bool:
    return any((isinstance(s, Assign) and s.target == var) or (isinstance(s, For) and s.var == var)
               for s in walk(body))


def _array_list(t) -> bool:
    return isinstance(t, tuple) and t[0] == "list" and isinstance(t[1], int) and t[1] >= 1


def _is_r_list(st) -> bool:
    return st.is_r and isinstance(st.expr, (ast.ListComp, ast.List))


def _names(ops) -> set:
    from .nodes import operand_vars
    return {v for op in ops for v in operand_vars(op)}


def _names_of_value(st) -> set:
    from .nodes import expr_names, operand_vars
    if st.expr is not None:
        return set(expr_names(st.expr))
    idx = set(operand_vars(st.index)) if isinstance(st, SetItem) else set()
    return idx | set(operand_vars(st.value))


def _subscripts_only(expr, name, var=None) -> bool:
    """Every occurrence of ``name`` in ``expr`` is ``name[...]`` (``name[var]`` if given)."""
    parents = {id(c): p for p in ast.walk(expr) for c in ast.iter_child_nodes(p)}
    for node in ast.walk(expr):
        if isinstance(node, ast.Name) and node.id == name:
            p = parents.get(id(node))
            if not (isinstance(p, ast.Subscript) and p.value is node
                    and isinstance(p.ctx, ast.Load)):
                return False
            if var is not None and not (isinstance(p.slice, ast.Name) and p.slice.id == var):
                return False
            if name in {n.id for n in ast.walk(p.slice) if isinstance(n, ast.Name)}:
                return False
    return True
