"""Place a photo's mood in this library: the absolute point blended with its rank among photos,
mapped onto the same rank among this library's tracks (pure).

Why. Photo moods and track moods come from different estimators on different material, and a
family's library covers only part of the plane: all rock, or mostly quiet classical. Matching on
absolute position alone then gives every photo the same handful of tracks. Per-axis quantile
alignment fixes that: a photo calmer than 80% of photos gets a track calmer than 80% of *this*
library, even if the library's calmest track is a rock ballad.

How, per axis:

    rank     = F_photos(photo)            # where the photo lies among photos (a reference distribution)
    relative = Q_library(rank)            # the library's track value at that rank
    target   = (1 - w) * photo + w * relative

with w = `library_fit` (0: absolute only, 1: rank only). The blend keeps absolute meaning: a
library of only happy tracks should still give a sad photo its least happy track, not a sad one.

The photo reference is the distribution of photo moods the ranks are taken in. A model's metadata
may carry its own (`photo_reference`: {"valence": [...], "arousal": [...]}, evenly spaced quantiles of
its outputs on ordinary photos); without one, PHOTO_REFERENCE below is used: the human ratings of
the 300 OASIS development photos (Kurdi et al. 2017; people, animals, objects, scenery), rescaled
from 1..7 to the plane with (r - 4) / 3, at the 0, 10, ..., 100th percentiles. A model calibrated to
human ratings reads photos on about that scale.

The reverse direction (photos follow music) runs the same alignment the other way round:
`photo_target` takes the playing track's rank among this library's tracks and maps it onto the
same rank among the frame's own photos (their cached moods, `PhotoReference.of`), blended with
the track's absolute point by the same `library_fit`. A calm track in a library of calm music
then asks for one of the calmer photos *of this collection*, not for the absolute calm spot that
mostly neutral photos never reach. `photo_distances` then measures each photo's distance to that
target in units of the collection's own spread per axis, so photos that differ little in arousal
but much in valence are still told apart by arousal.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from frame_daemon.mood import Mood

# (valence, arousal) quantiles of photo moods as people rate them: see the module docstring.
PHOTO_REFERENCE_VALENCE = (-0.92, -0.45, -0.28, -0.06, 0.07, 0.21, 0.32, 0.43, 0.51, 0.62, 0.80)
PHOTO_REFERENCE_AROUSAL = (-0.73, -0.55, -0.34, -0.21, -0.14, -0.08, -0.01, 0.04, 0.11, 0.23, 0.45)
# Tracks whose mood is a guess below this confidence do not shape the library's distribution.
MIN_TRACK_CONFIDENCE = 0.2
# With fewer tracks than this the library's quantiles mean little: match on absolute position.
MIN_TRACKS = 4
# The same for the photos' own spread in the reverse direction.
MIN_PHOTOS = 3
# How finely a photo collection's spread is kept (evenly spaced quantiles, 0 .. 100%).
PHOTO_QUANTILES = 21
# A photo axis spread less than this (one standard deviation) is not stretched further.
MIN_PHOTO_SPREAD = 0.05


@dataclass(frozen=True, slots=True)
class PhotoReference:
    """Evenly spaced quantiles (0 .. 100%) of photo valence and arousal."""

    valence: tuple[float, ...] = PHOTO_REFERENCE_VALENCE
    arousal: tuple[float, ...] = PHOTO_REFERENCE_AROUSAL

    def __post_init__(self) -> None:
        for name in ("valence", "arousal"):
            q = getattr(self, name)
            if len(q) < 2 or any(b < a for a, b in itertools.pairwise(q)):
                raise ValueError(f"PhotoReference.{name} must be >= 2 ascending quantiles, got {q!r}")

    @classmethod
    def from_model_meta(cls, meta: Mapping[str, Any]) -> PhotoReference:
        """The model's own reference if its metadata has one, else the built-in human one."""
        ref = meta.get("photo_reference")
        if not isinstance(ref, Mapping):
            return cls()
        return cls(tuple(float(x) for x in ref["valence"]), tuple(float(x) for x in ref["arousal"]))

    @classmethod
    def of(cls, valence: Sequence[float] | np.ndarray, arousal: Sequence[float] | np.ndarray,
           points: int = PHOTO_QUANTILES) -> PhotoReference:
        """The spread of one photo collection (at least one photo): its own quantiles."""
        at = np.linspace(0.0, 1.0, points)
        return cls(tuple(float(x) for x in np.quantile(np.asarray(valence, np.float64), at)),
                   tuple(float(x) for x in np.quantile(np.asarray(arousal, np.float64), at)))

    def rank(self, axis: str, value: float) -> float:
        """Where `value` lies among photos on this axis, 0 .. 1 (piecewise linear)."""
        q = np.asarray(getattr(self, axis))
        return float(np.interp(value, q, np.linspace(0.0, 1.0, len(q))))

    def at_rank(self, axis: str, rank: float) -> float:
        """The photo value at `rank` (0 .. 1) on this axis: the inverse of `rank`."""
        q = np.asarray(getattr(self, axis))
        return float(np.interp(min(1.0, max(0.0, rank)), np.linspace(0.0, 1.0, len(q)), q))


@dataclass(frozen=True, slots=True)
class LibraryShape:
    """The sorted valence and arousal of the library's tracks, for quantile look-ups."""

    valence: np.ndarray
    arousal: np.ndarray

    @classmethod
    def of(cls, valence: Sequence[float] | np.ndarray, arousal: Sequence[float] | np.ndarray,
           confidence: Sequence[float] | np.ndarray) -> LibraryShape:
        keep = np.asarray(confidence, dtype=np.float64) >= MIN_TRACK_CONFIDENCE
        return cls(np.sort(np.asarray(valence, dtype=np.float64)[keep]),
                   np.sort(np.asarray(arousal, dtype=np.float64)[keep]))

    def __len__(self) -> int:
        return len(self.valence)

    def at_rank(self, axis: str, rank: float) -> float:
        return float(np.quantile(getattr(self, axis), min(1.0, max(0.0, rank))))

    def rank(self, axis: str, value: float) -> float:
        """Where a track's `value` lies among this library's tracks, 0 .. 1: the inverse of
        `at_rank` (tied values share their middle rank; outside the range, the end's rank)."""
        values = getattr(self, axis)
        if len(values) < 2:
            return 0.5
        distinct, first, counts = np.unique(values, return_index=True, return_counts=True)
        middle = (first + (counts - 1) / 2) / (len(values) - 1)
        return float(np.interp(value, distinct, middle))


@dataclass(frozen=True, slots=True)
class Placement:
    """A photo's mood, where its ranks fall in this library, and the blend tracks are chosen for."""

    photo: Mood
    relative: Mood  # the library's point at the photo's per-axis ranks
    target: Mood  # (1 - library_fit) * photo + library_fit * relative
    library_fit: float  # the weight actually used (0 when the library is too small)

    def describe(self) -> str:
        """E.g. "the tender photo (v 0.92, a -0.05; in this library: joyful)"."""
        photo = f"the {self.photo.word} photo (v {self.photo.valence:.2f}, a {self.photo.arousal:.2f}"
        if self.library_fit == 0:
            return photo + ")"
        return f"{photo}; in this library: {self.relative.word})"


def place(photo: Mood, shape: LibraryShape, library_fit: float,
          reference: PhotoReference | None = None) -> Placement:
    """Blend the photo's absolute mood with its rank-aligned point in this library."""
    if not 0.0 <= library_fit <= 1.0:
        raise ValueError(f"library_fit must lie in [0, 1], got {library_fit!r}")
    reference = reference or PhotoReference()
    if len(shape) < MIN_TRACKS or library_fit == 0.0:
        return Placement(photo, photo, photo, 0.0)
    rel_v = shape.at_rank("valence", reference.rank("valence", photo.valence))
    rel_a = shape.at_rank("arousal", reference.rank("arousal", photo.arousal))
    relative = Mood.clipped(rel_v, rel_a, photo.confidence)
    w = library_fit
    target = Mood.clipped((1 - w) * photo.valence + w * rel_v, (1 - w) * photo.arousal + w * rel_a,
                          photo.confidence)
    return Placement(photo, relative, target, w)


def photo_target(track: Mood, shape: LibraryShape, photo_valence: Sequence[float] | np.ndarray,
                 photo_arousal: Sequence[float] | np.ndarray, library_fit: float) -> Mood:
    """The mood a photo should have to fit `track` (photos follow music): the track's per-axis
    rank among this library's tracks mapped onto the same rank among the photos (the moods of
    the photos scored so far), blended with the track's own point by `library_fit`. Too few
    tracks or photos to rank in: the track's own point."""
    if not 0.0 <= library_fit <= 1.0:
        raise ValueError(f"library_fit must lie in [0, 1], got {library_fit!r}")
    if len(photo_valence) < MIN_PHOTOS or len(shape) < MIN_TRACKS or library_fit == 0.0:
        return track
    photos = PhotoReference.of(photo_valence, photo_arousal)
    w = library_fit
    rel_v = photos.at_rank("valence", shape.rank("valence", track.valence))
    rel_a = photos.at_rank("arousal", shape.rank("arousal", track.arousal))
    return Mood.clipped((1 - w) * track.valence + w * rel_v, (1 - w) * track.arousal + w * rel_a,
                        track.confidence)


def photo_distances(track: Mood, shape: LibraryShape, photo_valence: Sequence[float] | np.ndarray,
                    photo_arousal: Sequence[float] | np.ndarray, library_fit: float) -> np.ndarray:
    """How far each photo's mood is from what `track` asks for (`photo_target`), per axis in
    standard deviations of the photos' own spread; on the plane as it is when the photos or
    tracks are too few to have a spread."""
    v = np.asarray(photo_valence, dtype=np.float64)
    a = np.asarray(photo_arousal, dtype=np.float64)
    target = photo_target(track, shape, v, a, library_fit)
    if target is track:
        return np.hypot(v - track.valence, a - track.arousal)
    return np.hypot((v - target.valence) / max(MIN_PHOTO_SPREAD, float(v.std())),
                    (a - target.arousal) / max(MIN_PHOTO_SPREAD, float(a.std())))
