#!/usr/bin/env python3
"""Benchmark the built-in slideshow on SDL's dummy display (no screen needed).

    .venv/bin/python scripts/bench_slideshow.py [--photos 50000] [--runs 3] [--size 1920x1080]

- first photo: from start to the first photo shown, in a library of `--photos` files (hard links
  of one 4000x3000 camera JPEG with an EXIF date taken, in folders of 200), cold (no cache: a new
  state directory) and warm (the SQLite cache from the last run), in shuffle and in date order.
  Median over `--runs`.
- dates taken: how long the background reader takes to read every photo's EXIF date into the
  cache in date order (the photos show meanwhile, sorted by mtime until read).
- memory: the process's RSS with the slideshow running at `--size` after 10 photos, each also
  scored by the mood model on this thread as the daemon's loop does (so: slideshow + model).
- idle CPU: the process's CPU time over 10 s while a photo shows (after the scan finished), as %
  of one core.
- cross-fade: the frame times of a 1 s cross-fade at `--size`: median, p90, and frames per second.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from PIL import Image  # noqa: E402

from conftest import gradient_photo  # noqa: E402
from frame_daemon.events import CommandName, PhotoShown  # noqa: E402
from frame_daemon.sources.slideshow import Slideshow, SlideshowOptions  # noqa: E402
from frame_daemon.vision.model import MoodModel  # noqa: E402
from frame_daemon.vision.photo import decode_photo  # noqa: E402
from servers import wait_for  # noqa: E402

SCAN_TIMEOUT_S = 900  # the background scan and dates: a bound, so that a stuck scan says so


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_library(folder: Path, count: int) -> None:
    original = folder / "original.jpg"
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2019:05:01 10:00:00"  # DateTimeOriginal, as a camera writes
    gradient_photo(4000, 3000, 5).save(original, quality=90, exif=exif)
    for i in range(count):
        sub = folder / f"{i // 200:04d}"
        if i % 200 == 0:
            sub.mkdir()
        os.link(original, sub / f"IMG_{i:06d}.jpg")
    original.unlink()


class Shown:
    def __init__(self) -> None:
        self.paths: list[Path] = []
        self.event = threading.Event()

    def __call__(self, event) -> None:
        if isinstance(event, PhotoShown):
            self.paths.append(event.path)
            self.event.set()


def first_photo_s(library: Path, state: Path, size: tuple[int, int], order: str = "shuffle",
                  ) -> float:
    shown = Shown()
    started = time.perf_counter()
    show = Slideshow(SlideshowOptions(folders=(library,), interval_s=3600, fade_s=0, order=order,
                                      width=size[0], height=size[1], overlay=False), state, shown)
    show.start()
    if not shown.event.wait(60):
        raise SystemExit("no photo within 60 s")
    elapsed = time.perf_counter() - started
    show.stop()
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=int, default=50_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", default="1920x1080")
    args = ap.parse_args()
    size = tuple(int(x) for x in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="bench-slideshow-") as tmp:
        work = Path(tmp)
        library = work / "photos"
        library.mkdir()
        print(f"making {args.photos} photo files (hard links of one 4000x3000 JPEG)...", flush=True)
        make_library(library, args.photos)

        for order in ("shuffle", "date"):
            cold = [first_photo_s(library, work / f"state-{order}-{i}", size, order)
                    for i in range(args.runs)]
            warm = [first_photo_s(library, work / f"state-{order}-0", size, order)
                    for _ in range(args.runs)]
            print(f"first photo, {args.photos} files, {size[0]}x{size[1]}, {order} order: cold "
                  f"median {statistics.median(cold):.2f} s "
                  f"(runs {', '.join(f'{x:.2f}' for x in cold)}); warm median "
                  f"{statistics.median(warm):.2f} s (runs {', '.join(f'{x:.2f}' for x in warm)})",
                  flush=True)

        show = Slideshow(SlideshowOptions(folders=(library,), interval_s=3600, fade_s=0,
                                          order="date", width=size[0], height=size[1],
                                          overlay=False), work / "state-dates", Shown())
        started = time.perf_counter()
        show.start()
        wait_for(lambda: show.library.count() >= args.photos and not show.library.undated(1),
                 SCAN_TIMEOUT_S, interval=0.2, what="every photo scanned and dated")
        dated_s = time.perf_counter() - started
        show.stop()
        print(f"dates taken (EXIF) of {args.photos} photos read in the background, date order: "
              f"{dated_s:.1f} s from start ({args.photos / dated_s:.0f} photos/s, scan included)",
              flush=True)

        model = MoodModel.load()
        shown = Shown()
        show = Slideshow(SlideshowOptions(folders=(library,), interval_s=3600, fade_s=1.0,
                                          width=size[0], height=size[1], overlay=True),
                         work / "state-run", shown)
        show.start()
        fades: list[float] = []
        for n in range(1, 11):
            if not shown.event.wait(30):
                raise SystemExit(f"photo {n} not shown within 30 s")
            shown.event.clear()
            photo = decode_photo(shown.paths[-1], 480)  # as the daemon's loop: decode and score
            model.score_image(photo.image, str(shown.paths[-1]))
            if n > 1:
                fades.extend(show.fade_times_ms)
            if n < 10:
                show.command(CommandName.PHOTO_NEXT)
        print(f"RSS with the slideshow at {size[0]}x{size[1]} and the mood model, after 10 "
              f"photos: {rss_mb():.0f} MB", flush=True)
        wait_for(lambda: show.library.count() >= args.photos, SCAN_TIMEOUT_S,  # the scan's end
                 interval=0.5, what="the background scan to finish")
        time.sleep(1.0)
        cpu0, t0 = time.process_time(), time.monotonic()
        time.sleep(10)
        idle = (time.process_time() - cpu0) / (time.monotonic() - t0) * 100
        print(f"CPU while a photo shows (idle between photos): {idle:.2f} % of one core",
              flush=True)
        show.stop()
        fades.sort()
        print(f"cross-fade at {size[0]}x{size[1]} (dummy driver, capped at 60 fps): "
              f"{len(fades)} frames over 9 fades; frame time median "
              f"{statistics.median(fades):.1f} ms, p90 {fades[int(len(fades) * 0.9)]:.1f} ms, "
              f"max {fades[-1]:.1f} ms; {len(fades) / 9:.0f} frames per 1 s fade", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
