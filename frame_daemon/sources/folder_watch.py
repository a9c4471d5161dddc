"""Start a watchdog observer on folders, or say in words why the kernel gave none.

Linux caps inotify per user: `fs.inotify.max_user_instances` (128 on most systems; every program
that watches files takes one or more) and `fs.inotify.max_user_watches` (one per watched folder,
so a large photo tree can use them up). When a cap is reached watchdog raises a bare OSError, and
an adapter that let it escape would restart with backoff and show nothing meanwhile. The callers
carry on without the watch instead (they look at their folders themselves) and try again later:
the cap frees up when another program ends.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer

# How long a caller waits before asking the kernel for a watch again after it refused one.
WATCH_RETRY_S = 60.0

_LIMITS = {
    errno.EMFILE: "the limit on inotify instances is reached (sysctl fs.inotify.max_user_instances)",
    errno.ENFILE: "the system's limit on open files is reached",
    errno.ENOSPC: "the limit on inotify watches is reached (sysctl fs.inotify.max_user_watches; a "
                  "large photo tree needs one per folder)",
    errno.ENOMEM: "the kernel has no memory for another watch",
}


class WatchRefused(Exception):
    """The kernel would not watch the folders; `reason` says why in words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def start_observer(name: str, handler: FileSystemEventHandler, folders: Sequence[Path],
                   *, recursive: bool) -> Observer:
    """A started observer watching `folders` with `handler`; WatchRefused when the kernel's inotify
    limits (or memory) refuse it. Other errors (a folder that vanished meanwhile) propagate."""
    observer = Observer()
    observer.name = name
    observer.daemon = True
    try:
        for folder in folders:
            observer.schedule(handler, str(folder), recursive=recursive)
        observer.start()
    except OSError as exc:
        with contextlib.suppress(Exception):  # the watches it did get go back to the kernel
            observer.unschedule_all()
        if exc.errno in _LIMITS:
            raise WatchRefused(_LIMITS[exc.errno]) from None
        raise
    return observer


class FolderWatch:
    """One adapter's watch: starts observers, and after a refusal remembers why (`refused`, said
    once in the adapter's log, with what it does `instead`) and when to ask again (`due`)."""

    def __init__(self, log: logging.Logger, what: str, instead: str, prefix: str = "") -> None:
        self._log, self.what, self.instead, self.prefix = log, what, instead, prefix
        self.refused: str | None = None  # why the kernel gave no watch, while it gives none
        self._again_at = 0.0  # when to ask for a watch again after a refusal (monotonic)

    @property
    def due(self) -> bool:
        """Not waiting out WATCH_RETRY_S after a refusal."""
        return time.monotonic() >= self._again_at

    def start(self, name: str, handler: FileSystemEventHandler, folders: Sequence[Path],
              *, recursive: bool) -> Observer | None:
        """A started observer, or None when the kernel refuses one (asked again once `due`)."""
        try:
            observer = start_observer(name, handler, folders, recursive=recursive)
        except WatchRefused as exc:
            self._again_at = time.monotonic() + WATCH_RETRY_S
            if self.refused != exc.reason:  # once, not at every retry
                self._log.warning("%scannot watch %s: %s; %s", self.prefix, self.what, exc.reason,
                                  self.instead)
            self.refused = exc.reason
            return None
        if self.refused is not None:
            self._log.info("%swatching %s again (the kernel gave a watch)", self.prefix, self.what)
            self.refused = None
        return observer
