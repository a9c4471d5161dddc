"""The benches' waits on a daemon never hang: they fail at once when the daemon has exited, and
on their timeout with what they waited for and the end of the daemon's log."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT
from harness import DaemonProcess

sys.path.insert(0, str(ROOT / "scripts"))
from bench_rig import Frame


class NoRecorder:
    def json(self, topic: str) -> None:
        return None


def frame_with(tmp_path, code: str) -> Frame:
    log = tmp_path / "daemon.log"
    log.write_text("INFO started\nERROR the last words of the daemon\n")
    daemon = DaemonProcess(tmp_path / "frame.toml", log)
    daemon.proc = subprocess.Popen([sys.executable, "-c", code])
    return Frame(tmp_path / "current.jpg", NoRecorder(), daemon)


def test_a_wait_on_a_daemon_that_exited_fails_at_once_with_its_log(tmp_path):
    frame = frame_with(tmp_path, "raise SystemExit(3)")
    frame.daemon.proc.wait()
    asked = []
    with pytest.raises(RuntimeError, match=r"exited \(3\) while waiting for the first queue") as exc:
        frame.wait_state(lambda s: asked.append(s), 5, what="the first queue")
    assert "the last words of the daemon" in str(exc.value)
    assert asked == []  # not one poll of a condition that can no longer come true


def test_a_wait_that_times_out_says_what_it_waited_for_and_shows_the_log(tmp_path):
    frame = frame_with(tmp_path, "import time; time.sleep(60)")
    try:
        with pytest.raises(TimeoutError, match="waiting for the analysis") as exc:
            frame.wait(lambda: False, 0.1, what="the analysis")
        assert "the last words of the daemon" in str(exc.value)
    finally:
        frame.daemon.proc.kill()
        frame.daemon.proc.wait()
