"""Put chosen tracks in MPD's queue without losing the user's music, and notice a person's changes.

The keeper remembers the queue ids it added. It only ever deletes those (and only ones that have
not played yet), and after each of its own edits it takes a snapshot of the queue and player. When
MPD reports a change, comparing against the snapshot tells a person's edit (a track added from
another client, a jump, a pause) from MPD's own progress (the next track starting, consume mode
removing the finished one).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from frame_daemon.music.mpd_player import MpdLink, PlayerStatus, QueueEntry

log = logging.getLogger(__name__)

MAX_REMEMBERED = 500  # our ids kept for pruning; a queue rarely holds more of ours


@dataclass(frozen=True, slots=True)
class _Snapshot:
    status: PlayerStatus
    ids: tuple[int, ...]


class QueueKeeper:
    """Owned by the loop thread; every method may raise MpdUnavailable."""

    def __init__(self, link: MpdLink, autoplay: bool = True) -> None:
        self.link = link
        self.autoplay = autoplay
        self.ours: list[int] = []
        self._snapshot: _Snapshot | None = None

    def snapshot(self) -> None:
        """Remember the queue and player as they are now (after our edits, or on reconnect)."""
        status = self.link.status()
        ids = tuple(e.id for e in self.link.queue())
        self._snapshot = _Snapshot(status, ids)
        present = set(ids)
        self.ours = [i for i in self.ours if i in present][-MAX_REMEMBERED:]

    def apply(self, uris: Sequence[str], play_now: bool) -> list[int]:
        """Replace our not-yet-played tracks with `uris`, right after the current track.

        play_now: skip to the first new track at once (a big mood jump in follow mode). When MPD
        is stopped, start playing if `autoplay`.
        """
        if not uris:
            return []
        status = self.link.status()
        queue = self.link.queue()
        upcoming = self._our_upcoming(queue, status)
        if upcoming:
            self.link.delete_ids(upcoming)
            status = self.link.status()
        # With a current song (playing, paused or stopped on one) "+0" means right after it;
        # with none, append.
        new_ids = self.link.add(uris, after_current=status.song_id is not None)
        self.ours.extend(new_ids)
        if play_now or (status.state == "stop" and self.autoplay):
            self.link.play_id(new_ids[0])
        self.snapshot()
        log.info("queued %d tracks%s (removed %d of ours not yet played)", len(new_ids),
                 ", playing the first now" if play_now else "", len(upcoming))
        return new_ids

    def _our_upcoming(self, queue: list[QueueEntry], status: PlayerStatus) -> list[int]:
        ours = set(self.ours)
        current = status.song_pos if status.song_pos is not None else -1
        return [e.id for e in queue if e.id in ours and e.pos > current]

    def is_ours(self, song_id: int | None) -> bool:
        return song_id is not None and song_id in self.ours

    def external_change(self) -> str | None:
        """Describe a change a person made since our last snapshot, or None; re-snapshots."""
        before = self._snapshot
        self.snapshot()
        after = self._snapshot
        if before is None or after is None:
            return None
        return describe_external_change(before.status, before.ids, after.status, after.ids)


def describe_external_change(before: PlayerStatus, before_ids: tuple[int, ...],
                             after: PlayerStatus, after_ids: tuple[int, ...]) -> str | None:
    """Pure comparison of two snapshots; None when the difference is MPD's own progress."""
    if after.playlist_version != before.playlist_version:
        added = set(after_ids) - set(before_ids)
        removed = [i for i in before_ids if i not in set(after_ids)]
        if added:
            return f"{len(added)} track(s) added to the queue by another client"
        consumed = before.consume and removed == [before.song_id]
        if removed and not consumed:
            return f"{len(removed)} track(s) removed from the queue by another client"
        kept = [i for i in before_ids if i in set(after_ids)]
        if list(after_ids) != kept and not removed:
            return "the queue was reordered by another client"
        if removed and consumed and list(after_ids) != kept:
            return "the queue was reordered by another client"
    if before.state == "play" and after.state == "pause":
        return "playback paused by another client"
    # MPD stops by itself only at the end of the queue.
    if (before.state in ("play", "pause") and after.state == "stop"
            and before.song_pos is not None and before.song_pos < len(before_ids) - 1):
        return "playback stopped by another client"
    if after.state == "play" and after.song_id != before.song_id and before.song_id is not None:
        natural_next = _next_id(before_ids, before.song_id)
        if after.song_id != natural_next:
            return "another track was chosen by another client"
    return None


def _next_id(ids: tuple[int, ...], song_id: int) -> int | None:
    try:
        pos = ids.index(song_id)
    except ValueError:
        return None
    return ids[pos + 1] if pos + 1 < len(ids) else None
