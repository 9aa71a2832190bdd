"""Names the compiler makes: deterministic, and never one of the user's or a keyword (numba's
IR names are not legal Python; tangent's random fallback made its output non-deterministic)."""

from __future__ import annotations

import ast
import keyword


class Namer:
    """Deterministic fresh names that cannot collide with any user name or keyword."""

    def __init__(self, taken):
        self.taken = set(taken) | set(keyword.kwlist) | {"np", "rt", "math"}
        self.counts: dict[str, int] = {}
        self.temp_names: set[str] = set()

    def fresh(self, base: str) -> str:
        if base not in self.taken:
            self.taken.add(base)
            return base
        n = self.counts.get(base, 0)
        while True:
            n += 1
            cand = f"{base}_{n}"
            if cand not in self.taken:
                self.counts[base] = n
                self.taken.add(cand)
                return cand

    def temp(self) -> str:
        n = self.counts.get("#t", 0)
        while True:
            n += 1
            cand = f"t{n}"
            if cand not in self.taken:
                self.counts["#t"] = n
                self.taken.add(cand)
                self.temp_names.add(cand)
                return cand


def all_names(tree) -> set:
    """Every name and parameter an ``ast`` tree mentions: the names a Namer must avoid."""
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | \
           {a.arg for a in ast.walk(tree) if isinstance(a, ast.arg)}
