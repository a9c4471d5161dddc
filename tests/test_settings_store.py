"""Settings set from Home Assistant: saved in the state directory, checked by the config's rules."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from frame_daemon import settings_store
from frame_daemon.config import FollowConfig, SourceConfig
from frame_daemon.settings_store import SettingRejected, SettingsStore, SlideshowSettings

TESTS = Path(__file__).resolve().parent


def test_set_values_survive_a_new_store_and_reset_forgets_them(tmp_path):
    defaults = FollowConfig(mode="gentle", threshold=0.3)
    store = SettingsStore.in_directory(tmp_path, defaults)
    assert store.load() == defaults
    store.set("mode", "off")
    store.set("include_genres", ("Jazz", "Blues"))
    store.set("threshold", 0.6)
    store.save_now()  # what the daemon does at stop (changes this quick are held back a second)
    again = SettingsStore.in_directory(tmp_path, defaults).load()
    assert (again.mode, again.include_genres, again.threshold) == ("off", ("Jazz", "Blues"), 0.6)
    assert again.dwell_s == defaults.dwell_s  # the config still gives everything else
    store.reset()
    store.save_now()
    assert SettingsStore.in_directory(tmp_path, defaults).load() == defaults


def test_values_are_checked_by_the_config_rules(tmp_path):
    store = SettingsStore.in_directory(tmp_path, FollowConfig(jump=0.9))
    store.load()
    with pytest.raises(SettingRejected, match=r"above follow\.jump"):
        store.set("threshold", 1.0)
    with pytest.raises(SettingRejected, match="must be one of"):
        store.set("mode", "loud")
    with pytest.raises(SettingRejected, match="not a setting"):
        store.set("jump", 2.0)
    assert store.effective == FollowConfig(jump=0.9)
    assert not (tmp_path / "settings.json").exists()


def test_a_bad_or_stale_file_never_stops_the_daemon(tmp_path, caplog):
    path = tmp_path / "settings.json"
    # Saved when jump was larger: now above it. Plus junk a hand edit may leave.
    path.write_text(json.dumps({"threshold": 1.5, "diversity": 0.7, "colour": "red",
                                "mode": 3}))
    follow = SettingsStore(path, FollowConfig(jump=0.9)).load()
    assert follow == FollowConfig(jump=0.9, diversity=0.7)
    assert "threshold = 1.5 ignored" in caplog.text and "'colour' ignored" in caplog.text
    path.write_text("{not json")
    assert SettingsStore(path, FollowConfig()).load() == FollowConfig()


def read_only_case(state_dir: Path) -> None:
    """A setting made while `state_dir` cannot be written: it holds, and the store says why."""
    store = SettingsStore.in_directory(state_dir, FollowConfig())
    store.load()
    assert store.set("diversity", 0.9).diversity == 0.9
    assert "settings not saved" in store.save_error, "the read-only directory was written"
    assert not (state_dir / "settings.json").exists()
    print(f"read-only case ran as uid {os.geteuid()}")


def as_nobody() -> list[str]:
    """The command prefix that runs a program as the unprivileged user `nobody` (root writes into
    read-only folders, and CI runs the suite as root)."""
    if shutil.which("setpriv"):
        return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    if shutil.which("runuser"):
        return ["runuser", "-u", "nobody", "--"]
    pytest.skip("running as root, and neither setpriv nor runuser is here to drop to nobody")


def test_a_read_only_state_directory_says_so_and_the_value_still_holds(tmp_path):
    if os.geteuid() != 0:
        state_dir = tmp_path / "state"
        state_dir.mkdir(mode=0o555)
        try:
            read_only_case(state_dir)
        finally:
            state_dir.chmod(0o755)
        return
    # As root: in a child process as nobody, in a folder nobody can reach (pytest's tmp_path
    # is in root's private /tmp/pytest-of-root) but not write.
    with tempfile.TemporaryDirectory(prefix="frame-settings-") as base:
        os.chmod(base, 0o755)
        state_dir = Path(base) / "state"
        state_dir.mkdir(mode=0o555)
        code = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
                "from test_settings_store import read_only_case; read_only_case(Path(sys.argv[2]))")
        done = subprocess.run([*as_nobody(), sys.executable, "-c", code, str(TESTS), str(state_dir)],
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert done.returncode == 0, f"as nobody:\n{done.stdout}{done.stderr[-3000:]}"
    assert f"read-only case ran as uid {pwd.getpwnam('nobody').pw_uid}" in done.stdout


def test_a_full_state_directory_says_so_and_the_value_still_holds(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full to stand in for a full disk")
    store = SettingsStore(tmp_path / "settings.json", FollowConfig())
    (tmp_path / ".settings.json.tmp").symlink_to("/dev/full")  # every write: ENOSPC
    assert store.set("diversity", 0.9).diversity == 0.9
    assert "No space left on device" in store.save_error


def _load_in_thread(store: SettingsStore, timeout: float = 20.0) -> tuple[bool, object]:
    """store.load() on a thread of its own: (finished in time, its result or exception)."""
    result: list[object] = []

    def load() -> None:
        try:
            result.append(store.load())
        except BaseException as exc:  # the test reports whatever it was
            result.append(exc)

    thread = threading.Thread(target=load, name="settings-load", daemon=True)
    thread.start()
    thread.join(timeout)
    return not thread.is_alive(), (result[0] if result else None)


@pytest.mark.parametrize("content", [
    "[" * 200_000,  # past the size cap
    "[" * 20_000,  # under the cap, deeper than the JSON parser's recursion limit
    b"\xff\xfe{\x00",  # not UTF-8
    '{"mode": "off"',  # cut short
    '["mode", "off"]',  # the wrong shape
    '{"follow": {"mode": "off"}, "slideshow": ["date"]}',
], ids=["200k-brackets", "20k-brackets", "not-utf8", "cut-short", "a-list", "a-section-a-list"])
def test_a_corrupt_file_is_moved_aside_with_one_line_and_the_config_applies(tmp_path, caplog,
                                                                          content):
    path = tmp_path / "settings.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    store = SettingsStore(path, FollowConfig(mode="gentle"))
    assert store.load() == FollowConfig(mode="gentle")
    aside = [p.name for p in tmp_path.iterdir() if p.name.startswith("settings.json.corrupt-")]
    assert len(aside) == 1 and not path.exists()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and aside[0] in warnings[0].getMessage()
    assert store.set("mode", "off").mode == "off"  # and the next save makes a good file
    assert SettingsStore(path, FollowConfig()).load().mode == "off"


def test_a_fifo_in_place_of_the_file_does_not_hang_the_start(tmp_path, caplog):
    path = tmp_path / "settings.json"
    os.mkfifo(path)
    try:
        finished, result = _load_in_thread(SettingsStore(path, FollowConfig(mode="gentle")))
        assert finished, "load() blocked on the FIFO"
        assert result == FollowConfig(mode="gentle")
        assert not path.exists() and "not a regular file" in caplog.text
    finally:
        # A load still blocked in open() gets a writer, so its thread ends.
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


class StepClock:
    """The loop's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def count_writes(monkeypatch, path: Path) -> list[str]:
    """Every time settings.json is replaced (one fsynced write each), its new text."""
    written: list[str] = []
    replace = os.replace

    def counting(src, dst):
        replace(src, dst)
        if Path(dst) == path:
            written.append(path.read_text())

    monkeypatch.setattr(settings_store.os, "replace", counting)
    return written


def test_a_flood_of_changes_is_written_once_a_second_and_the_last_value_survives(tmp_path,
                                                                               monkeypatch):
    clock = StepClock()
    written = count_writes(monkeypatch, tmp_path / "settings.json")
    store = SettingsStore.in_directory(tmp_path, FollowConfig(), clock=clock)
    store.load()
    for i in range(1, 2001):  # 2,000 changes in 10 s, as a script gone wrong would send them
        clock.now += 0.005
        assert store.set("diversity", i / 2000).diversity == i / 2000  # in use at once
        if i % 100 == 0:
            assert store.flush() == ""  # the loop's tick, every 0.5 s
    assert 2 <= len(written) <= 11  # the first at once, then at most one a second
    assert '"diversity": 1.0' not in written[-1]  # the last change waits for the next second
    store.save_now()  # the daemon stops: nothing set is lost
    assert len(written) <= 12
    assert SettingsStore.in_directory(tmp_path, FollowConfig()).load().diversity == 1.0


def test_a_change_held_back_is_written_by_the_tick_once_a_second_has_passed(tmp_path, monkeypatch):
    clock = StepClock()
    written = count_writes(monkeypatch, tmp_path / "settings.json")
    store = SettingsStore.in_directory(tmp_path, FollowConfig(), clock=clock)
    store.set("mode", "off")
    store.set("threshold", 0.5)
    assert len(written) == 1 and '"threshold"' not in written[0]
    clock.now += 0.9
    store.flush()
    assert len(written) == 1
    clock.now += 0.1
    store.flush()
    assert len(written) == 2 and '"threshold": 0.5' in written[1]
    store.flush()
    store.save_now()
    assert len(written) == 2  # nothing new: nothing written


def test_a_held_back_write_that_fails_is_handed_to_the_loop_once(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full to stand in for a full disk")
    clock = StepClock()
    store = SettingsStore.in_directory(tmp_path, FollowConfig(), clock=clock)
    store.set("mode", "off")
    assert store.save_error == ""
    (tmp_path / ".settings.json.tmp").symlink_to("/dev/full")  # from now on: ENOSPC
    store.set("diversity", 0.9)  # held back
    assert store.flush() == "" and store.save_error == ""
    clock.now += 1.0
    error = store.flush()
    assert "settings not saved" in error and "No space left on device" in error
    assert store.save_error == error and store.effective.diversity == 0.9
    assert store.flush() == ""  # handed over once; save_error still says so


def test_settings_that_could_not_be_saved_are_saved_once_the_folder_has_room(tmp_path):
    # A full disk: the values held, but the write was not tried again until the next change,
    # so a clean stop after the disk had room again lost them at the next start.
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full to stand in for a full disk")
    clock = StepClock()
    store = SettingsStore.in_directory(tmp_path, FollowConfig(), clock=clock)
    full = tmp_path / ".settings.json.tmp"
    full.symlink_to("/dev/full")  # one write: ENOSPC (the failed write removes it: room again)
    store.set("diversity", 0.9)
    assert "No space left on device" in store.flush()
    clock.now += settings_store.RETRY_S - 1
    store.flush()
    assert not (tmp_path / "settings.json").exists()  # not tried at every tick
    clock.now += 1
    assert store.flush() == "" and store.save_error == ""
    assert SettingsStore.in_directory(tmp_path, FollowConfig()).load().diversity == 0.9
    full.symlink_to("/dev/full")
    store.set("diversity", 0.3)
    clock.now += 1
    assert "No space left on device" in store.flush()
    store.save_now()  # the daemon stops: tried once more
    assert SettingsStore.in_directory(tmp_path, FollowConfig()).load().diversity == 0.3


def test_a_change_after_a_failed_save_is_tried_as_soon_as_any(tmp_path):
    # A person frees the disk and changes a setting to see it saved: it waited for the
    # 30 s retry of the failed write.
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full to stand in for a full disk")
    clock = StepClock()
    store = SettingsStore.in_directory(tmp_path, FollowConfig(), clock=clock)
    (tmp_path / ".settings.json.tmp").symlink_to("/dev/full")  # one write: ENOSPC, then room
    store.set("diversity", 0.9)
    assert "No space left on device" in store.flush()
    clock.now += settings_store.MIN_WRITE_INTERVAL_S
    store.set("diversity", 0.5)
    assert store.save_error == ""
    assert SettingsStore.in_directory(tmp_path, FollowConfig()).load().diversity == 0.5


def test_a_flood_of_commands_through_the_loop_writes_a_few_times(tmp_path, monkeypatch):
    from frame_daemon.config import parse_config
    from frame_daemon.daemon import TICK_S, Daemon
    from frame_daemon.events import Command, CommandName
    from memory_mpd import Clock, MemoryMpd, MemorySession

    clock = Clock()
    state_dir = tmp_path / "state"
    cfg = parse_config({"state": {"directory": str(state_dir)}})
    daemon = Daemon(cfg, clock=clock, mpd_session=MemorySession(MemoryMpd(clock, {})))
    written = count_writes(monkeypatch, state_dir / "settings.json")
    state_dir.mkdir()
    for i in range(1, 2001):  # 2,000 commands in 10 s
        daemon.handle(Command(CommandName.DIVERSITY, i / 2000))
        clock.advance(0.005)
        daemon.on_time(clock.now)
    assert daemon.state.diversity == 1.0
    for _ in range(int(2 / TICK_S)):  # the commands stop; the loop ticks on
        clock.advance(TICK_S)
        daemon.on_time(clock.now)
    assert 2 <= len(written) <= 13
    assert json.loads(written[-1])["follow"]["diversity"] == 1.0  # written without waiting for a stop


def test_the_slideshow_settings_are_checked_kept_and_reset_with_the_follow_settings(tmp_path):
    source = SourceConfig(kind="slideshow", interval_s=30.0, order="shuffle")
    store = SettingsStore.in_directory(tmp_path, FollowConfig(), source=source)
    store.load()
    assert store.slideshow == SlideshowSettings(30.0, "shuffle", False, "All photos", False, True)
    store.set("mode", "off")
    for key, value in (("interval_s", 45), ("order", "date"), ("album", "trip"),
                       ("paused", True), ("screen", False), ("photos_follow_music", True)):
        store.set_slideshow(key, value)
    for key, value, why in (("interval_s", 1.0, r"source\.interval_s: .*2"),
                            ("order", "random", "must be one of"), ("album", " ", "subfolders"),
                            ("paused", "yes", "true or false"), ("fit", "fill", "not a slideshow")):
        with pytest.raises(SettingRejected, match=why):
            store.set_slideshow(key, value)
    wanted = SlideshowSettings(45.0, "date", True, "trip", True, False)
    assert store.slideshow == wanted
    store.save_now()
    again = SettingsStore.in_directory(tmp_path, FollowConfig(), source=source)
    assert again.load().mode == "off" and again.slideshow == wanted
    again.reset()
    again.save_now()
    fresh = SettingsStore.in_directory(tmp_path, FollowConfig(), source=source)
    assert fresh.load() == FollowConfig()
    assert fresh.slideshow == SlideshowSettings.from_config(source)


def test_a_saved_slideshow_value_the_config_no_longer_allows_is_dropped(tmp_path, caplog):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"follow": {"mode": "off"},
                                "slideshow": {"interval_s": 1, "order": "date", "colour": 1}}))
    store = SettingsStore(path, FollowConfig(), source=SourceConfig(interval_s=60.0))
    assert store.load().mode == "off"
    assert (store.slideshow.interval_s, store.slideshow.order) == (60.0, "date")
    assert "slideshow interval_s = 1 ignored" in caplog.text and "colour" in caplog.text


def test_settings_an_older_version_kept_elsewhere_move_in_once(tmp_path):
    source = SourceConfig(order="name")
    store = SettingsStore.in_directory(tmp_path, FollowConfig(), source=source)
    store.load()
    assert store.migrate_slideshow({"order": "date", "interval_s": 1.0}, "the photo cache")
    assert store.slideshow.order == "date" and store.slideshow.interval_s == 30.0  # 1 s: dropped
    saved = json.loads((tmp_path / "settings.json").read_text())  # written at once
    assert saved["slideshow"] == {"order": "date"}
    # A later start: the file has the slideshow's settings, so an old copy left behind loses.
    later = SettingsStore.in_directory(tmp_path, FollowConfig(), source=source)
    later.load()
    later.set_slideshow("order", "shuffle")
    assert later.migrate_slideshow({"order": "date"}, "the photo cache")
    assert later.slideshow.order == "shuffle"


def test_a_huge_hand_edited_value_gets_a_short_log_line(tmp_path, caplog):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"follow": {"mode": "x" * 40_000},
                                "slideshow": {"k" * 5_000: ["a"] * 1_000}}))
    SettingsStore(path, FollowConfig()).load()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and max(map(len, lines)) < 600
