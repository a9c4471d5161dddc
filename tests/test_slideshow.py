"""The built-in slideshow, headless (SDL's dummy video driver): real JPEGs on disk, the real
decoder, the real watchdog observer and SQLite cache; the screen is saved as PNG and looked at."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from datetime import datetime, time, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import gradient_photo
from kernel_limits import inotify_exhausted
from servers import wait_for

os.environ["SDL_VIDEODRIVER"] = "dummy"
pytest.importorskip("pygame", reason="the slideshow needs pygame (pip install '.[slideshow]')")

from frame_daemon.config import parse_config
from frame_daemon.events import AdapterFailed, CommandName, PhotoShown, ScreenScheduled
from frame_daemon.mood import Mood
from frame_daemon.music.placement import LibraryShape
from frame_daemon.settings_store import SettingsStore
from frame_daemon.slideshow_control import SlideshowControl
from frame_daemon.sources import folder_watch
from frame_daemon.sources import slideshow as slideshow_module
from frame_daemon.sources.display_schedule import DisplaySchedule
from frame_daemon.sources.photo_library import PhotoLibrary
from frame_daemon.sources.slideshow import MusicNow, ShowRequest, Slideshow, SlideshowOptions

C, R = CommandName, ShowRequest

SCREEN = (640, 360)


class Shown:
    """Collects what the slideshow posts, thread-safely."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.events: list = []
        self._lock = threading.Lock()

    def __call__(self, event) -> None:
        self.events.append(event)
        if isinstance(event, PhotoShown):
            with self._lock:
                self.paths.append(event.path.name)

    def count(self) -> int:
        with self._lock:
            return len(self.paths)


def solid(path: Path, size: tuple[int, int], colour: tuple[int, int, int]) -> Path:
    Image.new("RGB", size, colour).save(path, quality=95)
    return path


def start(folder: Path, state: Path, **options) -> tuple[Slideshow, Shown]:
    shown = Shown()
    opts = dict(interval_s=3600.0, fade_s=0.0, fit="fit", width=SCREEN[0], height=SCREEN[1],
                overlay=False)
    opts.update(options)
    show = Slideshow(SlideshowOptions(folders=(folder,), **opts), state, shown, seed=3)
    show.start()
    return show, shown


def screenshot(show: Slideshow, tmp_path: Path, name: str = "screen.png") -> Image.Image:
    png = tmp_path / name
    assert show.capture(png), "the render thread did not save the screen"
    return Image.open(png).convert("RGB")


def near(pixel, colour, tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


@pytest.fixture
def show_in():
    """Start slideshows; they are stopped after the test whatever happens."""
    started: list[Slideshow] = []

    def run(folder: Path, state: Path, **options) -> tuple[Slideshow, Shown]:
        show, shown = start(folder, state, **options)
        started.append(show)
        return show, shown

    yield run
    for show in started:
        # Until its render thread has ended: pygame is one per process, and a thread still ending
        # would quit the display of the next test's slideshow under it (its first photo then
        # came late, in the full suite only).
        show.stop(timeout=15.0)


def test_a_landscape_photo_is_centred_between_black_bars(tmp_path, show_in):
    folder = tmp_path / "photos"
    folder.mkdir()
    solid(folder / "red.jpg", (800, 600), (220, 30, 30))  # 4:3 on 16:9: bars left and right
    show, shown = show_in(folder, tmp_path / "state")
    wait_for(lambda: shown.count() == 1, what="the first photo")
    screen = screenshot(show, tmp_path)
    assert screen.size == SCREEN
    # 480x360 in the middle: x 80..560.
    assert near(screen.getpixel((320, 180)), (220, 30, 30))
    assert near(screen.getpixel((90, 10)), (220, 30, 30)) and near(screen.getpixel((550, 350)),
                                                                   (220, 30, 30))
    assert screen.getpixel((40, 180)) == (0, 0, 0) and screen.getpixel((600, 180)) == (0, 0, 0)


def upright_portrait() -> Image.Image:
    """600x900, red top half, blue bottom half: which way up it shows is plain to see."""
    im = Image.new("RGB", (600, 900), (30, 30, 220))
    im.paste((220, 30, 30), (0, 0, 600, 450))
    return im


def test_the_first_photo_shows_when_the_scan_adds_it_while_the_library_is_asked(
        tmp_path, show_in, monkeypatch):
    """The race behind the first photo that never came: the render thread asks the library for a
    photo (none yet), the scan adds the first one and ends before the thread looks at the count,
    and nothing asked for another look before the interval (an hour). The scan is held until the
    first ask, and the ask answers only once the scan is over: the race, every time."""
    asked = threading.Event()
    shows: list[Slideshow] = []
    real_next, real_scan = PhotoLibrary.next, PhotoLibrary.scan

    def scan(library, stop=None):
        asked.wait(10)
        return real_scan(library, stop)

    def next_photo(library, current=None):
        found = real_next(library, current)
        if not asked.is_set():
            asked.set()
            wait_for(lambda: shows and shows[0]._scanned(), what="the scan over")
        return found

    monkeypatch.setattr(PhotoLibrary, "scan", scan)
    monkeypatch.setattr(PhotoLibrary, "next", next_photo)
    folder = tmp_path / "photos"
    folder.mkdir()
    solid(folder / "red.jpg", (64, 48), (220, 30, 30))
    show, shown = show_in(folder, tmp_path / "state")
    shows.append(show)
    wait_for(lambda: shown.count() == 1, what="the first photo, though the scan ended meanwhile")


def test_exif_orientation_turns_the_photo_upright(tmp_path, show_in):
    folder = tmp_path / "photos"
    folder.mkdir()
    # Stored on its side, as a phone writes it, with the tag that says "turn me 90° clockwise".
    stored = upright_portrait().transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(folder / "sideways.jpg", exif=exif, quality=95)
    show, shown = show_in(folder, tmp_path / "state")
    wait_for(lambda: shown.count() == 1, what="the photo")
    screen = screenshot(show, tmp_path)
    # Upright portrait, fitted: 240x360 in the middle (x 200..440), red above blue.
    assert near(screen.getpixel((320, 60)), (220, 30, 30))
    assert near(screen.getpixel((320, 300)), (30, 30, 220))
    assert screen.getpixel((100, 180)) == (0, 0, 0)


def test_fill_puts_a_blurred_copy_behind_a_portrait_photo(tmp_path, show_in):
    folder = tmp_path / "photos"
    folder.mkdir()
    upright_portrait().save(folder / "portrait.jpg", quality=95)
    show, shown = show_in(folder, tmp_path / "state", fit="fill")
    wait_for(lambda: shown.count() == 1, what="the photo")
    screen = screenshot(show, tmp_path)
    assert near(screen.getpixel((320, 60)), (220, 30, 30))  # the photo itself, sharp
    assert near(screen.getpixel((320, 300)), (30, 30, 220))
    # The sides are filled with the photo's colours, darkened: no black bars.
    left_top, left_bottom = screen.getpixel((50, 20)), screen.getpixel((50, 340))
    assert left_top[0] > 60 and left_top[0] > 2 * left_top[2], left_top
    assert left_bottom[2] > 60 and left_bottom[2] > 2 * left_bottom[0], left_bottom
    assert max(left_top) < 220 and max(left_bottom) < 220  # darker than the photo


def test_the_overlay_shows_the_photo_and_the_music_then_fades(tmp_path, show_in):
    folder = tmp_path / "photos"
    folder.mkdir()
    solid(folder / "green.jpg", SCREEN, (40, 160, 40))  # fills the screen exactly
    show, shown = show_in(folder, tmp_path / "state", overlay=True, overlay_s=1.0)
    wait_for(lambda: shown.count() == 1, what="the photo")
    show.command(R.INFO, ("Clair de Lune - Debussy", "calm"))
    screen = screenshot(show, tmp_path)
    corner = screen.crop((0, SCREEN[1] * 2 // 3, SCREEN[0] // 2, SCREEN[1]))
    pixels = np.asarray(corner).reshape(-1, 3)
    assert (pixels.min(axis=1) > 200).any(), "no light text in the overlay's corner"
    assert (pixels[:, 1] < 100).any(), "no dark panel behind the text"

    def corner_is_photo() -> bool:
        later = np.asarray(screenshot(show, tmp_path, "later.png").crop((0, 240, 320, 360)))
        return bool((np.abs(later.astype(int) - (40, 160, 40)) <= 12).all())

    # Faded after overlay_s (+1 s fade): the corner is the photo again.
    wait_for(corner_is_photo, timeout=6.0, interval=0.2, what="the overlay to fade out")


def test_next_and_previous_walk_the_photos(tmp_path, show_in):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(4):
        solid(folder / f"p{i}.jpg", (64, 48), (60 * i, 20, 20))
    show, shown = show_in(folder, tmp_path / "state", order="name")
    wait_for(lambda: shown.count() == 1, what="the first photo")
    show.command(C.PHOTO_NEXT)
    show.command(C.PHOTO_NEXT)
    wait_for(lambda: shown.count() == 3, what="two more photos")
    show.command(C.PHOTO_PREVIOUS)
    wait_for(lambda: shown.count() == 4, what="the previous photo")
    show.command(C.PHOTO_NEXT)
    wait_for(lambda: shown.count() == 5, what="forward again")
    assert shown.paths == ["p0.jpg", "p1.jpg", "p2.jpg", "p1.jpg", "p2.jpg"]


def test_shuffle_shows_every_photo_once_before_repeating_and_across_restarts(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(10):
        (folder / f"p{i}.jpg").write_bytes(b"x")  # the library only looks at names
    db = tmp_path / "state" / "slideshow.sqlite"
    first = PhotoLibrary(db, [folder], seed=1)
    first.scan()
    picked = [first.next() for _ in range(6)]
    first.close()
    again = PhotoLibrary(db, [folder], seed=2)  # a restart: another random generator
    picked += [again.next() for _ in range(4)]
    assert sorted(picked) == sorted(str(p) for p in folder.iterdir())
    second_round = [again.next() for _ in range(10)]
    assert sorted(second_round) == sorted(picked)
    again.close()


def exif_dated(path: Path, colour: tuple[int, int, int], original: str | None = None,
               plain: str | None = None, mtime: str = "2000-01-01T12:00:00") -> Path:
    """A JPEG with EXIF DateTimeOriginal and/or DateTime, and a file mtime of its own."""
    exif = Image.Exif()
    if original:
        exif.get_ifd(0x8769)[0x9003] = original  # DateTimeOriginal, in the Exif sub-IFD
    if plain:
        exif[0x0132] = plain  # DateTime
    Image.new("RGB", (64, 48), colour).save(path, exif=exif, quality=95)
    stamp = datetime.fromisoformat(mtime).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def test_date_order_is_the_date_taken_else_the_files_mtime(tmp_path, show_in):
    folder = tmp_path / "photos"
    folder.mkdir()
    # Names, mtimes and dates taken all disagree.
    exif_dated(folder / "a.jpg", (200, 0, 0), original="2019:05:01 10:00:00", mtime="2024-01-01")
    exif_dated(folder / "b.jpg", (0, 200, 0), original="2015:01:01 10:00:00",
               plain="2025:03:03 10:00:00", mtime="2025-01-01")  # DateTimeOriginal wins
    exif_dated(folder / "c.jpg", (0, 0, 200), mtime="2017-01-01")  # no EXIF date: its mtime
    exif_dated(folder / "d.jpg", (200, 200, 0), plain="2021:07:07 07:00:00", mtime="2010-01-01")
    show, shown = show_in(folder, tmp_path / "state", order="date")
    wait_for(lambda: shown.count() == 1 and not show.library.undated(), timeout=15,
             what="the first photo and every date taken read in the background")
    for n in range(2, 10):
        show.command(C.PHOTO_NEXT)
        wait_for(lambda n=n: shown.count() == n, what=f"photo {n}")
    walk = shown.paths[1:]  # the order wraps around: start it at the oldest
    walk = walk[walk.index("b.jpg"):][:4]
    assert walk == ["b.jpg", "c.jpg", "a.jpg", "d.jpg"], shown.paths


# The photo cache as written before the date taken was kept (a real user's file to upgrade).
OLD_SCHEMA = """
CREATE TABLE photos (path TEXT PRIMARY KEY, mtime REAL NOT NULL, key REAL NOT NULL,
    round INTEGER NOT NULL, bad TEXT, scan INTEGER NOT NULL, valence REAL, arousal REAL);
CREATE INDEX photos_shuffle ON photos (round, key);
CREATE INDEX photos_mtime ON photos (mtime, path);
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def test_an_old_cache_is_upgraded_in_place_keeping_the_shuffle_and_settings_to_move(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    paths = [str(exif_dated(folder / f"p{i}.jpg", (20 * i, 0, 0), mtime=f"201{i}-01-01"))
             for i in range(6)]
    db_path = tmp_path / "state" / "slideshow.sqlite"
    db_path.parent.mkdir()
    with sqlite3.connect(db_path) as db:
        db.executescript(OLD_SCHEMA)
        # Round 3: p0..p2 shown in it already, p3..p5 still to come (p5 first by its key).
        db.executemany("INSERT INTO photos VALUES (?, ?, ?, ?, NULL, 1, NULL, NULL)",
                       [(p, os.stat(p).st_mtime, 1 - i / 10, 3 if i < 3 else 2)
                        for i, p in enumerate(paths)])
        db.executemany("INSERT INTO meta VALUES (?, ?)", [
            ("round", "3"), ("scan", "1"), ("current", paths[2]), ("order", "shuffle"),
            ("setting.interval_s", "45.0")])
    db.close()
    library = PhotoLibrary(db_path, [folder], order="shuffle", seed=5)
    try:
        # For the settings store (settings.json), which takes them over once.
        assert library.old_settings() == {"order": "shuffle", "interval_s": 45.0}
        assert library.last_current() == paths[2]
        assert [library.next() for _ in range(3)] == [paths[5], paths[4], paths[3]]
        assert len(library.undated(10)) == 6  # dates not read yet
        library.set_dates([(paths[0], 1.0)])
        library.set_order("date")
        assert library.next() == paths[0]  # the date just read: before every mtime
    finally:
        library.close()


# The first cache's schema, before photos had a mood (photos follow music) or a date taken.
FIRST_SCHEMA = """
CREATE TABLE photos (path TEXT PRIMARY KEY, mtime REAL NOT NULL, key REAL NOT NULL,
    round INTEGER NOT NULL, bad TEXT, scan INTEGER NOT NULL);
CREATE INDEX photos_shuffle ON photos (round, key);
CREATE INDEX photos_mtime ON photos (mtime, path);
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def test_the_first_cache_format_is_upgraded_in_place_and_counts_its_steps(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    photo = str(solid(folder / "p.jpg", (32, 24), (200, 0, 0)))
    db_path = tmp_path / "state" / "slideshow.sqlite"
    db_path.parent.mkdir()
    with sqlite3.connect(db_path) as db:
        db.executescript(FIRST_SCHEMA)
        db.execute("INSERT INTO photos VALUES (?, ?, 0.5, 1, NULL, 1)", (photo, 1.0))
        db.execute("INSERT INTO meta VALUES ('current', ?)", (photo,))
    db.close()
    library = PhotoLibrary(db_path, [folder], seed=5)
    try:
        assert library.last_current() == photo and library.count() == 1
        assert library.unscored() == [photo]
        library.set_mood(photo, 0.5, -0.5)
        assert library.scored() == ([photo], [0.5], [-0.5])
        assert library.undated(10) == [(photo, 1.0)]
    finally:
        library.close()
    with sqlite3.connect(db_path) as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    db.close()
    assert version == 5 and "photos_mtime" not in indexes and "photos_date" in indexes
    PhotoLibrary(db_path, [folder]).close()  # opened again: nothing left to do


def test_a_corrupt_cache_is_moved_aside_with_one_log_line(tmp_path, caplog):
    folder = tmp_path / "photos"
    folder.mkdir()
    photo = str(solid(folder / "p.jpg", (32, 24), (200, 0, 0)))
    db_path = tmp_path / "state" / "slideshow.sqlite"
    db_path.parent.mkdir()
    db_path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)  # a header, then garbage
    with caplog.at_level(logging.WARNING):
        library = PhotoLibrary(db_path, [folder], seed=5)
    try:
        assert library.scan() == 1 and library.next() == photo
    finally:
        library.close()
    aside = [p.name for p in db_path.parent.iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 1
    assert [r.getMessage() for r in caplog.records] == [
        f"photo cache {db_path} is corrupt (file is not a database); moved it to {aside[0]} and "
        "scanning the photo folders again"]


def test_settings_an_older_version_kept_in_the_photo_cache_move_to_the_settings_store(tmp_path):
    folder = tmp_path / "photos"
    (folder / "trip").mkdir(parents=True)
    solid(folder / "home.jpg", (64, 48), (200, 30, 30))
    solid(folder / "trip" / "beach.jpg", (64, 48), (30, 30, 200))
    state = tmp_path / "state"
    PhotoLibrary(state / "slideshow.sqlite", [folder]).close()
    with sqlite3.connect(state / "slideshow.sqlite") as db:  # as versions before the store left it
        db.executemany("INSERT INTO meta VALUES (?, ?)", [
            ("order", "date"), ("album", "trip"), ("setting.interval_s", "45.0"),
            ("setting.paused", "ON"), ("setting.screen", "OFF"), ("setting.follow_music", "OFF")])
    db.close()
    cfg = parse_config({"source": {"kind": "slideshow", "path": str(folder), "fade_s": 0.0,
                                   "width": SCREEN[0], "height": SCREEN[1], "overlay": False,
                                   "photos_follow_music": True},
                        "state": {"directory": str(state)}})
    store = SettingsStore.in_directory(state, cfg.follow, source=cfg.source)
    store.load()
    control = SlideshowControl(cfg, Shown(), settings=store)
    control.start()
    try:
        moved = {"interval": 45.0, "photo_order": "date", "album": "trip",
                 "slideshow_paused": True, "screen": False, "photos_follow_music": False}
        assert control.state() == moved
        assert (control.show.library.order, control.show.library.album) == ("date", "trip")
        saved = json.loads((state / "settings.json").read_text())["slideshow"]
        assert saved == {"interval_s": 45.0, "order": "date", "album": "trip", "paused": True,
                         "screen": False, "photos_follow_music": False}
        assert control.show.library.old_settings() == {}  # moved once: the cache has none left
        control._set_interval(60.0)
    finally:
        control.stop()
        if control.show is not None:
            control.show.stop(timeout=15.0)  # its render thread ended too (see `show_in`)
    store.save_now()  # as the daemon does at stop
    again = SettingsStore.in_directory(state, cfg.follow, source=cfg.source)
    again.load()
    assert again.slideshow.interval_s == 60.0 and again.slideshow.album == "trip"


def test_bad_files_are_skipped_with_one_log_line_each(tmp_path, show_in, photo_dir, caplog):
    folder = tmp_path / "photos"
    folder.mkdir()
    bad = ["truncated.jpg", "zero.jpg", "notanimage.jpg", "bomb.png"]
    for name in bad:
        shutil.copy(photo_dir / name, folder / name)
    gradient_photo(320, 240, 1).save(folder / "good1.jpg")
    gradient_photo(320, 240, 2).save(folder / "good2.jpg")
    (folder / "notes.txt").write_text("not a photo at all")
    caplog.set_level(logging.WARNING, logger="frame_daemon.sources.slideshow")
    show, shown = show_in(folder, tmp_path / "state")
    wait_for(lambda: shown.count() >= 1, what="a good photo")
    for _ in range(5):  # three rounds of shuffle: the bad ones are not tried again
        show.command(C.PHOTO_NEXT)
    wait_for(lambda: shown.count() >= 6, what="six photos")
    assert set(shown.paths) == {"good1.jpg", "good2.jpg"}
    skipped = [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]
    # truncated.jpg decodes (Pillow shows what it has), the other three cannot.
    for name in ("zero.jpg", "notanimage.jpg", "bomb.png"):
        assert sum(name in line for line in skipped) == 1, (name, skipped)


def test_an_empty_folder_says_so_and_shows_the_first_photo_added(tmp_path, show_in):
    folder = tmp_path / "photos"
    folder.mkdir()
    show, shown = show_in(folder, tmp_path / "state")
    wait_for(lambda: "No photos" in show.message, what="the empty-folder message")
    screen = screenshot(show, tmp_path)
    assert (np.asarray(screen).min(axis=2) > 200).any(), "the message is not on screen"
    solid(folder / "arrived.jpg", (64, 48), (10, 200, 10))
    wait_for(lambda: shown.count() == 1, what="the added photo (through watchdog)")
    assert shown.paths == ["arrived.jpg"] and show.message == ""


def test_without_an_inotify_watch_photos_show_and_new_ones_are_found_by_a_rescan(
        tmp_path, show_in, monkeypatch, caplog):
    """Every inotify instance of this user held elsewhere (the kernel's limit): the first photo
    still shows at once (the slideshow used to restart with backoff, showing nothing), a photo
    added meanwhile is found by the next rescan, and the watch comes back when the kernel has
    one to give."""
    monkeypatch.setattr(folder_watch, "WATCH_RETRY_S", 0.5)
    caplog.set_level(logging.INFO, logger="frame_daemon.sources.slideshow")
    folder = tmp_path / "photos"
    folder.mkdir()
    solid(folder / "red.jpg", (64, 48), (220, 30, 30))
    with inotify_exhausted():
        show, shown = show_in(folder, tmp_path / "state")
        wait_for(lambda: shown.count() == 1, what="the first photo, without a watch")
        solid(folder / "green.jpg", (64, 48), (10, 200, 10))
        wait_for(lambda: show.library.count() == 2, what="the added photo, found by a rescan")
        refusals = [r.message for r in caplog.records if "cannot watch" in r.message]
        assert len(refusals) == 1 and "max_user_instances" in refusals[0], refusals
    wait_for(lambda: any("watching the photo folders again" in r.message for r in caplog.records),
             what="the watch, once the kernel has one to give")
    assert not [e for e in shown.events if isinstance(e, AdapterFailed)]


def test_a_vanished_folder_shows_a_message_and_recovers(tmp_path, show_in):
    stick = tmp_path / "stick"
    folder = stick / "photos"
    folder.mkdir(parents=True)
    for i in range(3):
        solid(folder / f"p{i}.jpg", (64, 48), (60 * i, 20, 20))
    show, shown = show_in(folder, tmp_path / "state", interval_s=2.0)
    wait_for(lambda: shown.count() == 1, what="the first photo")
    stick.rename(tmp_path / "unplugged")
    wait_for(lambda: "not there" in show.message, timeout=6.0, what="the unplugged message")
    assert show.library.count() == 3  # the cache is kept for when it comes back
    before = shown.count()
    (tmp_path / "unplugged").rename(stick)
    wait_for(lambda: shown.count() > before, timeout=8.0, what="a photo after the folder is back")
    assert show.message == ""


def test_removed_photos_leave_the_library(tmp_path, show_in):
    folder = tmp_path / "photos"
    (folder / "album").mkdir(parents=True)
    for i in range(3):
        solid(folder / "album" / f"p{i}.jpg", (64, 48), (60 * i, 20, 20))
    show, _ = show_in(folder, tmp_path / "state")
    wait_for(lambda: show.library.count() == 3, what="the scan")
    (folder / "album" / "p1.jpg").unlink()
    wait_for(lambda: show.library.count() == 2, what="the removal (through watchdog)")
    shutil.rmtree(folder / "album")
    wait_for(lambda: show.library.count() == 0, what="the folder's removal")


def test_the_display_schedule_turns_the_screen_off_outside_its_hours(tmp_path, show_in):
    folder = tmp_path / "photos"
    folder.mkdir()
    solid(folder / "red.jpg", SCREEN, (220, 30, 30))
    now = datetime.now()
    # On from an hour from now until an hour ago (overnight style): now is off hours.
    schedule = DisplaySchedule.from_config((now + timedelta(hours=1)).strftime("%H:%M"),
                                           (now - timedelta(hours=1)).strftime("%H:%M"))
    show, shown = show_in(folder, tmp_path / "state", schedule=schedule)
    wait_for(lambda: ScreenScheduled(False) in shown.events, timeout=6.0,
             what="the schedule turning the screen off")
    screen = np.asarray(screenshot(show, tmp_path))
    assert screen.max() == 0, "the screen is not black off hours"
    show.command(C.SCREEN, True)  # Home Assistant's switch overrides until the next boundary
    wait_for(lambda: near(screenshot(show, tmp_path, "on.png").getpixel((320, 180)),
                          (220, 30, 30)), what="the photo back on screen")


def power_script(tmp_path: Path, exit_status: int = 0) -> tuple[Path, Path]:
    """A real program for screen_*_command: it notes each call's argument in a marker file
    (and, with an exit status, fails as a display tool does where there is no display)."""
    marker = tmp_path / "power.log"
    script = tmp_path / "display-power.sh"
    script.write_text(f'#!/bin/sh\necho "$1" >> "{marker}"\n'
                      f'echo "no display here" >&2\nexit {exit_status}\n')
    script.chmod(0o755)
    return script, marker


def calls(marker: Path) -> list[str]:
    return marker.read_text().split() if marker.exists() else []


def failures(shown: Shown) -> list[str]:
    return [e.error for e in list(shown.events) if isinstance(e, AdapterFailed)]


def test_the_screen_switch_powers_the_display_with_the_configured_commands(tmp_path, show_in):
    folder = tmp_path / "photos"
    folder.mkdir()
    solid(folder / "red.jpg", (64, 48), (220, 20, 20))
    script, marker = power_script(tmp_path)
    show, shown = show_in(folder, tmp_path / "state", screen_off_command=(str(script), "off"),
                          screen_on_command=(str(script), "on"))
    # At start the display is powered up (a stop may have left it off).
    wait_for(lambda: shown.count() == 1 and calls(marker) == ["on"], what="power on at start")
    show.command(C.SCREEN, False)
    wait_for(lambda: calls(marker) == ["on", "off"], what="the off command")
    assert near(screenshot(show, tmp_path).getpixel((320, 180)), (0, 0, 0))  # and black
    show.command(C.SCREEN, False)  # already off: not run again
    show.command(C.SCREEN, True)
    wait_for(lambda: calls(marker) == ["on", "off", "on"], what="the on command")
    assert near(screenshot(show, tmp_path).getpixel((320, 180)), (220, 20, 20), 30)
    assert failures(shown) == []


def test_a_failing_display_command_is_reported_once_until_it_works(tmp_path, show_in, caplog):
    folder = tmp_path / "photos"
    folder.mkdir()
    solid(folder / "red.jpg", (64, 48), (220, 20, 20))
    script, marker = power_script(tmp_path, exit_status=3)
    caplog.set_level(logging.WARNING, logger="frame_daemon.sources.display_power")
    show, shown = show_in(folder, tmp_path / "state", screen_off_command=(str(script), "off"),
                          screen_on_command=(str(script), "on"))
    wait_for(lambda: shown.count() == 1 and calls(marker) == ["on"],
             what="the first photo, and power on at start")
    for n, on in enumerate((False, True, False, True), start=2):  # each run after the last
        show.command(C.SCREEN, on)
        wait_for(lambda n=n: len(calls(marker)) == n, what=f"call {n}")
    # Five calls, each failing; the first failure of each command is reported and logged.
    assert failures(shown) == [
        f"screen_on_command '{script} on' failed with exit status 3: no display here",
        f"screen_off_command '{script} off' failed with exit status 3: no display here"]
    assert len(caplog.records) == 2
    assert shown.count() == 1 and show.screen_on  # the slideshow carries on (black if off)


def test_a_missing_or_hanging_display_command_does_not_hold_up_the_slideshow(tmp_path, show_in):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        solid(folder / f"p{i}.jpg", (64, 48), (60 * i, 200, 20))
    show, shown = show_in(folder, tmp_path / "state", order="name",
                          screen_on_command=(str(tmp_path / "no-such-program"), "1"),
                          screen_off_command=(sys.executable, "-c", "import time; time.sleep(30)"),
                          screen_command_timeout_s=1.0)
    wait_for(lambda: len(failures(shown)) == 1 and shown.count() == 1,
             what="the missing program reported, and the first photo")
    assert "no-such-program 1' could not run" in failures(shown)[0]
    show.command(C.SCREEN, False)
    show.command(C.PHOTO_NEXT)  # while the off command hangs
    show.command(C.PHOTO_NEXT)
    wait_for(lambda: shown.count() == 3, what="two photos while the command hangs")
    assert len(failures(shown)) == 1
    wait_for(lambda: len(failures(shown)) == 2, what="the hanging command stopped and reported")
    assert "did not finish within 1 s" in failures(shown)[1]


def test_no_display_is_reported_in_words_without_a_traceback(tmp_path, show_in, monkeypatch,
                                                               caplog):
    # A Pi's console without the video group, or a service started before the display: SDL's
    # KMS/DRM driver finds no display here either.
    folder = tmp_path / "photos"
    folder.mkdir()
    solid(folder / "red.jpg", (64, 48), (220, 20, 20))
    monkeypatch.setenv("SDL_VIDEODRIVER", "kmsdrm")
    with caplog.at_level(logging.ERROR, logger="frame_daemon"):
        show, shown = show_in(folder, tmp_path / "state")
        wait_for(lambda: failures(shown), what="the failure reported")
        show.stop(timeout=15.0)
    assert "no display to show photos on (kmsdrm: " in failures(shown)[0], failures(shown)
    assert "video and render groups" in failures(shown)[0]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors and not any(r.exc_info for r in errors), [r.getMessage() for r in errors]
    assert shown.count() == 0


def test_schedule_hours_and_overnight_windows():
    day = DisplaySchedule.from_config("07:00", "23:00")
    assert day.is_on(time(7, 0)) and day.is_on(time(22, 59))
    assert not day.is_on(time(23, 0)) and not day.is_on(time(3, 0))
    night = DisplaySchedule.from_config("18:00", "02:00")
    assert night.is_on(time(23, 0)) and night.is_on(time(1, 59)) and not night.is_on(time(12, 0))
    assert DisplaySchedule.from_config("", "") is None
    with pytest.raises(ValueError, match="HH:MM"):
        DisplaySchedule.from_config("25:00", "07:00")


def model_scorer(mood_model):
    """The slideshow's scorer factory with the real model, as the daemon makes it for the
    scoring thread."""
    def scorer():
        def score(path):
            mood = mood_model.score(path).mood
            return mood.valence, mood.arousal
        return score
    return scorer


def test_photos_follow_music_shows_a_photo_that_fits_the_new_track(tmp_path, show_in, mood_model):
    folder = tmp_path / "photos"
    folder.mkdir()
    for seed in range(6):  # bright and colourful, and dark and murky
        photo = gradient_photo(320, 240, 30 + seed)
        (photo if seed % 2 else photo.point(lambda v: v // 5)).save(folder / f"p{seed}.jpg")

    show, shown = show_in(folder, tmp_path / "state", scorer=model_scorer(mood_model))
    show.command(C.PHOTOS_FOLLOW_MUSIC, True)
    wait_for(lambda: shown.count() >= 1 and not show.library.unscored(), timeout=30,
             what="every photo scored in the background")
    with sqlite3.connect(tmp_path / "state" / "slideshow.sqlite") as db:
        moods = {Path(p).name: (v, a) for p, v, a in
                 db.execute("SELECT path, valence, arousal FROM photos")}
    # A library of calm music: even its liveliest track is calmer than any photo, yet it asks
    # for the liveliest, brightest photos of this collection, as its calmest asks for the calmest.
    calm_library = LibraryShape.of([0.1 + 0.05 * i for i in range(10)],
                                   [-0.9 + 0.05 * i for i in range(10)], [0.9] * 10)
    corner = {"lowest": (min(v for v, _ in moods.values()), min(a for _, a in moods.values())),
              "highest": (max(v for v, _ in moods.values()), max(a for _, a in moods.values()))}
    for uri, track, end in (("calmest.flac", Mood(0.1, -0.9, 0.8), "lowest"),
                            ("liveliest.flac", Mood(0.55, -0.45, 0.8), "highest"),
                            ("calmest.flac", Mood(0.1, -0.9, 0.8), "lowest")):
        before = shown.count()
        show.command(R.MUSIC, MusicNow(uri, track, calm_library, library_fit=1.0))
        wait_for(lambda b=before: shown.count() > b, what="a photo for the new track")
        ranked = sorted(moods, key=lambda n, c=corner[end]: math.dist(moods[n], c))
        assert shown.paths[-1] in ranked[:3], (end, shown.paths[-1], ranked, moods)


def test_a_photo_scored_once_is_scored_again_only_when_its_file_changes(tmp_path):
    library = PhotoLibrary(tmp_path / "lib.sqlite", [tmp_path])
    try:
        library.add(str(tmp_path / "a.jpg"), 100.0)
        library.add(str(tmp_path / "b.jpg"), 100.0)
        library.set_mood(str(tmp_path / "a.jpg"), 0.5, -0.2)
        library.set_mood(str(tmp_path / "b.jpg"), -0.1, 0.3)
        library.add(str(tmp_path / "a.jpg"), 100.0)  # seen again by a scan: the mood is kept
        library.add(str(tmp_path / "b.jpg"), 200.0)  # edited: scored again
        assert library.unscored() == [str(tmp_path / "b.jpg")]
        assert library.scored()[1:] == ([0.5], [-0.2])
    finally:
        library.close()


def test_a_heic_photo_is_shown_and_scored(tmp_path, show_in, mood_model):
    pillow_heif = pytest.importorskip(
        "pillow_heif", reason="HEIC needs the optional pillow-heif (pip install 'frame-daemon[heif]')")
    folder = tmp_path / "photos"
    folder.mkdir()
    jpeg = tmp_path / "camera.jpg"
    gradient_photo(640, 480, 8).save(jpeg, quality=92)
    with Image.open(jpeg) as im:  # a phone's HEIC of the same picture
        pillow_heif.from_pillow(im).save(folder / "phone.heic", quality=97)
    assert (folder / "phone.heic").read_bytes()[4:12] == b"ftypheic"

    show, shown = show_in(folder, tmp_path / "state", scorer=model_scorer(mood_model))
    show.command(C.PHOTOS_FOLLOW_MUSIC, True)  # photo moods are scored in the background
    wait_for(lambda: shown.count() == 1 and show.library.scored()[0], timeout=30,
             what="the HEIC photo shown and scored")
    assert shown.paths == ["phone.heic"]
    with Image.open(jpeg) as im:  # 640x480 fitted to 640x360: the centres meet
        expected = im.convert("RGB").getpixel((320, 240))
    assert near(screenshot(show, tmp_path).getpixel((320, 180)), expected, 25)
    _, valence, arousal = show.library.scored()
    from_jpeg = mood_model.score(jpeg).mood
    assert math.dist((valence[0], arousal[0]), (from_jpeg.valence, from_jpeg.arousal)) < 0.1


def test_a_folder_missing_at_start_is_waited_for(tmp_path, show_in):
    folder = tmp_path / "stick" / "photos"
    show, shown = show_in(folder, tmp_path / "state")
    wait_for(lambda: "not there" in show.message, what="the missing-folder message")
    folder.mkdir(parents=True)
    solid(folder / "late.jpg", (64, 48), (10, 200, 10))
    wait_for(lambda: shown.count() == 1, timeout=8.0, what="the photo once the folder is there")
    assert shown.paths == ["late.jpg"]


def test_the_render_thread_takes_command_names_not_strings(tmp_path):
    """The loop and the render thread share one vocabulary: a plain string (a name the render
    thread would not know) is refused where it is sent, not lost on the other thread."""
    show = Slideshow(SlideshowOptions(folders=(tmp_path,)), tmp_path, Shown())
    try:
        with pytest.raises(TypeError, match="not a slideshow command"):
            show.command("next")
        show.command(C.PHOTO_NEXT)
        show.command(R.INFO, ("a track",))
    finally:
        show.library.close()


@pytest.fixture
def tmpfs():
    """Mount a small tmpfs on a folder (a photo stick, a state directory): needs root, as CI runs
    the tests; skips otherwise. Whatever is still mounted is unmounted after the test."""
    mounted: list[Path] = []

    def mount(folder: Path, size_kb: int = 4096) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs (a stand-in for a photo stick or a small disk) needs root")
        folder.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs",
                               str(folder)], capture_output=True, text=True)
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def cached_names(state: Path) -> list[str]:
    """The photos in the slideshow's cache, read as another process would."""
    with sqlite3.connect(state / "slideshow.sqlite") as db:
        names = sorted(Path(p).name for (p,) in db.execute("SELECT path FROM photos"))
    db.close()
    return names


def told(shown: Shown, words: str) -> list[str]:
    return [e.error for e in list(shown.events) if isinstance(e, AdapterFailed) and words in e.error]


def test_a_stick_mounted_again_on_the_folder_is_rescanned(tmp_path, show_in, tmpfs, caplog):
    stick = tmpfs(tmp_path / "stick")  # the stick is mounted on the photo folder itself
    for i in range(3):
        solid(stick / f"old{i}.jpg", (64, 48), (60 * i, 20, 20))
    caplog.set_level(logging.INFO, logger="frame_daemon.sources.slideshow")
    show, shown = show_in(stick, tmp_path / "state")
    wait_for(lambda: shown.count() == 1 and show.library.count() == 3, what="the first photo")
    subprocess.run(["umount", str(stick)], check=True)  # unplugged: an empty mount point is left
    wait_for(lambda: "gone" in show.message, timeout=6.0, what="the stick gone, on screen")
    assert told(shown, "is gone"), shown.events  # and to the daemon's state
    assert show.library.count() == 3  # the cache is kept for when it comes back
    tmpfs(stick)  # another stick, with other photos
    for i in range(2):
        solid(stick / f"new{i}.jpg", (64, 48), (20, 60 * i, 200))
    wait_for(lambda: shown.paths[-1].startswith("new"), timeout=10.0,
             what="a photo of the new stick on show")
    wait_for(lambda: cached_names(tmp_path / "state") == ["new0.jpg", "new1.jpg"],
             what="the cache holding the new stick's photos only")
    assert show.message == ""
    said = [r.getMessage() for r in caplog.records]
    assert any(f"{stick} is gone" in line for line in said), said
    assert any(f"{stick} is back" in line for line in said), said


def test_a_folder_replaced_by_another_is_rescanned(tmp_path, show_in, caplog):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        solid(folder / f"old{i}.jpg", (64, 48), (60 * i, 20, 20))
    caplog.set_level(logging.INFO, logger="frame_daemon.sources.slideshow")
    show, shown = show_in(folder, tmp_path / "state")
    wait_for(lambda: shown.count() == 1 and show.library.count() == 3, what="the first photo")
    # Another folder takes its place at once: same path, another inode (a sync tool's swap).
    staging = tmp_path / "staging"
    staging.mkdir()
    for i in range(2):
        solid(staging / f"new{i}.jpg", (64, 48), (20, 60 * i, 200))
    folder.rename(tmp_path / "photos.old")
    staging.rename(folder)
    wait_for(lambda: shown.paths[-1].startswith("new"), timeout=10.0,
             what="a photo of the new folder on show")
    wait_for(lambda: cached_names(tmp_path / "state") == ["new0.jpg", "new1.jpg"],
             what="the cache holding the new folder's photos only")
    assert any(f"{folder} is back" in r.getMessage() for r in caplog.records)


def fill(folder: Path) -> Path:
    """Write a filler file until the filesystem is full; returns it."""
    filler = folder / "filler"
    with contextlib.suppress(OSError), open(filler, "wb") as f:
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    with contextlib.suppress(OSError), open(filler, "ab") as f:  # the last partial block
        while True:
            f.write(b"\0")
            f.flush()
    return filler


def test_a_full_state_directory_keeps_the_photos_going_and_says_why(tmp_path, show_in, tmpfs,
                                                                    caplog, monkeypatch):
    monkeypatch.setattr(slideshow_module, "UNSAVED_RETRY_S", 0.5, raising=False)
    folder = tmp_path / "photos"
    folder.mkdir()
    originals = [f"p{i}.jpg" for i in range(6)]
    for i, name in enumerate(originals):
        solid(folder / name, (64, 48), (40 * i, 20, 20))
    state = tmpfs(tmp_path / "state", 512)
    caplog.set_level(logging.INFO)
    show, shown = show_in(folder, state)
    wait_for(lambda: shown.count() == 1 and show.library.count() == 6, what="the first photo")
    filler = fill(state)
    for i in range(2):  # photos the cache cannot take while it is full
        solid(folder / f"new{i}.jpg", (64, 48), (20, 200, 20 * i))
    for n in range(2, 14):
        show.command(C.PHOTO_NEXT)
        wait_for(lambda n=n: shown.count() == n, what=f"photo {n} while the disk is full")
    # The shuffle goes on, every photo once a round, though its place cannot be saved.
    assert sorted(shown.paths[6:12]) == originals, shown.paths
    assert told(shown, "the state directory is full"), shown.events  # the daemon's state says why
    assert not told(shown, "restarting")  # the render thread was never restarted
    assert not [r.getMessage() for r in caplog.records if r.exc_info]  # sentences, no tracebacks
    filler.unlink()  # freed: the photos missed meanwhile are caught up
    wait_for(lambda: cached_names(state) == sorted([*originals, "new0.jpg", "new1.jpg"]),
             what="the photos added while full, in the cache once there is room")
    wait_for(lambda: show.library.problem is None, what="the cache written again")


def test_a_read_only_state_directory_keeps_the_cache_in_memory_and_says_why(tmp_path, show_in,
                                                                           tmpfs):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        solid(folder / f"p{i}.jpg", (64, 48), (60 * i, 20, 20))
    state = tmpfs(tmp_path / "state")
    done = subprocess.run(["mount", "-o", "remount,ro", str(state)], capture_output=True,
                          text=True)
    if done.returncode:
        pytest.skip(f"cannot make the tmpfs read-only: {done.stderr.strip()}")
    show, shown = show_in(folder, state, order="name")
    wait_for(lambda: shown.count() == 1, what="the first photo")
    for n in range(2, 5):
        show.command(C.PHOTO_NEXT)
        wait_for(lambda n=n: shown.count() == n, what=f"photo {n}")
    assert shown.paths == ["p0.jpg", "p1.jpg", "p2.jpg", "p0.jpg"]
    assert told(shown, "cannot be written"), shown.events
    assert not (state / "slideshow.sqlite").exists()


def test_a_corrupt_photo_cache_is_moved_aside_and_made_afresh(tmp_path, show_in):
    folder = tmp_path / "photos"
    folder.mkdir()
    solid(folder / "red.jpg", (64, 48), (220, 30, 30))
    state = tmp_path / "state"
    state.mkdir()
    (state / "slideshow.sqlite").write_bytes(b"torn by a power cut " * 400)
    _, shown = show_in(folder, state)
    wait_for(lambda: shown.count() == 1, what="the photo, from a new cache")
    assert len(list(state.glob("slideshow.sqlite.corrupt-*"))) == 1
    assert cached_names(state) == ["red.jpg"]
