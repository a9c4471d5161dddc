"""Put chosen tracks in MPD's queue without losing the user's music, and notice a person's changes.

The keeper remembers the queue entries it added, each as its id *and* its URI. It only ever
deletes those (and only ones that have not played yet), and after each of its own edits it takes a
snapshot of the queue and player. When MPD reports a change, comparing against the snapshot tells
a person's edit (a track added from another client, a jump, a pause) from MPD's own progress (the
next track starting, consume mode removing the finished one, random mode picking any track when
one ends, repeat going back to the first, single mode pausing when the track ends, a dead stream
stopping playback with an error). A track *ending* is told by the clock: the snapshot knows how
much of the track was left and when it was taken.

Why id + URI + a check after reconnecting (and not MPD's `prio` or a tag): MPD renumbers every
queue id when it restarts and restores the queue from its state file, so a remembered id may then
name one of the user's entries. Priorities change what random mode plays and a person may set
them; tags can only be added to remote streams. So an entry counts as ours only while its id still
holds the URI we added; and after any new connection the queue must be, URI by URI, the queue we
last saw, in which case our entries are found again by position. On any doubt the keeper forgets
which entries were ours: it then removes nothing, and the user's music is safe.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from frame_daemon.music.mpd.client import (
    MpdLink,
    MpdNoSuchSong,
    MpdUnavailable,
    PlayerStatus,
    QueueEntry,
)

log = logging.getLogger(__name__)

MAX_REMEMBERED = 500  # our entries kept for pruning; a queue rarely holds more of ours
# How late MPD's news of a track's end may reach us (idle round trip, a busy loop) and still
# count as the track having ended by itself.
ENDED_SLACK_S = 2.0


@dataclass(frozen=True, slots=True)
class _Snapshot:
    status: PlayerStatus
    entries: tuple[tuple[int, str], ...]  # (id, uri) in queue order
    generation: int  # the link's connection count when taken
    taken_at: float = 0.0  # on the keeper's clock
    queue: tuple[QueueEntry, ...] = ()  # the same entries as MPD gave them

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(song_id for song_id, _ in self.entries)

    @property
    def uris(self) -> list[str]:
        return [uri for _, uri in self.entries]


@dataclass(frozen=True, slots=True)
class Queued:
    """What one `apply` did: the ids added (in order) and the URIs MPD refused to add."""

    ids: list[int] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)  # (uri, MPD's reason)
    removed: int = 0


class QueueKeeper:
    """Owned by the loop thread; every method may raise MpdUnavailable."""

    def __init__(self, link: MpdLink, autoplay: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.link = link
        self.autoplay = autoplay
        self.clock = clock
        self._ours: dict[int, str] = {}  # queue id -> the URI we added there, oldest first
        self._snapshot: _Snapshot | None = None

    @property
    def ours(self) -> list[int]:
        return list(self._ours)

    def _read(self) -> tuple[PlayerStatus, list[QueueEntry]]:
        """The player and the queue now: on the connection of the last snapshot, from it and
        MPD's changes since (a queue that is never cleared grows long, and every look at it
        would read it all); else in full."""
        last = self._snapshot
        if last is not None and last.generation == self.link.generation:
            return self.link.queue_since(last.status.playlist_version, last.queue)
        return self.link.status(), self.link.queue()

    def snapshot(self) -> None:
        """Remember the queue and player as they are now (after our edits, or on reconnect)."""
        status, queue = self._read()
        entries = tuple((e.id, e.uri) for e in queue)
        previous = self._snapshot
        if previous is not None and previous.generation != self.link.generation:
            self._recognise_after_reconnect(previous, entries)
        else:
            self._keep_consistent(entries)
        self._snapshot = _Snapshot(status, entries, self.link.generation, self.clock(), tuple(queue))

    def _keep_consistent(self, entries: tuple[tuple[int, str], ...]) -> None:
        """Drop our entries that are gone; forget them all if an id now holds another URI."""
        now = dict(entries)
        if any(song_id in now and now[song_id] != uri for song_id, uri in self._ours.items()):
            self._forget("a queue id we added now holds another track")
            return
        kept = [(i, uri) for i, uri in self._ours.items() if i in now][-MAX_REMEMBERED:]
        self._ours = dict(kept)

    def _recognise_after_reconnect(self, before: _Snapshot,
                                   entries: tuple[tuple[int, str], ...]) -> None:
        """After a new connection (MPD may have restarted and renumbered its queue): find our
        entries again by position if the queue is still the one we last saw, else forget them."""
        if not self._ours:
            return
        if before.uris != [uri for _, uri in entries]:
            self._forget("the queue changed while we were away from MPD")
            return
        renumbered = {new_id: uri for (old_id, uri), (new_id, _) in zip(before.entries, entries,
                                                                         strict=True)
                      if self._ours.get(old_id) == uri}
        if renumbered.keys() != self._ours.keys():
            log.info("MPD renumbered its queue; %d of our entries found again by position",
                     len(renumbered))
        self._ours = renumbered

    def _forget(self, why: str) -> None:
        if self._ours:
            log.warning("%s: forgetting which %d queue entries were ours, so none of them will be "
                        "removed", why, len(self._ours))
        self._ours = {}

    def apply(self, uris: Sequence[str], play_now: bool) -> Queued:
        """Replace our not-yet-played tracks with `uris`, right after the current track.

        play_now: skip to the first new track at once (a big mood jump in follow mode). When MPD
        is stopped, start playing if `autoplay`. A track MPD refuses to add (gone from its
        database) is skipped and reported in `missing`; each added id is remembered at once, so a
        failure half-way leaves no entry of ours unaccounted for.
        """
        if not uris:
            return Queued()
        self.link.status()  # (re)connects if need be
        if self._snapshot is None or self._snapshot.generation != self.link.generation:
            self.snapshot()  # a new connection: check which entries are still ours first
        status, queue = self._read()
        self._keep_consistent(tuple((e.id, e.uri) for e in queue))
        upcoming = self._our_upcoming(queue, status)
        if upcoming:
            self.link.delete_ids(upcoming)
            status = self.link.status()
        # With a current song (playing, paused or stopped on one) "+N" means N after it; with
        # none, append.
        after_current = status.song_id is not None
        new_ids: list[int] = []
        missing: list[tuple[str, str]] = []
        try:
            for uri in uris:
                try:
                    song_id = self.link.add_one(uri, f"+{len(new_ids)}" if after_current else None)
                except MpdNoSuchSong as exc:
                    log.warning("MPD does not know %s (%s); skipping it", uri, exc)
                    missing.append((uri, str(exc)))
                    continue
                self._ours[song_id] = uri
                new_ids.append(song_id)
            if new_ids and (play_now or (status.state == "stop" and self.autoplay)):
                self.link.play_id(new_ids[0])
        finally:
            # Even after a refusal half-way (a full queue): what we added is ours, not a person's.
            with contextlib.suppress(MpdUnavailable):
                self.snapshot()
        log.info("queued %d tracks%s (removed %d of ours not yet played)", len(new_ids),
                 ", playing the first now" if play_now and new_ids else "", len(upcoming))
        return Queued(new_ids, missing, len(upcoming))

    def _our_upcoming(self, queue: list[QueueEntry], status: PlayerStatus) -> list[int]:
        current = status.song_pos if status.song_pos is not None else -1
        return [e.id for e in queue if self._ours.get(e.id) == e.uri and e.pos > current]

    @property
    def owned(self) -> tuple[tuple[int, str], ...]:
        """Our entries: (id, uri), oldest first."""
        return tuple(self._ours.items())

    def release(self) -> tuple[tuple[int, str], ...]:
        """Hand our entries to the frame that steers next: from now on they are its to replace,
        and no longer ours (we remove nothing any more)."""
        entries, self._ours = tuple(self._ours.items()), {}
        return entries

    def adopt(self, entries: Sequence[tuple[int, str]]) -> None:
        """Entries the frame that steered before handed over become ours, each only while its id
        still holds its URI (a person may have changed the queue since); then a snapshot, so its
        last edits are not taken for a person's."""
        self.snapshot()
        assert self._snapshot is not None
        now = dict(self._snapshot.entries)
        for song_id, uri in entries:
            if now.get(song_id) == uri:
                self._ours[song_id] = uri

    def adopt_later(self, entries: Sequence[tuple[int, str]]) -> None:
        """`adopt` while MPD is away: the entries still in the last queue seen become ours now,
        and at the next look they are found again by position (MPD renumbers its queue when it
        restarts), or forgotten with ours if the queue changed meanwhile, as ours are."""
        known = dict(self._snapshot.entries) if self._snapshot is not None else {}
        for song_id, uri in entries:
            if known.get(song_id) == uri:
                self._ours[song_id] = uri

    @property
    def others_upcoming(self) -> list[str]:
        """The URIs queued after the current track by someone else (a person, or the frame that
        steered before), as of the last look: they play anyway, so a choice leaves them out."""
        snap = self._snapshot
        if snap is None:
            return []
        start = snap.status.song_pos + 1 if snap.status.song_pos is not None else 0
        return [uri for song_id, uri in snap.entries[start:] if self._ours.get(song_id) != uri]

    def is_ours(self, song_id: int | None) -> bool:
        return song_id is not None and song_id in self._ours

    def external_change(self) -> str | None:
        """Describe a change a person made since our last snapshot, or None; re-snapshots."""
        before = self._snapshot
        self.snapshot()
        after = self._snapshot
        if before is None or after is None or before.generation != after.generation:
            return None
        return describe_external_change(before.status, before.ids, after.status, after.ids,
                                        after.taken_at - before.taken_at)


def track_ended(before: PlayerStatus, waited_s: float) -> bool:
    """Whether the track playing at `before` has run out `waited_s` later (give or take the
    news's delay); a stream (no duration) never ends by itself."""
    return (before.state == "play" and before.duration > 0
            and before.duration - before.elapsed <= waited_s + ENDED_SLACK_S)


def describe_external_change(before: PlayerStatus, before_ids: tuple[int, ...],
                             after: PlayerStatus, after_ids: tuple[int, ...],
                             waited_s: float = 0.0) -> str | None:
    """Pure comparison of two snapshots taken `waited_s` apart; None when the difference is MPD's
    own progress, by its modes (random, repeat, single, consume) included."""
    ended = track_ended(before, waited_s)
    if after.playlist_version != before.playlist_version:
        now_there = set(after_ids)  # once: a queue that is never cleared grows long
        added = now_there - set(before_ids)
        removed = [i for i in before_ids if i not in now_there]
        if added:
            return f"{len(added)} track(s) added to the queue by another client"
        consumed = before.consume and removed == [before.song_id]
        if removed and not consumed:
            return f"{len(removed)} track(s) removed from the queue by another client"
        kept = [i for i in before_ids if i in now_there]
        if list(after_ids) != kept and not removed:
            return "the queue was reordered by another client"
        if removed and consumed and list(after_ids) != kept:
            return "the queue was reordered by another client"
    # Single mode: MPD pauses (newer versions) or stops when the track ends.
    if before.state == "play" and after.state == "pause" and not (before.single and ended):
        return "playback paused by another client"
    # MPD stops by itself at the end of the queue, at the end of a random round, in single mode,
    # and when a stream dies (with an error).
    if (before.state in ("play", "pause") and after.state == "stop"
            and before.song_pos is not None and before.song_pos < len(before_ids) - 1
            and not ended and not after.error):
        return "playback stopped by another client"
    if after.state == "play" and after.song_id != before.song_id and before.song_id is not None:
        natural_next = _next_id(before_ids, before.song_id, wrap=before.repeat)
        # When the track ran out during the wait, MPD may have played on past several short
        # tracks before the news was read: any later track (round the queue with repeat) is its.
        moved_on = ended and (before.random or _later(before_ids, before.song_id, after.song_id,
                                                      wrap=before.repeat))
        if after.song_id != natural_next and not moved_on:
            return "another track was chosen by another client"
    return None


def _later(ids: tuple[int, ...], song_id: int, other: int | None, wrap: bool = False) -> bool:
    """Whether `other` comes after `song_id` in the queue `ids` (anywhere else, with `wrap`)."""
    if song_id not in ids or other not in ids:
        return False
    return wrap or ids.index(other) > ids.index(song_id)


def _next_id(ids: tuple[int, ...], song_id: int, wrap: bool = False) -> int | None:
    try:
        pos = ids.index(song_id)
    except ValueError:
        return None
    if pos + 1 < len(ids):
        return ids[pos + 1]
    return ids[0] if wrap and ids else None
