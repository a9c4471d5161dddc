"""A music file whose name is not UTF-8 (a Latin-1 rip, an old zip): MPD passes the name on byte
for byte. It must cost that one song, never the library or the connection (real MPD)."""

from __future__ import annotations

import shutil
import socket

import pytest
from test_stickers import SMALL_LIBRARY, frame_daemon, write_config

from frame_daemon.music.index import TrackIndex
from frame_daemon.music.mpd.client import NOT_UTF8, MpdLink
from servers import Mpd, running_mpd, write_library

LATIN1 = b"Unknown/caf\xe9.flac"  # 'café' as Latin-1


@pytest.fixture
def mpd_server(tmp_path):
    music = tmp_path / "music"
    first = write_library(music, seconds=1.0, library=SMALL_LIBRARY)[0]
    shutil.copy(first, bytes(music) + b"/" + LATIN1)
    with running_mpd(tmp_path / "mpd", music) as server:
        yield server


def add_raw(server: Mpd, uri: bytes) -> None:
    """Queue a song by its name's very bytes, as a client that does not decode names can."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        answers = s.makefile("rb")
        assert answers.readline().startswith(b"OK MPD")
        s.sendall(b'add "' + uri + b'"\n')
        assert answers.readline() == b"OK\n"


def test_a_file_name_not_in_utf8_leaves_out_that_song_only(tmp_path, mpd_server):
    config = write_config(tmp_path / "frame.toml", mpd_server, tmp_path / "state", "")
    done = frame_daemon("index", "--config", str(config), "--no-analysis")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "left out 1 songs whose file names are not UTF-8" in done.stderr, done.stderr
    with TrackIndex(TrackIndex.default_path(tmp_path / "state")) as index:
        assert len(index) == len(SMALL_LIBRARY)

    # A person queued it (with a client that sends the bytes): the frame reads the queue, and the
    # connection goes on answering.
    link = MpdLink("127.0.0.1", mpd_server.port)
    try:
        add_raw(mpd_server, LATIN1)
        first = link.list_all()[0]["file"]
        link.add_one(first)
        queue = link.queue()
        assert [e.uri for e in queue] == [f"Unknown/caf{NOT_UTF8}.flac", first]
        assert link.status().queue_length == 2
    finally:
        link.close()
