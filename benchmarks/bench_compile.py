#!/usr/bin/env python
"""Compile time and cached start of the deep MLP's Hv: rop against hand-written Numba.

    python benchmarks/bench_compile.py [--runs N] [--quick] [--root DIR] [--vs DIR] [--out FILE]

Every measurement is a fresh ``python`` process.  ``cold``: new empty ``ROP_CACHE_DIR`` and
``NUMBA_CACHE_DIR`` for each run; ``cached``: a later process with the cache a cold run
filled.  Per run the child reports the imports, the first call and the second call; for rop
the first call is split by timers wrapped around rop's own functions:

- *R-code*: generating the module (``rop.pipeline.run_passes``: lowering excluded, it runs at
  decoration; every pass through ``emit``),
- *load*: importing the generated file and wrapping its functions (``load_module``; this
  binds the ``rt.gemm`` C kernel, compiling it on a machine's first use),
- *Numba*: the first call of the generated dispatcher (``HVP._call_compiled``), which
  compiles, or loads from Numba's cache, and runs once,
- the rest (binding and checking the arguments, the cache look-up, hashing) is the first call
  minus those.

Methods: ``rop`` (``examples/deep_mlp.py``'s ``backprop``, columns layout), ``rop_rows``
(``benchmarks/bench_layouts.py``'s ``backprop_rows``, rows layout, ``ys = [X]`` and append)
and ``hand`` (``benchmarks/handwritten.py``'s ``rbackprop_nb``, ``numba.njit(cache=True)``,
called with tuples as bench_hvp.py calls it) at [784,1000,500,250,30]×256.  Runs of the
methods are interleaved; the table gives medians.  ``--root`` measures another checkout of rop
(its ``rop``, ``examples`` and ``benchmarks``); ``--vs DIR`` measures a second checkout in the
same rounds, interleaved (before/after figures from one sitting).
A harness, not a test (issue 22).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LAYERS, BATCH = [784, 1000, 500, 250, 30], 256
METHODS = ("rop", "rop_rows", "hand")


# --------------------------------------------------------------------------- child
def _timed(owner, name, acc, key):
    """Wrap ``owner.name`` so that the time spent in it adds to ``acc[key]``."""
    orig = getattr(owner, name)

    def wrapper(*a, **k):
        t0 = time.perf_counter()
        try:
            return orig(*a, **k)
        finally:
            acc[key] = acc.get(key, 0.0) + time.perf_counter() - t0
    setattr(owner, name, wrapper)


def child(method, root):
    sys.path.insert(0, root)
    os.chdir(root)
    acc = {}
    t0 = time.perf_counter()
    import numpy as np
    if method == "hand":
        from benchmarks import handwritten as hw
    else:
        import rop.api
        import rop.pipeline
        if method == "rop":
            from examples.deep_mlp import backprop as f
        else:
            from benchmarks.bench_layouts import backprop_rows as f
    t_import = time.perf_counter() - t0
    if method != "hand":  # after the imports: the decoration's lowering is not a first call
        _timed(rop.pipeline, "run_passes", acc, "rcode")
        _timed(rop.pipeline, "load_module", acc, "load")
        _timed(rop.api.HVP, "_call_compiled", acc, "numba")
    rng = np.random.default_rng(0)
    Ws = [rng.normal(size=(m, n)) / np.sqrt(n) for n, m in zip(LAYERS[:-1], LAYERS[1:])]
    bs = [0.1 * rng.normal(size=m) for m in LAYERS[1:]]
    X = rng.normal(size=(LAYERS[0], BATCH))
    T = rng.normal(size=(LAYERS[-1], BATCH))
    V = [rng.normal(size=W.shape) for W in Ws]
    c = [rng.normal(size=b.shape) for b in bs]
    if method == "hand":
        args = (tuple(Ws), tuple(bs), X, T, tuple(V), tuple(c))
        call = lambda: hw.rbackprop_nb(*args)  # noqa: E731
    elif method == "rop":
        call = lambda: f.hvp(Ws, bs, X, T, v=(V, c))  # noqa: E731
    else:
        Xr, Tr = np.ascontiguousarray(X.T), np.ascontiguousarray(T.T)
        call = lambda: f.hvp(Ws, bs, Xr, Tr, v=(V, c))  # noqa: E731
    t1 = time.perf_counter()
    call()
    t_first = time.perf_counter() - t1
    first_parts = dict(acc)
    t2 = time.perf_counter()
    call()
    t_second = time.perf_counter() - t2
    print(json.dumps(dict(import_s=t_import, first_s=t_first, second_s=t_second,
                          rcode_s=first_parts.get("rcode", 0.0),
                          load_s=first_parts.get("load", 0.0),
                          numba_s=first_parts.get("numba", 0.0))))


# --------------------------------------------------------------------------- parent
def spawn(method, root, cache):
    env = dict(os.environ, ROP_CACHE_DIR=cache, NUMBA_CACHE_DIR=os.path.join(cache, "numba"),
               ROP_PROGRESS="0")
    p = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", method,
                        "--root", root], env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"child {method} failed:\n{p.stdout}\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def measure(methods, runs, roots, log=print):
    """{(root, method): {"cold": [row, ...], "cached": [row, ...]}}: per round, each method
    (and root) once cold (a new cache) and then once cached (the cache that cold run filled)."""
    out = {(root, m): {"cold": [], "cached": []} for m in methods for root in roots}
    for k in range(runs):
        for m, root in [(m, root) for m in methods for root in roots]:
            if m == "hand" and root != roots[0]:
                continue  # the hand-written function does not depend on rop's checkout
            cache = tempfile.mkdtemp(prefix=f"rop-bc-{m}-")
            try:
                for state in ("cold", "cached"):
                    r = spawn(m, root, cache)
                    out[root, m][state].append(r)
                    log(f"  round {k + 1}/{runs} {m:8s} {state:6s} {os.path.basename(root)}: "
                        f"first {r['first_s']:.3f} s (R-code {r['rcode_s']:.3f}, load "
                        f"{r['load_s']:.3f}, Numba {r['numba_s']:.3f}), second "
                        f"{r['second_s'] * 1e3:.1f} ms, imports {r['import_s']:.3f} s", flush=True)
            finally:
                shutil.rmtree(cache, ignore_errors=True)
    return out


def med(rows, key):
    return statistics.median(r[key] for r in rows)


def fmt(s):
    return f"{s:.2f} s" if s >= 1 else f"{s * 1e3:.0f} ms"


LABELS = {"rop": "rop, columns (`examples/deep_mlp.py`)",
          "rop_rows": "rop, rows (`bench_layouts.py` `backprop_rows`)",
          "hand": "hand-written Numba (`handwritten.rbackprop_nb`)"}


def table(res, roots):
    L = ["| method | cold first call | R-code | load | Numba | rest | cached first call "
         "| cached: Numba | cached second call | imports (cached) |",
         "|---|---|---|---|---|---|---|---|---|---|"]
    for (root, m), r in res.items():
        cold, cached = r["cold"], r["cached"]
        if not cold:
            continue
        label = LABELS[m] + (f" [{root}]" if len(roots) > 1 and m != "hand" else "")
        first = med(cold, "first_s")
        parts = [med(cold, k) for k in ("rcode_s", "load_s", "numba_s")]
        rest = statistics.median(x["first_s"] - x["rcode_s"] - x["load_s"] - x["numba_s"]
                                 for x in cold)
        isrop = m != "hand"
        L.append(f"| {label} | {fmt(first)} | "
                 + " | ".join(fmt(p) if isrop else "–" for p in parts)
                 + f" | {fmt(rest) if isrop else '–'} | {fmt(med(cached, 'first_s'))} | "
                 f"{fmt(med(cached, 'numba_s')) if isrop else '–'} | "
                 f"{fmt(med(cached, 'second_s'))} | {fmt(med(cached, 'import_s'))} |")
    return L


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="1 run each, no file written")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--root", default=ROOT, help="the rop checkout to measure")
    ap.add_argument("--vs", help="a second checkout, measured in the same rounds")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "compile.md"))
    ap.add_argument("--json", help="also write the raw rows here")
    ap.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        return child(a.child, os.path.abspath(a.root))
    runs = 1 if a.quick else a.runs
    methods = [m for m in a.methods.split(",") if m]
    roots = [os.path.abspath(a.root)] + ([os.path.abspath(a.vs)] if a.vs else [])
    print(f"{LAYERS}×{BATCH}, {runs} run(s), roots {roots}", flush=True)
    res = measure(methods, runs, roots)
    lines = table(res, roots)
    print("\n".join(lines))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump([[root, m, r] for (root, m), r in res.items()], fh, indent=1)
    if a.quick:
        return 0
    with open("/proc/loadavg") as fh:
        load = " ".join(fh.read().split()[:3])
    text = "\n".join([
        f"# Compile time and cached start, {LAYERS}×{BATCH}", "",
        f"`python benchmarks/bench_compile.py --runs {runs}"
        f"{' --vs ' + a.vs if a.vs else ''}`; {time.strftime('%Y-%m-%d')}; "
        f"load average at the end {load}; medians of {runs} fresh processes per cell.", "",
        "*cold*: empty rop and Numba caches; *cached*: the next process, with the cache the cold "
        "run filled.  The cold first call of rop is split into *R-code* (the passes, "
        "`run_passes`), *load* (import of the generated file, binding the `rt.gemm` kernel, "
        "compiled on the first use), *Numba* (the generated function's first call: "
        "compiling it and running once) and *rest* (argument checks, cache look-up).  Imports: "
        "`import rop` and the example (or `benchmarks.handwritten`), numpy included.", "",
        *lines, ""])
    with open(a.out, "w") as fh:
        fh.write(text)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
