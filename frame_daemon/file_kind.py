"""Paths that are not the regular file a reader expects: what they are, and opening without
waiting on one.

A FIFO in a file's place makes a plain open() wait for a writer (for ever, under systemd), and a
device such as /dev/zero never ends. A reader of a file the user names (config, password, photo,
settings) opens it with `open_regular`; one that leaves the reading to a library (mutagen, json)
checks the path's mode and says what it is with `kind`.
"""

from __future__ import annotations

import os
import stat


def kind(mode: int) -> str:
    """What a path of this mode (not a regular file) is, for a message."""
    if stat.S_ISDIR(mode):
        return "a directory"
    return "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"


class NotRegularFile(Exception):
    """The path is a folder, a FIFO, a device or a socket: `kind` says which."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.kind = what


def open_regular(path: str | os.PathLike[str]) -> int:
    """A descriptor of `path` open for reading (blocking, close-on-exec); NotRegularFile when it
    is no regular file. Opened with O_NONBLOCK, so a FIFO is refused rather than waited on; the
    open's own OSError (not found, permission) is raised as it is."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(kind(mode))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd
