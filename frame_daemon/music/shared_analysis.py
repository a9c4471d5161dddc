"""A track's audio analysis as frames share it through MPD: one compact JSON sticker value (pure).

The machine that can read the music files analyses them and writes the result to MPD's sticker
database; every frame on that MPD reads it back and uses it as its own analysis. The value names
the analysis version (so a newer model can tell an old result) and MPD's Last-Modified of the song
when it was analysed (so a result for an older version of the file is known to be stale).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from frame_daemon.mood import Mood
from frame_daemon.music.track import MoodEstimate, MoodSource

# Every sticker frame-daemon reads or writes is named with this prefix; a user's own stickers
# (rating, playcount, ...) are never read, written or deleted.
NAMESPACE = "frame-daemon."
STICKER = NAMESPACE + "mood"

# The audio model's version. Raise it whenever the features or the calibration change
# (scripts/calibrate_audio_model.py --write): tests/test_stickers.py pins MODEL_FINGERPRINT, a
# hash of the shipped coefficients, and fails until both are updated together.
ANALYSIS_VERSION = "audio-4"  # the tag head in models/music-tagger-msd.json ("mood_head")
MODEL_FINGERPRINT = "44bbf872"

# A shared result from another model version, or for an older version of the file, is used (it is
# still better than a genre guess) but trusted less, until a machine that reads the files redoes it.
STALE_FACTOR = 0.6
ORIGIN = "analysis (shared by MPD)"
MAX_TEXT = 300  # characters of an explanation or a mood tag kept in the sticker


@dataclass(frozen=True, slots=True)
class SharedAnalysis:
    """One track as its sticker holds it: the audio analysis (None where it failed on the machine
    that read the file) and the file's own mood and BPM tags, which MPD 0.23 does not pass on."""

    version: str  # ANALYSIS_VERSION of the model that made it
    modified: str  # MPD's Last-Modified of the song when it was analysed
    mood: Mood | None = None
    detail: str = ""  # what explains it: "analysis: 128 BPM, A minor, bright"
    tag_mood: str = ""
    tag_bpm: float | None = None
    tags: str = ""  # the music tagger's top tags: "mellow, acoustic, chill"

    @classmethod
    def of(cls, estimate: MoodEstimate | None, version: str, modified: str, tag_mood: str = "",
           tag_bpm: float | None = None) -> SharedAnalysis:
        return cls(version, modified, estimate.mood if estimate else None,
                   estimate.detail if estimate else "", tag_mood, tag_bpm)

    def encode(self) -> str:
        # Floats as Python writes them (shortest exact form): a frame gets the very same numbers.
        # One line, no spaces: MPD's protocol is line based, and a big library means many values.
        # Texts are capped: MPD refuses a command line over 4 KiB (and drops the connection).
        data: dict[str, object] = {"v": self.version, "m": self.modified}
        if self.mood is not None:
            data |= {"va": self.mood.valence, "ar": self.mood.arousal, "c": self.mood.confidence,
                     "d": self.detail[:MAX_TEXT]}
        if self.tag_mood:
            data["t"] = self.tag_mood[:MAX_TEXT]
        if self.tag_bpm is not None:
            data["b"] = self.tag_bpm
        if self.tags and self.mood is not None:
            data["g"] = self.tags[:MAX_TEXT]
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def decode(cls, text: str) -> SharedAnalysis | None:
        """The analysis in a sticker value, or None for anything else (never raises)."""
        try:
            data = json.loads(text)
            mood = None
            if "va" in data:
                numbers = (float(data["va"]), float(data["ar"]), float(data["c"]))
                if not all(math.isfinite(x) for x in numbers):
                    return None
                mood = Mood.clipped(*numbers)
            bpm = float(data["b"]) if data.get("b") is not None else None
            shared = cls(str(data["v"]), str(data.get("m", "")), mood, str(data.get("d", "")),
                         str(data.get("t", "")), bpm if bpm is None or math.isfinite(bpm) else None,
                         str(data.get("g", "")))
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError, OverflowError):
            # RecursionError: any MPD client may write our sticker, and JSON nested a few thousand
            # deep (it fits MPD's 4 KiB line) outgrows the parser's recursion limit. OverflowError:
            # a JSON integer of 310 digits is valid, and too big for a float.
            return None
        return shared if shared.mood is not None or shared.tag_mood or shared.tag_bpm else None

    def current(self, modified: str) -> bool:
        """Made by this model, for the file MPD has now."""
        return self.version == ANALYSIS_VERSION and self.modified == modified

    def estimate(self, modified: str) -> MoodEstimate | None:
        """The analysis estimate for a track whose MPD Last-Modified is `modified` (None if the
        analysis failed); its detail names the shared origin, and a stale result says so and
        counts for less."""
        if self.mood is None:
            return None
        _, _, explained = self.detail.partition("analysis: ")
        if self.current(modified):
            origin, factor = ORIGIN, 1.0
        elif self.version != ANALYSIS_VERSION:
            origin, factor = f"{ORIGIN[:-1]}, model {self.version})", STALE_FACTOR
        else:
            origin, factor = f"{ORIGIN[:-1]}, of an older file)", STALE_FACTOR
        detail = f"{origin}: {explained}" if explained else origin
        m = self.mood
        return MoodEstimate(MoodSource.ANALYSIS, Mood.clipped(m.valence, m.arousal, m.confidence * factor),
                            detail)
