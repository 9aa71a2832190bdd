"""Generated code lives in a real file, keyed by a hash of its text and rop's version,
so that ``inspect``, tracebacks, pdb and Numba's on-disk cache all see the same text."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import types

from .. import __version__


def cache_dir() -> str:
    d = os.environ.get("ROP_CACHE_DIR")
    if not d:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        d = os.path.join(base, "rop")
    os.makedirs(d, exist_ok=True)
    return d


def write_module(source: str, stem: str) -> str:
    """Write ``source`` to the cache (atomically) and return its path."""
    digest = hashlib.sha256((__version__ + "\0" + source).encode()).hexdigest()[:20]
    path = os.path.join(cache_dir(), f"{stem}_{digest}.py")
    try:
        with open(path, encoding="utf-8") as fh:
            if fh.read() == source:
                return path
    except OSError:
        pass
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(source)
    os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the new one
    return path


def load_module(path: str, mode: str) -> types.ModuleType:
    """Import the generated file; in numba mode every function in it becomes an njit dispatcher."""
    name = "rop_generated." + os.path.basename(path)[:-3] + ("" if mode == "numba" else "_py")
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    if mode == "numba":
        import numba
        for fname in getattr(mod, "__rop_functions__", ()):
            setattr(mod, fname, numba.njit(cache=True, fastmath=False)(getattr(mod, fname)))
    sys.modules[name] = mod
    return mod
