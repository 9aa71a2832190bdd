"""What users do with Hv: conjugate gradients and damped Newton-CG (Martens' Hessian-free
outer loop), on parameters held as tuples of arrays.

Everything here takes ``hvp(direction) -> Hv`` as a function, so it works with the Hv of any
rop-compiled gradient (``lambda d: f.hvp(*args, v=d)[1]``), exact or sampled.
For the full method, with every heuristic of Martens (2010) and parameters in any structure,
see ``rop.hessian_free``.
"""

from __future__ import annotations

import numpy as np


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


def cg(hvp, g, damping=0.0, iters=50, rtol=1e-10):
    """Approximately solve (H + damping I) p = -g by conjugate gradients.

    Stops at the iteration limit, at a relative residual ``rtol``, or at a direction of
    negative curvature (where the damped quadratic model is not convex), returning the
    iterate reached so far.
    """
    p = scale(0.0, g)
    r = scale(-1.0, g)
    d = r
    rs = dot(r, r)
    g_norm = np.sqrt(dot(g, g))
    for _ in range(iters):
        Hd = axpy(damping, d, hvp(d))
        dHd = dot(d, Hd)
        if dHd <= 0:
            break
        alpha = rs / dHd
        p = axpy(alpha, d, p)
        r = axpy(-alpha, Hd, r)
        rs_new = dot(r, r)
        if np.sqrt(rs_new) <= rtol * g_norm:
            break
        d = axpy(rs_new / rs, d, r)
        rs = rs_new
    return p


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
