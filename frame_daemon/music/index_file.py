"""Open the track index file safely: a corrupt file is moved aside and rebuilt from MPD (the
shared `sqlite_schema.open_replacing_corrupt`), and a reader follows the file when the worker has
replaced it.

The index is a cache of MPD's library plus audio analyses: losing it costs a rescan, never the
user's music, so a corrupt file must not stop the daemon. It is kept beside the new one (renamed
`tracks.sqlite3.corrupt-<time>`) for a post-mortem.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from frame_daemon.errors import TrackError
from frame_daemon.music.index import TrackIndex
from frame_daemon.sqlite_schema import open_replacing_corrupt, unopenable

log = logging.getLogger(__name__)


def describe_storage_error(exc: BaseException, path: Path | None = None) -> str | None:
    """A clear sentence for an index file that cannot be opened or written, else None. path: the
    file (a TrackError carries it): SQLite's "unable to open" is explained by looking at it."""
    text = str(exc.__cause__ if isinstance(exc, TrackError) and exc.__cause__ else exc).lower()
    path = path or (exc.path if isinstance(exc, TrackError) else None)
    if "disk is full" in text or "no space" in text:
        return "the state directory is full (no space left on the device)"
    if "unable to open database file" in text and path is not None and (why := unopenable(path)):
        return why
    if "readonly" in text or "read-only" in text or "unable to open database" in text:
        return "the state directory cannot be written (read-only, or owned by another user)"
    return None


def open_index(path: Path) -> TrackIndex:
    """Open the index; a corrupt file is moved aside and a new, empty index is made."""
    try:
        return open_replacing_corrupt(path, lambda: TrackIndex(path), "track index",
                                      "rebuilding it from MPD")
    except TrackError as exc:
        storage = describe_storage_error(exc)
        if storage:
            raise TrackError(path, f"cannot open the track index: {storage}") from exc
        raise


def reopen_if_replaced(index: TrackIndex) -> TrackIndex:
    """The same index, or a fresh handle if its file was replaced (moved aside and rebuilt)."""
    try:
        current = os.stat(index.path).st_ino
    except OSError:
        return index
    if current == index.inode:
        return index
    log.info("track index %s was rebuilt; reopening it", index.path)
    index.close()
    return open_index(index.path)
