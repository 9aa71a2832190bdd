"""The Hessian spectrum of a trained classifier, whole and per layer, with the Gauss-Newton
spectrum beside it: top eigenvalues, trace and spectral density from rop's operators.

A 64-16-10 tanh/softmax MLP on scikit-learn's digits, its backprop written by hand and given to
``rop(..., output="Z")``: ``Z``, the logits, is where the cross-entropy begins, so besides
``.hvp`` (H) there is ``.gvp`` (G = Jᵀ H_L J, the Gauss-Newton matrix, positive semi-definite
because the cross-entropy is convex in Z).  After brief training (full-batch gradient descent)
the example takes, for H and G:

* the top eigenvalues by ARPACK (``curvature.eigenvalues``) and by rop's fully reorthogonalised
  Lanczos, checked against ``numpy.linalg.eigvalsh`` of the full matrix (``H @ I``: small
  enough here, n products);
* the trace by Hutch++ with its standard error, against the exact trace;
* the spectral density by stochastic Lanczos quadrature (PyHessian's conventions);
* all of these per layer (``curvature.per_block``: the diagonal block of each parameter, the
  curvature of that layer with the others held fixed) and for the whole network.

H − G is the residual term: the second derivatives of the network's output weighted by the
loss's derivative (P − Y).  It is zero on the output layer's own blocks (Z is linear in W2 and
b2, so there H = G exactly, which the example checks) and small but not negligible on W1 after
brief training; it is what gives H its band of small negative eigenvalues, which G cannot have.

Run:  python examples/spectrum.py [--quick] [--plot spectrum.png]
"""

import argparse
import time

import numpy as np

from rop import curvature, rop


def mlp(W1, b1, W2, b2, X, Y):
    """Gradient of the mean cross-entropy of softmax(W2 tanh(W1 X + b1) + b2); X is 64×B,
    Y one-hot 10×B."""
    H1 = np.tanh(W1 @ X + b1[:, None])
    Z = W2 @ H1 + b2[:, None]
    E = np.exp(Z - Z.max(axis=0))
    P = E / E.sum(axis=0)
    dZ = (P - Y) / X.shape[1]
    dH = (W2.T @ dZ) * (1.0 - H1 ** 2)
    return dH @ X.T, dH.sum(axis=1), dZ @ H1.T, dZ.sum(axis=1)


def cross_entropy(W1, b1, W2, b2, X, Y):
    Z = W2 @ np.tanh(W1 @ X + b1[:, None]) + b2[:, None]
    Z = Z - Z.max(axis=0)
    return float(np.mean(np.log(np.exp(Z).sum(axis=0)) - (Z * Y).sum(axis=0)))


def trained(quick):
    """Digits, a 64-h-10 network and its parameters after a little full-batch training (a
    spectrum at initialisation has little structure)."""
    from sklearn.datasets import load_digits
    data = load_digits()
    n, hidden, steps = (300, 8, 100) if quick else (1797, 16, 400)
    X = (data.data[:n] / 16.0).T
    Y = np.eye(10)[data.target[:n]].T
    rng = np.random.default_rng(0)
    params = [rng.normal(size=(hidden, 64)) / 8.0, np.zeros(hidden),
              rng.normal(size=(10, hidden)) / np.sqrt(hidden), np.zeros(10)]
    for _ in range(steps):
        params = [p - 0.5 * g for p, g in zip(params, mlp(*params, X, Y))]
    return X, Y, params, hidden, steps


def analyse(name, A, quick, runs, iters):
    """Everything the table and the figure show for one operator (H or G), whole and per block."""
    progress = not quick
    t = time.perf_counter()
    top = curvature.eigenvalues(A, k=5, progress=progress)
    t_eigsh = time.perf_counter() - t
    top_lz = curvature.eigenvalues(A, k=5, method="lanczos", iters=iters, progress=progress)
    dense = curvature.full_matrix(A, progress=progress)
    exact = np.linalg.eigvalsh(dense)
    tr = curvature.trace(A, samples=60 if quick else 150, progress=progress)
    negative = lambda lam: int(np.sum(lam < -1e-10 * abs(lam).max()))
    whole = {"n": A.shape[0], "top": top[0], "bottom": exact[0], "trace": tr.value,
             "negative": negative(exact), "dense": dense,
             "stderr": tr.stderr, "exact trace": np.trace(dense),
             "density": curvature.spectral_density(A, runs=runs, iters=iters, progress=progress)}
    # exact references from the dense matrix, not from the estimators under test
    assert np.allclose(top, exact[::-1][:5], rtol=1e-8, atol=1e-12 * abs(exact).max())
    assert np.allclose(top_lz, exact[::-1][:5], rtol=1e-6)
    assert abs(tr.value - np.trace(dense)) <= 5 * tr.stderr + 1e-9 * abs(np.trace(dense))
    blocks = {}
    tops = curvature.per_block(curvature.eigenvalues, A, k=1, progress=False)
    traces = curvature.per_block(curvature.trace, A, method="exact", progress=False)
    dens = curvature.per_block(curvature.spectral_density, A, runs=runs, iters=iters,
                               progress=False)
    for b in A.layout.blocks:
        sub = dense[b.slice, b.slice]
        lam = np.linalg.eigvalsh(sub)
        assert np.isclose(tops[b.name][0], lam[-1], rtol=1e-8, atol=1e-12)
        assert np.isclose(traces[b.name].value, np.trace(sub), rtol=1e-10, atol=1e-14)
        blocks[b.name] = {"n": b.size, "top": lam[-1], "bottom": lam[0], "negative": negative(lam),
                          "trace": traces[b.name].value, "stderr": 0.0,
                          "exact trace": np.trace(sub), "density": dens[b.name]}
    print(f"  {name}: top-5 eigenvalues (eigsh, {t_eigsh:.1f} s)  {np.array2string(top, precision=5)}")
    print(f"  {name}: the same by Lanczos ({min(iters, A.shape[0])} steps)   "
          f"{np.array2string(top_lz, precision=5)}")
    return whole, blocks, exact


def table(results):
    print("\n| block | n | λmax(H) | λmin(H) | tr H (Hutch++ ± se) | tr H exact | λmax(G) | "
          "tr G (Hutch++ ± se) | tr G exact | negative eigenvalues of H |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    (Hw, Hb, _), (Gw, Gb, _) = results["H"], results["G"]
    for key in ["whole", *Hb]:
        h, g = (Hw, Gw) if key == "whole" else (Hb[key], Gb[key])
        tr = lambda r: (f"{r['trace']:.4g} ± {r['stderr']:.2g}" if r["stderr"]
                        else f"{r['trace']:.4g} (exact)")
        print(f"| {key} | {h['n']} | {h['top']:.4g} | {h['bottom']:.3g} | {tr(h)} | "
              f"{h['exact trace']:.4g} | {g['top']:.4g} | {tr(g)} | {g['exact trace']:.4g} | "
              f"{h['negative']} |")


def plot(results, title, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    (Hw, Hb, He), (Gw, Gb, Ge) = results["H"], results["G"]
    panels = [("whole network", Hw, Gw), *((k, Hb[k], Gb[k]) for k in Hb)]
    fig, axes = plt.subplots(2, 3, figsize=(14, 7.5))
    for ax, (name, h, g) in zip(axes.flat, panels):
        curvature.plot_density(h["density"], ax=ax, label="Hessian H", lw=1)
        curvature.plot_density(g["density"], ax=ax, label="Gauss-Newton G", lw=1, alpha=0.8)
        lo = min(h["density"].density.max(), g["density"].density.max()) * 1e-7
        ax.set_ylim(lo, 2 * max(h["density"].density.max(), g["density"].density.max()))
        same = name in ("W2", "b2")  # the output layer's blocks: H and G are equal there
        ax.set_title(f"{name} (n = {h['n']})" + (": H = G, the curves overlap" if same else ""))
        ax.legend(fontsize=8)
    ax = axes.flat[len(panels)]
    k = np.arange(1, 21)
    ax.semilogy(k, He[::-1][:20], "o-", ms=3, label="H")
    ax.semilogy(k, Ge[::-1][:20], "s-", ms=3, label="G")
    ax.set_xlabel("rank")
    ax.set_ylabel("eigenvalue")
    ax.set_title("top 20 eigenvalues (exact, whole network)")
    ax.legend(fontsize=8)
    fig.suptitle(title + ": spectral densities by SLQ (log density)")
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"\nplot: {path}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="a 64-8-10 network on 300 digits, pure-Python mode (CI, ~10 s)")
    ap.add_argument("--plot", metavar="FILE", help="save the densities (H and G, whole and per "
                                                   "layer) and the top eigenvalues here")
    a = ap.parse_args(argv)
    mode = "python" if a.quick else "numba"
    runs, iters = (5, 40) if a.quick else (20, 90)

    X, Y, params, hidden, steps = trained(a.quick)
    backprop = rop(mlp, wrt=("W1", "b1", "W2", "b2"), mode=mode, output="Z")
    H = backprop.hvp.operator(*params, X, Y)
    G = backprop.gvp.operator(*params, X, Y)
    title = f"64-{hidden}-10 MLP on {X.shape[1]} digits"
    print(f"{title}, {steps} steps of gradient descent: cross-entropy "
          f"{cross_entropy(*params, X, Y):.4f}; {H.shape[0]} parameters "
          f"({H.layout.describe()})")
    print(f"  SLQ: {runs} runs of {iters} Lanczos steps; trace: Hutch++ with "
          f"{60 if a.quick else 150} products")
    results = {"H": analyse("H", H, a.quick, runs, iters), "G": analyse("G", G, a.quick, runs, iters)}
    table(results)

    He, Ge = results["H"][2], results["G"][2]
    assert Ge[0] >= -1e-10 * Ge[-1]  # G is positive semi-definite
    # Z is linear in W2 and b2, so on their own blocks H and G are the same matrix
    out = slice(H.layout.blocks[2].slice.start, H.shape[0])
    Hd, Gd = results["H"][0]["dense"], results["G"][0]["dense"]
    assert np.allclose(Hd[out, out], Gd[out, out], atol=1e-12)
    print(f"  H and G agree on the output layer's blocks (W2, b2): max difference "
          f"{np.abs(Hd[out, out] - Gd[out, out]).max():.1e}; on W1 they differ by up to "
          f"{np.abs(Hd[:out.start, :out.start] - Gd[:out.start, :out.start]).max():.1e}")
    for name, w in (("H", results["H"][0]), ("G", results["G"][0])):
        d = w["density"]
        print(f"  {name}: SLQ mean eigenvalue {d.moment(1):.4e}, exact tr/n {w['exact trace'] / w['n']:.4e}")
    print(f"  top eigenvalue: H {He[-1]:.5g}, G {Ge[-1]:.5g} (ratio {He[-1] / Ge[-1]:.4f}); "
          f"H has {np.sum(He < -1e-10 * He[-1])} negative eigenvalues, smallest {He[0]:.3g}")
    if a.plot:
        plot(results, title, a.plot)


if __name__ == "__main__":
    main()
