"""The display schedule: the hours the frame's screen is on ("07:00" to "23:00", or overnight).

Pure: the slideshow asks `is_on(now)` and acts at the boundaries only, so the screen switch in
Home Assistant can still override the schedule until its next change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

from frame_daemon.config import parse_hhmm


@dataclass(frozen=True, slots=True)
class DisplaySchedule:
    on_at: time
    off_at: time

    @classmethod
    def from_config(cls, on_at: str, off_at: str) -> DisplaySchedule | None:
        """None when either time is empty: the screen is always on."""
        if not on_at or not off_at:
            return None
        return cls(parse_hhmm(on_at), parse_hhmm(off_at))

    def is_on(self, now: time) -> bool:
        if self.on_at == self.off_at:
            return True
        if self.on_at < self.off_at:
            return self.on_at <= now < self.off_at
        return now >= self.on_at or now < self.off_at  # overnight: 18:00 to 02:00
