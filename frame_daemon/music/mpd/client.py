"""The loop's command connection to MPD (python-mpd2): status, queue edits, library listing.

Thin on purpose: every method is one or a few MPD commands, and every connection problem becomes
`MpdUnavailable` so the loop can mark MPD lost, keep its decision and retry later.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import mpd

from frame_daemon.errors import FrameDaemonError

log = logging.getLogger(__name__)


class MpdUnavailable(FrameDaemonError):
    """MPD cannot be reached (or went away mid-command)."""


class MpdCommandFailed(FrameDaemonError):
    """MPD refused a command (unknown URI, bad position, queue full...)."""


class MpdNoSuchSong(MpdCommandFailed):
    """MPD's database has no such song (the index is older than MPD's database)."""


LIST_PAGE = 5_000  # songs an answer when listing the library: about 1.5 MB
LIST_TRIES = 3  # listings started over when MPD's database (or queue) changes meanwhile
QUEUE_PAGE = 32  # queue entries an answer: some 5 to 16 KB (see `MpdLink.queue`)

# MPD closes a connection that sent nothing for its `connection_timeout` (60 s by default), and
# the next command on it fails ("Connection lost while reading line"). A connection silent this
# long is renewed before its next command (a link that connects by itself) or pinged (the loop's,
# `keep_alive`), so that neither a long analysis nor a quiet hour between photos loses it.
KEEPALIVE_S = 30.0
# A connection lost after at least this much silence was most likely closed by MPD for it: its
# connection_timeout is shorter than `keepalive_s`, so the link pings sooner from then on.
CLOSED_WHEN_SILENT_S = 2.0

T = TypeVar("T")


def _as_is(song: dict[str, Any]) -> Any:
    return song


@dataclass(frozen=True, slots=True)
class PlayerStatus:
    state: str  # play | pause | stop
    song_id: int | None
    song_pos: int | None
    playlist_version: int
    queue_length: int
    consume: bool
    elapsed: float
    duration: float
    volume: int | None = None  # 0-100; None when MPD has no mixer to set it with
    # MPD's own modes: with them MPD moves on by itself in ways a plain queue does not.
    random: bool = False
    repeat: bool = False
    single: bool = False  # on or oneshot: MPD pauses (or stops) when the track ends
    error: str = ""  # the player's last error (a stream that died), until cleared
    updating: bool = False  # MPD is scanning its library: its database may be partial


@dataclass(frozen=True, slots=True)
class QueueEntry:
    id: int
    pos: int
    uri: str
    title: str = ""
    artist: str = ""


def _first(value: object) -> str:
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return "" if value is None else str(value)


def _float(value: object) -> float:
    try:
        return float(_first(value))
    except ValueError:
        return 0.0


def _volume(value: object) -> int | None:
    try:
        volume = int(_first(value))
    except ValueError:
        return None
    return volume if 0 <= volume <= 100 else None  # MPD says -1 without a mixer


# MPD passes a file name that is not UTF-8 (a Latin-1 rip, an old zip) through byte for byte.
# python-mpd2 decodes every line strictly: one such name failed every listing of the library
# (no music at all) and left the connection in the middle of an answer. It reads as U+FFFD here.
NOT_UTF8 = "\ufffd"


class _LenientLines:
    """python-mpd2's reading side of the socket, handing on each line as valid UTF-8."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    def readline(self, *args: Any) -> bytes:
        line = self._raw.readline(*args)
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            line = line.decode("utf-8", "replace").encode("utf-8")
        return line

    def __getattr__(self, name: str) -> Any:  # read (binary answers), close
        return getattr(self._raw, name)


class _Client(mpd.MPDClient):
    def connect(self, *args: Any, **kwargs: Any) -> None:
        super().connect(*args, **kwargs)
        # python-mpd2 3.x's reading side; should a release rename it, names are strict again.
        raw = getattr(self, "_rbfile", None)
        if raw is not None:
            self._rbfile = _LenientLines(raw)


def not_mpd(exc: mpd.ProtocolError) -> str:
    """Why a server that answered is no MPD, in a few words (mpd.port set to another service's)."""
    said = str(exc).removeprefix("Got invalid MPD hello:").strip().strip("'").strip()
    return f"not MPD (it greets with {said[:60]!r})" if said != str(exc) else f"not MPD ({exc})"


def open_client(host: str, port: int, password: str, timeout_s: float) -> mpd.MPDClient:
    """A new, authenticated python-mpd2 client; MpdUnavailable if MPD cannot be reached. May take
    up to `timeout_s` (a frozen MPD accepts the connection but never greets)."""
    address = host if host.startswith("/") else f"{host}:{port}"
    client = _Client()
    client.timeout = timeout_s
    try:
        client.connect(host, port)
        if password:
            client.password(password)
    except (OSError, mpd.ConnectionError, mpd.CommandError) as exc:
        with contextlib.suppress(OSError, mpd.ConnectionError):
            client.disconnect()
        raise MpdUnavailable(f"cannot connect to MPD at {address}: {exc or type(exc).__name__}") from exc
    except mpd.ProtocolError as exc:
        with contextlib.suppress(OSError, mpd.ConnectionError):
            client.disconnect()
        raise MpdUnavailable(f"cannot connect to MPD at {address}: {not_mpd(exc)}") from exc
    return client


def _status(st: dict) -> PlayerStatus:
    return PlayerStatus(
        state=st.get("state", "stop"),
        song_id=int(st["songid"]) if "songid" in st else None,
        song_pos=int(st["song"]) if "song" in st else None,
        playlist_version=int(st.get("playlist", 0)),
        queue_length=int(st.get("playlistlength", 0)),
        consume=st.get("consume", "0") not in ("0", "off"),
        elapsed=_float(st.get("elapsed", 0)),
        duration=_float(st.get("duration", 0)),
        volume=_volume(st.get("volume")),
        random=st.get("random", "0") not in ("0", "off"),
        repeat=st.get("repeat", "0") not in ("0", "off"),
        single=st.get("single", "0") not in ("0", "off"),
        error=_first(st.get("error", "")),
        updating="updating_db" in st,
    )


def _entry(song: dict) -> QueueEntry:
    return QueueEntry(int(song["id"]), int(song["pos"]), _first(song.get("file")),
                      _first(song.get("title")), _first(song.get("artist")))


class MpdLink:
    """One python-mpd2 client, used only from the thread that owns it (the loop or a worker)."""

    def __init__(self, host: str, port: int, password: str = "", timeout_s: float = 10.0, *,
                 autoconnect: bool = True, keepalive_s: float = KEEPALIVE_S) -> None:
        self.host, self.port, self.password = host, port, password
        self.timeout_s = timeout_s
        self.keepalive_s = keepalive_s
        # Without autoconnect (the loop's link) a command with no connection fails at once: the
        # MPD session connects in its own thread and hands the connection over with `adopt`.
        self.autoconnect = autoconnect
        self._client: mpd.MPDClient | None = None
        self._used_at = 0.0  # when the connection last answered (monotonic)
        self.server_version = ""
        # Counts successful connects: queue ids are only comparable within one connection (MPD
        # renumbers its queue when it restarts), so the queue keeper checks this.
        self.generation = 0

    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def address(self) -> str:
        return self.host if self.host.startswith("/") else f"{self.host}:{self.port}"

    def connect(self) -> None:
        self.close()
        self.adopt(open_client(self.host, self.port, self.password, self.timeout_s))

    def adopt(self, client: mpd.MPDClient) -> None:
        """Use a client already connected (and authenticated) elsewhere."""
        self.close()
        self._client = client
        self._used_at = time.monotonic()
        self.generation += 1
        self.server_version = client.mpd_version or ""
        log.info("connected to MPD %s at %s", self.server_version, self.address)

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(OSError, mpd.ConnectionError):
                self._client.disconnect()
            self._client = None

    def keep_alive(self) -> None:
        """Ping a connection that has been silent for `keepalive_s`, before MPD closes it (the
        loop's link, which cannot connect again by itself: MpdUnavailable if it is gone)."""
        if self._client is not None and time.monotonic() - self._used_at >= self.keepalive_s:
            with self._call() as c:
                c.ping()

    @contextmanager
    def _call(self) -> Iterator[mpd.MPDClient]:
        if (self._client is not None and self.autoconnect
                and time.monotonic() - self._used_at >= self.keepalive_s):
            self.connect()  # MPD may have closed it meanwhile: a command must not find out
        if self._client is None:
            if not self.autoconnect:
                raise MpdUnavailable(f"not connected to MPD at {self.address}")
            self.connect()
        assert self._client is not None
        try:
            yield self._client
            self._used_at = time.monotonic()
        except mpd.CommandError as exc:
            if exc.errno == mpd.FailureResponseCode.NO_EXIST:
                raise MpdNoSuchSong(str(exc)) from exc
            raise MpdCommandFailed(str(exc)) from exc
        except (TimeoutError, OSError, mpd.ConnectionError, mpd.ProtocolError) as exc:
            # ProtocolError: an answer that is not MPD's; the connection is out of step with it.
            silent_s = time.monotonic() - self._used_at
            self.close()
            why = self._closed_when_silent(silent_s) if isinstance(exc, mpd.ConnectionError) else ""
            raise MpdUnavailable(f"lost MPD at {self.address}: {exc or type(exc).__name__}"
                                 f"{why}") from exc

    def _closed_when_silent(self, silent_s: float) -> str:
        """A connection lost after a silence shorter than twice `keepalive_s` (the loop pings at
        `keepalive_s`) was closed by MPD's connection_timeout, which is shorter than it: every
        quiet spell would lose the connection again (and the next photo's fade). Ping at a third
        of the silence from now on (the loop looks at its timers every half second), and say so."""
        keepalive = max(1.0, silent_s / 3)
        if silent_s < CLOSED_WHEN_SILENT_S or keepalive >= self.keepalive_s:
            return ""
        self.keepalive_s = keepalive
        return (f" after {silent_s:.0f} s of silence: MPD's connection_timeout seems shorter "
                f"than mpd.keepalive_s, so this frame pings MPD every {keepalive:.0f} s from now "
                "on (set mpd.keepalive_s lower to start so)")

    def status(self) -> PlayerStatus:
        with self._call() as c:
            st = c.status()
        return _status(st)

    def queue_since(self, version: int, before: Sequence[QueueEntry]
                    ) -> tuple[PlayerStatus, list[QueueEntry]]:
        """The status and the queue now, made from the queue `before` (read at playlist
        `version` on this connection) and MPD's changes since (`plchanges`: the entries whose id
        or place changed; the status's length cuts off what was removed at the end). A long
        queue costs a small answer; status and changes come in one command list, so that no
        other client's edit falls between them. A full read where they do not add up."""
        with self._call() as c:
            c.command_list_ok_begin()
            c.status()
            c.plchanges(version)
            st, changed = c.command_list_end()
        status = _status(st)
        entries = list(before[:status.queue_length])
        for entry in sorted((_entry(song) for song in changed), key=lambda e: e.pos):
            if entry.pos < len(entries):
                entries[entry.pos] = entry
            elif entry.pos == len(entries):
                entries.append(entry)
            else:
                break
        if len(entries) != status.queue_length or any(e.pos != i for i, e in enumerate(entries)):
            log.debug("MPD's queue changes did not add up; reading the whole queue")
            return self.status(), self.queue()
        return status, entries

    def queue(self, page: int = QUEUE_PAGE) -> list[QueueEntry]:
        """The queue, `page` entries an answer. A queue that is never cleared grows (MPD keeps
        what played), and MPD's answers of some 17 to 80 KB (MPD 0.23: 120 to 600 bare entries)
        reach the client only after a ~40 ms stall in TCP; small ones come at once. The pages
        are one queue if MPD's playlist version did not change meanwhile, else it is read again."""
        with self._call() as c:
            for _ in range(LIST_TRIES):
                version = c.status().get("playlist")
                songs: list[dict] = []
                while True:
                    try:
                        window = c.playlistinfo(f"{len(songs)}:{len(songs) + page}")
                    except mpd.CommandError:  # "Bad song index": it shrank meanwhile
                        break
                    songs += window
                    if len(window) < page:
                        break
                if c.status().get("playlist") == version:
                    break
            return [_entry(s) for s in songs]

    def current(self) -> QueueEntry | None:
        with self._call() as c:
            song = c.currentsong()
        return _entry(song) if song and "id" in song else None

    def add_one(self, uri: str, position: str | None = None) -> int:
        """Add one track (at `position`, e.g. "+0": right after the current song; MPD >= 0.23)
        and return its queue id. MpdNoSuchSong if MPD does not know the URI."""
        with self._call() as c:
            return int(c.addid(uri, position) if position is not None else c.addid(uri))

    def delete_ids(self, ids: Sequence[int]) -> int:
        """Delete these queue entries, ignoring ones already gone; returns how many went."""
        gone = 0
        with self._call() as c:
            for song_id in ids:
                try:
                    c.deleteid(song_id)
                    gone += 1
                except mpd.CommandError:
                    continue  # someone else removed it already
        return gone

    def play_id(self, song_id: int) -> None:
        with self._call() as c:
            c.playid(song_id)

    def play(self) -> None:
        with self._call() as c:
            c.play()

    def set_volume(self, volume: int) -> None:
        with self._call() as c:
            c.setvol(max(0, min(100, int(volume))))

    def next(self) -> None:
        with self._call() as c:
            c.next()

    def list_all(self, page: int = LIST_PAGE, keep: Callable[[dict], T] = _as_is) -> list[T]:
        """Every song in MPD's database with its tags, `page` songs an answer; `keep(song)`
        makes of each song what the caller keeps, as each answer comes in (MPD's dicts of
        100,000 songs take some 90 MB).

        One answer for the whole library (`listallinfo`) outgrows MPD's output buffer (8 MiB by
        default: some 25,000 songs) and MPD drops the connection, so the songs come in windows
        (`find ... window`, MPD 0.21+). Windows are only consistent within one database version:
        if MPD's database changed meanwhile the listing starts over (else songs could be missed
        and dropped from the index with their analyses).
        """
        with self._call() as c:
            for _ in range(LIST_TRIES):
                version = c.stats().get("db_update")
                songs: list[T] = []
                listed = 0
                unnamed: list[str] = []
                while True:
                    window = c.find('(base "")', "window", f"{listed}:{listed + page}")
                    listed += len(window)
                    songs += [keep(s) for s in window if "file" in s and NOT_UTF8 not in s["file"]]
                    unnamed += [s["file"] for s in window if NOT_UTF8 in s.get("file", "")]
                    if len(window) < page:
                        break
                if c.stats().get("db_update") == version:
                    break
                log.info("MPD's database changed while it was listed; listing it again")
            if unnamed:  # MPD could not be asked for them by a name we can send
                log.warning("left out %d songs whose file names are not UTF-8 (rename them), "
                            "e.g. %s", len(unnamed), unnamed[0])
            return songs

    def update(self) -> None:
        with self._call() as c:
            c.update()

    def stored_playlists(self) -> list[str]:
        """The names of MPD's stored playlists."""
        with self._call() as c:
            return [p["playlist"] for p in c.listplaylists()]

    def save_playlist(self, name: str, uris: Sequence[str]) -> None:
        """Write a stored playlist, replacing one of that name: built under a temporary name and
        renamed at the end, so a failure halfway never leaves a half-written playlist."""
        temporary = f".{name}.frame-daemon-tmp"
        with self._call() as c:
            if temporary in {p["playlist"] for p in c.listplaylists()}:
                c.rm(temporary)
            for uri in uris:
                c.playlistadd(temporary, uri)
            if name in {p["playlist"] for p in c.listplaylists()}:
                c.rm(name)
            c.rename(temporary, name)

    # --- stickers (frame_daemon/music/mpd/stickers.py keeps them in our namespace) ---------------

    def commands(self) -> set[str]:
        """The commands MPD allows us ('sticker' is missing when it has no sticker database)."""
        with self._call() as c:
            return set(c.commands())

    def sticker_find(self, directory: str, name: str) -> list[tuple[str, str]]:
        """(uri, value) of every song under `directory` ('' for all) with sticker `name`."""
        with self._call() as c:
            found = c.sticker_find("song", directory, name)
        return [(_first(s.get("file")), str(s.get("sticker", "")).partition("=")[2]) for s in found]

    def sticker_lists(self, uris: Sequence[str]) -> list[dict[str, str]]:
        """Every sticker of each song, in one command list (MpdNoSuchSong if one is gone)."""
        with self._call() as c:
            c.command_list_ok_begin()
            for uri in uris:
                c.sticker_list("song", uri)
            return list(c.command_list_end())

    def sticker_set_many(self, name: str, values: Sequence[tuple[str, str]]) -> None:
        """Set sticker `name` on each (uri, value) in one command list; MPD stops at the first
        error (MpdNoSuchSong for a song it no longer has)."""
        with self._call() as c:
            c.command_list_ok_begin()
            for uri, value in values:
                c.sticker_set("song", uri, name, value)
            c.command_list_end()
