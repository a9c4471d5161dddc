#!/usr/bin/env python3
"""Benchmark track selection on a synthetic 100,000-track pool.

    .venv/bin/python scripts/bench_select.py [--tracks 100000] [--queries 60]

Prints the pool build time and the median and max `select()` time for a few parameter sets,
with 200 URIs of history and an artist to avoid, as the daemon calls it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from frame_daemon.mood import Mood
from frame_daemon.music.select import SelectionParams, TrackPool, select
from frame_daemon.music.track import MoodSource, Track

GENRES = ["Rock", "Pop", "Jazz; Soul", "Classical", "Hip-Hop/Rap", "Electronic, Ambient", "Folk", ""]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tracks", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=60)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    vals = rng.uniform(-1, 1, (args.tracks, 3))
    tracks = [Track(uri=f"music/{i}.flac", title=f"T{i}", artist=f"Artist {i % 3000}",
                    genre=GENRES[i % len(GENRES)], mood=Mood(float(v), float(a), float((c + 1) / 2)),
                    source=MoodSource.TAG, why="mood tag")
              for i, (v, a, c) in enumerate(vals)]
    t0 = time.perf_counter()
    pool = TrackPool.from_tracks(tracks)
    print(f"pool build: {(time.perf_counter() - t0) * 1000:.0f} ms for {args.tracks} tracks")
    history = [f"music/{i}.flac" for i in rng.integers(0, args.tracks, 200)]
    cases = {
        "diversity 0": SelectionParams(diversity=0.0),
        "default (diversity 0.3)": SelectionParams(seed=1),
        "diversity 1": SelectionParams(diversity=1.0, seed=1),
        "genre filters": SelectionParams(include_genres=frozenset({"rock", "jazz"}),
                                         exclude_genres=frozenset({"pop"}), seed=1),
    }
    for name, params in cases.items():
        times = []
        for _ in range(args.queries):
            target = Mood(float(rng.uniform(-1, 1)), float(rng.uniform(-1, 1)))
            t0 = time.perf_counter()
            select(pool, target, params, history=history, last_artist="Artist 7")
            times.append(time.perf_counter() - t0)
        ms = [t * 1000 for t in times]
        print(f"select, {name}: median {statistics.median(ms):.2f} ms, max {max(ms):.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
