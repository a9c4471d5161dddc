"""The int8 TFLite mood model: reads its JSON metadata, runs it, and returns a photo's mood."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from frame_daemon.errors import ModelError
from frame_daemon.mood import Mood
from frame_daemon.vision import model_files
from frame_daemon.vision.photo import DEFAULT_MAX_PIXELS, center_square, load_photo
from frame_daemon.vision.runtime import make_interpreter

METADATA_FORMAT = 1
OUTPUT_NAMES = ("va", "emotion", "imagenet")


@dataclass(frozen=True, slots=True)
class RawOutput:
    """Dequantized model outputs for one photo."""

    va: np.ndarray  # (2,) valence, arousal in [-1, 1]
    emotion: np.ndarray  # (7,) Emotion6 emotion distribution
    imagenet: np.ndarray  # (1000,) ImageNet class probabilities


@dataclass(frozen=True, slots=True)
class PhotoMood:
    """What the model makes of one photo."""

    photo: str
    mood: Mood
    word: str
    emotions: dict[str, float]
    scenes: list[tuple[str, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "photo": self.photo,
            "valence": round(self.mood.valence, 3),
            "arousal": round(self.mood.arousal, 3),
            "mood": self.word,
            "confidence": round(self.mood.confidence, 3),
            "emotions": {k: round(v, 3) for k, v in self.emotions.items()},
            "scenes": [{"label": label, "p": round(p, 3)} for label, p in self.scenes],
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
    wanted = {"va": 2, "emotion": len(emotions), "imagenet": len(class_names)}
    out_meta = {}
    for name, width in wanted.items():
        if width not in by_shape:
            raise ModelError(f"{tflite_path}: no output of width {width} for {name!r}")
        out_meta[name] = _tensor_quant(by_shape[width])
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
                "va": "valence and arousal in [-1, 1] (Emotion6 head blended with an ImageNet-class "
                      "lexicon prior)",
                "emotion": "probability of each Emotion6 emotion: " + ", ".join(emotions),
                "imagenet": "ImageNet-1k class probabilities (what the model saw)",
            },
        },
        "emotions": emotions,
        "imagenet_labels": class_names,
        "quantization": "full integer: int8 weights and activations, int8 input and outputs",
    }


class MoodModel:
    """Loads the model once; `score(path)` turns a photo file into a `PhotoMood`."""

    def __init__(self, meta: dict[str, Any], model_path: Path, threads: int = 1,
                 runtime: str = "auto") -> None:
        try:
            self.meta = meta
            self.input_meta = meta["input"]
            self.size = int(self.input_meta["size"])
            self.emotion_names: list[str] = list(meta["emotions"])
            self.labels: list[str] = list(meta["imagenet_labels"])
            self.confidence_scale = float(meta.get("confidence", {}).get("scale", 1.0))
            self.calibration = Calibration.from_meta(meta.get("calibration"))
            out_meta = {name: meta["outputs"][name] for name in OUTPUT_NAMES}
            scaling = self.input_meta["scaling"]
            mean, std = float(scaling["mean"]), float(scaling["std"])
            in_scale, in_zp = float(self.input_meta["scale"]), int(self.input_meta["zero_point"])
        except (KeyError, TypeError, ValueError) as exc:
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

    @classmethod
    def load(cls, json_path: str | os.PathLike[str] | None = None, threads: int = 1,
             runtime: str = "auto") -> MoodModel:
        json_path = Path(json_path) if json_path else model_files.model_path(model_files.DEFAULT_MOOD_MODEL)
        if json_path.suffix == ".tflite":
            json_path = json_path.with_suffix(".json")
        try:
            meta = json.loads(json_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"{json_path}: model metadata not found") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(f"{json_path}: unreadable model metadata ({exc})") from exc
        if meta.get("format") != METADATA_FORMAT:
            raise ModelError(f"{json_path}: metadata format {meta.get('format')!r}, "
                             f"expected {METADATA_FORMAT}")
        model_path = json_path.parent / meta.get("file", json_path.stem + ".tflite")
        if not model_path.exists():
            raise ModelError(f"{model_path}: model file not found")
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
        return RawOutput(va=out["va"], emotion=out["emotion"], imagenet=out["imagenet"])

    def score_pixels(self, pixels: np.ndarray, photo: str = "") -> PhotoMood:
        raw = self.infer(pixels)
        return interpret(raw, photo, self.emotion_names, self.labels, self.confidence_scale,
                         self.calibration)

    def score(self, path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS) -> PhotoMood:
        """Load, preprocess and score one photo. Raises PhotoError for unreadable photos."""
        image = load_photo(path, self.size, max_pixels)
        return self.score_pixels(center_square(image, self.size), str(path))


@dataclass(frozen=True, slots=True)
class Calibration:
    """Spread the model's valence/arousal like people's ratings (Pearson r is unchanged).

    A regression model pulls uncertain photos towards the average, so raw outputs huddle near
    the centre and every photo would read "nostalgic". Matching the mean and spread of the
    validation ratings puts a clearly joyful photo in the joyful region.
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


def peakedness(emotion: np.ndarray) -> float:
    """1 - normalised entropy of an emotion distribution: 0 when flat, 1 when one emotion."""
    emo = np.clip(emotion, 0, None)
    emo = emo / emo.sum() if emo.sum() > 0 else np.full_like(emo, 1 / len(emo))
    entropy = -float(np.sum(emo * np.log(emo + 1e-9)))
    return 1.0 - entropy / math.log(len(emo))


def interpret(raw: RawOutput, photo: str, emotion_names: list[str], labels: list[str],
              confidence_scale: float = 1.0, calibration: Calibration | None = None,
              top_scenes: int = 3) -> PhotoMood:
    """Turn raw outputs into a mood, a word, a confidence and the top scene words.

    Confidence is how peaked the emotion distribution is (`peakedness`): Emotion6 photos that
    raters agreed on get peaked distributions, ambiguous photos flat ones. Even agreed photos are
    far from one-hot, so it is divided by `confidence_scale` (twice the validation median, from
    the model's JSON): a typical photo gets 0.5, a clear one approaches 1.
    """
    emo = np.clip(raw.emotion, 0, None)
    emo = emo / emo.sum() if emo.sum() > 0 else np.full_like(emo, 1 / len(emo))
    confidence = peakedness(emo) / max(confidence_scale, 1e-6)
    valence, arousal = (calibration or Calibration()).apply(raw.va)
    mood = Mood.clipped(valence, arousal, confidence)
    top = np.argsort(raw.imagenet)[::-1][:top_scenes]
    scenes = [(labels[i], float(raw.imagenet[i])) for i in top if raw.imagenet[i] > 0]
    return PhotoMood(photo=photo, mood=mood, word=mood.word,
                     emotions={n: float(p) for n, p in zip(emotion_names, emo, strict=True)},
                     scenes=scenes)
