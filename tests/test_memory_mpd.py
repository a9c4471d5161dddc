"""The in-memory MPD of the in-process tests answers the loop's commands as a real MPD does.

The same script of commands runs against a real `mpd` and against `MemoryMpd`; after each step
the queue, the player state and the current song (or the error) must agree, so a test that passes
in memory cannot pass only because the stand-in is kinder than MPD.
"""

from __future__ import annotations

import contextlib

import mpd
import pytest

from memory_mpd import Clock, MemoryMpd
from servers import LIBRARY, Mpd, write_library

SECONDS = 60.0
TRACKS = [f"{artist.replace(' ', '_')}/{stem}.flac" for stem, _, artist, *_ in LIBRARY[:4]]


@pytest.fixture
def real_mpd(tmp_path):
    music = tmp_path / "music"
    write_library(music, seconds=SECONDS, library=LIBRARY[:4])
    server = Mpd(tmp_path / "mpd", music, mixer="software")
    server.start()
    server.update_and_wait()
    client = server.client()
    yield client
    with contextlib.suppress(Exception):
        client.disconnect()
    server.stop()


def observe(client, ids: dict[str, int], step) -> tuple:
    """Run one step; what a caller can see afterwards (an error's code, or the queue and player)."""
    try:
        step(client, ids)
    except mpd.CommandError as exc:
        return ("error", exc.errno)
    status = client.status()
    return ([s["file"] for s in client.playlistinfo()], status["state"],
            client.currentsong().get("file"), status.get("volume"))


def add(uri: str, position: str | None = None):
    def step(client, ids):
        ids[uri] = int(client.addid(uri, position) if position else client.addid(uri))
    return step


def test_the_memory_mpd_answers_like_a_real_one(real_mpd):
    a, b, c, d = TRACKS
    script = [
        add(b, "+0"),  # nothing current yet: a relative position is refused
        add(a), add(b),
        lambda client, ids: client.playid(ids[a]),
        add(c, "+0"), add(d, "+1"),  # right after the current song, then one further
        add("no/such/track.flac"),
        lambda client, ids: client.setvol(40),
        lambda client, ids: client.deleteid(ids[c]),  # the next one, not yet played
        lambda client, ids: client.deleteid(ids[a]),  # the one playing: MPD goes on with the next
        lambda client, ids: client.next(),
        lambda client, ids: client.next(),  # past the end: stopped, nothing current
        lambda client, ids: client.play(),
        lambda client, ids: client.deleteid(999),
    ]
    memory = MemoryMpd(Clock(), {uri: ("", "", SECONDS) for uri in TRACKS}, volume=100)
    real_ids: dict[str, int] = {}
    memory_ids: dict[str, int] = {}
    for i, step in enumerate(script):
        real = observe(real_mpd, real_ids, step)
        ours = observe(memory, memory_ids, step)
        assert ours == real, f"step {i}: memory {ours} != real {real}"
