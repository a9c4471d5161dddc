"""The composition root and the one loop: wires the parts, runs the loop and dispatches events.

`Daemon.run()` starts the parts in dependency order, remembers what started, runs the loop until a
signal sets the stop flag, and stops the parts in reverse inside `finally`. Only the loop thread
touches the state below; adapter threads (watchdog, paho, MPD idle, index worker, the photo
scoring worker, the album lister) just `post`: the loop never reads a photo or a photo folder
itself (on a network share that hangs, it would hang with it).
The loop turns a photo into a follow decision; `music.controller.MusicController` makes MPD play
it; `homeassistant` and `state_payload` tell the house.
"""

from __future__ import annotations

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
from frame_daemon.commands import CommandError, CommandRow, CommandTable, on_off, press
from frame_daemon.config import Config
from frame_daemon.errors import PhotoError
from frame_daemon.event_queue import EventQueue
from frame_daemon.events import (
    AdapterFailed,
    AlbumsChanged,
    Command,
    CommandName,
    DatabaseChanged,
    Event,
    HouseholdNews,
    IndexRefreshed,
    MpdConnection,
    MpdSessionChanged,
    PhotoScored,
    PhotoShown,
    PlayerChanged,
    ScreenScheduled,
    Stop,
)
from frame_daemon.follow import FollowMode, on_photo, on_tick
from frame_daemon.follow import force as follow_force
from frame_daemon.homeassistant import Topics, announce, publish_image, publish_state
from frame_daemon.loop_guard import LoopGuard
from frame_daemon.loop_state import LoopState
from frame_daemon.mqtt_link import CommandRouter, MqttLink
from frame_daemon.music.controller import MusicController
from frame_daemon.music.index import TrackIndex
from frame_daemon.music.index_worker import IndexWorker
from frame_daemon.music.live_pool import LivePool
from frame_daemon.music.mpd.idle import MpdIdleWatcher
from frame_daemon.music.mpd.session import MpdSession
from frame_daemon.music.placement import PhotoReference
from frame_daemon.settings_store import SettingCommands, SettingsStore
from frame_daemon.slideshow_control import SlideshowControl
from frame_daemon.sources.watch import PhotoWatcher
from frame_daemon.state_payload import state_payload, status_line
from frame_daemon.systemd_notify import SystemdNotifier
from frame_daemon.vision.model import MoodModel
from frame_daemon.vision.photo import thumbnail_jpeg
from frame_daemon.vision.scorer import ScoredPhoto, score_photo
from frame_daemon.vision.scoring_worker import ScoringWorker

log = logging.getLogger(__name__)

TICK_S = 0.5
ANNOUNCE_DELAY_S = (1.0, 4.0)  # after Home Assistant restarts: spread out frames' replies
# At start-up, how long a healthy MPD gets to answer before the first photo is handled without it
# (a frozen or absent one is then left to the MPD session's thread).
MPD_START_WAIT_S = 2.0
# At start-up, how long the slideshow's photo folders get to list their albums before the first
# announcement offers what is known (a folder that hangs is left to the album lister's thread).
ALBUMS_START_WAIT_S = 2.0


def _start_part(started: list[Callable[[], None]], part: Any) -> Any:
    """Start an adapter and remember how to stop it (the stops run in reverse, in `run`)."""
    part.start()
    started.append(part.stop)
    return part


class Daemon:
    def __init__(self, cfg: Config, *, clock: Callable[[], float] = time.monotonic,
                 mpd_session: MpdSession | None = None) -> None:
        """clock: monotonic seconds, for every timer of the loop. mpd_session: where the loop's
        MPD connection comes from (tests hand in one whose MPD runs in memory)."""
        self.cfg = cfg
        self.clock = clock
        self.events = EventQueue()
        self.state = LoopState(mode=FollowMode(cfg.follow.mode), threshold=cfg.follow.threshold)
        self.settings = SettingCommands(
            SettingsStore.in_directory(cfg.state_directory, cfg.follow, source=cfg.source,
                                       clock=clock), self.state,
            on_reset=lambda: self.slideshow and self.slideshow.reset())
        self.topics = Topics(cfg.mqtt.device_id, cfg.mqtt.discovery_prefix)
        # The built-in slideshow is the photo source, and Home Assistant steers it.
        self.slideshow = (SlideshowControl(cfg, self.post, lambda: self.tracks.pool,
                                           settings=self.settings.store)
                          if cfg.source.kind == "slideshow" else None)
        self._rng = random.Random()
        self.tracks = LivePool()
        self.session = mpd_session or MpdSession(cfg.mpd.host, cfg.mpd.port, cfg.mpd.password,
                                                 self.post, timeout_s=cfg.mpd.timeout_s,
                                                 keepalive_s=cfg.mpd.keepalive_s)
        self.music = MusicController(cfg, self.state, self.session, self.tracks, clock=clock,
                                     publish=self._publish_state, report_error=self._set_error,
                                     refresh_index=self._refresh_index,
                                     person_took_over=self._person_took_over, rng=self._rng)
        self.commands = CommandTable([*self._command_rows(), *self.music.taste.command_rows(), *(
            self.slideshow.command_rows() if self.slideshow is not None else ())])
        self.router = CommandRouter(self.topics, self.commands, self.post)
        self.routes = self.router.routes
        self.notifier = SystemdNotifier()
        self._stopping = threading.Event()
        self._signalled = ""  # set by a signal handler: the signal's name
        self.model: MoodModel | None = None
        self._tick_at = clock()  # the next periodic tick
        self.mqtt: MqttLink | None = None
        self.worker: IndexWorker | None = None
        self.scorer: ScoringWorker | None = None  # None: photos are scored on the loop (tests)
        self.guard = LoopGuard(self._set_error, log)

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
        self.music.reference = PhotoReference.from_model_meta(self.model.meta)
        # Photos are read off the loop: one on a share that hangs must not stall it.
        self.scorer = _start_part(started, ScoringWorker(self.model, cfg.model, self.post))
        state_dir = cfg.make_state_directory()
        self.music.taste.open()
        started.append(self.music.taste.close)
        self.settings.load()  # what Home Assistant set before the restart
        started.append(self.settings.store.save_now)  # the last of a burst of changes, at stop
        index_path = TrackIndex.default_path(state_dir)
        unwritable = self.tracks.open(index_path)
        if unwritable:  # published with the first state
            self.state.error = self.state.last_error = unwritable
        started.append(self.tracks.close)
        self.state.index_size = len(self.tracks)

        if self.slideshow is not None:
            started.append(self.slideshow.start_listing(ALBUMS_START_WAIT_S))
        self.mqtt = MqttLink(cfg.mqtt, self.topics.availability, on_message=self.router)
        for topic in self.router.topics:
            self.mqtt.subscribe(topic)
        self._announce()
        self.mqtt.start()
        started.append(self.mqtt.stop)
        started.append(self.music.start_household(self.post, time.time))  # frames on this MPD

        _start_part(started, self.session)
        self.session.wait_first_attempt(MPD_START_WAIT_S)
        self.music.adopt()  # if MPD answered; otherwise when the session gets through
        started.append(self.music.give_volume_back)  # before closing: a fade cut short by a stop
        _start_part(started, MpdIdleWatcher(cfg.mpd.host, cfg.mpd.port, cfg.mpd.password,
                                            self.post, timeout_s=cfg.mpd.timeout_s))
        self.worker = _start_part(started, IndexWorker(index_path, cfg.mpd, self.post))
        self.worker.request()  # catch up with changes made while we were not running

        _start_part(started, self.slideshow or PhotoWatcher(
            cfg.source.kind, cfg.source.path, cfg.source.settle_s, self.post))

    # ------------------------------------------------------------------ the loop
    def _loop(self) -> None:
        next_ping = self.clock()
        while not self._stopping.is_set():
            if self._signalled:
                log.info("stopping (%s)", self._signalled)
                break
            music_at = self.music.next_wake()
            wake = self._tick_at if music_at is None else min(self._tick_at, music_at)
            timeout = max(0.0, wake - self.clock())
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

    def handle_safely(self, event: Event) -> None:
        """Handle one event; whatever goes wrong is published, and the loop goes on."""
        self.guard.run(type(event).__name__, self.handle, event)

    def on_time(self, now: float) -> None:
        """The timed work due by `now` (on the loop's clock): a fade step, the periodic tick;
        each as safe as a handler."""
        self.guard.run("the fade", self.music.on_time, now)
        if now >= self._tick_at:
            self._tick_at = now + TICK_S
            self.guard.run("tick", self.tick, now)

    def handle(self, event: Event) -> None:
        if isinstance(event, PhotoShown):
            self.on_photo(event.path)
        elif isinstance(event, PhotoScored):
            self.on_scored(event.path, event.scored, event.error)
        elif isinstance(event, PlayerChanged):
            self.music.on_player_changed()
        elif isinstance(event, DatabaseChanged):  # refreshed once MPD's database events settle
            if self.worker:
                self.worker.request(settle=True)
        elif isinstance(event, IndexRefreshed):
            if event.analysed is not None:  # background (re-)analysis progress, for HA
                self.state.index_analysed = event.analysed
            if event.error:
                self._set_error(f"index refresh failed: {event.error}")
            if not self.music.on_pool(event.pool):
                self._publish_state()
        elif isinstance(event, MpdConnection | MpdSessionChanged | HouseholdNews):
            self.music.on_news(event)
        elif isinstance(event, Command):
            self.on_command(event)
        elif isinstance(event, AdapterFailed):
            self._set_error(event.error)  # its supervisor logged it and restarts it
        elif isinstance(event, ScreenScheduled) and self.slideshow is not None:
            self.slideshow.remember_screen(event.on)  # the display schedule switched it
            self._publish_state()
        elif isinstance(event, AlbumsChanged) and self.slideshow is not None:
            album = self.slideshow.settings.album
            if self.slideshow.albums_listed(event.albums):  # the album select must offer them
                self._announce_soon("the photo folders' subfolders changed")
            if self.slideshow.settings.album != album:  # the album chosen is gone
                self._publish_state()

    def tick(self, now: float) -> None:
        st = self.state
        if self.settings.flush():  # a burst of setting changes, written once settled, failed
            self._publish_state()
        taste = self.music.taste.store
        if taste is not None and taste.pending:  # verdicts waiting for another program's lock
            self.guard.run("the waiting verdicts", lambda _: taste.retry_pending(), None)
        if st.announce_at is not None and now >= st.announce_at:
            st.announce_at = None
            log.info("announcing to Home Assistant again (%s)", st.announce_why)
            self._announce()
        if st.suspended_until is not None and now >= st.suspended_until:
            log.info("resuming following after the suspension timeout")
            self._resume()
        st.follow, decision = on_tick(st.follow, now, self._effective_mode(), self.settings.params)
        self.music.carry_out(decision)

    # ------------------------------------------------------------------ photos
    def on_photo(self, path: Path) -> None:
        """A photo is on show: read and scored by the scoring worker (`on_scored` follows),
        or here when there is none (the in-process tests)."""
        if self.scorer is not None:
            self.scorer.request(path)
            return
        assert self.model is not None
        try:
            self.on_scored(path, score_photo(self.model, path, self.cfg.model))
        except PhotoError as exc:
            self.on_scored(path, None, exc)

    def on_scored(self, path: Path, scored: ScoredPhoto | None,
                  error: PhotoError | None = None) -> None:
        if scored is None:
            assert error is not None
            log.warning("photo %s could not be read: %s", path, error.reason)
            self._set_error(str(error))  # the music keeps playing
            return
        result = scored.mood
        st = self.state
        st.photo, st.photo_path, st.photo_taken = result, str(path), scored.photo.taken
        if st.mpd_up or not (st.error and "MPD" in st.error):
            st.error = None  # a good photo ends a photo error, not an MPD outage
        st.photo_seq += 1
        log.info("photo %s: %s", path.name, scored.describe())
        st.follow, decision = on_photo(st.follow, result.mood, self.clock(),
                                       self._effective_mode(), self.settings.params)
        st.follow_reason = decision.reason
        if not self.music.carry_out(decision):
            self._publish_state()
        if self.mqtt is not None:  # after the music: the thumbnail is not urgent
            publish_image(self.mqtt, self.topics, thumbnail_jpeg(scored.photo.image))

    def _effective_mode(self) -> FollowMode:
        if self.slideshow is not None and self.slideshow.follow_music:
            return FollowMode.OFF  # photos follow the music: the music must not follow them back
        return FollowMode.OFF if self.state.suspended_until is not None else self.state.mode

    def _person_took_over(self, change: str) -> None:
        if self.state.following:
            self._suspend(change)

    # ------------------------------------------------------------------ following and commands
    def _suspend(self, reason: str, until_resumed: bool = False) -> None:
        self.music.cancel_fade()  # a person took over: the new music waits, their volume is back
        suspend_s = 0.0 if until_resumed else self.cfg.follow.suspend_s
        self.state.suspended_until = self.clock() + suspend_s if suspend_s > 0 else float("inf")
        self.state.suspended_reason = reason
        log.info("following suspended: %s%s", reason,
                 f" (for {suspend_s:.0f} s)" if suspend_s > 0 else " (until resumed)")

    def _resume(self) -> None:
        self.state.suspended_until = None
        self.state.suspended_reason = ""
        self.state.follow, decision = follow_force(self.state.follow, self.clock())
        self.music.carry_out(decision)
        self._publish_state()

    def _command_rows(self) -> list[CommandRow]:
        """The daemon's rows of the command table: name, handler, payload parser."""
        C = CommandName
        return [
            CommandRow(C.FOLLOWING, self._set_following, on_off),
            *self.settings.rows(),
            CommandRow(C.NEXT, lambda _: self.music.next_track(), press),
            CommandRow(C.RESCORE, lambda _: self._rescore(), press),
            CommandRow(C.REFRESH_INDEX, lambda _: self._refresh_index(), press),
            CommandRow(C.RESUME, lambda _: self._resume(), press),
            CommandRow(C.CLEAR_ERROR, lambda _: self._clear_error(), press),
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
            self.settings.change("mode", (configured if configured != FollowMode.OFF
                                          else FollowMode.FOLLOW).value)
        self._resume()

    def _rescore(self) -> None:
        if self.state.photo_path:
            self.on_photo(Path(self.state.photo_path))

    def _clear_error(self) -> None:
        self.state.error = self.state.last_error = None

    # ------------------------------------------------------------------ publishing
    def _set_error(self, message: str) -> None:
        self.state.error = message
        self.state.last_error = message
        self._publish_state()

    def _announce(self) -> None:
        """Discovery (if enabled) and every retained value: after start and HA restarts."""
        if self.mqtt is not None:
            announce(self.mqtt, self.topics, self.cfg.mqtt, self.state_payload(),
                     threshold_max=self.cfg.follow.jump, components=(
                         self.slideshow.components(self.topics) if self.slideshow else None))

    def _publish_state(self) -> None:
        payload = self.state_payload()
        if self.mqtt is not None:
            publish_state(self.mqtt, self.topics, payload)
        if self.slideshow is not None:  # the overlay shows the music and the mood word
            self.slideshow.tell(payload["now_playing"], payload["mood"], self.state.track.get("uri"))
        self.notifier.status(status_line(self.state))

    def _refresh_index(self) -> None:
        if self.worker:
            self.worker.request()

    def state_payload(self) -> dict[str, Any]:
        return state_payload(self.state, datetime.now(UTC),
                             {**(self.slideshow.state() if self.slideshow is not None else {}),
                              "taste": self.music.taste.summary()},
                             fading_s=self.music.fading_s)
