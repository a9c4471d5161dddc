"""Library-relative placement: a photo's rank among photos mapped to the same rank in this library."""

from __future__ import annotations

import pytest

from frame_daemon.mood import Mood, mood_of_word
from frame_daemon.music.placement import LibraryShape, PhotoReference, place


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
