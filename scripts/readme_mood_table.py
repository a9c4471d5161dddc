#!/usr/bin/env python3
"""Print the README's mood-word table from frame_daemon/mood.py, or write it into README.md.

    python scripts/readme_mood_table.py            # print the table
    python scripts/readme_mood_table.py --write    # replace the table in README.md

The table sits between the markers `<!-- mood-words -->` and `<!-- /mood-words -->`;
tests/test_readme.py fails when it no longer matches the code.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from frame_daemon.mood import MOOD_SYNONYMS, MOOD_WORDS, NEUTRAL_WORD  # noqa: E402
from frame_daemon.music.lexicon import LEXICON_TAG_POINTS  # noqa: E402

README = ROOT / "README.md"
BEGIN, END = "<!-- mood-words -->", "<!-- /mood-words -->"
# Mood tags that were mood words before mood-v2 and keep their old place for tagged libraries.
FORMER_WORDS = ("nostalgic",)


def mood_table() -> str:
    """The table, one row per mood word in mood.py's order, the centre word last."""
    rows = ["| word | valence | arousal | synonyms |", "|---|---|---|---|"]
    for word, (valence, arousal) in MOOD_WORDS.items():
        synonyms = (", ".join(MOOD_SYNONYMS[word]) if word != NEUTRAL_WORD
                    else "(the centre of the plane)")
        rows.append(f"| {word} | {valence:.2f} | {arousal:.2f} | {synonyms} |")
    for word in FORMER_WORDS:
        v, a = LEXICON_TAG_POINTS[word]
        rows += ["", f'An MPD `Mood` tag "{word}" (a mood word before mood-v2) keeps its old place, '
                 f"({v:.2f}, {a:.2f})."]
    return "\n".join(rows)


def block_pattern() -> re.Pattern[str]:
    return re.compile(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), re.DOTALL)


def readme_table(text: str) -> str | None:
    """The table as the README has it, or None without the markers."""
    found = block_pattern().search(text)
    return found.group(1).removesuffix("\n") if found else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", action="store_true", help="replace the table in README.md")
    args = ap.parse_args()
    table = mood_table()
    if not args.write:
        print(table)
        return 0
    text = README.read_text(encoding="utf-8")
    if readme_table(text) is None:
        print(f"{README}: no {BEGIN} ... {END} markers", file=sys.stderr)
        return 1
    README.write_text(block_pattern().sub(lambda _: f"{BEGIN}\n{table}\n{END}", text),
                      encoding="utf-8")
    print(f"{README}: mood-word table written ({len(MOOD_WORDS)} words)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
