import math

import pytest

from frame_daemon.mood import (
    MOOD_SYNONYMS,
    MOOD_WORDS,
    NEUTRAL_WORD,
    Mood,
    distance,
    mood_of_word,
    nearest_word,
)


def test_every_word_is_in_its_own_region():
    for word, (v, a) in MOOD_WORDS.items():
        assert nearest_word(v, a) == word


def test_table_and_synonyms_agree():
    assert set(MOOD_WORDS) == set(MOOD_SYNONYMS) | {NEUTRAL_WORD}
    for v, a in MOOD_WORDS.values():
        assert -1 <= v <= 1 and -1 <= a <= 1


@pytest.mark.parametrize(("v", "a", "word"), [
    (0.9, 0.6, "joyful"), (0.7, -0.9, "calm"), (-0.8, 0.9, "angry"), (-0.6, -0.3, "melancholic"),
    (0.0, 0.0, "neutral"),
])
def test_quadrants_name_sensible_words(v, a, word):
    assert nearest_word(v, a) == word


def test_mood_validates_its_range():
    with pytest.raises(ValueError):
        Mood(1.5, 0.0)
    with pytest.raises(ValueError):
        Mood(0.0, 0.0, confidence=2.0)
    with pytest.raises(ValueError):
        Mood(float("nan"), 0.0)
    assert Mood.clipped(1.2, -1.3, 1.1) == Mood(1.0, -1.0, 1.0)


def test_distance_and_word_lookup():
    assert distance(0, 0, 1, 1) == pytest.approx(math.sqrt(2))
    calm = mood_of_word(" Calm ")
    assert calm is not None and calm.word == "calm"
    assert mood_of_word("no-such-mood") is None
    assert Mood(0.0, 0.0).distance(Mood(0.0, 1.0)) == pytest.approx(1.0)
