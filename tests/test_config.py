import os
import subprocess
import sys

import pytest

from conftest import ROOT
from frame_daemon.config import (
    EX_CONFIG,
    MAX_CONFIG_BYTES,
    ConfigError,
    FollowConfig,
    load_config,
    parse_config,
    render_example,
    with_setting,
)

EXAMPLE = ROOT / "config" / "frame-daemon.example.toml"


def test_example_file_is_current_and_valid():
    assert EXAMPLE.read_text() == render_example(), (
        "config/frame-daemon.example.toml is stale: python -m frame_daemon.config > it")
    cfg = load_config(EXAMPLE)
    assert cfg.mpd.port == 6600 and cfg.follow.mode == "follow" and cfg.source.kind == "file"


def test_every_problem_reported_at_once_with_hints():
    with pytest.raises(ConfigError) as info:
        parse_config({
            "mpd": {"prot": 6600, "port": "six"},
            "mqtt": {"port": 70000, "device_id": "living room"},
            "follow": {"mode": "loud", "threshold": 9},
            "sorce": {},
        }, "x.toml")
    problems = info.value.problems
    text = "\n".join(problems)
    assert "mpd.prot: unknown key (did you mean 'port'?)" in text
    assert "mpd.port: expected a whole number" in text
    assert "mqtt.port: must be a TCP port" in text
    assert "mqtt.device_id: must be 1-64 letters" in text
    assert "follow.mode: must be one of follow, gentle, off" in text
    assert "follow.threshold: must be between" in text
    assert "sorce: unknown section (did you mean 'source'?)" in text
    assert len(problems) == 7
    assert str(info.value).startswith("x.toml: ")


def test_ints_accepted_for_floats_and_defaults_fill_in():
    cfg = parse_config({"follow": {"dwell_s": 5}})
    assert cfg.follow.dwell_s == 5.0 and isinstance(cfg.follow.dwell_s, float)
    assert cfg.follow.threshold == FollowConfig().threshold  # a key not given: its default


def test_bad_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[mpd\nport = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="not valid TOML: nested too deep"):
        load_config(deep)


def test_a_config_that_is_no_regular_file_is_refused_at_once_by_what_it_is(tmp_path):
    fifo = tmp_path / "frame.toml"
    os.mkfifo(fifo)  # reading it waited for a writer for ever: `run` never started nor failed
    for verb in ("check-config", "run"):
        proc = subprocess.run([sys.executable, "-m", "frame_daemon", verb, "--config", str(fifo)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == EX_CONFIG
        assert f"{fifo}: is a FIFO, not a config file" in proc.stderr
    with pytest.raises(ConfigError, match="is a directory, not a config file"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match="is a device or socket, not a config file"):
        load_config("/dev/zero")  # was read until the memory ran out
    huge = tmp_path / "huge.toml"
    huge.write_text("#" * (MAX_CONFIG_BYTES + 1))
    with pytest.raises(ConfigError, match="larger than 1 MB: not a config file"):
        load_config(huge)
    huge.write_text("#" * (MAX_CONFIG_BYTES - 1) + "\n")
    assert load_config(huge).mpd.port == 6600


def test_numbers_too_large_for_any_setting_are_one_clear_error_each(tmp_path):
    # A float key given a 400-digit integer raised OverflowError out of check-config and run.
    with pytest.raises(ConfigError) as info:
        parse_config({"follow": {"dwell_s": 10**400, "threshold": 0.3}, "mpd": {"port": 10**400}})
    assert sorted(info.value.problems) == [
        "follow.dwell_s: expected a number, got one too large for any setting",
        "mpd.port: must be a TCP port between 1 and 65535"]
    assert with_setting(FollowConfig(), "dwell_s", -(10**400))[1] == (
        "expected a number, got one too large for any setting")
    cfg = tmp_path / "frame.toml"
    cfg.write_text("[mpd]\nport = " + "9" * 5000 + "\n")  # past Python's int() digit limit
    with pytest.raises(ConfigError, match="not valid TOML: a number with too many digits"):
        load_config(cfg)


def test_a_config_saved_with_a_byte_order_mark_is_read(tmp_path):
    # Notepad's UTF-8 begins with one: it was "not valid TOML: Invalid statement (line 1, column 1)".
    cfg = tmp_path / "frame.toml"
    cfg.write_bytes(b"\xef\xbb\xbf[mpd]\r\nport = 6601\r\n[mqtt]\r\nport = 1884\r\n")  # and CRLF
    assert (load_config(cfg).mpd.port, load_config(cfg).mqtt.port) == (6601, 1884)
    cfg.write_bytes(b"\xef\xbb\xbf[mpd]\nhost = \"caf\xe9\"\n")  # and a Latin-1 byte is still named
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 0xe9 at line 2\)"):
        load_config(cfg)


def test_check_config_and_run_exit_78_naming_file_and_key(tmp_path):
    cfg = tmp_path / "frame.toml"
    cfg.write_text('[mqtt]\nport = "x"\n')
    for verb in ("check-config", "run"):
        proc = subprocess.run([sys.executable, "-m", "frame_daemon", verb, "--config", str(cfg)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == EX_CONFIG
        assert f"{cfg}: mqtt.port: expected a whole number" in proc.stderr
        assert "Traceback" not in proc.stderr
    cfg.write_text("[mqtt]\nport = 1884\n")
    proc = subprocess.run([sys.executable, "-m", "frame_daemon", "check-config", "--config",
                           str(cfg)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_cross_key_rule_fails_check_config_and_run_with_78(tmp_path):
    cfg = tmp_path / "frame.toml"
    # Both values are in range, but a threshold above the jump makes the follow policy refuse.
    cfg.write_text("[follow]\nthreshold = 1.0\njump = 0.9\n")
    for verb in ("check-config", "run"):
        proc = subprocess.run([sys.executable, "-m", "frame_daemon", verb, "--config", str(cfg)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == EX_CONFIG, proc.stderr
        assert f"{cfg}: follow.threshold: 1 is above follow.jump (0.9)" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_the_config_rules_check_a_single_changed_setting():
    follow = parse_config({"follow": {"jump": 0.9}}).follow
    unchanged, problem = with_setting(follow, "threshold", 1.0)
    assert unchanged is follow and "above follow.jump" in problem
    changed, problem = with_setting(follow, "threshold", 0.8)
    assert problem is None and changed.threshold == 0.8
    assert with_setting(follow, "diversity", 2)[1] == "must be between 0.0 and 1.0"


def test_a_mistyped_password_is_never_echoed():
    with pytest.raises(ConfigError) as info:
        parse_config({"mqtt": {"password": 271828}, "mpd": {"password": ["hunter2"]}})
    text = str(info.value)
    assert "mqtt.password: expected a string" in text and "mpd.password" in text
    assert "271828" not in text and "hunter2" not in text


def test_an_unusable_state_directory_is_a_clear_error_not_a_traceback(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    cfg = tmp_path / "frame.toml"
    cfg.write_text(f'[state]\ndirectory = "{tmp_path / "a-file" / "state"}"\n'
                   f'[mpd]\nport = 1\n[mqtt]\nport = 1\n')
    proc = subprocess.run([sys.executable, "-m", "frame_daemon", "run", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "cannot start: state directory" in proc.stderr and "Not a directory" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_display_schedule_needs_both_times_of_day():
    with pytest.raises(ConfigError) as err:
        parse_config({"source": {"screen_on_at": "7:00"}})
    assert err.value.problems == ["source.screen_on_at: set both screen_on_at and screen_off_at, "
                                  "or neither"]
    with pytest.raises(ConfigError) as err:
        parse_config({"source": {"screen_on_at": "07:00", "screen_off_at": "24:30"}})
    assert err.value.problems == ["source.screen_off_at: expected a time of day as HH:MM, got "
                                  "'24:30'"]
    assert parse_config({"source": {"screen_on_at": "07:00", "screen_off_at": "23:00"}})


def test_the_screen_commands_are_argv_lists_set_in_pairs():
    with pytest.raises(ConfigError) as err:
        parse_config({"source": {"screen_off_command": "vcgencmd display_power 0",
                                 "screen_on_command": ["", "1"],
                                 "screen_command_timeout_s": 0}})
    assert err.value.problems == [
        "source.screen_off_command: expected a list of strings, got 'vcgencmd display_power 0'",
        "source.screen_on_command: the first item must be the program to run (a name on PATH or "
        "a full path)",
        "source.screen_command_timeout_s: must be between 0.5 and 120.0"]
    with pytest.raises(ConfigError) as err:
        parse_config({"source": {"screen_off_command": ["vcgencmd", "display_power", "0"]}})
    assert err.value.problems[0].startswith("source.screen_on_command: set both "
                                            "screen_off_command and screen_on_command, or neither")
    cfg = parse_config({"source": {"screen_off_command": ["vcgencmd", "display_power", "0"],
                                   "screen_on_command": ["vcgencmd", "display_power", "1"]}})
    assert cfg.source.screen_on_command == ("vcgencmd", "display_power", "1")


def test_a_config_not_in_utf8_or_with_a_nul_is_one_clear_error_per_key(tmp_path):
    latin1 = tmp_path / "latin1.toml"  # saved by an editor in Latin-1: 'café'
    latin1.write_bytes(b'[source]\npath = "/photos/caf\xe9"\n')
    nul = tmp_path / "nul.toml"  # TOML's \u0000 reaches a path or host name as a NUL
    nul.write_text('[state]\ndirectory = "/var/lib/a\\u0000b"\n'
                   '[source]\npaths = ["/photos", "/x\\u0000y"]\n[mpd]\nport = 1\n[mqtt]\nport = 1\n')
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 0xe9 at line 2\)"):
        load_config(latin1)
    with pytest.raises(ConfigError) as info:
        load_config(nul)
    assert info.value.problems == ["source.paths: must not contain a NUL character",
                                   "state.directory: must not contain a NUL character"]
    for cfg in (latin1, nul):
        for verb in ("check-config", "run"):
            proc = subprocess.run([sys.executable, "-m", "frame_daemon", verb, "--config", str(cfg)],
                                  capture_output=True, text=True, timeout=60)
            assert proc.returncode == EX_CONFIG, proc.stderr
            assert "Traceback" not in proc.stderr and str(cfg) in proc.stderr, proc.stderr


def test_a_wildcard_in_the_discovery_prefix_is_refused_before_it_stops_mqtt():
    # paho refuses the subscription inside its network thread, which then ends for good.
    for prefix in ("home/#", "home+assistant"):
        with pytest.raises(ConfigError, match=r"mqtt\.discovery_prefix: must not contain the MQTT "
                                              "wildcards"):
            parse_config({"mqtt": {"discovery_prefix": prefix}})


def test_an_empty_name_among_the_photo_folders_is_refused():
    # "" is the working directory: under systemd, '/', and the slideshow would walk all of it.
    with pytest.raises(ConfigError, match=r"source\.paths: an empty folder name"):
        parse_config({"source": {"kind": "slideshow", "path": "/photos", "paths": ["/usb", " "]}})


def test_commands_that_read_the_index_say_why_its_folder_cannot_be_made(tmp_path):
    # (`run` says so since issue 16; match and index gave a FileNotFoundError traceback.)
    (tmp_path / "a-file").write_text("not a folder")
    cfg = tmp_path / "frame.toml"
    cfg.write_text(f'[state]\ndirectory = "{tmp_path / "a-file" / "state"}"\n'
                   f'[mpd]\nport = 1\n[mqtt]\nport = 1\n')
    for verb in (["match", str(tmp_path / "photo.jpg")], ["index", "--no-analysis"]):
        proc = subprocess.run([sys.executable, "-m", "frame_daemon", *verb, "--config", str(cfg)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert f"frame-daemon {verb[0]}: state directory" in proc.stderr, proc.stderr
        assert "Not a directory" in proc.stderr, proc.stderr
