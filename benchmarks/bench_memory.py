#!/usr/bin/env python
"""Peak extra memory of one Hv and of one gradient, at the four sizes of bench_hvp.py, in both
layouts (columns: examples/deep_mlp.py's ``backprop``; rows: bench_layouts.py's
``backprop_rows``), for rop and the hand-written Numba baselines (issue 22: Hv extra ≤ 2× the
gradient's at every size).

    python benchmarks/bench_memory.py [--sizes small|all|0,2,...] [--out FILE]

Two measures, each in a fresh child process per (size, layout, method):

* resident memory, by bench_hvp.py's own ``child_memory`` (``MALLOC_MMAP_THRESHOLD_=65536``,
  ``clear_refs`` + VmHWM − VmRSS, median of 3 calls): sees every allocation (BLAS included) but
  only at page / mmap granularity — below resolution where the arrays are ≲ 64 KiB;
* exact bytes: Numba's runtime (NRT) allocates through ``PyMem_RawMalloc`` (numba sets
  ``memsys_use_cpython_allocator`` at import), so ``tracemalloc`` sees every array the compiled
  code allocates, byte for byte, together with NumPy's and the Python objects of the call; its
  peak (``reset_peak``) is the exact peak of those bytes above the pre-call level.  Not seen:
  memory allocated outside Python's allocators (BLAS' internal buffers).  Beside it, the number
  of NRT allocations per call (``rtsys.get_allocation_stats()``, enabled by ``NUMBA_NRT_STATS=1``
  in the child) — a count, not bytes, so no peak can be derived from it.

A harness, not a test: nothing is asserted beyond the hand-written baselines agreeing with rop.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import io
import json
import os
import subprocess
import sys
import tracemalloc

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks import bench_hvp as bh  # noqa: E402
from benchmarks.bench_hvp import SIZES, make_data, size_label  # noqa: E402

MMAP_THRESHOLD = 65536    # MALLOC_MMAP_THRESHOLD_ of bench_hvp.measure_memory
CALLS = 3                 # measured calls of each kind per child (median), as bench_hvp
SMALL_EXCESS = 4096       # an Hv excess over 2 x gradient below this is Python objects, not arrays

# (layout, method key): columns methods are bench_hvp's own setups; rows ones are added below.
# rop_raw: the Numba dispatcher without the `.hvp` wrapper (what the wrapper's Python adds).
VARIANTS = [("columns", "rop"), ("columns", "rop_raw"), ("columns", "numba_hand"),
            ("rows", "rop_rows"), ("rows", "rop_rows_raw"), ("rows", "numba_hand_rows")]
LABELS = {"rop": "rop `.hvp` / `.hvp.primal`",
          "rop_raw": "rop raw dispatcher `.hvp._last.hvp` / `.hvp.primal`",
          "numba_hand": "hand-written, Numba (handwritten.py)",
          "rop_rows": "rop `.hvp` / `.hvp.primal`",
          "rop_rows_raw": "rop raw dispatcher `.hvp._last.hvp` / `.hvp.primal`",
          "numba_hand_rows": "hand-written, Numba (handwritten_rows.py)"}
HAND = {"rop": "numba_hand", "rop_rows": "numba_hand_rows"}
RAW = {"rop": "rop_raw", "rop_rows": "rop_rows_raw"}


def _rows_data(d):
    return np.ascontiguousarray(d["X"].T), np.ascontiguousarray(d["T"].T)


def setup_rop_rows(d):
    """bench_hvp-style setup for the rows layout: (hv, grad, hv_flat, grad_flat)."""
    from benchmarks.bench_layouts import backprop_rows
    Ws, bs, V, c = d["Ws"], d["bs"], d["V"], d["c"]
    Xr, Tr = _rows_data(d)
    backprop_rows.hvp(Ws, bs, Xr, Tr, v=(V, c))   # compile (or load from the cache)
    primal = backprop_rows.hvp.primal
    args = (tuple(Ws), tuple(bs), Xr, Tr)
    return (lambda: backprop_rows.hvp(Ws, bs, Xr, Tr, v=(V, c))), (lambda: primal(*args)), \
        bh._two, bh._one


def setup_rop_rows_raw(d):
    from benchmarks.bench_layouts import backprop_rows
    Ws, bs, V, c = d["Ws"], d["bs"], d["V"], d["c"]
    Xr, Tr = _rows_data(d)
    backprop_rows.hvp(Ws, bs, Xr, Tr, v=(V, c))
    raw, primal = backprop_rows.hvp._last.hvp, backprop_rows.hvp.primal
    args = (tuple(Ws), tuple(bs), Xr, Tr)
    rargs = args + (tuple(V), tuple(c))
    return (lambda: raw(*rargs)), (lambda: primal(*args)), bh._two, bh._one


def setup_numba_hand_rows(d):
    from benchmarks import handwritten_rows as hwr
    tW, tb, tV, tc = (tuple(d[k]) for k in ("Ws", "bs", "V", "c"))
    Xr, Tr = _rows_data(d)
    return (lambda: hwr.rbackprop_rows_nb(tW, tb, Xr, Tr, tV, tc)), \
        (lambda: hwr.grad_rows_nb(tW, tb, Xr, Tr)), bh._two, bh._one


ROWS_SETUPS = {"rop_rows": setup_rop_rows, "rop_rows_raw": setup_rop_rows_raw,
               "numba_hand_rows": setup_numba_hand_rows}


# --------------------------------------------------------------------------- child
def exact_memory(method, size_index, calls=CALLS):
    """tracemalloc peak above the pre-call level (bytes), bytes still held after the call (the
    returned arrays and their Python objects), and NRT allocations, per call; lists of `calls`."""
    from numba.core.runtime import rtsys
    layers, batch = SIZES[size_index]
    hv, gr, _, _ = bh.SETUPS[method](make_data(layers, batch))
    for _ in range(2):
        hv(), gr()
    res = {"grad": [], "hv": []}
    tracemalloc.start()
    try:
        for kind, f in [("grad", gr), ("hv", hv)] * calls:
            gc.collect()
            s0 = rtsys.get_allocation_stats()
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            out = f()
            cur, peak = tracemalloc.get_traced_memory()
            s1 = rtsys.get_allocation_stats()
            del out
            res[kind].append(dict(peak=peak - base, retained=cur - base,
                                  nrt_allocs=s1.alloc - s0.alloc))
    finally:
        tracemalloc.stop()
    return res


def child(method, size_index):
    bh.SETUPS.update(ROWS_SETUPS)   # in this child only: lets bench_hvp.child_memory build them
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        bh.child_memory(argparse.Namespace(child_method=method, child_size=size_index))
    rss = json.loads(buf.getvalue().strip().splitlines()[-1])
    exact = exact_memory(method, size_index)   # after the RSS pass: tracemalloc has its own cost
    print(json.dumps(dict(rss=rss, exact=exact)))
    return 0


# --------------------------------------------------------------------------- parent
def spawn(method, size_index):
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(MMAP_THRESHOLD), NUMBA_NRT_STATS="1")
    p = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", method,
                        "--child-size", str(size_index)], env=env, capture_output=True, text=True,
                       cwd=ROOT)
    if p.returncode != 0:
        raise RuntimeError(f"child {method} {size_index} failed:\n{p.stdout}\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def check_baselines(size_index):
    """Before measuring: the hand-written baselines compute rop's gradient and Hv, both layouts."""
    layers, batch = SIZES[size_index]
    d = make_data(layers, batch)
    setups = dict(bh.SETUPS, **ROWS_SETUPS)
    for rop_m, hand_m in HAND.items():
        hv_r, gr_r, c2, c1 = setups[rop_m](d)
        hv_h, gr_h, _, _ = setups[hand_m](d)
        g_r, h_r = c2(hv_r())
        g_h, h_h = c2(hv_h())
        errs = (bh.rel_err(h_h, h_r), bh.rel_err(g_h, g_r), bh.rel_err(c1(gr_h()), c1(gr_r())))
        if max(errs) > bh.HV_TOL:
            raise SystemExit(f"VERIFICATION FAILED at {size_label(layers, batch)}: {hand_m} vs "
                             f"{rop_m}: Hv, gradient (with Hv), gradient rel. errors {errs}")


def sizes_info(size_index):
    layers, batch = SIZES[size_index]
    d = make_data(layers, batch)
    params = sum(a.nbytes for k in ("Ws", "bs") for a in d[k])
    acts = 8 * batch * sum(layers)            # the forward pass's activations, X included
    largest = max(max(W.nbytes for W in d["Ws"]), 8 * batch * max(layers))
    return dict(label=size_label(layers, batch), params_bytes=params, acts_bytes=acts,
                largest_array_bytes=largest, rss_resolved=largest > MMAP_THRESHOLD)


def med(xs):
    return float(np.median(xs))


def summarise(r):
    rss, ex = r["rss"], r["exact"]
    out = dict(how=rss["method"], rss_grad=med(rss["grad"]), rss_hv=med(rss["hv"]),
               rss_grad_all=rss["grad"], rss_hv_all=rss["hv"])
    for kind in ("grad", "hv"):
        for q in ("peak", "retained", "nrt_allocs"):
            vals = [x[q] for x in ex[kind]]
            out[f"{q}_{kind}"] = med(vals)
            out[f"{q}_{kind}_spread"] = max(vals) - min(vals)
    out["rss_ratio"] = out["rss_hv"] / out["rss_grad"] if out["rss_grad"] > 0 else float("nan")
    out["peak_ratio"] = out["peak_hv"] / out["peak_grad"] if out["peak_grad"] > 0 else float("nan")
    return out


def fmt_b(n):
    n = float(n)
    if abs(n) < 1024:
        return f"{n:.0f} B"
    if abs(n) < 2**20:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 2**20:.2f} MiB"


def write_markdown(path, info, sizes, rows, argv):
    how = {r["how"] for r in rows.values()}
    L = ["# Peak extra memory of Hv and of the gradient, both layouts, every size", "",
         f"- date: {info['date']}; command: `{' '.join(argv)}`",
         f"- machine: {info['cpu']}, {info['cores']} usable cores, load average at start "
         f"{' '.join(info['loadavg_start'])}, at end {' '.join(info.get('loadavg_end', ['?']))} "
         "(memory does not depend on load); versions: "
         + ", ".join(f"{k} {v}" for k, v in info["versions"].items()
                     if k in ("python", "numpy", "numba", "rop", "rop_git")),
         "- network: the tanh MLP of bench_hvp.py, float64; columns = `examples/deep_mlp.py`'s "
         "`backprop` (rop) and `handwritten.py` (hand-written, Numba); rows = "
         "`bench_layouts.py`'s `backprop_rows` (rop) and `handwritten_rows.py` (hand-written, "
         "Numba). rop's Hv is the `.hvp(...)` wrapper, its gradient `.hvp.primal` (the original "
         "function compiled by the same backend); the hand-written ones are `rbackprop*_nb` / "
         "`grad*_nb`.",
         "- one fresh process per (size, layout, method), `MALLOC_MMAP_THRESHOLD_=65536`, two "
         "warm-up calls of each kind, then 3 measured calls of each kind (median).",
         "- **RSS** (bench_hvp.py's method, its `child_memory`): "
         + ("`echo 5 > /proc/self/clear_refs`, then VmHWM after the call − VmRSS before it"
            if how == {"VmHWM-reset"} else f"method {sorted(how)}")
         + ". Sees every allocation (BLAS included) at page granularity; arrays ≤ 64 KiB come "
         "from glibc's heap, which the warm-up calls have already grown, so where every array "
         "of the network is ≤ 64 KiB the RSS figure is **below resolution** (marked so: it "
         "is 0 or a few pages whatever the arrays' size; repeated runs of the same call gave 0 to "
         "96 KiB). RSS is also coarse at the third size (≈ 1 MiB of parameters): its ratios there "
         "differ from the exact ones by up to 0.15.",
         "- **exact** (tracemalloc): Numba's NRT allocates through `PyMem_RawMalloc`, so "
         "`tracemalloc` traces every array the compiled code allocates, byte for byte, along with "
         "NumPy's and the Python objects the call creates (argument tuples, the returned lists, "
         "ndarray headers, NRT's meminfo headers and alignment padding). *peak* = "
         "`tracemalloc` peak during the call − traced bytes before it; *held after* = traced "
         "bytes while the result is still referenced − before (the returned arrays and their "
         "Python objects), so peak − held after is the temporaries' share. Not seen: memory "
         "allocated outside Python's allocators (OpenBLAS's buffers, allocated once per thread "
         "at its first call). The 3 calls agree to within 1 KiB unless a spread is shown.",
         "- **NRT allocations / call**: `numba.core.runtime.rtsys.get_allocation_stats()` "
         "(`NUMBA_NRT_STATS=1`): a count of blocks, not bytes, so no peak can be derived from it "
         "alone; the exact peak above is the byte measure.",
         "- the extra includes the returned arrays: the gradient call returns one gradient "
         "(= parameter bytes), the Hv call a gradient and an Hv (2 × parameter bytes).", ""]
    L += ["## Sizes", "", "| size | parameters (= one gradient) | activations B·Σnᵢ·8 | largest "
          "array | RSS resolves it |", "|---|---|---|---|---|"]
    for s in sizes:
        L.append(f"| {s['label']} | {fmt_b(s['params_bytes'])} | {fmt_b(s['acts_bytes'])} | "
                 f"{fmt_b(s['largest_array_bytes'])} | "
                 f"{'yes' if s['rss_resolved'] else '**no** (every array ≤ 64 KiB)'} |")
    L.append("")
    L += ["## Measurements", "",
          "| size | layout | method | RSS: gradient | RSS: Hv | RSS: Hv / grad | exact peak: "
          "gradient | exact peak: Hv | exact: Hv / grad | held after: gradient / Hv | NRT "
          "allocations / call: gradient / Hv |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in sizes:
        for layout, m in VARIANTS:
            r = rows.get((s["label"], m))
            if r is None:
                continue
            below = "" if s["rss_resolved"] else " (below res.)"
            rr = (f"{r['rss_ratio']:.2f}" if s["rss_resolved"] and r["rss_grad"] > 0
                  else "—")

            def sp(kind):
                x = r[f"peak_{kind}_spread"]   # Python objects: tens of bytes call to call
                return f" (spread {fmt_b(x)})" if x > 1024 else ""
            L.append(f"| {s['label']} | {layout} | {LABELS[m]} | {fmt_b(r['rss_grad'])}{below} | "
                     f"{fmt_b(r['rss_hv'])}{below} | {rr} | {fmt_b(r['peak_grad'])}{sp('grad')} | "
                     f"{fmt_b(r['peak_hv'])}{sp('hv')} | {r['peak_ratio']:.3f} | "
                     f"{fmt_b(r['retained_grad'])} / {fmt_b(r['retained_hv'])} | "
                     f"{r['nrt_allocs_grad']:.0f} / {r['nrt_allocs_hv']:.0f} |")
    L.append("")
    L += ["## Target of issue 22: peak extra memory of Hv ≤ 2× the gradient's (rop)", "",
          "Read from the exact measure at every size; the RSS ratio beside it where RSS resolves "
          "the arrays. The hand-written Numba code's own ratio is given for scale: the returned "
          "arrays alone make the ratio 2 (Hv returns gradient and Hv, the gradient call one "
          "gradient), and so do activations kept for the backward pass (the Hv pass keeps them "
          "and their R{·}), so 2 is where code that doubles every array lands. *Hv − 2 × "
          "gradient* is the excess in bytes; *met*: `yes` when Hv ≤ 2 × gradient, `≈` when the "
          f"excess is under {fmt_b(SMALL_EXCESS)} (the Python objects of the call — tuples, "
          "lists, ndarray headers — not arrays), **no** otherwise.", "",
          "| size | layout | rop `.hvp`: Hv / grad (exact) | Hv − 2 × gradient (exact) | rop raw "
          "dispatcher (exact) | rop `.hvp` (RSS) | hand-written (exact) | hand-written (RSS) | "
          "Hv peak: rop `.hvp` / hand-written | gradient peak: rop / hand-written | met |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in sizes:
        for layout, m in VARIANTS:
            if m not in HAND or (s["label"], m) not in rows:
                continue
            r = rows[(s["label"], m)]
            h, w = rows.get((s["label"], HAND[m])), rows.get((s["label"], RAW[m]))

            def rss_r(x):
                return f"{x['rss_ratio']:.3f}" if s["rss_resolved"] and x["rss_grad"] > 0 else \
                    "below resolution"
            ex = r["peak_hv"] - 2 * r["peak_grad"]
            met = "yes" if ex <= 0 else "≈" if ex < SMALL_EXCESS else "**no**"
            L.append(f"| {s['label']} | {layout} | {r['peak_ratio']:.3f} | {fmt_b(ex)} | "
                     + (f"{w['peak_ratio']:.3f} | " if w else "— | ") + f"{rss_r(r)} | "
                     + (f"{h['peak_ratio']:.3f} | {rss_r(h)} | {r['peak_hv'] / h['peak_hv']:.2f} | "
                        f"{r['peak_grad'] / h['peak_grad']:.2f} | " if h else "— | — | — | — | ")
                     + f"{met} |")
    L.append("")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(L))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="all",
                    help="small (the smallest size), all, or comma-separated indices 0-3")
    ap.add_argument("--methods", default=",".join(m for _, m in VARIANTS),
                    help="comma-separated subset of " + ",".join(m for _, m in VARIANTS))
    ap.add_argument("--out", default=os.path.join(HERE, "results", "memory.md"),
                    help="the Markdown report (default results/memory.md)")
    ap.add_argument("--json", default=os.path.join(HERE, "results", "memory.json"),
                    help="the raw figures of every call (default results/memory.json)")
    ap.add_argument("--report-only", metavar="JSON",
                    help="rewrite --out from a saved --json file, measure nothing")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-size", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        return child(a.child, a.child_size)
    if a.report_only:
        with open(a.report_only) as fh:
            j = json.load(fh)
        rows = {tuple(k.rsplit(" ", 1)): summarise(r) for k, r in j["raw"].items()}
        write_markdown(a.out, j["info"], j["sizes"], rows, j["info"]["command"])
        print(f"wrote {a.out}")
        return 0
    idx = ([0] if a.sizes == "small" else list(range(len(SIZES))) if a.sizes == "all"
           else [int(k) for k in a.sizes.split(",")])
    methods = [m.strip() for m in a.methods.split(",") if m.strip()]
    raw_argv = ["python", "benchmarks/bench_memory.py"] + list(sys.argv[1:] if argv is None
                                                               else argv)
    info = bh.machine_info()
    info["date"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    info["command"] = raw_argv
    sizes, rows, raw = [], {}, {}
    for i in idx:
        s = sizes_info(i)
        sizes.append(s)
        check_baselines(i)
        print(f"{s['label']}: parameters {fmt_b(s['params_bytes'])}, activations "
              f"{fmt_b(s['acts_bytes'])}" + ("" if s["rss_resolved"] else
                                             " (RSS below resolution: every array ≤ 64 KiB)"),
              flush=True)
        for layout, m in VARIANTS:
            if m not in methods:
                continue
            r = spawn(m, i)
            raw[f"{s['label']} {m}"] = r
            x = rows[(s["label"], m)] = summarise(r)
            print(f"  {layout:7s} {m:15s} RSS grad +{fmt_b(x['rss_grad']):>10s} Hv "
                  f"+{fmt_b(x['rss_hv']):>10s} | exact peak grad {fmt_b(x['peak_grad']):>10s} Hv "
                  f"{fmt_b(x['peak_hv']):>10s} ratio {x['peak_ratio']:.3f} (Hv - 2 grad "
                  f"{fmt_b(x['peak_hv'] - 2 * x['peak_grad'])}) | NRT allocs "
                  f"{x['nrt_allocs_grad']:.0f} / {x['nrt_allocs_hv']:.0f}", flush=True)
    info["loadavg_end"] = bh._loadavg()
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        write_markdown(a.out, info, sizes, rows, raw_argv)
        print(f"wrote {a.out}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(dict(info=info, sizes=sizes, raw=raw), fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
