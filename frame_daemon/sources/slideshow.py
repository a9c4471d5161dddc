"""The frame itself: a pygame slideshow that is one more photo source for the daemon.

Everything pygame does happens on this adapter's own render thread (SDL wants one thread for the
display): it picks the next photo from the `PhotoLibrary`, decodes it with the daemon's own safe
decoder (EXIF orientation, size guards), lays it out, cross-fades, and posts `PhotoShown` — the
same event a watched file produces, so the daemon scores it and the music follows as ever. The
daemon's loop talks to it only through `command()`, a queue the render thread reads, with the
same `CommandName` members Home Assistant's commands have (plus a few `ShowRequest`s of its own);
it tells the loop what it did itself with events (`ScreenScheduled`, `AlbumsChanged`). Neither
side ever waits for the other.

Full screen on a Pi without a desktop uses SDL's KMS/DRM driver; in a desktop session it opens a
window (or full screen). Tests and the benchmark run it with SDL_VIDEODRIVER=dummy.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pygame
from watchdog.events import FileSystemEvent, FileSystemEventHandler

from frame_daemon.errors import PhotoError
from frame_daemon.events import (
    AdapterFailed,
    AlbumsChanged,
    CommandName,
    Event,
    PhotoShown,
    ScreenScheduled,
)
from frame_daemon.mood import Mood
from frame_daemon.music.placement import LibraryShape, photo_distances
from frame_daemon.sources.display_power import DisplayPower
from frame_daemon.sources.display_schedule import DisplaySchedule
from frame_daemon.sources.folder_watch import WATCH_RETRY_S, FolderWatch
from frame_daemon.sources.frame_image import compose
from frame_daemon.sources.photo_folders import PhotoFolders
from frame_daemon.sources.photo_library import (
    PhotoLibrary,
    is_photo_name,
    open_library,
    photo_date,
    walk_photos,
)
from frame_daemon.sources.slideshow_overlay import Overlay
from frame_daemon.supervise import run_supervised
from frame_daemon.vision.photo import decode_photo

log = logging.getLogger(__name__)

FRAME_RATE = 60  # cap for fades: a dummy or KMS display has no vsync to pace us
ROOT_CHECK_S = 2.0  # how often the photo folders are looked at (an unplugged or re-mounted stick)
BACK_WAIT_S = 5.0  # a folder that is back: show its photos once rescanned, or after this long
IDLE_WAKE_S = 0.25  # pump the window's events this often while nothing happens
MAX_SKIPS = 50  # unreadable photos tried in a row before giving up until the next interval
DATES_CHECK_S = 2.0  # how often the date reader looks for photos it has not dated yet
UNSAVED_RETRY_S = 30.0  # a cache the state directory cannot take: scan, date, score again after



class NoDisplay(Exception):
    """SDL could not open a display: a setup problem to name in words, not a stack."""

    def __init__(self, driver: str, says: str) -> None:
        super().__init__(f"no display to show photos on ({driver or 'SDL'}: {says}); the frame's "
                         "user needs the video and render groups on a Pi's console, or a desktop "
                         "session (DISPLAY / WAYLAND_DISPLAY)")


def _no_display_explained(exc: Exception) -> str | None:
    return str(exc) if isinstance(exc, NoDisplay) else None

@dataclass(frozen=True)
class SlideshowOptions:
    """What the slideshow needs from `[source]` (see frame_daemon/config.py for the meanings)."""

    folders: tuple[Path, ...]
    interval_s: float = 30.0
    fade_s: float = 1.0
    fit: str = "fill"
    order: str = "shuffle"
    fullscreen: bool = True
    width: int = 0
    height: int = 0
    overlay: bool = True
    overlay_s: float = 8.0
    schedule: DisplaySchedule | None = None  # the screen's on hours; None: always on
    # Commands that power the display down and up with the screen (argv; empty: black only).
    screen_off_command: tuple[str, ...] = ()
    screen_on_command: tuple[str, ...] = ()
    screen_command_timeout_s: float = 10.0
    # Photos follow music: makes the photo scorer on the scoring thread (a model of its own:
    # a TFLite interpreter must not be shared between threads). None: the mode is unavailable.
    scorer: Callable[[], Callable[[Path], tuple[float, float]]] | None = None
    max_pixels: int = 150_000_000
    max_decode_bytes: int = 160 * 2**20


class ShowRequest(StrEnum):
    """What the render thread is asked that is not a Home Assistant command."""

    MUSIC = "music"  # the track changed: MusicNow, or None when nothing is known
    INFO = "info"  # the overlay's music lines
    CAPTURE = "capture"  # save the screen: (png path, threading.Event set when done)


@dataclass(frozen=True)
class MusicNow:
    """The track playing, for photos follow music: its mood, and the library's spread that mood
    is ranked in (`follow.library_fit` weighs rank against the absolute point)."""

    uri: str
    mood: Mood
    shape: LibraryShape
    library_fit: float


class _FolderHandler(FileSystemEventHandler):
    """Keeps the library in step with the folders (runs on watchdog's thread)."""

    def __init__(self, library: PhotoLibrary, changed: Callable[[], None],
                 folders_changed: Callable[[], None], root_changed: Callable[[], None]) -> None:
        self._library = library
        self._changed = changed
        self._folders_changed = folders_changed
        self._root_changed = root_changed
        self._roots = {str(root) for root in library.roots}

    def _added(self, path: str) -> None:
        if os.path.isdir(path):
            for photo, mtime in walk_photos(Path(path)):
                self._library.add(photo, mtime)
        elif is_photo_name(os.path.basename(path)):
            try:
                self._library.add(path, os.stat(path).st_mtime)
            except OSError:
                return
        else:
            return
        self._changed()

    def on_any_event(self, event: FileSystemEvent) -> None:
        src = os.fsdecode(event.src_path)
        if src in self._roots:
            # The photo folder itself went or moved (its stick too, perhaps): the render thread
            # looks at it now. Its photos stay cached, as for an unplugged stick.
            if event.event_type in ("deleted", "moved"):
                self._root_changed()
            return
        if event.is_directory and event.event_type in ("created", "deleted", "moved"):
            self._folders_changed()  # perhaps an album came or went
        # A file is added when it is closed after writing, not when it is created: the render
        # thread must not try (and mark bad) a photo still being copied.
        if event.event_type == "closed" or (event.event_type == "created" and event.is_directory):
            self._added(src)
        elif event.event_type == "deleted":
            self._library.remove(src)
        elif event.event_type == "moved":
            self._library.remove(src)
            self._added(os.fsdecode(event.dest_path))


class Slideshow:
    """`start()`, `stop()`, `command(name, value)`; everything else runs on its own thread."""

    def __init__(self, options: SlideshowOptions, state_dir: Path, post: Callable[[Event], None],
                 *, seed: int | None = None) -> None:
        self.options = options
        self._post = post
        self.library = open_library(state_dir / "slideshow.sqlite", options.folders,
                                    order=options.order, seed=seed)
        self._cache_problem: str | None = None  # what the daemon was told about the cache
        self.interval_s = options.interval_s
        self.paused = False
        self.screen_on = True
        self.current: str | None = None  # the photo on show
        self.message = ""  # what the screen says instead of a photo ("" = a photo is on show)
        self.fade_times_ms: list[float] = []  # frame times of the last cross-fade (for the bench)
        self.shown = 0  # photos shown since start
        self._commands: queue.SimpleQueue[tuple[CommandName | ShowRequest, Any]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._scan_wanted = threading.Event()
        self._scans_asked = 0  # scans asked for (render thread)
        self._scans_done = 0  # how many of them a finished scan covered (scan thread)
        self._show_when_scanned: tuple[int, float] | None = None  # (scan, deadline): folder back
        self._history: list[str] = []
        self._back = 0  # how far back in the history we are (previous photo)
        self._due = 0.0
        self._screen: pygame.Surface | None = None
        self._base: pygame.Surface | None = None
        self._overlay: Overlay | None = None
        self._observer: Any = None
        self._folders = PhotoFolders(self.library.roots)
        # Without a watch from the kernel (`refused`), new photos are found by a rescan every
        # WATCH_RETRY_S, when a watch is also asked for again (`_check_roots`).
        self._folder_watch = FolderWatch(log, "the photo folders", "looking for new photos every "
                                  f"{WATCH_RETRY_S:.0f} s instead", prefix="slideshow: ")
        self._roots_present: bool | None = None  # None: not looked yet
        self._next_look = 0.0  # when to look at the photo folders again
        self._helpers_started = False  # the scan and date threads (the render loop may restart)
        self._scheduled_on: bool | None = None  # what the schedule said last
        self.follow_music = False  # photos follow music: choose photos that fit the music
        self._music: MusicNow | None = None  # the music playing now
        self._scoring: threading.Thread | None = None
        self._power = DisplayPower(options.screen_on_command, options.screen_off_command,
                                   options.screen_command_timeout_s,
                                   lambda problem: post(AdapterFailed("display power", problem)))
        self._powered: bool | None = None  # what the display was last switched to
        # The album choices last told to the loop (which compares them with what it offers);
        # not listed here: this runs on the loop's thread, and a photo folder may hang.
        self._albums: list[str] | None = None
        self._thread = threading.Thread(target=self._run, name="slideshow", daemon=True)

    # ------------------------------------------------------------------ other threads
    def start(self) -> None:
        self._power.start()
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        self._wake.set()
        self._scan_wanted.set()
        self._thread.join(timeout)
        self._stop_observer()
        self._power.stop()
        self.library.close()

    def command(self, name: CommandName | ShowRequest, value: Any = None) -> None:
        """A slideshow command with its parsed value (photo_next, photo_previous, slideshow_paused,
        screen, interval, photo_order, album, photos_follow_music) or a ShowRequest. Thread-safe;
        carried out on the render thread."""
        if not isinstance(name, CommandName | ShowRequest):  # a plain string would be lost
            raise TypeError(f"not a slideshow command: {name!r}")
        self._commands.put((name, value))
        self._wake.set()

    def capture(self, path: str | os.PathLike[str], timeout: float = 10.0) -> bool:
        """Save what the screen shows as PNG (the tests and the README's screenshots use it)."""
        done = threading.Event()
        self.command(ShowRequest.CAPTURE, (str(path), done))
        return done.wait(timeout)

    # ------------------------------------------------------------------ the render thread
    def _run(self) -> None:
        def report(message: str) -> None:
            self._post(AdapterFailed("slideshow", message))

        try:
            run_supervised("the slideshow", self._show, self._stop, report,
                           explain=_no_display_explained)
        finally:
            pygame.quit()

    def _open_display(self) -> pygame.Surface:
        o = self.options
        if not os.environ.get("SDL_VIDEODRIVER") and not (os.environ.get("DISPLAY")
                                                          or os.environ.get("WAYLAND_DISPLAY")):
            os.environ["SDL_VIDEODRIVER"] = "kmsdrm"  # a Pi's console without a desktop
        try:
            pygame.display.init()
            pygame.font.init()
            pygame.display.set_caption("frame-daemon")
            if o.fullscreen and os.environ.get("SDL_VIDEODRIVER") != "dummy":
                screen = pygame.display.set_mode((o.width, o.height), pygame.FULLSCREEN)
                pygame.mouse.set_visible(False)
            else:
                screen = pygame.display.set_mode((o.width or 1920, o.height or 1080))
        except pygame.error as exc:
            raise NoDisplay(os.environ.get("SDL_VIDEODRIVER", ""), str(exc)) from None
        log.info("slideshow on %s display, %dx%d", pygame.display.get_driver(), *screen.get_size())
        return screen

    def _show(self) -> None:
        self._screen = self._open_display()
        if self.options.overlay:
            self._overlay = Overlay(self._screen.get_size(), self.options.overlay_s)
        if not self._helpers_started:  # once, not again when the render loop is restarted
            threading.Thread(target=self._scan_worker, name="slideshow-scan", daemon=True).start()
        self._request_scan()
        self._check_roots()
        self._check_cache()
        self._check_schedule()
        self._run_commands()  # the settings Home Assistant made before a restart
        self._switch_power()
        start = self.library.last_current()  # carry on where the frame was
        if not (start and self._display(start)):
            self._advance()
        # After the first photo: reading EXIF competes with its decode for the CPU.
        if not self._helpers_started:
            threading.Thread(target=self._read_dates, name="slideshow-dates", daemon=True).start()
            self._helpers_started = True
        clock = pygame.time.Clock()
        self._next_look = time.monotonic() + ROOT_CHECK_S
        while not self._stop.is_set():
            self._pump_window_events()
            self._run_commands()
            self._check_cache()
            now = time.monotonic()
            if now >= self._next_look:
                self._next_look = now + ROOT_CHECK_S
                self._check_roots()
                self._check_schedule()
            if self._show_when_scanned is not None:
                scan, deadline = self._show_when_scanned
                if self._scans_done >= scan or now >= deadline:
                    self._show_when_scanned = None
                    self._back = 0
                    self._advance()  # the photos of the folder that is back
            elif now >= self._due and not self.paused and self.screen_on:
                self._advance()
            if self._overlay is not None and self._overlay.animating(time.monotonic()):
                self._present()
                clock.tick(20)
                continue
            wait = min(IDLE_WAKE_S, max(0.0, self._due - time.monotonic()))
            self._wake.wait(wait)
            self._wake.clear()

    def _request_scan(self) -> int:
        """Ask the scan thread for a scan of every folder; returns its number."""
        self._scans_asked += 1
        self._scan_wanted.set()
        return self._scans_asked

    def _scanned(self) -> bool:
        return self._scans_done >= self._scans_asked

    def _scan_worker(self) -> None:
        """One scan at a time (two would drop each other's photos), as often as asked, and
        again while photos came or went that the cache could not take (a full state directory)."""
        while True:
            if not self._scan_wanted.wait(UNSAVED_RETRY_S) and not self.library.missed:
                continue
            if self._stop.is_set():
                return
            self._scan_wanted.clear()
            asked = self._scans_asked
            try:
                self._scan()
            finally:
                self._scans_done = asked
                self._wake.set()

    def _scan(self) -> None:
        try:
            started = time.monotonic()
            seen = self.library.scan(self._stop)
            if self.library.missed:  # the cache's problem is logged once; tried again later
                log.debug("slideshow: the scan could not save what it found (%s)",
                          self.library.problem)
                return
            log.info("slideshow: %d photos in %s (scanned in %.1f s)", seen,
                     ", ".join(map(str, self.library.roots)), time.monotonic() - started)
        except Exception:
            if self._stop.is_set():
                return  # the library closed under it at shutdown
            log.exception("slideshow: scanning the photo folders failed")

    def _read_dates(self) -> None:
        """While the order is by date: read the dates taken (EXIF) of the photos not read yet, a
        batch at a time, into the cache; a photo sorts by its file's mtime until then."""
        try:
            while not self._stop.is_set():
                batch = self.library.undated() if self.library.order == "date" else []
                if not batch:
                    self._stop.wait(DATES_CHECK_S)
                    continue
                dates = []
                for path, mtime in batch:
                    if self._stop.is_set():
                        return
                    dates.append((path, photo_date(path, mtime)))
                if not self.library.set_dates(dates):
                    self._stop.wait(UNSAVED_RETRY_S)  # not the same batch again and again
        except Exception as exc:
            if self._stop.is_set():
                return  # the library closed under it at shutdown
            log.exception("slideshow: reading the photos' dates failed")
            self._post(AdapterFailed("slideshow dates", f"{type(exc).__name__}: {exc}"))

    def _pump_window_events(self) -> None:
        for event in pygame.event.get():
            if event.type == pygame.KEYDOWN and event.key in (pygame.K_RIGHT, pygame.K_SPACE):
                self.command(CommandName.PHOTO_NEXT)
            elif event.type == pygame.KEYDOWN and event.key == pygame.K_LEFT:
                self.command(CommandName.PHOTO_PREVIOUS)

    def _run_commands(self) -> None:
        while True:
            try:
                name, value = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                self._run_command(name, value)
            except Exception:
                log.exception("slideshow command %s failed", name)

    def _run_command(self, name: CommandName | ShowRequest, value: Any) -> None:
        C, R = CommandName, ShowRequest
        match name:
            case C.PHOTO_NEXT:
                self._advance()
            case C.PHOTO_PREVIOUS:
                self._advance(back=True)
            case C.SLIDESHOW_PAUSED:
                self.paused = bool(value)
                self._due = time.monotonic() + self.interval_s  # resuming starts a full interval
            case C.SCREEN:
                self.screen_on = bool(value)
                if self.screen_on:
                    # A screen switched off before the first photo was found shows one at once.
                    self._due = time.monotonic() + (self.interval_s if self.current else 0.0)
                self._present()
                if self._powered is not None:  # at start: once the saved settings are in (_show)
                    self._switch_power()
            case C.INTERVAL:
                self.interval_s = float(value)
                self._due = min(self._due, time.monotonic() + self.interval_s)
            case C.PHOTO_ORDER:
                self.library.set_order(str(value))
            case C.ALBUM:
                self.library.set_album(str(value))
                self._history.clear()
                self._back = 0
                self._advance()
            case C.PHOTOS_FOLLOW_MUSIC:
                self.follow_music = bool(value)
                if self.follow_music:
                    self._start_scoring()
            case R.MUSIC:
                was = self._music
                changed = (value is not None) and (was is None or (value.uri, value.mood)
                                                   != (was.uri, was.mood))
                self._music = value
                if changed and self.follow_music and self.screen_on:
                    self._back = 0
                    self._advance()
            case R.INFO:
                if self._overlay is not None:
                    self._overlay.set_music(tuple(value or ()), time.monotonic())
                    self._present()
            case R.CAPTURE:
                path, done = value
                try:
                    assert self._screen is not None
                    pygame.image.save(self._screen, path)
                finally:
                    done.set()
            case _:
                log.warning("slideshow: no such command %s", name)

    def _switch_power(self) -> None:
        """Power the display down or up to match the screen (a command, if configured; the
        screen is black either way). Also at start: a display left off by a stop comes back."""
        if self.screen_on != self._powered:
            self._powered = self.screen_on
            self._power.switch(self.screen_on)

    def _check_schedule(self) -> None:
        """Turn the screen on or off when the schedule crosses a boundary (and at start); in
        between, the screen switch in Home Assistant overrides it."""
        schedule = self.options.schedule
        if schedule is None:
            return
        on = schedule.is_on(datetime.now().time())
        if on == self._scheduled_on:
            return
        self._scheduled_on = on
        log.info("slideshow: screen %s by the display schedule", "on" if on else "off")
        self._run_command(CommandName.SCREEN, on)
        self._post(ScreenScheduled(on))  # the loop remembers it and echoes it to Home Assistant

    # ------------------------------------------------------------------ photos follow music
    def _start_scoring(self) -> None:
        if self._scoring is None and self.options.scorer is not None:
            self._scoring = threading.Thread(target=self._score_photos, name="slideshow-score",
                                             daemon=True)
            self._scoring.start()

    def _score_photos(self) -> None:
        """Score every photo's mood in the background, a batch at a time, and keep at it as
        photos arrive; unreadable photos are left to the render thread to report."""
        assert self.options.scorer is not None
        try:
            score = self.options.scorer()
            while not self._stop.is_set():
                batch = self.library.unscored()
                if not batch:
                    self._stop.wait(5.0)
                    continue
                for path in batch:
                    if self._stop.is_set():
                        return
                    try:
                        valence, arousal = score(Path(path))
                    except PhotoError as exc:
                        self.library.mark_bad(path, exc.reason)
                        continue
                    if not self.library.set_mood(path, valence, arousal):
                        self._stop.wait(UNSAVED_RETRY_S)  # not the same batch again and again
                        break
        except Exception as exc:
            if self._stop.is_set():
                return  # the library closed under it at shutdown
            log.exception("slideshow: scoring the photos failed")
            self._post(AdapterFailed("slideshow photo scoring", f"{type(exc).__name__}: {exc}"))

    def _fitting_photo(self) -> str | None:
        """In photos-follow-music mode, a photo that fits the music (not one shown lately): the
        track's place in the music library, taken to the same place among this album's photos."""
        music = self._music
        if not (self.follow_music and music is not None):
            return None
        paths, valence, arousal = self.library.scored()
        distances = photo_distances(music.mood, music.shape, valence, arousal, music.library_fit)
        recent = set(self._history[-max(1, min(50, self.library.count() // 3)):])
        path = self.library.choose_nearest(paths, list(distances), avoid=recent)
        log.debug("slideshow: %s (v %+.2f, a %+.2f) picks %s of %d scored photos", music.uri,
                  music.mood.valence, music.mood.arousal, path, len(paths))
        return path

    # ------------------------------------------------------------------ folders
    def _check_roots(self) -> None:
        """Notice a photo folder that went (an unplugged stick, an empty mount point left behind)
        or came back (plugged in again, re-mounted, replaced by another folder, or its watch died):
        say so in the log, on screen and to the daemon, and rescan what came back."""
        changes = self._folders.look()
        present = bool(self._folders.present())
        for change in changes:
            if change.here:
                log.info("slideshow: photo folder %s is back%s; rescanning it", change.folder,
                         " (another filesystem or folder in its place)" if change.replaced else "")
            else:
                log.warning("slideshow: photo folder %s is gone (unplugged?); its photos stay "
                            "cached, and the slideshow goes on when it is back", change.folder)
                self._post(AdapterFailed("slideshow", f"photo folder {change.folder} is gone "
                                                      "(unplugged?); waiting for it"))
        died = self._observer is not None and not (self._observer.is_alive() and all(
            emitter.is_alive() for emitter in self._observer.emitters))
        if died:
            log.warning("slideshow: the watch on the photo folders stopped; watching and "
                        "rescanning them again")
        back = [change.folder for change in changes if change.here]
        retry = present and self._observer is None and self._folder_watch.due
        if changes or died or retry:
            unwatched = self._folder_watch.refused is not None
            self._start_observer()  # on the folders there now, or none
            self._check_albums()  # changed while a folder was away
            if unwatched and not (changes or died):
                self._request_scan()  # without a watch, photos that came are found by a scan
        if (back or died) and present:
            scan = self._request_scan()  # catch up with what changed meanwhile
            if back and (self.message or not (self.current and os.path.exists(self.current))):
                # Say so until its photos are found, and show them then.
                self._show_when_scanned = (scan, time.monotonic() + BACK_WAIT_S)
                self._show_message(f"The photo folder {', '.join(map(str, back))} is back.\n"
                                   "Looking for its photos ...")
        elif not present and changes:
            self._show_message(f"The photo folder {self._folders_text()} is gone: it is not "
                               "there.\nUnplugged? The slideshow goes on when it is back.")
        self._roots_present = present

    def _check_cache(self) -> None:
        """Tell the daemon once when the photo cache cannot be written (the photos go on)."""
        problem = self.library.problem
        if problem != self._cache_problem:
            self._cache_problem = problem
            if problem is not None:
                self._post(AdapterFailed("slideshow", f"photo cache not saved: {problem}; the "
                                                      "photos go on"))

    def _look_now(self) -> None:
        """A photo folder itself was deleted or moved (watchdog's thread): look at once."""
        self._next_look = 0.0
        self._wake.set()

    def _folders_text(self) -> str:
        return ", ".join(map(str, self.library.roots))

    def _start_observer(self) -> None:
        self._stop_observer()
        present = self._folders.present()
        if not present:
            return
        handler = _FolderHandler(self.library, self._photos_changed, self._check_albums,
                                 self._look_now)
        self._observer = self._folder_watch.start("slideshow-watch", handler, present, recursive=True)

    def _stop_observer(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(1.0)
            self._observer = None

    def _check_albums(self) -> None:
        """When a subfolder of the photo folders came or went, Home Assistant's album select
        must offer it (or stop offering it): the daemon announces its discovery again, as it
        does when Home Assistant comes back online."""
        albums = self.library.albums()
        if albums != self._albums:
            self._albums = albums
            log.info("slideshow: the albums are now %s", ", ".join(albums))
            self._post(AlbumsChanged(tuple(albums)))  # Home Assistant's album select must offer them

    def _photos_changed(self) -> None:
        if self.message:  # an empty folder got its first photo
            self._due = 0.0
            self._wake.set()

    # ------------------------------------------------------------------ photos
    def _advance(self, back: bool = False) -> None:
        """Show the previous photo, or the next one (from the history after going back)."""
        self._due = time.monotonic() + self.interval_s
        if back:
            if self._back + 1 < len(self._history):
                self._back += 1
                self._display(self._history[-1 - self._back], remember=False)
            return
        if self._back > 0:
            self._back -= 1
            self._display(self._history[-1 - self._back], remember=False)
            return
        # Whether the scan had ended *before* the library was asked: one that ends (or adds the
        # first photos) while it is asked would otherwise leave the screen empty until the next
        # interval, an hour by default (the first photo never came, 1 in 4 runs of the tests).
        scanned = self._scanned()
        for _ in range(MAX_SKIPS):
            path = self._fitting_photo() or self.library.next(self.current)
            if path is None:
                break
            if self._display(path):
                return
            if not self._roots_present:
                return
        if not self._roots_present:
            return
        if not scanned:
            if self.library.count() == 0:
                self._show_message(f"Looking for photos in {self._folders_text()} ...")
            self._due = time.monotonic() + 0.2  # the scan may be adding them right now
        elif self.library.count() == 0:
            self._show_message(f"No photos in {self._folders_text()} yet.\n"
                               "Add some and they appear here.")

    def _display(self, path: str, remember: bool = True) -> bool:
        """Decode, lay out, fade in and announce one photo; False if it cannot be shown."""
        assert self._screen is not None
        size = self._screen.get_size()
        need = max(size) if self.options.fit == "fill" else min(size)
        try:
            photo = decode_photo(path, need, self.options.max_pixels, self.options.max_decode_bytes)
        except PhotoError as exc:
            if not os.path.lexists(path):
                if self._folders.unchanged(path):
                    self.library.remove(path)  # deleted: the watcher may not have told us yet
                else:  # its folder went, or another took its place: keep it, and look now
                    self._next_look = 0.0
                return False
            log.warning("slideshow: skipping %s: %s", path, exc.reason)
            self.library.mark_bad(path, exc.reason)
            return False
        framed = compose(photo.image, size, self.options.fit)
        surface = pygame.image.frombytes(framed.tobytes(), size, "RGB").convert()
        self.message = ""
        self.current = path
        if remember:
            self._history.append(path)
            del self._history[:-100]
            self.library.remember_current(path)
        if self._overlay is not None:
            self._overlay.set_photo(Path(path).stem, photo.taken, time.monotonic())
        self._fade_to(surface)
        self.shown += 1
        self._post(PhotoShown(Path(path)))
        return True

    def _show_message(self, text: str) -> None:
        assert self._screen is not None
        surface = pygame.Surface(self._screen.get_size()).convert()
        surface.fill((0, 0, 0))
        font = pygame.font.Font(None, max(24, self._screen.get_height() // 20))
        lines = text.split("\n")
        y = (surface.get_height() - len(lines) * font.get_linesize()) // 2
        for line in lines:
            rendered = font.render(line, True, (230, 230, 230))
            surface.blit(rendered, ((surface.get_width() - rendered.get_width()) // 2, y))
            y += font.get_linesize()
        self.message = text
        self.current = None
        self._base = surface
        self._present()

    def _fade_to(self, surface: pygame.Surface) -> None:
        assert self._screen is not None
        old = self._base
        self._base = surface
        self.fade_times_ms = []
        if old is None or self.options.fade_s <= 0 or not self.screen_on:
            self._present()
            return
        clock = pygame.time.Clock()
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < self.options.fade_s:
            t0 = time.perf_counter()
            self._screen.blit(old, (0, 0))
            surface.set_alpha(round(255 * elapsed / self.options.fade_s))
            self._screen.blit(surface, (0, 0))
            pygame.display.flip()
            self.fade_times_ms.append((time.perf_counter() - t0) * 1000)
            clock.tick(FRAME_RATE)
        surface.set_alpha(None)
        self._present()

    def _present(self) -> None:
        """Draw the screen: the photo (or message), the overlay over it; black when off."""
        assert self._screen is not None
        if not self.screen_on:
            self._screen.fill((0, 0, 0))
        elif self._base is not None:
            self._screen.blit(self._base, (0, 0))
            if self._overlay is not None and not self.message:
                self._overlay.draw(self._screen, time.monotonic())
        pygame.display.flip()
