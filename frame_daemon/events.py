"""The events adapter threads put on the loop's queue: small, frozen, one class per kind."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from frame_daemon.commands import CommandName
    from frame_daemon.music.select import TrackPool


@dataclass(frozen=True, slots=True)
class PhotoShown:
    """The frame now shows this photo (already debounced and complete)."""

    path: Path


@dataclass(frozen=True, slots=True)
class PlayerChanged:
    """MPD reported a change in these idle subsystems (player, playlist, options, ...)."""

    subsystems: frozenset[str]


@dataclass(frozen=True, slots=True)
class DatabaseChanged:
    """MPD's music database changed: the track index needs a refresh."""


@dataclass(frozen=True, slots=True)
class MpdConnection:
    """The idle watcher's connection to MPD came up or went away."""

    connected: bool
    error: str = ""


@dataclass(frozen=True, slots=True)
class MpdSessionChanged:
    """The MPD session's thread connected (a connection waits for the loop to adopt) or failed
    to (with why)."""

    ready: bool
    error: str = ""


@dataclass(frozen=True, slots=True)
class IndexRefreshed:
    """The index worker finished a refresh, with the new track pool built in the worker (so the
    loop never spends a second reading 100,000 tracks); None after an error."""

    tracks: int
    summary: str
    error: str = ""
    pool: TrackPool | None = None


@dataclass(frozen=True, slots=True)
class Command:
    """A validated command from Home Assistant (or posted by one of the daemon's threads)."""

    name: CommandName
    value: str | float | bool | None = None


@dataclass(frozen=True, slots=True)
class AdapterFailed:
    """An adapter thread's work died unexpectedly; its supervisor restarts it."""

    adapter: str
    error: str


@dataclass(frozen=True, slots=True)
class Stop:
    """Shut down: a signal arrived."""

    reason: str


Event = (PhotoShown | PlayerChanged | DatabaseChanged | MpdConnection | MpdSessionChanged
         | IndexRefreshed | Command | AdapterFailed | Stop)
