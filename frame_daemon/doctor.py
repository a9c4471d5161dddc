"""`frame-daemon doctor`: check an installation end to end, one line per check with its fix.

Each check is a small function that returns a `Finding`; none of them changes anything (the MQTT
check connects and disconnects without publishing, the state check creates and removes one empty
folder). FAIL makes the exit code 1; WARN is something to know about that does not stop the frame.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from frame_daemon.config import Config, ConfigError, load_config
from frame_daemon.errors import FrameDaemonError

OK, WARN, FAIL, SKIP = "OK", "WARN", "FAIL", "SKIP"
UNIT = "frame-daemon.service"
# The server role (install.sh --server): the timer runs the index service, which ends after each run.
INDEX_TIMER, INDEX_UNIT = "frame-daemon-index.timer", "frame-daemon-index.service"
NETWORK_TIMEOUT_S = 5.0
# CPU features the TFLite kernels (XNNPACK, ruy) use for int8 models, by /proc/cpuinfo name.
CPU_FEATURES = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni",  # x86-64
                "asimd", "asimddp", "i8mm", "neon", "vfpv4")  # 64-bit and 32-bit ARM


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    status: str  # OK | WARN | FAIL | SKIP
    detail: str
    fix: str = ""

    def line(self) -> str:
        fix = f" -> fix: {self.fix}" if self.fix else ""
        return f"{self.status:<4}  {self.check:<12}  {self.detail}{fix}"


def check_config(path: Path) -> tuple[Finding, Config | None]:
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        problems = "; ".join(exc.problems)
        return Finding("config", FAIL, f"{exc.source}: {problems}",
                       f"edit the file ('frame-daemon check-config --config {path}' lists every "
                       "problem)"), None
    return Finding("config", OK, f"{cfg.file} is valid"), cfg


def cpu_description() -> str:
    """Machine, CPU model and the int8-relevant features the kernel reports."""
    model, flags = "", set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if key == "model name" or (key == "model" and not value.strip().isdigit()):
                model = model or value.strip()
            elif key in ("flags", "features"):
                flags.update(value.split())
    with contextlib.suppress(OSError):  # "Raspberry Pi 4 Model B Rev 1.4" on a Pi
        model = Path("/proc/device-tree/model").read_text(errors="replace").strip("\0\n ") or model
    features = [f for f in CPU_FEATURES if f in flags]
    return (f"{platform.machine()}, {os.cpu_count()} cores" + (f", {model}" if model else "")
            + f"; features: {' '.join(features) or 'none of ' + '/'.join(CPU_FEATURES[:4])}")


def check_model(cfg: Config, runs: int = 20) -> Finding:
    import numpy as np

    from frame_daemon.vision.model import MoodModel

    try:
        model = MoodModel.load(cfg.model.path or None, threads=cfg.model.threads)
    except FrameDaemonError as exc:
        return Finding("model", FAIL, str(exc),
                       "reinstall frame-daemon (the model ships in the package), or fix model.path")
    pixels = np.full((model.size, model.size, 3), 128, dtype=np.uint8)
    model.infer(pixels)  # the first invoke prepares the kernels
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        model.infer(pixels)
        times.append(time.perf_counter() - start)
    try:
        version = metadata.version(model.runtime)
    except metadata.PackageNotFoundError:
        version = "?"
    invoke_ms = 1000 * statistics.median(times)
    return Finding("model", OK, f"{model.meta.get('name', '?')} loads with {model.runtime} {version}, "
                                f"{cfg.model.threads} thread(s); invoke {invoke_ms:.1f} ms (median of "
                                f"{runs}); CPU {cpu_description()}")


PHOTOS_TRIED = 5  # a slideshow folder: photos decoded before it is called unreadable
PHOTOS_COUNTED = 100_000  # and photos counted before the count is given as "at least"


def _read_photo(cfg: Config, photo: Path) -> str | None:
    """Decode `photo` as the daemon does (its decoder, size and memory guards); None if it reads,
    else the reason it cannot."""
    from frame_daemon.vision.photo import decode_photo

    try:
        decode_photo(photo, 224, cfg.model.max_pixels, cfg.model.max_decode_mb * 2**20)
    except FrameDaemonError as exc:
        return str(exc)
    return None


def check_photo_source(cfg: Config) -> Finding:
    """The photo source, read the way the daemon reads it: the watched file (through a symlink),
    the newest image in the watched folder, or the slideshow's folders searched recursively."""
    if cfg.source.kind == "slideshow":
        return check_slideshow_folders(cfg)
    from frame_daemon.sources.watch import newest_image

    path = Path(cfg.source.path).expanduser()
    folder = path if cfg.source.kind == "folder" else path.parent
    if not folder.is_dir():
        return Finding("photo source", FAIL, f"{folder}: no such folder to watch",
                       "set source.path to where the frame software writes its photo")
    if not os.access(folder, os.R_OK | os.X_OK):
        return Finding("photo source", FAIL, f"{folder}: not readable by this user",
                       "make it readable (chmod o+rx) or add the service user to its group")
    if cfg.source.kind == "file" and path.is_dir():
        return Finding("photo source", FAIL, f"{path} is a folder, but source.kind is \"file\"",
                       "set source.kind = \"folder\" (the newest photo in it is on show) or "
                       "\"slideshow\" (frame-daemon shows the photos in it)")
    photo = newest_image(folder) if cfg.source.kind == "folder" else path
    if photo is not None and photo.is_symlink() and not photo.exists():
        return Finding("photo source", FAIL, f"{photo} is a symlink to {os.readlink(photo)}, "
                                             "which is not there", "check the frame software")
    if photo is None or not photo.exists():
        return Finding("photo source", WARN, f"{folder} is readable but holds no photo yet",
                       "show a photo on the frame, then run doctor again")
    problem = _read_photo(cfg, photo)
    if problem is not None:
        return Finding("photo source", FAIL, problem, "check the frame software writes whole images")
    return Finding("photo source", OK, f"{photo} is a readable photo")


def check_slideshow_folders(cfg: Config) -> Finding:
    """The slideshow's folders (source.path and source.paths): there, readable, with photos in
    them or their subfolders that its decoder reads; and pygame, which it shows them with."""
    import importlib.util

    from frame_daemon.sources.photo_library import walk_photos

    if importlib.util.find_spec("pygame") is None:
        return Finding("photo source", FAIL, "source.kind is \"slideshow\" but pygame is not "
                                             "installed", "pip install 'frame-daemon[slideshow]'")
    folders = [Path(p).expanduser() for p in (cfg.source.path, *cfg.source.paths)]
    missing = [f for f in folders if not f.is_dir()]
    if len(missing) == len(folders):
        return Finding("photo source", FAIL, f"{', '.join(map(str, missing))}: no such folder "
                                             "(the slideshow waits for it, showing a message)",
                       "plug in and mount the photo stick, or set source.path (and source.paths) "
                       "to your photo folders")
    unreadable = [f for f in folders if f.is_dir() and not os.access(f, os.R_OK | os.X_OK)]
    if unreadable:
        return Finding("photo source", FAIL, f"{', '.join(map(str, unreadable))}: not readable "
                                             "by this user",
                       "make it readable (chmod -R o+rX) or add the service user to its group")
    present = [f for f in folders if f.is_dir()]
    count, read, bad = 0, None, []
    for folder in present:
        for path, _ in walk_photos(folder):
            count += 1
            if read is None and len(bad) < PHOTOS_TRIED:
                problem = _read_photo(cfg, Path(path))
                if problem is None:
                    read = path
                else:
                    bad.append(problem)
            if count >= PHOTOS_COUNTED:
                break
        if count >= PHOTOS_COUNTED:
            break
    where = ", ".join(map(str, present))
    if count == 0:
        return Finding("photo source", WARN, f"{where} readable but holds no photo yet "
                                             "(searched with its subfolders)",
                       "copy photos into it; they appear on the frame by themselves")
    if read is None:
        return Finding("photo source", FAIL, f"none of the first {len(bad)} photos in {where} "
                                             f"can be read: {bad[0]}",
                       "check the photos (the slideshow skips unreadable ones)")
    detail = (f"{count}{'+' if count >= PHOTOS_COUNTED else ''} photo(s) in {where} "
              f"(with subfolders); {read} is a readable photo")
    if bad:
        detail += f"; {len(bad)} unreadable before it (skipped by the slideshow): {bad[0]}"
    if missing:
        return Finding("photo source", WARN, f"{detail}; {', '.join(map(str, missing))}: no such "
                                             "folder", "plug in and mount the photo stick, or "
                                                       "drop it from source.paths")
    return Finding("photo source", OK, detail)


def check_mpd(cfg: Config) -> Finding:
    import mpd

    address = cfg.mpd.host if cfg.mpd.host.startswith("/") else f"{cfg.mpd.host}:{cfg.mpd.port}"
    client = mpd.MPDClient()
    client.timeout = min(cfg.mpd.timeout_s, NETWORK_TIMEOUT_S)
    try:
        client.connect(cfg.mpd.host, cfg.mpd.port)
    except (OSError, mpd.ConnectionError) as exc:
        return Finding("mpd", FAIL, f"cannot reach MPD at {address}: {exc}",
                       "start MPD (sudo systemctl enable --now mpd) or fix mpd.host/mpd.port")
    except mpd.ProtocolError as exc:
        from frame_daemon.music.mpd.client import not_mpd

        return Finding("mpd", FAIL, f"{address}: {not_mpd(exc)}",
                       "set mpd.port to MPD's port (6600 unless mpd.conf sets port)")
    try:
        if cfg.mpd.password:
            client.password(cfg.mpd.password)
        version = client.mpd_version or "?"
        commands = set(client.commands())
        tags = {t.lower() for t in client.tagtypes()}
        songs = client.stats().get("songs", "?")
    except mpd.CommandError as exc:
        return Finding("mpd", FAIL, f"MPD at {address} refused us: {exc}", "check mpd.password")
    except (OSError, mpd.ConnectionError) as exc:
        return Finding("mpd", FAIL, f"lost MPD at {address}: {exc}", "check MPD's log")
    finally:
        with contextlib.suppress(OSError, mpd.ConnectionError):
            client.disconnect()
    detail = (f"MPD {version} at {address}, {songs} songs; Mood tag: "
              f"{'yes' if 'mood' in tags else 'no'}; stickers: {'yes' if 'sticker' in commands else 'no'}")
    fixes = []
    if "mood" not in tags and not cfg.mpd.music_directory:  # with the files, it reads their tags
        fixes.append("MPD 0.24+ knows the Mood tag; with an older MPD set mpd.music_directory so "
                     "frame-daemon reads the files' mood tags itself")
    if "sticker" not in commands:
        fixes.append("set sticker_file in mpd.conf to enable stickers")
    return Finding("mpd", WARN if fixes else OK, detail, "; ".join(fixes))


def check_music_folder(cfg: Config, server: bool = False) -> Finding:
    if not cfg.mpd.music_directory:
        if server:  # the server role exists to analyse the files
            return Finding("music folder", FAIL, "mpd.music_directory is not set: there is "
                                                 "nothing to analyse", "set it to MPD's music "
                                                 "folder as seen from this machine")
        return Finding("music folder", OK, "not set: moods come from MPD's tags and genres only",
                       "")
    folder = Path(cfg.mpd.music_directory).expanduser()
    if not folder.is_dir():
        return Finding("music folder", FAIL, f"{folder}: no such folder here",
                       "set mpd.music_directory to MPD's music_directory as seen from this machine")
    try:
        entries = sum(1 for _ in zip(os.scandir(folder), range(1000), strict=False))
    except OSError as exc:
        return Finding("music folder", FAIL, f"{folder}: not readable ({exc.strerror})",
                       "make it readable or add the service user to its group (SupplementaryGroups=)")
    return Finding("music folder", OK, f"{folder} readable ({entries}{'+' if entries == 1000 else ''} "
                                       "entries at the top)")


def check_mqtt(cfg: Config) -> Finding:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from frame_daemon.mqtt_link import broker_password

    where = f"{cfg.mqtt.host}:{cfg.mqtt.port}" + (" (TLS)" if cfg.mqtt.tls else "")
    answered = threading.Event()
    result: list[object] = []

    def on_connect(client, userdata, flags, reason_code, properties) -> None:  # paho's thread
        result.append(reason_code)
        answered.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"frame-daemon-doctor-{os.getpid()}")
    client.on_connect = on_connect
    try:
        if cfg.mqtt.username:
            client.username_pw_set(cfg.mqtt.username, broker_password(cfg.mqtt) or None)
        if cfg.mqtt.tls:
            client.tls_set(ca_certs=cfg.mqtt.ca_file or None, certfile=cfg.mqtt.cert_file or None,
                           keyfile=cfg.mqtt.key_file or None)
        client.connect(cfg.mqtt.host, cfg.mqtt.port, keepalive=cfg.mqtt.keepalive_s)
    except FrameDaemonError as exc:
        return Finding("mqtt", FAIL, str(exc), "fix mqtt.password_file")
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        return Finding("mqtt", FAIL, f"cannot reach the broker at {where}: {exc}",
                       "start the broker or fix mqtt.host/mqtt.port/mqtt.tls/mqtt.ca_file")
    client.loop_start()
    try:
        if not answered.wait(NETWORK_TIMEOUT_S):
            return Finding("mqtt", FAIL, f"the broker at {where} did not answer the MQTT handshake",
                           "check mqtt.port is an MQTT listener (and mqtt.tls matches it)")
        reason = result[0]
        if getattr(reason, "is_failure", False):
            return Finding("mqtt", FAIL, f"the broker at {where} refused us: {reason}",
                           "check mqtt.username and the password (password_file or "
                           "FRAME_DAEMON_MQTT_PASSWORD) against the broker's accounts")
    finally:
        client.disconnect()
        client.loop_stop()
    user = f" as '{cfg.mqtt.username}'" if cfg.mqtt.username else " (anonymous)"
    return Finding("mqtt", OK, f"broker at {where} accepted us{user}")


def check_state_folder(cfg: Config) -> Finding:
    folder = cfg.state_directory
    # The daemon creates a missing state folder: then its nearest existing parent must be writable.
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("/"))
    try:
        probe = tempfile.mkdtemp(dir=existing, prefix=".frame-daemon-doctor-")
        os.rmdir(probe)
    except OSError as exc:
        where = folder if existing == folder else f"{existing} (to create {folder})"
        return Finding("state folder", FAIL, f"{where}: not writable ({exc.strerror})",
                       "chown it to the user the daemon runs as, or set state.directory")
    return Finding("state folder", OK, f"{folder} writable" if existing == folder
                   else f"{folder} will be created in {existing} (writable)")


def _systemctl(*args: str) -> str:
    out = subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=10)
    return out.stdout.strip()


def _enabled(unit: str, what: str, by_hand: str, install: str) -> Finding | str:
    """The unit's is-enabled state, or the finding when systemd or the unit is not there."""
    if shutil.which("systemctl") is None or not Path("/run/systemd/system").is_dir():
        return Finding("service", WARN, f"systemd is not running here: no {what} to check", "")
    enabled = _systemctl("is-enabled", unit) or "not installed"
    if enabled in ("not installed", "not-found", ""):
        return Finding("service", WARN, f"{unit} is not installed (fine when you run "
                                        f"'{by_hand}' yourself)", install)
    return enabled


def check_service() -> Finding:
    enabled = _enabled(UNIT, "service", "frame-daemon run", "sudo scripts/install.sh")
    if isinstance(enabled, Finding):
        return enabled
    active = _systemctl("is-active", UNIT)
    detail = f"{UNIT} {enabled}, {active}"
    if active != "active":
        return Finding("service", FAIL, detail, f"journalctl -u {UNIT} -n 50 shows why; then "
                                                f"sudo systemctl restart {UNIT}")
    if enabled != "enabled":
        return Finding("service", WARN, detail, f"sudo systemctl enable {UNIT} (start at boot)")
    return Finding("service", OK, detail)


def check_index_service() -> Finding:
    """The server role's timer is on, and the last index run did not fail."""
    enabled = _enabled(INDEX_TIMER, "timer", "frame-daemon index", "sudo scripts/install.sh --server")
    if isinstance(enabled, Finding):
        return enabled
    active = _systemctl("is-active", INDEX_TIMER)
    last = _systemctl("show", "--property=Result", "--value", INDEX_UNIT) or "?"
    detail = f"{INDEX_TIMER} {enabled}, {active}; last index run: {last}"
    if last not in ("success", "?"):
        return Finding("service", FAIL, detail, f"journalctl -u {INDEX_UNIT} -n 50 shows why; "
                                                f"then sudo systemctl start {INDEX_UNIT}")
    if enabled != "enabled" or active != "active":
        return Finding("service", WARN, detail, f"sudo systemctl enable --now {INDEX_TIMER}")
    return Finding("service", OK, detail)


def check_ffmpeg(cfg: Config) -> Finding:
    import soundfile

    if not cfg.mpd.music_directory:
        return Finding("ffmpeg", OK, "not needed (no music folder to analyse)")
    found = shutil.which("ffmpeg")
    if found:
        return Finding("ffmpeg", OK, f"{found} (decodes what libsndfile cannot: AAC/M4A, WMA, ...)")
    has_mp3 = "MP3" in soundfile.available_formats()
    return Finding("ffmpeg", WARN if has_mp3 else FAIL,
                   "not installed: AAC/M4A, ALAC and WMA tracks are not analysed"
                   + ("" if has_mp3 else "; this libsndfile cannot decode MP3 either"),
                   "sudo apt install ffmpeg")


def check_stickers(cfg: Config, server: bool = False) -> Finding:
    """Whether analyses can be shared between frames through MPD's sticker database."""
    from frame_daemon.music.mpd.client import MpdLink
    from frame_daemon.music.mpd.stickers import ENABLE, MoodStickers

    link = MpdLink(cfg.mpd.host, cfg.mpd.port, cfg.mpd.password,
                   min(cfg.mpd.timeout_s, NETWORK_TIMEOUT_S))
    try:
        available = MoodStickers(link).available()
    except FrameDaemonError as exc:
        return Finding("stickers", SKIP, f"MPD not reachable ({exc})")
    finally:
        link.close()
    if not available:  # the server role analyses for the frames: without stickers, for no one
        return Finding("stickers", FAIL if server else WARN, "MPD has no sticker database: audio "
                       "analyses are not shared with other frames", ENABLE)
    role = ("this machine analyses the files and shares the results" if cfg.mpd.music_directory
            else "this frame uses the analyses of the machine that reads the files (run "
                 "'frame-daemon index' there)")
    return Finding("stickers", OK, f"MPD's sticker database is on: {role}")


def check_clock(cfg: Config | None) -> Finding:
    """Whether this machine's clock is set by NTP: the display schedule and the taste's decay read
    it, and the frames of a household take turns by their clocks (a Pi has no battery clock)."""
    if shutil.which("timedatectl") is None:
        return Finding("clock", SKIP, "no timedatectl here: cannot tell whether the clock is "
                                      "synchronised")
    try:
        out = subprocess.run(["timedatectl", "show", "--property=NTPSynchronized", "--value"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Finding("clock", SKIP, f"timedatectl did not answer ({exc})")
    synced = out.stdout.strip()
    if out.returncode or synced not in ("yes", "no"):
        said = (out.stderr.strip() or out.stdout.strip()).splitlines()
        return Finding("clock", SKIP, "cannot tell whether the clock is synchronised"
                       + (f" ({said[-1][:120]})" if said else ""))
    if synced == "yes":
        return Finding("clock", OK, "synchronised by NTP")
    household = cfg is not None and cfg.household.enabled
    return Finding("clock", WARN, "not synchronised by NTP: the display schedule"
                   + (" and the household's turns (frames compare photo times)" if household else "")
                   + " read it", "sudo timedatectl set-ntp true, and let the frame reach a time "
                                 "server (a Pi has no battery clock)")


def run_doctor(config_path: Path, out: Callable[[str], None] = print, server: bool = False) -> int:
    """Print one line per check; 0 when nothing failed, 1 otherwise. `server`: the server role
    (`frame-daemon index` beside MPD), which needs no model, photo source or broker."""
    out(f"frame-daemon doctor ({sys.executable})" + (": the server role" if server else ""))
    finding, cfg = check_config(config_path)
    out(finding.line())
    findings = [finding]
    checks: list[tuple[str, Callable[[], Finding]]]
    service = check_index_service if server else check_service
    if cfg is None:
        names = (("mpd", "music folder", "state folder", "ffmpeg", "stickers") if server else
                 ("model", "photo source", "mpd", "music folder", "mqtt", "state folder", "ffmpeg",
                  "stickers"))
        for name in names:
            out(Finding(name, SKIP, "needs a valid config").line())
        checks = [("service", service)]
    elif server:
        checks = [("mpd", lambda: check_mpd(cfg)),
                  ("music folder", lambda: check_music_folder(cfg, server=True)),
                  ("state folder", lambda: check_state_folder(cfg)), ("service", service),
                  ("ffmpeg", lambda: check_ffmpeg(cfg)),
                  ("stickers", lambda: check_stickers(cfg, server=True))]
    else:
        checks = [("model", lambda: check_model(cfg)), ("photo source", lambda: check_photo_source(cfg)),
                  ("mpd", lambda: check_mpd(cfg)), ("music folder", lambda: check_music_folder(cfg)),
                  ("mqtt", lambda: check_mqtt(cfg)), ("state folder", lambda: check_state_folder(cfg)),
                  ("service", service), ("ffmpeg", lambda: check_ffmpeg(cfg)),
                  ("stickers", lambda: check_stickers(cfg))]
    if not server:  # the frames' turns and the display schedule read the clock; indexing does not
        checks.append(("clock", lambda: check_clock(cfg)))
    for name, check in checks:
        try:
            finding = check()
        except Exception as exc:  # a doctor reports, it never dies with a traceback
            finding = Finding(name, FAIL, f"the check itself failed: {exc!r}",
                              "please report this with the output of 'frame-daemon -v doctor'")
        findings.append(finding)
        out(finding.line())
    failed = sum(f.status == FAIL for f in findings)
    out("all is well" if not failed else f"{failed} check(s) failed")
    return 1 if failed else 0
