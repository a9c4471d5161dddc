"""The mood-tag and genre tables, and reading tags, genres and tempo onto the valence-arousal plane."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from frame_daemon.mood import MOOD_WORDS, Mood
from frame_daemon.music.lexicon import (
    BPM_MAX_NUDGE,
    GENRE_ALIASES,
    GENRE_CONFIDENCE,
    GENRE_DESCRIPTORS,
    GENRE_PARTIAL_CONFIDENCE,
    GENRE_PRIORS,
    MOOD_TAG_WORDS,
    NEUTRAL,
    TAG_CONFIDENCE,
    TAG_SYNONYMS,
    TAG_WORDS,
    estimates_from_tags,
    mood_from_genre,
    mood_from_tag,
    nudge_for_bpm,
)
from frame_daemon.music.track import MoodEstimate, MoodSource

ROOT = Path(__file__).resolve().parents[1]
LEXICON = ROOT.parent / "shared/data/lexicon/NRC-VAD-Lexicon-v1.txt"


def test_tables_lie_on_the_plane():
    for table in (MOOD_TAG_WORDS, GENRE_PRIORS):
        for name, (v, a) in table.items():
            assert -1.0 <= v <= 1.0 and -1.0 <= a <= 1.0, name


def test_tag_table_covers_the_word_sets_and_the_project_mood_words():
    assert set(MOOD_TAG_WORDS) == set(TAG_WORDS) | set(TAG_SYNONYMS) | set(MOOD_WORDS)
    for word, point in MOOD_WORDS.items():
        assert MOOD_TAG_WORDS[word] == point  # a tag named after a region lands in it
    assert 50 <= len(TAG_WORDS) + len(TAG_SYNONYMS) <= 110


def test_genre_table_matches_its_descriptors():
    assert set(GENRE_PRIORS) == set(GENRE_DESCRIPTORS)
    assert 40 <= len(GENRE_PRIORS) <= 70
    for genre, words in GENRE_DESCRIPTORS.items():
        assert 3 <= len(words) <= 5, genre
    assert set(GENRE_ALIASES.values()) <= set(GENRE_PRIORS)


@pytest.mark.skipif(not LEXICON.exists(), reason=f"NRC-VAD lexicon not at {LEXICON} (not shipped)")
def test_shipped_tables_are_what_the_script_prints():
    out = subprocess.run([sys.executable, str(ROOT / "scripts/build_music_tables.py"), "--lexicon",
                          str(LEXICON)], capture_output=True, text=True, check=True).stdout
    printed = {name: (float(v), float(a))
               for name, v, a in re.findall(r'"([^"]+)": \((-?[\d.]+), (-?[\d.]+)\)', out)}
    shipped = {**{k: v for k, v in MOOD_TAG_WORDS.items() if k not in MOOD_WORDS}, **GENRE_PRIORS}
    assert printed == shipped


def test_genre_priors_point_the_right_way():
    def va(genre):
        return GENRE_PRIORS[genre]
    assert va("metal")[1] > va("ambient")[1] + 0.5
    assert va("metal")[0] < va("pop")[0]
    assert va("lullaby")[1] < va("techno")[1]
    assert va("blues")[0] < 0 < va("disco")[0]
    assert va("hard rock")[1] > 0 > va("piano")[1]


def test_known_mood_tag():
    est = mood_from_tag("  Calm ")
    assert est.source is MoodSource.TAG
    assert (est.mood.valence, est.mood.arousal) == MOOD_WORDS["calm"]
    assert est.mood.confidence == TAG_CONFIDENCE
    assert est.detail == "mood tag 'Calm'"


@pytest.mark.parametrize("text", ["happy; energetic", "Happy/Energetic", "happy, energetic",
                                  "HAPPY;ENERGETIC", "happy and energetic"])
def test_multi_valued_tags_average(text):
    est = mood_from_tag(text)
    (hv, ha), (ev, ea) = MOOD_TAG_WORDS["happy"], MOOD_TAG_WORDS["energetic"]
    assert est.mood.valence == pytest.approx((hv + ev) / 2, abs=1e-3)
    assert est.mood.arousal == pytest.approx((ha + ea) / 2, abs=1e-3)
    assert est.mood.confidence == TAG_CONFIDENCE


def test_partly_known_tag_is_less_sure():
    est = mood_from_tag("sad; flibbertigibbet")
    assert (est.mood.valence, est.mood.arousal) == MOOD_TAG_WORDS["sad"]
    assert TAG_CONFIDENCE / 2 <= est.mood.confidence < TAG_CONFIDENCE
    assert "read as sad" in est.detail


@pytest.mark.parametrize(("text", "word"), [("Laid-Back", "laid-back"), ("laid back", "laid-back"),
                                            ("feelgood", "feel-good"), ("CHILL_OUT", "chillout"),
                                            ("very dark", "dark")])
def test_tag_spellings(text, word):
    est = mood_from_tag(text)
    assert (est.mood.valence, est.mood.arousal) == MOOD_TAG_WORDS[word]


@pytest.mark.parametrize("text", [None, "", " ; ", "flibbertigibbet", "12345"])
def test_unknown_tags_give_none(text):
    assert mood_from_tag(text) is None


@pytest.mark.parametrize(("text", "genre"), [
    ("Ambient", "ambient"), ("  ambient ", "ambient"), ("Drum & Bass", "drum and bass"),
    ("drum-and-bass", "drum and bass"), ("Drum'n'Bass", "drum and bass"), ("DnB", "drum and bass"),
    ("R&B", "r&b"), ("RnB", "r&b"), ("Rhythm and Blues", "r&b"), ("Hip-Hop", "hip hop"),
    ("hiphop", "hip hop"), ("Singer/Songwriter", "singer-songwriter"),
    ("Lo-Fi", "lo-fi"), ("Children's", "children's"), ("Hard Rock", "hard rock"),
])
def test_genre_names_match_exactly(text, genre):
    est = mood_from_genre(text)
    assert est.source is MoodSource.GENRE
    assert (est.mood.valence, est.mood.arousal) == GENRE_PRIORS[genre]
    assert est.mood.confidence == GENRE_CONFIDENCE


@pytest.mark.parametrize(("text", "genre"), [
    ("Progressive Rock", "rock"), ("Folk Rock", "rock"), ("Indie Pop", "pop"),
    ("Alternative Hard Rock", "hard rock"), ("Metalcore", "metal"), ("Children's Music", "children's"),
    ("Symphonic Death Metal", "metal"),
])
def test_genre_found_inside_a_longer_name(text, genre):
    est = mood_from_genre(text)
    assert (est.mood.valence, est.mood.arousal) == GENRE_PRIORS[genre]
    assert est.mood.confidence == GENRE_PARTIAL_CONFIDENCE
    assert f"as {genre}" in est.detail


def test_genre_detail_reads_as_why():
    assert mood_from_genre("Ambient").detail == "genre 'Ambient' (prior)"


def test_several_genres_average():
    est = mood_from_genre("Rock; Pop")
    (rv, ra), (pv, pa) = GENRE_PRIORS["rock"], GENRE_PRIORS["pop"]
    assert est.mood.valence == pytest.approx((rv + pv) / 2, abs=1e-3)
    assert est.mood.arousal == pytest.approx((ra + pa) / 2, abs=1e-3)


@pytest.mark.parametrize("text", [None, "", "Zydeco", "Demo", "Trap", "Other", "; ;"])
def test_unknown_genres_give_none(text):
    assert mood_from_genre(text) is None


def test_neutral_estimate():
    assert NEUTRAL.source is MoodSource.NEUTRAL
    assert (NEUTRAL.mood.valence, NEUTRAL.mood.arousal, NEUTRAL.mood.confidence) == (0.0, 0.0, 0.05)


def test_bpm_nudges_weak_estimates_a_little():
    genre = mood_from_genre("Ambient")
    slow, fast = nudge_for_bpm(genre, 60), nudge_for_bpm(genre, 175)
    assert slow.mood.arousal == pytest.approx(genre.mood.arousal - BPM_MAX_NUDGE)
    assert fast.mood.arousal == pytest.approx(genre.mood.arousal + BPM_MAX_NUDGE)
    assert slow.mood.valence == genre.mood.valence
    assert "60 BPM" in slow.detail
    assert nudge_for_bpm(genre, 110).mood.arousal == pytest.approx(genre.mood.arousal)
    assert nudge_for_bpm(NEUTRAL, 140).mood.arousal > 0


@pytest.mark.parametrize("bpm", [None, 0.0, 10.0, 900.0])
def test_implausible_bpm_is_ignored(bpm):
    genre = mood_from_genre("Ambient")
    assert nudge_for_bpm(genre, bpm) == genre


def test_bpm_leaves_tags_alone_and_stays_on_the_plane():
    tag = mood_from_tag("calm")
    assert nudge_for_bpm(tag, 180) == tag
    edge = MoodEstimate(MoodSource.GENRE, Mood(0.0, 0.95, 0.35), "genre 'speedcore' (prior)")
    assert nudge_for_bpm(edge, 200).mood.arousal == 1.0


def test_estimates_from_tags_in_priority_order():
    found = estimates_from_tags("calm", "Metal", 90)
    assert [e.source for e in found] == [MoodSource.TAG, MoodSource.GENRE, MoodSource.NEUTRAL]
    assert found[0] == mood_from_tag("calm")
    assert estimates_from_tags(None, None, None) == [NEUTRAL]
