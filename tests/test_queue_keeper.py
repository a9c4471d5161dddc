"""Telling a person's change from MPD's own progress (pure snapshot comparison)."""

from frame_daemon.music.mpd_player import PlayerStatus
from frame_daemon.music.queue_keeper import describe_external_change


def st(state="play", song_id=1, song_pos=0, version=10, length=3, consume=False):
    return PlayerStatus(state, song_id, song_pos, version, length, consume, 0.0, 60.0)


IDS = (1, 2, 3)


def test_next_track_starting_is_not_a_person():
    assert describe_external_change(st(), IDS, st(song_id=2, song_pos=1), IDS) is None


def test_consume_mode_removing_the_finished_track_is_not_a_person():
    before = st(consume=True)
    after = st(song_id=2, song_pos=0, version=11, length=2, consume=True)
    assert describe_external_change(before, IDS, after, (2, 3)) is None


def test_end_of_queue_stop_is_not_a_person():
    before = st(song_id=3, song_pos=2)
    after = st(state="stop", song_id=None, song_pos=None)
    assert describe_external_change(before, IDS, after, IDS) is None


def test_person_changes_are_named():
    assert "added" in describe_external_change(st(), IDS, st(version=11, length=4), (1, 2, 3, 9))
    assert "removed" in describe_external_change(st(), IDS, st(version=11, length=2), (1, 3))
    assert "reordered" in describe_external_change(st(), IDS, st(version=11), (1, 3, 2))
    assert "paused" in describe_external_change(st(), IDS, st(state="pause"), IDS)
    assert "stopped" in describe_external_change(st(), IDS, st(state="stop"), IDS)
    assert "another track" in describe_external_change(
        st(), IDS, st(song_id=3, song_pos=2), IDS)
