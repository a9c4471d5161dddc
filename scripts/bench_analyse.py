#!/usr/bin/env python3
"""Benchmark audio analysis: throughput on 4-minute MP3s with worker processes, and per-track time.

    python scripts/bench_analyse.py [--tracks 6] [--rounds 4] [--workers 2] [--keep DIR]

Synthesizes `--tracks` 4-minute 44.1 kHz stereo MP3s (chords, bass and drums at different tempos
and keys: music-like, never silence) unless DIR already holds them, then prints
- single process: median (and p90) time per track of analyse_file, and of decode_excerpt alone;
- `--workers` processes analysing the tracks `--rounds` times over: tracks/s and median per-track
  time (workers are forked after the imports: start-up is not counted, as a daemon pays it once).
Figures only, no asserts; run it on an otherwise idle machine for numbers worth comparing.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from frame_daemon.music.audio.analyse import analyse_file  # noqa: E402
from frame_daemon.music.audio.decode import decode_excerpt  # noqa: E402

RATE = 44100
TRACK_SECONDS = 240.0
TEMPOS = (84, 96, 110, 124, 138, 150, 102, 128)


def synth_track(seed: int) -> np.ndarray:
    """A 4-minute stereo track: a four-chord loop with bass, kick/snare/hats, a little noise."""
    rng = np.random.default_rng(seed)
    bpm = TEMPOS[seed % len(TEMPOS)]
    beat = 60.0 / bpm
    bar_n = round(4 * beat * RATE)
    t = np.arange(bar_n) / RATE
    tonic = 110.0 * 2 ** (rng.integers(0, 12) / 12)
    minor = bool(seed % 2)
    bars = []
    for root in (0, 5, 7, 0) if not minor else (0, 8, 3, 7):
        f0 = tonic * 2 ** (root / 12)
        third = 3 if minor and root in (0,) else 4
        chord = sum(np.sin(2 * np.pi * f0 * 2 ** (iv / 12) * h * t) / h
                    for iv in (12, 12 + third, 19) for h in (1, 2, 3))
        bars.append(0.12 * chord + 0.3 * np.sin(2 * np.pi * f0 * t))
    loop = np.concatenate(bars)
    beat_n = round(beat * RATE)
    kick_t = np.arange(int(0.25 * RATE)) / RATE
    kick = np.sin(2 * np.pi * 55 * kick_t) * np.exp(-14 * kick_t)
    noise = rng.standard_normal(int(0.15 * RATE))
    snare = noise * np.exp(-30 * np.arange(noise.size) / RATE)
    hat = np.diff(noise[: int(0.03 * RATE)] * np.exp(-150 * np.arange(int(0.03 * RATE)) / RATE), prepend=0)
    for b in range(16):
        at = b * beat_n
        for sound, gain, every in ((kick, 0.9, b % 2 == 0), (snare, 0.5, b % 2 == 1)):
            if every:
                loop[at:at + sound.size] += gain * sound[: loop.size - at]
        for half in (0, beat_n // 2):
            part = hat[: max(0, loop.size - at - half)]
            loop[at + half:at + half + part.size] += 0.2 * part
    n = int(TRACK_SECONDS * RATE)
    mono = np.tile(loop, n // loop.size + 1)[:n] + 0.01 * rng.standard_normal(n)
    mono *= 0.5 / np.abs(mono).max()
    return np.stack([mono, np.roll(mono, 200)], axis=1).astype(np.float32)


def make_tracks(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"track{i:02d}.mp3"
        if not path.exists():
            start = time.perf_counter()
            data = synth_track(i)
            with sf.SoundFile(path, "w", RATE, 2, format="MP3") as f:
                for j in range(0, len(data), 65536):
                    f.write(data[j:j + 65536])
            print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, "
                  f"{time.perf_counter() - start:.1f} s)", file=sys.stderr)
        paths.append(path)
    return paths


def timed_analysis(path: Path) -> float:
    start = time.perf_counter()
    analyse_file(path)
    return time.perf_counter() - start


def summary(label: str, seconds: list[float]) -> None:
    ordered = sorted(seconds)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    print(f"{label}: median {statistics.median(seconds) * 1000:.0f} ms, p90 {p90 * 1000:.0f} ms "
          f"({len(seconds)} runs)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tracks", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=4, help="times the workers go through the tracks")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", type=Path, default=None, help="folder to keep (and reuse) the MP3s in")
    args = ap.parse_args()
    if "MP3" not in sf.available_formats():
        print("this libsndfile cannot write MP3", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_tracks(args.keep or Path(tmp), args.tracks)
        analyse_file(paths[0])  # warm-up
        single = [timed_analysis(p) for p in paths * 2]
        decode = []
        for p in paths * 2:
            start = time.perf_counter()
            decode_excerpt(p)
            decode.append(time.perf_counter() - start)
        print(f"{len(paths)} synthesized 4-minute 44.1 kHz stereo MP3s")
        summary("single process, analyse_file per track", single)
        summary("single process, decode_excerpt alone ", decode)
        jobs = paths * args.rounds
        # Forked workers inherit the imports and warm caches of this process, as a daemon's long-lived
        # worker has them after its first track.
        with multiprocessing.get_context("fork").Pool(args.workers) as pool:
            start = time.perf_counter()
            per_track = pool.map(timed_analysis, jobs, chunksize=1)
            wall = time.perf_counter() - start
        print(f"{args.workers} worker processes: {len(jobs) / wall:.1f} tracks/s "
              f"({len(jobs)} analyses in {wall:.1f} s)")
        summary(f"{args.workers} worker processes, per track", per_track)
    return 0


if __name__ == "__main__":
    sys.exit(main())
