#!/usr/bin/env python3
"""Benchmark the daemon end to end on real servers: photo-to-queue latency and memory over time.

    .venv/bin/python scripts/bench_follow.py [--changes 20] [--soak 500]

- latency: the frame's photo (a 6000x4000 JPEG) is replaced atomically; we time until MPD's queue
  holds the newly chosen tracks (seen by polling MPD, the ground truth). Median and p90 over
  `--changes` changes, alternating two photos of different mood so every change re-queues.
- memory: the daemon's RSS (from /proc) after 50 and after `--soak` photo changes.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))
from bench_score import contrasting_big_photos, synthetic_photo  # noqa: E402
from harness import DaemonProcess, make_servers, mpd_queue, show_photo, write_config  # noqa: E402
from servers import MqttRecorder, wait_for  # noqa: E402

STATE = "frame-daemon/frame/state"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--changes", type=int, default=20)
    ap.add_argument("--soak", type=int, default=500)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-follow-") as tmp:
        work = Path(tmp)
        mpd, broker = make_servers(work)
        photos = work / "photos"
        photos.mkdir()
        print("preparing two 6000x4000 photos of different mood...", flush=True)
        big = contrasting_big_photos(ROOT / "build" / "bench-photos")
        frame = work / "frame"
        frame.mkdir()
        current = frame / "current.jpg"
        shutil.copy(big[0], current)
        config = write_config(work / "frame.toml", photo=current, mpd=mpd, mqtt=broker,
                              state_dir=work / "state")
        recorder = MqttRecorder(broker.port, [STATE])
        daemon = DaemonProcess(config, work / "daemon.log")
        daemon.start()
        try:
            wait_for(lambda: (s := recorder.json(STATE)) and s.get("queued"), 60,
                     what="first tracks queued")

            def queue_files() -> list[str]:
                return [e["file"] for e in mpd_queue(mpd)]

            def change(i: int) -> float | None:
                """Show the next photo; seconds until MPD's queue holds new tracks, or None if
                the follow policy kept the music (the mood did not move far enough)."""
                before = queue_files()
                t0 = show_photo(current, big[i % 2])
                try:
                    wait_for(lambda: queue_files() != before, 2.0, interval=0.002,
                             what=f"queue change {i}")
                except TimeoutError:
                    return None
                took = time.perf_counter() - t0
                time.sleep(0.5)  # let the loop settle before the next photo
                return took

            latencies: list[float] = []
            kept = 0
            for i in range(1, 4 * args.changes):
                took = change(i)
                if took is None:
                    kept += 1
                else:
                    latencies.append(took)
                if len(latencies) >= args.changes:
                    break
            ms = sorted(x * 1000 for x in latencies)
            print(f"photo replaced -> new tracks in MPD queue (6000x4000 JPEG): median "
                  f"{statistics.median(ms):.0f} ms, p90 {ms[int(0.9 * (len(ms) - 1))]:.0f} ms, "
                  f"n={len(ms)} ({kept} changes kept the music)", flush=True)

            pid = daemon.proc.pid
            small = []
            for seed in range(2):
                path = photos / f"small{seed}.jpg"
                path.write_bytes(synthetic_photo(1600, 1200, 20 + seed))
                small.append(path)
            rss = {}
            done = 0
            started = time.monotonic()
            while done < args.soak:
                # Count before showing: a state published before we looked would be missed.
                before = recorder.count(STATE)
                show_photo(current, small[done % 2])
                # Wait for the daemon to have handled this photo (a new state message).
                wait_for(lambda b=before: recorder.count(STATE) > b, 10, interval=0.005,
                         what="state update")
                done += 1
                if done in (50, args.soak) or done % 100 == 0:
                    rss[done] = rss_mb(pid)
                    print(f"  {done} photo changes: daemon RSS {rss[done]:.1f} MB "
                          f"({(time.monotonic() - started):.0f} s)", flush=True)
            if 50 in rss:
                growth = (rss[args.soak] / rss[50] - 1) * 100
                print(f"daemon RSS after 50 changes {rss[50]:.1f} MB, after {args.soak} "
                      f"{rss[args.soak]:.1f} MB ({growth:+.1f}%)", flush=True)
        finally:
            if daemon.alive():
                daemon.stop(signal.SIGTERM)
            recorder.close()
            mpd.stop()
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
