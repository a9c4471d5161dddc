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
