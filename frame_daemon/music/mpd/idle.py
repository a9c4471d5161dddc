"""Watch MPD's `idle` notifications on a connection of our own and post them as loop events.

The idle protocol is spoken directly over a socket (it is three lines) rather than through
python-mpd2, because a blocking `idle()` there cannot be interrupted cleanly at shutdown: here the
thread waits in `select()` with a timeout and leaves with `noidle` when asked to stop.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
from collections.abc import Callable

from frame_daemon.backoff import Backoff
from frame_daemon.events import DatabaseChanged, Event, MpdConnection, PlayerChanged
from frame_daemon.supervise import run_supervised

log = logging.getLogger(__name__)

SUBSYSTEMS = ("player", "playlist", "database", "options", "mixer")


class MpdIdleWatcher:
    """Posts PlayerChanged / DatabaseChanged / MpdConnection events. Reconnects with backoff."""

    def __init__(self, host: str, port: int, password: str, post: Callable[[Event], None],
                 *, timeout_s: float = 10.0, backoff: tuple[float, float] = (0.5, 15.0)) -> None:
        self.host, self.port, self.password = host, port, password
        self._post = post
        self._timeout = timeout_s
        self._backoff = Backoff(*backoff)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mpd-idle", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 1.5) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _connect(self) -> tuple[socket.socket, socket.SocketIO]:
        if self.host.startswith("/"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self._timeout)
            sock.connect(self.host)
        else:
            sock = socket.create_connection((self.host, self.port), timeout=self._timeout)
        reader = sock.makefile("rb")
        hello = reader.readline()
        if not hello.startswith(b"OK MPD "):
            sock.close()
            raise ConnectionError(f"not an MPD server (greeting {hello[:40]!r})")
        if self.password:
            sock.sendall(b"password " + _quote(self.password) + b"\n")
            answer = reader.readline()
            if not answer.startswith(b"OK"):
                sock.close()
                raise ConnectionError(f"MPD refused the password: {answer.decode(errors='replace').strip()}")
        return sock, reader

    def _run(self) -> None:
        run_supervised("the MPD idle watcher", self._watch, self._stop,
                       lambda message: self._post(MpdConnection(False, message)))

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                sock, reader = self._connect()
            except OSError as exc:
                self._post(MpdConnection(False, f"cannot reach MPD at {self.host}:{self.port}: {exc}"))
                self._stop.wait(self._backoff.failed())
                continue
            self._backoff.succeeded()
            self._post(MpdConnection(True))
            try:
                self._idle_loop(sock, reader)
            except OSError as exc:
                if not self._stop.is_set():
                    log.warning("MPD idle connection lost: %s", exc)
                    self._post(MpdConnection(False, f"MPD connection lost: {exc}"))
            finally:
                sock.close()

    def _idle_loop(self, sock: socket.socket, reader) -> None:
        command = ("idle " + " ".join(SUBSYSTEMS) + "\n").encode()
        while not self._stop.is_set():
            sock.sendall(command)
            changed: set[str] = set()
            while not select.select([sock], [], [], 0.25)[0]:
                if self._stop.is_set():
                    sock.sendall(b"noidle\n")
                    return
            # MPD answers an idle with its "changed:" lines and "OK" in one go: read them all.
            sock.settimeout(self._timeout)
            while True:
                line = reader.readline()
                if not line:
                    raise ConnectionError("MPD closed the connection")
                if line.startswith(b"changed: "):
                    changed.add(line[9:].strip().decode())
                elif line.startswith(b"OK"):
                    break
                elif line.startswith(b"ACK"):
                    raise ConnectionError(line.decode(errors="replace").strip())
            if "database" in changed:
                self._post(DatabaseChanged())
            rest = frozenset(changed - {"database"})
            if rest:
                self._post(PlayerChanged(rest))


def _quote(text: str) -> bytes:
    return b'"' + text.replace("\\", "\\\\").replace('"', '\\"').encode() + b'"'
