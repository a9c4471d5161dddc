"""Typed, frozen configuration from TOML: declared once, every problem reported at once.

Each section is a frozen dataclass; a field's metadata holds its help text and its check. The same
declaration gives the defaults, the validation and the example file (`render_example`), so they
cannot drift apart. Errors read `FILE: section.key: what is wrong` with "did you mean" hints.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import tomllib
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields, replace
from datetime import time
from pathlib import Path
from typing import Any, get_origin, get_type_hints

from frame_daemon.errors import FrameDaemonError

EX_CONFIG = 78  # sysexits.h: configuration error; systemd shows it as "config"

Check = Callable[[Any], str | None]  # returns a problem description, or None if fine


class ConfigError(FrameDaemonError):
    """The configuration has problems; `problems` lists every one of them."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


def opt(default: Any, help: str, check: Check | None = None, secret: bool = False) -> Any:
    """A config key: its default, help text, check, and whether its value must never be shown."""
    # A secret is left out of the config's repr, so no log line or traceback can show it.
    return field(default=default, repr=not secret,
                 metadata={"help": help, "check": check, "secret": secret})


def one_of(*choices: str) -> Check:
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}"


def between(lo: float, hi: float) -> Check:
    return lambda v: None if lo <= v <= hi else f"must be between {lo} and {hi}"


def port_check(v: int) -> str | None:
    return None if 1 <= v <= 65535 else "must be a TCP port between 1 and 65535"


def device_id_check(v: str) -> str | None:
    if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", v):
        return None
    return "must be 1-64 letters, digits, '_' or '-' (it becomes part of MQTT topics)"


def nonempty(v: str) -> str | None:
    return None if v.strip() else "must not be empty"


def folders(v: tuple[str, ...]) -> str | None:
    # An empty name is the working directory: under systemd, '/', the whole filesystem.
    return "an empty folder name (\"\") is not a folder" if any(not p.strip() for p in v) else None


def topic_prefix(v: str) -> str | None:
    # A wildcard is refused by paho inside its network thread, which it ends: no MQTT at all.
    if "+" in v or "#" in v:
        return "must not contain the MQTT wildcards '+' or '#' (it begins MQTT topics)"
    return nonempty(v)


def genre_names(v: tuple[str, ...]) -> str | None:
    for genre in v:
        if not any(c.isalnum() for c in genre):
            return f"not a genre name: {genre[:40]!r}"
    # Home Assistant's text entity shows the list, and keeps at most 255 characters.
    if len(", ".join(v)) > 255:
        return "too long (at most 255 characters in all)"
    return None


def parse_hhmm(text: str) -> time:
    """'07:30' -> 07:30; ValueError with the reason otherwise."""
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"expected a time of day as HH:MM, got {text!r}")
    return time(int(match[1]), int(match[2]))


def hhmm_check(text: str) -> str | None:
    """'' (no schedule) or a time of day."""
    if text == "":
        return None
    try:
        parse_hhmm(text)
    except ValueError as exc:
        return str(exc)
    return None


def command_check(argv: tuple[str, ...]) -> str | None:
    """For a command to run: empty (none), or a program then its arguments."""
    if argv and not argv[0].strip():
        return "the first item must be the program to run (a name on PATH or a full path)"
    return None


def default_state_directory() -> str:
    """systemd's StateDirectory when run as a service, else the XDG state folder."""
    if os.environ.get("STATE_DIRECTORY"):
        return os.environ["STATE_DIRECTORY"].split(":")[0]
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(base, "frame-daemon")


@dataclass(frozen=True)
class SourceConfig:
    kind: str = opt("file", "file: a file or symlink the frame rewrites; folder: the newest "
                            "image in a folder; slideshow: frame-daemon shows the photos itself "
                            "(needs the 'slideshow' extra: pygame)",
                    one_of("file", "folder", "slideshow"))
    path: str = opt("/run/frame/current.jpg", "the watched file, symlink or folder; slideshow: "
                                              "the photo folder (searched recursively)", nonempty)
    settle_s: float = opt(0.3, "quiet time after the last write before the photo is read "
                               "(debounces bursts, waits for complete files)", between(0.0, 30.0))
    paths: tuple[str, ...] = opt((), "slideshow: more photo folders besides path", folders)
    interval_s: float = opt(30.0, "slideshow: seconds each photo shows", between(2.0, 86400.0))
    fade_s: float = opt(1.0, "slideshow: cross-fade between photos (0: none)", between(0.0, 10.0))
    fit: str = opt("fill", "slideshow: fit: the whole photo, black bars; fill: the whole photo "
                           "on a blurred copy of itself", one_of("fit", "fill"))
    order: str = opt("shuffle", "slideshow: shuffle (every photo once before any repeats), "
                                "date (taken, from EXIF; else the file's time) or name",
                     one_of("shuffle", "date", "name"))
    fullscreen: bool = opt(True, "slideshow: full screen (without a desktop: SDL's KMS/DRM); "
                                 "false: a window")
    width: int = opt(0, "slideshow: window width; 0: the screen's (1920 in a window)",
                     between(0, 16384))
    height: int = opt(0, "slideshow: window height; 0: the screen's (1080 in a window)",
                      between(0, 16384))
    overlay: bool = opt(True, "slideshow: show the photo's name and date, the music and its "
                              "mood word on each change")
    overlay_s: float = opt(8.0, "slideshow: seconds the overlay shows before it fades",
                           between(1.0, 3600.0))
    photos_follow_music: bool = opt(False, "slideshow: the reverse direction: when the track "
                                           "changes, show a photo whose mood fits the music "
                                           "(photo moods are scored in the background); the "
                                           "music then no longer follows the photos")
    screen_on_at: str = opt("", "slideshow: the screen turns on at this time of day (HH:MM); "
                                "empty: always on", hhmm_check)
    screen_off_at: str = opt("", "slideshow: the screen turns off (black) at this time of day "
                                 "(HH:MM); overnight hours work too", hhmm_check)
    screen_off_command: tuple[str, ...] = opt(
        (), "slideshow: also power the display down when the screen turns off: a program and its "
            "arguments, run without a shell, e.g. [\"vcgencmd\", \"display_power\", \"0\"] "
            "(see docs/slideshow.md); empty: the screen only shows black", command_check)
    screen_on_command: tuple[str, ...] = opt(
        (), "slideshow: power the display back up when the screen turns on, e.g. "
            "[\"vcgencmd\", \"display_power\", \"1\"]", command_check)
    screen_command_timeout_s: float = opt(10.0, "slideshow: a screen command still running "
                                                "after this long is stopped and reported",
                                          between(0.5, 120.0))


@dataclass(frozen=True)
class ModelConfig:
    path: str = opt("", "model metadata JSON; empty: the shipped mood model (mood-v4)")
    threads: int = opt(1, "inference threads", between(1, 8))
    max_pixels: int = opt(150_000_000, "refuse photos larger than this (decompression-bomb "
                                       "guard)", between(1_000_000, 1_000_000_000))
    max_decode_mb: int = opt(160, "refuse photos whose decoded pixels need more memory than "
                                  "this (PNG, TIFF, WebP, GIF decode in full; JPEG at reduced "
                                  "scale). 160 keeps scoring under 300 MB", between(16, 4096))


@dataclass(frozen=True)
class MpdConfig:
    host: str = opt("localhost", "MPD host name, address or socket path", nonempty)
    port: int = opt(6600, "MPD TCP port", port_check)
    password: str = opt("", "MPD password, if it has one", secret=True)
    music_directory: str = opt("", "optional: MPD's music folder, readable here; enables the "
                                   "files' own tags")
    timeout_s: float = opt(10.0, "network timeout for MPD commands", between(0.5, 120.0))
    keepalive_s: float = opt(30.0, "a connection to MPD silent this long is pinged or renewed: "
                                   "keep it below MPD's connection_timeout (60 s by default), "
                                   "after which MPD closes it", between(1.0, 3600.0))


@dataclass(frozen=True)
class MqttConfig:
    host: str = opt("localhost", "MQTT broker host", nonempty)
    port: int = opt(1883, "MQTT broker port", port_check)
    device_id: str = opt("frame", "one per frame; topics live under frame-daemon/<device_id>/",
                         device_id_check)
    name: str = opt("", "the frame's name in Home Assistant, which prefixes every entity "
                        "('Living Room Valence'); empty: device_id in title case")
    device_name: str = opt("", "deprecated: the old spelling of name")
    username: str = opt("", "broker user name, if the broker needs one")
    password: str = opt("", "broker password; prefer password_file or the environment variable "
                            "FRAME_DAEMON_MQTT_PASSWORD (which wins)", secret=True)
    password_file: str = opt("", "file holding the broker password (first line)")
    tls: bool = opt(False, "connect with TLS")
    ca_file: str = opt("", "TLS: CA certificate file; empty: the system's CAs")
    cert_file: str = opt("", "TLS: client certificate file, if the broker wants one")
    key_file: str = opt("", "TLS: client key file")
    keepalive_s: int = opt(30, "MQTT keepalive; the broker declares us gone after 1.5x this",
                           between(5, 600))
    discovery: bool = opt(True, "announce the frame to Home Assistant (MQTT discovery)")
    discovery_prefix: str = opt("homeassistant", "Home Assistant's discovery prefix", topic_prefix)


@dataclass(frozen=True)
class FollowConfig:
    mode: str = opt("follow", "follow: every change is heard at once (the playing track fades "
                              "out, the new music starts; a track a person put on always "
                              "finishes); gentle: the new music starts after the current track; "
                              "off: only publish the mood", one_of("follow", "gentle", "off"))
    threshold: float = opt(0.45, "how far (plane distance) the mood must move before the music "
                                 "changes", between(0.05, 2.0))
    dwell_s: float = opt(15.0, "how long the mood must stay moved before the music changes",
                         between(0.0, 3600.0))
    jump: float = opt(0.9, "a single confident photo this far from the music's mood is a jump: "
                           "it skips the dwell",
                      between(0.1, 2.9))
    min_interval_s: float = opt(60.0, "never change the music more often than this",
                                between(0.0, 3600.0))
    smoothing: float = opt(1.0, "weight of a new, fully confident photo in the smoothed mood; a "
                                "photo counts as its confidence (1 = no smoothing)",
                           between(0.05, 1.0))
    fade_s: float = opt(2.5, "follow mode: fade the playing track out over this long before the "
                             "new music starts (a volume ramp; the volume is set back exactly); "
                             "0: cut at once", between(0.0, 10.0))
    tracks: int = opt(5, "tracks queued per change (fewer when fewer fit)", between(1, 50))
    max_distance: float = opt(0.5, "only tracks this near the target mood (plane distance) are "
                                   "queued; when none is, the single nearest", between(0.05, 2.9))
    library_fit: float = opt(0.5, "0: match the photo's mood as it is; 1: match its rank among "
                                  "photos to the same rank in this library; between: a blend "
                                  "(photos follow music: the same, the other way round)",
                             between(0.0, 1.0))
    diversity: float = opt(0.3, "0: always the nearest tracks; 1: a wide random pick of good "
                                "matches", between(0.0, 1.0))
    no_repeat: int = opt(50, "recently queued tracks not picked again", between(0, 10000))
    include_genres: tuple[str, ...] = opt((), "only tracks of these genres (empty: all)",
                                          genre_names)
    exclude_genres: tuple[str, ...] = opt((), "never tracks of these genres", genre_names)
    suspend_s: float = opt(1800.0, "after a person changes playback, pause following this long "
                                   "(0: until resumed)", between(0.0, 86400.0))


@dataclass(frozen=True)
class TasteConfig:
    enabled: bool = opt(True, "learn what this household thinks fits (the Fits / Doesn't fit "
                              "buttons, early skips, tracks played through, the music people "
                              "put on themselves) and apply it to the choice; false: neither, "
                              "but what was learned is kept (docs/taste.md)")
    skip_s: float = opt(20.0, "a person skipping a track the frame chose within this many "
                              "seconds counts as a weak 'doesn't fit'", between(0.0, 600.0))
    max_shift: float = opt(0.3, "the most the household's taste moves the music's target on the "
                                "valence-arousal plane", between(0.0, 1.0))
    half_life_days: float = opt(90.0, "a verdict counts half as much after this many days",
                                between(1.0, 3650.0))
    max_verdicts: int = opt(5000, "verdicts kept in the state directory (the oldest go first)",
                            between(100, 100_000))


@dataclass(frozen=True)
class HouseholdConfig:
    enabled: bool = opt(True, "frames whose MPD is the same (host and port) share it: over MQTT "
                              "they agree which one steers the music, and only that one edits "
                              "the queue (docs/household.md); a frame alone steers alone")
    group: str = opt("", "the group's name, for frames that reach one MPD by different names "
                         "(an address and a host name); empty: from mpd.host and mpd.port",
                     lambda v: None if re.fullmatch(r"[A-Za-z0-9_-]{0,64}", v) else
                     "must be up to 64 letters, digits, '_' or '-' (it becomes part of MQTT "
                     "topics)")
    steer: str = opt("last", "last: the frame whose photo changed last steers the music (held "
                             "at least its follow.min_interval_s); blend: the music is for the "
                             "blend of every frame's mood", one_of("last", "blend"))
    heartbeat_s: float = opt(30.0, "how often this frame says again that it is there; a frame of "
                                   "the group not heard from for three times as long (as this "
                                   "frame's clock counts) is taken for gone, as its Last Will "
                                   "would say: a Will lost while the broker was down cannot keep "
                                   "the music", between(1.0, 600.0))


@dataclass(frozen=True)
class StateConfig:
    directory: str = opt("", "where the track index lives; empty: $STATE_DIRECTORY or "
                             "~/.local/state/frame-daemon")


@dataclass(frozen=True)
class LogConfig:
    level: str = opt("info", "log level", one_of("debug", "info", "warning", "error"))


@dataclass(frozen=True)
class Rule:
    """A check across keys of one section; `check` gets the whole section, returns a problem."""

    keys: tuple[str, ...]  # the problem is reported on the first
    check: Callable[[Any], str | None]


RULES: dict[type, tuple[Rule, ...]] = {
    SourceConfig: (
        Rule(("screen_on_at", "screen_off_at"), lambda s: None
             if bool(s.screen_on_at) == bool(s.screen_off_at) else
             "set both screen_on_at and screen_off_at, or neither"),
        Rule(("screen_on_command", "screen_off_command"), lambda s: None
             if bool(s.screen_on_command) == bool(s.screen_off_command) else
             "set both screen_off_command and screen_on_command, or neither (a display powered "
             "down must be able to come back)"),
    ),
    FollowConfig: (
        Rule(("threshold", "jump"), lambda f: None if f.threshold <= f.jump else
             f"{f.threshold:g} is above follow.jump ({f.jump:g}): a move the music follows must "
             "not be larger than a jump; lower threshold or raise jump"),
    ),
}


SECTIONS: dict[str, type] = {
    "source": SourceConfig, "model": ModelConfig, "mpd": MpdConfig, "mqtt": MqttConfig,
    "follow": FollowConfig, "taste": TasteConfig, "household": HouseholdConfig,
    "state": StateConfig, "log": LogConfig,
}


@dataclass(frozen=True)
class Config:
    source: SourceConfig = field(default_factory=SourceConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    mpd: MpdConfig = field(default_factory=MpdConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    follow: FollowConfig = field(default_factory=FollowConfig)
    taste: TasteConfig = field(default_factory=TasteConfig)
    household: HouseholdConfig = field(default_factory=HouseholdConfig)
    state: StateConfig = field(default_factory=StateConfig)
    log: LogConfig = field(default_factory=LogConfig)
    file: str = "<defaults>"

    @property
    def state_directory(self) -> Path:
        return Path(self.state.directory or default_state_directory()).expanduser()

    def make_state_directory(self) -> Path:
        """The state directory, made if it is missing; a clear error when it cannot be."""
        path = self.state_directory
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FrameDaemonError(f"state directory {path}: cannot create it "
                                   f"({exc.strerror}); set state.directory") from exc
        return path


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


# TOML's "\u0000" is a valid string, but no path, host name or program may hold one (the OS
# refuses it with a ValueError deep inside whatever first uses it).
_NUL = "must not contain a NUL character"


def _coerce(value: Any, typ: type) -> tuple[Any, str | None]:
    """Check a TOML value against a field type; ints are accepted where floats are expected."""
    if typ is bool:
        return value, None if isinstance(value, bool) else "expected true or false"
    if typ is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return value, None if ok else f"expected a whole number, got {value!r}"
    if typ is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                return float(value), None
            except OverflowError:  # TOML's integers (and JSON's) have no bound
                return value, "expected a number, got one too large for any setting"
        return value, f"expected a number, got {value!r}"
    if typ is str:
        if not isinstance(value, str):
            return value, f"expected a string, got {value!r}"
        return value, _NUL if "\0" in value else None
    if get_origin(typ) is tuple:
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value), _NUL if any("\0" in v for v in value) else None
        return value, f"expected a list of strings, got {value!r}"
    return value, None


def _check_field(cls: type, key: str, value: Any) -> tuple[Any, str | None]:
    """A value checked against its declared field: (the value as stored, problem or None)."""
    declared = next(f for f in fields(cls) if f.name == key)
    value, problem = _coerce(value, get_type_hints(cls)[key])
    if problem is not None and declared.metadata.get("secret"):
        problem = problem.replace(repr(value), "(hidden)")  # never echo a mistyped password
    if problem is None:
        check = declared.metadata.get("check")
        problem = check(value) if check else None
    return value, problem


def _rule_problems(name: str, section: Any, skip: set[str] = frozenset()) -> list[str]:
    """Cross-key problems of a built section (rules whose keys already failed are skipped)."""
    problems = []
    for rule in RULES.get(type(section), ()):
        if skip.isdisjoint(rule.keys):
            problem = rule.check(section)
            if problem:
                problems.append(f"{name}.{rule.keys[0]}: {problem}")
    return problems


def _build_section(name: str, cls: type, raw: Any, problems: list[str]) -> Any:
    if not isinstance(raw, dict):
        problems.append(f"{name}: expected a table [{name}], got {type(raw).__name__}")
        return cls()
    known = [f.name for f in fields(cls)]
    values = {}
    failed = set()
    for key, value in raw.items():
        if key not in known:
            problems.append(f"{name}.{key}: unknown key{_suggest(key, known)}")
            continue
        value, problem = _check_field(cls, key, value)
        if problem:
            problems.append(f"{name}.{key}: {problem}")
            failed.add(key)
        else:
            values[key] = value
    section = cls(**values)
    problems.extend(_rule_problems(name, section, failed))
    return section


def field_problem(cls: type, key: str, value: Any) -> str | None:
    """Check one value against a declared field (type and check): for commands from outside."""
    if key not in {f.name for f in fields(cls)}:
        return "unknown setting"
    return _check_field(cls, key, value)[1]


def with_setting(section: Any, key: str, value: Any) -> tuple[Any, str | None]:
    """`section` with one key changed, checked like the config file is: the key's own check and
    every cross-key rule. Returns (the new section, None) or (the old section, the problem)."""
    cls = type(section)
    problem = field_problem(cls, key, value)
    if problem is None:
        value = _check_field(cls, key, value)[0]
        changed = replace(section, **{key: value})
        name = next((n for n, c in SECTIONS.items() if c is cls), cls.__name__)
        rule_problems = _rule_problems(name, changed)
        if not rule_problems:
            return changed, None
        return section, rule_problems[0].split(": ", 1)[1]
    return section, problem


def parse_config(data: dict[str, Any], source: str = "<config>") -> Config:
    """Validate a parsed TOML document; raises ConfigError listing every problem."""
    problems: list[str] = []
    sections = {}
    for name in data:
        if name not in SECTIONS:
            problems.append(f"{name}: unknown section{_suggest(name, list(SECTIONS))}")
    for name, cls in SECTIONS.items():
        sections[name] = _build_section(name, cls, data.get(name, {}), problems)
    if problems:
        raise ConfigError(source, problems)
    return Config(**sections, file=source)


# A config file is a few kilobytes; past this it is not one (and /dev/zero never ends).
MAX_CONFIG_BYTES = 1 << 20


def _read_config_file(path: Path) -> bytes:
    """The file's bytes; ConfigError for what is not a regular file of a config's size.

    O_NONBLOCK: opening a FIFO must not wait for a writer (for ever, under systemd). This is
    file_kind.open_regular written out: the config imports nothing but errors (test_imports).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError(str(path), ["file not found"]) from None
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read: {exc.strerror}"]) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                else "a device or socket")
        raise ConfigError(str(path), [f"is {kind}, not a config file"])
    os.set_blocking(fd, True)
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(MAX_CONFIG_BYTES + 1)
        except OSError as exc:
            raise ConfigError(str(path), [f"cannot read: {exc.strerror}"]) from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(str(path), [f"larger than {MAX_CONFIG_BYTES >> 20} MB: not a config "
                                      "file"])
    return data


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a TOML config file; raises ConfigError naming the file."""
    path = Path(path)
    # A byte-order mark (Windows Notepad saves one) is no part of the text: TOML's parser would
    # refuse the file at line 1, column 1, which looks perfect in the editor.
    data = _read_config_file(path).removeprefix(b"\xef\xbb\xbf")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:  # TOML is UTF-8; an editor may have saved it as Latin-1
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(str(path), [f"not UTF-8 text (byte 0x{data[exc.start]:02x} at line "
                                      f"{line}); save it as UTF-8"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from None
    except ValueError:  # Python's int() refuses more than 4,300 digits, past tomllib's checks
        raise ConfigError(str(path), ["not valid TOML: a number with too many digits"]) from None
    except RecursionError:  # tomllib reads nested arrays and tables recursively
        raise ConfigError(str(path), ["not valid TOML: nested too deep"]) from None
    return parse_config(data, str(path))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def render_example() -> str:
    """The example config file: every key, its default and its help, from the declaration."""
    lines = ["# frame-daemon configuration. Every key is optional; shown with its default.",
             "# Generated from frame_daemon/config.py (python -m frame_daemon.config).", ""]
    for name, cls in SECTIONS.items():
        lines.append(f"[{name}]")
        for f in fields(cls):
            default = f.default if f.default is not MISSING else None
            lines.append(f"# {f.metadata['help']}")
            lines.append(f"{f.name} = {_toml_value(default)}")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render_example(), end="")
