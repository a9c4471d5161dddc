#!/usr/bin/env python3
"""Print the mood-word table of frame_daemon/mood.py from the NRC-VAD lexicon.

Each mood word is the centroid of a few synonyms' (valence, arousal) in NRC-VAD v1 (Mohammad,
ACL 2018), rescaled to [-1, 1] with 2x - 1. Re-run after changing the synonym sets and paste the
printed table into mood.py; the lexicon itself is not shipped.

    python scripts/build_mood_table.py --lexicon PATH/NRC-VAD-Lexicon-v1.txt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from build_music_tables import (  # noqa: E402
    lexicon_argument,
    mean_points,
    print_table,
    read_lexicon_or_exit,
)

from frame_daemon.mood import MOOD_SYNONYMS, NEUTRAL_WORD  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    lexicon_argument(ap)
    args = ap.parse_args()
    missing: list[str] = []
    table = mean_points(read_lexicon_or_exit(args.lexicon), MOOD_SYNONYMS, missing)
    for word in missing:
        print(f"# not in lexicon: {word}", file=sys.stderr)
    table[NEUTRAL_WORD] = (0.0, 0.0)  # the centre of the plane, by definition
    print_table("MOOD_WORDS", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
