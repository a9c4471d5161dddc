"""The household's taste against real servers: the buttons over a real broker, a real MPD, the
daemon as a process (see test_taste_daemon.py for the rules, in-process)."""

from __future__ import annotations

import json

from harness import mpd_status
from rig import rig, wait_state  # noqa: F401  (the fixture)
from servers import wait_for

FEEDBACK = "frame-daemon/frame/set/feedback"
FORGET = "frame-daemon/frame/set/forget_taste"


def test_the_buttons_over_mqtt_are_announced_recorded_kept_over_a_restart_and_forgotten(rig):  # noqa: F811
    rig.daemon.start()
    wait_state(rig, lambda s: s.get("queued") and s.get("now_playing"), "the first track plays")
    discovery = json.loads(rig.recorder.messages["homeassistant/device/frame/config"])
    cmps = discovery["cmps"]
    assert cmps["feedback_fits"]["payload_press"] == "fits"
    assert cmps["feedback_doesnt_fit"]["payload_press"] == "doesnt_fit"
    assert cmps["feedback_fits"]["command_topic"] == FEEDBACK == cmps["feedback_doesnt_fit"][
        "command_topic"]
    assert cmps["forget_taste"]["command_topic"] == FORGET and cmps["taste"]["p"] == "sensor"
    wait_for(lambda: mpd_status(rig.mpd)["state"] == "play", 10, what="MPD playing")
    first = mpd_status(rig.mpd)["songid"]

    rig.recorder.publish(FEEDBACK, "doesnt_fit")  # Home Assistant's Doesn't fit button
    s = wait_state(rig, lambda s: s["taste"]["verdicts"] == 1, "the verdict kept")
    assert s["taste"]["enabled"] and s["last_error"] == ""
    wait_for(lambda: mpd_status(rig.mpd).get("songid") != first, 10, what="the music moved on")

    rig.daemon.stop()
    rig.recorder.messages.clear()
    rig.daemon.start()
    wait_state(rig, lambda s: s.get("taste", {}).get("verdicts") == 1, "kept over the restart")

    rig.recorder.publish(FORGET, "PRESS")
    wait_state(rig, lambda s: s["taste"]["verdicts"] == 0, "forgotten")


def test_match_applies_the_households_taste_from_the_same_state_folder(rig):  # noqa: F811
    import subprocess
    import sys

    from frame_daemon.mood import Mood
    from frame_daemon.music.taste import Arrival, Verdict
    from frame_daemon.music.taste_store import TasteStore

    def match() -> dict:
        proc = subprocess.run([sys.executable, "-m", "frame_daemon", "match", str(rig.current),
                               "--config", str(rig.config), "--json", "-n", "3"],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    subprocess.run([sys.executable, "-m", "frame_daemon", "index", "--config", str(rig.config),
                    "--no-analysis"], capture_output=True, text=True, timeout=60, check=True)
    before = match()
    assert before["target"]["taste_shift"] == {"valence": 0.0, "arousal": 0.0}
    first = before["tracks"][0]
    blend = before["target"]["blend"]
    target = Mood(blend["valence"], blend["arousal"])
    with TasteStore.in_directory(rig.tmp / "state") as store:  # judged doesn't fit twice here
        for i in range(2):
            store.add(Verdict(False, Arrival.BUTTON, 1.7e9 + i, target, target, first["uri"],
                              Mood(first["valence"], first["arousal"]), first["genre"]))
    after = match()
    assert first["uri"] not in [t["uri"] for t in after["tracks"]]
    assert after["tracks"] and all("taste" in t for t in after["tracks"])
