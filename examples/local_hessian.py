"""Local Hessians of back-propagation (Zhang, Chen & Liu 2018; seed 002): SGD against scale-amended
SGD on a batch-norm MLP, and the local Hessians' spectra at initialisation from rop's products.

**Training.**  scikit-learn's 8×8 digits (shipped with the wheel: no download), features
standardised, 1500 training and 297 test images.  The network: three fully connected blocks with
batch norm and ReLU, z_b = relu(BN(W_b z_{b−1})), widths 64-128-128-64, then a linear softmax
layer W_4 z_3 + c with the mean cross-entropy; its backprop is written by hand below and checked
against central differences.  W_b ~ N(0, 1/n_in).  Plain SGD and scale-amended SGD (Algorithm 2,
:class:`rop.local_hessian.ScaleAmendedSGD` with the seed's factors for FC+BN blocks; the output
layer is not a BN block and is left as SGD) run for the same epochs of mini-batches of 64, five
seeds (initialisation and batch order), each over a grid of learning rates; the best rate of each
method (median final training loss over the seeds) is reported with its median and min–max.

**Spectra.**  The local Hessians H_z = WᵀW of fully connected blocks at Gaussian init (entries of
variance σ² = 1/n_in, the training init), read off ``.hvp.operator`` of the block's back-matching
loss (``rop.local_hessian.local_hessian``), against the Marchenko–Pastur law: the eigenvalues of
H_z / (n_out σ²) = H_z · n_in/n_out fill [(1 − √c)², (1 + √c)²] with c = n_in/n_out (for c > 1,
n_in − n_out of them are 0).  H_W = I ⊗ Σ_j z_j z_jᵀ for a Gaussian batch Z (m samples): H_W / m
has the edges of c = n_in/m.  Orthogonal init gives H_z = I (cond 1), and a skip block's
(I + ∂φ/∂z)ᵀ(I + ∂φ/∂z) stays well conditioned where the square fully connected block's is not.

The paper's own experiments (VGG on CIFAR, GPU-days) are printed as context only.

Run:  python examples/local_hessian.py [--quick] [--plot FILE] [--spectra FILE] [--results FILE]
"""

import argparse
import os
import sys
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")    # small matrices on shared cores (see hessian_free.py)

import numpy as np  # noqa: E402

from rop.local_hessian import (ScaleAmendedSGD, bn_scales, local_hessian,  # noqa: E402
                               marchenko_pastur_density, marchenko_pastur_edges)

ROOT = Path(__file__).resolve().parent.parent
EPS = 1e-5

# The seed's Table 1 (test accuracy, %), for context: VGG on CIFAR with BN, on GPUs.
PAPER_TABLE = """| method | C10 VGG11 | C10 VGG13 | C10 VGG16 | C10 VGG19 | C100 VGG11 | C100 VGG13 | C100 VGG16 | C100 VGG19 |
|---|---|---|---|---|---|---|---|---|
| SGD | 92.34 | 93.90 | 93.72 | 93.47 | 71.84 | 74.07 | 72.86 | 71.35 |
| LARS | 91.81 | 93.40 | 93.47 | 93.48 | 67.26 | 70.35 | 69.90 | 69.52 |
| LSALR | 92.58 | 93.68 | 93.35 | 93.46 | 71.14 | 73.74 | 73.14 | 70.76 |
| scale-amended SGD (paper) | 92.45 | 94.11 | 93.90 | 93.88 | 73.39 | 75.32 | 74.68 | 72.82 |"""


# ----------------------------------------------------------------------------- the network
def forward_backward(params, X, Y):
    """Mean cross-entropy and its gradient for the BN MLP; ``params`` is a list of per-block
    tuples: (W,) for the BN blocks, (W, c) for the output layer.  X is 64 × B, Y one-hot 10 × B."""
    z, caches = X, []
    for (W,) in params[:-1]:
        H = W @ z
        Hc = H - H.mean(axis=1, keepdims=True)
        s = np.sqrt((Hc * Hc).mean(axis=1, keepdims=True) + EPS)
        xhat = Hc / s
        caches.append((z, xhat, s))
        z = np.maximum(xhat, 0.0)
    W, c = params[-1]
    logits = W @ z + c[:, None]
    logits -= logits.max(axis=0)
    P = np.exp(logits)
    P /= P.sum(axis=0)
    B = X.shape[1]
    loss = -float(np.sum(Y * np.log(P + 1e-300))) / B
    d = (P - Y) / B
    grads = [None] * len(params)
    grads[-1] = (d @ z.T, d.sum(axis=1))
    dz = W.T @ d
    for b in range(len(params) - 2, -1, -1):
        zin, xhat, s = caches[b]
        dx = dz * (xhat > 0)
        dH = (dx - dx.mean(axis=1, keepdims=True) - xhat * (dx * xhat).mean(axis=1, keepdims=True)) / s
        grads[b] = (dH @ zin.T,)
        dz = params[b][0].T @ dH
    return loss, grads, P


def init(widths, rng):
    params = [(rng.normal(size=(o, i)) / np.sqrt(i),) for i, o in zip(widths[:-2], widths[1:-1])]
    params.append((rng.normal(size=(widths[-1], widths[-2])) / np.sqrt(widths[-2]),
                   np.zeros(widths[-1])))
    return params


def check_gradient(params, X, Y, rng):
    """Central differences on a few entries of every weight: the hand-written backprop is right."""
    _, grads, _ = forward_backward(params, X, Y)
    worst = 0.0
    for b, block in enumerate(params):
        for k, A in enumerate(block):
            for _ in range(3):
                idx = tuple(rng.integers(0, n) for n in A.shape)
                h = 1e-6
                plus = [tuple(a.copy() for a in blk) for blk in params]
                minus = [tuple(a.copy() for a in blk) for blk in params]
                plus[b][k][idx] += h
                minus[b][k][idx] -= h
                fd = (forward_backward(plus, X, Y)[0] - forward_backward(minus, X, Y)[0]) / (2 * h)
                worst = max(worst, abs(fd - grads[b][k][idx]) / max(1e-8, abs(fd)))
    assert worst < 1e-4, worst
    return worst


def digits(quick):
    from sklearn.datasets import load_digits
    data = load_digits()
    rng = np.random.default_rng(12345)            # one fixed split for every seed
    order = rng.permutation(len(data.target))
    n_train = 600 if quick else 1500
    tr, te = order[:n_train], order[n_train:]
    mu, sd = data.data[tr].mean(axis=0), data.data[tr].std(axis=0)
    sd[sd == 0] = 1.0
    X = ((data.data - mu) / sd).T
    Y = np.eye(10)[data.target].T
    return (np.ascontiguousarray(X[:, tr]), np.ascontiguousarray(Y[:, tr]),
            np.ascontiguousarray(X[:, te]), data.target[te])


def train(method, lr, widths, X, Y, epochs, batch, seed):
    """Training loss on the whole training set after each epoch (index 0: at init)."""
    rng = np.random.default_rng(seed)
    params = init(widths, rng)
    opt = ScaleAmendedSGD(lr, normalised=[True] * (len(params) - 1) + [False]) \
        if method == "scale-amended SGD" else None
    curve = [forward_backward(params, X, Y)[0]]
    n = X.shape[1]
    for _ in range(epochs):
        perm = rng.permutation(n)
        for s in range(0, n - batch + 1, batch):
            idx = perm[s:s + batch]
            _, grads, _ = forward_backward(params, X[:, idx], Y[:, idx])
            if opt is None:
                params = [tuple(p - lr * g for p, g in zip(ps, gs)) for ps, gs in zip(params, grads)]
            else:
                params = opt.step(params, grads)
        curve.append(forward_backward(params, X, Y)[0] if np.all(np.isfinite(params[0][0]))
                     else np.inf)
    return np.array(curve), params


def accuracy(params, X, labels):
    """Test accuracy with the batch statistics of the test set itself (no running averages)."""
    _, _, P = forward_backward(params, X, np.zeros((10, X.shape[1])))
    return float(np.mean(P.argmax(axis=0) == labels))


# ----------------------------------------------------------------------------- the spectra
def spectra(quick):
    """Eigenvalues of local Hessians at init, each from rop's Hv of the block's back-matching
    loss (``local_hessian``), with the prediction it is compared with."""
    rng = np.random.default_rng(0)
    w = (16, 32, 16) if quick else (64, 128, 64)    # the network's widths 64-128(-128)-64
    out = []
    for n_in, n_out in ((w[0], w[1]), (w[1], w[1]), (w[1], w[2])):
        W = rng.normal(size=(n_out, n_in)) / np.sqrt(n_in)           # σ² = 1/n_in
        lam = np.linalg.eigvalsh(local_hessian("fc", (W,), rng.normal(size=(n_in, 1))).z(0))
        c = n_in / n_out
        out.append(dict(name=f"H_z, FC {n_in}→{n_out}, Gaussian", lam=lam * n_in / n_out, c=c,
                        scaling="H_z · n_in/n_out", zeros=max(0, n_in - n_out)))
    n_in, m = w[0], 4 * w[0]
    Z = rng.normal(size=(n_in, m))
    L = local_hessian("fc", (rng.normal(size=(2, n_in)),), Z)   # H_W = I_2 ⊗ ZZᵀ: n_in eigenvalues twice
    lam = np.linalg.eigvalsh(L.W["W"])
    out.append(dict(name=f"H_W, FC, Gaussian batch {n_in}×{m}", lam=lam / m, c=n_in / m,
                    scaling="H_W / m", zeros=0))
    Q, _ = np.linalg.qr(rng.normal(size=(w[1], w[1])))
    lam = np.linalg.eigvalsh(local_hessian("fc", (Q,), rng.normal(size=(w[1], 1))).z(0))
    out.append(dict(name=f"H_z, FC {w[1]}→{w[1]}, orthogonal", lam=lam, c=None, scaling="H_z",
                    zeros=0))
    n, k = w[1], w[1]
    W1 = rng.normal(size=(k, n)) / np.sqrt(n)
    W2 = rng.normal(size=(n, k)) * 0.5 / np.sqrt(k)      # a residual branch of gain ~0.5
    lam = np.linalg.eigvalsh(local_hessian("skip", (W1, W2), rng.normal(size=(n, 1))).z(0))
    out.append(dict(name=f"H_z, skip {n}→{k}→{n}, Gaussian", lam=lam, c=None,
                    scaling="H_z", zeros=0))
    return out


def spectra_table(rows):
    lines = ["| local Hessian | scaling | n | c | λmin | λmax | MP edges (1 ± √c)² | cond |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lam = r["lam"]
        nz = lam[r["zeros"]:]
        edges = "—" if r["c"] is None else "{:.3f}, {:.3f}".format(*marchenko_pastur_edges(r["c"]))
        cond = lam[-1] / lam[0] if lam[0] > 1e-12 * lam[-1] else np.inf
        zeros = f" ({r['zeros']} zero)" if r["zeros"] else ""
        c = "—" if r["c"] is None else f"{r['c']:.3g}"
        lines.append(f"| {r['name']} | {r['scaling']} | {len(lam)} | {c} | {nz[0]:.4f}{zeros} | "
                     f"{lam[-1]:.4f} | {edges} | {cond:.4g} |")
    return "\n".join(lines)


def plot_spectra(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 3, figsize=(14, 7.5))
    for ax, r in zip(axes.flat, rows):
        lam = r["lam"][r["zeros"]:]
        hi = lam.max() * 1.05 + 0.05
        span = (0, hi) if r["c"] is not None else (min(lam.min(), 1.0) - 0.25, max(lam.max(), 1.0) + 0.25)
        ax.hist(lam, bins=40, range=span, density=True, alpha=0.6,
                label="eigenvalues (rop's Hv, dense)")
        if r["c"] is not None:
            x = np.linspace(1e-4, hi, 800)
            ax.plot(x, marchenko_pastur_density(x, r["c"]), "k-", lw=1.2, label="Marchenko–Pastur")
            for e in marchenko_pastur_edges(r["c"]):
                ax.axvline(e, color="r", ls="--", lw=0.8)
            ax.set_ylim(0, min(ax.get_ylim()[1], 4.0))
        ax.set_title(f"{r['name']}\n{r['scaling']}" + (f", c = {r['c']:.3g}" if r["c"] else "")
                     + (f", {r['zeros']} zeros not shown" if r["zeros"] else ""), fontsize=9)
        ax.set_xlabel("eigenvalue")
        ax.legend(fontsize=7)
    fig.suptitle("Local Hessians at initialisation (red: the Marchenko–Pastur edges)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_training(curves, best, epochs, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (method, lr), color in zip(best.items(), ("C0", "C1")):
        C = np.array(curves[method, lr])
        e = np.arange(epochs + 1)
        ax.plot(e, np.median(C, axis=0), color=color, label=f"{method} (lr {lr:g}), median of {len(C)}")
        ax.fill_between(e, C.min(axis=0), C.max(axis=0), color=color, alpha=0.2)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (mean cross-entropy)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- the experiment
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small network, few epochs (CI, < 60 s)")
    ap.add_argument("--plot", metavar="FILE", help="training loss against epoch")
    ap.add_argument("--spectra", metavar="FILE", help="the local Hessians' spectra")
    ap.add_argument("--results", metavar="FILE", help="write the tables (Markdown) here")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    X, Y, Xt, labels = digits(a.quick)
    widths = [64, 32, 32, 16, 10] if a.quick else [64, 128, 128, 64, 10]
    epochs, batch, seeds = (6, 64, 5) if a.quick else (20, 64, 5)
    rates = [0.1, 0.3] if a.quick else [0.1, 0.3, 1.0, 3.0]
    methods = ("SGD", "scale-amended SGD")

    fd = check_gradient(init(widths, np.random.default_rng(0)), X[:, :32], Y[:, :32],
                        np.random.default_rng(1))
    config = (f"digits: {X.shape[1]} training images, {Xt.shape[1]} test; network "
              f"{'-'.join(map(str, widths))} (FC+BN+ReLU blocks, softmax output); W ~ N(0, 1/n_in); "
              f"{epochs} epochs of mini-batches of {batch}; seeds 0–{seeds - 1}; rates {rates} per "
              f"method, the best by median final training loss; backprop checked by central "
              f"differences (worst relative error {fd:.1e})")

    # the seed's factors at init, against the local Hessians from rop's products on the
    # network's own BN block 2 (its input: block 1's output on a batch)
    p0 = init(widths, np.random.default_rng(0))
    zb = X[:, :batch]
    H1 = p0[0][0] @ zb
    H1c = H1 - H1.mean(axis=1, keepdims=True)
    z1 = np.maximum(H1c / np.sqrt((H1c ** 2).mean(axis=1, keepdims=True) + EPS), 0.0)
    L2 = local_hessian("bn", (p0[1][0],), z1, eps=EPS)
    tr_z = np.mean([np.trace(L2.z(j)) for j in range(4)]) / widths[1]
    m_W, m_z = bn_scales([p[0] for p in p0], [True] * 3 + [False])
    scal = (f"BN block 2 at init: the seed's m_z = {m_z[1]:.3f}; mean eigenvalue of its per-sample "
            f"local H_z from rop's Hv (exact, batch statistics included) {tr_z:.3f} "
            f"(block input: ReLU outputs, not white: the seed's factor assumes Cov z = I)")

    from tqdm.auto import tqdm
    curves, finals = {}, {}
    runs = [(mth, lr, s) for mth in methods for lr in rates for s in range(seeds)]
    for mth, lr, s in tqdm(runs, desc="training runs", file=sys.stderr, disable=a.quick):
        curve, params = train(mth, lr, widths, X, Y, epochs, batch, s)
        curves.setdefault((mth, lr), []).append(curve)
        finals.setdefault((mth, lr), []).append(
            (curve[-1], accuracy(params, Xt, labels) if np.isfinite(curve[-1]) else np.nan))
    best = {}
    for mth in methods:
        best[mth] = min(rates, key=lambda lr: np.median([f[0] for f in finals[mth, lr]]))

    def mm(v, fmt):
        v = np.asarray(v)
        return f"{fmt.format(np.median(v))} ({fmt.format(v.min())}–{fmt.format(v.max())})"
    marks = sorted({max(1, epochs // 4), epochs // 2, epochs})
    lines = [config, "", scal, "",
             "Best rate of each method (median over the seeds, min–max in brackets):", "",
             "| method | lr | " + " | ".join(f"training loss, epoch {e}" for e in marks)
             + " | test accuracy |", "|---|---|" + "---|" * len(marks) + "---|"]
    for mth in methods:
        lr = best[mth]
        C = np.array(curves[mth, lr])
        F = finals[mth, lr]
        lines.append(f"| {mth} | {lr:g} | " + " | ".join(mm(C[:, e], '{:.4f}') for e in marks)
                     + f" | {mm([100 * f[1] for f in F], '{:.1f}%')} |")
    lines += ["", "Every rate (final training loss, median over the seeds):", "",
              "| method | " + " | ".join(f"lr {r:g}" for r in rates) + " |",
              "|---|" + "---|" * len(rates)]
    for mth in methods:
        lines.append(f"| {mth} | " + " | ".join(f"{np.median([f[0] for f in finals[mth, r]]):.4f}"
                                                for r in rates) + " |")
    rows = spectra(a.quick)
    lines += ["", "Local Hessians at initialisation, each from rop's Hv of the block's back-matching "
              "loss:", "", spectra_table(rows), "",
              "The paper's Table 1 (CIFAR test accuracy %, VGG with BN, GPU runs), for context "
              "only — not reproduced here:", "", PAPER_TABLE]
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    out = a.results or (None if a.quick else ROOT / "benchmarks" / "results" / "local_hessian.md")
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)
    if a.plot:
        plot_training(curves, {m: best[m] for m in methods}, epochs, a.plot,
                      f"BN MLP {'-'.join(map(str, widths))} on digits, best rate of each method, "
                      f"{seeds} seeds (band: min–max)")
    if a.spectra:
        plot_spectra(rows, a.spectra)
    orth = rows[4]["lam"]
    assert abs(orth[-1] / orth[0] - 1) < 1e-12        # orthogonal init: cond(H_z) = 1
    print(f"done in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
