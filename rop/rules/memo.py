"""A small on-disk memo for sympy results, so that a fresh process does not re-derive
``tanh' = 1 - y**2`` (sympy's simplify and solve cost about a second per function)."""

from __future__ import annotations

import json
import os
import tempfile

from .. import __version__

_MEMO: dict | None = None


def _path() -> str:
    from ..backend.loader import cache_dir
    return os.path.join(cache_dir(), f"derivatives-{__version__}.json")


def _load() -> dict:
    global _MEMO
    if _MEMO is None:
        try:
            with open(_path(), encoding="utf-8") as fh:
                _MEMO = json.load(fh)
            if not isinstance(_MEMO, dict):
                _MEMO = {}
        except (OSError, ValueError):  # missing or corrupt: recompute, never trust
            _MEMO = {}
    return _MEMO


def memo(key: str, compute):
    """``compute()`` (JSON-serialisable) cached under ``key`` across processes."""
    table = _load()
    if key in table:
        return table[key]
    value = compute()
    table[key] = value
    try:
        d = os.path.dirname(_path())
        fd, tmp = tempfile.mkstemp(dir=d, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(table, fh, indent=0, sort_keys=True)
        os.replace(tmp, _path())
    except OSError:
        pass  # a read-only cache only costs time
    return value
