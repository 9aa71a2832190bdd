"""The one compiled part of rop: rt.gemm's kernel in C (rop/_gemm_kernel.c).  Optional: where
it cannot be built (no C compiler), rop compiles the same kernel with Numba on first use."""
from setuptools import Extension, setup

setup(ext_modules=[Extension("rop._gemm_kernel", ["rop/_gemm_kernel.c"], optional=True)])
