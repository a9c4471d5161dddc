"""The follow policy: smoothing, hysteresis, dwell, jumps, modes, and no thrashing on a slideshow."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import replace

import pytest

from frame_daemon.follow import (
    Action,
    Decision,
    FollowMode,
    FollowParams,
    FollowState,
    force,
    on_photo,
    on_tick,
)
from frame_daemon.mood import Mood, mood_of_word

# The policy's behaviour is tested at fixed settings, independent of the shipped defaults
# (which scripts/tune_follow.py chooses).
P = FollowParams(smoothing=0.6, threshold=0.35, dwell_s=15.0, jump=0.9, min_interval_s=30.0)
FOLLOW, GENTLE, OFF = FollowMode.FOLLOW, FollowMode.GENTLE, FollowMode.OFF
CHANGES = (Action.QUEUE_NEXT, Action.PLAY_NOW)


def word(name: str, confidence: float = 1.0) -> Mood:
    mood = mood_of_word(name, confidence)
    assert mood is not None
    return mood


def between(a: Mood, b: Mood, f: float, confidence: float = 1.0) -> Mood:
    return Mood(a.valence + f * (b.valence - a.valence), a.arousal + f * (b.arousal - a.arousal), confidence)


def same_point(a: Mood | None, b: Mood, tol: float = 1e-9) -> bool:
    return a is not None and a.distance(b) <= tol


def settled_on(name: str, until: float = 30.0, mode: FollowMode = FOLLOW) -> FollowState:
    """The state after photos of one mood every 10 s from t=0 to `until`."""
    state = FollowState.initial()
    t = 0.0
    while t <= until:
        state, _ = on_photo(state, word(name), t, mode, P)
        t += 10.0
    return state


def tick_until_change(state: FollowState, start: float, end: float, mode: FollowMode = FOLLOW,
                      step: float = 1.0) -> tuple[FollowState, Decision | None, float | None]:
    t = start
    while t <= end:
        state, decision = on_tick(state, t, mode, P)
        if decision.action in CHANGES:
            return state, decision, t
        t += step
    return state, None, None


# ---------------------------------------------------------------- first photo, smoothing, keep

@pytest.mark.parametrize("mode", [FOLLOW, GENTLE])
def test_first_photo_queues_for_it_after_the_current_track(mode):
    state, decision = on_photo(FollowState.initial(), word("calm", 0.8), 5.0, mode, P)
    assert decision.action == Action.QUEUE_NEXT
    assert same_point(decision.target, word("calm"))
    assert state.music_for == decision.target and state.last_change == 5.0
    assert state.smoothed == word("calm", 0.8)
    assert "first photo" in decision.reason and "calm" in decision.reason


def test_smoothing_is_an_ema_where_a_photo_counts_as_its_confidence():
    state = settled_on("calm", until=0.0)
    angry = word("angry")
    full, _ = on_photo(state, angry, 40.0, FOLLOW, FollowParams(smoothing=0.6, jump=3.0))
    low, _ = on_photo(state, word("angry", 0.3), 40.0, FOLLOW, FollowParams(smoothing=0.6, jump=3.0))
    none, _ = on_photo(state, word("angry", 0.0), 40.0, FOLLOW, FollowParams(smoothing=0.6, jump=3.0))
    assert same_point(full.smoothed, between(word("calm"), angry, 0.6))
    # A photo of confidence 0.3 is 0.3 of an observation: it leaves 0.4 ** 0.3 of the old mood.
    assert same_point(low.smoothed, between(word("calm"), angry, 1 - 0.4 ** 0.3), tol=1e-9)
    assert same_point(none.smoothed, word("calm"))


@pytest.mark.parametrize("confidence", [1.0, 0.6, 0.2])
def test_smoothing_1_means_no_smoothing(confidence):
    params = FollowParams(smoothing=1.0, jump=3.0)
    state = settled_on("calm", until=0.0)
    state, _ = on_photo(state, word("angry", confidence), 40.0, FOLLOW, params)
    assert same_point(state.smoothed, word("angry"))


@pytest.mark.parametrize("mode", [FOLLOW, GENTLE])
@pytest.mark.parametrize("confidence", [1.0, 0.4])
def test_one_photo_makes_at_most_one_change(mode, confidence):
    """The demo's bug: a change for the photo, then a second one a tick later for a blended mood."""
    params = FollowParams(threshold=0.15, dwell_s=0.0, min_interval_s=0.0)
    state, _ = on_photo(FollowState.initial(), word("calm"), 0.0, mode, params)
    for t, name in ((10.0, "angry"), (20.0, "joyful"), (30.0, "gloomy")):
        state, decision = on_photo(state, word(name, confidence), t, mode, params)
        changes = [decision] if decision.action in CHANGES else []
        for dt in range(1, 10):
            state, decision = on_tick(state, t + dt * 0.5, mode, params)
            if decision.action in CHANGES:
                changes.append(decision)
        assert len(changes) == 1, [d.reason for d in changes]
        assert same_point(state.music_for, changes[0].target)


def test_small_move_keeps_the_music():
    state = settled_on("calm")
    state, decision = on_photo(state, word("serene"), 40.0, FOLLOW, P)  # 0.29 from calm
    assert decision.action == Action.KEEP and state.moved_since is None
    assert same_point(decision.target, word("calm"))
    assert "within 0.35" in decision.reason
    state, changed, _ = tick_until_change(state, 41.0, 300.0)
    assert changed is None and same_point(state.music_for, word("calm"))


# ---------------------------------------------------------------- hysteresis and dwell

def test_slow_drift_changes_exactly_after_the_dwell():
    calm, tender = word("calm"), word("tender")
    state = settled_on("calm", until=0.0)
    t, f = 0.0, 0.0
    while state.moved_since is None:
        t, f = t + 10.0, f + 0.05
        assert f <= 1.0, "the smoothed mood never left the threshold"
        state, decision = on_photo(state, between(calm, tender, f), t, FOLLOW, P)
        assert decision.action == Action.KEEP
    assert state.moved_since == t and t > P.min_interval_s
    assert state.volatility < P.threshold  # a drift is not a disagreeing slideshow: no stretched dwell
    state, decision = on_tick(state, t + P.dwell_s - 0.1, FOLLOW, P)
    assert decision.action == Action.KEEP and "of 15 s" in decision.reason
    state, decision = on_tick(state, t + P.dwell_s, FOLLOW, P)
    assert decision.action == Action.PLAY_NOW  # follow mode: heard at once
    # The target is the mean of the photos shown while moved: here the one photo at t.
    assert same_point(decision.target, between(calm, tender, f))
    assert state.music_for == decision.target and state.last_change == t + P.dwell_s
    assert state.moved_since is None


def test_a_moved_mood_changes_the_music_on_tick_without_a_new_photo():
    state = settled_on("calm")
    state, decision = on_photo(state, word("tender"), 40.0, FOLLOW, P)  # 0.76 from calm: no jump
    assert decision.action == Action.KEEP and state.moved_since == 40.0
    stretched = P.dwell_s * max(1.0, state.volatility / P.threshold)
    state, decision, when = tick_until_change(state, 41.0, 200.0)
    assert decision is not None and when is not None
    assert 40.0 + P.dwell_s <= when <= 40.0 + stretched + 1.0
    assert decision.action == Action.PLAY_NOW
    assert same_point(decision.target, word("tender"))
    assert decision.reason.startswith("mood moved 0.46 from calm for ")
    assert decision.reason.endswith("→ play tender tracks now")


def test_coming_back_inside_resets_the_dwell():
    state = settled_on("calm")
    state, _ = on_photo(state, word("tender"), 40.0, FOLLOW, P)
    assert state.moved_since == 40.0
    state, decision = on_photo(state, word("calm"), 50.0, FOLLOW, P)
    assert state.moved_since is None and decision.action == Action.KEEP
    state, changed, _ = tick_until_change(state, 51.0, 400.0)
    assert changed is None and same_point(state.music_for, word("calm"))


def test_no_change_closer_than_the_minimum_interval():
    params = replace(P, dwell_s=0.0, min_interval_s=60.0)
    state, _ = on_photo(FollowState.initial(), word("calm"), 0.0, FOLLOW, params)
    state, decision = on_photo(state, word("tender"), 10.0, FOLLOW, params)
    assert decision.action == Action.KEEP and "min 60 s" in decision.reason
    state, decision = on_tick(state, 59.9, FOLLOW, params)
    assert decision.action == Action.KEEP
    state, decision = on_tick(state, 60.0, GENTLE, params)
    assert decision.action == Action.QUEUE_NEXT and same_point(decision.target, word("tender"))


def test_a_dwell_change_plays_now_in_follow_mode_only():
    # Photos that disagreed before (high volatility): the far photo is no jump, the dwell decides.
    for mode, action in ((FOLLOW, Action.PLAY_NOW), (GENTLE, Action.QUEUE_NEXT)):
        state = FollowState(smoothed=word("calm"), music_for=word("calm"), last_change=0.0, volatility=2.0)
        t, decision = 100.0, None
        state, first = on_photo(state, word("angry"), t, mode, P)
        assert first.action == Action.KEEP
        while decision is None or decision.action not in CHANGES:
            t += 10.0
            assert t < 300.0
            state, decision = on_photo(state, word("angry"), t, mode, P)
        assert decision.action == action and same_point(decision.target, word("angry"))
        assert decision.reason.startswith("mood moved")


# ---------------------------------------------------------------- jumps

@pytest.mark.parametrize(("mode", "action"), [(FOLLOW, Action.PLAY_NOW), (GENTLE, Action.QUEUE_NEXT)])
def test_a_confident_far_photo_after_steady_ones_is_a_jump(mode, action):
    state = settled_on("calm", mode=mode)
    state, decision = on_photo(state, word("angry", 0.9), 40.0, mode, P)
    assert decision.action == action
    assert decision.target == word("angry", 0.9)
    assert state.music_for == word("angry", 0.9) and state.last_change == 40.0
    assert state.smoothed == word("angry", 0.9)  # the music now stands for the photo on show
    assert "jumped 2.17 from calm to angry" in decision.reason


def test_off_mode_publishes_a_far_photo_and_keeps_tracking():
    state = settled_on("calm")
    state, decision = on_photo(state, word("angry"), 40.0, OFF, P)
    assert decision.action == Action.PUBLISH_ONLY
    assert same_point(decision.target, between(word("calm"), word("angry"), 0.6))
    assert same_point(state.smoothed, decision.target) and same_point(state.music_for, word("calm"))
    assert state.last_change == 0.0  # the first photo's change, nothing since


def test_a_low_confidence_far_photo_is_no_jump():
    state = settled_on("calm")
    state, decision = on_photo(state, word("angry", 0.4), 40.0, FOLLOW, P)
    assert decision.action == Action.KEEP
    assert same_point(state.music_for, word("calm"))
    assert same_point(state.smoothed, between(word("calm"), word("angry"), 1 - 0.4 ** 0.4), tol=1e-6)


def test_no_jump_while_photos_disagree():
    state = FollowState(smoothed=word("calm"), music_for=word("calm"), last_change=0.0, volatility=1.0)
    state, decision = on_photo(state, word("angry"), 100.0, FOLLOW, P)
    assert decision.action == Action.KEEP and state.jump_pending is None


def test_jumps_can_be_turned_off():
    params = replace(P, jump=3.0)
    state, _ = on_photo(FollowState.initial(), word("calm"), 0.0, FOLLOW, params)
    state, decision = on_photo(state, word("angry"), 100.0, FOLLOW, params)
    assert decision.action == Action.KEEP


def test_a_jump_held_back_by_the_interval_fires_when_it_allows():
    state, _ = on_photo(FollowState.initial(), word("calm"), 0.0, FOLLOW, P)
    state, decision = on_photo(state, word("angry"), 10.0, FOLLOW, P)
    assert decision.action == Action.KEEP and state.jump_pending == word("angry")
    state, decision = on_photo(state, word("angry", 0.9), 20.0, FOLLOW, P)  # the same scene: still pending
    assert decision.action == Action.KEEP and state.jump_pending == word("angry", 0.9)
    state, decision, when = tick_until_change(state, 21.0, 100.0)
    assert when == P.min_interval_s
    assert decision is not None and decision.action == Action.PLAY_NOW
    assert decision.target == word("angry", 0.9) and state.jump_pending is None


def test_a_held_back_jump_is_cancelled_by_a_photo_that_disagrees():
    state, _ = on_photo(FollowState.initial(), word("calm"), 0.0, FOLLOW, P)
    state, _ = on_photo(state, word("angry"), 10.0, FOLLOW, P)
    state, _ = on_photo(state, word("calm"), 20.0, FOLLOW, P)
    assert state.jump_pending is None
    state, decision = on_tick(state, 30.0, FOLLOW, P)
    assert decision.action == Action.KEEP


# ---------------------------------------------------------------- off, ticks, force

def test_off_mode_never_touches_the_music_and_follow_resumes():
    state = FollowState.initial()
    for i, name in enumerate(["calm", "angry", "joyful", "angry", "angry"]):
        state, decision = on_photo(state, word(name), 10.0 * i, OFF, P)
        assert decision.action == Action.PUBLISH_ONLY
        assert decision.target == state.smoothed and state.music_for is None
        assert "follow off" in decision.reason
    state, decision = on_tick(state, 100.0, OFF, P)
    assert decision.action == Action.KEEP
    smoothed = state.smoothed
    state, decision = on_tick(state, 101.0, FOLLOW, P)
    assert decision.action == Action.QUEUE_NEXT and decision.target == smoothed
    assert state.music_for == smoothed and state.last_change == 101.0


def test_tick_before_any_photo_keeps():
    state, decision = on_tick(FollowState.initial(), 5.0, FOLLOW, P)
    assert state == FollowState.initial() and decision.action == Action.KEEP
    assert decision.target.confidence == 0.0


def test_force_requeues_for_the_smoothed_mood_ignoring_dwell_and_interval():
    state, decision = force(FollowState.initial(), 1.0)
    assert decision.action == Action.KEEP
    state, _ = on_photo(FollowState.initial(), word("calm"), 0.0, FOLLOW, P)
    state, _ = on_photo(state, word("tender"), 5.0, FOLLOW, P)
    state, decision = force(state, 6.0)
    assert decision.action == Action.QUEUE_NEXT and decision.target == state.smoothed
    assert state.music_for == state.smoothed and state.last_change == 6.0
    assert "re-applied by user" in decision.reason
    _, decision = force(state, 7.0, play_now=True)
    assert decision.action == Action.PLAY_NOW


def test_state_is_immutable_and_calls_are_deterministic():
    state = settled_on("calm")
    a = on_photo(state, word("tender"), 40.0, FOLLOW, P)
    b = on_photo(state, word("tender"), 40.0, FOLLOW, P)
    assert a == b
    with pytest.raises(AttributeError):
        state.smoothed = None  # type: ignore[misc]


# ---------------------------------------------------------------- slideshows must not thrash

def run_slideshow(photos, period: float, minutes: float, mode: FollowMode,
                  start: FollowState | None = None) -> tuple[FollowState, list[tuple[float, Decision]]]:
    """Photos every `period` s, the loop ticking every second; returns every music change."""
    state, changes = start or FollowState.initial(), []
    for second in range(int(minutes * 60)):
        t = float(second)
        if second % period == 0:
            state, decision = on_photo(state, photos(int(second // period)), t, mode, P)
        else:
            state, decision = on_tick(state, t, mode, P)
        if decision.action in CHANGES:
            changes.append((t, decision))
    return state, changes


@pytest.mark.parametrize("mode", [FOLLOW, GENTLE])
@pytest.mark.parametrize(("a", "b"), [("calm", "joyful"), ("calm", "angry"), ("serene", "tense"),
                                      ("gloomy", "excited")])
def test_alternating_slideshow_settles_on_the_average(a, b, mode):
    ma, mb = word(a), word(b)
    state, changes = run_slideshow(lambda i: ma if i % 2 == 0 else mb, 10, 10, mode)
    times = [t for t, _ in changes]
    assert all(later - earlier >= P.min_interval_s for earlier, later in itertools.pairwise(times))
    # The first photo, then at most two moves towards the middle; quiet after the first two minutes.
    assert len(changes) <= 3, [d.reason for _, d in changes]
    assert all(t < 120.0 for t in times)
    assert state.music_for is not None
    assert state.music_for.distance(between(ma, mb, 0.5)) < 0.2


def test_calm_joyful_slideshow_every_10_s_for_10_minutes():
    """The case from the brief, spelled out: 60 photos, calm/joyful/calm/..., ticks every second."""
    calm, joyful = word("calm"), word("joyful")
    state, changes = run_slideshow(lambda i: calm if i % 2 == 0 else joyful, 10, 10, FOLLOW)
    assert len(changes) == 2
    assert changes[0][1].reason.startswith("first photo")
    assert state.music_for is not None
    assert state.music_for.distance(between(calm, joyful, 0.5)) < 0.15


def test_swinging_around_the_music_keeps_it():
    calm, angry = word("calm"), word("angry")
    middle = between(calm, angry, 0.5)
    start = FollowState(smoothed=middle, music_for=middle, last_change=0.0)
    state, changes = run_slideshow(lambda i: calm if i % 2 == 0 else angry, 5, 5, FOLLOW, start)
    assert changes == []
    assert same_point(state.music_for, middle)


def test_noisy_varied_slideshow_changes_rarely():
    rng = random.Random(7)
    names = ["calm", "joyful", "serene", "tender"]

    def photo(i: int) -> Mood:
        base = word(names[i % len(names)])
        return Mood.clipped(base.valence + rng.uniform(-0.1, 0.1), base.arousal + rng.uniform(-0.1, 0.1),
                            rng.uniform(0.5, 0.95))

    _, changes = run_slideshow(photo, 10, 10, FOLLOW)
    assert len(changes) <= 600 / P.min_interval_s / 4, [d.reason for _, d in changes]


# ---------------------------------------------------------------- parameters

@pytest.mark.parametrize(("kwargs", "message"), [
    ({"smoothing": 0.0}, "smoothing must lie in (0, 1]"),
    ({"smoothing": 1.5}, "smoothing must lie in (0, 1]"),
    ({"smoothing": "0.5"}, "smoothing must be a number"),
    ({"threshold": 0.0}, "threshold must lie in"),
    ({"threshold": 3.0, "jump": 3.5}, "threshold must lie in"),
    ({"threshold": math.nan}, "threshold must be a number"),
    ({"threshold": 0.35, "jump": 0.2}, "jump (0.2) must be >= threshold (0.35)"),
    ({"dwell_s": -1.0}, "dwell_s must be a finite number >= 0"),
    ({"dwell_s": math.inf}, "dwell_s must be a finite number >= 0"),
    ({"min_interval_s": -5}, "min_interval_s must be a finite number >= 0"),
    ({"dwell_s": True}, "dwell_s must be a number"),
])
def test_params_validation(kwargs, message):
    with pytest.raises(ValueError) as excinfo:
        FollowParams(**kwargs)
    assert message in str(excinfo.value)


def test_params_edges_are_valid():
    FollowParams(smoothing=1.0, dwell_s=0.0, min_interval_s=0.0, jump=10.0)
    FollowParams(threshold=0.5, jump=0.5)
    assert FollowMode("gentle") is FollowMode.GENTLE and str(Action.PLAY_NOW) == "play_now"
