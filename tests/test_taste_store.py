"""The taste store: survives a restart, keeps at most its cap, migrates, replaces a damaged file."""

from __future__ import annotations

import logging
import sqlite3

import pytest

from frame_daemon.mood import Mood
from frame_daemon.music.taste import Arrival, Verdict
from frame_daemon.music.taste_store import FILE_NAME, STEPS, TasteStore
from frame_daemon.sqlite_schema import SchemaTooNew


def verdict(i: int, fits: bool = True) -> Verdict:
    return Verdict(fits, Arrival.SKIP if not fits else Arrival.BUTTON, 1.7e9 + i,
                   Mood(0.1, -0.4, 0.8), Mood(0.2, -0.3), f"t/{i}.mp3", Mood(0.3, -0.2, 0.9),
                   "Jazz; Soul", "Someone", f"Song {i}", "analysis: tempo 80")


def test_verdicts_survive_a_restart_with_every_field(tmp_path):
    with TasteStore.in_directory(tmp_path) as store:
        store.add(verdict(1))
        store.add(verdict(2, fits=False))
    with TasteStore.in_directory(tmp_path) as store:
        assert store.verdicts() == [verdict(1), verdict(2, fits=False)]


def test_the_oldest_verdicts_go_beyond_the_cap(tmp_path):
    with TasteStore.in_directory(tmp_path, max_verdicts=3) as store:
        for i in range(10):
            store.add(verdict(i))
        assert [v.uri for v in store.verdicts()] == ["t/7.mp3", "t/8.mp3", "t/9.mp3"]


def test_forget_empties_the_file(tmp_path):
    with TasteStore.in_directory(tmp_path) as store:
        store.add(verdict(1))
        assert store.forget() == 1 and store.verdicts() == []
    assert b"t/1.mp3" not in (tmp_path / FILE_NAME).read_bytes()


def test_schema_version_counts_the_steps_and_a_newer_file_is_refused(tmp_path):
    with TasteStore.in_directory(tmp_path):
        pass
    conn = sqlite3.connect(tmp_path / FILE_NAME)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(STEPS)
    conn.execute(f"PRAGMA user_version = {len(STEPS) + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaTooNew):
        TasteStore.in_directory(tmp_path)


def test_a_corrupt_file_is_moved_aside_with_one_log_line_and_starts_empty(tmp_path, caplog):
    (tmp_path / FILE_NAME).write_bytes(b"not a database at all" * 100)
    with caplog.at_level(logging.ERROR), TasteStore.in_directory(tmp_path) as store:
        assert store.verdicts() == []
        store.add(verdict(1))
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "taste file" in errors[0].getMessage()
    assert len(list(tmp_path.glob(f"{FILE_NAME}.corrupt-*"))) == 1


def test_a_verdict_waits_in_memory_while_another_program_locks_the_file(tmp_path, caplog):
    store = TasteStore.in_directory(tmp_path)
    store.add(verdict(1))
    assert store.verdicts() == [verdict(1)]  # as the loop reads them to learn the taste
    other = sqlite3.connect(tmp_path / FILE_NAME, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    with caplog.at_level(logging.INFO, logger="frame_daemon.music.taste_store"):
        store.add(verdict(2))  # not refused: kept in memory
        store.add(verdict(3, fits=False))
        assert store.pending == [verdict(2), verdict(3, fits=False)]
        # What the loop reads meanwhile: what was read last, and the waiting verdicts.
        assert store.verdicts() == [verdict(1), verdict(2), verdict(3, fits=False)]
        assert len(store) == 3
        assert store.write_pending() is False
        other.execute("COMMIT")
        assert store.write_pending() is True and store.pending == []
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        f"taste file {tmp_path / FILE_NAME} is busy", f"taste file {tmp_path / FILE_NAME} is free "
        "again: 2 waiting verdicts written"]
    other.close()
    store.close()
    with TasteStore.in_directory(tmp_path) as again:
        assert again.verdicts() == [verdict(1), verdict(2), verdict(3, fits=False)]


def test_verdicts_still_waiting_at_stop_are_written_if_the_lock_goes_in_time(tmp_path):
    store = TasteStore.in_directory(tmp_path)
    other = sqlite3.connect(tmp_path / FILE_NAME, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    store.add(verdict(1))
    other.execute("COMMIT")  # freed before the stop's last wait
    store.close()
    assert other.execute("SELECT uri FROM verdicts").fetchall() == [("t/1.mp3",)]
    other.close()
