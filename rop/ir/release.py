"""Give a list slot's array back as soon as no later statement can read it.

A per-layer backward pass reads the activations in reverse, ``acts[i]`` in iteration ``i``
only, and never again after the loop; the list still holds every layer's array until the
function returns, so the peak memory is the whole forward state *plus* the gradient.  In
the Hv that state is doubled (``acts`` and ``R_acts``) and so is the gradient (``dWs`` and
``R_dWs``).  Python would free nothing earlier either (the list keeps the references), and
Numba frees a local variable after its last use but never a list element.

This pass finds, for each top-level ``for`` over a ``range``, the lists that the loop reads
only as ``lst[i + c]`` with ``i`` the loop variable and ``c`` a constant >= 0 (``acts[i]``;
``hs[t + 1]`` beside ``hs[t]`` in back-propagation through time), that the loop does not
write, and that nothing reads after the loop; it appends ``rt.release(lst, i, c)`` to the
loop body, which puts an empty array of the same type in slot ``i + c`` (the list keeps its
length and type).  Slot ``k`` is read in the iterations ``k - c``; the last of them in time
is ``k - min(c)`` when ``i`` counts up and ``k - max(c)`` when it counts down, so at the end
of iteration ``i`` the slot ``i + min(c)`` (up) or ``i + max(c)`` (down) is dead.  The loop
must count through non-negative values only (a constant start >= 0 counting up, a constant
stop >= -1 counting down): a negative index would wrap around to the end of the list, which
this reasoning does not follow.  An index past the end (the slot was not read) is skipped.

Conservative by construction: a list the function did not build, a list that is passed to
anything but ``len`` and subscripts (it could be read through another name), a loop that
reassigns its variable, and any read of another form disable the release for that list.
References taken out of the slot (``a = acts[i]``) keep their array alive as usual: the
release drops the list's reference, never an array someone can still read.
"""

from __future__ import annotations

from .nodes import Append, Assign, Const, Effect, For, Function, SetItem, Var, operand_vars, walk

_LIST_MAKERS = {"list", "list_repeat"}


def release_dead_slots(fn: Function, types: dict) -> Function:
    """Append ``rt.release(lst, i, c)`` to top-level range loops where slot ``i + c`` of
    ``lst`` is dead after the iteration (see the module doc).  ``types``: the rank-types of
    :mod:`rop.ir.shapes`; only lists of arrays are released."""
    private = _private_lists(fn, types)
    rnames = set(fn.rnames.values())
    consts = _constants(fn)
    for pos, loop in enumerate(fn.body):
        down = _direction(loop, consts)
        if down is None or _assigns(loop.body, loop.var):
            continue
        later = {v for st in fn.body[pos + 1:] for s in walk([st]) for v in s.reads()}
        offsets = _offsets(loop.body, loop.var)
        for name in sorted(private - later, key=lambda n: (n in rnames, n)):  # primal first
            cs = _read_at_offsets_only(loop.body, name, offsets)
            if not cs:
                continue
            c = max(cs) if down else min(cs)
            at = f"{loop.var} + {c}" if c else loop.var
            args = (Var(name), Var(loop.var)) + ((Const(c),) if c else ())
            loop.body.append(Effect("rt.release", args, loop.loc, is_r=name in rnames,
                                    note=f"{name}[{at}] is not read again"))
    return fn


def _direction(loop, consts):
    """True if ``loop`` counts down, False if up, None if it is not a range loop over
    non-negative integers with a constant step."""
    if not isinstance(loop, For):
        return None
    step, start, stop = (_int(op, consts) for op in (loop.step, loop.start, loop.stop))
    if step is None or step == 0:
        return None
    if step > 0:
        return False if start is not None and start >= 0 else None
    return True if stop is not None and stop >= -1 else None


def _int(op, consts):
    if isinstance(op, Const) and type(op.value) is int:
        return op.value
    return consts.get(op.name) if isinstance(op, Var) else None


def _constants(fn) -> dict:
    """Integer constants the function computes from literals at its top level and never
    redefines (``reversed(range(L))`` stops at the temporary ``0 - 1``)."""
    count: dict = {}
    for st in walk(fn.body):
        if isinstance(st, Assign):
            count[st.target] = count.get(st.target, 0) + 1
    out: dict = {}
    ops = {"add": int.__add__, "sub": int.__sub__, "mul": int.__mul__}
    for st in fn.body:
        if isinstance(st, Assign) and not st.is_r and count[st.target] == 1:
            vals = [_int(a, out) for a in st.args]
            if st.prim in ops and len(vals) == 2 and None not in vals:
                out[st.target] = ops[st.prim](*vals)
            elif st.prim in ("copy", "neg") and len(vals) == 1 and vals[0] is not None:
                out[st.target] = vals[0] if st.prim == "copy" else -vals[0]
    return out


def _offsets(body, var) -> dict:
    """{index name: c}: the loop variable (0) and the body's temporaries ``t = var + c``
    (c a constant >= 0), each defined once."""
    defs, out = {}, {}
    for st in walk(body):
        if isinstance(st, Assign):
            defs[st.target] = defs.get(st.target, 0) + 1
            if not st.is_r and st.prim == "add" and len(st.args) == 2:
                a, b = st.args
                if isinstance(b, Var) and isinstance(a, Const):
                    a, b = b, a
                if a == Var(var) and isinstance(b, Const) and type(b.value) is int \
                        and b.value >= 0:
                    out[st.target] = b.value
    return {var: 0, **{t: c for t, c in out.items() if defs[t] == 1}}


def _private_lists(fn, types) -> set:
    """Lists of arrays built in ``fn`` (every assignment to the name builds a new list) whose
    only readers are subscripts and ``len``.  The R-list built from its primal list by the
    R-transform counts as a subscript; a top-level rebinding ``b = a`` of such a list that
    nothing reads under its old name afterwards (a helper's result, inlined) moves it to
    the new name."""
    defs: dict = {}
    for st in walk(fn.body):
        name = st.target if isinstance(st, Assign) else st.var if isinstance(st, For) else None
        if name is not None:
            defs.setdefault(name, []).append(st)
    made = {n for n, ds in defs.items()
            if all(isinstance(d, Assign) and (d.prim in _LIST_MAKERS or _is_r_list(d))
                   for d in ds)}
    moves = {}
    for pos, st in enumerate(fn.body):
        src = _moved_from(st)
        if src in made and len(defs[st.target]) == 1 and \
                not any(src in set(s.reads()) for top in fn.body[pos + 1:] for s in walk([top])):
            moves[id(st)] = src
            made.add(st.target)
    made = {n for n in made if _array_list(types.get(n))}
    rlist_of = {st.target: st for st in walk(fn.body) if isinstance(st, Assign) and _is_r_list(st)}
    bad = set()
    for st in walk(fn.body):
        for name in made & set(st.reads()):
            if moves.get(id(st)) == name:
                continue
            if isinstance(st, Assign) and st.prim in ("getitem", "len") \
                    and st.args[0] == Var(name) and name not in _names(st.args[1:]):
                continue
            if isinstance(st, (SetItem, Append)) and st.obj == name \
                    and name not in _names_of_value(st):
                continue
            if rlist_of.get(st.target if isinstance(st, Assign) else None) is st:
                continue
            bad.add(name)
    return made - bad


def _moved_from(st):
    """``a`` for ``b = a`` (a primal copy, or an R-statement whose value is a name)."""
    if isinstance(st, Assign) and st.prim == "copy" and len(st.args) == 1 \
            and isinstance(st.args[0], Var):
        return st.args[0].name
    return None


def _read_at_offsets_only(body, name, offsets) -> set:
    """The offsets ``c`` of the body's reads ``name[var + c]``; empty if there is none, or if
    any read of ``name`` has another form, or the body writes it.  ``offsets`` maps the index
    names to their offset (the loop variable itself: 0)."""
    seen = set()
    for st in walk(body):
        if name not in set(st.reads()):
            continue
        if isinstance(st, Assign) and st.prim == "getitem" \
                and st.args[0] == Var(name) and len(st.args) == 2 \
                and isinstance(st.args[1], Var) and st.args[1].name in offsets:
            seen.add(offsets[st.args[1].name])
        else:
            return set()
    return seen


def _assigns(body, var) -> bool:
    return any((isinstance(s, Assign) and s.target == var) or (isinstance(s, For) and s.var == var)
               for s in walk(body))


def _array_list(t) -> bool:
    return isinstance(t, tuple) and t[0] == "list" and isinstance(t[1], int) and t[1] >= 1


def _is_r_list(st) -> bool:
    """An R-statement that builds a new list (a display, the zeros of one, with placeholders)."""
    return st.is_r and st.prim in ("list", "zeros_of", "zeros_but")


def _names(ops) -> set:
    return {v for op in ops for v in operand_vars(op)}


def _names_of_value(st) -> set:
    idx = set(operand_vars(st.index)) if isinstance(st, SetItem) else set()
    return idx | set(operand_vars(st.value))
