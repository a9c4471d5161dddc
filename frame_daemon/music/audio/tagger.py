"""The pretrained music tagger (musicnn, MSD): 50 tag probabilities for an excerpt, numpy + LiteRT only.

musicnn (J. Pons, X. Serra; ISC licence) reads 3 s patches of a 16 kHz log-mel spectrogram and
predicts 50 Million Song Dataset tags: genres, eras and moods (happy, sad, Mellow, chill, party,
beautiful). `scripts/convert_music_tagger.py` rebuilt its graph and converted its checkpoint once to
`models/music-tagger-msd.tflite`; the JSON beside it names the tags and the front end.

The front end is librosa's `melspectrogram` as musicnn calls it, redone in numpy (librosa pulls in
numba and scipy, far too slow to import on a Pi): a centred STFT (zero padding, periodic Hann
window, n_fft 512, hop 256), power, a Slaney-style mel filterbank (96 bands, 0 to 8 kHz, area
normalised) and log10(10000 * mel + 1). musicnn's own extractor casts the mel to float16 before the
log; float16 overflows to inf above 65504 (loud low notes reach that) and rounds quiet bands, so this
one stays in float32.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from frame_daemon.errors import ModelError
from frame_daemon.vision import model_files
from frame_daemon.vision.runtime import make_interpreter

METADATA_FORMAT = "frame-daemon-music-tagger-1"
DEFAULT_TAGGER = "music-tagger-msd.json"
# Patches per excerpt (scripts/bench_tagger.py): on Emotify's 100 dev clips 3 patches keep 0.90 of
# the 10-patch top five (5 patches: 0.92; Spearman 0.977 and 0.988) at under a third of the time.
DEFAULT_PATCHES = 3
SAMPLE_RATE = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187  # 3 s: librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / (200.0 / 3)
    log_part = hz >= 1000.0
    return np.where(log_part, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27),
                    mel)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27) * (mel - 15.0)),
                    mel * (200.0 / 3))


def mel_filterbank(rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) float32 triangles, as librosa.filters.mel(htk=False, norm="slaney")."""
    fft_hz = np.fft.rfftfreq(n_fft, 1.0 / rate)
    mel_hz = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(rate / 2), n_mels + 2))
    widths = np.diff(mel_hz)
    ramps = mel_hz[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    # Slaney normalisation: each triangle has unit area, so wide high bands are not louder.
    weights *= (2.0 / (mel_hz[2:] - mel_hz[:-2]))[:, None]
    return weights.astype(np.float32)


_MEL = mel_filterbank()
# scipy.signal.get_window("hann", 512): the periodic Hann window librosa uses.
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def log_mel(samples: np.ndarray, first: int = 0, count: int | None = None) -> np.ndarray:
    """(frames, 96) float32 log-mel of 16 kHz mono samples; frames = 1 + len // 256 in all.

    `first` and `count` pick frames: the tagger computes only the patches it reads (3 of a 30 s
    excerpt's 10 by default), which saves time and a few MB of FFT buffers.
    """
    y = np.asarray(samples, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"expected mono samples (1-D), got shape {y.shape}")
    padded = np.pad(y, N_FFT // 2)  # librosa's center=True, pad_mode="constant"
    n_frames = 1 + y.size // HOP
    last = n_frames if count is None else min(n_frames, first + count)
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[first * HOP:last * HOP:HOP]
    power = np.abs(np.fft.rfft(frames * _WINDOW, axis=1)).astype(np.float32) ** 2
    mel = power @ _MEL.T
    return np.log10(np.float32(10000) * mel + np.float32(1)).astype(np.float32)


def patch_starts(n_frames: int, patches: int) -> list[int]:
    """First frames of `patches` evenly spaced 187-frame patches (fewer when the excerpt is short).

    With 10 patches a 30 s excerpt (1876 frames) is covered end to end, as musicnn reads a track;
    fewer patches sample it evenly.
    """
    last = n_frames - PATCH_FRAMES
    if last < 0 or patches < 1:
        return []
    # Patches at least a quarter patch apart: more from a short excerpt would repeat themselves.
    count = min(patches, 1 + last // (PATCH_FRAMES // 4))
    if count == 1:
        return [last // 2]
    return [round(i * last / (count - 1)) for i in range(count)]


class MusicTagger:
    """Loads the tagger once; `tags(samples)` gives the 50 tag probabilities of an excerpt."""

    def __init__(self, meta: dict[str, Any], model_path: Path, threads: int = 1,
                 runtime: str = "auto") -> None:
        try:
            self.meta = meta
            self.labels: list[str] = [str(t) for t in meta["tags"]]
            shape = [int(n) for n in meta["input"]["shape"]]
            front = meta["front_end"]
            ok = (shape == [1, PATCH_FRAMES, N_MELS] and int(front["sample_rate"]) == SAMPLE_RATE
                  and int(front["n_fft"]) == N_FFT and int(front["hop"]) == HOP
                  and int(front["n_mels"]) == N_MELS and len(self.labels) == 50)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{model_path.with_suffix('.json')}: malformed tagger metadata "
                             f"({exc!r})") from exc
        if not ok:
            raise ModelError(f"{model_path.with_suffix('.json')}: the tagger expects another front "
                             f"end than this one ({shape}, {front})")
        self.interpreter, self.runtime = make_interpreter(model_path, threads, runtime)
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        if list(self._output["shape"]) != [1, len(self.labels)]:
            raise ModelError(f"{model_path}: output shape {list(self._output['shape'])}, expected "
                             f"[1, {len(self.labels)}]")

    @classmethod
    def load(cls, json_path: str | os.PathLike[str] | None = None, threads: int = 1,
             runtime: str = "auto") -> MusicTagger:
        json_path = Path(json_path) if json_path else model_files.model_path(DEFAULT_TAGGER)
        try:
            meta = json.loads(json_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"{json_path}: tagger metadata not found") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(f"{json_path}: unreadable tagger metadata ({exc})") from exc
        if not isinstance(meta, dict) or meta.get("format") != METADATA_FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
            raise ModelError(f"{json_path}: metadata format {found!r}, expected {METADATA_FORMAT}")
        model_path = json_path.parent / meta.get("file", json_path.stem + ".tflite")
        if not model_path.exists():
            raise ModelError(f"{model_path}: model file not found")
        return cls(meta, model_path, threads, runtime)

    def _quantise(self, x: np.ndarray, detail: dict) -> np.ndarray:
        if detail["dtype"] == np.float32:
            return x.astype(np.float32)
        scale, zp = detail["quantization"]
        info = np.iinfo(detail["dtype"])
        return np.clip(np.round(x / scale) + zp, info.min, info.max).astype(detail["dtype"])

    def infer_patch(self, patch: np.ndarray) -> np.ndarray:
        """The 50 tag probabilities of one (187, 96) log-mel patch."""
        if patch.shape != (PATCH_FRAMES, N_MELS):
            raise ValueError(f"expected a ({PATCH_FRAMES}, {N_MELS}) patch, got {patch.shape}")
        self.interpreter.set_tensor(self._input["index"], self._quantise(patch[None], self._input))
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self._output["index"])[0]
        if self._output["dtype"] != np.float32:
            scale, zp = self._output["quantization"]
            out = (out.astype(np.float32) - zp) * scale
        return out.astype(np.float32)

    def tag_vector(self, samples_16k: np.ndarray, patches: int = DEFAULT_PATCHES) -> np.ndarray:
        """Tag probabilities (50,) averaged over `patches` evenly spaced 3 s patches.

        Raises ValueError when the excerpt is shorter than one patch (3 s).
        """
        starts = patch_starts(1 + len(samples_16k) // HOP, patches)
        if not starts:
            raise ValueError(f"too short for the tagger: {len(samples_16k) / SAMPLE_RATE:.1f} s, "
                             f"it reads {PATCH_FRAMES * HOP / SAMPLE_RATE:.0f} s patches")
        return np.mean([self.infer_patch(log_mel(samples_16k, s, PATCH_FRAMES)) for s in starts],
                       axis=0)

    def tags(self, samples_16k: np.ndarray, patches: int = DEFAULT_PATCHES) -> dict[str, float]:
        """{tag: probability} for all 50 tags, pooled (mean) over `patches` evenly spaced patches."""
        vector = self.tag_vector(samples_16k, patches)
        return {tag: float(p) for tag, p in zip(self.labels, vector, strict=True)}


def top_tags(tags: dict[str, float], n: int = 5) -> list[tuple[str, float]]:
    """The `n` most probable tags, most probable first."""
    return sorted(tags.items(), key=lambda kv: -kv[1])[:n]
