"""The tracks the loop chooses from, kept current.

The index worker builds each new pool in its own thread and hands it over (`IndexRefreshed`), so
the loop never spends a second reading 100,000 tracks; only at start-up is the pool read from the
index file here (`open`). When the worker could not build one, the pool known stays. Tracks
that MPD refused to queue (deleted since the last index) are left out until the index catches up.
Owned by the loop thread.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from frame_daemon.errors import FrameDaemonError, TrackError
from frame_daemon.music.index import TrackIndex
from frame_daemon.music.index_file import describe_storage_error, open_index, reopen_if_replaced
from frame_daemon.music.select import TrackPool

log = logging.getLogger(__name__)


class LivePool:
    def __init__(self) -> None:
        self.pool = TrackPool.from_tracks([])
        self._index: TrackIndex | None = None
        self._refused: set[str] = set()  # indexed, but MPD refused to queue them

    def __len__(self) -> int:
        return len(self.pool)

    @property
    def refused(self) -> int:
        """How many indexed tracks are left out because MPD refused them."""
        return len(self._refused)

    def open(self, path: Path) -> str | None:
        """Open the index (a corrupt file is moved aside and rebuilt) and read the pool. A state
        directory that cannot be written (an SD card remounted read-only after a disk error) is
        no reason not to start: returns why, and the index worker, restarting with backoff,
        hands over a pool once it can write there."""
        try:
            self._index = open_index(path)
        except TrackError as exc:
            if describe_storage_error(exc) is None:
                raise
            log.error("%s; following without tracks until it can be written", exc)
            return str(exc)
        self.reload()
        return None

    def close(self) -> None:
        if self._index is not None:
            self._index.close()

    def use(self, pool: TrackPool) -> None:
        """A pool the index worker built."""
        if self._refused:
            # Refusals the index has caught up with (the track is gone from it) are done with.
            self._refused = {uri for uri in self._refused if pool.index_of(uri) is not None}
            pool = pool.without(self._refused)
        self.pool = pool

    def reload(self) -> None:
        """Read the pool from the index file; on failure keep following with the pool known."""
        if self._index is None:
            return
        try:
            self._index = reopen_if_replaced(self._index)  # the worker may have rebuilt it
            pool = TrackPool.from_rows(self._index.rows()).without(self._refused)
        except (sqlite3.Error, FrameDaemonError) as exc:
            log.warning("cannot read the track index (%s); following with the %d tracks known",
                        exc, len(self.pool))
            return
        self.pool = pool

    def refuse(self, uris: Iterable[str]) -> None:
        """MPD no longer knows these indexed tracks: stop picking them."""
        uris = set(uris)
        self._refused |= uris
        log.warning("%d indexed track(s) unknown to MPD, no longer picked: %s", len(uris),
                    ", ".join(sorted(uris)[:5]))
        self.pool = self.pool.without(uris)
