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
Every method may raise MpdUnavailable; the owed volume survives that. `step` raises MpdNoSuchSong
when the track to start was deleted from the queue meanwhile: the ramp is over, the volume still
owed, so the caller can start other music before it gives the volume back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from frame_daemon.music.mpd.client import MpdLink

log = logging.getLogger(__name__)

FADE_STEP_S = 0.1  # volume steps of 0.1 s: smooth to the ear, ~25 commands per fade


def fade_volume(user_volume: int, elapsed_s: float, duration_s: float) -> int:
    """The volume `elapsed_s` into a fade: a quadratic curve, gentle at first, silent at the end."""
    if duration_s <= 0 or elapsed_s >= duration_s:
        return 0
    left = 1.0 - max(0.0, elapsed_s) / duration_s
    return round(user_volume * left * left)


@dataclass(slots=True)
class _Ramp:
    play_id: int  # the queue entry to start when the ramp ends
    started: float
    last_set: int  # the volume we set last: anything else means a person changed it


class Fader:
    """Owned by the loop thread."""

    def __init__(self, link: MpdLink, duration_s: float) -> None:
        self.link = link
        self.duration_s = duration_s
        self.owed_volume: int | None = None  # the user's volume, until it is set back
        self._ramp: _Ramp | None = None

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
        self._ramp = _Ramp(play_id, now, volume)
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
            self._ramp, self.owed_volume = None, None
            self.link.play_id(ramp.play_id)
            return True
        elapsed = now - ramp.started
        if elapsed < self.duration_s:
            ramp.last_set = fade_volume(self.owed_volume, elapsed, self.duration_s)
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
        self._ramp = None

    def restore(self) -> None:
        """Set the user's volume back if it is still owed (after a fade, or when MPD is back)."""
        if self.owed_volume is None:
            return
        self.link.set_volume(self.owed_volume)
        log.info("volume restored to %d", self.owed_volume)
        self.owed_volume = None
