"""A state file that cannot be opened is reported with its true reason: SQLite says only "unable to
open database file", and a directory in the file's place needs another fix than a read-only
state directory."""

from __future__ import annotations

import pytest

from frame_daemon.errors import TrackError
from frame_daemon.music.index_file import open_index
from frame_daemon.music.live_pool import LivePool
from frame_daemon.music.taste_store import TasteStore, TasteStoreError
from frame_daemon.sources.photo_library import open_library
from frame_daemon.sqlite_schema import unopenable

DIRECTORY = "it is a directory, not a file; move it out of the way"


def test_a_directory_in_the_track_index_place_is_named_as_such(tmp_path):
    path = tmp_path / "tracks.sqlite3"
    path.mkdir()
    with pytest.raises(TrackError) as caught:
        open_index(path)
    assert str(caught.value) == f"{path}: cannot open the track index: {DIRECTORY}"
    # The daemon starts all the same, and publishes the same sentence.
    assert LivePool().open(path) == f"{path}: cannot open the track index: {DIRECTORY}"


def test_a_directory_in_the_photo_cache_place_is_named_as_such(tmp_path):
    path = tmp_path / "slideshow.sqlite"
    path.mkdir()
    library = open_library(path, [tmp_path])
    assert library.in_memory and library.problem == DIRECTORY


def test_a_directory_in_the_taste_file_place_is_named_as_such(tmp_path):
    (tmp_path / "taste.sqlite3").mkdir()
    with pytest.raises(TasteStoreError, match=f"taste.sqlite3: {DIRECTORY}$"):
        TasteStore.in_directory(tmp_path)


def test_what_else_keeps_a_file_from_opening(tmp_path):
    assert unopenable(tmp_path / "fine.sqlite3") is None  # nothing to see: SQLite's own words
    (tmp_path / "state").write_text("a file where the state directory should be")
    assert unopenable(tmp_path / "state" / "tracks.sqlite3") == (
        f"its folder {tmp_path / 'state'} is missing or not a folder")
