"""Martens' Hessian-free optimiser (Martens 2010, "Deep learning via Hessian-free optimization",
ICML; the seed slides "Deep Learning via HF"), with every heuristic of the paper, independent of
how the curvature products are computed.

Each outer step builds the local quadratic model of the objective,

    q(p) = gᵀp + ½ pᵀ(B + λI)p,      B = the Hessian H or the Gauss-Newton matrix G,

minimises it approximately by preconditioned conjugate gradients (CG), and moves along the
result.  The optimiser only ever asks for products ``B v``, through a function: rop's ``.hvp``,
the Gauss-Newton ``.gvp``, finite differences, or anything else shaped like the parameters.

What each heuristic is for (sections of Martens 2010):

* **Damping** (§4.1): the quadratic is trusted only near θ; λ adapts by the Levenberg–Marquardt
  rule on ρ = (f(θ+p) − f(θ)) / q(p), the ratio of actual to predicted reduction.
* **Mini-batches** (§4.3): curvature products on a small batch cycled per step; gradient, line
  search and CG-backtracking on larger data, which they need far less often.
* **CG stopping** (§4.4): stop when the quadratic's relative progress over a window of the last
  k iterations drops below k·ε — CG minimises q, not the residual, so measure q.
* **Warm start** (§4.5): start CG from the previous solution, decayed by 0.95.
* **CG-backtracking** (§4.6): the curvature comes from a mini-batch, so late CG iterates overfit
  it; keep a few and pick the best on the larger data.
* **Preconditioning** (§4.7): diagonal M = (Σᵢ ∇fᵢ ⊙ ∇fᵢ + λ)^¾.
* **Line search** (Martens & Sutskever 2012, and Martens' code): Armijo backtracking on the
  chosen step; a step that does not lower the loss is not taken.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, NamedTuple, Sequence, Tuple, Union

import numpy as np
from scipy.linalg.blas import get_blas_funcs

from ._tree import (Flat, Tree, check_like, tree_all_finite, tree_axpy, tree_dot, tree_leaves,
                    tree_map, tree_scale)

__all__ = ["hessian_free", "HFResult", "HFHistory", "HFStep", "conjugate_gradient", "CGResult",
           "cg_should_stop", "backtrack_iterations", "update_damping"]

Objective = Callable[[Tree, Any], float]            # (params, batch) -> loss
Gradient = Callable[[Tree, Any], Tuple[float, Tree]]  # (params, batch) -> (loss, grad)
Curvature = Callable[[Tree, Any, Tree], Tree]       # (params, batch, v) -> Bv
CurvatureAt = Callable[..., Callable[[Tree], Tree]]  # (params, batch) -> (v -> Bv)
Batches = Union[list, Callable[[int], Any], None]   # cycled list, or step -> batch


# --------------------------------------------------------------------------------------------
# The heuristics as small functions, each testable alone
# --------------------------------------------------------------------------------------------

def update_damping(damping: float, rho: float, boost: float = 1.5, drop: float = 2 / 3) -> float:
    """Levenberg–Marquardt rule (Martens 2010 §4.1; slides "damping"): ρ < ¼ means the quadratic
    model over-promised, so trust it less (λ ×``boost``); ρ > ¾ means it is good, so trust it
    further (λ ×``drop``); otherwise λ stays.  A NaN ρ counts as a failure."""
    if not rho >= 0.25:  # also NaN and -inf
        return damping * boost
    if rho > 0.75:
        return damping * drop
    return damping


def cg_should_stop(i: int, phis: Sequence[float], tolerance: float = 5e-4, min_window: int = 10,
                   window_fraction: float = 0.1) -> bool:
    """Martens' CG termination (2010 §4.4; slides "CG stopping conditions").

    ``phis[j]`` is the quadratic model φ(x_j) after j iterations (``phis[0]`` at the start).
    With the window k = max(``min_window``, ⌈``window_fraction``·i⌉), stop when i > k,
    φ(x_i) < 0 and (φ(x_i) − φ(x_{i−k})) / φ(x_i) < k·``tolerance``: the average relative
    reduction per iteration over the last k iterations has fallen below ``tolerance``.  The
    window grows with i because CG's progress on q comes in bursts late in a run.
    """
    k = max(min_window, math.ceil(window_fraction * i))
    if i <= k or not phis[i] < 0:
        return False
    return (phis[i] - phis[i - k]) / phis[i] < k * tolerance


def backtrack_iterations(max_iters: int, start: float = 5.0, ratio: float = 1.3) -> set[int]:
    """The CG iterations whose iterates CG-backtracking keeps (Martens 2010 §4.6): ⌈start·ratioʲ⌉
    for j = 0, 1, …, a geometric grid, so storing them costs O(log iterations) vectors."""
    keep, j = set(), 0
    while (i := math.ceil(start * ratio ** j)) <= max_iters:
        keep.add(i)
        j += 1
    return keep


@dataclass
class CGResult:
    """What :func:`conjugate_gradient` returns.

    ``x``: the last iterate; ``iters``: iterations done; ``stop``: why it stopped (``"martens"``,
    ``"max_iters"``, ``"negative curvature"``, ``"converged"``); ``saved``: (iteration,
    iterate, φ(iterate)) for the kept iterations and the last, in order; ``phis``: φ after each
    iteration; ``products``: curvature products used.
    """
    x: Tree
    iters: int
    stop: str
    saved: list
    phis: list
    products: int


def conjugate_gradient(apply_B: Callable[[Tree], Tree], g: Tree, x0: Tree | None = None,
                       precond: Tree | None = None, *, max_iters: int = 250,
                       tolerance: float = 5e-4, min_window: int = 10, window_fraction: float = 0.1,
                       save_iters: set[int] = frozenset(), shift: float = 0.0) -> CGResult:
    """Minimise φ(x) = ½xᵀ(B + ``shift``·I)x + gᵀx by preconditioned CG from ``x0``, as
    Martens' HF does (``shift`` is HF's λ + weight decay, added here so that ``apply_B`` is the
    bare product).

    ``precond`` is the diagonal M (shaped like ``g``): CG runs on M⁻¹-scaled residuals.  φ is
    tracked for free from the residual r = Bx + g, as φ(x) = ½xᵀ(r + g), so the stopping rule
    (:func:`cg_should_stop`) and ρ cost no extra products.  Stops on Martens' rule, at
    ``max_iters``, at a direction d with dᵀBd ≤ 0 (negative curvature: the damped model is not
    convex along d, so its minimiser is not there; keep the iterate reached, Martens 2010 §4.1's
    reason to prefer Gauss-Newton), or when the residual reaches rounding level.  A non-finite
    product raises ``FloatingPointError``.

    CG's vectors live in one contiguous buffer each (``_tree.Flat``), updated in place: one
    NumPy call per update rather than one per leaf.  ``apply_B`` gets and returns trees shaped
    like ``g`` (it gets views into CG's buffer, valid for that call); the iterates returned are
    trees too, never written after they are returned.
    """
    flat = Flat(g)
    gv = flat.vector(g)
    pinv = None if precond is None else 1.0 / flat.vector(precond)
    axpy = get_blas_funcs("axpy", (gv,))      # y ← a·x + y in place, one pass, no temporary

    def product(vec):
        """(B + shift·I) vec, as a new vector."""
        out = flat.vector(apply_B(flat.tree(vec)))
        return axpy(vec, out, a=shift) if shift else out

    products = 0
    x = None if x0 is None else flat.vector(x0)
    if x is None or not x.any():
        x = np.zeros_like(gv)
        r = gv.copy()
    else:
        r = product(x)
        r += gv
        products += 1
    z = r if pinv is None else pinv * r
    d = -z
    rz = float(r @ z)
    if not math.isfinite(rz):
        raise FloatingPointError(f"CG start: the residual is not finite (rᵀM⁻¹r = {rz}): the "
                                 "gradient or the curvature product of the warm start is")
    rz_floor = (64 * np.finfo(float).eps) ** 2 * max(
        float(gv @ (gv if pinv is None else pinv * gv)), rz)
    phis = [0.5 * (float(x @ r) + float(x @ gv))]
    saved, stop, i = [], "max_iters", 0
    while i < max_iters:
        if rz <= rz_floor:
            stop = "converged"
            break
        Bd = product(d)
        products += 1
        dBd = float(d @ Bd)
        if not np.isfinite(dBd):
            raise FloatingPointError(f"CG iteration {i + 1}: the curvature product is not finite "
                                     f"(dᵀBd = {dBd})")
        if dBd <= 0:
            stop = "negative curvature"
            break
        alpha = rz / dBd
        x = axpy(d, x, a=alpha)
        r = axpy(Bd, r, a=alpha)
        i += 1
        phis.append(0.5 * (float(x @ r) + float(x @ gv)))
        if i in save_iters:
            saved.append((i, flat.tree(x.copy()), phis[i]))
        if cg_should_stop(i, phis, tolerance, min_window, window_fraction):
            stop = "martens"
            break
        z = r if pinv is None else np.multiply(pinv, r, out=z if z is not r else None)
        rz_new = float(r @ z)
        d *= rz_new / rz
        d = axpy(z, d, a=-1.0)
        rz = rz_new
    if not saved or saved[-1][0] != i:
        saved.append((i, flat.tree(x), phis[i]))
    return CGResult(saved[-1][1], i, stop, saved, phis, products)


# --------------------------------------------------------------------------------------------
# History
# --------------------------------------------------------------------------------------------

@dataclass
class HFStep:
    """One outer step of :func:`hessian_free`.

    ``loss``: objective (with weight decay) on the gradient data after the step;
    ``damping``: the λ this step's CG used; ``new_damping``: λ after the Levenberg–Marquardt
    rule; ``rho``: actual / predicted reduction on the curvature batch (−inf when the loss rose);
    ``cg_iters`` and ``cg_stop``: CG iterations and why CG stopped; ``backtrack_iter``: the CG
    iteration whose iterate CG-backtracking chose; ``rate``: the line search's step length (0
    when the step was rejected); ``accepted``: whether θ moved; ``time``: wall time since the
    start, in seconds; ``curvature_products``: products used in this step.
    """
    step: int
    loss: float
    damping: float
    new_damping: float
    rho: float
    cg_iters: int
    cg_stop: str
    backtrack_iter: int
    rate: float
    accepted: bool
    time: float
    curvature_products: int


class HFHistory:
    """The per-step records of a run.  ``history[n]`` is step n's :class:`HFStep`;
    ``history["loss"]`` is one field over all steps as an array; ``initial_loss`` is the
    objective before the first step."""

    def __init__(self, initial_loss: float):
        self.initial_loss = initial_loss
        self.steps: list[HFStep] = []

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self):
        return iter(self.steps)

    def __getitem__(self, key: int | str):
        if isinstance(key, str):
            if key not in {f.name for f in fields(HFStep)}:
                raise KeyError(f"no field {key!r}; the fields are {[f.name for f in fields(HFStep)]}")
            return np.array([getattr(s, key) for s in self.steps])
        return self.steps[key]

    def as_dicts(self) -> list[dict]:
        return [asdict(s) for s in self.steps]

    def plot(self, axes=None):
        """Loss against wall time and against outer steps, side by side (log scale when the
        loss stays positive and spans more than a decade).  Returns the figure.  Needs matplotlib
        (``pip install ".[examples]"``); imported only here."""
        try:
            import matplotlib.pyplot as plt
        except ImportError as e:
            raise ImportError('HFHistory.plot needs matplotlib: pip install ".[examples]" '
                              '(or pip install matplotlib)') from e
        if axes is None:
            fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
        else:
            fig = axes[0].figure
        loss = np.concatenate([[self.initial_loss], self["loss"]])
        t = np.concatenate([[0.0], self["time"]])
        for ax, x, label in ((axes[0], t, "wall time (s)"), (axes[1], np.arange(len(loss)),
                                                              "outer step")):
            ax.plot(x, loss, marker=".")
            ax.set_xlabel(label)
            ax.set_ylabel("loss")
            if np.all(loss > 0) and loss.max() > 10 * loss.min():
                ax.set_yscale("log")
        fig.suptitle("Hessian-free")
        fig.tight_layout()
        return fig

    def __repr__(self) -> str:
        last = f", last loss {self.steps[-1].loss:.6g}" if self.steps else ""
        return f"HFHistory({len(self.steps)} steps, initial loss {self.initial_loss:.6g}{last})"


class HFResult(NamedTuple):
    """``params, history = hessian_free(...)``: the parameters, in the caller's structure, and
    the :class:`HFHistory`."""
    params: Tree
    history: HFHistory


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------

def _as_params(params: Tree) -> Tree:
    def leaf(x):
        a = np.asarray(x)
        if a.dtype.kind not in "fiub":
            raise TypeError(f"params leaves must be real numeric arrays, got dtype {a.dtype} "
                            f"({type(x).__name__})")
        return np.array(a, dtype=np.result_type(a, np.float64) if a.dtype.kind != "f" else a.dtype)
    if not tree_leaves(params):
        raise ValueError("params holds no arrays")
    return tree_map(leaf, params)


def _batch_source(name: str, batches, default):
    """``batches`` as a function step -> batch: a list is cycled, a function is called."""
    if batches is None:
        return default
    if callable(batches):
        return batches
    if isinstance(batches, list):
        if not batches:
            raise ValueError(f"{name}= is an empty list")
        return lambda n: batches[n % len(batches)]
    raise TypeError(f"{name}= takes a list of batches (cycled, one per outer step) or a function "
                    f"step -> batch, not a {type(batches).__name__}; for one batch used at every "
                    f"step (e.g. a tuple (X, y)) pass batch=")


def _check_options(damping, weight_decay, steps, damping_boost, damping_drop, precond_exponent,
                   max_cg_iters, cg_tolerance, warm_start_decay, armijo_c, line_search_shrink,
                   line_search_max_tries, backtrack_start, backtrack_ratio):
    def need(ok, msg):
        if not ok:
            raise ValueError(msg)
    need(np.isfinite(damping) and damping >= 0,
         f"damping (the Tikhonov λ) must be finite and >= 0, got {damping}")
    need(np.isfinite(weight_decay) and weight_decay >= 0,
         f"weight_decay must be finite and >= 0, got {weight_decay}")
    need(isinstance(steps, (int, np.integer)) and steps >= 0, f"steps must be an int >= 0, got {steps!r}")
    need(damping_boost >= 1 and 0 < damping_drop <= 1,
         f"need damping_boost >= 1 and 0 < damping_drop <= 1, got {damping_boost}, {damping_drop}")
    need(precond_exponent >= 0, f"precond_exponent must be >= 0, got {precond_exponent}")
    need(isinstance(max_cg_iters, (int, np.integer)) and max_cg_iters >= 1,
         f"max_cg_iters must be an int >= 1, got {max_cg_iters!r}")
    need(cg_tolerance >= 0, f"cg_tolerance must be >= 0, got {cg_tolerance}")
    need(0 <= warm_start_decay <= 1, f"warm_start_decay must be in [0, 1], got {warm_start_decay}")
    need(0 < armijo_c < 1, f"armijo_c must be in (0, 1), got {armijo_c}")
    need(0 < line_search_shrink < 1, f"line_search_shrink must be in (0, 1), got {line_search_shrink}")
    need(line_search_max_tries >= 1, f"line_search_max_tries must be >= 1, got {line_search_max_tries}")
    need(backtrack_start >= 1 and backtrack_ratio > 1,
         f"need backtrack_start >= 1 and backtrack_ratio > 1, got {backtrack_start}, {backtrack_ratio}")


# --------------------------------------------------------------------------------------------
# The optimiser
# --------------------------------------------------------------------------------------------

def hessian_free(objective: Objective, gradient: Gradient, curvature: Curvature | None,
                 params: Tree, *, curvature_at: CurvatureAt | None = None, batch: Any = None, batches: Batches = None, curvature_batches: Batches = None,
                 precond_diag: Callable[[Tree, Any], Tree] | None = None,
                 steps: int = 10, damping: float = 1.0, damping_boost: float = 1.5,
                 damping_drop: float = 2 / 3, weight_decay: float = 0.0,
                 precond_exponent: float = 0.75, max_cg_iters: int = 250,
                 cg_tolerance: float = 5e-4, cg_min_window: int = 10,
                 cg_window_fraction: float = 0.1, backtrack: bool = True,
                 backtrack_start: float = 5.0, backtrack_ratio: float = 1.3,
                 warm_start_decay: float = 0.95, line_search: bool = True,
                 armijo_c: float = 1e-2, line_search_shrink: float = 0.8,
                 line_search_max_tries: int = 60, structural_damping: float = 0.0,
                 callback: Callable[[Tree, HFStep], bool | None] | None = None,
                 progress: bool = True) -> HFResult:
    """Minimise ``objective`` by Martens' (2010) Hessian-free method; returns
    ``HFResult(params, history)``.

    **The functions** (``batch`` is whatever the caller passes as data; the optimiser never
    looks inside it):

    - ``objective(params, batch) -> float``: the loss.  Used for ρ, the line search and
      CG-backtracking.
    - ``gradient(params, batch) -> (loss, grad)``, ``grad`` shaped like ``params``.
    - ``curvature(params, batch, v) -> Bv`` shaped like ``params``: Hv (rop's ``.hvp``), Gv
      (Gauss-Newton, which Martens recommends: positive semi-definite), or any product.
    - or, instead of ``curvature`` (pass ``None``), ``curvature_at(params, batch) -> B`` with
      ``B(v) -> Bv``: called once per outer step, at the step's point and curvature batch, and
      ``B`` then applied by every CG iteration.  With rop, ``lambda p, b: f.gvp.linearize(*p, b)``:
      the primal forward and backward pass runs once per step instead of once per CG product
      (``.linearize``, docs/curvature.md), which makes each product cheaper (0.6× of a whole
      ``.gvp`` at the benchmark's largest size).
    - ``precond_diag(params, batch) -> Σᵢ ∇fᵢ ⊙ ∇fᵢ`` (optional), the sum of squared per-case
      gradients, shaped like ``params`` and on the curvature's scale (for a mean loss, the mean of
      the squared per-case gradients).  Without it, CG is not preconditioned.

    ``params`` is a single array or the caller's own structure (tuples, lists, dicts, nested);
    the result has the same structure.  The functions never get a flattened vector.

    **Data** (Martens 2010 §4.3): ``batch`` is one batch for everything (default ``None``).
    ``batches``, a list cycled per outer step or a function ``step -> batch``, overrides it for
    the gradient, the line search, CG-backtracking and the preconditioner (the "larger data").
    ``curvature_batches``, the same kinds, is the mini-batch for the curvature products and ρ;
    by default the step's gradient batch.

    **Heuristics** (defaults are Martens'):

    - ``damping=1.0`` — initial λ; CG solves with B + λI.  After each step λ ×``damping_boost``
      (3/2) when ρ < ¼ and ×``damping_drop`` (2/3) when ρ > ¾ (§4.1).  ρ = (f(θ+p) − f(θ)) /
      q(p) on the curvature batch, with q the damped quadratic CG minimised (evaluated at the
      chosen iterate, for free from the CG residual); ρ = −∞ when the loss rose.  λ = 0 stays 0.
    - ``precond_diag`` and ``precond_exponent=0.75`` — M = (diag + λ + weight_decay)^0.75
      (§4.7): the exponent < 1 tempers a diagonal that is only an approximation.
    - ``max_cg_iters=250``, ``cg_tolerance=5e-4``, ``cg_min_window=10``,
      ``cg_window_fraction=0.1`` — Martens' CG stopping rule (:func:`cg_should_stop`, §4.4).
    - ``backtrack=True``, ``backtrack_start=5``, ``backtrack_ratio=1.3`` — CG-backtracking
      (§4.6): keep the iterates at ⌈5·1.3ʲ⌉ and the last; walk back from the last while the
      objective on the gradient data does not get worse; the step is the last one reached.
    - ``warm_start_decay=0.95`` — CG starts from 0.95 × the previous step's last CG iterate
      (§4.5; the last iterate, not the backtracked one, as in Martens' code: it is CG's best
      estimate of the model's minimiser).  0 starts from zero.
    - ``line_search=True``, ``armijo_c=1e-2``, ``line_search_shrink=0.8``,
      ``line_search_max_tries=60`` — Armijo backtracking on the chosen step p: the rate α
      (from 1, ×0.8 per try) is accepted when f(θ+αp) ≤ f(θ) + c·α·gᵀp and f(θ+αp) < f(θ).  If
      no try succeeds the step is rejected: θ stays and λ grows.  With ``line_search=False`` the
      step is taken whole when it lowers the loss, and rejected otherwise.
    - ``weight_decay=0.0`` — L2 coefficient w: the optimiser adds w/2·‖θ‖² to the objective (and
      to the recorded loss), wθ to the gradient, wv to the curvature product and w to the
      preconditioner's diagonal, once, so the user's functions must not include it.
    - ``structural_damping=0.0`` — Martens & Sutskever's (2011) μ: a do-not-change prior
      λμ/2 ‖h(θ+p) − h(θ)‖² on hidden values h (an RNN's states), scaled by λ so that it
      adapts with the Levenberg–Marquardt rule.  When μ > 0, ``curvature`` is called with a
      fourth argument, the weight λμ, and must add it times J_hᵀ J_h v: rop's
      ``f.gvp(..., v=v, structural=weight)`` of a function decorated with ``hidden=``
      (``curvature_at`` gets it as a third argument: ``f.gvp.linearize(..., structural=weight)``).
    - Negative curvature: CG stops at a direction d with dᵀ(B + λI)d ≤ 0 and uses the iterate
      reached (possible with Hv, never with Gauss-Newton and λ > 0).

    **Reporting**: ``callback(params, step_record)`` after each outer step; returning ``True``
    stops the run.  ``progress=True`` shows a tqdm bar with loss, λ and CG iterations per step.
    The history (:class:`HFHistory`) has one :class:`HFStep` per step and ``.plot()``.

    Raises ``ValueError`` for options out of range, a non-finite loss or gradient at the start,
    functions returning arrays not shaped like ``params``; ``TypeError`` for params that are not
    numeric or batches of the wrong kind; ``FloatingPointError`` for a non-finite curvature
    product.
    """
    if (curvature is None) == (curvature_at is None):
        raise TypeError("pass curvature (params, batch, v) -> Bv, or curvature=None and "
                        "curvature_at (params, batch) -> (v -> Bv); exactly one of them")
    for name, f in (("objective", objective), ("gradient", gradient),
                    ("curvature", curvature or curvature_at)):
        if not callable(f):
            raise TypeError(f"{name} must be a function, got {type(f).__name__}")
    if precond_diag is not None and not callable(precond_diag):
        raise TypeError(f"precond_diag must be a function or None, got {type(precond_diag).__name__}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be a function or None, got {type(callback).__name__}")
    _check_options(damping, weight_decay, steps, damping_boost, damping_drop, precond_exponent,
                   max_cg_iters, cg_tolerance, warm_start_decay, armijo_c, line_search_shrink,
                   line_search_max_tries, backtrack_start, backtrack_ratio)
    if not (np.isfinite(structural_damping) and structural_damping >= 0):
        raise ValueError(f"structural_damping (μ) must be finite and >= 0, got {structural_damping}")
    mu = float(structural_damping)
    if batch is not None and batches is not None:
        raise ValueError("pass batch= (one batch for every step) or batches= (per step), not both")
    grad_batch = _batch_source("batches", batches, lambda n: batch)
    curv_batch = _batch_source("curvature_batches", curvature_batches, None)

    theta = _as_params(params)
    lam, wd = float(damping), float(weight_decay)
    save_iters = backtrack_iterations(max_cg_iters, backtrack_start, backtrack_ratio) if backtrack else set()

    def f(p, b) -> float:
        """The objective with weight decay; +inf where it is not finite (an overflow at a
        trial point), so that backtracking and the line search move away from it."""
        value = objective(p, b)
        if np.ndim(value) != 0:
            raise TypeError(f"objective must return a scalar loss, got shape {np.shape(value)}")
        value = float(value) + (0.5 * wd * tree_dot(p, p) if wd else 0.0)
        return value if np.isfinite(value) else math.inf

    def f_and_g(p, b):
        out = gradient(p, b)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise ValueError(f"gradient must return (loss, grad), got {type(out).__name__}")
        if np.ndim(out[0]) != 0:
            raise TypeError(f"gradient must return a scalar loss first, got shape {np.shape(out[0])}")
        loss, g = float(out[0]), out[1]
        check_like(p, g, "gradient")
        if wd:
            loss += 0.5 * wd * tree_dot(p, p)
            g = tree_axpy(wd, p, g)
        return loss, g

    data = grad_batch(0)
    loss, g = f_and_g(theta, data)
    if not np.isfinite(loss):
        raise ValueError(f"the loss at the starting point is not finite ({loss})")
    if not tree_all_finite(g):
        raise ValueError("the gradient at the starting point is not finite")
    history = HFHistory(loss)
    start = time.perf_counter()
    previous_x = None
    bar = _progress(steps, progress)
    try:
        for n in range(steps):
            if n > 0:  # each batch function is called once per step: it may sample
                data = grad_batch(n)
                loss, g = f_and_g(theta, data)
            cdata = data if curv_batch is None else curv_batch(n)
            used = lam
            shift = lam + wd

            if curvature_at is not None:  # linearised at this point and batch, once
                B = curvature_at(theta, cdata, lam * mu) if mu else curvature_at(theta, cdata)
                if not callable(B):
                    raise TypeError(f"curvature_at must return a function v -> Bv, got {type(B).__name__}")
            else:
                B = (lambda v, _p=theta, _b=cdata, _s=lam * mu: curvature(_p, _b, v, _s)) if mu \
                    else (lambda v, _p=theta, _b=cdata: curvature(_p, _b, v))

            def apply_B(v, _p=theta, _B=B):  # (CG adds shift·v; it checks finiteness)
                Bv = _B(v)
                check_like(_p, Bv, "curvature")
                return Bv

            M = None if precond_diag is None else _preconditioner(
                precond_diag(theta, data), theta, shift, precond_exponent)
            x0 = (tree_scale(warm_start_decay, previous_x)
                  if previous_x is not None and warm_start_decay > 0 else None)
            cg = conjugate_gradient(apply_B, g, x0, M, max_iters=max_cg_iters,
                                    tolerance=cg_tolerance, min_window=cg_min_window,
                                    window_fraction=cg_window_fraction, save_iters=save_iters,
                                    shift=shift)
            previous_x = cg.x
            it, p, q, f_p = _backtrack(cg.saved, lambda x: f(tree_axpy(1.0, x, theta), data), backtrack)

            # ρ on the curvature batch (§4.1); the same values when it is the gradient batch.
            if cdata is data:
                fc0, fc1 = loss, f_p
            else:
                fc0, fc1 = f(theta, cdata), f(tree_axpy(1.0, p, theta), cdata)
            rho = -math.inf if (not fc1 <= fc0 or not q < 0) else (fc1 - fc0) / q

            rate, f_new = _line_search(lambda a: f(tree_axpy(a, p, theta), data), loss, f_p,
                                       tree_dot(g, p), armijo_c, line_search_shrink,
                                       line_search_max_tries if line_search else 1, line_search)
            accepted = rate > 0
            if accepted:
                theta = tree_axpy(rate, p, theta)
                loss = f_new
            lam = update_damping(lam, rho if accepted else -math.inf, damping_boost, damping_drop)

            record = HFStep(n, loss, used, lam, rho, cg.iters, cg.stop, it, rate, accepted,
                            time.perf_counter() - start, cg.products)
            history.steps.append(record)
            if bar is not None:
                bar.set_postfix(loss=f"{loss:.4g}", lam=f"{used:.3g}", cg=cg.iters,
                                t=f"{record.time:.1f}s", refresh=False)
                bar.update(1)
            if callback is not None:
                stop = callback(theta, record)
                if isinstance(stop, (bool, np.bool_)) and stop:
                    break
    finally:
        if bar is not None:
            bar.close()
    return HFResult(theta, history)


def _preconditioner(diag: Tree, theta: Tree, shift: float, exponent: float) -> Tree:
    """M = (diag + λ + weight_decay)^exponent (Martens 2010 §4.7), after checking the diagonal."""
    check_like(theta, diag, "precond_diag")
    if any(np.any(~(np.asarray(x) >= 0)) for x in tree_leaves(diag)):
        raise ValueError("precond_diag returned negative or non-finite values; it must be a sum "
                         "of squared per-case gradients")
    M = tree_map(lambda d: (d + shift) ** exponent, diag)
    if any(np.any(x <= 0) for x in tree_leaves(M)):
        raise ValueError("the preconditioner has zero entries (precond_diag is 0 there and "
                         "λ + weight_decay = 0): give damping > 0")
    return M


def _backtrack(saved: list, f_at: Callable[[Tree], float], enabled: bool):
    """CG-backtracking (Martens 2010 §4.6): from the last kept iterate backwards, move to the
    earlier one while the objective (on the larger data) does not get worse; stop at the first
    that is worse.  Returns (iteration, iterate, φ, objective there)."""
    k = len(saved) - 1
    it, p, q = saved[k]
    f_p = f_at(p)
    while enabled and k > 0:
        f_prev = f_at(saved[k - 1][1])
        if not f_prev <= f_p:
            break
        k -= 1
        it, p, q = saved[k]
        f_p = f_prev
    return it, p, q, f_p


def _line_search(f_at_rate: Callable[[float], float], loss: float, f_full: float, slope: float,
                 c: float, shrink: float, tries: int, armijo: bool) -> tuple[float, float]:
    """Armijo backtracking: rates 1, shrink, shrink², … (``tries`` in all; f at rate 1 is
    ``f_full``, already known from CG-backtracking) until f ≤ loss + c·rate·gᵀp and f < loss
    (only the latter without ``armijo``).  Returns (rate, f there), rate 0 when none passed."""
    rate, f_new = 1.0, f_full
    for t in range(tries):
        if t > 0:
            rate *= shrink
            f_new = f_at_rate(rate)
        if f_new < loss and (not armijo or f_new <= loss + c * rate * slope):
            return rate, f_new
    return 0.0, loss


def _progress(steps: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=steps, desc="HF", unit="step")
