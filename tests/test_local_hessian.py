"""rop.local_hessian: the local Hessians of back-matching losses (Zhang, Chen & Liu 2018), read off
rop's Hessian products, against closed forms derived and written out here independently (never
with the module under test), and scale-amended SGD against a step done by hand.

Each back-matching function is compiled once per process (python mode: these are a few matrix
products, and the suite's budget has no room for Numba's compile)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rop.local_hessian import (ScaleAmendedSGD, bn_scales, local_hessian, marchenko_pastur_edges,
                               scale_amended_gradients)

ROOT = Path(__file__).resolve().parent.parent


def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_fc_block_equals_closed_forms():
    rng = np.random.default_rng(0)
    W, Z, G = rng.normal(size=(3, 4)), rng.normal(size=(4, 6)), rng.normal(size=(3, 6))
    L = local_hessian("fc", (W,), Z, G)       # G ≠ 0: F is linear in W and in z, no G term
    # H_W: ∂(WZ)[a, j]/∂W[r, c] = δ_ar Z[c, j]; summed over samples, row r of W sees Σ_j z_j z_jᵀ
    HW = np.zeros((12, 12))
    for r in range(3):
        HW[4 * r:4 * r + 4, 4 * r:4 * r + 4] = sum(np.outer(Z[:, j], Z[:, j]) for j in range(6))
    assert rel(L.W["W"], HW) <= 1e-12
    for j in range(6):
        assert rel(L.z(j), W.T @ W) <= 1e-12
    # the Z–Z block couples no two samples: entry (i, j), (k, l) is (WᵀW)[i, k] δ_jl
    ZZ = np.einsum("ik,jl->ijkl", W.T @ W, np.eye(6)).reshape(24, 24)
    assert rel(L.ZZ(), ZZ) <= 1e-12


def test_skip_block_equals_closed_forms():
    rng = np.random.default_rng(1)
    n, k, m = 4, 5, 6
    W1, W2 = rng.normal(size=(k, n)), rng.normal(size=(n, k))
    Z, G = rng.normal(size=(n, m)), rng.normal(size=(n, m))
    L = local_hessian("skip", (W1, W2), Z, G)   # relu'' = 0 a.e.: no G term on the diagonal blocks
    act = (W1 @ Z > 0).astype(float)            # relu'(W1 z_j), k × m
    A = np.maximum(W1 @ Z, 0.0)
    HW1 = np.zeros((k * n, k * n))
    HW2 = np.zeros((n * k, n * k))
    for j in range(m):
        # φ_j[a] = Σ_r W2[a, r] relu(Σ_c W1[r, c] z_j[c])
        J1 = np.einsum("ar,r,c->arc", W2, act[:, j], Z[:, j]).reshape(n, k * n)
        J2 = np.einsum("ab,r->abr", np.eye(n), A[:, j]).reshape(n, n * k)
        HW1 += J1.T @ J1
        HW2 += J2.T @ J2
        Jz = np.eye(n) + (W2 * act[:, j]) @ W1   # I + ∂φ/∂z
        assert rel(L.z(j), Jz.T @ Jz) <= 1e-12
    assert rel(L.W["W1"], HW1) <= 1e-12
    assert rel(L.W["W2"], HW2) <= 1e-12


def _bn_exact(W, Z, eps):
    """BN's Jacobian per unit is (1/s)(I − 11ᵀ/m − y yᵀ/m); squared it is
    (1/s²)(I − 11ᵀ/m − c y yᵀ/m), c = 2 − ‖y‖²/m (1ᵀy = 0).  Returns the unit's s², y, c."""
    X = W @ Z
    Xc = X - X.mean(axis=1, keepdims=True)
    s2 = (Xc ** 2).mean(axis=1) + eps
    Y = Xc / np.sqrt(s2)[:, None]
    return s2, Y, 2 - (Y ** 2).sum(axis=1) / Z.shape[1]


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_bn_block_gauss_newton_is_the_derivation_and_the_approximation_error(eps):
    rng = np.random.default_rng(2)
    n_in, n_out = 4, 3
    errors = {}
    for m in (8, 32, 128):
        W = rng.normal(size=(n_out, n_in))
        Z = rng.normal(size=(n_in, m)) + 0.5     # not centred: the mean term shows
        G = rng.normal(size=(n_out, m))
        L = local_hessian("bn", (W,), Z, G, curvature="gauss-newton", eps=eps)
        s2, Y, c = _bn_exact(W, Z, eps)
        P = np.ones((m, m)) / m
        zbar = Z.mean(axis=1)
        for i in range(n_out):
            exact = Z @ (np.eye(m) - P - c[i] * np.outer(Y[i], Y[i]) / m) @ Z.T / s2[i]
            block = L.W["W"][i * n_in:(i + 1) * n_in, i * n_in:(i + 1) * n_in]
            assert rel(block, exact) <= 1e-12
            # the seed's approximation Σ_j z_j z_jᵀ / s_i² over-counts by a rank-2 PSD term
            over = Z @ Z.T / s2[i] - exact
            rank2 = (m * np.outer(zbar, zbar) + c[i] * np.outer(Z @ Y[i], Z @ Y[i]) / m) / s2[i]
            assert rel(over, rank2) <= 1e-12
            assert np.linalg.eigvalsh(over)[:-2].max() <= 1e-10 * np.abs(over).max()
        off = L.W["W"].copy()                    # units do not interact
        for i in range(n_out):
            off[i * n_in:(i + 1) * n_in, i * n_in:(i + 1) * n_in] = 0.0
        assert np.abs(off).max() <= 1e-12 * np.abs(L.W["W"]).max()
        approx_z = (W.T / s2) @ W                # the seed's H_z ≈ Σ_i w_i w_iᵀ / Var_i
        measured = []
        for j in range(m):
            shrink = 1 - 1 / m - c * Y[:, j] ** 2 / m
            exact = (W.T * (shrink / s2)) @ W
            assert rel(L.z(j), exact) <= 1e-12
            # off by Σ_i w_i w_iᵀ (1 + c_i y_ij²)/(m s_i²): at most max_i (1 + c_i y_ij²)/m of it
            err = np.linalg.norm(approx_z - L.z(j), 2) / np.linalg.norm(approx_z, 2)
            assert err <= np.max(1 + c * Y[:, j] ** 2) / m + 1e-12
            measured.append(err)
        errors[m] = np.median(measured)
    assert errors[8] > errors[32] > errors[128]   # O(1/m)


def test_bn_hessian_is_gauss_newton_at_zero_residual():
    rng = np.random.default_rng(3)
    W, Z = rng.normal(size=(3, 4)), rng.normal(size=(4, 8))
    H = local_hessian("bn", (W,), Z)            # G = 0: the target is the current output
    Gn = local_hessian("bn", (W,), Z, curvature="gauss-newton")
    assert rel(H.ZZ(), Gn.ZZ()) <= 1e-12 and rel(H.W["W"], Gn.W["W"]) <= 1e-12
    Hg = local_hessian("bn", (W,), Z, rng.normal(size=(3, 8)))
    assert rel(Hg.W["W"], Gn.W["W"]) > 1e-3     # BN is not linear: with G ≠ 0 the G term shows


def test_orthogonal_init_gives_condition_number_one():
    rng = np.random.default_rng(4)
    W, _ = np.linalg.qr(rng.normal(size=(12, 8)))   # 12 × 8, orthonormal columns: WᵀW = I
    L = local_hessian("fc", (W,), rng.normal(size=(8, 3)))
    lam = np.linalg.eigvalsh(L.z(0))
    assert abs(lam[-1] / lam[0] - 1) <= 1e-12
    assert np.abs(lam - 1).max() <= 1e-12


def test_gaussian_init_follows_marchenko_pastur():
    rng = np.random.default_rng(5)
    n_in, n_out = 60, 240                       # c = 1/4: edges 0.25 and 2.25
    W = rng.normal(size=(n_out, n_in)) / np.sqrt(n_out)
    lam = np.linalg.eigvalsh(local_hessian("fc", (W,), rng.normal(size=(n_in, 1))).z(0))
    lo, hi = 0.25, 2.25
    assert marchenko_pastur_edges(0.25) == pytest.approx((lo, hi))
    assert abs(lam[0] - lo) < 0.1 and abs(lam[-1] - hi) < 0.2
    assert abs(lam.mean() - 1) < 0.05           # E[WᵀW] = I


def test_scale_amended_step_by_hand():
    W1 = np.array([[1.0, 0.0], [0.0, 2.0], [2.0, 0.0]])   # rows² 1, 4, 4 (mean 3); cols² 5, 4 (mean 4.5)
    W2 = np.ones((4, 3))                                  # rows² 3 (mean 3); cols² 4 (mean 4)
    W3 = np.full((2, 4), 5.0)                             # the output layer: no batch norm
    g1, g2, g3 = np.full((3, 2), 1.0), np.full((4, 3), 2.0), np.full((2, 4), 3.0)
    b1, b2, b3 = np.zeros(3), np.zeros(4), np.zeros(2)
    gb1, gb2, gb3 = np.ones(3), np.ones(4), np.ones(2)
    # block 3: m = 1, m_W = 1 -> g3; m stays 1.  block 2: m_W = 1/3 -> 3 g2; m = 4/3.
    # block 1: m_W = 1/3, m = 4/3 -> g1 / (4/9) = 9/4 g1
    opt = ScaleAmendedSGD(lr=0.1, normalised=[True, True, False])
    new = opt.step([(W1, b1), (W2, b2), (W3, b3)], [(g1, gb1), (g2, gb2), (g3, gb3)])
    assert np.allclose(new[0][0], W1 - 0.1 * 2.25 * g1, rtol=0, atol=1e-15)
    assert np.allclose(new[0][1], b1 - 0.1 * 2.25 * gb1, rtol=0, atol=1e-15)
    assert np.allclose(new[1][0], W2 - 0.1 * 3.0 * g2, rtol=0, atol=1e-15)
    assert np.allclose(new[2][0], W3 - 0.1 * g3, rtol=0, atol=1e-15)
    assert np.array_equal(W1[1], [0.0, 2.0])              # the old parameters are not written
    m_W, m_z = bn_scales([W1, W2, W3], [True, True, False])
    assert m_W == pytest.approx([1 / 3, 1 / 3, 1.0]) and m_z == pytest.approx([1.5, 4 / 3, 1.0])
    # momentum 0.5: v1 = −lr g',  v2 = 0.5 v1 − lr g' (the factors at the new weights)
    mom = ScaleAmendedSGD(lr=0.1, momentum=0.5, normalised=[True])
    A = np.eye(2)                                         # rows² 1: m_W = 1
    p1 = mom.step([(A,)], [(np.ones((2, 2)),)])
    assert np.allclose(p1[0][0], A - 0.1)
    B = p1[0][0]                                          # rows² 0.81 + 0.01 = 0.82
    p2 = mom.step(p1, [(np.ones((2, 2)),)])
    assert np.allclose(p2[0][0], B + 0.5 * (-0.1) - 0.1 * 0.82)


def test_scale_amended_gradients_order_and_errors():
    out = scale_amended_gradients([np.ones(1), np.ones(1)], m_W=[2.0, 4.0], m_z=[3.0, 5.0])
    assert out[1] == pytest.approx([0.25]) and out[0] == pytest.approx([1 / (5 * 2)])
    with pytest.raises(ValueError, match="one m_W and one m_z per block"):
        scale_amended_gradients([np.ones(1)], m_W=[1.0, 1.0], m_z=[1.0])
    with pytest.raises(ValueError, match="lr must be positive"):
        ScaleAmendedSGD(lr=0.0)


def test_errors_name_the_argument_and_shapes():
    rng = np.random.default_rng(6)
    with pytest.raises(ValueError, match=r"W has shape \(3, 5\) but Z has 4 rows"):
        local_hessian("fc", (rng.normal(size=(3, 5)),), rng.normal(size=(4, 2)))
    with pytest.raises(ValueError, match=r"G .* must have the block output's shape \(3, 2\)"):
        local_hessian("fc", (rng.normal(size=(3, 4)),), rng.normal(size=(4, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="kind must be one of"):
        local_hessian("conv", (rng.normal(size=(3, 4)),), rng.normal(size=(4, 2)))
    with pytest.raises(ValueError, match=r"W1 \(k, 4\) and W2 \(4, k\)"):
        local_hessian("skip", (rng.normal(size=(5, 4)), rng.normal(size=(5, 4))),
                      rng.normal(size=(4, 2)))
    with pytest.raises(ValueError, match="curvature must be"):
        local_hessian("fc", (rng.normal(size=(3, 4)),), rng.normal(size=(4, 2)), curvature="fisher")


def test_example_quick(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "local_hessian.py"), "--quick",
         "--plot", str(tmp_path / "train.png"), "--spectra", str(tmp_path / "spectra.png"),
         "--results", str(tmp_path / "r.md")],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tmp_path / "train.png").stat().st_size > 1000
    assert (tmp_path / "spectra.png").stat().st_size > 1000
    text = (tmp_path / "r.md").read_text()
    assert "| scale-amended SGD |" in text and "| SGD |" in text and "VGG13" in text
