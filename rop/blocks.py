"""Block-diagonal curvature of feed-forward networks: Botev, Ritter & Barber (2017), "Practical
Gauss-Newton optimisation for deep learning".

For a network h_l = W_l a_{l-1} + b_l, a_l = f_l(h_l) (l < L), output z = h_L, and a loss
E = (1/B) Σ_n ℓ(z_n, t_n), the Hessian of one sample with respect to W_l is (a_{l-1} a_{l-1}ᵀ) ⊗
𝓗_l, where the *pre-activation Hessian* 𝓗_l = ∂²ℓ/∂h_l² obeys

    𝓗_L = ∂²ℓ/∂z²,    𝓗_l = B_l W_{l+1}ᵀ 𝓗_{l+1} W_{l+1} B_l + D_l,
    B_l = diag f'(h_l),  D_l = diag(f''(h_l) ⊙ ∂ℓ/∂a_l);

the Gauss-Newton version 𝒢_l drops D_l.  This module computes, exactly, those per-sample
matrices, the weight and bias blocks of H and of G they give, and the two Kronecker-factored
approximations of the paper, KFLR and KFRA.

**Convention** (one, everywhere): E is the *mean* over the batch of per-sample losses, with
ℓ = ½‖z − t‖² for squared error (so the gradient of the output is z − t and 𝓗_L = I),
ℓ = Σ_k softplus(z_k) − t_k z_k for logistic outputs (binary cross-entropy of σ(z), summed over
units), ℓ = −Σ_k t_k log softmax(z)_k for softmax outputs (the columns of T sum to one).
Examples are *columns* (X is inputs × batch, as in ``examples/deep_mlp.py``: ``W @ a + b[:, None]``).
A block of a weight is in rop's flat layout (``f.hvp.operator(...).layout``): W raveled in C
order, so a Kronecker product reads 𝓗 ⊗ (a aᵀ) here where the paper (column-stacking vec) writes
(a aᵀ) ⊗ 𝓗.

**Where the derivatives come from.**  Nothing is differentiated by hand: f'(h) is R{f(h)}
along ones (rop's R-code of the activation), f''(h) ⊙ g is R{·} of *that generated R-code* (R
applied twice; :mod:`rop.blocks_derive`), and the columns of the output Hessian are R{·} of the
loss's gradient along unit directions.  The network itself is described by its weights and the
names (or functions) of its activations and loss; :meth:`Network.gradient` returns the gradient
the description implies, to compare with your own backprop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .blocks_derive import Activation, Loss, activation, loss

__all__ = ["Network", "Pass", "LayerBlock", "KroneckerFactors", "Activation", "Loss",
           "activation", "loss", "ACTIVATIONS", "LOSSES"]

# KFLR back-propagates K columns per sample: at most this many numbers at once (1 GB)
KFLR_NUMBERS = 1 << 27
ACTIVATIONS = ("tanh", "sigmoid", "softplus", "relu", "identity")
LOSSES = ("squared", "logistic", "softmax")


@dataclass
class LayerBlock:
    """The diagonal block of one layer of H (or G), in rop's flat layout of ``W`` (m × n, C order)
    and ``b`` (m,).  ``W``: (mn, mn); ``Wb``: (mn, m), the W–b cross block; ``b``: (m, m)."""
    W: np.ndarray
    Wb: np.ndarray
    b: np.ndarray

    @property
    def joint(self) -> np.ndarray:
        """The block of (vec W, b) together, W first: (mn + m) × (mn + m)."""
        return np.block([[self.W, self.Wb], [self.Wb.T, self.b]])


@dataclass
class KroneckerFactors:
    """One layer's Kronecker factors: the weight block ≈ ``G ⊗ Q`` in rop's layout of W (C order;
    the paper's Q ⊗ 𝒢 under column-stacking vec), the bias block ≈ ``G``, the W–b cross block ≈
    ``G ⊗ q`` (q the mean input, a column).  ``G`` (m × m) is the batch-averaged pre-activation
    Gauss-Newton matrix (KFLR) or its recursive approximation (KFRA); ``Q`` (n × n) is the mean
    of a_{l-1} a_{l-1}ᵀ.  The bias is kept separate (BackPACK's convention); ``homogeneous``
    gives Q̄ = mean ā āᵀ with ā = (a, 1), for which (vec W, b) ≈ blocks of G ⊗ Q̄."""
    G: np.ndarray
    Q: np.ndarray
    q: np.ndarray

    def weight_block(self) -> np.ndarray:
        return np.kron(self.G, self.Q)

    def bias_block(self) -> np.ndarray:
        return self.G

    @property
    def homogeneous(self) -> np.ndarray:
        """Q̄ = mean over the batch of ā āᵀ, ā = (a_{l-1}, 1): (n + 1) × (n + 1)."""
        n = self.Q.shape[0]
        out = np.empty((n + 1, n + 1))
        out[:n, :n], out[:n, n], out[n, :n], out[n, n] = self.Q, self.q, self.q, 1.0
        return out


@dataclass
class Pass:
    """One forward and backward pass, per layer l = 0 … L−1 (layer l maps a[l] to h[l]):
    ``a[l]`` its input (a[0] = X), ``h[l]`` its pre-activation, ``fprime[l]`` f'(h[l]) (ones for
    the output layer), ``delta[l]`` ∂ℓ/∂h[l] per sample (not divided by B), ``grad_out`` ∂ℓ/∂z,
    ``H_diag`` the diagonals (B, K) of the per-sample output Hessians for an elementwise loss
    (squared error, logistic), else None and ``H_full`` the Hessians (B, K, K); ``H_out``
    the Hessians either way; ``W`` the weights as float64."""
    W: list
    a: list
    h: list
    fprime: list
    delta: list
    grad_out: np.ndarray
    H_full: np.ndarray | None
    H_diag: np.ndarray | None = None

    @property
    def H_out(self) -> np.ndarray:
        if self.H_full is not None:
            return self.H_full
        K = self.H_diag.shape[1]
        return self.H_diag[:, :, None] * np.eye(K)

    def output_factor(self, s: int, n: int) -> np.ndarray:
        """C with C Cᵀ = 𝓗_L for samples s … s+n−1, as a (K, n·K) matrix of K columns per
        sample (KFLR's start)."""
        if self.H_diag is None:
            C = _psd_factor(self.H_full[s:s + n])                  # (n, K, K)
            K = C.shape[2]
            return np.ascontiguousarray(C.transpose(1, 0, 2)).reshape(K, n * K)
        d = np.sqrt(np.clip(self.H_diag[s:s + n], 0.0, None))      # (n, K)
        K = d.shape[1]
        C = np.zeros((K, n, K))
        idx = np.arange(K)
        C[idx, :, idx] = d.T
        return C.reshape(K, n * K)

    def mean_output_hessian(self) -> np.ndarray:
        if self.H_full is not None:
            return self.H_full.mean(axis=0)
        return np.diag(self.H_diag.mean(axis=0))

    @property
    def batch(self) -> int:
        return self.a[0].shape[1]


class Network:
    """A feed-forward network described for its curvature: ``activation`` (a name in
    :data:`ACTIVATIONS`, a function of one array written for rop, or one of those per hidden layer)
    and ``loss`` (a name in :data:`LOSSES`, or a function ``gradient(Z, T)`` returning ∂ℓ/∂Z per
    column, written for rop).  The last layer is linear: its output z is what the loss reads
    (the logits of ``"logistic"`` and ``"softmax"``).  Every method takes ``(Ws, bs, X, T)``:
    lists of weights (m_l × n_l) and biases (m_l,), inputs (n_0 × B) and targets (K × B).

    The activations' and the loss's derivatives are compiled by rop on the first call (a few
    tenths of a second each, kept for the process)."""

    def __init__(self, activation: str | Callable | Sequence = "tanh",
                 loss: str | Callable = "squared"):
        self._activation = activation
        self.loss = _loss(loss)

    # ------------------------------------------------------------------ the passes
    def activations(self, L: int) -> list:
        """The :class:`Activation` of each hidden layer of an L-layer network."""
        act = self._activation
        if isinstance(act, (list, tuple)):
            if len(act) != L - 1:
                raise ValueError(f"activation: {len(act)} activations given for a network of {L} "
                                 f"layers, which has {L - 1} hidden layers (the last is linear)")
            return [_activation(a) for a in act]
        return [_activation(act)] * (L - 1)

    def forward_backward(self, Ws, bs, X, T) -> Pass:
        """The forward pass, the output's gradient and Hessian, and the backward pass of δ_l =
        ∂ℓ/∂h_l per sample: everything the recursions read."""
        Ws, bs, X, T = _check(Ws, bs, X, T)
        L = len(Ws)
        acts = self.activations(L)
        a, h, fp = [X], [], []
        for l in range(L):
            h.append(Ws[l] @ a[l] + bs[l][:, None])
            if l < L - 1:
                y, d = acts[l].value_and_derivative(h[l])
                a.append(y)
                fp.append(d)
            else:
                fp.append(np.ones_like(h[l]))
        grad_out = self.loss.gradient(h[L - 1], T)
        delta = [None] * L
        delta[L - 1] = grad_out
        for l in range(L - 2, -1, -1):
            delta[l] = fp[l] * (Ws[l + 1].T @ delta[l + 1])
        if self.loss.elementwise:
            return Pass(Ws, a, h, fp, delta, grad_out, None, self.loss.diagonals(h[L - 1], T))
        return Pass(Ws, a, h, fp, delta, grad_out, self.loss.hessians(h[L - 1], T))

    def gradient(self, Ws, bs, X, T) -> tuple[list, list]:
        """(dWs, dbs) of E = mean ℓ: what your backprop should return for this description."""
        p = self.forward_backward(Ws, bs, X, T)
        B = p.batch
        return [d @ a.T / B for d, a in zip(p.delta, p.a)], [d.sum(axis=1) / B for d in p.delta]

    def preactivation_hessians(self, Ws, bs, X, T, *, gauss_newton: bool = False,
                               pass_: Pass | None = None) -> list:
        """Per-sample 𝓗_l (or 𝒢_l with ``gauss_newton=True``), one array (B, m_l, m_l) per layer,
        by Botev's recursion from 𝓗_L, the output Hessian."""
        p = pass_ or self.forward_backward(Ws, bs, X, T)
        Ws = p.W
        L = len(Ws)
        acts = self.activations(L)
        out = [None] * L
        out[L - 1] = p.H_out
        for l in range(L - 2, -1, -1):
            W = Ws[l + 1]
            M = np.einsum("ji,njk,kl->nil", W, out[l + 1], W)     # W_{l+1}ᵀ 𝓗_{l+1} W_{l+1}
            F = p.fprime[l].T                                    # (B, m): f'(h) per sample
            M = F[:, :, None] * M * F[:, None, :]                # B_l (…) B_l
            if not gauss_newton:                                 # + D_l = diag(f''(h) ∂ℓ/∂a)
                g = Ws[l + 1].T @ p.delta[l + 1]                 # ∂ℓ/∂a_l
                D = acts[l].second_derivative_times(p.h[l], g).T
                idx = np.arange(M.shape[1])
                M[:, idx, idx] += D
            out[l] = M
        return out

    def hessian_blocks(self, Ws, bs, X, T) -> list:
        """The exact diagonal blocks of the Hessian of E = mean ℓ, one :class:`LayerBlock` per
        layer: W block (1/B) Σ_n 𝓗_l ⊗ a aᵀ, bias block (1/B) Σ_n 𝓗_l."""
        return self._blocks(Ws, bs, X, T, gauss_newton=False)

    def gauss_newton_blocks(self, Ws, bs, X, T) -> list:
        """The exact diagonal blocks of the Gauss-Newton matrix G = Jᵀ 𝓗_L J of E = mean ℓ."""
        return self._blocks(Ws, bs, X, T, gauss_newton=True)

    def _blocks(self, Ws, bs, X, T, gauss_newton):
        p = self.forward_backward(Ws, bs, X, T)
        Hs = self.preactivation_hessians(Ws, bs, X, T, gauss_newton=gauss_newton, pass_=p)
        B, out = p.batch, []
        for Hl, a in zip(Hs, p.a):
            m, n = Hl.shape[1], a.shape[0]
            W = np.einsum("nik,jn,ln->ijkl", Hl, a, a).reshape(m * n, m * n) / B
            Wb = np.einsum("nik,jn->ijk", Hl, a).reshape(m * n, m) / B
            out.append(LayerBlock(W, Wb, Hl.sum(axis=0) / B))
        return out

    # ------------------------------------------------------------------ Kronecker factors
    def kflr(self, Ws, bs, X, T) -> list:
        """KFLR: 𝒢_l = (1/B) Σ_n C_l C_lᵀ, the K columns of a factor C_L of each sample's output
        Hessian (𝓗_L = C_L C_Lᵀ) back-propagated by C_l = B_l W_{l+1}ᵀ C_{l+1}.  This is the exact
        batch mean of the pre-activation GN matrices; only G ⊗ Q (a product of means) approximates
        the mean of products.  One :class:`KroneckerFactors` per layer."""
        p = self.forward_backward(Ws, bs, X, T)
        Ws = p.W
        B, L = p.batch, len(p.a)
        K = p.grad_out.shape[0]
        Gs = [np.zeros((W.shape[0], W.shape[0])) for W in Ws]
        # samples in chunks whose B·K columns fit KFLR_NUMBERS numbers at the widest layer
        step = max(1, KFLR_NUMBERS // (K * max(W.shape[0] for W in Ws)))
        for s in range(0, B, step):
            n = min(B, s + step) - s
            # 𝓗_L = C Cᵀ, the n·K columns side by side, sample by sample: (m, n·K), so that
            # back-propagating them through a layer is one matrix product and G one more
            C = p.output_factor(s, n)
            for l in range(L - 1, -1, -1):
                if l < L - 1:
                    C = Ws[l + 1].T @ C
                    C = (C.reshape(-1, n, K) * p.fprime[l][:, s:s + n, None]).reshape(-1, n * K)
                Gs[l] += C @ C.T
        Gs = [G / B for G in Gs]
        return [_factors(G, a) for G, a in zip(Gs, p.a)]

    def kfra(self, Ws, bs, X, T) -> list:
        """KFRA: one batch-averaged matrix, 𝒢̄_L = mean 𝓗_L, 𝒢̄_l = E[b bᵀ] ⊙ (W_{l+1}ᵀ 𝒢̄_{l+1}
        W_{l+1}) with b = f'(h_l).  Equal to KFLR's at batch size 1 and for linear layers."""
        p = self.forward_backward(Ws, bs, X, T)
        Ws = p.W
        G = p.mean_output_hessian()
        Gs = [None] * len(Ws)
        Gs[-1] = G
        for l in range(len(Ws) - 2, -1, -1):
            F = p.fprime[l]
            G = (F @ F.T / p.batch) * (Ws[l + 1].T @ G @ Ws[l + 1])
            Gs[l] = G
        return [_factors(G, a) for G, a in zip(Gs, p.a)]


# ---------------------------------------------------------------------------------- helpers

_DERIVED: dict = {}


def _activation(a) -> Activation:
    if isinstance(a, Activation):
        return a
    key = ("activation", a)
    if key not in _DERIVED:
        _DERIVED[key] = activation(a)
    return _DERIVED[key]


def _loss(l) -> Loss:
    if isinstance(l, Loss):
        return l
    key = ("loss", l)
    if key not in _DERIVED:
        _DERIVED[key] = loss(l)
    return _DERIVED[key]


def _factors(G, a) -> KroneckerFactors:
    B = a.shape[1]
    return KroneckerFactors(G, a @ a.T / B, a.mean(axis=1))


def _psd_factor(H: np.ndarray) -> np.ndarray:
    """C with C Cᵀ = H for each (K × K) H of a stack: the eigenvectors scaled by √λ.  The loss is
    convex in z, so λ ≥ 0 up to rounding; rounding below zero is clipped.  A diagonal H (a
    logistic or squared-error output) is its own eigendecomposition: C = √H."""
    idx = np.arange(H.shape[1])
    diag = H[:, idx, idx]
    if np.array_equal(H, np.zeros_like(H) + diag[:, :, None] * np.eye(H.shape[1])):
        return np.sqrt(np.clip(diag, 0.0, None))[:, :, None] * np.eye(H.shape[1])
    lam, U = np.linalg.eigh(H)
    return U * np.sqrt(np.clip(lam, 0.0, None))[:, None, :]


def _check(Ws, bs, X, T):
    """The arrays as float64, or a ValueError naming the argument and the shapes."""
    if not isinstance(Ws, (list, tuple)) or not isinstance(bs, (list, tuple)):
        raise ValueError("Ws and bs must be lists (one weight matrix and one bias vector per layer), "
                         f"got {type(Ws).__name__} and {type(bs).__name__}")
    if len(Ws) != len(bs) or not Ws:
        raise ValueError(f"Ws and bs: {len(Ws)} weight matrices and {len(bs)} bias vectors; "
                         "give one of each per layer (at least one layer)")
    Ws = [np.asarray(W, dtype=np.float64) for W in Ws]
    bs = [np.asarray(b, dtype=np.float64) for b in bs]
    X, T = np.asarray(X, dtype=np.float64), np.asarray(T, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be inputs × batch (examples as columns), got shape {X.shape}")
    width = X.shape[0]
    for l, (W, b) in enumerate(zip(Ws, bs)):
        if W.ndim != 2 or W.shape[1] != width:
            raise ValueError(f"Ws[{l}] has shape {W.shape}; expected ({b.shape[0] if b.ndim else 'm'},"
                             f" {width}) to take the {'input X' if l == 0 else f'output of Ws[{l - 1}]'}"
                             f" of {width} rows")
        if b.shape != (W.shape[0],):
            raise ValueError(f"bs[{l}] has shape {b.shape}; expected ({W.shape[0]},) to match "
                             f"Ws[{l}] of shape {W.shape}")
        width = W.shape[0]
    if T.shape != (width, X.shape[1]):
        raise ValueError(f"T has shape {T.shape}; expected {(width, X.shape[1])}: outputs × batch, "
                         f"the last layer's {width} outputs for the {X.shape[1]} columns of X")
    return Ws, bs, X, T
