"""Probes: verdicts as people and scripts send them (real broker, real MPD, a real daemon): odd
spellings, and a verdict that arrives as MPD goes away. A verdict is kept or refused with its
reason; the music comes back with MPD."""

from __future__ import annotations

import pytest
from test_taste_servers import FEEDBACK
from test_transitions import (  # noqa: F401  (the fixture)
    USER_VOLUME,
    fade_rig,
    new_tracks,
    playing_first_tracks,
    playing_uri,
    show,
    volume,
)

from harness import mpd_status
from rig import rig, state, wait_state  # noqa: F401  (the fixture)
from servers import wait_for


def test_odd_verdicts_are_refused_with_a_reason_and_one_during_an_mpd_restart_is_safe(rig):  # noqa: F811
    rig.daemon.start()
    wait_state(rig, lambda s: s.get("queued") and s.get("now_playing"), "the first track plays")
    wait_for(lambda: mpd_status(rig.mpd)["state"] == "play", 10, what="MPD playing")
    for n, odd in enumerate(("FITS", "  fits\n", "Doesn't Fit", "Doesn\u2019t fit"), 1):  # one at a time: the
        rig.recorder.publish(FEEDBACK, odd)  # queue folds a command into the same one waiting
        wait_state(rig, lambda s, n=n: s["taste"]["verdicts"] == n, f"verdict {n} kept")
    for bad in ("ｆｉｔｓ", "fits\x00", "fit", "", "\udcff".encode("utf-8", "surrogatepass"), "👍" * 10_000):
        rig.recorder.publish(FEEDBACK, bad)
    wait_state(rig, lambda s: "expected fits or doesnt_fit" in s["last_error"], "refused with why")
    assert state(rig)["taste"]["verdicts"] == 4

    rig.mpd.stop()
    rig.recorder.publish(FEEDBACK, "doesnt_fit")  # moves the music on: MPD is gone meanwhile
    wait_state(rig, lambda s: s["mpd"] == "unavailable", "MPD unavailable in state")
    rig.mpd.start()
    wait_state(rig, lambda s: s["mpd"] == "connected" and s.get("queued"), "music again", 30)
    wait_for(lambda: mpd_status(rig.mpd)["state"] == "play", 20, what="MPD playing again")
    assert rig.daemon.alive() and "Traceback" not in rig.daemon.log()


def test_taste_reset_from_the_command_line_while_the_daemon_runs(rig):  # noqa: F811
    import subprocess
    import sys

    from conftest import ROOT

    rig.daemon.start()
    wait_state(rig, lambda s: s.get("queued") and s.get("now_playing"), "the first track plays")
    wait_for(lambda: mpd_status(rig.mpd)["state"] == "play", 10, what="MPD playing")
    rig.recorder.publish(FEEDBACK, "doesnt_fit")
    wait_state(rig, lambda s: s["taste"]["verdicts"] == 1, "the verdict kept")
    done = subprocess.run([sys.executable, "-m", "frame_daemon", "taste", "--reset", "--config",
                           str(rig.config)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0 and "forgot 1 verdicts" in done.stdout, done.stdout + done.stderr
    # docs/taste.md: "also while the daemon runs": the daemon must stop applying it.
    wait_state(rig, lambda s: s["taste"]["verdicts"] == 0, "the running frame forgot it too", 20)


def test_a_verdict_during_a_fade_is_about_the_photo_the_fading_track_was_chosen_for(fade_rig):  # noqa: F811
    # The next photo's tracks are chosen and the fade to them is under way: the track still
    # playing was chosen for the photo before, and so the verdict is about that photo.
    from frame_daemon.music.taste_store import TasteStore

    fade_rig.start(fade_s=8.0)  # long enough for the verdict to arrive while the track fades
    first = playing_first_tracks(fade_rig)
    before = playing_uri(fade_rig)
    show(fade_rig, "bright.jpg")
    second = new_tracks(fade_rig, first)
    assert abs(second["target"]["valence"] - first["target"]["valence"]) > 0.1  # another photo
    wait_for(lambda: volume(fade_rig) < USER_VOLUME, 10, interval=0.02, what="the fade under way")
    fade_rig.recorder.publish(FEEDBACK, "fits")
    wait_state(fade_rig, lambda s: s["taste"]["verdicts"] == 1, "the verdict kept")
    assert playing_uri(fade_rig) == before, "the fade ended before the verdict: make it longer"
    fade_rig.daemon.stop()
    with TasteStore.in_directory(fade_rig.tmp / "state") as store:
        [verdict] = store.verdicts()
    assert verdict.uri == before
    chosen_for = (first["target"]["valence"], first["target"]["arousal"])
    assert (verdict.target.valence, verdict.target.arousal) == pytest.approx(chosen_for, abs=2e-3)
    assert (verdict.photo.valence, verdict.photo.arousal) == pytest.approx(
        (first["valence"], first["arousal"]), abs=2e-3)
