"""`frame-daemon doctor` against real servers: a working setup passes, each broken part is named."""

from __future__ import annotations

import getpass
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


def doctor(config: Path) -> tuple[int, dict[str, str]]:
    """Exit code and each check's line, by check name."""
    proc = subprocess.run([sys.executable, "-m", "frame_daemon", "doctor", "--config", str(config)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
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
