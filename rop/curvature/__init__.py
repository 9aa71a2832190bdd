"""What users do with curvature products: solves, Newton steps, eigenvalues, traces, diagonals,
spectral densities and full matrices, on any square symmetric operator.

Every estimator takes a ``scipy.sparse.linalg.LinearOperator`` on flat vectors (``f.hvp.operator
(*args)``, ``f.gvp.operator(*args)``, :func:`rop.operators.dataset_operator`, or a dense array),
asks it only for products, and passes blocks of vectors to ``A @ X`` wherever the method allows,
so a product that takes many directions at once speeds every estimator up.  Random vectors come
from ``numpy.random.default_rng(seed)``: the same seed gives the same estimate.  Estimators that
take more than a moment show a tqdm progress bar (``progress=False`` silences it).

* :mod:`.solve`: conjugate gradients with a status (:func:`cg_solve`), damped Newton steps,
  the older ``cg``/``newton_cg`` on functions of structures.
* :mod:`.spectrum`: Lanczos with full reorthogonalisation, top/bottom eigenvalues, the
  spectral density by stochastic Lanczos quadrature and its plot.
* :mod:`.estimators`: trace (Hutchinson, Hutch++), diagonal, full matrix, per-block versions.
"""

from .estimators import (Estimate, block_operator, diagonal, full_matrix, per_block, trace)
from .solve import CGSolve, axpy, cg, cg_solve, dot, newton_cg, newton_step, scale
from .spectrum import (Lanczos, SpectralDensity, eigenvalues, lanczos, plot_density,
                       spectral_density)

__all__ = ["Estimate", "block_operator", "diagonal", "full_matrix", "per_block", "trace",
           "CGSolve", "cg", "cg_solve", "newton_cg", "newton_step", "dot", "axpy", "scale",
           "Lanczos", "SpectralDensity", "eigenvalues", "lanczos", "plot_density",
           "spectral_density"]
