#!/usr/bin/env python3
"""Benchmark indexing with audio analysis, memory while indexing, photo latency meanwhile, and
`match` query time on a 100,000-track index.

    .venv/bin/python scripts/bench_index.py [--tracks 120] [--unique 12]

1. `frame-daemon index` on a library of 4-minute MP3s (`--unique` synthesized, hard-linked to
   `--tracks` files) with 2 analysis workers: analysis throughput (tracks/s) and the peak RSS of
   its whole process tree.
2. `frame-daemon run` on the same library with a fresh index and an MPD of its own (part 1 shared
   every analysis through its MPD's stickers, which would leave this daemon nothing to analyse):
   its RSS once idle, the peak RSS of its process tree while its background worker analyses, and
   photo replaced -> new tracks in MPD's queue (6000x4000 JPEG) during that analysis (median of 10).
3. A synthetic 100,000-track SQLite index: load time of the track pool and the median time of a
   `match` query (selection of 5 tracks for a mood near some of the music) over 60 queries.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))
from bench_analyse import make_tracks  # noqa: E402
from bench_rig import TreeRss, contrasting_big_photos, mb, servers, start_frame  # noqa: E402

from frame_daemon.mood import Mood  # noqa: E402
from frame_daemon.music.index import TrackIndex  # noqa: E402
from frame_daemon.music.select import SelectionParams, TrackPool, select  # noqa: E402
from harness import mpd_queue, show_photo, write_config  # noqa: E402
from servers import Mosquitto, Mpd, write_library  # noqa: E402

INDEX_TIMEOUT_S = 1800


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
    try:
        out, _ = proc.communicate(timeout=INDEX_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        rss.stop()
        print(out[-5000:])
        raise SystemExit(f"frame-daemon index did not finish within {INDEX_TIMEOUT_S} s") from None
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


def bench_daemon(work: Path, mpd: Mpd, broker: Mosquitto, tracks: int) -> None:
    big = contrasting_big_photos(ROOT / "build" / "bench-photos")
    frame = start_frame(work, mpd, broker, big[0], name="daemon")
    rss = TreeRss(frame.pid)
    try:
        frame.wait_state(lambda s: s.get("queued"), 120, what="first queue")
        latencies = []
        for i in range(10):
            before = [e["file"] for e in mpd_queue(mpd)]
            t0 = show_photo(frame.current, big[(i + 1) % 2])
            frame.wait(lambda b=before: [e["file"] for e in mpd_queue(mpd)] != b, 15,
                       interval=0.002, what="queue change")
            latencies.append(time.perf_counter() - t0)
            time.sleep(0.3)
        log = frame.daemon.log
        analysing = "audio analysis:" not in log()
        # The daemon logs "audio analysis:" only when it had something to analyse: wait for that
        # line or for the state to show every track analysed, whichever comes first.
        frame.wait_state(lambda s: "audio analysis:" in log()
                         or 0 < s.get("index_size", 0) <= s.get("index_analysed", 0),
                         max(300, 15 * (tracks + 20)), interval=0.5,
                         what="background analysis to finish")
        if "audio analysis:" not in log():
            try:  # the last batch's state comes just before the line
                frame.wait(lambda: "audio analysis:" in log(), 10, what="the analysis' last line")
            except TimeoutError:
                raise SystemExit("the daemon had nothing to analyse: every track came with an "
                                 "analysis (shared through MPD's stickers?)") from None
        peak = rss.stop()
        time.sleep(2)
        idle_main = psutil.Process(frame.pid).memory_info().rss
        idle_pss = psutil.Process(frame.pid).memory_full_info().pss
        ms = sorted(x * 1000 for x in latencies)
        note = "" if analysing else " (analysis had already finished: not a loaded figure)"
        print(f"photo replaced -> new tracks queued while the daemon analyses in the background: "
              f"median {statistics.median(ms):.0f} ms, p90 {ms[int(0.9 * (len(ms) - 1))]:.0f} ms, "
              f"n={len(ms)}{note}", flush=True)
        print(f"daemon RSS once idle {mb(idle_main)}; peak RSS of its process tree while "
              f"analysing {mb(peak)} (+{mb(peak - idle_main)}); as PSS: idle {mb(idle_pss)}, "
              f"peak {mb(rss.peak_pss)} (+{mb(rss.peak_pss - idle_pss)})", flush=True)
        line = [ln for ln in log().splitlines() if "audio analysis:" in ln][-1]
        print(f"  > {line.split('] ', 1)[-1][:160]}")
    finally:
        rss.stop()
        frame.close()


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
        # Near some music, as the daemon's targets are (placed relative to the library): a target
        # in an empty corner of the plane falls back to the one nearest track, a cheaper query.
        near = int(rng.integers(len(pool)))
        v, a = np.clip(np.array([pool.valence[near], pool.arousal[near]])
                       + rng.normal(0, 0.15, 2), -1, 1)
        target = Mood(float(v), float(a))
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
            counted = False
            for part in ("cli", "daemon"):
                if part in skip:
                    continue
                # Each part its own MPD: the index part leaves every analysis in its MPD's stickers
                with servers(work / part, music) as (mpd, broker):
                    songs = mpd.update_and_wait(120)
                    if not counted:
                        print(f"MPD database: {songs} songs", flush=True)
                        counted = True
                    if part == "cli":
                        bench_cli_index(work, mpd, broker, args.tracks)
                    else:
                        bench_daemon(work / part, mpd, broker, args.tracks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
