#!/usr/bin/env python3
"""Print the mood-word table of frame_daemon/mood.py from the NRC-VAD lexicon.

Each mood word is the centroid of a few synonyms' (valence, arousal) in NRC-VAD v1 (Mohammad,
ACL 2018), rescaled to [-1, 1] with 2x - 1. Re-run after changing the synonym sets and paste the
printed table into mood.py; the lexicon itself is not shipped.

    python scripts/build_mood_table.py [--lexicon ../shared/data/lexicon/NRC-VAD-Lexicon-v1.txt]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from frame_daemon.mood import MOOD_SYNONYMS  # noqa: E402


def read_lexicon(path: Path) -> dict[str, tuple[float, float]]:
    lex = {}
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            word, v, a, *_ = line.rstrip("\n").split("\t")
            lex[word] = (2 * float(v) - 1, 2 * float(a) - 1)
    return lex


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lexicon", type=Path,
                    default=ROOT.parent / "shared/data/lexicon/NRC-VAD-Lexicon-v1.txt")
    args = ap.parse_args()
    lex = read_lexicon(args.lexicon)
    print("MOOD_WORDS: dict[str, tuple[float, float]] = {")
    for word, synonyms in MOOD_SYNONYMS.items():
        missing = [s for s in synonyms if s not in lex]
        if missing:
            print(f"# {word}: not in lexicon: {missing}", file=sys.stderr)
        found = [lex[s] for s in synonyms if s in lex]
        v = sum(p[0] for p in found) / len(found)
        a = sum(p[1] for p in found) / len(found)
        print(f'    "{word}": ({v:.2f}, {a:.2f}),')
    print("}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
