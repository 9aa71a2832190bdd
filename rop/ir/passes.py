"""Passes over the structured IR: dead-code elimination and the dataflow graph.

DCE is a backward liveness analysis over the structured regions (loops to a fixed
point), so that neither the user's dead statements nor R-statements whose value is
never read reach the generated code: "no dead statements" is a property of the
emitter's input, not a hope.
"""

from __future__ import annotations


from .nodes import (Append, Assign, Break, Continue, Effect, For, Function, If, Return, SetItem,
                    While, blocks_of)


def _reads(st):
    return set(st.reads())


class _DCE:
    def __init__(self, store):
        self.store = store  # storage classes: a write is live if any holder is
        self.exits: list = []  # live sets at the exit of enclosing loops
        self.heads: list = []  # live sets at the heads of enclosing loops

    def block(self, stmts, live_out, rewrite):
        live = set(live_out)
        new = []
        for st in reversed(stmts):
            keep, live = self.stmt(st, live, rewrite)
            if keep is not None:
                new.append(keep)
        new.reverse()
        return new, live

    def stmt(self, st, live, rewrite):
        if isinstance(st, Assign):
            if st.target not in live:
                return None, live
            return st, (live - {st.target}) | _reads(st)
        if isinstance(st, (SetItem, Append)):
            if not self.store.holders(st.obj) & live:  # `b = a; a[0] = x; return b`
                return None, live
            return st, live | _reads(st)
        if isinstance(st, Return):
            return st, _reads(st)
        if isinstance(st, Effect):
            return st, live | _reads(st)
        if isinstance(st, Break):
            return st, set(self.exits[-1])
        if isinstance(st, Continue):
            return st, set(self.heads[-1])
        if isinstance(st, If):
            body, l1 = self.block(st.body, live, rewrite)
            orelse, l2 = self.block(st.orelse, live, rewrite)
            if not body and not orelse:
                return None, live
            new = If(st.test, body, orelse, st.loc) if rewrite else st
            return new, l1 | l2 | _reads(st)
        if isinstance(st, For):
            head = set(live)
            for _ in range(100):
                self.exits.append(live)
                self.heads.append(head)
                _, body_in = self.block(st.body, head, False)
                self.exits.pop(); self.heads.pop()
                new_head = live | (body_in - {st.var})
                if new_head == head:
                    break
                head = new_head
            self.exits.append(live)
            self.heads.append(head)
            body, body_in = self.block(st.body, head, rewrite)
            self.exits.pop(); self.heads.pop()
            if not body:
                return None, live
            new = For(st.var, st.start, st.stop, st.step, body, st.loc) if rewrite else st
            return new, (live | (body_in - {st.var})) | _reads(st)
        if isinstance(st, While):
            head = set(live) | _reads(st)
            for _ in range(100):
                self.exits.append(live)
                self.heads.append(head)
                _, body_in = self.block(st.body, head, False)
                _, cond_in = self.block(st.cond, live | body_in | _reads(st), False)
                self.exits.pop(); self.heads.pop()
                if cond_in == head:
                    break
                head = cond_in
            self.exits.append(live)
            self.heads.append(head)
            body, body_in = self.block(st.body, head, rewrite)
            cond, cond_in = self.block(st.cond, live | body_in | _reads(st), rewrite)
            self.exits.pop(); self.heads.pop()
            new = While(cond, st.test, body, st.loc) if rewrite else st
            return new, cond_in
        raise TypeError(st)


def dce(fn: Function, types: dict | None = None) -> Function:
    """Remove what no output needs.  A write into an array or list is needed when any name
    that may hold the same storage (:mod:`.storage`) is read after it, not only its own."""
    from .storage import Storage
    body, _ = _DCE(Storage(fn, types or {})).block(fn.body, set(), True)
    fn.body = body
    return fn


def dataflow_graph(fn: Function) -> "nx.DiGraph":
    """The dataflow graph: one node per statement (primal or R), an edge from each
    definition to each statement reading it (loop back-edges included).  An R-statement is
    shown with its formula: the operations of the rule's formula (the temporaries the
    R-transform's builder made, each read once) are written into it, as the emitter does."""
    import networkx as nx  # here, not at import: it costs 70 ms of every process's start
    g = nx.DiGraph(name=fn.name)
    last_def: dict[str, str] = {}
    counter = [0]
    inline = _formula_temps(fn)

    def reads_of(st):
        out = set()
        for v in _reads(st):
            out |= reads_of(inline[v]) if v in inline else {v}
        return out

    def add(st, label):
        counter[0] += 1
        nid = f"n{counter[0]}"
        g.add_node(nid, label=label, kind="R" if getattr(st, "is_r", False) else "primal",
                   line=st.loc.lineno, source=st.loc.text, stmt=st)
        return nid

    for p in fn.params:
        g.add_node(p, label=p, kind="R" if p in fn.rparams else "param",
                   line=fn.loc.lineno, source=fn.loc.text, stmt=None)
        last_def[p] = p

    def visit(stmts, second=False):
        for st in stmts:
            if isinstance(st, Assign) and st.target in inline:
                continue  # written into the R-statement reading it
            if isinstance(st, (Assign, SetItem, Append)):
                label = _label(st, fn, inline)
                nid = st.__dict__.setdefault("_gid", None) or add(st, label)
                st._gid = nid
                for v in sorted(reads_of(st)):
                    if v in last_def and last_def[v] != nid:
                        g.add_edge(last_def[v], nid, var=v)
                tgt = st.target if isinstance(st, Assign) else st.obj
                last_def[tgt] = nid
            elif isinstance(st, Return):
                nid = st.__dict__.get("_gid") or add(st, "return")
                st._gid = nid
                for v in sorted(reads_of(st)):
                    if v in last_def:
                        g.add_edge(last_def[v], nid, var=v)
            for b in blocks_of(st):
                visit(b)
                if isinstance(st, (For, While)):
                    visit(b, second=True)  # back edges

    visit(fn.body)
    return g


def _formula_temps(fn) -> dict:
    """The R-statements defining a temporary (not an R-value) read once: the operations of an
    R-rule's formula, name -> statement."""
    from collections import Counter
    from .nodes import walk
    uses, defs = Counter(), Counter()
    for st in walk(fn.body):
        uses.update(st.reads())
        if isinstance(st, Assign):
            defs[st.target] += 1
    rvalues = set(fn.rnames.values())
    return {st.target: st for st in walk(fn.body)
            if isinstance(st, Assign) and st.is_r and st.target in fn.temps
            and st.target not in rvalues and defs[st.target] == 1 and uses[st.target] == 1}


def _label(st, fn, inline):
    if isinstance(st, Assign) and st.is_r:
        from ..backend.emit import formula_source
        return f"{st.target} = {formula_source(st, fn, inline)}"
    if isinstance(st, Assign):
        return f"{st.target} = {st.prim}(...)"
    if isinstance(st, SetItem):
        return f"{st.obj}[...] = ..."
    return f"{st.obj}.append(...)"
