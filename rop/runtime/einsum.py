"""``rt.einsum(subscripts, operands)``: ``np.einsum(subscripts, *operands)``, also in Numba.

Numba has no ``einsum``.  The subscripts are a constant of the user's program, so the
overload reads them at compile time and generates the loop nest they describe: one loop per
output letter, inside them one per summed letter accumulating the product of the operands'
elements.  That is einsum's definition, so every subscripts string without ``...`` means
the same in both modes (a letter repeated within one operand, ``"ii->"``, is its diagonal;
a letter in no output is summed).  ``...`` (broadcast dimensions) is refused by the rule
table at the user's line, before anything runs (:func:`parse` says why).

The loop nest is not BLAS: a large contraction that is a matrix product runs faster
written with ``@``.
"""

from __future__ import annotations

import functools

import numpy as np
from numba import types
from numba.core.errors import TypingError
from numba.extending import overload
from numba.np.numpy_support import as_dtype


def einsum(subscripts, operands):
    """``np.einsum(subscripts, *operands)`` (operands passed as one tuple)."""
    return np.einsum(subscripts, *operands)


def parse(subscripts: str, n_operands: int):
    """(input letters per operand, output letters) of explicit or implicit (no ``->``)
    subscripts, or raise ValueError saying what rop cannot compile."""
    s = subscripts.replace(" ", "")
    if "..." in s:
        raise ValueError("einsum subscripts with `...` (broadcast dimensions) are not supported")
    lhs, arrow, out = s.partition("->")
    if "->" in out:
        raise ValueError("einsum subscripts have more than one `->`")
    ins = lhs.split(",")
    if len(ins) != n_operands:
        raise ValueError(f"einsum subscripts name {len(ins)} operand(s), the call passes "
                         f"{n_operands}")
    letters = "".join(ins)
    if not all(c.isalpha() for c in letters + out):
        raise ValueError(f"einsum subscripts {subscripts!r} may hold letters, `,` and `->` only")
    if not arrow:  # implicit mode: the letters that occur once, in alphabetical order
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    if len(set(out)) != len(out):
        raise ValueError(f"einsum output {out!r} repeats a letter")
    missing = set(out) - set(letters)
    if missing:
        raise ValueError(f"einsum output letter(s) {''.join(sorted(missing))} are in no operand")
    return ins, out


@functools.lru_cache(maxsize=None)
def _impl(subscripts, ranks, dtype):
    ins, out = parse(subscripts, len(ranks))
    for k, (sub, r) in enumerate(zip(ins, ranks)):
        if len(sub) != r:
            raise TypingError(f"rop.runtime.einsum: operand {k} has rank {r}, the subscripts "
                              f"{subscripts!r} give it {len(sub)} letter(s)")
    size, L = {}, ["def impl(subscripts, operands):"]
    for k, sub in enumerate(ins):
        L.append(f"    a{k} = operands[{k}]")
        for d, c in enumerate(sub):
            if c not in size:
                size[c] = f"a{k}.shape[{d}]"
                L.append(f"    n_{c} = {size[c]}")
            else:
                L += [f"    if a{k}.shape[{d}] != n_{c}:",
                      f"        raise ValueError('einsum: operand {k} has the wrong size along "
                      f"`{c}`')"]
    summed = [c for c in dict.fromkeys("".join(ins)) if c not in out]
    if out:
        L.append("    out = np.empty((" + "".join(f"n_{c}, " for c in out) + "), DT)")
    ind = "    "
    for c in out:
        L.append(f"{ind}for {c}_ in range(n_{c}):")
        ind += "    "
    L.append(f"{ind}acc = DT(0)")
    inner = ind
    for c in summed:
        L.append(f"{inner}for {c}_ in range(n_{c}):")
        inner += "    "
    term = " * ".join(f"a{k}[{', '.join(c + '_' for c in sub)}]" if sub else f"a{k}"
                      for k, sub in enumerate(ins))
    L.append(f"{inner}acc += {term}")
    if out:
        L.append(f"{ind}out[{', '.join(c + '_' for c in out)}] = acc")
        L.append("    return out")
    else:
        L.append("    return acc")
    ns = {"np": np, "DT": getattr(np, dtype)}
    exec(compile("\n".join(L) + "\n", f"<rop.runtime.einsum {subscripts!r}>", "exec"), ns)
    return ns["impl"]


@overload(einsum, prefer_literal=True)
def _ov_einsum(subscripts, operands):
    if not isinstance(subscripts, types.StringLiteral):
        raise TypingError("rop.runtime.einsum: the subscripts must be a constant string")
    if not isinstance(operands, types.BaseTuple):
        raise TypingError(f"rop.runtime.einsum: operands must be a tuple, got {operands}")
    ranks, dts = [], []
    for t in operands.types:
        if isinstance(t, types.Array):
            ranks.append(t.ndim)
            dts.append(as_dtype(t.dtype))
        elif isinstance(t, (types.Number, types.Boolean)):
            ranks.append(0)
            dts.append(as_dtype(t))
        else:
            raise TypingError(f"rop.runtime.einsum: unsupported operand {t}")
    dtype = np.result_type(*dts).name
    try:
        return _impl(subscripts.literal_value, tuple(ranks), dtype)
    except ValueError as exc:
        raise TypingError(f"rop.runtime.einsum: {exc}") from None
