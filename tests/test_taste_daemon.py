"""The household's taste in the loop, in-process: the real model, photos, command table and taste
store, an MPD in memory on an injected clock (see test_daemon_inprocess.py).

Verdicts arrive as they do from paho's thread (`_on_mqtt_message` parses and posts; the loop
handles), skips and tracks played through from MPD's idle events.
"""

from __future__ import annotations

import logging
import sqlite3

import pytest

from frame_daemon.config import parse_config
from frame_daemon.daemon import TICK_S, Daemon
from frame_daemon.events import IndexRefreshed, MpdSessionChanged, PhotoShown, PlayerChanged
from frame_daemon.mood import Mood
from frame_daemon.music.select import TrackPool
from frame_daemon.music.taste import Arrival
from frame_daemon.music.taste_store import FILE_NAME
from frame_daemon.music.track import MoodSource, Track
from memory_mpd import Clock, MemoryMpd, MemorySession

SONG_S = 200.0
# coffee.jpg reads pensive (mood-v4: about 0.25, -0.4). Jazz sits right on it, folk a little farther:
# with no taste the frame plays jazz.
TRACKS = {
    **{f"jazz/{i}.mp3": (f"Jazz {i}", f"Jazz Player {i}", "Jazz", Mood(0.2 + 0.01 * i, -0.4, 0.9))
       for i in range(6)},
    **{f"folk/{i}.mp3": (f"Folk {i}", f"Folk Singer {i}", "Folk", Mood(0.22 + 0.01 * i, -0.2, 0.9))
       for i in range(6)},
}
THEIRS = "theirs.mp3"  # in the index, but far from coffee's mood: only a person queues it


def make_daemon(tmp_path, mood_model, clock=None, **taste) -> tuple[Daemon, MemoryMpd, Clock]:
    clock = clock or Clock()
    tracks = TRACKS | {THEIRS: ("Their Song", "Someone", "Metal", Mood(-0.7, 0.7, 0.9))}
    memory = MemoryMpd(clock, {uri: (t, a, SONG_S) for uri, (t, a, _, _) in tracks.items()})
    cfg = parse_config({
        "follow": {"tracks": 2, "diversity": 0.0, "library_fit": 0.0, "max_distance": 0.5,
                   "threshold": 0.3, "jump": 2.9, "dwell_s": 0.0, "min_interval_s": 0.0,
                   "smoothing": 1.0, "fade_s": 0.0, "suspend_s": 60.0, "no_repeat": 0},
        "taste": {"skip_s": 20.0, **taste},
        "state": {"directory": str(tmp_path / "state")},
    })
    daemon = Daemon(cfg, clock=clock, mpd_session=MemorySession(memory))
    daemon.model = mood_model
    (tmp_path / "state").mkdir(exist_ok=True)
    daemon.music.taste.open()  # as _start does
    pool = TrackPool.from_tracks([Track(uri, t, a, genre=g, duration=SONG_S, mood=m,
                                        source=MoodSource.TAG, why="tagged")
                                  for uri, (t, a, g, m) in tracks.items()])
    daemon.handle(IndexRefreshed(len(pool), "in memory", pool=pool))
    daemon.handle(MpdSessionChanged(True))
    return daemon, memory, clock


def run_for(daemon: Daemon, clock: Clock, seconds: float) -> None:
    """Let the loop's timers run, on its clock, for this long."""
    end = clock.now + seconds
    while clock.now < end:
        clock.advance(TICK_S)
        daemon.on_time(clock.now)


def press(daemon: Daemon, name: str, payload: bytes) -> None:
    """As Home Assistant would: the MQTT message, parsed on 'paho's thread', handled by the loop."""
    daemon.router(daemon.topics.command(name), payload)
    daemon.handle(daemon.events.get(timeout=0))


def reject_jazz(daemon: Daemon, memory: MemoryMpd, clock: Clock) -> int:
    """The household: Doesn't fit whenever jazz plays (the music moves on at once, as Next track
    does), Fits when anything else does, until no jazz is queued; returns the rejections."""
    rejected = 0
    for _ in range(12):
        if "Jazz" not in queued_genres(daemon):
            return rejected
        playing = memory.playing()
        clock.advance(30.0)
        if playing.startswith("jazz/"):
            press(daemon, "feedback", b"doesnt_fit")
            assert memory.playing() != playing and daemon.state.last_error is None
            rejected += 1
        else:
            press(daemon, "feedback", b"fits")
            daemon.music.choose_again()  # (a new choice for the photo, as after a photo change)
    raise AssertionError("jazz is still chosen after 12 verdicts")


def queued_genres(daemon: Daemon) -> set[str]:
    return {p.track.genre for p in daemon.state.choice.picks}


@pytest.fixture
def coffee(demo_photos):
    return demo_photos / "coffee.jpg"


def test_doesnt_fit_on_one_genre_takes_it_out_of_the_next_picks_and_forget_brings_it_back(
        tmp_path, mood_model, coffee):
    daemon, memory, clock = make_daemon(tmp_path, mood_model)
    daemon.handle(PhotoShown(coffee))
    assert queued_genres(daemon) == {"Jazz"} and memory.playing().startswith("jazz/")
    rejected = reject_jazz(daemon, memory, clock)
    assert rejected >= 2  # one verdict moves the choice a little, a few move it more
    clock.advance(30.0)
    daemon.music.choose_again()  # and again: still no jazz
    assert queued_genres(daemon) == {"Folk"}
    why = daemon.state_payload()["why"]
    assert f"you said {rejected} jazz tracks didn't fit for pensive photos this week" in why
    assert daemon.state_payload()["taste"]["disliked_genres"] == ["jazz"]

    press(daemon, "forget_taste", b"PRESS")
    assert daemon.state_payload()["taste"]["verdicts"] == 0
    clock.advance(30.0)
    press(daemon, "rescore", b"PRESS")  # the same photo chosen for again, with no taste
    daemon.music.choose_again()
    assert queued_genres(daemon) == {"Jazz"}


def test_a_verdict_with_nothing_of_ours_playing_is_refused_with_the_reason(tmp_path, mood_model,
                                                                           coffee):
    daemon, memory, _ = make_daemon(tmp_path, mood_model)
    press(daemon, "feedback", b"fits")
    assert daemon.state.last_error == "feedback refused: no photo is on show"
    daemon.handle(PhotoShown(coffee))
    memory.playid(int(memory.addid(THEIRS)))
    daemon.handle(PlayerChanged(frozenset({"player", "playlist"})))
    press(daemon, "feedback", b"doesnt_fit")
    assert daemon.state.last_error == ("feedback refused: the track playing was not chosen by "
                                       "the frame")
    assert memory.playing() == THEIRS  # their music is never moved on
    press(daemon, "feedback", b"maybe")
    assert "expected fits or doesnt_fit" in daemon.state.last_error


def test_an_early_skip_counts_as_doesnt_fit_a_persons_own_track_never_does(tmp_path, mood_model,
                                                                           coffee):
    daemon, memory, clock = make_daemon(tmp_path, mood_model)
    daemon.handle(PhotoShown(coffee))
    first = memory.playing()
    clock.advance(5.0)
    memory.next()  # mpc next, within the skip window
    daemon.handle(PlayerChanged(frozenset({"player"})))
    clock.advance(60.0)
    memory.next()  # beyond the window: not a verdict
    daemon.handle(PlayerChanged(frozenset({"player"})))
    verdicts = daemon.music.taste.store.verdicts()
    assert [(v.uri, v.fits, v.arrival) for v in verdicts] == [(first, False, Arrival.SKIP)]

    memory.playid(int(memory.addid(THEIRS)))  # their own music, with the photo on show
    daemon.handle(PlayerChanged(frozenset({"player", "playlist"})))
    clock.advance(3.0)
    memory.next()  # and they skip it at once: their own track is never a skip
    daemon.handle(PlayerChanged(frozenset({"player"})))
    verdicts = daemon.music.taste.store.verdicts()
    assert [(v.uri, v.fits, v.arrival) for v in verdicts[1:]] == [(THEIRS, True, Arrival.OWN)]


def test_a_chosen_track_played_to_its_end_is_a_very_weak_fits(tmp_path, mood_model, coffee):
    daemon, memory, clock = make_daemon(tmp_path, mood_model)
    daemon.handle(PhotoShown(coffee))
    first = memory.playing()
    clock.advance(SONG_S + 1.0)
    daemon.handle(PlayerChanged(frozenset({"player"})))
    assert [(v.uri, v.fits, v.arrival) for v in daemon.music.taste.store.verdicts()] == [
        (first, True, Arrival.PLAYED)]


def test_taste_survives_a_restart_and_a_corrupt_file_starts_clean(tmp_path, mood_model, coffee,
                                                                  caplog):
    daemon, memory, clock = make_daemon(tmp_path, mood_model)
    daemon.handle(PhotoShown(coffee))
    reject_jazz(daemon, memory, clock)
    daemon.music.taste.close()

    again, _, _ = make_daemon(tmp_path, mood_model)
    again.handle(PhotoShown(coffee))
    assert queued_genres(again) == {"Folk"} and again.state_payload()["taste"]["verdicts"] >= 2
    again.music.taste.close()

    (tmp_path / "state" / FILE_NAME).write_bytes(b"\x00garbage" * 512)
    with caplog.at_level(logging.ERROR):
        third, _, _ = make_daemon(tmp_path, mood_model)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(lines) == 1 and lines[0].startswith("taste file") and "is corrupt" in lines[0]
    third.handle(PhotoShown(coffee))
    assert queued_genres(third) == {"Jazz"} and third.state_payload()["taste"]["verdicts"] == 0


def test_taste_switched_off_neither_learns_nor_applies_but_keeps_the_file(tmp_path, mood_model,
                                                                          coffee):
    daemon, memory, clock = make_daemon(tmp_path, mood_model)
    daemon.handle(PhotoShown(coffee))
    reject_jazz(daemon, memory, clock)
    kept = len(daemon.music.taste.store.verdicts())
    daemon.music.taste.close()
    off, _, _ = make_daemon(tmp_path, mood_model, enabled=False)
    off.handle(PhotoShown(coffee))
    assert queued_genres(off) == {"Jazz"}
    press(off, "feedback", b"fits")
    assert "taste is switched off" in off.state.last_error
    assert len(off.music.taste.store.verdicts()) == kept


def test_a_verdict_that_cannot_be_kept_says_so_and_doesnt_fit_still_moves_on(tmp_path, mood_model,
                                                                             coffee):
    daemon, memory, clock = make_daemon(tmp_path, mood_model)
    daemon.handle(PhotoShown(coffee))
    playing = memory.playing()
    daemon.music.taste.store._conn.close()  # as if the state directory had gone away under it
    clock.advance(30.0)
    press(daemon, "feedback", b"doesnt_fit")
    assert daemon.state.last_error.startswith("feedback not kept: taste file")
    assert memory.playing() != playing


def test_a_taste_file_that_cannot_be_opened_leaves_the_frame_going_without_taste(
        tmp_path, mood_model, coffee, caplog):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / FILE_NAME).mkdir()  # not a file at all: cannot be opened, nor moved
    with caplog.at_level(logging.ERROR):
        daemon, memory, clock = make_daemon(tmp_path, mood_model)
    assert daemon.music.taste.store is None
    assert [r.getMessage() for r in caplog.records][-1].endswith("the frame goes on without taste")
    daemon.handle(PhotoShown(coffee))
    assert memory.playing() and daemon.state_payload()["taste"]["enabled"] is False
    clock.advance(30.0)
    press(daemon, "feedback", b"fits")
    assert daemon.state.last_error.startswith("feedback refused: the taste file")


def test_a_verdict_while_another_program_locks_the_file_is_answered_and_written_later(
        tmp_path, mood_model, coffee):
    """Another program (a backup, `sqlite3`) holds an exclusive lock on taste.sqlite3: the loop
    waits a moment at most, the verdict counts as kept and is written once the lock is gone."""
    daemon, memory, clock = make_daemon(tmp_path, mood_model)
    daemon.handle(PhotoShown(coffee))
    other = sqlite3.connect(tmp_path / "state" / FILE_NAME, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # readers wait too
    try:
        # The loop's connection waits a twentieth of a second for a lock, not SQLite's 5 s.
        assert daemon.music.taste.store._conn.execute("PRAGMA busy_timeout").fetchone()[0] <= 100
        clock.advance(30.0)
        press(daemon, "feedback", b"fits")
        assert daemon.state.last_error is None  # kept (waiting in memory), not refused
        assert daemon.state_payload()["taste"]["verdicts"] == 1  # the state is published
        run_for(daemon, clock, 2.0)  # the tick tries again, and the lock is still held
        assert other.execute("SELECT count(*) FROM verdicts").fetchone()[0] == 0
    finally:
        other.execute("COMMIT")
    run_for(daemon, clock, 1.0)
    rows = other.execute("SELECT uri, fits FROM verdicts").fetchall()
    assert rows == [(memory.playing(), 1)] and not daemon.music.taste.store.pending
    other.close()
