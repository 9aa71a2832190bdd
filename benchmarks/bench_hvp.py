#!/usr/bin/env python
"""Hessian-vector-product benchmark: rop's generated R{backprop} against hand-written
R{backprop} (NumPy and Numba), JAX, PyTorch, HIPS autograd and central finite differences.

    python benchmarks/bench_hvp.py [--sizes small|all] [--repeats N] [--out benchmarks/results]
                                   [--methods rop,rop_raw,...] [--no-subprocess]

Network: the deep tanh MLP of examples/deep_mlp.py (tanh hidden layers, linear output,
squared error E = 1/(2B)||net(X) - T||^2), float64, same arrays for every method.
See benchmarks/README.md for what is measured and how.  This is a harness, not a test:
nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

SIZES = [
    ([8, 16, 16, 4], 8),
    ([64, 64, 64, 10], 32),
    ([256, 256, 256, 10], 128),
    ([784, 1000, 500, 250, 30], 256),
]
METHODS = ["rop", "rop_raw", "numba_hand", "numpy_hand", "jax", "torch", "autograd", "fd"]
LABELS = {
    "rop": "rop (`.hvp` wrapper)",
    "rop_raw": "rop (raw Numba dispatcher)",
    "numba_hand": "hand-written R{backprop}, Numba",
    "numpy_hand": "hand-written R{backprop}, NumPy",
    "jax": "JAX jit(jvp(grad))",
    "torch": "PyTorch torch.func jvp(grad)",
    "autograd": "HIPS autograd make_hvp",
    "fd": "central differences (2 gradients)",
}
GRAD_LABELS = {
    "rop": "rop primal (compiled)", "rop_raw": "rop primal (compiled)",
    "numba_hand": "hand-written backprop, Numba", "numpy_hand": "hand-written backprop, NumPy",
    "jax": "jit(grad)", "torch": "torch.func.grad", "autograd": "autograd.grad",
    "fd": "rop primal (the gradient it differences)",
}
TORCH_THREADS = None  # --torch-threads
HV_TOL = 1e-8     # relative (max-norm over all Hv entries) agreement with rop, before timing
FD_TOL = 1e-5     # central differences carry O(eps^2) truncation + O(u/eps) rounding error


def size_label(layers, batch):
    return "[" + ",".join(map(str, layers)) + f"]×{batch}"


def flat(arrs):
    return np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrs])


def rel_err(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def make_data(layers, batch):
    from examples.deep_mlp import init
    Ws, bs, X, T, V, c = init(layers, batch)
    return dict(Ws=Ws, bs=bs, X=X, T=T, V=V, c=c)


def cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


# --------------------------------------------------------------------------- methods
# Each setup returns (hv, grad, hv_flat, grad_flat): zero-argument callables that run one
# Hv (returning the gradient and Hv, as rop does) / one gradient on prepared inputs, and
# converters of their outputs to flat float64 NumPy vectors (dWs..., dbs...).

def _two(out):  # ((dWs, dbs), (RdWs, Rdbs)) -> (grad flat, Hv flat)
    (g, h) = out
    return flat(list(g[0]) + list(g[1])), flat(list(h[0]) + list(h[1]))


def _one(out):
    return flat(list(out[0]) + list(out[1]))


def setup_rop(d):
    from examples.deep_mlp import backprop
    Ws, bs, X, T, V, c = (d[k] for k in ("Ws", "bs", "X", "T", "V", "c"))
    backprop.hvp(Ws, bs, X, T, v=(V, c))  # compile (or load from the cache)
    primal = backprop.hvp.primal
    args = (tuple(Ws), tuple(bs), X, T)
    return (lambda: backprop.hvp(Ws, bs, X, T, v=(V, c))), (lambda: primal(*args)), _two, _one


def setup_rop_raw(d):
    from examples.deep_mlp import backprop
    Ws, bs, X, T, V, c = (d[k] for k in ("Ws", "bs", "X", "T", "V", "c"))
    backprop.hvp(Ws, bs, X, T, v=(V, c))
    raw = backprop.hvp._last.hvp
    primal = backprop.hvp.primal
    args = (tuple(Ws), tuple(bs), X, T)
    rargs = args + (tuple(V), tuple(c))
    return (lambda: raw(*rargs)), (lambda: primal(*args)), _two, _one


def setup_numpy_hand(d):
    from benchmarks import handwritten as hw
    Ws, bs, X, T, V, c = (d[k] for k in ("Ws", "bs", "X", "T", "V", "c"))
    return (lambda: hw.rbackprop(Ws, bs, X, T, V, c)), (lambda: hw.grad(Ws, bs, X, T)), _two, _one


def setup_numba_hand(d):
    from benchmarks import handwritten as hw
    Ws, bs, X, T, V, c = (tuple(d[k]) if isinstance(d[k], list) else d[k]
                          for k in ("Ws", "bs", "X", "T", "V", "c"))
    return (lambda: hw.rbackprop_nb(Ws, bs, X, T, V, c)), (lambda: hw.grad_nb(Ws, bs, X, T)), \
        _two, _one


def jax_loss(params, X, T):
    """The benchmark network's loss in JAX (x64 enabled by the caller): tanh layers, a linear
    output, 1/(2B) ||net(X) - T||^2.  Shared by the harnesses that compare against JAX."""
    import jax.numpy as jnp
    Ws, bs = params
    a, L = X, len(Ws)
    for i in range(L):
        h = Ws[i] @ a + bs[i][:, None]
        a = jnp.tanh(h) if i < L - 1 else h
    r = a - T
    return 0.5 * jnp.sum(r * r) / X.shape[1]


def setup_jax(d):
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    loss = jax_loss

    g = jax.grad(loss)
    grad_jit = jax.jit(g)
    hvp_jit = jax.jit(lambda p, X, T, v: jax.jvp(lambda q: g(q, X, T), (p,), (v,)))
    P = ([jnp.asarray(W) for W in d["Ws"]], [jnp.asarray(b) for b in d["bs"]])
    Vj = ([jnp.asarray(W) for W in d["V"]], [jnp.asarray(b) for b in d["c"]])
    X, T = jnp.asarray(d["X"]), jnp.asarray(d["T"])
    assert P[0][0].dtype == jnp.float64
    return (lambda: jax.block_until_ready(hvp_jit(P, X, T, Vj))), \
        (lambda: jax.block_until_ready(grad_jit(P, X, T))), _two, _one


def setup_torch(d):
    import torch
    torch.set_num_threads(TORCH_THREADS or cores())

    def loss(params, X, T):
        Ws, bs = params
        a, L = X, len(Ws)
        for i in range(L):
            h = Ws[i] @ a + bs[i][:, None]
            a = torch.tanh(h) if i < L - 1 else h
        r = a - T
        return 0.5 * torch.sum(r * r) / X.shape[1]

    gfun = torch.func.grad(loss)
    P = (tuple(torch.from_numpy(W) for W in d["Ws"]), tuple(torch.from_numpy(b) for b in d["bs"]))
    Vt = (tuple(torch.from_numpy(W) for W in d["V"]), tuple(torch.from_numpy(b) for b in d["c"]))
    X, T = torch.from_numpy(d["X"]), torch.from_numpy(d["T"])
    assert P[0][0].dtype == torch.float64

    def hv():
        return torch.func.jvp(lambda p: gfun(p, X, T), (P,), (Vt,))

    def conv2(out):
        g, h = out
        return (flat([t.detach().numpy() for t in list(g[0]) + list(g[1])]),
                flat([t.detach().numpy() for t in list(h[0]) + list(h[1])]))

    def conv1(out):
        return flat([t.detach().numpy() for t in list(out[0]) + list(out[1])])

    return hv, (lambda: gfun(P, X, T)), conv2, conv1


def setup_autograd(d):
    import autograd.numpy as anp
    from autograd import grad as agrad
    from autograd import make_hvp

    def loss(params, X, T):
        Ws, bs = params
        a, L = X, len(Ws)
        for i in range(L):
            h = anp.dot(Ws[i], a) + bs[i][:, None]
            a = anp.tanh(h) if i < L - 1 else h
        r = a - T
        return 0.5 * anp.sum(r * r) / X.shape[1]

    P = (list(d["Ws"]), list(d["bs"]))
    v = (list(d["V"]), list(d["c"]))
    X, T = d["X"], d["T"]
    gfun = agrad(loss)

    def hv():
        vjp, g = make_hvp(loss)(P, X, T)   # reverse-over-reverse; H is symmetric so vjp = Hv
        return g, vjp(v)

    return hv, (lambda: gfun(P, X, T)), _two, _one


def setup_fd(d):
    from examples.deep_mlp import backprop
    Ws, bs, X, T, V, c = (d[k] for k in ("Ws", "bs", "X", "T", "V", "c"))
    backprop.hvp(Ws, bs, X, T, v=(V, c))
    primal = backprop.hvp.primal
    pnorm = math.sqrt(sum(float(np.sum(a * a)) for a in Ws + bs))
    vnorm = math.sqrt(sum(float(np.sum(a * a)) for a in V + c))
    eps = np.cbrt(np.finfo(float).eps) * max(1.0, pnorm) / vnorm  # balances O(eps^2) and O(u/eps)
    args = (tuple(Ws), tuple(bs), X, T)

    def hv():
        gp = primal(tuple(W + eps * U for W, U in zip(Ws, V)),
                    tuple(b + eps * e for b, e in zip(bs, c)), X, T)
        gm = primal(tuple(W - eps * U for W, U in zip(Ws, V)),
                    tuple(b - eps * e for b, e in zip(bs, c)), X, T)
        s = 0.5 / eps
        return ([(p - m) * s for p, m in zip(gp[0], gm[0])],
                [(p - m) * s for p, m in zip(gp[1], gm[1])])

    return hv, (lambda: primal(*args)), (lambda out: (None, _one(out))), _one


SETUPS = {"rop": setup_rop, "rop_raw": setup_rop_raw, "numba_hand": setup_numba_hand,
          "numpy_hand": setup_numpy_hand, "jax": setup_jax, "torch": setup_torch,
          "autograd": setup_autograd, "fd": setup_fd}
OPTIONAL = {"jax": "jax", "torch": "torch", "autograd": "autograd"}


def available(method):
    mod = OPTIONAL.get(method)
    if mod is None:
        return True, ""
    try:
        __import__(mod)
        return True, ""
    except Exception as exc:  # ImportError, or a broken install
        return False, f"{mod} not importable ({type(exc).__name__}: {exc}); install it with " \
                      f"`pip install {'torch==2.13.0' if mod == 'torch' else mod}`"


# --------------------------------------------------------------------------- timing
def _run(f, n):
    """Mean seconds per call over n back-to-back calls, garbage collector off (as timeit)."""
    was = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        return (time.perf_counter() - t0) / n
    finally:
        if was:
            gc.enable()


def _calibrate(f, min_run):
    t = min(_run(f, 1) for _ in range(3))
    return max(1, min(100000, int(math.ceil(min_run / max(t, 1e-7)))))


def time_interleaved(fns, repeats, min_run, warmup=3, pause=0.0):
    """fns: {key: callable}.  Warm-up calls (excluded), then `repeats` rounds; each round runs
    every key once (n calls back to back, n calibrated so a run lasts >= min_run), in an order
    rotated from round to round, with `pause` seconds of sleep (untimed) before each run so the
    previous method's spinning thread pools (OpenBLAS, OpenMP, XLA) have gone idle.
    Returns {key: [seconds per call, one per round]}."""
    for f in fns.values():
        for _ in range(warmup):
            f()
    number = {k: _calibrate(f, min_run) for k, f in fns.items()}
    keys = list(fns)
    out = {k: [] for k in keys}
    for r in range(repeats):
        rot = r % len(keys)
        for k in keys[rot:] + keys[:rot]:
            if pause:
                time.sleep(pause)
            out[k].append(_run(fns[k], number[k]))
    return out, number


def stats(ts):
    a = np.asarray(ts)
    return dict(median=float(np.median(a)), min=float(a.min()), max=float(a.max()),
                p25=float(np.percentile(a, 25)), p75=float(np.percentile(a, 75)), n=len(ts))


# --------------------------------------------------------------------------- one size
def bench_size(layers, batch, methods, repeats, min_run, log, pause=0.0):
    d = make_data(layers, batch)
    ref_hvp, ref_grad, conv2, _ = setup_rop(d)
    g_ref, h_ref = conv2(ref_hvp())
    res = {"layers": layers, "batch": batch, "label": size_label(layers, batch), "methods": {},
           "loadavg": _loadavg()}
    fns = {}
    for m in methods:
        hv, gr, c2, c1 = SETUPS[m](d)
        out = hv()  # first call: compiles (Numba, JAX) — excluded from timing
        g, h = c2(out)
        e_h = rel_err(h, h_ref)
        e_g = rel_err(c1(gr()), g_ref)
        e_g2 = rel_err(g, g_ref) if g is not None else None
        tol = FD_TOL if m == "fd" else HV_TOL
        log(f"  {m:11s} Hv rel. err vs rop {e_h:.1e}, gradient rel. err {e_g:.1e}")
        if not (e_h <= tol and e_g <= HV_TOL and (e_g2 is None or e_g2 <= HV_TOL)):
            raise SystemExit(f"VERIFICATION FAILED at {size_label(layers, batch)}: {m} disagrees "
                             f"with rop: Hv relative error {e_h:.3e} (tolerance {tol:g}), gradient "
                             f"{e_g:.3e}, gradient returned with Hv {e_g2} (tolerance {HV_TOL:g})")
        res["methods"][m] = {"hv_err": e_h, "grad_err": e_g}
        fns[(m, "hv")] = hv
        if m != "rop_raw" and m != "fd":   # same gradient as rop's: timed once, under "rop"
            fns[(m, "grad")] = gr
        elif "rop" not in methods:
            fns[(m, "grad")] = gr
    times, number = time_interleaved(fns, repeats, min_run, pause=pause)
    for (m, kind), ts in times.items():
        res["methods"][m][kind] = stats(ts)
        res["methods"][m][kind + "_number"] = number[(m, kind)]
    for m in methods:
        r = res["methods"][m]
        if "grad" not in r:
            src = "rop" if "rop" in res["methods"] and "grad" in res["methods"]["rop"] else None
            if src:
                r["grad"] = dict(res["methods"][src]["grad"], shared_with=src)
        if "grad" in r:
            r["ratio"] = r["hv"]["median"] / r["grad"]["median"]
    return res


# --------------------------------------------------------------------------- subprocesses
def _loadavg():
    try:
        with open("/proc/loadavg") as fh:
            return fh.read().split()[:3]
    except OSError:
        return ["?"] * 3


def _proc_status(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def child_startup(args):
    """Fresh process: import rop and the example, build the data, first Hv; print JSON."""
    t_main = time.time()
    method = args.child_method
    t0 = time.perf_counter()
    if method == "rop":
        from examples.deep_mlp import backprop
    elif method == "numba_hand":
        from benchmarks import handwritten as hw
    elif method == "jax":
        import jax
        jax.config.update("jax_enable_x64", True)
    t_import = time.perf_counter() - t0
    layers, batch = SIZES[args.child_size]
    d = make_data(layers, batch)
    t1 = time.perf_counter()
    if method == "rop":
        backprop.hvp(d["Ws"], d["bs"], d["X"], d["T"], v=(d["V"], d["c"]))
    elif method == "numba_hand":
        hw.rbackprop_nb(*(tuple(d[k]) if isinstance(d[k], list) else d[k]
                          for k in ("Ws", "bs", "X", "T", "V", "c")))
    elif method == "jax":
        hv, _, _, _ = setup_jax(d)
        hv()
    t_first = time.perf_counter() - t1
    t_end = time.time()
    t2 = time.perf_counter()
    if method == "rop":
        backprop.hvp(d["Ws"], d["bs"], d["X"], d["T"], v=(d["V"], d["c"]))
    elif method == "numba_hand":
        hw.rbackprop_nb(*(tuple(d[k]) if isinstance(d[k], list) else d[k]
                          for k in ("Ws", "bs", "X", "T", "V", "c")))
    elif method == "jax":
        hv()
    t_second = time.perf_counter() - t2
    print(json.dumps(dict(t_main_wall=t_main, t_first_hv_wall=t_end, import_s=t_import,
                          first_call_s=t_first, second_call_s=t_second)))


def child_floor(args):
    import numba  # noqa: F401  (what any Numba-compiled code must load)
    print(json.dumps(dict(t_end_wall=time.time())))


def _spawn(argv, env):
    t_spawn = time.time()
    p = subprocess.run([sys.executable, os.path.abspath(__file__)] + argv, env=env,
                       capture_output=True, text=True, cwd=ROOT)
    if p.returncode != 0:
        raise RuntimeError(f"child {argv} failed:\n{p.stdout}\n{p.stderr}")
    return t_spawn, json.loads(p.stdout.strip().splitlines()[-1])


def measure_startup(size_index, methods, log):
    """First-call compile and cached start, each in a fresh process with its own cache dirs."""
    out = {"size": size_label(*SIZES[size_index]), "runs": []}
    env0 = dict(os.environ)
    env0.pop("ROP_CACHE_DIR", None)
    env0.pop("NUMBA_CACHE_DIR", None)
    t_spawn, r = _spawn(["--child", "floor"], env0)
    out["floor_s"] = r["t_end_wall"] - t_spawn
    for m in [m for m in ("rop", "numba_hand", "jax") if m in methods]:
        if not available(m)[0]:
            continue
        cache = tempfile.mkdtemp(prefix=f"rop-bench-{m}-")
        env = dict(env0, ROP_CACHE_DIR=cache, NUMBA_CACHE_DIR=os.path.join(cache, "numba"))
        for label in ("cold", "cached", "cached", "cached"):
            t_spawn, r = _spawn(["--child", "startup", "--child-method", m,
                                 "--child-size", str(size_index)], env)
            row = dict(method=m, state=label, spawn_to_first_hv_s=r["t_first_hv_wall"] - t_spawn,
                       import_s=r["import_s"], first_call_s=r["first_call_s"],
                       second_call_s=r["second_call_s"])
            out["runs"].append(row)
            log(f"  startup {m:10s} {label:6s} first call {row['first_call_s']:.3f} s, process start "
                f"to first Hv {row['spawn_to_first_hv_s']:.3f} s")
            if m == "jax":
                break  # no persistent cache by default: every process compiles
    return out


def child_memory(args):
    """Peak resident memory above the pre-call level, for one Hv and one gradient call."""
    layers, batch = SIZES[args.child_size]
    d = make_data(layers, batch)
    hv, gr, _, _ = SETUPS[args.child_method](d)
    for _ in range(2):   # compile / warm up at the measured size; freed memory is unmapped
        hv(), gr()
    gc.collect()
    res = {}
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        method = "VmHWM-reset"
    except OSError:
        method = "ru_maxrss"
    for kind, f in (("grad", gr), ("hv", hv), ("grad", gr), ("hv", hv), ("grad", gr), ("hv", hv)):
        gc.collect()
        if method == "VmHWM-reset":
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")   # resets the peak RSS (VmHWM) to the current RSS
            base = _proc_status("VmRSS")
            out = f()
            peak = _proc_status("VmHWM")
        else:  # high-water mark since process start: only valid while the peak keeps rising
            import resource
            base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            out = f()
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        del out
        res.setdefault(kind, []).append(peak - base)
    inputs = sum(a.nbytes for k in ("Ws", "bs", "V", "c") for a in d[k]) + d["X"].nbytes + \
        d["T"].nbytes
    params = sum(a.nbytes for k in ("Ws", "bs") for a in d[k])
    print(json.dumps(dict(method=method, grad=res["grad"], hv=res["hv"], inputs_bytes=inputs,
                          params_bytes=params)))


def measure_memory(size_index, methods, log):
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    out = {"size": size_label(*SIZES[size_index]), "rows": {}}
    for m in methods:
        if m in ("rop_raw", "fd") or not available(m)[0]:
            continue
        _, r = _spawn(["--child", "memory", "--child-method", m, "--child-size", str(size_index)],
                      env)
        row = dict(grad=float(np.median(r["grad"])), hv=float(np.median(r["hv"])),
                   how=r["method"], params_bytes=r["params_bytes"], inputs_bytes=r["inputs_bytes"])
        row["ratio"] = row["hv"] / row["grad"] if row["grad"] > 0 else float("nan")
        out["rows"][m] = row
        log(f"  memory {m:10s} gradient +{row['grad'] / 2**20:.1f} MiB, Hv +{row['hv'] / 2**20:.1f} "
            f"MiB, ratio {row['ratio']:.2f}")
    return out


# --------------------------------------------------------------------------- report
def machine_info():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    vers = {"python": platform.python_version()}
    for mod in ("numpy", "scipy", "numba", "jax", "jaxlib", "torch", "autograd"):
        try:
            from importlib.metadata import version
            vers[mod] = version(mod)
        except Exception:
            try:
                vers[mod] = __import__(mod).__version__
            except Exception:
                vers[mod] = "not installed"
    try:
        import rop
        vers["rop"] = rop.__version__
    except Exception:
        vers["rop"] = "?"
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "rop"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        vers["rop_git"] = rev + (" (rop/ has uncommitted changes)" if dirty else "")
    except Exception:
        pass
    with open("/proc/loadavg") as fh:
        load = fh.read().split()[:3]
    return dict(cpu=model, cores=cores(), cpu_count=os.cpu_count(), platform=platform.platform(),
                versions=vers, loadavg_start=load, blas=blas_kernels(),
                date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"))


def blas_kernels() -> str:
    """Which OpenBLAS kernels NumPy's OpenBLAS runs (SciPy's, which Numba's ``@`` calls, reads
    the same OPENBLAS_CORETYPE), and why: the machine's environment may pin them."""
    import ctypes
    core = "?"
    try:
        import numpy._core._multiarray_umath as m
        lib = ctypes.CDLL(m.__file__)
        for sym in ("scipy_openblas_get_corename64_", "openblas_get_corename64_",
                    "openblas_get_corename"):
            if hasattr(lib, sym):
                f = getattr(lib, sym)
                f.restype = ctypes.c_char_p
                core = f().decode()
                break
    except Exception:
        pass
    try:
        import rop._blas as rb
        why = rb.reason
    except Exception:
        why = "?"
    env = os.environ.get("OPENBLAS_CORETYPE")
    return f"OpenBLAS kernels {core} (OPENBLAS_CORETYPE={env or 'unset'}; rop: {why})"


def fmt_t(s):
    if s is None or (isinstance(s, float) and math.isnan(s)):
        return "—"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def evaluate_targets(results, startup, memory):
    rows = []
    by = {r["label"]: r["methods"] for r in results}
    labels = [r["label"] for r in results]

    def med(ms, m, kind="hv"):
        return ms[m][kind]["median"] if m in ms and kind in ms[m] else None

    for lab in labels:
        ms = by[lab]
        rop, nb = med(ms, "rop"), med(ms, "numba_hand")
        raw = med(ms, "rop_raw")
        if rop and nb:
            rows.append((f"generated Hv ≤ 1.05× hand-written Numba at {lab}",
                         f"{rop / nb:.2f}× (raw dispatcher {raw / nb:.2f}×)" if raw else
                         f"{rop / nb:.2f}×", rop / nb <= 1.05))
    for i, lab in enumerate(labels):
        ms = by[lab]
        rop, jx = med(ms, "rop"), med(ms, "jax")
        if rop and jx:
            small = results[i]["layers"] in ([8, 16, 16, 4], [64, 64, 64, 10])
            lim = 0.5 if small else 0.9
            rows.append((f"rop Hv ≤ {lim}× JAX at {lab}", f"{rop / jx:.2f}×", rop / jx <= lim))
        beaten = [m for m in ("jax", "torch", "autograd") if med(ms, m)]
        if rop and beaten:
            worst = min(beaten, key=lambda m: med(ms, m))
            rows.append((f"rop faster than every framework at {lab}",
                         f"fastest framework {worst}: rop/{worst} = {rop / med(ms, worst):.2f}×",
                         rop < med(ms, worst)))
    big = [r for r in results if r["layers"] == SIZES[-1][0]]
    if big and "rop" in big[0]["methods"] and "ratio" in big[0]["methods"]["rop"]:
        r = big[0]["methods"]["rop"]["ratio"]
        rows.append(("Hv/gradient ≤ 1.8 at the large size", f"{r:.2f}", r <= 1.8))
    if startup:
        rr = [x for x in startup["runs"] if x["method"] == "rop"]
        cold = [x for x in rr if x["state"] == "cold"]
        cached = [x for x in rr if x["state"] == "cached"]
        if cold:
            rows.append((f"first call ≤ 5 s for {startup['size']}",
                         f"{cold[0]['first_call_s']:.2f} s", cold[0]["first_call_s"] <= 5))
        if cached:
            fc = float(np.median([x["first_call_s"] for x in cached]))
            ov = float(np.median([x["first_call_s"] - x["second_call_s"] for x in cached]))
            sp = float(np.median([x["spawn_to_first_hv_s"] for x in cached]))
            nb = [x for x in startup["runs"] if x["method"] == "numba_hand" and
                  x["state"] == "cached"]
            nbt = (f"; hand-written Numba, cached: first − second call "
                   f"{float(np.median([x['first_call_s'] - x['second_call_s'] for x in nb])):.3f} s"
                   if nb else "")
            rows.append(("cached start in a fresh process ≤ 0.3 s (first `.hvp` call)",
                         f"{fc:.3f} s, of which the Hv itself ≈ second call, so start overhead "
                         f"(first − second call) {ov:.3f} s{nbt}; process start to first Hv "
                         f"{sp:.2f} s, `python -c 'import numba'` alone {startup['floor_s']:.2f} s",
                         fc <= 0.3))
    if memory and "rop" in memory["rows"]:
        r = memory["rows"]["rop"]
        rows.append((f"peak extra memory of Hv ≤ 2× the gradient's at {memory['size']}",
                     f"{r['ratio']:.2f}× ({r['hv'] / 2**20:.1f} MiB vs {r['grad'] / 2**20:.1f} MiB)",
                     r["ratio"] <= 2))
    return rows


def machine_lines(info, argv, within):
    """A report's first lines: the machine, the versions, the load and the command."""
    return [f"- date: {info['date']}",
            f"- CPU: {info['cpu']}, {info['cores']} usable cores (os.cpu_count {info['cpu_count']})",
            f"- platform: {info['platform']}",
            f"- BLAS: {info.get('blas', '?')}",
            "- versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()),
            f"- load average at start {' '.join(info['loadavg_start'])}, at end "
            f"{' '.join(info.get('loadavg_end', ['?']))}. **The machine is shared with other "
            f"work**: absolute times are indicative; ratios within {within} are more robust (the "
            "methods are interleaved, so a burst of load hits all of them).",
            f"- command: `{' '.join(argv)}`"]


def write_markdown(path, info, results, startup, memory, notes, targets, args):
    L = ["# rop Hessian-vector-product benchmark", ""]
    L += machine_lines(info, args, "one size")
    L += [
          "- float64 everywhere; tanh MLP of `examples/deep_mlp.py` (tanh hidden layers, linear "
          "output, squared error); all methods get the same arrays; each Hv result is checked "
          f"against rop's (relative max-norm error ≤ {HV_TOL:g}, finite differences ≤ {FD_TOL:g}) "
          "before timing.",
          "- times: median over interleaved rounds (round-robin over methods, order rotated each "
          "round, warm-up calls excluded); one round of a method = n back-to-back calls with n "
          "chosen so the round lasts ≥ "
          f"{args_min_run(args)} s, after an untimed pause of {args_opt(args, '--pause', 0.1)} s "
          "(lets the previous method's spinning BLAS/OpenMP/XLA threads go idle); the value is "
          "time per call. `[p25–p75]` is the spread over rounds. PyTorch runs with "
          f"torch.set_num_threads({TORCH_THREADS or cores()}).",
          ""]
    for n in notes:
        L.append(f"> {n}")
    if notes:
        L.append("")
    L += ["## Hv and gradient times", ""]
    for r in results:
        L += [f"### {r['label']}", "", f"Load average when this size started: "
              f"{' '.join(r.get('loadavg', ['?']))} ({info['cores']} cores).", "",
              "| method | Hv median [p25–p75] | gradient median (what) | Hv/gradient | Hv vs rop "
              "wrapper | Hv rel. err vs rop | rounds × calls |",
              "|---|---|---|---|---|---|---|"]
        ms = r["methods"]
        ref = ms.get("rop", {}).get("hv", {}).get("median")
        for m, v in sorted(ms.items(), key=lambda kv: kv[1]["hv"]["median"]):
            h, g = v["hv"], v.get("grad")
            gtxt = f"{fmt_t(g['median'])} ({GRAD_LABELS[m]})" if g else "—"
            rel = f"{h['median'] / ref:.2f}×" if ref else "—"
            L.append(f"| {LABELS[m]} | {fmt_t(h['median'])} [{fmt_t(h['p25'])}–{fmt_t(h['p75'])}] "
                     f"| {gtxt} | {v.get('ratio', float('nan')):.2f} | {rel} | {v['hv_err']:.1e} "
                     f"| {h['n']} × {v['hv_number']} |")
        L.append("")
    if startup:
        L += [f"## Compile and start-up ({startup['size']})", "",
              "Each row is a fresh `python` process (`--child startup`). `cold`: empty "
              "`ROP_CACHE_DIR` and `NUMBA_CACHE_DIR` (a new temporary directory per method); "
              "`cached`: later processes with the same cache directories. *first call* is the "
              "first `.hvp(...)` (resp. first call of the hand-written Numba function / the JAX "
              "jitted function) in that process; *process start to first Hv* is measured from just "
              "before the parent spawns the process to the moment the child has the first Hv "
              "result (includes interpreter start, imports, building the arrays). For reference, "
              f"spawning python and `import numba` alone takes {startup['floor_s']:.2f} s.", "",
              "| method | caches | first call | second call | imports | process start to first Hv |",
              "|---|---|---|---|---|---|"]
        for x in startup["runs"]:
            L.append(f"| {x['method']} | {x['state']} | {fmt_t(x['first_call_s'])} | "
                     f"{fmt_t(x['second_call_s'])} | {fmt_t(x['import_s'])} | "
                     f"{fmt_t(x['spawn_to_first_hv_s'])} |")
        L.append("")
    if memory:
        how = next(iter(memory["rows"].values()))["how"] if memory["rows"] else "?"
        pb = next(iter(memory["rows"].values()))["params_bytes"] if memory["rows"] else 0
        L += [f"## Peak extra memory ({memory['size']})", "",
              "Method: one fresh process per method, run with `MALLOC_MMAP_THRESHOLD_=65536` so "
              "every array above 64 KiB is its own mmap, returned to the OS when freed (resident "
              "memory then follows live arrays instead of glibc's heap). After two warm-up calls "
              "(compilation) the process "
              + ("resets its peak-RSS counter (`echo 5 > /proc/self/clear_refs`), reads VmRSS as "
                 "the baseline, makes one call and reads VmHWM (the peak resident set since the "
                 "reset)" if how == "VmHWM-reset" else
                 "reads ru_maxrss before and after one call (the reset of VmHWM was unavailable, so "
                 "this is only valid when the call raises the process's all-time peak)")
              + "; extra = peak − baseline, median of 3 calls each. This sees every allocation "
              "(Numba's NRT, BLAS, XLA, torch), unlike tracemalloc. The extra includes the returned "
              f"arrays (the gradient: {pb / 2**20:.1f} MiB, the size of the parameters; the Hv call "
              "returns gradient and Hv).", "",
              "| method | gradient extra | Hv extra | Hv / gradient |", "|---|---|---|---|"]
        for m, x in memory["rows"].items():
            L.append(f"| {LABELS[m]} | {x['grad'] / 2**20:.1f} MiB | {x['hv'] / 2**20:.1f} MiB | "
                     f"{x['ratio']:.2f} |")
        L.append("")
    if targets:
        L += ["## Targets of issue 6 (read from this run, never asserted)", "",
              "| target | measured | met |", "|---|---|---|"]
        for t, val, ok in targets:
            L.append(f"| {t} | {val} | {'yes' if ok else '**no**'} |")
        L.append("")
    L += ["![Hv times](hvp_times.png)", ""]
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(L))


def args_opt(args, flag, default):
    try:
        return float(args[args.index(flag) + 1])
    except (ValueError, IndexError):
        return default


def args_min_run(args):
    return args_opt(args, "--min-run", 0.05)


def plot(path, results):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not installed: no plot (pip install matplotlib)"
    labels = [r["label"] for r in results]
    methods = [m for m in METHODS if any(m in r["methods"] for r in results)]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.2))
    x = np.arange(len(results))
    width = 0.8 / max(1, len(methods))
    for j, m in enumerate(methods):
        ys = [r["methods"][m]["hv"]["median"] if m in r["methods"] else np.nan for r in results]
        lo = [r["methods"][m]["hv"]["p25"] if m in r["methods"] else np.nan for r in results]
        hi = [r["methods"][m]["hv"]["p75"] if m in r["methods"] else np.nan for r in results]
        ys, lo, hi = map(np.asarray, (ys, lo, hi))
        ax1.bar(x + (j - (len(methods) - 1) / 2) * width, ys, width, label=LABELS[m],
                yerr=[ys - lo, hi - ys], capsize=2)
        rs = [r["methods"][m].get("ratio", np.nan) if m in r["methods"] else np.nan
              for r in results]
        ax2.plot(x, rs, "o-", label=LABELS[m])
    ax1.set_yscale("log")
    ax1.set_xticks(x, labels, rotation=12, fontsize=8)
    ax1.set_ylabel("Hv time per call, s (median, log scale)")
    ax1.set_title("Hessian-vector product, float64")
    ax1.grid(axis="y", which="both", alpha=0.3)
    ax1.legend(fontsize=7)
    ax2.set_xticks(x, labels, rotation=12, fontsize=8)
    ax2.set_ylabel("Hv time / own gradient time")
    ax2.set_title("Hv / gradient")
    ax2.axhline(1.8, color="grey", ls="--", lw=0.8)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None


# --------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="all",
                    help="small (the smallest size), all, or comma-separated indices 0-3")
    ap.add_argument("--repeats", type=int, default=None,
                    help="interleaved rounds per size (default 11; 7 at the largest size)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--methods", default=",".join(METHODS),
                    help="comma-separated subset of " + ",".join(METHODS))
    ap.add_argument("--min-run", type=float, default=0.05,
                    help="minimum seconds per timed run (calls are batched up to it)")
    ap.add_argument("--pause", type=float, default=0.1,
                    help="untimed sleep before each timed run, so thread pools spinning after the "
                         "previous method go idle (default 0.1 s)")
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="torch.set_num_threads (default: the number of usable cores)")
    ap.add_argument("--no-subprocess", action="store_true",
                    help="skip the compile/start-up and memory measurements (fresh processes)")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite results.md and the plot from OUT/results.json, measure nothing")
    ap.add_argument("--child", choices=("startup", "memory", "floor"), help=argparse.SUPPRESS)
    ap.add_argument("--child-method", help=argparse.SUPPRESS)
    ap.add_argument("--child-size", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child == "startup":
        return child_startup(args)
    if args.child == "memory":
        return child_memory(args)
    if args.child == "floor":
        return child_floor(args)

    raw_argv = ["python", "benchmarks/bench_hvp.py"] + list(sys.argv[1:] if argv is None else argv)
    if args.report_only:
        with open(os.path.join(args.out, "results.json")) as fh:
            j = json.load(fh)
        targets = evaluate_targets(j["results"], j["startup"], j["memory"])
        plot(os.path.join(args.out, "hvp_times.png"), j["results"])
        write_markdown(os.path.join(args.out, "results.md"), j["info"], j["results"], j["startup"],
                       j["memory"], j["notes"], targets, j["info"].get("command", raw_argv))
        j["targets"] = [list(t) for t in targets]
        with open(os.path.join(args.out, "results.json"), "w") as fh:
            json.dump(j, fh, indent=1)
        return 0
    if args.sizes == "small":
        idx = [0]
    elif args.sizes == "all":
        idx = list(range(len(SIZES)))
    else:
        idx = [int(s) for s in args.sizes.split(",")]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    global TORCH_THREADS
    TORCH_THREADS = args.torch_threads
    bad = [m for m in methods if m not in SETUPS]
    if bad:
        ap.error(f"unknown methods {bad}; choose from {METHODS}")
    notes = []
    for m in list(methods):
        ok, why = available(m)
        if not ok:
            methods.remove(m)
            notes.append(f"`{m}` skipped: {why}.")
    os.makedirs(args.out, exist_ok=True)

    def log(msg):
        print(msg, flush=True)

    info = machine_info()
    info["command"] = raw_argv
    log(f"{info['cpu']}, {info['cores']} cores, load {' '.join(info['loadavg_start'])}; "
        f"methods {methods}")
    for n in notes:
        log("note: " + n)
    results = []
    for i in idx:
        layers, batch = SIZES[i]
        reps = args.repeats or (7 if i == len(SIZES) - 1 else 11)
        log(f"{size_label(layers, batch)}: verifying, then {reps} interleaved rounds")
        r = bench_size(layers, batch, methods, reps, args.min_run, log, args.pause)
        for m, v in sorted(r["methods"].items(), key=lambda kv: kv[1]["hv"]["median"]):
            g = v.get("grad", {}).get("median")
            log(f"  {m:11s} Hv {fmt_t(v['hv']['median']):>10s}   gradient {fmt_t(g):>10s}   "
                f"Hv/grad {v.get('ratio', float('nan')):.2f}")
        results.append(r)
    startup = memory = None
    if not args.no_subprocess:
        big = max(idx)
        log(f"start-up and compile time, {size_label(*SIZES[big])} (fresh processes)")
        startup = measure_startup(big, methods, log)
        log(f"peak extra memory, {size_label(*SIZES[big])} (fresh processes)")
        memory = measure_memory(big, methods, log)
    with open("/proc/loadavg") as fh:
        info["loadavg_end"] = fh.read().split()[:3]
    targets = evaluate_targets(results, startup, memory)
    err = plot(os.path.join(args.out, "hvp_times.png"), results)
    if err:
        notes.append(err)
    try:  # the generated code these numbers belong to (rop/ may change between runs)
        from examples.deep_mlp import backprop
        with open(os.path.join(args.out, "generated_backprop_hvp.txt"), "w") as fh:
            fh.write(backprop.hvp.source)
    except Exception:
        pass
    write_markdown(os.path.join(args.out, "results.md"), info, results, startup, memory, notes,
                   targets, raw_argv)
    with open(os.path.join(args.out, "results.json"), "w") as fh:
        json.dump(dict(info=info, results=results, startup=startup, memory=memory, notes=notes,
                       targets=[list(t) for t in targets]), fh, indent=1)
    log(f"wrote {os.path.join(args.out, 'results.md')}")
    for t, val, ok in targets:
        log(f"  [{'met' if ok else 'MISSED'}] {t}: {val}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
