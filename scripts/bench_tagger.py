#!/usr/bin/env python3
"""Benchmark the music tagger: per-track time with 10, 5 and 3 patches, the mood head's time, and the
process's peak RSS.

    python scripts/bench_tagger.py [--tracks 6] [--rounds 3] [--threads 1] [--keep DIR] [FILE ...]

Uses the given audio files, or synthesizes `--tracks` 4-minute MP3s (scripts/bench_analyse.py's
tracks, made in a child process so that their buffers do not count in this one's peak). Per track:
decode a 30 s excerpt at 16 kHz, the numpy log-mel, and one model invoke per patch. Prints medians
over `--rounds` passes, the time of the parts, and the peak RSS of this process before and after
the tagger was loaded and run. Figures only, no asserts.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from frame_daemon.music.audio import tagger as music_tagger  # noqa: E402
from frame_daemon.music.audio.decode import decode_excerpt  # noqa: E402

PATCH_COUNTS = (10, 5, 3)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def agreement(vectors: list[np.ndarray], reference: list[np.ndarray], ref_n: int) -> str:
    """How far fewer patches move each track's tags from the most patches: top-5 overlap, ranks."""
    if vectors is reference:
        return ""
    top5 = [len(set(np.argsort(-v)[:5]) & set(np.argsort(-r)[:5])) / 5
            for v, r in zip(vectors, reference, strict=True)]
    rho = [np.corrcoef(np.argsort(np.argsort(v)), np.argsort(np.argsort(r)))[0, 1]
           for v, r in zip(vectors, reference, strict=True)]
    err = [np.abs(v - r).max() for v, r in zip(vectors, reference, strict=True)]
    return (f"; against {ref_n} patches: top-5 overlap {np.mean(top5):.2f}, Spearman "
            f"{np.mean(rho):.3f}, max |d| {np.max(err):.3f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--tracks", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--keep", type=Path, default=None, help="folder to keep (and reuse) the MP3s in")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.files:
            paths = args.files
        else:
            folder = args.keep or Path(tmp)
            subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                            "from bench_analyse import make_tracks; "
                            "make_tracks(Path(sys.argv[1]), int(sys.argv[2]))",
                            str(folder), str(args.tracks)], check=True, cwd=ROOT / "scripts",
                           # about 6 s of synthesis a track here; a hung encoder ends the bench
                           timeout=120 + 60 * args.tracks)
            paths = sorted(folder.glob("track*.mp3"))[:args.tracks]
        excerpts = [decode_excerpt(p, rate=music_tagger.SAMPLE_RATE)[0] for p in paths]
        # The peak so far is decoding (and holding the excerpts); what the tagger adds comes on top.
        before = peak_rss_mb()
        start = time.perf_counter()
        tagger = music_tagger.MusicTagger.load(threads=args.threads)
        load_s = time.perf_counter() - start
        tagger.tags(excerpts[0], patches=1)  # warm-up of the interpreter
        print(f"{len(paths)} tracks, 30 s excerpts; runtime {tagger.runtime}, {args.threads} thread(s), "
              f"model {tagger.meta['quantization']}; load {load_s * 1000:.0f} ms")
        decode_s, mel_s = [], []
        for _ in range(args.rounds):
            for p in paths:
                t0 = time.perf_counter()
                samples, _ = decode_excerpt(p, rate=music_tagger.SAMPLE_RATE)
                t1 = time.perf_counter()
                music_tagger.log_mel(samples)
                mel_s.append(time.perf_counter() - t1)
                decode_s.append(t1 - t0)
        print(f"decode (16 kHz) median {statistics.median(decode_s) * 1000:.0f} ms, "
              f"log-mel median {statistics.median(mel_s) * 1000:.1f} ms")
        patch = music_tagger.log_mel(excerpts[0])[:music_tagger.PATCH_FRAMES]
        invoke = []
        for _ in range(20):
            t0 = time.perf_counter()
            tagger.infer_patch(patch)
            invoke.append(time.perf_counter() - t0)
        print(f"one patch (invoke) median {statistics.median(invoke) * 1000:.1f} ms")
        dec = statistics.median(decode_s)
        vectors = {}
        for n in PATCH_COUNTS:
            per = []
            for _ in range(args.rounds):
                for x in excerpts:
                    t0 = time.perf_counter()
                    tagger.tag_vector(x, patches=n)
                    per.append(time.perf_counter() - t0)
            vectors[n] = [tagger.tag_vector(x, patches=n) for x in excerpts]
            tag_ms = statistics.median(per) * 1000
            print(f"{n:2d} patches: tags median {tag_ms:.0f} ms, with decode {tag_ms + dec * 1000:.0f} "
                  f"ms per track ({1000 / (tag_ms + dec * 1000):.1f} tracks/s per process)"
                  + agreement(vectors[n], vectors[PATCH_COUNTS[0]], PATCH_COUNTS[0]))
        if tagger.head is not None:  # the mood head on each track's tags (3 patches)
            from frame_daemon.music.audio.features import analyse_samples
            features = analyse_samples(*decode_excerpt(paths[0])).as_dict()
            tags = [dict(zip(tagger.labels, v, strict=True)) for v in vectors[3]]
            head_s = []
            for _ in range(args.rounds * 10):
                for t in tags:
                    t0 = time.perf_counter()
                    tagger.head(features, t)
                    head_s.append(time.perf_counter() - t0)
            print(f"mood head {tagger.head.version}: median {statistics.median(head_s) * 1000:.2f} ms "
                  f"per track (90th percentile {statistics.quantiles(head_s, n=10)[-1] * 1000:.2f} ms "
                  f"over {len(head_s)} calls)")
        print(f"peak RSS of this process: {before:.0f} MB after decoding the excerpts, "
              f"{peak_rss_mb():.0f} MB after loading and running the tagger "
              f"(+{peak_rss_mb() - before:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
