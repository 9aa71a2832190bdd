"""``rt.einsum(subscripts, operands)``: ``np.einsum(subscripts, *operands)``, also in Numba.

Numba has no ``einsum``.  The subscripts are a constant of the user's program, so the
overload reads them at compile time and generates the loop nest they describe: one loop per
output letter, inside them one per summed letter accumulating the product of the operands'
elements.  That is einsum's definition, so every subscripts string without ``...`` means
the same in both modes (a letter repeated within one operand, ``"ii->"``, is its diagonal;
a letter in no output is summed).  ``...`` (broadcast dimensions) is refused by the rule
table at the user's line, before anything runs (:func:`parse` says why).

A contraction of two float64 arrays in which every letter is in the output or in both
operands (``ij,jk->ik``, ``bij,bkj->bik``, ``ij,ij->``: batch, free and summed letters) is
instead a batch of matrix products on BLAS: each operand transposed and reshaped to
(batch, free, summed) and (batch, summed, free), multiplied, and the result transposed to
the output's order -- what ``np.einsum(..., optimize=True)`` does with ``tensordot``.
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


def _as_matmul(ins, out):
    """(perm of A, perm of B, perm of the product, letter groups) when ``ins`` (two operands)
    is a batch of matrix products, else None."""
    if len(ins) != 2:
        return None
    a, b = ins
    if len(set(a)) != len(a) or len(set(b)) != len(b) or not a or not b:
        return None  # a diagonal, or a scalar operand: the loop nest
    if any(c not in out and c not in b for c in a) or any(c not in out and c not in a for c in b):
        return None  # a letter summed within one operand only
    batch = [c for c in out if c in a and c in b]
    left = [c for c in a if c in out and c not in b]
    right = [c for c in b if c in out and c not in a]
    summed = [c for c in a if c in b and c not in out]
    prod_order = batch + left + right
    return ([a.index(c) for c in batch + left + summed], [b.index(c) for c in batch + summed + right],
            [prod_order.index(c) for c in out], (batch, left, summed, right))


def _group(letters):
    return " * ".join(f"n_{c}" for c in letters) or "1"


@functools.lru_cache(maxsize=None)
def _impl(subscripts, ranks, dtype, blas):
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
    plan = _as_matmul(ins, out) if blas else None
    if plan is not None:
        pa, pb, po, (batch, left, summed, right) = plan
        nb, nl, nc, nr = (_group(g) for g in (batch, left, summed, right))
        L += [f"    at = np.ascontiguousarray(np.transpose(a0, {tuple(pa)!r}))"
              f".reshape(({nb}, {nl}, {nc}))",
              f"    bt = np.ascontiguousarray(np.transpose(a1, {tuple(pb)!r}))"
              f".reshape(({nb}, {nc}, {nr}))",
              f"    res = np.empty(({nb}, {nl}, {nr}), DT)",
              f"    for q in range({nb}):",
              "        res[q] = at[q] @ bt[q]"]
        if not out:
            L.append("    return res[0, 0, 0]")
        else:
            shape = "".join(f"n_{c}, " for c in batch + left + right)
            L.append(f"    r = res.reshape(({shape}))")
            L.append("    return r" if po == sorted(po) else
                     f"    return np.ascontiguousarray(np.transpose(r, {tuple(po)!r}))")
        ns = {"np": np, "DT": getattr(np, dtype)}
        exec(compile("\n".join(L) + "\n", f"<rop.runtime.einsum {subscripts!r}>", "exec"), ns)
        return ns["impl"]
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
    blas = all(d == np.float64 for d in dts) and all(r > 0 for r in ranks)
    try:
        return _impl(subscripts.literal_value, tuple(ranks), dtype, blas)
    except ValueError as exc:
        raise TypingError(f"rop.runtime.einsum: {exc}") from None
