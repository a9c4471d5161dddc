#!/usr/bin/env python3
"""Benchmark indexing with audio analysis, memory while indexing, photo latency meanwhile, and
`match` query time on a 100,000-track index.

    .venv/bin/python scripts/bench_index.py [--tracks 120] [--unique 12]

1. `frame-daemon index` on a library of 4-minute MP3s (`--unique` synthesized, hard-linked to
   `--tracks` files) with 2 analysis workers: analysis throughput (tracks/s) and the peak RSS of
   its whole process tree.
2. `frame-daemon run` on the same library with a fresh index: its RSS once idle, the peak RSS of
   its process tree while its background worker analyses, and photo replaced -> new tracks in
   MPD's queue (6000x4000 JPEG) during that analysis (median of 10).
3. A synthetic 100,000-track SQLite index: load time of the track pool and the median time of a
   `match` query (selection of 5 tracks for a mood) over 60 queries.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))
from bench_analyse import make_tracks  # noqa: E402

from bench_score import contrasting_big_photos  # noqa: E402
from frame_daemon.mood import Mood  # noqa: E402
from frame_daemon.music.index import TrackIndex  # noqa: E402
from frame_daemon.music.select import SelectionParams, TrackPool, select  # noqa: E402
from harness import DaemonProcess, mpd_queue, show_photo, write_config  # noqa: E402
from servers import Mosquitto, Mpd, MqttRecorder, wait_for, write_library  # noqa: E402

STATE = "frame-daemon/frame/state"


class TreeRss:
    """Samples the summed RSS (and PSS, which shares common library pages out fairly) of a
    process and its children every 50 ms; keeps the peaks."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def now(self) -> int:
        total = 0
        with contextlib.suppress(psutil.Error):
            for p in [self.proc, *self.proc.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a child that just exited
                    total += p.memory_info().rss
        return total

    def pss(self) -> int:
        total = 0
        with contextlib.suppress(psutil.Error):
            for p in [self.proc, *self.proc.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_full_info().pss
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.now())
            self.peak_pss = max(self.peak_pss, self.pss())

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def mb(n: float) -> str:
    return f"{n / 2**20:.1f} MB"


def build_library(music: Path, tracks: int, unique: int, cache: Path) -> None:
    originals = make_tracks(cache, unique)
    write_library(music / "tagged")  # the 20 tagged FLACs the daemon can queue right away
    target = music / "mp3"
    target.mkdir(parents=True, exist_ok=True)
    for i in range(tracks):
        link = target / f"track{i:04d}.mp3"
        if not link.exists():
            os.link(originals[i % len(originals)], link)


def bench_cli_index(work: Path, mpd: Mpd, broker: Mosquitto, tracks: int) -> None:
    config = write_config(work / "cli.toml", photo=work / "none.jpg", mpd=mpd, mqtt=broker,
                          state_dir=work / "state-cli")
    proc = subprocess.Popen([sys.executable, "-m", "frame_daemon", "index", "--config",
                             str(config), "--workers", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    rss = TreeRss(proc.pid)
    started = time.monotonic()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out, _ = proc.communicate(timeout=1800)
    elapsed = time.monotonic() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds of `index` and its workers (reaped by it, so counted here): what the rate would
    # be with both cores to itself, since this machine's 2 cores are often shared with other work.
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    peak = rss.stop()
    if proc.returncode != 0:
        print(out)
        raise SystemExit("frame-daemon index failed")
    match = re.search(r"analysed (\d+)/(\d+) tracks.*?([0-9.]+) tracks/s", out)
    rate = f"{match.group(3)} tracks/s" if match else "?"
    print(f"frame-daemon index, {tracks} x 4-minute MP3 + 20 FLAC, 2 workers: {elapsed:.1f} s "
          f"in all; analysis {rate}; peak RSS of its process tree {mb(peak)}", flush=True)
    print(f"  CPU time of index and its workers {cpu:.1f} s: {1000 * cpu / (tracks + 20):.0f} ms per "
          f"track, {2 * (tracks + 20) / cpu:.1f} tracks/s with 2 cores to itself (load average "
          f"now {os.getloadavg()[0]:.1f})", flush=True)
    for line in out.splitlines()[-2:]:
        print(f"  > {line.strip()[-160:]}")


def bench_daemon(work: Path, mpd: Mpd, broker: Mosquitto) -> None:
    big = contrasting_big_photos(ROOT / "build" / "bench-photos")
    frame = work / "frame"
    frame.mkdir(exist_ok=True)
    current = frame / "current.jpg"
    shutil.copy(big[0], current)
    config = write_config(work / "daemon.toml", photo=current, mpd=mpd, mqtt=broker,
                          state_dir=work / "state-daemon")
    recorder = MqttRecorder(broker.port, [STATE])
    daemon = DaemonProcess(config, work / "daemon.log")
    daemon.start()
    rss = TreeRss(daemon.proc.pid)
    try:
        wait_for(lambda: (s := recorder.json(STATE)) and s.get("queued"), 120, what="first queue")
        latencies = []
        for i in range(10):
            before = [e["file"] for e in mpd_queue(mpd)]
            t0 = show_photo(current, big[(i + 1) % 2])
            wait_for(lambda b=before: [e["file"] for e in mpd_queue(mpd)] != b, 15,
                     interval=0.002, what="queue change")
            latencies.append(time.perf_counter() - t0)
            time.sleep(0.3)
        analysing = "audio analysis:" not in daemon.log()
        wait_for(lambda: "audio analysis:" in daemon.log(), 1800, interval=0.5,
                 what="background analysis to finish")
        peak = rss.stop()
        time.sleep(2)
        idle_main = psutil.Process(daemon.proc.pid).memory_info().rss
        idle_pss = psutil.Process(daemon.proc.pid).memory_full_info().pss
        ms = sorted(x * 1000 for x in latencies)
        note = "" if analysing else " (analysis had already finished: not a loaded figure)"
        print(f"photo replaced -> new tracks queued while the daemon analyses in the background: "
              f"median {statistics.median(ms):.0f} ms, p90 {ms[int(0.9 * (len(ms) - 1))]:.0f} ms, "
              f"n={len(ms)}{note}", flush=True)
        print(f"daemon RSS once idle {mb(idle_main)}; peak RSS of its process tree while "
              f"analysing {mb(peak)} (+{mb(peak - idle_main)}); as PSS: idle {mb(idle_pss)}, "
              f"peak {mb(rss.peak_pss)} (+{mb(rss.peak_pss - idle_pss)})", flush=True)
        line = [ln for ln in daemon.log().splitlines() if "audio analysis:" in ln][-1]
        print(f"  > {line.split('] ', 1)[-1][:160]}")
    except TimeoutError:
        print(daemon.log()[-5000:])
        raise
    finally:
        if daemon.alive():
            daemon.stop()
        recorder.close()


def bench_match(work: Path, n: int = 100_000) -> None:
    rng = np.random.default_rng(0)
    genres = ["Rock", "Pop", "Jazz", "Classical", "Ambient", "Metal", "Folk", ""]
    moods = ["calm", "happy", "sad", "aggressive", "dreamy", "", "", ""]
    songs = [{"file": f"Artist {i % 3000}/Album/{i:06d}.mp3", "title": f"Track {i}",
              "artist": f"Artist {i % 3000}", "genre": genres[i % 8], "mood": moods[(i // 8) % 8],
              "last-modified": "2026-01-01T00:00:00Z", "duration": "200.0"} for i in range(n)]
    path = work / "big.sqlite3"
    with TrackIndex(path) as index:
        t0 = time.perf_counter()
        index.refresh(songs, None)
        build = time.perf_counter() - t0
    with TrackIndex(path) as index:
        t0 = time.perf_counter()
        pool = TrackPool.from_tracks(index.tracks())
        load = time.perf_counter() - t0
    history = [s["file"] for s in songs[:200]]
    times = []
    for i in range(60):
        target = Mood(float(rng.uniform(-1, 1)), float(rng.uniform(-1, 1)))
        t0 = time.perf_counter()
        picks = select(pool, target, SelectionParams(seed=i), history=history)
        times.append(time.perf_counter() - t0)
        assert len(picks) == 5
    ms = [t * 1000 for t in times]
    print(f"synthetic {n:,}-track index: built in {build:.1f} s; pool loaded in "
          f"{load * 1000:.0f} ms; match query median {statistics.median(ms):.2f} ms, "
          f"max {max(ms):.2f} ms", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tracks", type=int, default=120)
    ap.add_argument("--unique", type=int, default=12)
    ap.add_argument("--cache", type=Path, default=ROOT / "build" / "bench-mp3",
                    help="where the synthesized MP3s are kept between runs")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: cli,daemon,match")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        work = Path(tmp)
        if "match" not in skip:
            bench_match(work)
        if {"cli", "daemon"} - skip:
            music = work / "music"
            print(f"preparing {args.tracks} 4-minute MP3s ({args.unique} unique)...", flush=True)
            build_library(music, args.tracks, args.unique, args.cache)
            mpd = Mpd(work / "mpd", music)
            mpd.start()
            broker = Mosquitto(work / "mosquitto")
            broker.start()
            try:
                print(f"MPD database: {mpd.update_and_wait(120)} songs", flush=True)
                if "cli" not in skip:
                    bench_cli_index(work, mpd, broker, args.tracks)
                if "daemon" not in skip:
                    bench_daemon(work, mpd, broker)
            finally:
                mpd.stop()
                broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
