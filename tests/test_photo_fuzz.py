"""Fuzz the photo loader: damaged and crafted files give a PhotoError, never anything else.

Seeds are small valid files of every format the frame meets (with EXIF orientation and date,
animation, 16-bit and alpha); hypothesis flips, inserts and cuts bytes. Bounded for CI: about
FRAME_DAEMON_FUZZ_EXAMPLES (default 1500) files, about 10 s; raise it for a longer hunt.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from frame_daemon.errors import PhotoError
from frame_daemon.vision.photo import decode_photo

EXAMPLES = int(os.environ.get("FRAME_DAEMON_FUZZ_EXAMPLES", "1500"))


def _seed_files() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6
    exif[0x0132] = "2020:01:02 03:04:05"
    seeds = {}
    for fmt in ("JPEG", "WEBP", "TIFF", "PNG"):
        buf = io.BytesIO()
        im.save(buf, format=fmt, exif=exif)
        seeds[fmt] = buf.getvalue()
    buf = io.BytesIO()
    frames = [Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)) for _ in range(3)]
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    seeds["GIF"] = buf.getvalue()
    for name, image in (("PNG16", Image.fromarray(rng.integers(0, 60000, (24, 32), dtype=np.uint16))),
                        ("RGBA", im.convert("RGBA"))):
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        seeds[name] = buf.getvalue()
    return seeds


SEEDS = _seed_files()
edit = st.tuples(st.sampled_from(["set", "insert", "delete"]), st.floats(0, 1, exclude_max=True),
                 st.binary(min_size=1, max_size=4))


@pytest.fixture(scope="module")
def scratch():
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp) / "photo"


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.sampled_from(sorted(SEEDS)), edits=st.lists(edit, min_size=1, max_size=8),
       cut=st.one_of(st.none(), st.floats(0.05, 1)))
def test_damaged_files_give_photo_error_or_an_rgb_image(scratch, seed, edits, cut):
    data = bytearray(SEEDS[seed])
    for kind, where, chunk in edits:
        at = int(where * len(data))
        if kind == "set":
            data[at:at + len(chunk)] = chunk
        elif kind == "insert":
            data[at:at] = chunk
        else:
            del data[at:at + len(chunk)]
    if cut is not None:
        data = data[: int(cut * len(data))]
    scratch.write_bytes(bytes(data))
    try:
        photo = decode_photo(scratch, min_short_side=16)
    except PhotoError as exc:
        assert exc.reason  # a one-line reason for the log and Home Assistant
        return
    assert photo.image.mode == "RGB" and min(photo.image.size) > 0
