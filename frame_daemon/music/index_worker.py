"""Refresh the track index in a background thread, so the photo loop never waits on a scan."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from frame_daemon.config import MpdConfig
from frame_daemon.errors import FrameDaemonError
from frame_daemon.events import Event, IndexRefreshed
from frame_daemon.music.index import RefreshStats, TrackIndex
from frame_daemon.music.mpd_player import MpdLink

log = logging.getLogger(__name__)


def refresh_index(index: TrackIndex, link: MpdLink, music_directory: str,
                  progress: Callable[[int, int], None] | None = None) -> RefreshStats:
    """List MPD's library and bring the index up to date (incremental)."""
    songs = link.list_all()
    folder = Path(music_directory).expanduser() if music_directory else None
    if folder is not None and not folder.is_dir():
        log.warning("music_directory %s is not readable here; using MPD's tags only", folder)
        folder = None
    return index.refresh(songs, folder, progress)


def describe(stats: RefreshStats) -> str:
    text = (f"{stats.added} added, {stats.updated} updated, {stats.removed} removed, "
            f"{stats.unchanged} unchanged")
    return text + (f", {len(stats.failed)} unreadable" if stats.failed else "")


class IndexWorker:
    """`request()` asks for a refresh; runs them one at a time on its own MPD and SQLite handles."""

    def __init__(self, index_path: Path, mpd: MpdConfig, post: Callable[[Event], None]) -> None:
        self.index_path = index_path
        self.mpd = mpd
        self._post = post
        self._wanted = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="index", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request(self) -> None:
        self._wanted.set()

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        self._wanted.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        link = MpdLink(self.mpd.host, self.mpd.port, self.mpd.password, self.mpd.timeout_s)
        index = TrackIndex(self.index_path)
        try:
            while not self._stop.is_set():
                self._wanted.wait()
                if self._stop.is_set():
                    break
                self._wanted.clear()
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
                self._post(IndexRefreshed(len(index), summary))
        finally:
            link.close()
            index.close()
