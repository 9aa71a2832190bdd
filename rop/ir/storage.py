"""NumPy's memory model on the IR: which names may share storage.

NumPy names are references.  ``b = a``, ``y = x[1:]``, ``a.T``, ``a.reshape(...)`` and a
list or tuple slot holding ``a`` all reach one buffer, and ``a[i] = ...`` (or an in-place
``a += ...``) writes that buffer for every one of them.  A compiler that treats names as
values deletes a write whose *name* is not read again, leaves an alias inactive when an
active value is written through another name, or lets R{z} be the caller's direction
because the rule for ``z = W + c`` returns R{W} itself.  Each of those is a silently
wrong Hv; this module is what the passes ask instead of looking at names.

The analysis is Steensgaard's unification, flow-insensitive: every name holding an array
belongs to a *storage class* (names that may share memory at some point of the program);
a list or tuple class has a *contents* class standing for its elements.  ``b = a`` and
views unify the classes of ``b`` and ``a``; ``xs.append(h)``, ``[a, b]`` and ``(a, 2.0)``
unify the contents of the container with the element; ``h = xs[i]`` unifies ``h`` with
the contents.  Over-approximation is safe here: a class too large only keeps a statement
DCE could have removed, materialises a zero R that is never read, or copies an R-value.

It reads the primal IR and the R-statements the R-transform builds alike (both are
statements on the table's entries; ``views`` and ``holds`` of an entry say what its result
may share), so DCE and the checks run on either.
"""

from __future__ import annotations

import linecache

from ..errors import RopSyntaxError
from .nodes import (Append, Assign, Break, Const, Continue, For, If, Return, SetItem, TupleOp, Var,
                    While, walk)

# primitives whose result may share its first argument's storage (NumPy returns a view or
# the object itself); every other primitive returns a fresh array or a number
ALIAS_PRIMS = frozenset({"copy", "getitem", "transpose", "reshape", "ravel", "asarray"})

# ``call`` statements (R-code calling a function by name) whose result may be (a view of)
# their first argument
_VIEW_CALLS = frozenset({"rt.broadcast_as", "rt.reshape", "np.reshape", "np.transpose",
                         "np.ravel", "np.asarray", "np.squeeze", "np.expand_dims",
                         "np.atleast_1d", "np.atleast_2d"})


class Storage:
    """Storage classes of one function's values (see the module docstring).

    The nodes are *definitions*, not names: ``a@3`` is the value the statement numbered 3
    binds to ``a``, ``W@in`` a parameter's.  Reaching definitions (over the structured
    regions, loops to a fixed point) say which definitions a read may see, so ``b = X``
    followed by ``b = b * 2`` leaves the second ``b`` its own storage.

    ``holders(name)``: the names through which a write into any value of ``name`` may be
    seen (its class and the containers holding it, transitively); what DCE and activity
    ask.  ``holders_at(st, name)``: the definitions a write by ``st`` into ``name`` reaches,
    for the refusals, which must not be more cautious than the program.
    ``array_writes``: the in-place writes into arrays, ``(statement, name written)``.
    """

    def __init__(self, fn, types: dict):
        self.types = types if types else _guess_types(fn)
        self.parent: dict[str, str] = {}
        self.contents: dict[str, str] = {}  # class root -> the node of its elements
        self.array_writes: list = []
        self.slot_writes: list = []
        self.list_copies: dict = dict(fn.list_copies)  # target -> source
        self.copy_defs: dict = {}  # definition made by such a copy -> its statement
        self.params = {f"{p}@in" for p in fn.params}
        self.defs_of: dict[str, set] = {}  # name -> its definitions
        self._ids: dict[int, str] = {}
        self._seen: dict[int, dict] = {}  # id(statement) -> {name read: definitions reaching}
        self._loops: list = []
        state = {}
        for p in fn.params:
            state[p] = {f"{p}@in"}
            self.defs_of.setdefault(p, set()).add(f"{p}@in")
            self.find(f"{p}@in")
        self._block(fn.body, state)
        for st in walk(fn.body):
            self._statement(st)
        self._holders = {}
        self._tables = None

    # ------------------------------------------------------------------ reaching definitions
    def _def(self, st, name) -> str:
        d = self._ids.get(id(st))
        if d is None:
            d = self._ids[id(st)] = f"{name}@{len(self._ids)}"
            self.defs_of.setdefault(name, set()).add(d)
        return d

    def _note(self, st, state):
        seen = self._seen.setdefault(id(st), {})
        for n in st.reads():
            seen.setdefault(n, set()).update(state.get(n, ()))

    def _block(self, stmts, state):
        for st in stmts:
            if state is None:
                return None
            state = self._flow(st, state)
        return state

    def _flow(self, st, state):
        if isinstance(st, Assign):
            self._note(st, state)
            state = dict(state)
            state[st.target] = {self._def(st, st.target)}
            return state
        if isinstance(st, Return):
            self._note(st, state)
            return None
        if isinstance(st, Break):
            self._loops[-1][0].append(state)
            return None
        if isinstance(st, Continue):
            self._loops[-1][1].append(state)
            return None
        if isinstance(st, If):
            self._note(st, state)
            return _join(self._block(st.body, dict(state)), self._block(st.orelse, dict(state)))
        if isinstance(st, For):
            self._note(st, state)

            def trip(head):
                return head, self._block(st.body, {**head, st.var: {self._def(st, st.var)}})
        elif isinstance(st, While):
            def trip(head):
                after = self._block(st.cond, dict(head))
                self._note(st, after)
                return after, self._block(st.body, dict(after))
        if isinstance(st, (For, While)):
            return self._loop(state, trip)
        self._note(st, state)  # SetItem, Append, Effect: no new binding
        return state

    def _loop(self, state, trip):
        """A loop to a fixed point: ``trip(head)`` runs one test and body from the state at the
        head and returns (the state after the test, the state at the body's end); the head
        joins the entry, the body's end and every ``continue`` until nothing changes.  The
        loop is left after the test or by a ``break``."""
        head = dict(state)
        for _ in range(100):
            self._loops.append(([], []))
            after, end = trip(head)
            breaks, conts = self._loops.pop()
            new = _join(head, end, *conts)
            if new == head:
                break
            head = new
        return _join(after, *breaks)

    def at(self, st, name) -> set:
        """The definitions of ``name`` a read by ``st`` may see."""
        return self._seen.get(id(st), {}).get(name) or self.defs_of.get(name) or {f"{name}@?"}

    # ------------------------------------------------------------------ union-find
    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str):
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        self.parent[rb] = ra
        ca, cb = self.contents.pop(ra, None), self.contents.pop(rb, None)
        if ca is not None and cb is not None:
            self.contents[ra] = ca
            self.union(ca, cb)
        elif ca is not None or cb is not None:
            self.contents[ra] = ca if ca is not None else cb

    def elem(self, x: str) -> str:
        """The node standing for the elements of ``x``'s class."""
        r = self.find(x)
        if r not in self.contents:
            self.contents[r] = self.find(f"{r}[*]")
        return self.contents[r]

    def _with(self, st, name, node, elements=False):
        """Unify ``node`` with every definition of ``name`` that ``st`` may read (with their
        elements when ``elements``)."""
        for d in self.at(st, name):
            self.union(node, self.elem(d) if elements else d)

    # ------------------------------------------------------------------ statements
    def _is_container(self, name) -> bool:
        t = self.types.get(name)
        return isinstance(t, tuple) and t[0] in ("list", "tuple")

    def _is_number(self, name) -> bool:
        return self.types.get(name) == 0

    def _put(self, st, node, op):
        """``op`` (an operand read by ``st``) becomes an element of ``node``; a tuple operand
        is an element whose own elements are its items."""
        if isinstance(op, Var):
            self._with(st, op.name, self.elem(node))
        elif isinstance(op, TupleOp):
            inner = self.elem(node)
            for it in op.items:
                self._put(st, inner, it)

    def _shared(self, st, d):
        """An R-statement's result may be its ``views`` arguments (an entry's facet: the
        branches of ``ifexp``, what ``rt.broadcast_as`` broadcasts, the first argument of a
        ``call`` of a view function) or hold the elements of its ``holds`` arguments."""
        from ..rules.table import RULES
        prim = RULES.get(st.prim)
        if prim is None:
            return
        if st.prim == "call":
            views = st.args[1:2] if st.args[0].value in _VIEW_CALLS else ()
            holds = ()
        else:
            named = dict(zip(prim.params, st.args))
            views = [named[p] for p in prim.views if p in named]
            holds = [named[p] for p in prim.holds if p in named]
        for a in views:
            if isinstance(a, Var):
                self._with(st, a.name, d)
        for a in holds:
            if isinstance(a, Var):
                self._with(st, a.name, self.elem(d), elements=self._is_container(a.name))

    def _statement(self, st):
        if isinstance(st, Assign):
            t = st.target
            d = self._def(st, t)
            self.find(d)
            if self._is_number(t):
                return
            args = st.args
            if st.prim in ("list", "list_repeat"):
                for a in args[:1] if st.prim == "list_repeat" else args:
                    self._put(st, d, a)
            elif st.prim in ALIAS_PRIMS and args and isinstance(args[0], TupleOp):
                for it in args[0].items:  # a tuple display
                    self._put(st, d, it)
            elif st.prim in ALIAS_PRIMS and args and isinstance(args[0], Var):
                src = args[0].name
                if st.prim == "getitem" and self._is_container(src):
                    self._with(st, src, d, elements=True)
                else:  # a view (or the object: unknown types are taken as arrays)
                    self._with(st, src, d)
            elif t in self.list_copies:
                self._with(st, self.list_copies[t], d)  # NumPy would store the view itself
                self.copy_defs[d] = st
            else:
                self._shared(st, d)
        elif isinstance(st, SetItem) and not self._is_container(st.obj):
            self.array_writes.append((st, st.obj))
        elif isinstance(st, (SetItem, Append)):  # a store into a list slot
            self.slot_writes.append(st)
            for o in self.at(st, st.obj):
                self._put(st, o, st.value)

    # ------------------------------------------------------------------ queries
    def _closure(self, nodes) -> set:
        """Definitions that share storage with ``nodes``, or hold it as (nested) elements."""
        if self._tables is None:
            members: dict[str, set] = {}
            for n in list(self.parent):
                if "[*]" not in n:
                    members.setdefault(self.find(n), set()).add(n)
            owners: dict[str, set] = {}
            for r, c in self.contents.items():
                owners.setdefault(self.find(c), set()).add(self.find(r))
            self._tables = (members, owners)
        members, owners = self._tables
        seen, todo, out = set(), [self.find(n) for n in nodes], set()
        while todo:
            c = todo.pop()
            if c not in seen:
                seen.add(c)
                out |= members.get(c, set())
                todo.extend(owners.get(c, ()))
        return out

    def holders_at(self, st, name) -> set:
        """Definitions through which the write ``st`` makes into ``name`` may be seen."""
        return self._closure(self.at(st, name))

    def holders(self, name: str) -> frozenset:
        """Names through which a write into any value of ``name`` may be seen."""
        if name not in self._holders:
            defs = self.defs_of.get(name) or {f"{name}@?"}
            self._holders[name] = frozenset(d.split("@")[0] for d in self._closure(defs)) | {name}
        return self._holders[name]

    def written_names(self) -> set:
        """Every name whose storage some in-place array write may change."""
        out = set()
        for st, obj in self.array_writes:
            out |= {d.split("@")[0] for d in self.holders_at(st, obj)}
        return out

    def aliased(self, name: str) -> bool:
        """True when a write into ``name`` may be seen through another name."""
        return len(self.holders(name)) > 1


def _join(*states):
    """Definitions that may reach a point from any of ``states`` (None: no path)."""
    live = [s for s in states if s is not None]
    if not live:
        return None
    out = {}
    for s in live:
        for n, ds in s.items():
            out[n] = out.get(n, set()) | set(ds)
    return out


def _guess_types(fn) -> dict:
    """Before ranks are known (at decoration): which names are containers.  A name only ever
    bound to a new list (or another such name) is a list; one only ever bound to a tuple
    display, or to an item of a container whose items are all such displays (the cache
    tuples a list of caches holds, ``(caches, x)`` unpacked again), is a tuple.  Taking a
    tuple for an array would unify a container with its items and refuse writes the program
    never makes."""
    defs: dict[str, list] = {}
    stores: dict[str, list] = {}  # list -> the values appended or stored into its slots
    for st in walk(fn.body):
        if isinstance(st, Assign):
            defs.setdefault(st.target, []).append(st)
        elif isinstance(st, (Append, SetItem)):
            stores.setdefault(st.obj, []).append(st.value)
    kinds: dict = {}  # name -> "list" | "tuple"

    def container(op) -> bool:
        return isinstance(op, TupleOp) or isinstance(op, Var) and op.name in kinds

    def items_of(name):
        """The operands a container's items may be, or None when not all are known."""
        out = []
        for d in defs.get(name, ()):
            if d.prim in ("list", "list_repeat") or d.prim == "copy" and isinstance(d.args[0], TupleOp):
                out.extend(d.args[0].items if d.prim == "copy" else d.args[:1] if
                           d.prim == "list_repeat" else d.args)
            elif d.prim == "copy" and isinstance(d.args[0], Var):
                inner = items_of(d.args[0].name) if d.args[0].name != name else []
                if inner is None:
                    return None
                out.extend(inner)
            else:
                return None
        out.extend(stores.get(name, ()))
        return out

    def kind(d):
        if d.prim in ("list", "list_repeat"):
            return "list"
        if d.prim == "copy" and isinstance(d.args[0], TupleOp):
            return "tuple"
        if d.prim == "copy" and isinstance(d.args[0], Var):
            return kinds.get(d.args[0].name)
        if d.prim == "getitem" and isinstance(d.args[0], Var) and d.args[0].name in kinds:
            items = items_of(d.args[0].name)
            if items and all(container(x) for x in items if x != Const(None)):
                return "tuple"
        return None

    while True:
        new = {}
        for n, ds in defs.items():
            ks = {kind(d) for d in ds}
            if len(ks) == 1 and None not in ks:
                new[n] = ks.pop()
        if new == kinds:
            return {n: ("list", None) if k == "list" else ("tuple", ()) for n, k in kinds.items()}
        kinds = new


def _error(loc, msg, hint):
    line = linecache.getline(loc.filename, loc.lineno) or loc.text
    return RopSyntaxError(msg, loc.filename, loc.lineno, loc.col, line, hint)


def check_writes(fn, store: Storage):
    """Refuse what rop cannot do as NumPy does: writing into an argument's memory (through
    any alias), and writing storage a list also holds as a copy (a strided view stored in a
    list is copied in compiled code, where NumPy would keep the view)."""
    for st, obj in store.array_writes:
        seen = store.holders_at(st, obj)
        hit = sorted(d.split("@")[0] for d in seen & store.params)
        if hit:
            raise _error(st.loc, f"this writes into the memory of parameter `{hit[0]}` (through "
                                 f"`{obj}`): rop never changes its arguments",
                         f"make a copy first (`{obj} = {obj}.copy()`) and write into that, or "
                         f"compute a new array (`{obj} = {obj} + ...` instead of `+=`)")
        copies = sorted((store.copy_defs[d] for d in seen if d in store.copy_defs),
                        key=lambda s: s.loc.lineno)
        if copies:
            at = copies[0].loc
            raise _error(st.loc, f"a list holds a view of `{obj}`'s memory (stored at line "
                                 f"{at.lineno}: `{at.text}`); compiled code stores such a view "
                                 "as a copy, so the list would not show this write as NumPy does",
                         "store a copy explicitly (`.copy()` on the view put in the list) if the "
                         "list should keep the value it had, or fill the list after this write")
    for st in store.slot_writes:
        # only a list or tuple argument can be changed by a store into a list slot; before
        # ranks are known (at decoration) no argument is known to be one, and the memory pass
        # asks again with the call's types
        hit = sorted(p for p in (d.split("@")[0] for d in store.holders_at(st, st.obj)
                                 & store.params) if store._is_container(p))
        if hit and st.obj not in fn.params:
            raise _error(st.loc, f"this changes the list passed as parameter `{hit[0]}` (through "
                                 f"`{st.obj}`): rop never changes its arguments",
                         f"build a new list first, e.g. `{st.obj} = list({hit[0]})`")
