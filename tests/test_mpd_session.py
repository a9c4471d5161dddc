"""The MPD session against a real MPD: it connects in its own thread, the loop only adopts."""

from __future__ import annotations

import contextlib
import os
import signal

import pytest

from frame_daemon.events import MpdSessionChanged
from frame_daemon.music.mpd.client import MpdUnavailable
from frame_daemon.music.mpd.session import MpdSession
from servers import free_port, running_mpd, wait_for


@pytest.fixture
def mpd_server(tmp_path):
    music = tmp_path / "music"
    music.mkdir()
    with running_mpd(tmp_path / "mpd", music, update=False) as server:
        yield server
        with contextlib.suppress(Exception):
            os.kill(server.proc.pid, signal.SIGCONT)  # a test may leave it frozen


def _session(port: int, events: list, timeout_s: float = 5.0) -> MpdSession:
    return MpdSession("127.0.0.1", port, "", events.append, timeout_s=timeout_s,
                      backoff=(0.1, 0.5))


def _ready(events: list) -> int:
    return sum(1 for e in events if isinstance(e, MpdSessionChanged) and e.ready)


def test_the_loop_adopts_a_connection_made_in_the_session_thread(mpd_server):
    events: list = []
    session = _session(mpd_server.port, events)
    assert not session.up and not session.adopt()  # nothing yet, and asking never connects
    session.start()
    try:
        wait_for(lambda: _ready(events) == 1, 10, what="the session's first connection")
        assert session.adopt() and session.up
        assert session.link.status().state == "stop"
        session.lost()  # the loop's command failed: the thread connects again
        assert not session.up
        wait_for(lambda: _ready(events) == 2, 10, what="a new connection after the loss")
        assert session.adopt() and session.link.generation == 2
        assert not session.adopt()  # one connection, adopted once
    finally:
        session.stop()
    assert not session.up


def test_a_frozen_mpd_blocks_the_session_thread_not_the_loop(mpd_server):
    events: list = []
    os.kill(mpd_server.proc.pid, signal.SIGSTOP)  # accepts connections, never greets
    session = _session(mpd_server.port, events, timeout_s=60)
    session.start()
    try:
        assert not session.adopt()
        # The loop's link never connects by itself: it fails at once instead of waiting 60 s.
        with pytest.raises(MpdUnavailable, match="not connected"):
            session.link.status()
        os.kill(mpd_server.proc.pid, signal.SIGCONT)
        wait_for(lambda: _ready(events), 30, what="the connection once MPD answers")
        assert session.adopt() and session.link.status().state == "stop"
    finally:
        session.stop()


def test_an_unreachable_mpd_is_reported_and_retried():
    events: list = []
    session = _session(free_port(), events)
    session.start()
    try:
        wait_for(lambda: len(events) >= 2, 10, what="two failed attempts, with backoff")
        assert all(isinstance(e, MpdSessionChanged) and not e.ready for e in events)
        assert "cannot connect to MPD at 127.0.0.1" in events[0].error
    finally:
        session.stop()
