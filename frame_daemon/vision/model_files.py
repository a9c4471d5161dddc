"""Where the shipped model files are: package data of frame_daemon.models, via importlib.resources.

The top-level `models/` folder of the repository is installed as the package `frame_daemon.models`
(see pyproject.toml), so the same lookup works from a wheel, an editable install or a checkout.
"""

from __future__ import annotations

import json
import os
import stat
from importlib import resources
from pathlib import Path
from typing import Any

from frame_daemon.errors import ModelError
from frame_daemon.file_kind import kind

MODELS_PACKAGE = "frame_daemon.models"
# The mood model `score`, `match` and the daemon use unless told otherwise (metadata JSON name).
DEFAULT_MOOD_MODEL = "mood-v4.json"


def read_metadata(json_path: Path, what: str, expected_format: str) -> tuple[dict[str, Any], Path]:
    """A model's metadata JSON (`what` it is, for the messages) and the model file it names;
    ModelError naming the file when either is missing, unreadable or of another format."""
    _refuse_special(json_path, what)
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{json_path}: {what} not found") from None
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: not UTF-8, not JSON
        raise ModelError(f"{json_path}: unreadable {what} ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != expected_format:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ModelError(f"{json_path}: metadata format {found!r}, expected {expected_format}")
    file = meta.get("file", json_path.stem + ".tflite")
    if not isinstance(file, str):
        raise ModelError(f"{json_path}: \"file\" must name the model file, got {file!r}")
    model_path = json_path.parent / file
    if not model_path.exists():
        raise ModelError(f"{model_path}: model file not found")
    _refuse_special(model_path, "model file")
    return meta, model_path


def _refuse_special(path: Path, what: str) -> None:
    """ModelError for a FIFO (reading it waits for a writer, for ever), a device (/dev/zero never
    ends) or a folder where a model's file belongs; anything else is left to the reading."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return
    if not stat.S_ISREG(mode):
        raise ModelError(f"{path}: the {what} is {kind(mode)}, not a file")


def models_dir() -> Path:
    """The folder that holds the shipped models (inside site-packages once installed)."""
    try:
        root = resources.files(MODELS_PACKAGE)
    except ModuleNotFoundError as exc:
        raise ModelError(f"the package {MODELS_PACKAGE} is not installed: reinstall frame-daemon "
                         "(pip install frame-daemon, or pip install -e . in a checkout)") from exc
    # Installed packages are plain folders (wheels install unzipped): the runtimes need real paths.
    return Path(str(root))


def model_path(name: str) -> Path:
    """The path of a shipped model file by name, e.g. "mood-v4.json" or "mood-v4.tflite".

    Raises ModelError naming the file and what is there when it is missing.
    """
    path = models_dir() / name
    if not path.is_file():
        shipped = ", ".join(sorted(p.name for p in models_dir().iterdir()
                                   if p.suffix in (".json", ".tflite"))) or "none"
        raise ModelError(f"{path}: no such model file (shipped: {shipped})")
    return path
