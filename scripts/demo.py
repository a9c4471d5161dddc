#!/usr/bin/env python3
"""The demo: the whole daemon, end to end, on throwaway local servers.

    .venv/bin/python scripts/demo.py [--workdir build/demo] [--seconds-per-photo 12]

Starts a private mosquitto and MPD (null audio output with a software mixer, so the fades are real
volume ramps) on free loopback ports with a generated, tagged demo library, indexes it, runs
`frame-daemon run`, then shows a series of freely licensed photos the way frame software does
(repointing a symlink). For each photo it prints photo -> mood, then a few seconds later what is
*now playing* in MPD and the daemon's "why"; at the end a table of each photo's mood, the tracks
chosen for it, their moods and their distances. Old `run-*` folders of earlier demos are removed
first; everything is stopped at the end; nothing outside --workdir is touched.

The demo's follow settings are quicker than the shipped defaults (printed at the start), so that
a photo every 12 s shows in two minutes what a slideshow does in half an hour.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))
from demo_photos import demo_order  # noqa: E402

from frame_daemon.mood import Mood  # noqa: E402
from frame_daemon.music.index import TrackIndex  # noqa: E402
from harness import DaemonProcess, make_servers, mpd_status, write_config  # noqa: E402
from servers import MqttRecorder, wait_for  # noqa: E402

TOPIC = "frame-daemon/frame/state"
DEMO_FOLLOW = """threshold = 0.2
dwell_s = 3
min_interval_s = 6
jump = 0.6
smoothing = 1.0
tracks = 3
fade_s = 2.5
suspend_s = 0"""


def clean_old_runs(work: Path) -> None:
    old = sorted(work.glob("run-*"))
    for folder in old:
        shutil.rmtree(folder, ignore_errors=True)
    if old:
        print(f"demo: removed {len(old)} old run folder(s) in {work}", flush=True)


def now_playing(recorder: MqttRecorder, photo_seen: int, wait_s: float) -> dict:
    """The state once the music for this photo plays, or after `wait_s` if the music was kept."""
    def settled() -> dict | None:
        s = recorder.json(TOPIC)
        if s and recorder.count(TOPIC) > photo_seen and (s.get("why") or "").startswith("playing"):
            return s
        return None

    try:
        return wait_for(settled, wait_s, interval=0.1, what="music for the photo")
    except TimeoutError:
        return recorder.json(TOPIC) or {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=ROOT / "build" / "demo")
    ap.add_argument("--seconds-per-photo", type=float, default=12.0)
    args = ap.parse_args()
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    clean_old_runs(work)
    photos_dir = work / "photos"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "demo_photos.py"), str(photos_dir)],
                   check=True)
    photos = demo_order(photos_dir)

    run_dir = work / f"run-{os.getpid()}"
    print(f"demo: starting mosquitto and MPD with a generated library in {run_dir}", flush=True)
    mpd, broker = make_servers(run_dir, mixer="software")
    frame = run_dir / "frame"
    frame.mkdir()
    current = frame / "current.jpg"
    current.symlink_to(photos[0])
    config = write_config(run_dir / "frame.toml", photo=current, mpd=mpd, mqtt=broker,
                          state_dir=run_dir / "state", follow=DEMO_FOLLOW)
    print("demo: follow settings (quicker than the shipped defaults): "
          + ", ".join(DEMO_FOLLOW.splitlines()), flush=True)
    daemon = DaemonProcess(config, run_dir / "daemon.log")
    recorder = None
    rows: list[tuple[str, dict]] = []
    try:
        subprocess.run([sys.executable, "-m", "frame_daemon", "index", "--config", str(config)],
                       check=True, cwd=ROOT)
        recorder = MqttRecorder(broker.port, [TOPIC])
        daemon.start()
        print(f"demo: frame-daemon running (log: {daemon.log_path})\n", flush=True)
        for i, photo in enumerate(photos):
            seen = recorder.count(TOPIC)
            shown = time.monotonic()
            if i:
                tmp = frame / ".next"
                tmp.symlink_to(photo)
                os.replace(tmp, current)
            state = wait_for(lambda p=photo, n=seen: recorder.count(TOPIC) > n
                             and (s := recorder.json(TOPIC)) and s.get("photo") == str(p)
                             and s.get("valence") is not None and s, 30,
                             what=f"state for {photo.name}")
            print(f"{i + 1}. photo {photo.stem}: {state['mood']} (valence {state['valence']:+.2f}, "
                  f"arousal {state['arousal']:+.2f}, confidence {state['confidence']:.2f}); looks "
                  f"like {', '.join(state['scenes'][:3])}", flush=True)
            state = now_playing(recorder, seen, args.seconds_per_photo - 1.0)
            track = state.get("track") or {}
            volume = mpd_status(mpd).get("volume", "?")
            print(f"   {time.monotonic() - shown:4.1f} s later, now playing: "
                  f"{track.get('title', '-')} – {track.get('artist', '-')} (MPD volume {volume})")
            print(f"   why: {state.get('why')}", flush=True)
            rows.append((photo.stem, state))
            time.sleep(max(0.0, shown + args.seconds_per_photo - time.monotonic()))
        print("\ndemo: stopping frame-daemon (SIGTERM) and the servers", flush=True)
    finally:
        if daemon.alive():
            daemon.stop()
        if recorder:
            recorder.close()
        mpd.stop()
        broker.stop()
    print_table(rows, run_dir / "state")
    return 0


def print_table(rows: list[tuple[str, dict]], state_dir: Path) -> None:
    """Each photo's mood, the tracks chosen while it was on show, their moods and distances."""
    with TrackIndex(TrackIndex.default_path(state_dir)) as index:
        moods = {t.uri: t for t in index.tracks()}
    print(f"\n{'photo':<11} {'photo mood':<24} {'chosen tracks (mood, distance to the photo)'}")
    for name, s in rows:
        if s.get("valence") is None:
            continue
        photo = Mood(s["valence"], s["arousal"])
        kept = (s.get("why") or "").startswith("kept")
        tracks = "; ".join(
            f"{moods[u].title} ({moods[u].mood.word} {moods[u].mood.valence:+.2f}/"
            f"{moods[u].mood.arousal:+.2f}, {photo.distance(moods[u].mood):.2f})"
            for u in s.get("queued") or [] if u in moods)
        print(f"{name:<11} {s['mood']:<11} {s['valence']:+.2f}/{s['arousal']:+.2f}  "
              f"{'(kept) ' if kept else ''}{tracks}")


if __name__ == "__main__":
    sys.exit(main())
