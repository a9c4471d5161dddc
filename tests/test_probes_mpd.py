"""Probes: MPD changed under the daemon mid-operation (real MPD, real broker, a real daemon): a
person clears the queue during a fade, MPD rescans its database while the daemon plays."""

from __future__ import annotations

from test_transitions import (  # noqa: F401
    FADE_S,
    USER_VOLUME,
    fade_rig,
    holds,
    into_a_fade,
    mpd_call,
    new_tracks,
    playing_first_tracks,
    show,
    volume,
)

from harness import mpd_queue, mpd_status, wait_for
from rig import state, wait_state


def test_a_queue_cleared_by_a_person_mid_fade_stays_cleared_at_their_volume(fade_rig):  # noqa: F811
    rig = fade_rig
    into_a_fade(rig)
    mpd_call(rig, "clear")  # a person: "stop it all"
    wait_for(lambda: volume(rig) == USER_VOLUME, 10, what="the user's volume given back")
    holds(lambda: not mpd_queue(rig.mpd) and mpd_status(rig.mpd)["state"] == "stop", FADE_S + 2,
          "the person's empty queue stays empty and MPD stays stopped")
    assert volume(rig) == USER_VOLUME and rig.daemon.alive()
    assert "Traceback" not in rig.daemon.log()


def test_an_index_refresh_that_met_no_mpd_is_tried_again_once_mpd_is_up(rig):
    # A frame and its MPD booting together: the first refresh finds no MPD. The index must not
    # stay empty (no music at all) until MPD's database happens to change.
    rig.mpd.stop()
    rig.daemon.start()
    wait_state(rig, lambda s: "index refresh failed" in (s.get("last_error") or ""),
               "the refresh without MPD failed", 60)
    assert state(rig)["index_size"] == 0
    rig.mpd.start()
    wait_state(rig, lambda s: s["index_size"] > 0 and s.get("queued") and not s.get("error"),
               "the index refreshed, music queued and the error over once MPD is up", 60)
    assert "Traceback" not in rig.daemon.log()


def test_a_doesnt_fit_during_a_fade_ends_at_the_users_volume_with_music_playing(fade_rig):  # noqa: F811
    rig = fade_rig
    into_a_fade(rig)
    rig.recorder.publish("frame-daemon/frame/set/feedback", "doesnt_fit")
    wait_for(lambda: (s := rig.recorder.json("frame-daemon/frame/state")) and s["taste"]["verdicts"] == 1,
             10, what="the verdict kept")
    wait_for(lambda: volume(rig) == USER_VOLUME and mpd_status(rig.mpd)["state"] == "play", 15,
             what="the user's volume back, music playing")
    holds(lambda: volume(rig) == USER_VOLUME, FADE_S + 1, "no ramp left running")
    assert rig.daemon.alive() and "Traceback" not in rig.daemon.log()
