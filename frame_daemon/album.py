"""Soundtracks for albums: `frame-daemon album DIR --playlist NAME` scores every photo in DIR and
saves an MPD stored playlist whose tracks follow the album's mood arc in photo order.

Photo order is the date taken (EXIF), then the name for photos without one, as a slideshow in
date order would show them. The arc is the photos' moods, each smoothed with its neighbours so
one odd photo does not swing the music. Tracks are laid along the playlist's length: each track
gets the mood of the point in the album where it starts, chosen by the daemon's own selection
(diversity, genre filters, no repeats within the playlist).

A playlist is only replaced if this command made it (a record in the state directory says so),
unless --force: a user's own playlist of the same name is never overwritten by surprise.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from frame_daemon.errors import FrameDaemonError, PhotoError
from frame_daemon.mood import Mood
from frame_daemon.music.select import Pick, SelectionParams, TrackPool, select
from frame_daemon.sources.photo_library import walk_photos
from frame_daemon.vision.model import MoodModel, PhotoMood
from frame_daemon.vision.photo import decode_photo

RECORD_FILE = "album-playlists.json"
UNKNOWN_DURATION_S = 240.0  # a track whose length MPD does not know counts as four minutes
MAX_TRACKS = 1000


@dataclass(frozen=True, slots=True)
class AlbumPhoto:
    path: Path
    taken: str | None
    mood: PhotoMood


@dataclass(frozen=True, slots=True)
class Choice:
    """One track of the soundtrack: where it starts, the photo there, the arc's mood there, the
    target on the library's plane (as the daemon places a photo) and the pick."""

    start_s: float
    photo: AlbumPhoto
    arc: Mood
    target: Mood
    pick: Pick


def photo_order_key(photo: AlbumPhoto) -> tuple[bool, str, str]:
    """EXIF date first (photos without one after, by name), then the name."""
    return (photo.taken is None, photo.taken or "", photo.path.name.casefold())


def score_album(folder: Path, model: MoodModel, *, max_pixels: int, max_decode_bytes: int,
                progress: Callable[[int, int], None] | None = None,
                skipped: Callable[[PhotoError], None] | None = None) -> list[AlbumPhoto]:
    """Every photo under `folder`, scored, in photo order; unreadable ones are reported."""
    paths = [Path(p) for p, _ in walk_photos(folder)]
    photos = []
    for done, path in enumerate(paths, 1):
        try:
            decoded = decode_photo(path, 224, max_pixels, max_decode_bytes)
        except PhotoError as exc:
            if skipped:
                skipped(exc)
            continue
        photos.append(AlbumPhoto(path, decoded.taken, model.score_image(decoded.image, str(path))))
        if progress:
            progress(done, len(paths))
    return sorted(photos, key=photo_order_key)


def mood_arc(photos: Sequence[AlbumPhoto]) -> list[Mood]:
    """Each photo's mood averaged with its neighbours' (weighted by the model's confidence)."""
    arc = []
    for i in range(len(photos)):
        window = [p.mood.mood for p in photos[max(0, i - 1): i + 2]]
        weights = [max(m.confidence, 0.05) for m in window]
        total = sum(weights)
        arc.append(Mood.clipped(sum(m.valence * w for m, w in zip(window, weights, strict=True)) / total,
                                sum(m.arousal * w for m, w in zip(window, weights, strict=True)) / total,
                                photos[i].mood.mood.confidence))
    return arc


def _fresh_pick(pool: TrackPool, target: Mood, params: SelectionParams, chosen: list[str],
                last_artist: str | None) -> Pick | None:
    """The best fitting track not yet in the playlist. A playlist is heard in one go, so a
    repeat is worse than a near miss: when every fitting track is used, the distance cap widens
    step by step before a track is allowed twice."""
    cap = params.max_distance
    first: Pick | None = None
    for widen in (1.0, 1.5, 2.0, 3.0, 6.0):
        picks = select(pool, target, dataclasses.replace(params, max_distance=cap * widen),
                       history=chosen, last_artist=last_artist)
        if not picks:
            return None
        first = first or picks[0]
        if picks[0].track.uri not in chosen:
            return picks[0]
    return first


def plan_soundtrack(photos: Sequence[AlbumPhoto], pool: TrackPool, length_s: float,
                    params: SelectionParams,
                    place: Callable[[Mood], Mood] = lambda mood: mood) -> list[Choice]:
    """Tracks until the playlist is `length_s` long, each fitting the arc where it starts.

    place: where a photo mood lands on the library's plane (the daemon's placement)."""
    if not photos:
        return []
    arc = mood_arc(photos)
    params = dataclasses.replace(params, count=1, no_repeat=max(0, len(pool) - 1))
    choices: list[Choice] = []
    chosen: list[str] = []
    start = 0.0
    while start < length_s and len(choices) < MAX_TRACKS:
        i = min(len(photos) - 1, int(start / length_s * len(photos)))
        target = place(arc[i])
        pick = _fresh_pick(pool, target, params, chosen,
                           choices[-1].pick.track.artist if choices else None)
        if pick is None:
            break
        choices.append(Choice(start, photos[i], arc[i], target, pick))
        chosen.append(pick.track.uri)
        start += pick.track.duration or UNKNOWN_DURATION_S
    return choices


# ---------------------------------------------------------------------- the playlists we made
class PlaylistRecord:
    """Which MPD stored playlists this command made (a JSON file in the state directory)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / RECORD_FILE

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            raise FrameDaemonError(f"{self.path}: unreadable ({exc}); move it aside to go on") \
                from None
        return data if isinstance(data, dict) else {}

    def add(self, name: str, folder: Path) -> None:
        data = self.load()
        data[name] = {"folder": str(folder), "saved": datetime.now(UTC).isoformat(timespec="seconds")}
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()


def refuse_to_overwrite(name: str, existing: Sequence[str], ours: dict[str, Any],
                        force: bool) -> str | None:
    """Why the playlist must not be written, or None."""
    if name in existing and name not in ours and not force:
        return (f"MPD already has a playlist '{name}' that frame-daemon did not make; choose "
                "another --playlist name, or add --force to replace it")
    return None


def format_time(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else \
        f"{minutes}:{secs:02d}"


def as_json(folder: Path, playlist: str, length_s: float, photos: Sequence[AlbumPhoto],
            choices: Sequence[Choice]) -> dict[str, Any]:
    return {
        "folder": str(folder), "playlist": playlist, "length_s": length_s,
        "photos": [{"photo": str(p.path), "taken": p.taken, "mood": p.mood.word,
                    "valence": round(p.mood.mood.valence, 3),
                    "arousal": round(p.mood.mood.arousal, 3)} for p in photos],
        "tracks": [{"start_s": round(c.start_s, 1), "photo": c.photo.path.name,
                    "arc": {"valence": round(c.arc.valence, 3), "arousal": round(c.arc.arousal, 3),
                            "mood": c.arc.word},
                    "target": {"valence": round(c.target.valence, 3),
                               "arousal": round(c.target.arousal, 3), "mood": c.target.word},
                    "uri": c.pick.track.uri, "title": c.pick.track.title,
                    "artist": c.pick.track.artist, "distance": round(c.pick.distance, 3),
                    "why": c.pick.why} for c in choices],
    }
