"""The table builders need the (unshipped) NRC-VAD lexicon: without it, one clear line, no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.parametrize("script", ["build_mood_table.py", "build_music_tables.py"])
@pytest.mark.parametrize("args", [[], ["--lexicon", "/nonexistent/NRC-VAD-Lexicon-v1.txt"],
                                  ["--lexicon", str(ROOT / "README.md")]])
def test_missing_lexicon_is_one_clear_line(script: str, args: list[str]) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "NRC-VAD-Lexicon-v1.txt" in lines[0] and "saifmohammad.com" in lines[0]
