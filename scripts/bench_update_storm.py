#!/usr/bin/env python3
"""Benchmark the daemon under an MPD update storm: photo -> state latency and CPU, calm and stormy.

    .venv/bin/python scripts/bench_update_storm.py [--tracks 500] [--seconds 60] [--every 3]
        [--track-seconds 20]

Real mosquitto and MPD, a library of `--tracks` short FLAC files (the music folder readable by
the daemon, as on a frame that analyses its own music), `frame-daemon run` in follow mode. Once the
index holds every track and its first analysis is done, the frame's photo alternates between two
photos of different mood every 2 s, first for `--seconds` in calm, then for `--seconds` while a
storm runs: every file of the library touched and MPD told to `update`, every `--every` seconds.

- photo -> state: the photo replaced -> the retained state shows its mood (median, p90, max);
- CPU: the daemon's CPU seconds per minute (its own and its analysis workers'), from /proc;
- index refreshes: how many the daemon ran during the storm (from its log).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))
from bench_rig import STATE, Frame, cpu_s, servers, start_frame  # noqa: E402

from bench_score import synthetic_photo  # noqa: E402
from servers import LIBRARY, Mpd, MqttRecorder, wait_for, write_library  # noqa: E402

REFRESHED = "index_worker: index refreshed:"  # the worker's one line per refresh


def library(n: int) -> list[tuple]:
    """`n` tracks: the test library's moods and tags, under numbered artists."""
    return [(f"{stem}_{i}", f"{title} {i}", f"{artist} {i // len(LIBRARY)}", genre, mood, bpm, hz)
            for i, (stem, title, artist, genre, mood, bpm, hz) in
            ((i, LIBRARY[i % len(LIBRARY)]) for i in range(n))]


def storm(mpd: Mpd, files: list[Path], every_s: float, stop: threading.Event) -> None:
    c = mpd.client()
    try:
        while not stop.wait(every_s):
            now = time.time()
            for f in files:
                os.utime(f, (now, now))
            c.update()
    finally:
        c.disconnect()


def photo_changes(current: Path, photos: list[Path], valences: list[float],
                  recorder: MqttRecorder, seconds: float) -> list[float]:
    """Alternate the photos every 2 s for `seconds`; each one's photo -> state latency."""
    latencies = []
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        i += 1
        want = valences[i % 2]
        tmp = current.with_name(".incoming.jpg")
        shutil.copy(photos[i % 2], tmp)
        t0 = time.perf_counter()
        tmp.replace(current)
        wait_for(lambda w=want: (s := recorder.json(STATE)) and s.get("valence") == w, 30,
                 interval=0.002, what="the new photo's state")
        latencies.append(time.perf_counter() - t0)
        time.sleep(max(0.0, 2.0 - (time.perf_counter() - t0)))
    return latencies


def figures(label: str, latencies: list[float], cpu: float, seconds: float, log_text: str,
            refreshes_before: int) -> None:
    xs = sorted(v * 1000 for v in latencies)
    refreshes = log_text.count(REFRESHED) - refreshes_before
    print(f"  {label}: photo -> state median {statistics.median(xs):.0f} ms, "
          f"p90 {xs[int(0.9 * (len(xs) - 1))]:.0f} ms, max {xs[-1]:.0f} ms (n={len(xs)}); "
          f"CPU {cpu / seconds * 60:.1f} s/min; {refreshes} index refreshes", flush=True)


def run_phases(frame: Frame, mpd: Mpd, files: list[Path], photos: list[Path],
               args: argparse.Namespace, stop: threading.Event) -> None:
    """Calm, then stormy: `--seconds` of photo changes each, with their figures."""
    daemon, recorder, current = frame.daemon, frame.recorder, frame.current
    frame.wait_state(lambda s: s.get("index_size") == args.tracks, 300, what="every track indexed")
    frame.wait(lambda: "audio analysis:" in daemon.log(), 600, what="the first analysis")
    valences = [recorder.json(STATE)["valence"]]
    shutil.copy(photos[1], current.with_name(".incoming.jpg"))
    current.with_name(".incoming.jpg").replace(current)
    frame.wait_state(lambda s: s["valence"] != valences[0], 30, what="photo 2")
    valences.append(recorder.json(STATE)["valence"])

    print(f"{args.tracks} tracks; photo every 2 s; {args.seconds:.0f} s each phase; "
          "2 cores shared with other work", flush=True)
    for label, stormy in (("calm", False), (f"storm (touch all + update every "
                                            f"{args.every:.0f} s)", True)):
        thread = None
        if stormy:
            stop.clear()
            thread = threading.Thread(target=storm, args=(mpd, files, args.every, stop))
            thread.start()
        refreshes = daemon.log().count(REFRESHED)
        cpu0, t0 = cpu_s(frame.pid), time.monotonic()
        latencies = photo_changes(current, photos, valences, recorder, args.seconds)
        cpu, elapsed = cpu_s(frame.pid) - cpu0, time.monotonic() - t0
        stop.set()
        if thread is not None:
            thread.join()
        figures(label, latencies, cpu, elapsed, daemon.log(), refreshes)
    if args.log:
        shutil.copy(daemon.log_path, args.log)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tracks", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--every", type=float, default=3.0, help="seconds between touch + update")
    ap.add_argument("--track-seconds", type=float, default=20.0, help="length of each track")
    ap.add_argument("--log", type=Path, help="keep the daemon's log here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-storm-") as tmp:
        work = Path(tmp)
        music = work / "music"
        print(f"writing {args.tracks} tracks...", flush=True)
        files = write_library(music, seconds=args.track_seconds, library=library(args.tracks))
        with servers(work, music, mixer="software") as (mpd, broker):
            mpd.update_and_wait(120)
            photos = []
            for seed in (1, 2):
                photo = work / f"photo{seed}.jpg"
                photo.write_bytes(synthetic_photo(1600, 1200, 40 + seed * 7))
                photos.append(photo)
            frame = start_frame(work, mpd, broker, photos[0])
            stop = threading.Event()
            try:
                run_phases(frame, mpd, files, photos, args, stop)
            finally:
                stop.set()
                frame.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
