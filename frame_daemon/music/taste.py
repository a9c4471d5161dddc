"""What this household thinks fits: learned from its verdicts, applied to the choice (pure).

A verdict says that a track fitted, or did not fit, the photo on show. From the verdicts kept (the
taste store) `learn` builds a `Taste`: deterministic (the same verdicts and time give the same
taste), bounded, and explainable, with no model hidden inside.

Regions. Evidence is kept per mood region: the region of a verdict is the mood word
(`frame_daemon.mood`) of the point the track was chosen for, before taste. The words are the
regions people see ("calm photos"), so what is learned can be said in their words.

(a) The shift. A verdict's evidence is the track's displacement d from that point. Each counts
with its weight w (how it arrived: a button press 1, a skip 0.5, a track played through 0.15, the
person's own music 0.5; halved every `half_life_days`). The direction the household wants is the
contrast between where the tracks that fitted lie and where those that did not lie:

    c = mean_w(d | fits) − mean_w(d | doesn't fit)      (each mean has the target itself as one
                                                         pseudo-verdict, so one side may be empty)

Each axis of it is then counted only as far as it stands out from its own noise, and the whole as
far as the evidence behind it allows:

    household_x = c_x · max(0, 1 − SIGNIFICANCE · se_x² / c_x²) · W / (W + SHIFT_PRIOR)
                                                                      (x: valence, arousal)

with se_x² the squared standard error of c on that axis (the spread of d on each side over its
weight) and W the evidence. Both factors pull towards zero: the first while few verdicts leave
the contrast uncertain, the second for the first few verdicts whatever they say. SHIFT_PRIOR is
smaller than PRIOR because the first factor already holds back a contrast that does not stand
out: 30 consistent verdicts move the target by 94 % of what survives the test, not 86 %. Per
axis, because a household that says "calmer" says nothing about valence: the tracks it judged
spread widely in valence, and that spread must not hide a consistent arousal contrast. Random
verdicts give a c no larger than its noise, so they barely move the target; a few consistent
verdicts move it a little, many move it more.

(a'') The limit. The contrast measures how far apart the accepted and the turned-down tracks
lie, and that is only as wide as the picks were spread: while the picks sit near the untrained
target, a household that wants music well away from it shows a small contrast for many verdicts.
Its rejections say more: each turned-down track is a censored observation, "this household's
point lies beyond this one". Where the household's contrast stands out clearly (LIMIT_Z standard
errors along its direction) and the verdicts separate cleanly along it, the limit is the point
along the shift's direction that best separates the turned-down tracks (before it) from the
accepted ones (beyond it): the least misjudged weight, the nearest such point. The shift then goes
at least LIMIT_MARGIN beyond that limit, within max_shift:

    |household| = max(|household|, min(max_shift, limit + LIMIT_MARGIN))   (direction unchanged)

"Cleanly": the misjudged weight m of W gives a purity 1 − 2m/W, at least LIMIT_PURITY; random
verdicts misjudge nearly half at any cut (purity near 0), a household with a clear edge few. A
shift already LIMIT_MARGIN beyond the limit is not moved, and a limit on the untrained target's
side of it (at or below 0 along the shift) is not used.

A region follows the household's shift (and so its limit), except where its own contrast
departs from it by more than its noise (the same test on the difference), and then by its own
evidence against PRIOR:

    region = household + Δ_region · W_region / (W_region + PRIOR)

Both are capped at `max_shift` (plane distance).

(a') Leaning. A shift also says which way the household wants the music ("calmer for calm
photos"), and its verdicts turned down what lies back the other way. Moving the target alone
still plays as much music on that side of the moved target as on the other, so the candidates
are also ranked by it. With s = (|shift| − LEAN_FROM) / (max_shift − LEAN_FROM) within 0..1
(a shift no larger than random verdicts leave leans nothing) and x how far a track lies from the
moved target along the shift's direction:
- a track lying x back (the way turned down) counts LEAN_WEIGHT · s · x farther, at most LEAN_CAP
  (more than the whole fitting distance, so the penalty keeps growing across it);
- a track lying x further the household's way counts s · o · x nearer, where o (`one_sided`,
  0..1) says how one-sided the household's rejections are: 1 − 2 × the share of the turned-down
  weight lying further its way than the shift itself. A household that turned down only
  livelier music ("calmer", o ≈ 1) has said nothing against calmer music, so calmer fitting
  tracks rank (at full strength) as if on the moved target's line: only their distance off it
  counts. One that turned down music on both sides of a point (o ≈ 0) keeps the plain distance
  there. Bounded: never more than the part of a track's distance that lies along the shift.
Like the preferences it only re-ranks the tracks that fit (within max_distance of the moved
target), and a household with no clear direction (random verdicts) has no shift to lean by.

(b) Preferences. Per genre, artist and track, per region: the sum of the weights of the verdicts
on them, each signed by how far it departs from the household's usual verdict (+1 − usual for
fits, −1 − usual for doesn't fit; usual is the household's weighted mean of ±1, pulled to 0 by
PRIOR), so a home that says "fits" to nearly everything does not thereby love every genre.
Verdicts from other regions count half. A pick's score (plane distance, lower is better) moves,
through tanh of track + 0.6 · artist + 0.6 · genre weights, by at most PREFERENCE_SCALE for a
disliked one and LIKE_SCALE for a liked one, so no amount of evidence makes one track win every
time. Preferences only re-rank the tracks that fit; the one exception: a track judged *doesn't
fit* EXCLUDE_AFTER times in a region (buttons or skips, with no *fits* from a person since) is not
chosen there again.

(c) Decay. Every weight halves each `half_life_days`; the exclusion count does not decay.

Variety. Taste re-ranks a larger set of fitting candidates drawn by `select` (with its own
diversity), with the same Gumbel sampling select uses, so it reorders within the fitting tracks
and never narrows the choice to a few (scripts/eval_taste.py measures distinct tracks per 50).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np

from frame_daemon.mood import Mood, nearest_word
from frame_daemon.music.select import (
    MAX_TEMPERATURE,
    Pick,
    SelectionParams,
    TrackPool,
    genre_tokens,
    select,
)

DAY_S = 86400.0
# A region's own shift is pulled towards the household's as if by this many button presses' worth
# of evidence (and the household's usual verdict towards neither).
PRIOR = 5.0
# The household's shift is pulled towards zero as if by this many (with the significance test
# below: see the module docstring).
SHIFT_PRIOR = 2.0
# How far a contrast must stand out from its noise before it moves the target (in squared
# standard errors; random verdicts give about 1).
SIGNIFICANCE = 3.0
# The limit (a''): used where the household's contrast stands out by this many standard errors
# along its direction (random verdicts: about 1) and the verdicts separate along it with at least
# this purity; the shift then goes this far beyond it: about select's sampling spread at the
# default diversity (temperature 0.3 x 0.3 = 0.09: a track at the limit is then about e times
# less likely to be drawn than one on the moved target).
LIMIT_Z = 2.0
LIMIT_PURITY = 0.5
LIMIT_MARGIN = 0.1
# Preferences: the most a pick's score (a plane distance) moves, and the evidence that gets it
# about three quarters of the way there (tanh(1) = 0.76).
PREFERENCE_SCALE = 0.4
# A liked track moves up less than a disliked one moves down: "fits" says the track was fine
# there, not that it should crowd out the others that fit as well.
LIKE_SCALE = 0.15
PREFERENCE_SATURATION = 1.5
# A track's own verdicts count fully; its artist's and genre's, shared by many tracks, less.
KIND_FACTOR = {"track": 1.0, "artist": 0.6, "genre": 0.6}
# Evidence from another region counts this much for a genre, artist or track.
OTHER_REGION_SHARE = 0.5
# How many doesn't-fit verdicts (with no fits since) keep a track out of a region for good.
EXCLUDE_AFTER = 2
# Candidates drawn by select for the taste to re-rank: per pick, and beyond (so that a disliked
# genre crowding the nearest places still leaves others to choose).
CANDIDATES_PER_PICK = 3
CANDIDATES_EXTRA = 10
# Evidence below this (a twentieth of a button press, after decay) is not listed as a preference.
FADED = 0.05
# Below this (score units) a preference is not worth mentioning in `why`.
NOTABLE = 0.02
# Leaning (a'): at the full shift (max_shift), a track lying 0.1 back from the moved target, the
# way the household turned down, counts 0.8 farther; at most LEAN_CAP, twice max_distance's
# default, so the penalty keeps growing across the whole fitting disc: a track far back counts
# farther than one just back (a cap within the disc would rank them alike).
LEAN_WEIGHT = 8.0
LEAN_CAP = 1.0
# A shift no larger than random verdicts leave leans nothing (they leave 0.005-0.016 on average
# in scripts/eval_taste.py; leaning from 0 tilted that household's picks away from lively rock,
# 24 % -> 18 %); leaning grows from here to full at max_shift.
LEAN_FROM = 0.03


class Arrival(StrEnum):
    """How a verdict arrived."""

    BUTTON = "button"  # Fits / Doesn't fit in Home Assistant
    CLI = "cli"  # frame-daemon feedback
    SKIP = "skip"  # a person skipped a track the daemon chose, early
    PLAYED = "played_through"  # a chosen track played to its end while the photo's mood held
    OWN = "own_music"  # a person played their own music with this photo


# What one verdict counts, by how it arrived: a person's action outranks the daemon's inference.
STRENGTH: dict[Arrival, float] = {Arrival.BUTTON: 1.0, Arrival.CLI: 1.0, Arrival.SKIP: 0.5,
                                  Arrival.PLAYED: 0.15, Arrival.OWN: 0.5}


@dataclass(frozen=True, slots=True)
class Verdict:
    """One judgement: did this track fit this photo? With everything needed to learn from it."""

    fits: bool
    arrival: Arrival
    at: float  # wall-clock time, Unix seconds
    photo: Mood  # the photo's own mood
    target: Mood  # the point the track was chosen for, before taste: its word is the region
    uri: str
    track: Mood  # the track's mood as the index has it
    genre: str = ""
    artist: str = ""
    title: str = ""
    analysis: str = ""  # where the track's mood came from (the index's `why`)

    @property
    def region(self) -> str:
        return nearest_word(self.target.valence, self.target.arousal)

    def weight(self, now: float, half_life_days: float) -> float:
        age_days = max(0.0, now - self.at) / DAY_S
        return STRENGTH[self.arrival] * 0.5 ** (age_days / half_life_days)


@dataclass(frozen=True, slots=True)
class TasteParams:
    max_shift: float = 0.3  # plane distance
    half_life_days: float = 90.0


@dataclass(frozen=True, slots=True)
class Shift:
    """The learned offset of the target for one region (or the household)."""

    region: str
    valence: float
    arousal: float
    verdicts: int  # of this region's own
    evidence: float  # their weight now, after decay
    # How one-sided the household's rejections are (0..1): 1 when none of the tracks it turned
    # down lies further its way than the shift, 0 when as many lie beyond as back (leaning).
    one_sided: float = 0.0
    # How far along the shift the household's turned-down music reaches ((a''); 0: not used).
    limit: float = 0.0

    @property
    def size(self) -> float:
        return math.hypot(self.valence, self.arousal)


@dataclass(frozen=True, slots=True)
class Tally:
    """The verdicts on one genre, artist or track in one region, for explanations."""

    said_fits: int = 0
    said_not: int = 0
    skipped: int = 0
    played: int = 0  # played through, or the household's own music
    oldest: float = math.inf  # time of the oldest of them
    weight: float = 0.0  # signed, decayed: + fits, − doesn't fit


@dataclass(frozen=True)
class Preference:
    """A genre, artist or track the household likes (weight > 0) or not, in one region."""

    kind: str  # genre | artist | track
    key: str  # normalized genre token, lower-case artist, or the track's URI
    label: str  # for people
    region: str
    weight: float  # the signed evidence, with other regions' at half
    tally: Tally  # this region's own verdicts


@dataclass(frozen=True)
class Taste:
    """What was learned, at one time. Empty (no verdicts) changes nothing."""

    household: Shift
    shifts: dict[str, Shift] = field(default_factory=dict)
    # (kind, key) -> region -> tally; and the household-wide signed weight per (kind, key)
    tallies: dict[tuple[str, str], dict[str, Tally]] = field(default_factory=dict)
    totals: dict[tuple[str, str], float] = field(default_factory=dict)
    labels: dict[tuple[str, str], str] = field(default_factory=dict)
    excluded: dict[str, frozenset[str]] = field(default_factory=dict)  # region -> URIs
    verdicts: int = 0
    evidence: float = 0.0
    now: float = 0.0
    params: TasteParams = TasteParams()

    @property
    def empty(self) -> bool:
        return self.verdicts == 0

    def shift(self, region: str) -> Shift:
        """The region's shift: its own, or the household's where it has no evidence of its own."""
        own = self.shifts.get(region)
        if own is not None:
            return own
        h = self.household
        return Shift(region, h.valence, h.arousal, 0, 0.0, h.one_sided, h.limit)

    def preference(self, kind: str, key: str, region: str) -> float:
        by_region = self.tallies.get((kind, key))
        if not by_region:
            return 0.0
        own = by_region[region].weight if region in by_region else 0.0
        return own + OTHER_REGION_SHARE * (self.totals[(kind, key)] - own)

    def preferences(self, region: str | None = None) -> list[Preference]:
        """Every genre, artist and track with evidence, strongest first (in one region, or in
        the region where each has the most)."""
        out = []
        for (kind, key), by_region in self.tallies.items():
            regions = [region] if region else list(by_region)
            for r in regions:
                weight = self.preference(kind, key, r)
                if abs(weight) >= FADED:
                    out.append(Preference(kind, key, self.labels[(kind, key)], r, weight,
                                          by_region.get(r, Tally())))
        if region is None:  # one line per genre/artist/track: its strongest region
            best: dict[tuple[str, str], Preference] = {}
            for p in out:
                k = (p.kind, p.key)
                if k not in best or abs(p.weight) > abs(best[k].weight):
                    best[k] = p
            out = list(best.values())
        return sorted(out, key=lambda p: (-abs(p.weight), p.kind, p.key))

    def summary(self, top: int = 3) -> dict[str, object]:
        """A short, plain summary (the Home Assistant sensor's attributes, `taste --json`)."""
        prefs = self.preferences()

        def names(kind: str, sign: int) -> list[str]:
            return [p.label for p in prefs if p.kind == kind and p.weight * sign > 0][:top]

        shifts = sorted(self.shifts.values(), key=lambda s: -s.size)
        return {
            "verdicts": self.verdicts,
            "evidence": round(self.evidence, 2),
            "household_shift": {"valence": round(self.household.valence, 3),
                                "arousal": round(self.household.arousal, 3),
                                "one_sided": round(self.household.one_sided, 2),
                                "limit": round(self.household.limit, 3)},
            "shifts": {s.region: {"valence": round(s.valence, 3), "arousal": round(s.arousal, 3),
                                  "verdicts": s.verdicts} for s in shifts[:top] if s.size >= 0.005},
            "liked_genres": names("genre", 1), "disliked_genres": names("genre", -1),
            "liked_artists": names("artist", 1), "disliked_artists": names("artist", -1),
            "liked_tracks": names("track", 1), "disliked_tracks": names("track", -1),
            "excluded_tracks": sum(len(v) for v in self.excluded.values()),
        }


def empty_taste(params: TasteParams = TasteParams(), now: float = 0.0) -> Taste:
    return Taste(Shift("household", 0.0, 0.0, 0, 0.0), now=now, params=params)


def _keys(v: Verdict) -> list[tuple[str, str, str]]:
    """(kind, key, label) of what a verdict is about."""
    keys = [("genre", g, g) for g in genre_tokens(v.genre)]
    if v.artist.strip():
        keys.append(("artist", v.artist.strip().lower(), v.artist.strip()))
    keys.append(("track", v.uri, f"'{v.title}'" if v.title else v.uri))
    return keys


def _cap(v: float, a: float, cap: float) -> tuple[float, float]:
    size = math.hypot(v, a)
    return (v, a) if size <= cap or size == 0 else (v * cap / size, a * cap / size)


def _contrast(evidence: list[tuple[float, float, float, bool]]
              ) -> tuple[float, float, float, float, float]:
    """(valence, arousal) of the contrast c, the squared standard error of each, and the
    evidence's weight; see the module docstring."""
    sides = []
    for fits in (True, False):
        es = [e for e in evidence if e[3] == fits]
        w = 1.0 + sum(e[2] for e in es)  # the target itself as one pseudo-verdict, at d = 0
        mv = sum(e[2] * e[0] for e in es) / w
        ma = sum(e[2] * e[1] for e in es) / w
        var_v = (sum(e[2] * (e[0] - mv) ** 2 for e in es) + mv * mv) / w
        var_a = (sum(e[2] * (e[1] - ma) ** 2 for e in es) + ma * ma) / w
        sides.append((mv, ma, var_v / w, var_a / w))
    (fv, fa, fse_v, fse_a), (nv, na, nse_v, nse_a) = sides
    return fv - nv, fa - na, fse_v + nse_v, fse_a + nse_a, sum(e[2] for e in evidence)


def _significant(v: float, a: float, se2_v: float, se2_a: float) -> tuple[float, float]:
    """(v, a), each axis counted only as far as it stands out from its own noise."""
    def axis(x: float, se2: float) -> float:
        return 0.0 if x == 0 else x * max(0.0, 1.0 - SIGNIFICANCE * se2 / (x * x))

    return axis(v, se2_v), axis(a, se2_a)


def _limit(evidence: list[tuple[float, float, float, bool]], v: float, a: float,
           se2_v: float, se2_a: float, contrast: tuple[float, float]) -> float:
    """How far along the shift's direction (v, a) the household's turned-down tracks reach: the
    cut that best separates them (before it) from the accepted ones (beyond it), by weight, the
    nearest of the best; 0 where the contrast does not stand out LIMIT_Z standard errors along
    that direction or the cut misjudges too much (purity below LIMIT_PURITY). See (a'')."""
    size = math.hypot(v, a)
    total = sum(e[2] for e in evidence)
    if size == 0 or total <= 0:
        return 0.0
    uv, ua = v / size, a / size
    along = contrast[0] * uv + contrast[1] * ua
    if along < LIMIT_Z * math.sqrt(se2_v * uv * uv + se2_a * ua * ua):
        return 0.0
    xs = sorted((e[0] * uv + e[1] * ua, e[2], e[3]) for e in evidence)
    # Misjudged weight with the cut before xs[i]: accepted before it, turned down from it on.
    misjudged = sum(w for _, w, fits in xs if not fits)
    best, cut = misjudged, xs[0][0]
    for i, (x, w, fits) in enumerate(xs):
        misjudged += w if fits else -w
        beyond = xs[i + 1][0] if i + 1 < len(xs) else x
        # A cut between tracks, never through a tie.
        if (beyond > x + 1e-9 or i + 1 == len(xs)) and misjudged < best - 1e-9:
            best, cut = misjudged, (x + beyond) / 2
    if 1.0 - 2.0 * best / total < LIMIT_PURITY:
        return 0.0
    return max(0.0, cut)


def _one_sided(evidence: list[tuple[float, float, float, bool]], v: float, a: float) -> float:
    """How one-sided the turned-down tracks are along the shift (v, a): 1 − 2 × the share of
    their weight lying further the household's way than the shift itself (clipped to 0..1).
    A household that wants calmer and turned down only livelier music gives about 1; one that
    turned down as much beyond its point as before it (it wants a point, not a direction) 0."""
    size = math.hypot(v, a)
    rejected = [e for e in evidence if not e[3]]
    total = sum(e[2] for e in rejected)
    if size < 0.01 or total <= 0:
        return 0.0
    beyond = sum(e[2] for e in rejected if (e[0] * v + e[1] * a) / size > size)
    return max(0.0, 1.0 - 2.0 * beyond / total)


def learn(verdicts: Iterable[Verdict], now: float, params: TasteParams = TasteParams()) -> Taste:
    """The household's taste at `now` from its verdicts (oldest first); see the module docstring."""
    verdicts = sorted(verdicts, key=lambda v: v.at)
    if not verdicts:
        return empty_taste(params, now)
    evidence: dict[str, list[tuple[float, float, float, bool]]] = defaultdict(list)
    # (kind, key) -> region -> [said fits, said not, skipped, played, oldest, weight]
    raw: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(dict)
    labels: dict[tuple[str, str], str] = {}
    strikes: dict[tuple[str, str], int] = defaultdict(int)  # (region, uri) -> doesn't fits since fits
    # The household's usual verdict: a preference is what departs from it, so a home that says
    # "fits" to nearly everything does not thereby love every genre it heard.
    weights = [v.weight(now, params.half_life_days) for v in verdicts]
    usual = sum(w * (1 if v.fits else -1) for v, w in zip(verdicts, weights, strict=True)) / (
        PRIOR + sum(weights))
    for v, w in zip(verdicts, weights, strict=True):
        sign = (1.0 if v.fits else -1.0) - usual
        region = v.region
        evidence[region].append((v.track.valence - v.target.valence,
                                 v.track.arousal - v.target.arousal, w, v.fits))
        said = v.arrival in (Arrival.BUTTON, Arrival.CLI)
        for kind, key, label in _keys(v):
            labels[(kind, key)] = label
            t = raw[(kind, key)].setdefault(region, [0, 0, 0, 0, math.inf, 0.0])
            t[0] += said and v.fits
            t[1] += said and not v.fits
            t[2] += v.arrival == Arrival.SKIP
            t[3] += v.arrival in (Arrival.PLAYED, Arrival.OWN)
            t[4] = min(t[4], v.at)
            t[5] += sign * w
        if v.fits and v.arrival != Arrival.PLAYED:
            strikes[(region, v.uri)] = 0  # a person said (or played) it fits since
        elif not v.fits:
            strikes[(region, v.uri)] += 1

    everything = [e for es in evidence.values() for e in es]
    cv, ca, se2_v, se2_a, total_w = _contrast(everything)
    hv, ha = _significant(cv, ca, se2_v, se2_a)
    hv, ha = _cap(hv * total_w / (total_w + SHIFT_PRIOR), ha * total_w / (total_w + SHIFT_PRIOR),
                  params.max_shift)
    limit = _limit(everything, hv, ha, se2_v, se2_a, (cv, ca))
    size = math.hypot(hv, ha)
    if limit > 0 and size > 0:  # at least LIMIT_MARGIN beyond what it turned down (a'')
        grow = max(size, min(params.max_shift, limit + LIMIT_MARGIN)) / size
        hv, ha = hv * grow, ha * grow
    sided = _one_sided(everything, hv, ha)
    shifts = {}
    for region, es in evidence.items():
        # The region's own contrast, where it departs from the household's noticeably.
        cv, ca, se2_v, se2_a, w = _contrast(es)
        dv, da = _significant(cv - hv, ca - ha, se2_v, se2_a)
        rv, ra = _cap((w * (hv + dv) + PRIOR * hv) / (w + PRIOR),
                      (w * (ha + da) + PRIOR * ha) / (w + PRIOR), params.max_shift)
        shifts[region] = Shift(region, rv, ra, len(es), w, sided, limit)
    tallies = {k: {r: Tally(int(t[0]), int(t[1]), int(t[2]), int(t[3]), t[4], t[5])
                   for r, t in by.items()} for k, by in raw.items()}
    excluded: dict[str, set[str]] = defaultdict(set)
    for (region, uri), count in strikes.items():
        if count >= EXCLUDE_AFTER:
            excluded[region].add(uri)
    return Taste(household=Shift("household", hv, ha, len(verdicts), total_w, sided, limit),
                 shifts=shifts,
                 tallies=tallies,
                 totals={k: sum(t.weight for t in by.values()) for k, by in tallies.items()},
                 labels=labels, excluded={r: frozenset(u) for r, u in excluded.items()},
                 verdicts=len(verdicts), evidence=total_w, now=now, params=params)


# ---------------------------------------------------------------------- applying it
@dataclass(frozen=True, slots=True)
class TastedChoice:
    """The picks for a target with the household's taste applied, and what the taste did."""

    target: Mood  # shifted
    shift: Shift
    picks: list[Pick]
    reasons: dict[str, str]  # uri -> why taste ranked it where it is (only where it mattered)


def shifted(taste: Taste, target: Mood) -> tuple[Mood, Shift]:
    """The target moved by the shift learned for its region."""
    s = taste.shift(nearest_word(target.valence, target.arousal))
    return Mood.clipped(target.valence + s.valence, target.arousal + s.arousal,
                        target.confidence), s


def pick_preference(taste: Taste, pick: Pick, region: str) -> tuple[float, str]:
    """The score change for one pick (negative: liked) and the line that explains its biggest
    part ("" when there is nothing worth saying)."""
    t = pick.track
    parts = []
    for kind, key, label in _keys(Verdict(True, Arrival.PLAYED, 0.0, t.mood, t.mood, t.uri,
                                          t.mood, t.genre, t.artist, t.title)):
        weight = taste.preference(kind, key, region)
        if weight:
            parts.append((weight, kind, key, label))
    if not parts:
        return 0.0, ""
    total = sum(KIND_FACTOR[p[1]] * p[0] for p in parts)
    change = -(LIKE_SCALE if total > 0 else PREFERENCE_SCALE) * math.tanh(total / PREFERENCE_SATURATION)
    if abs(change) < NOTABLE:
        return change, ""
    weight, kind, key, label = max(parts, key=lambda p: abs(p[0]) * (1 if p[0] * total > 0 else 0))
    return change, explain(taste, kind, key, label, region)


def toward(valence: float, arousal: float) -> str:
    """The way a shift goes, in a word: calmer, livelier, brighter or darker."""
    if abs(arousal) >= abs(valence):
        return "calmer" if arousal < 0 else "livelier"
    return "brighter" if valence > 0 else "darker"


def lean_strength(size: float, max_shift: float) -> float:
    """How strongly a shift of this size leans (0..1): nothing up to LEAN_FROM, fully at
    max_shift."""
    return min(1.0, max(0.0, size - LEAN_FROM) / max(1e-9, max_shift - LEAN_FROM))


def lean(taste: Taste, shift: Shift, moved: Mood, pick: Pick) -> float:
    """How much farther (> 0) a pick counts for lying back from the moved target, the way the
    household turned down, or nearer (< 0) for lying further its way when its rejections are
    one-sided (leaning, (a') in the module docstring)."""
    size = shift.size
    strength = lean_strength(size, taste.params.max_shift)
    if strength <= 0:
        return 0.0
    back = -((pick.track.mood.valence - moved.valence) * shift.valence
             + (pick.track.mood.arousal - moved.arousal) * shift.arousal) / size
    if back >= 0:
        return min(LEAN_CAP, LEAN_WEIGHT * strength * back)
    # At most the part of the distance along the shift: the score stays a distance (>= 0).
    return strength * shift.one_sided * back


def explain(taste: Taste, kind: str, key: str, label: str, region: str) -> str:
    """E.g. "you skipped 3 jazz tracks for calm photos this month"."""
    by_region = taste.tallies.get((kind, key), {})
    tally, where = by_region.get(region), f"for {region} photos"
    if tally is None or not (tally.said_fits or tally.said_not or tally.skipped or tally.played):
        # Only other regions' evidence: sum it, say so.
        tally = Tally(sum(t.said_fits for t in by_region.values()),
                      sum(t.said_not for t in by_region.values()),
                      sum(t.skipped for t in by_region.values()),
                      sum(t.played for t in by_region.values()),
                      min((t.oldest for t in by_region.values()), default=math.inf))
        where = "for other photos"
    def n(count: int) -> str:
        if kind == "track":
            return label if count == 1 else f"{label} {count} times"
        plural = "s" if count != 1 else ""
        return f"{count} {label} track{plural}" if kind == "genre" else f"{count} track{plural} by {label}"

    counted = [(tally.said_not, "said {} didn't fit"), (tally.skipped, "skipped {}"),
               (tally.said_fits, "said {} fitted"), (tally.played, "let {} play")]
    count, verb = max(counted, key=lambda c: c[0])
    age_days = (taste.now - tally.oldest) / DAY_S
    when = (" this week" if age_days <= 7 else " this month" if age_days <= 31
            else " this year" if age_days <= 365 else "")
    return f"you {verb.format(n(count))} {where}{when}"


def choose(taste: Taste | None, pool: TrackPool, target: Mood, params: SelectionParams,
           history: Sequence[str] = (), last_artist: str | None = None) -> TastedChoice:
    """`select` with the household's taste: the target shifted for its region, then a larger set
    of fitting candidates re-ranked by preference and leaning (Gumbel-sampled like select's own ranking when
    diversity > 0), tracks excluded in this region left out. Without taste: `select` exactly."""
    if taste is None or taste.empty:
        return TastedChoice(target, Shift("none", 0.0, 0.0, 0, 0.0),
                            select(pool, target, params, history, last_artist), {})
    region = nearest_word(target.valence, target.arousal)
    moved, shift = shifted(taste, target)
    wide = replace(params, count=params.count * CANDIDATES_PER_PICK + CANDIDATES_EXTRA)
    candidates = select(pool, moved, wide, history, last_artist)
    excluded = taste.excluded.get(region, frozenset())
    candidates = [p for p in candidates if p.track.uri not in excluded]
    if not candidates and excluded:
        # All that was near was turned down twice here, or nothing fits and select's one
        # nearest track was: the nearest of the rest plays, not silence.
        candidates = select(pool.without(excluded), moved, wide, history, last_artist)
    recent = set(list(history)[-params.no_repeat:]) if params.no_repeat else set()
    rng = np.random.default_rng(params.seed)
    noise = rng.gumbel(size=len(candidates)) * MAX_TEMPERATURE * params.diversity
    ranked = []
    reasons = {}
    leaned = {}  # uri -> how much farther (or nearer, < 0) it counts for where it lies
    for p, g in zip(candidates, noise, strict=True):
        change, why = pick_preference(taste, p, region)
        if why:
            reasons[p.track.uri] = why
        leaned[p.track.uri] = lean(taste, shift, moved, p)
        change += leaned[p.track.uri]
        ranked.append((p.track.uri in recent, p.score + change + g, p.score + change, p, p.score + g))
    # What would have been chosen from the same candidates without preferences: a pick that
    # displaced one of those says why (the displaced one's reason, or its own).
    untasted = [r[3].track.uri for r in sorted(ranked, key=lambda r: (r[0], r[4]))[:params.count]]
    ranked.sort(key=lambda r: (r[0], r[1]))
    chosen = sorted(ranked[:params.count], key=lambda r: r[2])  # the best fit plays first
    picks = _avoid_artist_runs([r[3] for r in chosen], last_artist)
    uris = {p.track.uri for p in picks}
    displaced = [u for u in untasted if u not in uris and u in reasons]
    notes = []
    for p in picks:
        uri = p.track.uri
        parts = [f"taste moved the target by (v {shift.valence:+.2f}, a {shift.arousal:+.2f}) for "
                 f"{region} photos ({toward(shift.valence, shift.arousal)})"] \
            if shift.size >= 0.01 else []
        if leaned.get(uri, 0.0) >= NOTABLE:
            parts.append(f"{toward(-shift.valence, -shift.arousal)} than this household wants "
                         f"for {region} photos, so ranked {leaned[uri]:.2f} lower")
        elif leaned.get(uri, 0.0) <= -NOTABLE:
            parts.append(f"{toward(shift.valence, shift.arousal)} still, as this household "
                         f"wants for {region} photos, so ranked {-leaned[uri]:.2f} higher")
        if uri in reasons:
            parts.append(reasons[uri])
        elif uri not in untasted and displaced:
            parts.append(reasons[displaced.pop(0)])
        notes.append("; ".join(parts))
    # select's `order` notes were about its own (wider, untasted) ranking: not this order.
    out = [replace(p, why=p.why + (f"; taste: {note}" if note else ""), order="")
           for p, note in zip(picks, notes, strict=True)]
    return TastedChoice(moved, shift, out, reasons)


def _avoid_artist_runs(picks: list[Pick], last_artist: str | None) -> list[Pick]:
    remaining, out = list(picks), []
    previous = (last_artist or "").strip().lower()
    while remaining:
        pos = next((j for j, p in enumerate(remaining)
                    if not previous or p.track.artist.strip().lower() != previous), 0)
        p = remaining.pop(pos)
        out.append(p)
        previous = p.track.artist.strip().lower()
    return out
