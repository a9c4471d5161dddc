"""The project's small exception hierarchy: raised where things fail, caught at one boundary."""

from __future__ import annotations

import os
from pathlib import Path


class FrameDaemonError(Exception):
    """Base class of every error the daemon raises on purpose."""


class PhotoError(FrameDaemonError):
    """A photo could not be read; carries the path and a one-line reason."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ModelError(FrameDaemonError):
    """The mood model or its metadata is missing, unreadable or inconsistent."""


class TrackError(FrameDaemonError):
    """A track's file or the track index could not be read; carries the path and a one-line reason."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")
