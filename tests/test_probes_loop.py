"""Probes: what the loop keeps per event must not grow for as long as the frame runs."""

from __future__ import annotations

import logging

from frame_daemon.loop_guard import LoopGuard
from frame_daemon.supervise import MAX_KINDS


def test_a_bug_whose_message_differs_each_time_is_not_remembered_for_ever():
    reported: list[str] = []
    guard = LoopGuard(reported.append, logging.getLogger("probe"))

    def failing(n: int) -> None:
        raise KeyError(f"queue id {n}")  # a message that names what it met: new every time

    for n in range(5 * MAX_KINDS):
        guard.run("the handler", failing, n)
    assert len(reported) == 5 * MAX_KINDS  # every one published
    assert len(guard._seen) <= MAX_KINDS
