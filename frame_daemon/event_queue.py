"""The loop's event queue: adapters never block on it, and a flood of commands cannot bury a
photo change.

A command already waiting is not queued again (5,000 presses of "re-score" are one re-score), and
at most `max_commands` different commands wait at once; beyond that they are dropped with a log
line. Other events (photo changes, MPD, the index) come from adapters that already debounce, so
they are always queued.
"""

from __future__ import annotations

import logging
import queue
import threading

from frame_daemon.events import Command, Event

log = logging.getLogger(__name__)


class EventQueue:
    def __init__(self, max_commands: int = 64) -> None:
        self.max_commands = max_commands
        self._queue: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._waiting: set[tuple[str, str]] = set()  # commands queued and not yet taken
        self._lock = threading.Lock()
        self.merged = 0  # commands folded into one already waiting
        self.dropped = 0  # commands refused because too many were waiting

    @staticmethod
    def _key(cmd: Command) -> tuple[str, str]:
        return cmd.name, repr(cmd.value)

    def put(self, event: Event) -> None:
        """Thread-safe, never blocks."""
        if isinstance(event, Command):
            key = self._key(event)
            with self._lock:
                if key in self._waiting:
                    self.merged += 1
                    return
                if len(self._waiting) >= self.max_commands:
                    self.dropped += 1
                    if self.dropped == 1 or self.dropped % 1000 == 0:
                        log.warning("too many commands waiting (%d); dropping %s (%d dropped so "
                                    "far)", len(self._waiting), event.name, self.dropped)
                    return
                self._waiting.add(key)
        self._queue.put(event)

    def get(self, timeout: float | None = None) -> Event:
        """The next event; raises queue.Empty after `timeout` seconds."""
        event = self._queue.get(timeout=timeout)
        if isinstance(event, Command):
            with self._lock:
                self._waiting.discard(self._key(event))
        return event

    def qsize(self) -> int:
        return self._queue.qsize()
