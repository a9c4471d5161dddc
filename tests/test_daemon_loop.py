"""The daemon's loop in-process, against a real broker: it outlives faults and reads a photo once."""

from __future__ import annotations

import contextlib
import logging
import sys

import pytest
from PIL import Image

from conftest import gradient_photo
from frame_daemon.config import parse_config
from frame_daemon.daemon import Daemon
from frame_daemon.events import Command, PhotoShown, PlayerChanged, Stop
from frame_daemon.mqtt_link import MqttLink
from servers import Mosquitto, MqttRecorder, free_port, wait_for

STATE = "frame-daemon/frame/state"
IMAGE = "frame-daemon/frame/image"


@pytest.fixture
def loop_daemon(tmp_path, mood_model):
    """A Daemon with its model and a real MQTT link; MPD is a closed port (down)."""
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    cfg = parse_config({
        "source": {"path": str(tmp_path / "current.jpg")},
        "mpd": {"host": "127.0.0.1", "port": free_port(), "timeout_s": 1},
        "mqtt": {"host": "127.0.0.1", "port": broker.port},
        "model": {"max_pixels": 1_000_000},
        "state": {"directory": str(tmp_path / "state")},
    })
    daemon = Daemon(cfg)
    daemon.model = mood_model
    daemon.mqtt = MqttLink(cfg.mqtt, daemon.topics.availability)
    daemon.mqtt.start()
    assert daemon.mqtt.wait_connected(10)
    recorder = MqttRecorder(broker.port, ["frame-daemon/#"])
    yield daemon, recorder
    recorder.close()
    daemon.mqtt.stop()
    with contextlib.suppress(Exception):
        broker.stop()


def test_loop_survives_a_handler_exception_logs_it_once_and_publishes_it(loop_daemon, caplog):
    daemon, recorder = loop_daemon

    def broken_handler() -> None:
        raise RuntimeError("boom in a handler")

    daemon.music.on_player_changed = broken_handler  # a bug in any handler, injected
    for event in (PlayerChanged(frozenset({"player"})), PlayerChanged(frozenset({"player"})),
                  Command("mode", "gentle"), Stop("test")):
        daemon.post(event)
    with caplog.at_level(logging.ERROR, logger="frame_daemon.daemon"):
        daemon._loop()  # returns at Stop, having handled everything before it
    assert daemon.state.mode.value == "gentle"  # the loop went on after the faults
    boom = [r for r in caplog.records if "boom in a handler" in r.getMessage()]
    assert len(boom) == 2 and [r.exc_info is not None for r in boom] == [True, False]
    wait_for(lambda: any(t == STATE and b"boom in a handler" in p for t, p in recorder.history),
             5, what="the error in the published state")


def _jpeg_with_date(path, seed: int, date: str) -> None:
    im = gradient_photo(640, 480, seed)
    exif = im.getexif()
    exif.get_ifd(0x8769)[0x9003] = date
    im.save(path, exif=exif)


def test_photo_is_read_from_one_open_file_even_if_swapped_for_a_bomb(loop_daemon, tmp_path):
    daemon, recorder = loop_daemon
    current = tmp_path / "current.jpg"
    _jpeg_with_date(current, 1, "2018:05:06 07:08:09")
    bomb = tmp_path / ".bomb.png"
    Image.new("L", (2100, 2100)).save(bomb)  # over twice model.max_pixels: Pillow raises
    opened = []

    def swap_on_second_open(event: str, args: tuple) -> None:
        # The frame software replaces the photo while the daemon is still busy with it.
        if event == "open" and armed and str(args[0]) == str(current):
            opened.append(args[0])
            if len(opened) == 2:
                bomb.replace(current)

    armed = True
    sys.addaudithook(swap_on_second_open)  # cannot be removed: disarmed below
    try:
        daemon.handle(PhotoShown(current))
    finally:
        armed = False
    assert len(opened) == 1
    assert daemon.state.photo_taken == "2018-05-06T07:08:09" and daemon.state.error is None
    state = wait_for(lambda: recorder.json(STATE), 5, what="state")
    assert state["photo_taken"] == "2018-05-06T07:08:09"
    wait_for(lambda: recorder.messages.get(IMAGE, b"").startswith(b"\xff\xd8"), 5,
             what="the thumbnail")
