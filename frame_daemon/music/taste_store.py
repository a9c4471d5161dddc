"""The household's verdicts, kept in SQLite in the state directory (taste.sqlite3).

One row per verdict, with both moods (the photo's and the track's), the point the track was chosen
for, the track's genre, artist and where its mood came from, the time and how the verdict arrived.
The number of rows is capped (the oldest go first), so the file stays small over years; what is
learned from them is computed afresh (`taste.learn`), never stored. Unlike the track index this
file cannot be read again from anywhere, but a damaged one is still moved aside with one log line
and the frame starts with no taste rather than not at all.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from pathlib import Path

from frame_daemon.errors import FrameDaemonError
from frame_daemon.mood import Mood
from frame_daemon.music.taste import Arrival, Verdict
from frame_daemon.sqlite_schema import connect, migrate, open_replacing_corrupt

log = logging.getLogger(__name__)

FILE_NAME = "taste.sqlite3"
MAX_VERDICTS = 5000  # about 1.5 MB; at ten verdicts a day, well over a year

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


class TasteStore:
    """Owned by one thread (the loop's); `frame-daemon taste` opens the same file from outside."""

    def __init__(self, path: Path, max_verdicts: int = MAX_VERDICTS) -> None:
        self.path = path
        self.max_verdicts = max_verdicts
        self._conn = open_replacing_corrupt(path, self._open, "taste file",
                                            "start with no taste")

    @classmethod
    def in_directory(cls, state_dir: Path, max_verdicts: int = MAX_VERDICTS) -> TasteStore:
        return cls(state_dir / FILE_NAME, max_verdicts)

    def _open(self) -> sqlite3.Connection:
        try:
            conn = connect(self.path)
        except sqlite3.Error as exc:
            raise TasteStoreError(f"taste file {self.path}: {exc}") from exc
        try:
            migrate(conn, STEPS)
            conn.execute("SELECT count(*) FROM verdicts").fetchone()  # a damaged table says so
        except Exception:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> TasteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def version(self) -> int:
        """Changes whenever another connection (`frame-daemon taste --reset`) wrote the file."""
        return self._conn.execute("PRAGMA data_version").fetchone()[0]

    def add(self, v: Verdict) -> None:
        """Keep one verdict; beyond the cap, the oldest go."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute(
                f"INSERT INTO verdicts ({_COLUMNS}) VALUES ({', '.join('?' * 17)})",
                (v.at, int(v.fits), str(v.arrival), v.photo.valence, v.photo.arousal,
                 v.photo.confidence, v.target.valence, v.target.arousal, v.region, v.uri,
                 v.title, v.artist, v.genre, v.track.valence, v.track.arousal,
                 v.track.confidence, v.analysis))
            self._conn.execute(
                "DELETE FROM verdicts WHERE id NOT IN "
                "(SELECT id FROM verdicts ORDER BY at DESC, id DESC LIMIT ?)", (self.max_verdicts,))
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
            raise TasteStoreError(f"taste file {self.path}: cannot keep the verdict: {exc}") from exc

    def verdicts(self) -> list[Verdict]:
        """Every verdict kept, oldest first."""
        rows = self._conn.execute(f"SELECT {_COLUMNS} FROM verdicts ORDER BY at, id").fetchall()
        return [Verdict(fits=bool(r[1]), arrival=Arrival(r[2]), at=r[0],
                        photo=Mood.clipped(r[3], r[4], r[5]), target=Mood.clipped(r[6], r[7]),
                        uri=r[9], title=r[10], artist=r[11], genre=r[12],
                        track=Mood.clipped(r[13], r[14], r[15]), analysis=r[16])
                for r in rows]

    def __len__(self) -> int:
        return self._conn.execute("SELECT count(*) FROM verdicts").fetchone()[0]

    def forget(self) -> int:
        """Forget every verdict; returns how many there were."""
        try:
            n = len(self)
            self._conn.execute("DELETE FROM verdicts")
            self._conn.execute("VACUUM")  # forgotten means gone from the file too
        except sqlite3.Error as exc:
            raise TasteStoreError(f"taste file {self.path}: cannot forget: {exc}") from exc
        return n
