"""`frame-daemon doctor` against real servers: a working setup passes, each broken part is named."""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import gradient_photo
from harness import ROOT, make_servers, write_config
from servers import Mosquitto, Server, stop_all


class TlsMosquitto(Mosquitto):
    """A broker that only speaks TLS, with a certificate from a throwaway CA."""

    def command(self) -> list[str]:
        cmd = super().command()
        d = self.workdir
        openssl = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        subprocess.run([*openssl, "-keyout", d / "ca.key", "-out", d / "ca.pem", "-subj", "/CN=test-ca"],
                       check=True, capture_output=True)
        subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", d / "server.key",
                        "-out", d / "server.csr", "-subj", "/CN=localhost"], check=True, capture_output=True)
        (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        subprocess.run(["openssl", "x509", "-req", "-in", d / "server.csr", "-CA", d / "ca.pem",
                        "-CAkey", d / "ca.key", "-CAcreateserial", "-days", "1", "-out", d / "server.pem",
                        "-extfile", d / "san.ext"], check=True, capture_output=True)
        conf = d / "mosquitto.conf"
        # Run as whoever we are: mosquitto started by root would switch to a user that cannot
        # read the test's private temp folder.
        conf.write_text(conf.read_text() + f"cafile {d / 'ca.pem'}\ncertfile {d / 'server.pem'}\n"
                        f"keyfile {d / 'server.key'}\nuser {getpass.getuser()}\n")
        return cmd


class LockedMosquitto(Mosquitto):
    """A broker that refuses anonymous clients: reachable, but not authorised."""

    def command(self) -> list[str]:
        cmd = super().command()
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(conf.read_text().replace("allow_anonymous true", "allow_anonymous false"))
        return cmd


@pytest.fixture
def servers(tmp_path):
    """A real MPD (with the test library) and mosquitto, stopped after the test, pass or fail."""
    mpd, broker = make_servers(tmp_path)
    yield mpd, broker
    stop_all(mpd, broker)


@pytest.fixture
def start():
    """`start(server)` starts a server that is stopped after the test, pass or fail."""
    started: list[Server] = []

    def start(server: Server) -> Server:
        started.append(server)
        server.start()
        return server

    yield start
    stop_all(*reversed(started))


def doctor(config: Path, env: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    """Exit code and each check's line, by check name."""
    proc = subprocess.run([sys.executable, "-m", "frame_daemon", "doctor", "--config", str(config)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    lines = {}
    for line in proc.stdout.splitlines():
        status, _, rest = line.partition("  ")
        if status.strip() in ("OK", "WARN", "FAIL", "SKIP"):
            name = rest.strip()[:12].strip()
            lines[name] = line
    assert lines, proc.stdout + proc.stderr
    return proc.returncode, lines


def test_doctor_passes_a_working_setup(tmp_path, servers) -> None:
    mpd, broker = servers
    photo = tmp_path / "frame" / "current.jpg"
    photo.parent.mkdir()
    gradient_photo(640, 480, 3).save(photo)
    config = write_config(tmp_path / "frame.toml", photo=photo, mpd=mpd, mqtt=broker,
                          state_dir=tmp_path / "state")
    code, lines = doctor(config)
    assert code == 0, "\n".join(lines.values())
    assert not [line for line in lines.values() if line.startswith("FAIL")]
    assert set(lines) >= {"config", "model", "photo source", "mpd", "music folder", "mqtt",
                          "state folder", "service", "ffmpeg"}
    assert "ai-edge-litert" in lines["model"] and " ms (median" in lines["model"]
    assert "MPD 0." in lines["mpd"] and "songs" in lines["mpd"]
    assert "stickers: yes" in lines["mpd"]  # the test MPD has a sticker_file
    assert "accepted us" in lines["mqtt"]


def test_doctor_names_each_broken_part_with_a_fix(tmp_path, servers, start) -> None:
    mpd, _ = servers
    locked = start(LockedMosquitto(tmp_path / "locked-broker"))
    mpd.stop()  # MPD is down
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the state folder's parent should be")
    config = write_config(tmp_path / "frame.toml", photo=tmp_path / "gone" / "current.jpg",
                          mpd=mpd, mqtt=locked, state_dir=blocker / "state",
                          extra=f'[model]\npath = "{tmp_path / "no-model.json"}"\n')
    code, lines = doctor(config)
    assert code == 1
    for name, words in {"model": "no-model.json", "photo source": "no such folder",
                        "mpd": "cannot reach MPD", "mqtt": "refused us",
                        "state folder": "not writable"}.items():
        assert lines[name].startswith("FAIL") and words in lines[name], lines[name]
        assert "-> fix:" in lines[name]
    assert lines["config"].startswith("OK")


def test_doctor_with_a_bad_config_skips_what_needs_it(tmp_path) -> None:
    config = tmp_path / "frame.toml"
    config.write_text("[mpd]\nprot = 6600\n")
    code, lines = doctor(config)
    assert code == 1
    assert lines["config"].startswith("FAIL") and "did you mean 'port'" in lines["config"]
    assert lines["mpd"].startswith("SKIP") and lines["model"].startswith("SKIP")


@pytest.mark.parametrize("said, status, words", [
    ("no", "WARN", "not synchronised by NTP"),
    ("yes", "OK", "synchronised by NTP"),
    ("", "SKIP", "cannot tell"),  # timedatectl without systemd says nothing on stdout
])
def test_doctor_says_whether_the_clock_is_synchronised(tmp_path, said, status, words) -> None:
    # A Pi has no battery clock, and the frames of a household take turns by their clocks.
    # systemd's own answer stands in for a machine this test cannot boot.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "timedatectl"
    stub.write_text(f"#!/bin/sh\n[ \"$1 $2 $3\" = 'show --property=NTPSynchronized --value' ] "
                    f"|| exit 2\n{'echo ' + said if said else 'exit 1'}\n")
    stub.chmod(0o755)
    config = tmp_path / "frame.toml"
    config.write_text("[mpd]\nprot = 6600\n")
    _, lines = doctor(config, env=os.environ | {"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert lines["clock"].startswith(status) and words in lines["clock"], lines["clock"]
    if status == "WARN":
        assert "timedatectl set-ntp true" in lines["clock"]


def test_doctor_checks_mqtt_over_tls_with_the_configured_ca(tmp_path, servers, start) -> None:
    broker = start(TlsMosquitto(tmp_path / "tls-broker"))
    mpd, _ = servers
    photo = tmp_path / "current.jpg"
    gradient_photo(320, 240, 5).save(photo)
    other_ca = TlsMosquitto(tmp_path / "other-ca")  # a CA the broker's certificate is not from
    other_ca.command()  # writes its certificates; never started
    results = {}
    for name, ca in {"right": broker.workdir / "ca.pem", "wrong": other_ca.workdir / "ca.pem"}.items():
        config = write_config(tmp_path / f"{name}.toml", photo=photo, mpd=mpd, mqtt=broker,
                              state_dir=tmp_path / "state",
                              extra="").read_text().replace(
            "keepalive_s = 5", f'keepalive_s = 5\ntls = true\nca_file = "{ca}"')
        (tmp_path / f"{name}.toml").write_text(config)
        results[name] = doctor(tmp_path / f"{name}.toml")
    code, lines = results["right"]
    assert lines["mqtt"].startswith("OK") and "(TLS)" in lines["mqtt"], lines["mqtt"]
    code, lines = results["wrong"]
    assert code == 1 and lines["mqtt"].startswith("FAIL") and "certificate" in lines["mqtt"], lines["mqtt"]


# ---------------------------------------------------------------- the photo source, kind by kind
# In-process, with no servers: `check_photo_source` reads the source as the daemon would.

def photo_source_line(tmp_path: Path, kind: str, path: Path, paths: tuple[Path, ...] = ()) -> str:
    """The doctor's photo-source line for a config with this source."""
    from frame_daemon.config import load_config
    from frame_daemon.doctor import check_photo_source

    config = tmp_path / f"{kind}.toml"
    more = f"paths = [{', '.join(repr(str(p)) for p in paths)}]\n" if paths else ""
    config.write_text(f'[source]\nkind = "{kind}"\npath = "{path}"\n{more}'
                      f'[state]\ndirectory = "{tmp_path / "state"}"\n')
    return check_photo_source(load_config(config)).line()


def test_doctor_reads_a_slideshow_folder_as_the_slideshow_does(tmp_path) -> None:
    photos = tmp_path / "photos"
    (photos / "2024" / "summer").mkdir(parents=True)
    (photos / ".thumbnails").mkdir()
    (photos / ".thumbnails" / "t.jpg").write_bytes(b"not searched: hidden")
    (photos / "2024" / "broken.jpg").write_bytes(b"not a photo")
    gradient_photo(320, 240, 4).save(photos / "2024" / "summer" / "beach.jpg")
    line = photo_source_line(tmp_path, "slideshow", photos)
    assert line.startswith("OK") and "beach.jpg is a readable photo" in line, line
    assert "2 photo(s)" in line and "1 unreadable" in line, line  # the hidden folder is not searched
    # A second folder that is missing (an unplugged stick) is named, the first still counts.
    line = photo_source_line(tmp_path, "slideshow", photos, (tmp_path / "stick",))
    assert line.startswith("WARN") and f"{tmp_path / 'stick'}: no such folder" in line, line
    line = photo_source_line(tmp_path, "slideshow", tmp_path / "stick")
    assert line.startswith("FAIL") and "no such folder" in line and "-> fix:" in line, line
    (tmp_path / "empty").mkdir()
    line = photo_source_line(tmp_path, "slideshow", tmp_path / "empty")
    assert line.startswith("WARN") and "no photo yet" in line, line
    line = photo_source_line(tmp_path, "slideshow", photos / "2024" / "broken.jpg")
    assert line.startswith("FAIL") and "no such folder" in line, line
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "zero.jpg").write_bytes(b"")
    line = photo_source_line(tmp_path, "slideshow", tmp_path / "bad")
    assert line.startswith("FAIL") and "can be read" in line and "zero.jpg" in line, line


def test_doctor_reads_a_watched_folder_by_its_newest_photo(tmp_path) -> None:
    frame = tmp_path / "frame"
    frame.mkdir()
    gradient_photo(320, 240, 5).save(frame / "old.jpg")
    line = photo_source_line(tmp_path, "folder", frame)
    assert line.startswith("OK") and "old.jpg is a readable photo" in line, line
    (frame / "new.jpg").write_bytes(b"half a photo")  # the newest is the one on show
    line = photo_source_line(tmp_path, "folder", frame)
    assert line.startswith("FAIL") and "new.jpg" in line, line


def test_doctor_reads_a_watched_file_through_its_symlink(tmp_path) -> None:
    frame = tmp_path / "frame"
    frame.mkdir()
    gradient_photo(320, 240, 6).save(frame / "a.jpg")
    (frame / "current.jpg").symlink_to(frame / "a.jpg")
    line = photo_source_line(tmp_path, "file", frame / "current.jpg")
    assert line.startswith("OK") and "current.jpg is a readable photo" in line, line
    (frame / "a.jpg").unlink()
    line = photo_source_line(tmp_path, "file", frame / "current.jpg")
    assert line.startswith("FAIL") and "which is not there" in line, line
    # A folder given as the file: the fix names the kinds that read a folder.
    line = photo_source_line(tmp_path, "file", frame)
    assert line.startswith("FAIL") and '"folder"' in line and '"slideshow"' in line, line
