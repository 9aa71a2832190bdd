"""A one-line notice while a compile runs long: ``rop: compiling backprop.hvp (Numba) ...``.

Numba compiles a generated function on its first call, which takes seconds for a network's
R{backprop} (an LSTM or a deep MLP: 5–20 s) with nothing on the screen; a user cannot tell a
compile from a hang.  :func:`notice` prints one line to stderr once a compile has run for
``AFTER`` seconds (from a timer thread: Numba's LLVM passes release the GIL), and how long it
took when it ends.  Quick compiles and cache loads print nothing.

Silenced by ``rop.progress.enabled = False`` or the environment variable ``ROP_PROGRESS=0``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager

AFTER = 1.0      # seconds a compile runs before the notice is printed
enabled = os.environ.get("ROP_PROGRESS", "1").strip().lower() not in ("0", "false", "no", "off")


@contextmanager
def notice(what: str):
    """Print ``rop: compiling <what> ...`` if the block runs longer than ``AFTER`` seconds,
    then ``rop: compiled <what> in N s``."""
    if not enabled:
        yield
        return
    done = threading.Event()
    shown = []
    if AFTER <= 0:  # at once (and deterministically: no race with the timer thread)
        shown.append(True)
        print(f"rop: compiling {what} ...", file=sys.stderr, flush=True)
        done.set()

    def wait():
        if not done.wait(AFTER):
            shown.append(True)
            print(f"rop: compiling {what} ...", file=sys.stderr, flush=True)

    timer = threading.Thread(target=wait, daemon=True, name="rop-compile-notice")
    start = time.perf_counter()
    timer.start()
    try:
        yield
    finally:
        done.set()
        timer.join()
        if shown:
            print(f"rop: compiled {what} in {time.perf_counter() - start:.1f} s",
                  file=sys.stderr, flush=True)


def first_call(dispatcher) -> bool:
    """Whether calling ``dispatcher`` (a Numba dispatcher, or a plain function) may compile."""
    return hasattr(dispatcher, "signatures") and not dispatcher.signatures
