"""mpd.port pointing at another service (a typo: 22, or a web server that greets first): every
command says it is not MPD, in one line, and the daemon keeps trying without a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

import pytest

from conftest import ROOT
from frame_daemon.music.mpd.client import MpdLink, MpdUnavailable

GREETING = b"SSH-2.0-OpenSSH_9.2\r\n"


@pytest.fixture
def not_mpd():
    """A real TCP service on a free loopback port that greets like an SSH server."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(GREETING)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    server.close()


def test_a_service_that_is_not_mpd_is_named_so_in_one_line(tmp_path, not_mpd):
    link = MpdLink("127.0.0.1", not_mpd, timeout_s=5)
    with pytest.raises(MpdUnavailable, match=r"not MPD \(it greets with 'SSH-2.0-OpenSSH_9.2'\)"):
        link.status()
    config = tmp_path / "frame.toml"
    config.write_text(f'[mpd]\nhost = "127.0.0.1"\nport = {not_mpd}\n[mqtt]\nport = 1\n'
                      f'[state]\ndirectory = "{tmp_path / "state"}"\n')
    for verb in ("index", "doctor"):
        done = subprocess.run([sys.executable, "-m", "frame_daemon", verb, "--config", str(config)],
                              capture_output=True, text=True, timeout=120, cwd=ROOT)
        out = done.stdout + done.stderr
        assert done.returncode == 1 and "Traceback" not in out, out
        assert f"127.0.0.1:{not_mpd}: not MPD (it greets with 'SSH-2.0-OpenSSH_9.2')" in out, out
        assert "the check itself failed" not in out, out
