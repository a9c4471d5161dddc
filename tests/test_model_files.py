"""The shipped models are found as package data, by name, wherever the package is installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


def test_a_fifo_or_a_device_as_the_model_is_refused_at_once(tmp_path) -> None:
    # A FIFO held `score`, `doctor` and `run` for ever; /dev/zero was read until memory ran out.
    fifo = tmp_path / "mine.json"
    os.mkfifo(fifo)
    proc = subprocess.run([sys.executable, "-m", "frame_daemon", "score", "--model", str(fifo),
                           str(tmp_path / "photo.jpg")], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and f"{fifo}: the model metadata is a FIFO, not a file" in proc.stderr
    from frame_daemon.vision.model_files import read_metadata

    for path, kind in (("/dev/zero", "a device or socket"), (tmp_path, "a directory")):
        with pytest.raises(ModelError, match=f"the model metadata is {kind}, not a file"):
            read_metadata(Path(path), "model metadata", 1)
    meta = tmp_path / "other.json"
    meta.write_text('{"format": 1, "file": "zero.tflite"}')
    (tmp_path / "zero.tflite").symlink_to("/dev/zero")
    with pytest.raises(ModelError, match="the model file is a device or socket, not a file"):
        read_metadata(meta, "model metadata", 1)
