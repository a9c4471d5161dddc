"""Analyses shared through MPD's sticker database: the value, the index's bookkeeping, and real MPDs
(with and without a sticker file) read and written by `frame-daemon index` on two machines' worth
of configuration: one that reads the music files, one that cannot."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from frame_daemon.mood import Mood
from frame_daemon.music.index import TrackIndex
from frame_daemon.music.mpd.client import MpdLink
from frame_daemon.music.mpd.stickers import MoodStickers, plan_reads
from frame_daemon.music.shared_analysis import (
    ANALYSIS_VERSION,
    MODEL_FINGERPRINT,
    STALE_FACTOR,
    STICKER,
    SharedAnalysis,
)
from frame_daemon.music.track import MoodEstimate, MoodSource
from servers import LIBRARY, Mpd, running_mpd, write_library

ANALYSED = MoodEstimate(MoodSource.ANALYSIS, Mood(0.123456789, -0.5, 0.5), "analysis: 92 BPM, A minor")
MODIFIED = "2024-05-01T10:00:00Z"


# --- the value ---------------------------------------------------------------------------------------

def test_the_model_fingerprint_names_the_analysis_version():
    from frame_daemon.music.audio import mood
    from frame_daemon.vision.model_files import model_path

    head = json.loads(model_path("music-tagger-msd.json").read_text())["mood_head"]
    assert head["version"] == ANALYSIS_VERSION  # the analyses the tag head makes are current
    shipped = repr((mood.VALENCE, mood.AROUSAL, mood.CONFIDENCE, mood.CLIP_SD,
                    json.dumps(head, sort_keys=True)))
    assert hashlib.sha256(shipped.encode()).hexdigest()[:8] == MODEL_FINGERPRINT, (
        "the audio model changed: raise ANALYSIS_VERSION in frame_daemon/music/shared_analysis.py "
        "(frames then redo or distrust old shared analyses) and update MODEL_FINGERPRINT")


def test_a_value_round_trips_exactly_and_garbage_is_refused():
    shared = SharedAnalysis.of(ANALYSED, ANALYSIS_VERSION, MODIFIED)
    value = shared.encode()
    assert "\n" not in value and len(value) < 150  # one protocol line; a big library has many
    assert SharedAnalysis.decode(value) == shared  # the very same floats
    # MPD drops a client that sends a line over 4 KiB: whatever a tag says, the value stays short.
    wordy = SharedAnalysis.of(ANALYSED, ANALYSIS_VERSION, MODIFIED, tag_mood="calm; " * 2000, tag_bpm=92.0)
    assert len(wordy.encode()) < 1000 and SharedAnalysis.decode(wordy.encode()).tag_bpm == 92.0
    for bad in ("", "5", "not json", '{"va": 1}', '{"v":"x","va":"nan","ar":0,"c":1,"d":""}', "[]"):
        assert SharedAnalysis.decode(bad) is None


def test_the_estimate_names_the_shared_origin_and_distrusts_a_stale_one():
    shared = SharedAnalysis.of(ANALYSED, ANALYSIS_VERSION, MODIFIED)
    current = shared.estimate(MODIFIED)
    assert current.source is MoodSource.ANALYSIS and current.mood == ANALYSED.mood
    assert current.detail == "analysis (shared by MPD): 92 BPM, A minor"
    older_file = shared.estimate("2025-01-01T00:00:00Z")
    assert older_file.detail.startswith("analysis (shared by MPD, of an older file)")
    assert older_file.mood.confidence == pytest.approx(0.5 * STALE_FACTOR)
    old_model = SharedAnalysis.of(ANALYSED, "audio-0", MODIFIED).estimate(MODIFIED)
    assert old_model.detail.startswith("analysis (shared by MPD, model audio-0)")
    assert old_model.mood.confidence == pytest.approx(0.5 * STALE_FACTOR)


def test_reads_are_planned_in_folders_of_at_most_chunk_songs():
    uris = ([f"A/{i}.flac" for i in range(3)] + [f"B/x/{i}.flac" for i in range(4)]
            + [f"B/y/{i}.flac" for i in range(2)] + ["B/loose.flac", "root.flac"]
            + [f"C/{i}.flac" for i in range(5)])
    assert plan_reads(uris, 100) == ([""], [])
    folders, singles = plan_reads(uris, 4)
    # B (7 songs) splits into x and y, its own song asked alone; C is too big and flat: alone.
    assert folders == ["A", "B/x", "B/y"]
    assert sorted(singles) == sorted(["root.flac", "B/loose.flac"] + [f"C/{i}.flac" for i in range(5)])
    assert plan_reads([], 4) == ([], [])


# --- the index's bookkeeping ----------------------------------------------------------------------

def songs(*uris: str, modified: str = MODIFIED) -> list[dict]:
    return [{"file": u, "title": u, "genre": "Rock", "last-modified": modified} for u in uris]


@pytest.mark.parametrize("page", [None, 1], ids=["one page", "a page a track"])
def test_the_index_uses_shared_analyses_and_shares_only_its_own(tmp_path, monkeypatch, page):
    from frame_daemon.music import index as index_module

    if page:  # a big library is taken in page by page: the same as all at once
        monkeypatch.setattr(index_module, "SHARED_PAGE", page)
    music = tmp_path / "music"
    write_library(music, seconds=1.0, library=LIBRARY[-2:])  # two files a "server" can read
    readable = sorted(p.relative_to(music).as_posix() for p in music.rglob("*.flac"))
    with TrackIndex(tmp_path / "tracks.sqlite3") as index:
        index.refresh(songs(*readable, "elsewhere/current.flac", "elsewhere/old.flac"), music)
        assert index.needs_analysis() == readable
        index.set_estimate(readable[0], ANALYSED)  # analysed here
        made_here = SharedAnalysis.of(ANALYSED, ANALYSIS_VERSION, MODIFIED).encode()
        assert index.unshared() == [(readable[0], made_here)]

        other = MoodEstimate(MoodSource.ANALYSIS, Mood(0.8, 0.8, 0.5), "analysis: 140 BPM")
        stickers = {
            readable[0]: SharedAnalysis.of(other, ANALYSIS_VERSION, MODIFIED).encode(),
            readable[1]: SharedAnalysis.of(other, "audio-0", MODIFIED).encode(),
            "elsewhere/current.flac": SharedAnalysis.of(other, ANALYSIS_VERSION, MODIFIED).encode(),
            "elsewhere/old.flac": SharedAnalysis.of(other, "audio-0", MODIFIED).encode(),
        }
        stats = index.apply_shared(stickers)
        assert (stats.found, stats.used, stats.stale, stats.new) == (4, 3, 2, 3)
        # What was analysed here stays, and another machine's current result in MPD is left alone
        # (two machines reading the files must not overwrite each other's in turn).
        assert index.get(readable[0]).mood == ANALYSED.mood
        assert index.unshared() == []
        shared = index.get("elsewhere/current.flac")
        assert shared.source is MoodSource.ANALYSIS and shared.why == "analysis (shared by MPD): 140 BPM"
        assert shared.mood == other.mood
        old = index.get("elsewhere/old.flac")
        assert old.mood.confidence == pytest.approx(0.5 * STALE_FACTOR) and "audio-0" in old.why
        # A stale shared result is redone where the file is readable, and only there.
        assert index.needs_analysis() == [readable[1]]
        assert index.apply_shared(stickers).new == 0  # a second read changes nothing
        index.mark_shared(index.unshared())
        assert index.unshared() == []
        # Analysed here at last: the new result replaces the stale one and is shared.
        index.set_estimate(readable[1], ANALYSED)
        assert index.needs_analysis() == []
        assert [u for u, _ in index.unshared()] == [readable[1]]
        assert index.lacking_current_analysis() == ["elsewhere/old.flac"]
        # A read of some tracks leaves what is known of the others alone.
        some = {"elsewhere/old.flac": stickers["elsewhere/old.flac"]}
        assert index.apply_shared(some, among=list(some)).new == 0
        assert index.apply_shared(stickers).new == 0
        # Where the analysis failed here, the file's tags are shared, but never over an analysis.
        index.set_analysis_error(readable[0], "no decoder")
        index._db.execute("UPDATE tracks SET tag_mood = 'calm' WHERE uri IN (?, ?)", tuple(readable))
        index._db.execute("DELETE FROM estimates WHERE source = 'analysis' AND uri = ?", (readable[0],))
        index.mark_shared([(readable[0], "")])
        tags_only = SharedAnalysis(ANALYSIS_VERSION, MODIFIED, tag_mood="calm").encode()
        assert (readable[0], tags_only) in index.unshared()
        index.mark_shared([(readable[0], stickers["elsewhere/current.flac"])])
        assert readable[0] not in {u for u, _ in index.unshared()}
        index.mark_shared([(readable[0], stickers["elsewhere/old.flac"])])  # even a stale one
        assert readable[0] not in {u for u, _ in index.unshared()}
        # A changed file loses its analyses; the old sticker is now of an older file.
        index.refresh(songs(*readable, "elsewhere/current.flac", "elsewhere/old.flac",
                            modified="2025-02-02T00:00:00Z"), music)
        index.apply_shared(stickers)
        assert "of an older file" in index.get("elsewhere/current.flac").why


def test_an_upgraded_index_keeps_old_moods_until_they_are_reanalysed(tmp_path):
    from frame_daemon.music import index as index_module
    from frame_daemon.sqlite_schema import connect, migrate

    path = tmp_path / "tracks.sqlite3"
    old = connect(path)
    migrate(old, index_module._STEPS[:2])  # the schema before shared analyses
    old.execute("INSERT INTO tracks (uri, mpd_modified, file_mtime_ns, file_size, valence, arousal, "
                "confidence, source, why) VALUES ('a.flac', ?, 1, 2, 0.25, -0.5, 0.5, 'analysis', "
                "'analysis: 92 BPM')", (MODIFIED,))
    old.execute("INSERT INTO estimates VALUES ('a.flac', 'analysis', 0.25, -0.5, 0.5, 'analysis: 92 BPM')")
    old.close()
    with TrackIndex(path) as index:
        # Analyses made before versions were kept are of the first model: shared as such, kept
        # (mood and why) and listed to be redone in the background by the current one.
        assert index.needs_analysis() == ["a.flac"]
        assert index.get("a.flac").mood.valence == 0.25 and index.analysis_status() == (1, 0, 1)
        value = SharedAnalysis.decode(dict(index.unshared())["a.flac"])
        assert value.version == "audio-1" != ANALYSIS_VERSION and value.mood.valence == 0.25
        index.set_estimate("a.flac", MoodEstimate(MoodSource.ANALYSIS, Mood(0.5, 0.1, 0.5),
                                                  "analysis: mellow, acoustic, chill; 92 BPM"),
                           tags="mellow, acoustic, chill")
        assert index.needs_analysis() == [] and index.analysis_status() == (1, 1, 0)
        assert index.analysis_tags("a.flac") == "mellow, acoustic, chill"
        value = SharedAnalysis.decode(dict(index.unshared())["a.flac"])
        assert value.version == ANALYSIS_VERSION and value.tags == "mellow, acoustic, chill"


def test_analyses_of_the_previous_head_are_kept_and_redone(tmp_path):
    """An index analysed by the last shipped head (audio-3) keeps those moods and lists them to be
    redone by this one: the upgrade path of a new mood head."""
    assert ANALYSIS_VERSION != "audio-3"
    music = tmp_path / "music"
    write_library(music, seconds=1.0, library=LIBRARY[-2:])
    readable = sorted(p.relative_to(music).as_posix() for p in music.rglob("*.flac"))
    with TrackIndex(tmp_path / "tracks.sqlite3") as index:
        index.refresh(songs(*readable), music)
        for uri in index.needs_analysis():
            index.set_estimate(uri, ANALYSED, version="audio-3", tags="mellow, acoustic, chill")
        uris = index.needs_analysis()
        assert uris and index.analysis_status()[1:] == (0, len(uris))
        assert index.get(uris[0]).mood.valence == pytest.approx(0.123456789)
        index.set_estimate(uris[0], ANALYSED, tags="indie, rock")
        assert index.needs_analysis() == uris[1:] and index.analysis_status()[1:] == (1, len(uris) - 1)


# --- real MPD, real `frame-daemon index` ----------------------------------------------------------

# Three tracks whose moods come from their tags, three that need audio analysis (genre or nothing).
SMALL_LIBRARY = LIBRARY[:2] + LIBRARY[6:7] + LIBRARY[-3:]


def frame_daemon(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "frame_daemon", *args], capture_output=True,
                          text=True, timeout=300, cwd=ROOT, env=env)


def write_config(path: Path, mpd: Mpd, state: Path, music_directory: str) -> Path:
    # No [mqtt] broker runs and no photo source exists: `index` needs neither.
    path.write_text(f"""
[source]
path = "{path.parent / 'no-such-folder' / 'current.jpg'}"

[mpd]
host = "127.0.0.1"
port = {mpd.port}
music_directory = "{music_directory}"
timeout_s = 5

[state]
directory = "{state}"
""")
    return path


def without_ffmpeg(tmp_path: Path) -> dict:
    """The environment of a frame with no ffmpeg: a PATH holding only this Python."""
    bin_dir = tmp_path / "bin-without-ffmpeg"
    bin_dir.mkdir(exist_ok=True)
    with contextlib.suppress(FileExistsError):
        (bin_dir / "python3").symlink_to(sys.executable)
    return {**os.environ, "PATH": str(bin_dir)}


@pytest.fixture
def library(tmp_path) -> Path:
    music = tmp_path / "music"
    write_library(music, seconds=8.0, library=SMALL_LIBRARY)
    return music


@pytest.fixture
def mpd_server(tmp_path, library):
    with running_mpd(tmp_path / "mpd", library) as server:
        yield server


def user_stickers(server: Mpd) -> dict[str, dict[str, str]]:
    c = server.client()
    try:
        return {s["file"]: dict(c.sticker_list("song", s["file"])) for s in c.listall() if "file" in s}
    finally:
        c.disconnect()


def moods(state: Path) -> dict[str, tuple[float, float, float, str, str]]:
    with TrackIndex(TrackIndex.default_path(state)) as index:
        return {t.uri: (t.mood.valence, t.mood.arousal, t.mood.confidence, str(t.source), t.why)
                for t in index.tracks()}


def analysis_tags(state: Path, uri: str) -> str:
    with TrackIndex(TrackIndex.default_path(state)) as index:
        return index.analysis_tags(uri)


def test_a_frame_without_the_files_gets_the_servers_analysis(tmp_path, library, mpd_server,
                                                              demo_photos):
    assert ffmpeg_free(without_ffmpeg(tmp_path))
    c = mpd_server.client()
    uris = sorted(s["file"] for s in c.listall() if "file" in s)
    for uri in uris[:3]:  # a person's own stickers, from another MPD client
        c.sticker_set("song", uri, "rating", "8")
        c.sticker_set("song", uri, "playcount", "12")
    c.disconnect()

    server = write_config(tmp_path / "server.toml", mpd_server, tmp_path / "server-state", str(library))
    done = frame_daemon("index", "--config", str(server), "--workers", "1")
    assert done.returncode == 0, done.stderr
    after = user_stickers(mpd_server)
    for uri in uris[:3]:
        assert after[uri]["rating"] == "8" and after[uri]["playcount"] == "12"
    assert "6 shared through MPD's stickers" in done.stdout, done.stdout
    # Every track analysed, and nothing of ours outside our one sticker.
    assert all(STICKER in found for found in after.values())
    assert {name for found in after.values() for name in found} == {STICKER, "rating", "playcount"}

    frame = write_config(tmp_path / "frame.toml", mpd_server, tmp_path / "frame-state", "")
    done = frame_daemon("index", "--config", str(frame), env=without_ffmpeg(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "6 tracks use an analysis shared through MPD's stickers" in done.stdout, done.stdout

    served, seen = moods(tmp_path / "server-state"), moods(tmp_path / "frame-state")
    assert served.keys() == seen.keys()
    analysed = [u for u, m in served.items() if m[3] == "analysis"]
    assert len(analysed) == 3  # the untagged and genre-only tracks
    for uri, (valence, arousal, confidence, source, why) in served.items():
        assert seen[uri][:4] == (valence, arousal, confidence, source)
        if source == "analysis":  # the music tagger's top three tags explain it, here and there
            tags = analysis_tags(tmp_path / "server-state", uri)
            assert len(tags.split(", ")) == 3 and why.startswith(f"analysis: {tags}; "), (tags, why)
            assert analysis_tags(tmp_path / "frame-state", uri) == tags
            assert seen[uri][4] == why.replace("analysis: ", "analysis (shared by MPD): ")
        else:  # MPD 0.23 passes no mood tag on: the file's tag came through the sticker too
            assert source == "tag" and seen[uri][4] == f"{why} (shared by MPD)"

    # A demo photo whose fitting tracks (within max_distance) include analysed ones: the coffee.
    photo = demo_photos / "coffee.jpg"
    answers = []
    for config in (server, frame):
        done = frame_daemon("match", str(photo), "--config", str(config), "--json", "-n", "6")
        assert done.returncode == 0, done.stderr
        answers.append(json.loads(done.stdout))
    strip = [[(t["uri"], t["valence"], t["arousal"], t["distance"], t["source"])
              for t in a["tracks"]] for a in answers]
    assert strip[0] == strip[1] and len(strip[0]) >= 3
    shared_whys = [t["why"] for t in answers[1]["tracks"] if t["source"] == "analysis"]
    assert shared_whys and all("; analysis (shared by MPD): " in w for w in shared_whys)
    for answer in answers:  # `match` names the music side's tags, as scenes explain the photo
        for t in answer["tracks"]:
            if t["source"] == "analysis":
                assert f": {analysis_tags(tmp_path / 'server-state', t['uri'])}; " in t["why"], t["why"]

    # A second server run shares nothing again: MPD holds every result already.
    done = frame_daemon("index", "--config", str(server), "--workers", "1")
    assert done.returncode == 0, done.stderr
    assert "audio analysis: 0 analysed now" in done.stdout and "shared through" not in next(
        line for line in done.stdout.splitlines() if line.startswith("audio analysis")), done.stdout
    # MPD lost our stickers (a new sticker file): the next server run notices and shares again.
    c = mpd_server.client()
    for uri in uris:
        c.sticker_delete("song", uri, STICKER)
    c.disconnect()
    done = frame_daemon("index", "--config", str(server), "--workers", "1")
    assert "0 analysed now" in done.stdout and "6 shared through MPD's stickers" in done.stdout
    assert all(STICKER in found for found in user_stickers(mpd_server).values())


def ffmpeg_free(env: dict) -> bool:
    import shutil

    return shutil.which("ffmpeg", path=env["PATH"]) is None


def test_reads_in_parts_find_the_same_stickers(tmp_path, mpd_server):
    from frame_daemon.config import load_config
    from frame_daemon.doctor import OK, check_stickers

    frame = load_config(write_config(tmp_path / "frame.toml", mpd_server, tmp_path / "state", ""))
    finding = check_stickers(frame)
    assert finding.status == OK and "uses the analyses of the machine that reads the files" in finding.detail
    link = MpdLink("127.0.0.1", mpd_server.port)
    try:
        uris = [s["file"] for s in link.list_all()]
        whole = MoodStickers(link)
        assert whole.write([(u, f"value of {u}") for u in uris] + [("gone/away.flac", "x")]) == [
            (u, f"value of {u}") for u in uris]
        with pytest.raises(ValueError):
            whole.write([(uris[0], "5")], name="rating")  # never outside our namespace
        assert whole.read(uris) == {u: f"value of {u}" for u in uris}
        assert MoodStickers(link, chunk=1).read([*uris, "gone/away.flac"]) == whole.read(uris)
    finally:
        link.close()


def test_a_big_library_is_read_in_parts_mpd_can_answer(tmp_path):
    # MPD drops a client whose answer outgrows the socket's buffer plus max_output_buffer_size
    # (8 MiB by default: some 40,000 of our stickers); here 8 KiB and 20 values of 3.5 KB (MPD
    # takes command lines up to 4 KiB) stand for a big library.
    music = tmp_path / "music"
    write_library(music, seconds=0.5)
    server = Mpd(tmp_path / "mpd", music, extra=('max_output_buffer_size "8"',))
    server.start()
    link = MpdLink("127.0.0.1", server.port)
    try:
        server.update_and_wait()
        # The library itself is listed in windows too, in the order MPD keeps it.
        c = server.client()
        every = [s for s in c.listallinfo() if "file" in s]
        c.disconnect()
        assert link.list_all(page=3) == every and len(every) == 20
        uris = [s["file"] for s in every]
        values = {u: f"{u}:" + "x" * 3500 for u in uris}
        MoodStickers(link).write(list(values.items()))
        # (Read in one answer, MPD drops us here: MpdUnavailable. Not asserted: how much the
        # kernel's socket buffer takes first varies from machine to machine.)
        assert MoodStickers(link, chunk=2).read(uris) == values
    finally:
        link.close()
        server.stop()


def test_an_mpd_without_a_sticker_file_degrades_cleanly(tmp_path, library):
    server = Mpd(tmp_path / "mpd", library, sticker_file=False)
    server.start()
    try:
        server.update_and_wait()
        link = MpdLink("127.0.0.1", server.port)
        assert not MoodStickers(link).available()
        link.close()
        config = write_config(tmp_path / "server.toml", server, tmp_path / "state", str(library))
        done = frame_daemon("index", "--config", str(config), "--workers", "1")
        assert done.returncode == 0, done.stderr
        assert "not shared: MPD has no sticker database (add 'sticker_file" in done.stdout
        assert "6 analysed now" in done.stdout  # the rest works as before
        # Progress (done, rate, ETA) as log lines when not on a terminal: tags, then audio.
        assert "reading tags: 6/6 tracks" in done.stderr and "analysed 6/6 tracks" in done.stderr
        assert done.stderr.count("tracks/s, ETA") >= 2
        doctor = frame_daemon("doctor", "--config", str(config))
        line = next(x for x in doctor.stdout.splitlines() if x.split()[1:2] == ["stickers"])
        assert line.startswith("WARN") and "sticker_file" in line, doctor.stdout
    finally:
        server.stop()


def test_a_running_frame_takes_in_what_the_server_shares_later(tmp_path, library, mpd_server):
    import queue

    from frame_daemon.config import MpdConfig
    from frame_daemon.events import IndexRefreshed
    from frame_daemon.music.index_worker import IndexWorker

    events: queue.Queue = queue.Queue()
    worker = IndexWorker(tmp_path / "frame-state" / "tracks.sqlite3",
                         MpdConfig(host="127.0.0.1", port=mpd_server.port), events.put,
                         sticker_poll_s=0.2)

    def next_pool():
        while True:
            event = events.get(timeout=60)
            if isinstance(event, IndexRefreshed) and event.pool is not None:
                return {t.uri: t for t in event.pool.tracks}

    worker.start()
    try:
        worker.request()
        before = next_pool()
        assert before["Unknown/untagged.flac"].source is MoodSource.NEUTRAL
        server = write_config(tmp_path / "server.toml", mpd_server, tmp_path / "server-state",
                              str(library))
        done = frame_daemon("index", "--config", str(server), "--workers", "1")
        assert done.returncode == 0, done.stderr
        after = next_pool()  # no refresh asked for: the worker looked by itself
        untagged = after["Unknown/untagged.flac"]
        assert untagged.source is MoodSource.ANALYSIS
        assert untagged.why.startswith("analysis (shared by MPD): ")
        assert moods(tmp_path / "server-state")["Unknown/untagged.flac"][:2] == (
            untagged.mood.valence, untagged.mood.arousal)
    finally:
        worker.stop()


def test_a_crafted_sticker_is_one_unreadable_value_not_a_failed_index(tmp_path, library,
                                                                       mpd_server):
    # Any MPD client may write our sticker. Nested 3,000 deep (MPD takes lines up to 4 KiB), JSON
    # outgrows Python's recursion limit: that one value must be skipped, not end every refresh.
    c = mpd_server.client()
    uris = sorted(s["file"] for s in c.listall() if "file" in s)
    c.sticker_set("song", uris[0], STICKER, "[" * 3000)
    c.disconnect()
    frame = write_config(tmp_path / "frame.toml", mpd_server, tmp_path / "frame-state", "")
    done = frame_daemon("index", "--config", str(frame))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert set(moods(tmp_path / "frame-state")) == set(uris)  # every track indexed
