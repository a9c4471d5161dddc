"""The server role's setup: what `install.sh --server` learns from MPD's own configuration file.

On the machine that runs MPD and holds the music, `frame-daemon index` analyses the files and
shares the results through MPD's sticker database. Its config needs what mpd.conf already says
(the music folder, where MPD listens), the path unit watches MPD's database file, and sharing needs
a `sticker_file`. This module reads mpd.conf (blocks and `include`s as MPD reads them), renders the
index config, and says what the user must still do. It never writes mpd.conf: that file is the
user's.

    python -m frame_daemon.server_role config --mpd-conf /etc/mpd.conf --state-dir DIR  # the config
    python -m frame_daemon.server_role db-file --mpd-conf /etc/mpd.conf                 # or nothing
    python -m frame_daemon.server_role check --mpd-conf /etc/mpd.conf --config FILE     # next steps
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from frame_daemon.config import SECTIONS, ConfigError, load_config, render_example
from frame_daemon.music.mpd.stickers import ENABLE

MPD_CONF = "/etc/mpd.conf"  # Debian's and Raspberry Pi OS's, read by their mpd.service
DEFAULT_PORT = 6600
LOOPBACK = {"localhost", "127.0.0.1", "::1"}
# The sections `frame-daemon index` reads; the rest (photo source, MQTT, follow, ...) is the frame's.
INDEX_SECTIONS = ("mpd", "state", "log")
assert set(INDEX_SECTIONS) <= set(SECTIONS)

_LINE = re.compile(r'^\s*([A-Za-z_]\w*)\s+(?:"((?:[^"\\]|\\.)*)"|(\S+))')


@dataclass(frozen=True, slots=True)
class MpdConf:
    """The settings of an mpd.conf the server role cares about ("" where the file has none)."""

    path: str = ""
    music_directory: str = ""
    db_file: str = ""
    sticker_file: str = ""
    port: int = DEFAULT_PORT
    bind_to_address: tuple[str, ...] = ()
    has_password: bool = False
    problems: tuple[str, ...] = ()

    @property
    def found(self) -> bool:
        return bool(self.path)

    @property
    def host(self) -> str:
        """Where a client on this machine reaches MPD: its first TCP address ("localhost" when
        it listens on every address), else its socket."""
        tcp = [a for a in self.bind_to_address if not a.startswith(("/", "@"))]
        if not self.bind_to_address or "any" in tcp:
            return "localhost"
        return tcp[0] if tcp else self.bind_to_address[0]

    @property
    def local_only(self) -> bool:
        """MPD listens on this machine alone (loopback or a socket): frames elsewhere cannot reach it."""
        return bool(self.bind_to_address) and all(
            a in LOOPBACK or a.startswith(("/", "@")) for a in self.bind_to_address)


def _unquote(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def _settings(path: Path, depth: int = 0) -> list[tuple[str, str]]:
    """(name, value) of every top-level setting of an mpd.conf, its `include`s read in place, in
    file order. Blocks (`audio_output { ... }`, `database { ... }`) are skipped: a `port` inside an
    httpd output is not MPD's port."""
    settings: list[tuple[str, str]] = []
    nesting = 0
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("{"):
            nesting += 1
            continue
        if line.startswith("}"):
            nesting = max(0, nesting - 1)
            continue
        match = _LINE.match(line)
        if nesting or not match:
            continue
        name, value = match.group(1), _unquote(match.group(2) or match.group(3) or "")
        if name in ("include", "include_optional") and depth < 8:
            included = path.parent / Path(value).expanduser()
            if included.is_file():
                settings.extend(_settings(included, depth + 1))
            elif name == "include":
                settings.append(("!problem", f"{path}: its include {included} is missing"))
            continue
        settings.append((name, value))
    return settings


def read_mpd_conf(path: str | os.PathLike[str] = MPD_CONF) -> MpdConf:
    """The server role's settings from an mpd.conf; an MpdConf without `path` if there is none."""
    path = Path(path)
    try:
        settings = _settings(path)
    except FileNotFoundError:
        return MpdConf()
    except OSError as exc:
        return MpdConf(problems=(f"{path}: cannot read it ({exc.strerror})",))
    first: dict[str, str] = {}
    for name, value in settings:
        first.setdefault(name, value)  # MPD refuses a setting given twice: the first is the one
    problems = [value for name, value in settings if name == "!problem"]
    try:
        port = int(first.get("port", DEFAULT_PORT))
    except ValueError:
        port = DEFAULT_PORT
        problems.append(f"{path}: port {first['port']!r} is not a number")
    return MpdConf(path=str(path), music_directory=first.get("music_directory", ""),
                   db_file=first.get("db_file", ""), sticker_file=first.get("sticker_file", ""),
                   port=port,
                   bind_to_address=tuple(v for n, v in settings if n == "bind_to_address"),
                   has_password=any(n == "password" for n, _ in settings),
                   problems=tuple(problems))


def local_music_directory(conf: MpdConf) -> str:
    """MPD's music folder as a path this machine reads, or "": none, a URI such as nfs://, or a
    path under MPD's user's home (~), which is not the service user's."""
    folder = conf.music_directory
    return folder if folder.startswith("/") else ""


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_index_config(conf: MpdConf, state_dir: str) -> str:
    """The config for `frame-daemon index` on this machine: the [mpd], [state] and [log] sections
    of the example (every key with its help), filled in from mpd.conf."""
    values = {("mpd", "host"): conf.host, ("mpd", "port"): str(conf.port),
              ("mpd", "music_directory"): local_music_directory(conf),
              ("state", "directory"): state_dir}
    source = f" from {conf.path}" if conf.found else ""
    out = ["# frame-daemon index: the server role (README, \"Music on a NAS\"). It analyses the music",
           "# files and shares the results with every frame through MPD's sticker database, so it",
           "# needs only [mpd] (with music_directory) and [state]: no MQTT broker, no photo source.",
           f"# Written by install.sh --server{source}; never overwritten.", ""]
    section = ""
    keep = False
    for line in render_example().splitlines():
        if line.startswith("["):
            section = line[1:-1]
            keep = section in INDEX_SECTIONS
        if not keep:
            continue
        name, sep, _ = line.partition(" = ")
        if sep and not line.startswith("#") and (section, name) in values:
            value = values[section, name]
            line = f"{name} = {value if name == 'port' else _toml_string(value)}"
        out.append(line)
    return "\n".join(out).rstrip("\n") + "\n"


def next_steps(conf: MpdConf, config: str | os.PathLike[str],
               socket_activated: bool = False) -> list[str]:
    """What the user must still do for the server role to share analyses, one sentence each
    (nothing when all is in place). Run as root, who reads mpd.conf; whether the service user may
    read the music folder is install.sh's to try, as that user. `socket_activated`: systemd hands
    MPD its sockets (Debian's mpd.socket, all addresses), and MPD then ignores bind_to_address."""
    steps = list(conf.problems)
    where = conf.path or MPD_CONF
    if not conf.found:
        steps.append(f"no {where} here: if MPD runs on this machine with another config file, "
                     "make sure it has a sticker_file line (without one nothing is shared), and "
                     "run install.sh --server --mpd-conf FILE to read it")
    elif not conf.sticker_file:
        steps.append(f"MPD has no sticker database, so nothing can be shared with the frames: "
                     f"{ENABLE.replace('/etc/mpd.conf', where)} (sudo systemctl restart mpd)")
    if conf.local_only and not socket_activated:
        steps.append(f"MPD listens on this machine only (bind_to_address in {where}): frames on "
                     "other machines cannot reach it; set bind_to_address \"any\" there and "
                     "restart MPD (its port is " + str(conf.port) + ")")
    if "://" in conf.music_directory:
        steps.append(f"MPD reads its music from {conf.music_directory}: mount that share on this "
                     f"machine and set mpd.music_directory in {config} to the mount point")
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        return [*steps, f"{exc.source}: {'; '.join(exc.problems)}"]
    if conf.has_password and not cfg.mpd.password:
        steps.append(f"MPD asks for a password ({where}): set mpd.password in {config}")
    folder = cfg.mpd.music_directory
    if not folder:
        steps.append(f"set mpd.music_directory in {config} to MPD's music folder as seen from "
                     "this machine: without it the index only reads what others shared")
    elif not os.path.isdir(folder):
        steps.append(f"{folder} (mpd.music_directory in {config}): no such folder here")
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m frame_daemon.server_role",
                                     description="the server role's setup, for install.sh --server")
    parser.add_argument("what", choices=("config", "db-file", "check"))
    parser.add_argument("--mpd-conf", default=MPD_CONF, help=f"MPD's config file ({MPD_CONF})")
    parser.add_argument("--state-dir", default="/var/lib/frame-daemon-index")
    parser.add_argument("--config", default="/etc/frame-daemon/index.toml",
                        help="the index config (check)")
    parser.add_argument("--socket-activated", action="store_true",
                        help="MPD gets its sockets from systemd (mpd.socket enabled) (check)")
    args = parser.parse_args(argv)
    conf = read_mpd_conf(args.mpd_conf)
    if args.what == "config":
        print(render_index_config(conf, args.state_dir), end="")
    elif args.what == "db-file":
        if conf.db_file.startswith("/"):  # a path unit needs an absolute path
            print(conf.db_file)
    else:
        for step in next_steps(conf, args.config, args.socket_activated):
            print(step)
    return 0


if __name__ == "__main__":
    sys.exit(main())
