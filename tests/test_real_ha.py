"""Against a real Home Assistant (opt-in): every entity appears, reads right, and obeys.

Runs only when FRAME_DAEMON_REAL_HA names a folder prepared by `scripts/real_ha.sh setup DIR`
(Home Assistant from PyPI in a venv; minutes, once):

    sudo scripts/real_ha.sh setup /var/tmp/real-ha
    FRAME_DAEMON_REAL_HA=/var/tmp/real-ha scripts/test.sh -k real_ha

The snapshot of what Home Assistant saw is written to FRAME_DAEMON_REAL_HA_SNAPSHOT (default: the
test's tmp folder).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from frame_daemon.homeassistant import Topics, discovery_payload
from harness import ROOT, mpd_status, wait_for
from rig import slideshow_config, wait_state

HA_DIR = os.environ.get("FRAME_DAEMON_REAL_HA", "")
TOOL = ROOT / "scripts" / "real_ha.sh"
pytestmark = pytest.mark.skipif(not HA_DIR, reason="set FRAME_DAEMON_REAL_HA to a folder made by "
                                                   "scripts/real_ha.sh setup DIR to run against "
                                                   "Home Assistant")


def ha(*args: str, timeout: float = 180) -> str:
    proc = subprocess.run([str(TOOL), args[0], HA_DIR, *args[1:]], capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def call(domain: str, service: str, data: dict) -> None:
    ha("call", domain, service, json.dumps(data))


def ha_entity(entity_id: str, predicate, what: str, timeout: float = 30.0) -> dict:
    """The entity as Home Assistant shows it, once `predicate` holds for it (Home Assistant
    hears the frame's state a moment after the test's own recorder does)."""
    def look() -> dict | None:
        snap = json.loads(ha("snapshot", "--json"))
        entity = next((e for e in snap["entities"] if e["entity_id"] == entity_id), None)
        return entity if entity is not None and predicate(entity) else None

    return wait_for(look, timeout, interval=0.5, what=what)


def shown(entity: dict) -> int:
    """A count sensor's state as a number (-1 while it shows none)."""
    return int(entity["state"]) if str(entity["state"]).isdigit() else -1


def start_ha(rig, expected, snap_path: Path) -> tuple[dict, dict[str, dict]]:
    """Start Home Assistant on the rig's broker; once every expected entity is there, its
    snapshot and the entities by id. No entity missing, no MQTT warning or error."""
    ha("run", "--broker-port", str(rig.broker.port), "--out", str(snap_path),
       "--expect", ",".join(expected), "--expect-timeout", "90", timeout=300)
    snap = json.loads(snap_path.read_text())
    entities = {e["entity_id"]: e for e in snap["entities"]}
    assert set(expected) <= set(entities), set(expected) - set(entities)
    assert snap["mqtt_log"] == [], snap["mqtt_log"]
    return snap, entities


def test_real_home_assistant(rig, tmp_path):
    rig.daemon.start()
    wait_state(rig, lambda s: s.get("queued"), "first tracks queued")
    components = discovery_payload(Topics("frame"), "Frame")["cmps"]
    expected = {c["default_entity_id"]: c for c in components.values()}
    snap_path = Path(os.environ.get("FRAME_DAEMON_REAL_HA_SNAPSHOT", tmp_path / "ha.json"))
    try:
        snap, entities = start_ha(rig, expected, snap_path)
        assert len(snap["devices"]) == 1 and snap["devices"][0]["name"] == "Frame"
        for eid, e in entities.items():
            assert e["state"] not in (None, "unavailable"), (eid, e["state"])
        assert entities["sensor.frame_mood"]["state"] in components["mood"]["options"]
        assert entities["select.frame_mode"]["state"] == "follow"
        assert entities["switch.frame_following"]["state"] == "on"
        picture = entities["image.frame_photo_image"]["entity_picture_fetch"]
        assert picture["status"] == 200 and picture["is_jpeg"]

        # Drive every command through Home Assistant's own services.
        call("select", "select_option", {"entity_id": "select.frame_mode", "option": "gentle"})
        wait_state(rig, lambda s: s["mode"] == "gentle", "mode via HA")
        call("number", "set_value", {"entity_id": "number.frame_threshold", "value": 0.6})
        wait_state(rig, lambda s: s["threshold"] == 0.6, "threshold via HA")
        call("number", "set_value", {"entity_id": "number.frame_diversity", "value": 0.8})
        wait_state(rig, lambda s: s["diversity"] == 0.8, "diversity via HA")
        call("text", "set_value", {"entity_id": "text.frame_include_genres", "value": "Jazz"})
        wait_state(rig, lambda s: s["include_genres"] == "Jazz", "genres via HA")
        call("text", "set_value", {"entity_id": "text.frame_include_genres", "value": ""})
        call("text", "set_value", {"entity_id": "text.frame_exclude_genres", "value": "Metal"})
        wait_state(rig, lambda s: s["exclude_genres"] == "Metal", "exclusions via HA")
        call("switch", "turn_off", {"entity_id": "switch.frame_following"})
        wait_state(rig, lambda s: s["following"] is False, "switch off via HA")
        call("button", "press", {"entity_id": "button.frame_resume"})
        wait_state(rig, lambda s: s["following"] is True, "resume via HA")
        wait_for(lambda: mpd_status(rig.mpd).get("songid"), 10, what="a current song")
        before = mpd_status(rig.mpd)["songid"]
        call("button", "press", {"entity_id": "button.frame_next"})
        wait_for(lambda: mpd_status(rig.mpd).get("songid") != before, 10, what="next via HA")
        # The household's taste (docs/taste.md) through Home Assistant's own buttons: each
        # verdict lands in the taste file and comes back on the Taste sensor, Doesn't fit also
        # moves the music on, and Forget taste empties it. (Next track pressed just now was a
        # person's early skip, a verdict already; a track that plays to its end is one too, so
        # the counts are "at least" and the log shows the buttons' own.)
        wait_for(lambda: mpd_status(rig.mpd).get("state") == "play", 10, what="playing")
        verdicts = wait_state(rig, lambda s: "taste" in s, "taste")["taste"]["verdicts"]
        call("button", "press", {"entity_id": "button.frame_feedback_fits"})
        wait_state(rig, lambda s: s["taste"]["verdicts"] >= verdicts + 1, "Fits via HA")
        wait_for(lambda: re.search(r"taste: .* fits \w+ photos \(button\)", rig.daemon.log()), 10,
                 what="the Fits verdict kept")
        taste = ha_entity("sensor.frame_taste", lambda e: shown(e) >= verdicts + 1,
                          "the Fits verdict on the Taste sensor")
        assert taste["attributes"]["liked_tracks"], taste  # a track a person said fits
        assert "household_shift" in taste["attributes"], taste
        wait_for(lambda: mpd_status(rig.mpd).get("state") == "play", 10, what="playing")
        before = mpd_status(rig.mpd)["songid"]
        call("button", "press", {"entity_id": "button.frame_feedback_doesnt_fit"})
        wait_state(rig, lambda s: s["taste"]["verdicts"] >= verdicts + 2, "Doesn't fit via HA")
        wait_for(lambda: re.search(r"taste: .* doesn't fit \w+ photos \(button\)",
                                   rig.daemon.log()), 10, what="the Doesn't fit verdict kept")
        wait_for(lambda: mpd_status(rig.mpd).get("songid") not in (None, before), 10,
                 what="Doesn't fit moves the music on")
        ha_entity("sensor.frame_taste", lambda e: shown(e) >= verdicts + 2,
                  "the Doesn't fit verdict on the Taste sensor")
        call("button", "press", {"entity_id": "button.frame_forget_taste"})
        wait_state(rig, lambda s: s["taste"]["verdicts"] == 0, "Forget taste via HA")
        taste = ha_entity("sensor.frame_taste", lambda e: shown(e) == 0,
                          "Forget taste on the Taste sensor")
        assert not taste["attributes"]["liked_tracks"], taste
        assert not taste["attributes"]["disliked_tracks"], taste
        call("button", "press", {"entity_id": "button.frame_rescore"})
        wait_for(lambda: "command rescore" in rig.daemon.log(), 10, what="rescore via HA")
        call("button", "press", {"entity_id": "button.frame_refresh_index"})
        wait_for(lambda: "command refresh_index" in rig.daemon.log(), 10, what="refresh via HA")
        call("switch", "turn_on", {"entity_id": "switch.frame_following"})
        # Home Assistant shows what the frame echoed.
        ha("snapshot", "--out", str(snap_path), "--json")
        snap = json.loads(snap_path.read_text())
        entities = {e["entity_id"]: e for e in snap["entities"]}
        assert entities["select.frame_mode"]["state"] == "gentle"
        assert float(entities["number.frame_threshold"]["state"]) == 0.6
        assert snap["mqtt_log"] == [], snap["mqtt_log"]
        # A threshold above follow.jump is refused (the slider stops at it), then cleared.
        rig.recorder.publish("frame-daemon/frame/set/threshold", "1.5")
        wait_state(rig, lambda s: "follow.jump" in s["last_error"], "refused threshold")
        call("button", "press", {"entity_id": "button.frame_clear_error"})
        wait_state(rig, lambda s: s["last_error"] == "", "error cleared via HA")
        call("button", "press", {"entity_id": "button.frame_reset_settings"})
        wait_state(rig, lambda s: s["mode"] == "follow" and s["threshold"] == 0.05,
                   "settings reset via HA")
        ha("snapshot", "--out", str(snap_path), "--json")
        snap = json.loads(snap_path.read_text())
        entities = {e["entity_id"]: e for e in snap["entities"]}
        assert entities["select.frame_mode"]["state"] == "follow"
        assert entities["sensor.frame_last_error"]["state"] in ("", "unknown")
        assert float(entities["number.frame_threshold"]["attributes"]["max"]) == 0.9
        assert snap["mqtt_log"] == [], snap["mqtt_log"]
    finally:
        subprocess.run([str(TOOL), "stop", HA_DIR], capture_output=True, timeout=60)


def test_real_home_assistant_steers_the_slideshow(rig, tmp_path):
    pytest.importorskip("pygame", reason="the slideshow needs pygame (pip install '.[slideshow]')")
    os.environ["SDL_VIDEODRIVER"] = "dummy"  # inherited by the daemon's process
    (rig.photos / "trip").mkdir()
    shutil.copy(rig.photos / "dark.jpg", rig.photos / "trip" / "night.jpg")
    slideshow_config(rig)
    rig.daemon.start()
    wait_state(rig, lambda s: s.get("photo_name") == "bright.jpg", "the first photo")
    discovery = wait_for(lambda: rig.recorder.json("homeassistant/device/frame/config"),
                         what="discovery")
    expected = [c["default_entity_id"] for c in discovery["cmps"].values()]
    snap_path = Path(os.environ.get("FRAME_DAEMON_REAL_HA_SNAPSHOT", tmp_path / "ha.json"))
    snap_path = snap_path.with_name(snap_path.stem + "-slideshow.json")
    try:
        _, entities = start_ha(rig, expected, snap_path)
        assert entities["sensor.frame_photo"]["state"] == "bright.jpg"  # the photo's own name
        assert entities["select.frame_album"]["attributes"]["options"] == ["All photos", "trip"]

        call("button", "press", {"entity_id": "button.frame_photo_next"})
        wait_state(rig, lambda s: s["photo_name"] == "dark.jpg", "next photo via HA")
        call("select", "select_option", {"entity_id": "select.frame_album", "option": "trip"})
        wait_state(rig, lambda s: s["album"] == "trip" and s["photo_name"] == "night.jpg",
                   "album via HA")
        call("number", "set_value", {"entity_id": "number.frame_interval", "value": 120})
        wait_state(rig, lambda s: s["interval"] == 120.0, "interval via HA")
        call("select", "select_option", {"entity_id": "select.frame_photo_order",
                                         "option": "date"})
        wait_state(rig, lambda s: s["photo_order"] == "date", "order via HA")
        call("switch", "turn_on", {"entity_id": "switch.frame_slideshow_paused"})
        wait_state(rig, lambda s: s["slideshow_paused"] is True, "pause via HA")
        call("switch", "turn_off", {"entity_id": "switch.frame_screen"})
        wait_state(rig, lambda s: s["screen"] is False, "screen off via HA")
        call("switch", "turn_on", {"entity_id": "switch.frame_photos_follow_music"})
        wait_state(rig, lambda s: s["photos_follow_music"] is True, "photos follow music via HA")
        ha("snapshot", "--out", str(snap_path), "--json")
        snap = json.loads(snap_path.read_text())
        entities = {e["entity_id"]: e for e in snap["entities"]}
        assert entities["sensor.frame_photo"]["state"] == "night.jpg"
        assert entities["select.frame_album"]["state"] == "trip"
        assert float(entities["number.frame_interval"]["state"]) == 120
        assert entities["switch.frame_screen"]["state"] == "off"
        assert entities["switch.frame_photos_follow_music"]["state"] == "on"
        assert snap["mqtt_log"] == [], snap["mqtt_log"]
    finally:
        subprocess.run([str(TOOL), "stop", HA_DIR], capture_output=True, timeout=60)
