"""Benchmark harness for rop's Hessian-vector products (not a test suite; see README.md)."""
