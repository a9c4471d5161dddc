"""Handing freed memory back to the system.

glibc's malloc keeps memory that was freed between blocks still in use, so a process that once
held a big buffer (a 100 MP photo's decode, a library refresh, a track's spectrograms) stays that
large for good. `give_memory_back()` after such work returns it (`malloc_trim`).
"""

from __future__ import annotations

import contextlib
import ctypes

_libc: ctypes.CDLL | None = None


def give_memory_back() -> None:
    """Return freed heap memory to the system; nothing to do where the C library has no
    malloc_trim (musl, macOS)."""
    global _libc
    if _libc is None:
        # The process's own symbols, libc's among them: ctypes.util.find_library("c") would run
        # `/sbin/ldconfig -p` to find the file.
        _libc = ctypes.CDLL(None)
    with contextlib.suppress(OSError, AttributeError, TypeError):
        _libc.malloc_trim(0)
