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


@pytest.mark.skipif(not shutil.which("mosquitto_passwd"), reason="needs mosquitto_passwd")
def test_feedback_to_a_broker_that_refuses_the_login_says_so(tmp_path, capsys):
    broker = LockedMosquitto(tmp_path / "mqtt")
    broker.start()
    try:
        (tmp_path / "secret").write_text("wrong\n")
        config = tmp_path / "frame.toml"
        config.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nusername = "frame"\n'
                          f'password_file = "{tmp_path / "secret"}"\n')
        assert main(["feedback", "fits", "--config", str(config)]) == 1
        err = capsys.readouterr().err
        # Not "did not take the message" after a wait: the broker said why at once.
        assert f"the MQTT broker at 127.0.0.1:{broker.port} refused the connection: Not authorized" in err
        (tmp_path / "secret").write_text("right\n")
        assert main(["feedback", "fits", "--config", str(config)]) == 0
    finally:
        broker.stop()


@pytest.mark.skipif(not shutil.which("mosquitto_passwd"), reason="needs mosquitto_passwd")
def test_ha_remove_with_a_login_the_broker_refuses_says_so(tmp_path, capsys):
    broker = LockedMosquitto(tmp_path / "mqtt")
    broker.start()
    try:
        (tmp_path / "secret").write_text("wrong\n")
        config = tmp_path / "frame.toml"
        config.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nusername = "frame"\n'
                          f'password_file = "{tmp_path / "secret"}"\n')
        assert main(["ha-remove", "--config", str(config)]) == 1
        # The broker's own reason, not "cannot reach" after waiting out the time-out.
        assert "the broker refused us: Not authorized" in capsys.readouterr().err
        (tmp_path / "secret").write_text("right\n")
        assert main(["ha-remove", "--config", str(config)]) == 0
    finally:
        broker.stop()
