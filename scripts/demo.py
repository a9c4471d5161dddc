#!/usr/bin/env python3
"""The demo: the whole daemon, end to end, on throwaway local servers.

    .venv/bin/python scripts/demo.py [--workdir build/demo] [--seconds-per-photo 4]

Starts a private mosquitto and MPD (null audio output) on free loopback ports with a generated,
tagged demo library, indexes it, runs `frame-daemon run`, then shows a series of public-domain
photos the way frame software does (repointing a symlink) and prints photo -> mood -> tracks as
the daemon publishes them. Everything is stopped at the end; nothing outside --workdir is touched.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from harness import DaemonProcess, make_servers, mpd_queue, write_config  # noqa: E402
from servers import MqttRecorder, wait_for  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=ROOT / "build" / "demo")
    ap.add_argument("--seconds-per-photo", type=float, default=3.0)
    args = ap.parse_args()
    work = args.workdir.resolve()
    photos_dir = work / "photos"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "demo_photos.py"), str(photos_dir)],
                   check=True)
    photos = sorted(photos_dir.glob("*.jpg"))

    run_dir = work / f"run-{os.getpid()}"
    print(f"demo: starting mosquitto and MPD with a generated library in {run_dir}", flush=True)
    mpd, broker = make_servers(run_dir)
    frame = run_dir / "frame"
    frame.mkdir()
    current = frame / "current.jpg"
    current.symlink_to(photos[0])
    config = write_config(run_dir / "frame.toml", photo=current, mpd=mpd, mqtt=broker,
                          state_dir=run_dir / "state")
    text = config.read_text().replace("threshold = 0.05", "threshold = 0.15")
    config.write_text(text)
    daemon = DaemonProcess(config, run_dir / "daemon.log")
    recorder = None
    try:
        subprocess.run([sys.executable, "-m", "frame_daemon", "index", "--config", str(config)],
                       check=True, cwd=ROOT)
        recorder = MqttRecorder(broker.port, ["frame-daemon/#"])
        daemon.start()
        print(f"demo: frame-daemon running (log: {daemon.log_path})\n", flush=True)
        topic = "frame-daemon/frame/state"
        last_queued: list[str] = []
        for i, photo in enumerate(photos):
            if i:
                tmp = frame / ".next"
                tmp.symlink_to(photo)
                os.replace(tmp, current)
            state = wait_for(lambda p=photo: (s := recorder.json(topic)) and s.get("photo") == str(p)
                             and s.get("updated") and s, 30, what=f"state for {photo.name}")
            time.sleep(0.5)  # let the queue edit land before reading MPD
            state = recorder.json(topic) or state
            print(f"photo {photo.name}: {state['mood']} (valence {state['valence']:+.2f}, "
                  f"arousal {state['arousal']:+.2f}, confidence {state['confidence']:.2f}); "
                  f"looks like {', '.join(state['scenes'])}")
            if state["queued"] and state["queued"] != last_queued:
                titles = {e["file"]: f"{e.get('title', '?')} – {e.get('artist', '?')}"
                          for e in mpd_queue(mpd)}
                print("  -> queued: " + "; ".join(titles.get(u, u) for u in state["queued"]))
                print(f"     why: {state['why']}")
                last_queued = state["queued"]
            else:
                print("  -> music kept: the mood did not move far enough")
            track = state.get("track") or {}
            print(f"     now playing: {track.get('title', '-')} – {track.get('artist', '-')}",
                  flush=True)
            time.sleep(args.seconds_per_photo)
        print("\ndemo: stopping frame-daemon (SIGTERM) and the servers", flush=True)
    finally:
        if daemon.alive():
            daemon.stop()
        if recorder:
            recorder.close()
        mpd.stop()
        broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
