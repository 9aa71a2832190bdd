"""Parameters as the user holds them: one array, tuples/lists of per-layer arrays, dicts of
arrays, nested.  A handful of helpers that walk such a structure ("pytree") and keep it, so an
optimiser never flattens the user's parameters into one vector and back.

Leaves are NumPy arrays or numbers; containers are tuples (named tuples too), lists and dicts.
Every helper returns new arrays and never writes the ones it was given.

``Flat`` is the one exception to "never flatten", and it is internal: an iterative solver's
own vectors (CG's x, r, d) live in one contiguous buffer each, so that an update is one NumPy
call instead of one per leaf; the user's functions still get the tree, as views into it.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

Tree = Any  # an array, a number, or a tuple/list/dict of trees


def is_leaf(x: Any) -> bool:
    return not isinstance(x, (tuple, list, dict))


def tree_map(f: Callable[..., Any], tree: Tree, *rest: Tree) -> Tree:
    """``f`` applied leaf by leaf to ``tree`` and the trees in ``rest`` (same structure)."""
    if isinstance(tree, dict):
        return type(tree)((k, tree_map(f, tree[k], *(r[k] for r in rest))) for k in tree)
    if isinstance(tree, (tuple, list)):
        items = [tree_map(f, *xs) for xs in zip(tree, *rest)]
        if isinstance(tree, tuple) and hasattr(tree, "_fields"):  # a named tuple
            return type(tree)(*items)
        return type(tree)(items)
    return f(tree, *rest)


def tree_leaves(tree: Tree) -> list:
    if isinstance(tree, dict):
        return [leaf for k in tree for leaf in tree_leaves(tree[k])]
    if isinstance(tree, (tuple, list)):
        return [leaf for x in tree for leaf in tree_leaves(x)]
    return [tree]


def tree_dot(xs: Tree, ys: Tree) -> float:
    """<x, y> summed over every leaf."""
    return float(sum(np.vdot(np.asarray(x), np.asarray(y)).real
                     for x, y in zip(tree_leaves(xs), tree_leaves(ys))))


def tree_axpy(a: float, xs: Tree, ys: Tree) -> Tree:
    """a x + y, leaf by leaf."""
    return tree_map(lambda x, y: a * x + y, xs, ys)


def tree_scale(a: float, xs: Tree) -> Tree:
    return tree_map(lambda x: a * x, xs)


def tree_zeros_like(xs: Tree) -> Tree:
    """Zeros shaped like each leaf, in its float dtype (float64 for integer leaves)."""
    def zeros(x):
        dtype = np.asarray(x).dtype
        return np.zeros(np.shape(x), dtype=dtype if dtype.kind == "f" else np.float64)
    return tree_map(zeros, xs)


class Flat:
    """The layout of a tree's leaves in one contiguous vector: ``vector(tree)`` copies a tree
    (shaped like ``like``) into a new vector, ``tree(vec)`` gives the tree of views into
    ``vec`` (no copy: writing ``vec`` changes them).  The dtype is the leaves' floating type
    (float64 for integer leaves)."""

    def __init__(self, like: Tree):
        leaves = [np.asarray(x) for x in tree_leaves(like)]
        self.like = like
        self.shapes = [x.shape for x in leaves]
        ends = np.cumsum([x.size for x in leaves])
        self.bounds = list(zip([0, *ends[:-1].tolist()], ends.tolist()))
        self.size = int(ends[-1]) if len(ends) else 0
        dtype = np.result_type(*leaves) if leaves else np.float64
        self.dtype = dtype if dtype.kind == "f" else np.dtype(np.float64)

    def vector(self, tree: Tree) -> np.ndarray:
        out = np.empty(self.size, self.dtype)
        for (a, b), x in zip(self.bounds, tree_leaves(tree)):
            out[a:b] = np.ravel(x)
        return out

    def tree(self, vec: np.ndarray) -> Tree:
        views = iter([vec[a:b].reshape(sh) for (a, b), sh in zip(self.bounds, self.shapes)])
        return tree_map(lambda _: next(views), self.like)


def tree_all_finite(xs: Tree) -> bool:
    return all(np.all(np.isfinite(x)) for x in tree_leaves(xs))


def _describe(x: Any) -> str:
    if isinstance(x, dict):
        return f"a {type(x).__name__} with keys {sorted(map(str, x))}"
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of {len(x)}"
    return f"an array of shape {np.shape(x)}"


def check_like(ref: Tree, other: Tree, what: str, path: str = "params") -> None:
    """Raise ``ValueError`` naming the first place where ``other`` is not structured like ``ref``
    (container kind, length, dict keys, leaf shape), e.g. ``gradient returned a list of 2 at
    params['layers'] where params has a list of 3``."""
    def fail():
        raise ValueError(f"{what} returned {_describe(other)} at {path} where params has "
                         f"{_describe(ref)}: it must be shaped like params")
    if isinstance(ref, dict):
        if not isinstance(other, dict) or set(other) != set(ref):
            fail()
        for k in ref:
            check_like(ref[k], other[k], what, f"{path}[{k!r}]")
    elif isinstance(ref, (tuple, list)):
        if not isinstance(other, (tuple, list)) or len(other) != len(ref):
            fail()
        for i, (r, o) in enumerate(zip(ref, other)):
            check_like(r, o, what, f"{path}[{i}]")
    elif not is_leaf(other) or np.shape(other) != np.shape(ref):
        fail()
