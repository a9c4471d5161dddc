"""The photo watcher against the real filesystem and watchdog's real inotify observer."""

import logging
import os
import shutil
import subprocess
import threading
import time

import pytest

from conftest import gradient_photo
from frame_daemon.events import AdapterFailed, PhotoShown
from frame_daemon.sources.watch import PhotoWatcher, is_candidate_name, newest_image
from kernel_limits import inotify_exhausted
from servers import wait_for

SETTLE = 0.15


class Collector:
    def __init__(self):
        self.events = []
        self.lock = threading.Lock()

    def __call__(self, event):
        with self.lock:
            self.events.append(event)

    def paths(self):
        with self.lock:
            return [e.path.name for e in self.events if isinstance(e, PhotoShown)]

    def wait_count(self, n, timeout=5.0):
        wait_for(lambda: len(self.paths()) >= n, timeout, what=f"{n} photo events")
        return self.paths()

    def wait_name(self, name, timeout=5.0):
        """Wait for an event naming `name`: a sentinel change made last. Events come in order, so
        any extra event an earlier change caused is in the list by then."""
        wait_for(lambda: name in self.paths(), timeout, what=f"an event for {name}")
        return self.paths()


def sentinel(current, photos, name="p3.jpg"):
    """Turn `current` into a symlink to photos/name: an event that names `name`."""
    tmp = current.with_name(".sentinel-link")
    tmp.symlink_to(photos / name)
    os.replace(tmp, current)


@pytest.fixture
def photos(tmp_path):
    src = tmp_path / "library"
    src.mkdir()
    for i in range(4):
        gradient_photo(160, 120, i).save(src / f"p{i}.jpg")
    return src


def start(kind, path, collector):
    w = PhotoWatcher(kind, path, SETTLE, collector)
    w.start()
    return w


def test_file_replaced_by_atomic_rename_inside_and_from_outside(tmp_path, photos):
    frame = tmp_path / "frame"
    frame.mkdir()
    current = frame / "current.jpg"
    shutil.copy(photos / "p0.jpg", current)
    c = Collector()
    w = start("file", current, c)
    try:
        assert c.wait_count(1) == ["current.jpg"]  # what is on show at start-up
        tmp = frame / ".current.jpg.tmp"
        shutil.copy(photos / "p1.jpg", tmp)
        os.replace(tmp, current)
        assert len(c.wait_count(2)) == 2
        outside = tmp_path / "staging.jpg"
        shutil.copy(photos / "p2.jpg", outside)
        os.replace(outside, current)
        c.wait_count(3)
        sentinel(current, photos)
        assert c.wait_name("p3.jpg") == ["current.jpg"] * 3 + ["p3.jpg"]  # each change once
    finally:
        w.stop()


def test_file_rewritten_in_place_in_a_burst_counts_once(tmp_path, photos):
    current = tmp_path / "current.jpg"
    shutil.copy(photos / "p0.jpg", current)
    c = Collector()
    w = start("file", current, c)
    try:
        c.wait_count(1)
        data = (photos / "p3.jpg").read_bytes()
        with open(current, "wb") as f:  # a slow writer: several chunks, each a modify event
            for i in range(0, len(data), 2048):
                f.write(data[i:i + 2048])
                f.flush()
                time.sleep(0.01)
        assert current.read_bytes() == data
        c.wait_count(2)
        sentinel(current, photos)
        assert c.wait_name("p3.jpg") == ["current.jpg", "current.jpg", "p3.jpg"]  # burst: once
    finally:
        w.stop()


def test_symlink_repointed_with_ln_sfn_and_temp_link_rename(tmp_path, photos):
    link = tmp_path / "current.jpg"
    link.symlink_to(photos / "p0.jpg")
    c = Collector()
    w = start("file", link, c)
    try:
        assert c.wait_count(1) == ["p0.jpg"]  # the link's target is what is shown
        subprocess_ln = ["ln", "-sfn", str(photos / "p1.jpg"), str(link)]
        os.spawnvp(os.P_WAIT, "ln", subprocess_ln)
        assert c.wait_count(2) == ["p0.jpg", "p1.jpg"]
        tmp_link = tmp_path / ".tmp-link"
        tmp_link.symlink_to(photos / "p2.jpg")
        os.replace(tmp_link, link)
        assert c.wait_count(3) == ["p0.jpg", "p1.jpg", "p2.jpg"]
    finally:
        w.stop()


def test_unchanged_photo_is_not_reported_again(tmp_path, photos):
    link = tmp_path / "current.jpg"
    link.symlink_to(photos / "p0.jpg")
    c = Collector()
    w = start("file", link, c)
    try:
        c.wait_count(1)
        os.spawnvp(os.P_WAIT, "ln", ["ln", "-sfn", str(photos / "p0.jpg"), str(link)])
        # Then a real change: the watcher still listens, and the same photo came only once.
        os.spawnvp(os.P_WAIT, "ln", ["ln", "-sfn", str(photos / "p1.jpg"), str(link)])
        assert c.wait_name("p1.jpg") == ["p0.jpg", "p1.jpg"]
    finally:
        w.stop()


def test_folder_reports_newest_image_and_ignores_temp_and_hidden(tmp_path, photos):
    folder = tmp_path / "show"
    folder.mkdir()
    shutil.copy(photos / "p0.jpg", folder / "a.jpg")
    c = Collector()
    w = start("folder", folder, c)
    try:
        assert c.wait_count(1) == ["a.jpg"]
        shutil.copy(photos / "p1.jpg", folder / ".hidden.jpg")
        shutil.copy(photos / "p1.jpg", folder / "b.jpg.part")
        (folder / "notes.txt").write_text("not a photo")
        time.sleep(SETTLE * 4)
        assert c.paths() == ["a.jpg"]
        time.sleep(0.02)
        shutil.copy(photos / "p2.jpg", folder / "b.jpg")
        assert c.wait_count(2) == ["a.jpg", "b.jpg"]
    finally:
        w.stop()


def test_a_photo_dated_in_the_future_does_not_hide_the_photos_after_it(tmp_path, photos):
    # Copied from a camera card that keeps file times, by a camera set ten hours ahead (its time
    # zone): it stayed the newest photo for ten hours, and no photo after it was shown.
    folder = tmp_path / "show"
    folder.mkdir()
    shutil.copy(photos / "p0.jpg", folder / "camera.jpg")
    ahead = time.time_ns() + 10 * 3600 * 10**9
    os.utime(folder / "camera.jpg", ns=(ahead, ahead))
    c = Collector()
    w = start("folder", folder, c)
    try:
        assert c.wait_count(1) == ["camera.jpg"]
        time.sleep(0.02)
        shutil.copy(photos / "p2.jpg", folder / "later.jpg")
        assert c.wait_count(2) == ["camera.jpg", "later.jpg"]
    finally:
        w.stop()


def test_a_file_written_for_minutes_beside_the_photos_does_not_hide_a_new_one(tmp_path, photos):
    # A video synced into the photo folder, a log: written more often than the settle time, it
    # kept the folder from ever being quiet, and a new photo was not seen until it stopped.
    folder = tmp_path / "show"
    folder.mkdir()
    shutil.copy(photos / "p0.jpg", folder / "a.jpg")
    c = Collector()
    w = start("folder", folder, c)
    done = threading.Event()

    def sync_a_video() -> None:
        with open(folder / "holiday.mp4", "wb") as video:
            while not done.wait(SETTLE / 5):
                video.write(os.urandom(4096))
                video.flush()

    writer = threading.Thread(target=sync_a_video, name="video-sync")
    try:
        assert c.wait_count(1) == ["a.jpg"]
        writer.start()
        shutil.copy(photos / "p1.jpg", folder / ".b.jpg")
        os.replace(folder / ".b.jpg", folder / "b.jpg")
        assert c.wait_count(2, timeout=10) == ["a.jpg", "b.jpg"]
    finally:
        done.set()
        if writer.ident is not None:
            writer.join(5)
        w.stop()


def test_a_photo_folder_that_is_no_folder_is_named_so(tmp_path, photos, caplog):
    # A file or a looping symlink in the folder's place was "does not exist yet".
    (tmp_path / "notes").write_text("a file")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    for folder in ("notes", "loop"):
        w = start("file", tmp_path / folder / "current.jpg", Collector())
        w.stop()
        assert f"photo source folder {tmp_path / folder} is not a folder; waiting" in caplog.text
    w = start("file", tmp_path / "later" / "current.jpg", Collector())
    w.stop()
    assert f"photo source folder {tmp_path / 'later'} does not exist yet; waiting" in caplog.text


def test_missing_folder_is_waited_for(tmp_path, photos):
    current = tmp_path / "later" / "current.jpg"
    c = Collector()
    w = start("file", current, c)
    try:
        time.sleep(0.3)
        current.parent.mkdir()
        shutil.copy(photos / "p0.jpg", current)
        assert c.wait_count(1, timeout=5) == ["current.jpg"]
    finally:
        w.stop()


def test_helpers(tmp_path, photos):
    assert newest_image(tmp_path / "nope") is None
    assert not is_candidate_name(".x.jpg") and not is_candidate_name("x.jpg.crdownload")
    assert is_candidate_name("IMG_0001.JPG")
    for age, name in enumerate(["p3.jpg", "p0.jpg", "p2.jpg", "p1.jpg"]):
        os.utime(photos / name, ns=(time.time_ns(), time.time_ns() - (10 - age) * 10**9))
    assert newest_image(photos).name == "p1.jpg"
    (photos / ".newer.jpg").write_bytes(b"hidden")
    (photos / "newer.jpg.part").write_bytes(b"partial")
    assert newest_image(photos).name == "p1.jpg"


def test_empty_file_and_broken_links_are_handed_over_to_be_named(tmp_path, photos):
    current = tmp_path / "current.jpg"
    current.write_bytes(b"")
    c = Collector()
    w = start("file", current, c)
    try:
        assert c.wait_count(1) == ["current.jpg"]  # the loader then says "empty file"
        tmp = tmp_path / ".link"
        tmp.symlink_to(tmp_path / "deleted.jpg")
        os.replace(tmp, current)
        assert c.wait_count(2) == ["current.jpg"] * 2  # a dangling link: named by the loader
        sentinel(current, photos)
        assert c.wait_name("p3.jpg") == ["current.jpg", "current.jpg", "p3.jpg"]
    finally:
        w.stop()


@pytest.fixture
def tmpfs():
    """Mount a tmpfs on a folder (a photo stick): needs root, as CI runs the tests; skips
    otherwise. Whatever is still mounted is unmounted after the test."""
    mounted = []

    def mount(folder):
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs (a stand-in for a photo stick) needs root")
        folder.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)],
                              capture_output=True, text=True)
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def gone(collector):
    with collector.lock:
        return [e.error for e in collector.events if isinstance(e, AdapterFailed)]


def test_a_stick_mounted_again_on_the_watched_folder_is_heard(tmp_path, photos, tmpfs, caplog):
    stick = tmpfs(tmp_path / "stick")
    shutil.copy(photos / "p0.jpg", stick / "a.jpg")
    caplog.set_level(logging.INFO, logger="frame_daemon.sources.watch")
    c = Collector()
    w = start("folder", stick, c)
    try:
        assert c.wait_count(1) == ["a.jpg"]
        subprocess.run(["umount", str(stick)], check=True)  # unplugged: the empty mount point
        wait_for(lambda: gone(c), what="the folder gone, told to the daemon")
        assert "is gone" in gone(c)[0]
        tmpfs(stick)  # plugged in again, with another photo
        shutil.copy(photos / "p1.jpg", stick / "b.jpg")
        assert c.wait_name("b.jpg") == ["a.jpg", "b.jpg"]
        shutil.copy(photos / "p2.jpg", stick / "c.jpg")  # heard only by a watch on the new stick
        assert c.wait_name("c.jpg") == ["a.jpg", "b.jpg", "c.jpg"]
        said = [r.getMessage() for r in caplog.records]
        assert any(f"{stick} is back" in line for line in said), said
    finally:
        w.stop()


def test_a_watched_folder_replaced_by_another_is_heard(tmp_path, photos, caplog):
    frame = tmp_path / "frame"
    frame.mkdir()
    shutil.copy(photos / "p0.jpg", frame / "current.jpg")
    caplog.set_level(logging.INFO, logger="frame_daemon.sources.watch")
    c = Collector()
    w = start("file", frame / "current.jpg", c)
    try:
        assert c.wait_count(1) == ["current.jpg"]
        # The frame software swaps in a new folder (same path, another inode), then writes to it.
        staging = tmp_path / "staging"
        staging.mkdir()
        frame.rename(tmp_path / "frame.old")
        staging.rename(frame)
        wait_for(lambda: any(f"{frame} is back" in r.getMessage() for r in caplog.records),
                 what="the new folder noticed")
        sentinel(frame / "current.jpg", photos)
        assert c.wait_name("p3.jpg")[-1] == "p3.jpg"
        sentinel(frame / "current.jpg", photos, "p2.jpg")  # heard only by a watch on the new one
        assert c.wait_name("p2.jpg")[-2:] == ["p3.jpg", "p2.jpg"]
    finally:
        w.stop()


def test_photo_folders_tell_gone_and_back_through_a_symlink_to_the_mount_point(tmp_path, tmpfs):
    from frame_daemon.sources.photo_folders import PhotoFolders

    stick = tmpfs(tmp_path / "mnt" / "usb")
    link = tmp_path / "photos"
    link.symlink_to(stick)  # source.path = /media/photos -> /mnt/usb
    folders = PhotoFolders([link])
    assert folders.look() == [] and folders.present() == [link]
    (stick / "a.jpg").write_bytes(b"x")
    assert folders.unchanged(str(link / "a.jpg"))
    subprocess.run(["umount", str(stick)], check=True)
    [change] = folders.look()
    assert not change.here and folders.present() == []  # the empty mount point is not the stick
    assert not folders.unchanged(str(link / "a.jpg"))  # so its photos were not deleted
    assert folders.look() == []  # said once
    tmpfs(stick)
    [change] = folders.look()
    assert change.here and not change.replaced and folders.present() == [link]


def test_without_an_inotify_watch_the_photo_is_looked_at_every_second(tmp_path, photos, caplog):
    """All of this user's inotify instances held by other programs (the kernel's limit): the
    watcher says so once and looks at the photo itself, so the music still follows."""
    frame = tmp_path / "frame"
    frame.mkdir()
    current = frame / "current.jpg"
    shutil.copy(photos / "p0.jpg", current)
    c = Collector()
    caplog.set_level(logging.INFO, logger="frame_daemon.sources.watch")
    with inotify_exhausted():
        w = start("file", current, c)
        try:
            assert c.wait_count(1) == ["current.jpg"]
            sentinel(current, photos)
            assert c.wait_name("p3.jpg") == ["current.jpg", "p3.jpg"]
            refusals = [r.message for r in caplog.records if "cannot watch" in r.message]
            assert len(refusals) == 1 and "max_user_instances" in refusals[0], refusals
        finally:
            w.stop()
    assert not [e for e in c.events if isinstance(e, AdapterFailed)]  # working, not failing
