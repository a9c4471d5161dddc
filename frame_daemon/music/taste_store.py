"""The household's verdicts, kept in SQLite in the state directory (taste.sqlite3).

One row per verdict, with both moods (the photo's and the track's), the point the track was chosen
for, the track's genre, artist and where its mood came from, the time and how the verdict arrived.
The number of rows is capped (the oldest go first), so the file stays small over years; what is
learned from them is computed afresh (`taste.learn`), never stored. Unlike the track index this
file cannot be read again from anywhere, but a damaged one is still moved aside with one log line
and the frame starts with no taste rather than not at all.

The loop must not wait on the file: while another program (`frame-daemon taste`, a backup, an
`sqlite3` shell) holds a lock on it, SQLite's usual 5 s busy wait would stop the frame answering
for 5 s at every access. The loop's store waits `LOOP_BUSY_S` (a twentieth of a second) at most; a
verdict that cannot be written then waits in memory (`pending`, counted as kept) and is written
by a later `write_pending` once the lock is gone; a read that finds the file busy gives what was
read last, with the waiting verdicts.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from pathlib import Path

from frame_daemon.errors import FrameDaemonError
from frame_daemon.mood import Mood
from frame_daemon.music.taste import Arrival, Verdict
from frame_daemon.sqlite_schema import connect, migrate, open_replacing_corrupt, unopenable

log = logging.getLogger(__name__)

FILE_NAME = "taste.sqlite3"
MAX_VERDICTS = 5000  # about 1.5 MB; at ten verdicts a day, well over a year
LOOP_BUSY_S = 0.05  # the loop's longest wait for another program's lock on the file
CLOSE_BUSY_S = 2.0  # at stop, the last wait for verdicts still waiting (under TimeoutStopSec)

# The schema, one step per release that changed it; a released step is never edited.
STEPS = (
    """CREATE TABLE verdicts (
           id INTEGER PRIMARY KEY AUTOINCREMENT,
           at REAL NOT NULL,                 -- Unix seconds
           fits INTEGER NOT NULL,            -- 1 fits, 0 doesn't fit
           arrival TEXT NOT NULL,            -- button, cli, skip, played_through, own_music
           photo_valence REAL NOT NULL, photo_arousal REAL NOT NULL,
           photo_confidence REAL NOT NULL,
           target_valence REAL NOT NULL, target_arousal REAL NOT NULL,
           region TEXT NOT NULL,             -- the mood word of the target
           uri TEXT NOT NULL, title TEXT NOT NULL, artist TEXT NOT NULL, genre TEXT NOT NULL,
           track_valence REAL NOT NULL, track_arousal REAL NOT NULL,
           track_confidence REAL NOT NULL,
           analysis TEXT NOT NULL            -- where the track's mood came from
       )""",
    "CREATE INDEX verdicts_at ON verdicts (at)",
)

_COLUMNS = ("at, fits, arrival, photo_valence, photo_arousal, photo_confidence, target_valence, "
            "target_arousal, region, uri, title, artist, genre, track_valence, track_arousal, "
            "track_confidence, analysis")


class TasteStoreError(FrameDaemonError):
    """The taste file cannot be read or written (not damaged: full, read-only, busy)."""


def _busy(exc: sqlite3.Error) -> bool:
    """Another connection holds a lock on the file (SQLITE_BUSY / SQLITE_LOCKED)."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


class TasteStore:
    """Owned by one thread (the loop's); `frame-daemon taste` opens the same file from outside."""

    def __init__(self, path: Path, max_verdicts: int = MAX_VERDICTS, *, loop: bool = True) -> None:
        """loop: the loop's store, which waits LOOP_BUSY_S at most for another program's lock
        (opening waits the usual 5 s: that is at start-up, before the loop runs); False: a
        command's, which waits the usual 5 s at every access and fails if the file stays busy."""
        self.path = path
        self.max_verdicts = max_verdicts
        self._conn = open_replacing_corrupt(path, self._open, "taste file",
                                            "start with no taste")
        self._loop = loop
        if loop:
            self._set_busy_wait(LOOP_BUSY_S)
        self.pending: list[Verdict] = []  # kept, but not yet written: the file was busy
        self._read: tuple[int, list[Verdict]] = (0, [])  # the last read: data_version, verdicts
        self._said_busy = False  # the wait for the lock is logged once, and its end
        self._retry_error = ""  # what the last retry of the waiting verdicts failed with

    @classmethod
    def in_directory(cls, state_dir: Path, max_verdicts: int = MAX_VERDICTS, *,
                     loop: bool = True) -> TasteStore:
        return cls(state_dir / FILE_NAME, max_verdicts, loop=loop)

    def _set_busy_wait(self, seconds: float) -> None:
        self._conn.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")

    def _open(self) -> sqlite3.Connection:
        try:
            conn = connect(self.path)
        except sqlite3.Error as exc:
            why = unopenable(self.path) if "unable to open" in str(exc) else None
            raise TasteStoreError(f"taste file {self.path}: {why or exc}") from exc
        try:
            migrate(conn, STEPS)
            conn.execute("SELECT count(*) FROM verdicts").fetchone()  # a damaged table says so
        except Exception:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        if self.pending:  # a last, longer wait for the lock: the verdicts are not to be lost
            self._set_busy_wait(CLOSE_BUSY_S)
            if not self.write_pending():
                log.error("taste file %s is still busy (another program holds it): %d verdicts "
                          "could not be written and are lost", self.path, len(self.pending))
        self._conn.close()

    def __enter__(self) -> TasteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def version(self) -> int:
        """Changes whenever another connection (`frame-daemon taste --reset`) wrote the file."""
        try:
            return self._conn.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error as exc:
            if not (_busy(exc) and self._loop):
                raise
            self._say_busy()
            return self._read[0]  # busy: nothing new can be read

    def _say_busy(self) -> None:
        if not self._said_busy:
            self._said_busy = True
            log.warning("taste file %s is busy (another program holds a lock on it); the frame "
                        "goes on, verdicts wait in memory and are written when it is free",
                        self.path)

    def add(self, v: Verdict) -> None:
        """Keep one verdict; beyond the cap, the oldest go. If another program holds the file,
        it waits in `pending` (and counts as kept) until `write_pending` gets through."""
        self.pending.append(v)
        try:
            self.write_pending()
        except TasteStoreError:
            self.pending.remove(v)  # not busy: full or read-only; the caller says it was not kept
            raise

    def write_pending(self) -> bool:
        """Write the verdicts that waited for the file (oldest first, one transaction); False
        while another program still holds it. Raises TasteStoreError if it cannot be written."""
        if not self.pending:
            return True
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(
                f"INSERT INTO verdicts ({_COLUMNS}) VALUES ({', '.join('?' * 17)})",
                [(v.at, int(v.fits), str(v.arrival), v.photo.valence, v.photo.arousal,
                  v.photo.confidence, v.target.valence, v.target.arousal, v.region, v.uri,
                  v.title, v.artist, v.genre, v.track.valence, v.track.arousal,
                  v.track.confidence, v.analysis) for v in self.pending])
            self._conn.execute(
                "DELETE FROM verdicts WHERE id NOT IN "
                "(SELECT id FROM verdicts ORDER BY at DESC, id DESC LIMIT ?)", (self.max_verdicts,))
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
            if _busy(exc) and self._loop:
                self._say_busy()
                return False
            raise TasteStoreError(f"taste file {self.path}: cannot keep the verdict: {exc}") from exc
        if self._said_busy:
            log.info("taste file %s is free again: %d waiting verdicts written", self.path,
                     len(self.pending))
            self._said_busy = False
        self.pending.clear()
        return True

    def retry_pending(self) -> None:
        """`write_pending`, from the loop's periodic tick: a failure other than a busy file
        (full, read-only) is logged once, and the verdicts go on waiting."""
        try:
            self.write_pending()
        except TasteStoreError as exc:
            if str(exc) != self._retry_error:
                log.error("%s; %d verdicts wait in memory", exc, len(self.pending))
            self._retry_error = str(exc)
        else:
            self._retry_error = ""

    def verdicts(self) -> list[Verdict]:
        """Every verdict kept, oldest first (those still waiting for a busy file last)."""
        try:
            version = self.version()
            rows = self._conn.execute(f"SELECT {_COLUMNS} FROM verdicts ORDER BY at, id").fetchall()
        except sqlite3.Error as exc:
            if not (_busy(exc) and self._loop):
                raise
            self._say_busy()
            return [*self._read[1], *self.pending]  # what was read last
        read = [Verdict(fits=bool(r[1]), arrival=Arrival(r[2]), at=r[0],
                        photo=Mood.clipped(r[3], r[4], r[5]), target=Mood.clipped(r[6], r[7]),
                        uri=r[9], title=r[10], artist=r[11], genre=r[12],
                        track=Mood.clipped(r[13], r[14], r[15]), analysis=r[16])
                for r in rows]
        self._read = (version, read)
        return [*read, *self.pending]

    def __len__(self) -> int:
        try:
            count = self._conn.execute("SELECT count(*) FROM verdicts").fetchone()[0]
        except sqlite3.Error as exc:
            if not (_busy(exc) and self._loop):
                raise
            self._say_busy()
            count = len(self._read[1])
        return count + len(self.pending)

    def forget(self) -> int:
        """Forget every verdict (those waiting too); returns how many there were."""
        try:
            n = len(self)
            self._conn.execute("DELETE FROM verdicts")
            self._conn.execute("VACUUM")  # forgotten means gone from the file too
        except sqlite3.Error as exc:
            why = ("another program holds a lock on it; try again" if _busy(exc) else str(exc))
            raise TasteStoreError(f"taste file {self.path}: cannot forget: {why}") from exc
        self.pending.clear()
        self._read = (self._read[0], [])
        return n
