"""What the lowering knows before the program runs (a mixin of the Lowerer).

Backprop code from courses decides much of its structure with values known at compile time:
``if y is None: return scores``, ``activation="relu"``, dicts of parameters whose keys are
built in a loop (``parameters["W" + str(l)]``), ``assert A.shape == (n, m)``.  The lowering
folds these, so the generated code is the code that runs for this call's statics
(frontend/statics.py):

* *constants*: names bound once to None, a string or a bool, and static parameters, read as
  constants; ``is None``, ``==`` and ``not`` on constants fold, and an ``if`` on a folded test
  lowers only the branch taken;
* *static integers*: names bound once to an integer computable now (``L = len(params) // 2``,
  ``len`` of a dict or of a list whose length is known), for range bounds and keys;
* *dicts* with string keys live only here (:class:`DictVal`): each key's value is a variable
  of the IR (``grads["W1"]`` is ``grads_W1``), so a dict costs nothing at run time and NumPy's
  aliasing of the values is the variables' (``grads["W1"] = dW; dW += x`` updates both);
* a ``for`` over ``range`` with static bounds whose body builds keys from the loop variable
  (``"W" + str(l)``, ``f"W{l}"``) is unrolled, and so is a loop over a dict's keys or items;
* ``assert`` and ``raise`` stay runtime checks; their messages are read now.
"""

from __future__ import annotations

import ast
import builtins
from collections import Counter
from types import FunctionType

from ..ir.nodes import Const, Effect, If, Return, TupleOp, Var
from .names import MISSING

_STATIC_TYPES = (str, bool, type(None))


class DictVal:
    """A dict the lowering holds at compile time: key -> the operand holding its value (a Var
    of the IR, a constant, or a nested DictVal).  ``names`` keeps each key's IR name, so a
    key set on both sides of an ``if`` is one variable."""

    def __init__(self, name=None, param=False):
        self.name = name
        self.param = param  # a dict argument (or inside one): never written, as NumPy's caller's
        self.entries: dict = {}
        self.names: dict = {}

    def __repr__(self):
        return f"DictVal({self.name}, {list(self.entries)})"


class ObjVal(DictVal):
    """An object argument (``self``): its attributes are a DictVal's entries, its class gives
    the methods (inlined with ``self`` bound to it)."""

    def __init__(self, name, cls, param=True):
        super().__init__(name, param=param)
        self.cls = cls

    def __repr__(self):
        return f"ObjVal({self.name}: {self.cls.__qualname__}, {list(self.entries)})"


class Operand(ast.expr):
    """An operand already lowered, standing where the lowering reads an ``ast`` node (the
    ``self`` of a method call)."""

    _fields = ()

    def __init__(self, value, like=None):
        super().__init__()
        self.value = value
        if like is not None:
            ast.copy_location(self, like)


def contains_dict(val) -> bool:
    if isinstance(val, DictVal):
        return True
    if isinstance(val, TupleOp):
        return any(contains_dict(i) for i in val.items)
    return False


def assignment_sites(fn_ast) -> Counter:
    """How many places bind each name (a loop variable or an augmented assignment counts
    twice): a name bound at one place holds one value, which the lowering may know."""
    c: Counter = Counter()

    def names(t):
        if isinstance(t, ast.Name):
            yield t.id
        elif isinstance(t, (ast.Tuple, ast.List)):
            for e in t.elts:
                yield from names(e)
        elif isinstance(t, ast.Starred):
            yield from names(t.value)
    for n in ast.walk(fn_ast):
        if isinstance(n, ast.Assign):
            for t in n.targets:
                for nm in names(t):
                    c[nm] += 1
        elif isinstance(n, ast.AnnAssign):
            for nm in names(n.target):
                c[nm] += 1
        elif isinstance(n, (ast.AugAssign, ast.For, ast.comprehension)):
            for nm in names(n.target):
                c[nm] += 2
    return c


def _mentions(node, name) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node))


def _builds_string(node) -> bool:
    """A string made at run time in Python: an f-string, ``str(...)``, ``"W" + ...``."""
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("str", "repr"):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return any(isinstance(s, ast.Constant) and isinstance(s.value, str)
                   for s in (node.left, node.right))
    return False


class CompileTime:
    """The compile-time methods of :class:`rop.frontend.lower.Lowerer`."""

    # ------------------------------------------------------------------ static values
    def static_eval(self, node):
        """The value of ``node`` if the lowering knows it now, else MISSING."""
        try:
            return self._static(node)
        except Exception:  # an operation Python itself would refuse: not static
            return MISSING

    def _static(self, node):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            n = self.scope.get(node.id)
            if n is None:
                obj = self.globs.get(node.id, MISSING)
                return obj if isinstance(obj, (int, float, str)) and not isinstance(obj, bool) \
                    else MISSING
            if n in self.consts:
                return self.consts[n].value
            if n in self.static_ints:
                return self.static_ints[n]
            return MISSING
        if isinstance(node, ast.Attribute):  # self.num_layers: an object's static attribute
            obj = self.dict_of(node.value)
            e = obj.entries.get(node.attr) if isinstance(obj, ObjVal) else None
            return e.value if isinstance(e, Const) else MISSING
        if isinstance(node, ast.Subscript):  # d['n']: a static value held in a dict
            d = self.dict_of(node.value)
            if d is None or isinstance(d, ObjVal):
                return MISSING
            key = self._static(node.slice)
            e = d.entries.get(key) if isinstance(key, str) else None
            return e.value if isinstance(e, Const) else MISSING
        if isinstance(node, ast.JoinedStr):
            parts = []
            for p in node.values:
                if isinstance(p, ast.Constant):
                    parts.append(p.value)
                    continue
                v = self._static(p.value)
                if v is MISSING:
                    return MISSING
                v = {"r": repr, "s": str, "a": ascii}.get(chr(p.conversion), lambda x: x)(v) \
                    if p.conversion != -1 else v
                spec = "" if p.format_spec is None else self._static(p.format_spec)
                if spec is MISSING:
                    return MISSING
                parts.append(format(v, spec))
            return "".join(parts)
        if isinstance(node, ast.BinOp):
            a, b = self._static(node.left), self._static(node.right)
            if a is MISSING or b is MISSING:
                return MISSING
            op = {ast.Add: lambda x, y: x + y, ast.Sub: lambda x, y: x - y,
                  ast.Mult: lambda x, y: x * y, ast.FloorDiv: lambda x, y: x // y,
                  ast.Mod: lambda x, y: x % y}.get(type(node.op))
            if op is None or not all(isinstance(v, (int, str)) for v in (a, b)):
                return MISSING
            return op(a, b)
        if isinstance(node, ast.UnaryOp):
            a = self._static(node.operand)
            if a is MISSING:
                return MISSING
            if isinstance(node.op, ast.Not):
                return not a
            if isinstance(node.op, ast.USub) and isinstance(a, int):
                return -a
            return MISSING
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id not in self.scope and node.func.id not in self.globs \
                and len(node.args) == 1 and not node.keywords:
            f = node.func.id
            if f == "len":
                return self.static_len(node.args[0])
            if f in ("str", "int", "repr"):
                a = self._static(node.args[0])
                return MISSING if a is MISSING else getattr(builtins, f)(a)
            return MISSING
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            a, b = self._static(node.left), self._static(node.comparators[0])
            op = node.ops[0]
            if isinstance(op, (ast.In, ast.NotIn)):
                d = self.dict_of(node.comparators[0])
                if d is None or a is MISSING:
                    return MISSING
                return (a in d.entries) == isinstance(op, ast.In)
            if a is MISSING or b is MISSING:
                return MISSING
            return {ast.Eq: lambda: a == b, ast.NotEq: lambda: a != b, ast.Is: lambda: a is b,
                    ast.IsNot: lambda: a is not b, ast.Lt: lambda: a < b, ast.LtE: lambda: a <= b,
                    ast.Gt: lambda: a > b, ast.GtE: lambda: a >= b}.get(type(op), lambda: MISSING)()
        return MISSING

    def static_len(self, node):
        d = self.dict_of(node)
        if d is not None:
            return len(d.entries)
        if isinstance(node, ast.Name) and node.id in self.scope:
            return self.list_lens.get(self.scope[node.id], MISSING)
        return MISSING

    def note_static_binding(self, user_name, ir_name, value_node):
        """``x = <value known now>`` at x's only binding: remember the value (strings, None
        and bools are then read as constants; integers serve range bounds and keys)."""
        self.consts.pop(ir_name, None)
        self.static_ints.pop(ir_name, None)
        if self.sites.get(user_name, 0) != 1 or value_node is None:
            return
        v = self.static_eval(value_node)
        if isinstance(v, _STATIC_TYPES):
            self.consts[ir_name] = Const(v)
            self.maybe_none.discard(ir_name)
        elif isinstance(v, int):
            self.static_ints[ir_name] = v

    # ------------------------------------------------------------------ dicts
    def dict_of(self, node):
        """The DictVal an expression denotes (a dict variable, or a dict held in a dict)."""
        if isinstance(node, ast.Name):
            n = self.scope.get(node.id)
            return self.dictvals.get(n) if n is not None else None
        if isinstance(node, ast.Subscript):
            d = self.dict_of(node.value)
            if d is None or isinstance(d, ObjVal):
                return None
            e = d.entries.get(self.static_key(node.slice, d, node))
            return e if isinstance(e, DictVal) else None
        if isinstance(node, ast.Attribute):  # self.layer1: an object held by an object
            d = self.dict_of(node.value)
            if isinstance(d, ObjVal):
                e = d.entries.get(node.attr)
                return e if isinstance(e, DictVal) else None
        return None

    def static_key(self, key_node, d, node):
        key = self.static_eval(key_node)
        if key is MISSING:
            self.error(key_node, f"the key of dict `{d.name}` must be known at compile time",
                       "use string keys, built from constants and from the variable of a "
                       "`for` loop over `range` with constant bounds (that loop is unrolled), "
                       "e.g. `params['W' + str(l)]`; for values indexed by a time step `t` use a "
                       "list: `hs = [None] * T` and `hs[t]`", needs_statics=True,
                       needs_length=True)
        if not isinstance(key, (str, int)) or isinstance(key, bool):
            self.error(key_node, f"dict keys must be strings, not {type(key).__name__}",
                       "use string keys such as 'W1'")
        return key

    def dict_get(self, d, key_node, node):
        key = self.static_key(key_node, d, node)
        if key not in d.entries:
            have = ", ".join(repr(k) for k in d.entries) or "none"
            self.error(key_node, f"KeyError: {key!r} is not a key of `{d.name}` here (its keys: "
                                 f"{have})", "set the key before reading it")
        return d.entries[key]

    def dict_set(self, d, key_node, val, st):
        # an attribute set on an object argument (a layer's forward storing `self.inputs`) is a
        # variable of the compiled code: the caller's object is never changed (the original
        # function would change it; rop changes none of its arguments)
        if d.param and not isinstance(d, ObjVal):
            self.error(key_node, f"cannot store into `{d.name}`: it is a dict argument and rop never "
                                 "changes its arguments",
                       "build a new dict inside the function, e.g. `new = {}` and "
                       "`new[key] = ...`")
        key = self.static_key(key_node, d, st)
        if isinstance(val, DictVal) or (isinstance(val, Const) and isinstance(val.value, _STATIC_TYPES)):
            d.entries[key] = val
            return
        if isinstance(val, TupleOp) and contains_dict(val):
            self.error(st, "a tuple holding a dict cannot be stored in a dict",
                       "store the dict itself, or its values one by one")
        name = d.names.get(key)
        if name is None:
            base = f"{d.name or 'd'}_{key}"
            base = "".join(c if c.isalnum() or c == "_" else "_" for c in base)
            name = d.names[key] = self.namer.fresh(base)
        self.bind_ir(name, val, st)
        d.entries[key] = Var(name)

    def expr_Dict(self, node, target=None):
        d = DictVal(self.user_name_of(target))
        for k, v in zip(node.keys, node.values):
            if k is None:
                self.error(v, "`**` unpacking in a dict literal is not supported",
                           "write the keys out, or set them one by one")
            self.dict_set(d, k, self.expr(v), node)
        return d

    def user_name_of(self, ir_name):
        if ir_name is None:
            return None
        for u, n in self.scope.items():
            if n == ir_name:
                return u
        return ir_name

    def param_dict(self, name, static, params, signature_items, obj=None):
        """A dict argument: a DictVal whose array values are parameters of the IR (an object
        argument: an ObjVal, its attributes likewise)."""
        from .statics import DYN, StaticDict, StaticObject
        d = DictVal(name, param=True) if obj is None else ObjVal(name, obj)
        for key, sub in static.items:
            if not isinstance(key, str):
                self.error(self.fn_ast, f"dict argument `{name}` has a key {key!r}; rop takes dicts "
                                        "with string keys", "use string keys such as 'W1'")
            if sub is DYN:
                base = "".join(c if c.isalnum() or c == "_" else "_" for c in f"{name}_{key}")
                base = base.replace("__", "_").strip("_")
                ir = d.names[key] = self.namer.fresh(base)
                params.append(ir)
                d.entries[key] = Var(ir)
                signature_items.append((key, ("arg", ir)))
            elif isinstance(sub, StaticDict):
                inner_items = []
                d.entries[key] = self.param_dict(f"{name}[{key!r}]", sub, params, inner_items)
                signature_items.append((key, ("dict", tuple(inner_items))))
            elif isinstance(sub, StaticObject):
                inner_items = []
                d.entries[key] = self.param_dict(f"{name}.{key}", sub, params, inner_items,
                                                 obj=sub.cls)
                signature_items.append((key, ("object", sub.cls, tuple(inner_items))))
            else:
                d.entries[key] = Const(sub.value)
                signature_items.append((key, ("static", sub.value)))
        return d

    # ------------------------------------------------------------------ objects
    def object_attribute(self, obj, node):
        """``self.weights``: the attribute's operand; a class attribute that is a number or a
        string is a constant."""
        if node.attr in obj.entries:
            return obj.entries[node.attr]
        if not obj.param and not hasattr(obj.cls, node.attr):
            self.error(node, f"AttributeError: the {obj.cls.__qualname__} object `{obj.name}` has no "
                             f"attribute `{node.attr}` here", "set it before reading it")
        v = getattr(obj.cls, node.attr, MISSING)
        if isinstance(v, (int, float, str, bool, type(None))):
            return Const(v)
        if isinstance(v, (type, FunctionType)) or callable(v):
            return Const(v)
        self.error(node, f"attribute `{node.attr}` of `{obj.name}` ({obj.cls.__qualname__}) cannot "
                         "be used in compiled code: it is missing, or not an array, a number, a "
                         "list of arrays, a dict, None, a string or a bool",
                   "pass the value as an argument, or store it on the object as one of those")

    def callee(self, f):
        """The function a call's callee denotes through an object or a class, and the
        ``self`` to pass it: ``self.feedforward`` (a method), ``self.cost.delta`` and
        ``CrossEntropyCost.delta`` (static methods); (None, None) if it is none of these."""
        if not isinstance(f, ast.Attribute):
            return None, None
        base = f.value
        obj = self.dict_of(base) if isinstance(base, (ast.Name, ast.Subscript)) else None
        if obj is None and isinstance(base, ast.Attribute):
            inner = self.dict_of(base.value)
            if isinstance(inner, ObjVal):
                e = self.object_attribute(inner, base)
                obj = e if isinstance(e, DictVal) else None
                if isinstance(e, Const) and isinstance(e.value, type):
                    return self._class_member(e.value, f.attr, f)
        if isinstance(obj, ObjVal):
            if f.attr in obj.entries:
                e = obj.entries[f.attr]
                if isinstance(e, Const) and isinstance(e.value, FunctionType):
                    return e.value, None  # a function stored on the object
                return None, None
            raw = None
            for klass in obj.cls.__mro__:
                if f.attr in vars(klass):
                    raw = vars(klass)[f.attr]
                    break
            if isinstance(raw, staticmethod):
                return raw.__func__, None
            if isinstance(raw, classmethod):
                self.error(f, "class methods are not supported in compiled code",
                           "make it a static method or a plain function")
            if isinstance(raw, FunctionType):
                return raw, obj
            return None, None
        if isinstance(base, ast.Name) and base.id not in self.scope:
            cls = self.globs.get(base.id)
            if isinstance(cls, type):
                return self._class_member(cls, f.attr, f)
        return None, None

    def construct(self, cls, node):
        """``layer = Dense(W, b)`` inside the function: an object held at compile time, its
        ``__init__`` inlined with ``self`` bound to it (its attributes become variables)."""
        obj = ObjVal(None, cls, param=False)
        init = None
        for klass in cls.__mro__:
            if "__init__" in vars(klass):
                init = vars(klass)["__init__"]
                break
        if isinstance(init, FunctionType):
            call = ast.copy_location(ast.Call(func=node.func, args=[Operand(obj, node)] + list(node.args),
                                              keywords=node.keywords), node)
            self.call_helper(init, call, None, statement=True)
        elif node.args or node.keywords:
            self.error(node, f"{cls.__qualname__}() takes no arguments")
        return obj

    def user_class(self, obj) -> bool:
        mod = getattr(obj, "__module__", "") or ""
        return isinstance(obj, type) and mod.partition(".")[0] not in (
            "builtins", "numpy", "scipy", "jax", "torch", "numba", "rop", "math")

    def _class_member(self, cls, name, node):
        raw = None
        for klass in cls.__mro__:
            if name in vars(klass):
                raw = vars(klass)[name]
                break
        if isinstance(raw, staticmethod):
            return raw.__func__, None
        if isinstance(raw, FunctionType):
            return raw, None  # called through the class: self is an explicit argument
        self.error(node, f"`{cls.__qualname__}.{name}` is not a function rop can inline")

    # ------------------------------------------------------------------ results
    def flatten_result(self, val, node):
        """A returned value for the compiled code (dicts become tuples of their values) and
        its structure, to rebuild the dicts outside (statics.rebuild); None if no dicts."""
        if isinstance(val, DictVal):
            items, structs = [], []
            for k, e in val.entries.items():
                v, s = self.flatten_result(e, node)
                items.append(v)
                structs.append((k, s))
            return TupleOp(tuple(items)), ("dict", tuple(structs))
        if isinstance(val, TupleOp) and contains_dict(val):
            pairs = [self.flatten_result(i, node) for i in val.items]
            return TupleOp(tuple(p[0] for p in pairs)), ("tuple", tuple(p[1] for p in pairs))
        return val, None

    # ------------------------------------------------------------------ folding
    def fold_is(self, node, left, right, negate):
        """``a is None`` / ``a is not None``: arrays and numbers are never None, and a static
        None is known; anything else cannot be decided now."""
        for a, b in ((left, right), (right, left)):
            if isinstance(b, Const) and b.value is None:
                if isinstance(a, Const):
                    return Const((a.value is None) != negate)
                if isinstance(a, DictVal):
                    return Const(negate)
                if isinstance(a, (Var, TupleOp)):
                    if isinstance(a, Var) and a.name in self.maybe_none:
                        self.error(node, "rop cannot tell at compile time whether this value is "
                                         "None: it is None on some paths only",
                                   "bind the name to None or to a value at one place only, or "
                                   "pass None as an argument (rop compiles for None-ness)",
                                   needs_statics=True)
                    return Const(negate)
        if isinstance(left, Const) and isinstance(right, Const):
            return Const((left.value is right.value) != negate)
        self.error(node, "`is` / `is not` compares with None only here",
                   "write `x is None` or `x is not None`; compare values with ==")

    # ------------------------------------------------------------------ statements
    def terminated(self) -> bool:
        """The statement just lowered leaves the block (return or raise): the rest is dead."""
        last = self.out[-1] if self.out else None
        return isinstance(last, Return) or (isinstance(last, Effect) and last.call.startswith("raise "))

    def static_if(self, st, test) -> bool:
        """``if`` on a test known now: lower only the branch taken."""
        if not isinstance(test, Const):
            return False
        self.block_nodoc(st.body if test.value else st.orelse)
        return True

    def checked_branches(self, st, lower_body, lower_orelse):
        """Lower the two branches of a run-time ``if``; a dict key set, or a name bound to a
        dict, on one side only is refused (its value would depend on the path)."""
        before = {id(d): (d, dict(d.entries)) for d in self._live_dicts()}
        dicts_before = dict(self.dictvals)
        body = lower_body()
        after_body = {i: dict(d.entries) for i, (d, _) in before.items()}
        dicts_body = dict(self.dictvals)
        for i, (d, entries) in before.items():
            d.entries = dict(entries)
        self.dictvals.clear()
        self.dictvals.update(dicts_before)
        orelse = lower_orelse()
        for i, (d, _) in before.items():
            a, b = after_body[i], d.entries
            for k in set(a) ^ set(b):
                self.error(st, f"dict key {k!r} of `{d.name}` is set on one side of this `if` only",
                           "set it on both sides (or before the `if`)")
            for k in a:
                if type(a[k]) is not type(b[k]) or (isinstance(a[k], (Const, DictVal)) and a[k] is not b[k]
                                                    and a[k] != b[k]):
                    self.error(st, f"dict key {k!r} of `{d.name}` holds a different kind of value "
                                   "on each side of this `if`", "give it an array on both sides")
        for n in set(dicts_body) | set(self.dictvals):
            if dicts_body.get(n) is not self.dictvals.get(n):
                self.error(st, f"`{self.user_name_of(n)}` is bound to a dict on one side of this "
                               "`if` only", "bind it before the `if`")
        return body, orelse

    def _live_dicts(self):
        seen, out = set(), []

        def add(d):
            if id(d) in seen:
                return
            seen.add(id(d))
            out.append(d)
            for e in d.entries.values():
                if isinstance(e, DictVal):
                    add(e)
        for d in list(self.dictvals.values()):
            add(d)
        return out

    def stmt_Assert(self, st):
        test = self.expr(st.test)
        msg = self.message(st.msg) if st.msg is not None else \
            "assert " + ast.get_source_segment(self.source_text(), st.test) \
            if self.source_text() else "assertion failed"
        self.runtime_check(test, "AssertionError", msg, st)

    def stmt_Raise(self, st):
        if st.exc is None:
            self.error(st, "a bare `raise` has nothing to re-raise here",
                       "raise an exception: `raise ValueError('...')`")
        exc = st.exc
        call = exc if isinstance(exc, ast.Call) else None
        cls = self.resolve_static(call.func if call else exc)
        from ..runtime.checks import RAISABLE
        if not (isinstance(cls, type) and issubclass(cls, BaseException)
                and getattr(builtins, cls.__name__, None) is cls and cls.__name__ in RAISABLE):
            self.error(exc, "this exception cannot be raised in compiled code",
                       "raise one of Python's own: " + ", ".join(RAISABLE[:6]) + ", ...")
        msg = self.message(call.args[0]) if call and call.args else ""
        self.emit(Effect(f"raise rt.{cls.__name__}", (Const(msg),), self.loc(st), is_r=False))

    def runtime_check(self, test, exc, msg, st):
        if isinstance(test, Const):
            if not test.value:
                self.emit(Effect(f"raise rt.{exc}", (Const(msg),), self.loc(st), is_r=False))
            return
        bad = self.assign("not", (test,), st)
        self.emit(If(bad, [Effect(f"raise rt.{exc}", (Const(msg),), self.loc(st), is_r=False)], [],
                     self.loc(st)))

    def message(self, node) -> str:
        """An exception's message: its value when known now, else its source text."""
        v = self.static_eval(node)
        if v is not MISSING:
            return str(v)
        text = ast.get_source_segment(self.source_text(), node) if self.source_text() else None
        return text or ast.unparse(node)

    def source_text(self) -> str:
        return "\n".join(self.src_lines)

    # ------------------------------------------------------------------ unrolling
    def unrolled_range(self, st, it, backward) -> bool:
        """``for l in range(a, b)`` with a, b known now and a body that builds keys from ``l``:
        lower the body once per value, ``l`` a constant in each."""
        if not isinstance(st.target, ast.Name):
            return False
        var = st.target.id
        if not any(_builds_string(n) and _mentions(n, var) for n in ast.walk(ast.Module(st.body, []))) \
                and not self._keys_from(st.body, var):
            return False
        bounds = [self.static_eval(a) for a in it.args]
        if any(not isinstance(b, int) or isinstance(b, bool) for b in bounds) or it.keywords:
            return False
        values = list(range(*bounds))
        if backward:
            values.reverse()
        self.unroll(st, [(var, Const(v)) for v in values])
        return True

    def _keys_from(self, body, var) -> bool:
        """The body subscripts a dict with a key mentioning ``var``."""
        for n in ast.walk(ast.Module(body, [])):
            if isinstance(n, ast.Subscript) and _mentions(n.slice, var) and \
                    self.dict_of(n.value) is not None:
                return True
        return False

    def unroll(self, st, steps):
        """Lower ``st.body`` once per step; a step binds the loop's names to constants (keys,
        static integers) or to operands."""
        for n in ast.walk(ast.Module(st.body, [])):
            if isinstance(n, (ast.Break, ast.Continue)):
                self.error(n, "`break`/`continue` in a loop rop unrolls (its body builds dict "
                              "keys) is not supported", "test the condition with `if` instead")
        for binds in steps:
            for var, val in (binds if isinstance(binds, list) and binds and isinstance(binds[0], tuple)
                             else [binds]):
                name = self.local(var)
                self._assignable_name(var)
                self.consts.pop(name, None)
                self.static_ints.pop(name, None)
                if isinstance(val, Const) and isinstance(val.value, int) and not isinstance(val.value, bool):
                    self.bind_ir(name, val, st)  # the loop variable, for code after the loop
                    self.static_ints[name] = val.value
                elif isinstance(val, Const) and isinstance(val.value, _STATIC_TYPES):
                    self.consts[name] = val
                else:
                    self.bind_ir(name, val, st)
            self.block_nodoc(st.body)

    def unrolled_dict_loop(self, st) -> bool:
        """``for k in d``, ``for k in d.keys()``, ``for v in d.values()``,
        ``for k, v in d.items()`` over a dict held at compile time: unrolled."""
        it = st.iter
        kind = "keys"
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) and not it.args \
                and it.func.attr in ("keys", "values", "items"):
            kind, it = it.func.attr, it.func.value
        d = self.dict_of(it)
        if d is None:
            return False
        steps = []
        for k, e in list(d.entries.items()):
            if kind == "keys":
                if not isinstance(st.target, ast.Name):
                    self.error(st.target, "the keys of a dict are single names")
                steps.append([(st.target.id, Const(k))])
            elif kind == "values":
                if not isinstance(st.target, ast.Name):
                    self.error(st.target, "bind a dict's values to a single name")
                steps.append([(st.target.id, e)])
            else:
                t = st.target
                if not (isinstance(t, (ast.Tuple, ast.List)) and len(t.elts) == 2
                        and all(isinstance(x, ast.Name) for x in t.elts)):
                    self.error(t, "loop over `d.items()` as `for key, value in d.items():`")
                steps.append([(t.elts[0].id, Const(k)), (t.elts[1].id, e)])
        self.unroll(st, steps)
        return True
