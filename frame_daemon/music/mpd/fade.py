"""Fade the playing track out before new music starts, and always give the user's volume back.

Why a volume ramp and not MPD's `crossfade`: MPD cross-fades only when one song runs into the
next by itself; a `playid` (how the daemon starts the new music now) cuts hard, and setting
`crossfade` would change how *every* later transition sounds, for the user's own music too. A ramp
touches nothing but the volume, for 2-3 s, and then puts it back exactly.

The loop drives it: `begin` records the user's volume, `step` (called every FADE_STEP_S while
`active`) lowers it along a smooth curve, and at the end plays the new track and sets the user's
volume again. Until that last `setvol` succeeds the user's volume is *owed* (`owed_volume`): when
MPD or the connection dies mid-fade, the loop calls `restore` as soon as MPD is back, and on
shutdown. A person who changes the volume during the fade takes it over: it is never overridden.

The debt also survives the daemon itself (SIGKILL, a power cut): before the first step it is
written to the state directory (`OwedVolumeFile`, atomic), with each volume the ramp sets, before
it sets it. At the next start the volume is restored only if MPD still shows the last one (or the
one before, had the kill come between the record and the `setvol`); any other volume was set by a
person since, and stays.
Every method may raise MpdUnavailable; the owed volume survives that. `step` raises MpdNoSuchSong
when the track to start was deleted from the queue meanwhile: the ramp is over, the volume still
owed, so the caller can start other music before it gives the volume back.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from frame_daemon.atomic_file import write_json
from frame_daemon.music.mpd.client import MpdLink

log = logging.getLogger(__name__)

FADE_STEP_S = 0.1  # volume steps of 0.1 s: smooth to the ear, ~25 commands per fade


def fade_volume(user_volume: int, elapsed_s: float, duration_s: float) -> int:
    """The volume `elapsed_s` into a fade: a quadratic curve, gentle at first, silent at the end."""
    if duration_s <= 0 or elapsed_s >= duration_s:
        return 0
    left = 1.0 - max(0.0, elapsed_s) / duration_s
    return round(user_volume * left * left)


class OwedVolumeFile:
    """The owed volume and the volumes our ramp set, kept in one small JSON file.

    Written atomically (temp file, rename), so a kill leaves the old record or the new one; the
    first record of a fade is also fsynced. A file that cannot be written is logged once and the
    fade goes on: the debt is then only kept in memory, as before."""

    FILE_NAME = "owed_volume.json"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._failed = False

    @classmethod
    def in_directory(cls, state_dir: Path) -> OwedVolumeFile:
        return cls(Path(state_dir) / cls.FILE_NAME)

    def load(self) -> tuple[int, set[int]] | None:
        """(the owed volume, the volumes MPD may show if nobody touched it since: the last two
        our ramp recorded), or None when nothing is owed."""
        try:
            if not self.path.is_file():
                return None
            raw = json.loads(self.path.read_bytes()[:4096])
            owed, ramp = int(raw["owed"]), {int(v) for v in raw["ramp"][-2:]}
        except (OSError, ValueError, TypeError, KeyError, OverflowError, RecursionError) as exc:
            # OverflowError: an infinite volume (1e999); RecursionError: nested a few thousand deep.
            log.warning("owed volume file %s unreadable (%s); ignoring it", self.path, exc)
            self.clear()
            return None
        if not 0 <= owed <= 100:
            self.clear()
            return None
        return owed, ramp

    def save(self, owed: int, ramp: list[int], durable: bool = False) -> None:
        try:
            write_json(self.path, {"owed": owed, "ramp": ramp}, durable=durable)
        except OSError as exc:
            if not self._failed:
                self._failed = True
                log.warning("cannot record the owed volume in %s (%s); a crash mid-fade would "
                            "leave the music quiet", self.path, exc.strerror)

    def clear(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)


@dataclass(slots=True)
class _Ramp:
    play_id: int  # the queue entry to start when the ramp ends
    started: float
    last_set: int  # the volume we set last: anything else means a person changed it
    volumes: list[int] = field(default_factory=list)  # every volume set, in order


class Fader:
    """Owned by the loop thread."""

    def __init__(self, link: MpdLink, duration_s: float,
                 record: OwedVolumeFile | None = None) -> None:
        self.link = link
        self.duration_s = duration_s
        self.owed_volume: int | None = None  # the user's volume, until it is set back
        self._ramp: _Ramp | None = None
        self._record = record
        # The last volumes a ramp cut short set: MPD showing one means nobody changed it since.
        self._ramp_volumes: set[int] | None = None
        recorded = record.load() if record is not None else None
        if recorded is not None:
            self.owed_volume, self._ramp_volumes = recorded
            log.info("a fade was cut short before the last stop: volume %d is owed",
                     self.owed_volume)

    @property
    def active(self) -> bool:
        return self._ramp is not None

    def begin(self, play_id: int, now: float, volume: int) -> None:
        """Fade out what plays now (at `volume`, the user's), then start `play_id`.

        Called again while fading (a newer decision), it only changes what plays at the end: the
        user's volume is the one recorded first, not the half-faded one."""
        if self._ramp is not None:
            self._ramp.play_id = play_id
            return
        self.owed_volume = volume
        self._ramp = _Ramp(play_id, now, volume, [volume])
        if self._record is not None:  # before the first step: a crash cannot lose the debt
            self._record.save(volume, [volume], durable=True)
        log.info("fading out over %.1f s from volume %d", self.duration_s, volume)

    def step(self, now: float) -> bool:
        """Advance the ramp; True when it ended and the new track was started."""
        ramp = self._ramp
        if ramp is None:
            return False
        assert self.owed_volume is not None
        status = self.link.status()
        if status.volume is not None and status.volume != ramp.last_set:
            log.info("volume changed to %d by someone else during the fade: theirs from now on",
                     status.volume)
            self._ramp = None
            self._paid()
            self.link.play_id(ramp.play_id)
            return True
        elapsed = now - ramp.started
        if elapsed < self.duration_s:
            ramp.last_set = fade_volume(self.owed_volume, elapsed, self.duration_s)
            if ramp.last_set != ramp.volumes[-1]:
                ramp.volumes.append(ramp.last_set)
                if self._record is not None:  # recorded before it is set
                    self._record.save(self.owed_volume, ramp.volumes[-2:])
            self.link.set_volume(ramp.last_set)
            return False
        self._ramp = None  # over, even if the track is gone (MpdNoSuchSong: the volume stays owed)
        if status.song_id != ramp.play_id:
            self.link.play_id(ramp.play_id)
        self.restore()
        return True

    def cancel(self) -> None:
        """Stop fading (the new track does not start) and give the user's volume back."""
        self._ramp = None
        self.restore()

    def lost(self) -> None:
        """MPD went away mid-fade: forget the ramp, keep owing the volume."""
        if self._ramp is not None:
            self._ramp_volumes = set(self._ramp.volumes[-2:])
        self._ramp = None

    def restore(self) -> None:
        """Set the user's volume back if it is still owed (after a fade, or when MPD is back).

        After a ramp was cut short (MPD lost, or the daemon stopped before it ended), only while
        MPD still shows the volume our ramp set last: any other was set by a person since."""
        if self.owed_volume is None:
            return
        if self._ramp is None and self._ramp_volumes is not None:
            volume = self.link.status().volume
            if volume is not None and volume not in self._ramp_volumes:
                log.info("volume %d was set by someone else since the fade was cut short: theirs "
                         "(not restored to %d)", volume, self.owed_volume)
                self._paid()
                return
        self.link.set_volume(self.owed_volume)
        log.info("volume restored to %d", self.owed_volume)
        self._paid()

    def _paid(self) -> None:
        """Nothing is owed any more (given back, or a person took the volume over)."""
        self.owed_volume, self._ramp_volumes = None, None
        if self._record is not None:
            self._record.clear()
