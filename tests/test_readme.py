"""The README and docs stay true to the code: the mood-word table is the code's, and every file or
folder of the repository they name exists."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from readme_mood_table import mood_table, readme_table

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# A name in backticks counts as a repository path when it ends like one of the project's files
# (`settings.json` and the like are files the daemon writes, not the repository's).
SOURCE_SUFFIXES = (".py", ".sh", ".md", ".toml", ".service", ".tflite", ".png")
TOP_FOLDERS = ("frame_daemon/", "scripts/", "tests/", "docs/", "systemd/", "config/", "models/")


def installed_to_source() -> dict[str, str]:
    """Package folders whose source lives elsewhere (pyproject's package-dir), e.g. the models:
    `frame_daemon/models/` in the wheel is `models/` in a clone."""
    package_dir = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    return {package.replace(".", "/") + "/": folder.rstrip("/") + "/"
            for package, folder in package_dir.items()}


def named_paths(text: str) -> set[str]:
    """Repository paths a Markdown text names: relative link targets, and words in backticks that
    start with a top folder or end like a source file."""
    names = {target.split("#")[0] for target in re.findall(r"\]\(([^)\s]+)\)", text)
             if not re.match(r"[a-z]+:|#", target)}
    for code in re.findall(r"`([^`\n]+)`", text):
        for word in code.split():
            word = word.strip("'\",;:()[]")
            if word.startswith(TOP_FOLDERS) or (word.endswith(SOURCE_SUFFIXES) and "<" not in word
                                                  and not word.startswith(("/", ".", "build/"))):
                names.add(word)
    return {n for n in names if n}


def exists(name: str, doc: Path, basenames: set[str]) -> bool:
    for installed, source in installed_to_source().items():
        if name.startswith(installed):
            name = source + name[len(installed):]
    if any(base.glob(name) if "*" in name else (base / name).exists() for base in (ROOT, doc.parent)):
        return True
    # A bare file name ("soak.py"): some file of the repository has it.
    return "/" not in name.rstrip("/") and name.rstrip("/") in basenames


def test_named_paths_reader_finds_what_a_reader_would_follow():
    text = ("See `music/mpd/session.py` and [the docs](docs/x.md#part), run `scripts/a.sh --help`;\n"
            "it writes `settings.json` under `/var/lib/x` (`homeassistant/status`), [web](https://e.org)")
    assert named_paths(text) == {"music/mpd/session.py", "docs/x.md", "scripts/a.sh"}


def test_every_path_in_the_readme_and_docs_exists():
    basenames = {p.name for top in TOP_FOLDERS for p in (ROOT / top).rglob("*")}
    basenames |= {p.name for p in ROOT.iterdir() if p.is_file()}
    missing = [f"{doc.relative_to(ROOT)}: {name}" for doc in DOCS
               for name in sorted(named_paths(doc.read_text(encoding="utf-8")))
               if not exists(name, doc, basenames)]
    assert not missing, "named but not in the repository:\n" + "\n".join(missing)


def test_the_readme_mood_table_is_the_code():
    table = readme_table((ROOT / "README.md").read_text(encoding="utf-8"))
    assert table is not None, "README.md lost its <!-- mood-words --> markers"
    assert table == mood_table(), "the README's mood words differ from frame_daemon/mood.py: run " \
                                  "scripts/readme_mood_table.py --write"
