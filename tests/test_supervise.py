"""Adapter threads are supervised: a failure is logged once with its traceback, reported, and the
work restarts; an MPD idle watcher fed garbage keeps coming back."""

from __future__ import annotations

import logging
import queue
import socket
import threading

from frame_daemon.events import MpdConnection
from frame_daemon.music.mpd.idle import MpdIdleWatcher
from frame_daemon.supervise import MAX_KINDS, run_supervised


def test_failures_are_reported_and_the_work_restarts(caplog):
    calls, reports = [], []

    def work() -> None:
        calls.append(1)
        if len(calls) <= 3:
            raise RuntimeError("the same bug")

    with caplog.at_level(logging.ERROR, logger="frame_daemon.supervise"):
        restarts = run_supervised("a worker", work, threading.Event(), reports.append,
                                  first_s=0.001)
    assert restarts == 3 and len(calls) == 4 and len(reports) == 3
    assert "a worker failed (RuntimeError: the same bug)" in reports[0]
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1 and len(caplog.records) == 3  # the traceback once per kind


def test_failures_that_differ_each_time_are_not_remembered_for_ever(caplog):
    # A message that names a time or a file differs at every restart: over months the kinds
    # remembered (to log each traceback once) must not grow without end. Once MAX_KINDS others
    # came, the first kind is forgotten and its traceback logged again.
    messages = ["the first bug", *(f"bug at {n}" for n in range(MAX_KINDS)), "the first bug"]

    def work() -> None:
        if messages:
            raise RuntimeError(messages.pop(0))

    with caplog.at_level(logging.ERROR, logger="frame_daemon.supervise"):
        run_supervised("a worker", work, threading.Event(), lambda message: None,
                       first_s=1e-6, longest_s=1e-6)
    first = [r for r in caplog.records if "the first bug" in r.getMessage()]
    assert len(first) == 2 and all(r.exc_info for r in first)


def test_a_stop_ends_the_backoff_wait():
    stop = threading.Event()

    def work() -> None:
        stop.set()
        raise RuntimeError("dies while stopping")

    assert run_supervised("a worker", work, stop, lambda m: None, first_s=3600,
                          longest_s=3600) == 0


def garbage_mpd(connections: list) -> socket.socket:
    """A server that greets like MPD and answers `idle` with a line that is not UTF-8."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            connections.append(conn)
            conn.sendall(b"OK MPD 0.23.5\n")
            conn.recv(1024)
            conn.sendall(b"changed: \xff\xfe\nOK\n")

    threading.Thread(target=serve, daemon=True).start()
    return server


def test_the_mpd_idle_watcher_survives_a_garbage_answer():
    connections: list = []
    server = garbage_mpd(connections)
    events: queue.Queue = queue.Queue()
    watcher = MpdIdleWatcher("127.0.0.1", server.getsockname()[1], "", events.put, timeout_s=5)
    watcher.start()
    try:
        seen = [events.get(timeout=10) for _ in range(3)]
    finally:
        watcher.stop()
        server.close()
        for conn in connections:
            conn.close()
    assert seen[0] == MpdConnection(True)
    assert not seen[1].connected and "UnicodeDecodeError" in seen[1].error
    assert seen[2] == MpdConnection(True)  # back after the backoff
