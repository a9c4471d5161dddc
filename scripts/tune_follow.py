#!/usr/bin/env python3
"""Tune the follow policy's defaults by simulating slideshows through it (pure code, no servers).

    .venv/bin/python scripts/tune_follow.py OASIS_DIR [--hours 1] [--seeds 3] [--top 12]
        [--photo-moods OOF.json]

OASIS_DIR: photos with human ratings (`ratings.csv`, `images/`): the OASIS development split,
which the project does not ship. Every photo is read once by the mood model (the configured default,
or --model); the slideshows below then run through `frame_daemon.follow` with the loop's tick,
for every combination of threshold, dwell_s, min_interval_s, jump and smoothing in the grid.
The shipped model learnt from OASIS-dev, so its readings of these photos are in-sample:
`--photo-moods` takes the training script's out-of-fold moods instead (`oasis-dev-oof-moods.json`,
written by `scripts/train_mood_model.py` in its work folder), each photo's confidence still from
the model's own reading (its error head is itself fitted out of fold).

Slideshows (each `--hours` long, photos shown for 10, 20, 30 or 60 s; every figure is the mean over
`--seeds` differently shuffled sets of them):
- random: photos in random order. The mood moves all the time; the music should not chase it.
- themed: blocks of 6-12 photos from one theme (the photos grouped by their human valence and
  arousal into six themes), theme after theme. The mood really moves at each new theme.
- alternating: two photos of far-apart mood, one after the other. The music should hold steady.

Printed per setting: music changes per hour in each slideshow, the share of theme changes the
music followed before the theme ended (`followed`), and the mean plane distance between the
mood the music was chosen for and the photo on show (`dist`, themed and random, time-weighted).
A setting qualifies when it changes at most 60 times an hour in every slideshow (about once a
minute), at most 4 times an hour on alternating photos, and follows at least 90% of theme
changes. Of those whose themed distance is within 10% of the best, the one that changes the music
least often on themed slideshows is marked as the choice: fit first, then calm.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

from frame_daemon.follow import Action, FollowMode, FollowParams, FollowState, on_photo, on_tick
from frame_daemon.mood import Mood

TICK_S = 1.0
PERIODS_S = (10.0, 20.0, 30.0, 60.0)
THEMES = 6
GRID = {
    "threshold": (0.25, 0.35, 0.45),
    "dwell_s": (10.0, 15.0, 30.0),
    "min_interval_s": (30.0, 60.0),
    "jump": (0.7, 0.9, 1.2),
    "smoothing": (0.4, 0.6, 1.0),
}
MAX_CHANGES_PER_HOUR = 60.0
MAX_ALTERNATING_PER_HOUR = 4.0
MIN_FOLLOWED = 0.9
NEAR_BEST = 0.10  # a themed distance this much above the best still counts as fitting


@dataclass(frozen=True)
class Shown:
    mood: Mood
    seconds: float
    theme: int = -1


def read_photos(oasis: Path, model_json: Path | None, photo_moods: Path | None = None
                ) -> list[tuple[Mood, float, float]]:
    """(model mood, human valence, human arousal) for every photo; with `photo_moods`, the
    valence and arousal are those out-of-fold moods (the confidence the model's)."""
    from frame_daemon.vision.model import MoodModel

    model = MoodModel.load(model_json)
    given = json.loads(photo_moods.read_text()) if photo_moods else None
    out = []
    with open(oasis / "ratings.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if given is not None and (missing := [r["file"] for r in rows if r["file"] not in given]):
        sys.exit(f"tune_follow: {photo_moods} has no mood for {len(missing)} photos "
                 f"(e.g. {missing[0]}): written for another photo set?")
    for i, row in enumerate(rows):
        mood = model.score(oasis / "images" / row["file"]).mood
        if given is not None:
            mood = Mood(*given[row["file"]], mood.confidence)
        out.append((mood, (float(row["Valence_mean"]) - 4) / 3, (float(row["Arousal_mean"]) - 4) / 3))
        if (i + 1) % 100 == 0:
            print(f"  read {i + 1}/{len(rows)} photos", file=sys.stderr, flush=True)
    print(f"photo model {model.meta.get('name', '?')}"
          + (f", valence and arousal out of fold from {photo_moods.name}" if given else ""),
          flush=True)
    return out


def themes(photos: list[tuple[Mood, float, float]], rng: random.Random) -> list[list[Mood]]:
    """Group the photos into THEMES by human valence/arousal (k-means, a few rounds)."""
    points = [(v, a) for _, v, a in photos]
    centres = rng.sample(points, THEMES)
    groups: list[list[int]] = []
    for _ in range(20):
        groups = [[] for _ in centres]
        for i, (v, a) in enumerate(points):
            k = min(range(len(centres)), key=lambda c: (v - centres[c][0]) ** 2 + (a - centres[c][1]) ** 2)
            groups[k].append(i)
        centres = [(sum(points[i][0] for i in g) / len(g), sum(points[i][1] for i in g) / len(g))
                   if g else centres[k] for k, g in enumerate(groups)]
    return [[photos[i][0] for i in g] for g in groups if g]


def slideshows(photos: list[tuple[Mood, float, float]], hours: float, seed: int) -> dict[str, list[Shown]]:
    rng = random.Random(seed)
    total = hours * 3600
    moods = [m for m, _, _ in photos]
    shows: dict[str, list[Shown]] = {"random": [], "themed": [], "alternating": []}
    t = 0.0
    while t < total:
        period = rng.choice(PERIODS_S)
        shows["random"].append(Shown(rng.choice(moods), period))
        t += period
    groups = themes(photos, rng)
    t, theme = 0.0, -1
    while t < total:
        theme = rng.choice([k for k in range(len(groups)) if k != theme])
        period = rng.choice(PERIODS_S)
        for _ in range(rng.randint(6, 12)):
            shows["themed"].append(Shown(rng.choice(groups[theme]), period, theme))
            t += period
    confident = [m for m in moods if m.confidence >= 0.5]
    a, b = max(itertools.combinations(confident, 2), key=lambda p: p[0].distance(p[1]))
    t, i = 0.0, 0
    while t < total:
        period = PERIODS_S[(i // 40) % len(PERIODS_S)]  # every period in turn
        shows["alternating"].append(Shown(a if i % 2 == 0 else b, period))
        t, i = t + period, i + 1
    return shows


@dataclass
class Outcome:
    changes_per_hour: float
    distance: float  # time-weighted mean distance of the music's mood to the photo on show
    followed: float  # share of theme changes followed within the theme (themed only)


def simulate(show: list[Shown], params: FollowParams) -> Outcome:
    state, now, changes = FollowState.initial(), 0.0, 0
    weighted, followed, theme_changes, pending_theme = 0.0, 0, 0, False
    last_theme = None
    for shown in show:
        if shown.theme != last_theme and last_theme is not None:
            theme_changes += 1
            pending_theme = True
        last_theme = shown.theme
        state, decision = on_photo(state, shown.mood, now, FollowMode.FOLLOW, params)
        changed = decision.action in (Action.QUEUE_NEXT, Action.PLAY_NOW)
        end, t = now + shown.seconds, now
        while True:
            if changed:
                changes += 1
                if pending_theme:
                    followed, pending_theme = followed + 1, False
            step = min(TICK_S, end - t)
            if step <= 0:
                break
            assert state.music_for is not None
            weighted += state.music_for.distance(shown.mood) * step
            t += step
            state, decision = on_tick(state, t, FollowMode.FOLLOW, params)
            changed = decision.action in (Action.QUEUE_NEXT, Action.PLAY_NOW)
        now = end
    changes -= 1  # the first photo's music is no change
    return Outcome(changes / (now / 3600), weighted / now,
                   followed / theme_changes if theme_changes else 1.0)


def mean_outcome(outcomes: list[Outcome]) -> Outcome:
    n = len(outcomes)
    return Outcome(sum(o.changes_per_hour for o in outcomes) / n, sum(o.distance for o in outcomes) / n,
                   sum(o.followed for o in outcomes) / n)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("oasis", type=Path, help="photos with human ratings (ratings.csv, images/)")
    ap.add_argument("--hours", type=float, default=1.0, help="length of each slideshow")
    ap.add_argument("--seeds", type=int, default=3, help="slideshow sets to average over")
    ap.add_argument("--top", type=int, default=12, help="rows to print (best themed distance first)")
    ap.add_argument("--model", type=Path, default=None, help="model metadata JSON (default: shipped)")
    ap.add_argument("--photo-moods", type=Path, default=None, metavar="OOF.json",
                    help="out-of-fold photo moods (train_mood_model.py's oasis-dev-oof-moods.json)")
    ap.add_argument("--show", action="append", default=[], metavar="T,D,I,J,S",
                    help="also print this setting (threshold,dwell_s,min_interval_s,jump,smoothing)")
    args = ap.parse_args()
    shown = [FollowParams(**dict(zip(GRID, map(float, v.split(",")), strict=True)))
             for v in args.show]
    if not (args.oasis / "ratings.csv").is_file():
        ap.error(f"{args.oasis}: no ratings.csv here")
    photos = read_photos(args.oasis, args.model, args.photo_moods)
    sets = [slideshows(photos, args.hours, seed) for seed in range(1, args.seeds + 1)]
    default = FollowParams()
    results = []
    combos = list(itertools.product(*GRID.values()))
    for i, values in enumerate(combos):
        kwargs = dict(zip(GRID, values, strict=True))
        if kwargs["jump"] < kwargs["threshold"]:
            continue
        params = FollowParams(**kwargs)
        outcome = {name: mean_outcome([simulate(shows[name], params) for shows in sets])
                   for name in sets[0]}
        results.append((params, outcome))
        if (i + 1) % 40 == 0:
            print(f"  simulated {i + 1}/{len(combos)} settings", file=sys.stderr, flush=True)

    def qualifies(o: dict[str, Outcome]) -> bool:
        return (all(x.changes_per_hour <= MAX_CHANGES_PER_HOUR for x in o.values())
                and o["alternating"].changes_per_hour <= MAX_ALTERNATING_PER_HOUR
                and o["themed"].followed >= MIN_FOLLOWED)

    good = [r for r in results if qualifies(r[1])]
    choice = None
    if good:
        best = min(r[1]["themed"].distance for r in good)
        near = [r for r in good if r[1]["themed"].distance <= best * (1 + NEAR_BEST)]
        choice = min(near, key=lambda r: (r[1]["themed"].changes_per_hour, r[1]["themed"].distance))[0]
    rows = sorted(results, key=lambda r: (not qualifies(r[1]), r[1]["themed"].distance))[:args.top]
    # A --show setting off the grid is simulated too (it is shown, never the choice).
    for extra in shown:
        if all(p != extra for p, _ in results):
            results.append((extra, {name: mean_outcome([simulate(shows[name], extra) for shows in sets])
                                    for name in sets[0]}))
    for extra in (default, choice, *shown):
        if extra is not None and all(p != extra for p, _ in rows):
            rows += [r for r in results if r[0] == extra]
    print(f"\n{len(results)} settings, {args.seeds} x slideshows of {args.hours:g} h each, photos every "
          f"{'/'.join(f'{p:.0f}' for p in PERIODS_S)} s; changes per hour and mean distance to the "
          f"photo on show")
    print(f"{'threshold':>9} {'dwell_s':>7} {'min_int':>7} {'jump':>5} {'smooth':>6} | "
          f"{'random/h':>8} {'themed/h':>8} {'altern/h':>8} {'followed':>8} | "
          f"{'dist themed':>11} {'dist random':>11}")
    for params, o in rows:
        mark = (("  <- choice" if params == choice else "")
                + ("  <- current default" if params == default else ""))
        print(f"{params.threshold:>9.2f} {params.dwell_s:>7.0f} {params.min_interval_s:>7.0f} "
              f"{params.jump:>5.2f} {params.smoothing:>6.2f} | {o['random'].changes_per_hour:>8.1f} "
              f"{o['themed'].changes_per_hour:>8.1f} {o['alternating'].changes_per_hour:>8.1f} "
              f"{o['themed'].followed:>8.0%} | {o['themed'].distance:>11.3f} "
              f"{o['random'].distance:>11.3f}{'' if qualifies(o) else '  (fails a rule)'}{mark}")
    print(f"rules: <= {MAX_CHANGES_PER_HOUR:.0f}/h in every slideshow, <= {MAX_ALTERNATING_PER_HOUR:.0f}/h "
          f"on alternating photos, >= {MIN_FOLLOWED:.0%} of theme changes followed; "
          f"{len(good)} settings qualify")
    return 0


if __name__ == "__main__":
    sys.exit(main())
