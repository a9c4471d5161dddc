"""Home Assistant steers the built-in slideshow: buttons, switches, a number and two selects.

The same rules as the follow settings: every payload is checked on paho's thread (the interval by
the config's own declaration of `source.interval_s`), a refused one becomes `last error`, the
state is echoed after every command, and what was set survives a restart (in the settings store,
with the follow settings; versions before it kept them in the photo cache, and they move over
once). The loop thread owns this object; the
slideshow's render thread only receives commands. pygame is imported only when a slideshow is
configured, so the watched-file frame never needs it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from frame_daemon.commands import CommandError, CommandRow, on_off, press, setting
from frame_daemon.config import Config, SourceConfig
from frame_daemon.errors import FrameDaemonError
from frame_daemon.events import CommandName, Event
from frame_daemon.homeassistant import MAX_STATE_LEN, Topics
from frame_daemon.mood import Mood
from frame_daemon.music.select import TrackPool
from frame_daemon.settings_store import SettingRejected, SettingsStore, SlideshowSettings
from frame_daemon.sources.album_lister import AlbumLister
from frame_daemon.sources.photo_library import ALL_ALBUMS, ORDERS

if TYPE_CHECKING:
    from frame_daemon.sources.slideshow import MusicNow, Slideshow

log = logging.getLogger(__name__)


_interval = setting(SourceConfig, "interval_s")
_order = setting(SourceConfig, "order")


def _album(payload: str) -> str:
    value = payload.strip()
    if not value or len(value) > MAX_STATE_LEN:
        raise CommandError("expected the name of one of the photo folders' subfolders")
    return value  # whether it exists is checked by the loop, against the folders as they are now


class SlideshowControl:
    """The slideshow as the loop sees it: start/stop, commands, state and discovery."""

    def __init__(self, cfg: Config, post: Callable[[Event], None],
                 pool: Callable[[], TrackPool] = lambda: TrackPool.from_tracks([]), *,
                 settings: SettingsStore) -> None:
        """settings: the daemon's store, loaded before `start` (the slideshow's settings live
        there with the follow settings)."""
        self.cfg = cfg
        self._post = post
        self._pool = pool  # the daemon's track pool, for the mood of the track playing
        self._settings = settings
        self._music_key: tuple[str | None, Mood | None] | None = None  # what the show was told
        self.show: Slideshow | None = None
        self.folders = tuple(Path(p).expanduser() for p in (cfg.source.path, *cfg.source.paths))
        # The album choices as last listed, by the lister's thread (a photo folder on a share
        # whose server is gone hangs a listing: the loop never lists one); None: not yet.
        self.albums: tuple[str, ...] | None = None
        self.lister = AlbumLister(self.folders, post)

    def start_listing(self, wait_s: float) -> Callable[[], None]:
        """Start listing the albums off the loop, and give healthy folders `wait_s` to answer
        so that the first announcement offers them; returns how to stop."""
        self.lister.start()
        first = self.lister.wait_first(wait_s)
        if first is not None:
            self.albums_listed(first)
        else:
            log.warning("slideshow: the photo folders did not list their albums within %.0f s; "
                        "Home Assistant is offered them once they do", wait_s)
        return self.lister.stop

    def albums_listed(self, albums: tuple[str, ...]) -> bool:
        """The albums as listed now (loop thread); True if the choices changed. An album chosen
        that is gone falls back to all photos, as at start."""
        changed = albums != self.albums
        self.albums = albums
        album = self.settings.album
        if self.show is not None and album not in albums:
            log.warning("album %r is no longer a subfolder; showing all photos", album)
            self._settings.set_slideshow("album", ALL_ALBUMS)
            self.show.command(CommandName.ALBUM, ALL_ALBUMS)
        return changed

    def _choices(self) -> list[str]:
        """The album choices to offer: as last listed; before the first listing, all photos
        and the album chosen."""
        if self.albums is not None:
            return list(self.albums)
        return list(dict.fromkeys((ALL_ALBUMS, self.settings.album)))

    def start(self) -> None:
        try:
            from frame_daemon.sources.display_schedule import DisplaySchedule
            from frame_daemon.sources.slideshow import Slideshow, SlideshowOptions
        except ImportError as exc:
            raise FrameDaemonError(f"source.kind = \"slideshow\" needs pygame ({exc}); install it "
                                   "with: pip install 'frame-daemon[slideshow]'") from None
        src, model = self.cfg.source, self.cfg.model
        show = Slideshow(SlideshowOptions(
            folders=self.folders, interval_s=src.interval_s, fade_s=src.fade_s, fit=src.fit,
            order=src.order, fullscreen=src.fullscreen, width=src.width, height=src.height,
            overlay=src.overlay, overlay_s=src.overlay_s,
            schedule=DisplaySchedule.from_config(src.screen_on_at, src.screen_off_at),
            screen_off_command=src.screen_off_command, screen_on_command=src.screen_on_command,
            screen_command_timeout_s=src.screen_command_timeout_s,
            scorer=self._make_scorer, max_pixels=model.max_pixels,
            max_decode_bytes=model.max_decode_mb * 2**20), self.cfg.state_directory, self._post)
        self.show = show
        self._restore()
        show.start()

    def stop(self) -> None:
        if self.show is not None:
            self.show.stop()

    @property
    def settings(self) -> SlideshowSettings:
        return self._settings.slideshow

    @property
    def follow_music(self) -> bool:
        return self.settings.photos_follow_music

    def _restore(self) -> None:
        """What Home Assistant set before the restart (the store dropped what is no longer
        valid), handed to the show before it starts."""
        assert self.show is not None
        show, lib = self.show, self.show.library
        old = lib.old_settings()  # an upgrade: the photo cache held them
        if old and self._settings.migrate_slideshow(old, "the slideshow's photo cache"):
            lib.forget_old_settings()
        s = self.settings
        if self.albums is not None and s.album not in self.albums:
            log.warning("saved album %r is no longer a subfolder; showing all photos", s.album)
            s = self._settings.set_slideshow("album", ALL_ALBUMS)
        lib.set_order(s.order)
        # Checked against the albums as listed (or, if the folders have not answered yet, once
        # they do: `albums_listed`), not by listing them here.
        lib.set_album(s.album, self._choices())
        if s.photos_follow_music:
            show.command(CommandName.PHOTOS_FOLLOW_MUSIC, True)
        show.command(CommandName.INTERVAL, s.interval_s)
        if s.paused:
            show.command(CommandName.SLIDESHOW_PAUSED, True)
        if not s.screen:
            show.command(CommandName.SCREEN, False)

    # ------------------------------------------------------------------ commands (loop thread)
    def command_rows(self) -> list[CommandRow]:
        """The slideshow's rows of the daemon's command table."""
        C = CommandName
        return [
            CommandRow(C.PHOTO_NEXT, lambda _: self._show().command(C.PHOTO_NEXT), press),
            CommandRow(C.PHOTO_PREVIOUS, lambda _: self._show().command(C.PHOTO_PREVIOUS), press),
            CommandRow(C.SLIDESHOW_PAUSED, self._set_paused, on_off),
            CommandRow(C.SCREEN, self._set_screen, on_off),
            CommandRow(C.INTERVAL, self._set_interval, _interval),
            CommandRow(C.ALBUM, self._set_album, _album),
            CommandRow(C.PHOTO_ORDER, self._set_order, _order),
            CommandRow(C.PHOTOS_FOLLOW_MUSIC, self._set_follow_music, on_off),
        ]

    def _show(self) -> Slideshow:
        assert self.show is not None, "the slideshow takes commands once started"
        return self.show

    def _store(self, key: str, value: Any) -> None:
        """Into the settings store, checked by its rules (the config's declarations)."""
        try:
            self._settings.set_slideshow(key, value)
        except SettingRejected as exc:
            raise CommandError(str(exc)) from None

    def _set_paused(self, paused: bool) -> None:
        self._store("paused", paused)
        self._show().command(CommandName.SLIDESHOW_PAUSED, paused)

    def _set_screen(self, on: bool) -> None:
        self.remember_screen(on)
        self._show().command(CommandName.SCREEN, on)

    def remember_screen(self, on: bool) -> None:
        """The screen's state, kept with the settings (also when the display schedule, not Home
        Assistant, switched it: `ScreenScheduled`)."""
        self._store("screen", on)

    def _set_interval(self, seconds: float) -> None:
        self._store("interval_s", seconds)
        self._show().command(CommandName.INTERVAL, seconds)

    def _set_order(self, order: str) -> None:
        self._store("order", order)
        self._show().library.set_order(order)

    def _set_album(self, album: str) -> None:
        if self.albums is None or album not in self.albums:
            self.lister.request()  # a folder made since the last listing is offered soon
        if self.albums is None:
            raise CommandError("album: the photo folders have not listed their albums yet (a "
                               "network share that does not answer?); try again when they have")
        if album not in self.albums:
            raise CommandError(f"album: no folder {album[:60]!r}; choose one of "
                               f"{', '.join(self.albums)[:150]}")
        self._store("album", album)
        self._show().library.set_album(album, self.albums)
        self._show().command(CommandName.ALBUM, album)

    def _set_follow_music(self, on: bool) -> None:
        self._store("photos_follow_music", on)
        self._show().command(CommandName.PHOTOS_FOLLOW_MUSIC, on)
        self._music_key = None  # the next state tells it the music now

    def reset(self) -> None:
        """Back to the config's slideshow settings (the reset_settings button)."""
        assert self.show is not None
        s = self._settings.reset_slideshow()
        self.show.library.set_order(s.order)
        self.show.command(CommandName.PHOTOS_FOLLOW_MUSIC, s.photos_follow_music)
        C = CommandName
        for name, value in ((C.SLIDESHOW_PAUSED, s.paused), (C.SCREEN, s.screen),
                            (C.INTERVAL, s.interval_s), (C.ALBUM, s.album)):
            self.show.command(name, value)

    def tell(self, now_playing: str | None, mood: str | None, track_uri: str | None = None) -> None:
        """The overlay's music lines, from the state the loop publishes; and, when the track
        changed, its mood (photos follow music)."""
        if self.show is None:
            return
        from frame_daemon.sources.slideshow import ShowRequest  # pygame: only with a slideshow

        self.show.command(ShowRequest.INFO, tuple(x for x in (now_playing, mood) if x))
        music = self._music_now(track_uri)
        # Sent when the track changes, and again once the index knows a track it did not.
        key = (track_uri, music.mood if music is not None else None)
        if key != self._music_key:
            self._music_key = key
            self.show.command(ShowRequest.MUSIC, music)

    def _music_now(self, track_uri: str | None) -> MusicNow | None:
        """The playing track's mood and the library it is ranked in; None if nothing is known."""
        from frame_daemon.sources.slideshow import MusicNow  # pygame: only with a slideshow

        pool = self._pool()
        i = pool.index_of(track_uri) if track_uri else None
        if track_uri is None or i is None or pool.tracks[i].mood.confidence <= 0:
            return None
        return MusicNow(track_uri, pool.tracks[i].mood, pool.shape, self.cfg.follow.library_fit)

    def _make_scorer(self) -> Callable[[Path], tuple[float, float]]:
        """Runs on the slideshow's scoring thread: a model of its own, as the daemon's."""
        from frame_daemon.vision.model import MoodModel
        from frame_daemon.vision.photo import decode_photo

        model = MoodModel.load(self.cfg.model.path or None, threads=1)
        max_pixels, max_bytes = self.cfg.model.max_pixels, self.cfg.model.max_decode_mb * 2**20

        def score(path: Path) -> tuple[float, float]:
            photo = decode_photo(path, 224, max_pixels, max_bytes)
            mood = model.score_image(photo.image, str(path)).mood
            return mood.valence, mood.arousal

        return score

    # ------------------------------------------------------------------ Home Assistant
    def state(self) -> dict[str, Any]:
        s, started = self.settings, self.show is not None
        return {
            "slideshow_paused": s.paused,
            "screen": s.screen,
            "interval": s.interval_s,
            "album": s.album if started else None,  # checked against the folders at start
            "photo_order": s.order if started else None,
            "photos_follow_music": s.photos_follow_music,
        }

    def components(self, topics: Topics) -> dict[str, dict[str, Any]]:
        """The slideshow's entities, for the device discovery message."""
        uid = f"frame_daemon_{topics.device_id}".replace("-", "_")
        obj = topics.device_id.replace("-", "_").lower()
        state = topics.state
        albums = self._choices()

        def component(platform: str, key: str, name: str, **options: Any) -> dict[str, Any]:
            return {"p": platform, "unique_id": f"{uid}_{key}",
                    "default_entity_id": f"{platform}.{obj}_{key}", "name": name, **options}

        def on_off(field: str) -> str:
            return "{{ 'ON' if value_json." + field + " else 'OFF' }}"

        return {
            "photo_next": component("button", "photo_next", "Next photo",
                                    command_topic=topics.command("photo_next"),
                                    payload_press="PRESS", icon="mdi:image-move"),
            "photo_previous": component("button", "photo_previous", "Previous photo",
                                        command_topic=topics.command("photo_previous"),
                                        payload_press="PRESS", icon="mdi:history"),
            "slideshow_paused": component("switch", "slideshow_paused", "Pause slideshow",
                                          state_topic=state, value_template=on_off(
                                              "slideshow_paused"),
                                          command_topic=topics.command("slideshow_paused"),
                                          icon="mdi:pause"),
            "screen": component("switch", "screen", "Screen", state_topic=state,
                                value_template=on_off("screen"),
                                command_topic=topics.command("screen"), icon="mdi:monitor"),
            "interval": component("number", "interval", "Photo interval", state_topic=state,
                                  value_template="{{ value_json.interval }}",
                                  command_topic=topics.command("interval"), min=2, max=3600,
                                  step=1, unit_of_measurement="s", mode="box",
                                  entity_category="config"),
            "album": component("select", "album", "Album", state_topic=state,
                               value_template="{{ value_json.album }}",
                               command_topic=topics.command("album"), options=albums,
                               icon="mdi:folder-image"),
            "photos_follow_music": component("switch", "photos_follow_music",
                                             "Photos follow music", state_topic=state,
                                             value_template=on_off("photos_follow_music"),
                                             command_topic=topics.command("photos_follow_music"),
                                             icon="mdi:image-music"),
            "photo_order": component("select", "photo_order", "Photo order", state_topic=state,
                                     value_template="{{ value_json.photo_order }}",
                                     command_topic=topics.command("photo_order"),
                                     options=list(ORDERS), entity_category="config"),
        }
