"""Library-relative placement: a photo's rank among photos mapped to the same rank in this library."""

from __future__ import annotations

import numpy as np
import pytest

from frame_daemon.mood import Mood, mood_of_word
from frame_daemon.music.placement import (
    LibraryShape,
    PhotoReference,
    photo_distances,
    photo_target,
    place,
)


def shape(points: list[tuple[float, float]], confidence: float = 0.9) -> LibraryShape:
    return LibraryShape.of([p[0] for p in points], [p[1] for p in points], [confidence] * len(points))


# An all-rock library: every track energetic, some darker, some brighter.
ROCK = shape([(-0.6 + 0.1 * i, 0.4 + 0.05 * i) for i in range(12)])


def test_a_calm_photo_gets_the_calmest_part_of_an_all_rock_library():
    calm = mood_of_word("calm")
    placed = place(calm, ROCK, library_fit=1.0)
    assert placed.relative.arousal == pytest.approx(min(ROCK.arousal), abs=0.02)
    excited = place(mood_of_word("excited"), ROCK, library_fit=1.0)
    assert excited.relative.arousal > placed.relative.arousal + 0.3


def test_the_target_blends_absolute_and_relative():
    calm = mood_of_word("calm")
    relative = place(calm, ROCK, 1.0).relative
    half = place(calm, ROCK, 0.5).target
    assert half.valence == pytest.approx((calm.valence + relative.valence) / 2)
    assert half.arousal == pytest.approx((calm.arousal + relative.arousal) / 2)
    absolute = place(calm, ROCK, 0.0)
    assert absolute.target == calm and absolute.library_fit == 0.0


def test_a_tiny_library_or_guessed_moods_fall_back_to_absolute():
    calm = Mood(0.7, -0.8, 0.6)
    assert place(calm, shape([(0.0, 0.5)] * 3), 0.5).target == calm
    assert place(calm, shape([(0.0, 0.5)] * 12, confidence=0.05), 0.5).target == calm


def test_the_models_own_reference_is_used_when_its_metadata_has_one():
    meta = {"photo_reference": {"valence": [-1.0, 1.0], "arousal": [-0.2, 0.0, 0.2]}}
    ref = PhotoReference.from_model_meta(meta)
    assert ref.rank("arousal", 0.0) == pytest.approx(0.5)
    # On the model's own scale arousal 0 is the middle; on the human scale it is well above it.
    assert PhotoReference().rank("arousal", 0.0) > 0.6
    assert PhotoReference.from_model_meta({"name": "no reference"}) == PhotoReference()
    with pytest.raises(ValueError, match="ascending"):
        PhotoReference((0.5, 0.1), (0.0, 1.0))


# ------------------------------------------------------------------ the reverse: photos follow music
# A library of calm music (arousal -0.9 .. -0.45) and photos that are mostly neutral.
CALM_MUSIC = shape([(0.1 + 0.05 * i, -0.9 + 0.05 * i) for i in range(10)])
NEUTRAL_PHOTOS_V = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25]
NEUTRAL_PHOTOS_A = [-0.2, -0.1, 0.0, 0.05, 0.1, 0.2]


def test_the_liveliest_track_of_a_calm_library_asks_for_the_liveliest_photo():
    liveliest = Mood(0.55, -0.45, 0.8)
    calmest = Mood(0.1, -0.9, 0.8)
    high = photo_target(liveliest, CALM_MUSIC, NEUTRAL_PHOTOS_V, NEUTRAL_PHOTOS_A, 1.0)
    low = photo_target(calmest, CALM_MUSIC, NEUTRAL_PHOTOS_V, NEUTRAL_PHOTOS_A, 1.0)
    assert high.arousal == pytest.approx(max(NEUTRAL_PHOTOS_A))
    assert high.valence == pytest.approx(max(NEUTRAL_PHOTOS_V))
    assert low.arousal == pytest.approx(min(NEUTRAL_PHOTOS_A))
    # On absolute moods both tracks sit below every photo's arousal: the same photo for both.
    assert liveliest.arousal < min(NEUTRAL_PHOTOS_A)
    half = photo_target(liveliest, CALM_MUSIC, NEUTRAL_PHOTOS_V, NEUTRAL_PHOTOS_A, 0.5)
    assert half.arousal == pytest.approx((liveliest.arousal + max(NEUTRAL_PHOTOS_A)) / 2)


def test_a_track_in_the_middle_of_the_library_asks_for_the_middle_of_the_photos():
    middle = Mood(float(np.median(CALM_MUSIC.valence)), float(np.median(CALM_MUSIC.arousal)))
    target = photo_target(middle, CALM_MUSIC, NEUTRAL_PHOTOS_V, NEUTRAL_PHOTOS_A, 1.0)
    assert target.valence == pytest.approx(float(np.median(NEUTRAL_PHOTOS_V)))
    assert target.arousal == pytest.approx(float(np.median(NEUTRAL_PHOTOS_A)))


def test_ranks_in_the_library_invert_its_quantiles_and_ties_share_the_middle():
    for r in (0.0, 0.2, 0.5, 0.9, 1.0):
        assert CALM_MUSIC.rank("arousal", CALM_MUSIC.at_rank("arousal", r)) == pytest.approx(r)
    tied = shape([(0.0, -0.5), (0.0, 0.0), (0.0, 0.0), (0.0, 0.5)])
    assert tied.rank("arousal", 0.0) == pytest.approx(0.5)
    assert tied.rank("valence", 0.0) == pytest.approx(0.5)
    assert tied.rank("arousal", 0.9) == pytest.approx(1.0)  # beyond the liveliest: the top


def test_too_few_photos_or_tracks_or_no_fit_match_the_track_as_it_is():
    track = Mood(0.55, -0.45, 0.8)
    assert photo_target(track, CALM_MUSIC, [0.1, 0.2], [0.0, 0.1], 1.0) == track
    assert photo_target(track, shape([(0.0, 0.0)] * 3), NEUTRAL_PHOTOS_V, NEUTRAL_PHOTOS_A,
                        1.0) == track
    assert photo_target(track, CALM_MUSIC, NEUTRAL_PHOTOS_V, NEUTRAL_PHOTOS_A, 0.0) == track
    with pytest.raises(ValueError, match="library_fit"):
        photo_target(track, CALM_MUSIC, NEUTRAL_PHOTOS_V, NEUTRAL_PHOTOS_A, 1.5)


def test_distances_count_each_axis_in_the_photos_own_spread():
    # Photos far apart in valence (-0.6 .. 0.6) but close in arousal (-0.3 .. -0.2).
    v = [-0.6, -0.4, -0.2, 0.0, 0.15, 0.4, 0.6]
    a = [-0.3, -0.3, -0.3, -0.25, -0.2, -0.3, -0.3]
    # The library's liveliest track, of middling valence: the middle valence, the top arousal.
    lively = Mood(float(np.median(CALM_MUSIC.valence)), -0.45, 0.8)
    nearest = int(np.argmin(photo_distances(lively, CALM_MUSIC, v, a, 1.0)))
    # On the plane as it is (0.0, -0.25) is nearer; in the photos' own spread its arousal is
    # a whole standard deviation short, where (0.15, -0.2) is off by a third of one in valence.
    assert (v[nearest], a[nearest]) == (0.15, -0.2)
    # Too few tracks to rank in: plain distance on the plane from the track's own point.
    few = photo_distances(lively, shape([(0.0, 0.0)] * 2), v, a, 1.0)
    assert few == pytest.approx(np.hypot(np.subtract(v, lively.valence),
                                         np.subtract(a, lively.arousal)))
