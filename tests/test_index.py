"""The SQLite track index, refreshed from MPD-shaped song lists over a folder of real tagged files."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from mutagen.id3 import ID3, TCON, TMOO

from frame_daemon.errors import TrackError
from frame_daemon.mood import MOOD_WORDS, Mood
from frame_daemon.music.index import SCHEMA_VERSION, RefreshStats, TrackIndex
from frame_daemon.music.lexicon import GENRE_PRIORS, MOOD_TAG_WORDS
from frame_daemon.music.select import TrackPool
from frame_daemon.music.track import MoodEstimate, MoodSource
from test_tags import CAN_WRITE_MP3, write_tagged, write_tone

ANALYSIS = MoodEstimate(MoodSource.ANALYSIS, Mood(0.1, 0.9, 0.6), "tempo 150, major, loud")


@pytest.fixture
def music(tmp_path) -> Path:
    """A music directory with tagged, untagged and broken files."""
    root = tmp_path / "music"
    write_tagged(root / "calm.flac", TITLE="File Title", ARTIST="File Artist", MOOD="Calm", GENRE="Metal")
    write_tagged(root / "genre" / "ambient.ogg", GENRE="Ambient", BPM="60")
    write_tone(root / "plain.flac")
    write_tagged(root / "multi.flac", MOOD=["happy", "energetic"])
    (root / "bad.flac").write_bytes(b"\x00not a flac file at all" * 40)
    if CAN_WRITE_MP3:
        write_tone(root / "sad.mp3")
        id3 = ID3()
        id3.add(TMOO(encoding=3, text=["sad"]))
        id3.add(TCON(encoding=3, text=["Pop"]))
        id3.save(root / "sad.mp3")
    return root


def mpd_songs(root: Path, **modified: str) -> list[dict]:
    """What python-mpd2's listallinfo() returns for `root`: directories and songs, tags from MPD."""
    songs: list[dict] = [{"directory": "genre", "last-modified": "2024-05-01T10:00:00Z"}]
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        uri = path.relative_to(root).as_posix()
        songs.append({"file": uri, "title": f"MPD {path.stem}", "artist": ["MPD Artist", "Guest"],
                      "album": "MPD Album", "genre": ["Ambient", "Drone"], "duration": "0.500",
                      "time": "1", "last-modified": modified.get(path.stem, "2024-05-01T10:00:00Z")})
    songs.append({"playlist": "mix.m3u", "last-modified": "2024-05-01T10:00:00Z"})
    return songs


def n_songs(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file())


@pytest.fixture
def index(tmp_path):
    with TrackIndex(tmp_path / "state" / "tracks.sqlite3") as idx:
        yield idx


def test_schema_wal_and_default_path(tmp_path, index):
    assert TrackIndex.default_path(tmp_path) == tmp_path / "tracks.sqlite3"
    db = sqlite3.connect(index.path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    assert len(index) == 0 and index.tracks() == []


def test_refresh_reads_file_tags_with_fallbacks(music, index):
    stats = index.refresh(mpd_songs(music), music)
    total = n_songs(music)
    assert (stats.added, stats.updated, stats.removed, stats.unchanged) == (total, 0, 0, 0)
    assert len(index) == total

    calm = index.get("calm.flac")  # mood tag wins over the file's genre and MPD's
    assert calm.source is MoodSource.TAG
    assert (calm.mood.valence, calm.mood.arousal) == MOOD_WORDS["calm"]
    assert calm.why == "mood tag 'Calm'"
    assert (calm.title, calm.artist, calm.album, calm.genre) == ("File Title", "File Artist",
                                                                 "MPD Album", "Metal")
    assert calm.duration == 0.5

    ambient = index.get("genre/ambient.ogg")  # no mood tag: the genre prior, slowed by 60 BPM
    assert ambient.source is MoodSource.GENRE
    assert ambient.mood.valence == GENRE_PRIORS["ambient"][0]
    assert ambient.mood.arousal < GENRE_PRIORS["ambient"][1]
    assert ambient.why == "genre 'Ambient' (prior), 60 BPM"

    multi = index.get("multi.flac")
    (hv, _), (ev, _) = MOOD_TAG_WORDS["happy"], MOOD_TAG_WORDS["energetic"]
    assert multi.mood.valence == pytest.approx((hv + ev) / 2, abs=1e-3)
    # MPD's repeated tags: the first artist, the genres joined (and read as the ambient prior)
    assert (multi.artist, multi.genre) == ("MPD Artist", "Ambient; Drone")
    assert multi.title == "MPD multi"


def test_a_pool_read_row_by_row_holds_the_same_tracks(music, index):
    index.refresh(mpd_songs(music), music)
    # A stored mood off the plane (an older model's) is clipped on the way in, as in tracks().
    index._db.execute("UPDATE tracks SET valence = 1.5, why = '' WHERE uri = 'plain.flac'")
    pool = TrackPool.from_rows(index.rows())
    assert list(pool.tracks) == index.tracks() and len(pool) == n_songs(music)
    assert pool.tracks[pool.index_of("plain.flac")].mood.valence == 1.0


def test_untagged_file_without_mpd_genre_is_neutral(music, index):
    songs = [s for s in mpd_songs(music) if s.get("file") == "plain.flac"]
    del songs[0]["genre"]
    index.refresh(songs, music)
    plain = index.get("plain.flac")
    assert plain.source is MoodSource.NEUTRAL
    assert (plain.mood.valence, plain.mood.arousal, plain.mood.confidence) == (0.0, 0.0, 0.05)
    assert plain.why == "no mood information"


@pytest.mark.skipif(not CAN_WRITE_MP3, reason="this libsndfile cannot write MP3, so no MP3 to tag")
def test_mp3_mood_tag(music, index):
    index.refresh(mpd_songs(music), music)
    sad = index.get("sad.mp3")
    assert (sad.source, sad.genre) == (MoodSource.TAG, "Pop")
    assert (sad.mood.valence, sad.mood.arousal) == MOOD_TAG_WORDS["sad"]


def test_corrupt_file_is_reported_and_indexed_from_mpd(music, index):
    stats = index.refresh(mpd_songs(music), music)
    assert [uri for uri, _ in stats.failed] == ["bad.flac"]
    assert "corrupt" in stats.failed[0][1]
    bad = index.get("bad.flac")
    assert (bad.title, bad.source) == ("MPD bad", MoodSource.GENRE)


def test_every_estimate_is_kept_most_trusted_first(music, index):
    index.refresh(mpd_songs(music), music)
    found = index.estimates("calm.flac")
    assert [e.source for e in found] == [MoodSource.TAG, MoodSource.GENRE, MoodSource.NEUTRAL]
    assert found[1].mood.valence == GENRE_PRIORS["metal"][0]
    assert index.estimates("nowhere.flac") == []


def test_mpd_only_without_music_directory(music, index, tmp_path):
    songs = mpd_songs(music)
    songs[1]["mood"] = ["tense", "dark"]
    stats = index.refresh(songs, None)
    assert stats.failed == []
    first = index.get(songs[1]["file"])
    assert (first.title, first.source) == (f"MPD {Path(songs[1]['file']).stem}", MoodSource.TAG)
    assert first.why == "mood tag 'tense; dark'"
    # An unreadable music directory is the same: MPD's tags only, nothing "failed".
    again = TrackIndex(tmp_path / "other.sqlite3")
    assert again.refresh(songs, tmp_path / "no-such-dir").failed == []
    assert again.get("calm.flac").title == "MPD calm"
    again.close()


def test_second_refresh_does_not_reread_unchanged_files(music, index):
    index.refresh(mpd_songs(music), music)
    # Garble a file behind the index's back, keeping its size and mtime: it must not be read again.
    path = music / "calm.flac"
    st = path.stat()
    path.write_bytes(b"\xff" * st.st_size)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    stats = index.refresh(mpd_songs(music), music)
    assert stats == RefreshStats(added=0, updated=0, removed=0, unchanged=n_songs(music), failed=[])
    assert index.get("calm.flac").source is MoodSource.TAG

    # Touch it: now it is re-read, fails, and falls back to MPD's tags.
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    stats = index.refresh(mpd_songs(music), music)
    assert (stats.updated, stats.unchanged) == (1, n_songs(music) - 1)
    assert [uri for uri, _ in stats.failed] == ["calm.flac"]
    assert index.get("calm.flac").title == "MPD calm"


def test_retagged_file_is_reread(music, index):
    index.refresh(mpd_songs(music), music)
    path = music / "genre" / "ambient.ogg"
    write_tagged(path, GENRE="Ambient", MOOD="angry")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    stats = index.refresh(mpd_songs(music), music)
    assert stats.updated == 1
    track = index.get("genre/ambient.ogg")
    assert (track.source, track.why) == (MoodSource.TAG, "mood tag 'angry'")


def test_mpd_last_modified_change_rereads(music, index):
    index.refresh(mpd_songs(music), None)
    stats = index.refresh(mpd_songs(music, plain="2025-01-01T00:00:00Z"), None)
    assert (stats.updated, stats.unchanged) == (1, n_songs(music) - 1)


def test_tracks_gone_from_mpd_are_removed(music, index):
    index.refresh(mpd_songs(music), music)
    index.set_estimate("calm.flac", ANALYSIS)
    kept = [s for s in mpd_songs(music) if s.get("file") != "calm.flac"]
    stats = index.refresh(kept, music)
    assert (stats.removed, stats.added, stats.updated) == (1, 0, 0)
    assert index.get("calm.flac") is None
    assert index.estimates("calm.flac") == []
    assert "calm.flac" not in {t.uri for t in index.tracks()}


def test_progress_and_interrupted_refresh_keeps_committed_batches(music, index):
    calls = []
    index.refresh(mpd_songs(music)[:3], music, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 2), (2, 2)]  # the directory entry is not a song

    fresh = TrackIndex(index.path.with_name("fresh.sqlite3"))
    fresh.batch_size = 2

    def stop_at_five(done: int, total: int) -> None:
        if done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fresh.refresh(mpd_songs(music), music, progress=stop_at_five)
    fresh.close()
    with TrackIndex(fresh.path) as reopened:
        assert len(reopened) == 4  # two committed batches of two; the fifth song was rolled back
        stats = reopened.refresh(mpd_songs(music), music)
        assert (stats.added, stats.unchanged) == (n_songs(music) - 4, 4)


def test_set_estimate_priority(music, index):
    index.refresh(mpd_songs(music), music)
    # genre only -> analysis takes over
    index.set_estimate("genre/ambient.ogg", ANALYSIS)
    track = index.get("genre/ambient.ogg")
    assert (track.source, track.mood, track.why) == (MoodSource.ANALYSIS, ANALYSIS.mood, ANALYSIS.detail)
    # a mood tag still wins over analysis
    index.set_estimate("calm.flac", ANALYSIS)
    assert index.get("calm.flac").source is MoodSource.TAG
    assert [e.source for e in index.estimates("calm.flac")] == [
        MoodSource.TAG, MoodSource.ANALYSIS, MoodSource.GENRE, MoodSource.NEUTRAL]
    # a newer analysis replaces the old one
    newer = MoodEstimate(MoodSource.ANALYSIS, Mood(-0.2, -0.3, 0.7), "tempo 70, minor")
    index.set_estimate("genre/ambient.ogg", newer)
    assert index.get("genre/ambient.ogg").mood == newer.mood
    assert sum(e.source is MoodSource.ANALYSIS for e in index.estimates("genre/ambient.ogg")) == 1
    with pytest.raises(TrackError, match="not in the track index"):
        index.set_estimate("nowhere.flac", ANALYSIS)


def test_analysis_survives_unchanged_refresh_and_reopen_but_not_a_changed_file(music, index):
    index.refresh(mpd_songs(music), music)
    index.set_estimate("plain.flac", ANALYSIS)
    index.refresh(mpd_songs(music), music)
    index.close()
    with TrackIndex(index.path) as reopened:
        assert reopened.get("plain.flac").source is MoodSource.ANALYSIS
        path = music / "plain.flac"
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
        reopened.refresh(mpd_songs(music), music)
        assert reopened.get("plain.flac").source is MoodSource.GENRE
        assert MoodSource.ANALYSIS not in {e.source for e in reopened.estimates("plain.flac")}


def test_a_music_share_not_mounted_yet_keeps_every_tracks_tags_and_analysis(music, index):
    # At boot the share's mount point may still be empty: every file MPD lists was missing here,
    # and each track was indexed again from MPD's tags alone, its analysis dropped.
    index.refresh(mpd_songs(music), music)
    index.set_estimate("plain.flac", ANALYSIS)
    songs = mpd_songs(music)
    moods = {t.uri: (t.mood, t.source) for t in index.tracks()}
    share = music.rename(music.with_name("share"))
    music.mkdir()  # the empty mount point
    stats = index.refresh(songs, music)
    assert (stats.updated, stats.unchanged, stats.failed) == (0, len(moods), [])
    assert {t.uri: (t.mood, t.source) for t in index.tracks()} == moods
    assert moods["plain.flac"][1] is MoodSource.ANALYSIS and moods["calm.flac"][1] is MoodSource.TAG
    music.rmdir()
    share.rename(music)  # mounted: the same files, nothing to read again
    assert index.refresh(songs, music).unchanged == len(moods)
    assert index.get("plain.flac").source is MoodSource.ANALYSIS


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "tracks.sqlite3"
    TrackIndex(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    newer = rf"schema version {SCHEMA_VERSION + 1} is newer .* \({SCHEMA_VERSION}\)"
    with pytest.raises(TrackError, match=newer) as info:
        TrackIndex(path)
    assert info.value.path == path


def test_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "tracks.sqlite3"
    path.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(TrackError, match="delete it to rebuild"):
        TrackIndex(path)


# The track index as version 1 wrote it, before the analysis error was kept (built here, so the
# test needs no old file): the upgrade must keep its tracks and estimates.
VERSION_1 = """
CREATE TABLE tracks (uri TEXT PRIMARY KEY, title TEXT NOT NULL DEFAULT '',
    artist TEXT NOT NULL DEFAULT '', album TEXT NOT NULL DEFAULT '', genre TEXT NOT NULL DEFAULT '',
    duration REAL NOT NULL DEFAULT 0, mpd_modified TEXT NOT NULL DEFAULT '', file_mtime_ns INTEGER,
    file_size INTEGER, tag_mood TEXT NOT NULL DEFAULT '', tag_bpm REAL,
    tag_key TEXT NOT NULL DEFAULT '', valence REAL NOT NULL DEFAULT 0,
    arousal REAL NOT NULL DEFAULT 0, confidence REAL NOT NULL DEFAULT 0,
    source TEXT NOT NULL DEFAULT 'neutral', why TEXT NOT NULL DEFAULT '');
CREATE TABLE estimates (uri TEXT NOT NULL REFERENCES tracks(uri) ON DELETE CASCADE,
    source TEXT NOT NULL, valence REAL NOT NULL, arousal REAL NOT NULL, confidence REAL NOT NULL,
    detail TEXT NOT NULL DEFAULT '', PRIMARY KEY (uri, source));
INSERT INTO tracks (uri, title, genre, file_mtime_ns, file_size, valence, arousal, confidence,
                    source, why)
    VALUES ('calm.flac', 'Old Title', 'Ambient', 1, 10, -0.2, -0.6, 0.5, 'genre', 'genre Ambient');
INSERT INTO estimates VALUES ('calm.flac', 'genre', -0.2, -0.6, 0.5, 'Ambient');
PRAGMA user_version = 1;
"""


def test_a_version_1_index_is_upgraded_in_place(tmp_path):
    path = tmp_path / "tracks.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(VERSION_1)
    db.close()
    with TrackIndex(path) as index:
        track = index.get("calm.flac")
        assert track is not None and track.title == "Old Title"
        assert [e.source for e in index.estimates("calm.flac")] == [MoodSource.GENRE]
        assert index.needs_analysis() == ["calm.flac"]  # reads the new column
        index.set_analysis_error("calm.flac", "too short")
        assert index.needs_analysis() == [] and index.analysis_counts() == (0, 1)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


def test_a_version_1_index_that_has_the_new_column_already_opens(tmp_path, music):
    """Version 1 files written after the analysis error came (it had no step of its own)."""
    path = tmp_path / "tracks.sqlite3"
    with TrackIndex(path) as index:
        index.refresh(mpd_songs(music), music)
        before = index.get("calm.flac")
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 1")
    db.close()
    with TrackIndex(path) as index:
        assert index.get("calm.flac") == before
