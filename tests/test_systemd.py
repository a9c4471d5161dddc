"""The shipped unit: the values the daemon relies on (notify, watchdog, restart policy, user, paths),
its hardening (exposure <= 2.0), and `systemd-analyze verify`."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from frame_daemon.config import EX_CONFIG
from frame_daemon.daemon import TICK_S

UNIT = ROOT / "systemd" / "frame-daemon.service"
needs_systemd_analyze = pytest.mark.skipif(not shutil.which("systemd-analyze"),
                                           reason="systemd-analyze not installed")

# The longest the loop may legitimately go between two watchdog pings is one photo's decode and
# scoring on a Pi (the decode budget bounds it to a few seconds); the watchdog must allow that
# with room, and systemd pings at a third of it (systemd_notify.py), so at least this long.
MIN_WATCHDOG_S = 15.0


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A unit file as systemd reads it: section -> key -> every value assigned, in order (keys such
    as SystemCallFilter may be given more than once; an empty value resets a list)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in re.sub(r"\\\n", " ", text).splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"not a unit line: {raw!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def timespan_s(value: str) -> float:
    """A systemd time span ("30", "30s", "1min 30s", "500ms") in seconds."""
    units = {"us": 1e-6, "ms": 1e-3, "": 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0,
             "h": 3600.0, "hr": 3600.0}
    parts = re.findall(r"([0-9.]+)\s*([a-z]*)", value)
    assert parts and "".join(n + u for n, u in parts) == value.replace(" ", ""), value
    return sum(float(n) * units[u] for n, u in parts)


@pytest.fixture(scope="module")
def service() -> dict[str, str]:
    """The [Service] section, one (last) value per key."""
    unit = parse_unit(UNIT.read_text())
    assert set(unit) == {"Unit", "Service", "Install"}
    return {key: values[-1] for key, values in unit["Service"].items()}


def test_parse_unit_reads_what_systemd_reads():
    unit = parse_unit("[Service]\n# c\nA=1\nB=x \\\n  y\nA=\nA=2\n[Install]\nWantedBy=m\n")
    assert unit == {"Service": {"A": ["1", "", "2"], "B": ["x    y"]}, "Install": {"WantedBy": ["m"]}}
    assert timespan_s("30") == timespan_s("30s") == 30 and timespan_s("1min 30s") == 90
    assert timespan_s("500ms") == 0.5


def test_the_daemon_talks_to_systemd_and_its_watchdog(service):
    assert service["Type"] == "notify"  # the daemon sends READY=1 once it runs
    assert service["NotifyAccess"] in ("main", "all")  # pings come from the main process
    watchdog = timespan_s(service["WatchdogSec"])
    assert watchdog >= MIN_WATCHDOG_S, f"WatchdogSec={service['WatchdogSec']}"
    # The loop pings between ticks: several ticks fit in a ping interval (a third of the watchdog).
    assert watchdog / 3 >= 10 * TICK_S
    stop = timespan_s(service["TimeoutStopSec"])
    assert 2 <= stop <= 30  # the daemon stops within 2 s; a hung one is killed soon after


def test_it_restarts_on_failure_but_not_on_a_config_error(service):
    assert service["Restart"] in ("on-failure", "always", "on-abnormal", "on-watchdog")
    assert timespan_s(service["RestartSec"]) >= 1  # no tight restart loop
    assert str(EX_CONFIG) in service["RestartPreventExitStatus"].split()


def test_who_it_runs_as_and_where_it_keeps_state(service):
    assert service["User"] == service["Group"] == "frame-daemon"
    assert service["StateDirectory"] == "frame-daemon"
    assert service["ConfigurationDirectory"] == "frame-daemon"
    exe, *args = service["ExecStart"].split()
    assert exe == "/opt/frame-daemon/.venv/bin/frame-daemon"  # where scripts/install.sh puts it
    assert args == ["run", "--config", "/etc/frame-daemon/frame-daemon.toml"]


def test_hardening_keys(service):
    expected = {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "read-only",
        "PrivateTmp": "yes", "PrivateDevices": "yes", "PrivateUsers": "yes",
        "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes", "ProtectProc": "invisible", "RestrictNamespaces": "yes",
        "RestrictRealtime": "yes", "RestrictSUIDSGID": "yes", "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes", "CapabilityBoundingSet": "", "AmbientCapabilities": "",
        "SystemCallArchitectures": "native", "DevicePolicy": "closed",
    }
    assert {key: service.get(key) for key in expected} == expected
    assert sorted(service["RestrictAddressFamilies"].split()) == ["AF_INET", "AF_INET6", "AF_UNIX"]
    filters = parse_unit(UNIT.read_text())["Service"]["SystemCallFilter"]
    assert "@system-service" in filters and any(f.startswith("~") and "@privileged" in f
                                                for f in filters)
    # ProcSubset=pid hides /proc/cpuinfo and slows XNNPACK 5-10x.
    assert "ProcSubset" not in service


@needs_systemd_analyze
def test_security_exposure_at_most_2():
    proc = subprocess.run(["systemd-analyze", "security", "--offline=true", str(UNIT)],
                          capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", proc.stdout + proc.stderr)
    assert match, proc.stdout + proc.stderr
    assert float(match.group(1)) <= 2.0


@needs_systemd_analyze
def test_verify_is_clean(tmp_path):
    # verify checks that ExecStart exists: point it at this checkout's real entry point.
    unit = tmp_path / "frame-daemon.service"
    exe = ROOT / ".venv" / "bin" / "frame-daemon"
    if not exe.exists():
        exe = Path(sys.executable).with_name("frame-daemon")
    unit.write_text(UNIT.read_text().replace("/opt/frame-daemon/.venv/bin/frame-daemon", str(exe)))
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, timeout=60)
    problems = [line for line in (proc.stdout + proc.stderr).splitlines()
                if "frame-daemon.service" in line]
    assert proc.returncode == 0 and not problems, proc.stdout + proc.stderr
