"""Generated code lives in a real file, keyed by a hash of its text and rop's version,
so that ``inspect``, tracebacks, pdb and Numba's on-disk cache all see the same text."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
import tempfile
import types

from .. import __version__


@functools.lru_cache(maxsize=1)
def compiler_digest() -> str:
    """rop's version and a hash of its own source: generated code from another compiler
    (an upgrade, a local change) is never reused."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    h = hashlib.sha256(__version__.encode())
    for dirpath, _, files in sorted(os.walk(root)):
        for f in sorted(files):
            if f.endswith((".py", ".lark", ".json")):
                with open(os.path.join(dirpath, f), "rb") as fh:
                    h.update(f.encode() + b"\0" + fh.read())
    return h.hexdigest()[:16]


def cache_dir() -> str:
    d = os.environ.get("ROP_CACHE_DIR")
    if not d:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        d = os.path.join(base, "rop")
    os.makedirs(d, exist_ok=True)
    return d


def write_module(source: str, stem: str) -> str:
    """Write ``source`` to the cache (atomically) and return its path.

    The name holds a hash of the source *and* of the compiler (:func:`compiler_digest`):
    Numba keys its cache of a file by the file alone, so the same generated source from
    another rop (an upgrade whose runtime helpers changed) must be a new file, or Numba would
    load machine code compiled against the old helpers, whose symbols can then clash with
    the new ones in one process (seen: a wrong Hv after a change to ``rt.release``)."""
    key = __version__ + "\0" + compiler_digest() + "\0" + source
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    path = os.path.join(cache_dir(), f"{stem}_{digest}.py")
    try:
        with open(path, encoding="utf-8") as fh:
            if fh.read() == source:
                return path
    except (OSError, ValueError):  # missing, unreadable or not UTF-8: rewrite it
        pass
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(source)
    os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the new one
    return path


def load_module(path: str, mode: str, externs: dict | None = None) -> types.ModuleType:
    """Import the generated file; in numba mode every function in it becomes an njit dispatcher.
    ``externs`` (registered primitives and their rules' helpers) are provided to it by name."""
    name = "rop_generated." + os.path.basename(path)[:-3] + ("" if mode == "numba" else "_py")
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for ename, obj in (externs or {}).items():
        setattr(mod, ename, _for_mode(obj, mode))
    mod.Tape = list  # a linearised function's tape (transforms/linearize.py)
    if mode == "numba":
        import numba
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        if "Tape()" in text:  # numba.typed costs ~30 ms to import: only for a tape
            from numba.typed import List
            mod.Tape = List
        if "rt.gemm(" in text:  # its C kernel is called by symbol: bind it first
            from ..runtime.blas import ensure_kernel
            ensure_kernel()
        for fname in getattr(mod, "__rop_functions__", ()):
            setattr(mod, fname, numba.njit(cache=True, fastmath=False)(getattr(mod, fname)))
    sys.modules[name] = mod
    return mod


def _index_path(key: str) -> str:
    return os.path.join(cache_dir(), "index", key)


def index_lookup(key: str):
    """(path, source) of the module generated before for this key, if it is intact."""
    try:
        with open(_index_path(key), encoding="utf-8") as fh:
            path, digest = fh.read().split("\n")[:2]
        with open(path, encoding="utf-8") as fh:
            source = fh.read()
    except (OSError, ValueError):  # ValueError covers a file that is not UTF-8
        return None
    if hashlib.sha256(source.encode()).hexdigest() != digest:
        return None  # stale or corrupted: regenerate, never use
    return path, source


def index_store(key: str, path: str) -> None:
    with open(path, encoding="utf-8") as fh:
        digest = hashlib.sha256(fh.read().encode()).hexdigest()
    os.makedirs(os.path.dirname(_index_path(key)), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(_index_path(key)), suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(f"{path}\n{digest}\n")
    os.replace(tmp, _index_path(key))


def _for_mode(obj, mode):
    """A function as the generated code calls it: jitted for Numba, plain for Python."""
    py = getattr(obj, "py_func", obj)
    if mode != "numba" or not callable(py) or not isinstance(py, types.FunctionType):
        return py
    if hasattr(obj, "py_func"):
        return obj  # already a Numba dispatcher
    import numba
    return numba.njit(cache=True)(py)
