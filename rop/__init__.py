"""rop: exact Hessian-vector products by Pearlmutter's R{·} operator, as readable generated code.

``@rop(wrt=(...))`` reads a function that computes a gradient with NumPy, applies
R{·} to every statement, and compiles the result with Numba: ``f.hvp(..., v=...)``
returns the outputs and their directional derivatives along ``v`` — Hv when the
outputs are the gradient.
"""

__version__ = "0.1.0"

from . import _blas  # noqa: E402  (before anything loads a BLAS: see rop/_blas.py)

_blas.configure()

from . import _malloc  # noqa: E402  (large arrays reuse freed memory: see rop/_malloc.py)

_malloc.configure()

from . import _numba_ids  # noqa: E402  (cached code never calls another's body: rop/_numba_ids.py)

_numba_ids.install()

from .errors import RopCallError, RopConvergenceError, RopError, RopInternalError, RopSyntaxError  # noqa: E402
from .api import rop  # noqa: E402
from .rules.custom import RopRuleError, check_rule, register_rule  # noqa: E402
from . import blocks  # noqa: E402,F401  (rop.blocks: layer-wise curvature, docs/blocks.md)
from . import kfac  # noqa: E402,F401  (rop.kfac: the KFRA/KFLR optimiser, docs/blocks.md)
from . import _progress as progress  # noqa: E402  (rop.progress.enabled: the compile notice)

__all__ = ["rop", "register_rule", "check_rule", "RopRuleError", "RopError", "RopSyntaxError", "RopCallError", "RopConvergenceError",
           "RopInternalError", "__version__"]
