"""The index worker is supervised: a corrupt index is reported, moved aside and rebuilt."""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import time

import pytest

from frame_daemon.config import MpdConfig
from frame_daemon.events import IndexRefreshed
from frame_daemon.music.index import TrackIndex
from frame_daemon.music.index_file import open_index, reopen_if_replaced
from frame_daemon.music.index_worker import IndexWorker
from servers import running_mpd, write_library


@pytest.fixture
def mpd_server(tmp_path):
    music = tmp_path / "music"
    write_library(music, seconds=5.0)
    with running_mpd(tmp_path / "mpd", music) as server:
        yield server


def corrupt_schema(path) -> None:
    """Damage the file the way a torn write can: the table definitions become garbage."""
    db = sqlite3.connect(path)
    version = db.execute("PRAGMA schema_version").fetchone()[0]
    db.execute("PRAGMA writable_schema = ON")
    db.execute("UPDATE sqlite_master SET sql = 'garbage' WHERE name = 'tracks'")
    db.execute(f"PRAGMA schema_version = {version + 1}")
    db.commit()
    db.close()


def next_refresh(events: queue.Queue, timeout: float = 20.0) -> IndexRefreshed:
    while True:
        event = events.get(timeout=timeout)
        if isinstance(event, IndexRefreshed):
            return event


def test_a_corrupt_index_is_reported_moved_aside_and_rebuilt(mpd_server, tmp_path):
    path = tmp_path / "state" / "tracks.sqlite3"
    events: queue.Queue = queue.Queue()
    worker = IndexWorker(path, MpdConfig(host="127.0.0.1", port=mpd_server.port), events.put)
    worker.start()
    try:
        worker.request()
        first = next_refresh(events)
        # The pool comes built from the worker: the loop does not read 20 (or 100,000) tracks.
        assert first.tracks == 20 and len(first.pool) == 20 and first.error == ""
        reader = open_index(path)  # the loop's own handle
        corrupt_schema(path)
        worker.request()
        failed = next_refresh(events)
        assert "corrupt" in failed.error and "rebuilding" in failed.error
        rebuilt = next_refresh(events)
        assert rebuilt.error == "" and rebuilt.tracks == 20 and len(rebuilt.pool) == 20
        assert failed.pool is None
        assert len(list(path.parent.glob("tracks.sqlite3.corrupt-????????-??????"))) == 1
        reader = reopen_if_replaced(reader)
        assert len(reader.tracks()) == 20
        reader.close()
    finally:
        worker.stop()


def test_a_corrupt_file_at_start_is_moved_aside(tmp_path):
    path = tmp_path / "tracks.sqlite3"
    path.write_bytes(b"this was a track index before the SD card lost power" * 100)
    with open_index(path) as index:
        assert len(index) == 0 and isinstance(index, TrackIndex)
    assert len(list(tmp_path.glob("tracks.sqlite3.corrupt-????????-??????"))) == 1


def storm(worker: IndexWorker, events: queue.Queue, seconds: float) -> tuple[list[float], float]:
    """MPD's database events every 0.1 s for `seconds` (an update storm), then quiet for 2 s:
    when each refresh arrived, and when the last event was."""
    arrived, end = [], time.monotonic() + seconds
    last = 0.0
    while time.monotonic() < end + 2.0:
        if time.monotonic() < end:
            worker.request(settle=True)
            last = time.monotonic()
        time.sleep(0.1)  # the storm's pace, not a wait for the worker
        with contextlib.suppress(queue.Empty):
            while True:
                if isinstance(events.get_nowait(), IndexRefreshed):
                    arrived.append(time.monotonic())
    return arrived, last


def test_a_storm_of_database_events_is_coalesced(mpd_server, tmp_path):
    events: queue.Queue = queue.Queue()
    worker = IndexWorker(tmp_path / "tracks.sqlite3", MpdConfig(host="127.0.0.1",
                         port=mpd_server.port), events.put, settle_s=0.5, max_wait_s=1.0)
    worker.start()
    try:
        worker.request()
        assert next_refresh(events).tracks == 20  # asked for plainly: at once
        # 30 events in 3 s, never 0.5 s apart: a refresh every max_wait_s, not one per event...
        arrived, last = storm(worker, events, 3.0)
        assert 2 <= len(arrived) <= 5, arrived
        assert arrived[-1] > last  # ...and the last event is never left without its refresh
    finally:
        worker.stop()


def test_a_refresh_after_mpd_dropped_the_idle_connection_succeeds(mpd_server, tmp_path):
    # MPD closes a connection left idle for its connection_timeout (60 s); a restart closes it
    # the same way, at once. The next refresh must not fail (and publish an error) for that.
    events: queue.Queue = queue.Queue()
    worker = IndexWorker(tmp_path / "tracks.sqlite3", MpdConfig(host="127.0.0.1",
                         port=mpd_server.port), events.put)
    worker.start()
    try:
        worker.request()
        assert next_refresh(events).error == ""
        mpd_server.restart()
        worker.request()
        again = next_refresh(events)
        assert again.error == "" and again.tracks == 20
    finally:
        worker.stop()
