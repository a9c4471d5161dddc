"""The one migration style: user_version counts the steps applied, the rest run in order in one
transaction, a newer file is refused and a damaged one is moved aside with one log line."""

from __future__ import annotations

import logging
import sqlite3

import pytest

from frame_daemon.sqlite_schema import (
    SchemaTooNew,
    add_column,
    connect,
    migrate,
    open_replacing_corrupt,
    user_version,
)

STEPS = (
    "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);"
    "INSERT INTO notes (text) VALUES ('a; not the end');  -- a comment; with a semicolon",
    add_column("notes", "tag", "TEXT NOT NULL DEFAULT ''"),
    "CREATE INDEX notes_tag ON notes (tag)",
)


def test_a_new_file_runs_every_step_and_an_old_one_only_the_rest(tmp_path):
    conn = connect(tmp_path / "new.sqlite")
    assert migrate(conn, STEPS) == 3 and user_version(conn) == 3
    assert conn.execute("SELECT text, tag FROM notes").fetchall() == [("a; not the end", "")]
    conn.close()

    old = connect(tmp_path / "old.sqlite")
    assert migrate(old, STEPS[:1]) == 1
    old.execute("INSERT INTO notes (text) VALUES ('kept')")
    assert migrate(old, STEPS) == 3  # the first step is not run again: no second 'a; ...' row
    assert [r[0] for r in old.execute("SELECT text FROM notes ORDER BY id")] == [
        "a; not the end", "kept"]
    assert migrate(old, STEPS) == 3  # nothing left to do
    old.close()


def test_a_failing_step_leaves_the_file_as_it_was(tmp_path):
    conn = connect(tmp_path / "db.sqlite")
    migrate(conn, STEPS[:1])
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, (*STEPS[:2], "CREATE INDEX broken ON nowhere (x)"))
    assert user_version(conn) == 1 and not conn.in_transaction
    columns = {row[1] for row in conn.execute("PRAGMA table_info(notes)")}
    assert "tag" not in columns  # step 2 rolled back with step 3
    conn.close()


def test_a_file_from_a_newer_version_is_refused(tmp_path):
    conn = connect(tmp_path / "db.sqlite")
    migrate(conn, STEPS)
    with pytest.raises(SchemaTooNew, match=r"schema version 3 is newer .* \(2\)"):
        migrate(conn, STEPS[:2])
    assert user_version(conn) == 3 and not conn.in_transaction
    conn.close()


def test_a_damaged_file_is_moved_aside_with_one_log_line(tmp_path, caplog):
    path = tmp_path / "cache.sqlite"
    path.write_bytes(b"this is not SQLite" * 100)

    def open_() -> sqlite3.Connection:
        conn = connect(path)
        try:
            migrate(conn, STEPS)
        except Exception:
            conn.close()
            raise
        return conn

    with caplog.at_level(logging.INFO, logger="frame_daemon.sqlite_schema"):
        conn = open_replacing_corrupt(path, open_, "photo cache", "scanning the photos again")
    assert user_version(conn) == 3
    conn.close()
    aside = [p.name for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 1 and (tmp_path / aside[0]).read_bytes().startswith(b"this is not")
    assert [r.getMessage() for r in caplog.records] == [
        f"photo cache {path} is corrupt (file is not a database); moved it to {aside[0]} and "
        "scanning the photos again"]


def test_errors_that_a_new_file_would_not_fix_are_not_moved_aside(tmp_path):
    path = tmp_path / "cache.sqlite"
    path.write_bytes(b"")

    def busy() -> None:
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(sqlite3.OperationalError):
        open_replacing_corrupt(path, busy, "photo cache", "scanning the photos again")
    assert [p.name for p in tmp_path.iterdir()] == ["cache.sqlite"]
