"""The intermediate representation: three-address statements in structured regions.

Every operation is one :class:`Assign` ``target = prim(args)`` naming a primitive of
the rule table, the R-statements too: the R-transform flattens each rule's formula into
such statements (ir/builder.py), so no statement holds Python ``ast`` and only the
emitter prints Python.  Control flow stays structured (:class:`For`, :class:`While`,
:class:`If`) so the generated code keeps the user's loops and branches and the
R-statements can sit right beside their primal statements, in the same branch and
the same iteration (forward mode needs no tape).  Operands are variables,
constants, or static tuples/slices of operands (shapes, indices), which never need
a statement of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterator, Union


@dataclass(frozen=True)
class Loc:
    """Where a statement came from in the user's file (1-based line and column)."""

    filename: str
    lineno: int
    col: int
    text: str  # the stripped source line, for provenance comments and errors

    def short(self) -> str:
        import os
        return f"{os.path.basename(self.filename)}:{self.lineno}"


# ----------------------------------------------------------------------------- operands

@dataclass(frozen=True)
class Var:
    name: str


@dataclass(frozen=True)
class Const:
    value: object  # int, float, bool, None, Ellipsis, str


@dataclass(frozen=True)
class TupleOp:
    items: tuple


@dataclass(frozen=True)
class SliceOp:
    lo: object  # Operand or None
    hi: object
    step: object


Operand = Union[Var, Const, TupleOp, SliceOp]


def operand_vars(op) -> Iterator[str]:
    """Names read by an operand, recursively through tuples and slices."""
    if isinstance(op, Var):
        yield op.name
    elif isinstance(op, TupleOp):
        for it in op.items:
            yield from operand_vars(it)
    elif isinstance(op, SliceOp):
        for part in (op.lo, op.hi, op.step):
            if part is not None:
                yield from operand_vars(part)


def operand_ast(op):
    """An operand as the ``ast`` expression that spells it (for the emitter)."""
    import ast
    if isinstance(op, Var):
        return ast.Name(op.name, ast.Load())
    if isinstance(op, Const):
        return ast.Constant(op.value)
    if isinstance(op, TupleOp):
        return ast.Tuple(elts=[operand_ast(i) for i in op.items], ctx=ast.Load())
    if isinstance(op, SliceOp):
        return ast.Slice(*(None if p is None else operand_ast(p) for p in (op.lo, op.hi, op.step)))
    raise TypeError(op)


def rename_operand(op, mapping: dict):
    if isinstance(op, Var):
        new = mapping.get(op.name)
        if new is None:
            return op
        return new if not isinstance(new, str) else Var(new)
    if isinstance(op, TupleOp):
        return TupleOp(tuple(rename_operand(i, mapping) for i in op.items))
    if isinstance(op, SliceOp):
        return SliceOp(*(None if p is None else rename_operand(p, mapping)
                         for p in (op.lo, op.hi, op.step)))
    return op


# ----------------------------------------------------------------------------- statements

@dataclass
class Assign:
    """``target = prim(*args, **kwargs)``; ``kwargs`` hold static options such as ``axis``."""

    target: str
    prim: str
    args: tuple
    loc: Loc
    kwargs: tuple = ()  # tuple of (name, Operand)
    is_r: bool = False  # an R-statement made by the R-transform
    inplace: bool = False  # ``target op= x``: NumPy updates an array in place (ir/inplace.py)

    def reads(self):
        for a in self.args:
            yield from operand_vars(a)
        for _, a in self.kwargs:
            yield from operand_vars(a)


@dataclass
class SetItem:
    """``obj[index] = value`` on an array or list the function created."""

    obj: str
    index: object
    value: object
    loc: Loc
    is_r: bool = False

    def reads(self):
        yield self.obj
        yield from operand_vars(self.index)
        yield from operand_vars(self.value)


@dataclass
class Append:
    """``obj.append(value)`` on a list the function created."""

    obj: str
    value: object
    loc: Loc
    is_r: bool = False

    def reads(self):
        yield self.obj
        yield from operand_vars(self.value)


@dataclass
class Effect:
    """A call made for its effect, e.g. recording that a relaxation hit its cap."""

    call: str   # the runtime function, e.g. "rt.note_not_converged"
    args: tuple
    loc: Loc
    is_r: bool = True
    note: str = ""  # printed as a trailing comment

    def reads(self):
        for a in self.args:
            yield from operand_vars(a)


@dataclass
class For:
    """``for var in range(start, stop, step)`` (a backward loop has a negative step)."""

    var: str
    start: object
    stop: object
    step: object
    body: list
    loc: Loc

    def reads(self):
        for p in (self.start, self.stop, self.step):
            yield from operand_vars(p)


@dataclass
class While:
    """``while test`` where ``cond`` are the statements computing ``test`` before each trip."""

    cond: list
    test: object
    body: list
    loc: Loc

    def reads(self):
        yield from operand_vars(self.test)


@dataclass
class If:
    test: object
    body: list
    orelse: list
    loc: Loc

    def reads(self):
        yield from operand_vars(self.test)


@dataclass
class Return:
    value: object  # Operand (TupleOp for several results) or None
    loc: Loc
    r_value: object = None  # set by the R-transform: the R{} of value, an operand too

    def reads(self):
        if self.value is not None:
            yield from operand_vars(self.value)
        if self.r_value is not None:
            yield from operand_vars(self.r_value)


@dataclass
class Break:
    loc: Loc

    def reads(self):
        return iter(())


@dataclass
class Continue:
    loc: Loc

    def reads(self):
        return iter(())


@dataclass
class Function:
    """A lowered function: parameters, body, and what the frontend learnt about it."""

    name: str
    params: list
    body: list
    loc: Loc
    filename: str
    helpers: dict = field(default_factory=dict)  # name -> Function, emitted beside it
    user_names: set = field(default_factory=set)
    defaults: dict = field(default_factory=dict)
    list_copies: dict = field(default_factory=dict)  # copy of a strided view put in a list -> view
    temps: set = field(default_factory=set)  # the compiler's temporaries (the emitter folds them)
    namer: object = None  # the Namer that made every name (frontend/namer.py)
    captured: tuple = ()  # module-level values compiled in: (globals, name, value) (api.py)
    # what the generated function takes for each of the user's parameters, and how its results
    # hold dicts (frontend/statics.py): ("arg", name) | ("static", value) | ("dict", items)
    signature: tuple = ()
    out_struct: object = None
    scope: dict = field(default_factory=dict)  # user name -> IR name after the body
    # made by the R-transform
    rnames: dict = field(default_factory=dict)  # x -> the name of R{x}
    rparams: list = field(default_factory=list)  # the directions' parameters, in wrt order
    relax_loops: list = field(default_factory=list)  # transforms/relaxation.RelaxLoop


def blocks_of(stmt) -> list:
    """The nested statement lists of a structured statement."""
    if isinstance(stmt, For):
        return [stmt.body]
    if isinstance(stmt, While):
        return [stmt.cond, stmt.body]
    if isinstance(stmt, If):
        return [stmt.body, stmt.orelse]
    return []


def walk(stmts) -> Iterator:
    """Every statement, depth first, in program order."""
    for s in stmts:
        yield s
        for b in blocks_of(s):
            yield from walk(b)


def rename_stmt(s, ren: dict):
    """``s`` with the names in ``ren`` renamed (old -> new name), definitions and reads, in
    its nested blocks too; a new statement, ``s`` is left as it is."""
    def op(a):
        return None if a is None else rename_operand(a, ren)
    if isinstance(s, Assign):
        return replace(s, target=ren.get(s.target, s.target), args=tuple(op(a) for a in s.args),
                       kwargs=tuple((k, op(a)) for k, a in s.kwargs))
    if isinstance(s, SetItem):
        return replace(s, obj=ren.get(s.obj, s.obj), index=op(s.index), value=op(s.value))
    if isinstance(s, Append):
        return replace(s, obj=ren.get(s.obj, s.obj), value=op(s.value))
    if isinstance(s, If):
        return If(op(s.test), [rename_stmt(t, ren) for t in s.body],
                  [rename_stmt(t, ren) for t in s.orelse], s.loc)
    if isinstance(s, Return):
        return replace(s, value=op(s.value), r_value=op(s.r_value))
    if isinstance(s, Effect):
        return replace(s, args=tuple(op(a) for a in s.args))
    return s


def defined_names(stmt) -> set:
    if isinstance(stmt, Assign):
        return {stmt.target}
    if isinstance(stmt, (SetItem, Append)):
        return {stmt.obj}
    if isinstance(stmt, For):
        return {stmt.var}
    return set()


__all__ = [n for n in dir() if not n.startswith("_")] + ["replace"]
