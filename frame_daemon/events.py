"""The loop's vocabulary: the events adapter threads put on its queue (small, frozen, one class
per kind), and the names of the commands it takes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from frame_daemon.errors import PhotoError
    from frame_daemon.music.select import TrackPool
    from frame_daemon.vision.scorer import ScoredPhoto


class CommandName(StrEnum):
    """Every command: the value is its MQTT topic's last part. `commands.CommandTable` gives each
    its payload parser and handler; the slideshow's render thread takes its own ones by name."""

    # The music and its settings (Home Assistant)
    FOLLOWING = "following"
    MODE = "mode"
    THRESHOLD = "threshold"
    DIVERSITY = "diversity"
    INCLUDE_GENRES = "include_genres"
    EXCLUDE_GENRES = "exclude_genres"
    NEXT = "next"
    RESCORE = "rescore"
    REFRESH_INDEX = "refresh_index"
    RESUME = "resume"
    CLEAR_ERROR = "clear_error"
    RESET_SETTINGS = "reset_settings"
    # The household's taste (Home Assistant, `frame-daemon feedback`)
    FEEDBACK = "feedback"  # fits | doesnt_fit: about the photo on show and the track playing
    FORGET_TASTE = "forget_taste"
    # The built-in slideshow (Home Assistant)
    PHOTO_NEXT = "photo_next"
    PHOTO_PREVIOUS = "photo_previous"
    SLIDESHOW_PAUSED = "slideshow_paused"
    SCREEN = "screen"
    INTERVAL = "interval"
    ALBUM = "album"
    PHOTO_ORDER = "photo_order"
    PHOTOS_FOLLOW_MUSIC = "photos_follow_music"
    # Posted by the daemon's own threads, never taken from MQTT
    # Announce discovery again, after a short random delay: Home Assistant came back online (its
    # birth message), or what it offers changed (the slideshow's albums). The value says why.
    ANNOUNCE = "announce"
    REJECTED = "rejected"  # a payload its parser refused; the value says why


@dataclass(frozen=True, slots=True)
class PhotoShown:
    """The frame now shows this photo (already debounced and complete)."""

    path: Path


@dataclass(frozen=True, slots=True)
class PhotoScored:
    """The scoring worker read and scored the photo on show (off the loop: a photo on a share
    that hangs must not stall it), or could not read it (`error`)."""

    path: Path
    scored: ScoredPhoto | None
    error: PhotoError | None = None


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
    analysed: int | None = None  # tracks analysed by the current audio model (None: not counted)


@dataclass(frozen=True, slots=True)
class Command:
    """A validated command from Home Assistant (or posted by one of the daemon's threads)."""

    name: CommandName
    value: str | float | bool | None = None


@dataclass(frozen=True, slots=True)
class ScreenScheduled:
    """The slideshow's display schedule turned the screen on or off (the slideshow already did)."""

    on: bool


@dataclass(frozen=True, slots=True)
class AlbumsChanged:
    """A subfolder of the slideshow's photo folders came or went: these are the albums now."""

    albums: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AdapterFailed:
    """An adapter thread's work died unexpectedly; its supervisor restarts it."""

    adapter: str
    error: str


@dataclass(frozen=True, slots=True)
class Stop:
    """Shut down: a signal arrived."""

    reason: str


Event = (PhotoShown | PhotoScored | PlayerChanged | DatabaseChanged | MpdConnection
         | MpdSessionChanged | IndexRefreshed | Command | ScreenScheduled | AlbumsChanged
         | AdapterFailed | Stop)


@dataclass(frozen=True, slots=True)
class HouseholdNews:
    """Another frame of the household spoke on the group's topic (an empty payload: it is gone,
    its Last Will or its goodbye)."""

    device_id: str
    payload: bytes
