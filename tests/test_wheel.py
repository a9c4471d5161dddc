"""The wheel is the product: built from a copy of the sources, installed into a fresh venv with no
extras and no checkout in sight, it scores a photo with the model it carries."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, gradient_photo

# What a clean clone holds that the wheel is built from (never the venvs or build outputs).
SOURCES = ("frame_daemon", "models", "pyproject.toml", "README.md", "LICENSE")


def run(cmd: list[str], cwd: Path, timeout: float = 600) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory) -> tuple[Path, str]:
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    dist = tmp_path_factory.mktemp("dist")
    log = run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(dist), str(src)], src)
    wheels = list(dist.glob("frame_daemon-*.whl"))
    assert len(wheels) == 1, f"expected one wheel in {dist}: {wheels}"
    return wheels[0], log


def test_wheel_holds_every_module_and_the_models(built_wheel) -> None:
    wheel, _ = built_wheel
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "frame_daemon").rglob("*.py")
               if "__pycache__" not in p.parts}
    missing = sorted(modules - names)
    assert not missing, f"modules missing from the wheel (add their package to pyproject): {missing}"
    model_files = {f"frame_daemon/models/{p.name}" for p in (ROOT / "models").iterdir()
                   if p.is_file() and p.suffix != ".pyc"}
    assert model_files and model_files <= names, f"model files missing: {sorted(model_files - names)}"
    assert not [n for n in names if n.startswith(("tests/", "scripts/", "models/"))]


def test_wheel_builds_without_setuptools_warnings(built_wheel) -> None:
    _, log = built_wheel
    # e.g. "BuildBackendWarning: `project.license` as a TOML table is deprecated"
    warnings = [line for line in log.splitlines() if "Warning:" in line or "deprecated" in line]
    assert not warnings, "the build warns:\n" + "\n".join(warnings)


def test_wheel_in_a_clean_venv_scores_a_photo(built_wheel, tmp_path, mood_model) -> None:
    wheel, _ = built_wheel
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], tmp_path)
    photo = tmp_path / "photo.jpg"
    gradient_photo(800, 600, 11).save(photo, quality=90)
    # Run from an empty folder: nothing of the checkout can be imported or found by path.
    work = tmp_path / "elsewhere"
    work.mkdir()
    out = run([str(env_dir / "bin" / "frame-daemon"), "score", "--json", str(photo)], work)
    result = json.loads(out.strip().splitlines()[-1])
    expected = mood_model.score(photo).as_dict()
    assert (result["valence"], result["arousal"]) == pytest.approx(
        (expected["valence"], expected["arousal"]), abs=0.02)
    assert result["mood"] == expected["mood"]
    where = run([str(env_dir / "bin" / "python"), "-c", "from frame_daemon.vision.model_files "
                 "import models_dir; import frame_daemon; print(models_dir(), frame_daemon.__file__)"],
                work)
    assert str(ROOT) not in where and "site-packages" in where, where


def test_readme_gives_the_wheel_size(built_wheel) -> None:
    wheel, _ = built_wheel
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    stated = re.search(r"pip wheel --no-deps -w dist \.` \(about ([0-9.]+) MB", readme)
    assert stated, "README.md no longer gives the wheel's size where it says how to build it"
    size_mb = wheel.stat().st_size / 1e6
    assert abs(float(stated.group(1)) - size_mb) <= 0.1, f"the wheel is {size_mb:.2f} MB"
