"""The slideshow's album choices (the photo folders' subfolders), listed off the loop thread.

A photo folder on a network share whose server went away does not fail a listing: it hangs it,
for minutes or for good. The loop must go on answering Home Assistant, following the photos and
publishing meanwhile, so it never lists a folder itself: this thread does, posts what it found as
`AlbumsChanged`, and the loop keeps the last list it was told. A listing that takes longer than
`slow_s` is logged and reported once (the loop publishes it); the thread then waits for it, since
a system call cannot be interrupted, and one hung listing never starts a second.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from frame_daemon.events import AdapterFailed, AlbumsChanged, Event
from frame_daemon.sources.photo_library import albums_in
from frame_daemon.supervise import run_supervised

log = logging.getLogger(__name__)

SLOW_S = 10.0  # a local folder or a healthy share lists its subfolders in well under a second


class AlbumLister:
    """`start()`, `stop()`, `request()`; the listing runs on its own thread."""

    def __init__(self, roots: Iterable[Path], post: Callable[[Event], None], *,
                 slow_s: float = SLOW_S) -> None:
        self.roots = tuple(roots)
        self._post = post
        self.slow_s = slow_s
        self._stop = threading.Event()
        self._wanted = threading.Event()
        self._first = threading.Event()  # the first listing is done
        self._latest: tuple[str, ...] | None = None  # for `wait_first` only
        self._thread = threading.Thread(target=self._supervised, name="album-lister", daemon=True)

    def start(self) -> None:
        self._wanted.set()
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        self._wanted.set()
        self._thread.join(timeout)
        if self._thread.is_alive():  # a daemon thread: it does not keep the process alive
            log.warning("album lister: left waiting on a photo folder that does not answer")

    def request(self) -> None:
        """List the albums again (soon; after the listing under way, if one is)."""
        self._wanted.set()

    def wait_first(self, timeout: float) -> tuple[str, ...] | None:
        """At start-up only: the first listing, if it came within `timeout`, so that the first
        announcement offers the albums; a folder that hangs is left to the thread."""
        return self._latest if self._first.wait(timeout) else None

    def _supervised(self) -> None:
        run_supervised("album lister", self._run, self._stop,
                       lambda message: self._post(AdapterFailed("album lister", message)))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wanted.wait()
            if self._stop.is_set():
                return
            self._wanted.clear()
            albums = self._list()
            self._latest = albums
            self._first.set()
            self._post(AlbumsChanged(albums))

    def _list(self) -> tuple[str, ...]:
        """One listing; if it is slow, say so while it hangs, and when it comes back."""
        slow = threading.Event()

        def report_slow() -> None:
            slow.set()
            message = (f"the photo folders ({', '.join(map(str, self.roots))}) have not answered "
                       f"for {self.slow_s:.0f} s (a network share whose server is gone?); the "
                       "album choices stay as they were")
            log.warning("%s", message)
            self._post(AdapterFailed("photo folders", message))

        timer = threading.Timer(self.slow_s, report_slow)
        timer.name, timer.daemon = "album-lister-slow", True
        timer.start()
        try:
            albums = tuple(albums_in(self.roots))
        finally:
            timer.cancel()
        if slow.is_set():
            log.info("the photo folders answer again: albums %s", ", ".join(albums))
        return albums
