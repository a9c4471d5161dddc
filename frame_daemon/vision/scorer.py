"""Read the mood of the photo on show: one decode serves the model, the thumbnail and the faces."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from frame_daemon.config import ModelConfig
from frame_daemon.vision.model import MoodModel, PhotoMood
from frame_daemon.vision.photo import DecodedPhoto, decode_photo

# The one decode of a photo serves the model (224 px), the 640 px thumbnail and face detection:
# a 6000x4000 JPEG still decodes at 1/8 scale (750x500).
PHOTO_SHORT_SIDE = 480


@dataclass(frozen=True, slots=True)
class ScoredPhoto:
    mood: PhotoMood
    photo: DecodedPhoto  # kept for the thumbnail
    ms: float = 0.0  # how long decoding and scoring took

    def describe(self) -> str:
        """For the log: 'pensive (v +0.10, a -0.50, conf 0.80; kitchen, café) in 120 ms'."""
        m = self.mood
        scenes = ", ".join(label for label, _ in m.scenes[:3])
        return (f"{m.word} (v {m.mood.valence:+.2f}, a {m.mood.arousal:+.2f}, conf "
                f"{m.mood.confidence:.2f}; {scenes}) in {self.ms:.0f} ms")


def score_photo(model: MoodModel, path: Path, cfg: ModelConfig) -> ScoredPhoto:
    """Decode and score one photo; PhotoError (with a one-line reason) if it cannot be read."""
    started = time.perf_counter()
    # One decode from one open file: a photo swapped meanwhile cannot slip in.
    photo = decode_photo(path, PHOTO_SHORT_SIDE, cfg.max_pixels, cfg.max_decode_mb * 2**20)
    mood = model.score_image(photo.image, str(path))
    return ScoredPhoto(mood, photo, (time.perf_counter() - started) * 1000)
