"""Track selection: ranking on the plane, confidence, genre and history filters, artists, sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from frame_daemon.mood import Mood, mood_of_word
from frame_daemon.music.select import (
    CONFIDENCE_PENALTY,
    Pick,
    SelectionParams,
    TrackPool,
    genre_tokens,
    keep_playing,
    select,
)
from frame_daemon.music.track import MoodSource, Track

NEAREST = SelectionParams(diversity=0.0)


def track(uri: str, v: float, a: float, confidence: float = 1.0, *, artist: str | None = None,
          genre: str = "", title: str | None = None, why: str = "mood tag") -> Track:
    return Track(uri=uri, title=title if title is not None else uri.upper(),
                 artist=artist if artist is not None else f"artist of {uri}", genre=genre,
                 mood=Mood(v, a, confidence), source=MoodSource.TAG, why=why)


def uris(picks: list[Pick]) -> list[str]:
    return [p.track.uri for p in picks]


# Five tracks on a line from the origin along valence, 0.1 apart, each by its own artist.
LINE = [track(f"t{i}", 0.1 * i, 0.0) for i in range(5)]
ORIGIN = Mood(0.0, 0.0)


# ---------------------------------------------------------------- ranking

def test_nearest_first_with_exact_distances():
    pool = TrackPool.from_tracks(list(reversed(LINE)))
    picks = select(pool, Mood(0.22, 0.0), NEAREST)
    assert uris(picks) == ["t2", "t3", "t1", "t4", "t0"]
    assert [round(p.distance, 6) for p in picks] == [0.02, 0.08, 0.12, 0.18, 0.22]
    assert all(p.score == pytest.approx(p.distance) for p in picks)  # full confidence: no penalty


def test_distance_is_euclidean_on_the_plane():
    pool = TrackPool.from_tracks([track("x", 0.3, 0.4)])
    (pick,) = select(pool, ORIGIN, NEAREST)
    assert pick.distance == pytest.approx(0.5)


def test_low_confidence_tracks_count_as_farther():
    guessed = track("guessed", 0.05, 0.0, confidence=0.2)  # nearer, but only a genre guess
    tagged = track("tagged", 0.3, 0.0, confidence=1.0)
    neutral = Track(uri="neutral")  # no information: centre of the plane, confidence 0
    pool = TrackPool.from_tracks([guessed, tagged, neutral])
    picks = select(pool, ORIGIN, NEAREST)
    assert uris(picks) == ["tagged", "guessed", "neutral"]
    by_uri = {p.track.uri: p for p in picks}
    assert by_uri["guessed"].score == pytest.approx(0.05 + CONFIDENCE_PENALTY * 0.8)
    assert by_uri["neutral"].score == pytest.approx(CONFIDENCE_PENALTY)
    assert by_uri["neutral"].distance == pytest.approx(0.0)


def test_a_guessed_track_still_wins_when_nothing_sure_is_near():
    guessed = track("guessed", -0.9, 0.9, confidence=0.3)
    far_sure = track("far", 0.9, -0.9)
    picks = select(TrackPool.from_tracks([far_sure, guessed]), Mood(-0.9, 0.8),
                   SelectionParams(count=1, diversity=0))
    assert uris(picks) == ["guessed"]


def test_large_pool_matches_brute_force():
    rng = np.random.default_rng(3)
    points = rng.uniform(-1, 1, (20_000, 3))
    tracks = [track(f"u{i}", float(v), float(a), float((c + 1) / 2)) for i, (v, a, c) in enumerate(points)]
    pool = TrackPool.from_tracks(tracks)
    target = Mood(0.3, -0.6)
    picks = select(pool, target, SelectionParams(count=10, diversity=0))
    scores = [math.hypot(t.mood.valence - 0.3, t.mood.arousal + 0.6)
              + CONFIDENCE_PENALTY * (1 - t.mood.confidence) for t in tracks]
    expected = sorted(range(len(tracks)), key=scores.__getitem__)[:10]
    assert uris(picks) == [f"u{i}" for i in expected]


# ---------------------------------------------------------------- genres

GENRED = [
    track("rock_pop", 0.0, 0.0, genre="Rock; Pop"),
    track("jazz_soul", 0.01, 0.0, genre="Jazz/Soul"),
    track("alt_rock", 0.02, 0.0, genre="Alternative Rock"),
    track("rockabilly", 0.03, 0.0, genre="Rockabilly"),
    track("hiphop", 0.04, 0.0, genre="Hip-Hop, Rap"),
    track("untagged", 0.05, 0.0, genre=""),
    track("electro", 0.06, 0.0, genre="Electronic | Ambient"),
]


def pick_genres(**kwargs) -> list[str]:
    params = SelectionParams(count=10, diversity=0, **kwargs)
    return uris(select(TrackPool.from_tracks(GENRED), ORIGIN, params))


def test_genre_tokens_split_multi_genre_strings():
    assert genre_tokens("Rock; Pop/Hip-Hop, Rap | Drum_and_Bass") == ("rock", "pop", "hip hop", "rap",
                                                                       "drum and bass")
    assert genre_tokens("  ") == () and genre_tokens("Rock;rock") == ("rock",)


def test_include_matches_whole_words_in_any_of_a_tracks_genres():
    assert pick_genres(include_genres=frozenset({"rock"})) == ["rock_pop", "alt_rock"]
    assert pick_genres(include_genres=frozenset({"Soul"})) == ["jazz_soul"]
    assert pick_genres(include_genres=frozenset({"hip hop"})) == ["hiphop"]
    assert pick_genres(include_genres=frozenset({"HIP-HOP", "ambient"})) == ["hiphop", "electro"]


def test_exclude_removes_any_track_with_a_matching_genre_and_keeps_untagged():
    assert pick_genres(exclude_genres=frozenset({"pop", "rock"})) == ["jazz_soul", "rockabilly", "hiphop",
                                                                      "untagged", "electro"]


def test_include_and_exclude_together():
    assert pick_genres(include_genres=frozenset({"rock"}), exclude_genres=frozenset({"pop"})) == ["alt_rock"]


def test_genre_filters_are_never_relaxed():
    assert pick_genres(include_genres=frozenset({"polka"})) == []
    history = ["rock_pop", "alt_rock"]
    picks = select(TrackPool.from_tracks(GENRED), ORIGIN,
                   SelectionParams(count=2, diversity=0, include_genres=frozenset({"rock"})), history)
    assert sorted(uris(picks)) == ["alt_rock", "rock_pop"]


# ---------------------------------------------------------------- history

def test_recently_played_tracks_are_not_picked_again():
    pool = TrackPool.from_tracks(LINE)
    picks = select(pool, ORIGIN, SelectionParams(count=3, diversity=0), history=["t0", "t2"])
    assert uris(picks) == ["t1", "t3", "t4"]
    assert not any("played recently" in p.why for p in picks)


def test_only_the_last_no_repeat_history_entries_count():
    pool = TrackPool.from_tracks(LINE)
    history = ["t0", "t1", "x", "y"]  # t0 and t1 played longer ago than the window of 2
    def nearest_two(no_repeat: int, history: list[str]) -> list[str]:
        return uris(select(pool, ORIGIN, SelectionParams(count=2, diversity=0, no_repeat=no_repeat), history))

    assert nearest_two(2, history) == ["t0", "t1"]
    assert nearest_two(4, history) == ["t2", "t3"]
    assert nearest_two(0, ["t0"]) == ["t0", "t1"]


def test_history_relaxes_oldest_plays_first_when_too_few_tracks_are_left():
    pool = TrackPool.from_tracks(LINE)
    history = ["t3", "t0", "t4", "t1"]  # oldest first: t3 played longest ago, t1 just now
    picks = select(pool, ORIGIN, SelectionParams(count=3, diversity=0), history)
    # Eligible: only t2. Two more are needed: t3 and t0 (the two oldest plays) come back; t4, t1 stay out.
    assert uris(picks) == ["t0", "t2", "t3"]
    repeated = {p.track.uri for p in picks if "played recently" in p.why}
    assert repeated == {"t0", "t3"}


def test_history_excluding_everything_is_relaxed_and_said():
    pool = TrackPool.from_tracks(LINE[:2])
    picks = select(pool, ORIGIN, SelectionParams(count=5, diversity=0), ["t0", "t1"])
    assert uris(picks) == ["t0", "t1"]
    assert all("played recently, repeated because too few other tracks fit" in p.why for p in picks)


# ---------------------------------------------------------------- artists

def artist_pool() -> TrackPool:
    return TrackPool.from_tracks([
        track("a1", 0.01, 0.0, artist="Alpha"),
        track("a2", 0.02, 0.0, artist="alpha "),
        track("b1", 0.03, 0.0, artist="Beta"),
        track("a3", 0.04, 0.0, artist="Alpha"),
        track("c1", 0.05, 0.0, artist="Gamma"),
    ])


def test_no_artist_twice_in_a_row_when_avoidable():
    picks = select(artist_pool(), ORIGIN, SelectionParams(count=3, diversity=0))
    assert uris(picks) == ["a1", "b1", "a2"]
    picks = select(artist_pool(), ORIGIN, SelectionParams(count=5, diversity=0))
    assert uris(picks) == ["a1", "b1", "a2", "c1", "a3"]


def test_the_artist_playing_now_is_not_followed_by_itself():
    picks = select(artist_pool(), ORIGIN, SelectionParams(count=3, diversity=0), last_artist=" ALPHA")
    assert uris(picks) == ["b1", "a1", "c1"]


def test_same_artist_is_allowed_when_unavoidable_and_unknown_artists_never_clash():
    same = TrackPool.from_tracks([track(f"s{i}", 0.1 * i, 0.0, artist="Solo") for i in range(3)])
    picks = select(same, ORIGIN, SelectionParams(count=3, diversity=0), last_artist="Solo")
    assert uris(picks) == ["s0", "s1", "s2"]
    unknown = TrackPool.from_tracks([track(f"n{i}", 0.1 * i, 0.0, artist="") for i in range(3)])
    picks = select(unknown, ORIGIN, SelectionParams(count=3, diversity=0), last_artist="")
    assert uris(picks) == ["n0", "n1", "n2"]


# ---------------------------------------------------------------- diversity and seeds

def random_pool(n: int = 300, seed: int = 11) -> TrackPool:
    rng = np.random.default_rng(seed)
    return TrackPool.from_tracks([track(f"r{i}", float(v), float(a)) for i, (v, a) in
                                  enumerate(rng.uniform(-1, 1, (n, 2)))])


def test_same_seed_same_picks():
    pool = random_pool()
    params = SelectionParams(count=5, diversity=0.5, seed=42)
    target = Mood(0.2, 0.3)
    assert uris(select(pool, target, params)) == uris(select(pool, target, params))


def test_diversity_varies_with_seed_but_stays_among_good_matches():
    pool = random_pool()
    target = Mood(0.2, 0.3)
    ranked = uris(select(pool, target, SelectionParams(count=len(pool), diversity=0)))
    k = math.ceil(5 * (1 + 10 * 0.5))  # the candidates diversity 0.5 samples from
    results = {tuple(uris(select(pool, target, SelectionParams(count=5, diversity=0.5, seed=s))))
               for s in range(20)}
    assert len(results) >= 10
    assert all(uri in ranked[:k] for picks in results for uri in picks)


def test_diversity_zero_ignores_the_seed():
    pool = random_pool()
    target = Mood(-0.5, 0.1)
    picks = {tuple(uris(select(pool, target, SelectionParams(diversity=0, seed=s)))) for s in range(5)}
    assert len(picks) == 1


def test_more_diversity_means_wider_picks():
    pool = random_pool()
    target = Mood(0.0, 0.0)

    def mean_distance(diversity: float) -> float:
        return float(np.mean([p.distance for s in range(30)
                              for p in select(pool, target, SelectionParams(diversity=diversity, seed=s))]))

    near, some, wide = mean_distance(0.0), mean_distance(0.3), mean_distance(1.0)
    assert near < some < wide


# ---------------------------------------------------------------- small pools and why

def test_empty_and_small_pools():
    assert select(TrackPool.from_tracks([]), ORIGIN, SelectionParams()) == []
    pool = TrackPool.from_tracks(LINE[:2])
    assert len(pool) == 2 and tuple(pool.tracks) == tuple(LINE[:2])
    assert uris(select(pool, ORIGIN, SelectionParams(count=5, seed=1))) == ["t0", "t1"]


def test_a_pool_gives_back_every_track_it_was_made_of_and_finds_each_by_uri():
    # The pool keeps its tracks as columns (texts packed, repeated ones once): what comes back
    # must be the very tracks, in their order, found by URI whatever the order they came in.
    sources = list(MoodSource)
    tracks = [Track(f"{'zyx'[i % 3]}/{i * 7 % 50:02d}-é.flac", f"T{i}" if i % 4 else "",
                    artist=["A", "B", ""][i % 3], album=["X", "Y"][i % 2],
                    genre=["Rock", "Jazz; Pop", ""][i % 3], duration=float(i),
                    mood=Mood(i / 50 - 1, 1 - i / 50, (i % 5) / 4), source=sources[i % 4],
                    why=["genre prior", f"analysis: {i} BPM"][i % 2]) for i in range(50)]
    pool = TrackPool.from_tracks(tracks)
    assert list(pool.tracks) == tracks and pool.tracks[-1] == tracks[-1]
    assert all(pool.index_of(t.uri) == i for i, t in enumerate(tracks))
    assert pool.index_of("y/00-é.flac ") is None and pool.index_of("") is None
    gone = {tracks[0].uri, tracks[17].uri, "not/in/the/pool.flac"}
    rest = [t for t in tracks if t.uri not in gone]
    less = pool.without(gone)
    assert list(less.tracks) == rest and all(less.index_of(t.uri) == i for i, t in enumerate(rest))
    assert less.index_of(tracks[17].uri) is None
    assert less.genre_mask(frozenset({"pop"})).tolist() == ["Pop" in t.genre for t in rest]
    in_order = TrackPool.from_tracks(sorted(tracks, key=lambda t: t.uri))  # as the index lists them
    assert all(in_order.index_of(t.uri) == i for i, t in enumerate(in_order.tracks))
    assert in_order.without(gone).index_of(tracks[17].uri) is None


def test_why_says_photo_mood_track_distance_and_source():
    calm = mood_of_word("calm")
    assert calm is not None
    t = Track(uri="a.flac", title="Still Water", artist="Lake", mood=Mood(0.62, -0.72, 0.9),
              source=MoodSource.TAG, why="mood tag 'calm'")
    (pick,) = select(TrackPool.from_tracks([t]), Mood(0.7, -0.8), NEAREST)
    assert pick.why == ("calm target (v 0.70, a -0.80) → 'Still Water – Lake' at distance 0.11; "
                        "mood tag 'calm'")
    unsure = Track(uri="b.flac", title="Hum", mood=Mood(0.5, -0.5, 0.3), why="genre 'ambient'")
    (pick,) = select(TrackPool.from_tracks([unsure]), Mood(0.7, -0.8), NEAREST)
    assert pick.why.endswith("→ 'Hum' at distance 0.36; genre 'ambient' (unsure, confidence 0.30)")


# ---------------------------------------------------------------- parameters

@pytest.mark.parametrize(("kwargs", "message"), [
    ({"count": 0}, "count must be an integer >= 1"),
    ({"count": 2.5}, "count must be an integer >= 1"),
    ({"count": True}, "count must be an integer >= 1"),
    ({"diversity": -0.1}, "diversity must lie in [0, 1]"),
    ({"diversity": 1.5}, "diversity must lie in [0, 1]"),
    ({"diversity": "high"}, "diversity must lie in [0, 1]"),
    ({"no_repeat": -1}, "no_repeat must be an integer >= 0"),
    ({"seed": "abc"}, "seed must be an integer or None"),
    ({"include_genres": "rock"}, "include_genres must be a set of genre names"),
    ({"exclude_genres": frozenset({3})}, "exclude_genres must hold strings"),
])
def test_params_validation(kwargs, message):
    with pytest.raises(ValueError) as excinfo:
        SelectionParams(**kwargs)
    assert message in str(excinfo.value)


def test_params_normalize_genre_terms():
    params = SelectionParams(include_genres=frozenset({"Hip-Hop", " Jazz; Soul "}), exclude_genres={"POP"})
    assert params.include_genres == frozenset({"hip hop", "jazz", "soul"})
    assert params.exclude_genres == frozenset({"pop"})
    assert SelectionParams() == SelectionParams(5, 0.3, 50, frozenset(), frozenset(), None)


# ---------------------------------------------------------------- fit before variety

def mixed_pool() -> TrackPool:
    """Four lively tracks near 'joyful', and calm and melancholic ones far from it."""
    lively = [track(f"lively{i}", 0.9 - 0.05 * i, 0.55 + 0.05 * i) for i in range(4)]
    calm = [track(f"calm{i}", 0.7, -0.8 + 0.05 * i) for i in range(4)]
    sad = [track(f"sad{i}", -0.6, -0.3 + 0.05 * i) for i in range(2)]
    return TrackPool.from_tracks(lively + calm + sad)


def test_only_tracks_within_the_cap_are_queued_even_if_fewer_than_count():
    joyful = mood_of_word("joyful")
    for diversity in (0.0, 0.5, 1.0):
        for seed in range(10):
            picks = select(mixed_pool(), joyful, SelectionParams(count=6, diversity=diversity, seed=seed))
            assert sorted(uris(picks)) == [f"lively{i}" for i in range(4)]
            assert all(p.distance <= 0.5 and p.fits for p in picks)


def test_the_no_repeat_window_yields_oldest_first_instead_of_queueing_misfits():
    joyful = mood_of_word("joyful")
    history = ["lively2", "lively0", "lively3", "lively1"]  # lively2 played longest ago
    picks = select(mixed_pool(), joyful, SelectionParams(count=2, diversity=0), history)
    assert sorted(uris(picks)) == ["lively0", "lively2"]
    assert all("played recently" in p.why for p in picks)


def test_with_nothing_within_the_cap_the_single_nearest_track_is_taken_and_said():
    picks = select(mixed_pool(), Mood(-0.9, 0.9), SelectionParams(count=5, diversity=0.5, seed=3))
    assert len(picks) == 1 and not picks[0].fits
    assert picks[0].track.uri == "sad1"  # the nearest to "angry" of what there is
    assert "no track within 0.50" in picks[0].why


def test_picks_play_best_first():
    pool = TrackPool.from_tracks([track(f"t{i}", 0.04 * i, 0.0) for i in range(12)])
    for seed in range(10):
        picks = select(pool, ORIGIN, SelectionParams(count=5, diversity=1.0, seed=seed))
        distances = [p.distance for p in picks]
        assert distances == sorted(distances)


def test_the_cap_is_configurable():
    wide = SelectionParams(count=6, diversity=0, max_distance=2.9)
    picks = select(mixed_pool(), mood_of_word("joyful"), wide)
    assert len(picks) == 6
    with pytest.raises(ValueError, match="max_distance must be a number > 0"):
        SelectionParams(max_distance=0)


def test_a_pick_that_plays_before_a_nearer_one_says_why():
    sure = Track("sure.mp3", "Sure", "A", mood=Mood(0.40, 0.0, 1.0), source=MoodSource.TAG)
    guess = Track("guess.mp3", "Guess", "B", mood=Mood(0.30, 0.0, 0.3), source=MoodSource.GENRE)
    same = Track("same.mp3", "Same", "A", mood=Mood(0.05, 0.0, 1.0), source=MoodSource.TAG)
    other = Track("other.mp3", "Other", "C", mood=Mood(0.20, 0.0, 1.0), source=MoodSource.TAG)
    target = Mood(0.0, 0.0)
    params = SelectionParams(count=2, diversity=0.0, no_repeat=0)
    # Guess is nearer (0.30 against 0.40) but its mood is a guess: Sure scores better.
    picks = select(TrackPool([sure, guess]), target, params)
    assert [p.track.title for p in picks] == ["Sure", "Guess"]
    assert picks[0].order.startswith("before the nearer 'Guess' (0.30): its mood is surer")
    assert picks[1].order == ""
    # Same is nearest, but by the artist playing now: Other goes first.
    picks = select(TrackPool([same, other]), target, params, last_artist="A")
    assert [p.track.title for p in picks] == ["Other", "Same"]
    assert picks[0].order == "before the nearer 'Same' (0.05): not the same artist twice in a row"


def test_the_playing_track_is_kept_when_it_fits_and_nothing_fits_better():
    jazz = Track("jazz.mp3", "Late", "Trio", genre="Jazz", mood=Mood(0.2, 0.0, 0.9))
    pool = TrackPool([jazz])
    near, far = Mood(0.0, 0.0), Mood(0.9, 0.0)
    kept = keep_playing(pool, near, SelectionParams(), "jazz.mp3", [])
    assert kept is not None and kept.track == jazz and round(kept.distance, 2) == 0.2
    assert keep_playing(pool, far, SelectionParams(), "jazz.mp3", []) is None
    assert keep_playing(pool, near, SelectionParams(exclude_genres=frozenset({"jazz"})),
                        "jazz.mp3", []) is None
    assert keep_playing(pool, near, SelectionParams(include_genres=frozenset({"rock"})),
                        "jazz.mp3", []) is None
    assert keep_playing(pool, near, SelectionParams(), "unknown.mp3", []) is None
    assert keep_playing(pool, near, SelectionParams(), None, []) is None
    # A new pick that fits better: the change goes ahead; one that fits worse: it plays on.
    better = Pick(Track("b.mp3"), 0.1, 0.15, "")
    worse = Pick(Track("w.mp3"), 0.3, 0.35, "")
    assert keep_playing(pool, near, SelectionParams(), "jazz.mp3", [better, worse]) is None
    assert keep_playing(pool, near, SelectionParams(), "jazz.mp3", [worse]) is not None
