"""Release of dead list slots (rop/ir/release.py): a backward loop gives each layer's arrays
back after its last read, and never a slot that something can still read.

Every program is checked against JAX's jvp (the independent oracle), central differences,
and the same compiler with the pass switched off (the pass must not change a single bit of
the outputs or of Hv).  The number of ``rt.release`` calls it adds is pinned per program and
function, so both a regression that stops releasing and one that releases a live slot fail.
The memory it saves is measured (tracemalloc's peak, python mode, NumPy's allocations) on the
deep MLP.
"""

import tracemalloc

import jax
import numpy as np
import pytest

import release_programs as P
from conftest import flat_err, layer_args
from jax_oracle import as_float, jax_namespace, leaves
from rop import pipeline, rop
from rop.frontend.lower import lower

TYPES = {"Ws": ("list", 2), "bs": ("list", 1), "X": 2}

# program -> (releases in the gradient function, releases in its hvp)
CASES = {
    "backprop": (1, 2),
    "reversed_loop": (1, 2),
    "kept_reference": (1, 2),
    "read_after_loop": (0, 0),
    "shifted_read": (1, 2),
    "aliased": (0, 0),
    "written_in_loop": (0, 0),
    "returns_list": (0, 0),
    "scalars": (0, 0),
    "nested": (0, 0),
    "bptt": (1, 2),
    "wraps_around": (0, 0),
    "increasing_pairs": (1, 2),
    "helper_returns_list": (1, 2),
    "rebound_to_parameter": (0, 0),
    "old_name_read_after_move": (0, 0),
    "transposed_elements": (1, 2),
}


def compile_python(fn, release=True, types=TYPES):
    """The pipeline without the index (python mode), with the release pass on or off."""
    orig = pipeline.release_dead_slots
    if not release:
        pipeline.release_dead_slots = lambda f, types: f
    try:
        return pipeline._compile(fn, lower(fn), ("Ws", "bs"), types, "python")
    finally:
        pipeline.release_dead_slots = orig


def releases(source, name):
    primal, hvp = source.split(f"def {name}_hvp(")
    return primal.count("rt.release("), hvp.count("rt.release(")


@pytest.fixture(scope="module")
def data():
    return layer_args()


@pytest.mark.parametrize("name", sorted(CASES))
def test_hv_matches_jax_fd_and_the_compiler_without_the_pass(name, data):
    Ws, bs, X, V, c = data
    fn = getattr(P, name)
    on, off = compile_python(fn, True), compile_python(fn, False)
    args = (tuple(Ws), tuple(bs), X)
    out_on, r_on = on.hvp(*args, tuple(V), tuple(c))
    out_off, r_off = off.hvp(*args, tuple(V), tuple(c))
    assert flat_err(leaves(out_on), leaves(out_off)) == 0.0
    assert flat_err(leaves(r_on), leaves(r_off)) == 0.0, "the release pass changed Hv"
    g_on, g_off = on.primal(*args), off.primal(*args)
    assert flat_err(leaves(g_on), leaves(g_off)) == 0.0

    jf = jax_namespace(P)[name]
    _, jt = jax.jvp(lambda w, b: jf(w, b, X), (list(Ws), list(bs)), (list(V), list(c)))
    assert flat_err(leaves(r_on), [as_float(t) for t in leaves(jt)]) < 1e-10

    for eps in (1e-4, 1e-6):
        def at(s):
            w = [p + s * e for p, e in zip(Ws, V)]
            b = [p + s * e for p, e in zip(bs, c)]
            return [np.asarray(x, dtype=float) for x in leaves(fn(w, b, X))]
        fd = [(p - m) / (2 * eps) for p, m in zip(at(eps), at(-eps))]
        assert flat_err(leaves(r_on), fd) < 1e-5
    assert releases(on.source, name) == CASES[name], on.source
    assert releases(off.source, name) == (0, 0)


@pytest.mark.parametrize("name", ["backprop", "kept_reference", "reversed_loop", "bptt",
                                  "helper_returns_list", "rebound_to_parameter",
                                  "transposed_elements"])
def test_released_code_runs_in_numba(name, data):
    """Through the public API, compiled: ``rt.release`` types for lists built with
    ``[None] * n`` and with ``append``, and Hv agrees with python mode."""
    Ws, bs, X, V, c = data
    f = rop(getattr(P, name), wrt=("Ws", "bs"))
    out, r = f.hvp(Ws, bs, X, v=(V, c))
    assert releases(f.hvp.source, name) == CASES[name]
    out_py, r_py = rop(getattr(P, name), wrt=("Ws", "bs"), mode="python").hvp(Ws, bs, X, v=(V, c))
    assert flat_err(leaves(r), leaves(r_py)) < 1e-12
    assert flat_err(leaves(out), leaves(out_py)) < 1e-12
    again = f(Ws, bs, X)  # the compiled gradient (primal) too
    assert flat_err(leaves(again), leaves(out_py)) < 1e-12


def _peak(f, *args):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        out = f(*args)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    del out
    return peak


def test_backward_loop_gives_the_activations_back():
    """Deep MLP [64, 256, 256, 256, 10] x 128 in python mode: without the pass the peak holds
    every activation as well as the weight gradients; with it the activations of the layers
    already done are gone.  acts[1..3] hold 3 x 256 x 128 doubles (0.75 MiB); at the gradient's
    peak (the first layer's product) two of them are gone already, and the Hv, whose NumPy
    temporaries peak one layer earlier, saves at least as much."""
    layers, batch = [64, 256, 256, 256, 10], 128
    rng = np.random.default_rng(1)
    Ws = tuple(rng.normal(size=(m, n)) / np.sqrt(n) for n, m in zip(layers[:-1], layers[1:]))
    bs = tuple(0.1 * rng.normal(size=m) for m in layers[1:])
    X = rng.normal(size=(layers[0], batch))
    V = tuple(rng.normal(size=W.shape) for W in Ws)
    c = tuple(rng.normal(size=b.shape) for b in bs)
    on, off = compile_python(P.backprop, True), compile_python(P.backprop, False)
    held = 8 * batch * sum(layers[1:-1])
    peaks = {k: (_peak(m.primal, Ws, bs, X), _peak(m.hvp, Ws, bs, X, V, c))
             for k, m in (("on", on), ("off", off))}
    (g_on, h_on), (g_off, h_off) = peaks["on"], peaks["off"]
    assert g_off - g_on >= 0.6 * held, peaks
    assert h_off - h_on >= 0.6 * held, peaks
