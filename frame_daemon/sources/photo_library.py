"""The slideshow's photos: folders searched recursively, cached in SQLite, and the order to show.

A library of 50,000 photos must not make the frame wait: the cache from the last run is used at
once, and a background scan (batches committed as it goes) adds new files and, once it has seen
every folder, drops the ones that are gone. The first photo can show after the first batch.

Shuffle shows every photo once before any repeats: each photo has a random key and the round it
was last shown in; the next photo is the lowest key not yet shown in this round. Both live in the
database, so the frame carries on where it was after a restart. A photo added mid-round joins the
round. Name and date order walk the sort key from the last photo shown, wrapping at the end.

The date order is the date taken (EXIF), else the file's modification time. Reading EXIF from
50,000 files would keep the first photo waiting, so the scan records only the mtime; the dates
are read in the background while the date order is chosen (`undated`, `set_dates`) and kept in
the cache, and a photo not read yet sorts by its mtime meanwhile.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from frame_daemon.errors import FrameDaemonError
from frame_daemon.sources.watch import IMAGE_SUFFIXES, is_candidate_name
from frame_daemon.sqlite_schema import (
    SchemaTooNew,
    Step,
    add_column,
    connect,
    migrate,
    open_replacing_corrupt,
)
from frame_daemon.vision.photo import photo_taken

log = logging.getLogger(__name__)

ORDERS = ("shuffle", "date", "name")
ALL_ALBUMS = "All photos"
BATCH = 500

# The cache's schema, step by step (frame_daemon/sqlite_schema.py): a file's user_version is the
# number of steps it has; a step is never changed once released, only followed by another. Caches
# written before the version was kept (0) have some of the columns already: `add_column` leaves
# those, so the shuffle round, the place in it and the settings stay.
_STEPS: tuple[Step, ...] = (
    """
CREATE TABLE IF NOT EXISTS photos (
    path TEXT PRIMARY KEY,
    mtime REAL NOT NULL,
    key REAL NOT NULL,          -- the shuffle key, new each round
    round INTEGER NOT NULL,     -- the shuffle round it was last shown in (0: never)
    bad TEXT,                   -- why it cannot be shown (skipped until the file changes)
    scan INTEGER NOT NULL       -- the scan that last saw it
);
CREATE INDEX IF NOT EXISTS photos_shuffle ON photos (round, key);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
""",
    add_column("photos", "valence", "REAL"),  # its mood, once scored (photos follow music)
    add_column("photos", "arousal", "REAL"),
    add_column("photos", "taken", "REAL"),  # date order: EXIF date taken, else mtime (NULL: unread)
    """
DROP INDEX IF EXISTS photos_mtime;
CREATE INDEX IF NOT EXISTS photos_date ON photos (coalesce(taken, mtime), path);
""",
)
# Where versions before the settings store (settings.json) kept the slideshow's settings.
_OLD_SETTINGS = "name LIKE 'setting.%' OR name IN ('order', 'album')"
# The date order's sort key: the date taken once read, the file's mtime until then.
_DATE = "coalesce(taken, mtime)"


def photo_date(path: str, mtime: float) -> float:
    """When a photo was taken (EXIF DateTimeOriginal or DateTime, read as local time), as a
    timestamp; its file's modification time when it has no such date."""
    taken = photo_taken(path)
    if taken is not None:
        try:
            return datetime.fromisoformat(taken).timestamp()
        except ValueError:  # "0000:00:00 00:00:00" and other cameras' placeholders
            pass
    return mtime


def _open_cache(path: Path) -> sqlite3.Connection:
    conn = connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        migrate(conn, _STEPS)
    except SchemaTooNew as exc:
        conn.close()
        raise FrameDaemonError(f"photo cache {path}: {exc}; upgrade frame-daemon, or delete the "
                               "file to scan the photos again") from None
    except BaseException:
        conn.close()
        raise
    return conn


def is_photo_name(name: str) -> bool:
    return is_candidate_name(name) and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def walk_photos(root: Path) -> Iterator[tuple[str, float]]:
    """(path, mtime) of every photo under `root`, depth first; unreadable folders are skipped."""
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            log.warning("cannot read photo folder %s: %s", folder, exc.strerror)
            continue
        for entry in sorted(entries, key=lambda e: e.name, reverse=True):
            try:
                if entry.is_dir(follow_symlinks=False):
                    if is_candidate_name(entry.name):
                        stack.append(entry.path)
                elif is_photo_name(entry.name) and entry.is_file():
                    yield entry.path, entry.stat().st_mtime
            except OSError:
                continue


def albums_in(roots: Iterable[Path]) -> list[str]:
    """The choices of album: every photo folder's subfolders (by name), and all photos."""
    names: set[str] = set()
    for root in roots:
        try:
            names.update(e.name for e in os.scandir(root)
                         if e.is_dir() and is_candidate_name(e.name))
        except OSError:
            continue
    return [ALL_ALBUMS, *sorted(names, key=str.casefold)]


class PhotoLibrary:
    """Thread-safe (one lock): the scan thread, the watchdog thread and the render thread use it."""

    def __init__(self, db_path: Path, roots: Iterable[Path], *, order: str = "shuffle",
                 seed: int | None = None) -> None:
        self.roots = [Path(r).expanduser().absolute() for r in roots]
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._db = open_replacing_corrupt(db_path, lambda: _open_cache(db_path), "photo cache",
                                          "scanning the photo folders again")
        # What Home Assistant set lives in the settings store; the slideshow hands it over.
        self.order = order
        self.album = ALL_ALBUMS

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ state kept in meta
    def _meta(self, name: str, default: str) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else default

    def _set_meta(self, name: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

    def old_settings(self) -> dict[str, Any]:
        """The slideshow settings that versions before the settings store kept here, named as
        the store names them, for their one move there ({} once moved)."""
        with self._lock:
            rows = dict(self._db.execute(f"SELECT name, value FROM meta WHERE {_OLD_SETTINGS}"))
        old: dict[str, Any] = {key: rows[key] for key in ("order", "album") if key in rows}
        if "setting.interval_s" in rows:
            try:
                old["interval_s"] = float(rows["setting.interval_s"])
            except ValueError:  # left as it is: the store's check names it
                old["interval_s"] = rows["setting.interval_s"]
        for name, key in (("paused", "paused"), ("follow_music", "photos_follow_music")):
            if f"setting.{name}" in rows:
                old[key] = rows[f"setting.{name}"] == "ON"
        if "setting.screen" in rows:
            old["screen"] = rows["setting.screen"] != "OFF"
        return old

    def forget_old_settings(self) -> None:
        """Once the settings store has them."""
        with self._lock:
            self._db.execute(f"DELETE FROM meta WHERE {_OLD_SETTINGS}")

    def set_order(self, order: str) -> None:
        if order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}")
        with self._lock:
            self.order = order

    def albums(self) -> list[str]:
        return albums_in(self.roots)

    def set_album(self, album: str) -> None:
        if album not in self.albums():
            raise ValueError(f"no album {album!r}: it must be a subfolder of the photo folders")
        with self._lock:
            self.album = album

    def _album_filter(self) -> tuple[str, tuple[str, ...]]:
        if self.album == ALL_ALBUMS:
            return "", ()
        prefixes = tuple(f"{root / self.album}{os.sep}" for root in self.roots)
        clause = " OR ".join("substr(path, 1, ?) = ?" for _ in prefixes)
        args: tuple[str | int, ...] = ()
        for p in prefixes:
            args += (len(p), p)
        return f" AND ({clause})", args  # type: ignore[return-value]

    # ------------------------------------------------------------------ contents
    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM photos WHERE bad IS NULL").fetchone()[0]

    def add(self, path: str, mtime: float, scan: int = 0) -> None:
        with self._lock:
            self._add(path, mtime, scan)

    def _add(self, path: str, mtime: float, scan: int) -> None:
        # A changed file gets another chance if it was bad, and is scored and dated again; a
        # known one keeps its place.
        self._db.execute(
            "INSERT INTO photos (path, mtime, key, round, bad, scan) VALUES (?, ?, ?, 0, NULL, ?)"
            " ON CONFLICT (path) DO UPDATE SET scan = excluded.scan,"
            " bad = CASE WHEN photos.mtime = excluded.mtime THEN photos.bad END,"
            " valence = CASE WHEN photos.mtime = excluded.mtime THEN photos.valence END,"
            " arousal = CASE WHEN photos.mtime = excluded.mtime THEN photos.arousal END,"
            " taken = CASE WHEN photos.mtime = excluded.mtime THEN photos.taken END,"
            " mtime = excluded.mtime",
            (path, mtime, self._rng.random(), scan))

    def remove(self, path: str) -> None:
        """Forget a photo, or every photo under a removed folder."""
        with self._lock:
            prefix = path.rstrip(os.sep) + os.sep
            self._db.execute("DELETE FROM photos WHERE path = ? OR substr(path, 1, ?) = ?",
                             (path, len(prefix), prefix))

    def mark_bad(self, path: str, reason: str) -> None:
        with self._lock:
            self._db.execute("UPDATE photos SET bad = ? WHERE path = ?", (reason, path))

    def scan(self, stop: threading.Event | None = None) -> int:
        """Walk every root that is there, add what is new, drop what is gone. Returns the number
        of photos seen. A root that is missing (an unplugged stick) keeps its photos cached."""
        with self._lock:
            generation = int(self._meta("scan", "0")) + 1
            self._set_meta("scan", str(generation))
        seen = 0
        for root in self.roots:
            if not root.is_dir():
                continue
            batch: list[tuple[str, float]] = []
            complete = True
            for item in walk_photos(root):
                if stop is not None and stop.is_set():
                    complete = False
                    break
                batch.append(item)
                if len(batch) >= BATCH:
                    self._add_batch(batch, generation)
                    seen += len(batch)
                    batch = []
            self._add_batch(batch, generation)
            seen += len(batch)
            if complete and root.is_dir():
                prefix = f"{root}{os.sep}"
                with self._lock:
                    self._db.execute("DELETE FROM photos WHERE scan < ? AND substr(path, 1, ?) = ?",
                                     (generation, len(prefix), prefix))
        return seen

    def _add_batch(self, batch: list[tuple[str, float]], generation: int) -> None:
        if not batch:
            return
        with self._lock:
            self._db.execute("BEGIN")
            for path, mtime in batch:
                self._add(path, mtime, generation)
            self._db.execute("COMMIT")

    # ------------------------------------------------------------------ the order
    def next(self, current: str | None = None) -> str | None:
        """The next photo to show (and, in shuffle, mark it shown); None if there is none."""
        with self._lock:
            if self.order == "shuffle":
                return self._next_shuffled()
            return self._next_sorted(current)

    def _next_shuffled(self) -> str | None:
        where, args = self._album_filter()
        current_round = int(self._meta("round", "1"))
        for _ in range(2):
            row = self._db.execute(
                f"SELECT path FROM photos WHERE bad IS NULL AND round < ?{where}"
                " ORDER BY round, key LIMIT 1", (current_round, *args)).fetchone()
            if row is not None:
                self._db.execute("UPDATE photos SET round = ? WHERE path = ?",
                                 (current_round, row[0]))
                return row[0]
            # Every photo has been shown: a new round in a new order.
            current_round += 1
            self._set_meta("round", str(current_round))
            self._db.execute("BEGIN")
            for (path,) in self._db.execute("SELECT path FROM photos").fetchall():
                self._db.execute("UPDATE photos SET key = ? WHERE path = ?",
                                 (self._rng.random(), path))
            self._db.execute("COMMIT")
        return None

    def _next_sorted(self, current: str | None) -> str | None:
        where, args = self._album_filter()
        key = "path" if self.order == "name" else f"{_DATE}, path"
        after, after_args = "", ()
        if current is not None and self.order == "name":
            after, after_args = " AND path > ?", (current,)
        elif current is not None:
            row = self._db.execute(f"SELECT {_DATE} FROM photos WHERE path = ?",
                                   (current,)).fetchone()
            if row is not None:
                after = f" AND ({_DATE} > ? OR ({_DATE} = ? AND path > ?))"
                after_args = (row[0], row[0], current)
        for extra, extra_args in ((after, after_args), ("", ())):  # then wrap around
            row = self._db.execute(
                f"SELECT path FROM photos WHERE bad IS NULL{where}{extra} ORDER BY {key} LIMIT 1",
                (*args, *extra_args)).fetchone()
            if row is not None:
                return row[0]
        return None

    # ------------------------------------------------------------------ dates (date order)
    def undated(self, limit: int = 100) -> list[tuple[str, float]]:
        """(path, mtime) of photos whose date taken has not been read yet."""
        with self._lock:
            return self._db.execute("SELECT path, mtime FROM photos WHERE taken IS NULL AND"
                                    " bad IS NULL LIMIT ?", (limit,)).fetchall()

    def set_dates(self, dates: Iterable[tuple[str, float]]) -> None:
        """Keep the dates taken that were read: (path, timestamp) pairs, one transaction."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("UPDATE photos SET taken = ? WHERE path = ?",
                                 [(taken, path) for path, taken in dates])
            self._db.execute("COMMIT")

    # ------------------------------------------------------------------ moods (photos follow music)
    def unscored(self, limit: int = 50) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute(
                "SELECT path FROM photos WHERE valence IS NULL AND bad IS NULL LIMIT ?", (limit,))]

    def set_mood(self, path: str, valence: float, arousal: float) -> None:
        with self._lock:
            self._db.execute("UPDATE photos SET valence = ?, arousal = ? WHERE path = ?",
                             (valence, arousal, path))

    def scored(self) -> tuple[list[str], list[float], list[float]]:
        """The album's scored photos: their paths, valence and arousal."""
        where, args = self._album_filter()
        with self._lock:
            rows = self._db.execute(f"SELECT path, valence, arousal FROM photos WHERE bad IS NULL"
                                    f" AND valence IS NOT NULL{where}", args).fetchall()
        return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]

    def choose_nearest(self, paths: list[str], distances: Sequence[float], avoid: set[str],
                       choose_from: int = 3) -> str | None:
        """One of the `choose_from` photos nearest by `distances`, leaving out `avoid` (recently
        shown) while others are left: a little variety among photos that fit equally well."""
        ranked = [paths[i] for i in sorted(range(len(paths)), key=distances.__getitem__)]
        fresh = [path for path in ranked if path not in avoid] or ranked
        return self._rng.choice(fresh[:choose_from]) if fresh else None

    def remember_current(self, path: str) -> None:
        with self._lock:
            self._set_meta("current", path)

    def last_current(self) -> str | None:
        with self._lock:
            value = self._meta("current", "")
        return value or None
