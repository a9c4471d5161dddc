"""The integration rig: real servers, photos, a config and an MQTT recorder for one daemon."""

from __future__ import annotations

import contextlib
import shutil
import signal
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from conftest import gradient_photo
from harness import DaemonProcess, make_servers, show_photo, wait_for, write_config
from servers import MqttRecorder

STATE = "frame-daemon/frame/state"
AVAIL = "frame-daemon/frame/availability"


def two_photos_and_a_frame(tmp_path: Path, demo_photos: Path) -> tuple[Path, Path]:
    """A photo folder (dark.jpg, dark and murky; bright.jpg, the demo's sunlit temple at 800x600)
    and the frame's current.jpg, showing the dark one. The model reads them far apart (pensive,
    tender; mood-v4 reads the demo's flower only 0.45 from the dark one, and the serene track
    picked for the dark one fits the flower too): a change between them is one the music must
    follow, not one the playing track fits too."""
    photos = tmp_path / "photos"
    photos.mkdir()
    gradient_photo(800, 600, 11).point(lambda v: v // 5).save(photos / "dark.jpg", quality=92)
    with Image.open(demo_photos / "temple.jpg") as temple:
        ImageOps.fit(temple.convert("RGB"), (800, 600)).save(photos / "bright.jpg", quality=92)
    frame = tmp_path / "frame"
    frame.mkdir()
    current = frame / "current.jpg"
    shutil.copy(photos / "dark.jpg", current)
    return photos, current


@pytest.fixture
def rig(tmp_path, model_json, demo_photos):
    """Servers, a photo folder with two photos, a config and a recorder; cleaned up."""
    mpd, broker = make_servers(tmp_path)
    photos, current = two_photos_and_a_frame(tmp_path, demo_photos)
    config = write_config(tmp_path / "frame.toml", photo=current, mpd=mpd, mqtt=broker,
                          state_dir=tmp_path / "state")
    recorder = MqttRecorder(broker.port, ["frame-daemon/#", "homeassistant/#"])
    daemon = DaemonProcess(config, tmp_path / "daemon.log")
    rig = type("Rig", (), dict(mpd=mpd, broker=broker, photos=photos, current=current,
                               config=config, recorder=recorder, daemon=daemon, tmp=tmp_path))
    yield rig
    if daemon.alive():
        daemon.stop(signal.SIGKILL)
    recorder.close()
    for server in (mpd, broker):
        with contextlib.suppress(Exception):  # best-effort cleanup
            server.stop()


def show(rig, name: str) -> None:
    """Replace the frame's photo atomically, the way frame software does."""
    show_photo(rig.current, rig.photos / name)


def state(rig) -> dict:
    return rig.recorder.json(STATE) or {}


def wait_state(rig, predicate, what: str, timeout: float = 20.0) -> dict:
    try:
        return wait_for(lambda: (s := state(rig)) and predicate(s) and s, timeout, what=what)
    except TimeoutError:
        print(rig.daemon.log()[-4000:])
        raise


def slideshow_config(rig) -> None:
    """Make the rig's daemon show its photo folder itself (the slideshow, 320x180, name order,
    one photo an hour unless told otherwise)."""
    text = rig.config.read_text()
    text = text.replace('kind = "file"', 'kind = "slideshow"')
    text = text.replace(f'path = "{rig.current}"', f'path = "{rig.photos}"')
    text = text.replace("settle_s = 0.1", 'settle_s = 0.1\ninterval_s = 3600\nfade_s = 0\n'
                                          'width = 320\nheight = 180\norder = "name"')
    rig.config.write_text(text)
