#!/usr/bin/env python3
"""Benchmark the mood model: invoke time, full-photo latency and `score` peak memory.

    python scripts/bench_score.py [--model models/mood-v1.json] [--runs 200]

Prints medians (and p90) of:
- invoke: the int8 model alone, 1 thread, the runtime `auto` picks (ai-edge-litert by default);
- photo: load + preprocess + invoke of a 6000x4000 JPEG, end to end through MoodModel.score;
- the peak RSS of a `frame-daemon score` process scoring 20 photos (6000x4000 and 4000x3000).
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from frame_daemon.vision.model import MoodModel  # noqa: E402
from frame_daemon.vision.model_files import DEFAULT_MOOD_MODEL, model_path  # noqa: E402

MEASURE_CHILD = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
sys.exit(f"score failed: {status}") if status else print(usage.ru_maxrss)
"""


def synthetic_photo(width: int, height: int, seed: int) -> bytes:
    """A photo-like JPEG (smooth gradients plus sensor-like noise) of the given size."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (height // 64 + 2, width // 64 + 2, 3)).astype(np.uint8)
    im = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)
    noise = rng.normal(0, 8, (height, width, 3))
    arr = np.clip(np.asarray(im, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def contrasting_big_photos(folder: Path, size: tuple[int, int] = (6000, 4000)) -> list[Path]:
    """Two real photos of clearly different mood (an astronaut, a cup of coffee; public domain,
    from scikit-image's wheel via scripts/demo_photos.py), upscaled to size with sensor-like
    noise, so that every change between them moves the music."""
    demo = ROOT / "build" / "demo" / "photos"
    if not (demo / "astronaut.jpg").exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "demo_photos.py"), str(demo)],
                       check=True)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    rng = np.random.default_rng(0)
    for name in ("astronaut", "coffee"):
        target = folder / f"{name}-{size[0]}x{size[1]}.jpg"
        if not target.exists():
            with Image.open(demo / f"{name}.jpg") as im:
                big = np.asarray(im.convert("RGB").resize(size, Image.Resampling.BICUBIC),
                                 dtype=np.float32)
            big += rng.normal(0, 4, big.shape).astype(np.float32)
            Image.fromarray(np.clip(big, 0, 255).astype(np.uint8)).save(target, quality=90)
        out.append(target)
    return out


def summary(label: str, samples_s: list[float]) -> None:
    ms = sorted(s * 1000 for s in samples_s)
    p90 = ms[int(0.9 * (len(ms) - 1))]
    print(f"{label}: median {statistics.median(ms):.2f} ms, p90 {p90:.2f} ms, n={len(ms)}",
          flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=None, help="model metadata JSON (default: the shipped one)")
    ap.add_argument("--runs", type=int, default=200, help="invoke repetitions")
    args = ap.parse_args()
    args.model = args.model or model_path(DEFAULT_MOOD_MODEL)

    model = MoodModel.load(args.model, threads=1)
    print(f"model {args.model.name}, runtime {model.runtime}, 1 thread", flush=True)
    pixels = np.asarray(Image.open(io.BytesIO(synthetic_photo(224, 224, 0))).convert("RGB"))
    for _ in range(10):
        model.infer(pixels)
    times = []
    for _ in range(args.runs):
        t = time.perf_counter()
        model.infer(pixels)
        times.append(time.perf_counter() - t)
    summary("invoke (int8, 1 thread)", times)

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        print("writing 20 test photos (6000x4000 and 4000x3000 JPEGs)...", flush=True)
        photos = []
        for i in range(20):
            w, h = (6000, 4000) if i % 2 == 0 else (4000, 3000)
            path = tmp_path / f"photo{i:02d}.jpg"
            path.write_bytes(synthetic_photo(w, h, i))
            photos.append(path)
        big = [p for i, p in enumerate(photos) if i % 2 == 0]
        model.score(big[0])
        times = []
        for i in range(20):
            t = time.perf_counter()
            model.score(big[i % len(big)])
            times.append(time.perf_counter() - t)
        summary("6000x4000 JPEG load+preprocess+invoke", times)

        # ru_maxrss of a child counts what it inherited before exec, so the score process is
        # started from a small launcher, not from this process with its big test photos.
        cmd = [sys.executable, "-m", "frame_daemon", "score", "--model", str(args.model),
               *map(str, photos)]
        proc = subprocess.run([sys.executable, "-c", MEASURE_CHILD, *cmd], capture_output=True,
                              text=True)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        peak_kib = int(proc.stdout.strip().splitlines()[-1])
        print(f"frame-daemon score, 20 photos: peak RSS {peak_kib / 1024:.1f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
