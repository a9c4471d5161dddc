"""Faces: the shipped detector and expression models on a real portrait, the blend, odd photos."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from frame_daemon.vision.faces import MAX_FACES, Face, FaceReader, ssd_anchors
from frame_daemon.vision.model import FaceBlend

NEUTRAL = {"angry": 0.0, "disgust": 0.0, "fear": 0.0, "happy": 0.0, "sad": 0.0, "surprise": 0.0,
           "neutral": 1.0}
HAPPY = dict(NEUTRAL, happy=1.0, neutral=0.0)
SAD = dict(NEUTRAL, sad=1.0, neutral=0.0)
POINTS = {"happy": (1.0, 0.4), "sad": (-0.7, -0.4), "angry": (-0.7, 0.7), "disgust": (-0.9, 0.5),
          "fear": (-0.9, 0.6), "surprise": (0.7, 0.7)}


@pytest.fixture(scope="session")
def portrait(demo_photos):
    """NASA's public-domain portrait of astronaut Eileen Collins, smiling (scikit-image's sample)."""
    with Image.open(demo_photos / "astronaut.jpg") as im:
        return im.convert("RGB")


@pytest.fixture(scope="session")
def reader(model_json):
    return FaceReader(model_json.parent)


def test_anchor_grid_matches_the_detector():
    anchors = ssd_anchors()
    assert anchors.shape == (2304, 2)
    assert anchors.min() > 0 and anchors.max() < 1


def test_finds_the_smiling_astronaut(reader, portrait):
    faces, count = reader.read(portrait)
    assert count == 1
    (face,) = faces
    left, top, width, height = face.box
    # Her face sits in the upper middle of the 512x512 photo.
    assert 0.3 < left + width / 2 < 0.65 and 0.1 < top + height / 2 < 0.4
    assert 0.01 < face.area < 0.2 and face.score > 0.6
    assert face.expression == "happy"


def test_face_position_follows_the_picture(reader, portrait):
    """Letterboxing maps back: on a wide canvas with the portrait at the right, so is the face."""
    canvas = Image.new("RGB", (1536, 512), (90, 90, 90))
    canvas.paste(portrait, (1024, 0))
    (face,), _ = reader.read(canvas)
    assert face.box[0] > 2 / 3


def test_a_crowd_is_counted_but_only_the_largest_are_read(reader, portrait):
    head = portrait.crop((150, 20, 330, 230))
    canvas = Image.new("RGB", (5 * 180, 3 * 210))
    for i in range(15):
        canvas.paste(head.resize((180 - 8 * (i % 3), 210 - 8 * (i % 3))), ((i % 5) * 180, (i // 5) * 210))
    faces, count = reader.read(canvas)
    assert count == 15
    assert len(faces) == MAX_FACES
    # The largest faces are the ones read, largest first.
    areas = sorted((box[2] * box[3] for box, _ in reader.detect(canvas)), reverse=True)
    assert [f.area for f in faces] == pytest.approx(areas[:MAX_FACES])


def face(area: float, expressions: dict[str, float], score: float = 0.9) -> Face:
    side = area ** 0.5
    return Face((0.5 - side / 2, 0.5 - side / 2, side, side), score, expressions)


def test_blend_pulls_by_expression_size_and_trust():
    blend = FaceBlend(POINTS, (0.5, 0.0), 0.02)
    big_smile = blend.pull([face(0.2, HAPPY)], axis=0)
    small_smile = blend.pull([face(0.002, HAPPY)], axis=0)
    unsure = blend.pull([face(0.2, HAPPY, score=0.3)], axis=0)
    assert big_smile[0] == pytest.approx(1.0) and big_smile[1] > 0.4
    assert small_smile[1] < big_smile[1] / 5
    assert unsure[1] < big_smile[1] / 2
    assert blend.pull([face(0.2, SAD)], axis=0)[0] == pytest.approx(-0.7)
    # A neutral face says nothing; an axis with no weight is left alone.
    assert blend.pull([face(0.2, NEUTRAL)], axis=0) == (0.0, 0.0)
    assert blend.pull([face(0.2, HAPPY)], axis=1) == (0.0, 0.0)


def test_score_reports_faces_and_smiles_lift_the_mood(mood_model, portrait):
    with_faces = mood_model.score_image(portrait, "astronaut")
    assert with_faces.face_count == 1 and with_faces.faces[0].expression == "happy"
    assert with_faces.as_dict()["faces"]["count"] == 1
    # The same photo scored without faces reads less pleasant: the smile counted.
    no_faces = mood_model.score_pixels(mood_model_pixels(mood_model, portrait), "astronaut")
    assert with_faces.mood.valence > no_faces.mood.valence


def mood_model_pixels(model, image):
    from frame_daemon.vision.photo import center_square

    return center_square(image, model.size)


ODD_SHAPES = {
    "thumbnail.jpg": lambda p: p.resize((32, 32)),
    # As long and thin as a photo may be (20:1); longer ones are refused (test_photo.py).
    "strip.png": lambda p: p.resize((200, 4000)),
    "wide-strip.png": lambda p: p.resize((4000, 200)),
    "face-fills-frame.jpg": lambda p: p.crop((190, 60, 300, 190)).resize((1200, 1400)),
    "grey.jpg": lambda p: p.convert("L"),
    "cmyk.jpg": lambda p: p.convert("CMYK"),
}


def test_odd_photos_of_people_score_without_tracebacks(tmp_path, portrait, model_json):
    paths = []
    for name, make in ODD_SHAPES.items():
        make(portrait).save(tmp_path / name)
        paths.append(tmp_path / name)
    proc = subprocess.run([sys.executable, "-m", "frame_daemon", "score", "--json", *map(str, paths)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    results = {r["photo"]: r for r in map(json.loads, proc.stdout.splitlines())}
    assert len(results) == len(ODD_SHAPES)
    for r in results.values():
        assert -1 <= r["valence"] <= 1 and 0 <= r["confidence"] <= 1
        assert r["faces"]["count"] >= 0
    # Greyscale and CMYK photos of a person still show her face.
    assert results[str(tmp_path / "grey.jpg")]["faces"]["count"] == 1
    assert results[str(tmp_path / "cmyk.jpg")]["faces"]["count"] == 1
    assert np.isfinite([r["arousal"] for r in results.values()]).all()
