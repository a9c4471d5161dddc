"""Choosing tracks for a mood: rank a track pool by distance on the valence-arousal plane (pure).

`TrackPool` turns the track index into numpy arrays once; `select` then answers a query on 100,000
tracks in a few milliseconds. Given the same pool, target, parameters, history and seed, `select`
returns the same picks (with `seed=None` the sampling draws fresh entropy, so only diversity 0 is
deterministic then).

Ranking. A track's score is its plane distance to the target plus a penalty for doubt:

    score = distance + CONFIDENCE_PENALTY * (1 - track.confidence)

so a track whose mood is only guessed (a genre prior, or nothing at all) counts as up to 0.5 farther
than a tagged track at the same point: it is still chosen when nothing surer is near, never before a
sure match. An additive penalty (not a multiplier) keeps a no-information track at the centre of the
plane from winning every query aimed at the centre.

Fit before variety. Only tracks within `max_distance` of the target on the plane are candidates,
so a melancholic track is never queued for a joyful photo just to fill the count. When fewer than
`count` fit, fewer are queued; when nothing fits at all, the single nearest track is taken (the
music should still move towards the photo) and its `why` says it lies beyond the cap.

Filters, in order: genres (include/exclude, never relaxed), the distance cap, then the last
`no_repeat` URIs of the play history. A track's genre may hold several genres separated by ; , / or
|; a filter term matches a genre when it equals it or appears in it as whole words ("rock" matches
"Alternative Rock", not "Rockabilly"), case- and hyphen-insensitively. When the history leaves fewer
than `count` of the fitting tracks, the no-repeat window yields, oldest plays first, and each pick
that was played recently says so in its `why`.

Diversity 0 takes the nearest tracks. Above 0, picks are drawn without replacement from the best
`count * (1 + 10 * diversity)` fitting candidates with probability proportional to exp(-score / T),
T = 0.3 * diversity (Gumbel-top-k sampling): diversity only ever chooses among tracks that fit.
The chosen tracks are then played best first, except that the order avoids the same artist twice
in a row, also against the artist playing now, when another artist's pick is available. "Best" is
the score, not the distance, so a pick may play before a nearer one: each such pick says why in
its `order` (its mood is surer, or the nearer one is by the artist just played).

The track playing now. A change of music need not cut it: when it fits the new target and no
new pick fits better (`keep_playing`), it plays on and the new picks follow it, rather than a
fade-out to a worse match or to the same track queued again.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np

from frame_daemon.mood import Mood
from frame_daemon.music.placement import LibraryShape
from frame_daemon.music.track import MoodSource, Track

# How much farther a track with no confidence in its mood counts than a sure one at the same point.
CONFIDENCE_PENALTY = 0.5
# Softmax temperature at diversity 1; a score gap of this size makes a track e times less likely.
MAX_TEMPERATURE = 0.3
# Extra candidates, per pick, that diversity 1 spreads over.
MAX_SPREAD = 10
# Below this a track's own mood estimate is called out as unsure in `why`.
UNSURE_CONFIDENCE = 0.5
# The default cap on a pick's plane distance from the target: about the distance between two
# neighbouring mood words (calm-serene 0.29, serene-tender 0.47), far below joyful-melancholic (1.75).
DEFAULT_MAX_DISTANCE = 0.5

_GENRE_SEPARATORS = re.compile(r"[;,/|\x00]")


def normalize_genre(text: str) -> str:
    """One genre as the filters compare it: lower case, hyphens and underscores as spaces."""
    return " ".join(text.lower().replace("-", " ").replace("_", " ").split())


def genre_tokens(genre: str) -> tuple[str, ...]:
    """The separate genres in a genre string ("Rock; Pop/Hip-Hop" → rock, pop, hip hop)."""
    tokens = (normalize_genre(part) for part in _GENRE_SEPARATORS.split(genre))
    return tuple(dict.fromkeys(t for t in tokens if t))


def _term_matches(term: str, genre: str) -> bool:
    return term == genre or f" {term} " in f" {genre} "


def _normalize_terms(terms: Iterable[str], name: str) -> frozenset[str]:
    if isinstance(terms, str):
        raise ValueError(f"SelectionParams.{name} must be a set of genre names, not the string {terms!r}")
    out = set()
    for term in terms:
        if not isinstance(term, str):
            raise ValueError(f"SelectionParams.{name} must hold strings, got {term!r}")
        # A term may itself be a multi-genre string, e.g. copied from a tag.
        out.update(genre_tokens(term))
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class SelectionParams:
    """How many tracks to pick and how; genre terms are normalized on construction."""

    count: int = 5  # tracks to pick
    diversity: float = 0.3  # 0 = strictly nearest, 1 = wide random among good matches
    no_repeat: int = 50  # how many of the most recent history URIs not to pick again
    include_genres: frozenset[str] = frozenset()  # only tracks of these genres; empty = all
    exclude_genres: frozenset[str] = frozenset()  # never tracks of these genres
    seed: int | None = None  # for reproducible sampling
    max_distance: float = DEFAULT_MAX_DISTANCE  # only tracks this near the target fit

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ValueError(f"SelectionParams.count must be an integer >= 1, got {self.count!r}")
        if isinstance(self.diversity, bool) or not isinstance(self.diversity, int | float) \
                or not 0.0 <= self.diversity <= 1.0:
            raise ValueError(f"SelectionParams.diversity must lie in [0, 1], got {self.diversity!r}")
        if isinstance(self.no_repeat, bool) or not isinstance(self.no_repeat, int) or self.no_repeat < 0:
            raise ValueError(f"SelectionParams.no_repeat must be an integer >= 0, got {self.no_repeat!r}")
        if isinstance(self.max_distance, bool) or not isinstance(self.max_distance, int | float) \
                or not self.max_distance > 0.0:
            raise ValueError(f"SelectionParams.max_distance must be a number > 0, got {self.max_distance!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ValueError(f"SelectionParams.seed must be an integer or None, got {self.seed!r}")
        include = _normalize_terms(self.include_genres, "include_genres")
        exclude = _normalize_terms(self.exclude_genres, "exclude_genres")
        object.__setattr__(self, "include_genres", include)
        object.__setattr__(self, "exclude_genres", exclude)


@dataclass(frozen=True, slots=True)
class Pick:
    """A chosen track, how far it is from the target, its ranking score, and one line saying why."""

    track: Track
    distance: float  # plane distance to the target
    score: float  # distance plus the confidence penalty; lower is better
    why: str
    fits: bool = True  # within max_distance; False only for the nearest-track fallback
    order: str = ""  # why it plays before a nearer pick of the same choice, when it does


# A row of the track index, as `TrackIndex.rows()` reads it and `Track` holds it: uri, title,
# artist, album, genre, duration, valence, arousal, confidence, source, why.
TrackRow = tuple[str, str, str, str, str, float, float, float, float, str, str]


class _Texts:
    """A column of texts in one UTF-8 buffer: a Python str per track costs some 50 bytes more
    than its text, and 100,000 tracks are six such columns. With `shared`, each distinct text
    (an artist, an album, a genre, an explanation: they repeat) is stored once and each track
    holds its code."""

    __slots__ = ("_blob", "_codes", "_ends")

    def __init__(self, blob: bytes, ends: array, codes: np.ndarray | None) -> None:
        self._blob, self._ends, self._codes = blob, ends, codes

    def __getitem__(self, i: int) -> str:
        k = int(self._codes[i]) if self._codes is not None else i
        return self._blob[self._ends[k - 1] if k else 0:self._ends[k]].decode()

    def codes(self) -> np.ndarray:
        """Each track's code: the same code, the same text."""
        return self._codes if self._codes is not None else np.arange(len(self._ends))

    def distinct(self) -> list[str]:
        """The distinct texts, by code."""
        starts = [0, *self._ends]  # one more than the ends: zip stops at the last
        return [self._blob[a:b].decode() for a, b in zip(starts, self._ends, strict=False)]

    def take(self, keep: np.ndarray) -> _Texts:
        """The texts of the tracks at the indexes `keep`, in that order."""
        if self._codes is not None:
            return _Texts(self._blob, self._ends, self._codes[keep])
        builder = _TextsBuilder(shared=False)
        for i in keep.tolist():
            builder.add(self[i])
        return builder.done()


class _TextsBuilder:
    __slots__ = ("_blob", "_codes", "_ends", "_seen")

    def __init__(self, shared: bool) -> None:
        self._blob = bytearray()
        self._ends = array("q")
        self._codes = array("l") if shared else None
        self._seen: dict[str, int] = {}

    def add(self, text: str) -> None:
        if self._codes is not None:
            code = self._seen.get(text)
            if code is not None:
                self._codes.append(code)
                return
            self._seen[text] = len(self._ends)
            self._codes.append(len(self._ends))
        self._blob += text.encode()
        self._ends.append(len(self._blob))

    def done(self) -> _Texts:
        codes = None if self._codes is None else np.array(self._codes, dtype=np.int32)
        return _Texts(bytes(self._blob), self._ends, codes)


_SOURCES = tuple(MoodSource)
_SOURCE_CODE = {source: code for code, source in enumerate(_SOURCES)}


class TrackPool:
    """The tracks to choose from, as columns for fast queries; build once per index change.

    A frame keeps one pool of its whole library in memory, so a track costs what selection needs
    (numbers in numpy arrays) plus its texts packed in buffers (`_Texts`), about 150 bytes at
    100,000 tracks rather than 600 to 1,000 as `Track` objects; `track(i)` makes the `Track`
    of a pick when it is asked for. The texts are all kept: a pick's `why` names them without I/O.
    """

    def __init__(self, tracks: Iterable[Track]) -> None:
        self._build((t.uri, t.title, t.artist, t.album, t.genre, t.duration, t.mood.valence,
                     t.mood.arousal, t.mood.confidence, t.source, t.why) for t in tracks)

    @classmethod
    def from_tracks(cls, tracks: Iterable[Track]) -> TrackPool:
        return cls(tracks)

    @classmethod
    def from_rows(cls, rows: Iterable[TrackRow]) -> TrackPool:
        """A pool straight from the index's rows (`TrackIndex.rows()`), one at a time: no
        `Track` object is made for a track that is never picked."""
        pool = cls.__new__(cls)
        pool._build(rows)
        return pool

    def _build(self, rows: Iterable[TrackRow]) -> None:
        uri, title = _TextsBuilder(shared=False), _TextsBuilder(shared=False)
        artist, album, genre, why = (_TextsBuilder(shared=True) for _ in range(4))
        numbers = [array("d") for _ in range(4)]  # duration, valence, arousal, confidence
        source = array("b")
        artist_keys: dict[str, int] = {}
        artist_codes = array("l")
        previous_uri, in_order = "", True
        for row in rows:
            uri.add(row[0])
            in_order = in_order and row[0] >= previous_uri
            previous_uri = row[0]
            title.add(row[1])
            artist.add(row[2])
            album.add(row[3])
            genre.add(row[4])
            for column, value in zip(numbers, row[5:9], strict=True):
                column.append(value)
            source.append(_SOURCE_CODE[MoodSource(row[9])])
            why.add(row[10])
            # Artists as small integers (-1 = unknown, which never counts as "the same artist").
            key = row[2].strip().lower()
            artist_codes.append(artist_keys.setdefault(key, len(artist_keys)) if key else -1)
        self._uri, self._title, self._artist_text = uri.done(), title.done(), artist.done()
        self._album, self._genre, self._why = album.done(), genre.done(), why.done()
        self._source = np.array(source, dtype=np.int8)
        self.duration, self.valence, self.arousal, self.confidence = (
            np.array(column, dtype=np.float64) for column in numbers)
        self.artist = np.array(artist_codes, dtype=np.int32)
        self._artist_codes = artist_keys
        # URIs sorted, for `index_of` (a dict of 100,000 URIs costs 10 MB). The index lists its
        # tracks in URI order already; another order is sorted once here.
        n = len(self.valence)
        self._by_uri = None if in_order else np.array(
            sorted(range(n), key=self._uri.__getitem__), dtype=np.int32)
        self._finish()

    def _finish(self) -> None:
        # Cached once: the doubt penalty does not depend on the query.
        self.penalty = CONFIDENCE_PENALTY * (1.0 - self.confidence)
        # The library's distribution, for placing a photo's mood in it (music.placement).
        self.shape = LibraryShape.of(self.valence, self.arousal, self.confidence)
        # Each distinct genre text's separate genres, for the genre filters.
        self._genre_tokens = [genre_tokens(g) for g in self._genre.distinct()]

    def __len__(self) -> int:
        return len(self.valence)

    @property
    def tracks(self) -> Sequence[Track]:
        """The tracks, each made when it is read (`track(i)`)."""
        return _TrackView(self)

    def track(self, i: int) -> Track:
        return Track(uri=self._uri[i], title=self._title[i], artist=self._artist_text[i],
                     album=self._album[i], genre=self._genre[i], duration=float(self.duration[i]),
                     mood=Mood(float(self.valence[i]), float(self.arousal[i]),
                               float(self.confidence[i])),
                     source=_SOURCES[self._source[i]], why=self._why[i])

    def uri(self, i: int) -> str:
        return self._uri[i]

    def title(self, i: int) -> str:
        return self._title[i]

    def genres(self, i: int) -> tuple[str, ...]:
        """The separate genres of the track at `i`."""
        return self._genre_tokens[int(self._genre.codes()[i])]

    def artist_code(self, artist: str | None) -> int:
        """The artist's code in this pool, or -1 if unknown here."""
        return self._artist_codes.get((artist or "").strip().lower(), -1)

    def index_of(self, uri: str) -> int | None:
        """Where the track `uri` is in the pool (the last one, should it be there twice)."""
        n = len(self)
        if self._by_uri is None:
            k = bisect.bisect_right(range(n), uri, key=self._uri.__getitem__) - 1
            return k if k >= 0 and self._uri[k] == uri else None
        by_uri = self._by_uri
        k = bisect.bisect_right(range(n), uri, key=lambda j: self._uri[int(by_uri[j])]) - 1
        return int(by_uri[k]) if k >= 0 and self._uri[int(by_uri[k])] == uri else None

    def without(self, uris: Iterable[str]) -> TrackPool:
        """The same pool less the tracks `uris` (those MPD refused)."""
        gone = {i for i in map(self.index_of, set(uris)) if i is not None}
        if not gone:
            return self
        keep = np.array([i for i in range(len(self)) if i not in gone], dtype=np.int64)
        pool = TrackPool.__new__(TrackPool)
        pool._uri, pool._title = self._uri.take(keep), self._title.take(keep)
        pool._artist_text, pool._album = self._artist_text.take(keep), self._album.take(keep)
        pool._genre, pool._why = self._genre.take(keep), self._why.take(keep)
        pool._source, pool.duration = self._source[keep], self.duration[keep]
        pool.valence, pool.arousal = self.valence[keep], self.arousal[keep]
        pool.confidence, pool.artist = self.confidence[keep], self.artist[keep]
        pool._artist_codes = self._artist_codes
        # `keep` ascends, so a kept track's new index is its place in `keep`.
        pool._by_uri = None if self._by_uri is None else np.searchsorted(
            keep, self._by_uri[np.isin(self._by_uri, keep)]).astype(np.int32)
        pool._finish()
        return pool

    def genre_mask(self, terms: frozenset[str]) -> np.ndarray:
        """Boolean mask of the tracks having at least one genre that one of the terms matches."""
        matching = [code for code, tokens in enumerate(self._genre_tokens)
                    if any(_term_matches(term, g) for term in terms for g in tokens)]
        return np.isin(self._genre.codes(), matching)


class _TrackView(Sequence[Track]):
    """A pool's tracks as a sequence, each `Track` made when it is read."""

    def __init__(self, pool: TrackPool) -> None:
        self._pool = pool

    def __len__(self) -> int:
        return len(self._pool)

    @overload
    def __getitem__(self, i: int) -> Track: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Track]: ...
    def __getitem__(self, i: int | slice) -> Track | Sequence[Track]:
        if isinstance(i, slice):
            return [self._pool.track(k) for k in range(len(self._pool))[i]]
        if not -len(self._pool) <= i < len(self._pool):
            raise IndexError(i)
        return self._pool.track(i % len(self._pool))


def select(pool: TrackPool, target: Mood, params: SelectionParams,
           history: Sequence[str] = (), last_artist: str | None = None) -> list[Pick]:
    """Up to `params.count` fitting tracks for the target mood, best first; see the module docstring."""
    n = len(pool)
    if n == 0:
        return []
    allowed = np.ones(n, dtype=bool)
    if params.include_genres:
        allowed &= pool.genre_mask(params.include_genres)
    if params.exclude_genres:
        allowed &= ~pool.genre_mask(params.exclude_genres)
    if not allowed.any():
        return []
    distance = np.hypot(pool.valence - target.valence, pool.arousal - target.arousal)
    fits = allowed & (distance <= params.max_distance)
    fallback = not fits.any()
    if fallback:
        # Nothing fits: the one nearest track (by score) rather than silence or a list of misfits.
        fits = np.zeros(n, dtype=bool)
        fits[int(np.argmin(np.where(allowed, distance + pool.penalty, np.inf)))] = True
    n_fit = int(fits.sum())

    # Recently played fitting tracks, most recent first, each once.
    recent: list[int] = []
    if params.no_repeat:
        seen: set[int] = set()
        # islice over reversed(): works for a deque too, and reads only the window.
        for uri in itertools.islice(reversed(history), params.no_repeat):
            i = pool.index_of(uri)
            if i is not None and i not in seen and fits[i]:
                seen.add(i)
                recent.append(i)
    want = min(params.count, n_fit)
    shortfall = want - (n_fit - len(recent))
    # Relax the history, never the fit or the genres: the oldest plays come back first.
    readmitted = set(recent[len(recent) - shortfall:]) if shortfall > 0 else set()
    eligible = fits
    if recent:
        eligible = fits.copy()
        eligible[[i for i in recent if i not in readmitted]] = False

    score = np.where(eligible, distance + pool.penalty, np.inf)
    order = _preference_order(score, params)
    chosen = sorted(order[:want], key=lambda i: (score[i], i))  # the best fit plays first
    chosen = _avoid_artist_runs(chosen + order[want:], pool.artist, pool.artist_code(last_artist), want)
    return [_pick(pool.track(i), target, float(distance[i]), float(score[i]), i in readmitted,
                  params.max_distance, fallback, _order_note(pool, chosen[k:], distance, score))
            for k, i in enumerate(chosen)]


def keep_playing(pool: TrackPool, target: Mood, params: SelectionParams, uri: str | None,
                 picks: Sequence[Pick]) -> Pick | None:
    """The track playing now (`uri`), as a pick for `target`, when a change of music should let
    it play on: it fits the target (indexed, allowed by the genre filters, within
    `max_distance`) and none of the new `picks` scores better. Cutting it would only bring a
    worse match, or the same track again. None otherwise (or when nothing plays)."""
    i = pool.index_of(uri) if uri else None
    if i is None:
        return None
    genres = pool.genres(i)
    if params.include_genres and not any(_term_matches(t, g) for t in params.include_genres
                                         for g in genres):
        return None
    if any(_term_matches(t, g) for t in params.exclude_genres for g in genres):
        return None
    track = pool.track(i)
    distance = math.hypot(track.mood.valence - target.valence, track.mood.arousal - target.arousal)
    score = distance + float(pool.penalty[i])
    if distance > params.max_distance or any(p.score < score for p in picks if p.track.uri != uri):
        return None
    pick = _pick(track, target, distance, score, False, params.max_distance, False, "")
    return Pick(track, distance, score, pick.why + "; playing now and fits best, so kept",
                order="playing already, and nothing fits the new photo better: kept, not cut")


def _order_note(pool: TrackPool, rest: list[int], distance: np.ndarray, score: np.ndarray) -> str:
    """Why rest[0] plays before a nearer pick that follows it in `rest`, or "" if none does."""
    first, later = rest[0], rest[1:]
    nearer = [j for j in later if distance[j] < distance[first] - 1e-9]
    if not nearer:
        return ""
    j = min(nearer, key=lambda k: distance[k])
    name = pool.title(j) or pool.uri(j)
    if score[first] <= score[j]:
        return (f"before the nearer '{name}' ({distance[j]:.2f}): its mood is surer "
                f"(confidence {pool.confidence[first]:.2f} against {pool.confidence[j]:.2f})")
    return f"before the nearer '{name}' ({distance[j]:.2f}): not the same artist twice in a row"


def _preference_order(score: np.ndarray, params: SelectionParams) -> list[int]:
    """Eligible track indexes in the order they should be picked (sampled when diversity > 0)."""
    n_eligible = int(np.isfinite(score).sum())
    spread = math.ceil(params.count * (1 + MAX_SPREAD * params.diversity))
    # Enough candidates beyond the picks for the artist rule to find another artist.
    m = min(n_eligible, max(spread, 4 * params.count + 10))
    top = np.argpartition(score, m - 1)[:m] if m < len(score) else np.arange(len(score))
    top = top[np.argsort(score[top], kind="stable")][:m]
    if params.diversity == 0:
        return top.tolist()
    k = min(spread, m)
    rng = np.random.default_rng(params.seed)
    keys = -score[top[:k]] / (MAX_TEMPERATURE * params.diversity) + rng.gumbel(size=k)
    sampled = top[:k][np.argsort(-keys, kind="stable")]
    return sampled.tolist() + top[k:].tolist()


def _avoid_artist_runs(order: list[int], artists: np.ndarray, last: int, count: int) -> list[int]:
    """Take picks in preference order, skipping ahead when the next would repeat the previous artist."""
    remaining = list(order)
    chosen: list[int] = []
    previous = last
    while remaining and len(chosen) < count:
        pos = 0
        if previous >= 0:
            pos = next((j for j, i in enumerate(remaining) if artists[i] != previous), 0)
        i = remaining.pop(pos)
        chosen.append(i)
        previous = int(artists[i])
    return chosen


def _pick(track: Track, target: Mood, distance: float, score: float, repeated: bool,
          max_distance: float, fallback: bool, order: str) -> Pick:
    why = (f"{target.word} target (v {target.valence:.2f}, a {target.arousal:.2f}) → '{track.label}' "
           f"at distance {distance:.2f}; {track.why}")
    if track.mood.confidence < UNSURE_CONFIDENCE:
        why += f" (unsure, confidence {track.mood.confidence:.2f})"
    if fallback:
        why += f"; no track within {max_distance:.2f}, so the nearest one"
    if repeated:
        why += "; played recently, repeated because too few other tracks fit"
    return Pick(track, distance, score, why, fits=not fallback, order=order)
