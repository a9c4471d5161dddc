"""Audio analysis inside the index: stored per track, resumable, failures remembered."""

from __future__ import annotations

import contextlib

import mutagen.flac
import pytest
from test_analyse import calm, drums, energetic, write_audio

from frame_daemon.music.audio.runner import analyse_pending
from frame_daemon.music.index import TrackIndex
from frame_daemon.music.track import MoodSource


@pytest.fixture
def library(tmp_path):
    music = tmp_path / "music"
    music.mkdir()
    write_audio(music / "calm.flac", calm())
    write_audio(music / "energetic.flac", energetic())
    write_audio(music / "drums.ogg", drums(120))
    tagged = write_audio(music / "tagged.flac", calm())
    tags = mutagen.flac.FLAC(tagged)
    tags["MOOD"] = "aggressive"
    tags.save()
    (music / "broken.flac").write_bytes(b"fLaC" + b"\x00" * 400)
    songs = [{"file": p.name, "last-modified": "2026-01-01T00:00:00Z"}
             for p in sorted(music.iterdir())]
    index = TrackIndex(tmp_path / "tracks.sqlite3")
    index.refresh(songs, music)
    yield index, music
    index.close()


def test_analysis_is_stored_and_combined_by_priority(library):
    index, music = library
    assert sorted(index.needs_analysis()) == ["broken.flac", "calm.flac", "drums.ogg",
                                              "energetic.flac", "tagged.flac"]
    seen = []
    result = analyse_pending(index, music, workers=2, progress=seen.append)
    assert (result.done, result.total, result.failed) == (5, 5, 1)
    assert [p.done for p in seen] == [1, 2, 3, 4, 5]
    assert index.needs_analysis() == []  # nothing is retried, not even the broken file
    assert index.analysis_counts() == (4, 1)
    calm_track, energetic_track = index.get("calm.flac"), index.get("energetic.flac")
    assert calm_track.source == MoodSource.ANALYSIS and "analysis" in calm_track.why
    assert energetic_track.mood.arousal > calm_track.mood.arousal
    # An explicit mood tag still wins over analysis, but the analysis is kept for `match`.
    tagged = index.get("tagged.flac")
    assert tagged.source == MoodSource.TAG
    assert MoodSource.ANALYSIS in {e.source for e in index.estimates("tagged.flac")}
    assert index.get("broken.flac").source != MoodSource.ANALYSIS


def test_interrupted_analysis_resumes_without_losing_work(library):
    index, music = library
    calls = []

    def stop_after_two() -> bool:
        return len(calls) >= 2

    first = analyse_pending(index, music, workers=1, progress=calls.append,
                            should_stop=stop_after_two)
    assert 2 <= first.done < first.total
    left = index.needs_analysis()
    assert len(left) == first.total - first.done
    second = analyse_pending(index, music, workers=1)
    assert second.total == len(left) and index.needs_analysis() == []


def test_changed_file_is_analysed_again(library):
    index, music = library
    analyse_pending(index, music, workers=1)
    path = music / "calm.flac"
    write_audio(path, energetic())
    songs = [{"file": p.name, "last-modified": "2026-01-02T00:00:00Z"}
             for p in sorted(music.iterdir())]
    index.refresh(songs, music)
    assert "calm.flac" in index.needs_analysis()
    assert "broken.flac" in index.needs_analysis()  # a rewritten file gets another chance


def _kill_workers() -> int:
    """SIGKILL every analysis worker of this process, as the kernel's OOM killer would."""
    import multiprocessing
    import os
    import signal

    children = [p for p in multiprocessing.active_children() if p.pid]
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGKILL)
    return len(children)


def test_a_killed_worker_costs_no_track_its_analysis(library):
    # Killed once (a Pi out of memory): the tracks in flight with it were marked "analysis worker
    # failed" for good, and the next submit raised BrokenProcessPool out of the run.
    index, music = library
    killed = []

    def progress(p) -> None:
        if not killed:
            killed.append(_kill_workers())

    result = analyse_pending(index, music, workers=2, progress=progress)
    assert killed[0] >= 1
    assert (result.done, result.total, result.failed) == (5, 5, 1)  # broken.flac, as before
    assert index.needs_analysis() == [] and index.analysis_counts() == (4, 1)


def test_a_track_whose_worker_always_dies_is_marked_and_the_run_ends(library):
    # Every worker dies (an OOM killer gone mad): each track, retried alone, is marked as the
    # one its worker died on, and the run ends instead of raising or retrying for ever.
    import threading

    index, music = library
    stop = threading.Event()

    def killer() -> None:
        while not stop.wait(0.02):
            _kill_workers()

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        result = analyse_pending(index, music, workers=2)
    finally:
        stop.set()
        thread.join(5)
    assert (result.done, result.total) == (5, 5)
    assert index.needs_analysis() == []
    errors = dict(index._db.execute("SELECT uri, analysis_error FROM tracks"))
    assert all("worker died" in errors[uri] or uri == "broken.flac" for uri in errors), errors


def test_files_gone_from_a_share_unmounted_mid_run_are_analysed_when_it_is_back(library):
    # Each was marked as failed ("no such file"), and never analysed again until it changed.
    index, music = library
    share = music.rename(music.with_name("share"))
    music.mkdir()  # the share's empty mount point
    result = analyse_pending(index, music)
    assert (result.done, result.failed) == (5, 5)
    assert sorted(index.needs_analysis()) == ["broken.flac", "calm.flac", "drums.ogg",
                                              "energetic.flac", "tagged.flac"]
    music.rmdir()
    share.rename(music)
    result = analyse_pending(index, music)
    assert (result.done, result.failed) == (5, 1)  # the broken file is remembered as such
    assert index.needs_analysis() == [] and index.get("calm.flac").source is MoodSource.ANALYSIS
