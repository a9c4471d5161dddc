#!/usr/bin/env python3
"""Does the frame learn a household's taste? Simulated households on the real selection code and
the real feedback path (a dev-data benchmark).

    .venv/bin/python scripts/eval_taste.py OASIS_DIR EMOTIFY_DIR [--seeds 5] [--seed-base 0]

OASIS_DIR gives the photos' moods (the human ratings, 1..7 mapped by (r - 4) / 3), EMOTIFY_DIR the
tracks (100 excerpts in four genres; the listeners' emotion tags placed on the plane by
`tag_target`, as if the files were mood-tagged). Emotify has no artists: each genre's excerpts are
given five made-up artists of five tracks each. Both are development splits the project does not
ship (see models/MODEL_CARD.md).

Each household has a hidden taste, and a listener who judges, from it, one of the tracks chosen
for a photo (the one playing when the button is pressed):
- calmer: prefers music 0.25 calmer (arousal) than the frame's untrained target; a track more
  energetic than 0.15 above that point is skipped (a logistic edge 0.05 wide) and judged "doesn't
  fit", a calmer one is fine;
- genre: skips and rejects every track of one genre (rock), judges the rest fitting;
- artist: loves one artist (says fits to them); skips other tracks farther than 0.3 from the
  frame's untrained target;
- noise: random verdicts, half fits.
Verdicts go through the daemon's own path: the command table's `feedback` row (taste_feedback)
into a real taste store (SQLite in a temporary folder), one an hour of simulated time; the photo
on show and the playing track are set in the loop's state as the daemon would. After 0, 10, 30
and 100 verdicts the taste is frozen and 200 photo changes (5 tracks each, with the daemon's
no-repeat history) are measured: the skip rate (the listener's mean skip probability over the
picks), its spread between seeds (±, the standard deviation), the mean distance of picks to the
household's preferred point, the disliked genre's share, the loved artist's share, distinct
tracks per 50 picks, and the size of the shift learned applied to the photos (mean and largest).
Figures are means over seeds (0..4 by default; `--seed-base` and `--seeds` choose others, for
figures on seeds no setting was chosen on). For the calmer household
two rows are for comparison only: "oracle" shifts the target by the hidden offset itself (capped
at max_shift): what knowing the offset exactly gives with this library; "best" knows the
listener's skip chance for every track and plays the five it is least likely to skip, among those
taste could reach (within max_distance + max_shift of the target) and not played recently (the
daemon's no-repeat, relaxed as select relaxes it): the lowest skip rate any taste could reach with
this library.

Targets: after 30 verdicts the skip rate is at most half of that at 0 (calmer, genre); the
disliked genre is at most 5 % of picks; the noise household's shift stays within 0.05; distinct
tracks per 50 picks stay at or above 80 % of the untrained figure.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import tempfile
from collections import deque
from dataclasses import replace
from pathlib import Path

import numpy as np
from eval_fit import excerpt_targets  # the listeners' mean position of each excerpt

from frame_daemon.commands import CommandTable
from frame_daemon.config import Config
from frame_daemon.events import CommandName
from frame_daemon.follow import FollowMode
from frame_daemon.loop_state import Choice, LoopState
from frame_daemon.mood import Mood
from frame_daemon.music.controller import selection_params
from frame_daemon.music.placement import PhotoReference, place
from frame_daemon.music.select import Pick, TrackPool, select
from frame_daemon.music.taste_feedback import TasteFeedback
from frame_daemon.music.track import MoodSource, Track
from frame_daemon.vision.model import PhotoMood

STEPS = (0, 10, 30, 100)
EVAL_PHOTOS = 200
CALMER = (0.0, -0.25)
CALM_TOLERANCE = 0.15
RADIUS, EDGE = 0.3, 0.05
DISLIKED, LOVED = "rock", "classical band 2"
HOUR = 3600.0
NOISE_SHIFT = 0.05  # the most random verdicts may move the target (the target)


def photo_moods(oasis: Path) -> list[Mood]:
    with open(oasis / "ratings.csv", newline="") as f:
        return [Mood.clipped((float(r["Valence_mean"]) - 4) / 3, (float(r["Arousal_mean"]) - 4) / 3)
                for r in csv.DictReader(f)]


def tracks(emotify: Path) -> list[Track]:
    out = []
    for uri, (v, a) in sorted(excerpt_targets(emotify).items()):
        genre, number = uri.split("/")[0], int(Path(uri).stem)
        out.append(Track(uri, f"{genre} {number}", f"{genre} band {(number - 1) // 5 + 1}",
                         genre=genre, duration=60.0, mood=Mood.clipped(v, a, 0.9),
                         source=MoodSource.TAG, why="listeners' tags"))
    return out


class Listener:
    """A household's hidden taste: where it wants the music, and how likely it skips a track."""

    def __init__(self, kind: str, rng: np.random.Generator) -> None:
        self.kind, self.rng = kind, rng

    def preferred(self, target: Mood) -> tuple[float, float]:
        dv, da = CALMER if self.kind == "calmer" else (0.0, 0.0)
        return target.valence + dv, target.arousal + da

    def skip_p(self, track: Track, target: Mood) -> float:
        if self.kind == "noise":
            return 0.5
        if self.kind == "genre":
            return 0.95 if track.genre == DISLIKED else 0.0
        if self.kind == "artist" and track.artist == LOVED:
            return 0.0
        if self.kind == "calmer":  # too energetic is skipped; calmer than wanted is fine
            wanted = target.arousal + CALMER[1] + CALM_TOLERANCE
            return 1.0 / (1.0 + math.exp(-(track.mood.arousal - wanted) / EDGE))
        pv, pa = self.preferred(target)
        d = math.hypot(track.mood.valence - pv, track.mood.arousal - pa)
        return 1.0 / (1.0 + math.exp(-(d - RADIUS) / EDGE))

    def fits(self, track: Track, target: Mood) -> bool:
        return bool(self.rng.random() >= self.skip_p(track, target))


class Household:
    """One simulated home: the daemon's state, its taste path, its command table."""

    def __init__(self, kind: str, pool: TrackPool, photos: list[Mood], seed: int, folder: Path
                 ) -> None:
        self.cfg = Config()
        self.pool, self.photos = pool, photos
        self.rng = np.random.default_rng(seed)
        self.listener = Listener(kind, np.random.default_rng(seed + 1000))
        self.clock = [1.7e9]
        self.state = LoopState(mode=FollowMode.FOLLOW, threshold=0.45)
        self.taste = TasteFeedback(self.cfg.taste, folder, self.state, lambda _id: True,
                                   lambda: pool, self.target, wall=lambda: self.clock[0])
        self.taste.open()
        self.commands = CommandTable(self.taste.command_rows())
        self.params = replace(selection_params(self.cfg),
                              no_repeat=min(self.cfg.follow.no_repeat, len(pool) // 3))
        self.history: deque[str] = deque(maxlen=1000)
        self.seq = 0

    def target(self, photo: Mood) -> Mood:
        return place(photo, self.pool.shape, self.cfg.follow.library_fit, PhotoReference()).target

    def choose(self, photo: Mood, oracle: str = "") -> tuple[Mood, list]:
        target = self.target(photo)
        params = replace(self.params, seed=int(self.rng.integers(2**31)))
        if oracle == "best":  # what no taste can beat: for comparison
            picks = self.least_skipped(target)
        elif oracle:  # the hidden offset itself, capped like a learned one: for comparison
            dv, da = self.listener.preferred(Mood(0.0, 0.0))
            size = max(1.0, math.hypot(dv, da) / self.cfg.taste.max_shift)
            moved = Mood.clipped(target.valence + dv / size, target.arousal + da / size)
            picks = select(self.pool, moved, params, list(self.history))
        else:
            picks = self.taste.select(self.pool, target, params, list(self.history))
        self.history.extend(p.track.uri for p in picks)
        return target, picks

    def least_skipped(self, target: Mood) -> list[Pick]:
        """The picks this listener is least likely to skip, among the tracks taste could reach
        that were not played recently (all of them, when fewer than a choice's count are left)."""
        reach = self.params.max_distance + self.cfg.taste.max_shift
        near = [t for t in self.pool.tracks
                if math.hypot(t.mood.valence - target.valence, t.mood.arousal - target.arousal) <= reach]
        recent = set(list(self.history)[-self.params.no_repeat:])
        fresh = [t for t in near if t.uri not in recent]
        pool = fresh if len(fresh) >= self.params.count else near
        best = sorted(pool, key=lambda t: self.listener.skip_p(t, target))[:self.params.count]
        return [Pick(t, 0.0, 0.0, "least skipped") for t in best]

    def verdict(self) -> None:
        """A photo, the frame's choice, the first track plays; the person presses a button."""
        photo = self.photos[int(self.rng.integers(len(self.photos)))]
        target, picks = self.choose(photo)
        if not picks:
            return
        first = picks[int(self.rng.integers(len(picks)))].track  # the one playing when judged
        self.seq += 1
        st = self.state
        st.photo = PhotoMood("sim", photo, photo.word, {})
        st.photo_seq = self.seq
        st.choice = Choice(self.seq, "sim", place(photo, self.pool.shape,
                                                  self.cfg.follow.library_fit), tuple(picks))
        st.track, st.track_id, st.player = {"uri": first.uri}, self.seq, "play"
        fits = (bool(self.rng.random() < 0.5) if self.listener.kind == "noise"
                else self.listener.fits(first, target))
        self.commands.dispatch(self.commands.parse(CommandName.FEEDBACK,
                                                   b"fits" if fits else b"doesnt_fit"))
        self.clock[0] += HOUR

    def measure(self, eval_photos: list[Mood], oracle: str = "") -> dict[str, float]:
        history_was = list(self.history)
        skips, dists, genre, artist, uris, moved = [], [], 0, 0, [], []
        taste = self.taste.taste()
        for photo in eval_photos:
            target, picks = self.choose(photo, oracle)
            moved.append(taste.shift(target.word).size if taste else 0.0)
            for p in picks:
                skips.append(self.listener.skip_p(p.track, target))
                pv, pa = self.listener.preferred(target)
                dists.append(math.hypot(p.track.mood.valence - pv, p.track.mood.arousal - pa))
                genre += p.track.genre == DISLIKED
                artist += p.track.artist == LOVED
                uris.append(p.track.uri)
        self.history = deque(history_was, maxlen=1000)
        windows = [len(set(uris[i:i + 50])) for i in range(0, len(uris) - 49, 50)]
        n = max(1, len(uris))
        return {"skip": float(np.mean(skips)), "distance": float(np.mean(dists)),
                "genre": genre / n, "artist": artist / n, "distinct": float(np.mean(windows)),
                "shift": float(np.mean(moved)), "shift_max": float(np.max(moved))}


def run(kind: str, pool: TrackPool, photos: list[Mood], seed: int) -> dict[int, dict[str, float]]:
    rng = np.random.default_rng(seed + 7)
    eval_photos = [photos[int(i)] for i in rng.integers(len(photos), size=EVAL_PHOTOS)]
    with tempfile.TemporaryDirectory() as tmp:
        home = Household(kind, pool, photos, seed, Path(tmp))
        out = {}
        done = 0
        for step in STEPS:
            while done < step:
                home.verdict()
                done += 1
            out[step] = home.measure(eval_photos)
        out[-1] = home.measure(eval_photos, oracle="offset")
        out[-2] = home.measure(eval_photos, oracle="best")
        home.taste.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("oasis", type=Path)
    ap.add_argument("emotify", type=Path)
    ap.add_argument("--seeds", type=int, default=5, help="how many seeds (default 5)")
    ap.add_argument("--seed-base", type=int, default=0,
                    help="the first seed (default 0): the taste's settings were chosen on seeds "
                         "0..39 and 100..111, so report held-out figures from 1000 on")
    ap.add_argument("--calmer", type=float, default=0.25,
                    help="the calmer household's arousal offset (default 0.25)")
    args = ap.parse_args(argv)
    global CALMER
    CALMER = (0.0, -args.calmer)
    photos = photo_moods(args.oasis)
    pool = TrackPool.from_tracks(tracks(args.emotify))
    print(f"{len(photos)} photos, {len(pool)} tracks; {args.seeds} seeds from {args.seed_base}; "
          "default config "
          f"(5 tracks per photo, diversity 0.3, library_fit 0.5, max_shift 0.3); calmer by "
          f"{args.calmer}")
    print(f"{'household':<9} {'verdicts':>8} {'skip':>6} {'±':>5} {'dist':>6} {'rock':>6} {'artist':>6} "
          f"{'distinct/50':>11} {'shift':>6} {'max':>6}")
    results, spreads = {}, {}
    for kind in ("calmer", "genre", "artist", "noise"):
        runs = [run(kind, pool, photos, seed)
                for seed in range(args.seed_base, args.seed_base + args.seeds)]
        mean = {step: {k: float(np.mean([r[step][k] for r in runs])) for k in runs[0][step]}
                for step in (*STEPS, -1, -2)}
        sd = {step: {k: float(np.std([r[step][k] for r in runs])) for k in runs[0][step]}
              for step in STEPS}
        spread = {step: sd[step]["skip"] for step in STEPS}
        results[kind], spreads[kind] = mean, sd
        for step in STEPS:
            m = mean[step]
            print(f"{kind:<9} {step:>8} {m['skip']:>6.1%} {spread[step]:>5.1%} {m['distance']:>6.3f} "
                  f"{m['genre']:>6.1%} {m['artist']:>6.1%} {m['distinct']:>11.1f} {m['shift']:>6.3f} "
                  f"{m['shift_max']:>6.3f}")
        if kind == "noise":  # the mean hides the odd household that a chance contrast moved
            counts = ", ".join(f"{sum(r[step]['shift'] > NOISE_SHIFT for r in runs)} after {step}"
                               for step in STEPS[1:])
            largest = max(r[step]["shift"] for r in runs for step in STEPS)
            print(f"{kind:<9} seed by seed: a mean shift above {NOISE_SHIFT} in {counts} of "
                  f"{len(runs)}; the largest {largest:.3f}")
        if kind == "calmer":
            print(f"{kind:<9} {'oracle':>8} {mean[-1]['skip']:>6.1%} {'':>5} {mean[-1]['distance']:>6.3f}  "
                  "(for comparison: the hidden offset itself as the shift)")
            print(f"{kind:<9} {'best':>8} {mean[-2]['skip']:>6.1%} {'':>5} {mean[-2]['distance']:>6.3f}  "
                  "(for comparison: the 5 least skipped, not played recently, within reach)")
    # Each target with its figure: the mean over seeds (± the standard deviation between them).
    checks = []
    for kind in ("calmer", "genre"):
        r, d = results[kind], spreads[kind]
        checks.append((f"{kind}: skip rate after 30 verdicts <= half of at 0: {r[30]['skip']:.1%} "
                       f"(± {d[30]['skip']:.1%}) against {r[0]['skip'] / 2:.1%}",
                       r[30]["skip"] <= r[0]["skip"] / 2))
    g, gd = results["genre"][30]["genre"], spreads["genre"][30]["genre"]
    checks.append((f"genre: disliked genre <= 5 % of picks after 30: {g:.1%} (± {gd:.1%})", g <= 0.05))
    worst = max(STEPS, key=lambda s: results["noise"][s]["shift"])
    checks.append((f"noise: mean shift within {NOISE_SHIFT} (every step): at most "
                   f"{results['noise'][worst]['shift']:.3f} (± {spreads['noise'][worst]['shift']:.3f}, "
                   f"after {worst})", all(results["noise"][s]["shift"] <= NOISE_SHIFT for s in STEPS)))
    low = min(((k, s) for k in results for s in STEPS),
              key=lambda ks: results[ks[0]][ks[1]]["distinct"] / results[ks[0]][0]["distinct"])
    checks.append((f"distinct per 50 >= 80 % of untrained (every household, step): lowest "
                   f"{results[low[0]][low[1]]['distinct']:.1f} (± {spreads[low[0]][low[1]]['distinct']:.1f}; "
                   f"{low[0]} after {low[1]}) against {0.8 * results[low[0]][0]['distinct']:.1f}",
                   all(results[k][s]["distinct"] >= 0.8 * results[k][0]["distinct"]
                       for k in results for s in STEPS)))
    for line, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {line}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
