"""The composition root and the one loop: photo in, mood out, music follows, the house is told.

`Daemon.run()` starts the parts in dependency order, remembers what started, runs the loop until a
signal sets the stop flag, and stops the parts in reverse inside `finally`. Only the loop thread
touches the state below; adapter threads (watchdog, paho, MPD idle, index worker) just `post`.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import random
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from frame_daemon import __version__
from frame_daemon.commands import (
    CommandError,
    CommandRow,
    CommandTable,
    on_off,
    press,
    setting,
)
from frame_daemon.config import Config, FollowConfig
from frame_daemon.errors import FrameDaemonError, PhotoError
from frame_daemon.event_queue import EventQueue
from frame_daemon.events import (
    AdapterFailed,
    Command,
    CommandName,
    DatabaseChanged,
    Event,
    IndexRefreshed,
    MpdConnection,
    MpdSessionChanged,
    PhotoShown,
    PlayerChanged,
    Stop,
)
from frame_daemon.follow import Action, Decision, FollowMode, FollowParams, on_photo, on_tick
from frame_daemon.follow import force as follow_force
from frame_daemon.homeassistant import Topics, device_display_name, discovery_payload
from frame_daemon.loop_state import Choice, LoopState
from frame_daemon.mood import Mood
from frame_daemon.mqtt_link import MqttLink
from frame_daemon.music.index import TrackIndex
from frame_daemon.music.index_worker import IndexWorker
from frame_daemon.music.live_pool import LivePool
from frame_daemon.music.mpd.client import MpdUnavailable
from frame_daemon.music.mpd.fade import FADE_STEP_S, Fader
from frame_daemon.music.mpd.idle import MpdIdleWatcher
from frame_daemon.music.mpd.queue_keeper import QueueKeeper
from frame_daemon.music.mpd.session import MpdSession
from frame_daemon.music.placement import PhotoReference, place
from frame_daemon.music.select import SelectionParams, TrackPool, keep_playing, select
from frame_daemon.settings_store import SettingRejected, SettingsStore
from frame_daemon.slideshow_control import SlideshowControl
from frame_daemon.sources.watch import PhotoWatcher
from frame_daemon.state_payload import state_payload, status_line
from frame_daemon.systemd_notify import SystemdNotifier
from frame_daemon.vision.model import MoodModel
from frame_daemon.vision.photo import DecodedPhoto, decode_photo, thumbnail_jpeg

log = logging.getLogger(__name__)

TICK_S = 0.5
ANNOUNCE_DELAY_S = (1.0, 4.0)  # after Home Assistant restarts: spread out frames' replies
# The one decode of a photo serves the model (224 px), the 640 px thumbnail and face detection:
# a 6000x4000 JPEG still decodes at 1/8 scale (750x500).
PHOTO_SHORT_SIDE = 480
# At start-up, how long a healthy MPD gets to answer before the first photo is handled without it
# (a frozen or absent one is then left to the MPD session's thread).
MPD_START_WAIT_S = 2.0


def follow_params(cfg: Config) -> FollowParams:
    f = cfg.follow
    return FollowParams(smoothing=f.smoothing, threshold=f.threshold, dwell_s=f.dwell_s,
                        jump=f.jump, min_interval_s=f.min_interval_s)


def selection_params(cfg: Config, seed: int | None = None) -> SelectionParams:
    f = cfg.follow
    return SelectionParams(count=f.tracks, diversity=f.diversity, no_repeat=f.no_repeat,
                           include_genres=frozenset(f.include_genres),
                           exclude_genres=frozenset(f.exclude_genres), seed=seed,
                           max_distance=f.max_distance)


class Daemon:
    def __init__(self, cfg: Config, *, clock: Callable[[], float] = time.monotonic,
                 mpd_session: MpdSession | None = None) -> None:
        """clock: monotonic seconds, for every timer of the loop. mpd_session: where the loop's
        MPD connection comes from (tests hand in one whose MPD runs in memory)."""
        self.cfg = cfg
        self.clock = clock
        self.events = EventQueue()
        self.state = LoopState(mode=FollowMode(cfg.follow.mode), threshold=cfg.follow.threshold,
                               diversity=cfg.follow.diversity,
                               include_genres=cfg.follow.include_genres,
                               exclude_genres=cfg.follow.exclude_genres)
        self.params = follow_params(cfg)
        self.topics = Topics(cfg.mqtt.device_id, cfg.mqtt.discovery_prefix)
        self.settings = SettingsStore.in_directory(cfg.state_directory, cfg.follow,
                                                   source=cfg.source, clock=clock)
        # The built-in slideshow is the photo source, and Home Assistant steers it.
        self.slideshow = (SlideshowControl(cfg, self.post, lambda: self.pool,
                                           settings=self.settings)
                          if cfg.source.kind == "slideshow" else None)
        self.commands = CommandTable([*self._command_rows(), *(
            self.slideshow.command_rows() if self.slideshow is not None else ())])
        self.routes = {self.topics.command(name): name for name in self.commands.accepted()}
        self.notifier = SystemdNotifier()
        self._stopping = threading.Event()
        self._signalled = ""  # set by a signal handler: the signal's name
        self._rng = random.Random()
        self.model: MoodModel | None = None
        self.tracks = LivePool()
        self.session = mpd_session or MpdSession(cfg.mpd.host, cfg.mpd.port, cfg.mpd.password,
                                                 self.post, timeout_s=cfg.mpd.timeout_s)
        self.mpd = self.session.link  # connected only by the session, never on the loop
        self.keeper = QueueKeeper(self.mpd)
        self.fader = Fader(self.mpd, cfg.follow.fade_s)
        self._fade_step_at = 0.0
        self._tick_at = clock()  # the next periodic tick
        self.reference = PhotoReference()
        self.mqtt: MqttLink | None = None
        self.worker: IndexWorker | None = None
        self._internal_errors_seen: set[tuple[str, str, str]] = set()
        self._retained_commands_seen: set[str] = set()

    @property
    def pool(self) -> TrackPool:
        return self.tracks.pool

    # ------------------------------------------------------------------ lifecycle
    def post(self, event: Event) -> None:
        """Thread-safe: how adapters hand events to the loop."""
        self.events.put(event)

    def request_stop(self, reason: str = "requested") -> None:
        self._stopping.set()
        self.post(Stop(reason))

    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: Any) -> None:
            # Only set a flag (queue and lock calls are not safe here); the loop looks at it at
            # least every TICK_S and stops gracefully.
            self._signalled = signal.Signals(signum).name

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self) -> None:
        started: list[Callable[[], None]] = []
        try:
            self._start(started)
            self.notifier.ready(f"watching {self.cfg.source.path}")
            self._loop()
        finally:
            self.notifier.stopping()
            for stop in reversed(started):
                try:
                    stop()
                except Exception:
                    log.exception("error while stopping")
            log.info("stopped")

    def _start(self, started: list[Callable[[], None]]) -> None:
        cfg = self.cfg
        log.info("frame-daemon %s starting (config %s)", __version__, cfg.file)
        self.model = MoodModel.load(cfg.model.path or None, threads=cfg.model.threads)
        log.info("mood model %s loaded (runtime %s)", self.model.meta.get("name"), self.model.runtime)
        self.reference = PhotoReference.from_model_meta(self.model.meta)
        state_dir = cfg.state_directory
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FrameDaemonError(f"state directory {state_dir}: cannot create it "
                                   f"({exc.strerror}); set state.directory") from exc
        self._use_settings(self.settings.load())  # what Home Assistant set before the restart
        started.append(self.settings.save_now)  # the last of a burst of changes, at stop
        index_path = TrackIndex.default_path(state_dir)
        self.tracks.open(index_path)
        started.append(self.tracks.close)
        self.state.index_size = len(self.tracks)

        self.mqtt = MqttLink(cfg.mqtt, self.topics.availability, on_message=self._on_mqtt_message)
        for topic in (*self.routes, self.topics.ha_status):
            self.mqtt.subscribe(topic)
        self._announce()
        self.mqtt.start()
        started.append(self.mqtt.stop)

        self.session.start()
        started.append(self.session.stop)
        self.session.wait_first_attempt(MPD_START_WAIT_S)
        self._adopt_mpd()  # if MPD answered; otherwise when the session gets through
        started.append(self._give_volume_back)  # before closing: a fade cut short by a stop
        idle = MpdIdleWatcher(cfg.mpd.host, cfg.mpd.port, cfg.mpd.password, self.post,
                              timeout_s=cfg.mpd.timeout_s)
        idle.start()
        started.append(idle.stop)
        self.worker = IndexWorker(index_path, cfg.mpd, self.post)
        self.worker.start()
        started.append(self.worker.stop)
        self.worker.request()  # catch up with changes made while we were not running

        if self.slideshow is not None:
            self.slideshow.start()
            started.append(self.slideshow.stop)
        else:
            watcher = PhotoWatcher(cfg.source.kind, cfg.source.path, cfg.source.settle_s, self.post)
            watcher.start()
            started.append(watcher.stop)

    # ------------------------------------------------------------------ the loop
    def _loop(self) -> None:
        next_ping = self.clock()
        while not self._stopping.is_set():
            if self._signalled:
                log.info("stopping (%s)", self._signalled)
                break
            timeout = max(0.0, self._next_wake() - self.clock())
            try:
                event = self.events.get(timeout=timeout)
            except queue.Empty:
                event = None
            if event is not None:
                if isinstance(event, Stop):
                    log.info("stopping (%s)", event.reason)
                    break
                self.handle_safely(event)
            now = self.clock()
            self.on_time(now)
            interval = self.notifier.watchdog_interval_s
            if interval and now >= next_ping:
                self.notifier.watchdog()  # from the loop: a stuck loop stops the pings
                next_ping = now + interval

    def _next_wake(self) -> float:
        return min(self._tick_at, self._fade_step_at) if self.fader.active else self._tick_at

    def handle_safely(self, event: Event) -> None:
        """Handle one event; whatever goes wrong is published, and the loop goes on."""
        try:
            self.handle(event)
        except FrameDaemonError as exc:
            self._set_error(str(exc))
        except Exception as exc:  # a bug in one handler must not stop the frame
            self._internal_error(type(event).__name__, exc)

    def on_time(self, now: float) -> None:
        """The timed work due by `now` (on the loop's clock): a fade step, the periodic tick."""
        if self.fader.active and now >= self._fade_step_at:
            self._fade_step(now)
        if now >= self._tick_at:
            self._tick_at = now + TICK_S
            try:
                self.tick(now)
            except Exception as exc:
                self._internal_error("tick", exc)

    def _internal_error(self, where: str, exc: Exception) -> None:
        """Log an unexpected exception (the traceback once per kind), publish it, and go on."""
        message = f"internal error in {where}: {type(exc).__name__}: {exc}"
        kind = (where, type(exc).__name__, str(exc))
        if kind not in self._internal_errors_seen:
            self._internal_errors_seen.add(kind)
            log.error("%s (the daemon goes on)", message, exc_info=exc)
        else:
            log.error("%s (again)", message)
        try:
            self._set_error(message)
        except Exception:
            log.exception("could not publish the error")

    def handle(self, event: Event) -> None:
        if isinstance(event, PhotoShown):
            self.on_photo(event.path)
        elif isinstance(event, PlayerChanged):
            self.on_player_changed()
        elif isinstance(event, DatabaseChanged):
            log.info("MPD database changed; refreshing the index")
            if self.worker:
                self.worker.request()
        elif isinstance(event, IndexRefreshed):
            if event.error:
                self._set_error(f"index refresh failed: {event.error}")
            if event.pool is not None:
                self.tracks.use(event.pool)
            else:
                self.tracks.reload()
            self.state.index_size = len(self.tracks)
            pending = self.state.pending
            if pending is not None and len(self.pool) and self.mpd.connected:
                self._queue_for(pending.target, pending.action == Action.PLAY_NOW, pending.reason)
            else:
                self._publish_state()
        elif isinstance(event, MpdConnection):
            self.on_mpd_connection(event)
        elif isinstance(event, MpdSessionChanged):
            self.on_mpd_session(event)
        elif isinstance(event, Command):
            self.on_command(event)
        elif isinstance(event, AdapterFailed):
            self._set_error(event.error)  # its supervisor logged it and restarts it

    def tick(self, now: float) -> None:
        st = self.state
        if error := self.settings.flush():  # a burst of setting changes, written once settled
            st.last_error = error
            self._publish_state()
        if st.announce_at is not None and now >= st.announce_at:
            st.announce_at = None
            log.info("announcing to Home Assistant again (%s)", st.announce_why)
            self._announce()
        if st.suspended_until is not None and now >= st.suspended_until:
            log.info("resuming following after the suspension timeout")
            self._resume()
        st.follow, decision = on_tick(st.follow, now, self._effective_mode(), self.params)
        self._act(decision)

    # ------------------------------------------------------------------ photos
    def on_photo(self, path: Path) -> None:
        assert self.model is not None
        started = time.perf_counter()
        try:
            # One decode from one open file: a photo swapped meanwhile cannot slip in.
            photo = decode_photo(path, PHOTO_SHORT_SIDE, self.cfg.model.max_pixels,
                                 self.cfg.model.max_decode_mb * 2**20)
        except PhotoError as exc:
            log.warning("photo %s could not be read: %s", path, exc.reason)
            self._set_error(str(exc))  # the music keeps playing
            return
        result = self.model.score_image(photo.image, str(path))
        st = self.state
        st.photo, st.photo_path, st.photo_taken = result, str(path), photo.taken
        if st.mpd_up or not (st.error and "MPD" in st.error):
            st.error = None  # a good photo ends a photo error, not an MPD outage
        st.photo_seq += 1
        scenes = ", ".join(label for label, _ in result.scenes[:3])
        log.info("photo %s: %s (v %+.2f, a %+.2f, conf %.2f; %s) in %.0f ms", path.name,
                 result.word, result.mood.valence, result.mood.arousal, result.mood.confidence,
                 scenes, (time.perf_counter() - started) * 1000)
        st.follow, decision = on_photo(st.follow, result.mood, self.clock(),
                                       self._effective_mode(), self.params)
        st.follow_reason = decision.reason
        if not self._act(decision):
            self._publish_state()
        self._publish_photo(photo)  # after the music: the thumbnail is not urgent

    def _publish_photo(self, photo: DecodedPhoto) -> None:
        if self.mqtt is not None:
            self.mqtt.publish_retained(self.topics.image, thumbnail_jpeg(photo.image))

    def _effective_mode(self) -> FollowMode:
        if self.slideshow is not None and self.slideshow.follow_music:
            return FollowMode.OFF  # photos follow the music: the music must not follow them back
        return FollowMode.OFF if self.state.suspended_until is not None else self.state.mode

    def _act(self, decision: Decision) -> bool:
        """Carry out a follow decision; True if state was published."""
        if decision.action in (Action.KEEP, Action.PUBLISH_ONLY):
            return False
        log.info("follow: %s", decision.reason)
        self._queue_for(decision.target, play_now=decision.action == Action.PLAY_NOW,
                        reason=decision.reason)
        return True

    def _queue_for(self, target: Mood, play_now: bool, reason: str, fade: bool = True,
                   retries: int = 2) -> None:
        """Choose tracks for `target` and hand them to MPD (or remember the decision for when
        it can be carried out). retries: how often to choose again when MPD refuses them all."""
        st = self.state
        params = dataclasses.replace(
            selection_params(self.cfg, self._rng.randrange(2**31)), diversity=st.diversity,
            include_genres=frozenset(st.include_genres),
            exclude_genres=frozenset(st.exclude_genres),
            # In a small library a window of 50 would soon leave only the worst matches: never
            # keep more than a third of it out.
            no_repeat=min(self.cfg.follow.no_repeat, len(self.pool) // 3))
        placement = place(target, self.pool.shape, self.cfg.follow.library_fit, self.reference)
        # What plays now counts as the most recent track, and a new choice does not queue it
        # again (unless it is the only track that fits). Ask MPD: the idle watcher's news of a
        # track change may still be on its way.
        if self.mpd.connected:
            self._refresh_track()
        playing = [st.track["uri"]] if st.track.get("uri") else []
        picks = select(self.pool, placement.target, params, history=[*st.history, *playing],
                       last_artist=st.track.get("artist"))
        # A change that would cut what plays for a worse match (or for the same track again)
        # lets it play on instead; the new picks follow it. Not a track already fading out.
        others = [p for p in picks if p.track.uri not in playing]
        kept = keep_playing(self.pool, placement.target, params, st.track.get("uri"), others) \
            if play_now and st.player == "play" and not self.fader.active else None
        picks, play_now = others or ([] if kept else picks), play_now and kept is None
        if kept is not None and not picks:  # nothing else fits: it plays on, not queued again
            st.choice = Choice(st.photo_seq, reason, placement, (kept,),
                               () if st.track_id is None else (st.track_id,))
            st.pending, st.why = None, ""
            log.info("keeping %s: it fits %s best", kept.track.label, placement.describe())
            self._publish_state()
            return
        decision = Decision(Action.PLAY_NOW if play_now else Action.QUEUE_NEXT, target, reason)
        if not picks:
            if len(self.pool) and (st.include_genres or st.exclude_genres):
                st.why = f"{reason}; no track in the index matches the genre filters"
            elif not len(self.pool) and self.tracks.refused:
                st.why = (f"{reason}; MPD has none of the indexed tracks any more "
                          f"({self.tracks.refused} gone since the last index); refreshing the index")
            else:
                st.why = f"{reason}; no tracks in the index yet"
            log.warning("no tracks to queue (%s; index has %d); will retry when it changes",
                        st.why.rsplit("; ", 1)[-1], len(self.pool))
            st.pending = decision
            self._publish_state()
            return
        if not self.mpd.connected:
            st.pending = decision
            st.why = f"{reason}; MPD unavailable, will queue when it is back"
            log.info("MPD unavailable; will apply the decision when it is back")
            self._publish_state()
            return
        self._apply(Choice(st.photo_seq, reason, placement, tuple(picks)), decision, fade, retries)

    def _apply(self, choice: Choice, decision: Decision, fade: bool, retries: int) -> None:
        """Queue the choice's tracks; for PLAY_NOW fade out what plays and start them.

        A track a person put on is never cut short: the new music waits until it ends."""
        st = self.state
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
            self._publish_state()
            return
        missing = {uri for uri, _ in queued.missing}
        if missing:
            self.tracks.refuse(missing)
            self.state.index_size = len(self.tracks)
            if self.worker:  # let the index catch up with MPD's database
                self.worker.request()
            if not queued.ids:  # every track chosen is gone from MPD: choose again without them
                if retries > 0:
                    self._queue_for(decision.target, decision.action == Action.PLAY_NOW,
                                    decision.reason, may_fade, retries - 1)
                    return
                st.pending = decision
                st.why = (f"{decision.reason}; MPD refused every track chosen, will retry when "
                          "the index is refreshed")
                self._publish_state()
                return
        st.pending, st.why = None, ""
        if missing:  # what is published describes what MPD actually holds
            kept = tuple(p for p in choice.picks if p.track.uri not in missing)
            choice = dataclasses.replace(choice, picks=kept)
        choice = dataclasses.replace(choice, ids=tuple(queued.ids))
        st.choice = choice
        st.history.extend(uris)
        log.info("%s %d tracks for %s", "fading to" if fade else "playing" if skip else "queued",
                 len(choice.picks), choice.placement.describe())
        for p in choice.picks:
            log.info("  %s (%s)", p.track.label, p.why)
        self._refresh_track()
        self._publish_state()

    def _fade_step(self, now: float) -> None:
        try:
            started = self.fader.step(now)
            if started:
                self.keeper.snapshot()  # our own skip, not a person's
        except MpdUnavailable as exc:
            # The new tracks may be gone with MPD: choose again when it is back, without a fade.
            if self.state.choice is not None:
                self.state.pending = Decision(Action.PLAY_NOW, self.state.choice.placement.photo,
                                              self.state.choice.reason)
            self._mpd_lost(str(exc))
            self._publish_state()
            return
        self._fade_step_at = now + FADE_STEP_S
        if started:
            self._refresh_track()
            self._publish_state()

    def _give_volume_back(self) -> None:
        """On stop: a fade cut short must not leave the user's music quiet."""
        try:
            self.fader.cancel()
        except MpdUnavailable as exc:
            log.warning("could not restore the volume to %s: %s", self.fader.owed_volume, exc)

    # ------------------------------------------------------------------ MPD
    def _adopt_mpd(self) -> None:
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
        self._refresh_track()
        if self.state.pending is not None:
            pending = self.state.pending
            log.info("MPD is back; applying the last decision")
            self._queue_for(pending.target, pending.action == Action.PLAY_NOW, pending.reason,
                            fade=False)
        elif not was_up:
            self._publish_state()

    def _mpd_lost(self, message: str) -> None:
        first = self.state.mpd_up or self.state.error != message
        self.state.mpd_up = False
        self.fader.lost()
        self.session.lost()  # its thread reconnects, with backoff
        if first:
            log.warning("%s; retrying with backoff", message)
            self._set_error(message)

    def on_mpd_connection(self, event: MpdConnection) -> None:
        if event.connected and not self.mpd.connected:
            self.session.retry_now()  # MPD answers again: no need to wait out the backoff
        elif not event.connected and self.mpd.connected:
            # The idle link noticed first; our command link will find out on its next use.
            self._mpd_lost(event.error)

    def on_mpd_session(self, event: MpdSessionChanged) -> None:
        if event.ready:
            self._adopt_mpd()
        elif not self.mpd.connected:  # a failure reported before a connection was adopted is old
            self._mpd_lost(event.error)

    def on_player_changed(self) -> None:
        if not self.mpd.connected:
            return
        try:
            change = self.keeper.external_change()
        except MpdUnavailable as exc:
            self._mpd_lost(str(exc))
            return
        if change and self.state.following:
            self._suspend(change)
        self._refresh_track()
        self._publish_state()

    def _refresh_track(self) -> None:
        try:
            current = self.mpd.current()
            status = self.mpd.status()
        except MpdUnavailable as exc:
            self._mpd_lost(str(exc))
            return
        self.state.track = ({"uri": current.uri, "title": current.title, "artist": current.artist}
                            if current else {})
        self.state.track_id = current.id if current else None
        self.state.player = status.state
        self.state.remaining_s = (max(0.0, status.duration - status.elapsed)
                                  if current and status.duration > 0 else None)

    # ------------------------------------------------------------------ following and commands
    def _suspend(self, reason: str, until_resumed: bool = False) -> None:
        if self.fader.active:
            try:
                self.fader.cancel()  # a person took over: the new music waits, their volume is back
            except MpdUnavailable as exc:
                self._mpd_lost(str(exc))
        suspend_s = 0.0 if until_resumed else self.cfg.follow.suspend_s
        self.state.suspended_until = self.clock() + suspend_s if suspend_s > 0 else float("inf")
        self.state.suspended_reason = reason
        log.info("following suspended: %s%s", reason,
                 f" (for {suspend_s:.0f} s)" if suspend_s > 0 else " (until resumed)")

    def _resume(self) -> None:
        self.state.suspended_until = None
        self.state.suspended_reason = ""
        self.state.follow, decision = follow_force(self.state.follow, self.clock())
        self._act(decision)
        self._publish_state()

    def _on_mqtt_message(self, topic: str, payload: bytes, retained: bool = False) -> None:
        """paho's thread: validate and enqueue; the loop acts."""
        if topic == self.topics.ha_status:
            if payload.strip() == b"online":
                self.post(Command(CommandName.ANNOUNCE, "Home Assistant is back online"))
            return
        name = self.routes.get(topic)
        if name is None:
            return
        if retained:
            # Left on the broker by a publisher with the retain flag, it would act again at every
            # start (skip a track, undo a newer setting). Settings persist in the state directory.
            if topic not in self._retained_commands_seen:
                self._retained_commands_seen.add(topic)
                log.warning("ignoring a retained command on %s; clear it with: mosquitto_pub -r "
                            "-n -t %s", topic, topic)
            return
        try:
            self.post(self.commands.parse(name, payload))
        except CommandError as exc:
            self.post(Command(CommandName.REJECTED, f"command {name}: {exc}"))

    def _command_rows(self) -> list[CommandRow]:
        """The daemon's rows of the command table: name, handler, payload parser."""
        C = CommandName

        def follow_setting(name: CommandName) -> CommandRow:
            return CommandRow(name, lambda value: self._change_setting(name.value, value),
                              setting(FollowConfig, name.value))

        return [
            CommandRow(C.FOLLOWING, self._set_following, on_off),
            *(follow_setting(name) for name in (C.MODE, C.THRESHOLD, C.DIVERSITY,
                                                C.INCLUDE_GENRES, C.EXCLUDE_GENRES)),
            CommandRow(C.NEXT, lambda _: self._next_track(), press),
            CommandRow(C.RESCORE, lambda _: self._rescore(), press),
            CommandRow(C.REFRESH_INDEX, lambda _: self.worker and self.worker.request(), press),
            CommandRow(C.RESUME, lambda _: self._resume(), press),
            CommandRow(C.CLEAR_ERROR, lambda _: self._clear_error(), press),
            CommandRow(C.RESET_SETTINGS, lambda _: self._reset_settings(), press),
            # Spread the frames' replies to a Home Assistant restart; the announcement says all.
            CommandRow(C.ANNOUNCE, self._announce_soon, echo=False),
            CommandRow(C.REJECTED, self._rejected),
        ]

    def on_command(self, cmd: Command) -> None:
        log.info("command %s %r", cmd.name, cmd.value)
        try:
            echo = self.commands.dispatch(cmd)
        except CommandError as exc:  # refused in the light of what the loop knows now
            log.warning("command %s refused: %s", cmd.name, exc)
            self.state.last_error = str(exc)
            echo = True
        if echo:  # so Home Assistant shows the truth even after a refused command
            self._publish_state()

    def _rejected(self, why: str) -> None:
        log.warning("%s", why)
        self.state.last_error = why

    def _announce_soon(self, why: str) -> None:
        self.state.announce_at = self.clock() + self._rng.uniform(*ANNOUNCE_DELAY_S)
        self.state.announce_why = why

    def _set_following(self, on: bool) -> None:
        if not on:
            self._suspend("turned off in Home Assistant", until_resumed=True)
            return
        if self.state.mode == FollowMode.OFF:  # the switch turns following on: set a mode
            configured = FollowMode(self.cfg.follow.mode)
            self._change_setting("mode", (configured if configured != FollowMode.OFF
                                          else FollowMode.FOLLOW).value)
        self._resume()

    def _next_track(self) -> None:
        if not self.mpd.connected:
            return
        try:
            self.mpd.next()
            self.keeper.snapshot()
        except MpdUnavailable as exc:
            self._mpd_lost(str(exc))

    def _rescore(self) -> None:
        if self.state.photo_path:
            self.on_photo(Path(self.state.photo_path))

    def _clear_error(self) -> None:
        self.state.error = self.state.last_error = None

    def _reset_settings(self) -> None:
        self._use_settings(self.settings.reset())
        if self.slideshow is not None:
            self.slideshow.reset()
        log.info("settings reset to the config's")

    def _change_setting(self, key: str, value: object) -> None:
        """A setting from Home Assistant: checked by the config's rules, saved, then used."""
        try:
            self._use_settings(self.settings.set(key, value))
        except SettingRejected as exc:
            log.warning("command %s refused: %s", key, exc)
            self.state.last_error = str(exc)
            return
        if self.settings.save_error:
            self.state.last_error = self.settings.save_error

    def _use_settings(self, follow: FollowConfig) -> None:
        st = self.state
        st.mode = FollowMode(follow.mode)
        st.diversity = follow.diversity
        st.include_genres, st.exclude_genres = follow.include_genres, follow.exclude_genres
        st.threshold = follow.threshold
        self.params = follow_params(dataclasses.replace(self.cfg, follow=follow))

    # ------------------------------------------------------------------ publishing
    def _set_error(self, message: str) -> None:
        self.state.error = message
        self.state.last_error = message
        self._publish_state()

    def _announce(self) -> None:
        """Discovery (if enabled) and every retained value: after start and HA restarts."""
        if self.mqtt is None:
            return
        if self.cfg.mqtt.discovery:
            discovery = discovery_payload(self.topics, device_display_name(self.cfg.mqtt),
                                          threshold_max=self.cfg.follow.jump)
            if self.slideshow is not None:
                discovery["cmps"].update(self.slideshow.components(self.topics))
            self.mqtt.remember(self.topics.discovery, discovery)
        self.mqtt.remember(self.topics.state, self.state_payload())
        self.mqtt.republish_retained()  # discovery, state and the photo, each sent once

    def _publish_state(self) -> None:
        payload = self.state_payload()
        if self.mqtt is not None:
            self.mqtt.publish_retained(self.topics.state, payload)
        if self.slideshow is not None:  # the overlay shows the music and the mood word
            self.slideshow.tell(payload["now_playing"], payload["mood"], self.state.track.get("uri"))
        self.notifier.status(status_line(self.state))

    def state_payload(self) -> dict[str, Any]:
        return state_payload(self.state, datetime.now(UTC),
                             self.slideshow.state() if self.slideshow is not None else None,
                             fading_s=self.cfg.follow.fade_s if self.fader.active else None)
