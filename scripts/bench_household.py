#!/usr/bin/env python3
"""Benchmark frames that share one MPD with a big library, on real servers.

    .venv/bin/python scripts/bench_household.py [--tracks 100000] [--frames 3] [--changes 1000]

The library is one tiny FLAC hard-linked `--tracks` times (scripts/bench_stickers.py's), scanned
by a real MPD whose sticker file holds an analysis for every track, so frames with no music
folder get the full analysis from MPD. Frames run as real `frame-daemon run` processes with the
tests' follow settings (every photo changes the music; `follow.min_interval_s = 0`, so every
photo change on another frame is a hand-over).

1. One frame's RSS once its index holds the whole library, against the same frame on an empty
   MPD (both after their first photo).
2. `match` latency: selection of 5 tracks for a mood on that frame's own track pool (60 queries).
3. `--frames` frames on the big MPD, photos changed on each in turn (`--changes` in all): photo
   replaced -> that frame steers and its new tracks are in MPD's queue, through a hand-over from
   the frame that steered. After each: conflicting queue edits (entries after what plays that
   are neither the steerer's last choice nor a person's) and lost user entries (two queued by a
   person before the frames started).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))
from bench_rig import linked_library  # noqa: E402
from bench_stickers import ESTIMATE  # noqa: E402

from frame_daemon.mood import Mood  # noqa: E402
from frame_daemon.music.index import TrackIndex  # noqa: E402
from frame_daemon.music.mpd.client import MpdLink  # noqa: E402
from frame_daemon.music.select import SelectionParams, TrackPool, select  # noqa: E402
from frame_daemon.music.shared_analysis import ANALYSIS_VERSION, STICKER, SharedAnalysis  # noqa: E402
from frame_daemon.music.track import MoodEstimate  # noqa: E402
from harness import TEST_FOLLOW, DaemonProcess, mpd_queue, mpd_status, show_photo, write_config  # noqa: E402
from servers import Mosquitto, Mpd, MqttRecorder, wait_for  # noqa: E402


def photos(work: Path) -> list[Path]:
    """Two photos far apart in mood (the tests' dark and bright ones)."""
    from PIL import Image, ImageOps

    from conftest import gradient_photo

    out = work / "photos"
    out.mkdir()
    gradient_photo(800, 600, 11).point(lambda v: v // 5).save(out / "dark.jpg", quality=92)
    flower = ROOT / "build" / "demo" / "photos" / "flower.jpg"
    if flower.exists():
        with Image.open(flower) as img:
            ImageOps.fit(img.convert("RGB"), (800, 600)).save(out / "bright.jpg", quality=92)
    else:
        gradient_photo(800, 600, 3).save(out / "bright.jpg", quality=92)
    return [out / "dark.jpg", out / "bright.jpg"]


def make_library(music: Path, tracks: int) -> None:
    """One 5-minute quiet FLAC hard-linked `tracks` times (the tracks must not end while the
    frames hand over: bench_stickers.py's are 0.1 s long)."""
    linked_library(music, tracks, (0.01 * np.sin(np.arange(8000 * 300) / 3)).astype(np.float32))


def big_mpd(work: Path, tracks: int) -> Mpd:
    """MPD over the generated library; a library made before in `work` (`--library`) is reused,
    with MPD's queue and state from the last run removed."""
    ready = work / f"library-{tracks}.ready"
    if ready.exists():
        (work / "mpd" / "state").unlink(missing_ok=True)
        mpd = Mpd(work / "mpd", work / "music")
        mpd.start()
        print(f"library: {tracks:,} tracks in MPD, each with a shared analysis (made before, "
              f"in {work})", flush=True)
        return mpd
    t0 = time.perf_counter()
    make_library(work / "music", tracks)
    mpd = Mpd(work / "mpd", work / "music")
    mpd.start()
    n = mpd.update_and_wait(timeout=3600)
    link = MpdLink("127.0.0.1", mpd.port, timeout_s=120)
    songs = link.list_all()
    link.close()
    mpd.stop()
    db = sqlite3.connect(work / "mpd" / "sticker.sql")
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, size=(len(songs), 2))  # moods spread over the plane

    def analysis(i: int) -> MoodEstimate:
        v, a = points[i]
        return dataclasses.replace(ESTIMATE, mood=Mood(float(v), float(a), 0.6))

    db.executemany("INSERT INTO sticker VALUES ('song', ?, ?, ?)", (
        (s["file"], STICKER, SharedAnalysis.of(analysis(i), ANALYSIS_VERSION,
                                               s.get("last-modified", ""), "", 0.0).encode())
        for i, s in enumerate(songs)))
    db.commit()
    db.close()
    mpd.start()
    ready.touch()
    print(f"library: {n:,} tracks in MPD, each with a shared analysis "
          f"({time.perf_counter() - t0:.0f} s to make)", flush=True)
    return mpd


def frame(work: Path, name: str, mpd: Mpd, broker: Mosquitto, photo: Path) -> tuple[DaemonProcess, Path]:
    folder = work / name
    folder.mkdir()
    current = folder / "current.jpg"
    shutil.copy(photo, current)
    config = write_config(work / f"{name}.toml", photo=current, mpd=mpd, mqtt=broker,
                          state_dir=work / f"state-{name}", device_id=name, follow=TEST_FOLLOW)
    # No music folder: the analysis comes from MPD's stickers (and no ffmpeg is needed).
    config.write_text(config.read_text().replace(f'music_directory = "{mpd.music_dir}"',
                                                 'music_directory = ""'))
    daemon = DaemonProcess(config, work / f"{name}.log")
    daemon.start()
    return daemon, current


def state(rec: MqttRecorder, name: str) -> dict:
    return rec.json(f"frame-daemon/{name}/state") or {}


def rss_once_indexed(work: Path, mpd: Mpd, broker: Mosquitto, rec: MqttRecorder, name: str,
                     photo: Path, tracks: int) -> tuple[int, float, int]:
    """RSS once indexed and playing, how long that took, and the highest RSS on the way (sampled
    every 0.2 s)."""
    daemon, _ = frame(work, name, mpd, broker, photo)
    t0 = time.perf_counter()
    peak = 0

    def ready() -> bool:
        nonlocal peak
        with contextlib.suppress(psutil.Error):
            peak = max(peak, psutil.Process(daemon.proc.pid).memory_info().rss)
        s = state(rec, name)
        return s.get("index_size", 0) >= tracks and bool(s.get("queued") if tracks
                                                         else s.get("valence") is not None)

    wait_for(ready, 3600, 0.2, what=f"{name} indexed and playing")
    took = time.perf_counter() - t0
    time.sleep(3)  # settle: the worker's batch freed, the pool in place
    rss = psutil.Process(daemon.proc.pid).memory_info().rss
    daemon.stop()
    return rss, took, peak


def pool_size(index_path: Path) -> tuple[TrackPool, float]:
    """The frame's pool, read from its index as the daemon reads it, and the bytes it holds
    per track (tracemalloc: Python's own count, not the process's RSS)."""
    tracemalloc.start()
    with TrackIndex(index_path) as index:
        pool = TrackPool.from_rows(index.rows())
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return pool, held / max(1, len(pool))


def match_latency(pool: TrackPool) -> tuple[float, float]:
    times = []
    for i in range(60):
        target = Mood((i % 11) / 5 - 1, (i % 7) / 3 - 1)
        t0 = time.perf_counter()
        select(pool, target, SelectionParams(seed=i), history=[])
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), max(times)


@dataclasses.dataclass(frozen=True)
class Cpu:
    """CPU seconds used so far by the bench's own processes (the frames, MPD, the broker, the
    bench) and by every other process on this machine, and how many processes wait to run now:
    the machine is shared, and a slow stretch may be someone else's."""

    ours: float
    others: float
    running: int

    @classmethod
    def now(cls, ours: set[int]) -> Cpu:
        ticks = os.sysconf("SC_CLK_TCK")
        with open("/proc/stat") as f:
            lines = f.read().splitlines()
        fields = [int(x) for x in lines[0].split()[1:]]
        busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
        running = next(int(line.split()[1]) for line in lines if line.startswith("procs_running"))
        mine = 0
        for pid in ours:
            with contextlib.suppress(OSError, IndexError):
                with open(f"/proc/{pid}/stat") as f:
                    stat = f.read().rpartition(")")[2].split()
                mine += int(stat[11]) + int(stat[12])  # utime, stime
        return cls(mine / ticks, (busy - mine) / ticks, running)


def log_times(text: str) -> list[tuple[float, str]]:
    """(wall time, message) of each line of a frame's log."""
    out = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            when = time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S")) + int(line[20:23]) / 1000
            out.append((when, line[24:]))
    return out


@dataclasses.dataclass(frozen=True)
class Change:
    frame: str
    wall: float  # when the photo was replaced (Unix time)
    ms: float  # photo replaced -> its tracks in MPD's queue
    ours: float  # CPU seconds the bench's processes used meanwhile
    others: float  # ... and every other process
    running: int  # processes waiting to run when it began


def print_breakdown(changes: list[Change], logs: dict[str, str]) -> None:
    """Per 100 changes: the median photo -> queue, its parts from the steering frame's log
    (photo replaced -> scored: the watcher's settle and the model; scored -> took the music:
    the claim and the old steerer's answer; took -> queued: choice and MPD's edits), the CPU the
    frames and servers used per change (work that grows would show here), and how busy the
    machine was with other work (CPU seconds a second, of the cores there are; processes
    waiting to run, ours included)."""
    lines = {name: log_times(text) for name, text in logs.items()}
    print(f"  changes  median ms  (scored  took  queued: ms after the photo)  our CPU/change  "
          f"others' CPU ({os.cpu_count()} cores)  runnable")
    for start in range(0, len(changes), 100):
        block = changes[start:start + 100]
        parts: list[list[float]] = [[], [], []]
        for change in block:
            name, wall0 = change.frame, change.wall
            marks = ("photo current", "household: taking the music", "tracks for ")
            at, k = wall0, 0
            for when, message in lines[name]:
                if when >= at - 0.001 and marks[k] in message:
                    parts[k].append((when - wall0) * 1000)
                    at, k = when, k + 1
                    if k == len(marks):
                        break
        seconds = max(1e-9, sum(c.ms for c in block) / 1000)
        med = [f"{statistics.median(p):6.0f}" if p else "     -" for p in parts]
        median = statistics.median([c.ms for c in block])
        ours = statistics.median([c.ours for c in block]) * 1000
        others = max(0.0, sum(c.others for c in block) / seconds)  # tick rounding: ~0 is 0
        running = statistics.mean([c.running for c in block])
        print(f"  {start:4d}-{start + len(block) - 1:<4d} {median:9.0f}   {'  '.join(med)}"
              f"{ours:27.0f} ms {others:17.2f} s/s {running:14.1f}")


def measure_rss(work: Path, empty: Mpd, mpd: Mpd, broker: Mosquitto, rec: MqttRecorder,
                photo: Path, tracks: int) -> None:
    rss_empty, _, _ = rss_once_indexed(work, empty, broker, rec, "empty", photo, 0)
    rss_big, took, peak = rss_once_indexed(work, mpd, broker, rec, "big", photo, tracks)
    print(f"frame RSS: {rss_empty / 2**20:.0f} MB on an empty MPD, {rss_big / 2**20:.0f} MB "
          f"with {tracks:,} tracks (+{(rss_big - rss_empty) / 2**20:.0f} MB; target "
          f"<= +60 MB; {peak / 2**20:.0f} MB at most while indexing); indexed from the stickers "
          f"and playing in {took:.0f} s", flush=True)
    pool, per_track = pool_size(TrackIndex.default_path(work / "state-big"))
    print(f"the pool the frame chooses from: {per_track:.0f} bytes a track", flush=True)
    med, worst = match_latency(pool)
    print(f"match (5 tracks for a mood, the frame's own {tracks:,}-track pool): median "
          f"{med:.1f} ms, max {worst:.1f} ms (target <= 15 ms)", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--frames", type=int, default=3, choices=(2, 3))
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--only", choices=("rss", "changes"), help="measure only RSS and match "
                        "(1, 2), or only the photo changes (3)")
    parser.add_argument("--library", type=Path, help="make the big library here, or reuse the "
                        "one made here before (it takes minutes to make)")
    parser.add_argument("--keep", type=Path, help="copy the frames' logs and one line per photo "
                        "change (changes.csv) here")
    parser.add_argument("--log", action="store_true", help="print frame0's log lines of the "
                        "last hand-overs")
    args = parser.parse_args()
    print(f"settings: {args.tracks:,} tracks, {args.frames} frames, {args.changes} photo changes; "
          "follow: tests' settings (threshold 0.05, dwell 0, min_interval_s 0, fade 1 s)", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-household-") as tmp:
        work = Path(tmp)
        dark, bright = photos(work)
        broker = Mosquitto(work / "mosquitto")
        broker.start()
        (work / "empty-music").mkdir()
        empty = Mpd(work / "mpd-empty", work / "empty-music")
        empty.start()
        if args.library:
            args.library.mkdir(parents=True, exist_ok=True)
        mpd = big_mpd(args.library.resolve() if args.library else work, args.tracks)
        rec = MqttRecorder(broker.port, ["frame-daemon/#"])
        running: list[DaemonProcess] = []
        try:
            if args.only != "changes":
                measure_rss(work, empty, mpd, broker, rec, dark, args.tracks)
            empty.stop()
            if args.only == "rss":
                return 0

            c = mpd.client()
            c.stop()
            c.clear()  # the RSS run's frame left its entries (to a frame that comes, a person's)
            files = [e["file"] for e in c.listall() if "file" in e][:10]
            persons = {c.addid(uri): uri for uri in (files[5], files[9])}  # a person's own
            c.disconnect()
            names = [f"frame{i}" for i in range(args.frames)]
            currents = []
            for name in names:
                daemon, current = frame(work, name, mpd, broker, dark)
                running.append(daemon)
                currents.append(current)
            wait_for(lambda: all(state(rec, n).get("index_size", 0) >= args.tracks
                                 and (state(rec, n).get("household") or {}).get("steerer")
                                 for n in names), 3600, 0.2, what="frames indexed")
            latencies, conflicts, lost = [], 0, 0
            changes: list[Change] = []
            bench_pids = {os.getpid(), mpd.proc.pid, broker.proc.pid,
                          *(d.proc.pid for d in running)}
            for step in range(args.changes):
                i = step % args.frames
                name = names[i]
                photo = bright if (step // args.frames) % 2 == 0 else dark
                old_ids = {e["id"] for e in mpd_queue(mpd)}
                t0 = show_photo(currents[i], photo)
                wall0 = time.time() - (time.perf_counter() - t0)
                cpu0 = Cpu.now(bench_pids)

                def taken(name=name, old_ids=old_ids) -> dict | None:
                    s = state(rec, name)
                    h = s.get("household") or {}
                    if not (h.get("steering") and s.get("queued")):
                        return None
                    queue = mpd_queue(mpd)
                    new = [e["file"] for e in queue if e["id"] not in old_ids]
                    return s if new[:len(s["queued"])] == s["queued"] else None

                try:
                    wait_for(taken, 30, 0.005, what=f"{name} steering after its photo")
                except TimeoutError:
                    for n in names:
                        s = state(rec, n)
                        print(n, s.get("household"), s.get("why"), s.get("queued"))
                    print([e["file"] for e in mpd_queue(mpd)], mpd_status(mpd))
                    print(running[i].log()[-3000:])
                    raise
                latencies.append((time.perf_counter() - t0) * 1000)
                cpu1 = Cpu.now(bench_pids)
                changes.append(Change(name, wall0, latencies[-1], cpu1.ours - cpu0.ours,
                                      cpu1.others - cpu0.others, cpu0.running))
                # Let the other frames hear of it, then look at the queue.
                wait_for(lambda name=name: all((state(rec, n).get("household") or {}).get("steerer")
                                               == name for n in names), 10, 0.01,
                         what="every frame agrees")
                queue = mpd_queue(mpd)
                status = mpd_status(mpd)
                after = queue[int(status.get("song", -1)) + 1:]
                theirs = [e["file"] for e in after if e["id"] not in persons]
                queued = state(rec, name)["queued"]
                # What plays may be one of the steerer's: what follows it is the rest of them.
                if theirs != queued[len(queued) - len(theirs):]:
                    conflicts += 1
                    if conflicts <= 3:
                        print(f"  conflict at change {step}: after what plays {theirs}, "
                              f"{name} chose {queued}", flush=True)
                ids = {e["id"]: e["file"] for e in queue}
                lost += sum(1 for i_, uri in persons.items() if ids.get(i_) != uri)
            lat = sorted(latencies)
            print(f"photo -> queue through a hand-over ({len(lat)} changes, 800x600 JPEG scored "
                  f"included): median {statistics.median(lat):.0f} ms, p95 "
                  f"{lat[int(0.95 * (len(lat) - 1))]:.0f} ms, max {lat[-1]:.0f} ms (target <= 150 ms)")
            if len(latencies) >= 200:  # MPD's queue grows by the played entries (no consume)
                print(f"  first 100 changes median {statistics.median(latencies[:100]):.0f} ms, "
                      f"last 100 {statistics.median(latencies[-100:]):.0f} ms, with "
                      f"{len(mpd_queue(mpd)):,} entries in MPD's queue at the end")
            print(f"{args.frames} frames, {args.changes} alternating photo changes: {conflicts} "
                  f"conflicting queue edits, {lost} lost user entries (target 0 and 0)")
            print_breakdown(changes, {n: d.log() for n, d in zip(names, running, strict=True)})
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                for n, d in zip(names, running, strict=True):
                    (args.keep / f"{n}.log").write_text(d.log())
                (args.keep / "changes.csv").write_text("".join(
                    f"{c.frame},{c.wall:.3f},{c.ms:.1f},{c.ours:.3f},{c.others:.3f},{c.running}\n"
                    for c in changes))
            if args.log:  # where a hand-over's time goes
                for line in running[0].log().splitlines()[-400:]:
                    if any(k in line for k in ("photo current", "household:", "queued", "fading")):
                        print("  " + line[11:23] + line[line.index(" frame_daemon"):][:140])
            for name, d in zip(names, running, strict=True):
                print(f"  {name}: RSS {psutil.Process(d.proc.pid).memory_info().rss / 2**20:.0f} MB")
        finally:
            for d in running:
                if d.alive():
                    d.stop()
            rec.close()
            for server in (mpd, broker, empty):
                with contextlib.suppress(Exception):
                    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
