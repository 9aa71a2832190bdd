"""Gradients, Hv, Gv and Hessian-free over data shards on a Dask cluster.

Martens' Gauss-Newton mini-batches hold thousands of cases and his gradient and line search read
the whole training set; curvature estimates want as much.  The loss is a mean over cases, so
every quantity HF needs is a weighted sum over shards of the data,

    ∇E = Σ_s (n_s / N) ∇E_s,     B v = Σ_s (n_s / N) B_s v,

with E_s the mean loss of shard s: each shard's term is the same compiled rop code run on the
worker that holds the shard, and the driver adds them up.  Dask (``distributed``) is the engine:
rop adds no scheduler, transport or fault handling of its own.

What lives where:

* **Shards** (:class:`ShardedData`) are Dask results held in the workers' memory, made once by a
  task from arrays the driver split or by a ``loader`` run on the workers; the task is their
  lineage, so Dask makes a shard again on another worker when the one holding it is lost.
* **The functions** (:class:`ShardedLoss`: the ``@rop`` function, the loss, the
  preconditioner's diagonal) travel once, in one broadcast :class:`_Spec`; each worker process
  builds the ``RopFunction`` from it once and keeps it in a worker-local registry (``_REGISTRY``),
  so the generated module is written or read from rop's disk cache (``$ROP_CACHE_DIR``) and
  compiled or loaded from Numba's cache once per worker process, never pickled per call.
* **θ** is broadcast once per point (an outer step's point, a line-search trial); each shard
  linearises there once (``f.gvp.linearize``: the primal pass and its tape stay on the worker,
  and its outputs give the gradient).  **v** is broadcast once per CG product; each shard
  returns its product as a flat vector and the driver sums the vectors with weights n_s/N, in
  shard order (so a recomputed shard gives the same sum to the last bit).
* **Damping and weight decay** are added once, on the driver, by :func:`rop.hessian_free.hessian_free`.

A worker lost mid-product costs a recomputation, not a result: the lost shards are made again
from their lineage, the lost linearisations redone from θ, the products rerun; θ, v and the
functions are sent as the results of tasks (``_held_by_workers``), so they have a lineage too.  A
shard with bad data (NaN, a wrong shape) is reported by shard, array and case before anything
runs, as a :class:`ShardError` raised on the driver, not as a remote traceback.
"""

from __future__ import annotations

import hashlib
import itertools
import linecache
import os
import sys
import types
import uuid
from collections import OrderedDict
from typing import Any, Callable, Sequence

import numpy as np

from .errors import RopError
from .operators import CurvatureOperator, Layout, _find_gradient

__all__ = ["connect", "ShardedData", "ShardedLoss", "ShardError"]


class ShardError(RopError, ValueError):
    """A shard's data or its computation failed; the message names the shard, the array and
    the case (or the argument and shapes), and the driver raises it without the remote
    traceback."""


# ============================================================================ the cluster
def connect(address: Any = None, *, n_workers: int = 2, threads_per_worker: int = 1,
            processes: bool = True, quiet: bool = False, **cluster_kwargs: Any):
    """A ``distributed.Client``: ``address`` may be a Client (returned as it is), a scheduler
    address (``"tcp://scheduler:8786"``: a real cluster), a cluster object, or None for a new
    ``LocalCluster`` of ``n_workers`` processes with ``threads_per_worker`` threads each
    (defaults: 2 processes of one thread, since rop's compiled code holds the GIL and BLAS
    is one thread per worker).  Prints the dashboard link unless ``quiet``.

    The new local cluster's dashboard takes a free port (``dashboard_address=":0"``) so that
    two people on one machine do not collide on 8787; its workers inherit the environment,
    ``ROP_CACHE_DIR`` and ``NUMBA_CACHE_DIR`` included, so they load what the driver compiled.
    """
    from distributed import Client, LocalCluster
    if isinstance(address, Client):
        return address
    if address is None:
        cluster_kwargs.setdefault("dashboard_address", ":0")
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                               processes=processes, **cluster_kwargs)
        client = Client(cluster)
        client._rop_owns_cluster = cluster
    else:
        client = Client(address)
    if not quiet:
        link = client.dashboard_link
        try:
            import bokeh  # noqa: F401  (the dashboard is served only with bokeh installed)
            note = ""
        except ImportError:
            note = "  (served once bokeh>=3.1 is installed: pip install bokeh)"
        workers = len(client.scheduler_info().get("workers", {}))
        print(f"Dask cluster: {workers} workers; dashboard {link}{note}", file=sys.stderr)
    return client


def _close(client) -> None:
    cluster = getattr(client, "_rop_owns_cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


# ============================================================================ worker side
_REGISTRY: dict = {}   # worker-local: spec token -> the functions built from it


class _Bad:
    """What a task returns instead of raising: the message, built on the worker where the data
    is, raised on the driver as a ShardError (no remote traceback to read)."""

    def __init__(self, message: str):
        self.message = message


def _first_bad(*xs):
    return next((x for x in xs if isinstance(x, _Bad)), None)


def _bare(fn):
    """``fn`` without what rop caches on it (``__rop_ir__``: the lowered IR, which refers to
    the module's globals and would drag them into the pickle): a new function object with the
    same code, globals, defaults and closure."""
    g = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__,
                           fn.__closure__)
    g.__kwdefaults__, g.__qualname__, g.__module__ = fn.__kwdefaults__, fn.__qualname__, \
        fn.__module__
    g.__doc__ = fn.__doc__
    g.__dict__.update({k: v for k, v in fn.__dict__.items() if not k.startswith("__rop")})
    return g


def _code_from_marshal(data: bytes):
    import marshal
    return marshal.loads(data)


def _dumps(obj) -> bytes:
    """cloudpickle, keeping each code object's file name: cloudpickle writes
    ``<dynamic-code>`` there, and rop reads a function's source (and its helpers') through
    ``inspect``, which needs the file.  Code goes by ``marshal`` (same Python on every
    worker, as Dask requires anyway)."""
    import io
    import marshal
    from collections import ChainMap

    import cloudpickle

    class Pickler(cloudpickle.Pickler):
        dispatch_table = ChainMap(
            {types.CodeType: lambda code: (_code_from_marshal, (marshal.dumps(code),))},
            cloudpickle.Pickler.dispatch_table)

    buf = io.BytesIO()
    Pickler(buf, protocol=5).dump(obj)
    return buf.getvalue()


def _spec_from_bytes(data: bytes):
    import pickle
    spec = _Spec.__new__(_Spec)
    spec.__dict__.update(pickle.loads(data))
    return spec


class _Spec:
    """Everything a worker needs to run the user's functions, pickled once (by Dask's
    cloudpickle, by value for functions defined in a script) and broadcast once.  Building the
    RopFunction on a worker happens once per process (``functions``): rop parses the source,
    writes the generated module to its disk cache (or finds it there) and Numba compiles it
    (or loads it from its cache) the first time a shard calls it."""

    def __init__(self, f, loss=None, precond=None, args=None):
        self.token = uuid.uuid4().hex
        self.fn, self.wrt, self.output = _bare(f.fn), f.wrt, f.output
        self.hidden = dict(f.hidden) if f.hidden else None
        self.mode, self.check_finite = f.hvp.mode, f.hvp.check_finite
        self.relaxation, self.on_divergence = f.hvp.relaxation, f.hvp.on_divergence
        self.loss, self.precond, self.args = loss, precond, args
        # the source, for a worker that cannot read the file (another machine): rop reads the
        # function's text through inspect, which reads linecache first
        path = getattr(getattr(f.fn, "__code__", None), "co_filename", None)
        self.sources = {}
        if path and os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                self.sources[path] = fh.read()

    def __reduce__(self):
        return (_spec_from_bytes, (_dumps(self.__dict__),))

    def functions(self):
        """The RopFunction for this spec in this process (built on first use)."""
        f = _REGISTRY.get(self.token)
        if f is None:
            for path, text in self.sources.items():
                if not os.path.exists(path):  # mtime None: linecache.checkcache keeps it
                    linecache.cache[path] = (len(text), None, text.splitlines(True), path)
            from .api import rop
            f = rop(self.fn, wrt=self.wrt, mode=self.mode, check_finite=self.check_finite,
                    relaxation=self.relaxation, on_divergence=self.on_divergence,
                    output=self.output, hidden=self.hidden)
            _REGISTRY[self.token] = f
        return f

    def call(self, theta, arrays) -> tuple:
        """The arguments of one shard's call: ``args(theta, arrays)`` if given, else the wrt
        parameters in wrt order followed by the shard's arrays."""
        if self.args is not None:
            return tuple(self.args(theta, arrays))
        return (*self.params(theta), *arrays)

    def params(self, theta) -> tuple:
        return (theta,) if len(self.wrt) == 1 else tuple(theta)


class _Shard:
    """One shard, held in a worker's memory: its arrays, its number of cases ``n`` along the
    case axis, and what the driver checks across shards."""

    def __init__(self, index, arrays, n, shapes):
        self.index, self.arrays, self.n, self.shapes = index, arrays, n, shapes

    def __sizeof__(self):
        return sum(a.nbytes for a in self.arrays) + 200


def _case_word(axis: int, ndim: int) -> str:
    a = axis % ndim
    return "row" if a == 0 else "column" if a == 1 else f"index along axis {a}"


def _hold(index: int, source: tuple, axis: int, names: Sequence[str] | None):
    """Task: make shard ``index`` from ``source`` (("arrays", tuple) or ("load", loader,
    args)), check it, and keep it.  Returns the _Shard, or a _Bad naming shard, array and case."""
    try:
        arrays = source[1] if source[0] == "arrays" else source[1](*source[2])
        if not isinstance(arrays, (tuple, list)):
            arrays = (arrays,)
        arrays = tuple(np.ascontiguousarray(a) if isinstance(a, np.ndarray) else np.asarray(a)
                       for a in arrays)
    except Exception as exc:
        return _Bad(f"shard {index}: making it failed: {type(exc).__name__}: {exc}")
    label = (lambda j: names[j]) if names and len(names) == len(arrays) else (lambda j: f"array {j}")
    n = None
    for j, a in enumerate(arrays):
        if a.ndim == 0 or not -a.ndim <= axis < a.ndim:
            return _Bad(f"shard {index}: {label(j)} has shape {a.shape}, which has no case "
                        f"axis {axis}")
        if a.dtype.kind not in "fiub":
            return _Bad(f"shard {index}: {label(j)} has dtype {a.dtype}; shards hold numbers")
        if n is None:
            n, first = a.shape[axis], j
        elif a.shape[axis] != n:
            return _Bad(f"shard {index}: {label(j)} has {a.shape[axis]} cases (axis {axis}, "
                        f"shape {a.shape}) but {label(first)} has {n} (shape "
                        f"{arrays[first].shape}); every array of a shard holds the same cases")
        if a.dtype.kind == "f":
            finite = np.isfinite(a)
            if not finite.all():
                where = tuple(int(i[0]) for i in np.nonzero(~finite))
                case = where[axis % a.ndim]
                return _BadCase(index, label(j), case, where, float(a[where]),
                                _case_word(axis, a.ndim))
    if not n:
        return _Bad(f"shard {index}: it holds no cases")
    return _Shard(index, arrays, int(n), tuple(a.shape for a in arrays))


class _BadCase(_Bad):
    """A non-finite entry: the driver adds the case's index in the whole dataset."""

    def __init__(self, index, label, case, where, value, word):
        self.index, self.case = index, case
        self.text = (f"{label} {word} {{case}} holds {value} at "
                     f"{label}[{', '.join(map(str, where))}]; the data must be finite")
        super().__init__(f"shard {index}: " + self.text.format(case=f"{case} of this shard"))


def _meta(shard):
    if isinstance(shard, _Bad):
        return shard
    return (shard.n, shard.shapes, tuple(a.dtype.str for a in shard.arrays))


def _guard(index: int, what: str, fn: Callable, *args):
    """Run one shard's computation; any failure becomes a _Bad naming the shard."""
    try:
        return fn(*args)
    except Exception as exc:
        return _Bad(f"shard {index}: {what} failed: {type(exc).__name__}: {exc}")


def _layout(spec, theta) -> Layout:
    return Layout(spec.params(theta), spec.wrt)


def _loss_task(spec, theta, shard):
    """Task: the shard's mean loss at θ (the user's ``loss``, in NumPy on the worker)."""
    bad = _first_bad(shard)
    if bad:
        return bad

    def run():
        value = spec.loss(*spec.call(theta, shard.arrays))
        if np.ndim(value) != 0:
            raise ValueError(f"loss returned shape {np.shape(value)}, not a number")
        return float(value)
    return _guard(shard.index, "the loss", run)


class _Lin:
    """A shard's linearisation at θ, kept on its worker: the ``Linearized`` (the primal pass's
    tape), the gradient it produced, flat, and how to read the product out of R{outputs}.

    Dask may spill it or move it to another worker; then it is pickled as the recipe that
    makes it (spec, kind, θ, shard), not as its tape (a Numba typed list), and made again."""

    def __init__(self, spec, kind, theta, shard):
        self.recipe = (spec, kind, theta, shard)
        f = spec.functions()
        self.layout = _layout(spec, theta)
        self.lin = getattr(f, kind).linearize(*spec.call(theta, shard.arrays))
        self.index = shard.index
        name = f"{spec.fn.__name__}.{kind}"
        outputs = self.lin.outputs
        if outputs is None:  # not split: the first product computes them
            outputs, _ = getattr(f, kind)(*spec.call(theta, shard.arrays),
                                          v=self.layout.directions(np.zeros(self.layout.size)))
        self.pick = _find_gradient(outputs, self.layout, name)
        self.gradient = self.layout.flatten(self.pick(outputs))

    def product(self, v):
        return self.layout.flatten(self.pick(self.lin(v)))

    def __reduce__(self):
        return (_relinearize, self.recipe)

    def __sizeof__(self):
        return 4 * sum(a.nbytes for a in self.recipe[3].arrays) + 8 * 3 * self.layout.size


def _relinearize(spec, kind, theta, shard):
    return _Lin(spec, kind, theta, shard)


def _lin_task(spec, kind, theta, shard):
    """Task: linearise shard's R{f} at θ (compiled code), keep it on the worker."""
    bad = _first_bad(shard)
    if bad:
        return bad
    return _guard(shard.index, f"linearising {kind} at θ", _Lin, spec, kind, theta, shard)


def _gradient_task(lin):
    return lin if isinstance(lin, _Bad) else lin.gradient


def _held(value):
    """Task: a value the driver sends (the functions, θ, v), held by the worker that ran it."""
    return value


def _held_by_workers(client, value):
    """``value`` on the cluster as the result of a task that returns it, so that it has a
    lineage: when every worker holding it is lost, Dask runs the task again elsewhere from
    the value kept with it.  A ``scatter(..., broadcast=True)`` has none, and Dask's active
    memory manager drops the broadcast's extra replicas (its ReduceReplicas policy, on by
    default), so one lost worker could lose the value and cancel every task that needs it."""
    return client.submit(_held, value, pure=False)


def _product_task(lin, v):
    """Task: one shard's curvature product B_s v from its linearisation."""
    if isinstance(lin, _Bad):
        return lin
    return _guard(lin.index, "the curvature product", lin.product, v)


def _precond_task(spec, theta, shard):
    """Task: the shard's preconditioner diagonal (the user's ``precond``), flat."""
    bad = _first_bad(shard)
    if bad:
        return bad
    return _guard(shard.index, "precond", lambda: _layout(spec, theta).flatten(
        spec.precond(*spec.call(theta, shard.arrays))))


# ============================================================================ driver side
def _bar(total, desc, enabled):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, disable=not enabled, leave=False)


class ShardedData:
    """A dataset split into shards that live on the workers of a Dask cluster.

    Make one with :meth:`split` (arrays on the driver, cut along the case axis) or
    :meth:`load` (each shard read by a ``loader`` on the workers: data never passes through
    the driver).  Every shard is checked on its worker when it is made: all arrays the same
    number of cases along ``axis``, numeric, finite, and shaped like shard 0's apart from the
    case axis; a failure raises :class:`ShardError` naming the shard, the array and the case.

    ``sizes`` are the shards' case counts n_s, ``weights`` n_s / N: each shard's mean loss
    weighted by them gives the dataset's mean loss.
    """

    def __init__(self, client, futures, sizes, axis, names=None):
        self.client, self.futures, self.axis, self.names = client, futures, axis, names
        self.sizes = [int(n) for n in sizes]
        self.total = sum(self.sizes)
        self.weights = np.array(self.sizes, dtype=float) / self.total
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(int)

    def __len__(self):
        return len(self.futures)

    def __repr__(self):
        return f"<ShardedData: {len(self)} shards, {self.total} cases {self.sizes}, axis {self.axis}>"

    @classmethod
    def split(cls, client, arrays: Sequence[np.ndarray] | np.ndarray, shards: int | Sequence[int] = 2,
              *, axis: int = 0, names: Sequence[str] | None = None,
              progress: bool = True) -> "ShardedData":
        """Cut ``arrays`` (a tuple of arrays with the same number of cases along ``axis``: the
        data arguments of the function, in order) into ``shards`` pieces: a number (near-equal
        sizes) or a list of sizes (unequal shards).  Each shard is sent once, inside the task
        that keeps it (its lineage: Dask makes it again if its worker is lost), and placed on
        the workers in turn.  ``names`` (``("X", "T")``) name the arrays in error messages."""
        arrays = tuple(arrays) if isinstance(arrays, (tuple, list)) else (arrays,)
        n = np.shape(arrays[0])[axis] if np.ndim(arrays[0]) else 0
        for j, a in enumerate(arrays):
            if np.ndim(a) == 0 or np.shape(a)[axis] != n:
                lab = names[j] if names else f"array {j}"
                raise ShardError(f"ShardedData.split: {lab} has shape {np.shape(a)}, but "
                                 f"{names[0] if names else 'array 0'} has {n} cases along axis "
                                 f"{axis} (shape {np.shape(arrays[0])}); the arrays must hold "
                                 "the same cases")
        if isinstance(shards, (int, np.integer)):
            if not 1 <= shards <= n:
                raise ShardError(f"ShardedData.split: shards={shards} for {n} cases")
            sizes = [len(p) for p in np.array_split(np.arange(n), shards)]
        else:
            sizes = [int(s) for s in shards]
            if sum(sizes) != n or min(sizes) < 1:
                raise ShardError(f"ShardedData.split: sizes {sizes} (sum {sum(sizes)}) do not "
                                 f"cut {n} cases into non-empty shards")
        cuts = np.cumsum([0] + sizes)
        sources = []
        for s in range(len(sizes)):
            piece = []
            for a in arrays:
                sl = [slice(None)] * np.ndim(a)
                sl[axis] = slice(int(cuts[s]), int(cuts[s + 1]))
                piece.append(np.ascontiguousarray(np.asarray(a)[tuple(sl)]))
            sources.append(("arrays", tuple(piece)))
        return cls._make(client, sources, axis, names, progress)

    @classmethod
    def load(cls, client, loader: Callable[..., tuple], shard_args: Sequence[tuple], *,
             axis: int = 0, names: Sequence[str] | None = None,
             progress: bool = True) -> "ShardedData":
        """One shard per item of ``shard_args``: ``loader(*shard_args[s])`` runs on a worker
        and returns the shard's arrays (a file name, a row range of a database...).  The data
        never passes through the driver; if a worker is lost, Dask calls the loader again."""
        return cls._make(client, [("load", loader, tuple(a)) for a in shard_args], axis,
                         names, progress)

    @classmethod
    def _make(cls, client, sources, axis, names, progress):
        from distributed import as_completed
        workers = sorted(client.scheduler_info()["workers"])
        token = uuid.uuid4().hex[:8]
        futures = [client.submit(_hold, s, src, axis, tuple(names) if names else None,
                                 key=f"rop-shard-{token}-{s}", pure=False,
                                 workers=[workers[s % len(workers)]] if workers else None,
                                 allow_other_workers=True)
                   for s, src in enumerate(sources)]
        metas = [client.submit(_meta, f, key=f"rop-shard-meta-{token}-{s}", pure=False)
                 for s, f in enumerate(futures)]
        with _bar(len(metas), "shards", progress) as bar:
            for _ in as_completed(metas):
                bar.update(1)
        metas = client.gather(metas)
        bad = [m for m in metas if isinstance(m, _Bad)]
        sizes = [m[0] if not isinstance(m, _Bad) else 0 for m in metas]
        if bad:
            offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            lines = []
            for m in bad:
                if isinstance(m, _BadCase) and all(sizes[i] for i in range(m.index)):
                    lines.append(f"shard {m.index}: " + m.text.format(
                        case=f"{m.case} (case {offsets[m.index] + m.case} of the dataset)"))
                else:
                    lines.append(m.message)
            raise ShardError("bad data in " + "; ".join(lines)) from None
        # shaped like shard 0 apart from the case axis
        shapes0, dtypes0 = metas[0][1], metas[0][2]
        for s, (_, shapes, dtypes) in enumerate(metas[1:], 1):
            if len(shapes) != len(shapes0):
                raise ShardError(f"shard {s} holds {len(shapes)} arrays, shard 0 {len(shapes0)}")
            for j, (a, b) in enumerate(zip(shapes, shapes0)):
                strip = lambda sh: tuple(d for k, d in enumerate(sh) if k != axis % len(sh))  # noqa: E731
                if len(a) != len(b) or strip(a) != strip(b):
                    lab = names[j] if names and len(names) == len(shapes) else f"array {j}"
                    raise ShardError(f"shard {s}: {lab} has shape {a}, shard 0's has {b}: "
                                     f"they may differ only along the case axis {axis}")
        return cls(client, futures, sizes, axis, names)


class _LRU(OrderedDict):
    def __init__(self, size):
        super().__init__()
        self.size = size

    def put(self, key, value):
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)  # its futures are released: the workers free the memory


class ShardedLoss:
    """The mean loss of an ``@rop`` function over a :class:`ShardedData`: gradient, Hv, Gv,
    their ``LinearOperator`` and Hessian-free, each shard's part computed on its worker.

    ``f`` is the decorated backprop, returning the gradient of *its batch's mean* loss (or a
    tuple holding it), called as ``f(*params, *shard_arrays)`` (``args=lambda theta, arrays:
    (...)`` for any other order; it runs on the workers).  ``loss(*params, *shard_arrays)``,
    plain Python, is the batch's mean loss (HF's objective, ρ and line search); ``precond``
    likewise returns the mean of squared per-case gradients, shaped like the parameters (HF's
    diagonal preconditioner).  ``curvature`` is ``"gvp"`` (Gauss-Newton; the default when ``f``
    names an ``output``) or ``"hvp"``.

    ``stats`` counts what crossed the network: ``theta_sent``/``theta_bytes`` (one broadcast
    per distinct point), ``v_sent``/``v_bytes`` (one per product), ``products``.
    """

    def __init__(self, f, data: ShardedData, *, loss: Callable | None = None,
                 precond: Callable | None = None, args: Callable | None = None,
                 curvature: str | None = None):
        from .api import RopFunction
        if not isinstance(f, RopFunction):
            raise TypeError(f"ShardedLoss takes an @rop function, got {type(f).__name__}")
        if not isinstance(data, ShardedData):
            raise TypeError(f"data must be a ShardedData, got {type(data).__name__}")
        kind = curvature or ("gvp" if f.output else "hvp")
        if kind not in ("hvp", "gvp") or (kind == "gvp" and not f.output):
            raise ValueError(f"curvature={curvature!r}: 'hvp', or 'gvp' for a function "
                             "decorated with output=")
        self.f, self.data, self.kind, self.client = f, data, kind, data.client
        self._spec = _Spec(f, loss, precond, args)
        self._spec_future = _held_by_workers(self.client, self._spec)
        self.layout: Layout | None = None
        self._thetas = _LRU(4)          # θ key -> its broadcast future
        self._lins = _LRU(2)            # (θ key, data, kind) -> the shards' _Lin futures
        self._counter = itertools.count()
        self.stats = dict(theta_sent=0, theta_bytes=0, v_sent=0, v_bytes=0, products=0)
        self._after_submit: Callable | None = None  # fault injection, for the tests

    # ------------------------------------------------------------------ plumbing
    def _flat(self, theta) -> np.ndarray:
        if self.layout is None:
            self.layout = Layout(self._spec.params(theta), self.f.wrt)
        return self.layout.flatten(self._spec.params(theta) if len(self.f.wrt) > 1 else theta)

    def _theta(self, theta):
        """θ's broadcast future and key: sent to every worker once per distinct point."""
        flat = self._flat(theta)
        key = hashlib.blake2b(flat.tobytes(), digest_size=16).hexdigest()
        fut = self._thetas.get(key)
        if fut is None:
            tree = self.layout.unflatten(flat)
            fut = _held_by_workers(self.client, tree)
            self.stats["theta_sent"] += 1
            self.stats["theta_bytes"] += flat.nbytes
            self._thetas.put(key, fut)
        else:
            self._thetas.move_to_end(key)
        return key, fut

    def _gather(self, futures, data: ShardedData, what: str) -> list:
        out = self.client.gather(futures)
        bad = [r for r in out if isinstance(r, _Bad)]
        if bad:
            raise ShardError(f"{what}: " + "; ".join(b.message for b in bad)) from None
        return out

    def _reduce(self, parts, data: ShardedData):
        """Σ_s (n_s/N) part_s, in shard order: the same sum whichever worker computed what."""
        out = data.weights[0] * np.asarray(parts[0], dtype=float)
        for w, p in zip(data.weights[1:], parts[1:]):
            out += w * np.asarray(p, dtype=float)
        return out

    def _tree(self, flat):
        tree = self.layout.unflatten(flat)
        return tree

    def _linearized(self, theta, data, kind):
        key, tfut = self._theta(theta)
        k = (key, id(data), kind)
        futs = self._lins.get(k)
        if futs is None:
            futs = [self.client.submit(_lin_task, self._spec_future, kind, tfut, s,
                                       key=f"rop-lin-{kind}-{key[:12]}-{id(data)}-{i}")
                    for i, s in enumerate(data.futures)]
            self._lins.put(k, futs)
        else:
            self._lins.move_to_end(k)
        return futs

    def _data(self, data):
        if data is None:
            return self.data
        if not isinstance(data, ShardedData):
            raise TypeError(f"data must be a ShardedData or None, got {type(data).__name__}")
        return data

    # ------------------------------------------------------------------ the quantities
    def loss(self, theta, data: ShardedData | None = None) -> float:
        """The mean loss Σ_s (n_s/N) E_s(θ) (the ``loss`` function on each shard)."""
        data = self._data(data)
        if self._spec.loss is None:
            raise ValueError("ShardedLoss.loss: no loss function was given (loss=...)")
        _, tfut = self._theta(theta)
        futs = [self.client.submit(_loss_task, self._spec_future, tfut, s, pure=False)
                for s in data.futures]
        parts = self._gather(futs, data, "the loss")
        return float(self._reduce(np.array(parts)[:, None], data)[0])

    def gradient(self, theta, data: ShardedData | None = None):
        """∇E(θ) = Σ_s (n_s/N) ∇E_s(θ), shaped like θ; each shard's gradient is the output
        of its linearisation at θ, which the curvature products at θ then reuse."""
        data = self._data(data)
        lins = self._linearized(theta, data, self.kind)
        futs = [self.client.submit(_gradient_task, l, pure=False) for l in lins]
        return self._tree(self._reduce(self._gather(futs, data, "the gradient"), data))

    def loss_and_gradient(self, theta, data: ShardedData | None = None):
        """(loss, gradient), as :func:`rop.hessian_free.hessian_free` takes them."""
        return self.loss(theta, data), self.gradient(theta, data)

    def _products(self, lins, data, flat_v, what):
        v = self.layout.directions(flat_v)
        vfut = _held_by_workers(self.client, v)
        self.stats["v_sent"] += 1
        self.stats["v_bytes"] += flat_v.nbytes
        futs = [self.client.submit(_product_task, l, vfut, pure=False) for l in lins]
        if self._after_submit is not None:
            self._after_submit(self)
        out = self._reduce(self._gather(futs, data, what), data)
        self.stats["products"] += 1
        return out

    def product_at(self, theta, data: ShardedData | None = None, kind: str | None = None):
        """``v -> B v`` (flat in, flat out) at θ: every shard linearised once, here; then each
        product broadcasts v once and sums the shards' products."""
        data = self._data(data)
        kind = kind or self.kind
        lins = self._linearized(theta, data, kind)
        name = "Gv" if kind == "gvp" else "Hv"
        return lambda flat_v: self._products(lins, data, self.layout.vector(flat_v), name)

    def hvp(self, theta, v, data: ShardedData | None = None):
        """H v at θ over the shards, shaped like θ."""
        self._flat(theta)
        return self._tree(self.product_at(theta, data, "hvp")(self.layout.flatten(v)))

    def gvp(self, theta, v, data: ShardedData | None = None):
        """G v (Gauss-Newton) at θ over the shards, shaped like θ."""
        self._flat(theta)
        return self._tree(self.product_at(theta, data, "gvp")(self.layout.flatten(v)))

    def operator(self, theta, kind: str | None = None,
                 data: ShardedData | None = None) -> CurvatureOperator:
        """The curvature at θ as a SciPy ``LinearOperator`` on the driver (flat layout, as
        ``f.hvp.operator``): each product runs on the workers."""
        kind = kind or self.kind
        product = self.product_at(theta, data, kind)
        name = ("Gauss-Newton" if kind == "gvp" else "Hessian") + \
            f" (sharded, {len(self._data(data))} shards)"
        return CurvatureOperator(self.layout, product, name=name)

    def precond_diag(self, theta, data: ShardedData | None = None):
        """Σ_s (n_s/N) precond_s(θ): the mean squared per-case gradient, shaped like θ."""
        data = self._data(data)
        if self._spec.precond is None:
            raise ValueError("ShardedLoss.precond_diag: no precond function was given")
        _, tfut = self._theta(theta)
        futs = [self.client.submit(_precond_task, self._spec_future, tfut, s, pure=False)
                for s in data.futures]
        return self._tree(self._reduce(self._gather(futs, data, "precond"), data))

    # ------------------------------------------------------------------ Hessian-free
    def hf_functions(self, curvature_data: ShardedData | Sequence[ShardedData] | None = None) -> dict:
        """The functions :func:`rop.hessian_free.hessian_free` takes, computed over the shards:
        ``objective``, ``gradient``, ``curvature_at`` (linearised once per step on every
        shard), ``precond_diag`` (when ``precond`` was given) and ``curvature_batches``
        (``curvature_data``: one ShardedData or a list, cycled one per outer step, for
        Martens' curvature mini-batches; default the whole data)."""
        def data_of(b):
            return b if isinstance(b, ShardedData) else None

        def curvature_at(p, b):
            B = self.product_at(p, data_of(b))
            layout = self.layout
            return lambda v: layout.unflatten(B(layout.flatten(v)))

        out = dict(objective=lambda p, b: self.loss(p, data_of(b)),
                   gradient=lambda p, b: self.loss_and_gradient(p, data_of(b)),
                   curvature=None, curvature_at=curvature_at)
        if self._spec.precond is not None:
            out["precond_diag"] = lambda p, b: self.precond_diag(p, data_of(b))
        if curvature_data is not None:
            out["curvature_batches"] = list(curvature_data) \
                if isinstance(curvature_data, (list, tuple)) else [curvature_data]
        return out

    def hessian_free(self, params, *, curvature_data=None, **options):
        """Martens' HF (:func:`rop.hessian_free.hessian_free`, every option as there) with the
        gradient, the objective, the preconditioner and each CG product computed over the
        shards.  Damping and ``weight_decay`` are added once, on the driver."""
        from .hessian_free import hessian_free
        for k in ("objective", "gradient", "curvature", "curvature_at", "precond_diag",
                  "batch", "batches", "curvature_batches"):
            if k in options:
                raise TypeError(f"ShardedLoss.hessian_free: {k}= comes from the ShardedLoss; "
                                "pass the data as ShardedData (curvature_data= for the "
                                "curvature's shards)")
        return hessian_free(params=params, **self.hf_functions(curvature_data), **options)

    def release(self) -> None:
        """Drop the linearisations and θ broadcasts this object holds on the workers."""
        self._lins.clear()
        self._thetas.clear()


def _register_sizeof():
    """Tell Dask what a shard and a linearisation weigh: its memory manager and work stealing
    would otherwise take them for a few bytes (worth moving anywhere, never spilled)."""
    try:
        from dask.sizeof import sizeof
    except ImportError:  # pragma: no cover
        return
    sizeof.register(_Shard)(lambda x: x.__sizeof__())
    sizeof.register(_Lin)(lambda x: x.__sizeof__())


_register_sizeof()
