"""The daemon with the built-in slideshow as its photo source, steered from Home Assistant over
real MQTT: real mosquitto and MPD, the real model, the slideshow on SDL's dummy display."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from conftest import gradient_photo
from harness import wait_for
from rig import STATE, slideshow_config, state, wait_state

os.environ["SDL_VIDEODRIVER"] = "dummy"  # inherited by the daemon's process
pytest.importorskip("pygame", reason="the slideshow needs pygame (pip install '.[slideshow]')")

SET = "frame-daemon/frame/set/"


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
    # Kept in the one settings store, beside the follow settings.
    saved = json.loads((rig.tmp / "state" / "settings.json").read_text())["slideshow"]
    assert saved == {"interval_s": 45.0, "paused": True, "order": "date", "album": "trip",
                     "photos_follow_music": True}

    # Reset settings: back to the config's, for the slideshow as for the music.
    rig.recorder.publish(SET + "reset_settings", "PRESS")
    wait_state(rig, lambda s: s["interval"] == 3600.0 and s["photo_order"] == "name"
               and s["album"] == "All photos" and not s["slideshow_paused"]
               and not s["photos_follow_music"], "the config's slideshow settings back")


def photo_moods(rig) -> dict[str, tuple[float, float]]:
    """The photo moods the daemon's slideshow has scored and cached so far, by file name."""
    db = sqlite3.connect(f"file:{rig.tmp / 'state' / 'slideshow.sqlite'}?mode=ro", uri=True)
    try:
        return {Path(p).name: (v, a) for p, v, a in db.execute(
            "SELECT path, valence, arousal FROM photos WHERE valence IS NOT NULL")}
    except sqlite3.OperationalError:  # not created yet
        return {}
    finally:
        db.close()


def play(rig, uri: str) -> None:
    c = rig.mpd.client()
    try:
        c.clear()
        c.add(uri)
        c.play(0)
    finally:
        c.disconnect()


def test_photos_follow_the_track_mpd_plays(rig, demo_photos):
    for old in rig.photos.iterdir():
        old.unlink()
    for photo in demo_photos.glob("*.jpg"):
        shutil.copy(photo, rig.photos / photo.name)
    slideshow_config(rig)
    rig.config.write_text(rig.config.read_text().replace(
        'order = "name"', 'order = "name"\nphotos_follow_music = true'))
    rig.daemon.start()
    wait_state(rig, lambda s: s.get("index_size") == 20 and s.get("photos_follow_music"),
               "the track index and the reverse mode")
    count = len(list(rig.photos.glob("*.jpg")))  # all of the demo's photos (10)
    moods = wait_for(lambda: len(m := photo_moods(rig)) == count and m, timeout=60,
                     what="every photo scored and cached in the background")
    by_arousal = sorted(moods, key=lambda n: moods[n][1])
    half = len(by_arousal) // 2
    calmer, livelier = set(by_arousal[:half]), set(by_arousal[half:])
    arousal = {n: m[1] for n, m in moods.items()}
    shown = []
    for track in ("Lake_Trio/calm_lake.flac", "The_Brights/excited_party.flac",
                  "Nightfall/calm_evening.flac"):
        before = state(rig).get("photo_name")
        play(rig, track)
        s = wait_state(rig, lambda s, b=before: s.get("photo_name") not in (b, None),
                       f"a photo for {track}", timeout=30)
        shown.append(s["photo_name"])
    print(shown, {n: [round(x, 2) for x in m] for n, m in moods.items()})
    # A calm track brings one of the calmer half of the photos, a party track one of the
    # livelier half, and the next calm track a calmer photo again.
    assert shown[0] in calmer and shown[1] in livelier, (shown, moods)
    assert arousal[shown[2]] < arousal[shown[1]], (shown, moods)


def test_an_album_folder_added_or_removed_is_offered_in_home_assistant(rig):
    slideshow_config(rig)
    rig.daemon.start()

    def album_options() -> list[str]:
        discovery = rig.recorder.json("homeassistant/device/frame/config") or {}
        return discovery.get("cmps", {}).get("album", {}).get("options", [])

    wait_for(lambda: album_options() == ["All photos"], what="the first discovery")
    wait_state(rig, lambda s: s.get("photo_name"), "the first photo")
    (rig.photos / "garden").mkdir()
    gradient_photo(320, 240, 5).save(rig.photos / "garden" / "roses.jpg")
    wait_for(lambda: album_options() == ["All photos", "garden"], timeout=15,
             what="the new album offered")
    (rig.photos / "garden").rename(rig.photos / "Garden 2025")
    wait_for(lambda: album_options() == ["All photos", "Garden 2025"], timeout=15,
             what="the renamed album offered")
    shutil.rmtree(rig.photos / "Garden 2025")
    wait_for(lambda: album_options() == ["All photos"], timeout=15, what="the album gone")
    rig.recorder.publish(SET + "album", "Garden 2025")
    wait_state(rig, lambda s: "no folder 'Garden 2025'" in (s.get("last_error") or ""),
               "the removed album refused")


def test_the_slideshows_own_notices_reach_the_loop_as_events(tmp_path):
    """The display schedule switching the screen, and the photo folders' subfolders changing,
    are the slideshow's events (not commands): the loop remembers the screen and tells Home
    Assistant, and announces discovery again so the album select offers the new folders."""
    from frame_daemon.config import parse_config
    from frame_daemon.daemon import Daemon
    from frame_daemon.events import AlbumsChanged, ScreenScheduled

    daemon = Daemon(parse_config({"source": {"kind": "slideshow", "path": str(tmp_path)},
                                  "state": {"directory": str(tmp_path / "state")}}))
    assert daemon.state_payload()["screen"] is True
    daemon.handle(ScreenScheduled(False))
    assert daemon.state_payload()["screen"] is False
    assert daemon.settings.store.slideshow.screen is False  # kept with the settings
    assert daemon.state.announce_at is None
    daemon.handle(AlbumsChanged(("Holidays",)))
    assert daemon.state.announce_at is not None
    assert daemon.state.announce_why == "the photo folders' subfolders changed"
