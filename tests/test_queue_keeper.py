"""The queue keeper: telling a person's change from MPD's own progress (pure snapshot
comparison), and never touching the user's entries, against a real MPD."""

import contextlib

import pytest

from frame_daemon.music.mpd.client import (
    MpdCommandFailed,
    MpdLink,
    MpdNoSuchSong,
    MpdUnavailable,
    PlayerStatus,
)
from frame_daemon.music.mpd.queue_keeper import QueueKeeper, describe_external_change
from servers import Mpd, running_mpd, write_library


def st(state="play", song_id=1, song_pos=0, version=10, length=3, consume=False, elapsed=0.0,
       **modes):
    return PlayerStatus(state, song_id, song_pos, version, length, consume, elapsed, 60.0, **modes)


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


def test_several_short_tracks_ending_before_the_news_is_read_are_not_a_person():
    """A loaded loop reads MPD's news late: the track ended and MPD played on past the next one.
    A later track is MPD's doing (round the queue with repeat); a jump while the track still had
    time left, or back to an earlier one without repeat, is a person's."""
    ending = dict(elapsed=59.0)
    ids = (1, 2, 3, 4)
    assert describe_external_change(st(length=4, **ending), ids,
                                    st(song_id=3, song_pos=2, length=4), ids, 3.0) is None
    assert describe_external_change(st(song_id=3, song_pos=2, length=4, repeat=True, **ending),
                                    ids, st(song_id=2, song_pos=1, length=4, repeat=True), ids,
                                    3.0) is None
    assert "another track" in describe_external_change(
        st(song_id=3, song_pos=2, length=4, **ending), ids, st(song_id=2, song_pos=1, length=4),
        ids, 3.0)
    assert "another track" in describe_external_change(
        st(length=4), ids, st(song_id=3, song_pos=2, length=4), ids, 3.0)


def test_mpds_own_modes_moving_on_when_a_track_ends_are_not_a_person():
    ending = dict(elapsed=59.0)  # the track had a second left when the snapshot was taken
    # random: any track may follow
    assert describe_external_change(st(random=True, **ending), IDS,
                                    st(song_id=3, song_pos=2, random=True), IDS, 1.0) is None
    # repeat: the first follows the last
    assert describe_external_change(st(song_id=3, song_pos=2, repeat=True, **ending), IDS,
                                    st(song_id=1, song_pos=0, repeat=True), IDS, 1.0) is None
    # single: MPD pauses on the next track (or stops)
    assert describe_external_change(st(single=True, **ending), IDS,
                                    st(state="pause", song_id=2, song_pos=1, single=True),
                                    IDS, 1.0) is None
    assert describe_external_change(st(single=True, **ending), IDS,
                                    st(state="stop", song_id=None, song_pos=None, single=True),
                                    IDS, 1.0) is None
    # the end of a random round stops MPD mid-queue
    assert describe_external_change(st(song_pos=1, song_id=2, random=True, **ending), IDS,
                                    st(state="stop", song_id=None, song_pos=None, random=True),
                                    IDS, 1.0) is None


def test_a_dead_stream_that_stops_mpd_is_not_a_person():
    stream = PlayerStatus("play", 1, 0, 10, 3, False, 12.0, 0.0)  # no duration: a stream
    stopped = PlayerStatus("stop", None, None, 10, 3, False, 0.0, 0.0,
                           error="problems decoding http://radio.example/live")
    assert describe_external_change(stream, IDS, stopped, IDS, 0.5) is None


def test_in_mpds_modes_a_persons_changes_mid_track_are_still_named():
    mid = dict(elapsed=10.0)  # fifty seconds left: the track did not end by itself
    assert "another track" in describe_external_change(
        st(random=True, **mid), IDS, st(song_id=3, song_pos=2, random=True), IDS, 1.0)
    assert "paused" in describe_external_change(
        st(single=True, **mid), IDS, st(state="pause", single=True), IDS, 1.0)
    assert "stopped" in describe_external_change(
        st(random=True, **mid), IDS, st(state="stop", song_id=None, song_pos=None, random=True),
        IDS, 1.0)
    assert "another track" in describe_external_change(
        st(song_id=3, song_pos=2, repeat=True, **mid), IDS, st(song_id=2, song_pos=1, repeat=True),
        IDS, 1.0)


# ---------------------------------------------------------------- against a real MPD
@pytest.fixture(scope="module")
def music(tmp_path_factory):
    folder = tmp_path_factory.mktemp("music")
    write_library(folder, seconds=20.0)
    return folder


@pytest.fixture
def mpd_server(tmp_path, music):
    with running_mpd(tmp_path / "mpd", music) as server:
        yield server


def _uris(server: Mpd) -> list[str]:
    c = server.client()
    try:
        return sorted(s["file"] for s in c.listall() if "file" in s)
    finally:
        c.disconnect()


def _queue(server: Mpd) -> list[str]:
    c = server.client()
    try:
        return [s["file"] for s in c.playlistinfo()]
    finally:
        c.disconnect()


def _users_queue(server: Mpd, uris: list[str]) -> None:
    """A person queues `uris` from another client and starts playing the first."""
    c = server.client()
    try:
        for uri in uris:
            c.add(uri)
        c.play(0)
    finally:
        c.disconnect()


def _keeper(server: Mpd) -> QueueKeeper:
    link = MpdLink("127.0.0.1", server.port, timeout_s=5)
    link.connect()
    keeper = QueueKeeper(link)
    keeper.snapshot()
    return keeper


def _reconnect(keeper: QueueKeeper) -> None:
    """What the daemon does when MPD comes back: a new connection, then a snapshot."""
    with contextlib.suppress(MpdUnavailable):
        keeper.link.status()  # notices the old connection is gone
    keeper.link.connect()
    keeper.snapshot()


def test_mpd_restart_never_costs_the_user_a_track(mpd_server):
    uris = _uris(mpd_server)
    users, ours_first, ours_next = uris[:16], uris[16:19], uris[:2]
    _users_queue(mpd_server, users)
    keeper = _keeper(mpd_server)
    keeper.apply(ours_first, play_now=False)
    assert _queue(mpd_server) == [users[0], *ours_first, *users[1:]]
    mpd_server.restart()  # MPD saves the queue in its state file and renumbers it on restart
    _reconnect(keeper)
    keeper.apply(ours_next, play_now=False)
    after = _queue(mpd_server)
    # Every one of the user's 16 entries is still there, and our first picks made way for the
    # new ones: found again by position after the restart.
    assert after == [users[0], *ours_next, *users[1:]]


def test_a_queue_changed_while_mpd_was_away_makes_the_keeper_remove_nothing(mpd_server):
    uris = _uris(mpd_server)
    users, ours_first, ours_next = uris[:6], uris[16:19], uris[10:12]
    _users_queue(mpd_server, users)
    keeper = _keeper(mpd_server)
    keeper.apply(ours_first, play_now=False)
    mpd_server.restart()
    c = mpd_server.client()
    try:
        c.add(uris[12])  # a person edits the queue before the daemon is back
    finally:
        c.disconnect()
    _reconnect(keeper)
    keeper.apply(ours_next, play_now=False)
    after = _queue(mpd_server)
    assert after == [users[0], *ours_next, *ours_first, *users[1:], uris[12]]


def test_a_track_mpd_cannot_add_is_skipped_and_the_others_stay_ours(mpd_server):
    uris = _uris(mpd_server)
    _users_queue(mpd_server, uris[:3])
    keeper = _keeper(mpd_server)
    queued = keeper.apply([uris[10], "Gone/deleted_since_indexed.flac", uris[11]], play_now=False)
    assert [uri for uri, _ in queued.missing] == ["Gone/deleted_since_indexed.flac"]
    assert len(queued.ids) == 2
    assert _queue(mpd_server) == [uris[0], uris[10], uris[11], uris[1], uris[2]]
    # Nothing "added by another client": both ids were recorded as ours when they were added.
    assert keeper.external_change() is None
    keeper.apply([uris[12]], play_now=False)
    assert _queue(mpd_server) == [uris[0], uris[12], uris[1], uris[2]]


class SmallQueueMpd(Mpd):
    """An MPD whose queue holds five entries."""

    def command(self) -> list[str]:
        cmd = super().command()
        conf = self.workdir / "mpd.conf"
        conf.write_text(conf.read_text() + 'max_playlist_length "5"\n')
        return cmd


def test_a_full_queue_is_an_error_not_a_missing_track(tmp_path, music):
    with running_mpd(tmp_path / "mpd", music, kind=SmallQueueMpd) as server:
        uris = _uris(server)
        _users_queue(server, uris[:4])
        keeper = _keeper(server)
        with pytest.raises(MpdCommandFailed) as info:
            keeper.apply(uris[10:13], play_now=False)
        assert not isinstance(info.value, MpdNoSuchSong)  # the tracks exist: not dropped
        assert _queue(server) == [uris[0], uris[10], *uris[1:4]]
        assert keeper.external_change() is None  # the one we added is ours, not a person's


SHORT_S = 1.5  # each track of the short library


@pytest.fixture
def short_mpd(tmp_path):
    """An MPD with three 1.5 s tracks: its modes move on by themselves within seconds. (One per
    test: the suite stops every server a test leaves running.)"""
    from servers import LIBRARY

    folder = tmp_path / "short"
    write_library(folder / "music", seconds=SHORT_S, library=LIBRARY[:3])
    with running_mpd(folder / "mpd", folder / "music") as server:
        yield server


@pytest.mark.parametrize("modes", [{"random": 1}, {"repeat": 1}, {"consume": 1}, {"single": 1},
                                   {"random": 1, "repeat": 1, "consume": 1}],
                         ids=lambda m: "+".join(m))
def test_real_mpd_moving_on_by_its_own_modes_is_never_taken_for_a_person(short_mpd, modes):
    c = short_mpd.client()
    c.idletimeout = 10
    try:
        c.clear()
        for mode in ("random", "repeat", "consume", "single"):
            getattr(c, mode)(modes.get(mode, 0))
        keeper = _keeper(short_mpd)
        keeper.apply(_uris(short_mpd), play_now=True)
        changes, moves, song = [], 0, keeper.link.status().song_id
        # As the loop does: every player/queue change MPD reports is compared with the snapshot,
        # until MPD has moved on four times by itself (with repeat: round the queue and on) or
        # stopped.
        while moves < 4:
            c.idle("player", "playlist")
            status = keeper.link.status()
            change = keeper.external_change()
            changes += [change] if change else []
            moves += status.song_id != song
            song = status.song_id
            if status.state != "play":
                break
        assert changes == [], f"{modes}: {changes}"
        assert moves >= 1  # MPD did move on by itself
    finally:
        with contextlib.suppress(Exception):
            for mode in ("random", "repeat", "consume", "single"):
                getattr(c, mode)(0)
            c.clear()
        c.disconnect()


def test_a_long_queue_is_read_page_by_page_as_one_queue(mpd_server):
    # MPD keeps what played: a frame's queue grows long, and is read a page at a time (small
    # answers come at once; big ones can wait ~40 ms in TCP). The pages make the same queue.
    uris = _uris(mpd_server)
    _users_queue(mpd_server, (uris * 20)[:2 * len(uris) + 7])  # neither page nor short
    link = MpdLink("127.0.0.1", mpd_server.port, timeout_s=5)
    link.connect()
    try:
        paged = [(e.id, e.pos, e.uri) for e in link.queue(page=len(uris))]
        assert [uri for _, _, uri in paged] == _queue(mpd_server)
        assert paged == [(e.id, e.pos, e.uri) for e in link.queue(page=10_000)]
        assert [pos for _, pos, _ in paged] == list(range(len(paged)))
    finally:
        link.close()


def test_the_queue_made_from_mpds_changes_is_the_queue(mpd_server):
    # A keeper looks at the queue after every change MPD reports: from its last look and MPD's
    # changes since (a long queue is not read again in full). After any edit, the same queue.
    uris = _uris(mpd_server)
    _users_queue(mpd_server, uris * 3)
    link = MpdLink("127.0.0.1", mpd_server.port, timeout_s=5)
    link.connect()
    c = mpd_server.client()
    try:
        status, queue = link.status(), link.queue()
        edits = [lambda: c.add(uris[0]), lambda: c.delete(2), lambda: c.move(0, 5),
                 lambda: c.addid(uris[1], 1), lambda: c.delete((len(uris) * 3 - 3, len(uris) * 3)),
                 lambda: c.next(), lambda: c.shuffle(), lambda: c.clear(),
                 lambda: c.add(uris[2])]
        for edit in edits:
            edit()
            status, queue = link.queue_since(status.playlist_version, queue)
            full = link.queue()
            assert [(e.id, e.pos, e.uri) for e in queue] == [(e.id, e.pos, e.uri) for e in full]
            assert status.queue_length == len(full)
    finally:
        c.disconnect()
        link.close()
