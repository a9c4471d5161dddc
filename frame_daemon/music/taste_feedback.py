"""The household's taste as the loop sees it: verdicts in (buttons, the CLI, MPD's events), the
taste applied to the choice, and the rows of the command table that take verdicts.

The learning is `taste.py` (pure), the keeping `taste_store.py`; this module only decides *what*
a verdict is about and *whether* an MPD event is one:
- a verdict from a person (Fits / Doesn't fit) is about the track the daemon chose that plays now
  and the photo it was chosen for (during a fade to the next photo's music, the photo before);
  with nothing of ours playing it is refused, with the reason;
- a track of ours skipped within `taste.skip_s` of its start: a weak doesn't fit;
- a track of ours played to its end while the photo's mood word held: a very weak fits;
- a person's own track (not ours, but in the index) starting while a photo shows: evidence of what
  this household plays with that mood. Only recorded; their queue is never touched.
A person's own track is never counted as a skip. The loop owns this object (no locks).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frame_daemon.commands import CommandError, CommandRow, press
from frame_daemon.config import TasteConfig
from frame_daemon.events import CommandName
from frame_daemon.loop_state import Choice, LoopState
from frame_daemon.mood import Mood, nearest_word
from frame_daemon.music.select import Pick, SelectionParams, TrackPool
from frame_daemon.music.taste import Arrival, Taste, TasteParams, Verdict, choose, empty_taste, learn
from frame_daemon.music.taste_store import FILE_NAME, TasteStore, TasteStoreError
from frame_daemon.music.track import Track
from frame_daemon.sqlite_schema import SchemaTooNew

log = logging.getLogger(__name__)

# A track that stops within this of its end ended by itself.
END_SLACK_S = 3.0
# Learn afresh at least this often, so old evidence decays while nothing new comes in.
RELEARN_S = 3600.0
# The tracks queued whose choice is remembered (a few choices' worth; only what plays matters).
MAX_CHOSEN = 256


_APOSTROPHES = str.maketrans("", "", "'\u2019\u2018")


def feedback_payload(payload: str) -> bool:
    """`fits` -> True, `doesnt_fit` -> False (also accepted: doesn't fit, doesnt-fit, and the
    typographic apostrophe a phone's keyboard puts in: doesn\u2019t fit)."""
    value = payload.strip().lower().translate(_APOSTROPHES).replace("-", "_").replace(" ", "_")
    if value not in ("fits", "doesnt_fit"):
        raise CommandError(f"expected fits or doesnt_fit, got {payload[:40]!r}")
    return value == "fits"


@dataclass(frozen=True, slots=True)
class Heard:
    """What a verdict is about: the photo on show, the point chosen for, the track playing."""

    photo: Mood
    target: Mood  # before taste
    track: Track
    ours: bool  # the daemon chose it


class TasteFeedback:
    """The store, the learned taste (cached), and the verdicts' sources."""

    def __init__(self, cfg: TasteConfig, state_dir: Path, state: LoopState,
                 is_ours: Callable[[int | None], bool], pool: Callable[[], TrackPool],
                 place: Callable[[Mood], Mood], *, wall: Callable[[], float] = time.time) -> None:
        """state, is_ours, pool: the loop's, read only. place: a photo's mood -> the point tracks
        are chosen for (before taste). wall: Unix time, for the verdicts' dates."""
        self.cfg = cfg
        self.path = state_dir / FILE_NAME
        self.state, self.is_ours, self.pool, self.place = state, is_ours, pool, place
        self.wall = wall
        self.params = TasteParams(cfg.max_shift, cfg.half_life_days)
        self.store: TasteStore | None = None
        self._taste: Taste | None = None
        self._summary: tuple[Taste, dict[str, Any]] | None = None
        self._learned: tuple[int, int, float] = (-1, -1, 0.0)  # store version, count, when
        self._began: dict[int, tuple[float, float]] = {}  # song id -> (loop time began, duration)
        self._before: Heard | None = None
        self._before_id: int | None = None
        self._own_seen: set[tuple[str, int]] = set()  # (uri, photo_seq) of people's own tracks
        # What each track the frame queued was chosen for, by MPD id: the track that plays may
        # have been chosen for the photo before (a fade, a track left to end), not the one on show.
        self._chosen: dict[int, Heard] = {}
        self.move_on: Callable[[], None] = lambda: None  # the daemon's "choose again, now"
        self.write_error = ""  # why the last verdict could not be kept, if it could not

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> None:
        """Open the taste file (a damaged one is replaced); a file that cannot be opened at all
        leaves taste off with one log line, never stops the frame."""
        try:
            self.store = TasteStore(self.path, self.cfg.max_verdicts)
        except (TasteStoreError, SchemaTooNew, OSError, sqlite3.Error) as exc:
            log.error("taste file %s cannot be used (%s); the frame goes on without taste",
                      self.path, exc)
            self.store = None

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    # ------------------------------------------------------------------ the taste
    def taste(self) -> Taste | None:
        """What was learned, now; None when taste is off or has no file."""
        if not self.cfg.enabled or self.store is None:
            return None
        now = self.wall()
        version, count, when = self._learned
        try:
            current = (self.store.version(), len(self.store))
            if self._taste is None or current != (version, count) or now - when > RELEARN_S:
                self._taste = learn(self.store.verdicts(), now, self.params)
                self._learned = (*current, now)
        except Exception as exc:  # a file damaged while open: no taste, the music goes on
            log.error("taste file %s cannot be read (%s); choosing without taste", self.path, exc)
            return None
        return self._taste

    def select(self, pool: TrackPool, target: Mood, params: SelectionParams,
               history: Sequence[str] = (), last_artist: str | None = None) -> list[Pick]:
        """`select` with this household's taste applied (plain `select` when it has none)."""
        return choose(self.taste(), pool, target, params, history, last_artist).picks

    def summary(self) -> dict[str, Any]:
        """For the state Home Assistant reads (published often: made once per learned taste)."""
        taste = self.taste() or empty_taste(self.params)
        if self._summary is None or self._summary[0] is not taste:
            self._summary = (taste, {"enabled": self.cfg.enabled and self.store is not None,
                                     **taste.summary()})
        return self._summary[1]

    def record(self, fits: bool, arrival: Arrival, heard: Heard) -> Verdict | None:
        """Keep one verdict (unless taste is off); a write failure is logged, not raised."""
        if not self.cfg.enabled or self.store is None:
            return None
        t = heard.track
        verdict = Verdict(fits, arrival, self.wall(), heard.photo, heard.target, t.uri, t.mood,
                          t.genre, t.artist, t.title, t.why)
        try:
            self.store.add(verdict)
        except TasteStoreError as exc:  # a full or read-only state directory
            log.error("%s", exc)
            self.write_error = str(exc)
            return None
        self.write_error = ""
        log.info("taste: '%s' %s %s photos (%s)", t.label,
                 "fits" if fits else "doesn't fit", verdict.region, arrival)
        return verdict

    def forget(self) -> None:
        if self.store is None:
            return
        try:
            n = self.store.forget()
        except TasteStoreError as exc:
            raise CommandError(str(exc)) from None
        self._taste = None
        log.info("taste forgotten (%d verdicts)", n)

    # ------------------------------------------------------------------ what plays
    def chose(self, choice: Choice, photo: Mood) -> None:
        """The loop queued `choice` (its picks have their MPD ids) while `photo` was on show."""
        for song_id, pick in zip(choice.ids, choice.picks, strict=False):
            self._chosen.pop(song_id, None)  # (re-inserted last: the oldest go first)
            self._chosen[song_id] = Heard(photo, choice.placement.target, pick.track, True)
        while len(self._chosen) > MAX_CHOSEN:
            del self._chosen[next(iter(self._chosen))]

    def heard(self) -> Heard | str:
        """The track playing now and the photo it was chosen for (for a track the frame did not
        choose, or whose choice is forgotten: the photo on show), or why a verdict cannot apply."""
        st = self.state
        if st.photo is None:
            return "no photo is on show"
        uri = st.track.get("uri")
        if not uri or st.player != "play":
            return "nothing is playing"
        ours = self.is_ours(st.track_id)
        chosen = self._chosen.get(st.track_id) if ours and st.track_id is not None else None
        if chosen is not None and chosen.track.uri == uri:  # (a restarted MPD renumbers its queue)
            return chosen
        pick = None
        if ours and st.choice is not None:
            pick = next((p for p in st.choice.picks if p.track.uri == uri), None)
        if pick is not None:
            track = pick.track
        else:
            i = self.pool().index_of(uri)
            if i is None:
                return f"'{uri}' is not in the track index"
            track = self.pool().tracks[i]
        same_photo = st.choice is not None and st.choice.photo_seq == st.photo_seq
        target = (st.choice.placement.target if same_photo and st.choice is not None
                  else self.place(st.photo.mood))
        return Heard(st.photo.mood, target, track, ours)

    def on_command(self, fits: bool, arrival: Arrival = Arrival.BUTTON) -> None:
        """Fits / Doesn't fit from a person. Doesn't fit then moves the music on at once."""
        if not self.cfg.enabled:
            raise CommandError("feedback refused: taste is switched off (taste.enabled)")
        heard = self.heard()
        if isinstance(heard, str) or not heard.ours:
            why = heard if isinstance(heard, str) else self._not_ours()
            raise CommandError(f"feedback refused: {why}")
        if self.store is None:
            raise CommandError(f"feedback refused: the taste file {self.path} cannot be used")
        kept = self.record(fits, arrival, heard)
        if not fits:
            self.move_on()
        if kept is None:  # the music still moves on; the reason shows in last_error
            raise CommandError(f"feedback not kept: {self.write_error}")

    def _not_ours(self) -> str:
        """Why a track that plays is not this frame's to judge: a person's, or (frames that share
        one MPD) the steering frame's, whose own taste learns from its choices."""
        house = self.state.household
        steerer = house.get("steerer")
        if house and not house.get("steering") and steerer:
            return (f"frame {steerer} steers the household's music and chose the track playing: "
                    "give the verdict there")
        return "the track playing was not chosen by the frame"

    def command_rows(self) -> list[CommandRow]:
        return [CommandRow(CommandName.FEEDBACK, self.on_command, feedback_payload),
                CommandRow(CommandName.FORGET_TASTE, lambda _: self.forget(), press)]

    # ------------------------------------------------------------------ MPD's events
    def seen(self, now: float, elapsed: float, duration: float) -> None:
        """The loop looked at what plays (after any change, its own too): note when it began."""
        song_id = self.state.track_id
        if song_id is not None and song_id not in self._began:
            self._began[song_id] = (now - elapsed, duration)
            if len(self._began) > 64:  # only the last few matter
                del self._began[next(iter(self._began))]

    def before_change(self) -> None:
        """Called before the loop looks at a change MPD reported (not one the loop made)."""
        heard = self.heard()
        self._before_id = self.state.track_id
        self._before = heard if isinstance(heard, Heard) else None

    def after_change(self, now: float) -> None:
        """The change has been looked at: a skip, a track played through, or a person's own track."""
        before, before_id = self._before, self._before_id
        self._before = self._before_id = None
        if not self.cfg.enabled or self.store is None or self.state.track_id == before_id:
            return
        if before is not None and before.ours and before_id in self._began:
            began, duration = self._began[before_id]
            played = now - began
            if played < self.cfg.skip_s and (duration <= 0 or played < duration - END_SLACK_S):
                self.record(False, Arrival.SKIP, before)
            elif duration > 0 and played >= duration - END_SLACK_S and self._mood_held(before):
                self.record(True, Arrival.PLAYED, before)
        now_heard = self.heard()
        if isinstance(now_heard, Heard) and not now_heard.ours:
            key = (now_heard.track.uri, self.state.photo_seq)
            if key not in self._own_seen:
                if len(self._own_seen) > 1000:  # only the photo on show matters
                    self._own_seen.clear()
                self._own_seen.add(key)
                self.record(True, Arrival.OWN, now_heard)

    def _mood_held(self, before: Heard) -> bool:
        photo = self.state.photo
        return photo is not None and nearest_word(photo.mood.valence, photo.mood.arousal) == \
            nearest_word(before.photo.valence, before.photo.arousal)
