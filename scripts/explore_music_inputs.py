#!/usr/bin/env python3
"""What else the music tagger offers the valence head: the inputs tried, and why they did not ship.

scripts/calibrate_music_mood.py chooses among the inputs that ship (features, tag probabilities or
logits pooled by their mean, the lexicon prior, a kernel term). This script measures the others on
the same 100 Emotify development excerpts and the same repeated, seeded, grouped 5-fold CV:

- tags pooled over the patches by mean, max and standard deviation (probabilities and logits);
- the tagger's penultimate layer (200 values per patch after its ReLU, read from the shipped model
  through LiteRT's experimental_preserve_all_tensors: no re-conversion is needed to measure it);
- the lexicon prior as a shrinkage target of the tag weights (ridge towards the prior, not zero);
- predicting the nine GEMS emotion shares and placing their centroid (the targets' own form);
- how reliable the targets are (split halves of each excerpt's listeners): the ceiling on r.

    python scripts/explore_music_inputs.py --data EMOTIFY_DIR --extract /tmp/emotify-patches.npz
    python scripts/explore_music_inputs.py --data EMOTIFY_DIR --cache /tmp/emotify-patches.npz \\
        --lexicon NRC-VAD-Lexicon-v1.txt

Each input set is shown at its best tag weight and λ (the figures are a little optimistic, as every
"best of a grid" is); the features get weight 1 and the other inputs a group weight (their penalty
is λ / weight^2), as in calibrate_music_mood.py.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
import calibrate_music_mood as cal  # noqa: E402

from frame_daemon.music.audio import mood as audio_model  # noqa: E402

PATCHES = 3  # as the analysis reads a track
# The dense layer before the tags (200 values after its ReLU). Found by shape and op, not by the
# full fused name: the converter numbers the fused ops, and a re-conversion renumbers them.
EMBEDDING_OP, EMBEDDING_SHAPE = "Relu", [1, 200]


def extract(data: Path, names: list[str], out: Path) -> None:
    from ai_edge_litert.interpreter import Interpreter

    from frame_daemon.music.audio import tagger as rt
    from frame_daemon.music.audio.decode import ANALYSIS_RATE, decode_excerpt_at
    from frame_daemon.music.audio.features import analyse_samples
    it = Interpreter(str(ROOT / "models/music-tagger-msd.tflite"), num_threads=1,
                     experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    found = [d["index"] for d in it.get_tensor_details()
             if EMBEDDING_OP in d["name"] and list(d["shape"]) == EMBEDDING_SHAPE]
    if len(found) != 1:
        sys.exit(f"explore_music_inputs: {len(found)} tensors look like the tagger's embedding "
                 f"({EMBEDDING_SHAPE}, after a {EMBEDDING_OP}); expected one")
    emb = found[0]
    inp, outp = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    feats, probs, embs = [], [], []
    for i, name in enumerate(names, 1):
        s11, s16 = decode_excerpt_at(data / name, (ANALYSIS_RATE, rt.SAMPLE_RATE))
        feats.append(json.dumps(analyse_samples(s11, ANALYSIS_RATE).as_dict()))
        p, e = [], []
        for s in rt.patch_starts(1 + len(s16) // rt.HOP, PATCHES):
            it.set_tensor(inp, rt.log_mel(s16, s, rt.PATCH_FRAMES)[None])
            it.invoke()
            p.append(it.get_tensor(outp)[0].copy())
            e.append(it.get_tensor(emb)[0].copy())
        probs.append(p)
        embs.append(e)
        print(f"{i}/{len(names)} {name}", file=sys.stderr, flush=True)
    np.savez(out, names=np.array(names), features=np.array(feats), probs=np.array(probs),
             embeddings=np.array(embs))


def logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


def cv_best(x_feat: np.ndarray, x_other: np.ndarray | None, y: np.ndarray, fold_sets,
            w0=None) -> tuple[float, float, str]:
    """Best (mean over seeds) pooled out-of-fold r over tag weights and λ; w0(train, z, colw): a
    shrinkage target in z units (ridge towards it)."""
    x = x_feat if x_other is None else np.column_stack([x_feat, x_other])
    n_other = 0 if x_other is None else x_other.shape[1]
    best = (-1.0, 0.0, "")
    for a in (cal.TAG_WEIGHTS if n_other else (1.0,)):
        colw = np.r_[np.ones(x_feat.shape[1]), np.full(n_other, a)]
        rs = defaultdict(list)
        for folds in fold_sets:
            pooled = np.zeros((len(cal.LAMBDAS), len(y)))
            for test in folds:
                train = np.setdiff1d(np.arange(len(y)), test)
                _, _, z = cal.standardize(x, train)
                target = np.zeros(x.shape[1]) if w0 is None else w0(train, z, y)
                resid = y[train] - z[train] @ target
                for k, w in enumerate(cal.ridge_weights(z[train], resid, cal.LAMBDAS, colw)):
                    pooled[k, test] = y[train].mean() + z[test] @ (w + target)
            for k, lam in enumerate(cal.LAMBDAS):
                rs[(a, lam)].append(cal.r_of(pooled[k], y))
        for (a_, lam), r in rs.items():
            if np.mean(r) > best[0]:
                best = (float(np.mean(r)), float(np.std(r)), f"weight {a_:g}, λ {lam:g}")
    return best


def shares(data: Path, names: list[str]) -> np.ndarray:
    """(excerpts, 9): the share of listeners ticking each GEMS emotion."""
    ticks: dict[str, list[list[int]]] = defaultdict(list)
    with open(data / "annotations.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            ticks[row["file"].strip()].append([int(row[e]) for e in audio_model.GEMS_POINTS])
    return np.array([np.mean(ticks[n], axis=0) for n in names]), ticks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--extract", type=Path)
    ap.add_argument("--cache", type=Path)
    ap.add_argument("--lexicon", type=Path, default=None)
    args = ap.parse_args()
    from calibrate_audio_model import read_targets
    targets = read_targets(args.data)
    if args.extract:
        extract(args.data, sorted(targets), args.extract)
        return 0
    c = np.load(args.cache)
    names = [str(n) for n in c["names"]]
    labels = json.loads(cal.TAGGER_JSON.read_text())["tags"]
    points = cal.tag_points(labels, args.lexicon)
    probs, emb = c["probs"], c["embeddings"]  # (n, patches, 50), (n, patches, 200)
    features = [json.loads(str(f)) for f in c["features"]]
    table = cal.input_table(features, probs.mean(1), labels, points)
    genre = np.array([n.split("/")[1] for n in names])
    fold_sets = [cal.grouped_folds(np.arange(len(names)), genre, cal.FOLDS, s) for s in cal.SEEDS]
    share, ticks = shares(args.data, names)
    gems = np.array(list(audio_model.GEMS_POINTS.values()))
    print(f"{len(names)} excerpts, {probs.shape[1]} patches each; repeated grouped {cal.FOLDS}-fold CV, "
          f"{len(fold_sets)} seeds; pooled out-of-fold r, mean ± sd over seeds\n")
    rng = np.random.default_rng(0)
    for k, axis in enumerate(("valence", "arousal")):
        half = []
        for _ in range(100):
            a, b = [], []
            for n in names:
                t = np.array(ticks[n])[rng.permutation(len(ticks[n]))]
                for part, out in ((t[: len(t) // 2], a), (t[len(t) // 2:], b)):
                    out.append(audio_model.tag_target(dict(zip(audio_model.GEMS_POINTS, part.mean(0),
                                                               strict=True)))[k])
            half.append(np.corrcoef(a, b)[0, 1])
        r = float(np.mean(half))
        rel = 2 * r / (1 + r)
        print(f"{axis} targets: split-half r {r:.2f}, reliability of the full panel {rel:.2f} "
              f"(Spearman-Brown), so no model can pass r ~ {np.sqrt(rel):.2f}")
    lp = logit(probs)
    sets = {
        "tag probabilities, mean": probs.mean(1),
        "tag logits (of the mean probability)": logit(probs.mean(1)),
        "tag probabilities, mean + max + sd": np.column_stack([probs.mean(1), probs.max(1), probs.std(1)]),
        "tag logits, mean + max + sd": np.column_stack([lp.mean(1), lp.max(1), lp.std(1)]),
        "penultimate layer (200), mean": emb.mean(1),
        "penultimate layer, mean + max": np.column_stack([emb.mean(1), emb.max(1)]),
        "tag logits + penultimate layer": np.column_stack([logit(probs.mean(1)), emb.mean(1)]),
    }
    for axis in ("valence", "arousal"):
        y = np.array([targets[n][0 if axis == "valence" else 1] for n in names])
        xf = np.column_stack([table[k] for k in cal.FEATURE_INPUTS[axis]])
        print(f"\n{axis}")
        m, s, how = cv_best(xf, None, y, fold_sets)
        print(f"  {'features alone':52s} {m:.3f} ± {s:.3f}  ({how})")
        for name, x in sets.items():
            m, s, how = cv_best(xf, x, y, fold_sets)
            m0, s0, _ = cv_best(np.empty((len(y), 0)), x, y, fold_sets)
            print(f"  features + {name:41s} {m:.3f} ± {s:.3f}  ({how}); without the features "
                  f"{m0:.3f} ± {s0:.3f}")
        # The lexicon prior as the point the tag weights shrink to: each tag's weight starts at its
        # place on this axis (scaled by one factor fitted in the training fold), not at zero.
        placed = np.array([points[t][0 if axis == "valence" else 1] if t in points else np.nan
                           for t in labels])
        nf = xf.shape[1]

        def towards_prior(train, z, y_, placed=placed, nf=nf):
            raw = np.zeros(z.shape[1])
            ok = ~np.isnan(placed)
            raw[nf:][ok] = placed[ok] - np.nanmean(placed)
            score = z[train] @ raw
            scale = np.dot(score, y_[train] - y_[train].mean()) / max(np.dot(score, score), 1e-9)
            return scale * raw
        m, s, how = cv_best(xf, probs.mean(1), y, fold_sets, w0=towards_prior)
        print(f"  {'features + tag probabilities, shrunk to the prior':52s} {m:.3f} ± {s:.3f}  ({how})")
        m, s, how = cv_best(xf, logit(probs.mean(1)), y, fold_sets, w0=towards_prior)
        print(f"  {'features + tag logits, shrunk to the prior':52s} {m:.3f} ± {s:.3f}  ({how})")
    # The targets' own form: predict each emotion's share, then place their centroid.
    xall = np.column_stack([table[k] for k in sorted(set(cal.FEATURE_INPUTS["valence"])
                                                         | set(cal.FEATURE_INPUTS["arousal"]))]
                           + [logit(probs.mean(1))])
    colw = np.r_[np.ones(xall.shape[1] - 50), np.full(50, 0.5)]
    rv = defaultdict(list)
    for folds in fold_sets:
        pooled = np.zeros((len(cal.LAMBDAS), len(names), 9))
        for test in folds:
            train = np.setdiff1d(np.arange(len(names)), test)
            _, _, z = cal.standardize(xall, train)
            for j in range(9):
                for k, w in enumerate(cal.ridge_weights(z[train], share[train, j], cal.LAMBDAS, colw)):
                    pooled[k, test, j] = share[train, j].mean() + z[test] @ w
        for k, lam in enumerate(cal.LAMBDAS):
            p = np.clip(pooled[k], 0.01, None)
            centroid = (p @ gems) / p.sum(1, keepdims=True)
            rv[lam].append(cal.r_of(centroid[:, 0], np.array([targets[n][0] for n in names])))
    lam = max(rv, key=lambda key: np.mean(rv[key]))
    print(f"\nvalence as the centroid of nine predicted emotion shares (features + tag logits, "
          f"weight 0.5): {np.mean(rv[lam]):.3f} ± {np.std(rv[lam]):.3f} (λ {lam:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
