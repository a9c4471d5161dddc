"""Shared by the fault suite: a person's own queue in MPD, and waiting for the daemon to publish.

The fault tests run the real daemon process against real mosquitto and MPD (tests/rig.py) and
break things under it: SIGKILL, SIGSTOP, a corrupt index, a full state directory.
"""

from __future__ import annotations

import os
import signal

from harness import mpd_queue
from rig import STATE, show
from servers import wait_for

# How long MPD stays frozen in the SIGSTOP test. CI runs the full two minutes; a developer may
# shorten it: FRAME_FAULT_FREEZE_S=10 scripts/test.sh tests/faults
FREEZE_S = float(os.environ.get("FRAME_FAULT_FREEZE_S", "120"))


def queue_as_a_person(rig, count: int = 5) -> list[str]:
    """Queue `count` tracks from another MPD client and play them; returns their URIs."""
    c = rig.mpd.client()
    try:
        uris = sorted(s["file"] for s in c.listall() if "file" in s)[:count]
        for uri in uris:
            c.add(uri)
        c.play(0)
    finally:
        c.disconnect()
    return uris


def missing(rig, uris: list[str]) -> list[str]:
    queue = {e["file"] for e in mpd_queue(rig.mpd)}
    return [u for u in uris if u not in queue]


def requeue(rig, uris: list[str]) -> None:
    c = rig.mpd.client()
    try:
        for uri in uris:
            c.add(uri)
    finally:
        c.disconnect()


def change_photo(rig, name: str, timeout: float = 30.0) -> dict:
    """Show photo `name` and wait until the daemon publishes a state after it; returns that."""
    before = rig.recorder.count(STATE)
    show(rig, name)
    wait_for(lambda: rig.recorder.count(STATE) > before, timeout,
             what=f"a state published after showing {name}")
    return rig.recorder.json(STATE)


def kill(server) -> None:
    """SIGKILL a test server and forget its process (so `start` starts a new one)."""
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(10)
    server.proc = None
