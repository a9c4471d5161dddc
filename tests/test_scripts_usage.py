"""The root-only scripts print their usage for --help and do nothing else."""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import ROOT

SCRIPTS = ["test_install.sh", "pi_smoke.sh", "install.sh", "real_ha.sh"]


@pytest.fixture
def not_root(tmp_path) -> dict[str, str]:
    """An environment whose `id -u` says 1000: a script that ignored --help would stop at its
    "run as root" check instead of building a Debian root or installing the daemon here."""
    fake = tmp_path / "bin" / "id"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 1000\n")
    fake.chmod(0o755)
    return dict(os.environ, PATH=f"{fake.parent}:{os.environ['PATH']}")


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_usage_and_exits_zero(script, flag, not_root, tmp_path):
    proc = subprocess.run([str(ROOT / "scripts" / script), flag], capture_output=True, text=True,
                          timeout=30, env=not_root, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"scripts/{script}" in proc.stdout and "run as root" not in proc.stderr


@pytest.mark.parametrize("script", ["test_install.sh", "pi_smoke.sh"])
def test_an_unknown_option_is_refused_with_usage(script, not_root, tmp_path):
    proc = subprocess.run([str(ROOT / "scripts" / script), "--frobnicate"], capture_output=True,
                          text=True, timeout=30, env=not_root, cwd=tmp_path)
    assert proc.returncode == 2 and "unknown option --frobnicate" in proc.stderr
    assert f"scripts/{script}" in proc.stderr and proc.stdout == ""


def test_install_sh_uninstalls_both_roles_or_none(not_root, tmp_path):
    # `--server --uninstall` would look like "remove the server role only"; it removes the frame
    # too, so it is refused before anything runs (here, before the "run as root" check).
    proc = subprocess.run([str(ROOT / "scripts" / "install.sh"), "--server", "--uninstall"],
                          capture_output=True, text=True, timeout=30, env=not_root, cwd=tmp_path)
    assert proc.returncode == 1 and "run it without --server" in proc.stderr
    assert "run as root" not in proc.stderr and proc.stdout == ""
