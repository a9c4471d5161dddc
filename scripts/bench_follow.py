#!/usr/bin/env python3
"""Benchmark the daemon end to end on real servers: photo to music latency, and memory over time.

    .venv/bin/python scripts/bench_follow.py [--changes 20] [--default-changes 5] [--soak 500]

Real mosquitto and MPD (null output with a software mixer, so follow mode's fade really runs), the
generated demo library, `frame-daemon run` in follow mode. The frame's photo (a 6000x4000 JPEG) is
replaced atomically with one of a different mood, and kept on show until the music has changed.

- latency, per change: photo replaced -> MPD's queue holds the newly chosen tracks; photo replaced
  -> the first of them is *playing* (after the fade); and, from the daemon's log, the follow
  decision (the hysteresis passed) -> that track playing. A change that does not complete within
  its deadline counts with the deadline as its time (never dropped) and is reported as timed out.
  Run twice, saying which is which:
  - test settings (the tests' [follow]: dwell 0, minimum interval 0, fade 1 s): every photo
    changes the music at once, `--changes` times;
  - shipped defaults (`frame_daemon.config.FollowConfig`): each photo is replaced once the
    minimum interval since the last change has passed, and the music changes when the dwell is
    over, so photo -> playing includes the dwell by design; `--default-changes` times.
- memory: the daemon's RSS (from /proc) after 50 and after `--soak` photo changes (test settings).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))
from bench_rig import STATE, contrasting_big_photos, start_frame, vitals  # noqa: E402

from bench_score import synthetic_photo  # noqa: E402
from frame_daemon.config import FollowConfig  # noqa: E402
from harness import DaemonProcess, make_servers, mpd_queue  # noqa: E402
from servers import MqttRecorder, wait_for  # noqa: E402


def defaults_block() -> str:
    f = FollowConfig()
    return "\n".join(f"{k} = {getattr(f, k)!r}" for k in
                     ("threshold", "dwell_s", "min_interval_s", "jump", "smoothing", "fade_s",
                      "tracks"))


@dataclass
class Change:
    to_queue_s: float
    to_playing_s: float
    decision_to_playing_s: float | None
    timed_out: bool
    kept: bool = False  # the track playing fit the new photo and played on, the new ones after it


FOLLOW = " frame_daemon.music.controller: follow: "
QUEUED_NEXT = " frame_daemon.music.controller: queued "  # the new tracks follow the one playing


def decision_times(log_text: str, after: float, what: str = FOLLOW) -> list[float]:
    """Wall-clock times of the daemon's follow decisions (or other `what` log lines) after `after`."""
    times = []
    for line in log_text.splitlines():
        if what not in line:
            continue
        stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if stamp >= after:
            times.append(stamp)
    return times


def stats(label: str, values: list[float], unit: str = "s") -> str:
    if not values:
        return f"{label}: no samples"
    scale = 1000 if unit == "ms" else 1
    xs = sorted(v * scale for v in values)
    p90 = xs[int(0.9 * (len(xs) - 1))]
    return (f"{label}: median {statistics.median(xs):.{0 if unit == 'ms' else 2}f} {unit}, "
            f"p90 {p90:.{0 if unit == 'ms' else 2}f} {unit}, max {xs[-1]:.{0 if unit == 'ms' else 2}f} "
            f"{unit}, n={len(xs)}")


def run_changes(label: str, follow: str | None, n: int, deadline_s: float, big: list[Path],
                soak: int = 0, pause_s: float = 0.0) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-follow-") as tmp:
        work = Path(tmp)
        mpd, broker = make_servers(work, mixer="software")
        frame = start_frame(work, mpd, broker, big[0], follow=follow)
        daemon, recorder, current = frame.daemon, frame.recorder, frame.current
        try:
            frame.wait_state(lambda s: s.get("queued"), 60, what="first tracks queued")
            changes = []
            for i in range(1, n + 1):
                time.sleep(pause_s)  # the scenario: the minimum interval has passed
                changes.append(measure(i, current, big, mpd, recorder, daemon, deadline_s))
            timed_out = sum(c.timed_out for c in changes)
            print(f"\n[{label}]", flush=True)
            print("  " + stats("photo replaced -> new tracks in MPD's queue",
                               [c.to_queue_s for c in changes], "ms"))
            print("  " + stats("photo replaced -> first new track playing (fade included)",
                               [c.to_playing_s for c in changes if not c.kept]))
            print("  " + stats("follow decision -> first new track playing",
                               [c.decision_to_playing_s for c in changes
                                if c.decision_to_playing_s is not None]))
            kept = sum(c.kept for c in changes)
            if kept:
                print(f"  {kept} of {n} changes let the track playing play on (it fits the new "
                      "photo; the new tracks follow it): not in the playing figures")
            print(f"  {timed_out} of {n} changes timed out after {deadline_s:.0f} s (counted at "
                  f"{deadline_s:.0f} s above)", flush=True)
            if soak:
                soak_memory(daemon, recorder, current, work, soak)
        finally:
            frame.close()
            mpd.stop()
            broker.stop()


def measure(i: int, current: Path, big: list[Path], mpd, recorder: MqttRecorder,
            daemon: DaemonProcess, deadline_s: float) -> Change:
    """Show the other photo and keep it on show until its music plays (or the deadline)."""
    before = recorder.json(STATE) or {}
    tmp = current.with_name(".incoming.jpg")
    shutil.copy(big[i % 2], tmp)
    wall0, t0 = time.time(), time.perf_counter()
    tmp.replace(current)
    to_queue = to_playing = None
    deadline = t0 + deadline_s
    while time.perf_counter() < deadline:
        s = recorder.json(STATE) or {}
        queued = s.get("queued") or []
        if queued and queued != before.get("queued"):
            queue = mpd_queue(mpd)
            files = [e["file"] for e in queue]
            if to_queue is None and all(u in files for u in queued):
                to_queue = time.perf_counter() - t0
            c = mpd.client()
            try:
                playing = c.currentsong().get("file")
            finally:
                c.disconnect()
            if to_queue is not None and playing == queued[0]:
                to_playing = time.perf_counter() - t0
                break
            if to_queue is not None and decision_times(daemon.log(), wall0, QUEUED_NEXT):
                break  # by design the new tracks wait for the one playing: nothing to time
        time.sleep(0.002 if to_queue is None else 0.02)
    if to_playing is None and to_queue is not None \
            and decision_times(daemon.log(), wall0, QUEUED_NEXT):
        time.sleep(0.5)
        return Change(to_queue, deadline_s, None, False, kept=True)
    timed_out = to_playing is None
    to_queue = deadline_s if to_queue is None else to_queue
    to_playing = deadline_s if to_playing is None else to_playing
    decided = decision_times(daemon.log(), wall0)
    decision_to_play = (wall0 + to_playing - decided[-1]) if decided and not timed_out else None
    time.sleep(0.5)  # let the loop settle before the next photo
    return Change(to_queue, to_playing, decision_to_play, timed_out)


def soak_memory(daemon: DaemonProcess, recorder: MqttRecorder, current: Path, work: Path,
                soak: int) -> None:
    assert daemon.proc is not None
    pid = daemon.proc.pid
    small = []
    for seed in range(2):
        path = work / f"small{seed}.jpg"
        path.write_bytes(synthetic_photo(1600, 1200, 20 + seed))
        small.append(path)
    rss: dict[int, float] = {}
    done, started = 0, time.monotonic()
    while done < soak:
        # Count before showing: a state published before we looked would be missed.
        before = recorder.count(STATE)
        tmp = current.with_name(".incoming.jpg")
        shutil.copy(small[done % 2], tmp)
        tmp.replace(current)
        wait_for(lambda b=before: recorder.count(STATE) > b, 10, interval=0.005, what="state update")
        done += 1
        if done in (50, soak) or done % 100 == 0:
            rss[done] = vitals(pid)["rss_mb"]
            print(f"  {done} photo changes: daemon RSS {rss[done]:.1f} MB "
                  f"({(time.monotonic() - started):.0f} s)", flush=True)
    if 50 in rss:
        growth = (rss[soak] / rss[50] - 1) * 100
        print(f"  daemon RSS after 50 changes {rss[50]:.1f} MB, after {soak} {rss[soak]:.1f} MB "
              f"({growth:+.1f}%)", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--changes", type=int, default=20, help="changes with the test settings")
    ap.add_argument("--default-changes", type=int, default=5,
                    help="changes with the shipped defaults (each waits for the dwell)")
    ap.add_argument("--soak", type=int, default=500, help="photo changes for the memory soak")
    args = ap.parse_args()
    print("preparing two 6000x4000 photos of different mood...", flush=True)
    big = contrasting_big_photos(ROOT / "build" / "bench-photos")
    print("machine: 2 cores shared with other work; figures are medians", flush=True)
    if args.changes:
        run_changes("test settings: threshold 0.05, dwell 0 s, min interval 0 s, fade 1 s",
                    None, args.changes, 20.0, big, soak=args.soak)
    if args.default_changes:
        f = FollowConfig()
        deadline = f.dwell_s * 4 + f.min_interval_s + f.fade_s + 15
        run_changes(f"shipped defaults: {defaults_block().replace(chr(10), ', ')}; each photo "
                    f"replaced {f.min_interval_s:.0f} s after the last change",
                    "", args.default_changes, deadline, big, pause_s=f.min_interval_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
