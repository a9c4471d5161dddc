"""A photo folder that hangs (a network share whose server is gone) must not stall the loop: the
slideshow's album choices are listed on their own thread. The hang is made by replacing only the
filesystem call, `os.scandir`, for that one folder: it waits on an event the test sets."""

from __future__ import annotations

import contextlib
import logging
import os
import threading

import pytest

from frame_daemon.config import parse_config
from frame_daemon.daemon import Daemon
from frame_daemon.events import AdapterFailed, AlbumsChanged
from frame_daemon.sources.album_lister import AlbumLister
from harness import loop_in_thread
from servers import Mosquitto, MqttRecorder, free_port, wait_for

STATE = "frame-daemon/frame/state"
DISCOVERY = "homeassistant/device/frame/config"
SET = "frame-daemon/frame/set/"


@pytest.fixture
def hung_folder(tmp_path, monkeypatch):
    """A photo folder with the album 'Holidays' whose listing hangs until `release` is set;
    `listing` is set once a listing of it is under way."""
    photos = tmp_path / "photos"
    (photos / "Holidays").mkdir(parents=True)
    listing, release = threading.Event(), threading.Event()
    real_scandir = os.scandir

    def scandir(path=".", *args):
        if os.fspath(path) == str(photos):
            listing.set()
            release.wait(60)
        return real_scandir(path, *args)

    monkeypatch.setattr(os, "scandir", scandir)
    folder = type("HungFolder", (), dict(path=photos, listing=listing, release=release))
    yield folder
    release.set()  # never leave a thread hanging


def test_a_hung_listing_is_reported_once_and_its_albums_posted_when_it_answers(hung_folder,
                                                                               caplog):
    posted: list = []
    lister = AlbumLister([hung_folder.path], posted.append, slow_s=0.05)
    with caplog.at_level(logging.INFO, logger="frame_daemon.sources.album_lister"):
        lister.start()
        assert lister.wait_first(0.01) is None  # start-up does not wait for a hung folder
        failed = wait_for(lambda: [e for e in posted if isinstance(e, AdapterFailed)], 10,
                          what="the slow listing reported")
        assert "have not answered" in failed[0].error and str(hung_folder.path) in failed[0].error
        lister.request()  # asked again meanwhile: one listing at a time, the next one after it
        assert not any(isinstance(e, AlbumsChanged) for e in posted)
        hung_folder.release.set()
        wait_for(lambda: sum(isinstance(e, AlbumsChanged) for e in posted) == 2, 10,
                 what="both listings posted")
        lister.stop()
    assert [e.albums for e in posted if isinstance(e, AlbumsChanged)] == [
        ("All photos", "Holidays")] * 2
    assert sum(isinstance(e, AdapterFailed) for e in posted) == 1
    assert any("answer again" in r.getMessage() for r in caplog.records)


def test_mqtt_commands_are_answered_while_the_photo_folder_hangs(tmp_path, hung_folder):
    """The loop, a real broker and the command routing as `Daemon.run` wires them; the slideshow
    itself is not started (no display): its album choices are what the loop announces."""
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    cfg = parse_config({
        "source": {"kind": "slideshow", "path": str(hung_folder.path)},
        "mpd": {"host": "127.0.0.1", "port": free_port(), "timeout_s": 1},
        "mqtt": {"host": "127.0.0.1", "port": broker.port},
        "state": {"directory": str(tmp_path / "state")},
    })
    daemon = Daemon(cfg)
    recorder = MqttRecorder(broker.port, ["frame-daemon/#", "homeassistant/#"])
    stop_listing = daemon.slideshow.start_listing(0.01)
    try:
        with loop_in_thread(daemon, recorder) as loop:
            assert hung_folder.listing.wait(10)
            # Home Assistant comes back online: the frame announces itself, album select included.
            recorder.publish("homeassistant/status", "online")
            discovery = wait_for(lambda: recorder.json(DISCOVERY), 20, what="the announcement")
            assert discovery["cmps"]["album"]["options"] == ["All photos"]  # not listed yet
            recorder.publish(SET + "mode", "gentle")
            wait_for(lambda: (recorder.json(STATE) or {}).get("mode") == "gentle", 20,
                     what="the mode command answered")
            recorder.publish(SET + "album", "Holidays")
            wait_for(lambda: "have not listed" in ((recorder.json(STATE) or {}).get("last_error")
                                                   or ""), 20, what="the album command answered")
            assert not hung_folder.release.is_set()  # all of it while the folder still hangs

            hung_folder.release.set()  # the server is back: the albums are offered
            wait_for(lambda: "Holidays" in recorder.json(DISCOVERY)["cmps"]["album"]["options"],
                     20, what="the albums announced")
    finally:
        stop_listing()
        recorder.close()
        with contextlib.suppress(Exception):
            broker.stop()
    assert not loop.is_alive()
