"""The MQTT link says at once, and once, why it cannot connect: unreachable, untrusted TLS."""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from frame_daemon.config import parse_config
from frame_daemon.mqtt_link import MqttLink
from servers import Mosquitto, find_binary, free_port, wait_for


def _link(**mqtt) -> MqttLink:
    cfg = parse_config({"mqtt": {"host": "127.0.0.1", **mqtt}}).mqtt
    return MqttLink(cfg, "frame-daemon/frame/availability")


def _errors_after_failures(link: MqttLink, caplog, failures: int, timeout: float) -> list[str]:
    """Start `link`, wait until it has failed to connect `failures` times, stop it; the errors
    it logged meanwhile."""
    with caplog.at_level(logging.INFO, logger="frame_daemon.mqtt_link"):
        link.start()
        try:
            wait_for(lambda: link.connect_failures >= failures, timeout,
                     what=f"{failures} failed attempt(s)")
        finally:
            link.stop()
    return [r.getMessage() for r in caplog.records
            if r.name == "frame_daemon.mqtt_link" and r.levelno >= logging.ERROR]


def test_an_unreachable_broker_is_logged_at_once_and_only_once(caplog):
    link = _link(port=free_port())
    errors = _errors_after_failures(link, caplog, 2, 15)
    assert len(errors) == 1 and "connection refused" in errors[0], errors


class TlsMosquitto(Mosquitto):
    def __init__(self, workdir, cert, key) -> None:
        super().__init__(workdir)
        self.cert, self.key = cert, key

    def command(self) -> list[str]:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                        f"certfile {self.cert}\nkeyfile {self.key}\npersistence false\n")
        return [find_binary("mosquitto"), "-c", str(conf)]


@pytest.fixture
def tls_broker(tmp_path):
    # Started as root, mosquitto drops to its own user: the files must be readable to it.
    certs = Path(tempfile.mkdtemp(prefix="frame-daemon-tls-"))
    certs.chmod(0o755)
    cert, key = certs / "cert.pem", certs / "key.pem"
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost"], check=True,
                       capture_output=True, timeout=60)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot make a test certificate with openssl: {exc}")
    key.chmod(0o644)
    broker = TlsMosquitto(tmp_path / "mosquitto", cert, key)
    broker.start()
    yield broker
    with contextlib.suppress(Exception):
        broker.stop()
    shutil.rmtree(certs, ignore_errors=True)


@pytest.mark.parametrize(("ca", "cause"), [
    (False, "self-signed certificate"),  # the system's CAs do not know it
    (True, "IP address mismatch"),  # trusted, but issued to localhost, not 127.0.0.1
])
def test_tls_failures_name_their_cause(tls_broker, caplog, ca, cause):
    link = _link(port=tls_broker.port, tls=True, ca_file=str(tls_broker.cert) if ca else "")
    errors = _errors_after_failures(link, caplog, 1, 15)
    assert len(errors) == 1 and "not trusted" in errors[0] and cause in errors[0], errors


def test_a_tls_listener_reached_without_tls_is_logged_once_not_silently_retried(tls_broker, caplog):
    # The connection opens, then the broker drops what it cannot read: no connect failure in
    # paho's sense, so this was retried for ever without a word (port 8883, tls = false).
    link = _link(port=tls_broker.port)
    errors = _errors_after_failures(link, caplog, 2, 20)
    assert len(errors) == 1 and "closed the connection before accepting us" in errors[0], errors
    assert "mqtt.tls" in errors[0]
