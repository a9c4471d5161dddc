"""The server role's setup (install.sh --server): mpd.conf read as MPD reads it, the index config
rendered from it shares analyses through a real MPD, and a missing sticker_file is named with its
fix by install.sh's check and by `doctor --server`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from frame_daemon.config import load_config
from frame_daemon.music.shared_analysis import STICKER
from frame_daemon.server_role import MpdConf, next_steps, read_mpd_conf, render_index_config
from harness import ROOT
from servers import LIBRARY, running_mpd, write_library

DEBIAN_LIKE = """\
# An mpd.conf shaped like Debian's, with what users add to it.
music_directory		"/srv/music"
db_file			"/var/lib/mpd/tag_cache"
#sticker_file		"/var/lib/mpd/commented.sql"
include "mpd.d/stickers.conf"
include_optional "mpd.d/not-there.conf"
bind_to_address		"any"
bind_to_address		"/run/mpd/socket"
port				6601   # unquoted, with a comment
audio_output {
	type		"httpd"
	name		"stream"
	port		"8000"
	bind_to_address	"0.0.0.0"
}
password "secret@read,add,control"
"""


def write_conf(folder: Path, text: str, included: str = "") -> Path:
    conf = folder / "mpd.conf"
    conf.write_text(text)
    if included:
        (folder / "mpd.d").mkdir()
        (folder / "mpd.d" / "stickers.conf").write_text(included)
    return conf


def test_mpd_conf_is_read_as_mpd_reads_it(tmp_path) -> None:
    conf = read_mpd_conf(write_conf(tmp_path, DEBIAN_LIKE,
                                    included='sticker_file "/var/lib/mpd/sticker.sql"\n'))
    assert conf.found and not conf.problems
    assert conf.music_directory == "/srv/music" and conf.db_file == "/var/lib/mpd/tag_cache"
    assert conf.sticker_file == "/var/lib/mpd/sticker.sql"  # from the include; not the comment
    assert conf.port == 6601  # MPD's own port, not the httpd output's inside its block
    assert conf.bind_to_address == ("any", "/run/mpd/socket")  # not the block's 0.0.0.0
    assert conf.host == "localhost" and not conf.local_only and conf.has_password


def test_where_mpd_listens_decides_the_host_and_the_advice() -> None:
    assert MpdConf(bind_to_address=("/run/mpd/socket",)).host == "/run/mpd/socket"
    assert MpdConf(bind_to_address=("/run/mpd/socket",)).local_only
    assert MpdConf(bind_to_address=("192.168.1.5",)).host == "192.168.1.5"
    assert MpdConf(bind_to_address=("127.0.0.1",)).host == "127.0.0.1"  # not ::1 first
    assert MpdConf(bind_to_address=("localhost",)).local_only
    assert not MpdConf().local_only  # no bind_to_address: MPD listens on every address


def test_the_advice_follows_what_mpd_and_the_config_say(tmp_path) -> None:
    conf = MpdConf(path="/etc/mpd.conf", music_directory=str(tmp_path), sticker_file="/s.sql",
                   bind_to_address=("localhost",), has_password=True)
    config = tmp_path / "index.toml"
    config.write_text(render_index_config(conf, str(tmp_path / "state")))
    steps = next_steps(conf, config)
    assert len(steps) == 2, steps
    assert "bind_to_address" in steps[0] and "mpd.password" in steps[1]
    # Debian's mpd.socket listens on every address, and MPD then ignores bind_to_address.
    assert not any("bind_to_address" in s for s in next_steps(conf, config, socket_activated=True))
    config.write_text(config.read_text().replace('password = ""', 'password = "secret"', 1))
    assert not any("password" in s for s in next_steps(conf, config))


def test_a_missing_include_and_a_missing_file_are_said(tmp_path) -> None:
    conf = read_mpd_conf(write_conf(tmp_path, 'include "gone.conf"\nmusic_directory "/m"\n'))
    assert conf.music_directory == "/m" and "gone.conf is missing" in conf.problems[0]
    missing = read_mpd_conf(tmp_path / "nowhere.conf")
    assert not missing.found
    config = tmp_path / "index.toml"
    config.write_text(render_index_config(missing, str(tmp_path / "state")))
    steps = next_steps(missing, config)
    assert any("sticker_file" in s and "--mpd-conf" in s for s in steps), steps
    assert any("set mpd.music_directory" in s for s in steps), steps


def test_the_index_config_keeps_only_what_index_reads(tmp_path) -> None:
    conf = read_mpd_conf(write_conf(tmp_path, DEBIAN_LIKE))
    text = render_index_config(conf, "/var/lib/frame-daemon-index")
    assert "[mqtt]" not in text and "[source]" not in text and "[model]" not in text
    path = tmp_path / "index.toml"
    path.write_text(text)
    cfg = load_config(path)  # valid as it is
    assert (cfg.mpd.host, cfg.mpd.port, cfg.mpd.music_directory) == ("localhost", 6601, "/srv/music")
    assert str(cfg.state_directory) == "/var/lib/frame-daemon-index"
    # A share MPD reads by URI is no folder here: left empty, and the user told what to do.
    remote = MpdConf(path=str(tmp_path / "mpd.conf"), music_directory="nfs://nas/music",
                     sticker_file="/s.sql")
    path.write_text(render_index_config(remote, str(tmp_path / "state")))
    assert load_config(path).mpd.music_directory == ""
    assert any("mount that share" in s for s in next_steps(remote, path))


def test_the_cli_prints_what_install_sh_reads(tmp_path) -> None:
    conf = write_conf(tmp_path, DEBIAN_LIKE)

    def cli(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "frame_daemon.server_role", *args,
                               "--mpd-conf", str(conf)], capture_output=True, text=True,
                              timeout=60, cwd=ROOT, check=True)
        return proc.stdout

    assert cli("config", "--state-dir", "/x") == render_index_config(read_mpd_conf(conf), "/x")
    assert cli("db-file") == "/var/lib/mpd/tag_cache\n"
    (tmp_path / "index.toml").write_text(cli("config", "--state-dir", str(tmp_path)))
    steps = cli("check", "--config", str(tmp_path / "index.toml")).splitlines()
    assert any(s.startswith("MPD has no sticker database") for s in steps), steps


def doctor_server(config: Path) -> tuple[int, dict[str, str]]:
    proc = subprocess.run([sys.executable, "-m", "frame_daemon", "doctor", "--server", "--config",
                           str(config)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    lines = {line[6:18].strip(): line for line in proc.stdout.splitlines()
             if line[:4].strip() in ("OK", "WARN", "FAIL", "SKIP")}
    assert "the server role" in proc.stdout, proc.stdout + proc.stderr
    return proc.returncode, lines


@pytest.fixture
def music(tmp_path) -> Path:
    folder = tmp_path / "music"
    write_library(folder, seconds=6.0, library=LIBRARY[:3])
    return folder


@pytest.fixture
def mpd_server(tmp_path, music, request):
    with running_mpd(tmp_path / "mpd", music, sticker_file=getattr(request, "param", True)) as mpd:
        yield mpd


def test_the_index_config_from_mpd_conf_shares_analyses(tmp_path, mpd_server) -> None:
    """install.sh --server's config, rendered from the real MPD's own mpd.conf, lets
    `frame-daemon index` alone (no broker, no photo) analyse every song and write its sticker."""
    conf = read_mpd_conf(mpd_server.workdir / "mpd.conf")
    config = tmp_path / "index.toml"
    config.write_text(render_index_config(conf, str(tmp_path / "index-state")))
    steps = next_steps(conf, config)
    # The test MPD listens on 127.0.0.1 only: the one thing a real server would still change.
    assert len(steps) == 1 and "bind_to_address" in steps[0], steps
    proc = subprocess.run([sys.executable, "-m", "frame_daemon", "index", "--workers", "1",
                           "--config", str(config)], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    client = mpd_server.client()
    try:
        songs = [s["file"] for s in client.listall() if "file" in s]
        assert len(songs) == 3
        for uri in songs:
            assert client.sticker_get("song", uri, STICKER)
    finally:
        client.disconnect()
    code, lines = doctor_server(config)
    assert code == 0, "\n".join(lines.values())
    assert set(lines) == {"config", "mpd", "music folder", "state folder", "service", "ffmpeg",
                          "stickers"}  # no model, photo source or MQTT
    assert lines["stickers"].startswith("OK")


@pytest.mark.parametrize("mpd_server", [False], indirect=True)
def test_an_mpd_without_a_sticker_file_is_named_with_its_fix(tmp_path, mpd_server) -> None:
    conf = read_mpd_conf(mpd_server.workdir / "mpd.conf")
    assert not conf.sticker_file
    config = tmp_path / "index.toml"
    config.write_text(render_index_config(conf, str(tmp_path / "index-state")))
    steps = next_steps(conf, config)
    assert any("sticker_file" in s and str(mpd_server.workdir / "mpd.conf") in s for s in steps)
    code, lines = doctor_server(config)
    assert code == 1
    assert lines["stickers"].startswith("FAIL") and "sticker_file" in lines["stickers"]
    # A server role with no music folder has nothing to do: said, with the fix.
    config.write_text(config.read_text().replace(f'"{mpd_server.music_dir}"', '""'))
    _, lines = doctor_server(config)
    assert lines["music folder"].startswith("FAIL") and "-> fix:" in lines["music folder"]
