"""Notice the photo the frame shows: a file or symlink it rewrites, or the newest image in a folder.

A watchdog observer watches the folder (not the file: atomic renames and `ln -sfn` replace the
file's inode, and a watch on the old inode would go deaf). Its callback only notes that something
changed and wakes this adapter's own thread, which waits until the folder has been quiet for
`settle_s`, checks the file is complete and new, and posts one `PhotoShown` per change.
A rename onto the watched name (atomic replace, `ln -sfn`) or a close after writing says the file
is complete, so then only a short coalescing pause is needed: that keeps photo-to-music latency
low for well-behaved frame software without trusting half-written files from others.

A watch on a folder whose stick is unplugged, or mounted again, goes deaf without a word (the
inotify watch belongs to the old filesystem), so the folder is also looked at about once a second
(`PhotoFolders`: its device and inode, and whether it is still a mount point): gone and back are
logged, and when it is back it is watched afresh and its photo looked at.

When the kernel gives no watch (its inotify limits: `folder_watch`), the photo is looked at once a
second instead, and a watch is asked for again every WATCH_RETRY_S: the music still follows, a
second or so later.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from frame_daemon.events import AdapterFailed, Event, PhotoShown
from frame_daemon.sources.folder_watch import FolderWatch
from frame_daemon.sources.photo_folders import PhotoFolders
from frame_daemon.supervise import run_supervised

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff",
                            ".heic", ".heif", ".avif"})
COALESCE_S = 0.02  # after a "file complete" event: just gather the rest of the burst
_TEMP_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".crdownload", ".swp", ".download", "~")


def is_candidate_name(name: str) -> bool:
    """A name a frame might show: not hidden, not a temp or partial download."""
    lower = name.lower()
    return not (lower.startswith((".", "~", "#")) or lower.endswith(_TEMP_SUFFIXES))


def is_photo_name(name: str) -> bool:
    """A candidate name with a photo's suffix: the only files a folder source shows."""
    return is_candidate_name(name) and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


@dataclass(frozen=True, slots=True)
class _Signature:
    """What identifies one version of a photo: its resolved path, inode, size and mtime."""

    path: str
    inode: int
    size: int
    mtime_ns: int


def _signature(path: Path) -> _Signature | None:
    """None if nothing is there; a broken symlink gets size -1 and its own path."""
    try:
        st = path.stat()  # follows the symlink: a repointed link has a new signature
        return _Signature(str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)
    except OSError:
        pass
    try:  # a dangling or looping symlink: the frame shows nothing we can read, say so
        st = path.lstat()
        return _Signature(str(path), st.st_ino, -1, st.st_mtime_ns) if path.is_symlink() else None
    except OSError:
        return None


def newest_image(folder: Path) -> Path | None:
    """The most recently modified image file directly in `folder` (its arrival at the latest)."""
    best: tuple[int, str] | None = None
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return None
    for entry in entries:
        if not is_photo_name(entry.name):
            continue
        try:
            if not entry.is_file():
                continue
            st = entry.stat()
            # A modification time in the future (a camera's clock, kept by `cp -p` or unzip)
            # would be the newest for ever: no time past the file's arrival (ctime) counts.
            key = (min(st.st_mtime_ns, st.st_ctime_ns), entry.name)
        except OSError:
            continue
        if best is None or key > best:
            best = key
    return folder / best[1] if best else None


class _Handler(FileSystemEventHandler):
    def __init__(self, relevant: Callable[[str], bool], wake: Callable[[bool], None]) -> None:
        self._relevant = relevant
        self._wake = wake

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        paths = [os.fsdecode(event.src_path)]
        if getattr(event, "dest_path", ""):
            paths.append(os.fsdecode(event.dest_path))
        if any(self._relevant(p) for p in paths):
            # A rename onto the name, or a close after writing: the file is complete.
            self._wake(event.event_type in ("moved", "closed"))


class PhotoWatcher:
    """Posts `PhotoShown` when the shown photo changes. `start()`, `stop()`, own named thread."""

    def __init__(self, kind: str, path: str | os.PathLike[str], settle_s: float,
                 post: Callable[[Event], None], *, poll_s: float = 0.05) -> None:
        if kind not in ("file", "folder"):
            raise ValueError(f"unknown source kind {kind!r}")
        self.kind = kind
        self.path = Path(path).expanduser().absolute()
        self.folder = self.path if kind == "folder" else self.path.parent
        self.settle_s = settle_s
        self._post = post
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._last_event = 0.0
        self._complete = False
        self._last_posted: _Signature | None = None
        self._observer: Observer | None = None
        self._folders = PhotoFolders([self.folder])
        self._looked = False
        # Without a watch from the kernel (`refused`) the photo is polled.
        self._folder_watch = FolderWatch(log, str(self.folder), "looking at it every second instead")
        self._thread = threading.Thread(target=self._run, name="photo-watch", daemon=True)

    def _relevant(self, path: str) -> bool:
        p = Path(path)
        if self.kind == "file":
            return p == self.path
        # Only photos' names: a log, a video being synced, any file written for minutes beside
        # the photos would keep the folder from ever being quiet, and no new photo would be seen.
        return p.parent == self.folder and is_photo_name(p.name)

    def _note_change(self, complete: bool = False) -> None:
        self._last_event = time.monotonic()
        self._complete = complete
        self._wake.set()

    def start(self) -> None:
        if not self.folder.is_dir():
            # Not fatal: the frame software may create it later; we poll for it.
            there = self.folder.exists() or self.folder.is_symlink()  # a file, a looping link
            log.warning("photo source folder %s %s; waiting for it", self.folder,
                        "is not a folder" if there else "does not exist yet")
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self._stop_observer()

    def _start_observer(self) -> bool:
        if not (self._folders.present() and self._folder_watch.due):
            return False
        self._observer = self._folder_watch.start("watchdog", _Handler(self._relevant, self._note_change),
                                           [self.folder], recursive=False)
        if self._observer is None:
            return False
        log.info("watching %s (%s)", self.path, self.kind)
        return True

    def _stop_observer(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(1.0)
            self._observer = None

    def _run(self) -> None:
        def report(message: str) -> None:
            self._stop_observer()  # started afresh by the next round
            self._post(AdapterFailed("photo watcher", message))

        run_supervised("the photo watcher", self._watch, self._stop, report)

    def _watch(self) -> None:
        # Whatever is on show at start-up counts as a change: the music should fit it at once.
        self._note_change()
        while not self._stop.is_set():
            self._look()
            polling = False
            if self._observer is None and not self._start_observer():
                if self._folder_watch.refused is None or not self._folders.present():
                    self._stop.wait(1.0)
                    self._note_change()
                    continue
                polling = True  # no watch to be had: look at the photo every second instead
            if self._observer is not None and not self._observer.is_alive():
                log.warning("watch on %s stopped (folder removed?); restarting", self.folder)
                self._stop_observer()
                continue
            self._wake.wait(1.0)
            if self._stop.is_set():
                break
            if not self._wake.is_set():
                if not polling:
                    continue
                self._note_change()
            # Debounce: wait until nothing has happened for settle_s.
            complete = self._complete
            needed = min(COALESCE_S, self.settle_s) if complete else self.settle_s
            quiet = time.monotonic() - self._last_event
            if quiet < needed:
                self._stop.wait(min(needed - quiet, self._poll_s * 4) + 0.001)
                continue
            self._wake.clear()
            self._check(complete)

    def _look(self) -> None:
        """Notice the folder gone (unplugged, unmounted) or back (another stick or folder in its
        place, too): the watch on the old one hears nothing, so start afresh."""
        first, self._looked = not self._looked, True
        for change in self._folders.look():
            self._stop_observer()  # started again on the folder there now
            self._note_change()
            if change.here:
                log.info("photo folder %s is back%s; watching it again", change.folder,
                         " (another filesystem or folder in its place)" if change.replaced else "")
            elif not first:  # a folder missing at start is waited for (`start` said so)
                log.warning("photo folder %s is gone (unplugged?); waiting for it", change.folder)
                self._post(AdapterFailed("photo watcher", f"photo folder {change.folder} is gone "
                                                          "(unplugged?); waiting for it"))

    def _current_photo(self) -> Path | None:
        if self.kind == "folder":
            return newest_image(self.folder)
        return self.path if self.path.exists() or self.path.is_symlink() else None

    def _check(self, complete: bool) -> None:
        photo = self._current_photo()
        if photo is None:
            return
        sig = _signature(photo)
        if sig is None:
            return  # vanished: a later write wakes us again
        if sig == self._last_posted:
            return  # touched or re-announced, but the same photo: score once per change
        if not complete or sig.size <= 0:
            # Empty, a FIFO or a broken link may be a file still being made: if it stays so,
            # it is handed over all the same, so the loader names the problem in the log and in
            # Home Assistant. A writer that pauses longer than settle_s would leave a partial
            # file: confirm the size is stable over one more short poll before handing it over.
            self._stop.wait(self._poll_s)
            if _signature(photo) != sig:
                self._note_change()
                return
        self._last_posted = sig
        log.debug("photo changed: %s", photo)
        self._post(PhotoShown(Path(sig.path) if self.kind == "file" else photo))
