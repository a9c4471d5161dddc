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

A full or read-only state directory must not stop the frame: a write the cache cannot take is
logged once, kept in `problem` (the slideshow tells the daemon), and the library goes on from
memory where it must (the shuffle's place, photos that cannot be shown); photos seen meanwhile
are caught up by a later scan (`missed`). A cache that cannot be opened at all is kept in memory
until the next start (`open_library`).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import random
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from frame_daemon.errors import FrameDaemonError
from frame_daemon.sources.photo_folders import identity
from frame_daemon.sources.watch import is_candidate_name, is_photo_name
from frame_daemon.sqlite_schema import (
    SchemaTooNew,
    Step,
    add_column,
    connect,
    migrate,
    open_replacing_corrupt,
    unopenable,
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


def storage_problem(exc: BaseException, path: Path | None = None) -> str | None:
    """A sentence for a state directory that cannot take a write (full, read-only, another
    user's), else None: any other error is a bug, not a place to write. path: the cache file, so
    that SQLite's "unable to open" is explained by looking at it (a directory in its place)."""
    text = str(exc).lower()
    code = exc.errno if isinstance(exc, OSError) else None
    if code == errno.ENOSPC or "disk is full" in text or "no space" in text:
        return "the state directory is full (no space left on the device)"
    if "unable to open database file" in text and path is not None and (why := unopenable(path)):
        return why
    if code in (errno.EROFS, errno.EACCES, errno.EPERM) or "readonly" in text or (
            "read-only" in text or "unable to open database" in text):
        return "the state directory cannot be written (read-only, or owned by another user)"
    return None


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
        self.problem: str | None = None  # why the cache cannot be written now; None: it can
        self.in_memory = False  # the cache file could not be opened: kept in memory instead
        self.missed = False  # photos came or went that the cache could not take: rescan
        # What could not be saved, kept until it can be: the shuffle's round and the photos
        # shown in it, photos that cannot be shown (and why), the photo on show.
        self._round: int | None = None
        self._shown_unsaved: set[str] = set()
        self._bad_unsaved: dict[str, str] = {}
        self._current_unsaved: str | None = None
        self._db = open_replacing_corrupt(db_path, lambda: _open_cache(db_path), "photo cache",
                                          "scanning the photo folders again")
        # What Home Assistant set lives in the settings store; the slideshow hands it over.
        self.order = order
        self.album = ALL_ALBUMS
        self._unnamed: set[str] = set()  # folders of photos left out for their names

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ writes
    def _save(self, what: str, work: Callable[[], object]) -> bool:
        """Run one write (the lock held). False if the state directory cannot take it: said once
        in the log and kept in `problem`; the caller goes on from memory."""
        try:
            work()
        except (sqlite3.OperationalError, OSError) as exc:
            problem = storage_problem(exc)
            if problem is None:
                raise
            if self._db.in_transaction:  # SQLite may have rolled back already ("disk is full")
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            if problem != self.problem:
                log.warning("slideshow: %s not saved in the photo cache: %s; the slideshow goes "
                            "on, and saves again once it can", what, problem)
            self.problem = problem
            return False
        if self.problem is not None and not self.in_memory:
            log.info("slideshow: the photo cache is written again")
            self.problem = None
        return True

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

    def set_album(self, album: str, albums: Sequence[str] | None = None) -> None:
        """albums: the choices as last listed, from a thread that must not list the folders
        itself (the loop's: a photo folder on a share that hangs); None: list them now."""
        if album not in (self.albums() if albums is None else albums):
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

    def _storable(self, path: str) -> bool:
        """A name SQLite can hold: one that is not UTF-8 (the OS hands it over with surrogates)
        is left out, with one log line, rather than fail every scan."""
        try:
            path.encode()
        except UnicodeEncodeError:
            folder = os.path.dirname(path)  # said once a folder: a whole album may be Latin-1
            if folder not in self._unnamed:
                self._unnamed.add(folder)
                log.warning("slideshow: left out %r, and any other photo there whose name is not "
                            "UTF-8 (rename them to show them)", path)
            return False
        return True

    def add(self, path: str, mtime: float, scan: int = 0) -> None:
        if not self._storable(path):
            return
        with self._lock:
            if not self._save("a new photo", lambda: self._add(path, mtime, scan)):
                self.missed = True

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
            if not self._save("a removed photo", lambda: self._db.execute(
                    "DELETE FROM photos WHERE path = ? OR substr(path, 1, ?) = ?",
                    (path, len(prefix), prefix))):
                self.missed = True

    def mark_bad(self, path: str, reason: str) -> None:
        with self._lock:
            if not self._save("a photo that cannot be shown", lambda: self._db.execute(
                    "UPDATE photos SET bad = ? WHERE path = ?", (reason, path))):
                self._bad_unsaved[path] = reason  # not tried again meanwhile

    def scan(self, stop: threading.Event | None = None) -> int:
        """Walk every root that is there, add what is new, drop what is gone. Returns the number
        of photos seen. A root that is missing (an unplugged stick) keeps its photos cached."""
        with self._lock:
            generation = int(self._meta("scan", "0")) + 1
            if not self._save("a scan", lambda: self._set_meta("scan", str(generation))):
                self.missed = True  # a later scan catches up
                return 0
        seen = 0
        saved = True
        for root in self.roots:
            before = identity(root)
            if not root.is_dir():
                continue
            batch: list[tuple[str, float]] = []
            complete = True
            for item in walk_photos(root):
                if stop is not None and stop.is_set():
                    complete = False
                    break
                if not self._storable(item[0]):
                    continue
                batch.append(item)
                if len(batch) >= BATCH:
                    complete = self._add_batch(batch, generation)
                    if not complete:
                        break
                    seen += len(batch)
                    batch = []
            if complete and self._add_batch(batch, generation):
                seen += len(batch)
            else:
                complete = False
            saved = saved and (complete or (stop is not None and stop.is_set()))
            # Only a whole walk of the same folder says what is gone (not one that another stick
            # or folder took the place of meanwhile: the next scan walks that one).
            if complete and root.is_dir() and identity(root) == before:
                prefix = f"{root}{os.sep}"
                with self._lock:
                    self._save("photos that are gone", lambda p=prefix: self._db.execute(
                        "DELETE FROM photos WHERE scan < ? AND substr(path, 1, ?) = ?",
                        (generation, len(p), p)))
        self.missed = not saved
        return seen

    def _add_batch(self, batch: list[tuple[str, float]], generation: int) -> bool:
        if not batch:
            return True

        def add() -> None:
            self._db.execute("BEGIN")
            for path, mtime in batch:
                self._add(path, mtime, generation)
            self._db.execute("COMMIT")

        with self._lock:
            return self._save("new photos", add)

    # ------------------------------------------------------------------ the order
    def next(self, current: str | None = None) -> str | None:
        """The next photo to show (and, in shuffle, mark it shown); None if there is none."""
        with self._lock:
            if self.order == "shuffle":
                return self._next_shuffled()
            return self._next_sorted(current)

    def _first(self, query: str, args: Sequence[object], skip: Iterable[str] = ()) -> str | None:
        """The first path the query yields that is not in `skip` nor unshowable (unsaved)."""
        skip = set(skip) | self._bad_unsaved.keys()
        if not skip:
            row = self._db.execute(f"{query} LIMIT 1", args).fetchone()
            return row[0] if row else None
        rows = self._db.execute(query, args)
        try:
            return next((path for (path,) in rows if path not in skip), None)
        finally:
            rows.close()

    def _next_shuffled(self) -> str | None:
        where, args = self._album_filter()
        # The round is kept in memory too, for when the cache cannot take it.
        current_round = self._round or int(self._meta("round", "1"))
        for _ in range(2):
            path = self._first(f"SELECT path FROM photos WHERE bad IS NULL AND round < ?{where}"
                               " ORDER BY round, key", (current_round, *args),
                               self._shown_unsaved)
            if path is not None:
                if not self._save("the shuffle's place", lambda r=current_round, p=path:
                                  self._db.execute("UPDATE photos SET round = ? WHERE path = ?",
                                                   (r, p))):
                    self._shown_unsaved.add(path)  # not shown again this round meanwhile
                return path
            # Every photo has been shown: a new round in a new order.
            current_round += 1
            self._round = current_round
            self._shown_unsaved.clear()

            def new_round(r: int = current_round) -> None:
                self._db.execute("BEGIN")
                self._set_meta("round", str(r))
                for (p,) in self._db.execute("SELECT path FROM photos").fetchall():
                    self._db.execute("UPDATE photos SET key = ? WHERE path = ?",
                                     (self._rng.random(), p))
                self._db.execute("COMMIT")

            self._save("the shuffle's new round", new_round)  # else the same order again
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
            path = self._first(f"SELECT path FROM photos WHERE bad IS NULL{where}{extra}"
                               f" ORDER BY {key}", (*args, *extra_args))
            if path is not None:
                return path
        return None

    # ------------------------------------------------------------------ dates (date order)
    def undated(self, limit: int = 100) -> list[tuple[str, float]]:
        """(path, mtime) of photos whose date taken has not been read yet."""
        with self._lock:
            return self._db.execute("SELECT path, mtime FROM photos WHERE taken IS NULL AND"
                                    " bad IS NULL LIMIT ?", (limit,)).fetchall()

    def set_dates(self, dates: Iterable[tuple[str, float]]) -> bool:
        """Keep the dates taken that were read: (path, timestamp) pairs, one transaction. False
        if the cache could not take them."""
        rows = [(taken, path) for path, taken in dates]

        def write() -> None:
            self._db.execute("BEGIN")
            self._db.executemany("UPDATE photos SET taken = ? WHERE path = ?", rows)
            self._db.execute("COMMIT")

        with self._lock:
            return self._save("the photos' dates", write)

    # ------------------------------------------------------------------ moods (photos follow music)
    def unscored(self, limit: int = 50) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute(
                "SELECT path FROM photos WHERE valence IS NULL AND bad IS NULL LIMIT ?", (limit,))]

    def set_mood(self, path: str, valence: float, arousal: float) -> bool:
        """False if the cache could not take it."""
        with self._lock:
            return self._save("a photo's mood", lambda: self._db.execute(
                "UPDATE photos SET valence = ?, arousal = ? WHERE path = ?",
                (valence, arousal, path)))

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
            saved = self._save("the photo on show", lambda: self._set_meta("current", path))
            self._current_unsaved = None if saved else path

    def last_current(self) -> str | None:
        with self._lock:
            value = self._current_unsaved or self._meta("current", "")
        return value or None


def open_library(db_path: Path, roots: Iterable[Path], *, order: str = "shuffle",
                 seed: int | None = None) -> PhotoLibrary:
    """The photo library with its cache in `db_path`; in memory, with `problem` set, when the
    state directory cannot hold it (full, read-only): the frame still shows its photos. (A corrupt
    cache is moved aside and made afresh by `PhotoLibrary` itself: it costs a scan.)"""
    try:
        return PhotoLibrary(db_path, roots, order=order, seed=seed)
    except (sqlite3.OperationalError, OSError) as exc:
        problem = storage_problem(exc, db_path)
        if problem is None:
            raise
        log.warning("slideshow: cannot open the photo cache %s: %s; keeping it in memory until "
                    "the next start", db_path, problem)
    library = PhotoLibrary(Path(":memory:"), roots, order=order, seed=seed)
    library.problem, library.in_memory = problem, True
    return library
