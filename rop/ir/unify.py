"""One Numba type per value, where NumPy lets a name change kind: rewrites the ranks decide,
run by the ``fold_ranks`` pass (pipeline.py) before any analysis of storage or activity.

* :func:`numbers_to_arrays`: a number that becomes an array (below);
* :func:`sequences_as_index_arrays`: a list of integers indexing an array is an index array;
* :func:`lists_of_unlike_items_as_names`: a list of unlike items (caches of several
  structures), filled and read in straight-line code, is one name per slot.

A number that becomes an array.  Course code accumulates from a number: ``running_add = 0`` before (or inside) a loop whose
update ``running_add = running_add * gamma + r[t]`` makes it an array.  NumPy does not mind;
Numba gives a variable one type and refuses ``int`` on one path and an array on another.

Where a variable is bound to a number literal ``c`` on some paths and to an array of rank
``k`` on the others, it is bound to ``np.full((1,) * k, float(c))`` instead, when that
changes no value the program computes.  An array whose every dimension is 1 broadcasts as the
number does against any array of rank ``k`` or more: so the rewrite is exact when every read
that may see the number (found by a forward walk over the structured IR, loops to a fixed
point) *absorbs* it -- an elementwise operation with another operand of rank ``k`` or more,
the value stored into an array slot of rank ``k`` or more -- or is an elementwise operation
whose own result is read only in such ways (``running_add * gamma`` above, absorbed by
``+ r[t]``).  A number that may flow out as itself (``s = 0; for W in Ws: s = s + W @ x;
return np.tanh(s)`` with no layers) is left as written, and Numba's typing error explains
the clash at the user's line (api.py).  The literal becomes a float: rop passes float64
arrays, and Numba cannot unify an int64 array with a float64 one.
"""

from __future__ import annotations

from . import shapes
from .nodes import (Append, Assign, Const, For, If, SetItem, TupleOp, Var, While, blocks_of,
                    operand_vars, walk)


def _is_number(st) -> bool:
    return (isinstance(st, Assign) and st.prim == "copy" and len(st.args) == 1
            and isinstance(st.args[0], Const) and not isinstance(st.args[0].value, bool)
            and isinstance(st.args[0].value, (int, float)))


def _reads(st) -> set:
    return set(st.reads())


def _number_reads(body, name) -> list:
    """The statements that may read ``name`` while it holds a number literal (forward, may)."""
    found: list = []

    def block(stmts, s):
        for st in stmts:
            s = stmt(st, s)
        return s

    def stmt(st, s):
        if isinstance(st, If):
            if s and name in _reads(st):
                found.append(st)
            return block(st.body, s) | block(st.orelse, s)
        if isinstance(st, (For, While)):
            if s and name in _reads(st):
                found.append(st)
            head = s  # the state at the loop's head: on entry, or after any trip
            while True:
                after_cond = block(st.cond, head) if isinstance(st, While) else head
                body = _inner(st.body, after_cond)  # any state may leave by break/continue
                if s | body == head:
                    return head | after_cond | body
                head = s | body
        if s and name in _reads(st):
            found.append(st)
        if isinstance(st, Assign) and st.target == name:
            return _is_number(st)
        return s

    def _inner(stmts, s):
        # any state inside the body may leave through break or continue: take them all
        out = s
        for st in stmts:
            s = stmt(st, s)
            out |= s
        return out

    block(body, False)
    uniq, ids = [], set()
    for st in found:
        if id(st) not in ids:
            ids.add(id(st))
            uniq.append(st)
    return uniq


def _elementwise(prim) -> bool:
    from ..rules.table import nd_broadcast
    return prim is not None and prim.ndim is nd_broadcast


def _absorbed(fn, st, name, k, types, prims, defs, depth=0) -> bool:
    """Reading ``name`` (a number) in ``st`` gives what reading an all-ones array of rank
    ``k`` gives."""
    if depth > 8:
        return False
    if isinstance(st, SetItem):
        if st.value != Var(name) or st.obj == name or name in set(_index_reads(st.index)):
            return False
        slot = shapes._getitem_type(types.get(st.obj), st.index, types)
        return isinstance(slot, int) and slot >= k
    if not (isinstance(st, Assign) and _elementwise(prims.get(st.prim)) and not st.kwargs):
        return False
    others = [shapes.operand_type(a, types) for a in st.args if a != Var(name)]
    if any(isinstance(t, int) and t >= k for t in others):
        return True
    if st.target == name or len(defs.get(st.target, ())) != 1:
        return False  # the result is a number again: follow it only through a temporary
    reads = [r for r in walk(fn.body) if st.target in _reads(r)]
    return bool(reads) and all(_absorbed(fn, r, st.target, k, types, prims, defs, depth + 1)
                               for r in reads)


def _index_reads(index):
    from .nodes import operand_vars
    return operand_vars(index)


def numbers_to_arrays(fn, types: dict, prims) -> bool:
    """Rewrite ``x = c`` to ``x = np.full((1,) * k, float(c))`` where ``x`` is elsewhere a
    rank-``k`` array and the rewrite is exact (see the module's docstring); True when
    something changed."""
    defs: dict = {}
    for st in walk(fn.body):
        if isinstance(st, Assign):
            defs.setdefault(st.target, []).append(st)
    changed = False
    for name, sts in defs.items():
        numbers = [s for s in sts if _is_number(s)]
        others = [s for s in sts if not _is_number(s)]
        if not numbers or not others or name in fn.params:
            continue
        ranks = {shapes._assign_type(s, types, prims) for s in others}
        arrays = {r for r in ranks if isinstance(r, int) and r >= 1}
        if len(arrays) != 1 or not ranks <= arrays | {0}:
            continue
        k = next(iter(arrays))
        if not all(_absorbed(fn, st, name, k, types, prims, defs)
                   for st in _number_reads(fn.body, name)):
            continue
        for s in numbers:
            s.prim = "full"
            s.args = (TupleOp((Const(1),) * k), Const(float(s.args[0].value)))
        changed = True
    return changed


# ----------------------------------------------------------------------------- index sequences

def _int_list(t) -> bool:
    """A list of integers (of numbers: the rank-type does not tell ints from floats; NumPy
    refuses a float index anyway).  A tuple of integers is a multi-index, not an index array
    (ir/shapes.py types the caller's tuples of numbers as tuples)."""
    return isinstance(t, tuple) and t[0] == "list" and t[1] == 0


def _index_items(index):
    return index.items if isinstance(index, TupleOp) else (index,)


def sequences_as_index_arrays(fn, types: dict, namer) -> bool:
    """``a[np.arange(n), y]`` with ``y`` a list of integers (the caller's: a tuple in Numba)
    indexes with an integer array, as NumPy does with the list: ``t = rt.array(y)`` goes
    before the statement and ``t`` is the index (Numba indexes with arrays, not sequences)."""
    changed = False

    def fix(stmts):
        nonlocal changed
        i = 0
        while i < len(stmts):
            st = stmts[i]
            for b in blocks_of(st):
                fix(b)
            if isinstance(st, Assign) and st.prim == "getitem":
                obj, index = st.args[0], st.args[1]
                obj_t = shapes.operand_type(obj, types)
            elif isinstance(st, SetItem):
                index, obj_t = st.index, types.get(st.obj)
            else:
                i += 1
                continue
            if not (isinstance(obj_t, int) and obj_t >= 1):
                i += 1
                continue
            new_items, made = [], []
            for it in _index_items(index):
                if isinstance(it, Var) and _int_list(types.get(it.name)):
                    tmp = namer.temp()
                    made.append(Assign(tmp, "array", (it, Const(None)), st.loc))
                    types[tmp] = 1
                    it = Var(tmp)
                new_items.append(it)
            if made:
                new_index = TupleOp(tuple(new_items)) if isinstance(index, TupleOp) else new_items[0]
                if isinstance(st, SetItem):
                    st.index = new_index
                else:
                    st.args = (st.args[0], new_index) + tuple(st.args[2:])
                stmts[i:i] = made
                changed = True
            i += len(made) + 1

    fix(fn.body)
    fn.temps = set(fn.temps) | namer.temp_names
    return changed


# ----------------------------------------------------------------------------- lists of unlike items

def _defined_anywhere(st) -> set:
    """The names ``st`` binds, in its nested blocks too."""
    from .nodes import defined_names
    return {n for s in walk([st]) for n in defined_names(s)}


_INT_OPS = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b}


def _int_value(st, consts, length):
    """The integer ``st`` binds, when it is one this block knows: a literal, a copy of a
    known integer, ``len`` of the list (``length``), or + - * of known integers."""
    def val(a):
        if isinstance(a, Const) and isinstance(a.value, int) and not isinstance(a.value, bool):
            return a.value
        return consts.get(a.name) if isinstance(a, Var) else None
    if st.prim == "len" and length is not None:
        return length
    if st.prim == "copy" and len(st.args) == 1:
        return val(st.args[0])
    if st.prim in _INT_OPS and len(st.args) == 2 and not st.kwargs:
        a, b = val(st.args[0]), val(st.args[1])
        return None if a is None or b is None else _INT_OPS[st.prim](a, b)
    return None


def _type_here(op, last_def, types, prims):
    """The type of ``op`` at this point of a straight-line block: a name's binding there, when
    it is bound in the block, else its flow-insensitive type (ir/shapes.py keeps a name's first
    type, and ``cache`` is rebound to unlike caches)."""
    if isinstance(op, Var) and op.name in last_def:
        st = last_def[op.name]
        return None if st is None else shapes._assign_type(st, types, prims)
    return shapes.operand_type(op, types)


def _list_as_names(block, at, fn, types, prims, namer) -> bool:
    """The list made by ``block[at]``, replaced by one name per slot if it qualifies (see
    :func:`lists_of_unlike_items_as_names`)."""
    make = block[at]
    name = make.target
    if sum(1 for s in walk(fn.body) if isinstance(s, Assign) and s.target == name) != 1:
        return False
    readers = [s for s in walk(fn.body) if name in set(s.reads())]
    if not all(any(s is b for b in block[at + 1:]) for s in readers):
        return False  # read inside a loop or a branch: its length is not one number there
    length = len(make.args)
    consts: dict = {}
    last_def: dict = {}  # name -> its binding in this block so far (None: bound in a nested one)
    item_types = [shapes.operand_type(a, types) for a in make.args]
    plan = []  # (statement, what it becomes): ("slot", k) | ("get", k) | ("len", n)
    for st in block[at + 1:]:
        reads = name in set(st.reads())
        if isinstance(st, Append) and st.obj == name:
            if name in set(operand_vars(st.value)):
                return False
            item_types.append(_type_here(st.value, last_def, types, prims))
            plan.append((st, ("slot", length)))
            length += 1
        elif reads and isinstance(st, Assign) and st.prim == "getitem" \
                and st.args[0] == Var(name) and len(st.args) == 2:
            k = st.args[1]
            k = k.value if isinstance(k, Const) else consts.get(getattr(k, "name", None))
            if not isinstance(k, int) or isinstance(k, bool) or not -length <= k < length:
                return False
            plan.append((st, ("get", k % length)))
        elif reads and isinstance(st, Assign) and st.prim == "len" and st.args == (Var(name),):
            plan.append((st, ("len", length)))
        elif reads:
            return False
        if isinstance(st, Assign):
            last_def[st.target] = st
            v = _int_value(st, consts, length if plan and plan[-1][0] is st else None)
            if v is None:
                consts.pop(st.target, None)
            else:
                consts[st.target] = v
        else:
            for n in _defined_anywhere(st):
                consts.pop(n, None)
                last_def[n] = None
    known = [t for t in item_types if t is not None]
    if len(set(map(repr, known))) <= 1:
        return False  # items of one type: a list Numba types; leave it as written
    slots = [namer.fresh(f"{name}_{k}") for k in range(length)]
    new = {}
    for st, (what, k) in plan:
        if what == "slot":
            new[id(st)] = Assign(slots[k], "copy", (st.value,), st.loc)
        elif what == "get":
            new[id(st)] = Assign(st.target, "copy", (Var(slots[k]),), st.loc)
        else:
            new[id(st)] = Assign(st.target, "copy", (Const(k),), st.loc)
    first = [Assign(slots[k], "copy", (a,), make.loc) for k, a in enumerate(make.args)]
    block[at + 1:] = [new.get(id(s), s) for s in block[at + 1:]]
    block[at:at + 1] = first
    return True


def lists_of_unlike_items_as_names(fn, types: dict, prims, namer) -> bool:
    """``caches = []`` filled by ``caches.append(cache)`` with caches of different structure
    (an affine layer's ``(x, w, b)``, an affine-ReLU layer's ``((x, w, b), a)``), read back as
    ``caches[-1]`` and ``caches[i]`` with ``i`` a constant (a loop rop unrolled): Numba types a
    list's items alike, so each slot becomes a name of its own (``caches_0``, ``caches_1``, ...),
    the same objects as the list would hold.  Only a list made, filled and read in one
    straight-line block, read only by constant indices and ``len``; lists of like items are
    left as written."""
    changed = False

    def visit(block):
        nonlocal changed
        i = 0
        while i < len(block):
            st = block[i]
            for b in blocks_of(st):
                visit(b)
            if isinstance(st, Assign) and st.prim == "list" and \
                    _list_as_names(block, i, fn, types, prims, namer):
                changed = True
                continue  # block[i] is now the first slot (or the next statement)
            i += 1

    visit(fn.body)
    return changed
