"""`frame-daemon run` end to end: real mosquitto, real MPD, real photos, the shipped model."""

from __future__ import annotations

import json
import os
import shutil
import signal

import pytest

from conftest import score_as_the_daemon
from frame_daemon.mood import Mood
from frame_daemon.vision.model import MoodModel
from harness import mpd_queue, mpd_status, wait_for
from rig import AVAIL, STATE, show, wait_state
from servers import MqttRecorder


def test_photo_changes_queue_fitting_tracks_and_state_is_published(rig, mood_model):
    rig.daemon.start()
    s = wait_state(rig, lambda s: s.get("queued"), "first tracks queued")
    assert rig.recorder.text(AVAIL) == "online"
    for key in ("photo", "valence", "arousal", "mood", "confidence", "follow", "track", "queued",
                "error"):
        assert key in s
    assert s["follow"] == "follow" and s["error"] is None
    # MPD was stopped: the daemon started playing what it queued.
    wait_for(lambda: mpd_status(rig.mpd)["state"] == "play", 10, what="MPD playing")
    queue = [e["file"] for e in mpd_queue(rig.mpd)]
    assert s["queued"] == queue[:3]

    scored = score_as_the_daemon(mood_model, rig.photos / "bright.jpg")
    dark = score_as_the_daemon(mood_model, rig.photos / "dark.jpg")
    assert scored.mood.distance(dark.mood) > 0.05, "test photos must differ in mood"
    old_ids = {e["id"] for e in mpd_queue(rig.mpd)}
    show(rig, "bright.jpg")
    s2 = wait_state(rig, lambda s: abs(s["valence"] - scored.mood.valence) < 0.005 and
                    s["queued"] != queue[:3], "new tracks queued for the new photo")
    assert s2["valence"] == pytest.approx(scored.mood.valence, abs=0.01)
    q = mpd_queue(rig.mpd)
    files = [e["file"] for e in q]
    # Follow mode: the first new track plays now, the others follow it in order. (The same track
    # may also be the one playing before: a small library repeats; the new entry must play.)
    def first_new_entry_playing() -> bool:
        song_id = mpd_status(rig.mpd).get("songid")
        return song_id not in old_ids and any(
            e["id"] == song_id and e["file"] == s2["queued"][0] for e in mpd_queue(rig.mpd))

    wait_for(first_new_entry_playing, 10, what="the first new track playing")
    current = int(mpd_status(rig.mpd)["song"])
    assert files[current:current + len(s2["queued"])] == s2["queued"]
    # And they fit: on average nearer the photo's mood than the library's typical track (the
    # music follows a smoothed mood, with some diversity, so one pick may stray).
    from frame_daemon.music.index import TrackIndex

    with TrackIndex(TrackIndex.default_path(rig.tmp / "state")) as index:
        moods = {t.uri: t.mood for t in index.tracks()}
    target = Mood(scored.mood.valence, scored.mood.arousal)
    chosen = [target.distance(moods[u]) for u in s2["queued"]]
    everyone = sorted(target.distance(m) for m in moods.values())
    assert sum(chosen) / len(chosen) < everyone[len(everyone) // 2]


def test_unreadable_photo_publishes_error_and_music_keeps_playing(rig):
    rig.daemon.start()
    first = wait_state(rig, lambda s: s.get("queued"), "first tracks queued")
    wait_for(lambda: mpd_status(rig.mpd)["state"] == "play", 10, what="MPD playing")
    tmp = rig.current.with_name(".bad.jpg")
    tmp.write_bytes(b"\xff\xd8\xff\xe0 definitely not a whole jpeg")
    os.replace(tmp, rig.current)
    s = wait_state(rig, lambda s: s["error"], "error state")
    assert "current.jpg" in s["error"]
    assert s["queued"] == first["queued"]
    assert mpd_status(rig.mpd)["state"] == "play"
    assert rig.daemon.alive()


def test_a_person_editing_the_queue_suspends_following(rig):
    rig.daemon.start()
    wait_state(rig, lambda s: s.get("queued"), "first tracks queued")
    c = rig.mpd.client()
    try:
        c.add("Iron_Teeth/genre_only_rock.flac")
    finally:
        c.disconnect()
    wait_state(rig, lambda s: s["follow"] == "suspended", "suspended state")
    before = [e["file"] for e in mpd_queue(rig.mpd)]
    show(rig, "bright.jpg")
    bright = score_as_the_daemon(MoodModel.load(), rig.photos / "bright.jpg").mood.valence
    wait_state(rig, lambda s: s["follow"] == "suspended" and abs(s["valence"] - bright) < 0.005,
               "photo scored while suspended")
    # The user's music is untouched: nothing added or removed while suspended.
    assert [e["file"] for e in mpd_queue(rig.mpd)] == before


def test_mpd_restart_applies_the_last_decision_when_back(rig):
    rig.daemon.start()
    first = wait_state(rig, lambda s: s.get("queued"), "first tracks queued")
    rig.mpd.stop()
    wait_state(rig, lambda s: s["mpd"] == "unavailable", "MPD unavailable in state")
    bright = score_as_the_daemon(MoodModel.load(), rig.photos / "bright.jpg").mood.valence
    show(rig, "bright.jpg")
    s = wait_state(rig, lambda s: abs(s["valence"] - bright) < 0.005,
                   "photo scored while MPD is down")
    assert "MPD" in s["error"]  # a good photo does not hide that MPD is still away
    assert rig.daemon.alive()
    rig.mpd.start()  # its state file restores the old queue, with the first photo's tracks
    s = wait_state(rig, lambda s: s["mpd"] == "connected" and s["error"] is None and
                   s["queued"] and s["queued"] != first["queued"],
                   "the decision made while MPD was down applied", timeout=30)
    queue = [e["file"] for e in mpd_queue(rig.mpd)]
    current = int(mpd_status(rig.mpd)["song"])
    # In MPD's queue, in order: playing now (follow mode starts a change at once, after its fade)
    # or right after the current track.
    start = current if queue[current] == s["queued"][0] else current + 1
    assert queue[start:start + len(s["queued"])] == s["queued"]
    assert s["photo"].endswith("current.jpg")


def test_broker_restart_republishes_retained_state(rig):
    rig.daemon.start()
    wait_state(rig, lambda s: s.get("queued"), "first tracks queued")
    rig.broker.stop()  # no persistence: the broker forgets every retained message
    rig.broker.start()
    fresh = MqttRecorder(rig.broker.port, ["frame-daemon/#"])
    try:
        wait_for(lambda: fresh.json(STATE) and fresh.text(AVAIL) == "online", 30,
                 what="retained state after broker restart")
    finally:
        fresh.close()
    assert rig.daemon.alive()


def test_sigterm_stops_within_two_seconds_and_leaves_mpd_playing(rig):
    rig.daemon.start()
    wait_state(rig, lambda s: s.get("queued"), "first tracks queued")
    wait_for(lambda: mpd_status(rig.mpd)["state"] == "play", 10, what="MPD playing")
    # The README promises 2 s (systemd's TimeoutStopSec is 10): a deadline, not a measurement.
    code = rig.daemon.stop(signal.SIGTERM, timeout=2.0)
    assert code == 0, rig.daemon.log()[-3000:]
    assert " WARNING " not in rig.daemon.log().split("stopping (SIGTERM)")[-1]  # a clean stop
    assert mpd_status(rig.mpd)["state"] == "play"
    wait_for(lambda: rig.recorder.text(AVAIL) == "offline", 5, what="offline availability")


def test_database_change_refreshes_the_index(rig):
    rig.daemon.start()
    s = wait_state(rig, lambda s: s.get("index_size"), "index built")
    n = s["index_size"]
    extra = rig.mpd.music_dir / "Extra"
    extra.mkdir()
    shutil.copy(next(rig.mpd.music_dir.glob("Aerial/*.flac")), extra / "copy.flac")
    rig.mpd.update_and_wait()
    wait_state(rig, lambda s: s["index_size"] == n + 1, "index refreshed after MPD update")


def test_match_and_index_commands(rig):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "frame_daemon", "index", "--config",
                           str(rig.config)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "20 tracks" in proc.stdout

    def match(n: int) -> dict:
        proc = subprocess.run([sys.executable, "-m", "frame_daemon", "match", str(rig.current),
                               "--config", str(rig.config), "--json", "-n", str(n)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    # -n is obeyed: the config asks for 3 tracks (TEST_FOLLOW), and more than 3 of the library fit
    # this photo (4 today), so none of these counts could come from the config.
    assert "tracks = 3" in rig.config.read_text()
    out = match(20)
    assert 3 < len(out["tracks"]) < 20, [t["uri"] for t in out["tracks"]]
    assert len(match(1)["tracks"]) == 1 and len(match(2)["tracks"]) == 2
    # Fit before count: only the tracks that fit (not the 20 asked for), each within the cap,
    # nearest first.
    for t in out["tracks"]:
        assert {"uri", "valence", "arousal", "distance", "why"} <= set(t)
        assert t["distance"] <= out["target"]["max_distance"]
    distances = [t["distance"] for t in out["tracks"]]
    assert distances == sorted(distances)
    # Both the photo's own mood and where it falls in this library are shown.
    assert {"photo", "library", "blend", "library_fit"} <= set(out["target"])
    assert out["target"]["photo"]["valence"] == out["valence"]
    assert mpd_queue(rig.mpd) == []  # match touches nothing


def test_untagged_tracks_are_analysed_in_the_background(rig):
    from frame_daemon.music.index import TrackIndex
    from frame_daemon.music.track import MoodSource

    rig.daemon.start()
    wait_state(rig, lambda s: s.get("queued"), "first tracks queued")
    wait_for(lambda: "audio analysis:" in rig.daemon.log(), 60, what="background analysis")
    with TrackIndex(TrackIndex.default_path(rig.tmp / "state")) as index:
        untagged = index.get("Unknown/untagged.flac")
        assert untagged.source == MoodSource.ANALYSIS and untagged.why.startswith("analysis")
        tagged = index.get("Lake_Trio/calm_lake.flac")
        assert tagged.source == MoodSource.TAG  # a mood tag outranks the analysis...
        assert MoodSource.ANALYSIS in {e.source for e in index.estimates(tagged.uri)}  # ...kept
        assert index.needs_analysis() == []


def test_analysis_workers_die_with_a_killed_daemon(rig):
    import psutil

    rig.daemon.start()
    parent = psutil.Process(rig.daemon.proc.pid)
    workers = wait_for(lambda: [c for c in parent.children(recursive=True)
                                if "--multiprocessing-fork" in c.cmdline()], 30, interval=0.05,
                       what="analysis worker processes")
    rig.daemon.stop(signal.SIGKILL)
    # No orphan left behind waiting for work that will never come.
    wait_for(lambda: not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE
                             for w in workers), 10, what="workers to exit")


def test_a_corrupt_index_is_rebuilt_instead_of_stopping_the_daemon(rig):
    state_dir = rig.tmp / "state"
    state_dir.mkdir()
    (state_dir / "tracks.sqlite3").write_bytes(b"torn by a power cut " * 500)
    rig.daemon.start()
    s = wait_state(rig, lambda s: s.get("queued"), "tracks queued from the rebuilt index")
    assert s["index_size"] == 20 and rig.daemon.alive()
    assert list(state_dir.glob("tracks.sqlite3.corrupt-*"))
