"""Shared fixtures: real photos made by the tests, and the shipped model."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def gradient_photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """A smooth, photo-like RGB image (gradients plus noise) that JPEG compresses realistically."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(40, 200, 3)
    img = np.stack([base[c] + 50 * np.sin(x / (width / (2 + c)) + y / (height / (3 - c)))
                    for c in range(3)], axis=-1)
    img += rng.normal(0, 6, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


@pytest.fixture(scope="session")
def model_json() -> Path:
    """The default mood model's metadata, found the way the installed package finds it."""
    from frame_daemon.vision.model_files import DEFAULT_MOOD_MODEL, model_path

    return model_path(DEFAULT_MOOD_MODEL)


@pytest.fixture(scope="session")
def mood_model(model_json):
    from frame_daemon.vision.model import MoodModel

    return MoodModel.load(model_json)


@pytest.fixture(scope="session")
def demo_photos() -> Path:
    """The demo's freely licensed photos (scripts/demo_photos.py), fetched once into build/ (the
    demo's and the benchmarks' cache): astronaut, cat, coffee, flower, temple, ..."""
    out = ROOT / "build" / "demo" / "photos"
    if len(list(out.glob("*.jpg"))) < 8:
        fetch = [sys.executable, str(ROOT / "scripts" / "demo_photos.py"), str(out)]
        done = subprocess.run(fetch, capture_output=True, text=True)
        if done.returncode != 0:  # pip could not reach PyPI, most likely
            pytest.fail(f"could not fetch the demo photos (run {' '.join(fetch[1:])} with "
                        f"network access to PyPI):\n{done.stderr[-2000:]}", pytrace=False)
    return out


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory) -> Path:
    """A folder of good and bad photo files, each named after what it is."""
    d = tmp_path_factory.mktemp("photos")
    gradient_photo(640, 480, 1).save(d / "good.jpg", quality=90)
    gradient_photo(400, 300, 2).convert("CMYK").save(d / "cmyk.jpg")
    arr16 = (np.linspace(0, 60000, 200 * 150).reshape(150, 200)).astype(np.uint16)
    Image.fromarray(arr16).save(d / "grey16.png")
    rgba = gradient_photo(200, 150, 3).convert("RGBA")
    rgba.putalpha(128)
    rgba.save(d / "alpha.png")
    gradient_photo(200, 150, 4).convert("P").save(d / "palette.png")
    gradient_photo(200, 150, 5).convert("L").save(d / "grey.jpg")
    frames = [gradient_photo(120, 90, s) for s in range(3)]
    frames[0].save(d / "animated.gif", save_all=True, append_images=frames[1:], duration=100)
    good = (d / "good.jpg").read_bytes()
    (d / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (d / "zero.jpg").write_bytes(b"")
    (d / "notanimage.jpg").write_text("this is a text file with a .jpg name\n")
    # 30000 x 30000 = 900 Mpixel: a tiny PNG that would need ~2.7 GB to decode.
    Image.new("1", (30000, 30000)).save(d / "bomb.png", optimize=True)
    return d


def score_as_the_daemon(model, path: Path):
    """A photo's mood as the daemon publishes it: scored from its one decode (at least 480 px on
    the short side, shared with the thumbnail and the faces), which can differ from
    `score(path)`'s 224 px decode by a few hundredths."""
    from frame_daemon.vision.photo import decode_photo
    from frame_daemon.vision.scorer import PHOTO_SHORT_SIDE

    return model.score_image(decode_photo(path, PHOTO_SHORT_SIDE).image, str(path))


def big_jpeg_bytes(width: int = 6000, height: int = 4000, seed: int = 7) -> bytes:
    buf = io.BytesIO()
    gradient_photo(width, height, seed).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


from rig import rig  # noqa: E402, F401 - the integration fixture, shared by several test files
