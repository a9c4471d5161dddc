"""The server role's units: the index service is hardened like the daemon's and both pass
`systemd-analyze verify`."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

SERVICE = ROOT / "systemd" / "frame-daemon-index.service"
TIMER = ROOT / "systemd" / "frame-daemon-index.timer"
pytestmark = pytest.mark.skipif(not shutil.which("systemd-analyze"),
                                reason="systemd-analyze not installed")


def test_security_exposure_at_most_2():
    proc = subprocess.run(["systemd-analyze", "security", "--offline=true", str(SERVICE)],
                          capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", proc.stdout + proc.stderr)
    assert match, proc.stdout + proc.stderr
    assert float(match.group(1)) <= 2.0


def test_verify_is_clean(tmp_path):
    # verify checks that ExecStart exists and that the timer's unit is there beside it.
    exe = ROOT / ".venv" / "bin" / "frame-daemon"
    if not exe.exists():
        exe = Path(sys.executable).with_name("frame-daemon")
    service = tmp_path / SERVICE.name
    service.write_text(SERVICE.read_text().replace("/opt/frame-daemon/.venv/bin/frame-daemon", str(exe)))
    timer = tmp_path / TIMER.name
    shutil.copy(TIMER, timer)
    proc = subprocess.run(["systemd-analyze", "verify", str(service), str(timer)],
                          capture_output=True, text=True, timeout=60)
    problems = [line for line in (proc.stdout + proc.stderr).splitlines()
                if "frame-daemon-index" in line]
    assert proc.returncode == 0 and not problems, proc.stdout + proc.stderr


def test_unit_contract():
    text = SERVICE.read_text()
    for line in ("Type=oneshot", "index --config", "User=frame-daemon", "Nice=10",
                 "IOSchedulingClass=idle", "TimeoutStartSec=infinity"):
        assert line in text
    assert "OnUnitInactiveSec=" in TIMER.read_text()
