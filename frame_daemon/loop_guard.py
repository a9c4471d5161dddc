"""Run one piece of the loop's work so that whatever goes wrong is published and the loop goes on."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from frame_daemon.errors import FrameDaemonError
from frame_daemon.supervise import KindsSeen


class LoopGuard:
    """Every event handler and every timed step runs through `run`: an expected failure
    (FrameDaemonError) is published as the error; anything else is a bug, logged with its
    traceback once per kind, published, and survived."""

    def __init__(self, report: Callable[[str], None], log: logging.Logger) -> None:
        self._report = report  # publish an error (the `error` and `last_error` sensors)
        self._log = log
        self._seen = KindsSeen()  # failures logged with their traceback once

    def run(self, where: str, work: Callable[[Any], None], arg: Any) -> None:
        try:
            work(arg)
        except FrameDaemonError as exc:
            self._report(str(exc))
        except Exception as exc:  # a bug in one handler must not stop the frame
            self.internal_error(where, exc)

    def internal_error(self, where: str, exc: Exception) -> None:
        """Log an unexpected exception (the traceback once per kind), publish it, and go on."""
        message = f"internal error in {where}: {type(exc).__name__}: {exc}"
        kind = (where, type(exc).__name__, str(exc))
        if self._seen.first(kind):
            self._log.error("%s (the daemon goes on)", message, exc_info=exc)
        else:
            self._log.error("%s (again)", message)
        try:
            self._report(message)
        except Exception:
            self._log.exception("could not publish the error")
