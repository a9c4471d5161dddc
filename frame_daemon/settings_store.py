"""Settings changed from Home Assistant, kept in the state directory so they survive a restart.

Two kinds, one file: the follow settings (mode, threshold, diversity, genre filters) and the
slideshow's (interval, order, album, pause, screen, photos follow music). The config file gives
the defaults; a value set at runtime wins until it is reset. Every value is checked by the
config's own declaration (the key's check and the cross-key rules), on the way in and again when
read back at start, so a hand-edited or stale file can never stop the daemon: a bad entry is
logged and dropped; a file that is not a settings file at all is moved aside. Writes are atomic
(temp file, fsync, rename), so a power cut leaves the old file or the new one, and spaced out: a
burst of changes is written once it settles, at most once a second (the loop's tick flushes, and
the stop writes what is left). Owned by the loop thread.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from frame_daemon.atomic_file import write_json
from frame_daemon.commands import CommandRow, press, setting
from frame_daemon.config import FollowConfig, SourceConfig, with_setting
from frame_daemon.events import CommandName
from frame_daemon.file_kind import NotRegularFile, open_regular
from frame_daemon.follow import FollowMode, FollowParams
from frame_daemon.homeassistant import MAX_STATE_LEN
from frame_daemon.loop_state import LoopState
from frame_daemon.sources.photo_library import ALL_ALBUMS

log = logging.getLogger(__name__)

# The follow settings Home Assistant can change (and so the ones worth remembering).
PERSISTED = ("mode", "threshold", "diversity", "include_genres", "exclude_genres")
# The slideshow's settings that are config keys ([source]), checked by their declarations...
SLIDESHOW_CONFIG_KEYS = ("interval_s", "order", "photos_follow_music")
FILE_NAME = "settings.json"
# A settings file is a few hundred bytes; this leaves room for long genre lists.
MAX_FILE_BYTES = 64 * 1024
# A flood of commands (a slider dragged, a script gone wrong) must not become a flood of fsynced
# writes: the file is written at most this often, the last value always.
MIN_WRITE_INTERVAL_S = 1.0
# A write that failed (a full or read-only state directory) is tried again this often, and at
# stop: what was set meanwhile is saved once the directory takes it, not lost at the next start.
RETRY_S = 30.0
SECTIONS = ("follow", "slideshow")


def _short(text: str) -> str:
    """For a log line: a hand-edited file may hold a value of 60 KiB."""
    return text if len(text) <= 100 else f"{text[:100]}…"


def _on_off(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"expected true or false, got {value!r}"


def _album_name(value: Any) -> str | None:
    # Whether the folder is there is for the slideshow to say, against the folders as they are.
    if isinstance(value, str) and value.strip() and len(value) <= MAX_STATE_LEN:
        return None
    return "expected the name of one of the photo folders' subfolders"


# ...and the slideshow's state that the config does not declare, with its check.
SLIDESHOW_STATE_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "album": _album_name, "paused": _on_off, "screen": _on_off}


class SettingRejected(ValueError):
    """A value the config's rules refuse; the message says why, for `last error`."""


@dataclass(frozen=True)
class SlideshowSettings:
    """The slideshow's settings in effect. The config's [source] gives the interval, the order
    and photos-follow-music; the show starts on every photo, playing, with the screen on."""

    interval_s: float
    order: str
    photos_follow_music: bool
    album: str = ALL_ALBUMS
    paused: bool = False
    screen: bool = True

    @classmethod
    def from_config(cls, source: SourceConfig) -> SlideshowSettings:
        return cls(**{key: getattr(source, key) for key in SLIDESHOW_CONFIG_KEYS})


class SettingsStore:
    """The settings in effect: the config's, overlaid with the values set at runtime."""

    def __init__(self, path: Path, defaults: FollowConfig, *, source: SourceConfig | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """source: the config's [source], the slideshow's defaults. clock: monotonic seconds, to
        space the writes out (the loop's clock)."""
        self.path = path
        self.defaults = defaults
        self._overrides: dict[str, Any] = {}
        self.effective = defaults
        self.source = source or SourceConfig()
        self._slideshow_overrides: dict[str, Any] = {}
        self.slideshow = SlideshowSettings.from_config(self.source)
        self._slideshow_in_file = False  # the file had the slideshow's settings (see migrate)
        self.save_error = ""  # why the last save failed ('' when saved)
        self._clock = clock
        self._pending = False  # a change not written yet
        self._new_change = False  # a change since the last write was tried
        self._written_at: float | None = None  # when the file was last written (or tried)
        self._unreported = ""  # a save error `flush` has not handed to the loop yet

    @classmethod
    def in_directory(cls, state_dir: Path, defaults: FollowConfig, *,
                     source: SourceConfig | None = None,
                     clock: Callable[[], float] = time.monotonic) -> SettingsStore:
        return cls(Path(state_dir) / FILE_NAME, defaults, source=source, clock=clock)

    def load(self) -> FollowConfig:
        """Read the saved values. A damaged file is moved aside; an invalid value is left out."""
        raw = self._read()
        effective = self.defaults
        for key, value in raw.get("follow", {}).items():
            if key not in PERSISTED:
                log.warning("settings file %s: unknown setting %s ignored", self.path,
                            _short(repr(key)))
                continue
            changed, problem = with_setting(effective, key, value)
            if problem:
                log.warning("settings file %s: follow.%s = %s ignored: %s", self.path, key,
                            _short(repr(value)), _short(problem))
                continue
            effective = changed
            self._overrides[key] = getattr(changed, key)
        self.effective = effective
        self._slideshow_in_file = "slideshow" in raw
        self._adopt_slideshow(raw.get("slideshow", {}), f"settings file {self.path}")
        if self._overrides or self._slideshow_overrides:
            log.info("settings set from Home Assistant restored: %s", self.describe())
        return effective

    def _adopt_slideshow(self, values: Mapping[str, Any], origin: str) -> None:
        for key, value in values.items():
            changed, problem = self._check_slideshow(key, value)
            if problem:
                log.warning("%s: slideshow %s = %s ignored: %s", origin, _short(key),
                            _short(repr(value)), _short(problem))
                continue
            self.slideshow = changed
            self._slideshow_overrides[key] = getattr(changed, key)

    def _read(self) -> dict[str, Any]:
        """The file's sections ({"follow": {...}, "slideshow": {...}}); {} when there is none,
        or when it is not a settings file (then it is moved aside with one log line, so it cannot
        stop, hang or crash-loop the start)."""
        try:
            fd = open_regular(self.path)  # a FIFO put in its place must not block the start
        except FileNotFoundError:
            return {}
        except NotRegularFile:
            return self._move_aside("not a regular file")
        except OSError as exc:  # unreadable (permissions, I/O): not ours to move
            log.warning("settings file %s unreadable (%s); using the config's settings",
                        self.path, exc.strerror)
            return {}
        try:
            with os.fdopen(fd, "rb") as f:
                info = os.fstat(f.fileno())
                if info.st_size > MAX_FILE_BYTES:
                    return self._move_aside(f"{info.st_size} bytes, more than a settings file "
                                            f"holds ({MAX_FILE_BYTES})")
                data = f.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            log.warning("settings file %s unreadable (%s); using the config's settings",
                        self.path, exc.strerror)
            return {}
        if len(data) > MAX_FILE_BYTES:  # grew since the fstat
            return self._move_aside(f"more than {MAX_FILE_BYTES} bytes")
        try:
            # RecursionError: deep nesting ("[[[[..."), which json parses by recursion.
            raw = json.loads(data.decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            return self._move_aside(f"not JSON: {type(exc).__name__}: {str(exc)[:80]}")
        if not isinstance(raw, dict):
            return self._move_aside("not a JSON object")
        if not any(name in raw for name in SECTIONS):
            return {"follow": raw}  # written before the slideshow's settings joined them
        for name, section in raw.items():
            if name not in SECTIONS:
                log.warning("settings file %s: unknown section %s ignored", self.path,
                            _short(repr(name)))
            elif not isinstance(section, dict):
                return self._move_aside(f"{name} is not a JSON object")
        return {name: raw[name] for name in SECTIONS if name in raw}

    def _move_aside(self, why: str) -> dict[str, Any]:
        """Rename a file that is not a settings file out of the way (kept for a post-mortem)."""
        aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            os.replace(self.path, aside)
        except OSError as exc:
            log.warning("settings file %s is damaged (%s) and cannot be moved aside (%s); using "
                        "the config's settings", self.path, why, exc.strerror)
        else:
            log.warning("settings file %s is damaged (%s); moved it to %s and using the config's "
                        "settings", self.path, why, aside.name)
        return {}

    def set(self, key: str, value: Any) -> FollowConfig:
        """Change one setting (checked like the config file) and save it; SettingRejected if not."""
        if key not in PERSISTED:
            raise SettingRejected(f"{key}: not a setting that can be changed at runtime")
        changed, problem = with_setting(self.effective, key, value)
        if problem:
            raise SettingRejected(f"follow.{key}: {problem}")
        self.effective = changed
        self._overrides[key] = getattr(changed, key)
        self._changed()
        return changed

    def set_slideshow(self, key: str, value: Any) -> SlideshowSettings:
        """Change one of the slideshow's settings (checked like the config file) and save it;
        SettingRejected if not."""
        changed, problem = self._check_slideshow(key, value)
        if problem:
            raise SettingRejected(problem)
        self.slideshow = changed
        self._slideshow_overrides[key] = getattr(changed, key)
        self._changed()
        return changed

    def _check_slideshow(self, key: str, value: Any) -> tuple[SlideshowSettings, str | None]:
        """The slideshow's settings with `key` changed, or (as they are, the problem)."""
        now = self.slideshow
        if key in SLIDESHOW_CONFIG_KEYS:
            source = replace(self.source, **{k: getattr(now, k) for k in SLIDESHOW_CONFIG_KEYS})
            changed, problem = with_setting(source, key, value)
            if problem:
                return now, f"source.{key}: {problem}"
            value = getattr(changed, key)
        elif key in SLIDESHOW_STATE_CHECKS:
            problem = SLIDESHOW_STATE_CHECKS[key](value)
            if problem:
                return now, f"{key}: {problem}"
        else:
            return now, f"{key}: not a slideshow setting that can be changed at runtime"
        return replace(now, **{key: value}), None

    def migrate_slideshow(self, old: Mapping[str, Any], origin: str) -> bool:
        """The slideshow's settings as an older version kept them (in the photo cache), adopted
        once and checked like the file's; a file that has the slideshow's settings already wins.
        True once they are safely in the file, so the caller can forget its copy."""
        if self._slideshow_in_file:
            log.info("slideshow settings left in %s are older than %s: dropped", origin,
                     self.path)
            return True
        self._adopt_slideshow(old, origin)
        self._slideshow_in_file = True
        self._pending = True
        self.save_now()
        log.info("slideshow settings moved from %s to %s: %s", origin, self.path,
                 self.describe())
        return not self.save_error

    def change(self, key: str, value: Any) -> tuple[FollowConfig, str]:
        """A setting from Home Assistant: (the settings in effect now, why it was refused or not
        saved, '' when it was set and saved)."""
        try:
            follow = self.set(key, value)
        except SettingRejected as exc:
            log.warning("command %s refused: %s", key, exc)
            return self.effective, str(exc)
        return follow, self.save_error

    def reset(self) -> FollowConfig:
        """Forget every runtime value: back to the config's settings."""
        self._overrides.clear()
        self.effective = self.defaults
        self._slideshow_overrides.clear()
        self.slideshow = SlideshowSettings.from_config(self.source)
        self._changed()
        return self.effective

    def reset_slideshow(self) -> SlideshowSettings:
        """Back to the config's slideshow settings (nothing to write if they are already)."""
        if self._slideshow_overrides:
            self._slideshow_overrides.clear()
            self.slideshow = SlideshowSettings.from_config(self.source)
            self._changed()
        return self.slideshow

    def describe(self) -> str:
        values = [*self._overrides.items(),
                  *((f"slideshow.{k}", v) for k, v in self._slideshow_overrides.items())]
        return ", ".join(f"{k}={v!r}" for k, v in values) or "none"

    # ------------------------------------------------------------------ writing, spaced out
    def _changed(self) -> None:
        """The value in use changed at once; the file follows, at most once a second."""
        self._pending = self._new_change = True
        self._save_if_due()

    def _save_if_due(self) -> None:
        now = self._clock()
        # After a failed write, only a new change is tried again as soon as any write (a person
        # who just freed the disk changes a setting to see it saved); the rest waits RETRY_S.
        interval = RETRY_S if self.save_error and not self._new_change else MIN_WRITE_INTERVAL_S
        if self._pending and (self._written_at is None or now - self._written_at >= interval):
            self._save()

    def flush(self) -> str:
        """Write the changes held back (a burst of commands) once a second has passed since the
        last write; the loop calls this every tick. Returns a save error not yet handed over
        ('' if none), for `last error`."""
        self._save_if_due()
        error, self._unreported = self._unreported, ""
        return error

    def save_now(self) -> None:
        """Write what is held back, now (at stop, so nothing set is lost)."""
        if self._pending:
            self._save()

    def _save(self) -> None:
        # A failed write stays pending and is tried again every RETRY_S (and at stop); its error
        # is logged and handed to the loop once, not at every try.
        self._written_at, self._new_change = self._clock(), False
        data = {name: {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
                for name, values in (("follow", self._overrides),
                                     ("slideshow", self._slideshow_overrides))}
        try:
            write_json(self.path, data, indent=1, sort_keys=True)
        except OSError as exc:
            error = (f"settings not saved to {self.path} ({exc.strerror}); they hold, and are "
                     f"saved once the folder takes them (tried every {RETRY_S:.0f} s and at stop)")
            if error != self.save_error:
                log.error("%s", error)
                self.save_error = self._unreported = error
            return
        self._pending = False
        if self.save_error:
            log.info("settings saved to %s after all: %s", self.path, self.describe())
        self.save_error = ""


def follow_params(follow: FollowConfig) -> FollowParams:
    """The follow policy's parameters, from the settings in effect."""
    return FollowParams(smoothing=follow.smoothing, threshold=follow.threshold,
                        dwell_s=follow.dwell_s, jump=follow.jump,
                        min_interval_s=follow.min_interval_s)


def use_settings(state: LoopState, follow: FollowConfig) -> FollowParams:
    """Put the settings in effect into what the loop knows (and so tells Home Assistant);
    returns the follow policy's parameters for them."""
    state.mode = FollowMode(follow.mode)
    state.diversity = follow.diversity
    state.include_genres, state.exclude_genres = follow.include_genres, follow.exclude_genres
    state.threshold = follow.threshold
    return follow_params(follow)


class SettingCommands:
    """Home Assistant's setting commands, the settings half of the loop's handlers: each value
    is checked by the config's rules and saved by the store, then put into what the loop knows
    and into `params` (the follow policy's parameters for the settings in effect)."""

    def __init__(self, store: SettingsStore, state: LoopState,
                 on_reset: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.state = state
        self.params: FollowParams = use_settings(state, store.effective)
        self._on_reset = on_reset  # other settings to reset with these (the slideshow's)

    def rows(self) -> list[CommandRow]:
        """The command table's rows: one per setting, and the reset button."""
        def row(name: CommandName) -> CommandRow:
            return CommandRow(name, lambda value: self.change(name.value, value),
                              setting(FollowConfig, name.value))

        return [*(row(CommandName(key)) for key in PERSISTED),
                CommandRow(CommandName.RESET_SETTINGS, lambda _: self.reset(), press)]

    def use(self, follow: FollowConfig) -> None:
        self.params = use_settings(self.state, follow)

    def load(self) -> None:
        """What Home Assistant set before the restart."""
        self.use(self.store.load())

    def flush(self) -> bool:
        """Write a burst of changes once it has settled (the loop's tick); True when the write
        failed, with the reason in `last_error` (to be published)."""
        if error := self.store.flush():
            self.state.last_error = error
        return bool(error)

    def change(self, key: str, value: object) -> None:
        """A setting from Home Assistant: checked by the config's rules, saved, then used."""
        follow, problem = self.store.change(key, value)
        self.use(follow)
        if problem:
            self.state.last_error = problem

    def reset(self) -> None:
        self.use(self.store.reset())
        self._on_reset()
        log.info("settings reset to the config's")
