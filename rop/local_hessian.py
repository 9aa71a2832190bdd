"""Local Hessians of back-propagation and scale-amended SGD (Zhang, Chen & Liu 2018, "On the local
Hessian in back-propagation", NeurIPS; the seed 002 poster), from rop's own Hessian products.

**Back-matching.**  Split a network into blocks z_b = F_b(W_b, z_{b−1}) and run one forward and
one backward pass: g_b = ∂L/∂z_b.  Back-propagation is one gradient step, of step 1, on each
block's *back-matching loss* (the seed's ℓ_b for b < B), here on the whole batch Z (columns are
samples) and summed over it:

    ℓ_b(W_b, Z) = ½ ‖T_b − F_b(W_b, Z)‖²_F,      T_b = z_b − g_b  (the seed's z_b^{k+½}),

since ∇ℓ_b at the current point is J_Wᵀ g_b and J_zᵀ g_b: exactly what backprop computes.  The
*local Hessians* are its Hessian blocks at the current point, H_W (the block's weights, the
input held fixed) and H_z (the block's input, the weights held fixed); their spectra say where
the learning signal is blocked.  With the residual F_b − T_b = g_b the Hessian is

    ∇²ℓ_b = JᵀJ + Σ_k g_b[k] ∇²F_b[k],

whose first part (the Gauss-Newton part) is the seed's closed form.  The second vanishes on the
diagonal blocks when F_b is linear in the block's variable (a fully connected layer in W and in
z; a ReLU skip block, whose ReLU has zero curvature almost everywhere), and for any block when
g_b = 0.  Closed forms, in this sum convention and rop's C-order layout (W's row i is the slice
[i·n_in, (i+1)·n_in)):

* fully connected, z_out = W z:  H_W = I ⊗ Σ_j z_j z_jᵀ (the seed's "Σ z zᵀ", one copy per row
  of W), H_z = WᵀW per sample (independent of the sample).
* skip, z_out = z + W2 relu(W1 z):  H_z = (I + ∂φ/∂z)ᵀ(I + ∂φ/∂z) per sample,
  H_W = Σ_j (∂φ_j/∂vec W)ᵀ(∂φ_j/∂vec W).
* batch norm, z_out = BN(W z) with the batch's mean and variance (no affine part):  the seed's
  approximation treats the statistics as constants, H_W ≈ ⊕_i Σ_j z_j z_jᵀ / s_i² and
  H_z ≈ Σ_i w_i w_iᵀ / s_i² per sample, s_i² = Var_j[w_iᵀ z_j] + eps.  (The seed writes H_W
  with a further 1/m: its mean-over-the-batch convention.)  The exact Gauss-Newton part differs:
  per unit BN's Jacobian is (1/s)(I − 11ᵀ/m − y yᵀ/m), so H_{w_i} = (1/s_i²) Z M_i Zᵀ with
  M_i = I − 11ᵀ/m − (2 − ‖y_i‖²/m) y_i y_iᵀ/m — the approximation over-counts by a rank-two
  term — and the per-sample block of H_Z is Σ_i w_i w_iᵀ (1 − 1/m − (2 − ‖y_i‖²/m) y_ij²/m)/s_i²:
  the approximation is off by O(1/m), and it ignores the coupling of the samples through the
  statistics (off-diagonal sample blocks, also O(1/m) each).

:func:`local_hessian` writes nothing of this by hand: it takes the block's back-matching
gradient, written as a user writes backprop (:func:`fc_backmatch`, :func:`skip_backmatch`,
:func:`bn_backmatch`, each compiled by ``rop``), and reads the Hessian off ``.hvp.operator``
(``curvature="gauss-newton"``: ``.gvp.operator``, the JᵀJ part alone).  :func:`closed_form` is
the seed's formulas, for comparison.

**Scale-amended SGD** (the seed's Algorithm 2) divides each block's gradient by a scalar
approximation of its local Hessians, in backward order:

    m ← 1;  for b = B, …, 1:  δ'W_b ← δW_b / (m · m_{b,W});  m ← m · m_{b,z}.

The seed's transcription reads ``δ'W_b ← δW_b / m_{b,W}``, which leaves m computed and never
used; the back-matching argument (the signal reaching block b has passed the input Hessians of
every block above it) and the algorithm's own "m ← m · m_{b,z}" say m divides too, as here.
For a fully connected block with batch norm the seed's factors are

    m_{b,z} = ‖W_bᵀ‖²_{2,μ} / ‖W_b‖²_{2,μ},    m_{b,W} = 1 / ‖W_b‖²_{2,μ},

with ‖A‖²_{2,μ} the mean squared ℓ2 norm of A's rows (μ: mean).  They are the mean eigenvalues
of the batch-norm approximations above when the block's input is white (Cov z = I, so
s_i² = ‖w_i‖²): tr(Σ_i w_i w_iᵀ/‖w_i‖²)/n_in = n_out/n_in = ‖Wᵀ‖²_{2,μ}/‖W‖²_{2,μ}, and
Σ_j z_j z_jᵀ/(m s_i²) ≈ I/‖w_i‖² (the mean convention of the gradient).  Because batch norm makes
the loss invariant to the scale of W while its gradient shrinks like 1/‖W‖, plain SGD's
effective step decays as ‖W‖ grows; dividing by m_{b,W} undoes that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from scipy.sparse.linalg import LinearOperator

__all__ = ["fc_backmatch", "skip_backmatch", "bn_backmatch", "BLOCKS", "LocalHessian",
           "local_hessian", "closed_form", "forward", "norm_2mu_sq", "bn_scales",
           "scale_amended_gradients", "ScaleAmendedSGD", "marchenko_pastur_edges",
           "marchenko_pastur_density"]


# ----------------------------------------------------------------------------- back-matching
# Each function is the gradient of ℓ = ½‖T − F(W, Z)‖²_F w.r.t. (the weights, Z), written as
# backprop is written: forward, the residual D = F − T, backward.  rop differentiates these.

def fc_backmatch(W, Z, T):
    """Gradient of ½‖T − W Z‖²_F w.r.t. (W, Z): a fully connected block."""
    Y = W @ Z
    D = Y - T
    return D @ Z.T, W.T @ D


def skip_backmatch(W1, W2, Z, T):
    """Gradient of ½‖T − (Z + W2 relu(W1 Z))‖²_F w.r.t. (W1, W2, Z): a residual block."""
    H = W1 @ Z
    A = np.maximum(H, 0.0)
    Y = Z + W2 @ A
    D = Y - T
    dH = (W2.T @ D) * (H > 0.0)
    return dH @ Z.T, D @ A.T, D + W1.T @ dH


def bn_backmatch(W, Z, T, eps):
    """Gradient of ½‖T − BN(W Z)‖²_F w.r.t. (W, Z), BN with the batch's statistics (each row of
    W Z centred and divided by √(Var + eps) over the columns), no affine part."""
    X = W @ Z
    mu = X.mean(axis=1)
    Xc = X - mu[:, None]
    s = np.sqrt((Xc * Xc).mean(axis=1) + eps)
    Y = Xc / s[:, None]
    D = Y - T
    # BN's backward reads the forward values Xc and s, not the output Y: rop's Gauss-Newton cut
    # (guide §5) treats everything computed from Y as the loss's, so reading Y here would put
    # BN's own second derivatives into .gvp
    dX = (D - D.mean(axis=1)[:, None]
          - Xc * (D * Xc).mean(axis=1)[:, None] / (s * s)[:, None]) / s[:, None]
    return dX @ Z.T, W.T @ dX


#: block kind -> (back-matching gradient, names of its weights)
BLOCKS = {"fc": (fc_backmatch, ("W",)),
          "skip": (skip_backmatch, ("W1", "W2")),
          "bn": (bn_backmatch, ("W",))}

_COMPILED: dict = {}


def _compiled(kind: str, mode: str):
    """The block's back-matching gradient through ``rop``, compiled once per (kind, mode)."""
    from .api import rop
    key = (kind, mode)
    if key not in _COMPILED:
        fn, names = BLOCKS[kind]
        _COMPILED[key] = rop(fn, wrt=(*names, "Z"), output="Y", mode=mode)
    return _COMPILED[key]


def forward(kind: str, params: Sequence[np.ndarray], Z: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """The block's output F(W, Z) (columns are samples)."""
    _check(kind, params, Z)
    if kind == "fc":
        return params[0] @ Z
    if kind == "skip":
        return Z + params[1] @ np.maximum(params[0] @ Z, 0.0)
    X = params[0] @ Z
    Xc = X - X.mean(axis=1, keepdims=True)
    return Xc / np.sqrt((Xc * Xc).mean(axis=1, keepdims=True) + eps)


def _check(kind, params, Z, G=None):
    if kind not in BLOCKS:
        raise ValueError(f"kind must be one of {sorted(BLOCKS)}, not {kind!r}")
    names = BLOCKS[kind][1]
    if len(params) != len(names):
        raise ValueError(f"a {kind!r} block takes params {names}: got {len(params)} arrays")
    Z = np.asarray(Z)
    if Z.ndim != 2:
        raise ValueError(f"Z must be 2-D (block input × samples), got shape {Z.shape}")
    shapes = [np.shape(p) for p in params]
    if any(len(s) != 2 for s in shapes):
        raise ValueError(f"params {names} must be 2-D matrices, got shapes {shapes}")
    n_in = Z.shape[0]
    if kind in ("fc", "bn") and shapes[0][1] != n_in:
        raise ValueError(f"W has shape {shapes[0]} but Z has {n_in} rows: W must be (n_out, {n_in})")
    if kind == "skip":
        k = shapes[0][0]
        if shapes[0] != (k, n_in) or shapes[1] != (n_in, k):
            raise ValueError(f"a skip block needs W1 (k, {n_in}) and W2 ({n_in}, k) for Z with "
                             f"{n_in} rows; got W1 {shapes[0]}, W2 {shapes[1]}")
    if kind == "bn" and Z.shape[1] < 2:
        raise ValueError(f"batch norm needs at least 2 samples (columns of Z), got Z {Z.shape}")
    if G is not None:
        out = (shapes[0][0] if kind in ("fc", "bn") else n_in, Z.shape[1])
        if np.shape(G) != out:
            raise ValueError(f"G (∂L/∂z_out) must have the block output's shape {out}, "
                             f"got {np.shape(G)}")


# ----------------------------------------------------------------------------- the Hessians
@dataclass
class LocalHessian:
    """The local Hessian of one block's back-matching loss, as rop's operator over (the weights,
    Z) in rop's flat layout, with dense blocks on demand.

    ``W[name]`` is H_W for that weight matrix; ``z(j)`` is H_z of sample j (the n_in × n_in
    diagonal block of the Z–Z block; for fc and skip blocks the samples do not interact and it is
    all of H_z); ``ZZ()`` is the whole Z–Z block (batch norm couples the samples).
    ``operator`` is the joint ``LinearOperator`` (``.layout`` names the blocks): pass
    ``block_operator(name)`` to ``scipy.sparse.linalg.eigsh`` for spectra too large to form."""
    kind: str
    operator: LinearOperator
    Z_shape: tuple
    _dense: dict = field(default_factory=dict, repr=False)

    def _block(self, name):
        for b in self.operator.layout.blocks:
            if b.name == name:
                return b
        raise ValueError(f"no block {name!r}: the layout is {self.operator.layout.describe()}")

    def block_operator(self, name: str) -> LinearOperator:
        """The diagonal block of ``name`` ("W", "W1", "W2" or "Z") as a ``LinearOperator``."""
        from .curvature import block_operator
        return block_operator(self.operator, self._block(name))

    def dense(self, name: str, limit: int = 5000) -> np.ndarray:
        """The diagonal block of ``name`` as a dense matrix (one product per column)."""
        if name not in self._dense:
            b = self._block(name)
            if b.size > limit:
                raise ValueError(f"the {name} block is {b.size}×{b.size}, above limit={limit}: "
                                 f"use block_operator({name!r}) with eigsh, or raise the limit")
            self._dense[name] = self.block_operator(name) @ np.eye(b.size)
        return self._dense[name]

    @property
    def W(self) -> dict:
        """{weight name: dense H_W}."""
        return {b.name: self.dense(b.name) for b in self.operator.layout.blocks if b.name != "Z"}

    def ZZ(self) -> np.ndarray:
        """The whole Z–Z block (n_in·m square, Z raveled in C order: entry (i, j) at i·m + j)."""
        return self.dense("Z")

    def z(self, j: int = 0) -> np.ndarray:
        """H_z of sample j: the n_in products with the directions e_i e_jᵀ in Z."""
        n_in, m = self.Z_shape
        if not -m <= j < m:
            raise ValueError(f"sample j={j} out of range for Z with {m} columns")
        j %= m
        b = self._block("Z")
        rows = b.slice.start + np.arange(n_in) * m + j
        E = np.zeros((self.operator.shape[0], n_in))
        E[rows, np.arange(n_in)] = 1.0
        return np.asarray(self.operator @ E)[rows]


def local_hessian(kind: str, params: Sequence[np.ndarray], Z: np.ndarray, G: np.ndarray | None = None,
                  *, curvature: str = "hessian", eps: float = 1e-5, mode: str = "python") -> LocalHessian:
    """The local Hessians of a block's back-matching loss ½‖(F − G) − F(W, Z)‖²_F at the current
    (W, Z), from rop's Hessian products of the block's backprop (module docstring).

    ``kind``: ``"fc"`` (``params = (W,)``), ``"skip"`` (``(W1, W2)``) or ``"bn"`` (``(W,)``);
    ``Z`` the block's input, samples as columns; ``G`` = ∂L/∂z_out from the network's backward
    pass (default 0: the target is the current output, and the Hessian is its Gauss-Newton
    part).  ``curvature="gauss-newton"`` gives JᵀJ (``.gvp``) whatever G is.

    ``mode`` is rop's: ``"python"`` by default because these losses are a few matrix products,
    which NumPy runs as fast as Numba at block sizes, without Numba's 20–30 s compile per block
    kind."""
    if curvature not in ("hessian", "gauss-newton"):
        raise ValueError(f"curvature must be 'hessian' or 'gauss-newton', not {curvature!r}")
    _check(kind, params, Z, G)
    params = [np.ascontiguousarray(p, dtype=np.float64) for p in params]
    Z = np.ascontiguousarray(Z, dtype=np.float64)
    F = forward(kind, params, Z, eps)
    T = F - (0.0 if G is None else np.asarray(G, dtype=np.float64))
    f = _compiled(kind, mode)
    prod = f.hvp if curvature == "hessian" else f.gvp
    extra = (eps,) if kind == "bn" else ()
    return LocalHessian(kind, prod.operator(*params, Z, T, *extra), Z.shape)


def closed_form(kind: str, params: Sequence[np.ndarray], Z: np.ndarray, eps: float = 1e-5) -> dict:
    """The seed's closed forms (batch norm: its approximation) in the sum convention and rop's
    layout: ``{"W": {name: H_W}, "z": [H_z of each sample]}``."""
    _check(kind, params, Z)
    n_in, m = Z.shape
    if kind == "fc":
        (W,) = params
        return {"W": {"W": np.kron(np.eye(W.shape[0]), Z @ Z.T)}, "z": [W.T @ W] * m}
    if kind == "skip":
        W1, W2 = params
        Hpre = W1 @ Z
        A = np.maximum(Hpre, 0.0)
        HW1 = np.zeros((W1.size, W1.size))
        Hz = []
        for j in range(m):
            WD = W2 * (Hpre[:, j] > 0.0)                  # W2 diag(relu'(W1 z_j))
            J1 = np.kron(WD, Z[:, j][None, :])            # ∂φ_j/∂vec(W1), C order
            HW1 += J1.T @ J1
            Jz = np.eye(n_in) + WD @ W1
            Hz.append(Jz.T @ Jz)
        return {"W": {"W1": HW1, "W2": np.kron(np.eye(n_in), A @ A.T)}, "z": Hz}
    (W,) = params
    X = W @ Z
    s2 = ((X - X.mean(axis=1, keepdims=True)) ** 2).mean(axis=1) + eps
    HW = np.zeros((W.size, W.size))
    n = W.shape[1]
    for i in range(W.shape[0]):
        HW[i * n:(i + 1) * n, i * n:(i + 1) * n] = Z @ Z.T / s2[i]
    Hz = (W.T / s2) @ W
    return {"W": {"W": HW}, "z": [Hz] * m}


# ----------------------------------------------------------------------------- the spectra
def marchenko_pastur_edges(c: float) -> tuple[float, float]:
    """(1 − √c)², (1 + √c)²: the edges of the Marchenko–Pastur law of ratio c for XᵀX, X with
    i.i.d. entries of variance 1/(the other dimension) — e.g. H_z = WᵀW for W (n_out × n_in) with
    N(0, 1/n_out) entries and c = n_in/n_out (for c > 1 the other n_in − n_out eigenvalues are 0)."""
    if c <= 0:
        raise ValueError(f"the ratio c must be positive, got {c}")
    return (1 - np.sqrt(c)) ** 2, (1 + np.sqrt(c)) ** 2


def marchenko_pastur_density(x: np.ndarray, c: float) -> np.ndarray:
    """The density of the nonzero eigenvalues' law between the edges (mass min(1, 1/c) for c > 1
    is renormalised to 1): √((λ₊ − x)(x − λ₋)) / (2π min(c, 1) x)."""
    lo, hi = marchenko_pastur_edges(c)
    x = np.asarray(x, dtype=np.float64)
    inside = (x > lo) & (x < hi)
    out = np.zeros_like(x)
    out[inside] = np.sqrt((hi - x[inside]) * (x[inside] - lo)) / (2 * np.pi * min(c, 1.0) * x[inside])
    return out


# ----------------------------------------------------------------------------- scale-amended SGD
def norm_2mu_sq(A: np.ndarray) -> float:
    """‖A‖²_{2,μ}: the mean over A's rows of their squared ℓ2 norms (= ‖A‖²_F / rows)."""
    A = np.asarray(A)
    if A.ndim != 2 or A.shape[0] == 0:
        raise ValueError(f"norm_2mu_sq needs a non-empty matrix, got shape {A.shape}")
    return float(np.sum(A * A)) / A.shape[0]


def bn_scales(Ws: Sequence[np.ndarray], normalised: Sequence[bool] | None = None):
    """The seed's factors for fully connected blocks with batch norm, ``(m_W, m_z)`` per block:
    m_{b,W} = 1/‖W_b‖²_{2,μ}, m_{b,z} = ‖W_bᵀ‖²_{2,μ}/‖W_b‖²_{2,μ}.  Blocks with
    ``normalised[b]`` False (an output layer without batch norm, which the seed's formulas do not
    cover) get 1 and 1: they are left as plain SGD and do not rescale the blocks below."""
    if normalised is None:
        normalised = [True] * len(Ws)
    if len(normalised) != len(Ws):
        raise ValueError(f"normalised has {len(normalised)} entries for {len(Ws)} weight matrices")
    m_W, m_z = [], []
    for W, bn in zip(Ws, normalised):
        if bn:
            r = norm_2mu_sq(W)
            m_W.append(1.0 / r)
            m_z.append(norm_2mu_sq(np.asarray(W).T) / r)
        else:
            m_W.append(1.0)
            m_z.append(1.0)
    return m_W, m_z


def scale_amended_gradients(grads: Sequence, m_W: Sequence[float], m_z: Sequence[float]) -> list:
    """Algorithm 2 of the seed: δ'W_b = δW_b / (m · m_{b,W}) with m the product of m_{c,z} over
    the blocks c above b (b = B first, m = 1 there).  ``grads[b]`` may be an array or a tuple of
    arrays (a block's weights and bias scale together)."""
    B = len(grads)
    if not len(m_W) == len(m_z) == B:
        raise ValueError(f"one m_W and one m_z per block: {B} gradients, {len(m_W)} m_W, "
                         f"{len(m_z)} m_z")
    out = [None] * B
    m = 1.0
    for b in range(B - 1, -1, -1):
        k = 1.0 / (m * m_W[b])
        g = grads[b]
        out[b] = tuple(k * x for x in g) if isinstance(g, (tuple, list)) else k * g
        m *= m_z[b]
    return out


class ScaleAmendedSGD:
    """SGD whose block gradients are scale-amended (:func:`scale_amended_gradients`), with the
    factors recomputed from the current weights at every step by ``scales(Ws)`` (default
    :func:`bn_scales`; ``normalised`` says which blocks have batch norm) and optional classical
    momentum.

    ``params[b]`` is block b's tuple of arrays, its weight matrix first (the one the factors are
    computed from); ``step(params, grads)`` returns the new parameters and never writes the old."""

    def __init__(self, lr: float, momentum: float = 0.0, normalised: Sequence[bool] | None = None,
                 scales: Callable | None = None):
        if not lr > 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.lr, self.momentum, self.normalised = lr, momentum, normalised
        self.scales = scales or (lambda Ws: bn_scales(Ws, self.normalised))
        self._velocity = None

    def step(self, params: Sequence[tuple], grads: Sequence[tuple]) -> list:
        if len(params) != len(grads):
            raise ValueError(f"{len(params)} parameter blocks but {len(grads)} gradient blocks")
        m_W, m_z = self.scales([p[0] for p in params])
        amended = scale_amended_gradients([tuple(g) for g in grads], m_W, m_z)
        if self.momentum:
            if self._velocity is None:
                self._velocity = [tuple(np.zeros_like(x) for x in g) for g in amended]
            self._velocity = [tuple(self.momentum * v - self.lr * x for v, x in zip(vs, g))
                              for vs, g in zip(self._velocity, amended)]
            return [tuple(p + v for p, v in zip(ps, vs)) for ps, vs in zip(params, self._velocity)]
        return [tuple(p - self.lr * x for p, x in zip(ps, g)) for ps, g in zip(params, amended)]
