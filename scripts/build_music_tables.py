#!/usr/bin/env python3
"""Print the mood-tag and genre tables of frame_daemon/music/lexicon.py from the NRC-VAD lexicon.

A mood-tag word is its own lexicon entry, or the mean of its TAG_SYNONYMS; a genre is the mean of its
GENRE_DESCRIPTORS. Values are NRC-VAD v1 (S. Mohammad, ACL 2018; research and non-commercial use)
rescaled to [-1, 1] with 2x - 1. Re-run after changing the word sets and paste the printed tables
into lexicon.py; the lexicon itself is not shipped. Exits non-zero if a word is not in the lexicon.

    python scripts/build_music_tables.py --lexicon PATH/NRC-VAD-Lexicon-v1.txt
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from frame_daemon.music.lexicon import GENRE_DESCRIPTORS, TAG_SYNONYMS, TAG_WORDS  # noqa: E402

LEXICON_HELP = ("the NRC Valence, Arousal, and Dominance Lexicon v1 (NRC-VAD-Lexicon-v1.txt; "
                "S. Mohammad, ACL 2018; free for research from "
                "https://saifmohammad.com/WebPages/nrc-vad.html)")


def lexicon_argument(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--lexicon", type=Path, default=None, help=f"path of {LEXICON_HELP}")


def read_lexicon_or_exit(path: Path | None) -> dict[str, tuple[float, float]]:
    """The lexicon, or one line saying what it is and where it comes from (no traceback)."""
    if path is None or not path.is_file():
        where = f"not found at {path}" if path else "not given"
        sys.exit(f"{Path(sys.argv[0]).name}: lexicon {where}: pass --lexicon with {LEXICON_HELP}")
    try:
        return read_lexicon(path)
    except (OSError, UnicodeDecodeError, ValueError, StopIteration) as exc:
        sys.exit(f"{Path(sys.argv[0]).name}: {path}: not a readable NRC-VAD lexicon ({exc!r}): "
                 f"expected {LEXICON_HELP}")


def read_lexicon(path: Path) -> dict[str, tuple[float, float]]:
    lex = {}
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            word, v, a, *_ = line.rstrip("\n").split("\t")
            lex[word] = (2 * float(v) - 1, 2 * float(a) - 1)
    return lex


def mean_points(lex: Mapping[str, tuple[float, float]], sets: Mapping[str, Iterable[str]],
                missing: list[str]) -> dict[str, tuple[float, float]]:
    table = {}
    for name, words in sets.items():
        found = [lex[w] for w in words if w in lex]
        missing.extend(f"{name}: {w!r}" for w in words if w not in lex)
        if found:
            table[name] = (sum(p[0] for p in found) / len(found), sum(p[1] for p in found) / len(found))
    return table


def print_table(name: str, table: Mapping[str, tuple[float, float]]) -> None:
    print(f"{name}: dict[str, tuple[float, float]] = {{")
    for key, (v, a) in table.items():
        v, a = round(v, 2) + 0.0, round(a, 2) + 0.0  # + 0.0 turns -0.0 into 0.0
        print(f'    "{key}": ({v:.2f}, {a:.2f}),')
    print("}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    lexicon_argument(ap)
    args = ap.parse_args()
    lex = read_lexicon_or_exit(args.lexicon)
    missing: list[str] = []
    tag_sets = {w: (w,) for w in TAG_WORDS} | dict(TAG_SYNONYMS)
    print_table("LEXICON_TAG_POINTS", mean_points(lex, tag_sets, missing))
    print()
    print_table("GENRE_PRIORS", mean_points(lex, GENRE_DESCRIPTORS, missing))
    for m in missing:
        print(f"# not in lexicon: {m}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
