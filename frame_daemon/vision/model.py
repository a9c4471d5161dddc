"""The int8 TFLite mood model: reads its JSON metadata, runs it, and returns a photo's mood."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from frame_daemon.errors import ModelError
from frame_daemon.mood import Mood
from frame_daemon.vision import model_files
from frame_daemon.vision.faces import Face, FaceReader
from frame_daemon.vision.photo import DEFAULT_MAX_PIXELS, center_square, load_photo
from frame_daemon.vision.runtime import make_interpreter

METADATA_FORMAT = 1
OUTPUT_NAMES = ("va", "emotion", "imagenet")
OPTIONAL_OUTPUTS = ("uncertainty",)  # since mood-v2: the expected valence-arousal error


@dataclass(frozen=True, slots=True)
class RawOutput:
    """Dequantized model outputs for one photo."""

    va: np.ndarray  # (2,) valence, arousal in [-1, 1]
    emotion: np.ndarray  # (7,) Emotion6 emotion distribution
    imagenet: np.ndarray  # (1000,) ImageNet class probabilities
    uncertainty: float | None = None  # expected distance from people's ratings, when the model has it


@dataclass(frozen=True, slots=True)
class PhotoMood:
    """What the model makes of one photo."""

    photo: str
    mood: Mood
    word: str
    emotions: dict[str, float]
    scenes: list[tuple[str, float]] = field(default_factory=list)
    faces: list[Face] = field(default_factory=list)  # the largest few, with their expressions
    face_count: int = 0  # every face found, examined or not

    def as_dict(self) -> dict[str, Any]:
        return {
            "photo": self.photo,
            "valence": round(self.mood.valence, 3),
            "arousal": round(self.mood.arousal, 3),
            "mood": self.word,
            "confidence": round(self.mood.confidence, 3),
            "emotions": {k: round(v, 3) for k, v in self.emotions.items()},
            "scenes": [{"label": label, "p": round(p, 3)} for label, p in self.scenes],
            "faces": {"count": self.face_count, "examined": [f.as_dict() for f in self.faces]},
        }


def _tensor_quant(detail: dict) -> dict[str, Any]:
    scale, zero_point = detail["quantization"]
    return {"tensor": detail["name"], "shape": [int(x) for x in detail["shape"]],
            "dtype": np.dtype(detail["dtype"]).name, "scale": float(scale),
            "zero_point": int(zero_point)}


def build_metadata(tflite_path: Path, *, input_size: int, mean: float, std: float,
                   emotions: list[str], class_names: list[str]) -> dict[str, Any]:
    """Describe a freshly exported model: tensors by name, quantization, meaning of outputs.

    Output tensors are told apart by their signature names (or their shapes), recorded here so
    the runtime never relies on tensor order.
    """
    interp, _ = make_interpreter(tflite_path, threads=1)
    inputs = interp.get_input_details()
    outputs = {d["name"]: d for d in interp.get_output_details()}
    by_shape = {int(d["shape"][-1]): d for d in outputs.values()}
    wanted = {"va": 2, "emotion": len(emotions), "imagenet": len(class_names), "uncertainty": 1}
    out_meta = {}
    for name, width in wanted.items():
        if width in by_shape:
            out_meta[name] = _tensor_quant(by_shape[width])
        elif name not in OPTIONAL_OUTPUTS:
            raise ModelError(f"{tflite_path}: no output of width {width} for {name!r}")
    return {
        "format": METADATA_FORMAT,
        "name": tflite_path.stem,
        "version": "1.0.0",
        "file": tflite_path.name,
        "input": _tensor_quant(inputs[0]) | {
            "layout": "NHWC", "size": input_size, "colour": "RGB",
            "scaling": {"mean": mean, "std": std,
                        "formula": "x = (pixel - mean) / std, then q = round(x / scale) + zero_point"},
            "crop": "resize short side to size, centre crop",
        },
        "outputs": out_meta | {
            "meaning": {
                "va": "valence and arousal (heads on pooled features and an ImageNet-class lexicon "
                      "prior; the model card says which), before the face blend and the calibration",
                "uncertainty": "the expected distance of va from people's ratings (confidence)",
                "emotion": "probability of each Emotion6 emotion: " + ", ".join(emotions),
                "imagenet": "ImageNet-1k class probabilities (what the model saw)",
            },
        },
        "emotions": emotions,
        "imagenet_labels": class_names,
        "quantization": "full integer: int8 weights and activations, int8 input and outputs",
    }


class MoodModel:
    """Loads the models once; `score(path)` turns a photo file into a `PhotoMood`.

    The int8 network reads the whole scene (valence/arousal, emotions, ImageNet classes); faces,
    when the JSON has a face blend and the helper models ship beside it, pull the mood towards
    what the people in the photo show.
    """

    def __init__(self, meta: dict[str, Any], model_path: Path, threads: int = 1,
                 runtime: str = "auto") -> None:
        try:
            self.meta = meta
            self.input_meta = meta["input"]
            self.size = int(self.input_meta["size"])
            self.emotion_names: list[str] = list(meta["emotions"])
            self.labels: list[str] = list(meta["imagenet_labels"])
            self.post = PostProcess.from_meta(meta)
            out_meta = {name: meta["outputs"][name] for name in OUTPUT_NAMES}
            out_meta |= {name: meta["outputs"][name] for name in OPTIONAL_OUTPUTS
                         if name in meta["outputs"]}
            scaling = self.input_meta["scaling"]
            mean, std = float(scaling["mean"]), float(scaling["std"])
            in_scale, in_zp = float(self.input_meta["scale"]), int(self.input_meta["zero_point"])
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ModelError(f"{model_path.with_suffix('.json')}: malformed model metadata "
                             f"({exc!r})") from exc
        self.interpreter, self.runtime = make_interpreter(model_path, threads, runtime)
        details = {d["name"]: d for d in self.interpreter.get_output_details()}
        self._outputs = {}
        for name, m in out_meta.items():
            if m["tensor"] not in details:
                raise ModelError(f"{model_path}: output tensor {m['tensor']!r} ({name}) not in model")
            self._outputs[name] = (details[m["tensor"]]["index"], m["scale"], m["zero_point"])
        self._input_index = self.interpreter.get_input_details()[0]["index"]
        # One lookup table maps 8-bit pixels straight to the model's int8 input.
        pixels = np.arange(256, dtype=np.float64)
        q = np.round((pixels - mean) / std / in_scale) + in_zp
        dtype = np.dtype(self.input_meta["dtype"])
        info = np.iinfo(dtype)
        self._lut = np.clip(q, info.min, info.max).astype(dtype)
        self.face_reader = (FaceReader(model_path.parent, threads, self.runtime)
                            if self.post.faces else None)

    @classmethod
    def load(cls, json_path: str | os.PathLike[str] | None = None, threads: int = 1,
             runtime: str = "auto") -> MoodModel:
        json_path = (Path(json_path) if json_path
                     else model_files.model_path(model_files.DEFAULT_MOOD_MODEL))
        if json_path.suffix == ".tflite":
            json_path = json_path.with_suffix(".json")
        meta, model_path = model_files.read_metadata(json_path, "model metadata", METADATA_FORMAT)
        return cls(meta, model_path, threads, runtime)

    def infer(self, pixels: np.ndarray) -> RawOutput:
        """Run the model on an RGB uint8 (size, size, 3) array."""
        if pixels.shape != (self.size, self.size, 3):
            raise ValueError(f"expected pixels of shape {(self.size, self.size, 3)}, "
                             f"got {pixels.shape}")
        self.interpreter.set_tensor(self._input_index, self._lut[pixels][None])
        self.interpreter.invoke()
        out = {}
        for name, (index, scale, zp) in self._outputs.items():
            q = self.interpreter.get_tensor(index)[0].astype(np.float32)
            out[name] = (q - zp) * scale
        uncertainty = float(out["uncertainty"][0]) if "uncertainty" in out else None
        return RawOutput(va=out["va"], emotion=out["emotion"], imagenet=out["imagenet"],
                         uncertainty=uncertainty)

    def score_pixels(self, pixels: np.ndarray, photo: str = "",
                     faces: tuple[list[Face], int] = ([], 0)) -> PhotoMood:
        """The mood of a centre-cropped (size, size, 3) photo, with faces found elsewhere."""
        return interpret(self.infer(pixels), photo, self.emotion_names, self.labels, self.post,
                         faces)

    def score_image(self, image: Image.Image, photo: str = "") -> PhotoMood:
        """The mood of an upright RGB photo (as `load_photo` returns it)."""
        faces = self.face_reader.read(image) if self.face_reader else ([], 0)
        return self.score_pixels(center_square(image, self.size), photo, faces)

    def score(self, path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS) -> PhotoMood:
        """Load, preprocess and score one photo. Raises PhotoError for unreadable photos."""
        return self.score_image(load_photo(path, self.size, max_pixels), str(path))


@dataclass(frozen=True, slots=True)
class Calibration:
    """Spread the model's valence/arousal like people's ratings (Pearson r is unchanged).

    A regression model pulls uncertain photos towards the average, so raw outputs huddle near
    the centre and every photo would read as the word at the centre. Matching the mean and spread
    of the human ratings puts a clearly joyful photo in the joyful region.
    """

    centre_in: tuple[float, float] = (0.0, 0.0)
    scale: tuple[float, float] = (1.0, 1.0)
    centre_out: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def from_meta(cls, meta: dict[str, Any] | None) -> Calibration:
        if not meta:
            return cls()
        return cls(tuple(meta["centre_in"]), tuple(meta["scale"]), tuple(meta["centre_out"]))

    def apply(self, va: np.ndarray) -> tuple[float, float]:
        v, a = ((float(va[i]) - self.centre_in[i]) * self.scale[i] + self.centre_out[i]
                for i in range(2))
        return v, a


@dataclass(frozen=True, slots=True)
class FaceBlend:
    """How faces pull a photo's mood: by their expressions, their size and the detector's trust.

    weight = max_weight * (1 - exp(-face area / coverage_scale)) * mean trust, per axis, so a
    single small face in a landscape barely counts and a close, smiling portrait counts fully.
    """

    expression_va: dict[str, tuple[float, float]]  # the non-neutral expressions' points
    max_weight: tuple[float, float]  # per axis
    coverage_scale: float

    @classmethod
    def from_meta(cls, meta: dict[str, Any] | None) -> FaceBlend | None:
        if not meta:
            return None
        weights = meta["max_weight"]
        return cls({k: (float(v[0]), float(v[1])) for k, v in meta["expression_va"].items()},
                   (float(weights[0]), float(weights[1])), float(meta["coverage_scale"]))

    def pull(self, faces: list[Face], axis: int) -> tuple[float, float]:
        """The faces' mood on one axis and the weight it gets in the photo's mood there.

        A neutral face says nothing about the photo's mood: each face counts by its area, the
        detector's score and how expressive it is (1 - P(neutral)).
        """
        if not faces or self.max_weight[axis] <= 0:
            return 0.0, 0.0
        areas = np.array([f.area for f in faces])
        trust = np.array([f.score * (1 - f.expressions.get("neutral", 0.0)) for f in faces])
        points = []
        for f in faces:
            shown = {k: p for k, p in f.expressions.items() if k in self.expression_va}
            total = sum(shown.values()) or 1.0
            points.append(sum(p * self.expression_va[k][axis] for k, p in shown.items()) / total)
        w = areas * trust
        if w.sum() <= 0:
            return 0.0, 0.0
        face_value = float(np.dot(points, w) / w.sum())
        weight = (self.max_weight[axis] * (1 - math.exp(-areas.sum() / self.coverage_scale))
                  * float(w.sum() / areas.sum()))
        return face_value, weight

    def apply(self, va: np.ndarray, faces: list[Face]) -> np.ndarray:
        """(valence, arousal) moved towards the faces' mood, axis by axis."""
        out = np.array(va, dtype=np.float64)
        for axis in range(2):
            value, weight = self.pull(faces, axis)
            out[axis] += weight * (value - out[axis])
        return out


@dataclass(frozen=True, slots=True)
class PostProcess:
    """Everything after the network, from the model's JSON (fitted by the training script).

    - `faces`: how faces pull the mood, when the helper models ship;
    - `calibration`: spreads the result like human ratings;
    - `confidence`: how much the follow policy should trust this photo (see `confidence`).
    """

    faces: FaceBlend | None
    calibration: Calibration
    confidence: dict[str, float]

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> PostProcess:
        confidence = {k: float(v) for k, v in meta.get("confidence", {}).items()
                      if isinstance(v, int | float)}
        return cls(FaceBlend.from_meta(meta.get("faces")),
                   Calibration.from_meta(meta.get("calibration")), confidence)


def peakedness(emotion: np.ndarray) -> float:
    """1 - normalised entropy of an emotion distribution: 0 when flat, 1 when one emotion."""
    emo = np.clip(emotion, 0, None)
    emo = emo / emo.sum() if emo.sum() > 0 else np.full_like(emo, 1 / len(emo))
    entropy = -float(np.sum(emo * np.log(emo + 1e-9)))
    return 1.0 - entropy / math.log(len(emo))


def confidence(raw: RawOutput, params: dict[str, float]) -> float:
    """How much to trust a photo's mood, in [0, 1]; 0.5 for the median photo.

    The network's `uncertainty` output predicts how far its reading lies from people's ratings
    (fitted to the out-of-fold error on OASIS-dev); a logistic turns the predicted error into a
    confidence. Without it (an older model), how peaked the emotion output is stands in.
    """
    if raw.uncertainty is None or "error_centre" not in params:
        return peakedness(raw.emotion) / max(params.get("scale", 1.0), 1e-6)
    score = (params["error_centre"] - raw.uncertainty) / max(params.get("error_scale", 1.0), 1e-6)
    return 1 / (1 + math.exp(-max(-60.0, min(60.0, score))))


def interpret(raw: RawOutput, photo: str, emotion_names: list[str], labels: list[str],
              post: PostProcess | None = None, faces: tuple[list[Face], int] = ([], 0),
              top_scenes: int = 3) -> PhotoMood:
    """Turn raw outputs (and the faces found) into a mood, a word, a confidence and scene words."""
    post = post or PostProcess(None, Calibration(), {})
    emo = np.clip(raw.emotion, 0, None)
    emo = emo / emo.sum() if emo.sum() > 0 else np.full_like(emo, 1 / len(emo))
    examined, count = faces
    va = post.faces.apply(raw.va, examined) if post.faces else raw.va
    valence, arousal = post.calibration.apply(va)
    mood = Mood.clipped(valence, arousal, confidence(raw, post.confidence))
    top = np.argsort(raw.imagenet)[::-1][:top_scenes]
    scenes = [(labels[i], float(raw.imagenet[i])) for i in top if raw.imagenet[i] > 0]
    return PhotoMood(photo=photo, mood=mood, word=mood.word,
                     emotions={n: float(p) for n, p in zip(emotion_names, emo, strict=True)},
                     scenes=scenes, faces=list(examined), face_count=count)
