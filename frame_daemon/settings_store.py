"""Settings changed from Home Assistant, kept in the state directory so they survive a restart.

The config file gives the defaults; a value set at runtime wins until it is reset. Every value is
checked by the config's own declaration (the key's check and the cross-key rules), on the way in
and again when read back at start, so a hand-edited or stale file can never stop the daemon: a
bad entry is logged and dropped. Writes are atomic (temp file, fsync, rename), so a power cut
leaves the old file or the new one. Owned by the loop thread.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from frame_daemon.commands import CommandName, CommandRow, press, setting
from frame_daemon.config import FollowConfig, with_setting
from frame_daemon.follow import FollowMode, FollowParams
from frame_daemon.loop_state import LoopState

log = logging.getLogger(__name__)

# The follow settings Home Assistant can change (and so the ones worth remembering).
PERSISTED = ("mode", "threshold", "diversity", "include_genres", "exclude_genres")
FILE_NAME = "settings.json"


class SettingRejected(ValueError):
    """A value the config's rules refuse; the message says why, for `last error`."""


class SettingsStore:
    """The follow settings in effect: the config's, overlaid with the values set at runtime."""

    def __init__(self, path: Path, defaults: FollowConfig) -> None:
        self.path = path
        self.defaults = defaults
        self._overrides: dict[str, Any] = {}
        self.effective = defaults
        self.save_error = ""  # why the last save failed ('' when saved)

    @classmethod
    def in_directory(cls, state_dir: Path, defaults: FollowConfig) -> SettingsStore:
        return cls(Path(state_dir) / FILE_NAME, defaults)

    def load(self) -> FollowConfig:
        """Read the saved values; anything unreadable or invalid is logged and left out."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raw = {}
        except (OSError, ValueError) as exc:
            log.warning("settings file %s unreadable (%s); using the config's settings",
                        self.path, exc)
            raw = {}
        if not isinstance(raw, dict):
            log.warning("settings file %s is not a JSON object; ignoring it", self.path)
            raw = {}
        effective = self.defaults
        for key, value in raw.items():
            if key not in PERSISTED:
                log.warning("settings file %s: unknown setting %r ignored", self.path, key)
                continue
            changed, problem = with_setting(effective, key, value)
            if problem:
                log.warning("settings file %s: follow.%s = %r ignored: %s", self.path, key, value,
                            problem)
                continue
            effective = changed
            self._overrides[key] = getattr(changed, key)
        self.effective = effective
        if self._overrides:
            log.info("settings set from Home Assistant restored: %s", self.describe())
        return effective

    def set(self, key: str, value: Any) -> FollowConfig:
        """Change one setting (checked like the config file) and save it; SettingRejected if not."""
        if key not in PERSISTED:
            raise SettingRejected(f"{key}: not a setting that can be changed at runtime")
        changed, problem = with_setting(self.effective, key, value)
        if problem:
            raise SettingRejected(f"follow.{key}: {problem}")
        self.effective = changed
        self._overrides[key] = getattr(changed, key)
        self._save()
        return changed

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
        self._save()
        return self.effective

    def describe(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._overrides.items()) or "none"

    def _save(self) -> None:
        data = {k: list(v) if isinstance(v, tuple) else v for k, v in self._overrides.items()}
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            self.save_error = (f"settings not saved to {self.path} ({exc.strerror}); they hold "
                               "until the daemon restarts")
            log.error("%s", self.save_error)
            return
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
    and handed to `use` (the follow policy's parameters for the settings in effect)."""

    def __init__(self, store: SettingsStore, state: LoopState, use: Callable[[FollowParams], None],
                 on_reset: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.state = state
        self._use = use
        self._on_reset = on_reset  # other settings to reset with these (the slideshow's)

    def rows(self) -> list[CommandRow]:
        """The command table's rows: one per setting, and the reset button."""
        def row(name: CommandName) -> CommandRow:
            return CommandRow(name, lambda value: self.change(name.value, value),
                              setting(FollowConfig, name.value))

        return [*(row(CommandName(key)) for key in PERSISTED),
                CommandRow(CommandName.RESET_SETTINGS, lambda _: self.reset(), press)]

    def use(self, follow: FollowConfig) -> None:
        self._use(use_settings(self.state, follow))

    def load(self) -> None:
        """What Home Assistant set before the restart."""
        self.use(self.store.load())

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
