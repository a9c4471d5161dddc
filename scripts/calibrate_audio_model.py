#!/usr/bin/env python3
"""Calibrate the audio model (frame_daemon/music/audio/mood.py) on the Emotify development excerpts.

Analyses the 100 excerpts with frame_daemon.music.audio.analyse (the code the daemon runs), builds each
excerpt's (valence, arousal) target from its listeners' GEMS tags (audio_model.tag_target), reports
seeded k-fold cross-validation (pooled out-of-fold r and per-fold r, then the pooled r over ten
other seeds to show how much the split matters), fits ridge regressions on all excerpts and prints
the coefficient block of audio/mood.py, or writes it there with --write. The data is read in place,
never copied into the repository.

    python scripts/calibrate_audio_model.py --data EMOTIFY_DIR [--seed 0] [--write]
                                            [--lexicon PATH/NRC-VAD-Lexicon-v1.txt]
"""

from __future__ import annotations

import argparse
import csv
import sys
import textwrap
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from frame_daemon.errors import TrackError  # noqa: E402
from frame_daemon.music.audio import mood as audio_model  # noqa: E402
from frame_daemon.music.audio.analyse import analyse_file  # noqa: E402

# Ridge penalty on standardized inputs (80 excerpts per training fold). Chosen on this set's CV, so
# the CV figures are a little optimistic; the held-out Emotify excerpts are the real judge.
LAMBDA = {"valence": 10.0, "arousal": 30.0}
MODEL_FILE = ROOT / "frame_daemon/music/audio/mood.py"
BEGIN, END = "# --- BEGIN CALIBRATION", "# --- END CALIBRATION ---"


def read_targets(data: Path) -> dict[str, tuple[float, float]]:
    """file (relative to data) -> tag-derived (valence, arousal), from annotations.csv."""
    ticks: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    listeners: dict[str, int] = defaultdict(int)
    with open(data / "annotations.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            name = row["file"].strip()
            listeners[name] += 1
            for emotion in audio_model.GEMS_POINTS:
                ticks[name][emotion] += int(row[emotion])
    return {name: audio_model.tag_target({e: ticks[name][e] / n for e in audio_model.GEMS_POINTS})
            for name, n in listeners.items()}


def analyse_all(data: Path, names: list[str]) -> tuple[list[str], list[dict[str, float]]]:
    """Model inputs per excerpt, with progress on stderr; unreadable excerpts are skipped."""
    rows, kept = [], []
    start = time.perf_counter()
    for i, name in enumerate(names, 1):
        try:
            features = analyse_file(data / name).features
        except TrackError as e:
            print(f"\nskipping {e}", file=sys.stderr)
            continue
        rows.append(audio_model.model_inputs(features.as_dict()))
        kept.append(name)
        if sys.stderr.isatty() or i % 10 == 0 or i == len(names):
            print(f"analysing {i}/{len(names)} ({time.perf_counter() - start:.0f} s)",
                  end="\r" if sys.stderr.isatty() else "\n", file=sys.stderr, flush=True)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    return kept, rows


def fit(x: np.ndarray, y: np.ndarray, lam: float) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Ridge on standardized inputs: (intercept, means, scales, weights)."""
    means, scales = x.mean(axis=0), x.std(axis=0)
    scales[scales == 0] = 1.0
    z = (x - means) / scales
    weights = np.linalg.solve(z.T @ z + lam * np.eye(x.shape[1]), z.T @ (y - y.mean()))
    return float(y.mean()), means, scales, weights


def predict(model: tuple[float, np.ndarray, np.ndarray, np.ndarray], x: np.ndarray) -> np.ndarray:
    """As audio_model.LinearAxis predicts, clipping included."""
    intercept, means, scales, weights = model
    return intercept + np.clip((x - means) / scales, -audio_model.CLIP_SD, audio_model.CLIP_SD) @ weights


def cross_validate(x: np.ndarray, y: np.ndarray, lam: float, folds: int,
                   seed: int) -> tuple[float, list[float]]:
    """Pooled out-of-fold r and each fold's r, for one seeded shuffle into `folds` folds."""
    order = np.random.default_rng(seed).permutation(len(y))
    pooled = np.zeros_like(y)
    per_fold = []
    for test in np.array_split(order, folds):
        train = np.setdiff1d(order, test)
        pooled[test] = predict(fit(x[train], y[train], lam), x[test])
        per_fold.append(float(np.corrcoef(pooled[test], y[test])[0, 1]))
    return float(np.corrcoef(pooled, y)[0, 1]), per_fold


def coefficient_block(models: dict[str, tuple[float, np.ndarray, np.ndarray, np.ndarray]],
                      gains: dict[str, float], summary: str) -> str:
    inputs = {"valence": "VALENCE_INPUTS", "arousal": "AROUSAL_INPUTS"}
    def floats(values: np.ndarray) -> str:
        body = textwrap.fill(", ".join(f"{v:.6g}" for v in values) + ",", width=100,
                             initial_indent=" " * 8, subsequent_indent=" " * 8)
        return "(\n" + body + "\n    )"

    lines = [f"{BEGIN} (written by scripts/calibrate_audio_model.py --write) ---",
             f"CALIBRATION = {summary!r}"]
    for axis, (intercept, means, scales, weights) in models.items():
        lines += [f"{axis.upper()} = LinearAxis(",
                  f"    inputs={inputs[axis]},",
                  f"    intercept={intercept:.6g},",
                  f"    gain={gains[axis]:.4g},",
                  f"    means={floats(means)},",
                  f"    scales={floats(scales)},",
                  f"    weights={floats(weights)},",
                  ")"]
    lines.append(END)
    return "\n".join(lines)


def write_block(block: str) -> None:
    text = MODEL_FILE.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    MODEL_FILE.write_text(head + block + tail, encoding="utf-8")


def print_gems_points(lexicon: Path) -> None:
    """Recompute GEMS_POINTS from the NRC-VAD lexicon, as lexicon.py's tables are computed."""
    lex: dict[str, tuple[float, float]] = {}
    with open(lexicon, encoding="utf-8") as f:
        next(f)
        for line in f:
            word, v, a, *_ = line.rstrip("\n").split("\t")
            lex[word] = (2 * float(v) - 1, 2 * float(a) - 1)
    print("GEMS_POINTS: dict[str, tuple[float, float]] = {")
    for emotion, words in audio_model.GEMS_DESCRIPTORS.items():
        found = [lex[w] for w in words if w in lex]
        missing = [w for w in words if w not in lex]
        v = round(sum(p[0] for p in found) / len(found), 2) + 0.0
        a = round(sum(p[1] for p in found) / len(found), 2) + 0.0
        note = f"  # not in the lexicon: {', '.join(missing)}" if missing else ""
        print(f'    "{emotion}": ({v:.2f}, {a:.2f}),{note}')
    print("}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None,
                    help="Emotify excerpts: a folder with annotations.csv and audio/<genre>/<n>.mp3")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write", action="store_true", help="write the coefficients into audio/mood.py")
    ap.add_argument("--lexicon", type=Path, default=None,
                    help="also recompute GEMS_POINTS from this NRC-VAD lexicon file")
    args = ap.parse_args()
    if args.lexicon:
        print_gems_points(args.lexicon)
    if args.data is None or not (args.data / "annotations.csv").is_file():
        where = f"no annotations.csv in {args.data}" if args.data else "no --data given"
        print(f"calibrate_audio_model.py: {where}: pass --data with the Emotify excerpts (Aljanaki, "
              "Wiering, Veltkamp 2015; listeners' GEMS tags for one-minute excerpts; free for "
              "research from the authors' Emotify page at Utrecht University)", file=sys.stderr)
        return 1
    targets = read_targets(args.data)
    names, inputs = analyse_all(args.data, sorted(targets))
    columns = {"valence": audio_model.VALENCE_INPUTS, "arousal": audio_model.AROUSAL_INPUTS}
    y = {"valence": np.array([targets[n][0] for n in names]),
         "arousal": np.array([targets[n][1] for n in names])}
    print(f"{len(names)} excerpts; targets: valence {y['valence'].mean():+.2f} ± {y['valence'].std():.2f}, "
          f"arousal {y['arousal'].mean():+.2f} ± {y['arousal'].std():.2f}")
    models, gains, figures = {}, {}, []
    for axis, target in y.items():
        x = np.array([[row[name] for name in columns[axis]] for row in inputs])
        pooled, per_fold = cross_validate(x, target, LAMBDA[axis], args.folds, args.seed)
        others = [cross_validate(x, target, LAMBDA[axis], args.folds, s)[0]
                  for s in range(args.seed + 1, args.seed + 11)]
        models[axis] = fit(x, target, LAMBDA[axis])
        fitted_values = predict(models[axis], x)
        fitted = float(np.corrcoef(fitted_values, target)[0, 1])
        # Spread the fitted predictions out to the targets' spread (see audio_model.LinearAxis).
        gains[axis] = float(target.std() / fitted_values.std())
        print(f"{axis:8s} {args.folds}-fold CV (seed {args.seed}, ridge λ {LAMBDA[axis]:g}): "
              f"r = {pooled:.3f} pooled; per fold {', '.join(f'{r:.2f}' for r in per_fold)}")
        print(f"{'':8s} pooled r over seeds {args.seed + 1}-{args.seed + 10}: mean {np.mean(others):.3f}, "
              f"range {min(others):.3f}-{max(others):.3f}; fit on all {len(names)}: r = {fitted:.3f}")
        figures.append(f"{axis} r = {pooled:.2f}")
    summary = (f"emotify-dev, {len(names)} excerpts; {args.folds}-fold CV (seed {args.seed}): "
               + ", ".join(figures))
    block = coefficient_block(models, gains, summary)
    for axis, model in models.items():
        print(f"\n{axis} weights per standard deviation of each input (gain {gains[axis]:.2f}):")
        for name, weight in zip(columns[axis], model[3], strict=True):
            print(f"  {name:16s} {weight:+.3f}")
    if args.write:
        write_block(block)
        print(f"\nwrote the coefficients into {MODEL_FILE.relative_to(ROOT)}")
    else:
        print("\n" + block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
