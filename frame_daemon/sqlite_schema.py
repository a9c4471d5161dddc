"""The one way our SQLite files (the track index, the photo cache) are made, upgraded and, when
damaged, replaced.

A file's `PRAGMA user_version` is the number of steps of its schema already applied. `migrate`
applies the rest in order, in one transaction, so a file is either upgraded in place (its data
kept) or left as it was; a new file runs every step. A file from a newer frame-daemon (more steps
than this one knows) is refused, never guessed at. The files are caches of what can be read again
(MPD's library, the photo folders), so a damaged one is moved aside for a post-mortem, with one
log line, and a new one is made.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)

# A step: SQL (one or more statements), or a function for what SQL alone cannot say.
Step = str | Callable[[sqlite3.Connection], None]
T = TypeVar("T")


class SchemaTooNew(Exception):
    """The file was written by a newer frame-daemon: it has more steps than this one knows."""

    def __init__(self, version: int, known: int) -> None:
        super().__init__(f"schema version {version} is newer than this frame-daemon understands "
                         f"({known})")
        self.version, self.known = version, known


def user_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection, steps: Sequence[Step]) -> int:
    """Apply the steps the file lacks, in order, in one transaction; returns the version now
    (len(steps)). The connection must be in autocommit mode (isolation_level=None)."""
    if user_version(conn) == len(steps):
        return len(steps)
    conn.execute("BEGIN IMMEDIATE")  # another process opening the file at once waits here
    try:
        version = user_version(conn)  # again: it may have migrated the file meanwhile
        if version > len(steps):
            raise SchemaTooNew(version, len(steps))
        for step in steps[version:]:
            if callable(step):
                step(conn)
            else:
                for statement in _statements(step):
                    conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {len(steps)}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return len(steps)


def add_column(table: str, column: str, declaration: str) -> Step:
    """A step that adds a column unless the table has it already: for files written before the
    schema had a version, or by a version that added the column without counting a step."""

    def step(conn: sqlite3.Connection) -> None:
        if column not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    return step


def _statements(script: str) -> list[str]:
    """A script as its statements, for `execute` one at a time (`executescript` would commit the
    transaction first). sqlite3's own parser says where a statement ends, so a ';' in a string or
    a comment stays in it; what follows the last one (a comment, or an incomplete statement that
    SQLite then refuses) is passed on as it is."""
    statements, pending = [], ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            statements.append(pending)
            pending = ""
    rest = pending[:-1]  # the ';' added after the last piece
    if rest.strip():
        statements.append(rest)
    return statements


def is_corrupt(exc: BaseException) -> bool:
    """A damaged file (not a busy, read-only or full one, which a new file would not fix); the
    SQLite error may be wrapped in one of ours, as its cause."""
    cause = exc if isinstance(exc, sqlite3.Error) else exc.__cause__
    return isinstance(cause, sqlite3.DatabaseError) and not isinstance(cause, sqlite3.OperationalError)


def unopenable(path: Path) -> str | None:
    """Why SQLite cannot open the file at `path`, found by looking at it: SQLite says only
    "unable to open database file", and a directory in the file's place, a file of another user
    and a read-only state directory each need a different fix. None: nothing to see."""
    if path.is_dir():
        return "it is a directory, not a file; move it out of the way"
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            return "this user cannot read and write it (it belongs to another user?)"
        return None
    folder = path.parent
    if not folder.is_dir():
        return f"its folder {folder} is missing or not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return "the state directory cannot be written (read-only, or owned by another user)"
    return None


def move_aside(path: Path) -> Path:
    """Rename a damaged file (and its WAL files) to `<name>.corrupt-<time>`; returns the new name."""
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    for suffix in ("", "-wal", "-shm"):
        old = Path(f"{path}{suffix}")
        if old.exists():
            os.replace(old, f"{aside}{suffix}")
    return aside


def open_replacing_corrupt(path: Path, open_: Callable[[], T], what: str, then: str) -> T:
    """`open_()` the file; if it is damaged, move it aside with one log line (`what` it is and
    what happens `then`) and `open_()` a new one. Other errors propagate."""
    try:
        return open_()
    except Exception as exc:
        if not is_corrupt(exc):
            raise
        aside = move_aside(path)
        log.error("%s %s is corrupt (%s); moved it to %s and %s", what, path,
                  exc.__cause__ or exc, aside.name, then)
    return open_()


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), shareable between the
    threads that take turns with it, waiting up to 5 s for another process's write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn
