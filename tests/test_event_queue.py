"""The loop's event queue merges repeated commands and never lets a flood bury a photo."""

from __future__ import annotations

import queue
from pathlib import Path

import pytest

from frame_daemon.event_queue import EventQueue
from frame_daemon.events import Command, PhotoShown


def drain(events: EventQueue) -> list:
    out = []
    with pytest.raises(queue.Empty):
        while True:
            out.append(events.get(timeout=0))
    return out


def test_repeated_commands_wait_once_and_photos_are_never_dropped():
    events = EventQueue(max_commands=3)
    for _ in range(5000):
        events.put(Command("rescore"))
    events.put(PhotoShown(Path("a.jpg")))
    for value in ("follow", "gentle", "off", "follow"):
        events.put(Command("mode", value))
    events.put(PhotoShown(Path("b.jpg")))
    assert drain(events) == [Command("rescore"), PhotoShown(Path("a.jpg")),
                             Command("mode", "follow"), Command("mode", "gentle"),
                             PhotoShown(Path("b.jpg"))]
    assert events.merged == 4999 + 1 and events.dropped == 1  # rescores, the second "follow"
    events.put(Command("rescore"))  # once taken, the same command may wait again
    assert drain(events) == [Command("rescore")]
