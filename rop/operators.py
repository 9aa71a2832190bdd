"""Curvature as a matrix: Hv and Gv behind SciPy's ``LinearOperator``, on one flat vector.

SciPy's eigensolvers, Krylov solvers and every estimator in :mod:`rop.curvature` want a square
matrix they can multiply by; the user holds parameters as arrays, per-layer lists or dicts.
A :class:`Layout` is the bridge: the ``wrt`` parameters of one call, in ``wrt`` order, each
raveled in C order (a list layer by layer, a dict in its own key order, nested containers
depth first), so that ``H @ layout.flatten(v)`` is ``layout.flatten(Hv)``.  Its ``blocks`` name
each parameter array and its slice, for per-layer estimators.

The operator's products go through one function on flat vectors (``matvec``), and ``matmat``
through a second one that defaults to a loop over columns: a product that takes a block of
directions at once (linearise once, many directions per call) plugs in there without changing
anything a user sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from numba import njit
from scipy.sparse.linalg import LinearOperator

__all__ = ["Block", "Layout", "CurvatureOperator", "operator", "dataset_operator",
           "check_deterministic"]


@dataclass(frozen=True)
class Block:
    """One parameter array in the flat layout: its name (``"W1"``, ``"Ws[0]"``,
    ``"params['b2']"``), its slice of the flat vector and its shape."""
    name: str
    slice: slice
    shape: tuple

    @property
    def size(self) -> int:
        return self.slice.stop - self.slice.start


class Layout:
    """The flat layout of a parameter structure (an array, or tuples, lists and dicts of them).

    ``Layout(tree)`` for any structure; ``Layout(values, names)`` for the tuple of ``wrt``
    values with their names (block names then read ``W1``, ``Ws[0]``, ``params['b1']``).  With a
    single name the structure is that parameter itself: ``unflatten`` returns it bare, as the
    function's gradient holds it, and ``flatten`` takes it bare or in a 1-tuple.  Dict keys keep the
    order of the dict the layout was made from; ``flatten`` reads any dict with the same keys
    in that order.
    """

    def __init__(self, tree: Any, names: Sequence[str] | None = None):
        names = tuple(names) if names is not None else None
        self.single = names is not None and len(names) == 1
        if names is not None:
            if not isinstance(tree, (tuple, list)) or len(tree) != len(names):
                raise ValueError(f"Layout: {len(names)} names for {_describe(tree)}")
            if self.single:
                tree = tree[0]
        self.names = names
        self.blocks: list[Block] = []
        root = names[0] if self.single else ""
        self._skel = self._walk(tree, root, top=names is not None and not self.single)
        self.size = sum(b.size for b in self.blocks)

    def _walk(self, x, path, top=False):
        if isinstance(x, dict):
            return ("dict", type(x), tuple(x), [self._walk(x[k], f"{path}[{k!r}]") for k in x])
        if isinstance(x, (tuple, list)):
            kids = [self._walk(c, self.names[i] if top else f"{path}[{i}]") for i, c in enumerate(x)]
            return ("seq", type(x), len(x), kids)
        shape = np.shape(x)
        start = sum(b.size for b in self.blocks)
        self.blocks.append(Block(path or "x", slice(start, start + int(np.prod(shape))), shape))
        return ("leaf", len(self.blocks) - 1, shape)

    def describe(self) -> str:
        """``W1 (3, 2) [0:6], b1 (3,) [6:9], ...``: what each slice of a flat vector holds."""
        return ", ".join(f"{b.name} {b.shape} [{b.slice.start}:{b.slice.stop}]" for b in self.blocks)

    def __repr__(self):
        return f"Layout(size={self.size}: {self.describe()})"

    # ---------------------------------------------------------------- structure <-> vector
    def flatten(self, tree: Any, out: np.ndarray | None = None) -> np.ndarray:
        """The 1-D float64 vector of ``tree`` (shaped like the parameters), in layout order;
        written into ``out`` (a float64 vector of the layout's size) when given."""
        if self.single and not self._fits(self._skel, tree) and isinstance(tree, (tuple, list)) \
                and len(tree) == 1:
            tree = tree[0]  # (v,) for one wrt parameter, as .hvp accepts it
        if out is None:
            out = np.empty(self.size)
        top = self.names if self.names is not None and not self.single else None
        self._fill(self._skel, tree, out, self.names[0] if self.single else "the structure", top)
        return out

    def _fill(self, skel, x, out, path, top=None):
        kind = skel[0]
        if kind == "dict":
            if not isinstance(x, dict) or set(x) != set(skel[2]):
                self._mismatch(x, path, f"a dict with keys {list(skel[2])}")
            for k, s in zip(skel[2], skel[3]):
                self._fill(s, x[k], out, f"{path}[{k!r}]")
        elif kind == "seq":
            if not isinstance(x, (tuple, list)) or len(x) != skel[2]:
                self._mismatch(x, path, f"a {skel[1].__name__} of {skel[2]}")
            for i, (c, s) in enumerate(zip(x, skel[3])):
                self._fill(s, c, out, top[i] if top else f"{path}[{i}]")
        else:
            b = self.blocks[skel[1]]
            if isinstance(x, (dict, tuple, list)) or np.shape(x) != b.shape:
                self._mismatch(x, b.name, f"an array of shape {b.shape}")
            out[b.slice] = np.asarray(x, dtype=np.float64).ravel()

    def _mismatch(self, x, path, want):
        raise ValueError(f"{path}: got {_describe(x)} where the layout has {want} "
                         f"(layout: {self.describe()})")

    def _fits(self, skel, x) -> bool:
        kind = skel[0]
        if kind == "dict":
            return isinstance(x, dict) and set(x) == set(skel[2]) and \
                all(self._fits(s, x[k]) for k, s in zip(skel[2], skel[3]))
        if kind == "seq":
            return isinstance(x, (tuple, list)) and len(x) == skel[2] and \
                all(self._fits(s, c) for s, c in zip(skel[3], x))
        return not isinstance(x, (dict, tuple, list)) and np.shape(x) == skel[2]

    def matches(self, tree: Any) -> bool:
        """Whether ``tree`` is structured like the parameters (``flatten`` would take it)."""
        return self._fits(self._skel, tree) or (
            self.single and isinstance(tree, (tuple, list)) and len(tree) == 1
            and self._fits(self._skel, tree[0]))

    def vector(self, vec: Any, what: str = "vector") -> np.ndarray:
        """``vec`` as a flat float64 vector of this layout's size, or a ValueError naming it."""
        v = np.asarray(vec, dtype=np.float64)
        if v.ndim == 2 and v.shape[1] == 1:
            v = v[:, 0]
        if v.shape != (self.size,):
            raise ValueError(f"expected a {what} of length {self.size} (layout: {self.describe()}); "
                             f"got shape {v.shape}")
        return v

    def unflatten(self, vec: Any) -> Any:
        """The structure of the parameters holding the entries of ``vec`` (new float64 arrays)."""
        v = self.vector(vec)
        return self._build(self._skel, v)

    def directions(self, vec: Any, views: bool = False) -> tuple:
        """``vec`` as ``.hvp``'s ``v``: one direction per ``wrt`` parameter, always a tuple.
        ``views``: the arrays are views of ``vec`` (C-contiguous), not copies; for rop's own
        products, which never write a direction."""
        v = self.vector(vec)
        tree = self._build(self._skel, np.ascontiguousarray(v) if views else v, views)
        return (tree,) if self.single else tuple(tree)

    def stack_rows(self, rows: np.ndarray) -> tuple:
        """k flat vectors (the rows of ``rows``, shape (k, n)) as the batched tangent takes
        its directions: per ``wrt`` parameter an array (k,) + shape, a tuple of them for a
        list (rop/linearized.py ``Linearized.stacked``)."""
        k = rows.shape[0]

        def build(skel):
            if skel[0] == "dict":
                raise TypeError("dict parameters are not stacked")
            if skel[0] == "seq":
                return tuple(build(s) for s in skel[3])
            b = self.blocks[skel[1]]
            return np.ascontiguousarray(rows[:, b.slice]).reshape((k,) + b.shape)
        tree = build(self._skel)
        return (tree,) if self.single else tree

    def flatten_rows(self, tree: Any, k: int, out: np.ndarray | None = None) -> np.ndarray:
        """The (k, n) matrix of a batched structure (each leaf (k,) + its block's shape),
        written into ``out`` when given."""
        if out is None:
            out = np.empty((k, self.size))

        def fill(skel, x):
            if skel[0] == "seq":
                for s, c in zip(skel[3], x):
                    fill(s, c)
                return
            b = self.blocks[skel[1]]
            x = np.asarray(x)
            if x.shape != (k,) + b.shape:
                raise ValueError(f"{b.name}: got shape {x.shape}, expected {(k,) + b.shape}")
            out[:, b.slice] = x.reshape(k, -1)
        if self.single and isinstance(tree, (tuple, list)) and len(tree) == 1 \
                and self._skel[0] != "seq":
            tree = tree[0]
        fill(self._skel, tree)
        return out

    def _build(self, skel, v, views=False):
        kind = skel[0]
        if kind == "dict":
            return skel[1]((k, self._build(s, v, views)) for k, s in zip(skel[2], skel[3]))
        if kind == "seq":
            items = [self._build(s, v, views) for s in skel[3]]
            return skel[1](*items) if hasattr(skel[1], "_fields") else skel[1](items)
        b = self.blocks[skel[1]]
        block = v[b.slice].reshape(b.shape)
        return block if views else block.copy()


def _describe(x) -> str:
    if isinstance(x, dict):
        return f"a dict with keys {list(x)}"
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of {len(x)}"
    return f"an array of shape {np.shape(x)}"


# ------------------------------------------------------------------------------------- operators

def _rows(X: np.ndarray) -> np.ndarray:
    """The columns of an (n, k) block as the C-contiguous rows of a (k, n) array: free when X
    is in Fortran order (``X.T`` is then C-contiguous), else one blocked transpose.  NumPy
    copies a transposed view in its output's order, reading one cache line per number: for a
    model of 10⁶ parameters and k = 16 that took 230 ms, 5× a plain copy of the same bytes."""
    if X.flags.f_contiguous:
        return X.T
    if X.shape[1] == 1:
        return X.reshape(1, -1)
    if X.size < 1 << 16:  # in cache either way: NumPy, without a compiled call's dispatch
        return np.ascontiguousarray(X.T)
    return _transpose(np.ascontiguousarray(X))


@njit(cache=True, nogil=True)
def _transpose(X):  # pragma: no cover - compiled
    """``X.T`` copied to C order through a strip of 512 rows at a time: its k columns are read
    from cache and each output row is written in sequence (as fast as a plain copy)."""
    n, k = X.shape
    out = np.empty((k, n))
    for r0 in range(0, n, 512):
        r1 = min(n, r0 + 512)
        for j in range(k):
            for r in range(r0, r1):
                out[j, r] = X[r, j]
    return out


def _by_columns(X: np.ndarray, product: Callable[[np.ndarray, np.ndarray], Any]) -> np.ndarray:
    """``[product(x) for x in X's columns]`` as the columns of an (n, k) array, in Fortran
    order: each column is read contiguous from :func:`_rows` and ``product(x, out)`` writes
    its result into one contiguous row of a (k, n) array, whose transpose is returned (no
    copy back)."""
    rows = _rows(X)
    out = np.empty(rows.shape)
    for j in range(rows.shape[0]):
        product(rows[j], out[j])
    return out.T


class CurvatureOperator(LinearOperator):
    """A symmetric float64 ``LinearOperator`` on the flat layout (``rmatvec`` is ``matvec``).

    ``product(x) -> Bx`` on flat vectors; ``products(X) -> BX`` for an (n, k) block, by default
    one ``product`` per column.  ``.layout`` converts to the user's structures; ``.apply(tree)``
    multiplies a structure and returns one; ``.products_done`` counts matrix-vector products.
    """

    def __init__(self, layout: Layout, product: Callable[[np.ndarray], np.ndarray],
                 products: Callable[[np.ndarray], np.ndarray] | None = None, name: str = "H"):
        super().__init__(np.float64, (layout.size, layout.size))
        self.layout, self.name = layout, name
        self._product, self._products = product, products
        self.products_done = 0

    def matvec(self, x):
        """``H x``: shape (n,) for x of shape (n,), (n, 1) for (n, 1), as SciPy's."""
        column = np.ndim(x) == 2
        y = super().matvec(self.layout.vector(x))
        return y.reshape(-1, 1) if column else y

    def matmat(self, X):
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] != self.layout.size:
            raise ValueError(f"expected an array of shape ({self.layout.size}, k) (layout: "
                             f"{self.layout.describe()}); got shape {X.shape}")
        return super().matmat(X)

    def _matvec(self, x):
        self.products_done += 1
        return np.asarray(self._product(np.ascontiguousarray(x, dtype=np.float64).ravel()),
                          dtype=np.float64)

    def _matmat(self, X):
        if self._products is not None:
            self.products_done += X.shape[1]
            return np.asarray(self._products(X), dtype=np.float64)
        def column(x, out):
            out[:] = self._matvec(x)
        return _by_columns(X, column)

    _rmatvec = _matvec
    _rmatmat = _matmat

    def _adjoint(self):
        return self

    def apply(self, tree: Any) -> Any:
        """B·tree for a structure shaped like the parameters, returned in the same structure."""
        return self.layout.unflatten(self._matvec(self.layout.flatten(tree)))

    def __repr__(self):
        return f"<{self.shape[0]}x{self.shape[1]} {self.name} operator: {self.layout.describe()}>"


def _wrt_values(owner, bound) -> tuple:
    out = []
    for w in owner.wrt:  # a parameter or an attribute path of one: "self.weights"
        head, *attrs = w.split(".")
        x = bound[head]
        for a in attrs:
            x = getattr(x, a)
        out.append(x)
    return tuple(out)


def _caller(hvp, layout: Layout, gradient):
    """``(args, kwargs, x) -> B x`` on flat vectors through ``hvp(*args, v=..., **kwargs)``; the
    part of R{outputs} that is the curvature product is found by structure on the first call
    (see :func:`operator`)."""
    pick = [None if gradient is None else _picker(gradient)]
    name = f"{hvp.owner.fn.__name__}.{hvp.kind}"

    def call(args, kwargs, x):
        _, r_out = hvp(*args, v=layout.directions(x, views=True), **kwargs)
        if pick[0] is None:
            pick[0] = _find_gradient(r_out, layout, name)
        return layout.flatten(pick[0](r_out))
    return call


def _picker(gradient):
    if callable(gradient):
        return gradient
    return lambda r: r[gradient]


def _find_gradient(r_out, layout: Layout, name: str):
    """R{outputs} is the product when the outputs are the gradient; a function returning
    ``(loss, grads)`` holds it at one index.  Exactly one candidate may fit the layout."""
    if layout.matches(r_out):
        return lambda r: r
    hits = [i for i, r in enumerate(r_out) if layout.matches(r)] \
        if isinstance(r_out, (tuple, list)) else []
    if len(hits) == 1:
        i = hits[0]
        return lambda r: r[i]
    what = "several of its outputs are" if hits else "none of its outputs is"
    raise ValueError(f"{name}: {what} shaped like the wrt parameters ({layout.describe()}), so "
                     "the operator cannot tell which is the gradient; pass gradient=<index> or "
                     "gradient=<function of the outputs> to rop.operators.operator")


def operator(hvp, *args: Any, gradient: int | Callable | None = None,
             **kwargs: Any) -> CurvatureOperator:
    """The curvature matrix of ``hvp`` (``f.hvp`` or ``f.gvp``) at fixed arguments, as a flat
    ``LinearOperator``: ``operator(f.hvp, *args) @ x`` is ``Hx`` in the layout of ``f``'s
    ``wrt`` parameters (``.layout``).  The same as ``f.hvp.operator(*args)``.

    The function must return the gradient (shaped like the ``wrt`` parameters) or a tuple
    holding it (``(loss, grads)``); ``gradient`` picks it when that is ambiguous.
    """
    from .api import _BoundHVP
    if isinstance(hvp, _BoundHVP):
        hvp, args = hvp._hvp, (hvp._obj, *args)
    bound = hvp._bind(args, kwargs)
    layout = Layout(_wrt_values(hvp.owner, bound), hvp.owner.wrt)
    # linearised once (rop/linearized.py): the primal pass runs here, each product only the
    # R-statements, from its tape
    lin = hvp.linearize(*args, **kwargs)
    pick = [None if gradient is None else _picker(gradient)]
    name = f"{hvp.owner.fn.__name__}.{hvp.kind}"

    def product(x, out=None):
        r_out = lin(layout.directions(x, views=True))
        if pick[0] is None:
            pick[0] = _find_gradient(r_out, layout, name)
        return layout.flatten(pick[0](r_out), out)

    def products(X):
        """k columns at once, as the rows of a (k, n) array (:func:`_rows`) whose transpose is
        returned: batched calls of the tangent part when it is batched and the model small
        enough for a chunk of several directions (``Linearized.chunk``), else one product per
        column, each written in place into its row."""
        k = X.shape[1]
        c = lin.chunk(layout.size) if lin.batched else 1
        if c == 1 or k == 1 or not np.isfinite(X).all():
            return _by_columns(X, product)
        rows = _rows(X)
        out = np.empty((k, layout.size))
        start = 0
        if pick[0] is None:  # the first product tells which output is the gradient
            product(rows[0], out[0])
            start = 1
        # the stacked fast path needs the directions as the generated function takes them:
        # with arguments compiled in (dicts), Linearized.many stacks them
        plain = lin._sig is None
        while start < k:
            stop = min(k, start + c)
            if not plain and stop - start > 1:
                outs = lin.many([layout.directions(rows[j], views=True)
                                 for j in range(start, stop)])
                for j, r_out in zip(range(start, stop), outs):
                    layout.flatten(pick[0](r_out), out[j])
                start = stop
                continue
            r = lin.stacked(layout.stack_rows(rows[start:stop]), stop - start, checked=True) \
                if stop - start > 1 else None
            if r is not None:
                layout.flatten_rows(pick[0](lin._rebuild(r)), stop - start, out[start:stop])
            else:
                for j in range(start, stop):
                    product(rows[j], out[j])
            start = stop
        return out.T
    op = CurvatureOperator(layout, product, products,
                           name="Gauss-Newton" if hvp.kind == "gvp" else "Hessian")
    op.linearized = lin
    return op


def dataset_operator(hvp, batches: Iterable | Callable[[], Iterable], *,
                     sizes: Callable[..., int] | Sequence[int],
                     args: Callable[[Any], tuple] | None = None,
                     gradient: int | Callable | None = None, check: bool = True,
                     progress: bool = False) -> CurvatureOperator:
    """The curvature of a mean loss over a dataset: B = Σ_b (n_b / N) B_b, one product per batch.

    ``batches``: a sequence (or a function returning a fresh iterable, for data streamed from
    disk) whose items are the arguments of one call (a tuple), or anything ``args(item)`` turns
    into them.  ``sizes``: the number of cases n_b of each batch, as a sequence or as a
    function called with the batch's arguments (``lambda W1, b1, W2, b2, X, T: X.shape[1]``).
    Each batch's function must return the gradient of its *mean* loss, so that weighting by
    n_b / N gives the gradient of the dataset's mean.  The parameters must be the same in
    every batch.  ``check`` runs :func:`check_deterministic` once: a shuffling iterator or a
    random dropout mask would make every estimator silently wrong.
    """
    from .api import _BoundHVP
    obj = ()
    if isinstance(hvp, _BoundHVP):
        hvp, obj = hvp._hvp, (hvp._obj,)
    if not callable(batches) and iter(batches) is batches:
        raise ValueError("dataset_operator: batches is a one-shot iterator (a generator?); every "
                         "product reads all batches: pass a list, or a function returning a fresh "
                         "iterable")
    fresh = batches if callable(batches) else (lambda: batches)
    to_args = args or (lambda item: tuple(item))

    calls = [(*obj, *to_args(item)) for item in fresh()]
    if not calls:
        raise ValueError("dataset_operator: the batches are empty: give at least one batch")
    n = [int(s) for s in sizes] if not callable(sizes) else [int(sizes(*c[len(obj):])) for c in calls]
    if len(n) != len(calls):
        raise ValueError(f"dataset_operator: {len(n)} sizes for {len(calls)} batches")
    if min(n) <= 0:
        raise ValueError(f"dataset_operator: batch sizes must be positive, got {n}")
    total = float(sum(n))
    layout = Layout(_wrt_values(hvp.owner, hvp._bind(calls[0], {})), hvp.owner.wrt)
    for i, c in enumerate(calls[1:], 1):
        if not layout.matches(_wrt_values(hvp.owner, hvp._bind(c, {}))):
            raise ValueError(f"dataset_operator: batch {i}'s parameters are not laid out like "
                             f"batch 0's ({layout.describe()})")
    weights = [nb / total for nb in n]
    del calls  # a streamed dataset is read again at each product, never kept
    call = _caller(hvp, layout, gradient)

    def product(x):
        from tqdm.auto import tqdm
        out, k = np.zeros(layout.size), 0
        for item in tqdm(fresh(), total=len(weights), desc="batches", disable=not progress,
                         leave=False):
            if k == len(weights):
                k += 1  # more batches than at construction
                break
            out += weights[k] * call((*obj, *to_args(item)), {}, x)
            k += 1
        if k != len(weights):
            raise RuntimeError(f"dataset_operator: the batches yielded {'more than ' * (k > len(weights))}"
                               f"{min(k, len(weights))} items this time and "
                               f"{len(weights)} at construction: they must be the same batches")
        return out

    op = CurvatureOperator(layout, product, name=("Gauss-Newton" if hvp.kind == "gvp" else
                                                  "Hessian") + f" (dataset, {len(weights)} batches)")
    if check:
        check_deterministic(op)
    return op


def check_deterministic(A: LinearOperator, *, seed: int = 0, rtol: float = 1e-9) -> dict:
    """Check that ``A`` is a fixed symmetric matrix, as every estimator assumes (the idea of
    curvlinops' ``check_deterministic``): two products with the same vector agree, and
    ⟨u, Aw⟩ = ⟨Au, w⟩ on random vectors.  Raises ``RuntimeError`` saying which failed (a
    shuffling batch iterator, dropout, a sampled product, ...); returns the relative errors."""
    rng = np.random.default_rng(seed)
    n = A.shape[0]
    u, w = rng.normal(size=n), rng.normal(size=n)
    Au1, Au2, Aw = A.matvec(u), A.matvec(u), A.matvec(w)
    scale = max(np.linalg.norm(Au1), np.finfo(float).tiny)
    repeat = float(np.linalg.norm(Au1 - Au2) / scale)
    if not repeat <= rtol:
        raise RuntimeError(f"the operator is not deterministic: two products with the same vector "
                           f"differ by {repeat:.2e} (relative); a shuffling batch iterator, dropout "
                           "or a sampled product makes every estimate on it meaningless")
    sym = abs(u @ Aw - Au1 @ w) / max(np.linalg.norm(u) * np.linalg.norm(Aw)
                                      + np.linalg.norm(Au1) * np.linalg.norm(w), np.finfo(float).tiny)
    if not sym <= rtol:
        raise RuntimeError(f"the operator is not symmetric: <u, Aw> - <Au, w> is {sym:.2e} "
                           "relative to |u||Aw| + |Au||w|; curvature products of a gradient must be")
    return {"repeat": repeat, "symmetry": float(sym)}
