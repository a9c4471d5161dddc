"""The daemon's loop in-process, against a real broker: it outlives faults and reads a photo once."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import threading

import pytest
from PIL import Image

from conftest import gradient_photo
from frame_daemon.config import parse_config
from frame_daemon.daemon import Daemon
from frame_daemon.events import AdapterFailed, Command, PhotoScored, PhotoShown, PlayerChanged, Stop
from frame_daemon.mqtt_link import MqttLink
from frame_daemon.vision.scoring_worker import ScoringWorker
from harness import loop_in_thread
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


def test_a_photo_whose_read_hangs_does_not_stall_the_loop(tmp_path, mood_model, demo_photos,
                                                          monkeypatch):
    """A photo on a network share whose server is gone: opening it hangs (only `os.open` of that
    one file is replaced: it waits on an event). The scoring worker waits; the loop answers a
    command over MQTT meanwhile, and takes the photo's mood once it is read."""
    photo = tmp_path / "share" / "coffee.jpg"
    photo.parent.mkdir()
    shutil.copy(demo_photos / "coffee.jpg", photo)
    opening, release = threading.Event(), threading.Event()
    real_open = os.open

    def hanging_open(path, *args, **kwargs):
        if os.fspath(path) == str(photo):
            opening.set()
            release.wait(60)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", hanging_open)
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    cfg = parse_config({
        "source": {"path": str(photo)},
        "mpd": {"host": "127.0.0.1", "port": free_port(), "timeout_s": 1},
        "mqtt": {"host": "127.0.0.1", "port": broker.port},
        "state": {"directory": str(tmp_path / "state")},
    })
    daemon = Daemon(cfg)
    daemon.model = mood_model
    daemon.scorer = ScoringWorker(mood_model, cfg.model, daemon.post)  # as `_start` does
    daemon.scorer.start()
    recorder = MqttRecorder(broker.port, ["frame-daemon/#"])
    try:
        with loop_in_thread(daemon, recorder):
            daemon.post(PhotoShown(photo))
            assert opening.wait(10)
            recorder.publish("frame-daemon/frame/set/mode", "gentle")
            wait_for(lambda: (recorder.json(STATE) or {}).get("mode") == "gentle", 20,
                     what="the mode command answered")
            assert not release.is_set() and (recorder.json(STATE) or {}).get("mood") is None
            release.set()  # the share is back
            wait_for(lambda: (recorder.json(STATE) or {}).get("photo_name") == "coffee.jpg"
                     and recorder.json(STATE).get("mood"), 20, what="the photo's mood")
    finally:
        release.set()
        daemon.scorer.stop()
        recorder.close()
        with contextlib.suppress(Exception):
            broker.stop()


def test_the_scoring_worker_reports_a_hung_read_once_and_then_reads_only_the_newest_photo(
        tmp_path, mood_model, demo_photos, monkeypatch):
    hung, skipped, newest = (demo_photos / n for n in ("coffee.jpg", "flower.jpg", "temple.jpg"))
    opening, release = threading.Event(), threading.Event()
    real_open = os.open

    def hanging_open(path, *args, **kwargs):
        if os.fspath(path) == str(hung):
            opening.set()
            release.wait(60)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", hanging_open)
    posted: list = []
    worker = ScoringWorker(mood_model, parse_config({}).model, posted.append, slow_s=0.05)
    worker.start()
    try:
        worker.request(hung)
        assert opening.wait(10)
        wait_for(lambda: any(isinstance(e, AdapterFailed) for e in posted), 10,
                 what="the hung read reported")
        # The photos after it read at once; on a busy machine they might still take 50 ms.
        worker.slow_s = 60.0
        worker.request(skipped)
        worker.request(newest)  # replaces the one that waited
        release.set()
        wait_for(lambda: sum(isinstance(e, PhotoScored) for e in posted) == 2, 10,
                 what="two photos scored")
    finally:
        release.set()
        worker.stop()
    assert [e.path for e in posted if isinstance(e, PhotoScored)] == [hung, newest]
    assert all(e.scored is not None for e in posted if isinstance(e, PhotoScored))
    assert [str(hung) in e.error for e in posted if isinstance(e, AdapterFailed)] == [True]
