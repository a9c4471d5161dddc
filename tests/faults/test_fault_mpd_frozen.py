"""A frozen MPD (SIGSTOP: its port still accepts connections, but it never answers) must not hold
photo changes back: connecting happens off the loop, in the MPD session's thread."""

from __future__ import annotations

import os
import signal
import time

from faults import FREEZE_S, change_photo, missing, queue_as_a_person
from harness import mpd_queue
from rig import STATE, show, wait_state

PHOTO_INTERVAL_S = 2.0


def _stopped(pid: int) -> bool:
    return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "T"


def test_photos_are_scored_and_published_while_mpd_is_frozen(rig):
    # A long MPD timeout: a connect made on the loop would hold every photo back for 60 s.
    rig.config.write_text(rig.config.read_text().replace("timeout_s = 5", "timeout_s = 60"))
    pid = rig.mpd.proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        rig.daemon.start()
        first = wait_state(rig, lambda s: s["valence"] is not None,
                           "the first photo published with MPD frozen", timeout=30)
        assert first["mpd"] == "unavailable" and first["queued"] == []
        show(rig, "bright.jpg")
        wait_state(rig, lambda s: s["valence"] != first["valence"],
                   "the photo change published with MPD frozen", timeout=20)
        assert _stopped(pid) and rig.daemon.alive()
    finally:
        os.kill(pid, signal.SIGCONT)
    # Thawed: the decision made meanwhile reaches MPD's queue.
    s = wait_state(rig, lambda s: s["mpd"] == "connected" and s["queued"],
                   "the pending decision applied once MPD answers", timeout=90)
    files = [e["file"] for e in mpd_queue(rig.mpd)]
    assert set(s["queued"]) <= set(files)


def test_mpd_frozen_for_two_minutes_during_photo_changes(rig):
    person = queue_as_a_person(rig)
    rig.daemon.start()
    wait_state(rig, lambda s: s.get("queued"), "first tracks queued", timeout=60)
    pid = rig.mpd.proc.pid
    os.kill(pid, signal.SIGSTOP)
    latencies: list[float] = []
    frozen_at = time.monotonic()
    try:
        while time.monotonic() - frozen_at < FREEZE_S:
            started = time.monotonic()
            # Published at all while MPD is frozen (the first change may wait out one MPD
            # command's timeout, mpd.timeout_s = 5 here; later ones must not wait at all).
            change_photo(rig, ("bright.jpg", "dark.jpg")[len(latencies) % 2], timeout=30)
            latencies.append(time.monotonic() - started)
            assert _stopped(pid) and rig.daemon.alive()
            time.sleep(PHOTO_INTERVAL_S)  # the slideshow's pace, not a wait for the daemon
        s = rig.recorder.json(STATE)
        assert s["mpd"] == "unavailable" and "MPD" in s["error"]
    finally:
        os.kill(pid, signal.SIGCONT)
    thawed = time.monotonic()
    s = wait_state(rig, lambda s: s["mpd"] == "connected" and s["error"] is None and s["queued"],
                   "MPD back and the last decision applied", timeout=60)
    back_s = time.monotonic() - thawed
    assert missing(rig, person) == [], "the daemon removed a person's entries"
    later = sorted(latencies[1:])
    print(f"\nMPD frozen {FREEZE_S:.0f} s: {len(latencies)} photo changes published; first "
          f"{latencies[0]:.2f} s, then median {later[len(later) // 2] if later else 0:.3f} s, "
          f"max {max(later, default=0):.3f} s; MPD in use again {back_s:.1f} s after SIGCONT")
    assert "Traceback" not in rig.daemon.log()
    # Only the first change may meet MPD's timeout; the others must not wait for MPD at all (a
    # connect or command on the loop would cost each of them mpd.timeout_s, 5 s here).
    assert later, "no photo change after the first: FRAME_FAULT_FREEZE_S too short"
    assert later[len(later) // 2] < 1.0, f"photo changes waited for the frozen MPD: {later}"
