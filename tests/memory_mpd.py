"""An MPD that lives in memory, on the test's clock: for building `Daemon` in-process.

It stands in for python-mpd2's `MPDClient` (the few commands the loop sends), so the daemon's own
`MpdLink`, `QueueKeeper` and `Fader` run unchanged on top of it. Playback advances with the injected
clock: a track ends when its duration has passed, and the next one in the queue starts, as MPD
does. `MemorySession` hands it to the loop the way `MpdSession` hands over a real connection.
`test_memory_mpd.py` runs the same commands against a real MPD and this one, and compares.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mpd

from frame_daemon.music.mpd.client import MpdLink


class Clock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@dataclass
class _Entry:
    id: int
    uri: str


class MemoryMpd:
    """The database (uri -> title, artist, duration), the queue and the player."""

    mpd_version = "0.23.5"

    def __init__(self, clock: Callable[[], float], songs: dict[str, tuple[str, str, float]],
                 volume: int = 80) -> None:
        self.clock = clock
        self.songs = songs
        self.queue: list[_Entry] = []
        self.added: list[str] = []  # every addid asked for, refused or not
        self.state = "stop"
        self.current: int | None = None  # index into the queue
        self.volume = volume
        self.version = 1
        self.up = True
        self._next_id = 1
        self._started_at = 0.0  # clock time the current track would have begun, when playing
        self._elapsed = 0.0  # while paused or stopped
        self._answers: list[object] | None = None  # inside a command list: the answers so far

    # ------------------------------------------------------------------ the player's own life
    def _catch_up(self) -> None:
        """Tracks that ended meanwhile give way to the next, as MPD's player does."""
        if not self.up:
            raise mpd.ConnectionError("Connection lost while reading line")
        while self.state == "play" and self.current is not None:
            length = self.songs[self.queue[self.current].uri][2]
            if self.clock() - self._started_at < length:
                return
            self._started_at += length
            if self.current + 1 < len(self.queue):
                self.current += 1
            else:
                self.state, self.current, self._elapsed = "stop", None, 0.0
            self.version += 1

    def _start(self, index: int) -> None:
        self.current, self.state = index, "play"
        self._started_at = self.clock()
        self.version += 1

    def _index_of(self, song_id: int) -> int:
        for i, entry in enumerate(self.queue):
            if entry.id == song_id:
                return i
        raise mpd.CommandError(f"[50@0] {{playid}} No such song {song_id}")

    def playing(self) -> str | None:
        self._catch_up()
        return self.queue[self.current].uri if self.current is not None else None

    def uris(self) -> list[str]:
        return [e.uri for e in self.queue]

    # ------------------------------------------------------------------ python-mpd2's commands
    def command_list_ok_begin(self) -> None:
        self._answers = []

    def command_list_end(self) -> list[object]:
        answers, self._answers = self._answers or [], None
        return answers

    def _answer(self, value: object) -> object:
        """A command's answer; inside a command list python-mpd2 gives them all at its end."""
        if self._answers is None:
            return value
        self._answers.append(value)
        return None

    def status(self) -> dict[str, str]:
        return self._answer(self._status())  # type: ignore[return-value]

    def _status(self) -> dict[str, str]:
        self._catch_up()
        st = {"state": self.state, "playlist": str(self.version),
              "playlistlength": str(len(self.queue)), "consume": "0", "volume": str(self.volume)}
        if self.current is not None:
            entry = self.queue[self.current]
            elapsed = self.clock() - self._started_at if self.state == "play" else self._elapsed
            st |= {"song": str(self.current), "songid": str(entry.id),
                   "elapsed": f"{elapsed:.3f}", "duration": f"{self.songs[entry.uri][2]:.3f}"}
        return st

    def _song(self, i: int) -> dict[str, str]:
        entry = self.queue[i]
        title, artist, length = self.songs[entry.uri]
        return {"file": entry.uri, "id": str(entry.id), "pos": str(i), "title": title,
                "artist": artist, "duration": f"{length:.3f}"}

    def playlistinfo(self, songrange: str | None = None) -> list[dict[str, str]]:
        self._catch_up()
        start, end = 0, len(self.queue)
        if songrange is not None:
            first, _, last = songrange.partition(":")
            start, end = int(first), min(end, int(last))
            if start > len(self.queue):
                raise mpd.CommandError("[2@0] {playlistinfo} Bad song index")
        return [self._song(i) for i in range(start, end)]

    def plchanges(self, version: int) -> list[dict[str, str]]:
        """Every entry: MPD gives those whose id or place changed since `version`, and all of
        them make the same queue for whoever builds it from the changes."""
        self._catch_up()
        return self._answer([self._song(i) for i in range(len(self.queue))])  # type: ignore[return-value]

    def currentsong(self) -> dict[str, str]:
        self._catch_up()
        return self._song(self.current) if self.current is not None else {}

    def addid(self, uri: str, position: str | None = None) -> str:
        self._catch_up()
        self.added.append(uri)
        if uri not in self.songs:
            raise mpd.CommandError(f"[50@0] {{addid}} No such directory: {uri}")
        if position is not None and self.current is None:
            raise mpd.CommandError("[55@0] {addid} No current song")  # "+N" needs one
        entry = _Entry(self._next_id, uri)
        self._next_id += 1
        if position is None:
            self.queue.append(entry)
        else:  # "+N": N places after the current song
            self.queue.insert(self.current + 1 + int(position), entry)
        self.version += 1
        return str(entry.id)

    def deleteid(self, song_id: int) -> None:
        self._catch_up()
        i = self._index_of(int(song_id))
        del self.queue[i]
        if self.current is not None and i < self.current:
            self.current -= 1
        elif i == self.current:  # MPD goes on with the next entry, which now has this place
            if i < len(self.queue):
                self._start(i)
            else:
                self.state, self.current = "stop", None
        self.version += 1

    def playid(self, song_id: int) -> None:
        self._catch_up()
        self._start(self._index_of(int(song_id)))

    def play(self) -> None:
        self._catch_up()
        if self.queue and self.state != "play":
            self._start(self.current or 0)

    def next(self) -> None:
        self._catch_up()
        if self.current is not None and self.current + 1 < len(self.queue):
            self._start(self.current + 1)
        else:
            self.state, self.current = "stop", None
            self.version += 1

    def setvol(self, volume: int) -> None:
        self._catch_up()
        self.volume = int(volume)

    def disconnect(self) -> None:
        pass


class MemorySession:
    """Stands in for `MpdSession`: the loop's link, and an MPD to adopt when it is up."""

    def __init__(self, memory: MemoryMpd) -> None:
        self.memory = memory
        self.link = MpdLink("memory", 6600, autoconnect=False)

    @property
    def up(self) -> bool:
        return self.link.connected

    def adopt(self) -> bool:
        if not self.memory.up or self.link.connected:
            return False
        self.link.adopt(self.memory)  # type: ignore[arg-type]
        return True

    def lost(self) -> None:
        self.link.close()

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def retry_now(self) -> None: ...
    def wait_first_attempt(self, timeout: float) -> None: ...
