"""Cross-library check: rop.blocks' KFLR and KFRA Kronecker factors against BackPACK's.

A harness, not a test: on small MLPs in float64 it computes the factors twice — with
``rop.blocks.Network`` (NumPy, examples as columns) and with BackPACK's ``KFLR()`` and ``KFRA()``
extensions on the equivalent ``torch.nn.Sequential`` with identical weights (examples as rows) —
and reports the largest relative difference of every factor, and, from rop's exact blocks (which
tests/test_blocks.py checks against the dense Gauss-Newton operator), how far the two
approximations are from the exact GN block and from each other, per layer.

Conventions (one for every number).  rop: E = (1/B) Σ_n ℓ_n with ℓ = ½‖z − t‖² (squared error),
ℓ = Σ_k BCE(σ(z_k), t_k) (logistic), ℓ = −log softmax(z)_t (softmax); a weight block ≈ G ⊗ Q,
bias block ≈ G, with Q = mean a aᵀ of the layer's input, W (out × in) raveled in C order.
BackPACK: ``module.weight.kflr == [G, A]`` (the same order and layout: torch's Linear weight is
(out, in), its Kronecker product G ⊗ A), ``module.bias.kflr == [G]``; A is the mean input outer
product, the same as Q.  Its G is that of the *torch* loss:
``MSELoss()`` (reduction="mean") averages over all B·K entries without the ½, = (2/K)·E;
``BCEWithLogitsLoss()`` (mean over B·K entries) = (1/K)·E; ``CrossEntropyLoss()`` (mean) = E.
So BackPACK's G is compared with (2/K)·G, (1/K)·G and G.  BackPACK supports Tanh, Sigmoid and
ReLU for these extensions (not Softplus), and for BCEWithLogitsLoss binary targets and one
output only ("Only scalar-valued predictions are currently supported"): the logistic network has
one output unit.

Run:  python benchmarks/bench_kfac_crosslib.py [--out benchmarks/results/kfac_crosslib.md]
Needs: torch==2.13.0 and backpack-for-pytorch (the ``bench`` extra).
"""

import argparse
import importlib.metadata
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rop.blocks import Network  # noqa: E402

LAYERS = [6, 8, 5, 3]
LAYERS_LOGISTIC = [6, 8, 5, 1]   # BackPACK's BCEWithLogitsLoss takes scalar predictions only
ACTS = ["tanh", "sigmoid", "relu"]
LOSSES = ["squared", "logistic", "softmax"]
BATCHES = [1, 8, 64]
TARGET = 1e-10


def problem(loss, batch, layers=LAYERS, seed=0):
    rng = np.random.default_rng(seed)
    Ws = [rng.normal(size=(m, n)) / np.sqrt(n) for n, m in zip(layers[:-1], layers[1:])]
    bs = [0.3 * rng.normal(size=m) for m in layers[1:]]
    X = rng.normal(size=(layers[0], batch))
    K = layers[-1]
    labels = rng.integers(K, size=batch)
    if loss == "squared":
        T = rng.normal(size=(K, batch))
    elif loss == "logistic":
        T = rng.integers(2, size=(K, batch)).astype(float)   # BackPACK: binary targets only
    else:
        T = np.eye(K)[:, labels]
    return Ws, bs, X, T, labels


def torch_scale(loss, K):
    """BackPACK's G over rop's G: the torch loss over rop's E (module docstring)."""
    return {"squared": 2.0 / K, "logistic": 1.0 / K, "softmax": 1.0}[loss]


def backpack_factors(act, loss, Ws, bs, X, T, labels):
    """[(G_weight, A, G_bias)] per Linear layer, for KFLR and for KFRA."""
    import torch
    from backpack import backpack, extend
    from backpack.extensions import KFLR, KFRA
    torch.set_default_dtype(torch.float64)
    Act = {"tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU}[act]
    mods = []
    for l, (W, b) in enumerate(zip(Ws, bs)):
        lin = torch.nn.Linear(W.shape[1], W.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W))
            lin.bias.copy_(torch.from_numpy(b))
        mods.append(lin)
        if l < len(Ws) - 1:
            mods.append(Act())
    model = extend(torch.nn.Sequential(*mods))
    if loss == "squared":
        lossfunc, target = torch.nn.MSELoss(), torch.from_numpy(T.T.copy())
    elif loss == "logistic":
        lossfunc, target = torch.nn.BCEWithLogitsLoss(), torch.from_numpy(T.T.copy())
    else:
        lossfunc, target = torch.nn.CrossEntropyLoss(), torch.from_numpy(labels)
    lossfunc = extend(lossfunc)
    out = {}
    for name, ext in (("kflr", KFLR), ("kfra", KFRA)):
        model.zero_grad()
        value = lossfunc(model(torch.from_numpy(X.T.copy())), target)
        try:
            with backpack(ext()):
                value.backward()
        except NotImplementedError as exc:  # BCEWithLogitsLoss has no sum_hessian (KFRA)
            out[name] = (f"BackPACK {importlib.metadata.version('backpack-for-pytorch')} raises "
                         f"NotImplementedError({str(exc)!r})" + ("" if str(exc) else
                         ": BCELossWithLogitsDerivatives has no `_sum_hessian`, which KFRA's "
                         "batch-averaged back-propagation starts from"))
            continue
        out[name] = [(getattr(m.weight, name)[0].detach().numpy(),
                      getattr(m.weight, name)[1].detach().numpy(),
                      getattr(m.bias, name)[0].detach().numpy())
                     for m in model if isinstance(m, torch.nn.Linear)]
    return out


def rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def frob_rel(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "kfac_crosslib.md"))
    args = ap.parse_args(argv)

    warnings.filterwarnings("ignore", message="Full backward hook is firing")
    versions = {p: importlib.metadata.version(p) for p in ("torch", "backpack-for-pytorch")}
    rows, approx, worst, notes = [], [], 0.0, set()
    t0 = time.perf_counter()
    for act in ACTS:
        for loss in LOSSES:
            net = Network(act, loss)
            layers = LAYERS_LOGISTIC if loss == "logistic" else LAYERS
            for batch in BATCHES:
                Ws, bs, X, T, labels = problem(loss, batch, layers)
                ours = {"kflr": net.kflr(Ws, bs, X, T), "kfra": net.kfra(Ws, bs, X, T)}
                theirs = backpack_factors(act, loss, Ws, bs, X, T, labels)
                c = torch_scale(loss, layers[-1])
                errs = {}
                for name in ("kflr", "kfra"):
                    if isinstance(theirs[name], str):
                        errs[name] = theirs[name]
                        notes.add(f"{name.upper()} with the {loss} loss: {theirs[name]}")
                        continue
                    eG = max(max(rel(g, c * f.G), rel(gb, c * f.G))
                             for f, (g, _, gb) in zip(ours[name], theirs[name]))
                    eQ = max(rel(a, f.Q) for f, (_, a, _) in zip(ours[name], theirs[name]))
                    errs[name] = (eG, eQ)
                    worst = max(worst, eG, eQ)
                rows.append((act, loss, batch, errs))
                if batch > 1:
                    exact = net.gauss_newton_blocks(Ws, bs, X, T)
                    for l, (e, a, b) in enumerate(zip(exact, ours["kflr"], ours["kfra"])):
                        approx.append((act, loss, batch, l, frob_rel(b.G, a.G),
                                       frob_rel(a.weight_block(), e.W),
                                       frob_rel(b.weight_block(), e.W)))
    elapsed = time.perf_counter() - t0

    lines = [
        "# KFLR and KFRA factors: rop.blocks against BackPACK",
        "",
        f"`python benchmarks/bench_kfac_crosslib.py` — network {LAYERS} ({LAYERS_LOGISTIC} "
        "for the logistic loss: BackPACK's BCEWithLogitsLoss takes one output) (Linear layers, the "
        f"activation between them, a linear output into the loss), float64, seed 0; "
        f"torch {versions['torch']}, backpack-for-pytorch {versions['backpack-for-pytorch']}; "
        f"{elapsed:.1f} s.",
        "",
        "Convention: rop's E = (1/B) Σ ℓ, ½ in squared error; BackPACK's G is compared with "
        "(2/K)·G (MSELoss, mean over B·K entries, no ½), (1/K)·G (BCEWithLogitsLoss, mean over B·K) "
        "and G (CrossEntropyLoss, mean over B); the factor order is the same, "
        "`weight.kflr == [G, A]` ↔ G ⊗ Q, `bias.kflr == [G]`; A = Q = mean a aᵀ.  "
        "Entries: the largest relative difference (max |Δ| / max |BackPACK|) over the layers, of "
        "G (weight and bias) and of Q.",
        "",
        "| activation | loss | batch | KFLR: G | KFLR: Q | KFRA: G | KFRA: Q |",
        "|---|---|---|---|---|---|---|",
    ]
    def cells(e):
        return "n/a | n/a" if isinstance(e, str) else f"{e[0]:.1e} | {e[1]:.1e}"
    for act, loss, batch, errs in rows:
        lines.append(f"| {act} | {loss} | {batch} | {cells(errs['kflr'])} | {cells(errs['kfra'])} |")
    lines += [""] + [f"n/a: {n}." for n in sorted(notes)]
    lines += [
        "",
        f"Largest difference: **{worst:.1e}** (target ≤ {TARGET:.0e}: "
        f"{'met' if worst <= TARGET else 'NOT met'}).",
        "",
        "## How good the approximations are (rop alone)",
        "",
        "Per layer, at batch > 1 (at batch 1 both equal the exact block: tests/test_blocks.py): "
        "‖G_KFRA − G_KFLR‖_F / ‖G_KFLR‖_F, and the Frobenius distance of G ⊗ Q from the exact "
        "Gauss-Newton weight block, relative to it.  KFLR's G is the exact batch mean of the "
        "pre-activation GN matrices; its error is only that of the Kronecker product of means.  "
        "Layer 2 (the output layer) has no activation above it, so KFRA = KFLR there; with squared "
        "error also at layer 1, since 𝓗_L = I for every sample and E[b bᵀ] ⊙ WᵀW = E[B Wᵀ W B].",
        "",
        "| activation | loss | batch | layer | KFRA vs KFLR (G) | KFLR vs exact | KFRA vs exact |",
        "|---|---|---|---|---|---|---|",
    ]
    for act, loss, batch, l, d, ekflr, ekfra in approx:
        lines.append(f"| {act} | {loss} | {batch} | {l} | {d:.2e} | {ekflr:.2e} | {ekfra:.2e} |")
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    if worst > TARGET:
        print(f"FAIL: rop and BackPACK differ by {worst:.1e} > {TARGET:.0e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
