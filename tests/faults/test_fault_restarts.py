"""Broker and MPD killed and restarted, several times, while photos change: the daemon survives,
keeps publishing, and never removes a person's own queue entries."""

from __future__ import annotations

from faults import change_photo, kill, missing, queue_as_a_person, requeue
from rig import AVAIL, STATE, show, wait_state
from servers import wait_for


def restart_mpd(rig, stop) -> None:
    """Stop MPD with `stop`, wait until the daemon has noticed, start it, wait until it is back."""
    stop()
    wait_state(rig, lambda s: s["mpd"] == "unavailable", "MPD unavailable in the state")
    rig.mpd.start()
    wait_state(rig, lambda s: s["mpd"] == "connected", "MPD connected again", timeout=60)


def test_mpd_and_broker_killed_and_restarted_during_photo_changes(rig):
    person = queue_as_a_person(rig)
    rig.daemon.start()
    wait_state(rig, lambda s: s.get("queued"), "first tracks queued", timeout=60)
    lost_by_mpd = 0
    photos = ("bright.jpg", "dark.jpg")
    shown = 0

    def next_photo() -> str:  # alternate, so that every change is one
        nonlocal shown
        shown += 1
        return photos[shown % 2]

    for _ in range(3):
        # MPD stopped cleanly during a change: it saves its queue and renumbers every id when it
        # comes back.
        show(rig, next_photo())
        restart_mpd(rig, rig.mpd.stop)
        assert missing(rig, person) == []
        # MPD killed during a change: its queue is whatever it last saved.
        show(rig, next_photo())
        restart_mpd(rig, lambda: kill(rig.mpd))
        if gone := missing(rig, person):  # MPD's loss (no state saved), not the daemon's
            lost_by_mpd += len(gone)
            requeue(rig, gone)
        change_photo(rig, next_photo())
        # The broker killed: it forgets every retained message; the daemon sends them again.
        kill(rig.broker)
        seen = rig.recorder.count(STATE)
        show(rig, next_photo())  # scored with no broker: published once it is back
        rig.broker.start()
        wait_for(lambda b=seen: rig.recorder.text(AVAIL) == "online" and rig.recorder.count(STATE) > b,
                 30, what="availability and state after the broker restart")
        s = change_photo(rig, next_photo())
        assert s["mpd"] == "connected"
        assert rig.daemon.alive()
    # After every fault, a last change is carried out and the person's entries are all there.
    wait_state(rig, lambda s: s["queued"] and s["error"] is None, "a clean state at the end")
    assert missing(rig, person) == [], f"the daemon removed a person's entries (MPD lost {lost_by_mpd})"
    log = rig.daemon.log()
    assert "Traceback" not in log and "internal error" not in log
