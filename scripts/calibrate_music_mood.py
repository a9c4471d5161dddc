#!/usr/bin/env python3
"""Calibrate the music mood head (tags + features) on the Emotify development excerpts.

Step 1 (`--extract CACHE`): analyse the 100 excerpts with the code the daemon runs (the features at
11.025 kHz, the musicnn tags at 16 kHz with 10, 5 and 3 patches) and keep, per excerpt, the features,
the three pooled tag vectors and the time each took, in an .npz outside the repository.
Step 2 (default): from that cache, choose the inputs and the ridge strength by repeated, seeded,
grouped 5-fold CV, print mean ± spread over seeds per candidate and the figures of the chosen head for
each patch count, and with --write put the head into models/music-tagger-msd.json.

    python scripts/calibrate_music_mood.py --data EMOTIFY_DIR --extract /tmp/emotify.npz
    python scripts/calibrate_music_mood.py --data EMOTIFY_DIR --cache /tmp/emotify.npz [--write]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from frame_daemon.music.audio import mood as audio_model  # noqa: E402
from frame_daemon.music.audio.decode import decode_excerpt  # noqa: E402
from frame_daemon.music.audio.features import analyse_samples  # noqa: E402
from frame_daemon.music.audio.tagger import SAMPLE_RATE, MusicTagger  # noqa: E402

PATCH_COUNTS = (10, 5, 3)


def extract(data: Path, names: list[str], out: Path) -> None:
    tagger = MusicTagger.load()
    feats: list[str] = []
    tags: dict[int, list[np.ndarray]] = {p: [] for p in PATCH_COUNTS}
    times: dict[str, list[float]] = {k: [] for k in ("features", "decode16", *map(str, PATCH_COUNTS))}
    for i, name in enumerate(names, 1):
        t0 = time.perf_counter()
        samples, rate = decode_excerpt(data / name)
        f = analyse_samples(samples, rate).as_dict()
        t1 = time.perf_counter()
        s16, _ = decode_excerpt(data / name, rate=SAMPLE_RATE)
        t2 = time.perf_counter()
        times["features"].append(t1 - t0)
        times["decode16"].append(t2 - t1)
        for p in PATCH_COUNTS:
            t = time.perf_counter()
            tags[p].append(tagger.tag_vector(s16, p))
            times[str(p)].append(time.perf_counter() - t)
        feats.append(json.dumps(f))
        print(f"{i}/{len(names)} {name}", file=sys.stderr, flush=True)
    np.savez(out, names=np.array(names), features=np.array(feats),
             **{f"tags{p}": np.array(v) for p, v in tags.items()},
             **{f"time_{k}": np.array(v) for k, v in times.items()})


# --- the lexicon prior: each tag placed on the plane, data-free -----------------------------------

def tag_points(labels: list[str], lexicon: Path | None) -> dict[str, tuple[float, float]]:
    """(valence, arousal) of each MSD tag that names a mood or a genre, as the project reads tags.

    A mood tag reads as frame_daemon.music.lexicon reads a file's Mood tag ("heavy metal" is the
    genre, not "heavy"); a genre as its genre prior; a mood word the tables lack ("beautiful",
    "catchy") straight from NRC-VAD (2x - 1). Eras, voices and instruments say nothing of a mood.
    """
    from build_music_tables import read_lexicon

    from frame_daemon.music.lexicon import mood_from_genre, mood_from_tag
    lex = read_lexicon(lexicon) if lexicon else {}
    points = {}
    for tag in labels:
        est = mood_from_tag(tag)
        if est is None or "read as" in est.detail:
            est = mood_from_genre(tag) or est
        if est is not None:
            points[tag] = (round(est.mood.valence, 3), round(est.mood.arousal, 3))
        elif tag.lower() in MOOD_WORDS and tag.lower() in lex:
            points[tag] = tuple(round(x, 3) for x in lex[tag.lower()])
    return points


MOOD_WORDS = ("beautiful", "catchy", "sexy", "happy", "sad", "party", "chill", "mellow")


def prior(tags: np.ndarray, labels: list[str], points: dict[str, tuple[float, float]]) -> np.ndarray:
    """(n, 2): the centroid of the tag points weighted by each tag's probability."""
    idx = [labels.index(t) for t in points]
    pts = np.array([points[t] for t in points])
    w = tags[:, idx]
    return (w @ pts) / np.maximum(w.sum(axis=1, keepdims=True), 1e-6)


# --- grouped, repeated CV ---------------------------------------------------------------------------

def twin_groups(x: np.ndarray, threshold: float) -> np.ndarray:
    """Group ids joining excerpts whose standardized inputs correlate above `threshold` (near-twins:
    two excerpts of one recording, or of one artist's album, sound and tag alike)."""
    z = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1)
    c = np.corrcoef(z)
    parent = list(range(len(x)))
    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i
    for i, j in zip(*np.nonzero(np.triu(c, 1) > threshold), strict=True):
        parent[find(i)] = find(j)
    return np.array([find(i) for i in range(len(x))])


def block_groups(names: list[str], size: int = 5) -> np.ndarray:
    """Group ids of runs of `size` consecutive file numbers within a genre (1-5, 6-10, ...).

    Emotify names no artist or album. If its files were numbered album by album, neighbours would
    share one; on emotify-dev neighbouring files are only a little more alike than others (mean
    correlation of their tagger embeddings 0.35 against 0.31), so these folds are a cautious check of
    the figures, not the folds that choose."""
    keys = [f"{n.split('/')[-2]}/{(int(Path(n).stem) - 1) // size}" for n in names]
    return np.unique(keys, return_inverse=True)[1]


def grouped_folds(groups: np.ndarray, strata: np.ndarray, folds: int, seed: int) -> list[np.ndarray]:
    """Seeded folds that never split a group; groups dealt round-robin within each genre."""
    rng = np.random.default_rng(seed)
    fold_of: dict[int, int] = {}
    offset = int(rng.integers(folds))
    for s in np.unique(strata):
        gs = np.unique(groups[strata == s])
        rng.shuffle(gs)
        for k, g in enumerate(gs):
            fold_of.setdefault(int(g), (k + offset) % folds)
        offset += len(gs)
    f = np.array([fold_of[int(g)] for g in groups])
    return [np.nonzero(f == k)[0] for k in range(folds)]


# --- the two kinds of head term, fitted on a training set and scored on a test set -----------------

def standardize(x: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(means, scales, z of every row, clipped as the runtime clips), from the training rows only."""
    means, scales = x[train].mean(axis=0), x[train].std(axis=0)
    scales[scales == 0] = 1.0
    return means, scales, np.clip((x - means) / scales, -audio_model.CLIP_SD, audio_model.CLIP_SD)


def ridge_weights(z: np.ndarray, y: np.ndarray, lams: tuple[float, ...],
                  colw: np.ndarray) -> list[np.ndarray]:
    """Ridge weights (in z units) for each λ: the penalty on column j is λ / colw[j]^2 (the tags'
    group weight), by one SVD for all λ."""
    u, sv, vt = np.linalg.svd(z * colw, full_matrices=False)
    uy = u.T @ (y - y.mean())
    return [colw * (vt.T @ (sv / (sv ** 2 + lam) * uy)) for lam in lams]


def kernel_fit(z: np.ndarray, y: np.ndarray, width: float, lams: tuple[float, ...]) -> list[np.ndarray]:
    """Kernel ridge alphas for each λ (Gaussian kernel exp(-d^2 / width) on z)."""
    k = np.exp(-sqdist(z, z) / width)
    ev, vec = np.linalg.eigh(k)
    vy = vec.T @ (y - y.mean())
    return [vec @ (vy / (ev + lam)) for lam in lams]


def sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum(0.0, (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T)


def median_sqdist(z: np.ndarray) -> float:
    d = sqdist(z, z)
    return float(np.median(d[np.triu_indices(len(z), 1)]))


# The weighted, averaged form (audio-4's valence head): each training excerpt weighs by its target's
# reliability n / (n + RELIABILITY_N0), n the listeners who rated it (11-59 on emotify-dev), and the
# prediction is the mean over the whole strength grid (every tag weight and λ of the ridge, every
# kernel width and kernel λ), nothing chosen. 13 = 46 (1 - 0.78) / 0.78: the valence targets'
# split-half reliability 0.78 at the median panel of 46 listeners, not fitted.
RELIABILITY_N0 = 13.0
EXCERPT_WEIGHT = "excerpt_weight"  # the table column holding each excerpt's reliability weight


def listeners(data: Path, names: list[str]) -> np.ndarray:
    """How many listeners rated each excerpt (rows of annotations.csv)."""
    import csv
    from collections import Counter
    with open(data / "annotations.csv", newline="", encoding="utf-8") as f:
        count = Counter(row["file"].strip() for row in csv.DictReader(f))
    return np.array([count[n] for n in names], dtype=float)


def averaged_fit(z: np.ndarray, y: np.ndarray, weight: np.ndarray, n_features: int,
                 kernel: bool) -> dict:
    """The weighted ridge (and kernel ridge) fitted at every strength of the grid and averaged:
    the ridge's weight vectors fold into one (their mean), each kernel width's alphas over its
    λs into one vector per width (divided by the number of widths, so the terms simply add).
    Rows of `z` are the training excerpts (and the kernel's centres)."""
    w = weight / weight.mean()
    ym = float(np.average(y, weights=w))
    zm = np.average(z, axis=0, weights=w)
    zc, yc, sw = z - zm, y - ym, np.sqrt(w)
    ridges = []
    for a in TAG_WEIGHTS:
        colw = np.r_[np.ones(n_features), np.full(z.shape[1] - n_features, a)]
        u, sv, vt = np.linalg.svd(sw[:, None] * zc * colw, full_matrices=False)
        uy = u.T @ (sw * yc)
        ridges += [colw * (vt.T @ (sv / (sv ** 2 + lam) * uy)) for lam in LAMBDAS]
    fit = {"ym": ym, "zm": zm, "weights": np.mean(ridges, axis=0), "centres": z, "terms": []}
    if kernel:
        for f in KERNEL_WIDTHS:
            width = f * median_sqdist(z)
            k = np.exp(-sqdist(z, z) / width)
            alphas = [np.linalg.solve(k + lam * np.diag(1 / w), yc) for lam in KERNEL_LAMBDAS]
            fit["terms"].append((width, np.mean(alphas, axis=0) / len(KERNEL_WIDTHS)))
    return fit


def averaged_predict(fit: dict, z: np.ndarray) -> np.ndarray:
    """The averaged form's predictions (intercept + deviation, no gain) for the rows of `z`."""
    linear = (z - fit["zm"]) @ fit["weights"]
    if not fit["terms"]:
        return fit["ym"] + linear
    kern = sum(np.exp(-sqdist(z, fit["centres"]) / width) @ al for width, al in fit["terms"])
    return fit["ym"] + (linear + kern) / 2


LAMBDAS = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
# Group weight of the tag inputs against the features: their penalty is λ / weight^2. The features
# are few, each chosen for a reason, and valence needs them barely shrunk (features alone: best at
# λ 1), while 50 tags need a firm ridge; one λ for both cannot do that.
TAG_WEIGHTS = (0.2, 0.5, 1.0)
# The kernel: widths in units of the median squared distance between training excerpts (so they
# mean the same on any set), and its ridge. λ >= 0.1: below, it reproduces its training targets
# (in-sample r 1.00) and wins CV by a hair.
KERNEL_WIDTHS = (0.25, 0.5, 1.0, 2.0)
KERNEL_LAMBDAS = (0.1, 0.3, 1.0)


def config_grid(axis_candidates: dict[str, tuple[list[str], int]]) -> list[tuple]:
    """Every head configuration: ("linear", candidate, tag weight, λ) and ("blend", candidate, tag
    weight, λ, kernel width, kernel λ) for the candidates that may carry a kernel."""
    grid = []
    for cname, (cols, n_features) in axis_candidates.items():
        weights = TAG_WEIGHTS if len(cols) > n_features else (1.0,)
        grid += [("linear", cname, a, lam) for a in weights for lam in LAMBDAS]
        if cname in KERNEL_CANDIDATES:
            grid += [("blend", cname, a, lam, w, kl) for a in weights for lam in LAMBDAS
                     for w in KERNEL_WIDTHS for kl in KERNEL_LAMBDAS]
    return grid


def predict_all(grid: list[tuple], table: dict[str, np.ndarray], axis_candidates: dict,
                y: np.ndarray, train: np.ndarray, test: np.ndarray) -> dict[tuple, np.ndarray]:
    """Each configuration's predictions for `test` (intercept + deviation, no gain), fitted on `train`."""
    out: dict[tuple, np.ndarray] = {}
    cache: dict[tuple, list[np.ndarray]] = {}
    for cfg in grid:
        cname = cfg[1]
        cols, n_features = axis_candidates[cname]
        if ("z", cname) not in cache:
            cache[("z", cname)] = [standardize(np.column_stack([table[c] for c in cols]), train)[2]]
        z = cache[("z", cname)][0]
        if cfg[0] == "averaged":
            fit = averaged_fit(z[train], y[train], table[EXCERPT_WEIGHT][train], n_features, cfg[2])
            out[cfg] = averaged_predict(fit, z[test])
            continue
        a, lam = cfg[2], cfg[3]
        colw = np.r_[np.ones(n_features), np.full(len(cols) - n_features, a)]
        key = ("ridge", cname, a)
        if key not in cache:
            cache[key] = ridge_weights(z[train], y[train], LAMBDAS, colw)
        linear = z[test] @ cache[key][LAMBDAS.index(lam)]
        if cfg[0] == "linear":
            out[cfg] = y[train].mean() + linear
            continue
        w, kl = cfg[4], cfg[5]
        kkey = ("kernel", cname, w)
        if kkey not in cache:
            width = w * median_sqdist(z[train])
            alphas = kernel_fit(z[train], y[train], width, KERNEL_LAMBDAS)
            cache[kkey] = [np.exp(-sqdist(z[test], z[train]) / width) @ al for al in alphas]
        out[cfg] = y[train].mean() + (linear + cache[kkey][KERNEL_LAMBDAS.index(kl)]) / 2
    return out


def cv_predictions(grid, table, axis_candidates, y, folds, rows=None) -> dict[tuple, np.ndarray]:
    """Pooled out-of-fold predictions of every configuration (over `rows`, all excerpts if None)."""
    rows = np.arange(len(y)) if rows is None else rows
    pooled: dict[tuple, np.ndarray] = {}
    for test in folds:
        train = np.setdiff1d(rows, test)
        for cfg, p in predict_all(grid, table, axis_candidates, y, train, test).items():
            pooled.setdefault(cfg, np.zeros(len(y)))[test] = p
    return pooled


def r_of(pred: np.ndarray, y: np.ndarray, rows: np.ndarray | None = None) -> float:
    rows = np.arange(len(y)) if rows is None else rows
    return float(np.corrcoef(pred[rows], y[rows])[0, 1])


def choose(grid, table, axis_candidates, y, fold_sets, rows=None) -> tuple[tuple, dict[tuple, list[float]]]:
    """The configuration with the best mean r over the fold sets (seeds), and every r."""
    scores: dict[tuple, list[float]] = {}
    for folds in fold_sets:
        for cfg, p in cv_predictions(grid, table, axis_candidates, y, folds, rows).items():
            scores.setdefault(cfg, []).append(r_of(p, y, rows))
    return max(scores, key=lambda c: np.mean(scores[c])), scores


def nested_r(grid, table, axis_candidates, y, outer_sets, inner_seeds, genre) -> list[float]:
    """The whole choice judged from outside: for each outer training set, `choose` runs on it alone
    (its own grouped folds, `inner_seeds`), and its pick predicts the outer test fold."""
    rs = []
    for folds in outer_sets:
        pooled = np.zeros(len(y))
        for test in folds:
            train = np.setdiff1d(np.arange(len(y)), test)
            inner = [[train[f] for f in grouped_folds(np.arange(len(train)), genre[train], FOLDS, s)]
                     for s in inner_seeds]
            pick, _ = choose(grid, table, axis_candidates, y, inner, train)
            pooled[test] = predict_all([pick], table, axis_candidates, y, train, test)[pick]
        rs.append(r_of(pooled, y))
    return rs


def fit_head_axis(cfg: tuple, table, axis_candidates, y: np.ndarray, gain: float) -> dict:
    """The shipped axis: `cfg` fitted on every excerpt, in the form audio/mood.py's LinearAxis reads.

    The gain spreads the predictions about the targets' mean ȳ: ȳ + gain (prediction - ȳ). The
    averaged form's prediction is ym + ((z - zm)·w + kernel) / 2 (ym, zm: the weighted means), so
    its run-time intercept is ȳ + gain (ym - ȳ - zm·w / 2) and the rest is LinearAxis's sum."""
    cname = cfg[1]
    cols, n_features = axis_candidates[cname]
    x = np.column_stack([table[c] for c in cols])
    everything = np.arange(len(y))
    means, scales, z = standardize(x, everything)
    strengths = {} if cfg[0] == "averaged" else {"ridge": cfg[3], "tag_weight": cfg[2]}
    axis = {"inputs": cols, **strengths, "intercept": round(float(y.mean()), 6), "gain": round(gain, 4),
            "means": [float(f"{v:.6g}") for v in means], "scales": [float(f"{v:.6g}") for v in scales]}
    centres = [[round(float(v), 4) for v in row] for row in z]
    if cfg[0] == "averaged":
        fit = averaged_fit(z, y, table[EXCERPT_WEIGHT], n_features, cfg[2])
        half = 0.5 if cfg[2] else 1.0
        axis["intercept"] = round(float(y.mean() + gain * (fit["ym"] - y.mean()
                                                           - half * fit["zm"] @ fit["weights"])), 6)
        axis.update(form=(f"weighted by listener reliability n / (n + {RELIABILITY_N0:g}), averaged "
                          f"over tag weights {list(TAG_WEIGHTS)} x ridge λ {list(LAMBDAS)}"
                          + (f" and kernel widths {list(KERNEL_WIDTHS)} (x the median squared "
                             f"distance) x kernel λ {list(KERNEL_LAMBDAS)}" if cfg[2] else "")),
                    weights=[float(f"{v:.6g}") for v in fit["weights"]])
        if cfg[2]:
            axis["kernel"] = {"centres": centres, "terms": [
                {"width": float(f"{width:.6g}"), "alphas": [float(f"{v:.6g}") for v in al]}
                for width, al in fit["terms"]]}
        return axis
    colw = np.r_[np.ones(n_features), np.full(len(cols) - n_features, cfg[2])]
    axis["weights"] = [float(f"{v:.6g}") for v in ridge_weights(z, y, (cfg[3],), colw)[0]]
    if cfg[0] == "blend":
        width = cfg[4] * median_sqdist(z)
        alphas = kernel_fit(z, y, width, (cfg[5],))[0]
        axis["kernel"] = {"ridge": cfg[5], "centres": centres, "terms": [
            {"width": float(f"{width:.6g}"), "alphas": [float(f"{v:.6g}") for v in alphas]}]}
    return axis


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--extract", type=Path)
    ap.add_argument("--cache", type=Path)
    ap.add_argument("--write", action="store_true", help="write the head into models/music-tagger-msd.json")
    ap.add_argument("--lexicon", type=Path, default=None, help="NRC-VAD lexicon, for tags the tables lack")
    ap.add_argument("--patches", type=int, default=3, choices=PATCH_COUNTS)
    ap.add_argument("--version", default="audio-4")
    ap.add_argument("--oof-moods", type=Path, default=None,
                    help="write the chosen head's out-of-fold moods of the excerpts here (JSON {file "
                         "under audio/: [valence, arousal]}, the first seed's folds), for "
                         "scripts/eval_fit.py --music-moods")
    ap.add_argument("--no-nested", action="store_true", help="skip the nested CV (a minute or two)")
    args = ap.parse_args()
    from calibrate_audio_model import read_targets
    targets = read_targets(args.data)
    if args.extract:
        extract(args.data, sorted(targets), args.extract)
        return 0
    return calibrate(args, targets)


# --- step 2 -------------------------------------------------------------------------------------------

SEEDS = range(10)
INNER_SEEDS = (100, 101)  # the nested CV's inner folds
FOLDS = 5
TWIN_R = 0.95  # standardized inputs this alike are treated as one excerpt's twins
TAGGER_JSON = ROOT / "models/music-tagger-msd.json"
FEATURE_INPUTS = {"valence": audio_model.VALENCE_INPUTS, "arousal": audio_model.AROUSAL_INPUTS}
KERNEL_CANDIDATES = ("features + tag logits",)  # the linear candidate a kernel term may join
# audio-4's valence head: features + tag logits, linear + kernel, weighted and averaged over every
# strength (scripts/explore_music_heads.py's E9; the model card says how it was found).
AVERAGED = {"valence": ("averaged", "features + tag logits", True)}


def input_table(features: list[dict], tags: np.ndarray, labels: list[str],
                points: dict[str, tuple[float, float]]) -> dict[str, np.ndarray]:
    """Every candidate input by name (as audio/mood.py's head_inputs names them), one column each."""
    from frame_daemon.music.audio.mood import head_inputs
    rows = [head_inputs(f, dict(zip(labels, t, strict=True)), points)
            for f, t in zip(features, tags, strict=True)]
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


def candidates(axis: str, labels: list[str]) -> dict[str, tuple[list[str], int]]:
    """Candidate inputs: name -> (columns, how many of them are features; the rest are tag inputs)."""
    feats = list(FEATURE_INPUTS[axis])
    moods = [f"tag:{t}" for t in labels if t.lower() in MOOD_WORDS or t in ("chillout", "easy listening")]
    alltags = [f"tag:{t}" for t in labels]
    logits = [f"logit:{t}" for t in labels]
    pri = ["prior_valence", "prior_arousal"]
    inputs = {"features (audio-1)": feats, "features + prior": feats + pri,
              "features + mood tags": feats + moods, "features + mood tags + prior": feats + moods + pri,
              "features + all tags": feats + alltags, "features + all tags + prior": feats + alltags + pri,
              "features + tag logits": feats + logits, "features + tag logits + prior": feats + logits + pri}
    return {name: (cols, len(feats)) for name, cols in inputs.items()}


def compact_json(value: object) -> str:
    """JSON indented by one, with each list of plain numbers on one line (a kernel's centres are
    100 rows of 64 numbers: one line each, not 6,400 lines)."""
    text = json.dumps(value, indent=1)
    return re.sub(r"\[\s*(-?[0-9][-+0-9.eE]*(?:,\s*-?[0-9][-+0-9.eE]*)*)\s*\]",
                  lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text)


def describe(cfg: tuple) -> str:
    if cfg[0] == "averaged":
        return (f"{cfg[1]}, weighted by reliability, averaged over every strength"
                + (" (+ kernel, every width)" if cfg[2] else ""))
    head = f"{cfg[1]}, tag weight {cfg[2]:g}, λ {cfg[3]:g}"
    return head if cfg[0] == "linear" else f"{head}, + kernel (width {cfg[4]:g}, λ {cfg[5]:g})"


def mean_sd(rs: list[float]) -> str:
    return f"{np.mean(rs):.3f} ± {np.std(rs):.3f}"


def calibrate(args: argparse.Namespace, targets: dict[str, tuple[float, float]]) -> int:
    cache = np.load(args.cache)
    names = [str(n) for n in cache["names"]]
    features = [json.loads(str(f)) for f in cache["features"]]
    labels = json.loads(TAGGER_JSON.read_text())["tags"]
    points = tag_points(labels, args.lexicon)
    genre = np.array([n.split("/")[1] for n in names])
    y = {"valence": np.array([targets[n][0] for n in names]),
         "arousal": np.array([targets[n][1] for n in names])}
    print(f"{len(names)} excerpts; {len(points)} of {len(labels)} tags placed on the plane "
          f"(lexicon prior); targets: valence sd {y['valence'].std():.2f}, "
          f"arousal sd {y['arousal'].std():.2f}")
    table = {p: input_table(features, cache[f"tags{p}"], labels, points) for p in PATCH_COUNTS}
    t = table[args.patches]
    everything = np.column_stack([t[k] for k in sorted(t)])
    groups = twin_groups(everything, TWIN_R)
    sizes = np.bincount(np.unique(groups, return_inverse=True)[1])
    print(f"near-twin groups (inputs correlating > {TWIN_R}): {int((sizes > 1).sum())} groups of "
          f"{int(sizes[sizes > 1].sum())} excerpts, kept within one fold")
    n_listeners = listeners(args.data, names)
    for tp in table.values():  # each excerpt's weight in the averaged form (not an input)
        tp[EXCERPT_WEIGHT] = n_listeners / (n_listeners + RELIABILITY_N0)
    print(f"listeners per excerpt {n_listeners.min():.0f}-{n_listeners.max():.0f} (median "
          f"{np.median(n_listeners):.0f}): reliability weights n / (n + {RELIABILITY_N0:g})")
    fold_sets = [grouped_folds(groups, genre, FOLDS, s) for s in SEEDS]
    block_sets = [grouped_folds(block_groups(names), genre, FOLDS, s) for s in SEEDS]
    logo = [[np.nonzero(genre == g)[0] for g in np.unique(genre)]]
    print(f"\nrepeated grouped {FOLDS}-fold CV, {len(fold_sets)} seeds, {args.patches} patches; "
          "pooled out-of-fold r, mean ± sd over seeds; each candidate at its best tag weight and λ")
    for axis in ("valence", "arousal"):
        pr = np.corrcoef(t[f"prior_{axis}"], y[axis])[0, 1]
        print(f"  {axis}: lexicon prior alone (no fitting): r = {pr:.3f}")
    head: dict = {"version": args.version, "tag_points": points, "patches": args.patches}
    figs, oof = [], {}
    for axis in ("valence", "arousal"):
        cands = candidates(axis, labels)
        grid = config_grid(cands)
        pick, scores = choose(grid, t, cands, y[axis], fold_sets)
        print(f"\n{axis} ({len(grid)} configurations)")
        for cname in cands:
            for kind in ("linear", "blend"):
                mine = [c for c in scores if c[1] == cname and c[0] == kind]
                if mine:
                    best = max(mine, key=lambda c: np.mean(scores[c]))
                    print(f"  {describe(best):78s} {mean_sd(scores[best])}")
        linear_only = max((c for c in scores if c[0] == "linear"), key=lambda c: np.mean(scores[c]))
        print(f"  best of the grid: {describe(pick)}: r {mean_sd(scores[pick])}")
        if pick != linear_only:
            diff = np.subtract(scores[pick], scores[linear_only])
            print(f"    against the best linear head ({describe(linear_only)}): {diff.mean():+.3f} ± "
                  f"{diff.std():.3f}, better with {int((diff > 0).sum())} of {len(diff)} seeds")
        # The averaged form: the best form's fits over its whole strength grid, excerpts weighted by
        # their targets' reliability; nothing is chosen, so its CV figure is its nested figure.
        averaged = AVERAGED.get(axis, ("averaged", pick[1], pick[0] == "blend"))
        avg_rs = choose([averaged], t, cands, y[axis], fold_sets)[1][averaged]
        diff = np.subtract(avg_rs, scores[pick])
        print(f"  {describe(averaged)}: r {mean_sd(avg_rs)} (nothing chosen: also its nested figure); "
              f"against the best of the grid {diff.mean():+.3f} ± {diff.std():.3f}")
        # valence: audio-4's form, declared; arousal: the averaged form only where it is as good
        ship = averaged if axis in AVERAGED or np.mean(avg_rs) >= np.mean(scores[pick]) else pick
        rs = avg_rs if ship == averaged else scores[pick]
        print(f"  shipped: {describe(ship)}: r {mean_sd(rs)}")
        blocks = {c: choose([c], t, cands, y[axis], block_sets)[1][c] for c in {pick, ship}}
        lo = choose([ship], t, cands, y[axis], logo)[1][ship]
        print(f"    folds of 5 consecutive files (album proxy): r {mean_sd(blocks[ship])}"
              + (f" (the best of the grid, its strengths chosen on all {len(names)}: "
                 f"{mean_sd(blocks[pick])})" if ship != pick else "")
              + f"; leave-one-genre-out: r {lo[0]:.3f}")
        if not args.no_nested:
            # Nested figures: the whole search (every input set, linear or with a kernel, all
            # strengths) and the best form with only its strengths chosen inside. On 80 excerpts
            # the first pays for picking among 406 configurations; the second does not count
            # that the form itself was found on this data.
            form = [c for c in grid if c[:2] == pick[:2]]
            runs = [("the whole search", grid), (f"the best form, {len(form)} strengths", form)]
            if pick != linear_only:  # and the best linear form the same way, to compare
                lin = [c for c in grid if c[:2] == linear_only[:2]]
                runs.append((f"the best linear form, {len(lin)} strengths", lin))
            for what, g in runs:
                nested = nested_r(g, t, cands, y[axis], fold_sets, INNER_SEEDS, genre)
                line = (f"    nested, {what} redone inside each outer training set (inner folds, "
                        f"seeds {INNER_SEEDS}): r {mean_sd(nested)}")
                if ship == averaged:
                    d = np.subtract(rs, nested)
                    line += (f"; the averaged form {d.mean():+.3f} ± {d.std():.3f}, better with "
                             f"{int((d > 0).sum())} of {len(d)} seeds")
                print(line)
            if ship == averaged:  # and on the album-proxy folds, against the best form's nested figure
                nb = nested_r(form, t, cands, y[axis], block_sets, INNER_SEEDS, genre)
                d = np.subtract(blocks[ship], nb)
                print(f"    album-proxy folds: nested, the best form: r {mean_sd(nb)}; the averaged form "
                      f"{d.mean():+.3f} ± {d.std():.3f}, better with {int((d > 0).sum())} of {len(d)} seeds")
        # Spread: predictions of excerpts the fit never saw, stretched to the targets' spread (an
        # in-sample gain would be too small for a head with a kernel: it nearly reproduces the
        # excerpts it was fitted on).
        preds = [cv_predictions([ship], t, cands, y[axis], f)[ship] for f in fold_sets]
        gain = float(np.mean([y[axis].std() / p.std() for p in preds]))
        # The first seed's folds, as one honest reading (a mean over seeds would be a bagged
        # ensemble, a little better than the head that ships).
        oof[axis] = y[axis].mean() + gain * (preds[0] - y[axis].mean())
        print(f"    gain {gain:.2f} (targets' sd over the out-of-fold predictions' sd)")
        for p in PATCH_COUNTS:
            if p != args.patches:
                rp = choose([ship], table[p], cands, y[axis], fold_sets)[1][ship]
                print(f"    tags from {p} patches: r {mean_sd(rp)}")
        head[axis] = fit_head_axis(ship, t, cands, y[axis], gain)
        figs.append(f"{axis} r = {np.mean(rs):.2f} ± {np.std(rs):.2f}")
        weights = head[axis]["weights"]
        print("    largest linear weights per SD: " + ", ".join(
            f"{c} {w:+.4f}" for c, w in sorted(zip(head[axis]["inputs"], weights, strict=True),
                                             key=lambda cw: -abs(cw[1]))[:6]))
    for p in PATCH_COUNTS:
        ms = 1000 * np.median(cache[f"time_{p}"])
        print(f"  {p:2d} patches: tagger {ms:.0f} ms/track median (+ 16 kHz decode "
              f"{1000 * np.median(cache['time_decode16']):.0f} ms, features "
              f"{1000 * np.median(cache['time_features']):.0f} ms)")
    head["calibration"] = (f"emotify-dev, {len(names)} excerpts; repeated grouped {FOLDS}-fold CV "
                           f"({len(fold_sets)} seeds, {args.patches} patches): " + ", ".join(figs))
    print("\n" + head["calibration"])
    if args.oof_moods:
        moods = {n.removeprefix("audio/"): [round(float(oof[axis][i]), 4) for axis in ("valence", "arousal")]
                 for i, n in enumerate(names)}
        args.oof_moods.write_text(json.dumps(moods, indent=0) + "\n")
        print(f"wrote the out-of-fold moods of {len(moods)} excerpts to {args.oof_moods}")
    if args.write:
        meta = json.loads(TAGGER_JSON.read_text())
        meta["mood_head"] = head
        TAGGER_JSON.write_text(compact_json(meta) + "\n")
        print(f"wrote the head into {TAGGER_JSON.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
