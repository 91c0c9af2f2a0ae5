"""Keeping the long-running daemon at its idle footprint: fewer malloc arenas, memory handed back after work.

glibc gives each thread that allocates its own arena (the daemon has a metrics thread, a collector thread
and request threads), and keeps freed heap pages mapped; ``malloc_trim`` returns them. Both through ctypes,
and both skipped quietly where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from typing import Any

M_ARENA_MAX = -8  # mallopt parameter (malloc.h)
_LIBC: list[Any] = []


def _libc() -> Any:
    if not _LIBC:
        try:
            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _LIBC.append(lib if hasattr(lib, "malloc_trim") and hasattr(lib, "mallopt") else None)
        except OSError:
            _LIBC.append(None)
    return _LIBC[0]


def limit_arenas(count: int = 2) -> None:
    """At start, before any thread: at most ``count`` malloc arenas (each thread's own arena keeps pages)."""
    lib = _libc()
    if lib is not None:
        lib.mallopt(M_ARENA_MAX, count)


def release() -> None:
    """After a run finished or a batch was pushed: collect cycles, hand free heap pages back to the system."""
    gc.collect()
    lib = _libc()
    if lib is not None:
        lib.malloc_trim(0)
