#!/usr/bin/env python
"""The backward step's two formulas with the tanh slope stored, as rop emitted them before,
and recomputed in each, as it emits them now (docs/performance.md, "A short arithmetic chain
is recomputed, not stored"), compiled by Numba; best and median of interleaved rounds.

    python benchmarks/bench_fusion.py [--repeats 7]

A harness, not a test: it checks the two give the same numbers bit for bit, then times them.
"""

import argparse
import sys
import time

import numpy as np
import numba


@numba.njit
def stored(t20, R_t20, a, Ra):
    t23 = 1.0 - a ** 2
    d = t20 * t23
    R_d = R_t20 * t23 + t20 * -(2.0 * a * Ra)
    return d, R_d


@numba.njit
def recomputed(t20, R_t20, a, Ra):
    d = t20 * (1.0 - a ** 2)
    R_d = R_t20 * (1.0 - a ** 2) + t20 * -(2.0 * a * Ra)
    return d, R_d


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args(argv)
    print("| shape | stored (µs) | recomputed (µs) | recomputed / stored (median) |")
    print("|---|---|---|---|")
    for shape in [(32, 64), (128, 256), (256, 1000)]:
        xs = [np.random.default_rng(k).random(shape) for k in range(4)]
        for x, y in zip(stored(*xs), recomputed(*xs)):
            assert np.array_equal(x, y)
        res = {"stored": [], "recomputed": []}
        n = max(10, int(2e6 / xs[0].size))
        for _ in range(a.repeats):
            for f in (stored, recomputed):
                t = time.perf_counter()
                for _ in range(n):
                    f(*xs)
                res[f.__name__].append((time.perf_counter() - t) / n)
        med = {k: float(np.median(v)) * 1e6 for k, v in res.items()}
        print(f"| {shape[0]}×{shape[1]} | {med['stored']:.1f} | {med['recomputed']:.1f} | "
              f"{med['recomputed'] / med['stored']:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
