"""Home Assistant integration: the discovery payload, commands, restarts, Last Will, two frames."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys

import pytest

from conftest import score_as_the_daemon
from frame_daemon.commands import CommandError
from frame_daemon.config import parse_config
from frame_daemon.daemon import Daemon
from frame_daemon.events import Command, CommandName
from frame_daemon.homeassistant import Topics, discovery_payload
from frame_daemon.mood import MOOD_WORDS
from harness import DaemonProcess, mpd_status, wait_for, write_config
from rig import STATE, show, state, wait_state
from servers import MqttRecorder

DISCOVERY = "homeassistant/device/frame/config"
PLATFORMS = {"sensor", "image", "switch", "select", "number", "button", "text"}


def check_discovery(payload: dict, topics: Topics) -> None:
    """The schema rules Home Assistant applies (one bad component drops the whole device)."""
    dev = payload["dev"]
    assert dev["ids"] and dev["name"] and dev["sw"] and dev["mdl"]
    assert {"name", "sw", "url"} <= set(payload["o"])
    assert payload["availability_topic"] == topics.availability
    cmps = payload["cmps"]
    unique_ids = [c["unique_id"] for c in cmps.values()]
    assert len(unique_ids) == len(set(unique_ids))
    main = [k for k, c in cmps.items() if c["name"] is None]
    assert main == ["mood"]
    for key, c in cmps.items():
        assert c["p"] in PLATFORMS, key
        assert "object_id" not in c, key  # removed from Home Assistant
        platform, _, object_id = c["default_entity_id"].partition(".")
        assert platform == c["p"] and re.fullmatch(r"[a-z0-9_]+", object_id)
        assert object_id.startswith(topics.device_id.replace("-", "_"))
        assert c.get("entity_category") in (None, "config", "diagnostic")
        if c["p"] in ("switch", "select", "number", "button", "text"):
            assert c["command_topic"].startswith(topics.base + "/set/")
    assert cmps["mood"]["device_class"] == "enum" and cmps["mood"]["options"] == list(MOOD_WORDS)
    assert cmps["image"]["image_topic"] == topics.image
    assert cmps["last_error"]["entity_category"] == "diagnostic"
    assert cmps["index_size"]["unit_of_measurement"] == "tracks"
    assert cmps["index_analysed"]["unit_of_measurement"] == "tracks"  # background (re-)analysis


def test_discovery_payload_follows_the_rules():
    topics = Topics("living-room")
    payload = discovery_payload(topics, "Living room frame")
    check_discovery(payload, topics)
    json.dumps(payload)  # serialisable
    # Every announced command topic has a row in the daemon's command table, and every row
    # taken from outside is announced.
    daemon = Daemon(parse_config({"mqtt": {"device_id": "living-room"}}))
    announced = {c["command_topic"] for c in payload["cmps"].values() if "command_topic" in c}
    assert announced == set(daemon.routes)


def test_the_slideshow_announces_exactly_the_commands_it_takes(tmp_path):
    (tmp_path / "photos" / "Holidays").mkdir(parents=True)
    daemon = Daemon(parse_config({"source": {"kind": "slideshow", "path": str(tmp_path / "photos")},
                                  "state": {"directory": str(tmp_path / "state")}}))
    daemon.slideshow.start_listing(10)()  # the albums, listed off the loop as at start
    payload = discovery_payload(daemon.topics, "Frame")
    payload["cmps"].update(daemon.slideshow.components(daemon.topics))
    check_discovery(payload, daemon.topics)
    announced = {c["command_topic"] for c in payload["cmps"].values() if "command_topic" in c}
    assert announced == set(daemon.routes)
    assert "Holidays" in payload["cmps"]["album"]["options"]
    table = daemon.commands
    assert table.parse(CommandName.INTERVAL, b" 45 ").value == 45.0
    assert table.parse(CommandName.PHOTO_ORDER, b"Date").value == "date"
    with pytest.raises(CommandError, match=r"^must be between 2\.0 and 86400\.0; got '1'$"):
        table.parse(CommandName.INTERVAL, b"1")
    with pytest.raises(CommandError, match="not a command taken from outside"):
        table.parse(CommandName.ANNOUNCE, b"now")


@pytest.mark.parametrize(("name", "payload", "expected"), [
    ("mode", b"gentle", "gentle"), ("mode", b" OFF ", "off"), ("following", b"ON", True),
    ("threshold", b"0.5", 0.5), ("diversity", b"1", 1.0), ("next", b"PRESS", None),
    ("include_genres", b"Jazz, Ambient", ("Jazz", "Ambient")), ("exclude_genres", b"", ()),
])
def test_commands_parse(name, payload, expected):
    table = Daemon(parse_config({})).commands
    assert table.parse(CommandName(name), payload) == Command(CommandName(name), expected)


@pytest.mark.parametrize(("name", "payload", "reason"), [
    ("mode", b"loud", "^must be one of follow, gentle, off; got 'loud'$"),
    ("following", b"maybe", "ON or OFF"),
    ("threshold", b"abc", "expected a number"), ("threshold", b"9", "between"),
    ("diversity", b"-1", "between"), ("next", b"{}", "PRESS"),
    ("mode", b"\xff\xfe", "not UTF-8"), ("include_genres", b"!!!", "not a genre"),
])
def test_bad_commands_are_refused_with_a_reason(name, payload, reason):
    table = Daemon(parse_config({})).commands
    with pytest.raises(CommandError, match=reason):
        table.parse(CommandName(name), payload)


def cmd(rig, name: str, payload: str) -> None:
    rig.recorder.publish(f"frame-daemon/frame/set/{name}", payload)


def test_home_assistant_reads_discovery_and_drives_every_command(rig):
    rig.daemon.start()
    first = wait_state(rig, lambda s: s.get("queued") and s.get("mode"), "first tracks queued")
    payload = wait_for(lambda: rig.recorder.json(DISCOVERY), 10, what="discovery")
    topics = Topics("frame")
    check_discovery(payload, topics)
    wait_for(lambda: rig.recorder.messages.get(topics.image, b"")[:2] == b"\xff\xd8", 10,
             what="thumbnail on the image topic")
    assert first["last_error"] == "" and first["photo_name"] == "current.jpg"
    assert payload["dev"]["name"] == "Frame"  # entities read "Frame Valence", not "Frame frame …"

    cmd(rig, "mode", "gentle")
    wait_state(rig, lambda s: s["mode"] == "gentle", "mode gentle")
    cmd(rig, "threshold", "0.7")
    wait_state(rig, lambda s: s["threshold"] == 0.7, "threshold 0.7")
    cmd(rig, "diversity", "0.9")
    wait_state(rig, lambda s: s["diversity"] == 0.9, "diversity 0.9")
    cmd(rig, "include_genres", "Metal, Punk")
    wait_state(rig, lambda s: s["include_genres"] == "Metal, Punk", "genre filter")
    cmd(rig, "exclude_genres", "Pop")
    wait_state(rig, lambda s: s["exclude_genres"] == "Pop", "genre exclusion")
    cmd(rig, "following", "OFF")
    wait_state(rig, lambda s: s["following"] is False and s["follow"] == "suspended", "off")
    cmd(rig, "resume", "PRESS")
    wait_state(rig, lambda s: s["following"] is True, "resumed by the button")
    cmd(rig, "following", "OFF")
    wait_state(rig, lambda s: s["following"] is False, "off again")
    cmd(rig, "following", "ON")
    s = wait_state(rig, lambda s: s["following"] is True, "on by the switch")
    # Resuming re-applied the music under the genre filter: only Metal/Punk tracks now queued.
    assert {u.split("/")[0] for u in s["queued"]} <= {"Iron_Teeth", "Safety_Pins"}

    wait_for(lambda: mpd_status(rig.mpd).get("songid"), 10, what="a current song")
    before = mpd_status(rig.mpd)["songid"]
    cmd(rig, "next", "PRESS")
    wait_for(lambda: mpd_status(rig.mpd).get("songid") != before, 10, what="next track")

    count = rig.recorder.count(STATE)
    cmd(rig, "rescore", "PRESS")
    wait_for(lambda: rig.recorder.count(STATE) > count and "command rescore" in rig.daemon.log(),
             10, what="re-score")
    cmd(rig, "refresh_index", "PRESS")
    wait_for(lambda: rig.daemon.log().count("index refreshed") >= 2, 15, what="index refresh")

    # Garbage: a log line and `last error`, never a crash; the state stays true.
    cmd(rig, "mode", "loud")
    refused = "command mode: must be one of follow, gentle, off; got 'loud'"
    s = wait_state(rig, lambda s: s["last_error"] == refused, "refused mode")
    assert s["mode"] == "gentle"
    cmd(rig, "threshold", "99")
    s = wait_state(rig, lambda s: "threshold" in s["last_error"], "refused threshold")
    assert s["threshold"] == 0.7
    rig.recorder.publish("frame-daemon/frame/set/diversity", b"\xff\x00garbage")
    wait_state(rig, lambda s: "not UTF-8" in s["last_error"], "refused garbage")
    assert rig.daemon.alive()


def test_settings_survive_a_restart_and_retained_commands_do_not_replay(rig):
    rig.daemon.start()
    wait_state(rig, lambda s: s.get("queued"), "first tracks queued")
    cmd(rig, "mode", "gentle")
    cmd(rig, "threshold", "0.5")
    cmd(rig, "diversity", "0.8")
    cmd(rig, "include_genres", "Metal, Punk")
    wait_state(rig, lambda s: (s["mode"], s["threshold"], s["diversity"], s["include_genres"])
               == ("gentle", 0.5, 0.8, "Metal, Punk"), "settings applied")
    # Within the slider's old range, but above follow.jump (0.9): refused, and no crash.
    cmd(rig, "threshold", "1.0")
    s = wait_state(rig, lambda s: "follow.jump" in s["last_error"], "threshold above jump refused")
    assert s["threshold"] == 0.5 and rig.daemon.alive()
    cmd(rig, "clear_error", "PRESS")
    wait_state(rig, lambda s: s["last_error"] == "" and s["error"] is None, "error cleared")

    rig.daemon.stop()
    # A command someone left retained on the broker must not act again at every start.
    rig.recorder.publish("frame-daemon/frame/set/mode", "off", retain=True)
    rig.recorder.messages.clear()
    rig.daemon.start()
    s = wait_state(rig, lambda s: s.get("photo_name"), "state after the restart")
    assert (s["mode"], s["threshold"], s["diversity"], s["include_genres"]) == (
        "gentle", 0.5, 0.8, "Metal, Punk")
    wait_for(lambda: "ignoring a retained command" in rig.daemon.log(), 10, what="a log line")
    rig.recorder.publish("frame-daemon/frame/set/mode", b"", retain=True)

    # The switch turns following on even when the mode is off: it sets the mode.
    cmd(rig, "mode", "off")
    wait_state(rig, lambda s: s["mode"] == "off" and s["following"] is False, "mode off")
    cmd(rig, "following", "ON")
    wait_state(rig, lambda s: s["mode"] == "follow" and s["following"] is True, "switch on")
    cmd(rig, "include_genres", "Polka")
    cmd(rig, "following", "OFF")
    cmd(rig, "following", "ON")
    wait_state(rig, lambda s: "genre filters" in (s["why"] or ""), "says why nothing is queued")
    cmd(rig, "reset_settings", "PRESS")
    wait_state(rig, lambda s: (s["mode"], s["threshold"], s["diversity"], s["include_genres"])
               == ("follow", 0.05, 0.3, ""), "the config's settings back")


def test_a_flood_of_commands_does_not_hold_back_the_next_photo(rig, mood_model):
    rig.daemon.start()
    wait_state(rig, lambda s: s.get("queued"), "first tracks queued")
    for _ in range(3000):  # a stuck automation pressing "re-score"
        rig.recorder.client.publish("frame-daemon/frame/set/rescore", "PRESS", qos=0)
    rig.recorder.publish("frame-daemon/frame/set/mode", "gentle")  # after the flood
    show(rig, "bright.jpg")
    bright = score_as_the_daemon(mood_model, rig.photos / "bright.jpg").mood.valence
    # Each re-score costs a decode and an inference: 3,000 of them would take minutes.
    wait_state(rig, lambda s: abs(s["valence"] - bright) < 0.005 and s["mode"] == "gentle",
               "the new photo scored soon after the flood", timeout=30)
    assert rig.daemon.alive()


def test_home_assistant_restart_reannounces(rig):
    rig.daemon.start()
    wait_state(rig, lambda s: s.get("queued"), "first tracks queued")
    wait_for(lambda: rig.recorder.json(DISCOVERY), 10, what="discovery")
    before = rig.recorder.count(DISCOVERY)
    rig.recorder.publish("homeassistant/status", "online")
    wait_for(lambda: rig.recorder.count(DISCOVERY) > before, 10, what="re-announced discovery")


def test_broker_restart_restores_discovery(rig):
    rig.daemon.start()
    wait_state(rig, lambda s: s.get("queued"), "first tracks queued")
    rig.broker.stop()
    rig.broker.start()
    fresh = MqttRecorder(rig.broker.port, ["homeassistant/#", "frame-daemon/#"])
    try:
        wait_for(lambda: fresh.json(DISCOVERY) and fresh.json(STATE)
                 and fresh.messages.get("frame-daemon/frame/image"), 30,
                 what="discovery, state and image back after a broker restart")
    finally:
        fresh.close()


def test_last_will_arrives_when_killed(rig):
    rig.daemon.start()
    wait_state(rig, lambda s: s.get("queued"), "first tracks queued")
    wait_for(lambda: rig.recorder.text("frame-daemon/frame/availability") == "online", 10,
             what="online")
    rig.daemon.stop(signal.SIGKILL)
    wait_for(lambda: rig.recorder.text("frame-daemon/frame/availability") == "offline", 10,
             what="Last Will")


def test_ha_remove_clears_the_device(rig):
    rig.daemon.start()
    wait_for(lambda: rig.recorder.json(DISCOVERY), 20, what="discovery")
    rig.daemon.stop()
    proc = subprocess.run([sys.executable, "-m", "frame_daemon", "ha-remove", "--config",
                           str(rig.config)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    # A retained sentinel, subscribed to last: once it is in, every retained message is.
    rig.recorder.publish("frame-daemon/zz-sentinel", "end", retain=True)
    fresh = MqttRecorder(rig.broker.port, ["homeassistant/#", "frame-daemon/#"])
    try:
        wait_for(lambda: fresh.text("frame-daemon/zz-sentinel") == "end", 10, what="sentinel")
        assert fresh.messages.get(DISCOVERY) is None
        assert not any(t.startswith("frame-daemon/frame/") for t, p in fresh.history if p)
    finally:
        fresh.close()
        rig.recorder.publish("frame-daemon/zz-sentinel", b"", retain=True)


def test_two_frames_share_one_broker(rig, tmp_path):
    second_photo = tmp_path / "second.jpg"
    second_photo.write_bytes((rig.photos / "bright.jpg").read_bytes())
    config2 = write_config(tmp_path / "second.toml", photo=second_photo, mpd=rig.mpd,
                           mqtt=rig.broker, state_dir=tmp_path / "state2", device_id="hallway",
                           mode="off")
    other = DaemonProcess(config2, tmp_path / "second.log")
    rig.daemon.start()
    other.start()
    try:
        wait_state(rig, lambda s: s.get("queued"), "first frame")
        second = wait_for(lambda: (s := rig.recorder.json("frame-daemon/hallway/state"))
                          and s["photo_name"] and s, 20, what="second frame's scored state")
        assert second["mode"] == "off" and second["photo_name"] == "second.jpg"
        assert second["queued"] == []  # mode off: it only publishes
        assert state(rig)["photo_name"] == "current.jpg"
        recorder = MqttRecorder(rig.broker.port, ["homeassistant/#"])
        try:
            both = wait_for(lambda: len(recorder.messages) >= 2 and recorder.messages, 10,
                            what="two discovery payloads")
        finally:
            recorder.close()
        ids = [c["unique_id"] for raw in both.values() for c in json.loads(raw)["cmps"].values()]
        assert len(ids) == len(set(ids))
        # A command to one frame does not touch the other.
        rig.recorder.publish("frame-daemon/hallway/set/mode", "gentle")
        wait_for(lambda: rig.recorder.json("frame-daemon/hallway/state")["mode"] == "gentle", 10,
                 what="hallway mode")
        assert state(rig)["mode"] == "follow"
    finally:
        other.stop()
