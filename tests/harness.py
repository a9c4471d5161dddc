"""Run a real `frame-daemon run` process against real servers, for integration tests and benches."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from servers import Mosquitto, Mpd, wait_for, write_library

if TYPE_CHECKING:
    from frame_daemon.daemon import Daemon
    from servers import MqttRecorder

ROOT = Path(__file__).resolve().parents[1]

# The tests' follow settings: every photo that moves the mood at all changes the music at once.
TEST_FOLLOW = """threshold = 0.05
dwell_s = 0
min_interval_s = 0
smoothing = 1.0
tracks = 3
suspend_s = 0
fade_s = 1.0"""


def write_config(path: Path, *, photo: Path, mpd: Mpd, mqtt: Mosquitto, state_dir: Path,
                 device_id: str = "frame", kind: str = "file", mode: str = "follow",
                 extra: str = "", follow: str | None = None, mpd_port: int | None = None,
                 mpd_extra: str = "") -> Path:
    """A config for tests: quick follow settings unless `follow` gives the [follow] keys;
    `mpd_extra`: more [mpd] keys, `extra`: more sections."""
    follow = follow if follow is not None else TEST_FOLLOW
    mpd_port = mpd_port or mpd.port  # another port: a proxy in front of MPD
    path.write_text(f"""
[source]
kind = "{kind}"
path = "{photo}"
settle_s = 0.1

[mpd]
host = "127.0.0.1"
port = {mpd_port}
music_directory = "{mpd.music_dir}"
timeout_s = 5
{mpd_extra}

[mqtt]
host = "127.0.0.1"
port = {mqtt.port}
device_id = "{device_id}"
keepalive_s = 5

[follow]
mode = "{mode}"
{follow}

[state]
directory = "{state_dir}"
{extra}
""")
    return path


class DaemonProcess:
    """`python -m frame_daemon run` as a child process with its log captured to a file."""

    # Started and not yet stopped: tests/conftest.py kills what a test leaves behind.
    running: set[DaemonProcess] = set()  # noqa: RUF012

    def __init__(self, config: Path, log_path: Path) -> None:
        self.config = config
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("NOTIFY_SOCKET", None)
        with open(self.log_path, "ab") as log_file:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "frame_daemon", "-v", "run", "--config", str(self.config)],
                stdout=log_file, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        DaemonProcess.running.add(self)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            if self.proc.poll() is not None:
                DaemonProcess.running.discard(self)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def show_photo(current: Path, source: Path) -> float:
    """Put `source` on show the way frame software does: copy to a hidden temp name beside
    `current`, then rename over it atomically. Returns perf_counter() at the rename."""
    tmp = current.with_name(".incoming" + current.suffix)
    shutil.copy(source, tmp)
    t0 = time.perf_counter()
    os.replace(tmp, current)
    return t0


def make_servers(workdir: Path, mixer: str = "none") -> tuple[Mpd, Mosquitto]:
    music = workdir / "music"
    write_library(music)
    mpd = Mpd(workdir / "mpd", music, mixer=mixer)
    mpd.start()
    try:
        mpd.update_and_wait()
        broker = Mosquitto(workdir / "mosquitto")
        broker.start()
    except BaseException:
        mpd.stop()  # the caller gets nothing to stop
        raise
    return mpd, broker


def mpd_queue(mpd: Mpd) -> list[dict]:
    c = mpd.client()
    try:
        return c.playlistinfo()
    finally:
        c.disconnect()


def mpd_status(mpd: Mpd) -> dict:
    c = mpd.client()
    try:
        return c.status()
    finally:
        c.disconnect()


__all__ = ["DaemonProcess", "make_servers", "mpd_queue", "mpd_status", "show_photo", "wait_for",
           "write_config"]


@contextlib.contextmanager
def loop_in_thread(daemon: Daemon, recorder: MqttRecorder) -> Iterator[threading.Thread]:
    """An in-process daemon's loop on a thread of its own, with its MQTT link and command routing
    wired as `Daemon.run` wires them (the broker is its config's); stopped when the block ends.
    It yields once the loop answers a command from `recorder` (which records the state topic):
    being connected is not yet being subscribed. The other parts are the test's to start."""
    from frame_daemon.events import Stop
    from frame_daemon.mqtt_link import MqttLink

    daemon.mqtt = MqttLink(daemon.cfg.mqtt, daemon.topics.availability, on_message=daemon.router)
    for topic in daemon.router.topics:
        daemon.mqtt.subscribe(topic)
    daemon.mqtt.start()
    loop = threading.Thread(target=daemon._loop, name="loop")
    try:
        assert daemon.mqtt.wait_connected(10)
        loop.start()
        # Clear error changes nothing here, and its answer is the state.
        wait_for(lambda: recorder.publish(daemon.topics.command("clear_error"), "PRESS")
                 or recorder.json(daemon.topics.state), 10, interval=0.2,
                 what="the loop answering over MQTT")
        yield loop
    finally:
        daemon.post(Stop("test"))
        if loop.ident is not None:
            loop.join(10)
        daemon.mqtt.stop()
