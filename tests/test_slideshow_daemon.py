"""The daemon with the built-in slideshow as its photo source, steered from Home Assistant over
real MQTT: real mosquitto and MPD, the real model, the slideshow on SDL's dummy display."""

from __future__ import annotations

import json
import os

import pytest

from conftest import gradient_photo
from harness import wait_for
from rig import STATE, state, wait_state

os.environ["SDL_VIDEODRIVER"] = "dummy"  # inherited by the daemon's process
pytest.importorskip("pygame", reason="the slideshow needs pygame (pip install '.[slideshow]')")

SET = "frame-daemon/frame/set/"


def slideshow_config(rig) -> None:
    text = rig.config.read_text()
    text = text.replace('kind = "file"', 'kind = "slideshow"')
    text = text.replace(f'path = "{rig.current}"', f'path = "{rig.photos}"')
    text = text.replace("settle_s = 0.1", 'settle_s = 0.1\ninterval_s = 3600\nfade_s = 0\n'
                                          'width = 320\nheight = 180\norder = "name"')
    rig.config.write_text(text)


def test_home_assistant_steers_the_slideshow_and_its_settings_persist(rig):
    (rig.photos / "trip").mkdir()
    gradient_photo(600, 800, 21).save(rig.photos / "trip" / "beach.jpg", quality=90)
    slideshow_config(rig)
    rig.daemon.start()
    # Name order: bright.jpg first; the photo sensor shows the photo's own name, and its mood.
    first = wait_state(rig, lambda s: s.get("photo_name") == "bright.jpg" and s.get("mood"),
                       "the first photo scored")
    assert first["interval"] == 3600.0 and first["photo_order"] == "name"
    discovery = wait_for(lambda: rig.recorder.json("homeassistant/device/frame/config"),
                         what="discovery")
    cmps = discovery["cmps"]
    assert {"photo_next", "photo_previous", "slideshow_paused", "screen", "interval", "album",
            "photo_order", "photos_follow_music"} <= set(cmps)
    assert cmps["album"]["options"] == ["All photos", "trip"]

    rig.recorder.publish(SET + "photo_next", "PRESS")
    wait_state(rig, lambda s: s.get("photo_name") == "dark.jpg", "the next photo")
    rig.recorder.publish(SET + "photo_previous", "PRESS")
    wait_state(rig, lambda s: s.get("photo_name") == "bright.jpg", "the previous photo")

    # Refused values are named in last_error, and the state keeps the old value.
    rig.recorder.publish(SET + "interval", "1")
    refused = wait_state(rig, lambda s: "interval" in (s.get("last_error") or ""), "refusal")
    assert refused["interval"] == 3600.0
    rig.recorder.publish(SET + "album", "nowhere")
    refused = wait_state(rig, lambda s: "nowhere" in (s.get("last_error") or ""), "album refusal")
    assert refused["last_error"].startswith("album: no folder 'nowhere'; choose one of All photos")

    rig.recorder.publish(SET + "interval", "45")
    rig.recorder.publish(SET + "slideshow_paused", "ON")
    rig.recorder.publish(SET + "photo_order", "date")
    rig.recorder.publish(SET + "album", "trip")
    rig.recorder.publish(SET + "photos_follow_music", "ON")
    wait_state(rig, lambda s: s.get("photo_name") == "beach.jpg" and s["album"] == "trip"
               and s["interval"] == 45.0 and s["slideshow_paused"] and s["photo_order"] == "date"
               and s["photos_follow_music"], "the album, interval, pause, order and reverse mode")

    # A restart keeps what Home Assistant set.
    assert rig.daemon.stop() == 0
    rig.recorder.publish(STATE, "", retain=True)  # forget the retained state
    wait_for(lambda: not state(rig), what="the state cleared")
    rig.daemon.start()
    after = wait_state(rig, lambda s: s.get("photo_name"), "the photo after the restart")
    assert after["album"] == "trip" and after["photo_name"] == "beach.jpg"
    assert after["interval"] == 45.0 and after["slideshow_paused"] is True
    assert after["photo_order"] == "date" and after["photos_follow_music"] is True
    print(json.dumps(after)[:200])
