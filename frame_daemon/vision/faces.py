"""Find faces in a photo and read their expressions, with two small published TFLite models.

ImageNet knows no "person", yet most frame photos show people, and a smile or a frown carries
much of what a family photo feels like. Two helper models run in the same TFLite runtime as the
mood model:
- MediaPipe's BlazeFace full-range detector (192x192 input, 2,304 anchors; Apache-2.0), which
  finds faces down to about 1/20 of the picture, as in group and distance shots;
- the FER2013 expression classifier shipped by the `fer` package (64x64 grey faces, 7
  expressions; MIT).
The anchor layout and box decoding follow MediaPipe's `SsdAnchorsCalculator` and
`TensorsToDetectionsCalculator` with the options of its `face_detection_full_range` graph.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from frame_daemon.vision.runtime import make_interpreter

DETECTOR_FILE = "face_detection_full_range_sparse.tflite"
EXPRESSION_FILE = "emotion_model_quantized.tflite"
# FER2013's label order, as the `fer` package reads the model's output.
EXPRESSIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

DETECTOR_SIZE = 192
MIN_SCORE = 0.6  # MediaPipe's threshold for the full-range model
NMS_IOU = 0.3
# Faces narrower than this share of the picture's short side are too small for a 64x64
# expression read to mean anything (and too small to set the photo's mood).
MIN_FACE_SHARE = 0.03
# A crowd photo can hold dozens of faces: read the expressions of the largest few only, so a
# stadium costs about what a family portrait does.
MAX_FACES = 8
EXPRESSION_SIZE = 64
FACE_MARGIN = 0.15  # BlazeFace boxes are tight; FER2013 faces include the brow and chin


@dataclass(frozen=True, slots=True)
class Face:
    """One detected face: where it is (fractions of the picture), how sure, what it shows."""

    box: tuple[float, float, float, float]  # left, top, width, height, each in [0, 1]
    score: float  # detector confidence
    expressions: dict[str, float]  # probability of each FER2013 expression

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]

    @property
    def expression(self) -> str:
        return max(self.expressions, key=self.expressions.__getitem__)

    def as_dict(self) -> dict[str, Any]:
        return {"box": [round(x, 3) for x in self.box], "score": round(self.score, 3),
                "expression": self.expression,
                "expressions": {k: round(v, 3) for k, v in self.expressions.items()}}


def ssd_anchors(size: int = DETECTOR_SIZE, stride: int = 4) -> np.ndarray:
    """Anchor centres (x, y) of the full-range model: one fixed-size anchor per grid cell."""
    cells = math.ceil(size / stride)
    ys, xs = np.mgrid[0:cells, 0:cells]
    return np.stack([(xs.ravel() + 0.5) / cells, (ys.ravel() + 0.5) / cells], axis=1)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[0] + box[2], boxes[:, 0] + boxes[:, 2])
    y2 = np.minimum(box[1] + box[3], boxes[:, 1] + boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    return inter / (box[2] * box[3] + boxes[:, 2] * boxes[:, 3] - inter + 1e-9)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou: float = NMS_IOU
                 ) -> list[tuple[np.ndarray, float]]:
    """MediaPipe's weighted non-maximum suppression: overlapping boxes are averaged by score."""
    order = np.argsort(-scores)
    boxes, scores = boxes[order], scores[order]
    kept: list[tuple[np.ndarray, float]] = []
    alive = np.ones(len(boxes), bool)
    for i in range(len(boxes)):
        if not alive[i]:
            continue
        overlap = _iou(boxes[i], boxes) >= iou
        group = overlap & alive
        alive &= ~overlap
        weights = scores[group]
        kept.append(((boxes[group] * weights[:, None]).sum(0) / weights.sum(), float(scores[i])))
    return kept


class FaceReader:
    """Detects faces and reads their expressions; `read(image)` returns the faces, largest first."""

    def __init__(self, models_dir: Path, threads: int = 1, runtime: str = "auto") -> None:
        self.detector, self.runtime = make_interpreter(models_dir / DETECTOR_FILE, threads, runtime)
        self.expression, _ = make_interpreter(models_dir / EXPRESSION_FILE, threads, runtime)
        outputs = {tuple(d["shape"][-1:]): d["index"] for d in self.detector.get_output_details()}
        self._boxes_out, self._scores_out = outputs[(16,)], outputs[(1,)]
        self._det_in = self.detector.get_input_details()[0]["index"]
        self._expr_in = self.expression.get_input_details()[0]["index"]
        self._expr_out = self.expression.get_output_details()[0]["index"]
        self._anchors = ssd_anchors()

    def detect(self, image: Image.Image) -> list[tuple[tuple[float, float, float, float], float]]:
        """Face boxes (left, top, width, height as fractions of the picture) with their scores."""
        width, height = image.size
        side = max(width, height)
        # Letterbox into a square, as MediaPipe does (keep_aspect_ratio), so faces keep their shape.
        scale = DETECTOR_SIZE / side
        small = image.resize((max(1, round(width * scale)), max(1, round(height * scale))),
                             Image.Resampling.BILINEAR, reducing_gap=2.0)
        canvas = np.zeros((DETECTOR_SIZE, DETECTOR_SIZE, 3), np.float32)
        off_x, off_y = (DETECTOR_SIZE - small.width) // 2, (DETECTOR_SIZE - small.height) // 2
        canvas[off_y:off_y + small.height, off_x:off_x + small.width] = np.asarray(small, np.float32)
        self.detector.set_tensor(self._det_in, (canvas / 127.5 - 1.0)[None])
        self.detector.invoke()
        raw = self.detector.get_tensor(self._boxes_out)[0]
        logits = self.detector.get_tensor(self._scores_out)[0, :, 0]
        scores = 1 / (1 + np.exp(-np.clip(logits.astype(np.float64), -80, 80)))
        hit = scores >= MIN_SCORE
        if not hit.any():
            return []
        raw, scores, anchors = raw[hit], scores[hit], self._anchors[hit]
        cx = raw[:, 0] / DETECTOR_SIZE + anchors[:, 0]
        cy = raw[:, 1] / DETECTOR_SIZE + anchors[:, 1]
        w, h = raw[:, 2] / DETECTOR_SIZE, raw[:, 3] / DETECTOR_SIZE
        boxes = np.stack([cx - w / 2, cy - h / 2, w, h], axis=1)
        found = []
        for box, score in weighted_nms(boxes, scores):
            # Back from the letterboxed square to fractions of the picture.
            left = (box[0] * DETECTOR_SIZE - off_x) / small.width
            top = (box[1] * DETECTOR_SIZE - off_y) / small.height
            bw, bh = box[2] * DETECTOR_SIZE / small.width, box[3] * DETECTOR_SIZE / small.height
            left, top = max(0.0, left), max(0.0, top)
            bw, bh = min(bw, 1.0 - left), min(bh, 1.0 - top)
            if bw <= 0 or bh <= 0 or min(bw * width, bh * height) < MIN_FACE_SHARE * min(width, height):
                continue
            found.append(((float(left), float(top), float(bw), float(bh)), score))
        found.sort(key=lambda f: -f[0][2] * f[0][3])
        return found

    def expressions(self, grey: Image.Image, box: tuple[float, float, float, float]) -> dict[str, float]:
        """Expression probabilities of the face in `box` of a greyscale picture."""
        width, height = grey.size
        left, top, bw, bh = box
        # A square crop around the face, a little larger than the detector's box.
        side = max(bw * width, bh * height) * (1 + 2 * FACE_MARGIN)
        cx, cy = (left + bw / 2) * width, (top + bh / 2) * height
        crop = grey.crop((round(cx - side / 2), round(cy - side / 2),
                          round(cx + side / 2), round(cy + side / 2)))
        face = np.asarray(crop.resize((EXPRESSION_SIZE, EXPRESSION_SIZE), Image.Resampling.BILINEAR),
                          np.float32)
        # The `fer` package's scaling: pixels to [-1, 1].
        self.expression.set_tensor(self._expr_in, (face / 127.5 - 1.0)[None, :, :, None])
        self.expression.invoke()
        probs = np.clip(self.expression.get_tensor(self._expr_out)[0].astype(np.float64), 0, None)
        probs = probs / probs.sum() if probs.sum() > 0 else np.full(len(EXPRESSIONS), 1 / len(EXPRESSIONS))
        return {name: float(p) for name, p in zip(EXPRESSIONS, probs, strict=True)}

    def read(self, image: Image.Image, max_faces: int = MAX_FACES) -> tuple[list[Face], int]:
        """The largest `max_faces` faces with their expressions, and how many faces were found."""
        found = self.detect(image)
        grey = image.convert("L") if found else image
        faces = [Face(box, score, self.expressions(grey, box)) for box, score in found[:max_faces]]
        return faces, len(found)
