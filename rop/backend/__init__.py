"""IR to Python source, the on-disk cache, and loading under Numba or plain Python."""
