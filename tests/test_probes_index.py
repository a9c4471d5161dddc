"""Probes: the track index while MPD rebuilds its database (real MPD): after an upgrade or a lost
database file MPD scans its library in the background and answers meanwhile with what it has
found so far. The index must not take that for the library and drop the rest, analyses and all."""

from __future__ import annotations

import contextlib
import os

from frame_daemon.music.index import TrackIndex
from frame_daemon.music.index_worker import refresh_index
from frame_daemon.music.mpd.client import MpdLink
from servers import LIBRARY, Mpd, write_library


def test_a_library_mpd_is_still_scanning_is_not_taken_for_the_whole(tmp_path):
    music = tmp_path / "music"
    [one] = write_library(music, seconds=0.2, library=LIBRARY[:1])
    for i in range(100):  # 10,000 songs (hard links: quick to make): MPD scans them for a while
        folder = music / f"folder{i:03d}"
        folder.mkdir()
        for j in range(100):
            os.link(one, folder / f"{j}.flac")
    server = Mpd(tmp_path / "mpd", music)
    server.start()
    try:
        total = server.update_and_wait(120)
        with TrackIndex(tmp_path / "tracks.sqlite3") as index:
            link = MpdLink("127.0.0.1", server.port, timeout_s=30)
            assert refresh_index(index, link, "").added == total
            link.close()
            server.stop()
            (tmp_path / "mpd" / "database").unlink()  # lost: MPD scans afresh when it starts
            server.start()
            link = MpdLink("127.0.0.1", server.port, timeout_s=30)
            assert link.status().updating, "MPD finished its scan before the test could look"
            stats = refresh_index(index, link, "")
            link.close()
            assert len(index) == total and stats.removed == 0 and stats.partial
    finally:
        with contextlib.suppress(Exception):
            server.stop()
