"""A track index damaged past its first page (a bad sector, a power cut during a write): the
commands that read it say so in one line, never with a traceback (the daemon itself moves it
aside and rebuilds: tests/faults/test_fault_state.py, tests/test_index_worker.py)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from test_stickers import frame_daemon, write_config

from frame_daemon.music.index import TrackIndex
from servers import Mpd, write_library


@pytest.fixture
def indexed(tmp_path, demo_photos) -> tuple[Path, Path]:
    music = tmp_path / "music"
    write_library(music, seconds=1.0)
    server = Mpd(tmp_path / "mpd", music)
    server.start()
    server.update_and_wait()
    config = write_config(tmp_path / "frame.toml", server, tmp_path / "state", "")
    done = frame_daemon("index", "--config", str(config))
    assert done.returncode == 0, done.stderr
    yield config, TrackIndex.default_path(tmp_path / "state")
    with contextlib.suppress(Exception):
        server.stop()


def damage_after_the_first_page(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for page in range(4096, len(data), 4096):  # the schema (page 1) stays readable
        data[page:page + 8] = b"\xa5" * 8  # each page's header: its type, its cells
    path.write_bytes(bytes(data))


def test_a_track_index_damaged_inside_is_one_clear_line(indexed, demo_photos, tmp_path):
    config, path = indexed
    damage_after_the_first_page(path)
    photo = str(demo_photos / "coffee.jpg")
    for verb in (["match", photo], ["album", str(demo_photos), "--playlist", "x"],
                 ["index", "--no-analysis"]):
        done = frame_daemon(*verb, "--config", str(config))
        assert done.returncode == 1, (verb, done.stderr)
        assert "Traceback" not in done.stderr, done.stderr
        assert (f"frame-daemon {verb[0]}: {path}: cannot use the track index (database disk "
                "image is malformed); delete it to rebuild") in done.stderr, done.stderr
