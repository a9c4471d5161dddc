#!/usr/bin/env python3
"""Benchmark the mood model: invoke time, full-photo latency and `score` peak memory.

    python scripts/bench_score.py [--model models/mood-v3.json] [--runs 200] [--no-big] [--odd-only]

Prints medians (and p90) of:
- invoke: the int8 model alone, 1 thread, the runtime `auto` picks (ai-edge-litert by default);
- photo: load + preprocess + invoke of a 6000x4000 JPEG, end to end through MoodModel.score;
- people: the same for a 6000x4000 JPEG with 3 faces, and for a crowd of 40 faces (faces found,
  the largest few read for their expressions), both made from NASA's public-domain astronaut
  portrait;
- the peak RSS of a `frame-daemon score` process (1 thread) scoring 22 photos (6000x4000 and
  4000x3000, the two photos of people included);
- the peak RSS of `frame-daemon score` on one big photo each (unless --no-big): the 144 MP
  16-bit PNG and RGBA PNG that the decode budget refuses, and the largest of each kind that it
  lets through (target: <= 300 MB for any photo the guard lets through). Writing these photos
  needs about 1.5 GB of memory and a minute.
- odd shapes (only these with --odd-only): the peak RSS of `frame-daemon score`, and of the
  daemon's own handling of a photo (decode at 480 px, faces, model, thumbnail), for lines and
  long canvases (refused past 20:1) and the longest ones let through, and the CPU time to refuse
  an 8000x6000 progressive JPEG of 20,000 scans.
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
from frame_daemon.errors import PhotoError  # noqa: E402
from frame_daemon.vision.model import MoodModel  # noqa: E402
from frame_daemon.vision.model_files import DEFAULT_MOOD_MODEL, model_path  # noqa: E402
from frame_daemon.vision.photo import load_photo  # noqa: E402

MEASURE_CHILD = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
err = proc.stderr.read().decode(errors="replace")
_, status, usage = os.wait4(proc.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
print(err.strip().splitlines()[-1] if err.strip() else "")
"""


def peak_rss(cmd: list[str]) -> tuple[int, float, str]:
    """(exit code, peak RSS in MB, last stderr line) of a command, from a small launcher:
    ru_maxrss of a child counts what it inherited before exec, so not from this big process."""
    proc = subprocess.run([sys.executable, "-c", MEASURE_CHILD, *cmd], capture_output=True,
                          text=True, check=True)
    first, _, last = proc.stdout.partition("\n")
    code, kib = first.split()
    return int(code), int(kib) / 1024, last.strip()


def big_photos(folder: Path) -> list[tuple[str, Path]]:
    """Big, highly compressible photos (a gradient with a little texture): the kinds that have
    no reduced decoding, at 144 MP and at the largest size the default budget (160 MB) allows,
    and JPEGs (baseline and progressive) that decode at 1/8 scale."""
    def gradient(width: int, height: int, top: int) -> np.ndarray:
        row = np.linspace(0, top, width, dtype=np.float32)
        col = (np.arange(height, dtype=np.float32) % 64) * (top / 512)
        return np.add.outer(col, row)

    out = []
    for label, name, size, mode in (
        ("16-bit grey PNG, 144 MP (refused)", "grey16-144mp.png", (12000, 12000), "I;16"),
        ("RGBA PNG, 144 MP (refused)", "rgba-144mp.png", (12000, 12000), "RGBA"),
        ("16-bit grey PNG, 80 MP (allowed)", "grey16-80mp.png", (10000, 8000), "I;16"),
        ("RGBA PNG, 39 MP (allowed)", "rgba-39mp.png", (7200, 5400), "RGBA"),
        ("RGB PNG, 39 MP (allowed)", "rgb-39mp.png", (7200, 5400), "RGB"),
        ("WebP, 9.5 MP (allowed)", "big-9mp.webp", (3780, 2520), "WEBP"),
        ("JPEG, 144 MP, baseline", "big-144mp.jpg", (12000, 12000), "JPEG"),
        ("JPEG, 48 MP, progressive", "big-48mp-progressive.jpg", (8000, 6000), "PJPEG"),
    ):
        path = folder / name
        print(f"  writing {name}...", flush=True)
        width, height = size
        if mode == "I;16":
            arr = gradient(width, height, 60000).astype(np.uint16)
            Image.fromarray(arr).save(path, compress_level=1)
        else:
            grey = Image.fromarray(gradient(width, height, 255).astype(np.uint8))
            im = Image.merge("RGB", (grey, grey.transpose(Image.Transpose.FLIP_LEFT_RIGHT), grey))
            del grey
            if mode == "RGBA":
                im.putalpha(200)
            if mode in ("JPEG", "PJPEG"):
                im.save(path, quality=85, progressive=mode == "PJPEG")
            elif mode == "WEBP":
                im.save(path, quality=80, method=0)
            else:
                im.save(path, compress_level=1)
            del im
        out.append((label, path))
    return out


# The daemon's handling of one photo, as Daemon.on_photo does it (its own process, so its peak
# is its own): decode at PHOTO_SHORT_SIDE, faces and the model, the thumbnail.
DAEMON_PHOTO = """
import sys
from frame_daemon.errors import PhotoError
from frame_daemon.vision.model import MoodModel
from frame_daemon.vision.photo import decode_photo, thumbnail_jpeg
model = MoodModel.load(sys.argv[1], threads=1)
try:
    photo = decode_photo(sys.argv[2], 480)  # the daemon's PHOTO_SHORT_SIDE
except PhotoError as exc:
    sys.exit(f"frame-daemon: {exc}")
model.score_image(photo.image, sys.argv[2])
thumbnail_jpeg(photo.image)
"""


def odd_photos(folder: Path) -> list[tuple[str, Path]]:
    """Tiny files of extreme shapes (issue 16): lines, a GIF whose canvas is 65535x255, and the
    longest shapes let through (20:1), short enough on their short side not to be shrunk."""
    out = []
    for label, name, size, mode in (
        ("PNG 1x2000 (refused)", "line-1x2000.png", (1, 2000), "L"),
        ("PNG 1x4000 (refused)", "line-1x4000.png", (1, 4000), "L"),
        ("PNG 1x65000 (refused)", "line-1x65000.png", (1, 65000), "L"),
        ("GIF canvas 65535x255 (refused)", "canvas-65535x255.gif", (65535, 255), "GIF"),
        ("GIF canvas 5100x255 (20:1, allowed)", "canvas-5100x255.gif", (5100, 255), "GIF"),
        ("RGBA PNG 447x8940 (20:1, allowed)", "rgba-447x8940.png", (447, 8940), "RGBA"),
        ("RGBA PNG 959x19180 (20:1, allowed)", "rgba-959x19180.png", (959, 19180), "RGBA"),
    ):
        path = folder / name
        if mode == "GIF":
            frame = Image.new("P", (1, 1))
            frame.putpalette([0, 0, 0] * 256)
            buf = io.BytesIO()
            frame.save(buf, "GIF")
            data = bytearray(buf.getvalue())
            data[6:10] = size[0].to_bytes(2, "little") + size[1].to_bytes(2, "little")
            path.write_bytes(bytes(data))
        elif mode == "RGBA":
            im = Image.linear_gradient("L").resize(size).convert("RGBA")
            im.putalpha(200)
            im.save(path, compress_level=1)
        else:
            Image.new(mode, size, 128).save(path, optimize=True)
        out.append((f"{label}, {path.stat().st_size} bytes", path))
    return out


def scan_bomb(path: Path, width: int = 8000, height: int = 6000, repeats: int = 20000) -> Path:
    """A progressive JPEG whose last scan is repeated (each repeat a pass over the whole photo)."""
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (90, 120, 150)).save(buf, "JPEG", progressive=True)
    data = buf.getvalue()
    last = data.rindex(b"\xff\xda")
    path.write_bytes(data[:-2] + data[last:-2] * repeats + data[-2:])
    return path


def bench_odd_shapes(model_json: Path, folder: Path) -> None:
    score = [sys.executable, "-m", "frame_daemon", "score", "--threads", "1", "--model",
             str(model_json)]
    daemon = [sys.executable, "-c", DAEMON_PHOTO, str(model_json)]
    print("odd shapes, peak RSS of one `frame-daemon score` / of the daemon's photo handling:",
          flush=True)
    for label, path in odd_photos(folder):
        figures = []
        for cmd in (score, daemon):
            code, peak_mb, _ = peak_rss([*cmd, str(path)])
            figures.append(f"{peak_mb:.0f} MB" + ("" if code == 0 else " (refused)"))
        print(f"{label}: score {figures[0]}, daemon {figures[1]}", flush=True)
    bomb = scan_bomb(folder / "scans.jpg")
    t = time.process_time()
    try:
        load_photo(bomb)
        outcome = "decoded"
    except PhotoError as exc:
        outcome = "refused: " + exc.reason
    print(f"progressive JPEG 8000x6000, 20,000 scans, {bomb.stat().st_size} bytes: "
          f"{(time.process_time() - t) * 1000:.1f} ms of CPU, {outcome}", flush=True)


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


def demo_photos() -> Path:
    """The demo's public-domain photos (scripts/demo_photos.py), fetched once into build/."""
    demo = ROOT / "build" / "demo" / "photos"
    if not (demo / "astronaut.jpg").exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "demo_photos.py"), str(demo)],
                       check=True)
    return demo


def save_with_sensor_noise(image: Image.Image, path: Path, rng: np.random.Generator) -> Path:
    """Save as a JPEG with a little noise, as a camera sensor would add (decodes realistically)."""
    noisy = np.asarray(image, dtype=np.float32)
    noisy += rng.normal(0, 4, noisy.shape).astype(np.float32)
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(path, quality=90)
    return path


def contrasting_big_photos(folder: Path, size: tuple[int, int] = (6000, 4000)) -> list[Path]:
    """Two real photos of clearly different mood (an astronaut, a cup of coffee; public domain,
    from scikit-image's wheel via scripts/demo_photos.py), upscaled to size with sensor-like
    noise, so that every change between them moves the music."""
    demo = demo_photos()
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    rng = np.random.default_rng(0)
    for name in ("astronaut", "coffee"):
        target = folder / f"{name}-{size[0]}x{size[1]}.jpg"
        if not target.exists():
            with Image.open(demo / f"{name}.jpg") as im:
                save_with_sensor_noise(im.convert("RGB").resize(size, Image.Resampling.BICUBIC),
                                       target, rng)
        out.append(target)
    return out


def people_photos(folder: Path) -> list[Path]:
    """6000x4000 JPEGs of people: a group of 3 portraits, and a crowd of 40 heads."""
    with Image.open(demo_photos() / "astronaut.jpg") as im:
        portrait = im.convert("RGB")
    group = Image.new("RGB", (6000, 4000), (120, 110, 100))
    for i in range(3):
        group.paste(portrait.resize((2000, 2000)), (i * 2000, 1000 - (i % 2) * 600))
    head = portrait.crop((150, 20, 330, 230))
    crowd = Image.new("RGB", (6000, 4000), (60, 60, 70))
    for i in range(40):
        crowd.paste(head.resize((700, 800)), ((i % 8) * 750, (i // 8) * 800))
    out = []
    for name, image in (("group-3-faces", group), ("crowd-40-faces", crowd)):
        out.append(save_with_sensor_noise(image, folder / f"{name}.jpg", np.random.default_rng(1)))
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
    ap.add_argument("--no-big", action="store_true", help="skip the big-photo memory cases")
    ap.add_argument("--odd-only", action="store_true", help="only the odd shapes and the scan bomb")
    args = ap.parse_args()
    args.model = args.model or model_path(DEFAULT_MOOD_MODEL)
    if args.odd_only:
        with tempfile.TemporaryDirectory() as tmp:
            bench_odd_shapes(args.model, Path(tmp))
        return 0

    model = MoodModel.load(args.model, threads=1)
    print(f"model {args.model.name}, runtime {model.runtime}, 1 thread", flush=True)
    pixels = np.asarray(Image.open(io.BytesIO(synthetic_photo(model.size, model.size, 0))).convert("RGB"))
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

        for path in people_photos(tmp_path):
            found = model.score(path)
            times = []
            for _ in range(20):
                t = time.perf_counter()
                model.score(path)
                times.append(time.perf_counter() - t)
            summary(f"{path.stem} (6000x4000 JPEG, {found.face_count} faces found, "
                    f"{len(found.faces)} read)", times)
            photos.append(path)

        score = [sys.executable, "-m", "frame_daemon", "score", "--threads", "1", "--model",
                 str(args.model)]
        code, peak_mb, err = peak_rss([*score, *map(str, photos)])
        if code != 0:
            print(f"score failed: {err}", file=sys.stderr)
            return 1
        print(f"frame-daemon score, {len(photos)} photos: peak RSS {peak_mb:.1f} MB", flush=True)

        bench_odd_shapes(args.model, tmp_path)
        if not args.no_big:
            print("big photos, one `frame-daemon score` each:", flush=True)
            for label, path in big_photos(tmp_path):
                code, peak_mb, err = peak_rss([*score, str(path)])
                outcome = "scored" if code == 0 else "refused: " + err.split(": ", 2)[-1]
                print(f"{label}: peak RSS {peak_mb:.1f} MB ({outcome})", flush=True)
                path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
