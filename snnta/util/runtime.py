"""Process-level settings for fast CPU training.

glibc serves allocations above its mmap threshold (32 MiB at most, adaptive) with fresh ``mmap`` pages
and returns them on free, so every per-step ``[T, B, H]`` buffer of a long sequence is page-faulted
and zeroed by the kernel again at every training step: the cost of a step grows faster than ``T``
once its buffers cross the threshold.  :func:`configure_allocator` raises the mmap and trim thresholds
so such buffers are reused from the heap.  The CLI calls it at start-up; library users may call it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
_done = False


def configure_allocator(threshold_bytes: int = 1 << 30) -> bool:
    """Keep allocations below ``threshold_bytes`` on the heap (glibc only; no-op elsewhere).

    Returns whether the setting was applied.  ``SNNTA_NO_MALLOPT=1`` disables it.
    """
    global _done
    if _done:
        return True
    if os.environ.get("SNNTA_NO_MALLOPT"):
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(M_MMAP_THRESHOLD, int(threshold_bytes)) == 1 and mallopt(M_TRIM_THRESHOLD, int(2 * threshold_bytes)) == 1
    _done = ok
    return ok


_threads_set = False


def default_threads(fn):
    """Decorate a library entry point with a ``threads=1`` keyword: torch uses that many threads while it runs
    (``None``: leave torch's setting), restored afterwards.  The outermost decorated call decides: calls
    nested in it (an evaluation inside training) keep its setting.  One thread is the CLI's default too."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, threads: int | None = 1, **kwargs):
        global _threads_set
        if _threads_set or threads is None:
            return fn(*args, **kwargs)
        import torch

        old = torch.get_num_threads()
        torch.set_num_threads(int(threads))
        _threads_set = True
        try:
            return fn(*args, **kwargs)
        finally:
            _threads_set = False
            torch.set_num_threads(old)

    return wrapper
