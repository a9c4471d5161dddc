"""The small calibrated model that turns measured audio features into valence and arousal.

`estimate_mood(features)` gives the track's MoodEstimate: the model's (valence, arousal), a
confidence that shrinks for excerpts shorter than EXCERPT_S, and a few words naming the features a
person would recognise.

One ridge regression per axis on standardized features, fitted by `scripts/calibrate_audio_model.py`
on the Emotify development excerpts (A. Aljanaki, F. Wiering, R. C. Veltkamp, "Studying emotion
induced by music through a crowdsourcing game", Information Processing & Management, 2015). Only
the coefficients below ship; the data stays outside the repository. Pure Python: a prediction is
two dozen multiply-adds.

Targets. Emotify has no valence/arousal ratings: each listener ticked some of the nine GEMS emotions
(Zentner, Grandjean & Scherer, "Emotions evoked by the sound of music", Emotion 8, 2008). Each
emotion is placed on the project's plane the way `frame_daemon.music.lexicon` places tag words: the
mean NRC-VAD (valence, arousal) of GEMS_DESCRIPTORS, rescaled with 2x - 1 (the calibration script
recomputes GEMS_POINTS with `--lexicon`). An excerpt's target is the centroid of those points
weighted by the share of listeners who ticked each emotion (`tag_target`), so "calm" in a tag, a
photo and an analysed track mean the same place. Listeners rarely agree, so the targets stay
nearer the middle of the plane than a single tag would (on emotify-dev 61 of 100 fall in the
"nostalgic" region and 27 in "tender"), and so do the predictions.

Inputs (`model_inputs`) are AudioFeatures with tempo, onset rate and flux on log scales, and
brightness both linear and logarithmic: on emotify-dev valence is higher for very dark and very
bright excerpts than for middling ones (r = 0.28-0.46 within each of the four genres), a U-shape
a linear term cannot hold. That term is empirical, found on this same set (without it valence
CV r drops by about 0.1); the rest follow the literature (loudness, brightness, onset density and
roughness carry arousal; mode, key clarity and harmonic movement carry valence).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from frame_daemon.mood import Mood
from frame_daemon.music.audio.features import AudioFeatures
from frame_daemon.music.track import MoodEstimate, MoodSource

# GEMS emotion (Emotify's column names) -> the GEMS-9 descriptor words of Zentner et al. (2008) that
# are in the NRC-VAD lexicon, plus the emotion's own noun. Emotify's "solemnity" is GEMS
# "transcendence"; "calmness" is GEMS "peacefulness".
GEMS_DESCRIPTORS: dict[str, tuple[str, ...]] = {
    "amazement": ("amazement", "wonder", "amazed", "fascinated"),
    "solemnity": ("solemn", "transcendence", "spirituality"),
    "tenderness": ("tenderness", "tender", "affectionate", "sensual", "love"),
    "nostalgia": ("nostalgia", "nostalgic", "sentimental", "dreamy", "melancholic"),
    "calmness": ("calmness", "calm", "relaxed", "serene", "meditative", "peaceful"),
    "power": ("power", "energetic", "triumphant", "fiery", "strong", "heroic"),
    "joyful_activation": ("joyful", "animated", "amused", "dancing", "joy"),
    "tension": ("tension", "tense", "agitated", "nervous", "impatient", "irritated"),
    "sadness": ("sadness", "sad", "sorrowful"),
}

# (valence, arousal) of each GEMS emotion: the mean of its descriptors in NRC-VAD v1, 2x - 1.
GEMS_POINTS: dict[str, tuple[float, float]] = {
    "amazement": (0.65, 0.53),
    "solemnity": (0.49, -0.16),
    "tenderness": (0.70, 0.01),
    "nostalgia": (-0.01, -0.31),
    "calmness": (0.65, -0.78),
    "power": (0.58, 0.58),
    "joyful_activation": (0.85, 0.58),
    "tension": (-0.39, 0.49),
    "sadness": (-0.78, -0.30),
}


def tag_target(shares: Mapping[str, float]) -> tuple[float, float]:
    """The (valence, arousal) target of an excerpt from the share of listeners ticking each emotion.

    The centroid of GEMS_POINTS weighted by the shares; (0, 0) if nobody ticked anything.
    """
    total = sum(shares.get(e, 0.0) for e in GEMS_POINTS)
    if total <= 0:
        return 0.0, 0.0
    valence = sum(shares.get(e, 0.0) * p[0] for e, p in GEMS_POINTS.items()) / total
    arousal = sum(shares.get(e, 0.0) * p[1] for e, p in GEMS_POINTS.items()) / total
    return valence, arousal


# Arousal reads the energy, rhythm and roughness features the literature ties to it; valence reads
# all of them, since on this data it rests on several weak cues at once (mode, key clarity, harmonic
# movement, brightness) and none alone carries it.
AROUSAL_INPUTS: tuple[str, ...] = (
    "log_onset_rate", "log_flux", "pulse_clarity", "loudness_db", "loudness_spread", "brightness",
    "flatness", "dissonance", "tonal_spread",
)
VALENCE_INPUTS: tuple[str, ...] = (
    "log_tempo", "pulse_clarity", "log_onset_rate", "log_flux", "loudness_db", "loudness_spread",
    "brightness", "log_brightness", "flatness", "dissonance", "tonal_spread", "key_clarity",
    "mode_strength", "harmonic_change",
)


def model_inputs(features: Mapping[str, Any]) -> dict[str, float]:
    """Every model input by name, from AudioFeatures.as_dict() (or a mapping with the same keys)."""
    f = features
    return {
        "log_tempo": math.log2(max(float(f["tempo"]), 30.0) / 120.0),  # octaves from 120 BPM
        "log_onset_rate": math.log(float(f["onset_rate"]) + 0.5),
        "log_flux": math.log(float(f["flux"]) + 0.01),
        "log_brightness": math.log10(float(f["brightness"]) + 0.001),
        **{name: float(f[name]) for name in ("pulse_clarity", "loudness_db", "loudness_spread",
                                              "brightness", "flatness", "dissonance", "tonal_spread",
                                              "key_clarity", "mode_strength", "harmonic_change")},
    }


# Tag probabilities are clipped this far from 0 and 1 before their logit: float32 sigmoids reach 1.0.
_LOGIT_EPS = 1e-6


def head_inputs(features: Mapping[str, Any], tags: Mapping[str, float],
                points: Mapping[str, tuple[float, float]]) -> dict[str, float]:
    """The tag head's inputs: model_inputs, each tag's probability as "tag:<name>" and its logit as
    "logit:<name>", and the lexicon prior (prior_valence, prior_arousal): the centroid of the tags'
    places on the plane (`points`, moods and genres read as the project reads a file's tags) weighted
    by their probabilities.

    Logits, because a tag's probability saturates: 0.01 and 0.05 (a tag absent or faintly there)
    are far apart for the valence head and nearly equal as probabilities (repeated CV on Emotify:
    valence r +0.04 for all 50 tags as logits against as probabilities)."""
    values = model_inputs(features)
    values.update({f"tag:{t}": float(p) for t, p in tags.items()})
    for t, p in tags.items():
        q = min(1.0 - _LOGIT_EPS, max(_LOGIT_EPS, float(p)))
        values[f"logit:{t}"] = math.log(q / (1.0 - q))
    placed = [(float(tags[t]), pt) for t, pt in points.items() if t in tags]
    weight = max(sum(p for p, _ in placed), 1e-6)
    values["prior_valence"] = sum(p * pt[0] for p, pt in placed) / weight
    values["prior_arousal"] = sum(p * pt[1] for p, pt in placed) / weight
    return values


# Standardized inputs are clipped to this many standard deviations of the calibration set, so one
# feature far outside anything calibrated (a pure synthetic tone is 12 SD less noisy than any
# recording) cannot throw the estimate across the plane on its own.
CLIP_SD = 3.0


@dataclass(frozen=True, slots=True)
class KernelTerm:
    """Gaussian-kernel ridge terms over the axis's standardized (clipped) inputs, one per width, all
    on the same centres (the calibration excerpts, kept once):
    sum over widths k and centres i of alphas[k][i] * exp(-|z - centre_i|^2 / widths[k]).

    It says "sounds and tags like the excerpts listeners found pleasant", which a linear map of the
    same inputs cannot: on Emotify the averaged linear + kernel head reads valence better than
    either alone (scripts/calibrate_music_mood.py prints by how much). Several widths, because the
    head averages its fits over a grid of widths and ridges rather than choosing one (100 excerpts
    cannot choose them well); the ridges fold into each width's alphas. Far from every centre it
    adds nothing, and the linear term alone places the track (pulled halfway to the middle).
    """

    widths: tuple[float, ...]
    centres: tuple[tuple[float, ...], ...]
    alphas: tuple[tuple[float, ...], ...]  # alphas[k][i]: width k, centre i

    def __call__(self, z: tuple[float, ...]) -> float:
        total = 0.0
        for i, centre in enumerate(self.centres):
            d2 = sum((a - b) * (a - b) for a, b in zip(z, centre, strict=True))
            total += sum(alpha[i] * math.exp(-d2 / width)
                         for width, alpha in zip(self.widths, self.alphas, strict=True))
        return total


@dataclass(frozen=True, slots=True)
class LinearAxis:
    """One axis of the plane: intercept + gain * sum(weight * clip((input - mean) / scale)), or with
    a `kernel`, intercept + gain * (linear sum + kernel term) / 2.

    `weights` are the ridge weights (for a head averaged over ridge strengths, their mean). Ridge
    (and any model with r well below 1) pulls predictions toward the mean, so that nearly every
    track would sit in the same one or two mood-word regions; `gain` spreads the predictions back
    out to the spread of the listener targets on the calibration set. It changes no correlation,
    only how far from the middle estimates land.
    """

    inputs: tuple[str, ...]
    intercept: float
    gain: float
    means: tuple[float, ...]
    scales: tuple[float, ...]
    weights: tuple[float, ...]
    kernel: KernelTerm | None = None

    def __call__(self, values: Mapping[str, float]) -> float:
        z = tuple(max(-CLIP_SD, min(CLIP_SD, (values[name] - m) / s))
                  for name, m, s in zip(self.inputs, self.means, self.scales, strict=True))
        linear = sum(w * v for w, v in zip(self.weights, z, strict=True))
        if self.kernel is None:
            return self.intercept + self.gain * linear
        return self.intercept + self.gain * (linear + self.kernel(z)) / 2


# --- BEGIN CALIBRATION (written by scripts/calibrate_audio_model.py --write) ---
CALIBRATION = 'emotify-dev, 100 excerpts; 5-fold CV (seed 0): valence r = 0.46, arousal r = 0.57'
VALENCE = LinearAxis(
    inputs=VALENCE_INPUTS,
    intercept=0.304244,
    gain=2.124,
    means=(
        -0.154694, 0.41502, 1.36782, 0.0716612, -15.624, 6.183, 0.04944, -1.49473, -20.8332,
        0.37609, 3.2392, 0.6483, 0.04412, 0.16651,
    ),
    scales=(
        0.417851, 0.195916, 0.280715, 0.362376, 4.65468, 4.00545, 0.04855, 0.447919, 6.71573,
        0.144521, 0.218707, 0.179002, 0.150834, 0.0470101,
    ),
    weights=(
        -0.00591549, 0.0234046, 0.013307, 0.0204791, 0.00115919, 0.00735383, 0.0652499, -0.0632989,
        0.0162711, -0.006226, 0.000264204, 0.0255505, 0.0334803, 0.0309552,
    ),
)
AROUSAL = LinearAxis(
    inputs=AROUSAL_INPUTS,
    intercept=0.0131392,
    gain=1.694,
    means=(
        1.36782, 0.0716612, 0.41502, -15.624, 6.183, 0.04944, -20.8332, 0.37609, 3.2392,
    ),
    scales=(
        0.280715, 0.362376, 0.195916, 4.65468, 4.00545, 0.04855, 6.71573, 0.144521, 0.218707,
    ),
    weights=(
        0.0255118, 0.0231682, 0.0115218, -0.00740365, -0.0288043, 0.0197139, 0.036264, 0.022741,
        0.0386372,
    ),
)
# --- END CALIBRATION ---

# How far an analysis estimate is trusted: above a genre prior (0.35), well below a mood tag (0.85);
# cross-validated r is about 0.6 for arousal and 0.4 for valence.
CONFIDENCE = 0.5


@dataclass(frozen=True, slots=True)
class TagHead:
    """The mood head that reads the tagger's tags with the features (models/music-tagger-msd.json,
    "mood_head", written by scripts/calibrate_music_mood.py). Its `version` names the analyses it
    makes (the index re-analyses older ones in the background)."""

    version: str
    points: Mapping[str, tuple[float, float]]
    valence: LinearAxis
    arousal: LinearAxis
    calibration: str = ""

    @classmethod
    def from_meta(cls, head: Mapping[str, Any]) -> TagHead:
        def axis(a: Mapping[str, Any]) -> LinearAxis:
            inputs = tuple(a["inputs"])
            kernel = None
            if "kernel" in a:
                k = a["kernel"]
                centres = tuple(tuple(map(float, c)) for c in k["centres"])
                alphas = tuple(tuple(map(float, t["alphas"])) for t in k["terms"])
                if (any(len(c) != len(inputs) for c in centres) or not alphas
                        or any(len(al) != len(centres) for al in alphas)):
                    raise ValueError("kernel centres and alphas do not fit the inputs")
                kernel = KernelTerm(tuple(float(t["width"]) for t in k["terms"]), centres, alphas)
            return LinearAxis(inputs, float(a["intercept"]), float(a["gain"]),
                              tuple(map(float, a["means"])), tuple(map(float, a["scales"])),
                              tuple(map(float, a["weights"])), kernel)
        points = {str(t): (float(p[0]), float(p[1])) for t, p in head["tag_points"].items()}
        return cls(str(head["version"]), points, axis(head["valence"]), axis(head["arousal"]),
                   str(head.get("calibration", "")))

    def __call__(self, features: Mapping[str, Any], tags: Mapping[str, float]) -> tuple[float, float]:
        values = head_inputs(features, tags, self.points)
        return self.valence(values), self.arousal(values)


def predict(features: Mapping[str, Any]) -> tuple[float, float]:
    """(valence, arousal) for AudioFeatures.as_dict(); may stray slightly outside [-1, 1]."""
    values = model_inputs(features)
    return VALENCE(values), AROUSAL(values)


# --- the estimate -------------------------------------------------------------------------------------

# Where _describe starts calling a track bright, loud, ... : about the 15th and 85th percentiles of
# the emotify-dev excerpts, so the words single out what stands out among ordinary music.
_DARK, _BRIGHT = 0.012, 0.08
_QUIET_DB, _LOUD_DB = -22.0, -11.0
_SPARSE, _DENSE = 2.2, 4.5  # onsets per second
_CLEAR_KEY = 0.5
_CLEAR_BEAT = 0.1  # pulse clarity; 95% of the emotify-dev excerpts are above it


def _describe(f: AudioFeatures) -> str:
    """'analysis: 128 BPM, A minor, bright, dense onsets': the features a person would recognise."""
    words = [f"{f.tempo:.0f} BPM" if f.pulse_clarity >= _CLEAR_BEAT else "no clear beat",
             f.key_name if f.key_clarity >= _CLEAR_KEY else "no clear key"]
    if f.brightness >= _BRIGHT:
        words.append("bright")
    elif f.brightness < _DARK:
        words.append("dark")
    if f.loudness_db >= _LOUD_DB:
        words.append("loud")
    elif f.loudness_db < _QUIET_DB:
        words.append("quiet")
    if f.onset_rate >= _DENSE:
        words.append("dense onsets")
    elif f.onset_rate < _SPARSE:
        words.append("sparse onsets")
    return "analysis: " + ", ".join(words)


TOP_TAGS_NAMED = 3  # tags named in the explanation ("mellow, acoustic, chill")


def tag_words(tags: Mapping[str, float], n: int = TOP_TAGS_NAMED) -> list[str]:
    """The `n` most probable tags, lower case, most probable first."""
    return [t.lower() for t, _ in sorted(tags.items(), key=lambda kv: -kv[1])[:n]]


def estimate_mood(features: AudioFeatures, tags: Mapping[str, float] | None = None,
                  head: TagHead | None = None) -> MoodEstimate:
    """Place a track on the plane: with the tagger's tags and a head, the tag head (its detail
    names the top tags first, the way scenes explain a photo); else the features-only model above."""
    if tags and head is not None:
        valence, arousal = head(features.as_dict(), tags)
        named = ", ".join(tag_words(tags))
        detail = _describe(features).replace("analysis: ", f"analysis: {named}; ", 1)
    else:
        valence, arousal = predict(features.as_dict())
        detail = _describe(features)
    from frame_daemon.music.audio.decode import EXCERPT_S  # soundfile: only where audio is decoded

    confidence = CONFIDENCE * min(1.0, features.seconds / EXCERPT_S) ** 0.5
    return MoodEstimate(MoodSource.ANALYSIS, Mood.clipped(valence, arousal, confidence), detail)
