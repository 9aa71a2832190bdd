"""Kronecker-factored curvature as an optimiser: KFLR and KFRA (Botev, Ritter & Barber 2017),
with the machinery of K-FAC (Martens & Grosse 2015) around them.

Each step preconditions the gradient of every layer by the inverse of its Kronecker-factored
Gauss-Newton block, G_l ⊗ Q̄_l (the layer's weights and bias together, :mod:`rop.blocks`): for
the layer's gradient Γ_l = [∇W_l ∇b_l] (m × (n+1)),

    Δ_l = −(G_l + γ/π_l · I)⁻¹ Γ_l (Q̄_l + γ π_l · I)⁻¹,       γ = √(λ + η),

the *factored Tikhonov damping* of Martens & Grosse §6.3 (η the weight decay, λ the adaptive
damping, π_l = √((tr Q̄_l / (n+1)) / (tr G_l / m)) balancing the two factors' scales).  The
factors come from ``factors(params, batch)`` (``Network.kflr`` or ``Network.kfra``); what is
kept between steps, and how the step is scaled, follows K-FAC and kfac-jax's defaults:

* **Factor averaging**: G_l and Q̄_l are exponential moving averages over steps (decay
  ``ema`` = 0.95), so each step's estimate is on a mini-batch but the preconditioner is on many.
* **Inversion every few steps** (``inverse_every`` = 5): the damped averaged factors are
  inverted every 5 steps (by Cholesky, LAPACK's ``dpotrf``/``dpotri``: a third of an
  eigendecomposition's cost), with the λ of that step, as K-FAC does; between inversions each
  step costs two matrix products per layer.
* **Step size and momentum from the exact quadratic model** (Martens & Grosse §7), when the
  caller gives ``curvature`` (rop's ``f.gvp``): δ = αΔ + μδ_prev with (α, μ) minimising
  M(δ) = ½ δᵀ(G + (λ+η)I)δ + gᵀδ, two Gauss-Newton products per step.  Without it, α =
  ``learning_rate`` and μ = ``momentum`` are fixed, and M uses the Kronecker-factored G.
* **Levenberg–Marquardt damping** (§6.5): every ``adapt_every`` = 5 steps, ρ = (h(θ+δ) − h(θ))
  / M(δ) on the step's batch; λ ← ωλ when ρ > ¾, λ ← λ/ω when ρ < ¼, ω = (19/20)^adapt_every.

The functions see the parameters as the caller holds them, ``(Ws, bs)``: lists of weight
matrices (m_l × n_l) and bias vectors (m_l,), one per layer, in the layout of
:mod:`rop.blocks` (examples as columns).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

__all__ = ["kronecker_factored", "KFStep", "KFHistory", "KFResult", "Preconditioner"]


@dataclass
class KFStep:
    """One step of :func:`kronecker_factored`.  ``loss``: the objective (with weight decay) on
    the step's batch before the step; ``alpha``, ``mu``: the step's scale and momentum;
    ``damping``: the λ this step used; ``rho``: actual over predicted reduction (NaN on steps
    that do not adapt λ); ``predicted``: M(δ); ``inverted``: whether the factors were
    eigendecomposed this step; ``time``: seconds since the start."""
    step: int
    loss: float
    alpha: float
    mu: float
    damping: float
    rho: float
    predicted: float
    inverted: bool
    time: float


class KFHistory:
    """The per-step records: ``history[n]`` a :class:`KFStep`, ``history["loss"]`` one field over
    all steps as an array."""

    def __init__(self):
        self.steps: list[KFStep] = []

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self):
        return iter(self.steps)

    def __getitem__(self, key):
        if isinstance(key, str):
            names = [f.name for f in fields(KFStep)]
            if key not in names:
                raise KeyError(f"no field {key!r}; the fields are {names}")
            return np.array([getattr(s, key) for s in self.steps])
        return self.steps[key]

    def as_dicts(self) -> list[dict]:
        return [asdict(s) for s in self.steps]


class KFResult(NamedTuple):
    """``params, history = kronecker_factored(...)``."""
    params: tuple
    history: KFHistory


class Preconditioner:
    """The averaged Kronecker factors of every layer and their eigendecompositions.

    ``update(factors)`` folds one step's :class:`rop.blocks.KroneckerFactors` into the moving
    averages (the first one is taken as it is); ``invert(γ)`` inverts the damped averages;
    ``apply(dWs, dbs)`` returns −(G + γ/π)⁻¹ Γ (Q̄ + γπ)⁻¹ per layer, split back into
    (dWs, dbs); ``model(deltas)`` is G ⊗ Q̄ applied to a step, for the Kronecker quadratic model.
    """

    def __init__(self, ema: float = 0.95):
        if not 0.0 <= ema < 1.0:
            raise ValueError(f"ema must be in [0, 1), got {ema}")
        self.ema = ema
        self.G: list | None = None
        self.Q: list | None = None
        self._inv: list | None = None

    def update(self, factors: Sequence) -> None:
        G = [np.asarray(f.G, dtype=np.float64) for f in factors]
        Q = [np.asarray(f.homogeneous, dtype=np.float64) for f in factors]
        if self.G is None:
            self.G, self.Q = G, Q
            return
        if len(G) != len(self.G):
            raise ValueError(f"factors: {len(G)} layers where earlier steps gave {len(self.G)}")
        e = self.ema
        self.G = [e * a + (1 - e) * b for a, b in zip(self.G, G)]
        self.Q = [e * a + (1 - e) * b for a, b in zip(self.Q, Q)]

    def invert(self, gamma: float) -> None:
        """(G + γ/π I)⁻¹ and (Q̄ + γπ I)⁻¹ of every layer, from the current averages."""
        if self.G is None:
            raise RuntimeError("Preconditioner.invert before any update")
        self._inv = []
        for G, Q in zip(self.G, self.Q):
            tG, tQ = np.trace(G) / G.shape[0], np.trace(Q) / Q.shape[0]
            pi = math.sqrt(tQ / tG) if tG > 0 and tQ > 0 else 1.0
            self._inv.append((_spd_inverse(G, gamma / pi), _spd_inverse(Q, gamma * pi)))

    @property
    def ready(self) -> bool:
        return self._inv is not None

    def apply(self, dWs: Sequence, dbs: Sequence) -> tuple[list, list]:
        """−(G + γ/π I)⁻¹ [dW db] (Q̄ + γπ I)⁻¹ per layer, with the last inverses."""
        outW, outb = [], []
        for (Gi, Qi), dW, db in zip(self._inv, dWs, dbs):
            D = -(Gi @ np.concatenate([dW, db[:, None]], axis=1) @ Qi)
            outW.append(np.ascontiguousarray(D[:, :-1]))
            outb.append(D[:, -1].copy())
        return outW, outb

    def model(self, dWs: Sequence, dbs: Sequence) -> tuple[list, list]:
        """(G ⊗ Q̄) δ per layer: G [δW δb] Q̄, with the current averages."""
        outW, outb = [], []
        for G, Q, dW, db in zip(self.G, self.Q, dWs, dbs):
            D = G @ np.concatenate([dW, db[:, None]], axis=1) @ Q
            outW.append(np.ascontiguousarray(D[:, :-1]))
            outb.append(D[:, -1].copy())
        return outW, outb


# ------------------------------------------------------------------------------ helpers
def _spd_inverse(A: np.ndarray, shift: float) -> np.ndarray:
    """(A + shift·I)⁻¹ for a symmetric positive semi-definite A and shift > 0, by Cholesky."""
    from scipy.linalg.lapack import dpotrf, dpotri
    M = A + shift * np.eye(A.shape[0])
    c, info = dpotrf(M, lower=True)
    if info == 0:
        inv, info = dpotri(c, lower=True)
        if info == 0:
            return np.tril(inv) + np.tril(inv, -1).T
    # rounding made A + shift·I indefinite (a tiny shift): through the eigenvalues, clipped
    s, U = np.linalg.eigh(A)
    return (U / (np.clip(s, 0.0, None) + shift)) @ U.T


def _dot(a: tuple, b: tuple) -> float:
    return float(sum(np.vdot(x, y) for xs, ys in zip(a, b) for x, y in zip(xs, ys)))


def _axpy(a: float, x: tuple, y: tuple) -> tuple:
    return tuple([a * u + w for u, w in zip(xs, ys)] for xs, ys in zip(x, y))


def _scale(a: float, x: tuple) -> tuple:
    return tuple([a * u for u in xs] for xs in x)


def _params(params) -> tuple[list, list]:
    if not (isinstance(params, (tuple, list)) and len(params) == 2
            and isinstance(params[0], (list, tuple)) and isinstance(params[1], (list, tuple))):
        raise ValueError("params must be (Ws, bs): a list of weight matrices and a list of bias "
                         "vectors, one of each per layer")
    Ws = [np.array(W, dtype=np.float64) for W in params[0]]
    bs = [np.array(b, dtype=np.float64) for b in params[1]]
    if len(Ws) != len(bs):
        raise ValueError(f"params: {len(Ws)} weight matrices and {len(bs)} bias vectors")
    for l, (W, b) in enumerate(zip(Ws, bs)):
        if W.ndim != 2 or b.shape != (W.shape[0],):
            raise ValueError(f"params: layer {l} has W of shape {W.shape} and b of shape "
                             f"{b.shape}; expected (m, n) and (m,)")
    return Ws, bs


def _batches(batches):
    if callable(batches):
        return batches
    if isinstance(batches, (list, tuple)) and batches:
        return lambda k: batches[k % len(batches)]
    raise ValueError("batches must be a non-empty list (cycled, one per step) or a function "
                     "step -> batch")


def kronecker_factored(gradient: Callable[[tuple, Any], tuple], factors: Callable[[tuple, Any], Sequence],
                       params, *, batches, steps: int = 100,
                       curvature: Callable[[tuple, Any, tuple], tuple] | None = None,
                       objective: Callable[[tuple, Any], float] | None = None,
                       learning_rate: float = 1.0, momentum: float = 0.0,
                       damping: float = 1.0, weight_decay: float = 0.0, ema: float = 0.95,
                       inverse_every: int = 5, adapt_every: int = 5,
                       min_damping: float = 1e-8,
                       callback: Callable[[tuple, KFStep], bool | None] | None = None,
                       progress: bool = True) -> KFResult:
    """Minimise a network's loss by Kronecker-factored Gauss-Newton steps (KFLR or KFRA, as
    ``factors`` gives them); returns ``KFResult(params, history)``.  See the module docstring
    for what each step does and why.

    - ``gradient(params, batch) -> (loss, (dWs, dbs))``: the mean loss and its gradient (your
      backprop; without weight decay, which is added here).
    - ``factors(params, batch) -> [KroneckerFactors, ...]``: one per layer, e.g.
      ``lambda p, X: net.kfra(*p, X, X)`` with ``net = rop.blocks.Network(...)``.
    - ``curvature(params, batch, v) -> Gv`` (optional): the exact Gauss-Newton product (rop's
      ``f.gvp``, returning the product shaped like ``(Ws, bs)``); with it the step size and
      momentum are chosen by the quadratic model each step (two products), without it
      ``learning_rate`` and ``momentum`` are used as given.
    - ``objective(params, batch) -> float`` (optional): the mean loss; with it λ adapts by the
      Levenberg–Marquardt rule every ``adapt_every`` steps, without it λ stays ``damping``.
    - ``batches``: a list cycled one per step, or ``step -> batch``.
    - ``callback(params, step_record)`` after each step; returning True stops.
    """
    if steps < 0 or inverse_every < 1 or adapt_every < 1:
        raise ValueError(f"steps ({steps}) must be ≥ 0, inverse_every ({inverse_every}) and "
                         f"adapt_every ({adapt_every}) ≥ 1")
    if damping <= 0 or weight_decay < 0:
        raise ValueError(f"damping ({damping}) must be > 0 and weight_decay ({weight_decay}) ≥ 0")
    Ws, bs = _params(params)
    batch_at = _batches(batches)
    pre = Preconditioner(ema)
    history = KFHistory()
    lam, prev = float(damping), None
    omega = (19 / 20) ** adapt_every
    start = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=steps, desc="Kronecker-factored", unit="step", leave=False)
    try:
        for k in range(steps):
            batch = batch_at(k)
            theta = (Ws, bs)
            loss, (gW, gb) = gradient(theta, batch)
            loss = float(loss) + 0.5 * weight_decay * _dot(theta, theta)
            g = (list(gW), list(gb))
            if weight_decay:
                g = _axpy(weight_decay, theta, g)
            pre.update(factors(theta, batch))
            inverted = k % inverse_every == 0 or not pre.ready
            if inverted:
                pre.invert(math.sqrt(lam + weight_decay))
            Delta = pre.apply(*g)
            shift = lam + weight_decay
            if curvature is not None:  # (α, μ) from the exact quadratic model
                GD = _axpy(shift, Delta, tuple(map(list, curvature(theta, batch, Delta))))
                a11, b1 = _dot(Delta, GD), _dot(g, Delta)
                if prev is None:
                    alpha, mu = -b1 / a11, 0.0
                    predicted = 0.5 * alpha * b1
                else:
                    Gp = _axpy(shift, prev, tuple(map(list, curvature(theta, batch, prev))))
                    A = np.array([[a11, _dot(Delta, Gp)], [_dot(prev, GD), _dot(prev, Gp)]])
                    A = 0.5 * (A + A.T)
                    b = np.array([b1, _dot(g, prev)])
                    try:
                        alpha, mu = np.linalg.solve(A, -b)
                    except np.linalg.LinAlgError:
                        alpha, mu = -b1 / a11, 0.0
                    predicted = 0.5 * float(np.dot(b, [alpha, mu]))
                delta = _scale(alpha, Delta) if prev is None or mu == 0.0 \
                    else _axpy(alpha, Delta, _scale(mu, prev))
            else:
                alpha, mu = learning_rate, momentum
                delta = _scale(alpha, Delta) if prev is None or mu == 0.0 \
                    else _axpy(alpha, Delta, _scale(mu, prev))
                Md = _axpy(shift, delta, pre.model(*delta))
                predicted = 0.5 * _dot(delta, Md) + _dot(g, delta)
            new = _axpy(1.0, delta, theta)
            rho = math.nan
            if objective is not None and (k + 1) % adapt_every == 0:
                after = float(objective(new, batch)) + 0.5 * weight_decay * _dot(new, new)
                rho = (after - loss) / predicted if predicted < 0 else -math.inf
                if rho > 0.75:
                    lam = max(min_damping, lam * omega)
                elif not rho >= 0.25:  # also NaN
                    lam = lam / omega
            rec = KFStep(k, loss, float(alpha), float(mu), lam, rho, float(predicted), inverted,
                         time.perf_counter() - start)
            history.steps.append(rec)
            Ws, bs = new
            prev = delta
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4g}", damping=f"{lam:.3g}", refresh=False)
            if not all(np.isfinite(W).all() for W in Ws):
                raise FloatingPointError(f"kronecker_factored: the parameters became non-finite at "
                                         f"step {k} (loss {loss:.4g}, λ {lam:.3g}); raise damping")
            if callback is not None and callback((Ws, bs), rec):
                break
    finally:
        if bar is not None:
            bar.close()
    return KFResult((Ws, bs), history)
