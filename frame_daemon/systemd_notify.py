"""Tell systemd how we are: READY=1, WATCHDOG=1 pings and STATUS= lines (no-op outside systemd)."""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


class SystemdNotifier:
    """Speaks the sd_notify datagram protocol to $NOTIFY_SOCKET, if systemd gave us one."""

    def __init__(self) -> None:
        self._address = os.environ.get("NOTIFY_SOCKET", "")
        if self._address.startswith("@"):  # abstract namespace socket
            self._address = "\0" + self._address[1:]
        usec = os.environ.get("WATCHDOG_USEC", "")
        # Ping at a third of the watchdog interval, the margin systemd's docs recommend.
        self.watchdog_interval_s = int(usec) / 3e6 if usec.isdigit() and int(usec) > 0 else None

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, *lines: str) -> None:
        if not self._address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self._address)
                sock.sendall("\n".join(lines).encode())
        except OSError as exc:
            log.debug("sd_notify failed: %s", exc)

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.notify(f"STATUS={status}")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def stopping(self) -> None:
        self.notify("STOPPING=1", "STATUS=stopping")
