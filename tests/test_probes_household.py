"""Probes: what any client of the broker may publish on the household's topic (real mosquitto, real
MPD, a real daemon). Whatever is said there, a frame alone keeps its music, knows each member by
its topic, and never edits a queue entry a crafted presence names."""

from __future__ import annotations

import json
import time

import pytest
from test_household_daemons import house, persons_entries_survive  # noqa: F401
from test_transitions import holds

from frame_daemon.config import load_config
from frame_daemon.music.household import MAX_MEMBERS, Presence
from frame_daemon.music.household_link import group_name, group_topic
from harness import wait_for
from rig import show, state, wait_state
from servers import Mosquitto, MqttRecorder, find_binary, running_mpd, write_library

GARBAGE = [b"not json", b"[]", b"5", b'"frame"', b"{}", b'{"device_id": "x"}',
           b'{"device_id": "x", "changed_at": "soon"}', b'{"device_id": "x", "changed_at": NaN}',
           b'{"device_id": "x", "changed_at": 1, "mood": "calm"}',
           b'{"device_id": "x", "changed_at": 1, "entries": [[1]]}',
           b'{"device_id": "x", "changed_at": 1, "entries": {"a": 1}}',
           b"[" * 5000, b"\xff\xfe"]


def presence(device_id: str, **fields) -> str:
    return json.dumps({"device_id": device_id, "changed_at": 1.0, "steerer": "", **fields})


def members(rig) -> list[str]:
    return (state(rig).get("household") or {}).get("members") or []


def test_a_frame_keeps_its_music_whatever_the_household_topic_says(rig):
    group = group_topic(group_name(load_config(rig.config)))
    say = rig.recorder.publish
    # Retained before the frame starts: a presence dated in the year 5138 (a wrong clock, or a
    # crafted message), which the frame whose photo changed last could never beat; one that
    # names another frame than its topic (the Last Will clears the topic, not the name in it).
    say(f"{group}/future", presence("future", changed_at=1e11), retain=True)
    say(f"{group}/liar", presence("someone-else"), retain=True)
    rig.daemon.start()
    wait_state(rig, lambda s: s.get("valence") is not None, "the first photo scored", 60)
    for payload in GARBAGE:
        say(f"{group}/garbage", payload)
    say(f"{group}/long", presence("long", changed_at="A" * 1_000_000))  # one log line, not 1 MB
    # 100,000 queue entries (ids MPD never gave): refused whole, never adopted.
    say(f"{group}/huge", presence("huge", entries=[[i, f"x/{i}.flac"] for i in range(100_000)]))
    show(rig, "bright.jpg")  # my photo changed last: the music is mine
    s = wait_state(rig, lambda s: (s.get("household") or {}).get("steering") and s.get("queued"),
                   "the frame steers and queued music", 60)
    assert "someone-else" not in s["household"]["members"] and "huge" not in s["household"]["members"]

    # A claim from a topic no frame can have (device ids are 1-64 letters, digits, _ or -):
    # honoured, it would hand the music to nobody.
    for nobody in ("", "no one", "x" * 65):
        say(f"{group}/{nobody}", presence(nobody, changed_at=time.time() + 5, claim=True))
    say(f"{group}/marker", b"not json")  # in order after them: once it is read, they were
    wait_for(lambda: "ignoring what marker said" in rig.daemon.log(), 10, what="the marker read")
    assert (state(rig).get("household") or {}).get("steering") is True

    say(f"{group}/liar", b"", retain=True)  # its Last Will
    wait_for(lambda: "liar" not in members(rig), 10, what="the cleared member gone")
    assert rig.daemon.alive()
    log = rig.daemon.log()
    assert "Traceback" not in log, log[-4000:]
    assert "household: ignoring what huge said" in log
    [line] = [x for x in log.splitlines() if "ignoring what long said" in x]
    assert len(line) < 500, len(line)


def test_thousands_of_presences_are_not_thousands_of_members(rig):
    # A script publishing under the group's topic: each member costs every presence a look, so
    # thousands would stall the loop (retained: at every start too).
    group = group_topic(group_name(load_config(rig.config)))
    for i in range(3000):
        rig.recorder.publish(f"{group}/crowd-{i}", presence(f"crowd-{i}"), retain=True)
    rig.daemon.start()
    s = wait_state(rig, lambda s: (s.get("household") or {}).get("steering") and s.get("queued"),
                   "the frame steers and queued music", 60)
    wait_for(lambda: "household: ignoring crowd-" in rig.daemon.log(), 30, what="the crowd ignored")
    assert len(members(rig)) <= MAX_MEMBERS + 1 and "Traceback" not in rig.daemon.log()
    assert s["household"]["steerer"] == "frame"


@pytest.mark.parametrize("mood", ["[NaN, 0, 1]", "[0, Infinity, 1]", "[0, 0, NaN]", "[0, 0, -Infinity]"])
def test_a_mood_that_is_not_finite_is_not_a_presence(mood):
    # Clipped, it became a fully confident corner of the plane, pulling every frame's blend there.
    with pytest.raises(ValueError):
        Presence.parse(f'{{"device_id": "a", "changed_at": 1, "mood": {mood}}}'.encode())


def test_a_hand_over_while_mpd_restarts_leaves_no_old_entries_and_a_persons_stay(house):  # noqa: F811
    from test_household_daemons import settled, show, wait_steered_by

    house.add(2)
    settled(house)
    show(house, 0, "bright.jpg")
    wait_steered_by(house, "frame0", "frame0 steering")
    house.mpd.stop()
    show(house, 1, "bright.jpg")  # frame1 takes the music while MPD is away
    wait_for(lambda: (state := house.recorder.json("frame-daemon/frame1/state") or {}) and
             (state.get("household") or {}).get("steering"), 20, 0.1, what="frame1 took the music")
    house.mpd.start()  # its state file brings the queue back, renumbered
    wait_steered_by(house, "frame1", "frame1 steering, frame0's entries replaced", timeout=30)
    persons_entries_survive(house)


def test_a_frame_cut_off_from_the_broker_does_not_take_the_music_by_timeout(house):  # noqa: F811
    # With the broker gone, frame1's claim cannot reach frame0, nor frame0's answer frame1: its
    # silence is no sign that frame0 hangs, and taking the music would make two frames edit at once.
    from test_household_daemons import settled, show, wait_steered_by

    from harness import show_photo

    house.add(2)
    settled(house)
    show(house, 0, "bright.jpg")
    wait_steered_by(house, "frame0", "frame0 steering")
    house.broker.stop()
    log = house.frames[1].log
    scored = log().count("photo current.jpg:")
    show_photo(house.currents[1], house.photos / "bright.jpg")
    wait_for(lambda: log().count("photo current.jpg:") > scored, 20, what="frame1's photo scored")
    holds(lambda: "did not answer my claim" not in log(), 6.0, "frame1 leaves the music to frame0")
    house.broker.start()  # the claim goes out on reconnect: frame0 answers it
    wait_steered_by(house, "frame1", "frame1 steering once the broker is back", timeout=30)
    persons_entries_survive(house)


def test_a_frame_alone_that_starts_without_its_broker_still_plays(rig):
    # Cut off from the broker (it boots later), a frame hears no other frame: after the join wait
    # it steers alone, as ever; being cut off only keeps a claim on another frame from timing out.
    from harness import mpd_status

    rig.broker.stop()
    rig.daemon.start()
    wait_for(lambda: mpd_status(rig.mpd)["state"] == "play", 60, what="music playing")
    rig.broker.start()
    s = wait_state(rig, lambda s: (s.get("household") or {}).get("steering") and s.get("queued"),
                   "the frame says it steers once the broker is back", 30)
    assert s["household"]["members"] == ["frame"]


def test_a_presence_from_an_older_version_is_read_with_defaults_and_one_from_a_newer_with_more():
    old = Presence.parse(b'{"device_id": "den", "changed_at": 5, "mood": [0.1, 0.2, 0.5], "steerer": "den"}')
    assert (old.since, old.hold_until, old.claim, old.handed_to, old.entries, old.following) == (
        0.0, 0.0, False, "", (), True)
    newer = Presence.parse(b'{"device_id": "den", "changed_at": 5, "steer": "sway", "volume": 3}')
    assert newer.device_id == "den" and newer.mood is None


def test_a_loop_held_up_longer_than_the_silence_bound_takes_nobody_for_gone(tmp_path):
    # A member not heard from for three heartbeats is taken for gone (its Last Will was lost). A
    # loop held up that long has not read the words that came meanwhile: they wait in its queue.
    # In-process, on the test's clock; the household's own connection to a real broker.
    from frame_daemon.config import parse_config
    from frame_daemon.daemon import TICK_S, Daemon
    from frame_daemon.events import HouseholdNews
    from memory_mpd import Clock, MemoryMpd, MemorySession
    from servers import Mosquitto

    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    clock = Clock()
    cfg = parse_config({"mqtt": {"host": "127.0.0.1", "port": broker.port, "keepalive_s": 5},
                        "household": {"steer": "blend", "heartbeat_s": 1.0},
                        "state": {"directory": str(tmp_path / "state")}})
    daemon = Daemon(cfg, clock=clock, mpd_session=MemorySession(MemoryMpd(clock, {})))
    stop = daemon.music.start_household(daemon.post, wall=time.time)
    try:
        link = daemon.music._household_link.link
        wait_for(lambda: link.connected, 10, what="the household's connection")

        def kitchen_says(said_at: float) -> None:
            daemon.handle(HouseholdNews("kitchen", presence("kitchen", changed_at=time.time() - 60,
                                                           said_at=said_at).encode()))

        def members() -> set[str]:
            return set(daemon.music.household.members)

        def run_for(seconds: float) -> None:
            end = clock.now + seconds
            while clock.now < end:
                clock.advance(TICK_S)
                daemon.on_time(clock.now)

        kitchen_says(1.0)
        run_for(2.0)
        assert members() == {"kitchen"}
        clock.advance(10.0)  # the loop held up; kitchen's next word waits in its queue
        daemon.on_time(clock.now)
        assert members() == {"kitchen"}
        kitchen_says(2.0)
        run_for(2.0)
        assert members() == {"kitchen"}
        run_for(2.0)  # now it says nothing new for over three heartbeats: gone
        assert members() == set()
    finally:
        stop()
        broker.stop()


class AclMosquitto(Mosquitto):
    """A broker whose ACL lets a client use the frame's own topics and Home Assistant's only:
    mosquitto still grants a subscription to the household's, and drops what is said there."""

    def command(self) -> list[str]:
        acl = self.workdir / "acl"
        acl.write_text("topic readwrite frame-daemon/frame/#\ntopic readwrite homeassistant/#\n")
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\nacl_file {acl}\n"
                        "persistence false\nuser root\n")  # (root: see test_probes_cli)
        return [find_binary("mosquitto"), "-c", str(conf)]


def test_a_broker_that_drops_the_households_messages_is_named(tmp_path, model_json, demo_photos):
    # No frame heard any other, and nothing said so: frames that share one MPD each steered it.
    import signal

    from harness import DaemonProcess, write_config
    from rig import STATE, two_photos_and_a_frame

    music = tmp_path / "music"
    write_library(music)
    with running_mpd(tmp_path / "mpd", music) as mpd:
        broker = AclMosquitto(tmp_path / "mqtt")
        broker.start()
        recorder = MqttRecorder(broker.port, ["frame-daemon/#"])
        _, current = two_photos_and_a_frame(tmp_path, demo_photos)
        config = write_config(tmp_path / "frame.toml", photo=current, mpd=mpd, mqtt=broker,
                              state_dir=tmp_path / "state")
        daemon = DaemonProcess(config, tmp_path / "daemon.log")
        daemon.start()
        try:
            wait_for(lambda: "does not pass on what is said on frame-daemon/household/" in (
                (recorder.json(STATE) or {}).get("last_error") or ""), 30,
                what="the broker named as dropping the household's messages")
            assert (recorder.json(STATE) or {}).get("queued")  # alone, the frame still plays
            assert daemon.log().count("does not pass on") == 1
        finally:
            daemon.stop(signal.SIGKILL)
            recorder.close()
            broker.stop()
