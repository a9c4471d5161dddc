#!/usr/bin/env python3
"""How well the chosen music fits the photo, judged by people on both sides (a dev-data benchmark).

    .venv/bin/python scripts/eval_fit.py OASIS_DIR EMOTIFY_DIR [-n 5] [--library-fit 0,0.5,1]
        [--photo-moods OOF.json] [--music-moods OOF.json]

OASIS_DIR holds photos with human valence/arousal ratings (`ratings.csv`, `images/`), EMOTIFY_DIR
music excerpts with listeners' GEMS emotion tags (`annotations.csv`, `audio/`): the OASIS and
Emotify development splits, which the project does not ship (see models/MODEL_CARD.md). The
excerpts are served by a real MPD (started here on a free loopback port, its files in a temporary
folder) and indexed with the project's own audio analysis (`frame-daemon index`); then
`frame-daemon match --json -n N` picks tracks for every photo, with the configured model (the
shipped default unless --model).

Printed, per `follow.library_fit` setting:
- fit r (valence, arousal): Pearson r between the photo's human rating and the mean human-tag
  position of the picked excerpts (listener shares mapped to the plane by
  `frame_daemon.music.audio.mood.tag_target`; photo ratings 1..7 mapped by (r - 4) / 3);
- distance ratio: mean distance from the photo's human point to the picked excerpts' human points,
  over the same for picks made at random (its exact expectation: all excerpts), both axes z-scored
  over their own set (photos over photos, excerpts over excerpts), so that neither axis nor the two
  sets' different scales dominate. Below 1 means better than chance.
Targets on the development data (issue 17): fit valence r >= 0.62, arousal r >= 0.58, ratio <= 0.76,
judged on the row whose moods on both sides come from fits that never saw the photo or the excerpt.

Both shipped models learnt from these very photos and excerpts, so the rows that read them with the
shipped models are in-sample. `--photo-moods` (the photo model's out-of-fold moods, written by
scripts/train_mood_model.py) and `--music-moods` (the music head's out-of-fold moods, written by
scripts/calibrate_music_mood.py --oof-moods) put out-of-fold moods in place of each side's reading;
the row with both is the honest one.

A last row feeds the photos' *human* ratings in place of the model's reading (same placement and
selection code, in-process, same settings): it separates how well the music side matches from how
well the photo model reads photos.

`--what-if-music-r 0.5,0.6,0.7` (with --photo-moods and --music-moods) asks what a better music head
would bring: each excerpt's valence is replaced by a synthetic reading that correlates with the
listeners' valence at exactly r (their z-score times r plus independent noise, on the out-of-fold
readings' mean and spread; arousal stays out of fold), and the out-of-fold photo row is redone,
over 20 noise seeds (mean ± sd).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from frame_daemon.music.audio.mood import GEMS_POINTS, tag_target  # noqa: E402
from servers import Mpd  # noqa: E402

TARGETS = {"valence_r": 0.62, "arousal_r": 0.58, "ratio": 0.76}


def photo_ratings(oasis: Path) -> dict[Path, tuple[float, float]]:
    out = {}
    with open(oasis / "ratings.csv", newline="") as f:
        for row in csv.DictReader(f):
            path = oasis / "images" / row["file"]
            out[path] = ((float(row["Valence_mean"]) - 4) / 3, (float(row["Arousal_mean"]) - 4) / 3)
    return out


def excerpt_targets(emotify: Path) -> dict[str, tuple[float, float]]:
    """MPD URI (relative to audio/) -> the listeners' mean position on the plane."""
    ticks: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    listeners: dict[str, int] = defaultdict(int)
    with open(emotify / "annotations.csv", newline="") as f:
        for row in csv.DictReader(f):
            uri = row["file"].strip().removeprefix("audio/")
            listeners[uri] += 1
            for emotion in GEMS_POINTS:
                ticks[uri][emotion] += float(row[emotion])
    return {uri: tag_target({e: n / listeners[uri] for e, n in t.items()}) for uri, t in ticks.items()}


def write_config(path: Path, mpd: Mpd, state: Path, library_fit: float, max_distance: float | None,
                 model: Path | None) -> Path:
    cap = f"max_distance = {max_distance}\n" if max_distance else ""
    model_line = f'[model]\npath = "{model}"\n' if model else ""
    path.write_text(f'{model_line}[mpd]\nhost = "127.0.0.1"\nport = {mpd.port}\n'
                    f'music_directory = "{mpd.music_dir}"\n'
                    f"[follow]\nlibrary_fit = {library_fit}\n{cap}"
                    f'[state]\ndirectory = "{state}"\n')
    return path


def frame_daemon(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "frame_daemon", *args], capture_output=True,
                          text=True, cwd=ROOT)


def zscore(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=0)) / x.std(axis=0)


def evaluate(matches: list[dict], photos: dict[Path, tuple[float, float]],
             excerpts: dict[str, tuple[float, float]]) -> dict[str, float]:
    uris = sorted(excerpts)
    ex = np.array([excerpts[u] for u in uris])
    ex_z = dict(zip(uris, zscore(ex), strict=True))
    ph_paths = [Path(m["photo"]) for m in matches]
    ph = np.array([photos[p] for p in ph_paths])
    ph_z = zscore(ph)
    chosen_mean, picked, random_d = [], [], []
    all_z = np.array([ex_z[u] for u in uris])
    for m, pz in zip(matches, ph_z, strict=True):
        tracks = [t["uri"] for t in m["tracks"] if t["uri"] in excerpts]
        chosen_mean.append(np.mean([excerpts[u] for u in tracks], axis=0))
        picked.append(np.mean([np.hypot(*(ex_z[u] - pz)) for u in tracks]))
        random_d.append(np.mean(np.hypot(*(all_z - pz).T)))
    chosen = np.array(chosen_mean)
    return {
        "valence_r": float(np.corrcoef(ph[:, 0], chosen[:, 0])[0, 1]),
        "arousal_r": float(np.corrcoef(ph[:, 1], chosen[:, 1])[0, 1]),
        "ratio": float(np.mean(picked) / np.mean(random_d)),
        "tracks": float(np.mean([len(m["tracks"]) for m in matches])),
        "distinct": len({t["uri"] for m in matches for t in m["tracks"]}),
    }


def oracle_matches(index_path: Path, photos: dict[Path, tuple[float, float]], n: int,
                   library_fit: float, max_distance: float | None,
                   music: dict[str, tuple[float, float]] | None = None) -> list[dict]:
    """What `match` would pick if the model read every photo as `photos` says (e.g. as people
    rated it), and, with `music`, every excerpt as it says ({uri: (valence, arousal)}, the track's
    confidence kept)."""
    import dataclasses

    from frame_daemon.config import Config
    from frame_daemon.mood import Mood
    from frame_daemon.music.controller import selection_params
    from frame_daemon.music.index import TrackIndex
    from frame_daemon.music.placement import place
    from frame_daemon.music.select import TrackPool, select

    with TrackIndex(index_path) as index:
        tracks = index.tracks()
    if music is not None:
        tracks = [dataclasses.replace(t, mood=Mood.clipped(*music[t.uri], t.mood.confidence))
                  if t.uri in music else t for t in tracks]
    pool = TrackPool.from_tracks(tracks)
    params = dataclasses.replace(selection_params(Config(), seed=0), count=n)
    if max_distance:
        params = dataclasses.replace(params, max_distance=max_distance)
    out = []
    for path, (v, a) in sorted(photos.items()):
        target = place(Mood.clipped(v, a), pool.shape, library_fit).target
        out.append({"photo": str(path),
                    "tracks": [{"uri": p.track.uri} for p in select(pool, target, params)]})
    return out


WHAT_IF_SEEDS = 20


def synthetic_valence(truth: np.ndarray, readings: np.ndarray, r: float,
                      rng: np.random.Generator) -> np.ndarray:
    """Valence readings that correlate with `truth` at exactly `r`, on `readings`' mean and spread."""
    z = zscore(truth)
    noise = rng.standard_normal(len(truth))
    noise = zscore(noise - z * (noise @ z) / (z @ z))  # orthogonal to the truth: r is exact
    return readings.mean() + readings.std() * (r * z + np.sqrt(1 - r * r) * noise)


def what_if(index_path: Path, photos: dict[Path, tuple[float, float]], given: dict,
            excerpts: dict[str, tuple[float, float]], music: dict[str, tuple[float, float]],
            rs: list[float], args: argparse.Namespace, default_fit: float) -> None:
    uris = sorted(excerpts)
    truth = np.array([excerpts[u][0] for u in uris])
    readings = np.array([music[u][0] for u in uris])
    print(f"\nwhat if the music head read valence better (out-of-fold photo moods, music arousal out "
          f"of fold, {WHAT_IF_SEEDS} noise seeds; out-of-fold valence r now "
          f"{np.corrcoef(truth, readings)[0, 1]:.3f}):")
    print(f"{'music valence r':>15}  {'fit valence r':>15}  {'fit arousal r':>15}  {'dist ratio':>15}")
    for r in rs:
        rows = []
        for seed in range(WHAT_IF_SEEDS):
            v = synthetic_valence(truth, readings, r, np.random.default_rng(seed))
            moods = {u: (float(x), music[u][1]) for u, x in zip(uris, v, strict=True)}
            picked = oracle_matches(index_path, given, args.n, default_fit, args.max_distance, moods)
            fit = evaluate(picked, photos, excerpts)
            rows.append((fit["valence_r"], fit["arousal_r"], fit["ratio"]))
        m, sd = np.mean(rows, axis=0), np.std(rows, axis=0)
        print(f"{r:>15.2f}  " + "  ".join(f"{a:>8.3f} ± {b:.3f}" for a, b in zip(m, sd, strict=True)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("oasis", type=Path, help="photos with human ratings (ratings.csv, images/)")
    ap.add_argument("emotify", type=Path, help="excerpts with listener tags (annotations.csv, audio/)")
    ap.add_argument("-n", type=int, default=5, help="tracks per photo (match -n)")
    ap.add_argument("--library-fit", default="0,0.25,0.5,0.75,1",
                    help="comma-separated follow.library_fit values to compare (default %(default)s; "
                         "the shipped default is marked)")
    ap.add_argument("--max-distance", type=float, default=None,
                    help="follow.max_distance (default: the shipped default)")
    ap.add_argument("--model", type=Path, default=None, help="model metadata JSON (default: shipped)")
    ap.add_argument("--workdir", type=Path, default=None, help="keep MPD and the index here")
    ap.add_argument("--photo-moods", type=Path, default=None,
                    help="JSON {photo file name: [valence, arousal]}: one more row with these moods in "
                         "place of the model's, e.g. the out-of-fold moods train_mood_model.py writes "
                         "(the shipped model learnt from OASIS-dev, so its own row there is in-sample)")
    ap.add_argument("--music-moods", type=Path, default=None,
                    help="JSON {excerpt file under audio/: [valence, arousal]} in place of the indexed "
                         "analysis, e.g. the out-of-fold moods calibrate_music_mood.py --oof-moods "
                         "writes (the music head learnt from these excerpts)")
    ap.add_argument("--what-if-music-r", default=None,
                    help="comma-separated music valence r values: the out-of-fold fit with a music "
                         "head that read valence that well (needs --photo-moods and --music-moods)")
    args = ap.parse_args()
    if args.what_if_music_r and not (args.photo_moods and args.music_moods):
        ap.error("--what-if-music-r needs --photo-moods and --music-moods")
    for folder, needed in ((args.oasis, "ratings.csv"), (args.emotify, "annotations.csv")):
        if not (folder / needed).is_file():
            ap.error(f"{folder}: no {needed} here")

    from frame_daemon.config import FollowConfig
    from frame_daemon.vision.model import MoodModel

    model_name = MoodModel.load(args.model).meta.get("name", "?")
    default_fit = FollowConfig().library_fit
    photos = photo_ratings(args.oasis)
    excerpts = excerpt_targets(args.emotify)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="eval-fit-"))
    work.mkdir(parents=True, exist_ok=True)
    mpd = Mpd(work / "mpd", (args.emotify / "audio").resolve())
    mpd.start()
    try:
        songs = mpd.update_and_wait(timeout=120)
        print(f"MPD serves {songs} excerpts; indexing them with the project's analysis...", flush=True)
        config = write_config(work / "eval.toml", mpd, work / "state", default_fit,
                              args.max_distance, args.model)
        started = time.monotonic()
        proc = frame_daemon("index", "--config", str(config))
        if proc.returncode:
            print(proc.stderr, file=sys.stderr)
            return 1
        print(f"  {proc.stdout.strip()} in {time.monotonic() - started:.0f} s", flush=True)
        rows = []
        for fit in (float(x) for x in args.library_fit.split(",")):
            write_config(config, mpd, work / "state", fit, args.max_distance, args.model)
            proc = frame_daemon("match", "--config", str(config), "--json", "-n", str(args.n),
                                *map(str, sorted(photos)))
            if proc.returncode:
                print(proc.stderr, file=sys.stderr)
                return 1
            matches = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
            rows.append((fit, evaluate(matches, photos, excerpts), "model"))
            print(f"  library_fit {fit}: {len(matches)} photos matched", flush=True)
        index_path = work / "state" / "tracks.sqlite3"
        music = None
        if args.music_moods:
            music = {u: tuple(m) for u, m in json.loads(args.music_moods.read_text()).items()}
            missing = sorted(set(excerpts) - set(music))
            if missing:
                print(f"{args.music_moods}: no mood for {len(missing)} excerpts ({missing[0]}, ...)",
                      file=sys.stderr)
                return 1
        oracle = evaluate(oracle_matches(index_path, photos, args.n, default_fit, args.max_distance),
                          photos, excerpts)
        extra = []
        given = None
        if args.photo_moods:
            read = json.loads(args.photo_moods.read_text())
            given = {p: tuple(read[p.name]) for p in photos if p.name in read}
            picked = oracle_matches(index_path, given, args.n, default_fit, args.max_distance)
            extra.append((default_fit, evaluate(picked, photos, excerpts),
                          f"photo moods from {args.photo_moods.name}; music as indexed"))
        if music is not None:
            for moods, label in ((photos, "human photo ratings"),
                                 *(((given, f"photo moods from {args.photo_moods.name}"),) if given else ())):
                picked = oracle_matches(index_path, moods, args.n, default_fit, args.max_distance, music)
                extra.append((default_fit, evaluate(picked, photos, excerpts),
                              f"{label}; music moods from {args.music_moods.name}"))
        if args.what_if_music_r and given and music is not None:
            what_if(index_path, photos, given, excerpts, music,
                    [float(x) for x in args.what_if_music_r.split(",")], args, default_fit)
    finally:
        mpd.stop()
    print(f"\nfit of `match -n {args.n}` picks to {len(photos)} photos, {len(excerpts)} excerpts "
          f"(human ratings both sides); photo model {model_name}")
    print(f"{'library_fit':>11}  {'valence r':>9}  {'arousal r':>9}  {'dist ratio':>10}  "
          f"{'tracks/photo':>12}  {'distinct':>8}")
    # Out of fold on both sides: the last row, when both were given.
    honest = extra[-1][1] if given and music is not None else None
    for fit, r, label in [*rows, (default_fit, oracle, "oracle"), *extra]:
        mark = ("  <- human photo ratings in place of the model; music as indexed" if label == "oracle"
                else f"  <- {label}" if label != "model"
                else "  <- default" if fit == default_fit else "")
        print(f"{fit:>11.2f}  {r['valence_r']:>9.3f}  {r['arousal_r']:>9.3f}  {r['ratio']:>10.3f}  "
              f"{r['tracks']:>12.1f}  {r['distinct']:>8d}{mark}")
    print(f"targets: valence r >= {TARGETS['valence_r']}, arousal r >= {TARGETS['arousal_r']}, "
          f"ratio <= {TARGETS['ratio']}")
    if honest is None:
        print("the rows above read photos and excerpts the models learnt from (in-sample); pass "
              "--photo-moods and --music-moods for the out-of-fold row the targets judge")
    else:
        met = [f"{name} {'met' if ok else 'NOT met'}" for name, ok in (
            ("valence", honest["valence_r"] >= TARGETS["valence_r"]),
            ("arousal", honest["arousal_r"] >= TARGETS["arousal_r"]),
            ("ratio", honest["ratio"] <= TARGETS["ratio"]))]
        print("out of fold on both sides (the last row): " + ", ".join(met))
    return 0


if __name__ == "__main__":
    sys.exit(main())
