#!/usr/bin/env python3
"""Print a mood model's photo reference: the quantiles of its readings of ordinary photos.

    .venv/bin/python scripts/photo_reference.py PHOTO_DIR [--model MODEL.json]

Library-relative matching (`frame_daemon/music/placement.py`) ranks a photo's valence and arousal
among photos. Without help it ranks them among *human ratings* of photos; a model whose readings
sit on another scale (mood-v1 reads most photos' arousal between -0.2 and +0.4) can instead be
ranked among its own readings. This prints them as the `photo_reference` entry for the model's
metadata JSON (11 evenly spaced quantiles per axis), to be added when a model is built if
`scripts/eval_fit.py` says it fits better; PHOTO_DIR is any folder of ordinary photos (for
development, the OASIS split's images/).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from frame_daemon.errors import PhotoError
from frame_daemon.vision.model import MoodModel

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("photos", type=Path, help="a folder of ordinary photos")
    ap.add_argument("--model", type=Path, default=None, help="model metadata JSON (default: shipped)")
    args = ap.parse_args()
    model = MoodModel.load(args.model)
    paths = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
    if len(paths) < 50:
        ap.error(f"{args.photos}: {len(paths)} photos; a reference needs 50 or more")
    valence, arousal = [], []
    for i, path in enumerate(paths, 1):
        try:
            mood = model.score(path).mood
        except PhotoError as exc:
            print(f"skipped {path.name}: {exc.reason}", file=sys.stderr)
            continue
        valence.append(mood.valence)
        arousal.append(mood.arousal)
        if i % 100 == 0:
            print(f"  read {i}/{len(paths)} photos", file=sys.stderr, flush=True)
    q = np.linspace(0, 100, 11)
    reference = {"photo_reference": {
        "valence": [round(float(x), 3) for x in np.percentile(valence, q)],
        "arousal": [round(float(x), 3) for x in np.percentile(arousal, q)],
        "photos": len(valence), "source": str(args.photos.name),
        "model": model.meta.get("name", "?")}}
    print(json.dumps(reference, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
