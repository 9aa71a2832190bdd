#!/usr/bin/env python
"""Where rop's generated R{backprop} loses time against the hand-written Numba R{backprop}.

    python benchmarks/profile_rop.py [--sizes 0,3] [--repeats 9] [--out benchmarks/results]

Every claim is a measurement (interleaved medians, same arrays, same process):
  1. the `.hvp` wrapper against the raw dispatcher, and each piece of the wrapper;
  2. Numba's dispatch cost for this signature (a no-op with the same argument types);
  3. ablations of the generated code: the same source with one thing changed (the products with
     the zero R{X} removed, `** 2` as a product, `rt.broadcast_as` / `rt.sum` replaced by their
     plain equivalents), each re-jitted and timed against the generated code and the
     hand-written version;
  4. the GEMMs involved: wasted first-layer products, transposed operands, Numba's BLAS (SciPy's)
     against NumPy's;
  5. NRT allocations per call (a child process with NUMBA_NRT_STATS=1);
  6. peak extra memory of the ablated variant (child process, VmHWM reset);
  7. the cached start: cProfile of the first `.hvp` call in a fresh process with warm caches;
  8. FLOP counts (the bound on Hv/gradient).
Writes profile.md next to results.md. Does not modify rop.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import io
import json
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks.bench_hvp import (SIZES, _proc_status, fmt_t, make_data, rel_err,  # noqa: E402
                                  size_label, stats, time_interleaved)


# --------------------------------------------------------------------------- ablations
def _sub(pattern, repl, src, count=0):
    new, n = re.subn(pattern, repl, src, count=count, flags=re.M)
    return new, n


_STACKS = [
    ("""        h = Ws[i] @ acts[i] + bs[i][:, None]
        if i == 0:
            R_h = R_Ws[i] @ acts[i] + R_bs[i][:, None]
        else:
            R_h = R_Ws[i] @ acts[i] + Ws[i] @ R_acts[i] + R_bs[i][:, None]""",
     """        if i == 0:
            h = Ws[i] @ acts[i] + bs[i][:, None]
            R_h = R_Ws[i] @ acts[i] + R_bs[i][:, None]
        else:
            B = acts[i].shape[1]
            S = Ws[i] @ np.hstack((acts[i], R_acts[i]))
            h = S[:, :B] + bs[i][:, None]
            R_h = R_Ws[i] @ acts[i] + S[:, B:] + R_bs[i][:, None]"""),
    ("""        dWs[i] = d @ acts[i].T
        if i == 0:
            R_dWs[i] = R_d @ acts[i].T
        else:
            R_dWs[i] = R_d @ acts[i].T + d @ R_acts[i].T""",
     """        n = d.shape[0]
        S2 = np.vstack((d, R_d)) @ acts[i].T
        dWs[i] = S2[:n].copy()
        if i == 0:
            R_dWs[i] = S2[n:].copy()
        else:
            R_dWs[i] = S2[n:] + d @ R_acts[i].T"""),
    ("""            t24 = Ws[i].T @ d""", """            B2 = d.shape[1]
            S3 = Ws[i].T @ np.hstack((d, R_d))
            t24 = S3[:, :B2]"""),
    ("""            R_t24 = R_Ws[i].T @ d + Ws[i].T @ R_d""", """            R_t24 = R_Ws[i].T @ d + S3[:, B2:]"""),
]


def _stacked(source):
    """The generated source with the GEMMs that share an operand done as one (a hand edit of
    the deep MLP's code: measures what a stacking pass could gain), or (source, 0)."""
    if not all(old in source for old, _ in _STACKS):
        return source, 0
    for old, new in _STACKS:
        source = source.replace(old, new)
    return source, len(_STACKS)


def variants(source):
    """{name: (source, what changed, number of sites)} derived from the generated source."""
    out = {"generated (re-jitted copy)": (source, "unchanged", 0)}
    written, n_written = _sub(r"^(\s*\S[^=\n]*= ).*  # = (.*)$", r"\1\2", source)
    if n_written:
        out["products as written"] = (
            written, "`rt.gemm(A, B, C, D, c=e)` -> `A @ B + C @ D + e` (the BLAS pass off)",
            n_written)
    generated, source = source, written  # (a)-(c) are hand edits of the products as written
    # (a) no products with the zero R{X}: layer 0 of the forward R-pass and of R{dW}
    s, n1 = _sub(r"^(\s*)R_h = (R_Ws\[i\] @ \w+) \+ (\w+) @ R_acts\[i\] \+ (R_bs\[i\]\[:, None\])$",
                 r"\1if i == 0:\n\1    R_h = \2 + \4\n\1else:\n\1    R_h = \2 + \3 @ R_acts[i] + \4",
                 source)
    s, n2 = _sub(r"^(\s*)R_dWs\[i\] = (R_d @ \w+) \+ (d @ R_acts\[i\]\.T)$",
                 r"\1if i == 0:\n\1    R_dWs[i] = \2\n\1else:\n\1    R_dWs[i] = \2 + \3", s)
    s, n3 = _sub(r"R_acts = \[rt\.zeros_of\(e\) for e in acts\]", "R_acts = [e for e in acts]", s)
    if n1 and n2:
        out["no zero first-layer products"] = (s, "skip W_0 @ R{X} and d @ R{X}.T (R{X} = 0), "
                                               "no zeros_of(X)", n1 + n2 + n3)
    s, n = _sub(r"R_acts = \[rt\.zeros_of\(e\) for e in acts\]", "R_acts = [e for e in acts]", source)
    if n and not (n1 or n2):  # valid only when no read of R{acts[0]} is left unguarded
        out["zero slot not materialised"] = (s, "`R_acts[0]` holds X instead of zeros_of(X) "
                                             "(never read: every product with it is versioned)", n)
    s, n = _stacked(source)
    if n:
        out["GEMMs sharing an operand stacked"] = (
            s, "W @ [a | R{a}], [d; R{d}] @ a^T, W^T @ [d | R{d}] as one GEMM each (hstack/vstack "
               "copies included; on the products as written)", n)
    source = generated
    s, n = _sub(r"\b(\w+) \*\* 2\b", r"(\1 * \1)", source)
    if n:
        out["x ** 2 -> x * x"] = (s, "`t ** 2` written as `t * t`", n)
    s, n = _sub(r"rt\.broadcast_as\(([^,()]+(?:\[[^\]]*\])?), \w+\)", r"\1", source)
    if n:
        out["no rt.broadcast_as"] = (s, "`rt.broadcast_as(r, like)` -> `r` (same shapes here)", n)
    s, n = _sub(r"rt\.sum\((\w+), 1, False\)", r"\1.sum(axis=1)", source)
    if n:
        out["np sum(axis=1)"] = (s, "`rt.sum(d, 1, False)` -> `d.sum(axis=1)`", n)
    allsrc = source
    total = 0
    s = source
    for pat, rep in [
        (r"^(\s*)R_h = (R_Ws\[i\] @ \w+) \+ (\w+) @ R_acts\[i\] \+ (R_bs\[i\]\[:, None\])$",
         r"\1if i == 0:\n\1    R_h = \2 + \4\n\1else:\n\1    R_h = \2 + \3 @ R_acts[i] + \4"),
        (r"^(\s*)R_dWs\[i\] = (R_d @ \w+) \+ (d @ R_acts\[i\]\.T)$",
         r"\1if i == 0:\n\1    R_dWs[i] = \2\n\1else:\n\1    R_dWs[i] = \2 + \3"),
        (r"R_acts = \[rt\.zeros_of\(e\) for e in acts\]", "R_acts = [e for e in acts]"),
        (r"\b(\w+) \*\* 2\b", r"(\1 * \1)"),
        (r"rt\.broadcast_as\(([^,()]+(?:\[[^\]]*\])?), \w+\)", r"\1"),
    ]:
        s, n = _sub(pat, rep, s)
        total += n
    if s != allsrc:
        out["all of the above"] = (s, "the changes above together (not rt.sum)", total)
    return out


def load_variant(src, name, tmpdir):
    import numba
    path = os.path.join(tmpdir, re.sub(r"\W+", "_", name) + ".py")
    with open(path, "w") as fh:
        fh.write(src)
    spec = importlib.util.spec_from_file_location("ropvar_" + re.sub(r"\W+", "_", name), path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return numba.njit(cache=False)(mod.backprop_hvp)


# --------------------------------------------------------------------------- pieces
def wrapper_pieces(d):
    from examples.deep_mlp import backprop
    from rop.api import _as_arg, _check_direction
    Ws, bs, X, T, V, c = (d[k] for k in ("Ws", "bs", "X", "T", "V", "c"))
    h = backprop.hvp
    h(Ws, bs, X, T, v=(V, c))
    raw = h._last.hvp
    rargs = (tuple(Ws), tuple(bs), X, T, tuple(V), tuple(c))
    bound = h._bind((Ws, bs, X, T), {})
    wrt = backprop.wrt
    fns = {
        "wrapper `.hvp(...)`": lambda: h(Ws, bs, X, T, v=(V, c)),
        "raw dispatcher": lambda: raw(*rargs),
        "  dispatch path: lists to tuples (the rest is checked in compiled code)": lambda: (
            [tuple(x) if type(x) is list else x for x in (Ws, bs, X, T)],
            [tuple(x) if type(x) is list else x for x in (V, c)]),
        "  checked path: _bind (inspect.Signature.bind)": lambda: h._bind((Ws, bs, X, T), {}),
        "  checked path: _as_arg (ascontiguousarray, tuples)": lambda: [
            _as_arg(bound[p], p, "f", p in wrt) for p in bound],
        "  checked path: _check_direction": lambda: [
            _check_direction(bound[w], v_, w, "f") for w, v_ in zip(wrt, (V, c))],
        "  checked path: _get (signature key of every argument)": lambda: h._get(bound),
        "  np.isfinite(x).all() of params + directions (done in compiled code instead)":
            lambda: [np.isfinite(a).all() for a in Ws + bs + V + c],
    }
    return fns


def dispatch_probe(d):
    import numba

    @numba.njit
    def noop(Ws, bs, X, T, V, c):
        return 0.0

    @numba.njit
    def lists_out(Ws, bs, X, T, V, c):
        L = len(Ws)
        a = [Ws[0]] * L
        b = [bs[0]] * L
        for i in range(L):
            a[i] = Ws[i]
            b[i] = bs[i]
        return (a, b), (a, b)

    rargs = tuple(tuple(d[k]) if isinstance(d[k], list) else d[k]
                  for k in ("Ws", "bs", "X", "T", "V", "c"))
    return {"njit no-op, same argument types (unboxing)": lambda: noop(*rargs),
            "njit returning ((list, list), (list, list)) of the inputs (boxing)":
                lambda: lists_out(*rargs)}


def gemm_probe(d):
    import numba
    Ws, X = d["Ws"], d["X"]
    W0 = Ws[0]
    B = X.shape[1]
    Z = np.zeros_like(X)
    D = np.random.default_rng(1).normal(size=(W0.shape[0], B))
    W1 = Ws[1]
    D1 = np.random.default_rng(2).normal(size=(W1.shape[0], B))

    @numba.njit
    def mm(a, b):
        return a @ b

    @numba.njit
    def mm_t(a, b):        # a @ b.T
        return a @ b.T

    @numba.njit
    def mm_tc(a, b):       # a @ ascontiguousarray(b.T)
        return a @ np.ascontiguousarray(b.T)

    @numba.njit
    def tm(a, b):          # a.T @ b
        return a.T @ b

    @numba.njit
    def zeros_like(a):
        return np.zeros_like(a)

    @numba.njit
    def nb_tanh(a):
        return np.tanh(a)

    @numba.njit
    def nb_rtsum(a):
        return rt.sum(a, 1, False)

    @numba.njit
    def nb_sum(a):
        return a.sum(axis=1)

    from rop import runtime as rt
    A1 = np.tanh(D)
    return {
        f"np.tanh on a {A1.shape[0]}x{B} activation, Numba (scalar libm tanh)": lambda: nb_tanh(A1),
        "  the same, NumPy (SIMD tanh)": lambda: np.tanh(A1),
        f"rt.sum(d, 1, False) on {A1.shape[0]}x{B}, Numba": lambda: nb_rtsum(A1),
        "  d.sum(axis=1), Numba": lambda: nb_sum(A1),
        "  d.sum(axis=1), NumPy": lambda: A1.sum(axis=1),
        f"wasted W_0 @ R{{X}} ({W0.shape[0]}x{W0.shape[1]} @ {Z.shape[0]}x{B}), Numba":
            lambda: mm(W0, Z),
        f"wasted d_0 @ R{{X}}.T ({D.shape[0]}x{B} @ {B}x{Z.shape[0]}), Numba": lambda: mm_t(D, Z),
        "  the same, operand made contiguous first (ascontiguousarray(R{X}.T))":
            lambda: mm_tc(D, Z),
        "rt.zeros_of(X) equivalent (np.zeros_like(X)), Numba": lambda: zeros_like(X),
        f"W_1 @ a_1 ({W1.shape[0]}x{W1.shape[1]} @ {W1.shape[1]}x{B}), Numba (SciPy BLAS)":
            lambda: mm(W1, np.tanh(D)),
        "  the same GEMM, NumPy `@` (NumPy's OpenBLAS)": lambda: W1 @ np.tanh(D),
        f"W_1.T @ d_1 (F-layout operand), Numba": lambda: tm(W1, D1),
        "  the same, NumPy": lambda: W1.T @ D1,
    }


# --------------------------------------------------------------------------- children
def child_alloc(args):
    """NRT allocations per call (needs NUMBA_NRT_STATS=1 before numba is imported)."""
    from numba.core.runtime import rtsys
    from benchmarks import handwritten as hw
    from examples.deep_mlp import backprop
    layers, batch = SIZES[args.size]
    d = make_data(layers, batch)
    Ws, bs, X, T, V, c = (d[k] for k in ("Ws", "bs", "X", "T", "V", "c"))
    backprop.hvp(Ws, bs, X, T, v=(V, c))
    raw, primal = backprop.hvp._last.hvp, backprop.hvp.primal
    rargs = (tuple(Ws), tuple(bs), X, T, tuple(V), tuple(c))
    src = backprop.hvp.source
    tmp = tempfile.mkdtemp(prefix="rop-prof-")
    vs = variants(src)
    fns = {"rop Hv (raw)": lambda: raw(*rargs), "rop gradient (primal)": lambda: primal(*rargs[:4]),
           "hand-written Hv (Numba)": lambda: hw.rbackprop_nb(*rargs),
           "hand-written gradient (Numba)": lambda: hw.grad_nb(*rargs[:4])}
    if "no zero first-layer products" in vs:
        fv = load_variant(vs["no zero first-layer products"][0], "alloc_nozero", tmp)
        fns["rop Hv without zero first-layer products"] = lambda: fv(*rargs)
    out = {}
    for k, f in fns.items():
        f()
        s0 = rtsys.get_allocation_stats()
        f()
        s1 = rtsys.get_allocation_stats()
        out[k] = s1.alloc - s0.alloc
    print(json.dumps(out))


def child_mem(args):
    from examples.deep_mlp import backprop
    from benchmarks import handwritten as hw
    layers, batch = SIZES[args.size]
    d = make_data(layers, batch)
    Ws, bs, X, T, V, c = (d[k] for k in ("Ws", "bs", "X", "T", "V", "c"))
    backprop.hvp(Ws, bs, X, T, v=(V, c))
    raw = backprop.hvp._last.hvp
    rargs = (tuple(Ws), tuple(bs), X, T, tuple(V), tuple(c))
    tmp = tempfile.mkdtemp(prefix="rop-prof-")
    vs = variants(backprop.hvp.source)
    fns = {"rop Hv (raw)": lambda: raw(*rargs), "hand-written Hv (Numba)":
           lambda: hw.rbackprop_nb(*rargs)}
    if "no zero first-layer products" in vs:
        fv = load_variant(vs["no zero first-layer products"][0], "mem_nozero", tmp)
        fns["rop Hv without zero first-layer products"] = lambda: fv(*rargs)
    if "zero slot not materialised" in vs:
        fz = load_variant(vs["zero slot not materialised"][0], "mem_noslot", tmp)
        fns["rop Hv without the zeros_of(X) slot"] = lambda: fz(*rargs)
    gr = backprop.hvp._last.primal
    fns["rop gradient (primal)"] = lambda: gr(*rargs[:4])
    out = {}
    for k, f in fns.items():
        f(), f()
        vals = []
        for _ in range(3):
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            base = _proc_status("VmRSS")
            r = f()
            vals.append(_proc_status("VmHWM") - base)
            del r
        out[k] = float(np.median(vals))
    print(json.dumps(out))


def child_startprof(args):
    """cProfile of the first .hvp call in a process whose caches are warm."""
    t0 = time.perf_counter()
    from examples.deep_mlp import backprop
    t_imp = time.perf_counter() - t0
    layers, batch = SIZES[args.size]
    d = make_data(layers, batch)
    pr = cProfile.Profile()
    t1 = time.perf_counter()
    pr.enable()
    backprop.hvp(d["Ws"], d["bs"], d["X"], d["T"], v=(d["V"], d["c"]))
    pr.disable()
    t_first = time.perf_counter() - t1
    s = io.StringIO()
    st = pstats.Stats(pr, stream=s)
    st.sort_stats("cumulative").print_stats(28)
    # the pieces of compile_hvp on the cached path, timed directly
    from rop.frontend.lower import lower
    from rop.backend import loader
    t = time.perf_counter()
    lower(backprop.fn)
    t_lower = time.perf_counter() - t
    loader.compiler_digest.cache_clear()
    t = time.perf_counter()
    loader.compiler_digest()
    t_digest = time.perf_counter() - t
    print(json.dumps(dict(import_s=t_imp, first_call_s=t_first, lower_s=t_lower,
                          compiler_digest_s=t_digest, profile=s.getvalue())))


def _spawn(argv, env):
    p = subprocess.run([sys.executable, os.path.abspath(__file__)] + argv, env=env,
                       capture_output=True, text=True, cwd=ROOT)
    if p.returncode != 0:
        raise RuntimeError(p.stdout + p.stderr)
    return json.loads(p.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- flops
def unguarded_input_products(source):
    """Products with R{acts[i]} in the generated Hv that can run at i == 0 (R{X} = 0): those not
    inside the ``else`` of an ``if i == 0:`` nor under ``if i > 0:``."""
    lines = source.split("def backprop_hvp")[1].splitlines()
    n = 0
    for k, line in enumerate(lines):
        if "@ R_acts[i]" not in line and "R_acts[i].T" not in line:
            continue
        ind = len(line) - len(line.lstrip())
        head = next((lines[j].strip() for j in range(k - 1, -1, -1)
                     if lines[j].strip() and not lines[j].strip().startswith("#")
                     and len(lines[j]) - len(lines[j].lstrip()) < ind), "")
        n += head not in ("else:", "if i > 0:")
    return n


def flops(layers, batch, source):
    mn = [n * m for n, m in zip(layers[:-1], layers[1:])]
    g = 2 * batch * (2 * mn[0] + 3 * sum(mn[1:]))           # fwd + dW, + W^T d for i > 0
    hand = 2 * batch * (4 * mn[0] + 9 * sum(mn[1:]))        # R: +V a, +W R{a}; +R{d}a^T, +d R{a}^T ...
    # each product with R{acts[i]} that also runs at i == 0 multiplies R{X} = 0: one W_0-sized GEMM
    gen = hand + 2 * batch * mn[0] * unguarded_input_products(source)
    return g, hand, gen


# --------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="0,3")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--pause", type=float, default=0.05)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--child", choices=("alloc", "mem", "startprof"))
    ap.add_argument("--size", type=int, default=0)
    args = ap.parse_args(argv)
    if args.child == "alloc":
        return child_alloc(args)
    if args.child == "mem":
        return child_mem(args)
    if args.child == "startprof":
        return child_startprof(args)

    from benchmarks import handwritten as hw
    from examples.deep_mlp import backprop
    idx = [int(s) for s in args.sizes.split(",")]
    L = ["# Where the generated R{backprop} loses time (profile_rop.py)", "",
         f"- date {time.strftime('%Y-%m-%d %H:%M')}, load average "
         f"{open('/proc/loadavg').read().split()[:3]} on {os.cpu_count()} cores (shared machine)",
         f"- medians of {args.repeats} interleaved rounds, [p25–p75]", ""]

    def log(s=""):
        print(s, flush=True)
        L.append(s)

    tmp = tempfile.mkdtemp(prefix="rop-prof-")
    for i in idx:
        layers, batch = SIZES[i]
        d = make_data(layers, batch)
        Ws, bs, X, T, V, c = (d[k] for k in ("Ws", "bs", "X", "T", "V", "c"))
        rargs = (tuple(Ws), tuple(bs), X, T, tuple(V), tuple(c))
        (g_ref, h_ref) = backprop.hvp(Ws, bs, X, T, v=(V, c))
        href = np.concatenate([a.ravel() for a in list(h_ref[0]) + list(h_ref[1])])
        log(f"## {size_label(layers, batch)}")
        log("")
        groups = [("wrapper", wrapper_pieces(d)), ("dispatch", dispatch_probe(d))]
        vs = variants(backprop.hvp.source)
        abl = {"rop raw dispatcher (as compiled by rop)": lambda: backprop.hvp._last.hvp(*rargs),
               "hand-written R{backprop}, Numba": lambda: hw.rbackprop_nb(*rargs)}
        notes = {}
        for name, (src, what, n) in vs.items():
            f = load_variant(src, f"{name}_{i}", tmp)
            out = f(*rargs)
            h = np.concatenate([a.ravel() for a in list(out[1][0]) + list(out[1][1])])
            e = rel_err(h, href)
            if e > 1e-10:
                raise SystemExit(f"variant {name} changed Hv: {e}")
            abl[name] = (lambda f=f: f(*rargs))
            notes[name] = f"{what} ({n} sites), Hv rel. err {e:.0e}"
        groups.append(("ablation", abl))
        if i == len(SIZES) - 1 or layers[0] >= 256:
            groups.append(("gemm", gemm_probe(d)))
        for gname, fns in groups:
            times, _ = time_interleaved(fns, args.repeats, 0.05 if i < 3 else 0.0,
                                        pause=args.pause)
            base = None
            log(f"### {gname}")
            log("")
            log("| what | median [p25–p75] | vs first row |")
            log("|---|---|---|")
            for k, ts in times.items():
                s = stats(ts)
                base = base or s["median"]
                extra = f" — {notes[k]}" if k in notes else ""
                log(f"| {k}{extra} | {fmt_t(s['median'])} [{fmt_t(s['p25'])}–{fmt_t(s['p75'])}] | "
                    f"{s['median'] / base:.2f}× |")
            log("")
        from examples.deep_mlp import backprop as _bp
        g, hand, gen = flops(layers, batch, _bp.hvp.source)
        log(f"FLOPs (GEMMs only): gradient {g / 1e6:.3f} M, hand-written Hv {hand / 1e6:.3f} M "
            f"({hand / g:.2f}× the gradient), generated Hv {gen / 1e6:.3f} M ({gen / g:.2f}×; "
            f"{(gen - hand) / gen:.0%} of it multiplies R{{X}} = 0)")
        log("")
        env = dict(os.environ, NUMBA_NRT_STATS="1")
        a = _spawn(["--child", "alloc", "--size", str(i)], env)
        log("NRT allocations per call (NUMBA_NRT_STATS=1, child process): " +
            ", ".join(f"{k}: {v}" for k, v in a.items()))
        log("")
        if i == len(SIZES) - 1:
            m = _spawn(["--child", "mem", "--size", str(i)],
                       dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536"))
            log("Peak extra memory per Hv call (VmHWM reset, MALLOC_MMAP_THRESHOLD_=65536): " +
                ", ".join(f"{k}: {v / 2**20:.1f} MiB" for k, v in m.items()))
            log("")
            sp = _spawn(["--child", "startprof", "--size", str(i)], dict(os.environ))
            log(f"Cached start (warm ROP_CACHE_DIR / Numba cache, fresh process): import "
                f"{sp['import_s']:.3f} s, first `.hvp` {sp['first_call_s']:.3f} s; of the pieces "
                f"on the cached path, `lower(fn)` (parse + lower, repeated for the index key) "
                f"{sp['lower_s']:.3f} s, `compiler_digest()` (hash of rop's sources) "
                f"{sp['compiler_digest_s']:.3f} s. cProfile of the first call (cumulative):")
            log("")
            log("```")
            log("\n".join(sp["profile"].strip().splitlines()[:45]))
            log("```")
            log("")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "profile.md"), "w") as fh:
        fh.write("\n".join(L) + "\n")
    print(f"wrote {os.path.join(args.out, 'profile.md')}")


if __name__ == "__main__":
    sys.exit(main())
