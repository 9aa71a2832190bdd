"""Solves with the curvature: conjugate gradients that say how they ended, damped Newton steps,
and damped Newton-CG (Martens' Hessian-free outer loop) on functions of the user's structures.

CG minimises the quadratic ½xᵀBx − bᵀx, which has a minimiser only where B is positive definite:
a direction d with dᵀBd ≤ 0 (the Hessian away from a minimum) ends it, and the caller is told
(``status="negative curvature"`` and the direction), since the iterate reached is then no
solution of anything.  SciPy's ``cg`` neither detects that nor returns its iteration count.
For Martens' full method with every heuristic, see ``rop.hessian_free``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
from scipy.sparse.linalg import LinearOperator

from .._tree import Tree


def dot(xs, ys) -> float:
    """<x, y> for tuples of arrays (or single arrays)."""
    if isinstance(xs, (list, tuple)):
        return float(sum(np.sum(x * y) for x, y in zip(xs, ys)))
    return float(np.sum(xs * ys))


def axpy(a, xs, ys):
    """a * x + y, elementwise over tuples of arrays."""
    if isinstance(xs, (list, tuple)):
        return tuple(a * x + y for x, y in zip(xs, ys))
    return a * xs + ys


def scale(a, xs):
    if isinstance(xs, (list, tuple)):
        return tuple(a * x for x in xs)
    return a * xs


@dataclass
class CGSolve:
    """What :func:`cg_solve` returns.  ``x``: the solution (or the last iterate), in the form
    ``b`` was given; ``status``: ``"converged"``, ``"max_iters"`` or ``"negative curvature"``;
    ``iterations``: CG steps taken (one product each); ``residual``: ‖b − (B + λI)x‖ / ‖b‖;
    ``direction``: at negative curvature, the direction d with dᵀ(B + λI)d ≤ 0 (flat), else
    None."""
    x: Any
    status: str
    iterations: int
    residual: float
    direction: np.ndarray | None = None

    @property
    def converged(self) -> bool:
        return self.status == "converged"


def _flat_problem(B, b):
    """(matvec on flat vectors, flat b, back to b's form) for an operator or a function on
    structures."""
    from ..operators import Layout
    if isinstance(B, LinearOperator) or isinstance(B, np.ndarray):
        layout = getattr(B, "layout", None)
        if isinstance(b, np.ndarray) and b.ndim == 1 or layout is None:
            vec = np.asarray(b, dtype=np.float64).ravel()
            if vec.shape != (B.shape[0],):
                raise ValueError(f"b has {vec.size} entries where the operator has {B.shape[0]} "
                                 "rows" + (f" (layout: {layout.describe()})" if layout else ""))
            return (lambda x: np.asarray(B @ x, dtype=float).ravel()), vec, (lambda x: x)
        return (lambda x: B @ x), layout.flatten(b), layout.unflatten
    if not callable(B):
        raise TypeError(f"expected an operator, an array or a function d -> Bd, not {type(B).__name__}")
    layout = Layout(b)
    return (lambda x: layout.flatten(B(layout.unflatten(x)))), layout.flatten(b), layout.unflatten


def cg_solve(B, b, *, damping: float = 0.0, x0=None, rtol: float = 1e-10,
             maxiter: int | None = None) -> CGSolve:
    """Solve (B + damping·I) x = b by conjugate gradients.

    ``B``: a LinearOperator or array (then ``b`` is a flat vector, or a structure when ``B`` is
    one of rop's operators with a ``.layout``) or a function ``d -> Bd`` on structures shaped
    like ``b`` (arrays, tuples, lists, dicts).  Stops when ‖residual‖ ≤ ``rtol``·‖b‖, after
    ``maxiter`` steps (default n), or at a direction of non-positive curvature.
    """
    matvec, bv, back = _flat_problem(B, b)
    n = bv.size
    maxiter = n if maxiter is None else int(maxiter)
    x = np.zeros(n) if x0 is None else _flat_problem(B, x0)[1].copy()
    r = bv - (matvec(x) + damping * x if x0 is not None else 0.0)
    d = r.copy()
    rs, bnorm = r @ r, max(np.linalg.norm(bv), np.finfo(float).tiny)
    status, it, neg = "max_iters", 0, None
    while True:
        if np.sqrt(rs) <= rtol * bnorm:
            status = "converged"
            break
        if it >= maxiter:
            break
        Bd = matvec(d) + damping * d
        dBd = d @ Bd
        if not np.isfinite(dBd):
            raise FloatingPointError(f"CG step {it + 1}: the product is not finite (dᵀBd = {dBd})")
        if dBd <= 0:
            status, neg = "negative curvature", d
            break
        alpha = rs / dBd
        x += alpha * d
        r -= alpha * Bd
        rs_new = r @ r
        d = r + (rs_new / rs) * d
        rs = rs_new
        it += 1
    return CGSolve(back(x), status, it, float(np.sqrt(rs) / bnorm), neg)


def newton_step(B, g, *, damping: float = 0.0, method: str = "auto", rtol: float = 1e-10,
                maxiter: int | None = None, progress: bool = True):
    """The damped Newton step p = −(B + damping·I)⁻¹ g, in the form ``g`` was given (flat, or a
    structure for rop's operators).  ``method="dense"`` forms the full matrix (n products) and
    solves it exactly (LAPACK, symmetric; the full-Hessian Newton's method of small models);
    ``"cg"`` uses :func:`cg_solve` and raises if CG meets negative curvature or does not
    converge; ``"auto"`` is dense up to n = 500."""
    from .estimators import full_matrix
    n = B.shape[0]
    if method == "auto":
        method = "dense" if n <= 500 else "cg"
    if method == "cg":
        res = cg_solve(B, scale_tree(-1.0, g), damping=damping, rtol=rtol, maxiter=maxiter)
        if not res.converged:
            raise np.linalg.LinAlgError(f"newton_step: CG stopped at {res.status} after "
                                        f"{res.iterations} steps (relative residual "
                                        f"{res.residual:.1e}); raise the damping")
        return res.x
    if method != "dense":
        raise ValueError(f"newton_step: method must be 'auto', 'dense' or 'cg', not {method!r}")
    _, gv, back = _flat_problem(B, g)
    M = full_matrix(B, progress=progress)
    M = 0.5 * (M + M.T) + damping * np.eye(n)
    return back(scipy.linalg.solve(M, -gv, assume_a="sym"))


def scale_tree(a: float, x: Tree) -> Tree:
    from .._tree import tree_scale
    return a * np.asarray(x, dtype=float) if isinstance(x, np.ndarray) else tree_scale(a, x)


def cg(hvp, g, damping=0.0, iters=50, rtol=1e-10):
    """Approximately solve (H + damping I) p = -g by conjugate gradients; ``hvp(d) -> Hd`` on
    structures shaped like ``g``.  Returns the iterate reached: at the iteration limit, at a
    relative residual ``rtol``, or at a direction of negative curvature (where the damped
    quadratic model is not convex).  :func:`cg_solve` also says which."""
    return cg_solve(hvp, scale_tree(-1.0, g), damping=damping, rtol=rtol, maxiter=iters).x


def newton_cg(loss_and_grad, hvp_at, params, steps=10, damping=1.0, cg_iters=50, callback=None):
    """Damped Newton-CG with Levenberg-Marquardt adaptation of the damping (Martens 2010).

    ``loss_and_grad(params) -> (loss, grad)``; ``hvp_at(params) -> (d -> H d)``.  Each step
    solves (H + lambda I) p = -g by CG, compares the actual reduction with the quadratic
    model's (rho), shrinks lambda by 2/3 when rho > 3/4, grows it by 3/2 when rho < 1/4, and
    takes the step only if the loss decreased.  Returns the parameters and the loss curve.
    """
    curve = []
    for _ in range(steps):
        loss, g = loss_and_grad(params)
        curve.append(float(loss))
        hvp = hvp_at(params)
        p = cg(hvp, g, damping, cg_iters)
        predicted = dot(g, p) + 0.5 * dot(p, hvp(p))
        trial = axpy(1.0, p, params)
        new_loss = loss_and_grad(trial)[0]
        rho = (new_loss - loss) / predicted if predicted < 0 else -1.0
        if rho > 0.75:
            damping *= 2.0 / 3.0
        elif rho < 0.25:
            damping *= 1.5
        if new_loss < loss:
            params = trial
        if callback is not None:
            callback(params, loss, damping)
    return params, curve
