"""Probes: the command line against a broker that says no (a real mosquitto that wants a login)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from frame_daemon.cli import main
from servers import Mosquitto, find_binary


class LockedMosquitto(Mosquitto):
    """A broker that takes only user 'frame' with password 'right'."""

    def command(self) -> list[str]:
        passwords = self.workdir / "passwords"
        subprocess.run([find_binary("mosquitto_passwd"), "-b", "-c", str(passwords), "frame", "right"],
                       check=True, capture_output=True)
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous false\n"
                        f"password_file {passwords}\npersistence false\n"
                        # Started as root, it would drop to user mosquitto, who may not read the
                        # test's folder (a non-root run ignores this line).
                        "user root\n")
        return [find_binary("mosquitto"), "-c", str(conf)]


@pytest.fixture
def locked(tmp_path):
    """A broker that wants a login, and a config whose password file holds the wrong one: yields
    (config, password file, broker port)."""
    if not shutil.which("mosquitto_passwd"):
        pytest.skip("needs mosquitto_passwd")
    broker = LockedMosquitto(tmp_path / "mqtt")
    broker.start()
    try:
        secret = tmp_path / "secret"
        secret.write_text("wrong\n")
        config = tmp_path / "frame.toml"
        config.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nusername = "frame"\n'
                          f'password_file = "{secret}"\n')
        yield config, secret, broker.port
    finally:
        broker.stop()


def test_feedback_to_a_broker_that_refuses_the_login_says_so(locked, capsys):
    config, secret, port = locked
    assert main(["feedback", "fits", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    # Not "did not take the message" after a wait: the broker said why at once.
    assert f"the MQTT broker at 127.0.0.1:{port} refused the connection: Not authorized" in err
    secret.write_text("right\n")
    assert main(["feedback", "fits", "--config", str(config)]) == 0


def test_a_password_file_saved_by_windows_notepad_logs_in(locked, capsys):
    # A byte-order mark and a CRLF: the mark was taken for part of the password, and the broker
    # refused the login with nothing to show why.
    config, secret, _ = locked
    secret.write_bytes(b"\xef\xbb\xbfright\r\n")
    assert main(["feedback", "fits", "--config", str(config)]) == 0, capsys.readouterr().err


def test_ha_remove_with_a_login_the_broker_refuses_says_so(locked, capsys):
    config, secret, _ = locked
    assert main(["ha-remove", "--config", str(config)]) == 1
    # The broker's own reason, not "cannot reach" after waiting out the time-out.
    assert "the broker refused us: Not authorized" in capsys.readouterr().err
    secret.write_text("right\n")
    assert main(["ha-remove", "--config", str(config)]) == 0
