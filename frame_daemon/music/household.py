"""Which frame of a household steers the shared MPD: a pure state machine over presences and time.

Frames whose MPD is the same form a group. Each frame says, in one retained `Presence` on the
group's topic, when its photo last changed, its mood, who it believes steers, and (the steerer)
until when it holds the music and which queue entries are its own. Nothing here reads a clock or
does I/O: `now` (wall-clock seconds, shared by the frames through NTP) is passed in, and every
call returns the next `HouseholdState` and a `Verdict` with its reason.

The rules, in the order they are applied:
- **One steerer.** Only the steerer edits the queue. The frame whose photo changed last is the one
  that *should* steer (`wanted`; ties go to the smaller device id, so every frame agrees).
- **No ping-pong.** The steerer holds the music until `hold_until` (its own `follow.min_interval_s`
  after it took it). A frame that should steer *claims*; the steerer acknowledges the claim (its
  presence then names the claimant as steerer, with its queue entries) only once its hold is over.
  A steerer that no longer follows its photo (a person took over the music, or following was
  switched off: `on_following`) holds it no longer: it answers a claim at once.
  The claimant takes over on that acknowledgement, or when the steerer stays silent for
  HANDOVER_TIMEOUT_S after its hold: a hung steerer cannot hold the music for ever.
- **No interleaved edits.** The old steerer stops editing when it acknowledges; the new one starts
  only after it has read that acknowledgement, so two frames never edit at once.
- **Death.** A frame's Last Will clears its presence (`on_gone`). If it steered, the frame that
  should steer among the rest takes over at once. A Will can be lost (the broker restarted while
  the frame was gone): each frame says its presence again every `household.heartbeat_s`, with a
  new `said_at`, and one not heard from for SILENT_BEATS times as long is gone all the same
  (`silent`; judged by when *this* frame heard it, never by the other's clock).
- **Joining.** A frame that just joined waits JOIN_S for the others' retained presences before it
  takes music nobody holds; two frames that still both steered (a broker slow to deliver) settle
  it at once: the one that took the music first keeps it.
- **Blend.** With `steer = "blend"` the music is for the confidence-weighted mean of the moods
  of every frame that follows its photo (`target`), whoever steers: so a photo that changes does
  not take the music, it only moves the blend, and the steerer follows the blend by its own
  follow rules (its threshold, and no two changes within its `min_interval_s`). The steerer
  changes only when it dies, or no longer follows its photo: then the frame whose photo changed
  last takes the music, as with `last`. Every frame of a group should use the same `steer`;
  while one says otherwise (its presence carries its `steer`), the group plays by `last`
  (`HouseholdState.steer`): a blend steerer never answers a claim, so a `last` frame would take
  the music by time-out, hand it back to the frame that took it first, and claim it again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from frame_daemon.mood import Mood

# How long a claimant waits, after the steerer's hold is over, for its acknowledgement.
HANDOVER_TIMEOUT_S = 3.0
# How long a frame that just joined waits for the others' retained presences.
JOIN_S = 1.0
# Who steers is decided by the frames' wall clocks: a frame whose clock seems further off than
# this is named in the log and in `error` (a clock behind never takes the music; one ahead is
# taken as now by `believable`, but is wrong all the same).
CLOCK_SKEW_S = 30.0
# How long a cleared presence waits before the frame is taken for gone: a broker that shuts down
# sends every frame's Last Will just before our own connection drops.
GONE_GRACE_S = 1.0
# The longest hold a frame can have: the config's limit on follow.min_interval_s.
MAX_HOLD_S = 3600.0
# A presence is a few KB (a steerer names its queue entries: queue_keeper.MAX_REMEMBERED, 500):
# anything far bigger is not one, and is refused before it is parsed on the loop.
MAX_PRESENCE_BYTES = 4 * 1024 * 1024
MAX_ENTRIES = 1000
# Frames a household keeps track of: a photo wall is a dozen. Each presence costs a look at every
# member, so thousands (a script publishing under the group's topic) would stall the loop, and
# stay retained on the broker to stall every start.
MAX_MEMBERS = 64
# A member not heard from for this many heartbeats is taken for gone: two beats may be lost.
SILENT_BEATS = 3


class Steer(StrEnum):
    """What the group's music is for."""

    LAST = "last"  # the photo that changed last
    BLEND = "blend"  # the blend of every frame's mood


@dataclass(frozen=True, slots=True)
class Presence:
    """What one frame says on the group's topic (retained; its Last Will clears it)."""

    device_id: str
    changed_at: float = 0.0  # when its photo last changed (0: no photo yet)
    mood: Mood | None = None  # its photo's mood
    steerer: str = ""  # who it believes steers ("" none known)
    since: float = 0.0  # when that steerer took the music
    hold_until: float = 0.0  # the steerer's: no hand-over before this
    claim: bool = False  # it asks the steerer for the music
    handed_to: str = ""  # the old steerer's acknowledgement: it handed the music to this frame
    entries: tuple[tuple[int, str], ...] = ()  # the steerer's queue entries (MPD id, uri)
    following: bool = True  # it follows its photo (not switched off, not suspended)
    # When it said this, by its own clock: only ever compared for a change (a sign of life; the
    # broker re-delivers an old retained presence unchanged). 0: sends no heartbeat (older version).
    said_at: float = 0.0
    steer: str = ""  # its household.steer ("": an older version, which does not say)

    def to_json(self) -> dict[str, Any]:
        mood = self.mood
        return {"device_id": self.device_id, "changed_at": round(self.changed_at, 3),
                "mood": None if mood is None else [round(mood.valence, 4), round(mood.arousal, 4),
                                                   round(mood.confidence, 4)],
                "steerer": self.steerer, "since": round(self.since, 3),
                "hold_until": round(self.hold_until, 3), "claim": self.claim,
                "handed_to": self.handed_to, "entries": [list(e) for e in self.entries],
                "following": self.following, "said_at": round(self.said_at, 3),
                "steer": self.steer}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Presence:
        """Raises ValueError (or KeyError, TypeError) for a payload that is not a presence."""
        mood = data.get("mood")

        def time_of(key: str, required: bool = False) -> float:
            # NaN would compare false with every other frame's time, Infinity win every election.
            value = float(data[key] if required else data.get(key, 0.0))
            if not math.isfinite(value):
                raise ValueError(f"{key} is not a finite number: {value}")
            return value

        numbers = None if mood is None else (float(mood[0]), float(mood[1]), float(mood[2]))
        if numbers is not None and not all(math.isfinite(x) for x in numbers):
            # Clipped, NaN would become a fully confident corner of the plane: the blend's pull.
            raise ValueError(f"mood is not three finite numbers: {mood}")
        return cls(device_id=str(data["device_id"]), changed_at=time_of("changed_at", required=True),
                   mood=None if numbers is None else Mood.clipped(*numbers),
                   steerer=str(data.get("steerer", "")), since=time_of("since"),
                   hold_until=time_of("hold_until"),
                   claim=bool(data.get("claim", False)),
                   handed_to=str(data.get("handed_to", "")),
                   entries=_entries(data.get("entries", ())),
                   following=bool(data.get("following", True)), said_at=time_of("said_at"),
                   steer=str(data.get("steer", ""))[:16])

    @classmethod
    def parse(cls, payload: bytes) -> Presence:
        """A presence from the group's topic; ValueError (or KeyError, TypeError, IndexError) for
        anything else: any client of the broker may publish there."""
        if len(payload) > MAX_PRESENCE_BYTES:
            raise ValueError(f"{len(payload)} bytes is too big for a presence")
        try:
            data = json.loads(payload)
            if not isinstance(data, dict):
                raise ValueError(f"expected a JSON object, got {type(data).__name__}")
            return cls.from_json(data)
        except (RecursionError, OverflowError) as exc:  # nested too deep; an infinite queue id
            raise ValueError(str(exc)) from None


def _entries(value: Any) -> tuple[tuple[int, str], ...]:
    if not isinstance(value, list | tuple) or len(value) > MAX_ENTRIES:
        raise ValueError(f"entries must be a list of at most {MAX_ENTRIES} [id, uri] pairs")
    return tuple((int(i), str(u)) for i, u in value)


def believable(other: Presence, now: float) -> Presence:
    """`other` with its times no later than they can be: a photo change or a take-over in the
    future (a frame whose clock is wrong, or a crafted message) would win every election for ever,
    and a hold past the longest one possible would keep the music from every frame."""
    if other.changed_at <= now and other.since <= now and other.hold_until <= now + MAX_HOLD_S:
        return other
    return replace(other, changed_at=min(other.changed_at, now), since=min(other.since, now),
                   hold_until=min(other.hold_until, now + MAX_HOLD_S))


@dataclass(frozen=True, slots=True)
class HouseholdState:
    """Everything one frame knows of its group."""

    me: str
    joined_at: float
    changed_at: float = 0.0  # my photo's last change
    mood: Mood | None = None
    members: Mapping[str, Presence] = field(default_factory=lambda: MappingProxyType({}))
    steerer: str = ""  # who steers, as far as I know ("" none)
    since: float = 0.0  # when the steerer took the music
    hold_until: float = 0.0  # mine, while I steer
    claiming_since: float | None = None  # when I began to claim the music
    handed_to: str = ""  # whom I handed the music to (my presence says so)
    configured: Steer = Steer.LAST  # my household.steer
    following: bool = True  # my frame follows its photo
    heard: bool = True  # my connection to the group's topic is up

    @property
    def steering(self) -> bool:
        return self.steerer == self.me

    @property
    def steer(self) -> Steer:
        """How the group steers: blend only while no member says otherwise (see the module)."""
        if self.configured is Steer.BLEND and all(
                p.steer in ("", Steer.BLEND) for p in self.members.values()):
            return Steer.BLEND
        return Steer.LAST


class Role(StrEnum):
    STEER = "steer"
    FOLLOW = "follow"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the frame should do now, and one line saying why."""

    role: Role
    steerer: str
    reason: str
    took_over: bool = False  # I just became the steerer: queue for the target now
    released: bool = False  # I just handed the music over: stop editing, hand my entries over
    publish: bool = False  # my presence changed: send it
    from_entries: tuple[tuple[int, str], ...] = ()  # on took_over: the old steerer's entries
    # On took_over: the frame I handed the music to went before it took it, so the entries I
    # handed it are mine again (else they stayed in the queue for good, nobody's to replace).
    reclaim: bool = False


def start(me: str, now: float, steer: Steer = Steer.LAST) -> HouseholdState:
    return HouseholdState(me=me, joined_at=now, configured=steer)


def presence(state: HouseholdState, entries: tuple[tuple[int, str], ...] = (),
             said_at: float = 0.0) -> Presence:
    """My presence; `entries`: my queue entries, sent while I steer; `said_at`: now."""
    steering = state.steering
    return Presence(state.me, state.changed_at, state.mood,
                    steerer=state.steerer, since=state.since,
                    hold_until=state.hold_until if steering else 0.0,
                    claim=state.claiming_since is not None, handed_to=state.handed_to,
                    entries=entries if steering or state.handed_to else (),
                    following=state.following, said_at=said_at, steer=state.configured.value)


def silent(heard_at: Mapping[str, float], listening_since: float, now: float,
           heartbeat_s: float) -> list[str]:
    """The members not heard from for SILENT_BEATS heartbeats: gone, though no Last Will said so.

    `heard_at`: when this frame last heard each member say something new, `listening_since`: since
    when its own connection to the group's topic has been up, both by this frame's clock (so a
    member's clock, however wrong, does not matter; and while this frame hears nothing, nobody's
    silence says anything)."""
    bound = SILENT_BEATS * heartbeat_s
    return [k for k, t in heard_at.items() if now - max(t, listening_since) > bound]


def on_own_photo(state: HouseholdState, mood: Mood, now: float,
                 min_interval_s: float) -> tuple[HouseholdState, Verdict]:
    """My photo changed: I should steer now."""
    state = replace(state, changed_at=now, mood=mood)
    return _settle(state, now, min_interval_s, publish=True)


def clock_skew(before: Presence | None, other: Presence, now: float) -> float | None:
    """How far `other`'s clock seems ahead (> 0) or behind (< 0) of ours, when its presence shows
    it: a photo change stamped in our future, or a new photo change (its time moved on since
    `before`, its last presence) stamped long before it arrived; None when nothing shows a skew
    beyond CLOCK_SKEW_S. A retained presence read at start may be old, so only a new change tells
    a clock behind."""
    if other.changed_at <= 0.0:
        return None
    ahead = other.changed_at - now
    if ahead > CLOCK_SKEW_S:
        return ahead
    if before is not None and other.changed_at > before.changed_at and ahead < -CLOCK_SKEW_S:
        return ahead
    return None


def on_presence(state: HouseholdState, other: Presence, now: float,
                min_interval_s: float) -> tuple[HouseholdState, Verdict]:
    """Another frame's presence arrived (mine, echoed by the broker, is ignored)."""
    if other.device_id == state.me:
        return state, _verdict(state, "my own presence")
    other = believable(other, now)
    members = dict(state.members)
    members[other.device_id] = other
    state = replace(state, members=MappingProxyType(members))
    if other.handed_to == state.me and state.steerer == other.device_id:
        # The steerer acknowledged my claim: the music is mine, and so are its entries.
        state = _take(state, now, min_interval_s)
        return state, Verdict(Role.STEER, state.me, f"{other.device_id} handed the music over",
                              took_over=True, publish=True, from_entries=other.entries)
    if state.handed_to == other.device_id and other.steerer == other.device_id:
        state = replace(state, handed_to="")  # it took what I handed over: my word is done
    if other.steerer == other.device_id and state.steerer != state.me:
        state = replace(state, steerer=other.device_id, since=other.since)
    elif other.device_id == state.steerer and other.handed_to:
        state = replace(state, steerer=other.handed_to, since=other.since)  # it handed over
    elif other.steerer == other.device_id and state.steering and _first(other, state):
        # Two steerers (we both took music nobody held): the one that took it first keeps it.
        return _release(state, other.device_id, now,
                        f"{other.device_id} took the music first")
    return _settle(state, now, min_interval_s)


def full(state: HouseholdState, device_id: str) -> bool:
    """Whether a presence from `device_id` would be one member too many (then it is ignored)."""
    return device_id not in state.members and len(state.members) >= MAX_MEMBERS


def on_following(state: HouseholdState, following: bool, now: float,
                 min_interval_s: float) -> tuple[HouseholdState, Verdict]:
    """My frame stopped following its photo, or follows it again. The hold is there so that
    two slideshows do not toss the music back and forth; a frame that leaves the music alone
    has nothing to hold it for, so its hold ends now (and its presence says so)."""
    state = replace(state, following=following)
    if not following and state.steering and state.hold_until > now:
        state = replace(state, hold_until=now)
    return _settle(state, now, min_interval_s, publish=True)


def on_link(state: HouseholdState, connected: bool, now: float,
            min_interval_s: float) -> tuple[HouseholdState, Verdict]:
    """My connection to the group's topic went down, or is back. Cut off, a steerer's silence
    says nothing (my claim does not reach it, nor its answer me): a claim does not time out. Back,
    my claim goes out again, and the steerer has its full time to answer it."""
    claiming = now if connected and state.claiming_since is not None else state.claiming_since
    state = replace(state, heard=connected, claiming_since=claiming)
    return _settle(state, now, min_interval_s)


def on_gone(state: HouseholdState, device_id: str, now: float,
            min_interval_s: float) -> tuple[HouseholdState, Verdict]:
    """A frame's presence was cleared (its Last Will, or it left)."""
    dead = state.members.get(device_id)
    members = {k: v for k, v in state.members.items() if k != device_id}
    handed = state.handed_to == device_id
    state = replace(state, members=MappingProxyType(members))
    if state.steerer == device_id:
        state = replace(state, steerer="", since=0.0)
        state, verdict = _settle(state, now, min_interval_s, gone=device_id)
        if verdict.took_over:  # its entries are ours to replace now
            verdict = replace(verdict, from_entries=() if dead is None else dead.entries,
                              reclaim=handed)
        return state, verdict
    return _settle(state, now, min_interval_s)


def on_tick(state: HouseholdState, now: float,
            min_interval_s: float) -> tuple[HouseholdState, Verdict]:
    """Time passed: a hold may be over, a claim may have timed out, the join wait may be over."""
    return _settle(state, now, min_interval_s)


def wanted(state: HouseholdState) -> str:
    """Who should steer: the frame whose photo changed last (ties: the smaller device id); with
    `blend`, the steerer as long as it follows its photo."""
    if state.steer is Steer.BLEND:
        steerer = state if state.steering else state.members.get(state.steerer)
        if steerer is not None and steerer.following:
            return state.steerer
    times = {k: v.changed_at for k, v in state.members.items()}
    times[state.me] = state.changed_at
    return max(times, key=lambda k: (times[k], _reverse(k)))


def target(state: HouseholdState, steer: Steer, own: Mood | None) -> Mood | None:
    """What the group's music is for: `own` (my follow policy's mood), or the blend."""
    if steer is Steer.LAST:
        return own
    # A frame that does not follow its photo does not tell its photo's mood (it may be stale).
    moods = [m for m in (state.mood if state.following else None,
                         *(p.mood for p in state.members.values() if p.following)) if m is not None]
    weight = sum(m.confidence for m in moods)
    if not moods or weight <= 0:
        return own
    return Mood.clipped(sum(m.valence * m.confidence for m in moods) / weight,
                        sum(m.arousal * m.confidence for m in moods) / weight,
                        weight / len(moods))


def _settle(state: HouseholdState, now: float, min_interval_s: float, *, publish: bool = False,
            gone: str = "") -> tuple[HouseholdState, Verdict]:
    want = wanted(state)
    if state.steering:
        claimant = state.members.get(want)
        if want != state.me and claimant is not None and claimant.claim and now >= state.hold_until:
            return _release(state, want, now, f"{want}'s photo changed last and my hold is over")
        return state, _verdict(state, "my photo changed last" if want == state.me else
                               f"holding the music until {state.hold_until - now:.0f} s from now",
                               publish)
    steerer = state.members.get(state.steerer)
    if steerer is None:  # nobody holds the music (or it just died)
        if want != state.me:
            state = replace(state, claiming_since=None, steerer="")
            return state, _verdict(state, f"waiting for {want} to take the music"
                                   + (f" ({gone} is gone)" if gone else ""), publish)
        # Even when others spoke already: one that joins at the same moment may not have yet.
        if not gone and now < state.joined_at + JOIN_S:
            return state, _verdict(state, "joining the household: waiting for the others' word",
                                   publish)
        state = _take(state, now, min_interval_s)
        why = (f"{gone} is gone; my photo changed last" if gone
               else "nobody held the music" if state.members else "the only frame")
        return state, Verdict(Role.STEER, state.me, why, took_over=True, publish=True)
    if want != state.me:
        changed = state.claiming_since is not None or publish
        state = replace(state, claiming_since=None)
        return state, _verdict(state, f"following {state.steerer}'s photo", changed)
    if state.claiming_since is None:
        state = replace(state, claiming_since=now)
        return state, _verdict(state, f"claiming the music from {state.steerer}", True)
    if state.heard and now >= max(state.claiming_since, steerer.hold_until) + HANDOVER_TIMEOUT_S:
        old = state.steerer
        state = _take(state, now, min_interval_s)
        return state, Verdict(Role.STEER, state.me, f"{old} did not answer my claim",
                              took_over=True, publish=True, from_entries=steerer.entries)
    return state, _verdict(state, f"claiming the music from {state.steerer}", publish)


def _take(state: HouseholdState, now: float, min_interval_s: float) -> HouseholdState:
    return replace(state, steerer=state.me, since=now, hold_until=now + min_interval_s,
                   claiming_since=None, handed_to="")


def _release(state: HouseholdState, to: str, now: float,
             why: str) -> tuple[HouseholdState, Verdict]:
    state = replace(state, steerer=to, since=now, hold_until=0.0, claiming_since=None,
                    handed_to=to)
    return state, Verdict(Role.FOLLOW, to, f"handed the music to {to}: {why}", released=True,
                          publish=True)


def _first(other: Presence, state: HouseholdState) -> bool:
    """Whether `other` took the music before me (ties: the smaller device id)."""
    return (other.since, other.device_id) < (state.since, state.me)


def _reverse(device_id: str) -> tuple[int, ...]:
    # max() with ties going to the smaller id
    return (*(-ord(c) for c in device_id), 0)


def _verdict(state: HouseholdState, reason: str, publish: bool = False) -> Verdict:
    role = Role.STEER if state.steering else Role.FOLLOW
    return Verdict(role, state.steerer, reason, publish=publish)
