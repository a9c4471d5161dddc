"""A photo that would hold the daemon's loop for minutes is refused at once; the loop goes on."""

from __future__ import annotations

import io
import os

from PIL import Image

from conftest import gradient_photo
from frame_daemon.config import parse_config
from frame_daemon.daemon import Daemon
from frame_daemon.events import Command, PhotoShown, Stop
from servers import free_port


def scan_bomb(width: int, height: int, repeats: int) -> bytes:
    """A progressive JPEG whose last scan is repeated: each repeat is a pass over every
    coefficient (8000x6000 with 20,000 repeats, 1.5 MB, took 77 s of CPU)."""
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (90, 120, 150)).save(buf, "JPEG", progressive=True)
    data = buf.getvalue()
    last = data.rindex(b"\xff\xda")
    return data[:-2] + data[last:-2] * repeats + data[-2:]


def test_a_scan_bomb_is_refused_once_with_its_reason_and_the_loop_answers(tmp_path, mood_model,
                                                                          monkeypatch):
    bomb, good = tmp_path / "scans.jpg", tmp_path / "good.jpg"
    bomb.write_bytes(scan_bomb(800, 600, 2000))
    gradient_photo(640, 480, 1).save(good)
    cfg = parse_config({
        "source": {"path": str(good)},
        "mpd": {"host": "127.0.0.1", "port": free_port(), "timeout_s": 1},  # MPD is down
        "state": {"directory": str(tmp_path / "state")},
    })
    daemon = Daemon(cfg)
    daemon.model = mood_model
    opened = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda p, *a, **k: (opened.append(p) if str(p) == str(bomb)
                                                        else None) or real_open(p, *a, **k))
    for event in (PhotoShown(bomb), Command("mode", "gentle"), PhotoShown(bomb), Stop("test")):
        daemon.post(event)
    daemon._loop()  # returns at Stop, having handled everything before it
    assert daemon.state.mode.value == "gentle"  # the command after the bomb was answered
    assert daemon.state.error and "JPEG with more than 100 scans" in daemon.state.error
    assert daemon.state.photo is None
    assert len(opened) == 1  # shown again unchanged: refused from memory, not opened again
    daemon.handle(PhotoShown(good))
    assert daemon.state.photo is not None and daemon.state.error is None
