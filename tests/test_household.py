"""The household election (pure): one steerer, hand-over by claim and acknowledgement, no
ping-pong, a dead steerer replaced, blend targets; and a simulated group of frames."""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass, field

import pytest

from frame_daemon.mood import Mood
from frame_daemon.music.household import (
    CLOCK_SKEW_S,
    HANDOVER_TIMEOUT_S,
    JOIN_S,
    HouseholdState,
    Presence,
    Role,
    Steer,
    Verdict,
    clock_skew,
    on_following,
    on_gone,
    on_own_photo,
    on_presence,
    on_tick,
    presence,
    silent,
    start,
    target,
)

HOLD = 60.0
TICK_S = 0.5
CALM, JOYFUL = Mood(0.7, -0.8, 1.0), Mood(0.96, 0.51, 1.0)


def alone_steering(me: str = "a", now: float = 100.0) -> HouseholdState:
    st = start(me, now - 10)
    st, v = on_own_photo(st, CALM, now, HOLD)
    assert v.took_over and v.role is Role.STEER and v.reason == "the only frame"
    return st


def test_a_frame_alone_takes_the_music_after_the_join_wait():
    st = start("a", 0.0)
    st, v = on_own_photo(st, CALM, 0.2, HOLD)
    assert v.role is Role.FOLLOW and "joining" in v.reason
    st, v = on_tick(st, JOIN_S + 0.01, HOLD)
    assert v.took_over and st.steering


def test_a_newer_photo_claims_and_takes_over_only_on_the_acknowledgement():
    a = alone_steering("a", 100.0)
    b = start("b", 90.0)
    b, _ = on_presence(b, presence(a), 101.0, HOLD)
    assert b.steerer == "a"
    b, v = on_own_photo(b, JOYFUL, 200.0, HOLD)  # a's hold (60 s) is over
    assert v.role is Role.FOLLOW and v.publish and "claiming the music from a" in v.reason
    a, v = on_presence(a, presence(b), 200.01, HOLD)
    assert v.released and v.role is Role.FOLLOW and a.steerer == "b"
    assert not b.steering  # not before it has read the acknowledgement: no interleaved edits
    b, v = on_presence(b, presence(a, entries=((7, "x.flac"),)), 200.02, HOLD)
    assert v.took_over and b.steering and v.from_entries == ((7, "x.flac"),)
    assert b.hold_until == 200.02 + HOLD


def test_no_ping_pong_the_steerer_holds_the_music_for_its_minimum_interval():
    a = alone_steering("a", 100.0)
    b = start("b", 90.0)
    b, _ = on_presence(b, presence(a), 101.0, HOLD)
    b, _ = on_own_photo(b, JOYFUL, 130.0, HOLD)  # 30 s into a's 60 s hold
    a, v = on_presence(a, presence(b), 130.0, HOLD)
    assert a.steering and not v.released and "holding the music" in v.reason
    # The claim does not time out while the hold lasts...
    b, v = on_tick(b, 130.0 + HANDOVER_TIMEOUT_S + 1, HOLD)
    assert not b.steering
    # ...and the steerer hands over as soon as it is over.
    a, v = on_tick(a, 160.0, HOLD)
    assert v.released and a.steerer == "b"


def test_a_steerer_that_stops_following_its_photo_holds_the_music_no_longer():
    a = alone_steering("a", 100.0)
    b = start("b", 90.0)
    b, _ = on_presence(b, presence(a), 101.0, HOLD)
    b, _ = on_own_photo(b, JOYFUL, 110.0, HOLD)  # 10 s into a's 60 s hold: b claims
    a, v = on_presence(a, presence(b), 110.0, HOLD)
    assert a.steering and not v.released
    # A person took over the music (or following was switched off): a hands over at once.
    a, v = on_following(a, False, 111.0, HOLD)
    assert v.released and a.steerer == "b" and v.publish
    # One that stops following with no claim waiting says its hold is over, and then answers
    # the next claim at once.
    c = alone_steering("c", 100.0)
    c, v = on_following(c, False, 101.0, HOLD)
    assert c.steering and v.publish and presence(c).hold_until == 101.0
    c, v = on_following(c, True, 102.0, HOLD)  # following again: the hold stays over
    d = start("d", 90.0)
    d, _ = on_presence(d, presence(c), 103.0, HOLD)
    d, _ = on_own_photo(d, JOYFUL, 104.0, HOLD)
    c, v = on_presence(c, presence(d), 104.0, HOLD)
    assert v.released and c.steerer == "d"


def test_a_steerer_that_never_answers_loses_the_music_after_the_timeout():
    a = alone_steering("a", 100.0)
    b = start("b", 90.0)
    b, _ = on_presence(b, presence(a), 101.0, HOLD)
    b, _ = on_own_photo(b, JOYFUL, 200.0, HOLD)
    b, v = on_tick(b, 200.0 + HANDOVER_TIMEOUT_S - 0.1, HOLD)
    assert not b.steering
    b, v = on_tick(b, 200.0 + HANDOVER_TIMEOUT_S, HOLD)
    assert v.took_over and "did not answer" in v.reason


def test_a_dead_steerer_is_replaced_at_once_by_the_frame_whose_photo_changed_last():
    a = alone_steering("a", 100.0)
    b, c = start("b", 90.0), start("c", 90.0)
    b, _ = on_presence(b, presence(a), 101.0, HOLD)
    c, _ = on_presence(c, presence(a), 101.0, HOLD)
    b, _ = on_own_photo(b, JOYFUL, 110.0, HOLD)  # held: b claims
    c, _ = on_own_photo(c, CALM, 105.0, HOLD)
    b, _ = on_presence(b, presence(c), 110.0, HOLD)
    c, _ = on_presence(c, presence(b), 110.0, HOLD)
    b, _ = on_presence(b, presence(a, entries=((4, "y.flac"),)), 110.5, HOLD)
    b, vb = on_gone(b, "a", 111.0, HOLD)
    c, vc = on_gone(c, "a", 111.0, HOLD)
    assert vb.took_over and "a is gone" in vb.reason and vb.from_entries == ((4, "y.flac"),)
    assert not vb.reclaim  # b handed a nothing
    assert not c.steering and "waiting for b" in vc.reason
    c, _ = on_presence(c, presence(b), 111.01, HOLD)
    assert c.steerer == "b"


def test_two_frames_that_both_took_the_music_settle_it_at_once():
    a = alone_steering("a", 100.0)
    b = alone_steering("b", 100.5)
    a, va = on_presence(a, presence(b), 101.0, HOLD)
    b, vb = on_presence(b, presence(a), 101.0, HOLD)
    assert a.steering and not va.released
    assert vb.released and b.steerer == "a"


def test_a_presence_round_trips_through_json():
    p = Presence("living-room", 12.5, Mood(0.1, -0.2, 0.7), "kitchen", 10.0, 70.0, True,
                 "hall", ((3, "a/b.flac"),), said_at=1234.567)
    assert Presence.parse(json.dumps(p.to_json()).encode()) == p


def test_a_member_is_silent_after_three_heartbeats_counted_from_when_this_frame_listens():
    heard = {"a": 100.0, "b": 60.0}
    assert silent(heard, 0.0, 120.0, 10.0) == ["b"]  # b: 60 s, a: 20 s
    assert silent(heard, 0.0, 130.1, 10.0) == ["a", "b"]
    # This frame's own link came back at 110: nobody's silence before that says anything.
    assert silent(heard, 110.0, 139.0, 10.0) == []


def test_a_frame_that_steps_in_for_the_one_it_handed_the_music_to_reclaims_its_entries():
    # b took the music before me (two steerers): I handed it over, and b died before it took my
    # entries; they are mine again, else they stay in the queue with nobody to replace them.
    a = alone_steering("a", 100.0)
    b = Presence("b", 90.0, CALM, steerer="b", since=50.0)
    a, v = on_presence(a, b, 101.0, HOLD)
    assert v.released and a.handed_to == "b"
    a, v = on_gone(a, "b", 102.0, HOLD)
    assert v.took_over and v.reclaim


@pytest.mark.parametrize("field", ["changed_at", "since", "hold_until"])
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_a_presence_with_a_time_that_is_not_a_number_is_refused(field, value):
    # NaN would compare false with every other frame's time and Infinity win every election:
    # "whose photo changed last" would name a frame that is not there.
    payload = {"device_id": "x", "changed_at": 1.0, field: "PLACEHOLDER"}
    text = json.dumps(payload).replace('"PLACEHOLDER"', value)
    with pytest.raises(ValueError, match=field):
        Presence.parse(text.encode())


def test_blend_is_the_confidence_weighted_mean_of_the_moods():
    st = alone_steering("a", 100.0)
    st, _ = on_presence(st, Presence("b", 50.0, Mood(-0.5, 0.5, 0.5)), 101.0, HOLD)
    blend = target(st, Steer.BLEND, CALM)
    assert abs(blend.valence - (0.7 * 1 - 0.5 * 0.5) / 1.5) < 1e-9
    assert abs(blend.arousal - (-0.8 * 1 + 0.5 * 0.5) / 1.5) < 1e-9
    assert target(st, Steer.LAST, CALM) == CALM


def test_with_blend_a_new_photo_moves_the_blend_and_the_steerer_keeps_the_music():
    a = start("a", 90.0, Steer.BLEND)
    a, v = on_own_photo(a, CALM, 100.0, HOLD)
    assert v.took_over
    b = start("b", 90.0, Steer.BLEND)
    b, _ = on_presence(b, presence(a), 101.0, HOLD)
    b, v = on_own_photo(b, JOYFUL, 200.0, HOLD)  # a's hold is long over: b still does not claim
    assert v.publish and not presence(b).claim and v.role is Role.FOLLOW and b.steerer == "a"
    a, v = on_presence(a, presence(b), 200.01, HOLD)
    assert a.steering and not v.released
    mean = target(a, Steer.BLEND, CALM)  # b's mood is in the blend the steerer plays for
    assert mean is not None and mean.valence == (CALM.valence + JOYFUL.valence) / 2
    # A steerer that no longer follows its photo leaves the blend and the music to the rest.
    a, _ = on_following(a, False, 201.0, HOLD)
    assert target(a, Steer.BLEND, CALM) == JOYFUL
    b, v = on_presence(b, presence(a), 201.01, HOLD)
    assert presence(b).claim
    a, v = on_presence(a, presence(b), 201.02, HOLD)
    assert v.released and a.steerer == "b"


def test_a_group_whose_frames_are_set_to_different_steer_modes_plays_by_last():
    # A blend steerer never answered a last frame's claim: that frame took the music by time-out,
    # handed it back to the frame that took it first, and claimed it again, every few seconds.
    a = start("a", 90.0, Steer.BLEND)
    a, _ = on_own_photo(a, CALM, 100.0, HOLD)
    b = start("b", 90.0, Steer.LAST)
    b, _ = on_presence(b, presence(a), 101.0, HOLD)
    assert presence(a).steer == "blend" and presence(b).steer == "last"
    b, v = on_own_photo(b, JOYFUL, 200.0, HOLD)
    assert presence(b).claim
    a, v = on_presence(a, presence(b), 200.01, HOLD)
    assert a.steer is Steer.LAST and v.released and a.steerer == "b"
    b, v = on_presence(b, presence(a), 200.02, HOLD)
    assert v.took_over and b.steering
    # The frame set otherwise gone, the group blends again; an older frame's silence agrees.
    a, _ = on_gone(a, "b", 201.0, HOLD)
    assert a.steer is Steer.BLEND
    a, _ = on_presence(a, Presence("c", 50.0), 202.0, HOLD)
    assert a.steer is Steer.BLEND


def test_frames_that_each_play_on_their_own_local_mpd_are_not_one_group():
    # Each Pi with a speaker of its own, all left at the default mpd.host = "localhost", on one
    # broker (Home Assistant's): they formed one group, and all but one frame's music stopped
    # following its photo ("following frame0's photo", on another machine's MPD).
    from frame_daemon.config import parse_config
    from frame_daemon.music.household_link import group_name

    def group(machine: str, **mpd) -> str:
        return group_name(parse_config({"mpd": mpd}), machine=lambda: machine)

    for host in ("localhost", "127.0.0.1", "::1", "/run/mpd/socket", "@mpd"):
        assert group("3d1219c7c4c5", host=host) != group("a90e53b3f1d2", host=host), host
        assert group("3d1219c7c4c5", host=host) == group("3d1219c7c4c5", host=host)  # one Pi
        assert len(group("x" * 40, host=host * 20)) <= 64
    # One MPD on the network: one group, whichever machine a frame runs on.
    assert group("3d1219c7c4c5", host="nas.local") == group("a90e53b3f1d2", host="nas.local") \
        == "mpd-nas_local-6600"
    assert group_name(parse_config({"household": {"group": "den"}}), machine=lambda: "x") == "den"



def _machine(root, machine_id="4c4c4544003a1010804cb4c04f383232", serial=None, nics=()):
    """A system root as machine_id reads it: /etc/machine-id, a board serial, network devices
    (name, address, hardware or virtual)."""
    (root / "etc").mkdir(parents=True)
    (root / "etc/machine-id").write_text(machine_id + "\n")
    if serial is not None:
        (root / "sys/firmware/devicetree/base").mkdir(parents=True)
        (root / "sys/firmware/devicetree/base/serial-number").write_bytes(serial + b"\0")
    for name, address, hardware in nics:
        nic = root / "sys/class/net" / name
        nic.mkdir(parents=True)
        (nic / "address").write_text(address + "\n")
        if hardware:
            (nic / "device").mkdir()
    return root


def test_two_pis_cloned_from_one_sd_card_are_two_machines(tmp_path):
    # A family sets up its second frame by cloning the first one's SD card: both keep one
    # /etc/machine-id, and each plays on its own Pi's MPD ("localhost"); read by the machine id
    # alone they formed one group, and one frame's music stopped following its photo.
    from frame_daemon.music.household_link import machine_id

    one = machine_id(_machine(tmp_path / "a", serial=b"10000000a1b2c3d4"))
    two = machine_id(_machine(tmp_path / "b", serial=b"10000000e5f60718"))
    assert one != two
    assert machine_id(tmp_path / "a") == one  # the same machine reads the same, every time
    # No board serial (not a Pi): the network hardware's addresses; a container's or a
    # bridge's made-up ones (no `device`) are not hardware and leave the id alone.
    eth = ("eth0", "dc:a6:32:01:02:03", True)
    plain = machine_id(_machine(tmp_path / "c", serial=b"0000000000000000", nics=[eth]))
    assert plain != machine_id(_machine(tmp_path / "d", nics=[("eth0", "dc:a6:32:09:08:07", True)]))
    assert plain == machine_id(_machine(tmp_path / "e", nics=[eth, ("veth1", "7e:11:22:33:44:55", False)]))
    # Nothing but the machine id to go by (a container): that, as before.
    assert machine_id(_machine(tmp_path / "f", nics=[("lo", "00:00:00:00:00:00", False)])) \
        == "4c4c4544003a"

# ------------------------------------------------------------------ a simulated group


@dataclass
class Sim:
    """Frames that exchange presences through a broker with a delivery delay."""

    ids: list[str]
    delay: float = 0.02
    now: float = 0.0
    frames: dict[str, HouseholdState] = field(default_factory=dict)
    inbox: list[tuple[float, str, Presence | None, str]] = field(default_factory=list)
    edits: list[tuple[float, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.frames = {i: start(i, 0.0) for i in self.ids}
        for i in self.ids:  # the adapter publishes its presence on connecting
            self.apply(i, Verdict(Role.FOLLOW, "", "joined", publish=True))

    def apply(self, me: str, verdict) -> None:
        if verdict.publish:
            for other in self.frames:
                if other != me:
                    self.inbox.append((self.now + self.delay, other,
                                       presence(self.frames[me]), ""))
        if verdict.took_over:
            self.edits.append((self.now, me))

    def run_until(self, t: float) -> None:
        # Every frame ticks every TICK_S, like the daemon's loop.
        while self.now + TICK_S < t:
            self._run_until(self.now + TICK_S)
        self._run_until(t)

    def _run_until(self, t: float) -> None:
        while True:
            due = sorted((x for x in self.inbox if x[0] <= t), key=lambda x: x[0])
            if not due:
                break
            item = due[0]
            self.inbox.remove(item)
            self.now = item[0]
            _, to, p, gone = item
            if to not in self.frames:
                continue
            if p is None:
                self.frames[to], v = on_gone(self.frames[to], gone, self.now, HOLD)
            else:
                self.frames[to], v = on_presence(self.frames[to], p, self.now, HOLD)
            self.apply(to, v)
            self.check()
        self.now = t
        for i in list(self.frames):
            self.frames[i], v = on_tick(self.frames[i], t, HOLD)
            self.apply(i, v)
            self.check()

    def photo(self, me: str) -> None:
        self.frames[me], v = on_own_photo(self.frames[me], CALM, self.now, HOLD)
        self.apply(me, v)
        self.check()

    def kill(self, me: str) -> None:
        del self.frames[me]
        for other in self.frames:
            self.inbox.append((self.now + self.delay, other, None, me))

    def steering(self) -> list[str]:
        return [i for i, s in self.frames.items() if s.steering]

    def check(self) -> None:
        assert len(self.steering()) <= 1, f"two steer at {self.now}: {self.steering()}"


def test_a_simulated_group_never_has_two_steerers_and_the_last_photo_gets_the_music():
    rng = random.Random(3)
    for n in (2, 3):
        sim = Sim([f"f{i}" for i in range(n)])
        sim.run_until(JOIN_S + 0.5)
        t = JOIN_S + 1
        for _ in range(300):
            sim.photo(rng.choice(sim.ids))
            t += rng.uniform(0.5, 40.0)
            sim.run_until(t)
        last = max(sim.frames.values(), key=lambda s: s.changed_at).me
        sim.run_until(t + HOLD + HANDOVER_TIMEOUT_S)
        assert sim.steering() == [last]
        # No ping-pong: the music changed hands at most once per hold.
        times = [at for at, _ in sim.edits]
        assert all(b - a >= HOLD - 1e-6 for a, b in itertools.pairwise(times[1:]))


def test_a_simulated_group_hands_over_within_a_moment_when_the_steerer_dies():
    sim = Sim(["a", "b", "c"])
    sim.run_until(JOIN_S + 0.5)
    sim.photo("a")
    sim.run_until(5.0)
    sim.photo("b")
    sim.run_until(6.0)
    assert sim.steering() == ["a"]  # held
    sim.kill("a")
    sim.run_until(6.1)
    assert sim.steering() == ["b"]


def test_a_clock_ahead_shows_at_once_and_a_clock_behind_with_its_next_photo():
    now = 1_000_000.0
    ahead = Presence("kitchen", changed_at=now + 3600)
    assert clock_skew(None, ahead, now) == pytest.approx(3600)  # a change in our future
    assert clock_skew(None, Presence("kitchen", changed_at=now + CLOCK_SKEW_S / 2), now) is None
    # Behind: a retained presence read at start may just be old; a *new* change that arrives
    # long after its stamp is a clock behind.
    old = Presence("hall", changed_at=now - 3600)
    assert clock_skew(None, old, now) is None
    assert clock_skew(old, old, now + 5) is None  # the same change said again (a reconnect)
    new = Presence("hall", changed_at=now - 3590)
    assert clock_skew(old, new, now) == pytest.approx(-3590)
    assert clock_skew(old, Presence("hall", changed_at=now - 1), now) is None  # in step
    assert clock_skew(None, Presence("hall"), now) is None  # no photo yet (changed_at 0)
