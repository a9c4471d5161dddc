"""The state directory breaks under the running daemon: the index file corrupted, the disk full
and then freed. The daemon says what is wrong, keeps following with what it has, and recovers."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import subprocess

import pytest

from faults import change_photo, missing, queue_as_a_person
from rig import wait_state
from servers import wait_for


def _add_track_to_mpd(rig, name: str) -> None:
    """A database change: MPD reports it and the index worker reads the index again."""
    extra = rig.mpd.music_dir / "Extra"
    extra.mkdir(exist_ok=True)
    shutil.copy(next(rig.mpd.music_dir.glob("Aerial/*.flac")), extra / f"{name}.flac")
    rig.mpd.update_and_wait()


def _tear(path) -> None:
    """Overwrite a file's every byte in place."""
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.write((b"torn by a power cut " * (size // 20 + 1))[:size])


def test_index_corrupted_while_running_is_survived_and_rebuilt_at_the_restart(rig):
    person = queue_as_a_person(rig)
    rig.daemon.start()
    wait_state(rig, lambda s: s.get("queued") and s["index_size"] == 20, "first tracks queued",
               timeout=60)
    index = rig.tmp / "state" / "tracks.sqlite3"
    _tear(index)  # on the card, under the daemon's open connections
    # SQLite's open connections keep working from what they hold: the daemon goes on following
    # and indexing (a fresh connection would say "file is not a database").
    _add_track_to_mpd(rig, "after_corruption")
    wait_state(rig, lambda s: s["index_size"] == 21, "the index refreshed", timeout=60)
    change_photo(rig, "bright.jpg")
    wait_state(rig, lambda s: s["queued"] and s["error"] is None, "photos still followed")
    # The power cut itself tears the file and its write-ahead log (while the log holds a good
    # first page SQLite reads that one instead): at the next start both are moved aside and the
    # index is rebuilt from MPD.
    rig.daemon.stop(signal.SIGKILL)
    for torn in (index, index.with_name(index.name + "-wal")):
        if torn.exists():
            _tear(torn)
    rig.recorder.messages.clear()
    rig.daemon.start()
    wait_state(rig, lambda s: s["index_size"] == 21 and s["queued"], "rebuilt from MPD, following",
               timeout=60)
    assert list(index.parent.glob("tracks.sqlite3.corrupt-*"))
    assert rig.daemon.alive() and missing(rig, person) == []


@contextlib.contextmanager
def _small_filesystem(path, size_kb: int):
    """A tmpfs of `size_kb` at `path`: needs root (CI runs as root); skips otherwise."""
    if os.geteuid() != 0:
        pytest.skip("filling a state directory needs a small filesystem of its own: mounting a "
                    "tmpfs needs root")
    path.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(folder) -> os.PathLike:
    """Write a filler file until the filesystem is full; returns it."""
    filler = folder / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    with contextlib.suppress(OSError), open(filler, "ab") as f:  # the last partial block
        while True:
            f.write(b"\0")
            f.flush()
    return filler


def _command(rig, name: str, value: str) -> None:
    rig.recorder.publish(f"frame-daemon/frame/set/{name}", value)


def test_state_directory_full_then_freed(rig):
    state_dir = rig.tmp / "state"
    with _small_filesystem(state_dir, 4096):
        person = queue_as_a_person(rig)
        rig.daemon.start()
        wait_state(rig, lambda s: s.get("queued") and s["index_size"] == 20, "first tracks queued",
                   timeout=60)
        filler = _fill(state_dir)
        # A setting from Home Assistant cannot be saved: it still applies, and says why.
        _command(rig, "threshold", "0.3")
        # (In `last_error` the index worker's failure on the same full disk may follow at once and
        # replace it, so the log is where it is certain to be.)
        wait_for(lambda: "settings not saved" in rig.daemon.log(), 20, what="settings not saved")
        assert "No space left" in rig.daemon.log().split("settings not saved", 1)[1].split("\n")[0]
        wait_state(rig, lambda s: s["threshold"] == 0.3, "the setting applies all the same")
        # The index cannot take new tracks: a clear error, no traceback, the daemon goes on.
        _add_track_to_mpd(rig, "while_full")
        wait_state(rig, lambda s: "full" in (s["error"] or ""), "the full state directory reported",
                   timeout=60)
        change_photo(rig, "bright.jpg")
        wait_state(rig, lambda s: s["queued"] and s["photo_name"] == "current.jpg",
                   "photos still followed with the tracks known")
        assert rig.daemon.alive()
        filler.unlink()  # freed
        _command(rig, "threshold", "0.35")
        saved = state_dir / "settings.json"
        wait_for(lambda: saved.exists() and '"threshold": 0.35' in saved.read_text(), 10,
                 what="the setting saved once there is room")
        wait_state(rig, lambda s: s["index_size"] == 21, "the index catches up once freed",
                   timeout=120)
        assert rig.daemon.alive() and missing(rig, person) == []
        assert "Traceback" not in rig.daemon.log()  # a full disk gets a sentence, not a stack
        rig.daemon.stop()  # before the filesystem goes


def test_a_state_directory_read_only_at_start_then_writable(rig):
    # A Raspberry Pi's SD card remounted read-only after a disk error: the daemon used to refuse
    # to start (systemd restarted it for ever, Home Assistant saw the frame unavailable).
    state_dir = rig.tmp / "state"
    with _small_filesystem(state_dir, 4096):
        done = subprocess.run(["mount", "-o", "remount,ro", str(state_dir)], capture_output=True,
                              text=True)
        if done.returncode:
            pytest.skip(f"cannot make the tmpfs read-only: {done.stderr.strip()}")
        rig.daemon.start()
        wait_state(rig, lambda s: s.get("valence") is not None and "cannot be written" in (
            s["error"] or ""), "the photo's mood published, and why there is no music", timeout=60)
        assert rig.daemon.alive()
        subprocess.run(["mount", "-o", "remount,rw", str(state_dir)], check=True)
        wait_state(rig, lambda s: s["queued"] and s["index_size"] == 20,
                   "the music once the state directory can be written", timeout=120)
        assert "Traceback" not in rig.daemon.log()
        rig.daemon.stop()  # before the filesystem goes
