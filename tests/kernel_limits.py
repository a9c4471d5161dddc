"""Reach a real kernel limit for a while: every inotify instance this user may still have.

Linux caps inotify instances per user (fs.inotify.max_user_instances, 128 by default). A frame
whose other programs hold them all gets no watch; the tests take the rest themselves (the kernel's
own refusal, nothing mocked) and give them back at the end of the block.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator

_libc = ctypes.CDLL(None, use_errno=True)
MAX_HELD = 100_000  # a bound in case a kernel has no limit at all


@contextlib.contextmanager
def inotify_exhausted() -> Iterator[int]:
    """Hold every inotify instance left to this user; yields how many were taken."""
    held: list[int] = []
    try:
        while len(held) < MAX_HELD:
            fd = _libc.inotify_init()
            if fd < 0:
                break
            held.append(fd)
        else:
            raise RuntimeError("the kernel gave inotify instances without a limit")
        yield len(held)
    finally:
        for fd in held:
            os.close(fd)
