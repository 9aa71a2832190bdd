#!/usr/bin/env python
"""Where the time of a Hessian-free step goes: inside rop's compiled code, or around it.

    python benchmarks/bench_hf_share.py [--sizes digits,curves] [--steps N] [--warmup N]
                                        [--out FILE] [--no-detail] [--per-product]

Runs ``rop.hessian_free`` on the deep autoencoder of ``examples/hessian_free.py`` exactly as
the example does (its data, network, sparse initialisation, curvature mini-batches and the
functions of ``hf_functions``: ``backprop.gvp.linearize`` once per step and its tangent per CG
product for G v (``--per-product``: a whole ``backprop.gvp`` per product), ``backprop.gvp.primal`` for the
gradient, the example's NumPy ``cross_entropy`` for the loss and ``grad_sq_mean`` for the
preconditioner's diagonal), after a warm-up that compiles everything, and splits the wall time
of each outer step into

* **compiled rop code**: time inside the Numba dispatchers rop generated (the ``Compiled.hvp``,
  ``.linearize``, ``.tangent`` and ``.primal`` behind ``.gvp``, its linearisation and the
  compiled gradient), argument
  unboxing by Numba's dispatcher included;
* **user NumPy**: the example's own uncompiled loss and preconditioner (``forward``,
  ``cross_entropy``, ``grad_sq_mean``): the user's code, not rop's;
* **overhead**: the rest, Python around the compiled calls: rop's call path (``HVP.__call__``
  less the compiled call), ``hessian_free``'s tree arithmetic, checks, CG bookkeeping, line
  search and the example's glue.

Each timed piece is wrapped by a timer that charges its time, less that of timed pieces
inside it, to its category (``Clock``).  Two runs per size, from the same start: a *light*
run that wraps only the compiled dispatchers, the user's functions and ``HVP.__call__`` (two
timed calls per CG iteration, ~1 µs each) gives the shares; a *detail* run that also wraps
``hessian_free``'s pieces (``conjugate_gradient``, whose own time is its vector updates and
loop, ``Flat``'s conversions, the tree helpers, the checks; a few more calls per CG iteration)
names the overhead.  Its step times are shown too, so the cost of the instrumentation is
visible.

A harness, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")      # as the example: one BLAS thread

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))          # (after PYTHONPATH: another rop can be measured)

import rop.hessian_free as hf_mod  # noqa: E402
from rop.api import HVP  # noqa: E402
from rop.linearized import Linearized  # noqa: E402
from examples import hessian_free as ex  # noqa: E402

COMPILED, USER, CALL = "compiled rop code", "user NumPy (loss, precond. diagonal)", "rop call path"
# hessian_free's pieces, by what they are for (the detail run wraps them where they are looked up)
ARITH, CHECKS = "HF tree arithmetic (θ + αp, weight decay)", "HF checks of returned trees"
CG, FLAT = "HF CG vector updates (in place) and loop", "HF CG flattening (trees <-> CG's vectors)"
DETAIL = [(hf_mod, "tree_axpy", ARITH), (hf_mod, "tree_dot", ARITH), (hf_mod, "tree_map", ARITH),
          (hf_mod, "tree_scale", ARITH), (hf_mod, "tree_leaves", ARITH),
          (hf_mod, "check_like", CHECKS), (hf_mod, "tree_all_finite", CHECKS),
          (hf_mod, "conjugate_gradient", CG), (getattr(hf_mod, "Flat", None), "vector", FLAT),
          (getattr(hf_mod, "Flat", None), "tree", FLAT),
          (hf_mod, "_preconditioner", "HF preconditioner"),
          (hf_mod, "cg_should_stop", "HF CG stopping rule")]
REST = "other Python (HF step, backtracking and line search loops; example glue)"
SIZES = {"digits": ("digits", False), "curves": ("curves", False), "tiny": ("digits", True)}


class Clock:
    """Exclusive time per category: a wrapped call charges its time to its category, less the
    time of wrapped calls made inside it."""

    def __init__(self):
        self.time = defaultdict(float)
        self.calls = defaultdict(int)
        self._inner = []          # per open wrapped call: time spent in wrapped calls inside it

    def wrap(self, f, category):
        inner, time_, calls, clock = self._inner, self.time, self.calls, time.perf_counter

        def timed(*args, **kwargs):
            inner.append(0.0)
            t0 = clock()
            try:
                return f(*args, **kwargs)
            finally:
                dt = clock() - t0
                time_[category] += dt - inner.pop()
                calls[category] += 1
                if inner:
                    inner[-1] += dt
        return timed

    def snapshot(self):
        return dict(self.time)


class TimedDispatcher:
    """A compiled dispatcher, timed; attributes (``disable_compile``, ``signatures``) pass
    through."""

    def __init__(self, dispatcher, timed):
        self._d, self._timed = dispatcher, timed

    def __call__(self, *args):
        return self._timed(*args)

    def __getattr__(self, name):
        return getattr(self._d, name)


class Instrumented:
    """Wrap the timed pieces for the length of a ``with`` block; put everything back after."""

    def __init__(self, clock, detail):
        self.clock, self.detail, self.undo = clock, detail, []

    def _patch(self, obj, name, value):
        self.undo.append((obj, name, getattr(obj, name)))
        setattr(obj, name, value)

    def __enter__(self):
        c = self.clock
        for h in (ex.backprop.hvp, ex.backprop.gvp):
            for compiled in h._compiled.values():
                if isinstance(compiled, Exception):        # (a cached refusal)
                    continue
                for attr in ("hvp", "primal", "linearize", "tangent"):
                    d = getattr(compiled, attr, None)
                    if d is not None:
                        self._patch(compiled, attr, TimedDispatcher(d, c.wrap(d, COMPILED)))
        self._patch(HVP, "__call__", c.wrap(HVP.__call__, CALL))
        self._patch(Linearized, "__init__", c.wrap(Linearized.__init__, CALL))
        self._patch(Linearized, "__call__", c.wrap(Linearized.__call__, CALL))
        for name in ("forward", "cross_entropy", "grad_sq_mean"):
            self._patch(ex, name, c.wrap(getattr(ex, name), USER))
        if self.detail:
            for obj, name, category in DETAIL:
                if hasattr(obj, name):       # (older versions of hessian_free lack some)
                    self._patch(obj, name, c.wrap(getattr(obj, name), category))
        return self

    def __exit__(self, *exc):
        for obj, name, old in reversed(self.undo):
            setattr(obj, name, old)


def run(size, steps, warmup, detail, linearise=True):
    """HF steps of the example on ``size``; per measured step: (wall time, {category: time},
    CG iterations)."""
    data, quick = SIZES[size]
    setup, X, _, layers, params = ex.problem(data, quick, seed=0)
    V = tuple([np.zeros_like(a) for a in part] for part in params)
    warm = np.ascontiguousarray(X[:, :2])
    ex.backprop.gvp(*params, warm, v=V)                                    # compile, untimed
    ex.backprop.gvp.linearize(*params, warm)(V)
    ex.compiled_gradient()(tuple(params[0]), tuple(params[1]), warm)
    clock = Clock()
    marks = []

    def callback(p, record):
        marks.append((time.perf_counter(), clock.snapshot(), record.cg_iters))

    with Instrumented(clock, detail):
        fns = ex.hf_functions(X, setup["curvature_batch"],      # after wrapping: timed grad
                              linearise=linearise)
        marks.append((time.perf_counter(), clock.snapshot(), 0))
        hf_mod.hessian_free(params=ex.copy_params(params), batch=X, weight_decay=ex.WEIGHT_DECAY,
                            steps=warmup + steps, progress=False, callback=callback, **fns)
    out = []
    for (t0, c0, _), (t1, c1, iters) in list(zip(marks, marks[1:]))[warmup:]:
        out.append((t1 - t0, {k: v - c0.get(k, 0.0) for k, v in c1.items()}, iters))
    n_params = sum(W.size + b.size for W, b in zip(*params))
    label = (f"{data}{' (quick)' if quick else ''} {'-'.join(map(str, layers))}, "
             f"{n_params} params, N {X.shape[1]}, curvature batch "
             f"{fns['curvature_batches'][0].shape[1]}")
    return label, out


def summarise(steps):
    total = sum(s[0] for s in steps)
    cats = defaultdict(float)
    for _, c, _ in steps:
        for k, v in c.items():
            cats[k] += v
    cats[REST] = total - sum(cats.values())
    tail = steps[-10:]
    late = sum(s[1].get(COMPILED, 0.0) for s in tail) / sum(s[0] for s in tail)
    return dict(median=statistics.median(s[0] for s in steps), total=total, late=late,
                iters=statistics.median(s[2] for s in steps),
                share={k: v / total for k, v in cats.items()},
                step_share=[s[1].get(COMPILED, 0.0) / s[0] for s in steps],
                step_share_user=[(s[1].get(COMPILED, 0.0) + s[1].get(USER, 0.0)) / s[0]
                                 for s in steps])


def pct(x):
    return f"{100 * x:.1f}%"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="digits,curves",
                    help=f"comma-separated, of {sorted(SIZES)} (tiny: the example's --quick size)")
    ap.add_argument("--steps", type=int, default=30, help="measured HF steps per size")
    ap.add_argument("--warmup", type=int, default=2, help="HF steps run and not measured first")
    ap.add_argument("--out", metavar="FILE", help="write the report (Markdown) here")
    ap.add_argument("--no-detail", action="store_true", help="skip the run that names the overhead")
    ap.add_argument("--per-product", action="store_true",
                    help="a whole .gvp per CG product (curvature=), not the example's default "
                         "linearisation once per step (curvature_at=)")
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits
    rows = []
    with threadpool_limits(limits=1):
        for size in args.sizes.split(","):
            label, light = run(size, args.steps, args.warmup, detail=False,
                               linearise=not args.per_product)
            s = summarise(light)
            d = None
            if not args.no_detail:
                _, heavy = run(size, args.steps, args.warmup, detail=True,
                               linearise=not args.per_product)
                d = summarise(heavy)
            rows.append((label, s, d))
            comp = s["share"][COMPILED]
            print(f"{label}: step median {s['median']:.3f} s, compiled {pct(comp)}, "
                  f"+ user NumPy {pct(comp + s['share'].get(USER, 0.0))}", flush=True)
    text = report(rows, args)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)


def report(rows, args):
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [f"HF steps of examples/hessian_free.py: {args.steps} measured after {args.warmup} "
             f"warm-up steps (compilation before those), from the example's initial parameters "
             f"(seed 0), one BLAS thread; load average {load:.2f} at the end.  Curvature: "
             + ("a whole `backprop.gvp` per CG product (`curvature=`, --per-product)."
                if args.per_product else "`backprop.gvp.linearize` once per step, the tangent "
                "per CG product (`curvature_at=`, the example's default)."), "",
             "| size | step time (median) | CG iters/step (median) | compiled rop code | "
             "compiled, last 10 steps | + user NumPy | overhead (rop call path, HF Python) |",
             "|---|---|---|---|---|---|---|"]
    for label, s, _ in rows:
        sh = s["share"]
        comp, user = sh.get(COMPILED, 0.0), sh.get(USER, 0.0)
        a, b = s["step_share"], s["step_share_user"]
        lines.append(f"| {label} | {s['median']:.3f} s | {s['iters']:g} | **{pct(comp)}** "
                     f"({pct(min(a))}–{pct(max(a))}) | {pct(s['late'])} | **{pct(comp + user)}** "
                     f"({pct(min(b))}–{pct(max(b))}) | {pct(1 - comp - user)} |")
    lines += ["", "Shares are of the total time of the measured steps (light run); in brackets "
              "the range over single steps.  Compiled rop code: the generated Numba functions "
              "(Gv, the gradient); user NumPy: the example's own loss and preconditioner "
              "diagonal.  Everything, named (detail run: hessian_free's helpers timed too; its "
              "step time shows what the extra timers cost):", ""]
    for label, s, d in rows:
        src = d or s
        lines += [f"- {label}" + (f" (detail run step median {d['median']:.3f} s)" if d else "")
                  + ":"]
        for k, v in sorted(src["share"].items(), key=lambda kv: -kv[1]):
            lines.append(f"    - {k}: {pct(v)}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
