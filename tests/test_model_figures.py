"""The model card's figures, recomputed from the shipped model on the development data.

The development data (Emotion6, OASIS-dev) is never shipped. When it lies beside the checkout, as
`../shared/data` (or where FRAME_DAEMON_DEV_DATA points), every photo is scored with the shipped
`.tflite` files, as the daemon scores it, and the figures must match the JSON's within 0.01.
"""

import json
import os
import sys
from pathlib import Path

import pytest

from conftest import ROOT

DATA = Path(os.environ.get("FRAME_DAEMON_DEV_DATA", ROOT.parent / "shared" / "data"))
TOLERANCE = 0.01

sys.path.insert(0, str(ROOT / "scripts"))
from mood_training import read_emotion6, read_oasis, shipped_figures  # noqa: E402


@pytest.fixture(scope="module")
def recomputed(model_json, mood_model):
    if not (DATA / "emotion6" / "ground_truth.txt").exists() or not (
            DATA / "oasis-dev" / "ratings.csv").exists():
        pytest.skip(f"development data not found at {DATA} (Emotion6 and OASIS-dev; set "
                    "FRAME_DAEMON_DEV_DATA): the figures cannot be recomputed")
    meta = json.loads(model_json.read_text())
    val_files = set(meta["training"]["emotion6_validation_files"])
    e6_val = [r for r in read_emotion6(DATA / "emotion6")
              if str(r.path.relative_to(DATA / "emotion6" / "images")) in val_files]
    assert len(e6_val) == len(val_files)
    return meta["validation"]["shipped"], shipped_figures(mood_model, read_oasis(DATA / "oasis-dev"),
                                                          e6_val)


def flatten(d: dict, prefix: str = "") -> dict[str, float]:
    out = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out |= flatten(value, f"{prefix}{key}.")
        else:
            out[prefix + key] = value
    return out


def test_shipped_figures_match_the_model_card(recomputed):
    card, now = recomputed
    card, now = flatten(card), flatten(now)
    assert card.keys() == now.keys()
    off = {k: (card[k], now[k]) for k in card if abs(card[k] - now[k]) > TOLERANCE}
    assert not off, f"figures that no longer match the model card (card, now): {off}"


def test_shipped_figures_meet_the_targets(recomputed):
    _, now = recomputed
    assert now["oasis_dev_top_word_share"] <= 0.35
    halves = now["oasis_dev_confidence_halves"]
    assert halves["confident_half_error"] < halves["unsure_half_error"]
