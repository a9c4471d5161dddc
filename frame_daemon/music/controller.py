"""Make MPD play the current decision: choose the tracks, queue them, fade, and keep MPD's state.

The loop decides *when* the music changes (the follow policy); this controller carries a decision
out. It chooses tracks for the target mood (selection parameters from the settings in effect),
hands them to MPD through the queue keeper (choosing again when MPD refuses every track), fades
the playing track out for a PLAY_NOW, and owns the MPD connection's state on the loop side: every
`MpdUnavailable` ends in `_mpd_lost`, and a decision MPD was not there for is kept (`pending`)
and carried out when the session hands over a new connection.

It writes the music half of `LoopState` (choice, why, pending, track, player, mpd_up) and calls
`publish` when Home Assistant should hear of it. The household's taste (`taste_feedback`) plugs in
at `choose`, and hears of every change MPD reports. Owned by the loop thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
from collections.abc import Callable

from frame_daemon.config import Config
from frame_daemon.events import Event, HouseholdNews, MpdConnection, MpdSessionChanged
from frame_daemon.follow import Action, Decision, FollowMode
from frame_daemon.follow import force as follow_force
from frame_daemon.loop_state import Choice, LoopState
from frame_daemon.mood import Mood
from frame_daemon.mqtt_link import MqttLink
from frame_daemon.music import household as hh
from frame_daemon.music.household_link import ECHO_WAIT_S, HouseholdLink, group_topic
from frame_daemon.music.live_pool import LivePool
from frame_daemon.music.mpd.client import MpdNoSuchSong, MpdUnavailable
from frame_daemon.music.mpd.fade import FADE_STEP_S, Fader, OwedVolumeFile
from frame_daemon.music.mpd.queue_keeper import QueueKeeper
from frame_daemon.music.mpd.session import MpdSession
from frame_daemon.music.placement import PhotoReference, place
from frame_daemon.music.select import Pick, SelectionParams, TrackPool, keep_playing
from frame_daemon.music.taste_feedback import TasteFeedback

log = logging.getLogger(__name__)


def selection_params(cfg: Config, seed: int | None = None) -> SelectionParams:
    f = cfg.follow
    return SelectionParams(count=f.tracks, diversity=f.diversity, no_repeat=f.no_repeat,
                           include_genres=frozenset(f.include_genres),
                           exclude_genres=frozenset(f.exclude_genres), seed=seed,
                           max_distance=f.max_distance)


class MusicController:
    """Makes MPD play the current decision. The loop calls, by what happened:

    - a follow decision: `carry_out`; a new track pool: `on_pool`; the next-track button:
      `next_track`; a person took over (as the loop judges it): `cancel_fade`;
    - MPD's news: `on_player_changed`, `on_connection`, `on_session` (and `adopt` at start);
    - its timers: `next_wake` and `on_time` (the fade's steps); at stop: `give_volume_back`.

    `choose` is the choice alone (no MPD), with the household's taste (`taste`) applied. The
    loop opens and closes `taste` and routes its commands.
    """

    def __init__(self, cfg: Config, state: LoopState, session: MpdSession, tracks: LivePool, *,
                 clock: Callable[[], float], publish: Callable[[], None],
                 report_error: Callable[[str], None],
                 refresh_index: Callable[[], None] = lambda: None,
                 person_took_over: Callable[[str], None] = lambda change: None,
                 rng: random.Random | None = None) -> None:
        """publish: tell the house the state changed; report_error: an error to publish;
        refresh_index: ask the index worker to catch up with MPD's database; person_took_over:
        a person changed what MPD plays (the caller decides whether following steps back)."""
        self.cfg = cfg
        self.state = state
        self.session = session
        self.mpd = session.link  # connected only by the session, never on the loop
        self.tracks = tracks
        self.clock = clock
        self._publish = publish
        self._report_error = report_error
        self._refresh_index = refresh_index
        self._person_took_over = person_took_over
        self._rng = rng or random.Random()
        self.keeper = QueueKeeper(self.mpd, clock=clock)
        self.fader = Fader(self.mpd, cfg.follow.fade_s,
                           OwedVolumeFile.in_directory(cfg.state_directory))
        self.reference = PhotoReference()
        self._fade_step_at = 0.0
        # The household's taste: verdicts in, applied to every choice (music/taste_feedback.py).
        self.taste = TasteFeedback(cfg.taste, cfg.state_directory, state, self.keeper.is_ours,
                                   lambda: self.tracks.pool,
                                   lambda mood: place(mood, self.tracks.pool.shape,
                                                      cfg.follow.library_fit, self.reference).target)
        self.taste.move_on = self.choose_again
        # Frames sharing this MPD: who steers (None: no household, this frame steers alone).
        self.household: hh.HouseholdState | None = None
        self._household_link: HouseholdLink | None = None
        self._household_seq = 0  # the photo the household last heard of
        self._household_tick_at = 0.0
        self._told_following = True  # whether the household last heard that this frame follows
        self._clock_told: dict[str, bool] = {}  # frames whose clock was named as off (ahead?)
        self._steer_told: dict[str, str] = {}  # frames named as set to another household.steer
        self._blend_for: Mood | None = None  # with steer = "blend": what this steerer's music is for
        self._handed: tuple[tuple[int, str], ...] = ()  # the entries we last handed over
        self._crowd_ignored = 0  # presences ignored because the household is full
        # Members whose presence was cleared: (when, our connection's count of connects). A broker
        # that shuts down sends every frame's Last Will as it goes: a clearing followed by the loss
        # of our own connection is not taken for the member's death.
        self._gone: dict[str, tuple[float, int]] = {}
        self._told_heard = True  # whether the household last heard that our link is up
        # Signs of life (hh.silent), by the loop's clock: each member's last `said_at` and when we
        # heard it change; since when our link has been up (and its count of connects then); when
        # our own presence is due again.
        self._beats: dict[str, tuple[float, float]] = {}
        self._listening: tuple[float, int] = (0.0, -1)
        self._beat_at = 0.0
        self._looked_at = 0.0  # when the loop last looked for silent members
        self._echo_checked = False  # whether our presence was looked for on the broker

    @property
    def fading_s(self) -> float | None:
        """The length of the fade-out under way, if one is."""
        return self.cfg.follow.fade_s if self.fader.active else None

    # ------------------------------------------------------------------ decisions
    def carry_out(self, decision: Decision) -> bool:
        """Carry out a follow decision; True if state was published."""
        self._household_photo()
        if decision.action in (Action.KEEP, Action.PUBLISH_ONLY):
            return False
        if not self.steering:
            return self._following(decision)
        decision = self._household_target(decision)
        log.info("follow: %s", decision.reason)
        self._queue_for(decision.target, play_now=decision.action == Action.PLAY_NOW,
                        reason=decision.reason)
        return True

    def on_pool(self, pool: TrackPool | None) -> bool:
        """A new pool from the index worker (None: the worker could not build one, and the pool
        stays: reading the index here would hold the loop for seconds in a big library); then
        carry out a waiting decision if it now can be. True if state was published."""
        if pool is not None:
            self.tracks.use(pool)
        self.state.index_size = len(self.tracks)
        pending = self.state.pending
        if pending is None or not len(self.tracks) or not self.mpd.connected:
            return False
        self._queue_for(pending.target, pending.action == Action.PLAY_NOW, pending.reason)
        return True

    def choose(self, target: Mood, reason: str, play_now: bool = False,
               may_keep: bool = True) -> tuple[Choice, Pick | None]:
        """The placement of `target` in this library and the tracks that fit it (nothing is
        sent to MPD); no picks when nothing fits. For a change that would cut what plays
        (`play_now`), also the track playing now when it should play on instead: it fits and
        no new pick fits better (None otherwise, and always when `may_keep` is False: a person
        said it does not fit); the picks then follow it."""
        st = self.state
        pool = self.tracks.pool
        params = dataclasses.replace(
            selection_params(self.cfg, self._rng.randrange(2**31)), diversity=st.diversity,
            include_genres=frozenset(st.include_genres),
            exclude_genres=frozenset(st.exclude_genres),
            # In a small library a window of 50 would soon leave only the worst matches: never
            # keep more than a third of it out.
            no_repeat=min(self.cfg.follow.no_repeat, len(pool) // 3))
        placement = place(target, pool.shape, self.cfg.follow.library_fit, self.reference)
        # What plays now counts as the most recent track, and a new choice does not queue it
        # again (unless it is the only track that fits). Ask MPD: the idle watcher's news of a
        # track change may still be on its way.
        if self.mpd.connected:
            self.refresh_track()
        playing = [st.track["uri"]] if st.track.get("uri") else []
        # Nor a track someone else queued to come: it would play twice.
        picks = self.taste.select(pool, placement.target, params,
                                  history=[*st.history, *self.keeper.others_upcoming, *playing],
                                  last_artist=st.track.get("artist"))
        others = [p for p in picks if p.track.uri not in playing]
        # Not a track already fading out: that change is under way.
        kept = (keep_playing(pool, placement.target, params, st.track.get("uri"), others)
                if may_keep and play_now and st.player == "play" and not self.fader.active else None)
        # Without other picks, the track playing is queued again only when it should not play on.
        picks = others or ([] if kept else picks)
        return Choice(st.photo_seq, reason, placement, tuple(picks)), kept

    def _queue_for(self, target: Mood, play_now: bool, reason: str, fade: bool = True,
                   retries: int = 2, may_keep: bool = True) -> None:
        """Choose tracks for `target` and hand them to MPD (or remember the decision for when
        it can be carried out). retries: how often to choose again when MPD refuses them all;
        may_keep: whether the track playing may play on (see `choose`)."""
        st = self.state
        choice, kept = self.choose(target, reason, play_now, may_keep)
        if kept is not None and not choice.picks:  # nothing else fits: it plays on, not queued again
            st.choice = dataclasses.replace(choice, picks=(kept,), ids=(
                () if st.track_id is None else (st.track_id,)))
            self._chose(st.choice)
            st.pending, st.why = None, ""
            log.info("keeping %s: it fits %s best", kept.track.label, choice.placement.describe())
            self._publish()
            return
        # A change that would cut what plays for a worse match lets it play on; the new picks
        # follow it.
        play_now = play_now and kept is None
        decision = Decision(Action.PLAY_NOW if play_now else Action.QUEUE_NEXT, target, reason)
        if not choice.picks:
            if len(self.tracks) and (st.include_genres or st.exclude_genres):
                st.why = f"{reason}; no track in the index matches the genre filters"
            elif not len(self.tracks) and self.tracks.refused:
                st.why = (f"{reason}; MPD has none of the indexed tracks any more "
                          f"({self.tracks.refused} gone since the last index); refreshing the index")
            else:
                st.why = f"{reason}; no tracks in the index yet"
            log.warning("no tracks to queue (%s; index has %d); will retry when it changes",
                        st.why.rsplit("; ", 1)[-1], len(self.tracks))
            st.pending = decision
            self._publish()
            return
        if not self.mpd.connected:
            st.pending = decision
            st.why = f"{reason}; MPD unavailable, will queue when it is back"
            log.info("MPD unavailable; will apply the decision when it is back")
            self._publish()
            return
        self._apply(choice, decision, fade, retries)

    def _chose(self, choice: Choice) -> None:
        """Tell taste what these tracks were chosen for: a verdict on one of them is about that
        photo, also once the next photo is on show and this track fades out for its music."""
        photo = self.state.photo
        self.taste.chose(choice, photo.mood if photo is not None else choice.placement.photo)

    def _apply(self, choice: Choice, decision: Decision, fade: bool, retries: int) -> None:
        """Queue the choice's tracks; for PLAY_NOW fade out what plays and start them.

        A track a person put on is never cut short: the new music waits until it ends."""
        st = self.state
        if self._person_came_first():
            log.info("not queueing for %s: a person changed MPD's queue or player first",
                     choice.placement.describe())
            self._publish()
            return
        uris = choice.uris
        may_fade = fade  # for a second choice, should MPD refuse every track of this one
        try:
            status = self.mpd.status()
            persons_track = status.state == "play" and not self.keeper.is_ours(status.song_id)
            skip = decision.action == Action.PLAY_NOW and not persons_track
            fade = (skip and fade and status.state == "play" and self.cfg.follow.fade_s > 0
                    and (status.volume is not None or self.fader.active))
            if self.fader.active and not skip:
                self.fader.cancel()
            queued = self.keeper.apply(uris, play_now=skip and not fade)
            fade = fade and bool(queued.ids)  # nothing to fade to when MPD refused every track
            if fade:
                self.fader.begin(queued.ids[0], self.clock(), status.volume or 0)
                self._fade_step_at = self.clock()
        except MpdUnavailable as exc:
            st.pending = decision  # applied when MPD is back
            self._mpd_lost(str(exc))
            self._publish()
            return
        missing = {uri for uri, _ in queued.missing}
        if missing:
            self.tracks.refuse(missing)
            self.state.index_size = len(self.tracks)
            self._refresh_index()  # let the index catch up with MPD's database
            if not queued.ids:  # every track chosen is gone from MPD: choose again without them
                if retries > 0:
                    self._queue_for(decision.target, decision.action == Action.PLAY_NOW,
                                    decision.reason, may_fade, retries - 1)
                    return
                st.pending = decision
                st.why = (f"{decision.reason}; MPD refused every track chosen, will retry when "
                          "the index is refreshed")
                self._publish()
                return
        st.pending, st.why = None, ""
        if missing:  # what is published describes what MPD actually holds
            kept = tuple(p for p in choice.picks if p.track.uri not in missing)
            choice = dataclasses.replace(choice, picks=kept)
        choice = dataclasses.replace(choice, ids=tuple(queued.ids))
        st.choice = choice
        self._chose(choice)
        st.history.extend(uris)
        log.info("%s %d tracks for %s", "fading to" if fade else "playing" if skip else "queued",
                 len(choice.picks), choice.placement.describe())
        for p in choice.picks:
            log.info("  %s (%s)", p.track.label, p.why)
        self.refresh_track()
        self._say_presence()  # the entries the next steerer takes over
        self._publish()

    # ------------------------------------------------------------------ the fade
    def next_wake(self) -> float | None:
        """When the controller's timed work (a fade step) is next due, if any is."""
        return self._fade_step_at if self.fader.active else None

    def on_time(self, now: float) -> None:
        """The timed work due by `now`: a fade step, the household's timers, MPD's keep-alive."""
        self._household_tick(now)
        if self.mpd.connected:
            try:
                self.mpd.keep_alive()  # between photos, the link may be silent for an hour
            except MpdUnavailable as exc:
                self._mpd_lost(str(exc))
        if not (self.fader.active and now >= self._fade_step_at):
            return
        self._fade_step_at = now + FADE_STEP_S
        try:
            self._fade_step(now)
        except Exception:
            # A step that fails in a way nobody foresaw must neither leave the music quiet nor
            # fail again every FADE_STEP_S: the fade ends, the volume is given back.
            with contextlib.suppress(Exception):
                self.fader.cancel()
            raise

    def _fade_step(self, now: float) -> None:
        try:
            started = self.fader.step(now)
            if started:
                self.keeper.snapshot()  # our own skip, not a person's
        except MpdNoSuchSong as exc:
            self._track_to_fade_to_gone(str(exc))
            return
        except MpdUnavailable as exc:
            # The new tracks may be gone with MPD: choose again when it is back, without a fade.
            if self.state.choice is not None:
                self.state.pending = Decision(Action.PLAY_NOW, self.state.choice.placement.photo,
                                              self.state.choice.reason)
            self._mpd_lost(str(exc))
            self._publish()
            return
        if started:
            self.refresh_track()
            self._publish()

    def _track_to_fade_to_gone(self, why: str) -> None:
        """A person deleted the queue entry the fade was to start: choose again for the same
        photo and start it at once (what played is faded out already), then the volume is back."""
        choice = self.state.choice
        log.warning("the track to fade to is gone from the queue (%s); choosing again", why)
        try:
            if choice is not None:
                self._queue_for(choice.placement.photo, play_now=True, reason=choice.reason,
                                fade=False)
        finally:
            self.cancel_fade()

    def cancel_fade(self) -> None:
        """A person took over: the new music waits, their volume is back."""
        if self.fader.active or self.fader.owed_volume is not None:
            try:
                self.fader.cancel()
            except MpdUnavailable as exc:
                self._mpd_lost(str(exc))

    def give_volume_back(self) -> None:
        """On stop: a fade cut short must not leave the user's music quiet."""
        try:
            self.fader.cancel()
        except MpdUnavailable as exc:
            log.warning("could not restore the volume to %s: %s", self.fader.owed_volume, exc)

    # ------------------------------------------------------------------ MPD's state
    def adopt(self) -> None:
        """Take the connection the MPD session made (if one waits) and catch up with MPD."""
        if not self.session.adopt():
            return
        try:
            self.keeper.snapshot()
            self.fader.restore()  # a fade that MPD or the connection cut short
        except MpdUnavailable as exc:
            self._mpd_lost(str(exc))
            return
        was_up, self.state.mpd_up = self.state.mpd_up, True
        if self.state.error and "MPD" in self.state.error:
            self.state.error = None
        self.refresh_track()
        if self.state.pending is not None:
            pending = self.state.pending
            log.info("MPD is back; applying the last decision")
            self._queue_for(pending.target, pending.action == Action.PLAY_NOW, pending.reason,
                            fade=False)
        elif not was_up:
            self._publish()

    def _mpd_lost(self, message: str) -> None:
        first = self.state.mpd_up or self.state.error != message
        self.state.mpd_up = False
        self.fader.lost()
        self.session.lost()  # its thread reconnects, with backoff
        if first:
            log.warning("%s; retrying with backoff", message)
            self._report_error(message)

    def on_connection(self, event: MpdConnection) -> None:
        if event.connected and not self.mpd.connected:
            self.session.retry_now()  # MPD answers again: no need to wait out the backoff
        elif not event.connected and self.mpd.connected:
            # The idle link noticed first; our command link will find out on its next use.
            self._mpd_lost(event.error)

    def on_session(self, event: MpdSessionChanged) -> None:
        if event.ready:
            self.adopt()
        elif not self.mpd.connected:  # a failure reported before a connection was adopted is old
            self._mpd_lost(event.error)

    def on_player_changed(self) -> None:
        """MPD's player or queue changed: tell a person's change from MPD's own progress."""
        if self.mpd.connected and self._read_news() is not None:
            self._publish()

    def _read_news(self) -> bool | None:
        """Compare MPD with our last snapshot: True when a person's change suspended following,
        None when MPD was lost."""
        # Only the steering frame learns taste from MPD's news: what a follower sees change is
        # the steerer's doing (its tracks, its skips), neither this frame's choice nor a person's.
        steering = self.steering
        if steering:
            self.taste.before_change()  # what played, before the change is looked at
        try:
            change = self.keeper.external_change()
        except MpdUnavailable as exc:
            self._mpd_lost(str(exc))
            return None
        was_following = self.state.following
        if change and steering:  # a follower sees the steerer's edits, not a person's
            self._person_took_over(change)
        self.refresh_track()
        if steering:
            self.taste.after_change(self.clock())  # a skip, a track played through, a person's own
        return was_following and not self.state.following

    def _person_came_first(self) -> bool:
        """Before an edit of ours, read MPD's news: a person's edit made just before it, whose
        event the loop has not read yet, would otherwise be taken into the snapshot after our
        edit, unnoticed, and our edit would override it. True when it suspended following (then
        our edit is not made)."""
        return self.mpd.connected and bool(self._read_news())

    def next_track(self) -> None:
        if not self.mpd.connected:
            return
        try:
            self.mpd.next()
            self.keeper.snapshot()
        except MpdUnavailable as exc:
            self._mpd_lost(str(exc))

    def choose_again(self) -> None:
        """Doesn't fit: a new choice for the photo on show, at once, without the track playing."""
        if self.state.photo is not None:
            self._queue_for(self.state.photo.mood, play_now=True, may_keep=False,
                            reason=f"said not to fit the {self.state.photo.word} photo; chose again")

    def refresh_track(self) -> None:
        st = self.state
        try:
            current = self.mpd.current()
            status = self.mpd.status()
        except MpdUnavailable as exc:
            self._mpd_lost(str(exc))
            return
        st.track = ({"uri": current.uri, "title": current.title, "artist": current.artist}
                    if current else {})
        st.track_id = current.id if current else None
        st.player = status.state
        st.remaining_s = (max(0.0, status.duration - status.elapsed)
                          if current and status.duration > 0 else None)
        self.taste.seen(self.clock(), status.elapsed, status.duration)

    # ------------------------------------------------------------------ the household
    # Frames that share this MPD agree over MQTT which one steers (music/household.py); only
    # that one edits the queue. Kept apart from the rest so that taste can hook in beside it.
    @property
    def steering(self) -> bool:
        """Whether this frame may edit the queue (alone, it always may)."""
        return self.household is None or self.household.steering

    def start_household(self, post: Callable[[Event], None],
                        wall: Callable[[], float]) -> Callable[[], None]:
        """Join the frames that share this MPD (if `household.enabled`); returns the stop."""
        if not self.cfg.household.enabled:
            return lambda: None
        self._wall = wall
        self._household_link = HouseholdLink(self.cfg, post)
        self.household = hh.start(self.cfg.mqtt.device_id, wall(), hh.Steer(self.cfg.household.steer))
        self._household_link.start()
        self._say_presence()
        log.info("household %s: joining (steer: %s)", self._household_link.group,
                 self.cfg.household.steer)
        return self._household_link.stop

    def on_news(self, event: MpdConnection | MpdSessionChanged | HouseholdNews) -> None:
        """What MPD's threads and the other frames of the household tell the loop."""
        if isinstance(event, MpdConnection):
            self.on_connection(event)
        elif isinstance(event, MpdSessionChanged):
            self.on_session(event)
        else:
            self.on_household(event)

    def on_household(self, event: HouseholdNews) -> None:
        if self.household is None:
            return
        now, hold = self._wall(), self.cfg.follow.min_interval_s
        if not event.payload:
            if self._household_link is not None:  # taken as gone after GONE_GRACE_S, if still so
                self._gone[event.device_id] = (self.clock(), self._household_link.link.connects)
                return
            self.household, verdict = hh.on_gone(self.household, event.device_id, now, hold)
        elif hh.full(self.household, event.device_id):
            self._crowd_ignored += 1
            if self._crowd_ignored % 1000 == 1:
                log.warning("household: ignoring %s: already %d frames in the group (%d ignored)",
                            event.device_id, hh.MAX_MEMBERS, self._crowd_ignored)
            return
        else:
            try:
                other = hh.Presence.parse(event.payload)
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                # (Capped: Python's own message repeats a bad value whole, up to 4 MiB.)
                log.warning("household: ignoring what %s said (%.200s)", event.device_id, exc)
                return
            self._gone.pop(event.device_id, None)  # it spoke again
            if other.device_id != event.device_id:
                # The topic is who speaks: its Last Will clears the topic, so a member known by
                # another name would outlive its frame.
                log.warning("household: %s said it is %r; taking it as %s", event.device_id,
                            other.device_id[:64], event.device_id)
                other = dataclasses.replace(other, device_id=event.device_id)
            if not self._alive(other):
                log.debug("household: %s, taken for gone, said nothing new", event.device_id)
                return
            self._check_clock(other, now)
            self._check_steer(other)
            self.household, verdict = hh.on_presence(self.household, other, now, hold)
        self._household_verdict(verdict)
        self._follow_blend()

    def _alive(self, other: hh.Presence) -> bool:
        """Note a presence's sign of life (a `said_at` not heard before). False for one taken for
        gone as silent and said again unchanged: the broker re-delivers a retained presence at
        every reconnect, so that of a frame whose Last Will was lost must not bring it back."""
        assert self.household is not None
        if not other.said_at:  # an older version sends no heartbeat: only its Last Will tells
            return True
        before = self._beats.get(other.device_id)
        if before is not None and before[0] == other.said_at:
            return other.device_id in self.household.members
        if len(self._beats) >= 4 * hh.MAX_MEMBERS:  # the silent are remembered, not for ever
            self._beats = {k: v for k, v in self._beats.items() if k in self.household.members}
        self._beats[other.device_id] = (other.said_at, self.clock())
        return True

    def _check_steer(self, other: hh.Presence) -> None:
        """Name a frame set to steer otherwise than this one (once per frame and setting)."""
        mine = self.cfg.household.steer
        if not other.steer or other.steer == mine or (
                self._steer_told.get(other.device_id) == other.steer):
            return
        if len(self._steer_told) >= hh.MAX_MEMBERS:  # frames come and go: never grows for ever
            self._steer_told.clear()
        self._steer_told[other.device_id] = other.steer
        message = (f"frame {other.device_id} has household.steer = {other.steer!r}, this frame "
                   f"{mine!r}: the group steers by 'last' until every frame has the same "
                   "(docs/household.md)")
        log.warning("household: %s", message)
        self._report_error(message)

    def _check_clock(self, other: hh.Presence, now: float) -> None:
        """Name a frame whose clock is off (once per frame and direction): who steers is decided
        by the frames' clocks, so one behind never takes the music (one ahead is taken as now)."""
        assert self.household is not None
        skew = hh.clock_skew(self.household.members.get(other.device_id), other, now)
        if skew is None or self._clock_told.get(other.device_id) == (skew > 0):
            return
        if len(self._clock_told) >= hh.MAX_MEMBERS:  # frames come and go: never grows for ever
            self._clock_told.clear()
        self._clock_told[other.device_id] = skew > 0
        message = (f"frame {other.device_id}'s clock seems {abs(skew):.0f} s "
                   f"{'ahead of' if skew > 0 else 'behind'} this frame's: the frames of a "
                   "household take turns by their clocks; synchronise them (NTP: timedatectl "
                   "set-ntp true)")
        log.warning("household: %s", message)
        self._report_error(message)

    def _household_photo(self) -> None:
        st = self.state
        if self.household is None or st.photo is None or st.photo_seq == self._household_seq:
            return
        if not st.following:  # a frame that does not follow its photo never takes the music
            return  # (its photo is told once it follows again: the seq is left unseen)
        self._household_seq = st.photo_seq
        self.household, verdict = hh.on_own_photo(self.household, st.photo.mood, self._wall(),
                                                  self.cfg.follow.min_interval_s)
        self._household_verdict(verdict)

    def _household_tick(self, now: float) -> None:
        if self.household is None or now < self._household_tick_at:
            return
        self._household_tick_at = now + 0.2
        wall, hold = self._wall(), self.cfg.follow.min_interval_s
        link = self._household_link.link if self._household_link is not None else None
        for device_id, (when, connects) in list(self._gone.items()):
            if now < when + hh.GONE_GRACE_S:
                continue
            del self._gone[device_id]
            if link is not None and (not link.connected or link.connects != connects):
                log.info("household: %s's presence was cleared as the broker went away; not "
                         "taking it for gone", device_id)
                continue
            self.household, verdict = hh.on_gone(self.household, device_id, wall, hold)
            self._household_verdict(verdict)
        self._silent(now, link)
        heard = link is None or link.connected
        if heard != self._told_heard:
            self._told_heard = heard
            self.household, verdict = hh.on_link(self.household, heard, wall, hold)
        elif self.state.following != self._told_following:  # suspended, switched off, or back on
            self._told_following = self.state.following
            self.household, verdict = hh.on_following(self.household, self._told_following, wall,
                                                      hold)
        else:
            self.household, verdict = hh.on_tick(self.household, wall, hold)
        self._household_verdict(verdict)
        self._follow_blend()  # a blend that moved while the minimum interval held it back

    def _silent(self, now: float, link: MqttLink | None) -> None:
        """Say our presence again when it is due (the heartbeat), and take members that have
        not said anything new for a few heartbeats for gone (their Last Will was lost)."""
        assert self.household is not None
        if now >= self._beat_at:
            self._say_presence()
        # A loop held up (longer than a heartbeat) has not read what came meanwhile: the others'
        # words wait in its queue, so their silence says nothing yet.
        held_up, self._looked_at = now - self._looked_at > self.cfg.household.heartbeat_s, now
        if held_up or (link is not None and (not link.connected
                                             or link.connects != self._listening[1])):
            self._listening = (now, link.connects if link is not None and link.connected else -1)
        self._check_echo(now)
        members = self.household.members
        heard_at = {k: t for k, (_, t) in self._beats.items() if k in members}
        for device_id in hh.silent(heard_at, self._listening[0], now, self.cfg.household.heartbeat_s):
            log.warning("household: %s has not been heard from for %.0f s (its Last Will was "
                        "lost?); taking it for gone", device_id, now - heard_at[device_id])
            if self._household_link is not None:
                self._household_link.forget(device_id)
            self.household, verdict = hh.on_gone(self.household, device_id, self._wall(),
                                                 self.cfg.follow.min_interval_s)
            self._household_verdict(verdict)

    def _check_echo(self, now: float) -> None:
        """Say once if the broker never passed our own presence back: then no frame hears any
        other, and frames that share this MPD would each steer it."""
        house = self._household_link
        if (self._echo_checked or house is None or not house.link.connected
                or now - self._listening[0] < ECHO_WAIT_S):
            return
        self._echo_checked = True
        if house.heard_own:
            return
        message = (f"the MQTT broker does not pass on what is said on {house.topic}: frames that "
                   "share this MPD cannot agree which one steers; let this frame's login publish "
                   f"and subscribe to {group_topic(house.group)}/# (an ACL?), or set "
                   "household.enabled = false")
        log.error("household: %s", message)
        self._report_error(message)

    def _household_verdict(self, verdict: hh.Verdict) -> None:
        st, house = self.state, self.household
        assert house is not None
        before = dict(st.household)
        st.household = {"group": self._household_link.group if self._household_link else "",
                        "steerer": verdict.steerer or None, "steering": verdict.role == hh.Role.STEER,
                        "members": sorted([house.me, *house.members]), "reason": verdict.reason}
        if verdict.released:
            log.info("household: %s", verdict.reason)
            self.cancel_fade()
            self._handed = self.keeper.release()
            st.choice, st.pending, self._blend_for = None, None, None
        if verdict.publish or verdict.released:
            self._say_presence()
        if verdict.role == hh.Role.FOLLOW and verdict.steerer:
            st.why = self._following_why(verdict.steerer)
        if verdict.took_over:
            log.info("household: taking the music (%s)", verdict.reason)
            st.why = ""
            self._take_music(verdict)
        elif {**st.household, "reason": ""} != {**before, "reason": ""}:
            self._publish()  # Home Assistant shows the group and who steers

    def _take_music(self, verdict: hh.Verdict) -> None:
        """This frame steers now: the old steerer's entries become ours, and the music follows
        this frame's photo (or the blend) at once."""
        st = self.state
        # Entries still ours: this frame steered until now (at start-up, alone), so no other
        # frame edited the queue since our last look and a change MPD's news has not told yet is
        # a person's. Taking over from another frame, a change may be its last edit: not checked.
        if self.keeper.owned and self._person_came_first():
            log.info("household: a person changed MPD's queue or player first; not following")
        entries = (*verdict.from_entries, *(self._handed if verdict.reclaim else ()))
        if self.mpd.connected:
            try:
                self.keeper.adopt(entries)
            except MpdUnavailable as exc:
                self.keeper.adopt_later(entries)
                self._mpd_lost(str(exc))
        else:  # taken over while MPD is away: else the old steerer's entries stayed for good
            self.keeper.adopt_later(entries)
        if st.follow.smoothed is None or not st.following:
            self._publish()
            return
        st.follow, decision = follow_force(st.follow, self.clock(),
                                           play_now=st.mode == FollowMode.FOLLOW)
        reason = f"took the music ({verdict.reason}) → {decision.target.word} tracks"
        self.carry_out(dataclasses.replace(decision, reason=reason))

    def _household_target(self, decision: Decision) -> Decision:
        if self.household is None or self.household.steer is not hh.Steer.BLEND:
            return decision
        blend = hh.target(self.household, hh.Steer.BLEND, decision.target)
        assert blend is not None
        self._blend_for = blend
        return dataclasses.replace(decision, target=blend,
                                   reason=f"{decision.reason} (the household's blend: {blend.word})")

    def _following(self, decision: Decision) -> bool:
        """Another frame steers: the queue is its to edit; say whose photo the music follows."""
        steerer = self.household.steerer if self.household else ""
        self.state.pending = None
        self.state.why = self._following_why(steerer) if steerer else (
            f"{decision.reason}; waiting for the household to agree who steers")
        self._publish()
        return True

    def _following_why(self, steerer: str) -> str:
        if self.household is not None and self.household.steer is hh.Steer.BLEND:
            return f"following the household's blend of moods ({steerer} steers)"
        return f"following {steerer}'s photo"

    def _follow_blend(self) -> None:
        """With steer = "blend", the steerer's music follows the blend when another frame's mood
        moves it, by this frame's own rules: as far as its threshold from what the music is for,
        and no sooner than its min_interval_s after the last change (no ping-pong)."""
        st, house = self.state, self.household
        if (house is None or house.steer is not hh.Steer.BLEND or not house.steering
                or not st.following or self._blend_for is None or st.follow.smoothed is None):
            return
        blend = hh.target(house, hh.Steer.BLEND, st.follow.smoothed)
        assert blend is not None
        now, last = self.clock(), st.follow.last_change
        if blend.distance(self._blend_for) < st.threshold or (
                last is not None and now - last < self.cfg.follow.min_interval_s):
            return
        st.follow, decision = follow_force(st.follow, now, play_now=st.mode == FollowMode.FOLLOW)
        self.carry_out(dataclasses.replace(
            decision, reason=f"the household's blend moved {blend.distance(self._blend_for):.2f} "
                             f"→ {blend.word} tracks"))

    def _say_presence(self) -> None:
        if self.household is None or self._household_link is None:
            return
        entries = self.keeper.owned if self.household.steering else self._handed
        self._beat_at = self.clock() + self.cfg.household.heartbeat_s
        self._household_link.say(hh.presence(self.household, entries, said_at=self._wall()))
