#!/usr/bin/env python3
"""Other forms of the music valence head, each judged by nested CV against audio-3's form.

scripts/calibrate_music_mood.py ships the valence head "audio-3": a ridge on the 14 valence features
and the 50 tag logits, averaged with a Gaussian-kernel ridge on the same inputs (form B below). Its
plain figure is the best of a grid; this script redoes each form's strength choice inside every
outer training set (inner folds, seeds INNER_SEEDS) and judges it on the outer fold, on the same
outer folds for every form, so the forms compare paired, seed by seed. Each form was declared before
its figure was seen:

- B:  audio-3's form (the baseline);
- E1: B + one data-free input: the probability-weighted valence centroid of the 10 MSD mood tags at
      their fixed places on the plane (NRC-VAD via the project's lexicon; nothing fitted);
- E2: partial least squares (1-3 components) on the same inputs instead of the ridge; E2b: E2
      averaged with B's kernel term;
- E3: B with the tag logits standardised within each excerpt (its relative tag profile);
- E4: B fitted on one row per 3 s patch (that patch's tag logits, the excerpt's features and
      label), its predictions averaged over the excerpt's patches; folds never split an excerpt;
- E5: B's predictions averaged over its whole strength grid (nothing chosen, so its plain figure is
      its nested one).

Declared after E1-E5's figures (combinations of those that gained, so they carry that selection):

- E6: E1's form averaged over its grid; E7: E2b's grid averaged;
- E8: B with each training excerpt weighted by its target's reliability, n / (n + 13) for n
      listeners (11-59 on emotify-dev; 13 from the targets' panel reliability, not fitted);
- E9: E8 averaged over its grid.

Declared after E1-E9's figures:

- E10: B with the kernel's distances on the tag-weighted inputs (the tags scaled by the ridge's tag
       weight); E11: E10 averaged over its grid;
- E12: B on the logits of only the tags the lexicon places (moods and genres; eras, voices and
       instruments dropped, a choice made without the data); E13: E12 averaged over its grid.

    python scripts/explore_music_inputs.py --data EMOTIFY_DIR --extract /tmp/emotify-patches.npz
    python scripts/explore_music_heads.py --data EMOTIFY_DIR --cache /tmp/emotify-patches.npz \\
        --lexicon NRC-VAD-Lexicon-v1.txt
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
import calibrate_music_mood as cal  # noqa: E402

# A form: its strength grid, and a function giving each strength's predictions of `test` from a
# fit on `train` (excerpt indices).
Predict = Callable[[list[tuple], np.ndarray, np.ndarray], dict[tuple, np.ndarray]]
MOOD_TAGS = ("beautiful", "chillout", "Mellow", "chill", "party", "easy listening", "sexy", "catchy",
             "sad", "happy")


def pooled(predict: Predict, grid: list[tuple], n: int, folds, rows=None) -> dict[tuple, np.ndarray]:
    rows = np.arange(n) if rows is None else rows
    out: dict[tuple, np.ndarray] = {}
    for test in folds:
        for hp, p in predict(grid, np.setdiff1d(rows, test), test).items():
            out.setdefault(hp, np.zeros(n))[test] = p
    return out


def choose(predict: Predict, grid, y, fold_sets, rows=None) -> tuple[tuple, dict[tuple, list[float]]]:
    scores: dict[tuple, list[float]] = {}
    for folds in fold_sets:
        for hp, p in pooled(predict, grid, len(y), folds, rows).items():
            scores.setdefault(hp, []).append(cal.r_of(p, y, rows))
    return max(scores, key=lambda hp: np.mean(scores[hp])), scores


def nested(predict: Predict, grid, y, outer_sets, genre) -> list[float]:
    rs = []
    for folds in outer_sets:
        out = np.zeros(len(y))
        for test in folds:
            train = np.setdiff1d(np.arange(len(y)), test)
            if len(grid) == 1:
                pick = grid[0]
            else:
                inner = [[train[f] for f in cal.grouped_folds(np.arange(len(train)), genre[train],
                                                                cal.FOLDS, s)]
                         for s in cal.INNER_SEEDS]
                pick, _ = choose(predict, grid, y, inner, train)
            out[test] = predict([pick], train, test)[pick]
        rs.append(cal.r_of(out, y))
    return rs


# --- the forms ------------------------------------------------------------------------------------

def blend_grid(cname: str) -> list[tuple]:
    return [("blend", cname, a, lam, w, kl) for a in cal.TAG_WEIGHTS for lam in cal.LAMBDAS
            for w in cal.KERNEL_WIDTHS for kl in cal.KERNEL_LAMBDAS]


def table_form(table: dict[str, np.ndarray], cols: list[str], n_features: int, y) -> tuple[Predict, list]:
    """A form of calibrate_music_mood's linear + kernel head on the columns `cols` of `table`."""
    cands = {"form": (cols, n_features)}

    def predict(grid, train, test):
        return cal.predict_all(grid, table, cands, y, train, test)
    return predict, blend_grid("form")


def bagged(predict: Predict, grid: list[tuple]) -> tuple[Predict, list]:
    def bag(_grid, train, test):
        return {("bag",): np.mean(list(predict(grid, train, test).values()), axis=0)}
    return bag, [("bag",)]


def pls1(x: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """PLS1 (NIPALS) coefficients of centred y on centred x, k components."""
    x, y = x.copy(), y.copy()
    ws, ps, qs = [], [], []
    for _ in range(k):
        w = x.T @ y
        w /= max(np.linalg.norm(w), 1e-12)
        t = x @ w
        tt = max(float(t @ t), 1e-12)
        p, q = x.T @ t / tt, float(y @ t) / tt
        x -= np.outer(t, p)
        y = y - q * t
        ws.append(w), ps.append(p), qs.append(q)
    w_, p_ = np.array(ws).T, np.array(ps).T
    return w_ @ np.linalg.solve(p_.T @ w_, np.array(qs))


def pls_form(x: np.ndarray, n_features: int, y, kernel: bool) -> tuple[Predict, list]:
    comps = (1, 2, 3)
    grid = [("pls", a, k) for a in cal.TAG_WEIGHTS for k in comps]
    if kernel:
        grid = [(*g, w, kl) for g in grid for w in cal.KERNEL_WIDTHS for kl in cal.KERNEL_LAMBDAS]

    def predict(grid_, train, test):
        _, _, z = cal.standardize(x, train)
        out, lin, ker = {}, {}, {}
        for hp in grid_:
            a, k = hp[1], hp[2]
            if (a, k) not in lin:
                colw = np.r_[np.ones(n_features), np.full(x.shape[1] - n_features, a)]
                zw = z * colw
                mu = zw[train].mean(0)
                coef = pls1(zw[train] - mu, y[train] - y[train].mean(), k)
                lin[(a, k)] = (zw[test] - mu) @ coef
            if not kernel:
                out[hp] = y[train].mean() + lin[(a, k)]
                continue
            w = hp[3]
            if w not in ker:
                width = w * cal.median_sqdist(z[train])
                alphas = cal.kernel_fit(z[train], y[train], width, cal.KERNEL_LAMBDAS)
                ker[w] = [np.exp(-cal.sqdist(z[test], z[train]) / width) @ al for al in alphas]
            out[hp] = y[train].mean() + (lin[(a, k)] + ker[w][cal.KERNEL_LAMBDAS.index(hp[4])]) / 2
        return out
    return predict, grid


def patch_form(feat: np.ndarray, patch_logits: np.ndarray, y) -> tuple[Predict, list]:
    """B on one row per patch: (excerpt's features, the patch's logits) -> excerpt's label."""
    n, m, _ = patch_logits.shape
    xr = np.column_stack([np.repeat(feat, m, axis=0), patch_logits.reshape(n * m, -1)])
    yr = np.repeat(y, m)
    nf = feat.shape[1]
    grid = blend_grid("patches")

    def predict(grid_, train, test):
        tr = (train[:, None] * m + np.arange(m)).ravel()
        te = (test[:, None] * m + np.arange(m)).ravel()
        _, _, z = cal.standardize(xr, tr)
        out, ridge, ker = {}, {}, {}
        for hp in grid_:
            _, _, a, lam, w, kl = hp
            if a not in ridge:
                colw = np.r_[np.ones(nf), np.full(xr.shape[1] - nf, a)]
                ridge[a] = cal.ridge_weights(z[tr], yr[tr], cal.LAMBDAS, colw)
            if w not in ker:
                width = w * cal.median_sqdist(z[tr])
                alphas = cal.kernel_fit(z[tr], yr[tr], width, cal.KERNEL_LAMBDAS)
                ker[w] = [np.exp(-cal.sqdist(z[te], z[tr]) / width) @ al for al in alphas]
            lin = z[te] @ ridge[a][cal.LAMBDAS.index(lam)]
            rows = y[train].mean() + (lin + ker[w][cal.KERNEL_LAMBDAS.index(kl)]) / 2
            out[hp] = rows.reshape(len(test), m).mean(1)
        return out
    return predict, grid


def weighted_form(x: np.ndarray, n_features: int, y, wt: np.ndarray) -> tuple[Predict, list]:
    """B with each training excerpt weighted by `wt` (its target's reliability) in both terms."""
    grid = blend_grid("weighted")

    def predict(grid_, train, test):
        _, _, z = cal.standardize(x, train)
        w = wt[train] / wt[train].mean()
        ym = float(np.average(y[train], weights=w))
        zm = np.average(z[train], axis=0, weights=w)
        zc, yc = z[train] - zm, y[train] - ym
        out, ridge, ker = {}, {}, {}
        for hp in grid_:
            _, _, a, lam, width_f, kl = hp
            if a not in ridge:
                colw = np.r_[np.ones(n_features), np.full(x.shape[1] - n_features, a)]
                sw = np.sqrt(w)[:, None]
                u, sv, vt = np.linalg.svd(sw * zc * colw, full_matrices=False)
                uy = u.T @ (np.sqrt(w) * yc)
                ridge[a] = [colw * (vt.T @ (sv / (sv ** 2 + lm) * uy)) for lm in cal.LAMBDAS]
            if width_f not in ker:
                width = width_f * cal.median_sqdist(z[train])
                k = np.exp(-cal.sqdist(z[train], z[train]) / width)
                kt = np.exp(-cal.sqdist(z[test], z[train]) / width)
                ker[width_f] = [kt @ np.linalg.solve(k + lm * np.diag(1 / w), yc)
                                for lm in cal.KERNEL_LAMBDAS]
            lin = (z[test] - zm) @ ridge[a][cal.LAMBDAS.index(lam)]
            out[hp] = ym + (lin + ker[width_f][cal.KERNEL_LAMBDAS.index(kl)]) / 2
        return out
    return predict, grid


def scaled_kernel_form(x: np.ndarray, n_features: int, y) -> tuple[Predict, list]:
    """B with the kernel's distances on the tag-weighted inputs (tags scaled by the ridge's tag
    weight a), so both terms see the tags at the same weight against the features."""
    grid = blend_grid("scaled kernel")

    def predict(grid_, train, test):
        _, _, z = cal.standardize(x, train)
        out, ridge, ker = {}, {}, {}
        for hp in grid_:
            _, _, a, lam, w, kl = hp
            colw = np.r_[np.ones(n_features), np.full(x.shape[1] - n_features, a)]
            if a not in ridge:
                ridge[a] = cal.ridge_weights(z[train], y[train], cal.LAMBDAS, colw)
            if (a, w) not in ker:
                zs = z * colw
                width = w * cal.median_sqdist(zs[train])
                alphas = cal.kernel_fit(zs[train], y[train], width, cal.KERNEL_LAMBDAS)
                ker[(a, w)] = [np.exp(-cal.sqdist(zs[test], zs[train]) / width) @ al for al in alphas]
            lin = z[test] @ ridge[a][cal.LAMBDAS.index(lam)]
            out[hp] = y[train].mean() + (lin + ker[(a, w)][cal.KERNEL_LAMBDAS.index(kl)]) / 2
        return out
    return predict, grid


def logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--cache", type=Path, required=True, help="explore_music_inputs.py --extract's cache")
    ap.add_argument("--lexicon", type=Path, default=None)
    ap.add_argument("--forms", default="B,E1,E2,E2b,E3,E4,E5,E6,E7,E8,E9,E10,E11,E12,E13")
    ap.add_argument("--blocks", action="store_true",
                    help="outer folds keep runs of 5 consecutive files together (album proxy)")
    args = ap.parse_args()
    from calibrate_audio_model import read_targets
    targets = read_targets(args.data)
    c = np.load(args.cache)
    names = [str(n) for n in c["names"]]
    labels = json.loads(cal.TAGGER_JSON.read_text())["tags"]
    points = cal.tag_points(labels, args.lexicon)
    probs = c["probs"]  # (n, patches, 50)
    features = [json.loads(str(f)) for f in c["features"]]
    table = cal.input_table(features, probs.mean(1), labels, points)
    y = np.array([targets[n][0] for n in names])
    genre = np.array([n.split("/")[1] for n in names])
    everything = np.column_stack([table[k] for k in sorted(table)])
    groups = cal.twin_groups(everything, cal.TWIN_R)
    if args.blocks:  # runs of 5 consecutive files of a genre kept in one fold (album proxy)
        groups = cal.block_groups(names)
    outer = [cal.grouped_folds(groups, genre, cal.FOLDS, s) for s in cal.SEEDS]

    feats = list(cal.FEATURE_INPUTS["valence"])
    logits = [f"logit:{t}" for t in labels]
    # E1: the mood tags' valence centroid, data-free
    mood_pts = np.array([points[t][0] for t in MOOD_TAGS])
    pm = probs.mean(1)[:, [labels.index(t) for t in MOOD_TAGS]]
    table["lexicon_valence"] = (pm @ mood_pts) / pm.sum(1)
    # E3: the relative tag profile
    lg = np.column_stack([table[k] for k in logits])
    rel = (lg - lg.mean(1, keepdims=True)) / lg.std(1, keepdims=True)
    for j, t in enumerate(labels):
        table[f"rel:{t}"] = rel[:, j]
    xf = np.column_stack([table[k] for k in feats])

    base = table_form(table, feats + logits, len(feats), y)
    e1 = table_form(table, [*feats, "lexicon_valence", *logits], len(feats) + 1, y)
    e2b = pls_form(np.column_stack([xf, lg]), len(feats), y, kernel=True)
    # Reliability of each excerpt's target: n / (n + n0), n0 = 46 (1 - 0.78) / 0.78 from the valence
    # targets' panel reliability 0.78 at the median panel of 46 listeners.
    n_listeners = cal.listeners(args.data, names)
    e8 = weighted_form(np.column_stack([xf, lg]), len(feats), y, n_listeners / (n_listeners + 13.0))
    e10 = scaled_kernel_form(np.column_stack([xf, lg]), len(feats), y)
    e12 = table_form(table, feats + [f"logit:{t}" for t in labels if t in points], len(feats), y)
    forms: dict[str, tuple[str, tuple[Predict, list]]] = {
        "B": ("audio-3's form: features + tag logits, ridge + kernel", base),
        "E1": ("B + the mood tags' lexicon valence (one input, not fitted)", e1),
        "E2": ("PLS, 1-3 components, features + tag logits",
               pls_form(np.column_stack([xf, lg]), len(feats), y, kernel=False)),
        "E2b": ("E2 averaged with B's kernel term", e2b),
        "E3": ("B on the relative tag profile (logits standardised within each excerpt)",
               table_form(table, feats + [f"rel:{t}" for t in labels], len(feats), y)),
        "E4": ("B on one row per 3 s patch, predictions averaged per excerpt",
               patch_form(xf, logit(probs), y)),
        "E5": ("B averaged over its whole strength grid (nothing chosen)", bagged(*base)),
        "E6": ("E1 averaged over its whole strength grid", bagged(*e1)),
        "E7": ("E2b averaged over its whole strength grid", bagged(*e2b)),
        "E8": ("B, excerpts weighted by their targets' reliability n / (n + 13)", e8),
        "E9": ("E8 averaged over its whole strength grid", bagged(*e8)),
        "E10": ("B with the kernel's distances on the tag-weighted inputs", e10),
        "E11": ("E10 averaged over its whole strength grid", bagged(*e10)),
        "E12": (f"B on the logits of the {len(points)} tags the lexicon places only", e12),
        "E13": ("E12 averaged over its whole strength grid", bagged(*e12)),
    }
    print(f"{len(names)} excerpts, {probs.shape[1]} patches each; valence; outer folds: repeated "
          f"{'album-proxy (5 consecutive files) ' if args.blocks else ''}"
          f"grouped {cal.FOLDS}-fold CV, seeds {cal.SEEDS.start}-{cal.SEEDS.stop - 1}; inner seeds "
          f"{cal.INNER_SEEDS}; r mean ± sd over the outer seeds")
    alone = np.corrcoef(table["lexicon_valence"], y)[0, 1]
    print(f"lexicon valence of the mood tags alone (no fitting): r {alone:.3f}")
    ref = None
    for key in args.forms.split(","):
        what, (predict, grid) = forms[key]
        pick, scores = choose(predict, grid, y, outer)
        rs = nested(predict, grid, y, outer, genre)
        line = (f"{key:4s} {what:78s} best of {len(grid):3d}: {cal.mean_sd(scores[pick])}; "
                f"nested {cal.mean_sd(rs)}")
        if ref is None:
            ref = rs
        else:
            d = np.subtract(rs, ref)
            line += f"; nested - B {d.mean():+.3f} ± {d.std():.3f}, better in {int((d > 0).sum())}/10"
        print(line + f"  (best: {pick})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
