"""The shipped int8 model: its metadata contract, its outputs, and runtime agreement."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import DEMO_MOODS, ROOT, gradient_photo, off_pin
from frame_daemon.errors import ModelError
from frame_daemon.vision.model import OUTPUT_NAMES, MoodModel


def test_metadata_contract(model_json):
    meta = json.loads(model_json.read_text())
    assert model_json.with_name(meta["file"]).is_file()
    size = meta["input"]["size"]  # the backbone's own input size (EfficientNet-Lite0: 224, Lite1: 240)
    assert meta["input"]["dtype"] == "int8" and meta["input"]["shape"] == [1, size, size, 3]
    for name in (*OUTPUT_NAMES, "uncertainty"):
        assert meta["outputs"][name]["dtype"] == "int8"
        assert name in meta["outputs"]["meaning"]
    assert len(meta["imagenet_labels"]) == 1000 and len(meta["emotions"]) == 7
    for key in ("version", "training", "validation", "quantization", "faces", "calibration",
                "confidence"):
        assert key in meta
    # The photo side ships within its budget: the mood model and the face helpers (the music
    # tagger is the audio side's, analysed off the photo path).
    photo_side = [p for p in model_json.parent.glob("*.tflite") if not p.name.startswith("music-")]
    assert len(photo_side) >= 3
    assert sum(p.stat().st_size for p in photo_side) <= 8_000_000


def test_scores_are_deterministic_and_photo_dependent(mood_model):
    pixels = [np.asarray(gradient_photo(mood_model.size, mood_model.size, s)) for s in range(6)]
    first = [mood_model.score_pixels(p) for p in pixels]
    again = [mood_model.score_pixels(p) for p in pixels]
    assert first == again
    assert len({round(r.mood.valence, 3) for r in first}) > 1
    for r in first:
        assert abs(sum(r.emotions.values()) - 1) < 0.05
        assert r.scenes and r.scenes[0][1] >= r.scenes[-1][1]


def test_demo_photos_keep_their_moods(mood_model, demo_photos):
    # Real photos pin the whole path from file to mood: a wrong channel order, pixel scaling or
    # crop moves some of them well beyond the tolerance (see DEMO_MOODS).
    read = {name: mood_model.score(demo_photos / f"{name}.jpg").mood for name in DEMO_MOODS}
    off = [why for name, m in read.items() if (why := off_pin(name, m.valence, m.arousal))]
    assert not off, "\n".join(off)
    # ...and the photos differ enough for the pins to mean something.
    assert read["cat"].valence - read["tesla"].valence > 0.8
    assert read["astronaut"].arousal - read["coffee"].arousal > 0.4


def test_wrong_input_shape_is_refused(mood_model):
    with pytest.raises(ValueError):
        mood_model.infer(np.zeros((100, 100, 3), np.uint8))


def test_malformed_metadata_is_a_model_error(tmp_path, model_json):
    meta = json.loads(model_json.read_text())
    (tmp_path / meta["file"]).write_bytes(model_json.with_name(meta["file"]).read_bytes())
    del meta["outputs"]["va"]
    bad = tmp_path / "broken.json"
    bad.write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="malformed"):
        MoodModel.load(bad)
    (tmp_path / "garbage.json").write_text("{not json")
    with pytest.raises(ModelError, match="unreadable"):
        MoodModel.load(tmp_path / "garbage.json")


PARITY_SCRIPT = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from frame_daemon.vision.model import MoodModel
m = MoodModel.load(sys.argv[2], runtime=sys.argv[3])
out = []
for path in sys.argv[4:]:
    pixels = np.load(path)
    raw = m.infer(pixels)
    mood = m.score_pixels(pixels).mood
    out.append({"va": raw.va.tolist(), "uncertainty": raw.uncertainty, "emotion": raw.emotion.tolist(),
                "mood": [mood.valence, mood.arousal, mood.confidence], "runtime": m.runtime})
print(json.dumps(out))
"""


def _scores_with(python: str, runtime: str, model_json: Path, arrays: list[Path]) -> list[dict]:
    proc = subprocess.run([python, "-c", PARITY_SCRIPT, str(ROOT), str(model_json), runtime,
                           *map(str, arrays)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.skipif(not os.environ.get("FRAME_DAEMON_TFLITE_PYTHON"),
                    reason="set FRAME_DAEMON_TFLITE_PYTHON to a venv python with tflite-runtime 2.14")
def test_litert_and_tflite_runtime_agree(tmp_path, model_json):
    import sys

    arrays = []
    size = json.loads(model_json.read_text())["input"]["size"]
    for s in range(8):
        path = tmp_path / f"{s}.npy"
        np.save(path, np.asarray(gradient_photo(size, size, 100 + s)))
        arrays.append(path)
    litert = _scores_with(sys.executable, "ai-edge-litert", model_json, arrays)
    tflite = _scores_with(os.environ["FRAME_DAEMON_TFLITE_PYTHON"], "tflite-runtime", model_json,
                          arrays)
    assert {r["runtime"] for r in litert} == {"ai-edge-litert"}
    assert {r["runtime"] for r in tflite} == {"tflite-runtime"}
    meta = json.loads(model_json.read_text())["outputs"]
    for a, b in zip(litert, tflite, strict=True):
        # The two runtimes' int8 kernels round differently inside the network. mood-v3 (EfficientNet-
        # Lite1, five pooled depths) measured on 68 real photos: mean 1.9 / 1.0 output steps apart
        # (valence / arousal), at most 8 / 13, and each runtime as far from the float graph as from
        # the other (mean 0.03 / 0.02). A wrong channel order or input scaling moves the mood by
        # far more than this bound.
        assert np.abs(np.subtract(a["va"], b["va"])).max() <= 10 * meta["va"]["scale"] + 1e-6
        # The uncertainty's int8 step is tiny (its range is narrow): what matters is the confidence
        # it gives, whose slope is at most 1 / (4 * error_scale); allowed to move by 0.01.
        error_scale = json.loads(model_json.read_text())["confidence"]["error_scale"]
        assert abs(a["uncertainty"] - b["uncertainty"]) <= max(
            2 * meta["uncertainty"]["scale"], 0.04 * error_scale) + 1e-6
        # The emotion distribution (shown by `score`, used nowhere else) ends in a softmax over
        # large logits, whose int8 kernels round differently in the two runtimes: measured up to
        # 16 steps (0.0625) apart on these photos with mood-v3 (11 with mood-v2).
        assert np.abs(np.subtract(a["emotion"], b["emotion"])).max() <= 0.08
        # The calibration spreads arousal about 2x: 10 steps become about 0.12.
        assert np.abs(np.subtract(a["mood"], b["mood"])).max() <= 0.13
