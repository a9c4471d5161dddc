"""Scripts that need development data (not shipped) say in one line what it is when it is missing."""

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


@pytest.mark.parametrize("args", [[], ["--data", "/nonexistent/emotify"]])
def test_missing_emotify_is_one_clear_line(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "calibrate_audio_model.py"), *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Emotify" in lines[0] and "--data" in lines[0], proc.stderr
