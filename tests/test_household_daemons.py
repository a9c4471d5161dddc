"""Frames that share one MPD (real mosquitto, real MPD, real daemons): exactly one steers, the
frame whose photo changed last takes the music, a killed steerer is replaced through its Last
Will, and a person's own queue entries survive it all."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import time
from pathlib import Path

import pytest

from harness import (
    TEST_FOLLOW,
    DaemonProcess,
    make_servers,
    mpd_queue,
    mpd_status,
    show_photo,
    wait_for,
    write_config,
)
from rig import two_photos_and_a_frame
from servers import MqttRecorder

# A person's own entries, queued before the frames start.
PERSONS = ["Iron_Teeth/genre_only_rock.flac", "Late_Set/genre_only_jazz.flac"]


@pytest.fixture
def house(tmp_path, model_json, demo_photos):
    mpd, broker = make_servers(tmp_path)
    c = mpd.client()
    try:
        persons = {c.addid(uri) for uri in PERSONS}  # queue ids: frames may queue the same files
    finally:
        c.disconnect()
    photos, _ = two_photos_and_a_frame(tmp_path, demo_photos)
    recorder = MqttRecorder(broker.port, ["frame-daemon/#"])
    frames: list[DaemonProcess] = []
    currents: list[Path] = []

    def add(n: int, follow: str | None = None, extra: str = "") -> None:
        """Start n more frames (with these [follow] keys, else the tests' own; `extra` config)."""
        for i in range(len(frames), len(frames) + n):
            name = f"frame{i}"
            folder = tmp_path / name
            folder.mkdir()
            current = folder / "current.jpg"
            shutil.copy(photos / "dark.jpg", current)
            config = write_config(tmp_path / f"{name}.toml", photo=current, mpd=mpd, mqtt=broker,
                                  state_dir=tmp_path / f"state-{name}", device_id=name,
                                  follow=follow, extra=extra)
            frames.append(DaemonProcess(config, tmp_path / f"{name}.log"))
            currents.append(current)
            frames[-1].start()

    h = type("House", (), dict(mpd=mpd, broker=broker, photos=photos, recorder=recorder, persons=persons,
                               frames=frames, currents=currents, add=add))
    yield h
    for frame in frames:
        if frame.alive():
            frame.stop(signal.SIGKILL)
    recorder.close()
    for server in (mpd, broker):
        with contextlib.suppress(Exception):
            server.stop()


def states(h) -> dict[str, dict]:
    out = {}
    for i, frame in enumerate(h.frames):
        if frame.alive():
            out[f"frame{i}"] = h.recorder.json(f"frame-daemon/frame{i}/state") or {}
    return out


def steered_by(h, name: str) -> bool:
    """Every living frame agrees that `name` steers, and only `name` says it steers; its
    entries are the only ones of the frames' after what plays."""
    s = states(h)
    if not all((x.get("household") or {}).get("steerer") == name for x in s.values()):
        return False
    if [n for n, x in s.items() if x["household"]["steering"]] != [name]:
        return False
    if not s[name].get("queued"):
        return False
    queue = mpd_queue(h.mpd)
    status = mpd_status(h.mpd)
    after = queue[int(status.get("song", -1)) + 1:]
    frames_entries = [e["file"] for e in after if e["id"] not in h.persons]
    # No entry of a frame that steered before is left over, none interleaved.
    return frames_entries == s[name]["queued"][1:] or frames_entries == s[name]["queued"]


def wait_steered_by(h, name: str, what: str, timeout: float = 30.0) -> None:
    try:
        wait_for(lambda: steered_by(h, name), timeout, interval=0.1, what=what)
    except TimeoutError:
        for frame in h.frames:
            print(frame.log()[-3000:])
        print(states(h), [e["file"] for e in mpd_queue(h.mpd)], mpd_status(h.mpd))
        raise


def settled(h) -> None:
    """At start every frame shows a photo at about the same time: wait until each has scored its
    own and all agree on one steerer."""
    def agreed() -> bool:
        s = states(h)
        steerers = {(x.get("household") or {}).get("steerer") for x in s.values()}
        return (len(s) == len(h.frames) and all(x.get("valence") is not None for x in s.values())
                and len(steerers) == 1 and None not in steerers)

    wait_for(agreed, 30, 0.1, what="every frame's photo scored and one steerer agreed")


def show(h, i: int, photo: str) -> None:
    """Show a photo on frame i and wait until it is scored (so a steerer from before does not
    count, and the next frame's photo comes later than this one)."""
    before = states(h)[f"frame{i}"]["valence"]
    show_photo(h.currents[i], h.photos / photo)
    wait_for(lambda: states(h)[f"frame{i}"]["valence"] != before, 20, 0.02,
             what=f"frame{i}'s new photo scored")


def persons_entries_survive(h) -> None:
    queue = {e["id"]: e["file"] for e in mpd_queue(h.mpd)}
    assert all(queue.get(i) in PERSONS for i in h.persons), queue


@pytest.mark.parametrize("n", [2, 3])
def test_the_frame_whose_photo_changed_last_steers_and_the_others_follow(house, n):
    house.add(n)
    settled(house)
    photos = ["bright.jpg", "dark.jpg"]
    for step in range(2 * n):
        i = step % n
        show(house, i, photos[(step // n) % 2])
        wait_steered_by(house, f"frame{i}", f"frame{i} steering after its photo changed")
        followers = [x for name, x in states(house).items() if name != f"frame{i}"]
        assert all(x["why"] == f"following frame{i}'s photo" for x in followers)
    assert not [x["error"] for x in states(house).values() if x.get("error")]
    # Nobody said what fits, and a follower does not take the steerer's tracks for a person's own.
    assert [x["taste"]["verdicts"] for x in states(house).values()] == [0] * n
    # A verdict given to a follower is refused, saying where to give it.
    house.recorder.publish("frame-daemon/frame0/set/feedback", "fits")
    wait_for(lambda: f"frame{n - 1} steers the household's music and chose the track playing" in (
        states(house)["frame0"].get("last_error") or ""), 10, what="the verdict refused, with why")
    persons_entries_survive(house)


def test_a_killed_steerer_hands_over_through_its_last_will(house):
    house.add(3)
    settled(house)
    show(house, 1, "bright.jpg")
    wait_steered_by(house, "frame1", "frame1 steering")
    show(house, 2, "bright.jpg")
    wait_steered_by(house, "frame2", "frame2 steering")
    house.frames[2].stop(signal.SIGKILL)  # no goodbye: the broker sends its Last Will
    # frame1's photo changed last among the living.
    wait_steered_by(house, "frame1", "frame1 steering after frame2 died", timeout=10)
    members = states(house)["frame1"]["household"]["members"]
    assert "frame2" not in members
    persons_entries_survive(house)


# The steerer holds the music for longer than any test waits.
LONG_HOLD = TEST_FOLLOW.replace("min_interval_s = 0", "min_interval_s = 600")


def household(h, i: int) -> dict:
    return states(h)[f"frame{i}"].get("household") or {}


@pytest.mark.parametrize("how", ["a person's edit", "following switched off"])
def test_a_steerer_that_stops_following_hands_the_music_over_at_once(house, how):
    house.add(1, follow=LONG_HOLD)
    wait_steered_by(house, "frame0", "frame0 steering alone")
    house.add(1, follow=LONG_HOLD)  # its photo changed last: it claims, but frame0 holds
    wait_for(lambda: "claiming" in household(house, 1).get("reason", ""), 20, 0.1,
             what="frame1 claiming the music")
    assert household(house, 0)["steering"]
    if how == "a person's edit":
        c = house.mpd.client()
        try:
            house.persons.add(c.addid(PERSONS[0]))  # a person queues a song: frame0 steps back
        finally:
            c.disconnect()
    else:
        house.recorder.publish("frame-daemon/frame0/set/following", "OFF")
    wait_for(lambda: states(house)["frame0"].get("follow") in ("suspended", "off"), 10, 0.05,
             what="frame0 no longer following")
    # frame0 no longer follows its photo, so it does not hold the music for 600 s.
    wait_steered_by(house, "frame1", "frame1 steering", timeout=10)
    persons_entries_survive(house)


def test_with_blend_another_frames_photo_moves_the_music_and_the_steerer_keeps_it(house):
    blend = '[household]\nsteer = "blend"'
    house.add(1, extra=blend)
    wait_steered_by(house, "frame0", "frame0 steering alone")
    house.add(1, extra=blend)  # its photo changed last, but with blend it does not take the music
    wait_for(lambda: states(house)["frame1"].get("valence") is not None
             and household(house, 1).get("steerer") == "frame0", 20, 0.1,
             what="frame1 scored its photo and follows frame0")
    before = states(house)["frame0"]["target"]
    show(house, 1, "bright.jpg")
    # frame1's brighter photo moves the blend: frame0 chooses again for it, and keeps steering.
    wait_for(lambda: states(house)["frame0"]["target"]["valence"] > before["valence"] + 0.05,
             20, 0.1, what="frame0's music chosen again for the brighter blend")
    wait_steered_by(house, "frame0", "frame0 still steering")
    assert "blend" in states(house)["frame1"]["why"]
    persons_entries_survive(house)


def test_with_blend_a_steerer_whose_last_will_was_lost_is_taken_for_gone(house):
    # Its Last Will lost (the broker restarted while it was gone), a steerer's retained presence
    # said it steers for ever, and with blend nobody claims: the music stayed with a dead frame.
    # Its presence is never said again, so after three heartbeats it is gone all the same.
    house.add(1, extra='[household]\nsteer = "blend"\nheartbeat_s = 1')
    wait_steered_by(house, "frame0", "frame0 steering alone")
    topic = f"frame-daemon/household/{household(house, 0)['group']}/ghost"
    # It took the music long before frame0 did (since), by its clock (said_at) an hour ago.
    ghost = json.dumps({"device_id": "ghost", "changed_at": time.time() - 60, "steerer": "ghost",
                        "since": 1.0, "mood": [-0.8, 0.8, 0.9], "said_at": time.time() - 3600})
    house.recorder.publish(topic, ghost, retain=True)
    log = house.frames[0].log
    wait_for(lambda: "handed the music to ghost" in log(), 10, 0.05,
             what="frame0 handing the music to the ghost, which took it first")
    wait_for(lambda: re.search(r"ghost has not been heard from for \d+ s", log()), 20,
             what="the silent ghost taken for gone")
    wait_steered_by(house, "frame0", "frame0 steering again")
    assert "ghost" not in household(house, 0)["members"]
    # Its retained presence is cleared: a frame that starts later does not follow it.
    wait_for(lambda: house.recorder.messages.get(topic) == b"", 10, what="the ghost cleared")
    # The broker re-delivers a retained presence at every reconnect: unchanged, it is still gone.
    house.recorder.publish(topic, ghost)
    house.recorder.publish(topic.replace("ghost", "marker"), b"not json")  # read after it
    wait_for(lambda: "ignoring what marker said" in log(), 10, what="the marker read")
    assert log().count("handed the music to ghost") == 1
    house.add(1, extra='[household]\nsteer = "blend"\nheartbeat_s = 1')
    wait_for(lambda: states(house)["frame1"].get("valence") is not None
             and household(house, 1).get("steerer") == "frame0", 20, 0.1,
             what="frame1 follows frame0, not the ghost")
    assert "ghost" not in household(house, 1)["members"]
    wait_steered_by(house, "frame0", "frame0 still steering")
    persons_entries_survive(house)


def test_with_blend_a_steerer_that_died_while_the_broker_was_down_is_taken_for_gone(house):
    # The broker's shutdown sends every frame's Last Will, which the frames do not take for a
    # death (their own connection goes too). The steerer dies while the broker is down, and the
    # broker comes back without its presence and without its Will: nothing would ever say it is
    # gone, and with blend nobody claims the music. It says nothing new, so it is gone after
    # three heartbeats, and its entries are replaced.
    blend = '[household]\nsteer = "blend"\nheartbeat_s = 1'
    house.add(1, extra=blend)
    wait_steered_by(house, "frame0", "frame0 steering alone")
    house.add(1, extra=blend)
    wait_for(lambda: states(house)["frame1"].get("valence") is not None
             and household(house, 1).get("steerer") == "frame0", 20, 0.1,
             what="frame1 scored its photo and follows frame0")
    house.broker.stop()
    house.frames[0].stop(signal.SIGKILL)
    house.broker.start()
    wait_steered_by(house, "frame1", "frame1 steering once frame0 is taken for gone", timeout=30)
    assert "frame0 has not been heard from" in house.frames[1].log()
    persons_entries_survive(house)


def test_frames_set_to_different_steer_modes_are_told_so_and_the_group_plays_by_last(house):
    # A blend steerer never answers a claim: a last frame took the music by time-out, handed it
    # back to the frame that took it first and claimed it again; the music restarted every few
    # seconds, for ever, and nothing said why.
    from test_transitions import holds

    house.add(1, extra='[household]\nsteer = "blend"')
    wait_steered_by(house, "frame0", "frame0 steering alone")
    house.add(1)  # steer = "last", and its photo changed last: it claims the music
    wait_steered_by(house, "frame1", "frame1 steering: the group plays by last")
    holds(lambda: steered_by(house, "frame1"), 6.0, "frame1 keeps the music")
    for i in (0, 1):
        assert "household.steer" in states(house)[f"frame{i}"]["last_error"]
    assert house.frames[1].log().count("took the music first") == 0
    persons_entries_survive(house)


def test_garbage_on_the_group_topic_is_ignored_with_one_line_each(house):
    # Any client of the broker may publish there. Each is refused by the parser (a warning naming
    # the sender), not an internal error with a traceback; the frame goes on steering.
    house.add(1)
    settled(house)
    wait_steered_by(house, "frame0", "frame0 steering alone")
    group = states(house)["frame0"]["household"]["group"]
    garbage = {"list": b"[]", "text": b'"steer"', "deep": b"[" * 3000,
               "overflow": b'{"device_id": "overflow", "changed_at": 0, "entries": [[Infinity, "a"]]}'}
    for name, payload in garbage.items():
        house.recorder.publish(f"frame-daemon/household/{group}/{name}", payload, retain=True)
    log = house.frames[0].log
    wait_for(lambda: all(f"household: ignoring what {name} said" in log() for name in garbage), 10,
             what="every garbage presence ignored")
    assert "internal error" not in log() and "Traceback" not in log(), log()[-3000:]
    show(house, 0, "bright.jpg")
    wait_steered_by(house, "frame0", "frame0 still steering after its photo changed")


def test_a_frame_whose_clock_is_off_is_named_in_the_log_and_the_error(house):
    # Who steers is decided by the frames' clocks: a frame an hour ahead would keep the music
    # for ever, one behind would never take it. Neither is fixed here, but the user is told.
    house.add(1)
    settled(house)
    group = states(house)["frame0"]["household"]["group"]
    topic = f"frame-daemon/household/{group}/kitchen"
    house.recorder.publish(topic, json.dumps({"device_id": "kitchen",
                                              "changed_at": time.time() + 3600}))
    log = house.frames[0].log
    wait_for(lambda: re.search(r"frame kitchen's clock seems 3[56]\d\d s ahead of", log()), 10,
             what="the clock ahead named in the log")
    wait_for(lambda: "kitchen's clock seems" in (states(house)["frame0"].get("last_error") or ""),
             10, what="the clock ahead named in last_error")
    house.recorder.publish(topic, b"")  # the fake frame goes (as its Last Will would say)
    show(house, 0, "bright.jpg")
    wait_steered_by(house, "frame0", "frame0 steering again")


def test_two_frames_with_one_device_id_are_told_so(tmp_path, model_json, demo_photos):
    # Both set up from the example config ("frame"): each took the other's presence for its own
    # echo and steered alone, each taking the other's queue entries for a person's.
    mpd, broker = make_servers(tmp_path)
    photos, _ = two_photos_and_a_frame(tmp_path, demo_photos)
    frames = []
    try:
        for i in range(2):
            folder = tmp_path / f"twin{i}"
            folder.mkdir()
            shutil.copy(photos / "dark.jpg", folder / "current.jpg")
            config = write_config(tmp_path / f"twin{i}.toml", photo=folder / "current.jpg",
                                  mpd=mpd, mqtt=broker, state_dir=tmp_path / f"state{i}",
                                  device_id="twin")
            frames.append(DaemonProcess(config, tmp_path / f"twin{i}.log"))
            frames[-1].start()
        said = "another frame uses mqtt.device_id 'twin'"
        wait_for(lambda: all(said in f.log() for f in frames), 30, 0.1,
                 what="both frames told of the other")
        assert all(f.log().count(said) == 1 for f in frames)  # once, not at every presence
    finally:
        for frame in frames:
            if frame.alive():
                frame.stop(signal.SIGKILL)
        for server in (mpd, broker):
            with contextlib.suppress(Exception):
                server.stop()
