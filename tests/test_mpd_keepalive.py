"""MPD closes a connection that sends nothing for its `connection_timeout` (60 s by default; 2 s
here). A frame's connections are often that quiet (an analysis between two sticker writes, an hour
between two photos); the next command then failed with "Connection lost while reading line": the
`index` command died, and the daemon called MPD lost, set `last_error` and played the new photo's
music without its fade. Real MPD, real daemon."""

from __future__ import annotations

import contextlib
import signal
import socket

import pytest

from frame_daemon.music.mpd.client import MpdLink
from harness import DaemonProcess, mpd_status, show_photo, wait_for, write_config, write_library
from servers import Mosquitto, MqttRecorder, running_mpd

MPD_TIMEOUT = ('connection_timeout "2"',)
STATE = "frame-daemon/frame/state"


class Silent:
    """A connection to MPD that never says a word: MPD closing it tells that its timeout has
    passed for every connection as quiet (a condition to wait on, not a sleep)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        assert self.sock.recv(64).startswith(b"OK MPD")

    def closed_by_mpd(self) -> bool:
        self.sock.settimeout(0.2)
        try:
            return self.sock.recv(64, socket.MSG_PEEK) == b""
        except TimeoutError:
            return False

    def wait_closed(self) -> None:
        wait_for(self.closed_by_mpd, 15, what="MPD closing a connection silent for its timeout")
        self.sock.close()


def test_a_link_silent_past_mpds_timeout_renews_its_connection(tmp_path):
    music = tmp_path / "music"
    write_library(music)
    with running_mpd(tmp_path / "mpd", music, extra=MPD_TIMEOUT) as mpd:
        link = MpdLink("127.0.0.1", mpd.port, keepalive_s=1.0)
        try:
            assert link.status().state == "stop"
            silent = Silent(mpd.port)
            silent.wait_closed()  # ours, just as quiet, is closed by now too
            assert link.status().state == "stop"  # renewed, not "lost MPD"
        finally:
            link.close()


@pytest.fixture
def quiet_rig(tmp_path, demo_photos):
    music = tmp_path / "music"
    write_library(music)
    with running_mpd(tmp_path / "mpd", music, extra=MPD_TIMEOUT) as mpd:
        broker = Mosquitto(tmp_path / "mosquitto")
        broker.start()
        current = tmp_path / "frame" / "current.jpg"
        current.parent.mkdir()
        show_photo(current, demo_photos / "flower.jpg")
        config = write_config(tmp_path / "frame.toml", photo=current, mpd=mpd, mqtt=broker,
                              state_dir=tmp_path / "state", mpd_extra="keepalive_s = 1")
        recorder = MqttRecorder(broker.port, ["frame-daemon/#"])
        daemon = DaemonProcess(config, tmp_path / "daemon.log")
        try:
            yield type("Rig", (), dict(mpd=mpd, broker=broker, current=current, photos=demo_photos,
                                       recorder=recorder, daemon=daemon))
        finally:
            if daemon.alive():
                daemon.stop(signal.SIGKILL)
            recorder.close()
            with contextlib.suppress(Exception):
                broker.stop()


def test_the_daemon_keeps_its_mpd_connection_through_a_quiet_spell(quiet_rig):
    rig = quiet_rig
    rig.daemon.start()
    first = wait_for(lambda: (rig.recorder.json(STATE) or {}).get("queued"), 30,
                     what="the first photo's tracks queued")
    wait_for(lambda: mpd_status(rig.mpd)["state"] == "play", 10, what="MPD playing")
    silent = Silent(rig.mpd.port)
    silent.wait_closed()  # a quiet spell longer than MPD's timeout
    show_photo(rig.current, rig.photos / "tesla.jpg")
    wait_for(lambda: (rig.recorder.json(STATE) or {}).get("queued") not in (None, first), 30,
             what="the new photo's tracks queued")
    log = rig.daemon.log()
    assert "lost MPD" not in log, log[-3000:]
    # Not chosen again after a reconnect (which plays it without the fade a change asks for).
    assert "MPD is back" not in log, log[-3000:]
    assert not (rig.recorder.json(STATE) or {}).get("last_error"), rig.recorder.json(STATE)


def test_a_link_whose_keepalive_is_longer_than_mpds_timeout_says_so_and_pings_sooner(tmp_path):
    # mpd.keepalive_s (30 s) above MPD's connection_timeout (2 s here; a user's mpd.conf may say
    # 20): every quiet spell lost the loop's connection, and `last_error` said only "Connection
    # lost while reading line".
    from frame_daemon.music.mpd.client import MpdUnavailable

    music = tmp_path / "music"
    write_library(music)
    with running_mpd(tmp_path / "mpd", music, extra=MPD_TIMEOUT) as mpd:
        link = MpdLink("127.0.0.1", mpd.port, autoconnect=False)  # the loop's kind
        try:
            link.connect()
            Silent(mpd.port).wait_closed()
            with pytest.raises(MpdUnavailable, match=r"connection_timeout seems shorter than "
                                                     r"mpd\.keepalive_s"):
                link.status()
            assert link.keepalive_s < 2.0
            link.connect()  # (the MPD session's part)
            silent = Silent(mpd.port)
            wait_for(lambda: link.keep_alive() or silent.closed_by_mpd(), 15, interval=0.1,
                     what="a quiet spell as long as MPD's timeout, the link pinging")
            silent.sock.close()
            assert link.status().state == "stop"  # pinged in time: not lost
        finally:
            link.close()


def test_a_daemon_whose_keepalive_is_longer_than_mpds_timeout_says_so_once(quiet_rig):
    rig = quiet_rig
    config = rig.daemon.config
    config.write_text(config.read_text().replace("keepalive_s = 1\n", ""))  # 30 s, MPD's 2 s
    rig.daemon.start()
    first = wait_for(lambda: (rig.recorder.json(STATE) or {}).get("queued"), 30,
                     what="the first photo's tracks queued")
    Silent(rig.mpd.port).wait_closed()
    show_photo(rig.current, rig.photos / "tesla.jpg")  # the link is found closed: said why
    second = wait_for(lambda: (s := rig.recorder.json(STATE) or {}).get("queued") not in (
        None, first) and s["queued"], 30, what="the second photo's tracks queued")
    assert "connection_timeout seems shorter" in rig.recorder.json(STATE)["last_error"]
    Silent(rig.mpd.port).wait_closed()  # the next quiet spell: pinged in time
    show_photo(rig.current, rig.photos / "flower.jpg")
    wait_for(lambda: (rig.recorder.json(STATE) or {}).get("queued") not in (None, second), 30,
             what="the third photo's tracks queued")
    # (The index worker's own link, silent through an analysis, learns the same on its own.)
    loop_lost = "[MainThread] frame_daemon.music.controller: lost MPD"
    assert rig.daemon.log().count(loop_lost) == 1, rig.daemon.log()[-3000:]
