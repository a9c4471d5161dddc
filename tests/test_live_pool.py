"""The loop's track pool: tracks MPD refused stay out until the index has caught up."""

from __future__ import annotations

from frame_daemon.music.live_pool import LivePool
from frame_daemon.music.select import TrackPool
from frame_daemon.music.track import Track


def uris(live: LivePool) -> list[str]:
    return [t.uri for t in live.pool.tracks]


def pool(*names: str) -> TrackPool:
    return TrackPool.from_tracks([Track(name) for name in names])


def test_refused_tracks_stay_out_of_later_pools_until_the_index_drops_them():
    live = LivePool()
    live.use(pool("a", "b", "c"))
    live.refuse({"a"})
    live.refuse({"b"})  # a second refusal does not forget the first
    assert uris(live) == ["c"]
    live.use(pool("a", "b", "c"))  # the worker's pool, built before the index caught up
    assert uris(live) == ["c"]
    live.use(pool("b", "c"))  # the index no longer has "a": that refusal is done with
    live.use(pool("a", "b", "c"))  # ... so "a", put back in the library, is picked again
    assert uris(live) == ["a", "c"]
