"""Refresh the track index in a background thread, so the photo loop never waits on a scan.

The thread is supervised: whatever kills its work (a corrupt index, a full disk, a bug) is logged
with its traceback once, reported to the loop (published in `error`), and the work restarts with
backoff on fresh MPD and SQLite handles. A corrupt index is moved aside and rebuilt.

MPD's database events come in storms (a library being copied in, a script running `update` every
few seconds): a refresh asked for by one (`request(settle=True)`) waits until they have stopped for
DATABASE_SETTLE_S, but never longer than DATABASE_MAX_WAIT_S after the first, so a storm costs one
refresh a minute rather than one per event, and a database that never rests is still followed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from frame_daemon.config import MpdConfig
from frame_daemon.errors import FrameDaemonError
from frame_daemon.events import Event, IndexRefreshed
from frame_daemon.music.audio.runner import AnalysisProgress, analyse_pending
from frame_daemon.music.index import RefreshStats, TrackIndex
from frame_daemon.music.index_file import describe_storage_error, is_corruption, move_aside, open_index
from frame_daemon.music.mpd.client import MpdLink
from frame_daemon.music.select import TrackPool
from frame_daemon.supervise import run_supervised

log = logging.getLogger(__name__)


ANALYSIS_BATCH = 50  # tracks analysed between pool reloads in the daemon
RESTART_BACKOFF_S = (1.0, 300.0)  # first and longest wait before restarting after a failure
DATABASE_SETTLE_S = 5.0  # quiet time after MPD's last database event before the refresh
DATABASE_MAX_WAIT_S = 60.0  # the longest a refresh waits for the events to stop


def music_folder(music_directory: str) -> Path | None:
    """The configured music folder if it is readable here, else None (MPD's tags only)."""
    folder = Path(music_directory).expanduser() if music_directory else None
    if folder is not None and not folder.is_dir():
        log.warning("music_directory %s is not readable here; using MPD's tags only", folder)
        return None
    return folder


def refresh_index(index: TrackIndex, link: MpdLink, music_directory: str,
                  progress: Callable[[int, int], None] | None = None) -> RefreshStats:
    """List MPD's library and bring the index up to date (incremental)."""
    songs = link.list_all()
    return index.refresh(songs, music_folder(music_directory), progress)


def describe(stats: RefreshStats) -> str:
    text = (f"{stats.added} added, {stats.updated} updated, {stats.removed} removed, "
            f"{stats.unchanged} unchanged")
    return text + (f", {len(stats.failed)} unreadable" if stats.failed else "")


class IndexWorker:
    """`request()` asks for a refresh; runs them one at a time on its own MPD and SQLite handles."""

    def __init__(self, index_path: Path, mpd: MpdConfig, post: Callable[[Event], None],
                 clock: Callable[[], float] = time.monotonic, settle_s: float = DATABASE_SETTLE_S,
                 max_wait_s: float = DATABASE_MAX_WAIT_S) -> None:
        self.index_path = index_path
        self.settle_s, self.max_wait_s = settle_s, max_wait_s
        self.mpd = mpd
        self._post = post
        self._clock = clock
        self._wanted = threading.Event()  # a refresh is asked for (maybe not due yet)
        self._lock = threading.Lock()  # guards the two times below
        self._due = 0.0  # when the refresh asked for may run
        self._first_asked = 0.0  # when the request now waiting was first made
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="index", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request(self, settle: bool = False) -> None:
        """Ask for a refresh: at once, or (settle) once MPD's database events have stopped."""
        with self._lock:
            now = self._clock()
            if not self._wanted.is_set():
                self._first_asked, self._due = now, now
            if settle:
                self._due = max(self._due, min(now + self.settle_s,
                                               self._first_asked + self.max_wait_s))
            else:
                self._due = now
            self._wanted.set()

    def _wait_due(self) -> bool:
        """Wait until a refresh is asked for and due; False when stopping."""
        while not self._stop.is_set():
            self._wanted.wait()
            with self._lock:
                left = self._due - self._clock()
                if left <= 0:
                    self._wanted.clear()
                    return not self._stop.is_set()
            self._stop.wait(left)
        return False

    def _refresh_due(self) -> bool:
        with self._lock:
            return self._wanted.is_set() and self._clock() >= self._due

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        self._wanted.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        def report(message: str) -> None:
            self._post(IndexRefreshed(0, "", error=message))
            self.request()  # catch up at once after the restart

        first, longest = RESTART_BACKOFF_S
        run_supervised("the index worker", self._work, self._stop, report, first, longest,
                       explain=self._explain)

    def _explain(self, exc: Exception) -> str | None:
        """What a failure means; a corrupt index is moved aside here, so the restart rebuilds."""
        if is_corruption(exc):
            aside = move_aside(self.index_path)
            return f"the track index was corrupt ({exc}); moved to {aside.name}, rebuilding"
        return describe_storage_error(exc)  # None: unexpected, logged with its traceback

    def _work(self) -> None:
        link = MpdLink(self.mpd.host, self.mpd.port, self.mpd.password, self.mpd.timeout_s)
        index = open_index(self.index_path)
        try:
            while True:
                # A fresh connection after each wait: MPD drops one left idle for its
                # connection_timeout (60 s by default), and refreshes are rarer than that.
                link.close()
                if not self._wait_due():
                    break
                try:
                    stats = refresh_index(index, link, self.mpd.music_directory)
                except FrameDaemonError as exc:
                    log.warning("index refresh failed: %s", exc)
                    self._post(IndexRefreshed(len(index), "", error=str(exc)))
                    continue
                for uri, reason in stats.failed[:20]:
                    log.warning("could not read tags of %s: %s", uri, reason)
                summary = describe(stats)
                log.info("index refreshed: %s", summary)
                self._post(IndexRefreshed(len(index), summary, pool=self._pool(index)))
                self._analyse(index)
        finally:
            link.close()
            index.close()

    @staticmethod
    def _pool(index: TrackIndex) -> TrackPool:
        """Built here, in the worker: at 100,000 tracks this takes the loop a second or more."""
        return TrackPool.from_tracks(index.tracks())

    def _analyse(self, index: TrackIndex) -> None:
        """Analyse new tracks' audio; a new refresh request or a stop interrupts (and resumes)."""
        folder = music_folder(self.mpd.music_directory)
        if folder is None:
            return

        def progress(p: AnalysisProgress) -> None:
            if p.done % ANALYSIS_BATCH == 0 or p.done == p.total:
                log.info("%s", p.line())
                self._post(IndexRefreshed(len(index), p.line(), pool=self._pool(index)))

        result = analyse_pending(index, folder, workers=1, progress=progress,
                                 should_stop=lambda: self._stop.is_set() or self._refresh_due())
        if result.total:
            log.info("audio analysis: %s", result.line())
