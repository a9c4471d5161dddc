"""What the benchmark scripts share: real servers, a frame daemon on them, the photos it shows and
the library it plays, and the figures they sample (RSS of a process tree, vitals, CPU seconds).

Every wait here has a timeout and fails with what it waited for; a wait on the daemon also fails
at once, with the end of its log, when the daemon has exited.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))
from bench_score import demo_photos, save_with_sensor_noise  # noqa: E402
from frame_daemon.config import FollowConfig  # noqa: E402
from harness import DaemonProcess, write_config  # noqa: E402
from servers import Mosquitto, Mpd, MqttRecorder, wait_for  # noqa: E402

STATE = "frame-daemon/frame/state"
TICKS = os.sysconf("SC_CLK_TCK")


def mb(n: float) -> str:
    return f"{n / 2**20:.1f} MB"


@contextlib.contextmanager
def servers(work: Path, music: Path, mixer: str = "none") -> Iterator[tuple[Mpd, Mosquitto]]:
    """A real MPD on `music` (with a sticker file of its own) and a real mosquitto, stopped on
    the way out whatever happens."""
    mpd = Mpd(work / "mpd", music, mixer=mixer)
    broker = Mosquitto(work / "mosquitto")
    try:
        mpd.start()
        broker.start()
        yield mpd, broker
    finally:
        for server in (mpd, broker):
            with contextlib.suppress(Exception):
                server.stop()


@dataclass
class Frame:
    """A `frame-daemon run` in follow mode on a file source, and a recorder of its state."""

    current: Path
    recorder: MqttRecorder
    daemon: DaemonProcess

    @property
    def pid(self) -> int:
        assert self.daemon.proc is not None
        return self.daemon.proc.pid

    def state(self) -> dict | None:
        return self.recorder.json(STATE)

    def wait(self, condition: Callable[[], Any], timeout: float, what: str,
             interval: float = 0.02) -> Any:
        """`wait_for`, failing at once if the daemon exits, and with its log's end on timeout."""

        def check() -> Any:
            if not self.daemon.alive():
                raise RuntimeError(f"the daemon exited ({self.daemon.proc.returncode}) while "
                                   f"waiting for {what}; its log ends:\n{self.log_tail()}")
            return condition()

        try:
            return wait_for(check, timeout, interval=interval, what=what)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; the daemon's log ends:\n{self.log_tail()}") from None

    def wait_state(self, condition: Callable[[dict], Any], timeout: float, what: str,
                   interval: float = 0.02) -> Any:
        return self.wait(lambda: (s := self.state()) and condition(s), timeout, what, interval)

    def log_tail(self, chars: int = 5000) -> str:
        return self.daemon.log()[-chars:]

    def close(self) -> None:
        if self.daemon.alive():
            self.daemon.stop(signal.SIGTERM)
        self.recorder.close()


def start_frame(work: Path, mpd: Mpd, broker: Mosquitto, photo: Path, name: str = "frame",
                follow: str | None = None) -> Frame:
    """Put `photo` on show in a frame folder of its own and start the daemon on it; its config,
    state folder and log are named after `name` in `work`. `follow`: the [follow] keys (the
    tests' quick settings by default, "" for the shipped defaults)."""
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    current = folder / "current.jpg"
    shutil.copy(photo, current)
    config = write_config(work / f"{name}.toml", photo=current, mpd=mpd, mqtt=broker,
                          state_dir=work / f"state-{name}", follow=follow)
    recorder = MqttRecorder(broker.port, [STATE])
    daemon = DaemonProcess(config, work / f"{name}.log")
    daemon.start()
    return Frame(current, recorder, daemon)


class TreeRss:
    """Samples the summed RSS (and PSS, which shares common library pages out fairly) of a
    process and its children every 50 ms; keeps the peaks."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def now(self) -> int:
        return self._sum(lambda p: p.memory_info().rss)

    def pss(self) -> int:
        return self._sum(lambda p: p.memory_full_info().pss)

    def _sum(self, size: Callable[[psutil.Process], int]) -> int:
        total = 0
        with contextlib.suppress(psutil.Error):
            for p in [self.proc, *self.proc.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a child that just exited
                    total += size(p)
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.now())
            self.peak_pss = max(self.peak_pss, self.pss())

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def vitals(pid: int) -> dict[str, float]:
    """RSS (MB), open file descriptors and threads of a process, from /proc."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)
    return {"rss_mb": int(status["VmRSS"].split()[0]) / 1024,
            "fds": len(os.listdir(f"/proc/{pid}/fd")), "threads": int(status["Threads"])}


def cpu_s(pid: int) -> float:
    """CPU seconds of `pid` and every process below it (its own, its reaped children's, and its
    live children's)."""
    total = 0.0
    parents: dict[int, int] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry.name)] = fields
        parents[int(entry.name)] = int(fields[1])

    def below(p: int) -> bool:
        while p > 1:
            if p == pid:
                return True
            p = parents.get(p, 0)
        return False

    for p, fields in stats.items():
        if below(p):
            # utime, stime, cutime, cstime: fields 14-17 of stat, 12-15 after the name
            total += sum(int(x) for x in fields[11:15]) / TICKS
    return total


def linked_library(music: Path, tracks: int, tone: np.ndarray) -> None:
    """One FLAC of `tone` (8 kHz) per artist, hard-linked `tracks` times into Artist/Album
    folders (50 tracks an album, 500 an artist)."""
    import soundfile

    for i in range(tracks):
        folder = music / f"Artist{i // 500:04d}" / f"Album{i // 50:05d}"
        one = music / f"Artist{i // 500:04d}" / "one.flac.src"  # ext4: 65,000 links a file
        if not one.exists():
            folder.parent.mkdir(parents=True)
            soundfile.write(one, tone, 8000, format="FLAC")
        folder.mkdir(exist_ok=True)
        os.link(one, folder / f"track{i:06d}.flac")


def contrasting_big_photos(folder: Path, size: tuple[int, int] = (6000, 4000)) -> list[Path]:
    """The two demo photos (public domain, scripts/demo_photos.py) whose moods lie farthest apart
    by the shipped model, upscaled to `size` with sensor-like noise, so that every change between
    them moves the music, with the shipped follow threshold too. Chosen, not named: mood-v3 reads
    the astronaut and the coffee, the pair named before, only 0.35 apart (threshold 0.45)."""
    from PIL import Image

    from frame_daemon.vision.model import MoodModel

    model = MoodModel.load()
    moods = {p: model.score(p).mood for p in sorted(demo_photos().glob("*.jpg"))}

    def apart(pair: tuple[Path, Path]) -> float:
        a, b = (moods[p] for p in pair)
        return float(np.hypot(a.valence - b.valence, a.arousal - b.arousal))

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    rng = np.random.default_rng(0)
    for photo in max(itertools.combinations(moods, 2), key=apart):
        target = folder / f"{photo.stem}-{size[0]}x{size[1]}.jpg"
        if not target.exists():
            with Image.open(photo) as im:
                save_with_sensor_noise(im.convert("RGB").resize(size, Image.Resampling.BICUBIC),
                                       target, rng)
        out.append(target)
    big = [model.score(p).mood for p in out]
    gap = float(np.hypot(big[0].valence - big[1].valence, big[0].arousal - big[1].arousal))
    if gap <= FollowConfig().threshold:
        raise SystemExit(f"the two most different demo photos, upscaled, are only {gap:.2f} apart "
                         f"in mood: a change between them would not move the music")
    return out
