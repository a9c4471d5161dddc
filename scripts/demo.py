#!/usr/bin/env python3
"""The demo: the whole daemon, end to end, on throwaway local servers.

    .venv/bin/python scripts/demo.py [PHOTO_DIR [MUSIC_DIR]] [--workdir build/demo]
                                     [--seconds-per-photo 12] [--photos 8]

Starts a private mosquitto and MPD (null audio output with a software mixer, so the fades are real
volume ramps) on free loopback ports, indexes the music (tags and audio analysis), runs
`frame-daemon run`, then shows a series of photos the way frame software does (repointing a
symlink). For each photo it prints photo -> mood, then a few seconds later what is *now playing*
in MPD and the daemon's "why"; at the end a summary of each photo's mood, the target the tracks
were chosen for (the photo's mood placed in this library) and each chosen track with the same
mood word and distance as "why", in the order they play.

Without arguments: freely licensed photos from a few PyPI wheels (scripts/demo_photos.py) and a
generated, mood-tagged library: a calm photo, then a lively one, then more.
PHOTO_DIR: your own photos instead; the model scores them, `--photos` of them spread from the
calmest to the liveliest are *copied* into the run folder and shown calm first. MUSIC_DIR: your own
music instead of the generated library; MPD and the index only read it. Nothing of yours is
changed, and nothing outside --workdir is written. Old `run-*` folders of earlier demos are
removed first; everything is stopped at the end.

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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))
from demo_photos import demo_order  # noqa: E402

from frame_daemon.state_payload import from_target, pick_mood  # noqa: E402
from harness import DaemonProcess, mpd_status, write_config  # noqa: E402
from servers import LIBRARY, Mosquitto, Mpd, MqttRecorder, wait_for, write_library  # noqa: E402

TOPIC = "frame-daemon/frame/state"
DEMO_FOLLOW = """threshold = 0.2
dwell_s = 2
min_interval_s = 6
jump = 0.6
smoothing = 1.0
tracks = 3
fade_s = 2.5
suspend_s = 0"""
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
AUDIO_SUFFIXES = {".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".wav", ".wv", ".mpc",
                  ".ape", ".wma", ".aiff", ".aif"}
# The generated library: the tests' (calm to angry, tagged, genre-only and untagged tracks) and two
# tracks tagged near the middle of "lively", where the demo's lively photo lands.
DEMO_LIBRARY = [*LIBRARY,
                ("lively_parade", "Street Parade", "Brass Hat", "Funk", "bouncy", 116, 415.3),
                ("lively_kites", "Kite Day", "Kite Club", "Pop", "danceable", 122, 466.2)]
MAX_SCORED = 300  # of a person's photos, evenly spread over the folder: enough to find a contrast


class DemoError(Exception):
    """A reason the demo cannot run, said to the person as it is."""


def files_in(folder: Path, suffixes: set[str]) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes and p.is_file())


def check_folder(folder: Path, what: str, suffixes: set[str]) -> list[Path]:
    """The folder's files of this kind; DemoError if it is missing or has none."""
    if not folder.exists():
        raise DemoError(f"{what} folder {folder} does not exist")
    if not folder.is_dir():
        raise DemoError(f"{what} folder {folder} is not a folder")
    found = files_in(folder, suffixes)
    if not found:
        raise DemoError(f"{what} folder {folder} holds no {what} files (looked for "
                        f"{', '.join(sorted(suffixes))}, in subfolders too)")
    return found


def choose_own_photos(found: list[Path], out: Path, count: int) -> list[Path]:
    """Score the person's photos, take `count` spread from the calmest to the liveliest (as the
    model reads them), and copy those into `out` in that order: their files are only read."""
    from frame_daemon.errors import PhotoError
    from frame_daemon.vision.model import MoodModel

    step = max(1, len(found) // MAX_SCORED)
    sample = found[::step][:MAX_SCORED]
    print(f"demo: scoring {len(sample)} of your {len(found)} photos to choose {count} of them",
          flush=True)
    model = MoodModel.load()
    scored = []
    for path in sample:
        try:
            scored.append((model.score(path).mood.arousal, path))
        except PhotoError as exc:
            print(f"demo: skipping {path}: {exc}", flush=True)
    if not scored:
        raise DemoError(f"none of the {len(sample)} photos tried could be read")
    scored.sort()
    n = min(count, len(scored))
    chosen = [scored[round(i * (len(scored) - 1) / max(1, n - 1))][1] for i in range(n)]
    out.mkdir(parents=True, exist_ok=True)
    copies = []
    for i, path in enumerate(dict.fromkeys(chosen)):  # a small folder may repeat a photo
        copy = out / f"{i + 1:02d}-{path.stem}{path.suffix.lower()}"
        shutil.copyfile(path, copy)
        copies.append(copy)
    return copies


def start_servers(run_dir: Path, music: Path | None) -> tuple[Mpd, Mosquitto]:
    """MPD reading the person's music folder, or a generated library in run_dir (MPD's database
    and state are in run_dir either way), and a broker."""
    if music is None:
        print(f"demo: starting mosquitto and MPD with a generated library in {run_dir}", flush=True)
        music = run_dir / "music"
        write_library(music, library=DEMO_LIBRARY)
    else:
        print(f"demo: MPD is reading {music} (it writes only in {run_dir})", flush=True)
    mpd = Mpd(run_dir / "mpd", music.resolve(), mixer="software")
    mpd.start()
    try:
        songs = mpd.update_and_wait(timeout=1800.0)
        if songs == 0:
            raise DemoError(f"MPD found no music it can play in {music}")
        broker = Mosquitto(run_dir / "mosquitto")
        broker.start()
    except BaseException:
        mpd.stop()
        raise
    print(f"demo: MPD found {songs} tracks; indexing them with audio analysis (a while for a "
          "large folder)", flush=True)
    return mpd, broker


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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("photo_dir", nargs="?", type=Path, help="your own photos (only read)")
    ap.add_argument("music_dir", nargs="?", type=Path, help="your own music (only read)")
    ap.add_argument("--workdir", type=Path, default=ROOT / "build" / "demo")
    ap.add_argument("--seconds-per-photo", type=float, default=12.0)
    ap.add_argument("--photos", type=int, default=8, help="how many of your photos to show")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        own_photos = check_folder(args.photo_dir, "photo", PHOTO_SUFFIXES) if args.photo_dir else []
        if args.music_dir:
            check_folder(args.music_dir, "music", AUDIO_SUFFIXES)
        if args.photos < 1:
            raise DemoError("--photos must be at least 1")
        return run(args, own_photos)
    except DemoError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace, own_photos: list[Path]) -> int:
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    clean_old_runs(work)
    run_dir = work / f"run-{os.getpid()}"
    if own_photos:
        photos = choose_own_photos(own_photos, run_dir / "photos", args.photos)
    else:
        photos_dir = work / "photos"
        subprocess.run([sys.executable, str(ROOT / "scripts" / "demo_photos.py"), str(photos_dir)],
                       check=True)
        photos = demo_order(photos_dir)

    mpd, broker = start_servers(run_dir, args.music_dir)
    daemon: DaemonProcess | None = None
    recorder = None
    rows: list[tuple[str, dict]] = []
    try:
        frame = run_dir / "frame"
        frame.mkdir()
        current = frame / "current.jpg"
        current.symlink_to(photos[0])
        config = write_config(run_dir / "frame.toml", photo=current, mpd=mpd, mqtt=broker,
                              state_dir=run_dir / "state", follow=DEMO_FOLLOW)
        print("demo: follow settings (quicker than the shipped defaults): "
              + ", ".join(DEMO_FOLLOW.splitlines()), flush=True)
        daemon = DaemonProcess(config, run_dir / "daemon.log")
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
        if daemon is not None and daemon.alive():
            daemon.stop()
        if recorder:
            recorder.close()
        mpd.stop()
        broker.stop()
    print_summary(rows)
    return 0


def print_summary(rows: list[tuple[str, dict]]) -> None:
    print("\nsummary: each photo's mood, the target its tracks were chosen for (the photo's mood "
          "placed in this library), and the tracks in the order they play, with the mood word and "
          "the distance to that target that 'why' gives")
    for name, state in rows:
        print(summary_rows(name, state))


def summary_rows(name: str, state: Mapping[str, Any]) -> str:
    """One photo's part of the summary, from its retained state alone: the picks' words and
    distances are the very fields `why` is made of (state_payload.pick_fields)."""
    if state.get("valence") is None:
        return f"{name}: not scored ({state.get('error') or 'no state'})"
    target = state.get("target")
    kept = (state.get("why") or "").startswith("kept")
    head = (f"{name}: {state['mood']} {state['valence']:+.2f}/{state['arousal']:+.2f}"
            + (f" → target {target['mood']} {target['valence']:+.2f}/{target['arousal']:+.2f}"
               if target else "")
            + (" (music kept from the photo before)" if kept else ""))
    lines = [head]
    for i, pick in enumerate(state.get("picks") or []):
        line = f"   {i + 1}. {pick['label']} ({pick_mood(pick)}), {from_target(pick)}"
        if not pick["fits"]:
            line += " (nothing fits better)"
        if pick["order"]:
            line += f"; {pick['order']}"
        lines.append(line)
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
