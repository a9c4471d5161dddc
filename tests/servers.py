"""Real mosquitto and MPD servers on free loopback ports, and a generated, tagged music library.

Used by the tests, the demo and the benchmarks, so all three exercise the real thing.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np


def find_binary(name: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and Path(candidate).exists():
            return candidate
    raise FileNotFoundError(f"{name} not installed (scripts/setup.sh installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DUMP_THREADS_ON_TIMEOUT = False


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02,
             what: str = "condition") -> Any:
    """Poll until `condition()` is truthy; return its value or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            # Where every thread of the test process is, for a wait that never ends: a stuck
            # thread (ours, or one left by an earlier test) shows in the failure's captured stderr.
            # Only in the test process (conftest sets it): the demo and the benches time out on
            # purpose.
            if DUMP_THREADS_ON_TIMEOUT:
                with contextlib.suppress(Exception):
                    sys.stderr.write(f"--- threads when the wait for {what} timed out ---\n")
                    sys.stderr.flush()
                    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
            raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Server:
    """A child process listening on one port; restartable on the same port."""

    name = "server"
    # Started and not yet stopped: tests/conftest.py stops what a test leaves behind.
    running: set[Server] = set()  # noqa: RUF012

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = workdir / f"{self.name}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 15.0) -> None:
        with open(self.log_path, "ab") as log_file:
            self.proc = subprocess.Popen(self.command(), stdout=log_file, stderr=subprocess.STDOUT,
                                         cwd=self.workdir)
        Server.running.add(self)
        try:
            wait_for(lambda: port_open(self.port) or self.proc.poll() is not None, timeout,
                     what=f"{self.name} on port {self.port}")
        except BaseException:
            self._end()  # a server that never came up is not left running
            raise
        if self.proc.poll() is not None:
            self._end()
            raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()[-2000:]}")

    def _end(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        Server.running.discard(self)

    def stop(self) -> None:
        self._end()
        wait_for(lambda: not port_open(self.port), 5, what=f"{self.name} port to close")

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_all(*servers: Server | None) -> None:
    """Stop every server given, even when stopping one of them fails (the first error is raised
    once all have been tried), so a test's cleanup never leaves one running."""
    errors = []
    for server in servers:
        if server is None:
            continue
        try:
            server.stop()
        except Exception as exc:  # try the others first
            errors.append(exc)
    if errors:
        raise errors[0]


class Mosquitto(Server):
    name = "mosquitto"

    def command(self) -> list[str]:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                        "persistence false\n")
        return [find_binary("mosquitto"), "-c", str(conf)]


class Mpd(Server):
    name = "mpd"

    def __init__(self, workdir: Path, music_dir: Path, port: int | None = None,
                 mixer: str = "none", sticker_file: bool = True, extra: tuple[str, ...] = ()) -> None:
        super().__init__(workdir, port)
        self.music_dir = music_dir
        self.mixer = mixer  # "software": a volume MPD can set (fades), even on the null output
        self.sticker_file = sticker_file  # False: an MPD without a sticker database
        self.extra = extra  # more mpd.conf lines, e.g. 'max_output_buffer_size "32"'

    def command(self) -> list[str]:
        conf = self.workdir / "mpd.conf"
        (self.workdir / "playlists").mkdir(exist_ok=True)
        conf.write_text("\n".join([
            f'music_directory "{self.music_dir}"',
            f'playlist_directory "{self.workdir / "playlists"}"',
            f'db_file "{self.workdir / "database"}"',
            f'state_file "{self.workdir / "state"}"',
            *([f'sticker_file "{self.workdir / "sticker.sql"}"'] if self.sticker_file else []),
            f'log_file "{self.workdir / "mpd-internal.log"}"',
            'bind_to_address "127.0.0.1"',
            f"port \"{self.port}\"",
            'auto_update "no"',
            *self.extra,
            "audio_output {",
            '  type "null"',
            '  name "null"',
            f'  mixer_type "{self.mixer}"',
            "}",
            "",
        ]))
        return [find_binary("mpd"), "--no-daemon", "--stderr", str(conf)]

    def client(self):
        import mpd

        c = mpd.MPDClient()
        c.timeout = 10
        c.connect("127.0.0.1", self.port)
        return c

    def update_and_wait(self, timeout: float = 20.0) -> int:
        """Rescan the library; wait until MPD has finished; return the number of songs."""
        c = self.client()
        try:
            c.update()
            wait_for(lambda: "updating_db" not in c.status(), timeout, what="MPD database update")
            return int(c.stats()["songs"])
        finally:
            c.disconnect()


@contextlib.contextmanager
def running_mpd(workdir: Path, music_dir: Path, *, update: bool = True, kind: type[Mpd] = Mpd,
                **options: Any) -> Iterator[Mpd]:
    """An MPD (`kind`, with `options` such as mixer or sticker_file) on `music_dir` for one test:
    started, its database updated unless `update` is False, and stopped when the block ends,
    however it ends (a stop that fails is left to the suite, which stops what is left running)."""
    server = kind(workdir, music_dir, **options)
    server.start()
    try:
        if update:
            server.update_and_wait()
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop()


# The demo/test library: (file stem, title, artist, genre, mood tag or "", bpm or 0, tone Hz)
LIBRARY: list[tuple[str, str, str, str, str, int, float]] = [
    ("calm_lake", "Still Water", "Lake Trio", "Ambient", "calm", 60, 220.0),
    ("calm_evening", "Evening Hush", "Nightfall", "New Age", "peaceful", 64, 246.9),
    ("serene_garden", "Garden Morning", "Lake Trio", "Classical", "serene", 72, 261.6),
    ("serene_cloud", "Cloud Drift", "Aerial", "Ambient", "dreamy", 70, 293.7),
    ("tender_song", "For You", "Rosa Vale", "Singer-Songwriter", "romantic", 80, 329.6),
    ("tender_waltz", "Slow Waltz", "Quartet No. 5", "Classical", "tender", 84, 349.2),
    ("joyful_sun", "Sunny Side", "The Brights", "Pop", "happy", 118, 392.0),
    ("joyful_dance", "Dance All Day", "Disco Kids", "Disco", "cheerful", 124, 440.0),
    ("excited_run", "Full Speed", "Turbo", "Electronic", "energetic", 140, 493.9),
    ("excited_party", "Party Lights", "The Brights", "Dance", "excited", 128, 523.3),
    ("tense_chase", "The Chase", "Score Unit", "Soundtrack", "tense", 150, 554.4),
    ("angry_riff", "Riot", "Iron Teeth", "Metal", "aggressive", 170, 587.3),
    ("angry_punk", "No Future Now", "Safety Pins", "Punk", "angry", 180, 622.3),
    ("gloomy_rain", "Grey Rain", "Nightfall", "Alternative", "gloomy", 76, 659.3),
    ("sad_letter", "Last Letter", "Rosa Vale", "Blues", "sad", 66, 698.5),
    ("melancholy_piano", "Nocturne in Grey", "Quartet No. 5", "Piano", "melancholy", 58, 740.0),
    ("nostalgic_tape", "Old Tapes", "Aerial", "Folk", "nostalgic", 92, 784.0),
    ("genre_only_jazz", "Blue Smoke", "Late Set", "Jazz", "", 0, 830.6),
    ("genre_only_rock", "Highway", "Iron Teeth", "Rock", "", 0, 880.0),
    ("untagged", "Mystery Track", "Unknown", "", "", 0, 932.3),
]


def write_library(music_dir: Path, seconds: float = 60.0, rate: int = 8000,
                  library: list[tuple[str, str, str, str, str, int, float]] | None = None) -> list[Path]:
    """Write a library (LIBRARY unless given) as real tagged FLAC files (a quiet tone each) into
    music_dir/<artist>/."""
    import mutagen.flac
    import soundfile

    paths = []
    t = np.arange(int(seconds * rate)) / rate
    for stem, title, artist, genre, mood, bpm, hz in library or LIBRARY:
        folder = music_dir / artist.replace(" ", "_")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{stem}.flac"
        if not path.exists():
            tone = 0.1 * np.sin(2 * np.pi * hz * t).astype(np.float32)
            soundfile.write(path, tone, rate, format="FLAC", subtype="PCM_16")
            tags = mutagen.flac.FLAC(path)
            tags["TITLE"], tags["ARTIST"], tags["ALBUM"] = title, artist, f"{artist} Collection"
            if genre:
                tags["GENRE"] = genre
            if mood:
                tags["MOOD"] = mood
            if bpm:
                tags["BPM"] = str(bpm)
            tags.save()
        paths.append(path)
    return paths


class MqttRecorder:
    """A test MQTT client that records the last message per topic (retained ones included)."""

    def __init__(self, port: int, topics: list[str]) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: dict[str, bytes] = {}
        self.history: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, rc, p: (
            [c.subscribe(t, qos=1) for t in topics], self._connected.set())
        self.client.on_disconnect = lambda *a: self._connected.clear()
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self._connected.wait(5)

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages[msg.topic] = msg.payload
            self.history.append((msg.topic, msg.payload))

    def json(self, topic: str) -> dict | None:
        with self._lock:
            data = self.messages.get(topic)
        return json.loads(data) if data else None

    def text(self, topic: str) -> str | None:
        with self._lock:
            data = self.messages.get(topic)
        return data.decode() if data is not None else None

    def count(self, topic: str) -> int:
        with self._lock:
            return sum(1 for t, _ in self.history if t == topic)

    def publish(self, topic: str, payload: str | bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class TcpProxy:
    """A loopback TCP forwarder in front of a server, whose live connections a test can cut
    (a network drop as the client sees it) while the server itself keeps running."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Drop every live connection (new ones are accepted again)."""
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.cut()
