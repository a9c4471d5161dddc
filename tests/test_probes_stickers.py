"""Probes: our sticker as another MPD client may have written it. Any client can set
`frame-daemon.mood` on any song; a frame must take the good values, skip the bad ones, and never
fail a refresh over them (real MPD, real `frame-daemon index`)."""

from __future__ import annotations

import json

from test_stickers import frame_daemon, library, moods, mpd_server, write_config  # noqa: F401

from frame_daemon.music.index import TrackIndex
from frame_daemon.music.index_worker import read_shared
from frame_daemon.music.mpd.client import MpdLink
from frame_daemon.music.shared_analysis import ANALYSIS_VERSION, STICKER
from frame_daemon.music.track import MoodSource

HUGE = "1" + "0" * 320  # a JSON integer no float can hold (fits MPD's 4 KiB command line)
GOOD = json.dumps({"v": ANALYSIS_VERSION, "m": "", "va": 0.7, "ar": -0.6, "c": 0.9, "d": "analysis: x"})
# One crafted value per song: each must be skipped (or used, clipped) alone.
CRAFTED = [
    f'{{"v":"x","b":{HUGE}}}',  # OverflowError in float()
    f'{{"v":"x","va":{HUGE},"ar":0,"c":1}}',
    '{"v":"x","va":1e999,"ar":0,"c":1}',  # inf
    '{"v":"x","va":"NaN","ar":0,"c":1}',
    '{"v":7,"va":[1],"ar":{},"c":null}',  # wrong types
    '"java"',  # a JSON string that contains "va"
]


def test_crafted_stickers_are_skipped_and_the_good_one_is_used(tmp_path, mpd_server):  # noqa: F811
    c = mpd_server.client()
    uris = sorted(s["file"] for s in c.listall() if "file" in s)
    good, crafted = uris[0], uris[1:]
    c.sticker_set("song", good, STICKER, GOOD)
    for uri, value in zip(crafted, CRAFTED, strict=False):
        c.sticker_set("song", uri, STICKER, value)
    c.disconnect()

    # The worker's own read, on the real MPD: no exception, one value used, the rest counted.
    link = MpdLink("127.0.0.1", mpd_server.port)
    try:
        with TrackIndex(tmp_path / "probe.sqlite3") as index:
            index.refresh([{"file": u, "last-modified": ""} for u in uris], None)
            stats = read_shared(index, link)
            assert stats is not None and stats.used == 1 and stats.unreadable == len(crafted)
            assert index.get(good).source is MoodSource.ANALYSIS
    finally:
        link.close()

    # `frame-daemon index` on a frame without the files: a clear summary, no traceback.
    frame = write_config(tmp_path / "frame.toml", mpd_server, tmp_path / "frame-state", "")
    done = frame_daemon("index", "--config", str(frame))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert f"{len(crafted)} stickers not readable" in done.stdout, done.stdout
    found = moods(tmp_path / "frame-state")
    assert set(found) == set(uris) and found[good][3] == "analysis"



def test_a_sticker_left_on_a_song_mpd_no_longer_has_is_not_read(tmp_path, mpd_server):  # noqa: F811
    c = mpd_server.client()
    uris = sorted(s["file"] for s in c.listall() if "file" in s)
    for uri in uris[:2]:
        c.sticker_set("song", uri, STICKER, GOOD)
    c.disconnect()
    (mpd_server.music_dir / uris[0]).unlink()  # MPD keeps the sticker of a song it drops
    mpd_server.update_and_wait()
    link = MpdLink("127.0.0.1", mpd_server.port)
    try:
        with TrackIndex(tmp_path / "probe.sqlite3") as index:  # an index from before the removal
            index.refresh([{"file": u, "last-modified": ""} for u in uris], None)
            stats = read_shared(index, link)
            assert stats is not None and stats.used == 1 and stats.unreadable == 0
            assert index.get(uris[1]).source is MoodSource.ANALYSIS
    finally:
        link.close()
