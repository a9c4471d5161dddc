#!/usr/bin/env python3
"""Benchmark analyses shared through MPD's stickers on a real MPD with a big library.

    .venv/bin/python scripts/bench_stickers.py [--tracks 100000]

The library is one tiny FLAC hard-linked `--tracks` times into Artist/Album folders (50 tracks
an album, 500 an artist), scanned by a real MPD. The stickers (ours and a user's `rating`) are put
straight into MPD's sticker file while it is stopped: through the protocol MPD commits each
sticker on its own, which the last figure measures on 500 tracks.

1. A frame with no music folder reads every sticker in bulk (`MoodStickers.read`, folder by
   folder) and takes them into its track index (`TrackIndex.apply_shared`); then again, with
   nothing new (what a daemon does at each refresh).
2. `sticker set` through the protocol, 50 per command list: stickers per second.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))
from bench_rig import linked_library  # noqa: E402

from frame_daemon.mood import Mood  # noqa: E402
from frame_daemon.music.index import TrackIndex  # noqa: E402
from frame_daemon.music.mpd.client import MpdLink  # noqa: E402
from frame_daemon.music.mpd.stickers import MoodStickers  # noqa: E402
from frame_daemon.music.shared_analysis import ANALYSIS_VERSION, STICKER, SharedAnalysis  # noqa: E402
from frame_daemon.music.track import MoodEstimate, MoodSource  # noqa: E402
from servers import Mpd  # noqa: E402

ESTIMATE = MoodEstimate(MoodSource.ANALYSIS, Mood(0.1234567891, -0.3456789123, 0.4567891234),
                        "analysis: 120 BPM, A minor, bright, dense onsets")


def make_library(music: Path, tracks: int) -> None:
    linked_library(music, tracks, (0.1 * np.sin(np.arange(800) / 3)).astype(np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-stickers-") as tmp:
        base = Path(tmp)
        started = time.perf_counter()
        make_library(base / "music", args.tracks)
        server = Mpd(base / "mpd", base / "music")
        server.start()
        try:
            songs_in_mpd = server.update_and_wait(timeout=1800)
            link = MpdLink("127.0.0.1", server.port, timeout_s=60)
            songs = link.list_all()
            link.close()
        finally:
            server.stop()
        print(f"library: {songs_in_mpd} tracks in MPD ({time.perf_counter() - started:.0f} s to make)")
        db = sqlite3.connect(base / "mpd" / "sticker.sql")
        db.executemany("INSERT INTO sticker VALUES ('song', ?, ?, ?)", (
            (s["file"], name, value) for s in songs for name, value in (
                (STICKER, SharedAnalysis.of(ESTIMATE, ANALYSIS_VERSION, s.get("last-modified", ""),
                                            "calm", 92.0).encode()), ("rating", "8"))))
        db.commit()
        db.close()

        server.start()
        link = MpdLink("127.0.0.1", server.port, timeout_s=60)
        try:
            with TrackIndex(base / "frame.sqlite3") as index:
                index.refresh(songs, None)
                stickers = MoodStickers(link)
                t0 = time.perf_counter()
                found = stickers.read(index.uris())
                t1 = time.perf_counter()
                stats = index.apply_shared(found)
                t2 = time.perf_counter()
                print(f"bulk read: {len(found)} stickers in {t1 - t0:.1f} s; into the index "
                      f"{t2 - t1:.1f} s; together {t2 - t0:.1f} s ({stats.new} analyses taken in)")
                t0 = time.perf_counter()
                index.apply_shared(stickers.read(index.uris()))
                print(f"again, nothing new: {time.perf_counter() - t0:.1f} s")
            sample = [(s["file"], f'{{"v":"bench","n":{i}}}') for i, s in enumerate(songs[:500])]
            t0 = time.perf_counter()
            stickers.write(sample, name="frame-daemon.bench")
            elapsed = time.perf_counter() - t0
            print(f"sticker set: {len(sample) / elapsed:.0f} stickers/s ({1000 * elapsed / len(sample):.1f} "
                  "ms each; MPD commits each on its own)")
        finally:
            link.close()
            server.stop()


if __name__ == "__main__":
    main()
