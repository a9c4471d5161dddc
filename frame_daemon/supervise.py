"""Keep an adapter thread's work alive: whatever kills it is logged with its traceback (once per
kind), reported, and the work starts again after a backoff that grows up to `longest_s`.

The adapters already handle the failures they expect (MPD gone, a file vanished); this is the net
under the ones nobody expected, so that no thread dies silently and for good.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from frame_daemon.backoff import Backoff

log = logging.getLogger(__name__)

MAX_KINDS = 256  # kinds of failure remembered (each logged with its traceback once)


class KindsSeen:
    """The kinds of failure already logged with their traceback, at most MAX_KINDS: messages that
    name a track, a time or a file differ each time, and months of them must not grow the set."""

    def __init__(self) -> None:
        self._kinds: set[tuple[str, ...]] = set()

    def __len__(self) -> int:
        return len(self._kinds)

    def first(self, kind: tuple[str, ...]) -> bool:
        """True the first time `kind` comes (since the set was last emptied at MAX_KINDS)."""
        if kind in self._kinds:
            return False
        if len(self._kinds) >= MAX_KINDS:
            self._kinds.clear()
        self._kinds.add(kind)
        return True


def run_supervised(name: str, work: Callable[[], None], stop: threading.Event,
                   report: Callable[[str], None], first_s: float = 1.0,
                   longest_s: float = 300.0,
                   explain: Callable[[Exception], str | None] | None = None) -> int:
    """Run `work()` until it returns or `stop` is set; returns how often it was restarted.

    explain: says what a failure means in words (and may repair what caused it) before the
    restart. A failure it explains is logged without a traceback (a full disk needs a sentence,
    not a stack); one it returns None for, with the exception's type, message and traceback.
    """
    backoff = Backoff(first_s, longest_s)
    seen = KindsSeen()
    restarts = 0
    while not stop.is_set():
        try:
            work()
            return restarts
        except Exception as exc:
            kind = (type(exc).__name__, str(exc))
            explained = explain(exc) if explain else None
            what = explained or f"{type(exc).__name__}: {exc}"
            delay = backoff.failed()
            message = f"{name} failed ({what}); restarting in {delay:.0f} s"
            log.error("%s", message, exc_info=exc if seen.first(kind) and not explained else None)
            try:
                report(message)
            except Exception:
                log.exception("could not report the failure of %s", name)
            if stop.wait(delay):
                break
            restarts += 1
    return restarts
