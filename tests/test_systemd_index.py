"""The server role's units (installed by install.sh --server): the index service is hardened
exactly like the daemon's, and the service, its timer and its path unit pass `systemd-analyze
verify`."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_systemd import parse_unit

from conftest import ROOT

SERVICE = ROOT / "systemd" / "frame-daemon-index.service"
TIMER = ROOT / "systemd" / "frame-daemon-index.timer"
PATH_UNIT = ROOT / "systemd" / "frame-daemon-index.path"
FRAME_SERVICE = ROOT / "systemd" / "frame-daemon.service"
needs_systemd_analyze = pytest.mark.skipif(not shutil.which("systemd-analyze"),
                                           reason="systemd-analyze not installed")


def hardening(unit: Path) -> dict[str, list[str]]:
    """The keys from the unit's "# Hardening" comment on, but its priority (the index runs below
    the frame: Nice, IOSchedulingClass)."""
    text = unit.read_text()
    block = parse_unit("[Service]\n" + text[text.index("# Hardening"):])["Service"]
    return {key: values for key, values in block.items()
            if key not in ("Nice", "IOSchedulingClass", "CPUSchedulingPolicy")}


def test_the_index_service_is_hardened_like_the_frames() -> None:
    frame = hardening(FRAME_SERVICE)
    assert len(frame) >= 25 and "SystemCallFilter" in frame
    assert hardening(SERVICE) == frame


@needs_systemd_analyze
def test_security_exposure_at_most_2():
    proc = subprocess.run(["systemd-analyze", "security", "--offline=true", str(SERVICE)],
                          capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", proc.stdout + proc.stderr)
    assert match, proc.stdout + proc.stderr
    assert float(match.group(1)) <= 2.0


@needs_systemd_analyze
def test_verify_is_clean(tmp_path):
    # verify checks that ExecStart exists and that the timer's and path's unit is there beside it.
    exe = ROOT / ".venv" / "bin" / "frame-daemon"
    if not exe.exists():
        exe = Path(sys.executable).with_name("frame-daemon")
    service = tmp_path / SERVICE.name
    service.write_text(SERVICE.read_text().replace("/opt/frame-daemon/.venv/bin/frame-daemon", str(exe)))
    timer, path = tmp_path / TIMER.name, tmp_path / PATH_UNIT.name
    shutil.copy(TIMER, timer)
    shutil.copy(PATH_UNIT, path)
    proc = subprocess.run(["systemd-analyze", "verify", str(service), str(timer), str(path)],
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
    # install.sh --server rewrites this line with MPD's db_file; the path unit starts the index.
    path = parse_unit(PATH_UNIT.read_text())
    assert [line for line in PATH_UNIT.read_text().splitlines() if line.startswith("PathChanged=")] \
        == ["PathChanged=/var/lib/mpd/tag_cache"]
    assert path["Path"]["Unit"] == [SERVICE.name] and path["Install"]["WantedBy"] == ["paths.target"]
