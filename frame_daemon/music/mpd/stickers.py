"""Read and write our analysis sticker in MPD's sticker database, in bulk, and nothing else there.

Only the sticker named `shared_analysis.STICKER` ("frame-daemon.mood") is ever read or written: a
user's own stickers (rating, playcount, ...) are never touched, and nothing is ever deleted.

Works the same on MPD 0.23 (Debian 12, Raspberry Pi OS Bookworm) and 0.24+: only `sticker find`,
`sticker list` and `sticker set`, which both have (0.24's `sort`/`window` are not needed).
Reading is one `sticker find` per part of the library, not one query per song: MPD drops a client
whose answer outgrows its output buffer (`max_output_buffer_size`, 8 MiB by default), so a big
library is read folder by folder, each part at most `chunk` songs (a value is ~150 bytes). Parts
are as big as that allows: MPD 0.23 scans its whole sticker table for each `sticker find` (100,000
tracks in 200 artist folders: 12 s, scripts/bench_stickers.py).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence

from frame_daemon.errors import FrameDaemonError
from frame_daemon.music.mpd.client import MpdCommandFailed, MpdLink, MpdNoSuchSong
from frame_daemon.music.shared_analysis import NAMESPACE, STICKER

log = logging.getLogger(__name__)

CHUNK = 10_000  # songs per `sticker find`: about 2.5 MB of answer
LIST_BATCH = 200  # songs per command list where songs must be asked one by one
# `sticker set` per command list. MPD commits each one to its SQLite file on its own (16 ms each
# on this project's test machine; more on an SD card) and answers a list only at its end: a small
# list keeps that answer well inside mpd.timeout_s. Writing is no bottleneck all the same: the
# analysis of one track takes longer than its sticker.
WRITE_BATCH = 50
ENABLE = "add 'sticker_file \"/var/lib/mpd/sticker.sql\"' to /etc/mpd.conf and restart MPD"


class StickersDisabled(FrameDaemonError):
    """MPD has no sticker database (no `sticker_file` in its configuration)."""

    def __init__(self) -> None:
        super().__init__(f"MPD has no sticker database, so analyses are not shared: {ENABLE}")


def plan_reads(uris: Iterable[str], chunk: int = CHUNK) -> tuple[list[str], list[str]]:
    """(folders to `sticker find` in, songs to ask one by one) that cover every song in `uris`.

    A folder of at most `chunk` songs (its subfolders included) is read whole; a bigger one is
    split into its subfolders. Songs lying directly in a folder that had to be split cannot be
    read apart from its subfolders with `sticker find`, so they are asked one by one, in command
    lists (rare: a huge flat folder, or songs beside the folders of a huge library).
    """
    songs_in: dict[str, list[str]] = defaultdict(list)  # folder -> songs directly in it
    subfolders: dict[str, set[str]] = defaultdict(set)
    total: dict[str, int] = defaultdict(int)  # folder -> songs in it and below
    for uri in uris:
        folder = uri.rpartition("/")[0]
        songs_in[folder].append(uri)
        while True:
            total[folder] += 1
            if not folder:
                break
            parent = folder.rpartition("/")[0]
            subfolders[parent].add(folder)
            folder = parent
    folders: list[str] = []
    singles: list[str] = []

    def visit(folder: str) -> None:
        if total[folder] <= chunk:
            folders.append(folder)
            return
        singles.extend(songs_in[folder])
        for sub in sorted(subfolders[folder]):
            visit(sub)

    if total:
        visit("")
    return folders, singles


class MoodStickers:
    """Our sticker on an MpdLink: `available()`, bulk `read()` and `write()`."""

    def __init__(self, link: MpdLink, chunk: int = CHUNK) -> None:
        self.link = link
        self.chunk = chunk

    def available(self) -> bool:
        """Whether MPD has a sticker database (without one it hides the `sticker` command)."""
        return "sticker" in self.link.commands()

    def read(self, uris: Iterable[str]) -> dict[str, str]:
        """uri -> our sticker's value, for the songs in `uris` that have one.

        StickersDisabled without a sticker database; MpdUnavailable if MPD goes away.
        """
        wanted = {u for u in uris if "://" not in u and not u.startswith("/")}
        folders, singles = plan_reads(wanted, self.chunk)
        found: dict[str, str] = {}
        try:
            for folder in folders:
                try:
                    found.update(self.link.sticker_find(folder, STICKER))
                except MpdNoSuchSong:  # the folder left MPD's database since the index was made
                    log.debug("no folder %r in MPD's database any more", folder)
            for start in range(0, len(singles), LIST_BATCH):
                batch = singles[start:start + LIST_BATCH]
                for uri, stickers in zip(batch, self._lists(batch), strict=True):
                    if stickers and STICKER in stickers:
                        found[uri] = stickers[STICKER]
        except MpdCommandFailed as exc:
            self._raise_if_disabled(exc)
            raise
        return {uri: value for uri, value in found.items() if uri in wanted}

    def _lists(self, uris: Sequence[str]) -> list[dict[str, str] | None]:
        try:
            return list(self.link.sticker_lists(uris))
        except MpdNoSuchSong:  # one song is gone: ask one at a time, skipping the gone ones
            answers: list[dict[str, str] | None] = []
            for uri in uris:
                try:
                    answers.extend(self.link.sticker_lists([uri]))
                except MpdNoSuchSong:
                    answers.append(None)
            return answers

    def write(self, values: Sequence[tuple[str, str]], name: str = STICKER) -> list[tuple[str, str]]:
        """Set our sticker on each (uri, value); returns the pairs written (songs MPD no longer
        has are skipped). StickersDisabled without a sticker database."""
        if not name.startswith(NAMESPACE):  # never a user's own sticker
            raise ValueError(f"sticker {name!r} is outside frame-daemon's namespace {NAMESPACE!r}")
        written: list[tuple[str, str]] = []
        try:
            for start in range(0, len(values), WRITE_BATCH):
                batch = list(values[start:start + WRITE_BATCH])
                try:
                    self.link.sticker_set_many(name, batch)
                    written += batch
                except MpdNoSuchSong:  # MPD stopped at a song it no longer has: one at a time
                    for pair in batch:
                        try:
                            self.link.sticker_set_many(name, [pair])
                            written.append(pair)
                        except MpdNoSuchSong:
                            log.debug("not sharing %s: MPD no longer has it", pair[0])
        except MpdCommandFailed as exc:
            self._raise_if_disabled(exc)
            raise
        return written

    @staticmethod
    def _raise_if_disabled(exc: MpdCommandFailed) -> None:
        # MPD 0.23 answers "ACK [5@0] {sticker} sticker database is disabled".
        if "disabled" in str(exc):
            raise StickersDisabled() from exc
