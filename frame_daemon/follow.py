"""When the music should change: the follow policy, a pure state machine over photo moods and time.

The loop feeds every scored photo to `on_photo`, calls `on_tick` periodically, and `force` on a user's
"re-apply" command; each returns the next `FollowState` and a `Decision` saying what to do with the
music. Nothing here reads a clock or does I/O: `now` (seconds, monotonic) is passed in.

The policy, in the order it is applied:
- **Smoothing.** `smoothed` is an exponential moving average of the photo moods. A photo counts as
  `confidence` of a whole observation: its weight is `1 - (1 - smoothing) ** confidence`, so a fully
  confident photo moves the mood by `smoothing`, a doubtful one less, and `smoothing = 1` means no
  smoothing at all (every photo with any confidence replaces the mood).
- **First mood.** With no music chosen yet (first photo, or follow switched back on), queue for the
  smoothed mood (QUEUE_NEXT, also in FOLLOW mode: nothing was playing for a photo to interrupt).
- **Hysteresis.** The music changes when the smoothed mood stays at least `threshold` away from the
  mood the music was chosen for (`music_for`) for `dwell_s`; coming back inside resets the wait. The
  new target is the confidence-weighted mean of the photos shown while it stayed away, so a slideshow
  that alternates between moods lands on their average, not on whichever photo happened to be last.
- **Varied slideshows.** `volatility` is a moving average (weight VOLATILITY_WEIGHT, by confidence as
  above) of how far each photo lands from the smoothed mood. While photos disagree with each other
  the dwell stretches by `volatility / threshold` (never shrinks), so the music follows the
  slideshow's average instead of each photo.
- **Jumps.** A confident photo (confidence >= 0.5) at least `jump` away from `music_for`, arriving after
  photos that agreed with each other (volatility < threshold), is a scene change: it skips the dwell.
  Jumps are not taken while photos disagree: in an alternating slideshow every photo is "far" from
  the last one.
- **One decision per change.** Every change snaps the smoothed mood to the target it chose, since the
  music now stands for it: without a new photo nothing can move the mood again, so one photo never
  causes a second change a moment after the first.
- **Modes.** FOLLOW plays every change now (PLAY_NOW: the loop fades the current track out and starts
  the new music); GENTLE queues it after the current track (QUEUE_NEXT). The first music for a
  photo is always QUEUE_NEXT: nothing was chosen before it for it to interrupt.
- **Minimum interval.** No two changes, jumps included, come closer than `min_interval_s`: bypassing
  the dwell is what makes a jump quick, and letting it bypass the interval too would let a slideshow
  of far-apart photos rewrite the queue with every photo. A jump held back by the interval is not
  lost: it stays pending while the photos that follow agree with it (within `threshold`) and fires
  at the first tick or photo the interval allows; a photo that disagrees cancels it.
- **Off.** OFF publishes the mood (PUBLISH_ONLY) and keeps tracking it, but never touches the music.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum

from frame_daemon.mood import NO_MOOD, Mood

# Below this a photo can move the smoothed mood but never count as a scene change on its own.
JUMP_MIN_CONFIDENCE = 0.5
# EMA weight of a fully confident photo in `volatility`: about the last three photos count.
VOLATILITY_WEIGHT = 0.4
# The farthest two points of the plane can be apart.
MAX_DISTANCE = 2 * math.sqrt(2)


class FollowMode(StrEnum):
    """How closely the music follows the photo."""

    FOLLOW = "follow"  # every change is heard at once: fade out, play the new music
    GENTLE = "gentle"  # always let the current track finish
    OFF = "off"  # publish the mood, leave the music alone


class Action(StrEnum):
    """What the loop should do with the music."""

    KEEP = "keep"
    QUEUE_NEXT = "queue_next"  # queue matching tracks after the current one, let it finish
    PLAY_NOW = "play_now"  # queue matching tracks and skip to them
    PUBLISH_ONLY = "publish_only"  # follow is off: publish the mood, touch nothing


@dataclass(frozen=True, slots=True)
class FollowParams:
    """Tuning of the follow policy.

    The defaults were chosen by simulating slideshows of the OASIS development photos (random,
    themed and alternating order, 10-60 s per photo) through this policy: `scripts/tune_follow.py`
    prints the table; docs/follow-tuning.md explains the choice.
    """

    smoothing: float = 1.0  # EMA weight of a new, fully confident photo (0 < w <= 1; 1 = none)
    threshold: float = 0.45  # plane distance the smoothed mood must move from `music_for`
    dwell_s: float = 15.0  # how long it must stay moved
    jump: float = 0.9  # distance of a single photo from `music_for` that counts as a jump
    min_interval_s: float = 60.0  # no two changes closer than this

    def __post_init__(self) -> None:
        for name in ("smoothing", "threshold", "dwell_s", "jump", "min_interval_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
                raise ValueError(f"FollowParams.{name} must be a number, got {value!r}")
        if not 0.0 < self.smoothing <= 1.0:
            raise ValueError(f"FollowParams.smoothing must lie in (0, 1], got {self.smoothing}")
        if not 0.0 < self.threshold <= MAX_DISTANCE:
            raise ValueError(f"FollowParams.threshold must lie in (0, {MAX_DISTANCE:.2f}], "
                             f"got {self.threshold}")
        if self.jump < self.threshold:
            raise ValueError(f"FollowParams.jump ({self.jump}) must be >= threshold ({self.threshold}); "
                             f"use a value above {MAX_DISTANCE:.2f} to turn jumps off")
        if not 0.0 <= self.dwell_s < math.inf:
            raise ValueError(f"FollowParams.dwell_s must be a finite number >= 0, got {self.dwell_s}")
        if not 0.0 <= self.min_interval_s < math.inf:
            raise ValueError(f"FollowParams.min_interval_s must be a finite number >= 0, "
                             f"got {self.min_interval_s}")


@dataclass(frozen=True, slots=True)
class FollowState:
    """Everything the policy remembers between calls."""

    smoothed: Mood | None = None  # moving average of the photo moods; None before the first photo
    music_for: Mood | None = None  # the mood the queued music was chosen for; None before any
    moved_since: float | None = None  # when `smoothed` last left the threshold around `music_for`
    last_change: float | None = None  # when the music last changed
    volatility: float = 0.0  # moving average of how far each photo landed from `smoothed`
    moved_mean: Mood | None = None  # confidence-weighted mean of the photos since `moved_since`
    moved_weight: float = 0.0  # sum of those photos' confidences
    jump_pending: Mood | None = None  # a jump the minimum interval held back, while its scene stays

    @classmethod
    def initial(cls) -> FollowState:
        return cls()


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with the music, for which mood, and one line saying why."""

    action: Action
    target: Mood  # what to select tracks for (for KEEP: what the music is already for)
    reason: str


DEFAULT_PARAMS = FollowParams()


def on_photo(state: FollowState, mood: Mood, now: float, mode: FollowMode,
             params: FollowParams = DEFAULT_PARAMS) -> tuple[FollowState, Decision]:
    """A new photo is on show with this mood at time `now`."""
    prior = state.smoothed
    if prior is None:
        smoothed, volatility = mood, 0.0
    else:
        weight = photo_weight(params.smoothing, mood.confidence)
        # Its own memory of a few photos, whatever `smoothing` is: with smoothing 1 the mood has
        # none, but one far photo after agreeing ones must not look like a disagreeing slideshow.
        spread = photo_weight(VOLATILITY_WEIGHT, mood.confidence)
        volatility = state.volatility + spread * (mood.distance(prior) - state.volatility)
        confidence = prior.confidence + params.smoothing * (mood.confidence - prior.confidence)
        smoothed = _lerp(prior, mood, weight, confidence=confidence)
    # The photos before this one agreed with each other: only then can this one be a scene change.
    settled = state.volatility < params.threshold
    state = _track_moved(replace(state, smoothed=smoothed, volatility=volatility), now, params, mood)

    if mode == FollowMode.OFF:
        state = replace(state, jump_pending=None)
        return state, Decision(Action.PUBLISH_ONLY, smoothed,
                               f"follow off: mood {_describe(smoothed)} published only")
    if state.music_for is None:
        return _change(state, smoothed, now, Action.QUEUE_NEXT,
                       f"first photo: {_describe(smoothed)} → queue {smoothed.word} tracks")

    jumped = mood.distance(state.music_for)
    is_jump = jumped >= params.jump and mood.confidence >= JUMP_MIN_CONFIDENCE
    # A jump counts after photos that agreed with each other, or as the same scene as a jump that
    # the minimum interval held back.
    confirms = state.jump_pending is not None and mood.distance(state.jump_pending) < params.threshold
    if not (is_jump and (settled or confirms)):
        return _dwell_decision(replace(state, jump_pending=None), now, mode, params)
    if not _interval_ok(state, now, params):
        state = replace(state, jump_pending=mood)
        return _dwell_decision(state, now, mode, params)
    return _jump(state, mood, now, mode)


def _jump(state: FollowState, photo: Mood, now: float,
          mode: FollowMode) -> tuple[FollowState, Decision]:
    assert state.music_for is not None
    jumped = photo.distance(state.music_for)
    action = Action.PLAY_NOW if mode == FollowMode.FOLLOW else Action.QUEUE_NEXT
    verb = "play" if action is Action.PLAY_NOW else "queue"
    return _change(state, photo, now, action,
                   f"photo jumped {jumped:.2f} from {state.music_for.word} to {photo.word} "
                   f"→ {verb} {photo.word} tracks{' now' if verb == 'play' else ''}")


def on_tick(state: FollowState, now: float, mode: FollowMode,
            params: FollowParams = DEFAULT_PARAMS) -> tuple[FollowState, Decision]:
    """Time passed without a new photo: a mood that moved and stayed moved changes the music."""
    if state.smoothed is None:
        return state, Decision(Action.KEEP, NO_MOOD, "no photo yet → keep")
    state = _track_moved(state, now, params, None)
    if mode == FollowMode.OFF:
        # Nothing new to publish: the mood only changes with a photo.
        return state, Decision(Action.KEEP, state.smoothed, "follow off → keep")
    if state.music_for is None:
        return _change(state, state.smoothed, now, Action.QUEUE_NEXT,
                       f"follow on again: {_describe(state.smoothed)} → queue {state.smoothed.word} tracks")
    if state.jump_pending is not None and _interval_ok(state, now, params):
        return _jump(state, state.jump_pending, now, mode)
    return _dwell_decision(state, now, mode, params)


def force(state: FollowState, now: float, *, play_now: bool = False) -> tuple[FollowState, Decision]:
    """The user asked to re-apply the photo's mood now: queue for the smoothed mood, whatever the mode.

    Ignores the dwell and the minimum interval (a person asked); `play_now` skips to the new tracks.
    """
    if state.smoothed is None:
        return state, Decision(Action.KEEP, NO_MOOD, "re-apply asked, but no photo yet → keep")
    action = Action.PLAY_NOW if play_now else Action.QUEUE_NEXT
    verb = "play" if play_now else "queue"
    return _change(state, state.smoothed, now, action,
                   f"re-applied by user: {_describe(state.smoothed)} → {verb} {state.smoothed.word} tracks"
                   f"{' now' if play_now else ''}")


def _dwell_decision(state: FollowState, now: float, mode: FollowMode,
                    params: FollowParams) -> tuple[FollowState, Decision]:
    """The hysteresis rule, for a state whose `moved_since` is up to date."""
    assert state.smoothed is not None and state.music_for is not None
    music_for = state.music_for
    moved = state.smoothed.distance(music_for)
    if state.moved_since is None:
        return state, Decision(Action.KEEP, music_for, f"mood {moved:.2f} from {music_for.word}, "
                                                       f"within {params.threshold:.2f} → keep")
    held = now - state.moved_since
    needed = params.dwell_s * max(1.0, state.volatility / params.threshold)
    if held < needed:
        return state, Decision(Action.KEEP, music_for,
                               f"mood moved {moved:.2f} from {music_for.word} for {held:.0f} s "
                               f"of {needed:.0f} s → keep")
    if not _interval_ok(state, now, params):
        assert state.last_change is not None
        return state, Decision(Action.KEEP, music_for,
                               f"mood moved {moved:.2f} from {music_for.word}, but music changed "
                               f"{now - state.last_change:.0f} s ago (min {params.min_interval_s:.0f} s) "
                               f"→ keep")
    target = state.moved_mean if state.moved_mean is not None and state.moved_weight > 0 else state.smoothed
    target = Mood(target.valence, target.arousal, state.smoothed.confidence)
    if target.distance(music_for) < params.threshold:
        # The smoothed mood swings to either side of the music (photos alternating between far moods),
        # but on average it stayed put: re-queueing for the same place would only churn the queue.
        state = replace(state, moved_since=now, moved_mean=None, moved_weight=0.0)
        return state, Decision(Action.KEEP, music_for,
                               f"mood swings {moved:.2f} around {music_for.word}, but its average stayed "
                               f"{target.distance(music_for):.2f} from it → keep")
    action = Action.PLAY_NOW if mode == FollowMode.FOLLOW else Action.QUEUE_NEXT
    verb = "play" if action is Action.PLAY_NOW else "queue"
    return _change(state, target, now, action,
                   f"mood moved {moved:.2f} from {music_for.word} for {held:.0f} s → {verb} "
                   f"{target.word} tracks{' now' if verb == 'play' else ''}")


def _track_moved(state: FollowState, now: float, params: FollowParams,
                 photo: Mood | None) -> FollowState:
    """Start, extend or end the stretch during which `smoothed` is away from `music_for`."""
    if state.smoothed is None or state.music_for is None \
            or state.smoothed.distance(state.music_for) < params.threshold:
        return replace(state, moved_since=None, moved_mean=None, moved_weight=0.0)
    if state.moved_since is None:
        state = replace(state, moved_since=now, moved_mean=None, moved_weight=0.0)
    if photo is None:
        return state
    total = state.moved_weight + photo.confidence
    if state.moved_mean is None or total <= 0.0:
        return replace(state, moved_mean=photo, moved_weight=total)
    mean = _lerp(state.moved_mean, photo, photo.confidence / total, confidence=state.moved_mean.confidence)
    return replace(state, moved_mean=mean, moved_weight=total)


def _change(state: FollowState, target: Mood, now: float, action: Action,
            reason: str) -> tuple[FollowState, Decision]:
    # The music now stands for `target`: the smoothed mood starts from there, so that only a new
    # photo can move it again (one decision per change, never a second one a tick later).
    state = replace(state, smoothed=target, music_for=target, last_change=now, moved_since=None,
                    moved_mean=None, moved_weight=0.0, jump_pending=None)
    return state, Decision(action, target, reason)


def photo_weight(smoothing: float, confidence: float) -> float:
    """A photo's EMA weight: it counts as `confidence` of a whole observation of weight `smoothing`."""
    if confidence <= 0.0:
        return 0.0
    return 1.0 - (1.0 - smoothing) ** confidence


def _interval_ok(state: FollowState, now: float, params: FollowParams) -> bool:
    return state.last_change is None or now - state.last_change >= params.min_interval_s


def _lerp(a: Mood, b: Mood, weight: float, *, confidence: float) -> Mood:
    # Clipped: a convex combination stays on the plane, but rounding can stray by an ulp.
    return Mood.clipped(a.valence + weight * (b.valence - a.valence),
                        a.arousal + weight * (b.arousal - a.arousal), confidence)


def _describe(mood: Mood) -> str:
    return f"{mood.word} (v {mood.valence:.2f}, a {mood.arousal:.2f})"
