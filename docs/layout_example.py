"""The worked example of docs/layout.md: one small gradient taken through every stage of rop.
docs/gen_gallery.py compiles it and writes what each stage produced into docs/layout.md."""

import numpy as np


def grad(W, x, t):
    """Gradient in W of E = 1/2 ||tanh(W x) - t||^2."""
    y = np.tanh(W @ x)
    e = y - t
    d = e                    # one array under two names
    d *= 1.0 - y ** 2        # in place: e changes too
    return np.outer(e, x)
