"""Audio analysis of one track: decode an excerpt, measure what carries its mood, place it on the plane.

`analyse_file(path)` ties the three steps together: `decode` (an excerpt as mono float32),
`features` (what the excerpt measures) and `mood` (the calibrated model that maps the features to
valence/arousal). Given a `MusicTagger`, it also tags the excerpt (musicnn's MSD tags: genres and
moods such as Mellow, chill, happy), and the tags move the mood through the tagger's mood head; the
excerpt is decoded once, at both rates. Every failure
to read or analyse a file is a TrackError(path, reason); nothing else escapes.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from frame_daemon.errors import TrackError
from frame_daemon.music.audio.decode import ANALYSIS_RATE, decode_excerpt, decode_excerpt_at
from frame_daemon.music.audio.features import AudioFeatures, analyse_samples
from frame_daemon.music.audio.mood import estimate_mood
from frame_daemon.music.track import MoodEstimate

if TYPE_CHECKING:
    from frame_daemon.music.audio.tagger import MusicTagger

log = logging.getLogger(__name__)

# The analysis version of the features-only model (audio/mood.py's coefficients); the tag head
# names its own (models/music-tagger-msd.json, "mood_head").
FEATURES_VERSION = "audio-1"


@dataclass(frozen=True, slots=True)
class Analysis:
    """One file's analysis: what was measured and where it puts the track on the plane."""

    path: Path
    features: AudioFeatures
    estimate: MoodEstimate
    tags: tuple[tuple[str, float], ...] = ()  # the tagger's top tags, most probable first
    version: str = FEATURES_VERSION  # the model that placed it (the index redoes older ones)

    def as_dict(self) -> dict[str, Any]:
        m = self.estimate.mood
        out = {"file": str(self.path), "valence": round(m.valence, 3), "arousal": round(m.arousal, 3),
               "confidence": round(m.confidence, 3), "mood": m.word, **self.features.as_dict(),
               "detail": self.estimate.detail}
        if self.tags:
            out["tags"] = [[tag, round(p, 3)] for tag, p in self.tags]
        return out


TOP_TAGS = 5


def analyse_file(path: str | os.PathLike[str], tagger: MusicTagger | None = None,
                 patches: int | None = None) -> Analysis:
    """Decode an excerpt of one audio file, measure it and estimate its mood; with a tagger, tag it.

    Raises TrackError(path, reason) if the file cannot be read or decoded, or is too short or
    silent to analyse.
    """
    path = Path(path)
    tags: dict[str, float] | None = None
    if tagger is None:
        samples, rate = decode_excerpt(path)
    else:
        from frame_daemon.music.audio.tagger import DEFAULT_PATCHES, SAMPLE_RATE
        samples, samples_16k = decode_excerpt_at(path, (ANALYSIS_RATE, SAMPLE_RATE))
        rate = ANALYSIS_RATE
        # Tags first, and the 16 kHz samples dropped before the features' buffers: a worker's
        # peak is the tagger's arena plus the features' spectrograms, not those samples too.
        with contextlib.suppress(ValueError):  # shorter than one 3 s patch: features only
            tags = tagger.tags(samples_16k, patches or DEFAULT_PATCHES)
        del samples_16k
    try:
        features = analyse_samples(samples, rate)
    except ValueError as e:
        raise TrackError(path, str(e)) from None
    except Exception as e:  # a bug, but it must cost one file, not the run (traceback at debug level)
        log.debug("analysis of %s failed", path, exc_info=True)
        raise TrackError(path, f"analysis failed ({type(e).__name__}: {e})") from None
    if tagger is None or tags is None:
        return Analysis(path, features, estimate_mood(features))
    from frame_daemon.music.audio.tagger import top_tags
    head = tagger.head
    version = head.version if head is not None else FEATURES_VERSION
    return Analysis(path, features, estimate_mood(features, tags, head),
                    tuple(top_tags(tags, TOP_TAGS)), version)
