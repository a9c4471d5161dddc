"""Audio analysis of one track: decode an excerpt, measure what carries its mood, place it on the plane.

`analyse_file(path)` ties the three steps together: `decode` (an excerpt as mono float32),
`features` (what the excerpt measures) and `mood` (the calibrated model that maps the features to
valence/arousal). Given a `MusicTagger`, it also names the excerpt's top tags (musicnn's MSD tags:
genres and moods such as Mellow, chill, happy); the tags do not move the mood yet. Every failure
to read or analyse a file is a TrackError(path, reason); nothing else escapes.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from frame_daemon.errors import TrackError
from frame_daemon.music.audio.decode import decode_excerpt
from frame_daemon.music.audio.features import AudioFeatures, analyse_samples
from frame_daemon.music.audio.mood import estimate_mood
from frame_daemon.music.track import MoodEstimate

if TYPE_CHECKING:
    from frame_daemon.music.audio.tagger import MusicTagger

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Analysis:
    """One file's analysis: what was measured and where it puts the track on the plane."""

    path: Path
    features: AudioFeatures
    estimate: MoodEstimate
    tags: tuple[tuple[str, float], ...] = ()  # the tagger's top tags, most probable first

    def as_dict(self) -> dict[str, Any]:
        m = self.estimate.mood
        out = {"file": str(self.path), "valence": round(m.valence, 3), "arousal": round(m.arousal, 3),
               "confidence": round(m.confidence, 3), "mood": m.word, **self.features.as_dict(),
               "detail": self.estimate.detail}
        if self.tags:
            out["tags"] = [[tag, round(p, 3)] for tag, p in self.tags]
        return out


TOP_TAGS = 5


def analyse_file(path: str | os.PathLike[str], tagger: MusicTagger | None = None) -> Analysis:
    """Decode an excerpt of one audio file, measure it and estimate its mood; with a tagger, tag it.

    Raises TrackError(path, reason) if the file cannot be read or decoded, or is too short or
    silent to analyse.
    """
    path = Path(path)
    samples, rate = decode_excerpt(path)
    try:
        features = analyse_samples(samples, rate)
    except ValueError as e:
        raise TrackError(path, str(e)) from None
    except Exception as e:  # a bug, but it must cost one file, not the run (traceback at debug level)
        log.debug("analysis of %s failed", path, exc_info=True)
        raise TrackError(path, f"analysis failed ({type(e).__name__}: {e})") from None
    tags = _top_tags(path, tagger) if tagger is not None else ()
    return Analysis(path, features, estimate_mood(features), tags)


def _top_tags(path: Path, tagger: MusicTagger) -> tuple[tuple[str, float], ...]:
    # The same excerpt again, at the tagger's 16 kHz: the features keep their 11.025 kHz decode,
    # which the mood model was calibrated on.
    from frame_daemon.music.audio.tagger import SAMPLE_RATE, top_tags

    samples, _ = decode_excerpt(path, rate=SAMPLE_RATE)
    try:
        return tuple(top_tags(tagger.tags(samples), TOP_TAGS))
    except ValueError:  # shorter than one 3 s patch: the features could still be measured
        return ()
