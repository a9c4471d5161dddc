"""The shipped models are found as package data, by name, wherever the package is installed."""

from __future__ import annotations

import pytest

from frame_daemon.errors import ModelError
from frame_daemon.vision.model_files import DEFAULT_MOOD_MODEL, model_path, models_dir


def test_the_default_mood_model_and_its_tflite_are_package_data() -> None:
    meta = model_path(DEFAULT_MOOD_MODEL)
    assert meta.parent == models_dir() and meta.is_file()
    assert model_path(meta.with_suffix(".tflite").name).stat().st_size > 100_000


def test_a_missing_model_names_itself_and_what_is_shipped() -> None:
    with pytest.raises(ModelError) as err:
        model_path("mood-v0.json")
    assert "mood-v0.json" in str(err.value) and DEFAULT_MOOD_MODEL in str(err.value)


@pytest.mark.parametrize("content", [b"\xff\xfe{}", b'{"format": 1, "file": 5}', b"[" * 3000])
def test_garbage_model_metadata_is_a_model_error_naming_the_file(tmp_path, content) -> None:
    # model.path is the user's: a file not in UTF-8, a file name that is no string, JSON too deep.
    from frame_daemon.vision.model_files import read_metadata

    meta = tmp_path / "mine.json"
    meta.write_bytes(content)
    with pytest.raises(ModelError, match=str(meta)):
        read_metadata(meta, "model metadata", 1)
