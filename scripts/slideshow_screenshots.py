#!/usr/bin/env python3
"""Make the README's slideshow screenshots from SDL's dummy display (no screen needed).

    .venv/bin/python scripts/demo_photos.py build/demo/photos
    .venv/bin/python scripts/slideshow_screenshots.py build/demo/photos docs/images

Writes slideshow-overlay.png (a landscape photo with the overlay: the photo's name, the music as
the daemon tells it, and the photo's mood word from the shipped model) and
slideshow-portrait-fill.png (a portrait crop of rocket.jpg on a landscape screen, fill mode), at
960x540.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

from PIL import Image

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

from frame_daemon.events import PhotoShown
from frame_daemon.sources.slideshow import ShowRequest, Slideshow, SlideshowOptions
from frame_daemon.vision.model import MoodModel

SIZE = (960, 540)


def portrait_crop(photo: Path, out: Path) -> Path:
    """The middle 2:3 of a landscape photo: a portrait photo to show."""
    with Image.open(photo) as im:
        width = im.height * 2 // 3
        left = (im.width - width) // 2
        im.convert("RGB").crop((left, 0, left + width, im.height)).save(out, quality=92)
    return out


def screenshot(photo: Path, out: Path, *, overlay_lines: tuple[str, ...] | None) -> None:
    with tempfile.TemporaryDirectory(prefix="screenshots-") as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        if overlay_lines is None:
            portrait_crop(photo, folder / photo.name)
        else:
            shutil.copy(photo, folder / photo.name)
        shown = threading.Event()
        show = Slideshow(SlideshowOptions(folders=(folder,), interval_s=3600, fade_s=0,
                                          fit="fill", width=SIZE[0], height=SIZE[1],
                                          overlay=overlay_lines is not None, overlay_s=60),
                         Path(tmp) / "state", lambda e: isinstance(e, PhotoShown) and shown.set())
        show.start()
        try:
            if not shown.wait(30):
                raise SystemExit(f"{photo}: not shown")
            if overlay_lines:
                show.command(ShowRequest.INFO, overlay_lines)
            if not show.capture(out):
                raise SystemExit("the screen was not saved")
        finally:
            show.stop()
    print(f"wrote {out}")


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    photos, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    landscape, portrait = photos / "coffee.jpg", photos / "rocket.jpg"
    mood = MoodModel.load().score(landscape).word
    screenshot(landscape, out / "slideshow-overlay.png",
               overlay_lines=("Morning Light – The Quiet Hours", mood))
    screenshot(portrait, out / "slideshow-portrait-fill.png", overlay_lines=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
