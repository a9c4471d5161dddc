"""The display schedule: the hours the frame's screen is on ("07:00" to "23:00", or overnight).

Pure: the slideshow asks `is_on(now)` and acts at the boundaries only, so the screen switch in
Home Assistant can still override the schedule until its next change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time


def parse_hhmm(text: str) -> time:
    """'07:30' -> 07:30; ValueError with the reason otherwise."""
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"expected a time of day as HH:MM, got {text!r}")
    return time(int(match[1]), int(match[2]))


def hhmm_check(text: str) -> str | None:
    """For the config: '' (no schedule) or a time of day."""
    if text == "":
        return None
    try:
        parse_hhmm(text)
    except ValueError as exc:
        return str(exc)
    return None


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
