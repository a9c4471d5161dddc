"""Pieces of the mood model's training that need no deep-learning framework: data, fits, figures.

`train_mood_model.py` does the network work (features, export); this module reads the rating
files, fits the linear parts by cross-validation and computes every figure the model card
quotes, so `tests/test_model_figures.py` recomputes them the same way from the shipped model.
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

EMOTIONS = ["anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral"]
OASIS_CATEGORIES = ("Person", "Animal", "Object", "Scenery")


@dataclass(frozen=True)
class Rated:
    """One photo with its human ratings on the [-1, 1] plane."""

    path: Path
    va: np.ndarray  # (2,)
    group: str  # Emotion6 keyword or OASIS category
    emotion: np.ndarray | None = None  # Emotion6's 7-way distribution
    theme: str = ""  # OASIS theme group ("Dog" for "Dog 3"): photos of one theme look alike


def missing_data(what: str, path: Path) -> str:
    """One line saying what development data is missing and where the public set comes from."""
    sources = {
        "emotion6": "Cornell Emotion6 (Peng et al., CVPR 2015; "
                    "https://chenlab.ece.cornell.edu/downloads.html), the folder with ground_truth.txt "
                    "and images/",
        "oasis": "OASIS (Kurdi et al., 2017; https://www.benedekkurdi.com/#oasis), a folder with "
                 "ratings.csv and images/",
        "lexicon": "the NRC-VAD lexicon v1 (Mohammad, ACL 2018; "
                   "https://saifmohammad.com/WebPages/nrc-vad.html), NRC-VAD-Lexicon-v1.txt",
    }
    return f"{path}: not found; this needs {sources[what]}"


def read_emotion6(folder: Path) -> list[Rated]:
    """Emotion6's ground truth: 1..9 ratings rescaled to [-1, 1] as (x - 5) / 4."""
    rows = []
    with open(folder / "ground_truth.txt", encoding="utf-8") as f:
        next(f)
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 10:
                continue
            name = parts[0].strip()
            v, a = float(parts[1]), float(parts[2])
            probs = np.array([float(x) for x in parts[3:10]], dtype=np.float32)
            rows.append(Rated(folder / "images" / name, np.array([(v - 5) / 4, (a - 5) / 4]),
                              name.split("/")[0], probs / max(float(probs.sum()), 1e-6)))
    return rows


def read_oasis(folder: Path) -> list[Rated]:
    """OASIS ratings: 1..7 rescaled to [-1, 1] as (x - 4) / 3."""
    with open(folder / "ratings.csv", encoding="utf-8") as f:
        return [Rated(folder / "images" / r["file"],
                      np.array([(float(r["Valence_mean"]) - 4) / 3, (float(r["Arousal_mean"]) - 4) / 3]),
                      r["Category"], theme=theme_group(r.get("Theme") or r["file"]))
                for r in csv.DictReader(f)]


def theme_group(theme: str) -> str:
    """An OASIS theme's group: the theme name without its number ("Dog 3" -> "Dog")."""
    return theme.rsplit(".", 1)[0].rstrip("0123456789 ").strip() or theme


def emotion6_split(rows: list[Rated], val_fraction: float = 0.2, seed: int = 1234
                   ) -> tuple[list[Rated], list[Rated]]:
    """mood-v1's seeded split of Emotion6, stratified by keyword: (train, validation)."""
    rng = random.Random(seed)
    train, val = [], []
    for keyword in sorted({r.group for r in rows}):
        group = sorted((r for r in rows if r.group == keyword), key=lambda r: str(r.path))
        rng.shuffle(group)
        n_val = round(len(group) * val_fraction)
        val += group[:n_val]
        train += group[n_val:]
    return train, val


def kfold(n: int, k: int, seed: int) -> np.ndarray:
    """The fold of each of n items: a seeded permutation, k near-equal folds."""
    return np.random.default_rng(seed).permutation(n) % k


def grouped_kfold(groups: list[str], k: int, seed: int) -> np.ndarray:
    """The fold of each item, every group whole in one fold (GroupKFold with a seeded shuffle).

    Photos of one OASIS theme ("Dog 1" ... "Dog 10") look alike and are rated alike: a fit that saw
    some of them predicts the others far better than it will predict a family's photos. The groups
    are shuffled by the seed, then placed largest first, each in the fold with the fewest items
    so far (ties: the seed's order of the folds), so the folds stay near-equal in size.
    """
    rng = np.random.default_rng(seed)
    names = sorted(set(groups))
    rng.shuffle(names)
    size = Counter(groups)
    names.sort(key=lambda g: -size[g])  # stable: equal sizes keep the shuffled order
    fill, fold_of = np.zeros(k, int), {}
    fold_order = rng.permutation(k)
    for g in names:
        f = min(fold_order, key=lambda i: fill[i])
        fold_of[g] = f
        fill[f] += size[g]
    return np.array([fold_of[g] for g in groups])


def repeated_grouped_folds(groups: list[str], k: int, seeds: list[int]) -> list[np.ndarray]:
    """One `grouped_kfold` per seed: figures are given as mean +- spread over the seeds."""
    return [grouped_kfold(groups, k, s) for s in seeds]


class GroupedRidgeCV:
    """Out-of-fold ridge predictions for OASIS-dev, fast over a grid of (lambda, Emotion6 weight).

    Training rows: both views (centre crop, mirror) of the OASIS photos outside the fold, weight
    1, and both views of every Emotion6 training photo at weight w (Emotion6 has no theme groups
    and is never predicted here: it joins every fold's training data whole; its own figures come
    from its held-out validation split). Features are standardised by a fixed scale, and a
    constant column of INTERCEPT_SCALE makes the intercept part of the fit, barely shrunk.

    One eigendecomposition per weight serves every lambda, and a fold's fit is the full fit with
    the fold's rows taken out (the leave-group-out identity: y_T - (I - H_TT)^-1 r_T), so the
    whole grid over many seeds costs a few seconds instead of one solve per fold and setting.
    """

    INTERCEPT_SCALE = 100.0

    def __init__(self, x_oa: np.ndarray, y_oa: np.ndarray, x_e6: np.ndarray, y_e6: np.ndarray,
                 mu: np.ndarray, sd: np.ndarray) -> None:
        def rows(x: np.ndarray) -> np.ndarray:
            z = ((x - mu) / sd).reshape(-1, x.shape[-1])
            return np.hstack([z, np.full((len(z), 1), self.INTERCEPT_SCALE)])

        self.views = x_oa.shape[1]
        self.zo, self.yo = rows(x_oa), np.repeat(y_oa, self.views, axis=0)  # photo-major rows
        self.z6, self.y6 = rows(x_e6), np.repeat(y_e6, x_e6.shape[1], axis=0)
        self.n = len(y_oa)

    def _system(self, w: float) -> tuple[np.ndarray, np.ndarray]:
        gram = self.zo.T @ self.zo + w * (self.z6.T @ self.z6)
        return gram, self.zo.T @ self.yo + w * (self.z6.T @ self.y6)

    def oof(self, folds: list[np.ndarray], lambdas, weights, test_views: str = "centre"
            ) -> np.ndarray:
        """Out-of-fold (valence, arousal) for each fold assignment (one per seed): array
        (len(folds), len(lambdas), len(weights), n, 2).

        test_views "centre": the centre crop, as the runtime sees it; "both": the mean of the
        centre crop's and the mirror's predictions (a test-time flip).
        """
        out = np.zeros((len(folds), len(lambdas), len(weights), self.n, 2))
        rows_of = [[np.flatnonzero(np.repeat(f == k, self.views)) for k in np.unique(f)]
                   for f in folds]
        for j, w in enumerate(weights):
            gram, rhs = self._system(w)
            e, v = np.linalg.eigh(gram)
            zv, rv = self.zo @ v, v.T @ rhs
            for i, lam in enumerate(lambdas):
                inv = 1.0 / (e + lam)
                fitted = zv @ (inv[:, None] * rv)
                hat = (zv * inv) @ zv.T
                for s, fold_rows in enumerate(rows_of):
                    pred = np.zeros_like(self.yo)
                    for idx in fold_rows:
                        h = hat[np.ix_(idx, idx)]
                        resid = self.yo[idx] - fitted[idx]
                        pred[idx] = fitted[idx] - h @ np.linalg.solve(np.eye(len(idx)) - h, resid)
                    pred = pred.reshape(self.n, self.views, 2)
                    out[s, i, j] = pred[:, 0] if test_views == "centre" else pred.mean(1)
        return out

    def fit(self, w: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
        """(beta (d, 2), intercept (2,)) on standardised features, from all of OASIS-dev and
        Emotion6's training split."""
        gram, rhs = self._system(w)
        gram[np.diag_indices_from(gram)] += lam
        beta = np.linalg.solve(gram, rhs)
        return beta[:-1], beta[-1] * self.INTERCEPT_SCALE


def r_over_seeds(preds: list[np.ndarray], truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson r per axis of each seed's out-of-fold predictions: (mean, standard deviation)."""
    rs = np.array([[pearson(p[:, a], truth[:, a]) for a in range(truth.shape[1])] for p in preds])
    return rs.mean(0), rs.std(0)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def class_va_table(lex: Mapping[str, tuple[float, float]], names: list[list[str]]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Valence/arousal of each class from its names via NRC-VAD ([-1, 1], as `read_lexicon` of
    build_music_tables.py reads it); and which classes were found."""
    table = np.zeros((len(names), 2), dtype=np.float64)
    covered = np.zeros(len(names), dtype=bool)
    for i, synonyms in enumerate(names):
        hits = []
        for syn in (s.lower() for s in synonyms):
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


class Ridge:
    """Weighted ridge regression on standardised features (the intercept is not shrunk)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, lam: float, w: np.ndarray | None = None) -> None:
        w = np.ones(len(x)) if w is None else w
        self.mu = (x * w[:, None]).sum(0) / w.sum()
        self.sd = x.std(0) + 1e-6
        z = (x - self.mu) / self.sd
        self.y_mean = (y * w[:, None]).sum(0) / w.sum() if y.ndim == 2 else (y * w).sum() / w.sum()
        yc = y - self.y_mean
        lhs = z.T @ (z * w[:, None]) + lam * np.eye(x.shape[1])
        self.beta = np.linalg.solve(lhs, z.T @ (yc * (w[:, None] if y.ndim == 2 else w)))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mu) / self.sd) @ self.beta + self.y_mean

    def linear(self) -> tuple[np.ndarray, np.ndarray]:
        """(weights, bias) in the raw feature space: predict(x) == x @ weights + bias."""
        weights = self.beta / self.sd[:, None] if self.beta.ndim == 2 else self.beta / self.sd
        return weights, self.y_mean - self.mu @ weights


# ----------------------------------------------------------------------------- figures
def category_table(pred: np.ndarray, truth: np.ndarray, groups: list[str]) -> dict[str, dict]:
    """Pearson r per axis, overall and per OASIS category."""
    table = {"all": {"n": len(truth), "valence_r": pearson(pred[:, 0], truth[:, 0]),
                     "arousal_r": pearson(pred[:, 1], truth[:, 1])}}
    g = np.array(groups)
    for cat in OASIS_CATEGORIES:
        m = g == cat
        if m.sum() > 2:
            table[cat] = {"n": int(m.sum()), "valence_r": pearson(pred[m, 0], truth[m, 0]),
                          "arousal_r": pearson(pred[m, 1], truth[m, 1])}
    return table


def category_table_seeds(preds: list[np.ndarray], truth: np.ndarray, groups: list[str]
                         ) -> dict[str, dict]:
    """`category_table` of each seed's out-of-fold predictions: the mean r, and its spread (sd)."""
    tables = [category_table(p, truth, groups) for p in preds]
    out = {}
    for cat, row in tables[0].items():
        out[cat] = {"n": row["n"]}
        for key in ("valence_r", "arousal_r"):
            values = [t[cat][key] for t in tables]
            out[cat][key] = round(float(np.mean(values)), 4)
            out[cat][key + "_sd"] = round(float(np.std(values)), 4)
    return out


def quadrant(v: float, a: float) -> str:
    return ("pleasant" if v >= 0 else "unpleasant") + ("-energetic" if a >= 0 else "-calm")


def word_figures(words: list[str], truth: np.ndarray, word_points: dict[str, tuple[float, float]],
                 neutral_word: str) -> dict:
    """Word shares, quadrant agreement and the confusion table of word against human quadrant.

    A word agrees with a photo when its centroid lies in the quadrant of the photo's human rating;
    the centre word agrees with photos people rated near the centre (within 0.25 on both axes).
    """
    shares = {w: n / len(words) for w, n in Counter(words).most_common()}
    quads = [quadrant(v, a) for v, a in truth]
    agree = []
    for word, (v, a), q in zip(words, truth, quads, strict=True):
        if word == neutral_word:
            agree.append(abs(v) < 0.25 and abs(a) < 0.25)
        else:
            agree.append(quadrant(*word_points[word]) == q)
    confusion: dict[str, dict[str, int]] = {}
    for word, q in zip(words, quads, strict=True):
        confusion.setdefault(word, Counter())[q] += 1
    return {"shares": shares, "quadrant_agreement": float(np.mean(agree)),
            "confusion": {w: dict(c) for w, c in confusion.items()}}


def confidence_halves(conf: np.ndarray, pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Mean valence-arousal error of the most and least confident halves (ties split by order)."""
    order = np.argsort(-conf, kind="stable")
    err = np.linalg.norm(pred - truth, axis=1)
    half = len(order) // 2
    return {"confident_half_error": float(err[order[:half]].mean()),
            "unsure_half_error": float(err[order[half:]].mean())}


def shipped_figures(model, oasis: list[Rated], e6_val: list[Rated]) -> dict:
    """The shipped model's figures, scored photo by photo as the daemon scores them.

    OASIS-dev is part of this model's training data, so its figures here are in-sample (the
    cross-validated ones are the honest estimate); Emotion6's validation split was never trained on.
    """
    from frame_daemon.mood import MOOD_WORDS, NEUTRAL_WORD

    def run(rows: list[Rated]) -> tuple[np.ndarray, np.ndarray, list[str]]:
        scored = [model.score(r.path) for r in rows]
        pred = np.array([[s.mood.valence, s.mood.arousal] for s in scored])
        return pred, np.array([s.mood.confidence for s in scored]), [s.word for s in scored]

    e6_pred, _, _ = run(e6_val)
    e6_truth = np.stack([r.va for r in e6_val])
    oa_pred, oa_conf, oa_words = run(oasis)
    oa_truth = np.stack([r.va for r in oasis])
    words = word_figures(oa_words, oa_truth, MOOD_WORDS, NEUTRAL_WORD)
    rounded = lambda x: round(float(x), 4)  # noqa: E731
    return {
        "emotion6_validation": {"n": len(e6_val),
                                "valence_r": rounded(pearson(e6_pred[:, 0], e6_truth[:, 0])),
                                "arousal_r": rounded(pearson(e6_pred[:, 1], e6_truth[:, 1]))},
        "oasis_dev_in_sample": {k: {m: rounded(v) if m != "n" else v for m, v in row.items()}
                                for k, row in category_table(oa_pred, oa_truth,
                                                             [r.group for r in oasis]).items()},
        "oasis_dev_top_word_share": rounded(max(words["shares"].values())),
        "oasis_dev_quadrant_agreement": rounded(words["quadrant_agreement"]),
        "oasis_dev_confidence_halves": {k: rounded(v) for k, v in
                                        confidence_halves(oa_conf, oa_pred, oa_truth).items()},
    }
