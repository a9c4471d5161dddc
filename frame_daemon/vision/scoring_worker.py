"""The photo on show, read and scored off the loop thread.

A photo on a network share whose server went away does not fail to open: the read hangs, for
minutes or for good, and so would the loop that reads it (Home Assistant's commands, the music,
the state). The loop hands the path to this thread, which posts `PhotoScored` back; only the
newest photo asked for waits (a photo that was replaced while it waited is never read), and a
read that takes longer than `slow_s` is logged and reported once while it hangs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from frame_daemon.config import ModelConfig
from frame_daemon.errors import PhotoError
from frame_daemon.events import AdapterFailed, Event, PhotoScored
from frame_daemon.supervise import run_supervised
from frame_daemon.vision.model import MoodModel
from frame_daemon.vision.scorer import score_photo

log = logging.getLogger(__name__)

SLOW_S = 10.0  # a 6000x4000 JPEG decodes and scores in well under a second on a Pi


class ScoringWorker:
    """`start()`, `stop()`, `request(path)`; the model is used by this thread only."""

    def __init__(self, model: MoodModel, cfg: ModelConfig, post: Callable[[Event], None], *,
                 slow_s: float = SLOW_S) -> None:
        self.model, self.cfg = model, cfg
        self._post = post
        self.slow_s = slow_s
        self._stop = threading.Event()
        self._wanted = threading.Event()
        self._lock = threading.Lock()
        self._next: Path | None = None  # the newest photo asked for, not yet taken
        self._thread = threading.Thread(target=self._supervised, name="photo-scorer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._wanted.set()
        self._thread.join(timeout)
        if self._thread.is_alive():  # a daemon thread: it does not keep the process alive
            log.warning("photo scorer: left waiting on a photo that does not come")

    def request(self, path: Path) -> None:
        """Score this photo next (it replaces one asked for earlier and not yet taken)."""
        with self._lock:
            self._next = path
        self._wanted.set()

    def _supervised(self) -> None:
        run_supervised("photo scorer", self._run, self._stop,
                       lambda message: self._post(AdapterFailed("photo scorer", message)))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wanted.wait()
            if self._stop.is_set():
                return
            with self._lock:
                path, self._next = self._next, None
                self._wanted.clear()
            if path is not None:
                self._post(self._score(path))

    def _score(self, path: Path) -> PhotoScored:
        slow = threading.Event()

        def report_slow() -> None:
            slow.set()
            message = (f"photo {path} has not been read for {self.slow_s:.0f} s (on a network "
                       "share whose server is gone?); the music and Home Assistant go on")
            log.warning("%s", message)
            self._post(AdapterFailed("photo scorer", message))

        timer = threading.Timer(self.slow_s, report_slow)
        timer.name, timer.daemon = "photo-scorer-slow", True
        timer.start()
        try:
            return PhotoScored(path, score_photo(self.model, path, self.cfg))
        except PhotoError as exc:
            return PhotoScored(path, None, exc)
        finally:
            timer.cancel()
            if slow.is_set():
                log.info("photo %s: read at last", path)
