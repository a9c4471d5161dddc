#!/usr/bin/env python3
"""Soak the daemon on real servers: many photo changes with MPD and broker restarts sprinkled in.

    .venv/bin/python scripts/soak.py [N] [--restart-every 1000]

N photo changes (default 10,000) alternate two photos of different mood, with an unreadable one
every 250th. Every `--restart-every` changes MPD is restarted (SIGTERM, then SIGKILL the next
time) or the broker is. Five tracks a person queued before the start must still be in MPD's queue
at the end. Prints the daemon's RSS, open fds and threads at the start, after 1,000, in the middle
and at the end, the stalls (a change not handled within 20 s) and every traceback or internal
error in its log. Targets: RSS growth <= 5 % from 1,000 to N; fds and threads flat.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))
from bench_rig import STATE, start_frame, vitals  # noqa: E402

from bench_score import synthetic_photo  # noqa: E402
from harness import make_servers, mpd_queue, show_photo  # noqa: E402
from servers import wait_for  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("changes", nargs="?", type=int, default=10_000)
    ap.add_argument("--restart-every", type=int, default=1000)
    args = ap.parse_args()
    n = args.changes
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        work = Path(tmp)
        mpd, broker = make_servers(work)
        c = mpd.client()
        users = sorted(s["file"] for s in c.listall() if "file" in s)[:5]
        c.disconnect()

        def requeue(uris: list[str]) -> None:
            client = mpd.client()
            for uri in uris:  # a person's queue, playing its first entry
                client.add(uri)
            if client.status()["state"] != "play":
                client.play(0)
            client.disconnect()

        def missing_users() -> list[str]:
            queue = {e["file"] for e in mpd_queue(mpd)}
            return [uri for uri in users if uri not in queue]

        requeue(users)
        lost_by_daemon = 0
        photos = []
        for seed in range(2):
            path = work / f"photo{seed}.jpg"
            path.write_bytes(synthetic_photo(1600, 1200, 20 + seed))
            photos.append(path)
        bad = work / "bad.jpg"
        bad.write_bytes(b"\xff\xd8\xff\xe0 not a whole JPEG")
        frame = start_frame(work, mpd, broker, photos[0])
        recorder, daemon = frame.recorder, frame.daemon
        samples: dict[str, dict[str, float]] = {}
        stalls = restarts = 0
        started = time.monotonic()
        try:
            frame.wait_state(lambda s: s.get("queued"), 60, what="first tracks queued")
            marks = {1: "start", min(1000, n): "after 1,000", n // 2: "middle", n: "end"}
            for i in range(1, n + 1):
                before = recorder.count(STATE)
                show_photo(frame.current, bad if i % 250 == 0 else photos[i % 2])
                try:
                    wait_for(lambda b=before: recorder.count(STATE) > b, 20, interval=0.005,
                             what=f"change {i} handled")
                except TimeoutError:
                    stalls += 1
                    if not daemon.alive():
                        print(f"the daemon died at change {i}", flush=True)
                        break
                if i in marks:
                    samples[marks[i]] = vitals(frame.pid)
                    print(f"{i} changes ({time.monotonic() - started:.0f} s): "
                          f"{samples[marks[i]]}", flush=True)
                if i % args.restart_every == 0 and i < n:
                    restarts += 1
                    kind = ("mpd-term", "broker", "mpd-kill")[restarts % 3]
                    missing = missing_users()
                    print(f"  restarting {kind}; the person's entries missing before: "
                          f"{missing or 'none'}", flush=True)
                    lost_by_daemon += len(missing)
                    if kind == "broker":
                        broker.restart()
                    else:
                        if kind == "mpd-kill":
                            mpd.proc.send_signal(signal.SIGKILL)
                            mpd.proc.wait(10)
                        mpd.restart()
                    frame.wait_state(lambda s: s["mpd"] == "connected" and recorder.count(STATE) > 0,
                                     60, what=f"back after {kind}")
                    if kind == "mpd-kill" and missing_users():
                        # Killed, MPD cannot save its state file: the loss is MPD's, not ours.
                        # The person queues the tracks again.
                        print(f"  MPD lost {len(missing_users())} entries in the kill; "
                              "queueing them again", flush=True)
                        requeue(missing_users())
        finally:
            alive = daemon.alive()
            if alive:
                daemon.stop(signal.SIGTERM)
            queue = [e["file"] for e in mpd_queue(mpd)]
            recorder.close()
            mpd.stop()
            broker.stop()
        log_text = daemon.log()
        kept = sum(1 for uri in users if uri in queue)
        lost_by_daemon += len(users) - kept
        print(f"daemon alive to the end: {alive}; stalls: {stalls}; restarts: {restarts}")
        print(f"the person's entries the daemon lost: {lost_by_daemon}")
        print(f"tracebacks in the log: {log_text.count('Traceback')}; internal errors: "
              f"{log_text.count('internal error')}")
        if "after 1,000" in samples and "end" in samples:
            a, b = samples["after 1,000"], samples["end"]
            print(f"RSS {a['rss_mb']:.1f} -> {b['rss_mb']:.1f} MB "
                  f"({(b['rss_mb'] / a['rss_mb'] - 1) * 100:+.1f} %); fds {a['fds']:.0f} -> "
                  f"{b['fds']:.0f}; threads {a['threads']:.0f} -> {b['threads']:.0f}")
        return 0 if alive and not lost_by_daemon else 1


if __name__ == "__main__":
    sys.exit(main())
