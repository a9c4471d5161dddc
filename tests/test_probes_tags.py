"""Probes: tags as a broken tagger or a crafted file may write them (real MPD, real
`frame-daemon index`): a genre of thousands of words is read in time, like any other."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import pytest
from test_stickers import moods, write_config

from conftest import ROOT
from servers import LIBRARY, Mpd, write_library

WORDY = " ".join(f"w{i}" for i in range(6000))  # ~40 KB: no genre known in it


@pytest.fixture
def wordy_mpd(tmp_path):
    music = tmp_path / "music"
    write_library(music, seconds=0.5, library=[*LIBRARY[:2], ("wordy", "Wordy", "Odd", WORDY, "", 0, 300.0)])
    server = Mpd(tmp_path / "mpd", music)
    server.start()
    server.update_and_wait()
    yield server
    with contextlib.suppress(Exception):
        server.stop()


def test_a_genre_of_thousands_of_words_does_not_hold_up_the_index(tmp_path, wordy_mpd):
    c = wordy_mpd.client()
    wordy = next(s for s in c.listallinfo() if s.get("file", "").startswith("Odd/"))
    c.disconnect()
    assert len(wordy.get("genre", "")) > 10_000  # MPD passes it on whole
    config = write_config(tmp_path / "frame.toml", wordy_mpd, tmp_path / "state",
                          str(wordy_mpd.music_dir))
    # (Reading every run of its words as a possible genre name took hours: cubic in the words.)
    done = subprocess.run([sys.executable, "-m", "frame_daemon", "index", "--config", str(config),
                           "--no-analysis"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    found = moods(tmp_path / "state")
    assert len(found) == 3 and found["Odd/wordy.flac"][3] == "neutral"
