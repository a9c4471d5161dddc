#!/usr/bin/env python3
"""Heads that mood-v3 does not use, compared on the same grouped folds (the model card's trials).

    python scripts/mood_head_trials.py --emotion6 DATA/emotion6 --oasis DATA/oasis-dev \
        --lexicon DATA/lexicon/NRC-VAD-Lexicon-v1.txt [--work build/train] [--cv-seeds 5]

Reads the backbone features that `train_mood_model.py` cached in --work (run it once first, e.g.
with --cv-only) and prints, for mood-v3's design (Lite1, its pooled blocks and its lexicon prior,
standardised as in training), grouped-CV r per axis, mean +- sd over the seeds, of:
- the linear ridge as shipped (the reference);
- the ridge with Emotion6's valence labels scaled (Emotion6 rates on another scale than OASIS);
- kernel ridge with an RBF kernel on the same standardised design: a nonlinear head on the same
  features, to see how much a head alone can still give;
- the mean of the two (the linear ridge as shipped and the best kernel ridge), per axis.
Each row is the best mean over its own small grid, so it is a little optimistic, like any choice.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
import train_mood_model as tm  # noqa: E402
from build_music_tables import read_lexicon  # noqa: E402
from mood_training import (  # noqa: E402
    GroupedRidgeCV,
    class_va_table,
    emotion6_split,
    pearson,
    read_emotion6,
    read_oasis,
    repeated_grouped_folds,
)

RBF_GAMMAS = (0.35, 0.5)  # per feature: exp(-gamma * mean squared difference)
RBF_LAMBDAS = (0.3, 1.0)
RBF_WEIGHTS = (0.1,)
LABEL_SCALES = (1.0, 0.75)


@dataclass
class TrialDesign:
    """mood-v3's design (pooled features and the lexicon prior) for OASIS-dev and Emotion6's
    training split, from the features train_mood_model.py caches, with the standardisation its
    ridge uses (column gains included)."""

    oasis: list
    e6_train: list
    net: Any
    size: int
    x_oa: np.ndarray
    y_oa: np.ndarray
    x_tr: np.ndarray  # (photos, views, columns): Emotion6 as extracted
    y_tr: np.ndarray
    mu: np.ndarray
    sd: np.ndarray

    @classmethod
    def load(cls, emotion6: Path, oasis_dir: Path, lexicon: Path, work: Path, seed: int
             ) -> TrialDesign:
        e6_train, _ = emotion6_split(read_emotion6(emotion6), 0.2, seed)
        oasis = read_oasis(oasis_dir)
        net = tm.load_backbone(tm.BACKBONE)
        size = tm.BACKBONES[tm.BACKBONE][0]
        f_tr, l_tr = tm.extract(net, e6_train, work / f"all-{tm.BACKBONE}-emotion6-train-centre.npz",
                                size, mirror=False)
        f_oa, l_oa = tm.extract(net, oasis, work / f"all-{tm.BACKBONE}-oasis.npz", size)
        class_va = class_va_table(read_lexicon(lexicon), tm.imagenet_class_names())[0]
        columns = tm.feature_columns(net, tm.POOLED_BLOCKS)

        def design(feat: np.ndarray, logits: np.ndarray) -> np.ndarray:
            return np.concatenate([feat[..., columns], tm.softmax(logits) @ class_va], axis=-1)

        x_oa, x_tr = design(f_oa, l_oa), design(f_tr, l_tr)
        flat = x_tr.reshape(-1, x_tr.shape[-1])
        sd = (flat.std(0) + 1e-6) / tm.column_gains(net, tm.POOLED_BLOCKS, tm.PRIOR_GAIN, 0.0)
        return cls(oasis, e6_train, net, size, x_oa, np.stack([r.va for r in oasis]), x_tr,
                   np.stack([r.va for r in e6_train]), flat.mean(0), sd)


def rbf_oof(z_oa: np.ndarray, y_oa: np.ndarray, z_e6: np.ndarray, y_e6: np.ndarray,
            fold: np.ndarray, gamma: float, lam: float, w: float) -> np.ndarray:
    """Out-of-fold (valence, arousal) of weighted kernel ridge: both views of each OASIS photo
    outside the fold at weight 1, Emotion6's training split at w; the centre view predicted."""
    views = z_oa.shape[1]
    z = np.r_[z_oa.reshape(-1, z_oa.shape[-1]), z_e6]
    y = np.r_[np.repeat(y_oa, views, 0), y_e6]
    sq = (z ** 2).sum(1)
    kernel = np.exp(-gamma * np.maximum(sq[:, None] + sq[None] - 2 * z @ z.T, 0) / z.shape[1])
    photo_fold = np.r_[np.repeat(fold, views), np.full(len(z_e6), -1)]
    weight = np.r_[np.ones(len(y_oa) * views), np.full(len(z_e6), w)]
    pred = np.zeros_like(y_oa)
    for k in np.unique(fold):
        train, test = photo_fold != k, np.flatnonzero(photo_fold == k)[::views]
        mean = (y[train] * weight[train, None]).sum(0) / weight[train].sum()
        alpha = np.linalg.solve(kernel[np.ix_(train, train)] + lam * np.diag(1 / weight[train]),
                                y[train] - mean)
        pred[test // views] = kernel[np.ix_(test, np.flatnonzero(train))] @ alpha + mean
    return pred


def best(rs: np.ndarray, labels: list[str]) -> list[str]:
    """rs (setting, seed, axis): per axis, the setting with the best mean r, as text."""
    out = []
    for axis in range(2):
        i = int(np.argmax(rs[:, :, axis].mean(1)))
        out.append(f"{rs[i, :, axis].mean():.3f} ± {rs[i, :, axis].std():.3f} ({labels[i]})")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--emotion6", type=Path, required=True)
    ap.add_argument("--oasis", type=Path, required=True)
    ap.add_argument("--lexicon", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=ROOT / "build/train",
                    help="where train_mood_model.py cached the features")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--cv-seeds", type=int, default=tm.CV_SEEDS)
    args = ap.parse_args()
    d = TrialDesign.load(args.emotion6, args.oasis, args.lexicon, args.work, args.seed)
    oasis, x_oa, y_oa, x_tr, y_tr, mu, sd = d.oasis, d.x_oa, d.y_oa, d.x_tr, d.y_tr, d.mu, d.sd
    folds = repeated_grouped_folds([r.theme for r in oasis], tm.FOLDS,
                                   [args.seed + i for i in range(args.cv_seeds)])
    print(f"OASIS-dev, {tm.FOLDS} folds grouped by theme, mean ± sd over {len(folds)} seeds; "
          f"mood-v3's design ({tm.BACKBONE}, blocks {tm.POOLED_BLOCKS}, prior gain {tm.PRIOR_GAIN:g}), "
          "before faces:", flush=True)

    def ridge(y6: np.ndarray) -> tuple[np.ndarray, list[str], np.ndarray]:
        cv = GroupedRidgeCV(x_oa, y_oa, x_tr, y6, mu, sd)
        preds = cv.oof(folds, tm.RIDGE_LAMBDAS, tm.EMOTION6_WEIGHTS)
        preds = preds.reshape(len(folds), -1, *y_oa.shape).transpose(1, 0, 2, 3)  # setting, seed
        rs = np.array([[[pearson(p[:, a], y_oa[:, a]) for a in range(2)] for p in setting]
                       for setting in preds])
        labels = [f"λ {lam:g}, Emotion6 weight {w:g}" for lam in tm.RIDGE_LAMBDAS
                  for w in tm.EMOTION6_WEIGHTS]
        return rs, labels, preds

    linear = None
    for scale in LABEL_SCALES:
        y6 = y_tr.copy()
        y6[:, 0] *= scale
        rs, labels, preds = ridge(y6)
        linear = linear or (rs, preds)
        v, a = best(rs, labels)
        print(f"  ridge, Emotion6 valence labels × {scale:g}: valence r {v}; arousal r {a}", flush=True)

    z_oa, z_tr = (x_oa - mu) / sd, (x_tr[:, 0] - mu) / sd
    rs, labels, kernel_preds = [], [], []
    for gamma in RBF_GAMMAS:
        for lam in RBF_LAMBDAS:
            for w in RBF_WEIGHTS:
                preds = [rbf_oof(z_oa, y_oa, z_tr, y_tr, f, gamma, lam, w) for f in folds]
                kernel_preds.append(preds)
                rs.append([[pearson(p[:, a], y_oa[:, a]) for a in range(2)] for p in preds])
                labels.append(f"γ {gamma:g}, λ {lam:g}, Emotion6 weight {w:g}")
                tm.log(f"  RBF {labels[-1]}: valence {np.mean(rs[-1], 0)[0]:.3f}, "
                       f"arousal {np.mean(rs[-1], 0)[1]:.3f}")
    v, a = best(np.array(rs), labels)
    print(f"  RBF kernel ridge: valence r {v}; arousal r {a}", flush=True)
    mean_rs = []
    for axis in range(2):  # each head's best setting on this axis, averaged photo by photo
        lin = linear[1][int(np.argmax(linear[0][:, :, axis].mean(1)))]
        ker = kernel_preds[int(np.argmax(np.array(rs)[:, :, axis].mean(1)))]
        mean_rs.append([pearson((p + q)[:, axis], y_oa[:, axis]) for p, q in zip(lin, ker, strict=True)])
    print("  mean of ridge and RBF kernel ridge: " + "; ".join(
        f"{name} r {np.mean(r):.3f} ± {np.std(r):.3f}" for name, r in zip(("valence", "arousal"), mean_rs,
                                                                           strict=True)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
