"""`frame-daemon score` end to end, as a user runs it, on good and bad photos."""

import json
import subprocess
import sys
from pathlib import Path

from conftest import DEMO_MOODS, off_pin

GOOD = ["good.jpg", "cmyk.jpg", "grey16.png", "alpha.png", "palette.png", "grey.jpg",
        "animated.gif"]
BAD = ["truncated.jpg", "zero.jpg", "notanimage.jpg", "bomb.png", "missing.jpg"]


def run_score(*args):
    return subprocess.run([sys.executable, "-m", "frame_daemon", "score", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_scores_good_photos_and_reports_bad_ones(photo_dir, model_json):
    paths = [photo_dir / n for n in GOOD + BAD]
    proc = run_score("--json", *paths)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["photo"] for r in results] == [str(photo_dir / n) for n in GOOD]
    for r in results:
        assert -1 <= r["valence"] <= 1 and -1 <= r["arousal"] <= 1
        assert 0 <= r["confidence"] <= 1
        assert isinstance(r["mood"], str) and r["scenes"]
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == len(BAD)
    for name, line in zip(BAD, errors, strict=True):
        assert line.startswith("frame-daemon score: ") and name in line


def test_all_good_exits_zero_with_plain_lines(photo_dir, model_json):
    proc = run_score(photo_dir / "good.jpg", photo_dir / "grey.jpg")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and "valence" in lines[0] and "good.jpg" in lines[0]
    assert proc.stderr == ""


def test_missing_model_is_a_clear_error(photo_dir, tmp_path):
    proc = run_score("--model", tmp_path / "nope.json", photo_dir / "good.jpg")
    assert proc.returncode == 1
    assert "model metadata not found" in proc.stderr and "Traceback" not in proc.stderr


def test_demo_photos_score_their_pinned_moods(demo_photos, model_json):
    # The CLI's own decode and preprocessing, end to end: a wrong channel order, pixel scaling or
    # crop moves some of the demo photos well beyond the tolerance (see DEMO_MOODS).
    proc = run_score("--json", *(demo_photos / f"{name}.jpg" for name in DEMO_MOODS))
    assert proc.returncode == 0, proc.stderr
    results = {Path(r["photo"]).stem: r for r in map(json.loads, proc.stdout.splitlines())}
    assert set(results) == set(DEMO_MOODS)
    off = [why for name, r in results.items() if (why := off_pin(name, r["valence"], r["arousal"]))]
    assert not off, "\n".join(off)


def test_a_photo_name_not_in_utf8_is_printed_as_it_is_in_a_utf8_locale(photo_dir, tmp_path):
    # Raspberry Pi OS runs in en_GB.UTF-8, where Python's stdout refuses the surrogates that stand
    # for such a name's bytes (PYTHONIOENCODING stands for that locale here).
    import os
    import shutil

    latin1 = os.fsencode(tmp_path) + b"/\xc9t\xe9.jpg"  # 'Été.jpg' as Latin-1
    shutil.copy(photo_dir / "good.jpg", latin1)
    proc = subprocess.run([sys.executable, "-m", "frame_daemon", "score", os.fsdecode(latin1)],
                          capture_output=True, timeout=120,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"})
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.startswith(latin1 + b": "), proc.stdout


def test_command_line_numbers_out_of_range_are_refused_by_name(tmp_path):
    # `match -n -5` ended in a ValueError traceback; `score --threads 0` blamed the model file.
    config = str(tmp_path / "frame.toml")
    for args in (["match", "x.jpg", "-c", config, "-n", "-5"], ["score", "x.jpg", "--threads", "0"],
                 ["index", "-c", config, "--workers", "0"],
                 ["album", "d", "-c", config, "--playlist", "p", "--length", "nan"]):
        proc = subprocess.run([sys.executable, "-m", "frame_daemon", *args], capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, (args, proc.stderr)
        assert "must be at least" in proc.stderr and args[-2] in proc.stderr, proc.stderr
