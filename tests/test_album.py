"""`frame-daemon album`: a real MPD with a real library, real photos, the real model."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

from conftest import ROOT, gradient_photo


def frame_daemon(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "frame_daemon", *args], capture_output=True,
                          text=True, timeout=180, cwd=ROOT)


def dated(image: Image.Image, path, when: str | None, original: str | None = None) -> None:
    exif = Image.Exif()
    if when:
        exif[0x0132] = when  # DateTime: the date the decoder falls back on
    if original:
        exif.get_ifd(0x8769)[0x9003] = original  # DateTimeOriginal: the date taken
    image.save(path, exif=exif, quality=90)


def stored_playlist(rig, name: str) -> list[str]:
    client = rig.mpd.client()
    try:
        return client.listplaylist(name)
    finally:
        client.disconnect()


def test_album_saves_a_playlist_that_follows_the_photos_in_date_order(rig):
    album = rig.tmp / "album"
    (album / "day2").mkdir(parents=True)
    # Names and dates disagree: the date taken decides (DateTimeOriginal over DateTime, which
    # is when it was last edited), undated photos come last by name.
    dated(gradient_photo(640, 480, 12), album / "a_bright.jpg", "2021:06:01 12:00:00")
    dated(gradient_photo(640, 480, 11).point(lambda v: v // 5), album / "day2" / "b_dark.jpg",
          "2022:02:02 10:00:00", original="2020:01:01 22:00:00")
    dated(gradient_photo(640, 480, 13), album / "c_undated.jpg", None)
    (album / "broken.jpg").write_bytes(b"not a photo")
    assert frame_daemon("index", "--config", str(rig.config), "--no-analysis").returncode == 0

    proc = frame_daemon("album", str(album), "--config", str(rig.config), "--playlist",
                        "Summer", "--length", "5", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "skipped" in proc.stderr and "broken.jpg" in proc.stderr
    out = json.loads(proc.stdout)
    assert [p["photo"].rsplit("/", 1)[1] for p in out["photos"]] == \
        ["b_dark.jpg", "a_bright.jpg", "c_undated.jpg"]
    # 60-second test tracks over five minutes: five tracks, saved in order, none twice.
    uris = [t["uri"] for t in out["tracks"]]
    assert len(uris) == 5 and len(set(uris)) == 5
    assert stored_playlist(rig, "Summer") == uris
    # The tracks walk through the album in order, each aimed at the arc where it starts: its
    # photo's mood, smoothed only with its neighbours' (then placed on the library's plane).
    names = [p["photo"].rsplit("/", 1)[1] for p in out["photos"]]
    at = [names.index(t["photo"]) for t in out["tracks"]]
    assert at == sorted(at) and at[0] == 0 and at[-1] == 2
    for track, i in zip(out["tracks"], at, strict=True):
        near = out["photos"][max(0, i - 1): i + 2]
        for axis in ("valence", "arousal"):
            values = [p[axis] for p in near]
            assert min(values) - 0.002 <= track["arc"][axis] <= max(values) + 0.002

    # Made by us: a second run replaces it without --force; the text output names the arc.
    again = frame_daemon("album", str(album), "--config", str(rig.config), "--playlist",
                         "Summer", "--length", "3")
    assert again.returncode == 0, again.stderr
    assert "mood arc" in again.stdout and "b_dark.jpg" in again.stdout
    assert len(stored_playlist(rig, "Summer")) == 3


def test_album_never_overwrites_a_playlist_it_did_not_make_unless_forced(rig):
    album = rig.tmp / "album"
    album.mkdir()
    gradient_photo(640, 480, 12).save(album / "one.jpg")
    assert frame_daemon("index", "--config", str(rig.config), "--no-analysis").returncode == 0
    client = rig.mpd.client()
    try:
        songs = [s["file"] for s in client.listall() if "file" in s][:2]
        for uri in songs:
            client.playlistadd("Mine", uri)
    finally:
        client.disconnect()

    refused = frame_daemon("album", str(album), "--config", str(rig.config), "--playlist", "Mine")
    assert refused.returncode == 1
    assert "did not make" in refused.stderr and "--force" in refused.stderr
    assert stored_playlist(rig, "Mine") == songs  # untouched

    forced = frame_daemon("album", str(album), "--config", str(rig.config), "--playlist", "Mine",
                          "--length", "2", "--force")
    assert forced.returncode == 0, forced.stderr
    assert len(stored_playlist(rig, "Mine")) == 2 and stored_playlist(rig, "Mine") != songs


def test_a_damaged_record_of_our_playlists_is_one_clear_error(tmp_path):
    from frame_daemon.album import RECORD_FILE, PlaylistRecord
    from frame_daemon.errors import FrameDaemonError

    record = PlaylistRecord(tmp_path)
    for damaged in (b"\xff{}", b"[" * 3000):  # not UTF-8; nested past the parser's recursion
        (tmp_path / RECORD_FILE).write_bytes(damaged)
        with pytest.raises(FrameDaemonError, match=r"unreadable .*move it aside"):
            record.load()
