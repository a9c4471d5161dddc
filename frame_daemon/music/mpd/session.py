"""Connect to MPD off the loop: the one place that knows whether the loop has MPD.

A frozen or unreachable MPD can take `mpd.timeout_s` to answer a connect (a stopped MPD's port still
accepts the TCP connection; its greeting never comes). So connecting, and reconnecting with backoff,
happen in this session's own supervised thread; the loop only ever *adopts* a connection that is
already open and authenticated, which never blocks. The loop tells the session when it loses its
connection (`lost`), and the session starts over.

"MPD is up" means: the loop's link holds a connection (`up`), nothing else.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

import mpd

from frame_daemon.backoff import Backoff
from frame_daemon.events import Event, MpdSessionChanged
from frame_daemon.music.mpd.client import KEEPALIVE_S, MpdLink, MpdUnavailable, open_client
from frame_daemon.supervise import run_supervised

log = logging.getLogger(__name__)


class MpdSession:
    """Owns the loop's MPD link; its thread connects whenever the link has no connection."""

    def __init__(self, host: str, port: int, password: str, post: Callable[[Event], None], *,
                 timeout_s: float = 10.0, backoff: tuple[float, float] = (0.5, 15.0),
                 keepalive_s: float = KEEPALIVE_S) -> None:
        # The loop's link never connects by itself: a command without a connection fails at once.
        self.link = MpdLink(host, port, password, timeout_s, autoconnect=False,
                            keepalive_s=keepalive_s)
        self._post = post
        self._backoff = Backoff(*backoff)
        self._lock = threading.Lock()
        self._ready: mpd.MPDClient | None = None  # connected here, not yet adopted by the loop
        self._needed = threading.Event()  # the loop has no connection and wants one
        self._wake = threading.Event()  # retry now (MPD looks back), without the backoff wait
        self._stop = threading.Event()
        self._first_attempt = threading.Event()  # the thread has tried once, either way
        self._thread = threading.Thread(target=self._run, name="mpd-session", daemon=True)
        self._needed.set()

    @property
    def up(self) -> bool:
        """The loop has a working MPD connection (as far as its last command knew)."""
        return self.link.connected

    # ------------------------------------------------------------------ thread side
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop connecting and close the loop's connection. A connect stuck on a frozen MPD is
        left to its (daemon) thread rather than holding up the shutdown."""
        self._stop.set()
        self._wake.set()
        self._needed.set()
        self._thread.join(timeout)
        with self._lock:
            ready, self._ready = self._ready, None
        if ready is not None:
            _disconnect(ready)
        self.link.close()

    def _run(self) -> None:
        run_supervised("the MPD session", self._connect_when_needed, self._stop,
                       lambda message: self._post(MpdSessionChanged(False, message)))

    def _connect_when_needed(self) -> None:
        while not self._stop.is_set():
            self._needed.wait()
            if self._stop.is_set():
                return
            try:
                client = open_client(self.link.host, self.link.port, self.link.password,
                                     self.link.timeout_s)
            except MpdUnavailable as exc:
                self._post(MpdSessionChanged(False, str(exc)))
                self._first_attempt.set()
                self._wake.wait(self._backoff.failed())
                self._wake.clear()
                continue
            self._backoff.succeeded()
            with self._lock:
                self._needed.clear()
                stale, self._ready = self._ready, client
            if stale is not None:
                _disconnect(stale)
            self._first_attempt.set()
            self._post(MpdSessionChanged(True))

    # ------------------------------------------------------------------ loop side
    def adopt(self) -> bool:
        """Give the loop's link the connection made in the thread, if one is waiting. Never
        blocks; True if the link has a new connection."""
        with self._lock:
            client, self._ready = self._ready, None
        if client is None:
            return False
        self.link.adopt(client)
        return True

    def wait_first_attempt(self, timeout: float) -> None:
        """At start-up only: give a healthy MPD a moment to answer, so the first photo finds it
        (a refused connection ends the wait at once, a frozen MPD after `timeout`)."""
        self._first_attempt.wait(timeout)

    def lost(self) -> None:
        """The loop's connection failed: close it and connect again in the thread."""
        self.link.close()
        self._needed.set()

    def retry_now(self) -> None:
        """MPD looks reachable again (the idle watcher got in): skip the rest of the backoff."""
        self._wake.set()


def _disconnect(client: mpd.MPDClient) -> None:
    with contextlib.suppress(OSError, mpd.ConnectionError):
        client.disconnect()
