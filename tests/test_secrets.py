"""Passwords never leave the config: not in the log (even at -v), not in anything published over
MQTT, not in the state directory, not in the config's repr."""

from __future__ import annotations

import os
import shutil

from conftest import gradient_photo
from frame_daemon.config import parse_config
from harness import DaemonProcess, make_servers, show_photo, wait_for, write_config
from servers import Mpd, MqttRecorder

MPD_SECRET = "mpd-Secret-7f3a"
MQTT_SECRET = "mqtt-Secret-91bc"
STATE = "frame-daemon/frame/state"


class PasswordMpd(Mpd):
    """MPD that lets a client without the password only read."""

    def command(self) -> list[str]:
        command = super().command()
        conf = self.workdir / "mpd.conf"
        conf.write_text(conf.read_text() + f'password "{MPD_SECRET}@read,add,control,admin"\n'
                        'default_permissions "read"\n')
        return command


def test_secrets_are_not_in_the_configs_repr():
    cfg = parse_config({"mpd": {"password": MPD_SECRET}, "mqtt": {"password": MQTT_SECRET}})
    assert cfg.mpd.password == MPD_SECRET
    assert MPD_SECRET not in repr(cfg) and MQTT_SECRET not in repr(cfg)


def test_secrets_are_not_logged_published_or_stored(tmp_path, model_json):
    plain, broker = make_servers(tmp_path)  # builds MPD's database while it has no password
    plain.stop()
    mpd = PasswordMpd(plain.workdir, plain.music_dir, port=plain.port)
    mpd.start()
    recorder = None
    daemon = None
    try:
        frame = tmp_path / "frame"
        frame.mkdir()
        current = frame / "current.jpg"
        gradient_photo(640, 480, 3).save(current)
        gradient_photo(640, 480, 4).point(lambda v: v // 4).save(tmp_path / "other.jpg")
        password_file = tmp_path / "mqtt-password"
        password_file.write_text(MQTT_SECRET + "\n")
        state_dir = tmp_path / "state"
        config = write_config(tmp_path / "frame.toml", photo=current, mpd=mpd, mqtt=broker,
                              state_dir=state_dir)
        config.write_text(config.read_text()
                          .replace("timeout_s = 5", f'timeout_s = 5\npassword = "{MPD_SECRET}"')
                          .replace("keepalive_s = 5", 'keepalive_s = 5\nusername = "frame"\n'
                                   f'password_file = "{password_file}"'))
        recorder = MqttRecorder(broker.port, ["#"])
        daemon = DaemonProcess(config, tmp_path / "daemon.log")
        daemon.start()  # with -v: debug lines too
        # Queued tracks prove the MPD password was used (without it MPD only lets us read).
        wait_for(lambda: (s := recorder.json(STATE)) and s.get("queued"), 30, what="tracks queued")
        before = recorder.count(STATE)
        show_photo(current, tmp_path / "other.jpg")
        wait_for(lambda: recorder.count(STATE) > before, 20, what="the next photo published")
        recorder.publish("frame-daemon/frame/set/threshold", "0.4")  # writes settings.json
        wait_for(lambda: (state_dir / "settings.json").exists(), 10, what="settings saved")
        assert daemon.stop() == 0
        stored = b"".join(p.read_bytes() for p in state_dir.rglob("*") if p.is_file())
        published = b"".join(topic.encode() + payload for topic, payload in recorder.history)
        log = daemon.log()
        for secret in (MPD_SECRET, MQTT_SECRET):
            assert secret not in log
            assert secret.encode() not in published
            assert secret.encode() not in stored
        assert "connected to MPD" in log and published and stored
    finally:
        if recorder:
            recorder.close()
        if daemon and daemon.alive():
            daemon.stop()
        mpd.stop()
        broker.stop()
        shutil.rmtree(tmp_path / "frame", ignore_errors=True)


def test_a_password_file_not_in_utf8_is_one_clear_error_that_shows_no_byte_of_it(tmp_path):
    import subprocess
    import sys

    password_file = tmp_path / "mqtt-password"
    password_file.write_bytes(b"caf\xe9-" + MQTT_SECRET.encode() + b"\n")  # saved as Latin-1
    config = tmp_path / "frame.toml"
    config.write_text(f'[mqtt]\nport = 1\nusername = "frame"\npassword_file = "{password_file}"\n'
                      f'[mpd]\nport = 1\n[state]\ndirectory = "{tmp_path / "state"}"\n')
    for verb in ("run", "feedback fits"):
        proc = subprocess.run([sys.executable, "-m", "frame_daemon", *verb.split(), "--config",
                               str(config)], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1, proc.stderr
        assert f"mqtt.password_file {password_file}: not UTF-8 text" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and MQTT_SECRET not in proc.stderr


def test_a_password_file_that_is_a_fifo_or_a_device_is_refused_at_once(tmp_path):
    import subprocess
    import sys

    fifo = tmp_path / "mqtt-password"
    os.mkfifo(fifo)  # `run` waited for a writer for ever, before it logged anything
    for password_file in (fifo, "/dev/zero"):  # /dev/zero: read until the memory ran out
        config = tmp_path / "frame.toml"
        config.write_text(f'[mqtt]\nport = 1\nusername = "frame"\n'
                          f'password_file = "{password_file}"\n[mpd]\nport = 1\n'
                          f'[state]\ndirectory = "{tmp_path / "state"}"\n')
        proc = subprocess.run([sys.executable, "-m", "frame_daemon", "run", "--config",
                               str(config)], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1, proc.stderr
        assert f"mqtt.password_file {password_file}: not a regular file" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_a_password_file_saved_with_a_byte_order_mark_gives_the_password_alone(tmp_path):
    # Notepad's UTF-8 begins with a BOM: it became part of the password, and the broker refused it.
    from frame_daemon.config import MqttConfig
    from frame_daemon.mqtt_link import broker_password

    password_file = tmp_path / "mqtt-password"
    password_file.write_bytes(b"\xef\xbb\xbf" + MQTT_SECRET.encode() + b"\r\n")
    assert broker_password(MqttConfig(password_file=str(password_file))) == MQTT_SECRET
