"""Plain data about tracks that crosses module boundaries: a track and where its mood came from."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from frame_daemon.mood import NO_MOOD, Mood


class MoodSource(StrEnum):
    """Where a track's valence/arousal came from, most trusted first."""

    TAG = "tag"  # an explicit mood tag (MOOD / TMOO) in the file or MPD
    ANALYSIS = "analysis"  # audio analysis of the file (tempo, key, mode, energy)
    GENRE = "genre"  # a prior from the genre tag
    NEUTRAL = "neutral"  # nothing known: centre of the plane, very low confidence


@dataclass(frozen=True, slots=True)
class MoodEstimate:
    """One source's opinion of a track's mood; `detail` says why in a few words."""

    source: MoodSource
    mood: Mood
    detail: str


@dataclass(frozen=True, slots=True)
class Track:
    """A track in the index with its combined mood (the best estimate) and why."""

    uri: str
    title: str = ""
    artist: str = ""
    album: str = ""
    genre: str = ""
    duration: float = 0.0
    mood: Mood = NO_MOOD
    source: MoodSource = MoodSource.NEUTRAL
    why: str = "no mood information"

    @property
    def label(self) -> str:
        """"Title – Artist" for people, falling back to the URI."""
        if self.title and self.artist:
            return f"{self.title} – {self.artist}"
        return self.title or self.uri
