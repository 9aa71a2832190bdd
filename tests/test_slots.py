"""Slot-level activity (rop/transforms/slots.py): products with a list slot whose R is zero
(R{X} in ``acts[0] = X``) are versioned away, and never where the slot may hold an active value.

Every program is checked three ways: against JAX's jvp (the independent oracle) and central
differences, and against the same compiler with the slot analysis switched off (the pass must
not change Hv).  The count of ``if ... == k:`` versions it adds is pinned per program, so a
regression that silently stops dropping the zero products fails too.
"""

import functools
import re

import jax
import numpy as np
import pytest

import slot_programs as P
from conftest import flat_err, layer_args
from jax_oracle import as_float, jax_namespace, leaves
from rop import pipeline, rop
from rop.api import _rank
from rop.frontend.lower import lower
from rop.transforms import rtransform


# program -> (wrt, number of versioned R-statements the slot analysis adds)
CASES = {
    "forward_backward": (("Ws", "bs"), 2),
    "reversed_range": (("Ws", "bs"), 2),
    "literal_list": (("Ws", "bs"), 1),
    "overwritten_slot": (("Ws", "bs"), 0),
    "writes_at_counter": (("Ws", "bs"), 0),
    "negative_index_write": (("Ws", "bs"), 0),
    "shifted_write": (("Ws", "bs"), 0),
    "appended": (("Ws", "bs"), 0),
    "branch_fact": (("Ws", "bs"), 1),
    "while_layers": (("Ws", "bs"), 0),
    "inactive_weights": (("bs",), 1),
    "zero_slot_rewritten_inactive": (("Ws", "bs"), 1),
    "write_below_slot": (("Ws", "bs"), 0),
    "copies_slot": (("Ws", "bs"), 1),
    "returns_list": (("Ws", "bs"), 1),
    "read_at_length": (("Ws", "bs"), 2),
    "reread_name": (("Ws", "bs"), 1),
    "appended_literal": (("Ws", "bs"), 2),  # and the forward product, on len(acts) == 1
    "appended_literal_active": (("Ws", "bs"), 0),
    "negative_counter_read": (("Ws", "bs"), 0),
    # values carried around a loop from a zero R (rop/transforms/rtransform.py: _zero_on_entry)
    "carried_from_input": (("Ws", "bs"), 3),  # forward i == 0, and acts[0] backward (R_d too)
    "carried_from_one": (("Ws", "bs"), 1),
    "carried_conditional": (("Ws", "bs"), 1),
    "carried_nested": (("Ws", "bs"), 0),
    "carried_appended": (("Ws", "bs"), 0),
}

# programs whose zero slot is never read while zero: no zeros are allocated for it
PLACEHOLDER = {"forward_backward", "read_at_length", "branch_fact", "reversed_range",
               "inactive_weights", "zero_slot_rewritten_inactive", "reread_name",
               "carried_from_input", "appended_literal"}


def direction(wrt, V, c):
    return tuple({"Ws": V, "bs": c}[w] for w in wrt)


def compile_raw(fn, wrt, args, slot_activity):
    """The pipeline without the index, with the slot analysis on or off."""
    return compile_typed(fn, wrt, {p: _rank(a) for p, a in zip(("Ws", "bs", "X"), args)},
                         slot_activity)


def compile_typed(fn, wrt, types, slot_activity):
    orig = pipeline.r_transform
    pipeline.r_transform = functools.partial(rtransform.r_transform, slot_activity=slot_activity)
    try:
        return pipeline._compile(fn, lower(fn), wrt, types, "python")
    finally:
        pipeline.r_transform = orig


def versions(src):
    return len(re.findall(r"^\s*if .* == \d+:$", src, flags=re.M))


@pytest.fixture(scope="module")
def data():
    return layer_args()


@pytest.mark.parametrize("name", sorted(CASES))
def test_hv_matches_jax_fd_and_the_unoptimised_compiler(name, data):
    Ws, bs, X, V, c = data
    wrt, expected_versions = CASES[name]
    fn = getattr(P, name)
    v = direction(wrt, V, c)
    args = (tuple(Ws), tuple(bs), X)
    on = compile_raw(fn, wrt, args, True)
    off = compile_raw(fn, wrt, args, False)
    rv = tuple(tuple(x) for x in v)
    out_on, r_on = on.hvp(*args, *rv)
    out_off, r_off = off.hvp(*args, *rv)
    assert flat_err(leaves(out_on), leaves(out_off)) < 1e-14
    assert flat_err(leaves(r_on), leaves(r_off)) < 1e-12, "the slot analysis changed Hv"
    assert versions(on.source) - versions(off.source) == expected_versions, on.source
    if name == "appended_literal":  # the forward read acts[-1] is versioned on the length
        assert re.search(r"= len\(acts\) == 1$", on.source, flags=re.M), on.source
        assert "len(acts)" not in off.source
    placeholder = re.search(r"\[e if k (==|in) [^\]]* else rt\.zeros_of\(e\) for k, e in", on.source)
    placeholder = placeholder is not None
    assert placeholder == (name in PLACEHOLDER), on.source

    # the oracle: JAX differentiates the very same source
    jf = jax_namespace(P)[name]
    params = {"Ws": list(Ws), "bs": list(bs)}

    def f(*w):
        kw = dict(params, **dict(zip(wrt, w)))
        return jf(kw["Ws"], kw["bs"], X)
    _, jt = jax.jvp(f, tuple(params[w] for w in wrt), tuple(list(x) for x in v))
    assert flat_err(leaves(r_on), [as_float(t) for t in leaves(jt)]) < 1e-10

    # central differences at two steps
    for eps in (1e-4, 1e-6):
        def at(s):
            kw = dict(params)
            for w, d in zip(wrt, v):
                kw[w] = [p + s * e for p, e in zip(params[w], d)]
            return [np.asarray(x, dtype=float) for x in leaves(fn(kw["Ws"], kw["bs"], X))]
        fd = [(p - m) / (2 * eps) for p, m in zip(at(eps), at(-eps))]
        assert flat_err(leaves(r_on), fd) < 1e-5


@pytest.mark.parametrize("name", ["forward_backward", "inactive_weights"])
def test_versioned_code_compiles_in_numba(name, data):
    """Through the public API, in Numba: the versioned branches type-check and agree."""
    Ws, bs, X, V, c = data
    wrt, _ = CASES[name]
    f = rop(getattr(P, name), wrt=wrt)
    v = direction(wrt, V, c)
    _, r_nb = f.hvp(Ws, bs, X, v=v)
    _, r_py = rop(getattr(P, name), wrt=wrt, mode="python").hvp(Ws, bs, X, v=v)
    assert flat_err(leaves(r_nb), leaves(r_py)) < 1e-12
    assert versions(f.hvp.source) >= 1


def test_deep_mlp_forms_no_product_with_the_input_tangent():
    """The example's generated code: every product with R{acts[i]} sits in an ``i != 0`` branch
    (counted by the profiler's helper, which finds the two unguarded products of the code
    generated without the slot analysis)."""
    import os
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    import deep_mlp
    from benchmarks.profile_rop import unguarded_input_products
    Ws, bs, X, T, V, c = deep_mlp.init([5, 4, 3, 2], 3)
    deep_mlp.backprop.hvp(Ws, bs, X, T, v=(V, c))
    assert unguarded_input_products(deep_mlp.backprop.hvp.source) == 0
    off = compile_typed(deep_mlp.backprop.fn, ("Ws", "bs"),
                        {"Ws": ("list", 2), "bs": ("list", 1), "X": 2, "T": 2}, False)
    assert unguarded_input_products(off.source) == 2


# program -> (R-names that must not appear: the products of zeros the positions drop; those
# that must stay, where a position may hold an active value)
TUPLE_CASES = {
    "tuple_cache_input": (("R_x",), ("R_h_prev",)),
    "tuple_cache_var": (("R_x",), ()),
    "tuple_position_active_later": ((), ("R_x",)),
    "tuple_read_whole": ((), ()),
    "tuple_list_literal": (("R_x",), ()),
}


@pytest.mark.parametrize("name", sorted(TUPLE_CASES))
def test_tuple_positions_drop_zero_products_and_keep_hv(name, data):
    """Caches of tuples in a list (courses' RNNs and LSTMs): a position only inactive values
    reach is read back with R = 0, so its products are not formed; Hv agrees with JAX, central
    differences and the compiler without slot facts, in Python and in Numba."""
    Ws, bs, X, V, c = data
    wrt = ("Ws", "bs")
    fn = getattr(P, name)
    args = (tuple(Ws), tuple(bs), X)
    rv = (tuple(V), tuple(c))
    on = compile_raw(fn, wrt, args, True)
    off = compile_raw(fn, wrt, args, False)
    out_on, r_on = on.hvp(*args, *rv)
    out_off, r_off = off.hvp(*args, *rv)
    assert flat_err(leaves(out_on), leaves(fn(Ws, bs, X))) < 1e-14
    assert flat_err(leaves(r_on), leaves(r_off)) < 1e-12
    body = on.source.split("_hvp(", 1)[1]
    gone, kept = TUPLE_CASES[name]
    for n in gone:
        assert not re.search(rf"\b{n}\b", body), on.source
        assert re.search(rf"\b{n}\b", off.source.split("_hvp(", 1)[1])  # the pass dropped it
    for n in kept:
        assert re.search(rf"\b{n}\b", body), on.source
    jf = jax_namespace(P)[name]
    _, jt = jax.jvp(lambda W, b: jf(W, b, X), (list(Ws), list(bs)), (list(V), list(c)))
    assert flat_err(leaves(r_on), [as_float(t) for t in leaves(jt)]) < 1e-10
    for eps in (1e-4, 1e-6):
        def at(s):
            return [np.asarray(x, dtype=float) for x in leaves(fn(
                [w + s * e for w, e in zip(Ws, V)], [b + s * e for b, e in zip(bs, c)], X))]
        fd = [(p - m) / (2 * eps) for p, m in zip(at(eps), at(-eps))]
        assert flat_err(leaves(r_on), fd) < 1e-5
    # in Numba, through the public API, the caller's arguments untouched
    keep = [a.copy() for a in (*Ws, *bs, X, *V, *c)]
    f = rop(fn, wrt=wrt)
    out_nb, r_nb = f.hvp(Ws, bs, X, v=(V, c))
    assert flat_err(leaves(r_nb), leaves(r_on)) < 1e-12
    assert flat_err(leaves(out_nb), leaves(fn(Ws, bs, X))) < 1e-14
    assert all(np.array_equal(a, b) for a, b in zip(keep, (*Ws, *bs, X, *V, *c)))
