"""Refresh the track index in a background thread, so the photo loop never waits on a scan.

The thread is supervised: whatever kills its work (a corrupt index, a full disk, a bug) is logged
with its traceback once, reported to the loop (published in `error`), and the work restarts with
backoff on fresh MPD and SQLite handles. A corrupt index is moved aside and rebuilt.

MPD's database events come in storms (a library being copied in, a script running `update` every
few seconds): a refresh asked for by one (`request(settle=True)`) waits until they have stopped for
DATABASE_SETTLE_S, but never longer than DATABASE_MAX_WAIT_S after the first, so a storm costs one
refresh a minute rather than one per event, and a database that never rests is still followed.
A refresh that fails (MPD away: a frame that boots with its MPD) is tried again by itself, with
backoff, rather than leaving the index as it was until MPD's database next changes.
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
from frame_daemon.memory import give_memory_back
from frame_daemon.music.audio.runner import AnalysisProgress, analyse_pending
from frame_daemon.music.index import MpdSong, RefreshStats, SharedStats, TrackIndex
from frame_daemon.music.index_file import describe_storage_error, open_index
from frame_daemon.music.mpd.client import MpdLink
from frame_daemon.music.mpd.stickers import ENABLE, MoodStickers, StickersDisabled
from frame_daemon.music.select import TrackPool
from frame_daemon.sqlite_schema import is_corrupt, move_aside
from frame_daemon.supervise import run_supervised

log = logging.getLogger(__name__)


ANALYSIS_BATCH = 50  # tracks analysed between pool reloads in the daemon
RESTART_BACKOFF_S = (1.0, 300.0)  # first and longest wait before restarting after a failure
# How often, between refreshes, a frame looks for analyses another machine has shared since
# (MPD's idle "sticker" news would also come for every user rating; a poll is simpler).
STICKER_POLL_S = 600.0
# A poll that brings nothing doubles the wait, up to this: tracks the other machine cannot analyse
# would otherwise cost MPD a full sticker read every 10 minutes for ever. A refresh (new music, so
# likely new analyses soon) or a poll that brings something starts again from STICKER_POLL_S.
STICKER_POLL_MAX_S = 6 * 3600.0
# First and longest wait before a refresh that failed (MPD away: a frame that boots with its MPD)
# is tried again by itself: nothing else asks for one until MPD's database changes.
REFRESH_RETRY_S = (2.0, 300.0)
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
    """List MPD's library and bring the index up to date (incremental).

    While MPD scans its library (its database lost, or new after an upgrade: it scans in the
    background and answers meanwhile) it lists only what it has found so far: then nothing is
    removed (`partial`), else the rest of the index would go, with its analyses."""
    updating = link.status().updating
    songs = link.list_all(keep=MpdSong.parse)
    updating = updating or link.status().updating
    return index.refresh(songs, music_folder(music_directory), progress, partial=updating)


def read_shared(index: TrackIndex, link: MpdLink, uris: list[str] | None = None) -> SharedStats | None:
    """Take in the analyses shared through MPD's stickers (one bulk read) for every track, or for
    `uris`; None when MPD has no sticker database, which is fine: then only what is analysed here
    is known."""
    stickers = MoodStickers(link)
    try:
        if not stickers.available():
            return None
        found = stickers.read(index.uris() if uris is None else uris)
    except StickersDisabled:
        return None
    return index.apply_shared(found, uris)


def share_analyses(index: TrackIndex, link: MpdLink) -> int:
    """Write the analyses made here that MPD does not hold yet to its stickers; how many. 0 when
    MPD has no sticker database."""
    stickers = MoodStickers(link)
    try:
        if not stickers.available():  # asked first: listing what is unshared costs more
            return 0
        wanted = index.unshared()
        written = stickers.write(wanted) if wanted else []
    except StickersDisabled:
        return 0
    index.mark_shared(written)
    return len(written)


def describe_shared(stats: SharedStats | None) -> str:
    if stats is None:
        return f"not shared: MPD has no sticker database ({ENABLE})"
    text = f"{stats.used} tracks use an analysis shared through MPD's stickers"
    if stats.stale:
        text += f" ({stats.stale} of another model or an older file: trusted less)"
    return text + (f", {stats.unreadable} stickers not readable" if stats.unreadable else "")


def describe(stats: RefreshStats) -> str:
    text = (f"{stats.added} added, {stats.updated} updated, "
            + ("none removed: MPD is still scanning its library, " if stats.partial else
               f"{stats.removed} removed, ") + f"{stats.unchanged} unchanged")
    return text + (f", {len(stats.failed)} unreadable" if stats.failed else "")


class IndexWorker:
    """`request()` asks for a refresh; runs them one at a time on its own MPD and SQLite handles."""

    def __init__(self, index_path: Path, mpd: MpdConfig, post: Callable[[Event], None], *,
                 clock: Callable[[], float] = time.monotonic, settle_s: float = DATABASE_SETTLE_S,
                 max_wait_s: float = DATABASE_MAX_WAIT_S,
                 sticker_poll_s: float = STICKER_POLL_S) -> None:
        self.index_path = index_path
        self.settle_s, self.max_wait_s = settle_s, max_wait_s
        self.mpd = mpd
        self.sticker_poll_s = sticker_poll_s
        self._poll_wait_s = sticker_poll_s
        self._retry_s = REFRESH_RETRY_S[0]
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

    def _retry_later(self) -> float:
        """Ask for a refresh after the retry wait (unless one is asked for sooner); the wait."""
        wait, self._retry_s = self._retry_s, min(2 * self._retry_s, REFRESH_RETRY_S[1])
        with self._lock:
            now = self._clock()
            if not self._wanted.is_set():
                self._first_asked, self._due = now, now + wait
            self._wanted.set()
        return wait

    def _wait_due(self) -> str | None:
        """Wait until a refresh is asked for and due ("refresh"), or until it is time to look for
        analyses another machine shared ("poll"), whichever comes first; None when stopping."""
        while not self._stop.is_set():
            if not self._wanted.wait(self._poll_wait_s):
                return None if self._stop.is_set() else "poll"
            with self._lock:
                left = self._due - self._clock()
                if left <= 0:
                    self._wanted.clear()
                    return None if self._stop.is_set() else "refresh"
            self._stop.wait(left)
        return None

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
        if is_corrupt(exc):
            aside = move_aside(self.index_path)
            return f"the track index was corrupt ({exc}); moved to {aside.name}, rebuilding"
        return describe_storage_error(exc)  # None: unexpected, logged with its traceback

    def _work(self) -> None:
        link = MpdLink(self.mpd.host, self.mpd.port, self.mpd.password, self.mpd.timeout_s,
                       keepalive_s=self.mpd.keepalive_s)
        index = open_index(self.index_path)
        try:
            while True:
                # A fresh connection after each wait: MPD drops one left idle for its
                # connection_timeout (60 s by default), and refreshes are rarer than that.
                link.close()
                due = self._wait_due()
                if due is None:
                    break
                if due == "poll":
                    self._poll_shared(index, link)
                    continue
                self._poll_wait_s = self.sticker_poll_s
                try:
                    stats = refresh_index(index, link, self.mpd.music_directory)
                except FrameDaemonError as exc:
                    log.warning("index refresh failed: %s; trying again in %.0f s", exc,
                                self._retry_later())
                    self._post(IndexRefreshed(len(index), "", error=str(exc)))
                    continue
                if stats.partial:  # again once MPD has scanned all (its database event may be lost)
                    self._retry_later()
                else:
                    self._retry_s = REFRESH_RETRY_S[0]
                try:
                    shared = describe_shared(read_shared(index, link))
                except FrameDaemonError as exc:  # the tags are in; shared results come next time
                    log.warning("could not read MPD's stickers: %s", exc)
                    shared = "shared analyses not read"
                for uri, reason in stats.failed[:20]:
                    log.warning("could not read tags of %s: %s", uri, reason)
                summary = describe(stats)
                log.info("index refreshed: %s; %s", summary, shared)
                self._post(IndexRefreshed(len(index), summary, pool=self._pool(index),
                                          analysed=index.analysis_status()[1]))
                give_memory_back()
                self._analyse(index, link)
        finally:
            link.close()
            index.close()

    @staticmethod
    def _pool(index: TrackIndex) -> TrackPool:
        """Built here, in the worker: at 100,000 tracks this takes the loop a second or more."""
        return TrackPool.from_rows(index.rows())

    def _poll_shared(self, index: TrackIndex, link: MpdLink) -> None:
        """Between refreshes, take in what another machine has analysed since, for the tracks
        still without an analysis of this model (a finished library costs no reads)."""
        lacking = index.lacking_current_analysis()
        if not lacking:
            return
        try:  # only the folders of tracks still lacking one: MPD scans its stickers once a folder
            shared = read_shared(index, link, lacking)
        except FrameDaemonError as exc:
            log.debug("could not read MPD's stickers: %s", exc)
            return
        if shared is not None and shared.new:
            log.info("%d new analyses shared through MPD's stickers", shared.new)
            self._post(IndexRefreshed(len(index), describe_shared(shared), pool=self._pool(index),
                                      analysed=index.analysis_status()[1]))
            self._poll_wait_s = self.sticker_poll_s
        else:
            self._poll_wait_s = min(2 * self._poll_wait_s, max(self.sticker_poll_s, STICKER_POLL_MAX_S))

    def _share(self, index: TrackIndex, link: MpdLink) -> None:
        if self._stop.is_set():  # stopping: MPD's sticker writes are slow; the next start shares
            return
        try:
            written = share_analyses(index, link)
        except FrameDaemonError as exc:  # shared at the next batch or run
            log.warning("could not share analyses through MPD's stickers: %s", exc)
            return
        if written:
            log.info("shared %d analyses through MPD's stickers", written)

    def _analyse(self, index: TrackIndex, link: MpdLink) -> None:
        """Analyse new tracks' audio and share the results through MPD; a new refresh request or a
        stop interrupts (and resumes)."""
        folder = music_folder(self.mpd.music_directory)
        if folder is None:
            return

        def progress(p: AnalysisProgress) -> None:
            if p.done % ANALYSIS_BATCH == 0 or p.done == p.total:
                log.info("%s", p.line())
                self._share(index, link)
                self._post(IndexRefreshed(len(index), p.line(), pool=self._pool(index),
                                          analysed=index.analysis_status()[1]))

        self._share(index, link)  # what an interrupted run analysed but did not share yet
        result = analyse_pending(index, folder, workers=1, progress=progress,
                                 should_stop=lambda: self._stop.is_set() or self._refresh_due())
        if result.total:
            log.info("audio analysis: %s", result.line())
            self._share(index, link)
