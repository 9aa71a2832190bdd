"""What a call fixes at compile time, and how dicts cross the boundary of the compiled code.

rop specialises a function on the ranks of its arguments; it also specialises on the
arguments whose *value* decides what code runs, the way backprop code from courses uses them:

* ``None`` (``loss(X, y=None)`` returns the scores when ``y is None``),
* strings (``activation="relu"`` chooses a branch),
* booleans (flags such as ``verbose=False``),
* dicts with string keys (``params = {"W1": ..., "b1": ...}``): the keys are fixed, the
  values are passed to the compiled code one by one (a dict is not a Numba value).

Such an argument is a *static*: the lowering reads its value (``is None`` and ``==`` on it
fold, a branch it decides is the only one compiled) and the generated function does not take
it.  A new value compiles a new specialisation, exactly as a new rank does.

The lowered function's ``signature`` says, per parameter of the user's function, what the
generated function takes for it: ``("arg", irname)``, ``("static", value)`` or
``("dict", ((key, entry), ...))`` with an entry of the same three kinds.  Results are
rebuilt from ``out_struct`` (dicts the function returns come back as dicts).
"""

from __future__ import annotations

from dataclasses import dataclass

DYN = None  # "not static": passed to the compiled code


@dataclass(frozen=True)
class StaticDict:
    """A dict argument's static part: its keys, in order, and each value's static part."""

    items: tuple  # ((key, static part or DYN), ...)

    def __repr__(self):
        return "{" + ", ".join(f"{k!r}: {'...' if v is DYN else repr(v)}" for k, v in self.items) + "}"


@dataclass(frozen=True)
class StaticValue:
    """None, a string or a bool: compiled in as a constant."""

    value: object

    def __repr__(self):
        return repr(self.value)


@dataclass(frozen=True)
class StaticLength:
    """The length of a list argument whose elements are passed as they are: compiled in when
    the function builds dict keys from a loop over ``range(len(xs))`` (a character-level RNN's
    ``xs[t]``, ``hs[t - 1]``), which is then unrolled for that length."""

    n: int

    def __repr__(self):
        return f"len={self.n}"


@dataclass(frozen=True)
class StaticObject:
    """An object argument (``self`` of a method): its class, and its attributes as a dict's
    items (``self.weights`` is read like ``self['weights']``).  Attributes rop cannot pass
    (a random generator, a file) are left out: reading one is refused at the line."""

    cls: type
    items: tuple

    def __repr__(self):
        return f"<{self.cls.__qualname__} {StaticDict(self.items)!r}>"


def _user_object(x) -> bool:
    t = type(x)
    mod = getattr(t, "__module__", "") or ""
    return hasattr(x, "__dict__") and not isinstance(x, type) and not callable(x) and \
        mod != "builtins" and not mod.startswith(("numpy", "jax", "torch", "scipy"))


def _passable(x) -> bool:
    import numpy as np
    if isinstance(x, (np.ndarray, float, int, np.number)):
        return True
    if isinstance(x, (list, tuple)):
        return all(_passable(e) for e in x)
    return False


def static_of(x):
    """The static part of an argument, or DYN when the compiled code takes it as it is."""
    import types as _types
    if x is None or isinstance(x, (str, bool, type, _types.FunctionType)):
        return StaticValue(x)
    if _user_object(x):
        items = []
        for k, v in vars(x).items():
            # an object's integers are its structure (self.num_layers): compiled in, so that
            # loops over them can build keys ('W%d' % (i + 1)); a dict's are data
            s = StaticValue(v) if isinstance(v, int) and not isinstance(v, bool) else static_of(v)
            if s is DYN and not _passable(v):
                continue
            items.append((k, s))
        return StaticObject(type(x), tuple(items))
    if isinstance(x, dict):
        if not all(isinstance(k, str) for k in x):
            return StaticDict(tuple((k, DYN) for k in x))  # refused at the lowering, by key
        return StaticDict(tuple((k, static_of(v)) for k, v in x.items()))
    return DYN


def statics_of(bound: dict) -> dict:
    """{parameter: static part} for the static arguments of a call."""
    out = {}
    for name, x in bound.items():
        s = static_of(x)
        if s is not DYN:
            out[name] = s
    return out


def statics_key(statics: dict) -> str:
    return repr(sorted(statics.items())) if statics else ""


# ----------------------------------------------------------------------------- flattening

def flatten(signature, bound: dict):
    """(IR parameter names, values) of a call, in the generated function's order."""
    names, values = [], []

    def walk(entry, x, where):
        kind = entry[0]
        if kind == "arg":
            names.append(entry[1])
            values.append(x)
        elif kind == "dict":
            for key, sub in entry[1]:
                walk(sub, x[key], f"{where}[{key!r}]")
        elif kind == "object":
            for key, sub in entry[2]:
                walk(sub, getattr(x, key), f"{where}.{key}")
    for pname, entry in signature:
        walk(entry, bound[pname], pname)
    return names, values


def leaves(entry) -> list:
    """The IR names an entry of the signature passes to the compiled code."""
    if entry[0] == "arg":
        return [entry[1]]
    if entry[0] == "dict":
        return [n for _, sub in entry[1] for n in leaves(sub)]
    if entry[0] == "object":
        return [n for _, sub in entry[2] for n in leaves(sub)]
    return []


def entry_at(signature: dict, path: str):
    """The signature entry of ``self.weights`` (a parameter, then attributes or keys)."""
    head, *rest = path.split(".")
    e = signature.get(head)
    for part in rest:
        if e is None or e[0] not in ("object", "dict"):
            return None
        e = dict(e[2] if e[0] == "object" else e[1]).get(part)
    return e


def value_at(bound: dict, path: str):
    head, *rest = path.split(".")
    x = bound[head]
    for part in rest:
        x = x[part] if isinstance(x, dict) else getattr(x, part)
    return x


def flat_direction(entry, d, pname, fname, p):
    """The direction for a parameter, flattened like the parameter (a dict: the same keys)."""
    from ..errors import RopCallError
    if entry[0] == "dict":
        if not isinstance(d, dict):
            raise RopCallError(f"{fname}.hvp: `{pname}` is a dict, so its direction must be a dict "
                               f"with the same keys ({', '.join(repr(k) for k, _ in entry[1])}), "
                               f"not {type(d).__name__}")
        keys = [k for k, sub in entry[1] if leaves(sub)]
        missing = [k for k in keys if k not in d]
        extra = [k for k in d if k not in dict(entry[1])]
        if missing or extra:
            what = (f"lacks {', '.join(map(repr, missing))}" if missing else
                    f"has keys {', '.join(map(repr, extra))} that `{pname}` does not have")
            raise RopCallError(f"{fname}.hvp: the direction for `{pname}` {what}; it must have "
                               f"the keys of `{pname}`")
        out = []
        for k, sub in entry[1]:
            if leaves(sub):
                out += flat_direction(sub, d[k], f"{pname}[{k!r}]", fname, p[k])
        return out
    if entry[0] == "arg":
        return [(entry[1], pname, p, d)]
    return []


def rebuild(struct, value):
    """A result of the compiled code in the structure the user's function returns."""
    if struct is None:
        return value
    kind = struct[0]
    if kind == "dict":
        return {k: rebuild(s, v) for (k, s), v in zip(struct[1], value)}
    if kind == "tuple":
        return tuple(rebuild(s, v) for s, v in zip(struct[1], value))
    return value

