"""Moods as points of the valence-arousal plane, and mood words as named regions of it.

Everything the daemon compares (a photo, a track, an MPD `Mood` tag, a genre) is placed on the same
plane: valence (unpleasant -1 .. pleasant +1) by arousal (calm -1 .. energetic +1), after Russell's
circumplex. A mood word's region is the set of points nearer its centroid than any other word's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Each word's centroid is the mean (valence, arousal) of its synonyms in the NRC-VAD lexicon v1
# (S. Mohammad, "Obtaining Reliable Human Ratings of Valence, Arousal, and Dominance for 20,000
# English Words", ACL 2018), rescaled to [-1, 1] with 2x - 1. `scripts/build_mood_table.py`
# prints MOOD_WORDS from MOOD_SYNONYMS; only this small derived table ships. The centre word,
# NEUTRAL_WORD, sits at the origin.
MOOD_SYNONYMS: dict[str, tuple[str, ...]] = {
    "joyful": ("joyful", "happy", "cheerful", "joy", "glad"),
    "excited": ("excited", "energetic", "exhilarated", "thrilled", "ecstatic"),
    "lively": ("lively", "active", "curious", "bustling", "playful"),
    "tense": ("anxious", "nervous", "stressed", "afraid", "tension"),
    "angry": ("angry", "aggressive", "furious", "rage", "hostile"),
    "uneasy": ("uneasy", "unsettled", "uncertain", "awkward"),
    "gloomy": ("gloomy", "dismal", "bleak", "dreary", "grim"),
    "melancholic": ("melancholic", "sad", "sorrowful", "wistful", "lonely"),
    "weary": ("weary", "tired", "bored", "sleepy", "dull"),
    "pensive": ("pensive", "thoughtful", "reflective", "sentimental", "wistful"),
    "calm": ("calm", "relaxed", "peaceful", "quiet"),
    "serene": ("serene", "tranquil", "content", "dreamy", "gentle"),
    "tender": ("tender", "romantic", "loving", "affectionate", "warm"),
}
# The centre of the plane is a word of its own, not a lexicon centroid: a photo (or track) with no
# clear mood either way is "neutral", not "nostalgic".
NEUTRAL_WORD = "neutral"

MOOD_WORDS: dict[str, tuple[float, float]] = {
    "joyful": (0.96, 0.51),
    "excited": (0.77, 0.74),
    "lively": (0.48, 0.47),
    "tense": (-0.60, 0.61),
    "angry": (-0.77, 0.80),
    "uneasy": (-0.51, 0.20),
    "gloomy": (-0.57, -0.10),
    "melancholic": (-0.59, -0.30),
    "weary": (-0.49, -0.60),
    "pensive": (0.11, -0.35),
    "calm": (0.70, -0.80),
    "serene": (0.67, -0.51),
    "tender": (0.69, -0.04),
    NEUTRAL_WORD: (0.0, 0.0),
}


def _clip(x: float) -> float:
    return max(-1.0, min(1.0, x))


@dataclass(frozen=True, slots=True)
class Mood:
    """A point on the valence-arousal plane with how sure we are of it (0..1)."""

    valence: float
    arousal: float
    confidence: float = 1.0

    def __post_init__(self) -> None:
        for name in ("valence", "arousal", "confidence"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or math.isnan(value):
                raise ValueError(f"Mood.{name} must be a number, got {value!r}")
        if not (-1.0 <= self.valence <= 1.0 and -1.0 <= self.arousal <= 1.0):
            raise ValueError(f"Mood valence/arousal must lie in [-1, 1], got "
                             f"({self.valence}, {self.arousal})")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"Mood.confidence must lie in [0, 1], got {self.confidence}")

    @classmethod
    def clipped(cls, valence: float, arousal: float, confidence: float = 1.0) -> Mood:
        """A Mood from values that may stray slightly outside the plane (model outputs)."""
        return cls(_clip(valence), _clip(arousal), max(0.0, min(1.0, confidence)))

    @property
    def word(self) -> str:
        return nearest_word(self.valence, self.arousal)

    def distance(self, other: Mood) -> float:
        return distance(self.valence, self.arousal, other.valence, other.arousal)


NO_MOOD = Mood(0.0, 0.0, 0.0)  # the centre, known to nobody: for "nothing known yet"


def distance(v1: float, a1: float, v2: float, a2: float) -> float:
    """Euclidean distance on the plane (0 .. 2*sqrt(2))."""
    return math.hypot(v1 - v2, a1 - a2)


def nearest_word(valence: float, arousal: float) -> str:
    """The mood word whose region holds this point."""
    return min(MOOD_WORDS, key=lambda w: distance(valence, arousal, *MOOD_WORDS[w]))


def mood_of_word(word: str, confidence: float = 1.0) -> Mood | None:
    """The centroid of a mood word, or None if the word is not one of ours."""
    point = MOOD_WORDS.get(word.strip().lower())
    return Mood(point[0], point[1], confidence) if point else None
